//! The job row as the monitor reads it ([`MonitoredJob`]) and what it writes on it: a
//! [`StatusUpdate`] with the driver's logs, the outputs, the attempts, the failure and the run's
//! provenance. The rules that decide them are in [`crate::outcome::job_run`] and
//! [`crate::outcome::run_outcome`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::record::{Asset, JobHeader, JobStatus, Timestamp};
use crate::launch::lease::SubmitLease;
use crate::outcome::failure::Failure;
use crate::outcome::run_outcome::{AttemptRecord, Provenance};

/// A job as the monitor sees it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitoredJob {
    #[serde(flatten)]
    pub header: JobHeader,
    #[serde(default)]
    pub emr_state: Option<String>,
    #[serde(default)]
    pub staging_uri: Option<String>,
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub submit_lease: Option<SubmitLease>,
    #[serde(default, deserialize_with = "crate::job::record::null_as_default")]
    pub output_data: Vec<Asset>,
    /// `attempts` as recorded so far (Retry events), merged with each new one. An entry this
    /// code cannot read makes the list start afresh: the final state rebuilds it from EMR.
    #[serde(default, deserialize_with = "lenient_attempts")]
    pub attempts: Vec<AttemptRecord>,
    /// `resourceUsage` as recorded so far; one this code cannot read counts as none.
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub resource_usage: Option<crate::outcome::cost::ResourceUsage>,
    /// ModelOp's `jobType`, as written (for metrics only).
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub job_type: Option<String>,
    /// `emrApplicationArchitecture`, recorded by submit with the run.
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub emr_application_architecture: Option<String>,
    /// `jobRunTime`: set the first time the run was seen RUNNING.
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub job_run_time: Option<serde_json::Value>,
    /// `statusHistory`, as far as it can be read (an unreadable one counts as empty).
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub status_history: Option<Vec<serde_json::Value>>,
    /// `driverLogs`, as far as they can be read: the sweep looks for `unavailable` ones.
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub driver_logs: Option<DriverLogs>,
    /// `errorMessage` as written (the sweep compares the one it refines with it).
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub error_message: Option<String>,
}

fn lenient_attempts<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<AttemptRecord>, D::Error> {
    Ok(crate::job::record::lenient::<D, Vec<AttemptRecord>>(deserializer)?.unwrap_or_default())
}

impl MonitoredJob {
    pub fn id(&self) -> &str {
        self.header.id()
    }

    pub fn status(&self) -> Option<JobStatus> {
        self.header.status()
    }

    pub fn is_ours(&self) -> bool {
        self.header.is_ours()
    }

    /// The architecture of the run's application, if submit recorded one this code knows.
    pub fn architecture(&self) -> Option<crate::launch::run_controls::Architecture> {
        self.emr_application_architecture.as_deref().and_then(|a| a.parse().ok())
    }

    /// Whether the row itself says the run ran: a `jobRunTime`, or a RUNNING status or EMR state
    /// in `statusHistory` (GetJobRun's `startedAt` is the latest attempt's, which may never have).
    pub fn ran_per_row(&self) -> bool {
        let running = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_str) == Some("RUNNING");
        self.job_run_time.as_ref().is_some_and(|t| !t.is_null())
            || self.status_history.iter().flatten().any(|entry| running(entry.get("status")) || running(entry.get("emrState")))
    }

    /// `jobType`, or `UNKNOWN`: a metric dimension.
    pub fn job_type_or_unknown(&self) -> &str {
        self.job_type.as_deref().unwrap_or("UNKNOWN")
    }
}

/// `driverLogs` on a finished job: the ends of the driver's stdout and stderr, and where the rest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverLogs {
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub truncated: bool,
    pub log_group_name: String,
    /// Leads to every attempt's logs of the run.
    pub log_stream_name_prefix: String,
    /// The attempt `stdout` and `stderr` are the ends of (a retried run's last), when EMR says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// Set when the logs could not be read with the final status (CloudWatch Logs throttled or
    /// failed the read): `stdout` and `stderr` are empty until the sweep attaches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<LogsUnavailable>,
}

/// `driverLogs.unavailable`: why the logs are not on the row yet, since when, and whether the
/// `failure` and `errorMessage` written with the final status may change when they arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsUnavailable {
    /// The error of the read, one line.
    pub reason: String,
    /// ISO-8601 UTC: when the final status was written without them.
    pub since: String,
    /// The job ended in ERROR and its failure was classified without the driver's stderr (no
    /// model error record, no timeout: the cases the stderr tail can decide): the sweep
    /// classifies it again with the stderr it reads.
    #[serde(default)]
    pub refines_failure: bool,
}

/// What the sweep writes on a final job whose logs were unavailable: the logs, and when
/// [`LogsUnavailable::refines_failure`] said so, the failure and `errorMessage` classified again
/// with them. The row's status is never touched: it stays what EMR's end made it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsAttachment {
    pub job_id: String,
    /// The write holds only on this run's row.
    pub run_id: String,
    pub driver_logs: DriverLogs,
    pub failure: Option<Failure>,
    pub error_message: Option<String>,
    /// Appended to `jobMessages`: the driver's stdout lines (and the refined failure).
    pub job_messages: Vec<String>,
    pub at: DateTime<Utc>,
}

/// What a run produced for a `FILE` output asset, written into that entry of ModelOp's
/// `outputData` (`outputData[index].fileContent`, base64, and `.fileSize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutputContent {
    /// The asset's position in `outputData`.
    pub index: usize,
    pub file_content: String,
    pub file_size: u64,
}

impl FileOutputContent {
    /// The entry for the bytes the model wrote, encoded as ModelOp's `fileContent` (base64).
    pub fn of_bytes(index: usize, bytes: &[u8]) -> FileOutputContent {
        use base64::Engine as _;
        FileOutputContent { index, file_content: base64::engine::general_purpose::STANDARD.encode(bytes), file_size: bytes.len() as u64 }
    }
}

/// One `outputFiles` entry: an EXTERNAL_FILE output asset and whether it exists after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub file_url: String,
    pub exists: bool,
}

/// A status change the monitor writes, with the forward-only condition it must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub job_id: String,
    pub application_id: String,
    pub run_id: String,
    pub status: JobStatus,
    pub emr_state: String,
    /// Record `emr_state` in `statusHistory` only, leaving `emrState` as it is.
    pub history_only: bool,
    pub at: DateTime<Utc>,
    /// The job must be in one of these statuses.
    pub from_statuses: Vec<&'static str>,
    /// The job's `emrState` must not be one of these (already as far or further).
    pub blocked_emr_states: Vec<&'static str>,
    pub driver_logs: Option<DriverLogs>,
    pub error_message: Option<String>,
    pub model_result: Option<serde_json::Value>,
    pub output_files: Option<Vec<OutputFile>>,
    /// Appended to ModelOp's `jobMessages` (driver output and the failure, on a final state).
    pub job_messages: Vec<String>,
    /// The content of `FILE` outputs, on SUCCESS.
    pub file_outputs: Vec<FileOutputContent>,
    /// `attempts`, on a final state: what the row had, merged with ListJobRunAttempts.
    pub attempts: Option<Vec<AttemptRecord>>,
    /// `failure`, on ERROR.
    pub failure: Option<Failure>,
    /// `provenance`, on a final state, when GetJobRun answered.
    pub provenance: Option<Provenance>,
}

/// What a Job Run Retry event writes: the merged `attempts` and one `statusHistory` entry
/// (`RETRY attempt <n>`), only over the row as it was read (`seen_attempts`, `status`), so a
/// redelivered or concurrent copy of the event is refused instead of recorded twice. A retry of a
/// run submit has not recorded yet fills in the run id, as a state change does.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryUpdate {
    pub job_id: String,
    pub application_id: String,
    pub run_id: String,
    /// The new attempt's number (`newAttempt`), named in the history entry.
    pub attempt: Option<i64>,
    /// The row's `attempts` as read: the write's condition (none: the row had none).
    pub seen_attempts: Vec<AttemptRecord>,
    /// `seen_attempts` merged with the event's attempts.
    pub attempts: Vec<AttemptRecord>,
    /// The job's status as read, kept (a retry never moves a job back); the write's condition.
    pub status: JobStatus,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_reads_modelop_rows_with_nulls_and_either_runtime_field() {
        let job: MonitoredJob = serde_json::from_value(serde_json::json!({
            "id": "job-1", "jobStatus": "RUNNING", "outputData": null, "runtimeType": null,
            "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME", "sparkConf": {"--master": "yarn"}}, "_links": {}
        }))
        .unwrap();
        assert!(job.is_ours() && job.output_data.is_empty());
        assert_eq!((job.id(), job.status()), ("job-1", Some(JobStatus::Running)));
        let cleanup: crate::launch::staging_folder::CleanupSnapshot = serde_json::from_value(serde_json::json!({"jobStatus": "COMPLETE", "targetEngine": {"engineType": "SPARK_RUNTIME"}})).unwrap();
        assert!(!cleanup.header.is_ours());
    }

    /// The sample row with `fields` set over it.
    fn row(fields: serde_json::Value) -> MonitoredJob {
        let mut row = serde_json::json!({"id": "job-1", "jobStatus": "RUNNING", "runtimeType": "SPARK_SERVERLESS_RUNTIME"});
        row.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        serde_json::from_value(row).unwrap()
    }

    #[test]
    fn what_the_monitor_reads_off_a_row() {
        use serde_json::json;
        assert!(row(json!({})).is_ours());
        assert!(!row(json!({"runtimeType": "SPARK_RUNTIME"})).is_ours());
        use crate::launch::run_controls::Architecture;
        assert_eq!(row(json!({"emrApplicationArchitecture": "ARM64"})).architecture(), Some(Architecture::Arm64));
        assert_eq!(row(json!({"emrApplicationArchitecture": "SPARC"})).architecture(), None, "one this code does not know");
        assert_eq!(row(json!({"jobType": "MODEL_BATCH_JOB"})).job_type_or_unknown(), "MODEL_BATCH_JOB");
        assert_eq!(row(json!({"jobType": 7})).job_type_or_unknown(), "UNKNOWN");
        let attempts = row(json!({"attempts": [{"attempt": 1, "state": "FAILED"}, {"attempt": 2}]})).attempts;
        assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2]);
        assert!(row(json!({"attempts": [{"attempt": "one"}]})).attempts.is_empty(), "an unreadable list starts afresh");
    }

    #[test]
    fn the_row_says_the_run_ran_from_its_run_time_or_a_running_entry_in_its_history() {
        use serde_json::json;
        let waiting = json!({"status": "WAITING", "emrState": "SCHEDULED"});
        let cases = [
            (json!({}), false),
            (json!({"jobRunTime": 1_790_000_000_000_i64}), true),
            (json!({"jobRunTime": null}), false),
            (json!({"statusHistory": [waiting]}), false),
            (json!({"statusHistory": [waiting, {"status": "RUNNING"}]}), true),
            (json!({"statusHistory": [{"status": "WAITING", "emrState": "RUNNING"}]}), true),
            (json!({"statusHistory": "unreadable"}), false),
        ];
        for (fields, ran) in cases {
            assert_eq!(row(fields.clone()).ran_per_row(), ran, "{fields}");
        }
    }
}
