//! A job row as the CLI reads it: every field of shared/CONTRACT.md an operator looks at, typed
//! with the shared crate's own types where they read (statuses, attempts, failure, usage), read
//! leniently so one odd field never hides the rest of the row. Serialized back as the `json`
//! output, in the contract's field names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared::job::record::{lenient, null_as_default, JobStatus, StatusChange, Timestamp};
use shared::outcome::cost::ResourceUsage;
use shared::outcome::failure::{Failure, FailureClass};
use shared::outcome::run_outcome::AttemptRecord;

use crate::exit::Exit;

/// A job row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRow {
    pub id: String,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub emr_state: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub emr_latest_state: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub spark_application_id: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub emr_application_id: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub staging_uri: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_list", skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<StatusChange>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// ModelOp's epoch milliseconds: waiting since, running since, ended at.
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub job_wait_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub job_run_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub job_end_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient_list", skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub run_controls: Option<RunControlsView>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub job_permissions: Option<JobPermissionsView>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceView>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub resource_usage: Option<ResourceUsage>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostView>,
    #[serde(default, deserialize_with = "lenient_list", skip_serializing_if = "Vec::is_empty")]
    pub output_files: Vec<OutputFileView>,
    #[serde(default, deserialize_with = "lenient_list", skip_serializing_if = "Vec::is_empty")]
    pub job_messages: Vec<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub driver_logs: Option<DriverLogsView>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub cleaned_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub cancel_grace_period_seconds: Option<u32>,
    /// `model`, for the stored model's name and id (`cost --by model`); not printed.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing)]
    pub model: Value,
}

fn lenient_list<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Ok(lenient::<D, Vec<T>>(deserializer)?.unwrap_or_default())
}

/// `runControls`: the values the run started with and where each came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunControlsView {
    #[serde(default)]
    pub execution_timeout_minutes: Option<u32>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub cancel_grace_period_seconds: Option<u32>,
    #[serde(default)]
    pub sources: std::collections::BTreeMap<String, String>,
}

/// `jobPermissions`, without the policy text (it is on the row for whoever needs it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPermissionsView {
    pub scoped: bool,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrowing_steps: Option<usize>,
}

/// `provenance`, as far as the CLI shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_duration_milliseconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_execution_duration_seconds: Option<i64>,
}

/// `cost` (shared `cost::JobCost`, read back).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostView {
    pub amount: f64,
    #[serde(default)]
    pub currency: Option<String>,
    /// `billed` or `used`.
    #[serde(default)]
    pub basis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices_as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

/// One `outputFiles` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFileView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub file_url: String,
    pub exists: bool,
}

/// `driverLogs`: the stored tails, and where the whole logs are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverLogsView {
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub log_group_name: Option<String>,
    #[serde(default)]
    pub log_stream_name_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
}

impl JobRow {
    /// The exit code of the job's outcome; `None` while it is not final.
    pub fn outcome(&self) -> Option<Exit> {
        Exit::of_outcome(self.job_status, self.failure_class())
    }

    /// The failure's class, on a job in ERROR.
    pub fn failure_class(&self) -> Option<FailureClass> {
        self.failure.as_ref().map(|f| f.class)
    }

    /// Whether the job is final (COMPLETE, ERROR, CANCELLED).
    pub fn is_final(&self) -> bool {
        self.job_status.is_some_and(JobStatus::is_terminal)
    }

    /// The run, `(application id, run id)`, once submit recorded one.
    pub fn run(&self) -> Option<(&str, &str)> {
        Some((self.emr_application_id.as_deref()?, self.spark_application_id.as_deref()?))
    }

    /// The latest attempt the row knows of (1 for a run without retries).
    pub fn latest_attempt(&self) -> i32 {
        self.attempts.iter().map(|a| a.attempt).chain(self.provenance.as_ref().and_then(|p| p.attempts)).max().unwrap_or(1).max(1)
    }

    /// The most attempts the run may have: `runControls`, else `provenance`, else 1.
    pub fn max_attempts(&self) -> i64 {
        self.run_controls
            .as_ref()
            .and_then(|c| c.max_attempts.map(i64::from))
            .or_else(|| self.provenance.as_ref().and_then(|p| p.max_attempts.map(i64::from)))
            .unwrap_or(1)
    }

    /// The EMR state to show: the latest one seen (an unknown one included), else the furthest known.
    pub fn emr_state_shown(&self) -> Option<&str> {
        self.emr_latest_state.as_deref().or(self.emr_state.as_deref())
    }

    /// When the job started waiting, started running and ended (ModelOp's epoch milliseconds).
    pub fn times(&self) -> [Option<DateTime<Utc>>; 3] {
        let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
        [at(self.job_wait_time), at(self.job_run_time), at(self.job_end_time)]
    }

    /// Time queued (waiting until running, or until the end for a run that never ran, or until
    /// `now`) and time running (until the end or `now`).
    pub fn durations(&self, now: DateTime<Utc>) -> (Option<chrono::Duration>, Option<chrono::Duration>) {
        let [waiting, running, ended] = self.times();
        let queued = waiting.map(|w| running.or(ended).unwrap_or(now) - w);
        let run = running.map(|r| ended.unwrap_or(now) - r);
        (queued, run)
    }

    /// `model.storedModel.modelMetaData.name`, else `model.storedModel.id`.
    pub fn model_name(&self) -> Option<&str> {
        let stored = &self.model["storedModel"];
        stored["modelMetaData"]["name"].as_str().or_else(|| stored["id"].as_str())
    }
}

/// A duration as people read it: `42s`, `3m 07s`, `2h 05m`, `3d 04h`.
pub fn human_duration(duration: chrono::Duration) -> String {
    let secs = duration.num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A cost as shown: `$0.001234 billed`, with `(provisional)` until the figures are final.
pub fn cost_text(cost: Option<&CostView>, usage: Option<&ResourceUsage>) -> String {
    match (cost, usage) {
        (Some(cost), usage) => {
            let basis = cost.basis.as_deref().unwrap_or("used");
            let final_or_not = if usage.is_some_and(|u| u.is_final) { "" } else { " (provisional)" };
            format!("${:.6} {basis}{final_or_not}", cost.amount)
        }
        (None, Some(_)) => "no price for this region/architecture (usage recorded)".to_string(),
        (None, None) => "not recorded".to_string(),
    }
}

#[cfg(test)]
pub mod fixtures {
    //! Rows as the functions write them, for the rendering tests.

    use super::JobRow;

    /// A row decoded from its JSON document, as DynamoDB gives it back.
    pub fn row(document: serde_json::Value) -> JobRow {
        let item: serde_dynamo::Item = serde_dynamo::to_item(document).unwrap();
        serde_dynamo::from_item(item).unwrap()
    }

    /// A job that ended in ERROR after two attempts, out of memory, priced.
    pub fn failed_twice() -> JobRow {
        row(serde_json::json!({
            "id": "job-oom", "jobType": "MODEL_BATCH_JOB", "jobStatus": "ERROR", "runtimeType": "SPARK_SERVERLESS_RUNTIME",
            "emrState": "FAILED", "sparkApplicationId": "run-1", "emrApplicationId": "app-1",
            "stagingUri": "s3://staging/modelop-spark-serverless/job-oom/",
            "updatedAt": "2026-11-23T20:12:00.000Z",
            "jobWaitTime": 1_795_464_000_000_i64, "jobRunTime": 1_795_464_030_000_i64, "jobEndTime": 1_795_464_330_000_i64,
            "statusHistory": [
                {"status": "WAITING", "at": "2026-11-23T20:00:00.000Z"},
                {"status": "WAITING", "emrState": "SUBMITTED", "at": "2026-11-23T20:00:01.000Z"},
                {"status": "RUNNING", "emrState": "RUNNING", "at": "2026-11-23T20:00:30.000Z"},
                {"status": "RUNNING", "emrState": "RETRY attempt 2", "at": "2026-11-23T20:02:00.000Z"},
                {"status": "ERROR", "emrState": "FAILED", "at": "2026-11-23T20:05:30.000Z"}
            ],
            "attempts": [
                {"attempt": 1, "state": "FAILED", "reason": "Job failed, ExitCode: 137", "startedAt": "2026-11-23T20:00:01.000Z", "endedAt": "2026-11-23T20:02:00.000Z"},
                {"attempt": 2, "state": "FAILED", "reason": "Job failed, ExitCode: 137", "startedAt": "2026-11-23T20:02:00.000Z", "endedAt": "2026-11-23T20:05:30.000Z"}
            ],
            "failure": {"class": "OUT_OF_MEMORY", "summary": "The driver ran out of memory (exit code 137).",
                        "evidence": {"exitCode": 137, "logLine": "java.lang.OutOfMemoryError: Java heap space"}},
            "runControls": {"executionTimeoutMinutes": 60, "maxAttempts": 2, "cancelGracePeriodSeconds": 0,
                            "sources": {"executionTimeoutMinutes": "jobParameters", "maxAttempts": "jobParameters", "cancelGracePeriodSeconds": "default"}},
            "jobPermissions": {"scoped": true, "source": "configuration", "policy": "{}", "policySha256": "ab", "policySize": 1480, "narrowingSteps": 0},
            "resourceUsage": {"used": {"vCPUHour": 0.4, "memoryGBHour": 1.6, "storageGBHour": 2.0},
                              "billed": {"vCPUHour": 0.5, "memoryGBHour": 2.0, "storageGBHour": 0.0}, "final": true, "asOf": "2026-11-23T20:05:30.000Z"},
            "cost": {"amount": 0.037869, "currency": "USD", "basis": "billed", "prices": {"vCPUHour": 0.052624, "memoryGBHour": 0.0057785, "storageGBHour": 0.000111},
                     "pricesAsOf": "2026-11-30", "pricesSource": "built-in", "region": "us-east-1", "architecture": "X86_64"},
            "jobMessages": ["2026/11/23 20:00:01 [info] EMR Serverless job run run-1 started", "2026/11/23 20:05:30 [error] The driver ran out of memory"],
            "errorMessage": "job job-oom: EMR Serverless job run FAILED: Job failed, ExitCode: 137",
            "driverLogs": {"stdout": "scoring\n", "stderr": "java.lang.OutOfMemoryError: Java heap space\n", "truncated": false,
                           "logGroupName": "/aws/emr-serverless", "logStreamNamePrefix": "job-oom/applications/app-1/jobs/run-1/", "attempt": 2},
            "model": {"storedModel": {"id": "m-1", "modelMetaData": {"name": "credit-risk"}}}
        }))
    }

    /// A job still running, its first attempt, with provisional usage and no cost yet.
    pub fn running() -> JobRow {
        row(serde_json::json!({
            "id": "job-run", "jobType": "MODEL_BATCH_TEST_JOB", "jobStatus": "RUNNING", "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME"},
            "emrState": "RUNNING", "sparkApplicationId": "run-2", "emrApplicationId": "app-1", "updatedAt": "2026-11-23T20:10:00.000Z",
            "jobWaitTime": 1_795_464_000_000_i64, "jobRunTime": 1_795_464_060_000_i64,
            "statusHistory": [{"status": "WAITING", "at": "2026-11-23T20:00:00.000Z"}, {"status": "RUNNING", "emrState": "RUNNING", "at": "2026-11-23T20:01:00.000Z"}],
            "runControls": "not an object",
            "outputFiles": null
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn rows_read_with_the_shared_types_and_odd_fields_do_not_hide_the_rest() {
        let row = failed_twice();
        assert_eq!((row.job_status, row.failure_class()), (Some(JobStatus::Error), Some(FailureClass::OutOfMemory)));
        assert_eq!((row.latest_attempt(), row.max_attempts()), (2, 2));
        assert_eq!(row.model_name(), Some("credit-risk"));
        assert_eq!(row.outcome(), Some(Exit::Error));
        let running = running();
        assert_eq!(running.run_controls, None, "a malformed runControls reads as none");
        assert_eq!((running.outcome(), running.latest_attempt(), running.max_attempts()), (None, 1, 1));
    }

    #[test]
    fn durations_and_costs_read_as_people_say_them() {
        let row = failed_twice();
        let (queued, ran) = row.durations(Utc::now());
        assert_eq!((human_duration(queued.unwrap()), human_duration(ran.unwrap())), ("30s".to_string(), "5m 00s".to_string()));
        assert_eq!(human_duration(chrono::Duration::seconds(90_061)), "1d 01h");
        assert_eq!(cost_text(row.cost.as_ref(), row.resource_usage.as_ref()), "$0.037869 billed");
        let provisional = CostView { amount: 0.01, basis: Some("used".into()), ..Default::default() };
        assert_eq!(cost_text(Some(&provisional), None), "$0.010000 used (provisional)");
        assert_eq!(cost_text(None, row.resource_usage.as_ref()), "no price for this region/architecture (usage recorded)");
        assert_eq!(cost_text(None, None), "not recorded");
    }
}
