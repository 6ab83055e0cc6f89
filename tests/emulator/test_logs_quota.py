"""The CloudWatch Logs quota front (logs_quota.py): GetLogEvents above the rate is answered as CloudWatch Logs
answers it, everything else passes, and the SDK reads the refusal as throttling."""
from __future__ import annotations

import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_endpoint import Endpoint  # noqa: E402
from logs_quota import LogsQuotaFront, Quota  # noqa: E402

PAGE = {"events": [{"timestamp": 1, "message": "line", "ingestionTime": 1}], "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}


class Upstream(BaseHTTPRequestHandler):
    """Stands in for moto: every call answers one page."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Upstream.seen.append(self.headers.get("X-Amz-Target", ""))
        body = json.dumps(PAGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def front():
    upstream = Endpoint(Upstream, "upstream").start()
    Upstream.seen = []
    front = LogsQuotaFront(upstream.endpoint, rate=3, clock=lambda: 0.0).start()  # time stands still
    yield front
    front.stop()
    upstream.stop()


def logs_client(endpoint: str):
    return boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                        aws_secret_access_key="t", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def test_get_log_events_above_the_rate_is_throttled_as_cloudwatch_logs_does(front: LogsQuotaFront) -> None:
    logs = logs_client(front.endpoint)
    answers = []
    for _ in range(5):
        try:
            logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=False)
            answers.append("ok")
        except ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answers == ["ok", "ok", "ok", "ThrottlingException", "ThrottlingException"]
    assert front.quota.state() == {"rate": 3, "accepted": 3, "throttled": 2}
    # Other operations are not under the quota.
    logs.describe_log_streams(logGroupName="g")
    assert Upstream.seen.count("Logs_20140328.DescribeLogStreams") == 1 and Upstream.seen.count("Logs_20140328.GetLogEvents") == 3


def test_the_admin_route_sets_the_rate_and_resets_the_counts(front: LogsQuotaFront) -> None:
    def admin(body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(front.endpoint + "/_emulator/logs/quota", data=data), timeout=5) as resp:
            return json.load(resp)

    assert admin() == {"rate": 3, "accepted": 0, "throttled": 0}
    assert admin({"rate": None, "reset": True}) == {"rate": None, "accepted": 0, "throttled": 0}
    logs = logs_client(front.endpoint)
    for _ in range(10):
        logs.get_log_events(logGroupName="g", logStreamName="s")
    assert admin()["accepted"] == 10


def test_the_bucket_refills_at_the_rate() -> None:
    now = [100.0]
    quota = Quota(2, clock=lambda: now[0])
    assert [quota.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.5  # half a second later: one more token
    assert [quota.take(), quota.take()] == [True, False]
    now[0] += 10  # never more than one second's worth
    assert [quota.take() for _ in range(3)] == [True, True, False]
