"""A request log in front of an emulator (moto, or the EMR Serverless emulator): every request is forwarded to
``--upstream`` unchanged and recorded, so a test can count the AWS calls another process made (the operator CLI's
compiled binary, which no SDK interceptor of the test sees). Each record is the request's operation:
``X-Amz-Target``'s for the JSON protocols (``DynamoDB_20120810.GetItem`` is ``GetItem``; DynamoDB, CloudWatch
Logs), else ``METHOD /path?query`` for the REST ones (``GET /applications/APP/jobruns/RUN`` is GetJobRun,
``DELETE`` of it CancelJobRun).

Usage (prints and writes to the ready file ``{"endpoint": "http://127.0.0.1:PORT", "pid": N}``):

    .venv/bin/python tests/emulator/request_log.py --upstream http://127.0.0.1:PORT [--ready-file PATH] [--quiet]

Point a client at it instead of the upstream (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_EMR_SERVERLESS``); one front
per test keeps each test's log its own. Admin route (JSON, no signature; neither forwarded nor recorded):

``GET /_emulator/requests``
    ``{"requests": ["GetItem", "GET /applications/APP/jobruns/RUN", ...]}``: every request forwarded so far, in
    the order they arrived.

It stops on SIGTERM or SIGINT, and on its own when its parent process dies (polled every second).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_endpoint import Endpoint, FrontHandler, forward, relay, send_json, serve_until_stopped  # noqa: E402

ADMIN = "/_emulator/requests"


def operation_of(method: str, path: str, target: str | None) -> str:
    """What a request is: its ``X-Amz-Target``'s operation, else its method and path."""
    if target:
        return target.rsplit(".", 1)[-1]
    return f"{method} {path}"


class RequestLog:
    """The operations forwarded so far (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.operations: list[str] = []

    def record(self, operation: str) -> None:
        with self.lock:
            self.operations.append(operation)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.operations)


def make_handler(upstream: str, log: RequestLog) -> type[BaseHTTPRequestHandler]:

    class Handler(FrontHandler):
        def _forward(self) -> None:
            body = self.read_body()
            if self.path == ADMIN and self.command == "GET":
                send_json(self, 200, {"requests": log.snapshot()})
                return
            log.record(operation_of(self.command, self.path, self.headers.get("X-Amz-Target")))
            relay(self, *forward(self, upstream, body))

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler


class RequestLogFront(Endpoint):
    """The front in-process: ``.start()``, ``.endpoint``, ``.log``, ``.stop()``."""

    def __init__(self, upstream: str) -> None:
        self.log = RequestLog()
        super().__init__(make_handler(upstream, self.log), "request-log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the emulator's endpoint")
    parser.add_argument("--ready-file")
    parser.add_argument("--quiet", action="store_true", help="do not print the endpoint line")
    args = parser.parse_args()
    serve_until_stopped(RequestLogFront(args.upstream).start(), args.ready_file, args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
