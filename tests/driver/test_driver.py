"""Tests of shared/driver/ModelOpPySparkDriver.py.

Most tests run the driver for real, the way EMR Serverless does, under spark-submit:

    spark-submit --master local[2] --py-files model_source.py --files job-metadata.json \\
        ModelOpPySparkDriver.py --metadata job-metadata.json --results-uri <dir>

Each spark-submit takes ~10 s here, so their number is kept small. A few pure-Python helpers of
the driver are also tested in-process (no JVM).

The sample data, tests/models/data/sample_input.csv, has 20 rows (id, x1, x2, label), with
mean(x1) = 8.65, mean(x2) = 4.375, mean(label) = 12.589, and for the sample model's fixed formula
score = 1.0 + 0.5 * x1 + 2.0 * x2, mean(score) = 14.075. The tests recompute these from the CSV
with the csv module rather than trusting the numbers above.
"""

import csv
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "shared" / "driver" / "ModelOpPySparkDriver.py"
MODELS = REPO / "tests" / "models"
SAMPLE_MODEL = MODELS / "spark_sample_model.py"
FAILING_MODEL = MODELS / "failing_model.py"
SAMPLE_CSV = MODELS / "data" / "sample_input.csv"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
sys.path.insert(0, str(REPO / "tests" / "emulator"))
from emr_serverless import LOCAL_SPARK_JAVA_OPTIONS  # noqa: E402 (the emulator's local Spark's JVM options)
SUBMIT_TIMEOUT_S = 600

# The sample model's scoring formula, restated independently of the model.
INTERCEPT, W_X1, W_X2 = 1.0, 0.5, 2.0


# --------------------------------------------------------------------------------------------
# Helpers


def read_sample_rows():
    with open(SAMPLE_CSV, newline="") as handle:
        return list(csv.DictReader(handle))


def asset(name, url):
    return {"name": name, "assetType": "EXTERNAL_FILE", "fileUrl": str(url)}


def metadata(job_function, *, job_type="MODEL_BATCH_JOB", module="model_source", init="begin",
             inputs=None, outputs=None, job_id="job-0001"):
    return {
        "jobId": job_id,
        "jobType": job_type,
        "modelModule": module,
        "initFunction": init,
        "jobFunction": job_function,
        "inputs": inputs if inputs is not None else [asset("sample_input.csv", SAMPLE_CSV)],
        "outputs": outputs or [],
        "modelAssets": [],
        "jobParameters": {"threshold": "0.5"},
    }


class SubmitRun:
    def __init__(self, completed, results_dir):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.results_dir = results_dir
        self.result_file = results_dir / "result.json"

    def describe(self):
        return "exit {}\n--- stdout ---\n{}\n--- stderr (tail) ---\n{}".format(
            self.returncode, self.stdout, self.stderr[-6000:]
        )

    def result(self):
        assert self.returncode == 0, self.describe()
        assert self.result_file.is_file(), self.describe()
        return json.loads(self.result_file.read_text(encoding="utf-8"))


def run_driver(tmp_path, model_file, meta, *, metadata_as_path=False, results_uri=None, extra_files=(), conf=()):
    """Stages the model and the metadata as the submit Lambda does and runs spark-submit.

    The working directory is a separate empty directory, so a bare metadata name can only be
    found through SparkFiles (what --files gives the driver).
    """
    assert SPARK_SUBMIT.exists(), (
        "no spark-submit next to {}: run the tests with the Python of a venv that has "
        "tests/requirements.txt installed".format(sys.executable)
    )
    staging = tmp_path / "staging"
    staging.mkdir()
    # --py-files makes a .py importable under its file name: it must be <modelModule>.py.
    model_copy = staging / (meta["modelModule"] + ".py")
    shutil.copyfile(model_file, model_copy)
    meta_file = staging / "job-metadata.json"
    meta_file.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    results_dir = tmp_path / "results"
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    command = [
        str(SPARK_SUBMIT),
        "--master", "local[2]",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.log.level=WARN",
        "--conf", f"spark.driver.extraJavaOptions={LOCAL_SPARK_JAVA_OPTIONS}",
        "--py-files", str(model_copy),
    ]
    for pair in conf:
        command += ["--conf", pair]
    shipped = [str(f) for f in extra_files]
    if not metadata_as_path:
        shipped.insert(0, str(meta_file))
    if shipped:
        command += ["--files", ",".join(shipped)]
    command += [
        str(DRIVER),
        "--metadata", str(meta_file) if metadata_as_path else "job-metadata.json",
        "--results-uri", results_uri or str(results_dir),
    ]
    env = dict(os.environ)
    env.update(
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    env.pop("SPARK_HOME", None)  # use the pyspark installation next to this interpreter
    completed = subprocess.run(
        command,
        cwd=str(workdir),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=SUBMIT_TIMEOUT_S,
    )
    return SubmitRun(completed, results_dir)


def single_part_file(directory, suffix):
    parts = sorted(glob.glob(str(Path(directory) / ("part-*" + suffix))))
    assert len(parts) == 1, "expected one part file in {}: {}".format(directory, os.listdir(directory))
    return parts[0]


# --------------------------------------------------------------------------------------------
# spark-submit runs


def test_score_calls_init_writes_scored_csv_and_result(tmp_path):
    output = tmp_path / "out" / "scored"
    meta = metadata("action", outputs=[asset("scored", output)], job_id="job-score")
    run = run_driver(tmp_path, SAMPLE_MODEL, meta)
    document = run.result()

    # init ran before the score function, which saw its effect.
    assert "Calling init function begin()" in run.stdout
    assert "spark_sample_model: begin() initialized the model" in run.stdout
    assert "spark_sample_model: action() called, initialized=True" in run.stdout
    assert run.stdout.index("begin() initialized") < run.stdout.index("action() called")
    assert "Calling job function action(" in run.stdout
    assert "Result written to {}/result.json".format(tmp_path / "results") in run.stdout
    # The application is named after the job; asset URLs are not logged.
    assert "application 'ModelOp-job-score' started" in run.stdout
    assert str(SAMPLE_CSV) not in run.stdout

    assert document == {
        "jobId": "job-score",
        "jobType": "MODEL_BATCH_JOB",
        "function": "action",
        "result": {"initialized": True, "rowCount": 20, "columns": ["id", "x1", "x2", "label", "score"]},
    }

    expected = read_sample_rows()
    with open(single_part_file(output, ".csv"), newline="") as handle:
        scored = list(csv.DictReader(handle))
    assert len(scored) == len(expected) == 20
    assert list(scored[0].keys()) == ["id", "x1", "x2", "label", "score"]
    by_id = {row["id"]: row for row in scored}
    for row in expected:
        want = INTERCEPT + W_X1 * float(row["x1"]) + W_X2 * float(row["x2"])
        assert float(by_id[row["id"]]["score"]) == pytest.approx(want)


def test_metrics_generator_is_collected_and_matches_the_csv(tmp_path):
    rows = read_sample_rows()
    n = len(rows)
    x1 = [float(r["x1"]) for r in rows]
    x2 = [float(r["x2"]) for r in rows]
    label = [float(r["label"]) for r in rows]
    expected = {
        "rowCount": n,  # 20
        "meanScore": sum(INTERCEPT + W_X1 * a + W_X2 * b for a, b in zip(x1, x2)) / n,  # 14.075
        "mean_x1": sum(x1) / n,  # 8.65
        "mean_x2": sum(x2) / n,  # 4.375
        "mean_label": sum(label) / n,  # 12.589
    }

    meta = metadata("metrics", job_type="MODEL_BATCH_TEST_JOB", init=None, job_id="job-metrics")
    # A file: URI with a trailing slash: the driver joins it with exactly one '/'.
    results_uri = (tmp_path / "results").as_uri() + "/"
    run = run_driver(tmp_path, SAMPLE_MODEL, meta, results_uri=results_uri)
    document = run.result()

    assert "No init function" in run.stdout
    assert "Job function yielded 1 value(s), collected into a list" in run.stdout
    assert "Result written to {}result.json".format(results_uri) in run.stdout
    assert document["jobId"] == "job-metrics"
    assert document["jobType"] == "MODEL_BATCH_TEST_JOB"
    assert document["function"] == "metrics"
    # metrics() is a generator: its single yielded dict arrives in a list.
    assert isinstance(document["result"], list) and len(document["result"]) == 1
    metrics = document["result"][0]
    assert set(metrics) == set(expected)
    assert metrics["rowCount"] == 20
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key


def test_train_with_metadata_given_as_a_path(tmp_path):
    model_dir = tmp_path / "out" / "trained_model"
    meta = metadata(
        "train",
        job_type="MODEL_BATCH_TRAINING_JOB",
        outputs=[asset("trained_model", model_dir)],
        job_id="job-train",
    )
    # No --files: the driver reads the metadata from the path through Hadoop's FileSystem.
    run = run_driver(tmp_path, SAMPLE_MODEL, meta, metadata_as_path=True)
    document = run.result()
    assert "Reading job metadata from {}".format(tmp_path / "staging" / "job-metadata.json") in run.stdout
    assert document["function"] == "train"
    summary = document["result"]
    assert summary["rowCount"] == 20
    assert summary["features"] == ["x1", "x2"]

    # The coefficients are the least-squares fit: the residuals are orthogonal to 1, x1 and x2.
    b0, b1, b2 = summary["intercept"], summary["coefficients"]["x1"], summary["coefficients"]["x2"]
    rows = read_sample_rows()
    residuals = [
        float(r["label"]) - (b0 + b1 * float(r["x1"]) + b2 * float(r["x2"])) for r in rows
    ]
    assert sum(residuals) == pytest.approx(0.0, abs=1e-6)
    assert sum(e * float(r["x1"]) for e, r in zip(residuals, rows)) == pytest.approx(0.0, abs=1e-5)
    assert sum(e * float(r["x2"]) for e, r in zip(residuals, rows)) == pytest.approx(0.0, abs=1e-5)
    # The data were generated as label = 3 + 1.5 x1 - 0.8 x2 + noise in [-1, 1].
    assert b1 == pytest.approx(1.5, abs=0.2) and b2 == pytest.approx(-0.8, abs=0.3)

    # The model artifact is a Spark JSON output directory holding the same coefficients.
    assert (model_dir / "_SUCCESS").exists()
    with open(single_part_file(model_dir, ".json")) as handle:
        saved = [json.loads(line) for line in handle if line.strip()]
    assert saved == [{"intercept": pytest.approx(b0), "coef_x1": pytest.approx(b1),
                      "coef_x2": pytest.approx(b2), "rowCount": 20}]


MODELOP_STYLE_MODEL = MODELS / "modelop_style_model.py"
UNANNOTATED_MODEL = MODELS / "unannotated_model.py"


def test_a_modelop_style_model_that_stops_spark_completes(tmp_path):
    """ModelOp's public examples end score() with SPARK.stop(), select inputs by assetRole, open a
    FILE model asset by name from the working directory and may read job parameters from the Spark
    conf: the job completes and the result is written after the model stopped Spark."""
    output = tmp_path / "out" / "scored"
    schema = tmp_path / "files" / "schema.avsc"
    schema.parent.mkdir()
    schema.write_text(json.dumps([{"name": "id", "type": "int"}, {"name": "x1", "type": "double"}]), encoding="utf-8")
    whole_input = dict(asset("", SAMPLE_CSV), assetRole="UNKNOWN", assetId="a-1", fileSize=0, fileFormat="CSV",
                       repositoryInfo={"repositoryType": "S3_REPOSITORY", "host": "minio", "port": 9000})
    meta = metadata("score", init="init", module="modelop_style_model", job_id="job-modelop-style",
                    inputs=[whole_input], outputs=[asset("", output)])
    meta["modelAssets"] = [{"assetType": "EXTERNAL_FILE", "assetRole": "MODEL_SCHEMA", "filename": "schema.avsc",
                            "fileUrl": str(schema), "originalAssetType": "FILE"}]
    meta["workingDirectoryFiles"] = ["schema.avsc"]
    run = run_driver(tmp_path, MODELOP_STYLE_MODEL, meta, extra_files=[schema],
                     conf=["spark.modelop.threshold=0.7", "spark.modelop.job.workingDir=s3://staging/jobs/job-modelop-style/"])
    document = run.result()
    assert document["function"] == "score" and document["result"] is None
    assert "role UNKNOWN" in run.stdout, run.describe()
    assert "Placed schema.avsc in the working directory" in run.stdout
    assert "schema schema.avsc fields id,x1" in run.stdout
    assert "threshold 0.7" in run.stdout
    assert "working folder s3://staging/jobs/job-modelop-style/" in run.stdout
    assert "rows 20" in run.stdout
    # The model's own output, written before it stopped Spark.
    with open(single_part_file(output, ".csv"), newline="") as handle:
        assert len(list(csv.reader(handle))) == 20


def test_a_model_without_annotations_runs_the_function_its_asset_names(tmp_path):
    meta = metadata("predict", init="setup", module="unannotated_model", job_id="job-unannotated")
    run = run_driver(tmp_path, UNANNOTATED_MODEL, meta)
    document = run.result()
    assert "unannotated_model: setup() called" in run.stdout, run.describe()
    assert "unannotated_model: predict() read 20 rows" in run.stdout
    assert document["function"] == "predict" and document["result"] == {"rows": 20}


def test_failing_model_fails_the_job_with_its_traceback(tmp_path):
    meta = metadata("action", module="failing_model", init=None, job_id="job-fail")
    run = run_driver(tmp_path, FAILING_MODEL, meta)
    assert run.returncode != 0, run.describe()
    assert "Traceback (most recent call last)" in run.stderr, run.describe()
    assert "ValueError: failing_model: deliberate scoring failure (code FM-4711)" in run.stderr
    assert "in action" in run.stderr  # the model's own frame is in the traceback
    assert "Calling job function action(" in run.stdout
    assert not run.result_file.exists()
    # The model error record, beside where result.json would be, for the monitor.
    record = json.loads((run.results_dir / "model-error.json").read_text(encoding="utf-8"))
    assert record["exceptionType"] == "ValueError", record
    assert record["message"] == "failing_model: deliberate scoring failure (code FM-4711)"
    assert record["tracebackTail"].endswith("ValueError: failing_model: deliberate scoring failure (code FM-4711)")
    assert "in action" in record["tracebackTail"]


def test_missing_function_fails_with_a_clear_message(tmp_path):
    meta = metadata("score_it", init="begin", job_id="job-missing")
    run = run_driver(tmp_path, SAMPLE_MODEL, meta)
    assert run.returncode != 0, run.describe()
    assert "model module 'model_source' has no job function 'score_it'" in run.stderr, run.describe()
    # Nothing of the model ran, not even init, and no result was written.
    assert "Calling init function" not in run.stdout
    assert not run.result_file.exists()
    assert not (run.results_dir / "model-error.json").exists(), "a set-up error is not the model's"


# --------------------------------------------------------------------------------------------
# In-process tests of the driver's helpers (no Spark session)


@pytest.fixture(scope="module")
def driver():
    spec = importlib.util.spec_from_file_location("modelop_pyspark_driver", str(DRIVER))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_results_are_collected_into_a_list(driver):
    def many():
        yield {"a": 1}
        yield 2
        yield "three"

    assert driver.collect_result(many()) == [{"a": 1}, 2, "three"]
    assert driver.collect_result(iter([1, 2])) == [1, 2]
    assert driver.collect_result(x for x in ()) == []
    for plain in ({"a": 1}, [1, 2], "text", 5, None):
        assert driver.collect_result(plain) is plain


def test_results_are_made_json_safe(driver):
    from pyspark.sql import Row

    class WithToDict:
        def to_dict(self):
            return {"k": (1, 2)}

    class FakeNumpyScalar:
        ndim = 0

        def item(self):
            return 1.5

    FakeNumpyScalar.__module__ = "numpy"

    class Other:
        def __str__(self):
            return "other-object"

    value = {
        "row": Row(name="a", n=1, nested=Row(x=2.5)),
        "to_dict": WithToDict(),
        "numpy": FakeNumpyScalar(),
        "other": Other(),
        1: float("nan"),
        "list": [True, None, {3}],
    }
    safe = driver.to_json_safe(value)
    assert safe == {
        "row": {"name": "a", "n": 1, "nested": {"x": 2.5}},
        "to_dict": {"k": [1, 2]},
        "numpy": 1.5,
        "other": "other-object",
        "1": None,
        "list": [True, None, [3]],
    }
    json.dumps(safe, allow_nan=False)


def test_metadata_references_and_result_uri(driver):
    assert driver.is_bare_name("job-metadata.json")
    for ref in ("s3://bucket/prefix/job-metadata.json", "/tmp/job-metadata.json",
                "file:/tmp/job-metadata.json", "staging/job-metadata.json"):
        assert not driver.is_bare_name(ref), ref
    for base in ("s3://bucket/prefix/job/results", "s3://bucket/prefix/job/results/",
                 "s3://bucket/prefix/job/results//"):
        assert driver.result_uri(base) == "s3://bucket/prefix/job/results/result.json"
    assert driver.result_uri("/tmp/results") == "/tmp/results/result.json"


def test_metadata_validation(driver):
    meta = driver.validate_metadata({"modelModule": "m", "jobFunction": "f"})
    assert meta["inputs"] == [] and meta["outputs"] == [] and meta["modelAssets"] == []
    assert meta["jobParameters"] == {}
    with pytest.raises(driver.DriverError, match="jobFunction"):
        driver.validate_metadata({"modelModule": "m", "jobFunction": None})
    with pytest.raises(driver.DriverError, match="inputs"):
        driver.validate_metadata({"modelModule": "m", "jobFunction": "f", "inputs": {}})


def test_missing_model_module_is_a_clear_driver_error(driver):
    with pytest.raises(driver.DriverError, match="model module 'no_such_model_module_x' not found"):
        driver.import_model("no_such_model_module_x")


def test_model_error_records_are_bounded_and_name_the_qualified_type(driver):
    class CapturedError(Exception):
        pass

    CapturedError.__module__ = "pyspark.errors.exceptions.captured"

    def deep(n):
        if n == 0:
            raise CapturedError("x" * 10_000)
        deep(n - 1)

    try:
        deep(60)
    except CapturedError as exc:
        record = driver.model_error_record(exc)
    assert record["exceptionType"].startswith("pyspark.errors.exceptions.captured.") and record["exceptionType"].endswith(".CapturedError")
    assert len(record["message"]) == driver.MODEL_ERROR_MESSAGE_CHARS
    assert len(record["tracebackTail"]) <= driver.MODEL_ERROR_TRACEBACK_CHARS
    assert len(record["tracebackTail"].splitlines()) <= driver.MODEL_ERROR_TRACEBACK_LINES
    try:
        import no_such_dependency_xyz  # noqa: F401
    except ModuleNotFoundError as exc:
        record = driver.model_error_record(exc)
    assert (record["exceptionType"], record["message"]) == ("ModuleNotFoundError", "No module named 'no_such_dependency_xyz'")
    assert driver.model_error_uri("s3://b/p/job/results/") == "s3://b/p/job/results/model-error.json"
