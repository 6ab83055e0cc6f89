//! The submit function against moto's server: a CREATED job row, read back from the table's
//! stream, becomes exactly one EMR Serverless job run with its files staged in S3.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use integration_tests::*;
use serde_json::{json, Value};
use shared::aws::dynamodb::DynamoJobStore;
use shared::aws::emr::EmrServerlessClient;
use shared::aws::s3::S3ObjectStore;
use shared::aws::AwsError;
use shared::launch::lease::{LaunchRecord, RecordOutcome, SubmitLease, SubmitSnapshot};
use shared::ports::JobStore;
use submit::SubmitHandler;

fn job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn failures(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
}

fn history_statuses(job: &Value) -> Vec<String> {
    job["statusHistory"].as_array().map(|h| h.iter().map(|e| e["status"].as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn each_job_type_is_staged_and_launched_once() {
    let env = TestEnv::new().await;
    let cases = [("MODEL_BATCH_JOB", "action"), ("MODEL_BATCH_TEST_JOB", "metrics"), ("MODEL_BATCH_TRAINING_JOB", "train")];
    let ids: Vec<String> = cases.iter().map(|_| job_id()).collect();
    for ((job_type, _), id) in cases.iter().zip(&ids) {
        env.put_job(&created_job(id, job_type)).await;
    }
    let batch = env.insert_batch().await;
    assert_eq!(batch["Records"].as_array().unwrap().len(), 3);

    let response = env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    let runs = env.job_runs(&env.app_name).await;
    assert_eq!(runs.len(), 3, "one run per job");
    let apps = env.applications(&env.app_name).await;
    assert_eq!(apps.len(), 1, "the application is created once and reused");

    for ((job_type, function), id) in cases.iter().zip(&ids) {
        let job = env.job(id).await.expect("job row");
        let staging = format!("s3://{}/modelop-spark-serverless/{id}/", env.bucket);
        assert_eq!(job["jobStatus"], "WAITING", "{job_type}");
        assert_eq!(job["stagingUri"], staging.as_str());
        assert_eq!(job["emrApplicationId"], apps[0].id());
        assert_eq!(job["emrState"], "SUBMITTED");
        assert!(job.get("submitLease").is_none(), "the lease is dropped once the run is recorded");
        assert_eq!(history_statuses(&job), ["WAITING", "WAITING"]);
        assert_eq!(job["statusHistory"][1]["emrState"], "SUBMITTED");

        assert_eq!(
            env.staged_keys(id).await,
            ["ModelOpPySparkDriver.py", "job-metadata.json", "spark_sample_model.py"],
            "{job_type}"
        );
        let driver = env.object_text(&env.bucket, &format!("modelop-spark-serverless/{id}/ModelOpPySparkDriver.py")).await;
        assert_eq!(driver, shared::launch::staged_files::DRIVER_SOURCE);
        let model = env.object_text(&env.bucket, &format!("modelop-spark-serverless/{id}/spark_sample_model.py")).await;
        assert_eq!(model, sample_model_source());
        let metadata: Value =
            serde_json::from_str(&env.object_text(&env.bucket, &format!("modelop-spark-serverless/{id}/job-metadata.json")).await).unwrap();
        assert_eq!(metadata["jobId"], id.as_str());
        assert_eq!(metadata["jobType"], *job_type);
        assert_eq!(metadata["modelModule"], "spark_sample_model");
        assert_eq!(metadata["initFunction"], "begin");
        assert_eq!(metadata["jobFunction"], *function);
        assert_eq!(metadata["inputs"][0]["fileUrl"], "s3://modelop-data/input/sample_input.csv");
        assert_eq!(metadata["outputs"][0]["fileUrl"], format!("s3://modelop-data/output/{id}/"));
        assert_eq!(metadata["modelAssets"][0]["fileUrl"], "s3://modelop-models/sample/weights.json");

        let run_id = job["sparkApplicationId"].as_str().expect("run id recorded");
        let run = runs.iter().find(|r| r.job_run_id() == run_id).expect("the recorded run exists");
        assert_eq!(run.name(), Some(id.as_str()));
        assert_eq!(run.execution_role(), DEFAULT_ROLE);
        assert_eq!(run.tags().and_then(|t| t.get("modelop:jobId")).map(String::as_str), Some(id.as_str()));
        assert_eq!(run.tags().and_then(|t| t.get("modelop:jobType")).map(String::as_str), Some(*job_type));
        let aws_sdk_emrserverless::types::JobDriver::SparkSubmit(spark) = run.job_driver().expect("driver") else {
            panic!("not a spark-submit driver")
        };
        assert_eq!(spark.entry_point(), format!("{staging}ModelOpPySparkDriver.py"));
        assert_eq!(spark.entry_point_arguments(), ["--metadata", "job-metadata.json", "--results-uri", &format!("{staging}results/")]);
        assert_eq!(
            spark.spark_submit_parameters(),
            Some(
                format!(
                    "--py-files {staging}spark_sample_model.py --files {staging}job-metadata.json \
                     --conf spark.archives=s3://modelop-envs/pyspark_venv.tar.gz#environment \
                     --conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python \
                     --conf spark.modelop.job.id={id} --conf spark.modelop.job.workingDir={staging}"
                )
                .as_str()
            )
        );
        let logging = run
            .configuration_overrides()
            .and_then(|c| c.monitoring_configuration())
            .and_then(|m| m.cloud_watch_logging_configuration())
            .expect("CloudWatch logging configured");
        assert!(logging.enabled());
        assert_eq!(logging.log_group_name(), Some("/aws/emr-serverless"));
        assert_eq!(logging.log_stream_name_prefix(), Some(id.as_str()));
    }
}

#[tokio::test]
async fn each_run_carries_its_jobs_policy_and_a_policy_that_cannot_fit_starts_no_run() {
    let env = TestEnv::new().await;
    let (scoped, crowded) = (job_id(), job_id());
    env.put_job(&created_job(&scoped, "MODEL_BATCH_JOB")).await;
    let mut job = created_job(&crowded, "MODEL_BATCH_JOB");
    // 70 inputs in 70 buckets: nothing to merge, and far over EMR's 2,048 characters.
    job["inputData"] = Value::Array(
        (0..70).map(|i| json!({"name": format!("in{i}"), "assetType": "EXTERNAL_FILE", "fileUrl": format!("s3://bucket-number-{i:03}/in.csv")})).collect(),
    );
    env.put_job(&job).await;
    let response = env.submit_handler().await.handle_batch(env.insert_batch().await, &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    let runs = env.job_runs(&env.app_name).await;
    assert_eq!(runs.iter().map(|r| r.name()).collect::<Vec<_>>(), [Some(scoped.as_str())], "no run for the job that cannot fit");
    let row = env.job(&scoped).await.expect("row");
    let sent = runs[0].execution_iam_policy().expect("the StartJobRun the emulator received carries executionIamPolicy");
    assert_eq!(sent.policy(), row["jobPermissions"]["policy"].as_str());
    assert_eq!(row["jobPermissions"]["scoped"], true);
    let policy: Value = serde_json::from_str(sent.policy().unwrap()).unwrap();
    let read = policy["Statement"][0]["Resource"].to_string();
    for expected in [
        format!("arn:aws:s3:::{}/modelop-spark-serverless/{scoped}/*", env.bucket),
        "arn:aws:s3:::modelop-data/input/sample_input.csv".to_string(),
        "arn:aws:s3:::modelop-models/sample/weights.json".to_string(),
        "arn:aws:s3:::modelop-envs/pyspark_venv.tar.gz".to_string(),
    ] {
        assert!(read.contains(&expected), "{expected} not in {read}");
    }

    let failed = env.job(&crowded).await.expect("row");
    assert_eq!(failed["jobStatus"], "ERROR");
    let message = failed["errorMessage"].as_str().unwrap();
    assert!(message.contains("at most 2048") && message.contains("no run was started"), "{message}");
    assert_eq!(failed["failure"]["class"], "INVALID_JOB", "the row says why, in a class: {failed:#}");
    assert!(failed.get("sparkApplicationId").is_none());
    assert!(env.staged_keys(&crowded).await.is_empty(), "nothing staged");
}

#[tokio::test]
async fn job_parameters_override_the_configuration() {
    let env = TestEnv::new().await;
    let id = job_id();
    let team_app = format!("{}-team", env.app_name);
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["jobParameters"] = json!({
        "--conf spark.archives": "s3://team-envs/venv.tar.gz#environment",
        "--conf spark.executor.cores": "4",
        "--conf modelop.serverless.job.app.name": team_app,
        "--conf modelop.serverless.job.rolearn": "arn:aws:iam::123456789012:role/team-job",
        "threshold": "0.75"
    });
    env.put_job(&job).await;
    let response = env.submit_handler().await.handle_batch(env.insert_batch().await, &submit_invocation()).await;
    assert!(failures(&response).is_empty());

    assert!(env.job_runs(&env.app_name).await.is_empty(), "the default application is not used");
    let runs = env.job_runs(&team_app).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].execution_role(), "arn:aws:iam::123456789012:role/team-job");
    let aws_sdk_emrserverless::types::JobDriver::SparkSubmit(spark) = runs[0].job_driver().unwrap() else { panic!() };
    let params = spark.spark_submit_parameters().unwrap();
    assert!(params.contains("--conf spark.archives=s3://team-envs/venv.tar.gz#environment"), "{params}");
    assert!(params.contains("--conf spark.executor.cores=4"), "{params}");
    assert!(params.contains("--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python"), "config conf kept: {params}");
    assert!(!params.contains("modelop.serverless"), "service keys never reach Spark: {params}");
    let metadata: Value =
        serde_json::from_str(&env.object_text(&env.bucket, &format!("modelop-spark-serverless/{id}/job-metadata.json")).await).unwrap();
    assert_eq!(metadata["jobParameters"], json!({ "threshold": "0.75" }));
}

/// A CREATED batch job inserted and launched by one delivery: its id, that INSERT batch (to
/// deliver again) and the handler (whose application cache is warm).
async fn launched_batch_job(env: &TestEnv) -> (String, Value, submit::handler::SubmitHandler) {
    let id = job_id();
    env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
    let batch = env.insert_batch().await;
    let handler = env.submit_handler().await;
    assert!(failures(&handler.handle_batch(batch.clone(), &submit_invocation()).await).is_empty());
    (id, batch, handler)
}

#[tokio::test]
async fn a_second_delivery_changes_nothing() {
    let env = TestEnv::new().await;
    let (id, batch, handler) = launched_batch_job(&env).await;
    let first = env.job(&id).await.unwrap();
    // The same record again, and twice within one batch.
    let mut doubled = batch.clone();
    let record = batch["Records"][0].clone();
    doubled["Records"] = json!([record.clone(), record]);
    assert!(failures(&handler.handle_batch(batch.clone(), &submit_invocation()).await).is_empty());
    assert!(failures(&handler.handle_batch(doubled.clone(), &submit_invocation()).await).is_empty());
    // A fresh container (no application cache) too.
    assert!(failures(&env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await).is_empty());

    assert_eq!(env.job_runs(&env.app_name).await.len(), 1, "exactly one run");
    assert_eq!(env.job(&id).await.unwrap(), first, "the job row is unchanged");
}

#[tokio::test]
async fn a_redelivered_insert_of_a_launched_or_finished_job_leaves_s3_as_it_was() {
    let env = TestEnv::new().await;
    let (id, batch, handler) = launched_batch_job(&env).await;
    let folder = format!("modelop-spark-serverless/{id}/");

    // Running: the staged files are the run's; a redelivery changes none of them.
    env.put_object(&env.bucket, &format!("{folder}job-metadata.json"), "as the run read it").await;
    let before = env.staged_keys(&id).await;
    assert!(failures(&handler.handle_batch(batch.clone(), &submit_invocation()).await).is_empty());
    assert_eq!(env.object_text(&env.bucket, &format!("{folder}job-metadata.json")).await, "as the run read it");
    assert_eq!(env.staged_keys(&id).await, before);

    // Finished and cleaned up: a redelivery leaves the folder empty.
    env.update_job(&id, "SET jobStatus = :s", json!({ ":s": "COMPLETE" })).await;
    for key in &before {
        env.s3.delete_object().bucket(&env.bucket).key(format!("{folder}{key}")).send().await.unwrap();
    }
    assert!(failures(&env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await).is_empty());
    assert_eq!(env.staged_keys(&id).await, Vec::<String>::new(), "nothing staged for a finished job");
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1, "exactly one run");
}

#[tokio::test]
async fn concurrent_invocations_launch_one_run() {
    let env = TestEnv::new().await;
    let id = job_id();
    env.put_job(&created_job(&id, "MODEL_BATCH_TEST_JOB")).await;
    let batch = env.insert_batch().await;
    let (a, b) = (env.submit_handler().await, env.submit_handler().await);
    let (invocation_a, invocation_b) = (submit_invocation(), submit_invocation());
    let (ra, rb) = tokio::join!(a.handle_batch(batch.clone(), &invocation_a), b.handle_batch(batch.clone(), &invocation_b));
    // The loser either waited for the winner's lease and then skipped, or reported a retry.
    let retried = failures(&ra).len() + failures(&rb).len();
    assert!(retried <= 1, "{ra:?} {rb:?}");
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1, "exactly one run");
    assert_eq!(env.job(&id).await.unwrap()["jobStatus"], "WAITING");
}

/// The jobs table as submit uses it, noting the lease owner on the row right after each claim.
struct LeaseWitness {
    inner: DynamoJobStore,
    owners: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl JobStore for LeaseWitness {
    async fn claim_created(&self, job_id: &str, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        let claimed = self.inner.claim_created(job_id, lease, at).await?;
        if claimed {
            let on_row = self.inner.submit_snapshot(job_id).await?.and_then(|row| row.submit_lease).map(|l| l.owner);
            self.owners.lock().unwrap().push(on_row.unwrap_or_default());
        }
        Ok(claimed)
    }
    async fn submit_snapshot(&self, job_id: &str) -> Result<Option<SubmitSnapshot>, AwsError> {
        self.inner.submit_snapshot(job_id).await
    }
    async fn take_over(&self, job_id: &str, observed: Option<&SubmitLease>, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        self.inner.take_over(job_id, observed, lease, at).await
    }
    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<(), AwsError> {
        self.inner.release_lease(job_id, owner).await
    }
    async fn record_launch(&self, job_id: &str, launch: &LaunchRecord) -> Result<RecordOutcome, AwsError> {
        self.inner.record_launch(job_id, launch).await
    }
    async fn fail_before_launch(
        &self,
        job_id: &str,
        message: &str,
        failure: &shared::outcome::failure::Failure,
        at: DateTime<Utc>,
        detail: shared::job::item_size::WriteDetail,
    ) -> Result<bool, AwsError> {
        self.inner.fail_before_launch(job_id, message, failure, at, detail).await
    }
}

#[tokio::test]
async fn the_submit_lease_is_owned_by_the_invocations_request_id() {
    let env = TestEnv::new().await;
    let ids = [job_id(), job_id()];
    for id in &ids {
        env.put_job(&created_job(id, "MODEL_BATCH_JOB")).await;
    }
    let store = Arc::new(LeaseWitness { inner: DynamoJobStore::new(env.dynamodb.clone(), env.table.clone()), owners: Mutex::new(Vec::new()) });
    let handler = SubmitHandler::new(
        env.service_config(),
        env.submit_config(),
        store.clone(),
        Arc::new(S3ObjectStore::new(env.s3.clone())),
        Arc::new(EmrServerlessClient::new(env.emr.clone())),
    );
    let invocation = submit_invocation();
    let response = handler.handle_batch(env.insert_batch().await, &invocation).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(*store.owners.lock().unwrap(), [invocation.request_id.clone(), invocation.request_id.clone()], "the lease on each row names the invocation");
    for id in &ids {
        assert!(env.job(id).await.unwrap().get("submitLease").is_none(), "the lease is dropped once the run is recorded");
    }
}

#[tokio::test]
async fn a_retry_after_an_outage_between_claim_and_launch_launches() {
    let env = TestEnv::new().await;
    let id = job_id();
    env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
    let batch = env.insert_batch().await;
    let sequence = batch["Records"][0]["dynamodb"]["SequenceNumber"].as_str().unwrap().to_string();

    // EMR Serverless unreachable: the claim succeeds, the launch fails transiently.
    let broken = env.submit_handler_with_emr_endpoint("http://127.0.0.1:9").await;
    let response = broken.handle_batch(batch.clone(), &submit_invocation()).await;
    assert_eq!(failures(&response), [sequence], "reported for retry");
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "WAITING");
    assert!(job.get("sparkApplicationId").is_none());
    assert!(job.get("submitLease").is_none(), "the lease is released for the retry");

    // Lambda retries the record: it must launch, not skip the WAITING job.
    let response = env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await;
    assert!(failures(&response).is_empty());
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "WAITING");
    assert!(job["sparkApplicationId"].is_string());
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1);
}

#[tokio::test]
async fn a_crash_after_the_claim_is_taken_over_once_the_lease_expires() {
    let env = TestEnv::new().await;
    let (expired, live) = (job_id(), job_id());
    for id in [&expired, &live] {
        env.put_job(&created_job(id, "MODEL_BATCH_JOB")).await;
    }
    let batch = env.insert_batch().await;
    // What a crashed invocation leaves: WAITING, a lease, no run.
    let lease = |expires: chrono::DateTime<Utc>| {
        json!({ ":w": "WAITING", ":l": { "owner": "crashed", "claimedAt": shared::job::record::timestamp(Utc::now()), "expiresAt": shared::job::record::timestamp(expires) } })
    };
    env.update_job(&expired, "SET jobStatus = :w, submitLease = :l", lease(Utc::now() - Duration::seconds(1))).await;
    env.update_job(&live, "SET jobStatus = :w, submitLease = :l", lease(Utc::now() + Duration::hours(1))).await;

    let response = env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await;
    let live_sequence = batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["id"]["S"] == live.as_str())
        .unwrap()["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(failures(&response), [live_sequence], "a live lease is retried later, not skipped");
    assert!(env.job(&expired).await.unwrap()["sparkApplicationId"].is_string(), "expired lease taken over");
    assert!(env.job(&live).await.unwrap().get("sparkApplicationId").is_none(), "live lease respected");
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1);
}

#[tokio::test]
async fn a_crash_between_launch_and_record_does_not_start_a_second_run() {
    let env = TestEnv::new().await;
    let id = job_id();
    env.put_job(&created_job(&id, "MODEL_BATCH_TRAINING_JOB")).await;
    let batch = env.insert_batch().await;
    // The earlier attempt claimed the job and started the run, then died before recording it.
    let (app_id, run_id) = env.start_run_directly(&env.app_name, &id).await;
    let lease = json!({ ":w": "WAITING", ":l": {
        "owner": "crashed", "claimedAt": shared::job::record::timestamp(Utc::now() - Duration::seconds(30)),
        "expiresAt": shared::job::record::timestamp(Utc::now() - Duration::seconds(1)) } });
    env.update_job(&id, "SET jobStatus = :w, submitLease = :l", lease).await;

    let response = env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await;
    assert!(failures(&response).is_empty());
    let job = env.job(&id).await.unwrap();
    assert_eq!(job["sparkApplicationId"], run_id.as_str(), "the existing run is recorded");
    assert_eq!(job["emrApplicationId"], app_id.as_str());
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1, "no second run");
}

#[tokio::test]
async fn bad_jobs_end_in_error_and_the_rest_of_the_batch_goes_on() {
    let env = TestEnv::new().await;
    let good = job_id();
    env.put_job(&created_job(&good, "MODEL_BATCH_JOB")).await;

    let mut cases: Vec<(String, Value, &str)> = Vec::new();
    let long_id = "x".repeat(65);
    cases.push((long_id.clone(), created_job(&long_id, "MODEL_BATCH_JOB"), "at most 64 are allowed"));
    cases.push(("job with spaces".into(), created_job("job with spaces", "MODEL_BATCH_JOB"), "outside [A-Za-z0-9._-]"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["model"]["storedModel"]["modelAssets"][0]["sourceCode"] = json!("def action(a, b, c):\n    pass\n");
    cases.push((id, job, "validate job: the primary source has no function annotated '# modelop.score'"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["jobParameters"] = json!({ "--conf spark.executor.memory": "4g --jars s3://evil/x.jar" });
    cases.push((id, job, "value of Spark conf \"spark.executor.memory\" is not allowed: it contains whitespace"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["jobParameters"] = json!({ "--conf spark.driver.memory": "4g\n--conf spark.x=y" });
    cases.push((id, job, "it contains whitespace"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["model"]["storedModel"]["modelAssets"][0]["primaryModelSource"] = json!(false);
    cases.push((id, job, "the model has no primary source"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["jobType"] = json!("MODEL_BATCH_SCORING_JOB");
    cases.push((id, job, "decode job: the job record is malformed"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["model"]["storedModel"]["modelAssets"][0] =
        json!({ "name": "model.py", "assetType": "SOURCE_CODE", "primaryModelSource": true, "fileUrl": format!("s3://{}/missing/model.py", env.model_bucket) });
    cases.push((id, job, "could not be read"));

    // A decode error names the field and what it expected.
    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["model"] = json!("not-a-map");
    cases.push((id, job, "decode job: the job record is malformed: model: Expected map"));

    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["jobParameters"] = json!(["--conf spark.executor.cores", "2"]);
    cases.push((id, job, "decode job: the job record is malformed: jobParameters: Expected map"));

    // An asset this runtime cannot serve is named, never dropped.
    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["inputData"][0]["fileUrl"] = json!("hdfs:///hadoop/demo/test.csv");
    cases.push((id, job, "input \"sample_input.csv\" has fileUrl \"hdfs:///hadoop/demo/test.csv\": it is not a URL of a form this service reads"));

    // EMR itself refuses: moto rejects roles of another account with AccessDeniedException.
    let id = job_id();
    let mut job = created_job(&id, "MODEL_BATCH_JOB");
    job["jobParameters"] = json!({ "--conf modelop.serverless.job.rolearn": "arn:aws:iam::999999999999:role/elsewhere" });
    cases.push((id, job, "start job run: EMR Serverless StartJobRun failed: AccessDeniedException"));

    for (_, job, _) in &cases {
        env.put_job(job).await;
    }
    let response = env.submit_handler().await.handle_batch(env.insert_batch().await, &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "permanent errors are not retried: {response:?}");

    for (id, _, needle) in &cases {
        let job = env.job(id).await.expect("job row");
        assert_eq!(job["jobStatus"], "ERROR", "{id}");
        let message = job["errorMessage"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("job {}: ", shared::text::printable(id))), "names the job: {message}");
        assert!(message.contains(needle), "expected {needle:?} in {message:?}");
        assert_eq!(history_statuses(&job).last().map(String::as_str), Some("ERROR"));
        assert!(job.get("sparkApplicationId").is_none());
    }
    let good_job = env.job(&good).await.unwrap();
    assert!(good_job["sparkApplicationId"].is_string(), "the good job in the same batch launched");
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1);
}

#[tokio::test]
async fn primary_and_additional_sources_from_s3_are_staged() {
    let env = TestEnv::new().await;
    let id = job_id();
    env.put_object(&env.model_bucket, "sample/v1/spark_sample_model.py", &sample_model_source()).await;
    env.put_object(&env.model_bucket, "sample/v1/helpers.py", "SCALE = 2\n").await;
    env.put_object(&env.model_bucket, "sample/v1/schema.json", "{\"columns\": []}").await;
    let mut job = created_job(&id, "MODEL_BATCH_TEST_JOB");
    let url = |key: &str| format!("s3://{}/sample/v1/{key}", env.model_bucket);
    job["model"]["storedModel"]["modelAssets"] = json!([
        { "name": "spark_sample_model.py", "assetType": "SOURCE_CODE", "primaryModelSource": true, "fileUrl": url("spark_sample_model.py") },
        { "name": "helpers.py", "assetType": "SOURCE_CODE", "fileUrl": url("helpers.py") },
        { "name": "schema.json", "assetType": "SOURCE_CODE", "fileUrl": url("schema.json") },
        { "name": "inline_util.py", "assetType": "SOURCE_CODE", "sourceCode": "def util():\n    return 1\n" }
    ]);
    env.put_job(&job).await;
    let response = env.submit_handler().await.handle_batch(env.insert_batch().await, &submit_invocation()).await;
    assert!(failures(&response).is_empty());

    assert_eq!(
        env.staged_keys(&id).await,
        ["ModelOpPySparkDriver.py", "helpers.py", "inline_util.py", "job-metadata.json", "schema.json", "spark_sample_model.py"]
    );
    let staged = |name: &str| format!("modelop-spark-serverless/{id}/{name}");
    assert_eq!(env.object_text(&env.bucket, &staged("helpers.py")).await, "SCALE = 2\n");
    assert_eq!(env.object_text(&env.bucket, &staged("spark_sample_model.py")).await, sample_model_source());
    let runs = env.job_runs(&env.app_name).await;
    let aws_sdk_emrserverless::types::JobDriver::SparkSubmit(spark) = runs[0].job_driver().unwrap() else { panic!() };
    let base = format!("s3://{}/modelop-spark-serverless/{id}/", env.bucket);
    assert!(spark.spark_submit_parameters().unwrap().starts_with(&format!(
        "--py-files {base}spark_sample_model.py,{base}helpers.py,{base}inline_util.py --files {base}job-metadata.json,{base}schema.json "
    )));
}

#[tokio::test]
async fn records_that_are_not_ours_are_left_alone() {
    let env = TestEnv::new().await;
    let other = job_id();
    let mut other_job = created_job(&other, "MODEL_BATCH_JOB");
    other_job["runtimeType"] = json!("SPARK_RUNTIME");
    env.put_job(&other_job).await;
    let waiting = job_id();
    let mut waiting_job = created_job(&waiting, "MODEL_BATCH_JOB");
    waiting_job["jobStatus"] = json!("WAITING");
    env.put_job(&waiting_job).await;
    let ours = job_id();
    env.put_job(&created_job(&ours, "MODEL_BATCH_JOB")).await;

    let mut batch = env.insert_batch().await;
    let records = batch["Records"].as_array_mut().unwrap();
    records.insert(0, json!({ "eventID": "garbage-1", "dynamodb": "not a record" }));
    records.push(json!(42));
    let mut modify = records[2].clone();
    modify["eventName"] = json!("MODIFY");
    records.push(modify);

    let response = env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "malformed records are skipped, not retried");
    assert_eq!(env.job(&other).await.unwrap(), other_job, "another runtime's row is untouched");
    assert_eq!(env.job(&waiting).await.unwrap(), waiting_job, "a row that is not CREATED is untouched");
    assert!(env.job(&ours).await.unwrap()["sparkApplicationId"].is_string());
    assert_eq!(env.job_runs(&env.app_name).await.len(), 1);

    let not_a_batch = env.submit_handler().await.handle_batch(json!({ "hello": "world" }), &submit_invocation()).await;
    assert!(failures(&not_a_batch).is_empty());
}

#[tokio::test]
async fn a_deleted_row_gets_no_run_and_no_staging() {
    let env = TestEnv::new().await;
    let id = job_id();
    env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
    let batch = env.insert_batch().await;
    env.dynamodb.delete_item().table_name(&env.table).key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone())).send().await.unwrap();

    let response = env.submit_handler().await.handle_batch(batch.clone(), &submit_invocation()).await;
    assert!(failures(&response).is_empty());
    assert!(env.job(&id).await.is_none(), "an update never recreates a deleted row");
    assert!(env.staged_keys(&id).await.is_empty(), "files staged for a missing job are removed");
    assert!(env.job_runs(&env.app_name).await.is_empty());
}

#[tokio::test]
async fn run_controls_reach_start_job_run_and_create_application_and_are_recorded() {
    use shared::launch::run_controls::{ApplicationSettings, Architecture, MaximumCapacity, NetworkSettings, ReleaseLabel, RunControls, SchedulerSettings};
    let env = TestEnv::new().await;
    let (controlled, plain) = (job_id(), job_id());
    let mut job = created_job(&controlled, "MODEL_BATCH_JOB");
    job["jobParameters"] = json!({ "--conf modelop.serverless.job.timeout.minutes": "90" });
    job["model"]["storedModel"]["id"] = json!("5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7");
    job["model"]["storedModel"]["modelMetaData"] = json!({ "name": "Credit Risk (v2)", "type": "PYSPARK" });
    env.put_job(&job).await;
    env.put_job(&created_job(&plain, "MODEL_BATCH_JOB")).await;
    let mut config = env.submit_config();
    config.release_version = "emr-7.9.0".into();
    config.release = ReleaseLabel::new(7, 9, 0);
    config.run_controls = RunControls::configured(None, Some(3), Some(60));
    config.application_settings = ApplicationSettings {
        scheduler: Some(SchedulerSettings { max_concurrent_runs: Some(5), queue_timeout_minutes: Some(30) }),
        maximum_capacity: Some(MaximumCapacity { cpu: "400 vCPU".into(), memory: "3000 GB".into(), disk: Some("20000 GB".into()) }),
        architecture: Some(Architecture::Arm64),
        network: Some(NetworkSettings { subnet_ids: vec!["subnet-0a1b".into()], security_group_ids: vec!["sg-0a1b".into(), "sg-0c2d".into()] }),
        job_level_cost_allocation: true,
    };
    let batch = env.insert_batch().await;
    let response = env.submit_handler_with(config).await.handle_batch(batch, &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    // What CreateApplication gave the application the runs are on.
    let apps = env.applications(&env.app_name).await;
    assert_eq!(apps.len(), 1);
    let app = env.emr.get_application().application_id(apps[0].id()).send().await.unwrap().application.unwrap();
    let scheduler = app.scheduler_configuration().expect("schedulerConfiguration");
    assert_eq!((scheduler.max_concurrent_runs(), scheduler.queue_timeout_minutes()), (Some(5), Some(30)));
    let capacity = app.maximum_capacity().expect("maximumCapacity");
    assert_eq!((capacity.cpu(), capacity.memory(), capacity.disk()), ("400 vCPU", "3000 GB", Some("20000 GB")));
    assert_eq!(app.architecture().map(|a| a.as_str()), Some("ARM64"));
    let network = app.network_configuration().expect("networkConfiguration");
    assert_eq!((network.subnet_ids(), network.security_group_ids()), (&["subnet-0a1b".to_string()][..], &["sg-0a1b".to_string(), "sg-0c2d".to_string()][..]));
    assert_eq!(app.job_level_cost_allocation_configuration().and_then(|c| c.enabled()), Some(true));

    // What StartJobRun gave each run: the job's own timeout, else EMR's 720; the configured retries.
    let runs = env.job_runs(&env.app_name).await;
    for (id, timeout, timeout_source) in [(&controlled, 90, "jobParameters"), (&plain, 720, "default")] {
        let job = env.job(id).await.unwrap();
        let run = runs.iter().find(|r| Some(r.job_run_id()) == job["sparkApplicationId"].as_str()).expect("the recorded run");
        assert_eq!(run.execution_timeout_minutes(), Some(timeout), "{id}");
        assert_eq!(run.retry_policy().and_then(|p| p.max_attempts()), Some(3), "{id}");
        assert_eq!(
            job["runControls"],
            json!({
                "executionTimeoutMinutes": timeout, "maxAttempts": 3, "cancelGracePeriodSeconds": 60,
                "sources": {"executionTimeoutMinutes": timeout_source, "maxAttempts": "configuration", "cancelGracePeriodSeconds": "configuration"}
            }),
            "{id}"
        );
        assert!(!run.job_driver().unwrap().as_spark_submit().unwrap().spark_submit_parameters().unwrap_or("").contains("modelop.serverless"));
        // The runs are priced at the architecture of the application they are on.
        assert_eq!(job["emrApplicationArchitecture"], "ARM64", "{id}");
        // Cost allocation tags: the job, and the model when the job names it (sanitised to EMR's tag rules).
        let run = env.emr.get_job_run().application_id(apps[0].id()).job_run_id(run.job_run_id()).send().await.unwrap().job_run.unwrap();
        let tags = run.tags().cloned().unwrap_or_default();
        assert_eq!(tags.get("modelop:jobId").map(String::as_str), Some(id.as_str()));
        assert_eq!(tags.get("modelop:jobType").map(String::as_str), Some("MODEL_BATCH_JOB"));
        let model = if *id == controlled { (Some("5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7"), Some("Credit Risk _v2_")) } else { (None, None) };
        assert_eq!((tags.get("modelop:modelId").map(String::as_str), tags.get("modelop:modelName").map(String::as_str)), model, "{id}");
    }
}

#[tokio::test]
async fn one_attempt_sends_no_retry_policy() {
    let env = TestEnv::new().await;
    let id = job_id();
    env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
    let batch = env.insert_batch().await;
    let response = env.submit_handler().await.handle_batch(batch, &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    let runs = env.job_runs(&env.app_name).await;
    assert_eq!(runs[0].retry_policy(), None, "EMR's default: one attempt, and releases before emr-7.1.0 know no retry policy");
    assert_eq!(runs[0].execution_timeout_minutes(), Some(720));
    let app = env.emr.get_application().application_id(env.applications(&env.app_name).await[0].id()).send().await.unwrap().application.unwrap();
    assert!(app.scheduler_configuration().is_none() && app.maximum_capacity().is_none() && app.network_configuration().is_none(), "nothing configured, nothing sent");
}

/// `job` with a `FILE` model asset whose base64 `fileContent` makes the row `bytes` as a DynamoDB
/// item (this service's count, `shared::job::item_size`), as ModelOp inlines FILE assets.
fn job_of_size(mut job: Value, bytes: usize) -> Value {
    let assets = job["model"]["storedModel"]["modelAssets"].as_array_mut().unwrap();
    assets.push(json!({ "name": "lookup.bin", "assetType": "FILE", "fileContent": "" }));
    let without = shared::job::item_size::json_item_size(&job).unwrap();
    let assets = job["model"]["storedModel"]["modelAssets"].as_array_mut().unwrap();
    // Base64 comes in fours; the file's name takes the rest.
    let (content, rest) = ((bytes - without) / 4 * 4, (bytes - without) % 4);
    let asset = assets.last_mut().unwrap();
    asset["fileContent"] = json!("A".repeat(content));
    asset["name"] = json!(format!("lookup{}.bin", "0".repeat(rest)));
    assert_eq!(shared::job::item_size::json_item_size(&job), Some(bytes));
    job
}

#[tokio::test]
async fn a_job_near_dynamodbs_item_limit_ends_in_error_naming_it_and_the_batch_goes_on() {
    let env = TestEnv::new().await;
    let (big, small) = (job_id(), job_id());
    // Under moto's own limit (it counts a little less than this service does), so moto stores it
    // and would take the claim; less than 8 KiB below 400 KB leaves no room for the job's progress.
    let document = job_of_size(created_job(&big, "MODEL_BATCH_JOB"), 402_000);
    env.put_job(&document).await;
    env.put_job(&created_job(&small, "MODEL_BATCH_JOB")).await;
    let batch = env.insert_batch().await;

    let response = env.submit_handler().await.handle_batch(batch, &submit_invocation()).await;
    assert!(failures(&response).is_empty(), "nothing is retried: {response:?}");

    let job = env.job(&big).await.unwrap();
    assert_eq!(job["jobStatus"], "ERROR");
    let message = job["errorMessage"].as_str().unwrap();
    assert!(message.starts_with(&format!("job {big}: validate job: the job row is 402000 bytes as a DynamoDB item")), "{message}");
    assert!(message.contains("at most 409600 bytes (400 KB)"), "{message}");
    assert_eq!(job["failure"]["class"], "INVALID_JOB");
    assert_eq!(job["model"], document["model"], "ModelOp's fields stay as they were");
    assert!(env.staged_keys(&big).await.is_empty());
    let runs = env.job_runs(&env.app_name).await;
    let run_names: Vec<&str> = runs.iter().map(|r| r.name().unwrap_or_default()).collect();
    assert_eq!(run_names, [small.as_str()], "only the other job runs");
    assert_eq!(env.job(&small).await.unwrap()["jobStatus"], "WAITING");
}

/// A launch record as submit writes it, with a session policy's text.
fn launch_record(run_id: &str) -> LaunchRecord {
    use shared::launch::job_policy::JobPermissions;
    use shared::launch::run_controls::{ControlSource, RunControls};
    LaunchRecord {
        run_id: run_id.into(),
        application_id: "app-1".into(),
        staging_uri: "s3://staging/modelop-spark-serverless/j/".into(),
        at: Utc::now(),
        ignored_parameters: Vec::new(),
        messages: vec!["2026/11/23 20:00:00 [info] EMR Serverless job run started".into()],
        run_controls: Some(RunControls::default()),
        architecture: None,
        job_permissions: Some(JobPermissions {
            scoped: true,
            source: ControlSource::Configuration,
            policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            policy_sha256: Some("ab".repeat(32)),
            policy_size: Some(40),
            policy_arns: Vec::new(),
            narrowing_steps: Some(0),
        }),
    }
}

#[tokio::test]
async fn dynamodbs_item_size_refusal_is_its_own_kind_and_every_smaller_write_is_one_dynamodb_takes() {
    use shared::aws::AwsErrorKind;
    use shared::job::item_size::WriteDetail;
    let env = TestEnv::new().await;
    let store = DynamoJobStore::new(env.dynamodb.clone(), env.table.clone());
    let lease = SubmitLease { owner: "request-1".into(), claimed_at: None, expires_at: None };

    // A flat row moto counts as this service does, 100 bytes below moto's 405,000: the claim's
    // lease and history do not fit. moto's own words, classified as DynamoDB's are.
    let full = job_id();
    let mut row = json!({ "id": full, "jobStatus": "CREATED", "runtimeType": "SPARK_SERVERLESS_RUNTIME", "padding": "" });
    row["padding"] = json!("p".repeat(404_900 - shared::job::item_size::json_item_size(&row).unwrap()));
    env.put_job(&row).await;
    let refused = store.claim_created(&full, &lease, Utc::now()).await.unwrap_err();
    assert_eq!(refused.kind, AwsErrorKind::ItemTooLarge, "{refused}");
    assert!(refused.to_string().contains("Item size to update has exceeded the maximum allowed size (DynamoDB holds at most 409600 bytes, 400 KB, per item)"), "{refused}");
    // The smallest ERROR is only the status, shorter than before: it fits. (moto applies a refused
    // update's first SETs before it refuses, unlike DynamoDB, so the row may read WAITING here.)
    let failure = shared::outcome::failure::classify::classify_failure(&shared::outcome::failure::FailureInputs { submit_error: Some("job j: claim job: too large"), ..Default::default() });
    assert!(store.fail_before_launch(&full, "m", &failure, Utc::now(), WriteDetail::Core).await.unwrap());
    let row = env.job(&full).await.unwrap();
    assert_eq!(row["jobStatus"], "ERROR");
    assert!(row.get("errorMessage").is_none() && row.get("submitLease").is_none());

    // Each level of the ERROR and of the launch record, on rows with room.
    let ended = job_id();
    env.put_job(&created_job(&ended, "MODEL_BATCH_JOB")).await;
    assert!(store.fail_before_launch(&ended, "job e: claim job: too large", &failure, Utc::now(), WriteDetail::Short).await.unwrap());
    let row = env.job(&ended).await.unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["errorMessage"].as_str(), row["failure"]["class"].as_str()), (Some("ERROR"), Some("job e: claim job: too large"), Some("INVALID_JOB")));
    assert!(row["updatedAt"].is_string() && row["jobEndTime"].is_number());
    assert!(row.get("statusHistory").is_none() && row.get("jobMessages").is_none(), "no lists at Short: {row:#}");

    for (detail, policy_kept, controls_kept, messages) in [(WriteDetail::Short, false, true, 1), (WriteDetail::Core, false, false, 0)] {
        let id = job_id();
        env.put_job(&created_job(&id, "MODEL_BATCH_JOB")).await;
        assert!(store.claim_created(&id, &lease, Utc::now()).await.unwrap());
        let record = launch_record("run-7").at_detail(detail, "2026/11/23 20:00:00 [warning] recorded short");
        assert_eq!(store.record_launch(&id, &record).await.unwrap(), RecordOutcome::Recorded(Some(shared::job::record::JobStatus::Waiting)), "{detail:?}");
        let row = env.job(&id).await.unwrap();
        assert_eq!((row["sparkApplicationId"].as_str(), row["emrApplicationId"].as_str()), (Some("run-7"), Some("app-1")), "{detail:?}");
        assert_eq!(row["stagingUri"], "s3://staging/modelop-spark-serverless/j/");
        assert!(row.get("submitLease").is_none());
        assert_eq!(row.pointer("/jobPermissions/policy").is_some(), policy_kept, "{detail:?}: {row:#}");
        assert_eq!(row.get("runControls").is_some(), controls_kept, "{detail:?}");
        assert_eq!(row.get("jobMessages").and_then(Value::as_array).map_or(0, Vec::len), messages, "{detail:?}");
    }
}
