//! Why a job ended in ERROR, as a person would say it: a [`FailureClass`], a one-line summary and
//! the [`Evidence`] it rests on, decided by one pure function, [`classify_failure`], from what the
//! functions know of the job: submit's refusal, the model error record the driver writes, the
//! run's timing, EMR's `stateDetails`, and the end of the driver's stderr.
//!
//! Structure comes before scraping: the driver's record of what the model raised is read first;
//! the texts are read only when it is absent. A text is read line by line from its end, and the
//! first kind of cause (in `TEXT_RULES` order) that any line shows wins: a run that ran out of
//! memory also logs Spark's "Job aborted" and EMR's capacity warnings afterwards, and the memory
//! is the cause.

use std::sync::LazyLock;

use regex_lite::{Captures, Regex};
use serde::{Deserialize, Serialize};

use crate::text::{head_bounded, printable, tail_bounded};

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

/// The failure of a job in ERROR, from what is known of it, in this order:
///
/// 1. submit's refusal: INVALID_JOB, or PERMISSION / INPUT_NOT_FOUND / CAPACITY when its cause
///    says so;
/// 2. the model error record: MODEL_ERROR, or MISSING_DEPENDENCY (naming the module),
///    OUT_OF_MEMORY, INPUT_NOT_FOUND or PERMISSION when the exception is one of those, or
///    SPARK_ERROR for a `Py4JJavaError` that is none of them;
/// 3. the timing: TIMEOUT or QUEUE_TIMEOUT when the run reached its limit;
/// 4. `stateDetails`, then the stderr tail, each read line by line; the stderr tail is taken
///    over `stateDetails` only when it names a more specific cause than SPARK_ERROR;
/// 5. UNKNOWN, with the exit code when EMR gave one.
pub fn classify_failure(inputs: &FailureInputs<'_>) -> Failure {
    if let Some(message) = inputs.submit_error {
        return from_submit(message);
    }
    let exit_code = inputs.state_details.and_then(exit_code_in);
    let failure = if let Some(record) = inputs.model_error {
        from_record(record)
    } else if let Some(found) = inputs.timing.and_then(|t| timed_out(&t)) {
        found
    } else {
        let state = inputs.state_details.and_then(from_state_details);
        let stderr = inputs.stderr_tail.and_then(from_stderr);
        match (state, stderr) {
            (Some(state), Some(stderr)) if state.class == FailureClass::SparkError && stderr.class != FailureClass::SparkError => stderr,
            (Some(state), _) => state,
            (None, Some(stderr)) => stderr,
            (None, None) => unknown(exit_code),
        }
    };
    finish(failure, exit_code)
}

// ---------------------------------------------------------------------------------------------
// The sources

fn from_submit(message: &str) -> Failure {
    let message = head_bounded(message, STATE_DETAILS_SCAN_BYTES);
    for rule in [TextRule::Permission, TextRule::InputNotFound, TextRule::AccountQuota] {
        if let Some(found) = rule.read(message) {
            return finish(found, None);
        }
    }
    // `job <id>: <step>: <cause>`: the cause is what a person needs; the id is the job's own.
    let cause = match message.strip_prefix("job ").and_then(|rest| rest.split_once(": ")) {
        Some((_, rest)) => rest,
        None => message,
    };
    let failure = Failure {
        class: FailureClass::InvalidJob,
        summary: format!("Submit refused the job before it ran: {}", quoted(cause)),
        evidence: Evidence { log_line: Some(bounded(message, LOG_LINE_MAX_BYTES)), ..Evidence::default() },
    };
    finish(failure, None)
}

fn from_record(record: &ModelErrorRecord) -> Failure {
    let exception_type = one_line(head_bounded(&record.exception_type, LINE_SCAN_BYTES));
    let short_type = exception_type.rsplit('.').next().unwrap_or_default();
    let message = head_bounded(&record.message, STATE_DETAILS_SCAN_BYTES);
    let first_line = format!("{exception_type}: {}", message.lines().next().unwrap_or_default());
    let mut text = format!("{exception_type}: {message}");
    if short_type.ends_with("ImportError") || short_type == "ModuleNotFoundError" || message.trim().is_empty() {
        text.push('\n');
        text.push_str(tail_bounded(&record.traceback_tail, STATE_DETAILS_SCAN_BYTES).0);
    }
    // The type is part of the text, so `MemoryError`, `FileNotFoundError` and the like are read
    // by the rules; what they leave is an import that names no module, Spark's, or the model's.
    let rules = [TextRule::MissingDependency, TextRule::OutOfMemory, TextRule::Permission, TextRule::InputNotFound, TextRule::AccountQuota];
    let mut found = read_lines(&text, &rules).unwrap_or_else(|| {
        if short_type.ends_with("ImportError") || short_type == "ModuleNotFoundError" {
            failure(FailureClass::MissingDependency, format!("The model failed to import a module: {}", quoted(message)), &first_line)
        } else if short_type.starts_with("Py4J") || short_type.starts_with("Spark") {
            failure(FailureClass::SparkError, format!("Spark failed while running the model: {}", quoted(&first_line)), &first_line)
        } else {
            model_raised(&exception_type, message, &first_line)
        }
    });
    found.evidence.exception_type = Some(exception_type).filter(|t| !t.is_empty());
    found
}

fn timed_out(timing: &RunTiming) -> Option<Failure> {
    let reached = |spent_seconds: Option<i64>, limit_minutes: Option<i64>| match (spent_seconds, limit_minutes) {
        (Some(spent), Some(limit)) if limit > 0 => spent >= limit.saturating_mul(60).saturating_sub(TIMEOUT_SLACK_SECONDS),
        _ => false,
    };
    if reached(timing.queued_millis.map(|ms| ms / 1000), timing.queue_timeout_minutes) {
        let minutes = timing.queue_timeout_minutes.unwrap_or_default();
        let summary = format!("The run waited in the application's queue past its queue timeout of {minutes} minutes and never started");
        return Some(Failure { class: FailureClass::QueueTimeout, summary, evidence: Evidence::default() });
    }
    if reached(timing.execution_seconds, timing.execution_timeout_minutes) {
        let minutes = timing.execution_timeout_minutes.unwrap_or_default();
        let summary = format!("The run exceeded its execution timeout of {minutes} minutes");
        return Some(Failure { class: FailureClass::Timeout, summary, evidence: Evidence::default() });
    }
    None
}

/// `Job failed, please check complete logs in configured logging destination. ExitCode: 1. Last
/// few exceptions: ...`: the head says what EMR did (timeouts), the exceptions what the run saw.
fn from_state_details(details: &str) -> Option<Failure> {
    let details = head_bounded(details, STATE_DETAILS_SCAN_BYTES);
    let (head, exceptions) = match details.find("Last few exceptions:") {
        Some(at) => (&details[..at], &details[at + "Last few exceptions:".len()..]),
        None => (details, ""),
    };
    if let Some(found) = read_lines(exceptions, &TEXT_RULES) {
        return Some(found);
    }
    let head_rules = [TextRule::QueueTimeout, TextRule::ExecutionTimeout];
    read_lines(head, &head_rules).or_else(|| read_lines(head, &TEXT_RULES))
}

fn from_stderr(stderr: &str) -> Option<Failure> {
    let (tail, _) = tail_bounded(stderr, STDERR_SCAN_BYTES);
    // A Python exception line is the model's only at the end of a Python traceback.
    let rules: Vec<TextRule> = if tail.contains("Traceback (most recent call last)") {
        TEXT_RULES.to_vec()
    } else {
        TEXT_RULES.into_iter().filter(|r| *r != TextRule::ModelError).collect()
    };
    read_lines(tail, &rules)
}

fn unknown(exit_code: Option<i32>) -> Failure {
    let summary = match exit_code {
        Some(code) => format!("The run failed with exit code {code}, and neither EMR nor the driver log says why"),
        None => "The run failed, and neither EMR nor the driver log says why".to_string(),
    };
    Failure { class: FailureClass::Unknown, summary, evidence: Evidence::default() }
}

/// Bounds every field and adds the run's exit code when the finding has none.
fn finish(mut failure: Failure, exit_code: Option<i32>) -> Failure {
    failure.summary = bounded(&failure.summary, SUMMARY_MAX_BYTES);
    let evidence = &mut failure.evidence;
    evidence.exit_code = evidence.exit_code.or(exit_code);
    evidence.exception_type = evidence.exception_type.as_deref().map(|t| bounded(t, EXCEPTION_TYPE_MAX_BYTES));
    evidence.log_line = evidence.log_line.as_deref().map(|l| bounded(l, LOG_LINE_MAX_BYTES)).filter(|l| !l.is_empty());
    evidence.resource = evidence.resource.as_deref().map(|r| bounded(r, RESOURCE_MAX_BYTES)).filter(|r| !r.is_empty());
    evidence.module = evidence.module.as_deref().map(|m| bounded(m, MODULE_MAX_BYTES)).filter(|m| !m.is_empty());
    failure
}

// ---------------------------------------------------------------------------------------------
// Reading texts

/// The kinds of cause a line of text can show, in the order they are looked for: a cause before
/// its consequences (memory before Spark's abort; a missing module before anything else), the
/// model's own exception before EMR's capacity warnings (which also appear in runs that succeed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextRule {
    MissingDependency,
    OutOfMemory,
    Permission,
    InputNotFound,
    AccountQuota,
    ModelError,
    ApplicationCapacity,
    SparkError,
    QueueTimeout,
    ExecutionTimeout,
}

/// The rules for log lines. The timeout rules are read only in the head of `stateDetails`: logs
/// are full of network timeouts.
const TEXT_RULES: [TextRule; 8] = [
    TextRule::MissingDependency,
    TextRule::OutOfMemory,
    TextRule::Permission,
    TextRule::InputNotFound,
    TextRule::AccountQuota,
    TextRule::ModelError,
    TextRule::ApplicationCapacity,
    TextRule::SparkError,
];

/// The first rule (in `rules` order) that any line shows, read from the last line up.
fn read_lines(text: &str, rules: &[TextRule]) -> Option<Failure> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| head_bounded(line.trim(), LINE_SCAN_BYTES))
        .filter(|line| !line.is_empty() && !is_stack_frame(line))
        .collect();
    rules.iter().find_map(|rule| lines.iter().rev().find_map(|line| rule.read(line)))
}

fn is_stack_frame(line: &str) -> bool {
    line.starts_with("at ") || (line.starts_with("...") && line.ends_with(" more"))
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

static NO_MODULE: LazyLock<Regex> = LazyLock::new(|| regex(r#"No module named ['"]?([A-Za-z_][\w.]*)"#));
static CANNOT_IMPORT: LazyLock<Regex> = LazyLock::new(|| regex(r#"cannot import name ['"]?(\w+)['"]? from ['"]?([A-Za-z_][\w.]*)"#));
static CANNOT_RUN: LazyLock<Regex> = LazyLock::new(|| regex(r#"Cannot run program "([^"]+)""#));
static OUT_OF_MEMORY: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"OutOfMemoryError|MemoryError\b|Container killed by YARN for exceeding memory limits|(?i:\bexit ?code:?\s*137\b|exited with code 137\b|memory usage exceeded|OOMKilled)")
});
static YARN_MEMORY: LazyLock<Regex> = LazyLock::new(|| regex(r"(\d+(?:\.\d+)? [KMGT]B of \d+(?:\.\d+)? [KMGT]B \w+ memory used)"));
static JAVA_OOM: LazyLock<Regex> = LazyLock::new(|| regex(r"((?:[\w$]+\.)*OutOfMemoryError(?::\s*[^:]*)?)"));
static EXIT_CODE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\bexit ?code:?\s*(-?\d{1,9})\b|exited with code (-?\d{1,9})\b"));
static STATE_EXIT_CODE: LazyLock<Regex> = LazyLock::new(|| regex(r"ExitCode:\s*(-?\d{1,9})\b"));
static ACCESS_DENIED: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)access ?denied|not authorized to perform|\bforbidden\b|status code: 403\b|customer master key")
});
static DENIED_ACTION: LazyLock<Regex> = LazyLock::new(|| regex(r"not authorized to perform:? ([\w-]+:[\w*]+)"));
static DENIED_ARN: LazyLock<Regex> = LazyLock::new(|| regex(r#"on resource:? (arn:[^\s,;()'"]+)"#));
static S3_URI: LazyLock<Regex> = LazyLock::new(|| regex(r#"\b(s3[an]?://[^\s'"`,;()\[\]]+)"#));
static AWS_OPERATION: LazyLock<Regex> = LazyLock::new(|| regex(r"when calling the (\w+) operation"));
static NOT_FOUND: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\[PATH_NOT_FOUND\]|[Pp]ath does not exist|FileNotFoundException|FileNotFoundError|NoSuchKey|NoSuchBucket|The specified (?:key|bucket) does not exist")
});
static MISSING_PATH: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"(?:[Pp]ath does not exist|No such file or directory|FileNotFoundException):\s*(?:'([^']+)'|([A-Za-z][\w+.-]*:/[^\s'"]*|/[^\s'"]+))"#)
});
static ACCOUNT_QUOTA: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"ServiceQuotaExceeded|VcpuLimitExceeded|(?i:\bquota\b.{0,40}\bexceeded|\bexceeded\b.{0,40}\bquota\b|vcpu limit of)")
});
static APPLICATION_CAPACITY: LazyLock<Regex> = LazyLock::new(|| regex(r"ApplicationMaxCapacityExceeded|maximumCapacity|(?i:maximum capacity)"));
static CAPACITY_SETTINGS: LazyLock<Regex> = LazyLock::new(|| regex(r"\[((?:cpu|memory|disk)[^\]]*)\]"));
static PYTHON_EXCEPTION: LazyLock<Regex> = LazyLock::new(|| regex(r"^((?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*(?:Error|Exception)|Exception))(?::\s?(.*))?$"));
static SPARK_FAILURE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"SparkException|Job aborted|Py4JJavaError|PythonException|AnalysisException|Exception in thread "main"|Python worker exited unexpectedly|ExecutorLostFailure|StreamingQueryException"#)
});
static QUEUE_TIMEOUT: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\bqueue.{0,60}tim(?:ed|e)[ -]?out|tim(?:ed|e)[ -]?out.{0,60}\bqueue"));
static EXECUTION_TIMEOUT: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\btimed[ -]out\b|\btime[ -]?out\b|\bexceeded\b.{0,40}\b(?:execution|maximum)\b.{0,20}\b(?:time|duration)\b")
});
static EXCEPTION_NAME: LazyLock<Regex> = LazyLock::new(|| regex(r"((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Exception|Error))\b"));

/// Dotted roots of JVM exception names, and of Spark's Python wrappers of them: in a log, an
/// exception of these is Spark's (or a library's), not the model's own.
const SPARK_SIDE_ROOTS: [&str; 11] = ["java", "javax", "jdk", "sun", "scala", "org", "com", "software", "io", "py4j", "pyspark"];

/// Spark's exceptions as PySpark prints them unqualified (`AnalysisException: ...`).
const SPARK_SIDE_NAMES: [&str; 5] = ["AnalysisException", "PythonException", "ParseException", "StreamingQueryException", "SparkException"];

fn is_spark_side(exception_type: &str) -> bool {
    let root = exception_type.split('.').next().unwrap_or_default();
    (exception_type.contains('.') && SPARK_SIDE_ROOTS.contains(&root))
        || exception_type.starts_with("Py4J")
        || SPARK_SIDE_NAMES.contains(&exception_type)
}

impl TextRule {
    fn read(self, line: &str) -> Option<Failure> {
        match self {
            TextRule::MissingDependency => missing_dependency(line),
            TextRule::OutOfMemory => OUT_OF_MEMORY.is_match(line).then(|| out_of_memory(line)),
            TextRule::Permission => ACCESS_DENIED.is_match(line).then(|| permission(line)),
            TextRule::InputNotFound => NOT_FOUND.is_match(line).then(|| input_not_found(line)),
            TextRule::AccountQuota => ACCOUNT_QUOTA.is_match(line).then(|| {
                let summary = format!("An AWS account quota was reached ({}); ask for a higher quota or run fewer jobs at once", printable(line));
                with_type(failure(FailureClass::Capacity, summary, line), line, &["Quota", "Limit"])
            }),
            TextRule::ModelError => python_exception(line),
            TextRule::ApplicationCapacity => APPLICATION_CAPACITY.is_match(line).then(|| {
                let summary = match CAPACITY_SETTINGS.captures(line).and_then(|c| c.get(1)) {
                    Some(settings) => format!("The EMR Serverless application's maximum capacity was reached ({}); workers could not be allocated", printable(settings.as_str())),
                    None => "The EMR Serverless application's maximum capacity was reached; workers could not be allocated".to_string(),
                };
                with_type(failure(FailureClass::Capacity, summary, line), line, &["Capacity"])
            }),
            TextRule::SparkError => SPARK_FAILURE.is_match(line).then(|| {
                let summary = format!("Spark failed the run: {}", quoted(line));
                with_type(failure(FailureClass::SparkError, summary, line), line, &["SparkException", "Py4JJavaError"])
            }),
            TextRule::QueueTimeout => QUEUE_TIMEOUT.is_match(line).then(|| {
                failure(FailureClass::QueueTimeout, "The run waited in the application's queue past its queue timeout and never started".into(), line)
            }),
            TextRule::ExecutionTimeout => EXECUTION_TIMEOUT
                .is_match(line)
                .then(|| failure(FailureClass::Timeout, "The run exceeded its execution timeout".into(), line)),
        }
    }
}

fn missing_dependency(line: &str) -> Option<Failure> {
    if let Some(caps) = CANNOT_IMPORT.captures(line) {
        let (name, module) = (group(&caps, 1), group(&caps, 2));
        let summary = format!("The model imports '{}' from module '{}', which does not have it: another version is installed on the Spark image", printable(name), printable(module));
        let mut found = with_type(failure(FailureClass::MissingDependency, summary, line), line, &["ImportError"]);
        found.evidence.module = Some(module.to_string());
        return Some(found);
    }
    if let Some(caps) = NO_MODULE.captures(line) {
        let module = group(&caps, 1).trim_end_matches('.');
        let summary = format!("The model imports module '{}', which is not installed on the Spark image", printable(module));
        let mut found = with_type(failure(FailureClass::MissingDependency, summary, line), line, &["ModuleNotFound", "ImportError"]);
        found.evidence.module = Some(module.to_string());
        return Some(found);
    }
    let caps = CANNOT_RUN.captures(line)?;
    let program = group(&caps, 1);
    let summary = if program.contains("python") {
        format!("The Python environment '{}' could not be started: the packed environment (spark.archives) is missing or was not unpacked", printable(program))
    } else {
        format!("The program '{}' the run needs could not be started: it is not on the Spark image", printable(program))
    };
    let mut found = with_type(failure(FailureClass::MissingDependency, summary, line), line, &["IOException"]);
    found.evidence.resource = Some(program.to_string());
    Some(found)
}

fn out_of_memory(line: &str) -> Failure {
    let exit_code = exit_code_of_line(line);
    let summary = if let Some(used) = YARN_MEMORY.captures(line).and_then(|c| c.get(1)) {
        format!("A Spark executor was killed for exceeding its memory limit ({}); give the executors more memory overhead", used.as_str())
    } else if let Some(oom) = JAVA_OOM.captures(line).and_then(|c| c.get(1)) {
        format!("Spark ran out of memory ({}); give the driver or executors more memory", printable(oom.as_str().trim()))
    } else if line.contains("MemoryError") {
        format!("The model ran out of memory ({}); give the driver or executors more memory", quoted(line))
    } else {
        let code = exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default();
        format!("A Spark worker was killed for using more memory than it was given{code}; give the driver or executors more memory")
    };
    let mut found = with_type(failure(FailureClass::OutOfMemory, summary, line), line, &["OutOfMemory", "MemoryError"]);
    found.evidence.exit_code = exit_code;
    found
}

fn permission(line: &str) -> Failure {
    let action = DENIED_ACTION.captures(line).map(|c| group(&c, 1).to_string());
    let arn = DENIED_ARN.captures(line).map(|c| group(&c, 1).trim_end_matches(['.', ':']).to_string());
    let s3 = S3_URI.captures(line).map(|c| group(&c, 1).trim_end_matches(['.', ':']).to_string());
    let resource = arn.or(s3);
    let lower = line.to_ascii_lowercase();
    let service = match (action.as_deref(), resource.as_deref()) {
        (Some(action), _) => action.split(':').next().map(str::to_ascii_lowercase),
        (None, Some(resource)) if resource.starts_with("arn:") => resource.split(':').nth(2).map(str::to_string),
        (None, Some(_)) => Some("s3".to_string()),
        (None, None) if lower.contains("kms") || lower.contains("customer master key") => Some("kms".to_string()),
        (None, None) if lower.contains("glue") => Some("glue".to_string()),
        (None, None) if lower.contains("s3") => Some("s3".to_string()),
        (None, None) => None,
    };
    let service = match service.as_deref() {
        Some("s3") => "S3".to_string(),
        Some("glue") => "Glue".to_string(),
        Some("kms") => "KMS".to_string(),
        Some(other) => other.to_string(),
        None => "AWS".to_string(),
    };
    let operation = AWS_OPERATION.captures(line).map(|c| group(&c, 1).to_string());
    let summary = match (&action, &resource) {
        (Some(action), Some(resource)) => format!("Access denied: the job's role may not {} on {}", printable(action), printable(resource)),
        (Some(action), None) => format!("Access denied: the job's role may not {}", printable(action)),
        (None, Some(resource)) => format!("Access denied on {service} {}: the job's role lacks permission", printable(resource)),
        (None, None) if lower.contains("customer master key") => {
            "Access denied by KMS: the job's role may not use the key that encrypts the data, or the key does not exist in this region".to_string()
        }
        (None, None) => match operation {
            Some(op) => format!("Access denied on {service} ({}); the log does not name the resource", printable(&op)),
            None => format!("Access denied on {service}; the log does not name the resource"),
        },
    };
    let mut found = with_type(failure(FailureClass::Permission, summary, line), line, &["AccessDenied", "S3Exception", "ClientError"]);
    found.evidence.resource = resource;
    found
}

fn input_not_found(line: &str) -> Failure {
    let path = MISSING_PATH.captures(line).and_then(|c| c.get(1).or_else(|| c.get(2))).map(|m| m.as_str().trim_end_matches(['.', ';', ':', ',']).to_string());
    let summary = match &path {
        Some(path) => format!("The input {} does not exist", printable(path)),
        None => "An input the job reads does not exist; the log does not name it".to_string(),
    };
    let mut found = with_type(failure(FailureClass::InputNotFound, summary, line), line, &["FileNotFound", "AnalysisException", "InvalidInput", "NoSuch"]);
    found.evidence.resource = path;
    found
}

/// The last line of a Python traceback: `ValueError: DEP_TIME`, `configparser.NoSectionError: ...`.
fn python_exception(line: &str) -> Option<Failure> {
    let caps = PYTHON_EXCEPTION.captures(line)?;
    let exception_type = group(&caps, 1);
    if is_spark_side(exception_type) {
        return None;
    }
    let mut found = model_raised(exception_type, group(&caps, 2), line);
    found.evidence.exception_type = Some(exception_type.to_string());
    Some(found)
}

fn model_raised(exception_type: &str, message: &str, line: &str) -> Failure {
    let message = quoted(message);
    let summary = if message.is_empty() {
        format!("The model raised {}", printable(exception_type))
    } else {
        format!("The model raised {}: {message}", printable(exception_type))
    };
    failure(FailureClass::ModelError, summary, line)
}

fn failure(class: FailureClass, summary: String, line: &str) -> Failure {
    Failure { class, summary, evidence: Evidence { log_line: Some(line.to_string()), ..Evidence::default() } }
}

/// Sets the exception type named in `line`: the first whose name contains one of `preferred`,
/// else the first.
fn with_type(mut found: Failure, line: &str, preferred: &[&str]) -> Failure {
    let names: Vec<&str> = EXCEPTION_NAME.captures_iter(line).filter_map(|c| c.get(1)).map(|m| m.as_str()).collect();
    let name = names.iter().find(|n| preferred.iter().any(|p| n.contains(p))).or(names.first());
    found.evidence.exception_type = name.map(|n| n.to_string());
    found
}

fn group<'t>(caps: &Captures<'t>, index: usize) -> &'t str {
    caps.get(index).map(|m| m.as_str()).unwrap_or_default()
}

fn exit_code_in(details: &str) -> Option<i32> {
    let caps = STATE_EXIT_CODE.captures(head_bounded(details, STATE_DETAILS_SCAN_BYTES))?;
    group(&caps, 1).parse().ok()
}

fn exit_code_of_line(line: &str) -> Option<i32> {
    let caps = EXIT_CODE.captures(line)?;
    caps.get(1).or_else(|| caps.get(2))?.as_str().parse().ok()
}

/// Control characters (newlines, tabs) become spaces and runs of spaces one.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A message or log line quoted in a summary: one line of at most 160 characters, `…` when cut.
fn quoted(text: &str) -> String {
    let line = one_line(head_bounded(text, QUOTED_CHARS * 8));
    let mut out: String = line.chars().take(QUOTED_CHARS).collect();
    if line.chars().nth(QUOTED_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// One line of at most `max_bytes`, ending in `…` when cut.
fn bounded(text: &str, max_bytes: usize) -> String {
    let line = one_line(head_bounded(text, max_bytes.saturating_mul(4)));
    if line.len() <= max_bytes {
        return line;
    }
    format!("{}…", head_bounded(&line, max_bytes.saturating_sub('…'.len_utf8())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a row's text comes from.
    enum Given {
        Record(&'static str, &'static str),
        State(&'static str),
        Stderr(&'static str),
        Submit(&'static str),
        Timing(RunTiming),
    }

    /// The evidence a row must carry. `None` means absent, except `exception_type`, which is
    /// checked only when given.
    #[derive(Clone, Copy)]
    struct Expect {
        exit_code: Option<i32>,
        module: Option<&'static str>,
        resource: Option<&'static str>,
        exception_type: Option<&'static str>,
    }

    const NONE: Expect = Expect { exit_code: None, module: None, resource: None, exception_type: None };

    fn classify(given: &Given) -> Failure {
        let record;
        let mut inputs = FailureInputs::default();
        match given {
            Given::Record(exception_type, message) => {
                record = ModelErrorRecord { exception_type: exception_type.to_string(), message: message.to_string(), traceback_tail: String::new() };
                inputs.model_error = Some(&record);
            }
            Given::State(details) => inputs.state_details = Some(details),
            Given::Stderr(stderr) => inputs.stderr_tail = Some(stderr),
            Given::Submit(message) => inputs.submit_error = Some(message),
            Given::Timing(timing) => inputs.timing = Some(*timing),
        }
        classify_failure(&inputs)
    }

    /// Failure texts as people posted them in public bug reports (stateDetails, driver stderr,
    /// what the model raised), each with the class it must give. Account ids, bucket, user and
    /// host names are replaced by placeholders (111122223333, example-bucket, example-user, 10.0.0.1).
    fn table() -> Vec<(Given, FailureClass, &'static str, Expect)> {
        use FailureClass::*;
        use Given::*;
        vec![
            // https://github.com/aws-samples/emr-serverless-samples/issues/56 (what the model raised)
            (Record("ModuleNotFoundError", "No module named 'great_expectations'"), MissingDependency,
             "The model imports module 'great_expectations', which is not installed on the Spark image",
             Expect { module: Some("great_expectations"), exception_type: Some("ModuleNotFoundError"), ..NONE }),
            // https://github.com/aws-samples/emr-serverless-samples/issues/56 (driver stderr)
            (Stderr("Traceback (most recent call last):\n  File \"/tmp/spark-adc7d82f-ca5d-41ca-8d69-a89f144589a0/ge_profile.py\", line 4, in <module>\n    import great_expectations as ge\nModuleNotFoundError: No module named 'great_expectations'\n"),
             MissingDependency, "module 'great_expectations'", Expect { module: Some("great_expectations"), exception_type: Some("ModuleNotFoundError"), ..NONE }),
            // https://github.com/apache/spark/pull/603 (Python 2 wording, no quotes)
            (Stderr("Error from python worker:\n  : No module named pyspark\nPYTHONPATH was:\n  /path/to/spark/python:/path/to/some/jar\njava.io.EOFException"),
             MissingDependency, "module 'pyspark'", Expect { module: Some("pyspark"), ..NONE }),
            // https://github.com/awslabs/amazon-emr-cli/issues/32 (stateDetails)
            (State("Job failed, please check complete logs in configured logging destination. ExitCode: 1. Last few exceptions: Caused by: java.io.IOException: error=2, No such file or directory\nException in thread \"main\" java.io.IOException: Cannot run program \"./environment/bin/python\": error=2, No such file or directory..."),
             MissingDependency, "The Python environment './environment/bin/python' could not be started",
             Expect { exit_code: Some(1), resource: Some("./environment/bin/python"), ..NONE }),
            // https://github.com/aws-samples/emr-serverless-samples/pull/17 (stateDetails)
            (State("Job execution failed, please check complete logs in configured logging destination. ExitCode: 1. Last few exceptions: IndentationError: unexpected indent..."),
             ModelError, "The model raised IndentationError: unexpected indent...", Expect { exit_code: Some(1), exception_type: Some("IndentationError"), ..NONE }),
            // https://github.com/aws-samples/emr-serverless-samples/pull/17 (what the model raised)
            (Record("AttributeError", "'EMRServerless' object has no attribute 'describe_job_run'"), ModelError,
             "The model raised AttributeError: 'EMRServerless' object has no attribute 'describe_job_run'", Expect { exception_type: Some("AttributeError"), ..NONE }),
            // https://github.com/GoogleCloudPlatform/data-science-on-gcp/issues/10 (a UDF of the model raised)
            (Stderr("Caused by: org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n  File \"/usr/lib/spark/python/lib/pyspark.zip/pyspark/worker.py\", line 177, in main\n    process()\n  File \"/tmp/7fa836049f5f469b85f5eb082a72c77c/logistic.py\", line 92, in to_example\n    features.extend(get_local_hour(fields['DEP_TIME'],\n  File \"/usr/lib/spark/python/lib/pyspark.zip/pyspark/sql/types.py\", line 1491, in __getitem__\n    raise ValueError(item)\nValueError: DEP_TIME\n"),
             ModelError, "The model raised ValueError: DEP_TIME", Expect { exception_type: Some("ValueError"), ..NONE }),
            // https://github.com/LearningJournal/Spark-Programming-In-Python/issues/3
            (Stderr("21/07/16 14:01:56 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform... using builtin-java classes where applicable\nTraceback (most recent call last):\n  File \"/home/example-user/anaconda3/lib/python3.8/configparser.py\", line 846, in items\n    d.update(self._sections[section])\nKeyError: 'SPARK_APP_CONFIGS'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/home/example-user/HelloSpark.py\", line 7, in <module>\n    conf = get_spark_app_config()\n  File \"/home/example-user/anaconda3/lib/python3.8/configparser.py\", line 849, in items\n    raise NoSectionError(section)\nconfigparser.NoSectionError: No section: 'SPARK_APP_CONFIGS'"),
             ModelError, "The model raised configparser.NoSectionError: No section: 'SPARK_APP_CONFIGS'", Expect { exception_type: Some("configparser.NoSectionError"), ..NONE }),
            // https://github.com/softeerbootcamp-8th/DE_team4-4una/issues/508 (stateDetails of a driver killed for memory)
            (State("Job failed, please check complete logs in configured logging destination. ExitCode: 137. Last few exceptions: Worker has been killed as memory usage exceeded configured memory size, consider increasing memory size..."),
             OutOfMemory, "killed for using more memory than it was given", Expect { exit_code: Some(137), ..NONE }),
            // https://github.com/astrolabsoftware/fink-broker/issues/281
            (Stderr("  File \"/opt/spark-2/python/lib/py4j-0.10.7-src.zip/py4j/protocol.py\", line 328, in get_return_value\npy4j.protocol.Py4JJavaError: An error occurred while calling o39516.save.\n: java.lang.OutOfMemoryError: Java heap space\n\tat java.util.Arrays.copyOf(Arrays.java:3332)\n\tat java.lang.AbstractStringBuilder.ensureCapacityInternal(AbstractStringBuilder.java:124)"),
             OutOfMemory, "Spark ran out of memory (java.lang.OutOfMemoryError: Java heap space)", Expect { exception_type: Some("java.lang.OutOfMemoryError"), ..NONE }),
            // https://github.com/googlecolab/colabtools/issues/3050 (what the model raised)
            (Record("Py4JJavaError", "An error occurred while calling o448.fit.\n: java.lang.OutOfMemoryError: Java heap space"), OutOfMemory,
             "Java heap space", Expect { exception_type: Some("Py4JJavaError"), ..NONE }),
            // https://github.com/theislab/single-cell-tutorial/issues/85 (what the model raised)
            (Record("numpy.core._exceptions.MemoryError", "Unable to allocate 926. GiB for an array with shape (6794880, 36601) and data type float32"), OutOfMemory,
             "The model ran out of memory", Expect { exception_type: Some("numpy.core._exceptions.MemoryError"), ..NONE }),
            // https://github.com/yahoo/TensorFlowOnSpark/issues/282
            (Stderr("18/05/16 00:53:32 ERROR YarnClusterScheduler: Lost executor 6 on worker-1.example.internal: Container killed by YARN for exceeding memory limits. 8.2 GB of 8 GB physical memory used. Consider boosting spark.yarn.executor.memoryOverhead.\n18/05/16 00:53:32 WARN TaskSetManager: Lost task 1.3 in stage 0.0 (TID 7, worker-1.example.internal, executor 6): ExecutorLostFailure (executor 6 exited caused by one of the running tasks) Reason: Container killed by YARN for exceeding memory limits. 8.2 GB of 8 GB physical memory used. Consider boosting spark.yarn.executor.memoryOverhead.\n18/05/16 00:53:32 ERROR TaskSetManager: Task 1 in stage 0.0 failed 4 times; aborting job"),
             OutOfMemory, "exceeding its memory limit (8.2 GB of 8 GB physical memory used)", NONE),
            // https://github.com/kubeflow/spark-operator/issues/766
            (Stderr("20/01/10 00:51:07 INFO BlockManagerMaster: Removed 1 successfully in removeExecutor\n20/01/10 00:51:08 ERROR TaskSchedulerImpl: Lost executor 1 on 10.0.0.1:\nThe executor with id 1 exited with exit code 137.\nThe API gave the following brief reason: null"),
             OutOfMemory, "(exit code 137)", Expect { exit_code: Some(137), ..NONE }),
            // https://github.com/softeerbootcamp-8th/DE_team4-4una/issues/508 (driver log of a run starved by the application's capacity)
            (Stderr("06:01:42 ExecutorContainerAllocator: Going to request 2 executors ... already provisioned: 0.\nApplicationMaxCapacityExceededException: Worker could not be allocated as the application has exceeded maximumCapacity settings: [memory: 48 GB, disk: 200 GB]"),
             Capacity, "The EMR Serverless application's maximum capacity was reached (memory: 48 GB, disk: 200 GB)",
             Expect { exception_type: Some("ApplicationMaxCapacityExceededException"), ..NONE }),
            // https://github.com/bentoml/bentoctl/issues/202 (an account's vCPU quota)
            (Stderr("creating EC2 Instance: VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."),
             Capacity, "An AWS account quota was reached", NONE),
            // https://github.com/delta-io/delta-sharing/issues/73
            (Stderr("io.delta.sharing.server.DeltaInternalException: java.util.concurrent.ExecutionException: java.nio.file.AccessDeniedException:  s3a://example-bucket/foo/foo_fact/_delta_log: getFileStatus on s3a://example-bucket/foo/foo_fact/_delta_log: com.amazonaws.services.s3.model.AmazonS3Exception: Forbidden (Service: Amazon S3; Status Code: 403; Error Code: 403 Forbidden; Request ID: C0DZXXXYNWKQ9CWD; S3 Extended Request ID: example=), S3 Extended Request ID: example="),
             Permission, "Access denied on S3 s3a://example-bucket/foo/foo_fact/_delta_log: the job's role lacks permission",
             Expect { resource: Some("s3a://example-bucket/foo/foo_fact/_delta_log"), exception_type: Some("java.nio.file.AccessDeniedException"), ..NONE }),
            // https://github.com/aws-samples/emr-serverless-samples/pull/11
            (Stderr("com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"),
             Permission, "Access denied on S3; the log does not name the resource",
             Expect { exception_type: Some("com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception"), ..NONE }),
            // https://github.com/aws-samples/emr-serverless-samples/pull/11 (the KMS key of the data)
            (Stderr("com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access. (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"),
             Permission, "Access denied by KMS", NONE),
            // https://github.com/ministryofjustice/modernisation-platform-environments/pull/10745
            (Stderr("Message: com.amazonaws.services.s3.model.AmazonS3Exception: User: arn:aws:sts::111122223333:assumed-role/example-role/example-session is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-2:111122223333:key/example-key because no identity-based policy allows the kms:Decrypt action"),
             Permission, "Access denied: the job's role may not kms:Decrypt on arn:aws:kms:eu-west-2:111122223333:key/example-key",
             Expect { resource: Some("arn:aws:kms:eu-west-2:111122223333:key/example-key"), ..NONE }),
            // https://github.com/apache/kyuubi/pull/4952 (Spark on the Glue catalog)
            (Stderr("Caused by: software.amazon.awssdk.services.glue.model.AccessDeniedException: User: arn:aws:iam::111122223333:user/example-user is not authorized to perform: glue:GetDatabase on resource: arn:aws:glue:us-east-1:111122223333:database/default because no identity-based policy allows the glue:GetDatabase action (Service: Glue, Status Code: 400, Request ID: 3f816608-0cb2-467b-9181-05c5bfcd29b3, Extended Request ID: null)"),
             Permission, "may not glue:GetDatabase on arn:aws:glue:us-east-1:111122223333:database/default",
             Expect { resource: Some("arn:aws:glue:us-east-1:111122223333:database/default"), exception_type: Some("software.amazon.awssdk.services.glue.model.AccessDeniedException"), ..NONE }),
            // https://github.com/awslabs/sagemaker-explaining-credit-decisions/issues/2
            (Stderr("AnalysisException: 'java.lang.RuntimeException: MetaException(message:Unable to verify existence of default database: com.amazonaws.services.glue.model.AccessDeniedException: Please migrate your Catalog to enable access to this database (Service: AWSGlue; Status Code: 400; Error Code: AccessDeniedException; Request ID: b5f4516c-0451-4a55-a015-b64f7761e21f));'"),
             Permission, "Access denied on Glue", Expect { exception_type: Some("com.amazonaws.services.glue.model.AccessDeniedException"), ..NONE }),
            // https://github.com/grycap/scar/issues/301 (what the model raised)
            (Record("botocore.exceptions.ClientError", "An error occurred (AccessDenied) when calling the PutObject operation: Access Denied"), Permission,
             "(PutObject)", Expect { exception_type: Some("botocore.exceptions.ClientError"), ..NONE }),
            // Spark 3.4+ wording (https://github.com/apache/spark/pull/38422), with an S3 path as it is quoted in public READMEs
            (Stderr("pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3a://example-bucket/sample_data."),
             InputNotFound, "The input s3a://example-bucket/sample_data does not exist",
             Expect { resource: Some("s3a://example-bucket/sample_data"), exception_type: Some("pyspark.errors.exceptions.captured.AnalysisException"), ..NONE }),
            // https://github.com/feast-dev/feast/issues/2921
            (Stderr("    raise converted from None\npyspark.sql.utils.AnalysisException: Path does not exist: file:/data\n"),
             InputNotFound, "The input file:/data does not exist", Expect { resource: Some("file:/data"), ..NONE }),
            // https://github.com/databricks/spark-redshift/issues/38
            (Stderr("org.apache.hadoop.mapreduce.lib.input.InvalidInputException: Input path does not exist: s3://example-bucket/19380690-5730-451a-b741-8245b27da674\n  at org.apache.hadoop.mapreduce.lib.input.FileInputFormat.listStatus(FileInputFormat.java:285)"),
             InputNotFound, "does not exist", Expect { resource: Some("s3://example-bucket/19380690-5730-451a-b741-8245b27da674"), ..NONE }),
            // https://github.com/apache/sedona/issues/2650
            (Stderr("java.io.FileNotFoundException: No such file or directory: s3://example-bucket/raw-data/53033C_20250330/S_FLD_HAZ_AR.???\n\tat org.apache.hadoop.fs.s3a.S3AFileSystem.s3GetFileStatus(S3AFileSystem.java:4156)"),
             InputNotFound, "does not exist", Expect { resource: Some("s3://example-bucket/raw-data/53033C_20250330/S_FLD_HAZ_AR.???"), exception_type: Some("java.io.FileNotFoundException"), ..NONE }),
            // https://github.com/perwendel/spark/issues/1289
            (Stderr("Error-org.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage 150.0 failed 4 times, most recent failure: Lost task 1.3 in stage 150.0 (TID 426) (10.0.0.1 executor 6): java.lang.NullPointerException"),
             SparkError, "Spark failed the run: Error-org.apache.spark.SparkException: Job aborted due to stage failure", NONE),
            // https://github.com/munhouiani/Deep-Packet/issues/1
            (Stderr("20/06/07 19:20:42 ERROR TaskSetManager: Task 1 in stage 9.0 failed 1 times; aborting job\n20/06/07 19:20:42 ERROR FileFormatWriter: Aborting job b0aa29b9-042f-4362-9d54-de936645d883.\norg.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage 9.0 failed 1 times, most recent failure: Lost task 1.0 in stage 9.0 (TID 408, localhost, executor driver): org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)\n        at org.apache.spark.api.python.BasePythonRunner$ReaderIterator$$anonfun$3.applyOrElse(PythonRunner.scala:490)"),
             SparkError, "Spark failed the run: org.apache.spark.SparkException: Job aborted", Expect { exception_type: Some("org.apache.spark.SparkException"), ..NONE }),
            // https://github.com/Soname-Solutions/salmon/pull/114 (stateDetails that say nothing more)
            (State("Job failed"), Unknown, "The run failed, and neither EMR nor the driver log says why", NONE),
            // The head of the stateDetails of https://github.com/awslabs/amazon-emr-cli/issues/32, without its exceptions
            (State("Job failed, please check complete logs in configured logging destination. ExitCode: 1."), Unknown,
             "The run failed with exit code 1", Expect { exit_code: Some(1), ..NONE }),
            // https://github.com/boto/boto3/issues/3860, as submit ends a job with it (`job <id>: <step>: <cause>`)
            (Submit("job job-7: start job run: EMR Serverless StartJobRun failed: ValidationException: Unknown configuration overrides classification: spark-hive-site"),
             InvalidJob, "Submit refused the job before it ran: start job run: EMR Serverless StartJobRun failed: ValidationException: Unknown configuration overrides classification: spark-hive-site", NONE),
            // What submit rejects today (tests/submit.rs)
            (Submit("job job-7: validate job: the primary source has no function annotated '# modelop.score'"), InvalidJob,
             "Submit refused the job before it ran: validate job: the primary source has no function annotated '# modelop.score'", NONE),
            // GetJobRun of a run that reached its executionTimeoutMinutes
            (Timing(RunTiming { execution_timeout_minutes: Some(30), execution_seconds: Some(1_795), ..RunTiming::default() }), Timeout,
             "The run exceeded its execution timeout of 30 minutes", NONE),
            // GetJobRun of a run queued for the application's whole queueTimeoutMinutes
            (Timing(RunTiming { queue_timeout_minutes: Some(360), queued_millis: Some(21_600_000), execution_timeout_minutes: Some(720), execution_seconds: Some(0) }),
             QueueTimeout, "The run waited in the application's queue past its queue timeout of 360 minutes and never started", NONE),
        ]
    }

    #[test]
    fn real_failure_texts_get_their_class() {
        for (given, class, summary, expect) in table() {
            let failure = classify(&given);
            let shown = format!("{failure:#?}");
            assert_eq!(failure.class, class, "{shown}");
            assert!(failure.summary.contains(summary), "summary lacks {summary:?}: {shown}");
            assert_eq!(failure.evidence.exit_code, expect.exit_code, "{shown}");
            assert_eq!(failure.evidence.module.as_deref(), expect.module, "{shown}");
            assert_eq!(failure.evidence.resource.as_deref(), expect.resource, "{shown}");
            if let Some(exception_type) = expect.exception_type {
                assert_eq!(failure.evidence.exception_type.as_deref(), Some(exception_type), "{shown}");
            }
            if !matches!(class, FailureClass::Unknown | FailureClass::Timeout | FailureClass::QueueTimeout) {
                assert!(failure.evidence.log_line.is_some(), "a class read from a text names its line: {shown}");
            }
        }
    }

    #[test]
    fn the_table_covers_every_class_with_public_texts() {
        let rows = table();
        for class in FailureClass::ALL {
            assert!(rows.iter().any(|(_, c, _, _)| *c == class), "no row gives {class}");
        }
        let texts = rows.iter().filter(|(given, _, _, _)| !matches!(given, Given::Timing(_))).count();
        assert!(texts >= 20, "{texts} texts");
    }

    fn record(exception_type: &str, message: &str) -> ModelErrorRecord {
        ModelErrorRecord { exception_type: exception_type.into(), message: message.into(), traceback_tail: String::new() }
    }

    const OOM_STATE: &str = "Job failed, please check complete logs in configured logging destination. ExitCode: 137. Last few exceptions: Worker has been killed as memory usage exceeded configured memory size, consider increasing memory size...";
    const SPARK_STATE: &str = "Job failed, please check complete logs in configured logging destination. ExitCode: 1. Last few exceptions: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 4.0 failed 4 times...";
    const MODEL_TRACEBACK: &str = "Traceback (most recent call last):\n  File \"model.py\", line 9, in score\n    raise ValueError(item)\nValueError: DEP_TIME\n";
    const CAPACITY_WARNING: &str = "ApplicationMaxCapacityExceededException: Worker could not be allocated as the application has exceeded maximumCapacity settings: [cpu: 16 vCPU]";

    #[test]
    fn precedence_submit_then_record_then_timing_then_state_details_then_stderr() {
        let raised = record("ValueError", "bad input");
        let timing = RunTiming { execution_timeout_minutes: Some(30), execution_seconds: Some(1_800), ..RunTiming::default() };
        let all = FailureInputs { submit_error: None, model_error: Some(&raised), timing: Some(timing), state_details: Some(OOM_STATE), stderr_tail: Some(CAPACITY_WARNING) };
        let cases: Vec<(FailureInputs, FailureClass, Option<i32>)> = vec![
            (FailureInputs { submit_error: Some("job j: validate job: no primary source"), ..all }, FailureClass::InvalidJob, None),
            (all, FailureClass::ModelError, Some(137)),
            (FailureInputs { model_error: None, ..all }, FailureClass::Timeout, Some(137)),
            (FailureInputs { model_error: None, timing: None, ..all }, FailureClass::OutOfMemory, Some(137)),
            (FailureInputs { model_error: None, timing: None, state_details: None, ..all }, FailureClass::Capacity, None),
            (FailureInputs::default(), FailureClass::Unknown, None),
        ];
        for (inputs, class, exit_code) in cases {
            let failure = classify_failure(&inputs);
            assert_eq!((failure.class, failure.evidence.exit_code), (class, exit_code), "{failure:#?}");
        }
    }

    #[test]
    fn stderr_refines_a_spark_error_but_not_a_specific_state_details_class() {
        let refine = FailureInputs { state_details: Some(SPARK_STATE), stderr_tail: Some(MODEL_TRACEBACK), ..FailureInputs::default() };
        let failure = classify_failure(&refine);
        assert_eq!((failure.class, failure.evidence.exit_code), (FailureClass::ModelError, Some(1)), "{failure:#?}");
        let keep = FailureInputs { state_details: Some(OOM_STATE), stderr_tail: Some(MODEL_TRACEBACK), ..FailureInputs::default() };
        assert_eq!(classify_failure(&keep).class, FailureClass::OutOfMemory);
        let spark_only = FailureInputs { state_details: Some(SPARK_STATE), stderr_tail: Some("INFO all good"), ..FailureInputs::default() };
        assert_eq!(classify_failure(&spark_only).class, FailureClass::SparkError);
    }

    #[test]
    fn causes_come_before_their_consequences_in_a_log() {
        let cases = [
            // The model's exception, then EMR's capacity warnings while the run winds down.
            (format!("{MODEL_TRACEBACK}{CAPACITY_WARNING}\n"), FailureClass::ModelError),
            // Executors killed for memory, then Spark aborts and asks for more workers than allowed.
            (format!("ExecutorLostFailure (executor 3 exited caused by one of the running tasks) Reason: Container killed by YARN for exceeding memory limits. 5.5 GB of 5.5 GB physical memory used.\n{CAPACITY_WARNING}\norg.apache.spark.SparkException: Job aborted due to stage failure"), FailureClass::OutOfMemory),
            // A Python exception line without a traceback is not the model's.
            ("ValueError: not from a traceback\n".to_string(), FailureClass::Unknown),
            // A wrapped Java exception is Spark's, not the model's.
            ("Traceback (most recent call last):\npy4j.protocol.Py4JJavaError: An error occurred while calling o48.showString.\n".to_string(), FailureClass::SparkError),
        ];
        for (stderr, class) in cases {
            let failure = classify_failure(&FailureInputs { stderr_tail: Some(&stderr), ..FailureInputs::default() });
            assert_eq!(failure.class, class, "{failure:#?}");
        }
    }

    #[test]
    fn model_error_records_name_the_module_even_from_the_traceback() {
        let import = ModelErrorRecord { exception_type: "ImportError".into(), message: "cannot import name 'XGBClassifier' from 'xgboost' (/usr/lib/python3/xgboost/__init__.py)".into(), traceback_tail: String::new() };
        let failure = classify_failure(&FailureInputs { model_error: Some(&import), ..FailureInputs::default() });
        assert_eq!((failure.class, failure.evidence.module.as_deref()), (FailureClass::MissingDependency, Some("xgboost")), "{failure:#?}");
        let bare = ModelErrorRecord { exception_type: "ModuleNotFoundError".into(), message: String::new(), traceback_tail: "ModuleNotFoundError: No module named 'xgboost.sklearn'".into() };
        let failure = classify_failure(&FailureInputs { model_error: Some(&bare), ..FailureInputs::default() });
        assert_eq!(failure.evidence.module.as_deref(), Some("xgboost.sklearn"), "{failure:#?}");
        assert_eq!(failure.summary, "The model imports module 'xgboost.sklearn', which is not installed on the Spark image");
        let dll = record("ImportError", "DLL load failed while importing _ssl: The specified module could not be found.");
        let failure = classify_failure(&FailureInputs { model_error: Some(&dll), ..FailureInputs::default() });
        assert_eq!((failure.class, failure.evidence.module.as_deref()), (FailureClass::MissingDependency, None), "{failure:#?}");
        assert!(failure.summary.starts_with("The model failed to import a module: DLL load failed"), "{failure:#?}");
        let file = record("FileNotFoundError", "[Errno 2] No such file or directory: 'data/train.csv'");
        let failure = classify_failure(&FailureInputs { model_error: Some(&file), ..FailureInputs::default() });
        assert_eq!((failure.class, failure.evidence.resource.as_deref()), (FailureClass::InputNotFound, Some("data/train.csv")), "{failure:#?}");
        let spark = record("pyspark.errors.exceptions.captured.AnalysisException", "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column with name `age` cannot be resolved.");
        assert_eq!(classify_failure(&FailureInputs { model_error: Some(&spark), ..FailureInputs::default() }).class, FailureClass::ModelError);
        let java = record("py4j.protocol.Py4JJavaError", "An error occurred while calling o52.save.\n: org.apache.spark.SparkException: Job aborted.");
        assert_eq!(classify_failure(&FailureInputs { model_error: Some(&java), ..FailureInputs::default() }).class, FailureClass::SparkError);
    }

    #[test]
    fn submit_failures_that_are_not_the_jobs_fault_say_so() {
        let denied = "job job-7: start job run: EMR Serverless StartJobRun failed: AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/example-role/example-session is not authorized to perform: iam:PassRole on resource: arn:aws:iam::111122223333:role/example-job-role";
        let failure = classify_failure(&FailureInputs { submit_error: Some(denied), ..FailureInputs::default() });
        assert_eq!((failure.class, failure.evidence.resource.as_deref()), (FailureClass::Permission, Some("arn:aws:iam::111122223333:role/example-job-role")));
        assert!(failure.summary.contains("iam:PassRole"), "{failure:#?}");
    }

    #[test]
    fn timeouts_are_read_from_timing_and_only_from_the_head_of_state_details() {
        let not_yet = RunTiming { execution_timeout_minutes: Some(720), execution_seconds: Some(95), queue_timeout_minutes: Some(360), queued_millis: Some(1_000) };
        let failure = classify_failure(&FailureInputs { timing: Some(not_yet), state_details: Some(OOM_STATE), ..FailureInputs::default() });
        assert_eq!(failure.class, FailureClass::OutOfMemory);
        let cases = [
            ("Job run timed out in the queue after 30 minutes", FailureClass::QueueTimeout),
            ("Job run timed out after 720 minutes", FailureClass::Timeout),
            ("Job failed. ExitCode: 1. Last few exceptions: java.net.SocketTimeoutException: Read timed out", FailureClass::Unknown),
        ];
        for (details, class) in cases {
            assert_eq!(classify_failure(&FailureInputs { state_details: Some(details), ..FailureInputs::default() }).class, class, "{details}");
        }
    }

    fn assert_bounded(failure: &Failure, context: &str) {
        let one_line = |s: &str| !s.chars().any(char::is_control);
        assert!(failure.summary.len() <= SUMMARY_MAX_BYTES && !failure.summary.is_empty() && one_line(&failure.summary), "{context}: {failure:?}");
        let e = &failure.evidence;
        for (field, max) in [(&e.log_line, LOG_LINE_MAX_BYTES), (&e.exception_type, EXCEPTION_TYPE_MAX_BYTES), (&e.resource, RESOURCE_MAX_BYTES), (&e.module, MODULE_MAX_BYTES)] {
            if let Some(value) = field {
                assert!(value.len() <= max && one_line(value) && !value.is_empty(), "{context}: {value:?}");
            }
        }
    }

    #[test]
    fn any_input_gives_a_bounded_one_line_failure() {
        let huge_line = format!("java.lang.OutOfMemoryError: {}", "é".repeat(600_000));
        let many_lines = "INFO nothing to see here\n".repeat(200_000);
        let module = format!("ModuleNotFoundError: No module named '{}'", "x".repeat(5_000));
        let path = format!("[PATH_NOT_FOUND] Path does not exist: s3://example-bucket/{}.", "日本語/".repeat(2_000));
        let control = "ValueError: a\u{0}b\r\nc\u{1b}[31m\u{7f}\tend";
        let traceback_control = format!("Traceback (most recent call last):\n{control}");
        let emoji = format!("User: x is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:{}", "🔑".repeat(1_000));
        let texts: Vec<&str> = vec!["", " ", "\n\n\n", "\u{0}", &huge_line, &many_lines, &module, &path, control, &traceback_control, &emoji, "ExitCode: 99999999999999999999", "ExitCode: -1"];
        for text in &texts {
            let raised = record(text, text);
            let empty = record("", "");
            let variants = [
                FailureInputs { state_details: Some(text), ..FailureInputs::default() },
                FailureInputs { stderr_tail: Some(text), ..FailureInputs::default() },
                FailureInputs { submit_error: Some(text), ..FailureInputs::default() },
                FailureInputs { model_error: Some(&raised), ..FailureInputs::default() },
                FailureInputs { model_error: Some(&empty), state_details: Some(text), ..FailureInputs::default() },
            ];
            for inputs in variants {
                assert_bounded(&classify_failure(&inputs), &printable(text));
            }
        }
        let extreme = RunTiming { execution_timeout_minutes: Some(i64::MAX), execution_seconds: Some(i64::MAX), queue_timeout_minutes: Some(i64::MIN), queued_millis: Some(i64::MIN) };
        assert_eq!(classify_failure(&FailureInputs { timing: Some(extreme), ..FailureInputs::default() }).class, FailureClass::Timeout);
        let failure = classify_failure(&FailureInputs { stderr_tail: Some(&module), ..FailureInputs::default() });
        assert_eq!(failure.class, FailureClass::MissingDependency);
        assert!(failure.evidence.module.as_deref().is_some_and(|m| m.ends_with('…')), "a long module name is cut, not dropped");
    }

    #[test]
    fn the_failure_object_and_the_record_have_their_json_shapes() {
        let failure = Failure {
            class: FailureClass::MissingDependency,
            summary: "The model imports module 'xgboost', which is not installed on the Spark image".into(),
            evidence: Evidence { exit_code: Some(1), exception_type: Some("ModuleNotFoundError".into()), module: Some("xgboost".into()), ..Evidence::default() },
        };
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"class": "MISSING_DEPENDENCY", "summary": failure.summary, "evidence": {"exitCode": 1, "exceptionType": "ModuleNotFoundError", "module": "xgboost"}})
        );
        assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), failure);
        for class in FailureClass::ALL {
            assert_eq!(serde_json::to_value(class).unwrap(), serde_json::json!(class.as_str()));
        }
        let record: ModelErrorRecord = serde_json::from_str(r#"{"exceptionType": "ValueError", "message": "bad", "tracebackTail": "  File \"model.py\", line 3"}"#).unwrap();
        assert_eq!(record, ModelErrorRecord { exception_type: "ValueError".into(), message: "bad".into(), traceback_tail: "  File \"model.py\", line 3".into() });
        let minimal: ModelErrorRecord = serde_json::from_str(r#"{"exceptionType": "ValueError"}"#).unwrap();
        assert_eq!(minimal, ModelErrorRecord { exception_type: "ValueError".into(), ..ModelErrorRecord::default() });
    }
}
