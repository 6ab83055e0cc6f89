// The deployment settings of the CDK app: CDK context keys (cdk.json, `-c key=value`), one for each parameter of
// infra/template.yaml, with the same defaults and the same validation. infra/README.md ("Parameters") has the table.
import { Node } from 'constructs';

export type Architecture = 'arm64' | 'x86_64';

/** Stream retry window -> the mappings' MaximumRecordAgeInSeconds and MONITOR_STUCK_WAITING_MINUTES (window + 2 h). */
export const STREAM_RETRY_WINDOWS: Record<string, { recordAgeSeconds: number; stuckWaitingMinutes: number }> = {
  '1h': { recordAgeSeconds: 3600, stuckWaitingMinutes: 180 },
  '3h': { recordAgeSeconds: 10800, stuckWaitingMinutes: 300 },
  '6h': { recordAgeSeconds: 21600, stuckWaitingMinutes: 480 },
  '12h': { recordAgeSeconds: 43200, stuckWaitingMinutes: 840 },
  '24h': { recordAgeSeconds: 86400, stuckWaitingMinutes: 1560 },
};

export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export interface ServiceConfig {
  readonly architecture: Architecture;
  readonly defaultAppName: string;
  readonly releaseVersion: string;
  /** Empty: the stack's region. */
  readonly emrRegion: string;
  /** Empty: the functions' own roles call EMR Serverless and CloudWatch Logs. */
  readonly mainEmrServerlessRoleArn: string;
  /** Empty: the stack creates the job execution role. */
  readonly defaultJobExecutionRoleArn: string;
  readonly additionalJobExecutionRoleArns: string[];
  readonly jobExecutionConf: string;
  readonly appIdleTimeoutMinutes: number;
  /** Run controls (shared/src/launch/run_controls.rs); empty: not set, EMR's default. Checked fully by the functions at cold start. */
  readonly executionTimeoutMinutes: string;
  readonly maxAttempts: string;
  readonly cancelGracePeriodSeconds: string;
  readonly appMaxConcurrentRuns: string;
  readonly appQueueTimeoutMinutes: string;
  readonly appMaximumCapacity: string;
  readonly appArchitecture: string;
  readonly appSubnetIds: string;
  readonly appSecurityGroupIds: string;
  /** Cost per job: EMR_PRICES (empty: the monitor's built-in table; validated fully at its cold start) and
   * EMR_APP_JOB_LEVEL_COST_ALLOCATION. */
  readonly emrPrices: string;
  readonly jobLevelCostAllocation: string;
  /** Per-job least privilege (shared/src/launch/job_policy.rs): 'true'/'false', and what every scoped run gets besides its own objects. */
  readonly scopeJobPermissions: string;
  readonly allowUnscopedJobs: string;
  readonly jobPolicyArns: string;
  readonly jobExtraPolicyStatements: string;
  /** Empty: the stack creates /aws/emr-serverless/<stack name>. */
  readonly emrLogGroupName: string;
  /** Empty: the stack creates the table. */
  readonly existingJobsTableName: string;
  readonly existingJobsTableStreamArn: string;
  /** Empty: the stack creates the bucket. */
  readonly existingStagingBucketName: string;
  readonly stagingPrefix: string;
  readonly stagingExpirationDays: number;
  readonly modelAssetBucketArns: string[];
  readonly inputBucketArns: string[];
  readonly outputBucketArns: string[];
  /** Empty: job-run events of every application reach the monitor. */
  readonly jobEventApplicationIds: string[];
  readonly logRetentionDays: number;
  readonly submitReservedConcurrency: number;
  readonly monitorReservedConcurrency: number;
  readonly cleanupReservedConcurrency: number;
  readonly submitMaxConcurrency: number;
  readonly cleanupMaxConcurrency: number;
  readonly cleanupOrphanMinAgeHours: number;
  readonly monitorLogTailBytes: number;
  readonly monitorLogReadsPerSecond: number;
  readonly monitorResultMaxBytes: number;
  readonly monitorSweepMinAgeMinutes: number;
  readonly monitorMaxConcurrency: number;
  readonly monitorUsageSweepHours: number;
  readonly streamRetryWindow: string;
  readonly streamMaximumRetryAttempts: number;
  readonly streamBatchSize: number;
  /** Alarms (lib/operations.ts): an existing SNS topic (empty: the stack creates an encrypted one), an email to
   * subscribe to the topic (empty: none), and the thresholds. */
  readonly alarmTopicArn: string;
  readonly alarmEmail: string;
  readonly iteratorAgeAlarmSeconds: number;
  readonly errorRateAlarmPercent: number;
  readonly stuckPipelineHours: number;
  /** The bridge to ModelOp Center (functions/bridge): deployed only when modelOpGatewayUrl is set, which then needs
   * modelOpTokenUrl and modelOpClientSecretArn. The MODELOP_* settings of shared/src/config.rs. */
  readonly modelOpGatewayUrl: string;
  readonly modelOpTokenUrl: string;
  readonly modelOpClientId: string;
  readonly modelOpClientSecretArn: string;
  readonly modelOpScope: string;
  readonly modelOpEngineTypes: string;
  readonly modelOpRuntimeName: string;
  readonly modelOpPollSeconds: number;
  readonly modelOpRunIdField: string;
  readonly modelOpJobFinder: string;
  readonly modelOpJobItemPath: string;
  readonly modelOpTestResultAsset: string;
  readonly bridgeReservedConcurrency: number;
  /** Comma-separated; both empty: no VPC. */
  readonly bridgeSubnetIds: string;
  readonly bridgeSecurityGroupIds: string;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[A-Za-z0-9+=,.@_/-]+$/;
const HTTP_URL = /^(https?:\/\/[^\s?#@]+)?$/;
const BUCKET_ARN = /^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

class Reader {
  readonly errors: string[] = [];

  constructor(private readonly node: Node) {}

  private raw(key: string): unknown {
    return this.node.tryGetContext(key);
  }

  string(key: string, fallback: string, pattern?: RegExp): string {
    const value = this.raw(key);
    const text =
      value === undefined || value === null
        ? fallback
        : typeof value === 'object'
          ? JSON.stringify(value) // e.g. jobExecutionConf given as an object in cdk.json
          : String(value).trim();
    if (pattern && !pattern.test(text)) {
      this.errors.push(`${key}: ${JSON.stringify(text)} does not match ${pattern}`);
    }
    return text;
  }

  oneOf(key: string, fallback: string, allowed: string[]): string {
    const text = this.string(key, fallback);
    if (!allowed.includes(text)) {
      this.errors.push(`${key}: ${JSON.stringify(text)} is not one of ${allowed.join(', ')}`);
    }
    return text;
  }

  number(key: string, fallback: number, min: number, max: number): number {
    const value = this.raw(key);
    const n = value === undefined || value === null || value === '' ? fallback : Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.errors.push(`${key}: ${JSON.stringify(value)} is not an integer in ${min}..${max}`);
    }
    return n;
  }

  /** A list from a JSON array (cdk.json) or a comma-separated string (`-c key=a,b`); empty items are dropped. */
  list(key: string, pattern?: RegExp): string[] {
    const value = this.raw(key);
    const items = value === undefined || value === null ? [] : Array.isArray(value) ? value.map(String) : String(value).split(',');
    const list = items.map((s) => s.trim()).filter((s) => s.length > 0);
    for (const item of list) {
      if (pattern && !pattern.test(item)) {
        this.errors.push(`${key}: ${JSON.stringify(item)} does not match ${pattern}`);
      }
    }
    return list;
  }
}

/** Reads and validates the context; throws one error naming every bad key. */
export function readConfig(node: Node): ServiceConfig {
  const r = new Reader(node);
  const config: ServiceConfig = {
    architecture: r.oneOf('architecture', 'arm64', ['arm64', 'x86_64']) as Architecture,
    defaultAppName: r.string('defaultAppName', 'modelop-default', /^[A-Za-z0-9._/#-]{1,64}$/),
    releaseVersion: r.string('releaseVersion', 'emr-7.5.0', /^emr-[0-9]+\.[0-9]+(\.[0-9]+)?$/),
    emrRegion: r.string('emrRegion', '', /^([a-z]{2}(-[a-z]+)+-[0-9])?$/),
    mainEmrServerlessRoleArn: r.string('mainEmrServerlessRoleArn', '', new RegExp(`(${ROLE_ARN.source})|^$`)),
    defaultJobExecutionRoleArn: r.string('defaultJobExecutionRoleArn', '', new RegExp(`(${ROLE_ARN.source})|^$`)),
    additionalJobExecutionRoleArns: r.list('additionalJobExecutionRoleArns', ROLE_ARN),
    jobExecutionConf: r.string('jobExecutionConf', ''),
    appIdleTimeoutMinutes: r.number('appIdleTimeoutMinutes', 15, 1, 10080),
    executionTimeoutMinutes: r.string('executionTimeoutMinutes', '', /^([0-9]{1,7})?$/),
    maxAttempts: r.string('maxAttempts', '', /^([1-9]|10)?$/),
    cancelGracePeriodSeconds: r.string('cancelGracePeriodSeconds', '', /^([0-9]{1,4})?$/),
    appMaxConcurrentRuns: r.string('appMaxConcurrentRuns', '', /^([0-9]{1,4})?$/),
    appQueueTimeoutMinutes: r.string('appQueueTimeoutMinutes', '', /^([0-9]{1,3})?$/),
    appMaximumCapacity: r.string('appMaximumCapacity', '', /^[0-9A-Za-z ,]{0,60}$/),
    appArchitecture: r.oneOf('appArchitecture', '', ['', 'X86_64', 'ARM64']),
    appSubnetIds: r.string('appSubnetIds', '', /^[-0-9A-Za-z, ]*$/),
    appSecurityGroupIds: r.string('appSecurityGroupIds', '', /^[-0-9A-Za-z, ]*$/),
    emrPrices: r.string('emrPrices', ''),
    jobLevelCostAllocation: r.oneOf('jobLevelCostAllocation', 'true', ['true', 'false']),
    scopeJobPermissions: r.oneOf('scopeJobPermissions', 'true', ['true', 'false']),
    allowUnscopedJobs: r.oneOf('allowUnscopedJobs', 'false', ['true', 'false']),
    jobPolicyArns: r.string('jobPolicyArns', '', /^[-0-9A-Za-z:/+=,.@_ ]*$/),
    jobExtraPolicyStatements: r.string('jobExtraPolicyStatements', ''),
    emrLogGroupName: r.string('emrLogGroupName', '', /^[A-Za-z0-9._/#-]{0,512}$/),
    existingJobsTableName: r.string('existingJobsTableName', '', /^([A-Za-z0-9_.-]{3,255})?$/),
    existingJobsTableStreamArn: r.string(
      'existingJobsTableStreamArn',
      '',
      /^(arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table\/[A-Za-z0-9_.-]+\/stream\/.+)?$/,
    ),
    existingStagingBucketName: r.string('existingStagingBucketName', '', /^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$/),
    stagingPrefix: r.string('stagingPrefix', 'modelop-spark-serverless/', /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/$/),
    stagingExpirationDays: r.number('stagingExpirationDays', 7, 2, 3650),
    modelAssetBucketArns: r.list('modelAssetBucketArns', BUCKET_ARN),
    inputBucketArns: r.list('inputBucketArns', BUCKET_ARN),
    outputBucketArns: r.list('outputBucketArns', BUCKET_ARN),
    jobEventApplicationIds: r.list('jobEventApplicationIds', /^[0-9a-z]+$/),
    logRetentionDays: r.number('logRetentionDays', 365, 1, 3653),
    submitReservedConcurrency: r.number('submitReservedConcurrency', 10, 1, 1000),
    monitorReservedConcurrency: r.number('monitorReservedConcurrency', 10, 1, 1000),
    cleanupReservedConcurrency: r.number('cleanupReservedConcurrency', 5, 1, 1000),
    submitMaxConcurrency: r.number('submitMaxConcurrency', 100, 1, 1000),
    cleanupMaxConcurrency: r.number('cleanupMaxConcurrency', 16, 1, 1000),
    cleanupOrphanMinAgeHours: r.number('cleanupOrphanMinAgeHours', 24, 0, 8760),
    monitorLogTailBytes: r.number('monitorLogTailBytes', 16384, 1, 102400),
    monitorLogReadsPerSecond: r.number('monitorLogReadsPerSecond', 10, 1, 1000),
    monitorResultMaxBytes: r.number('monitorResultMaxBytes', 65536, 1, 153600),
    monitorSweepMinAgeMinutes: r.number('monitorSweepMinAgeMinutes', 10, 0, 10080),
    monitorMaxConcurrency: r.number('monitorMaxConcurrency', 16, 1, 1000),
    monitorUsageSweepHours: r.number('monitorUsageSweepHours', 24, 1, 720),
    streamRetryWindow: r.oneOf('streamRetryWindow', '6h', Object.keys(STREAM_RETRY_WINDOWS)),
    streamMaximumRetryAttempts: r.number('streamMaximumRetryAttempts', 100, 0, 10000),
    streamBatchSize: r.number('streamBatchSize', 10, 1, 1000),
    alarmTopicArn: r.string('alarmTopicArn', '', /^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})?$/),
    alarmEmail: r.string('alarmEmail', '', /^([^@\s]+@[^@\s]+\.[^@\s]+)?$/),
    iteratorAgeAlarmSeconds: r.number('iteratorAgeAlarmSeconds', 900, 60, 86400),
    errorRateAlarmPercent: r.number('errorRateAlarmPercent', 10, 1, 100),
    stuckPipelineHours: r.number('stuckPipelineHours', 13, 1, 168),
    modelOpGatewayUrl: r.string('modelOpGatewayUrl', '', HTTP_URL),
    modelOpTokenUrl: r.string('modelOpTokenUrl', '', HTTP_URL),
    modelOpClientId: r.string('modelOpClientId', 'internal-client', /^[!-~]{1,256}$/),
    modelOpClientSecretArn: r.string(
      'modelOpClientSecretArn',
      '',
      /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6})?$/,
    ),
    modelOpScope: r.string('modelOpScope', 'modelop_client', /^[!-~ ]{0,1000}$/),
    modelOpEngineTypes: r.string('modelOpEngineTypes', 'SPARK_SERVERLESS_RUNTIME', /^[A-Za-z0-9_.,-]+$/),
    modelOpRuntimeName: r.string('modelOpRuntimeName', '', /^[!-~ ]{0,256}$/),
    modelOpPollSeconds: r.number('modelOpPollSeconds', 10, 1, 300),
    modelOpRunIdField: r.string('modelOpRunIdField', '', /^([A-Za-z_][A-Za-z0-9_]{0,127})?$/),
    modelOpJobFinder: r.string('modelOpJobFinder', '', /^([A-Za-z_][A-Za-z0-9_]{0,127})?$/),
    modelOpJobItemPath: r.string('modelOpJobItemPath', 'jobs/{id}', /^[A-Za-z0-9_./{}-]{1,256}$/),
    modelOpTestResultAsset: r.string('modelOpTestResultAsset', 'test_result.json', /^[^\x00-\x1f]{1,256}$/),
    bridgeReservedConcurrency: r.number('bridgeReservedConcurrency', 2, 2, 1000),
    bridgeSubnetIds: r.string('bridgeSubnetIds', '', /^[-0-9A-Za-z,]*$/),
    bridgeSecurityGroupIds: r.string('bridgeSecurityGroupIds', '', /^[-0-9A-Za-z,]*$/),
  };
  // The template's Rules.
  if ((config.existingJobsTableName === '') !== (config.existingJobsTableStreamArn === '')) {
    r.errors.push('existingJobsTableName and existingJobsTableStreamArn are given together or not at all');
  }
  if (config.modelOpGatewayUrl !== '' && (config.modelOpTokenUrl === '' || config.modelOpClientSecretArn === '')) {
    r.errors.push('modelOpTokenUrl and modelOpClientSecretArn are required with modelOpGatewayUrl');
  }
  if ((config.bridgeSubnetIds === '') !== (config.bridgeSecurityGroupIds === '')) {
    r.errors.push('bridgeSubnetIds and bridgeSecurityGroupIds are given together or not at all');
  }
  if (config.emrRegion !== '' && config.emrLogGroupName === '') {
    r.errors.push('with emrRegion set, emrLogGroupName must name an existing log group in that region');
  }
  if (!LOG_RETENTION_DAYS.includes(config.logRetentionDays)) {
    r.errors.push(`logRetentionDays: ${config.logRetentionDays} is not one of ${LOG_RETENTION_DAYS.join(', ')}`);
  }
  // JSON objects the functions parse at cold start (which checks them fully): caught here before a deploy.
  for (const [key, value] of [['jobExecutionConf', config.jobExecutionConf], ['emrPrices', config.emrPrices]]) {
    if (value !== '' && !isJsonObject(value)) {
      r.errors.push(`${key}: not a JSON object`);
    }
  }
  if (r.errors.length > 0) {
    throw new Error(`invalid context:\n  ${r.errors.join('\n  ')}`);
  }
  return config;
}

function isJsonObject(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}
