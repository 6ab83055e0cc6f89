"""End to end from ModelOp Center: jobs POSTed to the emulated model-manage the way ModelOp's
``submit.py`` does it (``POST <gateway>/model-manage/api/jobs``, a bearer token from the OAuth2
client credentials grant) are claimed by the compiled ``bridge`` on its schedule, run by submit,
EMR Serverless (real local Spark) and monitor, and their progress is written back to model-manage
through the bridge's stream mapping (``local_aws.py --model-manage``):

* a sample score job ends COMPLETE in model-manage, with ``jobResult`` SUCCESS, its times and its
  messages (the claim line, the run id, the driver's output);
* a job whose model raises ends ERROR there, with the reason in ``jobMessages``.

Needs the function binaries built (``tests/build-functions.sh``).
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

import local_stack as L  # noqa: E402

TIMEOUT = 300
FAILURE = "failing_model: deliberate scoring failure (code FM-4711)"


@pytest.fixture(scope="module")
def stack():
    log_dir = L.new_log_dir("modelop-e2e-bridge-")
    stack = L.Stack(log_dir, schedule_seconds=2.0, max_concurrent_runs=2, model_manage=True)
    try:
        stack.wait_ready()
        stack.upload_samples()
        yield stack
    finally:
        stack.stop()
        L.print_log_tail(log_dir)


@pytest.fixture(scope="module")
def submitted(stack):
    """The jobs POSTed at once, so their Spark runs overlap: {kind: model-manage's id}."""
    jobs = {"complete": L.model_manage_job("MODEL_BATCH_JOB", name="bridge-score"),
            "error": L.model_manage_job("MODEL_BATCH_JOB", model="failing_model.py", name="bridge-failing"),
            "test": L.model_manage_job("MODEL_BATCH_TEST_JOB", name="bridge-test")}
    ids = {}
    for kind, job in jobs.items():
        stored = stack.submit_to_modelop(job)
        assert stored["jobStatus"] == "CREATED" and stored["id"], stored
        ids[kind] = stored["id"]
    return ids


def ended_in_modelop(stack: L.Stack, job_id: str) -> dict:
    """The job once model-manage shows it final and the row is final and cleaned (nothing more to write back)."""
    def done():
        job, row = stack.modelop_job(job_id), stack.job(job_id)
        return job if job and job.get("jobStatus") in L.FINAL and row and row.get("cleanedAt") else None

    L.wait_until(done, TIMEOUT, what=f"{job_id} to end in model-manage")
    return L.wait_until(lambda: _settled(stack, job_id), 30, what=f"{job_id}'s last write-back")


def _settled(stack: L.Stack, job_id: str) -> dict | None:
    """model-manage holds every line of the row (the final write-back has landed)."""
    job, row = stack.modelop_job(job_id), stack.job(job_id)
    return job if set(row.get("jobMessages") or []) <= set(job.get("jobMessages") or []) else None


def assert_times(job: dict) -> None:
    times = [job.get(k) for k in ("jobWaitTime", "jobRunTime", "jobEndTime")]
    assert all(isinstance(t, int) for t in times), times
    assert times[0] <= times[1] <= times[2], times


def test_a_job_posted_to_model_manage_ends_complete_there(stack, submitted):
    job_id = submitted["complete"]
    job = ended_in_modelop(stack, job_id)
    row = stack.job(job_id)
    assert row["jobStatus"] == "COMPLETE" and row["modelManage"]["source"] == "model-manage", row.get("errorMessage")
    assert (job["jobStatus"], job["jobResult"]) == ("COMPLETE", "SUCCESS"), job.get("jobMessages")
    assert_times(job)
    assert (job["jobWaitTime"], job["jobRunTime"], job["jobEndTime"]) == (job["jobWaitTime"], row["jobRunTime"], row["jobEndTime"])
    messages = job["jobMessages"]
    assert "[info] claimed for AWS EMR Serverless [claimed by modelop-spark-serverless internal-client@" in messages[0], messages
    assert any(f"EMR Serverless job run {row['sparkApplicationId']}" in line for line in messages), messages
    assert len(messages) > 2, messages
    assert job["lastUpdateFromRuntime"] and job["lastModifiedBy"] == "internal-client"
    # ModelOp's own fields are left as it wrote them.
    assert job["targetEngine"]["engineType"] == "SPARK_SERVERLESS_RUNTIME" and job["model"] and job["inputData"]


def test_a_failing_job_posted_to_model_manage_ends_error_there_with_the_reason(stack, submitted):
    job_id = submitted["error"]
    job = ended_in_modelop(stack, job_id)
    row = stack.job(job_id)
    assert row["jobStatus"] == "ERROR", row
    assert (job["jobStatus"], job["jobResult"]) == ("ERROR", "UNKNOWN"), job.get("jobMessages")
    assert_times(job)
    errors = [line for line in job["jobMessages"] if "[error]" in line]
    assert errors, job["jobMessages"]
    assert any(FAILURE in line or "EMR Serverless job run FAILED" in line for line in errors), errors
    assert any(FAILURE in line for line in job["jobMessages"]), job["jobMessages"]


def test_a_test_jobs_result_is_written_back_as_its_test_result_output(stack, submitted):
    """"Updates job with output data": the metrics the model returned on real Spark reach
    model-manage as the inline FILE asset a stored test job carries (MODELOP_TEST_RESULT_ASSET's
    default, test_result.json)."""
    import base64
    import json

    job_id = submitted["test"]
    job = ended_in_modelop(stack, job_id)
    row = stack.job(job_id)
    assert (row["jobStatus"], job["jobStatus"], job["jobResult"]) == ("COMPLETE", "COMPLETE", "SUCCESS"), job.get("jobMessages")
    assets = [a for a in job.get("outputData") or [] if a.get("name") == "test_result.json"]
    assert len(assets) == 1, job.get("outputData")
    asset = assets[0]
    assert (asset["assetType"], asset["fileFormat"]) == ("FILE", "JSON"), asset
    content = base64.b64decode(asset["fileContent"])
    assert asset["fileSize"] == len(content)
    assert json.loads(content) == row["modelResult"]["result"], "the model's metrics, as the monitor read them"
    assert json.loads(content), "the sample model's metrics are not empty"
