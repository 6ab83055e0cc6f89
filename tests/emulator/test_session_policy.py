"""The least-privilege session policies the submit function generates, checked from outside Rust:
every one passes parliament (pinned in tests/requirements.txt) with no finding, and a real IAM
evaluator (moto's, as ``session_policy.py`` runs it) allows a sample job exactly its own objects.

The policies come from ``cargo run --example job_policies`` (``plan_job`` and
``build_manifest``, as the submit function runs them) on the e2e sample jobs and a few more
shapes, with the submit function's configuration in the environment. Without ``-p shared``: cargo
then resolves features for the whole workspace, as ``cargo test --workspace`` (which builds the
example) does, so the example is already built instead of a second build of the AWS SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import local_stack as L  # noqa: E402
import session_policy as P  # noqa: E402

STAGING = "modelop-staging"
ACCOUNT = "123456789012"
GLUE = {"Sid": "GlueTable", "Effect": "Allow", "Action": ["glue:GetTable"],
        "Resource": [f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog", f"arn:aws:glue:us-east-1:{ACCOUNT}:database/features",
                     f"arn:aws:glue:us-east-1:{ACCOUNT}:table/features/*"]}
ENV = {
    "JOBS_TABLE": "modelop-jobs",
    "STAGING_BUCKET": STAGING,
    "EMR_DEFAULT_APP_NAME": "modelop-default",
    "EMR_RELEASE_VERSION": "emr-7.5.0",
    "EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/modelop-job",
    "EMR_REGION": "us-east-1",
    "EMR_JOB_POLICY_ARNS": f"arn:aws:iam::{ACCOUNT}:policy/feature-store-read",
    "EMR_JOB_EXTRA_POLICY_STATEMENTS": json.dumps([GLUE]),
}
SCORE = "policy-score"


def shaped(job_id: str, **changes) -> dict:
    job = L.sample_job(job_id, "MODEL_BATCH_JOB")
    job.update(changes)
    return job


def jobs() -> list[dict]:
    s3_source = L.sample_job("policy-s3-source", "MODEL_BATCH_JOB")
    s3_source["model"]["storedModel"]["modelAssets"][0] = {
        "name": "model.py", "assetType": "SOURCE_CODE", "primaryModelSource": True, "fileUrl": f"s3://{L.MODEL_BUCKET}/sample/model.py"}
    return [
        L.sample_job(SCORE, "MODEL_BATCH_JOB"),
        L.sample_job("policy-metrics", "MODEL_BATCH_TEST_JOB"),
        L.sample_job("policy-train", "MODEL_BATCH_TRAINING_JOB"),
        L.modelop_style_job("policy-modelop"),
        s3_source,
        shaped("policy-folders", inputData=[{"name": "in", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://modelop-data/input/"}]),
        shaped("policy-buckets", inputData=[{"name": f"in{i}", "assetType": "EXTERNAL_FILE", "fileUrl": f"s3://team-{i}-data/in/part.csv"}
                                            for i in range(2)]),
        shaped("policy-archives", jobParameters={"--archives": "s3://modelop-env/venv.tar.gz#environment",
                                                 "--conf spark.jars": "s3://modelop-env/jars/udf.jar"}),
        shaped("policy-hostile", inputData=[{"name": n, "assetType": "EXTERNAL_FILE", "fileUrl": f"s3://modelop-data/{k}"}
                                            for n, k in (("star", "in/*"), ("question", "in/file?.csv"), ("var", "${aws:username}/x.csv"))]),
        shaped("policy-crowded", inputData=[{"name": f"in{i}", "assetType": "EXTERNAL_FILE",
                                             "fileUrl": f"s3://modelop-data/team/inputs/2026-11-{i:02}/part-{i:05}-{'k' * 40}.csv"}
                                            for i in range(30)]),
    ]


@pytest.fixture(scope="module")
def policies() -> dict[str, dict]:
    env = dict(os.environ, **ENV)
    answer = subprocess.run(["cargo", "run", "-q", "--example", "job_policies"], cwd=ROOT, env=env,
                            input=json.dumps(jobs()), capture_output=True, text=True, timeout=900)
    assert answer.returncode == 0, answer.stderr
    out = {p["jobId"]: p for p in json.loads(answer.stdout)}
    errors = {k: v["error"] for k, v in out.items() if "error" in v}
    assert not errors, errors
    return out


def test_every_generated_policy_passes_parliament(policies):
    from parliament import analyze_policy_string

    assert len(policies) == len(jobs())
    for job_id, generated in policies.items():
        assert len(generated["policy"]) <= 2048, job_id
        findings = analyze_policy_string(generated["policy"]).findings
        assert findings == [], f"{job_id}: {[(f.issue, f.detail, f.location) for f in findings]}"


def test_narrowing_fits_a_crowded_job_inside_its_bucket(policies):
    crowded = policies["policy-crowded"]
    assert crowded["narrowingSteps"] > 0
    objects = ("s3:GetObject", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"])
    resources = [r for s in json.loads(crowded["policy"])["Statement"] if s["Action"] in objects for r in s["Resource"]]
    named = ("arn:aws:s3:::modelop-data/", f"arn:aws:s3:::{L.MODEL_BUCKET}/", f"arn:aws:s3:::{STAGING}/")
    assert all(r.startswith(named) for r in resources), resources
    assert not any(r.split(":::", 1)[1].split("/", 1)[1] in ("", "*") for r in resources), f"no whole bucket: {resources}"
    # Merged, every input is still readable; nothing outside the buckets and folders it names is.
    for i in (0, 17, 29):
        key = f"team/inputs/2026-11-{i:02}/part-{i:05}-{'k' * 40}.csv"
        assert P.allows(crowded["policy"], "s3:GetObject", obj(L.DATA_BUCKET, key)), key
    assert not P.allows(crowded["policy"], "s3:GetObject", obj(L.DATA_BUCKET, "private/other_team.csv"))
    assert not P.allows(crowded["policy"], "s3:GetObject", obj("another-bucket", "team/inputs/x.csv"))
    assert policies[SCORE]["narrowingSteps"] == 0
    assert policies[SCORE]["policyArns"] == [ENV["EMR_JOB_POLICY_ARNS"]]


def obj(bucket: str, key: str) -> str:
    return P.s3_arn(bucket, key)


def staged(job_id: str, name: str) -> str:
    return obj(STAGING, f"modelop-spark-serverless/{job_id}/{name}")


OUT = f"output/{SCORE}/scored/"
LOG_GROUP = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/emr-serverless"
# (action, resource, s3:prefix of a ListBucket or None, allowed)
MATRIX = [
    ("s3:GetObject", obj(L.DATA_BUCKET, L.INPUT_KEY), None, True),
    ("s3:GetObject", obj(L.DATA_BUCKET, L.INPUT_KEY + ".bak"), None, False),
    ("s3:GetObject", obj(L.DATA_BUCKET, "input/other_team.csv"), None, False),
    ("s3:GetObject", obj(L.MODEL_BUCKET, "sample/weights.json"), None, True),
    ("s3:GetObject", obj(L.MODEL_BUCKET, "sample/other-model.bin"), None, False),
    ("s3:GetObject", staged(SCORE, "ModelOpPySparkDriver.py"), None, True),
    ("s3:GetObject", staged(SCORE, "job-metadata.json"), None, True),
    ("s3:GetObject", staged("another-job", "job-metadata.json"), None, False),
    ("s3:GetObject", obj("another-bucket", L.INPUT_KEY), None, False),
    ("s3:PutObject", obj(L.DATA_BUCKET, OUT + "part-00000.csv"), None, True),
    ("s3:PutObject", obj(L.DATA_BUCKET, OUT + "_temporary/0/task/part-00000.csv"), None, True),
    ("s3:PutObject", obj(L.DATA_BUCKET, f"output/{SCORE}/other/x.csv"), None, False),
    ("s3:PutObject", obj(L.DATA_BUCKET, L.INPUT_KEY), None, False),
    ("s3:PutObject", staged(SCORE, "results/result.json"), None, True),
    ("s3:PutObject", staged(SCORE, "job-metadata.json"), None, False),
    ("s3:PutObject", staged("another-job", "results/result.json"), None, False),
    ("s3:DeleteObject", obj(L.DATA_BUCKET, OUT + "part-00000.csv"), None, True),
    ("s3:DeleteObject", obj(L.DATA_BUCKET, L.INPUT_KEY), None, False),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), OUT, True),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), OUT + "_temporary/0/", True),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), L.INPUT_KEY + "/", True),
    # The output's parents exactly (writers probe them), never their subtrees.
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), "output/", True),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), "output/another-job/", False),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), "private/", False),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), "", False),
    ("s3:ListBucket", P.s3_arn(L.DATA_BUCKET), None, False),
    ("s3:ListBucket", P.s3_arn(STAGING), f"modelop-spark-serverless/{SCORE}/", True),
    ("s3:ListBucket", P.s3_arn(STAGING), "modelop-spark-serverless/another-job/", False),
    ("s3:ListBucket", P.s3_arn("another-bucket"), "", False),
    ("logs:PutLogEvents", f"{LOG_GROUP}:log-stream:{SCORE}/applications/a/jobs/r/SPARK_DRIVER/stdout", None, True),
    ("logs:CreateLogStream", f"{LOG_GROUP}:log-stream:x", None, True),
    ("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/other/group:log-stream:x", None, False),
    ("glue:GetTable", f"arn:aws:glue:us-east-1:{ACCOUNT}:table/features/customers", None, True),
    ("glue:DeleteTable", f"arn:aws:glue:us-east-1:{ACCOUNT}:table/features/customers", None, False),
    ("s3:GetObject", obj(L.DATA_BUCKET, "secret/other-team.csv"), None, False),
]


@pytest.mark.parametrize("action,resource,prefix,allowed", MATRIX, ids=[f"{a} {r.rsplit(':', 1)[-1]} {p}" for a, r, p, _ in MATRIX])
def test_the_sample_score_job_may_touch_only_its_own_objects(policies, action, resource, prefix, allowed):
    context = P.request_context(prefix) if action == "s3:ListBucket" else None
    assert P.allows(policies[SCORE]["policy"], action, resource, context) is allowed


# What EMRFS and S3A send when Spark writes a DataFrame to s3://modelop-data/output/<job>/scored/
# (FileOutputCommitter, v1 and v2), as (action, key or ListBucket prefix): the output probed as a
# file and as a directory, its parents listed (mkdirs walks up to the closest existing one), the
# directory markers (EMRFS `<dir>_$folder$`, S3A `<dir>/`) written and deleted, task output under
# `_temporary/` written, renamed (copy: GET + PUT, then DELETE) and cleaned up, `_SUCCESS` written.
WRITER = f"output/{SCORE}/scored"
WRITES = [
    ("s3:ListBucket", "output/"),
    ("s3:ListBucket", f"output/{SCORE}/"),
    ("s3:ListBucket", WRITER + "/"),
    ("s3:ListBucket", WRITER),  # fsspec/s3fs lists without the slash
    ("s3:ListBucket", WRITER + "/_temporary/0/"),
    ("s3:GetObject", WRITER),  # HEAD: is it a file?
    ("s3:GetObject", WRITER + "/"),  # HEAD: an S3A directory marker?
    ("s3:GetObject", WRITER + "_$folder$"),  # HEAD: an EMRFS directory marker?
    ("s3:PutObject", WRITER + "_$folder$"),
    ("s3:PutObject", WRITER + "/"),
    ("s3:PutObject", WRITER + "/_temporary/0/_temporary/attempt_202601010000_0001_m_000000_0/part-00000.csv"),
    ("s3:GetObject", WRITER + "/_temporary/0/_temporary/attempt_202601010000_0001_m_000000_0/part-00000.csv"),
    ("s3:PutObject", WRITER + "/part-00000-5e0c.csv"),
    ("s3:DeleteObject", WRITER + "/_temporary/0/_temporary/attempt_202601010000_0001_m_000000_0/part-00000.csv"),
    ("s3:DeleteObject", WRITER + "/_temporary/0/"),
    ("s3:AbortMultipartUpload", WRITER + "/part-00001-5e0c.csv"),
    ("s3:PutObject", WRITER + "/_SUCCESS"),
    ("s3:DeleteObject", WRITER + "_$folder$"),
    ("s3:DeleteObject", WRITER + "/"),
]
# The same requests for another job's output, or beside this one's, are refused.
OTHERS = [
    ("s3:ListBucket", "output/another-job/"),
    ("s3:ListBucket", "output/another-job/scored/"),
    ("s3:GetObject", "output/another-job/scored"),
    ("s3:PutObject", "output/another-job/scored_$folder$"),
    ("s3:PutObject", "output/another-job/scored/"),
    ("s3:PutObject", "output/another-job/scored/part-00000.csv"),
    ("s3:DeleteObject", "output/another-job/scored/_SUCCESS"),
    ("s3:PutObject", WRITER + "-v2_$folder$"),
    ("s3:PutObject", WRITER + "2/part-00000.csv"),
    # The parents' own markers belong to whoever owns the parent (S3A ignores a failed cleanup).
    ("s3:PutObject", f"output/{SCORE}_$folder$"),
    ("s3:DeleteObject", "output/"),
]


def _request(action: str, key: str) -> tuple[str, dict | None]:
    if action == "s3:ListBucket":
        return P.s3_arn(L.DATA_BUCKET), P.request_context(key)
    return obj(L.DATA_BUCKET, key), None


@pytest.mark.parametrize("action,key", WRITES, ids=[f"{a} {k}" for a, k in WRITES])
def test_emrfs_and_s3a_may_write_the_jobs_output(policies, action, key):
    resource, context = _request(action, key)
    assert P.allows(policies[SCORE]["policy"], action, resource, context)


@pytest.mark.parametrize("action,key", OTHERS, ids=[f"{a} {k}" for a, k in OTHERS])
def test_nothing_of_another_jobs_output(policies, action, key):
    resource, context = _request(action, key)
    assert not P.allows(policies[SCORE]["policy"], action, resource, context)


def test_hostile_keys_match_only_themselves(policies):
    policy = policies["policy-hostile"]["policy"]
    for key, allowed in (("in/*", True), ("in/secret.csv", False), ("in/file?.csv", True), ("in/file1.csv", False),
                         ("${aws:username}/x.csv", True), ("alice/x.csv", False)):
        assert P.allows(policy, "s3:GetObject", obj(L.DATA_BUCKET, key)) is allowed, key


def test_spark_conf_files_are_readable_and_nothing_beside_them(policies):
    policy = policies["policy-archives"]["policy"]
    assert P.allows(policy, "s3:GetObject", obj("modelop-env", "venv.tar.gz"))
    assert P.allows(policy, "s3:GetObject", obj("modelop-env", "jars/udf.jar"))
    assert not P.allows(policy, "s3:GetObject", obj("modelop-env", "jars/other.jar"))


def test_the_evaluator_follows_iam_wildcards_not_regular_expressions():
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/a.c"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/q?"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/q9"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b", "Condition": {"StringLike": {"s3:prefix": "p/*"}}},
    ]}
    cases = [
        ("s3:GetObject", "arn:aws:s3:::b/a.c", None, True),
        ("s3:GetObject", "arn:aws:s3:::b/abc", None, False),  # '.' is not a wildcard
        ("s3:GetObject", "arn:aws:s3:::b/q1", None, True),  # '?' is one character
        ("s3:GetObject", "arn:aws:s3:::b/q12", None, False),
        ("s3:GetObject", "arn:aws:s3:::b/q9", None, False),  # an explicit Deny wins
        ("s3:ListBucket", "arn:aws:s3:::b", "p/x", True),
        ("s3:ListBucket", "arn:aws:s3:::b", "x/", False),
        ("s3:ListBucket", "arn:aws:s3:::b", None, False),  # no s3:prefix in the request: no match
    ]
    for action, resource, prefix, allowed in cases:
        context = P.request_context(prefix) if prefix is not None else {}
        assert P.allows(policy, action, resource, context) is allowed, (action, resource, prefix)
