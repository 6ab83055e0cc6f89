//! The job record contract: what ModelOp Center writes into the jobs table and what this service
//! writes back. `shared/CONTRACT.md` is the prose version of the same contract.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::text::printable;

/// The runtime type this service owns. Rows of any other runtime are never touched.
pub const SPARK_SERVERLESS_RUNTIME: &str = "SPARK_SERVERLESS_RUNTIME";

/// Longest job id accepted: the id is used verbatim as the EMR `clientToken` (1..=64 characters).
pub const MAX_JOB_ID_LEN: usize = 64;

/// Attribute names of the job record, in one place so the store and the tests agree.
pub mod attr {
    pub const ID: &str = "id";
    pub const JOB_STATUS: &str = "jobStatus";
}

/// `jobStatus` values, in the order a job moves through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Created,
    Waiting,
    Running,
    Complete,
    Error,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Created,
        JobStatus::Waiting,
        JobStatus::Running,
        JobStatus::Complete,
        JobStatus::Error,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "CREATED",
            JobStatus::Waiting => "WAITING",
            JobStatus::Running => "RUNNING",
            JobStatus::Complete => "COMPLETE",
            JobStatus::Error => "ERROR",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(value: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// COMPLETE, ERROR and CANCELLED are final: nothing moves a job out of them.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Complete | JobStatus::Error | JobStatus::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three batch job types of ModelOp's EMR Serverless runtime, and the model function each one calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobType {
    #[serde(rename = "MODEL_BATCH_JOB")]
    Batch,
    #[serde(rename = "MODEL_BATCH_TEST_JOB")]
    Test,
    #[serde(rename = "MODEL_BATCH_TRAINING_JOB")]
    Training,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Batch => "MODEL_BATCH_JOB",
            JobType::Test => "MODEL_BATCH_TEST_JOB",
            JobType::Training => "MODEL_BATCH_TRAINING_JOB",
        }
    }

    pub fn parse(value: &str) -> Option<JobType> {
        [JobType::Batch, JobType::Test, JobType::Training]
            .into_iter()
            .find(|t| t.as_str() == value)
    }

    /// The `# modelop.<role>` annotation that marks the function this job type calls.
    pub fn model_role(self) -> ModelRole {
        match self {
            JobType::Batch => ModelRole::Score,
            JobType::Test => ModelRole::Metrics,
            JobType::Training => ModelRole::Train,
        }
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles a model function can be annotated with (`# modelop.init`, `# modelop.score`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelRole {
    Init,
    Score,
    Metrics,
    Train,
}

impl ModelRole {
    pub const ALL: [ModelRole; 4] = [ModelRole::Init, ModelRole::Score, ModelRole::Metrics, ModelRole::Train];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelRole::Init => "init",
            ModelRole::Score => "score",
            ModelRole::Metrics => "metrics",
            ModelRole::Train => "train",
        }
    }

    pub fn annotation(self) -> String {
        format!("# modelop.{}", self.as_str())
    }
}

/// One entry of `model.storedModel.modelAssets`, `inputData` or `outputData`, whole: the fields
/// this service reads are typed, every other field ModelOp put on the asset (`assetRole`,
/// `assetId`, `fileSize`, `repositoryInfo`, ...) is kept in [`Asset::other`] and reaches the model
/// unchanged. Shapes: ModelOp's job documents (`modelop/titanic-spark` `job_submit/*.json`,
/// `modelop/german_credit_data_drift_detector_spark` `job_submitter/full_drift_job.json`).
///
/// Credentials are dropped as the asset is decoded (see [`without_credentials`]), so no later
/// step can stage, log or write them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_model_source: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A `FILE` asset's content, base64 (ModelOp's `fileContent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_content: Option<String>,
    /// A `FILE` asset's content as text, or already parsed (ModelOp puts a JSON file's parsed
    /// value here: `full_drift_job.json`'s `.avsc` schema is an array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_content_string: Option<Value>,
    /// Where the asset lives; `repositoryType: S3_REPOSITORY` makes an `http(s)://host/bucket/key`
    /// `fileUrl` an S3 location.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "repository_info_without_credentials")]
    pub repository_info: Option<Value>,
    /// On the primary `SOURCE_CODE` asset: the functions to call, by ModelOp's field names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_function: Option<String>,
    /// No public ModelOp document shows the training counterpart: `trainingFunction` (after
    /// `scoreFunction`/`metricsFunction`) and `trainFunction` (after `# modelop.train`) are both read.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "trainFunction")]
    pub training_function: Option<String>,
    /// Every other field, as ModelOp wrote it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

pub const ASSET_SOURCE_CODE: &str = "SOURCE_CODE";
pub const ASSET_EXTERNAL_FILE: &str = "EXTERNAL_FILE";
/// An asset whose content is inline (`fileContent` base64, or `fileContentString`); ModelOp turns
/// it into an `EXTERNAL_FILE` for the model (dv32 "Spark Details: Preparing a Spark Model").
pub const ASSET_FILE: &str = "FILE";
/// `repositoryInfo.repositoryType` of ModelOp's S3 repository.
pub const S3_REPOSITORY: &str = "S3_REPOSITORY";

impl Asset {
    pub fn is_type(&self, asset_type: &str) -> bool {
        self.asset_type.as_deref() == Some(asset_type)
    }

    pub fn is_primary_source(&self) -> bool {
        self.is_type(ASSET_SOURCE_CODE) && self.primary_model_source == Some(true)
    }

    /// Whether `repositoryInfo.repositoryType` is `S3_REPOSITORY`.
    pub fn in_s3_repository(&self) -> bool {
        self.repository_info.as_ref().and_then(|info| info.get("repositoryType")).and_then(Value::as_str) == Some(S3_REPOSITORY)
    }

    /// The function ModelOp names for `role` on this (primary source) asset, if any.
    pub fn named_function(&self, role: ModelRole) -> Option<&str> {
        let name = match role {
            ModelRole::Init => &self.init_function,
            ModelRole::Score => &self.score_function,
            ModelRole::Metrics => &self.metrics_function,
            ModelRole::Train => &self.training_function,
        };
        name.as_deref().map(str::trim).filter(|n| !n.is_empty())
    }

    /// A short label for messages: `name`, else `filename`, else the last part of `fileUrl`,
    /// else `#<position>` in its list (ModelOp's data assets may have no name, or `""`).
    pub fn label(&self, position: usize) -> String {
        [self.name.as_deref(), self.filename.as_deref()]
            .into_iter()
            .flatten()
            .find(|n| !n.is_empty())
            .map(str::to_string)
            .or_else(|| self.file_url.as_deref().and_then(|u| u.trim_end_matches('/').rsplit('/').next()).filter(|n| !n.is_empty()).map(str::to_string))
            .unwrap_or_else(|| format!("#{position}"))
    }
}

/// Field names under `repositoryInfo` that hold credentials (ModelOp's S3 repository carries
/// `accessKey` and `secretKey`); compared without case, as parts of the name.
const CREDENTIAL_NAME_PARTS: [&str; 6] = ["accesskey", "secret", "password", "token", "credential", "sessionkey"];

/// `repositoryInfo` without the fields that hold credentials. The job's IAM role is what reads S3
/// on EMR Serverless; ModelOp's keys are never staged, logged or written back.
pub fn without_credentials(mut info: Value) -> Value {
    if let Value::Object(fields) = &mut info {
        fields.retain(|name, _| {
            let lower = name.to_ascii_lowercase();
            !CREDENTIAL_NAME_PARTS.iter().any(|part| lower.contains(part))
        });
    }
    info
}

fn repository_info_without_credentials<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Ok(Option::<Value>::deserialize(deserializer)?.filter(|v| !v.is_null()).map(without_credentials))
}

/// A field ModelOp may write as `null` (a list, a map): read as its default (empty).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `jobParameters` values as ModelOp writes them: strings (`"-v": ""`), and numbers, booleans or
/// `null` read as their text (`null` as `""`).
fn job_parameters<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(deserializer)?;
    let mut params = BTreeMap::new();
    for (name, value) in raw.unwrap_or_default() {
        let text = match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "{name:?}: expected a string, number, boolean or null, found {}",
                    if other.is_array() { "a list" } else { "a map" }
                )))
            }
        };
        params.insert(name, text);
    }
    Ok(params)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredModel {
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_assets: Vec<Asset>,
    /// The stored model's id (`model.storedModel.id`), tagged on the run for cost allocation.
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_meta_data: ModelMetaData,
}

/// `model.storedModel.modelMetaData`, as far as this service reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelMetaData {
    /// The model's name, tagged on the run for cost allocation.
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    #[serde(default, deserialize_with = "null_as_default")]
    pub stored_model: StoredModel,
}

/// `targetEngine` as far as this service reads it: ModelOp's Spark jobs name their engine in
/// `targetEngine.engineType` (`SPARK_RUNTIME` in `modelop/titanic-spark` `job_submit/*.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetEngine {
    #[serde(default)]
    pub engine_type: Option<String>,
}

/// The fields that say which runtime a job is for. ModelOp's EMR Serverless page says the jobs
/// have "SPARK_SERVERLESS_RUNTIME as the runtime type" without naming the field; a job is ours
/// when either `runtimeType` or `targetEngine.engineType` says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSelector {
    #[serde(default)]
    pub runtime_type: Option<String>,
    #[serde(default)]
    pub target_engine: Option<TargetEngine>,
}

impl RuntimeSelector {
    pub fn is_ours(&self) -> bool {
        self.runtime_type.as_deref() == Some(SPARK_SERVERLESS_RUNTIME)
            || self.target_engine.as_ref().and_then(|e| e.engine_type.as_deref()) == Some(SPARK_SERVERLESS_RUNTIME)
    }
}

/// The fields of a job row every function reads first: whose the row is and where the job
/// stands. Decoded leniently (an unknown `jobStatus` text is `None`, not an error), so a row we own
/// but cannot decode in full still ends in ERROR with a message. Embedded (flattened) in each
/// function's read model of a row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobHeader {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub job_status: Option<JobStatus>,
    #[serde(flatten)]
    pub runtime: RuntimeSelector,
    /// The EMR Serverless job run recorded on the job (`sparkApplicationId`), and its application.
    #[serde(default)]
    pub spark_application_id: Option<String>,
    #[serde(default)]
    pub emr_application_id: Option<String>,
}

impl JobHeader {
    pub fn is_ours(&self) -> bool {
        self.runtime.is_ours()
    }

    pub fn status(&self) -> Option<JobStatus> {
        self.job_status
    }

    /// The job id, or `""` for a row read without one (a projection that left it out).
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }
}

/// A value read leniently: absent, `null` or unreadable is `None` (a lease time or a status this
/// code cannot read must never make the whole row unreadable).
pub fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// An instant in the contract's format: ISO-8601 UTC with milliseconds and a fixed width
/// (`2026-11-23T20:15:04.123Z`), so string order is time order (the `byJobStatus` index sorts on
/// it). Reads any RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&timestamp(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| Timestamp(t.with_timezone(&chrono::Utc)))
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&timestamp(self.0))
    }
}

/// A job as ModelOp Center writes it. Optional fields may be absent or `null`; fields of ModelOp's
/// documents this service does not read (`group`, `_links`, `createdDate`, ...) are ignored here
/// and left on the row as they are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub job_type: JobType,
    pub job_status: JobStatus,
    #[serde(flatten)]
    pub runtime: RuntimeSelector,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: ModelRef,
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_data: Vec<Asset>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_data: Vec<Asset>,
    #[serde(default, deserialize_with = "job_parameters")]
    pub job_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub spark_application_id: Option<String>,
}

impl Job {
    pub fn model_assets(&self) -> &[Asset] {
        &self.model.stored_model.model_assets
    }
}

/// Decodes a job row, naming the field that is wrong and what it expected
/// (`model.storedModel: invalid type: string "x", expected struct StoredModel`).
pub fn decode_job(item: serde_dynamo::Item) -> Result<Job, String> {
    let deserializer = serde_dynamo::Deserializer::from_attribute_value(serde_dynamo::AttributeValue::M(item.into()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

/// One `statusHistory` entry, appended on every status change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emr_state: Option<String>,
    pub at: Timestamp,
}

/// Why a job id cannot be used: the id appears in S3 keys and in the EMR client token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidJobId {
    #[error("job id is empty")]
    Empty,
    #[error("job id is {0} characters long; at most {MAX_JOB_ID_LEN} are allowed")]
    TooLong(usize),
    #[error("job id {0:?} contains characters outside [A-Za-z0-9._-]")]
    BadCharacters(String),
    #[error("job id {0:?} is '.' or contains '..', which is not allowed in a storage path")]
    DotDot(String),
}

/// The job id rule: 1..=64 characters of `[A-Za-z0-9._-]`, and no `..` (so it can never climb out
/// of the staging prefix).
pub fn validate_job_id(id: &str) -> Result<(), InvalidJobId> {
    if id.is_empty() {
        return Err(InvalidJobId::Empty);
    }
    let len = id.chars().count();
    if len > MAX_JOB_ID_LEN {
        return Err(InvalidJobId::TooLong(len));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(InvalidJobId::BadCharacters(printable(id)));
    }
    if id.contains("..") || id == "." {
        return Err(InvalidJobId::DotDot(id.to_string()));
    }
    Ok(())
}

/// One `jobMessages` entry as ModelOp's runtimes write them: a plain string, a `YYYY/M/D HH:MM:SS`
/// UTC timestamp, a level tag, the text (`"2021/3/11 14:40:45 [info] ..."`, the stored job in
/// `modelop/german_credit_data_drift_detector_spark` `response.json`).
pub fn job_message(at: chrono::DateTime<chrono::Utc>, level: MessageLevel, text: &str) -> String {
    format!("{} [{}] {text}", at.format("%Y/%-m/%-d %H:%M:%S"), level.as_str())
}

/// The level tags ModelOp's `jobMessages` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageLevel {
    Info,
    Warning,
    Error,
}

impl MessageLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageLevel::Info => "info",
            MessageLevel::Warning => "warning",
            MessageLevel::Error => "error",
        }
    }
}

/// `jobWaitTime`, `jobRunTime`, `jobEndTime`: ModelOp writes them as epoch milliseconds
/// (`response.json`: `"jobWaitTime":1615473645393`), the moments the job started waiting, started
/// running and ended.
pub fn epoch_millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// The ISO-8601 UTC timestamp format used for `updatedAt` and `statusHistory[].at`: fixed width, so
/// string order is time order (the `byJobStatus` index sorts on it).
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_rule() {
        let long = "a".repeat(65);
        let cases: &[(&str, Result<(), InvalidJobId>)] = &[
            ("0b8f2a4e-6c1d-4a57-9a3e-2f5d7c9b1e00", Ok(())),
            ("job_1.v2", Ok(())),
            (&long[..64], Ok(())),
            ("", Err(InvalidJobId::Empty)),
            (&long, Err(InvalidJobId::TooLong(65))),
            ("job 1", Err(InvalidJobId::BadCharacters("job 1".into()))),
            ("a/b", Err(InvalidJobId::BadCharacters("a/b".into()))),
            ("é", Err(InvalidJobId::BadCharacters("é".into()))),
            ("job\n1", Err(InvalidJobId::BadCharacters("job\n1".into()))),
            ("..", Err(InvalidJobId::DotDot("..".into()))),
            ("a..b", Err(InvalidJobId::DotDot("a..b".into()))),
            (".", Err(InvalidJobId::DotDot(".".into()))),
        ];
        for (id, expected) in cases {
            assert_eq!(&validate_job_id(id), expected, "id {id:?}");
        }
    }

    #[test]
    fn statuses_round_trip_and_terminal_set() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
            // Messages and logs print it as ModelOp writes it.
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(JobStatus::Waiting.to_string(), "WAITING");
        let terminal: Vec<_> = JobStatus::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [JobStatus::Complete, JobStatus::Error, JobStatus::Cancelled]);
        assert_eq!(JobStatus::parse("created"), None);
    }

    /// An asset's label in messages: its name, else its filename, else the last part of its URL,
    /// else its position; an empty one counts as none.
    #[test]
    fn an_assets_label_is_its_first_non_empty_name() {
        let asset = |doc: serde_json::Value| serde_json::from_value::<Asset>(doc).unwrap();
        let cases = [
            (serde_json::json!({"name": "train", "filename": "t.csv", "fileUrl": "s3://b/k/data.csv"}), "train"),
            (serde_json::json!({"name": "", "filename": "t.csv", "fileUrl": "s3://b/k/data.csv"}), "t.csv"),
            (serde_json::json!({"name": "", "fileUrl": "s3://b/k/data.csv"}), "data.csv"),
            (serde_json::json!({"fileUrl": "s3://b/k/folder/"}), "folder"),
            (serde_json::json!({"fileUrl": "/"}), "#3"),
            (serde_json::json!({"fileUrl": ""}), "#3"),
            (serde_json::json!({}), "#3"),
        ];
        for (doc, label) in cases {
            assert_eq!(asset(doc.clone()).label(3), label, "{doc}");
        }
    }

    #[test]
    fn job_type_selects_model_role() {
        let cases = [
            ("MODEL_BATCH_JOB", ModelRole::Score),
            ("MODEL_BATCH_TEST_JOB", ModelRole::Metrics),
            ("MODEL_BATCH_TRAINING_JOB", ModelRole::Train),
        ];
        for (name, role) in cases {
            let job_type = JobType::parse(name).expect(name);
            assert_eq!(job_type.model_role(), role);
            assert_eq!(job_type.as_str(), name);
        }
        assert_eq!(JobType::parse("MODEL_BATCH"), None);
    }

    fn item(document: serde_json::Value) -> serde_dynamo::Item {
        serde_dynamo::to_item(document).unwrap()
    }

    fn minimal(extra: serde_json::Value) -> serde_json::Value {
        let mut doc = serde_json::json!({"id": "job-1", "jobType": "MODEL_BATCH_JOB", "jobStatus": "CREATED", "runtimeType": "SPARK_SERVERLESS_RUNTIME"});
        doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        doc
    }

    #[test]
    fn explicit_nulls_and_modelop_extra_fields_decode() {
        let job = decode_job(item(minimal(serde_json::json!({
            "model": {"storedModel": {"modelAssets": null, "modelMetaData": {"name": "m"}}},
            "inputData": null,
            "outputData": [{"assetType": "EXTERNAL_FILE", "name": null, "fileUrl": "s3://b/o/", "fileSize": 12, "assetRole": "UNKNOWN"}],
            "jobParameters": {"-v": "", "--num-executors": 2, "flag": true, "empty": null},
            "group": "modelop", "_links": {"self": {"href": "http://x/api/job"}}, "createdDate": "2021-03-11T02:54:49.921Z",
            "targetEngine": {"engineType": "SPARK_RUNTIME", "sparkConf": {"--master": "yarn"}}, "sparkApplicationId": null,
        }))))
        .expect("decodes");
        assert!(job.model_assets().is_empty() && job.input_data.is_empty());
        assert_eq!(job.output_data[0].name, None);
        assert_eq!(job.output_data[0].other["fileSize"], 12);
        assert_eq!(job.output_data[0].other["assetRole"], "UNKNOWN");
        let params: Vec<(&str, &str)> = job.job_parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(params, [("--num-executors", "2"), ("-v", ""), ("empty", ""), ("flag", "true")]);
    }

    #[test]
    fn decode_errors_name_the_field_and_what_it_expected() {
        let cases = [
            (serde_json::json!({"model": "not-a-map"}), "model: Expected map"),
            (serde_json::json!({"jobParameters": ["a"]}), "jobParameters: Expected map"),
            (serde_json::json!({"jobParameters": {"k": ["a"]}}), "jobParameters: \"k\": expected a string, number, boolean or null, found a list"),
            (serde_json::json!({"inputData": [{"fileUrl": 3}]}), "inputData[0].fileUrl: Expected string"),
            (serde_json::json!({"jobType": "MODEL_BATCH"}), "jobType: unknown variant `MODEL_BATCH`"),
        ];
        for (extra, needle) in cases {
            let Err(err) = decode_job(item(minimal(extra.clone()))) else { panic!("{needle}") };
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn a_job_is_ours_by_runtime_type_or_target_engine() {
        let header = |doc: serde_json::Value| -> JobHeader { serde_json::from_value(doc).unwrap() };
        let cases = [
            (serde_json::json!({"runtimeType": "SPARK_SERVERLESS_RUNTIME"}), true),
            (serde_json::json!({"targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "r"}}), true),
            (serde_json::json!({"runtimeType": "SPARK_RUNTIME", "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME"}}), true),
            (serde_json::json!({"targetEngine": {"engineType": "SPARK_RUNTIME"}}), false),
            (serde_json::json!({"targetEngine": null, "runtimeType": null}), false),
            (serde_json::json!({}), false),
        ];
        for (doc, ours) in cases {
            assert_eq!(header(doc.clone()).is_ours(), ours, "{doc}");
        }
    }

    #[test]
    fn credentials_never_survive_decoding() {
        let asset: Asset = serde_json::from_value(serde_json::json!({
            "assetType": "EXTERNAL_FILE",
            "repositoryInfo": {"repositoryType": "S3_REPOSITORY", "host": "minio", "accessKey": "AK", "secretKey": "SK",
                               "sessionToken": "T", "password": "P", "port": 9000}
        }))
        .unwrap();
        let info = asset.repository_info.as_ref().unwrap();
        assert_eq!(info, &serde_json::json!({"repositoryType": "S3_REPOSITORY", "host": "minio", "port": 9000}));
        assert!(asset.in_s3_repository());
    }

    #[test]
    fn job_messages_look_like_modelops() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2021, 3, 11, 14, 40, 45).unwrap();
        assert_eq!(job_message(at, MessageLevel::Info, "batch job received"), "2021/3/11 14:40:45 [info] batch job received");
        assert_eq!(epoch_millis(at + chrono::Duration::milliseconds(393)), 1_615_473_645_393);
    }

    #[test]
    fn headers_read_unknown_statuses_and_bad_times_as_none() {
        let header: JobHeader = serde_json::from_value(serde_json::json!({"id": "j", "jobStatus": "PAUSED"})).unwrap();
        assert_eq!((header.id(), header.status()), ("j", None));
        let header: JobHeader = serde_json::from_value(serde_json::json!({"jobStatus": "RUNNING"})).unwrap();
        assert_eq!((header.id(), header.status()), ("", Some(JobStatus::Running)));
        #[derive(Deserialize)]
        struct At {
            #[serde(default, deserialize_with = "lenient")]
            at: Option<Timestamp>,
        }
        let cases = [
            (serde_json::json!({"at": "2026-01-02T03:04:05.000Z"}), Some("2026-01-02T03:04:05.000Z")),
            (serde_json::json!({"at": "2026-01-02T04:04:05+01:00"}), Some("2026-01-02T03:04:05.000Z")),
            (serde_json::json!({"at": "garbage"}), None),
            (serde_json::json!({"at": 12}), None),
            (serde_json::json!({}), None),
        ];
        for (doc, expected) in cases {
            let at: At = serde_json::from_value(doc.clone()).unwrap();
            assert_eq!(at.at.map(|t| t.to_string()).as_deref(), expected, "{doc}");
        }
    }

    #[test]
    fn timestamps_are_fixed_width_utc() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(timestamp(at), "2026-01-02T03:04:05.000Z");
    }
}
