//! The submit lease rule: who may launch a job that is already WAITING. Pure, so the whole
//! decision table is tested without a table.

use chrono::{DateTime, Duration, Utc};

use crate::job::{timestamp, JobStatus};
use crate::ports::{SubmitLease, SubmitSnapshot};

/// Added to an invocation's deadline: clocks of two Lambda hosts may differ by this much.
pub const CLOCK_SKEW_MARGIN: Duration = Duration::seconds(5);

/// What to do with a job whose CREATED -> WAITING claim did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Nothing for this delivery to do.
    Skip(SkipReason),
    /// WAITING without a run and without a live lease: an earlier attempt died between claim and
    /// launch; this one takes over.
    TakeOver(Option<SubmitLease>),
    /// Another invocation holds a live lease until then.
    LeaseHeld(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Missing,
    /// A run is recorded; the job's status as read.
    AlreadyLaunched { run_id: String, status: String },
    Status(String),
}

impl SkipReason {
    /// Whether the job is gone or final: nothing this delivery staged can be of use to it.
    pub fn job_is_done(&self) -> bool {
        let final_status = |s: &str| JobStatus::parse(s).is_some_and(JobStatus::is_terminal);
        match self {
            SkipReason::Missing => true,
            SkipReason::AlreadyLaunched { status, .. } | SkipReason::Status(status) => final_status(status),
        }
    }
}

/// A lease for an invocation that must finish by `deadline`.
pub fn new_lease(owner: &str, now: DateTime<Utc>, deadline: DateTime<Utc>) -> SubmitLease {
    SubmitLease { owner: owner.to_string(), claimed_at: timestamp(now), expires_at: timestamp(deadline + CLOCK_SKEW_MARGIN) }
}

pub fn decide_claim(snapshot: Option<&SubmitSnapshot>, now: DateTime<Utc>) -> ClaimDecision {
    let Some(snapshot) = snapshot else {
        return ClaimDecision::Skip(SkipReason::Missing);
    };
    let status = snapshot.job_status.as_deref().unwrap_or("");
    if let Some(run_id) = &snapshot.spark_application_id {
        return ClaimDecision::Skip(SkipReason::AlreadyLaunched { run_id: run_id.clone(), status: status.to_string() });
    }
    if JobStatus::parse(status) != Some(JobStatus::Waiting) {
        return ClaimDecision::Skip(SkipReason::Status(status.to_string()));
    }
    match &snapshot.submit_lease {
        None => ClaimDecision::TakeOver(None),
        Some(lease) => match DateTime::parse_from_rfc3339(&lease.expires_at) {
            Ok(expires) if expires.with_timezone(&Utc) > now => ClaimDecision::LeaseHeld(expires.with_timezone(&Utc)),
            // Expired, or unreadable (treated as expired: a lease must never block a job forever).
            _ => ClaimDecision::TakeOver(Some(lease.clone())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn snapshot(status: &str, run: Option<&str>, lease_expires: Option<&str>) -> SubmitSnapshot {
        SubmitSnapshot {
            job_status: Some(status.into()),
            spark_application_id: run.map(str::to_string),
            submit_lease: lease_expires.map(|e| SubmitLease { owner: "other".into(), claimed_at: timestamp(at(0)), expires_at: e.into() }),
        }
    }

    #[test]
    fn decision_table() {
        let now = at(100);
        let live = timestamp(at(160));
        let expired = timestamp(at(99));
        let lease = |e: &str| Some(SubmitLease { owner: "other".into(), claimed_at: timestamp(at(0)), expires_at: e.into() });
        let cases: Vec<(Option<SubmitSnapshot>, ClaimDecision)> = vec![
            (None, ClaimDecision::Skip(SkipReason::Missing)),
            (Some(snapshot("WAITING", Some("run-1"), None)), ClaimDecision::Skip(SkipReason::AlreadyLaunched { run_id: "run-1".into(), status: "WAITING".into() })),
            (Some(snapshot("RUNNING", Some("run-1"), None)), ClaimDecision::Skip(SkipReason::AlreadyLaunched { run_id: "run-1".into(), status: "RUNNING".into() })),
            (Some(snapshot("CANCELLED", None, None)), ClaimDecision::Skip(SkipReason::Status("CANCELLED".into()))),
            (Some(snapshot("ERROR", None, Some(&live))), ClaimDecision::Skip(SkipReason::Status("ERROR".into()))),
            (Some(snapshot("CREATED", None, None)), ClaimDecision::Skip(SkipReason::Status("CREATED".into()))),
            (Some(snapshot("WAITING", None, None)), ClaimDecision::TakeOver(None)),
            (Some(snapshot("WAITING", None, Some(&expired))), ClaimDecision::TakeOver(lease(&expired))),
            (Some(snapshot("WAITING", None, Some("garbage"))), ClaimDecision::TakeOver(lease("garbage"))),
            (Some(snapshot("WAITING", None, Some(&live))), ClaimDecision::LeaseHeld(at(160))),
        ];
        for (snap, expected) in cases {
            assert_eq!(decide_claim(snap.as_ref(), now), expected, "{snap:?}");
        }
    }

    #[test]
    fn a_job_is_done_when_gone_or_final_run_or_not() {
        let launched = |status: &str| SkipReason::AlreadyLaunched { run_id: "run-1".into(), status: status.into() };
        let cases = [
            (SkipReason::Missing, true),
            (launched("COMPLETE"), true),
            (launched("CANCELLED"), true),
            (launched("RUNNING"), false),
            (launched("WAITING"), false),
            (SkipReason::Status("ERROR".into()), true),
            (SkipReason::Status("CREATED".into()), false),
            (SkipReason::Status("garbled".into()), false),
        ];
        for (reason, done) in cases {
            assert_eq!(reason.job_is_done(), done, "{reason:?}");
        }
    }

    #[test]
    fn lease_outlives_the_deadline_by_the_skew_margin() {
        let lease = new_lease("me", at(0), at(60));
        assert_eq!(lease.claimed_at, timestamp(at(0)));
        assert_eq!(lease.expires_at, timestamp(at(65)));
    }
}
