//! `ui ID [--attempt N] [--open] [--wait]`: mints a Spark UI link with GetDashboardForJobRun only
//! when asked (a link is short-lived and works once: minting it earlier is why others' links
//! expire before they are clicked). The link is printed or opened, never stored or logged. Before
//! the run is RUNNING there is no UI yet (`--wait` waits); a run without managed log storage has none.

use std::time::Duration;

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
    loop {
        let Some(job_run) = aws.runs.run_ui_state(app, run).await? else { return Err(CliError::Client(format!("EMR Serverless has no run {run}"))) };
        if job_run.managed_log_storage == Some(false) {
            return Err(CliError::Client(format!(
                "the Spark UI is unavailable for run {run}: its managed log storage (managedPersistenceMonitoringConfiguration) is off, so EMR Serverless keeps no UI for it"
            )));
        }
        let state = job_run.state.as_str();
        let started = matches!(state, "RUNNING" | "SUCCESS" | "FAILED" | "CANCELLING" | "CANCELLED");
        if started {
            break;
        }
        if !args.wait {
            return Err(CliError::Client(format!("run {run} is {state}: its Spark UI opens once it is RUNNING (add --wait to wait for it)")));
        }
        note(format!("run {run} is {state}; waiting for RUNNING"));
        tokio::time::sleep(POLL).await;
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
