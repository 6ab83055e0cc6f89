//! What every command runs with: the global flags, the printer, and the AWS clients they point at
//! (AWS through the SDK's usual chain, an endpoint, or the local stack's ready file), built only
//! by the commands that call AWS.

use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region};
use serde::Deserialize;

use shared::aws::dynamodb::DynamoJobStore;
use shared::aws::emr::EmrServerlessClient;
use shared::aws::logs::CloudWatchLogReader;
use shared::aws::s3::S3ObjectStore;

use crate::cli::GlobalArgs;
use crate::exit::CliError;
use crate::output::Printer;

/// The local stack's ready file when `--local` names none and `$MODELOP_SPARK_LOCAL` is unset.
pub const DEFAULT_LOCAL_READY_FILE: &str = "target/local-stack/ready.json";

/// A command's context.
#[derive(Debug, Clone)]
pub struct Context {
    pub global: GlobalArgs,
    pub printer: Printer,
}

/// The shared adapters a command calls AWS through (one per service, `shared/src/aws/`), so the
/// CLI's calls are the functions' own.
#[derive(Debug, Clone)]
pub struct Aws {
    /// The jobs table (reads, `byJobStatus`, the cancel, a new row, its shape).
    pub store: DynamoJobStore,
    /// EMR Serverless (GetJobRun as monitor reads it, the application, the Spark UI link).
    pub runs: EmrServerlessClient,
    /// CloudWatch Logs (a driver log stream read forward, the log group).
    pub logs: CloudWatchLogReader,
    /// S3, path-style on the local stack (moto): `submit --local` uploads a document's local files there.
    pub objects: S3ObjectStore,
    pub table: String,
    pub log_group: String,
    /// The region the clients call, for links.
    pub region: Option<String>,
    /// Whether this is the local stack (links to the AWS console mean nothing there).
    pub local: bool,
}

/// What `local_aws.py` writes to its ready file (`tests/emulator/local_aws.py`).
#[derive(Debug, Deserialize)]
struct LocalStack {
    moto: String,
    emr: String,
    table: String,
    region: String,
}

impl Context {
    /// The AWS clients of the global flags. With `--local`, the local stack's endpoints, table,
    /// region and test credentials, whatever the environment says.
    pub async fn aws(&self) -> Result<Aws, CliError> {
        let global = &self.global;
        if let Some(ready) = &global.local {
            return local_clients(&local_ready_file(ready), &global.log_group).await;
        }
        let table = global.table.clone().ok_or_else(|| {
            CliError::Usage("no jobs table: pass --table or set JOBS_TABLE (the stack's JobsTableName output), or use --local".into())
        })?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &global.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let mut endpoints = ServiceEndpoints::default();
        if let Some(endpoint) = &global.endpoint_url {
            loader = loader.endpoint_url(endpoint);
            endpoints = ServiceEndpoints::from_env();
        }
        let config = loader.load().await;
        Ok(clients(&config, endpoints, table, global.log_group.clone(), false))
    }
}

/// Endpoints of single services, over the one of the SDK config.
#[derive(Debug, Default)]
struct ServiceEndpoints {
    dynamodb_url: Option<String>,
    emr_url: Option<String>,
    logs_url: Option<String>,
    s3_url: Option<String>,
}

impl ServiceEndpoints {
    /// Each service's `AWS_ENDPOINT_URL_<SERVICE>`. With `--endpoint-url` the CLI reads them itself: the SDK lets an
    /// endpoint set in code win over them, and the CLI lets each win for its service (EMR Serverless on its own
    /// emulator, say).
    fn from_env() -> ServiceEndpoints {
        let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        ServiceEndpoints {
            dynamodb_url: variable("AWS_ENDPOINT_URL_DYNAMODB"),
            emr_url: variable("AWS_ENDPOINT_URL_EMR_SERVERLESS"),
            logs_url: variable("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"),
            s3_url: variable("AWS_ENDPOINT_URL_S3"),
        }
    }
}

/// `--local`'s file: the one given, else `$MODELOP_SPARK_LOCAL`, else [`DEFAULT_LOCAL_READY_FILE`].
fn local_ready_file(given: &str) -> PathBuf {
    if !given.is_empty() {
        return PathBuf::from(given);
    }
    std::env::var_os("MODELOP_SPARK_LOCAL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_LOCAL_READY_FILE))
}

async fn local_clients(ready: &Path, log_group: &str) -> Result<Aws, CliError> {
    let text = std::fs::read_to_string(ready).map_err(|e| {
        CliError::Client(format!(
            "no local stack at {} ({e}): keep one running with ./tests/demo.sh (its mode that keeps the stack), or point --local=FILE at a local_aws.py ready file",
            ready.display()
        ))
    })?;
    let stack: LocalStack =
        serde_json::from_str(text.lines().next().unwrap_or_default()).map_err(|e| CliError::Client(format!("{} is not a local_aws.py ready file: {e}", ready.display())))?;
    let credentials = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "modelop-spark --local");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(stack.region.clone()))
        .endpoint_url(&stack.moto)
        .credentials_provider(credentials)
        .load()
        .await;
    Ok(clients(&config, ServiceEndpoints { emr_url: Some(stack.emr), ..Default::default() }, stack.table, log_group.to_string(), true))
}

fn clients(config: &aws_config::SdkConfig, endpoints: ServiceEndpoints, table: String, log_group: String, local: bool) -> Aws {
    // Each builder as the SDK config makes it, then the service's own endpoint if it has one.
    // Named *_config, not after the service: the operator policies' agreement test takes a method called on a
    // variable named after a service for an SDK call.
    let dynamodb_config = endpoints.dynamodb_url.into_iter().fold(aws_sdk_dynamodb::config::Builder::from(config), |b, url| b.endpoint_url(url));
    let emr_config = endpoints.emr_url.into_iter().fold(aws_sdk_emrserverless::config::Builder::from(config), |b, url| b.endpoint_url(url));
    let logs_config = endpoints.logs_url.into_iter().fold(aws_sdk_cloudwatchlogs::config::Builder::from(config), |b, url| b.endpoint_url(url));
    let s3_config = endpoints.s3_url.into_iter().fold(aws_sdk_s3::config::Builder::from(config).force_path_style(local), |b, url| b.endpoint_url(url));
    Aws {
        store: DynamoJobStore::new(aws_sdk_dynamodb::Client::from_conf(dynamodb_config.build()), table.clone()),
        runs: EmrServerlessClient::new(aws_sdk_emrserverless::Client::from_conf(emr_config.build())),
        logs: CloudWatchLogReader::new(aws_sdk_cloudwatchlogs::Client::from_conf(logs_config.build())),
        objects: S3ObjectStore::new(aws_sdk_s3::Client::from_conf(s3_config.build())),
        table,
        log_group,
        region: config.region().map(ToString::to_string),
        local,
    }
}

impl Aws {
    /// The job row, or a client error naming the table when there is none.
    pub async fn job(&self, id: &str) -> Result<crate::row::JobRow, CliError> {
        self.store.job_row(id).await?.ok_or_else(|| CliError::Client(format!("no job {id:?} in table {}", self.table)))
    }
}
