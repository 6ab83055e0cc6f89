//! Reading texts: the kinds of cause a line of `stateDetails`, stderr or a submit error can show
//! ([`TextRule`], in the order they are looked for), the patterns that recognise them, and the
//! bounds and quoting of what a [`Failure`] carries from them.

use std::sync::LazyLock;

use regex_lite::{Captures, Regex};

use crate::text::{head_bounded, printable};

use super::*;

/// The kinds of cause a line of text can show, in the order they are looked for: a cause before
/// its consequences (memory before Spark's abort; a missing module before anything else), the
/// model's own exception before EMR's capacity warnings (which also appear in runs that succeed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextRule {
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
    /// EMR Serverless refused the run's configuration at deploy, before Spark ran (read only in
    /// the head of `stateDetails`, as the timeouts are).
    ConfigurationRefused,
}

/// The rules for log lines. The timeout rules are read only in the head of `stateDetails`: logs
/// are full of network timeouts.
pub(super) const TEXT_RULES: [TextRule; 8] = [
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
pub(super) fn read_lines(text: &str, rules: &[TextRule]) -> Option<Failure> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| head_bounded(line.trim(), LINE_SCAN_BYTES))
        .filter(|line| !line.is_empty() && !is_stack_frame(line))
        .collect();
    rules.iter().find_map(|rule| lines.iter().rev().find_map(|line| rule.read(line)))
}

pub(super) fn is_stack_frame(line: &str) -> bool {
    line.starts_with("at ") || (line.starts_with("...") && line.ends_with(" more"))
}

pub(super) fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

pub(super) static NO_MODULE: LazyLock<Regex> = LazyLock::new(|| regex(r#"No module named ['"]?([A-Za-z_][\w.]*)"#));
pub(super) static CANNOT_IMPORT: LazyLock<Regex> = LazyLock::new(|| regex(r#"cannot import name ['"]?(\w+)['"]? from ['"]?([A-Za-z_][\w.]*)"#));
pub(super) static CANNOT_RUN: LazyLock<Regex> = LazyLock::new(|| regex(r#"Cannot run program "([^"]+)""#));
pub(super) static OUT_OF_MEMORY: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"OutOfMemoryError|MemoryError\b|Container killed by YARN for exceeding memory limits|(?i:\bexit ?code:?\s*137\b|exited with code 137\b|memory usage exceeded|OOMKilled)")
});
pub(super) static YARN_MEMORY: LazyLock<Regex> = LazyLock::new(|| regex(r"(\d+(?:\.\d+)? [KMGT]B of \d+(?:\.\d+)? [KMGT]B \w+ memory used)"));
pub(super) static JAVA_OOM: LazyLock<Regex> = LazyLock::new(|| regex(r"((?:[\w$]+\.)*OutOfMemoryError(?::\s*[^:]*)?)"));
pub(super) static EXIT_CODE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\bexit ?code:?\s*(-?\d{1,9})\b|exited with code (-?\d{1,9})\b"));
pub(super) static STATE_EXIT_CODE: LazyLock<Regex> = LazyLock::new(|| regex(r"ExitCode:\s*(-?\d{1,9})\b"));
pub(super) static ACCESS_DENIED: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)access ?denied|not authorized to perform|\bforbidden\b|status code: 403\b|customer master key")
});
pub(super) static DENIED_ACTION: LazyLock<Regex> = LazyLock::new(|| regex(r"not authorized to perform:? ([\w-]+:[\w*]+)"));
pub(super) static DENIED_ARN: LazyLock<Regex> = LazyLock::new(|| regex(r#"on resource:? (arn:[^\s,;()'"]+)"#));
pub(super) static S3_URI: LazyLock<Regex> = LazyLock::new(|| regex(r#"\b(s3[an]?://[^\s'"`,;()\[\]]+)"#));
/// EMR Serverless's refusal of a Spark property at deploy: "Maximum value of
/// spark.dynamicAllocation.initialExecutors: 3 must be between spark.dynamicAllocation.minExecutor 1
/// and spark.dynamicAllocation.maxExecutors 2." (aws-samples/aws-emr-utilities#175), or of a
/// configuration classification.
pub(super) static CONFIGURATION_REFUSED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"spark\.[\w.]+:?[^\n]{0,200}?\bmust be\b|Unknown configuration|[Ii]nvalid (?:configuration|Spark (?:property|configuration))"));
pub(super) static AWS_OPERATION: LazyLock<Regex> = LazyLock::new(|| regex(r"when calling the (\w+) operation"));
pub(super) static NOT_FOUND: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\[PATH_NOT_FOUND\]|[Pp]ath does not exist|FileNotFoundException|FileNotFoundError|NoSuchKey|NoSuchBucket|The specified (?:key|bucket) does not exist|[Nn]o such object")
});
pub(super) static MISSING_PATH: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"(?:[Pp]ath does not exist|No such file or directory|FileNotFoundException):\s*(?:'([^']+)'|([A-Za-z][\w+.-]*:/[^\s'"]*|/[^\s'"]+))"#)
});
pub(super) static ACCOUNT_QUOTA: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"ServiceQuotaExceeded|VcpuLimitExceeded|(?i:\bquota\b.{0,40}\bexceeded|\bexceeded\b.{0,40}\bquota\b|vcpu limit of)")
});
pub(super) static APPLICATION_CAPACITY: LazyLock<Regex> = LazyLock::new(|| regex(r"ApplicationMaxCapacityExceeded|maximumCapacity|(?i:maximum capacity)"));
pub(super) static CAPACITY_SETTINGS: LazyLock<Regex> = LazyLock::new(|| regex(r"\[((?:cpu|memory|disk)[^\]]*)\]"));
pub(super) static PYTHON_EXCEPTION: LazyLock<Regex> = LazyLock::new(|| regex(r"^((?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*(?:Error|Exception)|Exception))(?::\s?(.*))?$"));
pub(super) static SPARK_FAILURE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"SparkException|Job aborted|Py4JJavaError|PythonException|AnalysisException|Exception in thread "main"|Python worker exited unexpectedly|ExecutorLostFailure|StreamingQueryException"#)
});
pub(super) static QUEUE_TIMEOUT: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\bqueue.{0,60}tim(?:ed|e)[ -]?out|tim(?:ed|e)[ -]?out.{0,60}\bqueue"));
pub(super) static EXECUTION_TIMEOUT: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\btimed[ -]out\b|\btime[ -]?out\b|\bexceeded\b.{0,40}\b(?:execution|maximum)\b.{0,20}\b(?:time|duration)\b")
});
pub(super) static EXCEPTION_NAME: LazyLock<Regex> = LazyLock::new(|| regex(r"((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Exception|Error))\b"));

/// Dotted roots of JVM exception names, and of Spark's Python wrappers of them: in a log, an
/// exception of these is Spark's (or a library's), not the model's own.
pub(super) const SPARK_SIDE_ROOTS: [&str; 11] = ["java", "javax", "jdk", "sun", "scala", "org", "com", "software", "io", "py4j", "pyspark"];

/// Spark's exceptions as PySpark prints them unqualified (`AnalysisException: ...`).
pub(super) const SPARK_SIDE_NAMES: [&str; 5] = ["AnalysisException", "PythonException", "ParseException", "StreamingQueryException", "SparkException"];

pub(super) fn is_spark_side(exception_type: &str) -> bool {
    let root = exception_type.split('.').next().unwrap_or_default();
    (exception_type.contains('.') && SPARK_SIDE_ROOTS.contains(&root))
        || exception_type.starts_with("Py4J")
        || SPARK_SIDE_NAMES.contains(&exception_type)
}

impl TextRule {
    pub(super) fn read(self, line: &str) -> Option<Failure> {
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
            TextRule::ConfigurationRefused => CONFIGURATION_REFUSED.is_match(line).then(|| {
                let summary = format!("EMR Serverless refused the run's configuration before Spark ran: {}", quoted(line));
                failure(FailureClass::InvalidJob, summary, line)
            }),
            TextRule::ExecutionTimeout => EXECUTION_TIMEOUT
                .is_match(line)
                .then(|| failure(FailureClass::Timeout, "The run exceeded its execution timeout".into(), line)),
        }
    }
}

pub(super) fn missing_dependency(line: &str) -> Option<Failure> {
    if let Some(caps) = CANNOT_IMPORT.captures(line) {
        let (name, module) = (group(&caps, 1), group(&caps, 2));
        let summary = format!("The model imports '{}' from module '{}', which does not have it: another version is installed on {SPARK_IMAGE}", printable(name), printable(module));
        let mut found = with_type(failure(FailureClass::MissingDependency, summary, line), line, &["ImportError"]);
        found.evidence.module = Some(module.to_string());
        return Some(found);
    }
    if let Some(caps) = NO_MODULE.captures(line) {
        let module = group(&caps, 1).trim_end_matches('.');
        let summary = format!("The model imports module '{}', which is not installed on {SPARK_IMAGE}", printable(module));
        let mut found = with_type(failure(FailureClass::MissingDependency, summary, line), line, &["ModuleNotFound", "ImportError"]);
        found.evidence.module = Some(module.to_string());
        return Some(found);
    }
    let caps = CANNOT_RUN.captures(line)?;
    let program = group(&caps, 1);
    let summary = if program.contains("python") {
        format!("The Python environment '{}' could not be started: the packed environment (spark.archives) is missing or was not unpacked", printable(program))
    } else {
        format!("The program '{}' the run needs could not be started: it is not on {SPARK_IMAGE}", printable(program))
    };
    let mut found = with_type(failure(FailureClass::MissingDependency, summary, line), line, &["IOException"]);
    found.evidence.resource = Some(program.to_string());
    Some(found)
}

pub(super) fn out_of_memory(line: &str) -> Failure {
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

pub(super) fn permission(line: &str) -> Failure {
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

pub(super) fn input_not_found(line: &str) -> Failure {
    let path = MISSING_PATH
        .captures(line)
        .and_then(|c| c.get(1).or_else(|| c.get(2)))
        .or_else(|| S3_URI.captures(line).and_then(|c| c.get(1)))
        .map(|m| m.as_str().trim_end_matches(['.', ';', ':', ',']).to_string());
    let summary = match &path {
        Some(path) => format!("The input {} does not exist", printable(path)),
        None => "An input the job reads does not exist; the log does not name it".to_string(),
    };
    let mut found = with_type(failure(FailureClass::InputNotFound, summary, line), line, &["FileNotFound", "AnalysisException", "InvalidInput", "NoSuch"]);
    found.evidence.resource = path;
    found
}

/// The last line of a Python traceback: `ValueError: DEP_TIME`, `configparser.NoSectionError: ...`.
pub(super) fn python_exception(line: &str) -> Option<Failure> {
    let caps = PYTHON_EXCEPTION.captures(line)?;
    let exception_type = group(&caps, 1);
    if is_spark_side(exception_type) {
        return None;
    }
    let mut found = model_raised(exception_type, group(&caps, 2), line);
    found.evidence.exception_type = Some(exception_type.to_string());
    Some(found)
}

pub(super) fn model_raised(exception_type: &str, message: &str, line: &str) -> Failure {
    let message = quoted(message);
    let summary = if message.is_empty() {
        format!("The model raised {}", printable(exception_type))
    } else {
        format!("The model raised {}: {message}", printable(exception_type))
    };
    failure(FailureClass::ModelError, summary, line)
}

pub(super) fn failure(class: FailureClass, summary: String, line: &str) -> Failure {
    Failure { class, summary, evidence: Evidence { log_line: Some(line.to_string()), ..Evidence::default() } }
}

/// Sets the exception type named in `line`: the first whose name contains one of `preferred`,
/// else the first.
pub(super) fn with_type(mut found: Failure, line: &str, preferred: &[&str]) -> Failure {
    let names: Vec<&str> = EXCEPTION_NAME.captures_iter(line).filter_map(|c| c.get(1)).map(|m| m.as_str()).collect();
    let name = names.iter().find(|n| preferred.iter().any(|p| n.contains(p))).or(names.first());
    found.evidence.exception_type = name.map(|n| n.to_string());
    found
}

pub(super) fn group<'t>(caps: &Captures<'t>, index: usize) -> &'t str {
    caps.get(index).map(|m| m.as_str()).unwrap_or_default()
}

pub(super) fn exit_code_in(details: &str) -> Option<i32> {
    let caps = STATE_EXIT_CODE.captures(head_bounded(details, STATE_DETAILS_SCAN_BYTES))?;
    group(&caps, 1).parse().ok()
}

pub(super) fn exit_code_of_line(line: &str) -> Option<i32> {
    let caps = EXIT_CODE.captures(line)?;
    caps.get(1).or_else(|| caps.get(2))?.as_str().parse().ok()
}

/// Control characters (newlines, tabs) become spaces and runs of spaces one.
pub(super) fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A message or log line quoted in a summary: one line of at most 160 characters, `…` when cut.
pub(super) fn quoted(text: &str) -> String {
    let line = one_line(head_bounded(text, QUOTED_CHARS * 8));
    let mut out: String = line.chars().take(QUOTED_CHARS).collect();
    if line.chars().nth(QUOTED_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// One line of at most `max_bytes`, ending in `…` when cut.
pub(super) fn bounded(text: &str, max_bytes: usize) -> String {
    let line = one_line(head_bounded(text, max_bytes.saturating_mul(4)));
    if line.len() <= max_bytes {
        return line;
    }
    format!("{}…", head_bounded(&line, max_bytes.saturating_sub('…'.len_utf8())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which service a denial names when the line gives no action: the resource's, else a word of
    /// the line, else none ("AWS").
    #[test]
    fn a_denial_without_an_action_names_the_service_it_can() {
        let cases = [
            ("AccessDeniedException: access denied on resource: arn:aws:glue:us-east-1:111122223333:catalog.", "Access denied on Glue arn:aws:glue:us-east-1:111122223333:catalog: the job's role lacks permission"),
            ("AccessDeniedException: access denied on KMS", "Access denied on KMS; the log does not name the resource"),
            ("java.nio.file.AccessDeniedException: Access Denied", "Access denied on AWS; the log does not name the resource"),
            ("AccessDenied from S3", "Access denied on S3; the log does not name the resource"),
        ];
        for (line, summary) in cases {
            assert_eq!(permission(line).summary, summary, "{line}");
        }
    }

    /// A quote is 160 characters whatever their bytes, then `…`.
    #[test]
    fn a_quote_is_cut_at_160_characters_not_bytes() {
        let quote = quoted(&"😀".repeat(200));
        assert_eq!((quote.chars().count(), quote.ends_with('…')), (QUOTED_CHARS + 1, true));
        assert_eq!(quoted("short\nline"), "short line");
    }
}
