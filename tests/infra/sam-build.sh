#!/usr/bin/env bash
# `sam validate --lint` and `sam build` of infra/template.yaml, offline but for PyPI and crates.io: the README's
# "Deploy" steps up to the deploy itself. The last step of tests/run.sh (a release build takes minutes).
#
#  1. pinned tools: the SAM CLI (and Zig, which cargo-lambda links with) in .venv/sam from PyPI; cargo-lambda
#     from PyPI into target/tools (tests/install-cargo-lambda.sh, shared with tests/run.sh);
#  2. sam validate --lint;
#  3. the release build sam build runs, first in one cargo run for the four functions (`cargo lambda build --release
#     --bin submit --bin monitor --bin cleanup --bin bridge`, same flags and target/ as SAM's per-function runs): cargo
#     links the four binaries in parallel, and this script prints a progress line every 30 s of it (SAM shows nothing
#     until its build ends);
#  4. sam build --beta-features (BuildMethod rust-cargolambda: `cargo lambda build --release --bin <function>` in the
#     workspace target/, so after step 3 it only checks that the build is fresh and copies) into infra/.aws-sam/build,
#     which starts empty; each of the four functions must get its own bootstrap there, an executable for the
#     architecture built. The optional bridge (condition BridgeEnabled) is built with a gateway URL given
#     (BRIDGE_OVERRIDES), so it is part of the build whether or not SAM evaluates the condition.
# The template deploys arm64 by default. Cross-compiling for it needs Rust's aarch64-unknown-linux-gnu standard
# library (`rustup target add`, a download from outside the package registries): where it is installed the
# default is built, elsewhere the build passes Architecture=x86_64, the template's other supported value.
# Prints one PASS or FAIL line per check and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv="$root/.venv/sam"
build_dir="$root/infra/.aws-sam/build"
failed=0
# shellcheck source=tests/infra/lib.sh
. tests/infra/lib.sh
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

# ------------------------------------------------------------------------------------------- 1. tools
t=$(date +%s)
if ! pinned_venv "$venv" tests/infra/sam-requirements.txt tests/infra/sam-constraints.txt "the SAM CLI and Zig"; then
  fail "install .venv/sam"; exit 1
fi
quiet tests/install-cargo-lambda.sh "$venv/bin/python" || { fail "install cargo-lambda"; exit 1; }
# The SAM CLI finds cargo-lambda on PATH; cargo-lambda finds Zig as `python3 -m ziglang` of .venv/sam.
export PATH="$venv/bin:$root/target/tools/cargo-lambda/bin:$PATH"
sam_version=$(sam --version 2>&1)
cargo_lambda_version=$(cargo-lambda lambda --version 2>&1 | cut -d' ' -f1-2)
zig_version=$(python3 -m ziglang version 2>&1)
if [ "$sam_version" = "SAM CLI, version $(sed -n 's/^aws-sam-cli==//p' tests/infra/sam-requirements.txt)" ] \
  && [ "$cargo_lambda_version" = "cargo-lambda 1.9.2" ] && [ -n "$zig_version" ]; then
  pass "pinned tools for sam build" "$sam_version, $cargo_lambda_version, zig $zig_version; $(elapsed "$t")"
else
  fail "pinned tools for sam build" "got '$sam_version', '$cargo_lambda_version', zig '$zig_version'"
fi

# -------------------------------------------------------------------------------- 2. sam validate --lint
t=$(date +%s)
# As a user runs it (README "Deploy"): exit 0 and no match. Its cfn-lint reads the ignore_checks of the template's
# Metadata; tests/infra/check.sh checks that each of those is still needed and justified.
output=$(mktemp)
(cd infra && sam validate --lint --template template.yaml) >"$output" 2>&1
status=$?
if verdict=$("$venv/bin/python" tests/infra/justified.py sam-validate "$output") && [ "$status" -eq 0 ]; then
  pass "sam validate --lint infra/template.yaml (exit 0)" "$(tail -1 <<<"$verdict"); $(elapsed "$t")"
else
  cat "$output"; say "$verdict"; fail "sam validate --lint infra/template.yaml (exit 0)" "exit $status"
fi
rm -f "$output"

# -------------------------------------------------------------------------- 3. the release build, with progress
t=$(date +%s)
# Placeholder values that turn the bridge on; only the build reads them (nothing is deployed).
BRIDGE_OVERRIDES=(ModelOpGatewayUrl=https://modelop.example.com ModelOpTokenUrl=https://idp.example.com/oauth2/token
  ModelOpClientSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:modelop-client-AbCdEf)
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  architecture=arm64 overrides=(--parameter-overrides "${BRIDGE_OVERRIDES[@]}") arch_flags=(--arm64)
else
  architecture=x86_64 overrides=(--parameter-overrides Architecture=x86_64 "${BRIDGE_OVERRIDES[@]}") arch_flags=()
fi
functions=(SubmitFunction MonitorFunction CleanupFunction BridgeFunction)
bins=()
for function in "${functions[@]}"; do
  bins+=(--bin "$(sed -n "/^  $function:/,/Binary:/s/.*Binary: *//p" infra/template.yaml)")
done
mkdir -p "$root/infra/.aws-sam"
cargo_log="$root/infra/.aws-sam/cargo-lambda-build.log"
# The same command line as SAM's (aws_lambda_builders' rust_cargo workflow: --release, --arm64 for arm64, no target
# flag for x86_64 on provided.al2023) and the same CARGO_TARGET_DIR (the workspace's target/), so sam build then finds
# every unit fresh.
cargo lambda build --release "${arch_flags[@]}" "${bins[@]}" >"$cargo_log" 2>&1 &
build_pid=$!
while ! wait_for "$build_pid" 30; do
  say "      release build: $(elapsed "$t"), $(grep -c '^ *Compiling ' "$cargo_log") crates started$(
    grep '^ *Compiling ' "$cargo_log" | tail -1 | sed 's/^ *Compiling \([^ ]*\).*/ (last: \1)/')"
done
label="cargo lambda build --release${arch_flags[*]:+ ${arch_flags[*]}} ${bins[*]}"
built=0
if wait "$build_pid"; then
  built=1
  pass "$label" \
    "$(grep -c '^ *Compiling ' "$cargo_log") crates compiled; $(elapsed "$t")"
else
  tail -30 "$cargo_log"; fail "$label" "log: infra/.aws-sam/cargo-lambda-build.log"
fi

# ------------------------------------------------------------------------------------------- 4. sam build
t=$(date +%s)
rm -rf "$build_dir"
log="$root/infra/.aws-sam/sam-build.log"
# infra/samconfig.toml turns on the beta feature too; the flag is what the README's command says.
if [ "$built" = 0 ]; then
  fail "sam build infra/template.yaml" "not run: the release build above failed"
elif (cd infra && sam build --beta-features --template template.yaml --build-dir "$build_dir" "${overrides[@]}") >"$log" 2>&1; then
  # ELF e_machine (bytes 18-19, little endian): 0x3e x86_64, 0xb7 aarch64.
  machine=$([ "$architecture" = arm64 ] && echo b700 || echo 3e00)
  problems=()
  for function in "${functions[@]}"; do
    binary=$(sed -n "/^  $function:/,/Binary:/s/.*Binary: *//p" infra/template.yaml)
    bootstrap="$build_dir/$function/bootstrap"
    if [ ! -x "$bootstrap" ]; then
      problems+=("$function: no executable bootstrap")
    elif [ "$(head -c 4 "$bootstrap" | od -An -tx1 | tr -d ' \n')" != 7f454c46 ] \
      || [ "$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' \n')" != "$machine" ]; then
      problems+=("$function: bootstrap is not an ELF executable for $architecture")
    elif ! grep -q "functions/$binary/src/" "$bootstrap"; then
      # The binary's own sources are named in it (panic locations): the bootstrap is $binary, not another function.
      problems+=("$function: bootstrap is not the $binary binary")
    fi
  done
  if [ "${#problems[@]}" -eq 0 ] && [ -f "$build_dir/template.yaml" ]; then
    pass "sam build infra/template.yaml" "${#functions[@]} bootstraps, $architecture, in infra/.aws-sam/build; $(elapsed "$t")"
  else
    printf '  %s\n' "${problems[@]}"; fail "sam build infra/template.yaml" "log: infra/.aws-sam/sam-build.log"
  fi
else
  tail -30 "$log"; fail "sam build infra/template.yaml" "log: infra/.aws-sam/sam-build.log"
fi

if [ "$failed" -ne 0 ]; then
  say "sam checks: $failed FAILED"
  exit 1
fi
say "sam checks: all passed"
