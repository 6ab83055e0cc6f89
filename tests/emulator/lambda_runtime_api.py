"""Lambda Runtime API emulator: runs a compiled Lambda binary exactly as deployed.

Serves the Lambda Runtime API
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) on
127.0.0.1 (a port the OS picks), spawns the function binary (built with the
``lambda_runtime`` crate) pointed at it, feeds it events one by one and
reports what it answered.

Usage:

    .venv/bin/python tests/emulator/lambda_runtime_api.py \\
        --binary target/release/submit --event events/a.json [--event events/b.json ...] \\
        [--timeout-seconds 30] [--env KEY=VALUE ...] [--echo-logs]

The binary gets the current environment plus, unless already set there,
``AWS_LAMBDA_FUNCTION_NAME`` (the binary's file name),
``AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128``, ``AWS_LAMBDA_FUNCTION_VERSION=$LATEST``,
``AWS_LAMBDA_LOG_FORMAT=JSON``, ``AWS_LAMBDA_LOG_GROUP_NAME``,
``AWS_LAMBDA_LOG_STREAM_NAME``, ``AWS_LAMBDA_INITIALIZATION_TYPE=on-demand``,
``AWS_REGION``/``AWS_DEFAULT_REGION`` (us-east-1); then the ``--env`` pairs
(which override anything); and always ``AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT``.

Each event file's bytes are one invocation's payload. The next event is only
queued once the previous one got its response or error. Each invocation has
``--timeout-seconds`` (Lambda-Runtime-Deadline-Ms is now + timeout when the
binary receives it; one extra second of grace is allowed for the reply).

Prints one JSON document to stdout:

    {"invocations": [{"event": FILE, "requestId": ID,
                      "status": "response" | "error" | "timeout" | "incomplete",
                      "body": <parsed JSON, or the raw text>,
                      "errorType": <Lambda-Runtime-Function-Error-Type header; errors only>}, ...],
     "initError": null | <body posted to /runtime/init/error>,
     "binaryExitCode": null | N,   # set if the binary exited before it was stopped
     "extensions": [NAME, ...],    # extensions registered through the Extensions API
     "shutdown": null | {"signal": "SIGTERM" | "SIGKILL", "graceMs": N, "exitCode": N, "killed": bool},
     "failure": null | "<why the run stopped early>",
     "binaryStderr": "<last 20k chars of the binary's stdout+stderr>",
     "binaryMetrics": [<every CloudWatch EMF line the binary wrote (a JSON object with "_aws"), parsed>]}

Exit status: 0 if every event got a response or an error response (the caller
asserts on the bodies); 1 if the binary exited, reported an init error, or an
event timed out (later events are then not sent); 2 on bad arguments.
The binary is always stopped at the end as Lambda's Shutdown phase stops a runtime: SIGKILL
if no extension registered; SIGTERM and 500 ms, then SIGKILL, if an internal extension did
(``lambda_runtime``'s graceful-shutdown handler registers one). The Extensions API
(``/2020-01-01/extension/register`` and ``/event/next``) serves extensions registered for no
events; ``next`` then waits until the environment ends, as on Lambda.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emr_serverless import read_body
from http_endpoint import HOST, send_json

API = "/2018-06-01/runtime"
EXTENSION_API = "/2020-01-01/extension"
# Lambda's Shutdown phase (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html,
# "Shutdown phase"): with no extension registered the runtime is simply killed; with an internal
# extension it gets SIGTERM and 500 ms (external extensions: 2,000 ms) before SIGKILL.
SHUTDOWN_GRACE_INTERNAL_SECONDS = 0.5
ACCOUNT_ID = "123456789012"
LOG_TAIL_CHARS = 20_000
LOG_BUFFER_BYTES = 1 << 20
GRACE_SECONDS = 1.0

_INVOCATION_PATH = re.compile(rf"^{API}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")


def _parse_body(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Invocation:
    def __init__(self, event_path: str, payload: bytes, timeout_seconds: float) -> None:
        self.event_path = event_path
        self.payload = payload
        self.timeout_seconds = timeout_seconds
        self.request_id = str(uuid.uuid4())
        self.queued_at = time.monotonic()
        self.delivered_at: float | None = None  # monotonic
        self.status = "incomplete"
        self.body: Any = None
        self.error_type: str | None = None
        self.done = threading.Event()

    def wait_deadline(self) -> float:
        """Monotonic time after which the invocation counts as timed out."""
        start = self.delivered_at if self.delivered_at is not None else self.queued_at
        return start + self.timeout_seconds + GRACE_SECONDS

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event_path,
            "requestId": self.request_id,
            "status": self.status,
            "body": self.body,
        }
        if self.status == "error":
            out["errorType"] = self.error_type
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A stopped function resets its keep-alive connection: not an error worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class RuntimeApi:
    """The Runtime API server and its state (usable in-process too)."""

    def __init__(self, function_arn: str, quiet: bool = True, extensions_api: bool = True) -> None:
        self.function_arn = function_arn
        # False: no Extensions API (404 on its routes), as local emulators without it (floci-io/floci#1771).
        self.extensions_api = extensions_api
        self.quiet = quiet
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.invocations: dict[str, Invocation] = {}
        self.lock = threading.Lock()
        self.init_error: Any = None
        self.init_error_event = threading.Event()
        # Extensions API: the extensions registered (id → {"name", "events"}).
        self.extensions: dict[str, dict[str, Any]] = {}
        self.closing = threading.Event()
        self.httpd = _Server((HOST, 0), _make_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.httpd.server_port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def enqueue(self, event_path: str, payload: bytes, timeout_seconds: float) -> Invocation:
        inv = Invocation(event_path, payload, timeout_seconds)
        with self.lock:
            self.invocations[inv.request_id] = inv
        self.pending.put(inv)
        return inv

    def next_invocation(self) -> Invocation | None:
        """Block until an event is queued (None once closing). An invocation that ended before
        it was delivered (expired: its function process died or timed out) is dropped, as Lambda
        drops a timed-out request: a restarted process never gets it."""
        while not self.closing.is_set():
            try:
                inv = self.pending.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                if inv.done.is_set():
                    continue
                inv.delivered_at = time.monotonic()
            return inv
        return None

    def new_environment(self) -> None:
        """A new execution environment behind the same API (a function process restarted after a
        crash, an init error or a timeout): no init error, no registered extension."""
        self.init_error = None
        self.init_error_event.clear()
        self.extensions.clear()

    def shutdown_grace(self) -> float | None:
        """The Shutdown phase's grace for the current environment: SIGTERM and 500 ms when an
        (internal) extension registered, else None (SIGKILL at once)."""
        return SHUTDOWN_GRACE_INTERNAL_SECONDS if self.extensions else None

    def expire(self, inv: Invocation) -> bool:
        """Mark an unanswered invocation as timed out (False if it just completed)."""
        with self.lock:
            if inv.done.is_set():
                return False
            inv.status = "timeout"
            inv.done.set()
            return True

    def complete(self, request_id: str, kind: str, body: bytes, error_type: str | None) -> bool:
        with self.lock:
            inv = self.invocations.get(request_id)
            if inv is None or inv.done.is_set() or inv.delivered_at is None:
                return False
            inv.status = kind
            inv.body = _parse_body(body)
            inv.error_type = error_type
            inv.done.set()
            return True


def _make_handler(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the Rust client keeps connections alive
        # Headers and body go out in two writes: with Nagle the body would wait for the client's
        # delayed ACK of the headers (about 40 ms a request).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            if not api.quiet:
                sys.stderr.write("runtime-api: " + (format % args) + "\n")

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            send_json(self, status, body, headers)

        def _error(self, status: int, error_type: str, message: str) -> None:
            self._send(status, {"errorType": error_type, "errorMessage": message})

        def do_GET(self) -> None:
            if self.path == f"{EXTENSION_API}/event/next" and api.extensions_api:
                self._extension_next()
                return
            if self.path != f"{API}/invocation/next":
                self._error(404, "NotFound", f"no route GET {self.path}")
                return
            inv = api.next_invocation()
            if inv is None:  # shutting down: drop the long poll
                self.close_connection = True
                return
            deadline_ms = int(time.time() * 1000 + inv.timeout_seconds * 1000)
            trace_id = (
                f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
                f"Parent={secrets.token_hex(8)};Sampled=0"
            )
            self._send(
                200,
                inv.payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": trace_id,
                },
            )

        def _extension_next(self) -> None:
            ext = api.extensions.get(self.headers.get("Lambda-Extension-Identifier", ""))
            if ext is None:
                self._error(403, "Extension.UnknownExtensionIdentifier", "unknown Lambda-Extension-Identifier")
                return
            if ext["events"]:
                self._error(400, "Extension.UnsupportedEvents",
                            f"this emulator delivers no extension events; registered for {ext['events']}")
                return
            # Registered for no events (an internal extension that only wants the runtime to get
            # SIGTERM at shutdown): the call waits, as on Lambda, until the environment ends.
            api.closing.wait()
            self.close_connection = True

        def _register_extension(self, body: bytes) -> None:
            name = self.headers.get("Lambda-Extension-Name", "")
            events = (_parse_body(body) or {}).get("events", []) if body else []
            if not name or not isinstance(events, list):
                self._error(400, "InvalidRequest", "Lambda-Extension-Name and a JSON {\"events\": [...]} are required")
                return
            if any(e.get("name") == name for e in api.extensions.values()):
                self._error(409, "Extension.AlreadyRegistered", f"an extension named {name!r} is registered already")
                return
            ext_id = str(uuid.uuid4())
            api.extensions[ext_id] = {"name": name, "events": events}
            fn_name = api.function_arn.rsplit(":", 1)[-1]
            self._send(200, {"functionName": fn_name, "functionVersion": "$LATEST", "handler": "bootstrap",
                             "accountId": ACCOUNT_ID}, {"Lambda-Extension-Identifier": ext_id})

        def do_POST(self) -> None:
            body = read_body(self)
            if self.path == f"{EXTENSION_API}/register" and api.extensions_api:
                self._register_extension(body)
                return
            if self.path == f"{API}/init/error":
                api.init_error = _parse_body(body)
                api.init_error_event.set()
                self._send(202, {"status": "OK"})
                return
            match = _INVOCATION_PATH.match(self.path)
            if match is None:
                self._error(404, "NotFound", f"no route POST {self.path}")
                return
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
            if api.complete(match["id"], match["kind"], body, error_type):
                self._send(202, {"status": "OK"})
            else:
                self._error(400, "InvalidRequestID", f"unknown or completed request {match['id']}")

    return Handler


class Binary:
    """The function process, with its stdout+stderr captured (and optionally echoed)."""

    def __init__(self, path: str, env: dict[str, str], echo: bool) -> None:
        self.proc = subprocess.Popen(
            [path],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our signals (e.g. Ctrl-C) don't hit it; we stop it
        )
        self.echo = echo
        self.output = bytearray()
        # Every EMF line (CloudWatch Embedded Metric Format), kept whole: the log tail may drop them.
        self.metrics: list[dict] = []
        self._partial = b""
        self.exit_code_before_stop: int | None = None
        self.shutdown: dict[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            if self.echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.buffer.flush()
            self.output += chunk
            self._collect_metrics(chunk)
            if len(self.output) > 2 * LOG_BUFFER_BYTES:
                del self.output[: len(self.output) - LOG_BUFFER_BYTES]

    def _collect_metrics(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if line.startswith(b'{"_aws"'):
                try:
                    self.metrics.append(json.loads(line))
                except ValueError:
                    pass  # not EMF after all; it stays in the log tail

    def exited(self) -> int | None:
        return self.proc.poll()

    def stop(self, grace_seconds: float | None) -> None:
        """Lambda's Shutdown phase: with ``grace_seconds`` (an extension is registered) SIGTERM,
        then SIGKILL once the grace is over; without, SIGKILL at once. ``shutdown`` says how it
        went: {"signal", "graceMs", "exitCode", "killed"} (exitCode: the process's own, or
        -9 when it was killed)."""
        self.exit_code_before_stop = self.proc.poll()
        if self.exit_code_before_stop is None:
            killed = grace_seconds is None
            if not killed:
                self._signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=grace_seconds)
                except subprocess.TimeoutExpired:
                    killed = True
            if killed:
                self._signal(signal.SIGKILL)
                self.proc.wait()
            self.shutdown = {"signal": "SIGKILL" if grace_seconds is None else "SIGTERM",
                             "graceMs": round((grace_seconds or 0) * 1000), "exitCode": self.proc.returncode,
                             "killed": killed}
        self._reader.join(timeout=3)

    def _signal(self, sig: int) -> None:
        # Only called while the binary is alive (not yet reaped): its pid is
        # then its own process group's id, so this also reaches its children.
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self) -> str:
        return bytes(self.output).decode("utf-8", "replace")[-LOG_TAIL_CHARS:]


def build_env(binary: str, extra: list[tuple[str, str]], runtime_api: str) -> dict[str, str]:
    env = dict(os.environ)
    name = os.path.basename(binary)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    defaults = {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]")
        + secrets.token_hex(16),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    env.update(extra)
    env["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    return env


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def invoke(binary_path: str, events: list[tuple[str, bytes]], env: list[tuple[str, str]], timeout_seconds: float = 30.0,
           echo_logs: bool = False, verbose: bool = False, extensions_api: bool = True) -> tuple[dict[str, Any], int]:
    """Runs the binary, feeds it the (name, payload) events one by one and stops it: the report
    (the shape ``main`` prints) and the exit status. Also used in-process (``tests/replay.py``)."""
    name = os.path.basename(binary_path)
    env_preview = build_env(binary_path, env, "")
    function_arn = f"arn:aws:lambda:{env_preview['AWS_REGION']}:{ACCOUNT_ID}:function:{name}"

    api = RuntimeApi(function_arn, quiet=not verbose, extensions_api=extensions_api)
    api.start()
    binary: Binary | None = None
    invocations: list[Invocation] = []
    failure: str | None = None
    try:
        try:
            binary = Binary(binary_path, build_env(binary_path, env, api.address), echo_logs)
        except OSError as exc:
            failure = f"could not start {binary_path}: {exc}"
        for path, payload in events if binary else []:
            inv = api.enqueue(path, payload, timeout_seconds)
            invocations.append(inv)
            while not inv.done.wait(0.05):
                if api.init_error_event.is_set():
                    failure = f"the binary reported an init error while {path} was pending"
                elif binary.exited() is not None and not inv.done.is_set():
                    failure = f"the binary exited with code {binary.exited()} while {path} was pending"
                elif time.monotonic() > inv.wait_deadline() and api.expire(inv):
                    failure = f"{path} timed out after {timeout_seconds}s"
                if failure:
                    break
            if failure:
                break
        if failure is None and api.init_error_event.is_set():
            failure = "the binary reported an init error"
    finally:
        if binary is not None:
            binary.stop(api.shutdown_grace())
        api.stop()

    report = {
        "invocations": [inv.report() for inv in invocations],
        "initError": api.init_error,
        "binaryExitCode": binary.exit_code_before_stop if binary else None,
        "extensions": sorted(e["name"] for e in api.extensions.values()),
        "shutdown": binary.shutdown if binary else None,
        "failure": failure,
        "binaryStderr": binary.log_tail() if binary else "",
        "binaryMetrics": binary.metrics if binary else [],
    }
    return report, (0 if failure is None else 1)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    events = []
    for path in args.event:
        with open(path, "rb") as f:
            events.append((path, f.read()))
    return invoke(args.binary, events, args.env, args.timeout_seconds, args.echo_logs, args.verbose, not args.no_extensions_api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a Lambda binary against an emulated Lambda Runtime API."
    )
    parser.add_argument("--binary", required=True, help="the function executable")
    parser.add_argument("--event", action="append", required=True, help="event JSON file (repeatable)")
    parser.add_argument("--timeout-seconds", type=float, default=30.0, help="per invocation (default 30)")
    parser.add_argument("--env", action="append", type=_env_pair, default=[], metavar="KEY=VALUE")
    parser.add_argument("--echo-logs", action="store_true", help="also copy the binary's output to stderr")
    parser.add_argument("--verbose", action="store_true", help="log Runtime API requests to stderr")
    parser.add_argument("--no-extensions-api", action="store_true", help="serve no Extensions API (404), as some local emulators")
    args = parser.parse_args(argv)
    for path in args.event:
        if not os.path.isfile(path):
            parser.error(f"event file not found: {path}")

    # Turn SIGTERM into an exception so the binary is still stopped.
    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        report, status = run(args)
    except KeyboardInterrupt:
        return 130
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
