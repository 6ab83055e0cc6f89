"""Replays the sample events of ``events/`` through the compiled functions on a local stack, and
shows what each did. Run it with ``tests/replay.sh``, which installs the venv and builds first.

    tests/replay.sh EVENT.json [EVENT.json ...] [--function submit|monitor|cleanup|bridge]
                    [--via auto|runtime-api|cargo-lambda] [--keep]
    tests/replay.sh --all [--via ...] [--report FILE]

The stack lives in this process, on 127.0.0.1: moto (S3, DynamoDB, CloudWatch Logs), the EMR
Serverless emulator in manual mode (runs stay in the state they are put in), and a proxy in front
of both that records every AWS call the function makes. For each event it resets the stack, seeds
what the sample needs, sends the file's bytes to the function (through ``cargo lambda watch -A 127.0.0.1`` and
``cargo lambda invoke -A 127.0.0.1`` when cargo-lambda is installed, otherwise a cold start behind
``emulator/lambda_runtime_api.py``) and prints the response, the job rows' fields that changed,
the staging objects and job runs that changed, the AWS calls and the function's log. A sample
listed in ``events/expected.json`` is checked against the outcome stated there (events/README.md,
"Expected outcomes"). Exit status: 0 when every check passed, 1 when one failed, 2 on a set-up
problem.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EVENTS = os.path.join(ROOT, "events")
sys.path.insert(0, os.path.join(HERE, "emulator"))
sys.path.insert(0, os.path.join(HERE, "bench"))

import emr_serverless  # noqa: E402
import lambda_runtime_api  # noqa: E402
import model_manage  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402
from jobs_table import create_jobs_table  # noqa: E402
from local_aws import bridge_filter, cleanup_filter, submit_filter  # noqa: E402
from local_stack import plain_item  # noqa: E402

FUNCTIONS = ("submit", "monitor", "cleanup", "bridge")
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The names the samples use (events/generate.py), so the events are replayed byte for byte.
TABLE, BUCKET, PREFIX, APP_NAME = "modelop-jobs", "modelop-staging", "modelop-spark-serverless/", "modelop-default"
LOG_GROUP = "/aws/emr-serverless"
# What submit stages for a sample job: a launched job's folder is seeded with these.
STAGED_FILES = ("ModelOpPySparkDriver.py", "job-metadata.json", "spark_sample_model.py")
FILTERS = {"submit": submit_filter, "cleanup": cleanup_filter, "bridge": bridge_filter}
# The bridge's client secret in Secrets Manager (moto), named by a partial ARN (no random suffix),
# which Secrets Manager accepts, so the ARN stays the same across resets.
BRIDGE_SECRET_NAME = "modelop-client-secret"
BRIDGE_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{BRIDGE_SECRET_NAME}"
# The bridge's scheduled invocation polls model-manage until 5 s before its deadline: with a 6 s
# deadline (and MODELOP_POLL_SECONDS=1) it polls once. The other functions get 60 s.
TIMEOUTS = {"bridge": 6.0}
TICK, CROSS = ("✔", "✘") if (sys.stdout.encoding or "").lower().startswith("utf") else ("ok", "FAIL")


class SetupError(Exception):
    """The replay could not run (not a failed expectation)."""


def function_env(moto_proxy: str) -> dict[str, str]:
    """One environment for the three functions, as the template configures them, pointed at the
    recording proxy. The sweeps' minimum ages are 0 so that freshly seeded rows and folders count."""
    return {
        "AWS_ENDPOINT_URL": moto_proxy, "AWS_ENDPOINT_URL_EMR_SERVERLESS": moto_proxy,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true", "S3_FORCE_PATH_STYLE": "true",
        "JOBS_TABLE": TABLE, "STAGING_BUCKET": BUCKET, "EMR_DEFAULT_APP_NAME": APP_NAME,
        "EMR_RELEASE_VERSION": "emr-7.5.0", "EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/modelop-default-job",
        "EMR_LOG_GROUP": LOG_GROUP, "MONITOR_SWEEP_MIN_AGE_MINUTES": "0", "CLEANUP_ORPHAN_MIN_AGE_HOURS": "0",
        "AWS_LAMBDA_LOG_FORMAT": "JSON", "RUST_LOG": "info",
    }


def bridge_env(mm: "model_manage.Server") -> dict[str, str]:
    """The bridge's settings (the template's MODELOP_*), pointed at the model-manage emulator."""
    return {"MODELOP_GATEWAY_URL": mm.endpoint, "MODELOP_TOKEN_URL": mm.token_url, "MODELOP_CLIENT_ID": "internal-client",
            "MODELOP_CLIENT_SECRET_ARN": BRIDGE_SECRET_ARN, "MODELOP_POLL_SECONDS": "1"}


# ------------------------------------------------------------------------------------------------
# The stack


class Stack:
    """moto and EMR Serverless in this process, behind one recording proxy."""

    def __init__(self) -> None:
        import boto3
        import moto_server
        from botocore.config import Config

        self.moto = moto_server.build_server(0, quiet=True)
        threading.Thread(target=self.moto.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self.moto_endpoint = f"http://127.0.0.1:{self.moto.server_port}"
        moto_server.wait_until_answering(self.moto_endpoint)
        self.emr = emr_serverless.EmrServerless(None, None, log=lambda _m: None)
        self.emr_server = emr_serverless.Server(self.emr).start()
        self.proxy = DelayProxy(self.moto_endpoint, {"emr-serverless": self.emr_server.endpoint}, 0.0).start()
        kwargs = dict(endpoint_url=self.moto_endpoint, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kwargs)
        self.logs = boto3.client("logs", **kwargs)
        self.secrets = boto3.client("secretsmanager", **kwargs)
        self.env = function_env(self.proxy.endpoint)
        # Per function, what it gets beside ``env`` (the bridge: its MODELOP_* settings).
        self.extra_env: dict[str, dict[str, str]] = {}
        self.mm_server: model_manage.Server | None = None

    def start_model_manage(self) -> None:
        """The model-manage emulator, in this process, for the bridge's samples (once)."""
        if self.mm_server is None:
            self.mm_server = model_manage.Server(model_manage.ModelManage()).start()
            self.extra_env["bridge"] = bridge_env(self.mm_server)

    def reset(self, emr_too: bool = True) -> None:
        """An empty world with the table, the bucket and the log group; the proxy's record cleared."""
        request = urllib.request.Request(f"{self.moto_endpoint}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=30).read()
        if emr_too:
            self.emr.reset()
        create_jobs_table(self.dynamodb, TABLE)
        self.s3.create_bucket(Bucket=BUCKET)
        self.logs.create_log_group(logGroupName=LOG_GROUP)
        if self.mm_server is not None:
            self.mm_server.mm.reset()
            self.secrets.create_secret(Name=BRIDGE_SECRET_NAME, SecretString=json.dumps(
                {"client_id": "internal-client", "client_secret": model_manage.DEFAULT_CLIENTS["internal-client"]}))
        self.proxy.reset()

    def stop(self) -> None:
        self.proxy.stop()
        self.emr_server.stop()
        if self.mm_server is not None:
            self.mm_server.stop()
        self.moto.shutdown()
        self.moto.server_close()

    # -- seeding

    def put_row(self, image: dict) -> None:
        self.dynamodb.put_item(TableName=TABLE, Item=image)

    def stage_folder(self, job_id: str, extra: dict[str, str] | None = None) -> None:
        files = {name: "seeded by tests/replay.py" for name in STAGED_FILES}
        files.update(extra or {})
        for name, body in files.items():
            self.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{job_id}/{name}", Body=body.encode())

    def seed_launched(self, row: dict, run_state: str | None = None, state_details: str | None = None,
                      attempt: int | None = None, result: Any = None) -> str:
        """What a launched job's row implies: its run in EMR Serverless (in the state the row last
        recorded, unless told) and its staging folder (with a model result if given). Answers what
        it seeded, or "" for a row without a run."""
        plain = plain_item(row)
        app, run = plain.get("emrApplicationId"), plain.get("sparkApplicationId")
        if not (app and run and plain.get("stagingUri")):
            return ""
        state = run_state or (plain.get("emrState") if plain.get("emrState") in emr_serverless.JOB_RUN_STATES else "RUNNING")
        self.emr.seed_job_run(app, run, plain["id"], state, state_details, attempt)
        self.stage_folder(plain["id"], {"results/result.json": json.dumps(result)} if result is not None else None)
        return f", its run {run} {state}, its staging folder" + (" with results/result.json" if result is not None else "")

    def seed_model_manage(self, document: dict) -> str:
        """A job in model-manage, stored as given (ModelOp Center's own write)."""
        assert self.mm_server is not None, "the model-manage emulator is not started"
        job = self.mm_server.mm.create_job(document, model_manage.SYSTEM_USER, admin=True)
        return f"model-manage job {job['id']} ({job.get('jobStatus')}, version {job.get('version')})"

    def model_manage_jobs(self) -> dict[str, dict]:
        return {} if self.mm_server is None else {job["id"]: job for job in self.mm_server.mm.all_jobs()}

    def model_manage_calls(self) -> dict[str, int]:
        """The requests model-manage (and its token endpoint) answered, by ``METHOD path``, the API
        prefix left out and ids written ``{id}``: ``PATCH jobs/{id}``, ``POST oauth/token``."""
        calls: dict[str, int] = {}
        for request in [] if self.mm_server is None else self.mm_server.mm.requests():
            path = request["path"]
            path = path[len(model_manage.API) + 1:] if path.startswith(model_manage.API + "/") else path.lstrip("/")
            segments = path.split("/")
            if len(segments) == 2 and segments[0] in model_manage.ITEM_SEGMENTS:
                segments[1] = "{id}"
            name = f"{request['method']} {'/'.join(segments)}"
            calls[name] = calls.get(name, 0) + 1
        return calls

    # -- reading back

    def staged_text(self, name: str) -> str | None:
        """``<job id>/<file>`` of the staging prefix, or None when it is not there."""
        try:
            return self.s3.get_object(Bucket=BUCKET, Key=PREFIX + name)["Body"].read().decode("utf-8", "replace")
        except self.s3.exceptions.NoSuchKey:
            return None

    def snapshot(self) -> "Snapshot":
        rows = {}
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
            for item in page["Items"]:
                row = plain_item(item)
                rows[row["id"]] = row
        keys = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys.update(o["Key"] for o in page.get("Contents", []))
        with self.emr.lock:
            runs = {run.id: {"id": run.id, "application": run.app.name, "applicationId": run.app.id, "name": run.name, "state": run.state,
                             "executionRole": run.execution_role,
                             "sparkSubmitParameters": (run.job_driver.get("sparkSubmit") or {}).get("sparkSubmitParameters", "")}
                    for run in self.emr.runs.values()}
        return Snapshot(rows, keys, runs, self.model_manage_jobs())


@dataclass
class Snapshot:
    rows: dict[str, dict]
    keys: set[str]
    runs: dict[str, dict]
    mm_jobs: dict[str, dict] = field(default_factory=dict)  # model-manage's jobs, by id (bridge samples)

    def folder(self, job_id: str) -> list[str]:
        prefix = f"{PREFIX}{job_id}/"
        return sorted(k[len(prefix):] for k in self.keys if k.startswith(prefix))


# ------------------------------------------------------------------------------------------------
# Samples, seeds and the stream filters


def sample_name(path: str) -> str:
    """``submit/insert-batch-job.json`` for a file under events/, else the path as given."""
    full = os.path.abspath(path)
    return os.path.relpath(full, EVENTS) if full.startswith(EVENTS + os.sep) else path


def all_samples() -> list[str]:
    names = []
    for function in FUNCTIONS:
        folder = os.path.join(EVENTS, function)
        names += [f"{function}/{n}" for n in sorted(os.listdir(folder)) if n.endswith(".json")]
    return names


def stream_records(event: Any) -> list[dict]:
    return event.get("Records", []) if isinstance(event, dict) and isinstance(event.get("Records"), list) else []


def images(event: Any) -> list[dict]:
    """The row each readable stream record describes: its NewImage."""
    return [r["dynamodb"]["NewImage"] for r in stream_records(event)
            if isinstance(r, dict) and isinstance(r.get("dynamodb"), dict) and isinstance(r["dynamodb"].get("NewImage"), dict)]


def delivered(function: str, event: Any) -> int | None:
    """How many records the function's stream filter (the template's, as local_aws.py applies it)
    lets through: what AWS would deliver. None for events that are not stream batches."""
    accept = FILTERS.get(function)
    records = stream_records(event)
    if accept is None or not records:
        return None

    def passes(record: Any) -> bool:
        try:
            return bool(accept(record))
        except (AttributeError, TypeError):  # a record without a readable body matches no filter
            return False

    return sum(1 for r in records if passes(r))


def load(sample: str) -> Any:
    with open(os.path.join(EVENTS, sample), encoding="utf-8") as f:
        return json.load(f)


def seed(stack: Stack, event: Any, spec: dict) -> list[str]:
    """Puts in place what the event presumes; answers one line per thing seeded.

    Always: each stream record's NewImage as the row (the row as it stands after the change the
    record describes), and for a launched row its run and staging folder. ``spec`` (from
    expected.json) adds: ``jobsFrom`` (other samples' rows, seeded the same way), ``launched`` (a
    sample's job as submit leaves it once its run started, for the monitor's events) and
    ``orphans`` (staging folders without a row)."""
    notes = []
    rows = list(images(event))
    for sample in spec.get("jobsFrom", []):
        rows += images(load(sample))
    for row in rows:
        stack.put_row(row)
        notes.append(describe_row(row) + stack.seed_launched(row))
    launched = spec.get("launched")
    if launched:
        row = launched_row(images(load(launched["from"]))[0], launched)
        stack.put_row(row)
        notes.append(describe_row(row) + " as submit leaves it" + stack.seed_launched(
            row, launched.get("runState"), launched.get("stateDetails"), launched.get("attempt"), launched.get("result")))
    for orphan in spec.get("orphans", []):
        stack.stage_folder(orphan)
        notes.append(f"staging folder {PREFIX}{orphan}/ without a row")
    for document in spec.get("modelManage", []):
        notes.append(stack.seed_model_manage(document))
    return notes


def launched_row(image: dict, launched: dict) -> dict:
    """A CREATED job's image as submit leaves the row once the run started (see the submit README)."""
    job_id = image["id"]["S"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    history = [{"M": {"status": {"S": "WAITING"}, "at": {"S": now}}},
               {"M": {"status": {"S": "WAITING"}, "emrState": {"S": "SUBMITTED"}, "at": {"S": now}}}]
    return dict(image, jobStatus={"S": "WAITING"}, emrState={"S": "SUBMITTED"}, updatedAt={"S": now},
                jobWaitTime={"N": str(int(time.time() * 1000))},
                sparkApplicationId={"S": launched["jobRunId"]}, emrApplicationId={"S": launched["applicationId"]},
                stagingUri={"S": f"s3://{BUCKET}/{PREFIX}{job_id}/"}, statusHistory={"L": history},
                emrApplicationArchitecture={"S": "X86_64"})


def describe_row(image: dict) -> str:
    return f"job {(image.get('id') or {}).get('S', '?')} ({(image.get('jobStatus') or {}).get('S', '?')})"


# ------------------------------------------------------------------------------------------------
# Invoking the function


@dataclass
class Invocation:
    status: str  # response | error | timeout | crash
    body: Any
    error_type: str | None
    log: str
    seconds: float


def target_dir(given: str | None) -> str:
    if given:
        return given
    return os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug")


class RuntimeApiInvoker:
    """A cold start per event: the binary behind ``lambda_runtime_api.py``, stopped afterwards."""

    via = "runtime-api"

    def __init__(self, bin_dir: str, env: dict[str, str], extra_env: dict[str, dict[str, str]] | None = None) -> None:
        self.bin_dir, self.env, self.extra_env = bin_dir, env, extra_env if extra_env is not None else {}
        for name in FUNCTIONS:
            if not os.access(os.path.join(bin_dir, name), os.X_OK):
                raise SetupError(f"{os.path.join(bin_dir, name)} is not built (tests/build-functions.sh)")

    def describe(self, function: str) -> str:
        return f"a cold start of {os.path.relpath(os.path.join(self.bin_dir, function), ROOT)} behind the Runtime API emulator"

    def invoke(self, function: str, path: str, payload: bytes) -> Invocation:
        started = time.monotonic()
        env = dict(self.env, **self.extra_env.get(function, {}))
        report, _ = lambda_runtime_api.invoke(os.path.join(self.bin_dir, function), [(path, payload)], list(env.items()),
                                              TIMEOUTS.get(function, 60.0))
        seconds = time.monotonic() - started
        log = report["binaryStderr"]
        if not report["invocations"] or report["failure"]:
            why = report["failure"] or "no invocation"
            if report["initError"] is not None:
                why += f": {json.dumps(report['initError'])}"
            return Invocation("crash", why, None, log, seconds)
        inv = report["invocations"][0]
        return Invocation(inv["status"], inv["body"], inv.get("errorType"), log, seconds)

    def stop(self) -> None:
        pass


class CargoLambdaInvoker:
    """``cargo lambda watch -A 127.0.0.1`` (loopback only) with the stack's environment (it builds and
    runs the functions with cargo, and keeps each warm), and one ``cargo lambda invoke -A 127.0.0.1``
    per event."""

    via = "cargo-lambda"

    def __init__(self, env: dict[str, str], log_dir: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env_file = os.path.join(log_dir, "function.env")
        with open(env_file, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in env.items())
        self.log_path = os.path.join(log_dir, "cargo-lambda-watch.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "-A", "127.0.0.1", "--invoke-port", str(self.port),
             "--ignore-changes", "--env-file", env_file],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SetupError(f"cargo lambda watch -A 127.0.0.1 exited with {self.proc.returncode}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SetupError(f"cargo lambda watch -A 127.0.0.1 did not listen within 60 s; see {self.log_path}")
                time.sleep(0.2)

    def describe(self, function: str) -> str:
        return (f"cargo lambda invoke {function} -A 127.0.0.1 --invoke-port {self.port} "
                f"(cargo lambda watch -A 127.0.0.1 --invoke-port {self.port})")

    def invoke(self, function: str, path: str, payload: bytes) -> Invocation:
        offset = os.path.getsize(self.log_path)
        started = time.monotonic()
        # The first invoke of a function waits for cargo to build it (a no-op after `cargo build`).
        out = subprocess.run(["cargo", "lambda", "invoke", function, "-A", "127.0.0.1", "--invoke-port",
                              str(self.port), "--data-file", path, "--output-format", "json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        seconds = time.monotonic() - started
        log = self._log_after(offset)
        if out.returncode == 0:
            try:
                return Invocation("response", json.loads(out.stdout), None, log, seconds)
            except ValueError:
                return Invocation("response", out.stdout.strip(), None, log, seconds)
        return Invocation("error", (out.stderr or out.stdout).strip()[-2000:], None, log, seconds)

    def _log_after(self, offset: int, quiet: float = 0.5, limit: float = 10.0) -> str:
        """Watch's output from ``offset`` once it has settled. The function's last log lines reach
        watch's output after the response, relayed through two processes: on a loaded machine (CI's
        two cores under parallel suites) that took longer than a fixed 0.2 s, and a check on the
        function's log then failed. So wait until the output has not grown for ``quiet`` seconds
        (at most ``limit`` seconds in all)."""
        deadline = time.monotonic() + limit
        size, since = os.path.getsize(self.log_path), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            time.sleep(0.05)
            now = os.path.getsize(self.log_path)
            if now != size:
                size, since = now, time.monotonic()
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def cargo_lambda_installed() -> bool:
    try:
        return subprocess.run(["cargo", "lambda", "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ------------------------------------------------------------------------------------------------
# One replay


@dataclass
class Replay:
    sample: str
    function: str
    seeded: list[str]
    delivered: int | None
    records: int
    invocation: Invocation
    before: Snapshot
    after: Snapshot
    calls: dict[str, int]
    files: dict[str, str | None] = field(default_factory=dict)
    mm_calls: dict[str, int] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def function_of(path: str, given: str | None) -> str:
    if given:
        return given
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    if parent not in FUNCTIONS:
        raise SetupError(f"{path}: the function is not known from its folder; pass --function {'|'.join(FUNCTIONS)}")
    return parent


def replay(stack: Stack, invoker: Any, path: str, function: str, expected: dict | None) -> Replay:
    with open(path, "rb") as f:
        payload = f.read()
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise SetupError(f"{path} is not JSON: {exc}") from exc
    # A warm function (cargo lambda watch -A 127.0.0.1) keeps the application ids it resolved: keep EMR's state.
    stack.reset(emr_too=invoker.via == "runtime-api")
    seeded = seed(stack, event, (expected or {}).get("seed", {}))
    before = stack.snapshot()
    stack.proxy.reset()
    if stack.mm_server is not None:
        stack.mm_server.mm.clear_requests()
    invocation = invoker.invoke(function, path, payload)
    calls = stack.proxy.snapshot()
    result = Replay(sample_name(path), function, seeded, delivered(function, event), len(stream_records(event)),
                    invocation, before, stack.snapshot(), calls, mm_calls=stack.model_manage_calls())
    for name in (expected or {}).get("expect", {}).get("files", {}):
        result.files[name] = stack.staged_text(name)
    if expected is not None:
        result.checks = check(expected.get("expect", {}), result)
    return result


# ------------------------------------------------------------------------------------------------
# Expected outcomes (events/expected.json; the vocabulary is in events/README.md)

MATCHER_KEYS = {"present", "contains", "lacks"}


def matches(actual: Any, expected: Any) -> bool:
    """null means absent; an object whose keys are all matcher keys is a matcher: ``present``
    (bool), ``contains`` / ``lacks`` (a substring of a string, a list element, an object element
    being matched by the fields given, or, in an object, the fields given; a list of these means
    each); anything else must be equal."""
    if expected is None:
        return actual is None
    if not (isinstance(expected, dict) and expected and set(expected) <= MATCHER_KEYS):
        return actual == expected
    ok = True
    if "present" in expected:
        ok &= (actual is not None) == expected["present"]
    for key, want in (("contains", True), ("lacks", False)):
        if key in expected:
            items = expected[key] if isinstance(expected[key], list) else [expected[key]]
            ok &= all(_has(actual, item) == want for item in items)
    return ok


def _has(actual: Any, item: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(item, str) and item in actual
    if isinstance(actual, list):
        return any(_element(e, item) for e in actual)
    if isinstance(actual, dict) and isinstance(item, dict):
        return _element(actual, item)
    return False


def _element(element: Any, item: Any) -> bool:
    if isinstance(item, dict):
        return isinstance(element, dict) and all(element.get(k) == v for k, v in item.items())
    return element == item


def check(expect: dict, r: Replay) -> list[tuple[str, bool, str]]:
    """One (what, passed, what was found) per expectation."""
    out: list[tuple[str, bool, str]] = []

    def add(what: str, ok: bool, found: Any) -> None:
        out.append((what, bool(ok), found if isinstance(found, str) else short(found)))

    unknown = set(expect) - {"status", "response", "delivered", "jobs", "runs", "staging", "files", "calls", "logs",
                             "modelManage", "modelManageCalls"}
    if unknown:
        raise SetupError(f"{r.sample}: unknown expectations {sorted(unknown)}")
    status = expect.get("status", "response")
    add(f"invocation status {status}", r.invocation.status == status, r.invocation.status)
    if "response" in expect:
        add(f"response {short(expect['response'])}", matches(r.invocation.body, expect["response"]), r.invocation.body)
    if "delivered" in expect:
        add(f"stream filter delivers {expect['delivered']} of {r.records}", r.delivered == expect["delivered"], r.delivered)
    for job_id, fields in expect.get("jobs", {}).items():
        row = r.after.rows.get(job_id)
        if fields == "unchanged":
            add(f"job {job_id} unchanged", row is not None and row == r.before.rows.get(job_id), changed_fields(r.before.rows.get(job_id), row))
            continue
        if fields is None:
            add(f"no row for job {job_id}", row is None, "a row")
            continue
        for name, want in fields.items():
            got = None if row is None else row.get(name)
            add(f"job {job_id} {name} {short(want)}", row is not None and matches(got, want), got if row else "no row")
    for job_id, fields in expect.get("modelManage", {}).items():
        job = r.after.mm_jobs.get(job_id)
        if fields == "unchanged":
            add(f"model-manage job {job_id} unchanged", job is not None and job == r.before.mm_jobs.get(job_id),
                changed_fields(r.before.mm_jobs.get(job_id), job))
            continue
        if fields is None:
            add(f"no model-manage job {job_id}", job is None, "a job")
            continue
        for name, want in fields.items():
            got = None if job is None else job.get(name)
            add(f"model-manage job {job_id} {name} {short(want)}", job is not None and matches(got, want), got if job else "no job")
    for job_id, want in expect.get("runs", {}).items():
        runs = [run for run in r.after.runs.values() if run["name"] == job_id]
        if want is None:
            add(f"no run for job {job_id}", not runs, [run["state"] for run in runs])
            continue
        add(f"one run for job {job_id}", len(runs) == 1, f"{len(runs)} runs")
        row = r.after.rows.get(job_id) or {}
        if runs and "sparkApplicationId" in row:
            recorded = (row.get("emrApplicationId"), row["sparkApplicationId"])
            add(f"job {job_id} records that run", recorded == (runs[0]["applicationId"], runs[0]["id"]), recorded)
        for name, value in want.items():
            got = runs[0].get(name) if runs else None
            add(f"run of {job_id} {name} {short(value)}", bool(runs) and matches(got, value), got)
    for job_id, want in expect.get("staging", {}).items():
        before, after = r.before.folder(job_id), r.after.folder(job_id)
        found = f"{len(before)} → {len(after)} objects"
        if want == "emptied":
            add(f"staging folder of {job_id} emptied", bool(before) and not after, found)
        elif want == "kept":
            add(f"staging folder of {job_id} kept", bool(before) and after == before, found)
        else:
            add(f"staging folder of {job_id} {short(want)}", matches(after, want), after)
    for name, want in expect.get("files", {}).items():
        text = r.files.get(name)
        add(f"staged {name} {short(want)}", text is not None and matches(text, want), "missing" if text is None else "not so")
    calls = expect.get("calls", {})
    if "total" in calls:
        add(f"{calls['total']} AWS calls", sum(r.calls.values()) == calls["total"], calls_line(r.calls))
    for operation in calls.get("include", []):
        add(f"calls {operation}", r.calls.get(operation, 0) > 0, r.calls.get(operation, 0))
    for operation in calls.get("exclude", []):
        add(f"no {operation}", r.calls.get(operation, 0) == 0, r.calls.get(operation, 0))
    mm_calls = expect.get("modelManageCalls", {})
    if "total" in mm_calls:
        add(f"{mm_calls['total']} model-manage requests", sum(r.mm_calls.values()) == mm_calls["total"], calls_line(r.mm_calls))
    for operation in mm_calls.get("include", []):
        add(f"model-manage {operation}", r.mm_calls.get(operation, 0) > 0, r.mm_calls.get(operation, 0))
    for operation in mm_calls.get("exclude", []):
        add(f"no model-manage {operation}", r.mm_calls.get(operation, 0) == 0, r.mm_calls.get(operation, 0))
    if "logs" in expect:
        add(f"function log {short(expect['logs'])}", matches(r.invocation.log, expect["logs"]), "not so")
    return out


# ------------------------------------------------------------------------------------------------
# What changed, for people


def short(value: Any, width: int = 90) -> str:
    text = value if isinstance(value, str) and not value.startswith(("{", "[")) else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def changed_fields(before: dict | None, after: dict | None, width: int = 90) -> list[str]:
    """``field: old → new`` per top-level field that differs (``+`` added, ``-`` removed)."""
    if before is None and after is None:
        return []
    if before is None:
        return ["(new row)"]
    if after is None:
        return ["(row deleted)"]
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None:
            lines.append(f"{name}: + {short(new, width)}")
        elif new is None:
            lines.append(f"{name}: - {short(old, width)}")
        elif isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old:
            lines.append(f"{name}: + {short(new[len(old):], width)}")
        else:
            lines.append(f"{name}: {short(old, width // 2)} → {short(new, width)}")
    return lines


def folder_changes(r: Replay) -> list[str]:
    jobs = sorted({k[len(PREFIX):].split("/", 1)[0] for k in r.before.keys | r.after.keys if k.startswith(PREFIX)})
    lines = []
    for job_id in jobs:
        before, after = set(r.before.folder(job_id)), set(r.after.folder(job_id))
        if before == after:
            continue
        added, removed = sorted(after - before), sorted(before - after)
        parts = ([f"+{len(added)} ({', '.join(added)})"] if added else []) + ([f"-{len(removed)}"] if removed else [])
        emptied = " (emptied)" if before and not after else ""
        lines.append(f"{PREFIX}{job_id}/: {' '.join(parts)}{emptied}")
    return lines


def run_changes(r: Replay) -> list[str]:
    lines = []
    for run_id, run in r.after.runs.items():
        old = r.before.runs.get(run_id)
        where = f"{run_id} ({run['name']}) on {run['application']}"
        if old is None:
            lines.append(f"+ {where}: {run['state']}; sparkSubmitParameters {run['sparkSubmitParameters']}")
        elif old["state"] != run["state"]:
            lines.append(f"{where}: {old['state']} → {run['state']}")
    return lines


# What `cargo lambda watch -A 127.0.0.1` adds to a function's output and Lambda would not: cargo's own lines as it builds and starts
# the function, and lambda_runtime's warning about the AWS_LAMBDA_MAX_CONCURRENCY that watch sets.
WATCH_NOISE = re.compile(r"^\s*(Compiling|Finished|Running|Blocking waiting|Building) |AWS_LAMBDA_MAX_CONCURRENCY is set to")


def log_lines(text: str) -> list[str]:
    """The function's JSON log lines as ``LEVEL message key=value``; other lines as they are (but for
    ``cargo lambda watch -A 127.0.0.1``'s own, :data:`WATCH_NOISE`)."""
    out = []
    for line in text.splitlines():
        if not line.strip() or WATCH_NOISE.search(line):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if not isinstance(entry, dict):
            out.append(line)
            continue
        fields = dict(entry.get("fields") or {})
        message = fields.pop("message", "")
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        out.append(f"{entry.get('level', ''):<5} {message} {extra}".rstrip())
    return out


def calls_line(calls: dict[str, int]) -> str:
    total = sum(calls.values())
    return f"{total}: " + ", ".join(f"{op} ×{n}" for op, n in calls.items()) if calls else "none"


def summary(r: Replay) -> str:
    """The outcome in one line."""
    parts = []
    if r.invocation.status != "response":
        parts.append(f"{r.invocation.status}: {short(r.invocation.body, 60)}")
    elif r.invocation.body is not None:
        parts.append(short(r.invocation.body, 60))
    for job_id in sorted(set(r.before.rows) | set(r.after.rows)):
        old, new = r.before.rows.get(job_id) or {}, r.after.rows.get(job_id) or {}
        if old == new:
            continue
        if old.get("jobStatus") == new.get("jobStatus"):
            fields = [n for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]
            parts.append(f"{job_id[:8]} {new.get('jobStatus')} ({', '.join(fields)})")
        else:
            parts.append(f"{job_id[:8]} {old.get('jobStatus', '-')}→{new.get('jobStatus', '-')}")
    for job_id in sorted(set(r.before.mm_jobs) | set(r.after.mm_jobs)):
        old, new = r.before.mm_jobs.get(job_id) or {}, r.after.mm_jobs.get(job_id) or {}
        if old != new:
            parts.append(f"model-manage {job_id[:8]} {old.get('jobStatus', '-')}→{new.get('jobStatus', '-')}")
    if r.mm_calls:
        parts.append(f"{sum(r.mm_calls.values())} model-manage requests")
    started = sum(1 for run_id in r.after.runs if run_id not in r.before.runs)
    if started:
        parts.append(f"{started} run(s) started")
    parts += [f"run {run_id} {r.before.runs[run_id]['state']}→{run['state']}" for run_id, run in r.after.runs.items()
              if run_id in r.before.runs and r.before.runs[run_id]["state"] != run["state"]]
    emptied = sum(1 for line in folder_changes(r) if line.endswith("(emptied)"))
    if emptied:
        parts.append(f"{emptied} folder(s) emptied")
    if r.before == r.after:
        parts.append("nothing changed")
    parts.append(f"{sum(r.calls.values())} AWS calls")
    return "; ".join(parts)


def print_replay(r: Replay, invoker: Any) -> None:
    print(f"{r.sample} → {r.function}, through {invoker.describe(r.function)}")
    for note in r.seeded or ["nothing"]:
        print(f"  seeded: {note}")
    if r.delivered is not None:
        note = "" if r.delivered == r.records else " (the rest would never reach the function in AWS; replayed anyway)"
        print(f"  the stream filter delivers {r.delivered} of {r.records} record(s){note}")
    print(f"\nResponse ({r.invocation.status}, {r.invocation.seconds:.2f} s):")
    body = r.invocation.body
    print("  " + (json.dumps(body) if not isinstance(body, str) else body))
    changed = [(j, changed_fields(r.before.rows.get(j), r.after.rows.get(j), 200)) for j in sorted(set(r.before.rows) | set(r.after.rows))]
    changed = [(j, lines) for j, lines in changed if lines]
    print("\nJob rows, fields that changed:" if changed else "\nJob rows: unchanged")
    for job_id, lines in changed:
        print(f"  {job_id}")
        for line in lines:
            print(f"    {line}")
    for title, lines in (("Staging objects", folder_changes(r)), ("EMR Serverless job runs", run_changes(r))):
        print(f"\n{title}:" + ("" if lines else " unchanged"))
        for line in lines:
            print(f"  {line}")
    mm_changed = [(j, changed_fields(r.before.mm_jobs.get(j), r.after.mm_jobs.get(j), 200))
                  for j in sorted(set(r.before.mm_jobs) | set(r.after.mm_jobs))]
    mm_changed = [(j, lines) for j, lines in mm_changed if lines]
    if r.before.mm_jobs or r.after.mm_jobs:
        print("\nmodel-manage jobs, fields that changed:" if mm_changed else "\nmodel-manage jobs: unchanged")
        for job_id, lines in mm_changed:
            print(f"  {job_id}")
            for line in lines:
                print(f"    {line}")
    print(f"\nAWS calls made by the function ({calls_line(r.calls)})")
    if r.function == "bridge":
        print(f"model-manage requests ({calls_line(r.mm_calls)})")
    print("\nFunction log:")
    for line in log_lines(r.invocation.log)[-40:]:
        print(f"  {line[:240]}")
    if r.checks:
        failed = [c for c in r.checks if not c[1]]
        print(f"\nExpected outcome (events/expected.json): {len(r.checks) - len(failed)} of {len(r.checks)} checks passed")
        for what, ok, found in r.checks:
            print(f"  {TICK if ok else CROSS} {what}" + ("" if ok else f" (found {found})"))
    else:
        print("\nNo expected outcome is stated for this event in events/expected.json.")
    print()


def report_entry(r: Replay, via: str) -> dict:
    return {
        "sample": r.sample, "function": r.function, "via": via, "status": r.invocation.status, "body": r.invocation.body,
        "seconds": round(r.invocation.seconds, 3), "delivered": r.delivered, "records": r.records, "seeded": r.seeded,
        "rows": {j: changed_fields(r.before.rows.get(j), r.after.rows.get(j)) for j in sorted(set(r.before.rows) | set(r.after.rows))},
        "after": r.after.rows, "modelManage": r.after.mm_jobs, "modelManageCalls": r.mm_calls, "staging": folder_changes(r), "runs": run_changes(r), "calls": r.calls, "ok": r.ok,
        "checks": [{"what": what, "ok": ok, "found": found} for what, ok, found in r.checks],
    }


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", nargs="*", metavar="EVENT.json", help="event files (a sample of events/ or your own)")
    parser.add_argument("--all", action="store_true", help="replay every sample of events/, one line each")
    parser.add_argument("--function", choices=FUNCTIONS, help="the function, when the file is not in events/<function>/")
    parser.add_argument("--via", choices=("auto", "runtime-api", "cargo-lambda"), default="auto",
                        help="cargo-lambda when installed (auto), or the project's Runtime API emulator")
    parser.add_argument("--expected", default=os.path.join(EVENTS, "expected.json"), help="the expected outcomes")
    parser.add_argument("--report", metavar="FILE", help="also write every outcome and check as JSON")
    parser.add_argument("--target-dir", help="where the binaries are (default: $CARGO_TARGET_DIR/debug or target/debug)")
    parser.add_argument("--keep", action="store_true", help="keep the stack running afterwards, to look at it, until Ctrl-C")
    args = parser.parse_args(argv)
    if args.all == bool(args.events):
        parser.error("give event files, or --all")
    paths = [os.path.join(EVENTS, s) for s in all_samples()] if args.all else args.events
    for path in paths:
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    with open(args.expected, encoding="utf-8") as f:
        expected = json.load(f)

    signal.signal(signal.SIGTERM, stop_on_term)
    started = time.monotonic()
    log_dir = tempfile.mkdtemp(prefix="replay-")
    stack = invoker = None
    results: list[Replay] = []
    try:
        functions = [function_of(path, args.function) for path in paths]
        via = args.via if args.via != "auto" else ("cargo-lambda" if cargo_lambda_installed() else "runtime-api")
        stack = Stack()
        if "bridge" in functions:
            stack.start_model_manage()
        if via == "cargo-lambda":
            # One environment for every function under cargo lambda watch -A 127.0.0.1: the bridge's settings too.
            invoker = CargoLambdaInvoker(dict(stack.env, **stack.extra_env.get("bridge", {})), log_dir)
        else:
            invoker = RuntimeApiInvoker(target_dir(args.target_dir), stack.env, stack.extra_env)
        if args.all:
            print(f"Replaying {len(paths)} samples through {invoker.via} (moto {stack.moto_endpoint}, "
                  f"EMR Serverless {stack.emr_server.endpoint}, calls recorded by {stack.proxy.endpoint})")
        for path, function in zip(paths, functions):
            r = replay(stack, invoker, path, function, expected.get(sample_name(path)))
            results.append(r)
            if args.all:
                mark = "-" if not r.checks else TICK if r.ok else CROSS
                print(f"{mark} {r.sample:<40} {r.function:<8} {summary(r)}", flush=True)
                for what, ok, found in r.checks:
                    if not ok:
                        print(f"      expected {what}, found {found}")
            else:
                print_replay(r, invoker)
        if args.report:
            with open(args.report, "w", encoding="utf-8") as f:
                json.dump([report_entry(r, invoker.via) for r in results], f, indent=2, sort_keys=True)
        failed = [r for r in results if not r.ok]
        checked = sum(1 for r in results if r.checks)
        print(f"{len(results)} event(s) replayed through {invoker.via}, {checked - len(failed)} of {checked} as expected "
              f"in {time.monotonic() - started:.1f} s")
        if args.keep:
            keep_running(stack)
        return 1 if failed else 0
    except SetupError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if invoker is not None:
            invoker.stop()
        if stack is not None:
            stack.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


def stop_on_term(signum: int, _frame: Any) -> None:
    """SIGTERM stops the replay as Ctrl-C does, so that what it started (cargo lambda watch -A 127.0.0.1) stops too."""
    raise KeyboardInterrupt(f"signal {signum}")


def keep_running(stack: Stack) -> None:
    print(f"\nThe stack stays up until Ctrl-C. From another terminal:\n"
          f"  export AWS_ENDPOINT_URL={stack.moto_endpoint} AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION} "
          f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n"
          f"  aws --endpoint-url $AWS_ENDPOINT_URL dynamodb scan --table-name {TABLE}\n"
          f"  aws --endpoint-url $AWS_ENDPOINT_URL s3 ls --recursive s3://{BUCKET}/\n"
          f"  aws --endpoint-url {stack.emr_server.endpoint} emr-serverless list-applications", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
