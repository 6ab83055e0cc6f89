//! PySparkPreprocessorService, step 2: a [`JobPlan`] and the primary source's annotations become
//! the [`PySparkJobManifest`] — the files to stage and the exact EMR Serverless job run to start.
//!
//! Two steps, because a primary source given by `fileUrl` must be read before its annotations can
//! be: [`crate::launch::plan::plan_job`] validates everything that needs no I/O, [`build_manifest`] finishes with the
//! primary source's text.

use std::collections::BTreeMap;

use serde::Serialize;


use crate::job::annotations::ModelFunctions;
use crate::launch::job_policy::{fetched_files, job_policy, ExecutionIamPolicy, JobPermissions, JobScope};
use crate::launch::run_controls::RunControls;
use crate::text::printable;
use crate::job::record::{Asset, JobType, ModelRole};
use crate::job::s3_uri::S3Uri;
use crate::launch::spark_conf::{
    spark_submit_parameters, IgnoredParameter, SubmitFiles, JOB_ID_CONF, WORKING_DIR_CONF,
};
use crate::launch::plan::{JobPlan, ManifestError};
use crate::launch::staged_files::{FileContent, FileKind, StagedFile, DRIVER_FILE_NAME, DRIVER_SOURCE, METADATA_FILE_NAME, RESULTS_FOLDER};

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
    /// Files shipped with `--files` that the model expects in its working directory (`FILE`
    /// model assets, by their staged name); the driver puts them there if Spark did not.
    pub working_directory_files: Vec<String>,
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
    pub ignored_parameters: Vec<IgnoredParameter>,
    /// StartJobRun `executionTimeoutMinutes` and `retryPolicy`, and the grace period of cancels;
    /// recorded on the job at launch.
    pub run_controls: RunControls,
    /// StartJobRun `executionIamPolicy`: `None` for a run with the whole execution role.
    pub execution_iam_policy: Option<ExecutionIamPolicy>,
    /// What the row records about it (`jobPermissions`).
    pub job_permissions: JobPermissions,
}

impl PySparkJobManifest {
    pub fn staging_uri(&self) -> String {
        S3Uri { bucket: self.staging_bucket.clone(), key: self.staging_prefix.clone() }.to_string()
    }
}

/// Finishes the manifest with what the primary source's annotations declare, and where its bytes
/// come from (its text, or a server-side copy of the model's own S3 object).
pub fn build_manifest(plan: &JobPlan, functions: &ModelFunctions, primary: FileContent) -> Result<PySparkJobManifest, ManifestError> {
    let role = plan.job_type.model_role();
    let job_function = match &plan.named_job_function {
        Some(name) => named_function(functions, role, name)?,
        None => functions
            .get(role)
            .ok_or_else(|| ManifestError::MissingFunction { annotation: role.annotation(), job_type: plan.job_type })?
            .to_string(),
    };
    let init_function = match &plan.named_init {
        Some(name) => Some(named_function(functions, ModelRole::Init, name)?),
        None => functions.get(ModelRole::Init).map(str::to_string),
    };
    let metadata = JobMetadata {
        job_id: plan.job_id.clone(),
        job_type: plan.job_type,
        model_module: plan.primary_module.clone(),
        init_function,
        job_function,
        inputs: plan.inputs.clone(),
        outputs: plan.outputs.clone(),
        model_assets: plan.model_assets.clone(),
        job_parameters: plan.model_parameters.clone(),
        working_directory_files: plan.additional.iter().filter(|f| f.kind == FileKind::File).map(|f| f.name.clone()).collect(),
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
    let staging_uri = plan.staging.job_uri(&plan.job_id);
    let uri_of = |name: &str| format!("{staging_uri}{name}");
    let of_kind = |kind: FileKind| files.iter().filter(|f| f.kind == kind).map(|f| uri_of(&f.name)).collect::<Vec<_>>();
    let mut submit_files = SubmitFiles { py_files: of_kind(FileKind::PyFile), files: of_kind(FileKind::File) };
    submit_files.py_files.extend(plan.extra_py_files.iter().cloned());
    submit_files.files.extend(plan.extra_files.iter().cloned());
    let mut spark_conf = plan.spark_conf.clone();
    spark_conf.set_reserved(JOB_ID_CONF, plan.job_id.clone()).map_err(ManifestError::SubmitParameters)?;
    spark_conf.set_reserved(WORKING_DIR_CONF, staging_uri.clone()).map_err(ManifestError::SubmitParameters)?;
    let spark_submit_parameters = spark_submit_parameters(&submit_files, &spark_conf).map_err(ManifestError::SubmitParameters)?;
    let (execution_iam_policy, job_permissions) = if plan.scope.scoped {
        let policy = job_policy(&job_scope(plan, &staging_uri), &plan.job_permissions)?;
        let record = JobPermissions::scoped(plan.scope.source, &policy);
        (Some(policy), record)
    } else {
        (None, JobPermissions::unscoped(plan.scope.source))
    };

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
        tags: plan.tags.clone(),
        ignored_parameters: plan.ignored_parameters.clone(),
        run_controls: plan.run_controls,
        execution_iam_policy,
        job_permissions,
    })
}

/// What a job's run touches, for its policy: the staging folder (driver, model, metadata, staged
/// assets), every input and model asset, the files the job's `--py-files`/`--files` and Spark conf
/// make Spark fetch; writes: the outputs and `results/`; the staging folder is the job's own. The execution role's ARN gives the
/// partition and the log group's account.
fn job_scope(plan: &JobPlan, staging_uri: &str) -> JobScope {
    let urls = |assets: &[Asset]| assets.iter().filter_map(|a| a.file_url.as_deref().and_then(S3Uri::parse)).collect::<Vec<_>>();
    let mut reads: Vec<S3Uri> = S3Uri::parse(staging_uri).into_iter().collect();
    reads.extend(urls(&plan.inputs));
    reads.extend(urls(&plan.model_assets));
    reads.extend(plan.extra_py_files.iter().chain(&plan.extra_files).filter_map(|u| S3Uri::parse(u)));
    reads.extend(fetched_files(plan.spark_conf.iter()));
    let mut writes: Vec<S3Uri> = S3Uri::parse(&format!("{staging_uri}{RESULTS_FOLDER}")).into_iter().collect();
    writes.extend(urls(&plan.outputs));
    let arn: Vec<&str> = plan.execution_role_arn.split(':').collect();
    JobScope {
        partition: arn.get(1).copied().unwrap_or("aws").to_string(),
        account: arn.get(4).copied().unwrap_or_default().to_string(),
        region: plan.emr_region.clone(),
        log_group: plan.log_group.clone(),
        own_folder: S3Uri::parse(staging_uri),
        reads,
        writes,
    }
}

/// ModelOp's field on the primary source asset that names the function of `role`.
pub fn function_field(role: ModelRole) -> &'static str {
    match role {
        ModelRole::Init => "initFunction",
        ModelRole::Score => "scoreFunction",
        ModelRole::Metrics => "metricsFunction",
        ModelRole::Train => "trainingFunction",
    }
}

/// A function ModelOp named on the asset: it must be defined at the top level of the source.
fn named_function(functions: &ModelFunctions, role: ModelRole, name: &str) -> Result<String, ManifestError> {
    if functions.defines(name) {
        Ok(name.to_string())
    } else {
        Err(ManifestError::MissingNamedFunction { field: function_field(role), name: printable(name) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    use crate::config::{ServiceConfig, StagingLocation, SubmitConfig};
    use crate::job::record::{Job, ASSET_EXTERNAL_FILE, ASSET_FILE, ASSET_SOURCE_CODE};
    use crate::launch::job_policy::JobScopeError;
    use crate::launch::plan::*;
    use crate::launch::spark_conf::SparkConf;
    use crate::launch::staged_files::*;
    use crate::job::record::{JobStatus, ModelRef, RuntimeSelector, StoredModel};

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
            release: crate::launch::run_controls::ReleaseLabel::new(7, 5, 0),
            run_controls: RunControls::default(),
            application_settings: Default::default(),
            default_job_execution_role_arn: "arn:aws:iam::123456789012:role/default-job".into(),
            job_execution_conf: SparkConf::from_pairs([("spark.archives", "s3://env/venv.tar.gz#environment"), ("spark.executor.cores", "2")]).unwrap(),
            app_idle_timeout_minutes: 15,
            max_concurrency: 8,
            job_permissions: Default::default(),
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
            runtime: RuntimeSelector { runtime_type: Some("SPARK_SERVERLESS_RUNTIME".into()), target_engine: None },
            model: ModelRef { stored_model: StoredModel { model_assets: assets, ..StoredModel::default() } },
            input_data: vec![external("input.csv", "s3://data/in/input.csv")],
            output_data: vec![external("scored", "s3://data/out/scored/")],
            job_parameters: BTreeMap::new(),
            spark_application_id: None,
        }
    }

    fn manifest_of(job: &Job) -> Result<PySparkJobManifest, ManifestError> {
        let plan = plan_job(job, &service(), &submit())?;
        let SourceLocation::Inline(text) = &plan.primary else { panic!("inline source expected") };
        build_manifest(&plan, &crate::job::annotations::parse_model_functions(text), FileContent::Text(text.clone().into()))
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
            format!(
                "--py-files {base}model.py,{base}helpers.py --files {base}job-metadata.json,{base}lookup.json \
                 --conf spark.archives=s3://env/venv.tar.gz#environment --conf spark.executor.cores=2 \
                 --conf spark.modelop.job.id=job-1 --conf spark.modelop.job.workingDir={base}"
            )
        );
        assert_eq!(m.metadata.model_module, "model");
        assert_eq!(m.metadata.inputs, vec![external("input.csv", "s3://data/in/input.csv")]);
        assert_eq!(m.metadata.model_assets, vec![external("weights.bin", "s3://models/m/weights.bin")]);
        assert_eq!((m.client_token.as_str(), m.run_name.as_str(), m.log_stream_prefix.as_str()), ("job-1", "job-1", "job-1"));
        assert_eq!(m.tags.get(TAG_JOB_TYPE).map(String::as_str), Some("MODEL_BATCH_JOB"));
        assert_eq!(m.application_name, "modelop-default");
        assert_eq!(m.execution_role_arn, "arn:aws:iam::123456789012:role/default-job");
    }

    #[test]
    fn runs_are_tagged_with_the_job_and_the_model_in_emr_tag_rules() {
        // (raw value, tag value or why it is left out)
        let rows: [(&str, Result<&str, &str>); 6] = [
            ("5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7", Ok("5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7")),
            ("Credit Risk (v2)", Ok("Credit Risk _v2_")),
            ("  padded  ", Ok("padded")),
            ("modèle/été", Ok("mod_le/_t_")),
            ("   ", Err("it is empty")),
            (&*"x".repeat(257), Err("it is 257 characters long; EMR Serverless takes at most 256")),
        ];
        for (raw, expected) in rows {
            assert_eq!(tag_value(raw).as_deref().map_err(String::as_str), expected, "{raw:?}");
        }
        assert_eq!(tag_value(&"y".repeat(256)).map(|v| v.len()), Ok(256));

        let mut j = job(JobType::Batch, vec![primary(SOURCE)]);
        let plain = manifest_of(&j).unwrap();
        assert_eq!(plain.tags.keys().map(String::as_str).collect::<Vec<_>>(), [TAG_JOB_ID, TAG_JOB_TYPE], "no model tags when the job names none");
        j.model.stored_model.id = Some("model-7".into());
        j.model.stored_model.model_meta_data.name = Some("Credit Risk (v2)".into());
        let m = manifest_of(&j).unwrap();
        assert_eq!(m.tags.get(TAG_MODEL_ID).map(String::as_str), Some("model-7"));
        assert_eq!(m.tags.get(TAG_MODEL_NAME).map(String::as_str), Some("Credit Risk _v2_"));
        j.model.stored_model.model_meta_data.name = Some(" ".into());
        assert!(!manifest_of(&j).unwrap().tags.contains_key(TAG_MODEL_NAME), "a name that cannot be a tag is left out; the job still runs");
        let sample = manifest_of(&modelop_sample()).unwrap();
        // ModelOp's own job document: the stored model's id becomes the run's cost-allocation tag.
        assert_eq!(sample.tags.get(TAG_MODEL_ID).map(String::as_str), Some("5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7"), "{:?}", sample.tags);
    }

    #[test]
    fn job_parameters_override_config() {
        let mut j = job(JobType::Batch, vec![primary(SOURCE)]);
        j.job_parameters = BTreeMap::from([
            ("--conf spark.archives".to_string(), "s3://team/venv.tar.gz#environment".to_string()),
            ("--conf modelop.serverless.job.app.name".to_string(), "team-app".to_string()),
            ("--conf modelop.serverless.job.rolearn".to_string(), "arn:aws:iam::123456789012:role/team-job".to_string()),
            ("--conf modelop.serverless.job.timeout.minutes".to_string(), "90".to_string()),
            ("--conf modelop.serverless.job.max.attempts".to_string(), "2".to_string()),
            ("threshold".to_string(), "0.7".to_string()),
        ]);
        let m = manifest_of(&j).unwrap();
        assert_eq!((m.run_controls.execution_timeout_minutes, m.run_controls.max_attempts), (90, 2));
        assert_eq!(m.application_name, "team-app");
        assert_eq!(m.execution_role_arn, "arn:aws:iam::123456789012:role/team-job");
        assert!(m.spark_submit_parameters.contains("--conf spark.archives=s3://team/venv.tar.gz#environment"));
        assert!(m.spark_submit_parameters.contains("--conf spark.executor.cores=2"));
        assert!(!m.spark_submit_parameters.contains("modelop.serverless"), "service keys never reach Spark");
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
                "not a URL of a form this service reads",
            ),
            (
                Job { input_data: vec![asset("inline", "EMBEDDED")], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "input \"inline\" has assetType \"EMBEDDED\", which this runtime cannot serve (it serves EXTERNAL_FILE and FILE assets)",
            ),
            (
                Job { input_data: vec![asset("model.py", ASSET_SOURCE_CODE)], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "input \"model.py\" has assetType \"SOURCE_CODE\", which this runtime cannot serve",
            ),
            (
                job(JobType::Batch, vec![primary(SOURCE), asset("weights", "EMBEDDED")]),
                "model asset \"weights\" has assetType \"EMBEDDED\", which this runtime cannot serve (it serves SOURCE_CODE, EXTERNAL_FILE and FILE model assets)",
            ),
            (
                Job { output_data: vec![Asset { asset_type: None, ..Asset::default() }], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "output \"#0\" has assetType \"(none)\"",
            ),
            (
                Job { model: ModelRef { stored_model: StoredModel { model_assets: vec![primary(SOURCE), asset("schema.avsc", ASSET_FILE)], ..StoredModel::default() } }, ..job(JobType::Batch, vec![]) },
                "model asset \"schema.avsc\" is a FILE asset with neither fileContent nor fileContentString",
            ),
            (
                Job {
                    input_data: vec![Asset { file_content: Some("not base64!".into()), ..asset("in.json", ASSET_FILE) }],
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "input \"in.json\" has a fileContent that is not base64",
            ),
            (
                job(JobType::Batch, vec![Asset { score_function: Some("predict".into()), ..primary(SOURCE) }]),
                "names scoreFunction \"predict\", but the source defines no top-level function of that name",
            ),
            (
                Job {
                    job_parameters: BTreeMap::from([("--py-files".into(), "hdfs:///lib.py".into())]),
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "job parameter \"--py-files\" lists \"hdfs:///lib.py\", which is not an S3 location",
            ),
            (job(JobType::Batch, vec![primary("def action(): pass\n")]), "'# modelop.score'"),
            (
                Job { input_data: vec![asset("in", ASSET_EXTERNAL_FILE)], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "input \"in\" is an EXTERNAL_FILE without a fileUrl",
            ),
            (
                Job { output_data: vec![external("out", "s3:///nobucket")], ..job(JobType::Batch, vec![primary(SOURCE)]) },
                "output \"out\" has fileUrl \"s3:///nobucket\": it names no bucket",
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
            (
                Job {
                    job_parameters: BTreeMap::from([("--conf modelop.serverless.job.timeout.minutes".into(), "1000001".into())]),
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "job parameter '--conf modelop.serverless.job.timeout.minutes' \"1000001\": executionTimeoutMinutes (0: no timeout) must be a whole number from 0 to 1000000",
            ),
            (
                Job {
                    job_parameters: BTreeMap::from([("--conf modelop.serverless.job.max.attempts".into(), "11".into())]),
                    ..job(JobType::Batch, vec![primary(SOURCE)])
                },
                "job parameter '--conf modelop.serverless.job.max.attempts' \"11\": maxAttempts must be a whole number from 1 to 10",
            ),
        ];
        for (j, needle) in cases {
            let err = manifest_of(&j).expect_err(needle).to_string();
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        }
    }

    /// The ModelOp-shaped sample INSERT (`events/submit/insert-modelop-job.json`), decoded as submit does.
    fn modelop_sample() -> Job {
        let event: Value = serde_json::from_str(include_str!("../../../events/submit/insert-modelop-job.json")).unwrap();
        let image: serde_dynamo::Item = serde_json::from_value(event["Records"][0]["dynamodb"]["NewImage"].clone()).unwrap();
        crate::job::record::decode_job(image).expect("a ModelOp job document decodes")
    }

    #[test]
    fn a_modelop_job_document_runs_unchanged() {
        let job = modelop_sample();
        assert!(job.runtime.is_ours(), "targetEngine.engineType selects the runtime");
        let m = manifest_of(&job).unwrap();
        let base = format!("s3://staging/modelop-spark-serverless/{}/", job.id);

        // Functions named on the primary asset (initFunction, scoreFunction).
        assert_eq!((m.metadata.init_function.as_deref(), m.metadata.job_function.as_str()), (Some("init"), "score"));
        // Whole assets: every field ModelOp wrote, the URL normalised, the original beside it.
        let input = &m.metadata.inputs[0];
        assert_eq!(input.other["assetRole"], "UNKNOWN");
        assert_eq!(input.other["assetId"], "e45d070b-2c3d-4e5f-9a0b-1c2d3e4f5a6b");
        assert_eq!(input.other["fileSize"], 0);
        assert_eq!(input.name.as_deref(), Some(""));
        assert_eq!(input.file_url.as_deref(), Some("s3://modelop-data/input/sample_input.csv"));
        assert_eq!(input.other["originalFileUrl"], "http://minio:9000/modelop-data/input/sample_input.csv");
        assert_eq!(input.repository_info.as_ref().unwrap()["host"], "minio");
        assert_eq!(m.metadata.outputs[0].file_url.as_deref(), Some(format!("s3://modelop-data/output/{}/scored/", job.id).as_str()));
        // A model asset named `<storedModelId>/<assetId>.json`, in ModelOp's S3 repository.
        let weights = &m.metadata.model_assets[0];
        assert_eq!(weights.name.as_deref(), Some("5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7/e45d070b-0000-4e5f-9a0b-1c2d3e4f5a6c.json"));
        assert_eq!(weights.file_url.as_deref(), Some("s3://modelop-models/5c7c9a1e-4b2d-4e8f-a0b1-c2d3e4f5a6b7/e45d070b-0000-4e5f-9a0b-1c2d3e4f5a6c.json"));
        // The FILE model asset: staged, shipped with --files, passed as an EXTERNAL_FILE.
        let schema = &m.metadata.model_assets[1];
        assert_eq!(schema.asset_type.as_deref(), Some(ASSET_EXTERNAL_FILE));
        assert_eq!(schema.file_url.as_deref(), Some(format!("{base}df_sample_scored_input_schema.avsc").as_str()));
        assert_eq!(schema.other["originalAssetType"], "FILE");
        assert_eq!(schema.other["assetRole"], "MODEL_SCHEMA");
        assert!(schema.file_content.is_none() && !schema.other.contains_key("localFile"));
        assert_eq!(m.metadata.working_directory_files, ["df_sample_scored_input_schema.avsc"]);
        let staged = m.files.iter().find(|f| f.name == "df_sample_scored_input_schema.avsc").expect("staged schema");
        assert_eq!(staged.kind, FileKind::File);
        let FileContent::Bytes(bytes) = &staged.content else { panic!("decoded bytes expected") };
        assert!(String::from_utf8_lossy(bytes).starts_with("[\n    {\n        \"name\": \"id\""), "the base64 content, decoded");
        assert!(m.spark_submit_parameters.contains(&format!("{base}job-metadata.json,{base}df_sample_scored_input_schema.avsc")));
        // spark-submit flags: applied, or recorded as ignored.
        assert!(m.spark_submit_parameters.contains("--conf spark.executor.memory=512MB"), "{}", m.spark_submit_parameters);
        assert!(m.spark_submit_parameters.contains("--conf spark.modelop.threshold=0.7"));
        let ignored: Vec<&str> = m.ignored_parameters.iter().map(|p| p.parameter.as_str()).collect();
        assert_eq!(ignored, ["--total-executor-cores", "-v"]);
        // No credential of the S3 repository reaches the metadata file (or anything staged).
        let metadata = serde_json::to_string(&m.metadata).unwrap();
        for secret in ["SAMPLE-SECRET-KEY", "SAMPLE-ACCESS-KEY", "secretKey", "accessKey"] {
            assert!(!metadata.contains(secret), "{secret} in {metadata}");
            assert!(!format!("{job:?}").contains(secret), "{secret} kept on the decoded job");
        }
    }

    #[test]
    fn file_inputs_and_outputs_are_staged_where_the_monitor_looks() {
        let file = |name: &str, content: Option<&str>| Asset { file_content: content.map(str::to_string), filename: Some(name.into()), ..asset("", ASSET_FILE) };
        let inputs = vec![Asset { file_content_string: Some(Value::String("a,b\n1,2\n".into())), ..file("in.csv", None) }];
        let outputs = vec![external("scored", "s3a://data/out/"), file("results.json", None), file("results.json", None)];
        let j = Job { input_data: inputs, output_data: outputs.clone(), ..job(JobType::Batch, vec![primary(SOURCE)]) };
        let m = manifest_of(&j).unwrap();
        let base = "s3://staging/modelop-spark-serverless/job-1/";
        let staged = m.files.iter().find(|f| f.name == "inputs/in.csv").expect("the input's content is staged");
        assert_eq!((staged.kind, &staged.content), (FileKind::Data, &FileContent::Bytes(b"a,b\n1,2\n".to_vec())));
        assert!(!m.spark_submit_parameters.contains("inputs/"), "data is read by URL, not shipped");
        assert_eq!(m.metadata.inputs[0].file_url.as_deref(), Some(format!("{base}inputs/in.csv").as_str()));
        let told: Vec<_> = m.metadata.outputs.iter().map(|a| a.file_url.clone().unwrap()).collect();
        assert_eq!(told, ["s3://data/out/".to_string(), format!("{base}outputs/results.json"), format!("{base}outputs/results_2.json")]);
        let found: Vec<_> = output_locations(base, &outputs).into_iter().map(|u| u.unwrap().to_string()).collect();
        assert_eq!(found, told, "the monitor reads the outputs where the model was told to write them");
    }

    #[test]
    fn annotations_remain_the_fallback_for_unnamed_functions() {
        let named = Asset { init_function: Some(" ".into()), metrics_function: Some("metrics".into()), ..primary(SOURCE) };
        let m = manifest_of(&job(JobType::Test, vec![named])).unwrap();
        assert_eq!((m.metadata.init_function.as_deref(), m.metadata.job_function.as_str()), (Some("begin"), "metrics"));
        let unannotated = "def setup():\n    pass\n\ndef predict(i, o, m):\n    pass\n";
        let named = Asset { init_function: Some("setup".into()), score_function: Some("predict".into()), ..primary(unannotated) };
        let m = manifest_of(&job(JobType::Batch, vec![named])).unwrap();
        assert_eq!((m.metadata.init_function.as_deref(), m.metadata.job_function.as_str()), (Some("setup"), "predict"));
        let train = Asset { training_function: Some("fit".into()), ..primary("def fit(i, o, m):\n    pass\n") };
        assert_eq!(manifest_of(&job(JobType::Training, vec![train])).unwrap().metadata.job_function, "fit");
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut names = FileNames::default();
        let cases = [
            (names.claim_module("my-model.py"), "my_model"),
            (names.claim_module("my_model.py"), "my_model_2"),
            (names.claim_module("my model.py"), "my_model_3"),
            (names.claim_module("3d.py"), "model_3d"),
            (names.claim_module(""), "model_"),
            (names.claim_file("ModelOpPySparkDriver.py"), "ModelOpPySparkDriver_2.py"),
            (names.claim_file("job-metadata.json"), "job-metadata_2.json"),
            (names.claim_file("../../etc/passwd"), "passwd"),
            (names.claim_file("a b;c.py"), "a_b_c.py"),
            (names.claim_file(".hidden"), "file.hidden"),
            (names.claim_file("results"), "results_2"),
            (names.claim_file("my_model.py"), "my_model_4.py"),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn the_run_policy_names_the_jobs_own_locations() {
        let weights = external("weights.bin", "s3://models/m/weights.bin");
        let mut j = job(JobType::Batch, vec![primary(SOURCE), weights]);
        j.job_parameters.insert("--jars".into(), "s3://libs/udf.jar".into());
        let m = manifest_of(&j).unwrap();
        let policy = m.execution_iam_policy.as_ref().expect("scoped by default");
        let value: Value = serde_json::from_str(&policy.policy).unwrap();
        let read: Vec<&str> = value["Statement"][0]["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        for expected in [
            "arn:aws:s3:::staging/modelop-spark-serverless/job-1/*",
            "arn:aws:s3:::data/in/input.csv",
            "arn:aws:s3:::models/m/weights.bin",
            "arn:aws:s3:::env/venv.tar.gz",
            "arn:aws:s3:::libs/udf.jar",
        ] {
            assert!(read.contains(&expected), "{expected} not in {read:?}");
        }
        let write: Vec<&str> = value["Statement"][1]["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        // An output gets its EMRFS marker beside it; `results/` is inside the job's own folder: one prefix.
        assert_eq!(
            write,
            [
                "arn:aws:s3:::data/out/scored",
                "arn:aws:s3:::data/out/scored/*",
                "arn:aws:s3:::data/out/scored_${$}folder${$}",
                "arn:aws:s3:::staging/modelop-spark-serverless/job-1/results*",
            ]
        );
        assert!(m.job_permissions.scoped);
        assert_eq!(m.job_permissions.policy.as_deref(), Some(policy.policy.as_str()));
    }

    #[test]
    fn opting_out_and_policies_that_cannot_fit_are_job_errors() {
        let mut opt_out = job(JobType::Batch, vec![primary(SOURCE)]);
        opt_out.job_parameters.insert("--conf modelop.serverless.job.scope.permissions".into(), "false".into());
        let err = plan_job(&opt_out, &service(), &submit()).unwrap_err();
        assert!(matches!(err, ManifestError::JobScope(JobScopeError::OptOutRefused)), "{err}");

        let mut allowing = submit();
        allowing.job_permissions.allow_unscoped = true;
        let plan = plan_job(&opt_out, &service(), &allowing).unwrap();
        let m = build_manifest(&plan, &crate::job::annotations::parse_model_functions(SOURCE), FileContent::Text(SOURCE.into())).unwrap();
        assert_eq!(m.execution_iam_policy, None);
        assert!(!m.job_permissions.scoped);

        let mut crowded = job(JobType::Batch, vec![primary(SOURCE)]);
        crowded.input_data = (0..70).map(|i| external(&format!("in{i}"), &format!("s3://bucket-number-{i:03}/in.csv"))).collect();
        let err = manifest_of(&crowded).unwrap_err();
        assert!(matches!(err, ManifestError::PolicyTooLong(_)), "{err}");
        assert!(err.to_string().contains("at most 2048"), "{err}");
    }
}
