//! The cleanup handler's decisions against in-memory ports (`shared::fakes`), fed the
//! `events/cleanup` samples: the objects left in the bucket, the row, the calls EMR got.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use shared::fakes::object_store::FakeObjectStore;
use shared::fakes::recorder::transient;
use shared::fakes::{row_from_image, settings, FakeAws};
use shared::outcome::job_run::JobRunInfo;

use super::*;

const BUCKET: &str = "modelop-staging";
const PREFIX: &str = "modelop-spark-serverless/";
const APP: &str = "00fabcdef0123456";
/// A job whose folder no sample touches.
const NEIGHBOUR: &str = "9f9f9f9f-0000-4000-8000-000000000099";

const RUNNING_TO_COMPLETE: &str = include_str!("../../../../events/cleanup/modify-running-to-complete.json");
const WAITING_TO_ERROR: &str = include_str!("../../../../events/cleanup/modify-waiting-to-error.json");
const CANCELLED_BY_USER: &str = include_str!("../../../../events/cleanup/modify-cancelled-by-user.json");
const NOT_TERMINAL: &str = include_str!("../../../../events/cleanup/modify-not-terminal.json");
const ALREADY_FINAL: &str = include_str!("../../../../events/cleanup/modify-already-final.json");
const HOSTILE_STAGING_URI: &str = include_str!("../../../../events/cleanup/modify-hostile-staging-uri.json");
const SCHEDULED_SWEEP: &str = include_str!("../../../../events/cleanup/scheduled-sweep.json");

struct World {
    aws: FakeAws,
    handler: CleanupHandler,
}

fn world() -> World {
    world_with(&[])
}

/// The same with settings of the test's own (the cancel grace period).
fn world_with(overrides: &[(&str, &str)]) -> World {
    let (settings, aws) = (settings(overrides), FakeAws::default());
    aws.emr.add_application(APP, "modelop-default", "STARTED");
    let handler = CleanupHandler::new(settings.service().unwrap(), settings.cleanup().unwrap(), aws.jobs.clone(), aws.objects.clone(), aws.emr.clone());
    stage(&aws.objects, NEIGHBOUR, Utc::now());
    World { aws, handler }
}

/// Three staged files of `job`, written `at`.
fn stage(objects: &FakeObjectStore, job: &str, at: DateTime<Utc>) {
    for name in ["job-metadata.json", "model.py", "results/result.json"] {
        objects.put_at(BUCKET, &format!("{PREFIX}{job}/{name}"), "x", at);
    }
}

/// The event, the job id of its first record, and its row (the new image) put in the table with
/// the job's files staged.
fn delivered(world: &World, sample: &str) -> (Value, String) {
    let event: Value = serde_json::from_str(sample).unwrap();
    let image = &event["Records"][0]["dynamodb"]["NewImage"];
    let id = image["id"]["S"].as_str().unwrap().to_string();
    world.aws.jobs.put(row_from_image(image));
    stage(&world.aws.objects, &id, Utc::now());
    (event, id)
}

impl World {
    async fn deliver(&self, event: &Value) -> Vec<String> {
        match self.handler.handle_event(event.clone()).await.unwrap() {
            CleanupResponse::Stream(response) => response.batch_item_failures.into_iter().filter_map(|f| f.item_identifier).collect(),
            other => panic!("a stream batch answers with batch item failures: {other:?}"),
        }
    }

    fn folder(&self, id: &str) -> Vec<String> {
        self.aws.objects.keys(BUCKET, &format!("{PREFIX}{id}/"))
    }
}

#[tokio::test]
async fn a_job_entering_a_final_state_has_its_folder_emptied_and_cleaned_at_recorded() {
    for sample in [RUNNING_TO_COMPLETE, WAITING_TO_ERROR] {
        let world = world();
        let (event, id) = delivered(&world, sample);
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{id}");
        assert!(world.folder(&id).is_empty(), "{id}: {:?}", world.folder(&id));
        assert_eq!(world.folder(NEIGHBOUR).len(), 3, "{id}: another job's folder is untouched");
        assert!(world.aws.jobs.row(&id).unwrap()["cleanedAt"].is_string(), "{id}");
        assert!(world.aws.emr.recorder.calls().is_empty(), "{id}: a run that ended is not cancelled");
    }
}

#[tokio::test]
async fn records_that_are_not_an_entry_into_a_final_state_are_skipped() {
    for sample in [NOT_TERMINAL, ALREADY_FINAL] {
        let world = world();
        let (event, id) = delivered(&world, sample);
        let row = world.aws.jobs.row(&id);
        assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "{id}");
        assert_eq!(world.folder(&id).len(), 3, "{id}: the folder is kept");
        assert_eq!(world.aws.jobs.row(&id), row, "{id}");
        assert!(world.aws.objects.writes().is_empty() && world.aws.jobs.recorder.calls().is_empty() && world.aws.emr.recorder.calls().is_empty(), "{id}");
    }
}

#[tokio::test]
async fn a_hostile_staging_uri_is_refused_without_deleting_anything_or_retrying() {
    let world = world();
    let (event, id) = delivered(&world, HOSTILE_STAGING_URI);
    assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "refused for good: not retried");
    assert!(world.aws.objects.writes().is_empty(), "nothing deleted: {:?}", world.aws.objects.writes());
    assert_eq!((world.folder(&id).len(), world.folder(NEIGHBOUR).len()), (3, 3));
    assert!(world.aws.jobs.row(&id).unwrap().get("cleanedAt").is_none());

    let record = event["Records"][0].clone();
    let Ok(RecordResult::Failed(err)) = world.handler.handle_record(record).await else { panic!("a refused folder is a failed record") };
    assert_eq!(err.step, Step::CheckTarget);
    assert!(err.to_string().contains("\"s3://modelop-staging/modelop-spark-serverless/\""), "names the URI: {err}");
}

#[tokio::test]
async fn a_job_cancelled_by_the_user_has_its_run_cancelled_with_the_grace_period_then_its_folder_emptied() {
    // (settings, the grace period CancelJobRun gets)
    let cases: [(&[(&str, &str)], &str); 2] =
        [(&[], "0"), (&[("EMR_RELEASE_VERSION", "emr-7.9.0"), ("EMR_CANCEL_GRACE_PERIOD_SECONDS", "120")], "120")];
    for (overrides, grace) in cases {
        let world = world_with(overrides);
        world.aws.emr.add_run(APP, "00fabc0000000012", JobRunInfo { state: "RUNNING".into(), ..JobRunInfo::default() });
        let (event, id) = delivered(&world, CANCELLED_BY_USER);
        let objects = world.aws.objects.clone();
        let folder = format!("{PREFIX}{id}/");
        let files_at_cancel = Arc::new(std::sync::Mutex::new(None));
        let seen = files_at_cancel.clone();
        world.aws.emr.recorder.on_next("cancel_job_run", move || *seen.lock().unwrap() = Some(objects.keys(BUCKET, &folder).len()));

        assert_eq!(world.deliver(&event).await, Vec::<String>::new());
        assert_eq!(world.aws.emr.recorder.args_of("cancel_job_run"), [vec![APP.to_string(), "00fabc0000000012".into(), grace.into()]]);
        assert_eq!(world.aws.emr.run("00fabc0000000012").unwrap().info.state, "CANCELLING");
        assert_eq!(*files_at_cancel.lock().unwrap(), Some(3), "the run is cancelled before its files go");
        assert!(world.folder(&id).is_empty());
        assert!(world.aws.jobs.row(&id).unwrap()["cleanedAt"].is_string());
    }
}

/// A cancelled job whose run EMR no longer has (its application deleted, or the run aged out) is
/// cleaned as one whose run ended; a cancel EMR throttles keeps the files and retries the record,
/// and the retry cancels the run first.
#[tokio::test]
async fn a_run_emr_no_longer_has_is_not_cancelled_and_a_throttled_cancel_is_retried() {
    let gone = world();
    let (event, id) = delivered(&gone, CANCELLED_BY_USER);
    assert_eq!(gone.deliver(&event).await, Vec::<String>::new(), "nothing to cancel: cleaned");
    assert_eq!(gone.aws.emr.recorder.args_of("cancel_job_run").len(), 1);
    assert!(gone.folder(&id).is_empty() && gone.aws.jobs.row(&id).unwrap()["cleanedAt"].is_string());

    let world = world();
    world.aws.emr.add_run(APP, "00fabc0000000012", JobRunInfo { state: "RUNNING".into(), ..JobRunInfo::default() });
    let (event, id) = delivered(&world, CANCELLED_BY_USER);
    world.aws.emr.fail_next("cancel_job_run", transient("CancelJobRun"));
    assert_eq!(world.deliver(&event).await.len(), 1, "the record is retried");
    assert_eq!((world.folder(&id).len(), world.aws.emr.run("00fabc0000000012").unwrap().info.state.as_str()), (3, "RUNNING"));
    assert_eq!(world.deliver(&event).await, Vec::<String>::new());
    assert_eq!(world.aws.emr.run("00fabc0000000012").unwrap().info.state, "CANCELLING");
    assert!(world.folder(&id).is_empty());
}

#[tokio::test]
async fn a_transient_delete_failure_retries_the_record_and_keeps_cleaned_at_unset() {
    let world = world();
    let (event, id) = delivered(&world, RUNNING_TO_COMPLETE);
    world.aws.objects.fail_next("delete_keys", transient("DeleteObjects"));
    assert_eq!(world.deliver(&event).await, ["500000000000000600001"]);
    assert_eq!(world.folder(&id).len(), 3);
    assert!(world.aws.jobs.row(&id).unwrap().get("cleanedAt").is_none());

    assert_eq!(world.deliver(&event).await, Vec::<String>::new(), "the retry cleans");
    assert!(world.folder(&id).is_empty());
}

#[tokio::test]
async fn the_sweep_deletes_only_the_folders_of_finished_or_missing_jobs_nobody_wrote_to_lately() {
    let world = world();
    let old = Utc::now() - Duration::hours(48);
    let row = |id: &str, status: &str, runtime: &str| json!({ "id": id, "jobStatus": status, "runtimeType": runtime });
    // (job id, its row, files written at, deleted)
    let cases = [
        ("finished-old", Some(row("finished-old", "COMPLETE", "SPARK_SERVERLESS_RUNTIME")), old, true),
        ("missing-old", None, old, true),
        ("running-old", Some(row("running-old", "RUNNING", "SPARK_SERVERLESS_RUNTIME")), old, false),
        ("finished-recent", Some(row("finished-recent", "ERROR", "SPARK_SERVERLESS_RUNTIME")), Utc::now(), false),
        ("foreign-old", Some(row("foreign-old", "COMPLETE", "SPARK_RUNTIME")), old, false),
    ];
    for (id, row, at, _) in &cases {
        stage(&world.aws.objects, id, *at);
        if let Some(row) = row {
            world.aws.jobs.put(row.clone());
        }
    }
    world.aws.objects.put_at(BUCKET, &format!("{PREFIX}not a job/file"), "x", old);

    let payload: Value = serde_json::from_str(SCHEDULED_SWEEP).unwrap();
    let CleanupResponse::Sweep(report) = world.handler.handle_event(payload).await.unwrap() else { panic!("the sweep answers with its report") };
    assert_eq!(report.deleted, ["finished-old", "missing-old"]);
    assert_eq!((report.folders, report.kept), (7, 5), "the five, the neighbour's recent folder and one that is not a job's");
    for (id, _, _, deleted) in &cases {
        assert_eq!(world.folder(id).is_empty(), *deleted, "{id}");
    }
    assert_eq!(world.aws.objects.keys(BUCKET, &format!("{PREFIX}not a job/")).len(), 1);
    assert!(world.aws.jobs.row("finished-old").unwrap()["cleanedAt"].is_string());
    assert!(world.aws.jobs.row("missing-old").is_none(), "no row is made up for a missing job");
}

/// The metrics the operations dashboard graphs (`infra/`: FoldersCleaned, ObjectsDeleted,
/// CancelsSent, CleanupRefusals, OrphanFolders), as each kind of cleanup emits them.
#[tokio::test]
async fn each_cleanup_emits_the_figures_the_dashboard_graphs() {
    let emitted = shared::fakes::metrics::EmittedMetrics::capture();
    let names = ["FoldersCleaned", "ObjectsDeleted", "CancelsSent", "CleanupRefusals", "OrphanFolders"];
    let last = || {
        let entry = emitted.entries().pop().expect("an entry");
        names.map(|name| entry.metrics.get(name).map_or(0, |m| m.as_u64()))
    };

    let world = world();
    let (event, _) = delivered(&world, RUNNING_TO_COMPLETE);
    world.deliver(&event).await;
    assert_eq!(last(), [1, 3, 0, 0, 0], "a finished job's folder of three files");

    let world = self::world();
    world.aws.emr.add_run(APP, "00fabc0000000012", JobRunInfo { state: "RUNNING".into(), ..JobRunInfo::default() });
    let (event, _) = delivered(&world, CANCELLED_BY_USER);
    world.deliver(&event).await;
    assert_eq!(last(), [1, 3, 1, 0, 0], "a cancelled job's run cancelled, then its folder");

    let world = self::world();
    let (event, _) = delivered(&world, HOSTILE_STAGING_URI);
    world.deliver(&event).await;
    assert_eq!(last(), [0, 0, 0, 1, 0], "a folder outside the job's prefix refused");

    let world = self::world();
    for id in ["missing-1", "missing-2"] {
        stage(&world.aws.objects, id, Utc::now() - Duration::hours(48));
    }
    let entries = emitted.entries().len();
    world.handler.handle_event(serde_json::from_str(SCHEDULED_SWEEP).unwrap()).await.unwrap();
    assert_eq!(last(), [0, 0, 0, 0, 2], "two orphan folders swept");
    assert_eq!(emitted.entries().len(), entries + 1, "one entry per sweep");
}
