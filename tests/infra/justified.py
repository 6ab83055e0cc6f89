"""Judges linter findings on infra/template.yaml against infra/cfn-lint-justified.json: any error, any warning not
justified there, and any justification that no longer matches a finding fail. Used by tests/infra/check.sh (cfn-lint
--format json) and tests/infra/sam-build.sh (`sam validate --lint`, which prints its matches as text and exits 1 on
any of them, warnings included: it cannot be given the justified list).

Usage: justified.py cfn-lint-json FINDINGS.json JUSTIFIED.json | justified.py sam-validate OUTPUT.txt JUSTIFIED.json
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


def main() -> int:
    kind, findings_file, justified_file = sys.argv[1:]
    text = open(findings_file).read()
    findings = json.loads(text) if kind == "cfn-lint-json" else from_sam_validate(text)
    justified = json.load(open(justified_file))["justified"]
    used = set()
    bad = []
    for f in findings:
        rule, message = f["Rule"]["Id"], f["Message"]
        hit = [i for i, j in enumerate(justified) if j["rule"] == rule and j["message_contains"] in message and not rule.startswith("E")]
        if hit:
            used.update(hit)
        else:
            bad.append(f"{rule} {'/'.join(map(str, f['Location']['Path']))}: {message}")
    stale = [j["rule"] + " " + j["message_contains"] for i, j in enumerate(justified) if i not in used]
    for line in bad:
        print("  unjustified:", line)
    for line in stale:
        print("  justified but no longer reported (remove it):", line)
    print(f"{len(findings)} findings, {len(findings) - len(bad)} justified")
    return 1 if bad or stale else 0


if __name__ == "__main__":
    sys.exit(main())
