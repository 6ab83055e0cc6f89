//! In-memory fakes of the ports, for the handlers' unit tests: a jobs table of JSON rows that
//! honours the DynamoDB adapter's conditions, a bucket map, an EMR Serverless and a log reader.
//! Each records its calls (name and key arguments) and fails the next call of an operation on
//! demand (`fail_next`), so a test asserts what happened and what did not.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::Settings;
use crate::error::{AwsError, AwsErrorKind};
use crate::job::{epoch_millis, job_message, timestamp, JobHeader, JobStatus, MessageLevel, StatusChange, Timestamp};
use crate::manifest::PySparkJobManifest;
use crate::application::{ApplicationSpec, ApplicationSummary};
use crate::cost::{JobCost, ResourceUsage};
use crate::job_run::{JobRunAttempt, JobRunInfo, LogTail, MonitoredJob, StatusUpdate};
use crate::run_outcome::AttemptRecord;
use crate::lease::{LaunchRecord, RecordOutcome, SubmitLease, SubmitSnapshot};
use crate::ports::*;
use crate::staging_folder::{CleanupSnapshot, FailedDelete, ListedObject, ListedPage};
use crate::s3_uri::S3Uri;

/// Settings as the `events/` samples assume them (table `modelop-jobs`, bucket `modelop-staging`,
/// the default prefix, application `modelop-default`), with `overrides` on top.
pub fn settings(overrides: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("JOBS_TABLE", "modelop-jobs"),
        ("STAGING_BUCKET", "modelop-staging"),
        ("EMR_DEFAULT_APP_NAME", "modelop-default"),
        ("EMR_RELEASE_VERSION", "emr-7.5.0"),
        ("EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/modelop-default-job"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load(|name| env.get(name).cloned(), |path| Err(std::io::Error::other(format!("no file {path} in tests")))).expect("test settings")
}

/// A row as the table holds it, from a stream record's DynamoDB-JSON image.
pub fn row_from_image(image: &Value) -> Value {
    let item: serde_dynamo::Item = serde_json::from_value(image.clone()).expect("a DynamoDB-JSON image");
    serde_dynamo::from_item(item).expect("an image readable as JSON")
}

/// One call a fake received: the operation and its key arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: &'static str,
    pub args: Vec<String>,
}

/// Something that happens elsewhere while a call is made (a user cancels the job meanwhile).
type Hook = Box<dyn FnOnce() + Send>;

/// The calls a fake received, the failures queued for its next calls, and what happens meanwhile.
#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    faults: Mutex<HashMap<&'static str, VecDeque<AwsError>>>,
    hooks: Mutex<HashMap<&'static str, Hook>>,
}

impl Recorder {
    /// The next call of `operation` (a port method's name) fails with `error`.
    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.faults.lock().unwrap().entry(operation).or_default().push_back(error);
    }

    /// `meanwhile` runs when `operation` is next called, before the fake answers.
    pub fn on_next(&self, operation: &'static str, meanwhile: impl FnOnce() + Send + 'static) {
        self.hooks.lock().unwrap().insert(operation, Box::new(meanwhile));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The names of the calls received, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.calls().into_iter().map(|c| c.name).collect()
    }

    /// The arguments of every call of `name`.
    pub fn args_of(&self, name: &str) -> Vec<Vec<String>> {
        self.calls().into_iter().filter(|c| c.name == name).map(|c| c.args).collect()
    }

    fn call(&self, name: &'static str, args: &[&str]) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(Call { name, args: args.iter().map(|a| a.to_string()).collect() });
        let hook = self.hooks.lock().unwrap().remove(name);
        if let Some(meanwhile) = hook {
            meanwhile();
        }
        match self.faults.lock().unwrap().get_mut(name).and_then(VecDeque::pop_front) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// A transient error, as a throttled or failing service answers.
pub fn transient(operation: &'static str) -> AwsError {
    AwsError::new("Fake", operation, AwsErrorKind::Transient, "ThrottlingException: slow down")
}

/// The jobs table: rows as JSON objects keyed by job id. Implements the three store ports with
/// the conditions of `aws::dynamodb`.
#[derive(Default)]
pub struct FakeJobTable {
    pub recorder: Recorder,
    rows: Mutex<BTreeMap<String, Value>>,
}

/// What a row says, for the conditions.
fn text<'a>(row: &'a Value, field: &str) -> Option<&'a str> {
    row.get(field).and_then(Value::as_str)
}

fn status_of(row: &Value) -> Option<&str> {
    text(row, "jobStatus")
}

fn has(row: &Value, field: &str) -> bool {
    row.get(field).is_some_and(|v| !v.is_null())
}

fn is_ours(row: &Value) -> bool {
    serde_json::from_value::<JobHeader>(row.clone()).is_ok_and(|h| h.is_ours())
}

fn append(row: &mut Value, field: &str, items: impl IntoIterator<Item = Value>) {
    let list = row.as_object_mut().unwrap().entry(field).or_insert_with(|| json!([]));
    if let Value::Array(list) = list {
        list.extend(items);
    }
}

fn history(status: JobStatus, emr_state: Option<&str>, at: DateTime<Utc>) -> Value {
    serde_json::to_value(StatusChange { status, emr_state: emr_state.map(str::to_string), at: Timestamp(at) }).unwrap()
}

/// Only the named top-level fields (a ProjectionExpression).
fn project(row: &Value, fields: &[&str]) -> Value {
    Value::Object(fields.iter().filter_map(|f| row.get(*f).map(|v| (f.to_string(), v.clone()))).collect())
}

fn decode<T: serde::de::DeserializeOwned>(row: Value) -> Result<T, AwsError> {
    serde_json::from_value(row).map_err(|e| AwsError::new("DynamoDB", "GetItem", AwsErrorKind::Permanent, format!("unreadable job row: {e}")))
}

impl FakeJobTable {
    pub fn with_rows(rows: impl IntoIterator<Item = Value>) -> Self {
        let table = FakeJobTable::default();
        for row in rows {
            table.put(row);
        }
        table
    }

    /// Puts a row as it is (no call recorded).
    pub fn put(&self, row: Value) {
        let id = text(&row, "id").expect("a row has an id").to_string();
        self.rows.lock().unwrap().insert(id, row);
    }

    /// Sets one field of a row as another writer would (ModelOp Center cancelling a job).
    pub fn set(&self, id: &str, field: &str, value: Value) {
        if let Some(row) = self.rows.lock().unwrap().get_mut(id) {
            row[field] = value;
        }
    }

    pub fn row(&self, id: &str) -> Option<Value> {
        self.rows.lock().unwrap().get(id).cloned()
    }

    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.recorder.fail_next(operation, error);
    }

    /// Applies `change` to the row if it exists and `condition` holds; whether it did.
    fn update(&self, id: &str, condition: impl FnOnce(&Value) -> bool, change: impl FnOnce(&mut Value)) -> bool {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(row) if condition(row) => {
                change(row);
                true
            }
            _ => false,
        }
    }

    /// The rows of `status` that `keep` accepts, decoded: the fakes' byJobStatus query (the index
    /// holds only rows with both keys, `jobStatus` and `updatedAt`).
    fn by_status<T: serde::de::DeserializeOwned>(&self, status: JobStatus, keep: impl Fn(&Value, &str) -> bool) -> Result<Vec<T>, AwsError> {
        let rows: Vec<Value> = self
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|row| status_of(row) == Some(status.as_str()) && text(row, "updatedAt").is_some_and(|updated| keep(row, updated)))
            .cloned()
            .collect();
        rows.into_iter().map(decode).collect()
    }

    /// `end_in_error` of the adapter: ERROR with the message, the lease dropped.
    fn end_in_error(&self, id: &str, message: &str, at: DateTime<Utc>, condition: impl FnOnce(&Value) -> bool) -> bool {
        self.update(id, condition, |row| {
            let fields = row.as_object_mut().unwrap();
            fields.insert("jobStatus".into(), json!("ERROR"));
            fields.insert("errorMessage".into(), json!(message));
            fields.insert("updatedAt".into(), json!(timestamp(at)));
            fields.insert("jobEndTime".into(), json!(epoch_millis(at)));
            fields.remove("submitLease");
            append(row, "statusHistory", [history(JobStatus::Error, None, at)]);
            append(row, "jobMessages", [json!(job_message(at, MessageLevel::Error, message))]);
        })
    }
}

#[async_trait]
impl JobStore for FakeJobTable {
    async fn claim_created(&self, job_id: &str, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("claim_created", &[job_id])?;
        Ok(self.update(job_id, |row| status_of(row) == Some("CREATED") && is_ours(row), |row| {
            let fields = row.as_object_mut().unwrap();
            fields.insert("jobStatus".into(), json!("WAITING"));
            fields.insert("updatedAt".into(), json!(timestamp(at)));
            fields.insert("jobWaitTime".into(), json!(epoch_millis(at)));
            fields.insert("submitLease".into(), serde_json::to_value(lease).unwrap());
            append(row, "statusHistory", [history(JobStatus::Waiting, None, at)]);
        }))
    }

    async fn submit_snapshot(&self, job_id: &str) -> Result<Option<SubmitSnapshot>, AwsError> {
        self.recorder.call("submit_snapshot", &[job_id])?;
        self.row(job_id).map(|row| decode(project(&row, &["jobStatus", "sparkApplicationId", "emrApplicationId", "submitLease"]))).transpose()
    }

    async fn take_over(&self, job_id: &str, observed: Option<&SubmitLease>, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("take_over", &[job_id])?;
        let lease_holds = |row: &Value| match observed {
            None => !has(row, "submitLease"),
            Some(old) => row.pointer("/submitLease/owner").and_then(Value::as_str) == Some(old.owner.as_str()),
        };
        Ok(self.update(
            job_id,
            |row| status_of(row) == Some("WAITING") && !has(row, "sparkApplicationId") && lease_holds(row),
            |row| {
                row["submitLease"] = serde_json::to_value(lease).unwrap();
                row["updatedAt"] = json!(timestamp(at));
            },
        ))
    }

    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<(), AwsError> {
        self.recorder.call("release_lease", &[job_id, owner])?;
        self.update(job_id, |row| row.pointer("/submitLease/owner").and_then(Value::as_str) == Some(owner), |row| {
            row.as_object_mut().unwrap().remove("submitLease");
        });
        Ok(())
    }

    async fn record_launch(&self, job_id: &str, launch: &LaunchRecord) -> Result<RecordOutcome, AwsError> {
        self.recorder.call("record_launch", &[job_id, &launch.run_id])?;
        let run = launch.run_id.as_str();
        let recorded = self.update(job_id, |row| text(row, "sparkApplicationId").is_none_or(|r| r == run), |row| {
            let fields = row.as_object_mut().unwrap();
            fields.insert("sparkApplicationId".into(), json!(run));
            fields.insert("emrApplicationId".into(), json!(launch.application_id));
            fields.insert("stagingUri".into(), json!(launch.staging_uri));
            fields.insert("updatedAt".into(), json!(timestamp(launch.at)));
            if !launch.ignored_parameters.is_empty() {
                fields.insert("ignoredJobParameters".into(), serde_json::to_value(&launch.ignored_parameters).unwrap());
            }
            fields.insert("runControls".into(), serde_json::to_value(launch.run_controls).unwrap());
            fields.insert("jobPermissions".into(), serde_json::to_value(&launch.job_permissions).unwrap());
            fields.entry("emrState").or_insert(json!("SUBMITTED"));
            fields.remove("submitLease");
            append(row, "statusHistory", [history(JobStatus::Waiting, Some("SUBMITTED"), launch.at)]);
            append(row, "jobMessages", launch.messages.iter().map(|m| json!(m)));
        });
        Ok(match self.row(job_id) {
            None => RecordOutcome::JobMissing,
            Some(row) if recorded => RecordOutcome::Recorded(status_of(&row).and_then(JobStatus::parse)),
            Some(row) => RecordOutcome::OtherRunRecorded(text(&row, "sparkApplicationId").map(str::to_string)),
        })
    }

    async fn fail_before_launch(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("fail_before_launch", &[job_id])?;
        Ok(self.end_in_error(job_id, message, at, |row| {
            matches!(status_of(row), Some("CREATED" | "WAITING")) && !has(row, "sparkApplicationId")
        }))
    }
}

#[async_trait]
impl CleanupStore for FakeJobTable {
    async fn cleanup_snapshot(&self, job_id: &str) -> Result<Option<CleanupSnapshot>, AwsError> {
        self.recorder.call("cleanup_snapshot", &[job_id])?;
        self.row(job_id).map(|row| decode(project(&row, &["jobStatus", "runtimeType", "targetEngine"]))).transpose()
    }

    async fn mark_cleaned(&self, job_id: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("mark_cleaned", &[job_id])?;
        Ok(self.update(job_id, |_| true, |row| {
            row["cleanedAt"] = json!(timestamp(at));
            row["updatedAt"] = json!(timestamp(at));
        }))
    }
}

#[async_trait]
impl MonitorStore for FakeJobTable {
    async fn monitored_job(&self, job_id: &str) -> Result<Option<MonitoredJob>, AwsError> {
        self.recorder.call("monitored_job", &[job_id])?;
        self.row(job_id).map(decode).transpose()
    }

    async fn job_by_run_id(&self, run_id: &str) -> Result<Option<MonitoredJob>, AwsError> {
        self.recorder.call("job_by_run_id", &[run_id])?;
        let found = self.rows.lock().unwrap().values().find(|row| text(row, "sparkApplicationId") == Some(run_id)).cloned();
        found.map(decode).transpose()
    }

    async fn apply_status(&self, update: &StatusUpdate) -> Result<bool, AwsError> {
        self.recorder.call("apply_status", &[&update.job_id, update.status.as_str(), &update.emr_state])?;
        let condition = |row: &Value| {
            status_of(row).is_some_and(|s| update.from_statuses.contains(&s))
                && text(row, "sparkApplicationId").is_none_or(|r| r == update.run_id)
                && text(row, "emrState").is_none_or(|s| !update.blocked_emr_states.contains(&s))
        };
        // DynamoDB refuses `outputData[i]` paths that do not exist; so does the fake.
        if let Some(row) = self.row(&update.job_id) {
            let entries = row.get("outputData").and_then(Value::as_array).map_or(0, Vec::len);
            if update.file_outputs.iter().any(|o| o.index >= entries) && condition(&row) {
                return Err(AwsError::new("DynamoDB", "UpdateItem", AwsErrorKind::Permanent, "The document path provided in the update expression is invalid for update"));
            }
        }
        Ok(self.update(&update.job_id, condition, |row| {
            let at = update.at;
            let fields = row.as_object_mut().unwrap();
            fields.insert("jobStatus".into(), json!(update.status.as_str()));
            fields.insert("updatedAt".into(), json!(timestamp(at)));
            fields.entry("sparkApplicationId").or_insert(json!(update.run_id));
            fields.entry("emrApplicationId").or_insert(json!(update.application_id));
            if !update.history_only {
                fields.insert("emrState".into(), json!(update.emr_state));
            }
            fields.insert("emrLatestState".into(), json!(update.emr_state));
            let optional = [
                ("driverLogs", update.driver_logs.as_ref().map(|v| serde_json::to_value(v).unwrap())),
                ("errorMessage", update.error_message.as_ref().map(|m| json!(m))),
                ("modelResult", update.model_result.clone()),
                ("outputFiles", update.output_files.as_ref().map(|v| serde_json::to_value(v).unwrap())),
                ("attempts", update.attempts.as_ref().map(|v| serde_json::to_value(v).unwrap())),
                ("failure", update.failure.as_ref().map(|v| serde_json::to_value(v).unwrap())),
                ("provenance", update.provenance.as_ref().map(|v| serde_json::to_value(v).unwrap())),
            ];
            for (field, value) in optional {
                if let Some(value) = value {
                    fields.insert(field.into(), value);
                }
            }
            if update.status == JobStatus::Running {
                fields.entry("jobRunTime").or_insert(json!(epoch_millis(at)));
            } else if update.status.is_terminal() {
                fields.insert("jobEndTime".into(), json!(epoch_millis(at)));
            }
            for output in &update.file_outputs {
                let entry = &mut row["outputData"][output.index];
                entry["fileContent"] = json!(output.file_content);
                entry["fileSize"] = json!(output.file_size);
            }
            append(row, "statusHistory", [history(update.status, Some(&update.emr_state), at)]);
            append(row, "jobMessages", update.job_messages.iter().map(|m| json!(m)));
        }))
    }

    async fn record_retry(&self, job_id: &str, run_id: &str, attempt: Option<i64>, attempts: &[AttemptRecord], status: JobStatus, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("record_retry", &[job_id, run_id])?;
        let state = attempt.map_or_else(|| "RETRY".to_string(), |n| format!("RETRY attempt {n}"));
        Ok(self.update(
            job_id,
            |row| matches!(status_of(row), Some("CREATED" | "WAITING" | "RUNNING")) && text(row, "sparkApplicationId") == Some(run_id),
            |row| {
                row["updatedAt"] = json!(timestamp(at));
                row["attempts"] = serde_json::to_value(attempts).unwrap();
                append(row, "statusHistory", [history(status, Some(&state), at)]);
            },
        ))
    }

    async fn stale_jobs(&self, status: JobStatus, before: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError> {
        self.recorder.call("stale_jobs", &[status.as_str()])?;
        let before = timestamp(before);
        self.by_status(status, |_, updated| updated < before.as_str())
    }

    async fn record_usage(&self, job_id: &str, usage: &ResourceUsage, cost: Option<&JobCost>) -> Result<bool, AwsError> {
        self.recorder.call("record_usage", &[job_id])?;
        Ok(self.update(
            job_id,
            |row| {
                let current = row.get("resourceUsage").and_then(|u| serde_json::from_value::<ResourceUsage>(u.clone()).ok());
                crate::cost::supersedes(usage, current.as_ref())
            },
            |row| {
                row["resourceUsage"] = serde_json::to_value(usage).unwrap();
                if let Some(cost) = cost {
                    row["cost"] = serde_json::to_value(cost).unwrap();
                }
            },
        ))
    }

    async fn jobs_awaiting_usage(&self, status: JobStatus, since: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError> {
        self.recorder.call("jobs_awaiting_usage", &[status.as_str()])?;
        let since = timestamp(since);
        self.by_status(status, |row, updated| {
            updated >= since.as_str() && has(row, "sparkApplicationId") && row.pointer("/resourceUsage/final") != Some(&json!(true))
        })
    }

    async fn fail_stuck(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("fail_stuck", &[job_id])?;
        let now = timestamp(at);
        Ok(self.end_in_error(job_id, message, at, |row| {
            let lease_gone = match row.get("submitLease") {
                None | Some(Value::Null) => true,
                Some(lease) => lease.get("expiresAt").and_then(Value::as_str).is_some_and(|e| e < now.as_str()),
            };
            status_of(row) == Some("WAITING") && !has(row, "sparkApplicationId") && lease_gone
        }))
    }
}

/// One object of the fake bucket map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeObject {
    pub body: Vec<u8>,
    pub last_modified: DateTime<Utc>,
}

/// S3: objects in a map keyed by (bucket, key).
#[derive(Default)]
pub struct FakeObjectStore {
    pub recorder: Recorder,
    objects: Mutex<BTreeMap<(String, String), FakeObject>>,
}

/// The calls that change a bucket.
pub const S3_WRITES: [&str; 3] = ["put_new", "copy_new", "delete_keys"];

impl FakeObjectStore {
    /// Puts an object as it is (no call recorded), written `at`.
    pub fn put_at(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>, at: DateTime<Utc>) {
        self.objects.lock().unwrap().insert((bucket.into(), key.into()), FakeObject { body: body.into(), last_modified: at });
    }

    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.put_at(bucket, key, body, Utc::now());
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(&(bucket.to_string(), key.to_string())).map(|o| o.body.clone())
    }

    /// Every key of `bucket` under `prefix`, in order.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.objects.lock().unwrap().keys().filter(|(b, k)| b == bucket && k.starts_with(prefix)).map(|(_, k)| k.clone()).collect()
    }

    /// The calls that wrote or deleted objects.
    pub fn writes(&self) -> Vec<Call> {
        self.recorder.calls().into_iter().filter(|c| S3_WRITES.contains(&c.name)).collect()
    }

    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.recorder.fail_next(operation, error);
    }

    fn read(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError> {
        let body = self.get(&from.bucket, &from.key).ok_or_else(|| AwsError::new("S3", "GetObject", AwsErrorKind::NotFound, format!("NoSuchKey: {from}")))?;
        if body.len() as u64 > max_bytes {
            return Err(AwsError::new("S3", "GetObject", AwsErrorKind::Permanent, format!("{from} is {} bytes; at most {max_bytes} are read", body.len())));
        }
        Ok(body)
    }

    /// Writes unless the key exists (`If-None-Match: *`).
    fn create(&self, bucket: &str, key: &str, body: Vec<u8>) -> bool {
        let mut objects = self.objects.lock().unwrap();
        let slot = objects.entry((bucket.to_string(), key.to_string()));
        match slot {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(FakeObject { body, last_modified: Utc::now() });
                true
            }
        }
    }

    /// DeleteObjects: a recorded call that deletes every key and reports none as failed.
    fn delete(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.recorder.call("delete_keys", &[bucket, &keys.join(",")])?;
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(&(bucket.to_string(), key.clone()));
        }
        Ok(Vec::new())
    }
}

#[async_trait]
impl StagingWriter for FakeObjectStore {
    async fn put_new(&self, bucket: &str, key: &str, body: Cow<'static, [u8]>, _content_type: &str) -> Result<bool, AwsError> {
        self.recorder.call("put_new", &[bucket, key])?;
        Ok(self.create(bucket, key, body.into_owned()))
    }

    async fn copy_new(&self, from: &S3Uri, bucket: &str, key: &str) -> Result<bool, AwsError> {
        self.recorder.call("copy_new", &[&from.to_string(), bucket, key])?;
        let body = self.read(from, u64::MAX)?;
        Ok(self.create(bucket, key, body))
    }

    async fn for_each_line(&self, from: &S3Uri, max_bytes: u64, on_line: &mut (dyn for<'l> FnMut(&'l str) + Send)) -> Result<(), AwsError> {
        self.recorder.call("for_each_line", &[&from.to_string()])?;
        for line in String::from_utf8_lossy(&self.read(from, max_bytes)?).lines() {
            on_line(line);
        }
        Ok(())
    }

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.delete(bucket, keys)
    }
}

#[async_trait]
impl RunOutputReader for FakeObjectStore {
    async fn get_text(&self, from: &S3Uri, max_bytes: u64) -> Result<String, AwsError> {
        self.recorder.call("get_text", &[&from.to_string()])?;
        String::from_utf8(self.read(from, max_bytes)?).map_err(|_| AwsError::new("S3", "GetObject", AwsErrorKind::Permanent, format!("{from} is not UTF-8 text")))
    }

    async fn get_bytes(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError> {
        self.recorder.call("get_bytes", &[&from.to_string()])?;
        self.read(from, max_bytes)
    }

    async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, AwsError> {
        self.recorder.call("object_size", &[bucket, key])?;
        Ok(self.get(bucket, key).map(|b| b.len() as u64))
    }

    async fn has_objects(&self, bucket: &str, prefix: &str) -> Result<bool, AwsError> {
        self.recorder.call("has_objects", &[bucket, prefix])?;
        Ok(!self.keys(bucket, prefix).is_empty())
    }
}

#[async_trait]
impl StagingFolders for FakeObjectStore {
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, AwsError> {
        self.recorder.call("list_keys", &[bucket, prefix])?;
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .map(|((_, key), o)| ListedObject { key: key.clone(), last_modified: Some(o.last_modified) })
            .collect())
    }

    async fn list_page(&self, bucket: &str, prefix: &str, continuation: Option<&str>) -> Result<ListedPage, AwsError> {
        self.recorder.call("list_page", &[bucket, prefix, continuation.unwrap_or("")])?;
        const PAGE: usize = 1_000;
        let objects = self.objects.lock().unwrap();
        let mut page: Vec<ListedObject> = objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix) && continuation.is_none_or(|after| k.as_str() > after))
            .map(|((_, key), o)| ListedObject { key: key.clone(), last_modified: Some(o.last_modified) })
            .take(PAGE + 1)
            .collect();
        // The token is the page's last key, as ListObjectsV2's StartAfter would take it.
        let next = (page.len() > PAGE).then(|| {
            page.truncate(PAGE);
            page[PAGE - 1].key.clone()
        });
        Ok(ListedPage { objects: page, next })
    }

    async fn list_folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
        self.recorder.call("list_folders", &[bucket, prefix])?;
        let mut folders: Vec<String> = self
            .keys(bucket, prefix)
            .into_iter()
            .filter_map(|key| key[prefix.len()..].find('/').map(|end| key[..prefix.len() + end + 1].to_string()))
            .collect();
        folders.dedup();
        Ok(folders)
    }

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.delete(bucket, keys)
    }
}

/// A job run the fake EMR knows.
#[derive(Debug, Clone)]
pub struct FakeRun {
    pub application_id: String,
    pub info: JobRunInfo,
    pub created_at: DateTime<Utc>,
    /// The request StartJobRun got; `None` for a run a test put there.
    pub manifest: Option<PySparkJobManifest>,
    /// What ListJobRunAttempts answers (a test sets it with `set_attempts`).
    pub attempts: Vec<JobRunAttempt>,
}

#[derive(Debug, Default)]
struct EmrState {
    /// (id, name, state), oldest first.
    applications: Vec<(String, String, String)>,
    runs: BTreeMap<String, FakeRun>,
    /// The specs CreateApplication got, in order.
    created: Vec<ApplicationSpec>,
}

/// EMR Serverless: applications and runs in memory. StartJobRun is idempotent by client token,
/// as EMR's is.
#[derive(Default)]
pub struct FakeEmr {
    pub recorder: Recorder,
    state: Mutex<EmrState>,
}

impl FakeEmr {
    pub fn add_application(&self, id: &str, name: &str, state: &str) {
        self.state.lock().unwrap().applications.push((id.into(), name.into(), state.into()));
    }

    /// Sets an application's state (`TERMINATED`: EMR no longer runs anything on it).
    pub fn set_application_state(&self, id: &str, state: &str) {
        if let Some(app) = self.state.lock().unwrap().applications.iter_mut().find(|a| a.0 == id) {
            app.2 = state.into();
        }
    }

    pub fn add_run(&self, application_id: &str, run_id: &str, info: JobRunInfo) {
        let run = FakeRun { application_id: application_id.into(), info, created_at: Utc::now(), manifest: None, attempts: Vec::new() };
        self.state.lock().unwrap().runs.insert(run_id.into(), run);
    }

    /// The attempts ListJobRunAttempts lists for a run added before.
    pub fn set_attempts(&self, run_id: &str, attempts: Vec<JobRunAttempt>) {
        if let Some(run) = self.state.lock().unwrap().runs.get_mut(run_id) {
            run.attempts = attempts;
        }
    }

    pub fn run(&self, run_id: &str) -> Option<FakeRun> {
        self.state.lock().unwrap().runs.get(run_id).cloned()
    }

    /// The runs StartJobRun created, by run id.
    pub fn started(&self) -> Vec<(String, FakeRun)> {
        self.state.lock().unwrap().runs.iter().filter(|(_, r)| r.manifest.is_some()).map(|(id, r)| (id.clone(), r.clone())).collect()
    }

    /// The specs CreateApplication got, in order.
    pub fn created_applications(&self) -> Vec<ApplicationSpec> {
        self.state.lock().unwrap().created.clone()
    }

    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.recorder.fail_next(operation, error);
    }

    fn not_found(operation: &'static str, what: &str) -> AwsError {
        AwsError::new("EMR Serverless", operation, AwsErrorKind::NotFound, format!("ResourceNotFoundException: {what} not found"))
    }
}

#[async_trait]
impl ApplicationCatalog for FakeEmr {
    async fn find_application(&self, name: &str) -> Result<Option<ApplicationSummary>, AwsError> {
        self.recorder.call("find_application", &[name])?;
        let state = self.state.lock().unwrap();
        let found = state.applications.iter().rev().find(|(_, n, s)| n == name && s != "TERMINATED");
        Ok(found.map(|(id, _, s)| ApplicationSummary { id: id.clone(), state: s.clone(), architecture: None }))
    }

    async fn create_application(&self, spec: &ApplicationSpec) -> Result<String, AwsError> {
        self.recorder.call("create_application", &[&spec.name])?;
        let mut state = self.state.lock().unwrap();
        state.created.push(spec.clone());
        let id = format!("app-{}", state.applications.len() + 1);
        state.applications.push((id.clone(), spec.name.clone(), "CREATED".into()));
        Ok(id)
    }

    async fn start_application(&self, application_id: &str) -> Result<(), AwsError> {
        self.recorder.call("start_application", &[application_id])?;
        let mut state = self.state.lock().unwrap();
        let app = state.applications.iter_mut().find(|a| a.0 == application_id).ok_or_else(|| Self::not_found("StartApplication", application_id))?;
        app.2 = "STARTED".into();
        Ok(())
    }
}

#[async_trait]
impl JobRunLauncher for FakeEmr {
    async fn start_job_run(&self, application_id: &str, manifest: &PySparkJobManifest) -> Result<String, AwsError> {
        self.recorder.call("start_job_run", &[application_id, &manifest.job_id])?;
        let mut state = self.state.lock().unwrap();
        if !state.applications.iter().any(|(id, _, s)| id == application_id && s != "TERMINATED") {
            return Err(Self::not_found("StartJobRun", application_id));
        }
        let same_token = state.runs.iter().find(|(_, r)| {
            r.application_id == application_id && r.manifest.as_ref().is_some_and(|m| m.client_token == manifest.client_token)
        });
        if let Some((id, _)) = same_token {
            return Ok(id.clone());
        }
        let id = format!("run-{}", state.runs.len() + 1);
        let info = JobRunInfo { state: "SUBMITTED".into(), name: Some(manifest.run_name.clone()), tags: manifest.tags.clone().into_iter().collect(), ..JobRunInfo::default() };
        state.runs.insert(id.clone(), FakeRun { application_id: application_id.into(), info, created_at: Utc::now(), manifest: Some(manifest.clone()), attempts: Vec::new() });
        Ok(id)
    }

    async fn find_job_run(&self, application_id: &str, name: &str, created_after: DateTime<Utc>) -> Result<Option<String>, AwsError> {
        self.recorder.call("find_job_run", &[application_id, name])?;
        let state = self.state.lock().unwrap();
        let found = state.runs.iter().find(|(_, r)| r.application_id == application_id && r.info.name.as_deref() == Some(name) && r.created_at > created_after);
        Ok(found.map(|(id, _)| id.clone()))
    }
}

#[async_trait]
impl JobRunCanceller for FakeEmr {
    async fn cancel_job_run(&self, application_id: &str, run_id: &str, grace_period_seconds: u32) -> Result<(), AwsError> {
        self.recorder.call("cancel_job_run", &[application_id, run_id, &grace_period_seconds.to_string()])?;
        let mut state = self.state.lock().unwrap();
        let run = state.runs.get_mut(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("CancelJobRun", run_id))?;
        if !matches!(run.info.state.as_str(), "SUCCESS" | "FAILED" | "CANCELLED") {
            run.info.state = "CANCELLING".into();
        }
        Ok(())
    }
}

#[async_trait]
impl JobRunReader for FakeEmr {
    async fn get_job_run(&self, application_id: &str, run_id: &str) -> Result<JobRunInfo, AwsError> {
        self.recorder.call("get_job_run", &[application_id, run_id])?;
        let state = self.state.lock().unwrap();
        let run = state.runs.get(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("GetJobRun", run_id))?;
        Ok(run.info.clone())
    }

    async fn list_job_run_attempts(&self, application_id: &str, run_id: &str) -> Result<Vec<JobRunAttempt>, AwsError> {
        self.recorder.call("list_job_run_attempts", &[application_id, run_id])?;
        let state = self.state.lock().unwrap();
        let run = state.runs.get(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("ListJobRunAttempts", run_id))?;
        Ok(run.attempts.clone())
    }
}

/// CloudWatch Logs: streams' text by (group, stream).
#[derive(Default)]
pub struct FakeLogs {
    pub recorder: Recorder,
    streams: Mutex<BTreeMap<(String, String), String>>,
}

impl FakeLogs {
    pub fn put(&self, group: &str, stream: &str, text: &str) {
        self.streams.lock().unwrap().insert((group.into(), stream.into()), text.into());
    }
}

#[async_trait]
impl LogReader for FakeLogs {
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize) -> Result<LogTail, AwsError> {
        self.recorder.call("tail", &[group, stream])?;
        let streams = self.streams.lock().unwrap();
        let Some(text) = streams.get(&(group.to_string(), stream.to_string())) else {
            return Ok(LogTail::default());
        };
        let (tail, truncated) = crate::text::tail_bounded(text, max_bytes);
        Ok(LogTail { text: tail.to_string(), truncated, found: true })
    }
}

/// One fake of each port, shared by the handler under test and the test's assertions (clones share
/// the same fakes).
#[derive(Default, Clone)]
pub struct FakeAws {
    pub jobs: Arc<FakeJobTable>,
    pub objects: Arc<FakeObjectStore>,
    pub emr: Arc<FakeEmr>,
    pub logs: Arc<FakeLogs>,
}
