"""The request log front (request_log.py): every request reaches the upstream unchanged, answered as the upstream
answered it, and is recorded as its operation; the admin route reads the log; the command line announces itself."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import boto3
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_endpoint import Endpoint  # noqa: E402
from request_log import RequestLogFront, operation_of  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Upstream(BaseHTTPRequestHandler):
    """Stands in for an emulator: a DynamoDB GetItem answers an item, a REST GET answers its own path, anything
    else 404 with an error type."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, bytes]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Upstream.seen.append((self.command, self.path, body))
        target = self.headers.get("X-Amz-Target", "")
        if target == "DynamoDB_20120810.GetItem":
            status, answer, extra = 200, {"Item": {"id": {"S": json.loads(body)["Key"]["id"]["S"]}}}, {}
        elif self.command == "GET":
            status, answer, extra = 200, {"path": self.path}, {}
        else:
            status, answer, extra = 404, {"message": "no such thing"}, {"x-amzn-ErrorType": "ResourceNotFoundException"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture()
def front():
    upstream = Endpoint(Upstream, "upstream").start()
    Upstream.seen = []
    front = RequestLogFront(upstream.endpoint).start()
    yield front
    front.stop()
    upstream.stop()


def logged(endpoint: str) -> list[str]:
    with urllib.request.urlopen(endpoint + "/_emulator/requests", timeout=10) as r:
        return json.load(r)["requests"]


def test_operations_are_recorded_in_order_and_answered_as_upstream_answers(front: RequestLogFront) -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=front.endpoint, region_name="us-east-1", aws_access_key_id="t",
                            aws_secret_access_key="t")
    item = dynamodb.get_item(TableName="jobs", Key={"id": {"S": "job-1"}})["Item"]
    assert item == {"id": {"S": "job-1"}}, "the upstream's answer, passed back"
    with urllib.request.urlopen(front.endpoint + "/applications/app-1/jobruns/run-1?attempt=2", timeout=10) as r:
        assert json.load(r) == {"path": "/applications/app-1/jobruns/run-1?attempt=2"}
    request = urllib.request.Request(front.endpoint + "/applications/app-1/jobruns/run-1", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404 and refused.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"

    expected = ["GetItem", "GET /applications/app-1/jobruns/run-1?attempt=2", "DELETE /applications/app-1/jobruns/run-1"]
    assert logged(front.endpoint) == expected
    assert logged(front.endpoint) == expected, "reading the log is not recorded"
    assert [(method, path) for method, path, _ in Upstream.seen] == [
        ("POST", "/"), ("GET", "/applications/app-1/jobruns/run-1?attempt=2"), ("DELETE", "/applications/app-1/jobruns/run-1")], \
        "nor forwarded"
    assert json.loads(Upstream.seen[0][2])["TableName"] == "jobs", "the body reaches the upstream unchanged"


def test_an_error_of_the_upstream_reaches_the_sdk_as_it_was(front: RequestLogFront) -> None:
    emr = boto3.client("emr-serverless", endpoint_url=front.endpoint, region_name="us-east-1", aws_access_key_id="t",
                       aws_secret_access_key="t")
    with pytest.raises(ClientError) as info:
        emr.cancel_job_run(applicationId="app-1", jobRunId="run-1")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "DELETE /applications/app-1/jobruns/run-1" in logged(front.endpoint)


def test_operation_names() -> None:
    assert operation_of("POST", "/", "Logs_20140328.GetLogEvents") == "GetLogEvents"
    assert operation_of("POST", "/", "DynamoDB_20120810.Query") == "Query"
    assert operation_of("GET", "/applications?states=STARTED", None) == "GET /applications?states=STARTED"


def test_command_line_announces_its_endpoint_and_stops_on_sigterm() -> None:
    upstream = Endpoint(Upstream, "upstream").start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready.json")
            proc = subprocess.Popen([sys.executable, os.path.join(HERE, "request_log.py"), "--upstream", upstream.endpoint,
                                     "--ready-file", ready, "--quiet"], stdout=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 30
                while not os.path.exists(ready):
                    assert time.monotonic() < deadline and proc.poll() is None, "request_log.py did not start"
                    time.sleep(0.05)
                with open(ready) as f:
                    announced = json.loads(f.read())
                assert announced["pid"] == proc.pid and announced["endpoint"].startswith("http://127.0.0.1:")
                assert logged(announced["endpoint"]) == []
                proc.terminate()
                assert proc.wait(timeout=10) == 0
                assert proc.stdout.read() == "", "--quiet prints nothing"
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        upstream.stop()
