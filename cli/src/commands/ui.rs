//! `ui ID [--attempt N] [--open] [--wait]`: mints a Spark UI link with GetDashboardForJobRun only
//! when asked (a link is short-lived and works once: minting it earlier is why others' links
//! expire before they are clicked). The link is printed or opened, never stored or logged. Before
//! the run is RUNNING there is no UI yet (`--wait` waits); a run without managed log storage has none.

use std::time::Duration;

use aws_sdk_emrserverless::types::JobRunState;

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
        let output = aws.emr.get_job_run().application_id(app).job_run_id(run).send().await.map_err(|e| shared::aws::classify("EMR Serverless", "GetJobRun", e))?;
        let Some(job_run) = output.job_run() else { return Err(CliError::Client(format!("EMR Serverless has no run {run}"))) };
        let managed = job_run
            .configuration_overrides()
            .and_then(|o| o.monitoring_configuration())
            .and_then(|m| m.managed_persistence_monitoring_configuration())
            .and_then(|p| p.enabled());
        if managed == Some(false) {
            return Err(CliError::Client(format!(
                "the Spark UI is unavailable for run {run}: its managed log storage (managedPersistenceMonitoringConfiguration) is off, so EMR Serverless keeps no UI for it"
            )));
        }
        let state = job_run.state();
        let started = matches!(state, JobRunState::Running | JobRunState::Success | JobRunState::Failed | JobRunState::Cancelling | JobRunState::Cancelled);
        if started {
            break;
        }
        if !args.wait {
            return Err(CliError::Client(format!("run {run} is {}: its Spark UI opens once it is RUNNING (add --wait to wait for it)", state.as_str())));
        }
        note(format!("run {run} is {}; waiting for RUNNING", state.as_str()));
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
    let output = aws
        .emr
        .get_dashboard_for_job_run()
        .application_id(app)
        .job_run_id(run)
        .set_attempt(attempt)
        .send()
        .await
        .map_err(|e| shared::aws::classify("EMR Serverless", "GetDashboardForJobRun", e))?;
    output.url().map(str::to_string).ok_or_else(|| CliError::Client(format!("EMR Serverless gave no Spark UI link for run {run}")))
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
