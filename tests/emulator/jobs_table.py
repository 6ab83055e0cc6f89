"""The jobs table as shared/CONTRACT.md describes it and infra/template.yaml creates it: key ``id``,
a NEW_AND_OLD_IMAGES stream and the two indexes the monitor queries. One definition for the
Python harnesses (the local stack and the benchmarks); the Rust tests' twin is tests/harness/lib.rs."""

from __future__ import annotations

from typing import Any


def create_jobs_table(dynamodb: Any, name: str) -> str:
    """Creates the table with a boto3 DynamoDB client; answers its stream ARN."""
    attrs = [{"AttributeName": n, "AttributeType": "S"} for n in ("id", "sparkApplicationId", "jobStatus", "updatedAt")]
    out = dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attrs,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {"IndexName": "bySparkApplicationId", "KeySchema": [{"AttributeName": "sparkApplicationId", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "byJobStatus", "KeySchema": [{"AttributeName": "jobStatus", "KeyType": "HASH"},
                                                       {"AttributeName": "updatedAt", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return out["TableDescription"]["LatestStreamArn"]
