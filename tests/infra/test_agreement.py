"""The SAM template (infra/template.yaml) and the CDK app (infra/cdk) describe the same service, and both match the
code: the configuration it reads, the AWS calls it makes, and the events its handlers act on.

The CDK app must have been synthesized for every scenario first (tests/infra/check.sh does it): `cdk.out` for
`defaults`, `cdk.out.<scenario>` for the others.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cfn import ROOT, SAM_TEMPLATE, Resolver, load_yaml, sam_transform
from scenarios import SCENARIOS, context_key

CDK_DIR = ROOT / "infra" / "cdk"
FUNCTIONS = {"SubmitFunction": "submit", "MonitorFunction": "monitor", "CleanupFunction": "cleanup", "BridgeFunction": "bridge"}
ROLES = {"SubmitFunction": "SubmitRole", "MonitorFunction": "MonitorRole", "CleanupFunction": "CleanupRole", "BridgeFunction": "BridgeRole"}
# The bridge to ModelOp Center is optional: deployed only when ModelOpGatewayUrl is set (condition BridgeEnabled).
# In the scenarios: off by default, on in the other two (in a VPC in BRIDGE_IN_VPC).
BRIDGE = "BridgeFunction"
BRIDGE_IN_VPC = "function-roles-with-buckets"


def bridge_on(scenario: str) -> bool:
    return bool(SCENARIOS[scenario].get("ModelOpGatewayUrl"))


# ------------------------------------------------------------------------------------------------ loading
@pytest.fixture(scope="session")
def sam_source() -> dict:
    return load_yaml(SAM_TEMPLATE)


@pytest.fixture(scope="session")
def sam_transformed(sam_source) -> dict:
    return sam_transform(sam_source)


def cdk_out(scenario: str) -> Path:
    return CDK_DIR / ("cdk.out" if scenario == "defaults" else f"cdk.out.{scenario}")


def cdk_template(scenario: str) -> dict:
    templates = sorted(cdk_out(scenario).glob("*.template.json"))
    if len(templates) != 1:
        pytest.fail(f"no synthesized CDK template in {cdk_out(scenario)}: run tests/infra/check.sh")
    return json.loads(templates[0].read_text())


_views: dict[tuple[str, str], dict] = {}


def view(kind: str, scenario: str, sam_transformed: dict) -> dict:
    """The essentials of one template for one scenario (cached)."""
    key = (kind, scenario)
    if key not in _views:
        if kind == "sam":
            resolver = Resolver(sam_transformed, SCENARIOS[scenario])
        else:
            resolver = Resolver(cdk_template(scenario))
        _views[key] = essentials(resolver.resources(), resolver.outputs())
    return _views[key]


# ------------------------------------------------------------------------------------------------ essentials
def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def canonical(value: Any) -> str:
    """A JSON text that ignores key order and the order of list items."""

    def sort(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sort(v[k]) for k in sorted(v)}
        if isinstance(v, list):
            return sorted((sort(i) for i in v), key=lambda i: json.dumps(i, sort_keys=True))
        return v

    return json.dumps(sort(value), sort_keys=True)


def principal(value: Any) -> str:
    if value == "*" or value == {"AWS": "*"}:
        return "*"
    (kind, who), = value.items()
    return f"{kind}:{canonical(who)}"


def grants(statements: list[dict]) -> set[tuple]:
    """(effect, action, resource, condition) for every action and resource of the statements."""
    out = set()
    for s in statements:
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(s), s
        condition = canonical(s.get("Condition", {}))
        for action in as_list(s["Action"]):
            for resource in as_list(s["Resource"]):
                out.add((s["Effect"], action, resource, condition))
    return out


def resource_policy(statements: list[dict]) -> set[tuple]:
    """(resource, effect, principal, action, condition operator, key, one value) for each combination."""
    out = set()
    for s in statements:
        conditions = [
            (op, key, v) for op, keys in s.get("Condition", {}).items() for key, values in keys.items() for v in as_list(values)
        ] or [("", "", "")]
        for resource in as_list(s["Resource"]):
            for action in as_list(s["Action"]):
                for condition in conditions:
                    out.add((resource, s["Effect"], principal(s["Principal"]), action, *condition))
    return out


def essentials(resources: dict[str, dict], outputs: dict[str, Any]) -> dict[str, Any]:
    by_type: dict[str, dict[str, dict]] = {}
    for name, resource in resources.items():
        by_type.setdefault(resource["Type"], {})[name] = resource
    of = lambda t: by_type.get(t, {})  # noqa: E731

    functions = {}
    for name, r in of("AWS::Lambda::Function").items():
        p = r["Properties"]
        functions[name] = {
            key: p.get(key)
            for key in (
                "Runtime", "Handler", "Architectures", "MemorySize", "Timeout", "ReservedConcurrentExecutions",
                "Role", "LoggingConfig", "DeadLetterConfig", "Description", "VpcConfig",
            )
        } | {"Environment": p.get("Environment", {}).get("Variables", {})}

    mappings = {}
    for name, r in of("AWS::Lambda::EventSourceMapping").items():
        p = dict(r["Properties"])
        p["FilterCriteria"] = [json.loads(f["Pattern"]) for f in p.get("FilterCriteria", {}).get("Filters", [])]
        p.setdefault("Enabled", "true")
        mappings[name] = p

    rules = {}
    for name, r in of("AWS::Events::Rule").items():
        p = r["Properties"]
        rules[name] = {
            "EventPattern": p.get("EventPattern"),
            "ScheduleExpression": p.get("ScheduleExpression"),
            "State": p.get("State", "ENABLED"),
            "Description": p.get("Description"),
            "Targets": sorted(
                canonical({k: v for k, v in t.items() if k != "Id"}) for t in p.get("Targets", [])
            ),
        }

    roles = {}
    for name, r in of("AWS::IAM::Role").items():
        p = r["Properties"]
        statements = [s for policy in p.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
        roles[name] = {
            "trust": sorted(map(canonical, p["AssumeRolePolicyDocument"]["Statement"])),
            "managed": p.get("ManagedPolicyArns", []),
            "statements": statements,
            "Description": p.get("Description"),
        }
    for name, r in of("AWS::IAM::Policy").items():
        for role in r["Properties"].get("Roles", []):
            roles[role.strip("${}")]["statements"] += r["Properties"]["PolicyDocument"]["Statement"]
    for role in roles.values():
        role["grants"] = sorted(grants(role.pop("statements")))

    managed_policies = {
        name: {
            "Description": r["Properties"].get("Description"),
            "grants": sorted(grants(r["Properties"]["PolicyDocument"]["Statement"])),
            "attached to": sorted(
                f"{kind}:{who}" for kind in ("Roles", "Users", "Groups") for who in r["Properties"].get(kind, [])
            ),
        }
        for name, r in of("AWS::IAM::ManagedPolicy").items()
    }

    queue_policies: set[tuple] = set()
    for r in of("AWS::SQS::QueuePolicy").values():
        queue_policies |= resource_policy(r["Properties"]["PolicyDocument"]["Statement"])
    bucket_policies: set[tuple] = set()
    for r in of("AWS::S3::BucketPolicy").values():
        bucket_policies |= resource_policy(r["Properties"]["PolicyDocument"]["Statement"])

    tables = {}
    for name, r in of("AWS::DynamoDB::Table").items():
        p = r["Properties"]
        tables[name] = {
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": canonical(p["AttributeDefinitions"]),
            "GlobalSecondaryIndexes": canonical(p.get("GlobalSecondaryIndexes", [])),
            "StreamSpecification": p.get("StreamSpecification"),
            "PointInTimeRecovery": p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"),
            "SSEEnabled": p.get("SSESpecification", {}).get("SSEEnabled"),
            "BillingMode": p.get("BillingMode"),
            "DeletionProtectionEnabled": p.get("DeletionProtectionEnabled"),
            "DeletionPolicy": (r["DeletionPolicy"], r["UpdateReplacePolicy"]),
        }
    buckets = {
        name: {
            key: r["Properties"].get(key)
            for key in ("BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls", "LifecycleConfiguration")
        }
        | {"DeletionPolicy": (r["DeletionPolicy"], r["UpdateReplacePolicy"])}
        for name, r in of("AWS::S3::Bucket").items()
    }
    queues = {
        name: {k: r["Properties"].get(k) for k in ("SqsManagedSseEnabled", "KmsMasterKeyId", "MessageRetentionPeriod")}
        for name, r in of("AWS::SQS::Queue").items()
    }
    log_groups = {
        name: {k: r["Properties"].get(k) for k in ("LogGroupName", "RetentionInDays", "KmsKeyId")}
        for name, r in of("AWS::Logs::LogGroup").items()
    }
    permissions = sorted(
        (r["Properties"]["FunctionName"], r["Properties"]["Principal"], r["Properties"]["Action"], r["Properties"].get("SourceArn"))
        for r in of("AWS::Lambda::Permission").values()
    )
    alarms = {name: r["Properties"] for name, r in of("AWS::CloudWatch::Alarm").items()}
    dashboards = {
        name: r["Properties"] | {"DashboardBody": json.loads(r["Properties"]["DashboardBody"])}
        for name, r in of("AWS::CloudWatch::Dashboard").items()
    }
    topics = {name: r["Properties"] for name, r in of("AWS::SNS::Topic").items()}
    topic_policies: set[tuple] = set()
    for r in of("AWS::SNS::TopicPolicy").values():
        topic_policies |= resource_policy(r["Properties"]["PolicyDocument"]["Statement"])
    subscriptions = {name: r["Properties"] for name, r in of("AWS::SNS::Subscription").items()}
    keys = {
        name: r["Properties"] | {"KeyPolicy": sorted(map(canonical, r["Properties"]["KeyPolicy"]["Statement"]))}
        for name, r in of("AWS::KMS::Key").items()
    }
    invoke_configs = sorted(
        # SAM writes an empty DestinationConfig where CDK writes none: the same thing.
        canonical({k: v for k, v in r["Properties"].items() if v != {}}) for r in of("AWS::Lambda::EventInvokeConfig").values()
    )
    return {
        "functions": functions,
        "event source mappings": mappings,
        "rules": rules,
        "lambda permissions": permissions,
        "async invoke configs": invoke_configs,
        "roles": roles,
        "managed policies": managed_policies,
        "queue policies": sorted(queue_policies),
        "bucket policies": sorted(bucket_policies),
        "tables": tables,
        "buckets": buckets,
        "queues": queues,
        "log groups": log_groups,
        "alarms": alarms,
        "dashboards": dashboards,
        "topics": topics,
        "topic policies": sorted(topic_policies),
        "subscriptions": subscriptions,
        "kms keys": keys,
        "outputs": outputs,
        "resource types": sorted({r["Type"] for r in resources.values() if r["Type"] != "AWS::CDK::Metadata"}),
    }


CATEGORIES = [
    "functions", "event source mappings", "rules", "lambda permissions", "async invoke configs", "roles",
    "managed policies", "queue policies", "bucket policies", "tables", "buckets", "queues", "log groups", "alarms", "dashboards", "topics",
    "topic policies", "subscriptions", "kms keys", "outputs", "resource types",
]


# ------------------------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_sam_and_cdk_agree(scenario, category, sam_transformed):
    sam = view("sam", scenario, sam_transformed)[category]
    cdk = view("cdk", scenario, sam_transformed)[category]
    if isinstance(sam, dict):
        assert sorted(sam) == sorted(cdk), f"{category}: different names"
        for name in sam:
            assert sam[name] == cdk[name], f"{category} / {name} differ (SAM first)"
    else:
        assert sam == cdk


# ------------------------------------------------------------------------------------------------ the code
def rust_constants(text: str) -> dict[str, str]:
    """`pub const X: &str = "X";` constants, and the settings declared in config.rs's `settings! { ... }`
    block (one per line: `NAME;` or `NAME yaml "key";`; the constant's value is its name)."""
    constants = dict(re.findall(r'pub const ([A-Z_0-9]+): &str = "([A-Z_0-9]+)";', text))
    block = re.search(r"^settings! \{\n(.*?)^\}", text, re.S | re.M)
    if block:
        names = re.findall(r"^\s+([A-Z][A-Z_0-9]+)(?:\s+yaml\s+\"[^\"]*\")?;", block.group(1), re.M)
        constants.update({name: name for name in names})
    return constants


def settings_reads() -> dict[str, set[str]]:
    """The environment variables each of Settings::service/submit/cleanup/monitor/bridge reads (shared/src/config.rs)."""
    text = (ROOT / "shared" / "src" / "config.rs").read_text()
    constants = rust_constants(text)
    reads = {}
    for method in ("service", "submit", "cleanup", "monitor", "bridge"):
        body = re.search(rf"pub fn {method}\(&self\)[^{{]*\{{(.*?)\n    \}}\n", text, re.S)
        assert body, f"Settings::{method} not found in config.rs"
        reads[method] = {constants[c] for c in re.findall(r"\b([A-Z][A-Z_0-9]+)\b", body.group(1)) if c in constants}
    return reads


# Variables the deployment sets on purpose to nothing: a local-endpoint switch, the YAML alternative, and how
# failure summaries name a local (or custom-image) Python environment.
NOT_DEPLOYED = {"S3_FORCE_PATH_STYLE", "CONFIG_FILE", "MONITOR_SPARK_ENVIRONMENT_NAME"}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_each_function_gets_exactly_the_variables_its_code_reads(kind, scenario, sam_transformed):
    reads = settings_reads()
    functions = view(kind, scenario, sam_transformed)["functions"]
    assert set(functions) == set(FUNCTIONS) - ({BRIDGE} if not bridge_on(scenario) else set())
    for function, settings in FUNCTIONS.items():
        if function in functions:
            expected = (reads["service"] | reads[settings]) - NOT_DEPLOYED
            assert set(functions[function]["Environment"]) == expected, function
    if bridge_on(scenario):
        # With every function deployed, every setting the code declares is set somewhere.
        everything = set(rust_constants((ROOT / "shared" / "src" / "config.rs").read_text()).values())
        deployed = set().union(*(set(f["Environment"]) for f in functions.values()))
        assert everything - NOT_DEPLOYED == deployed


def test_functions_build_the_workspace_binaries(sam_source):
    packages = {
        re.search(r'^name = "([^"]+)"', (d / "Cargo.toml").read_text(), re.M).group(1)
        for d in (ROOT / "functions").iterdir()
        if (d / "Cargo.toml").exists()
    }
    assert sorted(FUNCTIONS.values()) == sorted(packages)
    resources = sam_source["Resources"]
    assert sam_source["Globals"]["Function"]["CodeUri"] == ".."  # the workspace root, relative to infra/
    assert (SAM_TEMPLATE.parent / sam_source["Globals"]["Function"]["CodeUri"] / "Cargo.toml").exists()
    for function, binary in FUNCTIONS.items():
        metadata = resources[function]["Metadata"]
        assert metadata["BuildMethod"] == "rust-cargolambda"
        assert metadata["BuildProperties"] == {"Binary": binary}
    stack = (CDK_DIR / "lib" / "stack.ts").read_text()
    built = dict(re.findall(r"rustFunction\(\s*'(\w+)',\s*'(\w+)'", stack))
    assert built == FUNCTIONS


def test_every_function_is_logged_as_json_with_retention(sam_transformed):
    for kind in ("sam", "cdk"):
        v = view(kind, BRIDGE_IN_VPC, sam_transformed)  # every function, default architecture and retention
        for function in FUNCTIONS:
            f = v["functions"][function]
            assert f["Runtime"] == "provided.al2023" and f["Handler"] == "bootstrap"
            assert f["Architectures"] == ["arm64"]
            assert f["LoggingConfig"]["LogFormat"] == "JSON"
            group = f["LoggingConfig"]["LogGroup"].strip("${}")
            assert v["log groups"][group]["RetentionInDays"] == "365"
            assert f["ReservedConcurrentExecutions"], f"{function} has no concurrency limit"
    assert view("sam", "bring-your-own", sam_transformed)["functions"]["SubmitFunction"]["Architectures"] == ["x86_64"]


# SDK operation (as called in shared/src/aws) -> the IAM actions it needs.
SDK_ACTIONS = {
    "get_item": {"dynamodb:GetItem"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "query": {"dynamodb:Query"},
    "put_object": {"s3:PutObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject"},
    "list_objects_v2": {"s3:ListBucket"},
    "delete_objects": {"s3:DeleteObject"},
    "list_applications": {"emr-serverless:ListApplications"},
    "create_application": {"emr-serverless:CreateApplication", "emr-serverless:TagResource"},
    "start_application": {"emr-serverless:StartApplication"},
    "start_job_run": {"emr-serverless:StartJobRun", "emr-serverless:TagResource", "iam:PassRole"},
    "list_job_runs": {"emr-serverless:ListJobRuns"},
    "get_job_run": {"emr-serverless:GetJobRun"},
    "list_job_run_attempts": {"emr-serverless:ListJobRunAttempts"},
    "cancel_job_run": {"emr-serverless:CancelJobRun"},
    "get_log_events": {"logs:GetLogEvents"},
    "get_secret_value": {"secretsmanager:GetSecretValue"},
}

# Granted although no SDK call of the code makes them, each for a reason.
GRANTED_WITHOUT_A_CALL = {
    "logs:CreateLogStream": "the function's own log group (Lambda writes it with the function's role)",
    "logs:PutLogEvents": "the function's own log group",
    "dynamodb:DescribeStream": "Lambda reads the stream for the event source mapping with the function's role",
    "dynamodb:GetRecords": "event source mapping",
    "dynamodb:GetShardIterator": "event source mapping",
    "dynamodb:ListStreams": "event source mapping (Lambda's documented stream permissions)",
    "sqs:SendMessage": "OnFailure destinations and the function DLQ are written with the function's role",
    "emr-serverless:GetApplication": "ModelOp's action list for the application lookup (read-only)",
    "logs:DescribeLogStreams": "reading job logs (ModelOp's page: read CloudWatch Logs of the job log group)",
    "logs:FilterLogEvents": "reading job logs (ModelOp's page: read CloudWatch Logs of the job log group)",
    "sts:AssumeRole": "EMR_MAIN_ROLE_ARN (shared/src/aws/clients.rs AssumeRoleProvider)",
}


def sdk_sources() -> list[Path]:
    """Where the code calls AWS: shared/src/aws, and the AWS SDK clients of shared/src/model_manage (the bridge's
    table and secret; its HTTP client to model-manage is no AWS call)."""
    model_manage = [p for p in (ROOT / "shared" / "src" / "model_manage").glob("*.rs") if "aws_sdk_" in p.read_text()]
    return sorted((ROOT / "shared" / "src" / "aws").glob("*.rs")) + sorted(model_manage)


# SDK calls in shared/src/aws that only the operator CLI's adapter methods make (cli/src calls them; no function does),
# so no function role is given them: the operator policies are held to them instead.
CLI_ONLY_SDK_CALLS = {
    "create_bucket": "S3ObjectStore::ensure_bucket: `submit --local` makes the local stack's bucket",
    "describe_log_groups": "CloudWatchLogReader::log_group_exists: `doctor`",
    "describe_table": "DynamoJobStore::table_shape: `doctor`",
    "get_application": "EmrServerlessClient::application_details: `doctor`",
    "get_dashboard_for_job_run": "EmrServerlessClient::dashboard_url: `ui`",
}


def sdk_calls() -> set[str]:
    """The SDK operations shared/src/aws and model_manage call for the functions (CLI_ONLY_SDK_CALLS left out)."""
    calls = set()
    for path in sdk_sources():
        calls |= set(re.findall(r"client\s*\.\s*([a-z_0-9]+)\s*\(", path.read_text()))
    return calls - set(CLI_ONLY_SDK_CALLS)


def test_the_cli_only_calls_are_made_for_the_cli_alone():
    """Each CLI-only SDK call is in shared/src/aws, in the operator CLI's table, and its method is called by cli/src and by
    no function."""
    sources = "\n".join(p.read_text() for p in sdk_sources())
    cli = "\n".join(p.read_text() for p in (ROOT / "cli" / "src").rglob("*.rs"))
    functions = "\n".join(p.read_text() for p in (ROOT / "functions").rglob("*.rs"))
    for call, why in CLI_ONLY_SDK_CALLS.items():
        assert re.search(rf"client\s*\.\s*{call}\s*\(", sources), call
        method = why.split("::")[1].split(":")[0]
        assert re.search(rf"\.\s*{method}\s*\(", cli), f"cli/src no longer calls {method}"
        assert not re.search(rf"\.\s*{method}\s*\(", functions), f"a function calls {method}: give its role {call}"


def function_actions(v: dict) -> dict[str, set[str]]:
    return {f: {g[1] for g in v["roles"][role]["grants"]} for f, role in ROLES.items() if role in v["roles"]}


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_every_sdk_call_is_granted_and_nothing_else(kind, sam_transformed):
    calls = sdk_calls()
    unknown = calls - set(SDK_ACTIONS)
    assert not unknown, f"shared/src/aws or model_manage calls {sorted(unknown)}: add them to SDK_ACTIONS and to the roles"
    assert {"put_item", "get_secret_value"} <= calls, "the scan no longer sees the bridge's calls"
    needed = set().union(*(SDK_ACTIONS[c] for c in calls))
    granted = set()
    for scenario in ("defaults", "function-roles-with-buckets"):
        granted |= set().union(*function_actions(view(kind, scenario, sam_transformed)).values())
    assert needed - granted == set(), "calls the functions' roles cannot make"
    assert granted - needed - set(GRANTED_WITHOUT_A_CALL) == set(), "grants no code needs"


# The per-function action lists (functions/<name>/README.md, "AWS calls"), with the functions' own roles calling EMR.
EXPECTED_ACTIONS = {
    "SubmitFunction": {
        "logs:CreateLogStream", "logs:PutLogEvents",
        "dynamodb:GetItem", "dynamodb:UpdateItem",
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
        "sqs:SendMessage", "s3:PutObject", "s3:DeleteObject",
        "emr-serverless:ListApplications", "emr-serverless:CreateApplication", "emr-serverless:GetApplication",
        "emr-serverless:StartApplication", "emr-serverless:StartJobRun", "emr-serverless:ListJobRuns",
        "emr-serverless:CancelJobRun", "emr-serverless:TagResource", "iam:PassRole",
    },
    "MonitorFunction": {
        "logs:CreateLogStream", "logs:PutLogEvents",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query",
        "sqs:SendMessage", "s3:GetObject", "s3:ListBucket",
        "emr-serverless:GetJobRun", "emr-serverless:ListJobRunAttempts",
        "logs:GetLogEvents", "logs:DescribeLogStreams", "logs:FilterLogEvents",
    },
    "CleanupFunction": {
        "logs:CreateLogStream", "logs:PutLogEvents",
        "dynamodb:GetItem", "dynamodb:UpdateItem",
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
        "sqs:SendMessage", "s3:ListBucket", "s3:DeleteObject", "emr-serverless:CancelJobRun",
    },
    # shared/src/model_manage/table.rs and secret.rs; no EMR Serverless or CloudWatch Logs call, so no main role.
    "BridgeFunction": {
        "logs:CreateLogStream", "logs:PutLogEvents",
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
        "sqs:SendMessage", "secretsmanager:GetSecretValue",
    },
}
# With a main role, EMR Serverless and CloudWatch Logs calls (and PassRole) move to it.
MOVES_TO_MAIN_ROLE = {
    a for actions in EXPECTED_ACTIONS.values() for a in actions
    if a.startswith("emr-serverless:") or a in {"iam:PassRole", "logs:GetLogEvents", "logs:DescribeLogStreams", "logs:FilterLogEvents"}
}


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_iam_actions_per_function(kind, sam_transformed):
    without_bridge = {f: a for f, a in EXPECTED_ACTIONS.items() if f != BRIDGE}
    assert function_actions(view(kind, "defaults", sam_transformed)) == without_bridge
    with_buckets = function_actions(view(kind, "function-roles-with-buckets", sam_transformed))
    assert with_buckets == EXPECTED_ACTIONS | {"SubmitFunction": EXPECTED_ACTIONS["SubmitFunction"] | {"s3:GetObject"}}
    main_role = function_actions(view(kind, "bring-your-own", sam_transformed))
    assert set(main_role) == set(EXPECTED_ACTIONS)
    for function, actions in EXPECTED_ACTIONS.items():
        expected = (actions - MOVES_TO_MAIN_ROLE) | ({"sts:AssumeRole"} if function != BRIDGE else set())
        if function == "SubmitFunction":
            expected |= {"s3:GetObject"}  # model assets named in that scenario
        assert main_role[function] == expected, function
    assert "JobExecutionRole" not in view(kind, "bring-your-own", sam_transformed)["roles"]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_no_wildcard_resource_where_a_narrower_one_exists(kind, scenario, sam_transformed):
    # The Service Authorization Reference lists no resource type for these two: they need Resource "*".
    unscoped = {"emr-serverless:ListApplications", "emr-serverless:CreateApplication"}
    for name, role in view(kind, scenario, sam_transformed)["roles"].items():
        for effect, action, resource, condition in role["grants"]:
            assert resource != "*" or action in unscoped, f"{name}: {action} on *"
            if action == "emr-serverless:CreateApplication":
                assert json.loads(condition) == {
                    "StringEquals": {"aws:RequestTag/modelop:managedBy": "spark-serverless-runtime"}
                }
            if action == "iam:PassRole":
                assert resource.startswith("arn:") or resource == "${JobExecutionRole.Arn}"
                assert json.loads(condition) == {"StringLike": {"iam:PassedToService": "emr-serverless.amazonaws.com"}}


def test_pass_role_covers_every_job_execution_role(sam_transformed):
    scenario = SCENARIOS["function-roles-with-buckets"]
    for kind in ("sam", "cdk"):
        grants_ = view(kind, "function-roles-with-buckets", sam_transformed)["roles"]["SubmitRole"]["grants"]
        passed = {g[2] for g in grants_ if g[1] == "iam:PassRole"}
        assert passed == {"${JobExecutionRole.Arn}", *scenario["AdditionalJobExecutionRoleArns"].split(",")}


# The tag keys submit may set on create: the application's, the job run's, and the model's id and name (cost allocation).
TAG_KEYS = {"modelop:managedBy", "modelop:jobId", "modelop:jobType", "modelop:modelId", "modelop:modelName"}


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_shared_tag_constants_match_the_iam_conditions(kind, sam_transformed):
    emr = (ROOT / "shared" / "src" / "aws" / "emr.rs").read_text()
    manifest = (ROOT / "shared" / "src" / "launch" / "plan.rs").read_text()
    managed = re.search(r'\.tags\("([^"]+)", "([^"]+)"\)', emr)
    assert managed and managed.groups() == ("modelop:managedBy", "spark-serverless-runtime")
    grants = view(kind, "defaults", sam_transformed)["roles"]["SubmitRole"]["grants"]
    (condition,) = {g[3] for g in grants if g[1] == "emr-serverless:TagResource"}
    granted = set(json.loads(condition)["ForAllValues:StringEquals"]["aws:TagKeys"])
    assert granted == TAG_KEYS
    # Every tag the code sets may be set (a key the role does not allow would fail StartJobRun).
    run_tags = set(re.findall(r'pub const TAG_[A-Z_]+: &str = "([^"]+)";', manifest))
    assert {"modelop:jobId", "modelop:jobType"} <= run_tags and run_tags | {"modelop:managedBy"} == granted


# ------------------------------------------------------------------------------------------------ operators
# The two managed policies for the operators of modelop-spark (cli/): read, and cancel (with read).
OPERATOR_POLICIES = {"OperatorReadPolicy", "OperatorCancelPolicy"}
# What the CLI calls AWS with (cli/src): SDK operations called on its clients, and the shared adapters' methods.
CLI_SDK_ACTIONS = {
    "get_item": {"dynamodb:GetItem"},
    "query": {"dynamodb:Query"},
    "update_item": {"dynamodb:UpdateItem"},
    "put_item": {"dynamodb:PutItem"},
    "describe_table": {"dynamodb:DescribeTable"},
    "get_job_run": {"emr-serverless:GetJobRun"},
    "list_job_run_attempts": {"emr-serverless:ListJobRunAttempts"},
    "get_dashboard_for_job_run": {"emr-serverless:GetDashboardForJobRun"},
    "get_application": {"emr-serverless:GetApplication"},
    "list_applications": {"emr-serverless:ListApplications"},
    "get_log_events": {"logs:GetLogEvents"},
    "describe_log_groups": {"logs:DescribeLogGroups"},
    # shared/src/aws/logs.rs's methods the CLI calls on its log reader
    "forward_page": {"logs:GetLogEvents"},
    "log_group_exists": {"logs:DescribeLogGroups"},
}
CLI_ADAPTER_ACTIONS = {
    "store": {
        "job_row": {"dynamodb:GetItem"},
        "jobs_by_status": {"dynamodb:Query"},
        "cancel_job": {"dynamodb:UpdateItem"},
        "put_new_item": {"dynamodb:PutItem"},
        "table_shape": {"dynamodb:DescribeTable"},
    },
    "runs": {
        "run_ui_state": {"emr-serverless:GetJobRun"},
        "dashboard_url": {"emr-serverless:GetDashboardForJobRun"},
        "application_details": {"emr-serverless:GetApplication"},
        "get_job_run": {"emr-serverless:GetJobRun"},
        "get_job_run_attempt": {"emr-serverless:GetJobRun"},
        "list_job_run_attempts": {"emr-serverless:ListJobRunAttempts"},
        "find_application": {"emr-serverless:ListApplications"},
    },
}
# The CLI's only write besides the cancel: `submit` without --dry-run puts a CREATED row, for development and the local
# stack (in production ModelOp Center creates jobs), so no operator policy grants it.
CLI_NOT_GRANTED = {"dynamodb:PutItem"}
# In the read policy without a call of the CLI, each for a reason.
OPERATOR_GRANTED_WITHOUT_A_CALL = {
    "emr-serverless:ListJobRunAttempts": "issue 25's read policy: a run's attempts (aws emr-serverless list-job-run-attempts)",
}
CANCEL_ACTIONS = {"dynamodb:UpdateItem"}


def cli_actions() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "cli" / "src").rglob("*.rs")))
    called = set(re.findall(r"\b(?:dynamodb|emr|logs|client)\s*\.\s*([a-z_0-9]+)\s*\(", text)) - {"clone"}
    unknown = called - set(CLI_SDK_ACTIONS)
    assert not unknown, f"cli/src calls {sorted(unknown)}: add them to CLI_SDK_ACTIONS and to the operator policies"
    actions = set().union(*(CLI_SDK_ACTIONS[c] for c in called))
    for adapter, methods in CLI_ADAPTER_ACTIONS.items():
        used = set(re.findall(rf"\b{adapter}\s*\.\s*([a-z_0-9]+)\s*(?:::<[^>]*>)?\s*\(", text)) - {"clone"}
        unknown = used - set(methods)
        assert not unknown, f"cli/src calls {adapter}.{sorted(unknown)}: add them to CLI_ADAPTER_ACTIONS"
        actions |= set().union(set(), *(methods[m] for m in used))
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem", "emr-serverless:GetDashboardForJobRun", "logs:GetLogEvents"} <= actions, (
        "the scan no longer sees the CLI's calls"
    )
    return actions


def operator_grants(v: dict, policy: str) -> set[tuple]:
    return set(map(tuple, v["managed policies"][policy]["grants"]))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_operator_policies_grant_what_the_cli_calls_and_nothing_else(kind, scenario, sam_transformed):
    v = view(kind, scenario, sam_transformed)
    assert OPERATOR_POLICIES <= set(v["managed policies"]), "the stack outputs no operator policies"
    read = {g[1] for g in operator_grants(v, "OperatorReadPolicy")}
    cancel = {g[1] for g in operator_grants(v, "OperatorCancelPolicy")}
    needed = cli_actions() - CLI_NOT_GRANTED
    assert cancel == CANCEL_ACTIONS, "the cancel policy is the conditional write only"
    assert read == (needed - CANCEL_ACTIONS) | set(OPERATOR_GRANTED_WITHOUT_A_CALL)
    assert not any(a.startswith(("dynamodb:Put", "dynamodb:Delete", "dynamodb:Update", "dynamodb:Batch")) for a in read), "read writes"
    for policy in OPERATOR_POLICIES:
        assert v["managed policies"][policy]["attached to"] == [], f"{policy} is for operators: attached to nothing"
        assert all(effect == "Allow" and condition == "{}" for effect, _, _, condition in operator_grants(v, policy))
    assert {"OperatorReadPolicyArn": "${OperatorReadPolicy}", "OperatorCancelPolicyArn": "${OperatorCancelPolicy}"}.items() <= v["outputs"].items()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_operator_policies_reach_the_stacks_table_job_runs_and_log_group_only(kind, scenario, sam_transformed):
    v = view(kind, scenario, sam_transformed)
    by_action: dict[str, set[str]] = {}
    for policy in OPERATOR_POLICIES:
        for _, action, resource, _ in operator_grants(v, policy):
            by_action.setdefault(action, set()).add(resource)
    # The same table, job-run and log-group resources the functions' roles are given.
    monitor = {(g[1], g[2]) for g in v["roles"]["MonitorRole"]["grants"]}
    table = {r for a, r in monitor if a == "dynamodb:GetItem"}
    assert len(table) == 2 and any(r.endswith("/index/*") for r in table), table
    (table_arn,) = {r for r in table if not r.endswith("/index/*")}
    for action in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"):
        assert by_action[action] == table, action
    assert by_action["dynamodb:UpdateItem"] == {table_arn}
    region = SCENARIOS[scenario].get("EmrRegion") or "${AWS::Region}"
    emr = f"arn:${{AWS::Partition}}:emr-serverless:{region}:${{AWS::AccountId}}:/applications/*"
    for action in ("emr-serverless:GetJobRun", "emr-serverless:ListJobRunAttempts", "emr-serverless:GetDashboardForJobRun"):
        assert by_action[action] == {f"{emr}/jobruns/*"}, action
    assert by_action["emr-serverless:GetApplication"] == {emr}
    # The Service Authorization Reference lists no resource type for ListApplications.
    assert by_action["emr-serverless:ListApplications"] == {"*"}
    group = v["outputs"]["EmrLogGroupName"]
    logs = f"arn:${{AWS::Partition}}:logs:{region}:${{AWS::AccountId}}:log-group:"
    assert by_action["logs:GetLogEvents"] == {f"{logs}{group}", f"{logs}{group}:*"}
    assert by_action["logs:DescribeLogGroups"] == {f"{logs}*"}


# ------------------------------------------------------------------------------------------------ events
def matches(pattern: dict, event: Any) -> bool:
    """EventBridge / Lambda filter matching for the patterns these templates use: exact values
    and ``{"anything-but": [...]}``."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        if key not in event:
            return False
        if isinstance(expected, dict):
            if not matches(expected, event[key]):
                return False
        else:
            values = event[key] if isinstance(event[key], list) else [event[key]]
            if not any(_matches_value(rule, v) for rule in expected for v in values):
                return False
    return True


def _matches_value(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        (operator, operand), = rule.items()
        if operator != "anything-but":
            raise NotImplementedError(f"filter operator {operator!r}")
        return value not in (operand if isinstance(operand, list) else [operand])
    return rule == value


def sample_records(folder: str) -> dict[str, list]:
    out = {}
    for path in sorted((ROOT / "events" / folder).glob("*.json")):
        out[path.stem] = json.loads(path.read_text()).get("Records", [])
    return out


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_stream_filters_deliver_the_records_the_handlers_act_on(kind, sam_transformed):
    mappings = view(kind, "defaults", sam_transformed)["event source mappings"]

    def delivered(mapping: str, folder: str) -> dict[str, int]:
        # Lambda delivers a record that matches any one of a mapping's filters.
        patterns = mappings[mapping]["FilterCriteria"]
        assert len(patterns) == 2, "one filter per runtime field (runtimeType, targetEngine.engineType)"
        return {name: sum(any(matches(p, r) for p in patterns) for r in records)
                for name, records in sample_records(folder).items() if records}

    assert delivered("SubmitFunctionJobsStream", "submit") == {
        "insert-batch-job": 1, "insert-test-job": 1, "insert-training-job": 1,
        "malformed": 1,  # the valid second record; the malformed one is dropped by the filter, as submit skips it
        "insert-other-runtime": 0, "modify-not-insert": 0,
        "insert-modelop-job": 1,  # ours by targetEngine.engineType (no runtimeType)
    }
    assert delivered("CleanupFunctionJobsStream", "cleanup") == {
        "modify-running-to-complete": 1, "modify-waiting-to-error": 1, "modify-cancelled-by-user": 1,
        "modify-hostile-staging-uri": 1, "modify-not-terminal": 0,
        "modify-already-final": 0,  # cleanup's own cleanedAt write
    }
    # Stream records of submit's own writes never reach it, nor cleanup's reach cleanup in a loop:
    claim = sample_records("submit")["modify-not-insert"][0]
    assert not any(matches(p, claim) for p in mappings["CleanupFunctionJobsStream"]["FilterCriteria"])
    assert "BridgeFunctionJobsStream" not in mappings  # no bridge without a gateway URL


def bridged(record: dict) -> dict:
    """The record with the mark of a row bridged from model-manage (shared/src/bridge/job_mapping.rs) on its images."""
    record = json.loads(json.dumps(record))
    mark = {"M": {"source": {"S": "model-manage"}, "version": {"N": "1"}, "claimedAt": {"S": "2026-01-01T00:00:00Z"},
                  "claimant": {"S": "spark-serverless-runtime"}}}
    for image in ("NewImage", "OldImage"):
        if image in record["dynamodb"]:
            record["dynamodb"][image]["modelManage"] = mark
    return record


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_bridge_stream_filter_delivers_changes_of_bridged_rows_only(kind, sam_transformed):
    """What functions/bridge writes back (handle_stream: bridged rows, newest image): a MODIFY of a row carrying
    modelManage.source model-manage. Not a row ModelOp Center did not give, nor the bridged INSERT (the job as
    model-manage has it), nor a REMOVE."""
    for scenario in ("bring-your-own", "function-roles-with-buckets"):
        (pattern,) = view(kind, scenario, sam_transformed)["event source mappings"]["BridgeFunctionJobsStream"]["FilterCriteria"]
        samples = {f"{folder}/{name}": records for folder in ("submit", "cleanup", "bridge")
                   for name, records in sample_records(folder).items() if records}
        for name, records in samples.items():
            for record in records:
                change = record.get("dynamodb") if isinstance(record, dict) else None
                image = change.get("NewImage") if isinstance(change, dict) else None
                if not isinstance(image, dict):
                    assert not matches(pattern, record), name  # malformed: dropped
                    continue
                source = image.get("modelManage", {}).get("M", {}).get("source", {}).get("S")
                assert matches(pattern, record) == (record.get("eventName") == "MODIFY" and source == "model-manage"), name
                assert matches(pattern, bridged(record)) == (record.get("eventName") == "MODIFY"), f"{name}, bridged"
        modify = sample_records("cleanup")["modify-running-to-complete"][0]
        removed = bridged(modify) | {"eventName": "REMOVE"}
        assert matches(pattern, bridged(modify)) and not matches(pattern, removed) and not matches(pattern, modify)
        elsewhere = bridged(modify)
        elsewhere["dynamodb"]["NewImage"]["modelManage"]["M"]["source"]["S"] = "elsewhere"
        assert not matches(pattern, elsewhere)


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_job_run_rule_delivers_job_run_events_only(kind, sam_transformed):
    rules = view(kind, "defaults", sam_transformed)["rules"]
    pattern = rules["JobRunEventsRule"]["EventPattern"]
    got = {p.stem: matches(pattern, json.loads(p.read_text())) for p in sorted((ROOT / "events" / "monitor").glob("*.json"))}
    expected = {name: name.startswith(("state-", "resource-utilization")) or name in {"job-run-retry", "malformed"} for name in got}
    assert got == expected and got["resource-utilization"]
    assert rules["MonitorSweepRule"]["ScheduleExpression"] == "rate(1 minute)"
    assert rules["CleanupSweepRule"]["ScheduleExpression"] == "rate(1 hour)"
    # The monitor's logs pass reads until just before the next sweep is due (functions/monitor/src/handler.rs
    # SWEEP_PERIOD, LOG_PASS_END_MARGIN): the period is the rule's, and the function's timeout outlasts the pass.
    handler = (ROOT / "functions" / "monitor" / "src" / "handler.rs").read_text()
    period = int(re.search(r"pub const SWEEP_PERIOD: Duration = Duration::from_secs\((\d+)\);", handler).group(1))
    margin = int(re.search(r"pub const LOG_PASS_END_MARGIN: Duration = Duration::from_secs\((\d+)\);", handler).group(1))
    assert period == 60 and 0 < margin < period
    assert int(view(kind, "defaults", sam_transformed)["functions"]["MonitorFunction"]["Timeout"]) > period
    for rule in rules.values():
        (target,) = rule["Targets"]
        target = json.loads(target)
        assert target["DeadLetterConfig"] == {"Arn": "${EventsDeadLetterQueue.Arn}"}
        assert set(target["RetryPolicy"]) == {"MaximumEventAgeInSeconds", "MaximumRetryAttempts"}
    filtered = view(kind, "bring-your-own", sam_transformed)["rules"]["JobRunEventsRule"]["EventPattern"]
    ids = SCENARIOS["bring-your-own"]["JobEventApplicationIds"].split(",")
    assert filtered["detail"] == {"applicationId": ids}
    assert "BridgePollRule" not in rules


@pytest.mark.parametrize("scenario", ["bring-your-own", "function-roles-with-buckets"])
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_bridge_polls_every_minute_one_invocation_at_a_time(kind, scenario, sam_transformed):
    """The schedule invokes the bridge every minute; one invocation polls every ModelOpPollSeconds until 5 s before
    its timeout (functions/bridge/src/handler.rs WORK_MARGIN), so a late poll is dropped rather than queued behind the
    next one."""
    v = view(kind, scenario, sam_transformed)
    rule = v["rules"]["BridgePollRule"]
    assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["EventPattern"] is None
    (target,) = map(json.loads, rule["Targets"])
    assert target["Arn"] == "${BridgeFunction.Arn}"
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": "60", "MaximumRetryAttempts": "0"}
    assert ("${BridgeFunction.Arn}", "events.amazonaws.com", "lambda:InvokeFunction", "${BridgePollRule.Arn}") in v["lambda permissions"]
    bridge = v["functions"][BRIDGE]
    handler = (ROOT / "functions" / "bridge" / "src" / "handler.rs").read_text()
    margin = int(re.search(r"const WORK_MARGIN: chrono::Duration = chrono::Duration::seconds\((\d+)\);", handler).group(1))
    assert bridge["Timeout"] == "60" and 60 > margin
    assert bridge["ReservedConcurrentExecutions"] == SCENARIOS[scenario].get("BridgeReservedConcurrency", "2")
    assert bridge["DeadLetterConfig"] is None
    bridge_invoke = [json.loads(c) for c in v["async invoke configs"] if "BridgeFunction" in c]
    assert [(c["MaximumRetryAttempts"], c["MaximumEventAgeInSeconds"]) for c in bridge_invoke] == [("0", "60")]


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_stream_mappings_keep_failures_and_do_not_block(kind, sam_transformed):
    mappings = view(kind, BRIDGE_IN_VPC, sam_transformed)["event source mappings"]
    assert set(mappings) == {"SubmitFunctionJobsStream", "CleanupFunctionJobsStream", "BridgeFunctionJobsStream"}
    for name, failures in (("SubmitFunctionJobsStream", "SubmitStreamFailureQueue"), ("CleanupFunctionJobsStream", "CleanupStreamFailureQueue"),
                           ("BridgeFunctionJobsStream", "BridgeStreamFailureQueue")):
        m = mappings[name]
        assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert m["BisectBatchOnFunctionError"] == "true"
        assert 0 <= int(m["MaximumRetryAttempts"]) <= 10000 and int(m["MaximumRecordAgeInSeconds"]) > 0
        assert m["DestinationConfig"] == {"OnFailure": {"Destination": "${%s.Arn}" % failures}}
        assert m["EventSourceArn"] == "${JobsTable.StreamArn}"
        assert m["ParallelizationFactor"] == "1"  # in stream order per job
        # The same bounds as the other consumers (StreamMaximumRetryAttempts, StreamRetryWindow, StreamBatchSize).
        for key in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "BatchSize", "StartingPosition"):
            assert m[key] == mappings["SubmitFunctionJobsStream"][key], key
    # On an existing table: its stream.
    existing = view(kind, "bring-your-own", sam_transformed)["event source mappings"]["BridgeFunctionJobsStream"]
    assert existing["EventSourceArn"] == SCENARIOS["bring-your-own"]["ExistingJobsTableStreamArn"]


def test_stuck_waiting_always_outlasts_the_stream_retry_window(sam_source, sam_transformed):
    rows = sam_source["Mappings"]["StreamRetryWindow"]
    assert set(rows) == set(sam_source["Parameters"]["StreamRetryWindow"]["AllowedValues"])
    for window, row in rows.items():
        assert row["StuckWaitingMinutes"] * 60 > row["RecordAgeSeconds"], window
    config = (CDK_DIR / "lib" / "config.ts").read_text()
    cdk_rows = {
        w: {"RecordAgeSeconds": int(a), "StuckWaitingMinutes": int(s)}
        for w, a, s in re.findall(r"'(\w+)': \{ recordAgeSeconds: (\d+), stuckWaitingMinutes: (\d+) \}", config)
    }
    assert cdk_rows == rows
    for scenario, values in SCENARIOS.items():
        row = rows[values.get("StreamRetryWindow", "6h")]
        for kind in ("sam", "cdk"):
            v = view(kind, scenario, sam_transformed)
            assert v["functions"]["MonitorFunction"]["Environment"]["MONITOR_STUCK_WAITING_MINUTES"] == str(row["StuckWaitingMinutes"])
            assert v["event source mappings"]["SubmitFunctionJobsStream"]["MaximumRecordAgeInSeconds"] == str(row["RecordAgeSeconds"])


def test_parameters_and_context_keys_have_the_same_defaults(sam_source):
    config = (CDK_DIR / "lib" / "config.ts").read_text()
    cdk = {}
    for method, key, default in re.findall(r"r\.(string|number|oneOf|list)\(\s*'(\w+)'(?:,\s*('[^']*'|\d+))?", config):
        cdk[key] = "" if method == "list" else default.strip("'")
    sam = {context_key(name): str(spec.get("Default", "")) for name, spec in sam_source["Parameters"].items()}
    assert cdk == sam


RUN_CONTROLS = {
    "ExecutionTimeoutMinutes": "EMR_EXECUTION_TIMEOUT_MINUTES",
    "MaxAttempts": "EMR_MAX_ATTEMPTS",
    "CancelGracePeriodSeconds": "EMR_CANCEL_GRACE_PERIOD_SECONDS",
    "AppMaxConcurrentRuns": "EMR_APP_MAX_CONCURRENT_RUNS",
    "AppQueueTimeoutMinutes": "EMR_APP_QUEUE_TIMEOUT_MINUTES",
    "AppMaximumCapacity": "EMR_APP_MAXIMUM_CAPACITY",
    "AppArchitecture": "EMR_APP_ARCHITECTURE",
    "AppSubnetIds": "EMR_APP_SUBNET_IDS",
    "AppSecurityGroupIds": "EMR_APP_SECURITY_GROUP_IDS",
}


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_cost_settings_reach_monitor_and_submit(kind, sam_transformed):
    values = SCENARIOS["bring-your-own"]
    functions = view(kind, "bring-your-own", sam_transformed)["functions"]
    assert functions["MonitorFunction"]["Environment"]["EMR_PRICES"] == values["EmrPrices"]
    assert functions["SubmitFunction"]["Environment"]["EMR_APP_JOB_LEVEL_COST_ALLOCATION"] == "false"
    # By default: the built-in price table, and job-level cost allocation on.
    defaults = view(kind, "defaults", sam_transformed)["functions"]
    assert defaults["MonitorFunction"]["Environment"]["EMR_PRICES"] == ""
    assert defaults["SubmitFunction"]["Environment"]["EMR_APP_JOB_LEVEL_COST_ALLOCATION"] == "true"


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_run_controls_reach_submit_and_the_cancel_grace_period_reaches_cleanup(kind, sam_transformed):
    scenario = "function-roles-with-buckets"
    values = SCENARIOS[scenario]
    functions = view(kind, scenario, sam_transformed)["functions"]
    submit, cleanup = functions["SubmitFunction"]["Environment"], functions["CleanupFunction"]["Environment"]
    for parameter, variable in RUN_CONTROLS.items():
        assert submit[variable] == values[parameter], f"{kind}: {parameter} -> submit {variable}"
    # Cleanup cancels a user's run with the same grace period, gated by the same release.
    assert cleanup["EMR_CANCEL_GRACE_PERIOD_SECONDS"] == values["CancelGracePeriodSeconds"]
    assert cleanup["EMR_RELEASE_VERSION"] == values["ReleaseVersion"]
    # Unset by default: the code applies EMR's defaults, and records them as such.
    defaults = view(kind, "defaults", sam_transformed)["functions"]["SubmitFunction"]["Environment"]
    assert all(defaults[variable] == "" for variable in RUN_CONTROLS.values())


JOB_PERMISSIONS = {
    "ScopeJobPermissions": ("EMR_SCOPE_JOB_PERMISSIONS", "true"),
    "AllowUnscopedJobs": ("EMR_ALLOW_UNSCOPED_JOBS", "false"),
    "JobPolicyArns": ("EMR_JOB_POLICY_ARNS", ""),
    "JobExtraPolicyStatements": ("EMR_JOB_EXTRA_POLICY_STATEMENTS", ""),
}


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_job_permission_settings_reach_submit_and_default_to_scoped_runs(kind, sam_transformed):
    scenario = "function-roles-with-buckets"
    submit = view(kind, scenario, sam_transformed)["functions"]["SubmitFunction"]["Environment"]
    defaults = view(kind, "defaults", sam_transformed)["functions"]["SubmitFunction"]["Environment"]
    for parameter, (variable, default) in JOB_PERMISSIONS.items():
        assert submit[variable] == SCENARIOS[scenario][parameter], f"{kind}: {parameter} -> submit {variable}"
        assert defaults[variable] == default, f"{kind}: {variable} defaults to {default!r}"


# ------------------------------------------------------------------------------------------------ operations
NAMESPACE = "ModelOp/SparkServerlessRuntime"
# The Embedded Metric Format metrics the functions write (issue 15): name -> (the function that writes it, in the
# dimension Function; its dimension sets besides Function). CloudWatch shows nothing for any other combination, so
# a dashboard line or an alarm on one would stay empty without an error.
METRICS = {
    "JobsLaunched": ("submit", [(), ("JobType",)]),
    "LaunchLatency": ("submit", [()]),
    "SubmitFailures": ("submit", [(), ("Step", "Disposition")]),
    "RecordsSkipped": ("submit", [("Reason",)]),
    "LeaseTakeovers": ("submit", [()]),
    "JobsFinished": ("monitor", [(), ("Status",), ("JobType", "Status")]),
    "RunDuration": ("monitor", [("JobType",)]),
    "QueuedTime": ("monitor", [()]),
    "RunAttempts": ("monitor", [()]),
    "JobFailures": ("monitor", [("FailureClass",)]),
    "JobCost": ("monitor", [("JobType",)]),
    "EventsIgnored": ("monitor", [("Reason",)]),
    "SweepRepairs": ("monitor", [()]),
    "StaleJobs": ("monitor", [()]),
    **{n: ("cleanup", [()]) for n in ("FoldersCleaned", "ObjectsDeleted", "CancelsSent", "OrphanFolders", "CleanupRefusals")},
    **{n: ("bridge", [()]) for n in ("JobsBridged", "ClaimsRecovered", "ClaimsLost", "JobsRefused", "RowsCancelled", "BridgeFailures",
                                     "AuthFailures")},
    "WriteBacks": ("bridge", [(), ("Outcome",)]),
    "WriteBackFailures": ("bridge", [(), ("Outcome",)]),
    "ModelManageErrors": ("bridge", [(), ("Status",)]),
    # Written by submit, monitor and bridge (each with its own Function); on no dashboard or alarm yet.
    "RowsTooLarge": ("any", [(), ("Write", "Outcome")]),
}
SEARCH = re.compile(r"""SEARCH\('\{([^}]*)\} MetricName="(\w+)" Function="(\w+)"', '(\w+)', (\d+)\)""")


def dashboard_lines(v: dict) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, metric, dimensions, options) of every metric line of the dashboard; SEARCH expressions as
    (namespace, metric, {dimension: value or "*"}, {"stat", "period"})."""
    (dashboard,) = v["dashboards"].values()
    out = []
    for widget in dashboard["DashboardBody"]["widgets"]:
        for line in widget["properties"]["metrics"]:
            if isinstance(line[0], dict):
                search = SEARCH.fullmatch(line[0]["expression"])
                assert search, line
                schema, name, function, stat, period = search.groups()
                namespace, *dimensions = schema.split(",")
                out.append((namespace, name, {d: "*" for d in dimensions} | {"Function": function}, {"stat": stat, "period": period}))
            else:
                options = line[-1] if isinstance(line[-1], dict) else {}
                names = [item for item in line if not isinstance(item, dict)]
                out.append((names[0], names[1], dict(zip(names[2::2], names[3::2])), options))
    return out


def alarm_metrics(alarm: dict) -> list[tuple[str, str, dict[str, str]]]:
    metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q] or [alarm]
    return [(m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m["Dimensions"]}) for m in metrics]


def metric_math(expression: str, **values: float | None) -> float:
    """Evaluates the CloudWatch metric math these alarms use (FILL, IF, AND, comparisons, arithmetic) for one
    datapoint; a metric without a datapoint is None."""
    python = re.sub(r"FILL\((\w+), 0\)", r"(0 if \1 is None else \1)", expression)
    python = re.sub(r"\bIF\(", "_if(", python).replace(" AND ", " and ")
    assert not re.search(r"\b[A-Z]{2,}\b", python), f"metric math this test cannot evaluate: {expression}"
    return eval(python, {"_if": lambda c, a, b: a if c else b}, values)  # noqa: S307 (the template's own text)


def test_the_metric_catalogue_is_what_the_functions_write():
    """METRICS against shared/src/metrics.rs's table (entry, metrics, dimension sets), which the binaries' tests hold
    to the EMF lines they write."""
    source = (ROOT / "shared" / "src" / "metrics.rs").read_text()
    written = {}
    for row in re.findall(r"^//! \| \[`\w+`\] \| (.*?) \| (.*?) \|$", source, re.M):
        sets = [tuple(re.findall(r"\w+", s)) for s in re.findall(r"\[([^\]]*)\]", row[1])]
        for name in re.findall(r"`(\w+)`", row[0]):
            written[name] = sets
    assert set(written) == set(METRICS), set(written) ^ set(METRICS)
    for name, (_function, sets) in METRICS.items():
        assert set(sets) <= set(written[name]), f"{name}: {sets} not among {written[name]}"


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_our_metrics_on_the_dashboard_and_in_alarms_are_ones_the_functions_write(kind, sam_transformed):
    v = view(kind, "defaults", sam_transformed)
    used = [(ns, name, dims) for ns, name, dims, _ in dashboard_lines(v)]
    used += [m for alarm in v["alarms"].values() for m in alarm_metrics(alarm)]
    ours = [(name, dims) for ns, name, dims in used if ns == NAMESPACE]
    assert len(ours) > 20
    for name, dims in ours:
        assert name in METRICS, name
        function, dimension_sets = METRICS[name]
        assert dims.pop("Function") == function, name
        assert tuple(sorted(dims)) in {tuple(sorted(s)) for s in dimension_sets}, f"{name} has no dimension set {sorted(dims)}"
        for dimension, value in dims.items():
            allowed = {"Status": {"COMPLETE", "ERROR", "CANCELLED", "*"}}.get(dimension, {"*"})
            assert value in allowed, f"{name} {dimension}={value}: an open-ended dimension is graphed with SEARCH"


@pytest.mark.parametrize("scenario", ["defaults", BRIDGE_IN_VPC])
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_the_dashboard_shows_what_the_issue_asks_from_the_stacks_own_names(kind, scenario, sam_transformed):
    v = view(kind, scenario, sam_transformed)
    (dashboard,) = v["dashboards"].values()
    assert dashboard["DashboardName"] == "${AWS::StackName}-operations"
    widgets = dashboard["DashboardBody"]["widgets"]
    assert {w["properties"]["region"] for w in widgets} == {"${AWS::Region}"}
    lines = dashboard_lines(v)
    graphed = {(name, options.get("stat")) for _, name, _, options in lines}
    for needed in [("JobsLaunched", "Sum"), ("JobsFinished", "Sum"), ("LaunchLatency", "p50"), ("LaunchLatency", "p99"),
                   ("RunDuration", "Average"), ("QueuedTime", "p50"), ("JobFailures", "Sum"), ("JobCost", "Sum")]:
        assert needed in graphed, needed
    # Cost per hour by job type: the sum of JobCost over one-hour periods, one line per job type.
    (cost,) = [(dims, options) for _, name, dims, options in lines if name == "JobCost"]
    assert cost == ({"JobType": "*", "Function": "monitor"}, {"stat": "Sum", "period": "3600"})
    # AWS metrics name the stack's own resources (placeholders of Refs and GetAtts), never a literal name.
    for namespace, _, dims, _ in lines:
        if namespace.startswith("AWS/"):
            (value,) = dims.values()
            assert re.fullmatch(r"\$\{\w+(\.QueueName)?\}", value), value
    functions = set(v["functions"])
    assert functions == set(FUNCTIONS) - (set() if bridge_on(scenario) else {BRIDGE})  # no bridge by default
    by_metric = lambda metric: {dims[next(iter(dims))].strip("${}").removesuffix(".QueueName")  # noqa: E731
                                for ns, name, dims, _ in lines if ns.startswith("AWS/") and name == metric}
    assert by_metric("Errors") == by_metric("Duration") == functions
    consumers = {m["FunctionName"].strip("${}") for m in v["event source mappings"].values()}
    assert consumers == {"SubmitFunction", "CleanupFunction"} | ({BRIDGE} & functions) and by_metric("IteratorAge") == consumers
    assert by_metric("ApproximateNumberOfMessagesVisible") == set(v["queues"])


def failure_queues(v: dict) -> set[str]:
    """Every queue the stack keeps failures in: the mappings' OnFailure destinations, the rules' DLQ, the functions' DLQ."""
    arns = {m["DestinationConfig"]["OnFailure"]["Destination"] for m in v["event source mappings"].values()}
    arns |= {json.loads(t)["DeadLetterConfig"]["Arn"] for r in v["rules"].values() for t in r["Targets"]}
    arns |= {f["DeadLetterConfig"]["TargetArn"] for f in v["functions"].values() if f["DeadLetterConfig"]}
    return {arn.strip("${}").removesuffix(".Arn") for arn in arns}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_every_failure_queue_function_and_stream_has_its_alarm(kind, scenario, sam_transformed):
    v = view(kind, scenario, sam_transformed)
    queues = failure_queues(v)
    assert queues == set(v["queues"]) and len(queues) == (5 if bridge_on(scenario) else 4)
    alarmed: dict[str, set[str]] = {}
    for alarm in v["alarms"].values():
        for namespace, name, dims in alarm_metrics(alarm):
            if namespace.startswith("AWS/"):
                (value,) = dims.values()
                alarmed.setdefault(name, set()).add(value.strip("${}").removesuffix(".QueueName"))
    assert alarmed["ApproximateNumberOfMessagesVisible"] == queues
    assert alarmed["Errors"] == set(v["functions"])
    assert alarmed["IteratorAge"] == {m["FunctionName"].strip("${}") for m in v["event source mappings"].values()}
    for alarm in v["alarms"].values():
        if alarm.get("MetricName") in ("ApproximateNumberOfMessagesVisible", "Errors", "SweepRepairs"):
            # Any message, any error, any repair.
            assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) in {
                ("GreaterThanThreshold", "0", "Maximum"), ("GreaterThanThreshold", "0", "Sum")}
    assert "SweepRepairsAlarm" in v["alarms"]


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_alarms_notify_the_created_topic_or_the_given_one(kind, sam_transformed):
    created = view(kind, "defaults", sam_transformed)
    assert created["topics"] == {"AlarmTopic": {"KmsMasterKeyId": "${AlarmTopicKey.Arn}"}}
    assert created["kms keys"]["AlarmTopicKey"]["EnableKeyRotation"] == "true"
    key_grants = {(s["Effect"], json.dumps(s["Principal"]), a) for s in map(json.loads, created["kms keys"]["AlarmTopicKey"]["KeyPolicy"])
                  for a in as_list(s["Action"])}
    assert {("Allow", '{"Service": "cloudwatch.amazonaws.com"}', a) for a in ("kms:Decrypt", "kms:GenerateDataKey*")} <= key_grants
    policy = created["topic policies"]
    assert ("${AlarmTopic}", "Allow", 'Service:"cloudwatch.amazonaws.com"', "sns:Publish", "ArnLike", "aws:SourceArn",
            "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*") in policy
    assert ("${AlarmTopic}", "Deny", "*", "sns:Publish", "Bool", "aws:SecureTransport", "false") in policy
    assert created["subscriptions"] == {}
    assert created["outputs"]["AlarmNotificationTopicArn"] == "${AlarmTopic}"

    given = view(kind, "bring-your-own", sam_transformed)
    topic = SCENARIOS["bring-your-own"]["AlarmTopicArn"]
    assert given["topics"] == given["kms keys"] == {} and given["topic policies"] == []
    assert given["outputs"]["AlarmNotificationTopicArn"] == topic

    emailed = view(kind, "function-roles-with-buckets", sam_transformed)
    assert emailed["subscriptions"] == {"AlarmEmailSubscription": {
        "TopicArn": "${AlarmTopic}", "Protocol": "email", "Endpoint": SCENARIOS["function-roles-with-buckets"]["AlarmEmail"]}}
    for v, actions in ((created, ["${AlarmTopic}"]), (given, [topic]), (emailed, ["${AlarmTopic}"])):
        # Five more with the bridge: its failure queue, iterator age and errors, auth failures and write-back failures.
        assert len(v["alarms"]) == 12 + (5 if BRIDGE in v["functions"] else 0)
        for name, alarm in v["alarms"].items():
            assert alarm["AlarmActions"] == actions, name
            assert f'"Alarms", {name}.' in alarm["AlarmDescription"]


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_alarm_thresholds_come_from_the_parameters(kind, sam_transformed):
    for scenario, (age, rate, hours) in (("defaults", ("900", "10", "13")), ("function-roles-with-buckets", ("300", "25", "24"))):
        alarms = view(kind, scenario, sam_transformed)["alarms"]
        assert alarms["SubmitFunctionIteratorAgeAlarm"]["Threshold"] == alarms["CleanupFunctionIteratorAgeAlarm"]["Threshold"] == age
        assert alarms["JobErrorRateAlarm"]["Threshold"] == rate
        stuck = alarms["StuckPipelineAlarm"]
        assert stuck["EvaluationPeriods"] == stuck["DatapointsToAlarm"] == hours
        assert {q["MetricStat"]["Period"] for q in stuck["Metrics"] if "MetricStat" in q} == {"3600"}  # one datapoint an hour


def expression(alarm: dict) -> str:
    (query,) = [q for q in alarm["Metrics"] if q["ReturnData"] == "true"]
    return query["Expression"]


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_metric_math_of_the_alarms(kind, sam_transformed):
    alarms = view(kind, "defaults", sam_transformed)["alarms"]
    # Iterator age: milliseconds to the threshold's seconds.
    assert metric_math(expression(alarms["SubmitFunctionIteratorAgeAlarm"]), age=901_000) == 901
    # ERROR rate: the share of finished jobs that ended in ERROR, 0 in an hour without an ERROR.
    rate = expression(alarms["JobErrorRateAlarm"])
    assert metric_math(rate, errors=2, all=5) == 40
    assert metric_math(rate, errors=None, all=5) == 0
    # Stuck: an hour counts only when the sweep saw stale jobs and nothing finished.
    stuck = alarms["StuckPipelineAlarm"]
    hour = lambda stale, finished: metric_math(expression(stuck), stale=stale, finished=finished)  # noqa: E731
    assert hour(3, None) == 1 and hour(3, 0) == 1
    assert hour(3, 1) == 0 and hour(None, None) == 0 and hour(0, None) == 0
    assert (stuck["ComparisonOperator"], stuck["Threshold"]) == ("GreaterThanOrEqualToThreshold", "1")
    assert stuck["TreatMissingData"] == alarms["JobErrorRateAlarm"]["TreatMissingData"] == "notBreaching"


# ------------------------------------------------------------------------------------------------ the bridge
BRIDGE_SETTINGS = {
    "ModelOpGatewayUrl": ("MODELOP_GATEWAY_URL", None),
    "ModelOpTokenUrl": ("MODELOP_TOKEN_URL", None),
    "ModelOpClientId": ("MODELOP_CLIENT_ID", "internal-client"),
    "ModelOpClientSecretArn": ("MODELOP_CLIENT_SECRET_ARN", None),
    "ModelOpScope": ("MODELOP_SCOPE", "modelop_client"),
    "ModelOpEngineTypes": ("MODELOP_ENGINE_TYPES", "SPARK_SERVERLESS_RUNTIME"),
    "ModelOpRuntimeName": ("MODELOP_RUNTIME_NAME", ""),
    "ModelOpPollSeconds": ("MODELOP_POLL_SECONDS", "10"),
    "ModelOpRunIdField": ("MODELOP_RUN_ID_FIELD", ""),
    "ModelOpJobFinder": ("MODELOP_JOB_FINDER", ""),
    "ModelOpJobItemPath": ("MODELOP_JOB_ITEM_PATH", "jobs/{id}"),
    "ModelOpTestResultAsset": ("MODELOP_TEST_RESULT_ASSET", "test_result.json"),
}


def test_bridge_defaults_are_the_codes(sam_source):
    """The parameters' defaults are the ones shared/src/config.rs applies when the variable is unset."""
    config = (ROOT / "shared" / "src" / "config.rs").read_text()
    code = {
        "ModelOpClientId": re.search(r'DEFAULT_MODELOP_CLIENT_ID: &str = "([^"]+)"', config).group(1),
        "ModelOpScope": re.search(r'DEFAULT_MODELOP_SCOPE: &str = "([^"]+)"', config).group(1),
        "ModelOpPollSeconds": re.search(r"DEFAULT_MODELOP_POLL_SECONDS: u32 = (\d+);", config).group(1),
        "ModelOpJobItemPath": re.search(r'DEFAULT_MODELOP_JOB_ITEM_PATH: &str = "([^"]+)"', config).group(1),
        "ModelOpTestResultAsset": re.search(r'DEFAULT_MODELOP_TEST_RESULT_ASSET: &str = "([^"]+)"', config).group(1),
        "ModelOpEngineTypes": "SPARK_SERVERLESS_RUNTIME",  # crate::job::record::SPARK_SERVERLESS_RUNTIME
    }
    assert re.search(r"DEFAULT_MODELOP_ENGINE_TYPES: &str = crate::job::record::SPARK_SERVERLESS_RUNTIME;", config)
    for parameter, (variable, default) in BRIDGE_SETTINGS.items():
        assert str(sam_source["Parameters"][parameter].get("Default", "")) == (default or ""), parameter
        if parameter in code:
            assert default == code[parameter], parameter
        assert variable in sam_source["Parameters"][parameter]["Description"], parameter


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_the_bridge_is_deployed_only_with_a_gateway_url(kind, scenario, sam_transformed):
    v = view(kind, scenario, sam_transformed)
    names = {name for category in ("functions", "event source mappings", "rules", "roles", "queues", "log groups", "alarms", "outputs")
             for name in v[category] if "Bridge" in name}
    if not bridge_on(scenario):
        assert names == set()
        assert not any("Bridge" in json.dumps(v[c]) for c in ("dashboards", "queue policies", "lambda permissions"))
        return
    assert names == {"BridgeFunction", "BridgeFunctionJobsStream", "BridgePollRule", "BridgeRole", "BridgeStreamFailureQueue",
                     "BridgeLogGroup", "BridgeStreamFailureQueueAlarm", "BridgeFunctionIteratorAgeAlarm",
                     "BridgeFunctionErrorsAlarm", "BridgeAuthFailuresAlarm", "BridgeWriteBackFailuresAlarm",
                     "BridgeFunctionArn", "BridgeStreamFailureQueueUrl"}
    # The issue's alarms: any auth failure; write-backs failing for 15 minutes (each is retried until then).
    auth, write_back = v["alarms"]["BridgeAuthFailuresAlarm"], v["alarms"]["BridgeWriteBackFailuresAlarm"]
    assert alarm_metrics(auth) == [(NAMESPACE, "AuthFailures", {"Function": "bridge"})]
    assert alarm_metrics(write_back) == [(NAMESPACE, "WriteBackFailures", {"Function": "bridge"})]
    assert (auth["Statistic"], auth["ComparisonOperator"], auth["Threshold"], auth["EvaluationPeriods"]) == ("Sum", "GreaterThanThreshold", "0", "1")
    assert (write_back["Period"], write_back["EvaluationPeriods"], write_back["DatapointsToAlarm"]) == ("300", "3", "3")
    dashboard = json.dumps(v["dashboards"])
    assert all(f'"{name}"' in dashboard for name, (function, _) in METRICS.items() if function == "bridge" and name != "ModelManageErrors")
    assert 'MetricName=\\"ModelManageErrors\\" Function=\\"bridge\\"' in dashboard
    values = SCENARIOS[scenario]
    environment = v["functions"][BRIDGE]["Environment"]
    for parameter, (variable, default) in BRIDGE_SETTINGS.items():
        assert environment[variable] == values.get(parameter, default), parameter
    # The failure queue is TLS-only like the others, and the rule may put undeliverable polls in the events DLQ.
    assert ("${BridgeStreamFailureQueue.Arn}", "Deny", "*", "sqs:*", "Bool", "aws:SecureTransport", "false") in v["queue policies"]
    assert any(p[0] == "${EventsDeadLetterQueue.Arn}" and p[1] == "Allow" and p[-1] == "${BridgePollRule.Arn}" for p in v["queue policies"])


@pytest.mark.parametrize("scenario", ["bring-your-own", "function-roles-with-buckets"])
@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_bridge_role_reads_that_one_secret_and_its_own_table_calls_only(kind, scenario, sam_transformed):
    v = view(kind, scenario, sam_transformed)
    values = SCENARIOS[scenario]
    grants_ = v["roles"]["BridgeRole"]["grants"]
    by_action: dict[str, set[str]] = {}
    for effect, action, resource, condition in grants_:
        assert effect == "Allow" and condition == "{}", (action, resource)
        by_action.setdefault(action, set()).add(resource)
    assert by_action["secretsmanager:GetSecretValue"] == {values["ModelOpClientSecretArn"]}
    table = values.get("ExistingJobsTableName", "${JobsTable}")
    table_arn = f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{table}"
    handler_table = (ROOT / "shared" / "src" / "model_manage" / "table.rs").read_text()
    index = re.search(r'const BY_JOB_STATUS: &str = "(\w+)";', handler_table).group(1)
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert by_action[action] >= {table_arn}, action
    assert by_action["dynamodb:Query"] == {table_arn, f"{table_arn}/index/{index}"}
    stream = values.get("ExistingJobsTableStreamArn", "${JobsTable.StreamArn}")
    assert by_action["dynamodb:GetRecords"] == {stream}
    assert by_action["sqs:SendMessage"] == {"${BridgeStreamFailureQueue.Arn}"}
    assert by_action["logs:PutLogEvents"] == {"${BridgeLogGroup.Arn}"}


@pytest.mark.parametrize("kind", ["sam", "cdk"])
def test_bridge_runs_in_the_given_subnets_and_security_groups(kind, sam_transformed):
    vpc_managed = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    inside = view(kind, BRIDGE_IN_VPC, sam_transformed)
    values = SCENARIOS[BRIDGE_IN_VPC]
    assert inside["functions"][BRIDGE]["VpcConfig"] == {
        "SubnetIds": values["BridgeSubnetIds"].split(","), "SecurityGroupIds": values["BridgeSecurityGroupIds"].split(",")}
    assert inside["roles"]["BridgeRole"]["managed"] == [vpc_managed]
    outside = view(kind, "bring-your-own", sam_transformed)
    assert outside["functions"][BRIDGE]["VpcConfig"] is None and outside["roles"]["BridgeRole"]["managed"] == []
    # No other function is in a VPC or has a managed policy.
    for v in (inside, outside):
        for name, function in v["functions"].items():
            assert name == BRIDGE or function["VpcConfig"] is None, name
        for name, role in v["roles"].items():
            assert name == "BridgeRole" or role["managed"] == [], name
