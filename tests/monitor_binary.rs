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
    job["updatedAt"] = json!(shared::job::timestamp(chrono::Utc::now()));
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
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.contains("malformed event acknowledged"), "{logs}");
}
