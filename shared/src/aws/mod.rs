//! Adapters: one module per AWS service, each implementing a port of [`crate::ports`], plus the
//! error type they share and the decision of which SDK errors are worth a retry.

pub mod clients;
pub mod dynamodb;
pub mod emr;
pub mod logs;
pub mod s3;

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How a caller should treat a failed AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Throttling, 5xx, timeouts, connection failures: retrying later may succeed.
    Transient,
    /// The resource does not exist.
    NotFound,
    /// A DynamoDB condition, or an S3 precondition (`If-None-Match`), did not hold.
    ConditionFailed,
    /// Validation, access denied and the like: retrying will not help.
    Permanent,
}

/// A failed AWS call: which service and operation, its kind, and the service's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} failed: {message}")]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new(service: &'static str, operation: &'static str, kind: AwsErrorKind, message: impl Into<String>) -> Self {
        AwsError { service, operation, kind, code: None, message: message.into() }
    }

    pub fn is(&self, kind: AwsErrorKind) -> bool {
        self.kind == kind
    }
}

const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionConflictException",
    // EMR Serverless: the application is changing state, or a concurrency quota is full for now.
    "ConflictException",
    "ServiceQuotaExceededException",
];

const NOT_FOUND_CODES: &[&str] = &["ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "NotFound"];

/// Maps an SDK error (after the SDK's own retries) to an [`AwsError`].
pub fn classify<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, code, message) = match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().map(str::to_string);
            let message = ctx.err().message().unwrap_or("no message").to_string();
            let kind = match code.as_deref() {
                // DynamoDB's condition, and S3's `If-None-Match: *` on an object that exists.
                Some("ConditionalCheckFailedException" | "PreconditionFailed") => AwsErrorKind::ConditionFailed,
                Some(c) if TRANSIENT_CODES.contains(&c) => AwsErrorKind::Transient,
                Some(c) if NOT_FOUND_CODES.contains(&c) => AwsErrorKind::NotFound,
                _ if status == 404 => AwsErrorKind::NotFound,
                _ if status == 429 || status >= 500 => AwsErrorKind::Transient,
                _ => AwsErrorKind::Permanent,
            };
            let shown = match &code {
                Some(c) => format!("{c}: {message}"),
                None => format!("HTTP {status}: {message}"),
            };
            (kind, code, shown)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (AwsErrorKind::Transient, None, DisplayErrorContext(&err).to_string())
        }
        _ => (AwsErrorKind::Permanent, None, DisplayErrorContext(&err).to_string()),
    };
    AwsError { service, operation, kind, code, message }
}

impl fmt::Display for AwsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            AwsErrorKind::Transient => "transient",
            AwsErrorKind::NotFound => "not found",
            AwsErrorKind::ConditionFailed => "condition failed",
            AwsErrorKind::Permanent => "permanent",
        };
        f.write_str(text)
    }
}
