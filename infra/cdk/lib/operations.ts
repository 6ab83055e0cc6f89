// What a platform team watches (infra/README.md, "Operations"): the dashboard, the alarms and the SNS topic they notify.
// The same logical ids and properties as infra/template.yaml; tests/infra/test_agreement.py compares the two.
import { Aws, Stack, aws_cloudwatch as cloudwatch, aws_kms as kms, aws_sns as sns } from 'aws-cdk-lib';
import { ServiceConfig } from './config';

/** The namespace of the functions' Embedded Metric Format lines; every metric has the dimension Function. */
export const METRIC_NAMESPACE = 'ModelOp/SparkServerlessRuntime';

export interface OperationsProps {
  readonly config: ServiceConfig;
  /** Logical id -> function name (a Ref), for each function. */
  readonly functions: Record<string, string>;
  /** Logical id -> function name, for the functions a stream mapping invokes. */
  readonly streamConsumers: Record<string, string>;
  /** Logical id -> queue name (a GetAtt), for every queue where failures are kept. */
  readonly failureQueues: Record<string, string>;
  /** Whether the bridge to ModelOp Center is deployed: its metric alarms and dashboard widgets. */
  readonly bridge: boolean;
}

type Dimensions = Record<string, string>;
type DashboardMetric = (string | Record<string, unknown>)[];

const own = (name: string, fn: string, dimensions: Dimensions, options: Record<string, unknown>): DashboardMetric => [
  METRIC_NAMESPACE,
  name,
  'Function',
  fn,
  ...Object.entries(dimensions).flat(),
  options,
];

/** Every value of an open-ended dimension (job type, failure class, ...): one line per value. */
const search = (id: string, name: string, fn: string, dimensions: string[], stat: string, period: number) => [
  {
    id,
    expression: `SEARCH('{${METRIC_NAMESPACE},${['Function', ...dimensions].join(',')}} MetricName="${name}" Function="${fn}"', '${stat}', ${period})`,
    period,
  },
];

export function addOperations(stack: Stack, props: OperationsProps): { dashboardName: string; topicArn: string } {
  const cfg = props.config;
  const region = Aws.REGION;

  // ---------------------------------------------------------------------------------- the alarm topic
  let topicArn = cfg.alarmTopicArn;
  if (topicArn === '') {
    // CloudWatch may not use the AWS managed aws/sns key: the topic gets its own key, which CloudWatch may use.
    const key = new kms.CfnKey(stack, 'AlarmTopicKey', {
      description: 'Encrypts the alarm topic; CloudWatch alarms may use it to publish.',
      enableKeyRotation: true,
      keyPolicy: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AccountAdministers',
            Effect: 'Allow',
            Principal: { AWS: `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
          {
            Sid: 'CloudWatchAlarmsPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
          },
        ],
      },
    });
    key.overrideLogicalId('AlarmTopicKey');
    const topic = new sns.CfnTopic(stack, 'AlarmTopic', { kmsMasterKeyId: key.attrArn });
    topic.overrideLogicalId('AlarmTopic');
    topicArn = topic.ref;
    const policy = new sns.CfnTopicPolicy(stack, 'AlarmTopicPolicy', {
      topics: [topicArn],
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'CloudWatchAlarmsPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Resource: topicArn,
            Condition: { ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${region}:${Aws.ACCOUNT_ID}:alarm:*` } },
          },
          {
            Sid: 'DenyInsecureTransport',
            Effect: 'Deny',
            Principal: '*',
            Action: 'sns:Publish',
            Resource: topicArn,
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      },
    });
    policy.overrideLogicalId('AlarmTopicPolicy');
  }
  if (cfg.alarmEmail !== '') {
    new sns.CfnSubscription(stack, 'AlarmEmailSubscription', {
      topicArn,
      protocol: 'email',
      endpoint: cfg.alarmEmail,
    }).overrideLogicalId('AlarmEmailSubscription');
  }

  // ------------------------------------------------------------------------------------------- alarms
  const alarm = (id: string, description: string, alarmProps: Omit<cloudwatch.CfnAlarmProps, 'alarmActions' | 'alarmDescription'>) =>
    new cloudwatch.CfnAlarm(stack, id, {
      alarmDescription: `${description} What to do: infra/README.md, "Alarms", ${id}.`,
      alarmActions: [topicArn],
      ...alarmProps,
    }).overrideLogicalId(id);
  // Any datapoint above zero in five minutes: any message, any error, any repair.
  const anyIn = (namespace: string, metricName: string, dimension: string, value: string, statistic: string) => ({
    namespace,
    metricName,
    dimensions: [{ name: dimension, value }],
    statistic,
    period: 300,
    comparisonOperator: 'GreaterThanThreshold',
    threshold: 0,
    evaluationPeriods: 1,
    treatMissingData: 'notBreaching',
  });

  for (const [queue, queueName] of Object.entries(props.failureQueues)) {
    alarm(`${queue}Alarm`, `A message is waiting in ${queue}: an event or record the service gave up on.`,
      anyIn('AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', queueName, 'Maximum'));
  }
  for (const [fn, functionName] of Object.entries(props.streamConsumers)) {
    // IteratorAge is in milliseconds; the threshold is in seconds.
    alarm(`${fn}IteratorAgeAlarm`, `The oldest stream record ${fn} has not yet handled is older than the threshold.`, {
      metrics: [
        {
          id: 'age',
          metricStat: {
            metric: { namespace: 'AWS/Lambda', metricName: 'IteratorAge', dimensions: [{ name: 'FunctionName', value: functionName }] },
            period: 60,
            stat: 'Maximum',
          },
          returnData: false,
        },
        { id: 'ageSeconds', expression: 'age / 1000', label: 'Iterator age (seconds)', returnData: true },
      ],
      comparisonOperator: 'GreaterThanThreshold',
      threshold: cfg.iteratorAgeAlarmSeconds,
      evaluationPeriods: 5,
      datapointsToAlarm: 5,
      treatMissingData: 'notBreaching',
    });
  }
  for (const [fn, functionName] of Object.entries(props.functions)) {
    alarm(`${fn}ErrorsAlarm`, `${fn} failed an invocation (Lambda Errors).`,
      anyIn('AWS/Lambda', 'Errors', 'FunctionName', functionName, 'Sum'));
  }
  if (props.bridge) {
    alarm('BridgeAuthFailuresAlarm',
      'The bridge could not authenticate to ModelOp Center (token refused or unreachable, or a new token refused).',
      anyIn(METRIC_NAMESPACE, 'AuthFailures', 'Function', 'bridge', 'Sum'));
    // A failed write-back is retried; one that fails in three five-minute periods in a row is model-manage down.
    alarm('BridgeWriteBackFailuresAlarm', 'Write-backs to model-manage kept failing for 15 minutes (each is retried).', {
      ...anyIn(METRIC_NAMESPACE, 'WriteBackFailures', 'Function', 'bridge', 'Sum'),
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
    });
  }
  alarm('SweepRepairsAlarm', 'The monitor\'s sweep had to repair a job: EMR Serverless events are being lost.',
    anyIn(METRIC_NAMESPACE, 'SweepRepairs', 'Function', 'monitor', 'Sum'));
  const finished = (id: string, dimensions: Dimensions, stat: string): cloudwatch.CfnAlarm.MetricDataQueryProperty => ({
    id,
    metricStat: {
      metric: {
        namespace: METRIC_NAMESPACE,
        metricName: id === 'stale' ? 'StaleJobs' : 'JobsFinished',
        dimensions: [{ name: 'Function', value: 'monitor' }, ...Object.entries(dimensions).map(([name, value]) => ({ name, value }))],
      },
      period: 3600,
      stat,
    },
    returnData: false,
  });
  alarm('JobErrorRateAlarm', 'More than the threshold percentage of the jobs that finished in the last hour ended in ERROR.', {
    metrics: [
      finished('errors', { Status: 'ERROR' }, 'Sum'),
      finished('all', {}, 'Sum'),
      { id: 'errorRate', expression: '100 * FILL(errors, 0) / all', label: 'Jobs in ERROR (%)', returnData: true },
    ],
    comparisonOperator: 'GreaterThanThreshold',
    threshold: cfg.errorRateAlarmPercent,
    evaluationPeriods: 1,
    // No job finished in the hour: no rate, nothing to judge.
    treatMissingData: 'notBreaching',
  });
  alarm('StuckPipelineAlarm', 'No job finished for the threshold hours while jobs were WAITING or RUNNING without update.', {
    metrics: [
      finished('stale', {}, 'Maximum'),
      finished('finished', {}, 'Sum'),
      {
        id: 'stuck',
        expression: 'IF(FILL(stale, 0) > 0 AND FILL(finished, 0) == 0, 1, 0)',
        label: 'Jobs waiting and none finished (1 = stuck hour)',
        returnData: true,
      },
    ],
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    threshold: 1,
    evaluationPeriods: cfg.stuckPipelineHours,
    datapointsToAlarm: cfg.stuckPipelineHours,
    // No StaleJobs at all means no sweep reported waiting jobs (an idle or new stack): not evidence of a stuck one.
    // A monitor that no longer runs its sweep shows up in MonitorFunctionErrorsAlarm and EventsDeadLetterQueueAlarm.
    treatMissingData: 'notBreaching',
  });

  // ---------------------------------------------------------------------------------------- dashboard
  const lambdaLines = (metric: string, fns: Record<string, string>, stat: string): DashboardMetric[] =>
    Object.entries(fns).map(([fn, name]) => ['AWS/Lambda', metric, 'FunctionName', name, { stat, label: fn }]);
  const widgets: [string, unknown[], Record<string, unknown>?][] = [
    ['Jobs launched, finished and failed', [
      own('JobsLaunched', 'submit', {}, { stat: 'Sum', label: 'launched' }),
      own('JobsFinished', 'monitor', {}, { stat: 'Sum', label: 'finished' }),
      own('JobsFinished', 'monitor', { Status: 'ERROR' }, { stat: 'Sum', label: 'finished in ERROR' }),
      own('SubmitFailures', 'submit', {}, { stat: 'Sum', label: 'submit failures' }),
    ]],
    ['Jobs finished by status', ['COMPLETE', 'ERROR', 'CANCELLED'].map((s) =>
      own('JobsFinished', 'monitor', { Status: s }, { stat: 'Sum', label: s }))],
    ['Launch latency: stream record to StartJobRun (ms)', [
      own('LaunchLatency', 'submit', {}, { stat: 'p50', label: 'p50' }),
      own('LaunchLatency', 'submit', {}, { stat: 'p99', label: 'p99' }),
    ]],
    ['Queued time (ms)', [
      own('QueuedTime', 'monitor', {}, { stat: 'p50', label: 'p50' }),
      own('QueuedTime', 'monitor', {}, { stat: 'p99', label: 'p99' }),
    ]],
    ['Run duration by job type (s, average)', [search('duration', 'RunDuration', 'monitor', ['JobType'], 'Average', 300)]],
    ['Failures by class', [search('failures', 'JobFailures', 'monitor', ['FailureClass'], 'Sum', 300)]],
    ['Cost per hour by job type (USD)', [search('cost', 'JobCost', 'monitor', ['JobType'], 'Sum', 3600)], { period: 3600 }],
    ['Submit failures by step and disposition', [search('submitFailures', 'SubmitFailures', 'submit', ['Step', 'Disposition'], 'Sum', 300)]],
    ['Sweep repairs, stale jobs, lease takeovers', [
      own('SweepRepairs', 'monitor', {}, { stat: 'Sum', label: 'sweep repairs' }),
      own('StaleJobs', 'monitor', {}, { stat: 'Maximum', label: 'stale WAITING/RUNNING jobs' }),
      own('LeaseTakeovers', 'submit', {}, { stat: 'Sum', label: 'lease takeovers' }),
    ]],
    ['Cleanup', ['FoldersCleaned', 'ObjectsDeleted', 'CancelsSent', 'OrphanFolders', 'CleanupRefusals'].map((name) =>
      own(name, 'cleanup', {}, { stat: 'Sum', label: name }))],
    ['Stream iterator age (ms, maximum)', lambdaLines('IteratorAge', props.streamConsumers, 'Maximum')],
    ['Failure queue depths (messages visible)', Object.entries(props.failureQueues).map(([queue, name]) =>
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', name, { stat: 'Maximum', label: queue }])],
    ['Function errors', lambdaLines('Errors', props.functions, 'Sum')],
    ['Function duration (ms, p99)', lambdaLines('Duration', props.functions, 'p99')],
    ...(props.bridge
      ? ([
          ['ModelOp Center bridge', ['JobsBridged', 'ClaimsLost', 'ClaimsRecovered', 'JobsRefused', 'RowsCancelled', 'BridgeFailures',
            'WriteBacks', 'WriteBackFailures', 'AuthFailures'].map((name) => own(name, 'bridge', {}, { stat: 'Sum', label: name }))],
          ['model-manage errors by HTTP status', [search('modelManageErrors', 'ModelManageErrors', 'bridge', ['Status'], 'Sum', 300)]],
        ] as [string, unknown[], Record<string, unknown>?][])
      : []),
  ];
  const body = {
    widgets: widgets.map(([title, metrics, extra], i) => ({
      type: 'metric',
      x: (i % 2) * 12,
      y: Math.floor(i / 2) * 6,
      width: 12,
      height: 6,
      properties: { title, region, view: 'timeSeries', stacked: false, period: 300, metrics, ...extra },
    })),
  };
  const dashboard = new cloudwatch.CfnDashboard(stack, 'OperationsDashboard', {
    dashboardName: `${Aws.STACK_NAME}-operations`,
    dashboardBody: stack.toJsonString(body),
  });
  dashboard.overrideLogicalId('OperationsDashboard');
  return { dashboardName: dashboard.ref, topicArn };

}
