#!/usr/bin/env bash
# The benchmark command (tests/README.md, "Benchmarks"). Measures cold start, round trips on the
# critical path, batch scaling, memory, package size, a 10,000-object cleanup, a burst of 2,000
# jobs against a StartJobRun quota and a storm of 2,000 runs ending against a GetLogEvents quota,
# against the local emulators on 127.0.0.1, and writes
# tests/bench/BENCHMARKS.md. No figure fails it: the
# exit status is non-zero only if the harness itself breaks.
#
#   ./tests/bench.sh           full run: release build, cargo lambda build (arm64 if it cross-
#                              compiles here, else x86_64), many repetitions
#                              → tests/bench/BENCHMARKS.md
#   ./tests/bench.sh --quick   CI smoke run: the debug binaries `cargo build` made, few
#                              repetitions, small inputs, no package build → target/bench/BENCHMARKS-quick.md
#   ./tests/bench.sh --only STEP [--only STEP...]
#                              only those measurements (cold-start, round-trips, batch-scaling, memory,
#                              package-size, cleanup, burst, storm), release build; the package is built only for
#                              package-size → target/bench/BENCHMARKS-only.md (tests/bench/BENCHMARKS.md is left alone)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

usage() { echo "usage: $0 [--quick] [--only STEP]..." >&2; exit 2; }
quick=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) [ $# -ge 2 ] || usage; only+=(--only "$2"); shift ;;
    *) usage ;;
  esac
  shift
done

"$root/tests/setup-venv.sh"
export PATH="$root/.venv/bin:$PATH"
fns=(-p submit -p monitor -p cleanup)

if [ "$quick" = 1 ]; then
  "$root/tests/build-functions.sh"  # what tests/run.sh builds: a no-op there
  mkdir -p target/bench
  exec "$root/.venv/bin/python" tests/bench/bench.py --quick "${only[@]}" --bin-dir target/debug \
    --profile-note "debug build: --quick only keeps the harness working" --out target/bench/BENCHMARKS-quick.md
fi

# Full run (or the measurements named by --only) on the release binaries.
cargo build --release "${fns[@]}" --bins
if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" package-size "* ]]; then
  mkdir -p target/bench
  exec "$root/.venv/bin/python" tests/bench/bench.py "${only[@]}" --bin-dir target/release --profile-note "release profile" \
    --out target/bench/BENCHMARKS-only.md
fi

# The package: cargo-lambda (and the zig it cross-compiles with) from PyPI, into the project's venv.
if ! "$root/.venv/bin/cargo-lambda" --version >/dev/null 2>&1; then
  "$root/.venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off cargo-lambda
fi

arch=arm64 note="cross-compiled with cargo-lambda and zig"
pkg_args=()
if ! { rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
       || rustup target add aarch64-unknown-linux-gnu; } \
   || ! cargo lambda build --release --arm64 "${fns[@]}"; then
  echo "bench: the arm64 cross build failed here; measuring the x86_64 package instead" >&2
  arch=x86_64 note="arm64 cross-compilation failed on this machine, so x86_64"
  cargo lambda build --release --x86-64 "${fns[@]}" || { arch=none; note="cargo lambda build failed"; }
fi
[ "$arch" != none ] && pkg_args=(--package-dir target/lambda --package-arch "$arch")

out=tests/bench/BENCHMARKS.md
[ ${#only[@]} -gt 0 ] && out=target/bench/BENCHMARKS-only.md && mkdir -p target/bench
exec "$root/.venv/bin/python" tests/bench/bench.py "${only[@]}" --bin-dir target/release --profile-note "release profile" \
  --out "$out" --package-note "$note" "${pkg_args[@]}"
