//! DynamoDB stream batches, as the submit and cleanup functions take them: records decoded one by
//! one (a malformed record is logged and skipped, never retried), handled concurrently with a
//! bound, and the earliest transient failure reported so Lambda retries the shard from there.

use std::cmp::Ordering;
use std::future::Future;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};
use serde_json::Value;
use tracing::error;

use crate::job::record::JobHeader;

/// The fields of an image that decide whether a record concerns us, decoded from copies of those
/// few attributes only (an image may hold a large inline model source).
pub fn image_header(image: &serde_dynamo::Item) -> Result<JobHeader, serde_dynamo::Error> {
    let mut fields: std::collections::HashMap<String, serde_dynamo::AttributeValue> = ["id", "jobStatus", "runtimeType"]
        .into_iter()
        .filter_map(|name| image.get(name).map(|value| (name.to_string(), value.clone())))
        .collect();
    // Of `targetEngine`, only `engineType` (ModelOp's engine documents carry much more).
    if let Some(serde_dynamo::AttributeValue::M(engine)) = image.get("targetEngine") {
        let engine_type = engine.get("engineType").cloned().into_iter().map(|v| ("engineType".to_string(), v)).collect();
        fields.insert("targetEngine".into(), serde_dynamo::AttributeValue::M(engine_type));
    }
    serde_dynamo::from_item(serde_dynamo::Item::from(fields))
}

/// Whether a record's failure is worth a retry of the shard from that record.
pub trait Retryable {
    fn is_transient(&self) -> bool;
}

/// Runs `handle` on every record of a stream batch, at most `max_concurrency` at once, and
/// answers with the earliest transiently failed record as the batch item failure. A payload that
/// is not a stream batch is logged and acknowledged. Each record is handed over by value and
/// dropped once handled, so the batch is not held twice (a record may carry a large image).
pub async fn handle_stream_batch<F, Fut, T, E>(payload: Value, max_concurrency: usize, handle: F) -> DynamoDbEventResponse
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Retryable,
{
    let records = match payload {
        Value::Object(mut fields) => match fields.remove("Records") {
            Some(Value::Array(records)) => records,
            _ => not_a_batch(),
        },
        _ => not_a_batch(),
    };
    let failed: Vec<Option<String>> = stream::iter(records)
        .map(|raw| {
            let sequence = raw.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).map(str::to_string);
            let handled = handle(raw);
            async move {
                let retry = handled.await.err().is_some_and(|e| e.is_transient());
                sequence.filter(|_| retry)
            }
        })
        .buffer_unordered(max_concurrency)
        .collect()
        .await;
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = earliest_sequence_number(failed.iter().flatten().map(String::as_str)) {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence.to_string());
        response.batch_item_failures.push(failure);
    }
    response
}

fn not_a_batch() -> Vec<Value> {
    error!("event is not a DynamoDB stream batch (no Records array); acknowledged without processing");
    Vec::new()
}

/// Decodes one stream record; a record that is not one is logged with its event id and `Err`
/// carries the reason, so the caller skips it. The record's strings move into the result.
pub fn decode_record(raw: Value) -> Result<EventRecord, String> {
    let event_id = raw.get("eventID").and_then(Value::as_str).unwrap_or("unknown").to_string();
    serde_json::from_value(raw).map_err(|e| {
        error!(event_id, error = %e, "malformed stream record skipped");
        format!("malformed record: {e}")
    })
}

/// Stream sequence numbers are decimal strings of varying length.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The earliest of the failed records' sequence numbers: Lambda retries the shard from there, so
/// reporting a later one would skip the earlier failure.
pub fn earliest_sequence_number<'a>(failed: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    failed.into_iter().min_by(|a, b| compare_sequence_numbers(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_image_header_reads_only_whose_the_row_is_and_where_it_stands() {
        let image: serde_dynamo::Item = serde_dynamo::to_item(json!({
            "id": "job-1",
            "jobStatus": "WAITING",
            "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "x"},
            "sparkApplicationId": "run-1",
        }))
        .unwrap();
        let header = image_header(&image).unwrap();
        assert_eq!((header.id.as_deref(), header.status(), header.is_ours()), (Some("job-1"), Some(crate::job::record::JobStatus::Waiting), true));
        assert_eq!(header.spark_application_id, None, "only id, jobStatus, runtimeType and targetEngine.engineType are read");
        let theirs: serde_dynamo::Item = serde_dynamo::to_item(json!({"id": "job-2", "runtimeType": "OTHER", "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME"}})).unwrap();
        assert!(image_header(&theirs).unwrap().is_ours(), "either field makes the row ours");
        let other: serde_dynamo::Item = serde_dynamo::to_item(json!({"id": "job-3", "runtimeType": "OTHER", "targetEngine": {"name": "SPARK_SERVERLESS_RUNTIME"}})).unwrap();
        assert!(!image_header(&other).unwrap().is_ours());
    }

    #[test]
    fn a_record_that_is_not_one_is_skipped_with_the_reason() {
        assert!(decode_record(json!({"eventID": "e-1", "eventName": 7})).unwrap_err().starts_with("malformed record: "));
        let batch: Value = serde_json::from_str(include_str!("../../events/submit/modify-not-insert.json")).unwrap();
        let decoded = decode_record(batch["Records"][0].clone()).unwrap();
        assert_eq!(decoded.event_name, "MODIFY");
    }

    #[test]
    fn the_earliest_failure_is_numeric_order() {
        let cases: [(&[&str], Option<&str>); 4] = [
            (&["10", "9"], Some("9")),
            (&["400000000000000500002", "400000000000000500001"], Some("400000000000000500001")),
            (&["200"], Some("200")),
            (&[], None),
        ];
        for (failed, expected) in cases {
            assert_eq!(earliest_sequence_number(failed.iter().copied()), expected, "{failed:?}");
        }
    }
}
