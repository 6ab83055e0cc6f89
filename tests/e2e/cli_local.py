"""The local stack the operator CLI's end-to-end modules run on (``test_cli_lifecycle.py``,
``test_cli_run_controls.py``): one per module, so pytest-xdist (``--dist loadfile``) runs the two
modules on its two workers side by side. Functions use ``EMR_RELEASE_VERSION=emr-7.9.0``, which has
both retries and cancel grace periods; the stack runs two jobs at once.

Needs the function binaries and the CLI built (``tests/build-functions.sh``, ``cargo build -p modelop-spark``);
the CLI is built here if it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))

import local_stack as L  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
CLI = os.path.join(ROOT, "target", "debug", "modelop-spark")
SUFFIX = uuid.uuid4().hex[:6]
TIMEOUT = 420


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not os.path.exists(CLI):
        subprocess.run(["cargo", "build", "-q", "-p", "modelop-spark"], cwd=ROOT, check=True)
    log_dir = L.new_log_dir("modelop-e2e-cli-")
    stack = L.Stack(log_dir, schedule_seconds=3.0, max_concurrent_runs=2, function_env={"EMR_RELEASE_VERSION": "emr-7.9.0"})
    try:
        info = stack.wait_ready()
        stack.upload_samples()
        ready = tmp_path_factory.mktemp("cli") / "ready.json"
        ready.write_text(json.dumps(info) + "\n")
        stack.cli_ready = str(ready)
        yield stack
    except BaseException:
        L.print_log_tail(log_dir)
        raise
    finally:
        stack.stop()


def cli_args(stack, *args: str) -> list[str]:
    return [CLI, f"--local={stack.cli_ready}", "--no-color", *args]


def cli(stack, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run(cli_args(stack, *args), capture_output=True, text=True, timeout=timeout, env=dict(os.environ, NO_COLOR="1"))


def cli_in_background(stack, *args: str) -> subprocess.Popen:
    return subprocess.Popen(cli_args(stack, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, NO_COLOR="1"))


def document(folder, name: str, job_id: str, job_type: str, assets: list[dict], inputs: list[dict], outputs: list[dict]) -> str:
    job = {"id": job_id, "jobType": job_type,
           "model": {"storedModel": {"modelMetaData": {"name": "credit-pipeline"}, "modelAssets": [
               {"name": "pyspark_ml_model.py", "assetType": "SOURCE_CODE", "primaryModelSource": True,
                "fileUrl": os.path.join(L.MODELS, "pyspark_ml_model.py")}, *assets]}},
           "inputData": inputs, "outputData": outputs, "jobParameters": {"--conf spark.executor.cores": "1"}}
    path = folder / name
    path.write_text(json.dumps(job))
    return str(path)
