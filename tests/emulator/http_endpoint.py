"""What the emulators' HTTP endpoints share (emr_serverless.py, model_manage.py): a threading server
on 127.0.0.1 whose listen backlog takes a burst of clients, the endpoint run on a thread in-process
and stopped, and the ready file the test command and the harness wait for, written atomically."""
from __future__ import annotations

import http.client
import os
import urllib.parse
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
