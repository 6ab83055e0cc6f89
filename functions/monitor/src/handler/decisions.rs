//! The monitor handler's decisions against in-memory ports (`shared::fakes`), fed the
//! `events/monitor` samples: the job row, the calls EMR and the stores got.


use chrono::Duration;
use serde_json::{json, Value};
use shared::fakes::recorder::transient;
use shared::fakes::{settings, FakeAws};
use shared::job::record::{Asset, Timestamp};
use shared::outcome::job_run::{JobRunAttempt, JobRunInfo};
use shared::outcome::run_outcome::AttemptRecord;

use super::*;

mod row_size;

/// The run of the samples, and the batch job it belongs to.
const JOB: &str = "3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01";
const RUN: &str = "00fmonitorrun0001";
const APP: &str = "00fmonitorapp0001";
const STAGING: &str = "s3://modelop-staging/modelop-spark-serverless/3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01/";

const STATE_SUBMITTED: &str = include_str!("../../../../events/monitor/state-submitted.json");
const STATE_PENDING: &str = include_str!("../../../../events/monitor/state-pending.json");
const STATE_SCHEDULED: &str = include_str!("../../../../events/monitor/state-scheduled.json");
const STATE_RUNNING: &str = include_str!("../../../../events/monitor/state-running.json");
const STATE_RUNNING_NO_NAME: &str = include_str!("../../../../events/monitor/state-running-no-name.json");
const STATE_SUCCESS: &str = include_str!("../../../../events/monitor/state-success.json");
const STATE_FAILED: &str = include_str!("../../../../events/monitor/state-failed.json");
const STATE_UNKNOWN: &str = include_str!("../../../../events/monitor/state-unknown.json");
const STATE_QUEUED: &str = include_str!("../../../../events/monitor/state-queued.json");
const STATE_CANCELLED: &str = include_str!("../../../../events/monitor/state-cancelled.json");
const STATE_TIMED_OUT: &str = include_str!("../../../../events/monitor/state-timed-out.json");
const STATE_QUEUE_TIMED_OUT: &str = include_str!("../../../../events/monitor/state-queue-timed-out.json");
const JOB_RUN_RETRY: &str = include_str!("../../../../events/monitor/job-run-retry.json");
const MALFORMED: &str = include_str!("../../../../events/monitor/malformed.json");
const RESOURCE_UTILIZATION: &str = include_str!("../../../../events/monitor/resource-utilization.json");
const APPLICATION_STATE_CHANGE: &str = include_str!("../../../../events/monitor/application-state-change.json");
const SCHEDULED_EVENT_SAMPLE: &str = include_str!("../../../../events/monitor/scheduled-event.json");

struct World {
    aws: FakeAws,
    handler: MonitorHandler,
}

fn world() -> World {
    world_with(&[])
}

/// The same with settings of the test's own.
fn world_with(overrides: &[(&str, &str)]) -> World {
    let overrides: Vec<(&str, &str)> = [("EMR_REGION", "us-east-1")].into_iter().chain(overrides.iter().copied()).collect();
    let (settings, aws) = (settings(&overrides), FakeAws::default());
    aws.emr.add_application(APP, "modelop-default", "STARTED");
    aws.emr.add_run(APP, RUN, JobRunInfo { state: "RUNNING".into(), name: Some(JOB.into()), ..JobRunInfo::default() });
    let handler = MonitorHandler::new(settings.service().unwrap(), settings.monitor().unwrap(), aws.jobs.clone(), aws.objects.clone(), aws.emr.clone(), aws.logs.clone());
    World { aws, handler }
}

/// The sample job as submit left it, now at `status` / `emr_state`, with an `EXTERNAL_FILE` and a
/// `FILE` output.
fn launched_row(status: &str, emr_state: &str) -> Value {
    json!({
        "id": JOB, "jobType": "MODEL_BATCH_JOB", "jobStatus": status, "runtimeType": "SPARK_SERVERLESS_RUNTIME",
        "sparkApplicationId": RUN, "emrApplicationId": APP, "emrState": emr_state, "stagingUri": STAGING, "emrApplicationArchitecture": "X86_64",
        "updatedAt": Timestamp(Utc::now() - Duration::minutes(1)).to_string(),
        "outputData": [
            { "name": "scored", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://modelop-data/output/scored/" },
            { "name": "report.json", "assetType": "FILE" }
        ]
    })
}

fn event(sample: &str) -> Value {
    serde_json::from_str(sample).unwrap()
}

fn driver_stream(stream: &str) -> String {
    format!("{JOB}/applications/{APP}/jobs/{RUN}/SPARK_DRIVER/{stream}")
}

fn last_history(row: &Value) -> &Value {
    row["statusHistory"].as_array().and_then(|h| h.last()).expect("a statusHistory entry")
}

#[tokio::test]
async fn state_changes_move_the_job_forward_and_late_ones_change_nothing() {
    // (job status, emrState on the row, event, status and emrState afterwards, applied)
    let cases = [
        ("WAITING", "SUBMITTED", STATE_PENDING, "WAITING", "PENDING", true),
        ("WAITING", "PENDING", STATE_RUNNING, "RUNNING", "RUNNING", true),
        ("WAITING", "SUBMITTED", STATE_RUNNING_NO_NAME, "RUNNING", "RUNNING", true),
        ("RUNNING", "RUNNING", STATE_SCHEDULED, "RUNNING", "RUNNING", false),
        ("RUNNING", "RUNNING", STATE_SUBMITTED, "RUNNING", "RUNNING", false),
        ("RUNNING", "RUNNING", STATE_RUNNING, "RUNNING", "RUNNING", false),
        ("COMPLETE", "SUCCESS", STATE_RUNNING, "COMPLETE", "SUCCESS", false),
    ];
    for (status, emr_state, sample, want_status, want_emr, applied) in cases {
        let world = world();
        world.aws.jobs.put(launched_row(status, emr_state));
        let outcome = world.handler.handle_event(&event(sample)).await.unwrap();
        let row = world.aws.jobs.row(JOB).unwrap();
        let case = format!("{status}/{emr_state} + {}", event(sample)["detail"]["state"]);
        assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some(want_status), Some(want_emr)), "{case}");
        assert_eq!(matches!(outcome, Outcome::Applied { .. }), applied, "{case}: {outcome:?}");
        assert_eq!(world.aws.jobs.recorder.names().contains(&"apply_status"), applied, "{case}: a late event writes nothing");
        if want_status == "RUNNING" && applied {
            assert!(row["jobRunTime"].as_i64().is_some(), "{case}: the moment it was first seen running");
        }
    }
}

#[tokio::test]
async fn a_job_that_moved_on_between_read_and_write_is_not_taken_back() {
    let world = world();
    world.aws.jobs.put(launched_row("WAITING", "SCHEDULED"));
    let jobs = world.aws.jobs.clone();
    // The final state lands (another invocation) while this one handles RUNNING.
    world.aws.jobs.recorder.on_next("apply_status", move || {
        jobs.set(JOB, "jobStatus", json!("COMPLETE"));
        jobs.set(JOB, "emrState", json!("SUCCESS"));
    });
    let outcome = world.handler.handle_event(&event(STATE_RUNNING)).await.unwrap();
    assert_eq!(outcome, Outcome::ignored(IgnoredReason::Late, "superseded"));
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("COMPLETE"), Some("SUCCESS")));
}

#[tokio::test]
async fn an_unknown_state_is_recorded_as_the_latest_without_changing_status_or_emr_state() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world.handler.handle_event(&event(STATE_UNKNOWN)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("RUNNING"), Some("RUNNING")));
    assert_eq!(row["emrLatestState"], "HIBERNATING", "what an operator sees as the run's latest state");
    assert_eq!(last_history(&row)["emrState"], "HIBERNATING");

    // The known states that follow still apply in order.
    world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str(), row["emrLatestState"].as_str()), (Some("COMPLETE"), Some("SUCCESS"), Some("SUCCESS")));
}

#[tokio::test]
async fn a_failed_run_ends_the_job_in_error_with_emrs_reason_and_the_drivers_stderr() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let info = JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), name: Some(JOB.into()), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, info);
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stderr"), "Traceback (most recent call last):\nValueError: no column 'age'\n");
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stdout"), "scoring 10 rows\n");

    let outcome = world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Error, .. }), "{outcome:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("ERROR"), Some("FAILED")));
    let message = row["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {JOB}: EMR Serverless job run FAILED: Job failed, ExitCode: 1")), "{message}");
    assert!(message.contains("ValueError: no column 'age'"), "{message}");
    assert_eq!(row["driverLogs"]["stdout"], "scoring 10 rows\n");
    assert!(row["jobEndTime"].as_i64().is_some());
    let messages: Vec<&str> = row["jobMessages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(messages.iter().any(|m| m.ends_with("[info] scoring 10 rows")) && messages.iter().any(|m| m.contains("[error] job ")), "{messages:?}");
    let read: Vec<&str> = world.aws.objects.recorder.calls().iter().map(|c| c.name).collect();
    assert!(row.get("modelResult").is_none() && read == ["get_text"], "a failed run's outputs are not read, only its model error record: {read:?}");
    assert_eq!(row["failure"]["class"], "MODEL_ERROR", "from the stderr traceback: {:#}", row["failure"]);
}

#[tokio::test]
async fn a_successful_run_brings_its_result_and_outputs_onto_the_job() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world.aws.objects.put("modelop-staging", &format!("modelop-spark-serverless/{JOB}/results/result.json"), r#"{"auc": 0.91}"#);
    world.aws.objects.put("modelop-data", "output/scored/part-00000.csv", "id,score\n1,0.5\n");
    let report = output_locations(STAGING, &[Asset { name: Some("report.json".into()), asset_type: Some("FILE".into()), ..Asset::default() }]);
    let report = report[0].clone().unwrap();
    world.aws.objects.put(&report.bucket, &report.key, "{}");

    world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("COMPLETE"), Some("SUCCESS")));
    assert_eq!(row["modelResult"], json!({ "auc": 0.91 }));
    assert_eq!(row["outputFiles"][0], json!({ "name": "scored", "fileUrl": "s3://modelop-data/output/scored/", "exists": true }));
    assert_eq!(row["outputFiles"][1]["exists"], true);
    assert_eq!((row["outputData"][1]["fileContent"].as_str(), row["outputData"][1]["fileSize"].as_u64()), (Some("e30="), Some(2)), "the FILE output's bytes, base64");
    assert!(row["outputData"][0].get("fileContent").is_none(), "an EXTERNAL_FILE output is pointed to, not copied");
    assert!(!message_lines(&row).iter().any(|m| m.contains("not copied")), "{:?}", message_lines(&row));
    assert!(row.get("errorMessage").is_none());
}

/// `MONITOR_RESULT_MAX_BYTES` bounds what is copied onto the row: a `result.json` or a `FILE`
/// output of exactly the bound is copied whole; one byte over, the result is a pointer to it and
/// the `FILE` output is named in a message, not copied.
#[tokio::test]
async fn results_and_file_outputs_are_copied_up_to_monitor_result_max_bytes() {
    let report = output_locations(STAGING, &[Asset { name: Some("report.json".into()), asset_type: Some("FILE".into()), ..Asset::default() }]);
    let report = report[0].clone().unwrap();
    let result_key = format!("modelop-spark-serverless/{JOB}/results/result.json");
    for (bytes, copied) in [(16, true), (17, false)] {
        let world = world_with(&[("MONITOR_RESULT_MAX_BYTES", "16")]);
        world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
        let content = format!(r#"{{"t":"{}"}}"#, "x".repeat(bytes - 8));
        world.aws.objects.put("modelop-staging", &result_key, content.as_str());
        world.aws.objects.put(&report.bucket, &report.key, content.as_str());
        world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
        let row = world.aws.jobs.row(JOB).unwrap();
        let file = &row["outputData"][1];
        if copied {
            assert_eq!(row["modelResult"], serde_json::from_str::<Value>(&content).unwrap());
            assert_eq!(file["fileSize"].as_u64(), Some(16), "{file:#}");
        } else {
            assert_eq!(row["modelResult"], json!({ "truncated": true, "sizeBytes": 17, "resultUri": format!("s3://modelop-staging/{result_key}") }));
            assert!(file.get("fileContent").is_none(), "{file:#}");
            let said = message_lines(&row).into_iter().find(|m| m.contains("not copied")).expect("a message naming the FILE output");
            assert!(said.contains("it is 17 bytes; at most 16 (MONITOR_RESULT_MAX_BYTES) are copied"), "{said}");
        }
    }
}

#[tokio::test]
async fn a_retry_is_recorded_in_the_history_and_keeps_the_status() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let outcome = world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap();
    assert_eq!(outcome, Outcome::RetryRecorded { job_id: JOB.into() });
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("RUNNING"), Some("RUNNING")));
    assert_eq!((last_history(&row)["status"].as_str(), last_history(&row)["emrState"].as_str()), (Some("RUNNING"), Some("RETRY attempt 2")));
}

/// A retry whose write meets a row changed since it was read reads the row again: a row that
/// still holds this run (its status moved on) gets the retry; a row that now holds another run
/// (the job was launched again) is left to that run.
#[tokio::test]
async fn a_retry_that_meets_a_changed_row_reads_it_again() {
    // (the field changed just before the write, its new value, whether the retry is recorded)
    let cases = [("jobStatus", json!("RUNNING"), true), ("sparkApplicationId", json!("00fotherrun000001"), false)];
    for (field, value, recorded) in cases {
        let world = world();
        world.aws.jobs.put(launched_row("WAITING", "SCHEDULED"));
        let jobs = world.aws.jobs.clone();
        world.aws.jobs.recorder.on_next("record_retry", move || jobs.set(JOB, field, value));
        let outcome = world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap();
        let row = world.aws.jobs.row(JOB).unwrap();
        if recorded {
            assert_eq!(outcome, Outcome::RetryRecorded { job_id: JOB.into() }, "{field}");
            assert_eq!((last_history(&row)["status"].as_str(), last_history(&row)["emrState"].as_str()), (Some("RUNNING"), Some("RETRY attempt 2")));
        } else {
            assert_eq!(outcome, Outcome::ignored(IgnoredReason::NotOurs, "the job is gone or has another run"), "{field}");
            assert_eq!(retry_entries(&row), 0);
        }
    }
}

fn retry_entries(row: &Value) -> usize {
    row["statusHistory"].as_array().map_or(0, |h| h.iter().filter(|e| e["emrState"].as_str().is_some_and(|s| s.starts_with("RETRY"))).count())
}

#[tokio::test]
async fn a_redelivered_retry_changes_nothing() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    assert_eq!(world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap(), Outcome::RetryRecorded { job_id: JOB.into() });
    let once = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(retry_entries(&once), 1);
    let again = world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap();
    assert!(matches!(&again, Outcome::Ignored { reason: IgnoredReason::Duplicate, .. }), "{again:?}");
    assert_eq!(world.aws.jobs.row(JOB).unwrap(), once, "the row is as the first delivery left it");
}

#[tokio::test]
async fn a_retry_before_submit_recorded_the_run_is_recorded_and_the_launch_record_follows() {
    let world = world();
    // Claimed, the run started, but submit has not recorded it yet: no run id on the row.
    let mut claimed = launched_row("WAITING", "SUBMITTED");
    for field in ["sparkApplicationId", "emrApplicationId", "emrState", "stagingUri"] {
        claimed.as_object_mut().unwrap().remove(field);
    }
    world.aws.jobs.put(claimed);
    let outcome = world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap();
    assert_eq!(outcome, Outcome::RetryRecorded { job_id: JOB.into() }, "found through GetJobRun's name, not dropped as late");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["sparkApplicationId"].as_str(), row["emrApplicationId"].as_str()), (Some("WAITING"), Some(RUN), Some(APP)));
    assert_eq!(row["attempts"].as_array().map(|a| a.iter().map(|e| e["attempt"].as_i64().unwrap()).collect::<Vec<_>>()), Some(vec![1, 2]));
    assert_eq!((last_history(&row)["status"].as_str(), last_history(&row)["emrState"].as_str()), (Some("WAITING"), Some("RETRY attempt 2")));
    // The same event again, now found by the run id: still nothing new.
    let again = world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap();
    assert!(matches!(&again, Outcome::Ignored { reason: IgnoredReason::Duplicate, .. }), "{again:?}");
    assert_eq!(retry_entries(&world.aws.jobs.row(JOB).unwrap()), 1);
}

#[tokio::test]
async fn a_retry_write_over_attempts_that_changed_meanwhile_is_refused() {
    // Two deliveries of the same event read the row at once: the second's write names attempts
    // the row no longer has, so it is refused and the handler reads again (and finds it recorded).
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let retry: RetryDetail = serde_json::from_value(event(JOB_RUN_RETRY)["detail"].clone()).unwrap();
    let attempts = merge_attempts(&[], &attempts_from_retry(&retry), MergeRule::FillGaps);
    let store = &world.aws.jobs;
    let write = |seen: &[AttemptRecord], status: JobStatus, run: &str| RetryUpdate {
        job_id: JOB.into(),
        application_id: APP.into(),
        run_id: run.into(),
        attempt: Some(2),
        seen_attempts: seen.to_vec(),
        attempts: attempts.clone(),
        status,
        at: Utc::now(),
    };
    assert!(store.record_retry(&write(&[], JobStatus::Running, RUN)).await.unwrap());
    assert!(!store.record_retry(&write(&[], JobStatus::Running, RUN)).await.unwrap(), "the row's attempts are no longer the ones read");
    assert!(!store.record_retry(&write(&attempts, JobStatus::Waiting, RUN)).await.unwrap(), "the status is no longer the one read");
    assert!(!store.record_retry(&write(&attempts, JobStatus::Running, "another-run")).await.unwrap(), "another run's retry");
    assert_eq!(retry_entries(&store.row(JOB).unwrap()), 1);
}

#[tokio::test]
async fn malformed_and_foreign_events_are_acknowledged_without_a_write() {
    let cases = [
        ("malformed", MALFORMED, IgnoredReason::Malformed, "malformed event"),
        ("application", APPLICATION_STATE_CHANGE, IgnoredReason::Unhandled, "detail-type"),
    ];
    for (name, sample, kind, reason) in cases {
        let (world, outcome) = acknowledged_on_a_running_job(name, &event(sample)).await;
        assert!(matches!(&outcome, Outcome::Ignored { reason: r, detail } if *r == kind && detail.starts_with(reason)), "{name}: {outcome:?}");
        assert!(world.aws.jobs.recorder.calls().is_empty() && world.aws.emr.recorder.calls().is_empty(), "{name}: nothing read or written");
    }
}

/// `event` handled against a world with one RUNNING job: it must be acknowledged (not retried)
/// and leave the job's row as it was. The world and the outcome, for further checks.
async fn acknowledged_on_a_running_job(name: &str, event: &Value) -> (World, Outcome) {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let before = world.aws.jobs.row(JOB);
    let outcome = world.handler.handle_event(event).await.expect("acknowledged, not retried");
    assert_eq!(world.aws.jobs.row(JOB), before, "{name}: the row is unchanged");
    (world, outcome)
}

#[tokio::test]
async fn the_sweep_ends_a_stuck_waiting_job_and_applies_a_lost_final_state() {
    let emitted = shared::fakes::metrics::EmittedMetrics::capture();
    let world = world();
    let hours_ago = |h: i64| Timestamp(Utc::now() - Duration::hours(h)).to_string();
    // Lost final event: EMR says SUCCESS, the row still RUNNING.
    world.aws.emr.add_run(APP, RUN, JobRunInfo { state: "SUCCESS".into(), name: Some(JOB.into()), ..JobRunInfo::default() });
    let mut lost = launched_row("RUNNING", "RUNNING");
    lost["updatedAt"] = json!(hours_ago(1));
    world.aws.jobs.put(lost);
    let stuck = json!({ "id": "stuck-job", "jobStatus": "WAITING", "runtimeType": "SPARK_SERVERLESS_RUNTIME", "updatedAt": hours_ago(9) });
    let fresh = json!({ "id": "fresh-job", "jobStatus": "WAITING", "runtimeType": "SPARK_SERVERLESS_RUNTIME", "updatedAt": Timestamp(Utc::now()).to_string() });
    let foreign = json!({ "id": "foreign-job", "jobStatus": "WAITING", "runtimeType": "SPARK_RUNTIME", "updatedAt": hours_ago(9) });
    // Old enough for the sweep (10 minutes), not for being stuck (480).
    let waiting = json!({ "id": "waiting-job", "jobStatus": "WAITING", "runtimeType": "SPARK_SERVERLESS_RUNTIME", "updatedAt": hours_ago(2) });
    for row in [&stuck, &fresh, &foreign, &waiting] {
        world.aws.jobs.put(row.clone());
    }

    let outcome = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert_eq!(outcome, Outcome::Swept { checked: 3, applied: 1, ended_stuck: 1, usage_final: 0, logs_attached: 0 });
    assert_eq!(world.aws.jobs.recorder.args_of("fail_stuck"), [vec!["stuck-job".to_string()]]);
    assert_eq!(world.aws.jobs.row("waiting-job").unwrap(), waiting, "waiting, not stuck");
    let done = emitted.with_metric("SweepRepairs").into_iter().next().expect("the sweep's entry");
    assert_eq!((done.metrics["StaleJobs"].as_u64(), done.metrics["SweepRepairs"].as_u64()), (3, 2), "repairs: the state applied and the job ended");
    assert_eq!(world.aws.jobs.row(JOB).unwrap()["jobStatus"], "COMPLETE");
    let ended = world.aws.jobs.row("stuck-job").unwrap();
    assert_eq!(ended["jobStatus"], "ERROR");
    assert!(ended["errorMessage"].as_str().unwrap().contains("no EMR Serverless job run was recorded within 480 minutes"), "{ended:#}");
    assert_eq!(world.aws.jobs.row("fresh-job").unwrap(), fresh, "too recent to be stuck");
    assert_eq!(world.aws.jobs.row("foreign-job").unwrap(), foreign, "not ours");
}

/// A job whose run EMR no longer has is left for an operator and the sweep goes on; a throttled
/// read of a run, or a throttled end of a stuck job, fails the sweep so that it is retried.
#[tokio::test]
async fn the_sweep_leaves_a_job_whose_run_is_gone_and_fails_for_a_retry_when_throttled() {
    let old = Timestamp(Utc::now() - Duration::hours(9)).to_string();
    let mut gone = launched_row("RUNNING", "RUNNING");
    gone["sparkApplicationId"] = json!("00fgonerun0000001");
    gone["updatedAt"] = json!(old);
    let stuck = json!({ "id": "stuck-job", "jobStatus": "WAITING", "runtimeType": "SPARK_SERVERLESS_RUNTIME", "updatedAt": old });
    // (the row, the call that is throttled, whether the sweep fails)
    let cases = [(&gone, None, false), (&gone, Some(("emr", "get_job_run")), true), (&stuck, Some(("jobs", "fail_stuck")), true)];
    for (row, throttled, fails) in cases {
        let world = world();
        world.aws.jobs.put(row.clone());
        match throttled {
            Some(("emr", operation)) => world.aws.emr.fail_next(operation, transient("GetJobRun")),
            Some((_, operation)) => world.aws.jobs.fail_next(operation, transient("UpdateItem")),
            None => {}
        }
        let outcome = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await;
        let case = format!("{} with {throttled:?} throttled", row["id"]);
        assert_eq!(outcome.is_err(), fails, "{case}: {outcome:?}");
        if !fails {
            assert_eq!(outcome.unwrap(), Outcome::Swept { checked: 1, applied: 0, ended_stuck: 0, usage_final: 0, logs_attached: 0 }, "{case}");
        }
        assert_eq!(&world.aws.jobs.row(row["id"].as_str().unwrap()).unwrap(), row, "{case}: the row is left as it was");
    }
}

#[tokio::test]
async fn a_transient_store_error_fails_the_invocation_for_a_retry_and_writes_nothing() {
    let cases = [("monitored_job", Step::ReadJob), ("apply_status", Step::WriteStatus)];
    for (operation, step) in cases {
        let world = world();
        world.aws.jobs.put(launched_row("WAITING", "SCHEDULED"));
        let before = world.aws.jobs.row(JOB);
        world.aws.jobs.fail_next(operation, transient("DynamoDB"));
        let err = world.handler.handle_event(&event(STATE_RUNNING)).await.expect_err(operation);
        assert_eq!((err.step, err.disposition), (step, Disposition::Retry), "{operation}: {err}");
        assert_eq!(world.aws.jobs.row(JOB), before, "{operation}");
    }
}

/// An event that names no job, for a run the row does not hold yet (the event came before
/// submit's record): EMR's run names the job. When EMR cannot be read, the event fails for a
/// retry rather than being dropped as another system's run.
#[tokio::test]
async fn a_run_found_only_through_emr_fails_the_event_for_a_retry_while_emr_cannot_be_read() {
    for emr_down in [true, false] {
        let world = world();
        let mut row = launched_row("WAITING", "SUBMITTED");
        row.as_object_mut().unwrap().remove("sparkApplicationId");
        world.aws.jobs.put(row);
        if emr_down {
            world.aws.emr.fail_next("get_job_run", transient("GetJobRun"));
            let err = world.handler.handle_event(&event(STATE_RUNNING_NO_NAME)).await.expect_err("EMR was not read");
            assert_eq!((err.step, err.disposition), (Step::ReadJobRun, Disposition::Retry), "{err}");
        } else {
            let outcome = world.handler.handle_event(&event(STATE_RUNNING_NO_NAME)).await.unwrap();
            assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Running, .. }), "{outcome:?}");
        }
    }
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc))
}

#[tokio::test]
async fn a_queued_run_shows_queued_while_the_job_waits() {
    let world = world();
    world.aws.jobs.put(launched_row("WAITING", "PENDING"));
    world.handler.handle_event(&event(STATE_QUEUED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("WAITING"), Some("QUEUED")));
    // Then admitted: SCHEDULED follows QUEUED; a late PENDING does not take it back.
    world.handler.handle_event(&event(STATE_SCHEDULED)).await.unwrap();
    world.handler.handle_event(&event(STATE_PENDING)).await.unwrap();
    assert_eq!(world.aws.jobs.row(JOB).unwrap()["emrState"], "SCHEDULED");
}

#[tokio::test]
async fn a_run_emr_cancelled_for_its_execution_timeout_ends_the_job_in_error() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "CANCELLING"));
    let details = event(STATE_TIMED_OUT)["detail"]["stateDetails"].as_str().unwrap().to_string();
    let info = JobRunInfo {
        state: "CANCELLED".into(),
        state_details: Some(details),
        name: Some(JOB.into()),
        execution_timeout_minutes: Some(30),
        total_execution_duration_seconds: Some(1_801),
        release_label: Some("emr-7.5.0".into()),
        ..JobRunInfo::default()
    };
    world.aws.emr.add_run(APP, RUN, info);
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stderr"), "ERROR SparkContext: SIGTERM received\n");

    let outcome = world.handler.handle_event(&event(STATE_TIMED_OUT)).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Error, .. }), "{outcome:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("ERROR"), Some("CANCELLED")), "nobody cancelled it");
    let message = row["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {JOB}: EMR Serverless job run CANCELLED: the run exceeded its execution timeout of 30 minutes")), "{message}");
    assert_eq!(row["failure"]["class"], "TIMEOUT");
    assert_eq!(row["failure"]["summary"], "The run exceeded its execution timeout of 30 minutes; EMR Serverless ended it");
    assert_eq!(row["provenance"]["executionTimeoutMinutes"], 30);
    assert_eq!(last_history(&row)["status"], "ERROR");
}

#[tokio::test]
async fn a_run_that_timed_out_in_the_queue_ends_in_error_saying_so() {
    let world = world();
    world.aws.jobs.put(launched_row("WAITING", "QUEUED"));
    let details = event(STATE_QUEUE_TIMED_OUT)["detail"]["stateDetails"].as_str().unwrap().to_string();
    let info = JobRunInfo { state: "FAILED".into(), state_details: Some(details), queued_duration_milliseconds: Some(900_000), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, info);
    world.handler.handle_event(&event(STATE_QUEUE_TIMED_OUT)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "ERROR");
    let message = row["errorMessage"].as_str().unwrap();
    assert!(message.contains("the run timed out in the application's queue and never started"), "{message}");
    assert_eq!(row["failure"]["class"], "QUEUE_TIMEOUT");
    assert_eq!(row["provenance"]["queuedDurationMilliseconds"], 900_000, "the time spent queued");
}

#[tokio::test]
async fn cancels_stay_cancelled_whoever_asked() {
    // Cancelled from outside (console, CLI): CANCELLED with what EMR says.
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "CANCELLING"));
    let info = JobRunInfo { state: "CANCELLED".into(), state_details: Some("Job run cancelled by user".into()), execution_timeout_minutes: Some(720), total_execution_duration_seconds: Some(95), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, info);
    world.handler.handle_event(&event(STATE_CANCELLED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "CANCELLED");
    assert_eq!(row["errorMessage"], format!("job {JOB}: EMR Serverless job run CANCELLED: Job run cancelled by user"));
    assert!(row.get("failure").is_none(), "only a job in ERROR has a failure");

    // Cancelled through ModelOp Center: the row is CANCELLED already and stays so, even if EMR
    // ends the run for its timeout meanwhile.
    let world = self::world();
    world.aws.jobs.put(launched_row("CANCELLED", "RUNNING"));
    let before = world.aws.jobs.row(JOB);
    for sample in [STATE_CANCELLED, STATE_TIMED_OUT] {
        let outcome = world.handler.handle_event(&event(sample)).await.unwrap();
        assert_eq!(outcome, Outcome::ignored(IgnoredReason::Late, "the job is already final"));
    }
    assert_eq!(world.aws.jobs.row(JOB), before);
}

#[tokio::test]
async fn retries_add_attempts_without_moving_the_status_back() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    for _ in 0..2 {
        world.handler.handle_event(&event(JOB_RUN_RETRY)).await.unwrap();
    }
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("RUNNING"), Some("RUNNING")));
    assert_eq!(row["attempts"], json!([
        {"attempt": 1, "state": "FAILED", "startedAt": "2026-11-23T20:09:00.123Z", "endedAt": "2026-11-23T20:11:40.902Z"},
        {"attempt": 2, "startedAt": "2026-11-23T20:11:45.530Z"}
    ]), "a redelivered event adds nothing");
    // Attempt 2 goes SCHEDULED, then RUNNING: neither moves the job back to WAITING.
    for sample in [STATE_SCHEDULED, STATE_RUNNING] {
        assert!(matches!(world.handler.handle_event(&event(sample)).await.unwrap(), Outcome::Ignored { .. }));
    }
    assert_eq!(world.aws.jobs.row(JOB).unwrap()["jobStatus"], "RUNNING");
}

#[tokio::test]
async fn the_final_state_records_attempts_provenance_and_the_last_attempts_logs() {
    let world = world();
    let mut row = launched_row("RUNNING", "RUNNING");
    // Only attempt 2's Retry event... was lost: the row knows no attempts.
    row["attempts"] = json!([]);
    world.aws.jobs.put(row);
    let info = JobRunInfo {
        state: "SUCCESS".into(),
        name: Some(JOB.into()),
        attempt: Some(3),
        release_label: Some("emr-7.5.0".into()),
        started_at: at("2026-11-23T20:13:00Z"),
        ended_at: at("2026-11-23T20:15:00Z"),
        total_execution_duration_seconds: Some(120),
        queued_duration_milliseconds: Some(0),
        execution_timeout_minutes: Some(60),
        max_attempts: Some(3),
        image_uri: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/spark:1".into()),
        image_digest: Some("sha256:abc".into()),
        ..JobRunInfo::default()
    };
    world.aws.emr.add_run(APP, RUN, info);
    let attempt = |n: i32, state: &str, from: &str, to: &str| JobRunAttempt {
        attempt: n,
        state: state.into(),
        state_details: Some(if state == "FAILED" { "Job failed, ExitCode: 1".into() } else { String::new() }),
        created_at: at(from),
        updated_at: at(to),
    };
    world.aws.emr.set_attempts(RUN, vec![
        attempt(1, "FAILED", "2026-11-23T20:09:00Z", "2026-11-23T20:11:00Z"),
        attempt(2, "FAILED", "2026-11-23T20:11:05Z", "2026-11-23T20:12:55Z"),
        attempt(3, "SUCCESS", "2026-11-23T20:12:58Z", "2026-11-23T20:15:00Z"),
    ]);
    let attempt_stream = |stream: &str| format!("{JOB}/applications/{APP}/jobs/{RUN}/attempts/3/SPARK_DRIVER/{stream}");
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stdout"), "attempt 1 output\n");
    world.aws.logs.put("/aws/emr-serverless", &attempt_stream("stdout"), "attempt 3 output\n");

    world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "COMPLETE");
    let attempts = row["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "from ListJobRunAttempts: {attempts:?}");
    assert_eq!(attempts[0], json!({"attempt": 1, "state": "FAILED", "reason": "Job failed, ExitCode: 1", "startedAt": "2026-11-23T20:09:00.000Z", "endedAt": "2026-11-23T20:11:00.000Z"}));
    assert_eq!(row["provenance"], json!({
        "releaseLabel": "emr-7.5.0", "imageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/spark:1", "imageDigest": "sha256:abc",
        "attempts": 3, "maxAttempts": 3, "executionTimeoutMinutes": 60, "startedAt": "2026-11-23T20:13:00.000Z", "endedAt": "2026-11-23T20:15:00.000Z",
        "queuedDurationMilliseconds": 0, "totalExecutionDurationSeconds": 120
    }));
    assert_eq!((row["driverLogs"]["attempt"].as_i64(), row["driverLogs"]["stdout"].as_str()), (Some(3), Some("attempt 3 output\n")), "the last attempt's");
    assert_eq!(row["driverLogs"]["logStreamNamePrefix"], format!("{JOB}/applications/{APP}/jobs/{RUN}/"));
    // stderr: neither path exists, both were looked for.
    let looked: Vec<String> = world.aws.logs.recorder.calls().into_iter().filter(|c| c.args[1].ends_with("stderr")).map(|c| c.args[1].clone()).collect();
    assert_eq!(looked, [attempt_stream("stderr"), driver_stream("stderr")]);
}

#[tokio::test]
async fn the_model_error_record_classifies_the_failure() {
    // (record, class, module)
    let cases = [
        (r#"{"exceptionType": "ValueError", "message": "no column 'age'", "tracebackTail": "ValueError: no column 'age'"}"#, "MODEL_ERROR", None),
        (r#"{"exceptionType": "ModuleNotFoundError", "message": "No module named 'xgboost'", "tracebackTail": ""}"#, "MISSING_DEPENDENCY", Some("xgboost")),
        ("not json", "UNKNOWN", None),
    ];
    // A long traceback: a record under the 64 KiB read is read whole; over it, left out.
    let long_record = |bytes: usize| json!({"exceptionType": "ValueError", "message": "no column 'age'", "tracebackTail": "x".repeat(bytes - 100)}).to_string();
    let (under, over) = (long_record(60 * 1024), long_record(70 * 1024));
    let cases = cases.into_iter().chain([(under.as_str(), "MODEL_ERROR", None), (over.as_str(), "UNKNOWN", None)]);
    for (record, class, module) in cases {
        let world = world();
        world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
        world.aws.emr.add_run(APP, RUN, JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), ..JobRunInfo::default() });
        world.aws.objects.put("modelop-staging", &format!("modelop-spark-serverless/{JOB}/results/model-error.json"), record);
        world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
        let row = world.aws.jobs.row(JOB).unwrap();
        let case = format!("{} bytes: {:.80}", record.len(), record);
        assert_eq!((row["jobStatus"].as_str(), row["failure"]["class"].as_str()), (Some("ERROR"), Some(class)), "{case}");
        assert_eq!(row["failure"]["evidence"]["module"].as_str(), module, "{case}");
    }
    // No record: EMR's stateDetails and the stderr tail.
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world.aws.emr.add_run(APP, RUN, JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 137".into()), ..JobRunInfo::default() });
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["failure"]["class"].as_str(), row["failure"]["evidence"]["exitCode"].as_i64()), (Some("OUT_OF_MEMORY"), Some(137)), "{:#}", row["failure"]);
}

/// `errorMessage` holds at most 8 KiB: EMR's reason and the head of the stderr excerpt, then its
/// last lines.
#[tokio::test]
async fn a_long_stderr_is_cut_to_the_error_messages_8_kib() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world.aws.emr.add_run(APP, RUN, JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), ..JobRunInfo::default() });
    let stderr: String = (0..12).map(|n| format!("line {n:02} {}\n", "x".repeat(1_000))).collect();
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stderr"), &stderr);
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let message = world.aws.jobs.row(JOB).unwrap()["errorMessage"].as_str().unwrap().to_string();
    assert!(message.starts_with(&format!("job {JOB}: EMR Serverless job run FAILED: Job failed, ExitCode: 1")), "{message}");
    assert!(message.contains("line 00") && message.contains("line 11") && !message.contains("line 06"), "{message}");
    assert!((7 * 1024..=8 * 1024 + 5).contains(&message.len()), "{} bytes", message.len());
}

#[tokio::test]
async fn a_missing_module_is_named_as_the_configured_spark_environments() {
    // (MONITOR_SPARK_ENVIRONMENT_NAME, what the summary says the module is not installed on)
    let cases = [(None, "the Spark image"), (Some("the local Spark's Python (.venv)"), "the local Spark's Python (.venv)")];
    for (environment, named) in cases {
        let overrides: Vec<(&str, &str)> = [("EMR_REGION", "us-east-1")].into_iter().chain(environment.map(|e| ("MONITOR_SPARK_ENVIRONMENT_NAME", e))).collect();
        let (settings, aws) = (settings(&overrides), FakeAws::default());
        let handler = MonitorHandler::new(settings.service().unwrap(), settings.monitor().unwrap(), aws.jobs.clone(), aws.objects.clone(), aws.emr.clone(), aws.logs.clone());
        aws.jobs.put(launched_row("RUNNING", "RUNNING"));
        aws.emr.add_run(APP, RUN, JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), ..JobRunInfo::default() });
        let record = r#"{"exceptionType": "ModuleNotFoundError", "message": "No module named 'numpy'", "tracebackTail": ""}"#;
        aws.objects.put("modelop-staging", &format!("modelop-spark-serverless/{JOB}/results/model-error.json"), record);
        handler.handle_event(&event(STATE_FAILED)).await.unwrap();
        let row = aws.jobs.row(JOB).unwrap();
        assert_eq!(row["failure"]["summary"], format!("The model imports module 'numpy', which is not installed on {named}"), "{environment:?}");
    }
}

/// The utilization sample (final, calculated to 20:15:00.772), made non-final and calculated to
/// `calculated_to` when given.
fn utilization(is_final: bool, calculated_to: Option<&str>) -> Value {
    let mut event = event(RESOURCE_UTILIZATION);
    event["detail"]["resourceUtilizationFinal"] = json!(is_final);
    if let Some(at) = calculated_to {
        event["detail"]["calculatedTo"] = json!(at);
    }
    event
}

fn usage_of(row: &Value) -> (Option<bool>, Option<&str>, Option<&str>) {
    (row["resourceUsage"]["final"].as_bool(), row["resourceUsage"]["asOf"].as_str(), row["cost"]["basis"].as_str())
}

#[tokio::test]
async fn utilization_updates_record_usage_and_cost_in_order_and_never_touch_the_status() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let history = world.aws.jobs.row(JOB).unwrap()["statusHistory"].clone();
    // (event, outcome, final, asOf afterwards)
    let steps = [
        (utilization(false, Some("2026-11-23T20:14:00Z")), Outcome::UsageRecorded { job_id: JOB.into(), is_final: false }, Some(false), "2026-11-23T20:14:00.000Z"),
        (utilization(false, Some("2026-11-23T20:14:00Z")), Outcome::ignored(IgnoredReason::Late, "usage not newer"), Some(false), "2026-11-23T20:14:00.000Z"),
        (utilization(false, Some("2026-11-23T20:12:00Z")), Outcome::ignored(IgnoredReason::Late, "usage not newer"), Some(false), "2026-11-23T20:14:00.000Z"),
        (utilization(true, None), Outcome::UsageRecorded { job_id: JOB.into(), is_final: true }, Some(true), "2026-11-23T20:15:00.772Z"),
        (utilization(false, Some("2026-11-23T20:45:00Z")), Outcome::ignored(IgnoredReason::Late, "usage not newer"), Some(true), "2026-11-23T20:15:00.772Z"),
        (utilization(true, None), Outcome::ignored(IgnoredReason::Late, "usage not newer"), Some(true), "2026-11-23T20:15:00.772Z"),
    ];
    for (step, (event, outcome, is_final, as_of)) in steps.into_iter().enumerate() {
        assert_eq!(world.handler.handle_event(&event).await.unwrap(), outcome, "step {step}");
        let row = world.aws.jobs.row(JOB).unwrap();
        assert_eq!(usage_of(&row), (is_final, Some(as_of), Some("billed")), "step {step}");
        assert_eq!((row["jobStatus"].as_str(), &row["statusHistory"]), (Some("RUNNING"), &history), "step {step}: the status is not touched");
    }
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["resourceUsage"]["billed"], json!({"vCPUHour": 0.444, "memoryGBHour": 1.776, "storageGBHour": 0.0}));
    assert_eq!(row["resourceUsage"]["executionSeconds"], 188);
    // 0.444 vCPU-h × 0.052624 + 1.776 GB-h × 0.0057785 (built-in us-east-1 x86 prices).
    assert_eq!((row["cost"]["amount"].as_f64(), row["cost"]["currency"].as_str(), row["cost"]["region"].as_str()), (Some(0.033628), Some("USD"), Some("us-east-1")));
    assert!(!world.aws.jobs.recorder.names().contains(&"apply_status"), "usage never writes the status");
}

#[tokio::test]
async fn usage_arriving_after_the_job_ended_or_with_no_known_price_is_still_recorded() {
    // A job already COMPLETE when its first utilization event arrives.
    let world = world();
    world.aws.jobs.put(launched_row("COMPLETE", "SUCCESS"));
    assert_eq!(world.handler.handle_event(&utilization(true, None)).await.unwrap(), Outcome::UsageRecorded { job_id: JOB.into(), is_final: true });
    assert_eq!(world.aws.jobs.row(JOB).unwrap()["jobStatus"], "COMPLETE");

    // No architecture recorded, or a region with no price: usage, and no invented cost.
    for (region, architecture) in [("us-east-1", None), ("ap-south-1", Some("X86_64"))] {
        let (settings, aws) = (settings(&[("EMR_REGION", region)]), FakeAws::default());
        aws.emr.add_application(APP, "modelop-default", "STARTED");
        let handler = MonitorHandler::new(settings.service().unwrap(), settings.monitor().unwrap(), aws.jobs.clone(), aws.objects.clone(), aws.emr.clone(), aws.logs.clone());
        let mut row = launched_row("RUNNING", "RUNNING");
        row["emrApplicationArchitecture"] = architecture.map_or(Value::Null, |a| json!(a));
        aws.jobs.put(row);
        handler.handle_event(&utilization(true, None)).await.unwrap();
        let row = aws.jobs.row(JOB).unwrap();
        assert_eq!((row["resourceUsage"]["final"].as_bool(), row.get("cost")), (Some(true), None), "{region} {architecture:?}");
    }
}

#[tokio::test]
async fn malformed_or_foreign_utilization_events_are_acknowledged_without_a_write() {
    let mut negative = utilization(false, None);
    negative["detail"]["totalResourceUtilization"]["vCPUHour"] = json!(-1);
    let mut text = utilization(false, None);
    text["detail"]["totalBilledResourceUtilization"]["memoryGBHour"] = json!("1.7");
    let mut partial = utilization(false, None);
    partial["detail"].as_object_mut().unwrap().remove("calculatedTo");
    let mut no_run = utilization(false, None);
    no_run["detail"].as_object_mut().unwrap().remove("jobRunId");
    let mut unknown = utilization(true, None);
    unknown["detail"]["jobRunId"] = json!("00funknownrun0001");
    // (case, event, reason)
    let cases = [
        ("negative", negative, IgnoredReason::Malformed, "malformed event: totalResourceUtilization.vCPUHour: -1 is negative or not finite"),
        ("not a number", text, IgnoredReason::Malformed, "malformed event: totalBilledResourceUtilization.memoryGBHour: \"1.7\" is not a number"),
        ("no calculatedTo", partial, IgnoredReason::Malformed, "malformed event: calculatedTo: missing"),
        ("no run", no_run, IgnoredReason::Malformed, "malformed event: missing field `jobRunId`"),
        ("unknown run", unknown, IgnoredReason::NotOurs, "not our job run"),
    ];
    for (name, event, kind, reason) in cases {
        let (world, outcome) = acknowledged_on_a_running_job(name, &event).await;
        assert_eq!(outcome, Outcome::ignored(kind, reason), "{name}");
        assert!(!world.aws.jobs.recorder.names().contains(&"record_usage"), "{name}");
    }
    // A job of another runtime.
    let world = world();
    let mut foreign = launched_row("RUNNING", "RUNNING");
    foreign["runtimeType"] = json!("SPARK_RUNTIME");
    world.aws.jobs.put(foreign.clone());
    assert_eq!(world.handler.handle_event(&utilization(true, None)).await.unwrap(), Outcome::ignored(IgnoredReason::NotOurs, "not our job run"));
    assert_eq!(world.aws.jobs.row(JOB).unwrap(), foreign);
}

#[tokio::test]
async fn zero_billed_figures_at_the_end_are_not_final_until_the_sweep_reads_them() {
    use shared::outcome::cost::{RunUtilization, Utilization};
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let used = Utilization { vcpu_hour: 0.4, memory_gb_hour: 1.6, storage_gb_hour: 1.6 };
    let ended = |billed: Utilization| JobRunInfo {
        state: "SUCCESS".into(),
        name: Some(JOB.into()),
        started_at: Some(Utc::now() - Duration::minutes(7)),
        ended_at: Some(Utc::now() - Duration::minutes(1)),
        total_execution_duration_seconds: Some(360),
        utilization: Some(RunUtilization { used, billed: Some(billed) }),
        ..JobRunInfo::default()
    };
    world.aws.emr.add_run(APP, RUN, ended(Utilization::default()));
    let outcome = world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Complete, .. }), "{outcome:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "COMPLETE", "the status does not wait for the cost");
    assert_eq!((row["resourceUsage"]["final"].as_bool(), row["cost"]["basis"].as_str()), (Some(false), Some("used")), "zero billed figures are never final");
    assert!(row["resourceUsage"].get("billed").is_none());

    // Still zero at the first sweep: nothing becomes final; then EMR has billed the run.
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { usage_final: 0, .. }), "{sweep:?}");
    world.aws.emr.add_run(APP, RUN, ended(Utilization { vcpu_hour: 0.44, memory_gb_hour: 1.77, storage_gb_hour: 0.0 }));
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { usage_final: 1, .. }), "{sweep:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["resourceUsage"]["final"].as_bool(), row["cost"]["basis"].as_str()), (Some(true), Some("billed")));
    assert_eq!(row["resourceUsage"]["executionSeconds"], 360);
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { usage_final: 0, .. }), "final usage is not read again: {sweep:?}");
}

#[tokio::test]
async fn a_run_whose_history_shows_it_ran_is_never_recorded_as_used_nothing() {
    // The latest attempt failed before it ran (no startedAt), but the row saw the run RUNNING:
    // it used something, so no final zero usage.
    let world = world();
    let mut row = launched_row("RUNNING", "RUNNING");
    row["statusHistory"] = json!([{ "status": "RUNNING", "emrState": "RUNNING", "at": Timestamp(Utc::now() - Duration::minutes(5)).to_string() }]);
    world.aws.jobs.put(row);
    let failed = JobRunInfo { state: "FAILED".into(), name: Some(JOB.into()), ended_at: Some(Utc::now()), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, failed);
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "ERROR");
    assert_ne!(row["resourceUsage"]["final"], json!(true), "{:#}", row["resourceUsage"]);
}

/// The latest attempt of a retried run has no figures and no `startedAt`, and the row never saw
/// RUNNING, but an earlier attempt used (and was billed) something: the run ran, so the latest
/// attempt's figures are waited for, never taken as zero and final.
#[tokio::test]
async fn a_run_whose_earlier_attempt_ran_is_never_recorded_as_used_nothing() {
    use shared::outcome::cost::{RunUtilization, Utilization};
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "SUBMITTED"));
    let latest = JobRunInfo { state: "FAILED".into(), name: Some(JOB.into()), attempt: Some(2), ended_at: Some(Utc::now()), ..JobRunInfo::default() };
    let used = Utilization { vcpu_hour: 0.5, memory_gb_hour: 2.0, storage_gb_hour: 0.0 };
    let first = JobRunInfo { state: "FAILED".into(), name: Some(JOB.into()), attempt: Some(1), utilization: Some(RunUtilization { used, billed: Some(used) }), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, latest);
    world.aws.emr.set_attempt_run(RUN, 1, first);
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "ERROR");
    assert!(world.aws.emr.recorder.names().contains(&"get_job_run_attempt"), "attempt 1 was read");
    assert_ne!(row["resourceUsage"]["final"], json!(true), "{:#}", row["resourceUsage"]);
}

#[tokio::test]
async fn a_retried_runs_usage_and_cost_cover_every_attempt() {
    use shared::outcome::cost::{RunUtilization, Utilization};
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let figures = |v: f64| Utilization { vcpu_hour: v, memory_gb_hour: 4.0 * v, storage_gb_hour: 0.0 };
    let attempt = |n: i32, state: &str, v: f64, seconds: i64| JobRunInfo {
        state: state.into(),
        name: Some(JOB.into()),
        attempt: Some(n),
        started_at: Some(Utc::now() - Duration::minutes(10)),
        ended_at: Some(Utc::now() - Duration::minutes(1)),
        total_execution_duration_seconds: Some(seconds),
        utilization: Some(RunUtilization { used: figures(v), billed: Some(figures(v + 0.5)) }),
        ..JobRunInfo::default()
    };
    world.aws.emr.add_run(APP, RUN, attempt(2, "SUCCESS", 1.0, 300));
    world.aws.emr.set_attempt_run(RUN, 1, attempt(1, "FAILED", 2.0, 600));
    world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    let usage = &row["resourceUsage"];
    assert_eq!((usage["used"]["vCPUHour"].as_f64(), usage["billed"]["vCPUHour"].as_f64()), (Some(3.0), Some(4.0)), "{usage:#}");
    assert_eq!((usage["executionSeconds"].as_i64(), usage["attempts"].as_i64(), usage["final"].as_bool()), (Some(900), Some(2), Some(true)));
    assert!(usage.get("latestAttemptOnly").is_none());
    assert!(world.aws.emr.recorder.names().contains(&"get_job_run_attempt"), "GetJobRun with attempt=1");

    // The final utilization event of attempt 2 gives that attempt's totals: the row says so.
    let world3 = self::world();
    world3.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    assert_eq!(world3.handler.handle_event(&event(RESOURCE_UTILIZATION)).await.unwrap(), Outcome::UsageRecorded { job_id: JOB.into(), is_final: true });
    let usage = world3.aws.jobs.row(JOB).unwrap()["resourceUsage"].clone();
    assert_eq!((usage["attempts"].as_i64(), usage["latestAttemptOnly"].as_bool()), (Some(2), Some(true)), "{usage:#}");

    // An earlier attempt that cannot be read: the row says the figures are the latest attempt's only.
    let world2 = self::world();
    world2.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world2.aws.emr.add_run(APP, RUN, attempt(2, "SUCCESS", 1.0, 300));
    world2.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    let usage = world2.aws.jobs.row(JOB).unwrap()["resourceUsage"].clone();
    assert_eq!((usage["used"]["vCPUHour"].as_f64(), usage["latestAttemptOnly"].as_bool(), usage["final"].as_bool()), (Some(1.0), Some(true), Some(false)), "{usage:#}");
}

/// A failed run whose driver ran out of memory (its stderr says so; EMR's `stateDetails` only
/// gives the exit code), with its logs in CloudWatch Logs.
fn out_of_memory_run(world: &World) {
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let info = JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), name: Some(JOB.into()), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, info);
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stderr"), "java.lang.OutOfMemoryError: Java heap space\n");
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stdout"), "scoring 10 rows\n");
}

fn message_lines(row: &Value) -> Vec<String> {
    row["jobMessages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_throttled_log_read_does_not_hold_the_final_status_and_the_sweep_attaches_the_logs_later() {
    let world = world();
    out_of_memory_run(&world);
    world.aws.logs.throttle(true);

    // The final status is written at once, from EMR's end; the logs are marked unavailable.
    let outcome = world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Error, .. }), "{outcome:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["emrState"].as_str()), (Some("ERROR"), Some("FAILED")));
    let logs = &row["driverLogs"];
    assert!(logs["unavailable"]["reason"].as_str().unwrap().contains("ThrottlingException"), "{logs:#}");
    assert_eq!((logs["unavailable"]["refinesFailure"].as_bool(), logs["stderr"].as_str()), (Some(true), Some("")), "{logs:#}");
    assert_eq!(logs["logStreamNamePrefix"], format!("{JOB}/applications/{APP}/jobs/{RUN}/"), "where the logs are, already");
    assert_ne!(row["failure"]["class"], "OUT_OF_MEMORY", "classified without the stderr: {:#}", row["failure"]);
    // One try per stream, no retry: the status never waited on the quota.
    let tries = world.aws.logs.recorder.names();
    assert_eq!(tries, ["tail", "tail"], "{tries:?}");
    let history = row["statusHistory"].as_array().unwrap().len();

    // A sweep while the quota is still used up leaves them marked for the next one.
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 0, .. }), "{sweep:?}");
    assert_eq!(world.aws.jobs.row(JOB).unwrap()["driverLogs"]["unavailable"]["since"], logs["unavailable"]["since"]);

    // The quota frees up: the next sweep attaches them, paced, and the failure they refine.
    world.aws.logs.throttle(false);
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 1, .. }), "{sweep:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "ERROR", "the final status never changes");
    assert_eq!(row["statusHistory"].as_array().unwrap().len(), history, "attaching logs is no status change");
    assert!(row["driverLogs"].get("unavailable").is_none(), "{:#}", row["driverLogs"]);
    assert_eq!(row["driverLogs"]["stderr"], "java.lang.OutOfMemoryError: Java heap space\n");
    assert_eq!(row["failure"]["class"], "OUT_OF_MEMORY", "{:#}", row["failure"]);
    assert!(row["errorMessage"].as_str().unwrap().contains("OutOfMemoryError"), "{}", row["errorMessage"]);
    let messages = message_lines(&row);
    assert!(messages.iter().any(|m| m.ends_with("[info] scoring 10 rows")), "the stdout lines ModelOp shows: {messages:?}");
    assert!(world.aws.logs.recorder.names().contains(&"tail_paced"), "the sweep reads paced");

    // Attached once: a later sweep finds nothing to do.
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 0, .. }), "{sweep:?}");
}

/// The same run with its logs readable gets the same row fields in one write: the later
/// attachment is what the final write would have held, a stdout longer than the tail included.
#[tokio::test]
async fn logs_attached_later_say_what_logs_read_at_once_say() {
    let long_stdout = "scoring a row\n".repeat(shared::config::DEFAULT_MONITOR_LOG_TAIL_BYTES / 10);
    for stdout in [None, Some(long_stdout.as_str())] {
        let run = |world: &World| {
            out_of_memory_run(world);
            if let Some(text) = stdout {
                world.aws.logs.put("/aws/emr-serverless", &driver_stream("stdout"), text);
            }
        };
        let at_once = world();
        run(&at_once);
        at_once.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
        let later = world();
        run(&later);
        later.aws.logs.throttle(true);
        later.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
        later.aws.logs.throttle(false);
        later.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
        let (a, b) = (at_once.aws.jobs.row(JOB).unwrap(), later.aws.jobs.row(JOB).unwrap());
        assert_eq!(b["driverLogs"]["truncated"], stdout.is_some(), "{:#}", b["driverLogs"]["truncated"]);
        assert!(!b["driverLogs"]["stdout"].as_str().unwrap().is_empty());
        for field in ["jobStatus", "failure", "errorMessage", "driverLogs"] {
            assert_eq!(a[field], b[field], "{field}");
        }
        let last_error = message_lines(&b).into_iter().rev().find(|m| m.contains("[error] ")).expect("an error line");
        assert!(last_error.ends_with(b["errorMessage"].as_str().unwrap().lines().last().unwrap()), "the refined message is the last error line: {last_error}");
    }
}

/// On the running clock (FINAL_LOG_READ_BUDGET, 5 s, of real time): the handler's own timeout ends the wait.
#[tokio::test]
async fn a_log_read_that_never_answers_holds_the_final_status_for_its_budget_only() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world.aws.logs.stall(true);
    let started = tokio::time::Instant::now();
    let outcome = world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    let waited = started.elapsed();
    assert!(matches!(outcome, Outcome::Applied { status: JobStatus::Complete, .. }), "{outcome:?}");
    // Within 2 s over the budget: the timeout's own lateness on a loaded machine, far from a second budget.
    assert!(waited >= FINAL_LOG_READ_BUDGET && waited < FINAL_LOG_READ_BUDGET + std::time::Duration::from_secs(2), "{waited:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(row["jobStatus"], "COMPLETE");
    let unavailable = &row["driverLogs"]["unavailable"];
    assert_eq!(unavailable["reason"], "CloudWatch Logs did not answer within 5 s");
    assert_eq!(unavailable["refinesFailure"], false, "a COMPLETE job has no failure to refine");
}

/// A job whose run COMPLETE was written while CloudWatch Logs throttled: its row final, its
/// driver log (`rows scored: 10`) waiting for the sweep's logs pass, which is no longer throttled.
async fn completed_with_logs_left_to_the_sweep() -> World {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stdout"), "rows scored: 10\n");
    world.aws.logs.throttle(true);
    world.handler.handle_event(&event(STATE_SUCCESS)).await.unwrap();
    world.aws.logs.throttle(false);
    world
}

#[tokio::test]
async fn logs_of_a_completed_job_are_attached_without_touching_its_status_or_failure() {
    let world = completed_with_logs_left_to_the_sweep().await;
    // Another run took the row meanwhile (a resubmitted job): its logs are not this run's.
    let mut other = world.aws.jobs.row(JOB).unwrap();
    other["sparkApplicationId"] = json!("00fotherrun000001");
    other["resourceUsage"] = json!({ "final": true }); // so the usage pass reads no run
    world.aws.jobs.put(other.clone());
    world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert_eq!(world.aws.jobs.row(JOB).unwrap(), other, "the other run's row is left alone");

    other["sparkApplicationId"] = json!(RUN);
    world.aws.jobs.put(other);
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 1, .. }), "{sweep:?}");
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["jobStatus"].as_str(), row.get("failure"), row.get("errorMessage")), (Some("COMPLETE"), None, None));
    assert_eq!(row["driverLogs"]["stdout"], "rows scored: 10\n");
    assert!(message_lines(&row).iter().any(|m| m.ends_with("[info] rows scored: 10")));
    assert_eq!(world.aws.emr.recorder.names().iter().filter(|n| **n == "get_job_run").count(), 1, "the final state's only: none to refine a COMPLETE job");
}

#[tokio::test]
async fn a_failure_the_model_error_record_or_a_timeout_decided_is_not_reclassified_from_the_logs() {
    let world = world();
    world.aws.jobs.put(launched_row("RUNNING", "RUNNING"));
    let info = JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), name: Some(JOB.into()), ..JobRunInfo::default() };
    world.aws.emr.add_run(APP, RUN, info);
    let record = r#"{"exceptionType": "ValueError", "message": "no column 'age'", "tracebackTail": ""}"#;
    world.aws.objects.put("modelop-staging", &format!("modelop-spark-serverless/{JOB}/results/model-error.json"), record);
    world.aws.logs.put("/aws/emr-serverless", &driver_stream("stderr"), "java.lang.OutOfMemoryError: Java heap space\n");
    world.aws.logs.throttle(true);
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let row = world.aws.jobs.row(JOB).unwrap();
    assert_eq!((row["failure"]["class"].as_str(), row["driverLogs"]["unavailable"]["refinesFailure"].as_bool()), (Some("MODEL_ERROR"), Some(false)));
    world.aws.logs.throttle(false);
    world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    let after = world.aws.jobs.row(JOB).unwrap();
    assert_eq!(after["failure"], row["failure"], "the model's own record decided the class");
    assert_eq!(after["driverLogs"]["stderr"], "java.lang.OutOfMemoryError: Java heap space\n");
}

/// In a completion storm, one throttled read is enough to know the quota is spent: the final
/// states that follow in this process do not spend it on parts of logs that must be read again.
#[tokio::test]
async fn after_a_failed_log_read_the_next_final_states_leave_the_logs_to_the_sweep() {
    let world = world();
    out_of_memory_run(&world);
    world.aws.logs.throttle(true);
    world.handler.handle_event(&event(STATE_FAILED)).await.unwrap();
    let tries = world.aws.logs.recorder.names().len();

    // Another job of the same process ends; CloudWatch Logs would answer now, but is not asked.
    world.aws.logs.throttle(false);
    let mut other = launched_row("RUNNING", "RUNNING");
    other["id"] = json!("job-2");
    other["sparkApplicationId"] = json!("00fmonitorrun0002");
    world.aws.jobs.put(other);
    world.aws.emr.add_run(APP, "00fmonitorrun0002", JobRunInfo { state: "SUCCESS".into(), name: Some("job-2".into()), ..JobRunInfo::default() });
    let mut success = event(STATE_SUCCESS);
    success["detail"]["jobRunId"] = json!("00fmonitorrun0002");
    success["detail"]["jobRunName"] = json!("job-2");
    world.handler.handle_event(&success).await.unwrap();
    let row = world.aws.jobs.row("job-2").unwrap();
    assert_eq!(row["jobStatus"], "COMPLETE");
    assert!(row["driverLogs"]["unavailable"]["reason"].as_str().unwrap().contains("left to the sweep"), "{:#}", row["driverLogs"]);
    assert_eq!(world.aws.logs.recorder.names().len(), tries, "no GetLogEvents for it");

    // The sweep reads both, paced.
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 2, .. }), "{sweep:?}");
}

/// A pass starts no read that its reads in flight could not finish before its end
/// ([`log_pass_drain`], 2 s at the default pace): with 1 s left before the next sweep is due
/// (less its margin), a job awaiting its logs is left to the next pass.
#[tokio::test]
async fn a_logs_pass_with_less_time_left_than_its_reads_take_starts_none() {
    let pace = shared::config::DEFAULT_MONITOR_LOG_READS_PER_SECOND;
    assert_eq!(log_pass_drain(log_pass_reads_in_flight(pace, shared::config::DEFAULT_MONITOR_MAX_CONCURRENCY), pace), std::time::Duration::from_secs(2));
    let world = completed_with_logs_left_to_the_sweep().await;

    let mut late = event(SCHEDULED_EVENT_SAMPLE);
    let sent = Utc::now() - (SWEEP_PERIOD - LOG_PASS_END_MARGIN - std::time::Duration::from_secs(1));
    late["time"] = json!(sent.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let sweep = world.handler.handle_event(&late).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 0, .. }), "{sweep:?}");
    assert!(world.aws.jobs.row(JOB).unwrap()["driverLogs"]["unavailable"].is_object());
    let sweep = world.handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 1, .. }), "the next pass reads it: {sweep:?}");
}

/// A pass asks the table only for the jobs it can read before its end at its pace (oldest first),
/// not for every job waiting: at 1 GetLogEvents a second, 50 s (the sample's `time` is old) and one
/// read in flight, 14 of 20.
#[tokio::test]
async fn a_logs_pass_takes_the_oldest_jobs_it_can_read_at_its_pace() {
    let (settings, aws) = (settings(&[("EMR_REGION", "us-east-1"), ("MONITOR_LOG_READS_PER_SECOND", "1")]), FakeAws::default());
    aws.emr.add_application(APP, "modelop-default", "STARTED");
    let handler = MonitorHandler::new(settings.service().unwrap(), settings.monitor().unwrap(), aws.jobs.clone(), aws.objects.clone(), aws.emr.clone(), aws.logs.clone());
    let expected = log_pass_capacity(LOG_PASS_UNTIMED, 1, log_pass_reads_in_flight(1, shared::config::DEFAULT_MONITOR_MAX_CONCURRENCY));
    assert_eq!(expected, 14);
    for i in 0..20 {
        let (id, run) = (format!("job-{i:02}"), format!("00fmonitorrun{i:04}"));
        let mut row = launched_row("COMPLETE", "SUCCESS");
        row["id"] = json!(id);
        row["sparkApplicationId"] = json!(run);
        // job-00 is the least recently updated.
        row["updatedAt"] = json!(Timestamp(Utc::now() - Duration::minutes(30 - i)).to_string());
        row["driverLogs"] = json!({"stdout": "", "stderr": "", "truncated": false, "logGroupName": "/aws/emr-serverless",
            "logStreamNamePrefix": format!("{id}/applications/{APP}/jobs/{run}/"),
            "unavailable": {"reason": "throttled", "since": Timestamp(Utc::now() - Duration::minutes(30 - i)).to_string(), "refinesFailure": false}});
        aws.jobs.put(row);
        aws.emr.add_run(APP, &run, JobRunInfo { state: "SUCCESS".into(), name: Some(id), ..JobRunInfo::default() });
    }
    let sweep = handler.handle_event(&event(SCHEDULED_EVENT_SAMPLE)).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { logs_attached: 14, .. }), "{sweep:?}");
    let waiting: Vec<String> = (0..20).map(|i| format!("job-{i:02}")).filter(|id| !aws.jobs.row(id).unwrap()["driverLogs"]["unavailable"].is_null()).collect();
    assert_eq!(waiting, (14..20).map(|i| format!("job-{i:02}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_logs_pass_reads_as_the_first_query_answers_not_after_the_slowest() {
    let World { aws, handler } = world();
    let jobs = [("job-complete-1", "COMPLETE"), ("job-complete-2", "COMPLETE"), ("job-error-1", "ERROR")];
    for (i, (id, status)) in jobs.into_iter().enumerate() {
        let run = format!("00fmonitorrun{i:04}");
        let mut row = launched_row(status, if status == "ERROR" { "FAILED" } else { "SUCCESS" });
        row["id"] = json!(id);
        row["sparkApplicationId"] = json!(run);
        row["driverLogs"] = json!({"stdout": "", "stderr": "", "truncated": false, "logGroupName": "/aws/emr-serverless",
            "logStreamNamePrefix": format!("{id}/applications/{APP}/jobs/{run}/"),
            "unavailable": {"reason": "throttled", "since": Timestamp(Utc::now() - Duration::minutes(5)).to_string(), "refinesFailure": false}});
        aws.jobs.put(row);
    }
    let attached = |id: &str| aws.jobs.row(id).unwrap()["driverLogs"]["unavailable"].is_null();
    // ERROR's query answers only after the COMPLETE jobs' logs are attached (or 10 s, a failure).
    aws.jobs.hold_awaiting_logs(JobStatus::Error, true);
    let released_after_reads = async {
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !(attached("job-complete-1") && attached("job-complete-2")) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        aws.jobs.hold_awaiting_logs(JobStatus::Error, false);
        read.is_ok()
    };
    let scheduled = event(SCHEDULED_EVENT_SAMPLE);
    let (sweep, read_first) = tokio::join!(handler.handle_event(&scheduled), released_after_reads);
    assert!(read_first, "the COMPLETE jobs' logs waited for the ERROR query's answer");
    assert!(matches!(sweep, Ok(Outcome::Swept { logs_attached: 3, .. })), "{sweep:?}");
    assert!(attached("job-error-1"), "the held status's job is read once its query answers");
}
