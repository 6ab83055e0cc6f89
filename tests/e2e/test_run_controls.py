"""End to end on real local Spark: the run controls (shared/README.md, "Run controls").

One stack serves the module, configured the way these scenarios need (``local_aws.py
--function-env``): ``EMR_RELEASE_VERSION=emr-7.9.0`` (retries, scheduler and cancel grace period
all available), ``EMR_APP_MAX_CONCURRENT_RUNS=2`` (the application it creates runs two jobs at once
and queues the rest), ``EMR_CANCEL_GRACE_PERIOD_SECONDS=15``; the EMR Serverless emulator's clock
runs at ``TIME_SCALE`` seconds per emulated minute, so a 5-minute execution timeout fires after 30 s
(and the 15 s grace period lasts 1.5 s).

The jobs, all inserted by the fixture (the cancelled and the timed-out one first, so they hold the
application's two slots while the others queue):

* a model that stops cleanly on SIGTERM (``graceful_model.py``), cancelled by its user;
* a model that outlives its 5-minute timeout (``slow_model.py``, job parameter);
* a model that fails its first attempt and succeeds on its second (``flaky_model.py``, two attempts
  by job parameter);
* a model that imports a module nobody installed (``missing_dependency_model.py``);
* four tiny jobs (``tiny_model.py``), queued behind the others.

Needs the function binaries built (``tests/build-functions.sh``; ``tests/run.sh`` does).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

import local_stack as L  # noqa: E402

SUFFIX = uuid.uuid4().hex[:6]
GRACEFUL, TIMED_OUT, FLAKY, MISSING = (f"rc-{name}-{SUFFIX}" for name in ("graceful", "timeout", "flaky", "missing"))
TINY = [f"rc-tiny{i}-{SUFFIX}" for i in range(4)]
TIME_SCALE = 6.0  # seconds per emulated minute
MAX_CONCURRENT = 2
GRACE_SECONDS = 15
TIMEOUT = 420


@pytest.fixture(scope="module")
def markers():
    path = tempfile.mkdtemp(prefix="modelop-e2e-rc-")
    yield path


@pytest.fixture(scope="module")
def stack(markers):
    log_dir = L.new_log_dir("modelop-e2e-rc-")
    stack = L.Stack(log_dir, schedule_seconds=3.0, max_concurrent_runs=MAX_CONCURRENT, time_scale=TIME_SCALE, function_env={
        "EMR_RELEASE_VERSION": "emr-7.9.0",
        "EMR_APP_MAX_CONCURRENT_RUNS": str(MAX_CONCURRENT),
        "EMR_CANCEL_GRACE_PERIOD_SECONDS": str(GRACE_SECONDS),
    })
    try:
        stack.wait_ready()
        stack.upload_samples()
        stack.put_job(L.sample_job(GRACEFUL, "MODEL_BATCH_JOB", model="graceful_model.py", parameters={
            "--conf spark.modelop.test.marker.dir": markers}))
        stack.put_job(L.sample_job(TIMED_OUT, "MODEL_BATCH_JOB", model="slow_model.py", parameters={
            "--conf modelop.serverless.job.timeout.minutes": "5"}))
        # Both launched (and so admitted first, oldest first) before the others are inserted.
        for job_id in (GRACEFUL, TIMED_OUT):
            L.wait_until(lambda: (stack.job(job_id) or {}).get("sparkApplicationId"), 120, what=f"{job_id} to be launched")
        stack.put_job(L.sample_job(FLAKY, "MODEL_BATCH_JOB", model="flaky_model.py", parameters={
            "--conf modelop.serverless.job.max.attempts": "2",
            "--conf spark.modelop.test.marker": os.path.join(markers, "flaky-attempt-1")}))
        stack.put_job(L.sample_job(MISSING, "MODEL_BATCH_JOB", model="missing_dependency_model.py"))
        for job_id in TINY:
            stack.put_job(L.sample_job(job_id, "MODEL_BATCH_JOB", model="tiny_model.py"))
        yield stack
    finally:
        stack.stop()
        L.print_log_tail(log_dir)


def finished(stack: L.Stack, job_id: str) -> dict:
    return stack.finished(job_id, TIMEOUT)


def emr_states(job: dict) -> list[str]:
    return [h.get("emrState") for h in job.get("statusHistory", [])]


def test_a_cancel_with_a_grace_period_lets_the_model_shut_down(stack, markers):
    L.wait_until(lambda: os.path.exists(os.path.join(markers, "started")), TIMEOUT, what="graceful_model to install its hook")
    running = stack.job(GRACEFUL)
    assert running["jobStatus"] == "RUNNING", running.get("statusHistory")
    assert running["runControls"]["cancelGracePeriodSeconds"] == GRACE_SECONDS
    run_id = running["sparkApplicationId"]
    stack.cancel_job(GRACEFUL)  # ModelOp Center's cancel

    job = finished(stack, GRACEFUL)
    assert job["jobStatus"] == "CANCELLED"
    with open(os.path.join(markers, "shutdown-hook")) as f:
        assert "graceful_model: shutdown hook ran (SIGTERM)" in f.read()
    L.wait_until(lambda: not stack.run_process(run_id)["alive"], 30, what="spark-submit to stop")
    # Cleanup cancelled the run with the configured grace period.
    with open(os.path.join(stack.log_dir, "cleanup.log"), errors="replace") as f:
        lines = [json.loads(line) for line in f if line.startswith("{")]
    cancels = [l["fields"] for l in lines if l.get("fields", {}).get("message") == "job run cancelled"
               and l["fields"].get("job_id") == GRACEFUL]
    assert [c["grace_period_seconds"] for c in cancels] == [GRACE_SECONDS], cancels
    assert stack.staged_keys(GRACEFUL) == []
    assert "modelResult" not in job


def test_a_model_that_outlives_its_timeout_ends_in_error(stack):
    job = finished(stack, TIMED_OUT)
    assert job["jobStatus"] == "ERROR", job.get("statusHistory")
    assert job["failure"]["class"] == "TIMEOUT", job["failure"]
    assert "5 minutes" in job["failure"]["summary"], job["failure"]
    assert job["runControls"]["executionTimeoutMinutes"] == 5
    assert job["runControls"]["sources"]["executionTimeoutMinutes"] == "jobParameters"
    assert job["provenance"]["executionTimeoutMinutes"] == 5
    assert "modelResult" not in job
    assert stack.staged_keys(TIMED_OUT) == []


def test_a_model_that_fails_its_first_attempt_completes_on_the_second(stack):
    job = finished(stack, FLAKY)
    assert job["jobStatus"] == "COMPLETE", (job.get("errorMessage"), job.get("failure"))
    assert job["modelResult"]["result"] == {"retried": True, "rows": 10}
    assert [a["attempt"] for a in job["attempts"]] == [1, 2], job["attempts"]
    assert job["attempts"][0]["state"] == "FAILED" and job["attempts"][1]["state"] == "SUCCESS", job["attempts"]
    assert job["driverLogs"]["attempt"] == 2
    assert "flaky_model: a later attempt, succeeding" in job["driverLogs"]["stdout"]
    assert job["provenance"]["attempts"] == 2 and job["provenance"]["maxAttempts"] == 2, job["provenance"]
    assert job["runControls"]["maxAttempts"] == 2
    assert "failure" not in job
    # The first attempt's driver logs are where EMR puts them, under attempt 1's path.
    assert any("first attempt, failing" in line for line in stack.driver_log(job, "stdout"))


def test_a_model_importing_a_missing_module_ends_in_missing_dependency(stack):
    job = finished(stack, MISSING)
    assert job["jobStatus"] == "ERROR"
    failure = job["failure"]
    assert failure["class"] == "MISSING_DEPENDENCY", failure
    assert failure["evidence"]["module"] == "modelop_e2e_absent_module", failure
    assert "modelop_e2e_absent_module" in failure["summary"]
    assert stack.staged_keys(MISSING) == []


def test_jobs_beyond_the_applications_concurrency_queue_then_complete(stack):
    jobs = [finished(stack, job_id) for job_id in TINY]
    for job in jobs:
        assert job["jobStatus"] == "COMPLETE", (job["id"], job.get("errorMessage"), job.get("failure"))
        assert job["modelResult"]["result"] == {"rows": 5}
    queued = [job for job in jobs if "QUEUED" in emr_states(job)]
    assert len(queued) >= 2, [(j["id"], emr_states(j)) for j in jobs]
    for job in queued:
        assert job["provenance"]["queuedDurationMilliseconds"] > 0, job["provenance"]
    # The application the service created carries the scheduler configuration.
    app = stack.emr.get_application(applicationId=jobs[0]["emrApplicationId"])["application"]
    assert app["schedulerConfiguration"]["maxConcurrentRuns"] == MAX_CONCURRENT
    assert app["releaseLabel"] == "emr-7.9.0"
