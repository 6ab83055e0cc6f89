//! A model-manage job and the jobs-table row it becomes: which jobs the bridge takes (the three
//! batch types, an engine type of `MODELOP_ENGINE_TYPES`, optionally one runtime name), and the
//! CREATED row, marked as coming from model-manage with the version it was claimed at. A document
//! the table cannot hold (over DynamoDB's 400 KB) or that is not a job is refused with the reason,
//! which the bridge writes to model-manage as the job's ERROR.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::BridgeConfig;
use crate::job::item_size::item_size;
pub use crate::job::item_size::MAX_ITEM_BYTES;
use crate::job::record::{decode_job, timestamp, validate_job_id, JobStatus, JobType, SPARK_SERVERLESS_RUNTIME};

/// The row attribute that marks a row as bridged from model-manage:
/// `{source: "model-manage", version, claimedAt, claimant}` ([`BridgeMark`]). The bridge's stream
/// mapping is filtered on it.
pub const MODEL_MANAGE_ATTR: &str = "modelManage";
/// `modelManage.source` of a bridged row.
pub const SOURCE_MODEL_MANAGE: &str = "model-manage";
/// HAL fields model-manage adds to a resource; never stored on the row.
const HAL_FIELDS: [&str; 2] = ["_links", "_embedded"];

/// Whether a model-manage job is one this bridge takes: one of the three batch job types, its
/// `targetEngine.engineType` one of `MODELOP_ENGINE_TYPES` and, when `MODELOP_RUNTIME_NAME` is set,
/// `targetEngine.name` that name. Anything else is another runtime's and never touched.
pub fn is_candidate(job: &Value, config: &BridgeConfig) -> bool {
    let engine = job.get("targetEngine");
    let field = |name: &str| engine.and_then(|e| e.get(name)).and_then(Value::as_str);
    job.get("jobType").and_then(Value::as_str).and_then(JobType::parse).is_some()
        && field("engineType").is_some_and(|t| config.engine_types.iter().any(|wanted| wanted == t))
        && config.runtime_name.as_deref().is_none_or(|name| field("name") == Some(name))
}

/// The job's `jobMessages` (ModelOp writes a list of strings; anything else reads as none).
pub fn messages(job: &Value) -> Vec<String> {
    job.get("jobMessages").and_then(Value::as_array).map(|lines| lines.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// The job's `jobStatus`, if it is one this service knows.
pub fn status(job: &Value) -> Option<JobStatus> {
    job.get("jobStatus").and_then(Value::as_str).and_then(JobStatus::parse)
}

/// Where a bridged row came from, stored on it as [`MODEL_MANAGE_ATTR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeMark {
    /// The job's `version` in model-manage after the claim (`None` when model-manage gave none).
    pub version: Option<i64>,
    pub claimed_at: DateTime<Utc>,
    /// Who claimed it ([`crate::bridge::claim::claimant`]).
    pub claimant: String,
}

impl BridgeMark {
    fn to_value(&self) -> Value {
        json!({ "source": SOURCE_MODEL_MANAGE, "version": self.version, "claimedAt": timestamp(self.claimed_at), "claimant": self.claimant })
    }
}

/// Why a model-manage job cannot become a row; its `Display` is the ERROR message written to
/// model-manage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotBridgeable {
    #[error("not a job this runtime can run: {0}")]
    NotAJob(String),
    #[error("the job document is {bytes} bytes as a DynamoDB item; the jobs table holds at most {limit} bytes (400 KB)")]
    TooLarge { bytes: usize, limit: usize },
}

/// The row a claimed model-manage job becomes: the document as model-manage gave it, without its
/// HAL links, `jobStatus` CREATED (so submit launches it as any other), `runtimeType`
/// `SPARK_SERVERLESS_RUNTIME` when its engine type is another one of `MODELOP_ENGINE_TYPES` (so the
/// row is this runtime's), [`MODEL_MANAGE_ATTR`] and `updatedAt` (the claim's time). Refused when
/// the document is not an object with a valid id, not decodable as a job, or larger than DynamoDB
/// holds.
pub fn bridged_row(document: &Value, mark: &BridgeMark) -> Result<Value, NotBridgeable> {
    let Value::Object(fields) = document else {
        return Err(NotBridgeable::NotAJob("the document is not a JSON object".into()));
    };
    let mut row: Map<String, Value> = fields.iter().filter(|(k, _)| !HAL_FIELDS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let id = row.get("id").and_then(Value::as_str).ok_or_else(|| NotBridgeable::NotAJob("it has no id".into()))?;
    validate_job_id(id).map_err(|e| NotBridgeable::NotAJob(e.to_string()))?;
    row.insert("jobStatus".into(), json!(JobStatus::Created.as_str()));
    let engine_is_ours = row.get("targetEngine").and_then(|e| e.get("engineType")).and_then(Value::as_str) == Some(SPARK_SERVERLESS_RUNTIME);
    if !engine_is_ours {
        row.insert("runtimeType".into(), json!(SPARK_SERVERLESS_RUNTIME));
    }
    row.insert(MODEL_MANAGE_ATTR.into(), mark.to_value());
    // This service's first write: it also puts the row in the `byJobStatus` index (a sparse one,
    // keyed on `updatedAt`), where the poll looks for the bridged rows ModelOp cancelled or deleted.
    row.insert("updatedAt".into(), json!(timestamp(mark.claimed_at)));
    let row = Value::Object(row);
    let item: serde_dynamo::Item = serde_dynamo::to_item(&row).map_err(|e| NotBridgeable::NotAJob(format!("not storable: {e}")))?;
    let bytes = item_size(&item);
    if bytes > MAX_ITEM_BYTES {
        return Err(NotBridgeable::TooLarge { bytes, limit: MAX_ITEM_BYTES });
    }
    decode_job(item).map_err(NotBridgeable::NotAJob)?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(engine_types: &[&str], runtime_name: Option<&str>) -> BridgeConfig {
        BridgeConfig {
            api_base: url::Url::parse("http://mm/model-manage/api/").unwrap(),
            token_url: url::Url::parse("http://mm/oauth/token").unwrap(),
            client_id: "internal-client".into(),
            client_secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:s".into(),
            scope: None,
            engine_types: engine_types.iter().map(|t| t.to_string()).collect(),
            runtime_name: runtime_name.map(str::to_string),
            poll_interval: std::time::Duration::from_secs(10),
            run_id_field: None,
            job_finder: None,
            job_item_path: Default::default(),
            test_result_asset: None,
        }
    }

    fn mark() -> BridgeMark {
        BridgeMark { version: Some(1), claimed_at: Utc.with_ymd_and_hms(2026, 11, 23, 20, 0, 0).unwrap(), claimant: "bridge@jobs".into() }
    }

    /// A stored job as model-manage answers it (`modelop/lab-dashboard` `example_job.json`'s shape).
    fn stored_job(engine_type: &str) -> Value {
        json!({
            "id": "4f2a", "version": 1, "jobType": "MODEL_BATCH_JOB", "jobStatus": "WAITING", "jobMessages": ["m"],
            "createdDate": "2026-11-23T19:59:00.000Z", "lastModifiedBy": "internal-client",
            "targetEngine": {"engineType": engine_type, "name": "emr-serverless-1", "sparkConf": {}},
            "model": {"storedModel": {"modelAssets": [{"assetType": "SOURCE_CODE", "primaryModelSource": true, "sourceCode": "def score(): pass"}]}},
            "inputData": [], "outputData": [],
            "_links": {"self": {"href": "http://mm/model-manage/api/modelBatchJob/4f2a"}}
        })
    }

    #[test]
    fn candidates_are_the_batch_types_of_a_configured_engine_and_name() {
        let job = |job_type: &str, engine: Value| json!({"id": "j", "jobType": job_type, "targetEngine": engine});
        let ours = json!({"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "emr-1"});
        let cases = [
            (job("MODEL_BATCH_JOB", ours.clone()), config(&["SPARK_SERVERLESS_RUNTIME"], None), true),
            (job("MODEL_BATCH_TEST_JOB", ours.clone()), config(&["SPARK_SERVERLESS_RUNTIME"], Some("emr-1")), true),
            (job("MODEL_BATCH_TRAINING_JOB", ours.clone()), config(&["SPARK_SERVERLESS_RUNTIME"], Some("emr-2")), false),
            (job("MODEL_BATCH_JOB", json!({"engineType": "SPARK_RUNTIME"})), config(&["SPARK_SERVERLESS_RUNTIME"], None), false),
            (job("MODEL_BATCH_JOB", json!({"engineType": "SPARK_RUNTIME"})), config(&["SPARK_SERVERLESS_RUNTIME", "SPARK_RUNTIME"], None), true),
            (job("MODEL_TEST", ours.clone()), config(&["SPARK_SERVERLESS_RUNTIME"], None), false),
            (json!({"jobType": "MODEL_BATCH_JOB"}), config(&["SPARK_SERVERLESS_RUNTIME"], None), false),
            (json!("not a job"), config(&["SPARK_SERVERLESS_RUNTIME"], None), false),
        ];
        for (job, config, expected) in cases {
            assert_eq!(is_candidate(&job, &config), expected, "{job} with {:?} / {:?}", config.engine_types, config.runtime_name);
        }
    }

    #[test]
    fn a_claimed_job_becomes_a_created_row_marked_with_its_source_and_version() {
        let row = bridged_row(&stored_job("SPARK_SERVERLESS_RUNTIME"), &mark()).unwrap();
        assert_eq!(row["jobStatus"], "CREATED");
        assert_eq!(row["modelManage"], json!({"source": "model-manage", "version": 1, "claimedAt": "2026-11-23T20:00:00.000Z", "claimant": "bridge@jobs"}));
        assert!(row.get("_links").is_none(), "HAL links are not stored");
        assert_eq!(row["updatedAt"], "2026-11-23T20:00:00.000Z", "in the byJobStatus index from the start");
        assert!(row.get("runtimeType").is_none(), "the engine type already makes the row ours");
        for kept in ["id", "version", "jobType", "jobMessages", "createdDate", "targetEngine", "model", "inputData", "outputData"] {
            assert_eq!(row[kept], stored_job("SPARK_SERVERLESS_RUNTIME")[kept], "{kept} is kept as model-manage gave it");
        }
        // Another configured engine type: the row still says it is this runtime's.
        let row = bridged_row(&stored_job("EMR_SERVERLESS"), &mark()).unwrap();
        assert_eq!((row["runtimeType"].as_str(), row["targetEngine"]["engineType"].as_str()), (Some("SPARK_SERVERLESS_RUNTIME"), Some("EMR_SERVERLESS")));
        let header: crate::job::record::JobHeader = serde_json::from_value(row).unwrap();
        assert!(header.is_ours());
    }

    #[test]
    fn documents_that_are_not_jobs_or_too_large_are_refused_with_the_reason() {
        let with = |field: &str, value: Value| {
            let mut job = stored_job("SPARK_SERVERLESS_RUNTIME");
            job[field] = value;
            job
        };
        let without_id = {
            let mut job = stored_job("SPARK_SERVERLESS_RUNTIME");
            job.as_object_mut().unwrap().remove("id");
            job
        };
        let cases = [
            (json!([1, 2]), "not a job this runtime can run: the document is not a JSON object"),
            (without_id, "not a job this runtime can run: it has no id"),
            (with("id", json!("a/b")), "not a job this runtime can run: job id \"a/b\" contains characters outside"),
            (with("jobType", json!("MODEL_BATCH")), "not a job this runtime can run: jobType: unknown variant `MODEL_BATCH`"),
            (with("model", json!("x")), "not a job this runtime can run: model: Expected map"),
            (with("inputData", json!([{"fileUrl": 3}])), "not a job this runtime can run: inputData[0].fileUrl: Expected string"),
            (with("jobParameters", json!({"big": "x".repeat(MAX_ITEM_BYTES)})), "bytes as a DynamoDB item; the jobs table holds at most 409600 bytes (400 KB)"),
        ];
        for (document, needle) in cases {
            let err = bridged_row(&document, &mark()).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    /// DynamoDB holds an item of exactly 400 KB: a document whose row is that size is bridged, one
    /// byte more is refused.
    #[test]
    fn a_row_of_exactly_the_item_limit_is_bridged() {
        let padded = |pad: usize| {
            let mut job = stored_job("SPARK_SERVERLESS_RUNTIME");
            job["jobParameters"] = json!({"pad": "x".repeat(pad)});
            job
        };
        let row = bridged_row(&padded(0), &mark()).unwrap();
        let empty = item_size(&serde_dynamo::to_item(&row).unwrap());
        let at_limit = bridged_row(&padded(MAX_ITEM_BYTES - empty), &mark()).unwrap();
        assert_eq!(item_size(&serde_dynamo::to_item(&at_limit).unwrap()), MAX_ITEM_BYTES);
        assert_eq!(
            bridged_row(&padded(MAX_ITEM_BYTES - empty + 1), &mark()),
            Err(NotBridgeable::TooLarge { bytes: MAX_ITEM_BYTES + 1, limit: MAX_ITEM_BYTES })
        );
    }
}
