"""ModelOp's basic lifecycle with the operator CLI on the local stack, on real local Spark (the
README's "Train, then score, locally"): ``modelop-spark --local submit training.json --wait``
trains a Spark ML pipeline (``tests/models/pyspark_ml_model.py``) from a local CSV and a local model
file, and saves it to S3; ``submit scoring.json --wait`` scores with the pipeline it wrote (an
``s3://`` prefix); and ``submit test.json --wait`` tests a local copy of that pipeline, a folder the
CLI uploads as a prefix. Then ``ui`` (the running score job's live Spark UI), ``status``, ``logs`` and
``ls`` of those jobs.

Then, on the same stack, the run controls as an operator sees them: a job whose run fails its first
attempt and is retried (``tests/models/flaky_model.py``, two attempts), submitted with ``submit
--follow`` and also followed with ``logs -f``: both cross from attempt 1's driver log to attempt 2's
(the banner on stderr) and exit with the final outcome's code; and a job that stops cleanly on
SIGTERM (``tests/models/graceful_model.py``), cancelled with ``cancel ID --grace 15 --wait``: it ends
CANCELLED, cleanup cancelled its run with the 15 s grace period (its log), and the model's SIGTERM
handler ran. The stack's functions use ``EMR_RELEASE_VERSION=emr-7.9.0``, which has both retries and
cancel grace periods.

Needs the function binaries and the CLI built (``tests/build-functions.sh``, ``cargo build -p modelop-spark``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

import local_stack as L  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
CLI = os.path.join(ROOT, "target", "debug", "modelop-spark")
SUFFIX = uuid.uuid4().hex[:6]
PIPELINE = f"s3://{L.DATA_BUCKET}/lifecycle-{SUFFIX}/pipeline/"
TIMEOUT = 420


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not os.path.exists(CLI):
        subprocess.run(["cargo", "build", "-q", "-p", "modelop-spark"], cwd=ROOT, check=True)
    log_dir = L.new_log_dir("modelop-e2e-cli-")
    stack = L.Stack(log_dir, schedule_seconds=3.0, max_concurrent_runs=2, function_env={"EMR_RELEASE_VERSION": "emr-7.9.0"})
    try:
        info = stack.wait_ready()
        stack.upload_samples()
        ready = tmp_path_factory.mktemp("cli") / "ready.json"
        ready.write_text(json.dumps(info) + "\n")
        stack.cli_ready = str(ready)
        yield stack
    except BaseException:
        L.print_log_tail(log_dir)
        raise
    finally:
        stack.stop()


def cli_args(stack, *args: str) -> list[str]:
    return [CLI, f"--local={stack.cli_ready}", "--no-color", *args]


def cli(stack, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run(cli_args(stack, *args), capture_output=True, text=True, timeout=timeout, env=dict(os.environ, NO_COLOR="1"))


def cli_in_background(stack, *args: str) -> subprocess.Popen:
    return subprocess.Popen(cli_args(stack, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, NO_COLOR="1"))


def document(folder, name: str, job_id: str, job_type: str, assets: list[dict], inputs: list[dict], outputs: list[dict]) -> str:
    job = {"id": job_id, "jobType": job_type,
           "model": {"storedModel": {"modelMetaData": {"name": "credit-pipeline"}, "modelAssets": [
               {"name": "pyspark_ml_model.py", "assetType": "SOURCE_CODE", "primaryModelSource": True,
                "fileUrl": os.path.join(L.MODELS, "pyspark_ml_model.py")}, *assets]}},
           "inputData": inputs, "outputData": outputs, "jobParameters": {"--conf spark.executor.cores": "1"}}
    path = folder / name
    path.write_text(json.dumps(job))
    return str(path)


def test_train_then_score_and_test_with_the_pipeline_it_wrote(stack, tmp_path):
    local_input = tmp_path / "credit.csv"
    local_input.write_text(open(os.path.join(L.MODELS, "data", "sample_input.csv")).read())
    train_id, score_id, test_id = f"cli-train-{SUFFIX}", f"cli-score-{SUFFIX}", f"cli-test-{SUFFIX}"

    # 1. Train from a local CSV and a local model file; the pipeline goes to S3.
    training = document(tmp_path, "training.json", train_id, "MODEL_BATCH_TRAINING_JOB", [],
                        [{"name": "credit.csv", "assetType": "EXTERNAL_FILE", "fileUrl": "credit.csv"}],
                        [{"name": "pipeline", "assetType": "EXTERNAL_FILE", "fileUrl": PIPELINE}])
    trained = cli(stack, "submit", training, "--wait")
    assert trained.returncode == 0, (trained.stdout, trained.stderr, stack.job(train_id))
    assert f"uploaded {local_input}" in trained.stderr and "inlined" in trained.stderr, trained.stderr
    row = stack.job(train_id)
    assert row["jobStatus"] == "COMPLETE" and row["modelResult"]["result"]["accuracy"] >= 0.8, row.get("modelResult")
    saved = stack.objects(PIPELINE)
    assert any("/stages/" in key for key in saved), saved

    # 2. Score with the pipeline it wrote (an s3:// prefix), and 3. test a local copy of it (a folder the CLI uploads).
    local_pipeline = tmp_path / "pipeline"
    prefix = PIPELINE[len(f"s3://{L.DATA_BUCKET}/"):]
    for uri in saved:
        key = uri[len(f"s3://{L.DATA_BUCKET}/"):]
        target = local_pipeline / key[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        stack.s3.download_file(L.DATA_BUCKET, key, str(target))
    sample = {"name": "sample_input.csv", "assetType": "EXTERNAL_FILE", "fileUrl": f"s3://{L.DATA_BUCKET}/{L.INPUT_KEY}"}
    scored_uri = f"s3://{L.DATA_BUCKET}/lifecycle-{SUFFIX}/scored/"
    scoring = document(tmp_path, "scoring.json", score_id, "MODEL_BATCH_JOB",
                       [{"name": "pipeline", "assetType": "EXTERNAL_FILE", "fileUrl": PIPELINE}], [sample],
                       [{"name": "scored", "assetType": "EXTERNAL_FILE", "fileUrl": scored_uri}])
    testing = document(tmp_path, "test.json", test_id, "MODEL_BATCH_TEST_JOB",
                       [{"name": "pipeline", "assetType": "EXTERNAL_FILE", "fileUrl": "pipeline"}], [sample], [])
    for path in (scoring, testing):
        submitted = cli(stack, "submit", path)
        assert submitted.returncode == 0, submitted.stderr
    # While it runs, `ui` gives the run's live local Spark UI (the emulator's GetDashboardForJobRun).
    ui = cli(stack, "ui", score_id, "--wait", timeout=180)
    assert ui.returncode == 0 and ui.stdout.startswith("http://127.0.0.1:"), (ui.stdout, ui.stderr, stack.job(score_id))
    for job_id in (score_id, test_id):
        watched = cli(stack, "watch", job_id, "--timeout", "6m")
        assert watched.returncode == 0, (watched.stdout, watched.stderr, stack.job(job_id))

    score_row, test_row = stack.job(score_id), stack.job(test_id)
    assert score_row["modelResult"]["result"]["rows"] == 20, score_row.get("modelResult")
    assert any(uri.endswith(".csv") for uri in stack.objects(scored_uri)), stack.objects(scored_uri)
    assert test_row["model"]["storedModel"]["modelAssets"][1]["fileUrl"] == f"s3://{L.DATA_BUCKET}/user/{test_id}/pipeline/"
    assert test_row["modelResult"]["result"]["accuracy"] >= 0.8, test_row.get("modelResult")

    # The operator's views of them.
    status = cli(stack, "status", score_id)
    assert status.returncode == 0 and "COMPLETE" in status.stdout, status.stdout
    logs = cli(stack, "logs", train_id)
    assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr
    listed = cli(stack, "ls", "--status", "COMPLETE", "-o", "json")
    assert {train_id, score_id, test_id} <= {job["id"] for job in json.loads(listed.stdout)}, listed.stdout


def test_a_retried_run_followed_across_attempts_and_a_cancel_with_grace(stack, tmp_path):
    flaky_id, graceful_id = f"cli-flaky-{SUFFIX}", f"cli-graceful-{SUFFIX}"
    markers = tmp_path / "markers"
    markers.mkdir()
    graceful = tmp_path / "graceful.json"
    graceful.write_text(json.dumps(L.sample_job(graceful_id, "MODEL_BATCH_JOB", model="graceful_model.py", parameters={
        "--conf spark.modelop.test.marker.dir": str(markers)})))
    flaky = tmp_path / "flaky.json"
    flaky.write_text(json.dumps(L.sample_job(flaky_id, "MODEL_BATCH_JOB", model="flaky_model.py", parameters={
        "--conf modelop.serverless.job.max.attempts": "2",
        "--conf spark.modelop.test.marker": str(markers / "flaky-attempt-1")})))

    # Both run at once (the stack runs two): the graceful one until it is cancelled, the flaky one twice.
    submitted = cli(stack, "submit", str(graceful))
    assert submitted.returncode == 0, submitted.stderr
    submit_follow = cli_in_background(stack, "submit", str(flaky), "--follow")
    L.wait_until(lambda: stack.job(flaky_id), 30, what=f"submit --follow to write {flaky_id}")
    logs_follow = cli_in_background(stack, "logs", flaky_id, "-f")

    # A cancel with a grace period, once the model's SIGTERM handler is in place.
    L.wait_until(lambda: (markers / "started").exists(), TIMEOUT, what="graceful_model to install its hook")
    cancelled = cli(stack, "cancel", graceful_id, "--grace", "15", "--wait", "--timeout", "3m", timeout=240)
    run_id = stack.job(graceful_id)["sparkApplicationId"]
    assert cancelled.returncode == 3, (cancelled.stdout, cancelled.stderr)
    assert f"{graceful_id}: CANCELLED (was RUNNING); cleanup cancels run {run_id} with a 15 s grace period" in cancelled.stdout, cancelled.stdout
    assert "run CANCELLED; staging folder released" in cancelled.stdout, cancelled.stdout
    assert "no cancel grace period" not in cancelled.stderr, cancelled.stderr
    row = stack.job(graceful_id)
    assert (row["jobStatus"], row["cancelGracePeriodSeconds"]) == ("CANCELLED", 15), row
    assert "graceful_model: shutdown hook ran (SIGTERM)" in (markers / "shutdown-hook").read_text()
    with open(os.path.join(stack.log_dir, "cleanup.log"), errors="replace") as f:
        lines = [json.loads(line) for line in f if line.startswith("{")]
    cancels = [l["fields"] for l in lines if l.get("fields", {}).get("message") == "job run cancelled" and l["fields"].get("job_id") == graceful_id]
    assert [c["grace_period_seconds"] for c in cancels] == [15], cancels

    # Both followers crossed from attempt 1's driver log to attempt 2's and exit with the outcome's code (COMPLETE).
    for follower in (submit_follow, logs_follow):
        out, err = follower.communicate(timeout=TIMEOUT)
        assert follower.returncode == 0, (follower.args, out, err, stack.job(flaky_id))
        first, second = out.find("flaky_model: first attempt, failing"), out.find("flaky_model: a later attempt, succeeding")
        assert 0 <= first < second, (follower.args, out, err)
        assert "── attempt 2 of 2 (the run was retried) ──" in err, (follower.args, err)
    job = stack.job(flaky_id)
    assert job["jobStatus"] == "COMPLETE" and [a["attempt"] for a in job["attempts"]] == [1, 2], job.get("attempts")
