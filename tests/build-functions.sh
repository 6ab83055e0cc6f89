#!/usr/bin/env bash
# Builds the function binaries, every package under functions/, in one cargo run, into target/debug (or another
# profile: extra arguments go to cargo build, e.g. --release). The binaries are selected with `--bin NAME` from the
# workspace's root manifest, without `-p`: cargo then resolves the dependencies' features for the whole workspace,
# exactly as `sam build` (`cargo lambda build --release --bin NAME`, tests/infra/sam-build.sh) and `cargo lambda watch -A 127.0.0.1`
# (`cargo run --manifest-path Cargo.toml --bin NAME`) do. So the binaries the tests drive are the deployed ones in
# debug, and the replay's `cargo lambda watch -A 127.0.0.1` finds them fresh. Selecting the packages instead (`-p
# submit ...`) resolved fewer features (uuid without `v4`, which the CLI asks for), and every crate above uuid,
# the whole AWS SDK, was built a second time in debug when `cargo lambda watch -A 127.0.0.1` ran (about 4 minutes of CI's step 6).
# Used by tests/run.sh, demo.sh, replay.sh and bench.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bins=()
for manifest in "$root"/functions/*/Cargo.toml; do
  # Each function package has one binary, named after the package (the template's `Binary:`).
  bins+=(--bin "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -1)")
done
exec cargo build --manifest-path "$root/Cargo.toml" "${bins[@]}" "$@"
