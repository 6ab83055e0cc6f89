#!/usr/bin/env bash
# Mutation testing of the rules (tests/README.md, "Mutation testing"): cargo-mutants plants one
# plausible bug at a time in shared's rule modules and the functions' decisions and failure policy
# (.cargo/mutants.toml says which files, which mutants are excluded and why), and runs the unit
# tests of the crate it mutated (cargo test -p <crate> --lib) against each. A "missed" mutant is a
# bug no test catches. Not in CI: the full run takes hours on two cores.
#
#   tests/mutants.sh                    every mutant of the configured files
#   tests/mutants.sh --in-diff [BASE]   only the mutants in lines changed since BASE (default: where
#                                       HEAD left main), committed or not: minutes for a change
#   tests/mutants.sh [--in-diff [BASE]] ARGS...   more cargo-mutants arguments: --list (the mutants,
#                                       nothing run), --re REGEX (only the mutants whose name, which
#                                       starts with the file's path, matches: --re '^shared/src/text\.rs:'
#                                       or --re disposition_of; --file adds files rather than narrowing),
#                                       --iterate (skip the mutants caught last time)
#
# cargo-mutants (pinned) is installed from crates.io into target/tools on first use. It builds in
# its own copy of the tree, with its builds in target/mutants (kept between runs, so only the first
# builds the dependencies); its report goes to target/mutants.out/ (missed.txt, caught.txt, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mutants="$root/target/tools/bin/cargo-mutants"
"$root/tests/install-cargo-tool.sh" cargo-mutants 27.1.0 mutants

args=()
if [ "${1:-}" = "--in-diff" ]; then
  shift
  base=$(git merge-base HEAD main)
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then base=$1; shift; fi
  mkdir -p "$root/target"
  diff="$root/target/mutants.diff"
  git diff "$base" -- > "$diff"
  if [ ! -s "$diff" ]; then
    echo "no change since $base: nothing to mutate (name a base: tests/mutants.sh --in-diff HEAD~1)"
    exit 0
  fi
  args+=(--in-diff "$diff")
fi

# The builds go to a target directory of their own, so that the other builds of target/ are not
# locked or invalidated, and the next run finds the dependencies built. Not with more than one job
# (-j/--jobs): cargo names a workspace crate's build the same from every copy of the tree, so two
# copies sharing one target directory take each other's builds for their own (cargo says "Fresh"
# and a mutant is tested against another's binary). Then each copy builds in its own target/,
# dependencies included, once per run.
jobs=1
prev=
for arg in "$@"; do
  case "$prev:$arg" in
    -j:*|--jobs:*) jobs=$arg ;;
    *:--jobs=*) jobs=${arg#--jobs=} ;;
    *:-j[0-9]*) jobs=${arg#-j} ;;
  esac
  prev=$arg
done
if [ "$jobs" = 1 ]; then
  export CARGO_TARGET_DIR="$root/target/mutants"
else
  unset CARGO_TARGET_DIR
  echo "$jobs jobs: each copy of the tree builds in its own target directory (dependencies too, once per run)"
fi
exec "$mutants" mutants --output "$root/target" --no-shuffle "${args[@]}" "$@"
