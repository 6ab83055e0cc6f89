//! The bridge's ports: model-manage as the bridge uses it, and the jobs table as the bridge writes
//! it. Traits only; the adapters are in [`crate::model_manage`], the fakes in the bridge's unit
//! tests. Both answer [`AwsError`] (for model-manage: service `model-manage`, the HTTP status as
//! `code`), so each failure has one kind the bridge's policy table decides on.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::hal::{Finder, FinderQuery, JobPage};
use crate::error::AwsError;
use crate::job::record::JobStatus;

/// A job as model-manage answers it, with the entity tag it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteJob {
    pub document: Value,
    /// The `ETag` header (`"<version>"`), when model-manage sent one.
    pub etag: Option<String>,
}

/// What became of a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOutcome {
    /// Applied; the job after it when model-manage answered with a body, and its new `ETag`.
    Patched { etag: Option<String> },
    /// `If-Match` did not hold (412) or the version conflicted (409): someone else wrote first.
    Conflict,
    /// No such job (404).
    Missing,
}

/// model-manage's jobs, over HTTP with an OAuth2 bearer token.
#[async_trait]
pub trait ModelManage: Send + Sync {
    /// The finders `GET …/jobs/search` lists.
    async fn list_finders(&self) -> Result<Vec<Finder>, AwsError>;
    /// One page (0-based, `size` jobs, oldest `createdDate` first) of the finder's jobs with
    /// `status` and, when the finder takes one, `engine_type`.
    async fn find_jobs(&self, finder: &FinderQuery, status: JobStatus, engine_type: &str, page: u64, size: usize) -> Result<JobPage, AwsError>;
    /// One job; `None` when model-manage has no such job (404).
    async fn get_job(&self, job_id: &str) -> Result<Option<RemoteJob>, AwsError>;
    /// A partial update (`PATCH` with a JSON body), with `If-Match` when given.
    async fn patch_job(&self, job_id: &str, patch: &Map<String, Value>, if_match: Option<&str>) -> Result<PatchOutcome, AwsError>;
}

/// A bridged row as the table holds it, for the cancel check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRow {
    pub job_id: String,
    pub status: JobStatus,
}

/// The jobs table as the bridge writes it.
#[async_trait]
pub trait BridgeTable: Send + Sync {
    /// Writes a new row (PutItem with `attribute_not_exists(id)`); false when a row with that id
    /// exists already (the job was bridged before), which is left as it is.
    async fn put_new_row(&self, row: &Value) -> Result<bool, AwsError>;
    /// Whether a row with that id exists (a consistent read).
    async fn row_exists(&self, job_id: &str) -> Result<bool, AwsError>;
    /// Bridged rows in CREATED, WAITING or RUNNING (the `byJobStatus` index, filtered on the mark).
    async fn active_bridged_rows(&self) -> Result<Vec<ActiveRow>, AwsError>;
    /// CREATED/WAITING/RUNNING → CANCELLED, with `jobEndTime`, a `statusHistory` entry and a
    /// `jobMessages` line `message`; false when the row had already ended or is gone.
    async fn cancel_row(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError>;
}
