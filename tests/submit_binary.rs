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

    // Metrics: one EMF line per launched job (the job id a property, never a dimension), and the
    // skipped records by reason.
    let launched = metric_lines(&report, "JobsLaunched");
    let mut ids: Vec<&str> = launched.iter().map(|l| l["JobId"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![BATCH, TEST, TRAINING, AFTER_MALFORMED];
    expected.sort();
    assert_eq!(ids, expected, "{:#}", report["binaryMetrics"]);
    for line in &launched {
        let declared = metric_declaration(line, "JobsLaunched").unwrap();
        assert_eq!(declared, ("ModelOp/SparkServerlessRuntime".to_string(), Some("Count".to_string()), dimension_sets(&[&["Function"], &["Function", "JobType"]])));
        assert_eq!(metric_declaration(line, "LaunchLatency").unwrap().1.as_deref(), Some("Milliseconds"));
        assert_eq!((line["Function"].as_str(), line["JobsLaunched"].as_u64()), (Some("submit"), Some(1)));
        assert!(line["LaunchLatency"].as_u64().is_some(), "{line}");
        assert!(["MODEL_BATCH_JOB", "MODEL_BATCH_TEST_JOB", "MODEL_BATCH_TRAINING_JOB"].contains(&line["JobType"].as_str().unwrap()), "{line}");
    }
    let skipped: Vec<(&str, Option<&str>)> = metric_lines(&report, "RecordsSkipped").iter().map(|l| (l["Reason"].as_str().unwrap(), l["JobId"].as_str())).collect();
    assert!(skipped.contains(&("NotOurs", Some(OTHER_RUNTIME))), "{skipped:?}");
    assert!(skipped.contains(&("Malformed", None)) && skipped.iter().any(|(r, _)| *r == "NotInsert"), "{skipped:?}");
    assert_eq!(metric_declaration(metric_lines(&report, "RecordsSkipped")[0], "RecordsSkipped").unwrap().2, dimension_sets(&[&["Function", "Reason"]]));
    assert_graceful_shutdown(&report);
}

const MODELOP_JOB: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b15";
/// The credential the ModelOp-shaped sample carries in `repositoryInfo` (events/generate.py).
const SAMPLE_SECRET: &str = "SAMPLE-SECRET-KEY-do-not-stage";

#[tokio::test]
async fn a_modelop_shaped_job_document_launches_unchanged() {
    let env = TestEnv::new().await;
    for row in inserted_rows("insert-modelop-job.json") {
        env.dynamodb.put_item().table_name(&env.table).set_item(Some(row)).send().await.expect("put row");
    }
    let report = invoke_binary(&function_binary("submit"), &[event_file("insert-modelop-job.json")], &env.function_env());
    assert_eq!(report["invocations"][0]["body"], serde_json::json!({ "batchItemFailures": [] }), "{report:#}");

    let job = env.job(MODELOP_JOB).await.unwrap();
    assert_eq!(job["jobStatus"], "WAITING", "ours by targetEngine.engineType: {job:#}");
    assert!(job["jobWaitTime"].as_i64().is_some_and(|ms| ms > 1_700_000_000_000), "epoch milliseconds: {}", job["jobWaitTime"]);
    assert_eq!(
        job["ignoredJobParameters"].as_array().unwrap().iter().map(|p| (p["parameter"].as_str().unwrap(), p["value"].as_str().unwrap())).collect::<Vec<_>>(),
        [("--total-executor-cores", "10"), ("-v", "")]
    );
    let messages = job["jobMessages"].as_array().unwrap();
    assert!(messages.iter().any(|m| m.as_str().unwrap().contains("[warning] job parameter \"-v\" = \"\" ignored: ")), "{messages:?}");

    let runs: Vec<_> = env.job_runs(&env.app_name).await.into_iter().filter(|r| r.name() == Some(MODELOP_JOB)).collect();
    assert_eq!(runs.len(), 1);
    let aws_sdk_emrserverless::types::JobDriver::SparkSubmit(spark) = runs[0].job_driver().unwrap() else { panic!() };
    let params = spark.spark_submit_parameters().unwrap();
    let staging = format!("s3://{}/modelop-spark-serverless/{MODELOP_JOB}/", env.bucket);
    for expected in [
        "--conf spark.executor.memory=512MB".to_string(),
        "--conf spark.modelop.threshold=0.7".to_string(),
        format!("--conf spark.modelop.job.workingDir={staging}"),
        format!("{staging}job-metadata.json,{staging}df_sample_scored_input_schema.avsc"),
    ] {
        assert!(params.contains(&expected), "{expected} in {params}");
    }

    let prefix = format!("modelop-spark-serverless/{MODELOP_JOB}/");
    let metadata: Value = serde_json::from_str(&env.object_text(&env.bucket, &format!("{prefix}job-metadata.json")).await).unwrap();
    assert_eq!((metadata["initFunction"].as_str(), metadata["jobFunction"].as_str()), (Some("init"), Some("score")));
    let input = &metadata["inputs"][0];
    assert_eq!(input["assetRole"], "UNKNOWN");
    assert_eq!(input["fileUrl"], "s3://modelop-data/input/sample_input.csv");
    assert_eq!(input["originalFileUrl"], "http://minio:9000/modelop-data/input/sample_input.csv");
    assert_eq!(metadata["outputs"][0]["fileUrl"], format!("s3://modelop-data/output/{MODELOP_JOB}/scored/"));
    assert_eq!(metadata["modelAssets"][1]["fileUrl"], format!("{staging}df_sample_scored_input_schema.avsc"));
    let schema = env.object_text(&env.bucket, &format!("{prefix}df_sample_scored_input_schema.avsc")).await;
    assert!(schema.starts_with("[\n    {\n        \"name\": \"id\""), "the FILE asset's content, decoded: {schema}");

    // The S3 repository's credentials reach no staged object and no log line.
    for name in env.staged_keys(MODELOP_JOB).await {
        let key = format!("{prefix}{name}");
        let text = env.object_text(&env.bucket, &key).await;
        assert!(!text.contains(SAMPLE_SECRET) && !text.contains("SAMPLE-ACCESS-KEY"), "credential staged in {key}");
    }
    assert!(!report["binaryStderr"].as_str().unwrap_or_default().contains(SAMPLE_SECRET), "credential logged");
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

/// An address nothing listens on: a port the OS gave out, then closed again.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn failures_are_counted_by_step_and_disposition() {
    let env = TestEnv::new().await;
    // A job no retry can fix: its primary source has no scoring function (validation).
    let invalid = uuid::Uuid::new_v4().to_string();
    let mut job = created_job(&invalid, "MODEL_BATCH_JOB");
    job["model"]["storedModel"]["modelAssets"][0]["sourceCode"] = serde_json::json!("def action(a):\n    pass\n");
    env.put_job(&job).await;
    // A valid job whose EMR Serverless endpoint does not answer: retried, not ended.
    let valid = uuid::Uuid::new_v4().to_string();
    env.put_job(&created_job(&valid, "MODEL_BATCH_JOB")).await;
    let batch = env.insert_batch().await;
    let dir = std::env::temp_dir().join(format!("submit-failures-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let event = dir.join("insert-two-jobs.json");
    std::fs::write(&event, serde_json::to_vec(&batch).unwrap()).unwrap();

    let mut function_env = env.function_env();
    function_env.push(("AWS_ENDPOINT_URL_EMR_SERVERLESS".into(), closed_endpoint()));
    let report = invoke_binary(&function_binary("submit"), &[event], &function_env);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(report["failure"], Value::Null, "{report:#}");
    let body = &report["invocations"][0]["body"];
    let failed: Vec<&Value> = body["batchItemFailures"].as_array().unwrap().iter().map(|f| &f["itemIdentifier"]).collect();
    let valid_sequence = &batch["Records"].as_array().unwrap().iter().find(|r| r["dynamodb"]["Keys"]["id"]["S"] == valid.as_str()).unwrap()["dynamodb"]["SequenceNumber"];
    assert_eq!(failed, [valid_sequence], "only the transient failure is retried: {body}");
    assert_eq!(env.job(&invalid).await.unwrap()["jobStatus"], "ERROR");
    assert_ne!(env.job(&valid).await.unwrap()["jobStatus"], "ERROR");

    // One SubmitFailures line per failed record: the step and the disposition as dimensions,
    // the job id a property.
    let lines = metric_lines(&report, "SubmitFailures");
    for line in &lines {
        let declared = metric_declaration(line, "SubmitFailures").unwrap();
        assert_eq!(declared, ("ModelOp/SparkServerlessRuntime".to_string(), Some("Count".to_string()), dimension_sets(&[&["Function"], &["Function", "Step", "Disposition"]])));
    }
    let mut seen: Vec<(&str, &str, &str, u64)> = lines
        .iter()
        .map(|l| (l["JobId"].as_str().unwrap(), l["Step"].as_str().unwrap(), l["Disposition"].as_str().unwrap(), l["SubmitFailures"].as_u64().unwrap()))
        .collect();
    seen.sort();
    let mut expected = vec![(invalid.as_str(), "validate job", "Permanent", 1), (valid.as_str(), "resolve EMR Serverless application", "Transient", 1)];
    expected.sort();
    assert_eq!(seen, expected, "{:#}", report["binaryMetrics"]);
    assert!(metric_lines(&report, "JobsLaunched").is_empty());
}
