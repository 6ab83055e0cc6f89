//! The cleanup function against moto's server: a job row moved into a final state, read back from
//! the table's stream, empties exactly that job's staging folder, records `cleanedAt`, cancels the
//! run of a job the user cancelled; a scheduled sweep removes orphaned folders. The last test
//! replays the `events/cleanup/` samples through the compiled binary.

use std::path::PathBuf;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use cleanup::handler::{CleanupResponse, RecordResult, Step};
use futures::stream::{self, StreamExt};
use integration_tests::*;
use serde_json::{json, Value};
use shared::config::CleanupConfig;

const PREFIX: &str = "modelop-spark-serverless/";

fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
    response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
}

fn folder(id: &str) -> String {
    format!("{PREFIX}{id}/")
}

/// A job of our runtime as submit leaves it once launched, in `status`.
fn launched_job(env: &TestEnv, id: &str, status: &str) -> Value {
    let mut job = created_job(id, "MODEL_BATCH_JOB");
    job["jobStatus"] = json!(status);
    job["stagingUri"] = json!(format!("s3://{}/{}", env.bucket, folder(id)));
    job["sparkApplicationId"] = json!(format!("run-{id}"));
    job["emrApplicationId"] = json!("00fnoapplication");
    job
}

/// Puts the files submit would have staged (plus results) into the job's folder.
async fn stage_files(env: &TestEnv, id: &str) {
    for name in ["ModelOpPySparkDriver.py", "job-metadata.json", "spark_sample_model.py", "results/result.json"] {
        env.put_object(&env.bucket, &format!("{}{name}", folder(id)), "x").await;
    }
}

/// Puts the rows, then returns the stream batch of the MODIFYs that move each job to its new status.
async fn transition_batch(env: &TestEnv, changes: &[(&Value, &str)]) -> Value {
    for (job, _) in changes {
        env.put_job(job).await;
    }
    env.new_stream_records().await; // the INSERTs are not the cleanup function's business
    for (job, status) in changes {
        env.update_job(job["id"].as_str().unwrap(), "SET jobStatus = :s", json!({ ":s": status })).await;
    }
    let records: Vec<Value> = env.new_stream_records().await.into_iter().filter(|r| r["eventName"] == "MODIFY").collect();
    assert_eq!(records.len(), changes.len());
    json!({ "Records": records })
}

async fn cleaned_at(env: &TestEnv, id: &str) -> Option<String> {
    env.job(id).await.and_then(|job| job["cleanedAt"].as_str().map(str::to_string))
}

#[tokio::test]
async fn final_transitions_empty_exactly_their_jobs_folders() {
    let env = TestEnv::new().await;
    // job-1's neighbours share its id as a prefix; only a trailing '/' tells them apart.
    let ids = ["job-1", "job-10", "job-1.v2", "job-2", "job-3"];
    for id in ids {
        stage_files(&env, id).await;
    }
    env.put_object(&env.bucket, &format!("{PREFIX}job-1"), "a key that is not in the folder").await;
    let (complete, error, running) = (launched_job(&env, "job-1", "RUNNING"), launched_job(&env, "job-2", "WAITING"), launched_job(&env, "job-3", "WAITING"));
    let (job10, job1v2) = (launched_job(&env, "job-10", "RUNNING"), launched_job(&env, "job-1.v2", "RUNNING"));
    env.put_job(&job10).await;
    env.put_job(&job1v2).await;
    let batch = transition_batch(&env, &[(&complete, "COMPLETE"), (&error, "ERROR"), (&running, "RUNNING")]).await;
    let before = env.all_staging_keys().await;

    let response = env.cleanup_handler().await.handle_batch(batch.clone()).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    let expected: Vec<String> = before.iter().filter(|k| !k.starts_with(&folder("job-1")) && !k.starts_with(&folder("job-2"))).cloned().collect();
    assert_eq!(env.all_staging_keys().await, expected, "only job-1/ and job-2/ are emptied");
    assert!(expected.contains(&format!("{PREFIX}job-1")) && expected.iter().any(|k| k.starts_with(&folder("job-10"))));
    assert_eq!(env.staged_keys("job-3").await.len(), 4, "WAITING -> RUNNING is not final");
    for id in ["job-1", "job-2"] {
        let at = cleaned_at(&env, id).await.unwrap_or_else(|| panic!("{id} has no cleanedAt"));
        assert_eq!(env.job(id).await.unwrap()["updatedAt"].as_str(), Some(at.as_str()));
    }
    for id in ["job-3", "job-10", "job-1.v2"] {
        assert_eq!(cleaned_at(&env, id).await, None, "{id}");
    }
}

#[tokio::test]
async fn a_large_folder_goes_in_one_call_per_thousand_objects() {
    let env = TestEnv::new().await;
    let id = "bulk-1";
    let keys: Vec<String> = (0..2_500).map(|i| format!("{}results/part-{i:05}.csv", folder(id))).collect();
    stream::iter(&keys).for_each_concurrent(32, |key| env.put_object(&env.bucket, key, "1")).await;
    stage_files(&env, "bulk-10").await;
    let job = launched_job(&env, id, "RUNNING");
    let batch = transition_batch(&env, &[(&job, "COMPLETE")]).await;

    let (s3, counter) = env.counted_s3();
    let handler = env.cleanup_handler_with(env.cleanup_config(), s3).await;
    let result = handler.handle_record(batch["Records"][0].clone()).await.expect("cleaned");

    assert_eq!(result, RecordResult::Cleaned { job_id: id.into(), deleted: 2_500, run_cancelled: false });
    assert!(env.staged_keys(id).await.is_empty());
    assert_eq!(env.staged_keys("bulk-10").await.len(), 4);
    assert_eq!(counter.count("ListObjectsV2"), 3, "ceil(2500 / 1000) pages");
    assert_eq!(counter.count("DeleteObjects"), 3, "ceil(2500 / 1000) batches");
    assert_eq!(counter.count("other"), 0);
}

#[tokio::test]
async fn a_second_delivery_and_an_empty_folder_are_successes() {
    let env = TestEnv::new().await;
    stage_files(&env, "job-1").await;
    let (staged, never_staged) = (launched_job(&env, "job-1", "RUNNING"), launched_job(&env, "job-2", "RUNNING"));
    let batch = transition_batch(&env, &[(&staged, "COMPLETE"), (&never_staged, "ERROR")]).await;
    let handler = env.cleanup_handler().await;

    let first = handler.handle_record(batch["Records"][0].clone()).await.expect("first delivery");
    let deleted = |r: &RecordResult| match r {
        RecordResult::Cleaned { deleted, .. } => *deleted,
        other => panic!("not cleaned: {other:?}"),
    };
    let counts: Vec<usize> = vec![deleted(&first), deleted(&handler.handle_record(batch["Records"][1].clone()).await.unwrap())];
    let mut sorted = counts.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 4], "one job had 4 files, the other none");

    // The whole batch again, and the same record twice within one batch.
    let mut doubled = batch.clone();
    doubled["Records"].as_array_mut().unwrap().push(batch["Records"][0].clone());
    for again in [&batch, &doubled] {
        let response = handler.handle_batch(again.clone()).await;
        assert!(failures(&response).is_empty(), "{response:?}");
    }
    assert_eq!(deleted(&handler.handle_record(batch["Records"][0].clone()).await.unwrap()), 0);
    assert!(env.all_staging_keys().await.is_empty());
    assert!(cleaned_at(&env, "job-1").await.is_some() && cleaned_at(&env, "job-2").await.is_some());
}

#[tokio::test]
async fn a_hostile_staging_uri_or_id_is_refused_and_nothing_is_deleted() {
    let env = TestEnv::new().await;
    for id in ["job-1", "job-10", "victim"] {
        stage_files(&env, id).await;
    }
    env.put_object(&env.model_bucket, &folder("job-1"), "same key, other bucket").await;
    env.put_object(&env.model_bucket, &format!("{}model.py", folder("job-1")), "x").await;
    let bucket = env.bucket.clone();
    let cases = [
        format!("s3://{bucket}/{PREFIX}"),
        format!("s3://{bucket}/{PREFIX}job-1"),
        format!("s3://{bucket}/{PREFIX}victim/"),
        format!("s3://{bucket}/{PREFIX}job-1/../victim/"),
        format!("s3://{bucket}/"),
        format!("s3://{}/{PREFIX}job-1/", env.model_bucket),
        "not a url".to_string(),
    ];
    let handler = env.cleanup_handler().await;
    let staging_before = env.all_staging_keys().await;
    for uri in &cases {
        let mut job = launched_job(&env, "job-1", "RUNNING");
        job["stagingUri"] = json!(uri);
        let batch = transition_batch(&env, &[(&job, "COMPLETE")]).await;
        let result = handler.handle_record(batch["Records"][0].clone()).await.expect("refusal is not retried");
        let RecordResult::Failed(err) = result else { panic!("{uri}: not refused: {result:?}") };
        assert_eq!(err.step, Step::CheckTarget, "{uri}");
        let message = err.to_string();
        assert!(message.starts_with("job job-1: check staging folder: refusing to delete") && message.contains(&format!("{uri:?}")), "{message}");
        assert!(failures(&handler.handle_batch(batch.clone()).await).is_empty(), "a refused record does not block the shard");
    }
    // An id that would climb out of the staging prefix.
    let mut dotdot = launched_job(&env, "..", "RUNNING");
    dotdot["stagingUri"] = json!(format!("s3://{bucket}/{PREFIX}"));
    let batch = transition_batch(&env, &[(&dotdot, "ERROR")]).await;
    let result = handler.handle_record(batch["Records"][0].clone()).await.unwrap();
    assert!(matches!(&result, RecordResult::Failed(e) if e.step == Step::CheckTarget && e.to_string().contains("'..'")), "{result:?}");

    assert_eq!(env.all_staging_keys().await, staging_before, "nothing deleted");
    let model_objects = env.s3.list_objects_v2().bucket(&env.model_bucket).send().await.unwrap();
    assert_eq!(model_objects.contents().len(), 2, "nothing deleted in the other bucket");
    assert_eq!(cleaned_at(&env, "job-1").await, None);
}

#[tokio::test]
async fn a_user_cancel_cancels_the_emr_run_then_cleans() {
    let env = TestEnv::new().await;
    let (app_id, cancelled_run) = env.start_run_directly(&env.app_name, "job-c").await;
    let (_, finished_run) = env.start_run_directly(&env.app_name, "job-f").await;
    let run_state = |run: String| {
        let (emr, app) = (env.emr.clone(), app_id.clone());
        async move { emr.get_job_run().application_id(app).job_run_id(run).send().await.unwrap().job_run.unwrap().state().as_str().to_string() }
    };
    assert_ne!(run_state(cancelled_run.clone()).await, "CANCELLED", "moto starts runs in another state");
    let before_finished = run_state(finished_run.clone()).await;

    let mut cancelled = launched_job(&env, "job-c", "RUNNING");
    cancelled["sparkApplicationId"] = json!(cancelled_run);
    cancelled["emrApplicationId"] = json!(app_id);
    let mut finished = launched_job(&env, "job-f", "RUNNING");
    finished["sparkApplicationId"] = json!(finished_run);
    finished["emrApplicationId"] = json!(app_id);
    stage_files(&env, "job-c").await;
    let batch = transition_batch(&env, &[(&cancelled, "CANCELLED"), (&finished, "COMPLETE")]).await;

    let handler = env.cleanup_handler().await;
    let mut results = Vec::new();
    for record in batch["Records"].as_array().unwrap() {
        results.push(handler.handle_record(record.clone()).await.expect("handled"));
    }
    assert!(results.contains(&RecordResult::Cleaned { job_id: "job-c".into(), deleted: 4, run_cancelled: true }), "{results:?}");
    assert!(results.contains(&RecordResult::Cleaned { job_id: "job-f".into(), deleted: 0, run_cancelled: false }), "{results:?}");
    assert_eq!(run_state(cancelled_run.clone()).await, "CANCELLED");
    assert_eq!(run_state(finished_run).await, before_finished, "a job that completed is not cancelled");
    assert!(env.staged_keys("job-c").await.is_empty());

    // Redelivery cancels again: CancelJobRun of a run that is already over is not an error.
    let response = handler.handle_batch(batch.clone()).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(run_state(cancelled_run).await, "CANCELLED");
}

#[tokio::test]
async fn the_orphan_sweep_deletes_folders_of_finished_or_missing_jobs_only() {
    let env = TestEnv::new().await;
    let rows = [("done-1", Some("COMPLETE")), ("failed-1", Some("ERROR")), ("live-1", Some("RUNNING")), ("wait-1", Some("WAITING")), ("gone-1", None)];
    for (id, status) in rows {
        stage_files(&env, id).await;
        if let Some(status) = status {
            env.put_job(&launched_job(&env, id, status)).await;
        }
    }
    let mut other_runtime = launched_job(&env, "other-1", "COMPLETE");
    other_runtime["runtimeType"] = json!("SPARK_RUNTIME");
    env.put_job(&other_runtime).await;
    stage_files(&env, "other-1").await;
    // Ours by targetEngine.engineType alone, as ModelOp's own job documents name the runtime.
    let mut by_engine = launched_job(&env, "engine-1", "COMPLETE");
    by_engine.as_object_mut().unwrap().remove("runtimeType");
    by_engine["targetEngine"] = json!({ "engineType": "SPARK_SERVERLESS_RUNTIME", "name": "spark-serverless-runtime-1" });
    env.put_job(&by_engine).await;
    stage_files(&env, "engine-1").await;
    env.put_object(&env.bucket, &format!("{PREFIX}not a job/x"), "x").await;
    env.put_object(&env.bucket, "elsewhere/gone-2/x", "x").await;
    let scheduled: Value = serde_json::from_str(&std::fs::read_to_string(repo_root().join("events/cleanup/scheduled-sweep.json")).unwrap()).unwrap();
    let before = env.all_staging_keys().await;

    // With the default minimum age, fresh folders are all kept.
    let response = env.cleanup_handler().await.handle_event(scheduled.clone()).await.expect("sweep");
    let CleanupResponse::Sweep(report) = response else { panic!("not a sweep: {response:?}") };
    assert!(report.deleted.is_empty() && report.folders == 8 && report.kept == 8, "{report:?}");
    assert_eq!(env.all_staging_keys().await, before);

    // moto cannot backdate LastModified, so a zero minimum age stands in for "old enough".
    let config = CleanupConfig { orphan_min_age: chrono::Duration::zero(), ..env.cleanup_config() };
    let handler = env.cleanup_handler_with(config, env.s3.clone()).await;
    let CleanupResponse::Sweep(report) = handler.handle_event(scheduled.clone()).await.expect("sweep") else { panic!() };
    assert_eq!(report.deleted, ["done-1", "engine-1", "failed-1", "gone-1"]);
    assert_eq!(report.kept, 4, "{report:?}");
    let deleted = ["done-1", "engine-1", "failed-1", "gone-1"].map(folder);
    let expected: Vec<String> = before.iter().filter(|k| !deleted.iter().any(|d| k.starts_with(d.as_str()))).cloned().collect();
    assert_eq!(env.all_staging_keys().await, expected);
    assert!(cleaned_at(&env, "done-1").await.is_some() && cleaned_at(&env, "failed-1").await.is_some());
    assert_eq!(env.job("gone-1").await, None, "no stub row is created for a missing job");
    assert_eq!(cleaned_at(&env, "live-1").await, None);
}

#[tokio::test]
async fn transient_failures_report_the_earliest_sequence_number() {
    let env = TestEnv::new().await;
    let (first, second) = (launched_job(&env, "job-1", "RUNNING"), launched_job(&env, "job-2", "RUNNING"));
    let mut batch = transition_batch(&env, &[(&first, "COMPLETE"), (&second, "ERROR")]).await;
    let sequences: Vec<String> = batch["Records"].as_array().unwrap().iter().map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_string()).collect();
    // A malformed record in the same batch is skipped, not retried.
    batch["Records"].as_array_mut().unwrap().insert(0, json!({ "eventID": "broken", "eventName": "MODIFY", "dynamodb": "not a record" }));

    // S3 unreachable: every listing fails as a connection error, which is transient.
    let config = sdk_config(&env.endpoint).await;
    let unreachable = aws_sdk_s3::config::Builder::from(&config)
        .endpoint_url("http://127.0.0.1:9")
        .force_path_style(true)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    let handler = env.cleanup_handler_with(env.cleanup_config(), aws_sdk_s3::Client::from_conf(unreachable)).await;
    let response = handler.handle_batch(batch.clone()).await;

    let earliest = shared::stream::earliest_sequence_number(sequences.iter().map(String::as_str)).unwrap();
    assert_eq!(failures(&response), [earliest.to_string()]);
    assert_eq!(cleaned_at(&env, "job-1").await, None, "cleanedAt is recorded only after the folder is empty");
}

const COMPLETE: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c10";
const ERROR: &str = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d11";
const CANCELLED: &str = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e12";
const STILL_RUNNING: &str = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f13";
const HOSTILE: &str = "5e6f7a8b-9c0d-4e1f-8a3b-4c5d6e7f8a14";
const SAMPLE_APPLICATION: &str = "00fabcdef0123456";
const SAMPLE_CANCELLED_RUN: &str = "00fabc0000000012";

#[tokio::test]
async fn the_binary_replays_every_cleanup_sample() {
    let env = TestEnv::new().await;
    let (app_id, run_id) = env.start_run_directly(&env.app_name, CANCELLED).await;
    // The samples name the bucket modelop-staging and placeholder EMR ids; the copies name this
    // test's bucket and a real run, so the binary acts on them.
    let dir = std::env::temp_dir().join(format!("cleanup-events-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        "modify-running-to-complete.json",
        "modify-waiting-to-error.json",
        "modify-cancelled-by-user.json",
        "modify-not-terminal.json",
        "modify-hostile-staging-uri.json",
        "scheduled-sweep.json",
    ];
    let mut events: Vec<PathBuf> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(repo_root().join("events/cleanup").join(file)).unwrap();
        let text = text
            .replace("s3://modelop-staging/", &format!("s3://{}/", env.bucket))
            .replace(SAMPLE_APPLICATION, &app_id)
            .replace(SAMPLE_CANCELLED_RUN, &run_id);
        let event: Value = serde_json::from_str(&text).unwrap();
        for record in event["Records"].as_array().into_iter().flatten() {
            // The row as it stands after the change the record describes.
            let item: serde_dynamo::Item = serde_json::from_value(record["dynamodb"]["NewImage"].clone()).unwrap();
            env.dynamodb.put_item().table_name(&env.table).set_item(Some(item.into())).send().await.unwrap();
        }
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        events.push(path);
    }
    for id in [COMPLETE, ERROR, CANCELLED, STILL_RUNNING, HOSTILE, "orphan-1"] {
        stage_files(&env, id).await;
    }

    let function_env = env.cleanup_function_env(0);
    let report = invoke_binary(&function_binary("cleanup"), &events[..5], &function_env);
    assert_eq!(report["failure"], Value::Null, "{report:#}");
    let invocations = report["invocations"].as_array().unwrap();
    assert_eq!(invocations.len(), 5);
    for invocation in invocations {
        assert_eq!(invocation["status"], "response", "{invocation:#}");
        assert_eq!(invocation["body"], json!({ "batchItemFailures": [] }), "{invocation:#}");
    }
    for id in [COMPLETE, ERROR, CANCELLED] {
        assert!(env.staged_keys(id).await.is_empty(), "{id} is cleaned");
        assert!(cleaned_at(&env, id).await.is_some(), "{id}");
    }
    for id in [STILL_RUNNING, HOSTILE, "orphan-1"] {
        assert_eq!(env.staged_keys(id).await.len(), 4, "{id} is kept");
    }
    assert_eq!(cleaned_at(&env, HOSTILE).await, None);
    let run = env.emr.get_job_run().application_id(&app_id).job_run_id(&run_id).send().await.unwrap();
    assert_eq!(run.job_run.unwrap().state().as_str(), "CANCELLED");
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.lines().any(|l| l.contains("refusing to delete") && l.contains(HOSTILE)), "{logs}");
    assert!(logs.lines().any(|l| l.contains("\"staging folder cleaned\"") && l.contains(COMPLETE)), "{logs}");
    // Metrics: three folders cleaned (4 objects each), one cancel sent, one refusal.
    let total = |metric: &str| metric_lines(&report, metric).iter().map(|l| l[metric].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!(
        [total("FoldersCleaned"), total("ObjectsDeleted"), total("CancelsSent"), total("CleanupRefusals")],
        [3, 12, 1, 1],
        "{:#}",
        report["binaryMetrics"]
    );
    let line = metric_lines(&report, "FoldersCleaned")[0];
    assert_eq!(metric_declaration(line, "ObjectsDeleted").unwrap(), ("ModelOp/SparkServerlessRuntime".to_string(), Some("Count".to_string()), dimension_sets(&[&["Function"]])));
    assert_eq!(line["Function"], "cleanup");

    // The sweep: the orphan and the hostile job's own folder (its row is COMPLETE) go; the
    // running job's stays.
    let report = invoke_binary(&function_binary("cleanup"), &events[5..], &function_env);
    assert_eq!(report["failure"], Value::Null, "{report:#}");
    let sweep = &report["invocations"][0];
    assert_eq!(sweep["status"], "response", "{sweep:#}");
    let mut expected = [HOSTILE, "orphan-1"];
    expected.sort();
    assert_eq!(sweep["body"]["deleted"], json!(expected), "{sweep:#}");
    assert_eq!(metric_lines(&report, "OrphanFolders").iter().map(|l| l["OrphanFolders"].as_u64().unwrap()).sum::<u64>(), 2);
    assert!(env.staged_keys(HOSTILE).await.is_empty() && env.staged_keys("orphan-1").await.is_empty());
    assert_eq!(env.staged_keys(STILL_RUNNING).await.len(), 4);
    assert_graceful_shutdown(&report);
}

#[tokio::test]
async fn a_bad_setting_fails_the_cold_start_naming_it() {
    let env = TestEnv::new().await;
    let mut function_env = env.cleanup_function_env(24);
    function_env.push(("CLEANUP_MAX_CONCURRENCY".into(), "0".into()));
    let event = repo_root().join("events/cleanup/scheduled-sweep.json");
    let report = invoke_binary(&function_binary("cleanup"), &[event], &function_env);
    assert_ne!(report["failure"], Value::Null, "the binary must not serve events with a bad configuration");
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.contains("CLEANUP_MAX_CONCURRENCY is invalid"), "{logs}");
}

#[tokio::test]
async fn a_user_cancel_passes_the_grace_period_to_cancel_job_run() {
    let env = TestEnv::new().await;
    // (job, configured grace period, the CancelJobRun requests the emulator got: query of each)
    let cases = [
        ("job-g0", 0, vec![""]),
        ("job-g120", 120, vec!["?shutdownGracePeriodInSeconds=120"]),
        // Refused (0 or 15-1800): sent again without it, so the run is still cancelled.
        ("job-g10", 10, vec!["?shutdownGracePeriodInSeconds=10", ""]),
    ];
    for (id, grace, queries) in cases {
        let (app_id, run_id) = env.start_run_directly(&env.app_name, id).await;
        let mut job = launched_job(&env, id, "RUNNING");
        job["sparkApplicationId"] = json!(run_id);
        job["emrApplicationId"] = json!(app_id);
        stage_files(&env, id).await;
        let batch = transition_batch(&env, &[(&job, "CANCELLED")]).await;

        let (emr, log) = env.logged_emr();
        let config = CleanupConfig { cancel_grace_period_seconds: grace, ..env.cleanup_config() };
        let handler = env.cleanup_handler_with_emr(config, emr).await;
        let result = handler.handle_record(batch["Records"][0].clone()).await.expect("handled");
        assert_eq!(result, RecordResult::Cleaned { job_id: id.into(), deleted: 4, run_cancelled: true }, "{id}");
        let expected: Vec<String> = queries.iter().map(|q| format!("DELETE /applications/{app_id}/jobruns/{run_id}{q}")).collect();
        assert_eq!(log.requests(), expected, "{id}");
        let run = env.emr.get_job_run().application_id(&app_id).job_run_id(&run_id).send().await.unwrap().job_run.unwrap();
        assert_eq!(run.state().as_str(), "CANCELLED", "{id}");
    }
}
