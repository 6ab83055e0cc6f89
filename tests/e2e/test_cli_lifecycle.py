"""ModelOp's basic lifecycle with the operator CLI on the local stack, on real local Spark (the
README's "Train, then score, locally"): ``modelop-spark --local submit training.json --wait``
trains a Spark ML pipeline (``tests/models/pyspark_ml_model.py``) from a local CSV and a local model
file, and saves it to S3; ``submit scoring.json --wait`` scores with the pipeline it wrote (an
``s3://`` prefix); and ``submit test.json --wait`` tests a local copy of that pipeline, a folder the
CLI uploads as a prefix. Then ``ui`` (the running score job's live Spark UI), ``status``, ``logs`` and
``ls`` of those jobs.

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not os.path.exists(CLI):
        subprocess.run(["cargo", "build", "-q", "-p", "modelop-spark"], cwd=ROOT, check=True)
    log_dir = L.new_log_dir("modelop-e2e-cli-")
    stack = L.Stack(log_dir, schedule_seconds=3.0, max_concurrent_runs=2)
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


def cli(stack, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, f"--local={stack.cli_ready}", "--no-color", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, NO_COLOR="1"))


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
