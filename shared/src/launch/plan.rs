//! PySparkPreprocessorService, step 1: a job and the configuration become a [`JobPlan`], with
//! everything checked that needs no I/O: the job parameters, the application and role, the run
//! controls and scope, the primary source's location, and the assets as the model will receive
//! them. A job that cannot run gets a [`ManifestError`] naming the field and the rule.

use std::collections::BTreeMap;


use base64::Engine as _;
use serde_json::Value;

use crate::aws::names::{is_application_name, is_role_arn};
use crate::config::{ServiceConfig, StagingLocation, SubmitConfig};
use crate::launch::job_policy::{decide_scope, JobPermissionSettings, JobScopeError, PolicyTooLong, ScopeDecision};
use crate::launch::run_controls::{JobRunControlError, RunControls};
use crate::text::printable;
use crate::job::record::{validate_job_id, Asset, InvalidJobId, Job, JobType, ModelRole, ASSET_EXTERNAL_FILE, ASSET_FILE, ASSET_SOURCE_CODE};
use crate::job::s3_uri::{redacted_url, S3Uri};
use crate::launch::spark_conf::{
    check_executor_bounds, parse_job_parameters, ExecutorBoundsError, IgnoredParameter, SparkConf, SparkConfError,
};
use crate::launch::staged_files::{FileContent, FileKind, FileNames, StagedFile, INPUTS_FOLDER, OUTPUTS_FOLDER};

pub const TAG_JOB_ID: &str = "modelop:jobId";

pub const TAG_JOB_TYPE: &str = "modelop:jobType";

/// `model.storedModel.id`, when the job names it.
pub const TAG_MODEL_ID: &str = "modelop:modelId";

/// `model.storedModel.modelMetaData.name`, when the job names it.
pub const TAG_MODEL_NAME: &str = "modelop:modelName";

/// EMR Serverless tag values: at most 256 characters of `[A-Za-z0-9 /_.:=+@-]` (botocore
/// `emr-serverless` 2021-07-13, shape `TagValue`).
const TAG_VALUE_MAX_CHARS: usize = 256;

/// A tag value as EMR Serverless accepts it: each character outside `[A-Za-z0-9 /_.:=+@-]`
/// becomes `_`, surrounding spaces go. `Err` (why) for a value that cannot be made valid without
/// losing what it identifies: empty, or longer than 256 characters (cutting an id would group
/// different models' costs together).
pub fn tag_value(raw: &str) -> Result<String, String> {
    let value: String = raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || " /_.:=+@-".contains(c) { c } else { '_' }).collect();
    match value.chars().count() {
        0 => Err("it is empty".into()),
        n if n > TAG_VALUE_MAX_CHARS => Err(format!("it is {n} characters long; EMR Serverless takes at most {TAG_VALUE_MAX_CHARS}")),
        _ => Ok(value),
    }
}

/// The tags of a job's run, so the Cost and Usage Report can group runs' costs (EMR Serverless
/// does not pass an application's tags on to its runs): the job id and type, and the model's id
/// and name when the job names them. A model tag that cannot be made valid is left out, with a
/// warning; it never fails the job.
pub fn run_tags(job: &Job) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([(TAG_JOB_ID.to_string(), job.id.clone()), (TAG_JOB_TYPE.to_string(), job.job_type.as_str().to_string())]);
    let stored = &job.model.stored_model;
    for (key, raw) in [(TAG_MODEL_ID, stored.id.as_deref()), (TAG_MODEL_NAME, stored.model_meta_data.name.as_deref())] {
        let Some(raw) = raw else { continue };
        match tag_value(raw) {
            Ok(value) => {
                tags.insert(key.to_string(), value);
            }
            Err(why) => tracing::warn!(job_id = %job.id, tag = key, value = %printable(raw), why, "run tag left out"),
        }
    }
    tags
}

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
    /// A run control job parameter out of EMR's range, or a feature the configured release lacks.
    #[error(transparent)]
    RunControl(#[from] JobRunControlError),
    /// `--conf modelop.serverless.job.scope.permissions` not a boolean, or an opt-out the
    /// configuration does not allow.
    #[error(transparent)]
    JobScope(#[from] JobScopeError),
    /// The run's least-privilege policy cannot fit EMR's limit: the job ends in ERROR, no run.
    #[error(transparent)]
    PolicyTooLong(#[from] PolicyTooLong),
    #[error("the model has no primary source: no model asset has assetType SOURCE_CODE and primaryModelSource true")]
    NoPrimarySource,
    #[error("the model has {0} primary sources; exactly one SOURCE_CODE asset may have primaryModelSource true")]
    SeveralPrimarySources(usize),
    #[error("model asset {0:?} has neither sourceCode nor fileUrl")]
    EmptySource(String),
    #[error("{what} {name:?} has fileUrl {url:?}: {reason}")]
    BadFileUrl { what: &'static str, name: String, url: String, reason: crate::job::s3_uri::AssetUrlError },
    #[error("{what} {name:?} is an EXTERNAL_FILE without a fileUrl")]
    MissingFileUrl { what: &'static str, name: String },
    #[error("{what} {name:?} has assetType {asset_type:?}, which this runtime cannot serve (it serves {served})")]
    UnsupportedAssetType { what: &'static str, name: String, asset_type: String, served: &'static str },
    #[error("{what} {name:?} is a FILE asset with neither fileContent nor fileContentString")]
    EmptyFileAsset { what: &'static str, name: String },
    #[error("{what} {name:?} has a fileContent that is not base64: {reason}")]
    BadFileContent { what: &'static str, name: String, reason: String },
    #[error("the primary source has no function annotated '{annotation}', which a {job_type} job calls")]
    MissingFunction { annotation: String, job_type: JobType },
    #[error("the primary source asset names {field} {name:?}, but the source defines no top-level function of that name")]
    MissingNamedFunction { field: &'static str, name: String },
    #[error("{0}")]
    SubmitParameters(SparkConfError),
    /// The Spark conf (the configuration's `jobExecutionConf` overlaid by the job's `--conf`) sets
    /// dynamic allocation bounds EMR Serverless refuses at deploy.
    #[error("Spark conf (jobExecutionConf overlaid by the job's --conf parameters): {0}")]
    ExecutorBounds(#[from] ExecutorBoundsError),
}

/// Where the primary model source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    Inline(String),
    S3(S3Uri),
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
    /// Functions ModelOp names on the primary asset (`initFunction`, `scoreFunction`, ...).
    pub named_init: Option<String>,
    pub named_job_function: Option<String>,
    pub application_name: String,
    pub execution_role_arn: String,
    pub spark_conf: SparkConf,
    /// `--py-files` / `--files` locations given as job parameters, normalised to `s3://`.
    pub extra_py_files: Vec<String>,
    pub extra_files: Vec<String>,
    /// Job parameters recorded as ignored (`ignoredJobParameters` on the job).
    pub ignored_parameters: Vec<IgnoredParameter>,
    pub log_group: String,
    /// The configured run controls overlaid by the job's own.
    pub run_controls: RunControls,
    /// The run's tags ([`run_tags`]).
    pub tags: BTreeMap<String, String>,
    /// Whether the run gets its own least-privilege policy, and the settings it is built with.
    pub scope: ScopeDecision,
    pub job_permissions: JobPermissionSettings,
    /// The configured EMR region (the run's log group's), if any.
    pub emr_region: Option<String>,
}

impl JobPlan {
    /// Moves the primary source out, for its upload: a large inline source is then held once.
    /// What is left in its place is an empty inline text.
    pub fn take_primary(&mut self) -> SourceLocation {
        std::mem::replace(&mut self.primary, SourceLocation::Inline(String::new()))
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
    let run_controls = submit.run_controls.with_job(&params.run_controls, submit.release)?;
    let scope = decide_scope(&submit.job_permissions, params.scope_permissions.as_deref())?;

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

    let staging_uri = service.staging.job_uri(&job.id);
    let mut assets = AssetStager { staging_uri: &staging_uri, staged: &mut additional };
    let model_assets = assets.model_facing(AssetList::ModelAssets, job.model_assets(), &mut names)?;
    let inputs = assets.model_facing(AssetList::Inputs, &job.input_data, &mut FileNames::default())?;
    let outputs = assets.model_facing(AssetList::Outputs, &job.output_data, &mut FileNames::default())?;

    let submit_file_uris = |parameter: &'static str, values: &[String]| {
        values
            .iter()
            .map(|value| {
                S3Uri::from_asset_url(value, false).map(|u| u.to_string()).map_err(|reason| {
                    ManifestError::JobParameters(SparkConfError::FileLocation { parameter, value: redacted_url(value), reason: reason.to_string() })
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let spark_conf = submit.job_execution_conf.overlaid_by(&params.spark_conf);
    check_executor_bounds(&spark_conf)?;
    let role = job.job_type.model_role();
    Ok(JobPlan {
        job_id: job.id.clone(),
        job_type: job.job_type,
        staging: service.staging.clone(),
        primary: primary_location,
        primary_module,
        additional,
        inputs,
        outputs,
        model_assets,
        model_parameters: params.model_parameters,
        named_init: primary.named_function(ModelRole::Init).map(str::to_string),
        named_job_function: primary.named_function(role).map(str::to_string),
        application_name,
        execution_role_arn,
        spark_conf,
        extra_py_files: submit_file_uris("--py-files", &params.py_files)?,
        extra_files: submit_file_uris("--files", &params.files)?,
        ignored_parameters: params.ignored,
        log_group: service.log_group.clone(),
        run_controls,
        tags: run_tags(job),
        scope,
        job_permissions: submit.job_permissions.clone(),
        emr_region: service.emr_region.clone(),
    })
}

/// The three asset lists of a job, as the model receives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AssetList {
    Inputs,
    Outputs,
    ModelAssets,
}

impl AssetList {
    /// How a message names one of its assets.
    fn what(self) -> &'static str {
        match self {
            AssetList::Inputs => "input",
            AssetList::Outputs => "output",
            AssetList::ModelAssets => "model asset",
        }
    }

    fn served(self) -> &'static str {
        match self {
            AssetList::ModelAssets => "SOURCE_CODE, EXTERNAL_FILE and FILE model assets",
            _ => "EXTERNAL_FILE and FILE assets",
        }
    }
}

/// Turns a job's assets into what the model receives: every `EXTERNAL_FILE` with its `fileUrl`
/// normalised to `s3://` (the original kept as `originalFileUrl`), every `FILE` staged and
/// passed as an `EXTERNAL_FILE` pointing at its staged copy (`originalAssetType: FILE`); all
/// other fields as ModelOp wrote them. Any other asset type is an error naming the asset.
struct AssetStager<'a> {
    staging_uri: &'a str,
    staged: &'a mut Vec<StagedFile>,
}

impl AssetStager<'_> {
    fn model_facing(&mut self, list: AssetList, assets: &[Asset], names: &mut FileNames) -> Result<Vec<Asset>, ManifestError> {
        let what = list.what();
        let mut facing = Vec::new();
        for (position, asset) in assets.iter().enumerate() {
            let name = || printable(&asset.label(position));
            match asset.asset_type.as_deref() {
                Some(ASSET_SOURCE_CODE) if list == AssetList::ModelAssets => continue,
                Some(ASSET_EXTERNAL_FILE) => {
                    let url = asset.file_url.as_deref().ok_or_else(|| ManifestError::MissingFileUrl { what, name: name() })?;
                    let normalised = S3Uri::from_asset_url(url, asset.in_s3_repository())
                        .map_err(|reason| ManifestError::BadFileUrl { what, name: name(), url: redacted_url(url), reason })?
                        .to_string();
                    let mut asset = asset.clone();
                    if normalised != url {
                        asset.other.insert("originalFileUrl".into(), Value::String(url.to_string()));
                        asset.file_url = Some(normalised);
                    }
                    facing.push(asset);
                }
                Some(ASSET_FILE) => facing.push(self.stage_file_asset(list, position, asset, names)?),
                other => {
                    return Err(ManifestError::UnsupportedAssetType {
                        what,
                        name: name(),
                        asset_type: printable(other.unwrap_or("(none)")),
                        served: list.served(),
                    })
                }
            }
        }
        Ok(facing)
    }

    /// A `FILE` asset: its content staged (outputs have none: the model writes there), and the
    /// asset passed as an `EXTERNAL_FILE` at that location.
    fn stage_file_asset(&mut self, list: AssetList, position: usize, asset: &Asset, names: &mut FileNames) -> Result<Asset, ManifestError> {
        let what = list.what();
        let label = asset.label(position);
        let staged_name = names.claim_file(&label);
        let (folder, kind) = match list {
            AssetList::ModelAssets => ("", FileKind::File),
            AssetList::Inputs => (INPUTS_FOLDER, FileKind::Data),
            AssetList::Outputs => (OUTPUTS_FOLDER, FileKind::Data),
        };
        let name = format!("{folder}{staged_name}");
        if list != AssetList::Outputs {
            let content = file_asset_content(asset).map_err(|e| e.naming(what, printable(&label)))?;
            self.staged.push(StagedFile { name: name.clone(), content: FileContent::Bytes(content), kind });
        }
        let mut facing = asset.clone();
        facing.asset_type = Some(ASSET_EXTERNAL_FILE.into());
        facing.file_url = Some(format!("{}{name}", self.staging_uri));
        facing.filename.get_or_insert(staged_name);
        facing.file_content = None;
        facing.file_content_string = None;
        facing.other.remove("localFile");
        facing.other.insert("originalAssetType".into(), Value::String(ASSET_FILE.into()));
        Ok(facing)
    }
}

/// Why a `FILE` asset's content cannot be had; named by the caller.
enum FileContentError {
    Empty,
    NotBase64(String),
}

impl FileContentError {
    fn naming(self, what: &'static str, name: String) -> ManifestError {
        match self {
            FileContentError::Empty => ManifestError::EmptyFileAsset { what, name },
            FileContentError::NotBase64(reason) => ManifestError::BadFileContent { what, name, reason },
        }
    }
}

/// A `FILE` asset's bytes: `fileContent` (base64) when present, else `fileContentString` (text as
/// is; a parsed JSON value written back as JSON).
fn file_asset_content(asset: &Asset) -> Result<Vec<u8>, FileContentError> {
    if let Some(encoded) = asset.file_content.as_deref().filter(|c| !c.is_empty()) {
        let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD.decode(compact).map_err(|e| FileContentError::NotBase64(e.to_string()));
    }
    match &asset.file_content_string {
        Some(Value::String(text)) => Ok(text.clone().into_bytes()),
        Some(Value::Null) | None => Err(FileContentError::Empty),
        Some(parsed) => Ok(serde_json::to_vec_pretty(parsed).unwrap_or_default()),
    }
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
        Some(url) => S3Uri::from_asset_url(url, asset.in_s3_repository()).map(SourceLocation::S3).map_err(|reason| ManifestError::BadFileUrl {
            what: "model asset",
            name: printable(&asset_label(asset)),
            url: redacted_url(url),
            reason,
        }),
        None => Err(ManifestError::EmptySource(printable(&asset_label(asset)))),
    }
}
