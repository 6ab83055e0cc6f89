#!/usr/bin/env bash
# Installs the pinned cargo-lambda from PyPI into target/tools/cargo-lambda (once; its binary is then
# target/tools/cargo-lambda/bin/cargo-lambda). Used by tests/run.sh (watch, invoke) and tests/infra/sam-build.sh
# (sam build). Without its dependencies: the ziglang it would pull is pinned where a build needs it.
# Usage: tests/install-cargo-lambda.sh PYTHON (the interpreter whose pip installs it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=$1
cargo_lambda_version=1.9.2
cargo_lambda="$root/target/tools/cargo-lambda"
if ! "$cargo_lambda/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $cargo_lambda_version "; then
  echo "installing cargo-lambda $cargo_lambda_version into target/tools (once; log: target/tools/cargo-lambda.log)"
  rm -rf "$cargo_lambda" && mkdir -p "$root/target/tools"
  "$python" -m pip install --disable-pip-version-check --no-deps --target "$cargo_lambda" \
    "cargo-lambda==$cargo_lambda_version" > "$root/target/tools/cargo-lambda.log" 2>&1 \
    || { tail -20 "$root/target/tools/cargo-lambda.log"; echo "installing cargo-lambda failed" >&2; exit 1; }
fi
