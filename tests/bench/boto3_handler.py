"""The usual alternative, for the cold-start benchmark: a Python Lambda handler doing the same
initialisation as the Rust functions' cold start with boto3, then polling the Runtime API.

Init = read the same configuration from the environment, import boto3, and build the same four
clients (DynamoDB, S3 with path-style addressing, EMR Serverless, CloudWatch Logs). Then it asks
``GET /2018-06-01/runtime/invocation/next`` like any runtime and answers ``{}`` to each event.
"""

import json
import os
import urllib.request

import boto3
from botocore.config import Config

REQUIRED = ("JOBS_TABLE", "STAGING_BUCKET")
settings = {k: os.environ[k].strip() for k in REQUIRED}
path_style = os.environ.get("S3_FORCE_PATH_STYLE", "false").strip().lower() == "true"
emr_region = os.environ.get("EMR_REGION") or None

session = boto3.session.Session()
dynamodb = session.client("dynamodb")
s3 = session.client("s3", config=Config(s3={"addressing_style": "path" if path_style else "auto"}))
emr = session.client("emr-serverless", region_name=emr_region)
logs = session.client("logs", region_name=emr_region)

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"
while True:
    with urllib.request.urlopen(api + "/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        r.read()
    req = urllib.request.Request(api + f"/{request_id}/response", data=json.dumps({}).encode(), method="POST")
    urllib.request.urlopen(req).read()
