#!/usr/bin/env bash
# The project's one test command (README.md, tests/README.md; .ci/run calls exactly this).
# Installs what the tests need on first use, starts the emulators on 127.0.0.1, runs every check
# (infra, Rust, Python, end to end on local Spark, the benchmark harness in quick mode, and the SAM
# build of infra/template.yaml) and stops the emulators however the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# 0. No unused dependency (cargo-machete, pinned, installed into target/tools on first use).
"$root/tests/check-deps.sh"

# 1. The project-local Python environment: moto[server], pyspark, pytest (pinned).
"$root/tests/setup-venv.sh"
export PATH="$root/.venv/bin:$PATH"
"$root/tests/infra/check.sh"  # infra/: pinned linters, checkov, cdk synth + cdk-nag, SAM/CDK agreement

# 2. The emulators for the whole run, on loopback, on ports the OS picks: moto (S3, DynamoDB and
#    its streams, CloudWatch Logs) and the EMR Serverless emulator (manual mode: runs move only when
#    a test moves them). Both are stopped however the run ends.
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
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

# 3. Rust: the function binaries (driven through the Lambda Runtime API by the tests), then all tests.
cargo build --workspace --bins
cargo test --workspace

# 4. Python: the PySpark driver on real Spark, the emulators' own tests, and every events/ sample
#    replayed through the binaries against its expected outcome (events/expected.json), also through
#    `cargo lambda invoke -A 127.0.0.1`: cargo-lambda is pinned and installed from PyPI into target/tools on first
#    use by tests/install-cargo-lambda.sh (watch and invoke need none of its dependencies).
"$root/tests/install-cargo-lambda.sh" "$root/.venv/bin/python"
cargo_lambda="$root/target/tools/cargo-lambda"
PATH="$PATH:$cargo_lambda/bin" "$root/.venv/bin/python" -m pytest -q tests/driver tests/emulator/selftest.py \
  tests/emulator/test_emr_serverless.py tests/emulator/test_local_aws.py tests/emulator/test_session_policy.py tests/emulator/test_model_manage.py tests/test_replay.py tests/test_demo.py

# 5. End to end: the sample jobs through the three binaries, moto and EMR Serverless on local Spark.
"$root/.venv/bin/python" -m pytest -q tests/e2e

# 6. The benchmarks' quick mode, only to keep the harness working: no figure fails it (tests/README.md, "Benchmarks").
./tests/bench.sh --quick > "$work/bench.log" 2>&1 || { tail -50 "$work/bench.log"; echo "the benchmark harness broke" >&2; exit 1; }
echo "bench --quick: ok ($(grep -o 'Run time: [0-9]* s' target/bench/BENCHMARKS-quick.md))"

# 7. What the README's "Deploy" section runs, offline: sam validate --lint and sam build of infra/template.yaml
#    (pinned SAM CLI, Zig and cargo-lambda from PyPI; a release build, minutes long the first time, incremental
#    in target/ after that). One PASS or FAIL line per check (tests/infra/sam-build.sh).
"$root/tests/infra/sam-build.sh"
