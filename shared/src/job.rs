//! The job record contract: what ModelOp Center writes into the jobs table and what this service
//! writes back. README.md ("The job record contract") is the prose version of the same contract.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The runtime type this service owns. Rows of any other runtime are never touched.
pub const SPARK_SERVERLESS_RUNTIME: &str = "SPARK_SERVERLESS_RUNTIME";

/// Longest job id accepted: the id is used verbatim as the EMR `clientToken` (1..=64 characters).
pub const MAX_JOB_ID_LEN: usize = 64;

/// Attribute names of the job record, in one place so the store and the tests agree.
pub mod attr {
    pub const ID: &str = "id";
    pub const JOB_TYPE: &str = "jobType";
    pub const JOB_STATUS: &str = "jobStatus";
    pub const RUNTIME_TYPE: &str = "runtimeType";
    pub const SPARK_APPLICATION_ID: &str = "sparkApplicationId";
    pub const EMR_APPLICATION_ID: &str = "emrApplicationId";
    pub const STAGING_URI: &str = "stagingUri";
    pub const EMR_STATE: &str = "emrState";
    pub const ERROR_MESSAGE: &str = "errorMessage";
    pub const STATUS_HISTORY: &str = "statusHistory";
    pub const UPDATED_AT: &str = "updatedAt";
    pub const SUBMIT_LEASE: &str = "submitLease";
    pub const CLEANED_AT: &str = "cleanedAt";
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

/// The three batch job types of the seed, and the model function each one calls.
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

/// One entry of `model.storedModel.modelAssets`, `inputData` or `outputData`. Unknown fields of
/// ModelOp's asset documents are ignored; the ones below are passed to the model unchanged.
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
    pub file_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

pub const ASSET_SOURCE_CODE: &str = "SOURCE_CODE";
pub const ASSET_EXTERNAL_FILE: &str = "EXTERNAL_FILE";

impl Asset {
    pub fn is_type(&self, asset_type: &str) -> bool {
        self.asset_type.as_deref() == Some(asset_type)
    }

    pub fn is_primary_source(&self) -> bool {
        self.is_type(ASSET_SOURCE_CODE) && self.primary_model_source == Some(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredModel {
    #[serde(default)]
    pub model_assets: Vec<Asset>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    #[serde(default)]
    pub stored_model: StoredModel,
}

/// The fields of a job row that decide whether the row is ours at all. Decoded leniently, before
/// the full [`Job`], so a row we own but cannot decode still ends in ERROR with a message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobHeader {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub job_status: Option<String>,
    #[serde(default)]
    pub runtime_type: Option<String>,
}

impl JobHeader {
    pub fn is_ours(&self) -> bool {
        self.runtime_type.as_deref() == Some(SPARK_SERVERLESS_RUNTIME)
    }

    pub fn status(&self) -> Option<JobStatus> {
        self.job_status.as_deref().and_then(JobStatus::parse)
    }
}

/// A job as ModelOp Center writes it. Fields this service writes back are read by other issues'
/// functions through their own types.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub job_type: JobType,
    pub job_status: JobStatus,
    pub runtime_type: String,
    #[serde(default)]
    pub model: ModelRef,
    #[serde(default)]
    pub input_data: Vec<Asset>,
    #[serde(default)]
    pub output_data: Vec<Asset>,
    #[serde(default)]
    pub job_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub spark_application_id: Option<String>,
}

impl Job {
    pub fn model_assets(&self) -> &[Asset] {
        &self.model.stored_model.model_assets
    }
}

/// One `statusHistory` entry, appended on every status change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emr_state: Option<String>,
    pub at: String,
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

/// A bounded, log-safe rendering of untrusted text for error messages.
pub fn printable(value: &str) -> String {
    const LIMIT: usize = 80;
    let mut out: String = value.chars().take(LIMIT).collect();
    if value.chars().count() > LIMIT {
        out.push('…');
    }
    out
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
        }
        let terminal: Vec<_> = JobStatus::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [JobStatus::Complete, JobStatus::Error, JobStatus::Cancelled]);
        assert_eq!(JobStatus::parse("created"), None);
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

    #[test]
    fn timestamps_are_fixed_width_utc() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(timestamp(at), "2026-01-02T03:04:05.000Z");
    }
}
