//! SDK clients, built once per cold start. `AWS_ENDPOINT_URL` and the per-service
//! `AWS_ENDPOINT_URL_<SERVICE>` variables are honoured by the SDK's own config loader.

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::ServiceConfig;

/// The clients of the four services the functions use.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub emr: aws_sdk_emrserverless::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The region the EMR Serverless client calls: `EMR_REGION`, else the function's own.
    pub emr_region: Option<String>,
}

const SESSION_NAME: &str = "modelop-spark-serverless";

impl AwsClients {
    /// DynamoDB and S3 use the function's own credentials and region. EMR Serverless and
    /// CloudWatch Logs use `EMR_REGION` when set, and the assumed `EMR_MAIN_ROLE_ARN` when set, as
    /// ModelOp's `mainEmrServerlessRoleArn` describes.
    pub async fn load(config: &ServiceConfig) -> AwsClients {
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let emr_config = emr_sdk_config(&base, config).await;
        let s3_config = aws_sdk_s3::config::Builder::from(&base).force_path_style(config.s3_force_path_style).build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(&base),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            emr: aws_sdk_emrserverless::Client::new(&emr_config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&emr_config),
            emr_region: emr_config.region().map(ToString::to_string),
        }
    }
}

async fn emr_sdk_config(base: &SdkConfig, config: &ServiceConfig) -> SdkConfig {
    let mut builder = base.to_builder();
    if let Some(region) = &config.emr_region {
        builder = builder.region(Region::new(region.clone()));
    }
    if let Some(role_arn) = &config.main_role_arn {
        // Credentials are fetched lazily and refreshed by the provider, so this adds no call to
        // the cold start.
        let provider = AssumeRoleProvider::builder(role_arn.clone()).session_name(SESSION_NAME).configure(base).build().await;
        builder = builder.credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider));
    }
    builder.build()
}
