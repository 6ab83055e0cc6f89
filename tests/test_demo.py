"""The demo report's usage and cost lines (tests/demo.py), from rows shaped as monitor writes them."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import demo  # noqa: E402

USAGE = {"used": {"vCPUHour": 0.004444, "memoryGBHour": 0.017778, "storageGBHour": 0.022222},
         "billed": {"vCPUHour": 0.066667, "memoryGBHour": 0.266667, "storageGBHour": 0.0},
         "executionSeconds": 4, "final": True, "asOf": "2026-11-30T02:10:00Z"}
COST = {"amount": 0.005049, "currency": "USD", "basis": "billed",
        "prices": {"vCPUHour": 0.052624, "memoryGBHour": 0.0057785, "storageGBHour": 0.000111},
        "pricesAsOf": "2026-11-01", "pricesSource": "built-in", "region": "us-east-1", "architecture": "X86_64"}


def test_usage_and_cost_are_printed_and_labelled_emulated():
    usage, billed, cost = demo.cost_lines({"resourceUsage": USAGE, "cost": COST})
    assert "0.004444 vCPU-h, 0.017778 GB-h memory, 0.022222 GB-h storage; ran 4s; final as of 2026-11-30T02:10:00Z" in usage
    assert "emulated" in usage
    assert billed.endswith("0.066667 vCPU-h, 0.266667 GB-h memory, 0 GB-h storage")
    assert "0.005049 USD on billed usage (us-east-1, X86_64; prices as of 2026-11-01: 0.052624/vCPU-h" in cost
    assert "built-in prices; of emulated usage" in cost


def test_missing_or_partial_figures_say_so():
    assert demo.cost_lines({}) == ["    usage:         not recorded", "    cost:          not recorded"]
    partial = {"used": {"vCPUHour": 0.5, "memoryGBHour": "lots"}, "final": False, "asOf": "2026-11-30T02:10:00Z"}
    usage, billed, cost = demo.cost_lines({"resourceUsage": partial})
    assert "0.5 vCPU-h, ? GB-h memory, ? GB-h storage; not final" in usage and "ran" not in usage
    assert billed.endswith("not recorded") and cost.startswith("    cost:          not recorded (no known price")


def test_a_job_is_shown_as_modelops_jobs_page_would():
    job = {"id": "j-1", "version": 4, "jobStatus": "COMPLETE", "jobResult": "SUCCESS", "jobWaitTime": 1796569284000,
           "jobRunTime": 1796569286000, "jobEndTime": 1796569360500, "lastUpdateFromRuntime": "2026-12-06T15:06:11.354Z",
           "lastModifiedBy": "internal-client", "jobMessages": [f"2026/12/6 15:04:{n:02d} [info] line {n}" for n in range(20)]}
    lines = demo.modelop_lines(job)
    text = "\n".join(lines)
    assert "model-manage job j-1, version 4" in lines[0]
    assert "COMPLETE" in lines[1] and "result: SUCCESS" in lines[1]
    assert "2026-12-06 15:01:24.000Z" in lines[2] and "(waited 2.0s, ran 74.5s)" in lines[2]
    assert "2026-12-06T15:06:11.354Z (by internal-client)" in lines[3]
    assert "messages (20):" in lines[4] and "line 0" in text and "line 19" in text and "... 8 more ..." in text
    assert "no such job" in demo.modelop_lines(None)[0]


def test_serve_keeps_the_stack_for_the_cli_and_removes_its_ready_file_at_the_end(tmp_path):
    """``demo.py --serve``: the stack's endpoints in the CLI's ready file, the commands to try, and
    ``modelop-spark --local`` answers from that stack; SIGTERM stops it and removes the file."""
    import json
    import signal
    import subprocess
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, os.path.join(root, "tests", "demo.py"), "--serve", "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else "no ready file"
            time.sleep(0.2)
        info = json.loads(ready.read_text().splitlines()[0])
        assert {"moto", "emr", "table", "region", "pid"} <= set(info), info
        cli = os.path.join(root, "target", "debug", "modelop-spark")
        if os.path.exists(cli):
            done = subprocess.run([cli, f"--local={ready}", "-o", "json", "ls"], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and json.loads(done.stdout) == [], (done.stdout, done.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert f"--local={ready} ls" in output and "Press Ctrl-C to stop it." in output, output
    assert not ready.exists(), "the ready file goes with the stack"
