"""ModelOp's basic lifecycle with the operator CLI on the local stack, on real local Spark (the
README's "Train, then score, locally"): ``modelop-spark --local submit training.json --wait``
trains a Spark ML pipeline (``tests/models/pyspark_ml_model.py``) from a local CSV and a local model
file, and saves it to S3; ``submit scoring.json --wait`` scores with the pipeline it wrote (an
``s3://`` prefix); and ``submit test.json --wait`` tests a local copy of that pipeline, a folder the
CLI uploads as a prefix. Then ``ui`` (the running score job's live Spark UI), ``status``, ``logs`` and
``ls`` of those jobs. The run controls as an operator sees them are in ``test_cli_run_controls.py``
(a stack of their own, on the other xdist worker); the stack is ``cli_local.py``'s.
"""

from __future__ import annotations

import json
import os

from cli_local import SUFFIX, L, cli, document, stack  # noqa: F401 (stack: the module's fixture)

PIPELINE = f"s3://{L.DATA_BUCKET}/lifecycle-{SUFFIX}/pipeline/"


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
