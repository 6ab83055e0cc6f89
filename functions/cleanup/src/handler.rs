//! The seed's "delete the job's temporary working directory", per DynamoDB stream record: when a
//! job of our runtime becomes COMPLETE, ERROR or CANCELLED, its staging folder is emptied (after
//! cancelling its run, if ModelOp Center cancelled it) and `cleanedAt` is recorded. A scheduled
//! event sweeps folders whose job is finished or gone and that nobody wrote to for a while.
//!
//! Every prefix that reaches DeleteObjects comes from `shared::launch::staging_folder`, which only yields
//! `<staging prefix><valid job id>/` in the configured bucket.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, error, info, warn};

use shared::metrics;
use shared::error::{AwsError, AwsErrorKind, Disposition, JobError};
use shared::launch::staging_folder::{
    cleanup_target, decide_release, is_orphan, job_id_of_folder, job_target, CleanupAction, CleanupTarget, FolderOwner, ListedObject, ListedPage,
};
use shared::config::{CleanupConfig, ServiceConfig};
use shared::text::printable;
use shared::ports::{CleanupStore, JobRunCanceller, StagingFolders};
use shared::stream::{decode_record, handle_stream_batch, image_header, Retryable};

/// DeleteObjects rounds for the keys S3 reports as not deleted, before the record is retried.
const DELETE_ATTEMPTS: u32 = 3;
/// Pause before re-deleting failed keys, times the round number: they are usually throttled.
const DELETE_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// EventBridge's `detail-type` of a schedule rule's event.
const SCHEDULED_EVENT: &str = "Scheduled Event";

/// Where cleanup failed; named in every error message.
/// Its `Display` is the phrase error messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum Step {
    #[strum(to_string = "decode job")]
    Decode,
    #[strum(to_string = "check staging folder")]
    CheckTarget,
    #[strum(to_string = "cancel job run")]
    CancelRun,
    #[strum(to_string = "list staging objects")]
    ListObjects,
    #[strum(to_string = "delete staging objects")]
    DeleteObjects,
    #[strum(to_string = "record cleanedAt")]
    MarkCleaned,
    #[strum(to_string = "read job status")]
    ReadJob,
}

/// A failed cleanup: which job, which step, what becomes of the record.
pub type CleanupError = JobError<Step>;

/// The cleanup function's one decision about a failed AWS call: a transient one retries the
/// record (the folder is emptied by a later delivery); anything else is logged and the record is
/// done, so one job that cannot be cleaned never blocks the others (the orphan sweep and the
/// bucket's lifecycle rule are the backstops).
pub fn disposition_of(_step: Step, kind: AwsErrorKind) -> Disposition {
    match kind {
        AwsErrorKind::Transient => Disposition::Retry,
        _ => Disposition::Fail,
    }
}

fn aws_error(job_id: &str, step: Step) -> impl FnOnce(AwsError) -> CleanupError + '_ {
    move |err| CleanupError::aws(job_id, step, disposition_of(step, err.kind), err)
}

/// A failed orphan sweep; the invocation fails with it so the schedule's errors are visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("orphan sweep: list job folders under {uri}: {source}")]
    ListFolders { uri: String, source: AwsError },
    #[error("orphan sweep: {failed} of {folders} job folders could not be cleaned; first: {first}")]
    Folders { failed: usize, folders: usize, first: CleanupError },
}

impl From<SweepError> for lambda_runtime::Diagnostic {
    fn from(err: SweepError) -> Self {
        lambda_runtime::Diagnostic { error_type: "CleanupSweepError".into(), error_message: err.to_string() }
    }
}

/// What became of one stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    Cleaned { job_id: String, deleted: usize, run_cancelled: bool },
    Skipped(String),
    /// A permanent failure (an unsafe staging folder, a run that could not be cancelled): logged,
    /// nothing deleted, and the record is done.
    Failed(CleanupError),
}

/// The answer to one invocation: the stream batch response, or the sweep's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CleanupResponse {
    Stream(DynamoDbEventResponse),
    Sweep(SweepReport),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Job folders found under the staging prefix.
    pub folders: usize,
    /// The job ids whose folders were deleted.
    pub deleted: Vec<String>,
    /// Folders kept: a live job, too recent, or not a job folder.
    pub kept: usize,
}

/// The fields of the new image cleanup reads besides the header.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CleanupFields {
    #[serde(default)]
    staging_uri: Option<String>,
    #[serde(default)]
    spark_application_id: Option<String>,
    #[serde(default)]
    emr_application_id: Option<String>,
    /// The grace period whoever cancelled the job asked for (`modelop-spark cancel --grace`),
    /// over `EMR_CANCEL_GRACE_PERIOD_SECONDS`; read leniently, a value outside EMR's range is ignored.
    #[serde(default, deserialize_with = "shared::job::record::lenient")]
    cancel_grace_period_seconds: Option<u32>,
}

/// The grace period of a user's cancel: the row's own when it is one EMR accepts (0, or 15-1800
/// seconds), else the configured one.
fn cancel_grace(requested: Option<u32>, configured: u32) -> u32 {
    match requested {
        Some(seconds) if shared::launch::run_controls::cancel_grace_period_seconds(&seconds.to_string(), Some(shared::launch::run_controls::GRACE_PERIOD_SINCE)).is_ok() => seconds,
        _ => configured,
    }
}

enum FolderOutcome {
    Deleted(String),
    Kept,
}

/// The function's logic over its ports; `new` takes the fields in order.
#[derive(derive_new::new)]
pub struct CleanupHandler {
    service: ServiceConfig,
    cleanup: CleanupConfig,
    store: Arc<dyn CleanupStore>,
    objects: Arc<dyn StagingFolders>,
    emr: Arc<dyn JobRunCanceller>,
}

impl CleanupHandler {
    /// One invocation: an EventBridge schedule runs the orphan sweep; anything else is a stream batch.
    pub async fn handle_event(&self, payload: Value) -> Result<CleanupResponse, SweepError> {
        if payload.get("detail-type").and_then(Value::as_str) == Some(SCHEDULED_EVENT) {
            return self.sweep_orphans(Utc::now()).await.map(CleanupResponse::Sweep);
        }
        Ok(CleanupResponse::Stream(self.handle_batch(payload).await))
    }

    /// Handles one stream batch, records concurrently (bounded by `CLEANUP_MAX_CONCURRENCY`). A
    /// transient failure reports the earliest failed sequence number so Lambda retries from there.
    pub async fn handle_batch(&self, payload: Value) -> DynamoDbEventResponse {
        handle_stream_batch(payload, self.cleanup.max_concurrency, |raw| self.handle_record(raw)).await
    }

    /// One record. `Err` only for transient failures; malformed records are skipped and permanent
    /// failures are logged and returned as `Ok(Failed)`, so neither blocks the shard.
    pub async fn handle_record(&self, raw: Value) -> Result<RecordResult, CleanupError> {
        let record = match decode_record(raw) {
            Ok(record) => record,
            Err(reason) => return Ok(RecordResult::Skipped(reason)),
        };
        if record.event_name != "MODIFY" {
            debug!(event_id = %record.event_id, event_name = %record.event_name, "not a modify; skipped");
            return Ok(RecordResult::Skipped(format!("{} record", record.event_name)));
        }
        let new_image = record.change.new_image;
        let (new, old) = match (
            image_header(&new_image),
            image_header(&record.change.old_image),
        ) {
            (Ok(new), Ok(old)) => (new, old),
            (Err(e), _) | (_, Err(e)) => {
                error!(event_id = %record.event_id, error = %e, "stream record image is not a job; skipped");
                return Ok(RecordResult::Skipped(format!("unreadable image: {e}")));
            }
        };
        if !new.is_ours() {
            debug!(event_id = %record.event_id, "not a SPARK_SERVERLESS_RUNTIME job; skipped");
            return Ok(RecordResult::Skipped("not a job of this runtime".into()));
        }
        let action = decide_release(old.status(), new.status());
        if action == CleanupAction::Ignore {
            debug!(event_id = %record.event_id, "not a transition into a final state; skipped");
            return Ok(RecordResult::Skipped("not a transition into a final state".into()));
        }
        let Some(job_id) = new.id else {
            error!(event_id = %record.event_id, "job image has no id; skipped");
            return Ok(RecordResult::Skipped("job without id".into()));
        };
        let result = match serde_dynamo::from_item::<_, CleanupFields>(new_image) {
            Ok(fields) => self.release_job(&job_id, action, &fields).await,
            Err(e) => Err(CleanupError::new(&job_id, Step::Decode, Disposition::Fail, format!("the job record is malformed: {e}"))),
        };
        match result {
            Ok(result) => {
                if let RecordResult::Cleaned { deleted, run_cancelled, .. } = &result {
                    metrics::cleanup_done(metrics::CleanupDone {
                        folders_cleaned: 1,
                        objects_deleted: *deleted as u64,
                        cancels_sent: u64::from(*run_cancelled),
                        ..Default::default()
                    });
                }
                Ok(result)
            }
            Err(err) if err.is_transient() => {
                warn!(job_id = %err.job_id, step = %err.step, error = %err, "transient failure; the record will be retried");
                Err(err)
            }
            Err(err) => {
                error!(job_id = %err.job_id, step = %err.step, error = %err, "cleanup refused or failed; nothing more is done for this record");
                if err.step == Step::CheckTarget {
                    metrics::cleanup_done(metrics::CleanupDone { cleanup_refusals: 1, ..Default::default() });
                }
                Ok(RecordResult::Failed(err))
            }
        }
    }

    /// Cancels the run if ModelOp Center cancelled the job, then empties the job's folder and
    /// records `cleanedAt`.
    async fn release_job(&self, job_id: &str, action: CleanupAction, fields: &CleanupFields) -> Result<RecordResult, CleanupError> {
        // Checked before anything else happens, but a refused folder must not keep a cancelled
        // job's run going, so the cancel below still runs and the refusal is reported after it.
        let target = cleanup_target(&self.service.staging, job_id, fields.staging_uri.as_deref())
            .map_err(|e| CleanupError::new(job_id, Step::CheckTarget, Disposition::Fail, e.to_string()));
        let run_cancelled = match action {
            CleanupAction::CancelRunAndClean => self.cancel_run(job_id, fields).await?,
            _ => false,
        };
        let target = target?;
        let deleted = self.folder(job_id, &target).empty().await?;
        self.mark_cleaned(job_id).await?;
        info!(job_id = %job_id, staging_uri = %target.uri(), deleted, run_cancelled, "staging folder cleaned");
        Ok(RecordResult::Cleaned { job_id: job_id.to_string(), deleted, run_cancelled })
    }

    /// True when CancelJobRun was called (and succeeded, or the run had already ended). The cancel
    /// passes the grace period the row asks for (`cancelGracePeriodSeconds`), else the configured
    /// one, so the driver's shutdown hooks run.
    async fn cancel_run(&self, job_id: &str, fields: &CleanupFields) -> Result<bool, CleanupError> {
        let Some(run_id) = fields.spark_application_id.as_deref() else {
            debug!(job_id = %job_id, "cancelled before a run was recorded; nothing to cancel");
            return Ok(false);
        };
        let Some(application_id) = fields.emr_application_id.as_deref() else {
            // Submit records both ids in one write, so this row was edited by hand.
            return Err(CleanupError::new(job_id, Step::CancelRun, Disposition::Fail, format!("run {run_id} has no emrApplicationId to cancel it in")));
        };
        let grace = cancel_grace(fields.cancel_grace_period_seconds, self.cleanup.cancel_grace_period_seconds);
        match self.emr.cancel_job_run(application_id, run_id, grace).await {
            Ok(()) => {
                info!(job_id = %job_id, application_id = %application_id, job_run_id = %run_id, grace_period_seconds = grace, "job run cancelled");
                Ok(true)
            }
            Err(e) if e.is(AwsErrorKind::NotFound) => {
                warn!(job_id = %job_id, job_run_id = %run_id, error = %e, "the run or its application no longer exists; nothing to cancel");
                Ok(false)
            }
            Err(e) => Err(aws_error(job_id, Step::CancelRun)(e)),
        }
    }

    /// The job's staging folder, for listing and deleting.
    fn folder<'a>(&'a self, job_id: &'a str, target: &'a CleanupTarget) -> StagingFolder<'a> {
        StagingFolder { objects: self.objects.as_ref(), job_id, target }
    }

    async fn mark_cleaned(&self, job_id: &str) -> Result<(), CleanupError> {
        let recorded = self.store.mark_cleaned(job_id, Utc::now()).await.map_err(|e| aws_error(job_id, Step::MarkCleaned)(e))?;
        if !recorded {
            info!(job_id = %job_id, "the job row no longer exists; cleanedAt not recorded");
        }
        Ok(())
    }

    /// The orphan sweep: every job folder under the staging prefix whose newest object is at least
    /// `CLEANUP_ORPHAN_MIN_AGE_HOURS` old and whose job is finished or gone is deleted.
    pub async fn sweep_orphans(&self, now: DateTime<Utc>) -> Result<SweepReport, SweepError> {
        let staging = &self.service.staging;
        let root = staging.uri();
        if staging.prefix.is_empty() {
            // With no prefix, every top-level folder of the bucket looks like a job folder; a
            // missing row would then license deleting data that is not ours.
            warn!(staging_uri = %root, "STAGING_PREFIX is empty; the orphan sweep does not run");
            return Ok(SweepReport::default());
        }
        let folders = self
            .objects
            .list_folders(&staging.bucket, &staging.prefix)
            .await
            .map_err(|source| SweepError::ListFolders { uri: root.to_string(), source })?;
        let outcomes: Vec<Result<FolderOutcome, CleanupError>> = stream::iter(&folders)
            .map(|folder| self.sweep_folder(folder, now))
            .buffer_unordered(self.cleanup.max_concurrency)
            .collect()
            .await;
        let mut report = SweepReport { folders: folders.len(), ..SweepReport::default() };
        let mut failures = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(FolderOutcome::Deleted(job_id)) => report.deleted.push(job_id),
                Ok(FolderOutcome::Kept) => report.kept += 1,
                Err(e) => failures.push(e),
            }
        }
        report.deleted.sort();
        metrics::cleanup_done(metrics::CleanupDone { orphan_folders: report.deleted.len() as u64, ..Default::default() });
        info!(staging_uri = %root, folders = report.folders, deleted = report.deleted.len(), kept = report.kept, failed = failures.len(), "orphan sweep done");
        let failed = failures.len();
        match failures.into_iter().next() {
            None => Ok(report),
            Some(first) => Err(SweepError::Folders { failed, folders: report.folders, first }),
        }
    }

    async fn sweep_folder(&self, folder: &str, now: DateTime<Utc>) -> Result<FolderOutcome, CleanupError> {
        let Some(job_id) = job_id_of_folder(&self.service.staging, folder) else {
            warn!(folder = %printable(folder), "not a job folder; left alone");
            return Ok(FolderOutcome::Kept);
        };
        let target = job_target(&self.service.staging, job_id).map_err(|e| CleanupError::new(job_id, Step::CheckTarget, Disposition::Fail, e.to_string()))?;
        let snapshot = self.store.cleanup_snapshot(job_id).await.map_err(|e| aws_error(job_id, Step::ReadJob)(e))?;
        let owner = match &snapshot {
            None => FolderOwner::Missing,
            // A row of another runtime never owns a folder here; it is kept rather than guessed at.
            Some(row) if row.header.is_ours() => {
                FolderOwner::Row(row.header.status())
            }
            Some(_) => FolderOwner::Row(None),
        };
        let listed = self.objects.list_keys(&target.bucket, &target.prefix).await.map_err(|e| aws_error(job_id, Step::ListObjects)(e))?;
        let newest = listed.iter().filter_map(|o| o.last_modified).max();
        if !is_orphan(owner, newest, now, self.cleanup.orphan_min_age) {
            debug!(job_id = %job_id, owner = ?owner, newest = ?newest, "staging folder kept");
            return Ok(FolderOutcome::Kept);
        }
        let deleted = self.folder(job_id, &target).delete_listed(listed).await?;
        if snapshot.is_some() {
            self.mark_cleaned(job_id).await?;
        }
        info!(job_id = %job_id, staging_uri = %target.uri(), owner = ?owner, deleted, "orphaned staging folder deleted");
        Ok(FolderOutcome::Deleted(job_id.to_string()))
    }
}

/// One job's staging folder in the object store: the listing and deleting cleanup does, apart
/// from the decisions around it.
struct StagingFolder<'a> {
    objects: &'a dyn StagingFolders,
    job_id: &'a str,
    target: &'a CleanupTarget,
}

impl StagingFolder<'_> {
    /// Deletes everything under the folder a page at a time, each page's DeleteObjects running
    /// while the next page is listed: n objects take ⌈n/1000⌉ + 1 sequential waves of S3 calls
    /// instead of 2 × ⌈n/1000⌉, and at most two pages are held. An empty folder is a success.
    async fn empty(&self) -> Result<usize, CleanupError> {
        let mut page = self.list_page(None).await?;
        let mut total = 0;
        let mut failed = Vec::new();
        loop {
            let keys = self.keys_in_folder(page.objects);
            total += keys.len();
            let delete = self.delete_round(keys, 1);
            let Some(token) = page.next else {
                failed.extend(delete.await?);
                break;
            };
            let (deleted, next) = futures::join!(delete, self.list_page(Some(&token)));
            failed.extend(deleted?);
            page = next?;
        }
        self.delete_again(total, failed).await
    }

    /// Deletes objects listed beforehand (the sweep lists a folder whole to date it first).
    async fn delete_listed(&self, listed: Vec<ListedObject>) -> Result<usize, CleanupError> {
        let keys = self.keys_in_folder(listed);
        let total = keys.len();
        let failed = self.delete_round(keys, 1).await?;
        self.delete_again(total, failed).await
    }

    async fn list_page(&self, continuation: Option<&str>) -> Result<ListedPage, CleanupError> {
        self.objects
            .list_page(&self.target.bucket, &self.target.prefix, continuation)
            .await
            .map_err(|e| aws_error(self.job_id, Step::ListObjects)(e))
    }

    /// The listed keys that are in the folder. S3 only returns keys under the requested prefix;
    /// checked again because a wrong key here would delete another job's file.
    fn keys_in_folder(&self, listed: Vec<ListedObject>) -> Vec<String> {
        listed.into_iter().map(|o| o.key).filter(|k| k.starts_with(&self.target.prefix)).collect()
    }

    /// One DeleteObjects round over `keys`; returns the keys S3 reported as not deleted.
    async fn delete_round(&self, keys: Vec<String>, round: u32) -> Result<Vec<String>, CleanupError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let failed = self
            .objects
            .delete_keys(&self.target.bucket, &keys)
            .await
            .map_err(|e| aws_error(self.job_id, Step::DeleteObjects)(e))?;
        if let Some(first) = failed.first() {
            warn!(job_id = %self.job_id, round, failed = failed.len(), first_key = %first.key, code = %first.code, "some keys were not deleted");
        }
        Ok(failed.into_iter().map(|f| f.key).collect())
    }

    /// The later rounds (up to [`DELETE_ATTEMPTS`] in all) over the keys not deleted yet; `total`
    /// is the number of keys the folder held, for the error message.
    async fn delete_again(&self, total: usize, mut pending: Vec<String>) -> Result<usize, CleanupError> {
        for round in 2..=DELETE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(DELETE_RETRY_BACKOFF * (round - 1)).await;
            pending = self.delete_round(pending, round).await?;
        }
        if let Some(first) = pending.first() {
            let message = format!(
                "{} of {total} objects under {} were not deleted after {DELETE_ATTEMPTS} attempts, first {first:?}",
                pending.len(),
                self.target.uri()
            );
            return Err(CleanupError::new(self.job_id, Step::DeleteObjects, Disposition::Retry, message));
        }
        Ok(total)
    }
}

#[cfg(test)]
mod decisions;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancels_grace_is_the_rows_when_emr_accepts_it() {
        let cases = [(None, 0, 0), (None, 30, 30), (Some(45), 0, 45), (Some(0), 30, 0), (Some(1800), 0, 1800), (Some(5), 30, 30), (Some(1801), 0, 0)];
        for (requested, configured, expected) in cases {
            assert_eq!(cancel_grace(requested, configured), expected, "{requested:?} over {configured}");
        }
    }

    #[test]
    fn errors_name_job_step_and_cause() {
        let err = CleanupError::new("job-7", Step::DeleteObjects, Disposition::Retry, "SlowDown");
        assert_eq!(err.to_string(), "job job-7: delete staging objects: SlowDown");
        assert!(err.is_transient());
        let denied = AwsError::new("EMR Serverless", "CancelJobRun", AwsErrorKind::Permanent, "AccessDeniedException: no");
        let err = aws_error("job-7", Step::CancelRun)(denied);
        assert!(!err.is_transient());
        assert_eq!(err.to_string(), "job job-7: cancel job run: EMR Serverless CancelJobRun failed: AccessDeniedException: no");
    }

    #[test]
    fn the_failure_policy_is_one_table() {
        use AwsErrorKind::*;
        let steps = [Step::CheckTarget, Step::CancelRun, Step::ListObjects, Step::DeleteObjects, Step::MarkCleaned, Step::ReadJob];
        for step in steps {
            assert_eq!(disposition_of(step, Transient), Disposition::Retry, "{step}");
            // ItemTooLarge: `cleanedAt` on a row at DynamoDB's 400 KB limit is never retried.
            for kind in [NotFound, ConditionFailed, Permanent, ItemTooLarge] {
                assert_eq!(disposition_of(step, kind), Disposition::Fail, "{step} / {kind}: logged, the record is done");
            }
        }
    }

    #[test]
    fn sweep_errors_become_a_named_lambda_error() {
        let err = SweepError::ListFolders { uri: "s3://b/p/".into(), source: AwsError::new("S3", "ListObjectsV2", AwsErrorKind::Transient, "SlowDown") };
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "CleanupSweepError");
        assert_eq!(diagnostic.error_message, "orphan sweep: list job folders under s3://b/p/: S3 ListObjectsV2 failed: SlowDown");
    }

    mod staging_folder {
        use std::collections::HashSet;
        use std::sync::Mutex;

        use async_trait::async_trait;
        use shared::launch::staging_folder::FailedDelete;

        use super::*;

        const PREFIX: &str = "staging/job-1/";

        /// A bucket served in pages of two keys, whose calls each yield once between start and
        /// end, so calls that run together interleave in `events`.
        #[derive(Default)]
        struct PagedBucket {
            keys: Vec<String>,
            /// Refused by every DeleteObjects; `refused_once` only by the first.
            refused: HashSet<String>,
            refused_once: Mutex<HashSet<String>>,
            /// The continuation token whose ListObjectsV2 fails.
            list_fails_at: Option<&'static str>,
            delete_fails: bool,
            events: Mutex<Vec<String>>,
        }

        const PAGE: usize = 2;

        impl PagedBucket {
            fn with_keys(names: &[&str]) -> Self {
                PagedBucket { keys: names.iter().map(|n| n.to_string()).collect(), ..PagedBucket::default() }
            }

            async fn call(&self, name: String) {
                self.events.lock().unwrap().push(format!("+{name}"));
                tokio::task::yield_now().await;
                self.events.lock().unwrap().push(format!("-{name}"));
            }

            fn events(&self) -> Vec<String> {
                self.events.lock().unwrap().clone()
            }
        }

        fn key(name: &str) -> String {
            format!("{PREFIX}{name}")
        }

        fn slow_down(operation: &'static str) -> AwsError {
            AwsError::new("S3", operation, AwsErrorKind::Transient, "SlowDown: reduce your request rate")
        }

        #[async_trait]
        impl StagingFolders for PagedBucket {
            async fn list_page(&self, _bucket: &str, _prefix: &str, continuation: Option<&str>) -> Result<ListedPage, AwsError> {
                self.call(format!("list {}", continuation.unwrap_or("-"))).await;
                if continuation.is_some() && continuation == self.list_fails_at {
                    return Err(slow_down("ListObjectsV2"));
                }
                // The whole bucket, whatever the prefix: a key outside the folder must still be left alone.
                let start: usize = continuation.map_or(0, |t| t.trim_start_matches('t').parse().unwrap());
                let end = (start + PAGE).min(self.keys.len());
                let objects = self.keys[start..end].iter().map(|k| ListedObject { key: k.clone(), last_modified: None }).collect();
                Ok(ListedPage { objects, next: (end < self.keys.len()).then(|| format!("t{end}")) })
            }

            async fn delete_keys(&self, _bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
                let names: Vec<&str> = keys.iter().map(|k| k.rsplit('/').next().unwrap()).collect();
                self.call(format!("delete {}", names.join(","))).await;
                if self.delete_fails {
                    return Err(slow_down("DeleteObjects"));
                }
                let mut once = self.refused_once.lock().unwrap();
                let refused = keys.iter().filter(|k| self.refused.contains(*k) || once.remove(*k));
                Ok(refused.map(|k| FailedDelete { key: k.clone(), code: "SlowDown".into(), message: "reduce your request rate".into() }).collect())
            }

            async fn list_keys(&self, _: &str, _: &str) -> Result<Vec<ListedObject>, AwsError> {
                unreachable!("not used by a staging folder")
            }
            async fn list_folders(&self, _: &str, _: &str) -> Result<Vec<String>, AwsError> {
                unreachable!("not used by a staging folder")
            }
        }

        async fn empty(bucket: &PagedBucket) -> Result<usize, CleanupError> {
            let target = CleanupTarget { bucket: "b".into(), prefix: PREFIX.into() };
            StagingFolder { objects: bucket, job_id: "job-1", target: &target }.empty().await
        }

        #[tokio::test]
        async fn each_page_is_deleted_while_the_next_is_listed() {
            let bucket = PagedBucket::with_keys(&[&key("a"), &key("b"), &key("c"), &key("d"), &key("e")]);
            assert_eq!(empty(&bucket).await, Ok(5));
            let expected = [
                "+list -", "-list -",
                "+delete a,b", "+list t2", "-delete a,b", "-list t2",
                "+delete c,d", "+list t4", "-delete c,d", "-list t4",
                "+delete e", "-delete e",
            ];
            assert_eq!(bucket.events(), expected, "list k+1 overlaps delete k, and never runs further ahead");
        }

        #[tokio::test]
        async fn an_empty_folder_is_one_listing_and_keys_outside_it_stay() {
            let bucket = PagedBucket::default();
            assert_eq!(empty(&bucket).await, Ok(0));
            assert_eq!(bucket.events(), ["+list -", "-list -"]);

            let bucket = PagedBucket::with_keys(&["staging/job-10/x", &key("a"), "staging/job-1", "other/job-1/b"]);
            assert_eq!(empty(&bucket).await, Ok(1), "only the folder's own key counts");
            let deletes: Vec<String> = bucket.events().into_iter().filter(|e| e.starts_with("+delete")).collect();
            assert_eq!(deletes, ["+delete a"]);
        }

        #[tokio::test]
        async fn refused_keys_are_deleted_again_once_the_folder_is_listed() {
            let bucket = PagedBucket::with_keys(&[&key("a"), &key("b"), &key("c")]);
            bucket.refused_once.lock().unwrap().extend([key("b"), key("c")]);
            assert_eq!(empty(&bucket).await, Ok(3));
            let deletes: Vec<String> = bucket.events().into_iter().filter(|e| e.starts_with("+delete")).collect();
            assert_eq!(deletes, ["+delete a,b", "+delete c", "+delete b,c"]);

            let bucket = PagedBucket { refused: HashSet::from([key("c")]), ..PagedBucket::with_keys(&[&key("a"), &key("b"), &key("c")]) };
            let err = empty(&bucket).await.unwrap_err();
            assert_eq!((err.step, err.is_transient()), (Step::DeleteObjects, true));
            assert_eq!(
                err.to_string(),
                format!("job job-1: delete staging objects: 1 of 3 objects under s3://b/{PREFIX} were not deleted after 3 attempts, first {:?}", key("c"))
            );
        }

        /// The rounds after the first wait longer each time: 200 ms before the second, 400 ms
        /// before the third (on tokio's paused clock: no real time passes).
        #[tokio::test(start_paused = true)]
        async fn each_later_round_waits_longer_than_the_one_before() {
            let bucket = PagedBucket { refused: HashSet::from([key("c")]), ..PagedBucket::with_keys(&[&key("a"), &key("c")]) };
            let started = tokio::time::Instant::now();
            empty(&bucket).await.unwrap_err();
            assert_eq!(started.elapsed(), DELETE_RETRY_BACKOFF * 3);
            assert_eq!(bucket.events().iter().filter(|e| e.starts_with("+delete")).count(), DELETE_ATTEMPTS as usize);
        }

        #[tokio::test]
        async fn a_failed_call_names_the_job_and_its_step() {
            let cases = [
                (PagedBucket { list_fails_at: Some("t2"), ..PagedBucket::with_keys(&[&key("a"), &key("b"), &key("c")]) },
                 Step::ListObjects, "job job-1: list staging objects: S3 ListObjectsV2 failed: SlowDown: reduce your request rate"),
                (PagedBucket { delete_fails: true, ..PagedBucket::with_keys(&[&key("a"), &key("b"), &key("c")]) },
                 Step::DeleteObjects, "job job-1: delete staging objects: S3 DeleteObjects failed: SlowDown: reduce your request rate"),
            ];
            for (bucket, step, message) in cases {
                let err = empty(&bucket).await.unwrap_err();
                assert_eq!((err.step, err.to_string(), err.is_transient()), (step, message.to_string(), true));
            }
        }
    }
}
