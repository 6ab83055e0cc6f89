"""Judges linter findings on infra/template.yaml. The template's own Metadata holds cfn-lint's configuration
(`cfn-lint.config.ignore_checks`, which cfn-lint and so `sam validate --lint` read) and, beside it, why each ignored
rule is ignored (`cfn-lint.justified`: rule, a text the finding's message contains, reason).

  justified.py unsuppressed FINDINGS.json TEMPLATE   the findings of `cfn-lint --format json --ignore-checks NONE`
      (a command-line --ignore-checks replaces the template's list, so every finding shows): any error, any finding
      no entry of `justified` explains, any entry that no longer matches a finding, and any ignored rule without an
      entry (or entry whose rule is not ignored) fail.
  justified.py clean FINDINGS.json                    the findings of plain `cfn-lint --format json`: any fails.
  justified.py sam-validate OUTPUT.txt                the output of `sam validate --lint` (text): any match fails.

Used by tests/infra/check.sh (the first two) and tests/infra/sam-build.sh (the last).
"""

import json
import re
import sys


def from_sam_validate(text: str) -> list[dict]:
    # e.g. [W1030: Validate the values that come from a Ref function] ({'Ref': ...} does not match ...) matched 211
    matches = re.findall(r"\[([EWI]\d+): [^\]]*\] \((.*?)\) matched (\d+)", text)
    if not matches and "is a valid SAM Template" not in text:
        sys.exit(f"cannot read the output of sam validate --lint:\n{text}")
    return [{"Rule": {"Id": rule}, "Message": message, "Location": {"Path": [f"line {line}"]}} for rule, message, line in matches]


def shown(finding: dict) -> str:
    return f"{finding['Rule']['Id']} {'/'.join(map(str, finding['Location']['Path']))}: {finding['Message']}"


def template_lint_metadata(template_file: str) -> tuple[list[str], list[dict]]:
    """The template's ignored rules and its justifications. The template has CloudFormation's short tags (!Ref ...):
    read it as cfn-lint does."""
    from cfnlint.decode import decode

    template, matches = decode(template_file)
    if matches:
        sys.exit(f"cannot read {template_file}: {[str(m) for m in matches]}")
    lint = template.get("Metadata", {}).get("cfn-lint", {})
    return list(lint.get("config", {}).get("ignore_checks", [])), list(lint.get("justified", []))


def judge(findings: list[dict], ignored: list[str], justified: list[dict]) -> list[str]:
    """The problems: unexplained findings, stale entries, ignored rules without a reason and reasons for rules
    that are not ignored."""
    problems = []
    used = set()
    for f in findings:
        rule, message = f["Rule"]["Id"], f["Message"]
        hit = [i for i, j in enumerate(justified) if j["rule"] == rule and j["message_contains"] in message and not rule.startswith("E")]
        if hit:
            used.update(hit)
        else:
            # A finding of an ignored rule that no entry explains is the danger of a template-wide ignore: say so.
            why = " (hidden from plain cfn-lint by the template's ignore_checks)" if any(rule.startswith(r) for r in ignored) else ""
            problems.append(f"unjustified{why}: {shown(f)}")
    for i, j in enumerate(justified):
        if i not in used:
            problems.append(f"justified but no longer reported (remove it, and its ignore_checks entry if it is the last): {j['rule']} {j['message_contains']}")
        if not j.get("reason", "").strip():
            problems.append(f"justified without a reason: {j['rule']} {j['message_contains']}")
    for rule in ignored:
        if not any(j["rule"].startswith(rule) for j in justified):
            problems.append(f"ignored without a justification: {rule}")
    for j in justified:
        if not any(j["rule"].startswith(rule) for rule in ignored):
            problems.append(f"justified but not in ignore_checks, so plain cfn-lint still reports it: {j['rule']}")
    return problems


def main() -> int:
    kind, findings_file, *rest = sys.argv[1:]
    text = open(findings_file).read()
    if kind == "sam-validate":
        findings = from_sam_validate(text)
    else:
        try:
            findings = json.loads(text)
        except json.JSONDecodeError:
            sys.exit(f"cannot read cfn-lint's JSON output:\n{text}")
    if kind == "unsuppressed":
        (template_file,) = rest
        ignored, justified = template_lint_metadata(template_file)
        problems = judge(findings, ignored, justified)
        summary = f"{len(findings)} findings without the template's ignore_checks, each justified in its Metadata"
    elif kind in ("clean", "sam-validate"):
        problems = [f"reported: {shown(f)}" for f in findings]
        summary = f"{len(findings)} findings"
    else:
        sys.exit(__doc__)
    for line in problems:
        print("  " + line)
    print(summary if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
