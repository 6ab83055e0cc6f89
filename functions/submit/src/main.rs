//! Lambda entry point: configuration and clients once per cold start, then the runtime loop.

use chrono::{DateTime, Utc};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::process::tune_allocator();
    lambda_runtime::tracing::init_default_subscriber();
    let handler = submit::handler_from_env().await.inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = DateTime::<Utc>::from(event.context.deadline());
        Ok::<_, Error>(handler.handle_batch(event.payload, deadline).await)
    }))
    .await
}
