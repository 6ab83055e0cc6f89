//! SparkServerlessJobMonitor + SparkReportingService, event-driven: EMR Serverless job-run state
//! changes move the job forward (never back); a terminal state brings the driver's logs, the
//! failure reason or the model's result and the outputs' existence onto the job in the same write
//! as the final status. The final status never waits on CloudWatch Logs' quota: logs that cannot
//! be read at once are marked unavailable and attached by a later sweep. A schedule reconciles
//! jobs whose events were lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tracing::{debug, error, info, warn};

use shared::error::{AwsError, AwsErrorKind, Disposition, JobError};
use shared::config::{MonitorConfig, ServiceConfig};
use shared::job::record::{job_message, timestamp, validate_job_id, JobStatus, MessageLevel, ASSET_FILE};
use shared::text::{head_bounded, printable, tail_bounded};
use shared::launch::staged_files::{output_locations, RESULTS_FOLDER};
use shared::launch::plan::TAG_JOB_ID;
use shared::outcome::failure::{ModelErrorRecord, MODEL_ERROR_FILE_NAME};
use shared::outcome::job_run::{
    decide_status_change, driver_log_prefix, driver_log_streams, failure_message, statuses_before_or_at, EmrState, IgnoredReason, JobRunInfo, LogReadPatience, LogTail,
    Transition,
};
use shared::outcome::monitored_job::{DriverLogs, FileOutputContent, LogsAttachment, LogsUnavailable, MonitoredJob, OutputFile, RetryUpdate, StatusUpdate};
use shared::outcome::run_outcome::{
    attempt_from_run, attempts_from_listing, attempts_from_retry, job_failure, merge_attempts, provenance_of, run_ending, timeout_message, MergeRule,
    RetryDetail, RunEnding,
};
use shared::outcome::cost::{covering_attempts, job_cost, supersedes, usage_from_event, usage_from_run, AttemptFigures, JobCost, ResourceUsage, RunFigures, UtilizationDetail};
use shared::metrics;
use shared::ports::{JobRunReader, LogReader, MonitorStore, RunOutputReader};
use shared::job::s3_uri::S3Uri;

pub const STATE_CHANGE: &str = "EMR Serverless Job Run State Change";
pub const RETRY: &str = "EMR Serverless Job Run Retry";
/// Sent about every 30 minutes while a run goes, and once more with the final figures.
pub const RESOURCE_UTILIZATION: &str = "EMR Serverless Job Resource Utilization Update";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
/// The file the driver writes under `<stagingUri>results/`.
pub const RESULT_FILE: &str = "result.json";
/// Longest `errorMessage` written.
const MAX_ERROR_MESSAGE_BYTES: usize = 8 * 1024;
/// Largest model error record read (`results/model-error.json`); the driver writes a few KiB.
const MODEL_ERROR_MAX_BYTES: u64 = 64 * 1024;
/// The longest a final status waits for the driver's logs (read [`LogReadPatience::Once`]: a
/// throttled call fails at once, so this bounds only a read that hangs or pages slowly). Past
/// it the status is written with the logs marked unavailable.
pub const FINAL_LOG_READ_BUDGET: Duration = Duration::from_secs(5);
/// The period of the monitor's schedule: the template's `MonitorSweepSchedule`, `rate(1 minute)`
/// (SAM and CDK). The next sweep's `Scheduled Event` is due one period after this one's `time`.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// The sweep's logs pass ends this long before the next sweep is due ([`log_pass_window`]), so
/// two passes never read at once (each reads at the whole `MONITOR_LOG_READS_PER_SECOND`).
pub const LOG_PASS_END_MARGIN: Duration = Duration::from_secs(3);
/// How long the logs pass reads when its event has no `time` (a test's or a hand-sent event): the
/// time left before the next sweep is then unknown, so it keeps well inside one period.
pub const LOG_PASS_UNTIMED: Duration = Duration::from_secs(50);
/// GetLogEvents calls of one job's read, as the pass estimates it to stop starting reads in time:
/// stdout and stderr, each a page and the call that gives the token back (4 a job in the
/// completion-storm benchmark, tests/bench, step 8).
const LOG_READ_CALLS_ESTIMATE: u32 = 4;
/// After a final state's log read failed, the final states this process handles for this long
/// do not try: in a completion storm every try would spend the quota on a part of some job's logs
/// (a stream, a page) that is then read again whole. Short enough that the quota is used during
/// the storm, not left idle until the sweep's first pass (a minute later, or more when the sweep's
/// invocation waits behind the storm's events): a fleet of processes (the monitor's reserved
/// concurrency, 10 by default) comes back about once a second in all, each return reading what the
/// quota has left. At 60 s the storm benchmark's 2,000 jobs waited for the sweep with all but 4 of
/// their logs, at 10 s with all but 80 (tests/bench, BENCHMARKS.md section 8).
pub const LOG_QUOTA_COOLDOWN: Duration = Duration::from_secs(10);
/// Jobs one pass takes at most (oldest first), whatever its pace; the rest wait for the next pass.
pub const LOG_PASS_MAX_JOBS: usize = 2_000;
/// The longest one job's [`LogReadPatience::Paced`] read may take within a pass.
const PACED_LOG_READ_BUDGET: Duration = Duration::from_secs(30);
/// Longest `driverLogs.unavailable.reason`.
const UNAVAILABLE_REASON_BYTES: usize = 300;

/// What the monitor was doing when a call failed; named in every error message.
/// Its `Display` is the phrase error messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum Step {
    #[strum(to_string = "read job")]
    ReadJob,
    #[strum(to_string = "find job by run id")]
    FindJobByRun,
    #[strum(to_string = "read job run")]
    ReadJobRun,
    #[strum(to_string = "write status")]
    WriteStatus,
    #[strum(to_string = "record retry")]
    RecordRetry,
    #[strum(to_string = "record resource usage")]
    RecordUsage,
    #[strum(to_string = "query jobs awaiting usage")]
    QueryAwaitingUsage,
    #[strum(to_string = "query jobs awaiting logs")]
    QueryAwaitingLogs,
    #[strum(to_string = "attach driver logs")]
    AttachLogs,
    #[strum(to_string = "query stale jobs")]
    QueryStaleJobs,
    #[strum(to_string = "end stuck job")]
    EndStuckJob,
    /// The parts of a final report: each can be left out when it cannot be had for good.
    #[strum(to_string = "read job run details")]
    RunDetails,
    #[strum(to_string = "list job run attempts")]
    RunAttempts,
    #[strum(to_string = "read model error record")]
    ModelError,
    #[strum(to_string = "read driver stdout")]
    DriverStdout,
    #[strum(to_string = "read driver stderr")]
    DriverStderr,
    #[strum(to_string = "read model result")]
    ModelResult,
    #[strum(to_string = "check outputs")]
    Outputs,
    #[strum(to_string = "read FILE output")]
    FileOutput,
}

/// A failed monitor step. A `Retry` one fails the invocation, so EventBridge retries the event
/// (and its dead-letter queue keeps it after the last retry); malformed events and runs that are
/// not ours are acknowledged, never errors.
pub type MonitorError = JobError<Step>;

/// The monitor's one decision about a failed AWS call. A part of the final report that cannot be
/// had for good (access denied, a missing bucket) is left out, so the job still reaches its final
/// status; everything else fails the invocation and is retried.
pub fn disposition_of(step: Step, kind: AwsErrorKind) -> Disposition {
    let report_part = matches!(step, Step::RunDetails | Step::RunAttempts | Step::ModelError | Step::DriverStdout | Step::DriverStderr | Step::ModelResult | Step::Outputs | Step::FileOutput);
    match kind {
        AwsErrorKind::Transient => Disposition::Retry,
        _ if report_part => Disposition::LeaveOut,
        _ => Disposition::Retry,
    }
}

/// What the runtime reports for a failed invocation: `errorType` names the step.
pub fn diagnostic(err: &MonitorError) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic { error_type: format!("Monitor{:?}Error", err.step), error_message: err.to_string() }
}

fn step_error(job: &str, step: Step) -> impl FnOnce(AwsError) -> MonitorError + '_ {
    move |source| MonitorError::aws(job, step, disposition_of(step, source.kind), source)
}

/// Logging only (left out of mutation testing): a read of the driver's logs that found neither
/// stream, as of a run that failed before its driver started or whose logs are not delivered yet.
fn log_if_no_driver_streams(job_id: &str, prefix: &str, stdout: &LogTail, stderr: &LogTail) {
    if !stdout.found && !stderr.found {
        info!(job_id, log_stream_prefix = prefix, "no driver log streams (yet)");
    }
}

/// A report part: the value, or `fallback` when the policy leaves it out (logged, unless the
/// thing is simply not there), or the error that fails the invocation.
#[allow(clippy::result_large_err, reason = "the handler's one error type, as every step returns it; boxed here only, it would differ from its callers")]
fn report_part<T>(job_id: &str, step: Step, result: Result<T, AwsError>, fallback: T) -> Result<T, MonitorError> {
    match result {
        Ok(value) => Ok(value),
        Err(e) => match disposition_of(step, e.kind) {
            Disposition::LeaveOut => {
                if !e.is(AwsErrorKind::NotFound) {
                    warn!(job_id, part = %step, error = %e, "report part left out");
                }
                Ok(fallback)
            }
            _ => Err(step_error(job_id, step)(e)),
        },
    }
}

/// The part of a job-run event's `detail` this function reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRunDetail {
    pub job_run_id: String,
    pub application_id: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub job_run_name: Option<String>,
    /// The new attempt's number, on a Job Run Retry event (`newAttempt`; `attempt` is accepted too).
    #[serde(default, alias = "newAttempt")]
    pub attempt: Option<i64>,
}

/// What became of one event, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied { job_id: String, status: JobStatus, emr_state: String },
    /// The event changed nothing: `reason` is the `Reason` dimension of `EventsIgnored`,
    /// `detail` says what exactly (for logs and tests).
    Ignored { reason: IgnoredReason, detail: String },
    /// A Job Run Retry event's attempts joined the job's `attempts`.
    RetryRecorded { job_id: String },
    /// A job's `resourceUsage` (and `cost`) written.
    UsageRecorded { job_id: String, is_final: bool },
    /// `usage_final`: finished jobs whose final usage the sweep's re-read completed;
    /// `logs_attached`: finished jobs whose unavailable driver logs it attached.
    Swept { checked: usize, applied: usize, ended_stuck: usize, usage_final: usize, logs_attached: usize },
}

impl Outcome {
    /// `Ignored` with its reason and a detail.
    pub fn ignored(reason: IgnoredReason, detail: impl Into<String>) -> Self {
        Outcome::Ignored { reason, detail: detail.into() }
    }
}

/// The function's logic over its ports; `new` takes the fields in order.
#[derive(derive_new::new)]
pub struct MonitorHandler {
    service: ServiceConfig,
    monitor: MonitorConfig,
    store: Arc<dyn MonitorStore>,
    objects: Arc<dyn RunOutputReader>,
    emr: Arc<dyn JobRunReader>,
    logs: Arc<dyn LogReader>,
    /// When a final state's log read last failed in this process ([`LOG_QUOTA_COOLDOWN`]).
    #[new(default)]
    log_read_failed_at: std::sync::Mutex<Option<Instant>>,
}

impl MonitorHandler {
    /// One EventBridge event: the envelope is `aws_lambda_events`' EventBridge type, the job-run
    /// detail our own type.
    pub async fn handle_event(&self, payload: &Value) -> Result<Outcome, MonitorError> {
        let outcome = self.dispatch(payload).await;
        if let Ok(Outcome::Ignored { reason, .. }) = &outcome {
            metrics::event_ignored(*reason);
        }
        outcome
    }

    async fn dispatch(&self, payload: &Value) -> Result<Outcome, MonitorError> {
        let event_id = payload.get("id").and_then(Value::as_str).unwrap_or("unknown");
        let event: EventBridgeEvent<Value> = match serde_json::from_value(payload.clone()) {
            Ok(event) => event,
            Err(e) => return Ok(malformed(event_id, "", &e.to_string())),
        };
        let detail_type = event.detail_type.as_str();
        match detail_type {
            STATE_CHANGE | RETRY => {
                let detail: JobRunDetail = match serde_json::from_value(event.detail) {
                    Ok(detail) => detail,
                    Err(e) => return Ok(malformed(event_id, detail_type, &e.to_string())),
                };
                if detail_type == RETRY {
                    let retry: RetryDetail = match serde_json::from_value(payload["detail"].clone()) {
                        Ok(retry) => retry,
                        Err(e) => return Ok(malformed(event_id, detail_type, &e.to_string())),
                    };
                    return self.record_retry(&detail, &retry).await;
                }
                let Some(state) = detail.state.as_deref() else {
                    return Ok(malformed(event_id, detail_type, "detail has no state"));
                };
                self.on_state(&detail.application_id, &detail.job_run_id, detail.job_run_name.as_deref(), EmrState::parse(state)).await
            }
            RESOURCE_UTILIZATION => {
                let detail: UtilizationDetail = match serde_json::from_value(event.detail) {
                    Ok(detail) => detail,
                    Err(e) => return Ok(malformed(event_id, detail_type, &e.to_string())),
                };
                match usage_from_event(&detail) {
                    Ok(usage) => self.on_usage(&detail.application_id, &detail.job_run_id, usage).await,
                    Err(reason) => Ok(malformed(event_id, detail_type, &reason)),
                }
            }
            SCHEDULED_EVENT => self.sweep(Utc::now(), event.time).await,
            other => {
                debug!(event_id, detail_type = other, source = %event.source, "event type not handled; ignored");
                Ok(Outcome::ignored(IgnoredReason::Unhandled, format!("detail-type {other:?}")))
            }
        }
    }

    /// Applies a run's state to its job, by the same path for events and for the sweep.
    pub async fn on_state(&self, application_id: &str, run_id: &str, run_name: Option<&str>, state: EmrState) -> Result<Outcome, MonitorError> {
        let Some(job) = self.find_job(application_id, run_id, run_name).await? else {
            debug!(application_id, job_run_id = run_id, "job run is not one of ours; ignored");
            return Ok(Outcome::ignored(IgnoredReason::NotOurs, "not our job run"));
        };
        self.apply_state(&job, application_id, run_id, state).await
    }

    async fn apply_state(&self, job: &MonitoredJob, application_id: &str, run_id: &str, state: EmrState) -> Result<Outcome, MonitorError> {
        let Some(current) = job.status() else {
            warn!(job_id = %job.id(), status = ?job.status(), "job has no readable status; event ignored");
            return Ok(Outcome::ignored(IgnoredReason::NotOurs, "job status unreadable"));
        };
        if let EmrState::Unknown(name) = &state {
            warn!(job_id = %job.id(), job_run_id = run_id, emr_state = %name, "unknown EMR Serverless state: recorded, status kept");
        }
        let (status, emr_state, history_only) = match decide_status_change(current, job.emr_state.as_deref(), &state) {
            Transition::Ignore { reason, detail } => {
                debug!(job_id = %job.id(), job_run_id = run_id, emr_state = state.as_str(), detail, "event changes nothing");
                return Ok(Outcome::ignored(reason, detail));
            }
            Transition::Apply { status, emr_state, history_only } => (status, emr_state, history_only),
        };
        let mut update = StatusUpdate {
            job_id: job.id().to_string(),
            application_id: application_id.to_string(),
            run_id: run_id.to_string(),
            status,
            emr_state: emr_state.clone(),
            history_only,
            at: Utc::now(),
            from_statuses: statuses_before_or_at(status),
            blocked_emr_states: state.states_at_or_after(),
            driver_logs: None,
            error_message: None,
            model_result: None,
            output_files: None,
            job_messages: Vec::new(),
            file_outputs: Vec::new(),
            attempts: None,
            failure: None,
            provenance: None,
        };
        let mut run_read = None;
        if status.is_terminal() {
            // The result and outputs do not depend on the run's details: read them alongside.
            let success = matches!(state, EmrState::Success);
            let (report, result, outputs) = tokio::join!(
                self.attach_report(job, application_id, run_id, &state, &mut update),
                async { if success { self.read_result(job).await } else { Ok(None) } },
                async { if success { self.check_outputs(job).await.map(Some) } else { Ok(None) } }
            );
            run_read = report?;
            update.model_result = result?;
            if let Some(outputs) = outputs? {
                update.output_files = Some(outputs.files);
                update.file_outputs = outputs.file_contents;
                update.job_messages.extend(outputs.messages.iter().map(|m| job_message(update.at, MessageLevel::Warning, m)));
            }
        }
        let status = update.status;
        let applied = self.write_status(&mut update).await.map_err(step_error(job.id(), Step::WriteStatus))?;
        if !applied {
            info!(job_id = %job.id(), job_run_id = run_id, emr_state = %emr_state, "job moved on meanwhile; event changes nothing");
            return Ok(Outcome::ignored(IgnoredReason::Late, "superseded"));
        }
        info!(job_id = %job.id(), job_run_id = run_id, from = %current, to = %status, emr_state = %emr_state, "job status applied");
        if status.is_terminal() {
            let provenance = update.provenance.as_ref();
            metrics::job_finished(&metrics::Finished {
                job_id: job.id(),
                job_type: job.job_type_or_unknown(),
                status: status.as_str(),
                run_seconds: provenance.and_then(|p| p.total_execution_duration_seconds),
                queued_millis: provenance.and_then(|p| p.queued_duration_milliseconds),
                attempts: provenance.map(|p| p.attempts),
                failure_class: update.failure.as_ref().map(|f| f.class.to_string()),
            });
        }
        if let Some(run) = run_read.filter(|_| status.is_terminal()) {
            // After the status, so the status never waits for its cost; a failure here is left to
            // the final utilization event or the sweep.
            if let Err(e) = self.record_run_usage(job, application_id, run_id, &run, Utc::now()).await {
                warn!(job_id = %job.id(), error = %e, "resource usage not recorded with the final status; the sweep will retry");
            }
        }
        Ok(Outcome::Applied { job_id: job.id().to_string(), status, emr_state })
    }

    /// Writes the update. A final write DynamoDB refuses for good (its 400 KB item limit,
    /// `ItemTooLarge`: ModelOp rows can carry large inline sources; or another refusal such as a
    /// document path) is retried with a smaller report, then with none, then as the bare status,
    /// so the job still reaches its final status. A write that not even that fits is never retried
    /// (it could not fit later either): logged and counted (`RowsTooLarge`), and answered as not
    /// applied, so the event is acknowledged; the sweep tries the job again.
    async fn write_status(&self, update: &mut StatusUpdate) -> Result<bool, AwsError> {
        let mut level = 0;
        loop {
            match self.store.apply_status(update).await {
                Err(e) if matches!(e.kind, AwsErrorKind::Permanent | AwsErrorKind::ItemTooLarge) && update.status.is_terminal() && level < 3 => {
                    level += 1;
                    warn!(job_id = %update.job_id, error = %e, level, "final write refused; retrying with a smaller report");
                    shrink_report(update, level);
                }
                Err(e) if e.is(AwsErrorKind::ItemTooLarge) => {
                    metrics::row_too_large(&update.job_id, "status", "Unrecorded");
                    error!(job_id = %update.job_id, status = %update.status, error = %e, "the job row has no room for its status; left as it is");
                    return Ok(false);
                }
                other => {
                    if level > 0 && other.is_ok() {
                        metrics::row_too_large(&update.job_id, "status", "Shortened");
                    }
                    return other;
                }
            }
        }
    }

    /// Finds the job of a run: by the run's name (submit names runs after their job), by the
    /// run id index, then by the run's own name and tags (the event may precede submit's record).
    async fn find_job(&self, application_id: &str, run_id: &str, run_name: Option<&str>) -> Result<Option<MonitoredJob>, MonitorError> {
        let ours = |job: &MonitoredJob| job.is_ours() && job.header.spark_application_id.as_deref().is_none_or(|id| id == run_id);
        if let Some(name) = run_name.filter(|n| validate_job_id(n).is_ok()) {
            if let Some(job) = self.store.monitored_job(name).await.map_err(step_error(name, Step::ReadJob))? {
                if ours(&job) {
                    return Ok(Some(job));
                }
            }
        }
        if let Some(job) = self.store.job_by_run_id(run_id).await.map_err(step_error(run_id, Step::FindJobByRun))? {
            return Ok(Some(job).filter(ours));
        }
        let run = match self.emr.get_job_run(application_id, run_id).await {
            Ok(run) => run,
            Err(e) if e.is(AwsErrorKind::NotFound) => return Ok(None),
            Err(e) => return Err(step_error(run_id, Step::ReadJobRun)(e)),
        };
        let candidates = [run.tags.get(TAG_JOB_ID).cloned(), run.name.clone()];
        for id in candidates.into_iter().flatten().filter(|id| validate_job_id(id).is_ok()) {
            if let Some(job) = self.store.monitored_job(&id).await.map_err(step_error(&id, Step::ReadJob))? {
                if ours(&job) {
                    return Ok(Some(job));
                }
            }
        }
        Ok(None)
    }

    /// The final report, gathered before the final status is written: the run's details and
    /// attempts (and, for a failed run, the model error record) at once, then the latest
    /// attempt's driver logs; the status the run's end means (a timeout is an ERROR), the
    /// failure reason and `failure` object, `attempts` and `provenance`.
    async fn attach_report(
        &self,
        job: &MonitoredJob,
        application_id: &str,
        run_id: &str,
        state: &EmrState,
        update: &mut StatusUpdate,
    ) -> Result<Option<JobRunInfo>, MonitorError> {
        let failed = matches!(state, EmrState::Failed);
        let (run, listed, model_error) = tokio::join!(
            self.emr.get_job_run(application_id, run_id),
            self.emr.list_job_run_attempts(application_id, run_id),
            async { if failed { self.read_model_error(job).await } else { Ok(None) } }
        );
        let run = report_part(job.id(), Step::RunDetails, run.map(Some), None)?;
        let listed = report_part(job.id(), Step::RunAttempts, listed, Vec::new())?;
        let model_error = model_error?;
        let mut incoming = attempts_from_listing(&listed);
        if incoming.is_empty() {
            incoming.extend(run.as_ref().and_then(attempt_from_run));
        }
        let attempts = merge_attempts(&job.attempts, &incoming, MergeRule::Override);
        let attempt = run.as_ref().and_then(|r| r.attempt).or_else(|| attempts.last().map(|a| a.attempt));

        let prefix = driver_log_prefix(job.id(), application_id, run_id);
        let failed_at = *self.log_read_failed_at.lock().unwrap();
        let read = match failed_at.filter(|at| log_quota_cooling(at.elapsed())) {
            Some(at) => DriverLogRead::Unavailable(format!("not read: a log read of this function failed {} s before; left to the sweep", at.elapsed().as_secs())),
            None => {
                let read = self.read_driver_logs(job.id(), &prefix, attempt, LogReadPatience::Once, FINAL_LOG_READ_BUDGET).await;
                if matches!(read, DriverLogRead::Unavailable(_)) {
                    *self.log_read_failed_at.lock().unwrap() = Some(Instant::now());
                }
                read
            }
        };
        let (stdout, stderr, unavailable) = match read {
            DriverLogRead::Read { stdout, stderr } => {
                log_if_no_driver_streams(job.id(), &prefix, &stdout, &stderr);
                (stdout, stderr, None)
            }
            DriverLogRead::Unavailable(reason) => {
                warn!(job_id = %job.id(), job_run_id = run_id, reason, "driver logs unavailable: the final status is written without them; the sweep attaches them");
                (LogTail::default(), LogTail::default(), Some(reason))
            }
        };

        let ending = run_ending(state, run.as_ref());
        update.status = ending.status();
        let details = run.as_ref().and_then(|r| r.state_details.as_deref());
        match &ending {
            RunEnding::TimedOut { reason, .. } => {
                warn!(job_id = %job.id(), job_run_id = run_id, emr_state = state.as_str(), reason = %reason, "EMR Serverless ended the run for a timeout: ERROR");
                update.error_message = Some(timeout_message(job.id(), state.as_str(), reason, details));
            }
            RunEnding::AsStated(_) if matches!(state, EmrState::Failed | EmrState::Cancelled) => {
                update.error_message = Some(failure_message(job.id(), state.as_str(), details, &stderr.text, MAX_ERROR_MESSAGE_BYTES));
            }
            RunEnding::AsStated(_) => {}
        }
        if update.status == JobStatus::Error {
            let mut failure = job_failure(&ending, run.as_ref(), model_error.as_ref(), &stderr.text);
            if let Some(environment) = &self.monitor.spark_environment_name {
                failure = failure.naming_spark_environment(environment);
            }
            info!(job_id = %job.id(), job_run_id = run_id, failure_class = %failure.class, "failure classified");
            update.failure = Some(failure);
        }
        update.provenance = run.as_ref().map(|r| provenance_of(r, &attempts));
        update.attempts = Some(attempts).filter(|a| !a.is_empty());
        update.job_messages = job_messages(update.at, run_id, state, &stdout.text, update.error_message.as_deref());
        // The stderr tail can decide the class only when neither the model's record nor EMR's
        // timeout did (`classify_failure`'s order).
        let refines_failure = update.status == JobStatus::Error && model_error.is_none() && !matches!(ending, RunEnding::TimedOut { .. });
        update.driver_logs = Some(DriverLogs {
            truncated: stdout.truncated || stderr.truncated,
            stdout: stdout.text,
            stderr: stderr.text,
            log_group_name: self.service.log_group.clone(),
            log_stream_name_prefix: prefix,
            attempt,
            unavailable: unavailable.map(|reason| LogsUnavailable { reason, since: timestamp(update.at), refines_failure }),
        });
        Ok(run)
    }

    /// A utilization event: the job's usage, if it is newer than what the row has
    /// ([`supersedes`]); the job's status is not touched.
    async fn on_usage(&self, application_id: &str, run_id: &str, usage: ResourceUsage) -> Result<Outcome, MonitorError> {
        let Some(job) = self.find_job(application_id, run_id, None).await? else {
            debug!(application_id, job_run_id = run_id, "utilization of a job run that is not one of ours; ignored");
            return Ok(Outcome::ignored(IgnoredReason::NotOurs, "not our job run"));
        };
        self.record_usage(&job, usage).await
    }

    /// `resourceUsage` from GetJobRun, for a run in a final state: of a retried run, every
    /// attempt's figures summed (GetJobRun describes the latest attempt; each earlier one is read
    /// with `attempt`), or the latest's marked `latestAttemptOnly` when one cannot be read.
    async fn record_run_usage(&self, job: &MonitoredJob, application_id: &str, run_id: &str, run: &JobRunInfo, now: DateTime<Utc>) -> Result<Outcome, MonitorError> {
        let figures = RunFigures {
            utilization: run.utilization.as_ref(),
            terminal: EmrState::parse(&run.state).is_terminal(),
            started_at: run.started_at,
            ran_per_row: job.ran_per_row(),
            ended_at: run.ended_at,
            execution_seconds: run.total_execution_duration_seconds,
        };
        let attempts = run.attempt.unwrap_or(1);
        let earlier = self.earlier_attempts(job.id(), application_id, run_id, attempts).await;
        // An earlier attempt that ran means the run did, whatever the latest attempt's startedAt.
        let ran_before = earlier.iter().flatten().any(|a| a.utilization.is_some_and(|u| !u.used.is_zero()));
        let figures = RunFigures { ran_per_row: figures.ran_per_row || ran_before, ..figures };
        match usage_from_run(figures, now).map(|latest| covering_attempts(latest, attempts, earlier.as_deref())) {
            Some(usage) => self.record_usage(job, usage).await,
            None => Ok(Outcome::ignored(IgnoredReason::Empty, "no utilization figures yet")),
        }
    }

    /// The figures of attempts 1 to `attempts - 1` (GetJobRun with `attempt`), or `None` when
    /// one cannot be read (logged; the usage is then the latest attempt's and not final).
    async fn earlier_attempts(&self, job_id: &str, application_id: &str, run_id: &str, attempts: i32) -> Option<Vec<AttemptFigures>> {
        let reads = (1..attempts).map(|n| self.emr.get_job_run_attempt(application_id, run_id, n));
        let mut figures = Vec::new();
        for (n, read) in (1..attempts).zip(futures::future::join_all(reads).await) {
            match read {
                Ok(info) => figures.push(AttemptFigures { utilization: info.utilization, execution_seconds: info.total_execution_duration_seconds }),
                Err(e) => {
                    warn!(job_id, job_run_id = run_id, attempt = n, error = %e, "an earlier attempt's usage could not be read; the latest attempt's recorded");
                    return None;
                }
            }
        }
        Some(figures)
    }

    /// Writes usage and its cost under the ordering rule; a refused write is not an error.
    async fn record_usage(&self, job: &MonitoredJob, usage: ResourceUsage) -> Result<Outcome, MonitorError> {
        if !supersedes(&usage, job.resource_usage.as_ref()) {
            debug!(job_id = %job.id(), as_of = %usage.as_of, "usage not newer than the row's; ignored");
            return Ok(Outcome::ignored(IgnoredReason::Late, "usage not newer"));
        }
        let cost = self.price(job, &usage);
        let written = self.store.record_usage(job.id(), &usage, cost.as_ref()).await.map_err(step_error(job.id(), Step::RecordUsage))?;
        if !written {
            return Ok(Outcome::ignored(IgnoredReason::Late, "usage not newer"));
        }
        info!(job_id = %job.id(), is_final = usage.is_final, as_of = %usage.as_of, cost_usd = cost.as_ref().map(|c| c.amount), "resource usage recorded");
        if let Some(cost) = cost.as_ref().filter(|_| usage.is_final) {
            metrics::job_cost(job.id(), job.job_type_or_unknown(), cost.amount);
        }
        Ok(Outcome::UsageRecorded { job_id: job.id().to_string(), is_final: usage.is_final })
    }

    /// The cost of `usage`, when the run's architecture and a price for it in this region are known.
    fn price(&self, job: &MonitoredJob, usage: &ResourceUsage) -> Option<JobCost> {
        let region = self.monitor.region.as_deref()?;
        let Some(architecture) = job.architecture() else {
            debug!(job_id = %job.id(), "no emrApplicationArchitecture on the job; usage recorded without a cost");
            return None;
        };
        let Some(quote) = self.monitor.prices.quote(region, architecture) else {
            debug!(job_id = %job.id(), region, %architecture, "no known price; usage recorded without a cost");
            return None;
        };
        Some(job_cost(usage, &quote, region, architecture))
    }

    /// Both driver streams of the run's latest attempt, within `budget`, or why they cannot be had
    /// now: a transient error (throttling included, after the retries `patience` allows) or the
    /// budget spent. A stream that cannot be had for good (access denied) is left out, empty.
    async fn read_driver_logs(&self, job_id: &str, prefix: &str, attempt: Option<i32>, patience: LogReadPatience, budget: Duration) -> DriverLogRead {
        let both = async {
            tokio::join!(
                self.driver_log(job_id, prefix, attempt, "stdout", Step::DriverStdout, patience),
                self.driver_log(job_id, prefix, attempt, "stderr", Step::DriverStderr, patience)
            )
        };
        let reason = match tokio::time::timeout(budget, both).await {
            Ok((Ok(stdout), Ok(stderr))) => return DriverLogRead::Read { stdout, stderr },
            Ok((Err(e), _) | (_, Err(e))) => e.to_string(),
            Err(_) => format!("CloudWatch Logs did not answer within {} s", budget.as_secs()),
        };
        let line = reason.lines().next().unwrap_or_default();
        DriverLogRead::Unavailable(head_bounded(line, UNAVAILABLE_REASON_BYTES).to_string())
    }

    /// The end of one driver log stream of the run's latest attempt, looked for under the
    /// attempt's path and the plain path ([`driver_log_streams`]); empty when neither exists.
    async fn driver_log(&self, job_id: &str, prefix: &str, attempt: Option<i32>, stream: &str, step: Step, patience: LogReadPatience) -> Result<LogTail, MonitorError> {
        for name in driver_log_streams(prefix, attempt, stream) {
            let tail = self.logs.tail(&self.service.log_group, &name, self.monitor.log_tail_bytes, patience).await;
            let tail = report_part(job_id, step, tail, LogTail::default())?;
            if tail.found {
                return Ok(tail);
            }
        }
        Ok(LogTail::default())
    }

    /// `<stagingUri>results/<file>`, or `None` when the job's staging URI is not an s3 URL.
    fn results_uri(&self, job: &MonitoredJob, file: &str) -> Option<S3Uri> {
        let staging = job.staging_uri.clone().unwrap_or_else(|| self.service.staging.job_uri(job.id()));
        let Some(folder) = S3Uri::parse(&staging) else {
            warn!(job_id = %job.id(), staging_uri = %printable(&staging), "stagingUri is not an s3 URL; no results read");
            return None;
        };
        Some(S3Uri { bucket: folder.bucket, key: format!("{}{RESULTS_FOLDER}{file}", folder.key) })
    }

    /// The driver's record of what the model raised (`results/model-error.json`), if it wrote one
    /// and it can be read; a record that is not one is logged and left out.
    async fn read_model_error(&self, job: &MonitoredJob) -> Result<Option<ModelErrorRecord>, MonitorError> {
        let Some(uri) = self.results_uri(job, MODEL_ERROR_FILE_NAME) else { return Ok(None) };
        let text = self.objects.get_text(&uri, MODEL_ERROR_MAX_BYTES).await.map(Some);
        let Some(text) = report_part(job.id(), Step::ModelError, text, None)? else { return Ok(None) };
        match serde_json::from_str(&text) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                warn!(job_id = %job.id(), error = %e, "model error record unreadable; left out");
                Ok(None)
            }
        }
    }

    /// `modelResult`: what the driver wrote to `<staging>/results/result.json`, or a pointer to
    /// it when it is larger than the configured bound.
    async fn read_result(&self, job: &MonitoredJob) -> Result<Option<Value>, MonitorError> {
        let Some(uri) = self.results_uri(job, RESULT_FILE) else { return Ok(None) };
        let size = self.objects.object_size(&uri.bucket, &uri.key).await;
        let size = report_part(job.id(), Step::ModelResult, size, None)?;
        let Some(size) = size else { return Ok(None) };
        let max = self.monitor.result_max_bytes as u64;
        if size > max {
            return Ok(Some(serde_json::json!({ "truncated": true, "sizeBytes": size, "resultUri": uri.to_string() })));
        }
        let text = self.objects.get_text(&uri, max).await.map(Some);
        let Some(text) = report_part(job.id(), Step::ModelResult, text, None)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_str(&text).unwrap_or_else(|e| {
            warn!(job_id = %job.id(), error = %e, "model result is not JSON; stored as text");
            Value::String(text)
        })))
    }

    /// Whether each output the model was given exists now (a file, or a folder Spark wrote), at
    /// the `s3://` location it was told (a `FILE` output: under the job's `outputs/`); and the
    /// content of each `FILE` output the model wrote as one object, for ModelOp's `outputData`.
    async fn check_outputs(&self, job: &MonitoredJob) -> Result<Outputs, MonitorError> {
        let staging = job.staging_uri.clone().unwrap_or_else(|| self.service.staging.job_uri(job.id()));
        let mut outputs = Outputs::default();
        let locations = output_locations(&staging, &job.output_data);
        for (index, (asset, location)) in job.output_data.iter().zip(locations).enumerate() {
            let Some(uri) = location else { continue };
            let found = self.objects.has_objects(&uri.bucket, &uri.key).await;
            let exists = report_part(job.id(), Step::Outputs, found, false)?;
            let label = asset.label(index);
            if exists && asset.is_type(ASSET_FILE) {
                match self.file_output(job, index, &uri).await? {
                    Ok(content) => outputs.file_contents.push(content),
                    Err(why) => outputs.messages.push(format!("FILE output {label:?} ({uri}) is not copied into outputData: {why}")),
                }
            }
            let name = asset.name.clone().filter(|n| !n.is_empty()).or_else(|| asset.filename.clone());
            outputs.files.push(OutputFile { name, file_url: uri.to_string(), exists });
        }
        Ok(outputs)
    }

    /// A `FILE` output written as one object of at most `MONITOR_RESULT_MAX_BYTES`, as base64.
    async fn file_output(&self, job: &MonitoredJob, index: usize, uri: &S3Uri) -> Result<Result<FileOutputContent, String>, MonitorError> {
        let max = self.monitor.result_max_bytes as u64;
        let size = self.objects.object_size(&uri.bucket, &uri.key).await;
        let size = report_part(job.id(), Step::FileOutput, size, None)?;
        match size {
            None => return Ok(Err("the model wrote a folder there, not one file".into())),
            Some(size) if size > max => return Ok(Err(format!("it is {size} bytes; at most {max} (MONITOR_RESULT_MAX_BYTES) are copied"))),
            Some(_) => {}
        }
        let bytes = self.objects.get_bytes(uri, max).await.map(Some);
        let Some(bytes) = report_part(job.id(), Step::FileOutput, bytes, None)? else {
            return Ok(Err("it could not be read".into()));
        };
        Ok(Ok(FileOutputContent::of_bytes(index, &bytes)))
    }

    /// A Retry event: the failed attempt and the new one join the job's `attempts` (merged with
    /// what the row has) and `statusHistory`; the status stays (a retry never moves a job back to
    /// WAITING). Idempotent and order-independent: an event whose attempts the row already has
    /// changes nothing (`Duplicate`), the write holds only over the row as read (a concurrent
    /// copy is refused, reads again and finds it recorded), and a Retry that arrives before
    /// submit recorded the run is recorded like a state change (the run id filled in).
    async fn record_retry(&self, detail: &JobRunDetail, retry: &RetryDetail) -> Result<Outcome, MonitorError> {
        /// Reads of the row after a refused write (another writer got there in between).
        const TRIES: usize = 3;
        let Some(mut job) = self.find_job(&detail.application_id, &detail.job_run_id, detail.job_run_name.as_deref()).await? else {
            return Ok(Outcome::ignored(IgnoredReason::NotOurs, "not our job run"));
        };
        let incoming = attempts_from_retry(retry);
        for tried in 1..=TRIES {
            let Some(status) = job.status() else {
                return Ok(Outcome::ignored(IgnoredReason::NotOurs, "job status unreadable"));
            };
            if status.is_terminal() {
                return Ok(Outcome::ignored(IgnoredReason::Late, "retry of a finished job"));
            }
            let attempts = merge_attempts(&job.attempts, &incoming, MergeRule::FillGaps);
            if attempts == job.attempts {
                debug!(job_id = %job.id(), job_run_id = %detail.job_run_id, attempt = ?detail.attempt, "retry already recorded");
                return Ok(Outcome::ignored(IgnoredReason::Duplicate, "retry already recorded"));
            }
            let update = RetryUpdate {
                job_id: job.id().to_string(),
                application_id: detail.application_id.clone(),
                run_id: detail.job_run_id.clone(),
                attempt: detail.attempt,
                seen_attempts: job.attempts.clone(),
                attempts,
                status,
                at: Utc::now(),
            };
            if self.store.record_retry(&update).await.map_err(step_error(job.id(), Step::RecordRetry))? {
                info!(job_id = %job.id(), job_run_id = %detail.job_run_id, attempt = ?detail.attempt, "job run retry recorded");
                return Ok(Outcome::RetryRecorded { job_id: job.id().to_string() });
            }
            debug!(job_id = %job.id(), tried, "the row changed since it was read; reading it again");
            let reread = self.store.monitored_job(job.id()).await.map_err(step_error(job.id(), Step::ReadJob))?;
            match reread.filter(|j| j.is_ours() && j.header.spark_application_id.as_deref().is_none_or(|id| id == detail.job_run_id)) {
                Some(fresh) => job = fresh,
                None => return Ok(Outcome::ignored(IgnoredReason::NotOurs, "the job is gone or has another run")),
            }
        }
        warn!(job_id = %job.id(), job_run_id = %detail.job_run_id, "the row changed on every try (or its attempts are unreadable); retry left to the final state's ListJobRunAttempts");
        Ok(Outcome::ignored(IgnoredReason::Late, "the row kept changing"))
    }

    /// The reconciliation sweep: WAITING/RUNNING jobs not updated for a while get their run's
    /// state from GetJobRun, applied like an event; WAITING jobs without a run for too long end
    /// in ERROR. Every job is tried; the invocation fails if any failed transiently.
    /// `scheduled_at` is the `Scheduled Event`'s `time`, when the schedule was due: the logs pass
    /// reads until just before the next one is ([`log_pass_window`]).
    pub async fn sweep(&self, now: DateTime<Utc>, scheduled_at: Option<DateTime<Utc>>) -> Result<Outcome, MonitorError> {
        // The logs pass paces itself under CloudWatch Logs' quota for most of the invocation; the
        // reconciliation and usage passes call other services meanwhile.
        let logs_deadline = Instant::now() + log_pass_window(scheduled_at, now);
        let (reconciled, logs_attached) = tokio::join!(self.reconcile_and_complete_usage(now), self.attach_unavailable_logs(now, logs_deadline));
        let (checked, applied, ended_stuck, usage_final) = reconciled?;
        Ok(Outcome::Swept { checked, applied, ended_stuck, usage_final, logs_attached })
    }

    /// The reconciliation pass and the usage pass: (checked, applied, ended stuck, usage final).
    async fn reconcile_and_complete_usage(&self, now: DateTime<Utc>) -> Result<(usize, usize, usize, usize), MonitorError> {
        let mut stale = Vec::new();
        for status in [JobStatus::Waiting, JobStatus::Running] {
            let jobs = self.store.stale_jobs(status, now - self.monitor.sweep_min_age).await.map_err(step_error("(sweep)", Step::QueryStaleJobs))?;
            stale.extend(jobs.into_iter().filter(MonitoredJob::is_ours));
        }
        let checked = stale.len();
        let results: Vec<Result<SweepResult, MonitorError>> =
            stream::iter(stale).map(|job| self.reconcile(job, now)).buffer_unordered(self.monitor.max_concurrency).collect().await;
        let (mut applied, mut ended_stuck, mut first_error) = (0, 0, None);
        for result in results {
            match result {
                Ok(SweepResult::Applied) => applied += 1,
                Ok(SweepResult::EndedStuck) => ended_stuck += 1,
                Ok(SweepResult::Unchanged) => {}
                Err(e) => {
                    error!(error = %e, "sweep could not reconcile a job");
                    first_error.get_or_insert(e);
                }
            }
        }
        let usage_final = self.complete_usage(now).await;
        metrics::sweep_done(checked, applied + ended_stuck);
        info!(checked, applied, ended_stuck, usage_final, "reconciliation sweep done");
        match first_error {
            Some(e) => Err(e),
            None => Ok((checked, applied, ended_stuck, usage_final)),
        }
    }

    /// The logs pass: finished jobs (ended within `MONITOR_USAGE_SWEEP_HOURS`) whose driver logs
    /// were unavailable with their final status, oldest first within a status (the statuses in
    /// the order their queries answer: reading starts with the first), as many as it can read before
    /// `deadline` ([`log_pass_capacity`]: no page of the table read beyond them), each
    /// read [`LogReadPatience::Paced`] (at `MONITOR_LOG_READS_PER_SECOND`, this service's share of
    /// the quota others share, with the SDK's backoff on throttling) and attached, a few at once
    /// ([`log_pass_reads_in_flight`]: enough to keep the pace), until `deadline`: no read starts
    /// once the reads in flight would not end by it ([`log_pass_drain`]). A job whose logs still cannot be read stays
    /// marked for the next pass. Never fails the invocation.
    async fn attach_unavailable_logs(&self, now: DateTime<Utc>, deadline: Instant) -> usize {
        let since = now - self.monitor.usage_sweep_window;
        let in_flight = log_pass_reads_in_flight(self.monitor.log_reads_per_second, self.monitor.max_concurrency);
        let capacity = log_pass_capacity(deadline.saturating_duration_since(Instant::now()), self.monitor.log_reads_per_second, in_flight);
        // The three final statuses are asked for at once, and reading starts with the first answer:
        // the pass's minute is spent reading, not waiting on the slowest query.
        let queries = [JobStatus::Complete, JobStatus::Error, JobStatus::Cancelled].map(|status| self.store.jobs_awaiting_logs(status, since, capacity));
        let since_of = |job: &MonitoredJob| job.driver_logs.as_ref().and_then(|l| l.unavailable.as_ref()).map(|u| u.since.clone()).unwrap_or_default();
        let answers = stream::iter(queries).buffer_unordered(3).flat_map(|answer| {
            let mut jobs: Vec<MonitoredJob> = match answer {
                Ok(jobs) => jobs.into_iter().filter(MonitoredJob::is_ours).collect(),
                Err(e) => {
                    error!(error = %step_error("(sweep)", Step::QueryAwaitingLogs)(e), "sweep could not list jobs awaiting logs");
                    Vec::new()
                }
            };
            jobs.sort_by_cached_key(since_of);
            stream::iter(jobs)
        });
        let drain = log_pass_drain(in_flight, self.monitor.log_reads_per_second);
        let attach = |job: MonitoredJob| async move {
            if Instant::now() + drain >= deadline {
                return false;
            }
            match self.attach_logs_later(&job).await {
                Ok(attached) => attached,
                Err(e) => {
                    warn!(job_id = %job.id(), error = %e, "driver logs not attached; the next sweep tries again");
                    false
                }
            }
        };
        let mut taken = 0;
        let attached = answers.take(capacity).inspect(|_| taken += 1).map(attach).buffer_unordered(in_flight).filter(|a| futures::future::ready(*a)).count().await;
        if taken > 0 {
            info!(taken, attached, "driver logs pass done");
        }
        attached
    }

    /// One job's logs, read [`LogReadPatience::Paced`] and written with what they refine: when the
    /// failure was classified without them, it is classified again with them (GetJobRun gives
    /// the run's timing and `stateDetails` again; the model error record, had there been one,
    /// would have decided the class already). False when they still cannot be read.
    async fn attach_logs_later(&self, job: &MonitoredJob) -> Result<bool, MonitorError> {
        let (Some(logs), Some(app), Some(run)) = (job.driver_logs.as_ref(), job.header.emr_application_id.as_deref(), job.header.spark_application_id.as_deref()) else {
            return Ok(false);
        };
        let Some(unavailable) = logs.unavailable.as_ref() else { return Ok(false) };
        if logs.log_stream_name_prefix != driver_log_prefix(job.id(), app, run) {
            // The marker is of another run than the row's now: those logs are not this run's.
            debug!(job_id = %job.id(), job_run_id = run, "unavailable driver logs of another run; left alone");
            return Ok(false);
        }
        let (stdout, stderr) = match self.read_driver_logs(job.id(), &logs.log_stream_name_prefix, logs.attempt, LogReadPatience::Paced, PACED_LOG_READ_BUDGET).await {
            DriverLogRead::Read { stdout, stderr } => (stdout, stderr),
            DriverLogRead::Unavailable(reason) => {
                debug!(job_id = %job.id(), reason, "driver logs still unavailable");
                return Ok(false);
            }
        };
        let at = Utc::now();
        let (mut job_messages, mut refined) = (stdout_messages(at, &stdout.text), None);
        if unavailable.refines_failure && job.status() == Some(JobStatus::Error) {
            let info = self.emr.get_job_run(app, run).await.map_err(step_error(job.id(), Step::ReadJobRun))?;
            let state = EmrState::parse(job.emr_state.as_deref().unwrap_or(&info.state));
            let ending = run_ending(&state, Some(&info));
            let mut failure = job_failure(&ending, Some(&info), None, &stderr.text);
            if let Some(environment) = &self.monitor.spark_environment_name {
                failure = failure.naming_spark_environment(environment);
            }
            let message = failure_message(job.id(), state.as_str(), info.state_details.as_deref(), &stderr.text, MAX_ERROR_MESSAGE_BYTES);
            if job.error_message.as_deref() != Some(message.as_str()) {
                job_messages.push(job_message(at, MessageLevel::Error, &message));
            }
            info!(job_id = %job.id(), failure_class = %failure.class, "failure classified again with the driver's stderr");
            refined = Some((failure, message));
        }
        let (failure, error_message) = refined.unzip();
        let attachment = LogsAttachment {
            job_id: job.id().to_string(),
            run_id: run.to_string(),
            driver_logs: DriverLogs { truncated: stdout.truncated || stderr.truncated, stdout: stdout.text, stderr: stderr.text, unavailable: None, ..logs.clone() },
            failure,
            error_message,
            job_messages,
            at,
        };
        let attached = self.store.attach_logs(&attachment).await.map_err(step_error(job.id(), Step::AttachLogs))?;
        if attached {
            info!(job_id = %job.id(), job_run_id = run, unavailable_since = %unavailable.since, "driver logs attached");
        }
        Ok(attached)
    }

    /// Re-reads the runs of jobs that ended within the usage window and whose usage is not final
    /// (billed figures read zero for a while after a run ends); returns how many became final.
    /// Failures are logged: the next sweep tries again, and no job's status depends on it.
    async fn complete_usage(&self, now: DateTime<Utc>) -> usize {
        let since = now - self.monitor.usage_sweep_window;
        let mut awaiting = Vec::new();
        for status in [JobStatus::Complete, JobStatus::Error, JobStatus::Cancelled] {
            match self.store.jobs_awaiting_usage(status, since).await {
                Ok(jobs) => awaiting.extend(jobs.into_iter().filter(MonitoredJob::is_ours)),
                Err(e) => error!(error = %step_error("(sweep)", Step::QueryAwaitingUsage)(e), "sweep could not list jobs awaiting usage"),
            }
        }
        let reread = |job: MonitoredJob| async move {
            let (Some(app), Some(run)) = (job.header.emr_application_id.clone(), job.header.spark_application_id.clone()) else {
                return Ok(false);
            };
            let info = self.emr.get_job_run(&app, &run).await.map_err(step_error(job.id(), Step::ReadJobRun))?;
            let outcome = self.record_run_usage(&job, &app, &run, &info, now).await?;
            Ok::<_, MonitorError>(matches!(outcome, Outcome::UsageRecorded { is_final: true, .. }))
        };
        let results: Vec<Result<bool, MonitorError>> = stream::iter(awaiting).map(reread).buffer_unordered(self.monitor.max_concurrency).collect().await;
        results
            .into_iter()
            .filter(|r| match r {
                Ok(now_final) => *now_final,
                Err(e) => {
                    warn!(error = %e, "sweep could not complete a job's usage; next sweep retries");
                    false
                }
            })
            .count()
    }

    async fn reconcile(&self, job: MonitoredJob, now: DateTime<Utc>) -> Result<SweepResult, MonitorError> {
        match (job.header.emr_application_id.clone(), job.header.spark_application_id.clone()) {
            (Some(app), Some(run)) => {
                let info = match self.emr.get_job_run(&app, &run).await {
                    Ok(info) => info,
                    Err(e) if e.is(AwsErrorKind::NotFound) => {
                        warn!(job_id = %job.id(), job_run_id = %run, "the job's run no longer exists; left for an operator");
                        return Ok(SweepResult::Unchanged);
                    }
                    Err(e) => return Err(step_error(job.id(), Step::ReadJobRun)(e)),
                };
                match self.apply_state(&job, &app, &run, EmrState::parse(&info.state)).await? {
                    Outcome::Applied { .. } => Ok(SweepResult::Applied),
                    _ => Ok(SweepResult::Unchanged),
                }
            }
            _ if job.status() == Some(JobStatus::Waiting) && self.is_stuck(&job, now) => {
                let minutes = self.monitor.stuck_waiting_age.num_minutes();
                let message = format!("job {}: submit: no EMR Serverless job run was recorded within {minutes} minutes of the claim; the submission was given up", job.id());
                let ended = match self.store.fail_stuck(job.id(), &message, now).await {
                    // A row at DynamoDB's 400 KB limit: no retry could fit either.
                    Err(e) if e.is(AwsErrorKind::ItemTooLarge) => {
                        metrics::row_too_large(job.id(), "end stuck job", "Unrecorded");
                        error!(job_id = %job.id(), error = %e, "the stuck job's row has no room for its ERROR; left as it is");
                        false
                    }
                    ended => ended.map_err(step_error(job.id(), Step::EndStuckJob))?,
                };
                if ended {
                    warn!(job_id = %job.id(), "WAITING job without a run ended in ERROR");
                    Ok(SweepResult::EndedStuck)
                } else {
                    Ok(SweepResult::Unchanged)
                }
            }
            _ => Ok(SweepResult::Unchanged),
        }
    }

    fn is_stuck(&self, job: &MonitoredJob, now: DateTime<Utc>) -> bool {
        let updated = job.updated_at.map(|t| t.0);
        updated.is_some_and(|t| now - t >= self.monitor.stuck_waiting_age)
    }
}

enum SweepResult {
    Applied,
    EndedStuck,
    Unchanged,
}

/// The driver's logs as a read found them, or why they could not be read now.
enum DriverLogRead {
    Read { stdout: LogTail, stderr: LogTail },
    Unavailable(String),
}

/// What a successful run left at its outputs.
#[derive(Debug, Default)]
struct Outputs {
    files: Vec<OutputFile>,
    file_contents: Vec<FileOutputContent>,
    /// Why a `FILE` output's content is not on the row.
    messages: Vec<String>,
}

/// ModelOp's `jobMessages` for a final state: the run's end, the driver's stdout lines (ModelOp's
/// Spark runtime stores driver output there, dv301 "Spark Details: Spark Submit"), and the failure.
fn job_messages(at: DateTime<Utc>, run_id: &str, state: &EmrState, stdout: &str, error: Option<&str>) -> Vec<String> {
    let mut messages = vec![job_message(at, MessageLevel::Info, &format!("EMR Serverless job run {run_id} ended {}", state.as_str()))];
    messages.extend(stdout_messages(at, stdout));
    messages.extend(error.map(|e| job_message(at, MessageLevel::Error, e)));
    messages
}

/// One `jobMessages` line per line of the driver's stdout.
fn stdout_messages(at: DateTime<Utc>, stdout: &str) -> Vec<String> {
    stdout.lines().filter(|l| !l.trim().is_empty()).map(|line| job_message(at, MessageLevel::Info, line)).collect()
}

/// Makes a final write smaller after DynamoDB refused it for the item size: level 1 keeps the
/// last lines of stderr, a shortened failure reason and a note instead of the result; level 2
/// drops the report, keeping a one-line reason; level 3 is the bare final status.
fn shrink_report(update: &mut StatusUpdate, level: u8) {
    const SMALL: usize = 2 * 1024;
    let note = serde_json::json!({ "truncated": true, "reason": "the job row had no room for the model result" });
    update.job_messages.truncate(1);
    update.file_outputs.clear();
    if level >= 3 {
        // The bare final status: what the run's end is, nothing about it (the logs keep the rest).
        update.job_messages.clear();
        (update.driver_logs, update.error_message, update.model_result, update.output_files) = (None, None, None, None);
        (update.attempts, update.failure, update.provenance) = (None, None, None);
        return;
    }
    if level >= 2 {
        update.driver_logs = None;
        update.output_files = None;
        update.model_result = update.model_result.as_ref().map(|_| note.clone());
        update.error_message = update.error_message.as_deref().map(|m| head_bounded(m.lines().next().unwrap_or(m), SMALL).to_string());
        return;
    }
    if let Some(logs) = update.driver_logs.as_mut() {
        logs.stdout.clear();
        logs.stderr = tail_bounded(&logs.stderr, SMALL).0.to_string();
        logs.truncated = true;
    }
    if update.model_result.is_some() {
        update.model_result = Some(note);
    }
    update.error_message = update.error_message.as_deref().map(|m| head_bounded(m, SMALL).to_string());
}

/// How long the sweep's logs pass may read, from `now`: until [`LOG_PASS_END_MARGIN`] before the
/// next sweep is due (`scheduled_at` + [`SWEEP_PERIOD`]), so passes follow each other with no gap
/// but that margin and never overlap. At most a period less the margin (a `time` ahead of this
/// clock); nothing when the next sweep is due within the margin. An event a whole period old or
/// older (a retried invocation, a replayed sample) or without a `time` says nothing of the next
/// sweep: [`LOG_PASS_UNTIMED`].
pub fn log_pass_window(scheduled_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    let most = SWEEP_PERIOD - LOG_PASS_END_MARGIN;
    let Some(scheduled_at) = scheduled_at else { return LOG_PASS_UNTIMED };
    match (now - scheduled_at).to_std() {
        Ok(late) if late >= SWEEP_PERIOD => LOG_PASS_UNTIMED,
        Ok(late) => most.saturating_sub(late),
        Err(_) => most,
    }
}

/// Whether a final state leaves the logs to the sweep, `since_failed` after this process's last
/// failed final-state read: for [`LOG_QUOTA_COOLDOWN`], then it reads again.
pub fn log_quota_cooling(since_failed: Duration) -> bool {
    since_failed < LOG_QUOTA_COOLDOWN
}

/// Jobs the logs pass reads at once: one second of the pace, `reads_per_second`, at least one, at
/// most `MONITOR_MAX_CONCURRENCY`. A job's [`LOG_READ_CALLS_ESTIMATE`] calls take 0.4 s of a
/// 10-a-second pace, but the job also waits on each call's answer and then on its row's write
/// (the attach, up to a second under load), and the pace is only kept while some job is waiting
/// for its next call: with half the pace in flight (5 at 10 a second) the 2,000-run storm's passes
/// attached about 100 jobs a minute of the 140 the pace allows. More would only queue on the pace.
pub fn log_pass_reads_in_flight(reads_per_second: u32, max_concurrency: usize) -> usize {
    (reads_per_second as usize).clamp(1, max_concurrency.max(1))
}

/// How long before its deadline the logs pass starts no more reads: the time the reads in flight
/// take to end at the pace, `in_flight` jobs with half their [`LOG_READ_CALLS_ESTIMATE`] calls
/// left on average (2 s at 10 a second). At worst, all of them just started, they end the rest
/// (2 s here) past the deadline: inside [`LOG_PASS_END_MARGIN`], before the next pass's first call.
/// Waiting for the worst case instead left about 4 s of every minute unread in the storm benchmark.
pub fn log_pass_drain(in_flight: usize, reads_per_second: u32) -> Duration {
    let calls = in_flight as f64 * f64::from(LOG_READ_CALLS_ESTIMATE) / 2.0;
    Duration::from_secs_f64(calls / f64::from(reads_per_second.max(1)))
}

/// Jobs the logs pass asks the table for, per final status: as many as it can read in `window` at
/// `reads_per_second` ([`LOG_READ_CALLS_ESTIMATE`] calls a job) and the `in_flight` reads beside
/// them, at least one and at most [`LOG_PASS_MAX_JOBS`]. Reading every waiting row each minute
/// would cost the table's read capacity for rows the pass cannot reach (in a storm of 2,000, six
/// 1 MB pages a minute), and it held the storm benchmark's passes up for most of their minute.
pub fn log_pass_capacity(window: Duration, reads_per_second: u32, in_flight: usize) -> usize {
    let readable = (window.as_secs_f64() * f64::from(reads_per_second) / f64::from(LOG_READ_CALLS_ESTIMATE)).ceil() as usize;
    (readable + in_flight).clamp(1, LOG_PASS_MAX_JOBS)
}

fn malformed(event_id: &str, detail_type: &str, reason: &str) -> Outcome {
    error!(event_id, detail_type, reason, "malformed event acknowledged without processing");
    Outcome::ignored(IgnoredReason::Malformed, format!("malformed event: {reason}"))
}

#[cfg(test)]
mod decisions;

#[cfg(test)]
mod tests {
    use super::*;

    /// After a failed final-state read a process's final states leave the logs to the sweep for 10 s,
    /// and read them again from then on.
    #[test]
    fn a_final_state_reads_again_once_the_cooldown_is_over() {
        let cases = [(0, true), (9_999, true), (10_000, false), (60_000, false)];
        for (millis, cooling) in cases {
            assert_eq!(log_quota_cooling(Duration::from_millis(millis)), cooling, "{millis} ms after a failed read");
        }
    }

    #[test]
    fn the_logs_pass_ends_before_the_next_sweep_is_due() {
        let now = Utc::now();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        // (case, the event's time, seconds the pass may read)
        let cases = [
            ("on time", ago(0), 57),
            ("10 s late", ago(10), 47),
            ("late by all but the margin", ago(57), 0),
            ("late into the margin", ago(59), 0),
            ("a period late: a retry or a replay", ago(60), 50),
            ("an hour late", ago(3_600), 50),
            ("ahead of this clock", ago(-5), 57),
            ("no time", None, 50),
        ];
        for (case, scheduled_at, seconds) in cases {
            assert_eq!(log_pass_window(scheduled_at, now), Duration::from_secs(seconds), "{case}");
        }
        // 59.5 s late: half a second before the next sweep, still nothing.
        assert_eq!(log_pass_window(Some(now - chrono::Duration::milliseconds(59_500)), now), Duration::ZERO);
    }

    #[test]
    fn the_logs_pass_keeps_enough_reads_in_flight_for_its_pace() {
        // (reads per second, MONITOR_MAX_CONCURRENCY, reads in flight)
        let cases = [(10, 16, 10), (1, 16, 1), (3, 16, 3), (100, 16, 16), (1000, 1000, 1000), (10, 1, 1), (10, 0, 1), (0, 16, 1)];
        for (rate, max, expected) in cases {
            assert_eq!(log_pass_reads_in_flight(rate, max), expected, "{rate}/s, at most {max}");
        }
    }

    #[test]
    fn the_logs_pass_stops_starting_reads_so_that_the_worst_case_ends_inside_the_margin() {
        // (reads per second, MONITOR_MAX_CONCURRENCY, drain in ms)
        let cases = [(10, 16, 2_000), (1, 16, 2_000), (3, 16, 2_000), (16, 16, 2_000), (100, 16, 320), (1000, 1000, 2_000), (10, 1, 200), (0, 16, 2_000)];
        for (rate, max, expected_ms) in cases {
            let in_flight = log_pass_reads_in_flight(rate, max);
            let drain = log_pass_drain(in_flight, rate);
            assert_eq!(drain.as_millis(), expected_ms, "{rate}/s, at most {max}");
            // Every read in flight just started: the last call of theirs comes this long after they began.
            let worst = Duration::from_secs_f64(in_flight as f64 * f64::from(LOG_READ_CALLS_ESTIMATE) / f64::from(rate.max(1)));
            assert!(worst - drain < LOG_PASS_END_MARGIN, "{rate}/s: {worst:?} of calls, {drain:?} kept, margin {LOG_PASS_END_MARGIN:?}");
        }
    }

    #[test]
    fn the_logs_pass_asks_for_what_it_can_read() {
        // (window s, reads per second, in flight, jobs asked for)
        let cases = [(57, 10, 5, 148), (50, 10, 5, 130), (0, 10, 5, 5), (0, 10, 0, 1), (57, 1, 1, 16), (57, 1000, 16, 2_000), (3, 4, 2, 5)];
        for (window, rate, in_flight, expected) in cases {
            assert_eq!(log_pass_capacity(Duration::from_secs(window), rate, in_flight), expected, "{window} s at {rate}/s, {in_flight} in flight");
        }
    }

    #[test]
    fn the_failure_policy_is_one_table() {
        use AwsErrorKind::*;
        use Disposition::*;
        let rows = [
            (Step::ReadJob, Transient, Retry),
            (Step::ReadJob, Permanent, Retry),
            (Step::WriteStatus, Permanent, Retry),
            (Step::QueryStaleJobs, NotFound, Retry),
            (Step::RunDetails, Transient, Retry),
            (Step::RunDetails, Permanent, LeaveOut),
            (Step::DriverStdout, NotFound, LeaveOut),
            (Step::DriverStderr, Permanent, LeaveOut),
            (Step::ModelResult, Permanent, LeaveOut),
            (Step::ModelResult, Transient, Retry),
            (Step::Outputs, Permanent, LeaveOut),
            (Step::FileOutput, ConditionFailed, LeaveOut),
            (Step::AttachLogs, Transient, Retry),
            (Step::QueryAwaitingLogs, Transient, Retry),
        ];
        for (step, kind, disposition) in rows {
            assert_eq!(disposition_of(step, kind), disposition, "{step} / {kind}");
        }
        let err = step_error("job-1", Step::WriteStatus)(AwsError::new("DynamoDB", "UpdateItem", Permanent, "too big"));
        assert_eq!(err.to_string(), "job job-1: write status: DynamoDB UpdateItem failed: too big");
        assert_eq!(diagnostic(&err).error_type, "MonitorWriteStatusError");
    }

    fn big_update() -> StatusUpdate {
        StatusUpdate {
            job_id: "job-1".into(),
            application_id: "app-1".into(),
            run_id: "run-1".into(),
            status: JobStatus::Error,
            emr_state: "FAILED".into(),
            history_only: false,
            at: Utc::now(),
            from_statuses: vec!["RUNNING"],
            blocked_emr_states: vec!["FAILED"],
            driver_logs: Some(DriverLogs {
                stdout: "o".repeat(16_000),
                stderr: (0..300).map(|i| format!("stderr line {i:04}\n")).collect(),
                truncated: false,
                log_group_name: "/aws/emr-serverless".into(),
                log_stream_name_prefix: "job-1/applications/app-1/jobs/run-1/".into(),
                attempt: None,
                unavailable: None,
            }),
            error_message: Some(format!("job job-1: EMR Serverless job run FAILED: boom\n{}", "x".repeat(6_000))),
            model_result: Some(serde_json::json!({ "result": "r".repeat(60_000) })),
            output_files: Some(vec![OutputFile { name: None, file_url: "s3://b/o/".into(), exists: true }]),
            job_messages: vec!["2026/1/2 03:04:05 [info] run ended".into(), "2026/1/2 03:04:05 [info] line".into()],
            file_outputs: vec![FileOutputContent { index: 0, file_content: "e30=".into(), file_size: 2 }],
            attempts: None,
            failure: None,
            provenance: None,
        }
    }

    #[test]
    fn reports_shrink_by_level() {
        let mut update = big_update();
        shrink_report(&mut update, 1);
        let logs = update.driver_logs.as_ref().expect("logs kept at level 1");
        assert_eq!((logs.stdout.as_str(), logs.truncated), ("", true));
        assert!(logs.stderr.len() <= 2048 && logs.stderr.ends_with("stderr line 0299\n"), "{}", logs.stderr.len());
        assert_eq!(update.model_result.as_ref().unwrap()["truncated"], true);
        let message = update.error_message.as_ref().unwrap();
        assert!(message.len() <= 2048 && message.starts_with("job job-1: EMR Serverless job run FAILED: boom"), "{message}");
        assert!(update.output_files.is_some());

        shrink_report(&mut update, 2);
        assert!(update.driver_logs.is_none() && update.output_files.is_none());
        assert_eq!(update.model_result.as_ref().unwrap()["truncated"], true);
        assert_eq!(update.error_message.as_deref(), Some("job job-1: EMR Serverless job run FAILED: boom"));

        let mut plain = big_update();
        plain.model_result = None;
        shrink_report(&mut plain, 2);
        assert!(plain.model_result.is_none(), "no note for a run that had no result");

        // Level 3: the bare final status, for a row near DynamoDB's 400 KB item limit.
        shrink_report(&mut update, 3);
        let bare = StatusUpdate { job_messages: Vec::new(), driver_logs: None, error_message: None, model_result: None, output_files: None, file_outputs: Vec::new(), attempts: None, failure: None, provenance: None, ..big_update() };
        assert_eq!(StatusUpdate { at: bare.at, ..update }, bare);
    }
}
