//! SparkServerlessJobScheduler + SparkServerlessJobLauncher, per DynamoDB stream record: a CREATED
//! job of our runtime is claimed (CREATED -> WAITING), translated into a PySpark job manifest,
//! staged in S3, launched on EMR Serverless, and its run id recorded.
//!
//! Exactly one run per job: the claim is a conditional write holding a lease that ends with the
//! invocation's deadline; a retry takes over only a WAITING job with no run id and no live lease,
//! and looks for a run of the job's name before starting another.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{debug, error, info, warn};

use shared::launch::application_resolver::ApplicationResolver;
use shared::launch::application::ApplicationSpec;
use shared::error::{AwsError, AwsErrorKind, Disposition, JobError};
use shared::config::{ServiceConfig, SubmitConfig};
use shared::job::record::{decode_job, job_message, Job, JobHeader, JobStatus, MessageLevel, Timestamp};
use shared::metrics;
use shared::outcome::failure::classify::classify_failure;
use shared::outcome::failure::FailureInputs;
use shared::job::item_size::{check_room, item_size, WriteDetail};
use shared::text::{head_bounded, printable};
use shared::launch::lease::{decide_claim, new_lease, ClaimDecision, LaunchRecord, RecordOutcome, SkipReason, SubmitLease};
use shared::job::annotations::{parse_model_functions, AnnotationScanner};
use shared::launch::manifest::{build_manifest, PySparkJobManifest};
use shared::launch::plan::{plan_job, JobPlan, ManifestError, SourceLocation};
use shared::launch::staged_files::{staged_key, FileContent};
use shared::stream::{decode_record, handle_stream_batch, image_header};
use shared::ports::{JobStore, StagingWriter, SubmitEmr};

/// Largest primary source read from S3 to find its annotations.
pub const MAX_SOURCE_BYTES: u64 = 10 * 1024 * 1024;
/// A lease held by another invocation is waited for only if it ends this long before our deadline.
const LEASE_WAIT_MARGIN: chrono::Duration = chrono::Duration::seconds(10);
/// How far back a retry looks for a run an earlier attempt may have started.
const RUN_LOOKBACK: chrono::Duration = chrono::Duration::hours(24);
/// Longest `errorMessage` of an ERROR written short, on a row near DynamoDB's item limit.
const SHORT_ERROR_MESSAGE_BYTES: usize = 1024;

/// Where in the pipeline a job failed; named in every error message.
/// Its `Display` is the phrase error messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum Step {
    #[strum(to_string = "decode job")]
    Decode,
    #[strum(to_string = "validate job")]
    Validate,
    #[strum(to_string = "claim job")]
    Claim,
    /// Reading the primary source from S3 to find its functions.
    #[strum(to_string = "read primary source")]
    ReadSource,
    #[strum(to_string = "stage files")]
    Stage,
    #[strum(to_string = "resolve EMR Serverless application")]
    ResolveApplication,
    #[strum(to_string = "start job run")]
    StartJobRun,
    #[strum(to_string = "record job run")]
    Record,
    /// Writing the ERROR a permanent failure ends the job in.
    #[strum(to_string = "record the failure")]
    EndInError,
    /// Cancelling a run the job no longer wants (cancelled, deleted or already launched).
    #[strum(to_string = "cancel job run")]
    CancelRun,
}

/// A failed submission: which job, which step, what becomes of it.
pub type SubmitError = JobError<Step>;

/// The submit function's one decision about a failed AWS call: retry the record, or end the job
/// in ERROR. Transient errors are retried everywhere; so is everything after the run started
/// (recording it, or the ERROR itself), because ending a job whose run is going would orphan the
/// run: the retry finds the run by name and records it. A write DynamoDB refuses for the 400 KB
/// item limit is never retried as it is (it would hold the shard until the record expires): the
/// record and the ERROR are written smaller first ([`WriteDetail`]), and what still cannot fit
/// ends the job (a launched run is cancelled first).
pub fn disposition_of(step: Step, kind: AwsErrorKind) -> Disposition {
    match (step, kind) {
        (_, AwsErrorKind::Transient) => Disposition::Retry,
        (_, AwsErrorKind::ItemTooLarge) => Disposition::Fail,
        (Step::Record | Step::EndInError, _) => Disposition::Retry,
        _ => Disposition::Fail,
    }
}

fn aws_error(job_id: &str, step: Step) -> impl FnOnce(AwsError) -> SubmitError + '_ {
    move |err| SubmitError::aws(job_id, step, disposition_of(step, err.kind), err)
}

fn invalid(job_id: &str, step: Step, err: ManifestError) -> SubmitError {
    SubmitError::new(job_id, step, Disposition::Fail, err.to_string())
}

/// `Skipped(detail)`, counted as `RecordsSkipped` by `reason` (one of a fixed few).
fn skipped(job_id: Option<&str>, reason: &'static str, detail: String) -> RecordResult {
    metrics::record_skipped(job_id, reason);
    RecordResult::Skipped(detail)
}

/// The `Reason` of a delivery that could not claim its job.
fn skip_category(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::Missing => "JobMissing",
        SkipReason::AlreadyLaunched { .. } => "AlreadyLaunched",
        SkipReason::Status(_) => "NotClaimable",
    }
}

/// The Lambda invocation a batch arrives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Lambda's request id. It owns the submit leases the invocation takes, so a lease on a row
    /// leads to the logs of the invocation that holds it.
    pub request_id: String,
    /// When Lambda stops the invocation: its leases end then.
    pub deadline: DateTime<Utc>,
}

impl Invocation {
    /// The request id and deadline the runtime gives an event.
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        Invocation { request_id: context.request_id.clone(), deadline: DateTime::<Utc>::from(context.deadline()) }
    }
}

/// What became of one stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    Launched { job_id: String, run_id: String },
    Skipped(String),
    /// The job was ended in ERROR (a permanent failure); the record is done.
    Failed(String),
}

/// The function's logic over its ports; `new` takes the fields in order.
#[derive(derive_new::new)]
pub struct SubmitHandler {
    service: ServiceConfig,
    submit: SubmitConfig,
    store: Arc<dyn JobStore>,
    objects: Arc<dyn StagingWriter>,
    emr: Arc<dyn SubmitEmr>,
    #[new(default)]
    applications: ApplicationResolver,
}

impl SubmitHandler {
    /// Handles one stream batch. Records run concurrently (bounded by `SUBMIT_MAX_CONCURRENCY`);
    /// a transient failure reports the earliest failed sequence number so Lambda retries from
    /// there; malformed records are logged and skipped, never retried.
    pub async fn handle_batch(&self, payload: Value, invocation: &Invocation) -> DynamoDbEventResponse {
        handle_stream_batch(payload, self.submit.max_concurrency, |raw| self.handle_record(raw, invocation)).await
    }

    /// One record: decides whether it is ours, then submits the job. `Err` only for transient
    /// failures; permanent ones end the job in ERROR and return `Ok(Failed)`.
    pub async fn handle_record(&self, raw: Value, invocation: &Invocation) -> Result<RecordResult, SubmitError> {
        let record = match decode_record(raw) {
            Ok(record) => record,
            Err(reason) => return Ok(skipped(None, "Malformed", reason)),
        };
        if record.event_name != "INSERT" {
            debug!(event_id = %record.event_id, event_name = %record.event_name, "not an insert; skipped");
            return Ok(skipped(None, "NotInsert", format!("{} record", record.event_name)));
        }
        let image = record.change.new_image;
        let header: JobHeader = match image_header(&image) {
            Ok(header) => header,
            Err(e) => {
                error!(event_id = %record.event_id, error = %e, "stream record image is not a job; skipped");
                return Ok(skipped(None, "Malformed", format!("unreadable image: {e}")));
            }
        };
        if !header.is_ours() || header.status() != Some(JobStatus::Created) {
            debug!(event_id = %record.event_id, "not a CREATED SPARK_SERVERLESS_RUNTIME job; skipped");
            return Ok(skipped(header.id.as_deref(), "NotOurs", "not a CREATED job of this runtime".into()));
        }
        let Some(job_id) = header.id else {
            error!(event_id = %record.event_id, "job image has no id; skipped");
            return Ok(skipped(None, "Malformed", "job without id".into()));
        };
        // A row that leaves this service no room for the job's progress ends in ERROR naming
        // DynamoDB's limit, before anything is claimed or staged.
        let row_bytes = item_size(&image);
        if let Err(too_large) = check_room(row_bytes) {
            metrics::row_too_large(&job_id, "claim", "EndedInError");
            let err = SubmitError::new(&job_id, Step::Validate, Disposition::Fail, too_large.to_string());
            return self.end_in_error(&job_id, err).await;
        }
        let job = match decode_job(image) {
            Ok(job) => job,
            Err(e) => {
                let err = SubmitError::new(&job_id, Step::Decode, Disposition::Fail, format!("the job record is malformed: {e}"));
                return self.end_in_error(&job_id, err).await;
            }
        };
        match self.submit_job(job, row_bytes, invocation, Some(record.change.approximate_creation_date_time)).await {
            Ok(result) => Ok(result),
            Err(err) if err.is_retryable() => {
                warn!(job_id = %job_id, step = %err.step, error = %err, "transient failure; the record will be retried");
                metrics::submit_failed(&job_id, &err.step.to_string(), true);
                Err(err)
            }
            Err(err) => self.end_in_error(&job_id, err).await,
        }
    }

    /// Ends the job in ERROR with the error's message and class. On a row DynamoDB refuses the
    /// whole ERROR on for its size, the ERROR is written smaller ([`WriteDetail`]); when not even
    /// the status fits, the failure is logged and counted and the record is done (never retried).
    async fn end_in_error(&self, job_id: &str, err: SubmitError) -> Result<RecordResult, SubmitError> {
        let message = err.to_string();
        metrics::submit_failed(job_id, &err.step.to_string(), false);
        // The class (INVALID_JOB, or PERMISSION / INPUT_NOT_FOUND / CAPACITY when the cause says so),
        // and a summary that names the step and the field.
        let failure = classify_failure(&FailureInputs { submit_error: Some(&message), ..FailureInputs::default() });
        let mut detail = WriteDetail::Full;
        loop {
            let short_message = match detail {
                WriteDetail::Full => message.as_str(),
                _ => head_bounded(&message, SHORT_ERROR_MESSAGE_BYTES),
            };
            match self.store.fail_before_launch(job_id, short_message, &failure, Utc::now(), detail).await {
                Ok(true) => {
                    if detail != WriteDetail::Full {
                        metrics::row_too_large(job_id, "end in error", "Shortened");
                    }
                    warn!(job_id = %printable(job_id), step = %err.step, error = %message, ?detail, "job ended in ERROR");
                    return Ok(RecordResult::Failed(message));
                }
                Ok(false) => {
                    info!(job_id = %printable(job_id), error = %message, "job failed but had already moved on; left as it is");
                    return Ok(skipped(Some(job_id), "MovedOn", "job no longer waiting for launch".into()));
                }
                Err(e) if e.is(AwsErrorKind::ItemTooLarge) => match detail.smaller() {
                    Some(smaller) => {
                        warn!(job_id = %printable(job_id), error = %e, ?smaller, "the ERROR does not fit on the job row; writing less");
                        detail = smaller;
                    }
                    None => {
                        // ERROR is shorter than CREATED and WAITING, so this needs a row that grew
                        // past the limit meanwhile: nothing more can be written on it.
                        metrics::row_too_large(job_id, "end in error", "Unrecorded");
                        error!(job_id = %printable(job_id), error = %message, write_error = %e, "the job row has no room even for its ERROR status; left as it is");
                        return Ok(skipped(Some(job_id), "RowTooLarge", message));
                    }
                },
                Err(e) => return Err(aws_error(job_id, Step::EndInError)(e)),
            }
        }
    }

    /// `row_bytes`: the row's size as inserted ([`item_size`]), named when it cannot be claimed;
    /// `record_created`: the stream record's creation, for the launch latency.
    async fn submit_job(&self, job: Job, row_bytes: usize, invocation: &Invocation, record_created: Option<DateTime<Utc>>) -> Result<RecordResult, SubmitError> {
        let mut plan = plan_job(&job, &self.service, &self.submit).map_err(|e| invalid(&job.id, Step::Validate, e))?;
        // The plan holds all the launch needs: the job goes, and the primary source moves on to
        // its upload, so a large inline source is held once per record in flight.
        drop(job);
        let primary = plan.take_primary();
        let id = plan.job_id.as_str();
        let owner = invocation.request_id.as_str();
        let lease = new_lease(owner, Utc::now(), invocation.deadline);

        // The claim, reading an S3 source and the application lookup overlap; staging waits for
        // the claim, so a delivery of a job that is not its to launch writes nothing. Three round
        // trips stand between the insert and the started run (claim, stage, start), then the record.
        let (claim, built, application) =
            tokio::join!(self.claim(id, row_bytes, &lease, invocation.deadline), self.build(&plan, primary), self.resolve_application(&plan));

        let previous_lease = match claim? {
            Claim::Claimed { previous } => previous,
            Claim::Skip(reason) => {
                // A cancel an earlier delivery could not send (its record is retried for that).
                if let SkipReason::AlreadyLaunched { run_id, application_id: Some(app), status: Some(JobStatus::Cancelled) } = &reason {
                    self.cancel_run(id, app, run_id, "the job was cancelled while it was being launched").await?;
                }
                info!(job_id = %id, reason = ?reason, "job not claimable by this delivery; skipped");
                return Ok(skipped(Some(id), skip_category(&reason), format!("{reason:?}")));
            }
        };
        let launched = async {
            let mut manifest = built?;
            self.stage(&mut manifest).await?;
            let application_id = application?;
            let (application_id, run_id) = self.launch(&manifest, application_id, previous_lease.as_ref()).await?;
            let started = Utc::now();
            self.record(&manifest, &application_id, &run_id).await?;
            metrics::job_launched(id, plan.job_type.as_str(), record_created.map(|created| started - created));
            Ok::<_, SubmitError>(run_id)
        }
        .await;
        match launched {
            Ok(run_id) => Ok(RecordResult::Launched { job_id: id.to_string(), run_id }),
            Err(err) => {
                if err.is_retryable() {
                    // Let the retry take over at once instead of waiting for the lease to expire;
                    // it looks for a run of the job's name before starting one.
                    if let Err(e) = self.store.release_lease(id, owner).await {
                        warn!(job_id = %id, error = %e, "could not release the submit lease; the retry will wait for it");
                    }
                }
                Err(err)
            }
        }
    }

    async fn claim(&self, id: &str, row_bytes: usize, lease: &SubmitLease, deadline: DateTime<Utc>) -> Result<Claim, SubmitError> {
        let aws = |e: AwsError| {
            let too_large = e.is(AwsErrorKind::ItemTooLarge);
            let err = aws_error(id, Step::Claim)(e);
            if !too_large {
                return err;
            }
            metrics::row_too_large(id, "claim", "EndedInError");
            SubmitError { message: format!("the job row ({row_bytes} bytes as inserted) cannot take the claim: {}", err.message), ..err }
        };
        if self.store.claim_created(id, lease, Utc::now()).await.map_err(aws)? {
            info!(job_id = %id, "claimed: CREATED -> WAITING");
            return Ok(Claim::Claimed { previous: None });
        }
        // Not CREATED any more: a repeated delivery, a race, or a retry after a crash.
        for _ in 0..3 {
            let snapshot = self.store.submit_snapshot(id).await.map_err(aws)?;
            match decide_claim(snapshot.as_ref(), Utc::now()) {
                ClaimDecision::Skip(reason) => return Ok(Claim::Skip(reason)),
                ClaimDecision::TakeOver(observed) => {
                    if self.store.take_over(id, observed.as_ref(), lease, Utc::now()).await.map_err(aws)? {
                        info!(job_id = %id, "took over a WAITING job an earlier attempt left without a run");
                        metrics::lease_taken_over(id);
                        return Ok(Claim::Claimed { previous: Some(observed.unwrap_or_else(|| lease.clone())) });
                    }
                }
                ClaimDecision::LeaseHeld(until) => {
                    let wait = (until - Utc::now()).to_std().unwrap_or_default();
                    if until + LEASE_WAIT_MARGIN > deadline {
                        let message = format!("another invocation holds the submit lease until {}", Timestamp(until));
                        return Err(SubmitError::new(id, Step::Claim, Disposition::Retry, message));
                    }
                    debug!(job_id = %id, wait_ms = wait.as_millis() as u64, "waiting for another invocation's lease");
                    tokio::time::sleep(wait + Duration::from_millis(50)).await;
                }
            }
        }
        Err(SubmitError::new(id, Step::Claim, Disposition::Retry, "the job changed repeatedly while being claimed"))
    }

    /// Reads the primary source if it lives in S3 and builds the manifest, its files' contents
    /// included (an S3 source as a server-side copy).
    async fn build(&self, plan: &JobPlan, primary: SourceLocation) -> Result<PySparkJobManifest, SubmitError> {
        let id = plan.job_id.as_str();
        // An S3 source is scanned as it streams and copied server side: a large model never sits
        // in this function's memory. An inline source is already here.
        let (functions, primary) = match primary {
            SourceLocation::Inline(text) => (parse_model_functions(&text), FileContent::Text(text.into())),
            SourceLocation::S3(uri) => {
                let mut scanner = AnnotationScanner::default();
                self.objects.for_each_line(&uri, MAX_SOURCE_BYTES, &mut |line| scanner.line(line)).await.map_err(|e| {
                    let message = format!("primary source {uri} could not be read: {e}");
                    SubmitError { message, ..aws_error(id, Step::ReadSource)(e) }
                })?;
                (scanner.finish(), FileContent::CopyFrom(uri))
            }
        };
        build_manifest(plan, &functions, primary).map_err(|e| invalid(id, Step::Validate, e))
    }

    /// Stages the manifest's files, once the job is claimed. The bodies move into the uploads (a
    /// model source can be large); the manifest keeps the file names, all a launch needs after.
    async fn stage(&self, manifest: &mut PySparkJobManifest) -> Result<(), SubmitError> {
        let id = manifest.job_id.clone();
        let id = id.as_str();
        let bucket = manifest.staging_bucket.clone();
        let uploads: Vec<_> = manifest
            .files
            .iter_mut()
            .map(|file| {
                let key = staged_key(&manifest.staging_prefix, &file.name);
                let content_type = file.content_type();
                let content = std::mem::replace(&mut file.content, FileContent::Text("".into()));
                let bucket = bucket.as_str();
                // Conditional writes: a retry that takes the job over finds the files an earlier
                // attempt staged and changes none of them.
                async move {
                    let body: Cow<'static, [u8]> = match content {
                        FileContent::Text(Cow::Borrowed(text)) => Cow::Borrowed(text.as_bytes()),
                        FileContent::Text(Cow::Owned(text)) => Cow::Owned(text.into_bytes()),
                        FileContent::Bytes(bytes) => Cow::Owned(bytes),
                        FileContent::CopyFrom(from) => return self.objects.copy_new(&from, bucket, &key).await,
                    };
                    self.objects.put_new(bucket, &key, body, content_type).await
                }
            })
            .collect();
        let created = futures::future::try_join_all(uploads).await.map_err(aws_error(id, Step::Stage))?.into_iter().filter(|c| *c).count();
        debug!(job_id = %id, files = manifest.files.len(), created, staging_uri = %manifest.staging_uri(), "staged");
        Ok(())
    }

    async fn resolve_application(&self, plan: &JobPlan) -> Result<String, SubmitError> {
        self.applications
            .resolve(self.emr.as_ref(), &self.application_spec(&plan.application_name))
            .await
            .map_err(aws_error(&plan.job_id, Step::ResolveApplication))
    }

    fn application_spec(&self, name: &str) -> ApplicationSpec {
        ApplicationSpec {
            name: name.to_string(),
            release_label: self.submit.release_version.clone(),
            idle_timeout_minutes: self.submit.app_idle_timeout_minutes,
            settings: self.submit.application_settings.clone(),
        }
    }

    /// Starts the run, unless an earlier attempt already did. A cached application id that EMR
    /// no longer knows is looked up once more.
    async fn launch(
        &self,
        manifest: &PySparkJobManifest,
        application_id: String,
        previous_lease: Option<&SubmitLease>,
    ) -> Result<(String, String), SubmitError> {
        let id = manifest.job_id.as_str();
        if let Some(previous) = previous_lease {
            let since = previous.claimed_at.map_or_else(Utc::now, |t| t.0);
            let existing = self
                .emr
                .find_job_run(&application_id, &manifest.run_name, since - RUN_LOOKBACK)
                .await
                .map_err(aws_error(id, Step::StartJobRun))?;
            if let Some(run_id) = existing {
                info!(job_id = %id, job_run_id = %run_id, "an earlier attempt had started the run; recording it");
                return Ok((application_id, run_id));
            }
        }
        let run_id = match self.emr.start_job_run(&application_id, manifest).await {
            Err(e) if e.is(AwsErrorKind::NotFound) => {
                warn!(job_id = %id, application_id = %application_id, "application not found; looking it up again");
                self.applications.forget(&manifest.application_name);
                let fresh = self
                    .applications
                    .resolve(self.emr.as_ref(), &self.application_spec(&manifest.application_name))
                    .await
                    .map_err(aws_error(id, Step::ResolveApplication))?;
                let run_id = self.emr.start_job_run(&fresh, manifest).await.map_err(aws_error(id, Step::StartJobRun))?;
                return Ok((fresh, run_id));
            }
            other => other.map_err(aws_error(id, Step::StartJobRun))?,
        };
        info!(job_id = %id, application_id = %application_id, job_run_id = %run_id, "job run started");
        Ok((application_id, run_id))
    }

    async fn record(&self, manifest: &PySparkJobManifest, application_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let id = manifest.job_id.as_str();
        let at = Utc::now();
        let mut messages = vec![job_message(
            at,
            MessageLevel::Info,
            &format!("EMR Serverless job run {run_id} started in application {application_id}; staging folder {}", manifest.staging_uri()),
        )];
        let permissions = &manifest.job_permissions;
        messages.push(match (&permissions.policy_sha256, permissions.policy_size) {
            (Some(sha256), Some(size)) => job_message(
                at,
                MessageLevel::Info,
                &format!("the run may touch only its own S3 locations and logs: session policy of {size} characters (sha256 {sha256}), recorded in jobPermissions"),
            ),
            _ => job_message(at, MessageLevel::Warning, "the run has the whole job execution role: per-job permissions are off for this job"),
        });
        messages.extend(manifest.ignored_parameters.iter().map(|p| {
            job_message(at, MessageLevel::Warning, &format!("job parameter {:?} = {:?} ignored: {}", p.parameter, p.value, p.reason))
        }));
        let launch = LaunchRecord {
            run_id: run_id.to_string(),
            application_id: application_id.to_string(),
            staging_uri: manifest.staging_uri(),
            at,
            ignored_parameters: manifest.ignored_parameters.clone(),
            messages,
            run_controls: Some(manifest.run_controls),
            architecture: self.applications.architecture(&manifest.application_name),
            job_permissions: Some(manifest.job_permissions.clone()),
        };
        let outcome = self.record_what_fits(id, &launch).await?;
        let cancel_reason = match &outcome {
            RecordOutcome::Recorded(Some(JobStatus::Cancelled)) => Some("the job was cancelled while it was being launched"),
            RecordOutcome::Recorded(_) => None,
            RecordOutcome::OtherRunRecorded(Some(other)) if other != run_id => Some("another run is already recorded for the job"),
            RecordOutcome::OtherRunRecorded(Some(_)) => None,
            RecordOutcome::OtherRunRecorded(None) => Some("the job could not take the run (it moved on without one)"),
            RecordOutcome::JobMissing => Some("the job row was deleted while it was being launched"),
        };
        match cancel_reason {
            None => info!(job_id = %id, job_run_id = %run_id, "run recorded on the job"),
            Some(reason) => self.cancel_run(id, application_id, run_id, reason).await?,
        }
        Ok(())
    }

    /// Records the launch: whole, or on a row DynamoDB refuses it on for its size, shortened, then
    /// only the run id, application and staging URI ([`LaunchRecord::at_detail`]). Any other
    /// failure is retried (the retry finds the run by name and records it). A run that cannot be
    /// recorded at all is cancelled, and the error ends the job in ERROR naming the limit.
    async fn record_what_fits(&self, id: &str, launch: &LaunchRecord) -> Result<RecordOutcome, SubmitError> {
        let (run_id, application_id) = (launch.run_id.as_str(), launch.application_id.as_str());
        let note = job_message(
            launch.at,
            MessageLevel::Warning,
            &format!(
                "EMR Serverless job run {run_id} started in application {application_id}; recorded short, the job row being near DynamoDB's 400 KB item limit: jobPermissions without its policy text, no ignoredJobParameters"
            ),
        );
        let mut detail = WriteDetail::Full;
        loop {
            match self.store.record_launch(id, &launch.at_detail(detail, &note)).await {
                Ok(outcome) => {
                    if detail != WriteDetail::Full {
                        metrics::row_too_large(id, "record launch", "Shortened");
                        warn!(job_id = %id, job_run_id = %run_id, ?detail, "the launch was recorded short: the job row is near DynamoDB's item limit");
                    }
                    return Ok(outcome);
                }
                Err(e) if e.is(AwsErrorKind::ItemTooLarge) => match detail.smaller() {
                    Some(smaller) => detail = smaller,
                    None => {
                        let reason = "the run cannot be recorded on the job row: DynamoDB's 400 KB item limit";
                        self.cancel_run(id, application_id, run_id, reason).await?;
                        metrics::row_too_large(id, "record launch", "RunCancelled");
                        let message = format!("EMR Serverless job run {run_id} could not be recorded on the job row, so it was cancelled: {e}");
                        return Err(SubmitError { message, ..aws_error(id, Step::Record)(e) });
                    }
                },
                // A failure here is retried: the retry finds the run by name and records it.
                Err(e) => return Err(aws_error(id, Step::Record)(e)),
            }
        }
    }

    /// Cancels a run the job no longer wants, with the configured grace period, so the driver's
    /// shutdown hooks run. A transient failure retries the record, whose next delivery finds the
    /// cancelled job with its run and cancels again (ended runs are no error).
    async fn cancel_run(&self, id: &str, application_id: &str, run_id: &str, reason: &str) -> Result<(), SubmitError> {
        let grace = self.submit.run_controls.cancel_grace_period_seconds;
        warn!(job_id = %id, job_run_id = %run_id, reason, grace_period_seconds = grace, "cancelling the run");
        self.emr.cancel_job_run(application_id, run_id, grace).await.map_err(|e| {
            error!(job_id = %id, job_run_id = %run_id, error = %e, "could not cancel the run");
            aws_error(id, Step::CancelRun)(e)
        })
    }
}

#[derive(Debug)]
enum Claim {
    Claimed { previous: Option<SubmitLease> },
    Skip(SkipReason),
}

#[cfg(test)]
mod decisions;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_job_step_and_cause() {
        let err = SubmitError::new("job-7", Step::StartJobRun, Disposition::Fail, "AccessDeniedException: no");
        assert_eq!(err.to_string(), "job job-7: start job run: AccessDeniedException: no");
        assert!(!err.is_retryable());
        let aws = AwsError::new("S3", "PutObject", AwsErrorKind::Transient, "SlowDown");
        assert!(aws_error("job-7", Step::Stage)(aws).is_retryable());
    }

    #[test]
    fn the_failure_policy_is_one_table() {
        use AwsErrorKind::*;
        use Disposition::*;
        let steps = [Step::Claim, Step::ReadSource, Step::Stage, Step::ResolveApplication, Step::StartJobRun, Step::Record, Step::EndInError, Step::CancelRun];
        for step in steps {
            assert_eq!(disposition_of(step, Transient), Retry, "{step}: a transient error is retried at every step");
        }
        for kind in [NotFound, ConditionFailed, Permanent] {
            assert_eq!(disposition_of(Step::Record, kind), Retry, "the run is going: recording it is retried ({kind})");
            assert_eq!(disposition_of(Step::EndInError, kind), Retry, "an ERROR that could not be written is retried ({kind})");
        }
        let rows = [
            (Step::Claim, Permanent, Fail),
            (Step::ResolveApplication, Permanent, Fail),
            (Step::Stage, Permanent, Fail),
            (Step::ReadSource, NotFound, Fail),
            (Step::StartJobRun, Permanent, Fail),
            (Step::StartJobRun, Transient, Retry),
            (Step::Record, Permanent, Retry),
            (Step::EndInError, ConditionFailed, Retry),
            // DynamoDB's 400 KB item limit: written smaller or ended, never retried as it is.
            (Step::Claim, ItemTooLarge, Fail),
            (Step::Record, ItemTooLarge, Fail),
            (Step::EndInError, ItemTooLarge, Fail),
            // Cancelling a run the job no longer wants: what EMR refuses for good is not retried.
            (Step::CancelRun, Permanent, Fail),
            (Step::CancelRun, NotFound, Fail),
            (Step::CancelRun, ConditionFailed, Fail),
        ];
        for (step, kind, disposition) in rows {
            assert_eq!(disposition_of(step, kind), disposition, "{step} / {kind}");
        }
    }
}
