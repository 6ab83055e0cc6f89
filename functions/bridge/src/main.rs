//! Lambda entry point: configuration, the secret and the clients once per cold start, then the
//! runtime loop.

use bridge::handler::Invocation;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::process::tune_allocator();
    lambda_runtime::tracing::init_default_subscriber();
    // Each metric entry is written to stdout as its unit of work ends; at Lambda's Shutdown phase
    // the sink is detached and stdout flushed (shared/src/metrics.rs), as in the other functions.
    let metrics = shared::metrics::emit_to_stdout(shared::metrics::Function::Bridge);
    let (_hooked, handler) =
        tokio::join!(shared::process::on_shutdown(shared::metrics::at_shutdown(metrics)), bridge::handler_from_env());
    let handler = handler.inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_context(&event.context);
        handler.handle(event.payload, &invocation).await.map_err(Error::from)
    }))
    .await
}
