"""The demo: ModelOp batch jobs through submit, EMR Serverless (real local Spark) and monitor and
cleanup, on a laptop. Run it with ``tests/demo.sh`` (which installs the venv and builds first).

    tests/demo.sh [--job FILE ...] [--expect STATUS] [--timeout SECONDS] [--keep-logs]
        [--python-requirements FILE] [--modelop] [--keep-running | --serve] [--ready-file PATH]

Without ``--job`` it inserts one job of each type built from ``tests/models/spark_sample_model.py``
and ``tests/models/data/sample_input.csv``. With ``--job FILE`` (repeatable) it inserts your job
documents instead (plain JSON, as ModelOp Center writes them; ``id`` and ``jobStatus`` are filled
in if missing, ``runtimeType`` too unless ``targetEngine.engineType`` names the runtime). Local paths are accepted where the service wants
``s3://`` URLs: a ``SOURCE_CODE`` asset's ``fileUrl`` that is a local file is inlined as
``sourceCode``, and an ``EXTERNAL_FILE`` input or model asset that is a local file is uploaded to
``s3://modelop-data/user/`` first. Outputs must be ``s3://`` URLs (any bucket is created).

With ``--modelop`` the jobs go in through ModelOp Center instead of the table: the stack also runs
the model-manage emulator and the ``bridge`` (``local_aws.py --model-manage``), each job is POSTed
to ``<gateway>/model-manage/api/jobs`` with a bearer token, as ModelOp's ``submit.py`` does (its id
given by model-manage), the bridge claims it into the table and writes its progress back, and the
report shows each job as ModelOp's Jobs page would (status, result, times, messages) beside the row.

With ``--keep-running`` the stack stays up after the report, for the operator CLI: its endpoints, table
and region go to ``target/local-stack/ready.json`` (``--ready-file``), which ``modelop-spark --local``
reads, and the demo prints commands to try, then waits for Ctrl-C (or SIGTERM), stops the stack and
removes the file. ``--serve`` does the same without running any job first (the samples are
uploaded), for ``modelop-spark --local submit``.

Prints each job's status transitions as they happen, then a report per job. Exits 1 if a job did
not end as expected (``COMPLETE``, or ``--expect``), 2 on a set-up problem.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "emulator"))

import local_stack as L  # noqa: E402

BOLD, DIM, RED, GREEN, RESET = ("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m") if sys.stdout.isatty() else ("",) * 5


def out(text: str = "") -> None:
    print(text, flush=True)


def user_job(path: str, stack: L.Stack) -> dict:
    with open(path, encoding="utf-8") as f:
        job = json.load(f)
    job.setdefault("id", f"user-{uuid.uuid4().hex[:8]}")
    job.setdefault("jobType", "MODEL_BATCH_JOB")
    job["jobStatus"] = "CREATED"
    if (job.get("targetEngine") or {}).get("engineType") != "SPARK_SERVERLESS_RUNTIME":
        job.setdefault("runtimeType", "SPARK_SERVERLESS_RUNTIME")
    base = os.path.dirname(os.path.abspath(path))

    def local(url: object) -> str | None:
        if not isinstance(url, str) or "://" in url:
            return None
        candidate = url if os.path.isabs(url) else os.path.join(base, url)
        return candidate if os.path.isfile(candidate) else None

    assets = (job.get("model", {}).get("storedModel", {}).get("modelAssets") or [])
    for asset in assets + (job.get("inputData") or []):
        file = local(asset.get("fileUrl"))
        if file is None:
            continue
        if asset.get("assetType") == "SOURCE_CODE":
            with open(file, encoding="utf-8") as f:
                asset["sourceCode"] = f.read()
            del asset["fileUrl"]
        else:
            key = f"user/{job['id']}/{os.path.basename(file)}"
            stack.s3.upload_file(file, L.DATA_BUCKET, key)
            asset["fileUrl"] = f"s3://{L.DATA_BUCKET}/{key}"
    for asset in job.get("outputData") or []:
        url = asset.get("fileUrl", "")
        if url.startswith("s3://"):
            try:
                stack.s3.create_bucket(Bucket=url[5:].split("/", 1)[0])
            except Exception:  # noqa: BLE001 - exists already
                pass
    return job


def durations(job: dict) -> str:
    history = job.get("statusHistory") or []
    parts = []
    for entry, following in zip(history, history[1:]):
        label = entry["status"] + (f"/{entry['emrState']}" if entry.get("emrState") else "")
        seconds = (_ts(following["at"]) - _ts(entry["at"]))
        parts.append(f"{label} {seconds:.1f}s")
    if history:
        last = history[-1]
        parts.append(last["status"] + (f"/{last['emrState']}" if last.get("emrState") else ""))
    return " → ".join(parts)


def _ts(text: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def _figure(value: object) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _utilization(figures: dict) -> str:
    return (f"{_figure(figures.get('vCPUHour'))} vCPU-h, {_figure(figures.get('memoryGBHour'))} GB-h memory, "
            f"{_figure(figures.get('storageGBHour'))} GB-h storage")


def cost_lines(job: dict) -> list[str]:
    """The row's ``resourceUsage`` and ``cost`` (written by monitor), or what is missing. Locally
    the usage is EMULATED: the emulator's wall time in RUNNING x the run's declared worker sizes."""
    usage, cost = job.get("resourceUsage"), job.get("cost")
    if not isinstance(usage, dict):
        lines = ["    usage:         not recorded"]
    else:
        ran = usage.get("executionSeconds")
        lines = [f"    usage:         {_utilization(usage.get('used') or {})}"
                 f"{f'; ran {ran}s' if ran is not None else ''}; {'final' if usage.get('final') else 'not final'}"
                 f" as of {usage.get('asOf', '?')} (emulated: wall time x declared worker size)"]
        billed = usage.get("billed")
        lines.append(f"    billed usage:  {_utilization(billed) if isinstance(billed, dict) else 'not recorded'}")
    if not isinstance(cost, dict):
        lines.append("    cost:          not recorded" + (" (no known price for the region, or not final yet)" if isinstance(usage, dict) else ""))
    else:
        prices = cost.get("prices") or {}
        lines.append(f"    cost:          {_figure(cost.get('amount'))} {cost.get('currency', '?')} on {cost.get('basis', '?')} usage"
                     f" ({cost.get('region', '?')}, {cost.get('architecture', '?')}; prices as of {cost.get('pricesAsOf', '?')}:"
                     f" {_figure(prices.get('vCPUHour'))}/vCPU-h, {_figure(prices.get('memoryGBHour'))}/GB-h memory,"
                     f" {_figure(prices.get('storageGBHour'))}/GB-h storage, {cost.get('pricesSource', '?')} prices; of emulated usage)")
    return lines


def report(stack: L.Stack, job: dict, expected: str) -> bool:
    ok = job.get("jobStatus") == expected
    mark = f"{GREEN}✔{RESET}" if ok else f"{RED}✘{RESET}"
    out(f"{mark} {BOLD}{job['id']}{RESET} ({job.get('jobType')}): {BOLD}{job.get('jobStatus')}{RESET}"
        f" (expected {expected})")
    out(f"    run id:        {job.get('sparkApplicationId', '-')} in application {job.get('emrApplicationId', '-')}")
    out(f"    time in state: {durations(job)}")
    permissions = job.get("jobPermissions") or {}
    if permissions.get("scoped"):
        out(f"    permissions:   scoped to the job's own objects: session policy of {permissions.get('policySize')} characters"
            f" (sha256 {str(permissions.get('policySha256'))[:12]}…, {permissions.get('narrowingSteps')} narrowing steps)")
    elif permissions:
        out(f"    permissions:   {RED}unscoped{RESET}: the whole job execution role ({permissions.get('source')})")
    for output in job.get("outputFiles") or []:
        files = [u for u in stack.objects(output["fileUrl"]) if not u.endswith("/_SUCCESS")]
        out(f"    output {output.get('name') or '(unnamed)'}: {output['fileUrl']} exists={output['exists']}")
        for url in files[:5]:
            out(f"        {url}")
    if job.get("modelResult") is not None:
        result = job["modelResult"].get("result", job["modelResult"])
        out(f"    model result:  {json.dumps(result, sort_keys=True)}")
    if job.get("errorMessage"):
        out(f"    error:         {RED}{job['errorMessage'].splitlines()[0]}{RESET}")
    failure = job.get("failure") or {}
    if failure:
        out(f"    failure:       {RED}{failure.get('class')}{RESET}: {failure.get('summary')}")
        if failure.get("class") == "MISSING_DEPENDENCY":
            # The summary names the local Python (MONITOR_SPARK_ENVIRONMENT_NAME); which one, exactly:
            extra = os.environ.get("EMR_SERVERLESS_PYTHON_REQUIREMENTS")
            python = f"a virtualenv of {extra} over {sys.executable}" if extra else sys.executable
            out(f"    locally:       the run used local Spark, whose Python is {python} (numpy and pyspark as "
                f"tests/requirements.txt pins them), not EMR's image; add the model's packages with "
                f"--python-requirements FILE")
    provenance = job.get("provenance") or {}
    if provenance:
        queued, ran = provenance.get("queuedDurationMilliseconds"), provenance.get("totalExecutionDurationSeconds")
        out(f"    run:           {provenance.get('attempts', 1)} attempt(s) of {provenance.get('maxAttempts', 1)}; queued "
            f"{f'{queued / 1000:.1f}s' if isinstance(queued, (int, float)) else '-'}; ran "
            f"{f'{ran}s' if ran is not None else '-'}; timeout {provenance.get('executionTimeoutMinutes', '-')} min; "
            f"release {provenance.get('releaseLabel', '-')}")
    for attempt in job.get("attempts") or []:
        reason = f" ({attempt['reason']})" if attempt.get("reason") else ""
        out(f"    attempt {attempt.get('attempt')}:     {attempt.get('state', '-')}{reason}")
    for ignored in job.get("ignoredJobParameters") or []:
        out(f"    ignored:       {ignored['parameter']}={ignored['value']!r} ({ignored['reason']})")
    times = [job.get(k) for k in ("jobWaitTime", "jobRunTime", "jobEndTime")]
    if all(isinstance(t, (int, float)) for t in times):
        out(f"    ModelOp times: waited {(times[1] - times[0]) / 1000:.1f}s, ran {(times[2] - times[1]) / 1000:.1f}s"
            f" (jobWaitTime/jobRunTime/jobEndTime); {len(job.get('jobMessages') or [])} jobMessages")
    for line in cost_lines(job):
        out(line)
    staged = stack.staged_keys(job["id"])
    out(f"    staging:       {'cleaned' if not staged else f'{len(staged)} object(s) left'}"
        f"{' at ' + job['cleanedAt'] if job.get('cleanedAt') else ''}")
    if job.get("sparkApplicationId"):
        stdout = [l for l in stack.driver_log(job, "stdout") if l.strip()]
        stderr = [l for l in stack.driver_log(job, "stderr") if l.strip()]
        out(f"    driver stdout (last lines of {len(stdout)}):")
        for line in stdout[-6:]:
            out(f"      {DIM}{line[:200]}{RESET}")
        if not ok or job.get("jobStatus") == "ERROR":
            out(f"    driver stderr (last lines of {len(stderr)}):")
            for line in stderr[-8:]:
                out(f"      {DIM}{line[:200]}{RESET}")
    out()
    return ok


def _epoch_ms(value: object) -> str:
    import datetime as dt

    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def modelop_lines(job: dict | None) -> list[str]:
    """The job as ModelOp Center's Jobs page shows it, from model-manage: status, result, times, messages."""
    if job is None:
        return [f"    {BOLD}ModelOp Center{RESET} (model-manage): {RED}no such job{RESET}"]
    wait, run, end = (job.get(k) for k in ("jobWaitTime", "jobRunTime", "jobEndTime"))
    spans = []
    if isinstance(wait, int) and isinstance(run, int):
        spans.append(f"waited {(run - wait) / 1000:.1f}s")
    if isinstance(run, int) and isinstance(end, int):
        spans.append(f"ran {(end - run) / 1000:.1f}s")
    messages = [m for m in job.get("jobMessages") or [] if isinstance(m, str)]
    lines = [f"    {BOLD}ModelOp Center{RESET} (model-manage job {job.get('id')}, version {job.get('version')}):",
             f"      status:      {BOLD}{job.get('jobStatus')}{RESET}   result: {job.get('jobResult', '-')}",
             f"      wait time:   {_epoch_ms(wait)}   run time: {_epoch_ms(run)}   end time: {_epoch_ms(end)}"
             + (f"   ({', '.join(spans)})" if spans else ""),
             f"      last update from runtime: {job.get('lastUpdateFromRuntime', '-')} (by {job.get('lastModifiedBy', '-')})",
             f"      messages ({len(messages)}):"]
    shown = messages if len(messages) <= 14 else messages[:4] + [f"... {len(messages) - 12} more ..."] + messages[-8:]
    lines += [f"        {DIM}{line[:200]}{RESET}" for line in shown]
    return lines


def modelop_jobs(args: argparse.Namespace, stack: L.Stack) -> list[dict]:
    """The documents to POST to model-manage: the samples (one of each type, and one written the way
    ModelOp writes its own), or the --job files (their own ids dropped: model-manage gives one)."""
    if args.job:
        documents = []
        for path in args.job:
            job = user_job(path, stack)
            for field in ("id", "jobStatus", "runtimeType"):
                job.pop(field, None)
            job.setdefault("targetEngine", {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "spark-serverless-runtime-1"})
            documents.append(job)
        return documents
    documents = [L.model_manage_job(job_type, name=f"demo-modelop-{kind}") for kind, job_type in
                 (("score", "MODEL_BATCH_JOB"), ("metrics", "MODEL_BATCH_TEST_JOB"), ("train", "MODEL_BATCH_TRAINING_JOB"))]
    styled = L.modelop_style_job("demo-modelop-style")
    for field in ("id", "jobStatus", "_links"):
        styled.pop(field)
    return documents + [styled]


def main_modelop(args: argparse.Namespace) -> int:
    """``--modelop``: the jobs through ModelOp Center's model-manage and the bridge."""
    log_dir = L.new_log_dir("modelop-demo-")
    started = time.monotonic()
    out(f"{BOLD}Starting local AWS and ModelOp Center{RESET}: moto, EMR Serverless on local Spark, the model-manage emulator,")
    out(f"and the submit, monitor, cleanup and bridge binaries behind the Lambda Runtime API. Logs: {log_dir}")
    stack = L.Stack(log_dir, schedule_seconds=3.0, model_manage=True)
    ok = False
    try:
        info = stack.wait_ready()
        out(f"  moto {info['moto']}, EMR Serverless {info['emr']}, model-manage {info['modelManage']}, table {info['table']}")
        stack.upload_samples()
        ids = []
        for document in modelop_jobs(args, stack):
            stored = stack.submit_to_modelop(document)
            ids.append(stored["id"])
            out(f"  POST {info['modelManage']}/model-manage/api/jobs: {stored['id']} ({stored.get('jobType')}, {stored.get('jobStatus')})")
        out()
        t0 = time.monotonic()
        seen: dict[str, tuple] = {}
        done: set[str] = set()
        while len(done) < len(ids):
            if time.monotonic() - t0 > args.timeout:
                out(f"{RED}timed out after {args.timeout:.0f}s{RESET}")
                break
            for job_id in ids:
                if job_id in done:
                    continue
                remote, row = stack.modelop_job(job_id) or {}, stack.job(job_id) or {}
                state = (remote.get("jobStatus"), row.get("jobStatus"), row.get("emrState"), bool(row.get("cleanedAt")))
                if state != seen.get(job_id):
                    seen[job_id] = state
                    extra = f" (EMR {state[2]})" if state[2] else ""
                    extra += " · staging folder cleaned" if state[3] else ""
                    out(f"  [{time.monotonic() - t0:6.1f}s] {job_id}  ModelOp {state[0]:<9} row {state[1] or '-'}{extra}")
                settled = set(row.get("jobMessages") or []) <= set(remote.get("jobMessages") or [])
                if state[0] in L.FINAL and state[1] in L.FINAL and (state[3] or row.get("stagingUri") is None) and settled:
                    done.add(job_id)
            time.sleep(0.5)
        out()
        out(f"{BOLD}Report{RESET} (each job as ModelOp Center shows it, then its row)")
        results = []
        for job_id in ids:
            remote = stack.modelop_job(job_id)
            row = stack.job(job_id) or {"id": job_id}
            row_ok = report(stack, row, args.expect)
            for line in modelop_lines(remote):
                out(line)
            out()
            results.append(row_ok and (remote or {}).get("jobStatus") == args.expect)
        ok = all(results) and len(done) == len(ids)
        out(f"{GREEN if ok else RED}{sum(results)}/{len(ids)} job(s) ended {args.expect} in ModelOp Center{RESET} "
            f"in {time.monotonic() - started:.0f}s")
    except KeyboardInterrupt:
        out("interrupted")
    except Exception as exc:  # noqa: BLE001
        out(f"{RED}demo failed: {exc}{RESET} (logs: {log_dir})")
        args.keep_logs = True
        return 2
    finally:
        out("Stopping local AWS ...")
        stack.stop()
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            out(f"Logs kept in {log_dir}")
    return 0 if ok else 1


# Where `modelop-spark --local` looks for the local stack (cli/src/context.rs DEFAULT_LOCAL_READY_FILE), from the root.
CLI_READY_FILE = os.path.join(os.path.dirname(HERE), "target", "local-stack", "ready.json")


def write_cli_ready_file(path: str, info: dict) -> None:
    """The stack's ready line where the CLI reads it (atomically: the CLI never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(json.dumps(info) + "\n")
    os.replace(partial, path)


def remove_cli_ready_file(path: str, info: dict) -> None:
    """Removes the ready file if it is still this stack's (another demo may have replaced it)."""
    try:
        with open(path, encoding="utf-8") as f:
            if json.loads(f.readline()).get("pid") != info.get("pid"):
                return
        os.unlink(path)
    except (OSError, ValueError):
        pass


def cli_hints(info: dict, ready_file: str, job_ids: list[str]) -> list[str]:
    """What to try with the operator CLI on the running stack."""
    cli = "target/debug/modelop-spark"
    local = "--local" if os.path.abspath(ready_file) == os.path.abspath(CLI_READY_FILE) else f"--local={ready_file}"
    example = job_ids[0] if job_ids else "<job id>"
    return [
        f"{BOLD}The local stack keeps running{RESET} for the operator CLI: moto {info['moto']}, EMR Serverless {info['emr']}, "
        f"table {info['table']} ({ready_file}).",
        f"  cargo build -p modelop-spark          # once: {cli}",
        f"  {cli} {local} ls",
        f"  {cli} {local} status {example}",
        f"  {cli} {local} logs {example}",
        f"  {cli} {local} submit my-job.json --wait   # local files and folders it names are uploaded to the local S3",
        f"  {cli} {local} ui <running job id> --open   # the run's live local Spark UI",
        "Press Ctrl-C to stop it.",
    ]


def keep_running(stack: L.Stack, ready_file: str, job_ids: list[str]) -> None:
    """Serves the stack to the CLI until Ctrl-C or SIGTERM (or the stack ends)."""
    import signal

    info = stack.info
    write_cli_ready_file(ready_file, info)
    stopping = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        out()
        for line in cli_hints(info, ready_file, job_ids):
            out(line)
        while not stopping and stack.proc.poll() is None:
            time.sleep(0.5)
        if stack.proc.poll() is not None:
            out(f"{RED}the local stack exited ({stack.proc.returncode}){RESET}")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_cli_ready_file(ready_file, info)


def main_serve(args: argparse.Namespace) -> int:
    """``--serve``: the stack for the CLI, with the samples uploaded and no job run."""
    log_dir = L.new_log_dir("modelop-demo-")
    out(f"{BOLD}Starting local AWS{RESET}: moto (S3, DynamoDB + Streams, CloudWatch Logs), EMR Serverless on local Spark,")
    out(f"the submit, monitor and cleanup binaries behind the Lambda Runtime API. Logs: {log_dir}")
    stack = L.Stack(log_dir, schedule_seconds=5.0)
    try:
        info = stack.wait_ready()
        stack.upload_samples()
        out(f"  moto {info['moto']}, EMR Serverless {info['emr']}, table {info['table']}, bucket {info['bucket']}")
        keep_running(stack, args.ready_file, [])
    except Exception as exc:  # noqa: BLE001
        out(f"{RED}demo failed: {exc}{RESET} (logs: {log_dir})")
        return 2
    finally:
        out("Stopping local AWS ...")
        stack.stop()
        out(f"Logs kept in {log_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", action="append", metavar="FILE", help="a job JSON to run instead of the samples")
    parser.add_argument("--expect", default="COMPLETE", choices=L.FINAL, help="the final status every job should reach")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all jobs")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs directory")
    parser.add_argument("--python-requirements", metavar="FILE",
                        help="a requirements file of the model's own packages: local Spark runs with a virtualenv of them "
                             "(made once, under target/model-python), as EMR runs a job with its packed environment")
    parser.add_argument("--modelop", action="store_true",
                        help="POST the jobs to ModelOp Center's model-manage (emulated) and let the bridge bring them in; "
                             "the report shows each job as ModelOp's Jobs page would")
    parser.add_argument("--keep-running", action="store_true",
                        help="after the report, keep the stack running for the operator CLI (modelop-spark --local) until Ctrl-C")
    parser.add_argument("--serve", action="store_true",
                        help="start the stack for the operator CLI without running any job, until Ctrl-C")
    parser.add_argument("--ready-file", default=CLI_READY_FILE, metavar="PATH",
                        help="where --keep-running and --serve write the stack's endpoints for the CLI (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.python_requirements:
        if not os.path.isfile(args.python_requirements):
            parser.error(f"--python-requirements {args.python_requirements}: no such file")
        # Read by the EMR Serverless emulator, which local_aws.py runs in its own process.
        os.environ["EMR_SERVERLESS_PYTHON_REQUIREMENTS"] = os.path.abspath(args.python_requirements)
    if args.serve:
        return main_serve(args)
    if args.modelop:
        return main_modelop(args)

    log_dir = L.new_log_dir("modelop-demo-")
    started = time.monotonic()
    out(f"{BOLD}Starting local AWS{RESET}: moto (S3, DynamoDB + Streams, CloudWatch Logs), EMR Serverless on local Spark,")
    out(f"the submit, monitor and cleanup binaries behind the Lambda Runtime API. Logs: {log_dir}")
    stack = L.Stack(log_dir, schedule_seconds=5.0)
    ok = False
    try:
        info = stack.wait_ready()
        out(f"  moto {info['moto']}, EMR Serverless {info['emr']}, table {info['table']}, bucket {info['bucket']}")
        stack.upload_samples()
        if args.job:
            jobs = [user_job(path, stack) for path in args.job]
        else:
            suffix = uuid.uuid4().hex[:6]
            jobs = [L.sample_job(f"demo-{kind}-{suffix}", job_type)
                    for kind, job_type in (("score", "MODEL_BATCH_JOB"), ("metrics", "MODEL_BATCH_TEST_JOB"), ("train", "MODEL_BATCH_TRAINING_JOB"))]
            # And one written the way ModelOp writes its own jobs and Spark models.
            jobs.append(L.modelop_style_job(f"demo-modelop-{suffix}"))
        for job in jobs:
            stack.put_job(job)
            out(f"  inserted {job['id']} ({job['jobType']}, CREATED)")
        out()
        t0 = time.monotonic()
        seen: dict[str, tuple] = {}
        done: dict[str, dict] = {}
        while len(done) < len(jobs):
            if time.monotonic() - t0 > args.timeout:
                out(f"{RED}timed out after {args.timeout:.0f}s{RESET}")
                break
            for job in jobs:
                if job["id"] in done:
                    continue
                row = stack.job(job["id"]) or {}
                state = (row.get("jobStatus"), row.get("emrState"), bool(row.get("cleanedAt")))
                if state != seen.get(job["id"]):
                    seen[job["id"]] = state
                    extra = f" (EMR {state[1]})" if state[1] else ""
                    extra += " · staging folder cleaned" if state[2] else ""
                    out(f"  [{time.monotonic() - t0:6.1f}s] {job['id']:<28} {state[0]}{extra}")
                # Done once final and cleaned (or final with nothing left to clean).
                if state[0] in L.FINAL and (state[2] or (row.get("stagingUri") is None and time.monotonic() - t0 > 5)):
                    done[job["id"]] = row
            time.sleep(0.3)
        out()
        out(f"{BOLD}Report{RESET}")
        results = [report(stack, stack.job(job["id"]) or {"id": job["id"]}, args.expect) for job in jobs]
        ok = all(results) and len(done) == len(jobs)
        out(f"{GREEN if ok else RED}{sum(results)}/{len(jobs)} job(s) ended {args.expect}{RESET} "
            f"in {time.monotonic() - started:.0f}s")
        if args.keep_running:
            keep_running(stack, args.ready_file, [job["id"] for job in jobs])
    except KeyboardInterrupt:
        out("interrupted")
    except Exception as exc:  # noqa: BLE001
        out(f"{RED}demo failed: {exc}{RESET} (logs: {log_dir})")
        args.keep_logs = True
        return 2
    finally:
        out("Stopping local AWS ...")
        stack.stop()
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            out(f"Logs kept in {log_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
