//! `cancel ID [--grace S] [--wait]`: cancels through the row, the way ModelOp Center does (the
//! shared adapter's conditional write to CANCELLED), so cleanup cancels the run; `--grace` reaches
//! cleanup as `cancelGracePeriodSeconds` on the row (shared/CONTRACT.md). The CLI never calls
//! CancelJobRun itself: one path cancels runs, whoever asked.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use shared::launch::run_controls::{cancel_grace_period_seconds, ReleaseLabel, GRACE_PERIOD_SINCE};
use shared::outcome::job_run::EmrState;
use shared::ports::JobRunReader;

use crate::cli::CancelArgs;
use crate::context::{Aws, Context};
use crate::exit::{CliError, CommandResult, Exit};
use crate::output::{hint, note};
use crate::row::JobRow;

/// How often `--wait` looks again.
const POLL: Duration = Duration::from_secs(2);

/// What `cancel` did, also its `json` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelReport {
    pub id: String,
    pub cancelled: bool,
    pub previous_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// With `--wait`: the run's last state seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_state: Option<String>,
    /// With `--wait`: whether cleanup has released the job (`cleanedAt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleaned: Option<bool>,
}

/// `--grace`: EMR's range (0, or 15-1800 seconds), the rule submit and cleanup apply to
/// `EMR_CANCEL_GRACE_PERIOD_SECONDS`. Whether the run's release has grace periods is EMR's to say.
pub fn parse_grace(raw: &str) -> Result<u32, CliError> {
    cancel_grace_period_seconds(raw, Some(GRACE_PERIOD_SINCE)).map_err(|v| CliError::Usage(format!("--grace {v}")))
}

/// Runs `cancel`.
pub async fn run(ctx: &Context, args: CancelArgs) -> CommandResult {
    let grace = args.grace.as_deref().map(parse_grace).transpose()?;
    let aws = ctx.aws().await?;
    let row = aws.job(&args.id).await?;
    if let Some(outcome) = row.outcome() {
        note(format!("job {} is already {}: nothing to cancel", row.id, row.job_status.map(|s| s.as_str()).unwrap_or("final")));
        return Ok(outcome);
    }
    if grace.is_some_and(|g| g > 0) {
        warn_if_no_grace(&aws, &row).await;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "an operator".into());
    let grace_text = grace.map(|g| format!(" (grace period {g} s)")).unwrap_or_default();
    let message = format!("cancelled by {user} with modelop-spark{grace_text}");
    let cancelled = aws.store.cancel_job(&row.id, grace, &message, Utc::now()).await?;
    if !cancelled {
        let now = aws.job(&args.id).await?;
        return Err(CliError::Client(format!(
            "job {} was not cancelled: it is {} now (only a job of the SPARK_SERVERLESS_RUNTIME runtime that is not final is cancelled)",
            now.id,
            now.job_status.map(|s| s.as_str()).unwrap_or("of unknown status"),
        )));
    }
    let mut report = CancelReport {
        id: row.id.clone(),
        cancelled: true,
        previous_status: row.job_status.map(|s| s.as_str().to_string()),
        grace_period_seconds: grace,
        run_id: row.spark_application_id.clone(),
        run_state: None,
        cleaned: None,
    };
    let mut exit = Exit::Cancelled;
    if args.wait {
        exit = wait_for_stop(&aws, &row, args.timeout, &mut report).await?;
    }
    if ctx.printer.is_text() {
        ctx.printer.text(&render(&report));
        if !args.wait && report.run_id.is_some() {
            hint(format!("cleanup cancels the run; follow it with `modelop-spark watch {}` or `cancel --wait`", report.id));
        }
    } else {
        ctx.printer.json(&report);
    }
    Ok(exit)
}

/// Grace periods came with emr-7.9.0: says so when the run's release is older (EMR then stops it at once).
async fn warn_if_no_grace(aws: &Aws, row: &JobRow) {
    let Some((app, run)) = row.run() else { return };
    if let Ok(info) = aws.runs.get_job_run(app, run).await {
        if let Some(release) = info.release_label.as_deref().and_then(ReleaseLabel::parse).filter(|r| *r < GRACE_PERIOD_SINCE) {
            note(format!("warning: the run is on {release}, which has no cancel grace period (it came with {GRACE_PERIOD_SINCE}): EMR stops it at once"));
        }
    }
}

/// `--wait`: until the run is in a final state and cleanup has recorded `cleanedAt`, or the timeout.
async fn wait_for_stop(aws: &Aws, row: &JobRow, timeout: Duration, report: &mut CancelReport) -> Result<Exit, CliError> {
    let deadline = Instant::now() + timeout;
    loop {
        let stopped = match row.run() {
            Some((app, run)) => {
                let state = aws.runs.get_job_run(app, run).await?.state;
                let over = EmrState::parse(&state).is_terminal();
                report.run_state = Some(state);
                over
            }
            None => true,
        };
        let cleaned = aws.job(&row.id).await?.cleaned_at.is_some();
        report.cleaned = Some(cleaned);
        if stopped && cleaned {
            return Ok(Exit::Cancelled);
        }
        if Instant::now() >= deadline {
            note(format!("still stopping after {}: the run is {}", humantime::format_duration(timeout), report.run_state.as_deref().unwrap_or("not started")));
            return Ok(Exit::StillRunning);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What `cancel` says, as text.
pub fn render(report: &CancelReport) -> String {
    let was = report.previous_status.as_deref().unwrap_or("?");
    let mut text = format!("{}: CANCELLED (was {was})", report.id);
    match (&report.run_id, report.grace_period_seconds) {
        (Some(run), Some(grace)) => text.push_str(&format!("; cleanup cancels run {run} with a {grace} s grace period")),
        (Some(run), None) => text.push_str(&format!("; cleanup cancels run {run} with the configured grace period")),
        (None, _) => text.push_str("; no run was started"),
    }
    if let Some(state) = &report.run_state {
        text.push_str(&format!("\nrun {state}"));
    }
    if let Some(cleaned) = report.cleaned {
        text.push_str(if cleaned { "; staging folder released" } else { "; staging folder not released yet" });
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_follows_emrs_range() {
        assert_eq!(parse_grace("0").unwrap(), 0);
        assert_eq!(parse_grace("15").unwrap(), 15);
        assert_eq!(parse_grace("1800").unwrap(), 1800);
        for bad in ["5", "1801", "-1", "soon"] {
            let err = parse_grace(bad).unwrap_err();
            assert_eq!(err.exit(), Exit::Usage, "{bad}");
            assert!(err.to_string().contains("0 (immediate) or a whole number from 15 to 1800"), "{err}");
        }
    }

    #[test]
    fn the_report_says_who_cancels_the_run() {
        let report = CancelReport {
            id: "j".into(),
            cancelled: true,
            previous_status: Some("RUNNING".into()),
            grace_period_seconds: Some(30),
            run_id: Some("r".into()),
            run_state: Some("CANCELLED".into()),
            cleaned: Some(true),
        };
        assert_eq!(render(&report), "j: CANCELLED (was RUNNING); cleanup cancels run r with a 30 s grace period\nrun CANCELLED; staging folder released");
        let none = CancelReport { run_id: None, grace_period_seconds: None, run_state: None, cleaned: None, previous_status: Some("CREATED".into()), ..report };
        assert_eq!(render(&none), "j: CANCELLED (was CREATED); no run was started");
    }
}
