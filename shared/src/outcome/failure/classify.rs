//! The classifier: [`classify_failure`] reads what is known of a failed job in its order of
//! precedence (submit's refusal, the model's error record, the timing, `stateDetails`, stderr).

use crate::text::{head_bounded, tail_bounded};

use super::text_rules::*;
use super::*;

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
            (None, None) => unknown(exit_code, inputs.state_details.and_then(emr_reason)),
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
    let head_rules = [TextRule::QueueTimeout, TextRule::ExecutionTimeout, TextRule::ConfigurationRefused];
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

/// A failure no rule recognises: with EMR's own words when `stateDetails` gives a reason, never
/// "neither EMR nor the driver log says why" then.
fn unknown(exit_code: Option<i32>, emr_reason: Option<&str>) -> Failure {
    let failed = match exit_code {
        Some(code) => format!("The run failed with exit code {code}"),
        None => "The run failed".to_string(),
    };
    let (summary, log_line) = match emr_reason {
        Some(reason) => (format!("{failed}; EMR Serverless says: {}", quoted(reason)), Some(bounded(reason, LOG_LINE_MAX_BYTES))),
        None => (format!("{failed}, and neither EMR nor the driver log says why"), None),
    };
    Failure { class: FailureClass::Unknown, summary, evidence: Evidence { log_line, ..Evidence::default() } }
}

/// What `stateDetails` says beyond EMR's boilerplate ("Job failed", "please check complete logs in
/// configured logging destination", "ExitCode: N"), when that is a sentence (three words or more).
fn emr_reason(details: &str) -> Option<&str> {
    let details = head_bounded(details, STATE_DETAILS_SCAN_BYTES).trim();
    let mut rest = details.to_string();
    for boilerplate in ["Job failed", "please check complete logs in configured logging destination", "Last few exceptions:"] {
        rest = rest.replace(boilerplate, " ");
    }
    let words = rest.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().any(char::is_alphabetic) && *w != "ExitCode").count();
    (words >= 3).then_some(details)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::printable;

    #[test]
    fn only_a_missing_dependency_is_renamed_to_the_configured_spark_environment() {
        let missing = classify_failure(&FailureInputs { stderr_tail: Some("ModuleNotFoundError: No module named 'numpy'\n"), ..FailureInputs::default() });
        let renamed = missing.clone().naming_spark_environment("the local Spark's Python");
        assert_eq!(renamed.summary, "The model imports module 'numpy', which is not installed on the local Spark's Python");
        assert_eq!((&renamed.class, &renamed.evidence), (&missing.class, &missing.evidence), "only the summary changes");
        let long = missing.clone().naming_spark_environment(&"x".repeat(400));
        assert!(long.summary.len() <= SUMMARY_MAX_BYTES && long.summary.starts_with("The model imports module 'numpy'"), "bounded: {}", long.summary.len());
        let oom = classify_failure(&FailureInputs { state_details: Some(OOM_STATE), ..FailureInputs::default() });
        assert_eq!(oom.clone().naming_spark_environment("elsewhere"), oom, "another class is left as it is");
    }

    #[test]
    fn emrs_own_words_are_quoted_whenever_state_details_give_a_reason() {
        // (stateDetails, the summary)
        let cases = [
            ("Job failed", "The run failed, and neither EMR nor the driver log says why"),
            ("Job failed, please check complete logs in configured logging destination. ExitCode: 1.", "The run failed with exit code 1, and neither EMR nor the driver log says why"),
            ("Job failed, please check complete logs in configured logging destination. ExitCode: 1. The job run was stopped by the service for maintenance",
             "The run failed with exit code 1; EMR Serverless says: Job failed, please check complete logs in configured logging destination. ExitCode: 1. The job run was stopped by the service for maintenance"),
        ];
        for (details, summary) in cases {
            let failure = classify_failure(&FailureInputs { state_details: Some(details), ..FailureInputs::default() });
            assert_eq!((failure.class, failure.summary.as_str()), (FailureClass::Unknown, summary), "{details}");
            // EMR's words are the evidence when they give a reason; boilerplate is none.
            let quoted = summary.contains("EMR Serverless says").then_some(details);
            assert_eq!(failure.evidence.log_line.as_deref(), quoted, "{details}");
        }
    }

    #[test]
    fn an_object_a_run_names_that_is_missing_is_input_not_found_naming_it() {
        for text in ["s3://modelop-staging/jobs/j-1/model.py: no such object or prefix", "An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist. (s3://data/in/part.csv)"] {
            let failure = classify_failure(&FailureInputs { state_details: Some(text), ..FailureInputs::default() });
            assert_eq!(failure.class, FailureClass::InputNotFound, "{text}");
            assert!(failure.evidence.resource.as_deref().is_some_and(|r| r.starts_with("s3://")), "{text}: {:?}", failure.evidence);
        }
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
    fn a_missing_module_comes_before_memory_whichever_line_is_last() {
        let missing = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'xgboost'";
        let memory = "java.lang.OutOfMemoryError: Java heap space";
        for stderr in [format!("{missing}\n{memory}\n"), format!("{memory}\n{missing}\n")] {
            let failure = classify_failure(&FailureInputs { stderr_tail: Some(&stderr), ..FailureInputs::default() });
            assert_eq!((failure.class, failure.evidence.module.as_deref()), (FailureClass::MissingDependency, Some("xgboost")), "{stderr}");
            let details = format!("Job failed. ExitCode: 1. Last few exceptions: {}", stderr.replace('\n', " \n"));
            let failure = classify_failure(&FailureInputs { state_details: Some(&details), ..FailureInputs::default() });
            assert_eq!(failure.class, FailureClass::MissingDependency, "{details}");
        }
        // The same in a model error record: the traceback's missing module, the message's memory.
        let record = ModelErrorRecord { exception_type: "ImportError".into(), message: "MemoryError while importing".into(), traceback_tail: "ModuleNotFoundError: No module named 'lightgbm'".into() };
        let failure = classify_failure(&FailureInputs { model_error: Some(&record), ..FailureInputs::default() });
        assert_eq!((failure.class, failure.evidence.module.as_deref()), (FailureClass::MissingDependency, Some("lightgbm")), "{failure:#?}");
        // Memory still comes before a Spark abort and the model's own exception.
        let stderr = format!("{MODEL_TRACEBACK}{memory}\norg.apache.spark.SparkException: Job aborted due to stage failure\n");
        assert_eq!(classify_failure(&FailureInputs { stderr_tail: Some(&stderr), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
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

    #[test]
    fn a_records_traceback_is_read_only_for_an_import_or_an_empty_message() {
        let traceback = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'optional_extra'\nDuring handling of the above exception, another exception occurred:";
        // The model's own exception with a message: its traceback's earlier lines do not reclassify it.
        let raised = ModelErrorRecord { exception_type: "ValueError".into(), message: "bad input".into(), traceback_tail: traceback.into() };
        assert_eq!(classify_failure(&FailureInputs { model_error: Some(&raised), ..FailureInputs::default() }).class, FailureClass::ModelError);
        // An exception with no message: the traceback says what it was.
        let silent = ModelErrorRecord { exception_type: "Exception".into(), message: " ".into(), traceback_tail: "py4j.protocol.Py4JJavaError: java.lang.OutOfMemoryError: Java heap space".into() };
        assert_eq!(classify_failure(&FailureInputs { model_error: Some(&silent), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
    }

    #[test]
    fn the_telling_line_is_found_anywhere_in_the_scanned_window() {
        let padding = |bytes: usize| "INFO nothing to see here\n".repeat(bytes / 25 + 1);
        let oom = "java.lang.OutOfMemoryError: Java heap space\n";
        // stateDetails: its first 16 KiB.
        let details = format!("Job failed. ExitCode: 1. Last few exceptions: {}{oom}", padding(8 * 1024));
        assert_eq!(classify_failure(&FailureInputs { state_details: Some(&details), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
        let beyond = format!("Job failed. ExitCode: 1. Last few exceptions: {}{oom}", padding(20 * 1024));
        assert_eq!(classify_failure(&FailureInputs { state_details: Some(&beyond), ..FailureInputs::default() }).class, FailureClass::Unknown);
        // stderr: its last 128 KiB.
        let stderr = format!("{oom}{}", padding(64 * 1024));
        assert_eq!(classify_failure(&FailureInputs { stderr_tail: Some(&stderr), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
        let before = format!("{oom}{}", padding(160 * 1024));
        assert_eq!(classify_failure(&FailureInputs { stderr_tail: Some(&before), ..FailureInputs::default() }).class, FailureClass::Unknown);
        // Each line: its first 4 KiB.
        let long_line = format!("WARN {} java.lang.OutOfMemoryError: Java heap space\n", "x".repeat(2 * 1024));
        assert_eq!(classify_failure(&FailureInputs { stderr_tail: Some(&long_line), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
    }

    #[test]
    fn spark_side_exceptions_at_the_end_of_a_traceback_are_not_the_models() {
        for exception in ["AnalysisException: [UNRESOLVED_COLUMN] `age`", "java.lang.IllegalStateException: closed", "Py4JError: gateway gone"] {
            let stderr = format!("Traceback (most recent call last):\n  File \"model.py\", line 3, in score\n{exception}\n");
            let failure = classify_failure(&FailureInputs { stderr_tail: Some(&stderr), ..FailureInputs::default() });
            assert_ne!(failure.class, FailureClass::ModelError, "{exception}: {failure:#?}");
        }
    }

    #[test]
    fn stack_frames_are_not_causes_but_a_cause_ending_in_more_is() {
        let frames = "java.lang.RuntimeException: wrapped\n\tat org.example.OutOfMemoryErrorHandler.handle(OutOfMemoryErrorHandler.java:10)\n\t... 12 more\n";
        let failure = classify_failure(&FailureInputs { stderr_tail: Some(frames), ..FailureInputs::default() });
        assert_ne!(failure.class, FailureClass::OutOfMemory, "a frame names a method, not a cause: {failure:#?}");
        let cause = "java.lang.OutOfMemoryError: unable to create 3 more\n";
        assert_eq!(classify_failure(&FailureInputs { stderr_tail: Some(cause), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
        let ellipsis = "... java.lang.OutOfMemoryError: Java heap space\n";
        assert_eq!(classify_failure(&FailureInputs { stderr_tail: Some(ellipsis), ..FailureInputs::default() }).class, FailureClass::OutOfMemory);
    }

    #[test]
    fn a_class_is_written_as_its_name() {
        for class in FailureClass::ALL {
            assert_eq!(class.to_string(), class.as_str());
        }
        assert_eq!(FailureClass::OutOfMemory.to_string(), "OUT_OF_MEMORY");
    }

    #[test]
    fn a_run_within_the_slack_of_its_limit_reached_it() {
        let execution = |seconds, minutes| RunTiming { execution_seconds: Some(seconds), execution_timeout_minutes: Some(minutes), ..RunTiming::default() };
        let queue = |millis, minutes| RunTiming { queued_millis: Some(millis), queue_timeout_minutes: Some(minutes), ..RunTiming::default() };
        // (timing, class): 30 minutes less the 30 s slack is 1,770 s.
        let cases = [
            (execution(1_770, 30), FailureClass::Timeout),
            (execution(1_769, 30), FailureClass::Unknown),
            (execution(100, 0), FailureClass::Unknown),
            (queue(1_770_000, 30), FailureClass::QueueTimeout),
            (queue(1_769_999, 30), FailureClass::Unknown),
            (queue(100_000, 0), FailureClass::Unknown),
            (RunTiming { queued_millis: Some(1_800_000), queue_timeout_minutes: Some(30), ..execution(1_800, 30) }, FailureClass::QueueTimeout),
        ];
        for (timing, class) in cases {
            let failure = classify_failure(&FailureInputs { timing: Some(timing), ..FailureInputs::default() });
            assert_eq!(failure.class, class, "{timing:?}");
        }
        let failure = classify_failure(&FailureInputs { timing: Some(queue(1_800_000, 30)), ..FailureInputs::default() });
        assert_eq!(failure.summary, "The run waited in the application's queue past its queue timeout of 30 minutes and never started");
        let failure = classify_failure(&FailureInputs { timing: Some(execution(1_800, 30)), ..FailureInputs::default() });
        assert_eq!(failure.summary, "The run exceeded its execution timeout of 30 minutes");
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
