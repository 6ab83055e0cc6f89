"""The project's one emulation of Amazon EMR Serverless: a REST endpoint on loopback.

It speaks the subset of the EMR Serverless API (rest-json, 2021-07-13) that the functions use,
with the real API's paths, shapes, states, pagination, error codes and ``clientToken``
idempotency (checked against botocore's service model in the venv):

    ListApplications    GET    /applications                         ?states=&maxResults=&nextToken=
    CreateApplication   POST   /applications
    GetApplication      GET    /applications/{applicationId}
    StartApplication    POST   /applications/{applicationId}/start
    StopApplication     POST   /applications/{applicationId}/stop
    StartJobRun         POST   /applications/{applicationId}/jobruns
    ListJobRuns         GET    /applications/{applicationId}/jobruns  ?states=&createdAtAfter=&createdAtBefore=&mode=&maxResults=&nextToken=
    GetJobRun           GET    /applications/{applicationId}/jobruns/{jobRunId}  ?attempt=
    CancelJobRun        DELETE /applications/{applicationId}/jobruns/{jobRunId}
    ListJobRunAttempts  GET    /applications/{applicationId}/jobruns/{jobRunId}/attempts  ?maxResults=&nextToken=
    GetDashboardForJobRun GET  /applications/{applicationId}/jobruns/{jobRunId}/dashboard  ?attempt=

Errors answer the real status codes with ``X-Amzn-ErrorType`` and ``{"message"}``:
ResourceNotFoundException 404, ValidationException 400, ConflictException 409, and
AccessDeniedException 403 for an execution role of another account (the caller cannot pass it). Timestamps are
epoch seconds, as rest-json sends them. Resources are kept per region (from the request's SigV4
credential scope; us-east-1 when there is none). Signatures are not checked.

Two modes:

* **manual** (default; the Rust integration tests): runs execute nothing. A new run is
  SUBMITTED and stays there until a test moves it with the admin route below; CancelJobRun moves a
  live run to CANCELLED at once.
* **execute** (``--execute``; the demo and the end-to-end tests): each run is really run with
  ``spark-submit --master local[*]`` from the venv's pyspark, see :class:`SparkRunner`, and moves
  SUBMITTED → SCHEDULED → RUNNING → SUCCESS | FAILED, or CANCELLING → CANCELLED when cancelled
  (the spark-submit process group is killed).

**The Spark UI** (GetDashboardForJobRun): in execute mode each attempt's spark-submit serves the live
Spark UI on 127.0.0.1 (``SPARK_LOCAL_IP``), on a free port chosen per attempt (``spark.ui.port``);
Spark moves to the next port if it was taken meanwhile, so the port is read from the driver's log
("Successfully started service 'SparkUI' on port PORT."). GetDashboardForJobRun of a RUNNING run
answers ``{"url": "http://127.0.0.1:PORT/"}``, waiting up to :data:`SPARK_UI_WAIT` seconds for
the UI to serve the application (the JVM starts after RUNNING, and the UI says "Spark is starting
up" until its context is ready). Not emulated, so ValidationException: a run
before RUNNING, an attempt that has ended (EMR links those to a Spark History Server; none runs
here: the UI ends with its spark-submit), a run whose Spark conf turns the UI off, and any run in
manual mode (nothing runs) unless a test gave the attempt a link with the admin route ``dashboard``
below. Unlike EMR's links, the URL works more than once. An application's or a run's managed log
storage (``monitoringConfiguration.managedPersistenceMonitoringConfiguration.enabled``, which keeps
the UI on EMR) is accepted and shown, not enforced: what GetDashboardForJobRun answers when it is off
is not published.

Every state change is also published as the EventBridge event EMR Serverless sends
("EMR Serverless Job Run State Change", source ``aws.emr-serverless``) to the event sink: a
callable when used in-process (``tests/emulator/local_aws.py``), or ``--events-url`` (POSTed as
JSON) when run on its own.

Run controls (shapes and names from botocore's emr-serverless service-2.json; behaviour from the
EMR Serverless User Guide; what neither says is an assumption, marked ASSUMED where it is made):

* **Retry policy** (StartJobRun ``retryPolicy``: ``maxAttempts`` 1-10 for BATCH runs;
  ``maxFailedAttemptsPerHour`` 1-10 is accepted and shown, STREAMING runs are not retried). A
  failed attempt that has attempts left is run again from the beginning: the attempt ends FAILED,
  "EMR Serverless Job Run Retry" is published (``previousAttempt``, ``previousAttemptState``,
  ``previousAttemptCreatedAt``, ``previousAttemptEndedAt``, ``newAttempt``,
  ``newAttemptCreatedAt``), and the next attempt starts SCHEDULED (ASSUMED: the run itself is not
  FAILED in between, so no FAILED state change is published until the last attempt fails).
  GetJobRun shows ``attempt``, ``attemptCreatedAt``, ``attemptUpdatedAt``, ``retryPolicy`` (the
  latest attempt, or ``?attempt=n``); ListJobRunAttempts lists them. Attempt n > 1 writes its
  driver logs under ``.../jobs/<run>/attempts/<n>/SPARK_DRIVER/``.
* **Execution timeout** (StartJobRun ``executionTimeoutMinutes``; GetJobRun shows it, 720 when not
  given): a run still live that many minutes after it first went RUNNING is cancelled by the
  service (CANCELLING, then CANCELLED, with EXECUTION_TIMEOUT_DETAILS) and not retried.
* **Job concurrency and queuing** (CreateApplication ``schedulerConfiguration``:
  ``maxConcurrentRuns`` 1-1000, default 15; ``queueTimeoutMinutes`` 15-720, default 360;
  GetApplication shows it, with ``maximumCapacity``, ``architecture``, ``networkConfiguration``,
  ``jobLevelCostAllocationConfiguration`` (``{"enabled": bool}``) and ``monitoringConfiguration``
  (botocore's four members, each an object; ``managedPersistenceMonitoringConfiguration.enabled`` a
  boolean), which are accepted and returned, not enforced). A run on such an application goes SUBMITTED ->
  PENDING, then SCHEDULED if one of the application's slots is free, else QUEUED until one is
  (QUEUED -> SCHEDULED, oldest first), or FAILED with QUEUE_TIMEOUT_DETAILS after
  ``queueTimeoutMinutes``. GetJobRun shows ``queuedDurationMilliseconds``. In manual mode the
  service moves a run as far as SCHEDULED; the test moves it on.
* **Cancellation with a grace period** (CancelJobRun ``?shutdownGracePeriodInSeconds=``, 0 or
  15-1800): SIGTERM, then SIGKILL after the grace period (scaled like every other duration) if the
  spark-submit process group is still alive; CANCELLING until it is gone, then CANCELLED.
* **StartJobRun rate quota** (``--start-job-run-rate PER_SECOND`` [``--start-job-run-burst N``],
  or in-process :meth:`EmrServerless.set_start_job_run_quota`, or the admin route ``quota`` below;
  none by default): a token bucket holding ``burst`` tokens (default: one second's worth, at least
  1), refilled at ``rate`` per second; each StartJobRun request takes one, before anything else is
  checked (a repeat of a ``clientToken`` too), and one that finds the bucket empty is answered
  ``ThrottlingException`` "Rate exceeded" with HTTP 429. ASSUMED: botocore's model of the service
  lists no throttling error, so code and status are what AWS's rest-json services answer when a
  request rate quota is exceeded (the SDKs retry the code as throttling whatever the status); the
  bucket's size is not published. Attempts and throttles are counted.
* **The time scale**: the service's timers run on a scaled clock, ``--time-scale SECONDS`` (or
  ``$EMR_SERVERLESS_TIME_SCALE``) seconds per emulated minute, 60 (real time) by default; so with
  ``--time-scale 0.2`` a 5-minute timeout fires after 1 s. Timestamps stay wall-clock.

Resource utilization figures (EMULATED: local Spark has no workers to count, so the
figures are wall time in RUNNING x the worker sizes the run declares; :class:`WorkerSizes` says
which Spark properties count, EMR Serverless's documented defaults and what is ASSUMED):

* GetJobRun of an ended attempt shows ``totalResourceUtilization`` and
  ``billedResourceUtilization`` (vCPUHour, memoryGBHour, storageGBHour; billed: a 1-minute minimum
  per worker, storage only above 20 GB per worker, as botocore's JobRun docs say).
* "EMR Serverless Job Resource Utilization Update" (source ``aws.emr-serverless``; detail
  ``applicationId``, ``jobRunId``, ``attempt``, ``mode``, ``createdAt``, ``startedAt`` (absent for a
  run that never ran), ``calculatedFrom``, ``calculatedTo``, ``resourceUtilizationFinal``,
  ``resourceUtilizationForInterval``, ``billedResourceUtilizationForInterval``,
  ``totalResourceUtilization``, ``totalBilledResourceUtilization``; the run's ARN in ``resources``:
  the User Guide's "Automating EMR Serverless with Amazon EventBridge" sample, whose comment line
  and field order are not kept) is published every 30 emulated minutes while a run is RUNNING or
  CANCELLING (the User Guide: "at approximately 30 minutes interval"), totals of its latest attempt,
  the interval since the previous update; and once, ``resourceUtilizationFinal: true``, after the
  run reaches SUCCESS, FAILED or CANCELLED (ASSUMED: also for a run that never ran, with zeros; a
  retried attempt gets none of its own).
* **Billing lag** (``--billing-lag SECONDS`` or ``$EMR_SERVERLESS_BILLING_LAG``, wall-clock seconds,
  not scaled; 0 by default): for that long after a run ends, GetJobRun's
  ``billedResourceUtilization`` reads all zeros and the final utilization event waits, as the
  service's billed figures can lag the run's end. The admin route ``billing`` below holds them for
  as long as a test wants.
* **Execution IAM policy** (StartJobRun ``executionIamPolicy``: ``policy``, 1-2,048 characters of
  ``[ -ÿ]`` holding a JSON policy, and ``policyArns``, 0-10 ARNs of 20-2,048 characters; EMR
  Serverless API Reference, ``JobRunExecutionIamPolicy``): checked, kept, and shown by GetJobRun
  (botocore's ``JobRun`` has ``executionIamPolicy``). In execute mode the run's ``policy`` is
  enforced on the run's S3 access with moto's IAM evaluator (``session_policy.py``): the files
  spark-submit fetches and the objects mirrored for the model (``s3:GetObject``, ``s3:ListBucket``
  with ``s3:prefix``) and what is synced back (``s3:PutObject``); and the model's own S3 calls go
  through a policy-checking gateway (``S3PolicyGateway``): the driver's environment has
  ``AWS_ENDPOINT_URL_S3`` pointing at it and the run id as its access key, so a model that calls
  boto3 on an object its policy does not name gets ``AccessDenied``, as on EMR. A denied fetch,
  mirror or sync fails the attempt with the denial in its stderr. ``policyArns`` are recorded,
  not evaluated (the emulator has no managed policies), and the run's CloudWatch logs are written
  by the emulator itself, unchecked.

Admin routes (JSON, unsigned; errors are ``{"message"}`` with 400/404):

``GET /_emulator/health``
    200 ``{"status": "ok", "mode": "manual" | "execute"}``.
``POST /_emulator/emr-serverless/job-runs/state``
    Body ``{"applicationId", "jobRunId", "state", "stateDetails"?, "attempt"?, "region"?,
    "accountId"?, "allowUnknownState"?}``: sets the run's state as EMR would (no transition rules;
    ``stateDetails`` omitted or null clears it). ``attempt`` makes that number the run's latest
    attempt (a new attempt if it is not the latest already; the one before ends FAILED if it was
    live) and shows the attempt fields from then on; without it the attempt is kept. FAILED without
    ``attempt`` on a run whose retry policy allows another attempt is retried, as EMR would (the
    Retry event, the next attempt SCHEDULED). Answers 200 with the run as GetJobRun's ``jobRun``
    shows it; 404 for an unknown application or run in that region; 400 for a bad body or an
    unknown state (unless ``allowUnknownState``). Emits the state-change event too.
``POST /_emulator/emr-serverless/job-runs/utilization-event``
    Body ``{"applicationId", "jobRunId", "region"?, "accountId"?, "final"? (default false),
    "calculatedFrom"?, "calculatedTo"? (ISO-8601 or epoch seconds), "totalResourceUtilization"?,
    "totalBilledResourceUtilization"?, "resourceUtilizationForInterval"?,
    "billedResourceUtilizationForInterval"?}``: publishes a utilization update for the run's latest
    attempt now. ``calculatedTo`` defaults to now (a final event of an ended run: its end),
    ``calculatedFrom`` to the previous periodic update (else the start); the figures are the run's
    computed ones up to ``calculatedTo``, except the figure objects given, which are sent as they
    are (any JSON: a test can send negative or non-numeric figures). A final one counts as the
    run's final event: none is published for it automatically afterwards. Any number of events can
    be sent (duplicates, out of order). Answers 200 ``{"event": the event}``; 404 for an unknown
    application or run; 400 for a bad body.
``POST /_emulator/emr-serverless/job-runs/billing``
    Body ``{"applicationId", "jobRunId", "region"?, "accountId"?, "pending": bool,
    "publishFinal"? (default true, with ``pending: false`` only)}``: ``pending: true`` makes
    GetJobRun show zero ``billedResourceUtilization`` for the ended run, and holds its automatic
    final utilization event, until ``pending: false``, which releases both: the final event is
    published then if the run is over and none was sent (``publishFinal: false``: it never is, as
    a lost event). Set it before the run ends to hold the final event. Answers 200 with the run as
    GetJobRun's ``jobRun`` shows it; 404 for an unknown application or run; 400 for a bad body.
``POST /_emulator/emr-serverless/job-runs/dashboard``
    Body ``{"applicationId", "jobRunId", "region"?, "accountId"?, "attempt"? (default: the run's
    latest), "url"}``, manual mode only: GetDashboardForJobRun of that attempt answers ``{"url"}`` from
    then on, once the attempt has been RUNNING (its live UI, or its Spark History Server once it
    ended); before that, ValidationException as in execute mode. The test stands in for EMR's UI,
    which a run that executes nothing has not. Answers 200 ``{"applicationId", "jobRunId",
    "attempt", "url"}``; 404 for an unknown application, run or attempt; 400 for a bad body, or in
    execute mode (its runs serve their own UI).
``GET /_emulator/emr-serverless/quota``
    200 ``{"startJobRunRate": float | null, "startJobRunBurst": float | null, "startJobRunAttempts": int,
    "startJobRunThrottled": int}``: the quota and the StartJobRun requests counted since it was
    last set (attempts include the throttled ones).
``POST /_emulator/emr-serverless/quota``
    Body ``{"startJobRunRate": float > 0 | null, "startJobRunBurst"?: float >= 1}``: sets the quota
    (null: none), with a full bucket, and zeroes the counters. Answers 200 as GET does; 400 for a
    bad body.
``GET /_emulator/emr-serverless/job-runs/process?jobRunId=ID``
    ``{"jobRunId", "pid": int | null, "alive": bool, "exitCode": int | null}``: the run's
    spark-submit process (execute mode), so tests can prove a cancel stopped it.

Usage:

    .venv/bin/python tests/emulator/emr_serverless.py --ready-file PATH [--execute
        --aws-endpoint http://127.0.0.1:MOTO] [--work-dir DIR] [--events-url URL] [--time-scale SECONDS]
        [--billing-lag SECONDS] [--start-job-run-rate PER_SECOND [--start-job-run-burst N]] [--quiet]

Writes ``{"endpoint": "http://127.0.0.1:PORT", "pid": N}`` to PATH (atomically) and stdout once it
answers. Stops on SIGTERM/SIGINT and when its parent dies, killing any spark-submit it started.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import random
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from http_endpoint import HOST, Endpoint, send_json, write_ready_file

_PARENT_PID = os.getppid()

ADMIN = "/_emulator"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

JOB_RUN_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS", "FAILED", "CANCELLING", "CANCELLED", "QUEUED")
TERMINAL_RUN_STATES = ("SUCCESS", "FAILED", "CANCELLED")
APPLICATION_STATES = ("CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "TERMINATED")
MAX_RESULTS = 50  # both list operations: 1-50, default 50
STATE_DETAILS_MAX = 256
# Spark conf EMR Serverless understands but local Spark cannot use (the archive is not there).
# The local Spark's JVM compiles with C1 only (``spark.driver.extraJavaOptions``; local mode has no other
# JVM): the runs here last seconds, and the C2 compiler's threads cost them about 40% more CPU for no
# gain (a small pyspark.ml fit, measured 2026-12-06: 27.8 s of CPU by default, 16.7 s with this, wall
# 18.6 s and 16.5 s), which the test suites on two cores pay in wall time. A run's own
# ``spark.driver.extraJavaOptions`` comes later on the command line and replaces it.
LOCAL_SPARK_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"
EMR_ONLY_CONF_PREFIXES = ("spark.emr-serverless.",)
EMR_ONLY_CONF_KEYS = ("spark.archives",)

# The service's own durations (executionTimeoutMinutes, queueTimeoutMinutes,
# shutdownGracePeriodInSeconds) run on a scaled clock: one emulated minute lasts TIME_SCALE
# seconds (--time-scale, or this environment variable; 60 = real time). Timestamps and the
# durations the API reports are wall-clock times.
TIME_SCALE_ENV = "EMR_SERVERLESS_TIME_SCALE"
DEFAULT_TIME_SCALE = 60.0
CLOCK_TICK = 0.05  # seconds between two looks at the timers
# GetJobRun's executionTimeoutMinutes: "If you didn't specify a timeout, this value defaults to 720
# minutes" (botocore's JobRun docs).
DEFAULT_EXECUTION_TIMEOUT_MINUTES = 720
# ASSUMED wording: no public source gives the real stateDetails of a run cancelled for its
# executionTimeoutMinutes (the User Guide only says the service cancels it: CANCELLING, then
# CANCELLED). tests/README.md lists it as an assumption.
EXECUTION_TIMEOUT_DETAILS = "Job run timed out: it ran longer than its execution timeout of {minutes} minutes and was cancelled."
# schedulerConfiguration (botocore's SchedulerConfiguration docs): "If scheduler configuration is
# enabled on your application, the default value is 15" (maxConcurrentRuns, 1 to 1000) and "360
# minutes" (queueTimeoutMinutes, 15 to 720).
DEFAULT_MAX_CONCURRENT_RUNS = 15
DEFAULT_QUEUE_TIMEOUT_MINUTES = 360
# ASSUMED wording (no public source found): a run that waited in QUEUED longer than the
# application's queueTimeoutMinutes ends FAILED ("If queue timeout is reached earlier, your job
# times out": the User Guide's "Job concurrency and queuing").
QUEUE_TIMEOUT_DETAILS = "Job run timed out in the QUEUED state: it waited longer than the application's queue timeout of {minutes} minutes."

EventSink = Callable[[dict], None]

# The local Spark's Python for the model (execute mode). By default the emulator's own (the
# project's .venv: pyspark, and numpy as EMR Serverless's image has it for pyspark.ml); with this
# variable naming a requirements file, a virtualenv of its own, created once per file content
# under PYTHON_ENVS_DIR, with those packages first and the .venv's after them: the local
# counterpart of a job's packed environment (spark.archives), which local Spark drops.
PYTHON_REQUIREMENTS_ENV = "EMR_SERVERLESS_PYTHON_REQUIREMENTS"
PYTHON_ENVS_ENV = "EMR_SERVERLESS_PYTHON_ENVS"
PYTHON_ENVS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "target", "model-python")
LOCAL_PACKAGES_HINT = ("add the model's own packages with {env}=requirements.txt (tests/README.md, \"The demo\"); "
                       "on EMR Serverless they come from the job's packed environment (spark.archives) or a custom image")
# The exceptions of a missing import, as Python prints them.
_NO_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([^']+)'")
# The driver's record of the model's exception, beside result.json (ModelOpPySparkDriver.py).
MODEL_ERROR_FILE_NAME = "model-error.json"
# How long stop_all waits for a run's thread once its process is killed (it uploads the logs).
RUN_THREAD_STOP_SECONDS = 15.0


class RateQuota:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second; ``take`` spends one."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"a rate quota must be > 0 per second, not {rate}")
        burst = max(1.0, rate) if burst is None else burst
        if not burst >= 1:
            raise ValueError(f"a rate quota's burst must be >= 1, not {burst}")
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self.tokens, self.at = self.burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(message: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", message)


def validation(message: str) -> ApiError:
    return ApiError(400, "ValidationException", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "ConflictException", message)


def _new_id() -> str:
    # Real ids: 16 lowercase alphanumerics starting with "00f".
    return "00f" + "".join(random.choices(string.ascii_lowercase + string.digits, k=13))


def _now() -> float:
    return time.time()


def _iso_micro(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> float:
    """A querystring timestamp: ISO-8601 (what SDKs send), or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    value = text.strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


class Application:
    def __init__(self, region: str, account: str, body: dict) -> None:
        self.id = _new_id()
        self.region, self.account = region, account
        self.name = body.get("name")
        self.release_label = body["releaseLabel"]
        self.type = body["type"]
        self.client_token = body["clientToken"]
        self.request = {k: v for k, v in body.items() if k != "clientToken"}
        self.tags = dict(body.get("tags") or {})
        self.auto_start = dict(body.get("autoStartConfiguration") or {"enabled": True})
        self.auto_stop = dict(body.get("autoStopConfiguration") or {"enabled": True, "idleTimeoutMinutes": 15})
        self.architecture = body.get("architecture") or "X86_64"
        self.maximum_capacity = body.get("maximumCapacity")
        self.network_configuration = body.get("networkConfiguration")
        self.scheduler = _scheduler_configuration(body.get("schedulerConfiguration"))
        self.job_level_cost_allocation = body.get("jobLevelCostAllocationConfiguration")
        self.monitoring = body.get("monitoringConfiguration")
        self.state = "CREATED"
        self.state_details: str | None = None
        self.created_at = self.updated_at = _now()

    @property
    def arn(self) -> str:
        return f"arn:aws:emr-serverless:{self.region}:{self.account}:/applications/{self.id}"

    def summary(self) -> dict:
        out = {
            "id": self.id, "arn": self.arn, "releaseLabel": self.release_label, "type": self.type,
            "state": self.state, "createdAt": self.created_at, "updatedAt": self.updated_at,
            "architecture": self.architecture,
        }
        if self.name is not None:
            out["name"] = self.name
        if self.state_details:
            out["stateDetails"] = self.state_details
        return out

    def full(self) -> dict:
        out = self.summary()
        out["applicationId"] = out.pop("id")
        out.update({"tags": self.tags, "autoStartConfiguration": self.auto_start, "autoStopConfiguration": self.auto_stop})
        for key, value in (("maximumCapacity", self.maximum_capacity), ("networkConfiguration", self.network_configuration),
                           ("schedulerConfiguration", self.scheduler),
                           ("jobLevelCostAllocationConfiguration", self.job_level_cost_allocation),
                           ("monitoringConfiguration", self.monitoring)):
            if value is not None:
                out[key] = value
        return out


def _scheduler_configuration(config: dict | None) -> dict | None:
    """The application's job concurrency and queuing, or None (no queuing). As the AWS provider for
    Terraform found the API to behave (hashicorp/terraform-provider-aws#44589): an empty object
    leaves it off, and a member not given takes its default.

    Deviation, on purpose: the User Guide says emr-7.3.0 and later enable it by default (15 runs,
    360 minutes); here only an application created with a schedulerConfiguration queues, so runs on
    other applications keep their SUBMITTED -> SCHEDULED -> RUNNING path (and events)."""
    if not config:
        return None
    return {"maxConcurrentRuns": config.get("maxConcurrentRuns", DEFAULT_MAX_CONCURRENT_RUNS),
            "queueTimeoutMinutes": config.get("queueTimeoutMinutes", DEFAULT_QUEUE_TIMEOUT_MINUTES)}


# ---- resource utilization (EMULATED figures: local Spark has no workers to count)
#
# The figures are wall time in RUNNING x the worker sizes the run declares in its Spark conf
# (sparkSubmitParameters' --conf, then configurationOverrides' spark-defaults), with EMR
# Serverless's documented defaults for what it does not declare. The User Guide's Spark properties
# table ("Using Spark configurations when you run EMR Serverless jobs", jobs-spark.html; the look-up
# tool here returned that page without the table, so these are as recalled, not re-read):
# spark.driver.cores 4, spark.driver.memory 14G, spark.executor.cores 4, spark.executor.memory 14G,
# spark.emr-serverless.driver.disk 20G, spark.emr-serverless.executor.disk 20G. Its "Supported worker
# configurations" (app-behavior.html, read here): Spark's memory overhead
# (spark.driver.memoryOverhead / spark.executor.memoryOverhead) defaults to 10% of the memory, at
# least 384 MB, and must fit in the worker. ASSUMED: a worker's memory is the Spark memory plus its
# overhead, rounded up to a whole GB (so the defaults give one worker of 4 vCPU, 16 GB, 20 GB, what
# the emulator counted before it read the conf); executors are counted only when
# spark.executor.instances is given (local Spark runs everything in the driver; EMR's dynamic
# allocation would start some that nothing here can count); a value that cannot be read takes the
# default. Billed (botocore's JobRun.billedResourceUtilization): "a 1-minute minimum usage for
# workers, plus additional storage over 20 GB per worker".
SPARK_DEFAULTS = {
    "spark.driver.cores": "4", "spark.driver.memory": "14G", "spark.emr-serverless.driver.disk": "20G",
    "spark.executor.cores": "4", "spark.executor.memory": "14G", "spark.emr-serverless.executor.disk": "20G",
    "spark.executor.instances": "0",
}
FREE_STORAGE_GB = 20  # per worker, not billed
MEMORY_OVERHEAD_FACTOR, MEMORY_OVERHEAD_MIN_GB = 0.10, 384 / 1024
BILLED_MINIMUM_HOURS = 1 / 60
# "EMR Serverless Job Resource Utilization Update": "at approximately 30 minutes interval" while a
# run goes (the User Guide's "Automating EMR Serverless with Amazon EventBridge"), on the scaled clock.
UTILIZATION_INTERVAL_MINUTES = 30
# After a run ends its billed figures can read zero for a while; GetJobRun shows zeros and the
# final utilization event waits this many wall-clock seconds (--billing-lag, or this variable).
BILLING_LAG_ENV = "EMR_SERVERLESS_BILLING_LAG"
UTILIZATION_KEYS = ("vCPUHour", "memoryGBHour", "storageGBHour")
ZERO_UTILIZATION = {key: 0.0 for key in UTILIZATION_KEYS}


def _spark_conf(job_driver: dict, overrides: dict) -> dict[str, str]:
    """The Spark properties a run declares: spark-defaults of configurationOverrides, overridden by
    sparkSubmitParameters' ``--conf key=value``."""
    conf: dict[str, str] = {}
    for config in (overrides or {}).get("applicationConfiguration") or []:
        if isinstance(config, dict) and config.get("classification") == "spark-defaults":
            conf.update({str(k): str(v) for k, v in (config.get("properties") or {}).items()})
    tokens = str(((job_driver or {}).get("sparkSubmit") or {}).get("sparkSubmitParameters") or "").split()
    for flag, value in zip(tokens, tokens[1:] + [""]):
        if flag == "--conf" and "=" in value:
            key, _, val = value.partition("=")
            conf[key] = val
    return conf


def _size_gb(text: str, default_unit: str) -> float:
    """A Spark size ("14G", "2048m", "20g"; a bare number is in ``default_unit``) in GB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", text.lower())
    if not match:
        raise ValueError(text)
    unit = match[2] or default_unit
    return float(match[1]) * {"k": 1 / 1024 ** 2, "m": 1 / 1024, "g": 1.0, "t": 1024.0}[unit]


class WorkerSizes:
    """The declared workers of a run: one driver and ``executors`` executors (vCPU, GB, GB)."""

    def __init__(self, conf: dict[str, str]) -> None:
        def read(key: str, parse: Callable[[str], float]) -> float:
            try:
                return parse(conf[key]) if key in conf else parse(SPARK_DEFAULTS[key])
            except (ValueError, KeyError):
                return parse(SPARK_DEFAULTS[key])

        def worker(role: str) -> tuple[float, float, float]:
            memory = read(f"spark.{role}.memory", lambda v: _size_gb(v, "m"))
            overhead_key = f"spark.{role}.memoryOverhead"
            try:
                overhead = _size_gb(conf[overhead_key], "m") if overhead_key in conf else None
            except ValueError:
                overhead = None
            if overhead is None:
                overhead = max(memory * MEMORY_OVERHEAD_FACTOR, MEMORY_OVERHEAD_MIN_GB)
            return (read(f"spark.{role}.cores", int), float(-(-(memory + overhead) // 1)),
                    read(f"spark.emr-serverless.{role}.disk", lambda v: _size_gb(v, "g")))

        self.driver = worker("driver")
        self.executor = worker("executor")
        self.executors = max(0, int(read("spark.executor.instances", int)))

    @property
    def workers(self) -> list[tuple[float, float, float]]:
        return [self.driver] + [self.executor] * self.executors

    def utilization(self, hours: float) -> tuple[dict, dict]:
        """(total, billed) ResourceUtilization of ``hours`` of RUNNING."""
        if hours <= 0:
            return dict(ZERO_UTILIZATION), dict(ZERO_UTILIZATION)
        billed_hours = max(hours, BILLED_MINIMUM_HOURS)
        total, billed = dict(ZERO_UTILIZATION), dict(ZERO_UTILIZATION)
        for vcpu, memory, disk in self.workers:
            for out, ran in ((total, hours), (billed, billed_hours)):
                out["vCPUHour"] += vcpu * ran
                out["memoryGBHour"] += memory * ran
            total["storageGBHour"] += disk * hours
            billed["storageGBHour"] += max(0.0, disk - FREE_STORAGE_GB) * billed_hours
        return _rounded(total), _rounded(billed)


def _rounded(figures: dict) -> dict:
    return {key: round(figures[key], 6) for key in UTILIZATION_KEYS}


def _minus(later: dict, earlier: dict) -> dict:
    return _rounded({key: later[key] - earlier[key] for key in UTILIZATION_KEYS})


def _utilization(run: "JobRun", attempt: "Attempt", until: float | None = None) -> tuple[dict, dict]:
    """(total, billed) of the attempt's RUNNING time up to ``until`` (its end by default)."""
    end = attempt.ended_at if until is None else min(until, attempt.ended_at or until)
    hours = 0.0 if attempt.started_at is None or end is None else max(0.0, end - attempt.started_at) / 3600
    return run.sizes.utilization(hours)


class Attempt:
    """One attempt of a job run (EMR Serverless "job resiliency": a failed attempt of a run with a
    ``retryPolicy`` is run again from the beginning as attempt n+1; ListJobRunAttempts lists them
    and GetJobRun shows the latest, or the one its ``attempt`` query parameter names)."""

    def __init__(self, number: int, at: float, state: str) -> None:
        self.number = number
        self.created_at = self.updated_at = at
        self.state = state
        self.state_details: str | None = None
        self.started_at: float | None = None  # first RUNNING of this attempt
        self.ended_at: float | None = None  # when it reached a terminal state (or was retried)
        self.reported_to: float | None = None  # calculatedTo of its last periodic utilization event


class JobRun:
    def __init__(self, app: Application, body: dict) -> None:
        self.id = _new_id()
        self.app = app
        self.name = body.get("name")
        self.client_token = body["clientToken"]
        self.execution_role = body["executionRoleArn"]
        self.job_driver = body.get("jobDriver") or {}
        self.overrides = body.get("configurationOverrides") or {}
        self.tags = dict(body.get("tags") or {})
        self.mode = body.get("mode") or "BATCH"
        # StartJobRun's retryPolicy, as given (botocore: RetryPolicy{maxAttempts, maxFailedAttemptsPerHour}).
        self.retry_policy: dict | None = dict(body["retryPolicy"]) if body.get("retryPolicy") is not None else None
        # StartJobRun's executionIamPolicy, as given (botocore: JobRunExecutionIamPolicy{policy, policyArns}).
        self.execution_iam_policy: dict | None = dict(body["executionIamPolicy"]) if body.get("executionIamPolicy") else None
        timeout = body.get("executionTimeoutMinutes")
        self.execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT_MINUTES if timeout is None else int(timeout)
        self.created_at = self.updated_at = _now()
        self.attempts: list[Attempt] = [Attempt(1, self.created_at, "SUBMITTED")]
        # GetJobRun shows attempt/attemptCreatedAt/attemptUpdatedAt for a run with a retry policy, or
        # once the admin route has named an attempt (a run without either never had one to show).
        self.attempt_visible = self.retry_policy is not None
        self.state_times: list[tuple[str, float]] = [("SUBMITTED", self.created_at)]
        # Job concurrency (an application with a schedulerConfiguration): a run holds one of its
        # maxConcurrentRuns slots from admission to its end; until then it waits (QUEUED).
        self.admitted = False
        self.waiting = False
        self.queued_at: float | None = None
        # Cancellation: by CancelJobRun or by the execution timeout (then with its stateDetails).
        self.cancel_requested = threading.Event()
        self.cancel_details = "Job run cancelled by user"
        # Execution (execute mode).
        self.process: subprocess.Popen | None = None
        # The current attempt's Spark UI port as asked of Spark (spark.ui.port), and the attempt's stderr.
        self.ui_port: int | None = None
        self.ui_log: str | None = None
        # Manual mode: the Spark UI link a test gave each attempt (the admin route ``dashboard``).
        self.dashboard_urls: dict[int, str] = {}
        # Resource utilization (emulated): the declared workers; when the billed figures of the
        # ended run are in (end + billing lag); a test's hold on them; whether the final
        # utilization event went out.
        self.sizes = WorkerSizes(_spark_conf(self.job_driver, self.overrides))
        self.billed_from: float | None = None
        self.billing_hold = False
        self.final_sent = False

    def billed_ready(self, attempt: Attempt, now: float | None = None) -> bool:
        """Whether GetJobRun shows the attempt's billed figures yet (an earlier, retried attempt's
        always; the run's last one once the billing lag is over and no test holds them)."""
        if attempt is not self.current:
            return True
        now = _now() if now is None else now
        return not self.billing_hold and (self.billed_from is None or now >= self.billed_from)

    def queued_ms(self, now: float | None = None) -> int:
        """queuedDurationMilliseconds: "The total time for a job in the QUEUED state" (wall-clock)."""
        now = _now() if now is None else now
        total = 0.0
        for (state, at), (_next, until) in zip(self.state_times, self.state_times[1:] + [("", now)]):
            if state == "QUEUED":
                total += until - at
        return int(total * 1000)

    @property
    def first_started_at(self) -> float | None:
        """When the run first went RUNNING: the execution timeout counts from there, across
        attempts (ASSUMED: the User Guide says only that a run that runs longer is cancelled)."""
        return next((a.started_at for a in self.attempts if a.started_at is not None), None)

    # The run's state is its latest attempt's.
    @property
    def current(self) -> Attempt:
        return self.attempts[-1]

    @property
    def state(self) -> str:
        return self.current.state

    @property
    def state_details(self) -> str | None:
        return self.current.state_details

    @property
    def attempt(self) -> int | None:
        return self.current.number if self.attempt_visible else None

    def attempt_view(self, number: int | None) -> Attempt:
        if number is None:
            return self.current
        for attempt in self.attempts:
            if attempt.number == number:
                return attempt
        raise not_found(f"Attempt {number} of job run {self.id} does not exist")

    def max_attempts(self) -> int:
        """How many attempts a BATCH run gets (retryPolicy.maxAttempts; 1 without a policy).
        maxFailedAttemptsPerHour is STREAMING-only and is accepted, not enforced."""
        if self.mode != "BATCH" or not self.retry_policy:
            return 1
        return int(self.retry_policy.get("maxAttempts") or 1)

    @property
    def arn(self) -> str:
        return f"{self.app.arn}/jobruns/{self.id}"

    @property
    def created_by(self) -> str:
        return f"arn:aws:sts::{self.app.account}:assumed-role/local/emulator"

    def _common(self, attempt: Attempt) -> dict:
        latest = attempt is self.current
        out = {
            "applicationId": self.app.id, "arn": self.arn, "createdBy": self.created_by,
            "createdAt": self.created_at, "updatedAt": self.updated_at if latest else attempt.updated_at,
            "executionRole": self.execution_role, "state": attempt.state, "stateDetails": attempt.state_details or "",
            "releaseLabel": self.app.release_label, "mode": self.mode,
        }
        if self.name is not None:
            out["name"] = self.name
        if self.attempt_visible:
            out.update({"attempt": attempt.number, "attemptCreatedAt": attempt.created_at, "attemptUpdatedAt": attempt.updated_at})
        return out

    def summary(self) -> dict:
        out = self._common(self.current)
        out["id"] = self.id
        out["type"] = "Spark"
        return out

    def attempt_summary(self, attempt: Attempt) -> dict:
        """A JobRunAttemptSummary (botocore): the run's fields, the attempt's state and times."""
        out = {
            "applicationId": self.app.id, "id": self.id, "mode": self.mode, "arn": self.arn, "createdBy": self.created_by,
            "jobCreatedAt": self.created_at, "createdAt": attempt.created_at, "updatedAt": attempt.updated_at,
            "executionRole": self.execution_role, "state": attempt.state, "stateDetails": attempt.state_details or "",
            "releaseLabel": self.app.release_label, "type": "Spark", "attempt": attempt.number,
        }
        if self.name is not None:
            out["name"] = self.name
        return out

    def full(self, number: int | None = None) -> dict:
        attempt = self.attempt_view(number)
        out = self._common(attempt)
        out.update({"jobRunId": self.id, "jobDriver": self.job_driver, "configurationOverrides": self.overrides, "tags": self.tags})
        out["executionTimeoutMinutes"] = self.execution_timeout
        if self.retry_policy is not None:
            out["retryPolicy"] = self.retry_policy
        if self.execution_iam_policy is not None:
            out["executionIamPolicy"] = self.execution_iam_policy
        # startedAt: "when the job moved to the RUNNING state"; endedAt: "when the job was terminated";
        # totalExecutionDurationSeconds: only for a run that is over (botocore's JobRun docs). All of
        # the attempt shown (for a run that was never retried, of the run).
        if attempt.started_at is not None:
            out["startedAt"] = attempt.started_at
        if attempt.ended_at is not None:
            out["endedAt"] = attempt.ended_at
            out["totalExecutionDurationSeconds"] = int(attempt.ended_at - (attempt.started_at or attempt.created_at))
            total, billed = _utilization(self, attempt)
            out["totalResourceUtilization"] = total
            out["billedResourceUtilization"] = billed if self.billed_ready(attempt) else dict(ZERO_UTILIZATION)
        out["queuedDurationMilliseconds"] = self.queued_ms()
        if self.app.network_configuration is not None:
            out["networkConfiguration"] = self.app.network_configuration
        return out

    def log_config(self) -> dict | None:
        logging = (self.overrides.get("monitoringConfiguration") or {}).get("cloudWatchLoggingConfiguration") or {}
        return logging if logging.get("enabled") else None


class EmrServerless:
    """The service's state, shared by the HTTP handler, the admin routes and the runner."""

    def __init__(self, event_sink: EventSink | None = None, runner: "SparkRunner | None" = None, log: Callable[[str], None] | None = None,
                 time_scale: float | None = None, billing_lag: float | None = None) -> None:
        if billing_lag is None:
            billing_lag = float(os.environ.get(BILLING_LAG_ENV) or 0)
        if not billing_lag >= 0:
            raise ValueError(f"billing lag must be >= 0 seconds, not {billing_lag}")
        self.billing_lag = billing_lag
        if time_scale is None:
            time_scale = float(os.environ.get(TIME_SCALE_ENV) or DEFAULT_TIME_SCALE)
        if not time_scale > 0:
            raise ValueError(f"time scale must be > 0 seconds per minute, not {time_scale}")
        self.time_scale = time_scale
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # a run's admission, cancellation or end
        self.apps: dict[str, dict[str, Application]] = {}  # region -> id -> app
        self.runs: dict[str, JobRun] = {}  # run id -> run (ids are unique across regions)
        self.event_sink = event_sink
        self.runner = runner
        self.log = log or (lambda message: print(f"emr-serverless: {message}", file=sys.stderr, flush=True))
        self.stopping = threading.Event()
        self.clock: threading.Thread | None = None
        # The runner's threads (execute mode), one a run: stop_all waits for them, so nothing
        # writes to the work directory once it returns.
        self.run_threads: list[threading.Thread] = []
        # The live runs with a timer: started (the execution timeout) or waiting in a queue. The
        # clock looks at these only, not at every run the emulator has seen.
        self.timed: set[JobRun] = set()
        # Ended runs whose final utilization event waits for their billed figures.
        self.final_pending: set[JobRun] = set()
        # The StartJobRun rate quota (None: none) and the requests it counted.
        self.start_job_run_quota: RateQuota | None = None
        self.start_job_run_attempts = 0
        self.start_job_run_throttled = 0

    def set_start_job_run_quota(self, rate: float | None, burst: float | None = None) -> None:
        """Sets the StartJobRun rate quota (None: none), with a full bucket, and zeroes its counters."""
        quota = RateQuota(rate, burst) if rate is not None else None
        with self.lock:
            self.start_job_run_quota = quota
            self.start_job_run_attempts = self.start_job_run_throttled = 0

    def quota_view(self) -> dict:
        with self.lock:
            quota = self.start_job_run_quota
            return {"startJobRunRate": quota.rate if quota else None, "startJobRunBurst": quota.burst if quota else None,
                    "startJobRunAttempts": self.start_job_run_attempts, "startJobRunThrottled": self.start_job_run_throttled}

    def admin_quota(self, body: Any) -> tuple[int, dict]:
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        unknown = sorted(set(body) - {"startJobRunRate", "startJobRunBurst"})
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        if "startJobRunRate" not in body:
            raise ValueError("startJobRunRate is required (null for no quota)")
        rate, burst = body["startJobRunRate"], body.get("startJobRunBurst")
        for name, value in (("startJobRunRate", rate), ("startJobRunBurst", burst)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{name} must be a number or null")
        if rate is None and burst is not None:
            raise ValueError("startJobRunBurst needs startJobRunRate")
        self.set_start_job_run_quota(rate, burst)
        return 200, self.quota_view()

    def _admit_start_job_run(self) -> None:
        """Counts a StartJobRun request and spends a token of the quota: ThrottlingException when none is left."""
        with self.lock:
            self.start_job_run_attempts += 1
            if self.start_job_run_quota is None or self.start_job_run_quota.take():
                return
            self.start_job_run_throttled += 1
        raise ApiError(429, "ThrottlingException", "Rate exceeded")

    # ---- helpers

    def _apps(self, region: str) -> dict[str, Application]:
        return self.apps.setdefault(region, {})

    def _app(self, region: str, app_id: str) -> Application:
        app = self._apps(region).get(app_id)
        if app is None:
            raise not_found(f"Application {app_id} does not exist")
        return app

    def _run(self, region: str, app_id: str, run_id: str) -> JobRun:
        app = self._app(region, app_id)
        run = self.runs.get(run_id)
        if run is None or run.app is not app:
            raise not_found(f"Job run {run_id} does not exist in application {app_id}")
        return run

    def set_state(self, run: JobRun, state: str, details: str | None = None, attempt: int | None = None,
                  only_from: tuple[str, ...] | None = None) -> bool:
        """Move the run (its latest attempt) to ``state`` and publish the state change. With
        ``only_from``, only a run in one of those states moves (a timer and the run's own thread may
        race); answers whether it moved. ``attempt`` (the admin route) makes that number the
        latest attempt: a new one, as a retry would, if it is not the latest already."""
        with self.lock:
            if only_from is not None and run.state not in only_from:
                return False
            previous = run.state
            now = _now()
            if attempt is not None:
                run.attempt_visible = True
                if attempt != run.current.number:
                    self._new_attempt(run, attempt, state, now)
            current = run.current
            current.state = state
            current.state_details = (details or "")[:STATE_DETAILS_MAX] or None
            run.updated_at = current.updated_at = now
            run.state_times.append((state, now))
            if state == "RUNNING" and current.started_at is None:
                current.started_at = now
            if state == "RUNNING":
                self.timed.add(run)
            freed = False
            final_event = None
            if state in TERMINAL_RUN_STATES:
                current.ended_at = now
                run.waiting = False
                self.timed.discard(run)
                freed = run.admitted and previous not in TERMINAL_RUN_STATES
                self.changed.notify_all()
                if previous not in TERMINAL_RUN_STATES:
                    run.billed_from = now + self.billing_lag
                    final_event = self._final_event_if_due(run, now)
            elif previous in TERMINAL_RUN_STATES:
                # A test moved an ended run back to life: it will end (and be billed) again.
                run.billed_from, run.final_sent = None, False
                self.final_pending.discard(run)
            event = self.state_change_event(run, previous)
        self.log(f"job run {run.id} ({run.name}): {previous} -> {state}" + (f" ({run.state_details})" if run.state_details else ""))
        self.publish(event)
        if final_event is not None:
            self.publish(final_event)
        elif run in self.final_pending:
            self._start_clock()
        if freed:
            self._dequeue(run.app)
        return True

    @staticmethod
    def _new_attempt(run: JobRun, number: int, state: str, now: float) -> Attempt:
        previous = run.current
        if previous.state not in TERMINAL_RUN_STATES:
            # An attempt that is followed by another one is over: it failed.
            previous.state, previous.updated_at, previous.ended_at = "FAILED", now, now
        attempt = Attempt(number, now, state)
        run.attempts.append(attempt)
        return attempt

    def retry(self, run: JobRun, details: str | None) -> bool:
        """A failed attempt: if the run's retry policy allows another attempt (BATCH,
        ``maxAttempts``), the attempt ends FAILED with ``details``, the "EMR Serverless Job Run
        Retry" event is published and the next attempt starts in SCHEDULED (the run keeps its place
        on the application: the retry is not queued again). The run itself is not FAILED in
        between, so no FAILED state change is published for it. Answers False (nothing done) when
        the run must end FAILED instead."""
        with self.lock:
            if (run.state in TERMINAL_RUN_STATES or run.cancel_requested.is_set() or self.stopping.is_set()
                    or run.current.number >= run.max_attempts()):
                return False
            now = _now()
            failed = run.current
            failed.state, failed.updated_at, failed.ended_at = "FAILED", now, now
            failed.state_details = (details or "")[:STATE_DETAILS_MAX] or None
            previous_state = run.state_times[-1][0]
            attempt = self._new_attempt(run, failed.number + 1, "SCHEDULED", now)
            run.attempt_visible = True
            run.updated_at = now
            run.state_times.append(("SCHEDULED", now))
            retry_event = self.retry_event(run, failed, attempt)
            state_event = self.state_change_event(run, previous_state)
        self.log(f"job run {run.id} ({run.name}): attempt {failed.number} FAILED ({failed.state_details}); "
                 f"attempt {attempt.number} of {run.max_attempts()} starts")
        self.publish(retry_event)
        self.publish(state_event)
        return True

    def retry_event(self, run: JobRun, previous: Attempt, new: Attempt) -> dict:
        """"EMR Serverless Job Run Retry" as the EMR Serverless User Guide's EventBridge samples
        show it (and events/monitor/job-run-retry.json): the run's common fields, the previous
        attempt's number, state, creation and end, the new attempt's number and creation; no
        ``state``, ``attempt`` or ``jobRunName``."""
        detail = {
            "jobRunId": run.id, "applicationId": run.app.id, "arn": run.arn, "releaseLabel": run.app.release_label,
            "createdBy": run.created_by, "updatedAt": _iso_micro(run.updated_at), "createdAt": _iso_micro(run.created_at),
            "previousAttempt": previous.number, "previousAttemptState": previous.state,
            "previousAttemptCreatedAt": _iso_micro(previous.created_at),
            "previousAttemptEndedAt": _iso_micro(previous.ended_at or previous.updated_at),
            "newAttempt": new.number, "newAttemptCreatedAt": _iso_micro(new.created_at),
        }
        return self._event("EMR Serverless Job Run Retry", run, new.created_at, detail)

    def _event(self, detail_type: str, run: JobRun, at: float, detail: dict) -> dict:
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
            "source": "aws.emr-serverless", "account": run.app.account,
            "time": dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": run.app.region, "resources": [], "detail": detail,
        }

    def state_change_event(self, run: JobRun, previous: str | None) -> dict:
        detail = {
            "jobRunId": run.id, "applicationId": run.app.id, "arn": run.arn, "releaseLabel": run.app.release_label,
            "state": run.state, "createdBy": run.created_by,
            "updatedAt": _iso_micro(run.updated_at), "createdAt": _iso_micro(run.created_at),
        }
        if run.name is not None:
            detail["jobRunName"] = run.name
        if previous is not None and previous != run.state:
            detail["previousState"] = previous
        if run.state_details:
            detail["stateDetails"] = run.state_details
        return self._event("EMR Serverless Job Run State Change", run, run.updated_at, detail)

    # ---- resource utilization updates (emulated figures, see WorkerSizes)

    def utilization_event(self, run: JobRun, final: bool, now: float | None = None, calculated_to: float | None = None,
                          calculated_from: float | None = None, figures: dict | None = None) -> dict:
        """"EMR Serverless Job Resource Utilization Update" for the run's latest attempt, shaped as the
        User Guide's EventBridge sample (and events/monitor/resource-utilization.json): totals from
        the attempt's start to ``calculatedTo`` (its end for a final event, else now), the interval
        since ``calculatedFrom`` (the last periodic event's ``calculatedTo``, else the start), and the
        run's ARN in ``resources``. ``figures`` (the admin route) replace any of the four figure
        objects as given, unchecked."""
        now = _now() if now is None else now
        attempt = run.current
        if calculated_to is None:
            calculated_to = attempt.ended_at if final and attempt.ended_at is not None else now
        if calculated_from is None:
            calculated_from = attempt.reported_to or attempt.started_at or attempt.created_at
        total, billed = _utilization(run, attempt, until=calculated_to)
        total_before, billed_before = _utilization(run, attempt, until=calculated_from)
        detail = {
            "applicationId": run.app.id, "jobRunId": run.id, "attempt": attempt.number, "mode": run.mode,
            "createdAt": _iso_micro(run.created_at),
        }
        if attempt.started_at is not None:
            detail["startedAt"] = _iso_micro(attempt.started_at)
        detail.update({
            "calculatedFrom": _iso_micro(calculated_from), "calculatedTo": _iso_micro(calculated_to),
            "resourceUtilizationFinal": final,
            "resourceUtilizationForInterval": _minus(total, total_before),
            "billedResourceUtilizationForInterval": _minus(billed, billed_before),
            "totalResourceUtilization": total, "totalBilledResourceUtilization": billed,
        })
        detail.update(figures or {})
        event = self._event("EMR Serverless Job Resource Utilization Update", run, now, detail)
        event["resources"] = [run.arn]
        return event

    def _utilization_report_due(self, run: JobRun, now: float) -> bool:
        attempt = run.current
        return (run.state in ("RUNNING", "CANCELLING") and attempt.started_at is not None and attempt.ended_at is None
                and now - (attempt.reported_to or attempt.started_at) >= self.minutes(UTILIZATION_INTERVAL_MINUTES))

    def _periodic_utilization_event(self, run: JobRun, now: float) -> dict:
        """(Under the lock.) The update of a run that is still going; the next counts from here."""
        event = self.utilization_event(run, final=False, now=now)
        run.current.reported_to = now
        return event

    def _final_event_if_due(self, run: JobRun, now: float) -> dict | None:
        """(Under the lock.) The final utilization event of an ended run once its billed figures are
        in (billing lag over, no hold), else None and the run waits in ``final_pending``. Sent once."""
        if run.final_sent or run.state not in TERMINAL_RUN_STATES:
            self.final_pending.discard(run)
            return None
        if not run.billed_ready(run.current, now):
            self.final_pending.add(run)
            return None
        self.final_pending.discard(run)
        run.final_sent = True
        return self.utilization_event(run, final=True, now=now)

    def publish(self, event: dict) -> None:
        if self.event_sink is None:
            return
        try:
            self.event_sink(event)
        except Exception as exc:  # noqa: BLE001 - EventBridge delivery is best effort
            self.log(f"event delivery failed: {exc}")

    # ---- job concurrency and queuing (an application's schedulerConfiguration)

    def _slots_used(self, app: Application) -> int:
        return sum(1 for r in self.runs.values() if r.app is app and r.admitted and r.state not in TERMINAL_RUN_STATES)

    def _request_slot(self, run: JobRun) -> bool:
        """(Under the lock.) Admit the run if its application has a free slot and nobody queued
        before it; else it waits (the caller moves it to QUEUED)."""
        config = run.app.scheduler
        ahead = any(r.waiting for r in self.runs.values() if r.app is run.app and r is not run)
        if config is None or (not ahead and self._slots_used(run.app) < config["maxConcurrentRuns"]):
            run.admitted, run.waiting = True, False
            return True
        run.waiting, run.queued_at = True, _now()
        self.timed.add(run)
        return False

    def _admit(self, run: JobRun) -> None:
        """Manual mode: a run the scheduler admits is SCHEDULED at once (a test moves it on)."""
        self.set_state(run, "PENDING", only_from=("SUBMITTED",))
        with self.lock:
            admitted = self._request_slot(run)
        if admitted:
            self.set_state(run, "SCHEDULED", only_from=("PENDING",))
        else:
            self.set_state(run, "QUEUED", only_from=("PENDING",))

    def wait_for_slot(self, run: JobRun) -> bool:
        """Execute mode, the run's thread: PENDING, then QUEUED until a slot is free (the runner
        then moves it to SCHEDULED). False if it was cancelled, timed out in the queue, or the
        emulator stops."""
        self.set_state(run, "PENDING", only_from=("SUBMITTED",))
        with self.lock:
            if run.cancel_requested.is_set():
                return False
            if self._request_slot(run):
                return True
        self.set_state(run, "QUEUED", only_from=("PENDING",))
        with self.changed:
            while not (run.admitted or run.cancel_requested.is_set() or run.state in TERMINAL_RUN_STATES or self.stopping.is_set()):
                self.changed.wait(0.5)
            return run.admitted and not run.cancel_requested.is_set()

    def _dequeue(self, app: Application) -> None:
        """A slot was freed: admit the oldest waiting runs (QUEUED -> SCHEDULED), as many as fit."""
        with self.lock:
            config = app.scheduler
            if config is None:
                return
            waiting = sorted((r for r in self.runs.values() if r.app is app and r.waiting and r.state not in TERMINAL_RUN_STATES
                              and not r.cancel_requested.is_set()), key=lambda r: r.created_at)
            admitted = waiting[:max(0, config["maxConcurrentRuns"] - self._slots_used(app))]
            for run in admitted:
                run.admitted, run.waiting = True, False
            self.changed.notify_all()
        if self.runner is None:
            for run in admitted:
                self.set_state(run, "SCHEDULED", only_from=("QUEUED", "PENDING"))

    def _queue_timeout(self, run: JobRun) -> None:
        with self.lock:
            if not run.waiting or run.admitted:
                return
            run.waiting = False
            minutes = run.app.scheduler["queueTimeoutMinutes"]
            self.changed.notify_all()
        self.log(f"job run {run.id}: queue timeout ({minutes} min, {self.minutes(minutes):g} s)")
        self.set_state(run, "FAILED", QUEUE_TIMEOUT_DETAILS.format(minutes=minutes), only_from=("QUEUED", "PENDING"))

    # ---- the clock: the service's timers

    def minutes(self, minutes: float) -> float:
        """Wall-clock seconds of an emulated duration in minutes (the time scale)."""
        return minutes * self.time_scale

    def seconds(self, seconds: float) -> float:
        return seconds * self.time_scale / 60.0

    def _start_clock(self) -> None:
        with self.lock:
            if self.clock is None and not self.stopping.is_set():
                self.clock = threading.Thread(target=self._clock_loop, name="emr-serverless-clock", daemon=True)
                self.clock.start()

    def _clock_loop(self) -> None:
        while not self.stopping.wait(CLOCK_TICK):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the clock must keep ticking
                self.log(f"clock: {traceback.format_exc()}")

    def tick(self, now: float | None = None) -> None:
        """Act on every timer that is due: utilization updates (every 30 minutes of RUNNING, and
        the final one once the billing lag is over), queue timeouts and execution timeouts."""
        now = _now() if now is None else now
        with self.lock:
            queue_expired = [
                run for run in self.timed
                if run.waiting and not run.admitted and run.queued_at is not None and run.app.scheduler is not None
                and now - run.queued_at >= self.minutes(run.app.scheduler["queueTimeoutMinutes"])
            ]
            timed_out = [
                run for run in self.timed
                if run.state not in TERMINAL_RUN_STATES and not run.cancel_requested.is_set() and run.execution_timeout > 0
                and run.first_started_at is not None and now - run.first_started_at >= self.minutes(run.execution_timeout)
            ]
            utilization = [self._periodic_utilization_event(run, now) for run in list(self.timed)
                           if self._utilization_report_due(run, now)]
            utilization += [e for e in (self._final_event_if_due(run, now) for run in list(self.final_pending)) if e is not None]
        for event in utilization:
            self.publish(event)
        for run in queue_expired:
            self._queue_timeout(run)
        for run in timed_out:
            self._execution_timeout(run)

    def _execution_timeout(self, run: JobRun) -> None:
        """StartJobRun's executionTimeoutMinutes: "If the job run exceeds this duration, Amazon EMR
        Serverless cancels it automatically" (botocore); the User Guide's job run states: CANCELLING
        is also the state of a run that "has timed out". No grace period."""
        details = EXECUTION_TIMEOUT_DETAILS.format(minutes=run.execution_timeout)
        with self.lock:
            if run.cancel_requested.is_set() or run.state in TERMINAL_RUN_STATES:
                return
            run.cancel_requested.set()
            run.cancel_details = details
            self.changed.notify_all()
        self.log(f"job run {run.id}: execution timeout ({run.execution_timeout} min, {self.minutes(run.execution_timeout):g} s)")
        self.set_state(run, "CANCELLING", details)
        if self.runner is None:
            self.set_state(run, "CANCELLED", details, only_from=("CANCELLING",))
        else:
            self.runner.cancel(run)

    # ---- the API

    def list_applications(self, region: str, query: dict[str, list[str]]) -> dict:
        states = query.get("states") or []
        for state in states:
            if state not in APPLICATION_STATES:
                raise validation(f"1 validation error detected: Value '{state}' at 'states' failed to satisfy constraint")
        with self.lock:
            apps = sorted(self._apps(region).values(), key=lambda a: a.created_at, reverse=True)
            items = [a.summary() for a in apps if not states or a.state in states]
        page, token = _paginate(items, query)
        out: dict = {"applications": page}
        if token:
            out["nextToken"] = token
        return out

    def create_application(self, region: str, account: str, body: dict) -> dict:
        for field in ("releaseLabel", "type", "clientToken"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise validation(f"{field} is required")
        if not re.fullmatch(r"emr-\d+\.\d+\.\d+(-.*)?", body["releaseLabel"]):
            raise validation(f"Release label {body['releaseLabel']} is not valid")
        if body["type"].upper() not in ("SPARK", "HIVE"):
            raise validation(f"Type {body['type']} is not supported")
        name = body.get("name")
        if name is not None and not re.fullmatch(r"[A-Za-z0-9._/#-]{1,64}", name):
            raise validation(f"Application name {name!r} is not valid")
        _check_application_config(body)
        with self.lock:
            for app in self._apps(region).values():
                if app.client_token == body["clientToken"]:
                    if app.request != {k: v for k, v in body.items() if k != "clientToken"}:
                        raise conflict(f"clientToken {body['clientToken']} was already used with other parameters")
                    return {"applicationId": app.id, "name": app.name, "arn": app.arn}
            app = Application(region, account, body)
            self._apps(region)[app.id] = app
        self.log(f"application {app.id} ({app.name}) created")
        return {"applicationId": app.id, "name": app.name, "arn": app.arn}

    def get_application(self, region: str, app_id: str) -> dict:
        with self.lock:
            return {"application": self._app(region, app_id).full()}

    def start_application(self, region: str, app_id: str) -> dict:
        with self.lock:
            app = self._app(region, app_id)
            if app.state == "TERMINATED":
                raise validation(f"Application {app_id} is terminated")
            app.state, app.updated_at = "STARTED", _now()
        return {}

    def stop_application(self, region: str, app_id: str) -> dict:
        with self.lock:
            app = self._app(region, app_id)
            if any(r.app is app and r.state not in TERMINAL_RUN_STATES for r in self.runs.values()):
                raise validation(f"Application {app_id} has running jobs and cannot be stopped")
            if app.state == "TERMINATED":
                raise validation(f"Application {app_id} is terminated")
            app.state, app.updated_at = "STOPPED", _now()
        return {}

    def start_job_run(self, region: str, app_id: str, body: dict) -> dict:
        self._admit_start_job_run()
        for field in ("clientToken", "executionRoleArn"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise validation(f"{field} is required")
        if not re.fullmatch(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/.+", body["executionRoleArn"]):
            raise validation(f"executionRoleArn {body['executionRoleArn']} is not a valid role ARN")
        role_account = body["executionRoleArn"].split(":")[4]
        if role_account != DEFAULT_ACCOUNT_ID:
            # The caller may pass only roles of its own account (iam:PassRole), as with moto before.
            raise ApiError(403, "AccessDeniedException", f"User: arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/local/emulator "
                           f"is not authorized to perform: iam:PassRole on resource: {body['executionRoleArn']}")
        spark = (body.get("jobDriver") or {}).get("sparkSubmit")
        if not isinstance(spark, dict) or not spark.get("entryPoint"):
            raise validation("jobDriver.sparkSubmit.entryPoint is required")
        name = body.get("name")
        if name is not None and not (isinstance(name, str) and 1 <= len(name) <= 256):
            raise validation("name must be 1-256 characters")
        mode = body.get("mode") or "BATCH"
        if mode not in ("BATCH", "STREAMING"):
            raise constraint(mode, "mode", "Member must satisfy enum value set: [BATCH, STREAMING]")
        _check_retry_policy(body.get("retryPolicy"))
        _check_execution_iam_policy(body.get("executionIamPolicy"))
        with self.lock:
            app = self._app(region, app_id)
            _check_execution_timeout(body.get("executionTimeoutMinutes"), mode, app.release_label)
            for run in self.runs.values():
                if run.app is app and run.client_token == body["clientToken"]:
                    return {"applicationId": app.id, "jobRunId": run.id, "arn": run.arn}
            if app.state == "TERMINATED":
                raise validation(f"Application {app_id} is terminated")
            if app.state != "STARTED":
                if not app.auto_start.get("enabled", True):
                    raise validation(f"Application {app_id} is not started and auto-start is disabled")
                app.state, app.updated_at = "STARTED", _now()
            run = JobRun(app, body)
            self.runs[run.id] = run
        self._start_clock()
        self.log(f"job run {run.id} ({run.name}) SUBMITTED in {app.id}")
        self.publish(self.state_change_event(run, None))
        if self.runner is None and app.scheduler is not None:
            self._admit(run)
        if self.runner is not None:
            thread = threading.Thread(target=self.runner.run, args=(self, run), name=f"run-{run.id}", daemon=True)
            with self.lock:
                self.run_threads = [t for t in self.run_threads if t.is_alive()] + [thread]
            thread.start()
        return {"applicationId": app.id, "jobRunId": run.id, "arn": run.arn}

    def get_job_run(self, region: str, app_id: str, run_id: str, query: dict[str, list[str]] | None = None) -> dict:
        """GetJobRun; ``?attempt=n`` shows that attempt ("defaults to the attempt of the latest job")."""
        attempt = _int_query(query or {}, "attempt", minimum=1)
        with self.lock:
            return {"jobRun": self._run(region, app_id, run_id).full(attempt)}

    def list_job_run_attempts(self, region: str, app_id: str, run_id: str, query: dict[str, list[str]]) -> dict:
        """ListJobRunAttempts: every attempt of the run, the first first, as JobRunAttemptSummary
        (a run that was never retried has its one attempt); paginated like ListJobRuns."""
        with self.lock:
            run = self._run(region, app_id, run_id)
            items = [run.attempt_summary(a) for a in run.attempts]
        page, token = _paginate(items, query)
        out: dict = {"jobRunAttempts": page}
        if token:
            out["nextToken"] = token
        return out

    def get_dashboard_for_job_run(self, region: str, app_id: str, run_id: str, query: dict[str, list[str]] | None = None) -> dict:
        """GetDashboardForJobRun: the live Spark UI of the run's running attempt (``?attempt=n``: that
        one), as served by its local spark-submit; see "The Spark UI" above."""
        attempt = _int_query(query or {}, "attempt", minimum=1)
        deadline = time.monotonic() + SPARK_UI_WAIT
        while True:
            with self.lock:
                run = self._run(region, app_id, run_id)
                view = run.attempt_view(attempt)
                state, log_path, process = view.state, run.ui_log, run.process
                given, has_run = run.dashboard_urls.get(view.number), view.started_at is not None
            label = f"job run {run_id}" + (f" attempt {view.number}" if attempt is not None else "")
            if self.runner is None:
                if given is None:
                    raise validation(f"{label} has no Spark UI: the emulator runs nothing in manual mode")
                if not has_run:
                    raise validation(f"{label} is {state}: its Spark UI starts once it is RUNNING")
                return {"url": given}
            if view is not run.current or state in TERMINAL_RUN_STATES or state == "CANCELLING":
                raise validation(f"{label} has ended ({state}): the emulator keeps no Spark History Server, so its local "
                                 "Spark UI ended with its spark-submit")
            if state != "RUNNING":
                raise validation(f"{label} is {state}: its Spark UI starts once it is RUNNING")
            port = spark_ui_port(log_path)
            # Once the UI listens, Spark answers "Spark is starting up" until its context is ready.
            if port is not None and (spark_ui_ready(port) or time.monotonic() > deadline):
                return {"url": f"http://{HOST}:{port}/"}
            if process is not None and process.poll() is not None:
                raise validation(f"{label} has no Spark UI: its spark-submit ended without one")
            if time.monotonic() > deadline:
                raise validation(f"{label} has no Spark UI after {SPARK_UI_WAIT:g} s: its Spark did not start one "
                                 "(spark.ui.enabled=false in its conf, or it is still starting)")
            time.sleep(0.2)

    def list_job_runs(self, region: str, app_id: str, query: dict[str, list[str]]) -> dict:
        states = query.get("states") or []
        for state in states:
            if state not in JOB_RUN_STATES:
                raise validation(f"1 validation error detected: Value '{state}' at 'states' failed to satisfy constraint")
        try:
            after = _parse_time(query["createdAtAfter"][0]) if "createdAtAfter" in query else None
            before = _parse_time(query["createdAtBefore"][0]) if "createdAtBefore" in query else None
        except ValueError as exc:
            raise validation(f"bad timestamp: {exc}") from exc
        mode = (query.get("mode") or [None])[0]
        with self.lock:
            app = self._app(region, app_id)
            runs = sorted((r for r in self.runs.values() if r.app is app), key=lambda r: r.created_at, reverse=True)
            matching = [
                r for r in runs
                if (not states or r.state in states)
                and (after is None or r.created_at >= after)
                and (before is None or r.created_at <= before)
                and (mode is None or r.mode == mode)
            ]
            page, token = _paginate(matching, query)
            # Only the page is summarized: a retry of a burst pages through thousands of runs.
            out: dict = {"jobRuns": [r.summary() for r in page]}
        if token:
            out["nextToken"] = token
        return out

    def cancel_job_run(self, region: str, app_id: str, run_id: str, query: dict[str, list[str]] | None = None) -> dict:
        """CancelJobRun, with ``?shutdownGracePeriodInSeconds=``: 0 (the default: "Immediate
        termination") or 15 to 1800 (the User Guide's "job run cancellation with grace period").
        Execute mode: SIGTERM to the spark-submit process group, SIGKILL once the grace period (on
        the scaled clock) is over if it is still alive; the run is CANCELLING until the process is
        gone, then CANCELLED. Without a grace period the emulator stops the process as it always
        has: SIGTERM, then SIGKILL if it is alive after up to 5 s. Manual mode: nothing runs, so
        the run is CANCELLED at once whatever the grace period. No release check (the page says
        emr-7.9.0 and later; nothing shows the API refusing an older release)."""
        grace = _int_query(query or {}, "shutdownGracePeriodInSeconds")
        if grace is not None and grace != 0 and not 15 <= grace <= 1800:
            raise constraint(grace, "shutdownGracePeriodInSeconds", "Member must be 0 or between 15 and 1800")
        with self.lock:
            run = self._run(region, app_id, run_id)
            if run.state in TERMINAL_RUN_STATES:
                raise validation(f"Job run {run_id} is in a terminal state {run.state} and cannot be cancelled")
            already = run.cancel_requested.is_set()
            run.cancel_requested.set()
            self.changed.notify_all()
        if not already:
            if self.runner is None:
                self.set_state(run, "CANCELLING")
                self.set_state(run, "CANCELLED", run.cancel_details, only_from=("CANCELLING",))
            else:
                self.set_state(run, "CANCELLING")
                self.runner.cancel(run, self.seconds(grace) if grace else None)
        return {"applicationId": app_id, "jobRunId": run_id}

    # ---- admin

    def _admin_run(self, body: Any, fields: set[str]) -> JobRun:
        """The run an admin body names (``applicationId``, ``jobRunId``, ``region``?,
        ``accountId``?), after checking the body has only those and ``fields``: ValueError/TypeError
        (400) for a bad body, ApiError (404) for an unknown run."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        unknown = sorted(set(body) - fields - {"applicationId", "jobRunId", "region", "accountId"})
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        app_id = _field(body, "applicationId", str, required=True)
        run_id = _field(body, "jobRunId", str, required=True)
        region = _field(body, "region", str, DEFAULT_REGION) or DEFAULT_REGION
        account = _field(body, "accountId", str, DEFAULT_ACCOUNT_ID) or DEFAULT_ACCOUNT_ID
        if not (len(account) == 12 and account.isdigit()):
            raise ValueError("accountId must be 12 digits")
        try:
            with self.lock:
                run = self._run(region, app_id, run_id)
                if run.app.account != account:
                    raise not_found(f"application {app_id} not found in account {account}")
        except ApiError as exc:
            raise not_found(f"{exc.message} (account {account}, region {region})") from exc
        return run

    def admin_set_state(self, body: Any) -> tuple[int, dict]:
        run = self._admin_run(body, {"state", "stateDetails", "attempt", "allowUnknownState"})
        state = _field(body, "state", str, required=True)
        details = _field(body, "stateDetails", str)
        attempt = _field(body, "attempt", int)
        allow_unknown = _field(body, "allowUnknownState", bool, False)
        if attempt is not None and attempt < 1:
            raise ValueError("attempt must be at least 1")
        if state not in JOB_RUN_STATES and not allow_unknown:
            raise ValueError(f"state {state!r} is not one of {', '.join(JOB_RUN_STATES)} (set allowUnknownState to send it anyway)")
        # A FAILED attempt of a run whose retry policy allows another one is retried, as EMR would
        # (naming an attempt is the test saying which attempt it is: no retry then).
        if not (state == "FAILED" and attempt is None and self.retry(run, details)):
            self.set_state(run, state, details, attempt)
        with self.lock:
            return 200, run.full()

    FIGURE_FIELDS = ("resourceUtilizationForInterval", "billedResourceUtilizationForInterval", "totalResourceUtilization",
                     "totalBilledResourceUtilization")

    def admin_utilization_event(self, body: Any) -> tuple[int, dict]:
        """Publishes a utilization update for the run now (see the module docstring)."""
        run = self._admin_run(body, {"final", "calculatedFrom", "calculatedTo", *self.FIGURE_FIELDS})
        final = _field(body, "final", bool, False)
        times = {}
        for name in ("calculatedFrom", "calculatedTo"):
            value = _field(body, name, (str, int, float))
            if isinstance(value, bool):
                raise TypeError(f"{name} must be a timestamp, not bool")
            times[name] = None if value is None else _parse_time(str(value))
        figures = {name: body[name] for name in self.FIGURE_FIELDS if name in body}
        with self.lock:
            event = self.utilization_event(run, final, calculated_to=times["calculatedTo"], calculated_from=times["calculatedFrom"],
                                           figures=figures)
            if final:
                run.final_sent = True
                self.final_pending.discard(run)
        self.publish(event)
        return 200, {"event": event}

    def admin_billing(self, body: Any) -> tuple[int, dict]:
        """Holds or releases the run's billed figures (see the module docstring)."""
        run = self._admin_run(body, {"pending", "publishFinal"})
        pending = _field(body, "pending", bool, required=True)
        publish_final = _field(body, "publishFinal", bool, True)
        if pending and "publishFinal" in body:
            raise ValueError("publishFinal goes with pending false only")
        event = None
        with self.lock:
            run.billing_hold = pending
            if not pending and not publish_final:
                run.final_sent = True  # the final event is lost
                self.final_pending.discard(run)
            elif run.state in TERMINAL_RUN_STATES:
                event = self._final_event_if_due(run, _now())
            out = run.full()
        if event is not None:
            self.publish(event)
        elif run in self.final_pending:
            self._start_clock()
        return 200, out

    def admin_dashboard(self, body: Any) -> tuple[int, dict]:
        """Gives an attempt of a run the Spark UI link GetDashboardForJobRun answers in manual mode
        (see the module docstring)."""
        if self.runner is not None:
            raise ValueError("execute mode: each run serves its own Spark UI")
        run = self._admin_run(body, {"attempt", "url"})
        number = _field(body, "attempt", int)
        url = _field(body, "url", str, required=True)
        with self.lock:
            attempt = run.attempt_view(number)
            run.dashboard_urls[attempt.number] = url
        return 200, {"applicationId": run.app.id, "jobRunId": run.id, "attempt": attempt.number, "url": url}

    def seed_job_run(self, application_id: str, run_id: str, name: str | None, state: str, state_details: str | None = None,
                     attempt: int | None = None, application_name: str = "modelop-default",
                     region: str = DEFAULT_REGION) -> JobRun:
        """Puts a run with the given ids in place, as if it had been started earlier: a replayed
        event (``tests/replay.py``) names fixed ids. The application is created (STARTED) if missing;
        a run with that id is replaced. No state-change event is published."""
        with self.lock:
            app = self._apps(region).get(application_id)
            if app is None:
                app = Application(region, DEFAULT_ACCOUNT_ID, {"name": application_name, "releaseLabel": "emr-7.5.0",
                                                               "type": "SPARK", "clientToken": str(uuid.uuid4())})
                app.id, app.state = application_id, "STARTED"
                self._apps(region)[app.id] = app
            run = JobRun(app, {"name": name, "clientToken": str(uuid.uuid4()),
                               "executionRoleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/modelop-default-job",
                               "jobDriver": {"sparkSubmit": {"entryPoint": "s3://seeded/ModelOpPySparkDriver.py"}}})
            run.id = run_id
            self.runs[run.id] = run
            if attempt is not None:
                run.attempt_visible = True
                if attempt != run.current.number:
                    self._new_attempt(run, attempt, state, run.created_at)
            current, now = run.current, _now()
            if state != run.state_times[-1][0]:
                run.state_times.append((state, now))
            current.state, current.state_details = state, state_details
            run.updated_at = current.updated_at = now
            current.started_at = now if state not in ("SUBMITTED", "PENDING", "QUEUED", "SCHEDULED") else None
            current.ended_at = now if state in TERMINAL_RUN_STATES else None
        return run

    def reset(self) -> None:
        """Forgets every application and run (their spark-submit processes are stopped first)."""
        self.stop_all()
        with self.lock:
            self.apps.clear()
            self.runs.clear()
            self.final_pending.clear()

    def admin_process(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        run_id = (query.get("jobRunId") or [""])[0]
        with self.lock:
            run = self.runs.get(run_id)
        if run is None:
            return 404, {"message": f"job run {run_id} not found"}
        proc = run.process
        return 200, {
            "jobRunId": run_id, "pid": proc.pid if proc else None,
            "alive": bool(proc and proc.poll() is None and _group_alive(proc.pid)),
            "exitCode": proc.poll() if proc else None,
        }

    def stop_all(self) -> None:
        self.stopping.set()
        with self.lock:
            self.changed.notify_all()
            clock = self.clock
        if clock is not None:
            clock.join(5)
        if self.runner is not None:
            with self.lock:
                runs = list(self.runs.values())
            for run in runs:
                self.runner.kill(run)
            with self.lock:
                threads = list(self.run_threads)
            for thread in threads:
                thread.join(RUN_THREAD_STOP_SECONDS)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _field(body: dict, name: str, kinds: Any, default: Any = None, required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return default
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is int):
        raise TypeError(f"{name} must be {getattr(kinds, '__name__', kinds)}, not {type(value).__name__}")
    if isinstance(value, str) and required and not value:
        raise ValueError(f"{name} must not be empty")
    return value


def constraint(value: Any, path: str, rule: str) -> ApiError:
    """A field outside its model's constraints, worded as AWS's request validation words it."""
    return validation(f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: {rule}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_query(query: dict[str, list[str]], name: str, minimum: int | None = None) -> int | None:
    raw = (query.get(name) or [None])[0]
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise constraint(raw, name, "Member must be an integer") from exc
    if minimum is not None and value < minimum:
        raise constraint(value, name, f"Member must have value greater than or equal to {minimum}")
    return value


MONITORING_MEMBERS = ("s3MonitoringConfiguration", "managedPersistenceMonitoringConfiguration", "cloudWatchLoggingConfiguration",
                      "prometheusMonitoringConfiguration")


def _check_monitoring_configuration(config: Any) -> None:
    """CreateApplication's monitoringConfiguration against botocore's MonitoringConfiguration: its four
    members, each an object; ManagedPersistenceMonitoringConfiguration's ``enabled`` a boolean (the
    members' own fields are not checked further)."""
    if not isinstance(config, dict) or set(config) - set(MONITORING_MEMBERS) or not all(isinstance(v, dict) for v in config.values()):
        raise validation(f"monitoringConfiguration must be an object of {', '.join(MONITORING_MEMBERS)}, each an object")
    enabled = config.get("managedPersistenceMonitoringConfiguration", {}).get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise validation("monitoringConfiguration.managedPersistenceMonitoringConfiguration.enabled must be a boolean")


def _check_application_config(body: dict) -> None:
    """CreateApplication's architecture, maximumCapacity, networkConfiguration, monitoringConfiguration
    and schedulerConfiguration, against botocore's shapes (Architecture enum; MaximumAllowedResources
    cpu/memory required, CpuSize/MemorySize/DiskSize patterns; SubnetIds <= 16, SecurityGroupIds
    <= 5) and SchedulerConfiguration's documented ranges (maxConcurrentRuns 1-1000,
    queueTimeoutMinutes 15-720). No release check: the docs say "Supported with release labels
    emr-7.0.0 and above", but nothing shows CreateApplication rejecting an older one."""
    architecture = body.get("architecture")
    if architecture is not None and architecture not in ("ARM64", "X86_64"):
        raise constraint(architecture, "architecture", "Member must satisfy enum value set: [ARM64, X86_64]")
    capacity = body.get("maximumCapacity")
    if capacity is not None:
        if not isinstance(capacity, dict):
            raise validation("maximumCapacity must be an object")
        for key, pattern, required in (("cpu", r"[1-9][0-9]*(\s)?(vCPU|vcpu|VCPU)?", True),
                                       ("memory", r"[1-9][0-9]*(\s)?(GB|gb|gB|Gb)?", True),
                                       ("disk", r"[1-9][0-9]*(\s)?(GB|gb|gB|Gb)", False)):
            value = capacity.get(key)
            if value is None and not required:
                continue
            if not isinstance(value, str) or not 1 <= len(value) <= 15 or not re.fullmatch(pattern, value):
                raise constraint(value, f"maximumCapacity.{key}", f"Member must satisfy regular expression pattern: {pattern}")
    network = body.get("networkConfiguration")
    if network is not None:
        if not isinstance(network, dict):
            raise validation("networkConfiguration must be an object")
        for key, most in (("subnetIds", 16), ("securityGroupIds", 5)):
            ids = network.get(key) or []
            if not isinstance(ids, list) or len(ids) > most:
                raise constraint(ids, f"networkConfiguration.{key}", f"Member must have length less than or equal to {most}")
            for value in ids:
                if not isinstance(value, str) or not 1 <= len(value) <= 32 or not re.fullmatch(r"[-0-9a-zA-Z]+.*", value):
                    raise constraint(value, f"networkConfiguration.{key}", "Member must satisfy regular expression pattern: [-0-9a-zA-Z]+.*")
    monitoring = body.get("monitoringConfiguration")
    if monitoring is not None:
        _check_monitoring_configuration(monitoring)
    cost_allocation = body.get("jobLevelCostAllocationConfiguration")
    if cost_allocation is not None and (not isinstance(cost_allocation, dict) or set(cost_allocation) - {"enabled"}
                                        or not isinstance(cost_allocation.get("enabled", False), bool)):
        raise validation("jobLevelCostAllocationConfiguration must be {\"enabled\": boolean}")
    scheduler = body.get("schedulerConfiguration")
    if scheduler is not None:
        if not isinstance(scheduler, dict):
            raise validation("schedulerConfiguration must be an object")
        for key, low, high in (("maxConcurrentRuns", 1, 1000), ("queueTimeoutMinutes", 15, 720)):
            value = scheduler.get(key)
            if value is not None and (not _is_int(value) or not low <= value <= high):
                raise constraint(value, f"schedulerConfiguration.{key}", f"Member must have value between {low} and {high}")


def _check_execution_timeout(minutes: Any, mode: str, release_label: str) -> None:
    """executionTimeoutMinutes (botocore: Duration, 0 to 1000000). 0 means the run never times out (User Guide,
    "Other considerations"). From emr-7.11.0 a BATCH run's maximum is 10080 minutes (7 days) and 0 is refused (EMR
    Serverless 7.11.0 release notes; botocore's StartJobRun docs); the messages are ASSUMED. 1 to 4 are accepted:
    moto refuses them ("RunTimeout must be at least 5 minutes."), which no AWS document says."""
    if minutes is None:
        return
    if not _is_int(minutes) or not 0 <= minutes <= 1_000_000:
        raise constraint(minutes, "executionTimeoutMinutes", "Member must have value between 0 and 1000000")
    release = re.match(r"emr-(\d+)\.(\d+)\.(\d+)", release_label)
    if mode == "BATCH" and release and tuple(map(int, release.groups())) >= (7, 11, 0):
        if minutes == 0:
            raise validation(f"executionTimeoutMinutes 0 (no timeout) is not supported for BATCH mode job runs from emr-7.11.0 ({release_label})")
        if minutes > 10_080:
            raise validation(f"executionTimeoutMinutes must be at most 10080 (7 days) for BATCH mode job runs from emr-7.11.0 ({release_label})")


def _check_retry_policy(policy: Any) -> None:
    """RetryPolicy (botocore: maxAttempts, maxFailedAttemptsPerHour, both integers >= 1). The User
    Guide's "Job resiliency" page: maxAttempts (BATCH) accepts 1 to 10, default 1 (no retry);
    maxFailedAttemptsPerHour (STREAMING) 1 to 10. No release check: the page says retries come with
    emr-7.1.0 and later, but nothing shows StartJobRun rejecting a policy on an older release."""
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise validation("retryPolicy must be an object")
    unknown = sorted(set(policy) - {"maxAttempts", "maxFailedAttemptsPerHour"})
    if unknown:
        raise validation(f"retryPolicy: unknown field {unknown[0]}")
    for key in ("maxAttempts", "maxFailedAttemptsPerHour"):
        value = policy.get(key)
        if value is None:
            continue
        if not _is_int(value) or not 1 <= value <= 10:
            raise constraint(value, f"retryPolicy.{key}", "Member must have value between 1 and 10")


def _check_execution_iam_policy(policy: Any) -> None:
    """StartJobRun ``executionIamPolicy`` (API Reference, ``JobRunExecutionIamPolicy``): ``policy``
    1-2,048 characters matching ``([ -ÿ]+)``, and JSON (ASSUMED: EMR's own message for a policy
    that is not JSON is not public; IAM refuses one as MalformedPolicyDocument); ``policyArns`` at
    most 10 strings of 20-2,048 characters."""
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise validation("executionIamPolicy must be an object")
    text = policy.get("policy")
    if text is not None:
        if not isinstance(text, str) or not 1 <= len(text) <= 2048:
            raise constraint(text if isinstance(text, str) and len(text) < 100 else "...", "executionIamPolicy.policy",
                             "Member must have length less than or equal to 2048")
        if not re.fullmatch(r"[ -\u00ff]+", text):
            raise constraint("...", "executionIamPolicy.policy", "Member must satisfy regular expression pattern: ([ -\u00ff]+)")
        try:
            json.loads(text)
        except ValueError as exc:
            raise validation(f"executionIamPolicy.policy is not a valid policy document: {exc}") from None
    arns = policy.get("policyArns")
    if arns is not None:
        if not isinstance(arns, list) or len(arns) > 10:
            raise constraint(str(arns)[:100], "executionIamPolicy.policyArns", "Member must have length less than or equal to 10")
        for arn in arns:
            if not isinstance(arn, str) or not 20 <= len(arn) <= 2048:
                raise constraint(str(arn), "executionIamPolicy.policyArns.member", "Member must have length between 20 and 2048")


def _paginate(items: list, query: dict[str, list[str]]) -> tuple[list, str | None]:
    try:
        size = int((query.get("maxResults") or [MAX_RESULTS])[0])
    except ValueError as exc:
        raise validation("maxResults must be a number") from exc
    if not 1 <= size <= MAX_RESULTS:
        raise validation(f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_RESULTS}")
    start = 0
    if query.get("nextToken"):
        try:
            start = int(json.loads(base64.urlsafe_b64decode(query["nextToken"][0].encode()))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise validation("Invalid nextToken") from exc
    end = start + size
    token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(items) else None
    return items[start:end], token


# ------------------------------------------------------------------------------------------------
# Execution on local Spark


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    """An HTTP request's body: by Content-Length, or HTTP/1.1 chunks (botocore streams uploads so,
    and the Lambda runtime client its responses); shared with ``lambda_runtime_api.py``."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while request.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length > 0 else b""


class RunAccess:
    """A run's S3 access as its session policy allows it (everything, for a run without one)."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        self.policy = (run.execution_iam_policy or {}).get("policy")
        self.partition = run.execution_role.split(":")[1] if run.execution_role.count(":") >= 5 else "aws"

    @property
    def who(self) -> str:
        role = self.run.execution_role.rsplit("/", 1)[-1]
        return f"arn:{self.partition}:sts::{self.run.app.account}:assumed-role/{role}/{self.run.id}"

    def check(self, action: str, bucket: str, key: str | None = None, prefix: str | None = None) -> str | None:
        """``None`` when allowed, else AWS's denial message."""
        if self.policy is None:
            return None
        import session_policy as P

        resource = P.s3_arn(bucket, key, self.partition)
        context = P.request_context(prefix) if action == "s3:ListBucket" else None
        if P.allows(self.policy, action, resource, context):
            return None
        return P.denial(action, resource, self.who)

    def require(self, action: str, bucket: str, key: str | None = None, prefix: str | None = None) -> None:
        denied = self.check(action, bucket, key, prefix)
        if denied:
            raise PermissionError(f"AccessDenied: {denied}")


class S3PolicyGateway:
    """A path-style S3 endpoint on loopback in front of moto that lets a run's own S3 calls through
    only as its session policy allows: a request signed with a run id as access key is checked
    against that run's policy (GetObject/HeadObject, ListObjects(V2) with its ``prefix``,
    PutObject and multipart uploads, CopyObject (both ends), DeleteObject); a denied one gets S3's
    403 ``AccessDenied``. Requests of unknown keys (not a run) and other operations are refused."""

    _CREDENTIAL = re.compile(r"Credential=([^/]+)/")

    def __init__(self, aws_endpoint: str, runs: dict[str, JobRun]) -> None:
        self.aws_endpoint = aws_endpoint.rstrip("/")
        self.runs = runs
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                gateway.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="s3-policy-gateway", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _actions(method: str, bucket: str, key: str, query: dict[str, list[str]], headers: Any) -> list[tuple[str, str, str | None, str | None]]:
        """The IAM actions an S3 request needs: ``(action, bucket, key, list prefix)``."""
        if not bucket:
            return [("s3:ListAllMyBuckets", "*", None, None)]
        if not key:
            if method == "GET" and not (set(query) - {"list-type", "prefix", "delimiter", "max-keys", "continuation-token",
                                                     "start-after", "marker", "encoding-type", "fetch-owner"}):
                return [("s3:ListBucket", bucket, None, (query.get("prefix") or [None])[0])]
            return [("s3:UnsupportedBucketOperation", bucket, None, None)]
        if method in ("GET", "HEAD"):
            return [("s3:GetObject", bucket, key, None)]
        if method in ("PUT", "POST"):
            needed = [("s3:PutObject", bucket, key, None)]
            source = headers.get("x-amz-copy-source")
            if source:
                src_bucket, _, src_key = urllib.parse.unquote(source.split("?")[0]).lstrip("/").partition("/")
                needed.append(("s3:GetObject", src_bucket, src_key, None))
            return needed
        if method == "DELETE":
            return [("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject", bucket, key, None)]
        return [("s3:UnsupportedOperation", bucket, key, None)]

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        bucket, _, key = urllib.parse.unquote(parsed.path).lstrip("/").partition("/")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        match = self._CREDENTIAL.search(request.headers.get("Authorization", ""))
        run = self.runs.get(match.group(1)) if match else None
        body = read_body(request) or None
        if run is None:
            return self._deny(request, "The AWS access key Id you provided does not exist in our records (not a job run).", "InvalidAccessKeyId")
        access = RunAccess(run)
        for action, b, k, prefix in self._actions(request.command, bucket, key, query, request.headers):
            denied = access.check(action, b, k, prefix) if not action.startswith("s3:Unsupported") else f"{action} is not emulated"
            if denied:
                return self._deny(request, denied)
        # http.client, not urllib: urllib would add a form Content-Type that makes moto read the body as a form.
        skipped = ("host", "content-length", "transfer-encoding", "connection", "expect")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skipped}
        target = urllib.parse.urlsplit(self.aws_endpoint)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            connection.request(request.command, request.path, body=body, headers=headers)
            answer = connection.getresponse()
            status, headers, payload = answer.status, answer.headers, answer.read()
        finally:
            connection.close()
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    @staticmethod
    def _deny(request: BaseHTTPRequestHandler, message: str, code: str = "AccessDenied") -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{_xml_text(message)}</Message><RequestId>{uuid.uuid4().hex[:16]}</RequestId></Error>").encode()
        request.send_response(403)
        request.send_header("Content-Type", "application/xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def model_python_env(requirements: str, base_python: str, log: Callable[[str], None], envs_dir: str | None = None) -> str:
    """The Python of a virtualenv with ``requirements`` installed (pip, from the index pip is
    configured with), whose packages come before ``base_python``'s own (pyspark, numpy: a
    ``.pth`` file adds them after the virtualenv's). One virtualenv per requirements content and
    base Python, under ``envs_dir`` (``$EMR_SERVERLESS_PYTHON_ENVS``, else ``target/model-python``),
    made once (a lock file serializes emulators) and reused. ``RuntimeError`` when pip fails,
    with the end of its log."""
    import fcntl
    import hashlib

    requirements = os.path.abspath(requirements)
    with open(requirements, "rb") as f:
        content = f.read()
    key = hashlib.sha256(content + b"\0" + os.path.realpath(base_python).encode()).hexdigest()[:16]
    envs_dir = envs_dir or os.environ.get(PYTHON_ENVS_ENV) or PYTHON_ENVS_DIR
    venv = os.path.join(envs_dir, key)
    python = os.path.join(venv, "bin", "python")
    done = os.path.join(venv, ".complete")
    os.makedirs(envs_dir, exist_ok=True)
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            log(f"model Python: {venv} ({requirements}, made before)")
            return python
        shutil.rmtree(venv, ignore_errors=True)
        pip_log = venv + ".pip.log"
        log(f"model Python: installing {requirements} into {venv} (pip's log: {pip_log}) ...")

        def run(*command: str) -> str:
            with open(pip_log, "a") as out:
                out.write(f"$ {shlex.join(command)}\n")
                out.flush()
                done_ = subprocess.run(command, stdout=subprocess.PIPE, stderr=out, text=True, cwd=os.path.dirname(requirements))
                out.write(done_.stdout)
            if done_.returncode != 0:
                with open(pip_log, errors="replace") as f:
                    tail = f.read()[-2000:]
                raise RuntimeError(f"installing the model's Python requirements {requirements} failed "
                                   f"(exit {done_.returncode}; {pip_log}):\n{tail}")
            return done_.stdout

        run(base_python, "-m", "venv", venv)
        base_sites = run(base_python, "-c", "import site, sys; print('\\n'.join(site.getsitepackages()))").split()
        own_site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
        with open(os.path.join(own_site, "zz-emr-serverless-base.pth"), "w") as f:
            f.write("".join(site + "\n" for site in base_sites))
        run(python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", "-r", requirements)
        open(done, "w").close()
        log(f"model Python: {venv} ready")
        return python


# How long GetDashboardForJobRun waits for a RUNNING attempt's Spark UI to come up (the JVM starts after RUNNING).
SPARK_UI_WAIT = 45.0
# Spark's line once its UI listens (INFO, on the driver's stderr): Spark 3.5's, or older releases' "Bound SparkUI".
_SPARK_UI_BOUND = re.compile(r"Successfully started service 'SparkUI' on port (\d+)\b"
                             r"|Bound SparkUI to \S+, and started at https?://\S+?:(\d+)\b")


def free_port() -> int:
    """A TCP port free on loopback now (Spark moves to the next one if it is taken by the time it binds)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def spark_ui_ready(port: int) -> bool:
    """Whether the Spark UI on ``port`` serves its application (its REST API answers JSON)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/applications", timeout=2) as answer:
            return answer.headers.get_content_type() == "application/json"
    except (OSError, ValueError):
        return False


def spark_ui_port(stderr_path: str | None) -> int | None:
    """The port the Spark UI of a driver log listens on, once it says so."""
    if not stderr_path:
        return None
    try:
        with open(stderr_path, errors="replace") as f:
            found = _SPARK_UI_BOUND.search(f.read(2_000_000))
    except OSError:
        return None
    return int(found.group(1) or found.group(2)) if found else None


class SparkRunner:
    """Runs a job run with local spark-submit, with the run's S3 files mirrored to a work dir.

    1. Fetch the entry point, ``--py-files`` and ``--files`` from S3 (moto) into ``<run>/staged/``.
    2. Mirror every ``s3://`` object the job metadata names (inputs and model assets: objects or
       whole prefixes) to ``<run>/s3/<bucket>/<key>`` and rewrite the metadata's ``fileUrl``s (in
       the copy shipped with ``--files``) and the ``s3://`` entry point arguments to those local
       paths. The driver and the model are unchanged; they just see local paths.
    3. ``spark-submit --master local[*]`` with the run's ``--conf``s (minus EMR-only ones), in its
       own process group; driver stdout/stderr go to files.
    4. Upload the driver's stdout/stderr to CloudWatch Logs where EMR Serverless puts them, and
       sync what Spark wrote under the output and results locations back to S3 (no ``.crc``),
       whether the attempt succeeded or failed (not when it was cancelled).

    Each S3 access of steps 1, 2 and 4 is checked against the run's session policy
    (:class:`RunAccess`), and the driver's own S3 calls go through :class:`S3PolicyGateway`.
    """

    def __init__(self, aws_endpoint: str, work_dir: str, max_concurrent: int = 2, spark_submit: str | None = None,
                 python: str | None = None, region: str = DEFAULT_REGION) -> None:
        import boto3
        from botocore.config import Config

        kwargs = dict(endpoint_url=aws_endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kwargs)
        self.logs = boto3.client("logs", **kwargs)
        self.work_dir = work_dir
        self.slots = threading.Semaphore(max_concurrent)
        self.base_python = python or sys.executable
        self.python = self.base_python
        # A requirements file for the model's own packages (see PYTHON_REQUIREMENTS_ENV): the
        # virtualenv is made on the first run that needs it (python_for_runs).
        self.python_requirements = os.environ.get(PYTHON_REQUIREMENTS_ENV) or None
        self._python_lock = threading.Lock()
        self._python_ready = self.python_requirements is None
        self.spark_submit = spark_submit or os.path.join(os.path.dirname(self.base_python), "spark-submit")
        self.region = region
        # The runs whose drivers may call S3 through the gateway, by run id (their access key).
        self.live_runs: dict[str, JobRun] = {}
        self.gateway = S3PolicyGateway(aws_endpoint, self.live_runs)

    # -- S3 helpers

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urllib.parse.urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def _local(self, root: str, uri: str) -> str:
        bucket, key = self._split(uri)
        return os.path.join(root, "s3", bucket, key)

    def _download(self, uri: str, target: str, access: RunAccess) -> int:
        """An object, or every object under a prefix (a key ending in '/' or with no object), each
        access allowed by the run's policy (else ``PermissionError``, with AWS's denial)."""
        bucket, key = self._split(uri)
        if key and not key.endswith("/"):
            access.require("s3:GetObject", bucket, key)
            try:
                self.s3.head_object(Bucket=bucket, Key=key)
            except Exception as exc:  # noqa: BLE001 - maybe a prefix
                if "404" not in str(exc) and "Not Found" not in str(exc):
                    raise
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.s3.download_file(bucket, key, target)
                return 1
        prefix = key if key.endswith("/") or not key else key + "/"
        access.require("s3:ListBucket", bucket, prefix=prefix)
        count = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                access.require("s3:GetObject", bucket, obj["Key"])
                path = os.path.join(target, obj["Key"][len(prefix):])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self.s3.download_file(bucket, obj["Key"], path)
                count += 1
        if count == 0:
            raise FileNotFoundError(f"{uri}: no such object or prefix")
        return count

    def _upload_tree(self, local: str, uri: str, access: RunAccess) -> list[str]:
        bucket, key = self._split(uri)
        uploaded = []
        if os.path.isfile(local):
            access.require("s3:PutObject", bucket, key)
            self.s3.upload_file(local, bucket, key)
            return [uri]
        for directory, _dirs, files in os.walk(local):
            for name in sorted(files):
                if name.endswith(".crc"):
                    continue  # local Hadoop checksums; S3 has none
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, local).replace(os.sep, "/")
                target = (key.rstrip("/") + "/" + rel) if key else rel
                access.require("s3:PutObject", bucket, target)
                self.s3.upload_file(path, bucket, target)
                uploaded.append(f"s3://{bucket}/{target}")
        return uploaded

    # -- the model's Python

    def python_for_runs(self, emr: EmrServerless) -> str:
        """The Python the runs' driver and workers use: the emulator's own, or the virtualenv of
        ``python_requirements`` (made once, then reused; ``RuntimeError`` if pip fails)."""
        with self._python_lock:
            if not self._python_ready:
                self.python = model_python_env(self.python_requirements, self.base_python, emr.log)
                self._python_ready = True
            return self.python

    @staticmethod
    def local_environment_notes(python: str, stdout_path: str, stderr_path: str) -> list[str]:
        """Lines that say a failure is the local environment's: a module the model imports that
        the local Spark's Python does not have (EMR's image and the job's packed environment are
        not here; see LOCAL_PACKAGES_HINT)."""
        modules: list[str] = []
        for path in (stderr_path, stdout_path):
            try:
                with open(path, errors="replace") as f:
                    text = f.read()[-200_000:]
            except OSError:
                continue
            for module in _NO_MODULE.findall(text):
                if module not in modules:
                    modules.append(module)
        return [f"emr-serverless emulator: this run used local Spark, whose Python ({python}) does not have module "
                f"'{module}'; {LOCAL_PACKAGES_HINT.format(env=PYTHON_REQUIREMENTS_ENV)}" for module in modules]

    @staticmethod
    def restore_s3_paths(text: str, root: str) -> str:
        """``text`` with the run's local mirror paths (``<root>/s3/<bucket>/<key>``, as a path or a
        ``file:`` URI) written as the ``s3://<bucket>/<key>`` they stand for: what the driver and
        Spark print on EMR, where they read S3 itself (``Path does not exist: s3://...``)."""
        base = os.path.join(root, "s3") + os.sep
        for local in ("file://" + base, "file:" + base, base):
            text = text.replace(local, "s3://")
        return text

    def _restore_s3_paths_in(self, path: str, root: str) -> None:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            return
        restored = self.restore_s3_paths(text, root)
        if restored != text:
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(restored)

    # -- the run

    def run(self, emr: EmrServerless, run: JobRun) -> None:
        """The run, attempt after attempt: a failed attempt is retried while the run's retry policy
        allows (:meth:`EmrServerless.retry`), each from the beginning in a fresh directory."""
        try:
            if run.app.scheduler is not None and not emr.wait_for_slot(run):
                if run.cancel_requested.is_set():
                    self._cancelled(emr, run)
                return
            while True:
                outcome, details = self._attempt(emr, run)
                if outcome == "cancelled":
                    return self._cancelled(emr, run)
                if outcome == "success":
                    emr.set_state(run, "SUCCESS")
                    return
                if not emr.retry(run, details):
                    if run.cancel_requested.is_set():
                        return self._cancelled(emr, run)
                    emr.set_state(run, "FAILED", details)
                    return
        except Exception:  # noqa: BLE001 - the emulator's own failure; the run must still end
            emr.log(f"job run {run.id}: {traceback.format_exc()}")
            if run.state not in TERMINAL_RUN_STATES:
                emr.set_state(run, "FAILED", "Job run could not start: internal error of the emulator")

    def attempt_root(self, run: JobRun, number: int) -> str:
        """Attempt 1 in ``<work>/<run>/`` (as before retries existed); attempt n in
        ``<work>/<run>/attempts/<n>/``."""
        root = os.path.join(self.work_dir, run.id)
        return root if number == 1 else os.path.join(root, "attempts", str(number))

    def _attempt(self, emr: EmrServerless, run: JobRun) -> tuple[str, str | None]:
        """One attempt: ``("success" | "failed" | "cancelled", stateDetails of a failure)``. The
        caller ends the run (or retries it)."""
        number = run.current.number
        root = self.attempt_root(run, number)
        stdout_path, stderr_path = os.path.join(root, "stdout"), os.path.join(root, "stderr")
        try:
            with self.slots:
                if run.cancel_requested.is_set() or emr.stopping.is_set():
                    return "cancelled", None
                os.makedirs(os.path.join(root, "staged"), exist_ok=True)
                command, outputs = self._prepare(emr, run, root)
                if run.cancel_requested.is_set():
                    return "cancelled", None
                if run.state != "SCHEDULED":  # a retry's attempt starts SCHEDULED
                    emr.set_state(run, "SCHEDULED")
                python = self.python_for_runs(emr)
                with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                    env = dict(os.environ, PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
                    # The Spark UI (GetDashboardForJobRun) on loopback only.
                    env["SPARK_LOCAL_IP"] = HOST
                    run.ui_log = stderr_path
                    env.pop("PYSPARK_GATEWAY_PORT", None)
                    # The run's credentials: its S3 calls are checked against its session policy.
                    env.update(AWS_ENDPOINT_URL_S3=self.gateway.endpoint, AWS_ACCESS_KEY_ID=run.id, AWS_SECRET_ACCESS_KEY="emulated",
                               AWS_DEFAULT_REGION=self.region, AWS_REGION=self.region)
                    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
                        env.pop(name, None)
                    self.live_runs[run.id] = run
                    with emr.lock:
                        if run.cancel_requested.is_set() or emr.stopping.is_set():
                            return "cancelled", None
                        run.process = subprocess.Popen(command, cwd=os.path.join(root, "staged"), stdout=out, stderr=err,
                                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
                    emr.log(f"job run {run.id}: attempt {number}: pid {run.process.pid}: {shlex.join(command)}")
                    emr.set_state(run, "RUNNING")
                    code = run.process.wait()
                # What the run printed names its S3 locations as on EMR, not the local mirror.
                for path in (stdout_path, stderr_path):
                    self._restore_s3_paths_in(path, root)
                if code != 0 and not run.cancel_requested.is_set():
                    notes = self.local_environment_notes(python, stdout_path, stderr_path)
                    if notes:
                        with open(stderr_path, "a", encoding="utf-8") as err:
                            err.write("".join(note + "\n" for note in notes))
                self._upload_logs(emr, run, number, stdout_path, stderr_path)
                if run.cancel_requested.is_set():
                    return "cancelled", None
                # On EMR the driver writes to S3 directly, so what a failed attempt wrote (the
                # driver's results/model-error.json, say) is there too.
                denied = None
                for local, uri in outputs:
                    if os.path.exists(local):
                        for directory, _dirs, names in os.walk(local) if os.path.isdir(local) else ():
                            if MODEL_ERROR_FILE_NAME in names:  # the driver's record of the model's exception
                                self._restore_s3_paths_in(os.path.join(directory, MODEL_ERROR_FILE_NAME), root)
                        try:
                            for written in self._upload_tree(local, uri, RunAccess(run)):
                                emr.log(f"job run {run.id}: attempt {number}: wrote {written}")
                        except PermissionError as exc:
                            # On EMR the write itself fails in the driver; here it is found on sync.
                            denied = str(exc)
                            with open(stderr_path, "a", encoding="utf-8") as err:
                                err.write(f"java.nio.file.AccessDeniedException: {uri}: {denied}\n")
                            self._upload_logs(emr, run, number, stdout_path, stderr_path)
                if denied and code == 0:
                    return "failed", self._failure_details(1, stderr_path)
                if code != 0:
                    return "failed", self._failure_details(code, stderr_path)
                return "success", None
        except Exception as exc:  # noqa: BLE001 - a run that cannot even start fails, as on EMR
            emr.log(f"job run {run.id}: {traceback.format_exc()}")
            try:
                os.makedirs(root, exist_ok=True)
                with open(stderr_path, "ab") as err:
                    err.write(f"emr-serverless emulator: could not run the job: {exc}\n".encode())
                self._upload_logs(emr, run, number, stdout_path, stderr_path)
            except Exception:  # noqa: BLE001
                pass
            if run.cancel_requested.is_set():
                return "cancelled", None
            return "failed", f"Job run could not start: {exc}"

    def _cancelled(self, emr: EmrServerless, run: JobRun) -> None:
        self.live_runs.pop(run.id, None)
        if run.state not in TERMINAL_RUN_STATES:
            if run.state != "CANCELLING":
                emr.set_state(run, "CANCELLING", None if run.cancel_details == "Job run cancelled by user" else run.cancel_details)
            emr.set_state(run, "CANCELLED", run.cancel_details)

    @staticmethod
    def _failure_details(code: int, stderr_path: str) -> str:
        details = f"Job failed, please check complete logs in configured logging destination. ExitCode: {code}."
        try:
            with open(stderr_path, "r", errors="replace") as f:
                lines = [l.strip() for l in f.read().splitlines()[-200:]]
            exceptions = [l for l in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*:", l)]
            if exceptions:
                details += " Last few exceptions: " + exceptions[-1]
        except OSError:
            pass
        return details[:STATE_DETAILS_MAX]

    def cancel(self, run: JobRun, grace: float | None = None) -> None:
        """Cancellation: stop the spark-submit process group, in the background (the run thread
        then ends the run): SIGTERM, then SIGKILL after ``grace`` seconds (wall-clock), or after up
        to 5 s without a grace period."""
        threading.Thread(target=self.kill, args=(run, grace), name=f"kill-{run.id}", daemon=True).start()

    def kill(self, run: JobRun, grace: float | None = None) -> None:
        proc = run.process
        if proc is None or proc.poll() is not None and not _group_alive(proc.pid):
            return
        for sig, wait in ((signal.SIGTERM, 5.0 if grace is None else grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if proc.poll() is not None and not _group_alive(proc.pid):
                    return
                time.sleep(0.1)

    def _prepare(self, emr: EmrServerless, run: JobRun, root: str) -> tuple[list[str], list[tuple[str, str]]]:
        spark = run.job_driver["sparkSubmit"]
        staged = os.path.join(root, "staged")
        access = RunAccess(run)

        def fetch(uri: str) -> str:
            if not uri.startswith("s3://"):
                return uri
            local = os.path.join(staged, uri.rstrip("/").rsplit("/", 1)[-1])
            bucket, key = self._split(uri)
            access.require("s3:GetObject", bucket, key)
            self.s3.download_file(bucket, key, local)
            return local

        entry = fetch(spark["entryPoint"])
        tokens = (spark.get("sparkSubmitParameters") or "").split()
        args: list[str] = []
        py_files: list[str] = []
        files: list[str] = []
        i = 0
        while i < len(tokens):
            flag = tokens[i]
            value = tokens[i + 1] if i + 1 < len(tokens) else ""
            if flag == "--py-files":
                py_files += [fetch(u) for u in value.split(",") if u]
            elif flag == "--files":
                files += [fetch(u) for u in value.split(",") if u]
            elif flag == "--conf":
                key = value.split("=", 1)[0]
                if key in EMR_ONLY_CONF_KEYS or key.startswith(EMR_ONLY_CONF_PREFIXES) or "./environment/" in value:
                    emr.log(f"job run {run.id}: dropping EMR-only conf {value} (local Spark cannot use it)")
                else:
                    args += ["--conf", value]
            elif flag.startswith("--"):
                args += [flag, value]
            else:
                emr.log(f"job run {run.id}: ignoring stray spark-submit token {flag!r}")
                i += 1
                continue
            i += 2

        outputs: list[tuple[str, str]] = []
        for path in files:
            if os.path.basename(path) == "job-metadata.json":
                outputs += self._localize_metadata(path, root, access, lambda m: emr.log(f"job run {run.id}: {m}"))
        entry_args = []
        for arg in spark.get("entryPointArguments") or []:
            if arg.startswith("s3://"):
                local = self._local(root, arg)
                os.makedirs(local if arg.endswith("/") else os.path.dirname(local), exist_ok=True)
                outputs.append((local, arg))
                entry_args.append(local + ("/" if arg.endswith("/") and not local.endswith("/") else ""))
            else:
                entry_args.append(arg)
        command = [self.spark_submit, "--master", "local[*]", "--name", f"emr-serverless-{run.id}"]
        # The live Spark UI of GetDashboardForJobRun, on a port of its own (the run's conf may still turn it off).
        run.ui_port = free_port()
        command += ["--conf", "spark.ui.enabled=true", "--conf", f"spark.ui.port={run.ui_port}",
                    "--conf", "spark.sql.shuffle.partitions=4", "--conf", f"spark.driver.extraJavaOptions={LOCAL_SPARK_JAVA_OPTIONS}", *args]
        if py_files:
            command += ["--py-files", ",".join(py_files)]
        if files:
            command += ["--files", ",".join(files)]
        command += [entry, *entry_args]
        return command, outputs

    def _localize_metadata(self, path: str, root: str, access: RunAccess, log: Callable[[str], None] = lambda _m: None) -> list[tuple[str, str]]:
        """Mirrors the inputs and model assets that exist and points the metadata at the local
        copies. One that does not exist is not an error here: EMR fetches nothing up front (the
        model reads S3 itself), so the run starts, and only a model that opens it fails, with
        what Spark or Python says of a missing path (its local path written back as the s3:// URI
        in the run's logs and model error record: :meth:`restore_s3_paths`)."""
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
        outputs = []
        for section in ("inputs", "modelAssets", "outputs"):
            for asset in metadata.get(section) or []:
                url = asset.get("fileUrl") if isinstance(asset, dict) else None
                if not isinstance(url, str) or not url.startswith("s3://"):
                    continue
                local = self._local(root, url)
                if section == "outputs":
                    os.makedirs(os.path.dirname(local.rstrip("/")), exist_ok=True)
                    outputs.append((local.rstrip("/"), url))
                else:
                    try:
                        self._download(url, local.rstrip("/"), access)
                    except FileNotFoundError:
                        log(f"{section} {url}: no such object or prefix, not mirrored (the model fails only if it opens it, as on EMR)")
                asset["fileUrl"] = local.rstrip("/") or local
        with open(path, "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=2)
        return outputs

    @staticmethod
    def driver_log_base(run: JobRun, attempt: int) -> str:
        """The CloudWatch stream name of an attempt's driver logs, before ``/stdout|stderr``:
        ``[<prefix>/]applications/<app>/jobs/<run>/SPARK_DRIVER`` for the first attempt and
        ``.../jobs/<run>/attempts/<n>/SPARK_DRIVER`` for attempt n > 1 (the User Guide's "Storing
        logs": a retried run's attempts are under ``attempts/<n>/``; the first attempt keeps the
        path of a run without retries, which is what shared/src/job_run.rs driver_log_stream reads)."""
        prefix = (run.log_config() or {}).get("logStreamNamePrefix")
        base = f"applications/{run.app.id}/jobs/{run.id}/" + (f"attempts/{attempt}/" if attempt > 1 else "") + "SPARK_DRIVER"
        return f"{prefix}/{base}" if prefix else base

    def _upload_logs(self, emr: EmrServerless, run: JobRun, attempt: int, stdout_path: str, stderr_path: str) -> None:
        config = run.log_config()
        if config is None:
            return
        group = config.get("logGroupName") or "/aws/emr-serverless"
        base = self.driver_log_base(run, attempt)
        try:
            self.logs.create_log_group(logGroupName=group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        for name, path in (("stdout", stdout_path), ("stderr", stderr_path)):
            stream = f"{base}/{name}"
            try:
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
            try:
                with open(path, "r", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            now = int(time.time() * 1000)
            batch: list[dict] = []
            size = 0
            for line in lines or []:
                line = line[:200_000] or " "
                batch.append({"timestamp": now, "message": line})
                size += len(line.encode()) + 26
                if len(batch) >= 5000 or size > 800_000:
                    self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                    batch, size = [], 0
            if batch:
                self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        emr.log(f"job run {run.id}: driver logs in {group} {base}/stdout|stderr")


# ------------------------------------------------------------------------------------------------
# HTTP


_APP = re.compile(r"^/applications/(?P<app>[^/]+)$")
_APP_ACTION = re.compile(r"^/applications/(?P<app>[^/]+)/(?P<action>start|stop)$")
_RUNS = re.compile(r"^/applications/(?P<app>[^/]+)/jobruns$")
_RUN = re.compile(r"^/applications/(?P<app>[^/]+)/jobruns/(?P<run>[^/]+)$")
_ATTEMPTS = re.compile(r"^/applications/(?P<app>[^/]+)/jobruns/(?P<run>[^/]+)/attempts$")
_DASHBOARD = re.compile(r"^/applications/(?P<app>[^/]+)/jobruns/(?P<run>[^/]+)/dashboard$")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/")


ADMIN_RUN_ROUTES: dict[str, Callable[[EmrServerless, Any], tuple[int, dict]]] = {
    "/emr-serverless/job-runs/state": EmrServerless.admin_set_state,
    "/emr-serverless/job-runs/utilization-event": EmrServerless.admin_utilization_event,
    "/emr-serverless/job-runs/billing": EmrServerless.admin_billing,
    "/emr-serverless/job-runs/dashboard": EmrServerless.admin_dashboard,
}


def make_handler(emr: EmrServerless, quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle the body would wait for the client's
        # delayed ACK of the headers (about 40 ms a request).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                sys.stderr.write("emr-serverless: " + (format % args) + "\n")

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            return json.loads(raw) if raw.strip() else None

        def _send(self, status: int, body: Any, error_type: str | None = None) -> None:
            headers = {"x-amzn-RequestId": str(uuid.uuid4())}
            if error_type:
                headers["x-amzn-ErrorType"] = error_type
            send_json(self, status, body, headers)

        def _handle(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parsed.path)
            query = urllib.parse.parse_qs(parsed.query)
            try:
                body = self._body()
            except ValueError:
                self._send(400, {"message": "request body is not JSON"}, "ValidationException")
                return
            if path == ADMIN or path.startswith(ADMIN + "/"):
                try:
                    status, out = self._admin(method, path, body, query)
                except (ValueError, KeyError, TypeError) as exc:
                    status, out = 400, {"message": f"{type(exc).__name__}: {exc}"}
                self._send(status, out)
                return
            scope = _SCOPE.search(self.headers.get("Authorization", ""))
            region = scope["region"] if scope else DEFAULT_REGION
            try:
                out = self._api(method, path, region, body if isinstance(body, dict) else {}, query)
            except ApiError as exc:
                self._send(exc.status, {"message": exc.message}, exc.code)
                return
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                self._send(500, {"message": str(exc)}, "InternalServerException")
                return
            self._send(200, out)

        def _admin(self, method: str, path: str, body: Any, query: dict) -> tuple[int, Any]:
            route = path[len(ADMIN):]
            if method == "GET" and route == "/health":
                return 200, {"status": "ok", "mode": "manual" if emr.runner is None else "execute"}
            if method == "POST" and route in ADMIN_RUN_ROUTES:
                try:
                    return ADMIN_RUN_ROUTES[route](emr, body)
                except ApiError as exc:
                    return exc.status, {"message": exc.message}
            if method == "GET" and route == "/emr-serverless/job-runs/process":
                return emr.admin_process(query)
            if route == "/emr-serverless/quota":
                if method == "GET":
                    return 200, emr.quota_view()
                if method == "POST":
                    return emr.admin_quota(body)
            return 404, {"message": f"no admin route {method} {path}"}

        def _api(self, method: str, path: str, region: str, body: dict, query: dict) -> dict:
            if path == "/applications":
                if method == "GET":
                    return emr.list_applications(region, query)
                if method == "POST":
                    return emr.create_application(region, DEFAULT_ACCOUNT_ID, body)
            elif m := _APP.match(path):
                if method == "GET":
                    return emr.get_application(region, m["app"])
            elif m := _APP_ACTION.match(path):
                if method == "POST":
                    action = emr.start_application if m["action"] == "start" else emr.stop_application
                    return action(region, m["app"])
            elif m := _RUNS.match(path):
                if method == "POST":
                    return emr.start_job_run(region, m["app"], body)
                if method == "GET":
                    return emr.list_job_runs(region, m["app"], query)
            elif m := _RUN.match(path):
                if method == "GET":
                    return emr.get_job_run(region, m["app"], m["run"], query)
                if method == "DELETE":
                    return emr.cancel_job_run(region, m["app"], m["run"], query)
            elif m := _ATTEMPTS.match(path):
                if method == "GET":
                    return emr.list_job_run_attempts(region, m["app"], m["run"], query)
            elif m := _DASHBOARD.match(path):
                if method == "GET":
                    return emr.get_dashboard_for_job_run(region, m["app"], m["run"], query)
            raise ApiError(404, "UnknownOperationException", f"no operation {method} {path}")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


class Server(Endpoint):
    """The endpoint, in-process: ``Server(emr).start()``; ``.endpoint``; ``.stop()`` (which stops the runs too)."""

    def __init__(self, emr: EmrServerless, port: int = 0, quiet: bool = True) -> None:
        super().__init__(make_handler(emr, quiet), "emr-serverless", port)
        self.emr = emr

    def stop(self) -> None:
        super().stop()
        self.emr.stop_all()


def http_event_sink(url: str) -> EventSink:
    def send(event: dict) -> None:
        request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    return send


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--execute", action="store_true", help="run job runs on local Spark")
    parser.add_argument("--aws-endpoint", help="S3 and CloudWatch Logs (moto), for --execute")
    parser.add_argument("--work-dir", help="where runs are staged (default: a temporary directory)")
    parser.add_argument("--max-concurrent-runs", type=int, default=2)
    parser.add_argument("--events-url", help="POST each EventBridge event here")
    parser.add_argument("--time-scale", type=float, metavar="SECONDS",
                        help=f"seconds one emulated minute of the service's timers lasts (default: ${TIME_SCALE_ENV} or 60, real time)")
    parser.add_argument("--billing-lag", type=float, metavar="SECONDS",
                        help=f"wall-clock seconds an ended run's billed figures read zero and its final utilization event waits "
                             f"(default: ${BILLING_LAG_ENV} or 0)")
    parser.add_argument("--start-job-run-rate", type=float, metavar="PER_SECOND",
                        help="StartJobRun requests accepted per second (a token bucket); more are answered ThrottlingException")
    parser.add_argument("--start-job-run-burst", type=float, metavar="N",
                        help="the bucket's size (default: one second's worth of --start-job-run-rate)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.execute and not args.aws_endpoint:
        parser.error("--execute needs --aws-endpoint")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="emr-serverless-")
    runner = SparkRunner(args.aws_endpoint, work_dir, args.max_concurrent_runs) if args.execute else None
    if args.time_scale is not None and not args.time_scale > 0:
        parser.error("--time-scale must be > 0")
    if args.billing_lag is not None and not args.billing_lag >= 0:
        parser.error("--billing-lag must be >= 0")
    if args.start_job_run_rate is not None and not args.start_job_run_rate > 0:
        parser.error("--start-job-run-rate must be > 0")
    if args.start_job_run_burst is not None and (args.start_job_run_rate is None or not args.start_job_run_burst >= 1):
        parser.error("--start-job-run-burst must be >= 1 and needs --start-job-run-rate")
    emr = EmrServerless(http_event_sink(args.events_url) if args.events_url else None, runner,
                        log=(lambda m: None) if args.quiet else None, time_scale=args.time_scale, billing_lag=args.billing_lag)
    if args.start_job_run_rate is not None:
        emr.set_start_job_run_quota(args.start_job_run_rate, args.start_job_run_burst)
    server = Server(emr, args.port, args.quiet).start()
    try:
        line = json.dumps({"endpoint": server.endpoint, "pid": os.getpid()})
        write_ready_file(args.ready_file, line)
        print(line, flush=True)
        while not stop.wait(0.5):
            if os.getppid() != _PARENT_PID:
                break
    finally:
        server.stop()
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
