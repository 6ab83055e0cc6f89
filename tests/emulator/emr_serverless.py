"""The project's one emulation of Amazon EMR Serverless: a REST endpoint on loopback.

It speaks the subset of the EMR Serverless API (rest-json, 2021-07-13) that the functions use,
with the real API's paths, shapes, states, pagination, error codes and ``clientToken``
idempotency (checked against botocore's service model in the venv):

    ListApplications    GET    /applications                         ?states=&maxResults=&nextToken=
    CreateApplication   POST   /applications
    GetApplication      GET    /applications/{applicationId}
    StartApplication    POST   /applications/{applicationId}/start
    StopApplication     POST   /applications/{applicationId}/stop
    StartJobRun         POST   /applications/{applicationId}/jobruns
    ListJobRuns         GET    /applications/{applicationId}/jobruns  ?states=&createdAtAfter=&createdAtBefore=&mode=&maxResults=&nextToken=
    GetJobRun           GET    /applications/{applicationId}/jobruns/{jobRunId}
    CancelJobRun        DELETE /applications/{applicationId}/jobruns/{jobRunId}

Errors answer the real status codes with ``X-Amzn-ErrorType`` and ``{"message"}``:
ResourceNotFoundException 404, ValidationException 400, ConflictException 409, and
AccessDeniedException 403 for an execution role of another account (the caller cannot pass it). Timestamps are
epoch seconds, as rest-json sends them. Resources are kept per region (from the request's SigV4
credential scope; us-east-1 when there is none). Signatures are not checked.

Two modes:

* **manual** (default; the Rust integration tests): runs execute nothing. A new run is
  SUBMITTED and stays there until a test moves it with the admin route below; CancelJobRun moves a
  live run to CANCELLED at once.
* **execute** (``--execute``; the demo and the end-to-end tests): each run is really run with
  ``spark-submit --master local[*]`` from the venv's pyspark, see :class:`SparkRunner`, and moves
  SUBMITTED → SCHEDULED → RUNNING → SUCCESS | FAILED, or CANCELLING → CANCELLED when cancelled
  (the spark-submit process group is killed).

Every state change is also published as the EventBridge event EMR Serverless sends
("EMR Serverless Job Run State Change", source ``aws.emr-serverless``) to the event sink: a
callable when used in-process (``tests/emulator/local_aws.py``), or ``--events-url`` (POSTed as
JSON) when run on its own.

Admin routes (JSON, unsigned; errors are ``{"message"}`` with 400/404):

``GET /_emulator/health``
    200 ``{"status": "ok", "mode": "manual" | "execute"}``.
``POST /_emulator/emr-serverless/job-runs/state``
    Body ``{"applicationId", "jobRunId", "state", "stateDetails"?, "attempt"?, "region"?,
    "accountId"?, "allowUnknownState"?}``: sets the run's state as EMR would (no transition rules;
    ``stateDetails`` omitted or null clears it; ``attempt`` kept unless given). Answers 200 with the
    run as GetJobRun's ``jobRun`` shows it; 404 for an unknown application or run in that region;
    400 for a bad body or an unknown state (unless ``allowUnknownState``). Emits the state-change
    event too.
``GET /_emulator/emr-serverless/job-runs/process?jobRunId=ID``
    ``{"jobRunId", "pid": int | null, "alive": bool, "exitCode": int | null}``: the run's
    spark-submit process (execute mode), so tests can prove a cancel stopped it.

Usage:

    .venv/bin/python tests/emulator/emr_serverless.py --ready-file PATH [--execute
        --aws-endpoint http://127.0.0.1:MOTO] [--work-dir DIR] [--events-url URL] [--quiet]

Writes ``{"endpoint": "http://127.0.0.1:PORT", "pid": N}`` to PATH (atomically) and stdout once it
answers. Stops on SIGTERM/SIGINT and when its parent dies, killing any spark-submit it started.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

_PARENT_PID = os.getppid()

HOST = "127.0.0.1"
ADMIN = "/_emulator"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

JOB_RUN_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS", "FAILED", "CANCELLING", "CANCELLED", "QUEUED")
TERMINAL_RUN_STATES = ("SUCCESS", "FAILED", "CANCELLED")
APPLICATION_STATES = ("CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "TERMINATED")
MAX_RESULTS = 50  # both list operations: 1-50, default 50
STATE_DETAILS_MAX = 256
# Spark conf EMR Serverless understands but local Spark cannot use (the archive is not there).
EMR_ONLY_CONF_PREFIXES = ("spark.emr-serverless.",)
EMR_ONLY_CONF_KEYS = ("spark.archives",)

EventSink = Callable[[dict], None]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(message: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", message)


def validation(message: str) -> ApiError:
    return ApiError(400, "ValidationException", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "ConflictException", message)


def _new_id() -> str:
    # Real ids: 16 lowercase alphanumerics starting with "00f".
    return "00f" + "".join(random.choices(string.ascii_lowercase + string.digits, k=13))


def _now() -> float:
    return time.time()


def _iso_micro(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> float:
    """A querystring timestamp: ISO-8601 (what SDKs send), or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    value = text.strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


class Application:
    def __init__(self, region: str, account: str, body: dict) -> None:
        self.id = _new_id()
        self.region, self.account = region, account
        self.name = body.get("name")
        self.release_label = body["releaseLabel"]
        self.type = body["type"]
        self.client_token = body["clientToken"]
        self.request = {k: v for k, v in body.items() if k != "clientToken"}
        self.tags = dict(body.get("tags") or {})
        self.auto_start = dict(body.get("autoStartConfiguration") or {"enabled": True})
        self.auto_stop = dict(body.get("autoStopConfiguration") or {"enabled": True, "idleTimeoutMinutes": 15})
        self.architecture = body.get("architecture") or "X86_64"
        self.state = "CREATED"
        self.state_details: str | None = None
        self.created_at = self.updated_at = _now()

    @property
    def arn(self) -> str:
        return f"arn:aws:emr-serverless:{self.region}:{self.account}:/applications/{self.id}"

    def summary(self) -> dict:
        out = {
            "id": self.id, "arn": self.arn, "releaseLabel": self.release_label, "type": self.type,
            "state": self.state, "createdAt": self.created_at, "updatedAt": self.updated_at,
            "architecture": self.architecture,
        }
        if self.name is not None:
            out["name"] = self.name
        if self.state_details:
            out["stateDetails"] = self.state_details
        return out

    def full(self) -> dict:
        out = self.summary()
        out["applicationId"] = out.pop("id")
        out.update({"tags": self.tags, "autoStartConfiguration": self.auto_start, "autoStopConfiguration": self.auto_stop})
        return out


class JobRun:
    def __init__(self, app: Application, body: dict) -> None:
        self.id = _new_id()
        self.app = app
        self.name = body.get("name")
        self.client_token = body["clientToken"]
        self.execution_role = body["executionRoleArn"]
        self.job_driver = body.get("jobDriver") or {}
        self.overrides = body.get("configurationOverrides") or {}
        self.tags = dict(body.get("tags") or {})
        self.mode = body.get("mode") or "BATCH"
        self.state = "SUBMITTED"
        self.state_details: str | None = None
        self.attempt: int | None = None
        self.created_at = self.updated_at = _now()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.state_times: list[tuple[str, float]] = [("SUBMITTED", self.created_at)]
        # Execution (execute mode).
        self.cancel_requested = threading.Event()
        self.process: subprocess.Popen | None = None

    @property
    def arn(self) -> str:
        return f"{self.app.arn}/jobruns/{self.id}"

    def _common(self) -> dict:
        out = {
            "applicationId": self.app.id, "arn": self.arn,
            "createdBy": f"arn:aws:sts::{self.app.account}:assumed-role/local/emulator",
            "createdAt": self.created_at, "updatedAt": self.updated_at, "executionRole": self.execution_role,
            "state": self.state, "stateDetails": self.state_details or "", "releaseLabel": self.app.release_label,
            "mode": self.mode,
        }
        if self.name is not None:
            out["name"] = self.name
        if self.attempt is not None:
            out["attempt"] = self.attempt
        return out

    def summary(self) -> dict:
        out = self._common()
        out["id"] = self.id
        out["type"] = "Spark"
        return out

    def full(self) -> dict:
        out = self._common()
        out.update({"jobRunId": self.id, "jobDriver": self.job_driver, "configurationOverrides": self.overrides, "tags": self.tags})
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.ended_at is not None:
            out["endedAt"] = self.ended_at
            out["totalExecutionDurationSeconds"] = int(self.ended_at - (self.started_at or self.created_at))
        return out

    def log_config(self) -> dict | None:
        logging = (self.overrides.get("monitoringConfiguration") or {}).get("cloudWatchLoggingConfiguration") or {}
        return logging if logging.get("enabled") else None


class EmrServerless:
    """The service's state, shared by the HTTP handler, the admin routes and the runner."""

    def __init__(self, event_sink: EventSink | None = None, runner: "SparkRunner | None" = None, log: Callable[[str], None] | None = None) -> None:
        self.lock = threading.RLock()
        self.apps: dict[str, dict[str, Application]] = {}  # region -> id -> app
        self.runs: dict[str, JobRun] = {}  # run id -> run (ids are unique across regions)
        self.event_sink = event_sink
        self.runner = runner
        self.log = log or (lambda message: print(f"emr-serverless: {message}", file=sys.stderr, flush=True))

    # ---- helpers

    def _apps(self, region: str) -> dict[str, Application]:
        return self.apps.setdefault(region, {})

    def _app(self, region: str, app_id: str) -> Application:
        app = self._apps(region).get(app_id)
        if app is None:
            raise not_found(f"Application {app_id} does not exist")
        return app

    def _run(self, region: str, app_id: str, run_id: str) -> JobRun:
        app = self._app(region, app_id)
        run = self.runs.get(run_id)
        if run is None or run.app is not app:
            raise not_found(f"Job run {run_id} does not exist in application {app_id}")
        return run

    def set_state(self, run: JobRun, state: str, details: str | None = None, attempt: int | None = None) -> None:
        with self.lock:
            previous = run.state
            run.state = state
            run.state_details = (details or "")[:STATE_DETAILS_MAX] or None
            if attempt is not None:
                run.attempt = attempt
            run.updated_at = _now()
            run.state_times.append((state, run.updated_at))
            if state == "RUNNING" and run.started_at is None:
                run.started_at = run.updated_at
            if state in TERMINAL_RUN_STATES:
                run.ended_at = run.updated_at
            event = self.state_change_event(run, previous)
        self.log(f"job run {run.id} ({run.name}): {previous} -> {state}" + (f" ({run.state_details})" if run.state_details else ""))
        self.publish(event)

    def state_change_event(self, run: JobRun, previous: str | None) -> dict:
        detail = {
            "jobRunId": run.id, "applicationId": run.app.id, "arn": run.arn, "releaseLabel": run.app.release_label,
            "state": run.state,
            "createdBy": f"arn:aws:sts::{run.app.account}:assumed-role/local/emulator",
            "updatedAt": _iso_micro(run.updated_at), "createdAt": _iso_micro(run.created_at),
        }
        if run.name is not None:
            detail["jobRunName"] = run.name
        if previous is not None and previous != run.state:
            detail["previousState"] = previous
        if run.state_details:
            detail["stateDetails"] = run.state_details
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "EMR Serverless Job Run State Change",
            "source": "aws.emr-serverless", "account": run.app.account,
            "time": dt.datetime.fromtimestamp(run.updated_at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": run.app.region, "resources": [], "detail": detail,
        }

    def publish(self, event: dict) -> None:
        if self.event_sink is None:
            return
        try:
            self.event_sink(event)
        except Exception as exc:  # noqa: BLE001 - EventBridge delivery is best effort
            self.log(f"event delivery failed: {exc}")

    # ---- the API

    def list_applications(self, region: str, query: dict[str, list[str]]) -> dict:
        states = query.get("states") or []
        for state in states:
            if state not in APPLICATION_STATES:
                raise validation(f"1 validation error detected: Value '{state}' at 'states' failed to satisfy constraint")
        with self.lock:
            apps = sorted(self._apps(region).values(), key=lambda a: a.created_at, reverse=True)
            items = [a.summary() for a in apps if not states or a.state in states]
        page, token = _paginate(items, query)
        out: dict = {"applications": page}
        if token:
            out["nextToken"] = token
        return out

    def create_application(self, region: str, account: str, body: dict) -> dict:
        for field in ("releaseLabel", "type", "clientToken"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise validation(f"{field} is required")
        if not re.fullmatch(r"emr-\d+\.\d+\.\d+(-.*)?", body["releaseLabel"]):
            raise validation(f"Release label {body['releaseLabel']} is not valid")
        if body["type"].upper() not in ("SPARK", "HIVE"):
            raise validation(f"Type {body['type']} is not supported")
        name = body.get("name")
        if name is not None and not re.fullmatch(r"[A-Za-z0-9._/#-]{1,64}", name):
            raise validation(f"Application name {name!r} is not valid")
        with self.lock:
            for app in self._apps(region).values():
                if app.client_token == body["clientToken"]:
                    if app.request != {k: v for k, v in body.items() if k != "clientToken"}:
                        raise conflict(f"clientToken {body['clientToken']} was already used with other parameters")
                    return {"applicationId": app.id, "name": app.name, "arn": app.arn}
            app = Application(region, account, body)
            self._apps(region)[app.id] = app
        self.log(f"application {app.id} ({app.name}) created")
        return {"applicationId": app.id, "name": app.name, "arn": app.arn}

    def get_application(self, region: str, app_id: str) -> dict:
        with self.lock:
            return {"application": self._app(region, app_id).full()}

    def start_application(self, region: str, app_id: str) -> dict:
        with self.lock:
            app = self._app(region, app_id)
            if app.state == "TERMINATED":
                raise validation(f"Application {app_id} is terminated")
            app.state, app.updated_at = "STARTED", _now()
        return {}

    def stop_application(self, region: str, app_id: str) -> dict:
        with self.lock:
            app = self._app(region, app_id)
            if any(r.app is app and r.state not in TERMINAL_RUN_STATES for r in self.runs.values()):
                raise validation(f"Application {app_id} has running jobs and cannot be stopped")
            if app.state == "TERMINATED":
                raise validation(f"Application {app_id} is terminated")
            app.state, app.updated_at = "STOPPED", _now()
        return {}

    def start_job_run(self, region: str, app_id: str, body: dict) -> dict:
        for field in ("clientToken", "executionRoleArn"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise validation(f"{field} is required")
        if not re.fullmatch(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/.+", body["executionRoleArn"]):
            raise validation(f"executionRoleArn {body['executionRoleArn']} is not a valid role ARN")
        role_account = body["executionRoleArn"].split(":")[4]
        if role_account != DEFAULT_ACCOUNT_ID:
            # The caller may pass only roles of its own account (iam:PassRole), as with moto before.
            raise ApiError(403, "AccessDeniedException", f"User: arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/local/emulator "
                           f"is not authorized to perform: iam:PassRole on resource: {body['executionRoleArn']}")
        spark = (body.get("jobDriver") or {}).get("sparkSubmit")
        if not isinstance(spark, dict) or not spark.get("entryPoint"):
            raise validation("jobDriver.sparkSubmit.entryPoint is required")
        name = body.get("name")
        if name is not None and not (isinstance(name, str) and 1 <= len(name) <= 256):
            raise validation("name must be 1-256 characters")
        with self.lock:
            app = self._app(region, app_id)
            for run in self.runs.values():
                if run.app is app and run.client_token == body["clientToken"]:
                    return {"applicationId": app.id, "jobRunId": run.id, "arn": run.arn}
            if app.state == "TERMINATED":
                raise validation(f"Application {app_id} is terminated")
            if app.state != "STARTED":
                if not app.auto_start.get("enabled", True):
                    raise validation(f"Application {app_id} is not started and auto-start is disabled")
                app.state, app.updated_at = "STARTED", _now()
            run = JobRun(app, body)
            self.runs[run.id] = run
        self.log(f"job run {run.id} ({run.name}) SUBMITTED in {app.id}")
        self.publish(self.state_change_event(run, None))
        if self.runner is not None:
            threading.Thread(target=self.runner.run, args=(self, run), name=f"run-{run.id}", daemon=True).start()
        return {"applicationId": app.id, "jobRunId": run.id, "arn": run.arn}

    def get_job_run(self, region: str, app_id: str, run_id: str) -> dict:
        with self.lock:
            return {"jobRun": self._run(region, app_id, run_id).full()}

    def list_job_runs(self, region: str, app_id: str, query: dict[str, list[str]]) -> dict:
        states = query.get("states") or []
        for state in states:
            if state not in JOB_RUN_STATES:
                raise validation(f"1 validation error detected: Value '{state}' at 'states' failed to satisfy constraint")
        try:
            after = _parse_time(query["createdAtAfter"][0]) if "createdAtAfter" in query else None
            before = _parse_time(query["createdAtBefore"][0]) if "createdAtBefore" in query else None
        except ValueError as exc:
            raise validation(f"bad timestamp: {exc}") from exc
        mode = (query.get("mode") or [None])[0]
        with self.lock:
            app = self._app(region, app_id)
            runs = sorted((r for r in self.runs.values() if r.app is app), key=lambda r: r.created_at, reverse=True)
            items = [
                r.summary() for r in runs
                if (not states or r.state in states)
                and (after is None or r.created_at >= after)
                and (before is None or r.created_at <= before)
                and (mode is None or r.mode == mode)
            ]
        page, token = _paginate(items, query)
        out: dict = {"jobRuns": page}
        if token:
            out["nextToken"] = token
        return out

    def cancel_job_run(self, region: str, app_id: str, run_id: str) -> dict:
        with self.lock:
            run = self._run(region, app_id, run_id)
            if run.state in TERMINAL_RUN_STATES:
                raise validation(f"Job run {run_id} is in a terminal state {run.state} and cannot be cancelled")
            already = run.cancel_requested.is_set()
            run.cancel_requested.set()
        if not already:
            if self.runner is None:
                self.set_state(run, "CANCELLING")
                self.set_state(run, "CANCELLED", "Job run cancelled by user")
            else:
                self.set_state(run, "CANCELLING")
                self.runner.cancel(run)
        return {"applicationId": app_id, "jobRunId": run_id}

    # ---- admin

    def admin_set_state(self, body: Any) -> tuple[int, dict]:
        allowed = {"applicationId", "jobRunId", "state", "stateDetails", "attempt", "region", "accountId", "allowUnknownState"}
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        app_id = _field(body, "applicationId", str, required=True)
        run_id = _field(body, "jobRunId", str, required=True)
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
        if state not in JOB_RUN_STATES and not allow_unknown:
            raise ValueError(f"state {state!r} is not one of {', '.join(JOB_RUN_STATES)} (set allowUnknownState to send it anyway)")
        try:
            with self.lock:
                run = self._run(region, app_id, run_id)
                if run.app.account != account:
                    raise not_found(f"application {app_id} not found in account {account}")
        except ApiError as exc:
            return 404, {"message": f"{exc.message} (account {account}, region {region})"}
        self.set_state(run, state, details, attempt)
        with self.lock:
            return 200, run.full()

    def seed_job_run(self, application_id: str, run_id: str, name: str | None, state: str, state_details: str | None = None,
                     attempt: int | None = None, application_name: str = "modelop-default",
                     region: str = DEFAULT_REGION) -> JobRun:
        """Puts a run with the given ids in place, as if it had been started earlier: a replayed
        event (``tests/replay.py``) names fixed ids. The application is created (STARTED) if missing;
        a run with that id is replaced. No state-change event is published."""
        with self.lock:
            app = self._apps(region).get(application_id)
            if app is None:
                app = Application(region, DEFAULT_ACCOUNT_ID, {"name": application_name, "releaseLabel": "emr-7.5.0",
                                                               "type": "SPARK", "clientToken": str(uuid.uuid4())})
                app.id, app.state = application_id, "STARTED"
                self._apps(region)[app.id] = app
            run = JobRun(app, {"name": name, "clientToken": str(uuid.uuid4()),
                               "executionRoleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/modelop-default-job",
                               "jobDriver": {"sparkSubmit": {"entryPoint": "s3://seeded/ModelOpPySparkDriver.py"}}})
            run.id = run_id
            self.runs[run.id] = run
            if state != run.state:
                run.state, run.updated_at = state, _now()
                run.state_times.append((state, run.updated_at))
                run.started_at = run.updated_at if state not in ("SUBMITTED", "PENDING", "QUEUED", "SCHEDULED") else None
                run.ended_at = run.updated_at if state in TERMINAL_RUN_STATES else None
            run.state_details = state_details
            run.attempt = attempt
        return run

    def reset(self) -> None:
        """Forgets every application and run (their spark-submit processes are stopped first)."""
        self.stop_all()
        with self.lock:
            self.apps.clear()
            self.runs.clear()

    def admin_process(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        run_id = (query.get("jobRunId") or [""])[0]
        with self.lock:
            run = self.runs.get(run_id)
        if run is None:
            return 404, {"message": f"job run {run_id} not found"}
        proc = run.process
        return 200, {
            "jobRunId": run_id, "pid": proc.pid if proc else None,
            "alive": bool(proc and proc.poll() is None and _group_alive(proc.pid)),
            "exitCode": proc.poll() if proc else None,
        }

    def stop_all(self) -> None:
        if self.runner is not None:
            with self.lock:
                runs = list(self.runs.values())
            for run in runs:
                self.runner.kill(run)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _field(body: dict, name: str, kinds: Any, default: Any = None, required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return default
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is int):
        raise TypeError(f"{name} must be {getattr(kinds, '__name__', kinds)}, not {type(value).__name__}")
    if isinstance(value, str) and required and not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _paginate(items: list, query: dict[str, list[str]]) -> tuple[list, str | None]:
    try:
        size = int((query.get("maxResults") or [MAX_RESULTS])[0])
    except ValueError as exc:
        raise validation("maxResults must be a number") from exc
    if not 1 <= size <= MAX_RESULTS:
        raise validation(f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_RESULTS}")
    start = 0
    if query.get("nextToken"):
        try:
            start = int(json.loads(base64.urlsafe_b64decode(query["nextToken"][0].encode()))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise validation("Invalid nextToken") from exc
    end = start + size
    token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(items) else None
    return items[start:end], token


# ------------------------------------------------------------------------------------------------
# Execution on local Spark


class SparkRunner:
    """Runs a job run with local spark-submit, with the run's S3 files mirrored to a work dir.

    1. Fetch the entry point, ``--py-files`` and ``--files`` from S3 (moto) into ``<run>/staged/``.
    2. Mirror every ``s3://`` object the job metadata names (inputs and model assets: objects or
       whole prefixes) to ``<run>/s3/<bucket>/<key>`` and rewrite the metadata's ``fileUrl``s (in
       the copy shipped with ``--files``) and the ``s3://`` entry point arguments to those local
       paths. The driver and the model are unchanged; they just see local paths.
    3. ``spark-submit --master local[*]`` with the run's ``--conf``s (minus EMR-only ones), in its
       own process group; driver stdout/stderr go to files.
    4. Upload the driver's stdout/stderr to CloudWatch Logs where EMR Serverless puts them, and
       sync what Spark wrote under the output and results locations back to S3 (no ``.crc``).
    """

    def __init__(self, aws_endpoint: str, work_dir: str, max_concurrent: int = 2, spark_submit: str | None = None,
                 python: str | None = None, region: str = DEFAULT_REGION) -> None:
        import boto3
        from botocore.config import Config

        kwargs = dict(endpoint_url=aws_endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kwargs)
        self.logs = boto3.client("logs", **kwargs)
        self.work_dir = work_dir
        self.slots = threading.Semaphore(max_concurrent)
        self.python = python or sys.executable
        self.spark_submit = spark_submit or os.path.join(os.path.dirname(self.python), "spark-submit")

    # -- S3 helpers

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urllib.parse.urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def _local(self, root: str, uri: str) -> str:
        bucket, key = self._split(uri)
        return os.path.join(root, "s3", bucket, key)

    def _download(self, uri: str, target: str) -> int:
        """An object, or every object under a prefix (a key ending in '/' or with no object)."""
        bucket, key = self._split(uri)
        if key and not key.endswith("/"):
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.s3.download_file(bucket, key, target)
                return 1
            except Exception as exc:  # noqa: BLE001 - maybe a prefix
                if "404" not in str(exc) and "Not Found" not in str(exc):
                    raise
        prefix = key if key.endswith("/") or not key else key + "/"
        count = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                path = os.path.join(target, obj["Key"][len(prefix):])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self.s3.download_file(bucket, obj["Key"], path)
                count += 1
        if count == 0:
            raise FileNotFoundError(f"{uri}: no such object or prefix")
        return count

    def _upload_tree(self, local: str, uri: str) -> list[str]:
        bucket, key = self._split(uri)
        uploaded = []
        if os.path.isfile(local):
            self.s3.upload_file(local, bucket, key)
            return [uri]
        for directory, _dirs, files in os.walk(local):
            for name in sorted(files):
                if name.endswith(".crc"):
                    continue  # local Hadoop checksums; S3 has none
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, local).replace(os.sep, "/")
                target = (key.rstrip("/") + "/" + rel) if key else rel
                self.s3.upload_file(path, bucket, target)
                uploaded.append(f"s3://{bucket}/{target}")
        return uploaded

    # -- the run

    def run(self, emr: EmrServerless, run: JobRun) -> None:
        root = os.path.join(self.work_dir, run.id)
        stdout_path, stderr_path = os.path.join(root, "stdout"), os.path.join(root, "stderr")
        try:
            with self.slots:
                if run.cancel_requested.is_set():
                    return self._cancelled(emr, run)
                os.makedirs(os.path.join(root, "staged"), exist_ok=True)
                command, outputs = self._prepare(emr, run, root)
                if run.cancel_requested.is_set():
                    return self._cancelled(emr, run)
                emr.set_state(run, "SCHEDULED")
                with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                    env = dict(os.environ, PYSPARK_PYTHON=self.python, PYSPARK_DRIVER_PYTHON=self.python)
                    env.pop("PYSPARK_GATEWAY_PORT", None)
                    with emr.lock:
                        if run.cancel_requested.is_set():
                            return self._cancelled(emr, run)
                        run.process = subprocess.Popen(command, cwd=os.path.join(root, "staged"), stdout=out, stderr=err,
                                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
                    emr.log(f"job run {run.id}: pid {run.process.pid}: {shlex.join(command)}")
                    emr.set_state(run, "RUNNING")
                    code = run.process.wait()
                self._upload_logs(emr, run, stdout_path, stderr_path)
                if run.cancel_requested.is_set():
                    return self._cancelled(emr, run)
                if code == 0:
                    for local, uri in outputs:
                        if os.path.exists(local):
                            for written in self._upload_tree(local, uri):
                                emr.log(f"job run {run.id}: wrote {written}")
                    emr.set_state(run, "SUCCESS")
                else:
                    emr.set_state(run, "FAILED", self._failure_details(code, stderr_path))
        except Exception as exc:  # noqa: BLE001 - a run that cannot even start fails, as on EMR
            emr.log(f"job run {run.id}: {traceback.format_exc()}")
            try:
                with open(stderr_path, "ab") as err:
                    err.write(f"emr-serverless emulator: could not run the job: {exc}\n".encode())
                self._upload_logs(emr, run, stdout_path, stderr_path)
            except Exception:  # noqa: BLE001
                pass
            if run.state not in TERMINAL_RUN_STATES:
                emr.set_state(run, "FAILED", f"Job run could not start: {exc}")

    def _cancelled(self, emr: EmrServerless, run: JobRun) -> None:
        if run.state not in TERMINAL_RUN_STATES:
            if run.state != "CANCELLING":
                emr.set_state(run, "CANCELLING")
            emr.set_state(run, "CANCELLED", "Job run cancelled by user")

    @staticmethod
    def _failure_details(code: int, stderr_path: str) -> str:
        details = f"Job failed, please check complete logs in configured logging destination. ExitCode: {code}."
        try:
            with open(stderr_path, "r", errors="replace") as f:
                lines = [l.strip() for l in f.read().splitlines()[-200:]]
            exceptions = [l for l in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*:", l)]
            if exceptions:
                details += " Last few exceptions: " + exceptions[-1]
        except OSError:
            pass
        return details[:STATE_DETAILS_MAX]

    def cancel(self, run: JobRun) -> None:
        """Cancellation: kill the spark-submit process group (the run thread then ends the run)."""
        self.kill(run)

    def kill(self, run: JobRun) -> None:
        proc = run.process
        if proc is None or proc.poll() is not None and not _group_alive(proc.pid):
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if proc.poll() is not None and not _group_alive(proc.pid):
                    return
                time.sleep(0.1)

    def _prepare(self, emr: EmrServerless, run: JobRun, root: str) -> tuple[list[str], list[tuple[str, str]]]:
        spark = run.job_driver["sparkSubmit"]
        staged = os.path.join(root, "staged")

        def fetch(uri: str) -> str:
            if not uri.startswith("s3://"):
                return uri
            local = os.path.join(staged, uri.rstrip("/").rsplit("/", 1)[-1])
            bucket, key = self._split(uri)
            self.s3.download_file(bucket, key, local)
            return local

        entry = fetch(spark["entryPoint"])
        tokens = (spark.get("sparkSubmitParameters") or "").split()
        args: list[str] = []
        py_files: list[str] = []
        files: list[str] = []
        i = 0
        while i < len(tokens):
            flag = tokens[i]
            value = tokens[i + 1] if i + 1 < len(tokens) else ""
            if flag == "--py-files":
                py_files += [fetch(u) for u in value.split(",") if u]
            elif flag == "--files":
                files += [fetch(u) for u in value.split(",") if u]
            elif flag == "--conf":
                key = value.split("=", 1)[0]
                if key in EMR_ONLY_CONF_KEYS or key.startswith(EMR_ONLY_CONF_PREFIXES) or "./environment/" in value:
                    emr.log(f"job run {run.id}: dropping EMR-only conf {value} (local Spark cannot use it)")
                else:
                    args += ["--conf", value]
            elif flag.startswith("--"):
                args += [flag, value]
            else:
                emr.log(f"job run {run.id}: ignoring stray spark-submit token {flag!r}")
                i += 1
                continue
            i += 2

        outputs: list[tuple[str, str]] = []
        for path in files:
            if os.path.basename(path) == "job-metadata.json":
                outputs += self._localize_metadata(path, root)
        entry_args = []
        for arg in spark.get("entryPointArguments") or []:
            if arg.startswith("s3://"):
                local = self._local(root, arg)
                os.makedirs(local if arg.endswith("/") else os.path.dirname(local), exist_ok=True)
                outputs.append((local, arg))
                entry_args.append(local + ("/" if arg.endswith("/") and not local.endswith("/") else ""))
            else:
                entry_args.append(arg)
        command = [self.spark_submit, "--master", "local[*]", "--name", f"emr-serverless-{run.id}"]
        command += ["--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4", *args]
        if py_files:
            command += ["--py-files", ",".join(py_files)]
        if files:
            command += ["--files", ",".join(files)]
        command += [entry, *entry_args]
        return command, outputs

    def _localize_metadata(self, path: str, root: str) -> list[tuple[str, str]]:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
        outputs = []
        for section in ("inputs", "modelAssets", "outputs"):
            for asset in metadata.get(section) or []:
                url = asset.get("fileUrl") if isinstance(asset, dict) else None
                if not isinstance(url, str) or not url.startswith("s3://"):
                    continue
                local = self._local(root, url)
                if section == "outputs":
                    os.makedirs(os.path.dirname(local.rstrip("/")), exist_ok=True)
                    outputs.append((local.rstrip("/"), url))
                else:
                    self._download(url, local.rstrip("/"))
                asset["fileUrl"] = local.rstrip("/") or local
        with open(path, "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=2)
        return outputs

    def _upload_logs(self, emr: EmrServerless, run: JobRun, stdout_path: str, stderr_path: str) -> None:
        config = run.log_config()
        if config is None:
            return
        group = config.get("logGroupName") or "/aws/emr-serverless"
        prefix = config.get("logStreamNamePrefix")
        base = f"applications/{run.app.id}/jobs/{run.id}/SPARK_DRIVER"
        base = f"{prefix}/{base}" if prefix else base
        try:
            self.logs.create_log_group(logGroupName=group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        for name, path in (("stdout", stdout_path), ("stderr", stderr_path)):
            stream = f"{base}/{name}"
            try:
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
            try:
                with open(path, "r", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            now = int(time.time() * 1000)
            batch: list[dict] = []
            size = 0
            for line in lines or []:
                line = line[:200_000] or " "
                batch.append({"timestamp": now, "message": line})
                size += len(line.encode()) + 26
                if len(batch) >= 5000 or size > 800_000:
                    self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                    batch, size = [], 0
            if batch:
                self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        emr.log(f"job run {run.id}: driver logs in {group} {base}/stdout|stderr")


# ------------------------------------------------------------------------------------------------
# HTTP


_APP = re.compile(r"^/applications/(?P<app>[^/]+)$")
_APP_ACTION = re.compile(r"^/applications/(?P<app>[^/]+)/(?P<action>start|stop)$")
_RUNS = re.compile(r"^/applications/(?P<app>[^/]+)/jobruns$")
_RUN = re.compile(r"^/applications/(?P<app>[^/]+)/jobruns/(?P<run>[^/]+)$")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/")


def make_handler(emr: EmrServerless, quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle the body would wait for the client's
        # delayed ACK of the headers (about 40 ms a request).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                sys.stderr.write("emr-serverless: " + (format % args) + "\n")

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            return json.loads(raw) if raw.strip() else None

        def _send(self, status: int, body: Any, error_type: str | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parsed.path)
            query = urllib.parse.parse_qs(parsed.query)
            try:
                body = self._body()
            except ValueError:
                self._send(400, {"message": "request body is not JSON"}, "ValidationException")
                return
            if path == ADMIN or path.startswith(ADMIN + "/"):
                try:
                    status, out = self._admin(method, path, body, query)
                except (ValueError, KeyError, TypeError) as exc:
                    status, out = 400, {"message": f"{type(exc).__name__}: {exc}"}
                self._send(status, out)
                return
            scope = _SCOPE.search(self.headers.get("Authorization", ""))
            region = scope["region"] if scope else DEFAULT_REGION
            try:
                out = self._api(method, path, region, body if isinstance(body, dict) else {}, query)
            except ApiError as exc:
                self._send(exc.status, {"message": exc.message}, exc.code)
                return
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                self._send(500, {"message": str(exc)}, "InternalServerException")
                return
            self._send(200, out)

        def _admin(self, method: str, path: str, body: Any, query: dict) -> tuple[int, Any]:
            route = path[len(ADMIN):]
            if method == "GET" and route == "/health":
                return 200, {"status": "ok", "mode": "manual" if emr.runner is None else "execute"}
            if method == "POST" and route == "/emr-serverless/job-runs/state":
                return emr.admin_set_state(body)
            if method == "GET" and route == "/emr-serverless/job-runs/process":
                return emr.admin_process(query)
            return 404, {"message": f"no admin route {method} {path}"}

        def _api(self, method: str, path: str, region: str, body: dict, query: dict) -> dict:
            if path == "/applications":
                if method == "GET":
                    return emr.list_applications(region, query)
                if method == "POST":
                    return emr.create_application(region, DEFAULT_ACCOUNT_ID, body)
            elif m := _APP.match(path):
                if method == "GET":
                    return emr.get_application(region, m["app"])
            elif m := _APP_ACTION.match(path):
                if method == "POST":
                    action = emr.start_application if m["action"] == "start" else emr.stop_application
                    return action(region, m["app"])
            elif m := _RUNS.match(path):
                if method == "POST":
                    return emr.start_job_run(region, m["app"], body)
                if method == "GET":
                    return emr.list_job_runs(region, m["app"], query)
            elif m := _RUN.match(path):
                if method == "GET":
                    return emr.get_job_run(region, m["app"], m["run"])
                if method == "DELETE":
                    return emr.cancel_job_run(region, m["app"], m["run"])
            raise ApiError(404, "UnknownOperationException", f"no operation {method} {path}")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


class Server:
    """The endpoint, in-process: ``Server(emr).start()``; ``.endpoint``; ``.stop()``."""

    def __init__(self, emr: EmrServerless, port: int = 0, quiet: bool = True) -> None:
        self.emr = emr
        self.httpd = ThreadingHTTPServer((HOST, port), make_handler(emr, quiet))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="emr-serverless")

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.httpd.server_port}"

    def start(self) -> "Server":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.emr.stop_all()


def http_event_sink(url: str) -> EventSink:
    def send(event: dict) -> None:
        request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    return send


def write_ready_file(path: str, line: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".emr-ready-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--execute", action="store_true", help="run job runs on local Spark")
    parser.add_argument("--aws-endpoint", help="S3 and CloudWatch Logs (moto), for --execute")
    parser.add_argument("--work-dir", help="where runs are staged (default: a temporary directory)")
    parser.add_argument("--max-concurrent-runs", type=int, default=2)
    parser.add_argument("--events-url", help="POST each EventBridge event here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.execute and not args.aws_endpoint:
        parser.error("--execute needs --aws-endpoint")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="emr-serverless-")
    runner = SparkRunner(args.aws_endpoint, work_dir, args.max_concurrent_runs) if args.execute else None
    emr = EmrServerless(http_event_sink(args.events_url) if args.events_url else None, runner,
                        log=(lambda m: None) if args.quiet else None)
    server = Server(emr, args.port, args.quiet).start()
    try:
        line = json.dumps({"endpoint": server.endpoint, "pid": os.getpid()})
        write_ready_file(args.ready_file, line)
        print(line, flush=True)
        while not stop.wait(0.5):
            if os.getppid() != _PARENT_PID:
                break
    finally:
        server.stop()
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
