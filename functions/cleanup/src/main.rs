//! Lambda entry point: configuration and clients once per cold start, then the runtime loop.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::process::tune_allocator();
    lambda_runtime::tracing::init_default_subscriber();
    // Each metric entry is written to stdout as its unit of work ends; at Lambda's Shutdown phase
    // (SIGTERM) the sink is detached and stdout flushed (shared/src/metrics.rs).
    let metrics = shared::metrics::emit_to_stdout(shared::metrics::Function::Cleanup);
    // The shutdown extension registers while the configuration loads and the clients are built; where Lambda's
    // Extensions API is missing, a warning, and the function runs without the hook (shared::process::on_shutdown).
    let (_hooked, handler) =
        tokio::join!(shared::process::on_shutdown(shared::metrics::at_shutdown(metrics)), cleanup::handler_from_env());
    let handler = handler.inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { handler.handle_event(event.payload).await })).await
}
