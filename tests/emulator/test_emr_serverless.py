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
            return [e["detail"]["state"] for e in self.items if e["detail"]["jobRunId"] == run_id]


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
