#!/usr/bin/env python3
"""ModelOp PySpark driver: the entry point of every ModelOp batch job run on Spark.

Run under spark-submit, the same way on Amazon EMR Serverless and on a laptop:

    spark-submit --py-files model_source.py[,extra.py...] --files job-metadata.json \\
        ModelOpPySparkDriver.py --metadata job-metadata.json --results-uri s3://bucket/prefix/<job>/results/

``--metadata`` is either a bare file name shipped with ``--files`` (looked up with
``SparkFiles.get``, then in the working directory) or a path/URI (``s3://...``, ``file:...``,
``/abs/path``, ``rel/path``) read through Spark's Hadoop FileSystem layer.

The metadata JSON names the model module (shipped with ``--py-files``), an optional init
function and the job function. The driver imports the module, calls ``init()``, then
``job_fn(external_inputs, external_outputs, external_model_assets)``, collects a generator's
values into a list, and writes ``<results-uri>/result.json``::

    {"jobId": ..., "jobType": ..., "function": ..., "result": <JSON-safe value>}

Any failure (bad metadata, missing module or function, an exception in the model) prints the
traceback to stderr, stops Spark and exits with status 1, so spark-submit (and the EMR job run)
fails. When the model's own code raises (its import, init or job function), the driver first
writes ``<results-uri>/model-error.json`` for the monitor to read::

    {"exceptionType": "ModuleNotFoundError", "message": "No module named 'xgboost'",
     "tracebackTail": "  File \"model_source.py\", line 3, in <module>\n    import xgboost\n..."}

Standard library and pyspark only; Python 3.9+.
"""

import argparse
import collections.abc
import datetime
import decimal
import importlib
import json
import math
import os
import sys
import traceback
from urllib.parse import unquote, urlparse

LOG_PREFIX = "[ModelOpPySparkDriver]"
RESULT_FILE_NAME = "result.json"
# The model error record, beside result.json (shared/src/outcome/failure/mod.rs: MODEL_ERROR_FILE_NAME).
MODEL_ERROR_FILE_NAME = "model-error.json"
# Bounds of the record's fields, in characters: it ends up in the job row.
MODEL_ERROR_MESSAGE_CHARS = 4000
MODEL_ERROR_TYPE_CHARS = 200
MODEL_ERROR_TRACEBACK_LINES = 30
MODEL_ERROR_TRACEBACK_CHARS = 4000
KNOWN_JOB_TYPES = ("MODEL_BATCH_JOB", "MODEL_BATCH_TEST_JOB", "MODEL_BATCH_TRAINING_JOB")
_MAX_DEPTH = 100


class DriverError(Exception):
    """A problem with the job set-up (metadata, model module, function), not in the model."""


def log(message):
    print("{} {}".format(LOG_PREFIX, message), flush=True)


def report_failure(text):
    """Writes a failure report (traceback and message) to stderr.

    Under spark-submit the Python driver's stderr is merged into spark-submit's *stdout* (Spark's
    PythonRunner redirects it), so the report is also written to the JVM's System.err, which is
    spark-submit's stderr (the driver's stderr log on EMR Serverless)."""
    sys.stderr.write(text)
    sys.stderr.flush()
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return  # not under spark-submit: the JVM, if any, was started by us and shares our stderr
    try:
        from pyspark import SparkContext

        if SparkContext._jvm is None:
            SparkContext._ensure_initialized()
        jvm_err = SparkContext._jvm.java.lang.System.err
        jvm_err.print(text)
        jvm_err.flush()
    except Exception:  # noqa: BLE001 - the report is on the Python stderr already
        pass


# --------------------------------------------------------------------------------------------
# Command line and locations


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="ModelOpPySparkDriver.py",
        description="Runs one ModelOp batch job function of a PySpark model.",
    )
    parser.add_argument(
        "--metadata",
        required=True,
        help="job metadata JSON: a file name shipped with --files, or a path/URI",
    )
    parser.add_argument(
        "--results-uri",
        required=True,
        help="directory URI where result.json is written",
    )
    return parser.parse_args(argv)


def is_bare_name(ref):
    """A bare file name (shipped with --files), as opposed to a path or a URI."""
    return "/" not in ref and "\\" not in ref and ":" not in ref


def result_uri(results_uri):
    """``<results-uri>/result.json``, joined with exactly one '/'."""
    return results_uri.rstrip("/") + "/" + RESULT_FILE_NAME


def model_error_uri(results_uri):
    """``<results-uri>/model-error.json``, joined with exactly one '/'."""
    return results_uri.rstrip("/") + "/" + MODEL_ERROR_FILE_NAME


def model_error_record(exc):
    """The model error record of an exception the model raised: its qualified type as Python
    prints it (``ValueError``, ``pyspark.errors.exceptions.captured.AnalysisException``), its
    message and the last lines of its traceback, each bounded."""
    kind = type(exc)
    module = getattr(kind, "__module__", None)
    name = getattr(kind, "__qualname__", kind.__name__)
    exception_type = name if module in (None, "builtins", "__main__") else "{}.{}".format(module, name)
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
        message = "<unprintable {}>".format(name)
    lines = "".join(traceback.format_exception(kind, exc, exc.__traceback__)).splitlines()
    tail = "\n".join(lines[-MODEL_ERROR_TRACEBACK_LINES:])
    return {
        "exceptionType": exception_type[:MODEL_ERROR_TYPE_CHARS],
        "message": message[:MODEL_ERROR_MESSAGE_CHARS],
        "tracebackTail": tail[-MODEL_ERROR_TRACEBACK_CHARS:],
    }


def write_model_error(files, results_uri, exc):
    """Writes the model error record; a failure to write it is reported, never raised, so the
    model's own exception is what fails the run."""
    target = model_error_uri(results_uri)
    try:
        files.write_text(target, json.dumps(model_error_record(exc), indent=2, ensure_ascii=False))
        log("Model error record written to {}".format(target))
    except Exception:  # noqa: BLE001
        report_failure("{}{} WARNING: could not write the model error record to {}\n".format(traceback.format_exc(), LOG_PREFIX, target))


def _local_path(ref):
    """The local file path a reference names, or None when it is not a local reference."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "":
        return ref
    return None


# --------------------------------------------------------------------------------------------
# Metadata


def _peek_job_id(ref):
    """Best effort, before Spark starts: the job id from a metadata file that is local already,
    so the Spark application can be named after the job. Never fails; None when unknown."""
    try:
        candidates = []
        if is_bare_name(ref):
            candidates.append(os.path.join(os.getcwd(), ref))
            # With spark-submit --files, the file is listed in spark.files (it reaches
            # SparkFiles only once the SparkContext has started).
            from pyspark import SparkConf, SparkContext

            SparkContext._ensure_initialized()
            for entry in SparkConf().get("spark.files", "").split(","):
                entry = entry.strip()
                if entry and entry.rstrip("/").rsplit("/", 1)[-1] == ref:
                    candidates.append(entry)
        else:
            candidates.append(ref)
        for candidate in candidates:
            path = _local_path(candidate)
            if path and os.path.isfile(path):
                with open(path, "r", encoding="utf-8") as handle:
                    job_id = json.load(handle).get("jobId")
                return str(job_id) if job_id else None
    except Exception:  # noqa: BLE001 - only a nicer application name is at stake
        pass
    return None


def _app_named_by_job():
    """Whether the job named its Spark application (``--name`` or ``--conf spark.app.name``):
    spark-submit's own default is the entry point's file name."""
    try:
        from pyspark import SparkConf, SparkContext

        SparkContext._ensure_initialized()
        name = SparkConf().get("spark.app.name", "")
    except Exception:  # noqa: BLE001 - only the application's name is at stake
        return False
    return bool(name) and not name.endswith(".py")


class HadoopFiles:
    """Reads and writes whole (small) files through Spark's Hadoop FileSystem layer (``s3://`` on
    EMR, ``file:`` and plain paths locally).

    It holds the JVM gateway and the Hadoop configuration taken from the SparkContext when it is
    made, not the context itself: models that end with ``SPARK.stop()`` (every public ModelOp Spark
    example does) leave a stopped context behind, and the driver still has the result to write.
    """

    def __init__(self, spark):
        context = spark.sparkContext
        self._jvm = context._jvm
        self._conf = context._jsc.hadoopConfiguration()

    def _path_and_fs(self, uri):
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path, path.getFileSystem(self._conf)

    def read_text(self, uri):
        path, fs = self._path_and_fs(uri)
        if not fs.exists(path):
            raise DriverError("job metadata not found at {}".format(uri))
        buffer = self._jvm.java.io.ByteArrayOutputStream()
        stream = fs.open(path)
        try:
            self._jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buffer, 65536, False)
        finally:
            stream.close()
        return buffer.toString("UTF-8")

    def write_text(self, uri, text):
        """Writes (overwrites) a file."""
        path, fs = self._path_and_fs(uri)
        out = fs.create(path, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()


def resolve_bare_metadata_name(name):
    """SparkFiles first (spark-submit --files), then the current working directory."""
    tried = []
    try:
        from pyspark import SparkFiles

        candidate = SparkFiles.get(name)
        tried.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    except Exception as exc:  # noqa: BLE001 - fall back to the working directory
        tried.append("SparkFiles ({})".format(exc))
    candidate = os.path.join(os.getcwd(), name)
    tried.append(candidate)
    if os.path.isfile(candidate):
        return candidate
    raise DriverError(
        "job metadata file '{}' not found (was it shipped with --files?); tried: {}".format(
            name, ", ".join(tried)
        )
    )


def load_metadata(files, ref):
    if is_bare_name(ref):
        path = resolve_bare_metadata_name(ref)
        log("Reading job metadata from {}".format(path))
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    else:
        log("Reading job metadata from {}".format(ref))
        text = files.read_text(ref)
    try:
        metadata = json.loads(text)
    except ValueError as exc:
        raise DriverError("job metadata {} is not valid JSON: {}".format(ref, exc))
    return validate_metadata(metadata)


def validate_metadata(metadata):
    if not isinstance(metadata, dict):
        raise DriverError("job metadata must be a JSON object")
    for key in ("modelModule", "jobFunction"):
        value = metadata.get(key)
        if not isinstance(value, str) or not value.strip():
            raise DriverError("job metadata is missing '{}'".format(key))
    init = metadata.get("initFunction")
    if init is not None and not isinstance(init, str):
        raise DriverError("job metadata 'initFunction' must be a string or null")
    for key in ("inputs", "outputs", "modelAssets"):
        value = metadata.get(key)
        if value is None:
            metadata[key] = []
        elif not isinstance(value, list):
            raise DriverError("job metadata '{}' must be a list of assets".format(key))
    params = metadata.get("jobParameters")
    if params is None:
        metadata["jobParameters"] = {}
    elif not isinstance(params, dict):
        raise DriverError("job metadata 'jobParameters' must be an object")
    return metadata


# --------------------------------------------------------------------------------------------
# Model


def _ensure_import_paths():
    """--py-files normally puts the model on sys.path; also look where Spark and the cluster
    manager put shipped files, in case they did not."""
    extra = [os.getcwd()]
    try:
        from pyspark import SparkFiles

        extra.append(SparkFiles.getRootDirectory())
    except Exception:  # noqa: BLE001
        pass
    for directory in extra:
        if directory and directory not in sys.path:
            sys.path.append(directory)


def import_model(module_name):
    _ensure_import_paths()
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith((exc.name or "\0") + "."):
            raise DriverError(
                "model module '{0}' not found: ship it with --py-files as {0}.py".format(
                    module_name
                )
            ) from exc
        raise


def place_in_working_directory(names):
    """Copies files shipped with --files (FILE model assets) into the working directory, where
    ModelOp's Spark runtime leaves them and models open them by file name (the German-credit drift
    monitor reads its ``.avsc`` schema so). Spark may have put them there already (cluster mode);
    otherwise they are in SparkFiles' root directory."""
    import shutil

    for name in names:
        if not isinstance(name, str) or os.path.basename(name) != name or os.path.exists(name):
            continue
        try:
            from pyspark import SparkFiles

            shipped = SparkFiles.get(name)
        except Exception:  # noqa: BLE001 - no SparkContext: nothing was shipped
            shipped = None
        if shipped and os.path.isfile(shipped):
            shutil.copyfile(shipped, name)
            log("Placed {} in the working directory".format(name))
        else:
            log("Note: {} was not shipped with --files".format(name))


def find_function(module, name, role):
    function = getattr(module, name, None)
    if function is None:
        raise DriverError(
            "model module '{}' has no {} function '{}' (is the function annotated in the "
            "model source and named correctly?)".format(module.__name__, role, name)
        )
    if not callable(function):
        raise DriverError(
            "'{}' in model module '{}' is not a function".format(name, module.__name__)
        )
    return function


def collect_result(value):
    """A generator's (or any iterator's) values, collected into a list; anything else as is."""
    if isinstance(value, (dict, list, str, bytes)):
        return value
    if isinstance(value, collections.abc.Iterator):
        return list(value)
    return value


def to_json_safe(value, _depth=0):
    """Turns a model's result into plain JSON values (dict, list, str, number, bool, None)."""
    if _depth > _MAX_DEPTH:
        return str(value)
    depth = _depth + 1
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        # NaN and infinities are not JSON.
        return float(value) if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return to_json_safe(float(value), depth)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if _is_spark_row(value):
        try:
            return to_json_safe(value.asDict(recursive=True), depth)
        except Exception:  # noqa: BLE001 - a Row without field names
            return [to_json_safe(item, depth) for item in value]
    if isinstance(value, dict):
        return {
            (key if isinstance(key, str) else str(key)): to_json_safe(item, depth)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_safe(item, depth) for item in value]
    if callable(getattr(value, "to_dict", None)):
        try:
            return to_json_safe(value.to_dict(), depth)
        except Exception:  # noqa: BLE001
            return str(value)
    module = type(value).__module__ or ""
    if module == "numpy" or module.startswith("numpy."):
        if callable(getattr(value, "item", None)) and getattr(value, "ndim", 0) == 0:
            return to_json_safe(value.item(), depth)
        if callable(getattr(value, "tolist", None)):
            return to_json_safe(value.tolist(), depth)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_spark_row(value):
    try:
        from pyspark.sql import Row
    except Exception:  # noqa: BLE001
        return False
    return isinstance(value, Row)


def _asset_names(assets):
    names = []
    for asset in assets:
        if isinstance(asset, dict):
            names.append(str(asset.get("name") or asset.get("assetType") or "?"))
        else:
            names.append("?")
    return "[" + ", ".join(names) + "]"


# --------------------------------------------------------------------------------------------
# Main


def run(spark, metadata_ref, results_uri):
    files = HadoopFiles(spark)
    metadata = load_metadata(files, metadata_ref)
    job_id = metadata.get("jobId")
    job_type = metadata.get("jobType")
    module_name = metadata["modelModule"]
    init_name = metadata.get("initFunction") or None
    job_function_name = metadata["jobFunction"]
    inputs, outputs, assets = metadata["inputs"], metadata["outputs"], metadata["modelAssets"]

    log("Job {} ({}), model module '{}'".format(job_id, job_type, module_name))
    if job_type not in KNOWN_JOB_TYPES:
        log("Note: job type {!r} is not one of {}".format(job_type, ", ".join(KNOWN_JOB_TYPES)))
    log(
        "Inputs: {}; outputs: {}; model assets: {}; job parameters: {}".format(
            _asset_names(inputs),
            _asset_names(outputs),
            _asset_names(assets),
            len(metadata["jobParameters"]),
        )
    )

    place_in_working_directory(metadata.get("workingDirectoryFiles") or [])
    try:
        collected = run_model(module_name, init_name, job_function_name, inputs, outputs, assets)
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised: the run fails
        if not isinstance(exc, DriverError):
            write_model_error(files, results_uri, exc)
        raise

    document = {
        "jobId": job_id,
        "jobType": job_type,
        "function": job_function_name,
        "result": to_json_safe(collected),
    }
    target = result_uri(results_uri)
    # Through the Hadoop configuration taken before the model ran: the model may have stopped Spark.
    files.write_text(target, json.dumps(document, indent=2, ensure_ascii=False))
    log("Result written to {}".format(target))


def run_model(module_name, init_name, job_function_name, inputs, outputs, assets):
    """Imports the model, calls its init and job functions and collects the result: every line
    of the model's own code runs in here."""
    module = import_model(module_name)
    log("Imported model module '{}'".format(module_name))
    init_function = find_function(module, init_name, "init") if init_name else None
    job_function = find_function(module, job_function_name, "job")

    if init_function is not None:
        log("Calling init function {}()".format(init_name))
        init_function()
        log("Init function {}() done".format(init_name))
    else:
        log("No init function")

    log(
        "Calling job function {}(external_inputs, external_outputs, external_model_assets)".format(
            job_function_name
        )
    )
    value = job_function(inputs, outputs, assets)
    collected = collect_result(value)
    if collected is not value:
        log("Job function yielded {} value(s), collected into a list".format(len(collected)))
    log("Job function {}() done".format(job_function_name))
    return collected


def main(argv=None):
    args = parse_args(argv)
    spark = None
    status = 0
    try:
        from pyspark.sql import SparkSession

        job_id = _peek_job_id(args.metadata)
        builder = SparkSession.builder
        if job_id and not _app_named_by_job():
            builder = builder.appName("ModelOp-{}".format(job_id))
        spark = builder.getOrCreate()
        log("Spark {} application '{}' started".format(spark.version, spark.sparkContext.appName))
        run(spark, args.metadata, args.results_uri)
        log("Job finished successfully")
    except BaseException as exc:  # noqa: BLE001 - every failure (even sys.exit in the model) fails the job run
        if isinstance(exc, DriverError):
            summary = str(exc)
        else:
            summary = "job failed: {}: {}".format(type(exc).__name__, exc)
        report_failure("{}{} ERROR: {}\n".format(traceback.format_exc(), LOG_PREFIX, summary))
        status = 1
    finally:
        if spark is not None:
            try:
                spark.stop()
            except Exception:  # noqa: BLE001
                report_failure(
                    "{}{} ERROR: could not stop the SparkSession cleanly\n".format(
                        traceback.format_exc(), LOG_PREFIX
                    )
                )
    return status


if __name__ == "__main__":
    sys.exit(main())
