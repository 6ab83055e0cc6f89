//! PySparkPreprocessorService, as pure functions: a job and the configuration become a
//! [`PySparkJobManifest`] — the files to stage and the exact EMR Serverless job run to start.
//!
//! Two steps, because a primary source given by `fileUrl` must be read before its annotations can
//! be: [`plan_job`] validates everything that needs no I/O, [`build_manifest`] finishes with the
//! primary source's text.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::annotations::ModelFunctions;
use crate::config::{is_application_name, is_role_arn, ServiceConfig, StagingLocation, SubmitConfig};
use crate::job::{printable, validate_job_id, Asset, InvalidJobId, Job, JobType, ModelRole, ASSET_EXTERNAL_FILE, ASSET_SOURCE_CODE};
use crate::s3_uri::S3Uri;
use crate::spark_conf::{parse_job_parameters, spark_submit_parameters, SparkConf, SparkConfError, SubmitFiles};

pub const DRIVER_FILE_NAME: &str = "ModelOpPySparkDriver.py";
pub const METADATA_FILE_NAME: &str = "job-metadata.json";
pub const RESULTS_FOLDER: &str = "results/";
/// The driver, embedded in the binary so the staged driver always matches the code that staged it.
pub const DRIVER_SOURCE: &str = include_str!("../driver/ModelOpPySparkDriver.py");

pub const TAG_JOB_ID: &str = "modelop:jobId";
pub const TAG_JOB_TYPE: &str = "modelop:jobType";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    InvalidJobId(#[from] InvalidJobId),
    #[error("job parameters rejected: {0}")]
    JobParameters(#[from] SparkConfError),
    #[error("job parameter '--conf modelop.serverless.job.app.name' {0:?} is not a valid EMR Serverless application name (1-64 characters of [A-Za-z0-9._/#-])")]
    BadAppName(String),
    #[error("job parameter '--conf modelop.serverless.job.rolearn' {0:?} is not an IAM role ARN")]
    BadRoleArn(String),
    #[error("the model has no primary source: no model asset has assetType SOURCE_CODE and primaryModelSource true")]
    NoPrimarySource,
    #[error("the model has {0} primary sources; exactly one SOURCE_CODE asset may have primaryModelSource true")]
    SeveralPrimarySources(usize),
    #[error("model asset {0:?} has neither sourceCode nor fileUrl")]
    EmptySource(String),
    #[error("{what} {name:?} has fileUrl {url:?}, which is not an s3://bucket/key URL")]
    BadFileUrl { what: &'static str, name: String, url: String },
    #[error("{what} {name:?} is an EXTERNAL_FILE without a fileUrl")]
    MissingFileUrl { what: &'static str, name: String },
    #[error("the primary source has no function annotated '{annotation}', which a {job_type} job calls")]
    MissingFunction { annotation: String, job_type: JobType },
    #[error("{0}")]
    SubmitParameters(SparkConfError),
}

/// Where the primary model source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    Inline(String),
    S3(S3Uri),
}

/// A file to stage: its key under the job's staging folder, and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    pub name: String,
    pub content: FileContent,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Text to upload: borrowed for what is built in (the driver, staged for every job without
    /// a copy), owned for what comes from the job.
    Text(Cow<'static, str>),
    /// A server-side copy from the model's own S3 location.
    CopyFrom(S3Uri),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    EntryPoint,
    /// Importable Python: passed with `--py-files`.
    PyFile,
    /// Any other file: passed with `--files`, available in the driver's working directory.
    File,
}

/// The job metadata the driver reads (`job-metadata.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMetadata {
    pub job_id: String,
    pub job_type: JobType,
    pub model_module: String,
    pub init_function: Option<String>,
    pub job_function: String,
    pub inputs: Vec<Asset>,
    pub outputs: Vec<Asset>,
    pub model_assets: Vec<Asset>,
    pub job_parameters: BTreeMap<String, String>,
}

/// Everything about a job that could be checked without I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    pub job_id: String,
    pub job_type: JobType,
    pub staging: StagingLocation,
    pub primary: SourceLocation,
    pub primary_module: String,
    pub additional: Vec<StagedFile>,
    pub inputs: Vec<Asset>,
    pub outputs: Vec<Asset>,
    pub model_assets: Vec<Asset>,
    pub model_parameters: BTreeMap<String, String>,
    pub application_name: String,
    pub execution_role_arn: String,
    pub spark_conf: SparkConf,
    pub log_group: String,
}

/// The job run to start, and what to stage for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PySparkJobManifest {
    pub job_id: String,
    pub job_type: JobType,
    pub staging_bucket: String,
    pub staging_prefix: String,
    pub files: Vec<StagedFile>,
    pub metadata: JobMetadata,
    pub application_name: String,
    pub execution_role_arn: String,
    pub entry_point: String,
    pub entry_point_arguments: Vec<String>,
    pub spark_submit_parameters: String,
    pub log_group: String,
    pub log_stream_prefix: String,
    /// EMR's idempotency token: the job id, so a retried StartJobRun returns the same run.
    pub client_token: String,
    pub run_name: String,
    pub tags: BTreeMap<String, String>,
}

impl JobPlan {
    /// Moves the primary source out, for its upload: a large inline source is then held once.
    /// What is left in its place is an empty inline text.
    pub fn take_primary(&mut self) -> SourceLocation {
        std::mem::replace(&mut self.primary, SourceLocation::Inline(String::new()))
    }
}

impl PySparkJobManifest {
    pub fn staging_uri(&self) -> String {
        format!("s3://{}/{}", self.staging_bucket, self.staging_prefix)
    }

    pub fn key_of(&self, name: &str) -> String {
        format!("{}{}", self.staging_prefix, name)
    }
}

/// Checks the job and resolves everything but the primary source's annotations.
pub fn plan_job(job: &Job, service: &ServiceConfig, submit: &SubmitConfig) -> Result<JobPlan, ManifestError> {
    validate_job_id(&job.id)?;
    let params = parse_job_parameters(&job.job_parameters)?;
    let application_name = params.app_name.unwrap_or_else(|| submit.default_app_name.clone());
    if !is_application_name(&application_name) {
        return Err(ManifestError::BadAppName(printable(&application_name)));
    }
    let execution_role_arn = params.role_arn.unwrap_or_else(|| submit.default_job_execution_role_arn.clone());
    if !is_role_arn(&execution_role_arn) {
        return Err(ManifestError::BadRoleArn(printable(&execution_role_arn)));
    }

    let sources: Vec<&Asset> = job.model_assets().iter().filter(|a| a.is_type(ASSET_SOURCE_CODE)).collect();
    let primaries: Vec<&&Asset> = sources.iter().filter(|a| a.is_primary_source()).collect();
    let primary = match primaries.as_slice() {
        [] => return Err(ManifestError::NoPrimarySource),
        [one] => **one,
        many => return Err(ManifestError::SeveralPrimarySources(many.len())),
    };
    let primary_location = source_location(primary)?;

    let mut names = FileNames::default();
    let primary_module = names.claim_module(asset_label(primary).as_str());
    let mut additional = Vec::new();
    for asset in sources.iter().filter(|a| !a.is_primary_source()) {
        let content = match source_location(asset)? {
            SourceLocation::Inline(text) => FileContent::Text(text.into()),
            SourceLocation::S3(uri) => FileContent::CopyFrom(uri),
        };
        let name = names.claim_file(&asset_label(asset));
        let kind = if name.ends_with(".py") { FileKind::PyFile } else { FileKind::File };
        additional.push(StagedFile { name, content, kind });
    }

    Ok(JobPlan {
        job_id: job.id.clone(),
        job_type: job.job_type,
        staging: service.staging.clone(),
        primary: primary_location,
        primary_module,
        additional,
        inputs: external_files("input", &job.input_data)?,
        outputs: external_files("output", &job.output_data)?,
        model_assets: external_files("model asset", job.model_assets())?,
        model_parameters: params.model_parameters,
        application_name,
        execution_role_arn,
        spark_conf: submit.job_execution_conf.overlaid_by(&params.spark_conf),
        log_group: service.log_group.clone(),
    })
}

/// Finishes the manifest with what the primary source's annotations declare, and where its bytes
/// come from (its text, or a server-side copy of the model's own S3 object).
pub fn build_manifest(plan: &JobPlan, functions: &ModelFunctions, primary: FileContent) -> Result<PySparkJobManifest, ManifestError> {
    let role = plan.job_type.model_role();
    let job_function = functions
        .get(role)
        .ok_or_else(|| ManifestError::MissingFunction { annotation: role.annotation(), job_type: plan.job_type })?
        .to_string();
    let metadata = JobMetadata {
        job_id: plan.job_id.clone(),
        job_type: plan.job_type,
        model_module: plan.primary_module.clone(),
        init_function: functions.get(ModelRole::Init).map(str::to_string),
        job_function,
        inputs: plan.inputs.clone(),
        outputs: plan.outputs.clone(),
        model_assets: plan.model_assets.clone(),
        job_parameters: plan.model_parameters.clone(),
    };
    let metadata_json = serde_json::to_string_pretty(&metadata).expect("job metadata is always serializable");

    let mut files = vec![
        StagedFile { name: DRIVER_FILE_NAME.into(), content: FileContent::Text(DRIVER_SOURCE.into()), kind: FileKind::EntryPoint },
        StagedFile {
            name: format!("{}.py", plan.primary_module),
            content: primary,
            kind: FileKind::PyFile,
        },
        StagedFile { name: METADATA_FILE_NAME.into(), content: FileContent::Text(metadata_json.into()), kind: FileKind::File },
    ];
    files.extend(plan.additional.iter().cloned());

    let staging_prefix = plan.staging.job_prefix(&plan.job_id);
    let uri_of = |name: &str| format!("s3://{}/{}{}", plan.staging.bucket, staging_prefix, name);
    let of_kind = |kind: FileKind| files.iter().filter(|f| f.kind == kind).map(|f| uri_of(&f.name)).collect::<Vec<_>>();
    let submit_files = SubmitFiles { py_files: of_kind(FileKind::PyFile), files: of_kind(FileKind::File) };
    let spark_submit_parameters = spark_submit_parameters(&submit_files, &plan.spark_conf).map_err(ManifestError::SubmitParameters)?;

    Ok(PySparkJobManifest {
        job_id: plan.job_id.clone(),
        job_type: plan.job_type,
        staging_bucket: plan.staging.bucket.clone(),
        entry_point: uri_of(DRIVER_FILE_NAME),
        entry_point_arguments: vec![
            "--metadata".into(),
            METADATA_FILE_NAME.into(),
            "--results-uri".into(),
            uri_of(RESULTS_FOLDER),
        ],
        staging_prefix,
        files,
        metadata,
        application_name: plan.application_name.clone(),
        execution_role_arn: plan.execution_role_arn.clone(),
        spark_submit_parameters,
        log_group: plan.log_group.clone(),
        log_stream_prefix: plan.job_id.clone(),
        client_token: plan.job_id.clone(),
        run_name: plan.job_id.clone(),
        tags: BTreeMap::from([
            (TAG_JOB_ID.to_string(), plan.job_id.clone()),
            (TAG_JOB_TYPE.to_string(), plan.job_type.as_str().to_string()),
        ]),
    })
}

fn asset_label(asset: &Asset) -> String {
    asset
        .name
        .clone()
        .or_else(|| asset.filename.clone())
        .or_else(|| asset.file_url.as_deref().and_then(|u| u.rsplit('/').next()).map(str::to_string))
        .unwrap_or_default()
}

fn source_location(asset: &Asset) -> Result<SourceLocation, ManifestError> {
    if let Some(code) = asset.source_code.as_ref().filter(|c| !c.is_empty()) {
        return Ok(SourceLocation::Inline(code.clone()));
    }
    match asset.file_url.as_deref() {
        Some(url) => S3Uri::parse(url).map(SourceLocation::S3).ok_or_else(|| ManifestError::BadFileUrl {
            what: "model asset",
            name: printable(&asset_label(asset)),
            url: printable(url),
        }),
        None => Err(ManifestError::EmptySource(printable(&asset_label(asset)))),
    }
}

/// The EXTERNAL_FILE assets of a list, each with a valid s3 URL; other asset types are not files
/// the model reads through Spark and are left out.
fn external_files(what: &'static str, assets: &[Asset]) -> Result<Vec<Asset>, ManifestError> {
    let mut files = Vec::new();
    for asset in assets.iter().filter(|a| a.is_type(ASSET_EXTERNAL_FILE)) {
        let name = printable(&asset_label(asset));
        match asset.file_url.as_deref() {
            None => return Err(ManifestError::MissingFileUrl { what, name }),
            Some(url) if S3Uri::parse(url).is_none() => {
                return Err(ManifestError::BadFileUrl { what, name, url: printable(url) })
            }
            Some(_) => files.push(asset.clone()),
        }
    }
    Ok(files)
}

/// Hands out file names in the staging folder: safe characters only, unique, never one of ours.
#[derive(Default)]
struct FileNames {
    taken: BTreeSet<String>,
}

impl FileNames {
    fn claim_module(&mut self, label: &str) -> String {
        let stem = label.strip_suffix(".py").unwrap_or(label);
        let mut module: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        if module.is_empty() || module.starts_with(|c: char| c.is_ascii_digit()) {
            module.insert_str(0, "model_");
        }
        let mut candidate = module.clone();
        let mut n = 2;
        while !self.is_free(&format!("{candidate}.py")) {
            candidate = format!("{module}_{n}");
            n += 1;
        }
        self.taken.insert(format!("{candidate}.py"));
        candidate
    }

    fn claim_file(&mut self, label: &str) -> String {
        let base = label.rsplit('/').next().unwrap_or(label);
        let mut name: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        if name.is_empty() || name.starts_with('.') {
            name.insert_str(0, "file");
        }
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (name[..i].to_string(), name[i..].to_string()),
            _ => (name.clone(), String::new()),
        };
        let mut candidate = name.clone();
        let mut n = 2;
        while !self.is_free(&candidate) {
            candidate = format!("{stem}_{n}{ext}");
            n += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }

    fn is_free(&self, name: &str) -> bool {
        !self.taken.contains(name) && ![DRIVER_FILE_NAME, METADATA_FILE_NAME, "results"].contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobStatus, ModelRef, StoredModel};

    const SOURCE: &str = "# modelop.init\ndef begin():\n    pass\n\n# modelop.score\ndef action(i, o, m):\n    pass\n\n# modelop.metrics\ndef metrics(i, o, m):\n    yield {}\n";

    fn service() -> ServiceConfig {
        ServiceConfig {
            jobs_table: "jobs".into(),
            staging: StagingLocation { bucket: "staging".into(), prefix: "modelop-spark-serverless/".into() },
            emr_region: None,
            main_role_arn: None,
            log_group: "/aws/emr-serverless".into(),
            s3_force_path_style: false,
        }
    }

    fn submit() -> SubmitConfig {
        SubmitConfig {
            default_app_name: "modelop-default".into(),
            release_version: "emr-7.5.0".into(),
            default_job_execution_role_arn: "arn:aws:iam::123456789012:role/default-job".into(),
            job_execution_conf: SparkConf::from_pairs([("spark.archives", "s3://env/venv.tar.gz#environment"), ("spark.executor.cores", "2")]).unwrap(),
            app_idle_timeout_minutes: 15,
            max_concurrency: 8,
        }
    }

    fn asset(name: &str, asset_type: &str) -> Asset {
        Asset { name: Some(name.into()), asset_type: Some(asset_type.into()), ..Asset::default() }
    }

    fn primary(code: &str) -> Asset {
        Asset { primary_model_source: Some(true), source_code: Some(code.into()), ..asset("model.py", ASSET_SOURCE_CODE) }
    }

    fn external(name: &str, url: &str) -> Asset {
        Asset { file_url: Some(url.into()), ..asset(name, ASSET_EXTERNAL_FILE) }
    }

    fn job(job_type: JobType, assets: Vec<Asset>) -> Job {
        Job {
            id: "job-1".into(),
            job_type,
            job_status: JobStatus::Created,
            runtime_type: "SPARK_SERVERLESS_RUNTIME".into(),
            model: ModelRef { stored_model: StoredModel { model_assets: assets } },
            input_data: vec![external("input.csv", "s3://data/in/input.csv"), asset("inline", "EMBEDDED")],
            output_data: vec![external("scored", "s3://data/out/scored/")],
            job_parameters: BTreeMap::new(),
            spark_application_id: None,
        }
    }

    fn manifest_of(job: &Job) -> Result<PySparkJobManifest, ManifestError> {
        let plan = plan_job(job, &service(), &submit())?;
        let SourceLocation::Inline(text) = &plan.primary else { panic!("inline source expected") };
        build_manifest(&plan, &crate::annotations::parse_model_functions(text), FileContent::Text(text.clone().into()))
    }

    #[test]
    fn each_job_type_calls_its_annotated_function() {
        let cases = [(JobType::Batch, Ok("action")), (JobType::Test, Ok("metrics")), (JobType::Training, Err("# modelop.train"))];
        for (job_type, expected) in cases {
            let result = manifest_of(&job(job_type, vec![primary(SOURCE)]));
            match expected {
                Ok(function) => {
                    let m = result.expect("manifest");
                    assert_eq!(m.metadata.job_function, function);
                    assert_eq!(m.metadata.init_function.as_deref(), Some("begin"));
                    assert_eq!(m.metadata.job_type, job_type);
                }
                Err(annotation) => {
                    let err = result.expect_err("missing function").to_string();
                    assert!(err.contains(annotation) && err.contains("MODEL_BATCH_TRAINING_JOB"), "{err}");
                }
            }
        }
    }

    #[test]
    fn manifest_describes_files_and_job_run() {
        let helper = Asset { source_code: Some("X = 1\n".into()), ..asset("helpers.py", ASSET_SOURCE_CODE) };
        let lookup = Asset { file_url: Some("s3://models/m/lookup.json".into()), ..asset("lookup.json", ASSET_SOURCE_CODE) };
        let weights = external("weights.bin", "s3://models/m/weights.bin");
        let m = manifest_of(&job(JobType::Batch, vec![primary(SOURCE), helper, lookup, weights])).unwrap();

        let base = "s3://staging/modelop-spark-serverless/job-1/";
        assert_eq!(m.staging_uri(), base);
        assert_eq!(m.entry_point, format!("{base}ModelOpPySparkDriver.py"));
        assert_eq!(m.entry_point_arguments, ["--metadata", "job-metadata.json", "--results-uri", &format!("{base}results/")]);
        let names: Vec<_> = m.files.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("ModelOpPySparkDriver.py", FileKind::EntryPoint),
                ("model.py", FileKind::PyFile),
                ("job-metadata.json", FileKind::File),
                ("helpers.py", FileKind::PyFile),
                ("lookup.json", FileKind::File),
            ]
        );
        assert_eq!(m.files[4].content, FileContent::CopyFrom(S3Uri::parse("s3://models/m/lookup.json").unwrap()));
        assert_eq!(
            m.spark_submit_parameters,
            format!("--py-files {base}model.py,{base}helpers.py --files {base}job-metadata.json,{base}lookup.json --conf spark.archives=s3://env/venv.tar.gz#environment --conf spark.executor.cores=2")
        );
        assert_eq!(m.metadata.model_module, "model");
        assert_eq!(m.metadata.inputs, vec![external("input.csv", "s3://data/in/input.csv")], "only EXTERNAL_FILE inputs");
        assert_eq!(m.metadata.model_assets, vec![external("weights.bin", "s3://models/m/weights.bin")]);
        assert_eq!((m.client_token.as_str(), m.run_name.as_str(), m.log_stream_prefix.as_str()), ("job-1", "job-1", "job-1"));
        assert_eq!(m.tags.get(TAG_JOB_TYPE).map(String::as_str), Some("MODEL_BATCH_JOB"));
        assert_eq!(m.application_name, "modelop-default");
        assert_eq!(m.execution_role_arn, "arn:aws:iam::123456789012:role/default-job");
    }

    #[test]
    fn job_parameters_override_config() {
        let mut j = job(JobType::Batch, vec![primary(SOURCE)]);
        j.job_parameters = BTreeMap::from([
            ("--conf spark.archives".to_string(), "s3://team/venv.tar.gz#environment".to_string()),
            ("--conf modelop.serverless.job.app.name".to_string(), "team-app".to_string()),
            ("--conf modelop.serverless.job.rolearn".to_string(), "arn:aws:iam::123456789012:role/team-job".to_string()),
            ("threshold".to_string(), "0.7".to_string()),
        ]);
        let m = manifest_of(&j).unwrap();
        assert_eq!(m.application_name, "team-app");
        assert_eq!(m.execution_role_arn, "arn:aws:iam::123456789012:role/team-job");
        assert!(m.spark_submit_parameters.contains("--conf spark.archives=s3://team/venv.tar.gz#environment"));
        assert!(m.spark_submit_parameters.contains("--conf spark.executor.cores=2"));
        assert!(!m.spark_submit_parameters.contains("modelop."), "service keys never reach Spark");
        assert_eq!(m.metadata.job_parameters, BTreeMap::from([("threshold".to_string(), "0.7".to_string())]));
    }

    #[test]
    fn bad_jobs_are_named_errors() {
        let no_code = asset("model.py", ASSET_SOURCE_CODE);
        let cases: Vec<(Job, &str)> = vec![
            (Job { id: "bad id".into(), ..job(JobType::Batch, vec![primary(SOURCE)]) }, "outside [A-Za-z0-9._-]"),
            (job(JobType::Batch, vec![]), "no primary source"),
            (job(JobType::Batch, vec![primary(SOURCE), primary(SOURCE)]), "2 primary sources"),
            (job(JobType::Batch, vec![Asset { primary_model_source: Some(true), ..no_code }]), "neither sourceCode nor fileUrl"),
            (
                job(JobType::Batch, vec![Asset { primary_model_source: Some(true), file_url: Some("https://x/y.py".into()), ..asset("m.py", ASSET_SOURCE_CODE) }]),
                "not an s3://bucket/key URL",
            ),
            (job(JobType::Batch, vec![primary("def action(): pass\n")]), "'# modelop.score'"),
            (
                Job { input_data: vec![asset("in", ASSET_EXTERNAL_FILE)], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "input \"in\" is an EXTERNAL_FILE without a fileUrl",
            ),
            (
                Job { output_data: vec![external("out", "s3:///nobucket")], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "output \"out\" has fileUrl",
            ),
            (
                Job {
                    job_parameters: BTreeMap::from([("--conf spark.jars".into(), "a.jar --py-files x".into())]),
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "whitespace",
            ),
            (
                Job {
                    job_parameters: BTreeMap::from([("--conf modelop.serverless.job.rolearn".into(), "admin".into())]),
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "not an IAM role ARN",
            ),
            (
                Job {
                    job_parameters: BTreeMap::from([("--conf modelop.serverless.job.app.name".into(), "a b".into())]),
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "not a valid EMR Serverless application name",
            ),
        ];
        for (j, needle) in cases {
            let err = manifest_of(&j).expect_err(needle).to_string();
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        }
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut names = FileNames::default();
        let cases = [
            (names.claim_module("my-model.py"), "my_model"),
            (names.claim_module("my_model.py"), "my_model_2"),
            (names.claim_module("3d.py"), "model_3d"),
            (names.claim_module(""), "model_"),
            (names.claim_file("ModelOpPySparkDriver.py"), "ModelOpPySparkDriver_2.py"),
            (names.claim_file("job-metadata.json"), "job-metadata_2.json"),
            (names.claim_file("../../etc/passwd"), "passwd"),
            (names.claim_file("a b;c.py"), "a_b_c.py"),
            (names.claim_file(".hidden"), "file.hidden"),
            (names.claim_file("results"), "results_2"),
            (names.claim_file("my_model.py"), "my_model_3.py"),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }
}
