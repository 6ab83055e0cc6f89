//! The command line: global flags and one arguments struct per subcommand (clap derive). Parsing
//! only; each subcommand's behaviour is its module in `commands/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See, follow, open, cancel and cost ModelOp Spark serverless jobs, against AWS or the local stack.
///
/// Exit codes: 0 COMPLETE, 1 ERROR, 3 CANCELLED, 4 timed out (EMR's verdict), 5 still running when
/// --timeout ran out, 6 AWS or client error, 2 usage. Data goes to stdout, progress and hints to stderr.
/// Ctrl-C stops the CLI (by the signal: a shell shows 130), never the job.
#[derive(Debug, Parser)]
#[command(name = "modelop-spark", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the jobs are, and how to print.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The jobs table (the stack's JobsTableName output).
    #[arg(long, global = true, env = "JOBS_TABLE")]
    pub table: Option<String>,
    /// The AWS region (else the SDK's chain: AWS_REGION, the profile).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The AWS profile to use.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator); AWS_ENDPOINT_URL_<SERVICE> still wins per service.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Use the local stack: its ready file (default $MODELOP_SPARK_LOCAL, else target/local-stack/ready.json).
    #[arg(long, global = true, value_name = "READY_FILE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub local: Option<String>,
    /// The CloudWatch log group of job runs (the stack's EMR_LOG_GROUP).
    #[arg(long, global = true, env = "EMR_LOG_GROUP", default_value = shared::config::DEFAULT_LOG_GROUP)]
    pub log_group: String,
    /// Output format: text for people, json (one document) or ndjson (one object a line) for programs.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No colour, even with CLICOLOR_FORCE (also off: NO_COLOR set, or output not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// How data is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Ndjson,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One screen on a job: timeline, attempts, failure, run controls, outputs, cost, messages, links.
    Status(StatusArgs),
    /// Jobs by status, from the byJobStatus index (one query per status, never a scan).
    Ls(LsArgs),
    /// Cancel a job the way ModelOp Center does (a conditional write to CANCELLED); cleanup cancels its run.
    Cancel(CancelArgs),
    /// The driver's logs of a job's run, from CloudWatch Logs (the row's stored tail once they are gone).
    Logs(LogsArgs),
    /// Follow a job to its end; exits with the outcome's code.
    Watch(WatchArgs),
    /// Totals of what jobs cost, final and provisional kept apart.
    Cost(CostArgs),
    /// Check a job document with submit's own validation and planning (--dry-run), or write it as a CREATED row.
    Submit(SubmitArgs),
    /// Mint a Spark UI link for a job's run (GetDashboardForJobRun), only when asked; never stored or logged.
    Ui(UiArgs),
    /// Check the table, its indexes, the log group, the application and the permissions each command needs.
    Doctor(DoctorArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

/// `status ID`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job id.
    pub id: String,
    /// Your EMR Studio's URL (`aws emr list-studios`: Url), where EMR Serverless job runs have their page: the link goes to the run's.
    #[arg(long, env = "EMR_STUDIO_URL", value_name = "URL")]
    pub studio_url: Option<String>,
}

/// `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Statuses to list (repeat or comma-separate); all six when none is given.
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<shared::job::record::JobStatus>,
    /// Only jobs updated within this long (`2h`, `3d`).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Only jobs of this type (MODEL_BATCH_JOB, MODEL_BATCH_TEST_JOB, MODEL_BATCH_TRAINING_JOB).
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: Option<String>,
    /// Only jobs whose failure has this class (OUT_OF_MEMORY, TIMEOUT, ...).
    #[arg(long = "class", value_name = "CLASS")]
    pub failure_class: Option<String>,
    /// At most this many jobs, the most recently updated first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// `cancel ID`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job id.
    pub id: String,
    /// Seconds the driver may shut down for (CancelJobRun shutdownGracePeriodInSeconds: 0 or 15-1800; needs emr-7.9.0).
    #[arg(long, value_name = "SECONDS")]
    pub grace: Option<String>,
    /// Wait until the run has stopped (and cleanup has released the job).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (exit 5).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub timeout: Duration,
}

/// `logs ID`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job id.
    pub id: String,
    /// Follow the log live, across retried attempts, to the job's end; exits with the outcome's code.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The attempt whose logs to read (default: the latest).
    #[arg(long)]
    pub attempt: Option<i32>,
    /// The driver's stderr instead of its stdout.
    #[arg(long)]
    pub stderr: bool,
    /// Only events of the last D (`10m`, `1h`).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
}

/// `watch ID`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The job id.
    pub id: String,
    /// Give up after this long: exit 5, the job still running (never cancelled).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// What `cost` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostGroup {
    Type,
    Model,
    Day,
    Status,
}

/// `cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only jobs updated within this long (`7d`).
    #[arg(long, value_parser = parse_duration, default_value = "30d")]
    pub since: Duration,
    /// Group the totals.
    #[arg(long, value_enum, default_value_t = CostGroup::Type)]
    pub by: CostGroup,
}

/// `submit FILE`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// A job document as ModelOp Center writes it (JSON).
    pub file: PathBuf,
    /// Run submit's own validation and planning and print what would launch, without touching AWS.
    #[arg(long)]
    pub dry_run: bool,
    /// After writing the row, follow it to its end (as `watch`).
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// After writing the row, follow its driver log to the job's end (as `logs -f`, across retried attempts).
    #[arg(long, conflicts_with_all = ["dry_run", "wait"])]
    pub follow: bool,
}

/// `ui ID`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The job id.
    pub id: String,
    /// The attempt (default: the latest).
    #[arg(long)]
    pub attempt: Option<i32>,
    /// Open the link in a browser instead of printing it.
    #[arg(long)]
    pub open: bool,
    /// Wait until the run is RUNNING.
    #[arg(long)]
    pub wait: bool,
}

/// `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The EMR Serverless application jobs run on.
    #[arg(long, env = "EMR_DEFAULT_APP_NAME")]
    pub app: Option<String>,
}

/// `completion SHELL`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// `2h`, `30m`, `3d`, `1h 30m` (humantime's forms).
fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("{raw:?} is not a duration such as 30m, 2h or 3d: {e}"))
}

fn parse_status(raw: &str) -> Result<shared::job::record::JobStatus, String> {
    shared::job::record::JobStatus::parse(&raw.to_ascii_uppercase())
        .ok_or_else(|| format!("{raw:?} is not a job status (CREATED, WAITING, RUNNING, COMPLETE, ERROR, CANCELLED)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere_and_lists_split() {
        let cli = Cli::try_parse_from(["modelop-spark", "ls", "--status", "error,running", "-o", "json", "--table", "jobs", "--since", "2h"]).unwrap();
        let Command::Ls(ls) = cli.command else { panic!("ls") };
        assert_eq!(ls.status, [shared::job::record::JobStatus::Error, shared::job::record::JobStatus::Running]);
        assert_eq!(ls.since, Some(Duration::from_secs(7200)));
        assert_eq!((cli.global.format, cli.global.table.as_deref()), (Format::Json, Some("jobs")));
        assert!(Cli::try_parse_from(["modelop-spark", "ls", "--status", "PAUSED"]).is_err());
        assert!(Cli::try_parse_from(["modelop-spark", "watch", "j", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn submit_waits_or_follows_never_both_and_never_on_a_dry_run() {
        let cli = Cli::try_parse_from(["modelop-spark", "submit", "job.json", "--follow"]).unwrap();
        let Command::Submit(submit) = cli.command else { panic!("submit") };
        assert!(submit.follow && !submit.wait && !submit.dry_run);
        for conflicting in [["--wait", "--follow"], ["--dry-run", "--follow"], ["--dry-run", "--wait"]] {
            let err = Cli::try_parse_from(["modelop-spark", "submit", "job.json", conflicting[0], conflicting[1]]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict, "{conflicting:?}");
        }
    }

    #[test]
    fn local_takes_an_optional_ready_file() {
        let cli = Cli::try_parse_from(["modelop-spark", "--local", "status", "j"]).unwrap();
        assert_eq!(cli.global.local.as_deref(), Some(""));
        let cli = Cli::try_parse_from(["modelop-spark", "status", "j", "--local=/tmp/ready.json"]).unwrap();
        assert_eq!(cli.global.local.as_deref(), Some("/tmp/ready.json"));
    }
}
