"""Tests of the EMR Serverless emulator (emr_serverless.py), checked with boto3 (botocore's model of
the real API: a shape it cannot parse fails here). The Rust SDK's acceptance of the same shapes
is shown by the Rust integration tests, which all run against this endpoint.

    .venv/bin/python -m pytest -q tests/emulator/test_emr_serverless.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import emr_serverless  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/job"
STATE_ROUTE = "/_emulator/emr-serverless/job-runs/state"


class Events:
    def __init__(self) -> None:
        self.items: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self.lock:
            self.items.append(event)

    def states(self, run_id: str) -> list[str]:
        with self.lock:
            return [e["detail"]["state"] for e in self.items
                    if e["detail"]["jobRunId"] == run_id and e["detail-type"] == "EMR Serverless Job Run State Change"]


@pytest.fixture(scope="module")
def server():
    events = Events()
    srv = emr_serverless.Server(emr_serverless.EmrServerless(events, log=lambda _m: None)).start()
    srv.events = events
    yield srv
    srv.stop()


def client(endpoint: str, region: str = "us-east-1"):
    return boto3.client("emr-serverless", endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def emr(server):
    return client(server.endpoint)


def new_app(emr, name="app", **kwargs) -> str:
    return emr.create_application(name=name, releaseLabel="emr-7.5.0", type="SPARK", **kwargs)["applicationId"]


def new_run(emr, app: str, name="job", **kwargs) -> str:
    return emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name=name,
                             jobDriver={"sparkSubmit": {"entryPoint": "s3://bucket/driver.py"}}, **kwargs)["jobRunId"]


def error_code(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def post(endpoint: str, path: str, body: object) -> tuple[int, dict]:
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


# ---- API shapes and behaviour


def test_application_lifecycle_and_shapes(emr):
    app = new_app(emr, "lifecycle", autoStopConfiguration={"enabled": True, "idleTimeoutMinutes": 15}, tags={"k": "v"})
    got = emr.get_application(applicationId=app)["application"]
    assert got["applicationId"] == app and got["name"] == "lifecycle" and got["state"] == "CREATED"
    assert got["arn"] == f"arn:aws:emr-serverless:us-east-1:123456789012:/applications/{app}"
    assert got["tags"] == {"k": "v"} and got["autoStopConfiguration"]["idleTimeoutMinutes"] == 15
    assert isinstance(got["createdAt"], dt.datetime)
    emr.start_application(applicationId=app)
    assert emr.get_application(applicationId=app)["application"]["state"] == "STARTED"
    emr.stop_application(applicationId=app)
    assert emr.get_application(applicationId=app)["application"]["state"] == "STOPPED"
    # StartJobRun auto-starts a stopped application.
    new_run(emr, app)
    assert emr.get_application(applicationId=app)["application"]["state"] == "STARTED"
    # ... which then cannot be stopped while the run is live.
    assert error_code(lambda: emr.stop_application(applicationId=app)) == ("ValidationException", 400)
    listed = [a for a in emr.list_applications(states=["STARTED"])["applications"] if a["id"] == app]
    assert listed and listed[0]["name"] == "lifecycle"
    assert not [a for a in emr.list_applications(states=["STOPPED"])["applications"] if a["id"] == app]


def test_job_run_shapes_and_list_filters(server, emr):
    app = new_app(emr, "runs")
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    run = new_run(emr, app, "run-a", tags={"modelop:jobId": "run-a"}, configurationOverrides={
        "monitoringConfiguration": {"cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": "/g", "logStreamNamePrefix": "run-a"}}})
    job_run = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert (job_run["jobRunId"], job_run["name"], job_run["state"], job_run["executionRole"]) == (run, "run-a", "SUBMITTED", ROLE)
    assert job_run["tags"] == {"modelop:jobId": "run-a"}
    assert job_run["jobDriver"]["sparkSubmit"]["entryPoint"] == "s3://bucket/driver.py"
    assert job_run["configurationOverrides"]["monitoringConfiguration"]["cloudWatchLoggingConfiguration"]["logGroupName"] == "/g"
    runs = emr.list_job_runs(applicationId=app, createdAtAfter=before)["jobRuns"]
    assert [r["id"] for r in runs] == [run] and runs[0]["name"] == "run-a"
    assert emr.list_job_runs(applicationId=app, createdAtAfter=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1))["jobRuns"] == []
    assert emr.list_job_runs(applicationId=app, states=["RUNNING"])["jobRuns"] == []
    assert [r["id"] for r in emr.list_job_runs(applicationId=app, states=["SUBMITTED"])["jobRuns"]] == [run]
    # A new application has no runs: an empty list, not an error.
    assert emr.list_job_runs(applicationId=new_app(emr, "empty"))["jobRuns"] == []
    # The SUBMITTED event, in EventBridge's shape, named after the run.
    event = [e for e in server.events.items if e["detail"]["jobRunId"] == run][0]
    assert event["detail-type"] == "EMR Serverless Job Run State Change" and event["source"] == "aws.emr-serverless"
    assert (event["detail"]["state"], event["detail"]["jobRunName"], event["detail"]["applicationId"]) == ("SUBMITTED", "run-a", app)
    assert "previousState" not in event["detail"]


def test_pagination(emr):
    app = new_app(emr, "paged")
    runs = {new_run(emr, app, f"r{i}") for i in range(7)}
    first = emr.list_job_runs(applicationId=app, maxResults=3)
    assert len(first["jobRuns"]) == 3 and first["nextToken"]
    seen = [r["id"] for page in emr.get_paginator("list_job_runs").paginate(applicationId=app, PaginationConfig={"PageSize": 3})
            for r in page["jobRuns"]]
    assert sorted(seen) == sorted(runs)
    assert "nextToken" not in emr.list_job_runs(applicationId=app, maxResults=50)
    assert error_code(lambda: emr.list_job_runs(applicationId=app, nextToken="garbage")) == ("ValidationException", 400)
    for i in range(3):
        new_app(emr, f"paged-app-{i}")
    apps = [a for page in emr.get_paginator("list_applications").paginate(PaginationConfig={"PageSize": 2}) for a in page["applications"]]
    assert len(apps) == len({a["id"] for a in apps}) >= 4


def test_client_token_idempotency(emr):
    app = emr.create_application(name="idem", releaseLabel="emr-7.5.0", type="SPARK", clientToken="app-token-1")["applicationId"]
    again = emr.create_application(name="idem", releaseLabel="emr-7.5.0", type="SPARK", clientToken="app-token-1")["applicationId"]
    assert again == app
    assert error_code(lambda: emr.create_application(name="other", releaseLabel="emr-7.5.0", type="SPARK", clientToken="app-token-1")) == ("ConflictException", 409)
    run = new_run(emr, app, "job-1", clientToken="job-1")
    assert new_run(emr, app, "job-1", clientToken="job-1") == run
    assert new_run(emr, app, "job-1", clientToken="job-2") != run
    assert len(emr.list_job_runs(applicationId=app)["jobRuns"]) == 2


def test_unknown_ids_are_resource_not_found(emr):
    app = new_app(emr, "known")
    run = new_run(emr, app)
    nf = ("ResourceNotFoundException", 404)
    assert error_code(lambda: emr.get_application(applicationId="00fnosuchapp0000")) == nf
    assert error_code(lambda: emr.start_application(applicationId="00fnosuchapp0000")) == nf
    assert error_code(lambda: emr.stop_application(applicationId="00fnosuchapp0000")) == nf
    assert error_code(lambda: new_run(emr, "00fnosuchapp0000")) == nf
    assert error_code(lambda: emr.get_job_run(applicationId=app, jobRunId="00fnosuchrun0000")) == nf
    assert error_code(lambda: emr.cancel_job_run(applicationId=app, jobRunId="00fnosuchrun0000")) == nf
    assert error_code(lambda: emr.get_job_run(applicationId=new_app(emr, "other"), jobRunId=run)) == nf
    # Resources are per region.
    assert error_code(lambda: client(emr.meta.endpoint_url, "eu-west-1").get_application(applicationId=app)) == nf


def test_validation_and_access_errors(emr):
    app = new_app(emr, "invalid")
    assert error_code(lambda: emr.create_application(name="x", releaseLabel="7.5.0", type="SPARK")) == ("ValidationException", 400)
    assert error_code(lambda: emr.start_job_run(applicationId=app, executionRoleArn="arn:aws:iam::123456789012:user/not-a-role", jobDriver={"sparkSubmit": {"entryPoint": "s3://b/d.py"}})) == ("ValidationException", 400)
    assert error_code(lambda: emr.list_applications(states=["RUNNING"])) == ("ValidationException", 400)
    other_account = "arn:aws:iam::999999999999:role/elsewhere"
    code = error_code(lambda: emr.start_job_run(applicationId=app, executionRoleArn=other_account,
                                                jobDriver={"sparkSubmit": {"entryPoint": "s3://b/d.py"}}))
    assert code == ("AccessDeniedException", 403)


def test_cancel_in_manual_mode(server, emr):
    app = new_app(emr, "cancel")
    run = new_run(emr, app)
    assert emr.cancel_job_run(applicationId=app, jobRunId=run)["jobRunId"] == run
    job_run = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert job_run["state"] == "CANCELLED" and "endedAt" in job_run
    assert server.events.states(run) == ["SUBMITTED", "CANCELLING", "CANCELLED"]
    # A run that is over cannot be cancelled (the functions treat this as done).
    assert error_code(lambda: emr.cancel_job_run(applicationId=app, jobRunId=run)) == ("ValidationException", 400)


# ---- the run-state admin route (formerly moto_server.py's)


def test_admin_route_moves_runs_and_emits_events(server, emr):
    app = new_app(emr, "admin")
    run = new_run(emr, app, "admin-job")
    status, body = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING"})
    assert status == 200, body
    assert (body["applicationId"], body["jobRunId"], body["state"]) == (app, run, "RUNNING")
    running = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert running["state"] == "RUNNING" and running["stateDetails"] == "" and "attempt" not in running
    assert running["updatedAt"] >= running["createdAt"]

    details = "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
    status, body = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": details,
                                                        "attempt": 2, "region": "us-east-1", "accountId": "123456789012"})
    assert status == 200, body
    failed = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert (failed["state"], failed["stateDetails"], failed["attempt"]) == ("FAILED", details, 2)
    summary = emr.list_job_runs(applicationId=app)["jobRuns"][0]
    assert (summary["state"], summary["stateDetails"]) == ("FAILED", details)

    status, _ = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "CANCELLED", "stateDetails": None})
    assert status == 200
    cancelled = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert (cancelled["state"], cancelled["stateDetails"], cancelled["attempt"]) == ("CANCELLED", "", 2)
    assert server.events.states(run) == ["SUBMITTED", "RUNNING", "FAILED", "CANCELLED"]
    last = [e for e in server.events.items if e["detail"]["jobRunId"] == run][-1]["detail"]
    assert (last["previousState"], last["jobRunName"]) == ("FAILED", "admin-job")


def test_seeded_runs_keep_their_ids_and_reset_forgets_them():
    """What tests/replay.py does: a run with the fixed ids a sample event names, read back as GetJobRun shows it."""
    events = Events()
    service = emr_serverless.EmrServerless(events, log=lambda _m: None)
    srv = emr_serverless.Server(service).start()
    try:
        emr = client(srv.endpoint)
        service.seed_job_run("00fmonitorapp0001", "00fmonitorrun0001", "job-1", "FAILED", "ExitCode: 1.", attempt=2)
        run = emr.get_job_run(applicationId="00fmonitorapp0001", jobRunId="00fmonitorrun0001")["jobRun"]
        assert (run["name"], run["state"], run["stateDetails"], run["attempt"]) == ("job-1", "FAILED", "ExitCode: 1.", 2)
        assert "endedAt" in run
        assert emr.get_application(applicationId="00fmonitorapp0001")["application"]["name"] == "modelop-default"
        # Seeding the same id again replaces the run; a live seeded run can be cancelled.
        service.seed_job_run("00fmonitorapp0001", "00fmonitorrun0001", "job-1", "RUNNING")
        assert [r["state"] for r in emr.list_job_runs(applicationId="00fmonitorapp0001")["jobRuns"]] == ["RUNNING"]
        emr.cancel_job_run(applicationId="00fmonitorapp0001", jobRunId="00fmonitorrun0001")
        assert emr.get_job_run(applicationId="00fmonitorapp0001", jobRunId="00fmonitorrun0001")["jobRun"]["state"] == "CANCELLED"
        assert events.states("00fmonitorrun0001") == ["CANCELLING", "CANCELLED"], "seeding publishes no event"
        service.reset()
        assert emr.list_applications()["applications"] == []
        assert error_code(lambda: emr.get_job_run(applicationId="00fmonitorapp0001", jobRunId="00fmonitorrun0001")) == \
            ("ResourceNotFoundException", 404)
    finally:
        srv.stop()


def test_admin_route_errors(server, emr):
    app = new_app(emr, "admin-errors")
    run = new_run(emr, app)
    for body, want in (
        ({"applicationId": app, "jobRunId": "00fnosuchrun0000", "state": "RUNNING"}, 404),
        ({"applicationId": "00fnosuchapp0000", "jobRunId": run, "state": "RUNNING"}, 404),
        ({"applicationId": app, "jobRunId": run, "state": "RUNNING", "region": "eu-west-1"}, 404),
        (None, 400),
        ([app, run, "RUNNING"], 400),
        ({"jobRunId": run, "state": "RUNNING"}, 400),
        ({"applicationId": app, "jobRunId": run}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "DONE"}, 400),
        ({"applicationId": app, "jobRunId": run, "state": 3}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": {"a": 1}}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": "2"}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": True}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": 0}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "RUNNING", "accountId": "42"}, 400),
        ({"applicationId": app, "jobRunId": run, "state": "RUNNING", "jobRunState": "RUNNING"}, 400),
    ):
        status, answer = post(server.endpoint, STATE_ROUTE, body)
        assert status == want, (body, answer)
        assert isinstance(answer["message"], str)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "SUBMITTED"
    status, _ = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "HIBERNATING"})
    assert status == 400
    status, _ = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "HIBERNATING", "allowUnknownState": True})
    assert status == 200
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "HIBERNATING"


# ---- the command line


def test_cli_ready_file_health_and_sigterm():
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready.json")
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "emr_serverless.py"), "--ready-file", ready, "--quiet"],
                                stdout=subprocess.PIPE, text=True)
        try:
            line = json.loads(proc.stdout.readline())
            with open(ready) as f:
                assert json.load(f) == line
            assert line["endpoint"].startswith("http://127.0.0.1:") and line["pid"] == proc.pid
            with urllib.request.urlopen(line["endpoint"] + "/_emulator/health") as r:
                assert json.load(r) == {"status": "ok", "mode": "manual"}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


# ---- run controls: helpers for execute mode without Spark
#
# The runner is the real SparkRunner with a stand-in for spark-submit (FAKE_SPARK_SUBMIT below), so
# a run's process, its signals, its exit code, its logs in moto's CloudWatch Logs and its attempts'
# directories are all real, in a fraction of a second instead of a JVM start.

FAKE_SPARK_SUBMIT = r'''
import json, os, signal, sys, time

# What to do, from the run's entry point arguments: behaviour={"exit": [codes by attempt],
# "sleep": s, "term": s (on SIGTERM: "clean up" for s seconds, then exit 143), "ignore_term": bool}.
spec = json.loads(next(a for a in sys.argv if a.startswith("behaviour="))[len("behaviour="):])
# The attempt, from the directory the runner starts it in: <run>/staged or <run>/attempts/<n>/staged.
parts = os.getcwd().split(os.sep)
attempt = int(parts[-2]) if len(parts) >= 3 and parts[-3] == "attempts" else 1
print(f"attempt {attempt} stdout", flush=True)
print(f"attempt {attempt} stderr", file=sys.stderr, flush=True)
if spec.get("term") is not None:
    def on_term(*_):
        print("SIGTERM: cleaning up", flush=True)
        time.sleep(spec["term"])
        print("cleaned up", flush=True)
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_term)
if spec.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
deadline = time.monotonic() + spec.get("sleep", 0)
while time.monotonic() < deadline:
    time.sleep(0.02)
# "open": the metadata sections whose assets the "model" opens (as a model reads its inputs): a
# missing one fails as Spark does, with the driver's model error record in the results folder.
for section in spec.get("open", []):
    meta_path = next(p for p in sys.argv[sys.argv.index("--files") + 1].split(",") if p.endswith("job-metadata.json"))
    with open(meta_path) as f:
        assets = json.load(f)[section]
    for asset in assets:
        if not os.path.exists(asset["fileUrl"]):
            message = f"[PATH_NOT_FOUND] Path does not exist: file:{asset['fileUrl']}."
            print(f"pyspark.errors.exceptions.captured.AnalysisException: {message}", file=sys.stderr, flush=True)
            results = next(a for a in sys.argv if "/results/" in a and os.path.isdir(a))
            with open(os.path.join(results, "model-error.json"), "w") as f:
                json.dump({"exceptionType": "pyspark.errors.exceptions.captured.AnalysisException", "message": message}, f)
            sys.exit(1)
        print(f"read {asset['name']}", flush=True)
# "python": a snippet run with the Python the runner gives the driver (PYSPARK_DRIVER_PYTHON).
if spec.get("python"):
    import subprocess
    done = subprocess.run([os.environ["PYSPARK_DRIVER_PYTHON"], "-c", spec["python"]], capture_output=True, text=True)
    print(done.stdout, end="", flush=True)
    print(done.stderr, end="", file=sys.stderr, flush=True)
    if done.returncode:
        sys.exit(done.returncode)
codes = spec.get("exit", [0])
code = codes[min(attempt, len(codes)) - 1]
if code:
    print(f"ValueError: attempt {attempt} failed", file=sys.stderr, flush=True)
# An output: every argument that is a local directory (an s3:// output the runner mirrored).
for arg in sys.argv:
    if arg.endswith("/") and os.path.isdir(arg):
        with open(os.path.join(arg, f"attempt-{attempt}.txt"), "w") as f:
            f.write(f"written by attempt {attempt}\n")
sys.exit(code)
'''

LOG_GROUP = "/emr/run-controls"


@pytest.fixture(scope="module")
def moto_endpoint():
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready.json")
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "moto_server.py"), "--ready-file", ready, "--quiet"],
                                stdout=subprocess.PIPE, text=True)
        try:
            endpoint = json.loads(proc.stdout.readline())["endpoint"]
            yield endpoint
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()


@pytest.fixture(scope="module")
def fake_spark_submit():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spark-submit")
        with open(path, "w") as f:
            f.write(f"#!{sys.executable}\n{FAKE_SPARK_SUBMIT}")
        os.chmod(path, 0o755)
        yield path


@pytest.fixture
def execute(moto_endpoint, fake_spark_submit):
    """Start an execute-mode emulator (fake spark-submit, moto for logs): ``execute(time_scale=...)``
    answers ``(server, emr client, logs client)``; every server is stopped at the end."""
    started = []
    work = tempfile.mkdtemp(prefix="emr-run-controls-")

    def start(time_scale: float | None = None, max_concurrent: int = 4):
        events = Events()
        runner = emr_serverless.SparkRunner(moto_endpoint, work, max_concurrent, spark_submit=fake_spark_submit)
        srv = emr_serverless.Server(emr_serverless.EmrServerless(events, runner, log=lambda _m: None, **({"time_scale": time_scale} if time_scale else {}))).start()
        srv.events, srv.runner = events, runner
        started.append(srv)
        logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
        return srv, client(srv.endpoint), logs

    yield start
    for srv in started:
        srv.stop()
    import shutil
    shutil.rmtree(work, ignore_errors=True)


def fake_run(emr, app: str, behaviour: dict, name="fake", prefix: str | None = None, entry: str = "/dev/null",
             args: tuple[str, ...] = (), **kwargs) -> str:
    logging = {"enabled": True, "logGroupName": LOG_GROUP}
    if prefix:
        logging["logStreamNamePrefix"] = prefix
    return emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name=name, jobDriver={"sparkSubmit": {
        "entryPoint": entry, "entryPointArguments": ["behaviour=" + json.dumps(behaviour), *args]}},
        configurationOverrides={"monitoringConfiguration": {"cloudWatchLoggingConfiguration": logging}}, **kwargs)["jobRunId"]


def wait_for(emr, app: str, run: str, states=("SUCCESS", "FAILED", "CANCELLED"), timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job_run = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
        if job_run["state"] in states:
            return job_run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run} still {job_run['state']} after {timeout}s")
        time.sleep(0.05)


def log_lines(logs, stream: str) -> list[str]:
    return [e["message"] for e in logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)["events"]]


def events_of(server, run: str, detail_type: str = "EMR Serverless Job Run State Change") -> list[dict]:
    with server.events.lock:
        return [e for e in server.events.items if e["detail"]["jobRunId"] == run and e["detail-type"] == detail_type]


# ---- run controls: retry policy and attempts


def test_retry_policy_in_manual_mode_attempts_and_the_retry_event(server, emr):
    app = new_app(emr, "retry-manual")
    run = new_run(emr, app, "retried", retryPolicy={"maxAttempts": 2})
    first = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert (first["attempt"], first["retryPolicy"]) == (1, {"maxAttempts": 2})
    assert first["attemptCreatedAt"] == first["createdAt"] and first["attemptUpdatedAt"] >= first["attemptCreatedAt"]
    assert [r["attempt"] for r in emr.list_job_runs(applicationId=app)["jobRuns"]] == [1]
    assert post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING"})[0] == 200

    # Attempt 1 fails: EMR retries it. The run is not FAILED: attempt 2 is SCHEDULED.
    status, body = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": "boom 1"})
    assert status == 200 and (body["state"], body["attempt"]) == ("SCHEDULED", 2), body
    second = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert (second["state"], second["attempt"], second["stateDetails"]) == ("SCHEDULED", 2, "")
    assert second["createdAt"] == first["createdAt"] and second["attemptCreatedAt"] > first["attemptCreatedAt"]
    assert "startedAt" not in second, "attempt 2 has not run yet"
    old = emr.get_job_run(applicationId=app, jobRunId=run, attempt=1)["jobRun"]
    assert (old["state"], old["stateDetails"], old["attempt"]) == ("FAILED", "boom 1", 1)
    assert old["startedAt"] <= old["endedAt"] and old["totalExecutionDurationSeconds"] >= 0
    assert server.events.states(run)[-1] == "SCHEDULED" and "FAILED" not in server.events.states(run)

    [retry] = events_of(server, run, "EMR Serverless Job Run Retry")
    detail = retry["detail"]
    assert retry["source"] == "aws.emr-serverless" and retry["account"] == "123456789012" and retry["region"] == "us-east-1"
    assert set(detail) == {"jobRunId", "applicationId", "arn", "releaseLabel", "createdBy", "updatedAt", "createdAt", "previousAttempt",
                           "previousAttemptState", "previousAttemptCreatedAt", "previousAttemptEndedAt", "newAttempt", "newAttemptCreatedAt"}
    assert (detail["previousAttempt"], detail["previousAttemptState"], detail["newAttempt"]) == (1, "FAILED", 2)
    assert detail["previousAttemptCreatedAt"] <= detail["previousAttemptEndedAt"] <= detail["newAttemptCreatedAt"]
    assert detail["previousAttemptCreatedAt"] == first["createdAt"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with open(os.path.join(HERE, "..", "..", "events", "monitor", "job-run-retry.json")) as f:
        assert set(json.load(f)["detail"]) == set(detail), "the shape of the sample the monitor replays"

    # Attempt 2 is the last one: its failure fails the run.
    post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING"})
    post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": "boom 2"})
    final = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert (final["state"], final["stateDetails"], final["attempt"]) == ("FAILED", "boom 2", 2)
    assert len(events_of(server, run, "EMR Serverless Job Run Retry")) == 1
    assert server.events.states(run) == ["SUBMITTED", "RUNNING", "SCHEDULED", "RUNNING", "FAILED"]

    attempts = emr.list_job_run_attempts(applicationId=app, jobRunId=run)["jobRunAttempts"]
    assert [(a["attempt"], a["state"], a["stateDetails"]) for a in attempts] == [(1, "FAILED", "boom 1"), (2, "FAILED", "boom 2")]
    for a in attempts:
        assert (a["id"], a["applicationId"], a["name"], a["mode"], a["type"], a["executionRole"]) == (run, app, "retried", "BATCH", "Spark", ROLE)
        assert a["jobCreatedAt"] == first["createdAt"] and a["releaseLabel"] == "emr-7.5.0" and a["arn"].endswith(f"/jobruns/{run}")
    assert attempts[1]["createdAt"] > attempts[0]["createdAt"]
    page = emr.list_job_run_attempts(applicationId=app, jobRunId=run, maxResults=1)
    assert [a["attempt"] for a in page["jobRunAttempts"]] == [1] and page["nextToken"]
    paged = [a["attempt"] for p in emr.get_paginator("list_job_run_attempts").paginate(applicationId=app, jobRunId=run, PaginationConfig={"PageSize": 1})
             for a in p["jobRunAttempts"]]
    assert paged == [1, 2]


def test_a_run_without_retry_policy_has_one_attempt_and_no_retry(server, emr):
    app = new_app(emr, "no-retry")
    run = new_run(emr, app, "single")
    job_run = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert "attempt" not in job_run and "retryPolicy" not in job_run
    [only] = emr.list_job_run_attempts(applicationId=app, jobRunId=run)["jobRunAttempts"]
    assert (only["attempt"], only["state"], only["createdAt"]) == (1, "SUBMITTED", job_run["createdAt"])
    post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": "once"})
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "FAILED"
    assert events_of(server, run, "EMR Serverless Job Run Retry") == []
    assert error_code(lambda: emr.get_job_run(applicationId=app, jobRunId=run, attempt=2)) == ("ResourceNotFoundException", 404)
    assert error_code(lambda: emr.list_job_run_attempts(applicationId=app, jobRunId="00fnosuchrun0000")) == ("ResourceNotFoundException", 404)
    # A STREAMING run's policy is maxFailedAttemptsPerHour: accepted and shown, not a BATCH retry.
    streaming = new_run(emr, app, "stream", mode="STREAMING", retryPolicy={"maxFailedAttemptsPerHour": 5})
    assert emr.get_job_run(applicationId=app, jobRunId=streaming)["jobRun"]["retryPolicy"] == {"maxFailedAttemptsPerHour": 5}


def test_retry_policy_validation(emr):
    app = new_app(emr, "retry-invalid")
    for policy in ({"maxAttempts": 11}, {"maxFailedAttemptsPerHour": 11}):
        assert error_code(lambda: new_run(emr, app, retryPolicy=policy)) == ("ValidationException", 400)
    assert error_code(lambda: new_run(emr, app, mode="INTERACTIVE")) == ("ValidationException", 400)


def test_execute_mode_retries_a_failed_attempt_with_logs_per_attempt(execute, moto_endpoint):
    server, emr, logs = execute()
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="run-controls")
    s3.put_object(Bucket="run-controls", Key="code/driver.py", Body=b"# the fake spark-submit does not read it\n")
    app = new_app(emr, "retry-exec")
    run = fake_run(emr, app, {"exit": [3, 0]}, prefix="job-1", entry="s3://run-controls/code/driver.py",
                   args=("s3://run-controls/out/retried/",), retryPolicy={"maxAttempts": 3})
    done = wait_for(emr, app, run)
    assert (done["state"], done["attempt"], done["stateDetails"]) == ("SUCCESS", 2, "")
    assert server.events.states(run) == ["SUBMITTED", "SCHEDULED", "RUNNING", "SCHEDULED", "RUNNING", "SUCCESS"]
    [retry] = events_of(server, run, "EMR Serverless Job Run Retry")
    assert (retry["detail"]["previousAttempt"], retry["detail"]["previousAttemptState"], retry["detail"]["newAttempt"]) == (1, "FAILED", 2)
    attempts = emr.list_job_run_attempts(applicationId=app, jobRunId=run)["jobRunAttempts"]
    assert [(a["attempt"], a["state"]) for a in attempts] == [(1, "FAILED"), (2, "SUCCESS")]
    assert attempts[0]["stateDetails"].startswith("Job failed, please check complete logs in configured logging destination. ExitCode: 3.")
    assert attempts[0]["stateDetails"].endswith("Last few exceptions: ValueError: attempt 1 failed")

    base = f"job-1/applications/{app}/jobs/{run}"
    assert log_lines(logs, f"{base}/SPARK_DRIVER/stdout") == ["attempt 1 stdout"]
    assert log_lines(logs, f"{base}/SPARK_DRIVER/stderr") == ["attempt 1 stderr", "ValueError: attempt 1 failed"]
    assert log_lines(logs, f"{base}/attempts/2/SPARK_DRIVER/stdout") == ["attempt 2 stdout"]
    assert log_lines(logs, f"{base}/attempts/2/SPARK_DRIVER/stderr") == ["attempt 2 stderr"]
    # Each attempt ran from the beginning in its own directory, with the entry point fetched again;
    # each synced what it wrote back to S3 (the failed one too: on EMR the driver writes to S3 directly).
    roots = [server.runner.attempt_root(server.emr.runs[run], n) for n in (1, 2)]
    assert roots[1] == os.path.join(roots[0], "attempts", "2")
    assert all(os.path.isfile(os.path.join(root, "staged", "driver.py")) for root in roots)
    outputs = [o["Key"] for o in s3.list_objects_v2(Bucket="run-controls", Prefix="out/retried/")["Contents"]]
    assert outputs == ["out/retried/attempt-1.txt", "out/retried/attempt-2.txt"]

    # The last attempt's failure fails the run, with one retry event for each retry.
    failing = fake_run(emr, app, {"exit": [1]}, retryPolicy={"maxAttempts": 3})
    failed = wait_for(emr, app, failing)
    assert (failed["state"], failed["attempt"]) == ("FAILED", 3)
    assert "ExitCode: 1." in failed["stateDetails"]
    assert [e["detail"]["newAttempt"] for e in events_of(server, failing, "EMR Serverless Job Run Retry")] == [2, 3]
    assert server.events.states(failing)[-1] == "FAILED" and server.events.states(failing).count("FAILED") == 1
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"applications/{app}/jobs/{failing}/")["logStreams"]]
    assert sorted(streams) == sorted(f"applications/{app}/jobs/{failing}/{p}SPARK_DRIVER/{s}" for p in ("", "attempts/2/", "attempts/3/") for s in ("stdout", "stderr"))


# ---- run controls: the time scale and executionTimeoutMinutes

TIMEOUT_DETAILS = "Job run timed out: it ran longer than its execution timeout of 5 minutes and was cancelled."


@pytest.fixture
def scaled():
    """A manual-mode emulator whose minute lasts 0.2 s (``time_scale=0.2``)."""
    events = Events()
    srv = emr_serverless.Server(emr_serverless.EmrServerless(events, log=lambda _m: None, time_scale=0.2)).start()
    srv.events = events
    yield srv, client(srv.endpoint)
    srv.stop()


def test_execution_timeout_cancels_a_running_run_on_the_scaled_clock(scaled):
    server, emr = scaled
    app = new_app(emr, "timeout")
    assert emr.get_job_run(applicationId=app, jobRunId=new_run(emr, app, "default"))["jobRun"]["executionTimeoutMinutes"] == 720
    run = new_run(emr, app, "five-minutes", executionTimeoutMinutes=5)
    waiting = new_run(emr, app, "not-started", executionTimeoutMinutes=5)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["executionTimeoutMinutes"] == 5
    time.sleep(1.2)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "SUBMITTED", "the clock starts at RUNNING"
    post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING"})
    started = time.monotonic()
    done = wait_for(emr, app, run, timeout=5)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed <= 2.0, f"5 minutes at 0.2 s a minute took {elapsed:.2f} s"
    assert (done["state"], done["stateDetails"]) == ("CANCELLED", TIMEOUT_DETAILS)
    assert 1 <= (done["endedAt"] - done["startedAt"]).total_seconds() < 2 and done["totalExecutionDurationSeconds"] == 1
    assert server.events.states(run) == ["SUBMITTED", "RUNNING", "CANCELLING", "CANCELLED"]
    assert [e["detail"].get("stateDetails") for e in events_of(server, run)][-2:] == [TIMEOUT_DETAILS, TIMEOUT_DETAILS]
    assert emr.get_job_run(applicationId=app, jobRunId=waiting)["jobRun"]["state"] == "SUBMITTED"


def test_execution_timeout_validation(emr):
    """0 never times out (User Guide, "Other considerations") until emr-7.11.0, which caps a BATCH run at 7 days
    and refuses 0 (its release notes). No minimum of 5: that is moto's rule, not AWS's."""
    app = new_app(emr, "timeout-invalid")
    assert emr.get_job_run(applicationId=app, jobRunId=new_run(emr, app, executionTimeoutMinutes=4))["jobRun"]["executionTimeoutMinutes"] == 4
    never = new_run(emr, app, "never", executionTimeoutMinutes=0)
    assert emr.get_job_run(applicationId=app, jobRunId=never)["jobRun"]["executionTimeoutMinutes"] == 0
    assert error_code(lambda: new_run(emr, app, executionTimeoutMinutes=1_000_001)) == ("ValidationException", 400)
    capped = emr.create_application(name="timeout-7-11", releaseLabel="emr-7.11.0", type="SPARK")["applicationId"]
    assert error_code(lambda: new_run(emr, capped, executionTimeoutMinutes=0)) == ("ValidationException", 400)
    assert error_code(lambda: new_run(emr, capped, executionTimeoutMinutes=10_081)) == ("ValidationException", 400)
    assert emr.get_job_run(applicationId=capped, jobRunId=new_run(emr, capped, executionTimeoutMinutes=10_080))["jobRun"]["executionTimeoutMinutes"] == 10_080
    streaming = new_run(emr, capped, "forever", mode="STREAMING", executionTimeoutMinutes=0)
    assert emr.get_job_run(applicationId=capped, jobRunId=streaming)["jobRun"]["executionTimeoutMinutes"] == 0


def test_execute_mode_timeout_kills_the_process_and_is_not_retried(execute):
    server, emr, logs = execute(time_scale=0.2)
    app = new_app(emr, "timeout-exec")
    run = fake_run(emr, app, {"sleep": 60}, executionTimeoutMinutes=5, retryPolicy={"maxAttempts": 3})
    running = wait_for(emr, app, run, states=("RUNNING",), timeout=10)
    pid = server.emr.runs[run].process.pid
    done = wait_for(emr, app, run, timeout=10)
    assert (done["state"], done["stateDetails"], done["attempt"]) == ("CANCELLED", TIMEOUT_DETAILS, 1)
    assert 1 <= (done["endedAt"] - running["startedAt"]).total_seconds() < 4
    with urllib.request.urlopen(f"{server.endpoint}/_emulator/emr-serverless/job-runs/process?jobRunId={run}") as r:
        process = json.load(r)
    assert (process["pid"], process["alive"]) == (pid, False)
    assert server.events.states(run) == ["SUBMITTED", "SCHEDULED", "RUNNING", "CANCELLING", "CANCELLED"]
    assert events_of(server, run, "EMR Serverless Job Run Retry") == []
    assert log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stdout") == ["attempt 1 stdout"]


def test_cli_time_scale_flag():
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready.json")
        bad = subprocess.run([sys.executable, os.path.join(HERE, "emr_serverless.py"), "--ready-file", ready, "--time-scale", "0"],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and "--time-scale must be > 0" in bad.stderr
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "emr_serverless.py"), "--ready-file", ready, "--quiet",
                                 "--time-scale", "0.2"], stdout=subprocess.PIPE, text=True)
        try:
            endpoint = json.loads(proc.stdout.readline())["endpoint"]
            emr = client(endpoint)
            app = new_app(emr, "cli-scaled")
            run = new_run(emr, app, executionTimeoutMinutes=5)
            post(endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING"})
            assert wait_for(emr, app, run, timeout=5)["stateDetails"] == TIMEOUT_DETAILS
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            proc.stdout.close()


def test_time_scale_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMR_SERVERLESS_TIME_SCALE", "0.5")
    emr = emr_serverless.EmrServerless(log=lambda _m: None)
    assert (emr.time_scale, emr.minutes(5), emr.seconds(30)) == (0.5, 2.5, 0.25)
    monkeypatch.delenv("EMR_SERVERLESS_TIME_SCALE")
    assert emr_serverless.EmrServerless(log=lambda _m: None).time_scale == 60.0, "real time by default"
    with pytest.raises(ValueError):
        emr_serverless.EmrServerless(log=lambda _m: None, time_scale=0)


# ---- run controls: application configuration, job concurrency and queuing

QUEUE_DETAILS = "Job run timed out in the QUEUED state: it waited longer than the application's queue timeout of 15 minutes."


def test_application_configuration_is_accepted_and_returned(emr):
    network = {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}
    app = new_app(emr, "configured", architecture="ARM64", maximumCapacity={"cpu": "8 vCPU", "memory": "32 GB", "disk": "200 GB"},
                  networkConfiguration=network, schedulerConfiguration={"maxConcurrentRuns": 3, "queueTimeoutMinutes": 30})
    got = emr.get_application(applicationId=app)["application"]
    assert got["architecture"] == "ARM64"
    assert got["maximumCapacity"] == {"cpu": "8 vCPU", "memory": "32 GB", "disk": "200 GB"}
    assert got["networkConfiguration"] == network
    assert got["schedulerConfiguration"] == {"maxConcurrentRuns": 3, "queueTimeoutMinutes": 30}
    assert [a["architecture"] for a in emr.list_applications()["applications"] if a["id"] == app] == ["ARM64"]
    run = new_run(emr, app)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["networkConfiguration"] == network
    # A member not given takes its default; an empty configuration leaves queuing off.
    half = emr.get_application(applicationId=new_app(emr, "half", schedulerConfiguration={"maxConcurrentRuns": 2}))["application"]
    assert half["schedulerConfiguration"] == {"maxConcurrentRuns": 2, "queueTimeoutMinutes": 360}
    half = emr.get_application(applicationId=new_app(emr, "half2", schedulerConfiguration={"queueTimeoutMinutes": 60}))["application"]
    assert half["schedulerConfiguration"] == {"maxConcurrentRuns": 15, "queueTimeoutMinutes": 60}
    off = emr.get_application(applicationId=new_app(emr, "off", schedulerConfiguration={}))["application"]
    assert "schedulerConfiguration" not in off and "maximumCapacity" not in off and off["architecture"] == "X86_64"
    for bad in ({"schedulerConfiguration": {"maxConcurrentRuns": 0}}, {"schedulerConfiguration": {"maxConcurrentRuns": 1001}},
                {"schedulerConfiguration": {"queueTimeoutMinutes": 14}}, {"schedulerConfiguration": {"queueTimeoutMinutes": 721}},
                {"architecture": "RISCV"}, {"maximumCapacity": {"cpu": "lots", "memory": "1 GB"}},
                {"maximumCapacity": {"cpu": "2 vCPU", "memory": "1 GB", "disk": "20"}},
                {"networkConfiguration": {"securityGroupIds": [f"sg-{i}" for i in range(6)]}}):
        assert error_code(lambda: new_app(emr, "bad", **bad)) == ("ValidationException", 400), bad


def test_queuing_in_manual_mode_on_the_scaled_clock(scaled):
    server, emr = scaled  # a minute is 0.2 s: the 15-minute queue timeout is 3 s
    app = new_app(emr, "queued", schedulerConfiguration={"maxConcurrentRuns": 1, "queueTimeoutMinutes": 15})
    first, second = new_run(emr, app, "first"), new_run(emr, app, "second")
    assert server.events.states(first) == ["SUBMITTED", "PENDING", "SCHEDULED"]
    assert server.events.states(second) == ["SUBMITTED", "PENDING", "QUEUED"]
    assert [e["detail"].get("previousState") for e in events_of(server, second)] == [None, "SUBMITTED", "PENDING"]
    third = new_run(emr, app, "third")
    cancelled = new_run(emr, app, "cancelled-in-queue")
    assert emr.get_job_run(applicationId=app, jobRunId=third)["jobRun"]["state"] == "QUEUED"
    emr.cancel_job_run(applicationId=app, jobRunId=cancelled)
    assert server.events.states(cancelled) == ["SUBMITTED", "PENDING", "QUEUED", "CANCELLING", "CANCELLED"]
    assert [r["id"] for r in emr.list_job_runs(applicationId=app, states=["QUEUED"])["jobRuns"]] == [third, second]

    # The first run ends: the oldest queued run gets its slot.
    time.sleep(0.5)
    post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": first, "state": "SUCCESS"})
    assert server.events.states(second) == ["SUBMITTED", "PENDING", "QUEUED", "SCHEDULED"]
    assert events_of(server, second)[-1]["detail"]["previousState"] == "QUEUED"
    scheduled = emr.get_job_run(applicationId=app, jobRunId=second)["jobRun"]
    assert 500 <= scheduled["queuedDurationMilliseconds"] < 1500
    assert emr.get_job_run(applicationId=app, jobRunId=first)["jobRun"]["queuedDurationMilliseconds"] == 0

    # The third waits its whole queue timeout and fails.
    done = wait_for(emr, app, third, timeout=6)
    assert (done["state"], done["stateDetails"]) == ("FAILED", QUEUE_DETAILS)
    assert 3000 <= done["queuedDurationMilliseconds"] < 4000
    assert 3 <= (done["endedAt"] - done["createdAt"]).total_seconds() < 4.5 and "startedAt" not in done
    assert server.events.states(third) == ["SUBMITTED", "PENDING", "QUEUED", "FAILED"]
    assert emr.get_job_run(applicationId=app, jobRunId=second)["jobRun"]["state"] == "SCHEDULED", "an admitted run does not time out"


def test_queuing_in_execute_mode_runs_one_at_a_time(execute):
    server, emr, logs = execute()
    app = new_app(emr, "queued-exec", schedulerConfiguration={"maxConcurrentRuns": 1})
    first = fake_run(emr, app, {"sleep": 1.0}, name="first")
    wait_for(emr, app, first, states=("RUNNING",), timeout=10)
    second = fake_run(emr, app, {}, name="second")
    third = fake_run(emr, app, {}, name="cancelled-in-queue")
    wait_for(emr, app, third, states=("QUEUED",), timeout=10)
    emr.cancel_job_run(applicationId=app, jobRunId=third)
    assert wait_for(emr, app, third, timeout=10)["state"] == "CANCELLED"
    assert server.events.states(third) == ["SUBMITTED", "PENDING", "QUEUED", "CANCELLING", "CANCELLED"]
    assert server.emr.runs[third].process is None
    a, b = wait_for(emr, app, first), wait_for(emr, app, second)
    assert (a["state"], b["state"]) == ("SUCCESS", "SUCCESS")
    assert server.events.states(first) == ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS"]
    assert server.events.states(second) == ["SUBMITTED", "PENDING", "QUEUED", "SCHEDULED", "RUNNING", "SUCCESS"]
    assert b["startedAt"] >= a["endedAt"], "the second ran only once the first was over"
    assert 300 <= b["queuedDurationMilliseconds"] and a["queuedDurationMilliseconds"] == 0


def test_queue_timeout_in_execute_mode(execute):
    server, emr, logs = execute(time_scale=0.2)
    app = new_app(emr, "queue-timeout-exec", schedulerConfiguration={"maxConcurrentRuns": 1, "queueTimeoutMinutes": 15})
    busy = fake_run(emr, app, {"sleep": 30}, name="busy")
    wait_for(emr, app, busy, states=("RUNNING",), timeout=10)
    starved = fake_run(emr, app, {}, name="starved")
    done = wait_for(emr, app, starved, timeout=8)
    assert (done["state"], done["stateDetails"]) == ("FAILED", QUEUE_DETAILS)
    assert server.events.states(starved) == ["SUBMITTED", "PENDING", "QUEUED", "FAILED"]
    assert server.emr.runs[starved].process is None, "it never ran"
    emr.cancel_job_run(applicationId=app, jobRunId=busy)
    assert wait_for(emr, app, busy)["state"] == "CANCELLED"


# ---- run controls: cancellation with a grace period


def test_cancel_grace_period_validation_and_manual_mode(server, emr):
    app = new_app(emr, "grace")
    run = new_run(emr, app)
    for bad in (1, 14, 1801):
        with pytest.raises(ClientError) as info:
            emr.cancel_job_run(applicationId=app, jobRunId=run, shutdownGracePeriodInSeconds=bad)
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert "shutdownGracePeriodInSeconds" in info.value.response["Error"]["Message"]
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "SUBMITTED"
    emr.cancel_job_run(applicationId=app, jobRunId=run, shutdownGracePeriodInSeconds=1800)
    assert server.events.states(run) == ["SUBMITTED", "CANCELLING", "CANCELLED"], "nothing runs in manual mode: at once"
    other = new_run(emr, app)
    emr.cancel_job_run(applicationId=app, jobRunId=other, shutdownGracePeriodInSeconds=0)
    assert emr.get_job_run(applicationId=app, jobRunId=other)["jobRun"]["state"] == "CANCELLED"


def process_of(server, run: str) -> dict:
    with urllib.request.urlopen(f"{server.endpoint}/_emulator/emr-serverless/job-runs/process?jobRunId={run}") as r:
        return json.load(r)


def test_cancel_with_grace_lets_the_job_clean_up(execute):
    server, emr, logs = execute(time_scale=6)  # a minute is 6 s: the 15 s grace period is 1.5 s
    app = new_app(emr, "grace-clean")
    run = fake_run(emr, app, {"sleep": 60, "term": 0.3})
    wait_for(emr, app, run, states=("RUNNING",), timeout=10)
    time.sleep(0.2)  # the job has installed its SIGTERM handler
    asked = time.monotonic()
    emr.cancel_job_run(applicationId=app, jobRunId=run, shutdownGracePeriodInSeconds=15)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "CANCELLING"
    done = wait_for(emr, app, run, timeout=10)
    took = time.monotonic() - asked
    assert (done["state"], done["stateDetails"]) == ("CANCELLED", "Job run cancelled by user")
    assert 0.3 <= took < 1.4, f"the job finished its clean-up (0.3 s) within the grace period: {took:.2f} s"
    assert process_of(server, run)["exitCode"] == 143, "it exited on its own after SIGTERM"
    assert log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stdout") == ["attempt 1 stdout", "SIGTERM: cleaning up", "cleaned up"]
    assert server.events.states(run) == ["SUBMITTED", "SCHEDULED", "RUNNING", "CANCELLING", "CANCELLED"]


def test_cancel_with_grace_kills_the_job_when_the_grace_is_over(execute):
    server, emr, logs = execute(time_scale=6)
    app = new_app(emr, "grace-kill")
    run = fake_run(emr, app, {"sleep": 60, "term": 30})
    wait_for(emr, app, run, states=("RUNNING",), timeout=10)
    time.sleep(0.2)
    asked = time.monotonic()
    emr.cancel_job_run(applicationId=app, jobRunId=run, shutdownGracePeriodInSeconds=15)
    time.sleep(0.8)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "CANCELLING", "still in its grace period"
    assert process_of(server, run)["alive"]
    done = wait_for(emr, app, run, timeout=10)
    took = time.monotonic() - asked
    assert done["state"] == "CANCELLED" and 1.5 <= took < 3.0, f"killed when the 1.5 s grace was over: {took:.2f} s"
    assert process_of(server, run) | {"pid": None} == {"jobRunId": run, "pid": None, "alive": False, "exitCode": -signal.SIGKILL}
    assert log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stdout") == ["attempt 1 stdout", "SIGTERM: cleaning up"]


def test_cancel_without_grace_stops_the_job_at_once(execute):
    server, emr, logs = execute(time_scale=6)
    app = new_app(emr, "no-grace")
    run = fake_run(emr, app, {"sleep": 60})
    wait_for(emr, app, run, states=("RUNNING",), timeout=10)
    asked = time.monotonic()
    emr.cancel_job_run(applicationId=app, jobRunId=run)
    assert wait_for(emr, app, run, timeout=10)["state"] == "CANCELLED" and time.monotonic() - asked < 1.0
    assert process_of(server, run)["exitCode"] == -signal.SIGTERM


# ---- run controls: GetJobRun's timing and provenance fields


def test_get_job_run_timing_and_provenance_fields(execute):
    server, emr, logs = execute()
    app = new_app(emr, "timing")
    run = fake_run(emr, app, {"sleep": 1.2}, executionTimeoutMinutes=30, retryPolicy={"maxAttempts": 2})
    live = wait_for(emr, app, run, states=("RUNNING",), timeout=10)
    assert "endedAt" not in live and "totalExecutionDurationSeconds" not in live and "totalResourceUtilization" not in live
    done = wait_for(emr, app, run)
    assert (done["state"], done["releaseLabel"], done["executionTimeoutMinutes"], done["retryPolicy"], done["attempt"]) == (
        "SUCCESS", "emr-7.5.0", 30, {"maxAttempts": 2}, 1)
    assert done["createdAt"] <= done["startedAt"] < done["endedAt"] and done["startedAt"] == live["startedAt"]
    ran = (done["endedAt"] - done["startedAt"]).total_seconds()
    assert 1.2 <= ran < 3 and done["totalExecutionDurationSeconds"] == int(ran)
    assert done["queuedDurationMilliseconds"] == 0
    assert done["attemptCreatedAt"] == done["createdAt"] and done["attemptUpdatedAt"] == done["endedAt"]
    # Estimates for one driver-sized worker (4 vCPU, 16 GB, 20 GB); billed: at least one minute.
    total, billed = done["totalResourceUtilization"], done["billedResourceUtilization"]
    assert total["vCPUHour"] == pytest.approx(4 * ran / 3600, abs=1e-5) and total["memoryGBHour"] == pytest.approx(16 * ran / 3600, abs=1e-5)
    assert total["storageGBHour"] == pytest.approx(20 * ran / 3600, abs=1e-5)
    assert billed == {"vCPUHour": round(4 / 60, 6), "memoryGBHour": round(16 / 60, 6), "storageGBHour": 0.0}
    # A real (execute-mode) run's one utilization update: the final one, with GetJobRun's figures.
    (final,) = wait_events(server, run, 1)
    assert final["detail"]["resourceUtilizationFinal"] is True
    assert (final["detail"]["totalResourceUtilization"], final["detail"]["totalBilledResourceUtilization"]) == (total, billed)


def test_a_run_cancelled_before_it_ran_used_nothing(emr):
    app = new_app(emr, "never-ran")
    run = new_run(emr, app)
    emr.cancel_job_run(applicationId=app, jobRunId=run)
    done = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert "startedAt" not in done and done["endedAt"] >= done["createdAt"] and done["totalExecutionDurationSeconds"] == 0
    zero = {"vCPUHour": 0.0, "memoryGBHour": 0.0, "storageGBHour": 0.0}
    assert (done["totalResourceUtilization"], done["billedResourceUtilization"]) == (zero, zero)


# ---- resource utilization: worker sizes, updates, the billing lag (emulated figures)

UTILIZATION = "EMR Serverless Job Resource Utilization Update"
UTILIZATION_ROUTE = "/_emulator/emr-serverless/job-runs/utilization-event"
BILLING_ROUTE = "/_emulator/emr-serverless/job-runs/billing"
DETAIL_KEYS = {"applicationId", "jobRunId", "attempt", "mode", "createdAt", "startedAt", "calculatedFrom", "calculatedTo",
               "resourceUtilizationFinal", "resourceUtilizationForInterval", "billedResourceUtilizationForInterval",
               "totalResourceUtilization", "totalBilledResourceUtilization"}


def sizes(params: str = "", defaults: dict | None = None) -> emr_serverless.WorkerSizes:
    overrides = {"applicationConfiguration": [{"classification": "spark-defaults", "properties": defaults}]} if defaults else {}
    return emr_serverless.WorkerSizes(emr_serverless._spark_conf({"sparkSubmit": {"sparkSubmitParameters": params}}, overrides))


@pytest.mark.parametrize("params, defaults, workers", [
    # EMR Serverless's defaults: one driver of 4 vCPU, 14G + 10% overhead -> 16 GB, 20 GB disk; no executors counted.
    ("", None, [(4, 16, 20)]),
    ("--conf spark.driver.cores=2 --conf spark.driver.memory=6g --conf spark.emr-serverless.driver.disk=30G", None, [(2, 7, 30)]),
    # Executors, with sizes in MB and an explicit overhead; --conf wins over spark-defaults.
    ("--conf spark.executor.instances=2 --conf spark.executor.memory=7168m --conf spark.executor.memoryOverhead=1024",
     {"spark.executor.instances": "5", "spark.executor.cores": "8"}, [(4, 16, 20), (8, 8, 20), (8, 8, 20)]),
    # A small memory still gets the 384 MB minimum overhead; an unreadable value takes the default.
    ("--conf spark.driver.memory=1g --conf spark.driver.cores=many", None, [(4, 2, 20)]),
])
def test_worker_sizes_come_from_the_spark_conf_with_emr_defaults(params, defaults, workers):
    assert sizes(params, defaults).workers == workers


def test_utilization_is_wall_time_times_workers_with_a_billed_minimum_and_free_storage():
    two = sizes("--conf spark.executor.instances=1 --conf spark.emr-serverless.executor.disk=50G")
    total, billed = two.utilization(0.5)
    assert total == {"vCPUHour": 4.0, "memoryGBHour": 16.0, "storageGBHour": 35.0}
    assert billed == {"vCPUHour": 4.0, "memoryGBHour": 16.0, "storageGBHour": 15.0}, "only the 30 GB over 20 GB of the executor"
    total, billed = two.utilization(10 / 3600)
    assert total["vCPUHour"] == round(8 * 10 / 3600, 6) and billed["vCPUHour"] == round(8 / 60, 6), "a 1-minute minimum"
    assert two.utilization(0) == (emr_serverless.ZERO_UTILIZATION, emr_serverless.ZERO_UTILIZATION)


@pytest.fixture
def manual():
    """A manual-mode emulator of its own: ``manual(**EmrServerless kwargs)`` -> (server, client)."""
    started = []

    def start(**kwargs):
        events = Events()
        srv = emr_serverless.Server(emr_serverless.EmrServerless(events, log=lambda _m: None, **kwargs)).start()
        srv.events = events
        started.append(srv)
        return srv, client(srv.endpoint)

    yield start
    for srv in started:
        srv.stop()


def set_state(server, app: str, run: str, state: str) -> dict:
    status, body = post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": state})
    assert status == 200, body
    return body


def wait_events(server, run: str, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(got := events_of(server, run, UTILIZATION)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(got)} utilization events of {run} after {timeout}s, wanted {count}")
        time.sleep(0.02)
    return got


def test_final_utilization_event_follows_the_end_and_matches_get_job_run(manual):
    server, emr = manual()
    app = new_app(emr, "final-event")
    run = emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name="sized", jobDriver={"sparkSubmit": {
        "entryPoint": "s3://b/d.py", "sparkSubmitParameters": "--conf spark.executor.instances=1"}})["jobRunId"]
    set_state(server, app, run, "RUNNING")
    assert events_of(server, run, UTILIZATION) == [], "no update before 30 minutes of RUNNING"
    time.sleep(0.05)  # some RUNNING time to count
    set_state(server, app, run, "SUCCESS")
    (event,) = events_of(server, run, UTILIZATION)
    with server.events.lock:
        assert server.events.items[-1] is event, "published after the SUCCESS state change"
    done = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    detail = event["detail"]
    assert set(detail) == DETAIL_KEYS
    assert (event["source"], event["resources"], event["account"], event["region"]) == (
        "aws.emr-serverless", [done["arn"]], "123456789012", "us-east-1")
    assert (detail["applicationId"], detail["jobRunId"], detail["attempt"], detail["mode"], detail["resourceUtilizationFinal"]) == (
        app, run, 1, "BATCH", True)
    parse = lambda text: dt.datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    assert parse(detail["calculatedTo"]) == done["endedAt"] and parse(detail["startedAt"]) == done["startedAt"]
    assert parse(detail["calculatedFrom"]) == done["startedAt"] and parse(detail["createdAt"]) == done["createdAt"]
    assert detail["totalResourceUtilization"] == done["totalResourceUtilization"] == detail["resourceUtilizationForInterval"]
    assert detail["totalBilledResourceUtilization"] == done["billedResourceUtilization"] == detail["billedResourceUtilizationForInterval"]
    ran = (done["endedAt"] - done["startedAt"]).total_seconds() / 3600
    # Two workers (driver + one executor) of 4 vCPU, 16 GB, 20 GB.
    assert done["totalResourceUtilization"]["vCPUHour"] == pytest.approx(8 * ran, abs=2e-6)
    assert done["billedResourceUtilization"] == {"vCPUHour": round(8 / 60, 6), "memoryGBHour": round(32 / 60, 6), "storageGBHour": 0.0}
    json.dumps(event)  # what --events-url POSTs


def test_a_run_that_never_ran_gets_a_final_event_of_zeros(manual):
    server, emr = manual()
    app = new_app(emr, "never-ran-event")
    run = new_run(emr, app)
    emr.cancel_job_run(applicationId=app, jobRunId=run)
    (event,) = events_of(server, run, UTILIZATION)
    assert event["detail"]["resourceUtilizationFinal"] is True and "startedAt" not in event["detail"]
    assert event["detail"]["totalBilledResourceUtilization"] == emr_serverless.ZERO_UTILIZATION


def test_updates_every_30_emulated_minutes_while_running_on_the_clock(manual):
    server, emr = manual(time_scale=60)
    core = server.emr
    app = new_app(emr, "periodic")
    run = new_run(emr, app)
    running = set_state(server, app, run, "RUNNING")
    started = running["startedAt"]
    core.tick(started + 29 * 60)
    assert events_of(server, run, UTILIZATION) == []
    core.tick(started + 30 * 60)
    core.tick(started + 30 * 60 + 1)  # not due again yet
    (first,) = events_of(server, run, UTILIZATION)
    core.tick(started + 61 * 60)
    first, second = events_of(server, run, UTILIZATION)
    half_hour = {"vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 10.0}
    assert first["detail"]["resourceUtilizationFinal"] is False and first["detail"]["totalResourceUtilization"] == half_hour
    assert first["detail"]["resourceUtilizationForInterval"] == half_hour
    assert second["detail"]["calculatedFrom"] == first["detail"]["calculatedTo"]
    assert second["detail"]["totalResourceUtilization"] == {"vCPUHour": round(4 * 61 / 60, 6), "memoryGBHour": round(16 * 61 / 60, 6),
                                                            "storageGBHour": round(20 * 61 / 60, 6)}
    assert second["detail"]["resourceUtilizationForInterval"] == {"vCPUHour": round(4 * 31 / 60, 6), "memoryGBHour": round(16 * 31 / 60, 6),
                                                                  "storageGBHour": round(20 * 31 / 60, 6)}
    assert "totalResourceUtilization" not in emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"], "GetJobRun: once it is over"


def test_updates_on_the_scaled_clock_then_the_final_one(manual):
    server, emr = manual(time_scale=0.01)  # 30 emulated minutes = 0.3 s
    app = new_app(emr, "scaled-updates")
    run = new_run(emr, app)
    set_state(server, app, run, "RUNNING")
    updates = wait_events(server, run, 2, timeout=5)
    assert [e["detail"]["resourceUtilizationFinal"] for e in updates] == [False, False]
    set_state(server, app, run, "FAILED")
    final = [e for e in events_of(server, run, UTILIZATION) if e["detail"]["resourceUtilizationFinal"]]
    assert len(final) == 1
    last_update = [e for e in events_of(server, run, UTILIZATION) if not e["detail"]["resourceUtilizationFinal"]][-1]
    assert final[0]["detail"]["calculatedFrom"] == last_update["detail"]["calculatedTo"]


def test_billing_lag_shows_zero_billed_figures_then_the_final_event(manual):
    server, emr = manual(billing_lag=0.5)
    app = new_app(emr, "lag")
    run = new_run(emr, app)
    set_state(server, app, run, "RUNNING")
    set_state(server, app, run, "SUCCESS")
    ended = time.monotonic()
    lagging = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]
    assert lagging["billedResourceUtilization"] == emr_serverless.ZERO_UTILIZATION
    assert lagging["totalResourceUtilization"]["vCPUHour"] > 0 and events_of(server, run, UTILIZATION) == []
    (event,) = wait_events(server, run, 1)
    assert time.monotonic() - ended >= 0.45
    billed = emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["billedResourceUtilization"]
    assert billed["vCPUHour"] == round(4 / 60, 6) and event["detail"]["totalBilledResourceUtilization"] == billed


def test_billing_lag_from_the_environment_and_the_cli(monkeypatch):
    monkeypatch.setenv("EMR_SERVERLESS_BILLING_LAG", "2.5")
    assert emr_serverless.EmrServerless(log=lambda _m: None).billing_lag == 2.5
    monkeypatch.delenv("EMR_SERVERLESS_BILLING_LAG")
    assert emr_serverless.EmrServerless(log=lambda _m: None).billing_lag == 0, "no lag by default"
    with pytest.raises(ValueError):
        emr_serverless.EmrServerless(log=lambda _m: None, billing_lag=-1)
    with tempfile.TemporaryDirectory() as tmp:
        bad = subprocess.run([sys.executable, os.path.join(HERE, "emr_serverless.py"), "--ready-file", os.path.join(tmp, "r"),
                              "--billing-lag", "-1"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--billing-lag must be >= 0" in bad.stderr


def test_billing_route_holds_the_billed_figures_and_the_final_event(manual):
    server, emr = manual()
    core = server.emr
    app = new_app(emr, "hold")
    held, lost = new_run(emr, app, "held"), new_run(emr, app, "lost")
    for run in (held, lost):
        set_state(server, app, run, "RUNNING")
        status, body = post(server.endpoint, BILLING_ROUTE, {"applicationId": app, "jobRunId": run, "pending": True})
        assert status == 200 and body["jobRunId"] == run
        ended = set_state(server, app, run, "SUCCESS")
        assert ended["billedResourceUtilization"] == emr_serverless.ZERO_UTILIZATION
    core.tick(time.time() + 86400)
    assert events_of(server, held, UTILIZATION) == events_of(server, lost, UTILIZATION) == [], "held, however late"
    status, released = post(server.endpoint, BILLING_ROUTE, {"applicationId": app, "jobRunId": held, "pending": False})
    assert status == 200 and released["billedResourceUtilization"]["vCPUHour"] == round(4 / 60, 6)
    (event,) = events_of(server, held, UTILIZATION)
    assert event["detail"]["resourceUtilizationFinal"] and event["detail"]["totalBilledResourceUtilization"] == released["billedResourceUtilization"]
    # Released without its final event: the figures are in, the event never comes.
    status, released = post(server.endpoint, BILLING_ROUTE, {"applicationId": app, "jobRunId": lost, "pending": False, "publishFinal": False})
    assert status == 200 and released["billedResourceUtilization"]["vCPUHour"] > 0
    core.tick(time.time() + 86400)
    assert events_of(server, lost, UTILIZATION) == []


def test_utilization_event_route_publishes_computed_or_given_figures(manual):
    server, emr = manual()
    app = new_app(emr, "admin-event")
    run = new_run(emr, app)
    running = set_state(server, app, run, "RUNNING")
    status, body = post(server.endpoint, UTILIZATION_ROUTE, {"applicationId": app, "jobRunId": run,
                                                             "calculatedTo": running["startedAt"] + 1800})
    assert status == 200 and body["event"] == events_of(server, run, UTILIZATION)[0]
    detail = body["event"]["detail"]
    assert detail["resourceUtilizationFinal"] is False and detail["totalResourceUtilization"] == {
        "vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 10.0}
    calculated_to = dt.datetime.fromisoformat(detail["calculatedTo"].replace("Z", "+00:00")).timestamp()
    assert calculated_to == pytest.approx(running["startedAt"] + 1800, abs=1e-5)
    # Given figures go out as they are (malformed ones too); a duplicate is just sent again.
    malformed = {"vCPUHour": -1, "memoryGBHour": "lots"}
    for _ in range(2):
        status, body = post(server.endpoint, UTILIZATION_ROUTE, {"applicationId": app, "jobRunId": run, "final": True,
                                                                 "calculatedTo": "2026-11-23T20:15:00Z", "totalResourceUtilization": malformed})
        assert status == 200 and body["event"]["detail"]["totalResourceUtilization"] == malformed
        assert body["event"]["detail"]["calculatedTo"] == "2026-11-23T20:15:00.000000Z" and body["event"]["detail"]["resourceUtilizationFinal"]
    # A final event sent by the test is the run's final event: none follows the end.
    set_state(server, app, run, "SUCCESS")
    assert len(events_of(server, run, UTILIZATION)) == 3


@pytest.mark.parametrize("route, body, status, message", [
    (UTILIZATION_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "final": "yes"}, 400, "final must be bool"),
    (UTILIZATION_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "calculatedTo": "yesterday"}, 400, "ValueError"),
    (UTILIZATION_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "calculatedTo": True}, 400, "calculatedTo"),
    (UTILIZATION_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "figures": {}}, 400, "unknown fields: figures"),
    (UTILIZATION_ROUTE, {"applicationId": "APP"}, 400, "jobRunId is required"),
    (UTILIZATION_ROUTE, {"jobRunId": "00fnosuchrun", "applicationId": "APP"}, 404, "does not exist"),
    (UTILIZATION_ROUTE, ["not", "an", "object"], 400, "body must be a JSON object"),
    (BILLING_ROUTE, {"jobRunId": "RUN", "applicationId": "APP"}, 400, "pending is required"),
    (BILLING_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "pending": "true"}, 400, "pending must be bool"),
    (BILLING_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "pending": True, "publishFinal": False}, 400, "pending false only"),
    (BILLING_ROUTE, {"jobRunId": "RUN", "applicationId": "00fnosuchapp", "pending": True}, 404, "does not exist"),
    (BILLING_ROUTE, {"jobRunId": "RUN", "applicationId": "APP", "pending": True, "accountId": "999999999999"}, 404, "account"),
])
def test_utilization_admin_routes_reject_bad_bodies(server, emr, route, body, status, message):
    app = new_app(emr, "admin-errors")
    run = new_run(emr, app)
    if isinstance(body, dict):
        body = {k: {"RUN": run, "APP": app}.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    got, answer = post(server.endpoint, route, body)
    assert got == status and message in answer["message"], answer
    assert events_of(server, run, UTILIZATION) == []


def test_job_level_cost_allocation_is_accepted_and_returned(server, emr):
    on = new_app(emr, "cost-allocation", jobLevelCostAllocationConfiguration={"enabled": True})
    assert emr.get_application(applicationId=on)["application"]["jobLevelCostAllocationConfiguration"] == {"enabled": True}
    assert "jobLevelCostAllocationConfiguration" not in emr.get_application(applicationId=new_app(emr, "no-cost-allocation"))["application"]
    status, body = post(server.endpoint, "/applications", {"name": "bad", "releaseLabel": "emr-7.5.0", "type": "SPARK", "clientToken": "bad-cost",
                                                           "jobLevelCostAllocationConfiguration": {"enabled": "yes"}})
    assert status == 400 and "jobLevelCostAllocationConfiguration" in body["message"]
# ---- execution IAM policy: kept, shown, and enforced on a run's S3 access


def scoped_policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(",", ":"))


READ_IN = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policy-data/in/*"}
WRITE_OUT = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::policy-data/out/*"}
LIST_IN = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::policy-data",
           "Condition": {"StringLike": {"s3:prefix": "in/*"}}}


def test_execution_iam_policy_is_kept_shown_and_checked(server, emr):
    app = new_app(emr, "policy-manual")
    policy = {"policy": scoped_policy(READ_IN), "policyArns": ["arn:aws:iam::123456789012:policy/extra"]}
    run = new_run(emr, app, "scoped", executionIamPolicy=policy)
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["executionIamPolicy"] == policy
    assert "executionIamPolicy" not in emr.get_job_run(applicationId=app, jobRunId=new_run(emr, app, "unscoped"))["jobRun"]
    bad = [
        {"policy": scoped_policy({**READ_IN, "Resource": ["arn:aws:s3:::policy-data/" + "k" * 40] * 60})},  # over 2,048
        {"policy": scoped_policy(READ_IN).replace("in/*", "入力/*")},  # outside [ -ÿ] (unescaped)
        {"policy": "{not json"},
        {"policyArns": ["arn:aws:iam::123456789012:policy/p"] * 11},
    ]
    for body in bad:
        assert error_code(lambda: new_run(emr, app, "bad", executionIamPolicy=body)) == ("ValidationException", 400), body


@pytest.fixture
def s3(moto_endpoint):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket="policy-data")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for key in ("in/data.csv", "private/other.csv"):
        s3.put_object(Bucket="policy-data", Key=key, Body=b"a,b\n1,2\n")
    return s3


def test_the_gateway_lets_a_runs_own_s3_calls_through_only_as_its_policy_allows(moto_endpoint, s3):
    from types import SimpleNamespace

    run = SimpleNamespace(id="run-scoped", execution_role=ROLE, app=SimpleNamespace(account="123456789012"),
                          execution_iam_policy={"policy": scoped_policy(READ_IN, WRITE_OUT, LIST_IN)})
    gateway = emr_serverless.S3PolicyGateway(moto_endpoint, {run.id: run})
    try:
        def as_run(key_id: str):
            return boto3.client("s3", endpoint_url=gateway.endpoint, region_name="us-east-1",
                                aws_access_key_id=key_id, aws_secret_access_key="emulated")

        model = as_run(run.id)
        assert model.get_object(Bucket="policy-data", Key="in/data.csv")["Body"].read() == b"a,b\n1,2\n"
        assert [o["Key"] for o in model.list_objects_v2(Bucket="policy-data", Prefix="in/")["Contents"]] == ["in/data.csv"]
        model.put_object(Bucket="policy-data", Key="out/part-0.csv", Body=b"x")
        assert s3.get_object(Bucket="policy-data", Key="out/part-0.csv")["Body"].read() == b"x", "reached moto"
        denied = [
            lambda: model.get_object(Bucket="policy-data", Key="private/other.csv"),
            lambda: model.list_objects_v2(Bucket="policy-data", Prefix="private/"),
            lambda: model.list_objects_v2(Bucket="policy-data"),
            lambda: model.put_object(Bucket="policy-data", Key="in/data.csv", Body=b"overwritten"),
            lambda: model.delete_object(Bucket="policy-data", Key="in/data.csv"),
            lambda: model.copy_object(Bucket="policy-data", Key="out/copy.csv", CopySource="policy-data/private/other.csv"),
        ]
        for call in denied:
            with pytest.raises(ClientError) as info:
                call()
            assert info.value.response["Error"]["Code"] == "AccessDenied"
        assert "is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::policy-data/private/other.csv" in str(info.value)
        assert s3.get_object(Bucket="policy-data", Key="in/data.csv")["Body"].read() == b"a,b\n1,2\n", "the input is untouched"
        with pytest.raises(ClientError) as info:
            as_run("not-a-run").get_object(Bucket="policy-data", Key="in/data.csv")
        assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    finally:
        gateway.stop()


def test_execute_mode_fails_a_run_whose_policy_denies_what_it_fetches(execute, s3):
    srv, emr, _logs = execute()
    app = new_app(emr, "policy-execute")
    s3.put_object(Bucket="policy-data", Key="staged/driver.py", Body=b"print('hi')\n")
    policy = {"policy": scoped_policy(READ_IN)}
    run = fake_run(emr, app, {}, name="denied-entry", entry="s3://policy-data/staged/driver.py", executionIamPolicy=policy)
    ended = wait_for(emr, app, run)
    assert ended["state"] == "FAILED"
    assert "AccessDenied" in ended["stateDetails"] and "s3:GetObject" in ended["stateDetails"], ended["stateDetails"]
    # The same run allowed to read its entry point starts.
    allowed = {"policy": scoped_policy(READ_IN, {**READ_IN, "Resource": "arn:aws:s3:::policy-data/staged/*"})}
    run = fake_run(emr, app, {}, name="allowed-entry", entry="s3://policy-data/staged/driver.py", executionIamPolicy=allowed)
    assert wait_for(emr, app, run)["state"] == "SUCCESS"




# ---- what a run reads: mirrored when it exists, failing in the model only when opened

def metadata_run(emr, app: str, s3, name: str, behaviour: dict, inputs: list[str], assets: list[str]) -> str:
    """A run whose job metadata (shipped with --files, as submit stages it) names ``inputs`` and
    ``assets`` (keys in the bucket ``mirror-data``); its results folder is ``results/<name>/``."""
    metadata = {"modelModule": "m", "jobFunction": "f",
                "inputs": [{"name": k, "fileUrl": f"s3://mirror-data/{k}"} for k in inputs],
                "modelAssets": [{"name": k, "fileUrl": f"s3://mirror-data/{k}"} for k in assets],
                "outputs": [{"name": "out", "fileUrl": f"s3://mirror-data/out/{name}/"}]}
    s3.put_object(Bucket="mirror-data", Key=f"staging/{name}/job-metadata.json", Body=json.dumps(metadata).encode())
    return emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name=name, jobDriver={"sparkSubmit": {
        "entryPoint": "/dev/null", "sparkSubmitParameters": f"--files s3://mirror-data/staging/{name}/job-metadata.json",
        "entryPointArguments": ["behaviour=" + json.dumps(behaviour), f"s3://mirror-data/results/{name}/"]}},
        configurationOverrides={"monitoringConfiguration": {"cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": LOG_GROUP}}})["jobRunId"]


@pytest.fixture
def mirror_data(moto_endpoint):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket="mirror-data")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket="mirror-data", Key="in/data.csv", Body=b"a,b\n1,2\n")
    return s3


def test_a_missing_model_asset_the_model_never_opens_does_not_fail_the_run(execute, mirror_data):
    """EMR fetches no model asset up front: a README the model never opens may be missing."""
    srv, emr, logs = execute()
    app = new_app(emr, "mirror-unopened")
    run = metadata_run(emr, app, mirror_data, "unopened", {"open": ["inputs"]}, ["in/data.csv"], ["docs/README.md"])
    done = wait_for(emr, app, run)
    assert done["state"] == "SUCCESS", done.get("stateDetails")
    assert log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stdout")[-1] == "read in/data.csv"
    root = srv.runner.attempt_root(srv.emr.runs[run], 1)
    assert os.path.isfile(os.path.join(root, "s3", "mirror-data", "in", "data.csv")), "what exists is mirrored"
    assert not os.path.exists(os.path.join(root, "s3", "mirror-data", "docs")), "what does not is not made up"


def test_a_missing_input_fails_in_the_model_as_spark_says_it_on_emr(execute, mirror_data):
    """The run starts; the model's read fails; the logs, stateDetails and model error record name
    the s3:// URI (as EMRFS does), not the emulator's local mirror."""
    srv, emr, logs = execute()
    app = new_app(emr, "mirror-missing")
    run = metadata_run(emr, app, mirror_data, "missing", {"open": ["inputs"]}, ["in/absent.csv"], [])
    done = wait_for(emr, app, run)
    assert done["state"] == "FAILED"
    assert server_states(srv, run) == ["SUBMITTED", "SCHEDULED", "RUNNING", "FAILED"], "it failed in Spark, not before"
    expected = "[PATH_NOT_FOUND] Path does not exist: s3://mirror-data/in/absent.csv."
    assert done["stateDetails"].endswith("Last few exceptions: pyspark.errors.exceptions.captured.AnalysisException: " + expected), done["stateDetails"]
    stderr = log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stderr")
    root = srv.runner.attempt_root(srv.emr.runs[run], 1)
    assert f"pyspark.errors.exceptions.captured.AnalysisException: {expected}" in stderr
    assert not any(root in line for line in stderr), stderr
    record = json.loads(mirror_data.get_object(Bucket="mirror-data", Key="results/missing/model-error.json")["Body"].read())
    assert record["message"] == expected


def server_states(srv, run: str) -> list[str]:
    return srv.events.states(run)


def test_restore_s3_paths_covers_paths_and_file_uris():
    root = "/tmp/w/00frun"
    text = (f"Path does not exist: file:{root}/s3/b/k.csv. and file://{root}/s3/b/dir/ and '{root}/s3/b/x y.txt' "
            f"but not {root}/staged/model.py")
    assert emr_serverless.SparkRunner.restore_s3_paths(text, root) == (
        f"Path does not exist: s3://b/k.csv. and s3://b/dir/ and 's3://b/x y.txt' but not {root}/staged/model.py")


# ---- the local Spark's Python: the .venv's (numpy included), or a requirements file's own virtualenv

def test_a_missing_module_is_named_as_the_local_environments(execute):
    srv, emr, logs = execute()
    app = new_app(emr, "local-python")
    run = fake_run(emr, app, {"python": "import not_installed_here"})
    done = wait_for(emr, app, run)
    assert done["state"] == "FAILED" and "ModuleNotFoundError: No module named 'not_installed_here'" in done["stateDetails"]
    note = log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stderr")[-1]
    assert note.startswith("emr-serverless emulator: this run used local Spark, whose Python (") and "'not_installed_here'" in note
    assert "EMR_SERVERLESS_PYTHON_REQUIREMENTS=requirements.txt" in note


def test_the_local_python_has_numpy_for_pyspark_ml(execute):
    """What EMR Serverless's image gives a Python model, and pyspark.ml needs (tests/requirements.txt)."""
    srv, emr, logs = execute()
    app = new_app(emr, "numpy")
    run = fake_run(emr, app, {"python": "import numpy, pyspark.ml.linalg; print('numpy', numpy.__version__)"})
    done = wait_for(emr, app, run)
    assert done["state"] == "SUCCESS", log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stderr")
    assert any(line.startswith("numpy ") for line in log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stdout"))


def tiny_wheel(directory, name: str = "modelop_local_pkg", version: str = "0.1") -> str:
    """A pure-Python wheel made by hand (pip installs it offline)."""
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            wheel.writestr(member, text)
    return path


def test_a_requirements_file_gives_the_runs_a_python_of_their_own(moto_endpoint, fake_spark_submit, tmp_path, monkeypatch):
    """EMR_SERVERLESS_PYTHON_REQUIREMENTS: a virtualenv with the model's packages, the .venv's
    (numpy) still importable after them; made once and reused."""
    wheel = tiny_wheel(str(tmp_path))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{os.path.basename(wheel)}\n")  # relative to the file's folder
    monkeypatch.setenv("EMR_SERVERLESS_PYTHON_REQUIREMENTS", str(requirements))
    monkeypatch.setenv("EMR_SERVERLESS_PYTHON_ENVS", str(tmp_path / "envs"))
    runner = emr_serverless.SparkRunner(moto_endpoint, str(tmp_path / "work"), 2, spark_submit=fake_spark_submit)
    events = Events()
    srv = emr_serverless.Server(emr_serverless.EmrServerless(events, runner, log=lambda _m: None)).start()
    try:
        emr = client(srv.endpoint)
        app = new_app(emr, "own-python")
        check = "import sys, numpy, modelop_local_pkg; print(sys.prefix, modelop_local_pkg.VALUE)"
        runs = [fake_run(emr, app, {"python": check}, name=f"own-{i}") for i in range(2)]
        logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")
        for run in runs:
            done = wait_for(emr, app, run, timeout=120)
            assert done["state"] == "SUCCESS", log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stderr")
            prefix, value = log_lines(logs, f"applications/{app}/jobs/{run}/SPARK_DRIVER/stdout")[-1].split()
            assert value == "42" and prefix.startswith(str(tmp_path / "envs"))
        assert len([p for p in os.listdir(tmp_path / "envs") if (tmp_path / "envs" / p).is_dir()]) == 1, "one virtualenv, reused"
    finally:
        srv.stop()


def test_a_requirements_file_pip_cannot_install_fails_the_run_before_spark(moto_endpoint, fake_spark_submit, tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("./no-such-package.whl\n")
    monkeypatch.setenv("EMR_SERVERLESS_PYTHON_REQUIREMENTS", str(requirements))
    monkeypatch.setenv("EMR_SERVERLESS_PYTHON_ENVS", str(tmp_path / "envs"))
    runner = emr_serverless.SparkRunner(moto_endpoint, str(tmp_path / "work"), 2, spark_submit=fake_spark_submit)
    srv = emr_serverless.Server(emr_serverless.EmrServerless(Events(), runner, log=lambda _m: None)).start()
    try:
        emr = client(srv.endpoint)
        app = new_app(emr, "bad-python")
        done = wait_for(emr, app, fake_run(emr, app, {}), timeout=120)
        assert done["state"] == "FAILED"
        assert done["stateDetails"].startswith("Job run could not start: installing the model's Python requirements"), done["stateDetails"]
    finally:
        srv.stop()


# ---- on real local Spark: a pyspark.ml model, a missing asset it never opens, a missing input

ROOT = os.path.dirname(os.path.dirname(HERE))


def test_on_local_spark_a_pyspark_ml_model_runs_and_a_missing_input_fails_in_spark(moto_endpoint, tmp_path):
    """Two ModelOp jobs through the real driver and spark-submit (in parallel): the pyspark.ml
    pipeline model trains, saves and scores (numpy is there, as on EMR) although its job names a
    README asset that does not exist and that it never opens; the same model on an input that
    does not exist fails in Spark, saying so of the s3:// URI, as EMR does."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="spark-jobs")
    s3.upload_file(os.path.join(ROOT, "shared", "driver", "ModelOpPySparkDriver.py"), "spark-jobs", "code/ModelOpPySparkDriver.py")
    s3.upload_file(os.path.join(ROOT, "tests", "models", "pyspark_ml_model.py"), "spark-jobs", "code/pyspark_ml_model.py")
    s3.upload_file(os.path.join(ROOT, "tests", "models", "data", "sample_input.csv"), "spark-jobs", "data/sample_input.csv")
    runner = emr_serverless.SparkRunner(moto_endpoint, str(tmp_path / "work"), 2)
    events = Events()
    srv = emr_serverless.Server(emr_serverless.EmrServerless(events, runner, log=lambda _m: None)).start()
    try:
        emr = client(srv.endpoint)
        app = new_app(emr, "local-spark")

        def start(name: str, input_key: str) -> str:
            metadata = {"jobId": name, "jobType": "MODEL_BATCH_TRAINING_JOB", "modelModule": "pyspark_ml_model",
                        "jobFunction": "train", "jobParameters": {},
                        "inputs": [{"name": "input", "fileUrl": f"s3://spark-jobs/{input_key}"}],
                        "outputs": [{"name": "model", "fileUrl": f"s3://spark-jobs/out/{name}/model/"}],
                        "modelAssets": [{"name": "README.md", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://spark-jobs/docs/README.md"}]}
            s3.put_object(Bucket="spark-jobs", Key=f"staging/{name}/job-metadata.json", Body=json.dumps(metadata).encode())
            return emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name=name, jobDriver={"sparkSubmit": {
                "entryPoint": "s3://spark-jobs/code/ModelOpPySparkDriver.py",
                "entryPointArguments": ["--metadata", "job-metadata.json", "--results-uri", f"s3://spark-jobs/results/{name}/"],
                "sparkSubmitParameters": f"--py-files s3://spark-jobs/code/pyspark_ml_model.py "
                                         f"--files s3://spark-jobs/staging/{name}/job-metadata.json --conf spark.driver.memory=1g"}},
                configurationOverrides={"monitoringConfiguration": {"cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": LOG_GROUP}}})["jobRunId"]

        trained, missing = start("ml-train", "data/sample_input.csv"), start("ml-missing", "data/absent.csv")
        logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")
        done = wait_for(emr, app, trained, timeout=300)
        assert done["state"] == "SUCCESS", log_lines(logs, f"applications/{app}/jobs/{trained}/SPARK_DRIVER/stderr")[-30:]
        result = json.loads(s3.get_object(Bucket="spark-jobs", Key="results/ml-train/result.json")["Body"].read())["result"]
        assert result["rows"] == 20 and result["accuracy"] >= 0.8 and len(result["coefficients"]) == 2, result
        saved = [o["Key"] for o in s3.list_objects_v2(Bucket="spark-jobs", Prefix="out/ml-train/model/")["Contents"]]
        assert any(k.startswith("out/ml-train/model/stages/") for k in saved), saved

        failed = wait_for(emr, app, missing, timeout=300)
        assert failed["state"] == "FAILED"
        assert events.states(missing)[-2:] == ["RUNNING", "FAILED"], "the run started; Spark failed it"
        assert "Path does not exist: s3://spark-jobs/data/absent.csv" in failed["stateDetails"], failed["stateDetails"]
        record = json.loads(s3.get_object(Bucket="spark-jobs", Key="results/ml-missing/model-error.json")["Body"].read())
        assert record["exceptionType"].endswith("AnalysisException")
        assert "[PATH_NOT_FOUND] Path does not exist: s3://spark-jobs/data/absent.csv" in record["message"], record
        # The local mirror is not named (the traceback's own files are, as on EMR: /tmp/spark-*/ there).
        assert "/s3/spark-jobs/" not in json.dumps(record) + failed["stateDetails"]
    finally:
        srv.stop()


# ---- the StartJobRun rate quota

QUOTA_ROUTE = "/_emulator/emr-serverless/quota"


def get(endpoint: str, path: str) -> dict:
    with urllib.request.urlopen(endpoint + path, timeout=10) as r:
        return json.load(r)


def test_the_rate_quota_is_a_token_bucket():
    now = [100.0]
    quota = emr_serverless.RateQuota(2, burst=3, clock=lambda: now[0])
    assert [quota.take() for _ in range(4)] == [True, True, True, False], "a full bucket, then empty"
    now[0] += 0.4
    assert not quota.take(), "0.8 of a token refilled"
    now[0] += 0.1
    assert quota.take() and not quota.take(), "one token per 1/rate seconds"
    now[0] += 60
    assert [quota.take() for _ in range(4)] == [True, True, True, False], "never more than the burst"
    assert emr_serverless.RateQuota(25).burst == 25 and emr_serverless.RateQuota(0.5).burst == 1, "one second's worth, at least 1"
    for rate, burst in ((0, None), (-1, None), (1, 0.5)):
        with pytest.raises(ValueError):
            emr_serverless.RateQuota(rate, burst)


def test_start_job_run_beyond_the_quota_is_throttled_and_counted(server):
    # No SDK retries: each call is one request, as the counters see it.
    emr = boto3.client("emr-serverless", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
    app = new_app(emr, "quota")
    before = get(server.endpoint, QUOTA_ROUTE)
    assert (before["startJobRunRate"], before["startJobRunBurst"], before["startJobRunThrottled"]) == (None, None, 0), "none by default"
    try:
        # One token an hour after a bucket of two: the third and fourth requests find it empty.
        status, view = post(server.endpoint, QUOTA_ROUTE, {"startJobRunRate": 1 / 3600, "startJobRunBurst": 2})
        assert status == 200 and view["startJobRunBurst"] == 2 and view["startJobRunAttempts"] == 0
        first = new_run(emr, app, "q-1", clientToken="q-1")
        new_run(emr, app, "q-2", clientToken="q-2")
        assert error_code(lambda: new_run(emr, app, "q-3", clientToken="q-3")) == ("ThrottlingException", 429)
        # A repeated clientToken is a request like any other: throttled too, not answered from the token.
        assert error_code(lambda: new_run(emr, app, "q-1", clientToken="q-1")) == ("ThrottlingException", 429)
        with pytest.raises(ClientError) as info:
            new_run(emr, app, "q-3")
        assert info.value.response["Error"]["Message"] == "Rate exceeded"
        assert sorted(r["name"] for r in emr.list_job_runs(applicationId=app)["jobRuns"]) == ["q-1", "q-2"], "no run for a throttled request"
        assert emr.get_job_run(applicationId=app, jobRunId=first)["jobRun"]["name"] == "q-1", "other operations are not limited"
        view = get(server.endpoint, QUOTA_ROUTE)
        assert (view["startJobRunAttempts"], view["startJobRunThrottled"]) == (5, 3)
        # Setting it again fills the bucket and zeroes the counters; null lifts it.
        post(server.endpoint, QUOTA_ROUTE, {"startJobRunRate": 1 / 3600, "startJobRunBurst": 1})
        new_run(emr, app, "q-3", clientToken="q-3")
        assert error_code(lambda: new_run(emr, app, "q-4", clientToken="q-4"))[0] == "ThrottlingException"
        assert get(server.endpoint, QUOTA_ROUTE)["startJobRunThrottled"] == 1
    finally:
        assert post(server.endpoint, QUOTA_ROUTE, {"startJobRunRate": None}) == (200, {
            "startJobRunRate": None, "startJobRunBurst": None, "startJobRunAttempts": 0, "startJobRunThrottled": 0})
    for i in range(5):
        new_run(emr, app, f"free-{i}")
    assert get(server.endpoint, QUOTA_ROUTE)["startJobRunAttempts"] == 5, "still counted without a quota"
    for bad in ([], {}, {"startJobRunRate": 0}, {"startJobRunRate": "25"}, {"startJobRunRate": True},
                {"startJobRunRate": 5, "startJobRunBurst": 0.5}, {"startJobRunRate": None, "startJobRunBurst": 2},
                {"startJobRunRate": 5, "rate": 5}):
        status, out = post(server.endpoint, QUOTA_ROUTE, bad)
        assert status == 400 and out["message"], bad
    assert get(server.endpoint, QUOTA_ROUTE)["startJobRunRate"] is None, "a refused body changes nothing"


def test_a_rate_quota_paces_a_burst_of_clients(server):
    # 40 clients at once against 20 per second (a bucket of 5): about 5 get through at once, then 20 a second.
    emr = boto3.client("emr-serverless", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}, max_pool_connections=40))
    app = new_app(emr, "quota-burst")
    post(server.endpoint, QUOTA_ROUTE, {"startJobRunRate": 20, "startJobRunBurst": 5})
    try:
        accepted: list[float] = []
        started = time.monotonic()

        def until_accepted(i: int) -> None:
            while True:
                try:
                    new_run(emr, app, f"burst-{i}", clientToken=f"burst-{i}")
                    accepted.append(time.monotonic() - started)
                    return
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "ThrottlingException"
                    time.sleep(0.01)

        threads = [threading.Thread(target=until_accepted, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        view = get(server.endpoint, QUOTA_ROUTE)
    finally:
        post(server.endpoint, QUOTA_ROUTE, {"startJobRunRate": None})
    assert len(accepted) == 40 and len(emr.list_job_runs(applicationId=app)["jobRuns"]) == 40
    # (40 - 5) tokens at 20 per second: at least 1.75 s, whatever the machine's speed.
    assert max(accepted) >= 1.7
    assert view["startJobRunAttempts"] == 40 + view["startJobRunThrottled"] and view["startJobRunThrottled"] > 0


def test_cli_start_job_run_rate_flags():
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready.json")
        script = os.path.join(HERE, "emr_serverless.py")
        bad = subprocess.run([sys.executable, script, "--ready-file", ready, "--start-job-run-burst", "3"],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and "needs --start-job-run-rate" in bad.stderr
        proc = subprocess.Popen([sys.executable, script, "--ready-file", ready, "--quiet", "--start-job-run-rate", "0.001",
                                 "--start-job-run-burst", "1"], stdout=subprocess.PIPE, text=True)
        try:
            endpoint = json.loads(proc.stdout.readline())["endpoint"]
            assert get(endpoint, QUOTA_ROUTE)["startJobRunRate"] == 0.001
            emr = boto3.client("emr-serverless", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                               aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
            app = new_app(emr, "cli-quota")
            new_run(emr, app, "one")
            assert error_code(lambda: new_run(emr, app, "two")) == ("ThrottlingException", 429)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            proc.stdout.close()


# ---- GetDashboardForJobRun: the live Spark UI of a running local spark-submit

# A Spark job that keeps running (so its UI stays up) until the test writes the file it names.
SPARK_UI_JOB = r'''
import os, sys, time
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
print("rows", spark.range(1000).count(), flush=True)
stop = sys.argv[1]
deadline = time.monotonic() + 240
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.2)
spark.stop()
'''


def dashboard_error(emr, app: str, run: str, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_dashboard_of_runs_that_have_no_spark_ui(server, emr):
    app = new_app(emr, "dashboard-manual")
    run = new_run(emr, app, "dashboard-manual")
    code, message = dashboard_error(emr, app, run)
    assert code == "ValidationException" and "manual mode" in message, message
    assert error_code(lambda: emr.get_dashboard_for_job_run(applicationId=app, jobRunId="00fnosuchrun0000")) == ("ResourceNotFoundException", 404)


DASHBOARD_ROUTE = "/_emulator/emr-serverless/job-runs/dashboard"


def test_dashboard_link_a_test_gives_an_attempt_in_manual_mode(server, emr):
    """Manual mode runs nothing, so a test gives an attempt its Spark UI link; GetDashboardForJobRun
    answers it once that attempt has been RUNNING, for the latest attempt or the one ``attempt`` names."""
    app = new_app(emr, "dashboard-given")
    run = new_run(emr, app, "dashboard-given")
    status, answer = post(server.endpoint, DASHBOARD_ROUTE, {"applicationId": app, "jobRunId": run, "url": "https://ui.example/1"})
    assert (status, answer) == (200, {"applicationId": app, "jobRunId": run, "attempt": 1, "url": "https://ui.example/1"})
    code, message = dashboard_error(emr, app, run)
    assert code == "ValidationException" and "is SUBMITTED: its Spark UI starts once it is RUNNING" in message, message
    assert post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING"})[0] == 200
    assert emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run)["url"] == "https://ui.example/1"

    # A second attempt: no link until the test gives it one; attempt 1 (ended) keeps its own.
    assert post(server.endpoint, STATE_ROUTE, {"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": 2})[0] == 200
    code, message = dashboard_error(emr, app, run)
    assert code == "ValidationException" and "manual mode" in message, message
    status, answer = post(server.endpoint, DASHBOARD_ROUTE, {"applicationId": app, "jobRunId": run, "url": "https://ui.example/2"})
    assert (status, answer["attempt"]) == (200, 2), answer
    assert emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run)["url"] == "https://ui.example/2"
    assert emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run, attempt=1)["url"] == "https://ui.example/1"
    assert post(server.endpoint, DASHBOARD_ROUTE, {"applicationId": app, "jobRunId": run, "attempt": 1, "url": "https://ui.example/1b"})[0] == 200
    assert emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run, attempt=1)["url"] == "https://ui.example/1b"

    for body, expected, words in (
        ({"applicationId": app, "jobRunId": run, "attempt": 3, "url": "u"}, 404, "Attempt 3"),
        ({"applicationId": app, "jobRunId": "00fnosuchrun0000", "url": "u"}, 404, "not"),
        ({"applicationId": app, "jobRunId": run}, 400, "url is required"),
        ({"applicationId": app, "jobRunId": run, "url": ""}, 400, "url"),
        ({"applicationId": app, "jobRunId": run, "url": "u", "state": "RUNNING"}, 400, "unknown fields: state"),
    ):
        status, answer = post(server.endpoint, DASHBOARD_ROUTE, body)
        assert status == expected and words in answer["message"], (body, answer)


def test_no_dashboard_links_are_given_in_execute_mode(execute):
    srv, _emr, _logs = execute()
    status, answer = post(srv.endpoint, DASHBOARD_ROUTE, {"applicationId": "a", "jobRunId": "r", "url": "u"})
    assert status == 400 and "execute mode" in answer["message"], answer


def test_application_monitoring_configuration_is_accepted_and_returned(server, emr):
    off = {"managedPersistenceMonitoringConfiguration": {"enabled": False},
           "cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": "/aws/emr-serverless"}}
    got = emr.get_application(applicationId=new_app(emr, "log-storage-off", monitoringConfiguration=off))["application"]
    assert got["monitoringConfiguration"] == off
    assert "monitoringConfiguration" not in emr.get_application(applicationId=new_app(emr, "log-storage-default"))["application"]
    for bad in ({"managedPersistenceMonitoringConfiguration": {"enabled": "no"}}, {"managedPersistence": {"enabled": False}},
                {"s3MonitoringConfiguration": "s3://logs/"}, ["managedPersistenceMonitoringConfiguration"]):
        status, body = post(server.endpoint, "/applications", {"name": "bad", "releaseLabel": "emr-7.5.0", "type": "SPARK",
                                                               "clientToken": f"bad-monitoring-{bad}", "monitoringConfiguration": bad})
        assert status == 400 and "monitoringConfiguration" in body["message"], (bad, body)


def test_dashboard_url_is_read_from_the_driver_log():
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "stderr")
        assert emr_serverless.spark_ui_port(log) is None, "no log yet"
        with open(log, "w") as f:
            f.write("26/12/06 15:00:00 INFO JettyUtils: Start Jetty 127.0.0.1:41234 for SparkUI\n")
        assert emr_serverless.spark_ui_port(log) is None, "not listening yet"
        with open(log, "a") as f:
            f.write("26/12/06 15:00:00 WARN Utils: Service 'SparkUI' could not bind on port 41234. Attempting port 41235.\n"
                    "26/12/06 15:00:00 INFO Utils: Successfully started service 'SparkUI' on port 41235.\n")
        assert emr_serverless.spark_ui_port(log) == 41235, "the port it started on (the next one if taken): Spark 3.5"
        with open(log, "w") as f:
            f.write("INFO SparkUI: Bound SparkUI to 127.0.0.1, and started at http://localhost:41236\n")
        assert emr_serverless.spark_ui_port(log) == 41236, "older Spark releases' line"
    port = emr_serverless.free_port()
    assert 0 < port < 65536


def test_dashboard_of_a_running_run_is_its_local_spark_ui_on_real_spark(moto_endpoint, tmp_path):
    """A run on real local Spark: GetDashboardForJobRun answers the live Spark UI's URL, on
    loopback, which serves the run's own Spark application; once the run ended, the UI is gone and
    the emulator says so (no Spark History Server here)."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="spark-ui")
    s3.put_object(Bucket="spark-ui", Key="code/ui_job.py", Body=SPARK_UI_JOB.encode())
    stop = tmp_path / "stop"
    runner = emr_serverless.SparkRunner(moto_endpoint, str(tmp_path / "work"), 1)
    srv = emr_serverless.Server(emr_serverless.EmrServerless(Events(), runner, log=lambda _m: None)).start()
    try:
        emr = client(srv.endpoint)
        app = new_app(emr, "spark-ui")
        run = emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name="spark-ui", jobDriver={"sparkSubmit": {
            "entryPoint": "s3://spark-ui/code/ui_job.py", "entryPointArguments": [str(stop)],
            "sparkSubmitParameters": "--conf spark.driver.memory=512m"}})["jobRunId"]
        wait_for(emr, app, run, states=("RUNNING", "SUCCESS", "FAILED"), timeout=120)
        url = emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run)["url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), url
        assert int(url.rsplit(":", 1)[1].rstrip("/")) == srv.emr._run("us-east-1", app, run).ui_port, "the port asked of Spark"
        assert "INFO JettyUtils: Start Jetty 127.0.0.1:" in open(tmp_path / "work" / run / "stderr").read(), "on loopback only"
        with urllib.request.urlopen(url + "api/v1/applications", timeout=30) as answer:
            applications = json.load(answer)
        assert [a["name"] for a in applications] == [f"emr-serverless-{run}"], applications
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert "Spark" in answer.read().decode(errors="replace")
        assert emr.get_dashboard_for_job_run(applicationId=app, jobRunId=run, attempt=1)["url"] == url, "attempt 1 is the running one"
        stop.touch()
        assert wait_for(emr, app, run, timeout=120)["state"] == "SUCCESS"
        code, message = dashboard_error(emr, app, run)
        assert code == "ValidationException" and "has ended (SUCCESS)" in message, message
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
    finally:
        stop.touch()
        srv.stop()
