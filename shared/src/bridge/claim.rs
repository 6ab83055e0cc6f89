//! Claiming a model-manage job for this runtime, and telling whose claim a WAITING job holds.
//!
//! A claim is a PATCH of `jobStatus: WAITING`, `jobWaitTime` (epoch ms) and `jobMessages` with one
//! line naming the claimant, sent with `If-Match` on the job's version, so of two pollers (or
//! runtimes) only one wins: the other gets 412 (or 409) and skips the job. The line is how a later
//! poll recognises its own claim whose row was never written (a crash between the two) and
//! finishes it, and another runtime's claim, which it never takes.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::job_mapping::{messages, status};
use crate::job::record::{epoch_millis, job_message, JobStatus, MessageLevel};

/// What every claim line says before the claimant (the rest of the line is for people).
const CLAIM_TAG: &str = "[claimed by modelop-spark-serverless ";

/// Who claims: the OAuth2 client and the jobs table, so two deployments of this service against
/// one ModelOp Center (two tables) never finish each other's claims.
pub fn claimant(client_id: &str, jobs_table: &str) -> String {
    format!("{client_id}@{jobs_table}")
}

fn tag(claimant: &str) -> String {
    format!("{CLAIM_TAG}{claimant}]")
}

/// The `jobMessages` line of a claim: `"<time> [info] claimed for AWS EMR Serverless [claimed by
/// modelop-spark-serverless <claimant>]"`.
pub fn claim_line(at: DateTime<Utc>, claimant: &str) -> String {
    job_message(at, MessageLevel::Info, &format!("claimed for AWS EMR Serverless {}", tag(claimant)))
}

/// Whose claim a job holds, by its latest claim line: `Some(true)` this claimant's, `Some(false)`
/// another's, `None` no claim line (a job another runtime took without one).
pub fn claimed_by(job: &Value, claimant: &str) -> Option<bool> {
    let own = tag(claimant);
    messages(job).iter().rev().find(|line| line.contains(CLAIM_TAG)).map(|line| line.contains(&own))
}

/// What a poll does with a model-manage job of this runtime (see [`super::job_mapping::is_candidate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// CREATED: claim it, then write its row.
    Claim,
    /// WAITING under this claimant's claim: write its row if it has none (a claim whose row was
    /// never written).
    FinishClaim,
    /// Leave it: why.
    Skip(SkipReason),
}

/// Why a poll leaves a job alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// WAITING under another runtime's claim (or none this service wrote).
    OtherRuntime,
    /// A status a poll never acts on (RUNNING, final, unknown).
    Status(Option<JobStatus>),
}

/// The claim rule: CREATED is claimed; WAITING is finished only when the claim is this
/// claimant's; everything else is left.
pub fn decide_claim(job: &Value, claimant: &str) -> ClaimDecision {
    match status(job) {
        Some(JobStatus::Created) => ClaimDecision::Claim,
        Some(JobStatus::Waiting) if claimed_by(job, claimant) == Some(true) => ClaimDecision::FinishClaim,
        Some(JobStatus::Waiting) => ClaimDecision::Skip(SkipReason::OtherRuntime),
        other => ClaimDecision::Skip(SkipReason::Status(other)),
    }
}

/// The job's version as an entity tag for `If-Match` (Spring Data REST: the ETag of an entity with
/// a `@Version` is its version, quoted); `None` when the job has no version.
pub fn if_match(job: &Value) -> Option<String> {
    job.get("version").and_then(Value::as_i64).map(|v| format!("\"{v}\""))
}

/// The claim's PATCH body: `jobStatus` WAITING, `jobWaitTime` (epoch ms) and the job's messages
/// with the claim line appended (a PATCH replaces a list whole).
pub fn claim_patch(job: &Value, at: DateTime<Utc>, claimant: &str) -> Map<String, Value> {
    let mut lines = messages(job);
    lines.push(claim_line(at, claimant));
    patch([("jobStatus", json!(JobStatus::Waiting.as_str())), ("jobWaitTime", json!(epoch_millis(at))), ("jobMessages", json!(lines))])
}

/// The PATCH that ends a job this runtime cannot take in ERROR: `jobStatus` ERROR, `jobResult`
/// UNKNOWN, `jobEndTime` and an error line saying why.
pub fn error_patch(job: &Value, at: DateTime<Utc>, reason: &str) -> Map<String, Value> {
    let mut lines = messages(job);
    lines.push(job_message(at, MessageLevel::Error, &format!("AWS EMR Serverless runtime: {reason}")));
    patch([
        ("jobStatus", json!(JobStatus::Error.as_str())),
        ("jobResult", json!(super::write_back::RESULT_UNKNOWN)),
        ("jobEndTime", json!(epoch_millis(at))),
        ("jobMessages", json!(lines)),
    ])
}

fn patch<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ME: &str = "internal-client@jobs";

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 20, 0, 1).unwrap()
    }

    fn job(status: &str, lines: &[String]) -> Value {
        json!({"id": "j", "version": 3, "jobStatus": status, "jobMessages": lines})
    }

    #[test]
    fn the_claim_rule_tells_own_unfinished_claims_from_another_runtimes() {
        let mine = claim_line(at(), ME);
        let theirs = claim_line(at(), "internal-client@other-table");
        let cases = [
            (job("CREATED", &[]), ClaimDecision::Claim),
            (job("CREATED", std::slice::from_ref(&theirs)), ClaimDecision::Claim),
            (job("WAITING", std::slice::from_ref(&mine)), ClaimDecision::FinishClaim),
            (job("WAITING", &[mine.clone(), "later line".into()]), ClaimDecision::FinishClaim),
            (job("WAITING", std::slice::from_ref(&theirs)), ClaimDecision::Skip(SkipReason::OtherRuntime)),
            // A re-claim by another after ours (the job went back to CREATED in between): theirs now.
            (job("WAITING", &[mine.clone(), theirs.clone()]), ClaimDecision::Skip(SkipReason::OtherRuntime)),
            (job("WAITING", &["2026/11/23 20:00:00 [info] taken by ModelOp's own runtime".into()]), ClaimDecision::Skip(SkipReason::OtherRuntime)),
            (job("RUNNING", std::slice::from_ref(&mine)), ClaimDecision::Skip(SkipReason::Status(Some(JobStatus::Running)))),
            (job("CANCELLED", &[]), ClaimDecision::Skip(SkipReason::Status(Some(JobStatus::Cancelled)))),
            (job("PAUSED", &[]), ClaimDecision::Skip(SkipReason::Status(None))),
        ];
        for (job, expected) in cases {
            assert_eq!(decide_claim(&job, ME), expected, "{job}");
        }
    }

    /// The claimant names the client and the table: a second deployment (another table) with the
    /// same OAuth2 client is another claimant, whose claims this one never finishes.
    #[test]
    fn a_claimant_is_the_client_at_the_jobs_table() {
        assert_eq!(claimant("internal-client", "jobs"), ME);
        let other_table = claimant("internal-client", "other-table");
        assert_ne!(other_table, ME);
        let theirs = job("WAITING", &[claim_line(at(), &other_table)]);
        assert_eq!(decide_claim(&theirs, ME), ClaimDecision::Skip(SkipReason::OtherRuntime));
        assert_eq!(claimed_by(&theirs, &other_table), Some(true));
    }

    #[test]
    fn a_claim_patch_sets_waiting_its_time_and_appends_the_claim_line() {
        let patch = claim_patch(&job("CREATED", &["created by ModelOp".into()]), at(), ME);
        assert_eq!(
            Value::Object(patch),
            json!({
                "jobStatus": "WAITING",
                "jobWaitTime": 1_795_464_001_000_i64,
                "jobMessages": ["created by ModelOp", "2026/11/23 20:00:01 [info] claimed for AWS EMR Serverless [claimed by modelop-spark-serverless internal-client@jobs]"]
            })
        );
        assert_eq!(if_match(&job("CREATED", &[])).as_deref(), Some("\"3\""));
        assert_eq!(if_match(&json!({"id": "j"})), None);
    }

    #[test]
    fn an_error_patch_names_why() {
        let patch = error_patch(&job("CREATED", &[]), at(), "the job document is too large");
        assert_eq!(
            Value::Object(patch),
            json!({
                "jobStatus": "ERROR", "jobResult": "UNKNOWN", "jobEndTime": 1_795_464_001_000_i64,
                "jobMessages": ["2026/11/23 20:00:01 [error] AWS EMR Serverless runtime: the job document is too large"]
            })
        );
    }
}
