#!/usr/bin/env bash
# Builds the function binaries: every package under functions/, in one cargo run, into target/debug (or another
# profile: extra arguments go to cargo build, e.g. --release). Only the functions are selected, not the whole
# workspace: their dependencies then get the features the functions themselves ask for, as `sam build` and
# `cargo lambda build`/`watch` (per function) build them, rather than the wider set the tests crate turns on. So the
# binaries the tests drive are the deployed ones in debug, and `cargo lambda watch -A 127.0.0.1` (replay's cargo-lambda path)
# finds them fresh instead of building the AWS SDK again. Used by tests/run.sh, demo.sh, replay.sh and bench.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
packages=()
for manifest in "$root"/functions/*/Cargo.toml; do
  packages+=(-p "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -1)")
done
exec cargo build --manifest-path "$root/Cargo.toml" "${packages[@]}" --bins "$@"
