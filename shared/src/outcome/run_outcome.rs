//! How a run ended, as the monitor records it on the job's final state, as pure functions: the
//! `attempts` list (from Retry events and ListJobRunAttempts, merged: [`merge_attempts`]), the
//! `provenance` object (from GetJobRun: [`provenance_of`]), whether EMR ended the run for a
//! timeout ([`run_ending`]: a timed-out run is an ERROR, not the user's cancel) and the `failure`
//! object of a job in ERROR ([`job_failure`], through [`crate::outcome::failure::classify::classify_failure`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outcome::failure::classify::classify_failure;
use crate::outcome::failure::{Failure, FailureClass, FailureInputs, ModelErrorRecord, RunTiming};
use crate::job::record::{JobStatus, Timestamp};
use crate::outcome::job_run::{EmrState, JobRunAttempt, JobRunInfo};
use crate::text::head_bounded;

/// At most this many `attempts` entries are kept (the latest): EMR allows 10 per run.
pub const MAX_ATTEMPTS_KEPT: usize = 20;
/// Bound of an attempt's `reason`, in bytes.
const REASON_MAX_BYTES: usize = 300;
/// Where EMR's default `executionTimeoutMinutes` applies (botocore `JobRun`: "defaults to 720").
const DEFAULT_EXECUTION_TIMEOUT_MINUTES: i64 = 720;

/// One `attempts` entry: `{"attempt": 1, "state": "FAILED", "reason": "...",
/// "startedAt": "2026-11-23T20:09:00.123Z", "endedAt": "2026-11-23T20:11:40.902Z"}`. `startedAt`
/// is when EMR created the attempt, `endedAt` when it ended (a live attempt has none). `state` is
/// absent for an attempt only a Retry event has named so far (its state is not in the event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub attempt: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The attempt's `stateDetails`, one line of at most 300 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

impl AttemptRecord {
    fn is_over(&self) -> bool {
        self.state.as_deref().is_some_and(|s| EmrState::parse(s).is_terminal())
    }
}

/// What an "EMR Serverless Job Run Retry" event says: the attempt that failed and the one that
/// started (`previousAttempt`, `previousAttemptState`, `previousAttemptCreatedAt`,
/// `previousAttemptEndedAt`, `newAttempt`, `newAttemptCreatedAt`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryDetail {
    #[serde(default)]
    pub previous_attempt: Option<i32>,
    #[serde(default)]
    pub previous_attempt_state: Option<String>,
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub previous_attempt_created_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub previous_attempt_ended_at: Option<Timestamp>,
    #[serde(default)]
    pub new_attempt: Option<i32>,
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub new_attempt_created_at: Option<Timestamp>,
}

/// The `attempts` entries a Retry event gives: the previous attempt, ended, and the new one.
pub fn attempts_from_retry(retry: &RetryDetail) -> Vec<AttemptRecord> {
    let previous = retry.previous_attempt.or_else(|| retry.new_attempt.map(|n| n - 1)).filter(|n| *n >= 1);
    let mut records = Vec::new();
    if let Some(attempt) = previous {
        records.push(AttemptRecord {
            attempt,
            state: retry.previous_attempt_state.clone().or_else(|| Some("FAILED".into())),
            reason: None,
            started_at: retry.previous_attempt_created_at,
            ended_at: retry.previous_attempt_ended_at,
        });
    }
    if let Some(attempt) = retry.new_attempt.filter(|n| *n >= 1) {
        records.push(AttemptRecord { attempt, state: None, reason: None, started_at: retry.new_attempt_created_at, ended_at: None });
    }
    records
}

/// The `attempts` entries ListJobRunAttempts gives; a live attempt has no `endedAt`.
pub fn attempts_from_listing(listed: &[JobRunAttempt]) -> Vec<AttemptRecord> {
    listed
        .iter()
        .map(|a| {
            let over = EmrState::parse(&a.state).is_terminal();
            AttemptRecord {
                attempt: a.attempt,
                state: Some(a.state.clone()),
                reason: a.state_details.as_deref().map(reason_line).filter(|r| !r.is_empty()),
                started_at: a.created_at.map(Timestamp),
                ended_at: a.updated_at.filter(|_| over).map(Timestamp),
            }
        })
        .collect()
}

/// The latest attempt as GetJobRun shows it, for a run whose listing is unavailable.
pub fn attempt_from_run(info: &JobRunInfo) -> Option<AttemptRecord> {
    let attempt = info.attempt?;
    let over = EmrState::parse(&info.state).is_terminal();
    Some(AttemptRecord {
        attempt,
        state: Some(info.state.clone()),
        reason: info.state_details.as_deref().map(reason_line).filter(|r| !r.is_empty()),
        started_at: info.attempt_created_at.map(Timestamp),
        ended_at: info.attempt_updated_at.or(info.ended_at).filter(|_| over).map(Timestamp),
    })
}

/// How incoming `attempts` entries meet known ones of the same attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeRule {
    /// A Retry event: it fills what is not known yet (it may be late or redelivered).
    FillGaps,
    /// ListJobRunAttempts: EMR's own account, it replaces what it gives.
    Override,
}

/// Merges `incoming` entries into `known`, by attempt number, in attempt order, keeping the
/// latest [`MAX_ATTEMPTS_KEPT`]; field by field as `rule` says, except that an ended state is
/// never replaced by a live one and a live one always gives way to an ended one. Merging the
/// same entries again changes nothing, so a redelivered event is harmless.
pub fn merge_attempts(known: &[AttemptRecord], incoming: &[AttemptRecord], rule: MergeRule) -> Vec<AttemptRecord> {
    let mut by_number: BTreeMap<i32, AttemptRecord> = known.iter().map(|r| (r.attempt, r.clone())).collect();
    for record in incoming {
        let Some(kept) = by_number.get_mut(&record.attempt) else {
            by_number.insert(record.attempt, record.clone());
            continue;
        };
        let ends_it = record.is_over() && !kept.is_over();
        let keeps_end = kept.is_over() && !record.is_over();
        let state_wins = match rule {
            MergeRule::FillGaps => kept.state.is_none() || ends_it,
            MergeRule::Override => !keeps_end,
        };
        if record.state.is_some() && state_wins {
            kept.state = record.state.clone();
        }
        fn pick<T: Clone>(kept: &mut Option<T>, incoming: &Option<T>, rule: MergeRule) {
            if incoming.is_some() && (rule == MergeRule::Override || kept.is_none()) {
                *kept = incoming.clone();
            }
        }
        pick(&mut kept.reason, &record.reason, rule);
        pick(&mut kept.started_at, &record.started_at, rule);
        pick(&mut kept.ended_at, &record.ended_at, rule);
    }
    let merged: Vec<AttemptRecord> = by_number.into_values().collect();
    let skip = merged.len().saturating_sub(MAX_ATTEMPTS_KEPT);
    merged.into_iter().skip(skip).collect()
}

/// The `provenance` object of a finished job, from GetJobRun:
/// `{"releaseLabel": "emr-7.5.0", "imageUri": "...", "imageDigest": "sha256:...", "attempts": 2,
///   "maxAttempts": 3, "executionTimeoutMinutes": 720, "startedAt": "...", "endedAt": "...",
///   "queuedDurationMilliseconds": 0, "totalExecutionDurationSeconds": 184}`.
/// Absent fields are left out. `attempts` is how many attempts the run had (1 without retries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    /// `imageConfiguration.resolvedImageDigest`, when EMR reports one (custom images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    pub attempts: i32,
    /// `retryPolicy.maxAttempts` applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_timeout_minutes: Option<i64>,
    /// When the (latest attempt of the) run went RUNNING, and when it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Time spent QUEUED (the application's concurrency was full), milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_duration_milliseconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_execution_duration_seconds: Option<i64>,
}

/// `provenance` from GetJobRun and the merged `attempts` list: the attempt count is the highest
/// attempt number either knows, 1 when neither knows any.
pub fn provenance_of(info: &JobRunInfo, attempts: &[AttemptRecord]) -> Provenance {
    let highest = attempts.iter().map(|a| a.attempt).chain(info.attempt).max().unwrap_or(1).max(1);
    Provenance {
        release_label: info.release_label.clone().filter(|l| !l.is_empty()),
        image_uri: info.image_uri.clone().filter(|u| !u.is_empty()),
        image_digest: info.image_digest.clone().filter(|d| !d.is_empty()),
        attempts: highest,
        max_attempts: info.max_attempts,
        execution_timeout_minutes: info.execution_timeout_minutes,
        started_at: info.started_at.map(Timestamp),
        ended_at: info.ended_at.map(Timestamp),
        queued_duration_milliseconds: info.queued_duration_milliseconds,
        total_execution_duration_seconds: info.total_execution_duration_seconds,
    }
}

/// The timing [`classify_failure`] reads, from GetJobRun. The queue timeout is the application's
/// (GetApplication), which the monitor does not read: a queue timeout is read from `stateDetails`.
pub fn run_timing(info: &JobRunInfo) -> RunTiming {
    RunTiming {
        execution_timeout_minutes: info.execution_timeout_minutes,
        execution_seconds: info.total_execution_duration_seconds,
        queue_timeout_minutes: None,
        queued_millis: info.queued_duration_milliseconds,
    }
}

/// How a run's final state ends its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnding {
    /// The status the state means (COMPLETE, ERROR, CANCELLED).
    AsStated(JobStatus),
    /// EMR ended the run for a timeout: the job ends in ERROR with this reason, not CANCELLED
    /// (nobody cancelled it). `reason` follows "the run": "exceeded its execution timeout of 30 minutes".
    TimedOut { class: FailureClass, reason: String },
}

impl RunEnding {
    pub fn status(&self) -> JobStatus {
        match self {
            RunEnding::AsStated(status) => *status,
            RunEnding::TimedOut { .. } => JobStatus::Error,
        }
    }
}

/// Whether EMR ended the run for a timeout: a CANCELLED or FAILED run whose `stateDetails` head
/// says it timed out, or a CANCELLED run that ran for its whole `executionTimeoutMinutes`
/// (EMR cancels such a run: CANCELLING, then CANCELLED). A CANCELLED run that did neither was
/// cancelled by someone (console, CLI, CancelJobRun) and stays CANCELLED.
pub fn run_ending(state: &EmrState, info: Option<&JobRunInfo>) -> RunEnding {
    let stated = state.job_status().unwrap_or(JobStatus::Error);
    let Some(info) = info.filter(|_| matches!(state, EmrState::Cancelled | EmrState::Failed)) else {
        return RunEnding::AsStated(stated);
    };
    let timing = run_timing(info);
    let read = classify_failure(&FailureInputs { timing: Some(timing), state_details: info.state_details.as_deref(), ..FailureInputs::default() });
    let minutes = info.execution_timeout_minutes.unwrap_or(DEFAULT_EXECUTION_TIMEOUT_MINUTES);
    match read.class {
        FailureClass::Timeout => RunEnding::TimedOut { class: FailureClass::Timeout, reason: format!("exceeded its execution timeout of {minutes} minutes") },
        FailureClass::QueueTimeout => {
            RunEnding::TimedOut { class: FailureClass::QueueTimeout, reason: "timed out in the application's queue and never started".to_string() }
        }
        _ => RunEnding::AsStated(stated),
    }
}

/// The `failure` object of a job whose run ended in ERROR, from what is known of the run: the
/// model error record comes before the timing, `stateDetails` and the stderr tail
/// ([`classify_failure`]). A timed-out run's summary names the minutes applied.
pub fn job_failure(ending: &RunEnding, info: Option<&JobRunInfo>, model_error: Option<&ModelErrorRecord>, stderr_tail: &str) -> Failure {
    let inputs = FailureInputs {
        submit_error: None,
        model_error,
        timing: info.map(run_timing),
        state_details: info.and_then(|i| i.state_details.as_deref()),
        stderr_tail: Some(stderr_tail).filter(|t| !t.trim().is_empty()),
    };
    let mut failure = classify_failure(&inputs);
    if let RunEnding::TimedOut { class, reason } = ending {
        // EMR's verdict wins over what the driver logged while it was being stopped.
        if failure.class != *class {
            failure.class = *class;
            failure.evidence.exception_type = None;
            failure.evidence.module = None;
        }
        failure.summary = format!("The run {reason}; EMR Serverless ended it");
    }
    failure
}

/// `errorMessage` of a job whose run EMR ended for a timeout: `job <id>: EMR Serverless job run
/// CANCELLED: the run exceeded its execution timeout of 30 minutes (EMR Serverless: <stateDetails>)`.
pub fn timeout_message(job_id: &str, emr_state: &str, reason: &str, state_details: Option<&str>) -> String {
    let mut message = format!("job {job_id}: EMR Serverless job run {emr_state}: the run {reason}");
    if let Some(details) = state_details.map(reason_line).filter(|d| !d.is_empty()) {
        message.push_str(&format!(" (EMR Serverless: {details})"));
    }
    message
}

/// A reason from `stateDetails`: its first non-empty line, without control characters, bounded.
fn reason_line(details: &str) -> String {
    let line = details.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let clean: String = head_bounded(line, REASON_MAX_BYTES).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp(Utc.timestamp_opt(1_790_000_000 + seconds, 0).unwrap()))
    }

    fn record(attempt: i32, state: Option<&str>, started: Option<Timestamp>, ended: Option<Timestamp>) -> AttemptRecord {
        AttemptRecord { attempt, state: state.map(str::to_string), reason: None, started_at: started, ended_at: ended }
    }

    #[test]
    fn a_retry_event_names_the_failed_attempt_and_the_new_one() {
        let retry: RetryDetail = serde_json::from_value(serde_json::json!({
            "previousAttempt": 1, "previousAttemptState": "FAILED", "previousAttemptCreatedAt": "2026-11-23T20:09:00.123456Z",
            "previousAttemptEndedAt": "2026-11-23T20:11:40.902114Z", "newAttempt": 2, "newAttemptCreatedAt": "2026-11-23T20:11:45.530218Z"
        }))
        .unwrap();
        let records = attempts_from_retry(&retry);
        let json = serde_json::to_value(&records).unwrap();
        assert_eq!(json, serde_json::json!([
            {"attempt": 1, "state": "FAILED", "startedAt": "2026-11-23T20:09:00.123Z", "endedAt": "2026-11-23T20:11:40.902Z"},
            {"attempt": 2, "startedAt": "2026-11-23T20:11:45.530Z"}
        ]));
        let sparse = attempts_from_retry(&RetryDetail { new_attempt: Some(3), ..RetryDetail::default() });
        assert_eq!(sparse, [record(2, Some("FAILED"), None, None), record(3, None, None, None)], "the attempt before the new one failed");
        assert!(attempts_from_retry(&RetryDetail::default()).is_empty());
    }

    #[test]
    fn attempts_merge_by_number_in_order_idempotently() {
        let from_event = vec![record(1, Some("FAILED"), at(0), at(160)), record(2, None, at(165), None)];
        let listing = vec![
            AttemptRecord { reason: Some("Job failed, ExitCode: 1".into()), ..record(1, Some("FAILED"), at(0), at(161)) },
            record(2, Some("FAILED"), at(165), at(300)),
            record(3, Some("SUCCESS"), at(305), at(400)),
        ];
        use MergeRule::{FillGaps, Override};
        // (known, incoming, rule, expected)
        type Attempts = Vec<AttemptRecord>;
        let cases: Vec<(Attempts, Attempts, MergeRule, Attempts)> = vec![
            (vec![], from_event.clone(), FillGaps, from_event.clone()),
            (from_event.clone(), from_event.clone(), FillGaps, from_event.clone()),
            (from_event.clone(), listing.clone(), Override, listing.clone()),
            // A lost Retry event: the listing alone.
            (vec![], listing.clone(), Override, listing.clone()),
            // A late, redelivered event after the final listing changes nothing EMR said.
            (listing.clone(), from_event.clone(), FillGaps, listing.clone()),
            // Out of order arrivals are sorted.
            (vec![record(3, None, None, None)], vec![record(1, Some("FAILED"), None, None)], FillGaps, vec![record(1, Some("FAILED"), None, None), record(3, None, None, None)]),
            // A live state never replaces an ended one; an ended one replaces a live one.
            (vec![record(2, Some("FAILED"), None, None)], vec![record(2, Some("RUNNING"), None, None)], Override, vec![record(2, Some("FAILED"), None, None)]),
            (vec![record(2, Some("RUNNING"), None, None)], vec![record(2, Some("SUCCESS"), None, at(9))], FillGaps, vec![record(2, Some("SUCCESS"), None, at(9))]),
            // EMR's listing does: it is EMR's own account of the attempt.
            (vec![record(2, Some("FAILED"), None, None)], vec![record(2, Some("CANCELLED"), None, None)], Override, vec![record(2, Some("CANCELLED"), None, None)]),
            // A late event never rewrites one ended state with another.
            (vec![record(2, Some("FAILED"), None, None)], vec![record(2, Some("SUCCESS"), None, None)], FillGaps, vec![record(2, Some("FAILED"), None, None)]),
        ];
        for (i, (known, incoming, rule, expected)) in cases.into_iter().enumerate() {
            let merged = merge_attempts(&known, &incoming, rule);
            assert_eq!(merged, expected, "case {i}");
            assert_eq!(merge_attempts(&merged, &incoming, rule), merged, "case {i}: merging again changes nothing");
        }
        let many: Vec<AttemptRecord> = (1..=30).map(|n| record(n, Some("FAILED"), None, None)).collect();
        let kept = merge_attempts(&[], &many, Override);
        assert_eq!((kept.len(), kept[0].attempt, kept.last().unwrap().attempt), (MAX_ATTEMPTS_KEPT, 11, 30), "the latest are kept");
    }

    #[test]
    fn a_listing_gives_states_reasons_and_end_times_of_ended_attempts() {
        let t = |s: i64| Some(Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap());
        let listed = [
            JobRunAttempt { attempt: 1, state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1.\nLast few exceptions: ...".into()), created_at: t(0), updated_at: t(160) },
            JobRunAttempt { attempt: 2, state: "RUNNING".into(), state_details: Some(String::new()), created_at: t(165), updated_at: t(170) },
        ];
        let records = attempts_from_listing(&listed);
        assert_eq!(records[0], AttemptRecord { reason: Some("Job failed, ExitCode: 1.".into()), ..record(1, Some("FAILED"), at(0), at(160)) });
        assert_eq!(records[1], record(2, Some("RUNNING"), at(165), None), "a live attempt has not ended");
        let long = [JobRunAttempt { attempt: 1, state: "FAILED".into(), state_details: Some("é".repeat(1_000)), ..JobRunAttempt::default() }];
        assert!(attempts_from_listing(&long)[0].reason.as_ref().unwrap().len() <= REASON_MAX_BYTES);
    }

    #[test]
    fn get_job_run_gives_the_latest_attempt_when_the_listing_is_unavailable() {
        let t = |s: i64| Some(Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap());
        let info = |state: &str| JobRunInfo {
            state: state.into(),
            attempt: Some(2),
            state_details: Some("Job failed, ExitCode: 1.\nmore".into()),
            attempt_created_at: t(165),
            ended_at: t(200),
            ..JobRunInfo::default()
        };
        let ended = AttemptRecord { reason: Some("Job failed, ExitCode: 1.".into()), ..record(2, Some("FAILED"), at(165), at(200)) };
        assert_eq!(attempt_from_run(&info("FAILED")), Some(ended), "an attempt that ended: ended at the run's end");
        let live = AttemptRecord { reason: Some("Job failed, ExitCode: 1.".into()), ..record(2, Some("RUNNING"), at(165), None) };
        assert_eq!(attempt_from_run(&info("RUNNING")), Some(live), "a live attempt has not ended");
        assert_eq!(attempt_from_run(&JobRunInfo { attempt: None, ..info("FAILED") }), None, "no attempt number, no record");
        assert_eq!(attempt_from_run(&JobRunInfo { state_details: Some(String::new()), ..info("FAILED") }).unwrap().reason, None, "no empty reason");
    }

    #[test]
    fn provenance_comes_from_get_job_run() {
        let t = |s: i64| Some(Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap());
        let info = JobRunInfo {
            state: "SUCCESS".into(),
            attempt: Some(2),
            release_label: Some("emr-7.5.0".into()),
            started_at: t(10),
            ended_at: t(194),
            total_execution_duration_seconds: Some(184),
            queued_duration_milliseconds: Some(4_250),
            execution_timeout_minutes: Some(60),
            max_attempts: Some(3),
            image_digest: Some("sha256:0a1b".into()),
            ..JobRunInfo::default()
        };
        let blank = JobRunInfo { release_label: Some(String::new()), image_uri: Some(String::new()), image_digest: Some(String::new()), ..info.clone() };
        let blank = provenance_of(&blank, &[]);
        assert_eq!((blank.release_label, blank.image_uri, blank.image_digest), (None, None, None), "empty texts are none");
        let json = serde_json::to_value(provenance_of(&info, &[])).unwrap();
        assert_eq!(json, serde_json::json!({
            "releaseLabel": "emr-7.5.0", "imageDigest": "sha256:0a1b", "attempts": 2, "maxAttempts": 3, "executionTimeoutMinutes": 60,
            "startedAt": "2026-09-21T14:13:30.000Z", "endedAt": "2026-09-21T14:16:34.000Z",
            "queuedDurationMilliseconds": 4250, "totalExecutionDurationSeconds": 184
        }));
        let plain = provenance_of(&JobRunInfo { state: "SUCCESS".into(), ..JobRunInfo::default() }, &[]);
        assert_eq!(serde_json::to_value(plain).unwrap(), serde_json::json!({ "attempts": 1 }), "a run without retries had one attempt");
        assert_eq!(provenance_of(&JobRunInfo::default(), &[record(3, None, None, None)]).attempts, 3, "the listing knows more attempts");
    }

    #[test]
    fn a_timed_out_runs_failure_is_emrs_verdict_whatever_the_driver_logged_as_it_was_stopped() {
        let ending = RunEnding::TimedOut { class: FailureClass::Timeout, reason: "exceeded its execution timeout of 30 minutes".into() };
        let failure = job_failure(&ending, None, None, "java.lang.OutOfMemoryError: Java heap space\n");
        assert_eq!((failure.class, failure.evidence.exception_type.as_deref(), failure.evidence.module.as_deref()), (FailureClass::Timeout, None, None), "{failure:?}");
        assert!(failure.summary.starts_with("The run exceeded its execution timeout of 30 minutes; EMR Serverless ended it"), "{}", failure.summary);
    }

    #[test]
    fn timeouts_end_the_job_in_error_and_other_cancels_stay_cancelled() {
        let run = |state: &str, details: Option<&str>, timeout: Option<i64>, seconds: Option<i64>| JobRunInfo {
            state: state.into(),
            state_details: details.map(str::to_string),
            execution_timeout_minutes: timeout,
            total_execution_duration_seconds: seconds,
            ..JobRunInfo::default()
        };
        let emulator_timeout = "Job run timed out: it ran longer than its execution timeout of 30 minutes and was cancelled.";
        let queue_timeout = "Job run timed out in the QUEUED state: it waited longer than the application's queue timeout of 15 minutes.";
        let timed_out = |m: i64| RunEnding::TimedOut { class: FailureClass::Timeout, reason: format!("exceeded its execution timeout of {m} minutes") };
        let queued_out = RunEnding::TimedOut { class: FailureClass::QueueTimeout, reason: "timed out in the application's queue and never started".into() };
        let cases = [
            // (state, GetJobRun, ending)
            ("CANCELLED", Some(run("CANCELLED", Some(emulator_timeout), Some(30), Some(3))), timed_out(30)),
            ("CANCELLED", Some(run("CANCELLED", Some("Job run cancelled"), Some(30), Some(1_800))), timed_out(30)),
            ("CANCELLED", Some(run("CANCELLED", None, Some(720), Some(43_200))), timed_out(720)),
            ("CANCELLED", Some(run("CANCELLED", Some("Job run cancelled by user"), Some(30), Some(600))), RunEnding::AsStated(JobStatus::Cancelled)),
            ("CANCELLED", Some(run("CANCELLED", None, None, None)), RunEnding::AsStated(JobStatus::Cancelled)),
            ("CANCELLED", None, RunEnding::AsStated(JobStatus::Cancelled)),
            ("FAILED", Some(run("FAILED", Some(queue_timeout), Some(720), Some(0))), queued_out),
            ("FAILED", Some(run("FAILED", Some("Job failed, ExitCode: 1"), Some(30), Some(20))), RunEnding::AsStated(JobStatus::Error)),
            ("SUCCESS", Some(run("SUCCESS", None, Some(1), Some(60))), RunEnding::AsStated(JobStatus::Complete)),
        ];
        for (state, info, expected) in cases {
            let ending = run_ending(&EmrState::parse(state), info.as_ref());
            assert_eq!(ending, expected, "{state} {info:?}");
            let status = if matches!(expected, RunEnding::TimedOut { .. }) { JobStatus::Error } else { ending.status() };
            assert_eq!(ending.status(), status);
        }
    }

    #[test]
    fn the_failure_of_a_job_in_error() {
        let timeout = RunEnding::TimedOut { class: FailureClass::Timeout, reason: "exceeded its execution timeout of 30 minutes".into() };
        let info = JobRunInfo { state: "CANCELLED".into(), state_details: Some("Job run timed out".into()), execution_timeout_minutes: Some(30), ..JobRunInfo::default() };
        let failure = job_failure(&timeout, Some(&info), None, "ERROR Executor killed: SIGTERM\n");
        assert_eq!((failure.class, failure.summary.as_str()), (FailureClass::Timeout, "The run exceeded its execution timeout of 30 minutes; EMR Serverless ended it"));
        assert_eq!(
            timeout_message("job-1", "CANCELLED", "exceeded its execution timeout of 30 minutes", Some("Job run timed out\n")),
            "job job-1: EMR Serverless job run CANCELLED: the run exceeded its execution timeout of 30 minutes (EMR Serverless: Job run timed out)"
        );

        let missing = ModelErrorRecord { exception_type: "ModuleNotFoundError".into(), message: "No module named 'xgboost'".into(), traceback_tail: String::new() };
        let failed = JobRunInfo { state: "FAILED".into(), state_details: Some("Job failed, ExitCode: 1".into()), ..JobRunInfo::default() };
        let failure = job_failure(&RunEnding::AsStated(JobStatus::Error), Some(&failed), Some(&missing), "");
        assert_eq!((failure.class, failure.evidence.module.as_deref()), (FailureClass::MissingDependency, Some("xgboost")));

        let raised = ModelErrorRecord { exception_type: "ValueError".into(), message: "no column 'age'".into(), traceback_tail: String::new() };
        assert_eq!(job_failure(&RunEnding::AsStated(JobStatus::Error), Some(&failed), Some(&raised), "").class, FailureClass::ModelError);
        let none = job_failure(&RunEnding::AsStated(JobStatus::Error), None, None, "");
        assert_eq!(none.class, FailureClass::Unknown, "nothing known");
        let from_stderr = job_failure(&RunEnding::AsStated(JobStatus::Error), Some(&failed), None, "Traceback (most recent call last):\nMemoryError\n");
        assert_eq!(from_stderr.class, FailureClass::OutOfMemory, "the stderr tail when there is no record");
    }
}
