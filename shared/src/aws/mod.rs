//! Adapters: one module per AWS service, each implementing a port of [`crate::ports`], plus the
//! error type they share and the decision of which SDK errors are worth a retry.

pub mod clients;
pub mod dynamodb;
pub mod emr;
pub mod logs;
pub mod s3;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use crate::error::{AwsError, AwsErrorKind};

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

