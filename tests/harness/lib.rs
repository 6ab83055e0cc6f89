//! The integration tests' local environment: moto's server on loopback as AWS, one isolated
//! table, stream, bucket and EMR application name per test, and helpers to read back what the
//! functions did.
//!
//! The test command (`tests/run.sh`) starts one moto server and exports `MOTO_ENDPOINT`. When it is
//! not set (a bare `cargo test`), the first test of the process starts its own server from the
//! project's virtualenv; that server exits when the test process does.
//!
//! EMR Serverless is not moto's: it is the project's one EMR Serverless emulation,
//! `tests/emulator/emr_serverless.py`, in its manual mode (runs execute nothing and stay where
//! [`TestEnv::set_run_state`] puts them). `tests/run.sh` starts it and exports `EMR_ENDPOINT`;
//! otherwise the first test starts one. Clients and binaries reach it through
//! `AWS_ENDPOINT_URL_EMR_SERVERLESS`, as deployed code would reach any other endpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, BillingMode,
};
use serde_json::{json, Value};

use shared::aws::dynamodb::DynamoJobStore;
use shared::aws::emr::EmrServerlessClient;
use shared::aws::s3::S3ObjectStore;
use shared::config::{CleanupConfig, ServiceConfig, StagingLocation, SubmitConfig};
use shared::launch::spark_conf::SparkConf;
use submit::SubmitHandler;
use cleanup::CleanupHandler;
use monitor::MonitorHandler;
use shared::aws::logs::CloudWatchLogReader;
use shared::config::MonitorConfig;

pub const REGION: &str = "us-east-1";
/// moto accepts only roles of its default account.
pub const ACCOUNT: &str = "123456789012";
pub const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/modelop-default-job";
pub const RELEASE: &str = "emr-7.5.0";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

pub fn venv_python() -> PathBuf {
    repo_root().join(".venv/bin/python")
}

/// The moto endpoint: the test command's, or one started for this test process.
pub fn moto_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| match std::env::var("MOTO_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => endpoint,
            _ => start_own_moto(),
        })
        .clone()
}

fn start_own_moto() -> String {
    start_own_emulator("moto_server.py")
}

/// The EMR Serverless endpoint: the test command's, or one started for this test process.
pub fn emr_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| match std::env::var("EMR_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => endpoint,
            _ => start_own_emulator("emr_serverless.py"),
        })
        .clone()
}

fn start_own_emulator(script: &str) -> String {
    start_emulator_with(script, &[])
}

/// A CloudWatch Logs quota in front of moto (`tests/emulator/logs_quota.py`): GetLogEvents above
/// `rate` calls a second is answered `ThrottlingException`, as CloudWatch Logs answers it. Its
/// endpoint; one per call (each test its own quota).
pub fn logs_quota_front(rate: f64) -> String {
    start_emulator_with("logs_quota.py", &["--upstream", &moto_endpoint(), "--rate", &rate.to_string()])
}

/// The front's counts: GetLogEvents calls forwarded and refused so far.
pub fn logs_quota_counts(front: &str) -> (u64, u64) {
    // A POST that changes nothing answers the state.
    let (status, body) = http_post(front, "/_emulator/logs/quota", "{}");
    assert_eq!(status, 200, "{body}");
    let state: Value = serde_json::from_str(&body).expect("JSON");
    (state["accepted"].as_u64().unwrap_or_default(), state["throttled"].as_u64().unwrap_or_default())
}

/// A request log in front of `upstream` (`tests/emulator/request_log.py`): it forwards every request
/// and records its operation, so a test counts the AWS calls a compiled binary made (which no
/// interceptor of the test's own clients sees). Its endpoint; one per call (each test its own log).
pub fn request_log_front(upstream: &str) -> String {
    start_emulator_with("request_log.py", &["--upstream", upstream])
}

/// The operations a [`request_log_front`] forwarded so far, in order: X-Amz-Target's for the JSON
/// protocols (`GetItem`, `Query`), the request for the REST ones (`GET /applications/<app>/jobruns/<run>`).
pub fn logged_requests(front: &str) -> Vec<String> {
    let (status, body) = http_request("GET", front, "/_emulator/requests", "");
    assert_eq!(status, 200, "{body}");
    let log: Value = serde_json::from_str(&body).expect("JSON");
    log["requests"].as_array().expect("requests").iter().map(|r| r.as_str().expect("an operation").to_string()).collect()
}

// The server outlives every test of the process and is never waited on: it watches its parent and
// exits when the test process does.
#[allow(clippy::zombie_processes)]
fn start_emulator_with(script: &str, args: &[&str]) -> String {
    let python = venv_python();
    assert!(python.exists(), "no {} — run the tests with ./tests/run.sh, which installs the emulator", python.display());
    let ready = std::env::temp_dir().join(format!("emulator-ready-{}-{}", std::process::id(), unique_suffix()));
    Command::new(python)
        .arg(repo_root().join("tests/emulator").join(script))
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .arg("--quiet")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            let announced: Value = serde_json::from_str(&text).expect("ready file is JSON");
            return announced["endpoint"].as_str().expect("endpoint").to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{script} did not start within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A submit invocation as the runtime would describe it: its own request id, a minute to run.
pub fn submit_invocation() -> submit::handler::Invocation {
    submit::handler::Invocation { request_id: uuid::Uuid::new_v4().to_string(), deadline: chrono::Utc::now() + chrono::Duration::seconds(60) }
}

/// Environment variables that point an SDK (or a function binary) at the emulators: moto at
/// `endpoint`, EMR Serverless at [`emr_endpoint`].
pub fn emulator_env(endpoint: &str) -> Vec<(String, String)> {
    let emr = emr_endpoint();
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ENDPOINT_URL_EMR_SERVERLESS", emr.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("S3_FORCE_PATH_STYLE", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// One test's isolated world on the shared emulator.
pub struct TestEnv {
    pub endpoint: String,
    /// The EMR Serverless emulator (`tests/emulator/emr_serverless.py`).
    pub emr_endpoint: String,
    pub table: String,
    pub stream_arn: String,
    pub bucket: String,
    pub model_bucket: String,
    pub app_name: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub s3: aws_sdk_s3::Client,
    pub emr: aws_sdk_emrserverless::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    seen_sequence_numbers: Mutex<Vec<String>>,
}

impl TestEnv {
    /// Creates the jobs table (as the contract defines it), the staging and model buckets.
    pub async fn new() -> TestEnv {
        let endpoint = moto_endpoint();
        let config = sdk_config(&endpoint).await;
        let suffix = unique_suffix();
        let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build();
        let emr_endpoint = emr_endpoint();
        let emr_config = aws_sdk_emrserverless::config::Builder::from(&config).endpoint_url(&emr_endpoint).build();
        let env = TestEnv {
            table: format!("jobs-{suffix}"),
            stream_arn: String::new(),
            bucket: format!("staging-{suffix}"),
            model_bucket: format!("models-{suffix}"),
            app_name: format!("app-{suffix}"),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            emr: aws_sdk_emrserverless::Client::from_conf(emr_config),
            emr_endpoint,
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            endpoint,
            seen_sequence_numbers: Mutex::new(Vec::new()),
        };
        let stream_arn = env.create_jobs_table().await;
        for bucket in [&env.bucket, &env.model_bucket] {
            env.s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
        }
        TestEnv { stream_arn, ..env }
    }

    async fn create_jobs_table(&self) -> String {
        let string_attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
        };
        let key = |name: &str, key_type: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().unwrap();
        let all = Projection::builder().projection_type(ProjectionType::All).build();
        let gsi = |name: &str, keys: Vec<KeySchemaElement>| {
            GlobalSecondaryIndex::builder().index_name(name).set_key_schema(Some(keys)).projection(all.clone()).build().unwrap()
        };
        let output = self
            .dynamodb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("id"))
            .attribute_definitions(string_attr("sparkApplicationId"))
            .attribute_definitions(string_attr("jobStatus"))
            .attribute_definitions(string_attr("updatedAt"))
            .key_schema(key("id", KeyType::Hash))
            .global_secondary_indexes(gsi("bySparkApplicationId", vec![key("sparkApplicationId", KeyType::Hash)]))
            .global_secondary_indexes(gsi("byJobStatus", vec![key("jobStatus", KeyType::Hash), key("updatedAt", KeyType::Range)]))
            .stream_specification(StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewAndOldImages).build().unwrap())
            .send()
            .await
            .expect("create jobs table");
        output.table_description().and_then(|t| t.latest_stream_arn()).expect("stream arn").to_string()
    }

    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            jobs_table: self.table.clone(),
            staging: StagingLocation { bucket: self.bucket.clone(), prefix: "modelop-spark-serverless/".into() },
            emr_region: None,
            main_role_arn: None,
            log_group: "/aws/emr-serverless".into(),
            s3_force_path_style: true,
        }
    }

    pub fn submit_config(&self) -> SubmitConfig {
        SubmitConfig {
            default_app_name: self.app_name.clone(),
            release_version: RELEASE.into(),
            release: shared::launch::run_controls::ReleaseLabel::parse(RELEASE).expect("a release label"),
            run_controls: Default::default(),
            application_settings: Default::default(),
            default_job_execution_role_arn: DEFAULT_ROLE.into(),
            job_execution_conf: SparkConf::from_pairs([
                ("spark.archives", "s3://modelop-envs/pyspark_venv.tar.gz#environment"),
                ("spark.emr-serverless.driverEnv.PYSPARK_PYTHON", "./environment/bin/python"),
            ])
            .unwrap(),
            app_idle_timeout_minutes: 15,
            max_concurrency: 8,
            // Scoped, as deployed by default.
            job_permissions: Default::default(),
        }
    }

    /// The environment a function binary needs for this test's table and bucket.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = emulator_env(&self.endpoint);
        env.extend(
            [
                ("JOBS_TABLE", self.table.as_str()),
                ("STAGING_BUCKET", self.bucket.as_str()),
                ("EMR_DEFAULT_APP_NAME", self.app_name.as_str()),
                ("EMR_RELEASE_VERSION", RELEASE),
                ("EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN", DEFAULT_ROLE),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// A submit handler wired to the emulator, as `main.rs` wires it to AWS.
    pub async fn submit_handler(&self) -> SubmitHandler {
        self.submit_handler_with_emr_endpoint(&self.emr_endpoint.clone()).await
    }

    /// The same, with EMR Serverless calls sent elsewhere (an unreachable port simulates an
    /// outage between claim and launch).
    pub async fn submit_handler_with_emr_endpoint(&self, emr_endpoint: &str) -> SubmitHandler {
        self.submit_handler_wired(self.submit_config(), emr_endpoint).await
    }

    /// A submit handler wired to the emulator with another configuration (run controls,
    /// application settings).
    pub async fn submit_handler_with(&self, submit: SubmitConfig) -> SubmitHandler {
        self.submit_handler_wired(submit, &self.emr_endpoint.clone()).await
    }

    async fn submit_handler_wired(&self, submit: SubmitConfig, emr_endpoint: &str) -> SubmitHandler {
        let config = sdk_config(&self.endpoint).await;
        let emr_config = aws_sdk_emrserverless::config::Builder::from(&config)
            .endpoint_url(emr_endpoint)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(aws_config::timeout::TimeoutConfig::builder().connect_timeout(Duration::from_secs(2)).build())
            .build();
        SubmitHandler::new(
            self.service_config(),
            submit,
            Arc::new(DynamoJobStore::new(self.dynamodb.clone(), self.table.clone())),
            Arc::new(S3ObjectStore::new(self.s3.clone())),
            Arc::new(EmrServerlessClient::new(aws_sdk_emrserverless::Client::from_conf(emr_config))),
        )
    }

    pub fn cleanup_config(&self) -> CleanupConfig {
        CleanupConfig { max_concurrency: 8, orphan_min_age: chrono::Duration::hours(24), cancel_grace_period_seconds: 0 }
    }

    /// A cleanup handler wired to the emulator, as `main.rs` wires it to AWS.
    pub async fn cleanup_handler(&self) -> CleanupHandler {
        self.cleanup_handler_with(self.cleanup_config(), self.s3.clone()).await
    }

    /// The same with another configuration and S3 client (e.g. one with an [`S3CallCounter`]).
    pub async fn cleanup_handler_with(&self, config: CleanupConfig, s3: aws_sdk_s3::Client) -> CleanupHandler {
        CleanupHandler::new(
            self.service_config(),
            config,
            Arc::new(DynamoJobStore::new(self.dynamodb.clone(), self.table.clone())),
            Arc::new(S3ObjectStore::new(s3)),
            Arc::new(EmrServerlessClient::new(self.emr.clone())),
        )
    }

    /// A cleanup handler with another configuration and EMR Serverless client (e.g. one with an
    /// [`EmrRequestLog`]).
    pub async fn cleanup_handler_with_emr(&self, config: CleanupConfig, emr: aws_sdk_emrserverless::Client) -> CleanupHandler {
        CleanupHandler::new(
            self.service_config(),
            config,
            Arc::new(DynamoJobStore::new(self.dynamodb.clone(), self.table.clone())),
            Arc::new(S3ObjectStore::new(self.s3.clone())),
            Arc::new(EmrServerlessClient::new(emr)),
        )
    }

    /// This test's EMR Serverless client with a log of the requests it sends.
    pub fn logged_emr(&self) -> (aws_sdk_emrserverless::Client, EmrRequestLog) {
        let log = EmrRequestLog::default();
        let config = self.emr.config().to_builder().interceptor(log.clone()).build();
        (aws_sdk_emrserverless::Client::from_conf(config), log)
    }

    /// This test's S3 client with a counter of the S3 operations it sends.
    pub fn counted_s3(&self) -> (aws_sdk_s3::Client, S3CallCounter) {
        let counter = S3CallCounter::default();
        let config = self.s3.config().to_builder().interceptor(counter.clone()).build();
        (aws_sdk_s3::Client::from_conf(config), counter)
    }

    /// The environment of the cleanup binary for this test's table and bucket.
    pub fn cleanup_function_env(&self, orphan_min_age_hours: u32) -> Vec<(String, String)> {
        let mut env = emulator_env(&self.endpoint);
        env.extend([
            ("JOBS_TABLE".to_string(), self.table.clone()),
            ("STAGING_BUCKET".to_string(), self.bucket.clone()),
            ("CLEANUP_ORPHAN_MIN_AGE_HOURS".to_string(), orphan_min_age_hours.to_string()),
        ]);
        env
    }

    /// The monitor's settings for these tests: runs are priced in us-east-1 (built-in prices).
    pub fn monitor_config(&self) -> MonitorConfig {
        MonitorConfig {
            log_tail_bytes: 16 * 1024,
            result_max_bytes: 64 * 1024,
            sweep_min_age: chrono::Duration::minutes(10),
            stuck_waiting_age: chrono::Duration::minutes(480),
            max_concurrency: 4,
            usage_sweep_window: chrono::Duration::hours(24),
            log_reads_per_second: 10,
            prices: shared::outcome::cost::PriceTable::default(),
            region: Some("us-east-1".into()),
            spark_environment_name: None,
        }
    }

    /// A monitor handler wired to the emulator, as `main.rs` wires it to AWS.
    pub async fn monitor_handler(&self) -> MonitorHandler {
        self.monitor_handler_with(self.monitor_config()).await
    }

    pub async fn monitor_handler_with(&self, config: MonitorConfig) -> MonitorHandler {
        MonitorHandler::new(
            self.service_config(),
            config,
            Arc::new(DynamoJobStore::new(self.dynamodb.clone(), self.table.clone())),
            Arc::new(S3ObjectStore::new(self.s3.clone())),
            Arc::new(EmrServerlessClient::new(self.emr.clone())),
            Arc::new(CloudWatchLogReader::new(self.logs.clone())),
        )
    }

    /// Sets a job run's state (and `stateDetails`) in the emulator, as EMR would move it.
    pub fn set_run_state(&self, application_id: &str, run_id: &str, state: &str, details: Option<&str>) {
        let body = json!({ "applicationId": application_id, "jobRunId": run_id, "state": state, "stateDetails": details });
        let (status, response) = http_post(&self.emr_endpoint, "/_emulator/emr-serverless/job-runs/state", &body.to_string());
        assert_eq!(status, 200, "set run state: {response}");
    }

    /// Sets a job run's state and attempt number in the emulator, as a retried run moves.
    pub fn set_run_attempt(&self, application_id: &str, run_id: &str, state: &str, attempt: i32) {
        let body = json!({ "applicationId": application_id, "jobRunId": run_id, "state": state, "attempt": attempt });
        let (status, response) = http_post(&self.emr_endpoint, "/_emulator/emr-serverless/job-runs/state", &body.to_string());
        assert_eq!(status, 200, "set run attempt: {response}");
    }

    /// Gives a run's attempt (its latest when `None`) the Spark UI link GetDashboardForJobRun answers
    /// in the emulator's manual mode, once that attempt has been RUNNING.
    pub fn set_run_dashboard(&self, application_id: &str, run_id: &str, attempt: Option<i32>, url: &str) {
        let body = json!({ "applicationId": application_id, "jobRunId": run_id, "attempt": attempt, "url": url });
        let (status, response) = http_post(&self.emr_endpoint, "/_emulator/emr-serverless/job-runs/dashboard", &body.to_string());
        assert_eq!(status, 200, "set run dashboard: {response}");
    }

    /// A "EMR Serverless Job Resource Utilization Update" event for a run, as the emulator makes it
    /// (`fields`: `final`, `calculatedTo`, figure objects to send as given; see the emulator's docs).
    pub fn utilization_event(&self, application_id: &str, run_id: &str, fields: Value) -> Value {
        let mut body = json!({ "applicationId": application_id, "jobRunId": run_id });
        body.as_object_mut().unwrap().extend(fields.as_object().cloned().unwrap_or_default());
        let (status, response) = http_post(&self.emr_endpoint, "/_emulator/emr-serverless/job-runs/utilization-event", &body.to_string());
        assert_eq!(status, 200, "utilization event: {response}");
        serde_json::from_str::<Value>(&response).unwrap()["event"].clone()
    }

    /// Holds a run's billed figures at zero (`pending`), or releases them (without the final
    /// utilization event unless `publish_final`), as EMR does for a while after a run ends.
    pub fn set_billing_pending(&self, application_id: &str, run_id: &str, pending: bool, publish_final: bool) {
        let mut body = json!({ "applicationId": application_id, "jobRunId": run_id, "pending": pending });
        if !pending {
            body["publishFinal"] = json!(publish_final);
        }
        let (status, response) = http_post(&self.emr_endpoint, "/_emulator/emr-serverless/job-runs/billing", &body.to_string());
        assert_eq!(status, 200, "billing: {response}");
    }

    /// Writes driver log lines where EMR Serverless writes them, in batches PutLogEvents accepts.
    pub async fn put_driver_log(&self, log_group: &str, stream: &str, lines: impl IntoIterator<Item = String>) {
        let _ = self.logs.create_log_group().log_group_name(log_group).send().await;
        let _ = self.logs.create_log_stream().log_group_name(log_group).log_stream_name(stream).send().await;
        let now = chrono::Utc::now().timestamp_millis();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for line in lines {
            batch_bytes += line.len() + 26;
            batch.push(aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now).message(line).build().unwrap());
            if batch.len() == 10_000 || batch_bytes > 900_000 {
                self.flush_log_batch(log_group, stream, std::mem::take(&mut batch)).await;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.flush_log_batch(log_group, stream, batch).await;
        }
    }

    async fn flush_log_batch(&self, log_group: &str, stream: &str, batch: Vec<aws_sdk_cloudwatchlogs::types::InputLogEvent>) {
        self.logs
            .put_log_events()
            .log_group_name(log_group)
            .log_stream_name(stream)
            .set_log_events(Some(batch))
            .send()
            .await
            .expect("put log events");
    }

    pub async fn all_staging_keys(&self) -> Vec<String> {
        let mut pages = self.s3.list_objects_v2().bucket(&self.bucket).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            keys.extend(page.expect("list staging bucket").contents().iter().filter_map(|o| o.key()).map(str::to_string));
        }
        keys.sort();
        keys
    }

    /// Writes a job row as ModelOp Center would (PutItem of the whole document).
    pub async fn put_job(&self, job: &Value) {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(job).expect("job document is an item");
        self.dynamodb.put_item().table_name(&self.table).set_item(Some(item)).send().await.expect("put job");
    }

    pub async fn update_job(&self, id: &str, expression: &str, values: Value) {
        let values: HashMap<String, AttributeValue> = serde_dynamo::to_item(values).expect("values");
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.into()))
            .update_expression(expression)
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .expect("update job");
    }

    /// The job row as JSON, or `None` when it does not exist.
    pub async fn job(&self, id: &str) -> Option<Value> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get job");
        output.item.map(|item| serde_dynamo::from_item(item).expect("job as JSON"))
    }

    /// Stream records written since the last call, normalised to what Lambda delivers (moto
    /// omits `eventSourceARN`, says `eventVersion` 1.0 and gives float seconds).
    pub async fn new_stream_records(&self) -> Vec<Value> {
        let described = self.streams.describe_stream().stream_arn(&self.stream_arn).send().await.expect("describe stream");
        let shards = described.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        let mut records = Vec::new();
        let mut seen = self.seen_sequence_numbers.lock().unwrap().clone();
        for shard in shards {
            let mut iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard.shard_id().unwrap_or_default())
                .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("shard iterator")
                .shard_iterator;
            while let Some(current) = iterator {
                let page = self.streams.get_records().shard_iterator(current).send().await.expect("get records");
                if page.records().is_empty() {
                    break;
                }
                for record in page.records() {
                    let json = stream_record_json(record, &self.stream_arn);
                    let sequence = json["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default().to_string();
                    if !seen.contains(&sequence) {
                        seen.push(sequence);
                        records.push(json);
                    }
                }
                iterator = page.next_shard_iterator;
            }
        }
        *self.seen_sequence_numbers.lock().unwrap() = seen;
        records
    }

    /// New stream records of the given jobs' INSERTs, as one Lambda batch.
    pub async fn insert_batch(&self) -> Value {
        let records: Vec<Value> = self.new_stream_records().await.into_iter().filter(|r| r["eventName"] == "INSERT").collect();
        json!({ "Records": records })
    }

    pub async fn staged_keys(&self, job_id: &str) -> Vec<String> {
        let prefix = format!("modelop-spark-serverless/{job_id}/");
        let output = self.s3.list_objects_v2().bucket(&self.bucket).prefix(&prefix).send().await.expect("list staging");
        let mut keys: Vec<String> = output.contents().iter().filter_map(|o| o.key()).map(|k| k[prefix.len()..].to_string()).collect();
        keys.sort();
        keys
    }

    pub async fn object_text(&self, bucket: &str, key: &str) -> String {
        let output = self.s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
        String::from_utf8(output.body.collect().await.expect("body").into_bytes().to_vec()).expect("utf-8")
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: &str) {
        self.s3.put_object().bucket(bucket).key(key).body(body.as_bytes().to_vec().into()).send().await.expect("put object");
    }

    /// Applications of this test's names (the emulator shares applications across tests).
    pub async fn applications(&self, name: &str) -> Vec<aws_sdk_emrserverless::types::ApplicationSummary> {
        let mut pages = self.emr.list_applications().into_paginator().send();
        let mut apps = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.expect("list applications");
            apps.extend(page.applications().iter().filter(|a| a.name() == Some(name)).cloned());
        }
        apps
    }

    /// Every job run of the named application, in full (GetJobRun).
    pub async fn job_runs(&self, app_name: &str) -> Vec<aws_sdk_emrserverless::types::JobRun> {
        let mut runs = Vec::new();
        for app in self.applications(app_name).await {
            let listed = self.emr.list_job_runs().application_id(app.id()).send().await.expect("list job runs");
            for summary in listed.job_runs() {
                let run = self.emr.get_job_run().application_id(app.id()).job_run_id(summary.id()).send().await.expect("get job run");
                runs.push(run.job_run.expect("job run"));
            }
        }
        runs
    }

    /// Starts a job run directly, as an earlier (crashed) submit attempt would have.
    pub async fn start_run_directly(&self, app_name: &str, run_name: &str) -> (String, String) {
        let app_id = match self.applications(app_name).await.first() {
            Some(app) => app.id().to_string(),
            None => self
                .emr
                .create_application()
                .name(app_name)
                .release_label(RELEASE)
                .r#type("SPARK")
                .send()
                .await
                .expect("create application")
                .application_id
                .clone(),
        };
        let driver = aws_sdk_emrserverless::types::SparkSubmit::builder().entry_point("s3://x/driver.py").build().unwrap();
        let run = self
            .emr
            .start_job_run()
            .application_id(&app_id)
            .name(run_name)
            .execution_role_arn(DEFAULT_ROLE)
            .job_driver(aws_sdk_emrserverless::types::JobDriver::SparkSubmit(driver))
            .send()
            .await
            .expect("start job run");
        (app_id, run.job_run_id)
    }
}

/// A DynamoDB Streams record in the JSON shape Lambda delivers.
fn stream_record_json(record: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let change = record.dynamodb().expect("stream record body");
    let image = |item: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        item.map(|i| Value::Object(i.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect()))
    };
    let mut body = json!({
        "ApproximateCreationDateTime": change.approximate_creation_date_time().map(|t| t.secs()).unwrap_or_default(),
        "Keys": image(change.keys()),
        "SequenceNumber": change.sequence_number(),
        "SizeBytes": change.size_bytes(),
        "StreamViewType": change.stream_view_type().map(|v| v.as_str()),
    });
    if let Some(new_image) = image(change.new_image()) {
        body["NewImage"] = new_image;
    }
    if let Some(old_image) = image(change.old_image()) {
        body["OldImage"] = old_image;
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    })
}

/// DynamoDB JSON (`{"S": ...}`) of a DynamoDB Streams attribute value.
fn attribute_json(value: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match value {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::Bool(b) => json!({ "BOOL": b }),
        A::Null(_) => json!({ "NULL": true }),
        A::L(list) => json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() }),
        A::M(map) => json!({ "M": map.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<serde_json::Map<_, _>>() }),
        A::Ss(set) => json!({ "SS": set }),
        A::Ns(set) => json!({ "NS": set }),
        A::B(b) => json!({ "B": aws_smithy_types::base64::encode(b.as_ref()) }),
        A::Bs(set) => json!({ "BS": set.iter().map(|b| aws_smithy_types::base64::encode(b.as_ref())).collect::<Vec<_>>() }),
        other => panic!("unsupported attribute value {other:?}"),
    }
}

/// The sample PySpark model of the repository.
pub fn sample_model_source() -> String {
    std::fs::read_to_string(repo_root().join("tests/models/spark_sample_model.py")).expect("sample model")
}

/// A CREATED job document of our runtime, as ModelOp Center writes it.
pub fn created_job(id: &str, job_type: &str) -> Value {
    json!({
        "id": id,
        "jobType": job_type,
        "jobStatus": "CREATED",
        "runtimeType": "SPARK_SERVERLESS_RUNTIME",
        "createdDate": "2026-11-23T20:00:00.000Z",
        "model": { "storedModel": { "modelAssets": [
            { "name": "spark_sample_model.py", "assetType": "SOURCE_CODE", "primaryModelSource": true, "sourceCode": sample_model_source() },
            { "name": "weights.json", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://modelop-models/sample/weights.json" }
        ] } },
        "inputData": [ { "name": "sample_input.csv", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://modelop-data/input/sample_input.csv" } ],
        "outputData": [ { "name": "scored", "assetType": "EXTERNAL_FILE", "fileUrl": format!("s3://modelop-data/output/{id}/") } ],
        "jobParameters": {}
    })
}

/// The CloudWatch EMF lines of a binary run ([`invoke_binary`]'s `binaryMetrics`) that publish
/// `metric`.
pub fn metric_lines<'a>(report: &'a Value, metric: &str) -> Vec<&'a Value> {
    report["binaryMetrics"].as_array().map(Vec::as_slice).unwrap_or_default().iter().filter(|line| metric_declaration(line, metric).is_some()).collect()
}

/// How an EMF line declares `metric`: its namespace, unit (none when the line gives none) and
/// dimension sets; `None` when the line does not publish it.
pub fn metric_declaration(line: &Value, metric: &str) -> Option<(String, Option<String>, Vec<Vec<String>>)> {
    let directive = line["_aws"]["CloudWatchMetrics"].as_array()?.iter().find(|d| d["Metrics"].as_array().is_some_and(|m| m.iter().any(|m| m["Name"] == metric)))?;
    let definition = directive["Metrics"].as_array()?.iter().find(|m| m["Name"] == metric)?;
    let dimensions = serde_json::from_value(directive["Dimensions"].clone()).ok()?;
    Some((directive["Namespace"].as_str()?.to_string(), definition["Unit"].as_str().map(str::to_string), dimensions))
}

/// Dimension sets as EMF writes them.
pub fn dimension_sets(sets: &[&[&str]]) -> Vec<Vec<String>> {
    sets.iter().map(|set| set.iter().map(|d| d.to_string()).collect()).collect()
}

/// Runs a compiled function binary through the Lambda Runtime API emulator with the given event
/// files; returns the emulator's JSON report.
pub fn invoke_binary(binary: &Path, events: &[PathBuf], env: &[(String, String)]) -> Value {
    invoke_binary_with(binary, events, env, &[])
}

/// [`invoke_binary`] with more options of the emulator (`--no-extensions-api`).
pub fn invoke_binary_with(binary: &Path, events: &[PathBuf], env: &[(String, String)], options: &[&str]) -> Value {
    assert!(binary.exists(), "{} is not built", binary.display());
    let mut command = Command::new(venv_python());
    command.arg(repo_root().join("tests/emulator/lambda_runtime_api.py")).arg("--binary").arg(binary).args(options);
    for event in events {
        command.arg("--event").arg(event);
    }
    for (key, value) in env {
        command.arg("--env").arg(format!("{key}={value}"));
    }
    let output = command.output().expect("run the Lambda Runtime API emulator");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("emulator output is not JSON ({e}): {}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    })
}

/// The name the functions' shutdown hook registers its no-op internal extension under
/// (`shared::process::on_shutdown`, as lambda_runtime 1.5's `spawn_graceful_shutdown_handler`).
pub const SHUTDOWN_EXTENSION: &str = shared::process::SHUTDOWN_EXTENSION;

/// Asserts that a binary run ([`invoke_binary`]) went through Lambda's Shutdown phase as a
/// function with an internal extension does: the extension registered, SIGTERM, the metrics
/// hook ran (`shared::metrics::at_shutdown`) and the process exited 0 within the 500 ms grace.
pub fn assert_graceful_shutdown(report: &Value) {
    assert_eq!(report["extensions"], json!([SHUTDOWN_EXTENSION]), "{report:#}");
    assert_eq!(report["shutdown"], json!({ "signal": "SIGTERM", "graceMs": 500, "exitCode": 0, "killed": false }), "{:#}", report["binaryStderr"]);
    let logs = report["binaryStderr"].as_str().unwrap_or_default();
    assert!(logs.contains("shutdown: flushing metrics") && logs.contains("[runtime] Graceful shutdown completed"), "{logs}");
}

/// `target/<profile>/<name>` next to the running test binary.
pub fn function_binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>-<hash>
    test_exe.parent().and_then(Path::parent).expect("target dir").join(name)
}

/// The HTTP requests an EMR Serverless client sent, as `"<METHOD> <path and query>"`, in order
/// (retries included), so a test sees exactly what reached the emulator (CancelJobRun's
/// `?shutdownGracePeriodInSeconds=`).
#[derive(Debug, Clone, Default)]
pub struct EmrRequestLog {
    requests: Arc<Mutex<Vec<String>>>,
}

impl EmrRequestLog {
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for EmrRequestLog {
    fn name(&self) -> &'static str {
        "EmrRequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request();
        let uri = request.uri();
        // Path and query only: the endpoint is the emulator's, whatever its port.
        let path = uri.find("://").and_then(|scheme| uri[scheme + 3..].find('/').map(|p| &uri[scheme + 3 + p..])).unwrap_or(uri);
        self.requests.lock().unwrap().push(format!("{} {path}", request.method()));
        Ok(())
    }
}

/// Counts the S3 operations a client sends (one per call, retries not included), by operation
/// name, so tests can assert how many ListObjectsV2 and DeleteObjects calls a cleanup took.
#[derive(Debug, Clone, Default)]
pub struct S3CallCounter {
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl S3CallCounter {
    pub fn count(&self, operation: &str) -> usize {
        self.calls.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for S3CallCounter {
    fn name(&self) -> &'static str {
        "S3CallCounter"
    }

    fn read_before_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_sdk_s3::operation::{delete_objects::DeleteObjectsInput, list_objects_v2::ListObjectsV2Input};
        let _ = cfg;
        // The operation is told by its input type; the other operations are counted together.
        let input = context.input();
        let operation = if input.downcast_ref::<ListObjectsV2Input>().is_some() {
            "ListObjectsV2"
        } else if input.downcast_ref::<DeleteObjectsInput>().is_some() {
            "DeleteObjects"
        } else {
            "other"
        };
        *self.calls.lock().unwrap().entry(operation.to_string()).or_default() += 1;
        Ok(())
    }
}

/// A minimal HTTP/1.1 POST to the emulator's admin routes (no HTTP client crate needed).
pub fn http_post(endpoint: &str, path: &str, body: &str) -> (u16, String) {
    http_request("POST", endpoint, path, body)
}

fn http_request(method: &str, endpoint: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the emulator");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// An EventBridge "EMR Serverless Job Run State Change" event, as AWS delivers it.
pub fn state_change_event(application_id: &str, run_id: &str, run_name: Option<&str>, state: &str) -> Value {
    let mut detail = json!({
        "jobRunId": run_id,
        "applicationId": application_id,
        "arn": format!("arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{application_id}/jobruns/{run_id}"),
        "releaseLabel": RELEASE,
        "state": state,
        "previousState": "SUBMITTED",
        "createdAt": "2026-11-23T20:00:00.000Z",
        "updatedAt": "2026-11-23T20:01:00.000Z"
    });
    if let Some(name) = run_name {
        detail["jobRunName"] = json!(name);
    }
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "EMR Serverless Job Run State Change",
        "source": "aws.emr-serverless",
        "account": ACCOUNT,
        "time": "2026-11-23T20:01:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail
    })
}
