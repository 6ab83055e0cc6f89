//! The compiled `submit` binary, driven through a Lambda Runtime API emulator with the `events/`
//! samples: proves `main.rs` wiring, environment configuration and the response Lambda reads.

use std::collections::HashMap;
use std::path::PathBuf;

use integration_tests::*;
use serde_json::Value;

fn event_file(name: &str) -> PathBuf {
    repo_root().join("events/submit").join(name)
}

/// Every INSERT image of an event file, as the row ModelOp Center wrote before the stream fired.
fn inserted_rows(name: &str) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let event: Value = serde_json::from_str(&std::fs::read_to_string(event_file(name)).unwrap()).unwrap();
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["eventName"] == "INSERT" && r["dynamodb"]["NewImage"].is_object())
        .map(|r| {
            let item: serde_dynamo::Item = serde_json::from_value(r["dynamodb"]["NewImage"].clone()).expect("DynamoDB JSON image");
            item.into()
        })
        .collect()
}

const BATCH: &str = "3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01";
const TEST: &str = "7a2d9e14-3b5c-4f68-8e07-1c9a2b3d4e02";
const TRAINING: &str = "b8e4f0a6-1c2d-4e3f-a5b6-7c8d9e0f1a03";
const OTHER_RUNTIME: &str = "c4a7b2e9-6d1f-4a38-b0c5-2e9f8d7a6b04";
const AFTER_MALFORMED: &str = "d2f9c8b1-7e3a-4c56-9d0e-4f1a2b3c5d05";

#[tokio::test]
async fn the_binary_replays_every_sample_event() {
    let env = TestEnv::new().await;
    let files = [
        "insert-batch-job.json",
        "insert-test-job.json",
        "insert-training-job.json",
        "insert-other-runtime.json",
        "malformed.json",
        "modify-not-insert.json",
    ];
    for file in files {
        for row in inserted_rows(file) {
            env.dynamodb.put_item().table_name(&env.table).set_item(Some(row)).send().await.expect("put row");
        }
    }
    let other_before = env.job(OTHER_RUNTIME).await.expect("row");

    let events: Vec<PathBuf> = files.iter().map(|f| event_file(f)).collect();
    let report = invoke_binary(&function_binary("submit"), &events, &env.function_env());
    assert_eq!(report["failure"], Value::Null, "{report:#}");
    let invocations = report["invocations"].as_array().unwrap();
    assert_eq!(invocations.len(), files.len());
    for invocation in invocations {
        assert_eq!(invocation["status"], "response", "{invocation:#}");
        assert_eq!(invocation["body"], serde_json::json!({ "batchItemFailures": [] }), "{invocation:#}");
    }

    for (id, app) in [(BATCH, env.app_name.as_str()), (TEST, env.app_name.as_str()), (AFTER_MALFORMED, env.app_name.as_str()), (TRAINING, "modelop-training")] {
        let job = env.job(id).await.unwrap();
        assert_eq!(job["jobStatus"], "WAITING", "{id}");
        let run_id = job["sparkApplicationId"].as_str().unwrap_or_else(|| panic!("{id} has no run: {job:#}"));
        let runs: Vec<_> = env.job_runs(app).await.into_iter().filter(|r| r.name() == Some(id)).collect();
        assert_eq!(runs.len(), 1, "{id}: one run");
        assert_eq!(runs[0].job_run_id(), run_id);
    }
    let training_runs = env.job_runs("modelop-training").await;
    let training = training_runs.iter().find(|r| r.name() == Some(TRAINING)).unwrap();
    assert_eq!(training.execution_role(), "arn:aws:iam::123456789012:role/modelop-emr-job");
    assert_eq!(env.job(OTHER_RUNTIME).await.unwrap(), other_before, "another runtime's job is untouched");

    // The function logs structured JSON lines (AWS_LAMBDA_LOG_FORMAT=JSON), one per decision.
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.lines().any(|l| l.contains("\"job run started\"") && l.contains(BATCH)), "{logs}");
    assert!(logs.contains("malformed stream record skipped"), "{logs}");
}

#[tokio::test]
async fn a_missing_setting_fails_the_cold_start_naming_it() {
    let env = TestEnv::new().await;
    let mut function_env = env.function_env();
    function_env.retain(|(k, _)| k != "JOBS_TABLE");
    function_env.push(("JOBS_TABLE".into(), String::new()));
    let report = invoke_binary(&function_binary("submit"), &[event_file("insert-batch-job.json")], &function_env);
    assert_ne!(report["failure"], Value::Null, "the binary must not serve events without its configuration");
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.contains("JOBS_TABLE is required but not set"), "{logs}");
}
