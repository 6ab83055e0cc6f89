#!/usr/bin/env python3
"""Writes the sample events in events/submit/ and events/cleanup/.

Each file is the exact payload AWS Lambda delivers from the jobs table's stream
(NEW_AND_OLD_IMAGES), with DynamoDB-JSON typed attributes, or (events/cleanup/scheduled-sweep.json)
the EventBridge scheduled event that starts the orphan sweep. The primary model source is inlined from
tests/models/spark_sample_model.py, so rerun this script whenever that model changes:

    python3 events/generate.py           # rewrite the files
    python3 events/generate.py --check   # exit 1 if a committed file is stale

Output is deterministic: fixed ids, timestamps and sequence numbers; no clock, no randomness.
Standard library only, Python 3.9+.
"""

import argparse
import calendar
import datetime
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "events"
MODEL_FILE = ROOT / "tests" / "models" / "spark_sample_model.py"

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
    # The broken record has no usable `dynamodb` object, so no sequence number Lambda could report.
    broken = envelope("INSERT", "malformed-record", "this is not a stream record")
    return {
        "insert-batch-job.json": [record("INSERT", "400000000000000500001", batch["createdDate"], new=batch)],
        "insert-test-job.json": [record("INSERT", "400000000000000500002", test["createdDate"], new=test)],
        "insert-training-job.json": [record("INSERT", "400000000000000500003", training["createdDate"], new=training)],
        "insert-other-runtime.json": [record("INSERT", "400000000000000500004", other["createdDate"], new=other)],
        "malformed.json": [broken, record("INSERT", "400000000000000500006", valid["createdDate"], new=valid)],
        "modify-not-insert.json": [record("MODIFY", "400000000000000500008", claimed_at, new=waiting, old=created)],
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
        "cleanup/scheduled-sweep.json": scheduled,
    }


def documents():
    """Every sample file, by path under events/."""
    files = {"submit/" + name: {"Records": records} for name, records in events().items()}
    files.update(cleanup_events())
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
