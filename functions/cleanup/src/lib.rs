//! The cleanup function: jobs that reach a final state release their S3 staging folder (and, when
//! ModelOp Center cancelled them, their EMR Serverless run); a schedule sweeps orphaned folders.

pub mod handler;

use std::sync::Arc;

use shared::aws::clients::AwsClients;
use shared::aws::dynamodb::DynamoJobStore;
use shared::aws::emr::EmrServerlessClient;
use shared::aws::s3::S3ObjectStore;
use shared::config::{ConfigError, Settings};

pub use handler::CleanupHandler;

/// Reads and validates the configuration, then builds the clients and the handler: everything a
/// cold start does before the first event.
pub async fn handler_from_env() -> Result<CleanupHandler, ConfigError> {
    let settings = Settings::from_env()?;
    let service = settings.service()?;
    let cleanup = settings.cleanup()?;
    let clients = AwsClients::load(&service).await;
    Ok(CleanupHandler::new(
        service.clone(),
        cleanup,
        Arc::new(DynamoJobStore::new(clients.dynamodb, service.jobs_table.clone())),
        Arc::new(S3ObjectStore::new(clients.s3)),
        Arc::new(EmrServerlessClient::new(clients.emr)),
    ))
}
