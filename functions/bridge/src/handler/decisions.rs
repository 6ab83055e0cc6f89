//! The bridge's decisions against in-memory fakes of model-manage and the table: what is claimed,
//! which row is written, what ModelOp's job says afterwards, and what a stream record writes back.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};

use super::fakes::{FakeModelManage, FakeTable};
use super::*;
use shared::config::{BridgeConfig, Settings};
use shared::bridge::claim::claim_line;
use shared::fakes::metrics::EmittedMetrics;

fn config(extra: &[(&str, &str)]) -> BridgeConfig {
    let mut env: Vec<(String, String)> = [
        ("MODELOP_GATEWAY_URL", "http://127.0.0.1:1"),
        ("MODELOP_TOKEN_URL", "http://127.0.0.1:1/oauth/token"),
        ("MODELOP_CLIENT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:modelop"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()), |_| Err(std::io::Error::other("no file"))).unwrap().bridge().unwrap()
}

struct World {
    mm: Arc<FakeModelManage>,
    table: Arc<FakeTable>,
    handler: BridgeHandler,
}

fn world(extra: &[(&str, &str)]) -> World {
    let mm = Arc::new(FakeModelManage::default());
    let table = Arc::new(FakeTable::default());
    let handler = BridgeHandler::new(config(extra), "jobs", mm.clone(), table.clone());
    World { mm, table, handler }
}

const ME: &str = "internal-client@jobs";

/// A job as ModelOp Center creates it (`POST /model-manage/api/jobs`), for this runtime.
fn created(id: &str) -> Value {
    json!({
        "id": id, "jobType": "MODEL_BATCH_JOB", "jobStatus": "CREATED", "createdDate": "2026-11-23T20:00:00.000Z",
        "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "emr-serverless"},
        "model": {"storedModel": {"modelAssets": [{"assetType": "SOURCE_CODE", "primaryModelSource": true, "sourceCode": "def score(): pass"}]}},
        "inputData": [], "outputData": [], "jobMessages": []
    })
}

async fn poll_once(w: &World) -> PollReport {
    w.handler.poll_until(Utc::now()).await.expect("the poll reached model-manage")
}

#[tokio::test]
async fn a_created_job_is_claimed_in_model_manage_then_written_as_a_created_row() {
    let w = world(&[]);
    w.mm.add(created("job-1"));
    let report = poll_once(&w).await;
    assert_eq!(report.bridged, ["job-1"]);
    let job = w.mm.job("job-1");
    assert_eq!((job["jobStatus"].as_str(), job["version"].as_i64()), (Some("WAITING"), Some(1)));
    assert!(job["jobWaitTime"].is_i64());
    assert_eq!(shared::bridge::claim::claimed_by(&job, ME), Some(true), "{job}");
    let row = w.table.row("job-1").expect("a row");
    assert_eq!(row["jobStatus"], "CREATED");
    assert_eq!((row["modelManage"]["source"].as_str(), row["modelManage"]["version"].as_i64()), (Some("model-manage"), Some(1)));
    assert_eq!(row["jobMessages"], job["jobMessages"], "the row starts with model-manage's messages, the claim line included");
    // The next poll finds nothing to do.
    let again = poll_once(&w).await;
    assert!(again.bridged.is_empty() && again.recovered.is_empty() && again.failed.is_empty(), "{again:?}");
}

#[tokio::test]
async fn jobs_of_other_engines_and_runtimes_are_never_touched() {
    let w = world(&[("MODELOP_RUNTIME_NAME", "emr-serverless")]);
    let mut spark = created("spark");
    spark["targetEngine"]["engineType"] = json!("SPARK_RUNTIME");
    let mut other_name = created("other-name");
    other_name["targetEngine"]["name"] = json!("another-emr");
    let mut theirs = created("theirs");
    theirs["jobStatus"] = json!("WAITING");
    theirs["jobMessages"] = json!([claim_line(Utc::now(), "internal-client@another-table")]);
    for job in [spark, other_name, theirs] {
        w.mm.add(job);
    }
    let report = poll_once(&w).await;
    assert_eq!(report, PollReport { polls: 1, ..Default::default() });
    assert_eq!(w.mm.calls("patch_job"), 0);
    assert!(w.table.rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_another_runtime_wins_writes_no_row() {
    let w = world(&[]);
    w.mm.add(created("raced"));
    w.mm.races.lock().unwrap().push("raced".into());
    let report = poll_once(&w).await;
    assert_eq!((report.lost.as_slice(), report.bridged.len()), (&["raced".to_string()][..], 0));
    assert!(w.table.row("raced").is_none());
    assert_eq!(w.mm.job("raced")["jobStatus"], "WAITING");
    assert_eq!(shared::bridge::claim::claimed_by(&w.mm.job("raced"), ME), None, "the other runtime's claim, not ours");
}

/// A claim answered without an ETag: the row records the version the claim made (the version read,
/// plus one), so the first write-back's If-Match still names the job as it is.
#[tokio::test]
async fn a_claim_answered_without_an_etag_records_the_version_the_claim_made() {
    let w = world(&[]);
    let mut job = created("job-1");
    job["version"] = json!(4);
    w.mm.add(job);
    w.mm.no_etag.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(poll_once(&w).await.bridged, ["job-1"]);
    assert_eq!(w.mm.job("job-1")["version"], 5);
    assert_eq!(w.table.row("job-1").expect("a row")["modelManage"]["version"], 5);
}

/// A job listed without its `version` (how Spring Data REST answers unless told to expose it): the
/// row records the version in the claim's ETag.
#[tokio::test]
async fn a_job_listed_without_its_version_records_the_version_in_the_claims_etag() {
    let w = world(&[]);
    let mut job = created("job-1");
    job["version"] = json!(6);
    w.mm.add(job);
    w.mm.version_unlisted.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(poll_once(&w).await.bridged, ["job-1"]);
    assert_eq!(w.table.row("job-1").expect("a row")["modelManage"]["version"], 7);
}

#[tokio::test]
async fn a_claim_whose_row_was_not_written_is_finished_by_the_next_poll() {
    let w = world(&[]);
    w.mm.add(created("crashed"));
    w.table.failing.lock().unwrap().push("put_new_row");
    let first = poll_once(&w).await;
    assert!(first.bridged.is_empty() && first.failed.len() == 1, "{first:?}");
    assert_eq!(w.mm.job("crashed")["jobStatus"], "WAITING");
    assert!(w.table.row("crashed").is_none());
    let second = poll_once(&w).await;
    assert_eq!(second.recovered, ["crashed"]);
    assert_eq!(w.table.row("crashed").expect("recovered")["jobStatus"], "CREATED");
}

#[tokio::test]
async fn a_row_dynamodb_refuses_for_its_size_ends_the_job_in_error_in_model_manage_naming_the_limit() {
    let w = world(&[]);
    w.mm.add(created("grown"));
    w.table.too_large.lock().unwrap().push("put_new_row");
    let report = poll_once(&w).await;
    assert_eq!((report.refused.as_slice(), report.failed.len()), (["grown".to_string()].as_slice(), 0), "{report:?}");
    let job = w.mm.job("grown");
    assert_eq!(job["jobStatus"], "ERROR");
    let last = job["jobMessages"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    assert!(last.contains("the jobs table cannot hold the job") && last.contains("409600 bytes, 400 KB"), "{last}");
    assert!(poll_once(&w).await.refused.is_empty(), "nothing left to retry");
}

#[tokio::test]
async fn documents_the_table_cannot_hold_or_that_are_not_jobs_end_in_error_in_model_manage() {
    let w = world(&[]);
    let mut large = created("large");
    large["jobParameters"] = json!({"blob": "x".repeat(410 * 1024)});
    let mut malformed = created("malformed");
    malformed["model"] = json!("not a model");
    w.mm.add(large);
    w.mm.add(malformed);
    let report = poll_once(&w).await;
    assert_eq!(report.refused, ["large", "malformed"]);
    for (id, needle) in [("large", "the jobs table holds at most 409600 bytes"), ("malformed", "not a job this runtime can run: model: Expected map")] {
        let job = w.mm.job(id);
        assert_eq!((job["jobStatus"].as_str(), job["jobResult"].as_str()), (Some("ERROR"), Some("UNKNOWN")), "{id}");
        let last = job["jobMessages"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
        assert!(last.contains("[error]") && last.contains(needle), "{id}: {last}");
        assert!(w.table.row(id).is_none());
    }
}

#[tokio::test]
async fn model_manage_down_fails_the_invocation_and_leaves_the_job_for_the_next_poll() {
    let w = world(&[]);
    w.mm.add(created("later"));
    // The reconciliation's sweep and the poll's both meet a 503.
    w.mm.failing.lock().unwrap().extend(["list_finders", "list_finders"]);
    let err = w.handler.poll_until(Utc::now()).await.expect_err("no poll reached model-manage");
    assert!(err.is_retryable() && err.to_string().contains("HTTP 503"), "{err}");
    assert_eq!(poll_once(&w).await.bridged, ["later"]);
}

/// Waits until `ready` (checked every 10 ms), at most 2 s, while the invocation runs beside it:
/// a test fails rather than hangs when a bug means `what` never happens.
async fn soon(ready: impl Fn() -> bool, what: &str) {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while !ready() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    assert!(waited.await.is_ok(), "{what} within 2 s");
}

/// The schedule fires once a minute, yet a job created in ModelOp is claimed within
/// `MODELOP_POLL_SECONDS`: one invocation polls every interval while a poll can still end 5 s
/// before its deadline, and a job created between two polls is bridged by the next poll of the
/// same invocation.
#[tokio::test]
async fn one_invocation_polls_every_interval_until_its_deadline_and_bridges_a_job_created_between_polls() {
    let w = world(&[("MODELOP_POLL_SECONDS", "1")]);
    w.mm.add(created("early"));
    let started = std::time::Instant::now();
    // Room for two polls 1 s apart: a third would start at 2 s, within 5 s of the deadline.
    let deadline = Utc::now() + chrono::Duration::milliseconds(6_500);
    // The fakes answer at once, so this runs only while the invocation waits between its polls.
    let modelop_creates_a_job_after_the_first_poll = async {
        soon(|| w.mm.calls("find_jobs CREATED") > 0, "the first poll").await;
        assert!(w.table.row("early").is_some(), "the first poll is over");
        w.mm.add(created("late"));
    };
    let (report, ()) = tokio::join!(w.handler.poll_until(deadline), modelop_creates_a_job_after_the_first_poll);
    let report = report.expect("the polls reached model-manage");
    let elapsed = started.elapsed();
    assert_eq!(report.polls, 2, "{report:?}");
    assert_eq!(report.bridged, ["early", "late"], "{report:?}");
    assert!(elapsed >= std::time::Duration::from_secs(1), "the second poll waited MODELOP_POLL_SECONDS: {elapsed:?}");
    assert_eq!(w.table.row("late").expect("the late job's row")["jobStatus"], "CREATED");
}

/// A poll that fails after an earlier poll of the invocation bridged a job: the invocation
/// succeeds with what it bridged (the next invocation polls again), and the failure counts in
/// `BridgeFailures`.
#[tokio::test]
async fn a_failed_poll_after_one_that_bridged_keeps_the_report_and_counts_the_failure() {
    let emitted = EmittedMetrics::capture();
    let w = world(&[("MODELOP_POLL_SECONDS", "1")]);
    w.mm.add(created("early"));
    let deadline = Utc::now() + chrono::Duration::milliseconds(6_500);
    // As in the test above: this runs only while the invocation waits between its two polls.
    let outage_after_the_first_poll = async {
        soon(|| w.table.row("early").is_some(), "the first poll's row").await;
        w.mm.failing.lock().unwrap().push("find_jobs");
    };
    let (report, ()) = tokio::join!(w.handler.poll_until(deadline), outage_after_the_first_poll);
    let report = report.expect("a poll bridged a job: the invocation succeeds");
    assert_eq!((report.polls, report.bridged.clone()), (2, vec!["early".to_string()]), "{report:?}");
    let done = emitted.with_metric("BridgeFailures").into_iter().next().expect("the polls' entry");
    assert_eq!((done.metrics["JobsBridged"].as_u64(), done.metrics["BridgeFailures"].as_u64()), (1, 1));
}

/// More CREATED jobs of this runtime than two pages hold (250, pages of [`PAGE_SIZE`]), among jobs
/// of another runtime that stay in the CREATED result and so push the rest to later pages: one
/// poll claims every job of this runtime once and writes its row once, and touches no other.
#[tokio::test]
async fn one_poll_reads_every_page_and_bridges_each_job_once() {
    let w = world(&[("MODELOP_RUNTIME_NAME", "emr-serverless")]);
    let ours_wanted = 2 * PAGE_SIZE + PAGE_SIZE / 2;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for n in 0..ours_wanted * 3 / 2 {
        let id = format!("job-{n:04}");
        let mut job = created(&id);
        if n % 3 == 2 {
            job["targetEngine"]["name"] = json!("another-emr");
            theirs.push(id);
        } else {
            ours.push(id);
        }
        w.mm.add(job);
    }
    assert_eq!(ours.len(), ours_wanted);
    let report = poll_once(&w).await;
    assert!(report.failed.is_empty() && report.lost.is_empty(), "{report:?}");
    let mut bridged = report.bridged.clone();
    bridged.sort();
    assert_eq!(bridged, ours, "each job of this runtime bridged exactly once");
    assert!(w.mm.calls("find_jobs CREATED page 1") > 0, "the jobs left in place pushed the rest to the second page");
    assert_eq!(w.mm.calls("patch_job"), ours.len(), "one claim each");
    assert_eq!(w.table.rows.lock().unwrap().len(), ours.len(), "one row each");
    for id in &ours {
        let job = w.mm.job(id);
        assert_eq!((job["jobStatus"].as_str(), job["version"].as_i64()), (Some("WAITING"), Some(1)), "{id}");
        assert_eq!(w.table.row(id).expect("a row")["jobStatus"], "CREATED", "{id}");
    }
    for id in &theirs {
        let job = w.mm.job(id);
        assert_eq!((job["jobStatus"].as_str(), job["version"].as_i64()), (Some("CREATED"), Some(0)), "{id} is another runtime's");
    }
    // Nothing is left for the next poll.
    let again = poll_once(&w).await;
    assert!(again.bridged.is_empty() && again.failed.is_empty(), "{again:?}");
}

fn stream_record(sequence: &str, event: &str, row: &Value) -> Value {
    let image: serde_dynamo::Item = serde_dynamo::to_item(row).unwrap();
    json!({"eventID": format!("e{sequence}"), "eventName": event, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
           "dynamodb": {"Keys": {"id": {"S": row["id"]}}, "NewImage": image, "SequenceNumber": sequence, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
}

/// A bridged job, claimed, then RUNNING here with its run.
async fn running_row(w: &World) -> Value {
    w.mm.add(created("job-1"));
    poll_once(w).await;
    let mut row = w.table.row("job-1").unwrap();
    row["jobStatus"] = json!("RUNNING");
    row["jobWaitTime"] = json!(1_000);
    row["jobRunTime"] = json!(2_000);
    row["sparkApplicationId"] = json!("00f1");
    row["updatedAt"] = json!("2026-11-23T20:00:03.000Z");
    row["jobMessages"].as_array_mut().unwrap().push(json!("2026/11/23 20:00:02 [info] EMR Serverless job run 00f1 started"));
    row
}

#[tokio::test]
async fn a_stream_record_writes_back_only_what_changed_and_a_redelivery_nothing() {
    let w = world(&[]);
    let row = running_row(&w).await;
    let patches_before = w.mm.calls("patch_job");
    let batch = json!({"Records": [stream_record("100", "MODIFY", &row)]});
    let response = w.handler.handle_stream(batch.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    let job = w.mm.job("job-1");
    assert_eq!((job["jobStatus"].as_str(), job["jobRunTime"].as_i64(), job["lastUpdateFromRuntime"].as_str()), (Some("RUNNING"), Some(2_000), Some("2026-11-23T20:00:03.000Z")));
    assert_ne!(job["jobWaitTime"], 1_000, "the claim's wait time is kept: each time is set once");
    assert!(job["jobMessages"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().contains("job run 00f1 started")));
    assert_eq!(w.mm.calls("patch_job"), patches_before + 1);
    // Redelivered: nothing new is written.
    let response = w.handler.handle_stream(batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.mm.calls("patch_job"), patches_before + 1);
}

#[tokio::test]
async fn only_the_newest_image_of_a_job_in_a_batch_is_written_and_rows_not_from_model_manage_are_ignored() {
    let w = world(&[]);
    let running = running_row(&w).await;
    let mut complete = running.clone();
    complete["jobStatus"] = json!("COMPLETE");
    complete["jobEndTime"] = json!(3_000);
    let mut not_bridged = running.clone();
    not_bridged["id"] = json!("table-only");
    not_bridged.as_object_mut().unwrap().remove("modelManage");
    let patches_before = w.mm.calls("patch_job");
    let batch = json!({"Records": [stream_record("100", "MODIFY", &running), stream_record("101", "MODIFY", &not_bridged), stream_record("102", "MODIFY", &complete)]});
    assert!(w.handler.handle_stream(batch).await.batch_item_failures.is_empty());
    assert_eq!(w.mm.calls("patch_job"), patches_before + 1, "one PATCH for the job's newest image");
    assert_eq!(w.mm.calls("get_job table-only"), 0);
    let job = w.mm.job("job-1");
    assert_eq!((job["jobStatus"].as_str(), job["jobResult"].as_str(), job["jobEndTime"].as_i64()), (Some("COMPLETE"), Some("SUCCESS"), Some(3_000)));
}

#[tokio::test]
async fn a_cancel_in_modelop_cancels_the_row_and_is_not_written_over() {
    let w = world(&[]);
    let row = running_row(&w).await;
    w.table.rows.lock().unwrap().insert("job-1".into(), row.clone());
    w.mm.jobs.lock().unwrap().get_mut("job-1").unwrap()["jobStatus"] = json!("CANCELLED");
    let patches_before = w.mm.calls("patch_job");
    // Seen by the scheduled reconciliation...
    let report = poll_once(&w).await;
    assert_eq!(report.cancelled, ["job-1"]);
    assert_eq!(w.table.row("job-1").unwrap()["jobStatus"], "CANCELLED");
    // ...and the row's own record writes no status over ModelOp's.
    let mut cancelled = w.table.row("job-1").unwrap();
    cancelled["jobStatus"] = json!("CANCELLED");
    assert!(w.handler.handle_stream(json!({"Records": [stream_record("200", "MODIFY", &cancelled)]})).await.batch_item_failures.is_empty());
    assert_eq!(w.mm.job("job-1")["jobStatus"], "CANCELLED");
    assert_eq!(w.mm.calls("patch_job"), patches_before, "nothing written to a job ModelOp cancelled");
}

/// `handle`, as Lambda calls it: the schedule answers with the poll's report, a stream batch with
/// its batch item failures; each write-back counts in `WriteBacks` under its `Outcome`.
#[tokio::test]
async fn the_entry_point_answers_each_event_and_each_write_back_counts_under_its_outcome() {
    let emitted = EmittedMetrics::capture();
    let outcomes = || -> Vec<String> {
        emitted.with_metric("WriteBacks").iter().map(|e| e.values["Outcome"].clone()).collect()
    };
    let w = world(&[]);
    w.mm.add(created("job-1"));
    let invocation = Invocation { request_id: "request-1".into(), deadline: Utc::now() };
    let report = w.handler.handle(json!({"source": "aws.scheduler", "detail-type": "Scheduled Event"}), &invocation).await.unwrap();
    assert_eq!((&report["polls"], &report["bridged"], &report["failed"]), (&json!(1), &json!(["job-1"]), &json!([])), "{report:#}");

    let mut row = w.table.row("job-1").unwrap();
    row["jobStatus"] = json!("RUNNING");
    let batch = json!({"Records": [stream_record("100", "MODIFY", &row)]});
    assert_eq!(w.handler.handle(batch.clone(), &invocation).await.unwrap(), json!({"batchItemFailures": []}));
    w.handler.handle(batch, &invocation).await.unwrap();
    w.mm.jobs.lock().unwrap().get_mut("job-1").unwrap()["jobStatus"] = json!("CANCELLED");
    w.handler.handle(json!({"Records": [stream_record("101", "MODIFY", &row)]}), &invocation).await.unwrap();
    assert_eq!(outcomes(), ["Written", "Unchanged", "RowCancelled"]);
}

#[tokio::test]
async fn a_job_deleted_in_modelop_cancels_its_row_from_the_stream() {
    let w = world(&[]);
    let row = running_row(&w).await;
    w.table.rows.lock().unwrap().insert("job-1".into(), row.clone());
    w.mm.jobs.lock().unwrap().remove("job-1");
    let outcome = w.handler.write_back(&serde_json::from_value(row).unwrap()).await.unwrap();
    assert_eq!(outcome, WriteBack::RowCancelled(RemoteChange::Deleted, true));
    assert_eq!(w.table.row("job-1").unwrap()["jobStatus"], "CANCELLED");
}

#[tokio::test]
async fn an_outage_reports_the_record_for_retry_and_the_retry_writes_it() {
    let w = world(&[]);
    let row = running_row(&w).await;
    let batch = json!({"Records": [stream_record("300", "MODIFY", &row)]});
    w.mm.failing.lock().unwrap().push("get_job");
    let response = w.handler.handle_stream(batch.clone()).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap()).collect();
    assert_eq!(failed, ["300"]);
    assert_eq!(w.mm.job("job-1")["jobStatus"], "WAITING");
    assert!(w.handler.handle_stream(batch).await.batch_item_failures.is_empty());
    assert_eq!(w.mm.job("job-1")["jobStatus"], "RUNNING");
}

#[test]
fn the_failure_policy_is_one_table() {
    use AwsErrorKind::*;
    use Disposition::*;
    let rows = [
        (Step::FindJobs, Transient, Retry),
        (Step::FindJobs, Permanent, Fail),
        (Step::Claim, ConditionFailed, Fail),
        (Step::PutRow, Permanent, Fail),
        (Step::WriteBack, Permanent, Retry),
        (Step::WriteBack, NotFound, Retry),
        (Step::CancelRow, Permanent, Retry),
        // DynamoDB's 400 KB item limit: never retried as it is.
        (Step::PutRow, ItemTooLarge, Fail),
        (Step::CancelRow, ItemTooLarge, Fail),
        (Step::Refuse, Transient, Retry),
    ];
    for (step, kind, disposition) in rows {
        assert_eq!(disposition_of(step, kind), disposition, "{step} / {kind}");
    }
}
