#!/usr/bin/env bash
# The project's one test command (README.md, tests/README.md; .ci/run calls exactly this).
# Installs what the tests need on first use, starts the emulators on 127.0.0.1, runs every check
# (infra, Rust, Python, end to end on local Spark, the benchmark harness in quick mode, and the SAM
# build of infra/template.yaml) and stops the emulators however the run ends. It prints what it will
# run first and, at the end (also when a step fails), one line per step with its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# ------------------------------------------------------------------------------------------ the steps
# step N's title; the table at the end and the header use them.
titles=(
  "no unused dependency (cargo-machete)"
  "Python environments and tools"
  "infra/ offline checks"
  "emulators and function binaries"
  "rust tests (cargo test)"
  "python tests"
  "end to end on local Spark"
  "bench --quick"
  "sam validate + sam build (release)"
)
secs=()     # wall time of each step that ran
current=0   # the step running now (1-based), 0 before the first
started=$SECONDS
work=$(mktemp -d)
pids=()

# begin N: starts step N (ends the previous one).
begin() {
  finish
  current=$1
  step_started=$SECONDS
  printf '\n== step %s/%s: %s\n' "$current" "${#titles[@]}" "${titles[$((current - 1))]}"
}
finish() {
  [ "$current" -gt 0 ] && [ -z "${secs[$((current - 1))]:-}" ] && secs[current - 1]=$((SECONDS - step_started))
  return 0
}
table() {
  local status=$1 i line
  printf '\nwall time per step:\n'
  for i in "${!titles[@]}"; do
    line="step $((i + 1)) ${titles[$i]} "
    line+=$(printf '%*s' $((48 - ${#line})) '' | tr ' ' '.')
    if [ "$((i + 1))" -eq "$current" ] && [ "$status" != 0 ]; then
      printf '%s %4s s  FAILED\n' "$line" "$((SECONDS - step_started))"
    elif [ -n "${secs[$i]:-}" ]; then
      printf '%s %4s s\n' "$line" "${secs[$i]}"
    else
      printf '%s    -    not run\n' "$line"
    fi
  done
  if [ "$status" = 0 ]; then
    printf 'all %s steps passed in %s s\n' "${#titles[@]}" "$((SECONDS - started))"
  else
    printf 'FAILED at step %s (%s) after %s s\n' "$current" "${titles[$((current - 1))]}" "$((SECONDS - started))"
  fi
}
# in_background N AFTER CMD...: starts step N, whose CMD shares nothing with the steps that run meanwhile,
# in the background with its output to a file; `report N`, after step AFTER, prints it and its verdict.
declare -A bg_pid bg_started
in_background() {
  local n=$1 after=$2
  shift 2
  begin "$n"
  bg_started[$n]=$SECONDS
  ( set +e; "$@" > "$work/step$n.log" 2>&1; echo $? > "$work/step$n.rc"; echo $((SECONDS - bg_started[$n])) > "$work/step$n.secs" ) &
  bg_pid[$n]=$!
  pids+=("${bg_pid[$n]}")
  echo "running in the background; its report follows step $after"
}
# report N: waits for background step N and prints its output; its line in the table is its own wall
# time, and a failure fails the run as step N.
report() {
  local n=$1
  finish  # the step running now ends here: its time does not include the wait
  wait "${bg_pid[$n]}" || true
  printf '\n== step %s/%s (report): %s\n' "$n" "${#titles[@]}" "${titles[$((n - 1))]}"
  cat "$work/step$n.log"
  secs[n - 1]=$(cat "$work/step$n.secs" 2>/dev/null || echo "$((SECONDS - bg_started[$n]))")
  if [ "$(cat "$work/step$n.rc" 2>/dev/null)" != 0 ]; then
    current=$n
    step_started=$((SECONDS - secs[n - 1]))
    unset 'secs[n - 1]'
    exit 1
  fi
}
# kill_tree PID: stops PID and every process under it, the deepest first (a background step's cargo or
# sam build is a grandchild of the subshell that runs it, and would outlive it).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill_tree "$pid"; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  [ "$status" = 0 ] && finish
  table "$status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf 'tests/run.sh: every check of the project, in %s steps (tests/README.md, "The test command"):\n' "${#titles[@]}"
for i in "${!titles[@]}"; do printf '  %s. %s\n' "$((i + 1))" "${titles[$i]}"; done
printf 'Budgets on two cores: 10 minutes with target/ and the virtualenvs warm; 30 on a fresh clone, which installs\n'
printf 'the tools and builds the functions in debug and in release (tests/README.md, "Time budget").\n'

# 1. No unused dependency (cargo-machete, pinned, installed into target/tools on first use: a cargo install,
#    a minute on a fresh clone). It runs in the background during step 2 (pip's downloads and installs).
in_background 1 2 "$root/tests/check-deps.sh"

# 2. The project-local Python environment (moto[server], pyspark, pytest: pinned) and cargo-lambda
#    (pinned, from PyPI into target/tools: watch and invoke need none of its dependencies).
begin 2
"$root/tests/setup-venv.sh"
"$root/tests/install-cargo-lambda.sh" "$root/.venv/bin/python"
export PATH="$root/.venv/bin:$PATH"
echo "ok: .venv and target/tools/cargo-lambda up to date"
report 1

# 3. infra/: pinned linters, checkov, cdk synth + cdk-nag, SAM/CDK agreement. It runs in the background while
#    steps 4 and 5 build and test (it uses neither their builds nor their emulators): its output and its verdict
#    come at the end of step 5, and its line in the table is its own wall time.
in_background 3 5 "$root/tests/infra/check.sh"

# 4. The emulators for the whole run, on loopback, on ports the OS picks: moto (S3, DynamoDB and
#    its streams, CloudWatch Logs) and the EMR Serverless emulator (manual mode: runs move only when
#    a test moves them). Both are stopped however the run ends. Then the function binaries (driven
#    through the Lambda Runtime API by the tests), built as sam build and cargo lambda watch -A 127.0.0.1 build them (build-functions.sh);
#    cargo prints its progress.
begin 4
# start_emulator NAME SCRIPT VAR: starts it (in this shell, so it is ours to stop and it sees its
# parent alive), waits for its ready file and exports its endpoint as VAR.
start_emulator() {
  local name=$1 script=$2 var=$3
  "$root/.venv/bin/python" "$script" --ready-file "$work/$name.json" --quiet > "$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 600); do
    [ -s "$work/$name.json" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; echo "$name failed to start" >&2; return 1; }
    sleep 0.1
  done
  [ -s "$work/$name.json" ] || { echo "$name did not start within 60 s" >&2; return 1; }
  export "$var=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$work/$name.json")"
}
start_emulator moto tests/emulator/moto_server.py MOTO_ENDPOINT
start_emulator emr tests/emulator/emr_serverless.py EMR_ENDPOINT
echo "moto server: $MOTO_ENDPOINT; EMR Serverless emulator: $EMR_ENDPOINT"
"$root/tests/build-functions.sh"

# 9. What the README's "Deploy" section runs, offline: sam validate --lint and sam build of infra/template.yaml
#    (pinned SAM CLI, Zig and cargo-lambda from PyPI; a release build in target/, minutes long the first time,
#    incremental after that). One PASS or FAIL line per check (tests/infra/sam-build.sh). It needs nothing of
#    steps 5-8, so it starts here and runs beside them at the lowest CPU priority (nice 19): the tests keep the
#    cores they use, and the release build takes the rest (steps 5-8 leave one core or more idle for much of their
#    time: the tests wait on emulators and on Spark); the release build has its own profile directory and lock in
#    target/. Its report follows step 8.
in_background 9 8 nice -n 19 "$root/tests/infra/sam-build.sh"

# 5. Rust: every test of the workspace (the binaries' tests use the builds of step 4).
begin 5
cargo test --workspace
report 3

# 6. Python: the PySpark driver on real Spark, the emulators' own tests, and every events/ sample
#    replayed through the binaries against its expected outcome (events/expected.json), also through
#    `cargo lambda invoke -A 127.0.0.1`. Steps 6 and 7 run their test files on two workers
#    (pytest-xdist, a file per worker: a file's module fixtures, such as an e2e stack, stay whole).
begin 6
xdist=(-n 2 --dist loadfile)
#    Every test_*.py of tests/ and tests/emulator/ (a new one cannot be left out), and the emulators' selftest.
PATH="$PATH:$root/target/tools/cargo-lambda/bin" "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider "${xdist[@]}" tests/driver \
  tests/emulator/selftest.py tests/emulator/test_*.py tests/test_*.py

# 7. End to end: the sample jobs through the three binaries, moto and EMR Serverless on local Spark.
begin 7
"$root/.venv/bin/python" -m pytest -q -p no:cacheprovider "${xdist[@]}" tests/e2e

# 8. The benchmarks' quick mode on the debug binaries of step 4, only to keep the harness working: no figure
#    fails it (tests/README.md, "Benchmarks").
begin 8
./tests/bench.sh --quick > "$work/bench.log" 2>&1 || { tail -50 "$work/bench.log"; echo "the benchmark harness broke" >&2; exit 1; }
echo "bench --quick: ok ($(grep -o 'Run time: [0-9]* s' target/bench/BENCHMARKS-quick.md))"
report 9
