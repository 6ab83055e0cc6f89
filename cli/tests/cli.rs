//! The operator CLI, `modelop-spark`, as a user runs it: the compiled binary (cargo builds it for
//! these tests) against moto and the EMR Serverless emulator of the harness,
//! on rows written as the functions write them. Each test checks what a user sees (stdout, the
//! exit code) and what the CLI changed (the row, the request EMR got).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use integration_tests::*;

/// The CLI run against this test's table, with the emulators' endpoints, no colour.
fn cli_command(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelop-spark"));
    command.args(args).envs(emulator_env(&env.endpoint)).env("JOBS_TABLE", &env.table).env("NO_COLOR", "1").env_remove("EMR_LOG_GROUP");
    command
}

fn cli(env: &TestEnv, args: &[&str]) -> Output {
    cli_command(env, args).output().expect("run modelop-spark")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or_else(|| panic!("killed: {}", String::from_utf8_lossy(&output.stderr)))
}

/// A job row of this runtime as the functions leave it in `status` (updated now).
fn job_row(id: &str, status: &str, extra: Value) -> Value {
    let now = chrono::Utc::now();
    let at = shared::job::record::timestamp(now);
    let mut row = json!({
        "id": id, "jobType": "MODEL_BATCH_JOB", "jobStatus": status, "runtimeType": "SPARK_SERVERLESS_RUNTIME",
        "updatedAt": at, "jobWaitTime": now.timestamp_millis() - 60_000,
        "statusHistory": [{"status": "WAITING", "at": shared::job::record::timestamp(now - chrono::Duration::seconds(60))}],
        "model": {"storedModel": {"modelMetaData": {"name": "credit-risk"}}}
    });
    row.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    row
}

fn failure(class: &str) -> Value {
    json!({"class": class, "summary": format!("a {class} failure"), "evidence": {}})
}

/// A run in the emulator for job `id`, moved to `state`; its row fields.
async fn run_in(env: &TestEnv, id: &str, state: &str) -> (String, String) {
    let (app, run) = env.start_run_directly(&env.app_name, id).await;
    env.set_run_state(&app, &run, state, None);
    (app, run)
}

#[tokio::test]
async fn status_prints_one_screen_and_exits_with_the_outcome() {
    let env = TestEnv::new().await;
    let cases = [
        ("done", "COMPLETE", json!({"emrState": "SUCCESS", "outputFiles": [{"name": "scored", "fileUrl": "s3://b/o/", "exists": true}]}), 0, "✓ scored"),
        ("oom", "ERROR", json!({"emrState": "FAILED", "failure": failure("OUT_OF_MEMORY")}), 1, "failure  OUT_OF_MEMORY"),
        ("slow", "ERROR", json!({"emrState": "CANCELLED", "failure": failure("TIMEOUT")}), 4, "failure  TIMEOUT"),
        ("stopped", "CANCELLED", json!({}), 3, "CANCELLED"),
    ];
    for (id, status, extra, expected, shown) in cases {
        env.put_job(&job_row(id, status, extra)).await;
        let output = cli(&env, &["status", id]);
        assert_eq!(code(&output), expected, "{id}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout(&output).contains(shown), "{id}: {}", stdout(&output));
    }
    let json_output = cli(&env, &["status", "oom", "-o", "json"]);
    let report: Value = serde_json::from_slice(&json_output.stdout).expect("status -o json is JSON");
    assert_eq!((report["job"]["failure"]["class"].as_str(), report["final"].as_bool(), report["exitCode"].as_u64()), (Some("OUT_OF_MEMORY"), Some(true), Some(1)));

    let missing = cli(&env, &["status", "nobody"]);
    assert_eq!(code(&missing), 6);
    assert!(String::from_utf8_lossy(&missing.stderr).contains(&format!("no job \"nobody\" in table {}", env.table)));
    assert!(missing.stdout.is_empty(), "errors go to stderr");
    assert_eq!(code(&cli(&env, &["status"])), 2, "usage");
}

#[tokio::test]
async fn status_of_a_live_job_reads_its_run_from_emr() {
    let env = TestEnv::new().await;
    let (app, run) = run_in(&env, "live", "RUNNING").await;
    env.set_run_attempt(&app, &run, "RUNNING", 2);
    env.put_job(&job_row("live", "RUNNING", json!({"emrState": "SCHEDULED", "emrApplicationId": app, "sparkApplicationId": run,
        "runControls": {"executionTimeoutMinutes": 720, "maxAttempts": 3, "cancelGracePeriodSeconds": 0, "sources": {"maxAttempts": "jobParameters"}}})))
        .await;
    let output = cli(&env, &["status", "live"]);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "a live job: {text}");
    assert!(text.contains("RUNNING (EMR RUNNING)"), "GetJobRun's state, not the row's older one: {text}");
    assert!(text.contains(&format!("{run} in application {app} · attempt 2/3")), "{text}");
    assert!(text.contains("attempts 3 (jobParameters)"), "{text}");
    assert!(text.contains(&format!("console      https://{REGION}.console.aws.amazon.com/emr/home?region={REGION}#/serverless-applications/{app}\n")), "{text}");

    // Given the EMR Studio, the link is the job run's own page there.
    let studio = "https://es-5zs3voh3ex6jahzji73kwcc14.emrstudio-prod.us-east-1.amazonaws.com";
    let json_output = cli_command(&env, &["status", "live", "-o", "json"]).env("EMR_STUDIO_URL", studio).output().unwrap();
    let report: Value = serde_json::from_slice(&json_output.stdout).expect("status -o json is JSON");
    assert_eq!(report["links"]["jobRun"], format!("{studio}/#/serverless-applications/{app}/{run}"), "{report}");
}

#[tokio::test]
async fn ls_lists_by_status_from_the_index_with_filters_and_limit() {
    let env = TestEnv::new().await;
    env.put_job(&job_row("a-oom", "ERROR", json!({"failure": failure("OUT_OF_MEMORY")}))).await;
    env.put_job(&job_row("b-done", "COMPLETE", json!({"cost": {"amount": 0.25, "basis": "billed"},
        "resourceUsage": {"used": {"vCPUHour": 1.0, "memoryGBHour": 1.0, "storageGBHour": 0.0}, "final": true, "asOf": "2026-11-23T20:00:00.000Z"}}))).await;
    env.put_job(&job_row("c-test", "COMPLETE", json!({"jobType": "MODEL_BATCH_TEST_JOB"}))).await;
    env.put_job(&job_row("d-run", "RUNNING", json!({}))).await;
    // Written by ModelOp only: not in byJobStatus until this service writes updatedAt.
    env.put_job(&json!({"id": "e-new", "jobStatus": "CREATED", "runtimeType": "SPARK_SERVERLESS_RUNTIME"})).await;

    let ids = |args: &[&str]| -> Vec<String> {
        let output = cli(&env, args);
        assert_eq!(code(&output), 0, "{}", String::from_utf8_lossy(&output.stderr));
        let mut ids: Vec<String> = stdout(&output).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&["ls", "-o", "ndjson"]), ["a-oom", "b-done", "c-test", "d-run"]);
    assert_eq!(ids(&["ls", "--status", "complete,error", "-o", "ndjson"]), ["a-oom", "b-done", "c-test"]);
    assert_eq!(ids(&["ls", "--class", "out_of_memory", "-o", "ndjson"]), ["a-oom"]);
    assert_eq!(ids(&["ls", "--status", "COMPLETE", "--type", "MODEL_BATCH_TEST_JOB", "-o", "ndjson"]), ["c-test"]);
    assert_eq!(ids(&["ls", "--limit", "1", "--status", "RUNNING", "-o", "ndjson"]), ["d-run"]);
    assert_eq!(ids(&["ls", "--limit", "2", "-o", "ndjson"]).len(), 2);

    let table = stdout(&cli(&env, &["ls", "--status", "COMPLETE,ERROR"]));
    assert!(table.lines().next().unwrap().contains("STATUS / EMR"), "{table}");
    assert!(table.contains("$0.2500") && table.contains("OUT_OF_MEMORY"), "{table}");
}

#[tokio::test]
async fn cancel_writes_cancelled_with_the_grace_that_cleanup_then_sends() {
    let env = TestEnv::new().await;
    let (app, run) = run_in(&env, "to-cancel", "RUNNING").await;
    env.put_job(&job_row("to-cancel", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": run,
        "stagingUri": format!("s3://{}/modelop-spark-serverless/to-cancel/", env.bucket)})))
        .await;
    env.new_stream_records().await;

    assert_eq!(code(&cli(&env, &["cancel", "to-cancel", "--grace", "5"])), 2, "EMR's range is 0 or 15-1800");
    let output = cli(&env, &["cancel", "to-cancel", "--grace", "30"]);
    assert_eq!(code(&output), 3, "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout(&output).contains(&format!("to-cancel: CANCELLED (was RUNNING); cleanup cancels run {run} with a 30 s grace period")));
    let row = env.job("to-cancel").await.unwrap();
    assert_eq!((row["jobStatus"].as_str(), row["cancelGracePeriodSeconds"].as_u64()), (Some("CANCELLED"), Some(30)));
    assert!(row["jobMessages"][0].as_str().unwrap().contains("[info] cancelled by"), "{row}");
    assert_eq!(row["statusHistory"].as_array().unwrap().last().unwrap()["status"], "CANCELLED");

    // Cleanup, on the stream record of that write, cancels the run with the row's grace period.
    let (emr, requests) = env.logged_emr();
    let cleanup = env.cleanup_handler_with_emr(env.cleanup_config(), emr).await;
    let records: Vec<Value> = env.new_stream_records().await.into_iter().filter(|r| r["eventName"] == "MODIFY").collect();
    cleanup.handle_batch(json!({"Records": records})).await;
    let cancels: Vec<String> = requests.requests().into_iter().filter(|r| r.starts_with("DELETE")).collect();
    assert_eq!(cancels, [format!("DELETE /applications/{app}/jobruns/{run}?shutdownGracePeriodInSeconds=30")]);

    // A final job is not cancelled again: the outcome's code, and the row as it was.
    let again = cli(&env, &["cancel", "to-cancel"]);
    assert_eq!(code(&again), 3);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already CANCELLED"));
    env.put_job(&job_row("finished", "COMPLETE", json!({}))).await;
    assert_eq!(code(&cli(&env, &["cancel", "finished"])), 0);
    assert_eq!(env.job("finished").await.unwrap()["jobStatus"], "COMPLETE");
}

#[tokio::test]
async fn cancel_wait_returns_once_the_run_stopped_and_cleanup_released_the_job() {
    let env = TestEnv::new().await;
    env.put_job(&job_row("queued", "WAITING", json!({}))).await;
    // No run yet: nothing to stop; cleanup records cleanedAt (here by hand, as it would).
    let child = cli_command(&env, &["cancel", "queued", "--wait", "--timeout", "20s", "-o", "json"]).stdout(Stdio::piped()).spawn().unwrap();
    wait_for(&env, "queued", |row| row["jobStatus"] == "CANCELLED").await;
    env.update_job("queued", "SET cleanedAt = :t", json!({":t": shared::job::record::timestamp(chrono::Utc::now())})).await;
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 3);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["cancelled"].as_bool(), report["cleaned"].as_bool()), (Some(true), Some(true)), "{report}");

    env.put_job(&job_row("never-cleaned", "WAITING", json!({}))).await;
    assert_eq!(code(&cli(&env, &["cancel", "never-cleaned", "--wait", "--timeout", "1s"])), 5, "still stopping when the timeout ran out");
}

async fn wait_for(env: &TestEnv, id: &str, done: impl Fn(&Value) -> bool) {
    let started = Instant::now();
    while !env.job(id).await.as_ref().is_some_and(&done) {
        assert!(started.elapsed() < Duration::from_secs(20), "job {id} did not get there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const GROUP: &str = "/aws/emr-serverless";

#[tokio::test]
async fn logs_read_the_right_attempts_stream_and_fall_back_to_the_stored_tail() {
    let env = TestEnv::new().await;
    let (app, run) = ("app-logs".to_string(), "run-logs".to_string());
    let prefix = shared::outcome::job_run::driver_log_prefix("logged", &app, &run);
    env.put_driver_log(GROUP, &format!("{prefix}SPARK_DRIVER/stdout"), ["first attempt line".to_string()]).await;
    env.put_driver_log(GROUP, &format!("{prefix}attempts/2/SPARK_DRIVER/stdout"), ["second attempt line 1".to_string(), "second attempt line 2".to_string()]).await;
    env.put_driver_log(GROUP, &format!("{prefix}attempts/2/SPARK_DRIVER/stderr"), ["Traceback: boom".to_string()]).await;
    env.put_job(&job_row("logged", "ERROR", json!({"emrApplicationId": app, "sparkApplicationId": run,
        "attempts": [{"attempt": 1, "state": "FAILED"}, {"attempt": 2, "state": "FAILED"}]})))
        .await;

    let latest = cli(&env, &["logs", "logged"]);
    assert_eq!((code(&latest), stdout(&latest)), (0, "second attempt line 1\nsecond attempt line 2\n".to_string()), "{}", String::from_utf8_lossy(&latest.stderr));
    assert_eq!(stdout(&cli(&env, &["logs", "logged", "--attempt", "1"])), "first attempt line\n");
    assert_eq!(stdout(&cli(&env, &["logs", "logged", "--stderr"])), "Traceback: boom\n");
    let ndjson = stdout(&cli(&env, &["logs", "logged", "-o", "ndjson"]));
    let first: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    assert_eq!(first, json!({"attempt": 2, "stream": "stdout", "message": "second attempt line 1"}));

    // The streams are gone (retention): the tail monitor stored on the row.
    env.put_job(&job_row("gone", "COMPLETE", json!({"emrApplicationId": app, "sparkApplicationId": "run-gone",
        "driverLogs": {"stdout": "stored line\n", "stderr": "", "truncated": false, "logGroupName": GROUP, "logStreamNamePrefix": "gone/"}})))
        .await;
    let stored = cli(&env, &["logs", "gone"]);
    assert_eq!((code(&stored), stdout(&stored)), (0, "stored line\n".to_string()));
    assert!(String::from_utf8_lossy(&stored.stderr).contains("the stdout tail stored on the row"));
    env.put_job(&job_row("nothing", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": "run-nothing"}))).await;
    assert_eq!(code(&cli(&env, &["logs", "nothing", "--attempt", "1"])), 6, "no stream and no stored tail");
}

/// Follows until the job is final, crossing from attempt 1's stream to attempt 2's when the run retries.
#[tokio::test]
async fn logs_follow_crosses_attempts_and_exits_with_the_outcome() {
    let env = TestEnv::new().await;
    let (app, run) = run_in(&env, "follow", "RUNNING").await;
    env.set_run_attempt(&app, &run, "RUNNING", 1);
    let prefix = shared::outcome::job_run::driver_log_prefix("follow", &app, &run);
    env.put_driver_log(GROUP, &format!("{prefix}SPARK_DRIVER/stdout"), ["attempt one".to_string()]).await;
    env.put_job(&job_row("follow", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": run,
        "runControls": {"executionTimeoutMinutes": 5, "maxAttempts": 2, "cancelGracePeriodSeconds": 0, "sources": {}}})))
    .await;
    let child: Child = cli_command(&env, &["logs", "follow", "-f"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    env.set_run_attempt(&app, &run, "RUNNING", 2);
    // The CLI moves to attempt 2 before its stream exists (EMR writes it later): it must wait for
    // that stream, not read attempt 1's again (the plain path, which `open` also tries).
    tokio::time::sleep(Duration::from_secs(7)).await;
    env.put_driver_log(GROUP, &format!("{prefix}attempts/2/SPARK_DRIVER/stdout"), ["attempt two".to_string()]).await;
    env.update_job("follow", "SET jobStatus = :s, failure = :f", json!({":s": "ERROR", ":f": failure("TIMEOUT")})).await;

    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 4, "EMR's timeout verdict: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout(&output), "attempt one\nattempt two\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("── attempt 2 of 2 (the run was retried) ──"), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn watch_prints_transitions_and_exits_with_the_outcome_or_5_on_timeout() {
    let env = TestEnv::new().await;
    env.put_job(&job_row("watched", "WAITING", json!({}))).await;
    assert_eq!(code(&cli(&env, &["watch", "watched", "--timeout", "1s"])), 5, "still going when --timeout ran out");
    assert_eq!(env.job("watched").await.unwrap()["jobStatus"], "WAITING", "a timeout never cancels");

    let child = cli_command(&env, &["watch", "watched", "-o", "ndjson"]).stdout(Stdio::piped()).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at = shared::job::record::timestamp(chrono::Utc::now());
    env.update_job(
        "watched",
        "SET jobStatus = :s, statusHistory = list_append(statusHistory, :h)",
        json!({":s": "COMPLETE", ":h": [{"status": "RUNNING", "emrState": "RUNNING", "at": at}, {"status": "COMPLETE", "emrState": "SUCCESS", "at": at}]}),
    )
    .await;
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 0);
    let events: Vec<Value> = stdout(&output).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<(&str, &str)> = events.iter().map(|e| (e["event"].as_str().unwrap(), e["status"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("transition", "WAITING"), ("transition", "RUNNING"), ("transition", "COMPLETE"), ("end", "COMPLETE")]);
    assert_eq!(events[3]["exitCode"], 0);

    env.put_job(&job_row("broke", "ERROR", json!({"failure": failure("MODEL_ERROR")}))).await;
    let text = cli(&env, &["watch", "broke"]);
    assert_eq!(code(&text), 1);
    assert!(stdout(&text).contains("broke ended ERROR (MODEL_ERROR); exit 1"), "{}", stdout(&text));
}

#[tokio::test]
async fn submit_dry_run_plans_offline_and_submit_writes_a_created_row() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("cli-submit-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("job.json");
    let mut job = created_job("planned", "MODEL_BATCH_JOB");
    job["jobParameters"] = json!({"--conf modelop.serverless.job.max.attempts": "2"});
    std::fs::write(&file, job.to_string()).unwrap();
    let file = file.to_str().unwrap();

    // No AWS: an unreachable endpoint changes nothing.
    let dry = cli_command(&env, &["submit", file, "--dry-run", "-o", "json"])
        .env("STAGING_BUCKET", &env.bucket)
        .env("EMR_RELEASE_VERSION", "emr-7.5.0")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(code(&dry), 0, "{}", String::from_utf8_lossy(&dry.stderr));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(plan["launch"]["runControls"]["maxAttempts"], 2);
    assert_eq!(plan["launch"]["stagingUri"], format!("s3://{}/modelop-spark-serverless/planned/", env.bucket));
    assert!(plan["launch"]["policySize"].as_u64().unwrap() <= 2048 && plan["launch"]["scoped"] == true, "{plan}");
    assert!(env.job("planned").await.is_none(), "a dry run writes nothing");

    job["jobParameters"] = json!({"--conf modelop.serverless.job.max.attempts": "20"});
    std::fs::write(dir.join("bad.json"), job.to_string()).unwrap();
    let bad = cli(&env, &["submit", dir.join("bad.json").to_str().unwrap(), "--dry-run"]);
    assert_eq!(code(&bad), 1);
    assert!(stdout(&bad).contains("would end in ERROR: job planned: validate job: job parameter '--conf modelop.serverless.job.max.attempts'"), "{}", stdout(&bad));

    let written = cli(&env, &["submit", file]);
    assert_eq!((code(&written), stdout(&written)), (0, "planned\n".to_string()), "{}", String::from_utf8_lossy(&written.stderr));
    assert_eq!(env.job("planned").await.unwrap()["jobStatus"], "CREATED");
    assert_eq!(code(&cli(&env, &["submit", file])), 6, "an existing job is never overwritten");
}

/// `submit --follow`: the row is written, then its driver log is followed as `logs -f` does, from
/// before submit launched the run to the job's end, and the exit code is the outcome's.
#[tokio::test]
async fn submit_follow_writes_the_row_then_follows_its_driver_log_to_the_outcome() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("cli-submit-follow-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let id = format!("followed-{}", unique_suffix());
    std::fs::write(dir.join("job.json"), created_job(&id, "MODEL_BATCH_JOB").to_string()).unwrap();
    let child = cli_command(&env, &["submit", dir.join("job.json").to_str().unwrap(), "--follow"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();

    // What submit and the run then do: the row gets its run, the driver writes its log, the job ends.
    wait_for(&env, &id, |row| row["jobStatus"] == "CREATED").await;
    let (app, run) = run_in(&env, &id, "RUNNING").await;
    let prefix = shared::outcome::job_run::driver_log_prefix(&id, &app, &run);
    env.put_driver_log(GROUP, &format!("{prefix}SPARK_DRIVER/stdout"), ["scored 20 rows".to_string()]).await;
    env.update_job(&id, "SET jobStatus = :s, emrApplicationId = :a, sparkApplicationId = :r", json!({":s": "RUNNING", ":a": app, ":r": run})).await;
    wait_for(&env, &id, |row| row["jobStatus"] == "RUNNING").await;
    env.update_job(&id, "SET jobStatus = :s, failure = :f", json!({":s": "ERROR", ":f": failure("OUT_OF_MEMORY")})).await;

    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(code(&output), 1, "the outcome's code: {stderr}");
    assert_eq!(stdout(&output), "scored 20 rows\n", "stdout is the driver's log: {stderr}");
    assert!(stderr.contains(&format!("wrote job {id} as CREATED")), "{stderr}");

    // A job that ends before it has a run (submit refused it): why, and the outcome's code.
    let refused = format!("refused-{}", unique_suffix());
    std::fs::write(dir.join("refused.json"), created_job(&refused, "MODEL_BATCH_JOB").to_string()).unwrap();
    let child = cli_command(&env, &["submit", dir.join("refused.json").to_str().unwrap(), "--follow"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(&env, &refused, |row| row["jobStatus"] == "CREATED").await;
    env.update_job(&refused, "SET jobStatus = :s, errorMessage = :m", json!({":s": "ERROR", ":m": "job refused: validate job: no primary source"})).await;
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!((code(&output), stdout(&output)), (1, String::new()), "{stderr}");
    assert!(stderr.contains("ended ERROR before it had a run, so there are no driver logs: job refused: validate job: no primary source"), "{stderr}");
}

#[tokio::test]
async fn submit_local_uploads_the_local_files_and_folders_a_document_names() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("cli-submit-local-{}", unique_suffix()));
    // A trained Spark ML pipeline as Spark saves it: a folder of folders.
    std::fs::create_dir_all(dir.join("pipeline/stages/0_lr/data")).unwrap();
    std::fs::create_dir_all(dir.join("pipeline/metadata")).unwrap();
    std::fs::write(dir.join("pipeline/metadata/part-00000"), "{\"class\":\"org.apache.spark.ml.PipelineModel\"}").unwrap();
    std::fs::write(dir.join("pipeline/stages/0_lr/data/part-00000.parquet"), b"PAR1").unwrap();
    std::fs::write(dir.join("input.csv"), "id,x1,x2\n1,1.0,2.0\n").unwrap();
    std::fs::write(dir.join("model.py"), "# modelop.score\ndef score(inputs, outputs, assets):\n    return {}\n").unwrap();
    let id = format!("local-{}", unique_suffix());
    let output_bucket = format!("cli-out-{}", unique_suffix().to_lowercase());
    let job = json!({
        "id": id, "jobType": "MODEL_BATCH_JOB",
        "model": {"storedModel": {"modelAssets": [
            {"name": "model.py", "assetType": "SOURCE_CODE", "primaryModelSource": true, "fileUrl": "model.py"},
            {"name": "pipeline", "assetType": "EXTERNAL_FILE", "fileUrl": "pipeline"},
            {"name": "weights.json", "assetType": "EXTERNAL_FILE", "fileUrl": "s3://modelop-models/sample/weights.json"}
        ]}},
        "inputData": [{"name": "input.csv", "assetType": "EXTERNAL_FILE", "fileUrl": "input.csv"}],
        "outputData": [{"name": "scored", "assetType": "EXTERNAL_FILE", "fileUrl": format!("s3://{output_bucket}/scored/")}]
    });
    std::fs::write(dir.join("job.json"), job.to_string()).unwrap();
    // The local stack's ready file, as local_aws.py writes it, on the harness's emulators.
    let ready = dir.join("ready.json");
    std::fs::write(&ready, json!({"moto": env.endpoint, "emr": env.emr_endpoint, "table": env.table, "region": REGION}).to_string() + "\n").unwrap();
    let local = format!("--local={}", ready.display());
    let written = Command::new(env!("CARGO_BIN_EXE_modelop-spark")).args([local.as_str(), "submit", dir.join("job.json").to_str().unwrap()]).env("NO_COLOR", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&written.stderr).to_string();
    assert_eq!((code(&written), stdout(&written)), (0, format!("{id}\n")), "{stderr}");
    assert!(stderr.contains("(2 files) to s3://modelop-data/user/") && stderr.contains("inlined"), "{stderr}");

    let row = env.job(&id).await.expect("the row");
    let assets = &row["model"]["storedModel"]["modelAssets"];
    assert!(assets[0]["sourceCode"].as_str().unwrap().contains("def score") && assets[0].get("fileUrl").is_none(), "{row}");
    assert_eq!(assets[1]["fileUrl"], format!("s3://modelop-data/user/{id}/pipeline/"), "a folder is a prefix");
    assert_eq!(assets[2]["fileUrl"], "s3://modelop-models/sample/weights.json", "s3:// URLs are left alone");
    assert_eq!(row["inputData"][0]["fileUrl"], format!("s3://modelop-data/user/{id}/input.csv"));
    let listed = env.s3.list_objects_v2().bucket("modelop-data").prefix(format!("user/{id}/")).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [
        format!("user/{id}/input.csv"),
        format!("user/{id}/pipeline/metadata/part-00000"),
        format!("user/{id}/pipeline/stages/0_lr/data/part-00000.parquet"),
    ]);
    env.s3.head_bucket().bucket(&output_bucket).send().await.expect("the output's bucket is created");

    // A local path that is not there is a usage error, and nothing is written.
    let missing = json!({"id": format!("{id}-missing"), "jobType": "MODEL_BATCH_JOB", "inputData": [{"fileUrl": "absent.csv"}]});
    std::fs::write(dir.join("missing.json"), missing.to_string()).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_modelop-spark")).args([local.as_str(), "submit", dir.join("missing.json").to_str().unwrap()]).output().unwrap();
    assert_eq!(code(&refused), 2, "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("\"absent.csv\" is neither an s3:// URL nor a local file or folder"));
    assert!(env.job(&format!("{id}-missing")).await.is_none());
}

#[tokio::test]
async fn doctor_ui_and_completion() {
    let env = TestEnv::new().await;
    let doctor = cli(&env, &["doctor", "-o", "ndjson"]);
    let checks: Vec<Value> = stdout(&doctor).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let verdict = |name: &str| checks.iter().find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(name))).map(|c| c["verdict"].as_str().unwrap().to_string());
    assert_eq!(verdict("table").as_deref(), Some("ok"), "{checks:?}");
    assert_eq!(verdict("cancel").as_deref(), Some("ok"), "{checks:?}");
    assert_eq!(code(&doctor), 0, "{checks:?}");
    assert!(env.job("modelop-spark-doctor-probe").await.is_none(), "the probes write nothing");

    let (app, run) = run_in(&env, "early", "SCHEDULED").await;
    env.put_job(&job_row("early", "WAITING", json!({"emrApplicationId": app, "sparkApplicationId": run}))).await;
    let ui = cli(&env, &["ui", "early"]);
    assert_eq!(code(&ui), 6);
    assert!(String::from_utf8_lossy(&ui.stderr).contains("is SCHEDULED: its Spark UI opens once it is RUNNING"), "{}", String::from_utf8_lossy(&ui.stderr));

    let completion = cli(&env, &["completion", "bash"]);
    assert_eq!(code(&completion), 0);
    assert!(stdout(&completion).contains("modelop-spark"));
}
