//! In-memory fakes of the bridge's ports: model-manage as a map of job documents with versions,
//! If-Match and the finders the emulator lists by default; the table as a map of rows. Each counts
//! its calls and fails an operation on demand.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use shared::error::{AwsError, AwsErrorKind};
use shared::job::record::{job_message, JobStatus, MessageLevel};
use shared::bridge::hal::{Finder, FinderQuery, JobPage};
use shared::bridge::ports::{ActiveRow, BridgeTable, ModelManage, PatchOutcome, RemoteJob};

#[derive(Default)]
pub struct FakeModelManage {
    pub jobs: Mutex<BTreeMap<String, Value>>,
    /// Calls, as `"<operation> <id>"` (`"find_jobs <status> page <n>"` for a page of jobs).
    pub calls: Mutex<Vec<String>>,
    /// Operations that fail (transiently) on their next call.
    pub failing: Mutex<Vec<&'static str>>,
    /// Job ids whose next PATCH meets another runtime's claim first (the emulator's claim race).
    pub races: Mutex<Vec<String>>,
    /// PATCH answers carry no ETag (a proxy in front of model-manage may drop it).
    pub no_etag: AtomicBool,
    /// Listed documents leave out `version` (Spring Data REST's default): only a PATCH's ETag tells it.
    pub version_unlisted: AtomicBool,
}

impl FakeModelManage {
    pub fn add(&self, job: Value) {
        let mut job = job;
        job.as_object_mut().unwrap().entry("version").or_insert(json!(0));
        self.jobs.lock().unwrap().insert(job["id"].as_str().unwrap().to_string(), job);
    }

    pub fn job(&self, id: &str) -> Value {
        self.jobs.lock().unwrap()[id].clone()
    }

    pub fn calls(&self, operation: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.starts_with(operation)).count()
    }

    fn enter(&self, operation: &'static str, id: &str) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(format!("{operation} {id}"));
        let mut failing = self.failing.lock().unwrap();
        if let Some(at) = failing.iter().position(|f| *f == operation) {
            failing.remove(at);
            return Err(AwsError::new("model-manage", operation, AwsErrorKind::Transient, "HTTP 503: Service Unavailable"));
        }
        Ok(())
    }
}

fn merge(job: &mut Value, patch: &Map<String, Value>) {
    let fields = job.as_object_mut().unwrap();
    for (k, v) in patch {
        fields.insert(k.clone(), v.clone());
    }
    let version = fields["version"].as_i64().unwrap() + 1;
    fields.insert("version".into(), json!(version));
}

#[async_trait]
impl ModelManage for FakeModelManage {
    async fn list_finders(&self) -> Result<Vec<Finder>, AwsError> {
        self.enter("list_finders", "")?;
        Ok(vec![
            Finder { name: "findAllByJobStatus".into(), params: vec!["jobStatus".into()] },
            Finder { name: "findAllByJobStatusAndTargetEngineEngineType".into(), params: vec!["jobStatus".into(), "engineType".into()] },
        ])
    }

    async fn find_jobs(&self, finder: &FinderQuery, status: JobStatus, engine_type: &str, page: u64, size: usize) -> Result<JobPage, AwsError> {
        self.enter("find_jobs", &format!("{} page {page}", status.as_str()))?;
        let jobs: Vec<Value> = self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|j| j["jobStatus"] == status.as_str() && (finder.engine_param.is_none() || j["targetEngine"]["engineType"] == engine_type))
            .cloned()
            .map(|mut j| {
                if self.version_unlisted.load(Ordering::Relaxed) {
                    j.as_object_mut().unwrap().remove("version");
                }
                j
            })
            .collect();
        let total_pages = jobs.len().div_ceil(size) as u64;
        Ok(JobPage { jobs: jobs.into_iter().skip(page as usize * size).take(size).collect(), total_pages, number: page })
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<RemoteJob>, AwsError> {
        self.enter("get_job", job_id)?;
        Ok(self.jobs.lock().unwrap().get(job_id).map(|j| RemoteJob { document: j.clone(), etag: Some(format!("\"{}\"", j["version"])) }))
    }

    async fn patch_job(&self, job_id: &str, patch: &Map<String, Value>, if_match: Option<&str>) -> Result<PatchOutcome, AwsError> {
        self.enter("patch_job", job_id)?;
        let mut jobs = self.jobs.lock().unwrap();
        let Some(job) = jobs.get_mut(job_id) else { return Ok(PatchOutcome::Missing) };
        let mut races = self.races.lock().unwrap();
        if let Some(at) = races.iter().position(|r| r == job_id) {
            races.remove(at);
            let other: Map<String, Value> = [("jobStatus".to_string(), json!("WAITING"))].into_iter().collect();
            merge(job, &other);
        }
        if if_match.is_some_and(|tag| tag != format!("\"{}\"", job["version"])) {
            return Ok(PatchOutcome::Conflict);
        }
        merge(job, patch);
        let etag = (!self.no_etag.load(Ordering::Relaxed)).then(|| format!("\"{}\"", job["version"]));
        Ok(PatchOutcome::Patched { etag })
    }
}

#[derive(Default)]
pub struct FakeTable {
    pub rows: Mutex<BTreeMap<String, Value>>,
    pub failing: Mutex<Vec<&'static str>>,
    /// Operations whose next call DynamoDB refuses for its 400 KB item limit.
    pub too_large: Mutex<Vec<&'static str>>,
}

impl FakeTable {
    pub fn row(&self, id: &str) -> Option<Value> {
        self.rows.lock().unwrap().get(id).cloned()
    }

    fn enter(&self, operation: &'static str) -> Result<(), AwsError> {
        let mut failing = self.failing.lock().unwrap();
        if let Some(at) = failing.iter().position(|f| *f == operation) {
            failing.remove(at);
            return Err(AwsError::new("DynamoDB", operation, AwsErrorKind::Transient, "ThrottlingException"));
        }
        let mut too_large = self.too_large.lock().unwrap();
        if let Some(at) = too_large.iter().position(|f| *f == operation) {
            too_large.remove(at);
            let message = "ValidationException: Item size has exceeded the maximum allowed size (DynamoDB holds at most 409600 bytes, 400 KB, per item)";
            return Err(AwsError::new("DynamoDB", operation, AwsErrorKind::ItemTooLarge, message));
        }
        Ok(())
    }
}

#[async_trait]
impl BridgeTable for FakeTable {
    async fn put_new_row(&self, row: &Value) -> Result<bool, AwsError> {
        self.enter("put_new_row")?;
        let id = row["id"].as_str().unwrap().to_string();
        let mut rows = self.rows.lock().unwrap();
        if rows.contains_key(&id) {
            return Ok(false);
        }
        rows.insert(id, row.clone());
        Ok(true)
    }

    async fn row_exists(&self, job_id: &str) -> Result<bool, AwsError> {
        self.enter("row_exists")?;
        Ok(self.rows.lock().unwrap().contains_key(job_id))
    }

    async fn active_bridged_rows(&self) -> Result<Vec<ActiveRow>, AwsError> {
        self.enter("active_bridged_rows")?;
        Ok(self
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.get("modelManage").is_some())
            .filter_map(|r| Some(ActiveRow { job_id: r["id"].as_str()?.to_string(), status: JobStatus::parse(r["jobStatus"].as_str()?)? }))
            .filter(|r| !r.status.is_terminal())
            .collect())
    }

    async fn cancel_row(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.enter("cancel_row")?;
        let mut rows = self.rows.lock().unwrap();
        let Some(row) = rows.get_mut(job_id) else { return Ok(false) };
        if JobStatus::parse(row["jobStatus"].as_str().unwrap_or_default()).is_none_or(JobStatus::is_terminal) {
            return Ok(false);
        }
        row["jobStatus"] = json!("CANCELLED");
        if let Some(lines) = row["jobMessages"].as_array_mut() {
            lines.push(json!(job_message(at, MessageLevel::Warning, message)));
        }
        Ok(true)
    }
}
