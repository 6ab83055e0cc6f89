"""The whole AWS side of the service on a laptop: moto as AWS, real Spark as EMR Serverless, and
the plumbing AWS provides between them, driving the compiled function binaries.

    .venv/bin/python tests/emulator/local_aws.py --ready-file PATH [--target-dir target/debug]
        [--table modelop-jobs] [--bucket modelop-staging] [--schedule-seconds 5]
        [--drop-emr-events-for JOB_ID ...] [--log-dir DIR] [--max-concurrent-runs 2]
        [--function-env KEY=VALUE ...] [--time-scale SECONDS] [--billing-lag SECONDS] [--model-manage]

What runs (all on 127.0.0.1, free ports; everything is stopped on SIGTERM/SIGINT, and when the
parent process dies):

* moto (``moto_server.py``, a child process): S3, DynamoDB, DynamoDB Streams, CloudWatch Logs.
  The jobs table (as ``infra/template.yaml`` defines it: key ``id``, the GSIs
  ``bySparkApplicationId`` and ``byJobStatus``, a ``NEW_AND_OLD_IMAGES`` stream), the staging
  bucket and the log group ``/aws/emr-serverless`` are created at start.
* EMR Serverless (``emr_serverless.py``, in this process, execute mode): runs each job run with
  ``spark-submit --master local[*]``. Its durations (execution timeout, queue timeout, cancel grace
  period) run on a clock of ``--time-scale`` seconds per emulated minute (default
  ``$EMR_SERVERLESS_TIME_SCALE``, else 60: real time). It publishes resource utilization updates
  (emulated figures) every 30 emulated minutes of a run and a final one when the run ends, after
  ``--billing-lag`` wall-clock seconds (default ``$EMR_SERVERLESS_BILLING_LAG``, else 0) during
  which GetJobRun's billed figures read zero. The runs' Python is this one's (the .venv: pyspark,
  numpy), or, with ``$EMR_SERVERLESS_PYTHON_REQUIREMENTS`` naming a requirements file, a virtualenv
  of the model's own packages over it (``emr_serverless.model_python_env``).
* The three functions, ``submit``, ``monitor`` and ``cleanup``: the compiled binaries from
  ``--target-dir``, each kept warm behind its own Lambda Runtime API (``lambda_runtime_api.py``),
  invoked one event at a time, as one Lambda instance would be. Their configuration is fixed
  (``emr-7.5.0``, no run controls) except for what ``--function-env KEY=VALUE`` sets or overrides,
  for example ``EMR_RELEASE_VERSION=emr-7.9.0`` or ``EMR_APP_MAX_CONCURRENT_RUNS=2``. Their logs go to
  ``<log-dir>/<function>.log``. They reach moto with ``AWS_ENDPOINT_URL`` and the EMR endpoint
  with ``AWS_ENDPOINT_URL_EMR_SERVERLESS``.
* The event source mappings of the table's stream (read with moto's DynamoDB Streams API):
  submit gets INSERTs of CREATED ``SPARK_SERVERLESS_RUNTIME`` jobs, cleanup gets MODIFYs into
  COMPLETE/ERROR/CANCELLED of that runtime (the template's filters; other records are skipped, as
  Lambda's filtering drops them), in batches of up to 10. A batch item failure makes the poller
  re-deliver the batch from the first failed record on; an invocation error retries the whole
  batch (up to ``--max-retries`` times, then the batch is skipped, as with MaximumRetryAttempts).
* EventBridge: the EMR events the template's JobRunEventsRule matches (source ``aws.emr-serverless``;
  Job Run State Change, Job Run Retry, Job Resource Utilization Update) go to monitor (retried 3
  times on error), except those of jobs named with ``--drop-emr-events-for`` (to prove the sweep
  recovers lost events; a utilization update is matched by its run's name).
* The two schedules: every ``--schedule-seconds`` a ``Scheduled Event`` goes to monitor (the
  reconciliation sweep; ``MONITOR_SWEEP_MIN_AGE_MINUTES=0`` here) and to cleanup (orphan sweep).

* With ``--model-manage``: ModelOp Center's model-manage (``model_manage.py``, in this process) and
  the ``bridge`` binary with its ``MODELOP_*`` settings pointed at it and its client secret in
  Secrets Manager (moto). Every ``--schedule-seconds`` a ``Scheduled Event`` goes to the bridge (a
  6 s deadline and ``MODELOP_POLL_SECONDS=1``: one poll a call), and the table's stream feeds a
  second bridge instance through the template's BridgeFunction filter (MODIFYs of rows with
  ``modelManage.source`` = ``model-manage``). Its logs: ``bridge.log`` (schedule) and
  ``bridge-stream.log``. The ready file adds ``modelManage`` (the gateway URL) and
  ``modelManageTokenUrl``.

The ready file (and stdout) gets one JSON line: ``{"moto", "emr", "table", "bucket",
"streamArn", "region", "logDir", "pid"}``. Activity is logged to stderr as ``[local-aws] ...``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import emr_serverless  # noqa: E402
import model_manage  # noqa: E402
from jobs_table import create_jobs_table  # noqa: E402
from lambda_runtime_api import ACCOUNT_ID, Binary, RuntimeApi, build_env  # noqa: E402

_PARENT_PID = os.getppid()
REGION = "us-east-1"
RUNTIME = "SPARK_SERVERLESS_RUNTIME"
LOG_GROUP = "/aws/emr-serverless"
BATCH_SIZE = 10
FINAL = ("COMPLETE", "ERROR", "CANCELLED")
# The template's JobRunEventsRule (infra/template.yaml, infra/cdk/lib/stack.ts): what reaches monitor.
JOB_RUN_EVENT_SOURCE = "aws.emr-serverless"
# The bridge's scheduled invocation polls model-manage until 5 s before its deadline: 6 s is one poll.
BRIDGE_SCHEDULE_TIMEOUT = 6.0
BRIDGE_CLIENT_ID = "internal-client"
JOB_RUN_DETAIL_TYPES = ("EMR Serverless Job Run State Change", "EMR Serverless Job Run Retry",
                        "EMR Serverless Job Resource Utilization Update")


def log(message: str) -> None:
    print(f"[local-aws] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Functions behind the Lambda Runtime API


class LoggedBinary(Binary):
    """A function process whose output goes to a log file."""

    def __init__(self, path: str, env: dict[str, str], log_path: str) -> None:
        self.log_file = open(log_path, "ab")
        super().__init__(path, env, echo=False)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self.log_file.write(chunk)
            self.log_file.flush()


class LambdaFunction:
    """One warm function instance: invocations are serialized; a process that crashed, reported an
    init error or timed out is stopped (Lambda's Shutdown phase, ``Binary.stop``) and the next
    invocation starts a new one (a cold start), as Lambda replaces an execution environment."""

    def __init__(self, name: str, binary: str, env: dict[str, str], log_dir: str, timeout: float = 60.0) -> None:
        self.name, self.binary_path, self.extra_env, self.timeout = name, binary, env, timeout
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.lock = threading.Lock()
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        self.api = RuntimeApi(arn)
        self.api.start()
        self.binary: LoggedBinary | None = None
        self.cold_starts = 0

    def _end_environment(self) -> None:
        """Stops the current process (if still alive) as Lambda's Shutdown phase does, and closes its log."""
        if self.binary is not None:
            self.binary.stop(self.api.shutdown_grace())
            self.binary.log_file.close()
            self.binary = None

    def _ensure_started(self) -> None:
        if self.binary is not None and self.binary.exited() is None and not self.api.init_error_event.is_set():
            return
        if self.binary is not None:
            self._end_environment()
            log(f"{self.name}: the function process ended; starting a new one (cold start)")
        self.api.new_environment()
        env = build_env(self.binary_path, list(self.extra_env.items()), self.api.address)
        env["AWS_LAMBDA_FUNCTION_NAME"] = self.name
        self.binary = LoggedBinary(self.binary_path, env, self.log_path)
        self.cold_starts += 1

    def invoke(self, payload: Any) -> tuple[str, Any]:
        """("response" | "error" | "timeout" | "crash", body)."""
        with self.lock:
            self._ensure_started()
            assert self.binary is not None
            inv = self.api.enqueue(self.name, json.dumps(payload).encode(), self.timeout)
            while not inv.done.wait(0.05):
                if self.api.init_error_event.is_set():
                    self.api.expire(inv)
                    return "crash", self.api.init_error
                if self.binary.exited() is not None:
                    self.api.expire(inv)
                    return "crash", f"exit code {self.binary.exited()}"
                if time.monotonic() > inv.wait_deadline() and self.api.expire(inv):
                    self._end_environment()  # Lambda ends a timed-out instance
                    return "timeout", None
            return inv.status, inv.body

    def stop(self) -> None:
        with self.lock:
            try:
                self._end_environment()
            finally:
                self.api.stop()


# ------------------------------------------------------------------------------------------------
# The stream's event source mappings


def is_ours(image: dict) -> bool:
    """The templates' two filters: ``runtimeType`` or ``targetEngine.engineType``."""
    engine = image.get("targetEngine", {}).get("M", {})
    return image.get("runtimeType", {}).get("S") == RUNTIME or engine.get("engineType", {}).get("S") == RUNTIME


def job_run_rule_matches(event: dict) -> bool:
    """The template's JobRunEventsRule pattern (without its optional applicationId filter): the
    EMR events EventBridge delivers to monitor."""
    return event.get("source") == JOB_RUN_EVENT_SOURCE and event.get("detail-type") in JOB_RUN_DETAIL_TYPES


def submit_filter(record: dict) -> bool:
    new = record.get("dynamodb", {}).get("NewImage") or {}
    return record.get("eventName") == "INSERT" and new.get("jobStatus", {}).get("S") == "CREATED" and is_ours(new)


def cleanup_filter(record: dict) -> bool:
    new = record.get("dynamodb", {}).get("NewImage") or {}
    old = record.get("dynamodb", {}).get("OldImage") or {}
    old_status = old.get("jobStatus", {}).get("S")
    return (record.get("eventName") == "MODIFY" and new.get("jobStatus", {}).get("S") in FINAL and is_ours(new)
            and old_status is not None and old_status not in FINAL)


def bridge_filter(record: dict) -> bool:
    """The template's BridgeFunction stream mapping: MODIFYs of rows bridged from model-manage
    (``modelManage.source`` = ``model-manage``, ``shared/src/bridge/job_mapping.rs``)."""
    new = record.get("dynamodb", {}).get("NewImage") or {}
    source = (new.get("modelManage", {}).get("M") or {}).get("source", {}).get("S")
    return record.get("eventName") == "MODIFY" and source == "model-manage"

def _json_attribute(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _json_attribute(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_attribute(v) for v in value]
    if isinstance(value, set):
        return [_json_attribute(v) for v in sorted(value)]
    return value


def lambda_record(record: dict, stream_arn: str) -> dict:
    """A DynamoDB Streams record as Lambda delivers it."""
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"], "eventName": record["eventName"], "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": REGION, "dynamodb": _json_attribute(body),
        "eventSourceARN": stream_arn,
    }


class StreamMapping:
    """One event source mapping: a position in each shard, a filter, a function.

    Each shard is read once, in order, with the iterator moto hands back (``NextShardIterator``);
    the records the filter accepts wait in ``pending`` until a delivery succeeds. A batch item
    failure keeps the batch from its first failed record on (Lambda's checkpoint at the lowest
    failed sequence number); the failed record is found by its position in the batch, not by
    arithmetic on sequence numbers, which moto assigns to concurrent writes out of order (and
    sometimes twice)."""

    def __init__(self, name: str, streams: Any, stream_arn: str, function: LambdaFunction, accept: Any, max_retries: int) -> None:
        self.name, self.streams, self.stream_arn = name, streams, stream_arn
        self.function, self.accept, self.max_retries = function, accept, max_retries
        self.iterators: dict[str, str] = {}  # shard -> the iterator of what has not been read yet
        self.pending: dict[str, list[dict]] = {}  # shard -> accepted records not yet delivered
        self.failures = 0

    def poll(self) -> bool:
        """Reads each shard and delivers one batch per shard; True when there was anything to do."""
        busy = False
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            pending = self.pending.setdefault(shard_id, [])
            if len(pending) < BATCH_SIZE:
                iterator = self.iterators.get(shard_id) or self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                out = self.streams.get_records(ShardIterator=iterator, Limit=BATCH_SIZE)
                self.iterators[shard_id] = out.get("NextShardIterator") or iterator
                read = [lambda_record(r, self.stream_arn) for r in out["Records"]]
                pending.extend(r for r in read if self.accept(r))
                busy = busy or bool(read)
            if not pending:
                continue
            busy = True
            batch = pending[:BATCH_SIZE]
            del pending[:self._deliver(batch)]
        return busy

    def _deliver(self, records: list[dict]) -> int:
        """Invokes the function with ``records``: how many of them are done (from the front)."""
        ids = ", ".join(r["dynamodb"].get("Keys", {}).get("id", {}).get("S", "?") for r in records)
        status, body = self.function.invoke({"Records": records})
        if status == "response":
            failed = {str(f.get("itemIdentifier")) for f in (body or {}).get("batchItemFailures", []) if isinstance(f, dict)}
            if not failed:
                log(f"{self.name} <- {len(records)} record(s) [{ids}]: ok")
                self.failures = 0
                return len(records)
            seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
            done = min((seqs.index(f) for f in failed if f in seqs), default=0)
            log(f"{self.name} <- {len(records)} record(s) [{ids}]: batch item failure at record {done + 1}, re-delivering from it")
        else:
            done = 0
            log(f"{self.name} <- {len(records)} record(s) [{ids}]: invocation {status}: {str(body)[:300]}")
        self.failures += 1
        if self.failures > self.max_retries:
            log(f"{self.name}: giving up on {len(records) - done} record(s) after {self.max_retries} retries")
            self.failures = 0
            return len(records)
        time.sleep(min(0.5 * 2 ** self.failures, 5.0))
        return done


# ------------------------------------------------------------------------------------------------
# The stack


class LocalAws:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop_event = threading.Event()
        self.moto_proc: subprocess.Popen | None = None
        self.tmp = tempfile.mkdtemp(prefix="local-aws-")
        self.log_dir = args.log_dir or os.path.join(self.tmp, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.functions: dict[str, LambdaFunction] = {}
        self.events: queue.Queue[dict] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.emr_server: emr_serverless.Server | None = None
        self.mm_server: model_manage.Server | None = None
        self.drop = set(args.drop_emr_events_for or [])

    # -- start-up

    def start(self) -> dict:
        import boto3
        from botocore.config import Config

        moto = self._start_moto()
        kwargs = dict(endpoint_url=moto, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.streams = boto3.client("dynamodbstreams", **kwargs)
        s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kwargs)
        logs = boto3.client("logs", **kwargs)
        stream_arn = self._create_table()
        self.stream_arn = stream_arn
        s3.create_bucket(Bucket=self.args.bucket)
        logs.create_log_group(logGroupName=LOG_GROUP)
        log(f"moto {moto}: table {self.args.table} (stream {stream_arn}), bucket {self.args.bucket}, log group {LOG_GROUP}")

        runner = emr_serverless.SparkRunner(moto, os.path.join(self.tmp, "emr"), self.args.max_concurrent_runs)
        emr = emr_serverless.EmrServerless(self.events.put, runner, log=lambda m: log(f"emr-serverless: {m}"),
                                           time_scale=self.args.time_scale, billing_lag=self.args.billing_lag)
        self.emr_server = emr_serverless.Server(emr).start()
        self.emr = emr
        log(f"EMR Serverless (local Spark) {self.emr_server.endpoint}")

        env = {
            "AWS_ENDPOINT_URL": moto, "AWS_ENDPOINT_URL_EMR_SERVERLESS": self.emr_server.endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true", "S3_FORCE_PATH_STYLE": "true",
            "JOBS_TABLE": self.args.table, "STAGING_BUCKET": self.args.bucket,
            "EMR_DEFAULT_APP_NAME": "modelop-default", "EMR_RELEASE_VERSION": "emr-7.5.0",
            "EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/modelop-default-job",
            "EMR_LOG_GROUP": LOG_GROUP,
            # What a real deployment ships (ModelOp's example); local Spark drops it, with a log line.
            "EMR_JOB_EXECUTION_CONF": json.dumps({"spark.archives": "s3://modelop-envs/pyspark_venv.tar.gz#environment",
                                                  "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": "./environment/bin/python"}),
            "MONITOR_SWEEP_MIN_AGE_MINUTES": "0",
            # A missing module is named as the local environment's, not EMR's image's.
            "MONITOR_SPARK_ENVIRONMENT_NAME": "the local Spark's Python (tests/requirements.txt; add a model's own "
                                              "packages with EMR_SERVERLESS_PYTHON_REQUIREMENTS)",
            "RUST_LOG": "info",
        }
        for pair in self.args.function_env or []:
            key, _, value = pair.partition("=")
            env[key] = value
        if self.args.function_env:
            log(f"function environment: {', '.join(self.args.function_env)}")
        for name in ("submit", "monitor", "cleanup"):
            binary = os.path.join(self.args.target_dir, name)
            if not os.access(binary, os.X_OK):
                raise SystemExit(f"local_aws: {binary} is not built (tests/build-functions.sh builds it)")
            self.functions[name] = LambdaFunction(name, binary, env, self.log_dir)

        mappings = [
            StreamMapping("submit", self.streams, stream_arn, self.functions["submit"], submit_filter, self.args.max_retries),
            StreamMapping("cleanup", self.streams, stream_arn, self.functions["cleanup"], cleanup_filter, self.args.max_retries),
        ]
        info = {"moto": moto, "emr": self.emr_server.endpoint, "table": self.args.table, "bucket": self.args.bucket,
                "streamArn": stream_arn, "region": REGION, "logDir": self.log_dir, "pid": os.getpid()}
        if self.args.model_manage:
            mappings.append(self._start_bridge(env, kwargs))
            info.update(modelManage=self.mm_server.endpoint, modelManageTokenUrl=self.mm_server.token_url)
            self._thread("schedule-bridge", self._bridge_schedule_loop)
        for mapping in mappings:
            self._thread(f"stream-{mapping.name}", self._poll_loop, mapping)
        self._thread("eventbridge", self._event_loop)
        self._thread("schedules", self._schedule_loop)
        return info

    def _start_bridge(self, env: dict[str, str], aws: dict) -> "StreamMapping":
        """model-manage in this process, the client secret in moto, and the bridge binary twice: one
        instance for its schedule, one for its stream mapping (Lambda runs them concurrently)."""
        import boto3

        self.mm_server = model_manage.Server(model_manage.ModelManage()).start()
        secret = boto3.client("secretsmanager", **aws).create_secret(
            Name="modelop-client-secret",
            SecretString=json.dumps({"client_id": BRIDGE_CLIENT_ID, "client_secret": model_manage.DEFAULT_CLIENTS[BRIDGE_CLIENT_ID]}))
        bridge_env = dict(env, MODELOP_GATEWAY_URL=self.mm_server.endpoint, MODELOP_TOKEN_URL=self.mm_server.token_url,
                          MODELOP_CLIENT_ID=BRIDGE_CLIENT_ID, MODELOP_CLIENT_SECRET_ARN=secret["ARN"], MODELOP_POLL_SECONDS="1")
        binary = os.path.join(self.args.target_dir, "bridge")
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"local_aws: {binary} is not built (tests/build-functions.sh)")
        self.functions["bridge"] = LambdaFunction("bridge", binary, bridge_env, self.log_dir, timeout=BRIDGE_SCHEDULE_TIMEOUT)
        self.functions["bridge-stream"] = LambdaFunction("bridge-stream", binary, bridge_env, self.log_dir)
        log(f"model-manage {self.mm_server.endpoint} (token {self.mm_server.token_url}); bridge polling every "
            f"{self.args.schedule_seconds:g} s")
        return StreamMapping("bridge", self.streams, self.stream_arn, self.functions["bridge-stream"], bridge_filter, self.args.max_retries)

    def _thread(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _start_moto(self) -> str:
        ready = os.path.join(self.tmp, "moto.json")
        self.moto_proc = subprocess.Popen([sys.executable, os.path.join(HERE, "moto_server.py"), "--ready-file", ready, "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.log_dir, "moto.log"), "ab"))
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if self.moto_proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("local_aws: moto did not start (see moto.log)")
            time.sleep(0.1)
        with open(ready) as f:
            return json.load(f)["endpoint"]

    def _create_table(self) -> str:
        return create_jobs_table(self.dynamodb, self.args.table)

    # -- loops

    def _poll_loop(self, mapping: StreamMapping) -> None:
        while not self.stop_event.is_set():
            try:
                busy = mapping.poll()
            except Exception:  # noqa: BLE001 - keep polling, as Lambda's poller does
                if self.stop_event.is_set():
                    return
                log(f"{mapping.name} poller: {traceback.format_exc()}")
                busy = False
            if not busy:
                self.stop_event.wait(0.3)

    def _event_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            detail = event.get("detail", {})
            if not job_run_rule_matches(event):
                log(f"EventBridge: no rule matches {event.get('detail-type')} from {event.get('source')}")
                continue
            # A utilization update names no jobRunName: the run's name is the emulator's.
            name = detail.get("jobRunName") or self.run_name(detail.get("jobRunId"))
            final = "final" if detail.get("resourceUtilizationFinal") else ""
            what = " ".join(str(part) for part in (event.get("detail-type"), name, detail.get("state"), final) if part)
            if name in self.drop:
                log(f"EventBridge: dropped {what} (--drop-emr-events-for)")
                continue
            for attempt in range(4):
                status, body = self.functions["monitor"].invoke(event)
                if status == "response":
                    log(f"monitor <- {what}: ok")
                    break
                log(f"monitor <- {what}: {status} {str(body)[:300]} (attempt {attempt + 1})")
                if self.stop_event.wait(0.5 * 2 ** attempt):
                    return

    def run_name(self, run_id: Any) -> str | None:
        with self.emr.lock:
            run = self.emr.runs.get(run_id) if isinstance(run_id, str) else None
            return run.name if run is not None else None

    def _schedule_loop(self) -> None:
        while not self.stop_event.wait(self.args.schedule_seconds):
            for name in ("monitor", "cleanup"):
                event = {
                    "version": "0", "id": str(time.time_ns()), "detail-type": "Scheduled Event", "source": "aws.events",
                    "account": ACCOUNT_ID, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
                    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/modelop-{name}-sweep"], "detail": {},
                }
                status, body = self.functions[name].invoke(event)
                if status != "response":
                    log(f"{name} <- Scheduled Event: {status} {str(body)[:300]}")
                elif self.args.verbose:
                    log(f"{name} <- Scheduled Event: {json.dumps(body)[:300]}")
                if self.stop_event.is_set():
                    return

    def _bridge_schedule_loop(self) -> None:
        while not self.stop_event.wait(self.args.schedule_seconds):
            event = {
                "version": "0", "id": str(time.time_ns()), "detail-type": "Scheduled Event", "source": "aws.events",
                "account": ACCOUNT_ID, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/modelop-bridge-poll"], "detail": {},
            }
            status, body = self.functions["bridge"].invoke(event)
            if status != "response":
                log(f"bridge <- Scheduled Event: {status} {str(body)[:300]}")
            elif self.args.verbose or isinstance(body, dict) and any(body.get(k) for k in ("bridged", "recovered", "lost", "refused", "cancelled", "failed")):
                log(f"bridge <- Scheduled Event: {json.dumps(body)[:300]}")

    # -- shutdown

    def stop(self) -> None:
        """Stops everything this stack started, each step even if one before it failed, and
        removes its temporary folder (the runs' data, moto's ready file; the logs too unless
        ``--log-dir`` keeps them elsewhere). The first failure is raised at the end."""
        self.stop_event.set()
        failures: list[BaseException] = []

        def step(what: str, action: Any, *args: Any) -> None:
            try:
                action(*args)
            except Exception as exc:  # noqa: BLE001 - the other steps must still run
                log(f"stopping: {what} failed: {traceback.format_exc()}")
                failures.append(exc)

        if self.emr_server is not None:
            step("EMR Serverless", self.emr_server.stop)  # kills any spark-submit and waits for its run
        if self.mm_server is not None:
            step("model-manage", self.mm_server.stop)
        for thread in self.threads:
            thread.join(timeout=10)
        for name, function in self.functions.items():
            step(name, function.stop)
        step("moto", self._stop_moto)
        step("the temporary folder", shutil.rmtree, self.tmp)
        if failures:
            raise failures[0]

    def _stop_moto(self) -> None:
        if self.moto_proc is not None and self.moto_proc.poll() is None:
            self.moto_proc.terminate()
            try:
                self.moto_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.moto_proc.kill()
                self.moto_proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--target-dir", default=os.path.join(ROOT, "target", "debug"))
    parser.add_argument("--table", default="modelop-jobs")
    parser.add_argument("--bucket", default="modelop-staging")
    parser.add_argument("--schedule-seconds", type=float, default=5.0)
    parser.add_argument("--drop-emr-events-for", action="append", metavar="JOB_ID")
    parser.add_argument("--log-dir")
    parser.add_argument("--max-concurrent-runs", type=int, default=2)
    parser.add_argument("--max-retries", type=int, default=5)
    parser.add_argument("--function-env", action="append", metavar="KEY=VALUE",
                        help="set (or override) one variable of the functions' environment")
    parser.add_argument("--time-scale", type=float, metavar="SECONDS",
                        help="seconds per emulated minute of EMR Serverless durations (default $EMR_SERVERLESS_TIME_SCALE, else 60)")
    parser.add_argument("--billing-lag", type=float, metavar="SECONDS",
                        help="wall-clock seconds an ended run's billed figures read zero and its final utilization event "
                             "waits (default $EMR_SERVERLESS_BILLING_LAG, else 0)")
    parser.add_argument("--model-manage", action="store_true",
                        help="also run ModelOp Center's model-manage (emulated) and the bridge function against it")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    for pair in args.function_env or []:
        if "=" not in pair or not pair.partition("=")[0]:
            parser.error(f"--function-env {pair!r}: expected KEY=VALUE")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = LocalAws(args)
    try:
        info = stack.start()
        line = json.dumps(info)
        emr_serverless.write_ready_file(args.ready_file, line)
        print(line, flush=True)
        while not stop.wait(0.5):
            if os.getppid() != _PARENT_PID:
                log("parent process gone, stopping")
                break
    finally:
        log("stopping")
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
