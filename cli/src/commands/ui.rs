//! `ui ID [--attempt N] [--open] [--wait]`: mints a Spark UI link with GetDashboardForJobRun only
//! when asked (a link is short-lived and works once: minting it earlier is why others' links
//! expire before they are clicked). The link is printed or opened, never stored or logged. Before
//! the run is RUNNING there is no UI yet (`--wait` waits); a run without managed log storage has none
//! (the run's own setting, else its application's: EMR applies the application's monitoring
//! configuration to a run that does not override it).

use std::time::Duration;

use shared::aws::emr::RunUiState;

use crate::cli::UiArgs;
use crate::context::{Aws, Context};
use crate::exit::{CliError, CommandResult, Exit};
use crate::output::note;

/// How often `--wait` asks whether the run is RUNNING.
const POLL: Duration = Duration::from_secs(3);

/// Runs `ui`.
pub async fn run(ctx: &Context, args: UiArgs) -> CommandResult {
    let aws = ctx.aws().await?;
    let mut row = aws.job(&args.id).await?;
    // With --wait, a job submit has not launched yet is waited for too.
    while row.run().is_none() && args.wait && !row.is_final() {
        note(format!("job {} is {} with no run yet; waiting for its run", row.id, row.job_status.map(|s| s.as_str()).unwrap_or("?")));
        tokio::time::sleep(POLL).await;
        row = aws.job(&args.id).await?;
    }
    let Some((app, run)) = row.run() else {
        return Err(CliError::Client(format!("job {} has no run yet (it is {}): no Spark UI", row.id, row.job_status.map(|s| s.as_str()).unwrap_or("?"))));
    };
    let mut job_run = ui_state(&aws, app, run).await?;
    // The application's setting is read only when the run does not say (GetApplication).
    let application_setting = match job_run.managed_log_storage {
        Some(_) => None,
        None => aws.runs.application_details(app).await?.managed_log_storage,
    };
    if let Some(why) = log_storage_off(job_run.managed_log_storage, application_setting) {
        return Err(CliError::Client(format!("the Spark UI is unavailable for run {run}: {why}, so EMR Serverless keeps no UI for it")));
    }
    while !matches!(job_run.state.as_str(), "RUNNING" | "SUCCESS" | "FAILED" | "CANCELLING" | "CANCELLED") {
        let state = job_run.state.as_str();
        if !args.wait {
            return Err(CliError::Client(format!("run {run} is {state}: its Spark UI opens once it is RUNNING (add --wait to wait for it)")));
        }
        note(format!("run {run} is {state}; waiting for RUNNING"));
        tokio::time::sleep(POLL).await;
        job_run = ui_state(&aws, app, run).await?;
    }
    let url = dashboard_url(&aws, app, run, args.attempt).await?;
    if args.open {
        open(&url)?;
        note("opened the Spark UI in the browser (the link works once and expires soon)");
    } else {
        ctx.printer.text(&url);
    }
    Ok(Exit::Ok)
}

async fn ui_state(aws: &Aws, app: &str, run: &str) -> Result<RunUiState, CliError> {
    aws.runs.run_ui_state(app, run).await?.ok_or_else(|| CliError::Client(format!("EMR Serverless has no run {run}")))
}

/// Why a run has no Spark UI, if its managed log storage is off: the run's own setting
/// (`configurationOverrides`) wins; without one, its application's (`monitoringConfiguration`);
/// neither set is EMR's default, on.
pub fn log_storage_off(run: Option<bool>, application: Option<bool>) -> Option<&'static str> {
    match (run, application) {
        (Some(false), _) => Some("its managed log storage (configurationOverrides.monitoringConfiguration.managedPersistenceMonitoringConfiguration) is off"),
        (None, Some(false)) => Some("its application's managed log storage (monitoringConfiguration.managedPersistenceMonitoringConfiguration) is off, and the run does not turn it on"),
        _ => None,
    }
}

async fn dashboard_url(aws: &Aws, app: &str, run: &str, attempt: Option<i32>) -> Result<String, CliError> {
    aws.runs.dashboard_url(app, run, attempt).await?.ok_or_else(|| CliError::Client(format!("EMR Serverless gave no Spark UI link for run {run}")))
}

/// Hands the link to the system's opener; it never reaches a log.
fn open(url: &str) -> Result<(), CliError> {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| CliError::Client(format!("could not run {opener} to open the link ({e}); run `modelop-spark ui` without --open to print it")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_log_storage_setting_wins_over_its_applications() {
        let cases = [
            (None, None, None),
            (None, Some(true), None),
            (Some(true), Some(false), None),
            (Some(false), None, Some("its managed log storage")),
            (Some(false), Some(true), Some("its managed log storage")),
            (None, Some(false), Some("its application's managed log storage")),
        ];
        for (run, application, expected) in cases {
            let why = log_storage_off(run, application);
            assert_eq!(why.map(|w| w.split(" (").next().unwrap()), expected, "run {run:?}, application {application:?}");
        }
    }
}
