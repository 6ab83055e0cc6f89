//! Why a job ended in ERROR, as a person would say it: a [`FailureClass`], a one-line summary and
//! the [`Evidence`] it rests on, decided by one pure function, [`classify::classify_failure`], from what the
//! functions know of the job: submit's refusal, the model error record the driver writes, the
//! run's timing, EMR's `stateDetails`, and the end of the driver's stderr.
//!
//! Structure comes before scraping: the driver's record of what the model raised is read first;
//! the texts are read only when it is absent. A text is read line by line from its end, and the
//! first kind of cause (in `TEXT_RULES` order) that any line shows wins: a run that ran out of
//! memory also logs Spark's "Job aborted" and EMR's capacity warnings afterwards, and the memory
//! is the cause.

use serde::{Deserialize, Serialize};

use crate::text::head_bounded;

/// The name of the model error record the driver writes beside `result.json`
/// (`<results-uri>/model-error.json`) when the model function raises; see [`ModelErrorRecord`].
pub const MODEL_ERROR_FILE_NAME: &str = "model-error.json";

/// Bounds of what a [`Failure`] carries, in bytes: it goes into the job row.
const SUMMARY_MAX_BYTES: usize = 300;
const LOG_LINE_MAX_BYTES: usize = 500;
const EXCEPTION_TYPE_MAX_BYTES: usize = 200;
const MODULE_MAX_BYTES: usize = 200;
/// An S3 key is up to 1,024 bytes, an ARN up to 2,048.
const RESOURCE_MAX_BYTES: usize = 1_100;
/// How much of each input is read: the end of stderr, the start of `stateDetails`, the start of
/// each line. Inputs are untrusted and may be huge; the telling lines are short and near the end.
const STDERR_SCAN_BYTES: usize = 128 * 1024;
const STATE_DETAILS_SCAN_BYTES: usize = 16 * 1024;
const LINE_SCAN_BYTES: usize = 4 * 1024;
/// How many characters of a message or log line a summary quotes (names and paths: 80).
const QUOTED_CHARS: usize = 160;
/// A run that ran to within this many seconds of its limit counts as having reached it.
const TIMEOUT_SLACK_SECONDS: i64 = 30;

/// What kind of failure ended a job in ERROR. Serialized as `MODEL_ERROR`, `MISSING_DEPENDENCY`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureClass {
    /// The model function raised.
    ModelError,
    /// The model imports a module (or the run needs a program) the Spark image does not have.
    MissingDependency,
    /// A driver or executor ran out of memory: exit code 137, `OutOfMemoryError`, `MemoryError`,
    /// a container killed for memory.
    OutOfMemory,
    /// The application's maximum capacity, or an account quota, was reached.
    Capacity,
    /// The run exceeded its execution timeout.
    Timeout,
    /// The run waited in the application's queue past its queue timeout.
    QueueTimeout,
    /// Access denied on S3, Glue, KMS or another AWS resource.
    Permission,
    /// An input path or object does not exist.
    InputNotFound,
    /// Submit refused the job before it ran (validation, a malformed record, EMR's validation).
    InvalidJob,
    /// Spark itself failed (a stage aborted, a worker crashed) for a reason not named above.
    SparkError,
    /// Nothing known explains the failure.
    Unknown,
}

impl FailureClass {
    pub const ALL: [FailureClass; 11] = [
        FailureClass::ModelError,
        FailureClass::MissingDependency,
        FailureClass::OutOfMemory,
        FailureClass::Capacity,
        FailureClass::Timeout,
        FailureClass::QueueTimeout,
        FailureClass::Permission,
        FailureClass::InputNotFound,
        FailureClass::InvalidJob,
        FailureClass::SparkError,
        FailureClass::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::ModelError => "MODEL_ERROR",
            FailureClass::MissingDependency => "MISSING_DEPENDENCY",
            FailureClass::OutOfMemory => "OUT_OF_MEMORY",
            FailureClass::Capacity => "CAPACITY",
            FailureClass::Timeout => "TIMEOUT",
            FailureClass::QueueTimeout => "QUEUE_TIMEOUT",
            FailureClass::Permission => "PERMISSION",
            FailureClass::InputNotFound => "INPUT_NOT_FOUND",
            FailureClass::InvalidJob => "INVALID_JOB",
            FailureClass::SparkError => "SPARK_ERROR",
            FailureClass::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `failure` object of a job in ERROR:
/// `{"class": "MISSING_DEPENDENCY", "summary": "The model imports module 'xgboost', ...",
///   "evidence": {"exitCode": 1, "exceptionType": "ModuleNotFoundError", "logLine": "...", "module": "xgboost"}}`.
/// `summary` is one line of at most 300 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub class: FailureClass,
    pub summary: String,
    pub evidence: Evidence,
}

/// How a missing-dependency summary names where the run's Python and programs come from, unless
/// the monitor is told otherwise ([`Failure::naming_spark_environment`]).
pub const SPARK_IMAGE: &str = "the Spark image";

impl Failure {
    /// The same failure, a MISSING_DEPENDENCY summary naming `environment` (such as the local
    /// stack's Python) where it says [`SPARK_IMAGE`]; bounded again. Any other failure is unchanged.
    pub fn naming_spark_environment(mut self, environment: &str) -> Failure {
        if self.class == FailureClass::MissingDependency {
            self.summary = head_bounded(&self.summary.replace(SPARK_IMAGE, environment), SUMMARY_MAX_BYTES).to_string();
        }
        self
    }
}

/// What a [`Failure`] rests on; absent fields are left out of the JSON. Every field is one line
/// and bounded: `logLine` 500 bytes, `exceptionType` and `module` 200, `resource` 1,100.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The run's exit code, from `stateDetails` (`ExitCode: 137`) or a log line (`exit code 137`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// As written: `ModuleNotFoundError`, `java.lang.OutOfMemoryError`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<String>,
    /// The line the class was read from (or `Type: message` of the model error record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_line: Option<String>,
    /// The resource named: an ARN (`arn:aws:glue:...:database/default`), an `s3://` path, a program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The Python module (or Java class) that is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// What the driver writes to `<results-uri>/model-error.json` ([`MODEL_ERROR_FILE_NAME`]) when the
/// model function raises, for the monitor to read:
/// `{"exceptionType": "ModuleNotFoundError", "message": "No module named 'xgboost'",
///   "tracebackTail": "  File \"model.py\", line 3, in <module>\n    import xgboost"}`.
/// `exceptionType` is the exception's qualified name as Python prints it
/// (`pyspark.errors.exceptions.captured.AnalysisException`, `ValueError`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelErrorRecord {
    pub exception_type: String,
    #[serde(default)]
    pub message: String,
    /// The last lines of the traceback; read only when `message` names no cause.
    #[serde(default)]
    pub traceback_tail: String,
}

/// The timing of a run and its limits, as GetJobRun and GetApplication give them; any may be
/// unknown. A timed-out run says so here, whatever its `stateDetails` say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTiming {
    /// The run's `executionTimeoutMinutes` (720 when StartJobRun set none).
    pub execution_timeout_minutes: Option<i64>,
    /// The run's `totalExecutionDurationSeconds`.
    pub execution_seconds: Option<i64>,
    /// The application's `schedulerConfiguration.queueTimeoutMinutes`.
    pub queue_timeout_minutes: Option<i64>,
    /// The run's `queuedDurationMilliseconds`.
    pub queued_millis: Option<i64>,
}

/// What is known of a failed job; read in this order of precedence.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureInputs<'a> {
    /// Submit's `errorMessage` (`job <id>: <step>: <cause>`) when it ended the job before a run
    /// started: the job never ran.
    pub submit_error: Option<&'a str>,
    /// The driver's record of what the model raised.
    pub model_error: Option<&'a ModelErrorRecord>,
    pub timing: Option<RunTiming>,
    /// The run's `stateDetails`.
    pub state_details: Option<&'a str>,
    /// The end of the driver's stderr.
    pub stderr_tail: Option<&'a str>,
}

pub mod classify;
#[cfg(test)]
mod public_texts;
mod text_rules;
