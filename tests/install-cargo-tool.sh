#!/usr/bin/env bash
# Installs a pinned cargo tool from crates.io into target/tools (once, and again only when the pin
# changes): tests/check-deps.sh (cargo-machete) and tests/mutants.sh (cargo-mutants) use it.
# Usage: tests/install-cargo-tool.sh CRATE VERSION [SUBCOMMAND]
#   The tool is target/tools/bin/CRATE; `CRATE [SUBCOMMAND] --version` must end with VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
crate=$1 version=$2 subcommand=${3:-}
tool="$root/target/tools/bin/$crate"
log="$root/target/tools/install-$crate.log"
installed=$("$tool" ${subcommand:+"$subcommand"} --version 2>/dev/null || true)
if [ "${installed##* }" != "$version" ]; then
  echo "installing $crate $version into target/tools (once, a few minutes; log: $log)"
  mkdir -p "$root/target/tools"
  env -u CARGO_TARGET_DIR cargo install "$crate" --version "$version" --locked --root "$root/target/tools" > "$log" 2>&1 \
    || { tail -20 "$log"; echo "installing $crate failed" >&2; exit 1; }
fi
