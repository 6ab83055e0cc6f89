"""A CloudWatch Logs quota in front of moto: moto has no throttling, and CloudWatch Logs' read APIs have hard,
account-wide quotas that cannot be raised (GetLogEvents, FilterLogEvents: the CloudWatch Logs quotas page; AWS
knowledge center "cloudwatch-logs-throttling"). This front forwards every request to moto and answers
``GetLogEvents`` above ``--rate`` calls a second as CloudWatch Logs does: HTTP 400 with
``{"__type": "ThrottlingException", "message": "Rate exceeded"}`` (the JSON 1.1 protocol's error shape, which
the SDKs classify as throttling and retry).

The quota is a token bucket as deep as one second of it (``--rate`` calls), refilled continuously; a throttled
call takes no token. Every other request (and every operation but GetLogEvents) passes untouched.

Usage (prints and writes to the ready file ``{"endpoint": "http://127.0.0.1:PORT", "pid": N}``):

    .venv/bin/python tests/emulator/logs_quota.py --upstream http://127.0.0.1:MOTO [--rate 10]
        [--ready-file PATH] [--quiet]

Point a client at it with ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=<endpoint>`` (the SDKs' per-service endpoint
variable), the rest of AWS at moto. Admin routes (JSON, no signature):

``GET /_emulator/logs/quota``
    ``{"rate": N|null, "accepted": n, "throttled": n}``: GetLogEvents calls forwarded and refused so far.
``POST /_emulator/logs/quota`` ``{"rate": N|null, "reset": bool}``
    sets the quota (``null``: none) and, with ``reset``, zeroes the counters; answers the state after.

It stops on SIGTERM or SIGINT, and on its own when its parent process dies (polled every second).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_endpoint import Endpoint, FrontHandler, forward, relay, serve_until_stopped  # noqa: E402

QUOTA_OPERATION = "Logs_20140328.GetLogEvents"
ADMIN = "/_emulator/logs/quota"
THROTTLED = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()


class Quota:
    """A token bucket of ``rate`` calls a second, as deep as one second of them (thread-safe). ``clock``:
    seconds, monotonic (a test passes its own)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.accepted = 0
        self.throttled = 0
        self.set(rate)

    def set(self, rate: float | None) -> None:
        with self.lock:
            self.rate = rate if rate and rate > 0 else None
            self.tokens = self.rate or 0.0
            self.at = self.clock()

    def take(self) -> bool:
        """Whether a call may pass now; counted either way."""
        with self.lock:
            if self.rate is None:
                self.accepted += 1
                return True
            now = self.clock()
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                self.accepted += 1
                return True
            self.throttled += 1
            return False

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"rate": self.rate, "accepted": self.accepted, "throttled": self.throttled}

    def reset(self) -> None:
        with self.lock:
            self.accepted = self.throttled = 0


def make_handler(upstream: str, quota: Quota) -> type[BaseHTTPRequestHandler]:

    class Handler(FrontHandler):
        def _answer(self, status: int, body: bytes, content_type: str, extra: list[tuple[str, str]] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in extra or []:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _admin(self, body: bytes) -> None:
            if self.command == "POST":
                try:
                    change = json.loads(body or b"{}")
                    if "rate" in change:
                        quota.set(None if change["rate"] is None else float(change["rate"]))
                    if change.get("reset"):
                        quota.reset()
                except (ValueError, TypeError, AttributeError) as exc:
                    self._answer(400, json.dumps({"message": str(exc)}).encode(), "application/json")
                    return
            self._answer(200, json.dumps(quota.state()).encode(), "application/json")

        def _forward(self) -> None:
            body = self.read_body()
            if self.path == ADMIN:
                self._admin(body)
                return
            if self.headers.get("X-Amz-Target") == QUOTA_OPERATION and not quota.take():
                self._answer(400, THROTTLED, "application/x-amz-json-1.1", [("x-amzn-RequestId", "throttled")])
                return
            relay(self, *forward(self, upstream, body))

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler


class LogsQuotaFront:
    """The front in-process (the benchmark uses it so): ``.start()``, ``.endpoint``, ``.quota``, ``.stop()``."""

    def __init__(self, upstream: str, rate: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.quota = Quota(rate, clock)
        self.server = Endpoint(make_handler(upstream, self.quota), "logs-quota")

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def start(self) -> "LogsQuotaFront":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="moto's endpoint")
    parser.add_argument("--rate", type=float, help="GetLogEvents calls a second (default: no quota)")
    parser.add_argument("--ready-file")
    parser.add_argument("--quiet", action="store_true", help="do not print the endpoint line")
    args = parser.parse_args()
    serve_until_stopped(LogsQuotaFront(args.upstream, args.rate).start(), args.ready_file, args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
