"""What the emulators' HTTP endpoints share (emr_serverless.py, model_manage.py): a threading server
on 127.0.0.1 whose listen backlog takes a burst of clients, the endpoint run on a thread in-process
and stopped, and the ready file the test command and the harness wait for, written atomically."""
from __future__ import annotations

import os
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
