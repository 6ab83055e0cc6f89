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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A row's `resourceUsage` and `cost` as monitor records them: `vcpu_hours` (and four GB-hours of
/// memory each) used, billed too when `billed`, priced at `region`'s prices; no `cost` where there
/// is no price (only us-east-1 has built-in ones).
fn usage_and_cost(vcpu_hours: f64, is_final: bool, billed: bool, region: &str) -> (Value, Option<Value>) {
    use shared::launch::run_controls::Architecture;
    use shared::outcome::cost::{job_cost, PriceTable, ResourceUsage};
    let figures = json!({"vCPUHour": vcpu_hours, "memoryGBHour": vcpu_hours * 4.0, "storageGBHour": 0.0});
    let mut usage = json!({"used": figures, "final": is_final, "asOf": shared::job::record::timestamp(chrono::Utc::now())});
    if billed {
        usage["billed"] = figures;
    }
    let parsed: ResourceUsage = serde_json::from_value(usage.clone()).expect("a resourceUsage");
    let cost = PriceTable::default().quote(region, Architecture::X86_64).map(|quote| serde_json::to_value(job_cost(&parsed, &quote, region, Architecture::X86_64)).unwrap());
    (usage, cost)
}

/// `cost` over the index: final and provisional totals kept apart, the basis counted, a job with
/// usage but no price counted and never priced, a job without usage counted, and `--since` the window.
#[tokio::test]
async fn cost_totals_keep_final_and_provisional_apart_and_count_what_has_no_price() {
    let env = TestEnv::new().await;
    let (final_usage, final_cost) = usage_and_cost(2.0, true, true, "us-east-1");
    let (provisional_usage, provisional_cost) = usage_and_cost(1.0, false, false, "us-east-1");
    // Far more usage than the others, in a region without a price: it must add nothing to any amount.
    let (unpriced_usage, no_cost) = usage_and_cost(100.0, true, true, "eu-west-3");
    assert!(no_cost.is_none(), "eu-west-3 has no built-in price");
    let (old_usage, old_cost) = usage_and_cost(3.0, true, true, "us-east-1");
    let amount = |cost: &Option<Value>| cost.as_ref().unwrap()["amount"].as_f64().unwrap();
    let (final_amount, provisional_amount, old_amount) = (amount(&final_cost), amount(&provisional_cost), amount(&old_cost));
    assert!(final_amount > 0.0 && provisional_amount > 0.0 && final_amount != provisional_amount);

    env.put_job(&job_row("priced-final", "COMPLETE", json!({"resourceUsage": final_usage, "cost": final_cost}))).await;
    env.put_job(&job_row("priced-provisional", "RUNNING", json!({"resourceUsage": provisional_usage, "cost": provisional_cost}))).await;
    env.put_job(&job_row("unpriced", "ERROR", json!({"resourceUsage": unpriced_usage, "failure": failure("OUT_OF_MEMORY")}))).await;
    env.put_job(&job_row("no-usage", "CANCELLED", json!({}))).await;
    let forty_days_ago = shared::job::record::timestamp(chrono::Utc::now() - chrono::Duration::days(40));
    env.put_job(&job_row("long-ago", "COMPLETE", json!({"resourceUsage": old_usage, "cost": old_cost, "updatedAt": forty_days_ago}))).await;

    let totals = |args: &[&str]| -> Vec<Value> {
        let output = cli(&env, args);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        serde_json::from_slice::<Value>(&output.stdout).expect("cost -o json is one JSON array").as_array().unwrap().clone()
    };
    let close = |value: &Value, expected: f64| (value.as_f64().unwrap() - expected).abs() < 1e-9;
    let counts = |t: &Value| -> Vec<u64> {
        ["jobs", "finalJobs", "provisionalJobs", "billedJobs", "usedJobs", "unpricedJobs", "withoutUsage"].iter().map(|k| t[*k].as_u64().unwrap()).collect()
    };

    let by_status = totals(&["cost", "--by", "status", "-o", "json"]);
    let groups: Vec<&str> = by_status.iter().map(|t| t["group"].as_str().unwrap()).collect();
    assert_eq!(groups, ["CANCELLED", "COMPLETE", "ERROR", "RUNNING", "total"], "the 30 days' groups, then the total: {by_status:?}");
    let group = |name: &str| by_status.iter().find(|t| t["group"] == name).unwrap();
    let total = group("total");
    assert_eq!(counts(total), [4, 1, 1, 1, 1, 1, 1], "{total}");
    assert!(close(&total["finalAmount"], final_amount) && close(&total["provisionalAmount"], provisional_amount), "kept apart: {total}");
    assert_eq!(counts(group("COMPLETE")), [1, 1, 0, 1, 0, 0, 0]);
    assert_eq!(counts(group("RUNNING")), [1, 0, 1, 0, 1, 0, 0], "priced on used figures until billed");
    let unpriced = group("ERROR");
    assert_eq!(counts(unpriced), [1, 0, 0, 0, 0, 1, 0]);
    assert!(close(&unpriced["finalAmount"], 0.0) && close(&unpriced["provisionalAmount"], 0.0), "counted, never priced: {unpriced}");
    assert_eq!(counts(group("CANCELLED")), [1, 0, 0, 0, 0, 0, 1]);

    let wider = totals(&["cost", "--by", "status", "--since", "60d", "-o", "json"]);
    let total = wider.last().unwrap();
    assert_eq!((total["jobs"].as_u64(), total["finalJobs"].as_u64()), (Some(5), Some(2)), "{total}");
    assert!(close(&total["finalAmount"], final_amount + old_amount), "{total}");

    let text = cli(&env, &["cost", "--by", "status"]);
    assert_eq!(code(&text), 0);
    let text = stdout(&text);
    assert!(text.lines().next().unwrap().contains("FINAL (USD)") && text.contains("PROVISIONAL (USD)") && text.contains("NO PRICE"), "{text}");
    let total_line: Vec<&str> = text.lines().find(|l| l.split_whitespace().next() == Some("total")).expect("a total line").split_whitespace().collect();
    let (final_text, provisional_text) = (format!("{final_amount:.6}"), format!("{provisional_amount:.6}"));
    assert_eq!(total_line, ["total", "4", final_text.as_str(), "(1)", provisional_text.as_str(), "(1)", "1/1", "1", "1"], "{text}");
    assert!(text.contains("are not priced here"), "{text}");
}


/// Ctrl-C stops the CLI, never the job: `watch`, `logs -f` and `submit --wait`, interrupted while
/// they follow a job, end by the signal (a shell shows 130), the rows stay as they were, and no
/// CancelJobRun reaches EMR Serverless (the calls pass through request logs). The CLI is started
/// as an interactive shell starts a command, with SIGINT's default action: a test run started in
/// the background of a shell without job control (`./tests/run.sh &` in a script) inherits SIGINT
/// ignored, as POSIX has it, and so would every CLI it starts.
#[tokio::test]
async fn ctrl_c_stops_the_cli_and_never_the_job() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let env = TestEnv::new().await;
    let (app, run) = run_in(&env, "interrupted", "RUNNING").await;
    env.put_job(&job_row("interrupted", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": run}))).await;
    let prefix = shared::outcome::job_run::driver_log_prefix("interrupted", &app, &run);
    env.put_driver_log(GROUP, &format!("{prefix}SPARK_DRIVER/stdout"), ["working".to_string()]).await;
    let before = env.job("interrupted").await.unwrap();
    let dir = std::env::temp_dir().join(format!("cli-interrupt-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let submitted = format!("submitted-{}", unique_suffix());
    std::fs::write(dir.join("job.json"), created_job(&submitted, "MODEL_BATCH_JOB").to_string()).unwrap();
    let file = dir.join("job.json");
    let (table_log, emr_log) = (request_log_front(&env.endpoint), request_log_front(&env.emr_endpoint));

    for args in [vec!["watch", "interrupted"], vec!["logs", "interrupted", "-f"], vec!["submit", file.to_str().unwrap(), "--wait"]] {
        let seen = logged_requests(&table_log).len();
        let mut command = cli_command(&env, &args);
        command
            .env("AWS_ENDPOINT_URL", &table_log)
            .env("AWS_ENDPOINT_URL_EMR_SERVERLESS", &emr_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: signal(2) is async-signal-safe, as pre_exec requires; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| match libc::signal(libc::SIGINT, libc::SIG_DFL) {
                libc::SIG_ERR => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            });
        }
        let mut child = command.spawn().unwrap();
        // Interrupted once it follows: it has read the job a second time.
        let started = Instant::now();
        while logged_requests(&table_log)[seen..].iter().filter(|c| *c == "GetItem").count() < 2 {
            assert!(started.elapsed() < Duration::from_secs(30) && child.try_wait().unwrap().is_none(), "{args:?} did not follow the job");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let sent = Command::new("kill").args(["-s", "INT", &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{args:?} went on after Ctrl-C");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((status.code(), status.signal()), (None, Some(libc::SIGINT)), "{args:?} ends by the signal");
    }

    assert_eq!(env.job("interrupted").await.unwrap(), before, "the row is as it was: no cancel, no message");
    assert_eq!(env.job(&submitted).await.unwrap()["jobStatus"], "CREATED");
    let table_calls = logged_requests(&table_log);
    let writes: Vec<&String> = table_calls.iter().filter(|c| matches!(c.as_str(), "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems")).collect();
    assert_eq!(writes, ["PutItem"], "the one write is submit's new row: {table_calls:?}");
    let emr_calls = logged_requests(&emr_log);
    assert!(emr_calls.contains(&format!("GET /applications/{app}/jobruns/{run}")), "the CLI read the run through the log: {emr_calls:?}");
    assert!(emr_calls.iter().all(|c| c.starts_with("GET ")), "no CancelJobRun (DELETE), nothing but reads: {emr_calls:?}");
    let live = env.emr.get_job_run().application_id(&app).job_run_id(&run).send().await.unwrap();
    assert_eq!(live.job_run().unwrap().state().as_str(), "RUNNING");
}

/// The CLI with none of the test's environment: only `vars` (and no instance metadata).
fn bare_cli(vars: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelop-spark"))
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .expect("run modelop-spark")
}

/// `--endpoint-url`, `--region` and `--table` as flags, over the environment's values;
/// `AWS_ENDPOINT_URL_<SERVICE>` still wins per service.
#[tokio::test]
async fn global_flags_point_the_cli_instead_of_the_environment() {
    let env = TestEnv::new().await;
    env.put_job(&job_row("done", "COMPLETE", json!({"emrState": "SUCCESS"}))).await;
    let (app, run) = run_in(&env, "live", "RUNNING").await;
    env.put_job(&job_row("live", "RUNNING", json!({"emrState": "SCHEDULED", "emrApplicationId": app, "sparkApplicationId": run}))).await;
    // The environment names another table and region; the flags must win over both.
    let vars = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "eu-west-1"), ("JOBS_TABLE", "jobs-not-this-one")];
    let flags = [("--endpoint-url", env.endpoint.as_str()), ("--region", REGION), ("--table", env.table.as_str())];
    // The flags but `skip`, then `command`.
    let args = |skip: Option<&str>, command: &[&'static str]| -> Vec<String> {
        let given = flags.iter().filter(|(flag, _)| Some(*flag) != skip).flat_map(|(flag, value)| [flag.to_string(), value.to_string()]);
        given.chain(command.iter().map(|a| a.to_string())).collect()
    };
    let call = |vars: &[(&str, &str)], args: Vec<String>| bare_cli(vars, &args.iter().map(String::as_str).collect::<Vec<_>>());

    let output = call(&vars, args(None, &["status", "done"]));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("COMPLETE"), "{}", stdout(&output));
    // Each flag matters: without it, the environment's value is used, and the job is not found there.
    assert_eq!(code(&call(&vars, args(Some("--region"), &["status", "done"]))), 6, "eu-west-1 has no such table");
    assert_eq!(code(&call(&vars, args(Some("--table"), &["status", "done"]))), 6, "JOBS_TABLE's table does not exist");
    let no_table = call(&vars[..3], args(Some("--table"), &["status", "done"])); // JOBS_TABLE unset too
    assert_eq!(code(&no_table), 2);
    assert!(stderr(&no_table).contains("no jobs table: pass --table or set JOBS_TABLE"), "{}", stderr(&no_table));
    let unreachable = bare_cli(&vars, &["--endpoint-url", "http://127.0.0.1:9", "--region", REGION, "--table", &env.table, "status", "done"]);
    assert_eq!(code(&unreachable), 6);

    // GetJobRun goes to EMR's own endpoint variable, the rest to --endpoint-url.
    let mut emr = vars.to_vec();
    emr.push(("AWS_ENDPOINT_URL_EMR_SERVERLESS", env.emr_endpoint.as_str()));
    let live = call(&emr, args(None, &["status", "live"]));
    assert_eq!(code(&live), 0, "{}", stderr(&live));
    assert!(stdout(&live).contains("RUNNING (EMR RUNNING)"), "GetJobRun answered by the emulator: {}", stdout(&live));
}

/// `--profile`: credentials and region from a named profile of the shared config files, and
/// `--region` over the profile's.
#[tokio::test]
async fn profile_flag_reads_the_named_profile() {
    let env = TestEnv::new().await;
    env.put_job(&job_row("done", "COMPLETE", json!({}))).await;
    let dir = std::env::temp_dir().join(format!("cli-profile-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), format!("[profile ops]\nregion = {REGION}\n\n[profile elsewhere]\nregion = eu-west-1\n")).unwrap();
    std::fs::write(dir.join("credentials"), "[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n[elsewhere]\naws_access_key_id = testing\naws_secret_access_key = testing\n").unwrap();
    let (config, credentials) = (dir.join("config"), dir.join("credentials"));
    let vars = [("AWS_CONFIG_FILE", config.to_str().unwrap()), ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap())];
    let status = |more: &[&str]| -> Output {
        let args: Vec<&str> = ["--endpoint-url", env.endpoint.as_str(), "--table", env.table.as_str()].into_iter().chain(more.iter().copied()).chain(["status", "done"]).collect();
        bare_cli(&vars, &args)
    };
    let ops = status(&["--profile", "ops"]);
    assert_eq!(code(&ops), 0, "{}", stderr(&ops));
    assert!(stdout(&ops).contains("COMPLETE"));
    assert_eq!(code(&status(&["--profile", "elsewhere"])), 6, "that profile's region has no such table");
    assert_eq!(code(&status(&["--profile", "elsewhere", "--region", REGION])), 0, "--region wins over the profile's");
    assert_eq!(code(&status(&[])), 6, "no credentials without a profile");
}

/// `--no-color` turns colour off even where it is forced on (CLICOLOR_FORCE, which anstream honours
/// on a pipe), on stdout and stderr.
#[tokio::test]
async fn no_color_wins_over_forced_colour() {
    const ESC: char = '\u{1b}';
    let env = TestEnv::new().await;
    env.put_job(&job_row("done", "COMPLETE", json!({}))).await;
    let run = |args: &[&str]| cli_command(&env, args).env_remove("NO_COLOR").env("CLICOLOR_FORCE", "1").output().unwrap();
    let (forced, forced_error) = (run(&["status", "done"]), run(&["status", "nobody"]));
    assert!(stdout(&forced).contains(ESC) && stderr(&forced_error).contains(ESC), "colour is forced on a pipe: {:?}", stdout(&forced));
    let (plain, plain_error) = (run(&["status", "done", "--no-color"]), run(&["--no-color", "status", "nobody"]));
    assert_eq!((code(&plain), code(&plain_error)), (0, 6));
    assert!(stdout(&plain).contains("COMPLETE") && !stdout(&plain).contains(ESC), "{:?}", stdout(&plain));
    assert!(stderr(&plain_error).contains("no job \"nobody\"") && !stderr(&plain_error).contains(ESC), "{:?}", stderr(&plain_error));
}

/// `status` takes at most two AWS round trips (GetItem; GetJobRun only while the run goes), and
/// `ls` one Query per status asked, never a Scan: every call the binary makes is counted by a
/// request log in front of moto and one in front of the EMR Serverless emulator.
#[tokio::test]
async fn status_makes_at_most_two_calls_and_ls_one_query_per_status() {
    let env = TestEnv::new().await;
    let (app, run) = run_in(&env, "going", "RUNNING").await;
    env.put_job(&job_row("going", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": run}))).await;
    let (ended_app, ended_run) = run_in(&env, "ended", "SUCCESS").await;
    env.put_job(&job_row("ended", "COMPLETE", json!({"emrState": "SUCCESS", "emrApplicationId": ended_app, "sparkApplicationId": ended_run}))).await;
    let (table_log, emr_log) = (request_log_front(&env.endpoint), request_log_front(&env.emr_endpoint));
    let calls = |args: &[&str]| -> Vec<String> {
        let seen = (logged_requests(&table_log).len(), logged_requests(&emr_log).len());
        let output = cli_command(&env, args).env("AWS_ENDPOINT_URL", &table_log).env("AWS_ENDPOINT_URL_EMR_SERVERLESS", &emr_log).output().unwrap();
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        [&logged_requests(&table_log)[seen.0..], &logged_requests(&emr_log)[seen.1..]].concat()
    };
    assert_eq!(calls(&["status", "ended"]), ["GetItem"], "a final job: its row holds everything");
    assert_eq!(calls(&["status", "going"]), ["GetItem".to_string(), format!("GET /applications/{app}/jobruns/{run}")]);
    assert_eq!(calls(&["ls", "--status", "COMPLETE", "--status", "RUNNING"]), ["Query", "Query"]);
    assert_eq!(calls(&["ls", "--status", "ERROR"]), ["Query"]);
    assert_eq!(calls(&["ls"]), ["Query"; 6], "all six statuses");
}

/// A run started directly on application `app` (StartJobRun), its managed log storage set as
/// given (`None`: not in its configurationOverrides), moved to RUNNING.
async fn running_run_on(env: &TestEnv, app: &str, name: &str, managed_log_storage: Option<bool>) -> String {
    use aws_sdk_emrserverless::types::{ConfigurationOverrides, JobDriver, ManagedPersistenceMonitoringConfiguration, MonitoringConfiguration, SparkSubmit};
    let mut start = env
        .emr
        .start_job_run()
        .application_id(app)
        .name(name)
        .execution_role_arn(DEFAULT_ROLE)
        .job_driver(JobDriver::SparkSubmit(SparkSubmit::builder().entry_point("s3://x/driver.py").build().unwrap()));
    if let Some(enabled) = managed_log_storage {
        let storage = ManagedPersistenceMonitoringConfiguration::builder().enabled(enabled).build();
        let monitoring = MonitoringConfiguration::builder().managed_persistence_monitoring_configuration(storage).build();
        start = start.configuration_overrides(ConfigurationOverrides::builder().monitoring_configuration(monitoring).build());
    }
    let run = start.send().await.expect("start job run").job_run_id;
    env.set_run_state(app, &run, "RUNNING", None);
    run
}

/// An application named `name` on `release`, its managed log storage set as given (`None`: not set).
async fn application(env: &TestEnv, name: &str, release: &str, managed_log_storage: Option<bool>) -> String {
    use aws_sdk_emrserverless::types::{ManagedPersistenceMonitoringConfiguration, MonitoringConfiguration};
    let mut create = env.emr.create_application().name(name).release_label(release).r#type("SPARK");
    if let Some(enabled) = managed_log_storage {
        let storage = ManagedPersistenceMonitoringConfiguration::builder().enabled(enabled).build();
        create = create.monitoring_configuration(MonitoringConfiguration::builder().managed_persistence_monitoring_configuration(storage).build());
    }
    create.send().await.expect("create application").application_id
}

/// `ui` mints the link of the attempt asked (GetDashboardForJobRun with `attempt`), the latest by
/// default, and stores it nowhere; where managed log storage is off (the run's own setting, else its
/// application's) it says the UI is unavailable and why, even though EMR would give a link.
#[tokio::test]
async fn ui_mints_the_attempts_link_or_says_why_there_is_no_ui() {
    let env = TestEnv::new().await;
    let (app, run) = run_in(&env, "retried", "RUNNING").await;
    env.set_run_dashboard(&app, &run, None, "https://ui.example/retried/attempt-1");
    env.set_run_attempt(&app, &run, "RUNNING", 2);
    env.set_run_dashboard(&app, &run, Some(2), "https://ui.example/retried/attempt-2");
    env.put_job(&job_row("retried", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": run}))).await;
    let before = env.job("retried").await.unwrap();
    let latest = cli(&env, &["ui", "retried"]);
    assert_eq!((code(&latest), stdout(&latest)), (0, "https://ui.example/retried/attempt-2\n".to_string()), "{}", stderr(&latest));
    let first = cli(&env, &["ui", "retried", "--attempt", "1"]);
    assert_eq!((code(&first), stdout(&first)), (0, "https://ui.example/retried/attempt-1\n".to_string()), "{}", stderr(&first));
    assert_eq!(env.job("retried").await.unwrap(), before, "the link is never stored");

    // The run turns managed log storage off.
    let off = running_run_on(&env, &app, "run-off", Some(false)).await;
    env.set_run_dashboard(&app, &off, None, "https://ui.example/run-off");
    env.put_job(&job_row("run-off", "RUNNING", json!({"emrApplicationId": app, "sparkApplicationId": off}))).await;
    let refused = cli(&env, &["ui", "run-off"]);
    assert_eq!((code(&refused), stdout(&refused)), (6, String::new()));
    assert!(
        stderr(&refused).contains(&format!("the Spark UI is unavailable for run {off}: its managed log storage (configurationOverrides.monitoringConfiguration.managedPersistenceMonitoringConfiguration) is off")),
        "{}",
        stderr(&refused)
    );

    // Its application has it off, and the run does not say: the application's setting holds.
    let quiet_app = application(&env, &format!("{}-no-ui", env.app_name), RELEASE, Some(false)).await;
    let inherited = running_run_on(&env, &quiet_app, "app-off", None).await;
    env.set_run_dashboard(&quiet_app, &inherited, None, "https://ui.example/app-off");
    env.put_job(&job_row("app-off", "RUNNING", json!({"emrApplicationId": quiet_app, "sparkApplicationId": inherited}))).await;
    let refused = cli(&env, &["ui", "app-off"]);
    assert_eq!((code(&refused), stdout(&refused)), (6, String::new()));
    assert!(stderr(&refused).contains("its application's managed log storage (monitoringConfiguration.managedPersistenceMonitoringConfiguration) is off"), "{}", stderr(&refused));
    // A run that turns it back on has its UI.
    let own = running_run_on(&env, &quiet_app, "run-on", Some(true)).await;
    env.set_run_dashboard(&quiet_app, &own, None, "https://ui.example/run-on");
    env.put_job(&job_row("run-on", "RUNNING", json!({"emrApplicationId": quiet_app, "sparkApplicationId": own}))).await;
    let shown = cli(&env, &["ui", "run-on"]);
    assert_eq!((code(&shown), stdout(&shown)), (0, "https://ui.example/run-on\n".to_string()), "{}", stderr(&shown));
}

/// `doctor --app`: the application found by name, its release against the run controls in use
/// (grace periods from emr-7.9.0, retries from emr-7.1.0; exit 6 when one is missing), its managed
/// log storage (a warning: `ui` has no Spark UI), and the EMR permission probes.
#[tokio::test]
async fn doctor_checks_the_applications_release_and_log_storage() {
    let env = TestEnv::new().await;
    let name = |suffix: &str| format!("{}-{suffix}", env.app_name);
    application(&env, &name("old"), "emr-7.0.0", None).await;
    application(&env, &name("mid"), "emr-7.5.0", Some(false)).await;
    let new_id = application(&env, &name("new"), "emr-7.9.0", None).await;
    let doctor = |app: &str, grace: &str, attempts: &str| -> (i32, Vec<Value>) {
        let output = cli_command(&env, &["doctor", "--app", app, "-o", "ndjson"])
            .env("EMR_CANCEL_GRACE_PERIOD_SECONDS", grace)
            .env("EMR_MAX_ATTEMPTS", attempts)
            .output()
            .unwrap();
        (code(&output), stdout(&output).lines().map(|l| serde_json::from_str(l).unwrap()).collect())
    };
    let check = |checks: &[Value], name: &str| -> (String, String) {
        let found = checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {checks:?}"));
        (found["verdict"].as_str().unwrap().to_string(), found["detail"].as_str().unwrap().to_string())
    };

    let (exit, checks) = doctor(&name("new"), "30", "3");
    assert_eq!(exit, 0, "{checks:?}");
    let (verdict, detail) = check(&checks, "application");
    assert!(verdict == "ok" && detail.contains(&new_id) && detail.contains("emr-7.9.0"), "{detail}");
    assert_eq!(check(&checks, "release"), ("ok".to_string(), "emr-7.9.0: retries: yes (from emr-7.1.0), cancel grace / cancel --grace: yes (from emr-7.9.0)".to_string()));
    assert_eq!(check(&checks, "spark ui").0, "ok");
    assert_eq!(check(&checks, "status, watch, logs -f: emr-serverless:GetJobRun").0, "ok");
    assert_eq!(check(&checks, "ui: emr-serverless:GetDashboardForJobRun").0, "ok");

    let (exit, checks) = doctor(&name("mid"), "30", "3");
    assert_eq!(exit, 6, "a grace period in use that the release lacks: {checks:?}");
    assert_eq!(check(&checks, "release"), ("fail".to_string(), "emr-7.5.0: cancel grace periods (EMR_CANCEL_GRACE_PERIOD_SECONDS) need emr-7.9.0".to_string()));
    let (verdict, detail) = check(&checks, "spark ui");
    assert!(verdict == "warn" && detail.contains("managed log storage is off"), "{detail}");
    let (exit, checks) = doctor(&name("mid"), "0", "3");
    assert_eq!((exit, check(&checks, "release").0.as_str()), (0, "ok"), "retries are in emr-7.5.0, and a warning fails nothing: {checks:?}");

    let (exit, checks) = doctor(&name("old"), "0", "2");
    assert_eq!(exit, 6);
    assert_eq!(check(&checks, "release"), ("fail".to_string(), "emr-7.0.0: retries (EMR_MAX_ATTEMPTS) need emr-7.1.0".to_string()));

    let (exit, checks) = doctor(&name("absent"), "0", "1");
    let (verdict, detail) = check(&checks, "application");
    assert!(exit == 0 && verdict == "warn" && detail.contains("no live application named"), "{checks:?}");
}

/// `logs --since D`: only the events of the last D (GetLogEvents' startTime).
#[tokio::test]
async fn logs_since_reads_only_the_recent_events() {
    let env = TestEnv::new().await;
    let (app, run) = (format!("app-since-{}", unique_suffix()), format!("run-since-{}", unique_suffix()));
    let stream = format!("{}SPARK_DRIVER/stdout", shared::outcome::job_run::driver_log_prefix("since", &app, &run));
    let _ = env.logs.create_log_group().log_group_name(GROUP).send().await;
    env.logs.create_log_stream().log_group_name(GROUP).log_stream_name(&stream).send().await.expect("create log stream");
    let now = chrono::Utc::now();
    let events = [(180, "three hours ago"), (30, "half an hour ago"), (0, "just now")].map(|(minutes_ago, message)| {
        let at = (now - chrono::Duration::minutes(minutes_ago)).timestamp_millis();
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(at).message(message).build().unwrap()
    });
    env.logs.put_log_events().log_group_name(GROUP).log_stream_name(&stream).set_log_events(Some(events.to_vec())).send().await.expect("put log events");
    env.put_job(&job_row("since", "COMPLETE", json!({"emrApplicationId": app, "sparkApplicationId": run}))).await;

    let read = |args: &[&str]| -> String {
        let output = cli(&env, args);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    assert_eq!(read(&["logs", "since"]), "three hours ago\nhalf an hour ago\njust now\n");
    assert_eq!(read(&["logs", "since", "--since", "1h"]), "half an hour ago\njust now\n");
    assert_eq!(read(&["logs", "since", "--since", "10m"]), "just now\n");
    assert_eq!(code(&cli(&env, &["logs", "since", "--since", "soon"])), 2, "not a duration");
}

/// Events in one GetLogEvents page when the call gives no limit, as the CLI's do (CloudWatch
/// Logs' 10,000 at most; moto's page holds exactly that many).
const LOG_PAGE_EVENTS: usize = 10_000;

/// The CLI's first wait after a throttled page (`FIRST_BACKOFF` in `cli/src/log_stream.rs`, "1 s
/// up to 30 s" in the README); it doubles from there.
const CLI_FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The quota of [`logs_reads_back_off_when_throttled_and_print_every_line_once`]: GetLogEvents
/// calls a second. The front's bucket holds one second of them, so at one a second it is empty
/// after every accepted call, and a call less than a second after it is throttled.
const QUOTA_PER_SECOND: f64 = 1.0;

/// The output of `child` once it ends, read on a thread of its own (a pipe holds 64 KiB, far less
/// than these logs: nobody reading it would hold the CLI), and when it ended after `started`.
fn output_in_background(child: Child, started: Instant) -> std::thread::JoinHandle<(Output, Duration)> {
    std::thread::spawn(move || {
        let output = child.wait_with_output().expect("wait for modelop-spark");
        (output, started.elapsed())
    })
}

/// Asserts that `printed` is `expected`, each line once and in order, naming the first line that departs.
fn assert_every_line_once_in_order(printed: &str, expected: &[String], what: &str) {
    let got: Vec<&str> = printed.lines().collect();
    if let Some(at) = (0..got.len().max(expected.len())).find(|&i| got.get(i).copied() != expected.get(i).map(String::as_str)) {
        panic!("{what}: line {at} is {:?}, expected {:?} ({} lines printed, {} written)", got.get(at), expected.get(at), got.len(), expected.len());
    }
    assert!(printed.ends_with('\n'), "{what}: the last line is whole");
}

/// Issue 25: log reads respect the CloudWatch Logs quotas. A quota front in front of moto's
/// CloudWatch Logs (`tests/emulator/logs_quota.py`, through `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`)
/// answers GetLogEvents above one call a second with `ThrottlingException`, as CloudWatch Logs
/// does. `logs ID` of a final job whose stream takes three pages, and `logs -f` of a running job
/// that writes a page and a half more and ends while it is followed, each through a front of its
/// own: each prints every line once and in order, exits with its documented code (0; the
/// outcome's, 1 for ERROR), was throttled (so the reads were tested against the quota), and made
/// no more calls than its backoff allows.
#[tokio::test]
async fn logs_reads_back_off_when_throttled_and_print_every_line_once() {
    let env = TestEnv::new().await;
    let lines = |from: usize, to: usize| -> Vec<String> { (from..to).map(|i| format!("driver line {i:05}")).collect() };
    let stream_of = |id: &str, app: &str, run: &str| format!("{}SPARK_DRIVER/stdout", shared::outcome::job_run::driver_log_prefix(id, app, run));

    // `logs ID`: a final job, its stream of two and a half pages.
    let (app, run) = (format!("app-quota-{}", unique_suffix()), format!("run-quota-{}", unique_suffix()));
    let read_lines = lines(0, 2 * LOG_PAGE_EVENTS + LOG_PAGE_EVENTS / 2);
    env.put_driver_log(GROUP, &stream_of("quota-read", &app, &run), read_lines.clone()).await;
    env.put_job(&job_row("quota-read", "COMPLETE", json!({"emrState": "SUCCESS", "emrApplicationId": app, "sparkApplicationId": run}))).await;

    // `logs -f`: a running job, half a page written so far, a page and a half more while it is followed.
    let (follow_app, follow_run) = run_in(&env, "quota-follow", "RUNNING").await;
    let follow_stream = stream_of("quota-follow", &follow_app, &follow_run);
    let follow_lines = lines(0, 2 * LOG_PAGE_EVENTS);
    let (written, later) = follow_lines.split_at(LOG_PAGE_EVENTS / 2);
    env.put_driver_log(GROUP, &follow_stream, written.to_vec()).await;
    env.put_job(&job_row("quota-follow", "RUNNING", json!({"emrApplicationId": follow_app, "sparkApplicationId": follow_run}))).await;

    // A front, so a quota, for each: each one's counts are that command's calls alone. The SDK's
    // retry settings are its defaults (the bound below counts on them).
    let (read_front, follow_front) = (logs_quota_front(QUOTA_PER_SECOND), logs_quota_front(QUOTA_PER_SECOND));
    let spawn = |args: &[&str], front: &str| -> Child {
        cli_command(&env, args)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", front)
            .env_remove("AWS_MAX_ATTEMPTS")
            .env_remove("AWS_RETRY_MODE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run modelop-spark")
    };
    let started = Instant::now();
    let follow = output_in_background(spawn(&["logs", "quota-follow", "-f"], &follow_front), started);
    let read = output_in_background(spawn(&["logs", "quota-read"], &read_front), started);

    // While it is followed, the driver writes the rest and the job ends.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.put_driver_log(GROUP, &follow_stream, later.to_vec()).await;
    env.update_job("quota-follow", "SET jobStatus = :s, failure = :f", json!({":s": "ERROR", ":f": failure("MODEL_ERROR")})).await;

    let (read_output, read_took) = read.join().expect("logs");
    let (follow_output, follow_took) = follow.join().expect("logs -f");
    assert_eq!(code(&read_output), 0, "logs: {}", stderr(&read_output));
    assert_every_line_once_in_order(&stdout(&read_output), &read_lines, "logs");
    assert_eq!(code(&follow_output), 1, "logs -f exits with the outcome's code, ERROR's: {}", stderr(&follow_output));
    assert_every_line_once_in_order(&stdout(&follow_output), &follow_lines, "logs -f");

    // The bound on the calls, from the backoff rules the reads run under. One GetLogEvents call of
    // the CLI is the SDK's standard retry mode: at most `max_attempts` requests, each retry after a
    // jittered exponential backoff (which may be short: the jitter is full). When all of them are
    // throttled, the CLI waits CLI_FIRST_BACKOFF or more before it asks again, and in that wait the
    // front's bucket (the only caller of a front is its one CLI, whose reads are sequential) gains
    // QUOTA_PER_SECOND × CLI_FIRST_BACKOFF ≥ 1 token: the next request passes. So throttled
    // requests come in runs of at most `max_attempts`, each run ends in an accepted one, and
    // throttled ≤ max_attempts × accepted. A retry without a wait would ask hundreds of times while
    // the next token is up to a second away.
    let max_attempts = aws_config::retry::RetryConfig::standard().max_attempts();
    assert!(QUOTA_PER_SECOND * CLI_FIRST_BACKOFF.as_secs_f64() >= 1.0, "the bound needs a token back after the CLI's first wait");
    let seen = [
        ("logs", logs_quota_counts(&read_front), read_lines.len(), read_took),
        ("logs -f", logs_quota_counts(&follow_front), follow_lines.len(), follow_took),
    ];
    for (what, (accepted, throttled), events, took) in seen {
        eprintln!("{what}: {events} lines in {took:.1?}; GetLogEvents through the front: {accepted} accepted, {throttled} throttled (at most {max_attempts} × accepted)");
        // The stream takes these pages, and a read goes on until its token comes back unchanged.
        let pages = events.div_ceil(LOG_PAGE_EVENTS) as u64 + 1;
        assert!(accepted >= pages, "{what}: {accepted} accepted calls read the {pages} pages");
        assert!(throttled > 0, "{what}: no call was throttled, so the quota was never met ({accepted} accepted)");
        assert!(throttled <= u64::from(max_attempts) * accepted, "{what}: {throttled} throttled calls for {accepted} accepted: a retry loop");
    }
}
