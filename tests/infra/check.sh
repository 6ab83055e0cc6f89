#!/usr/bin/env bash
# Offline checks of the deployment descriptions (infra/): run by tests/run.sh, so by CI. No AWS account needed.
#
#  1. pinned tools: cfn-lint 1.53.3 and checkov in .venv/infra (pip), the CDK app's packages in infra/cdk/node_modules
#     (npm ci from package-lock.json, aws-cdk CLI 2.x), each reinstalled only when its pins change;
#  2. the linter catches errors: every template in tests/infra/broken/ must be rejected by the SAM translator;
#  3. cfn-lint on infra/template.yaml: plain, it exits 0 and reports nothing (the template's Metadata ignores the
#     justified findings); without the template's ignore_checks, every finding is one its Metadata justifies, and
#     every justification still matches a finding;
#  4. checkov on infra/template.yaml: no failed check (skips are justified next to their resource);
#  5. cdk synth of infra/cdk for every scenario of tests/infra/scenarios.py, cdk-nag AwsSolutions clean, and
#     cfn-lint on what it synthesized;
#  6. pytest tests/infra: the SAM template and the CDK app agree, and both match the code.
# Prints one PASS or FAIL line per check and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv="$root/.venv/infra"
cdk_dir="$root/infra/cdk"
failed=0
# The CDK CLI stays offline: no version check, no telemetry, no notices (--no-notices below).
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true

# shellcheck source=tests/infra/lib.sh
. tests/infra/lib.sh

# ------------------------------------------------------------------------------------------- 1. tools
t=$(date +%s)
if ! pinned_venv "$venv" tests/infra/requirements.txt tests/infra/constraints.txt "the infrastructure checkers (cfn-lint, checkov)"; then
  fail "install .venv/infra"; exit 1
fi
want=$(sha256sum "$cdk_dir/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$cdk_dir/node_modules" ] || [ "$(cat "$cdk_dir/node_modules/.lock.sha256" 2>/dev/null)" != "$want" ]; then
  say "Installing the CDK app's packages (npm ci) ..."
  if (cd "$cdk_dir" && quiet npm ci --no-audit --no-fund); then
    echo "$want" >"$cdk_dir/node_modules/.lock.sha256"
  else
    fail "npm ci in infra/cdk"; exit 1
  fi
fi
cfn_lint_version=$("$venv/bin/cfn-lint" --version 2>&1)
checkov_version=$("$venv/bin/checkov" --version 2>&1)
cdk_version=$(cd "$cdk_dir" && ./node_modules/.bin/cdk --version 2>/dev/null)
if [ "$cfn_lint_version" = "cfn-lint 1.53.3" ] && [[ "$cdk_version" == 2.* ]] \
  && grep -qx "checkov==$checkov_version" tests/infra/requirements.txt; then
  pass "pinned tools" "$cfn_lint_version, checkov $checkov_version, aws-cdk $cdk_version; $(elapsed "$t")"
else
  fail "pinned tools" "got '$cfn_lint_version', checkov '$checkov_version', aws-cdk '$cdk_version'"
fi

# ----------------------------------------------------------------------- 2. the linter catches errors
t=$(date +%s)
for broken in tests/infra/broken/*.yaml; do
  out=$("$venv/bin/cfn-lint" --format parseable "$broken" 2>&1)
  status=$?
  if [ "$status" -ne 0 ] && grep -q "E0001:Error transforming template" <<<"$out"; then
    pass "cfn-lint rejects $(basename "$broken")" "$(grep -o 'invalid\..*' <<<"$out" | head -1)"
  else
    fail "cfn-lint rejects $(basename "$broken")" "exit $status: ${out:-no findings}"
  fi
done
say "      ($(elapsed "$t"))"

# ------------------------------------------------------------------------------ 3. cfn-lint, template
# As a user runs it: cfn-lint reads the ignore_checks of the template's Metadata, and must then report nothing.
t=$(date +%s)
findings=$(mktemp)
"$venv/bin/cfn-lint" --format json infra/template.yaml >"$findings" 2>&1
status=$?
if verdict=$("$venv/bin/python" tests/infra/justified.py clean "$findings") && [ "$status" -eq 0 ]; then
  pass "cfn-lint infra/template.yaml (exit 0, as a user runs it)" "$(tail -1 <<<"$verdict"); $(elapsed "$t")"
else
  say "$verdict"; fail "cfn-lint infra/template.yaml (exit 0, as a user runs it)" "exit $status"
fi
# The template's ignores, each still needed and justified: a command-line --ignore-checks replaces the template's
# list, so with one that matches no rule every finding shows; each must be explained by the Metadata's `justified`.
t=$(date +%s)
"$venv/bin/cfn-lint" --format json --ignore-checks NONE -- infra/template.yaml >"$findings" 2>&1
if verdict=$("$venv/bin/python" tests/infra/justified.py unsuppressed "$findings" infra/template.yaml); then
  pass "cfn-lint infra/template.yaml without its ignore_checks" "$(tail -1 <<<"$verdict"); $(elapsed "$t")"
else
  say "$verdict"; fail "cfn-lint infra/template.yaml without its ignore_checks"
fi
rm -f "$findings"

# -------------------------------------------------------------------------------------- 4. checkov
t=$(date +%s)
if out=$(BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" -f infra/template.yaml --framework cloudformation --compact --quiet \
  --skip-download 2>&1); then
  pass "checkov infra/template.yaml" "$(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' <<<"$out"); $(elapsed "$t")"
else
  say "$out"; fail "checkov infra/template.yaml"
fi

# ------------------------------------------------------------------------ 5. cdk synth and cdk-nag
t=$(date +%s)
if (cd "$cdk_dir" && quiet ./node_modules/.bin/tsc -p .); then
  pass "CDK app compiles (tsc)" "$(elapsed "$t")"
else
  fail "CDK app compiles (tsc)"
fi
synthesized=()
while IFS= read -r scenario; do
  t=$(date +%s)
  out_dir=cdk.out
  [ "$scenario" = defaults ] || out_dir="cdk.out.$scenario"
  mapfile -d '' context < <("$venv/bin/python" tests/infra/scenarios.py cdk-args "$scenario")
  rm -rf "${cdk_dir:?}/$out_dir"
  # skipBundling: synthesize for real without building Rust (infra/README.md, "Deploy with CDK" builds the binaries).
  # --app: the app compiled once above (cdk.json's app compiles it first, for people running cdk by hand).
  if log=$(cd "$cdk_dir" && ./node_modules/.bin/cdk synth --app "node dist/bin/app.js" --no-notices --quiet \
    -o "$out_dir" -c skipBundling=true "${context[@]}" 2>&1); then
    report=$(ls "$cdk_dir/$out_dir"/AwsSolutions-*-NagReport.csv 2>/dev/null | head -1)
    if [ -z "$report" ]; then
      fail "cdk synth ($scenario)" "no cdk-nag report"
    elif noncompliant=$(grep -c '"Non-Compliant"' "$report"); [ "$noncompliant" -ne 0 ]; then
      grep '"Non-Compliant"' "$report"; fail "cdk synth + cdk-nag ($scenario)" "$noncompliant findings"
    else
      suppressed=$(grep -c '"Suppressed"' "$report")
      pass "cdk synth + cdk-nag AwsSolutions ($scenario)" "0 findings, $suppressed justified suppressions; $(elapsed "$t")"
      synthesized+=("$scenario")
    fi
  else
    say "$log"; fail "cdk synth ($scenario)"
  fi
done < <("$venv/bin/python" tests/infra/scenarios.py names)

# The synthesized templates pass cfn-lint too. W3005 is ignored: CDK adds an explicit DependsOn on each function's
# role although the Role GetAtt already orders them (redundant, not wrong).
t=$(date +%s)
templates=()
for scenario in "${synthesized[@]}"; do
  out_dir=cdk.out
  [ "$scenario" = defaults ] || out_dir="cdk.out.$scenario"
  templates+=("$cdk_dir/$out_dir"/*.template.json)
done
if [ "${#templates[@]}" -gt 0 ] && out=$("$venv/bin/cfn-lint" --format parseable --ignore-checks W3005 -- "${templates[@]}" 2>&1); then
  pass "cfn-lint on the synthesized CDK templates" "${#templates[@]} templates; $(elapsed "$t")"
else
  say "$out"; fail "cfn-lint on the synthesized CDK templates"
fi

# ------------------------------------------------------------------------------------ 6. agreement
t=$(date +%s)
if out=$(cd tests/infra && "$venv/bin/python" -m pytest -q -p no:cacheprovider test_agreement.py 2>&1); then
  pass "SAM and CDK agree, and match the code (pytest tests/infra)" "$(tail -1 <<<"$out"); $(elapsed "$t")"
else
  say "$out"; fail "SAM and CDK agree, and match the code (pytest tests/infra)"
fi

if [ "$failed" -ne 0 ]; then
  say "infrastructure checks: $failed FAILED"
  exit 1
fi
say "infrastructure checks: all passed"
