#!/usr/bin/env bash
# Fails when a dependency is declared but not used: cargo-machete on every crate of the workspace,
# and every [workspace.dependencies] entry must be used by some member (cargo-machete does not look
# at that table). cargo-machete is pinned and installed from crates.io into target/tools on first
# use (and when the pin changes), never again while it is there. tests/run.sh runs this first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

machete="$root/target/tools/bin/cargo-machete"
"$root/tests/install-cargo-tool.sh" cargo-machete 0.9.2
"$machete" "$root" > "$root/target/tools/machete.log" 2>&1 \
  || { cat "$root/target/tools/machete.log"; echo "unused dependencies (above): remove them" >&2; exit 1; }
members=$(cargo metadata --no-deps --format-version 1 | grep -o '"manifest_path":"[^"]*"' | cut -d'"' -f4)
unused=()
for dep in $(sed -n '/^\[workspace\.dependencies\]/,/^\[/s/^\([A-Za-z0-9_-]*\) *=.*/\1/p' Cargo.toml); do
  # shellcheck disable=SC2086  # one path per word
  grep -Eq "^$dep(\.workspace *= *true| *= *\{ *workspace *= *true)" $members || unused+=("$dep")
done
[ ${#unused[@]} -eq 0 ] || { echo "[workspace.dependencies] no member uses: ${unused[*]}" >&2; exit 1; }
echo "dependencies: none unused (cargo-machete $("$machete" --version))"
# No two modules of the shared crate import each other, directly or round a loop (shared/README.md).
python3 "$root/tests/check-module-cycles.py" "$root/shared/src"
