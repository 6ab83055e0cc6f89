//! What the bridge writes back to model-manage from a bridged row: what ModelOp's Jobs pages read
//! (`jobStatus`, `jobResult`, `jobMessages`, `jobWaitTime`/`jobRunTime`/`jobEndTime`,
//! `lastUpdateFromRuntime`, the run id), compared with the job as model-manage holds it now, so
//! only what changed is sent and a redelivered record sends nothing. Never ModelOp's own fields
//! (model, inputs, parameters), never a status backwards, never over a final status ModelOp set
//! (a user's CANCELLED). And when ModelOp cancelled or deleted a job that is still going here,
//! the row is cancelled instead ([`remote_change`]).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::job_mapping::SOURCE_MODEL_MANAGE;
use crate::job::record::{lenient, JobStatus};

/// `jobResult` of a COMPLETE job (stored jobs: `modelop/lab-dashboard` `example_job.json`).
pub const RESULT_SUCCESS: &str = "SUCCESS";
/// `jobResult` of a job that ended otherwise (ERROR, CANCELLED). Assumed: no public stored job
/// shows a failed job's result.
pub const RESULT_UNKNOWN: &str = "UNKNOWN";

/// What the bridge reads of a row (a stream image decoded to JSON), leniently: a field of the
/// wrong shape reads as absent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgedRow {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub job_status: Option<JobStatus>,
    #[serde(default, deserialize_with = "lenient")]
    pub job_messages: Option<Vec<String>>,
    /// Epoch milliseconds of each transition.
    #[serde(default, deserialize_with = "lenient")]
    pub job_wait_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub job_run_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub job_end_time: Option<i64>,
    /// The time of this service's last write (ISO-8601 UTC), written as `lastUpdateFromRuntime`.
    #[serde(default, deserialize_with = "lenient")]
    pub updated_at: Option<String>,
    /// The EMR Serverless job run id.
    #[serde(default, deserialize_with = "lenient")]
    pub spark_application_id: Option<String>,
    #[serde(default, rename = "modelManage")]
    pub model_manage: Option<Value>,
}

impl BridgedRow {
    /// Whether the row came from model-manage (its [`super::job_mapping::MODEL_MANAGE_ATTR`] says so).
    pub fn is_bridged(&self) -> bool {
        self.model_manage.as_ref().and_then(|m| m.get("source")).and_then(Value::as_str) == Some(SOURCE_MODEL_MANAGE)
    }
}

/// How far along a status is; final statuses share the last rank.
fn rank(status: JobStatus) -> u8 {
    match status {
        JobStatus::Created => 0,
        JobStatus::Waiting => 1,
        JobStatus::Running => 2,
        JobStatus::Complete | JobStatus::Error | JobStatus::Cancelled => 3,
    }
}

fn absent(current: &Value, field: &str) -> bool {
    current.get(field).is_none_or(Value::is_null)
}

/// The PATCH body that brings the model-manage job `current` up to the row; empty when nothing
/// changed. `run_id_field`: `MODELOP_RUN_ID_FIELD` (the run id goes there, else into a
/// `jobMessages` line unless one already names it).
///
/// - Nothing once model-manage holds CANCELLED (ModelOp's cancel, or this runtime's write of one)
///   or another final status than the row's.
/// - `jobStatus` only forward; with a final status, `jobResult` (`SUCCESS` on COMPLETE, `UNKNOWN`
///   otherwise).
/// - `jobWaitTime`, `jobRunTime`, `jobEndTime` (epoch ms) only where model-manage has none: each
///   is the moment of one transition, set once.
/// - `jobMessages`: model-manage's lines, then the row's lines it lacks, in the row's order (a
///   PATCH replaces the list whole, so ModelOp's own lines are kept).
/// - `lastUpdateFromRuntime`: the row's `updatedAt`, only with another change.
pub fn write_back_patch(row: &BridgedRow, current: &Value, run_id_field: Option<&str>) -> Map<String, Value> {
    let mut patch = Map::new();
    let remote_status = super::job_mapping::status(current);
    // A job ModelOp cancelled is left as ModelOp wrote it (the row follows the cancel: the lines
    // and times of a row cancelled on ModelOp's word would only echo it back); another final status
    // in model-manage is never overwritten either.
    if remote_status == Some(JobStatus::Cancelled) || (remote_status.is_some_and(JobStatus::is_terminal) && remote_status != row.job_status) {
        return patch;
    }
    if let Some(status) = row.job_status {
        let forward = remote_status.is_none_or(|remote| rank(status) > rank(remote));
        if forward && status != JobStatus::Created {
            patch.insert("jobStatus".into(), json!(status.as_str()));
        }
        if status.is_terminal() {
            let result = if status == JobStatus::Complete { RESULT_SUCCESS } else { RESULT_UNKNOWN };
            if current.get("jobResult").and_then(Value::as_str) != Some(result) {
                patch.insert("jobResult".into(), json!(result));
            }
        }
    }
    for (field, value) in [("jobWaitTime", row.job_wait_time), ("jobRunTime", row.job_run_time), ("jobEndTime", row.job_end_time)] {
        if let Some(millis) = value.filter(|_| absent(current, field)) {
            patch.insert(field.into(), json!(millis));
        }
    }
    let mut lines = super::job_mapping::messages(current);
    let before = lines.len();
    for line in row.job_messages.iter().flatten() {
        if !lines.contains(line) {
            lines.push(line.clone());
        }
    }
    if let Some(run_id) = &row.spark_application_id {
        match run_id_field {
            Some(field) if current.get(field).and_then(Value::as_str) != Some(run_id.as_str()) => {
                patch.insert(field.into(), json!(run_id));
            }
            Some(_) => {}
            None if !lines.iter().any(|line| line.contains(run_id.as_str())) => {
                lines.push(format!("EMR Serverless job run {run_id}"));
            }
            None => {}
        }
    }
    if lines.len() != before {
        patch.insert("jobMessages".into(), json!(lines));
    }
    if !patch.is_empty() {
        if let Some(updated_at) = &row.updated_at {
            patch.insert("lastUpdateFromRuntime".into(), json!(updated_at));
        }
    }
    patch
}

/// A change made in ModelOp Center that the row must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteChange {
    /// ModelOp shows the job CANCELLED.
    Cancelled,
    /// model-manage no longer has the job.
    Deleted,
}

impl RemoteChange {
    /// The `jobMessages` line the cancelled row gets.
    pub fn message(self) -> &'static str {
        match self {
            RemoteChange::Cancelled => "cancelled in ModelOp Center",
            RemoteChange::Deleted => "deleted in ModelOp Center",
        }
    }
}

/// Whether a row that is not final yet must become CANCELLED: ModelOp cancelled the job, or
/// model-manage no longer has it (`remote` `None`). A final row stays as it is.
pub fn remote_change(row_status: Option<JobStatus>, remote: Option<&Value>) -> Option<RemoteChange> {
    if row_status.is_none_or(JobStatus::is_terminal) {
        return None;
    }
    match remote {
        None => Some(RemoteChange::Deleted),
        Some(job) if super::job_mapping::status(job) == Some(JobStatus::Cancelled) => Some(RemoteChange::Cancelled),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(doc: Value) -> BridgedRow {
        serde_json::from_value(doc).unwrap()
    }

    const CLAIM: &str = "2026/11/23 20:00:00 [info] claimed for AWS EMR Serverless [claimed by modelop-spark-serverless c@t]";
    const STARTED: &str = "2026/11/23 20:00:02 [info] EMR Serverless job run 00f1 started in application app";
    const ENDED: &str = "2026/11/23 20:05:00 [info] EMR Serverless job run 00f1 ended SUCCESS";

    fn remote(status: &str, extra: Value) -> Value {
        let mut job = json!({"id": "j", "version": 2, "jobStatus": status, "jobWaitTime": 1000, "jobMessages": [CLAIM], "model": {"x": 1}});
        job.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        job
    }

    fn running_row() -> Value {
        json!({"id": "j", "jobStatus": "RUNNING", "jobWaitTime": 1500, "jobRunTime": 2000, "jobMessages": [CLAIM, STARTED],
               "updatedAt": "2026-11-23T20:00:03.000Z", "sparkApplicationId": "00f1", "modelManage": {"source": "model-manage"}})
    }

    #[test]
    fn only_what_changed_is_written_back() {
        let complete = json!({"id": "j", "jobStatus": "COMPLETE", "jobWaitTime": 1500, "jobRunTime": 2000, "jobEndTime": 3000,
                              "jobMessages": [CLAIM, STARTED, ENDED], "updatedAt": "2026-11-23T20:05:00.000Z", "sparkApplicationId": "00f1"});
        let cases = [
            // The row's first write back: running, with its run time and the run's line.
            (running_row(), remote("WAITING", json!({})), None, json!({
                "jobStatus": "RUNNING", "jobRunTime": 2000, "jobMessages": [CLAIM, STARTED], "lastUpdateFromRuntime": "2026-11-23T20:00:03.000Z"})),
            // Redelivered: model-manage already holds all of it.
            (running_row(), remote("RUNNING", json!({"jobRunTime": 2000, "jobMessages": [CLAIM, STARTED]})), None, json!({})),
            // The end: status, result, end time, the new line; ModelOp's own line kept first.
            (complete.clone(), remote("RUNNING", json!({"jobRunTime": 2000, "jobMessages": [CLAIM, "a user's note", STARTED]})), None, json!({
                "jobStatus": "COMPLETE", "jobResult": "SUCCESS", "jobEndTime": 3000,
                "jobMessages": [CLAIM, "a user's note", STARTED, ENDED], "lastUpdateFromRuntime": "2026-11-23T20:05:00.000Z"})),
            // An ERROR's result is UNKNOWN.
            (json!({"jobStatus": "ERROR", "jobEndTime": 3000}), remote("RUNNING", json!({"jobEndTime": null})), None, json!({
                "jobStatus": "ERROR", "jobResult": "UNKNOWN", "jobEndTime": 3000})),
            // A late RUNNING record never moves COMPLETE back; the same final status adds only what is missing.
            (running_row(), remote("COMPLETE", json!({"jobRunTime": 2000, "jobMessages": [CLAIM, STARTED]})), None, json!({})),
            (complete.clone(), remote("COMPLETE", json!({"jobResult": "SUCCESS", "jobRunTime": 2000, "jobEndTime": 3000, "jobMessages": [CLAIM, STARTED, ENDED]})), None, json!({})),
            // ModelOp's CANCELLED is never written over.
            (complete.clone(), remote("CANCELLED", json!({})), None, json!({})),
            // Nor added to, once the row followed it: no echo of the cancel, no end time or result.
            (json!({"jobStatus": "CANCELLED", "jobEndTime": 3000, "jobMessages": [CLAIM, "2026/11/23 20:05:00 [warning] cancelled in ModelOp Center"]}),
             remote("CANCELLED", json!({})), None, json!({})),
            // The CREATED row itself writes no status: model-manage is already WAITING from the claim.
            (json!({"jobStatus": "CREATED", "jobMessages": [CLAIM]}), remote("WAITING", json!({})), None, json!({})),
            // The run id in its own field, when configured.
            (running_row(), remote("RUNNING", json!({"jobRunTime": 2000, "jobMessages": [CLAIM, STARTED]})), Some("sparkApplicationId"), json!({
                "sparkApplicationId": "00f1", "lastUpdateFromRuntime": "2026-11-23T20:00:03.000Z"})),
            // Without one, a line names it when no line does yet.
            (json!({"jobStatus": "WAITING", "sparkApplicationId": "00f9", "jobMessages": [CLAIM]}), remote("WAITING", json!({})), None, json!({
                "jobMessages": [CLAIM, "EMR Serverless job run 00f9"]})),
        ];
        for (row_doc, current, field, expected) in cases {
            let patch = write_back_patch(&row(row_doc.clone()), &current, field);
            assert_eq!(Value::Object(patch), expected, "row {row_doc}\nmodel-manage {current}");
        }
    }

    #[test]
    fn a_going_row_follows_a_cancel_or_delete_in_modelop() {
        use JobStatus::*;
        let cancelled = remote("CANCELLED", json!({}));
        let running = remote("RUNNING", json!({}));
        let cases = [
            (Some(Running), Some(&cancelled), Some(RemoteChange::Cancelled)),
            (Some(Waiting), Some(&cancelled), Some(RemoteChange::Cancelled)),
            (Some(Created), None, Some(RemoteChange::Deleted)),
            (Some(Running), None, Some(RemoteChange::Deleted)),
            (Some(Running), Some(&running), None),
            (Some(Complete), Some(&cancelled), None),
            (Some(Error), None, None),
            (None, None, None),
        ];
        for (status, remote, expected) in cases {
            assert_eq!(remote_change(status, remote), expected, "{status:?} / {remote:?}");
        }
    }

    #[test]
    fn bridged_rows_are_told_by_their_mark() {
        assert!(row(running_row()).is_bridged());
        assert!(!row(json!({"id": "j", "jobStatus": "RUNNING"})).is_bridged());
        assert!(!row(json!({"modelManage": {"source": "elsewhere"}})).is_bridged());
        // Fields of the wrong shape read as absent, never as an error.
        let odd = row(json!({"jobStatus": "PAUSED", "jobMessages": "x", "jobWaitTime": "soon"}));
        assert_eq!((odd.job_status, odd.job_messages, odd.job_wait_time), (None, None, None));
    }
}
