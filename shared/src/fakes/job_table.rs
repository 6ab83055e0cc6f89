//! The jobs table: rows as JSON objects keyed by job id, honouring the DynamoDB adapter's
//! conditions, behind the three store ports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::error::{AwsError, AwsErrorKind};
use crate::job::item_size::{json_item_size, WriteDetail, MAX_ITEM_BYTES};
use crate::job::record::{epoch_millis, job_message, timestamp, JobHeader, JobStatus, MessageLevel, StatusChange, Timestamp};
use crate::outcome::cost::{JobCost, ResourceUsage};
use crate::outcome::failure::Failure;
use crate::outcome::monitored_job::{LogsAttachment, MonitoredJob, RetryUpdate, StatusUpdate};
use crate::launch::lease::{LaunchRecord, RecordOutcome, SubmitLease, SubmitSnapshot};
use crate::ports::*;
use crate::launch::staging_folder::CleanupSnapshot;
use super::recorder::Recorder;

/// The jobs table: rows as JSON objects keyed by job id. Implements the three store ports with
/// the conditions of `aws::dynamodb`.
#[derive(Default)]
pub struct FakeJobTable {
    pub recorder: Recorder,
    rows: Mutex<BTreeMap<String, Value>>,
    /// Statuses whose `jobs_awaiting_logs` query does not answer until released.
    held_queries: Mutex<BTreeSet<&'static str>>,
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

/// DynamoDB's refusal of an update that would pass the item limit, as the adapter classifies it.
fn item_too_large() -> AwsError {
    AwsError::new("DynamoDB", "UpdateItem", AwsErrorKind::ItemTooLarge, "ValidationException: Item size to update has exceeded the maximum allowed size")
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

    /// `jobs_awaiting_logs` of `status` answers only once released (`on` false), as a slow
    /// query would; the other statuses' queries answer at once.
    pub fn hold_awaiting_logs(&self, status: JobStatus, on: bool) {
        let mut held = self.held_queries.lock().unwrap();
        if on {
            held.insert(status.as_str());
        } else {
            held.remove(status.as_str());
        }
    }

    /// Applies `change` to the row if it exists and `condition` holds; whether it did. Like
    /// DynamoDB, a change that would leave the row over the 400 KB item limit is refused whole
    /// (`ItemTooLarge`, DynamoDB's words) and the row stays as it was.
    fn update(&self, id: &str, condition: impl FnOnce(&Value) -> bool, change: impl FnOnce(&mut Value)) -> Result<bool, AwsError> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(row) if condition(row) => {
                let mut changed = row.clone();
                change(&mut changed);
                if json_item_size(&changed).is_some_and(|bytes| bytes > MAX_ITEM_BYTES) {
                    return Err(item_too_large());
                }
                *row = changed;
                Ok(true)
            }
            _ => Ok(false),
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

    /// `end_in_error` of the adapter: ERROR with the message, the lease dropped; at `Short` without
    /// the history entry and the message line, at `Core` only the status.
    fn end_in_error(&self, id: &str, message: &str, failure: Option<&Failure>, at: DateTime<Utc>, detail: WriteDetail, condition: impl FnOnce(&Value) -> bool) -> Result<bool, AwsError> {
        self.update(id, condition, |row| {
            let fields = row.as_object_mut().unwrap();
            fields.insert("jobStatus".into(), json!("ERROR"));
            fields.remove("submitLease");
            if detail == WriteDetail::Core {
                return;
            }
            if let Some(failure) = failure {
                fields.insert("failure".into(), serde_json::to_value(failure).unwrap());
            }
            fields.insert("errorMessage".into(), json!(message));
            fields.insert("updatedAt".into(), json!(timestamp(at)));
            fields.insert("jobEndTime".into(), json!(epoch_millis(at)));
            if detail == WriteDetail::Full {
                append(row, "statusHistory", [history(JobStatus::Error, None, at)]);
                append(row, "jobMessages", [json!(job_message(at, MessageLevel::Error, message))]);
            }
        })
    }
}

#[async_trait]
impl JobStore for FakeJobTable {
    async fn claim_created(&self, job_id: &str, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("claim_created", &[job_id])?;
        self.update(job_id, |row| status_of(row) == Some("CREATED") && is_ours(row), |row| {
            let fields = row.as_object_mut().unwrap();
            fields.insert("jobStatus".into(), json!("WAITING"));
            fields.insert("updatedAt".into(), json!(timestamp(at)));
            fields.insert("jobWaitTime".into(), json!(epoch_millis(at)));
            fields.insert("submitLease".into(), serde_json::to_value(lease).unwrap());
            append(row, "statusHistory", [history(JobStatus::Waiting, None, at)]);
        })
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
        self.update(
            job_id,
            |row| status_of(row) == Some("WAITING") && !has(row, "sparkApplicationId") && lease_holds(row),
            |row| {
                row["submitLease"] = serde_json::to_value(lease).unwrap();
                row["updatedAt"] = json!(timestamp(at));
            },
        )
    }

    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<(), AwsError> {
        self.recorder.call("release_lease", &[job_id, owner])?;
        self.update(job_id, |row| row.pointer("/submitLease/owner").and_then(Value::as_str) == Some(owner), |row| {
            row.as_object_mut().unwrap().remove("submitLease");
        })?;
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
            if let Some(controls) = launch.run_controls {
                fields.insert("runControls".into(), serde_json::to_value(controls).unwrap());
            }
            if let Some(permissions) = &launch.job_permissions {
                fields.insert("jobPermissions".into(), serde_json::to_value(permissions).unwrap());
            }
            fields.entry("emrState").or_insert(json!("SUBMITTED"));
            fields.remove("submitLease");
            append(row, "statusHistory", [history(JobStatus::Waiting, Some("SUBMITTED"), launch.at)]);
            if !launch.messages.is_empty() {
                append(row, "jobMessages", launch.messages.iter().map(|m| json!(m)));
            }
        })?;
        Ok(match self.row(job_id) {
            None => RecordOutcome::JobMissing,
            Some(row) if recorded => RecordOutcome::Recorded(status_of(&row).and_then(JobStatus::parse)),
            Some(row) => RecordOutcome::OtherRunRecorded(text(&row, "sparkApplicationId").map(str::to_string)),
        })
    }

    async fn fail_before_launch(&self, job_id: &str, message: &str, failure: &Failure, at: DateTime<Utc>, detail: WriteDetail) -> Result<bool, AwsError> {
        self.recorder.call("fail_before_launch", &[job_id, &format!("{detail:?}")])?;
        self.end_in_error(job_id, message, Some(failure), at, detail, |row| {
            matches!(status_of(row), Some("CREATED" | "WAITING")) && !has(row, "sparkApplicationId")
        })
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
        self.update(job_id, |_| true, |row| {
            row["cleanedAt"] = json!(timestamp(at));
            row["updatedAt"] = json!(timestamp(at));
        })
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
        self.update(&update.job_id, condition, |row| {
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
        })
    }

    async fn record_retry(&self, update: &RetryUpdate) -> Result<bool, AwsError> {
        self.recorder.call("record_retry", &[&update.job_id, &update.run_id])?;
        let state = update.attempt.map_or_else(|| "RETRY".to_string(), |n| format!("RETRY attempt {n}"));
        let seen = serde_json::to_value(&update.seen_attempts).unwrap();
        self.update(
            &update.job_id,
            |row| {
                let attempts = row.get("attempts").filter(|a| !a.is_null());
                let as_read = match attempts {
                    None => update.seen_attempts.is_empty(),
                    Some(list) => *list == seen || (update.seen_attempts.is_empty() && list.as_array().is_some_and(Vec::is_empty)),
                };
                status_of(row) == Some(update.status.as_str()) && text(row, "sparkApplicationId").is_none_or(|r| r == update.run_id) && as_read
            },
            |row| {
                let fields = row.as_object_mut().unwrap();
                fields.insert("updatedAt".into(), json!(timestamp(update.at)));
                fields.insert("attempts".into(), serde_json::to_value(&update.attempts).unwrap());
                fields.entry("sparkApplicationId").or_insert(json!(update.run_id));
                fields.entry("emrApplicationId").or_insert(json!(update.application_id));
                append(row, "statusHistory", [history(update.status, Some(&state), update.at)]);
            },
        )
    }

    async fn stale_jobs(&self, status: JobStatus, before: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError> {
        self.recorder.call("stale_jobs", &[status.as_str()])?;
        let before = timestamp(before);
        self.by_status(status, |_, updated| updated < before.as_str())
    }

    async fn record_usage(&self, job_id: &str, usage: &ResourceUsage, cost: Option<&JobCost>) -> Result<bool, AwsError> {
        self.recorder.call("record_usage", &[job_id])?;
        self.update(
            job_id,
            |row| {
                let current = row.get("resourceUsage").and_then(|u| serde_json::from_value::<ResourceUsage>(u.clone()).ok());
                crate::outcome::cost::supersedes(usage, current.as_ref())
            },
            |row| {
                row["resourceUsage"] = serde_json::to_value(usage).unwrap();
                if let Some(cost) = cost {
                    row["cost"] = serde_json::to_value(cost).unwrap();
                }
            },
        )
    }

    async fn jobs_awaiting_usage(&self, status: JobStatus, since: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError> {
        self.recorder.call("jobs_awaiting_usage", &[status.as_str()])?;
        let since = timestamp(since);
        self.by_status(status, |row, updated| {
            updated >= since.as_str() && has(row, "sparkApplicationId") && row.pointer("/resourceUsage/final") != Some(&json!(true))
        })
    }

    async fn jobs_awaiting_logs(&self, status: JobStatus, since: DateTime<Utc>, at_most: usize) -> Result<Vec<MonitoredJob>, AwsError> {
        self.recorder.call("jobs_awaiting_logs", &[status.as_str()])?;
        while self.held_queries.lock().unwrap().contains(status.as_str()) {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let since = timestamp(since);
        let mut jobs: Vec<MonitoredJob> =
            self.by_status(status, |row, updated| updated >= since.as_str() && row.pointer("/driverLogs/unavailable").is_some_and(|u| !u.is_null()))?;
        // The index's order: least recently updated first.
        jobs.sort_by_key(|job| job.updated_at);
        jobs.truncate(at_most);
        Ok(jobs)
    }

    async fn attach_logs(&self, attachment: &LogsAttachment) -> Result<bool, AwsError> {
        self.recorder.call("attach_logs", &[&attachment.job_id])?;
        self.update(
            &attachment.job_id,
            |row| {
                row.pointer("/driverLogs/unavailable").is_some_and(|u| !u.is_null())
                    && text(row, "sparkApplicationId") == Some(attachment.run_id.as_str())
                    && status_of(row).and_then(JobStatus::parse).is_some_and(JobStatus::is_terminal)
            },
            |row| {
                let fields = row.as_object_mut().unwrap();
                fields.insert("driverLogs".into(), serde_json::to_value(&attachment.driver_logs).unwrap());
                fields.insert("updatedAt".into(), json!(timestamp(attachment.at)));
                if let Some(failure) = &attachment.failure {
                    fields.insert("failure".into(), serde_json::to_value(failure).unwrap());
                }
                if let Some(message) = &attachment.error_message {
                    fields.insert("errorMessage".into(), json!(message));
                }
                append(row, "jobMessages", attachment.job_messages.iter().map(|m| json!(m)));
            },
        )
    }

    async fn fail_stuck(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.recorder.call("fail_stuck", &[job_id])?;
        let now = timestamp(at);
        self.end_in_error(job_id, message, None, at, WriteDetail::Full, |row| {
            let lease_gone = match row.get("submitLease") {
                None | Some(Value::Null) => true,
                Some(lease) => lease.get("expiresAt").and_then(Value::as_str).is_some_and(|e| e < now.as_str()),
            };
            status_of(row) == Some("WAITING") && !has(row, "sparkApplicationId") && lease_gone
        })
    }
}
