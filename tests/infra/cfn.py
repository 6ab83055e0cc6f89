"""Offline reading of the two templates: the SAM template transformed by the SAM translator, the CDK template as
synthesized, both resolved for one set of parameter values.

Resolution evaluates what CloudFormation would evaluate from parameters alone (conditions, Fn::If, Fn::Sub, Fn::Join,
Fn::Split, Fn::Select, Fn::FindInMap, Refs to parameters) and renders what only a deployment knows as placeholders:
`${AWS::Region}`, `${JobsTable}` (a resource's Ref), `${JobsTable.StreamArn}` (a GetAtt). Numbers and booleans become
strings, so `10` (CDK) and `{"Ref": "StreamBatchSize"}` (SAM, default 10) compare equal.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAM_TEMPLATE = ROOT / "infra" / "template.yaml"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def load_yaml(path: Path) -> dict:
    from cfnlint.decode import cfn_yaml  # short-form tags (!Ref, !Sub, ...) into their long form

    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def sam_transform(template: dict) -> dict:
    """The SAM translator's output (what CloudFormation deploys), offline: no managed policy lookups are needed
    because the template attaches none, and local CodeUris are replaced by an S3 location as `sam package` would."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://sam-artifacts/function.zip"
    session = boto3.session.Session(region_name="us-east-1")
    return Translator({}, Parser(), boto_session=session).translate(sam_template=template, parameter_values={})


class Resolver:
    def __init__(self, template: dict, parameter_values: dict[str, str] | None = None):
        self.template = template
        self.parameters: dict[str, Any] = {}
        values = parameter_values or {}
        for name, spec in template.get("Parameters", {}).items():
            if name in values:
                raw: Any = values[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                continue  # e.g. CDK's BootstrapVersion
            if spec.get("Type") == "CommaDelimitedList" and isinstance(raw, str):
                raw = raw.split(",")
            elif isinstance(raw, (int, float)):
                raw = str(raw)
            self.parameters[name] = raw
        unknown = set(values) - set(template.get("Parameters", {}))
        if unknown:
            raise KeyError(f"unknown parameters {sorted(unknown)}")
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------------------------------- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._truth(self.template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if fn == "Fn::Not":
                return not self._truth(arg[0])
            if fn == "Fn::And":
                return all(self._truth(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._truth(a) for a in arg)
        raise ValueError(f"not a condition: {node!r}")

    # ------------------------------------------------------------------------------------------- values
    def resolve(self, node: Any) -> Any:
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, (int, float)):
            return str(node)
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            out = [self.resolve(item) for item in node]
            return [item for item in out if item is not NO_VALUE]
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), = node.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                    return self._function(key, arg)
            out = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in out.items() if value is not NO_VALUE}
        raise TypeError(f"unexpected node {node!r}")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        return "${" + name + "}"  # a pseudo parameter or a resource: known only when deployed

    def _function(self, fn: str, arg: Any) -> Any:
        if fn == "Ref":
            return self._ref(arg)
        if fn == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return "${" + f"{name}.{self.resolve(attribute)}" + "}"
        if fn == "Fn::If":
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if fn == "Condition":
            return "true" if self.condition(arg) else "false"
        if fn in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return "true" if self._truth({fn: arg}) else "false"
        if fn == "Fn::Join":
            delimiter, items = arg
            items = self.resolve(items)
            return delimiter.join(self._text(item) for item in items)
        if fn == "Fn::Split":
            delimiter, text = arg
            return self._text(self.resolve(text)).split(delimiter)
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if fn == "Fn::FindInMap":
            name, first, second = (self.resolve(a) for a in arg)
            return self.resolve(self.template["Mappings"][name][first][second])
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {key: self.resolve(value) for key, value in variables.items()}

            def substitute(match: re.Match) -> str:
                name = match.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in values:
                    return self._text(values[name])
                if "." in name:
                    return "${" + name + "}"
                return self._text(self._ref(name))

            return re.sub(r"\$\{([^}]+)\}", substitute, text)
        if fn == "Fn::ImportValue":
            return "${Import:" + self._text(self.resolve(arg)) + "}"
        raise ValueError(f"unsupported intrinsic function {fn}")

    @staticmethod
    def _text(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value

    def resources(self) -> dict[str, dict]:
        """Every resource the stack would have for these values, resolved."""
        out = {}
        for name, resource in self.template["Resources"].items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            out[name] = {
                "Type": resource["Type"],
                "Properties": self.resolve(resource.get("Properties", {})),
                "Metadata": resource.get("Metadata", {}),
                "DeletionPolicy": resource.get("DeletionPolicy", "Delete"),
                "UpdateReplacePolicy": resource.get("UpdateReplacePolicy", "Delete"),
            }
        return out

    def outputs(self) -> dict[str, Any]:
        out = {}
        for name, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            out[name] = self.resolve(output["Value"])
        return out
