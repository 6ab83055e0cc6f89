//! Ports: the narrow interfaces the functions' logic needs from AWS, one per consumer, so each
//! function depends on just the calls it makes. Traits only: the data they carry lives with the
//! rules that use it ([`crate::launch::lease`], [`crate::launch::application`], [`crate::outcome::job_run`],
//! [`crate::launch::staging_folder`]), and their one error type with its kinds in [`crate::error`]. The
//! adapters in [`crate::aws`] implement them with the SDK; [`crate::fakes`] in memory.
//!
//! | port | used by | AWS calls |
//! |---|---|---|
//! | [`JobStore`] | submit | DynamoDB UpdateItem, GetItem |
//! | [`MonitorStore`] | monitor | DynamoDB GetItem, Query, UpdateItem |
//! | [`CleanupStore`] | cleanup | DynamoDB GetItem, UpdateItem |
//! | [`StagingWriter`] | submit | S3 PutObject, CopyObject, GetObject, DeleteObjects |
//! | [`RunOutputReader`] | monitor | S3 GetObject, HeadObject, ListObjectsV2 |
//! | [`StagingFolders`] | cleanup | S3 ListObjectsV2, DeleteObjects |
//! | [`ApplicationCatalog`] | submit | EMR Serverless ListApplications, CreateApplication, StartApplication |
//! | [`JobRunLauncher`] | submit | EMR Serverless StartJobRun, ListJobRuns |
//! | [`JobRunCanceller`] | submit, cleanup | EMR Serverless CancelJobRun |
//! | [`JobRunReader`] | monitor | EMR Serverless GetJobRun, ListJobRunAttempts |
//! | [`LogReader`] | monitor | CloudWatch Logs GetLogEvents |

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::launch::application::{ApplicationSpec, ApplicationSummary};
use crate::outcome::cost::{JobCost, ResourceUsage};
use crate::outcome::failure::Failure;
use crate::error::AwsError;
use crate::job::item_size::WriteDetail;
use crate::job::record::JobStatus;
use crate::outcome::job_run::{JobRunAttempt, JobRunInfo, LogReadPatience, LogTail};
use crate::outcome::monitored_job::{LogsAttachment, MonitoredJob, RetryUpdate, StatusUpdate};
use crate::launch::lease::{LaunchRecord, RecordOutcome, SubmitLease, SubmitSnapshot};
use crate::launch::manifest::PySparkJobManifest;
use crate::job::s3_uri::S3Uri;
use crate::launch::staging_folder::{CleanupSnapshot, FailedDelete, ListedObject, ListedPage};

/// The jobs table as the submit function uses it.
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
    /// Records the started run on a WAITING job that has no other run.
    async fn record_launch(&self, job_id: &str, launch: &LaunchRecord) -> Result<RecordOutcome, AwsError>;
    /// Ends a job that has no run in ERROR with `message`; false when the job had moved on. How
    /// much is written is `detail` (`crate::job::item_size`): `Full` the status, `errorMessage`,
    /// `failure`, `jobEndTime`, a `statusHistory` entry and a `jobMessages` line; `Short` the same
    /// without the history entry and the line; `Core` only `jobStatus` (a row DynamoDB refused the
    /// others on for its size: ERROR is shorter than CREATED or WAITING, so it always fits).
    async fn fail_before_launch(&self, job_id: &str, message: &str, failure: &Failure, at: DateTime<Utc>, detail: WriteDetail) -> Result<bool, AwsError>;
}

/// The jobs table as the monitor uses it.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    async fn monitored_job(&self, job_id: &str) -> Result<Option<MonitoredJob>, AwsError>;
    /// Through the `bySparkApplicationId` index.
    async fn job_by_run_id(&self, run_id: &str) -> Result<Option<MonitoredJob>, AwsError>;
    /// Writes the update if its condition holds; false when the job had moved on (or is gone).
    async fn apply_status(&self, update: &StatusUpdate) -> Result<bool, AwsError>;
    /// Appends a retry to `statusHistory` of a job that is not final and sets its `attempts` to
    /// the merged list, if the row is still as read: its status is `status`, its `attempts` are
    /// `seen_attempts` and its run is this run or none yet (then it is filled in). False
    /// otherwise: the caller reads the row again (a redelivered event then finds its attempts
    /// there and writes nothing).
    async fn record_retry(&self, update: &RetryUpdate) -> Result<bool, AwsError>;
    /// Jobs in `status` not updated since `before`, through the `byJobStatus` index.
    async fn stale_jobs(&self, status: JobStatus, before: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError>;
    /// Ends a WAITING job that has no run and no live submit lease in ERROR.
    async fn fail_stuck(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError>;
    /// Writes `resourceUsage` (and `cost`, when priced) if [`crate::outcome::cost::supersedes`] lets it:
    /// the row has no usage, or usage that is not final and, unless `usage` is final, calculated
    /// to an earlier instant. Touches no other field. False when the rule refused it or the row
    /// is gone.
    async fn record_usage(&self, job_id: &str, usage: &ResourceUsage, cost: Option<&JobCost>) -> Result<bool, AwsError>;
    /// Jobs of `status` (a final one) updated at or after `since` with a run and no final
    /// `resourceUsage`.
    async fn jobs_awaiting_usage(&self, status: JobStatus, since: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError>;
    /// Jobs of `status` (a final one) updated at or after `since` whose `driverLogs` are marked
    /// `unavailable` (the final status was written without them): at most `at_most`, the least
    /// recently updated first (the `byJobStatus` index's order), pages of at most `at_most` rows
    /// evaluated, and no page of the index read once that many are found.
    async fn jobs_awaiting_logs(&self, status: JobStatus, since: DateTime<Utc>, at_most: usize) -> Result<Vec<MonitoredJob>, AwsError>;
    /// Writes the driver logs read later (and the failure they refine) onto a final job whose
    /// `driverLogs` are still marked `unavailable`, of the same run; never touches `jobStatus`.
    /// False when the row no longer waits for them (another pass attached them, or it is gone).
    async fn attach_logs(&self, attachment: &LogsAttachment) -> Result<bool, AwsError>;
}

/// The jobs table as the cleanup function uses it.
#[async_trait]
pub trait CleanupStore: Send + Sync {
    /// A consistent read of the row's status; `None` when the row is gone.
    async fn cleanup_snapshot(&self, job_id: &str) -> Result<Option<CleanupSnapshot>, AwsError>;
    /// Sets `cleanedAt` (and `updatedAt`) if the row still exists; false when it does not.
    async fn mark_cleaned(&self, job_id: &str, at: DateTime<Utc>) -> Result<bool, AwsError>;
}

/// S3 as the submit function uses it: reading a model source, staging a job's files without
/// replacing any, and taking back what a delivery staged for a job that was not its to launch.
#[async_trait]
pub trait StagingWriter: Send + Sync {
    /// Writes an object only if no object has that key (S3 `If-None-Match: *`): `Ok(false)` when
    /// one exists, which is left as it is. Borrowed bytes for what is built in, owned for the job's.
    async fn put_new(&self, bucket: &str, key: &str, body: Cow<'static, [u8]>, content_type: &str) -> Result<bool, AwsError>;
    /// A server-side copy, only if no object has that key; `Ok(false)` when one exists.
    async fn copy_new(&self, from: &S3Uri, bucket: &str, key: &str) -> Result<bool, AwsError>;
    /// Streams an object of at most `max_bytes` line by line (lossy UTF-8), holding one chunk and
    /// one line at a time, whatever the object's size; larger objects are a permanent error.
    async fn for_each_line(&self, from: &S3Uri, max_bytes: u64, on_line: &mut (dyn for<'l> FnMut(&'l str) + Send)) -> Result<(), AwsError>;
    /// Deletes the keys in DeleteObjects batches and returns the keys S3 reported as not deleted.
    /// `Err` only when a whole call failed.
    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError>;
}

/// S3 as the monitor uses it: what a finished run left in its staging folder and output locations.
#[async_trait]
pub trait RunOutputReader: Send + Sync {
    /// Reads a UTF-8 object of at most `max_bytes`; larger objects are a permanent error.
    async fn get_text(&self, from: &S3Uri, max_bytes: u64) -> Result<String, AwsError>;
    /// Reads an object of at most `max_bytes`; larger objects are a permanent error.
    async fn get_bytes(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError>;
    /// The object's size, or `None` when there is no such object.
    async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, AwsError>;
    /// Whether any object's key starts with `prefix` (a file, or a folder Spark wrote).
    async fn has_objects(&self, bucket: &str, prefix: &str) -> Result<bool, AwsError>;
}

/// S3 as the cleanup function uses it: listing and emptying staging folders.
#[async_trait]
pub trait StagingFolders: Send + Sync {
    /// Every object under `prefix`, following ListObjectsV2's pages.
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, AwsError>;
    /// One ListObjectsV2 page (at most 1,000 objects) under `prefix`: the first when `continuation`
    /// is `None`, else the page that token leads to. A caller can act on a page while listing the next.
    async fn list_page(&self, bucket: &str, prefix: &str, continuation: Option<&str>) -> Result<ListedPage, AwsError>;
    /// The "folders" directly under `prefix`: ListObjectsV2's common prefixes for delimiter '/'.
    async fn list_folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError>;
    /// Deletes the keys in DeleteObjects batches and returns the keys S3 reported as not deleted,
    /// so the caller decides how often to retry them. `Err` only when a whole call failed.
    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError>;
}

/// EMR Serverless applications, as the submit function finds or creates the one a job runs on.
#[async_trait]
pub trait ApplicationCatalog: Send + Sync {
    /// The newest application of that name that is not TERMINATED.
    async fn find_application(&self, name: &str) -> Result<Option<ApplicationSummary>, AwsError>;
    /// Creates an application; its id.
    async fn create_application(&self, spec: &ApplicationSpec) -> Result<String, AwsError>;
    async fn start_application(&self, application_id: &str) -> Result<(), AwsError>;
}

/// Starting a job's run, and finding one a crashed invocation may have started.
#[async_trait]
pub trait JobRunLauncher: Send + Sync {
    /// Starts the manifest's run; its run id.
    async fn start_job_run(&self, application_id: &str, manifest: &PySparkJobManifest) -> Result<String, AwsError>;
    /// A run of that name created after `created_after`, if any (names are job ids, so unique).
    async fn find_job_run(&self, application_id: &str, name: &str, created_after: DateTime<Utc>) -> Result<Option<String>, AwsError>;
}

/// Cancelling a job's run.
#[async_trait]
pub trait JobRunCanceller: Send + Sync {
    /// Cancels a run, letting its driver shut down for `grace_period_seconds` (CancelJobRun
    /// `shutdownGracePeriodInSeconds`; 0 stops it at once). A run that already ended is not an error.
    async fn cancel_job_run(&self, application_id: &str, run_id: &str, grace_period_seconds: u32) -> Result<(), AwsError>;
}

/// Reading a run's state.
#[async_trait]
pub trait JobRunReader: Send + Sync {
    /// The run (its latest attempt).
    async fn get_job_run(&self, application_id: &str, run_id: &str) -> Result<JobRunInfo, AwsError>;
    /// One attempt of the run (GetJobRun with `attempt`; without it EMR describes the latest).
    async fn get_job_run_attempt(&self, application_id: &str, run_id: &str, attempt: i32) -> Result<JobRunInfo, AwsError>;
    /// Every attempt of the run, following ListJobRunAttempts' pages, in the order EMR lists them.
    async fn list_job_run_attempts(&self, application_id: &str, run_id: &str) -> Result<Vec<JobRunAttempt>, AwsError>;
}

/// EMR Serverless as the submit function uses it.
pub trait SubmitEmr: ApplicationCatalog + JobRunLauncher + JobRunCanceller {}
impl<T: ApplicationCatalog + JobRunLauncher + JobRunCanceller + ?Sized> SubmitEmr for T {}

/// CloudWatch Logs as the monitor uses it: the end of a driver's log stream.
#[async_trait]
pub trait LogReader: Send + Sync {
    /// The last `max_bytes` of the stream (empty, not found, when it does not exist); a throttled
    /// call is retried as `patience` says.
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize, patience: LogReadPatience) -> Result<LogTail, AwsError>;
}
