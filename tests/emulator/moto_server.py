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

``POST /_emulator/emr-serverless/job-runs/state``
    Moves an EMR Serverless job run, which moto creates in ``SUCCESS`` and
    never moves on its own. Body::

        {"applicationId": str, "jobRunId": str, "state": str,
         "stateDetails": str | null,   # optional
         "attempt": int >= 1,          # optional
         "region": str,                # optional, default us-east-1
         "accountId": str,             # optional, 12 digits, default 123456789012
         "allowUnknownState": bool}    # optional, default false

    Sets the run's ``state``, ``stateDetails`` (omitted or null clears it, as
    the details describe the current state), ``attempt`` (only when given;
    otherwise it is left as it was, and moto sets none) and ``updatedAt``
    (now) in moto's in-process backend, so GetJobRun and ListJobRuns return
    them (``jobRun.stateDetails``, ``jobRun.attempt``). ``state`` must be one
    of botocore's ``JobRunState`` values (SUBMITTED, PENDING, SCHEDULED,
    RUNNING, SUCCESS, FAILED, CANCELLING, CANCELLED, QUEUED) unless
    ``allowUnknownState`` is true, which lets any non-empty name through (to
    exercise a client's handling of states it does not know). No transition
    rules are enforced: any state may follow any other. Answers 200 with the
    run exactly as GetJobRun's ``jobRun`` shows it (timestamps in epoch
    seconds), 404 when the application or the run does not exist in that
    account and region, 400 for a bad body (not an object, a missing or
    mistyped field, an unknown field, an unknown state).

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

HOST = "127.0.0.1"
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
    ``moto.emrserverless.models.emrserverless_backends[account_id][region]``
    (account ``moto.core.DEFAULT_ACCOUNT_ID`` = 123456789012 by default).
    """

    @app.route("GET", "/health")
    def health(_body: Any, _environ: dict) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    @app.route("POST", "/emr-serverless/job-runs/state")
    def set_job_run_state(body: Any, _environ: dict) -> tuple[int, Any]:
        return _set_job_run_state(body)


DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
_JOB_RUN_STATE_FIELDS = {
    "applicationId", "jobRunId", "state", "stateDetails", "attempt", "region", "accountId", "allowUnknownState",
}


def _field(body: dict, name: str, kinds: "type | tuple[type, ...]", default: Any = None, required: bool = False) -> Any:
    """``body[name]`` checked against ``kinds`` (null counts as absent)."""
    value = body.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return default
    # bool is an int subclass: never accept it where a number is wanted, or the reverse.
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is int):
        raise TypeError(f"{name} must be {getattr(kinds, '__name__', kinds)}, not {type(value).__name__}")
    if isinstance(value, str) and required and not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _job_run_states() -> list[str]:
    from moto.core.utils import get_service_model

    return list(get_service_model("emr-serverless").shape_for("JobRunState").enum)


def _job_run_json(job_run: Any) -> dict:
    """``job_run`` exactly as GetJobRun's ``jobRun`` shows it: moto's own serializer and model."""
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    model = get_service_model("emr-serverless")
    serializer = get_serializer_class(model.service_name, model.protocol)(
        operation_model=model.operation_model("GetJobRun"), value_picker=XFormedAttributePicker()
    )
    return json.loads(serializer.serialize({"jobRun": job_run})["body"])["jobRun"]


def _set_job_run_state(body: Any) -> tuple[int, Any]:
    from moto.core.utils import utcnow
    from moto.emrserverless.models import emrserverless_backends

    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(body) - _JOB_RUN_STATE_FIELDS)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    application_id = _field(body, "applicationId", str, required=True)
    job_run_id = _field(body, "jobRunId", str, required=True)
    state = _field(body, "state", str, required=True)
    details = _field(body, "stateDetails", str)
    attempt = _field(body, "attempt", int)
    region = _field(body, "region", str, DEFAULT_REGION) or DEFAULT_REGION
    account = _field(body, "accountId", str, DEFAULT_ACCOUNT_ID) or DEFAULT_ACCOUNT_ID
    allow_unknown = _field(body, "allowUnknownState", bool, False)
    if attempt is not None and attempt < 1:
        raise ValueError("attempt must be at least 1")
    if not (len(account) == 12 and account.isdigit()):
        raise ValueError("accountId must be 12 digits")
    known = _job_run_states()
    if state not in known and not allow_unknown:
        raise ValueError(f"state {state!r} is not one of {', '.join(known)} (set allowUnknownState to send it anyway)")

    backend = emrserverless_backends[account][region]
    if application_id not in backend.applications:
        return 404, {"message": f"application {application_id} not found in account {account}, region {region}"}
    runs = [run for run in backend.job_runs.get(application_id, []) if run.id == job_run_id]
    if not runs:
        return 404, {"message": f"job run {job_run_id} not found in application {application_id}"}
    job_run = runs[0]
    job_run.state = state
    job_run.state_details = details
    if attempt is not None:
        # moto's JobRun has no attempt; its serializer reads any attribute the botocore model names.
        job_run.attempt = attempt
    job_run.updated_at = utcnow()
    return 200, _job_run_json(job_run)


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
