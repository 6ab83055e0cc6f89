//! The monitor function against moto's server: jobs launched by the real submit path are driven
//! by EMR Serverless state-change events (and the reconciliation sweep) to their final status,
//! with driver logs from CloudWatch Logs, the failure reason, the model result and outputs.

use chrono::{Duration, Utc};
use integration_tests::*;
use monitor::handler::Outcome;
use shared::outcome::job_run::IgnoredReason;
use serde_json::{json, Value};

const LOG_GROUP: &str = "/aws/emr-serverless";

/// A job launched through the submit handler: (job id, application id, run id).
async fn launched_job(env: &TestEnv, job_type: &str, customize: impl FnOnce(&mut Value)) -> (String, String, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let mut job = created_job(&id, job_type);
    job["outputData"] = json!([
        { "name": "scored", "assetType": "EXTERNAL_FILE", "fileUrl": format!("s3://{}/output/{id}/scored/", env.model_bucket) },
        { "name": "never-written", "assetType": "EXTERNAL_FILE", "fileUrl": format!("s3://{}/output/{id}/missing.csv", env.model_bucket) }
    ]);
    customize(&mut job);
    env.put_job(&job).await;
    let response = env.submit_handler().await.handle_batch(env.insert_batch().await, &submit_invocation()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let row = env.job(&id).await.unwrap();
    let app = row["emrApplicationId"].as_str().expect("launched").to_string();
    let run = row["sparkApplicationId"].as_str().expect("launched").to_string();
    (id, app, run)
}

fn log_stream(id: &str, app: &str, run: &str, stream: &str) -> String {
    format!("{id}/applications/{app}/jobs/{run}/SPARK_DRIVER/{stream}")
}

fn statuses(job: &Value) -> Vec<(String, String)> {
    job["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap_or("").to_string(), e["emrState"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn a_successful_run_ends_complete_with_logs_result_and_outputs() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_TEST_JOB", |_| {}).await;
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stdout"), ["[ModelOpPySparkDriver] calling metrics".to_string(), "rows: 20".to_string()])
        .await;
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stderr"), ["WARN NativeCodeLoader: no native-hadoop".to_string()]).await;
    let result = json!({ "jobId": id, "jobType": "MODEL_BATCH_TEST_JOB", "function": "metrics", "result": [{ "rowCount": 20, "meanScore": 14.075 }] });
    env.put_object(&env.bucket, &format!("modelop-spark-serverless/{id}/results/result.json"), &result.to_string()).await;
    env.put_object(&env.model_bucket, &format!("output/{id}/scored/part-00000.csv"), "id,score\n1,2.5\n").await;

    let monitor = env.monitor_handler().await;
    for state in ["SUBMITTED", "SCHEDULED", "RUNNING", "SUCCESS"] {
        monitor.handle_event(&state_change_event(&app, &run, Some(&id), state)).await.expect(state);
    }

    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "COMPLETE");
    assert_eq!(job["emrState"], "SUCCESS");
    assert_eq!(
        statuses(&job),
        pairs(&[("WAITING", ""), ("WAITING", "SUBMITTED"), ("WAITING", "SCHEDULED"), ("RUNNING", "RUNNING"), ("COMPLETE", "SUCCESS")])
    );
    let logs = &job["driverLogs"];
    assert_eq!(logs["stdout"], "[ModelOpPySparkDriver] calling metrics\nrows: 20\n");
    assert_eq!(logs["stderr"], "WARN NativeCodeLoader: no native-hadoop\n");
    assert_eq!(logs["truncated"], false);
    assert_eq!(logs["logGroupName"], LOG_GROUP);
    assert_eq!(logs["logStreamNamePrefix"], format!("{id}/applications/{app}/jobs/{run}/"));
    assert_eq!(job["modelResult"], result);
    assert_eq!(
        job["outputFiles"],
        json!([
            { "name": "scored", "fileUrl": format!("s3://{}/output/{id}/scored/", env.model_bucket), "exists": true },
            { "name": "never-written", "fileUrl": format!("s3://{}/output/{id}/missing.csv", env.model_bucket), "exists": false }
        ])
    );
    assert!(job.get("errorMessage").is_none());

    // ModelOp's own fields: epoch-millisecond times in order, and the driver's output in jobMessages.
    let (wait, started, ended) = (job["jobWaitTime"].as_i64().unwrap(), job["jobRunTime"].as_i64().unwrap(), job["jobEndTime"].as_i64().unwrap());
    assert!(wait <= started && started <= ended && ended - wait < 60_000, "{wait} {started} {ended}");
    let messages: Vec<&str> = job["jobMessages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let texts: Vec<&str> = messages.iter().map(|m| m.split_once("] ").map(|(_, text)| text).unwrap_or(m)).collect();
    assert!(texts[0].starts_with(&format!("EMR Serverless job run {run} started in application {app}")), "{messages:?}");
    assert!(texts[1].starts_with("the run may touch only its own S3 locations and logs"), "{messages:?}");
    assert_eq!(texts[2..], [format!("EMR Serverless job run {run} ended SUCCESS").as_str(), "[ModelOpPySparkDriver] calling metrics", "rows: 20"]);
    let stamp = regex_lite_stamp(messages[1]);
    assert!(stamp, "ModelOp's 'YYYY/M/D HH:MM:SS [level] text' form: {}", messages[1]);
}

/// `2026/11/29 20:15:04 [info] ...`: the form of ModelOp's stored jobMessages.
fn regex_lite_stamp(message: &str) -> bool {
    let Some((date, rest)) = message.split_once(' ') else { return false };
    let Some((time, rest)) = rest.split_once(' ') else { return false };
    let date_ok = date.split('/').count() == 3 && date.split('/').all(|p| p.parse::<u32>().is_ok());
    let time_ok = time.split(':').count() == 3 && time.split(':').all(|p| p.len() == 2 && p.parse::<u32>().is_ok());
    date_ok && time_ok && (rest.starts_with("[info] ") || rest.starts_with("[warning] ") || rest.starts_with("[error] "))
}

#[tokio::test]
async fn file_outputs_come_back_into_modelops_output_data() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |job| {
        job["outputData"] = json!([
            { "assetType": "EXTERNAL_FILE", "fileUrl": format!("s3a://{}/output/scored/", env.model_bucket) },
            { "assetType": "FILE", "filename": "test_results.json", "fileFormat": "JSON", "assetRole": "TEST_DATA" },
            { "assetType": "FILE", "filename": "as-folder.json" }
        ]);
    })
    .await;
    let staged = format!("modelop-spark-serverless/{id}/outputs/");
    env.put_object(&env.bucket, &format!("{staged}test_results.json"), "{\"symbol\": \"A\"}\n").await;
    env.put_object(&env.bucket, &format!("{staged}as-folder.json/part-00000.json"), "{}\n").await;
    env.put_object(&env.model_bucket, "output/scored/part-00000.csv", "id\n1\n").await;

    env.monitor_handler().await.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "COMPLETE");
    let written = &job["outputData"][1];
    assert_eq!(written["fileContent"], "eyJzeW1ib2wiOiAiQSJ9Cg==", "base64 of what the model wrote");
    assert_eq!(written["fileSize"], 16);
    assert_eq!((written["assetType"].as_str(), written["assetRole"].as_str()), (Some("FILE"), Some("TEST_DATA")), "the rest as ModelOp wrote it");
    assert!(job["outputData"][2].get("fileContent").is_none());
    let messages = job["jobMessages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m.as_str().unwrap().contains("[warning] FILE output \"as-folder.json\"") && m.as_str().unwrap().ends_with("the model wrote a folder there, not one file")),
        "{messages:?}"
    );
    let urls: Vec<_> = job["outputFiles"].as_array().unwrap().iter().map(|o| (o["fileUrl"].as_str().unwrap().to_string(), o["exists"].as_bool().unwrap())).collect();
    let staging = format!("s3://{}/{staged}", env.bucket);
    assert_eq!(
        urls,
        [
            (format!("s3://{}/output/scored/", env.model_bucket), true),
            (format!("{staging}test_results.json"), true),
            (format!("{staging}as-folder.json"), true)
        ]
    );
}

#[tokio::test]
async fn a_retried_runs_log_prefix_leads_to_every_attempt() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stdout"), ["attempt 1 output".to_string()]).await;
    let second = format!("{id}/applications/{app}/jobs/{run}/attempts/2/SPARK_DRIVER/stdout");
    env.put_driver_log(LOG_GROUP, &second, ["attempt 2 output".to_string()]).await;
    env.set_run_attempt(&app, &run, "SUCCESS", 2);

    env.monitor_handler().await.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    let logs = &env.job(&id).await.unwrap()["driverLogs"];
    assert_eq!(logs["stdout"], "attempt 2 output\n", "the tail is the last attempt's");
    assert_eq!(logs["attempt"], 2);
    let prefix = logs["logStreamNamePrefix"].as_str().unwrap();
    assert_eq!(prefix, format!("{id}/applications/{app}/jobs/{run}/"));
    for stream in [log_stream(&id, &app, &run, "stdout"), second] {
        assert!(stream.starts_with(prefix), "{stream} is under the prefix on the row");
    }
    // No Retry event reached the monitor: ListJobRunAttempts gives both attempts.
    let job = env.job(&id).await.unwrap();
    let attempts: Vec<(Option<i64>, Option<&str>, bool)> =
        job["attempts"].as_array().unwrap().iter().map(|a| (a["attempt"].as_i64(), a["state"].as_str(), a["startedAt"].is_string())).collect();
    assert_eq!(attempts, [(Some(1), Some("FAILED"), true), (Some(2), Some("SUCCESS"), true)], "{:#}", job["attempts"]);
    let provenance = &job["provenance"];
    assert_eq!((provenance["attempts"].as_i64(), provenance["executionTimeoutMinutes"].as_i64()), (Some(2), Some(720)), "{provenance:#}");
    assert!(provenance["releaseLabel"].as_str().is_some_and(|l| l.starts_with("emr-")), "{provenance:#}");
    assert!(provenance["queuedDurationMilliseconds"].is_i64(), "{provenance:#}");
}

#[tokio::test]
async fn a_run_emr_cancelled_for_its_execution_timeout_ends_in_error() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    // The emulator's (ASSUMED) stateDetails of a run its execution timeout cancelled; 720 is
    // GetJobRun's executionTimeoutMinutes when StartJobRun set none.
    env.set_run_state(&app, &run, "CANCELLED", Some("Job run timed out: it ran longer than its execution timeout of 720 minutes and was cancelled."));
    env.monitor_handler().await.handle_event(&state_change_event(&app, &run, Some(&id), "CANCELLED")).await.unwrap();
    let job = env.job(&id).await.unwrap();
    assert_eq!((job["jobStatus"].as_str(), job["emrState"].as_str()), (Some("ERROR"), Some("CANCELLED")));
    let message = job["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {id}: EMR Serverless job run CANCELLED: the run exceeded its execution timeout of 720 minutes")), "{message}");
    assert_eq!(job["failure"]["class"], "TIMEOUT", "{:#}", job["failure"]);
}

#[tokio::test]
async fn a_failed_run_ends_in_error_with_emrs_reason_and_the_traceback() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.set_run_state(&app, &run, "FAILED", Some("Job failed, please check complete logs in configured logging destination."));
    let traceback = [
        "Traceback (most recent call last):",
        "  File \"spark_sample_model.py\", line 42, in action",
        "ValueError: column x3 not found",
    ];
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stderr"), traceback.iter().map(|l| l.to_string())).await;

    let outcome = env.monitor_handler().await.handle_event(&state_change_event(&app, &run, Some(&id), "FAILED")).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "ERROR");
    let message = job["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {id}: EMR Serverless job run FAILED: Job failed, please check complete logs")), "{message}");
    assert!(message.ends_with("ValueError: column x3 not found"), "{message}");
    assert!(job.get("modelResult").is_none(), "no result for a failed run");
    assert_eq!(job["driverLogs"]["stdout"], "", "a stream that does not exist is not a failure");
    let last = job["jobMessages"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    assert!(last.contains("[error] job ") && last.ends_with("ValueError: column x3 not found"), "{last}");
    assert!(job["jobEndTime"].as_i64().is_some() && job.get("jobRunTime").is_none(), "it never ran: no jobRunTime");
}

#[tokio::test]
async fn late_repeated_and_out_of_order_events_change_nothing() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    let monitor = env.monitor_handler().await;
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "RUNNING")).await.unwrap();
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    let done = env.job(&id).await.unwrap();
    for state in ["RUNNING", "SUCCESS", "SCHEDULED", "FAILED", "CANCELLED", "HIBERNATING"] {
        let outcome = monitor.handle_event(&state_change_event(&app, &run, Some(&id), state)).await.unwrap();
        assert!(matches!(outcome, Outcome::Ignored { .. }), "{state}: {outcome:?}");
    }
    assert_eq!(env.job(&id).await.unwrap(), done, "a final job never changes");

    // Before the end: an older state after a newer one is ignored too.
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "RUNNING")).await.unwrap();
    let running = env.job(&id).await.unwrap();
    for state in ["SCHEDULED", "SUBMITTED", "RUNNING"] {
        monitor.handle_event(&state_change_event(&app, &run, Some(&id), state)).await.unwrap();
    }
    assert_eq!(env.job(&id).await.unwrap(), running);
}

#[tokio::test]
async fn unknown_cancelling_and_retry_events_are_recorded_without_moving_the_status() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    let monitor = env.monitor_handler().await;
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "RUNNING")).await.unwrap();
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "HIBERNATING")).await.unwrap();
    // An operator sees the raw state on the row; the forward-only emrState keeps the last known one.
    let suspended = env.job(&id).await.unwrap();
    assert_eq!((suspended["emrState"].as_str(), suspended["emrLatestState"].as_str()), (Some("RUNNING"), Some("HIBERNATING")));
    let mut retry = state_change_event(&app, &run, Some(&id), "RUNNING");
    retry["detail-type"] = json!("EMR Serverless Job Run Retry");
    retry["detail"].as_object_mut().unwrap().remove("state");
    retry["detail"]["newAttempt"] = json!(2);
    retry["detail"]["previousAttempt"] = json!(1);
    monitor.handle_event(&retry).await.unwrap();
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "CANCELLING")).await.unwrap();
    for detail_type in ["EMR Serverless Job Resource Utilization Update", "EMR Serverless Application State Change"] {
        let mut other = state_change_event(&app, &run, Some(&id), "STARTED");
        other["detail-type"] = json!(detail_type);
        assert!(matches!(monitor.handle_event(&other).await.unwrap(), Outcome::Ignored { .. }));
    }
    env.set_run_state(&app, &run, "CANCELLED", Some("Job run cancelled by user"));
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "CANCELLED")).await.unwrap();

    let job = env.job(&id).await.unwrap();
    assert_eq!(
        statuses(&job)[2..],
        pairs(&[
            ("RUNNING", "RUNNING"),
            ("RUNNING", "HIBERNATING"),
            ("RUNNING", "RETRY attempt 2"),
            ("RUNNING", "CANCELLING"),
            ("CANCELLED", "CANCELLED")
        ])[..]
    );
    assert_eq!(job["jobStatus"], "CANCELLED");
    assert_eq!((job["emrState"].as_str(), job["emrLatestState"].as_str()), (Some("CANCELLED"), Some("CANCELLED")));
    assert!(job["errorMessage"].as_str().unwrap().contains("Job run cancelled by user"));
    assert!(job.get("failure").is_none(), "a cancelled job has no failure");
    assert_eq!(job["attempts"][1]["attempt"], 2, "the Retry event's attempt: {:#}", job["attempts"]);
}

#[tokio::test]
async fn an_event_before_the_run_id_is_recorded_finds_the_job_through_the_run() {
    let env = TestEnv::new().await;
    let id = uuid::Uuid::new_v4().to_string();
    env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
    // Submit has claimed the job and started the run, but not yet recorded it.
    env.update_job(&id, "SET jobStatus = :w", json!({ ":w": "WAITING" })).await;
    let (app, run) = env.start_run_directly(&env.app_name, &id).await;

    // No jobRunName in the event: the index has nothing yet, GetJobRun's name says which job.
    let outcome = env.monitor_handler().await.handle_event(&state_change_event(&app, &run, None, "RUNNING")).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "RUNNING");
    assert_eq!(job["sparkApplicationId"], run.as_str(), "the run id is filled in");
    assert_eq!(job["emrApplicationId"], app.as_str());

    // Later events without a name go through the bySparkApplicationId index.
    env.monitor_handler().await.handle_event(&state_change_event(&app, &run, None, "SUCCESS")).await.unwrap();
    assert_eq!(env.job(&id).await.unwrap()["jobStatus"], "COMPLETE");
}

fn retry_event(app: &str, run: &str, new_attempt: i64) -> Value {
    let mut retry = state_change_event(app, run, None, "RUNNING");
    retry["detail-type"] = json!("EMR Serverless Job Run Retry");
    retry["detail"].as_object_mut().unwrap().remove("state");
    retry["detail"]["previousAttempt"] = json!(new_attempt - 1);
    retry["detail"]["previousAttemptState"] = json!("FAILED");
    retry["detail"]["newAttempt"] = json!(new_attempt);
    retry
}

#[tokio::test]
async fn a_retry_event_is_recorded_once_in_any_order_and_however_often_delivered() {
    let env = TestEnv::new().await;
    let id = uuid::Uuid::new_v4().to_string();
    env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
    // Submit has claimed the job and started the run, but not yet recorded it.
    env.update_job(&id, "SET jobStatus = :w", json!({ ":w": "WAITING" })).await;
    let (app, run) = env.start_run_directly(&env.app_name, &id).await;
    let monitor = env.monitor_handler().await;

    // Attempt 3's Retry arrives first, before submit recorded the run; then attempt 2's, twice.
    let outcome = monitor.handle_event(&retry_event(&app, &run, 3)).await.unwrap();
    assert_eq!(outcome, Outcome::RetryRecorded { job_id: id.clone() }, "not dropped as late");
    assert_eq!(monitor.handle_event(&retry_event(&app, &run, 2)).await.unwrap(), Outcome::RetryRecorded { job_id: id.clone() });
    let recorded = env.job(&id).await.unwrap();
    for event in [retry_event(&app, &run, 2), retry_event(&app, &run, 3)] {
        let again = monitor.handle_event(&event).await.unwrap();
        assert!(matches!(&again, Outcome::Ignored { reason: IgnoredReason::Duplicate, .. }), "{again:?}");
    }
    assert_eq!(env.job(&id).await.unwrap(), recorded, "redeliveries change nothing");
    assert_eq!((recorded["sparkApplicationId"].as_str(), recorded["emrApplicationId"].as_str()), (Some(run.as_str()), Some(app.as_str())));
    let attempts: Vec<(i64, Option<&str>)> =
        recorded["attempts"].as_array().unwrap().iter().map(|a| (a["attempt"].as_i64().unwrap(), a["state"].as_str())).collect();
    assert_eq!(attempts, vec![(1, Some("FAILED")), (2, Some("FAILED")), (3, None)]);
    assert_eq!(statuses(&recorded), pairs(&[("WAITING", "RETRY attempt 3"), ("WAITING", "RETRY attempt 2")]));
}

#[tokio::test]
async fn runs_that_are_not_ours_deleted_rows_and_malformed_events_are_acknowledged() {
    let env = TestEnv::new().await;
    let monitor = env.monitor_handler().await;
    let (app, stranger) = env.start_run_directly(&env.app_name, "some-other-teams-run").await;
    assert_eq!(monitor.handle_event(&state_change_event(&app, &stranger, Some("some-other-teams-run"), "RUNNING")).await.unwrap(), Outcome::ignored(IgnoredReason::NotOurs, "not our job run"));

    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.dynamodb.delete_item().table_name(&env.table).key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone())).send().await.unwrap();
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "RUNNING")).await.unwrap();
    assert!(env.job(&id).await.is_none(), "an update never recreates a deleted row");

    let mut no_run_id = state_change_event(&app, &run, Some(&id), "RUNNING");
    no_run_id["detail"].as_object_mut().unwrap().remove("jobRunId");
    for malformed in [no_run_id, json!({ "detail-type": "EMR Serverless Job Run State Change", "detail": "oops" }), json!([1, 2]), json!(null)] {
        let outcome = monitor.handle_event(&malformed).await.expect("acknowledged, not retried");
        assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_huge_log_stream_is_tail_read_within_the_bound() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    // 24 MB of driver output: 100,000 lines of 240 bytes.
    let lines = (0..100_000).map(|i| format!("{i:08} {}", "x".repeat(231)));
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stdout"), lines).await;
    env.put_object(&env.bucket, &format!("modelop-spark-serverless/{id}/results/result.json"), "{\"result\": 1}").await;

    let mut config = env.monitor_config();
    config.log_tail_bytes = 8 * 1024;
    env.monitor_handler_with(config).await.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    let job = env.job(&id).await.unwrap();
    let stdout = job["driverLogs"]["stdout"].as_str().unwrap();
    assert!(stdout.len() <= 8 * 1024, "{} bytes kept", stdout.len());
    assert!(stdout.len() > 7 * 1024, "the bound is used: {} bytes", stdout.len());
    assert!(stdout.ends_with(&format!("00099999 {}\n", "x".repeat(231))), "the end of the stream is kept");
    assert!(stdout.starts_with("000999"), "whole lines only: {}", &stdout[..20]);
    assert_eq!(job["driverLogs"]["truncated"], true);
}

#[tokio::test]
async fn a_result_larger_than_the_bound_is_stored_as_a_pointer() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_TEST_JOB", |_| {}).await;
    let big = json!({ "result": "r".repeat(100_000) }).to_string();
    let key = format!("modelop-spark-serverless/{id}/results/result.json");
    env.put_object(&env.bucket, &key, &big).await;
    env.monitor_handler().await.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["modelResult"], json!({ "truncated": true, "sizeBytes": big.len(), "resultUri": format!("s3://{}/{key}", env.bucket) }));
}

#[tokio::test]
async fn the_sweep_reconciles_lost_events_and_ends_jobs_stuck_without_a_run() {
    let env = TestEnv::new().await;
    let old = shared::job::record::timestamp(Utc::now() - Duration::hours(12));
    // Launched, run finished, but no event ever arrived.
    let (lost, lost_app, lost_run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.set_run_state(&lost_app, &lost_run, "SUCCESS", None);
    env.update_job(&lost, "SET updatedAt = :t", json!({ ":t": old })).await;
    // Launched and failed on EMR; the job still says RUNNING.
    let (failed, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.set_run_state(&app, &run, "FAILED", Some("Driver exited with code 1"));
    env.update_job(&failed, "SET updatedAt = :t, jobStatus = :r", json!({ ":t": old, ":r": "RUNNING" })).await;
    // Recently updated: the sweep leaves it to its events.
    let (fresh, _, _) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    // Claimed long ago, never launched, lease long expired: a submit that died for good.
    let stuck = uuid::Uuid::new_v4().to_string();
    let mut job = created_job(&stuck, "MODEL_BATCH_JOB");
    job["jobStatus"] = json!("WAITING");
    job["updatedAt"] = json!(old);
    job["submitLease"] = json!({ "owner": "gone", "claimedAt": old, "expiresAt": old });
    env.put_job(&job).await;
    // Claimed long ago but its lease is still live (a slow retry): left alone.
    let leased = uuid::Uuid::new_v4().to_string();
    let mut job = created_job(&leased, "MODEL_BATCH_JOB");
    job["jobStatus"] = json!("WAITING");
    job["updatedAt"] = json!(old);
    job["submitLease"] = json!({ "owner": "alive", "claimedAt": old, "expiresAt": shared::job::record::timestamp(Utc::now() + Duration::minutes(5)) });
    env.put_job(&job).await;

    let mut config = env.monitor_config();
    config.stuck_waiting_age = Duration::hours(6);
    let outcome = env.monitor_handler_with(config).await.sweep(Utc::now(), None).await.unwrap();
    assert_eq!(outcome, Outcome::Swept { checked: 4, applied: 2, ended_stuck: 1, usage_final: 0, logs_attached: 0 });

    assert_eq!(env.job(&lost).await.unwrap()["jobStatus"], "COMPLETE");
    let failed_job = env.job(&failed).await.unwrap();
    assert_eq!(failed_job["jobStatus"], "ERROR");
    assert!(failed_job["errorMessage"].as_str().unwrap().contains("Driver exited with code 1"));
    assert_eq!(env.job(&fresh).await.unwrap()["jobStatus"], "WAITING");
    let stuck_job = env.job(&stuck).await.unwrap();
    assert_eq!(stuck_job["jobStatus"], "ERROR");
    assert!(stuck_job["errorMessage"].as_str().unwrap().contains("no EMR Serverless job run was recorded within 360 minutes"));
    assert!(stuck_job.get("submitLease").is_none());
    assert_eq!(env.job(&leased).await.unwrap()["jobStatus"], "WAITING");

    // The scheduled event runs the same sweep; nothing is left to do.
    let scheduled = json!({ "version": "0", "id": "s-1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {} });
    let again = env.monitor_handler().await.handle_event(&scheduled).await.unwrap();
    assert!(matches!(again, Outcome::Swept { applied: 0, ended_stuck: 0, .. }), "{again:?}");
}

/// A monitor handler whose S3 or CloudWatch Logs client goes to `s3_endpoint` / `logs_endpoint`
/// instead of moto (an address nobody answers at, or the quota front).
async fn monitor_with(env: &TestEnv, s3_endpoint: Option<&str>, logs_endpoint: Option<&str>) -> monitor::MonitorHandler {
    let config = sdk_config(&env.endpoint).await;
    let one_try = aws_config::retry::RetryConfig::standard().with_max_attempts(1);
    let s3 = match s3_endpoint {
        Some(url) => aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).endpoint_url(url).force_path_style(true).retry_config(one_try.clone()).build()),
        None => env.s3.clone(),
    };
    let logs = match logs_endpoint {
        Some(url) => aws_sdk_cloudwatchlogs::Client::from_conf(aws_sdk_cloudwatchlogs::config::Builder::from(&config).endpoint_url(url).build()),
        None => env.logs.clone(),
    };
    monitor::MonitorHandler::new(
        env.service_config(),
        env.monitor_config(),
        std::sync::Arc::new(shared::aws::dynamodb::DynamoJobStore::new(env.dynamodb.clone(), env.table.clone())),
        std::sync::Arc::new(shared::aws::s3::S3ObjectStore::new(s3)),
        std::sync::Arc::new(shared::aws::emr::EmrServerlessClient::new(env.emr.clone())),
        std::sync::Arc::new(shared::aws::logs::CloudWatchLogReader::new(logs)),
    )
}

/// Nothing listens there.
const NOBODY: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn transient_failures_fail_the_invocation_so_eventbridge_retries() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    // S3 unreachable while the final report is gathered: the model's result cannot be read (and
    // cleanup deletes it once the status is final), so the event is retried.
    let err = monitor_with(&env, Some(NOBODY), None).await.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.expect_err("retried");
    assert!(err.to_string().starts_with(&format!("job {id}: read model result: S3 HeadObject failed")), "{err}");
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "WAITING", "the final status is not written without the result");

    // The retried event, with S3 back, completes the job.
    env.monitor_handler().await.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    assert_eq!(env.job(&id).await.unwrap()["jobStatus"], "COMPLETE");
}

/// CloudWatch Logs is another matter: the logs stay there after cleanup, so the final status does
/// not wait for them. Unreachable, they are marked unavailable; the sweep attaches them later.
#[tokio::test]
async fn unreadable_logs_do_not_hold_the_final_status_and_the_sweep_attaches_them() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stdout"), ["rows: 20".to_string()]).await;
    env.set_run_state(&app, &run, "FAILED", Some("Job failed, ExitCode: 1"));
    env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stderr"), ["java.lang.OutOfMemoryError: Java heap space".to_string()]).await;

    let outcome = monitor_with(&env, None, Some(NOBODY)).await.handle_event(&state_change_event(&app, &run, Some(&id), "FAILED")).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "ERROR");
    let unavailable = &job["driverLogs"]["unavailable"];
    assert!(unavailable["reason"].as_str().unwrap().contains("CloudWatch Logs GetLogEvents failed"), "{unavailable:#}");
    assert_eq!(unavailable["refinesFailure"], true);

    let swept = env.monitor_handler().await.sweep(Utc::now(), None).await.unwrap();
    assert!(matches!(swept, Outcome::Swept { logs_attached: 1, .. }), "{swept:?}");
    let after = env.job(&id).await.unwrap();
    assert_eq!((after["jobStatus"].as_str(), after["statusHistory"].as_array().map(Vec::len)), (Some("ERROR"), job["statusHistory"].as_array().map(Vec::len)));
    assert!(after["driverLogs"].get("unavailable").is_none(), "{:#}", after["driverLogs"]);
    assert_eq!((after["driverLogs"]["stdout"].as_str(), after["failure"]["class"].as_str()), (Some("rows: 20\n"), Some("OUT_OF_MEMORY")));
}

/// A completion storm against CloudWatch Logs' GetLogEvents quota (enforced by
/// `tests/emulator/logs_quota.py` in front of moto): every job's final status is written as its
/// event arrives, whatever the quota; the logs the quota refused are marked unavailable and the
/// sweep attaches them, paced, none lost.
#[tokio::test]
async fn a_completion_storm_under_the_log_quota_ends_every_job_at_once_and_attaches_every_log_later() {
    const JOBS: usize = 8;
    let env = TestEnv::new().await;
    let front = logs_quota_front(5.0);
    let mut jobs = Vec::new();
    for _ in 0..JOBS {
        let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
        env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stdout"), [format!("scored {id}")]).await;
        env.put_driver_log(LOG_GROUP, &log_stream(&id, &app, &run, "stderr"), [format!("WARN {id}")]).await;
        env.set_run_state(&app, &run, "SUCCESS", None);
        jobs.push((id, app, run));
    }
    let monitor = monitor_with(&env, None, Some(&front)).await;

    // Every run ends at once: each event's final status is written at once.
    let started = std::time::Instant::now();
    let monitor = &monitor;
    let events = jobs.iter().map(|(id, app, run)| {
        let event = state_change_event(app, run, Some(id), "SUCCESS");
        async move { monitor.handle_event(&event).await }
    });
    for outcome in futures::future::join_all(events).await {
        assert!(matches!(outcome, Ok(Outcome::Applied { .. })), "{outcome:?}");
    }
    let took = started.elapsed();
    let mut unavailable = 0;
    for (id, ..) in &jobs {
        let job = env.job(id).await.unwrap();
        assert_eq!(job["jobStatus"], "COMPLETE", "{id}");
        unavailable += usize::from(job["driverLogs"].get("unavailable").is_some());
    }
    let (_, throttled) = logs_quota_counts(&front);
    assert!(throttled > 0 && unavailable > 0, "the quota refused some reads: {throttled} throttled, {unavailable} unavailable");
    assert!(took < std::time::Duration::from_secs(5), "no final status waited on the quota: {took:?}");

    // The sweep attaches them all, under the quota; each pass is bounded, so a few may be needed.
    let mut attached = 0;
    for _ in 0..5 {
        if let Outcome::Swept { logs_attached, .. } = monitor.sweep(Utc::now(), None).await.unwrap() {
            attached += logs_attached;
        }
        if attached == unavailable {
            break;
        }
    }
    assert_eq!(attached, unavailable);
    for (id, ..) in &jobs {
        let job = env.job(id).await.unwrap();
        assert_eq!(job["jobStatus"], "COMPLETE");
        assert!(job["driverLogs"].get("unavailable").is_none(), "{id}: {:#}", job["driverLogs"]);
        assert_eq!((job["driverLogs"]["stdout"].as_str(), job["driverLogs"]["stderr"].as_str()), (Some(format!("scored {id}\n").as_str()), Some(format!("WARN {id}\n").as_str())));
    }
}

fn minutes_ago(minutes: i64) -> String {
    (Utc::now() - Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn usage(job: &Value) -> (Option<bool>, Option<&str>, Option<&str>) {
    (job["resourceUsage"]["final"].as_bool(), job["resourceUsage"]["asOf"].as_str(), job["cost"]["basis"].as_str())
}

#[tokio::test]
async fn utilization_events_keep_usage_current_in_order_and_the_final_one_completes_it() {
    let env = TestEnv::new().await;
    let (id, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    let monitor = env.monitor_handler().await;
    env.set_run_state(&app, &run, "RUNNING", None);
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "RUNNING")).await.unwrap();
    let (t1, t2) = (minutes_ago(2), minutes_ago(1));
    let first = env.utilization_event(&app, &run, json!({ "final": false, "calculatedTo": t1 }));
    let second = env.utilization_event(&app, &run, json!({ "final": false, "calculatedTo": t2 }));
    assert_eq!(first["detail-type"], "EMR Serverless Job Resource Utilization Update");
    // (event, outcome): a duplicate and a late event change nothing.
    let steps = [
        (&first, Outcome::UsageRecorded { job_id: id.clone(), is_final: false }),
        (&second, Outcome::UsageRecorded { job_id: id.clone(), is_final: false }),
        (&first, Outcome::ignored(IgnoredReason::Late, "usage not newer")),
        (&second, Outcome::ignored(IgnoredReason::Late, "usage not newer")),
    ];
    for (step, (event, outcome)) in steps.into_iter().enumerate() {
        assert_eq!(monitor.handle_event(event).await.unwrap(), outcome, "step {step}");
    }
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "RUNNING", "usage never moves the status");
    assert_eq!(usage(&job).0, Some(false));
    assert_eq!(usage(&job).1, Some(t2.as_str()));

    // EMR has not billed the run when it ends: the job ends, its usage is not final.
    env.set_billing_pending(&app, &run, true, false);
    env.set_run_state(&app, &run, "SUCCESS", None);
    monitor.handle_event(&state_change_event(&app, &run, Some(&id), "SUCCESS")).await.unwrap();
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "COMPLETE");
    assert_eq!((usage(&job).0, usage(&job).2), (Some(false), Some("used")), "zero billed figures are never final: {:#}", job["resourceUsage"]);

    // Then the final event: billed figures and a cost, final; nothing replaces them.
    env.set_billing_pending(&app, &run, false, false);
    let last = env.utilization_event(&app, &run, json!({ "final": true }));
    assert_eq!(monitor.handle_event(&last).await.unwrap(), Outcome::UsageRecorded { job_id: id.clone(), is_final: true });
    let late = env.utilization_event(&app, &run, json!({ "final": false, "calculatedTo": minutes_ago(-5) }));
    assert_eq!(monitor.handle_event(&late).await.unwrap(), Outcome::ignored(IgnoredReason::Late, "usage not newer"));
    let job = env.job(&id).await.unwrap();
    assert_eq!((usage(&job).0, usage(&job).2), (Some(true), Some("billed")));
    assert!(job["resourceUsage"]["billed"]["vCPUHour"].as_f64().unwrap() > 0.0, "{:#}", job["resourceUsage"]);
    assert!(job["cost"]["amount"].as_f64().unwrap() > 0.0, "{:#}", job["cost"]);
    assert_eq!((job["cost"]["currency"].as_str(), job["cost"]["region"].as_str(), job["cost"]["architecture"].as_str()), (Some("USD"), Some("us-east-1"), Some("X86_64")));
    assert_eq!(job["jobStatus"], "COMPLETE");
}

#[tokio::test]
async fn the_sweep_completes_usage_whose_final_event_was_lost_and_a_final_event_before_the_end_stays() {
    let env = TestEnv::new().await;
    let monitor = env.monitor_handler().await;
    // Job 1: billed late, its final event lost: the sweep re-reads the run until the figures are in.
    let (lost, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.set_run_state(&app, &run, "RUNNING", None);
    env.set_billing_pending(&app, &run, true, false);
    env.set_run_state(&app, &run, "SUCCESS", None);
    monitor.handle_event(&state_change_event(&app, &run, Some(&lost), "SUCCESS")).await.unwrap();
    assert_eq!(usage(&env.job(&lost).await.unwrap()).0, Some(false));
    let sweep = monitor.sweep(Utc::now(), None).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { usage_final: 0, .. }), "still not billed: {sweep:?}");
    env.set_billing_pending(&app, &run, false, false);
    let sweep = monitor.sweep(Utc::now(), None).await.unwrap();
    assert!(matches!(sweep, Outcome::Swept { usage_final: 1, .. }), "{sweep:?}");
    let job = env.job(&lost).await.unwrap();
    assert_eq!((usage(&job).0, usage(&job).2), (Some(true), Some("billed")));
    assert!(job["resourceUsage"]["executionSeconds"].as_i64().is_some());

    // Job 2: the final utilization event is handled before the final state change.
    let (early, app, run) = launched_job(&env, "MODEL_BATCH_JOB", |_| {}).await;
    env.set_run_state(&app, &run, "RUNNING", None);
    env.set_run_state(&app, &run, "SUCCESS", None);
    let last = env.utilization_event(&app, &run, json!({ "final": true }));
    assert_eq!(monitor.handle_event(&last).await.unwrap(), Outcome::UsageRecorded { job_id: early.clone(), is_final: true });
    let before = env.job(&early).await.unwrap();
    assert_eq!((before["jobStatus"].as_str(), usage(&before).0), (Some("WAITING"), Some(true)));
    monitor.handle_event(&state_change_event(&app, &run, Some(&early), "SUCCESS")).await.unwrap();
    let after = env.job(&early).await.unwrap();
    assert_eq!(after["jobStatus"], "COMPLETE");
    assert_eq!((&after["resourceUsage"], &after["cost"]), (&before["resourceUsage"], &before["cost"]), "final usage stays as the final event left it");
}

/// The logs pass's query evaluates no more rows a page than the pass can read (DynamoDB's `Limit`:
/// "The maximum number of items to evaluate (not necessarily the number of matching items)",
/// Query API Reference), and pages on past rows its filter drops until it has them: a storm's
/// backlog is not read a 1 MB page at a time (moto took ~10 s to answer one such page under load).
#[tokio::test]
async fn jobs_awaiting_logs_asks_pages_of_what_it_can_use_and_pages_past_filtered_rows() {
    use shared::ports::MonitorStore;
    let env = TestEnv::new().await;
    // In the index's order (updatedAt): awaiting, attached, awaiting, awaiting, attached.
    let awaiting = [true, false, true, true, false];
    let mut ids = Vec::new();
    for (i, waits) in awaiting.into_iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        let mut job = created_job(&id, "MODEL_BATCH_JOB");
        job["jobStatus"] = json!("COMPLETE");
        job["updatedAt"] = json!(minutes_ago(10 - i as i64));
        job["driverLogs"] = json!({"stdout": "", "stderr": "", "truncated": false, "logGroupName": LOG_GROUP, "logStreamNamePrefix": format!("{id}/")});
        if waits {
            job["driverLogs"]["unavailable"] = json!({"reason": "throttled", "since": minutes_ago(10 - i as i64), "refinesFailure": false});
        }
        env.put_job(&job).await;
        ids.push(id);
    }
    let front = request_log_front(&env.endpoint);
    let store = shared::aws::dynamodb::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk_config(&front).await), env.table.clone());
    let jobs = store.jobs_awaiting_logs(shared::job::record::JobStatus::Complete, Utc::now() - Duration::hours(1), 2).await.unwrap();
    let found: Vec<&str> = jobs.iter().map(|job| job.id()).collect();
    assert_eq!(found, [ids[0].as_str(), ids[2].as_str()], "the two oldest awaiting, in the index's order");
    // The fields the pass reads are in the projection (LOGS_PASS_FIELDS); the job's model is not.
    for job in &jobs {
        assert!(job.is_ours() && job.status() == Some(shared::job::record::JobStatus::Complete), "{job:?}");
        let logs = job.driver_logs.as_ref().expect("driverLogs");
        assert!(logs.unavailable.is_some() && logs.log_stream_name_prefix == format!("{}/", job.id()), "{logs:?}");
        assert!(job.updated_at.is_some(), "{job:?}");
    }
    // Two rows a page: the first page held one awaiting row, the second the other; no third page.
    let queries = logged_requests(&front).into_iter().filter(|op| op == "Query").count();
    assert_eq!(queries, 2, "pages of at most 2 rows evaluated");
}
