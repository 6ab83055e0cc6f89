"""Evaluating a job run's session policy (StartJobRun ``executionIamPolicy.policy``) on one S3
request, with moto's IAM policy evaluator (``moto.iam.access_control.IAMPolicy``).

moto's evaluator decides how statements combine (an explicit Deny wins, else any Allow, else the
implicit deny) and matches ``Action``/``NotAction`` and ``Resource``. Two of its parts are too
loose for a least-privilege policy, so they are replaced here, and only they:

* its matcher turns ``*`` into ``.*`` and leaves every other character a regular expression
  (``.`` matches anything, ``?`` is a quantifier, ``${*}`` is not understood). IAM's rules (IAM User
  Guide, "IAM JSON policy elements: Resource" and "Variables and tags"): ``*`` matches any run of
  characters, ``?`` any one character, ``${*}``, ``${?}`` and ``${$}`` a literal ``*``, ``?``,
  ``$``, everything else itself;
* its conditions know only ``StringEquals`` and let a request without the condition's key through.
  Here ``StringEquals`` and ``StringLike`` are evaluated, and a key the request does not have fails
  the condition (IAM: "If the key that you specify in a policy condition is not present in the
  request context, the values do not match"); any other operator fails closed;
* it checks a statement's conditions before its resource and answers DENIED when they fail, so one
  Allow statement whose condition does not hold (the list statement of another bucket) would deny
  the whole request. In IAM a statement whose condition does not hold does not apply: here moto
  decides the statement without its ``Condition`` and a failed condition makes that NEUTRAL.

Used by the EMR Serverless emulator to enforce a run's policy on its S3 access, and by
``test_session_policy.py`` for the allow/deny matrix of generated policies.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

# The policy variables IAM defines for characters that are otherwise special.
_LITERALS = {"${*}": "*", "${?}": "?", "${$}": "$"}
_TOKEN = re.compile(r"\$\{[*?$]\}|\*|\?|.", re.DOTALL)


def iam_pattern(pattern: str) -> re.Pattern[str]:
    """An IAM wildcard pattern as an anchored regular expression."""
    parts = []
    for token in _TOKEN.findall(pattern):
        if token in _LITERALS:
            parts.append(re.escape(_LITERALS[token]))
        elif token == "*":
            parts.append(".*")
        elif token == "?":
            parts.append(".")
        else:
            parts.append(re.escape(token))
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


class SessionPolicyStatement(IAMPolicyStatement):
    """moto's statement, with IAM's wildcard rules and the two string condition operators."""

    def is_action_permitted(self, action: str, resource: str = "*", principal: str | None = None,
                            incoming_condition_values: dict[str, str] | None = None) -> PermissionResult:
        unconditional = {k: v for k, v in self._statement.items() if k != "Condition"}
        result = _Unconditional(unconditional).is_action_permitted(action, resource, principal)
        if result != PermissionResult.NEUTRAL and not self._check_conditions(incoming_condition_values):
            return PermissionResult.NEUTRAL
        return result

    @staticmethod
    def _match(pattern: str, string: str) -> re.Match[str] | None:  # type: ignore[override]
        return iam_pattern(pattern).match(string)

    def _check_conditions(self, incoming_condition_values: dict[str, str] | None) -> bool:
        conditions = self._statement.get("Condition") or {}
        request = incoming_condition_values or {}
        for operator, keys in conditions.items():
            for key, expected in keys.items():
                wanted = expected if isinstance(expected, list) else [expected]
                if key not in request:
                    return False
                actual = request[key]
                if operator == "StringEquals":
                    ok = any(_literal(w) == actual for w in wanted)
                elif operator == "StringLike":
                    ok = any(iam_pattern(w).match(actual) for w in wanted)
                else:
                    ok = False
                if not ok:
                    return False
        return True


class _Unconditional(IAMPolicyStatement):
    """moto's decision on Effect, Action/NotAction and Resource, with IAM's wildcard rules."""

    _match = staticmethod(lambda pattern, string: iam_pattern(pattern).match(string))


def _literal(value: str) -> str:
    for variable, char in _LITERALS.items():
        value = value.replace(variable, char)
    return value


class SessionPolicy(IAMPolicy):
    """moto's policy, evaluated with :class:`SessionPolicyStatement`."""

    def is_action_permitted(self, action: str, resource: str = "*", principal: str | None = None,
                            incoming_condition_values: dict[str, str] | None = None) -> PermissionResult:
        statements = self._policy_json["Statement"]
        permitted = False
        for statement in statements if isinstance(statements, list) else [statements]:
            result = SessionPolicyStatement(statement).is_action_permitted(action, resource, principal, incoming_condition_values)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def allows(policy: str | dict, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """Whether the session policy allows ``action`` on ``resource`` (an ARN) with the request's
    condition keys (``{"s3:prefix": ...}`` for a ListBucket with a prefix)."""
    text = policy if isinstance(policy, str) else json.dumps(policy)
    return SessionPolicy(text).is_action_permitted(action, resource, incoming_condition_values=context) == PermissionResult.PERMITTED


def s3_arn(bucket: str, key: str | None = None, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}" + ("" if key is None else f"/{key}")


def denial(action: str, resource: str, who: str) -> str:
    """The message AWS gives for an action no session policy allows (what the failure classifier
    recognises as a permission error)."""
    return (f"User: {who} is not authorized to perform: {action} on resource: {resource} "
            f"because no session policy allows the {action} action")


def request_context(prefix: Any) -> dict[str, str]:
    """The condition keys of a ListBucket request: ``s3:prefix`` when it has one."""
    return {} if prefix is None else {"s3:prefix": str(prefix)}
