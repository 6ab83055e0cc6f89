//! OAuth2 client credentials (RFC 6749 §4.4) against the customer's identity provider, with the
//! `oauth2` crate: it builds the token request (client authentication with HTTP Basic, RFC 6749
//! §2.3.1, the id and secret form-encoded first) and reads the RFC's answers and error bodies. Its
//! requests go through the bridge's one `reqwest` client. The token is cached until a minute
//! before it expires; [`TokenSource::invalidate`] drops it after a 401, so the next call asks for
//! a new one. The secret is never logged (`oauth2::ClientSecret`'s `Debug` redacts it).

use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, EndpointNotSet, EndpointSet, Scope, TokenResponse, TokenUrl};
use tokio::sync::Mutex;

use super::SERVICE;
use crate::error::{AwsError, AwsErrorKind};

/// A token is renewed this long before the identity provider says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// The lifetime assumed when the answer has no `expires_in` (RFC 6749 §5.1 makes it optional).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

type TokenClient = BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    renew_at: Instant,
}

/// Bearer tokens for model-manage, cached.
pub struct TokenSource {
    client: TokenClient,
    scope: Option<String>,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    /// `token_url`: `MODELOP_TOKEN_URL`; `secret`: read from Secrets Manager.
    pub fn new(http: reqwest::Client, token_url: &url::Url, client_id: &str, secret: String, scope: Option<String>) -> Self {
        let client = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(secret))
            .set_token_uri(TokenUrl::from_url(token_url.clone()));
        TokenSource { client, scope, http, cached: Mutex::new(None) }
    }

    /// A valid bearer token: the cached one, or a new one from the token endpoint. Errors:
    /// `Permanent` when the identity provider refuses the client (`invalid_client`, …),
    /// `Transient` when it cannot be reached or answers 5xx.
    pub async fn bearer(&self) -> Result<String, AwsError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(current.token.clone());
        }
        let mut request = self.client.exchange_client_credentials();
        if let Some(scope) = &self.scope {
            request = request.add_scopes(scope.split_whitespace().map(|s| Scope::new(s.to_string())));
        }
        // The future owns its client (a clone shares the pool): a borrowed one would not be `Send`
        // for every lifetime oauth2's trait asks of it.
        let client = self.http.clone();
        let http = move |request: oauth2::HttpRequest| {
            let client = client.clone();
            async move { send(&client, request).await }
        };
        let answer = request.request_async(&http).await.map_err(token_error).inspect_err(|e| crate::metrics::auth_failed(e.code.as_deref().unwrap_or("token endpoint unreachable or not OAuth2")))?;
        let lifetime = answer.expires_in().unwrap_or(DEFAULT_LIFETIME);
        let token = answer.access_token().secret().clone();
        *cached = Some(Cached { token: token.clone(), renew_at: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2)) });
        tracing::info!(expires_in_s = lifetime.as_secs(), "model-manage token obtained");
        Ok(token)
    }

    /// Drops `token` from the cache (model-manage answered 401 to it), unless a newer one
    /// replaced it already.
    pub async fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }
}

/// An error the token request's transport gives `oauth2`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// oauth2's request through reqwest.
async fn send(http: &reqwest::Client, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, TransportError> {
    let request = reqwest::Request::try_from(request).map_err(|e| TransportError(e.to_string()))?;
    let response = http.execute(request).await.map_err(|e| TransportError(transport_message(&e)))?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await.map_err(|e| TransportError(transport_message(&e)))?;
    builder.body(body.to_vec()).map_err(|e| TransportError(e.to_string()))
}

/// A reqwest error with its causes (reqwest's own `Display` hides why a connection failed).
pub(crate) fn transport_message(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

fn token_error(err: oauth2::RequestTokenError<TransportError, oauth2::basic::BasicErrorResponse>) -> AwsError {
    use oauth2::RequestTokenError as E;
    let (kind, code, message) = match &err {
        // The identity provider's RFC 6749 §5.2 error: the client, grant or scope is refused.
        E::ServerResponse(response) => (AwsErrorKind::Permanent, Some(response.error().to_string()), response.to_string()),
        E::Request(transport) => (AwsErrorKind::Transient, None, transport.to_string()),
        // Not an RFC answer: a gateway's 5xx page, or a proxy's. Worth another try later.
        E::Parse(_, body) => (AwsErrorKind::Transient, None, format!("the token endpoint's answer is not an OAuth2 token: {}", crate::text::printable(&String::from_utf8_lossy(&body[..body.len().min(200)])))),
        E::Other(message) => (AwsErrorKind::Transient, None, message.clone()),
    };
    AwsError { service: SERVICE, operation: "token", kind, code, message: format!("OAuth2 client credentials: {message}") }
}
