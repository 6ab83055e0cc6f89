//! The compiled `monitor` binary, driven through the Lambda Runtime API emulator with the
//! `events/monitor` samples, in the order a real run produces them (plus noise).

use std::path::PathBuf;

use integration_tests::*;
use serde_json::{json, Value};

const JOB: &str = "3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01";
const APP: &str = "00fmonitorapp0001";
const RUN: &str = "00fmonitorrun0001";

fn event_file(name: &str) -> PathBuf {
    repo_root().join("events/monitor").join(name)
}

#[tokio::test]
async fn the_binary_replays_the_monitor_samples() {
    let env = TestEnv::new().await;
    let mut job = created_job(JOB, "MODEL_BATCH_JOB");
    job["jobStatus"] = json!("WAITING");
    job["sparkApplicationId"] = json!(RUN);
    job["emrApplicationId"] = json!(APP);
    job["emrState"] = json!("SUBMITTED");
    job["updatedAt"] = json!(shared::job::record::timestamp(chrono::Utc::now()));
    job["emrApplicationArchitecture"] = json!("X86_64");
    env.put_job(&job).await;

    let files = [
        "state-submitted.json",
        "state-pending.json",
        "state-queued.json",
        "state-scheduled.json",
        "state-running.json",
        "state-unknown.json",
        "job-run-retry.json",
        "resource-utilization-running.json",
        "resource-utilization-malformed.json",
        "resource-utilization.json",
        "application-state-change.json",
        "malformed.json",
        "state-running-no-name.json",
        "state-cancelling.json",
        "state-success.json",
        "state-failed.json",
        "state-cancelled.json",
        "scheduled-event.json",
    ];
    let events: Vec<PathBuf> = files.iter().map(|f| event_file(f)).collect();
    let mut function_env = env.function_env();
    function_env.retain(|(k, _)| !k.starts_with("EMR_DEFAULT") && k != "EMR_RELEASE_VERSION");
    let report = invoke_binary(&function_binary("monitor"), &events, &function_env);
    assert_eq!(report["failure"], Value::Null, "{report:#}");
    for (invocation, file) in report["invocations"].as_array().unwrap().iter().zip(files) {
        assert_eq!(invocation["status"], "response", "{file}: {invocation:#}");
    }

    let row = env.job(JOB).await.unwrap();
    assert_eq!(row["jobStatus"], "COMPLETE");
    let history: Vec<String> = row["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}/{}", e["status"].as_str().unwrap(), e["emrState"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        history,
        [
            "WAITING/PENDING",
            "WAITING/QUEUED",
            "WAITING/SCHEDULED",
            "RUNNING/RUNNING",
            "RUNNING/HIBERNATING",
            "RUNNING/RETRY attempt 2",
            "RUNNING/CANCELLING",
            "COMPLETE/SUCCESS"
        ]
    );
    assert_eq!(row["driverLogs"]["logStreamNamePrefix"], format!("{JOB}/applications/{APP}/jobs/{RUN}/"));
    assert_eq!(row["attempts"][1], json!({"attempt": 2, "startedAt": "2026-11-23T20:11:45.530Z"}), "from the Retry event: {:#}", row["attempts"]);
    // The utilization updates: the final one's figures, not the running one's; the malformed one is skipped.
    let final_event: Value = serde_json::from_str(&std::fs::read_to_string(event_file("resource-utilization.json")).unwrap()).unwrap();
    assert_eq!(row["resourceUsage"]["final"], true, "{:#}", row["resourceUsage"]);
    assert_eq!(row["resourceUsage"]["used"], final_event["detail"]["totalResourceUtilization"]);
    // Metrics: the job's end (by status and type, the job id a property), its cost, the ignored events, the sweep.
    let finished = metric_lines(&report, "JobsFinished");
    assert_eq!(finished.len(), 1, "{:#}", report["binaryMetrics"]);
    let declared = metric_declaration(finished[0], "JobsFinished").unwrap();
    assert_eq!(declared, ("ModelOp/SparkServerlessRuntime".to_string(), Some("Count".to_string()), dimension_sets(&[&["Function"], &["Function", "Status"], &["Function", "JobType", "Status"]])));
    assert_eq!(
        (finished[0]["Function"].as_str(), finished[0]["Status"].as_str(), finished[0]["JobType"].as_str(), finished[0]["JobId"].as_str(), finished[0]["JobsFinished"].as_u64()),
        (Some("monitor"), Some("COMPLETE"), Some("MODEL_BATCH_JOB"), Some(JOB), Some(1))
    );
    let cost = metric_lines(&report, "JobCost");
    assert_eq!(cost.len(), 1, "once, when the usage became final: {:#}", report["binaryMetrics"]);
    assert_eq!(metric_declaration(cost[0], "JobCost").unwrap().2, dimension_sets(&[&["Function", "JobType"]]));
    assert_eq!(cost[0]["JobCost"].as_f64(), row["cost"]["amount"].as_f64(), "{:#}", row["cost"]);
    let ignored: Vec<&str> = metric_lines(&report, "EventsIgnored").iter().map(|l| l["Reason"].as_str().unwrap()).collect();
    for reason in ["Malformed", "Unhandled", "Duplicate"] {
        assert!(ignored.contains(&reason), "{reason} in {ignored:?}");
    }
    let sweep = metric_lines(&report, "StaleJobs");
    assert_eq!(sweep.len(), 1);
    assert_eq!((sweep[0]["StaleJobs"].as_u64(), sweep[0]["SweepRepairs"].as_u64()), (Some(0), Some(0)), "a fresh COMPLETE job is neither stale nor repaired");
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.contains("malformed event acknowledged"), "{logs}");
    assert_graceful_shutdown(&report);
}

/// Where Lambda's Extensions API is missing (local emulators: floci-io/floci#1771, cargo-lambda/cargo-lambda#848),
/// the binary starts without its shutdown hook, says so, and serves invocations; at the end it is killed as Lambda
/// kills a function without extensions.
#[tokio::test]
async fn without_the_extensions_api_the_binary_warns_and_serves() {
    let env = TestEnv::new().await;
    let files = ["malformed.json", "scheduled-event.json"];
    let events: Vec<PathBuf> = files.iter().map(|f| event_file(f)).collect();
    let report = invoke_binary_with(&function_binary("monitor"), &events, &env.function_env(), &["--no-extensions-api"]);
    assert_eq!(report["failure"], Value::Null, "{report:#}");
    assert_eq!(report["initError"], Value::Null, "{report:#}");
    for (invocation, file) in report["invocations"].as_array().unwrap().iter().zip(files) {
        assert_eq!(invocation["status"], "response", "{file}: {invocation:#}");
    }
    assert_eq!(report["extensions"], json!([]), "{report:#}");
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.contains("running without the shutdown hook") && !logs.contains("panicked"), "{logs}");
}
