//! The submit lease rule: who may launch a job that is already WAITING. Pure, so the whole
//! decision table is tested without a table.

use chrono::{DateTime, Duration, Utc};

use crate::job::{JobStatus, Timestamp};
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
    /// A run is recorded; the job's status as read (`None`: unknown text), and the run's
    /// application when recorded.
    AlreadyLaunched { run_id: String, application_id: Option<String>, status: Option<JobStatus> },
    /// Not WAITING: the job's status as read (`None`: unknown text).
    Status(Option<JobStatus>),
}

impl SkipReason {
    /// Whether the job is gone or final: nothing this delivery staged can be of use to it.
    pub fn job_is_done(&self) -> bool {
        match self {
            SkipReason::Missing => true,
            SkipReason::AlreadyLaunched { status, .. } | SkipReason::Status(status) => status.is_some_and(JobStatus::is_terminal),
        }
    }
}

/// A lease for an invocation that must finish by `deadline`.
pub fn new_lease(owner: &str, now: DateTime<Utc>, deadline: DateTime<Utc>) -> SubmitLease {
    SubmitLease { owner: owner.to_string(), claimed_at: Some(Timestamp(now)), expires_at: Some(Timestamp(deadline + CLOCK_SKEW_MARGIN)) }
}

pub fn decide_claim(snapshot: Option<&SubmitSnapshot>, now: DateTime<Utc>) -> ClaimDecision {
    let Some(snapshot) = snapshot else {
        return ClaimDecision::Skip(SkipReason::Missing);
    };
    let status = snapshot.header.status();
    if let Some(run_id) = &snapshot.header.spark_application_id {
        let application_id = snapshot.header.emr_application_id.clone();
        return ClaimDecision::Skip(SkipReason::AlreadyLaunched { run_id: run_id.clone(), application_id, status });
    }
    if status != Some(JobStatus::Waiting) {
        return ClaimDecision::Skip(SkipReason::Status(status));
    }
    match &snapshot.submit_lease {
        None => ClaimDecision::TakeOver(None),
        Some(lease) => match lease.expires_at {
            Some(expires) if expires.0 > now => ClaimDecision::LeaseHeld(expires.0),
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

    /// A snapshot as read from the row: the lease's end as the row holds it (text).
    fn snapshot(status: &str, run: Option<&str>, lease_expires: Option<&str>) -> SubmitSnapshot {
        let mut row = serde_json::json!({ "jobStatus": status, "sparkApplicationId": run });
        if let Some(expires) = lease_expires {
            row["submitLease"] = lease_row(expires);
        }
        serde_json::from_value(row).unwrap()
    }

    fn lease_row(expires: &str) -> serde_json::Value {
        serde_json::json!({ "owner": "other", "claimedAt": Timestamp(at(0)).to_string(), "expiresAt": expires })
    }

    #[test]
    fn decision_table() {
        let now = at(100);
        let live = Timestamp(at(160)).to_string();
        let expired = Timestamp(at(99)).to_string();
        let lease = |e: &str| Some(serde_json::from_value::<SubmitLease>(lease_row(e)).unwrap());
        let launched = |status| ClaimDecision::Skip(SkipReason::AlreadyLaunched { run_id: "run-1".into(), application_id: None, status: Some(status) });
        let cases: Vec<(Option<SubmitSnapshot>, ClaimDecision)> = vec![
            (None, ClaimDecision::Skip(SkipReason::Missing)),
            (Some(snapshot("WAITING", Some("run-1"), None)), launched(JobStatus::Waiting)),
            (Some(snapshot("RUNNING", Some("run-1"), None)), launched(JobStatus::Running)),
            (Some(snapshot("CANCELLED", None, None)), ClaimDecision::Skip(SkipReason::Status(Some(JobStatus::Cancelled)))),
            (Some(snapshot("ERROR", None, Some(&live))), ClaimDecision::Skip(SkipReason::Status(Some(JobStatus::Error)))),
            (Some(snapshot("CREATED", None, None)), ClaimDecision::Skip(SkipReason::Status(Some(JobStatus::Created)))),
            (Some(snapshot("PAUSED", None, None)), ClaimDecision::Skip(SkipReason::Status(None))),
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
        let launched = |status| SkipReason::AlreadyLaunched { run_id: "run-1".into(), application_id: None, status: Some(status) };
        let cases = [
            (SkipReason::Missing, true),
            (launched(JobStatus::Complete), true),
            (launched(JobStatus::Cancelled), true),
            (launched(JobStatus::Running), false),
            (launched(JobStatus::Waiting), false),
            (SkipReason::Status(Some(JobStatus::Error)), true),
            (SkipReason::Status(Some(JobStatus::Created)), false),
            (SkipReason::Status(None), false),
        ];
        for (reason, done) in cases {
            assert_eq!(reason.job_is_done(), done, "{reason:?}");
        }
    }

    #[test]
    fn lease_outlives_the_deadline_by_the_skew_margin() {
        let lease = new_lease("me", at(0), at(60));
        assert_eq!(lease.claimed_at, Some(Timestamp(at(0))));
        assert_eq!(lease.expires_at, Some(Timestamp(at(65))));
    }
}
