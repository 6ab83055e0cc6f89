"""Every sample of events/ replayed through the compiled functions (tests/replay.py), checked against
the outcome events/expected.json states for it, so a sample cannot drift from the code. Needs the
binaries (`tests/build-functions.sh`; tests/run.sh builds them first).

    .venv/bin/python -m pytest -q tests/test_replay.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import replay  # noqa: E402

REPLAY = os.path.join(HERE, "replay.py")
SAMPLES = replay.all_samples()
with open(os.path.join(replay.EVENTS, "expected.json"), encoding="utf-8") as _f:
    EXPECTED = json.load(_f)


def run_replay(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, REPLAY, *args], capture_output=True, text=True, timeout=timeout, cwd=replay.ROOT)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path_factory.mktemp("replay") / "report.json"
    out = run_replay("--all", "--via", "runtime-api", "--report", str(report))
    assert report.exists(), f"no report (exit {out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out, {entry["sample"]: entry for entry in json.loads(report.read_text())}


def test_every_sample_states_an_outcome_that_goes_beyond_the_response():
    assert sorted(EXPECTED) == sorted(SAMPLES)
    for sample, entry in EXPECTED.items():
        expect = entry["expect"]
        assert "response" in expect or "status" in expect, sample
        # What the function did, not only what it answered.
        assert set(expect) & {"jobs", "runs", "staging", "files", "calls"}, sample


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_sample_has_its_expected_outcome(replayed, sample):
    _, report = replayed
    entry = report[sample]
    failed = [f"{c['what']} (found {c['found']})" for c in entry["checks"] if not c["ok"]]
    assert entry["checks"] and not failed, f"{sample} through {entry['function']}:\n  " + "\n  ".join(failed)


def test_replay_all_prints_one_line_per_sample_and_succeeds(replayed):
    out, _ = replayed
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for sample in SAMPLES:
        assert sum(1 for line in lines if f" {sample} " in line) == 1, sample
    assert lines[-1].startswith(f"{len(SAMPLES)} event(s) replayed through runtime-api, {len(SAMPLES)} of {len(SAMPLES)} as expected")


BATCH = "3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01"
TRAINING = "b8e4f0a6-1c2d-4e3f-a5b6-7c8d9e0f1a03"
STILL_RUNNING = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f13"
COMPLETE = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c10"

# Every kind of check, each stated wrongly.
WRONG = {
    "submit/insert-batch-job.json": {"expect": {
        "status": "error", "response": {"batchItemFailures": [{"itemIdentifier": "1"}]}, "delivered": 0,
        "jobs": {BATCH: {"jobStatus": "ERROR", "sparkApplicationId": None, "stagingUri": {"present": False},
                         "statusHistory": {"contains": {"status": "COMPLETE"}}}},
        "runs": {BATCH: None},
        "staging": {BATCH: {"lacks": "job-metadata.json"}},
        "files": {f"{BATCH}/job-metadata.json": {"contains": '"jobFunction": "metrics"'}, f"{BATCH}/nothing.txt": {"present": True}},
        "calls": {"total": 0, "include": ["s3:DeleteObjects"], "exclude": ["emr-serverless:StartJobRun"]},
        "logs": {"lacks": "job run started"}}},
    "submit/insert-training-job.json": {"expect": {
        "runs": {TRAINING: {"application": "modelop-default", "sparkSubmitParameters": {"contains": "spark.executor.memory=8g"}}}}},
    "cleanup/modify-not-terminal.json": {"expect": {
        "jobs": {STILL_RUNNING: {"cleanedAt": {"present": True}}}, "staging": {STILL_RUNNING: "emptied"}}},
    "cleanup/modify-running-to-complete.json": {"expect": {"jobs": {COMPLETE: "unchanged"}, "staging": {COMPLETE: "kept"}}},
}


def test_a_wrongly_stated_outcome_fails_every_kind_of_check(tmp_path):
    expected = tmp_path / "wrong.json"
    expected.write_text(json.dumps(WRONG))
    report = tmp_path / "report.json"
    out = run_replay(*(os.path.join(replay.EVENTS, s) for s in WRONG), "--via", "runtime-api", "--expected", str(expected),
                     "--report", str(report))
    assert out.returncode == 1, out.stdout + out.stderr
    entries = json.loads(report.read_text())
    assert [e["sample"] for e in entries] == list(WRONG)
    passed = [c["what"] for e in entries for c in e["checks"] if c["ok"]]
    # Only what the file does not state wrongly: the status where it states none, and that the
    # training job has the one run it records (implied by the run's fields, which are wrong).
    assert passed == ["invocation status response", f"one run for job {TRAINING}", f"job {TRAINING} records that run"] \
        + ["invocation status response"] * 2, passed
    failed = [c["what"] for e in entries for c in e["checks"] if not c["ok"]]
    assert len(failed) == 21, failed  # each stated check: 15 + 2 + 2 + 2
    assert "✘" in out.stdout or "FAIL" in out.stdout


def test_an_event_outside_events_needs_its_function(tmp_path):
    event = tmp_path / "my-event.json"
    with open(os.path.join(replay.EVENTS, "monitor", "state-running.json"), encoding="utf-8") as f:
        event.write_text(f.read())
    out = run_replay(str(event), "--via", "runtime-api")
    assert out.returncode == 2 and "pass --function" in out.stderr, out.stderr
    out = run_replay(str(event), "--via", "runtime-api", "--function", "monitor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No expected outcome is stated" in out.stdout and "Function log:" in out.stdout


@pytest.mark.skipif(not replay.cargo_lambda_installed(), reason="cargo-lambda is not installed (tests/run.sh installs it)")
def test_cargo_lambda_invoke_replays_a_sample_of_each_function(tmp_path):
    samples = ["submit/insert-batch-job.json", "monitor/state-success.json", "cleanup/modify-cancelled-by-user.json"]
    report = tmp_path / "report.json"
    out = run_replay(*(os.path.join(replay.EVENTS, s) for s in samples), "--via", "cargo-lambda", "--report", str(report), timeout=600)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    entries = json.loads(report.read_text())
    assert [(e["sample"], e["via"], e["ok"]) for e in entries] == [(s, "cargo-lambda", True) for s in samples]
