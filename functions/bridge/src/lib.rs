//! The bridge function: ModelOp Center's CREATED jobs of this runtime from model-manage into the
//! jobs table (a scheduled poll), and each bridged row's progress back to model-manage (the
//! table's stream).

pub mod handler;

use std::sync::Arc;

use shared::config::{ConfigError, Settings};
use shared::model_manage::client::{http_client, ModelManageClient};
use shared::model_manage::table::DynamoBridgeTable;
use shared::model_manage::token::TokenSource;

pub use handler::BridgeHandler;

/// What can stop a cold start: the configuration, or the client secret.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("bridge start-up: {0}")]
    Start(String),
}

/// Reads and validates the configuration, reads the client secret, then builds the clients and
/// the handler: everything a cold start does before the first event.
pub async fn handler_from_env() -> Result<BridgeHandler, StartError> {
    let settings = Settings::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    handler_from_settings(&settings, &aws).await
}

/// [`handler_from_env`] with the settings and the AWS configuration given (the integration tests
/// wire it to moto and the model-manage emulator this way).
pub async fn handler_from_settings(settings: &Settings, aws: &aws_config::SdkConfig) -> Result<BridgeHandler, StartError> {
    if !settings.bridge_enabled() {
        return Err(ConfigError::Missing(shared::config::MODELOP_GATEWAY_URL).into());
    }
    let service = settings.service()?;
    let bridge = settings.bridge()?;
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let secret = shared::model_manage::secret::client_secret(&secrets, &bridge.client_secret_arn).await.map_err(|e| StartError::Start(e.to_string()))?;
    let http = http_client().map_err(StartError::Start)?;
    let tokens = TokenSource::new(http.clone(), &bridge.token_url, &bridge.client_id, secret, bridge.scope.clone());
    let model_manage = ModelManageClient::new(http, bridge.api_base.clone(), bridge.job_item_path.clone(), tokens);
    let table = DynamoBridgeTable::new(aws_sdk_dynamodb::Client::new(aws), service.jobs_table.clone());
    Ok(BridgeHandler::new(bridge, &service.jobs_table, Arc::new(model_manage), Arc::new(table)))
}
