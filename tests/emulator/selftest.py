"""Self-test of the emulators in this directory.

    .venv/bin/python tests/emulator/selftest.py [-v]

Runs moto_server.py (ready file, SIGTERM, parent death) and
lambda_runtime_api.py against a fake function: this same file run with
``--fake-runtime``, a stdlib Runtime API client loop shaped like the
``lambda_runtime`` crate's (keep-alive, /next, /response, /error, /init/error),
whose behaviour the FAKE_MODE variable picks:

  echo        answer each event with what it received (an event
              {"fail": true} gets an error response instead)
  init-error  post to /runtime/init/error and exit 1
  crash       exit 3 on the first event
  hang        never answer

The EMR Serverless emulator's own tests are in test_emr_serverless.py.
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fake-runtime"]:
        sys.exit(fake_runtime())
    unittest.main()
