//! Ports: the narrow interfaces the functions' logic needs from AWS. The adapters in
//! [`crate::aws`] implement them with the SDK; tests may implement them in memory.

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AwsError;
use crate::job::{JobHeader, JobStatus, Timestamp};
use crate::manifest::PySparkJobManifest;
use crate::s3_uri::S3Uri;

/// A submit invocation's claim on a job between CREATED -> WAITING and the recorded run id. It
/// expires with the invocation's deadline, so a retry after a crash can take the job over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitLease {
    /// The Lambda request id of the invocation holding it.
    pub owner: String,
    #[serde(default, deserialize_with = "crate::job::lenient")]
    pub claimed_at: Option<Timestamp>,
    /// Unreadable is `None`, and a lease without an end counts as expired.
    #[serde(default, deserialize_with = "crate::job::lenient")]
    pub expires_at: Option<Timestamp>,
}

/// What the submit function needs to know of a job row to decide whether it may launch it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitSnapshot {
    #[serde(flatten)]
    pub header: JobHeader,
    #[serde(default)]
    pub submit_lease: Option<SubmitLease>,
}

/// What the submit function writes once the run is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRecord {
    pub run_id: String,
    pub application_id: String,
    pub staging_uri: String,
    pub at: DateTime<Utc>,
    /// `ignoredJobParameters`: job parameters with no meaning on EMR Serverless.
    pub ignored_parameters: Vec<crate::spark_conf::IgnoredParameter>,
    /// Appended to ModelOp's `jobMessages`.
    pub messages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Recorded; the job's status after the write (the monitor may already have moved it on, or
    /// the user may have cancelled it meanwhile).
    Recorded(Option<JobStatus>),
    /// The condition failed although the row exists: the run id recorded on it, if any (a
    /// different run, or none when the job moved on without one).
    OtherRunRecorded(Option<String>),
    /// The row was deleted meanwhile.
    JobMissing,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// CREATED -> WAITING with the lease, only if the row is CREATED and of our runtime.
    async fn claim_created(&self, job_id: &str, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError>;
    /// A consistent read of the fields that decide a claim; `None` when the row is gone.
    async fn submit_snapshot(&self, job_id: &str) -> Result<Option<SubmitSnapshot>, AwsError>;
    /// Replaces the lease of a WAITING job that has no run id, if the lease is still `observed`.
    async fn take_over(&self, job_id: &str, observed: Option<&SubmitLease>, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError>;
    /// Drops the lease if `owner` still holds it, so a retry need not wait for it to expire.
    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<(), AwsError>;
    async fn record_launch(&self, job_id: &str, launch: &LaunchRecord) -> Result<RecordOutcome, AwsError>;
    /// Ends a job that has no run in ERROR with `message`; false when the job had moved on.
    async fn fail_before_launch(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError>;
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes an object only if no object has that key (S3 `If-None-Match: *`): `Ok(false)` when
    /// one exists, which is left as it is. Borrowed bytes for what is built in, owned for the job's.
    async fn put_new(&self, bucket: &str, key: &str, body: Cow<'static, [u8]>, content_type: &str) -> Result<bool, AwsError>;
    /// A server-side copy, only if no object has that key; `Ok(false)` when one exists.
    async fn copy_new(&self, from: &S3Uri, bucket: &str, key: &str) -> Result<bool, AwsError>;
    /// Reads a UTF-8 object of at most `max_bytes`; larger objects are a permanent error.
    async fn get_text(&self, from: &S3Uri, max_bytes: u64) -> Result<String, AwsError>;
    /// Reads an object of at most `max_bytes`; larger objects are a permanent error.
    async fn get_bytes(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError>;
    /// Streams an object of at most `max_bytes` line by line (lossy UTF-8), holding one chunk and
    /// one line at a time, whatever the object's size.
    async fn for_each_line(&self, from: &S3Uri, max_bytes: u64, on_line: &mut (dyn for<'l> FnMut(&'l str) + Send)) -> Result<(), AwsError>;
    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<(), AwsError>;
    /// Every object under `prefix`, following ListObjectsV2's pages.
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, AwsError>;
    /// One ListObjectsV2 page (at most 1,000 objects) under `prefix`: the first when `continuation`
    /// is `None`, else the page that token leads to. A caller can act on a page while listing the next.
    async fn list_page(&self, bucket: &str, prefix: &str, continuation: Option<&str>) -> Result<ListedPage, AwsError>;
    /// The "folders" directly under `prefix`: ListObjectsV2's common prefixes for delimiter '/'.
    async fn list_folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError>;
    /// Deletes the keys in DeleteObjects batches and returns the keys S3 reported as not deleted,
    /// so the caller decides how often to retry them. `Err` only when a whole call failed.
    async fn delete_keys_reporting(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError>;
    /// The object's size, or `None` when there is no such object.
    async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, AwsError>;
    /// Whether any object's key starts with `prefix` (a file, or a folder Spark wrote).
    async fn has_objects(&self, bucket: &str, prefix: &str) -> Result<bool, AwsError>;
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedPage {
    /// The page's objects, in key order.
    pub objects: Vec<ListedObject>,
    /// The continuation token of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// A key a DeleteObjects response reported as not deleted, with S3's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelete {
    pub key: String,
    pub code: String,
    pub message: String,
}

/// What the cleanup function needs to know of a job row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSnapshot {
    #[serde(flatten)]
    pub header: JobHeader,
}

/// The jobs table as the cleanup function uses it.
#[async_trait]
pub trait CleanupStore: Send + Sync {
    /// A consistent read of the row's status; `None` when the row is gone.
    async fn cleanup_snapshot(&self, job_id: &str) -> Result<Option<CleanupSnapshot>, AwsError>;
    /// Sets `cleanedAt` (and `updatedAt`) if the row still exists; false when it does not.
    async fn mark_cleaned(&self, job_id: &str, at: DateTime<Utc>) -> Result<bool, AwsError>;
}

/// An application as found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationSummary {
    pub id: String,
    pub state: String,
}

/// How this service creates an application it does not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationSpec {
    pub name: String,
    pub release_label: String,
    pub idle_timeout_minutes: u32,
}

#[async_trait]
pub trait EmrServerless: Send + Sync {
    /// The newest application of that name that is not TERMINATED.
    async fn find_application(&self, name: &str) -> Result<Option<ApplicationSummary>, AwsError>;
    async fn create_application(&self, spec: &ApplicationSpec) -> Result<String, AwsError>;
    async fn start_application(&self, application_id: &str) -> Result<(), AwsError>;
    async fn start_job_run(&self, application_id: &str, manifest: &PySparkJobManifest) -> Result<String, AwsError>;
    /// A run of that name created after `created_after`, if any (names are job ids, so unique).
    async fn find_job_run(&self, application_id: &str, name: &str, created_after: DateTime<Utc>) -> Result<Option<String>, AwsError>;
    /// Cancels a run; a run that already ended is not an error.
    async fn cancel_job_run(&self, application_id: &str, run_id: &str) -> Result<(), AwsError>;
    async fn get_job_run(&self, application_id: &str, run_id: &str) -> Result<JobRunInfo, AwsError>;
}

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
    #[serde(default, deserialize_with = "crate::job::lenient")]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub submit_lease: Option<SubmitLease>,
    #[serde(default, deserialize_with = "crate::job::null_as_default")]
    pub output_data: Vec<crate::job::Asset>,
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
}

/// `driverLogs` on a finished job: the ends of the driver's stdout and stderr, and where the rest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverLogs {
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub log_group_name: String,
    /// Leads to every attempt's logs of the run.
    pub log_stream_name_prefix: String,
    /// The attempt `stdout` and `stderr` are the ends of (a retried run's last), when EMR says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
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
}

/// The jobs table as the monitor uses it.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    async fn monitored_job(&self, job_id: &str) -> Result<Option<MonitoredJob>, AwsError>;
    /// Through the `bySparkApplicationId` index.
    async fn job_by_run_id(&self, run_id: &str) -> Result<Option<MonitoredJob>, AwsError>;
    /// Writes the update if its condition holds; false when the job had moved on (or is gone).
    async fn apply_status(&self, update: &StatusUpdate) -> Result<bool, AwsError>;
    /// Appends a retry to `statusHistory` of a job that is not final; `status` is the job's
    /// status, kept in the entry (a retry is another attempt of the same run).
    async fn record_retry(&self, job_id: &str, run_id: &str, attempt: Option<i64>, status: JobStatus, at: DateTime<Utc>) -> Result<bool, AwsError>;
    /// Jobs in `status` not updated since `before`, through the `byJobStatus` index.
    async fn stale_jobs(&self, status: JobStatus, before: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError>;
    /// Ends a WAITING job that has no run and no live submit lease in ERROR.
    async fn fail_stuck(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError>;
}

/// What GetJobRun says of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRunInfo {
    pub state: String,
    pub state_details: Option<String>,
    pub name: Option<String>,
    pub tags: std::collections::HashMap<String, String>,
    pub attempt: Option<i32>,
}

/// The end of a log stream, read without loading the whole stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    pub text: String,
    pub truncated: bool,
    /// False when the stream does not exist (yet).
    pub found: bool,
}

#[async_trait]
pub trait LogReader: Send + Sync {
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize) -> Result<LogTail, AwsError>;
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
        let cleanup: CleanupSnapshot = serde_json::from_value(serde_json::json!({"jobStatus": "COMPLETE", "targetEngine": {"engineType": "SPARK_RUNTIME"}})).unwrap();
        assert!(!cleanup.header.is_ours());
    }
}
