#!/usr/bin/env bash
# The demo: one real ModelOp batch job of each type through submit, EMR Serverless (local Spark)
# and monitor and cleanup, on this machine, with no AWS account (tests/README.md, "The demo").
#   tests/demo.sh [--job FILE ...] [--expect STATUS] [--timeout SECONDS] [--keep-logs] [--python-requirements FILE] [--modelop]
#                 [--keep-running | --serve] [--ready-file PATH]   (keep the stack for modelop-spark --local)
# Every process it starts is stopped when it ends (also on failure or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

# The project-local Python environment (moto, pyspark, pytest): first run only, with progress.
./tests/setup-venv.sh
echo "Building the function binaries (tests/build-functions.sh: minutes the first time) ..."
./tests/build-functions.sh
exec .venv/bin/python tests/demo.py "$@"
