"""Self-test of the emulators in this directory.

    .venv/bin/python tests/emulator/selftest.py [-v]

Runs moto_server.py (ready file, SIGTERM, parent death, the EMR Serverless
job-run state admin route checked with boto3) and
lambda_runtime_api.py against a fake function: this same file run with
``--fake-runtime``, a stdlib Runtime API client loop shaped like the
``lambda_runtime`` crate's (keep-alive, /next, /response, /error, /init/error),
whose behaviour the FAKE_MODE variable picks:

  echo        answer each event with what it received (an event
              {"fail": true} gets an error response instead)
  init-error  post to /runtime/init/error and exit 1
  crash       exit 3 on the first event
  hang        never answer
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
API = "/2018-06-01/runtime"


def fake_runtime() -> int:
    mode = os.environ.get("FAKE_MODE", "echo")
    conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    print(json.dumps({"level": "INFO", "message": f"fake runtime up, mode {mode}"}), flush=True)
    if mode == "init-error":
        body = json.dumps({"errorType": "Config", "errorMessage": "missing TABLE_NAME"})
        conn.request("POST", f"{API}/init/error", body, {"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"})
        conn.getresponse().read()
        return 1
    while True:
        conn.request("GET", f"{API}/invocation/next")
        resp = conn.getresponse()
        event = json.loads(resp.read())
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        print(f"got event {request_id}", file=sys.stderr, flush=True)
        if mode == "crash":
            return 3
        if mode == "hang":
            time.sleep(3600)
        if isinstance(event, dict) and event.get("fail"):
            body = json.dumps({"errorType": "Boom", "errorMessage": "asked to fail"})
            conn.request("POST", f"{API}/invocation/{request_id}/error", body, {"Lambda-Runtime-Function-Error-Type": "unhandled"})
        else:
            body = json.dumps({
                "echo": event,
                "requestId": request_id,
                "deadlineMs": int(resp.getheader("Lambda-Runtime-Deadline-Ms")),
                "arn": resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
                "traceId": resp.getheader("Lambda-Runtime-Trace-Id"),
                "env": {k: os.environ.get(k) for k in (
                    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_FORMAT", "EXTRA")},
            })
            conn.request("POST", f"{API}/invocation/{request_id}/response", body)
        ack = conn.getresponse()
        ack.read()
        assert ack.status == 202, ack.status


class RuntimeApiTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.binary = os.path.join(self.tmp.name, "fake-fn")
        with open(self.binary, "w") as f:
            f.write(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.abspath(__file__)}" --fake-runtime\n')
        os.chmod(self.binary, 0o755)

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def event(self, name: str, obj: object) -> str:
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def run_emulator(self, mode: str, events: list[str], *extra: str) -> tuple[int, dict]:
        cmd = [sys.executable, os.path.join(HERE, "lambda_runtime_api.py"), "--binary", self.binary,
               "--env", f"FAKE_MODE={mode}", *extra]
        for e in events:
            cmd += ["--event", e]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return proc.returncode, json.loads(proc.stdout)

    def test_responses_and_errors(self) -> None:
        a = self.event("a.json", {"n": 1})
        b = self.event("b.json", {"fail": True})
        c = self.event("c.json", [1, 2])
        start_ms = time.time() * 1000
        rc, out = self.run_emulator("echo", [a, b, c], "--timeout-seconds", "7", "--env", "EXTRA=x=y")
        self.assertEqual(rc, 0, out)
        self.assertIsNone(out["initError"])
        self.assertIsNone(out["failure"])
        self.assertEqual([i["status"] for i in out["invocations"]], ["response", "error", "response"])
        first = out["invocations"][0]
        self.assertEqual(first["event"], a)
        self.assertEqual(first["body"]["echo"], {"n": 1})
        self.assertEqual(first["body"]["requestId"], first["requestId"])
        self.assertAlmostEqual(first["body"]["deadlineMs"], start_ms + 7000, delta=5000)
        self.assertEqual(first["body"]["arn"], "arn:aws:lambda:us-east-1:123456789012:function:fake-fn")
        self.assertTrue(first["body"]["traceId"].startswith("Root=1-"))
        self.assertEqual(first["body"]["env"], {
            "AWS_LAMBDA_FUNCTION_NAME": "fake-fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_FORMAT": "JSON", "EXTRA": "x=y"})
        self.assertEqual(out["invocations"][1]["body"], {"errorType": "Boom", "errorMessage": "asked to fail"})
        self.assertEqual(out["invocations"][1]["errorType"], "unhandled")
        self.assertEqual(out["invocations"][2]["body"]["echo"], [1, 2])
        self.assertIn("fake runtime up", out["binaryStderr"])
        self.assertEqual(out["binaryStderr"].count("got event"), 3)

    def test_init_error(self) -> None:
        rc, out = self.run_emulator("init-error", [self.event("a.json", {})])
        self.assertEqual(rc, 1)
        self.assertEqual(out["initError"], {"errorType": "Config", "errorMessage": "missing TABLE_NAME"})
        self.assertEqual(out["invocations"][0]["status"], "incomplete")

    def test_crash(self) -> None:
        rc, out = self.run_emulator("crash", [self.event("a.json", {}), self.event("b.json", {})])
        self.assertEqual(rc, 1)
        self.assertEqual(out["binaryExitCode"], 3)
        self.assertEqual(len(out["invocations"]), 1)
        self.assertIn("exited with code 3", out["failure"])

    def test_timeout_kills_binary(self) -> None:
        t = time.monotonic()
        rc, out = self.run_emulator("hang", [self.event("a.json", {})], "--timeout-seconds", "1")
        self.assertEqual(rc, 1)
        self.assertEqual(out["invocations"][0]["status"], "timeout")
        self.assertIsNone(out["binaryExitCode"])  # it was still running, and was stopped
        self.assertLess(time.monotonic() - t, 15)


class MotoServerTest(unittest.TestCase):
    def start(self, ready: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "moto_server.py"), "--ready-file", ready, "--quiet"],
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def test_ready_file_and_sigterm(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready.json")
            proc = self.start(ready)
            line = json.loads(proc.stdout.readline())
            with open(ready) as f:
                self.assertEqual(json.load(f), line)
            self.assertEqual(line["pid"], proc.pid)
            self.assertRegex(line["endpoint"], r"^http://127\.0\.0\.1:\d+$")
            with urllib.request.urlopen(line["endpoint"] + "/_emulator/health") as r:
                self.assertEqual(json.load(r), {"status": "ok"})
            # An unsigned moto call: reset all state.
            req = urllib.request.Request(line["endpoint"] + "/moto-api/reset", method="POST")
            with urllib.request.urlopen(req) as r:
                self.assertEqual(r.status, 200)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)
            self.assertEqual(sorted(os.listdir(tmp)), ["ready.json"])

    def test_stops_when_parent_dies(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready.json")
            launcher = (
                "import subprocess, sys\n"
                f"p = subprocess.Popen([sys.executable, {os.path.join(HERE, 'moto_server.py')!r}, "
                f"'--ready-file', {ready!r}, '--quiet'], stdout=subprocess.PIPE)\n"
                "sys.stdout.write(p.stdout.readline().decode())\n"
            )
            out = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=60)
            endpoint = json.loads(out.stdout)["endpoint"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(endpoint + "/_emulator/health", timeout=1).close()
                except OSError:
                    return
                time.sleep(0.2)
            self.fail("moto server still answering 10s after its parent died")


class EmrServerlessJobRunStateRouteTest(unittest.TestCase):
    """``POST /_emulator/emr-serverless/job-runs/state`` against a running server, checked with boto3."""

    ROUTE = "/_emulator/emr-serverless/job-runs/state"

    @classmethod
    def setUpClass(cls) -> None:
        import boto3

        cls.tmp = tempfile.TemporaryDirectory()
        cls.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "moto_server.py"), "--ready-file", os.path.join(cls.tmp.name, "ready.json"), "--quiet"],
            stdout=subprocess.PIPE, text=True)
        cls.endpoint = json.loads(cls.proc.stdout.readline())["endpoint"]
        cls.emr = boto3.client("emr-serverless", endpoint_url=cls.endpoint, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.proc.send_signal(signal.SIGTERM)
        try:
            cls.proc.wait(10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait(5)
        cls.proc.stdout.close()
        cls.tmp.cleanup()

    def new_run(self) -> tuple[str, str]:
        app = self.emr.create_application(name="selftest", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
        run = self.emr.start_job_run(
            applicationId=app, executionRoleArn="arn:aws:iam::123456789012:role/x", name="selftest-job",
            jobDriver={"sparkSubmit": {"entryPoint": "s3://bucket/driver.py"}})["jobRunId"]
        return app, run

    def post(self, body: object) -> tuple[int, dict]:
        req = urllib.request.Request(self.endpoint + self.ROUTE, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.load(e)

    def get_run(self, app: str, run: str) -> dict:
        return self.emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]

    def test_running_then_failed_with_details(self) -> None:
        app, run = self.new_run()
        self.assertEqual(self.get_run(app, run)["state"], "SUCCESS")  # moto's own starting point

        status, body = self.post({"applicationId": app, "jobRunId": run, "state": "RUNNING"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["applicationId"], body["jobRunId"], body["state"]), (app, run, "RUNNING"))
        running = self.get_run(app, run)
        self.assertEqual(running["state"], "RUNNING")
        self.assertNotIn("stateDetails", running)
        self.assertNotIn("attempt", running)
        self.assertGreater(running["updatedAt"], running["createdAt"])

        details = "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
        status, body = self.post({"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": details,
                                  "attempt": 2, "region": "us-east-1", "accountId": "123456789012"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["state"], body["stateDetails"], body["attempt"]), ("FAILED", details, 2))
        failed = self.get_run(app, run)
        self.assertEqual((failed["state"], failed["stateDetails"], failed["attempt"]), ("FAILED", details, 2))
        self.assertGreaterEqual(failed["updatedAt"], running["updatedAt"])
        summary = self.emr.list_job_runs(applicationId=app)["jobRuns"][0]
        self.assertEqual((summary["state"], summary["stateDetails"]), ("FAILED", details))

        # No stateDetails: cleared; attempt not given: kept.
        status, body = self.post({"applicationId": app, "jobRunId": run, "state": "CANCELLED", "stateDetails": None})
        self.assertEqual(status, 200, body)
        cancelled = self.get_run(app, run)
        self.assertEqual(cancelled["state"], "CANCELLED")
        self.assertNotIn("stateDetails", cancelled)
        self.assertEqual(cancelled["attempt"], 2)

    def test_unknown_run_or_application_is_404(self) -> None:
        app, run = self.new_run()
        status, body = self.post({"applicationId": app, "jobRunId": "00fnosuchrun0000", "state": "RUNNING"})
        self.assertEqual(status, 404, body)
        self.assertIn("00fnosuchrun0000", body["message"])
        status, body = self.post({"applicationId": "00fnosuchapp0000", "jobRunId": run, "state": "RUNNING"})
        self.assertEqual(status, 404, body)
        # The run exists, but in us-east-1 of the default account only.
        status, body = self.post({"applicationId": app, "jobRunId": run, "state": "RUNNING", "region": "eu-west-1"})
        self.assertEqual(status, 404, body)
        self.assertEqual(self.get_run(app, run)["state"], "SUCCESS")

    def test_bad_bodies_are_400(self) -> None:
        app, run = self.new_run()
        for bad in (
            None,
            [app, run, "RUNNING"],
            {"jobRunId": run, "state": "RUNNING"},
            {"applicationId": app, "jobRunId": run},
            {"applicationId": app, "jobRunId": run, "state": "DONE"},
            {"applicationId": app, "jobRunId": run, "state": 3},
            {"applicationId": app, "jobRunId": run, "state": "FAILED", "stateDetails": {"a": 1}},
            {"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": "2"},
            {"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": True},
            {"applicationId": app, "jobRunId": run, "state": "RUNNING", "attempt": 0},
            {"applicationId": app, "jobRunId": run, "state": "RUNNING", "accountId": "42"},
            {"applicationId": app, "jobRunId": run, "state": "RUNNING", "jobRunState": "RUNNING"},
        ):
            with self.subTest(body=bad):
                status, body = self.post(bad)
                self.assertEqual(status, 400, body)
                self.assertIsInstance(body["message"], str)
        self.assertEqual(self.get_run(app, run)["state"], "SUCCESS")

    def test_unknown_state_only_when_allowed(self) -> None:
        app, run = self.new_run()
        status, body = self.post({"applicationId": app, "jobRunId": run, "state": "HIBERNATING"})
        self.assertEqual(status, 400, body)
        status, body = self.post({"applicationId": app, "jobRunId": run, "state": "HIBERNATING", "allowUnknownState": True})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.get_run(app, run)["state"], "HIBERNATING")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fake-runtime"]:
        sys.exit(fake_runtime())
    unittest.main()
