//! `cost [--since D] [--by type|model|day|status]`: totals of the `cost` monitor recorded on each
//! job, from the `byJobStatus` index (one query per status), final and provisional kept apart,
//! with the basis (billed or used). A job with usage but no price, or with no usage, is counted,
//! never given an invented amount.

use std::collections::BTreeMap;

use chrono::Utc;
use comfy_table::{presets, Table};
use serde::Serialize;

use shared::job::record::JobStatus;

use crate::cli::{CostArgs, CostGroup};
use crate::context::Context;
use crate::exit::{CommandResult, Exit};
use crate::row::JobRow;

/// The totals of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostTotals {
    pub group: String,
    pub jobs: usize,
    /// USD of jobs whose figures are final.
    pub final_amount: f64,
    pub final_jobs: usize,
    /// USD of jobs whose figures may still change (the run goes, or EMR has not billed it yet).
    pub provisional_amount: f64,
    pub provisional_jobs: usize,
    /// Priced on billed figures, and on used ones (nothing billed yet).
    pub billed_jobs: usize,
    pub used_jobs: usize,
    /// Usage recorded but no price for its region/architecture: counted, not priced.
    pub unpriced_jobs: usize,
    /// No usage recorded (no run, or not read yet).
    pub without_usage: usize,
}

/// The groups' totals, in group order, and the grand total last.
pub fn totals(rows: &[JobRow], by: CostGroup) -> Vec<CostTotals> {
    let mut groups: BTreeMap<String, CostTotals> = BTreeMap::new();
    let mut all = CostTotals { group: "total".into(), ..Default::default() };
    for row in rows {
        let key = match by {
            CostGroup::Type => row.job_type.clone().unwrap_or_else(|| "?".into()),
            CostGroup::Model => row.model_name().unwrap_or("(no model name)").to_string(),
            CostGroup::Status => row.job_status.map(|s| s.as_str().to_string()).unwrap_or_else(|| "?".into()),
            CostGroup::Day => row.updated_at.map(|t| t.0.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "?".into()),
        };
        let group = groups.entry(key.clone()).or_insert_with(|| CostTotals { group: key, ..Default::default() });
        for totals in [group, &mut all] {
            add(totals, row);
        }
    }
    groups.into_values().chain([all]).collect()
}

fn add(totals: &mut CostTotals, row: &JobRow) {
    totals.jobs += 1;
    match (&row.cost, &row.resource_usage) {
        (Some(cost), usage) => {
            if usage.as_ref().is_some_and(|u| u.is_final) {
                totals.final_amount += cost.amount;
                totals.final_jobs += 1;
            } else {
                totals.provisional_amount += cost.amount;
                totals.provisional_jobs += 1;
            }
            if cost.basis.as_deref() == Some("billed") {
                totals.billed_jobs += 1;
            } else {
                totals.used_jobs += 1;
            }
        }
        (None, Some(_)) => totals.unpriced_jobs += 1,
        (None, None) => totals.without_usage += 1,
    }
}

/// Runs `cost`.
pub async fn run(ctx: &Context, args: CostArgs) -> CommandResult {
    let aws = ctx.aws().await?;
    let since = Utc::now() - chrono::Duration::from_std(args.since).unwrap_or(chrono::Duration::MAX);
    let mut rows = Vec::new();
    for status in JobStatus::ALL {
        rows.extend(aws.store.jobs_by_status::<JobRow>(status, Some(since), usize::MAX, |_| true).await?);
    }
    let totals = totals(&rows, args.by);
    if ctx.printer.is_text() {
        ctx.printer.text(&render(&totals));
    } else {
        ctx.printer.list(&totals);
    }
    Ok(Exit::Ok)
}

/// The table of `cost`.
pub fn render(totals: &[CostTotals]) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(["GROUP", "JOBS", "FINAL (USD)", "PROVISIONAL (USD)", "BASIS billed/used", "NO PRICE", "NO USAGE"]);
    for t in totals {
        table.add_row([
            t.group.clone(),
            t.jobs.to_string(),
            format!("{:.6} ({})", t.final_amount, t.final_jobs),
            format!("{:.6} ({})", t.provisional_amount, t.provisional_jobs),
            format!("{}/{}", t.billed_jobs, t.used_jobs),
            t.unpriced_jobs.to_string(),
            t.without_usage.to_string(),
        ]);
    }
    format!(
        "{table}\n(n): jobs in the amount. Provisional amounts may still change; NO PRICE jobs have usage but no price for their region or architecture (set EMR_PRICES), and are not priced here."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::{failed_twice, row, running};

    #[test]
    fn final_provisional_unpriced_and_unused_are_kept_apart() {
        let provisional = row(serde_json::json!({
            "id": "p", "jobType": "MODEL_BATCH_JOB", "jobStatus": "COMPLETE", "updatedAt": "2026-11-24T01:00:00.000Z",
            "resourceUsage": {"used": {"vCPUHour": 1.0, "memoryGBHour": 1.0, "storageGBHour": 0.0}, "final": false, "asOf": "2026-11-24T01:00:00.000Z"},
            "cost": {"amount": 0.5, "currency": "USD", "basis": "used"}
        }));
        let unpriced = row(serde_json::json!({
            "id": "u", "jobType": "MODEL_BATCH_TRAINING_JOB", "jobStatus": "COMPLETE",
            "resourceUsage": {"used": {"vCPUHour": 1.0, "memoryGBHour": 1.0, "storageGBHour": 0.0}, "final": true, "asOf": "2026-11-24T01:00:00.000Z"}
        }));
        let rows = [failed_twice(), running(), provisional, unpriced];
        let by_type = totals(&rows, CostGroup::Type);
        let total = by_type.last().unwrap();
        assert_eq!((total.jobs, total.final_jobs, total.provisional_jobs, total.unpriced_jobs, total.without_usage), (4, 1, 1, 1, 1));
        assert_eq!((total.billed_jobs, total.used_jobs), (1, 1));
        assert!((total.final_amount - 0.037869).abs() < 1e-9 && (total.provisional_amount - 0.5).abs() < 1e-9);
        let groups: Vec<&str> = by_type.iter().map(|t| t.group.as_str()).collect();
        assert_eq!(groups, ["MODEL_BATCH_JOB", "MODEL_BATCH_TEST_JOB", "MODEL_BATCH_TRAINING_JOB", "total"]);
        let by_model: Vec<String> = totals(&rows, CostGroup::Model).into_iter().map(|t| t.group).collect();
        assert_eq!(by_model, ["(no model name)", "credit-risk", "total"]);
        let by_day: Vec<String> = totals(&rows, CostGroup::Day).into_iter().map(|t| t.group).collect();
        assert_eq!(by_day, ["2026-11-23", "2026-11-24", "?", "total"]);
        let text = render(&by_type);
        assert!(text.contains("0.037869 (1)") && text.contains("0.500000 (1)"), "{text}");
    }
}
