//! Test only: an HTTP client that answers each request with the next canned response, so an adapter can be
//! run in-process against answers moto's server does not give (an S3 409, GetLogEvents' empty and partial pages).
//! It records each request's body. [`NoWait`] stands in for the SDK's sleep, so a retried call's backoff
//! is recorded rather than waited for.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_cloudwatchlogs::config::{AsyncSleep, SharedAsyncSleep, Sleep};
use aws_smithy_runtime_api::client::http::{http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// One answer: the status, its headers, its body.
type CannedResponse = (u16, Vec<(&'static str, &'static str)>, String);

#[derive(Debug, Clone, Default)]
pub struct CannedHttp {
    responses: Arc<Mutex<VecDeque<CannedResponse>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl CannedHttp {
    /// Answers with `responses` in turn: (HTTP status, headers, body). A request beyond them panics.
    pub fn new(responses: impl IntoIterator<Item = (u16, Vec<(&'static str, &'static str)>, String)>) -> Self {
        CannedHttp { responses: Arc::new(Mutex::new(responses.into_iter().collect())), requests: Arc::default() }
    }

    pub fn client(&self) -> SharedHttpClient {
        let me = self.clone();
        http_client_fn(move |_, _| SharedHttpConnector::new(me.clone()))
    }

    /// The bodies of the requests made so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Credentials for the clients under test (the requests are signed, never sent).
    pub fn credentials() -> Credentials {
        Credentials::new("AKIDTEST", "secret", None, None, "canned")
    }
}

impl HttpConnector for CannedHttp {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        self.requests.lock().unwrap().push(body);
        let (status, headers, body) = self.responses.lock().unwrap().pop_front().expect("a canned response for every request");
        let mut response = HttpResponse::new(StatusCode::try_from(status).expect("an HTTP status"), SdkBody::from(body));
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// The SDK's sleep (its retry backoff) answered at once, each asked duration recorded: a client built with
/// `.sleep_impl(no_wait.sleep_impl())` retries as it would, without the wait, on a running clock (no paused
/// time, so the tests need none of tokio's `test-util`, which would build the SDK a second time for the tests).
/// Every timeout the client arms is a sleep too, and ends at once: build it with no identity cache (whose
/// credential load has one) and no stalled-stream protection, so that only the retries' backoffs remain.
#[derive(Debug, Clone, Default)]
pub struct NoWait {
    asked: Arc<Mutex<Vec<Duration>>>,
}

impl NoWait {
    pub fn sleep_impl(&self) -> SharedAsyncSleep {
        SharedAsyncSleep::new(self.clone())
    }

    /// The durations the SDK asked to sleep, in order.
    pub fn asked(&self) -> Vec<Duration> {
        self.asked.lock().unwrap().clone()
    }
}

impl AsyncSleep for NoWait {
    fn sleep(&self, duration: Duration) -> Sleep {
        self.asked.lock().unwrap().push(duration);
        Sleep::new(std::future::ready(()))
    }
}
