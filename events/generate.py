#!/usr/bin/env python3
"""Writes the sample events in events/submit/, events/cleanup/ and events/monitor/.

Each file is the exact payload AWS Lambda delivers from the jobs table's stream
(NEW_AND_OLD_IMAGES), with DynamoDB-JSON typed attributes, or (events/cleanup/scheduled-sweep.json)
the EventBridge scheduled event that starts the orphan sweep, or (events/monitor/) an EventBridge
event of EMR Serverless (source aws.emr-serverless) or of the monitor's schedule. The primary model source is inlined from
tests/models/spark_sample_model.py, so rerun this script whenever that model changes:

    python3 events/generate.py           # rewrite the files
    python3 events/generate.py --check   # exit 1 if a committed file is stale

Output is deterministic: fixed ids, timestamps and sequence numbers; no clock, no randomness.
Standard library only, Python 3.9+.
"""

import argparse
import base64
import calendar
import datetime
import hashlib
import json
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "events"
MODEL_FILE = ROOT / "tests" / "models" / "spark_sample_model.py"
MODELOP_STYLE_MODEL_FILE = ROOT / "tests" / "models" / "modelop_style_model.py"

REGION = "us-east-1"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/modelop-jobs/stream/2026-11-23T00:00:00.000"
JOB_ROLE_ARN = "arn:aws:iam::123456789012:role/modelop-emr-job"
OURS, OTHER_RUNTIME = "SPARK_SERVERLESS_RUNTIME", "SPARK_RUNTIME"

BATCH_ID = "3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01"
TEST_ID = "7a2d9e14-3b5c-4f68-8e07-1c9a2b3d4e02"
TRAINING_ID = "b8e4f0a6-1c2d-4e3f-a5b6-7c8d9e0f1a03"
OTHER_RUNTIME_ID = "c4a7b2e9-6d1f-4a38-b0c5-2e9f8d7a6b04"
MALFORMED_BATCH_ID = "d2f9c8b1-7e3a-4c56-9d0e-4f1a2b3c5d05"
MODIFY_ID = "e6b3d0f7-2a9c-4e81-8f4d-6c5b4a3e2f06"
MODELOP_ID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b15"
# A credential as ModelOp's S3 repository carries it: it must never reach S3, logs or the metadata.
SAMPLE_SECRET = "SAMPLE-SECRET-KEY-do-not-stage"

# Cleanup samples. The run and application ids are placeholders a replay may substitute with real ones.
COMPLETE_ID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c10"
ERROR_ID = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d11"
CANCELLED_ID = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e12"
STILL_RUNNING_ID = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f13"
HOSTILE_ID = "5e6f7a8b-9c0d-4e1f-8a3b-4c5d6e7f8a14"
STAGING_BUCKET = "modelop-staging"
STAGING_PREFIX = "modelop-spark-serverless/"
EMR_APPLICATION_ID = "00fabcdef0123456"
SCHEDULE_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/modelop-cleanup-orphan-sweep"


def ddb(value):
    """A plain value as a DynamoDB-JSON attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {k: ddb(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [ddb(v) for v in value]}
    raise TypeError("no DynamoDB type for {!r}".format(value))


def item(document):
    return {k: ddb(v) for k, v in document.items()}


def value_size(av):
    """DynamoDB's item-size rules, closely enough for SizeBytes."""
    (kind, v), = av.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        return (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(x) + 1 for k, x in v.items())
    return 3 + sum(value_size(x) + 1 for x in v)  # L


def item_size(attributes):
    return sum(len(k.encode("utf-8")) + value_size(v) for k, v in attributes.items())


def epoch_seconds(timestamp):
    """`ApproximateCreationDateTime`: whole seconds of an ISO-8601 UTC timestamp."""
    parsed = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(parsed.utctimetuple())


def job(job_id, job_type, created, parameters, output, runtime=OURS, status="CREATED"):
    """A job document as ModelOp Center writes it."""
    return {
        "id": job_id,
        "jobType": job_type,
        "jobStatus": status,
        "runtimeType": runtime,
        "runtimeName": "spark-serverless-runtime" if runtime == OURS else "spark-runtime",
        "jobDescription": "{} of Spark Sample Model".format(job_type),
        "createdBy": "modelop-center",
        "createdDate": created,
        "lastModifiedDate": created,
        "model": {
            "storedModel": {
                "id": "5e0d2c4b-9a81-4f37-b6e2-0a1b2c3d4e5f",
                "modelMetaData": {"name": "Spark Sample Model", "version": "1"},
                "modelAssets": [
                    {
                        "name": "spark_sample_model.py",
                        "assetType": "SOURCE_CODE",
                        "primaryModelSource": True,
                        "sourceCode": MODEL_FILE.read_text(encoding="utf-8"),
                    }
                ],
            }
        },
        "inputData": [
            {
                "name": "sample_input.csv",
                "assetType": "EXTERNAL_FILE",
                "fileUrl": "s3://modelop-data/input/sample_input.csv",
            }
        ],
        "outputData": [
            {
                "name": output,
                "assetType": "EXTERNAL_FILE",
                "fileUrl": "s3://modelop-data/output/{}/{}".format(job_id, output),
            }
        ],
        "jobParameters": parameters,
    }


def modelop_job(job_id, created):
    """A job document shaped like ModelOp's own: `modelop/titanic-spark` `job_submit/titanic_*_job.json`
    (targetEngine, spark-submit flags as jobParameters, _links, nameless data assets) and
    `modelop/german_credit_data_drift_detector_spark` `job_submitter/full_drift_job.json` (assetRole,
    repositoryInfo of an S3 repository, http://host:port/bucket/key URLs, a FILE model asset)."""
    schema = json.dumps([{"name": "id", "type": "string"}, {"name": "x1", "type": "double"}], indent=4)
    return {
        "id": job_id,
        "group": "modelop",
        "jobType": "MODEL_BATCH_JOB",
        "jobStatus": "CREATED",
        "createdDate": created,
        "createdBy": "SYSTEM",
        "lastModifiedBy": None,
        "modelWritesOutput": False,
        "targetEngine": {
            "engineType": OURS,
            "name": "spark-serverless-runtime-1",
            "group": "modelop",
            "state": "INIT",
            "executorMemory": "512MB",
            "sparkConf": {"--master": "yarn"},
            "tags": ["serverless"],
        },
        "model": {
            "id": "8878c1e2-2c1a-4b1e-9f3e-0d6c3f1a2b3c",
            "group": "modelop",
            "storedModel": {
                "id": "5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7",
                "modelMetaData": {"name": "modelop-style", "type": "PYSPARK", "description": None, "tags": []},
                "modelAssets": [
                    {
                        "assetId": "dd912662-0b1c-4d2e-9f3a-4b5c6d7e8f90",
                        "name": "modelop_style_model.py",
                        "assetType": "SOURCE_CODE",
                        "assetRole": "MODEL_SOURCE",
                        "primaryModelSource": True,
                        "sourceCode": MODELOP_STYLE_MODEL_FILE.read_text(encoding="utf-8"),
                        "sourceCodeFilePath": "modelop_style_model.py",
                        "initFunction": "init",
                        "scoreFunction": "score",
                        "metricsFunction": None,
                    },
                    {
                        "assetId": "e45d070b-0000-4e5f-9a0b-1c2d3e4f5a6c",
                        "name": "5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7/e45d070b-0000-4e5f-9a0b-1c2d3e4f5a6c.json",
                        "assetType": "EXTERNAL_FILE",
                        "assetRole": "WEIGHTS_FILE",
                        "repositoryInfo": {"repositoryType": "S3_REPOSITORY", "secure": False, "host": "minio", "port": 9000},
                        "fileUrl": "http://minio:9000/modelop-models/5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7/e45d070b-0000-4e5f-9a0b-1c2d3e4f5a6c.json",
                        "filename": "weights.json",
                        "fileFormat": "JSON",
                        "fileSize": 92,
                    },
                    {
                        "assetId": "f9b72762-1a2b-4c3d-8e4f-5a6b7c8d9e01",
                        "assetType": "FILE",
                        "assetRole": "MODEL_SCHEMA",
                        "filename": "df_sample_scored_input_schema.avsc",
                        "fileFormat": "UNKNOWN",
                        "localFile": "/tmp/model-manage-repos/master/df_sample_scored_input_schema.avsc",
                        "fileSize": len(schema),
                        "fileContent": base64.b64encode(schema.encode("utf-8")).decode("ascii"),
                    },
                ],
            },
        },
        "inputData": [
            {
                "assetId": "e45d070b-2c3d-4e5f-9a0b-1c2d3e4f5a6b",
                "name": "",
                "assetType": "EXTERNAL_FILE",
                "assetRole": "UNKNOWN",
                "repositoryInfo": {
                    "repositoryType": "S3_REPOSITORY",
                    "secure": False,
                    "host": "minio",
                    "port": 9000,
                    "region": "default-region",
                    "accessKey": "SAMPLE-ACCESS-KEY",
                    "secretKey": SAMPLE_SECRET,
                },
                "fileUrl": "http://minio:9000/modelop-data/input/sample_input.csv",
                "filename": "sample_input.csv",
                "fileFormat": "CSV",
                "fileSize": 0,
            }
        ],
        "outputData": [
            {
                "assetType": "EXTERNAL_FILE",
                "assetRole": "UNKNOWN",
                "fileUrl": "s3a://modelop-data/output/{}/scored/".format(job_id),
                "fileFormat": "CSV",
            }
        ],
        "jobParameters": {"--executor-memory": "512MB", "--total-executor-cores": "10", "-v": "", "--conf spark.modelop.threshold": "0.7"},
        "_links": {
            "self": {"href": "http://modelop.example.com/api/modelBatchJob/{}".format(job_id)},
            "modelBatchJob": {"href": "http://modelop.example.com/api/modelBatchJob/{}".format(job_id)},
        },
    }


def record(event_name, sequence, when, new=None, old=None):
    """One stream record; `new` and `old` are plain documents (images)."""
    images = [image for image in (new, old) if image is not None]
    keys = {"id": {"S": images[0]["id"]}}
    change = {"ApproximateCreationDateTime": epoch_seconds(when), "Keys": keys}
    if new is not None:
        change["NewImage"] = item(new)
    if old is not None:
        change["OldImage"] = item(old)
    size = item_size(keys) + sum(item_size(item(image)) for image in images)
    change.update({"SequenceNumber": sequence, "SizeBytes": size, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return envelope(event_name, sequence, change)


def envelope(event_name, seed, change):
    return {
        "eventID": hashlib.md5(seed.encode("utf-8")).hexdigest(),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }


def events():
    batch = job(BATCH_ID, "MODEL_BATCH_JOB", "2026-11-23T20:15:04.123Z", {"--conf spark.executor.cores": "2"}, "scored")
    test = job(TEST_ID, "MODEL_BATCH_TEST_JOB", "2026-11-23T20:16:10.456Z", {"threshold": "0.5"}, "metrics")
    training = job(
        TRAINING_ID,
        "MODEL_BATCH_TRAINING_JOB",
        "2026-11-23T20:17:30.789Z",
        {
            "--conf spark.executor.memory": "4g",
            "--conf modelop.serverless.job.app.name": "modelop-training",
            "--conf modelop.serverless.job.rolearn": JOB_ROLE_ARN,
        },
        "model",
    )
    other = job(OTHER_RUNTIME_ID, "MODEL_BATCH_JOB", "2026-11-23T20:18:00.000Z", {}, "scored", runtime=OTHER_RUNTIME)
    valid = job(MALFORMED_BATCH_ID, "MODEL_BATCH_JOB", "2026-11-23T20:19:00.000Z", {"--conf spark.executor.cores": "2"}, "scored")
    created = job(MODIFY_ID, "MODEL_BATCH_JOB", "2026-11-23T20:20:00.000Z", {}, "scored")
    claimed_at = "2026-11-23T20:20:00.250Z"
    waiting = dict(
        created,
        jobStatus="WAITING",
        updatedAt=claimed_at,
        statusHistory=[{"status": "WAITING", "at": claimed_at}],
        submitLease={
            "owner": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "claimedAt": claimed_at,
            "expiresAt": "2026-11-23T20:35:05.250Z",
        },
    )
    modelop = modelop_job(MODELOP_ID, "2026-11-23T20:21:00.000Z")
    # The broken record has no usable `dynamodb` object, so no sequence number Lambda could report.
    broken = envelope("INSERT", "malformed-record", "this is not a stream record")
    return {
        "insert-batch-job.json": [record("INSERT", "400000000000000500001", batch["createdDate"], new=batch)],
        "insert-test-job.json": [record("INSERT", "400000000000000500002", test["createdDate"], new=test)],
        "insert-training-job.json": [record("INSERT", "400000000000000500003", training["createdDate"], new=training)],
        "insert-other-runtime.json": [record("INSERT", "400000000000000500004", other["createdDate"], new=other)],
        "malformed.json": [broken, record("INSERT", "400000000000000500006", valid["createdDate"], new=valid)],
        "modify-not-insert.json": [record("MODIFY", "400000000000000500008", claimed_at, new=waiting, old=created)],
        "insert-modelop-job.json": [record("INSERT", "400000000000000500010", modelop["createdDate"], new=modelop)],
    }


def staging_uri(job_id):
    return "s3://{}/{}{}/".format(STAGING_BUCKET, STAGING_PREFIX, job_id)


def launched(document, status, at, run_id, history):
    """`document` as submit (and then the monitor) left it: run recorded, status `status`."""
    return dict(
        document,
        jobStatus=status,
        sparkApplicationId=run_id,
        emrApplicationId=EMR_APPLICATION_ID,
        stagingUri=staging_uri(document["id"]),
        emrState="RUNNING" if status == "RUNNING" else "SUBMITTED",
        updatedAt=at,
        statusHistory=history,
    )


def transition(job_id, sequence, old_status, new_status, at, run_id, extra=None):
    """A MODIFY record of a launched job moving from `old_status` to `new_status`."""
    base = job(job_id, "MODEL_BATCH_JOB", "2026-11-24T08:00:00.000Z", {}, "scored")
    history = [{"status": "WAITING", "at": "2026-11-24T08:00:00.250Z"}, {"status": "WAITING", "emrState": "SUBMITTED", "at": "2026-11-24T08:00:01.000Z"}]
    if old_status == "RUNNING":
        history.append({"status": "RUNNING", "emrState": "RUNNING", "at": "2026-11-24T08:02:00.000Z"})
    old = launched(base, old_status, history[-1]["at"], run_id, history)
    new = dict(old, jobStatus=new_status, updatedAt=at, statusHistory=history + [{"status": new_status, "at": at}], **(extra or {}))
    return record("MODIFY", sequence, at, new=new, old=old)


def cleanup_events():
    complete = transition(COMPLETE_ID, "500000000000000600001", "RUNNING", "COMPLETE", "2026-11-24T08:10:00.000Z", "00fabc0000000010",
                          {"emrState": "SUCCESS"})
    error = transition(ERROR_ID, "500000000000000600002", "WAITING", "ERROR", "2026-11-24T08:11:00.000Z", "00fabc0000000011",
                       {"emrState": "FAILED", "errorMessage": "job {}: job run failed: FAILED".format(ERROR_ID)})
    # ModelOp Center's cancel: only jobStatus changes; the run is still going.
    cancelled = transition(CANCELLED_ID, "500000000000000600003", "RUNNING", "CANCELLED", "2026-11-24T08:12:00.000Z", "00fabc0000000012")
    running = transition(STILL_RUNNING_ID, "500000000000000600004", "WAITING", "RUNNING", "2026-11-24T08:13:00.000Z", "00fabc0000000013",
                         {"emrState": "RUNNING"})
    hostile = transition(HOSTILE_ID, "500000000000000600005", "RUNNING", "COMPLETE", "2026-11-24T08:14:00.000Z", "00fabc0000000014",
                         {"stagingUri": "s3://{}/{}".format(STAGING_BUCKET, STAGING_PREFIX)})
    # Cleanup's own record of its work: a finished job stays finished. The stream filter drops it.
    cleaned = transition(COMPLETE_ID, "500000000000000600006", "COMPLETE", "COMPLETE", "2026-11-24T08:10:02.000Z", "00fabc0000000010",
                         {"emrState": "SUCCESS", "cleanedAt": "2026-11-24T08:10:02.000Z"})
    scheduled = {
        "version": "0",
        "id": "7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-24T09:00:00Z",
        "region": REGION,
        "resources": [SCHEDULE_RULE_ARN],
        "detail": {},
    }
    return {
        "cleanup/modify-running-to-complete.json": {"Records": [complete]},
        "cleanup/modify-waiting-to-error.json": {"Records": [error]},
        "cleanup/modify-cancelled-by-user.json": {"Records": [cancelled]},
        "cleanup/modify-not-terminal.json": {"Records": [running]},
        "cleanup/modify-hostile-staging-uri.json": {"Records": [hostile]},
        "cleanup/modify-already-final.json": {"Records": [cleaned]},
        "cleanup/scheduled-sweep.json": scheduled,
    }


# Monitor samples: EventBridge events as EventBridge hands them to a Lambda target. Field names and
# formats follow the samples in the EMR Serverless User Guide ("Automating EMR Serverless with Amazon
# EventBridge"): `time` in whole seconds, `detail` timestamps with microseconds. `jobRunName` is not in
# the guide's sample; it is the run's `name` (submit names each run after its job), and
# state-running-no-name.json covers events without it.
ACCOUNT = "123456789012"
MONITOR_APP_ID = "00fmonitorapp0001"
MONITOR_RUN_ID = "00fmonitorrun0001"
RELEASE_LABEL = "emr-7.5.0"
SUBMITTER_ARN = "arn:aws:sts::123456789012:assumed-role/modelop-submit-role/modelop-submit"
MONITOR_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/modelop-monitor-sweep"
RUN_CREATED_AT = "2026-11-23T20:09:00.123456Z"
# Namespace of the events' `id`s: uuid3 (MD5) of the file name, so ids are fixed and distinct.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2b9e-4d3a-4e5f-8a7b-0c1d2e3f4a5b")

# file name: (state, previous state or None, when the run entered the state)
RUN_STATES = {
    "state-submitted.json": ("SUBMITTED", None, "2026-11-23T20:09:00.123456Z"),
    "state-pending.json": ("PENDING", "SUBMITTED", "2026-11-23T20:09:01.204518Z"),
    "state-queued.json": ("QUEUED", "PENDING", "2026-11-23T20:09:02.311975Z"),
    "state-scheduled.json": ("SCHEDULED", "PENDING", "2026-11-23T20:09:05.487210Z"),
    "state-running.json": ("RUNNING", "SCHEDULED", "2026-11-23T20:10:00.299487Z"),
    "state-unknown.json": ("HIBERNATING", "RUNNING", "2026-11-23T20:11:00.015342Z"),
    "state-cancelling.json": ("CANCELLING", "RUNNING", "2026-11-23T20:12:00.654321Z"),
    "state-cancelled.json": ("CANCELLED", "CANCELLING", "2026-11-23T20:12:30.118812Z"),
    "state-success.json": ("SUCCESS", "RUNNING", "2026-11-23T20:15:00.772310Z"),
    "state-failed.json": ("FAILED", "RUNNING", "2026-11-23T20:15:00.772310Z"),
}


def job_run_arn(application_id, run_id):
    return "arn:aws:emr-serverless:{}:{}:/applications/{}/jobruns/{}".format(REGION, ACCOUNT, application_id, run_id)


def eventbridge(name, detail_type, source, at, detail, resources=()):
    """The envelope EventBridge wraps every event in; `at` is an ISO timestamp, cut to seconds."""
    return {
        "version": "0",
        "id": str(uuid.uuid3(EVENT_ID_NAMESPACE, name)),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": at[:19] + "Z",
        "region": REGION,
        "resources": list(resources),
        "detail": detail,
    }


def state_change(name, state, previous, at, run_name=BATCH_ID, details=None):
    detail = {"jobRunId": MONITOR_RUN_ID}
    if run_name is not None:
        detail["jobRunName"] = run_name
    detail.update({
        "applicationId": MONITOR_APP_ID,
        "arn": job_run_arn(MONITOR_APP_ID, MONITOR_RUN_ID),
        "releaseLabel": RELEASE_LABEL,
        "state": state,
    })
    if previous is not None:
        detail["previousState"] = previous
    if details is not None:
        detail["stateDetails"] = details
    detail.update({"createdBy": SUBMITTER_ARN, "updatedAt": at, "createdAt": RUN_CREATED_AT})
    return eventbridge(name, "EMR Serverless Job Run State Change", "aws.emr-serverless", at, detail)


TIMED_OUT_DETAILS = "Job run timed out: it ran longer than its execution timeout of 30 minutes and was cancelled."
QUEUE_TIMED_OUT_DETAILS = ("Job run timed out in the QUEUED state: it waited longer than the application's queue timeout "
                           "of 15 minutes.")


def first_interval(used, billed):
    """The four figure objects of a run's first update (its interval is its total so far): (vCPU, memory, storage)."""
    used, billed = (dict(zip(("vCPUHour", "memoryGBHour", "storageGBHour"), f)) for f in (used, billed))
    return {"resourceUtilizationForInterval": used, "billedResourceUtilizationForInterval": billed,
            "totalResourceUtilization": dict(used), "totalBilledResourceUtilization": dict(billed)}


def utilization_update(name, at, final, figures):
    """A Job Resource Utilization Update of attempt 2 (the fields of the User Guide's sample); ``figures`` gives the
    interval, the figures and ``resourceUtilizationFinal`` (``final``), in the order they appear."""
    detail = {
        "applicationId": MONITOR_APP_ID,
        "jobRunId": MONITOR_RUN_ID,
        "attempt": 2,
        "mode": "BATCH",
        "createdAt": RUN_CREATED_AT,
        "startedAt": "2026-11-23T20:11:52.041Z",
    }
    detail.update(figures)
    assert detail["resourceUtilizationFinal"] is final
    return eventbridge(name, "EMR Serverless Job Resource Utilization Update", "aws.emr-serverless", at, detail,
                       resources=[job_run_arn(MONITOR_APP_ID, MONITOR_RUN_ID)])


def monitor_events():
    files = {name: state_change(name, *args) for name, args in RUN_STATES.items()}
    files["state-running-no-name.json"] = state_change("state-running-no-name.json", *RUN_STATES["state-running.json"], run_name=None)
    # Runs EMR ended for a timeout. No public source gives these stateDetails: the wordings are
    # the EMR emulator's ASSUMED ones (tests/emulator/emr_serverless.py), for 30 and 15 minutes.
    files["state-timed-out.json"] = state_change(
        "state-timed-out.json", "CANCELLED", "CANCELLING", "2026-11-23T20:40:00.118812Z", details=TIMED_OUT_DETAILS)
    files["state-queue-timed-out.json"] = state_change(
        "state-queue-timed-out.json", "FAILED", "QUEUED", "2026-11-23T20:24:02.311975Z", details=QUEUE_TIMED_OUT_DETAILS)

    # Attempt 1 failed at 20:11:40; EMR Serverless (7.1.0+, with a retry policy) starts attempt 2.
    retry_at = "2026-11-23T20:11:45.530218Z"
    files["job-run-retry.json"] = eventbridge("job-run-retry.json", "EMR Serverless Job Run Retry", "aws.emr-serverless", retry_at, {
        "jobRunId": MONITOR_RUN_ID,
        "applicationId": MONITOR_APP_ID,
        "arn": job_run_arn(MONITOR_APP_ID, MONITOR_RUN_ID),
        "releaseLabel": RELEASE_LABEL,
        "createdBy": SUBMITTER_ARN,
        "updatedAt": retry_at,
        "createdAt": RUN_CREATED_AT,
        "previousAttempt": 1,
        "previousAttemptState": "FAILED",
        "previousAttemptCreatedAt": RUN_CREATED_AT,
        "previousAttemptEndedAt": "2026-11-23T20:11:40.902114Z",
        "newAttempt": 2,
        "newAttemptCreatedAt": retry_at,
    })

    # Job Resource Utilization Updates of attempt 2; unlike the other events they name the run in `resources`.
    # The final one, after the run ended (20:15:00.77):
    files["resource-utilization.json"] = utilization_update(
        "resource-utilization.json", "2026-11-23T20:15:01.003300Z", True,
        dict({"calculatedFrom": retry_at, "calculatedTo": "2026-11-23T20:15:00.772310Z", "resourceUtilizationFinal": True},
             **first_interval((0.417, 1.668, 1.667), (0.444, 1.776, 0))))
    # One while the run goes (not final), with `calculatedTo` before `calculatedFrom` as the User Guide's sample
    # orders them (its comment line is left out: JSON has none):
    files["resource-utilization-running.json"] = utilization_update(
        "resource-utilization-running.json", "2026-11-23T20:13:46.120004Z", False,
        dict({"calculatedTo": "2026-11-23T20:13:45.530218Z", "calculatedFrom": retry_at, "resourceUtilizationFinal": False},
             **first_interval((0.133, 0.533, 0.667), (0.133, 0.533, 0))))
    # A malformed one: no totalResourceUtilization, a negative figure, a non-numeric one, a missing one.
    bad_billed = {"vCPUHour": -0.444, "memoryGBHour": "1.776 GB", "storageGBHour": 0}
    files["resource-utilization-malformed.json"] = utilization_update(
        "resource-utilization-malformed.json", "2026-11-23T20:15:01.003300Z", True,
        {"calculatedFrom": retry_at, "calculatedTo": "2026-11-23T20:15:00.772310Z", "resourceUtilizationFinal": True,
         "resourceUtilizationForInterval": {"vCPUHour": 0.417, "memoryGBHour": 1.668},
         "billedResourceUtilizationForInterval": bad_billed, "totalBilledResourceUtilization": bad_billed})

    app_at = "2026-11-23T20:08:58.410277Z"
    files["application-state-change.json"] = eventbridge(
        "application-state-change.json",
        "EMR Serverless Application State Change",
        "aws.emr-serverless",
        app_at,
        {
            "applicationId": MONITOR_APP_ID,
            "applicationName": "modelop-spark-serverless",
            "arn": "arn:aws:emr-serverless:{}:{}:/applications/{}".format(REGION, ACCOUNT, MONITOR_APP_ID),
            "releaseLabel": RELEASE_LABEL,
            "state": "STARTED",
            "type": "SPARK",
            "createdAt": "2026-11-20T09:00:00.000000Z",
            "updatedAt": app_at,
            "autoStopConfig": {"enabled": True, "idleTimeout": 15},
            "autoStartConfig": {"enabled": True},
        },
    )

    files["scheduled-event.json"] = eventbridge(
        "scheduled-event.json", "Scheduled Event", "aws.events", "2026-11-23T20:30:00Z", {}, resources=[MONITOR_RULE_ARN]
    )

    # A job-run state change whose detail lacks jobRunId (everything else as usual).
    broken = state_change("malformed.json", "RUNNING", "SCHEDULED", "2026-11-23T20:10:00.299487Z")
    del broken["detail"]["jobRunId"]
    files["malformed.json"] = broken
    return {"monitor/" + name: document for name, document in files.items()}


# Expected outcomes: what replaying each sample on its own does (tests/replay.py checks them, and
# events/README.md, "Expected outcomes", explains the vocabulary). A replay starts from an empty
# table and bucket; each stream record's NewImage is put as the row first, and a launched row gets
# its run and staging folder. `seed` adds what else the sample presumes.
NO_BATCH_ITEM_FAILURES = {"batchItemFailures": []}
STAGED = ["ModelOpPySparkDriver.py", "job-metadata.json", "spark_sample_model.py"]
WRITES = ["dynamodb:UpdateItem", "dynamodb:PutItem", "s3:PutObject", "s3:DeleteObjects", "emr-serverless:StartJobRun",
          "emr-serverless:CancelJobRun"]
ORPHAN_ID = "6f7a8b9c-0d1e-4f2a-8b3c-5d6e7f8a9b15"  # a staging folder whose job row is gone
FAILED_DETAILS = "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
MODEL_RESULT = {"jobId": BATCH_ID, "jobType": "MODEL_BATCH_JOB", "function": "action", "result": {"rowCount": 8}}


def launched_seed(run_state, **extra):
    """The monitor samples' world: the batch job as submit leaves it once run MONITOR_RUN_ID started,
    and that run in `run_state`."""
    return {"seed": {"launched": dict({"from": "submit/insert-batch-job.json", "applicationId": MONITOR_APP_ID,
                                       "jobRunId": MONITOR_RUN_ID, "runState": run_state}, **extra)}}


def launched_run(job_id, application, *contains, lacks=(), role=None):
    """The one run submit started for `job_id`, as GetJobRun shows it."""
    run = {"application": application, "state": "SUBMITTED", "sparkSubmitParameters": {"contains": list(contains)}}
    if lacks:
        run["sparkSubmitParameters"]["lacks"] = list(lacks)
    if role:
        run["executionRole"] = role
    return run


def launched_job(**fields):
    return dict({"jobStatus": "WAITING", "emrState": "SUBMITTED", "sparkApplicationId": {"present": True},
                 "emrApplicationId": {"present": True}}, **fields)


def metadata(job_id):
    return "{}/job-metadata.json".format(job_id)


def submit_expected():
    launched_calls = {"include": ["dynamodb:UpdateItem", "s3:PutObject", "emr-serverless:StartJobRun"]}
    return {
        "submit/insert-batch-job.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1,
            "jobs": {BATCH_ID: launched_job(stagingUri=staging_uri(BATCH_ID))},
            "runs": {BATCH_ID: launched_run(BATCH_ID, "modelop-default", "--conf spark.executor.cores=2")},
            "staging": {BATCH_ID: {"contains": STAGED}},
            "files": {metadata(BATCH_ID): {"contains": '"jobFunction": "action"'}},
            "calls": launched_calls, "logs": {"contains": "job run started"}}},
        "submit/insert-test-job.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1, "jobs": {TEST_ID: launched_job()},
            "runs": {TEST_ID: launched_run(TEST_ID, "modelop-default", "--py-files", lacks=["threshold"])},
            "files": {metadata(TEST_ID): {"contains": ['"jobFunction": "metrics"', '"threshold": "0.5"']}},
            "calls": launched_calls}},
        "submit/insert-training-job.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1, "jobs": {TRAINING_ID: launched_job()},
            "runs": {TRAINING_ID: launched_run(TRAINING_ID, "modelop-training", "--conf spark.executor.memory=4g",
                                               lacks=["modelop.serverless"], role=JOB_ROLE_ARN)},
            "files": {metadata(TRAINING_ID): {"contains": '"jobFunction": "train"'}},
            "calls": launched_calls}},
        "submit/insert-other-runtime.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 0, "jobs": {OTHER_RUNTIME_ID: "unchanged"},
            "runs": {OTHER_RUNTIME_ID: None}, "calls": {"total": 0}}},
        "submit/malformed.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1, "jobs": {MALFORMED_BATCH_ID: launched_job()},
            "runs": {MALFORMED_BATCH_ID: launched_run(MALFORMED_BATCH_ID, "modelop-default", "--conf spark.executor.cores=2")},
            "logs": {"contains": "malformed stream record skipped"}}},
        "submit/insert-modelop-job.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1,
            "jobs": {MODELOP_ID: launched_job(
                jobWaitTime={"present": True},
                ignoredJobParameters={"contains": [{"parameter": "--total-executor-cores"}, {"parameter": "-v"}]})},
            "runs": {MODELOP_ID: launched_run(MODELOP_ID, "modelop-default", "--conf spark.executor.memory=512MB",
                                              "--conf spark.modelop.threshold=0.7", "df_sample_scored_input_schema.avsc")},
            "staging": {MODELOP_ID: {"contains": ["df_sample_scored_input_schema.avsc", "job-metadata.json"]}},
            "files": {metadata(MODELOP_ID): {
                "contains": ['"fileUrl": "s3://modelop-data/input/sample_input.csv"',
                             '"originalFileUrl": "http://minio:9000/modelop-data/input/sample_input.csv"'],
                "lacks": [SAMPLE_SECRET, "SAMPLE-ACCESS-KEY"]}},
            "logs": {"contains": "job run started", "lacks": SAMPLE_SECRET}}},
        "submit/modify-not-insert.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 0, "jobs": {MODIFY_ID: "unchanged"},
            "runs": {MODIFY_ID: None}, "calls": {"total": 0}}},
    }


def cleanup_expected():
    def cleaned(job_id, status, **extra):
        expect = {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1,
            "jobs": {job_id: {"jobStatus": status, "cleanedAt": {"present": True}}},
            "staging": {job_id: "emptied"},
            "calls": {"include": ["s3:ListObjectsV2", "s3:DeleteObjects", "dynamodb:UpdateItem"]},
            "logs": {"contains": "staging folder cleaned"},
        }
        expect.update(extra)
        return {"expect": expect}

    untouched = {"calls": {"total": 0}}
    return {
        "cleanup/modify-running-to-complete.json": cleaned(COMPLETE_ID, "COMPLETE"),
        "cleanup/modify-waiting-to-error.json": cleaned(ERROR_ID, "ERROR"),
        "cleanup/modify-cancelled-by-user.json": cleaned(
            CANCELLED_ID, "CANCELLED", runs={CANCELLED_ID: {"state": "CANCELLED"}},
            calls={"include": ["emr-serverless:CancelJobRun", "s3:DeleteObjects", "dynamodb:UpdateItem"]}),
        "cleanup/modify-not-terminal.json": {"expect": dict(
            untouched, response=NO_BATCH_ITEM_FAILURES, delivered=0, jobs={STILL_RUNNING_ID: "unchanged"},
            staging={STILL_RUNNING_ID: "kept"})},
        "cleanup/modify-hostile-staging-uri.json": {"expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1, "jobs": {HOSTILE_ID: {"cleanedAt": None}},
            "staging": {HOSTILE_ID: "kept"}, "calls": {"exclude": ["s3:ListObjectsV2", "s3:DeleteObjects"]},
            "logs": {"contains": ["refusing to delete", "s3://{}/{}".format(STAGING_BUCKET, STAGING_PREFIX)]}}},
        "cleanup/modify-already-final.json": {"expect": dict(
            untouched, response=NO_BATCH_ITEM_FAILURES, delivered=0, jobs={COMPLETE_ID: "unchanged"},
            staging={COMPLETE_ID: "kept"})},
        "cleanup/scheduled-sweep.json": {
            "seed": {"jobsFrom": ["cleanup/modify-running-to-complete.json", "cleanup/modify-not-terminal.json"],
                     "orphans": [ORPHAN_ID]},
            "expect": {
                "response": {"folders": 3, "deleted": sorted([COMPLETE_ID, ORPHAN_ID]), "kept": 1},
                "staging": {COMPLETE_ID: "emptied", ORPHAN_ID: "emptied", STILL_RUNNING_ID: "kept"},
                "calls": {"include": ["s3:ListObjectsV2", "dynamodb:GetItem", "s3:DeleteObjects"]}}},
    }


def monitor_expected():
    def applied(run_state, status, emr_state, **extra):
        jobs = {"jobStatus": status, "emrState": emr_state, "emrLatestState": emr_state,
                "statusHistory": {"contains": {"status": status, "emrState": emr_state}}}
        jobs.update(extra.pop("job", {}))
        expect = {"response": None, "jobs": {BATCH_ID: jobs}, "calls": {"include": ["dynamodb:UpdateItem"]},
                  "logs": {"contains": "job status applied"}}
        expect.update(extra)
        return dict(launched_seed(run_state), expect=expect)

    def ignored(run_state, **extra):
        return dict(launched_seed(run_state), expect=dict({"response": None, "jobs": {BATCH_ID: "unchanged"},
                                                            "calls": {"exclude": WRITES}}, **extra))

    def usage_recorded(final):
        return dict(launched_seed("RUNNING"), expect={"response": None, "calls": {"include": ["dynamodb:UpdateItem"]}, "jobs": {
            BATCH_ID: {"jobStatus": "WAITING", "resourceUsage": {"contains": {"final": final}},
                       "cost": {"contains": {"currency": "USD", "basis": "billed", "region": "us-east-1", "architecture": "X86_64"}}}}})

    final = {"driverLogs": {"present": True}, "jobEndTime": {"present": True}}
    return {
        "monitor/state-submitted.json": ignored("SUBMITTED"),
        "monitor/state-pending.json": applied("PENDING", "WAITING", "PENDING"),
        "monitor/state-queued.json": applied("QUEUED", "WAITING", "QUEUED"),
        "monitor/state-scheduled.json": applied("SCHEDULED", "WAITING", "SCHEDULED"),
        "monitor/state-running.json": applied("RUNNING", "RUNNING", "RUNNING", job={"jobRunTime": {"present": True}}),
        "monitor/state-running-no-name.json": applied("RUNNING", "RUNNING", "RUNNING",
                                                      calls={"include": ["dynamodb:Query", "dynamodb:UpdateItem"]}),
        # emrState keeps the last state this code knows; emrLatestState and the history show the new one.
        "monitor/state-unknown.json": applied("RUNNING", "WAITING", "HIBERNATING", job={"emrState": "SUBMITTED"},
                                              logs={"contains": ["unknown EMR Serverless state", "job status applied"]}),
        "monitor/state-cancelling.json": applied("CANCELLING", "WAITING", "CANCELLING"),
        "monitor/state-cancelled.json": applied("CANCELLED", "CANCELLED", "CANCELLED", job=dict(
            final, errorMessage={"contains": "EMR Serverless job run CANCELLED"})),
        "monitor/state-failed.json": dict(applied("FAILED", "ERROR", "FAILED", job=dict(
            final, errorMessage={"contains": FAILED_DETAILS}), calls={"include": ["emr-serverless:GetJobRun", "dynamodb:UpdateItem"]}),
            **launched_seed("FAILED", stateDetails=FAILED_DETAILS)),
        # A run EMR ended for its execution timeout (or its queue timeout) ends the job in ERROR,
        # classed TIMEOUT (QUEUE_TIMEOUT): the user did not cancel it.
        "monitor/state-timed-out.json": dict(applied("CANCELLED", "ERROR", "CANCELLED", job=dict(
            final, errorMessage={"contains": "execution timeout of 30 minutes"}, failure={"present": True})),
            **launched_seed("CANCELLED", stateDetails=TIMED_OUT_DETAILS)),
        "monitor/state-queue-timed-out.json": dict(applied("FAILED", "ERROR", "FAILED", job=dict(
            final, errorMessage={"contains": "queue timeout"}, failure={"present": True})),
            **launched_seed("FAILED", stateDetails=QUEUE_TIMED_OUT_DETAILS)),
        "monitor/state-success.json": dict(applied("SUCCESS", "COMPLETE", "SUCCESS", job=dict(
            final, modelResult=MODEL_RESULT, outputFiles={"present": True})), **launched_seed("SUCCESS", result=MODEL_RESULT)),
        "monitor/job-run-retry.json": dict(launched_seed("RUNNING", attempt=2), expect={
            "response": None, "jobs": {BATCH_ID: {"jobStatus": "WAITING", "statusHistory": {"contains": {"emrState": "RETRY attempt 2"}}}},
            "calls": {"include": ["dynamodb:UpdateItem"]}}),
        # Utilization updates record the run's usage on the job, never its status (still WAITING as submit left it).
        "monitor/resource-utilization.json": usage_recorded(final=True),
        "monitor/resource-utilization-running.json": usage_recorded(final=False),
        "monitor/resource-utilization-malformed.json": ignored("RUNNING"),
        "monitor/application-state-change.json": ignored("RUNNING", calls={"total": 0}),
        "monitor/scheduled-event.json": dict(launched_seed("SUCCESS", result=MODEL_RESULT), expect={
            "response": None, "jobs": {BATCH_ID: dict(final, jobStatus="COMPLETE", emrState="SUCCESS", modelResult=MODEL_RESULT)},
            "calls": {"include": ["dynamodb:Query", "emr-serverless:GetJobRun", "dynamodb:UpdateItem"]},
            "logs": {"contains": "reconciliation sweep done"}}),
        "monitor/malformed.json": ignored("RUNNING", calls={"total": 0}, logs={"contains": "malformed event acknowledged"}),
    }


# Bridge samples (events/bridge/): the bridge's schedule, and the jobs table's stream as its
# mapping delivers it (MODIFY of rows with `modelManage`, infra/template.yaml). A replay seeds the
# model-manage emulator (tests/emulator/model_manage.py) with the jobs `seed.modelManage` lists.
POLLED_ID = "8b9c0d1e-2f3a-4b4c-9d5e-7f8a9b0c1d18"
OTHER_ENGINE_ID = "9c0d1e2f-3a4b-4c5d-8e6f-8a9b0c1d2e19"
BRIDGED_ID = "6f7a8b9c-0d1e-4f2a-9b3c-5d6e7f8a9b16"
NOT_BRIDGED_ID = "7a8b9c0d-1e2f-4a3b-8c4d-6e7f8a9b0c17"
BRIDGE_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/modelop-bridge-poll"
CLAIMANT = "internal-client@modelop-jobs"
ENDED_LINE = "2026/11/24 10:03:00 [info] EMR Serverless job run 00fabc0000000016 ended SUCCESS"
DRIVER_LINE = "2026/11/24 10:03:00 [info] driver: scored 8 rows"
CLAIM_LINE = "2026/11/24 10:00:00 [info] claimed for AWS EMR Serverless [claimed by modelop-spark-serverless {}]".format(CLAIMANT)



def epoch_ms(timestamp):
    return epoch_seconds(timestamp) * 1000 + int(timestamp[20:23])


def model_manage_job(job_id, created, **fields):
    """A ModelOp-shaped job as model-manage stores it (no row-only fields)."""
    document = modelop_job(job_id, created)
    del document["_links"]
    document.update(dict(version=0, lastModifiedDate=created), **fields)
    return document


def bridge_events():
    scheduled = {
        "version": "0",
        "id": "2c4e6a8b-1d3f-4b5a-9c7e-0f2a4c6e8b1d",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-24T10:00:00Z",
        "region": REGION,
        "resources": [BRIDGE_RULE_ARN],
        "detail": {},
    }
    # A bridged job whose run just succeeded: the monitor's final write of the row.
    claimed, running, ended = "2026-11-24T10:00:00.000Z", "2026-11-24T10:01:00.000Z", "2026-11-24T10:03:00.000Z"
    history = [{"status": "WAITING", "at": claimed}, {"status": "WAITING", "emrState": "SUBMITTED", "at": "2026-11-24T10:00:01.000Z"},
               {"status": "RUNNING", "emrState": "RUNNING", "at": running}]
    document = model_manage_job(BRIDGED_ID, "2026-11-24T09:59:58.000Z")
    document.pop("version")
    old = launched(dict(document, modelManage={"source": "model-manage", "version": 1, "claimedAt": claimed, "claimant": CLAIMANT},
                        jobWaitTime=epoch_ms(claimed), jobRunTime=epoch_ms(running),
                        jobMessages=[CLAIM_LINE, "2026/11/24 10:00:01 [info] EMR Serverless job run 00fabc0000000016 started"]),
                   "RUNNING", running, "00fabc0000000016", history)
    new = dict(old, jobStatus="COMPLETE", emrState="SUCCESS", updatedAt=ended, jobEndTime=epoch_ms(ended),
               statusHistory=history + [{"status": "COMPLETE", "emrState": "SUCCESS", "at": ended}],
               jobMessages=old["jobMessages"] + [ENDED_LINE, DRIVER_LINE])
    bridged = record("MODIFY", "700000000000000800001", ended, new=new, old=old)
    # The same change of a row some other writer put in the table: no `modelManage`.
    plain = transition(NOT_BRIDGED_ID, "700000000000000800002", "RUNNING", "COMPLETE", "2026-11-24T10:04:00.000Z", "00fabc0000000017",
                       {"emrState": "SUCCESS"})
    return {
        "bridge/scheduled-poll.json": scheduled,
        "bridge/modify-bridged-row.json": {"Records": [bridged]},
        "bridge/modify-not-bridged.json": {"Records": [plain]},
    }


def bridge_expected():
    created = "2026-11-24T09:59:30.000Z"
    polled = model_manage_job(POLLED_ID, created, jobStatus="CREATED")
    other = model_manage_job(OTHER_ENGINE_ID, created, jobStatus="CREATED")
    other["targetEngine"] = dict(other["targetEngine"], engineType=OTHER_RUNTIME, name="spark-runtime-1")
    # The bridged job as model-manage holds it before the record: claimed, then RUNNING written back.
    bridged = model_manage_job(BRIDGED_ID, "2026-11-24T09:59:58.000Z", version=2, jobStatus="RUNNING",
                               jobWaitTime=epoch_ms("2026-11-24T10:00:00.000Z"), jobRunTime=epoch_ms("2026-11-24T10:01:00.000Z"),
                               jobMessages=[CLAIM_LINE])
    not_bridged = {"calls": {"exclude": WRITES}, "modelManageCalls": {"total": 0}}
    return {
        "bridge/scheduled-poll.json": {"seed": {"modelManage": [polled, other]}, "expect": {
            "response": {"polls": 1, "bridged": [POLLED_ID], "recovered": [], "lost": [], "refused": [], "cancelled": [], "failed": []},
            "jobs": {POLLED_ID: {"jobStatus": "CREATED", "modelManage": {"contains": {"source": "model-manage", "claimant": CLAIMANT}},
                                 "updatedAt": {"present": True}, "_links": None},
                     OTHER_ENGINE_ID: None},
            "modelManage": {POLLED_ID: {"jobStatus": "WAITING", "jobWaitTime": {"present": True},
                                        "jobMessages": {"present": True}},
                            OTHER_ENGINE_ID: "unchanged"},
            "calls": {"include": ["secretsmanager:GetSecretValue", "dynamodb:PutItem"]},
            "modelManageCalls": {"include": ["POST oauth/token", "PATCH jobs/{id}"]},
            "logs": {"contains": ["claimed in model-manage: CREATED -> WAITING", "bridge polls done"]}}},
        "bridge/modify-bridged-row.json": {"seed": {"modelManage": [bridged]}, "expect": {
            "response": NO_BATCH_ITEM_FAILURES, "delivered": 1, "jobs": {BRIDGED_ID: "unchanged"},
            "modelManage": {BRIDGED_ID: {
                "jobStatus": "COMPLETE", "jobResult": "SUCCESS", "jobEndTime": epoch_ms("2026-11-24T10:03:00.000Z"),
                "jobRunTime": epoch_ms("2026-11-24T10:01:00.000Z"), "lastUpdateFromRuntime": "2026-11-24T10:03:00.000Z",
                "jobMessages": {"contains": [CLAIM_LINE, ENDED_LINE, DRIVER_LINE]}}},
            "calls": {"exclude": WRITES},
            "modelManageCalls": {"include": ["GET jobs/{id}", "PATCH jobs/{id}"]},
            "logs": {"contains": "written back"}}},
        "bridge/modify-not-bridged.json": {"expect": dict(
            not_bridged, response=NO_BATCH_ITEM_FAILURES, delivered=0, jobs={NOT_BRIDGED_ID: "unchanged"})},
    }


def expected_outcomes():
    outcomes = {}
    for part in (submit_expected(), cleanup_expected(), monitor_expected(), bridge_expected()):
        outcomes.update(part)
    return dict(sorted(outcomes.items()))


def documents():
    """Every sample file, by path under events/, and expected.json."""
    files = {"submit/" + name: {"Records": records} for name, records in events().items()}
    files.update(cleanup_events())
    files.update(monitor_events())
    files.update(bridge_events())
    files["expected.json"] = expected_outcomes()
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    stale = []
    for name, document in documents().items():
        path = OUT / name
        text = json.dumps(document, indent=2) + "\n"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print("wrote {}".format(path.relative_to(ROOT)))
    if stale:
        print("stale (run python3 events/generate.py): {}".format(", ".join(stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
