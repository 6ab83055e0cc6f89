//! `status ID`: one screen on a job, in at most two AWS round trips: the row (GetItem), and for a
//! job whose run is still going, GetJobRun for its live state and attempt. A final job's row
//! already holds everything (monitor wrote it), so it takes one.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use shared::outcome::job_run::{driver_log_prefix, JobRunInfo};

use crate::cli::StatusArgs;
use crate::context::{Aws, Context};
use crate::exit::{CommandResult, Exit};
use crate::output::{paint, status_style, BOLD, DIM, WARN};
use crate::row::{cost_text, human_duration, JobRow};

/// The run as GetJobRun says it now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRun {
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_details: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

impl From<&JobRunInfo> for LiveRun {
    fn from(info: &JobRunInfo) -> Self {
        LiveRun { state: info.state.clone(), state_details: info.state_details.clone(), attempt: info.attempt, started_at: info.started_at }
    }
}

/// Where to look further.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    /// The job run's page in EMR Studio, given the Studio's URL (see [`run_page`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_run: Option<String>,
    /// The EMR console's page of the run's application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// The CloudWatch log stream prefix of every attempt's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging_console: Option<String>,
}

/// `status -o json`: the row, the live run, the links and the outcome.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusReport<'a> {
    job: &'a JobRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a LiveRun>,
    links: &'a Links,
    #[serde(rename = "final")]
    is_final: bool,
    exit_code: u8,
}

/// Runs `status`.
pub async fn run(ctx: &Context, args: StatusArgs) -> CommandResult {
    let aws = ctx.aws().await?;
    let row = aws.job(&args.id).await?;
    let live = live_run(&aws, &row).await?;
    let links = links(&aws, &row, args.studio_url.as_deref());
    let exit = status_exit(&row);
    if ctx.printer.is_text() {
        ctx.printer.text(&render(&row, live.as_ref(), &links, Utc::now()));
    } else {
        ctx.printer.json(&StatusReport { job: &row, run: live.as_ref(), links: &links, is_final: row.is_final(), exit_code: exit.code() });
    }
    Ok(exit)
}

/// GetJobRun, only for a job whose run is recorded and not final (the second round trip).
pub async fn live_run(aws: &Aws, row: &JobRow) -> Result<Option<LiveRun>, crate::exit::CliError> {
    use shared::ports::JobRunReader;
    match row.run() {
        Some((app, run)) if !row.is_final() => Ok(Some(LiveRun::from(&aws.runs.get_job_run(app, run).await?))),
        _ => Ok(None),
    }
}

/// `status` exits with the outcome's code once the job is final, 0 while it goes.
pub fn status_exit(row: &JobRow) -> Exit {
    row.outcome().unwrap_or(Exit::Ok)
}

/// The job run's page in EMR Studio, where the AWS console shows EMR Serverless job runs:
/// `<studio URL>/#/serverless-applications/<application id>/<job run id>`. That shape is the one
/// public integrations build (not one AWS documents); the Studio's URL is the operator's to give
/// (`aws emr list-studios` lists it), since nothing ties a run to a Studio.
pub fn run_page(studio_url: &str, application_id: &str, run_id: &str) -> String {
    format!("{}/#/serverless-applications/{application_id}/{run_id}", studio_url.trim_end_matches('/'))
}

/// The links of a job: its run's page (in EMR Studio, when `studio_url` names it), the EMR
/// console, CloudWatch and S3 (the local stack has no console: names only).
pub fn links(aws: &Aws, row: &JobRow, studio_url: Option<&str>) -> Links {
    let region = aws.region.as_deref().unwrap_or("us-east-1");
    let console = !aws.local;
    let prefix = row.run().map(|(app, run)| driver_log_prefix(&row.id, app, run));
    let group = row.driver_logs.as_ref().and_then(|d| d.log_group_name.clone()).unwrap_or_else(|| aws.log_group.clone());
    Links {
        job_run: row.run().zip(studio_url.filter(|u| console && !u.trim().is_empty())).map(|((app, run), studio)| run_page(studio, app, run)),
        // No console URL of a job run could be verified (the console sends EMR Serverless to EMR
        // Studio), so this one stays at the application's page, the shape the console has used.
        console: row
            .run()
            .filter(|_| console)
            .map(|(app, _)| format!("https://{region}.console.aws.amazon.com/emr/home?region={region}#/serverless-applications/{app}")),
        logs: prefix.as_ref().filter(|_| console).map(|p| {
            format!(
                "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}$3FlogStreamNameFilter$3D{}",
                console_escape(&group),
                console_escape(p)
            )
        }),
        log_stream_prefix: prefix.map(|p| format!("{group} {p}")),
        staging: row.staging_uri.clone(),
        staging_console: row.staging_uri.as_deref().filter(|_| console).and_then(shared::job::s3_uri::S3Uri::parse).map(|uri| {
            format!("https://s3.console.aws.amazon.com/s3/buckets/{}?prefix={}&region={region}", uri.bucket, uri.key)
        }),
    }
}

/// The CloudWatch console's escaping of a path in its URL fragment: percent-encoding, with `%` as `$25`.
fn console_escape(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("$25{b:02X}") })
        .collect()
}

fn at(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or_else(|| "–".into())
}

/// The status screen, as text.
pub fn render(row: &JobRow, live: Option<&LiveRun>, links: &Links, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let status = row.job_status.map(|s| s.as_str()).unwrap_or("UNKNOWN");
    let emr = live.map(|l| l.state.as_str()).or(row.emr_state_shown()).map(|s| format!(" (EMR {s})")).unwrap_or_default();
    let _ = writeln!(out, "{}  {}  {}{emr}", paint(BOLD, &row.id), row.job_type.as_deref().unwrap_or("?"), paint(status_style(row.job_status), status));

    let attempt = live.and_then(|l| l.attempt).unwrap_or_else(|| row.latest_attempt()).max(row.latest_attempt());
    match row.run() {
        Some((app, run)) => {
            let _ = writeln!(out, "  run       {run} in application {app} · attempt {attempt}/{}", row.max_attempts());
        }
        None => {
            let _ = writeln!(out, "  run       none yet");
        }
    }
    let [waiting, running, ended] = row.times();
    let (queued, ran) = row.durations(now);
    let mut timeline = format!("  timeline  waiting {}", at(waiting));
    if let Some(running) = running {
        let _ = write!(timeline, " → running {} (queued {})", at(Some(running)), queued.map(human_duration).unwrap_or_default());
    }
    match ended {
        Some(ended) => {
            let ran = ran.map(|r| format!(", ran {}", human_duration(r))).unwrap_or_default();
            let _ = write!(timeline, " → ended {}{ran}", at(Some(ended)));
        }
        None if running.is_some() => {
            let _ = write!(timeline, " · running for {}", ran.map(human_duration).unwrap_or_default());
        }
        None => {
            let _ = write!(timeline, " · queued for {}", queued.map(human_duration).unwrap_or_default());
        }
    }
    let _ = writeln!(out, "{timeline}");
    if let Some(details) = live.and_then(|l| l.state_details.as_deref()) {
        let _ = writeln!(out, "  EMR says  {details}");
    }
    if !row.status_history.is_empty() {
        let steps: Vec<String> = row
            .status_history
            .iter()
            .map(|c| format!("{} {}{}", c.at.0.format("%H:%M:%S"), c.status, c.emr_state.as_deref().map(|s| format!("/{s}")).unwrap_or_default()))
            .collect();
        let _ = writeln!(out, "  history   {}", steps.join(" · "));
    }

    if !row.attempts.is_empty() {
        let _ = writeln!(out, "{}", paint(BOLD, "attempts"));
        for a in &row.attempts {
            let _ = writeln!(
                out,
                "  {:>2}  {:<10} {} → {}  {}",
                a.attempt,
                a.state.as_deref().unwrap_or("…"),
                at(a.started_at.map(|t| t.0)),
                at(a.ended_at.map(|t| t.0)),
                a.reason.as_deref().unwrap_or("")
            );
        }
    }

    if let Some(failure) = &row.failure {
        let _ = writeln!(out, "{}  {}", paint(BOLD, "failure"), paint(status_style(row.job_status), failure.class));
        let _ = writeln!(out, "  {}", failure.summary);
        let e = &failure.evidence;
        let evidence: Vec<String> = [
            e.exit_code.map(|c| format!("exit code {c}")),
            e.exception_type.clone(),
            e.module.as_ref().map(|m| format!("module {m}")),
            e.resource.clone(),
            e.log_line.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !evidence.is_empty() {
            let _ = writeln!(out, "  evidence: {}", evidence.join(" · "));
        }
    } else if let Some(message) = &row.error_message {
        let _ = writeln!(out, "{}  {}", paint(BOLD, "error"), message.lines().next().unwrap_or_default());
    }

    if let Some(controls) = &row.run_controls {
        let source = |name: &str| controls.sources.get(name).map(|s| format!(" ({s})")).unwrap_or_default();
        let _ = writeln!(out, "{}", paint(BOLD, "run controls"));
        let _ = writeln!(
            out,
            "  timeout {} min{} · attempts {}{} · cancel grace {} s{}",
            opt(controls.execution_timeout_minutes),
            source("executionTimeoutMinutes"),
            opt(controls.max_attempts),
            source("maxAttempts"),
            opt(controls.cancel_grace_period_seconds),
            source("cancelGracePeriodSeconds")
        );
    }
    if let Some(permissions) = &row.job_permissions {
        let source = permissions.source.as_deref().unwrap_or("?");
        let scope = if permissions.scoped {
            let size = permissions.policy_size.map(|s| format!(", session policy {s}/2048 characters")).unwrap_or_default();
            let steps = permissions.narrowing_steps.filter(|n| *n > 0).map(|n| format!(", narrowed {n} times")).unwrap_or_default();
            format!("scoped ({source}){size}{steps}")
        } else {
            paint(WARN, format!("not scoped ({source}): the whole job execution role"))
        };
        let _ = writeln!(out, "  permissions: {scope}");
    }

    if !row.output_files.is_empty() {
        let _ = writeln!(out, "{}", paint(BOLD, "outputs"));
        for file in &row.output_files {
            let mark = if file.exists { paint(status_style(Some(shared::job::record::JobStatus::Complete)), "✓") } else { paint(WARN, "✗") };
            let _ = writeln!(out, "  {mark} {}  {}", file.name.as_deref().unwrap_or("-"), file.file_url);
        }
    }

    let mut cost = format!("{}  {}", paint(BOLD, "cost"), cost_text(row.cost.as_ref(), row.resource_usage.as_ref()));
    if let Some(c) = &row.cost {
        let prices = [c.prices_source.clone(), c.prices_as_of.clone(), c.region.clone(), c.architecture.clone()].into_iter().flatten().collect::<Vec<_>>();
        if !prices.is_empty() {
            let _ = write!(cost, " {}", paint(DIM, format!("(prices: {})", prices.join(", "))));
        }
    }
    let _ = writeln!(out, "{cost}");

    if !row.job_messages.is_empty() {
        let _ = writeln!(out, "{}", paint(BOLD, "messages"));
        for message in row.job_messages.iter().rev().take(12).collect::<Vec<_>>().into_iter().rev() {
            let _ = writeln!(out, "  {message}");
        }
    }

    let _ = writeln!(out, "{}", paint(BOLD, "links"));
    for (label, link) in [
        ("job run", &links.job_run),
        ("console", &links.console),
        ("logs", &links.logs),
        ("log streams", &links.log_stream_prefix),
        ("staging", &links.staging),
        ("staging (S3)", &links.staging_console),
    ] {
        if let Some(link) = link {
            let _ = writeln!(out, "  {label:<13}{link}");
        }
    }
    if let Some(cleaned) = row.cleaned_at {
        let _ = writeln!(out, "  {}", paint(DIM, format!("staging folder emptied by cleanup at {cleaned}")));
    }
    out
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::{failed_twice, running};

    fn plain(text: &str) -> String {
        anstream::adapter::strip_str(text).to_string()
    }

    #[test]
    fn a_failed_job_shows_its_attempts_failure_controls_cost_and_links() {
        let row = failed_twice();
        let links = Links { staging: row.staging_uri.clone(), ..Default::default() };
        let text = plain(&render(&row, None, &links, Utc::now()));
        for expected in [
            "job-oom  MODEL_BATCH_JOB  ERROR (EMR FAILED)",
            "run       run-1 in application app-1 · attempt 2/2",
            "(queued 30s) → ended",
            ", ran 5m 00s",
            "   1  FAILED     2026-11-23 20:00:01Z → 2026-11-23 20:02:00Z  Job failed, ExitCode: 137",
            "failure  OUT_OF_MEMORY",
            "evidence: exit code 137 · java.lang.OutOfMemoryError: Java heap space",
            "timeout 60 min (jobParameters) · attempts 2 (jobParameters) · cancel grace 0 s (default)",
            "permissions: scoped (configuration), session policy 1480/2048 characters",
            "cost  $0.037869 billed (prices: built-in, 2026-11-30, us-east-1, X86_64)",
            "[error] The driver ran out of memory",
            "staging      s3://staging/modelop-spark-serverless/job-oom/",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(status_exit(&row), Exit::Error);
    }

    #[test]
    fn a_running_job_shows_the_live_attempt_and_exits_0() {
        let row = running();
        let live = LiveRun { state: "RUNNING".into(), attempt: Some(2), state_details: Some("attempt 2 started".into()), ..Default::default() };
        let text = plain(&render(&row, Some(&live), &Links::default(), Utc::now()));
        assert!(text.contains("RUNNING (EMR RUNNING)") && text.contains("attempt 2/1") && text.contains("EMR says  attempt 2 started"), "{text}");
        assert!(text.contains("· running for") && text.contains("cost  not recorded"), "{text}");
        assert_eq!(status_exit(&row), Exit::Ok);
    }

    #[test]
    fn the_run_page_is_in_the_studio_the_operator_names() {
        assert_eq!(
            run_page("https://es-5ZS3VOH3EX6JAHZJI73KWCC14.emrstudio-prod.us-west-2.amazonaws.com/", "00fm4oe0607u5a1d", "00fm4p1b2c3d4e5f"),
            "https://es-5ZS3VOH3EX6JAHZJI73KWCC14.emrstudio-prod.us-west-2.amazonaws.com/#/serverless-applications/00fm4oe0607u5a1d/00fm4p1b2c3d4e5f"
        );
        let links = Links { job_run: Some("https://studio/#/serverless-applications/app-1/run-1".into()), ..Default::default() };
        let text = plain(&render(&failed_twice(), None, &links, Utc::now()));
        assert!(text.contains("  job run      https://studio/#/serverless-applications/app-1/run-1"), "{text}");
    }

    #[test]
    fn console_links_escape_as_the_console_does() {
        assert_eq!(console_escape("/aws/emr-serverless"), "$252Faws$252Femr-serverless");
    }
}
