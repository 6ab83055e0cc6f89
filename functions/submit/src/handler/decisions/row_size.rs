//! Rows near DynamoDB's 400 KB item limit (ModelOp puts FILE contents and inline sources on the
//! job): the fake table refuses what DynamoDB refuses, and submit records what fits, or ends the
//! job in ERROR naming the limit, never retrying a write that cannot fit.

use shared::fakes::metrics::EmittedMetrics;
use shared::job::item_size::{json_item_size, MAX_ITEM_BYTES, SERVICE_ROOM_BYTES};

use super::*;

const NEIGHBOUR: &str = "5a5a5a5a-1111-4222-8333-944444444444";

/// `row` with a `padding` attribute that makes it exactly `bytes` as a DynamoDB item.
fn padded(mut row: Value, bytes: usize) -> Value {
    row["padding"] = json!("");
    let without = json_item_size(&row).unwrap();
    row["padding"] = json!("p".repeat(bytes - without));
    assert_eq!(json_item_size(&row), Some(bytes));
    row
}

/// The batch job's row as the table holds it, padded to `bytes`, while the stream's image stays
/// the small one it was inserted as (ModelOp grew the row after the insert).
fn world_with_row_of(bytes: usize) -> (World, Value) {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.aws.jobs.put(padded(row_from_image(&event["Records"][0]["dynamodb"]["NewImage"]), bytes));
    (world, event)
}

fn assert_not_retried_and_no_lease(world: &World, failures: Vec<String>) -> Value {
    assert_eq!(failures, Vec::<String>::new(), "a write that cannot fit is never retried");
    let row = world.row(BATCH_JOB);
    assert!(row.get("submitLease").is_none(), "{}", without_padding(&row));
    assert!(json_item_size(&row).unwrap() <= MAX_ITEM_BYTES);
    row
}

fn without_padding(row: &Value) -> Value {
    let mut row = row.clone();
    row.as_object_mut().unwrap().remove("padding");
    row
}

#[tokio::test]
async fn a_row_without_room_for_the_service_ends_in_error_naming_the_limit_and_the_batch_goes_on() {
    let world = world();
    let mut event = event(INSERT_BATCH_JOB);
    let mut neighbour = event["Records"][0].clone();
    neighbour["dynamodb"]["Keys"]["id"]["S"] = json!(NEIGHBOUR);
    neighbour["dynamodb"]["NewImage"]["id"]["S"] = json!(NEIGHBOUR);
    neighbour["dynamodb"]["SequenceNumber"] = json!("400000000000000500002");
    // Inline content as ModelOp writes it, leaving less than the service's room below 400 KB.
    let image = &mut event["Records"][0]["dynamodb"]["NewImage"];
    let bytes = MAX_ITEM_BYTES - SERVICE_ROOM_BYTES + 1;
    let padding = bytes - json_item_size(&row_from_image(image)).unwrap() - "padding".len();
    image["padding"] = json!({ "S": "p".repeat(padding) });
    event["Records"].as_array_mut().unwrap().push(neighbour);
    world.insert_rows_of(&event);

    let row = assert_not_retried_and_no_lease(&world, world.deliver(&event).await);
    assert_eq!(row["jobStatus"], "ERROR", "{}", without_padding(&row));
    let message = row["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {BATCH_JOB}: validate job: the job row is {bytes} bytes as a DynamoDB item")), "{message}");
    assert!(message.contains("at most 409600 bytes (400 KB)") && message.contains("fileUrl"), "{message}");
    assert_eq!(row["failure"]["class"], "INVALID_JOB");
    assert!(world.staged_keys(BATCH_JOB).is_empty(), "nothing staged");
    assert!(world.aws.emr.started().iter().all(|(_, run)| run.manifest.as_ref().unwrap().run_name != BATCH_JOB), "no run");
    let neighbour = world.row(NEIGHBOUR);
    assert_eq!((neighbour["jobStatus"].as_str(), neighbour["sparkApplicationId"].as_str()), (Some("WAITING"), Some("run-1")), "the other job launched");
}

#[tokio::test]
async fn a_claim_the_row_cannot_take_ends_the_job_in_error_without_a_retry() {
    let emitted = EmittedMetrics::capture();
    // Room for an ERROR status but not for the claim's lease and history.
    let (world, event) = world_with_row_of(MAX_ITEM_BYTES - 100);
    let row = assert_not_retried_and_no_lease(&world, world.deliver(&event).await);
    assert_eq!(row["jobStatus"], "ERROR", "{}", without_padding(&row));
    assert_eq!(without_padding(&row)["model"], row_from_image(&event["Records"][0]["dynamodb"]["NewImage"])["model"], "ModelOp's fields are kept");
    assert!(world.aws.emr.started().is_empty() && world.staged_keys(BATCH_JOB).is_empty(), "no run, nothing staged");
    let details: Vec<String> = world.aws.jobs.recorder.args_of("fail_before_launch").into_iter().map(|args| args[1].clone()).collect();
    assert_eq!(details, ["Full", "Short", "Core"], "the ERROR is written smaller until it fits");
    let counted: Vec<(String, String)> =
        emitted.with_metric("RowsTooLarge").iter().map(|e| (e.values["Write"].clone(), e.values["Outcome"].clone())).collect();
    assert_eq!(counted, [("claim".to_string(), "EndedInError".to_string()), ("end in error".to_string(), "Shortened".to_string())]);
}

/// An ERROR that fits is written whole, its message too however long (the short form's 1 KiB
/// cut is only for a row without room), and counts in no `RowsTooLarge`; a write of the ERROR
/// that fails for another reason (throttled) retries the record rather than writing less.
#[tokio::test]
async fn an_error_that_fits_is_written_whole_and_a_throttled_one_is_retried_not_shortened() {
    for throttled in [false, true] {
        let emitted = EmittedMetrics::capture();
        let world = world();
        let event = event(INSERT_BATCH_JOB);
        world.insert_rows_of(&event);
        let denied = AwsError::new("EMR Serverless", "StartJobRun", AwsErrorKind::Permanent, format!("AccessDeniedException: {}", "not allowed; ".repeat(200)));
        world.aws.emr.fail_next("start_job_run", denied);
        if throttled {
            world.aws.jobs.fail_next("fail_before_launch", shared::fakes::recorder::transient("UpdateItem"));
        }
        let failures = world.deliver(&event).await;
        let details: Vec<String> = world.aws.jobs.recorder.args_of("fail_before_launch").into_iter().map(|args| args[1].clone()).collect();
        assert_eq!(details, ["Full"], "throttled: {throttled}");
        if throttled {
            assert_eq!(failures.len(), 1, "the record is retried");
            assert_ne!(world.row(BATCH_JOB)["jobStatus"], "ERROR");
        } else {
            assert!(failures.is_empty());
            let message = world.row(BATCH_JOB)["errorMessage"].as_str().unwrap().to_string();
            assert!(message.len() > 2_400 && message.ends_with("not allowed; "), "{} bytes: {message:.120}", message.len());
        }
        assert!(emitted.with_metric("RowsTooLarge").is_empty(), "throttled: {throttled}");
    }
}

#[tokio::test]
async fn a_claim_refused_for_size_with_room_for_the_reason_names_the_limit_and_the_row_size() {
    // The claim's write is refused as DynamoDB refuses it (the row grew meanwhile); the row has
    // room for the ERROR.
    let (world, event) = world_with_row_of(MAX_ITEM_BYTES - 4_000);
    let too_large = AwsError::new("DynamoDB", "UpdateItem(claim)", AwsErrorKind::ItemTooLarge, "ValidationException: Item size to update has exceeded the maximum allowed size (DynamoDB holds at most 409600 bytes, 400 KB, per item)");
    world.aws.jobs.fail_next("claim_created", too_large);
    let row = assert_not_retried_and_no_lease(&world, world.deliver(&event).await);
    assert_eq!(row["jobStatus"], "ERROR");
    let message = row["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {BATCH_JOB}: claim job: the job row (")), "{message}");
    assert!(message.contains("bytes as inserted) cannot take the claim") && message.contains("409600 bytes, 400 KB"), "{message}");
    assert_eq!(row["failure"]["class"], "INVALID_JOB", "{:#}", row["failure"]);
}

#[tokio::test]
async fn a_launch_the_row_cannot_hold_whole_is_recorded_short() {
    let emitted = EmittedMetrics::capture();
    // Room for the claim and the run's ids, not for the policy's text and every message.
    let (world, event) = world_with_row_of(MAX_ITEM_BYTES - 1_800);
    let row = assert_not_retried_and_no_lease(&world, world.deliver(&event).await);
    assert_eq!((row["jobStatus"].as_str(), row["sparkApplicationId"].as_str(), row["emrApplicationId"].as_str()), (Some("WAITING"), Some("run-1"), Some("app-1")));
    assert_eq!(row["stagingUri"], format!("s3://{BUCKET}/modelop-spark-serverless/{BATCH_JOB}/"));
    let permissions = &row["jobPermissions"];
    assert!(permissions["policySha256"].is_string() && permissions.get("policy").is_none(), "{permissions:#}");
    let messages = row["jobMessages"].as_array().unwrap();
    assert!(messages.last().unwrap().as_str().unwrap().contains("recorded short, the job row being near DynamoDB's 400 KB item limit"), "{messages:?}");
    assert!(world.aws.emr.recorder.args_of("cancel_job_run").is_empty(), "the run goes on");
    let counted: Vec<(String, String)> =
        emitted.with_metric("RowsTooLarge").iter().map(|e| (e.values["Write"].clone(), e.values["Outcome"].clone())).collect();
    assert_eq!(counted, [("record launch".to_string(), "Shortened".to_string())]);
}

#[tokio::test]
async fn a_launch_the_row_cannot_hold_at_all_cancels_the_run_and_ends_the_job_in_error() {
    // Room for the claim, not for the run's ids.
    let (world, event) = world_with_row_of(MAX_ITEM_BYTES - 300);
    let row = assert_not_retried_and_no_lease(&world, world.deliver(&event).await);
    assert_eq!(world.aws.emr.recorder.args_of("cancel_job_run"), [vec!["app-1".to_string(), "run-1".into(), "0".into()]]);
    assert_eq!(row["jobStatus"], "ERROR", "{}", without_padding(&row));
    assert!(row.get("sparkApplicationId").is_none());
    assert_eq!(world.aws.emr.started().len(), 1, "one run, cancelled");
    assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "a redelivery changes nothing");
    assert_eq!(world.aws.emr.started().len(), 1);
}

#[tokio::test]
async fn a_launch_recorded_on_a_row_with_room_but_not_for_an_error_message_names_the_limit() {
    // The record at every level refused (a row another writer keeps full), the ERROR fits.
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    let too_large = || AwsError::new("DynamoDB", "UpdateItem(record launch)", AwsErrorKind::ItemTooLarge, "ValidationException: Item size to update has exceeded the maximum allowed size (DynamoDB holds at most 409600 bytes, 400 KB, per item)");
    for _ in 0..3 {
        world.aws.jobs.fail_next("record_launch", too_large());
    }
    let row = assert_not_retried_and_no_lease(&world, world.deliver(&event).await);
    assert_eq!(row["jobStatus"], "ERROR");
    let message = row["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {BATCH_JOB}: record job run: EMR Serverless job run run-1 could not be recorded on the job row, so it was cancelled")), "{message}");
    assert!(message.contains("409600 bytes, 400 KB"), "{message}");
    assert_eq!(world.aws.emr.run("run-1").unwrap().info.state, "CANCELLING");
}
