"""End to end on a laptop: ModelOp jobs through the compiled submit, monitor and cleanup binaries,
moto as AWS and real local Spark as EMR Serverless (``tests/emulator/local_aws.py``).

One stack serves the module; every job is inserted at the start so the Spark runs overlap:

* the three sample jobs (score, metrics, train on ``spark_sample_model.py`` and the sample CSV);
* a job whose model raises (``failing_model.py``);
* a job that a user cancels while it runs (``slow_model.py``);
* a sample score job whose EMR events are all dropped on the way to monitor, so only the
  reconciliation sweep can end it;
* a job written the way ModelOp writes its own (``local_stack.modelop_style_job``): a model that
  selects its input by ``assetRole``, opens a ``FILE`` asset and ends with ``SPARK.stop()``;
* a job whose model reads an S3 object its job does not name (``undeclared_read_model.py``): its
  run's least-privilege session policy, enforced by the emulator, denies the read.

Every run is scoped (per-job least privilege is on by default): the sample jobs complete with
their own policy, recorded on the row as ``jobPermissions``.

Needs the function binaries built (``tests/build-functions.sh``; ``tests/run.sh`` does).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

import local_stack as L  # noqa: E402

SUFFIX = uuid.uuid4().hex[:6]
SCORE, METRICS, TRAIN = f"e2e-score-{SUFFIX}", f"e2e-metrics-{SUFFIX}", f"e2e-train-{SUFFIX}"
FAILING, CANCEL, DROPPED = f"e2e-failing-{SUFFIX}", f"e2e-cancel-{SUFFIX}", f"e2e-dropped-{SUFFIX}"
MODELOP_STYLE = f"e2e-modelop-{SUFFIX}"
UNDECLARED = f"e2e-undeclared-{SUFFIX}"
TIMEOUT = 300


@pytest.fixture(scope="module")
def stack():
    log_dir = L.new_log_dir("modelop-e2e-")
    stack = L.Stack(log_dir, drop_events_for=[DROPPED], schedule_seconds=3.0, max_concurrent_runs=3)
    try:
        stack.wait_ready()
        stack.upload_samples()
        # The cancelled job first, so it gets a Spark slot at once.
        stack.put_job(L.sample_job(CANCEL, "MODEL_BATCH_JOB", model="slow_model.py"))
        for job_id, job_type in ((SCORE, "MODEL_BATCH_JOB"), (METRICS, "MODEL_BATCH_TEST_JOB"), (TRAIN, "MODEL_BATCH_TRAINING_JOB")):
            stack.put_job(L.sample_job(job_id, job_type))
        stack.put_job(L.sample_job(FAILING, "MODEL_BATCH_JOB", model="failing_model.py"))
        stack.put_job(L.sample_job(DROPPED, "MODEL_BATCH_JOB"))
        stack.put_job(L.modelop_style_job(MODELOP_STYLE))
        stack.put_job(L.sample_job(UNDECLARED, "MODEL_BATCH_JOB", model="undeclared_read_model.py"))
        yield stack
    finally:
        stack.stop()
        L.print_log_tail(log_dir)


def finished(stack: L.Stack, job_id: str) -> dict:
    return stack.finished(job_id, TIMEOUT)


def csv_rows(stack: L.Stack, prefix: str) -> list[dict]:
    parts = [u for u in stack.objects(prefix) if u.endswith(".csv")]
    assert parts, f"no CSV part under {prefix}"
    rows = []
    for part in parts:
        rows += list(csv.DictReader(io.StringIO(stack.text(part))))
    return rows


def assert_common_success(stack: L.Stack, job: dict) -> None:
    assert job["jobStatus"] == "COMPLETE", job.get("errorMessage")
    assert job["emrState"] == "SUCCESS"
    history = [(h["status"], h.get("emrState")) for h in job["statusHistory"]]
    assert history[0] == ("WAITING", None) and history[-1] == ("COMPLETE", "SUCCESS"), history
    # Driver logs: stored on the job by monitor, and in CloudWatch Logs where EMR puts them.
    assert "[ModelOpPySparkDriver] Job finished successfully" in job["driverLogs"]["stdout"]
    assert job["driverLogs"]["logGroupName"] == "/aws/emr-serverless"
    assert any("Job finished successfully" in line for line in stack.driver_log(job, "stdout"))
    assert stack.driver_log(job, "stderr"), "the driver's stderr stream exists"
    # The staging folder is gone.
    assert stack.staged_keys(job["id"]) == []
    run = stack.emr.get_job_run(applicationId=job["emrApplicationId"], jobRunId=job["sparkApplicationId"])["jobRun"]
    assert (run["state"], run["name"]) == ("SUCCESS", job["id"])
    assert_scoped(stack, job)


def assert_scoped(stack: L.Stack, job: dict) -> None:
    """The run was started with the job's own session policy, as recorded on the row."""
    permissions = job["jobPermissions"]
    assert permissions["scoped"] is True and permissions["source"] == "configuration", permissions
    run = stack.emr.get_job_run(applicationId=job["emrApplicationId"], jobRunId=job["sparkApplicationId"])["jobRun"]
    assert run["executionIamPolicy"]["policy"] == permissions["policy"]
    assert len(permissions["policy"]) == permissions["policySize"] <= 2048


def test_score_job_completes_with_scored_output(stack):
    job = finished(stack, SCORE)
    assert_common_success(stack, job)
    expected = L.expected_sample_results()
    rows = csv_rows(stack, f"s3://{L.DATA_BUCKET}/output/{SCORE}/scored/")
    assert len(rows) == expected["rowCount"] == 20
    for row in rows:
        assert float(row["score"]) == pytest.approx(1.0 + 0.5 * float(row["x1"]) + 2.0 * float(row["x2"]))
    assert job["modelResult"]["function"] == "action"
    assert job["modelResult"]["result"] == {"initialized": True, "rowCount": 20, "columns": ["id", "x1", "x2", "label", "score"]}
    assert job["outputFiles"] == [{"name": "output", "fileUrl": f"s3://{L.DATA_BUCKET}/output/{SCORE}/scored/", "exists": True}]


def test_metrics_job_result_matches_the_model_on_the_sample_input(stack):
    job = finished(stack, METRICS)
    assert_common_success(stack, job)
    assert job["modelResult"]["function"] == "metrics"
    (result,) = job["modelResult"]["result"]
    expected = L.expected_sample_results()
    assert result["rowCount"] == expected["rowCount"]
    for key in ("meanScore", "mean_x1", "mean_x2", "mean_label"):
        assert result[key] == pytest.approx(expected[key]), key


def test_training_job_saves_the_model(stack):
    job = finished(stack, TRAIN)
    assert_common_success(stack, job)
    summary = job["modelResult"]["result"]
    assert summary["rowCount"] == 20 and summary["features"] == ["x1", "x2"]
    parts = [u for u in stack.objects(f"s3://{L.DATA_BUCKET}/output/{TRAIN}/model/") if u.endswith(".json")]
    lines = [line for part in parts for line in stack.text(part).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert '"rowCount":20' in lines[0]
    assert job["outputFiles"][0]["exists"] is True


def test_a_model_that_raises_ends_in_error_with_the_exception(stack):
    job = finished(stack, FAILING)
    assert job["jobStatus"] == "ERROR"
    assert job["emrState"] == "FAILED"
    message = job["errorMessage"]
    assert message.startswith(f"job {FAILING}: EMR Serverless job run FAILED"), message
    assert "ValueError: failing_model: deliberate scoring failure (code FM-4711)" in message + job["driverLogs"]["stderr"]
    assert "Traceback" in job["driverLogs"]["stderr"]
    assert "modelResult" not in job
    assert stack.staged_keys(FAILING) == []


def test_a_user_cancel_stops_spark_and_ends_cancelled(stack):
    running = L.wait_until(lambda: (j := stack.job(CANCEL)) and j.get("jobStatus") == "RUNNING" and j, TIMEOUT,
                           what=f"{CANCEL} to run")
    run_id, app_id = running["sparkApplicationId"], running["emrApplicationId"]
    process = L.wait_until(lambda: (p := stack.run_process(run_id))["alive"] and p, 60, what="spark-submit to start")
    stack.cancel_job(CANCEL)  # ModelOp Center's cancel

    job = finished(stack, CANCEL)
    assert job["jobStatus"] == "CANCELLED"
    assert stack.staged_keys(CANCEL) == []
    L.wait_until(lambda: not stack.run_process(run_id)["alive"], 30, what="spark-submit to stop")
    # Its whole process group (the JVM, the Python driver) follows: SIGTERM, then SIGKILL after 5 s;
    # spark-submit itself may be gone a moment before its children are.
    L.wait_until(lambda: not group_exists(process["pid"]), 15, interval=0.2, what="the spark-submit process group to end")
    run = L.wait_until(lambda: (r := stack.emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"])["state"] == "CANCELLED" and r,
                       30, what="the run to be CANCELLED")
    assert run["stateDetails"]
    assert "modelResult" not in job


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_lost_events_are_recovered_by_the_sweep(stack):
    job = finished(stack, DROPPED)
    assert_common_success(stack, job)
    assert job["modelResult"]["result"]["rowCount"] == 20
    assert len(csv_rows(stack, f"s3://{L.DATA_BUCKET}/output/{DROPPED}/scored/")) == 20
    with open(os.path.join(stack.log_dir, "local-aws.log"), errors="replace") as f:
        text = f.read()
    assert f"dropped EMR Serverless Job Run State Change {DROPPED} SUCCESS" in text
    assert f"monitor <- EMR Serverless Job Run State Change {DROPPED}" not in text


def test_a_job_written_as_modelop_writes_them_completes(stack):
    job = finished(stack, MODELOP_STYLE)
    assert_common_success(stack, job)
    stdout = job["driverLogs"]["stdout"]
    for line in ("role UNKNOWN", "schema df_sample_scored_input_schema.avsc fields id,x1", "threshold 0.7", "rows 20"):
        assert line in stdout, f"{line!r} not in the driver's stdout:\n{stdout}"
    # The model wrote its output (to the s3a:// URL, normalised) before it stopped Spark.
    output = f"s3://{L.DATA_BUCKET}/output/{MODELOP_STYLE}/scored/"
    assert job["outputFiles"] == [{"fileUrl": output, "exists": True}]
    assert len(csv_rows_headerless(stack, output)) == 20
    # ModelOp's own fields.
    assert [p["parameter"] for p in job["ignoredJobParameters"]] == ["--total-executor-cores", "-v"]
    assert job["jobWaitTime"] <= job["jobRunTime"] <= job["jobEndTime"]
    assert any(m.endswith("[info] role UNKNOWN") for m in job["jobMessages"]), job["jobMessages"]


def csv_rows_headerless(stack: L.Stack, prefix: str) -> list[list[str]]:
    rows = []
    for part in (u for u in stack.objects(prefix) if u.endswith(".csv")):
        rows += list(csv.reader(io.StringIO(stack.text(part))))
    return rows


def test_a_model_reading_an_object_its_job_does_not_name_fails_with_permission(stack):
    job = finished(stack, UNDECLARED)
    assert job["jobStatus"] == "ERROR", job.get("errorMessage")
    assert_scoped(stack, job)
    stdout, stderr = job["driverLogs"]["stdout"], job["driverLogs"]["stderr"]
    # Its declared input was readable with the same credentials; the other team's object was not.
    assert "read its declared input" in stdout, stdout
    assert "AccessDenied" in stderr and f"{L.DATA_BUCKET}/{L.PRIVATE_KEY}" in stderr, stderr
    assert "could be read" not in stderr
    assert job["failure"]["class"] == "PERMISSION", job["failure"]
