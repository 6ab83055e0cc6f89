//! The bridge's decisions, over its two ports (model-manage, the jobs table).
//!
//! - **Inbound, a scheduled invocation** ([`BridgeHandler::poll_until`]): first the reconciliation
//!   (own claims whose row was never written are finished; bridged rows whose job ModelOp
//!   cancelled or deleted become CANCELLED), then a poll every `MODELOP_POLL_SECONDS` until the
//!   invocation's deadline: each CREATED job of this runtime is claimed in model-manage first
//!   (PATCH with `If-Match`; 409/412: another took it) and then written as a CREATED row with a
//!   conditional put. A document the table cannot hold, or that is not a job, ends in ERROR there.
//! - **Outbound, the table's stream** ([`BridgeHandler::handle_stream`]): for each bridged row of
//!   the batch, its newest image is compared with the job in model-manage and only what changed is
//!   PATCHed; a job ModelOp cancelled or deleted cancels the row instead.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use shared::config::BridgeConfig;
use shared::error::{AwsError, AwsErrorKind, Disposition, JobError};
use shared::job::record::JobStatus;
use shared::bridge::claim::{claim_patch, claimant, decide_claim, error_patch, if_match, ClaimDecision};
use shared::bridge::hal::{choose_finder, page_to_read, FinderQuery};
use shared::bridge::job_mapping::{bridged_row, is_candidate, BridgeMark};
use shared::bridge::ports::{BridgeTable, ModelManage, PatchOutcome};
use shared::bridge::write_back::{remote_change, write_back_patch, BridgedRow, RemoteChange, WriteBackFields};
use shared::stream::{decode_record, earliest_sequence_number};

/// Jobs asked for per page (Spring Data REST's default maximum is 1,000).
pub const PAGE_SIZE: usize = 100;
/// Pages one sweep reads at most, so one poll always ends.
const MAX_PAGES: u32 = 50;
/// A poll starts only if it can end this long before the invocation's deadline.
const WORK_MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// Bridged jobs of one stream batch written back at once.
const WRITE_BACK_CONCURRENCY: usize = 8;
/// Times a write-back reads the job again after model-manage answered 409/412.
const WRITE_BACK_TRIES: u32 = 3;

/// Where the bridge failed; named in every error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum Step {
    #[strum(to_string = "find jobs in model-manage")]
    FindJobs,
    #[strum(to_string = "claim job in model-manage")]
    Claim,
    #[strum(to_string = "write the bridged row")]
    PutRow,
    #[strum(to_string = "end the job in ERROR in model-manage")]
    Refuse,
    #[strum(to_string = "check the job in model-manage")]
    CheckJob,
    #[strum(to_string = "cancel the bridged row")]
    CancelRow,
    #[strum(to_string = "write back to model-manage")]
    WriteBack,
}

/// A failed step of the bridge: which job, which step, what becomes of it.
pub type BridgeError = JobError<Step>;

/// The bridge's one decision about a failure. The stream's steps are retried whatever the kind
/// (the record is redelivered until the event source mapping's retries run out, then it goes to
/// the failure queue): losing a write-back would leave ModelOp's page wrong for good. A poll's
/// steps are not: the job is still there for the next poll, a minute at most later.
pub fn disposition_of(step: Step, kind: AwsErrorKind) -> Disposition {
    match (step, kind) {
        (_, AwsErrorKind::Transient) => Disposition::Retry,
        // DynamoDB's 400 KB item limit: the same write can never fit; retrying would hold the
        // stream's shard (a row that cannot take its CANCELLED is logged, and tried at each poll).
        (_, AwsErrorKind::ItemTooLarge) => Disposition::Fail,
        (Step::WriteBack | Step::CancelRow, _) => Disposition::Retry,
        _ => Disposition::Fail,
    }
}

fn aws_error(job_id: &str, step: Step) -> impl FnOnce(AwsError) -> BridgeError + '_ {
    move |err| BridgeError::aws(job_id, step, disposition_of(step, err.kind), err)
}

/// The Lambda invocation an event arrives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda stops the invocation: the poll loop ends before it.
    pub deadline: DateTime<Utc>,
}

impl Invocation {
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        Invocation { request_id: context.request_id.clone(), deadline: DateTime::<Utc>::from(context.deadline()) }
    }
}

/// What a scheduled invocation did, by job id; its JSON is the invocation's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub polls: u32,
    /// Claimed and written as a row.
    pub bridged: Vec<String>,
    /// Own claims whose row was missing, finished.
    pub recovered: Vec<String>,
    /// Claims another runtime (or poller) won.
    pub lost: Vec<String>,
    /// Ended in ERROR in model-manage (too large, not a job).
    pub refused: Vec<String>,
    /// Rows cancelled because ModelOp cancelled or deleted their job.
    pub cancelled: Vec<String>,
    /// Failures, as messages; the job is looked at again by the next poll.
    pub failed: Vec<String>,
}

impl PollReport {
    pub fn to_json(&self) -> Value {
        json!({"polls": self.polls, "bridged": self.bridged, "recovered": self.recovered, "lost": self.lost,
               "refused": self.refused, "cancelled": self.cancelled, "failed": self.failed})
    }

    fn fail(&mut self, err: BridgeError) {
        warn!(job_id = %err.job_id, step = %err.step, error = %err, "bridge step failed; the next poll tries again");
        self.failed.push(err.to_string());
    }
}

/// What a write-back did with one bridged row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteBack {
    /// These fields were PATCHed.
    Written(Vec<String>),
    /// model-manage already held everything (a redelivered record).
    Unchanged,
    /// ModelOp cancelled or deleted the job: the row was cancelled (false: it had ended already).
    RowCancelled(RemoteChange, bool),
}

impl WriteBack {
    /// Its `Outcome` dimension in `WriteBacks`.
    pub fn metric_name(&self) -> &'static str {
        match self {
            WriteBack::Written(_) => "Written",
            WriteBack::Unchanged => "Unchanged",
            WriteBack::RowCancelled(..) => "RowCancelled",
        }
    }
}

/// The function's logic over its ports.
pub struct BridgeHandler {
    config: BridgeConfig,
    /// Who this deployment's claims name ([`claimant`]).
    claimant: String,
    model_manage: Arc<dyn ModelManage>,
    table: Arc<dyn BridgeTable>,
    finder: tokio::sync::OnceCell<FinderQuery>,
}

impl BridgeHandler {
    /// `jobs_table` names this deployment in its claims.
    pub fn new(config: BridgeConfig, jobs_table: &str, model_manage: Arc<dyn ModelManage>, table: Arc<dyn BridgeTable>) -> Self {
        let claimant = claimant(&config.client_id, jobs_table);
        BridgeHandler { config, claimant, model_manage, table, finder: tokio::sync::OnceCell::new() }
    }

    /// One event: a stream batch (it has `Records`) is written back; anything else is the
    /// schedule, which polls until the deadline. `Err` as [`BridgeHandler::poll_until`] says.
    pub async fn handle(&self, payload: Value, invocation: &Invocation) -> Result<Value, BridgeError> {
        if payload.get("Records").is_some() {
            let response = self.handle_stream(payload).await;
            return Ok(serde_json::to_value(response).unwrap_or_default());
        }
        Ok(self.poll_until(invocation.deadline).await?.to_json())
    }

    /// The reconciliation, then a poll every `MODELOP_POLL_SECONDS` while one can end
    /// [`WORK_MARGIN`] before `deadline` (at least one). `Err` when the last poll could not read
    /// model-manage and no poll bridged a job (what was bridged is never reported as a failure).
    pub async fn poll_until(&self, deadline: DateTime<Utc>) -> Result<PollReport, BridgeError> {
        let mut report = PollReport::default();
        self.reconcile(&mut report).await;
        let interval = chrono::Duration::from_std(self.config.poll_interval).unwrap_or(chrono::Duration::seconds(10));
        let mut last_error;
        loop {
            let started = Utc::now();
            match self.sweep(JobStatus::Created, &mut report).await {
                Ok(()) => last_error = None,
                Err(err) => {
                    warn!(error = %err, "poll failed");
                    last_error = Some(err);
                }
            }
            report.polls += 1;
            let next = started + interval;
            if next + WORK_MARGIN >= deadline {
                break;
            }
            tokio::time::sleep((next - Utc::now()).to_std().unwrap_or_default()).await;
        }
        shared::metrics::bridge_poll_done(shared::metrics::BridgePollDone {
            jobs_bridged: report.bridged.len() as u64,
            claims_recovered: report.recovered.len() as u64,
            claims_lost: report.lost.len() as u64,
            jobs_refused: report.refused.len() as u64,
            rows_cancelled: report.cancelled.len() as u64,
            bridge_failures: report.failed.len() as u64 + u64::from(last_error.is_some()),
        });
        info!(polls = report.polls, bridged = report.bridged.len(), recovered = report.recovered.len(), lost = report.lost.len(),
              refused = report.refused.len(), cancelled = report.cancelled.len(), failed = report.failed.len(), "bridge polls done");
        match last_error {
            Some(err) if report.bridged.is_empty() => Err(err),
            _ => Ok(report),
        }
    }

    /// Own claims whose row was never written are finished; bridged rows whose job ModelOp
    /// cancelled or deleted are cancelled. Failures are reported, never fatal.
    pub async fn reconcile(&self, report: &mut PollReport) {
        if let Err(err) = self.sweep(JobStatus::Waiting, report).await {
            report.fail(err);
        }
        let rows = match self.table.active_bridged_rows().await {
            Ok(rows) => rows,
            Err(e) => return report.fail(aws_error("-", Step::CheckJob)(e)),
        };
        for row in rows {
            let remote = match self.model_manage.get_job(&row.job_id).await {
                Ok(remote) => remote,
                Err(e) => {
                    report.fail(aws_error(&row.job_id, Step::CheckJob)(e));
                    continue;
                }
            };
            if let Some(change) = remote_change(Some(row.status), remote.as_ref().map(|r| &r.document)) {
                match self.table.cancel_row(&row.job_id, change.message(), Utc::now()).await {
                    Ok(true) => {
                        info!(job_id = %row.job_id, reason = change.message(), "row cancelled");
                        report.cancelled.push(row.job_id);
                    }
                    Ok(false) => debug!(job_id = %row.job_id, "row had ended already"),
                    Err(e) => report.fail(aws_error(&row.job_id, Step::CancelRow)(e)),
                }
            }
        }
    }

    async fn finder(&self) -> Result<&FinderQuery, BridgeError> {
        self.finder
            .get_or_try_init(|| async {
                let listed = self.model_manage.list_finders().await.map_err(aws_error("-", Step::FindJobs))?;
                let chosen = choose_finder(&listed, self.config.job_finder.as_deref()).map_err(|m| BridgeError::new("-", Step::FindJobs, Disposition::Fail, m))?;
                info!(finder = %chosen.name, status_param = %chosen.status_param, engine_param = ?chosen.engine_param, "model-manage finder chosen");
                Ok(chosen)
            })
            .await
    }

    /// Every job of `status` the finder lists, page by page (oldest first): CREATED ones are
    /// bridged, WAITING ones checked for an unfinished claim of ours. A job a claim takes out of
    /// the result moves the rest up, so the page read next is the one holding the first job not
    /// seen ([`page_to_read`]).
    async fn sweep(&self, status: JobStatus, report: &mut PollReport) -> Result<(), BridgeError> {
        let finder = self.finder().await?.clone();
        // Without an engine parameter, one query lists every engine's jobs.
        let engines: Vec<&str> = match finder.engine_param {
            Some(_) => self.config.engine_types.iter().map(String::as_str).collect(),
            None => self.config.engine_types.first().map(String::as_str).into_iter().collect(),
        };
        for engine in engines {
            let mut seen = HashSet::new();
            let mut left_in_place = 0;
            for _ in 0..MAX_PAGES {
                let page = page_to_read(left_in_place, PAGE_SIZE);
                let found = self.model_manage.find_jobs(&finder, status, engine, page, PAGE_SIZE).await.map_err(aws_error("-", Step::FindJobs))?;
                let fresh: Vec<Value> = found.jobs.into_iter().filter(|job| seen.insert(job_key(job))).collect();
                if fresh.is_empty() {
                    break;
                }
                for job in fresh {
                    let stays = match status {
                        JobStatus::Created => self.bridge_created(job, report).await,
                        _ => self.finish_own_claim(job, report).await,
                    };
                    left_in_place += usize::from(stays);
                }
            }
        }
        Ok(())
    }

    /// A CREATED job from model-manage: refused, claimed and written as a row, or left. Whether it
    /// is still in the CREATED result afterwards.
    async fn bridge_created(&self, job: Value, report: &mut PollReport) -> bool {
        let Some(id) = job.get("id").and_then(Value::as_str).map(str::to_string) else {
            debug!("a job without an id in model-manage's answer; left");
            return true;
        };
        if !is_candidate(&job, &self.config) || decide_claim(&job, &self.claimant) != ClaimDecision::Claim {
            return true;
        }
        let now = Utc::now();
        let tag = if_match(&job);
        if let Err(reason) = bridged_row(&job, &BridgeMark { version: None, claimed_at: now, claimant: self.claimant.clone() }) {
            return self.refuse(&id, &job, &reason.to_string(), tag.as_deref(), report).await;
        }
        let patch = claim_patch(&job, now, &self.claimant);
        let version = match self.model_manage.patch_job(&id, &patch, tag.as_deref()).await {
            Ok(PatchOutcome::Patched { etag }) => etag.as_deref().and_then(version_of_etag).or_else(|| job.get("version").and_then(Value::as_i64).map(|v| v + 1)),
            Ok(PatchOutcome::Conflict) => {
                info!(job_id = %id, "claim lost: another runtime or poller changed the job first");
                report.lost.push(id);
                return false;
            }
            Ok(PatchOutcome::Missing) => {
                info!(job_id = %id, "the job was deleted before it could be claimed");
                return false;
            }
            Err(e) => {
                report.fail(aws_error(&id, Step::Claim)(e));
                return true;
            }
        };
        info!(job_id = %id, version = ?version, "claimed in model-manage: CREATED -> WAITING");
        let mut claimed = job;
        if let Value::Object(fields) = &mut claimed {
            fields.extend(patch);
            fields.insert("version".into(), json!(version));
        }
        self.put_row(&id, &claimed, version, now, report, false).await;
        false
    }

    /// A WAITING job: if its claim is ours and it has no row (a crash between the claim and the
    /// put), the row is written now. Always still in the WAITING result.
    async fn finish_own_claim(&self, job: Value, report: &mut PollReport) -> bool {
        let Some(id) = job.get("id").and_then(Value::as_str).map(str::to_string) else { return true };
        if !is_candidate(&job, &self.config) || decide_claim(&job, &self.claimant) != ClaimDecision::FinishClaim {
            return true;
        }
        match self.table.row_exists(&id).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(job_id = %id, "own claim without a row (an earlier invocation stopped between the two); writing the row");
                let version = job.get("version").and_then(Value::as_i64);
                self.put_row(&id, &job, version, Utc::now(), report, true).await;
            }
            Err(e) => report.fail(aws_error(&id, Step::PutRow)(e)),
        }
        true
    }

    async fn put_row(&self, id: &str, claimed: &Value, version: Option<i64>, at: DateTime<Utc>, report: &mut PollReport, recovering: bool) {
        let mark = BridgeMark { version, claimed_at: at, claimant: self.claimant.clone() };
        let row = match bridged_row(claimed, &mark) {
            Ok(row) => row,
            Err(reason) => {
                self.refuse(id, claimed, &reason.to_string(), None, report).await;
                return;
            }
        };
        match self.table.put_new_row(&row).await {
            Ok(true) => {
                info!(job_id = %id, "bridged: row written CREATED");
                if recovering { report.recovered.push(id.to_string()) } else { report.bridged.push(id.to_string()) }
            }
            Ok(false) => info!(job_id = %id, "the row exists already; left as it is"),
            // DynamoDB counted more than the estimate: refused as a document over the limit is.
            Err(e) if e.is(AwsErrorKind::ItemTooLarge) => {
                self.refuse(id, claimed, &format!("the jobs table cannot hold the job: {e}"), None, report).await;
            }
            Err(e) => report.fail(aws_error(id, Step::PutRow)(e)),
        }
    }

    /// Ends a job this runtime cannot take in ERROR in model-manage, saying why. Whether it is
    /// still in the result (the PATCH failed).
    async fn refuse(&self, id: &str, job: &Value, reason: &str, tag: Option<&str>, report: &mut PollReport) -> bool {
        warn!(job_id = %id, reason, "job refused: ending it in ERROR in model-manage");
        match self.model_manage.patch_job(id, &error_patch(job, Utc::now(), reason), tag).await {
            Ok(PatchOutcome::Patched { .. }) => {
                report.refused.push(id.to_string());
                false
            }
            Ok(PatchOutcome::Conflict | PatchOutcome::Missing) => false,
            Err(e) => {
                report.fail(aws_error(id, Step::Refuse)(e));
                true
            }
        }
    }

    /// A stream batch: the newest image of each bridged row is written back, rows concurrently
    /// (each once, so a job's writes keep their order); a row that failed transiently reports its
    /// record, the earliest such, so Lambda retries from there.
    pub async fn handle_stream(&self, payload: Value) -> DynamoDbEventResponse {
        let records = match payload {
            Value::Object(mut fields) => match fields.remove("Records") {
                Some(Value::Array(records)) => records,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut newest: Vec<(String, BridgedRow)> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        for raw in records {
            let sequence = raw.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default().to_string();
            let Ok(record) = decode_record(raw) else { continue };
            if record.event_name == "REMOVE" {
                continue;
            }
            let Ok(row) = serde_dynamo::from_item::<_, BridgedRow>(record.change.new_image) else {
                warn!(event_id = %record.event_id, "a stream image the bridge cannot read; skipped");
                continue;
            };
            let Some(id) = row.id.clone().filter(|_| row.is_bridged()) else { continue };
            match position.get(&id) {
                Some(&at) => newest[at] = (sequence, row),
                None => {
                    position.insert(id, newest.len());
                    newest.push((sequence, row));
                }
            }
        }
        let failed: Vec<Option<String>> = stream::iter(newest)
            .map(|(sequence, row)| async move {
                let id = row.id.clone().unwrap_or_default();
                match self.write_back(&row).await {
                    Ok(outcome) => {
                        info!(job_id = %id, outcome = ?outcome, "written back");
                        shared::metrics::written_back(&id, outcome.metric_name());
                        None
                    }
                    Err(err) => {
                        warn!(job_id = %id, step = %err.step, error = %err, retried = err.is_retryable(), "write-back failed");
                        shared::metrics::written_back(&id, "Failed");
                        err.is_retryable().then_some(sequence)
                    }
                }
            })
            .buffer_unordered(WRITE_BACK_CONCURRENCY)
            .collect()
            .await;
        let mut response = DynamoDbEventResponse::default();
        if let Some(sequence) = earliest_sequence_number(failed.iter().flatten().map(String::as_str).filter(|s| !s.is_empty())) {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence.to_string());
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// One bridged row's write-back: the job is read, a cancel or delete in ModelOp cancels the
    /// row, otherwise only what changed is PATCHed with `If-Match` (read again after a 409/412).
    pub async fn write_back(&self, row: &BridgedRow) -> Result<WriteBack, BridgeError> {
        let id = row.id.as_deref().unwrap_or_default();
        for _ in 0..WRITE_BACK_TRIES {
            let remote = self.model_manage.get_job(id).await.map_err(aws_error(id, Step::WriteBack))?;
            if let Some(change) = remote_change(row.job_status, remote.as_ref().map(|r| &r.document)) {
                let cancelled = self.table.cancel_row(id, change.message(), Utc::now()).await.map_err(aws_error(id, Step::CancelRow))?;
                return Ok(WriteBack::RowCancelled(change, cancelled));
            }
            let Some(remote) = remote else { return Ok(WriteBack::Unchanged) };
            let fields = WriteBackFields { run_id_field: self.config.run_id_field.as_deref(), test_result_asset: self.config.test_result_asset.as_deref() };
            let patch = write_back_patch(row, &remote.document, fields);
            if patch.is_empty() {
                return Ok(WriteBack::Unchanged);
            }
            let tag = remote.etag.clone().or_else(|| if_match(&remote.document));
            match self.model_manage.patch_job(id, &patch, tag.as_deref()).await.map_err(aws_error(id, Step::WriteBack))? {
                PatchOutcome::Patched { .. } => return Ok(WriteBack::Written(patch.keys().cloned().collect())),
                PatchOutcome::Conflict | PatchOutcome::Missing => debug!(job_id = %id, "the job changed while it was written back; reading it again"),
            }
        }
        Err(BridgeError::new(id, Step::WriteBack, Disposition::Retry, "model-manage changed the job repeatedly while it was written back"))
    }
}

/// A job's key in a sweep: its id, or the document itself when it has none.
fn job_key(job: &Value) -> String {
    job.get("id").and_then(Value::as_str).map_or_else(|| job.to_string(), str::to_string)
}

/// The version in a Spring Data REST entity tag (`"3"` or `W/"3"`).
fn version_of_etag(etag: &str) -> Option<i64> {
    etag.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
}

#[cfg(test)]
mod fakes;

#[cfg(test)]
mod decisions;
