#!/usr/bin/env bash
# The project's one test command (README "Quick start"; .ci/run calls exactly this).
# Installs what the tests need on first use, starts moto's server on 127.0.0.1, runs every Rust
# and Python test, and stops the server however the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# 1. The project-local Python environment: moto[server], pyspark, pytest (pinned).
"$root/tests/setup-venv.sh"
export PATH="$root/.venv/bin:$PATH"
"$root/tests/infra/check.sh"  # infra/: pinned linters, checkov, cdk synth + cdk-nag, SAM/CDK agreement

# 2. One moto server for the whole run, on loopback, on a port the OS picks.
work=$(mktemp -d)
moto_pid=""
emr_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
  if [ -n "$emr_pid" ]; then kill "$emr_pid" 2>/dev/null || true; wait "$emr_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
"$root/.venv/bin/python" tests/emulator/moto_server.py --ready-file "$work/moto.json" --quiet > "$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 600); do
  [ -s "$work/moto.json" ] && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log"; echo "moto failed to start" >&2; exit 1; }
  sleep 0.1
done
MOTO_ENDPOINT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$work/moto.json")
export MOTO_ENDPOINT
echo "moto server: $MOTO_ENDPOINT"
# The EMR Serverless emulator (manual mode: runs move only when a test moves them).
"$root/.venv/bin/python" tests/emulator/emr_serverless.py --ready-file "$work/emr.json" --quiet > "$work/emr.log" 2>&1 &
emr_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/emr.json" ] && break
  kill -0 "$emr_pid" 2>/dev/null || { cat "$work/emr.log"; echo "EMR Serverless emulator failed to start" >&2; exit 1; }
  sleep 0.1
done
EMR_ENDPOINT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$work/emr.json")
export EMR_ENDPOINT
echo "EMR Serverless emulator: $EMR_ENDPOINT"

# 3. Rust: the function binaries (driven through the Lambda Runtime API by the tests), then all tests.
cargo build --workspace --bins
cargo test --workspace

# 4. Python: the PySpark driver on real Spark, and the emulators' own tests.
"$root/.venv/bin/python" -m pytest -q tests/driver tests/emulator/selftest.py tests/emulator/test_emr_serverless.py \
  tests/emulator/test_local_aws.py

# 5. End to end: the sample jobs through the three binaries, moto and EMR Serverless on local Spark.
"$root/.venv/bin/python" -m pytest -q tests/e2e

# 6. The benchmarks' quick mode, only to keep the harness working: no figure fails it (README "Benchmarks").
./tests/bench.sh --quick > "$work/bench.log" 2>&1 || { tail -50 "$work/bench.log"; echo "the benchmark harness broke" >&2; exit 1; }
echo "bench --quick: ok ($(grep -o 'Run time: [0-9]* s' target/bench/BENCHMARKS-quick.md))"
