// The whole service as one stack: the same resources, names (logical ids), environment, event source mappings,
// event patterns and IAM statements as infra/template.yaml. tests/infra/test_agreement.py compares the two.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Aws,
  CfnOutput,
  CfnResource,
  Duration,
  RemovalPolicy,
  Stack,
  StackProps,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_s3 as s3,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { RustFunction } from 'cargo-lambda-cdk';
import { NagSuppressions } from 'cdk-nag';
import { Construct, IConstruct } from 'constructs';
import { STREAM_RETRY_WINDOWS, ServiceConfig } from './config';
import { addOperations } from './operations';

/** The tag submit puts on the applications it creates (shared/src/aws/emr.rs). */
const MANAGED_BY_TAG = 'modelop:managedBy';
const MANAGED_BY_VALUE = 'spark-serverless-runtime';
/** Every tag submit sets on create: the application's, and the job run's (shared/src/launch/plan.rs; the model's
 * id and name when the job names them, for cost allocation). */
const TAG_KEYS = ['modelop:managedBy', 'modelop:jobId', 'modelop:jobType', 'modelop:modelId', 'modelop:modelName'];

const JOB_RUN_DETAIL_TYPES = [
  'EMR Serverless Job Run State Change',
  'EMR Serverless Job Run Retry',
  'EMR Serverless Job Resource Utilization Update',
];
const RUNTIME_TYPE = 'SPARK_SERVERLESS_RUNTIME';

export interface ModelOpSparkServerlessStackProps extends StackProps {
  readonly config: ServiceConfig;
  /** The Cargo workspace (its Cargo.toml); found upwards from this file when not given. */
  readonly workspaceManifest?: string;
}

/** Gives a construct's CloudFormation resource the logical id infra/template.yaml uses. */
function named<T extends IConstruct>(construct: T, logicalId: string): T {
  const resource = construct.node.defaultChild as CfnResource;
  resource.overrideLogicalId(logicalId);
  return construct;
}

function findWorkspaceManifest(from: string): string {
  let dir = path.resolve(from);
  for (;;) {
    const manifest = path.join(dir, 'Cargo.toml');
    if (fs.existsSync(manifest) && /^\[workspace\]/m.test(fs.readFileSync(manifest, 'utf8'))) {
      return manifest;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`no Cargo workspace above ${from}`);
    }
    dir = parent;
  }
}

function allow(sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid, effect: iam.Effect.ALLOW, actions, resources, conditions });
}

interface Wildcard {
  readonly appliesTo: (string | { regex: string })[];
  readonly reason: string;
}

/** cdk-nag AwsSolutions-IAM5 suppressions of exactly these wildcard findings, each with its own reason. */
function acknowledgeWildcards(construct: IConstruct, wildcards: Wildcard[]): void {
  NagSuppressions.addResourceSuppressions(
    construct,
    wildcards.map((w) => ({ id: 'AwsSolutions-IAM5', reason: w.reason, appliesTo: w.appliesTo })),
  );
}

/** An OnFailure destination that only names the queue: the role's own statement grants sqs:SendMessage, nothing more. */
class QueueDestination implements lambda.IEventSourceDlq {
  constructor(private readonly queue: sqs.IQueue) {}

  bind(): lambda.DlqDestinationConfig {
    return { destination: this.queue.queueArn };
  }
}

export class ModelOpSparkServerlessStack extends Stack {
  constructor(scope: Construct, id: string, props: ModelOpSparkServerlessStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const window = STREAM_RETRY_WINDOWS[cfg.streamRetryWindow];
    const partition = Aws.PARTITION;
    const account = Aws.ACCOUNT_ID;
    const emrRegion = cfg.emrRegion !== '' ? cfg.emrRegion : Aws.REGION;
    const retention = cfg.logRetentionDays as logs.RetentionDays;

    // ------------------------------------------------------------------------------------------------ data
    let tableName: string;
    let streamArn: string;
    if (cfg.existingJobsTableName === '') {
      const table = named(
        new dynamodb.Table(this, 'JobsTable', {
          partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
          billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
          stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
          pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
          encryption: dynamodb.TableEncryption.AWS_MANAGED,
          deletionProtection: true,
          removalPolicy: RemovalPolicy.RETAIN,
        }),
        'JobsTable',
      );
      table.addGlobalSecondaryIndex({
        indexName: 'bySparkApplicationId',
        partitionKey: { name: 'sparkApplicationId', type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
      table.addGlobalSecondaryIndex({
        indexName: 'byJobStatus',
        partitionKey: { name: 'jobStatus', type: dynamodb.AttributeType.STRING },
        sortKey: { name: 'updatedAt', type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
      tableName = table.tableName;
      streamArn = table.tableStreamArn!;
    } else {
      tableName = cfg.existingJobsTableName;
      streamArn = cfg.existingJobsTableStreamArn;
    }
    const tableArn = `arn:${partition}:dynamodb:${Aws.REGION}:${account}:table/${tableName}`;
    const tableIndexes = `${tableArn}/index/*`;

    let bucketName: string;
    if (cfg.existingStagingBucketName === '') {
      const bucket = named(
        new s3.Bucket(this, 'StagingBucket', {
          encryption: s3.BucketEncryption.S3_MANAGED,
          blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
          objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
          enforceSSL: true,
          lifecycleRules: [
            {
              id: 'expire-staging-folders',
              prefix: cfg.stagingPrefix,
              expiration: Duration.days(cfg.stagingExpirationDays),
              abortIncompleteMultipartUploadAfter: Duration.days(1),
            },
          ],
          removalPolicy: RemovalPolicy.RETAIN,
        }),
        'StagingBucket',
      );
      NagSuppressions.addResourceSuppressions(bucket, [
        {
          id: 'AwsSolutions-S1',
          reason:
            'Staged files are transient copies written and deleted only by this service; access is logged by ' +
            'CloudTrail (enable S3 data events if object-level audit is needed).',
        },
      ]);
      bucketName = bucket.bucketName;
    } else {
      bucketName = cfg.existingStagingBucketName;
    }
    const bucketArn = `arn:${partition}:s3:::${bucketName}`;
    const stagingObjects = `${bucketArn}/${cfg.stagingPrefix}*`;
    const stagingListCondition = { StringLike: { 's3:prefix': `${cfg.stagingPrefix}*` } };

    // The only wildcards of the IAM statements (cdk-nag AwsSolutions-IAM5), each with its reason.
    const escapedPrefix = cfg.stagingPrefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const wildcards = {
      describedOnlyByStar: {
        appliesTo: ['Resource::*'],
        reason:
          'emr-serverless:ListApplications and CreateApplication have no resource type in the Service Authorization ' +
          'Reference, so they take Resource "*"; CreateApplication is narrowed by the aws:RequestTag condition on ' +
          'the tag submit sets on every application it creates.',
      },
      staging: {
        appliesTo: [{ regex: `/^Resource::arn:<AWS::Partition>:s3:::[^/]+\\/${escapedPrefix}\\*$/` }],
        reason: 'Objects of the job folders under the staging prefix: one folder per job id, unknown at deploy time.',
      },
      emr: {
        appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:emr-serverless:(<AWS::Region>|[a-z0-9-]+):<AWS::AccountId>:\\/applications\\/\\*(\\/jobruns\\/\\*)?$/' }],
        reason:
          'EMR Serverless applications and job runs of this account and region, which submit creates at run time ' +
          '(their ids are unknown at deploy time).',
      },
      indexes: {
        appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table\\/[^/]+\\/index\\/\\*$/' }],
        reason: 'The jobs table\'s own indexes (bySparkApplicationId and byJobStatus), which the monitor queries.',
      },
      jobLogStreams: {
        appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:logs:(<AWS::Region>|[a-z0-9-]+):<AWS::AccountId>:log-group:[^:*]+:\\*$/' }],
        reason: 'Log streams of the one job log group: EMR Serverless names a stream per job run.',
      },
      logGroupLookup: {
        appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:logs:(<AWS::Region>|[a-z0-9-]+):<AWS::AccountId>:log-group:\\*$/' }],
        reason:
          'logs:DescribeLogGroups (only this action) lists log groups and cannot be scoped to one group; EMR ' +
          'Serverless looks the job log group up with the job execution role.',
      },
      namedBuckets: {
        appliesTo: [{ regex: '/^Resource::arn:aws[a-z-]*:s3:::[a-z0-9.-]+\\/\\*$/' }],
        reason: 'Objects of the model-asset, input and output buckets the deployer names (keys are per model and job).',
      },
    };

    let emrLogGroupName: string;
    if (cfg.emrLogGroupName === '') {
      const group = named(
        new logs.LogGroup(this, 'EmrJobLogGroup', {
          logGroupName: `/aws/emr-serverless/${Aws.STACK_NAME}`,
          retention,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        'EmrJobLogGroup',
      );
      emrLogGroupName = group.logGroupName;
    } else {
      emrLogGroupName = cfg.emrLogGroupName;
    }
    const emrLogGroupArns = [
      `arn:${partition}:logs:${emrRegion}:${account}:log-group:${emrLogGroupName}`,
      `arn:${partition}:logs:${emrRegion}:${account}:log-group:${emrLogGroupName}:*`,
    ];
    const emrApplications = `arn:${partition}:emr-serverless:${emrRegion}:${account}:/applications/*`;
    const emrJobRuns = `arn:${partition}:emr-serverless:${emrRegion}:${account}:/applications/*/jobruns/*`;

    // ------------------------------------------------------------------------ where failed events are kept
    const queue = (id: string, isTargetDlqOnly: boolean): sqs.Queue => {
      const q = named(
        new sqs.Queue(this, id, {
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          retentionPeriod: Duration.days(14),
        }),
        id,
      );
      if (isTargetDlqOnly) {
        // cdk-nag recognizes a queue as a DLQ only when it is a function's DeadLetterConfig or another queue's.
        NagSuppressions.addResourceSuppressions(q, [
          {
            id: 'AwsSolutions-SQS3',
            reason:
              'This queue is itself where failures are kept (the OnFailure destination of an event source mapping, ' +
              'or the dead-letter queue of EventBridge targets); an operator inspects and redrives its messages.',
          },
        ]);
      }
      return q;
    };
    const submitStreamFailureQueue = queue('SubmitStreamFailureQueue', true);
    const cleanupStreamFailureQueue = queue('CleanupStreamFailureQueue', true);
    const eventsDeadLetterQueue = queue('EventsDeadLetterQueue', true);
    const asyncFailureQueue = queue('AsyncFailureQueue', false);
    // The bridge to ModelOp Center is deployed only with a gateway URL (the template's condition BridgeEnabled).
    const bridgeEnabled = cfg.modelOpGatewayUrl !== '';
    const bridgeInVpc = bridgeEnabled && cfg.bridgeSubnetIds !== '';
    const bridgeStreamFailureQueue = bridgeEnabled ? queue('BridgeStreamFailureQueue', true) : undefined;

    const functionLogGroup = (id: string, fn: string): logs.LogGroup =>
      named(
        new logs.LogGroup(this, id, {
          logGroupName: `/aws/lambda/${Aws.STACK_NAME}-${fn}`,
          retention,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        id,
      );
    const submitLogGroup = functionLogGroup('SubmitLogGroup', 'submit');
    const monitorLogGroup = functionLogGroup('MonitorLogGroup', 'monitor');
    const cleanupLogGroup = functionLogGroup('CleanupLogGroup', 'cleanup');
    const bridgeLogGroup = bridgeEnabled ? functionLogGroup('BridgeLogGroup', 'bridge') : undefined;

    // --------------------------------------------------------------------------------------------- roles
    const useMainRole = cfg.mainEmrServerlessRoleArn !== '';
    const objectsOf = (bucketArns: string[]) => bucketArns.map((arn) => `${arn}/*`);

    let jobExecutionRoleArn: string;
    if (cfg.defaultJobExecutionRoleArn === '') {
      const statements = [
        allow('ReadStagedFilesWriteResults', ['s3:GetObject', 's3:PutObject'], [stagingObjects]),
        allow('ListStagingPrefix', ['s3:ListBucket'], [bucketArn], stagingListCondition),
      ];
      if (cfg.modelAssetBucketArns.length > 0) {
        statements.push(
          allow('ReadModelAssets', ['s3:GetObject', 's3:ListBucket'], [...cfg.modelAssetBucketArns, ...objectsOf(cfg.modelAssetBucketArns)]),
        );
      }
      if (cfg.inputBucketArns.length > 0) {
        statements.push(allow('ReadInputs', ['s3:GetObject', 's3:ListBucket'], [...cfg.inputBucketArns, ...objectsOf(cfg.inputBucketArns)]));
      }
      if (cfg.outputBucketArns.length > 0) {
        statements.push(
          allow(
            'WriteOutputs',
            ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListBucket'],
            [...cfg.outputBucketArns, ...objectsOf(cfg.outputBucketArns)],
          ),
        );
      }
      statements.push(
        allow('WriteJobLogs', ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], emrLogGroupArns),
        allow('FindJobLogGroup', ['logs:DescribeLogGroups'], [`arn:${partition}:logs:${emrRegion}:${account}:log-group:*`]),
      );
      const jobRole = named(
        new iam.Role(this, 'JobExecutionRole', {
          description: 'EMR Serverless job execution role of ModelOp Spark jobs.',
          assumedBy: new iam.ServicePrincipal('emr-serverless.amazonaws.com').withConditions({
            StringEquals: { 'aws:SourceAccount': account },
            ArnLike: { 'aws:SourceArn': emrApplications },
          }),
          inlinePolicies: { 'spark-job': new iam.PolicyDocument({ statements }) },
        }),
        'JobExecutionRole',
      );
      acknowledgeWildcards(jobRole, [wildcards.staging, wildcards.jobLogStreams, wildcards.logGroupLookup, wildcards.namedBuckets]);
      jobExecutionRoleArn = jobRole.roleArn;
    } else {
      jobExecutionRoleArn = cfg.defaultJobExecutionRoleArn;
    }

    const lambdaRole = (id: string, description: string, policyName: string, statements: iam.PolicyStatement[]) =>
      named(
        new iam.Role(this, id, {
          description,
          assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
          inlinePolicies: { [policyName]: new iam.PolicyDocument({ statements }) },
        }),
        id,
      );
    const assumeMainRole = () => allow('AssumeMainRole', ['sts:AssumeRole'], [cfg.mainEmrServerlessRoleArn]);
    const streamRead = ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'];

    // submit: DynamoDB GetItem/UpdateItem, S3 PutObject/CopyObject/GetObject/DeleteObjects, EMR Serverless
    // ListApplications/CreateApplication/StartApplication/StartJobRun/ListJobRuns/CancelJobRun (tags on create),
    // STS AssumeRole with a main role, iam:PassRole of the job execution roles.
    const submitStatements = [
      allow('OwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [submitLogGroup.logGroupArn]),
      allow('JobsTable', ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [tableArn]),
      allow('JobsStream', streamRead, [streamArn]),
      allow('StreamFailures', ['sqs:SendMessage'], [submitStreamFailureQueue.queueArn]),
      allow('StageFiles', ['s3:PutObject', 's3:DeleteObject'], [stagingObjects]),
    ];
    if (cfg.modelAssetBucketArns.length > 0) {
      submitStatements.push(allow('ReadModelAssets', ['s3:GetObject'], objectsOf(cfg.modelAssetBucketArns)));
    }
    if (useMainRole) {
      submitStatements.push(assumeMainRole());
    } else {
      submitStatements.push(
        allow('ListApplications', ['emr-serverless:ListApplications'], ['*']),
        allow('CreateTaggedApplications', ['emr-serverless:CreateApplication'], ['*'], {
          StringEquals: { [`aws:RequestTag/${MANAGED_BY_TAG}`]: MANAGED_BY_VALUE },
        }),
        allow(
          'Applications',
          ['emr-serverless:GetApplication', 'emr-serverless:StartApplication', 'emr-serverless:StartJobRun', 'emr-serverless:ListJobRuns'],
          [emrApplications],
        ),
        allow('JobRuns', ['emr-serverless:CancelJobRun'], [emrJobRuns]),
        allow('TagOnCreate', ['emr-serverless:TagResource'], [emrApplications, emrJobRuns], {
          'ForAllValues:StringEquals': { 'aws:TagKeys': TAG_KEYS },
        }),
        allow('PassJobExecutionRoles', ['iam:PassRole'], [jobExecutionRoleArn, ...cfg.additionalJobExecutionRoleArns], {
          StringLike: { 'iam:PassedToService': 'emr-serverless.amazonaws.com' },
        }),
      );
    }
    const submitRole = lambdaRole('SubmitRole', 'Execution role of the submit function.', 'submit', submitStatements);

    // monitor: DynamoDB GetItem/UpdateItem/Query (table and indexes), EMR Serverless GetJobRun and ListJobRunAttempts, CloudWatch Logs
    // of the job log group, S3 HeadObject/GetObject of results and ListObjectsV2 of outputs.
    const monitorStatements = [
      allow('OwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [monitorLogGroup.logGroupArn]),
      allow('JobsTable', ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'], [tableArn, tableIndexes]),
      allow('AsyncFailures', ['sqs:SendMessage'], [asyncFailureQueue.queueArn]),
      allow('ReadResults', ['s3:GetObject'], [stagingObjects]),
      allow('ListStagingPrefix', ['s3:ListBucket'], [bucketArn], stagingListCondition),
    ];
    if (cfg.outputBucketArns.length > 0) {
      monitorStatements.push(allow('ListOutputs', ['s3:ListBucket'], cfg.outputBucketArns));
    }
    if (useMainRole) {
      monitorStatements.push(assumeMainRole());
    } else {
      monitorStatements.push(
        allow('JobRuns', ['emr-serverless:GetJobRun', 'emr-serverless:ListJobRunAttempts'], [emrJobRuns]),
        allow('JobLogs', ['logs:GetLogEvents', 'logs:DescribeLogStreams', 'logs:FilterLogEvents'], emrLogGroupArns),
      );
    }
    const monitorRole = lambdaRole('MonitorRole', 'Execution role of the monitor function.', 'monitor', monitorStatements);

    // cleanup: DynamoDB GetItem/UpdateItem, S3 ListObjectsV2/DeleteObjects under the prefix, EMR CancelJobRun.
    const cleanupStatements = [
      allow('OwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [cleanupLogGroup.logGroupArn]),
      allow('JobsTable', ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [tableArn]),
      allow('JobsStream', streamRead, [streamArn]),
      allow('Failures', ['sqs:SendMessage'], [cleanupStreamFailureQueue.queueArn, asyncFailureQueue.queueArn]),
      allow('ListStagingPrefix', ['s3:ListBucket'], [bucketArn], stagingListCondition),
      allow('EmptyJobFolders', ['s3:DeleteObject'], [stagingObjects]),
    ];
    if (useMainRole) {
      cleanupStatements.push(assumeMainRole());
    } else {
      cleanupStatements.push(allow('CancelJobRuns', ['emr-serverless:CancelJobRun'], [emrJobRuns]));
    }
    const cleanupRole = lambdaRole('CleanupRole', 'Execution role of the cleanup function.', 'cleanup', cleanupStatements);

    acknowledgeWildcards(submitRole, [wildcards.describedOnlyByStar, wildcards.staging, wildcards.emr, wildcards.namedBuckets]);
    acknowledgeWildcards(monitorRole, [wildcards.indexes, wildcards.staging, wildcards.emr, wildcards.jobLogStreams]);
    acknowledgeWildcards(cleanupRole, [wildcards.staging, wildcards.emr]);

    // bridge: the jobs table's calls of shared/src/model_manage/table.rs (a conditional PutItem of a bridged job,
    // GetItem, UpdateItem to cancel, Query of byJobStatus), the client secret of shared/src/model_manage/secret.rs
    // (that one secret only), and its stream mapping. No EMR Serverless call, so never the main role. In a VPC,
    // Lambda manages its network interfaces with this role (the AWS managed AWSLambdaVPCAccessExecutionRole).
    let bridgeRole: iam.Role | undefined;
    if (bridgeEnabled) {
      bridgeRole = lambdaRole('BridgeRole', 'Execution role of the bridge function.', 'bridge', [
        allow('OwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [bridgeLogGroup!.logGroupArn]),
        allow(
          'JobsTable',
          ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
          [tableArn, `${tableArn}/index/byJobStatus`],
        ),
        allow('JobsStream', streamRead, [streamArn]),
        allow('StreamFailures', ['sqs:SendMessage'], [bridgeStreamFailureQueue!.queueArn]),
        allow('ClientSecret', ['secretsmanager:GetSecretValue'], [cfg.modelOpClientSecretArn]),
      ]);
      if (bridgeInVpc) {
        bridgeRole.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
        NagSuppressions.addResourceSuppressions(bridgeRole, [
          {
            id: 'AwsSolutions-IAM4',
            reason:
              'Lambda creates and deletes the function\'s network interfaces in the given subnets with its execution ' +
              'role; AWSLambdaVPCAccessExecutionRole is the policy AWS maintains for exactly that (the bridge is in a ' +
              'VPC only when bridgeSubnetIds is given).',
            appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'],
          },
        ]);
      }
    }

    // ----------------------------------------------------------------------------------------- operators
    // Two managed policies for the operators of modelop-spark, the operator CLI (cli/README.md), attached to nothing
    // here: read (status, ls, watch, cost, logs, ui, doctor) and cancel (the conditional write of the row; with read).
    // Neither grants dynamodb:PutItem: `submit` without --dry-run is for development and the local stack.
    const operatorReadPolicy = named(
      new iam.ManagedPolicy(this, 'OperatorReadPolicy', {
        description:
          'modelop-spark read: status, ls, watch, cost, logs, ui and doctor (the jobs table and its indexes, job runs, ' +
          'Spark UI links, the job log group).',
        statements: [
          allow('ReadJobs', ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DescribeTable'], [tableArn, tableIndexes]),
          allow(
            'ReadJobRuns',
            ['emr-serverless:GetJobRun', 'emr-serverless:ListJobRunAttempts', 'emr-serverless:GetDashboardForJobRun'],
            [emrJobRuns],
          ),
          allow('ReadApplications', ['emr-serverless:GetApplication'], [emrApplications]),
          allow('FindApplication', ['emr-serverless:ListApplications'], ['*']),
          allow('ReadJobLogs', ['logs:GetLogEvents'], emrLogGroupArns),
          allow('FindJobLogGroup', ['logs:DescribeLogGroups'], [`arn:${partition}:logs:${emrRegion}:${account}:log-group:*`]),
        ],
      }),
      'OperatorReadPolicy',
    );
    acknowledgeWildcards(operatorReadPolicy, [
      {
        appliesTo: ['Resource::*'],
        reason:
          'emr-serverless:ListApplications has no resource type in the Service Authorization Reference, so it takes ' +
          'Resource "*"; doctor finds the application by name with it, as submit does.',
      },
      wildcards.emr,
      { appliesTo: wildcards.indexes.appliesTo, reason: 'The jobs table\'s own indexes: ls and cost query byJobStatus.' },
      wildcards.jobLogStreams,
      wildcards.logGroupLookup,
    ]);
    const operatorCancelPolicy = named(
      new iam.ManagedPolicy(this, 'OperatorCancelPolicy', {
        description:
          'modelop-spark cancel: the conditional write of jobStatus CANCELLED on the jobs table, as ModelOp Center ' +
          'cancels (cleanup then cancels the run). Attach with OperatorReadPolicy.',
        statements: [allow('CancelJobs', ['dynamodb:UpdateItem'], [tableArn])],
      }),
      'OperatorCancelPolicy',
    );

    // ----------------------------------------------------------------------------------------- functions
    const workspaceManifest = props.workspaceManifest ?? findWorkspaceManifest(__dirname);
    const architecture = cfg.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
    const commonEnvironment = {
      JOBS_TABLE: tableName,
      STAGING_BUCKET: bucketName,
      STAGING_PREFIX: cfg.stagingPrefix,
      EMR_REGION: cfg.emrRegion,
      EMR_MAIN_ROLE_ARN: cfg.mainEmrServerlessRoleArn,
      EMR_LOG_GROUP: emrLogGroupName,
    };
    const rustFunction = (
      id: string,
      binaryName: string,
      description: string,
      role: iam.IRole,
      logGroup: logs.ILogGroup,
      timeout: Duration,
      reservedConcurrentExecutions: number,
      environment: Record<string, string>,
    ) =>
      named(
        new RustFunction(this, id, {
          manifestPath: workspaceManifest,
          binaryName,
          architecture,
          description,
          role,
          timeout,
          memorySize: 256,
          reservedConcurrentExecutions,
          loggingFormat: lambda.LoggingFormat.JSON,
          applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
          systemLogLevelV2: lambda.SystemLogLevel.WARN,
          logGroup,
          environment: { ...commonEnvironment, ...environment },
        }),
        id,
      );
    const submitFunction = rustFunction(
      'SubmitFunction',
      'submit',
      'Starts an EMR Serverless job run for each CREATED job of runtime SPARK_SERVERLESS_RUNTIME.',
      submitRole,
      submitLogGroup,
      Duration.seconds(300),
      cfg.submitReservedConcurrency,
      {
        EMR_DEFAULT_APP_NAME: cfg.defaultAppName,
        EMR_RELEASE_VERSION: cfg.releaseVersion,
        EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN: jobExecutionRoleArn,
        EMR_JOB_EXECUTION_CONF: cfg.jobExecutionConf,
        EMR_APP_IDLE_TIMEOUT_MINUTES: String(cfg.appIdleTimeoutMinutes),
        EMR_EXECUTION_TIMEOUT_MINUTES: cfg.executionTimeoutMinutes,
        EMR_MAX_ATTEMPTS: cfg.maxAttempts,
        EMR_CANCEL_GRACE_PERIOD_SECONDS: cfg.cancelGracePeriodSeconds,
        EMR_APP_MAX_CONCURRENT_RUNS: cfg.appMaxConcurrentRuns,
        EMR_APP_QUEUE_TIMEOUT_MINUTES: cfg.appQueueTimeoutMinutes,
        EMR_APP_MAXIMUM_CAPACITY: cfg.appMaximumCapacity,
        EMR_APP_ARCHITECTURE: cfg.appArchitecture,
        EMR_APP_SUBNET_IDS: cfg.appSubnetIds,
        EMR_APP_SECURITY_GROUP_IDS: cfg.appSecurityGroupIds,
        EMR_APP_JOB_LEVEL_COST_ALLOCATION: cfg.jobLevelCostAllocation,
        EMR_SCOPE_JOB_PERMISSIONS: cfg.scopeJobPermissions,
        EMR_ALLOW_UNSCOPED_JOBS: cfg.allowUnscopedJobs,
        EMR_JOB_POLICY_ARNS: cfg.jobPolicyArns,
        EMR_JOB_EXTRA_POLICY_STATEMENTS: cfg.jobExtraPolicyStatements,
        SUBMIT_MAX_CONCURRENCY: String(cfg.submitMaxConcurrency),
      },
    );
    const monitorFunction = rustFunction(
      'MonitorFunction',
      'monitor',
      'Follows EMR Serverless job runs into the jobs table (events and a reconciliation sweep).',
      monitorRole,
      monitorLogGroup,
      Duration.seconds(120),
      cfg.monitorReservedConcurrency,
      {
        MONITOR_LOG_TAIL_BYTES: String(cfg.monitorLogTailBytes),
        MONITOR_LOG_READS_PER_SECOND: String(cfg.monitorLogReadsPerSecond),
        MONITOR_RESULT_MAX_BYTES: String(cfg.monitorResultMaxBytes),
        MONITOR_SWEEP_MIN_AGE_MINUTES: String(cfg.monitorSweepMinAgeMinutes),
        MONITOR_STUCK_WAITING_MINUTES: String(window.stuckWaitingMinutes),
        MONITOR_MAX_CONCURRENCY: String(cfg.monitorMaxConcurrency),
        MONITOR_USAGE_SWEEP_HOURS: String(cfg.monitorUsageSweepHours),
        EMR_PRICES: cfg.emrPrices,
      },
    );
    const cleanupFunction = rustFunction(
      'CleanupFunction',
      'cleanup',
      'Empties finished jobs\' staging folders, cancels runs of cancelled jobs, and sweeps orphans.',
      cleanupRole,
      cleanupLogGroup,
      Duration.seconds(300),
      cfg.cleanupReservedConcurrency,
      {
        CLEANUP_MAX_CONCURRENCY: String(cfg.cleanupMaxConcurrency),
        CLEANUP_ORPHAN_MIN_AGE_HOURS: String(cfg.cleanupOrphanMinAgeHours),
        // The grace period of a user's cancel, gated by the release (shared/src/config.rs).
        EMR_CANCEL_GRACE_PERIOD_SECONDS: cfg.cancelGracePeriodSeconds,
        EMR_RELEASE_VERSION: cfg.releaseVersion,
      },
    );
    // The bridge (issue 24): its schedule polls model-manage in a loop until 5 s before the timeout; its stream
    // mapping writes bridged rows' progress back.
    let bridgeFunction: lambda.Function | undefined;
    if (bridgeEnabled) {
      bridgeFunction = rustFunction(
        'BridgeFunction',
        'bridge',
        'Bridges ModelOp Center\'s model-manage jobs into the jobs table and writes their progress back.',
        bridgeRole!,
        bridgeLogGroup!,
        Duration.seconds(60),
        cfg.bridgeReservedConcurrency,
        {
          MODELOP_GATEWAY_URL: cfg.modelOpGatewayUrl,
          MODELOP_TOKEN_URL: cfg.modelOpTokenUrl,
          MODELOP_CLIENT_ID: cfg.modelOpClientId,
          MODELOP_CLIENT_SECRET_ARN: cfg.modelOpClientSecretArn,
          MODELOP_SCOPE: cfg.modelOpScope,
          MODELOP_ENGINE_TYPES: cfg.modelOpEngineTypes,
          MODELOP_RUNTIME_NAME: cfg.modelOpRuntimeName,
          MODELOP_POLL_SECONDS: String(cfg.modelOpPollSeconds),
          MODELOP_RUN_ID_FIELD: cfg.modelOpRunIdField,
          MODELOP_JOB_FINDER: cfg.modelOpJobFinder,
          MODELOP_JOB_ITEM_PATH: cfg.modelOpJobItemPath,
          MODELOP_TEST_RESULT_ASSET: cfg.modelOpTestResultAsset,
        },
      );
      // A poll that could not start within its minute is dropped, not queued: the next one is on its way.
      bridgeFunction.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(60) });
      if (bridgeInVpc) {
        // Subnet and security group ids as given (the template's VpcConfig), not a looked-up IVpc.
        const ids = (list: string) => list.split(',');
        (bridgeFunction.node.defaultChild as lambda.CfnFunction).vpcConfig = {
          subnetIds: ids(cfg.bridgeSubnetIds),
          securityGroupIds: ids(cfg.bridgeSecurityGroupIds),
        };
      }
    }
    // Asynchronous invocations (EventBridge) that still fail after their retries are kept in AsyncFailureQueue.
    // Set on the resource, so that the role's own statement is the only sqs:SendMessage grant (as in the template).
    for (const [fn, retryAttempts] of [
      [monitorFunction, 2],
      [cleanupFunction, 1],
    ] as const) {
      (fn.node.defaultChild as lambda.CfnFunction).deadLetterConfig = { targetArn: asyncFailureQueue.queueArn };
      fn.configureAsyncInvoke({ retryAttempts, maxEventAge: Duration.hours(1) });
    }

    // -------------------------------------------------------------------- stream → submit and cleanup
    // A job is ours by runtimeType or by targetEngine.engineType (shared/CONTRACT.md): one filter
    // per field; Lambda delivers a record that matches any one of them.
    const runtimeSelectors: Record<string, unknown>[] = [
      { runtimeType: { S: lambda.FilterRule.isEqual(RUNTIME_TYPE) } },
      { targetEngine: { M: { engineType: { S: lambda.FilterRule.isEqual(RUNTIME_TYPE) } } } },
    ];
    const streamMapping = (id: string, target: lambda.IFunction, failures: sqs.IQueue, patterns: Record<string, unknown>[]) =>
      named(
        new lambda.EventSourceMapping(this, id, {
          target,
          eventSourceArn: streamArn,
          startingPosition: lambda.StartingPosition.LATEST,
          batchSize: cfg.streamBatchSize,
          parallelizationFactor: 1,
          bisectBatchOnError: true,
          retryAttempts: cfg.streamMaximumRetryAttempts,
          maxRecordAge: Duration.seconds(window.recordAgeSeconds),
          reportBatchItemFailures: true,
          onFailure: new QueueDestination(failures),
          filters: patterns.map((pattern) => lambda.FilterCriteria.filter(pattern)),
        }),
        id,
      );
    streamMapping('SubmitFunctionJobsStream', submitFunction, submitStreamFailureQueue, runtimeSelectors.map((selector) => ({
      eventName: lambda.FilterRule.isEqual('INSERT'),
      dynamodb: {
        NewImage: {
          jobStatus: { S: lambda.FilterRule.isEqual('CREATED') },
          ...selector,
        },
      },
    })));
    streamMapping('CleanupFunctionJobsStream', cleanupFunction, cleanupStreamFailureQueue, runtimeSelectors.map((selector) => ({
      eventName: lambda.FilterRule.isEqual('MODIFY'),
      dynamodb: {
        NewImage: {
          jobStatus: { S: lambda.FilterRule.or('COMPLETE', 'ERROR', 'CANCELLED') },
          ...selector,
        },
        // Only the move into a final status: cleanup's own cleanedAt write (final -> final) is dropped.
        OldImage: {
          jobStatus: { S: [{ 'anything-but': ['COMPLETE', 'ERROR', 'CANCELLED'] }] },
        },
      },
    })));
    if (bridgeFunction) {
      // Only changes of rows bridged from model-manage (modelManage.source, shared/src/modelop/job_mapping.rs); the
      // INSERT of a bridged row is the job as model-manage has it: nothing to write back.
      streamMapping('BridgeFunctionJobsStream', bridgeFunction, bridgeStreamFailureQueue!, [
        {
          eventName: lambda.FilterRule.isEqual('MODIFY'),
          dynamodb: { NewImage: { modelManage: { M: { source: { S: lambda.FilterRule.isEqual('model-manage') } } } } },
        },
      ]);
    }

    // --------------------------------------------------------------------------------------------- events
    const rule = (id: string, ruleProps: events.RuleProps, fn: lambda.IFunction, maxEventAge: Duration, retryAttempts: number) => {
      const r = named(new events.Rule(this, id, ruleProps), id);
      r.addTarget(new targets.LambdaFunction(fn, { deadLetterQueue: eventsDeadLetterQueue, maxEventAge, retryAttempts }));
      return r;
    };
    rule(
      'JobRunEventsRule',
      {
        description: 'EMR Serverless job-run state changes, retries and resource utilization updates, to the monitor.',
        eventPattern: {
          source: ['aws.emr-serverless'],
          detailType: JOB_RUN_DETAIL_TYPES,
          ...(cfg.jobEventApplicationIds.length > 0 ? { detail: { applicationId: cfg.jobEventApplicationIds } } : {}),
        },
      },
      monitorFunction,
      Duration.hours(1),
      50,
    );
    rule(
      'MonitorSweepRule',
      {
        description: 'The monitor\'s reconciliation sweep (detail-type Scheduled Event).',
        // Every minute: each sweep also attaches the driver logs the GetLogEvents quota kept from final statuses.
        schedule: events.Schedule.rate(Duration.minutes(1)),
      },
      monitorFunction,
      Duration.minutes(4),
      3,
    );
    rule(
      'CleanupSweepRule',
      {
        description: 'The cleanup\'s orphan sweep (detail-type Scheduled Event).',
        schedule: events.Schedule.rate(Duration.hours(1)),
      },
      cleanupFunction,
      Duration.minutes(30),
      3,
    );
    if (bridgeFunction) {
      rule(
        'BridgePollRule',
        {
          description: 'The bridge\'s poll of model-manage (detail-type Scheduled Event); it polls every ModelOpPollSeconds until its timeout.',
          schedule: events.Schedule.rate(Duration.minutes(1)),
        },
        bridgeFunction,
        Duration.seconds(60),
        0,
      );
    }

    // ------------------------------------------------------------------------- dashboard, alarms, topic
    const operations = addOperations(this, {
      config: cfg,
      bridge: bridgeEnabled,
      functions: {
        SubmitFunction: submitFunction.functionName,
        MonitorFunction: monitorFunction.functionName,
        CleanupFunction: cleanupFunction.functionName,
        ...(bridgeFunction ? { BridgeFunction: bridgeFunction.functionName } : {}),
      },
      streamConsumers: {
        SubmitFunction: submitFunction.functionName,
        CleanupFunction: cleanupFunction.functionName,
        ...(bridgeFunction ? { BridgeFunction: bridgeFunction.functionName } : {}),
      },
      failureQueues: {
        SubmitStreamFailureQueue: submitStreamFailureQueue.queueName,
        CleanupStreamFailureQueue: cleanupStreamFailureQueue.queueName,
        EventsDeadLetterQueue: eventsDeadLetterQueue.queueName,
        AsyncFailureQueue: asyncFailureQueue.queueName,
        ...(bridgeStreamFailureQueue ? { BridgeStreamFailureQueue: bridgeStreamFailureQueue.queueName } : {}),
      },
    });

    // -------------------------------------------------------------------------------------------- outputs
    const output = (id: string, value: string, description?: string) => new CfnOutput(this, id, { value, description });
    output('JobsTableName', tableName, 'The jobs table (JOBS_TABLE) ModelOp Center writes jobs into.');
    output('JobsTableStreamArn', streamArn, 'The table\'s stream that drives submit and cleanup.');
    output('StagingBucketName', bucketName, 'The staging bucket (STAGING_BUCKET); job folders are under the staging prefix.');
    output('EmrLogGroupName', emrLogGroupName, 'The log group of job runs (EMR_LOG_GROUP).');
    output('JobExecutionRoleArn', jobExecutionRoleArn, 'The default job execution role (EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN).');
    output('SubmitFunctionArn', submitFunction.functionArn);
    output('MonitorFunctionArn', monitorFunction.functionArn);
    output('CleanupFunctionArn', cleanupFunction.functionArn);
    const trust = 'Trust this role in the main EMR Serverless role\'s trust policy when you bring that role.';
    output('SubmitRoleArn', submitRole.roleArn, trust);
    output('MonitorRoleArn', monitorRole.roleArn, trust);
    output('CleanupRoleArn', cleanupRole.roleArn, trust);
    output('SubmitStreamFailureQueueUrl', submitStreamFailureQueue.queueUrl, 'Stream records submit gave up on.');
    output('CleanupStreamFailureQueueUrl', cleanupStreamFailureQueue.queueUrl, 'Stream records cleanup gave up on.');
    output('EventsDeadLetterQueueUrl', eventsDeadLetterQueue.queueUrl, 'EventBridge events that could not be delivered.');
    output('AsyncFailureQueueUrl', asyncFailureQueue.queueUrl, 'Events monitor and cleanup failed on after their retries.');
    output('OperationsDashboardName', operations.dashboardName, 'The CloudWatch dashboard of jobs, latency, cost and failures.');
    output('AlarmNotificationTopicArn', operations.topicArn, 'The SNS topic the alarms notify (created, or AlarmTopicArn).');
    output('OperatorReadPolicyArn', operatorReadPolicy.managedPolicyArn, 'Attach to the operators of modelop-spark.');
    output('OperatorCancelPolicyArn', operatorCancelPolicy.managedPolicyArn, 'Attach, with the read policy, to operators who may cancel.');
    if (bridgeFunction) {
      output('BridgeFunctionArn', bridgeFunction.functionArn, 'The bridge to ModelOp Center.');
      output('BridgeStreamFailureQueueUrl', bridgeStreamFailureQueue!.queueUrl, 'Stream records the bridge gave up on.');
    }
  }
}
