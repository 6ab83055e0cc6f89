"""Tests of local_aws.py: its stream plumbing (no servers: the SAM filters, batches, and
re-delivery from the record a batch item failure reports), and the functions' lifecycle under the
stack (a stand-in function binary: restarted after a crash, stopped on a timeout, and the stack's
temporary folder removed when it stops)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import local_aws  # noqa: E402


def record(seq: int, event: str, status: str, runtime: str = "SPARK_SERVERLESS_RUNTIME", old: str = "RUNNING") -> dict:
    """A stream record; a MODIFY also carries an old image whose status is ``old``."""
    image = {"id": {"S": f"job-{seq}"}, "jobStatus": {"S": status}, "runtimeType": {"S": runtime}}
    change = {"Keys": {"id": image["id"]}, "NewImage": image, "SequenceNumber": str(seq)}
    if event == "MODIFY":
        change["OldImage"] = dict(image, jobStatus={"S": old})
    return {"eventID": str(seq), "eventName": event, "dynamodb": change}


class FakeStreams:
    """One shard read in order: an iterator is a position in it, whatever the records' numbers."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def describe_stream(self, StreamArn: str) -> dict:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str) -> dict:
        assert ShardIteratorType == "TRIM_HORIZON"
        return {"ShardIterator": "0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict:
        start = int(ShardIterator)
        page = self.records[start:start + Limit]
        return {"Records": page, "NextShardIterator": str(start + len(page))}


class FakeFunction:
    def __init__(self, fail_once_at: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_once_at = fail_once_at

    def invoke(self, payload: dict) -> tuple[str, dict]:
        seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in payload["Records"]]
        self.batches.append(seqs)
        if self.fail_once_at in seqs:
            self.fail_once_at = None
            return "response", {"batchItemFailures": [{"itemIdentifier": str(seqs[seqs.index(seqs[0]) + 1])}]}
        return "response", {"batchItemFailures": []}


def drain(mapping: local_aws.StreamMapping) -> None:
    for _ in range(20):
        if not mapping.poll():
            return


def test_filters_follow_the_template():
    assert local_aws.submit_filter(record(1, "INSERT", "CREATED"))
    assert not local_aws.submit_filter(record(1, "INSERT", "CREATED", runtime="SPARK_RUNTIME"))
    assert not local_aws.submit_filter(record(1, "MODIFY", "CREATED"))
    assert not local_aws.submit_filter(record(1, "INSERT", "WAITING"))
    for status in ("COMPLETE", "ERROR", "CANCELLED"):
        assert local_aws.cleanup_filter(record(1, "MODIFY", status))
    assert not local_aws.cleanup_filter(record(1, "MODIFY", "RUNNING"))
    assert not local_aws.cleanup_filter(record(1, "INSERT", "COMPLETE"))
    # cleanup's own cleanedAt write: final -> final
    assert not local_aws.cleanup_filter(record(1, "MODIFY", "COMPLETE", old="COMPLETE"))
    assert not local_aws.cleanup_filter(record(1, "MODIFY", "CANCELLED", old="ERROR"))


def test_a_job_is_ours_by_its_target_engine_too():
    def by_engine(event: str, status: str, engine: str) -> dict:
        r = record(1, event, status, runtime="SPARK_RUNTIME")
        for image in (r["dynamodb"]["NewImage"], r["dynamodb"].get("OldImage", {})):
            image.pop("runtimeType", None)
            image["targetEngine"] = {"M": {"engineType": {"S": engine}, "name": {"S": "r"}}}
        return r

    assert local_aws.submit_filter(by_engine("INSERT", "CREATED", "SPARK_SERVERLESS_RUNTIME"))
    assert not local_aws.submit_filter(by_engine("INSERT", "CREATED", "SPARK_RUNTIME"))
    assert local_aws.cleanup_filter(by_engine("MODIFY", "COMPLETE", "SPARK_SERVERLESS_RUNTIME"))
    assert not local_aws.cleanup_filter(by_engine("MODIFY", "COMPLETE", "SPARK_RUNTIME"))


def test_the_bridge_gets_modifies_of_bridged_rows_only():
    """The template's BridgeFunction mapping: MODIFY, NewImage.modelManage.source = model-manage."""
    def bridged(event: str, source: str = "model-manage") -> dict:
        r = record(1, event, "RUNNING")
        r["dynamodb"]["NewImage"]["modelManage"] = {"M": {"source": {"S": source}, "version": {"N": "1"}}}
        return r

    assert local_aws.bridge_filter(bridged("MODIFY"))
    assert not local_aws.bridge_filter(bridged("INSERT"))
    assert not local_aws.bridge_filter(bridged("MODIFY", source="elsewhere"))
    assert not local_aws.bridge_filter(record(1, "MODIFY", "COMPLETE"))

def test_batches_skip_filtered_records_and_redeliver_from_the_failed_item(monkeypatch):
    monkeypatch.setattr(local_aws.time, "sleep", lambda _s: None)  # no back-off waits
    records = [record(100 + i, "INSERT", "CREATED" if i % 4 else "WAITING") for i in range(25)]
    function = FakeFunction(fail_once_at=101)
    mapping = local_aws.StreamMapping("submit", FakeStreams(records), "arn:stream", function, local_aws.submit_filter, 3)
    drain(mapping)
    wanted = [int(r["dynamodb"]["SequenceNumber"]) for r in records if local_aws.submit_filter(local_aws.lambda_record(r, "arn"))]
    # First batch (records 100-109, the matching ones) fails from its second item, 102; it is re-read from there.
    assert function.batches[0] == [101, 102, 103, 105, 106, 107, 109]
    assert function.batches[1][0] == 102
    delivered = sorted({s for batch in function.batches for s in batch})
    assert delivered == wanted
    assert all(len(batch) <= local_aws.BATCH_SIZE for batch in function.batches)
    # Everything after the failure is delivered once more, nothing before it.
    assert sum(batch.count(101) for batch in function.batches) == 1
    assert sum(batch.count(102) for batch in function.batches) == 2


def test_records_numbered_out_of_order_are_each_delivered_and_retried_by_position(monkeypatch):
    """moto numbers the stream records of concurrent writes out of order, sometimes twice the
    same: the retry starts at the failed record's place in the batch, and nothing is skipped."""
    monkeypatch.setattr(local_aws.time, "sleep", lambda _s: None)
    numbers = [105, 103, 104, 104, 101, 102, 110, 108, 109, 107, 106, 111]
    records = [record(n, "INSERT", "CREATED") for n in numbers]
    for i, r in enumerate(records):  # distinct jobs, whatever their numbers
        r["dynamodb"]["Keys"]["id"]["S"] = r["dynamodb"]["NewImage"]["id"]["S"] = f"job-{i}"

    class KeyedFunction:
        def __init__(self) -> None:
            self.batches: list[list[str]] = []
            self.failed = False

        def invoke(self, payload: dict) -> tuple[str, dict]:
            self.batches.append([r["dynamodb"]["Keys"]["id"]["S"] for r in payload["Records"]])
            if not self.failed:  # the 5th record (number 101, the lowest) fails once
                self.failed = True
                return "response", {"batchItemFailures": [{"itemIdentifier": payload["Records"][4]["dynamodb"]["SequenceNumber"]}]}
            return "response", {"batchItemFailures": []}

    function = KeyedFunction()
    drain(local_aws.StreamMapping("submit", FakeStreams(records), "arn:stream", function, local_aws.submit_filter, 3))
    delivered = [k for batch in function.batches for k in batch]
    assert sorted(set(delivered)) == sorted(f"job-{i}" for i in range(len(numbers)))
    assert function.batches[1][0] == "job-4"
    assert all(delivered.count(f"job-{i}") == 1 for i in range(4))  # before the failure: once
    assert all(delivered.count(f"job-{i}") == 2 for i in range(4, 10))  # the failed batch's rest: again


def test_lambda_record_shape():
    out = local_aws.lambda_record(record(7, "INSERT", "CREATED"), "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x")
    assert (out["eventSource"], out["eventVersion"], out["awsRegion"]) == ("aws:dynamodb", "1.1", "us-east-1")
    assert out["eventSourceARN"].endswith("/stream/x") and out["dynamodb"]["SequenceNumber"] == "7"


def test_emr_events_reach_monitor_as_the_template_rule_matches_them():
    """The same samples tests/infra/test_agreement.py runs through the deployed rule's pattern."""
    import json
    import pathlib

    samples = pathlib.Path(local_aws.ROOT, "events", "monitor")
    got = {p.stem: local_aws.job_run_rule_matches(json.loads(p.read_text())) for p in sorted(samples.glob("*.json"))}
    expected = {name: name.startswith(("state-", "resource-utilization")) or name in {"job-run-retry", "malformed"} for name in got}
    assert got == expected and got["resource-utilization"] and not got["application-state-change"]


def test_event_loop_delivers_what_the_rule_matches_and_drops_by_run_name():
    """EventBridge's leg: the rule's detail-types reach monitor; --drop-emr-events-for drops a
    run's utilization updates too (they carry no jobRunName: the name is the emulator's)."""
    import queue
    import threading
    import time

    import emr_serverless

    class Monitor:
        def __init__(self) -> None:
            self.got: list[dict] = []

        def invoke(self, event: dict) -> tuple[str, None]:
            self.got.append(event)
            return "response", None

    emr = emr_serverless.EmrServerless(log=lambda _m: None)
    dropped = emr.seed_job_run("00fapp", "00fdropped", "job-dropped", "RUNNING")
    kept = emr.seed_job_run("00fapp", "00fkept", "job-kept", "RUNNING")
    stack = local_aws.LocalAws.__new__(local_aws.LocalAws)
    stack.emr, stack.events, stack.stop_event = emr, queue.Queue(), threading.Event()
    stack.drop, stack.functions = {"job-dropped"}, {"monitor": Monitor()}
    events = [
        emr.state_change_event(kept, "SCHEDULED"),
        emr.state_change_event(dropped, "SCHEDULED"),
        emr.utilization_event(dropped, final=False),
        emr.utilization_event(kept, final=True),
        {"source": "aws.emr-serverless", "detail-type": "EMR Serverless Application State Change", "detail": {}},
        emr.state_change_event(kept, "RUNNING"),  # delivered last: all before it have been handled
    ]
    for event in events:
        stack.events.put(event)
    loop = threading.Thread(target=stack._event_loop, daemon=True)
    loop.start()
    got = stack.functions["monitor"].got
    deadline = time.monotonic() + 5
    while events[-1] not in got and time.monotonic() < deadline:
        time.sleep(0.02)
    stack.stop_event.set()
    loop.join(2)
    assert got == [events[0], events[3], events[5]]


# ---- the functions' lifecycle under the stack: restart after a crash, stop on a timeout, cleanup
#
# A stand-in for a function binary: a Runtime API client like the ``lambda_runtime`` crate's, which
# registers an internal extension for no events (as its graceful-shutdown handler does, so the
# Shutdown phase sends SIGTERM) and answers each event with its pid; ``{"crash": true}`` makes it
# exit 3, ``{"sleep": s}`` makes it take s seconds.

FAKE_FUNCTION = r'''
import http.client, json, os, signal, sys, threading, time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]

def on_term(*_):
    print(f"pid {os.getpid()}: SIGTERM", flush=True)
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
ext = http.client.HTTPConnection(API)
ext.request("POST", "/2020-01-01/extension/register", json.dumps({"events": []}), {"Lambda-Extension-Name": "graceful-shutdown"})
registered = ext.getresponse()
registered.read()
if registered.status != 200:
    print(f"pid {os.getpid()}: extension not registered: {registered.status}", flush=True)
    sys.exit(1)
ext_id = registered.getheader("Lambda-Extension-Identifier")

def wait_for_shutdown():
    ext.request("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ext_id})
    try:
        ext.getresponse().read()
    except Exception:
        pass

threading.Thread(target=wait_for_shutdown, daemon=True).start()
conn = http.client.HTTPConnection(API)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    print(f"pid {os.getpid()}: event {json.dumps(event)}", flush=True)
    if event.get("crash"):
        sys.exit(3)
    time.sleep(event.get("sleep", 0))
    conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", json.dumps({"pid": os.getpid(), "event": event}))
    conn.getresponse().read()
'''


@pytest.fixture
def fake_function(tmp_path):
    path = tmp_path / "bin" / "fake-function"
    path.parent.mkdir()
    path.write_text(f"#!{sys.executable}\n{FAKE_FUNCTION}")
    path.chmod(0o755)
    return str(path)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_crashed_function_is_restarted_on_the_next_invocation(fake_function, tmp_path):
    function = local_aws.LambdaFunction("submit", fake_function, {}, str(tmp_path), timeout=10)
    try:
        status, body = function.invoke({"n": 1})
        assert status == "response", (status, body)
        first = body["pid"]
        assert function.invoke({"crash": True}) == ("crash", "exit code 3")
        status, body = function.invoke({"n": 2})
        # A new process (its extension registered again in the new environment) got the event.
        assert (status, body["event"]) == ("response", {"n": 2}), (status, body)
        assert body["pid"] != first and function.cold_starts == 2
        assert not alive(first)
    finally:
        function.stop()
    log = (tmp_path / "submit.log").read_text()
    assert "extension not registered" not in log
    assert f"pid {body['pid']}: SIGTERM" in log, "the last process got Lambda's Shutdown phase"


def test_a_timed_out_invocation_is_stopped_and_never_redelivered(fake_function, tmp_path):
    function = local_aws.LambdaFunction("monitor", fake_function, {}, str(tmp_path), timeout=0.5)
    try:
        status, body = function.invoke({"n": 1})
        assert status == "response", (status, body)
        slow = body["pid"]
        assert function.invoke({"sleep": 60}) == ("timeout", None)
        assert not alive(slow), "Lambda ends a timed-out instance"
        status, body = function.invoke({"n": 2})
        assert (status, body["event"]) == ("response", {"n": 2}) and body["pid"] != slow
    finally:
        function.stop()
    log = (tmp_path / "monitor.log").read_text()
    assert f"pid {slow}: SIGTERM" in log, "the timed-out process got SIGTERM (an extension registered)"
    assert log.count('"sleep": 60') == 1, "the timed-out event is not handed to the new process"


def test_an_event_that_expired_before_delivery_is_dropped():
    """A process that crashes at start leaves its event queued: the restarted one must not get it."""
    api = local_aws.RuntimeApi("arn:aws:lambda:us-east-1:123456789012:function:f")
    api.start()
    stale = api.enqueue("stale", b"{}", 1)
    fresh = api.enqueue("fresh", b"{}", 1)
    assert api.expire(stale)
    assert api.next_invocation() is fresh
    api.stop()


@pytest.mark.parametrize("keep_logs", [True, False], ids=["log-dir", "no-log-dir"])
def test_the_stack_stops_cleanly_and_leaves_no_temporary_folder(fake_function, tmp_path, keep_logs):
    """local_aws.py under SIGTERM: every function stopped without error (the demo's log ends with
    no traceback), exit 0, and its ``local-aws-*`` folder (the runs' data under ``emr/``) gone."""
    import glob
    import json
    import shutil
    import signal
    import subprocess
    import time

    target = tmp_path / "target"
    target.mkdir()
    for name in ("submit", "monitor", "cleanup"):
        shutil.copy(fake_function, target / name)
    tmpdir, logs = tmp_path / "tmp", tmp_path / "logs"
    tmpdir.mkdir()
    ready = tmp_path / "ready.json"
    command = [sys.executable, os.path.join(local_aws.HERE, "local_aws.py"), "--ready-file", str(ready),
               "--target-dir", str(target), "--schedule-seconds", "0.2"]
    if keep_logs:
        command += ["--log-dir", str(logs)]
    proc = subprocess.Popen(command, env=dict(os.environ, TMPDIR=str(tmpdir)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        (stack,) = glob.glob(str(tmpdir / "local-aws-*"))
        # A run's data, as the EMR Serverless emulator mirrors it.
        os.makedirs(os.path.join(stack, "emr", "00frun", "s3", "bucket"))
        open(os.path.join(stack, "emr", "00frun", "s3", "bucket", "input.csv"), "w").close()
        log_dir = info["logDir"]
        deadline = time.monotonic() + 30
        while not all('"Scheduled Event"' in _read(os.path.join(log_dir, f"{n}.log")) for n in ("monitor", "cleanup")):
            assert time.monotonic() < deadline and proc.poll() is None, "the schedules never reached monitor and cleanup"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert os.listdir(tmpdir) == [], "the stack's temporary folder is gone"
    if keep_logs:
        assert '"Scheduled Event"' in _read(str(logs / "monitor.log")), "--log-dir keeps the logs"


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""
