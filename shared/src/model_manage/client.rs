//! model-manage over HTTP: Spring Data REST's jobs collection under `<gateway>/model-manage/api/`
//! with `Authorization: Bearer`. A 401 drops the token and is sent once more with a new one; a
//! 5xx, a 429 or a failed connection is tried [`ATTEMPTS`] times in all, with a short backoff,
//! before it is answered as a transient error; each request has a [`REQUEST_TIMEOUT`].
//!
//! Paths: `jobs/search` (the finders), `jobs/search/<finder>?<status param>=&<engine param>=&page=&size=&sort=createdDate,asc`,
//! and `MODELOP_JOB_ITEM_PATH` (default `jobs/{id}`) for GET and PATCH of one job (assumed:
//! Spring Data REST's item resource of the `jobs` collection; model-manage's own path for one job
//! is not public).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

use super::token::{transport_message, TokenSource};
use super::SERVICE;
use crate::config::JobItemPath;
use crate::error::{AwsError, AwsErrorKind};
use crate::job::record::JobStatus;
use crate::bridge::hal::{parse_finders, parse_page, Finder, FinderQuery, JobPage};
use crate::bridge::ports::{ModelManage, PatchOutcome, RemoteJob};

/// Tries of one request when model-manage is down or slow (the stream's own retries and the
/// next poll come after these).
pub const ATTEMPTS: u32 = 3;
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF: Duration = Duration::from_millis(200);

/// The HTTP client every bridge request goes through: rustls, the timeout, no redirects to
/// other hosts' token-carrying requests (reqwest drops `Authorization` on a cross-host redirect).
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("modelop-spark-serverless-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| transport_message(&e))
}

/// model-manage's jobs.
pub struct ModelManageClient {
    http: reqwest::Client,
    api_base: url::Url,
    item_path: JobItemPath,
    tokens: TokenSource,
}

/// An answer: status, `ETag`, body.
struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

impl ModelManageClient {
    /// `api_base`: `<gateway>/model-manage/api/` ([`crate::config::BridgeConfig::api_base`]);
    /// `item_path`: where one job is under it ([`crate::config::BridgeConfig::job_item_path`]).
    pub fn new(http: reqwest::Client, api_base: url::Url, item_path: JobItemPath, tokens: TokenSource) -> Self {
        ModelManageClient { http, api_base, item_path, tokens }
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut().expect("an http(s) base").pop_if_empty().extend(segments);
        url
    }

    /// Sends one request with the bearer token, refreshing it once on 401 and trying again on
    /// transient failures. Answers every status it got after that; `Err` for what it could not send.
    async fn send(&self, operation: &'static str, method: Method, url: url::Url, body: Option<&Value>, if_match: Option<&str>) -> Result<Answer, AwsError> {
        let mut refreshed = false;
        let mut attempt = 1;
        loop {
            let token = self.tokens.bearer().await?;
            let mut request = self.http.request(method.clone(), url.clone()).bearer_auth(&token).header("Accept", "application/hal+json, application/json");
            if let Some(body) = body {
                request = request.header("Content-Type", "application/json").body(body.to_string());
            }
            if let Some(tag) = if_match {
                request = request.header("If-Match", tag);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let etag = response.headers().get("ETag").and_then(|v| v.to_str().ok()).map(str::to_string);
                    match response.bytes().await {
                        Ok(bytes) => Ok(Answer { status, etag, body: bytes.to_vec() }),
                        Err(e) => Err(transport_message(&e)),
                    }
                }
                Err(e) => Err(transport_message(&e)),
            };
            match &outcome {
                Ok(answer) if counts_as_error(answer.status) => crate::metrics::model_manage_error(operation, answer.status.as_u16().to_string()),
                Ok(_) => {}
                Err(_) => crate::metrics::model_manage_error(operation, "connection".into()),
            }
            if matches!(&outcome, Ok(answer) if answer.status == StatusCode::UNAUTHORIZED && refreshed) {
                crate::metrics::auth_failed("model-manage refused a new token");
            }
            let retry_after = match outcome {
                Ok(answer) if answer.status == StatusCode::UNAUTHORIZED && !refreshed => {
                    tracing::warn!(operation, "model-manage answered 401; asking for a new token");
                    self.tokens.invalidate(&token).await;
                    refreshed = true;
                    continue;
                }
                Ok(answer) if is_transient(answer.status) && attempt < ATTEMPTS => format!("HTTP {}", answer.status.as_u16()),
                Ok(answer) => return Ok(answer),
                Err(message) if attempt < ATTEMPTS => message,
                Err(message) => return Err(AwsError::new(SERVICE, operation, AwsErrorKind::Transient, message)),
            };
            tracing::warn!(operation, attempt, error = %retry_after, "model-manage request failed; trying again");
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
            attempt += 1;
        }
    }

    /// A JSON answer of a 2xx, else the error its status means.
    fn json(operation: &'static str, answer: Answer) -> Result<Value, AwsError> {
        if !answer.status.is_success() {
            return Err(status_error(operation, &answer));
        }
        serde_json::from_slice(&answer.body).map_err(|e| AwsError::new(SERVICE, operation, AwsErrorKind::Permanent, format!("the answer is not JSON: {e}")))
    }
}

/// Whether an answer counts in `ModelManageErrors`: every error status but the ones the bridge
/// expects (404 a deleted job, 409/412 a lost race).
fn counts_as_error(status: StatusCode) -> bool {
    (status.is_client_error() || status.is_server_error()) && !matches!(status.as_u16(), 404 | 409 | 412)
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}

/// The error an answer's status means: 5xx/429/408 transient, 404 not found, 409/412 a condition
/// that failed, the rest (401 after a new token, 403, 400) permanent. The code is `HTTP <status>`.
fn status_error(operation: &'static str, answer: &Answer) -> AwsError {
    let status = answer.status;
    let kind = match status.as_u16() {
        404 => AwsErrorKind::NotFound,
        409 | 412 => AwsErrorKind::ConditionFailed,
        _ if is_transient(status) => AwsErrorKind::Transient,
        _ => AwsErrorKind::Permanent,
    };
    let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]);
    let code = format!("HTTP {}", status.as_u16());
    AwsError { service: SERVICE, operation, kind, message: format!("{code}: {}", crate::text::printable(body.trim())), code: Some(code) }
}

#[async_trait]
impl ModelManage for ModelManageClient {
    async fn list_finders(&self) -> Result<Vec<Finder>, AwsError> {
        let answer = self.send("list finders", Method::GET, self.url(&["jobs", "search"]), None, None).await?;
        Ok(parse_finders(&Self::json("list finders", answer)?))
    }

    async fn find_jobs(&self, finder: &FinderQuery, status: JobStatus, engine_type: &str, page: u64, size: usize) -> Result<JobPage, AwsError> {
        let mut url = self.url(&["jobs", "search", &finder.name]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(&finder.status_param, status.as_str());
            if let Some(engine) = &finder.engine_param {
                query.append_pair(engine, engine_type);
            }
            query.append_pair("page", &page.to_string()).append_pair("size", &size.to_string()).append_pair("sort", "createdDate,asc");
        }
        let answer = self.send("find jobs", Method::GET, url, None, None).await?;
        parse_page(&Self::json("find jobs", answer)?).map_err(|e| AwsError::new(SERVICE, "find jobs", AwsErrorKind::Permanent, format!("not a page of jobs: {e}")))
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<RemoteJob>, AwsError> {
        let answer = self.send("get job", Method::GET, self.url(&self.item_path.for_job(job_id)), None, None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let etag = answer.etag.clone();
        Ok(Some(RemoteJob { document: Self::json("get job", answer)?, etag }))
    }

    async fn patch_job(&self, job_id: &str, patch: &Map<String, Value>, if_match: Option<&str>) -> Result<PatchOutcome, AwsError> {
        let body = Value::Object(patch.clone());
        let answer = self.send("patch job", Method::PATCH, self.url(&self.item_path.for_job(job_id)), Some(&body), if_match).await?;
        match answer.status.as_u16() {
            200..=299 => Ok(PatchOutcome::Patched { etag: answer.etag }),
            409 | 412 => Ok(PatchOutcome::Conflict),
            404 => Ok(PatchOutcome::Missing),
            _ => Err(status_error("patch job", &answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let answer = |status: u16| Answer { status: StatusCode::from_u16(status).unwrap(), etag: None, body: b"{\"message\":\"no\"}".to_vec() };
        let cases = [(503, AwsErrorKind::Transient), (429, AwsErrorKind::Transient), (404, AwsErrorKind::NotFound), (412, AwsErrorKind::ConditionFailed), (401, AwsErrorKind::Permanent), (400, AwsErrorKind::Permanent)];
        for (status, kind) in cases {
            let err = status_error("get job", &answer(status));
            assert_eq!((err.kind, err.code.as_deref()), (kind, Some(format!("HTTP {status}").as_str())), "{status}");
            assert_eq!(err.to_string(), format!("model-manage get job failed: HTTP {status}: {{\"message\":\"no\"}}"));
        }
    }
}
