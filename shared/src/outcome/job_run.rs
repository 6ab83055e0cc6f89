//! An EMR Serverless job run as the monitor reads it (SparkServerlessJobMonitor's rules), as pure
//! functions: which job status a job-run state means, which status changes may be applied
//! (forward only: [`decide_status_change`]), where a run's driver logs are, and how failure
//! reasons are bounded before they go into the job row.

use chrono::{DateTime, Utc};

use crate::job::record::JobStatus;
use crate::text::{head_bounded, tail_bounded};

/// What GetJobRun says of a run (botocore `JobRun`); every field but `state` may be absent. For a
/// retried run the times and the state are those of the latest attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRunInfo {
    pub state: String,
    pub state_details: Option<String>,
    pub name: Option<String>,
    pub tags: std::collections::HashMap<String, String>,
    /// The latest attempt's number (`attempt`); EMR shows it for runs with a `retryPolicy`.
    pub attempt: Option<i32>,
    /// `attemptCreatedAt`, `attemptUpdatedAt` of that attempt.
    pub attempt_created_at: Option<DateTime<Utc>>,
    pub attempt_updated_at: Option<DateTime<Utc>>,
    /// `releaseLabel`, for example `emr-7.5.0`.
    pub release_label: Option<String>,
    /// `startedAt`: when the run went RUNNING; `endedAt`: when it ended.
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `totalExecutionDurationSeconds`, once the run is over.
    pub total_execution_duration_seconds: Option<i64>,
    /// `queuedDurationMilliseconds`: the time spent QUEUED.
    pub queued_duration_milliseconds: Option<i64>,
    /// `executionTimeoutMinutes` applied (EMR's default is 720).
    pub execution_timeout_minutes: Option<i64>,
    /// `retryPolicy.maxAttempts` applied.
    pub max_attempts: Option<i32>,
    /// `imageConfiguration.imageUri` and `.resolvedImageDigest` (a custom image; the digest once
    /// the application has started).
    pub image_uri: Option<String>,
    pub image_digest: Option<String>,
    /// `totalResourceUtilization` and `billedResourceUtilization`, once EMR reports them.
    pub utilization: Option<crate::outcome::cost::RunUtilization>,
}

/// One attempt of a run as ListJobRunAttempts gives it (botocore `JobRunAttemptSummary`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRunAttempt {
    pub attempt: i32,
    pub state: String,
    /// `stateDetails`; absent when empty.
    pub state_details: Option<String>,
    /// `createdAt`, `updatedAt` of the attempt.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The end of a log stream, read without loading the whole stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    pub text: String,
    pub truncated: bool,
    /// False when the stream does not exist (yet).
    pub found: bool,
}

/// How hard a log read tries when CloudWatch Logs throttles it. GetLogEvents has a hard,
/// account-wide quota that cannot be raised and that every reader in the account shares (AWS
/// knowledge center "cloudwatch-logs-throttling"; the CloudWatch Logs quotas page), so a burst of
/// finished runs can exhaust it for minutes (PrefectHQ/prefect#17780, ASFHyP3/hyp3#519).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReadPatience {
    /// One try per call: a throttled call fails at once. The final status of a job never waits
    /// on a quota that other readers may hold; the logs are left to the sweep.
    Once,
    /// The sweep's: calls spaced at a configured pace (the reader's), and the SDK's standard retry
    /// (exponential backoff with jitter on `ThrottlingException`), a bounded number of attempts
    /// per call.
    Paced,
}

/// EMR Serverless job-run states, and any state this code does not know yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EmrState {
    Submitted,
    Pending,
    Scheduled,
    Queued,
    Running,
    Success,
    Failed,
    Cancelling,
    Cancelled,
    Unknown(String),
}

impl EmrState {
    pub fn parse(value: &str) -> EmrState {
        match value {
            "SUBMITTED" => EmrState::Submitted,
            "PENDING" => EmrState::Pending,
            "SCHEDULED" => EmrState::Scheduled,
            "QUEUED" => EmrState::Queued,
            "RUNNING" => EmrState::Running,
            "SUCCESS" => EmrState::Success,
            "FAILED" => EmrState::Failed,
            "CANCELLING" => EmrState::Cancelling,
            "CANCELLED" => EmrState::Cancelled,
            other => EmrState::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            EmrState::Submitted => "SUBMITTED",
            EmrState::Pending => "PENDING",
            EmrState::Scheduled => "SCHEDULED",
            EmrState::Queued => "QUEUED",
            EmrState::Running => "RUNNING",
            EmrState::Success => "SUCCESS",
            EmrState::Failed => "FAILED",
            EmrState::Cancelling => "CANCELLING",
            EmrState::Cancelled => "CANCELLED",
            EmrState::Unknown(other) => other,
        }
    }

    /// The job status this state means; `None` keeps the job's status (CANCELLING, unknown states).
    pub fn job_status(&self) -> Option<JobStatus> {
        match self {
            EmrState::Submitted | EmrState::Pending | EmrState::Scheduled | EmrState::Queued => Some(JobStatus::Waiting),
            EmrState::Running => Some(JobStatus::Running),
            EmrState::Success => Some(JobStatus::Complete),
            EmrState::Failed => Some(JobStatus::Error),
            EmrState::Cancelled => Some(JobStatus::Cancelled),
            EmrState::Cancelling | EmrState::Unknown(_) => None,
        }
    }

    /// Progress of a run; a later event of a lower rank is an older event. Unknown states rank
    /// nowhere: they are recorded but never block a known state.
    fn rank(&self) -> Option<u8> {
        match self {
            EmrState::Submitted => Some(0),
            EmrState::Pending => Some(1),
            // SUBMITTED -> PENDING -> QUEUED (the application's concurrency is full) -> SCHEDULED.
            EmrState::Queued => Some(2),
            EmrState::Scheduled => Some(3),
            EmrState::Running => Some(4),
            EmrState::Cancelling => Some(5),
            EmrState::Success | EmrState::Failed | EmrState::Cancelled => Some(6),
            EmrState::Unknown(_) => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, EmrState::Success | EmrState::Failed | EmrState::Cancelled)
    }

    /// The known states at or above this one's rank: a job already there must not take this event.
    pub fn states_at_or_after(&self) -> Vec<&'static str> {
        const KNOWN: [&str; 9] = ["SUBMITTED", "PENDING", "QUEUED", "SCHEDULED", "RUNNING", "CANCELLING", "SUCCESS", "FAILED", "CANCELLED"];
        match self.rank() {
            None => Vec::new(),
            Some(rank) => KNOWN.into_iter().filter(|s| EmrState::parse(s).rank().is_some_and(|r| r >= rank)).collect(),
        }
    }
}

fn status_rank(status: JobStatus) -> u8 {
    match status {
        JobStatus::Created => 0,
        JobStatus::Waiting => 1,
        JobStatus::Running => 2,
        JobStatus::Complete | JobStatus::Error | JobStatus::Cancelled => 3,
    }
}

/// What an event does to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Apply: set `jobStatus` to `status` (possibly unchanged) and record the EMR state. With
    /// `history_only` (a state this code does not know) the state goes into `statusHistory` but
    /// not into `emrState`, so it cannot hide the order of the known states that follow.
    Apply { status: JobStatus, emr_state: String, history_only: bool },
    /// A repeated, older or late event, or a job already final: nothing to write. `detail` is
    /// for the log; `reason` is the `Reason` dimension of `EventsIgnored`.
    Ignore { reason: IgnoredReason, detail: &'static str },
}

/// Why an event changed nothing: the `Reason` dimension of the monitor's `EventsIgnored` metric
/// (`shared/src/metrics.rs`), a fixed few so the metric stays low-cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum IgnoredReason {
    /// The job has moved past what the event says (an older state, a job already final, usage
    /// figures not newer than the row's).
    Late,
    /// The row already has what the event says (a redelivery, or a repeated EMR state).
    Duplicate,
    /// The run is not one this service launched (another team's run on a shared application),
    /// or its job's status cannot be read.
    NotOurs,
    /// The event does not have the shape its `detail-type` promises.
    Malformed,
    /// A `detail-type` this function is not subscribed to handle.
    Unhandled,
    /// The event carries nothing to record yet (a utilization update with no figures).
    Empty,
}

fn ignore(reason: IgnoredReason, detail: &'static str) -> Transition {
    Transition::Ignore { reason, detail }
}

/// The forward-only rule. `current_emr` is the last EMR state applied to the job, if any.
pub fn decide_status_change(current: JobStatus, current_emr: Option<&str>, event: &EmrState) -> Transition {
    if current.is_terminal() {
        return ignore(IgnoredReason::Late, "the job is already final");
    }
    let status = event.job_status().unwrap_or(current);
    if status_rank(status) < status_rank(current) {
        return ignore(IgnoredReason::Late, "an older event: the job has moved on");
    }
    if let (Some(new), Some(old)) = (event.rank(), current_emr.map(EmrState::parse).and_then(|s| s.rank())) {
        if new <= old {
            return ignore(IgnoredReason::Duplicate, "a repeated or older EMR state");
        }
    }
    if current_emr == Some(event.as_str()) {
        return ignore(IgnoredReason::Duplicate, "a repeated EMR state");
    }
    let history_only = matches!(event, EmrState::Unknown(_));
    Transition::Apply { status, emr_state: event.as_str().to_string(), history_only }
}

/// The job statuses from which `status` may be written: itself and every earlier one.
pub fn statuses_before_or_at(status: JobStatus) -> Vec<&'static str> {
    JobStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal() && status_rank(*s) <= status_rank(status))
        .map(JobStatus::as_str)
        .collect()
}

/// Where EMR Serverless writes a run's driver logs: `<prefix>/applications/<app>/jobs/<run>/` then
/// `SPARK_DRIVER/stdout|stderr`, with `attempts/<n>/` before `SPARK_DRIVER` for retried attempts.
/// Where all of a run's logs are: `<job id>/applications/<app>/jobs/<run>/`. A retried run writes
/// each attempt after the first under `attempts/<n>/` below it, so this prefix leads to every
/// attempt's logs (EMR Serverless "Logging": `.../jobs/<run>/attempts/<n>/SPARK_DRIVER/`).
pub fn driver_log_prefix(job_id: &str, application_id: &str, run_id: &str) -> String {
    format!("{job_id}/applications/{application_id}/jobs/{run_id}/")
}

/// One driver log stream (`stdout`, `stderr`) of one attempt of the run under `prefix`.
pub fn driver_log_stream(prefix: &str, attempt: Option<i32>, stream: &str) -> String {
    match attempt {
        Some(n) if n > 1 => format!("{prefix}attempts/{n}/SPARK_DRIVER/{stream}"),
        _ => format!("{prefix}SPARK_DRIVER/{stream}"),
    }
}

/// Where to look for one driver log stream of the run's latest `attempt`, in order: EMR writes
/// attempt n > 1 under `attempts/<n>/` and the first under the plain path, but a log stream
/// prefix may be laid out either way, so both are tried.
pub fn driver_log_streams(prefix: &str, attempt: Option<i32>, stream: &str) -> Vec<String> {
    let plain = driver_log_stream(prefix, None, stream);
    match attempt {
        Some(n) if n > 1 => vec![driver_log_stream(prefix, attempt, stream), plain],
        Some(n) => vec![plain, format!("{prefix}attempts/{n}/SPARK_DRIVER/{stream}")],
        None => vec![plain],
    }
}

/// `errorMessage` of a failed or cancelled run: EMR's own reason, then the end of the driver's
/// stderr when it says more (a Python traceback usually does).
pub fn failure_message(job_id: &str, emr_state: &str, state_details: Option<&str>, stderr_tail: &str, max_bytes: usize) -> String {
    let details = state_details.map(str::trim).filter(|d| !d.is_empty()).unwrap_or("no details given");
    let mut message = format!("job {job_id}: EMR Serverless job run {emr_state}: {details}");
    let last_lines: Vec<&str> = stderr_tail.lines().filter(|l| !l.trim().is_empty()).rev().take(12).collect();
    let said_more = last_lines.iter().any(|l| !details.contains(l.trim()));
    if said_more {
        message.push_str("\n--- driver stderr (last lines) ---\n");
        let lines: Vec<&str> = last_lines.into_iter().rev().collect();
        message.push_str(&lines.join("\n"));
    }
    let (bounded, _) = tail_bounded(&message, max_bytes);
    if bounded.len() < message.len() {
        // Keep the head (job and reason), drop the middle of the stderr excerpt.
        let head = head_bounded(&message, max_bytes / 2);
        let (tail, _) = tail_bounded(&message, max_bytes / 2);
        return format!("{head}\n…\n{tail}");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_table() {
        let cases = [
            ("SUBMITTED", Some(JobStatus::Waiting)),
            ("QUEUED", Some(JobStatus::Waiting)),
            ("PENDING", Some(JobStatus::Waiting)),
            ("SCHEDULED", Some(JobStatus::Waiting)),
            ("RUNNING", Some(JobStatus::Running)),
            ("SUCCESS", Some(JobStatus::Complete)),
            ("FAILED", Some(JobStatus::Error)),
            ("CANCELLED", Some(JobStatus::Cancelled)),
            ("CANCELLING", None),
            ("HIBERNATING", None),
        ];
        for (state, status) in cases {
            let parsed = EmrState::parse(state);
            assert_eq!(parsed.job_status(), status, "{state}");
            assert_eq!(parsed.as_str(), state);
        }
    }

    #[test]
    fn forward_only_rule() {
        use JobStatus::*;
        let apply = |status, emr: &str| Transition::Apply { status, emr_state: emr.to_string(), history_only: false };
        let record = |status, emr: &str| Transition::Apply { status, emr_state: emr.to_string(), history_only: true };
        let cases: Vec<(JobStatus, Option<&str>, &str, Transition)> = vec![
            (Waiting, Some("SUBMITTED"), "SCHEDULED", apply(Waiting, "SCHEDULED")),
            (Waiting, Some("SUBMITTED"), "RUNNING", apply(Running, "RUNNING")),
            (Waiting, None, "SUCCESS", apply(Complete, "SUCCESS")),
            (Running, Some("RUNNING"), "SUCCESS", apply(Complete, "SUCCESS")),
            (Running, Some("RUNNING"), "FAILED", apply(Error, "FAILED")),
            (Running, Some("RUNNING"), "CANCELLING", apply(Running, "CANCELLING")),
            (Running, Some("CANCELLING"), "CANCELLED", apply(Cancelled, "CANCELLED")),
            (Running, Some("RUNNING"), "HIBERNATING", record(Running, "HIBERNATING")),
            (Waiting, None, "HIBERNATING", record(Waiting, "HIBERNATING")),
            (Running, Some("HIBERNATING"), "SUCCESS", apply(Complete, "SUCCESS")),
            (Running, Some("RUNNING"), "RUNNING", ignore(IgnoredReason::Duplicate, "a repeated or older EMR state")),
            (Running, Some("RUNNING"), "SCHEDULED", ignore(IgnoredReason::Late, "an older event: the job has moved on")),
            (Running, Some("HIBERNATING"), "HIBERNATING", ignore(IgnoredReason::Duplicate, "a repeated EMR state")),
            (Waiting, Some("SCHEDULED"), "PENDING", ignore(IgnoredReason::Duplicate, "a repeated or older EMR state")),
            (Complete, Some("SUCCESS"), "RUNNING", ignore(IgnoredReason::Late, "the job is already final")),
            (Cancelled, None, "SUCCESS", ignore(IgnoredReason::Late, "the job is already final")),
            (Error, Some("FAILED"), "FAILED", ignore(IgnoredReason::Late, "the job is already final")),
        ];
        for (status, emr, event, expected) in cases {
            assert_eq!(decide_status_change(status, emr, &EmrState::parse(event)), expected, "{status} {emr:?} <- {event}");
        }
    }

    #[test]
    fn conditions_name_the_states_a_job_must_not_be_in() {
        assert_eq!(EmrState::Running.states_at_or_after(), ["RUNNING", "CANCELLING", "SUCCESS", "FAILED", "CANCELLED"]);
        assert!(EmrState::Unknown("X".into()).states_at_or_after().is_empty());
        assert_eq!(statuses_before_or_at(JobStatus::Running), ["CREATED", "WAITING", "RUNNING"]);
        assert_eq!(statuses_before_or_at(JobStatus::Complete), ["CREATED", "WAITING", "RUNNING"]);
    }

    #[test]
    fn log_stream_names() {
        let cases = [
            (None, "job-1/applications/app-1/jobs/run-1/SPARK_DRIVER/stdout"),
            (Some(1), "job-1/applications/app-1/jobs/run-1/SPARK_DRIVER/stdout"),
            (Some(3), "job-1/applications/app-1/jobs/run-1/attempts/3/SPARK_DRIVER/stdout"),
        ];
        let prefix = driver_log_prefix("job-1", "app-1", "run-1");
        assert_eq!(prefix, "job-1/applications/app-1/jobs/run-1/", "leads to every attempt's logs");
        for (attempt, expected) in cases {
            assert_eq!(driver_log_stream(&prefix, attempt, "stdout"), expected);
            assert!(expected.starts_with(&prefix));
        }
        // The streams tried for the latest attempt, in order: its own path first, then the other layout.
        let (plain, at) = (format!("{prefix}SPARK_DRIVER/stderr"), |n: i32| format!("{prefix}attempts/{n}/SPARK_DRIVER/stderr"));
        let tried = [(None, vec![plain.clone()]), (Some(1), vec![plain.clone(), at(1)]), (Some(3), vec![at(3), plain.clone()])];
        for (attempt, expected) in tried {
            assert_eq!(driver_log_streams(&prefix, attempt, "stderr"), expected, "{attempt:?}");
        }
    }

    #[test]
    fn failure_messages_stay_within_their_byte_budget_whatever_the_script() {
        let stderr: String = (0..40).map(|i| format!("Fehler in Zeile {i}: ungültige Eingabe «é»\n")).collect();
        for details in ["é".repeat(5_000), "日本語".repeat(2_000), "x".repeat(5_000)] {
            let message = failure_message("job-1", "FAILED", Some(&details), &stderr, 1_000);
            assert!(message.len() <= 1_000 + "\n…\n".len(), "{} bytes", message.len());
            assert!(message.starts_with("job job-1: EMR Serverless job run FAILED: "));
            assert!(message.ends_with("ungültige Eingabe «é»"), "the traceback's end is kept");
        }
    }

    #[test]
    fn failure_messages_add_stderr_when_it_says_more() {
        let stderr = "INFO starting\nTraceback (most recent call last):\n  File \"model.py\", line 3\nValueError: bad input\n";
        let with = failure_message("job-1", "FAILED", Some("Job failed, please check complete logs"), stderr, 4096);
        assert!(with.starts_with("job job-1: EMR Serverless job run FAILED: Job failed, please check complete logs\n--- driver stderr"), "{with}");
        assert!(with.ends_with("ValueError: bad input"), "{with}");
        let without = failure_message("job-1", "CANCELLED", Some("Cancelled by user"), "", 4096);
        assert_eq!(without, "job job-1: EMR Serverless job run CANCELLED: Cancelled by user");
        let none = failure_message("job-1", "FAILED", None, "", 4096);
        assert_eq!(none, "job job-1: EMR Serverless job run FAILED: no details given");
        let long = failure_message("job-1", "FAILED", Some("x"), &"y".repeat(10_000), 1000);
        assert!(long.len() <= 1010 && long.starts_with("job job-1"), "{}", long.len());
    }
}
