//! `ls`: jobs by status from the `byJobStatus` index, one query per status asked (the shared
//! adapter's `jobs_by_status`, newest first), never a scan; `--type` and `--class` are applied as
//! the pages come, so `--limit` counts only the jobs shown.

use chrono::{DateTime, Utc};
use comfy_table::{presets, Table};
use serde::Serialize;

use shared::job::record::JobStatus;

use crate::cli::LsArgs;
use crate::context::Context;
use crate::exit::{CliError, CommandResult, Exit};
use crate::row::{human_duration, JobRow};

/// One line of `ls`, also its `json`/`ndjson` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LsEntry {
    pub id: String,
    pub job_type: Option<String>,
    pub job_status: Option<JobStatus>,
    pub emr_state: Option<String>,
    pub attempt: i32,
    pub max_attempts: i64,
    pub updated_at: Option<String>,
    pub age_seconds: Option<i64>,
    pub run_seconds: Option<i64>,
    pub cost: Option<f64>,
    pub cost_final: bool,
    pub failure_class: Option<String>,
}

impl LsEntry {
    /// The entry of a row, its ages measured to `now`.
    pub fn of(row: &JobRow, now: DateTime<Utc>) -> LsEntry {
        let [waiting, _, _] = row.times();
        let started = waiting.or_else(|| row.status_history.first().map(|c| c.at.0)).or(row.updated_at.map(|t| t.0));
        let (_, ran) = row.durations(now);
        LsEntry {
            id: row.id.clone(),
            job_type: row.job_type.clone(),
            job_status: row.job_status,
            emr_state: row.emr_state_shown().map(str::to_string),
            attempt: row.latest_attempt(),
            max_attempts: row.max_attempts(),
            updated_at: row.updated_at.map(|t| t.to_string()),
            age_seconds: started.map(|s| (now - s).num_seconds()),
            run_seconds: ran.map(|r| r.num_seconds()),
            cost: row.cost.as_ref().map(|c| c.amount),
            cost_final: row.resource_usage.as_ref().is_some_and(|u| u.is_final),
            failure_class: row.failure_class().map(|c| c.as_str().to_string()),
        }
    }
}

/// Whether a row passes `--type` and `--class` (either case).
pub fn matches(row: &JobRow, job_type: Option<&str>, class: Option<&str>) -> bool {
    let same = |wanted: Option<&str>, value: Option<&str>| wanted.is_none_or(|w| value.is_some_and(|v| v.eq_ignore_ascii_case(w)));
    same(job_type, row.job_type.as_deref()) && same(class, row.failure_class().map(|c| c.as_str()))
}

/// Runs `ls`.
pub async fn run(ctx: &Context, args: LsArgs) -> CommandResult {
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let aws = ctx.aws().await?;
    let statuses = if args.status.is_empty() { JobStatus::ALL.to_vec() } else { args.status.clone() };
    let now = Utc::now();
    let since = args.since.map(|d| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let mut rows: Vec<JobRow> = Vec::new();
    for status in statuses {
        let keep = |row: &JobRow| matches(row, args.job_type.as_deref(), args.failure_class.as_deref());
        rows.extend(aws.store.jobs_by_status(status, since, args.limit, keep).await?);
    }
    rows.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
    rows.truncate(args.limit);
    let entries: Vec<LsEntry> = rows.iter().map(|row| LsEntry::of(row, now)).collect();
    if ctx.printer.is_text() {
        if entries.is_empty() {
            crate::output::hint("no jobs match (ls reads the byJobStatus index: a row appears there once this service has written updatedAt)");
        } else {
            ctx.printer.text(&render(&entries));
        }
    } else {
        ctx.printer.list(&entries);
    }
    Ok(Exit::Ok)
}

/// The table of `ls`.
pub fn render(entries: &[LsEntry]) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(["ID", "TYPE", "STATUS / EMR", "ATTEMPT", "AGE", "RUN TIME", "COST", "FAILURE"]);
    for e in entries {
        let status = e.job_status.map(|s| s.as_str()).unwrap_or("?");
        let emr = e.emr_state.as_deref().map(|s| format!(" / {s}")).unwrap_or_default();
        let cost = match e.cost {
            Some(amount) if e.cost_final => format!("${amount:.4}"),
            Some(amount) => format!("${amount:.4}*"),
            None => "-".into(),
        };
        let seconds = |s: Option<i64>| s.map(|s| human_duration(chrono::Duration::seconds(s))).unwrap_or_else(|| "-".into());
        table.add_row([
            e.id.clone(),
            short_type(e.job_type.as_deref()).to_string(),
            format!("{status}{emr}"),
            format!("{}/{}", e.attempt, e.max_attempts),
            seconds(e.age_seconds),
            seconds(e.run_seconds),
            cost,
            e.failure_class.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut text = table.to_string();
    if entries.iter().any(|e| e.cost.is_some() && !e.cost_final) {
        text.push_str("\n* provisional: the run's final figures are not in yet");
    }
    text
}

/// `MODEL_BATCH_TEST_JOB` → `TEST`.
fn short_type(job_type: Option<&str>) -> &str {
    match job_type {
        Some("MODEL_BATCH_JOB") => "BATCH",
        Some("MODEL_BATCH_TEST_JOB") => "TEST",
        Some("MODEL_BATCH_TRAINING_JOB") => "TRAINING",
        Some(other) => other,
        None => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::{failed_twice, running};

    #[test]
    fn entries_and_the_table_show_status_attempts_times_cost_and_class() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T21:00:00Z").unwrap().with_timezone(&Utc);
        let entries = [LsEntry::of(&failed_twice(), now), LsEntry::of(&running(), now)];
        assert_eq!((entries[0].attempt, entries[0].max_attempts, entries[0].run_seconds), (2, 2, Some(300)));
        assert_eq!(entries[0].failure_class.as_deref(), Some("OUT_OF_MEMORY"));
        let text = render(&entries);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("ID") && lines[0].contains("FAILURE"), "{text}");
        assert!(lines[1].contains("job-oom") && lines[1].contains("BATCH") && lines[1].contains("ERROR / FAILED"), "{text}");
        assert!(lines[1].contains("2/2") && lines[1].contains("5m 00s") && lines[1].contains("$0.0379") && lines[1].contains("OUT_OF_MEMORY"), "{text}");
        assert!(lines[2].contains("job-run") && lines[2].contains("TEST") && lines[2].contains("RUNNING / RUNNING") && lines[2].contains("1/1"), "{text}");
    }

    #[test]
    fn filters_compare_without_case_and_need_the_field() {
        let row = failed_twice();
        assert!(matches(&row, Some("model_batch_job"), Some("out_of_memory")));
        assert!(matches(&row, None, None));
        assert!(!matches(&row, Some("MODEL_BATCH_TEST_JOB"), None));
        assert!(!matches(&running(), None, Some("OUT_OF_MEMORY")), "a job without failure has no class");
    }
}
