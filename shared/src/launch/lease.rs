//! The submit lease rule: who may launch a job that is already WAITING, and the records of a
//! claim and a launch. Pure, so the whole decision table is tested without a table.

use chrono::{DateTime, Duration, Utc};

use serde::{Deserialize, Serialize};

use crate::job::record::{JobHeader, JobStatus, Timestamp};

/// A submit invocation's claim on a job between CREATED -> WAITING and the recorded run id. It
/// expires with the invocation's deadline, so a retry after a crash can take the job over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitLease {
    /// The Lambda request id of the invocation holding it.
    pub owner: String,
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub claimed_at: Option<Timestamp>,
    /// Unreadable is `None`, and a lease without an end counts as expired.
    #[serde(default, deserialize_with = "crate::job::record::lenient")]
    pub expires_at: Option<Timestamp>,
}

/// What the submit function needs to know of a job row to decide whether it may launch it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitSnapshot {
    #[serde(flatten)]
    pub header: JobHeader,
    #[serde(default)]
    pub submit_lease: Option<SubmitLease>,
}

/// What the submit function writes once the run is started. The run id, the application and the
/// staging URI are always written; the rest is left out or shortened on a row near DynamoDB's item
/// limit ([`LaunchRecord::at_detail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRecord {
    pub run_id: String,
    pub application_id: String,
    pub staging_uri: String,
    pub at: DateTime<Utc>,
    /// `ignoredJobParameters`: job parameters with no meaning on EMR Serverless.
    pub ignored_parameters: Vec<crate::launch::spark_conf::IgnoredParameter>,
    /// Appended to ModelOp's `jobMessages`; the first says the run started.
    pub messages: Vec<String>,
    /// `runControls`: the run controls the run started with, and where each came from.
    pub run_controls: Option<crate::launch::run_controls::RunControls>,
    /// `emrApplicationArchitecture`: the architecture of the application the run is on (its
    /// price depends on it).
    pub architecture: Option<crate::launch::run_controls::Architecture>,
    /// `jobPermissions`: whether the run is scoped, and its policy.
    pub job_permissions: Option<crate::launch::job_policy::JobPermissions>,
}

impl LaunchRecord {
    /// The record at `detail`, for a row DynamoDB refused the larger one on for its size:
    /// - `Full`: all of it;
    /// - `Short`: `jobPermissions` without the policy's text (its SHA-256, size and ARNs stay), no
    ///   `ignoredJobParameters`, and one `jobMessages` line, `note` (which says so);
    /// - `Core`: the run id, application, staging URI and architecture only (with the status
    ///   entry every launch writes).
    pub fn at_detail(&self, detail: crate::job::item_size::WriteDetail, note: &str) -> LaunchRecord {
        use crate::job::item_size::WriteDetail;
        let mut record = self.clone();
        match detail {
            WriteDetail::Full => {}
            WriteDetail::Short => {
                record.ignored_parameters.clear();
                record.messages = vec![note.to_string()];
                if let Some(permissions) = record.job_permissions.as_mut() {
                    permissions.policy = None;
                }
            }
            WriteDetail::Core => {
                record.ignored_parameters.clear();
                record.messages.clear();
                record.run_controls = None;
                record.job_permissions = None;
            }
        }
        record
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Recorded; the job's status after the write (the monitor may already have moved it on, or
    /// the user may have cancelled it meanwhile).
    Recorded(Option<JobStatus>),
    /// The condition failed although the row exists: the run id recorded on it, if any (a
    /// different run, or none when the job moved on without one).
    OtherRunRecorded(Option<String>),
    /// The row was deleted meanwhile.
    JobMissing,
}

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
            // A lease that ends this very instant is over; one that ends a second later is not.
            (Some(snapshot("WAITING", None, Some(&Timestamp(at(100)).to_string()))), ClaimDecision::TakeOver(lease(&Timestamp(at(100)).to_string()))),
            (Some(snapshot("WAITING", None, Some(&Timestamp(at(101)).to_string()))), ClaimDecision::LeaseHeld(at(101))),
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
