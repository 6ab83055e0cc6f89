//! A job row near DynamoDB's 400 KB item limit (ModelOp puts FILE contents and inline sources on
//! the job): the fake table refuses what DynamoDB refuses, and the final status is written with
//! what fits, never retried as a write that cannot fit.

use shared::fakes::metrics::EmittedMetrics;
use shared::job::item_size::{json_item_size, MAX_ITEM_BYTES};

use super::*;

/// The `Outcome` of each `RowsTooLarge` entry emitted so far.
fn rows_too_large(emitted: &EmittedMetrics) -> Vec<String> {
    emitted.with_metric("RowsTooLarge").iter().map(|e| e.values["Outcome"].clone()).collect()
}

/// The launched job, RUNNING, padded to `bytes` as a DynamoDB item.
fn running_row_of(bytes: usize) -> Value {
    let mut row = launched_row("RUNNING", "RUNNING");
    row["padding"] = json!("");
    row["padding"] = json!("p".repeat(bytes - json_item_size(&row).unwrap()));
    row
}

#[tokio::test]
async fn a_final_state_on_a_row_near_the_item_limit_is_written_as_the_bare_status() {
    let emitted = EmittedMetrics::capture();
    let world = world();
    // Room for the status, its history entry and times; not for a failure, messages or logs.
    world.aws.jobs.put(running_row_of(MAX_ITEM_BYTES - 400));
    let outcome = world.handler.handle_event(&event(STATE_FAILED)).await.expect("not a failed invocation");
    assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Error, .. }), "{outcome:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("ERROR"), Some("FAILED")));
    assert!(row.get("driverLogs").is_none() && row.get("failure").is_none(), "the report did not fit");
    assert!(json_item_size(&row).unwrap() <= MAX_ITEM_BYTES);
    assert_eq!(world.aws.jobs.recorder.args_of("apply_status").len(), 4, "whole, smaller, no report, bare");
    assert_eq!(rows_too_large(&emitted), ["Shortened"]);
}

/// The first smaller write keeps the last 2 KiB of the driver's stderr and the first 2 KiB of the
/// error message.
#[tokio::test]
async fn a_final_write_refused_once_keeps_two_kib_of_stderr_and_of_the_message() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let info = JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), name: Some(JOB.into()), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, info);
    let stderr: String = (0..12).map(|n| format!("line {n:02} {}\n", "x".repeat(400))).collect();
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stderr"), &stderr);
    let too_large = AwsError::new("DynamoDB", "UpdateItem", AwsErrorKind::ItemTooLarge, "ValidationException: Item size to update has exceeded the maximum allowed size");
    world.aws.jobs.fail_next("apply_status", too_large);
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    let (kept, message) = (row["driverLogs"]["stderr"].as_str().unwrap(), row["errorMessage"].as_str().unwrap());
    assert!((1_900..=2 * 1024).contains(&kept.len()) && stderr.ends_with(kept), "{} bytes of stderr", kept.len());
    assert!((1_900..=2 * 1024).contains(&message.len()), "{} bytes of message", message.len());
    assert_eq!(row["driverLogs"]["truncated"], true);
}

/// A final status that fits as it is counts in no `RowsTooLarge`.
#[tokio::test]
async fn a_final_status_that_fits_is_written_once_and_counts_nowhere() {
    let emitted = EmittedMetrics::capture();
    let world = world();
    world.aws.jobs.put(running_row_of(MAX_ITEM_BYTES / 2));
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    assert_eq!(world.aws.jobs.row(JOB).unwrap()["jobStatus"], "ERROR");
    assert_eq!(world.aws.jobs.recorder.args_of("apply_status").len(), 1);
    assert_eq!(rows_too_large(&emitted), Vec::<String>::new());
}

#[tokio::test]
async fn a_row_with_no_room_even_for_its_status_is_acknowledged_not_retried() {
    let emitted = EmittedMetrics::capture();
    let world = world();
    let row = running_row_of(MAX_ITEM_BYTES - 10);
    world.aws.jobs.put(row.clone());
    let outcome = world.handler.handle_event(&event(STATE_FAILED)).await.expect("a retry could not fit either: acknowledged");
    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome:?}");
    assert_eq!(world.aws.jobs.row(JOB).unwrap(), row, "the row stays as it was");
    assert_eq!(world.aws.jobs.recorder.args_of("apply_status").len(), 4, "whole, smaller, no report, bare: then no more");
    assert_eq!(rows_too_large(&emitted), ["Unrecorded"]);
}

#[tokio::test]
async fn a_stuck_job_whose_row_has_no_room_for_its_error_does_not_fail_the_sweep() {
    let world = world();
    let mut row = json!({
        "id": JOB, "jobType": "MODEL_BATCH_JOB", "jobStatus": "WAITING", "runtimeType": "SPARK_SERVERLESS_RUNTIME",
        "updatedAt": Timestamp(Utc::now() - Duration::hours(9)).to_string(), "padding": ""
    });
    row["padding"] = json!("p".repeat(MAX_ITEM_BYTES - 10 - json_item_size(&row).unwrap()));
    world.aws.jobs.put(row.clone());
    let outcome = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.expect("the sweep goes on");
    assert!(matches!(outcome, Outcome::Swept { ended_stuck: 0, .. }), "{outcome:?}");
    assert_eq!(world.aws.jobs.row(JOB).unwrap(), row);
}
