"""The run controls as an operator sees them, with the CLI on the local stack and real local Spark: a
job whose run fails its first attempt and is retried (``tests/models/flaky_model.py``, two attempts),
submitted with ``submit --follow`` and also followed with ``logs -f``: both cross from attempt 1's
driver log to attempt 2's (the banner on stderr) and exit with the final outcome's code; and a job
that stops cleanly on SIGTERM (``tests/models/graceful_model.py``), cancelled with ``cancel ID
--grace 15 --wait``: it ends CANCELLED, cleanup cancelled its run with the 15 s grace period (its
log), and the model's SIGTERM handler ran. The stack is ``cli_local.py``'s (``emr-7.9.0``: retries
and cancel grace periods).
"""

from __future__ import annotations

import json
import os

from cli_local import SUFFIX, TIMEOUT, L, cli, cli_in_background, stack  # noqa: F401 (stack: the module's fixture)


def test_a_retried_run_followed_across_attempts_and_a_cancel_with_grace(stack, tmp_path):
    flaky_id, graceful_id = f"cli-flaky-{SUFFIX}", f"cli-graceful-{SUFFIX}"
    markers = tmp_path / "markers"
    markers.mkdir()
    graceful = tmp_path / "graceful.json"
    graceful.write_text(json.dumps(L.sample_job(graceful_id, "MODEL_BATCH_JOB", model="graceful_model.py", parameters={
        "--conf spark.modelop.test.marker.dir": str(markers)})))
    flaky = tmp_path / "flaky.json"
    flaky.write_text(json.dumps(L.sample_job(flaky_id, "MODEL_BATCH_JOB", model="flaky_model.py", parameters={
        "--conf modelop.serverless.job.max.attempts": "2",
        "--conf spark.modelop.test.marker": str(markers / "flaky-attempt-1")})))

    # Both run at once (the stack runs two): the graceful one until it is cancelled, the flaky one twice.
    submitted = cli(stack, "submit", str(graceful))
    assert submitted.returncode == 0, submitted.stderr
    submit_follow = cli_in_background(stack, "submit", str(flaky), "--follow")
    L.wait_until(lambda: stack.job(flaky_id), 30, what=f"submit --follow to write {flaky_id}")
    logs_follow = cli_in_background(stack, "logs", flaky_id, "-f")

    # A cancel with a grace period, once the model's SIGTERM handler is in place.
    L.wait_until(lambda: (markers / "started").exists(), TIMEOUT, what="graceful_model to install its hook")
    cancelled = cli(stack, "cancel", graceful_id, "--grace", "15", "--wait", "--timeout", "3m", timeout=240)
    run_id = stack.job(graceful_id)["sparkApplicationId"]
    assert cancelled.returncode == 3, (cancelled.stdout, cancelled.stderr)
    assert f"{graceful_id}: CANCELLED (was RUNNING); cleanup cancels run {run_id} with a 15 s grace period" in cancelled.stdout, cancelled.stdout
    assert "run CANCELLED; staging folder released" in cancelled.stdout, cancelled.stdout
    assert "no cancel grace period" not in cancelled.stderr, cancelled.stderr
    row = stack.job(graceful_id)
    assert (row["jobStatus"], row["cancelGracePeriodSeconds"]) == ("CANCELLED", 15), row
    assert "graceful_model: shutdown hook ran (SIGTERM)" in (markers / "shutdown-hook").read_text()
    with open(os.path.join(stack.log_dir, "cleanup.log"), errors="replace") as f:
        lines = [json.loads(line) for line in f if line.startswith("{")]
    cancels = [l["fields"] for l in lines if l.get("fields", {}).get("message") == "job run cancelled" and l["fields"].get("job_id") == graceful_id]
    assert [c["grace_period_seconds"] for c in cancels] == [15], cancels

    # Both followers crossed from attempt 1's driver log to attempt 2's and exit with the outcome's code (COMPLETE).
    for follower in (submit_follow, logs_follow):
        out, err = follower.communicate(timeout=TIMEOUT)
        assert follower.returncode == 0, (follower.args, out, err, stack.job(flaky_id))
        first, second = out.find("flaky_model: first attempt, failing"), out.find("flaky_model: a later attempt, succeeding")
        assert 0 <= first < second, (follower.args, out, err)
        assert "── attempt 2 of 2 (the run was retried) ──" in err, (follower.args, err)
    job = stack.job(flaky_id)
    assert job["jobStatus"] == "COMPLETE" and [a["attempt"] for a in job["attempts"]] == [1, 2], job.get("attempts")
