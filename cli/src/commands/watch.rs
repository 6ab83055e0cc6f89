//! `watch ID [--timeout D]`: follows a job to its end. A line per status transition (from the
//! row's `statusHistory`, so every view agrees with the functions) on stdout; on a terminal, one
//! live line on stderr (state, attempt, queued and run time, cost so far); `ndjson` events with
//! `-o ndjson`. Exits with the outcome's code, or 5 when `--timeout` runs out (the job is never
//! cancelled, neither by the timeout nor by Ctrl-C).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde::Serialize;

use shared::job::record::StatusChange;

use crate::cli::WatchArgs;
use crate::commands::status::{live_run, LiveRun};
use crate::context::{Aws, Context};
use crate::exit::{CommandResult, Exit};
use crate::output::{paint, status_style, Printer};
use crate::row::{cost_text, human_duration, JobRow};

/// How often the job is read (one GetItem, and GetJobRun while the run goes).
const POLL: Duration = Duration::from_secs(2);

/// One `ndjson` event of `watch`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum WatchEvent {
    /// A status change, as the row records it.
    #[serde(rename_all = "camelCase")]
    Transition { id: String, at: String, status: String, #[serde(skip_serializing_if = "Option::is_none")] emr_state: Option<String> },
    /// The job is final.
    #[serde(rename_all = "camelCase")]
    End { id: String, status: String, #[serde(skip_serializing_if = "Option::is_none")] failure_class: Option<String>, exit_code: u8 },
    /// `--timeout` ran out with the job still going.
    #[serde(rename_all = "camelCase")]
    Timeout { id: String, status: String, exit_code: u8 },
}

/// Runs `watch`.
pub async fn run(ctx: &Context, args: WatchArgs) -> CommandResult {
    let aws = ctx.aws().await?;
    follow(&ctx.printer, &aws, &args.id, args.timeout).await
}

/// Follows job `id` to its end (also `submit --wait`).
pub async fn follow(printer: &Printer, aws: &Aws, id: &str, timeout: Option<Duration>) -> CommandResult {
    let deadline = timeout.map(|t| Instant::now() + t);
    let bar = (printer.is_text() && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut shown = 0;
    loop {
        let row = aws.job(id).await?;
        let live = live_run(aws, &row).await?;
        for change in row.status_history.iter().skip(shown) {
            emit(printer, bar.as_ref(), &transition(&row.id, change));
        }
        shown = row.status_history.len();
        if let Some(outcome) = row.outcome() {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let status = row.job_status.map(|s| s.as_str()).unwrap_or("?").to_string();
            let event = WatchEvent::End { id: row.id.clone(), status, failure_class: row.failure_class().map(|c| c.as_str().to_string()), exit_code: outcome.code() };
            emit(printer, None, &event);
            if printer.is_text() {
                if let Some(failure) = &row.failure {
                    printer.text(&format!("  {}", failure.summary));
                }
            }
            return Ok(outcome);
        }
        if let Some(bar) = &bar {
            bar.set_message(live_line(&row, live.as_ref()));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let status = row.job_status.map(|s| s.as_str()).unwrap_or("?").to_string();
            emit(printer, None, &WatchEvent::Timeout { id: row.id.clone(), status, exit_code: Exit::StillRunning.code() });
            return Ok(Exit::StillRunning);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn transition(id: &str, change: &StatusChange) -> WatchEvent {
    WatchEvent::Transition { id: id.to_string(), at: change.at.to_string(), status: change.status.as_str().to_string(), emr_state: change.emr_state.clone() }
}

/// An event as text (a line) or as an `ndjson` object; printed above the live line.
fn emit(printer: &Printer, bar: Option<&ProgressBar>, event: &WatchEvent) {
    let print = || match printer.is_text() {
        true => printer.text(&event_text(event)),
        false => printer.json(event),
    };
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// One event as a line of text.
pub fn event_text(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Transition { at, status, emr_state, .. } => {
            let emr = emr_state.as_deref().map(|s| format!("  (EMR {s})")).unwrap_or_default();
            format!("{at}  {}{emr}", paint(status_style(shared::job::record::JobStatus::parse(status)), status))
        }
        WatchEvent::End { id, status, failure_class, exit_code } => {
            let class = failure_class.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            format!("{id} ended {}{class}; exit {exit_code}", paint(status_style(shared::job::record::JobStatus::parse(status)), status))
        }
        WatchEvent::Timeout { id, status, exit_code } => format!("{id} is still {status} after the timeout; exit {exit_code} (the job goes on)"),
    }
}

/// The live line: state, attempt, queued time, run time, cost so far.
pub fn live_line(row: &JobRow, live: Option<&LiveRun>) -> String {
    let status = row.job_status.map(|s| s.as_str()).unwrap_or("?");
    let emr = live.map(|l| l.state.as_str()).or(row.emr_state_shown()).unwrap_or("-");
    let attempt = live.and_then(|l| l.attempt).unwrap_or(1).max(row.latest_attempt());
    let (queued, ran) = row.durations(Utc::now());
    let span = |d: Option<chrono::Duration>| d.map(human_duration).unwrap_or_else(|| "-".into());
    format!(
        "{status} / {emr} · attempt {attempt}/{} · queued {} · running {} · cost {}",
        row.max_attempts(),
        span(queued),
        span(ran),
        cost_text(row.cost.as_ref(), row.resource_usage.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::{failed_twice, running};

    #[test]
    fn events_as_text_and_as_ndjson() {
        let row = failed_twice();
        let event = transition(&row.id, &row.status_history[2]);
        assert_eq!(anstream::adapter::strip_str(&event_text(&event)).to_string(), "2026-11-23T20:00:30.000Z  RUNNING  (EMR RUNNING)");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "transition", "id": "job-oom", "at": "2026-11-23T20:00:30.000Z", "status": "RUNNING", "emrState": "RUNNING"})
        );
        let end = WatchEvent::End { id: "job-oom".into(), status: "ERROR".into(), failure_class: Some("OUT_OF_MEMORY".into()), exit_code: 1 };
        assert_eq!(serde_json::to_value(&end).unwrap()["event"], "end");
        assert_eq!(anstream::adapter::strip_str(&event_text(&end)).to_string(), "job-oom ended ERROR (OUT_OF_MEMORY); exit 1");
    }

    #[test]
    fn the_live_line_names_state_attempt_times_and_cost() {
        let live = LiveRun { state: "RUNNING".into(), attempt: Some(1), ..Default::default() };
        let line = live_line(&running(), Some(&live));
        assert!(line.starts_with("RUNNING / RUNNING · attempt 1/1 · queued 1m 00s · running "), "{line}");
        assert!(line.ends_with("· cost not recorded"), "{line}");
    }
}
