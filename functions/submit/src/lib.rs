//! The submit function: DynamoDB stream records of CREATED jobs become EMR Serverless job runs.

pub mod handler;

use std::sync::Arc;

use shared::aws::clients::AwsClients;
use shared::aws::dynamodb::DynamoJobStore;
use shared::aws::emr::EmrServerlessClient;
use shared::aws::s3::S3ObjectStore;
use shared::config::{ConfigError, Settings};

pub use handler::SubmitHandler;

/// Reads and validates the configuration, then builds the clients and the handler: everything a
/// cold start does before the first event.
pub async fn handler_from_env() -> Result<SubmitHandler, ConfigError> {
    let settings = Settings::from_env()?;
    let service = settings.service()?;
    let submit = settings.submit()?;
    let clients = AwsClients::load(&service).await;
    Ok(SubmitHandler::new(
        service.clone(),
        submit,
        Arc::new(DynamoJobStore::new(clients.dynamodb, service.jobs_table.clone())),
        Arc::new(S3ObjectStore::new(clients.s3)),
        Arc::new(EmrServerlessClient::new(clients.emr)),
    ))
}
