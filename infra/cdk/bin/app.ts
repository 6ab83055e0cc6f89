#!/usr/bin/env node
// cdk synth | deploy [-c key=value ...]: the keys are listed in infra/README.md ("Parameters") and read by lib/config.ts.
//   -c stackName=NAME     the stack's name (default ModelopSparkServerless)
//   -c skipBundling=true  synthesize without building the Rust functions (no cargo-lambda needed): the template is
//                         complete, but its function assets point at the workspace sources, so it cannot be deployed.
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig } from '../lib/config';
import { ModelOpSparkServerlessStack } from '../lib/stack';

const app = new App();
const skipBundling = String(app.node.tryGetContext('skipBundling') ?? 'false') === 'true';
if (skipBundling) {
  // Stack.bundlingRequired is false for every stack: asset staging keeps the source path and skips cargo-lambda.
  app.node.setContext('aws:cdk:bundling-stacks', []);
}
const stackName = String(app.node.tryGetContext('stackName') ?? 'ModelopSparkServerless');

new ModelOpSparkServerlessStack(app, stackName, {
  config: readConfig(app.node),
  description:
    'ModelOp Center Spark serverless runtime on AWS Lambda: submit, monitor and cleanup of EMR Serverless job runs ' +
    '(CDK app, infra/cdk); with modelOpGatewayUrl, the bridge to ModelOp Center\'s model-manage.',
});

// Every AwsSolutions finding fails the synth (errors) or the check (tests/infra/check.sh reads the NagReport CSV);
// each suppression in lib/stack.ts carries its reason.
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true, reports: true }));
