//! `doctor`: checks what the other commands rely on, one line each: the jobs table (its stream
//! and the two indexes the contract names), the log group, the application (found by name as
//! submit finds it) with its release against the features in use (grace periods from emr-7.9.0,
//! retries from emr-7.1.0) and its managed log storage (the Spark UI), and the permissions each
//! command needs, probed with calls that change nothing (a read of a job that does not exist,
//! the cancel's conditional write on it, which its condition refuses).

use serde::Serialize;

use shared::aws::{AwsError, AwsErrorKind};
use shared::launch::run_controls::{ReleaseLabel, GRACE_PERIOD_SINCE, RETRIES_SINCE};
use shared::ports::{ApplicationCatalog, JobRunReader};

use crate::cli::DoctorArgs;
use crate::context::{Aws, Context};
use crate::exit::{CommandResult, Exit};
use crate::output::{paint, status_style, WARN};

/// A job id no job has: the probes' target.
const PROBE_ID: &str = "modelop-spark-doctor-probe";
/// A run id no run has.
const PROBE_RUN_ID: &str = "00000000000000000";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
}

fn check(name: &str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check { name: name.to_string(), verdict, detail: detail.into() }
}

/// A permission probe's answer: allowed unless AWS said access is denied.
fn probe(name: &str, result: Result<(), AwsError>) -> Check {
    match result {
        Ok(()) => check(name, Verdict::Ok, "allowed"),
        Err(e) if e.code.as_deref().is_some_and(|c| c.contains("AccessDenied") || c.contains("Unauthorized")) => check(name, Verdict::Fail, e.to_string()),
        // Not found, a condition or validation refused: the call was authorized.
        Err(e) if matches!(e.kind, AwsErrorKind::NotFound | AwsErrorKind::ConditionFailed | AwsErrorKind::Permanent) => check(name, Verdict::Ok, "allowed"),
        Err(e) => check(name, Verdict::Warn, format!("could not tell: {e}")),
    }
}

/// Runs `doctor`.
pub async fn run(ctx: &Context, args: DoctorArgs) -> CommandResult {
    let aws = ctx.aws().await?;
    let mut checks = vec![table_check(&aws).await, log_group_check(&aws).await];
    let application = match args.app.as_deref() {
        Some(name) => aws.runs.find_application(name).await.map_err(|e| checks.push(check("application", Verdict::Fail, e.to_string()))).ok().flatten().map(|a| (name, a.id)),
        None => {
            checks.push(check("application", Verdict::Warn, "not checked: pass --app or set EMR_DEFAULT_APP_NAME"));
            None
        }
    };
    match &application {
        Some((name, id)) => checks.extend(application_checks(&aws, name, id).await),
        None if args.app.is_some() && !checks.iter().any(|c| c.name == "application") => {
            checks.push(check("application", Verdict::Warn, format!("no live application named {:?}: submit creates it on the first job", args.app.as_deref().unwrap_or_default())));
        }
        None => {}
    }
    checks.extend(permission_checks(&aws, application.as_ref().map(|(_, id)| id.as_str())).await);
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    if ctx.printer.is_text() {
        ctx.printer.text(&render(&checks));
    } else {
        ctx.printer.list(&checks);
    }
    Ok(if failed { Exit::Client } else { Exit::Ok })
}

async fn table_check(aws: &Aws) -> Check {
    let table = match aws.store.table_shape().await {
        Ok(Some(table)) => table,
        Ok(None) => return check("table", Verdict::Fail, "DescribeTable gave no table"),
        Err(e) => return check("table", Verdict::Fail, e.to_string()),
    };
    let mut problems = Vec::new();
    if table.stream_view_type.as_deref() != Some("NEW_AND_OLD_IMAGES") {
        problems.push(format!("stream is {} (submit and cleanup need NEW_AND_OLD_IMAGES)", table.stream_view_type.as_deref().unwrap_or("off")));
    }
    for (index, keys) in [("byJobStatus", vec!["jobStatus", "updatedAt"]), ("bySparkApplicationId", vec!["sparkApplicationId"])] {
        match table.indexes.iter().find(|g| g.name == index) {
            None => problems.push(format!("no index {index}")),
            Some(gsi) => {
                let names: Vec<&str> = gsi.keys.iter().map(String::as_str).collect();
                if names != keys || !gsi.projects_all {
                    problems.push(format!("index {index} is keyed {names:?}{}, the contract says {keys:?} with all attributes", if gsi.projects_all { "" } else { " without all attributes" }));
                }
            }
        }
    }
    match problems.is_empty() {
        true => check("table", Verdict::Ok, format!("{}: stream NEW_AND_OLD_IMAGES, indexes byJobStatus and bySparkApplicationId", aws.table)),
        false => check("table", Verdict::Fail, format!("{}: {}", aws.table, problems.join("; "))),
    }
}

async fn log_group_check(aws: &Aws) -> Check {
    match aws.logs.log_group_exists(&aws.log_group).await {
        Ok(true) => check("log group", Verdict::Ok, format!("{} exists", aws.log_group)),
        Ok(false) => check("log group", Verdict::Warn, format!("{} does not exist yet (EMR creates it with the first run's logs; set --log-group to the stack's EMR_LOG_GROUP)", aws.log_group)),
        Err(e) => check("log group", Verdict::Fail, e.to_string()),
    }
}

async fn application_checks(aws: &Aws, name: &str, id: &str) -> Vec<Check> {
    let app = match aws.runs.application_details(id).await {
        Ok(app) => app,
        Err(e) => return vec![check("application", Verdict::Fail, e.to_string())],
    };
    let mut checks = vec![check("application", Verdict::Ok, format!("{name} ({id}), {}, {}", app.state, app.release_label))];
    checks.push(release_check(&app.release_label, &|name| std::env::var(name).ok()));
    checks.push(match app.managed_log_storage {
        Some(false) => check("spark ui", Verdict::Warn, "managed log storage is off on the application: `ui` has no Spark UI for its runs"),
        _ => check("spark ui", Verdict::Ok, "managed log storage on (EMR's default): `ui` can mint links"),
    });
    checks
}

/// The application's release against the run controls the configuration (this environment's
/// `EMR_CANCEL_GRACE_PERIOD_SECONDS`, `EMR_MAX_ATTEMPTS`) uses.
pub fn release_check(label: &str, env: &dyn Fn(&str) -> Option<String>) -> Check {
    let Some(release) = ReleaseLabel::parse(label) else { return check("release", Verdict::Warn, format!("{label:?} is not a release label this code reads")) };
    let number = |name: &str| env(name).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(0);
    let mut missing = Vec::new();
    if number(shared::config::EMR_CANCEL_GRACE_PERIOD_SECONDS) > 0 && release < GRACE_PERIOD_SINCE {
        missing.push(format!("cancel grace periods (EMR_CANCEL_GRACE_PERIOD_SECONDS) need {GRACE_PERIOD_SINCE}"));
    }
    if number(shared::config::EMR_MAX_ATTEMPTS) > 1 && release < RETRIES_SINCE {
        missing.push(format!("retries (EMR_MAX_ATTEMPTS) need {RETRIES_SINCE}"));
    }
    let has = |since: ReleaseLabel| if release >= since { "yes" } else { "no" };
    let features = format!("retries: {} (from {RETRIES_SINCE}), cancel grace / cancel --grace: {} (from {GRACE_PERIOD_SINCE})", has(RETRIES_SINCE), has(GRACE_PERIOD_SINCE));
    match missing.is_empty() {
        true => check("release", Verdict::Ok, format!("{release}: {features}")),
        false => check("release", Verdict::Fail, format!("{release}: {}", missing.join("; "))),
    }
}

async fn permission_checks(aws: &Aws, application_id: Option<&str>) -> Vec<Check> {
    let read = aws.store.job_row::<serde_json::Value>(PROBE_ID).await.map(|_| ());
    let list = aws.store.jobs_by_status::<serde_json::Value>(shared::job::record::JobStatus::Running, None, 1, |_| true).await.map(|_| ());
    let cancel = aws.store.cancel_job(PROBE_ID, None, "doctor probe", chrono::Utc::now()).await.map(|_| ());
    let logs = aws.logs.forward_page(&aws.log_group, &format!("{PROBE_ID}/SPARK_DRIVER/stdout"), None, None).await.map(|_| ());
    let mut checks = vec![
        probe("status, watch, logs: dynamodb:GetItem", read),
        probe("ls, cost: dynamodb:Query on byJobStatus", list),
        probe("cancel: dynamodb:UpdateItem", cancel),
        probe("logs: logs:GetLogEvents", logs),
    ];
    if let Some(app) = application_id {
        let run = aws.runs.get_job_run(app, PROBE_RUN_ID).await.map(|_| ());
        checks.push(probe("status, watch, logs -f: emr-serverless:GetJobRun", run));
        let ui = aws.runs.dashboard_url(app, PROBE_RUN_ID, None).await.map(|_| ());
        checks.push(probe("ui: emr-serverless:GetDashboardForJobRun", ui));
    }
    checks
}

/// The checks as text.
pub fn render(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| {
            let mark = match c.verdict {
                Verdict::Ok => paint(status_style(Some(shared::job::record::JobStatus::Complete)), "✓"),
                Verdict::Warn => paint(WARN, "!"),
                Verdict::Fail => paint(status_style(Some(shared::job::record::JobStatus::Error)), "✗"),
            };
            format!("{mark} {:<45} {}", c.name, c.detail)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_is_checked_against_the_features_in_use() {
        let env = |grace: &'static str, attempts: &'static str| {
            move |name: &str| match name {
                "EMR_CANCEL_GRACE_PERIOD_SECONDS" => Some(grace.to_string()),
                "EMR_MAX_ATTEMPTS" => Some(attempts.to_string()),
                _ => None,
            }
        };
        assert_eq!(release_check("emr-7.9.0", &env("30", "3")).verdict, Verdict::Ok);
        let old = release_check("emr-7.5.0", &env("30", "3"));
        assert_eq!((old.verdict, old.detail.as_str()), (Verdict::Fail, "emr-7.5.0: cancel grace periods (EMR_CANCEL_GRACE_PERIOD_SECONDS) need emr-7.9.0"));
        let older = release_check("emr-7.0.0", &env("0", "2"));
        assert!(older.verdict == Verdict::Fail && older.detail.contains("retries (EMR_MAX_ATTEMPTS) need emr-7.1.0"), "{older:?}");
        let unused = release_check("emr-7.0.0", &env("0", "1"));
        assert!(unused.verdict == Verdict::Ok && unused.detail.contains("retries: no (from emr-7.1.0)"), "{unused:?}");
    }

    #[test]
    fn probes_read_denials_as_failures_and_refusals_as_allowed() {
        let error = |kind, code: &str| Err(AwsError { code: Some(code.into()), ..AwsError::new("DynamoDB", "UpdateItem", kind, "x") });
        assert_eq!(probe("p", error(AwsErrorKind::Permanent, "AccessDeniedException")).verdict, Verdict::Fail);
        assert_eq!(probe("p", error(AwsErrorKind::ConditionFailed, "ConditionalCheckFailedException")).verdict, Verdict::Ok);
        assert_eq!(probe("p", error(AwsErrorKind::NotFound, "ResourceNotFoundException")).verdict, Verdict::Ok);
        assert_eq!(probe("p", error(AwsErrorKind::Transient, "ThrottlingException")).verdict, Verdict::Warn);
        assert_eq!(probe("p", Ok(())).verdict, Verdict::Ok);
    }
}
