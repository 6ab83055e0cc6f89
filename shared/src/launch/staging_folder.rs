//! A job's staging folder and when it is released, without I/O: which stream transitions release a job's resources, which S3
//! prefix belongs to a job, and which staging folders the orphan sweep may delete. Every path
//! that reaches a DeleteObjects call is decided here, so the safety checks are tested as a table.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::config::StagingLocation;
use crate::job::record::{validate_job_id, InvalidJobId, JobHeader, JobStatus};
use crate::text::printable;
use crate::job::s3_uri::S3Uri;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedPage {
    /// The page's objects, in key order.
    pub objects: Vec<ListedObject>,
    /// The continuation token of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// A key a DeleteObjects response reported as not deleted, with S3's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelete {
    pub key: String,
    pub code: String,
    pub message: String,
}

/// What the cleanup function needs to know of a job row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSnapshot {
    #[serde(flatten)]
    pub header: JobHeader,
}

/// What a MODIFY of a job row asks the cleanup function to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupAction {
    /// Not a transition into a final state: nothing to do.
    Ignore,
    /// The job just ended: delete its staging folder.
    Clean,
    /// ModelOp Center cancelled a job that may have a run going: cancel the run, then clean.
    CancelRunAndClean,
}

/// The transition rule: act once, when a job enters COMPLETE, ERROR or CANCELLED from a state
/// that was not final. A missing or unknown old status counts as not final, because cleaning is
/// idempotent while missing a clean leaves files behind until the orphan sweep.
pub fn decide_release(old: Option<JobStatus>, new: Option<JobStatus>) -> CleanupAction {
    let Some(new) = new.filter(|s| s.is_terminal()) else {
        return CleanupAction::Ignore;
    };
    match old {
        Some(old) if old.is_terminal() => CleanupAction::Ignore,
        Some(JobStatus::Waiting | JobStatus::Running) if new == JobStatus::Cancelled => CleanupAction::CancelRunAndClean,
        _ => CleanupAction::Clean,
    }
}

/// Why a job's staging folder may not be deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeTarget {
    #[error("refusing to delete: {0}")]
    InvalidJobId(#[from] InvalidJobId),
    #[error("refusing to delete: stagingUri {uri:?} is not this job's staging folder {expected}")]
    ForeignStagingUri { uri: String, expected: String },
}

/// The one folder cleanup may empty for a job: `s3://<bucket>/<prefix><id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupTarget {
    pub bucket: String,
    /// Always `<staging prefix><valid job id>/`: never empty, never a parent of another job's folder.
    pub prefix: String,
}

impl CleanupTarget {
    pub fn uri(&self) -> String {
        S3Uri { bucket: self.bucket.clone(), key: self.prefix.clone() }.to_string()
    }
}

/// The folder of `job_id` under the configured staging location, after the id rule (an empty id
/// would otherwise turn into "the whole staging prefix").
pub fn job_target(staging: &StagingLocation, job_id: &str) -> Result<CleanupTarget, UnsafeTarget> {
    validate_job_id(job_id)?;
    Ok(CleanupTarget { bucket: staging.bucket.clone(), prefix: staging.job_prefix(job_id) })
}

/// The folder to empty for a job whose row says `staging_uri`. The recorded URI is only accepted
/// when it is exactly the folder this service would have written for that id: anything else (another
/// bucket, another prefix, another job's folder, `..`, a missing trailing slash that would also
/// match `<id>0/`) is refused rather than trusted.
pub fn cleanup_target(staging: &StagingLocation, job_id: &str, staging_uri: Option<&str>) -> Result<CleanupTarget, UnsafeTarget> {
    let target = job_target(staging, job_id)?;
    let Some(uri) = staging_uri else {
        return Ok(target);
    };
    let matches = S3Uri::parse(uri).is_some_and(|parsed| parsed.bucket == target.bucket && parsed.key == target.prefix);
    if matches {
        Ok(target)
    } else {
        Err(UnsafeTarget::ForeignStagingUri { uri: printable(uri), expected: target.uri() })
    }
}

/// The job id of a folder the sweep listed (a common prefix `<staging prefix><id>/`), or `None`
/// for anything that is not exactly one valid job folder.
pub fn job_id_of_folder<'a>(staging: &StagingLocation, folder: &'a str) -> Option<&'a str> {
    let id = folder.strip_prefix(staging.prefix.as_str())?.strip_suffix('/')?;
    validate_job_id(id).ok().map(|()| id)
}

/// What the sweep knows of a staging folder's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderOwner {
    /// No row with that id.
    Missing,
    /// The row's status; `None` when absent or not one of ours.
    Row(Option<JobStatus>),
}

/// The orphan rule: a folder is deleted only when nothing was written to it for `min_age` and its
/// job is gone or finished. A live job's folder is kept however old, since its run still reads it.
pub fn is_orphan(owner: FolderOwner, newest_object: Option<DateTime<Utc>>, now: DateTime<Utc>, min_age: Duration) -> bool {
    let old_enough = newest_object.is_none_or(|at| now - at >= min_age);
    let finished = match owner {
        FolderOwner::Missing => true,
        FolderOwner::Row(status) => status.is_some_and(JobStatus::is_terminal),
    };
    old_enough && finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    fn staging() -> StagingLocation {
        StagingLocation { bucket: "modelop-staging".into(), prefix: "modelop-spark-serverless/".into() }
    }

    #[test]
    fn transition_rule() {
        let cases = [
            (Some(Running), Some(Complete), CleanupAction::Clean),
            (Some(Waiting), Some(Error), CleanupAction::Clean),
            (Some(Created), Some(Error), CleanupAction::Clean),
            (Some(Created), Some(Cancelled), CleanupAction::Clean),
            (Some(Running), Some(Cancelled), CleanupAction::CancelRunAndClean),
            (Some(Waiting), Some(Cancelled), CleanupAction::CancelRunAndClean),
            (None, Some(Complete), CleanupAction::Clean),
            (Some(Complete), Some(Complete), CleanupAction::Ignore),
            (Some(Error), Some(Cancelled), CleanupAction::Ignore),
            (Some(Cancelled), Some(Cancelled), CleanupAction::Ignore),
            (Some(Waiting), Some(Running), CleanupAction::Ignore),
            (Some(Created), Some(Waiting), CleanupAction::Ignore),
            (Some(Running), None, CleanupAction::Ignore),
            (None, None, CleanupAction::Ignore),
        ];
        for (old, new, expected) in cases {
            assert_eq!(decide_release(old, new), expected, "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn prefix_is_the_job_folder() {
        let target = job_target(&staging(), "job-1").unwrap();
        assert_eq!(target.prefix, "modelop-spark-serverless/job-1/");
        assert_eq!(target.uri(), "s3://modelop-staging/modelop-spark-serverless/job-1/");
        let flat = StagingLocation { bucket: "b".into(), prefix: String::new() };
        assert_eq!(job_target(&flat, "job-1").unwrap().prefix, "job-1/", "an empty staging prefix still scopes to the job");
    }

    #[test]
    fn hostile_ids_are_refused() {
        for id in ["", ".", "..", "a/../b", "job-1/", "/", "job 1", "../job-1", "*", &"x".repeat(65)] {
            let err = cleanup_target(&staging(), id, None).expect_err(id);
            assert!(matches!(err, UnsafeTarget::InvalidJobId(_)), "{id:?}: {err}");
            assert!(err.to_string().starts_with("refusing to delete"), "{err}");
        }
    }

    #[test]
    fn staging_uri_must_be_exactly_the_jobs_folder() {
        let ok = "s3://modelop-staging/modelop-spark-serverless/job-1/";
        assert_eq!(cleanup_target(&staging(), "job-1", Some(ok)).unwrap().prefix, "modelop-spark-serverless/job-1/");
        let refused = [
            "s3://modelop-staging/modelop-spark-serverless/job-1",
            "s3://modelop-staging/modelop-spark-serverless/job-10/",
            "s3://modelop-staging/modelop-spark-serverless/",
            "s3://modelop-staging/modelop-spark-serverless",
            "s3://modelop-staging/",
            "s3://modelop-staging",
            "s3://other-bucket/modelop-spark-serverless/job-1/",
            "s3://modelop-staging/other-prefix/job-1/",
            "s3://modelop-staging/modelop-spark-serverless/job-1/../job-2/",
            "s3://modelop-staging/modelop-spark-serverless/job-1/results/",
            "s3://modelop-staging/modelop-spark-serverless//job-1/",
            "s3://modelop-staging/Modelop-spark-serverless/job-1/",
            "https://modelop-staging.s3.amazonaws.com/modelop-spark-serverless/job-1/",
            "",
        ];
        for uri in refused {
            let err = cleanup_target(&staging(), "job-1", Some(uri)).expect_err(uri);
            assert!(matches!(&err, UnsafeTarget::ForeignStagingUri { .. }), "{uri}: {err}");
            let message = err.to_string();
            assert!(message.contains(&format!("{uri:?}")) && message.contains("modelop-spark-serverless/job-1/"), "{message}");
        }
    }

    #[test]
    fn only_single_valid_job_folders_are_swept() {
        let cases = [
            ("modelop-spark-serverless/job-1/", Some("job-1")),
            ("modelop-spark-serverless/job-10/", Some("job-10")),
            ("modelop-spark-serverless//", None),
            ("modelop-spark-serverless/../", None),
            ("modelop-spark-serverless/job-1", None),
            ("other/job-1/", None),
            ("modelop-spark-serverless/a b/", None),
        ];
        for (folder, expected) in cases {
            assert_eq!(job_id_of_folder(&staging(), folder), expected, "{folder}");
        }
    }

    #[test]
    fn orphan_rule() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().with_timezone(&Utc);
        let day = Duration::hours(24);
        let old = Some(now - Duration::hours(25));
        let fresh = Some(now - Duration::hours(1));
        let cases = [
            (FolderOwner::Missing, old, true),
            (FolderOwner::Row(Some(Complete)), old, true),
            (FolderOwner::Row(Some(Error)), old, true),
            (FolderOwner::Row(Some(Cancelled)), old, true),
            (FolderOwner::Missing, fresh, false),
            (FolderOwner::Row(Some(Complete)), fresh, false),
            (FolderOwner::Row(Some(Running)), old, false),
            (FolderOwner::Row(Some(Waiting)), old, false),
            (FolderOwner::Row(Some(Created)), old, false),
            (FolderOwner::Row(None), old, false),
        ];
        for (owner, newest, expected) in cases {
            assert_eq!(is_orphan(owner, newest, now, day), expected, "{owner:?} {newest:?}");
        }
        assert!(is_orphan(FolderOwner::Missing, Some(now), now, Duration::zero()), "a zero minimum age sweeps at once");
    }
}
