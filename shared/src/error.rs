//! The error model of the whole service, in two layers:
//!
//! - [`AwsError`]: what the ports (`crate::ports`) answer when a call fails, already sorted by
//!   [`AwsErrorKind`] (the adapters in `crate::aws` decide the kind from the SDK's error);
//! - [`JobError`]: a failed step of one job — which job, which step, what becomes of it
//!   ([`Disposition`]) and why, with the AWS error kept as its `source()`. Each function decides
//!   the disposition in one place, a table of its steps and of AWS error kinds (`disposition_of`
//!   in each handler), tested as a table.

use std::fmt;

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
    /// DynamoDB refused a write because the item would pass its 400 KB limit
    /// (`crate::job::item_size`). Permanent for that write (the same write can never fit, so it is
    /// never retried as it is); a smaller one may fit.
    ItemTooLarge,
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

impl fmt::Display for AwsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            AwsErrorKind::Transient => "transient",
            AwsErrorKind::NotFound => "not found",
            AwsErrorKind::ConditionFailed => "condition failed",
            AwsErrorKind::Permanent => "permanent",
            AwsErrorKind::ItemTooLarge => "item too large",
        };
        f.write_str(text)
    }
}

/// What becomes of a failure. Decided once per function, from the step and the AWS error kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Retrying later can help: the stream record is reported for retry, the EventBridge
    /// invocation fails (and is retried).
    Retry,
    /// Retrying cannot help: submit ends the job in ERROR with the message; cleanup and the sweeps
    /// log it and go on with the other records.
    Fail,
    /// Only part of a result is missing (a report part the monitor cannot read): left out with a
    /// warning, the rest goes on.
    LeaveOut,
}

/// A failed step of one job: `job <id>: <step>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job_id}: {step}: {message}")]
pub struct JobError<S: fmt::Display> {
    pub job_id: String,
    pub step: S,
    pub disposition: Disposition,
    pub message: String,
    #[source]
    pub source: Option<AwsError>,
}

impl<S: fmt::Display> JobError<S> {
    /// A failure with no AWS error behind it (a malformed job, a refused folder, ...).
    pub fn new(job_id: &str, step: S, disposition: Disposition, message: impl Into<String>) -> Self {
        JobError { job_id: crate::text::printable(job_id), step, disposition, message: message.into(), source: None }
    }

    /// A failed AWS call, with the disposition the function's policy gives it.
    pub fn aws(job_id: &str, step: S, disposition: Disposition, source: AwsError) -> Self {
        JobError { job_id: crate::text::printable(job_id), step, disposition, message: source.to_string(), source: Some(source) }
    }

    pub fn is_retryable(&self) -> bool {
        self.disposition == Disposition::Retry
    }
}

impl<S: fmt::Display> crate::stream::Retryable for JobError<S> {
    fn is_transient(&self) -> bool {
        self.is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::handle_stream_batch;
    use serde_json::{json, Value};

    #[test]
    fn a_job_error_names_job_step_and_cause_and_keeps_its_source() {
        let aws = AwsError::new("S3", "PutObject", AwsErrorKind::Transient, "SlowDown");
        let err = JobError::aws("job-7", "stage files", Disposition::Retry, aws.clone());
        assert_eq!(err.to_string(), "job job-7: stage files: S3 PutObject failed: SlowDown");
        assert!(err.is_retryable());
        let source = std::error::Error::source(&err).expect("source kept").to_string();
        assert_eq!(source, aws.to_string());
        let err = JobError::new("job\n7", "validate job", Disposition::Fail, "no primary source");
        assert_eq!(err.to_string(), "job job\n7: validate job: no primary source");
        assert!(!err.is_retryable() && std::error::Error::source(&err).is_none());
    }

    #[test]
    fn each_kind_of_aws_error_is_named_in_words() {
        use AwsErrorKind::*;
        let named: Vec<String> = [Transient, NotFound, ConditionFailed, Permanent, ItemTooLarge].iter().map(ToString::to_string).collect();
        assert_eq!(named, ["transient", "not found", "condition failed", "permanent", "item too large"]);
    }

    // A stream batch of job errors: each is retried as its disposition says.
    fn record(sequence: &str, outcome: &str) -> Value {
        json!({"eventID": format!("event-{sequence}"), "dynamodb": {"SequenceNumber": sequence}, "outcome": outcome})
    }

    /// The batch item failures reported, and how many records were handled.
    async fn failures(payload: Value) -> (Vec<Option<String>>, usize) {
        let handled = std::sync::atomic::AtomicUsize::new(0);
        // A job error is retried as its disposition says.
        let handle = |raw: Value| {
            handled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let failed = |disposition| JobError::new("job-1", "a step", disposition, "failed");
                match raw["outcome"].as_str() {
                    Some("transient") => Err(failed(Disposition::Retry)),
                    Some("permanent") => Err(failed(Disposition::Fail)),
                    Some("left out") => Err(failed(Disposition::LeaveOut)),
                    _ => Ok(()),
                }
            }
        };
        let response = handle_stream_batch(payload, 2, &handle).await;
        (response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(), handled.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_batch_reports_its_earliest_transient_failure_only() {
        // (records, the batch item failure reported)
        let cases = [
            (vec![record("10", "ok"), record("11", "ok")], vec![]),
            (vec![record("10", "permanent"), record("11", "left out")], vec![]),
            (vec![record("9", "permanent"), record("12", "transient"), record("100", "transient"), record("11", "ok")], vec![Some("12".to_string())]),
            (vec![record("100", "transient"), record("99", "transient")], vec![Some("99".to_string())]),
            (vec![json!({"eventID": "no-sequence", "outcome": "transient"})], vec![]),
        ];
        for (records, expected) in cases {
            assert_eq!(failures(json!({ "Records": records.clone() })).await, (expected, records.len()), "{records:?}");
        }
        for not_a_batch in [json!({"Records": {"a": 1}}), json!({"detail": {}}), json!([record("1", "transient")])] {
            assert_eq!(failures(not_a_batch.clone()).await, (vec![], 0), "{not_a_batch}: acknowledged, nothing handled");
        }
    }
}
