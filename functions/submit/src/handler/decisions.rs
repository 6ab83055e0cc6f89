//! The submit handler's decisions against in-memory ports (`shared::fakes`), fed the `events/submit`
//! samples: what a user would see afterwards in the table, the bucket and EMR.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::error::{AwsError, AwsErrorKind};
use shared::fakes::recorder::transient;
use shared::fakes::{row_from_image, settings, FakeAws};
use shared::job::record::Timestamp;

use super::*;

mod row_size;

const BATCH_JOB: &str = "3f6c1a52-8d0e-4b7a-9c21-5e4f7a8b9c01";
const MODELOP_JOB: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b15";
const MALFORMED_NEIGHBOUR: &str = "d2f9c8b1-7e3a-4c56-9d0e-4f1a2b3c5d05";
const BUCKET: &str = "modelop-staging";

const INSERT_BATCH_JOB: &str = include_str!("../../../../events/submit/insert-batch-job.json");
const INSERT_MODELOP_JOB: &str = include_str!("../../../../events/submit/insert-modelop-job.json");
const INSERT_OTHER_RUNTIME: &str = include_str!("../../../../events/submit/insert-other-runtime.json");
const MODIFY_NOT_INSERT: &str = include_str!("../../../../events/submit/modify-not-insert.json");
const MALFORMED: &str = include_str!("../../../../events/submit/malformed.json");

/// The handler over fakes; the default application exists and is started.
struct World {
    aws: FakeAws,
    handler: SubmitHandler,
    /// Numbers each delivery's request id (the lease owner), as Lambda gives each invocation one.
    deliveries: AtomicUsize,
}

fn world() -> World {
    world_with(&[])
}

/// The same with settings of the test's own (run controls, application settings).
fn world_with(overrides: &[(&str, &str)]) -> World {
    let (settings, aws) = (settings(overrides), FakeAws::default());
    aws.emr.add_application("app-1", "modelop-default", "STARTED");
    let handler = SubmitHandler::new(settings.service().unwrap(), settings.submit().unwrap(), aws.jobs.clone(), aws.objects.clone(), aws.emr.clone());
    World { aws, handler, deliveries: AtomicUsize::new(0) }
}

impl World {
    /// Puts the rows the event's well-formed records insert, as ModelOp Center would have.
    fn insert_rows_of(&self, event: &Value) {
        for image in event["Records"].as_array().unwrap().iter().filter_map(|r| r.pointer("/dynamodb/NewImage")) {
            self.aws.jobs.put(row_from_image(image));
        }
    }

    async fn deliver(&self, event: &Value) -> Vec<String> {
        self.deliver_by(event, deadline()).await
    }

    /// The same, by an invocation that must end at `deadline`.
    async fn deliver_by(&self, event: &Value, deadline: DateTime<Utc>) -> Vec<String> {
        let invocation = Invocation { request_id: format!("request-{}", self.deliveries.fetch_add(1, Ordering::SeqCst)), deadline };
        let response = self.handler.handle_batch(event.clone(), &invocation).await;
        response.batch_item_failures.into_iter().filter_map(|f| f.item_identifier).collect()
    }

    fn row(&self, id: &str) -> Value {
        self.aws.jobs.row(id).expect("row")
    }

    fn staged_keys(&self, id: &str) -> Vec<String> {
        self.aws.objects.keys(BUCKET, &format!("modelop-spark-serverless/{id}/"))
    }
}

fn deadline() -> DateTime<Utc> {
    Utc::now() + Duration::seconds(60)
}

fn event(sample: &str) -> Value {
    serde_json::from_str(sample).unwrap()
}

/// The batch job's INSERT with its image edited (a DynamoDB-JSON attribute per field).
fn batch_insert_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut event = event(INSERT_BATCH_JOB);
    edit(&mut event["Records"][0]["dynamodb"]["NewImage"]);
    event
}

#[tokio::test]
async fn records_that_are_not_a_created_job_of_ours_change_nothing() {
    let cases = [("modify-not-insert", MODIFY_NOT_INSERT), ("insert-other-runtime", INSERT_OTHER_RUNTIME)];
    for (name, sample) in cases {
        let world = world();
        let event = event(sample);
        world.insert_rows_of(&event);
        let id = event["Records"][0]["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap();
        let before = world.row(id);
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{name}");
        assert_eq!(world.row(id), before, "{name}: the row is untouched");
        assert!(world.aws.jobs.recorder.calls().is_empty(), "{name}: no table call: {:?}", world.aws.jobs.recorder.calls());
        assert!(world.aws.objects.recorder.calls().is_empty(), "{name}: no S3 call");
        assert!(world.aws.emr.recorder.calls().is_empty(), "{name}: no EMR call");
    }
}

#[tokio::test]
async fn a_malformed_record_is_skipped_and_the_good_one_beside_it_launches() {
    let world = world();
    let event = event(MALFORMED);
    world.insert_rows_of(&event);
    assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "the malformed record is not retried");
    let row = world.row(MALFORMED_NEIGHBOUR);
    assert_eq!((row["jobStatus"].as_str(), row["sparkApplicationId"].as_str()), (Some("WAITING"), Some("run-1")));
    assert_eq!(world.aws.emr.started().len(), 1);
}

#[tokio::test]
async fn a_batch_job_is_claimed_staged_launched_and_recorded() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());

    let row = world.row(BATCH_JOB);
    let staging = format!("s3://{BUCKET}/modelop-spark-serverless/{BATCH_JOB}/");
    assert_eq!(row["jobStatus"], "WAITING");
    assert_eq!(row["sparkApplicationId"], "run-1");
    assert_eq!(row["emrApplicationId"], "app-1");
    assert_eq!(row["emrState"], "SUBMITTED");
    assert_eq!(row["stagingUri"], staging.as_str());
    assert!(row.get("submitLease").is_none(), "the lease ends with the launch: {row:#}");
    assert!(row["jobMessages"][0].as_str().unwrap().contains("EMR Serverless job run run-1 started in application app-1"));

    let started = world.aws.emr.started();
    assert_eq!(started.len(), 1);
    let manifest = started[0].1.manifest.as_ref().unwrap();
    assert_eq!((manifest.run_name.as_str(), manifest.client_token.as_str()), (BATCH_JOB, BATCH_JOB));
    assert!(manifest.spark_submit_parameters.contains("--conf spark.executor.cores=2"), "{}", manifest.spark_submit_parameters);
    let staged = world.staged_keys(BATCH_JOB);
    assert_eq!(staged.len(), manifest.files.len(), "every file of the manifest is staged: {staged:?}");
    assert!(staged.iter().any(|k| k.ends_with("/job-metadata.json")), "{staged:?}");
}

#[tokio::test]
async fn a_modelop_shaped_job_launches_with_the_expected_spark_submit_parameters() {
    let world = world();
    let event = event(INSERT_MODELOP_JOB);
    world.insert_rows_of(&event);
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());

    let row = world.row(MODELOP_JOB);
    assert_eq!(row["jobStatus"], "WAITING", "ours by targetEngine.engineType");
    assert!(row["jobWaitTime"].as_i64().is_some_and(|ms| ms > 1_700_000_000_000), "{}", row["jobWaitTime"]);
    let ignored: Vec<(&str, &str)> =
        row["ignoredJobParameters"].as_array().unwrap().iter().map(|p| (p["parameter"].as_str().unwrap(), p["value"].as_str().unwrap())).collect();
    assert_eq!(ignored, [("--total-executor-cores", "10"), ("-v", "")]);

    let started = world.aws.emr.started();
    let params = &started[0].1.manifest.as_ref().unwrap().spark_submit_parameters;
    let staging = format!("s3://{BUCKET}/modelop-spark-serverless/{MODELOP_JOB}/");
    for expected in [
        "--conf spark.executor.memory=512MB".to_string(),
        "--conf spark.modelop.threshold=0.7".to_string(),
        format!("--conf spark.modelop.job.workingDir={staging}"),
        format!("{staging}job-metadata.json,{staging}df_sample_scored_input_schema.avsc"),
    ] {
        assert!(params.contains(&expected), "{expected} in {params}");
    }
    let metadata = world.aws.objects.get(BUCKET, &format!("modelop-spark-serverless/{MODELOP_JOB}/job-metadata.json")).unwrap();
    let metadata: Value = serde_json::from_slice(&metadata).unwrap();
    assert_eq!(metadata["inputs"][0]["fileUrl"], "s3://modelop-data/input/sample_input.csv");
    for key in world.staged_keys(MODELOP_JOB) {
        let text = String::from_utf8_lossy(&world.aws.objects.get(BUCKET, &key).unwrap()).into_owned();
        assert!(!text.contains("SAMPLE-ACCESS-KEY"), "credential staged in {key}");
    }
}

#[tokio::test]
async fn permanent_failures_end_the_job_in_error_with_the_message() {
    let denied = AwsError::new("EMR Serverless", "StartJobRun", AwsErrorKind::Permanent, "AccessDeniedException: not allowed");
    // (case, event, fault, the message, the failure's class)
    let cases: Vec<(&str, Value, Option<AwsError>, String, &str)> = vec![
        (
            "EMR refuses the run",
            event(INSERT_BATCH_JOB),
            Some(denied),
            format!("job {BATCH_JOB}: start job run: EMR Serverless StartJobRun failed: AccessDeniedException: not allowed"),
            "PERMISSION",
        ),
        (
            "the primary source is not in its bucket",
            batch_insert_with(|image| {
                let source = image.pointer_mut("/model/M/storedModel/M/modelAssets/L/0/M").unwrap().as_object_mut().unwrap();
                source.remove("sourceCode");
                source.insert("fileUrl".into(), json!({"S": "s3://modelop-models/credit/model.py"}));
            }),
            None,
            format!("job {BATCH_JOB}: read primary source: primary source s3://modelop-models/credit/model.py could not be read: S3 GetObject failed: NoSuchKey"),
            "INPUT_NOT_FOUND",
        ),
        (
            "the model is not a map",
            batch_insert_with(|image| image["model"] = json!({"S": "not-a-map"})),
            None,
            format!("job {BATCH_JOB}: decode job: the job record is malformed: model"),
            "INVALID_JOB",
        ),
    ];
    for (name, event, fault, message, class) in cases {
        let world = world();
        world.insert_rows_of(&event);
        if let Some(fault) = fault {
            world.aws.emr.fail_next("start_job_run", fault);
        }
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{name}: a permanent failure is not retried");
        let row = world.row(BATCH_JOB);
        assert_eq!(row["jobStatus"], "ERROR", "{name}: {row:#}");
        let error = row["errorMessage"].as_str().unwrap();
        assert!(error.starts_with(&message), "{name}: {error}");
        // Every ERROR says why, in a class, and names the step (an INVALID_JOB's summary the field too).
        assert_eq!(row["failure"]["class"], class, "{name}: {row:#}");
        let step = message.split(": ").nth(1).unwrap();
        let (summary, line) = (row["failure"]["summary"].as_str().unwrap(), row["failure"]["evidence"]["logLine"].as_str().unwrap());
        assert!(line.contains(step) && (class != "INVALID_JOB" || summary.contains(&message[message.find(step).unwrap()..])), "{name}: {:#}", row["failure"]);
        assert!(row["jobMessages"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().contains("[error] job ")), "{name}");
        assert!(row.get("sparkApplicationId").is_none() && row.get("submitLease").is_none(), "{name}: {row:#}");
        assert!(world.aws.emr.started().is_empty(), "{name}: no run");
    }
}

#[tokio::test]
async fn a_lease_held_past_the_deadline_retries_the_record_and_leaves_the_job_alone() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    let held_until = Utc::now() + Duration::minutes(5);
    let lease = json!({ "owner": "other-invocation", "claimedAt": Timestamp(Utc::now()).to_string(), "expiresAt": Timestamp(held_until).to_string() });
    world.aws.jobs.set(BATCH_JOB, "jobStatus", json!("WAITING"));
    world.aws.jobs.set(BATCH_JOB, "submitLease", lease.clone());

    assert_eq!(world.deliver(&event).await, ["400000000000000500001"], "the record is retried");
    let row = world.row(BATCH_JOB);
    assert_eq!((&row["jobStatus"], &row["submitLease"]), (&json!("WAITING"), &lease), "the other invocation keeps its claim");
    assert!(world.aws.emr.started().is_empty());
    assert!(!world.aws.jobs.recorder.names().contains(&"release_lease"), "nothing of ours to release");
}

/// Another invocation's lease is waited for when it ends at least `LEASE_WAIT_MARGIN` (10 s)
/// before this invocation's deadline, then the job is launched; a lease ending later retries the
/// record at once.
#[tokio::test]
async fn a_lease_ending_at_least_ten_seconds_before_the_deadline_is_waited_for() {
    // (the lease's end after now, in ms; the deadline after the lease's end, in ms; launched)
    let cases = [(20, 60_000, true), (300, 10_000, true), (300, 9_999, false), (300, 5_000, false)];
    for (lease_ms, deadline_ms, launched) in cases {
        let world = world();
        let event = event(INSERT_BATCH_JOB);
        world.insert_rows_of(&event);
        // The lease's end as the row holds it (milliseconds), so the deadline is exact to it.
        let until = Timestamp(Utc::now() + Duration::milliseconds(lease_ms)).to_string();
        let lease = json!({ "owner": "other-invocation", "claimedAt": Timestamp(Utc::now()).to_string(), "expiresAt": until });
        world.aws.jobs.set(BATCH_JOB, "jobStatus", json!("WAITING"));
        world.aws.jobs.set(BATCH_JOB, "submitLease", lease);
        let until = DateTime::parse_from_rfc3339(&until).unwrap().with_timezone(&Utc);
        let failures = world.deliver_by(&event, until + Duration::milliseconds(deadline_ms)).await;
        let case = format!("lease ends in {lease_ms} ms, {deadline_ms} ms before the deadline");
        assert_eq!((failures.is_empty(), world.aws.emr.started().len()), (launched, usize::from(launched)), "{case}");
        assert_eq!(world.row(BATCH_JOB)["sparkApplicationId"].as_str(), launched.then_some("run-1"), "{case}");
    }
}

/// A primary source in S3 is read for its annotations up to `MAX_SOURCE_BYTES` (10 MiB): a source
/// of exactly that launches; one byte more ends the job in ERROR saying the size.
#[tokio::test]
async fn a_primary_source_in_s3_is_read_up_to_ten_mib() {
    // The documented limit, not the constant: a test that read it would move with a wrong value.
    let max: usize = 10 * 1024 * 1024;
    for (bytes, launched) in [(max, true), (max + 1, false)] {
        let world = world();
        let event = batch_insert_with(|image| {
            let source = image.pointer_mut("/model/M/storedModel/M/modelAssets/L/0/M").unwrap().as_object_mut().unwrap();
            source.remove("sourceCode");
            source.insert("fileUrl".into(), json!({"S": "s3://modelop-models/credit/model.py"}));
        });
        world.insert_rows_of(&event);
        let head = "# modelop.score\ndef score(df):\n    return df\n";
        world.aws.objects.put("modelop-models", "credit/model.py", format!("{head}{}", "#".repeat(bytes - head.len())).as_str());
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{bytes} bytes");
        let row = world.row(BATCH_JOB);
        if launched {
            assert_eq!((row["jobStatus"].as_str(), world.aws.emr.started().len()), (Some("WAITING"), 1), "{row:#}");
        } else {
            assert_eq!(row["jobStatus"], "ERROR");
            let error = row["errorMessage"].as_str().unwrap();
            assert!(error.contains(&format!("is {bytes} bytes; at most {max} are read")), "{error}");
        }
    }
}

/// A delivery that cannot claim its job counts in `RecordsSkipped` under a reason the dashboard
/// tells apart: the row gone, a run recorded already, a status past claiming.
#[tokio::test]
async fn a_delivery_that_cannot_claim_its_job_counts_under_its_reason() {
    // (the row as the delivery finds it: None for no row, else the fields set on it; the Reason)
    let launched: &[(&str, &str)] = &[("jobStatus", "WAITING"), ("sparkApplicationId", "run-0"), ("emrApplicationId", "app-1")];
    let cases = [(None, "JobMissing"), (Some(launched), "AlreadyLaunched"), (Some(&[("jobStatus", "COMPLETE")][..]), "NotClaimable")];
    for (row, reason) in cases {
        let emitted = shared::fakes::metrics::EmittedMetrics::capture();
        let world = world();
        let event = event(INSERT_BATCH_JOB);
        if let Some(fields) = row {
            world.insert_rows_of(&event);
            for (field, value) in fields {
                world.aws.jobs.set(BATCH_JOB, field, json!(value));
            }
        }
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{reason}");
        assert!(world.aws.emr.started().is_empty(), "{reason}");
        let reasons: Vec<String> = emitted.with_metric("RecordsSkipped").iter().map(|e| e.values["Reason"].clone()).collect();
        assert_eq!(reasons, [reason]);
    }
}

#[tokio::test]
async fn a_stale_cached_application_is_looked_up_again() {
    let world = world();
    let first = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&first);
    world.deliver(&first).await;
    assert_eq!(world.row(BATCH_JOB)["emrApplicationId"], "app-1");

    // The application is deleted while the container keeps its id cached.
    world.aws.emr.set_application_state("app-1", "TERMINATED");
    let second = event(MALFORMED);
    world.insert_rows_of(&second);
    assert_eq!(world.deliver(&second).await, Vec::<String>::new());
    let row = world.row(MALFORMED_NEIGHBOUR);
    assert_eq!((row["jobStatus"].as_str(), row["emrApplicationId"].as_str()), (Some("WAITING"), Some("app-2")), "{row:#}");
    let starts = world.aws.emr.recorder.args_of("start_job_run");
    assert_eq!(starts[1..], [vec!["app-1".to_string(), MALFORMED_NEIGHBOUR.into()], vec!["app-2".into(), MALFORMED_NEIGHBOUR.into()]]);
    assert_eq!(world.aws.emr.recorder.args_of("create_application"), [vec!["modelop-default".to_string()]]);
}

#[tokio::test]
async fn a_job_cancelled_while_it_was_launched_has_its_run_cancelled() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    let jobs = world.aws.jobs.clone();
    world.aws.emr.recorder.on_next("start_job_run", move || jobs.set(BATCH_JOB, "jobStatus", json!("CANCELLED")));

    assert_eq!(world.deliver(&event).await, Vec::<String>::new());
    assert_eq!(world.aws.emr.recorder.args_of("cancel_job_run"), [vec!["app-1".to_string(), "run-1".into(), "0".into()]], "at once by default");
    assert_eq!(world.aws.emr.run("run-1").unwrap().info.state, "CANCELLING");
    let row = world.row(BATCH_JOB);
    assert_eq!((row["jobStatus"].as_str(), row["sparkApplicationId"].as_str()), (Some("CANCELLED"), Some("run-1")), "the run stays findable");
}

/// A row that holds another run by the time this one is recorded (another launcher of the job
/// recorded first) keeps it; this run, which nothing would track, is cancelled.
#[tokio::test]
async fn a_run_the_row_cannot_take_because_another_is_recorded_is_cancelled() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    let jobs = world.aws.jobs.clone();
    world.aws.emr.recorder.on_next("start_job_run", move || jobs.set(BATCH_JOB, "sparkApplicationId", json!("run-other")));

    assert_eq!(world.deliver(&event).await, Vec::<String>::new());
    assert_eq!(world.aws.emr.recorder.args_of("cancel_job_run"), [vec!["app-1".to_string(), "run-1".into(), "0".into()]]);
    assert_eq!(world.row(BATCH_JOB)["sparkApplicationId"], "run-other");
}

#[tokio::test]
async fn a_cancel_that_failed_for_now_is_sent_again_by_the_retry() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    let jobs = world.aws.jobs.clone();
    world.aws.emr.recorder.on_next("start_job_run", move || jobs.set(BATCH_JOB, "jobStatus", json!("CANCELLED")));
    world.aws.emr.fail_next("cancel_job_run", transient("CancelJobRun"));

    assert_eq!(world.deliver(&event).await, ["400000000000000500001"], "the record is retried: the run is still going");
    assert_eq!(world.aws.emr.run("run-1").unwrap().info.state, "SUBMITTED");
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());
    assert_eq!(world.aws.emr.run("run-1").unwrap().info.state, "CANCELLING", "the retry cancelled the recorded run");
    assert_eq!(world.aws.emr.started().len(), 1, "and started no other");
}

#[tokio::test]
async fn a_redelivered_insert_of_a_launched_job_leaves_bucket_table_and_emr_as_they_are() {
    // (status of the row now, whether its staging folder still holds the files)
    let cases = [("RUNNING", true), ("COMPLETE", true), ("COMPLETE", false)];
    for (status, files_kept) in cases {
        let world = world();
        let event = event(INSERT_BATCH_JOB);
        world.insert_rows_of(&event);
        world.deliver(&event).await;
        let staged = world.staged_keys(BATCH_JOB);
        world.aws.jobs.set(BATCH_JOB, "jobStatus", json!(status));
        if !files_kept {
            world.aws.objects.delete_keys(BUCKET, &staged).await.unwrap();
        }
        let (row, objects) = (world.row(BATCH_JOB), world.staged_keys(BATCH_JOB));
        let (emr_calls, s3_writes) = (world.aws.emr.recorder.calls().len(), world.aws.objects.writes().len());

        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{status}");
        assert_eq!(world.aws.objects.writes().len(), s3_writes, "{status}, files kept {files_kept}: nothing is written to S3, not even for a moment");
        assert_eq!(world.row(BATCH_JOB), row, "{status}: the row is untouched");
        assert_eq!(world.staged_keys(BATCH_JOB), objects, "{status}, files kept {files_kept}: the folder is as it was");
        assert_eq!(world.aws.emr.recorder.calls().len(), emr_calls, "{status}: EMR is not called (the application id is cached)");
        assert_eq!(world.aws.emr.started().len(), 1, "{status}: one run");
    }
}

#[tokio::test]
async fn a_transient_emr_error_retries_the_record_releases_the_lease_and_the_retry_launches_once() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    world.aws.emr.fail_next("start_job_run", transient("StartJobRun"));

    assert_eq!(world.deliver(&event).await, ["400000000000000500001"], "the batch item failure names the record");
    let row = world.row(BATCH_JOB);
    assert_eq!(row["jobStatus"], "WAITING");
    assert!(row.get("submitLease").is_none() && row.get("sparkApplicationId").is_none(), "released for the retry: {row:#}");

    assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "the retry takes the job over at once");
    assert_eq!(world.row(BATCH_JOB)["sparkApplicationId"], "run-1");
    assert_eq!(world.aws.emr.started().len(), 1);
}

#[tokio::test]
async fn a_retry_after_the_run_started_records_that_run_instead_of_starting_another() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    world.aws.jobs.fail_next("record_launch", transient("UpdateItem"));

    assert_eq!(world.deliver(&event).await, ["400000000000000500001"]);
    assert!(world.row(BATCH_JOB).get("sparkApplicationId").is_none());
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());
    assert_eq!(world.row(BATCH_JOB)["sparkApplicationId"], "run-1");
    assert_eq!(world.aws.emr.recorder.args_of("find_job_run"), [vec!["app-1".to_string(), BATCH_JOB.into()]]);
    assert_eq!(world.aws.emr.recorder.args_of("start_job_run").len(), 1, "one StartJobRun");
}

/// The batch job's INSERT with these job parameters.
fn batch_insert_with_parameters(parameters: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = parameters.iter().map(|(k, v)| (k.to_string(), json!({ "S": v }))).collect();
    batch_insert_with(|image| image["jobParameters"] = json!({ "M": map }))
}

const TIMEOUT_PARAMETER: &str = "--conf modelop.serverless.job.timeout.minutes";
const ATTEMPTS_PARAMETER: &str = "--conf modelop.serverless.job.max.attempts";

#[tokio::test]
async fn a_run_control_out_of_range_or_beyond_the_release_ends_the_job_in_error_naming_parameter_value_and_rule() {
    // (case, settings, the job parameter, what the ERROR says)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], (&'a str, &'a str), &'a str);
    let cases: &[Case] = &[
        (
            "no timeout (0) on emr-7.11.0",
            &[("EMR_RELEASE_VERSION", "emr-7.11.0")],
            (TIMEOUT_PARAMETER, "0"),
            "validate job: job parameter '--conf modelop.serverless.job.timeout.minutes' \"0\": executionTimeoutMinutes on emr-7.11.0 (from emr-7.11.0 a BATCH run's maximum is 7 days, and 0, no timeout, is refused) must be a whole number from 1 to 10080",
        ),
        (
            "a timeout over 7 days on emr-7.11.0",
            &[("EMR_RELEASE_VERSION", "emr-7.11.0")],
            (TIMEOUT_PARAMETER, "20000"),
            "\"20000\": executionTimeoutMinutes on emr-7.11.0 (from emr-7.11.0 a BATCH run's maximum is 7 days, and 0, no timeout, is refused) must be a whole number from 1 to 10080",
        ),
        (
            "retries on emr-7.0.0",
            &[("EMR_RELEASE_VERSION", "emr-7.0.0")],
            (ATTEMPTS_PARAMETER, "3"),
            "validate job: job parameter '--conf modelop.serverless.job.max.attempts' \"3\": a retry policy (maxAttempts above 1) needs EMR release emr-7.1.0 or later, and the configured release (EMR_RELEASE_VERSION) is emr-7.0.0",
        ),
        ("eleven attempts", &[], (ATTEMPTS_PARAMETER, "11"), "\"11\": maxAttempts must be a whole number from 1 to 10"),
        (
            "maxExecutors under EMR's default initial executors (aws-samples/aws-emr-utilities#175)",
            &[],
            ("--conf spark.dynamicAllocation.maxExecutors", "2"),
            "validate job: Spark conf (jobExecutionConf overlaid by the job's --conf parameters): the run's initial executors, 3 (EMR Serverless's default spark.dynamicAllocation.initialExecutors), must be between spark.dynamicAllocation.minExecutors 0 and spark.dynamicAllocation.maxExecutors 2",
        ),
    ];
    for (name, overrides, parameter, message) in cases {
        let world = world_with(overrides);
        let event = batch_insert_with_parameters(&[*parameter]);
        world.insert_rows_of(&event);
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{name}: not retried");
        let row = world.row(BATCH_JOB);
        assert_eq!(row["jobStatus"], "ERROR", "{name}");
        let error = row["errorMessage"].as_str().unwrap();
        assert!(error.starts_with(&format!("job {BATCH_JOB}: ")) && error.contains(message), "{name}: {error}");
        assert!(world.aws.emr.started().is_empty() && world.staged_keys(BATCH_JOB).is_empty(), "{name}: nothing staged or started");
    }
}

/// 0 is "never time out" (User Guide, "Other considerations") on releases before emr-7.11.0, and short timeouts
/// are EMR's to refuse, not this service's: both start a run with exactly that executionTimeoutMinutes.
#[tokio::test]
async fn no_timeout_and_short_timeouts_start_before_emr_7_11() {
    for (release, minutes) in [("emr-7.5.0", "0"), ("emr-7.10.0", "0"), ("emr-7.5.0", "3")] {
        let world = world_with(&[("EMR_RELEASE_VERSION", release)]);
        let event = batch_insert_with_parameters(&[(TIMEOUT_PARAMETER, minutes)]);
        world.insert_rows_of(&event);
        assert_eq!(world.deliver(&event).await, Vec::<String>::new());
        assert_eq!(world.row(BATCH_JOB)["jobStatus"], "WAITING", "{minutes} on {release}: {}", world.row(BATCH_JOB));
        let manifest = world.aws.emr.started()[0].1.manifest.clone().unwrap();
        assert_eq!(manifest.run_controls.execution_timeout_minutes.to_string(), minutes, "{release}");
    }
}

#[tokio::test]
async fn the_applied_run_controls_are_sent_and_recorded_with_where_each_came_from() {
    let world = world_with(&[("EMR_RELEASE_VERSION", "emr-7.9.0"), ("EMR_EXECUTION_TIMEOUT_MINUTES", "120"), ("EMR_CANCEL_GRACE_PERIOD_SECONDS", "60")]);
    let event = batch_insert_with_parameters(&[(ATTEMPTS_PARAMETER, "3"), ("threshold", "0.5")]);
    world.insert_rows_of(&event);
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());

    let row = world.row(BATCH_JOB);
    assert_eq!(
        row["runControls"],
        json!({
            "executionTimeoutMinutes": 120, "maxAttempts": 3, "cancelGracePeriodSeconds": 60,
            "sources": {"executionTimeoutMinutes": "configuration", "maxAttempts": "jobParameters", "cancelGracePeriodSeconds": "configuration"}
        })
    );
    let manifest = world.aws.emr.started()[0].1.manifest.clone().unwrap();
    assert_eq!((manifest.run_controls.execution_timeout_minutes, manifest.run_controls.retry_policy_attempts()), (120, Some(3)));
    assert!(!manifest.spark_submit_parameters.contains("modelop.serverless"), "consumed, never passed to Spark");
    let metadata = world.aws.objects.get(BUCKET, &format!("modelop-spark-serverless/{BATCH_JOB}/job-metadata.json")).unwrap();
    let metadata: Value = serde_json::from_slice(&metadata).unwrap();
    assert_eq!(metadata["jobParameters"], json!({"threshold": "0.5"}), "nor to the model");
}

#[tokio::test]
async fn without_run_controls_the_row_records_emr_defaults() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    world.deliver(&event).await;
    let controls = &world.row(BATCH_JOB)["runControls"];
    assert_eq!((controls["executionTimeoutMinutes"].as_u64(), controls["maxAttempts"].as_u64(), controls["cancelGracePeriodSeconds"].as_u64()), (Some(720), Some(1), Some(0)));
    assert_eq!(controls["sources"]["maxAttempts"], "default");
}

#[tokio::test]
async fn a_cancel_after_launch_passes_the_configured_grace_period() {
    let world = world_with(&[("EMR_RELEASE_VERSION", "emr-7.9.0"), ("EMR_CANCEL_GRACE_PERIOD_SECONDS", "300")]);
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    let jobs = world.aws.jobs.clone();
    world.aws.emr.recorder.on_next("start_job_run", move || jobs.set(BATCH_JOB, "jobStatus", json!("CANCELLED")));
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());
    assert_eq!(world.aws.emr.recorder.args_of("cancel_job_run"), [vec!["app-1".to_string(), "run-1".into(), "300".into()]]);
}

#[tokio::test]
async fn a_created_application_gets_the_configured_settings_and_a_found_one_is_used_as_it_is() {
    let overrides = [
        ("EMR_APP_MAX_CONCURRENT_RUNS", "5"),
        ("EMR_APP_QUEUE_TIMEOUT_MINUTES", "30"),
        ("EMR_APP_MAXIMUM_CAPACITY", "400 vCPU, 3000 GB, 20000 GB"),
        ("EMR_APP_ARCHITECTURE", "ARM64"),
        ("EMR_APP_SUBNET_IDS", "subnet-0a,subnet-0b"),
        ("EMR_APP_SECURITY_GROUP_IDS", "sg-0a"),
    ];
    let world = world_with(&overrides);
    let first = batch_insert_with_parameters(&[("--conf modelop.serverless.job.app.name", "team-app")]);
    world.insert_rows_of(&first);
    assert_eq!(world.deliver(&first).await, Vec::<String>::new());
    let created = world.aws.emr.created_applications();
    assert_eq!(created.len(), 1);
    let settings = &created[0].settings;
    use shared::launch::run_controls::{Architecture, MaximumCapacity, NetworkSettings, SchedulerSettings};
    assert_eq!(settings.scheduler, Some(SchedulerSettings { max_concurrent_runs: Some(5), queue_timeout_minutes: Some(30) }));
    assert_eq!(settings.maximum_capacity, Some(MaximumCapacity { cpu: "400 vCPU".into(), memory: "3000 GB".into(), disk: Some("20000 GB".into()) }));
    assert_eq!(settings.architecture, Some(Architecture::Arm64));
    assert_eq!(settings.network, Some(NetworkSettings { subnet_ids: vec!["subnet-0a".into(), "subnet-0b".into()], security_group_ids: vec!["sg-0a".into()] }));

    // The default application exists (the world adds it): it is used, nothing is created.
    let second = event(INSERT_MODELOP_JOB);
    world.insert_rows_of(&second);
    assert_eq!(world.deliver(&second).await, Vec::<String>::new());
    assert_eq!(world.aws.emr.created_applications().len(), 1, "found by name: used as it is");
}

const SCOPE_PARAMETER: &str = "--conf modelop.serverless.job.scope.permissions";

#[tokio::test]
async fn the_run_is_started_scoped_and_the_row_records_its_policy() {
    let world = world();
    let event = event(INSERT_BATCH_JOB);
    world.insert_rows_of(&event);
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());

    let manifest = world.aws.emr.started()[0].1.manifest.clone().unwrap();
    let policy = manifest.execution_iam_policy.expect("StartJobRun carries executionIamPolicy");
    let document: Value = serde_json::from_str(&policy.policy).unwrap();
    let read = document["Statement"][0]["Resource"].as_array().unwrap();
    assert!(read.contains(&json!(format!("arn:aws:s3:::{BUCKET}/modelop-spark-serverless/{BATCH_JOB}/*"))), "{read:?}");
    let row = world.row(BATCH_JOB);
    let permissions = &row["jobPermissions"];
    assert_eq!((permissions["scoped"].as_bool(), permissions["source"].as_str()), (Some(true), Some("configuration")));
    assert_eq!(permissions["policy"], policy.policy.as_str());
    assert_eq!(permissions["policySize"], policy.policy.len());
    let messages = row["jobMessages"].to_string();
    assert!(messages.contains("may touch only its own S3 locations"), "{messages}");
}

#[tokio::test]
async fn an_opt_out_runs_unscoped_only_where_the_configuration_allows_it() {
    let refused = world();
    let event = batch_insert_with_parameters(&[(SCOPE_PARAMETER, "false")]);
    refused.insert_rows_of(&event);
    assert_eq!(refused.deliver(&event).await, Vec::<String>::new(), "a refused opt-out is not retried");
    let row = refused.row(BATCH_JOB);
    assert_eq!(row["jobStatus"], "ERROR");
    assert!(row["errorMessage"].as_str().unwrap().contains("EMR_ALLOW_UNSCOPED_JOBS=true"), "{row:#}");
    assert!(refused.aws.emr.started().is_empty() && refused.staged_keys(BATCH_JOB).is_empty(), "no run, nothing staged");

    let allowed = world_with(&[("EMR_ALLOW_UNSCOPED_JOBS", "true")]);
    allowed.insert_rows_of(&event);
    assert_eq!(allowed.deliver(&event).await, Vec::<String>::new());
    let manifest = allowed.aws.emr.started()[0].1.manifest.clone().unwrap();
    assert_eq!(manifest.execution_iam_policy, None, "the whole execution role");
    let row = allowed.row(BATCH_JOB);
    assert_eq!(row["jobPermissions"], json!({"scoped": false, "source": "jobParameters"}));
    assert!(row["jobMessages"].to_string().contains("whole job execution role"));
}
