//! The monitor function: EMR Serverless job-run events (and a reconciliation schedule) drive each
//! launched job to COMPLETE, ERROR or CANCELLED, with its driver logs and results attached.

pub mod handler;

use std::sync::Arc;

use shared::aws::clients::AwsClients;
use shared::aws::dynamodb::DynamoJobStore;
use shared::aws::emr::EmrServerlessClient;
use shared::aws::logs::CloudWatchLogReader;
use shared::aws::s3::S3ObjectStore;
use shared::config::{ConfigError, Settings};

pub use handler::MonitorHandler;

/// Reads and validates the configuration, then builds the clients and the handler: everything a
/// cold start does before the first event.
pub async fn handler_from_env() -> Result<MonitorHandler, ConfigError> {
    let settings = Settings::from_env()?;
    let service = settings.service()?;
    let mut monitor = settings.monitor()?;
    let clients = AwsClients::load(&service).await;
    monitor.region = clients.emr_region.clone();
    let log_reads_per_second = monitor.log_reads_per_second;
    Ok(MonitorHandler::new(
        service.clone(),
        monitor,
        Arc::new(DynamoJobStore::new(clients.dynamodb, service.jobs_table.clone())),
        Arc::new(S3ObjectStore::new(clients.s3)),
        Arc::new(EmrServerlessClient::new(clients.emr)),
        Arc::new(CloudWatchLogReader::new(clients.logs).paced(log_reads_per_second)),
    ))
}
