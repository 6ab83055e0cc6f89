"""A delay proxy for the benchmarks: every AWS request is delayed, and counted.

Sits on 127.0.0.1 (a port the OS picks) in front of the emulators. Two delay models:

- ``add`` (the default): every request waits ``delay`` before it is forwarded, so a function
  binary pointed at it with ``AWS_ENDPOINT_URL`` sees every AWS call take ``delay`` more, and the
  wall time of an invocation divided by the delay is the number of *sequential* round trips on
  its critical path (concurrent calls overlap their delays).
- ``floor``: a request is forwarded at once and its response is released no earlier than
  ``delay`` after the request arrived: an AWS service whose latency does not grow with load, as
  long as the emulator answers within the floor. A request answered later than its floor goes
  out when the answer arrives and is counted *late* (with the worst lateness); with no late
  request, every call took exactly the floor, whatever the emulator's queue.

Each request is counted by operation:
``X-Amz-Target`` for the JSON protocols (DynamoDB, CloudWatch Logs), and the REST method + path
mapped to the operation name for S3 and EMR Serverless. The service is read from the SigV4
credential scope of the ``Authorization`` header; a request is forwarded to the upstream of its
service (``routes``), else to the default upstream.

Used in-process by ``tests/bench/bench.py``; also runnable on its own:

    .venv/bin/python tests/bench/delay_proxy.py --upstream http://127.0.0.1:MOTO \\
        [--route emr-serverless=http://127.0.0.1:EMR] [--delay-ms 50 | --floor-ms 1000]

prints ``{"endpoint": ...}`` and serves until SIGTERM/SIGINT; ``GET /_proxy/counts`` answers the
counts so far and ``GET /_proxy/stats`` the model, the most requests in flight and the late
requests (neither delayed nor counted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "emulator"))
from http_endpoint import HOST, forward, relay, send_json  # noqa: E402

MODES = ("add", "floor")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_EMR_APP = re.compile(r"^/applications/[^/]+$")
_EMR_APP_START = re.compile(r"^/applications/[^/]+/start$")
_EMR_APP_STOP = re.compile(r"^/applications/[^/]+/stop$")
_EMR_RUNS = re.compile(r"^/applications/[^/]+/jobruns$")
_EMR_RUN = re.compile(r"^/applications/[^/]+/jobruns/[^/]+$")
_EMR_RUN_ATTEMPTS = re.compile(r"^/applications/[^/]+/jobruns/[^/]+/attempts$")


def service_of(headers: Any) -> str:
    match = _SCOPE.search(headers.get("Authorization") or "")
    if match:
        return match.group(1)
    target = headers.get("X-Amz-Target") or ""
    return "dynamodb" if target.startswith("DynamoDB") else "unknown"


def operation_of(service: str, method: str, raw_path: str, headers: Any) -> str:
    """``service:Operation`` for one request."""
    target = headers.get("X-Amz-Target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    parsed = urllib.parse.urlsplit(raw_path)
    path, query = parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    if service == "s3":
        segments = [s for s in path.split("/") if s]
        on_object = len(segments) >= 2
        if method == "GET":
            if on_object:
                return "s3:GetObject"
            return "s3:ListObjectsV2" if query.get("list-type") == ["2"] else "s3:ListObjects"
        if method == "PUT":
            if not on_object:
                return "s3:CreateBucket"
            return "s3:CopyObject" if headers.get("x-amz-copy-source") else "s3:PutObject"
        if method == "POST" and "delete" in query:
            return "s3:DeleteObjects"
        if method == "HEAD":
            return "s3:HeadObject" if on_object else "s3:HeadBucket"
        if method == "DELETE":
            return "s3:DeleteObject" if on_object else "s3:DeleteBucket"
    if service == "emr-serverless":
        if path == "/applications":
            return "emr-serverless:" + ("ListApplications" if method == "GET" else "CreateApplication")
        if _EMR_APP.match(path):
            return "emr-serverless:" + {"GET": "GetApplication", "DELETE": "DeleteApplication"}.get(method, "UpdateApplication")
        if _EMR_APP_START.match(path):
            return "emr-serverless:StartApplication"
        if _EMR_APP_STOP.match(path):
            return "emr-serverless:StopApplication"
        if _EMR_RUNS.match(path):
            return "emr-serverless:" + ("ListJobRuns" if method == "GET" else "StartJobRun")
        if _EMR_RUN.match(path):
            return "emr-serverless:" + ("CancelJobRun" if method == "DELETE" else "GetJobRun")
        if _EMR_RUN_ATTEMPTS.match(path):
            return "emr-serverless:ListJobRunAttempts"
    return f"{service}:{method} {path}"


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A function stopped while holding idle keep-alive connections resets them: not an error.
        pass


class DelayProxy:
    """The proxy server and its counts (thread-safe)."""

    def __init__(self, upstream: str, routes: dict[str, str] | None = None, delay_seconds: float = 0.05,
                 mode: str = "add") -> None:
        if mode not in MODES:
            raise ValueError(f"delay mode {mode!r} is not one of {MODES}")
        self.upstream = upstream
        self.routes = dict(routes or {})
        self.delay = delay_seconds
        self.mode = mode
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.late = 0  # floor mode: requests the upstream answered after their floor
        self.worst_late = 0.0  # seconds past the floor, the worst of them
        self.httpd = _QuietServer((HOST, 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.httpd.server_port}"

    def start(self) -> "DelayProxy":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def set_delay(self, seconds: float, mode: str = "add") -> None:
        """``add``: each request waits ``seconds`` before it is forwarded. ``floor``: each is
        forwarded at once and answered no earlier than ``seconds`` after it arrived. Applies to
        requests that arrive from now on."""
        if mode not in MODES:
            raise ValueError(f"delay mode {mode!r} is not one of {MODES}")
        with self.lock:
            self.delay, self.mode = seconds, mode

    def set_floor(self, seconds: float) -> None:
        self.set_delay(seconds, "floor")

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.max_in_flight = 0
            self.late = 0
            self.worst_late = 0.0

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"mode": self.mode, "delay_seconds": self.delay, "max_in_flight": self.max_in_flight,
                    "late": self.late, "worst_late_seconds": self.worst_late}

    def _enter(self, operation: str) -> tuple[str, float]:
        """Counts the request; its (mode, delay), fixed when it arrives."""
        with self.lock:
            self.counts[operation] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.mode, self.delay

    def _leave(self, late_seconds: float = 0.0) -> None:
        with self.lock:
            self.in_flight -= 1
            if late_seconds > 0:
                self.late += 1
                self.worst_late = max(self.worst_late, late_seconds)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _make_handler(proxy: DelayProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the SDKs keep connections alive
        # Headers and body go out in two writes: with Nagle the body waits for the client's
        # delayed ACK of the headers (tens of ms on every request).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            arrived = time.monotonic()
            body = _read_body(self)
            if self.path in ("/_proxy/counts", "/_proxy/stats"):
                send_json(self, 200, proxy.snapshot() if self.path == "/_proxy/counts" else proxy.stats())
                return
            service = service_of(self.headers)
            operation = operation_of(service, self.command, self.path, self.headers)
            mode, delay = proxy._enter(operation)
            late = 0.0
            try:
                if mode == "add":
                    time.sleep(delay)
                status, reason, response_headers, data = forward(self, proxy.routes.get(service, proxy.upstream), body)
                if mode == "floor":
                    wait = arrived + delay - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    else:
                        late = -wait
            finally:
                proxy._leave(late)
            relay(self, status, reason, response_headers, data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--route", action="append", default=[], metavar="SERVICE=URL")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--delay-ms", type=float, default=50.0, help="added to every request (default 50)")
    model.add_argument("--floor-ms", type=float, help="instead: every response released no earlier than this "
                                                      "after its request arrived")
    args = parser.parse_args()
    routes = dict(r.split("=", 1) for r in args.route)
    if args.floor_ms is not None:
        proxy = DelayProxy(args.upstream, routes, args.floor_ms / 1000, mode="floor").start()
    else:
        proxy = DelayProxy(args.upstream, routes, args.delay_ms / 1000).start()
    print(json.dumps({"endpoint": proxy.endpoint}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
