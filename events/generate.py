#!/usr/bin/env python3
"""Writes the sample DynamoDB stream events in events/submit/.

Each file is the exact payload AWS Lambda delivers from the jobs table's stream
(NEW_AND_OLD_IMAGES), with DynamoDB-JSON typed attributes. The primary model source is inlined from
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
OUT = ROOT / "events" / "submit"
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    stale = []
    for name, records in events().items():
        path = OUT / name
        text = json.dumps({"Records": records}, indent=2) + "\n"
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
