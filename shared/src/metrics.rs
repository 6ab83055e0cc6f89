//! Operational metrics: one CloudWatch Embedded Metric Format (EMF) line on stdout per unit of
//! work (a launched job, a finished job, a skipped record, a sweep...), written by `metrique`
//! (awslabs) as the unit ends. CloudWatch Logs turns the lines into metrics: no API call, no
//! added latency, and nothing buffered, so an error path or a shutdown loses none. At Lambda's
//! Shutdown phase [`at_shutdown`] detaches the sink and flushes stdout.
//!
//! Namespace [`NAMESPACE`]; every metric carries the dimension `Function` (`submit`, `monitor`,
//! `cleanup`, `bridge`), and only low-cardinality ones besides (job type, status, failure class, step,
//! reason). The job id is a property (`JobId`) of the line, never a dimension, so a metric point
//! leads to its job in CloudWatch Logs Insights. Each entry below lists its dimension sets
//! (`Function` is joined to each); the names are what `infra/` graphs and alarms on.
//!
//! | Entry | Metrics (unit) | Dimension sets |
//! |---|---|---|
//! | [`JobLaunched`] | `JobsLaunched` (Count), `LaunchLatency` (Milliseconds) | `[]`, `[JobType]` |
//! | [`SubmitFailed`] | `SubmitFailures` (Count) | `[]`, `[Step, Disposition]` |
//! | [`RecordSkipped`] | `RecordsSkipped` (Count) | `[Reason]` |
//! | [`LeaseTakenOver`] | `LeaseTakeovers` (Count) | `[]` |
//! | [`RowTooLarge`] | `RowsTooLarge` (Count) | `[]`, `[Write, Outcome]` |
//! | [`JobFinished`] | `JobsFinished` (Count) | `[]`, `[Status]`, `[JobType, Status]` |
//! | [`RunTimes`] | `RunDuration` (Seconds) | `[JobType]` |
//! | [`RunQueue`] | `QueuedTime` (Milliseconds), `RunAttempts` (Count) | `[]` |
//! | [`JobFailed`] | `JobFailures` (Count) | `[FailureClass]` |
//! | [`JobCostFinal`] | `JobCost` (None: US dollars) | `[JobType]` |
//! | [`EventIgnored`] | `EventsIgnored` (Count) | `[Reason]` |
//! | [`SweepDone`] | `SweepRepairs`, `StaleJobs` (Count) | `[]` |
//! | [`CleanupDone`] | `FoldersCleaned`, `ObjectsDeleted`, `CancelsSent`, `OrphanFolders`, `CleanupRefusals` (Count) | `[]` |
//! | [`BridgePollDone`] | `JobsBridged`, `ClaimsRecovered`, `ClaimsLost`, `JobsRefused`, `RowsCancelled`, `BridgeFailures` (Count) | `[]` |
//! | [`WrittenBack`] | `WriteBacks`, `WriteBackFailures` (Count) | `[]`, `[Outcome]` |
//! | [`ModelManageError`] | `ModelManageErrors` (Count) | `[]`, `[Status]` |
//! | [`AuthFailed`] | `AuthFailures` (Count) | `[]` |

use metrique::emf::Emf;
use metrique::unit_of_work::metrics;
use metrique::writer::sink::AttachHandle;
use metrique::writer::{AttachGlobalEntrySink, AttachGlobalEntrySinkExt, Entry, EntryIoStreamExt, FormatExt};
use metrique::unit::{Count, Millisecond, Second};
use metrique::ServiceMetrics;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ModelOp/SparkServerlessRuntime";

/// The `Function` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Function {
    Submit,
    Monitor,
    Cleanup,
    Bridge,
}

#[derive(Entry)]
#[entry(rename_all = "PascalCase")]
struct Globals {
    function: &'static str,
}

/// Sends every entry of this process to stdout as EMF, each written when it is dropped (metrique's
/// `FlushImmediately`: a Lambda environment is frozen between invocations, so a background queue
/// could hold lines across a freeze or lose them at shutdown). Keep the handle for the process's
/// life, or give it to [`at_shutdown`]; without a sink (tests of handlers), entries go nowhere.
pub fn emit_to_stdout(function: Function) -> AttachHandle {
    ServiceMetrics::write_directly_to(emf().output_to(std::io::stdout()).merge_globals(Globals { function: function.into() }))
}

/// The hook for Lambda's Shutdown phase (`lambda_runtime::spawn_graceful_shutdown_handler`,
/// which registers the no-op internal extension Lambda sends SIGTERM to a runtime for, and gives
/// it 500 ms): it logs the shutdown, drops `metrics` (the handle [`emit_to_stdout`] returned),
/// which detaches the sink after any entry still being written, and flushes stdout. With every
/// entry written as it ends this is the second guard, not the first: nothing is normally left.
pub fn at_shutdown(metrics: AttachHandle) -> impl FnOnce() -> std::future::Ready<()> + Send + 'static {
    move || {
        tracing::info!("shutdown: flushing metrics");
        drop(metrics);
        let _ = std::io::Write::flush(&mut std::io::stdout());
        std::future::ready(())
    }
}

fn emf() -> Emf {
    Emf::builder(NAMESPACE.to_string(), vec![vec!["Function".to_string()]]).build()
}

/// Appends an entry to the process's sink; with the sink [`emit_to_stdout`] attaches, it is
/// written at once. With none attached (handlers run in tests), nothing is written.
macro_rules! emit {
    ($entry:expr) => {
        if let Some(sink) = ServiceMetrics::try_sink() {
            drop($entry.append_on_drop(sink))
        }
    };
}

fn millis(duration: chrono::TimeDelta) -> u64 {
    u64::try_from(duration.num_milliseconds()).unwrap_or(0)
}

/// A job whose run StartJobRun accepted.
#[metrics(emf::dimension_sets = [[], ["JobType"]], rename_all = "PascalCase")]
pub struct JobLaunched {
    job_id: String,
    job_type: &'static str,
    #[metrics(unit = Count)]
    jobs_launched: u64,
    #[metrics(unit = Millisecond)]
    launch_latency: Option<u64>,
}

/// `JobsLaunched` 1, and `LaunchLatency`: from the stream record's creation
/// (`ApproximateCreationDateTime`) to StartJobRun's answer; none when the record has no time.
pub fn job_launched(job_id: &str, job_type: &'static str, latency: Option<chrono::TimeDelta>) {
    emit!(JobLaunched { job_id: job_id.to_string(), job_type, jobs_launched: 1, launch_latency: latency.map(millis) });
}

#[metrics(emf::dimension_sets = [[], ["Step", "Disposition"]], rename_all = "PascalCase")]
struct SubmitFailed {
    job_id: String,
    step: String,
    disposition: &'static str,
    #[metrics(unit = Count)]
    submit_failures: u64,
}

/// `SubmitFailures` 1 for a record whose submission failed at `step`: `Transient` (the record
/// is retried) or `Permanent` (the job ended in ERROR).
pub fn submit_failed(job_id: &str, step: &str, transient: bool) {
    let disposition = if transient { "Transient" } else { "Permanent" };
    emit!(SubmitFailed { job_id: job_id.to_string(), step: step.to_string(), disposition, submit_failures: 1 });
}

#[metrics(emf::dimension_sets = [["Reason"]], rename_all = "PascalCase")]
struct RecordSkipped {
    job_id: Option<String>,
    reason: &'static str,
    #[metrics(unit = Count)]
    records_skipped: u64,
}

/// `RecordsSkipped` 1: a stream record this function had nothing to do for, by `reason` (one of
/// a fixed few, such as `NotInsert`, `NotOurs`, `AlreadyLaunched`, `LeaseHeld`).
pub fn record_skipped(job_id: Option<&str>, reason: &'static str) {
    emit!(RecordSkipped { job_id: job_id.map(str::to_string), reason, records_skipped: 1 });
}

#[metrics(rename_all = "PascalCase")]
struct LeaseTakenOver {
    job_id: String,
    #[metrics(unit = Count)]
    lease_takeovers: u64,
}

/// `LeaseTakeovers` 1: a delivery took over a job whose earlier submission's lease had expired.
pub fn lease_taken_over(job_id: &str) {
    emit!(LeaseTakenOver { job_id: job_id.to_string(), lease_takeovers: 1 });
}

#[metrics(emf::dimension_sets = [[], ["Write", "Outcome"]], rename_all = "PascalCase")]
struct RowTooLarge {
    job_id: String,
    write: &'static str,
    outcome: &'static str,
    #[metrics(unit = Count)]
    rows_too_large: u64,
}

/// `RowsTooLarge` 1: DynamoDB refused a write to a job row for its 400 KB item limit (or the row was
/// refused before it, for leaving no room). `write` names it (`claim`, `record launch`, `end in
/// error`, ...), `outcome` what became of it: `Shortened` (written with less), `EndedInError` (the
/// job ended in ERROR naming the limit), `RunCancelled` (a launched run that could not be recorded
/// was cancelled), `Unrecorded` (not even the smallest write fitted: logged, the record not retried).
pub fn row_too_large(job_id: &str, write: &'static str, outcome: &'static str) {
    emit!(RowTooLarge { job_id: job_id.to_string(), write, outcome, rows_too_large: 1 });
}

#[metrics(emf::dimension_sets = [[], ["Status"], ["JobType", "Status"]], rename_all = "PascalCase")]
struct JobFinished {
    job_id: String,
    job_type: String,
    status: &'static str,
    #[metrics(unit = Count)]
    jobs_finished: u64,
}

#[metrics(emf::dimension_sets = [["JobType"]], rename_all = "PascalCase")]
struct RunTimes {
    job_id: String,
    job_type: String,
    #[metrics(unit = Second)]
    run_duration: Option<u64>,
}

#[metrics(rename_all = "PascalCase")]
struct RunQueue {
    job_id: String,
    #[metrics(unit = Millisecond)]
    queued_time: Option<u64>,
    #[metrics(unit = Count)]
    run_attempts: Option<u64>,
}

#[metrics(emf::dimension_sets = [["FailureClass"]], rename_all = "PascalCase")]
struct JobFailed {
    job_id: String,
    failure_class: String,
    #[metrics(unit = Count)]
    job_failures: u64,
}

/// What the monitor knows of a job that reached its final status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished<'a> {
    pub job_id: &'a str,
    /// ModelOp's `jobType`, `UNKNOWN` when the row has none.
    pub job_type: &'a str,
    pub status: &'static str,
    /// `totalExecutionDurationSeconds`, `queuedDurationMilliseconds` and the attempt count, when
    /// GetJobRun gave them.
    pub run_seconds: Option<i64>,
    pub queued_millis: Option<i64>,
    pub attempts: Option<i32>,
    /// The failure class of a job that ended in ERROR.
    pub failure_class: Option<String>,
}

/// `JobsFinished` 1; `RunDuration`, `QueuedTime`, `RunAttempts` when known; `JobFailures` 1 by
/// class for a job in ERROR.
pub fn job_finished(job: &Finished<'_>) {
    let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
    emit!(JobFinished { job_id: job.job_id.to_string(), job_type: job.job_type.to_string(), status: job.status, jobs_finished: 1 });
    emit!(RunTimes { job_id: job.job_id.to_string(), job_type: job.job_type.to_string(), run_duration: count(job.run_seconds) });
    emit!(RunQueue { job_id: job.job_id.to_string(), queued_time: count(job.queued_millis), run_attempts: count(job.attempts.map(i64::from)) });
    if let Some(class) = &job.failure_class {
        emit!(JobFailed { job_id: job.job_id.to_string(), failure_class: class.clone(), job_failures: 1 });
    }
}

#[metrics(emf::dimension_sets = [["JobType"]], rename_all = "PascalCase")]
struct JobCostFinal {
    job_id: String,
    job_type: String,
    job_cost: f64,
}

/// `JobCost` (US dollars), once per job, when its usage became final with a known price.
pub fn job_cost(job_id: &str, job_type: &str, usd: f64) {
    emit!(JobCostFinal { job_id: job_id.to_string(), job_type: job_type.to_string(), job_cost: usd });
}

#[metrics(emf::dimension_sets = [["Reason"]], rename_all = "PascalCase")]
struct EventIgnored {
    reason: &'static str,
    #[metrics(unit = Count)]
    events_ignored: u64,
}

/// `EventsIgnored` 1, by `reason` ([`IgnoredReason`](crate::outcome::job_run::IgnoredReason)'s names:
/// `Late`, `Duplicate`, `NotOurs`, `Malformed`, `Unhandled`, `Empty`).
pub fn event_ignored(reason: crate::outcome::job_run::IgnoredReason) {
    emit!(EventIgnored { reason: reason.into(), events_ignored: 1 });
}

#[metrics(rename_all = "PascalCase")]
struct SweepDone {
    #[metrics(unit = Count)]
    sweep_repairs: u64,
    #[metrics(unit = Count)]
    stale_jobs: u64,
}

/// After a reconciliation sweep: `StaleJobs` (WAITING/RUNNING jobs not updated for
/// `MONITOR_SWEEP_MIN_AGE_MINUTES`) and `SweepRepairs` (those whose state the sweep applied or
/// ended: their events were lost).
pub fn sweep_done(stale: usize, repairs: usize) {
    emit!(SweepDone { sweep_repairs: repairs as u64, stale_jobs: stale as u64 });
}

/// What one cleanup invocation did.
#[metrics(rename_all = "PascalCase")]
#[derive(Default)]
pub struct CleanupDone {
    #[metrics(unit = Count)]
    pub folders_cleaned: u64,
    #[metrics(unit = Count)]
    pub objects_deleted: u64,
    #[metrics(unit = Count)]
    pub cancels_sent: u64,
    #[metrics(unit = Count)]
    pub orphan_folders: u64,
    #[metrics(unit = Count)]
    pub cleanup_refusals: u64,
}

/// `FoldersCleaned`, `ObjectsDeleted`, `CancelsSent`, `OrphanFolders` (found by the orphan
/// sweep) and `CleanupRefusals` (a folder outside the job's prefix, never deleted).
pub fn cleanup_done(done: CleanupDone) {
    emit!(done);
}

/// What one scheduled invocation of the bridge did (`functions/bridge`).
#[metrics(rename_all = "PascalCase")]
#[derive(Default)]
pub struct BridgePollDone {
    /// CREATED jobs claimed in model-manage and written as rows.
    #[metrics(unit = Count)]
    pub jobs_bridged: u64,
    /// Own claims whose row was missing, finished.
    #[metrics(unit = Count)]
    pub claims_recovered: u64,
    /// Claims another runtime or poller won (412/409).
    #[metrics(unit = Count)]
    pub claims_lost: u64,
    /// Jobs ended in ERROR in model-manage (too large, not a job).
    #[metrics(unit = Count)]
    pub jobs_refused: u64,
    /// Rows cancelled because ModelOp cancelled or deleted their job.
    #[metrics(unit = Count)]
    pub rows_cancelled: u64,
    /// Steps that failed (left for the next poll).
    #[metrics(unit = Count)]
    pub bridge_failures: u64,
}

/// `JobsBridged`, `ClaimsRecovered`, `ClaimsLost`, `JobsRefused`, `RowsCancelled`, `BridgeFailures`.
pub fn bridge_poll_done(done: BridgePollDone) {
    emit!(done);
}

#[metrics(emf::dimension_sets = [[], ["Outcome"]], rename_all = "PascalCase")]
struct WrittenBack {
    job_id: String,
    outcome: &'static str,
    #[metrics(unit = Count)]
    write_backs: u64,
    #[metrics(unit = Count)]
    write_back_failures: u64,
}

/// One bridged row's write-back to model-manage: `outcome` `Written`, `Unchanged` (a
/// redelivery), `RowCancelled` (ModelOp cancelled or deleted the job) or `Failed` (the record is
/// retried): `WriteBacks` 1, or `WriteBackFailures` 1 when it failed.
pub fn written_back(job_id: &str, outcome: &'static str) {
    let failed = outcome == "Failed";
    emit!(WrittenBack { job_id: job_id.to_string(), outcome, write_backs: u64::from(!failed), write_back_failures: u64::from(failed) });
}

#[metrics(emf::dimension_sets = [[], ["Status"]], rename_all = "PascalCase")]
struct ModelManageError {
    operation: &'static str,
    status: String,
    #[metrics(unit = Count)]
    model_manage_errors: u64,
}

/// `ModelManageErrors` 1: a model-manage request answered an error status (`status` its HTTP
/// status, such as `503`) or none (`connection`), retried or not. 404, 409 and 412 are answers
/// the bridge expects (a deleted job, a lost claim) and are not counted.
pub fn model_manage_error(operation: &'static str, status: String) {
    emit!(ModelManageError { operation, status, model_manage_errors: 1 });
}

#[metrics(rename_all = "PascalCase")]
struct AuthFailed {
    reason: String,
    #[metrics(unit = Count)]
    auth_failures: u64,
}

/// `AuthFailures` 1: the token endpoint refused or failed to give a token, or model-manage refused
/// a freshly obtained one (401 twice).
pub fn auth_failed(reason: &str) {
    emit!(AuthFailed { reason: reason.to_string(), auth_failures: 1 });
}
