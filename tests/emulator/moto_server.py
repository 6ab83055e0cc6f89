"""AWS emulator for the integration tests: moto's server on loopback.

Runs moto's multi-service server in this process, bound to 127.0.0.1 on a port
the OS picks (never all interfaces), and announces itself once it answers HTTP.

Usage:

    .venv/bin/python tests/emulator/moto_server.py --ready-file PATH [--quiet]

When the server answers HTTP it writes one line of JSON

    {"endpoint": "http://127.0.0.1:PORT", "pid": N}

to PATH (written to a temporary name in the same directory and renamed, so a
reader never sees a partial file) and the same line to stdout. Point the AWS
SDKs at it with ``AWS_ENDPOINT_URL=<endpoint>`` (any dummy credentials, any
region; S3 clients must use path-style addressing).

It stops cleanly on SIGTERM or SIGINT, and on its own when its parent process
dies (the parent pid is polled every second), so a crashed test run never
leaks a server.

Every AWS service moto implements is served on the one endpoint: moto picks
the service from the SigV4 ``Authorization`` header's credential scope (and
``X-Amz-Target`` for DynamoDB vs DynamoDB Streams). The region is taken from
the same scope; any region name is accepted (``MOTO_ALLOW_NONEXISTENT_REGION``),
``us-east-1`` when none can be inferred.

Besides moto's own ``/moto-api/...`` routes (e.g. ``POST /moto-api/reset``
wipes all state), this server has emulator admin routes under
``/_emulator/``. They take and return JSON, need no signature, and answer
errors as ``{"message": "..."}`` (400 for a bad body, 404 for an unknown
route or resource):

``GET /_emulator/health``
    200 ``{"status": "ok"}``; the readiness probe.

EMR Serverless is not emulated here: moto's emrserverless backend marks every run SUCCESS at
once and runs nothing, so the project's one EMR Serverless emulation is
``tests/emulator/emr_serverless.py`` (with the run-state admin route the tests use), reached
through ``AWS_ENDPOINT_URL_EMR_SERVERLESS``.

Further admin routes are registered with ``EmulatorApp.route`` in
``register_admin_routes`` below.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Callable, Iterable

# Taken before the slow moto import, so an early parent death is noticed too.
_PARENT_PID = os.getppid()

# Accept any region name (e.g. a made-up test region), and default to
# us-east-1 wherever moto falls back on the environment. Both must be set
# before moto is imported/used.
os.environ["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server  # noqa: E402

from http_endpoint import HOST  # noqa: E402
ADMIN_PREFIX = "/_emulator"

# An admin handler gets the parsed JSON request body (None if empty) and the
# WSGI environ, and returns (HTTP status code, JSON-serialisable body).
AdminHandler = Callable[[Any, dict], "tuple[int, Any]"]


class EmulatorApp:
    """WSGI app: ``/_emulator/...`` admin routes, everything else to moto."""

    def __init__(self, moto_app: Callable) -> None:
        self.moto_app = moto_app
        self.routes: dict[tuple[str, str], AdminHandler] = {}

    def route(self, method: str, path: str) -> Callable[[AdminHandler], AdminHandler]:
        """Register an admin handler for ``METHOD /_emulator<path>``."""

        def register(handler: AdminHandler) -> AdminHandler:
            self.routes[(method.upper(), ADMIN_PREFIX + path)] = handler
            return handler

        return register

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != ADMIN_PREFIX and not path.startswith(ADMIN_PREFIX + "/"):
            return self.moto_app(environ, start_response)
        handler = self.routes.get((environ.get("REQUEST_METHOD", "GET"), path))
        if handler is None:
            status, body = 404, {"message": f"no admin route {path}"}
        else:
            try:
                status, body = handler(_read_json_body(environ), environ)
            except (ValueError, KeyError, TypeError) as exc:
                status, body = 400, {"message": f"{type(exc).__name__}: {exc}"}
        payload = json.dumps(body).encode()
        start_response(
            f"{status} {'OK' if status < 400 else 'Error'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


def _read_json_body(environ: dict) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    return json.loads(raw) if raw.strip() else None


def register_admin_routes(app: EmulatorApp) -> None:
    """The emulator's admin routes. Extension point: add routes here.

    Handlers reach moto's in-process state through its backends, e.g.
    ``moto.dynamodb.models.dynamodb_backends[account_id][region]``
    (account ``moto.core.DEFAULT_ACCOUNT_ID`` = 123456789012 by default).
    """

    @app.route("GET", "/health")
    def health(_body: Any, _environ: dict) -> tuple[int, Any]:
        return 200, {"status": "ok"}


class QuietRequestHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def build_server(port: int = 0, quiet: bool = False) -> BaseWSGIServer:
    app = EmulatorApp(DomainDispatcherApplication(create_backend_app))
    register_admin_routes(app)
    handler = QuietRequestHandler if quiet else MotoRequestHandler
    return make_server(HOST, port, app, threaded=True, request_handler=handler)


def wait_until_answering(endpoint: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}{ADMIN_PREFIX}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def write_ready_file(path: str, line: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".moto-ready-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def watch_parent(parent: int, stop: threading.Event) -> None:
    """Set ``stop`` when the parent process dies (we get re-parented)."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            print("moto_server: parent process gone, stopping", file=sys.stderr, flush=True)
            stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", required=True, help="where to write the endpoint JSON")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    parser.add_argument("--quiet", action="store_true", help="don't log each request to stderr")
    args = parser.parse_args(argv)

    parent = _PARENT_PID
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = build_server(args.port, args.quiet)
    endpoint = f"http://{HOST}:{server.server_port}"
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto-server", daemon=True
    )
    serving.start()
    threading.Thread(target=watch_parent, args=(parent, stop), name="parent-watch", daemon=True).start()

    try:
        wait_until_answering(endpoint)
        line = json.dumps({"endpoint": endpoint, "pid": os.getpid()})
        write_ready_file(args.ready_file, line)
        print(line, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=5)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown (over a second with moto's many modules loaded):
    # the server is already shut down and there is nothing else to clean up.
    os._exit(status)
