"""Client side of ``local_aws.py``, shared by the demo (``tests/demo.sh``) and the end-to-end tests
(``tests/e2e/``): start and stop the stack, the sample jobs, and reading a job's progress back.

Standard library and boto3 only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(ROOT, "tests", "models")
DATA_BUCKET = "modelop-data"
MODEL_BUCKET = "modelop-models"
INPUT_KEY = "input/sample_input.csv"
PRIVATE_KEY = "private/other_team.csv"
FINAL = ("COMPLETE", "ERROR", "CANCELLED")
JOB_TYPES = ("MODEL_BATCH_JOB", "MODEL_BATCH_TEST_JOB", "MODEL_BATCH_TRAINING_JOB")


class Stack:
    """``local_aws.py`` as a child process, and boto3 clients on its moto."""

    def __init__(self, log_dir: str, drop_events_for: Iterable[str] = (), schedule_seconds: float = 5.0,
                 max_concurrent_runs: int = 3, stderr: Any = None, function_env: dict[str, str] | None = None,
                 time_scale: float | None = None, billing_lag: float | None = None, model_manage: bool = False) -> None:
        """``function_env`` sets (or overrides) variables of the functions' configuration;
        ``time_scale`` is the EMR Serverless emulator's seconds per emulated minute; ``billing_lag``
        the wall-clock seconds an ended run's billed figures read zero (and its final utilization
        event waits); ``model_manage`` also runs ModelOp Center's model-manage (emulated) and the
        bridge (``local_aws.py --model-manage``)."""
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.ready = os.path.join(log_dir, "ready.json")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        command = [sys.executable, os.path.join(HERE, "local_aws.py"), "--ready-file", self.ready, "--log-dir", log_dir,
                   "--schedule-seconds", str(schedule_seconds), "--max-concurrent-runs", str(max_concurrent_runs)]
        for job_id in drop_events_for:
            command += ["--drop-emr-events-for", job_id]
        for key, value in (function_env or {}).items():
            command += ["--function-env", f"{key}={value}"]
        if time_scale is not None:
            command += ["--time-scale", str(time_scale)]
        if billing_lag is not None:
            command += ["--billing-lag", str(billing_lag)]
        if model_manage:
            command.append("--model-manage")
        self.stack_log = open(os.path.join(log_dir, "local-aws.log"), "ab")
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr or self.stack_log, stdin=subprocess.DEVNULL)
        self.info: dict = {}

    def wait_ready(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise RuntimeError(f"local_aws.py exited with {self.proc.returncode}; see {self.log_dir}/local-aws.log")
            if time.monotonic() > deadline:
                raise RuntimeError("local_aws.py did not become ready")
            time.sleep(0.1)
        with open(self.ready) as f:
            self.info = json.load(f)
        import boto3
        from botocore.config import Config

        kwargs = dict(endpoint_url=self.info["moto"], region_name=self.info["region"], aws_access_key_id="testing",
                      aws_secret_access_key="testing")
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kwargs)
        self.logs = boto3.client("logs", **kwargs)
        self.emr = boto3.client("emr-serverless", **dict(kwargs, endpoint_url=self.info["emr"]))
        return self.info

    # -- ModelOp Center's model-manage (with model_manage=True)

    def modelop_token(self, client_id: str = "internal-client", client_secret: str = "internal-client-secret") -> str:
        """A bearer token from the identity provider (OAuth2 client credentials), as ModelOp's clients get one."""
        import base64
        import urllib.parse
        import urllib.request

        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        request = urllib.request.Request(self.info["modelManageTokenUrl"], method="POST",
                                         data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "modelop_client"}).encode(),
                                         headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)["access_token"]

    def submit_to_modelop(self, job: dict) -> dict:
        """What ModelOp's ``submit.py`` does (github ``modelop/titanic-spark`` ``job_submit/submit.py``):
        ``POST <gateway>/model-manage/api/jobs`` with the job document and a bearer token; answers the
        stored job (its ``id`` given by model-manage)."""
        import urllib.request

        request = urllib.request.Request(f"{self.info['modelManage']}/model-manage/api/jobs", method="POST", data=json.dumps(job).encode(),
                                         headers={"Authorization": f"Bearer {self.modelop_token()}", "Content-Type": "application/json",
                                                  "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def modelop_job(self, job_id: str) -> dict | None:
        """The job as model-manage holds it (what ModelOp's Jobs page shows), or None."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.info['modelManage']}/_emulator/model-manage/jobs/{job_id}", timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stack_log.close()

    # -- data

    def upload_samples(self) -> None:
        for bucket in (DATA_BUCKET, MODEL_BUCKET):
            try:
                self.s3.create_bucket(Bucket=bucket)
            except self.s3.exceptions.BucketAlreadyOwnedByYou:
                pass
        self.s3.upload_file(os.path.join(MODELS, "data", "sample_input.csv"), DATA_BUCKET, INPUT_KEY)
        # Another team's object beside the sample input, which no sample job names: its run's
        # session policy keeps a job from reading it (tests/models/undeclared_read_model.py).
        self.s3.put_object(Bucket=DATA_BUCKET, Key=PRIVATE_KEY, Body=b"id,secret\n1,other team's data\n")
        self.s3.put_object(Bucket=MODEL_BUCKET, Key="sample/weights.json",
                           Body=json.dumps({"intercept": 1.0, "coefficients": {"x1": 0.5, "x2": 2.0}}).encode())

    def put_job(self, job: dict) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        item = {k: serializer.serialize(v) for k, v in job.items()}
        self.dynamodb.put_item(TableName=self.info["table"], Item=item)

    def job(self, job_id: str) -> dict | None:
        item = self.dynamodb.get_item(TableName=self.info["table"], Key={"id": {"S": job_id}}, ConsistentRead=True).get("Item")
        return None if item is None else plain_item(item)


    def finished(self, job_id: str, timeout: float) -> dict:
        """The job once it is final, cleanup has set its `cleanedAt` (its staging folder is gone) and
        its `resourceUsage` is final; checked by :func:`check_final_usage`."""
        def ready():
            job = self.job(job_id)
            done = job and job.get("jobStatus") in FINAL and job.get("cleanedAt") and (job.get("resourceUsage") or {}).get("final")
            return job if done else None
        job = wait_until(ready, timeout, what=f"{job_id} to end, be cleaned and have its final usage")
        check_final_usage(job)
        return job
    def cancel_job(self, job_id: str) -> None:
        """What ModelOp Center does when a user cancels a job."""
        self.dynamodb.update_item(TableName=self.info["table"], Key={"id": {"S": job_id}},
                                  UpdateExpression="SET jobStatus = :c", ExpressionAttributeValues={":c": {"S": "CANCELLED"}})

    def staged_keys(self, job_id: str) -> list[str]:
        out = self.s3.list_objects_v2(Bucket=self.info["bucket"], Prefix=f"modelop-spark-serverless/{job_id}/")
        return [o["Key"] for o in out.get("Contents", [])]

    def objects(self, s3_uri: str) -> list[str]:
        bucket, _, prefix = s3_uri[len("s3://"):].partition("/")
        out = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [f"s3://{bucket}/{o['Key']}" for o in out.get("Contents", [])]

    def text(self, s3_uri: str) -> str:
        bucket, _, key = s3_uri[len("s3://"):].partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def driver_log(self, job: dict, stream: str) -> list[str]:
        name = f"{job['id']}/applications/{job['emrApplicationId']}/jobs/{job['sparkApplicationId']}/SPARK_DRIVER/{stream}"
        try:
            out = self.logs.get_log_events(logGroupName="/aws/emr-serverless", logStreamName=name, startFromHead=True)
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in out["events"]]

    def run_process(self, run_id: str) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"{self.info['emr']}/_emulator/emr-serverless/job-runs/process?jobRunId={run_id}", timeout=10) as r:
            return json.load(r)


def plain_item(item: dict) -> dict:
    """A DynamoDB item as the low-level client returns it, as plain JSON values."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return _plain({k: deserializer.deserialize(v) for k, v in item.items()})


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


# ------------------------------------------------------------------------------------------------
# Jobs


def source_asset(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        code = f.read()
    return {"name": os.path.basename(path), "assetType": "SOURCE_CODE", "primaryModelSource": True, "sourceCode": code}


def sample_job(job_id: str, job_type: str, model: str = "spark_sample_model.py", parameters: dict | None = None) -> dict:
    """A CREATED job of this runtime, as ModelOp Center writes it, on the sample model and input."""
    output = f"s3://{DATA_BUCKET}/output/{job_id}/" + ("model/" if job_type == "MODEL_BATCH_TRAINING_JOB" else "scored/")
    return {
        "id": job_id,
        "jobType": job_type,
        "jobStatus": "CREATED",
        "runtimeType": "SPARK_SERVERLESS_RUNTIME",
        "createdDate": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "model": {"storedModel": {"modelAssets": [
            source_asset(os.path.join(MODELS, model)),
            {"name": "weights.json", "assetType": "EXTERNAL_FILE", "fileUrl": f"s3://{MODEL_BUCKET}/sample/weights.json"},
        ]}},
        "inputData": [{"name": "sample_input.csv", "assetType": "EXTERNAL_FILE", "fileUrl": f"s3://{DATA_BUCKET}/{INPUT_KEY}",
                       "fileFormat": "CSV"}],
        # A test job only measures; the other two write their output.
        "outputData": [] if job_type == "MODEL_BATCH_TEST_JOB" else [{"name": "output", "assetType": "EXTERNAL_FILE", "fileUrl": output}],
        "jobParameters": parameters or {"--conf spark.executor.cores": "1"},
    }


def model_manage_job(job_type: str, model: str = "spark_sample_model.py", name: str | None = None) -> dict:
    """A job document as ModelOp's ``submit.py`` POSTs it to model-manage: no id (model-manage gives
    one), no status (CREATED), the runtime as ``targetEngine`` (the engine type the bridge takes), the
    sample model and input. ``name`` names its output folder."""
    job = sample_job(name or f"modelop-{os.urandom(3).hex()}", job_type, model=model)
    for field in ("id", "jobStatus", "runtimeType", "createdDate"):
        job.pop(field)
    job["targetEngine"] = {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "spark-serverless-runtime-1"}
    return job


def modelop_style_job(job_id: str) -> dict:
    """A CREATED job written the way ModelOp writes its own (``events/submit/insert-modelop-job.json``
    has the same shape): the runtime named in ``targetEngine``, a model that selects its input by
    ``assetRole``, opens a ``FILE`` model asset by name and ends with ``SPARK.stop()``
    (``tests/models/modelop_style_model.py``), an AWS path-style HTTPS input URL, an ``s3a://``
    output, and spark-submit flags as job parameters."""
    import base64

    schema = json.dumps([{"name": "id", "type": "string"}, {"name": "x1", "type": "double"}]).encode()
    source = source_asset(os.path.join(MODELS, "modelop_style_model.py"))
    source.update(assetRole="MODEL_SOURCE", initFunction="init", scoreFunction="score", assetId="a-source")
    return {
        "id": job_id,
        "group": "modelop",
        "jobType": "MODEL_BATCH_JOB",
        "jobStatus": "CREATED",
        "createdDate": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "spark-serverless-runtime-1", "sparkConf": {"--master": "yarn"}},
        "model": {"storedModel": {"modelMetaData": {"name": "modelop-style", "type": "PYSPARK"}, "modelAssets": [
            source,
            {"assetType": "FILE", "assetRole": "MODEL_SCHEMA", "filename": "df_sample_scored_input_schema.avsc",
             "fileContent": base64.b64encode(schema).decode("ascii"), "fileSize": len(schema)},
        ]}},
        "inputData": [{"name": "", "assetType": "EXTERNAL_FILE", "assetRole": "UNKNOWN", "fileFormat": "CSV",
                       "fileUrl": f"https://s3.us-east-1.amazonaws.com/{DATA_BUCKET}/{INPUT_KEY}"}],
        "outputData": [{"assetType": "EXTERNAL_FILE", "assetRole": "UNKNOWN",
                        "fileUrl": f"s3a://{DATA_BUCKET}/output/{job_id}/scored/"}],
        "jobParameters": {"--executor-memory": "512MB", "--total-executor-cores": "10", "-v": "",
                          "--conf spark.modelop.threshold": "0.7"},
        "_links": {"self": {"href": f"http://modelop.example.com/api/modelBatchJob/{job_id}"}},
    }


def expected_sample_results() -> dict:
    """What the sample model computes from the sample input, in plain Python (no Spark)."""
    import csv

    with open(os.path.join(MODELS, "data", "sample_input.csv"), newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    n = len(rows)
    score = [1.0 + 0.5 * r["x1"] + 2.0 * r["x2"] for r in rows]
    return {
        "rowCount": n,
        "meanScore": sum(score) / n,
        "mean_x1": sum(r["x1"] for r in rows) / n,
        "mean_x2": sum(r["x2"] for r in rows) / n,
        "mean_label": sum(r["label"] for r in rows) / n,
    }


USAGE_FIGURES = ("vCPUHour", "memoryGBHour", "storageGBHour")


def _built_in_prices(region: str, arch: str) -> dict[str, float]:
    """The built-in price table's entry (shared/src/outcome/cost.rs), in the row's `cost.prices` shape."""
    with open(os.path.join(ROOT, "shared", "src", "outcome", "cost.rs")) as f:
        text = f.read()
    row = re.search(rf'\("{region}", Architecture::{arch}, UnitPrices {{ vcpu_hour: ([\d.]+), memory_gb_hour: ([\d.]+), '
                    rf'storage_gb_hour: ([\d.]+) }}\)', text)
    assert row, f"shared/src/outcome/cost.rs has no built-in price for {region} {arch}"
    return dict(zip(USAGE_FIGURES, map(float, row.groups())))


BUILT_IN_US_EAST_1_X86 = _built_in_prices("us-east-1", "X86_64")


def check_final_usage(job: dict) -> None:
    """What every job whose run ended has here: final `resourceUsage` (emulated figures: wall time
    × declared worker size) and its `cost`, priced at the built-in us-east-1 x86 prices (the local
    stack's region; applications are created with EMR's default architecture)."""
    usage, cost = job.get("resourceUsage") or {}, job.get("cost")
    assert usage.get("final") is True, f"{job['id']}: resourceUsage {usage}"
    assert cost, f"{job['id']}: final usage but no cost: {usage}"
    assert cost["prices"] == BUILT_IN_US_EAST_1_X86, f"{job['id']}: {cost['prices']}"
    figures = usage.get("billed") or usage["used"]
    expected = round(sum(float(figures[k]) * float(cost["prices"][k]) for k in USAGE_FIGURES), 6)
    assert abs(float(cost["amount"]) - expected) <= 1e-6, f"{job['id']}: {cost['amount']} != {expected} ({usage}, {cost})"
    assert cost["basis"] == ("billed" if usage.get("billed") else "used"), cost
    assert (cost["currency"], cost["region"], cost["architecture"], cost["pricesSource"]) == ("USD", "us-east-1", "X86_64", "built-in"), cost
    if usage.get("executionSeconds"):
        assert float(usage["billed"]["vCPUHour"]) > 0, f"{job['id']}: a run that ran is billed: {usage}"


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def new_log_dir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix)


def print_log_tail(log_dir: str, name: str = "local-aws.log", size: int = 6000) -> None:
    """Prints the end of a stack's log, so a failed test shows what the stack did."""
    with open(os.path.join(log_dir, name), errors="replace") as f:
        tail = f.read()[-size:]
    print(f"\n--- {name} (tail; logs in {log_dir}) ---\n{tail}")
