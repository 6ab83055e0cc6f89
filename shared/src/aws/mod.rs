//! Adapters: one module per AWS service, each implementing a port of [`crate::ports`], plus the
//! error type they share and the decision of which SDK errors are worth a retry.

#[cfg(test)]
mod canned_http;
pub mod clients;
pub mod dynamodb;
pub mod emr;
pub mod logs;
pub mod names;
pub mod s3;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use crate::error::{AwsError, AwsErrorKind};

/// The codes the SDK itself retries as throttling (`THROTTLING_ERRORS` in aws-runtime
/// 1.10.2, `src/retries/classifiers.rs`). A test checks that the SDK's list is contained here.
const SDK_THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// The SDK's own transient codes (`TRANSIENT_ERRORS`, same file).
const SDK_TRANSIENT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Transient here although the SDK does not retry them by code (it retries by HTTP status, which
/// these usually carry, but a service may send them with another).
const SERVICE_TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    // DynamoDB: another transaction holds the item.
    "TransactionConflictException",
    // EMR Serverless: the application is changing state, or a concurrency quota is full for now.
    "ConflictException",
    "ServiceQuotaExceededException",
    // S3 (HTTP 409): a conditional write (`If-None-Match`, `If-Match`) met a conflicting operation on the key. The
    // PutObject and CopyObject references: "On a 409 failure you should retry the upload."
    "ConditionalRequestConflict",
];

const NOT_FOUND_CODES: &[&str] = &["ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "NotFound"];

/// What DynamoDB's `ValidationException` says when a write would pass the 400 KB item limit:
/// "Item size has exceeded the maximum allowed size" (PutItem, BatchWriteItem) and "Item size to
/// update has exceeded the maximum allowed size" (UpdateItem); moto 5 sends the same texts.
const ITEM_SIZE_EXCEEDED: &str = "exceeded the maximum allowed size";

/// Whether a `ValidationException`'s message is DynamoDB's item size refusal.
fn is_item_size_refusal(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.starts_with("item size") && message.contains(ITEM_SIZE_EXCEEDED)
}

/// The kind of a service's error response, by its error code (and, for DynamoDB's item size
/// refusal, its message), then its HTTP status.
fn kind_of_response(code: Option<&str>, message: &str, status: u16) -> AwsErrorKind {
    let is_transient_code = |c: &str| [SDK_THROTTLING_CODES, SDK_TRANSIENT_CODES, SERVICE_TRANSIENT_CODES].iter().any(|codes| codes.contains(&c));
    match code {
        // DynamoDB's condition, and S3's `If-None-Match: *` on an object that exists.
        Some("ConditionalCheckFailedException" | "PreconditionFailed") => AwsErrorKind::ConditionFailed,
        // A write that can never fit as it is: not transient, whatever the status says.
        Some("ValidationException") if is_item_size_refusal(message) => AwsErrorKind::ItemTooLarge,
        Some(c) if is_transient_code(c) => AwsErrorKind::Transient,
        Some(c) if NOT_FOUND_CODES.contains(&c) => AwsErrorKind::NotFound,
        _ if status == 404 => AwsErrorKind::NotFound,
        _ if status == 429 || status >= 500 => AwsErrorKind::Transient,
        _ => AwsErrorKind::Permanent,
    }
}

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
            let kind = kind_of_response(code.as_deref(), &message, status);
            let shown = match &code {
                // DynamoDB's words do not name the limit; the message does, wherever it is written.
                Some(c) if kind == AwsErrorKind::ItemTooLarge => {
                    format!("{c}: {message} (DynamoDB holds at most {} bytes, 400 KB, per item)", crate::job::item_size::MAX_ITEM_BYTES)
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_classified_by_code_then_status() {
        use AwsErrorKind::*;
        let cases = [
            // The four codes the SDK retries that this list once lacked.
            (Some("LimitExceededException"), 400, Transient),
            (Some("TransactionInProgressException"), 400, Transient),
            (Some("BandwidthLimitExceeded"), 400, Transient),
            (Some("PriorRequestNotComplete"), 400, Transient),
            (Some("ThrottlingException"), 400, Transient),
            (Some("SlowDown"), 503, Transient),
            (Some("RequestTimeout"), 400, Transient),
            (Some("ProvisionedThroughputExceededException"), 400, Transient),
            (Some("TransactionConflictException"), 400, Transient),
            (Some("ConflictException"), 409, Transient),
            (Some("ServiceQuotaExceededException"), 402, Transient),
            // S3's conditional write lost a race with another operation on the key (HTTP 409).
            (Some("ConditionalRequestConflict"), 409, Transient),
            (Some("InternalServerException"), 400, Transient),
            (Some("ConditionalCheckFailedException"), 400, ConditionFailed),
            (Some("PreconditionFailed"), 412, ConditionFailed),
            (Some("ResourceNotFoundException"), 400, NotFound),
            (Some("NoSuchKey"), 404, NotFound),
            (Some("ValidationException"), 400, Permanent),
            (Some("AccessDeniedException"), 403, Permanent),
            (Some("ValidationException"), 503, Transient),
            (Some("SomethingNew"), 404, NotFound),
            (None, 404, NotFound),
            (None, 429, Transient),
            (None, 500, Transient),
            (None, 400, Permanent),
        ];
        for (code, status, expected) in cases {
            assert_eq!(kind_of_response(code, "a message", status), expected, "{code:?} HTTP {status}");
        }
    }

    #[test]
    fn dynamodbs_item_size_refusal_is_its_own_kind_never_transient() {
        use AwsErrorKind::*;
        let cases = [
            // DynamoDB's (and moto's) texts for PutItem and UpdateItem.
            ("Item size has exceeded the maximum allowed size", 400, ItemTooLarge),
            ("Item size to update has exceeded the maximum allowed size", 400, ItemTooLarge),
            ("Item size to update has exceeded the maximum allowed size", 503, ItemTooLarge),
            // Other validation errors stay permanent; other codes keep their kind.
            ("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes", 400, Permanent),
            ("Invalid UpdateExpression: Syntax error", 400, Permanent),
        ];
        for (message, status, expected) in cases {
            assert_eq!(kind_of_response(Some("ValidationException"), message, status), expected, "{message} HTTP {status}");
        }
        assert_eq!(kind_of_response(Some("ThrottlingException"), "Item size has exceeded the maximum allowed size", 400), Transient);
    }

    #[test]
    fn every_code_the_sdk_retries_is_transient() {
        use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
        for code in THROTTLING_ERRORS.iter().chain(TRANSIENT_ERRORS) {
            assert_eq!(kind_of_response(Some(code), "", 400), AwsErrorKind::Transient, "{code} (the SDK retries it)");
        }
    }
}
