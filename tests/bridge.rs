//! The bridge against the emulators: model-manage as `tests/emulator/model_manage.py` (one per
//! test, on loopback, with its OAuth2 token endpoint), the jobs table and Secrets Manager as moto.
//! The handler is wired as a cold start wires it (`bridge::handler_from_settings`: the client
//! secret read from Secrets Manager, the reqwest client, the token source, the DynamoDB table), so
//! the HTTP calls, the tokens and the table writes are the deployed code's. What is checked is
//! what a user would see: the job in model-manage (its status, messages, times), the row in the
//! table, and the requests model-manage got (its request log).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridge::handler::{Invocation, PollReport};
use bridge::BridgeHandler;
use chrono::Utc;
use integration_tests::{
    assert_graceful_shutdown, created_job, dimension_sets, function_binary, invoke_binary, invoke_binary_with, metric_declaration, metric_lines, repo_root, sdk_config,
    unique_suffix, venv_python, TestEnv,
};
use serde_json::{json, Value};
use shared::config::Settings;
use shared::model_manage::client::{http_client, ModelManageClient};
use shared::model_manage::table::DynamoBridgeTable;
use shared::model_manage::token::TokenSource;

/// The emulator's default client (`DEFAULT_CLIENTS` in `model_manage.py`).
const CLIENT_ID: &str = "internal-client";
const CLIENT_SECRET: &str = "internal-client-secret";
const ENGINE: &str = "SPARK_SERVERLESS_RUNTIME";

/// One model-manage emulator process, stopped when dropped.
struct ModelManage {
    child: Child,
    endpoint: String,
    token_url: String,
    http: reqwest::Client,
}

impl ModelManage {
    /// Starts `model_manage.py` on a free port with the given options and waits for its ready file.
    fn start(options: &[&str]) -> ModelManage {
        let python = venv_python();
        assert!(python.exists(), "no {} — run the tests with ./tests/run.sh, which installs the emulators", python.display());
        let ready: PathBuf = std::env::temp_dir().join(format!("model-manage-ready-{}-{}", std::process::id(), unique_suffix()));
        let child = Command::new(python)
            .arg(repo_root().join("tests/emulator/model_manage.py"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--quiet")
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .expect("start model_manage.py");
        let started = Instant::now();
        let announced: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break serde_json::from_str(&text).expect("the ready file is JSON");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "model_manage.py did not start within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = std::fs::remove_file(&ready);
        ModelManage {
            child,
            endpoint: announced["endpoint"].as_str().expect("endpoint").to_string(),
            token_url: announced["token_url"].as_str().expect("token_url").to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.endpoint));
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON answer") })
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, &format!("/_emulator/model-manage{path}"), body).await;
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    /// ModelOp Center creating a job (stored as given; any document, an oversized one too).
    async fn add_job(&self, document: Value) -> String {
        let stored = self.admin(reqwest::Method::POST, "/jobs", Some(document)).await;
        stored["id"].as_str().expect("id").to_string()
    }

    /// The job as model-manage stores it; `None` once deleted.
    async fn job(&self, id: &str) -> Option<Value> {
        let (status, job) = self.call(reqwest::Method::GET, &format!("/_emulator/model-manage/jobs/{id}"), None).await;
        (status == 200).then_some(job)
    }

    /// A user's change in ModelOp Center (cancelling a job).
    async fn user_patch(&self, id: &str, patch: Value) {
        self.admin(reqwest::Method::PATCH, &format!("/jobs/{id}"), Some(patch)).await;
    }

    async fn user_delete(&self, id: &str) {
        self.admin(reqwest::Method::DELETE, &format!("/jobs/{id}"), None).await;
    }

    async fn fault(&self, fault: Value) {
        self.admin(reqwest::Method::POST, "/faults", Some(fault)).await;
    }

    async fn clear_faults(&self) {
        self.admin(reqwest::Method::DELETE, "/faults", None).await;
    }

    /// The API and token requests served since the last [`Self::clear_requests`].
    async fn requests(&self) -> Vec<Value> {
        self.admin(reqwest::Method::GET, "/requests", None).await["requests"].as_array().cloned().unwrap_or_default()
    }

    async fn clear_requests(&self) {
        self.admin(reqwest::Method::DELETE, "/requests", None).await;
    }

    /// `"<method> <status>"` of every logged request to one job's item path.
    async fn item_requests(&self, id: &str) -> Vec<String> {
        self.requests_to(&format!("/model-manage/api/jobs/{id}")).await
    }

    /// `"<method> <status>"` of every logged request to that path.
    async fn requests_to(&self, path: &str) -> Vec<String> {
        self.requests().await.iter().filter(|r| r["path"] == path).map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["status"])).collect()
    }

    /// A bearer token for the default client, as ModelOp's own scripts get one.
    async fn token(&self) -> String {
        let response = self
            .http
            .post(&self.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"))
            .send()
            .await
            .expect("token request");
        let answer: Value = serde_json::from_slice(&response.bytes().await.expect("token body")).expect("token JSON");
        answer["access_token"].as_str().expect("access_token").to_string()
    }
}

impl Drop for ModelManage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: moto's table and secret, a model-manage emulator, the bridge wired to both.
struct World {
    env: TestEnv,
    mm: ModelManage,
    settings: Vec<(String, String)>,
    bridge: BridgeHandler,
}

impl World {
    async fn new(emulator_options: &[&str]) -> World {
        World::with_settings(emulator_options, &[]).await
    }

    /// A world whose bridge has these settings too (`MODELOP_…` beside the ones every test has).
    async fn with_settings(emulator_options: &[&str], extra: &[(&str, &str)]) -> World {
        let env = TestEnv::new().await;
        let mm = ModelManage::start(emulator_options);
        let secret_arn = put_client_secret(&env, CLIENT_SECRET).await;
        let settings: Vec<(String, String)> = [
            ("JOBS_TABLE", env.table.as_str()),
            ("STAGING_BUCKET", env.bucket.as_str()),
            ("MODELOP_GATEWAY_URL", mm.endpoint.as_str()),
            ("MODELOP_TOKEN_URL", mm.token_url.as_str()),
            ("MODELOP_CLIENT_ID", CLIENT_ID),
            ("MODELOP_CLIENT_SECRET_ARN", secret_arn.as_str()),
            ("MODELOP_POLL_SECONDS", "1"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let bridge = wire(&env, &settings).await;
        World { env, mm, settings, bridge }
    }

    /// Another handler of the same deployment (a second poller, or the next cold start).
    async fn another_bridge(&self) -> BridgeHandler {
        wire(&self.env, &self.settings).await
    }

    /// This deployment's bridge (same client, same claimant), whose DynamoDB writes fail.
    async fn bridge_with_broken_table(&self) -> BridgeHandler {
        let settings = self.settings();
        let config = settings.bridge().expect("bridge settings");
        let http = http_client().expect("http client");
        let tokens = TokenSource::new(http.clone(), &config.token_url, &config.client_id, CLIENT_SECRET.into(), config.scope.clone());
        let model_manage = ModelManageClient::new(http, config.api_base.clone(), config.job_item_path.clone(), tokens);
        let table = DynamoBridgeTable::new(self.env.dynamodb.clone(), format!("{}-gone", self.env.table));
        BridgeHandler::new(config, &self.env.table, Arc::new(model_manage), Arc::new(table))
    }

    fn settings(&self) -> Settings {
        settings_of(&self.settings)
    }

    /// A CREATED job of this runtime in model-manage, as ModelOp Center stores it.
    async fn add_created_job(&self) -> String {
        self.mm.add_job(modelop_job()).await
    }

    async fn row(&self, id: &str) -> Option<Value> {
        self.env.job(id).await
    }

    /// What submit and monitor write to a bridged row, in one update: the row's new status and
    /// the fields the bridge writes back.
    async fn runtime_writes(&self, id: &str, expression: &str, values: Value) {
        self.env.update_job(id, expression, values).await;
    }

    /// The stream records since the last call, as one Lambda batch.
    async fn stream_batch(&self) -> Value {
        json!({ "Records": self.env.new_stream_records().await })
    }
}

/// A client secret in moto's Secrets Manager, as the deployment stores it (JSON with
/// `client_secret`); its ARN.
async fn put_client_secret(env: &TestEnv, client_secret: &str) -> String {
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(&env.endpoint).await);
    let secret = secrets
        .create_secret()
        .name(format!("modelop-client-{}", unique_suffix()))
        .secret_string(json!({"client_id": CLIENT_ID, "client_secret": client_secret}).to_string())
        .send()
        .await
        .expect("create the client secret in moto");
    secret.arn().expect("secret ARN").to_string()
}

/// The settings as the environment would give them.
fn settings_of(values: &[(String, String)]) -> Settings {
    Settings::load(|name| values.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()), |path| std::fs::read_to_string(path)).expect("settings")
}

/// The bridge as its cold start wires it, on moto and the emulator.
async fn wire(env: &TestEnv, settings: &[(String, String)]) -> BridgeHandler {
    bridge::handler_from_settings(&settings_of(settings), &sdk_config(&env.endpoint).await).await.expect("the bridge's cold start")
}

/// A CREATED job as ModelOp Center keeps it in model-manage: the runtime in `targetEngine`, no id
/// (model-manage gives one).
fn modelop_job() -> Value {
    let mut job = created_job("placeholder", "MODEL_BATCH_JOB");
    let fields = job.as_object_mut().unwrap();
    for dropped in ["id", "runtimeType", "createdDate"] {
        fields.remove(dropped);
    }
    fields.insert("targetEngine".into(), json!({"engineType": ENGINE, "name": "emr-serverless", "sparkConf": {}}));
    job
}

/// One scheduled invocation that polls once (the poll interval is 1 s; a poll starts only if it
/// can end 5 s before the deadline, and the first always runs).
async fn poll_once(bridge: &BridgeHandler) -> PollReport {
    bridge.poll_until(Utc::now() + chrono::Duration::seconds(1)).await.expect("the poll reaches model-manage")
}

fn invocation() -> Invocation {
    Invocation { request_id: uuid::Uuid::new_v4().to_string(), deadline: Utc::now() + chrono::Duration::seconds(1) }
}

fn messages(job: &Value) -> Vec<String> {
    job["jobMessages"].as_array().map(|lines| lines.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// The batch item failures of a stream answer, as sequence numbers.
fn failures(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
}

#[tokio::test]
async fn a_job_posted_to_model_manage_is_claimed_with_if_match_and_becomes_one_created_row() {
    let w = World::new(&[]).await;
    // POST <gateway>/model-manage/api/jobs, as ModelOp's submit.py creates a job.
    let token = w.mm.token().await;
    let created = w
        .mm
        .http
        .post(format!("{}/model-manage/api/jobs", w.mm.endpoint))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(modelop_job().to_string())
        .send()
        .await
        .expect("POST the job");
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = serde_json::from_slice(&created.bytes().await.unwrap()).unwrap();
    let id = created["id"].as_str().expect("model-manage gave an id").to_string();

    // Through the function's entry point, with a scheduled event.
    let answer = w.bridge.handle(scheduled_event(), &invocation()).await.expect("the scheduled invocation");
    assert_eq!(answer["bridged"], json!([id]), "{answer}");

    let job = w.mm.job(&id).await.unwrap();
    assert_eq!((job["jobStatus"].as_str(), job["version"].as_i64(), job["lastModifiedBy"].as_str()), (Some("WAITING"), Some(1), Some(CLIENT_ID)));
    assert!(job["jobWaitTime"].as_i64().is_some_and(|t| t > 0), "{job}");
    let claim = messages(&job).pop().expect("a claim line");
    assert!(claim.contains("claimed for AWS EMR Serverless") && claim.contains(&format!("{CLIENT_ID}@{}", w.env.table)), "{claim}");
    // The claim was a conditional PATCH on the version model-manage listed.
    let patches: Vec<Value> = w.mm.requests().await.into_iter().filter(|r| r["method"] == "PATCH").collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!((patches[0]["ifMatch"].as_str(), patches[0]["status"].as_u64()), (Some("\"0\""), Some(200)));

    let row = w.row(&id).await.expect("the row");
    assert_eq!(row["jobStatus"], "CREATED");
    assert_eq!(row["modelManage"]["source"], "model-manage");
    assert_eq!(row["modelManage"]["version"], 1);
    assert_eq!(row["modelManage"]["claimant"], format!("{CLIENT_ID}@{}", w.env.table));
    assert!(row.get("_links").is_none(), "HAL links are not stored: {row}");
    assert_eq!(row["targetEngine"]["engineType"], ENGINE);
    assert_eq!(row["model"], created["model"]);
    // The row is one submit takes: an INSERT of a CREATED job of this runtime on the stream.
    let inserts = w.env.insert_batch().await;
    assert_eq!(inserts["Records"].as_array().unwrap().len(), 1);

    // The next poll finds nothing to do: no second claim, no second row.
    w.mm.clear_requests().await;
    let again = poll_once(&w.bridge).await;
    assert!(again.bridged.is_empty() && again.recovered.is_empty() && again.failed.is_empty(), "{again:?}");
    assert!(w.mm.requests().await.iter().all(|r| r["method"] == "GET"), "no write: {:?}", w.mm.requests().await);
}

#[tokio::test]
async fn two_pollers_racing_for_the_same_jobs_write_one_row_each() {
    let w = World::new(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(w.add_created_job().await);
    }
    let second = w.another_bridge().await;
    let (a, b) = tokio::join!(poll_once(&w.bridge), poll_once(&second));
    let mut bridged: Vec<String> = a.bridged.iter().chain(&b.bridged).cloned().collect();
    bridged.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(bridged, expected, "each job bridged by exactly one poller: {a:?} {b:?}");
    for id in &ids {
        assert_eq!(w.row(id).await.expect("a row")["jobStatus"], "CREATED");
        let job = w.mm.job(id).await.unwrap();
        assert_eq!((job["jobStatus"].as_str(), job["version"].as_i64()), (Some("WAITING"), Some(1)), "claimed once: {job}");
        let claims = messages(&job).iter().filter(|l| l.contains("claimed for AWS EMR Serverless")).count();
        assert_eq!(claims, 1);
        let won: Vec<String> = w.mm.item_requests(id).await.into_iter().filter(|r| r == "PATCH 200").collect();
        assert_eq!(won.len(), 1, "one claim won for {id}");
    }
}

#[tokio::test]
async fn a_claim_another_runtime_wins_first_writes_no_row_and_is_never_taken() {
    let w = World::new(&[]).await;
    let id = w.add_created_job().await;
    // Another runtime claims the job between our read and our PATCH.
    w.mm.fault(json!({"kind": "claim-race", "jobId": id})).await;
    let report = poll_once(&w.bridge).await;
    assert_eq!((report.lost.clone(), report.bridged.clone()), (vec![id.clone()], vec![]), "{report:?}");
    let log = w.mm.requests().await;
    let patch = log.iter().find(|r| r["method"] == "PATCH").expect("the claim");
    assert_eq!((patch["status"].as_u64(), patch["fault"].as_str(), patch["ifMatch"].as_str()), (Some(412), Some("claim-race"), Some("\"0\"")));
    assert!(w.row(&id).await.is_none());
    let job = w.mm.job(&id).await.unwrap();
    assert_eq!((job["jobStatus"].as_str(), job["lastModifiedBy"].as_str()), (Some("WAITING"), Some("other-runtime")));

    // The next poll leaves the other runtime's claim alone.
    w.mm.clear_requests().await;
    let next = poll_once(&w.bridge).await;
    assert!(next.recovered.is_empty() && next.bridged.is_empty(), "{next:?}");
    assert!(w.row(&id).await.is_none());
    assert!(w.mm.item_requests(&id).await.iter().all(|r| !r.starts_with("PATCH")));
}

#[tokio::test]
async fn a_claim_whose_row_was_never_written_is_finished_by_the_next_poll() {
    let w = World::new(&[]).await;
    let id = w.add_created_job().await;
    // An invocation that stops between the claim and the put: here the same deployment whose
    // table write fails (the DynamoDB client writes to a table that is not there) after the claim
    // succeeded in model-manage.
    let crashed = w.bridge_with_broken_table().await.poll_until(Utc::now() + chrono::Duration::seconds(1)).await.expect("the poll reached model-manage");
    assert!(crashed.bridged.is_empty() && !crashed.failed.is_empty(), "{crashed:?}");
    assert_eq!(w.mm.job(&id).await.unwrap()["jobStatus"], "WAITING", "claimed in model-manage");
    assert!(w.row(&id).await.is_none(), "but no row");

    let next = poll_once(&w.bridge).await;
    assert_eq!(next.recovered, vec![id.clone()], "{next:?}");
    let row = w.row(&id).await.expect("the row, written by the next poll");
    assert_eq!(row["jobStatus"], "CREATED");
    assert_eq!(row["modelManage"]["source"], "model-manage");
    // And it is not claimed a second time.
    assert_eq!(w.mm.job(&id).await.unwrap()["jobStatus"], "WAITING");
    let claims = messages(&w.mm.job(&id).await.unwrap()).iter().filter(|l| l.contains("claimed for AWS EMR Serverless")).count();
    assert_eq!(claims, 1);
}

/// A bridged job that submit and monitor then move along: RUNNING with its run, then COMPLETE.
async fn bridged_job(w: &World) -> String {
    let id = w.add_created_job().await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![id.clone()]);
    w.env.new_stream_records().await; // the INSERT: submit's, not the bridge's business
    id
}

async fn run_starts(w: &World, id: &str) {
    w.runtime_writes(
        id,
        "SET jobStatus = :s, updatedAt = :u, sparkApplicationId = :r, jobRunTime = :t, jobMessages = list_append(jobMessages, :m)",
        json!({":s": "RUNNING", ":u": "2026-11-23T20:00:03.000Z", ":r": "00fabc123", ":t": 1_795_464_003_000_i64,
               ":m": ["2026/11/23 20:00:03 [info] EMR Serverless job run 00fabc123 RUNNING"]}),
    )
    .await;
}

#[tokio::test]
async fn an_outage_during_write_back_retries_the_record_and_it_is_written_once_model_manage_returns() {
    let w = World::new(&[]).await;
    let id = bridged_job(&w).await;
    run_starts(&w, &id).await;
    let batch = w.stream_batch().await;
    let sequence = batch["Records"][0]["dynamodb"]["SequenceNumber"].as_str().unwrap().to_string();

    // model-manage answers 503 to every PATCH: the client's retries run out, the record is
    // reported for Lambda to retry, nothing is lost and nothing half-written.
    w.mm.fault(json!({"kind": "status", "status": 503, "method": "PATCH", "count": null})).await;
    let response = w.bridge.handle_stream(batch.clone()).await;
    assert_eq!(failures(&response), vec![sequence], "the record is retried");
    assert_eq!(w.mm.job(&id).await.unwrap()["jobStatus"], "WAITING");

    // model-manage is back: the redelivered record is written.
    w.mm.clear_faults().await;
    let response = w.bridge.handle_stream(batch).await;
    assert!(failures(&response).is_empty());
    let job = w.mm.job(&id).await.unwrap();
    assert_eq!(job["jobStatus"], "RUNNING");
    assert_eq!(job["jobRunTime"], 1_795_464_003_000_i64);
    assert_eq!(job["lastUpdateFromRuntime"], "2026-11-23T20:00:03.000Z");
    assert!(messages(&job).iter().any(|l| l.contains("00fabc123")), "the run id in a line: {job}");
    assert!(job.get("jobResult").is_none(), "no result before a final status: {job}");
}

#[tokio::test]
async fn a_redelivered_stream_record_writes_nothing_new() {
    let w = World::new(&[]).await;
    let id = bridged_job(&w).await;
    run_starts(&w, &id).await;
    w.runtime_writes(
        &id,
        "SET jobStatus = :s, updatedAt = :u, jobEndTime = :t, jobMessages = list_append(jobMessages, :m)",
        json!({":s": "COMPLETE", ":u": "2026-11-23T20:05:00.000Z", ":t": 1_795_464_300_000_i64, ":m": ["2026/11/23 20:05:00 [info] job COMPLETE"]}),
    )
    .await;
    let batch = w.stream_batch().await;
    assert_eq!(batch["Records"].as_array().unwrap().len(), 2, "two MODIFYs");
    assert!(failures(&w.bridge.handle_stream(batch.clone()).await).is_empty());
    let job = w.mm.job(&id).await.unwrap();
    assert_eq!((job["jobStatus"].as_str(), job["jobResult"].as_str(), job["jobEndTime"].as_i64()), (Some("COMPLETE"), Some("SUCCESS"), Some(1_795_464_300_000)));
    assert_eq!(job["lastUpdateFromRuntime"], "2026-11-23T20:05:00.000Z");
    let version = job["version"].as_i64();
    let patches = w.mm.item_requests(&id).await.into_iter().filter(|r| r.starts_with("PATCH")).count();
    assert_eq!(patches, 2, "the claim and one write-back (the newest image of the batch)");

    // Lambda delivers the same batch again: model-manage is read, nothing is written.
    w.mm.clear_requests().await;
    assert!(failures(&w.bridge.handle_stream(batch).await).is_empty());
    assert_eq!(w.mm.item_requests(&id).await, vec!["GET 200".to_string()]);
    assert_eq!(w.mm.job(&id).await.unwrap()["version"].as_i64(), version);
}

/// "Updates job with output data": the FILE output the run wrote and a test job's result reach
/// model-manage's `outputData`, through the item path the deployment names, once.
#[tokio::test]
async fn a_test_jobs_outputs_and_result_are_written_back_into_output_data_at_the_configured_item_path() {
    let w = World::with_settings(&[], &[("MODELOP_JOB_ITEM_PATH", "modelBatchTestJob/{id}")]).await;
    let mut job = modelop_job();
    job["jobType"] = json!("MODEL_BATCH_TEST_JOB");
    let declared = json!({"assetId": "out-1", "name": "metrics.json", "filename": "metrics.json", "assetType": "FILE", "assetRole": "UNKNOWN"});
    job["outputData"] = json!([declared]);
    let id = w.mm.add_job(job).await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![id.clone()]);
    w.env.new_stream_records().await;
    run_starts(&w, &id).await;
    // What the monitor writes on SUCCESS: the FILE output's bytes and the model's result.
    let result = json!({"accuracy": 0.87, "confusion": [[40, 5], [8, 47]]});
    w.runtime_writes(
        &id,
        "SET jobStatus = :s, updatedAt = :u, jobEndTime = :t, outputData[0].fileContent = :c, outputData[0].fileSize = :z, modelResult = :r",
        json!({":s": "COMPLETE", ":u": "2026-11-23T20:05:00.000Z", ":t": 1_795_464_300_000_i64, ":c": "eyJvayI6IHRydWV9", ":z": 12,
               ":r": {"jobId": id, "jobType": "MODEL_BATCH_TEST_JOB", "function": "metrics", "result": result}}),
    )
    .await;
    w.mm.clear_requests().await;
    let batch = w.stream_batch().await;
    assert!(failures(&w.bridge.handle_stream(batch.clone()).await).is_empty());

    let stored = w.mm.job(&id).await.unwrap();
    let outputs = stored["outputData"].as_array().expect("outputData");
    let mut written = declared.clone();
    written["fileContent"] = json!("eyJvayI6IHRydWV9");
    written["fileSize"] = json!(12);
    assert_eq!(outputs[0], written, "ModelOp's asset with the bytes the model wrote");
    assert_eq!(outputs.len(), 2, "and the test result added: {stored}");
    let asset = &outputs[1];
    assert_eq!((asset["name"].as_str(), asset["assetType"].as_str(), asset["fileFormat"].as_str()), (Some("test_result.json"), Some("FILE"), Some("JSON")));
    let decoded = { use base64::Engine as _; base64::engine::general_purpose::STANDARD.decode(asset["fileContent"].as_str().unwrap()).unwrap() };
    assert_eq!(serde_json::from_slice::<Value>(&decoded).unwrap(), result, "the model's result, as JSON");
    assert_eq!(asset["fileSize"].as_u64(), Some(decoded.len() as u64));
    assert_eq!(stored["jobStatus"], "COMPLETE");
    // Every read and write of the job went to the configured path, none to the default one.
    let typed = w.mm.requests_to(&format!("/model-manage/api/modelBatchTestJob/{id}")).await;
    assert!(typed.iter().any(|r| r.starts_with("PATCH 2")), "{typed:?}");
    assert_eq!(w.mm.item_requests(&id).await, Vec::<String>::new());

    // A redelivery reads and writes nothing.
    w.mm.clear_requests().await;
    assert!(failures(&w.bridge.handle_stream(batch).await).is_empty());
    assert_eq!(w.mm.requests_to(&format!("/model-manage/api/modelBatchTestJob/{id}")).await, vec!["GET 200".to_string()]);
}

#[tokio::test]
async fn an_expired_token_is_replaced_before_it_is_refused() {
    let w = World::new(&["--token-lifetime", "1"]).await;
    let first = w.add_created_job().await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![first]);
    // Past the token's lifetime: the next calls get a new token first, and none is refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.mm.clear_requests().await;
    let second = w.add_created_job().await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![second]);
    let log = w.mm.requests().await;
    assert_eq!(log[0]["path"], "/oauth/token", "a new token first: {log:?}");
    assert!(log.iter().all(|r| r["status"] != 401), "{log:?}");
}

#[tokio::test]
async fn a_token_model_manage_refuses_is_replaced_once_and_the_request_sent_again() {
    let w = World::new(&[]).await;
    let first = w.add_created_job().await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![first]);
    // The identity provider drops every token (a restart, a key rotation): model-manage answers 401.
    w.mm.admin(reqwest::Method::POST, "/tokens/revoke", Some(json!({}))).await;
    w.mm.clear_requests().await;
    let second = w.add_created_job().await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![second.clone()]);
    let log: Vec<String> = w.mm.requests().await.iter().map(|r| format!("{} {} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap(), r["status"])).collect();
    assert!(log[0].ends_with(" 401"), "{log:?}");
    assert_eq!(log[1], "POST /oauth/token 200", "{log:?}");
    assert_eq!(log.iter().filter(|l| l.ends_with(" 401")).count(), 1, "{log:?}");
    assert_eq!(w.row(&second).await.unwrap()["jobStatus"], "CREATED");
}

/// The token is cached until it nears its expiry: the polls and write-backs of one container
/// ask the token endpoint once while the token is valid.
#[tokio::test]
async fn one_token_serves_every_poll_and_write_back_while_it_is_valid() {
    let w = World::new(&[]).await; // tokens live an hour
    let first = bridged_job(&w).await;
    run_starts(&w, &first).await;
    assert!(failures(&w.bridge.handle_stream(w.stream_batch().await).await).is_empty());
    assert_eq!(w.mm.job(&first).await.unwrap()["jobStatus"], "RUNNING", "written back");
    let second = w.add_created_job().await;
    assert_eq!(poll_once(&w.bridge).await.bridged, vec![second]);

    let log = w.mm.requests().await;
    let tokens: Vec<&Value> = log.iter().filter(|r| r["path"] == "/oauth/token").collect();
    assert_eq!(tokens.len(), 1, "one token request: {log:?}");
    assert_eq!((log[0]["path"].as_str(), log[0]["status"].as_u64()), (Some("/oauth/token"), Some(200)), "{log:?}");
    let api: Vec<&Value> = log.iter().filter(|r| r["path"] != "/oauth/token").collect();
    let patches = api.iter().filter(|r| r["method"] == "PATCH").count();
    assert_eq!(patches, 3, "two claims and one write-back: {api:?}");
    assert!(api.iter().all(|r| r["status"].as_u64().is_some_and(|s| (200..300).contains(&s)) && r["clientId"] == CLIENT_ID), "every call made with that token: {api:?}");
}

#[tokio::test]
async fn a_job_cancelled_or_deleted_in_modelop_cancels_its_row_and_stays_cancelled_there() {
    let w = World::new(&[]).await;
    let cancelled = bridged_job(&w).await;
    let deleted = bridged_job(&w).await;
    let still_created = bridged_job(&w).await;
    let followed_on_stream = bridged_job(&w).await;
    for id in [&cancelled, &deleted, &followed_on_stream] {
        run_starts(&w, id).await;
    }
    assert!(failures(&w.bridge.handle_stream(w.stream_batch().await).await).is_empty());

    // A user cancels one job and deletes two in ModelOp Center; the scheduled poll follows.
    w.mm.user_patch(&cancelled, json!({"jobStatus": "CANCELLED"})).await;
    w.mm.user_delete(&deleted).await;
    w.mm.user_delete(&still_created).await;
    let report = poll_once(&w.bridge).await;
    let mut got = report.cancelled.clone();
    got.sort();
    let mut expected = vec![cancelled.clone(), deleted.clone(), still_created.clone()];
    expected.sort();
    assert_eq!(got, expected, "{report:?}");
    for (id, line) in [(&cancelled, "cancelled in ModelOp Center"), (&deleted, "deleted in ModelOp Center"), (&still_created, "deleted in ModelOp Center")] {
        let row = w.row(id).await.unwrap();
        assert_eq!(row["jobStatus"], "CANCELLED", "{id}");
        assert!(row["jobEndTime"].as_i64().is_some());
        assert!(messages(&row).last().unwrap().contains(line), "{row}");
    }

    // The CANCELLED rows' records are not written back over ModelOp's own CANCELLED.
    w.mm.clear_requests().await;
    assert!(failures(&w.bridge.handle_stream(w.stream_batch().await).await).is_empty());
    let job = w.mm.job(&cancelled).await.unwrap();
    assert_eq!((job["jobStatus"].as_str(), job["lastModifiedBy"].as_str()), (Some("CANCELLED"), Some("SYSTEM")));
    assert!(w.mm.requests().await.iter().all(|r| r["method"] != "PATCH"), "{:?}", w.mm.requests().await);

    // On the stream too: a record of a job ModelOp cancelled meanwhile cancels its row.
    w.mm.user_patch(&followed_on_stream, json!({"jobStatus": "CANCELLED"})).await;
    w.runtime_writes(&followed_on_stream, "SET updatedAt = :u", json!({":u": "2026-11-23T20:00:09.000Z"})).await;
    assert!(failures(&w.bridge.handle_stream(w.stream_batch().await).await).is_empty());
    assert_eq!(w.row(&followed_on_stream).await.unwrap()["jobStatus"], "CANCELLED");
    assert_eq!(w.mm.job(&followed_on_stream).await.unwrap()["jobStatus"], "CANCELLED");
}

#[tokio::test]
async fn an_oversized_or_malformed_document_ends_in_error_in_model_manage_with_the_reason() {
    let w = World::new(&[]).await;
    let mut oversized = modelop_job();
    oversized["jobParameters"] = json!({"notes": "x".repeat(420 * 1024)});
    let oversized = w.mm.add_job(oversized).await;
    let mut malformed = modelop_job();
    malformed["inputData"] = json!([{"assetType": "EXTERNAL_FILE", "fileUrl": 42}]);
    let malformed = w.mm.add_job(malformed).await;

    let report = poll_once(&w.bridge).await;
    let mut refused = report.refused.clone();
    refused.sort();
    let mut expected = vec![oversized.clone(), malformed.clone()];
    expected.sort();
    assert_eq!(refused, expected, "{report:?}");
    for (id, reason) in [(&oversized, "the jobs table holds at most 409600 bytes (400 KB)"), (&malformed, "not a job this runtime can run: inputData[0].fileUrl")] {
        let job = w.mm.job(id).await.unwrap();
        assert_eq!((job["jobStatus"].as_str(), job["jobResult"].as_str()), (Some("ERROR"), Some("UNKNOWN")), "{id}");
        assert!(job["jobEndTime"].as_i64().is_some());
        let last = messages(&job).pop().unwrap();
        assert!(last.contains("[error]") && last.contains(reason), "{last}");
        assert!(w.row(id).await.is_none());
    }
    // They are final: the next poll leaves them.
    w.mm.clear_requests().await;
    let next = poll_once(&w.bridge).await;
    assert!(next.refused.is_empty() && next.bridged.is_empty(), "{next:?}");
    assert!(w.mm.requests().await.iter().all(|r| r["method"] == "GET"));
}

/// Event files for the compiled binary, in a folder of their own; the folder.
fn event_files(events: &[(&str, &Value)]) -> (PathBuf, Vec<PathBuf>) {
    let folder = std::env::temp_dir().join(format!("bridge-events-{}", unique_suffix()));
    std::fs::create_dir_all(&folder).unwrap();
    let paths = events
        .iter()
        .map(|(name, event)| {
            let path = folder.join(name);
            std::fs::write(&path, event.to_string()).unwrap();
            path
        })
        .collect();
    (folder, paths)
}

fn scheduled_event() -> Value {
    json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

/// The EMF lines of `metric` whose value is at least 1 (an entry also declares its sibling metric
/// at 0: a failed write-back's line has `WriteBacks` 0).
fn counted<'a>(report: &'a Value, metric: &str) -> Vec<&'a Value> {
    metric_lines(report, metric).into_iter().filter(|l| l[metric].as_u64().is_some_and(|n| n > 0)).collect()
}

#[tokio::test]
async fn the_binary_polls_writes_back_and_publishes_its_metrics() {
    let w = World::new(&[]).await;
    let running = bridged_job(&w).await;
    let unreachable = bridged_job(&w).await;
    for id in [&running, &unreachable] {
        run_starts(&w, id).await;
    }
    let stream = w.stream_batch().await;
    let unreachable_sequence = stream["Records"].as_array().unwrap().iter().find(|r| r["dynamodb"]["Keys"]["id"]["S"] == unreachable.as_str()).expect("its record")["dynamodb"]["SequenceNumber"].clone();
    let created = w.add_created_job().await;
    let raced = w.add_created_job().await;
    w.mm.fault(json!({"faults": [
        // One 503 on the finder, which the client tries again: counted, not failed.
        {"kind": "status", "status": 503, "method": "GET", "path": "/jobs/search/", "count": 1},
        // Another runtime claims one job between the poll's read and its PATCH: a claim lost.
        {"kind": "claim-race", "jobId": raced},
        // Every PATCH of one bridged job answers 503: its write-back fails once the client's tries end.
        {"kind": "status", "status": 503, "method": "PATCH", "path": format!("/jobs/{unreachable}$"), "count": null},
    ]}))
    .await;
    let (folder, events) = event_files(&[("scheduled.json", &scheduled_event()), ("stream.json", &stream)]);
    let mut env = w.env.function_env();
    env.extend(w.settings.iter().cloned());
    // A 3 s deadline: one poll (the loop stops 5 s before it).
    let report = invoke_binary_with(&function_binary("bridge"), &events, &env, &["--timeout-seconds", "3"]);

    assert_eq!(w.row(&created).await.expect("bridged by the binary")["jobStatus"], "CREATED", "{:#}", report["binaryStderr"]);
    assert!(w.row(&raced).await.is_none(), "the raced job is the other runtime's");
    assert_eq!(report["invocations"][0]["body"]["lost"], json!([raced]), "{report:#}");
    assert_eq!(w.mm.job(&running).await.unwrap()["jobStatus"], "RUNNING");
    assert_eq!(w.mm.job(&unreachable).await.unwrap()["jobStatus"], "WAITING", "its write-back failed");
    assert_eq!(report["invocations"][1]["body"]["batchItemFailures"], json!([{"itemIdentifier": unreachable_sequence}]), "{report:#}");

    let polled = metric_lines(&report, "JobsBridged");
    assert_eq!(polled.len(), 1, "{report:#}");
    assert_eq!((polled[0]["JobsBridged"].as_u64(), polled[0]["ClaimsLost"].as_u64(), polled[0]["Function"].as_str()), (Some(1), Some(1), Some("bridge")));
    for metric in ["JobsBridged", "ClaimsLost"] {
        assert_eq!(metric_declaration(polled[0], metric).unwrap().2, dimension_sets(&[&["Function"]]), "{metric}");
    }
    let mut errors: Vec<(&str, &str)> = metric_lines(&report, "ModelManageErrors").iter().map(|l| (l["Operation"].as_str().unwrap(), l["Status"].as_str().unwrap())).collect();
    errors.sort();
    assert_eq!(errors, [("find jobs", "503"), ("patch job", "503"), ("patch job", "503"), ("patch job", "503")], "the finder's one 503, the write-back's three tries");
    let errors = metric_lines(&report, "ModelManageErrors");
    assert_eq!(metric_declaration(errors[0], "ModelManageErrors").unwrap().2, dimension_sets(&[&["Function"], &["Function", "Status"]]));
    let written: Vec<(&str, &str)> = counted(&report, "WriteBacks").iter().map(|l| (l["Outcome"].as_str().unwrap(), l["JobId"].as_str().unwrap())).collect();
    assert_eq!(written, [("Written", running.as_str())]);
    let failed = counted(&report, "WriteBackFailures");
    let failed_jobs: Vec<(&str, &str)> = failed.iter().map(|l| (l["Outcome"].as_str().unwrap(), l["JobId"].as_str().unwrap())).collect();
    assert_eq!(failed_jobs, [("Failed", unreachable.as_str())]);
    assert_eq!(metric_declaration(failed[0], "WriteBackFailures").unwrap().2, dimension_sets(&[&["Function"], &["Function", "Outcome"]]));
    assert!(metric_lines(&report, "AuthFailures").is_empty(), "the client's secret is right");
    assert_graceful_shutdown(&report);

    // The same deployment after its client secret was changed in Secrets Manager but not at the
    // identity provider: the token endpoint refuses the client (invalid_client).
    w.mm.clear_faults().await;
    w.mm.clear_requests().await;
    const WRONG_SECRET: &str = "not-the-client-secret";
    let wrong = put_client_secret(&w.env, WRONG_SECRET).await;
    for (key, value) in env.iter_mut() {
        if key == "MODELOP_CLIENT_SECRET_ARN" {
            *value = wrong.clone();
        }
    }
    let refused = invoke_binary_with(&function_binary("bridge"), &events[..1], &env, &["--timeout-seconds", "3"]);
    let _ = std::fs::remove_dir_all(&folder);
    let invocation = &refused["invocations"][0];
    assert_eq!(invocation["status"], "error", "no poll could read model-manage: {refused:#}");
    assert!(invocation["body"].to_string().contains("invalid_client"), "{invocation:#}");
    let auth = metric_lines(&refused, "AuthFailures");
    assert!(!auth.is_empty(), "{refused:#}");
    assert!(auth.iter().all(|l| l["AuthFailures"] == 1 && l["Reason"] == "invalid_client" && l["Function"] == "bridge"), "{auth:?}");
    assert_eq!(metric_declaration(auth[0], "AuthFailures").unwrap().2, dimension_sets(&[&["Function"]]));
    let log = w.mm.requests().await;
    assert_eq!(log.len(), auth.len(), "one AuthFailures line per refused token request: {log:?}");
    assert!(log.iter().all(|r| r["path"] == "/oauth/token" && r["status"] == 401), "nothing reached model-manage without a token: {log:?}");
    assert!(!refused["binaryStderr"].as_str().unwrap_or_default().contains(WRONG_SECRET), "the secret is never logged");
}

/// A bad `MODELOP_*` setting stops the bridge's cold start before any event, with an error naming
/// the variable (nothing is reached: no emulator is needed).
#[tokio::test]
async fn a_bad_modelop_setting_fails_the_cold_start_naming_it() {
    let base: Vec<(String, String)> = [
        ("JOBS_TABLE", "modelop-jobs"),
        ("STAGING_BUCKET", "modelop-staging"),
        ("MODELOP_GATEWAY_URL", "http://127.0.0.1:9/"),
        ("MODELOP_TOKEN_URL", "http://127.0.0.1:9/oauth/token"),
        ("MODELOP_CLIENT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:modelop-client"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let too_long = "r".repeat(257);
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("MODELOP_GATEWAY_URL", None, "MODELOP_GATEWAY_URL is required but not set"),
        ("MODELOP_TOKEN_URL", Some(""), "MODELOP_TOKEN_URL is required but not set"),
        ("MODELOP_POLL_SECONDS", Some("0"), "MODELOP_POLL_SECONDS is invalid"),
        ("MODELOP_RUNTIME_NAME", Some(too_long.as_str()), "MODELOP_RUNTIME_NAME is invalid"),
        ("MODELOP_JOB_ITEM_PATH", Some("jobs"), "MODELOP_JOB_ITEM_PATH is invalid"),
    ];
    let (folder, events) = event_files(&[("scheduled.json", &scheduled_event())]);
    for (var, value, needle) in cases {
        let mut env: Vec<(String, String)> = base.iter().filter(|(k, _)| k != var).cloned().collect();
        if let Some(value) = value {
            env.push((var.to_string(), value.to_string()));
        }
        let report = invoke_binary(&function_binary("bridge"), &events, &env);
        assert_ne!(report["failure"], Value::Null, "{var}: the binary must not serve events with a bad configuration: {report:#}");
        assert_ne!(report["invocations"][0]["status"], "response", "{var}: {report:#}");
        let logs = report["binaryStderr"].as_str().unwrap_or_default();
        assert!(logs.contains("cold start failed") && logs.contains(needle), "{var}={value:?}: {logs}");
    }
    let _ = std::fs::remove_dir_all(&folder);
}
