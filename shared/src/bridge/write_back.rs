//! What the bridge writes back to model-manage from a bridged row: what ModelOp's Jobs pages read
//! (`jobStatus`, `jobResult`, `jobMessages`, `jobWaitTime`/`jobRunTime`/`jobEndTime`,
//! `lastUpdateFromRuntime`, the run id, and the output data: the content of the `FILE` outputs the
//! run wrote and a test job's result, [`output_data_patch`]), compared with the job as model-manage holds it now, so
//! only what changed is sent and a redelivered record sends nothing. Never ModelOp's own fields
//! (model, inputs, parameters, the output assets' other fields), never a status backwards, never over a final status ModelOp set
//! (a user's CANCELLED). And when ModelOp cancelled or deleted a job that is still going here,
//! the row is cancelled instead ([`remote_change`]).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::job_mapping::SOURCE_MODEL_MANAGE;
use crate::job::record::{job_message, lenient, JobStatus, JobType, MessageLevel};

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
    #[serde(default, deserialize_with = "lenient")]
    pub job_type: Option<JobType>,
    /// ModelOp's `outputData` as the row holds it: the monitor sets `fileContent` (base64) and
    /// `fileSize` (bytes) on each `FILE` output the run wrote as one object.
    #[serde(default, deserialize_with = "lenient")]
    pub output_data: Option<Vec<Value>>,
    /// The driver's `results/result.json` (`{jobId, jobType, function, result}`), or
    /// `{truncated: true, sizeBytes, resultUri}` when it was too big to keep.
    #[serde(default, deserialize_with = "lenient")]
    pub model_result: Option<Value>,
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

/// Where the bridge writes what has no field of its own in ModelOp's job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteBackFields<'a> {
    /// `MODELOP_RUN_ID_FIELD`: the run id goes there, else into a `jobMessages` line unless one
    /// already names it.
    pub run_id_field: Option<&'a str>,
    /// `MODELOP_TEST_RESULT_ASSET`: the `outputData` `FILE` asset a test job's result goes to;
    /// `None`: not written back.
    pub test_result_asset: Option<&'a str>,
}

/// The PATCH body that brings the model-manage job `current` up to the row; empty when nothing
/// changed.
///
/// - Nothing once model-manage holds CANCELLED (ModelOp's cancel, or this runtime's write of one)
///   or another final status than the row's.
/// - `jobStatus` only forward; with a final status, `jobResult` (`SUCCESS` on COMPLETE, `UNKNOWN`
///   otherwise).
/// - `jobWaitTime`, `jobRunTime`, `jobEndTime` (epoch ms) only where model-manage has none: each
///   is the moment of one transition, set once.
/// - `jobMessages`: model-manage's lines, then the row's lines it lacks, in the row's order (a
///   PATCH replaces the list whole, so ModelOp's own lines are kept).
/// - `outputData`: [`output_data_patch`], its refusals as `[warning]` lines.
/// - `lastUpdateFromRuntime`: the row's `updatedAt`, only with another change.
pub fn write_back_patch(row: &BridgedRow, current: &Value, fields: WriteBackFields<'_>) -> Map<String, Value> {
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
        match fields.run_id_field {
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
    let outputs = output_data_patch(row, current, fields.test_result_asset);
    if let Some(output_data) = outputs.output_data {
        patch.insert("outputData".into(), Value::Array(output_data));
    }
    for warning in outputs.warnings {
        if !lines.iter().any(|line| line.ends_with(&warning)) {
            lines.push(job_message(row_time(row.updated_at.as_deref()), MessageLevel::Warning, &warning));
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

/// What the output data write-back sends: the whole new `outputData` list (a PATCH replaces a
/// list), when it differs, and what it could not write, as message texts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputDataPatch {
    pub output_data: Option<Vec<Value>>,
    pub warnings: Vec<String>,
}

/// "Updates job with output data" (ModelOp's EMR Serverless runtime page), for a COMPLETE row:
/// model-manage's `outputData`, each entry kept as ModelOp wrote it except
/// - a `FILE` output the run wrote: its `fileContent` (base64) and `fileSize` (bytes) from the
///   row, as a stored job carries an output's content inline (*example job*). The row's entry
///   must be the same asset (same `assetId`, else same `name`/`filename`, else both without
///   either) at the same position; otherwise it is left alone with a warning.
/// - with `test_result_asset` set, a MODEL_BATCH_TEST_JOB's result (the `result` of the row's
///   `modelResult`, as JSON) as the `FILE` asset of that name (`fileFormat` `JSON`), added at
///   the end when model-manage has none, as the stored example test job carries its result
///   (`outputData[0]`, `test_result.json`; assumed: that ModelOp's own runtime writes it there).
///   An asset of that name the model wrote itself is left as written. A result too big to be
///   kept on the row is not written (a warning says so).
///
/// Nothing before the row is COMPLETE; `None` when model-manage already holds all of it.
pub fn output_data_patch(row: &BridgedRow, current: &Value, test_result_asset: Option<&str>) -> OutputDataPatch {
    let mut patch = OutputDataPatch::default();
    if row.job_status != Some(JobStatus::Complete) {
        return patch;
    }
    let remote: Vec<Value> = current.get("outputData").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut assets = remote.clone();
    let mut written = Vec::new();
    for (index, produced) in row.output_data.iter().flatten().enumerate() {
        let Some(content) = produced.get("fileContent").and_then(Value::as_str) else { continue };
        let label = asset_label(produced, index);
        match assets.get_mut(index).and_then(Value::as_object_mut) {
            Some(asset) if same_asset(asset, produced) => {
                asset.insert("fileContent".into(), json!(content));
                if let Some(size) = produced.get("fileSize").filter(|s| s.is_u64()) {
                    asset.insert("fileSize".into(), size.clone());
                }
                written.push(index);
            }
            _ => patch.warnings.push(format!("output {label} is not written back: model-manage's outputData[{index}] is another asset now")),
        }
    }
    if let (Some(name), Some(JobType::Test)) = (test_result_asset, row.job_type) {
        match row.model_result.as_ref() {
            Some(result) if result.get("truncated").and_then(Value::as_bool) == Some(true) => patch.warnings.push(format!(
                "the test result ({} bytes) is too big to be written back as outputData {name:?}; it stays at {}",
                result.get("sizeBytes").map_or_else(|| "?".into(), Value::to_string),
                result.get("resultUri").and_then(Value::as_str).unwrap_or("the job's results/result.json"),
            )),
            Some(result) if result.get("result").is_some() => {
                let bytes = serde_json::to_vec(&result["result"]).expect("a JSON value serializes");
                let encoded = { use base64::Engine as _; base64::engine::general_purpose::STANDARD.encode(&bytes) };
                let position = assets.iter().position(|a| [a.get("name"), a.get("filename")].into_iter().flatten().any(|n| n.as_str() == Some(name)));
                match position {
                    // The model wrote that output itself: its own content wins.
                    Some(i) if written.contains(&i) => {}
                    Some(i) => {
                        if let Some(asset) = assets[i].as_object_mut() {
                            asset.insert("fileContent".into(), json!(encoded));
                            asset.insert("fileSize".into(), json!(bytes.len()));
                            asset.entry("fileFormat").or_insert_with(|| json!("JSON"));
                        }
                    }
                    None => assets.push(json!({
                        "name": name, "filename": name, "assetType": "FILE", "assetRole": "UNKNOWN",
                        "fileFormat": "JSON", "fileSize": bytes.len(), "fileContent": encoded,
                    })),
                }
            }
            _ => {}
        }
    }
    if assets != remote {
        patch.output_data = Some(assets);
    }
    patch
}

/// Whether model-manage's asset and the row's are the same one: the same `assetId` when both
/// have one, else the same `name` and `filename`.
fn same_asset(remote: &Map<String, Value>, produced: &Value) -> bool {
    match (remote.get("assetId"), produced.get("assetId")) {
        (Some(a), Some(b)) => a == b,
        _ => ["name", "filename"].iter().all(|k| remote.get(*k) == produced.get(*k)),
    }
}

fn asset_label(asset: &Value, index: usize) -> String {
    match asset.get("name").or_else(|| asset.get("filename")).and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(name) => format!("{name:?}"),
        None => format!("#{index}"),
    }
}

/// The time of a line the bridge adds: the row's `updatedAt`, so a line made again from the
/// same row is the same line (now, for a row without one).
fn row_time(updated_at: Option<&str>) -> chrono::DateTime<chrono::Utc> {
    updated_at.and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok()).map_or_else(chrono::Utc::now, |at| at.with_timezone(&chrono::Utc))
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
            (complete.clone(), remote("COMPLETE", json!({"jobResult": "SUCCESS", "jobRunTime": 2000, "jobEndTime": 3000, "jobMessages": [CLAIM, STARTED]})), None, json!({
                "jobMessages": [CLAIM, STARTED, ENDED], "lastUpdateFromRuntime": "2026-11-23T20:05:00.000Z"})),
            // Another final status in model-manage (ModelOp's, or an operator's) is left whole.
            (complete.clone(), remote("ERROR", json!({"jobMessages": [CLAIM]})), None, json!({})),
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
            // Once model-manage holds it there, nothing is written.
            (running_row(), remote("RUNNING", json!({"jobRunTime": 2000, "jobMessages": [CLAIM, STARTED], "sparkApplicationId": "00f1"})), Some("sparkApplicationId"), json!({})),
            // Without one, a line names it when no line does yet.
            (json!({"jobStatus": "WAITING", "sparkApplicationId": "00f9", "jobMessages": [CLAIM]}), remote("WAITING", json!({})), None, json!({
                "jobMessages": [CLAIM, "EMR Serverless job run 00f9"]})),
        ];
        for (row_doc, current, field, expected) in cases {
            let patch = write_back_patch(&row(row_doc.clone()), &current, WriteBackFields { run_id_field: field, test_result_asset: Some("test_result.json") });
            assert_eq!(Value::Object(patch), expected, "row {row_doc}\nmodel-manage {current}");
        }
    }

    /// `result` as ModelOp's inline `fileContent`.
    fn b64(result: &Value) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(result).unwrap())
    }

    #[test]
    fn output_data_carries_what_the_run_wrote_and_a_test_result() {
        let file_out = json!({"assetId": "a1", "name": "scores.json", "assetType": "FILE", "assetRole": "UNKNOWN"});
        let external = json!({"name": "big", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://out/big/"});
        let written = json!({"assetId": "a1", "name": "scores.json", "assetType": "FILE", "assetRole": "UNKNOWN", "fileContent": "e30=", "fileSize": 2});
        let result = json!({"auc": 0.91, "rows": 1000});
        let test_row = |status: &str, outputs: Value, model_result: Value| row(json!({
            "jobStatus": status, "jobType": "MODEL_BATCH_TEST_JOB", "outputData": outputs, "modelResult": model_result}));
        let batch_row = |outputs: Value| row(json!({"jobStatus": "COMPLETE", "jobType": "MODEL_BATCH_JOB", "outputData": outputs}));
        let mm = |outputs: Value| json!({"jobStatus": "RUNNING", "outputData": outputs});
        let with_result = json!({"jobId": "j", "jobType": "MODEL_BATCH_TEST_JOB", "function": "metrics", "result": result});
        let test_asset = |content: &Value| json!({"name": "test_result.json", "filename": "test_result.json", "assetType": "FILE",
                                                   "assetRole": "UNKNOWN", "fileFormat": "JSON", "fileSize": serde_json::to_vec(content).unwrap().len(), "fileContent": b64(content)});
        /// (what, the row, model-manage's job, MODELOP_TEST_RESULT_ASSET, the outputData sent, the warnings)
        type Case<'a> = (&'a str, BridgedRow, Value, Option<&'a str>, Option<Value>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            ("a FILE output's content, the EXTERNAL_FILE left as ModelOp wrote it",
             batch_row(json!([written, external])), mm(json!([file_out, external])), None, Some(json!([written, external])), vec![]),
            ("already there: nothing", batch_row(json!([written])), mm(json!([written])), None, None, vec![]),
            ("not before COMPLETE", row(json!({"jobStatus": "RUNNING", "outputData": [written]})), mm(json!([file_out])), None, None, vec![]),
            ("ModelOp replaced the asset meanwhile: left alone, said why",
             batch_row(json!([written])), mm(json!([{"assetId": "zz", "name": "scores.json", "assetType": "FILE"}])), None, None,
             vec!["output \"scores.json\" is not written back: model-manage's outputData[0] is another asset now"]),
            ("a test result added as the FILE asset the stored example carries",
             test_row("COMPLETE", json!([]), with_result.clone()), mm(json!([])), Some("test_result.json"), Some(json!([test_asset(&result)])), vec![]),
            ("a test result into ModelOp's own empty asset of that name, its fields kept",
             test_row("COMPLETE", json!([]), with_result.clone()), mm(json!([{"assetId": "t", "name": "test_result.json", "assetType": "FILE", "fileFormat": "JSON"}])),
             Some("test_result.json"),
             Some(json!([{"assetId": "t", "name": "test_result.json", "assetType": "FILE", "fileFormat": "JSON",
                          "fileSize": serde_json::to_vec(&result).unwrap().len(), "fileContent": b64(&result)}])), vec![]),
            ("redelivered: the result is there already", test_row("COMPLETE", json!([]), with_result.clone()), mm(json!([test_asset(&result)])),
             Some("test_result.json"), None, vec![]),
            ("the setting off: no result written", test_row("COMPLETE", json!([]), with_result.clone()), mm(json!([])), None, None, vec![]),
            ("not for a batch job", row(json!({"jobStatus": "COMPLETE", "jobType": "MODEL_BATCH_JOB", "modelResult": with_result})), mm(json!([])),
             Some("test_result.json"), None, vec![]),
            ("not for a failed test job", test_row("ERROR", json!([]), with_result.clone()), mm(json!([])), Some("test_result.json"), None, vec![]),
            ("the model wrote test_result.json itself: its content wins",
             test_row("COMPLETE", json!([{"name": "test_result.json", "assetType": "FILE", "fileContent": "WzFd", "fileSize": 3}]), with_result.clone()),
             mm(json!([{"name": "test_result.json", "assetType": "FILE"}])), Some("test_result.json"),
             Some(json!([{"name": "test_result.json", "assetType": "FILE", "fileContent": "WzFd", "fileSize": 3}])), vec![]),
            ("a model result record without a result (the model returned none): nothing written",
             test_row("COMPLETE", json!([]), json!({"jobId": "j", "jobType": "MODEL_BATCH_TEST_JOB", "function": "metrics"})), mm(json!([])),
             Some("test_result.json"), None, vec![]),
            ("a result too big for the row: said where it is",
             test_row("COMPLETE", json!([]), json!({"truncated": true, "sizeBytes": 2000000, "resultUri": "s3://st/j/results/result.json"})), mm(json!([])),
             Some("test_result.json"), None,
             vec!["the test result (2000000 bytes) is too big to be written back as outputData \"test_result.json\"; it stays at s3://st/j/results/result.json"]),
        ];
        for (name, row, current, asset, expected, warnings) in cases {
            let patch = output_data_patch(&row, &current, asset);
            assert_eq!((patch.output_data, patch.warnings.iter().map(String::as_str).collect::<Vec<_>>()), (expected.map(|v| v.as_array().unwrap().clone()), warnings), "{name}");
        }
    }

    #[test]
    fn output_warnings_are_lines_once() {
        let doc = json!({"jobStatus": "COMPLETE", "updatedAt": "2026-11-23T20:05:00.000Z", "jobType": "MODEL_BATCH_TEST_JOB",
                         "modelResult": {"truncated": true, "sizeBytes": 9, "resultUri": "s3://b/r.json"}});
        let fields = WriteBackFields { run_id_field: None, test_result_asset: Some("test_result.json") };
        let first = write_back_patch(&row(doc.clone()), &remote("RUNNING", json!({})), fields);
        let line = "2026/11/23 20:05:00 [warning] the test result (9 bytes) is too big to be written back as outputData \"test_result.json\"; it stays at s3://b/r.json";
        assert_eq!(first["jobMessages"], json!([CLAIM, line]));
        let again = write_back_patch(&row(doc), &remote("COMPLETE", json!({"jobResult": "SUCCESS", "jobMessages": [CLAIM, line]})), fields);
        assert_eq!(Value::Object(again), json!({}), "a redelivered record adds the line no second time");
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
        // The line the cancelled row gets (shared/CONTRACT.md), which the write-back never echoes.
        assert_eq!(RemoteChange::Cancelled.message(), "cancelled in ModelOp Center");
        assert_eq!(RemoteChange::Deleted.message(), "deleted in ModelOp Center");
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
