//! `submit FILE [--dry-run] [--wait|--follow]`. `--dry-run` runs the submit function's own validation and
//! planning (`shared::launch::plan::plan_job` and `manifest::build_manifest`, with the deployment's
//! configuration from the environment or `CONFIG_FILE`) and prints what would launch: the
//! application, role, run controls and their sources, the Spark conf, ignored parameters, the
//! session policy and its size, the files to stage; without touching AWS. Without it, the document
//! is written as a CREATED row (development and the local stack: in production ModelOp Center
//! creates jobs); `--wait` then follows it as `watch` does, `--follow` follows its driver log as
//! `logs -f` does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde_json::{json, Value};

use shared::aws::s3::S3ObjectStore;
use shared::config::{self, Settings};
use shared::job::annotations::parse_model_functions;
use shared::job::record::{decode_job, SPARK_SERVERLESS_RUNTIME};
use shared::launch::manifest::{build_manifest, PySparkJobManifest};
use shared::launch::plan::{plan_job, SourceLocation};
use shared::launch::run_controls::RunControls;
use shared::launch::staged_files::FileContent;

use crate::cli::SubmitArgs;
use crate::commands::logs::{self, Selection, Streams};
use crate::context::Context;
use crate::exit::{CliError, CommandResult, Exit};
use crate::output::{hint, note, paint, BOLD, DIM, WARN};

/// The settings a dry run stands in for when the environment has none: the plan needs them, their
/// values only name things.
const PLACEHOLDERS: [(&str, &str); 5] = [
    (config::JOBS_TABLE, "modelop-jobs"),
    (config::STAGING_BUCKET, "staging-bucket"),
    (config::EMR_DEFAULT_APP_NAME, "modelop-default"),
    (config::EMR_RELEASE_VERSION, "emr-7.5.0"),
    (config::EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN, "arn:aws:iam::123456789012:role/modelop-job-execution"),
];

/// What a dry run found, also its `json` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub id: String,
    pub job_type: String,
    /// `job <id>: validate job: ...` as submit would write it on the row, when the job would end in ERROR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    /// Settings the environment did not give, stood in for by placeholders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<&'static str>,
}

/// The run that would start.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Launch {
    pub application_name: String,
    pub execution_role_arn: String,
    pub staging_uri: String,
    pub entry_point: String,
    pub spark_submit_parameters: String,
    pub run_controls: RunControls,
    pub ignored_parameters: Vec<Value>,
    pub scoped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrowing_steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub files: Vec<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    /// Where the model's functions were checked: the inline source, or not before launch (an S3 source).
    pub annotations_checked: bool,
}

/// Runs `submit`.
pub async fn run(ctx: &Context, args: SubmitArgs) -> CommandResult {
    let text = std::fs::read_to_string(&args.file).map_err(|e| CliError::Client(format!("{}: {e}", args.file.display())))?;
    let mut document: Value = serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{} is not a JSON job document: {e}", args.file.display())))?;
    complete_document(&mut document)?;
    if args.dry_run {
        let dry = dry_run(&document, |name| std::env::var(name).ok());
        let exit = if dry.error.is_some() { Exit::Error } else { Exit::Ok };
        for var in &dry.placeholders {
            hint(format!("{var} is not set: a placeholder stands in (set it, or CONFIG_FILE, to plan with the deployment's configuration)"));
        }
        if ctx.printer.is_text() {
            ctx.printer.text(&render(&dry));
        } else {
            ctx.printer.json(&dry);
        }
        return Ok(exit);
    }
    let aws = ctx.aws().await?;
    let id = document["id"].as_str().unwrap_or_default().to_string();
    if aws.local {
        let base = args.file.canonicalize().ok().and_then(|f| f.parent().map(Path::to_path_buf)).unwrap_or_default();
        for uploaded in upload_local_files(&aws.objects, &mut document, &base).await? {
            note(uploaded);
        }
    }
    let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&document).map_err(|e| CliError::Usage(format!("the job document cannot be a DynamoDB item: {e}")))?;
    if !aws.store.put_new_item(item).await? {
        return Err(CliError::Client(format!("job {id:?} already exists in table {}", aws.table)));
    }
    note(format!("wrote job {id} as CREATED to {}", aws.table));
    if args.wait {
        return crate::commands::watch::follow(&ctx.printer, &aws, &id, None).await;
    }
    if args.follow {
        let (mut out, mut err) = (anstream::stdout(), anstream::stderr());
        let mut io = Streams { printer: &ctx.printer, out: &mut out, err: &mut err };
        return logs::follow(&mut io, &aws, &id, Selection::DRIVER_STDOUT).await;
    }
    ctx.printer.text(&id);
    hint(format!("follow it with `modelop-spark watch {id}` or `modelop-spark logs {id} -f`"));
    Ok(Exit::Ok)
}

/// The local stack's bucket for the files a document names by local path (`tests/emulator/local_stack.py` DATA_BUCKET).
pub const LOCAL_UPLOAD_BUCKET: &str = "modelop-data";

/// What `submit --local` does with one asset's `fileUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAsset {
    /// A model's source file: inlined as `sourceCode` (submit stages it).
    Inline(PathBuf),
    /// A file, uploaded as one object.
    File(PathBuf),
    /// A folder (a trained Spark ML pipeline, say), uploaded as a prefix: every file under it.
    Folder(PathBuf),
}

/// The local paths a document names where the service wants `s3://` URLs: the model's assets and
/// the inputs (a `fileUrl` with no scheme, relative to `base`, the document's folder), each with
/// its JSON pointer. An asset whose path is neither a file nor a folder is an error.
pub fn local_assets(document: &Value, base: &Path) -> Result<Vec<(String, LocalAsset)>, CliError> {
    let mut found = Vec::new();
    for (list, pointer) in [("/model/storedModel/modelAssets", "/model/storedModel/modelAssets"), ("/inputData", "/inputData")] {
        let Some(assets) = document.pointer(list).and_then(Value::as_array) else { continue };
        for (i, asset) in assets.iter().enumerate() {
            let Some(url) = asset.get("fileUrl").and_then(Value::as_str).filter(|u| !u.is_empty() && !u.contains("://")) else { continue };
            let path = base.join(url);
            let at = format!("{pointer}/{i}");
            let local = if path.is_dir() {
                LocalAsset::Folder(path)
            } else if path.is_file() && asset.get("assetType").and_then(Value::as_str) == Some("SOURCE_CODE") {
                LocalAsset::Inline(path)
            } else if path.is_file() {
                LocalAsset::File(path)
            } else {
                return Err(CliError::Usage(format!("{at}/fileUrl {url:?} is neither an s3:// URL nor a local file or folder (looked in {})", base.display())));
            };
            found.push((at, local));
        }
    }
    Ok(found)
}

/// `submit --local`: uploads the local files and folders the document names to the local S3
/// (`s3://modelop-data/user/<job id>/<name>`, a folder as a prefix ending in `/`) and points the
/// document at them, inlines a local model source, and creates the buckets of its `s3://` outputs,
/// as the demo does. Answers a line per upload.
async fn upload_local_files(s3: &S3ObjectStore, document: &mut Value, base: &Path) -> Result<Vec<String>, CliError> {
    let id = document["id"].as_str().unwrap_or_default().to_string();
    let assets = local_assets(document, base)?;
    let mut outputs: Vec<String> = document
        .pointer("/outputData")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("fileUrl").and_then(Value::as_str))
        .filter_map(|u| u.strip_prefix("s3://").or_else(|| u.strip_prefix("s3a://")))
        .filter_map(|u| u.split('/').next().map(str::to_string))
        .collect();
    if assets.iter().any(|(_, a)| !matches!(a, LocalAsset::Inline(_))) {
        outputs.push(LOCAL_UPLOAD_BUCKET.to_string());
    }
    outputs.sort();
    outputs.dedup();
    for bucket in outputs.iter().filter(|b| !b.is_empty()) {
        s3.ensure_bucket(bucket).await.map_err(|e| CliError::Client(format!("bucket {bucket}: {e}")))?;
    }
    let mut lines = Vec::new();
    for (at, asset) in assets {
        let slot = document.pointer_mut(&at).and_then(Value::as_object_mut).expect("the pointer local_assets found");
        let name = |path: &Path| path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "asset".into());
        match asset {
            LocalAsset::Inline(path) => {
                let code = std::fs::read_to_string(&path).map_err(|e| CliError::Client(format!("{}: {e}", path.display())))?;
                slot.remove("fileUrl");
                slot.insert("sourceCode".into(), json!(code));
                lines.push(format!("inlined {} as the model's source", path.display()));
            }
            LocalAsset::File(path) => {
                let key = format!("user/{id}/{}", name(&path));
                put_file(s3, &path, &key).await?;
                let url = format!("s3://{LOCAL_UPLOAD_BUCKET}/{key}");
                lines.push(format!("uploaded {} to {url}", path.display()));
                slot.insert("fileUrl".into(), json!(url));
            }
            LocalAsset::Folder(path) => {
                let prefix = format!("user/{id}/{}/", name(&path));
                let mut count = 0;
                for file in files_under(&path)? {
                    let rel = file.strip_prefix(&path).unwrap_or(&file).components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect::<Vec<_>>().join("/");
                    put_file(s3, &file, &format!("{prefix}{rel}")).await?;
                    count += 1;
                }
                let url = format!("s3://{LOCAL_UPLOAD_BUCKET}/{prefix}");
                lines.push(format!("uploaded {} ({count} files) to {url}", path.display()));
                slot.insert("fileUrl".into(), json!(url));
            }
        }
    }
    Ok(lines)
}

/// Every file under `dir`, in a stable order.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = std::fs::read_dir(&next).map_err(|e| CliError::Client(format!("{}: {e}", next.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| CliError::Client(format!("{}: {e}", next.display())))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

async fn put_file(s3: &S3ObjectStore, path: &Path, key: &str) -> Result<(), CliError> {
    let body = std::fs::read(path).map_err(|e| CliError::Client(format!("{}: {e}", path.display())))?;
    s3.put_object(LOCAL_UPLOAD_BUCKET, key, body).await.map_err(|e| CliError::Client(format!("s3://{LOCAL_UPLOAD_BUCKET}/{key}: {e}")))
}

/// Fills what a hand-written document leaves out, as the demo does: an `id`, `jobStatus`
/// CREATED, and `runtimeType` unless `targetEngine.engineType` names this runtime.
pub fn complete_document(document: &mut Value) -> Result<(), CliError> {
    let Value::Object(fields) = document else {
        return Err(CliError::Usage("a job document is a JSON object".into()));
    };
    if !fields.get("id").is_some_and(Value::is_string) {
        fields.insert("id".into(), json!(format!("job-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])));
    }
    fields.entry("jobStatus").or_insert(json!("CREATED"));
    let engine_is_ours = fields.get("targetEngine").and_then(|e| e.get("engineType")).and_then(Value::as_str) == Some(SPARK_SERVERLESS_RUNTIME);
    if !engine_is_ours {
        fields.entry("runtimeType").or_insert(json!(SPARK_SERVERLESS_RUNTIME));
    }
    Ok(())
}

/// Submit's decode, validation and planning of `document`, with the configuration `env` gives
/// (placeholders for the required settings it lacks).
pub fn dry_run(document: &Value, env: impl Fn(&str) -> Option<String>) -> DryRun {
    let id = document["id"].as_str().unwrap_or_default().to_string();
    let job_type = document["jobType"].as_str().unwrap_or("?").to_string();
    let placeholders: Vec<&'static str> = PLACEHOLDERS.iter().filter(|(var, _)| env(var).is_none_or(|v| v.trim().is_empty())).map(|(var, _)| *var).collect();
    let with_placeholders = |name: &str| env(name).filter(|v| !v.trim().is_empty()).or_else(|| PLACEHOLDERS.iter().find(|(var, _)| *var == name).map(|(_, v)| v.to_string()));
    let failed = |error: String| DryRun { id: id.clone(), job_type: job_type.clone(), error: Some(error), launch: None, placeholders: placeholders.clone() };
    let settings = match Settings::load(with_placeholders, |path| std::fs::read_to_string(path)) {
        Ok(settings) => settings,
        Err(e) => return failed(e.to_string()),
    };
    let (service, submit) = match (settings.service(), settings.submit()) {
        (Ok(service), Ok(submit)) => (service, submit),
        (Err(e), _) | (_, Err(e)) => return failed(e.to_string()),
    };
    let item: serde_dynamo::Item = match serde_dynamo::to_item(document) {
        Ok(item) => item,
        Err(e) => return failed(format!("job {id}: decode job: the job record is malformed: {e}")),
    };
    let job = match decode_job(item) {
        Ok(job) => job,
        Err(e) => return failed(format!("job {id}: decode job: the job record is malformed: {e}")),
    };
    let mut plan = match plan_job(&job, &service, &submit) {
        Ok(plan) => plan,
        Err(e) => return failed(format!("job {id}: validate job: {e}")),
    };
    let (functions, primary, annotations_checked) = match plan.take_primary() {
        SourceLocation::Inline(text) => (parse_model_functions(&text), FileContent::Text(text.into()), true),
        // Submit streams an S3 source at launch; offline, the function the job calls is taken as declared.
        SourceLocation::S3(uri) => {
            let name = plan.named_job_function.clone().unwrap_or_else(|| plan.job_type.model_role().as_str().to_string());
            let init = plan.named_init.as_ref().map(|n| format!("# modelop.init\ndef {n}():\n    pass\n")).unwrap_or_default();
            let stand_in = format!("{init}{}\ndef {name}(*args):\n    pass\n", plan.job_type.model_role().annotation());
            (parse_model_functions(&stand_in), FileContent::CopyFrom(uri), false)
        }
    };
    match build_manifest(&plan, &functions, primary) {
        Ok(manifest) => DryRun { id: id.clone(), job_type: job_type.clone(), error: None, launch: Some(launch_of(&manifest, annotations_checked)), placeholders },
        Err(e) => failed(format!("job {id}: validate job: {e}")),
    }
}

fn launch_of(manifest: &PySparkJobManifest, annotations_checked: bool) -> Launch {
    let permissions = &manifest.job_permissions;
    Launch {
        application_name: manifest.application_name.clone(),
        execution_role_arn: manifest.execution_role_arn.clone(),
        staging_uri: manifest.staging_uri(),
        entry_point: manifest.entry_point.clone(),
        spark_submit_parameters: manifest.spark_submit_parameters.clone(),
        run_controls: manifest.run_controls,
        ignored_parameters: manifest.ignored_parameters.iter().map(|p| json!({"parameter": p.parameter, "value": p.value, "reason": p.reason})).collect(),
        scoped: permissions.scoped,
        policy_size: permissions.policy_size,
        narrowing_steps: permissions.narrowing_steps,
        policy: permissions.policy.clone(),
        files: manifest.files.iter().map(|f| f.name.clone()).collect(),
        tags: manifest.tags.clone(),
        annotations_checked,
    }
}

/// What a dry run found, as text.
pub fn render(dry: &DryRun) -> String {
    let mut out = format!("{}  {}\n", paint(BOLD, &dry.id), dry.job_type);
    let Some(launch) = &dry.launch else {
        out.push_str(&format!("{} {}\n", paint(WARN, "would end in ERROR:"), dry.error.as_deref().unwrap_or("?")));
        return out;
    };
    let controls = serde_json::to_value(launch.run_controls).unwrap_or_default();
    let source = |name: &str| controls["sources"][name].as_str().unwrap_or("?").to_string();
    let lines = [
        format!("would launch on application {} as {}", launch.application_name, launch.execution_role_arn),
        format!("staging    {} ({})", launch.staging_uri, launch.files.join(", ")),
        format!(
            "controls   timeout {} min ({}) · attempts {} ({}) · cancel grace {} s ({})",
            launch.run_controls.execution_timeout_minutes,
            source("executionTimeoutMinutes"),
            launch.run_controls.max_attempts,
            source("maxAttempts"),
            launch.run_controls.cancel_grace_period_seconds,
            source("cancelGracePeriodSeconds")
        ),
        match (launch.scoped, launch.policy_size) {
            (true, Some(size)) => format!(
                "policy     scoped: session policy of {size}/2048 characters{}",
                launch.narrowing_steps.filter(|n| *n > 0).map(|n| format!(", narrowed {n} times to fit")).unwrap_or_default()
            ),
            _ => format!("policy     {}", paint(WARN, "not scoped: the run gets the whole job execution role")),
        },
        format!("spark      {}", launch.spark_submit_parameters),
        format!("tags       {}", launch.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")),
    ];
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    for ignored in &launch.ignored_parameters {
        out.push_str(&format!("ignored    {} {:?}: {}\n", ignored["parameter"].as_str().unwrap_or(""), ignored["value"].as_str().unwrap_or(""), ignored["reason"].as_str().unwrap_or("")));
    }
    if !launch.annotations_checked {
        out.push_str(&paint(DIM, "the primary source is in S3: submit reads its annotations at launch, they are not checked here\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(extra: Value) -> Value {
        let mut doc = json!({
            "id": "dry-1", "jobType": "MODEL_BATCH_JOB",
            "model": {"storedModel": {"modelAssets": [{"name": "m.py", "assetType": "SOURCE_CODE", "primaryModelSource": true,
                "sourceCode": "# modelop.score\ndef score(df):\n    return df\n"}]}},
            "inputData": [{"assetType": "EXTERNAL_FILE", "fileUrl": "s3://data/in.csv"}],
            "outputData": [{"assetType": "EXTERNAL_FILE", "fileUrl": "s3://data/out/"}],
            "jobParameters": {"--total-executor-cores": "10", "--conf modelop.serverless.job.timeout.minutes": "30"}
        });
        doc.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        complete_document(&mut doc).unwrap();
        doc
    }

    #[test]
    fn a_valid_job_plans_as_submit_would_launch_it() {
        let dry = dry_run(&sample(json!({})), |name| (name == "STAGING_BUCKET").then(|| "my-staging".to_string()));
        assert_eq!(dry.error, None);
        assert!(dry.placeholders.contains(&"EMR_DEFAULT_APP_NAME") && !dry.placeholders.contains(&"STAGING_BUCKET"));
        let launch = dry.launch.as_ref().unwrap();
        assert_eq!(launch.staging_uri, "s3://my-staging/modelop-spark-serverless/dry-1/");
        assert_eq!(launch.run_controls.execution_timeout_minutes, 30);
        assert!(launch.scoped && launch.policy_size.is_some_and(|s| s <= 2048));
        assert!(launch.ignored_parameters.iter().any(|p| p["parameter"] == "--total-executor-cores"));
        let text = anstream::adapter::strip_str(&render(&dry)).to_string();
        assert!(text.contains("controls   timeout 30 min (jobParameters) · attempts 1 (default)"), "{text}");
        assert!(text.contains("ignored    --total-executor-cores \"10\""), "{text}");
    }

    #[test]
    fn an_invalid_job_says_what_submit_would_write() {
        let dry = dry_run(&sample(json!({"jobParameters": {"--conf modelop.serverless.job.timeout.minutes": "soon"}})), |_| None);
        let error = dry.error.unwrap();
        assert!(error.starts_with("job dry-1: validate job: job parameter '--conf modelop.serverless.job.timeout.minutes'"), "{error}");
        let no_source = dry_run(&sample(json!({"model": {"storedModel": {"modelAssets": []}}})), |_| None);
        assert!(no_source.error.unwrap().starts_with("job dry-1: validate job: "));
    }

    #[test]
    fn documents_are_completed_as_the_demo_completes_them() {
        let mut doc = json!({"jobType": "MODEL_BATCH_JOB", "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME"}});
        complete_document(&mut doc).unwrap();
        assert!(doc["id"].as_str().unwrap().starts_with("job-") && doc["jobStatus"] == "CREATED" && doc.get("runtimeType").is_none());
        assert!(complete_document(&mut json!([1])).is_err());
    }
}
