"""What the emulators' HTTP endpoints share (emr_serverless.py, model_manage.py): a threading server
on 127.0.0.1 whose listen backlog takes a burst of clients, the endpoint run on a thread in-process
and stopped, and the ready file the test command and the harness wait for, written atomically; and
what the fronts in front of them share (logs_quota.py, request_log.py): forwarding a request, and
their command line's serving loop."""
from __future__ import annotations

import http.client
import json
import os
import signal
import urllib.parse
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

HOST = "127.0.0.1"


class HttpServer(ThreadingHTTPServer):
    # Many clients connect at once (the burst benchmark, the bridge's pollers): socketserver's backlog
    # of 5 would refuse some of them.
    request_queue_size = 256
    daemon_threads = True


class Endpoint:
    """An emulator's endpoint, in-process: ``.start()``; ``.endpoint``; ``.stop()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, port: int = 0) -> None:
        self.httpd = HttpServer((HOST, port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name=name)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.httpd.server_port}"

    def start(self) -> "Endpoint":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_ready_file(path: str, line: str) -> None:
    """``line`` into ``path``, which appears whole or not at all (a waiting reader never sees half)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ready-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


class FrontHandler(BaseHTTPRequestHandler):
    """The request handler of a front: it keeps the SDKs' connections alive, sends an answer's headers and body
    without waiting on Nagle's algorithm, and logs nothing (nor a client that hung up)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # A client gone mid-answer (a CLI stopped by Ctrl-C) is not the front's error to print.
        try:
            super().handle()
        except ConnectionError:
            pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


class Front(Protocol):
    """A started front (``logs_quota.py``, ``request_log.py``): its endpoint, and how to stop it."""

    @property
    def endpoint(self) -> str: ...

    def stop(self) -> None: ...


def serve_until_stopped(front: Front, ready_file: str | None, quiet: bool) -> None:
    """A front's command line: announces ``{"endpoint", "pid"}`` (the ready file, and stdout unless ``quiet``), then
    serves until SIGTERM or SIGINT, or until the parent process dies (polled every second), and stops it."""
    parent = os.getppid()
    line = json.dumps({"endpoint": front.endpoint, "pid": os.getpid()})
    if ready_file:
        write_ready_file(ready_file, line)
    if not quiet:
        print(line, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        if os.getppid() != parent:
            break
    front.stop()


# Headers of one connection that a proxy must not pass on (RFC 9110 §7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def forward(handler: BaseHTTPRequestHandler, upstream: str, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Sends the request ``handler`` is serving (its method, path, end-to-end headers and ``body``) to the
    ``upstream`` base URL and answers ``(status, reason, headers, body)`` as upstream gave them."""
    target = urllib.parse.urlsplit(upstream)
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
    if body or handler.command in ("POST", "PUT"):
        headers["Content-Length"] = str(len(body))
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
    try:
        conn.request(handler.command, handler.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.reason, response.getheaders(), response.read()
    finally:
        conn.close()


def relay(handler: BaseHTTPRequestHandler, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
    """Answers ``handler``'s request with what :func:`forward` got (its own ``Content-Length``; a HEAD keeps upstream's)."""
    handler.send_response(status, reason)
    for name, value in headers:
        if name.lower() in HOP_BY_HOP or (name.lower() == "content-length" and handler.command != "HEAD"):
            continue
        handler.send_header(name, value)
    if handler.command != "HEAD":
        handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def send_json(handler: BaseHTTPRequestHandler, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
    """Answers ``handler``'s request with ``value`` as a JSON body (``bytes`` are sent as they are: JSON
    already encoded), with ``Content-Length`` and any further ``headers`` (an AWS request id, an error type)."""
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, header_value in (headers or {}).items():
        handler.send_header(name, header_value)
    handler.end_headers()
    handler.wfile.write(data)
