"""Deployment scenarios under which the SAM template and the CDK app must describe the same stack.

Each scenario gives SAM parameter values; the CDK context key of a parameter is its name with a lower-case first
letter. tests/infra/check.sh synthesizes the CDK app once per scenario (`python3 scenarios.py cdk-args NAME` prints
the `-c` arguments), and test_agreement.py compares each synthesis with the SAM template resolved for the same values.
"""

import sys

ACCOUNT = "123456789012"

SCENARIOS: dict[str, dict[str, str]] = {
    # Everything created by the stack, the functions' own roles call EMR Serverless.
    "defaults": {},
    # ModelOp's two-role setup: a main role and a job execution role brought by the user, with an existing table,
    # bucket and log group in another EMR region.
    "bring-your-own": {
        "Architecture": "x86_64",
        "DefaultAppName": "modelop-training",
        "ReleaseVersion": "emr-7.1.0",
        "EmrRegion": "eu-west-1",
        "MainEmrServerlessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/modelop-emr-main",
        "DefaultJobExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/modelop-emr-job",
        "JobExecutionConf": '{"spark.executor.cores":"4"}',
        "EmrLogGroupName": "/aws/emr-serverless",
        "ExistingJobsTableName": "modelop-jobs",
        "ExistingJobsTableStreamArn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/modelop-jobs/stream/2026-11-23T20:00:00.000",
        "ExistingStagingBucketName": "modelop-staging",
        "StagingPrefix": "jobs/spark/",
        "ModelAssetBucketArns": "arn:aws:s3:::modelop-models",
        "OutputBucketArns": "arn:aws:s3:::modelop-outputs",
        "JobEventApplicationIds": "00fabcdef0123456,00fabcdef0123457",
        "StreamRetryWindow": "3h",
        "LogRetentionDays": "90",
        # Cost per job: prices of the EMR region, job-level cost allocation off.
        "EmrPrices": '{"eu-west-1":{"X86_64":{"vCPUHour":0.052624,"memoryGBHour":0.0057785,"storageGBHour":0.000111}}}',
        "JobLevelCostAllocation": "false",
        # The platform team's own alarm topic: the stack creates none.
        "AlarmTopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:platform-alarms",
        # The bridge to ModelOp Center with its defaults, on the existing table's stream, outside a VPC.
        "ModelOpGatewayUrl": "https://modelop.example.com",
        "ModelOpTokenUrl": "https://idp.example.com/oauth2/token",
        "ModelOpClientSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:modelop-client-AbCdEf",
    },
    # The functions' own roles with every bucket list and extra job execution roles (PassRole on all of them).
    "function-roles-with-buckets": {
        "AdditionalJobExecutionRoleArns": f"arn:aws:iam::{ACCOUNT}:role/team-a-job,arn:aws:iam::{ACCOUNT}:role/team-b-job",
        "ModelAssetBucketArns": "arn:aws:s3:::modelop-models,arn:aws:s3:::modelop-models-archive",
        "InputBucketArns": "arn:aws:s3:::modelop-inputs",
        "OutputBucketArns": "arn:aws:s3:::modelop-outputs,arn:aws:s3:::modelop-reports",
        "SubmitReservedConcurrency": "3",
        "StreamMaximumRetryAttempts": "20",
        "StreamBatchSize": "25",
        "StreamRetryWindow": "24h",
        # Every run control, on a release that has them all.
        "ReleaseVersion": "emr-7.9.0",
        "ExecutionTimeoutMinutes": "240",
        "MaxAttempts": "3",
        "CancelGracePeriodSeconds": "120",
        "AppMaxConcurrentRuns": "20",
        "AppQueueTimeoutMinutes": "60",
        "AppMaximumCapacity": "400 vCPU, 3000 GB, 20000 GB",
        "AppArchitecture": "ARM64",
        "AppSubnetIds": "subnet-0a1b2c3d,subnet-0e4f5a6b",
        "AppSecurityGroupIds": "sg-0a1b2c3d",
        # Per-job least privilege, every setting away from its default.
        "ScopeJobPermissions": "false",
        "AllowUnscopedJobs": "true",
        "JobPolicyArns": f"arn:aws:iam::{ACCOUNT}:policy/feature-store-read,arn:aws:iam::aws:policy/AWSGlueConsoleFullAccess",
        "JobExtraPolicyStatements": '[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:123456789012:key/k"}]',
        # The created alarm topic with an email subscription, and every threshold changed.
        "AlarmEmail": "platform-team@example.com",
        "IteratorAgeAlarmSeconds": "300",
        "ErrorRateAlarmPercent": "25",
        "StuckPipelineHours": "24",
        # The bridge in the customer's VPC, every setting away from its default.
        "ModelOpGatewayUrl": "https://modelop.internal.example.com/gateway",
        "ModelOpTokenUrl": "https://example.auth.us-east-1.amazoncognito.com/oauth2/token",
        "ModelOpClientId": "4f2kq0example",
        "ModelOpClientSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:modelop/client-Xy12Zw",
        "ModelOpScope": "rs/modelop_client",
        "ModelOpEngineTypes": "SPARK_SERVERLESS_RUNTIME,SPARK_RUNTIME",
        "ModelOpRuntimeName": "emr-serverless-runtime",
        "ModelOpPollSeconds": "5",
        "ModelOpRunIdField": "sparkApplicationId",
        "ModelOpJobFinder": "findByJobStatus",
        "BridgeReservedConcurrency": "4",
        "BridgeSubnetIds": "subnet-0a1b2c3d,subnet-0e4f5a6b",
        "BridgeSecurityGroupIds": "sg-0a1b2c3d4e5f60718",
    },
}


def context_key(parameter: str) -> str:
    return parameter[0].lower() + parameter[1:]


def cdk_args(name: str) -> list[str]:
    args: list[str] = []
    for parameter, value in SCENARIOS[name].items():
        args += ["-c", f"{context_key(parameter)}={value}"]
    return args


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "names":
        print("\n".join(SCENARIOS))
    elif len(sys.argv) == 3 and sys.argv[1] == "cdk-args":
        print("\0".join(cdk_args(sys.argv[2])), end="")
    else:
        sys.exit("usage: scenarios.py names | cdk-args NAME")
