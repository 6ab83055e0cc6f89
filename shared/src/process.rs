//! Process-wide settings each function applies once, first thing in `main`.

/// The largest allocation glibc's malloc serves from its heap; larger ones get their own mapping,
/// which `free` returns to the system at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;

/// Keeps peak memory proportional to what is in use. glibc's malloc raises its mmap threshold
/// each time a large block is freed (up to 32 MiB), after which the large, short-lived buffers of
/// many concurrent S3 streams come from the heap and fragment it: a 100-record submit batch with
/// 1 MiB S3-sourced model files peaked at 41.6 MiB RSS with the sliding threshold and at 31.0 MiB
/// with it fixed at glibc's own default (tests/bench/BENCHMARKS.md, "Memory"). Other C libraries:
/// a warning. Answers whether the setting was applied.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; glibc serialises it with its own locks.
    let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) } == 1;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let applied = false;
    if !applied {
        // Not fatal: only memory headroom depends on it. No subscriber is installed yet.
        eprintln!("{{\"level\":\"WARN\",\"message\":\"allocator tuning not applied (not glibc)\"}}");
    }
    applied
}

/// The name of the internal extension [`on_shutdown`] registers: the one `lambda_runtime`'s own helper registers
/// (1.5, `spawn_graceful_shutdown_handler`).
pub const SHUTDOWN_EXTENSION: &str = "_lambda-rust-runtime-no-op-graceful-shutdown-helper";

/// Lambda's Shutdown phase as `lambda_runtime::spawn_graceful_shutdown_handler` (1.5) sets it up, without its panic.
/// Lambda sends SIGTERM at shutdown only to a function with an extension, so this registers a no-op internal
/// extension (no events), then runs `hook` on SIGTERM or SIGINT and exits 0. Call it before `lambda_runtime::run`.
/// Where the Extensions API is missing or refuses the registration (local emulators: floci-io/floci#1771,
/// cargo-lambda/cargo-lambda#848), it logs a warning and the function runs without the hook: answers whether the
/// hook is in place.
pub async fn on_shutdown<F, Fut>(hook: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let registered = lambda_extension::Extension::new().with_events(&[]).with_extension_name(SHUTDOWN_EXTENSION).register().await;
    let extension = match registered {
        Ok(extension) => extension,
        Err(error) => {
            tracing::warn!(error = %error, "could not register the shutdown extension (no Lambda Extensions API?): running without the shutdown hook");
            return false;
        }
    };
    tokio::spawn(async move {
        let on_signal = async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut sigint), Ok(mut sigterm)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                tracing::warn!("cannot listen for SIGTERM: running without the shutdown hook");
                return;
            };
            let name = tokio::select! {
                _ = sigint.recv() => "SIGINT",
                _ = sigterm.recv() => "SIGTERM",
            };
            eprintln!("[runtime] {name} received");
            eprintln!("[runtime] Graceful shutdown in progress ...");
            hook().await;
            eprintln!("[runtime] Graceful shutdown completed");
            std::process::exit(0);
        };
        // The extension's run loop waits on the Extensions API for events that never come; its errors do not
        // matter, only that it registered before the runtime ended the Init phase.
        let _ = tokio::join!(biased; on_signal, async { let _ = extension.run().await; });
    });
    true
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_fixed_mmap_threshold() {
        assert!(super::tune_allocator());
    }

    /// A Runtime API without the Extensions API (404 on `/2020-01-01/extension/register`), and no API at all
    /// (connection refused): no panic, no hook, and the caller goes on to serve invocations.
    #[tokio::test]
    async fn without_an_extensions_api_there_is_no_hook_and_no_panic() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let read = socket.read(&mut request).await.unwrap();
            socket.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        // The one test of this crate that reads AWS_LAMBDA_RUNTIME_API; both cases run in turn.
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", address.to_string());
        assert!(!super::on_shutdown(|| async { unreachable!("no hook without the extension") }).await);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /2020-01-01/extension/register"), "{request}");
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", closed.to_string());
        assert!(!super::on_shutdown(|| async {}).await);
    }
}
