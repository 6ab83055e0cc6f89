//! Configuration, read once at cold start: ModelOp's `emr-serverless-cluster` keys plus the
//! table, bucket and log group. Sources, lowest precedence first: the YAML file named by
//! `CONFIG_FILE` (the exact shape of ModelOp's EMR Serverless page), then environment variables. Every value is validated
//! here, so a bad setting fails start-up with a message naming the variable.

use std::collections::BTreeMap;

use crate::launch::job_policy::{self, JobPermissionSettings};
use crate::launch::run_controls::{self, ApplicationSettings, NetworkSettings, ReleaseLabel, RuleViolation, RunControls, SchedulerSettings};
use crate::launch::spark_conf::SparkConf;
use crate::aws::names::{is_application_name, is_bucket_name, is_log_group_name, is_region, is_role_arn, is_table_name};

/// Declares every setting once: its environment variable (a constant of the same name) and, for
/// those ModelOp's YAML carries, its key under `emr-serverless-cluster:`. [`SETTINGS`] is the list
/// the loader reads, so adding a setting is one line here.
macro_rules! settings {
    ($( $(#[$doc:meta])* $var:ident $(yaml $key:literal)? ; )*) => {
        $( $(#[$doc])* pub const $var: &str = stringify!($var); )*
        /// Every setting, in declaration order.
        pub const SETTINGS: &[Setting] = &[ $( Setting { var: $var, yaml_key: settings!(@key $($key)?) } ),* ];
    };
    (@key $key:literal) => { Some($key) };
    (@key) => { None };
}

/// One setting: the environment variable, and its key in ModelOp's YAML if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub var: &'static str,
    pub yaml_key: Option<&'static str>,
}

settings! {
    JOBS_TABLE;
    STAGING_BUCKET;
    STAGING_PREFIX;
    EMR_DEFAULT_APP_NAME yaml "defaultAppName";
    EMR_RELEASE_VERSION yaml "releaseVersion";
    EMR_REGION yaml "region";
    EMR_MAIN_ROLE_ARN yaml "mainEmrServerlessRoleArn";
    EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN yaml "defaultJobExecutionRoleArn";
    /// A JSON object of Spark properties; in the YAML, the `jobExecutionConf` map.
    EMR_JOB_EXECUTION_CONF yaml "jobExecutionConf";
    EMR_LOG_GROUP;
    EMR_APP_IDLE_TIMEOUT_MINUTES;
    SUBMIT_MAX_CONCURRENCY;
    S3_FORCE_PATH_STYLE;
    CLEANUP_MAX_CONCURRENCY;
    CLEANUP_ORPHAN_MIN_AGE_HOURS;
    MONITOR_LOG_TAIL_BYTES;
    MONITOR_RESULT_MAX_BYTES;
    MONITOR_SWEEP_MIN_AGE_MINUTES;
    MONITOR_STUCK_WAITING_MINUTES;
    MONITOR_MAX_CONCURRENCY;
    /// Run controls ([`crate::launch::run_controls`]): StartJobRun `executionTimeoutMinutes` (minutes).
    EMR_EXECUTION_TIMEOUT_MINUTES yaml "executionTimeoutMinutes";
    /// StartJobRun `retryPolicy.maxAttempts`.
    EMR_MAX_ATTEMPTS yaml "maxAttempts";
    /// CancelJobRun `shutdownGracePeriodInSeconds` (seconds), for submit's and cleanup's cancels.
    EMR_CANCEL_GRACE_PERIOD_SECONDS yaml "cancelGracePeriodSeconds";
    /// CreateApplication `schedulerConfiguration.maxConcurrentRuns`.
    EMR_APP_MAX_CONCURRENT_RUNS yaml "appMaxConcurrentRuns";
    /// CreateApplication `schedulerConfiguration.queueTimeoutMinutes` (minutes).
    EMR_APP_QUEUE_TIMEOUT_MINUTES yaml "appQueueTimeoutMinutes";
    /// CreateApplication `maximumCapacity`: `"<cpu>, <memory>[, <disk>]"`.
    EMR_APP_MAXIMUM_CAPACITY yaml "appMaximumCapacity";
    /// CreateApplication `architecture`: `X86_64` or `ARM64`.
    EMR_APP_ARCHITECTURE yaml "appArchitecture";
    /// CreateApplication `networkConfiguration.subnetIds`, comma-separated (a YAML list too).
    EMR_APP_SUBNET_IDS yaml "appSubnetIds";
    /// CreateApplication `networkConfiguration.securityGroupIds`, comma-separated (a YAML list too).
    EMR_APP_SECURITY_GROUP_IDS yaml "appSecurityGroupIds";
    /// CreateApplication `jobLevelCostAllocationConfiguration.enabled` (`true`/`false`, default true).
    EMR_APP_JOB_LEVEL_COST_ALLOCATION yaml "appJobLevelCostAllocation";
    /// Unit prices jobs' runs are priced at ([`crate::outcome::cost::PriceTable::parse`]); the built-in
    /// table when unset.
    EMR_PRICES;
    /// How long after its end a job's usage is still re-read until it is final (hours).
    MONITOR_USAGE_SWEEP_HOURS;
    /// GetLogEvents calls a second the sweep's logs pass makes at most: its share of the account's
    /// GetLogEvents quota, which every reader in the account shares and which cannot be raised.
    MONITOR_LOG_READS_PER_SECOND;
    /// How a failure summary names where the run's Python and programs come from, in place of
    /// "the Spark image" (EMR Serverless's release image): for the local stack, or a deployment
    /// whose runs use a custom image. Not set by the deployment.
    MONITOR_SPARK_ENVIRONMENT_NAME;
    /// Per-job least privilege ([`crate::launch::job_policy`]): whether runs get their own session policy
    /// (`true`/`false`, default true).
    EMR_SCOPE_JOB_PERMISSIONS yaml "scopeJobPermissions";
    /// Whether a job may opt out with `--conf modelop.serverless.job.scope.permissions false`
    /// (`true`/`false`, default false).
    EMR_ALLOW_UNSCOPED_JOBS yaml "allowUnscopedJobs";
    /// Managed policy ARNs sent as `policyArns` with every scoped run: comma-separated (a YAML
    /// list too), at most 10.
    EMR_JOB_POLICY_ARNS yaml "jobPolicyArns";
    /// Statements appended to every scoped run's policy: a JSON array of IAM statements (or one).
    EMR_JOB_EXTRA_POLICY_STATEMENTS;
    /// The bridge to ModelOp Center ([`BridgeConfig`]): the gateway model-manage is reached through
    /// (`<gateway>/model-manage/api`); the bridge is off without it.
    MODELOP_GATEWAY_URL yaml "modelopGatewayUrl";
    /// The OAuth2 token endpoint of the customer's identity provider (client credentials grant).
    MODELOP_TOKEN_URL yaml "modelopTokenUrl";
    /// The OAuth2 client id (default `internal-client`, ModelOp's service client).
    MODELOP_CLIENT_ID yaml "modelopClientId";
    /// The Secrets Manager secret holding the client secret (the secret itself, or JSON with `client_secret`).
    MODELOP_CLIENT_SECRET_ARN yaml "modelopClientSecretArn";
    /// The OAuth2 scope asked for (default `modelop_client`; on Cognito `rs/modelop_client`).
    MODELOP_SCOPE yaml "modelopScope";
    /// `targetEngine.engineType` values of the jobs the bridge takes, comma-separated (a YAML list too).
    MODELOP_ENGINE_TYPES yaml "modelopEngineTypes";
    /// When set, only jobs whose `targetEngine.name` is this runtime's name.
    MODELOP_RUNTIME_NAME yaml "modelopRuntimeName";
    /// Seconds between two polls of model-manage within one scheduled invocation.
    MODELOP_POLL_SECONDS yaml "modelopPollSeconds";
    /// The model-manage job field the EMR Serverless run id is written to; unset: a `jobMessages` line.
    MODELOP_RUN_ID_FIELD yaml "modelopRunIdField";
    /// The model-manage finder (`/jobs/search/<name>`) that lists jobs by status; unset: discovered.
    MODELOP_JOB_FINDER yaml "modelopJobFinder";
    /// The path of one job under model-manage's API, with `{id}` (default `jobs/{id}`).
    MODELOP_JOB_ITEM_PATH yaml "modelopJobItemPath";
    /// The `outputData` FILE asset a test job's result is written back as (default
    /// `test_result.json`); `-`: not written back.
    MODELOP_TEST_RESULT_ASSET yaml "modelopTestResultAsset";
    /// The YAML file itself (ModelOp's `emr-serverless-cluster:` shape).
    CONFIG_FILE;
}

pub const DEFAULT_STAGING_PREFIX: &str = "modelop-spark-serverless/";
pub const DEFAULT_LOG_GROUP: &str = "/aws/emr-serverless";
pub const DEFAULT_APP_IDLE_TIMEOUT_MINUTES: u32 = 15;
/// As many as Lambda's largest default stream batch (100): a batch runs in one wave.
pub const DEFAULT_SUBMIT_MAX_CONCURRENCY: usize = 100;
pub const DEFAULT_CLEANUP_MAX_CONCURRENCY: usize = 16;
pub const DEFAULT_CLEANUP_ORPHAN_MIN_AGE_HOURS: u32 = 24;
/// A year: a longer minimum age would leave the sweep with nothing to do before the lifecycle rule.
const MAX_CLEANUP_ORPHAN_MIN_AGE_HOURS: u32 = 8_760;
/// Per driver stream (stdout, stderr): two tails and the result stay far below DynamoDB's 400 KB.
pub const DEFAULT_MONITOR_LOG_TAIL_BYTES: usize = 16 * 1024;
const MAX_MONITOR_LOG_TAIL_BYTES: usize = 100 * 1024;
pub const DEFAULT_MONITOR_RESULT_MAX_BYTES: usize = 64 * 1024;
const MAX_MONITOR_RESULT_MAX_BYTES: usize = 150 * 1024;
pub const DEFAULT_MONITOR_SWEEP_MIN_AGE_MINUTES: u32 = 10;
pub const DEFAULT_MONITOR_STUCK_WAITING_MINUTES: u32 = 480;
pub const DEFAULT_MONITOR_MAX_CONCURRENCY: usize = 16;
/// EMR Serverless sends the final utilization event soon after a run ends; a day is ample.
pub const DEFAULT_MONITOR_USAGE_SWEEP_HOURS: u32 = 24;
pub const DEFAULT_MONITOR_LOG_READS_PER_SECOND: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration error: {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("configuration error: CONFIG_FILE {path}: {reason}")]
    File { path: String, reason: String },
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { var, reason: reason.into() }
}

/// Where jobs' files are staged: `s3://<bucket>/<prefix><job id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingLocation {
    pub bucket: String,
    /// Empty, or ends with '/'; never starts with '/'.
    pub prefix: String,
}

impl StagingLocation {
    /// The key prefix of one job's staging folder; the id must have passed `validate_job_id`.
    pub fn job_prefix(&self, job_id: &str) -> String {
        format!("{}{}/", self.prefix, job_id)
    }

    /// The whole staging location, `s3://<bucket>/<prefix>`.
    pub fn uri(&self) -> crate::job::s3_uri::S3Uri {
        crate::job::s3_uri::S3Uri { bucket: self.bucket.clone(), key: self.prefix.clone() }
    }

    pub fn job_uri(&self, job_id: &str) -> String {
        crate::job::s3_uri::S3Uri { bucket: self.bucket.clone(), key: self.job_prefix(job_id) }.to_string()
    }
}

/// Settings every function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub jobs_table: String,
    pub staging: StagingLocation,
    /// Region of the EMR Serverless applications and their logs; `None` means the Lambda's own.
    pub emr_region: Option<String>,
    /// When set, EMR Serverless and CloudWatch Logs calls use credentials of this assumed role.
    pub main_role_arn: Option<String>,
    pub log_group: String,
    /// Path-style S3 addressing, for S3-compatible endpoints and local emulators.
    pub s3_force_path_style: bool,
}

/// Settings of the submit function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitConfig {
    pub default_app_name: String,
    /// The release label as configured, sent to CreateApplication.
    pub release_version: String,
    /// The same label as a version, for the run controls' release gates.
    pub release: ReleaseLabel,
    /// The run controls of every run before the job's own parameters, and its cancels' grace period.
    pub run_controls: RunControls,
    /// The settings of the applications this service creates.
    pub application_settings: ApplicationSettings,
    pub default_job_execution_role_arn: String,
    pub job_execution_conf: SparkConf,
    pub app_idle_timeout_minutes: u32,
    pub max_concurrency: usize,
    /// Per-job least privilege: scoping, opt-out, managed policies and extra statements.
    pub job_permissions: JobPermissionSettings,
}

/// Settings of the cleanup function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupConfig {
    /// Stream records (and swept folders) handled concurrently.
    pub max_concurrency: usize,
    /// The sweep deletes a folder only when its newest object is at least this old.
    pub orphan_min_age: chrono::Duration,
    /// CancelJobRun `shutdownGracePeriodInSeconds` of a user's cancel (0: at once).
    pub cancel_grace_period_seconds: u32,
}

/// Settings of the monitor function.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// The tail of each driver log stream kept on the job.
    pub log_tail_bytes: usize,
    /// The largest model result stored on the job; larger ones are stored as a pointer.
    pub result_max_bytes: usize,
    /// The sweep asks EMR about WAITING/RUNNING jobs not updated for this long.
    pub sweep_min_age: chrono::Duration,
    /// A WAITING job without a run for this long is ended in ERROR by the sweep. Keep it above
    /// the submit stream's maximum record age, so a pending retry is never pre-empted.
    pub stuck_waiting_age: chrono::Duration,
    pub max_concurrency: usize,
    /// The sweep re-reads the run of a job that ended within this long and whose
    /// `resourceUsage` is not final yet.
    pub usage_sweep_window: chrono::Duration,
    /// `MONITOR_LOG_READS_PER_SECOND`: the pace of the sweep's log reads (1-1000 a second).
    pub log_reads_per_second: u32,
    /// `EMR_PRICES` over the built-in prices.
    pub prices: crate::outcome::cost::PriceTable,
    /// The region runs are priced in: the EMR Serverless client's (`EMR_REGION`, else the
    /// function's `AWS_REGION`); set at cold start from the client ([`crate::aws::clients::AwsClients`]).
    pub region: Option<String>,
    /// `MONITOR_SPARK_ENVIRONMENT_NAME`: how a missing-dependency failure names where the run's
    /// Python comes from ([`crate::outcome::failure::Failure::naming_spark_environment`]); `None`:
    /// the Spark image.
    pub spark_environment_name: Option<String>,
}

/// The raw settings, YAML file overlaid by the environment, keyed by environment variable name.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
}

impl Settings {
    /// Reads `CONFIG_FILE` (if set) and the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::load(|name| std::env::var(name).ok(), |path| std::fs::read_to_string(path))
    }

    /// The same, with the environment and the file system given, for tests.
    pub fn load(
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        if let Some(path) = env(CONFIG_FILE).filter(|p| !p.trim().is_empty()) {
            let text = read_file(&path).map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
            settings.values = parse_modelop_yaml(&text).map_err(|reason| ConfigError::File { path, reason })?;
        }
        for setting in SETTINGS.iter().filter(|s| s.var != CONFIG_FILE) {
            if let Some(value) = env(setting.var) {
                settings.values.insert(setting.var, value);
            }
        }
        Ok(settings)
    }

    fn get(&self, var: &'static str) -> Option<&str> {
        self.values.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<&str, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing(var))
    }

    /// A set variable checked by one of the [`run_controls`] rules; `None` when unset.
    fn checked<T>(&self, var: &'static str, rule: impl FnOnce(&str) -> Result<T, RuleViolation>) -> Result<Option<T>, ConfigError> {
        self.get(var).map(|raw| rule(raw).map_err(|violation| invalid(var, violation.to_string()))).transpose()
    }

    /// A set variable checked by a rule whose error names the value and the rule; `None` when unset.
    fn checked_by(&self, var: &'static str, rule: impl FnOnce(&str) -> Result<(), String>) -> Result<Option<String>, ConfigError> {
        self.get(var).map(|raw| rule(raw).map(|()| raw.to_string()).map_err(|reason| invalid(var, reason))).transpose()
    }

    fn parsed<T: std::str::FromStr>(&self, var: &'static str, default: T, valid: impl Fn(&T) -> bool) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<T>()
                .ok()
                .filter(|v| valid(v))
                .ok_or_else(|| invalid(var, format!("{raw:?} is not an accepted value"))),
        }
    }

    pub fn service(&self) -> Result<ServiceConfig, ConfigError> {
        let jobs_table = self.required(JOBS_TABLE)?.to_string();
        if !is_table_name(&jobs_table) {
            return Err(invalid(JOBS_TABLE, "a DynamoDB table name is 3-255 characters of [A-Za-z0-9_.-]"));
        }
        let bucket = self.required(STAGING_BUCKET)?.to_string();
        if !is_bucket_name(&bucket) {
            return Err(invalid(STAGING_BUCKET, format!("{bucket:?} is not a valid S3 bucket name")));
        }
        let prefix = normalize_prefix(self.get(STAGING_PREFIX).unwrap_or(DEFAULT_STAGING_PREFIX))?;
        let emr_region = self.get(EMR_REGION).map(str::to_string);
        if let Some(region) = &emr_region {
            if !is_region(region) {
                return Err(invalid(EMR_REGION, format!("{region:?} is not an AWS region name such as us-east-1")));
            }
        }
        let main_role_arn = self.get(EMR_MAIN_ROLE_ARN).map(str::to_string);
        if let Some(arn) = &main_role_arn {
            check_role_arn(EMR_MAIN_ROLE_ARN, arn)?;
        }
        let log_group = self.get(EMR_LOG_GROUP).unwrap_or(DEFAULT_LOG_GROUP).to_string();
        if !is_log_group_name(&log_group) {
            return Err(invalid(EMR_LOG_GROUP, "a log group name is 1-512 characters of [A-Za-z0-9._/#-]"));
        }
        let s3_force_path_style = self.parsed(S3_FORCE_PATH_STYLE, false, |_| true)?;
        Ok(ServiceConfig {
            jobs_table,
            staging: StagingLocation { bucket, prefix },
            emr_region,
            main_role_arn,
            log_group,
            s3_force_path_style,
        })
    }

    pub fn submit(&self) -> Result<SubmitConfig, ConfigError> {
        let default_app_name = self.required(EMR_DEFAULT_APP_NAME)?.to_string();
        if !is_application_name(&default_app_name) {
            return Err(invalid(EMR_DEFAULT_APP_NAME, "an EMR Serverless application name is 1-64 characters of [A-Za-z0-9._/#-]"));
        }
        let release_version = self.required(EMR_RELEASE_VERSION)?.to_string();
        let release = parse_release(&release_version)?;
        let default_job_execution_role_arn = self.required(EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN)?.to_string();
        check_role_arn(EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN, &default_job_execution_role_arn)?;
        let job_execution_conf = match self.get(EMR_JOB_EXECUTION_CONF) {
            None => SparkConf::default(),
            Some(raw) => parse_conf_json(raw)?,
        };
        let run_controls = RunControls::configured(
            self.checked(EMR_EXECUTION_TIMEOUT_MINUTES, |raw| run_controls::execution_timeout_minutes(raw, release))?,
            self.checked(EMR_MAX_ATTEMPTS, |raw| run_controls::max_attempts(raw, release))?,
            self.checked(EMR_CANCEL_GRACE_PERIOD_SECONDS, |raw| run_controls::cancel_grace_period_seconds(raw, Some(release)))?,
        );
        let scheduler = SchedulerSettings {
            max_concurrent_runs: self.checked(EMR_APP_MAX_CONCURRENT_RUNS, |raw| run_controls::max_concurrent_runs(raw, release))?,
            queue_timeout_minutes: self.checked(EMR_APP_QUEUE_TIMEOUT_MINUTES, |raw| run_controls::queue_timeout_minutes(raw, release))?,
        };
        let subnet_ids = self.checked(EMR_APP_SUBNET_IDS, run_controls::subnet_ids)?;
        let security_group_ids = self.checked(EMR_APP_SECURITY_GROUP_IDS, run_controls::security_group_ids)?;
        let application_settings = ApplicationSettings {
            scheduler: (scheduler != SchedulerSettings::default()).then_some(scheduler),
            maximum_capacity: self.checked(EMR_APP_MAXIMUM_CAPACITY, run_controls::maximum_capacity)?,
            architecture: self.checked(EMR_APP_ARCHITECTURE, run_controls::architecture)?,
            job_level_cost_allocation: self.parsed(EMR_APP_JOB_LEVEL_COST_ALLOCATION, true, |_| true)?,
            network: (subnet_ids.is_some() || security_group_ids.is_some()).then(|| NetworkSettings {
                subnet_ids: subnet_ids.unwrap_or_default(),
                security_group_ids: security_group_ids.unwrap_or_default(),
            }),
        };
        Ok(SubmitConfig {
            default_app_name,
            release_version,
            release,
            run_controls,
            application_settings,
            default_job_execution_role_arn,
            job_execution_conf,
            app_idle_timeout_minutes: self.parsed(EMR_APP_IDLE_TIMEOUT_MINUTES, DEFAULT_APP_IDLE_TIMEOUT_MINUTES, |m| (1..=10_080).contains(m))?,
            max_concurrency: self.parsed(SUBMIT_MAX_CONCURRENCY, DEFAULT_SUBMIT_MAX_CONCURRENCY, |n| (1..=1000).contains(n))?,
            job_permissions: JobPermissionSettings {
                scope_by_default: self.parsed(EMR_SCOPE_JOB_PERMISSIONS, true, |_| true)?,
                allow_unscoped: self.parsed(EMR_ALLOW_UNSCOPED_JOBS, false, |_| true)?,
                policy_arns: self.checked(EMR_JOB_POLICY_ARNS, job_policy::policy_arns)?.unwrap_or_default(),
                extra_statements: self.checked(EMR_JOB_EXTRA_POLICY_STATEMENTS, job_policy::extra_statements)?.unwrap_or_default(),
            },
        })
    }

    pub fn cleanup(&self) -> Result<CleanupConfig, ConfigError> {
        let hours = self.parsed(CLEANUP_ORPHAN_MIN_AGE_HOURS, DEFAULT_CLEANUP_ORPHAN_MIN_AGE_HOURS, |h| *h <= MAX_CLEANUP_ORPHAN_MIN_AGE_HOURS)?;
        // Optional here: only a grace period needs the release (its gate).
        let release = self.get(EMR_RELEASE_VERSION).map(parse_release).transpose()?;
        let grace = self.checked(EMR_CANCEL_GRACE_PERIOD_SECONDS, |raw| run_controls::cancel_grace_period_seconds(raw, release))?;
        Ok(CleanupConfig {
            max_concurrency: self.parsed(CLEANUP_MAX_CONCURRENCY, DEFAULT_CLEANUP_MAX_CONCURRENCY, |n| (1..=1000).contains(n))?,
            orphan_min_age: chrono::Duration::hours(i64::from(hours)),
            cancel_grace_period_seconds: grace.unwrap_or(run_controls::DEFAULT_CANCEL_GRACE_PERIOD_SECONDS),
        })
    }
}

impl Settings {
    pub fn monitor(&self) -> Result<MonitorConfig, ConfigError> {
        let sweep = self.parsed(MONITOR_SWEEP_MIN_AGE_MINUTES, DEFAULT_MONITOR_SWEEP_MIN_AGE_MINUTES, |m| *m <= 10_080)?;
        let stuck = self.parsed(MONITOR_STUCK_WAITING_MINUTES, DEFAULT_MONITOR_STUCK_WAITING_MINUTES, |m| (1..=43_200).contains(m))?;
        Ok(MonitorConfig {
            log_tail_bytes: self.parsed(MONITOR_LOG_TAIL_BYTES, DEFAULT_MONITOR_LOG_TAIL_BYTES, |b| (1..=MAX_MONITOR_LOG_TAIL_BYTES).contains(b))?,
            result_max_bytes: self.parsed(MONITOR_RESULT_MAX_BYTES, DEFAULT_MONITOR_RESULT_MAX_BYTES, |b| (1..=MAX_MONITOR_RESULT_MAX_BYTES).contains(b))?,
            sweep_min_age: chrono::Duration::minutes(i64::from(sweep)),
            stuck_waiting_age: chrono::Duration::minutes(i64::from(stuck)),
            max_concurrency: self.parsed(MONITOR_MAX_CONCURRENCY, DEFAULT_MONITOR_MAX_CONCURRENCY, |n| (1..=1000).contains(n))?,
            usage_sweep_window: chrono::Duration::hours(i64::from(self.parsed(MONITOR_USAGE_SWEEP_HOURS, DEFAULT_MONITOR_USAGE_SWEEP_HOURS, |h| (1..=720).contains(h))?)),
            log_reads_per_second: self.parsed(MONITOR_LOG_READS_PER_SECOND, DEFAULT_MONITOR_LOG_READS_PER_SECOND, |n| (1..=1000).contains(n))?,
            prices: match self.get(EMR_PRICES) {
                None => crate::outcome::cost::PriceTable::default(),
                Some(raw) => crate::outcome::cost::PriceTable::parse(raw).map_err(|reason| invalid(EMR_PRICES, reason))?,
            },
            region: self.get(EMR_REGION).map(str::to_string),
            spark_environment_name: self.get(MONITOR_SPARK_ENVIRONMENT_NAME).map(crate::text::printable),
        })
    }
}

/// ModelOp's service client (ModelOp docs, "Amazon Cognito"/"Okta"/"PingFederate" pages: `internal-client`).
pub const DEFAULT_MODELOP_CLIENT_ID: &str = "internal-client";
/// The scope ModelOp's service client asks for (same pages; Cognito names it `rs/modelop_client`).
pub const DEFAULT_MODELOP_SCOPE: &str = "modelop_client";
/// The engine type ModelOp's EMR Serverless page names ("SPARK_SERVERLESS_RUNTIME as the runtime type").
pub const DEFAULT_MODELOP_ENGINE_TYPES: &str = crate::job::record::SPARK_SERVERLESS_RUNTIME;
/// The issue's latency goal: a job created in ModelOp is launched within this many seconds.
pub const DEFAULT_MODELOP_POLL_SECONDS: u32 = 10;
/// The path of one job under model-manage's API (assumed: Spring Data REST's item resource of the
/// `jobs` collection that `POST …/model-manage/api/jobs` creates into; model-manage's own path for
/// one job is not public, and stored jobs link to per-type paths such as `modelBatchTestJob/{id}`).
pub const DEFAULT_MODELOP_JOB_ITEM_PATH: &str = "jobs/{id}";
/// The name of the inline `FILE` output asset a stored MODEL_BATCH_TEST_JOB carries its result in
/// (`modelop/lab-dashboard` `example_job.json`: `outputData[0]` is `test_result.json`, `fileFormat`
/// `JSON`, base64 `fileContent`). Assumed: that ModelOp's own runtimes put every test result there.
pub const DEFAULT_MODELOP_TEST_RESULT_ASSET: &str = "test_result.json";
/// The longest `MODELOP_RUNTIME_NAME`, in characters (the stacks' `ModelOpRuntimeName` parameter
/// allows the same: `^[!-~ ]{0,256}$`).
pub const MAX_MODELOP_RUNTIME_NAME_CHARS: usize = 256;
/// model-manage's REST root under the gateway (`POST <gateway>/model-manage/api/jobs` in
/// `modelop/titanic-spark` `job_submit/submit.py`).
pub const MODEL_MANAGE_API_PATH: &str = "model-manage/api";

/// Settings of the bridge to ModelOp Center's model-manage (`functions/bridge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// `<gateway>/model-manage/api/`, with a trailing `/` so relative paths join under it.
    pub api_base: url::Url,
    /// The OAuth2 token endpoint.
    pub token_url: url::Url,
    pub client_id: String,
    /// The ARN (or name) of the Secrets Manager secret with the client secret.
    pub client_secret_arn: String,
    /// The scope asked for; `None` when set to `-` (the identity provider's default).
    pub scope: Option<String>,
    /// `targetEngine.engineType` values the bridge takes (at least one).
    pub engine_types: Vec<String>,
    /// Only jobs whose `targetEngine.name` equals it, when set.
    pub runtime_name: Option<String>,
    /// Between two polls within one scheduled invocation.
    pub poll_interval: std::time::Duration,
    /// The model-manage field the run id is written to; `None`: a `jobMessages` line.
    pub run_id_field: Option<String>,
    /// The finder of jobs by status; `None`: discovered from `GET …/jobs/search`.
    pub job_finder: Option<String>,
    /// The path of one job under [`Self::api_base`]: segments, one of them `{id}`.
    pub job_item_path: JobItemPath,
    /// The name of the `FILE` output asset a test job's result goes to; `None`: not written back.
    pub test_result_asset: Option<String>,
}

/// `MODELOP_JOB_ITEM_PATH` parsed: path segments under model-manage's API, exactly one of them
/// `{id}` (the job's id goes there, percent-encoded as a segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobItemPath {
    segments: Vec<String>,
}

impl JobItemPath {
    /// The placeholder the job's id replaces.
    pub const ID: &'static str = "{id}";

    /// Parses `collection/{id}`-like templates. Errors name the rule broken.
    pub fn parse(template: &str) -> Result<JobItemPath, String> {
        let segments: Vec<String> = template.trim_matches('/').split('/').map(str::to_string).collect();
        if segments.iter().filter(|s| s.as_str() == Self::ID).count() != 1 {
            return Err(format!("{:?} must hold {} exactly once, as a whole segment", crate::text::printable(template), Self::ID));
        }
        if let Some(bad) = segments.iter().find(|s| s.as_str() != Self::ID && (s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) || s.as_str() == "." || s.as_str() == "..")) {
            return Err(format!("segment {:?} of {:?}: segments are [A-Za-z0-9_.-]+ (not . or ..) or {}", crate::text::printable(bad), crate::text::printable(template), Self::ID));
        }
        Ok(JobItemPath { segments })
    }

    /// The segments for one job (`["jobs", "<id>"]` with the default).
    pub fn for_job<'a>(&'a self, job_id: &'a str) -> Vec<&'a str> {
        self.segments.iter().map(|s| if s == Self::ID { job_id } else { s.as_str() }).collect()
    }
}

impl Default for JobItemPath {
    fn default() -> Self {
        JobItemPath::parse(DEFAULT_MODELOP_JOB_ITEM_PATH).expect("the default item path is valid")
    }
}

/// The rule of `MODELOP_RUNTIME_NAME`: the name of one ModelOp runtime as a job's
/// `targetEngine.name` holds it (`spark-serverless-runtime-1` in `events/` and the demo),
/// compared exactly, so a name no runtime can have would silently match no job: 1 to
/// [`MAX_MODELOP_RUNTIME_NAME_CHARS`] characters, each printable ASCII or a space, not starting or
/// ending with a space (the stacks' parameter takes the same characters; a setting's value is read
/// trimmed, and an empty one means any runtime). `Err` names the value and the rule.
pub fn check_runtime_name(name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.chars().count() <= MAX_MODELOP_RUNTIME_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !name.starts_with(' ')
        && !name.ends_with(' ');
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{:?}: a runtime name (targetEngine.name) is 1-{MAX_MODELOP_RUNTIME_NAME_CHARS} characters, each printable ASCII or a space, with no space at either end",
            crate::text::printable(name)
        ))
    }
}

/// Fields a run id may never be written to: ModelOp's own, and the ones the bridge writes.
const RESERVED_RUN_ID_FIELDS: &[&str] = &[
    "id", "version", "jobType", "jobStatus", "jobResult", "jobMessages", "jobWaitTime", "jobRunTime", "jobEndTime",
    "lastUpdateFromRuntime", "createdDate", "createdBy", "lastModifiedDate", "lastModifiedBy", "model", "inputData",
    "outputData", "jobParameters", "targetEngine", "runtimeType",
];

impl Settings {
    /// Whether the bridge is configured at all (`MODELOP_GATEWAY_URL` set).
    pub fn bridge_enabled(&self) -> bool {
        self.get(MODELOP_GATEWAY_URL).is_some()
    }

    /// The bridge's settings; `MODELOP_GATEWAY_URL`, `MODELOP_TOKEN_URL` and
    /// `MODELOP_CLIENT_SECRET_ARN` are required.
    pub fn bridge(&self) -> Result<BridgeConfig, ConfigError> {
        let http_url = |var: &'static str| -> Result<url::Url, ConfigError> {
            let raw = self.required(var)?;
            let parsed = url::Url::parse(raw).map_err(|e| invalid(var, format!("{:?} is not a URL: {e}", crate::text::printable(raw))))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(invalid(var, "an http(s) URL with a host is expected"));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
                return Err(invalid(var, "the URL must carry no user info and no query"));
            }
            Ok(parsed)
        };
        let mut gateway = http_url(MODELOP_GATEWAY_URL)?;
        if !gateway.path().ends_with('/') {
            gateway.set_path(&format!("{}/", gateway.path()));
        }
        let api_base = gateway.join(&format!("{MODEL_MANAGE_API_PATH}/")).map_err(|e| invalid(MODELOP_GATEWAY_URL, e.to_string()))?;
        let token_url = http_url(MODELOP_TOKEN_URL)?;
        let client_id = self.get(MODELOP_CLIENT_ID).unwrap_or(DEFAULT_MODELOP_CLIENT_ID).to_string();
        if client_id.chars().any(|c| c.is_control()) || client_id.len() > 256 {
            return Err(invalid(MODELOP_CLIENT_ID, "at most 256 characters, no control characters"));
        }
        let client_secret_arn = self.required(MODELOP_CLIENT_SECRET_ARN)?.to_string();
        if !(client_secret_arn.starts_with("arn:") && client_secret_arn.contains(":secretsmanager:") && client_secret_arn.contains(":secret:")) {
            return Err(invalid(MODELOP_CLIENT_SECRET_ARN, "a Secrets Manager secret ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>) is expected"));
        }
        let scope = match self.get(MODELOP_SCOPE).unwrap_or(DEFAULT_MODELOP_SCOPE) {
            "-" => None,
            scope if scope.chars().all(|c| c.is_ascii_graphic() || c == ' ') => Some(scope.to_string()),
            _ => return Err(invalid(MODELOP_SCOPE, "scope tokens are printable ASCII separated by spaces")),
        };
        let engine_types: Vec<String> = self
            .get(MODELOP_ENGINE_TYPES)
            .unwrap_or(DEFAULT_MODELOP_ENGINE_TYPES)
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if engine_types.is_empty() || engine_types.iter().any(|t| !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
            return Err(invalid(MODELOP_ENGINE_TYPES, "one or more engine types of [A-Za-z0-9_.-], comma-separated"));
        }
        let poll = self.parsed(MODELOP_POLL_SECONDS, DEFAULT_MODELOP_POLL_SECONDS, |s| (1..=300).contains(s))?;
        let identifier = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match self.get(var) {
                None => Ok(None),
                Some(name) if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && name.len() <= 128 => Ok(Some(name.to_string())),
                Some(name) => Err(invalid(var, format!("{:?} is not a field or finder name ([A-Za-z_][A-Za-z0-9_]*)", crate::text::printable(name)))),
            }
        };
        let run_id_field = identifier(MODELOP_RUN_ID_FIELD)?;
        if let Some(field) = run_id_field.as_deref().filter(|f| RESERVED_RUN_ID_FIELDS.contains(f)) {
            return Err(invalid(MODELOP_RUN_ID_FIELD, format!("{field} is a field ModelOp or the bridge already writes")));
        }
        Ok(BridgeConfig {
            api_base,
            token_url,
            client_id,
            client_secret_arn,
            scope,
            engine_types,
            runtime_name: self.checked_by(MODELOP_RUNTIME_NAME, check_runtime_name)?,
            poll_interval: std::time::Duration::from_secs(u64::from(poll)),
            run_id_field,
            job_finder: identifier(MODELOP_JOB_FINDER)?,
            job_item_path: JobItemPath::parse(self.get(MODELOP_JOB_ITEM_PATH).unwrap_or(DEFAULT_MODELOP_JOB_ITEM_PATH)).map_err(|m| invalid(MODELOP_JOB_ITEM_PATH, m))?,
            test_result_asset: match self.get(MODELOP_TEST_RESULT_ASSET).unwrap_or(DEFAULT_MODELOP_TEST_RESULT_ASSET) {
                "-" => None,
                name if !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control) => Some(name.to_string()),
                _ => return Err(invalid(MODELOP_TEST_RESULT_ASSET, "an asset name of 1-256 characters without control characters, or - (not written back)")),
            },
        })
    }
}

/// ModelOp's YAML (`emr-serverless-cluster:` with camelCase keys and a `jobExecutionConf` map),
/// keyed by the settings' variables. An unknown key or a value of the wrong shape is an error
/// naming its path.
fn parse_modelop_yaml(text: &str) -> Result<BTreeMap<&'static str, String>, String> {
    const ROOT: &str = "emr-serverless-cluster";
    let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let cluster = match document.get(ROOT) {
        Some(serde_yaml_ng::Value::Mapping(cluster)) => cluster,
        Some(_) => return Err(format!("{ROOT} must be a map of settings")),
        None => return Err(format!("not in the {ROOT} shape: no {ROOT} key")),
    };
    let mut values = BTreeMap::new();
    for (key, value) in cluster {
        let key = key.as_str().ok_or_else(|| format!("{ROOT}: keys must be strings"))?;
        let setting = SETTINGS
            .iter()
            .find(|s| s.yaml_key == Some(key))
            .ok_or_else(|| format!("{ROOT}.{key}: unknown field (known: {})", SETTINGS.iter().filter_map(|s| s.yaml_key).collect::<Vec<_>>().join(", ")))?;
        let text = if setting.var == EMR_JOB_EXECUTION_CONF {
            let serde_yaml_ng::Value::Mapping(conf) = value else {
                return Err(format!("{ROOT}.{key} must be a map of Spark properties"));
            };
            let mut json = serde_json::Map::new();
            for (name, value) in conf {
                let name = name.as_str().ok_or_else(|| format!("{ROOT}.{key}: property names must be strings"))?;
                let value = yaml_scalar(value).ok_or_else(|| format!("jobExecutionConf.{name} must be a string, number or boolean"))?;
                json.insert(name.to_string(), serde_json::Value::String(value));
            }
            serde_json::Value::Object(json).to_string()
        } else if value.is_null() {
            continue;
        } else if let serde_yaml_ng::Value::Sequence(items) = value {
            // A list (subnet or security group ids) is read as its comma-separated text.
            let items: Option<Vec<String>> = items.iter().map(yaml_scalar).collect();
            items.ok_or_else(|| format!("{ROOT}.{key} must be a list of strings"))?.join(",")
        } else {
            yaml_scalar(value).ok_or_else(|| format!("{ROOT}.{key} must be a string"))?
        };
        values.insert(setting.var, text);
    }
    Ok(values)
}

fn yaml_scalar(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `EMR_JOB_EXECUTION_CONF`: a JSON object of Spark properties; numbers and booleans are accepted
/// and passed as their text.
fn parse_conf_json(raw: &str) -> Result<SparkConf, ConfigError> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw).map_err(|e| invalid(EMR_JOB_EXECUTION_CONF, format!("not a JSON object: {e}")))?;
    let mut pairs = Vec::with_capacity(object.len());
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(EMR_JOB_EXECUTION_CONF, format!("{key}: values must be strings, numbers or booleans"))),
        };
        pairs.push((key, text));
    }
    SparkConf::from_pairs(pairs).map_err(|e| invalid(EMR_JOB_EXECUTION_CONF, e.to_string()))
}

fn normalize_prefix(raw: &str) -> Result<String, ConfigError> {
    let ok = !raw.starts_with('/')
        && !raw.contains("//")
        && !raw.split('/').any(|seg| seg == ".." || seg == ".")
        && raw.len() <= 512
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if !ok {
        return Err(invalid(STAGING_PREFIX, "use [A-Za-z0-9/_.-], no leading '/', no '//' and no '.' or '..' segments"));
    }
    Ok(if raw.is_empty() || raw.ends_with('/') { raw.to_string() } else { format!("{raw}/") })
}

pub fn check_role_arn(var: &'static str, arn: &str) -> Result<(), ConfigError> {
    if is_role_arn(arn) {
        Ok(())
    } else {
        Err(invalid(var, format!("{:?} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)", crate::text::printable(arn))))
    }
}

/// `EMR_RELEASE_VERSION` as a version.
fn parse_release(label: &str) -> Result<ReleaseLabel, ConfigError> {
    ReleaseLabel::parse(label).ok_or_else(|| invalid(EMR_RELEASE_VERSION, format!("{label:?} is not an EMR release label such as emr-7.5.0")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/modelop-job";

    fn settings(env: &[(&str, &str)], file: Option<&str>) -> Result<Settings, ConfigError> {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let file = file.map(str::to_string);
        Settings::load(
            |name| env.get(name).cloned(),
            |_| file.clone().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        )
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            (JOBS_TABLE, "modelop-jobs"),
            (STAGING_BUCKET, "modelop-staging"),
            (EMR_DEFAULT_APP_NAME, "modelop-default"),
            (EMR_RELEASE_VERSION, "emr-7.5.0"),
            (EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN, ROLE),
        ]
    }

    /// `from_env` reads the process's own environment: shown in a child process of this test
    /// binary (the environment is the process's, and setting it under running tests is unsound).
    #[test]
    fn from_env_reads_the_process_environment() {
        const CHILD: &str = "MODELOP_CONFIG_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let service = Settings::from_env().unwrap().service().unwrap();
            assert_eq!((service.staging.bucket.as_str(), service.emr_region.as_deref()), ("bucket-from-env", Some("eu-west-1")));
            return;
        }
        let test = "config::tests::from_env_reads_the_process_environment";
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--quiet"])
            .env_clear()
            .envs(minimal())
            .env(STAGING_BUCKET, "bucket-from-env")
            .env(EMR_REGION, "eu-west-1")
            .env(CHILD, "1")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the child's from_env read other settings ({status})");
    }

    #[test]
    fn minimal_environment_gets_defaults() {
        let s = settings(&minimal(), None).unwrap();
        let service = s.service().unwrap();
        assert_eq!(service.staging, StagingLocation { bucket: "modelop-staging".into(), prefix: DEFAULT_STAGING_PREFIX.into() });
        assert_eq!(service.staging.job_uri("j-1"), "s3://modelop-staging/modelop-spark-serverless/j-1/");
        assert_eq!(service.log_group, DEFAULT_LOG_GROUP);
        assert_eq!(service.emr_region, None);
        assert_eq!(service.main_role_arn, None);
        let submit = s.submit().unwrap();
        assert_eq!(submit.app_idle_timeout_minutes, DEFAULT_APP_IDLE_TIMEOUT_MINUTES);
        assert_eq!(submit.max_concurrency, DEFAULT_SUBMIT_MAX_CONCURRENCY);
        assert!(submit.job_execution_conf.is_empty());
    }

    #[test]
    fn each_missing_or_malformed_variable_is_named() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (JOBS_TABLE, None, "JOBS_TABLE is required"),
            (STAGING_BUCKET, None, "STAGING_BUCKET is required"),
            (STAGING_BUCKET, Some("Bad_Bucket"), "STAGING_BUCKET is invalid"),
            (STAGING_PREFIX, Some("/abs"), "STAGING_PREFIX is invalid"),
            (STAGING_PREFIX, Some("a/../b"), "STAGING_PREFIX is invalid"),
            (EMR_REGION, Some("mars"), "EMR_REGION is invalid"),
            (EMR_MAIN_ROLE_ARN, Some("arn:aws:iam::12:role/x"), "EMR_MAIN_ROLE_ARN is invalid"),
            (EMR_LOG_GROUP, Some("bad group"), "EMR_LOG_GROUP is invalid"),
            (S3_FORCE_PATH_STYLE, Some("yes"), "S3_FORCE_PATH_STYLE is invalid"),
            (EMR_DEFAULT_APP_NAME, None, "EMR_DEFAULT_APP_NAME is required"),
            (EMR_DEFAULT_APP_NAME, Some("has space"), "EMR_DEFAULT_APP_NAME is invalid"),
            (EMR_RELEASE_VERSION, None, "EMR_RELEASE_VERSION is required"),
            (EMR_RELEASE_VERSION, Some("7.5.0"), "EMR_RELEASE_VERSION is invalid"),
            (EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN, None, "EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN is required"),
            (EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN, Some("role/x"), "EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN is invalid"),
            (EMR_JOB_EXECUTION_CONF, Some("[1]"), "EMR_JOB_EXECUTION_CONF is invalid: not a JSON object"),
            (EMR_JOB_EXECUTION_CONF, Some(r#"{"spark.x":"a b"}"#), "EMR_JOB_EXECUTION_CONF is invalid: value of Spark conf"),
            (EMR_JOB_EXECUTION_CONF, Some(r#"{"spark.x":{}}"#), "EMR_JOB_EXECUTION_CONF is invalid"),
            (EMR_APP_IDLE_TIMEOUT_MINUTES, Some("0"), "EMR_APP_IDLE_TIMEOUT_MINUTES is invalid"),
            (SUBMIT_MAX_CONCURRENCY, Some("many"), "SUBMIT_MAX_CONCURRENCY is invalid"),
        ];
        for (var, value, needle) in cases {
            let mut env: Vec<(&str, &str)> = minimal().into_iter().filter(|(k, _)| k != var).collect();
            if let Some(value) = value {
                env.push((var, value));
            }
            let s = settings(&env, None).unwrap();
            let err = s.service().and_then(|_| s.submit()).expect_err(var).to_string();
            assert!(err.contains(needle), "{var}={value:?}: {err}");
        }
    }

    #[test]
    fn cleanup_settings_default_and_are_checked() {
        let cleanup = settings(&minimal(), None).unwrap().cleanup().unwrap();
        assert_eq!(cleanup.max_concurrency, DEFAULT_CLEANUP_MAX_CONCURRENCY);
        assert_eq!(cleanup.orphan_min_age, chrono::Duration::hours(24));

        let mut env = minimal();
        env.extend([(CLEANUP_MAX_CONCURRENCY, "4"), (CLEANUP_ORPHAN_MIN_AGE_HOURS, "0")]);
        let cleanup = settings(&env, None).unwrap().cleanup().unwrap();
        assert_eq!((cleanup.max_concurrency, cleanup.orphan_min_age), (4, chrono::Duration::zero()));

        let cases = [
            (CLEANUP_MAX_CONCURRENCY, "0"),
            (CLEANUP_MAX_CONCURRENCY, "1001"),
            (CLEANUP_MAX_CONCURRENCY, "many"),
            (CLEANUP_ORPHAN_MIN_AGE_HOURS, "-1"),
            (CLEANUP_ORPHAN_MIN_AGE_HOURS, "1.5"),
            (CLEANUP_ORPHAN_MIN_AGE_HOURS, "8761"),
        ];
        for (var, value) in cases {
            let mut env = minimal();
            env.push((var, value));
            let err = settings(&env, None).unwrap().cleanup().expect_err(var).to_string();
            assert!(err.contains(&format!("{var} is invalid")) && err.contains(value), "{var}={value}: {err}");
        }
    }

    #[test]
    fn run_controls_and_application_settings_are_read_and_checked() {
        let submit = settings(&minimal(), None).unwrap().submit().unwrap();
        assert_eq!(submit.run_controls, RunControls::default());
        let defaults = ApplicationSettings { job_level_cost_allocation: true, ..ApplicationSettings::default() };
        assert_eq!(submit.application_settings, defaults, "nothing sent unless configured, but job-level cost allocation");

        let mut env = minimal();
        env.extend([
            (EMR_RELEASE_VERSION, "emr-7.9.0"),
            (EMR_EXECUTION_TIMEOUT_MINUTES, "60"),
            (EMR_MAX_ATTEMPTS, "3"),
            (EMR_CANCEL_GRACE_PERIOD_SECONDS, "120"),
            (EMR_APP_QUEUE_TIMEOUT_MINUTES, "30"),
            (EMR_APP_ARCHITECTURE, "ARM64"),
            (EMR_APP_SECURITY_GROUP_IDS, "sg-1"),
        ]);
        let submit = settings(&env, None).unwrap().submit().unwrap();
        let controls = submit.run_controls;
        assert_eq!((controls.execution_timeout_minutes, controls.max_attempts, controls.cancel_grace_period_seconds), (60, 3, 120));
        assert_eq!(controls.sources.max_attempts, run_controls::ControlSource::Configuration);
        let app = submit.application_settings;
        assert_eq!(app.scheduler, Some(SchedulerSettings { max_concurrent_runs: None, queue_timeout_minutes: Some(30) }));
        assert_eq!(app.architecture, Some(run_controls::Architecture::Arm64));
        assert_eq!(app.network, Some(NetworkSettings { subnet_ids: vec![], security_group_ids: vec!["sg-1".into()] }));
        assert_eq!(app.maximum_capacity, None);

        // (release, variable, value, what the message says after "<VAR> is invalid: ")
        let cases = [
            ("emr-7.5.0", EMR_EXECUTION_TIMEOUT_MINUTES, "1000001", "\"1000001\": executionTimeoutMinutes (0: no timeout) must be a whole number from 0 to 1000000"),
            ("emr-7.11.0", EMR_EXECUTION_TIMEOUT_MINUTES, "0", "\"0\": executionTimeoutMinutes on emr-7.11.0 (from emr-7.11.0 a BATCH run's maximum is 7 days, and 0, no timeout, is refused)"),
            ("emr-7.11.0", EMR_EXECUTION_TIMEOUT_MINUTES, "10081", "\"10081\": executionTimeoutMinutes on emr-7.11.0"),
            ("emr-7.5.0", EMR_MAX_ATTEMPTS, "11", "\"11\": maxAttempts must be a whole number from 1 to 10"),
            ("emr-7.0.0", EMR_MAX_ATTEMPTS, "2", "\"2\": a retry policy (maxAttempts above 1) needs EMR release emr-7.1.0 or later"),
            ("emr-7.5.0", EMR_CANCEL_GRACE_PERIOD_SECONDS, "120", "\"120\": a cancel grace period needs EMR release emr-7.9.0 or later"),
            ("emr-7.9.0", EMR_CANCEL_GRACE_PERIOD_SECONDS, "10", "\"10\": shutdownGracePeriodInSeconds must be 0 (immediate) or a whole number from 15 to 1800"),
            ("emr-6.15.0", EMR_APP_MAX_CONCURRENT_RUNS, "10", "\"10\": job concurrency and queuing (schedulerConfiguration) needs EMR release emr-7.0.0"),
            ("emr-7.5.0", EMR_APP_MAX_CONCURRENT_RUNS, "1001", "\"1001\": maxConcurrentRuns must be a whole number from 1 to 1000"),
            ("emr-7.5.0", EMR_APP_QUEUE_TIMEOUT_MINUTES, "721", "\"721\": queueTimeoutMinutes must be a whole number from 15 to 720"),
            ("emr-7.5.0", EMR_APP_MAXIMUM_CAPACITY, "lots", "\"lots\": maximumCapacity is"),
            ("emr-7.5.0", EMR_APP_ARCHITECTURE, "x86", "\"x86\": architecture must be X86_64 or ARM64"),
            ("emr-7.5.0", EMR_APP_SUBNET_IDS, "a b", "\"a b\": subnetIds is a comma-separated list"),
            ("emr-7.5.0", EMR_APP_SECURITY_GROUP_IDS, "1,2,3,4,5,6", "\"1,2,3,4,5,6\": securityGroupIds is a comma-separated list of 1 to 5 ids"),
        ];
        for (release, var, value, needle) in cases {
            let mut env = minimal();
            env.extend([(EMR_RELEASE_VERSION, release), (var, value)]);
            let err = settings(&env, None).unwrap().submit().expect_err(var).to_string();
            assert!(err.contains(&format!("{var} is invalid: {needle}")), "{var}={value} on {release}: {err}");
        }
    }

    #[test]
    fn cleanup_reads_the_grace_period_gated_by_an_optional_release() {
        let base = [(JOBS_TABLE, "modelop-jobs"), (STAGING_BUCKET, "modelop-staging")];
        let grace_of = |extra: &[(&'static str, &'static str)]| {
            let env: Vec<_> = base.iter().chain(extra).copied().collect();
            settings(&env, None).unwrap().cleanup().map(|c| c.cancel_grace_period_seconds).map_err(|e| e.to_string())
        };
        assert_eq!(grace_of(&[]), Ok(0));
        assert_eq!(grace_of(&[(EMR_RELEASE_VERSION, "emr-7.9.0"), (EMR_CANCEL_GRACE_PERIOD_SECONDS, "300")]), Ok(300));
        let needles = [
            (vec![(EMR_CANCEL_GRACE_PERIOD_SECONDS, "300")], "EMR_CANCEL_GRACE_PERIOD_SECONDS is invalid: \"300\": a cancel grace period needs EMR_RELEASE_VERSION"),
            (vec![(EMR_RELEASE_VERSION, "emr-7.8.0"), (EMR_CANCEL_GRACE_PERIOD_SECONDS, "300")], "needs EMR release emr-7.9.0 or later"),
            (vec![(EMR_RELEASE_VERSION, "7.9"), (EMR_CANCEL_GRACE_PERIOD_SECONDS, "300")], "EMR_RELEASE_VERSION is invalid"),
        ];
        for (extra, needle) in needles {
            let err = grace_of(&extra).expect_err(needle);
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn run_controls_come_from_the_modelop_yaml_too() {
        let yaml = "emr-serverless-cluster:\n  releaseVersion: emr-7.9.0\n  maxAttempts: 2\n  cancelGracePeriodSeconds: 60\n  appSubnetIds: [subnet-1, subnet-2]\n";
        let mut env = minimal();
        env.retain(|(k, _)| *k != EMR_RELEASE_VERSION);
        env.push((CONFIG_FILE, "/etc/modelop/config.yaml"));
        let submit = settings(&env, Some(yaml)).unwrap().submit().unwrap();
        assert_eq!((submit.run_controls.max_attempts, submit.run_controls.cancel_grace_period_seconds), (2, 60));
        assert_eq!(submit.application_settings.network.unwrap().subnet_ids, ["subnet-1", "subnet-2"]);
    }

    #[test]
    fn cleanup_needs_no_submit_settings() {
        let env = [(JOBS_TABLE, "modelop-jobs"), (STAGING_BUCKET, "modelop-staging")];
        let s = settings(&env, None).unwrap();
        assert!(s.service().is_ok() && s.cleanup().is_ok());
        assert!(s.submit().is_err());
    }

    #[test]
    fn prefix_is_normalized() {
        let cases = [("jobs", "jobs/"), ("jobs/", "jobs/"), ("a/b", "a/b/"), ("", DEFAULT_STAGING_PREFIX)];
        for (raw, expected) in cases {
            let mut env = minimal();
            env.push((STAGING_PREFIX, raw));
            assert_eq!(settings(&env, None).unwrap().service().unwrap().staging.prefix, expected, "{raw:?}");
        }
    }

    const MODELOP_YAML: &str = r#"
emr-serverless-cluster:
  defaultAppName: modelop-from-file
  releaseVersion: emr-7.1.0
  region: eu-west-1
  mainEmrServerlessRoleArn: arn:aws:iam::123456789012:role/emr-main
  defaultJobExecutionRoleArn: arn:aws:iam::123456789012:role/emr-job
  jobExecutionConf:
    spark.archives: s3://my_bucket/my_pyspark_venv.tar.gz#environment
    spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON: ./environment/bin/python
    spark.emr-serverless.driverEnv.PYSPARK_PYTHON: ./environment/bin/python
    spark.executorEnv.PYSPARK_PYTHON: ./environment/bin/python
    spark.executor.cores: 4
"#;

    #[test]
    fn job_execution_conf_takes_numbers_and_booleans_as_their_text() {
        let mut env = minimal();
        env.push((EMR_JOB_EXECUTION_CONF, r#"{"spark.executor.cores": 4, "spark.dynamicAllocation.enabled": false, "spark.executor.memory": "8g"}"#));
        let conf = settings(&env, None).unwrap().submit().unwrap().job_execution_conf;
        let got: Vec<(&str, &str)> = conf.iter().collect();
        assert_eq!(got, [("spark.dynamicAllocation.enabled", "false"), ("spark.executor.cores", "4"), ("spark.executor.memory", "8g")]);
    }

    #[test]
    fn modelop_yaml_carries_over_and_env_overrides_it() {
        let env = [
            (CONFIG_FILE, "/etc/modelop/config.yaml"),
            (JOBS_TABLE, "jobs"),
            (STAGING_BUCKET, "staging-bucket"),
            (EMR_RELEASE_VERSION, "emr-7.5.0"),
        ];
        let s = settings(&env, Some(MODELOP_YAML)).unwrap();
        let service = s.service().unwrap();
        let submit = s.submit().unwrap();
        assert_eq!(submit.default_app_name, "modelop-from-file");
        assert_eq!(submit.release_version, "emr-7.5.0", "the environment wins over the file");
        assert_eq!(service.emr_region.as_deref(), Some("eu-west-1"));
        assert_eq!(service.main_role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/emr-main"));
        assert_eq!(submit.default_job_execution_role_arn, "arn:aws:iam::123456789012:role/emr-job");
        assert_eq!(submit.job_execution_conf.get("spark.archives"), Some("s3://my_bucket/my_pyspark_venv.tar.gz#environment"));
        assert_eq!(submit.job_execution_conf.get("spark.executor.cores"), Some("4"));
        assert_eq!(submit.job_execution_conf.iter().count(), 5);
    }

    #[test]
    fn bad_config_files_name_the_file() {
        let env = [(CONFIG_FILE, "/etc/modelop/config.yaml")];
        let cases: &[(Option<&str>, &str)] = &[
            (None, "no such file"),
            (Some("other-root: {}"), "emr-serverless-cluster"),
            (Some("emr-serverless-cluster:\n  defaultAppNme: x\n"), "unknown field"),
            (Some("emr-serverless-cluster:\n  jobExecutionConf:\n    spark.x: [1]\n"), "jobExecutionConf.spark.x"),
        ];
        for (file, needle) in cases {
            let err = settings(&env, *file).expect_err("bad file").to_string();
            assert!(err.contains("CONFIG_FILE /etc/modelop/config.yaml") && err.contains(needle), "{err}");
        }
    }

    /// The configuration table of `shared/README.md`: `| `VAR` | `yamlKey` or – | ...`.
    fn documented_settings() -> Vec<(String, Option<String>)> {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("shared/README.md");
        let section = readme.split("## Configuration").nth(1).expect("a Configuration section");
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let var = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let key = cells.get(2).and_then(|k| k.strip_prefix('`')?.strip_suffix('`')).map(str::to_string);
                var.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_').then(|| (var.to_string(), key))
            })
            .collect()
    }

    #[test]
    fn every_setting_is_in_the_configuration_table_with_its_modelop_key() {
        let documented = documented_settings();
        for setting in SETTINGS {
            let row = documented.iter().find(|(var, _)| var == setting.var);
            let Some((_, key)) = row else { panic!("{} is read by the code but not in shared/README.md's configuration table", setting.var) };
            assert_eq!(key.as_deref(), setting.yaml_key, "{}: the ModelOp key column", setting.var);
        }
        for (var, _) in &documented {
            assert!(SETTINGS.iter().any(|s| s.var == var), "{var} is documented but the code does not read it");
        }
    }

    #[test]
    fn role_arns() {
        let cases = [
            (ROLE, true),
            ("arn:aws-us-gov:iam::123456789012:role/path/to/role", true),
            ("arn:aws:iam::123456789012:user/bob", false),
            ("arn:aws:iam::12345678901:role/x", false),
            ("arn:aws:iam::123456789012:role/", false),
            ("arn:aws:iam::123456789012:role/a b", false),
            ("arn:aws:s3:::bucket", false),
        ];
        for (arn, ok) in cases {
            assert_eq!(is_role_arn(arn), ok, "{arn}");
        }
    }

    #[test]
    fn monitor_settings_default_and_are_checked() {
        let monitor = settings(&[], None).unwrap().monitor().unwrap();
        assert_eq!(monitor.log_tail_bytes, DEFAULT_MONITOR_LOG_TAIL_BYTES);
        assert_eq!(monitor.result_max_bytes, DEFAULT_MONITOR_RESULT_MAX_BYTES);
        assert_eq!(monitor.sweep_min_age, chrono::Duration::minutes(10));
        assert_eq!(monitor.stuck_waiting_age, chrono::Duration::minutes(480));
        let week = settings(&[(MONITOR_SWEEP_MIN_AGE_MINUTES, "10080")], None).unwrap().monitor().unwrap();
        assert_eq!(week.sweep_min_age, chrono::Duration::days(7), "a week at most");
        let cases = [
            (MONITOR_LOG_TAIL_BYTES, "0"),
            (MONITOR_LOG_TAIL_BYTES, "1000000"),
            (MONITOR_RESULT_MAX_BYTES, "lots"),
            (MONITOR_SWEEP_MIN_AGE_MINUTES, "-5"),
            (MONITOR_SWEEP_MIN_AGE_MINUTES, "10081"),
            (MONITOR_STUCK_WAITING_MINUTES, "0"),
            (MONITOR_MAX_CONCURRENCY, "0"),
            (MONITOR_USAGE_SWEEP_HOURS, "0"),
            (EMR_PRICES, "{}x"),
        ];
        for (var, value) in cases {
            let err = settings(&[(var, value)], None).unwrap().monitor().expect_err(var).to_string();
            assert!(err.contains(&format!("{var} is invalid")), "{var}={value}: {err}");
        }
        assert_eq!(monitor.usage_sweep_window, chrono::Duration::hours(24));
        assert_eq!(monitor.prices, crate::outcome::cost::PriceTable::default());
        // A malformed EMR_PRICES fails the cold start naming the variable and the offending key.
        let err = settings(&[(EMR_PRICES, r#"{"X86_64": {"vCPUHour": "cheap", "memoryGBHour": 0, "storageGBHour": 0}}"#)], None).unwrap().monitor().unwrap_err();
        assert!(err.to_string().starts_with("configuration error: EMR_PRICES is invalid: X86_64: "), "{err}");
        let priced = settings(&[(EMR_PRICES, r#"{"eu-west-1": {"ARM64": {"vCPUHour": 0.05, "memoryGBHour": 0.005, "storageGBHour": 0.0001}}}"#), (EMR_REGION, "eu-west-1")], None)
            .unwrap()
            .monitor()
            .unwrap();
        assert_eq!(priced.region.as_deref(), Some("eu-west-1"));
        assert!(priced.prices.quote("eu-west-1", crate::launch::run_controls::Architecture::Arm64).is_some());
    }

    /// The byte caps as shared/README.md documents them: the defaults, and the ranges' ends.
    #[test]
    fn monitor_byte_caps_are_the_documented_ones() {
        let monitor = settings(&[], None).unwrap().monitor().unwrap();
        assert_eq!((monitor.log_tail_bytes, monitor.result_max_bytes), (16_384, 65_536));
        let cases = [
            (MONITOR_LOG_TAIL_BYTES, "1", Some(1)),
            (MONITOR_LOG_TAIL_BYTES, "102400", Some(102_400)),
            (MONITOR_LOG_TAIL_BYTES, "102401", None),
            (MONITOR_RESULT_MAX_BYTES, "1", Some(1)),
            (MONITOR_RESULT_MAX_BYTES, "153600", Some(153_600)),
            (MONITOR_RESULT_MAX_BYTES, "153601", None),
            (MONITOR_RESULT_MAX_BYTES, "0", None),
        ];
        for (var, value, expected) in cases {
            let got = settings(&[(var, value)], None).unwrap().monitor();
            let got = got.map(|m| if var == MONITOR_LOG_TAIL_BYTES { m.log_tail_bytes } else { m.result_max_bytes });
            match expected {
                Some(bytes) => assert_eq!(got, Ok(bytes), "{var}={value}"),
                None => assert!(got.is_err_and(|e| e.to_string().contains(&format!("{var} is invalid"))), "{var}={value}"),
            }
        }
    }

    #[test]
    fn job_level_cost_allocation_is_on_unless_turned_off() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = minimal();
            vars.extend_from_slice(extra);
            settings(&vars, None).unwrap().submit()
        };
        assert!(with(&[]).unwrap().application_settings.job_level_cost_allocation);
        assert!(!with(&[(EMR_APP_JOB_LEVEL_COST_ALLOCATION, "false")]).unwrap().application_settings.job_level_cost_allocation);
        let err = with(&[(EMR_APP_JOB_LEVEL_COST_ALLOCATION, "off")]).unwrap_err().to_string();
        assert!(err.contains("EMR_APP_JOB_LEVEL_COST_ALLOCATION is invalid"), "{err}");
    }

    #[test]
    fn job_permission_settings_default_and_name_the_offending_entry() {
        let submit = settings(&minimal(), None).unwrap().submit().unwrap();
        assert_eq!(submit.job_permissions, JobPermissionSettings::default());
        assert!(submit.job_permissions.scope_by_default && !submit.job_permissions.allow_unscoped);

        let mut env = minimal();
        env.extend([
            (EMR_SCOPE_JOB_PERMISSIONS, "false"),
            (EMR_ALLOW_UNSCOPED_JOBS, "true"),
            (EMR_JOB_POLICY_ARNS, "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess, arn:aws:iam::123456789012:policy/kms-use"),
            (EMR_JOB_EXTRA_POLICY_STATEMENTS, r#"[{"Sid":"Glue","Effect":"Allow","Action":"glue:GetTable","Resource":"*"}]"#),
        ]);
        let permissions = settings(&env, None).unwrap().submit().unwrap().job_permissions;
        assert!(!permissions.scope_by_default && permissions.allow_unscoped);
        assert_eq!(permissions.policy_arns, ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "arn:aws:iam::123456789012:policy/kms-use"]);
        assert_eq!(permissions.extra_statements[0]["Sid"], "Glue");

        let eleven = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"; 11].join(",");
        let cases: Vec<(&str, String, &str)> = vec![
            (EMR_SCOPE_JOB_PERMISSIONS, "yes".into(), "\"yes\""),
            (EMR_ALLOW_UNSCOPED_JOBS, "1".into(), "\"1\""),
            (EMR_JOB_POLICY_ARNS, "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess,arn:aws:iam::123:policy/x".into(), "\"arn:aws:iam::123:policy/x\": entry 2"),
            (EMR_JOB_POLICY_ARNS, eleven, "11 policy ARNs"),
            (EMR_JOB_EXTRA_POLICY_STATEMENTS, "{not json".into(), "not JSON"),
            (
                EMR_JOB_EXTRA_POLICY_STATEMENTS,
                r#"[{"Effect":"Allow","Action":"a:b","Resource":"*"},{"Effect":"Allow","Action":"s3:*"}]"#.into(),
                "statement 2",
            ),
        ];
        for (var, value, names) in cases {
            let mut env: Vec<(&str, &str)> = minimal();
            env.push((var, value.as_str()));
            let err = settings(&env, None).unwrap().submit().expect_err(var).to_string();
            assert!(err.contains(&format!("{var} is invalid")) && err.contains(names), "{var}={value}: {err}");
        }
    }

    #[test]
    fn job_permission_settings_read_from_modelop_yaml() {
        let yaml = "emr-serverless-cluster:\n  scopeJobPermissions: false\n  allowUnscopedJobs: true\n  jobPolicyArns:\n    - arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\n";
        let mut env = minimal();
        env.push((CONFIG_FILE, "/config.yaml"));
        let permissions = settings(&env, Some(yaml)).unwrap().submit().unwrap().job_permissions;
        assert!(!permissions.scope_by_default && permissions.allow_unscoped);
        assert_eq!(permissions.policy_arns, ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]);
    }

    fn bridge_env() -> Vec<(&'static str, &'static str)> {
        let mut env = minimal();
        env.extend([
            (MODELOP_GATEWAY_URL, "https://modelop.example.com"),
            (MODELOP_TOKEN_URL, "https://idp.example.com/oauth2/token"),
            (MODELOP_CLIENT_SECRET_ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:modelop-client-AbCdEf"),
        ]);
        env
    }

    #[test]
    fn bridge_settings_default_and_are_checked() {
        assert!(!settings(&minimal(), None).unwrap().bridge_enabled());
        let bridge = settings(&bridge_env(), None).unwrap().bridge().unwrap();
        assert_eq!(bridge.api_base.as_str(), "https://modelop.example.com/model-manage/api/");
        assert_eq!((bridge.client_id.as_str(), bridge.scope.as_deref()), ("internal-client", Some("modelop_client")));
        assert_eq!(bridge.engine_types, ["SPARK_SERVERLESS_RUNTIME"]);
        assert_eq!(bridge.poll_interval, std::time::Duration::from_secs(10));
        assert_eq!((bridge.runtime_name, bridge.run_id_field, bridge.job_finder), (None, None, None));
        assert_eq!((bridge.job_item_path.for_job("j-1"), bridge.test_result_asset.as_deref()), (vec!["jobs", "j-1"], Some("test_result.json")));
        let mut env = bridge_env();
        env.extend([(MODELOP_GATEWAY_URL, "http://127.0.0.1:8090/base"), (MODELOP_SCOPE, "-"), (MODELOP_ENGINE_TYPES, "A, B"), (MODELOP_RUN_ID_FIELD, "sparkApplicationId"),
                    (MODELOP_JOB_ITEM_PATH, "/api-v2/modelBatchTestJob/{id}/"), (MODELOP_TEST_RESULT_ASSET, "-")]);
        let bridge = settings(&env, None).unwrap().bridge().unwrap();
        assert_eq!((bridge.job_item_path.for_job("j-1"), bridge.test_result_asset), (vec!["api-v2", "modelBatchTestJob", "j-1"], None));
        assert_eq!(bridge.api_base.as_str(), "http://127.0.0.1:8090/base/model-manage/api/");
        assert_eq!((bridge.scope, bridge.engine_types, bridge.run_id_field.as_deref()), (None, vec!["A".to_string(), "B".to_string()], Some("sparkApplicationId")));
        // At the edges of the rules: accepted.
        let long_client_id = "c".repeat(257);
        let mut env = bridge_env();
        env.extend([(MODELOP_CLIENT_ID, &long_client_id[..256]), (MODELOP_SCOPE, "rs/a rs/b"), (MODELOP_RUN_ID_FIELD, "_sparkRunId")]);
        let bridge = settings(&env, None).unwrap().bridge().unwrap();
        assert_eq!((bridge.client_id.len(), bridge.scope.as_deref(), bridge.run_id_field.as_deref()), (256, Some("rs/a rs/b"), Some("_sparkRunId")));
        assert!(settings(&env, None).unwrap().bridge_enabled());
        let cases: &[(&str, Option<&str>, &str)] = &[
            (MODELOP_TOKEN_URL, None, "MODELOP_TOKEN_URL is required"),
            (MODELOP_CLIENT_SECRET_ARN, None, "MODELOP_CLIENT_SECRET_ARN is required"),
            (MODELOP_GATEWAY_URL, Some("modelop.example.com"), "MODELOP_GATEWAY_URL is invalid"),
            (MODELOP_GATEWAY_URL, Some("ftp://modelop.example.com"), "MODELOP_GATEWAY_URL is invalid"),
            (MODELOP_TOKEN_URL, Some("https://u:p@idp/token"), "MODELOP_TOKEN_URL is invalid"),
            (MODELOP_CLIENT_SECRET_ARN, Some("modelop-client"), "MODELOP_CLIENT_SECRET_ARN is invalid"),
            (MODELOP_ENGINE_TYPES, Some(" , "), "MODELOP_ENGINE_TYPES is invalid"),
            (MODELOP_POLL_SECONDS, Some("0"), "MODELOP_POLL_SECONDS is invalid"),
            (MODELOP_POLL_SECONDS, Some("301"), "MODELOP_POLL_SECONDS is invalid"),
            (MODELOP_RUN_ID_FIELD, Some("a.b"), "MODELOP_RUN_ID_FIELD is invalid"),
            (MODELOP_RUN_ID_FIELD, Some("jobStatus"), "MODELOP_RUN_ID_FIELD is invalid"),
            (MODELOP_JOB_FINDER, Some("find/all"), "MODELOP_JOB_FINDER is invalid"),
            (MODELOP_JOB_ITEM_PATH, Some("jobs"), "must hold {id} exactly once"),
            (MODELOP_JOB_ITEM_PATH, Some("jobs/{id}/{id}"), "must hold {id} exactly once"),
            (MODELOP_JOB_ITEM_PATH, Some("jobs/x{id}"), "must hold {id} exactly once"),
            (MODELOP_JOB_ITEM_PATH, Some("../jobs/{id}"), "segment \"..\""),
            (MODELOP_JOB_ITEM_PATH, Some("jobs//{id}"), "segment \"\""),
            (MODELOP_JOB_ITEM_PATH, Some("jobs?x=1/{id}"), "MODELOP_JOB_ITEM_PATH is invalid"),
            (MODELOP_TEST_RESULT_ASSET, Some("a\u{7}b"), "MODELOP_TEST_RESULT_ASSET is invalid"),
            (MODELOP_TOKEN_URL, Some("https://u@idp/token"), "no user info and no query"),
            (MODELOP_TOKEN_URL, Some("https://:p@idp/token"), "no user info and no query"),
            (MODELOP_GATEWAY_URL, Some("https://modelop.example.com/?tenant=a"), "no user info and no query"),
            (MODELOP_CLIENT_ID, Some("internal\u{7}client"), "MODELOP_CLIENT_ID is invalid"),
            (MODELOP_CLIENT_ID, Some(&long_client_id), "at most 256 characters"),
            (MODELOP_CLIENT_SECRET_ARN, Some("arn:aws:ssm:us-east-1:123456789012:secret:modelop"), "a Secrets Manager secret ARN"),
            (MODELOP_CLIENT_SECRET_ARN, Some("arn:aws:secretsmanager:us-east-1:123456789012:parameter/modelop"), "a Secrets Manager secret ARN"),
            (MODELOP_CLIENT_SECRET_ARN, Some("aws:secretsmanager:us-east-1:123456789012:secret:modelop"), "a Secrets Manager secret ARN"),
            (MODELOP_SCOPE, Some("rs/a\trs/b"), "scope tokens are printable ASCII separated by spaces"),
            (MODELOP_RUN_ID_FIELD, Some("1runId"), "MODELOP_RUN_ID_FIELD is invalid"),
            (MODELOP_RUNTIME_NAME, Some("emr\u{7}serverless"), "MODELOP_RUNTIME_NAME is invalid: \"emr\\u{7}serverless\": a runtime name (targetEngine.name) is 1-256 characters"),
        ];
        for (var, value, needle) in cases {
            let mut env: Vec<(&str, &str)> = bridge_env().into_iter().filter(|(k, _)| k != var).collect();
            if let Some(value) = value {
                env.push((var, value));
            }
            let err = settings(&env, None).unwrap().bridge().expect_err(var).to_string();
            assert!(err.contains(needle), "{var}={value:?}: {err}");
        }
    }

    /// ModelOp's YAML with every bridge key, each set to something other than its default.
    const BRIDGE_YAML: &str = r#"emr-serverless-cluster:
  modelopGatewayUrl: https://mo.example.com/
  modelopTokenUrl: https://idp.example.com/oauth2/token
  modelopClientId: spark-serverless-client
  modelopClientSecretArn: arn:aws:secretsmanager:eu-west-1:123456789012:secret:mo-client-XyZ
  modelopScope: rs/modelop_client
  modelopEngineTypes: [SPARK_SERVERLESS_RUNTIME, EMR_SERVERLESS]
  modelopRuntimeName: spark-serverless-runtime-1
  modelopPollSeconds: 5
  modelopRunIdField: sparkApplicationId
  modelopJobFinder: findAllByJobStatus
  modelopJobItemPath: "modelBatchJob/{id}"
  modelopTestResultAsset: metrics.json
"#;

    #[test]
    fn bridge_settings_come_from_the_modelop_yaml_too() {
        // Every MODELOP_* setting the bridge reads is in the YAML above (one added later must be too).
        let bridge_settings: Vec<&Setting> = SETTINGS.iter().filter(|s| s.var.starts_with("MODELOP_")).collect();
        for setting in &bridge_settings {
            let key = setting.yaml_key.unwrap_or_else(|| panic!("{} has no key in ModelOp's YAML", setting.var));
            assert!(BRIDGE_YAML.contains(&format!("\n  {key}: ")), "{key} ({}) is not in the test's YAML", setting.var);
        }
        let mut env = minimal();
        env.push((CONFIG_FILE, "/config.yaml"));
        let bridge = settings(&env, Some(BRIDGE_YAML)).unwrap().bridge().unwrap();
        let expected = BridgeConfig {
            api_base: url::Url::parse("https://mo.example.com/model-manage/api/").unwrap(),
            token_url: url::Url::parse("https://idp.example.com/oauth2/token").unwrap(),
            client_id: "spark-serverless-client".into(),
            client_secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mo-client-XyZ".into(),
            scope: Some("rs/modelop_client".into()),
            engine_types: vec!["SPARK_SERVERLESS_RUNTIME".into(), "EMR_SERVERLESS".into()],
            runtime_name: Some("spark-serverless-runtime-1".into()),
            poll_interval: std::time::Duration::from_secs(5),
            run_id_field: Some("sparkApplicationId".into()),
            job_finder: Some("findAllByJobStatus".into()),
            job_item_path: JobItemPath::parse("modelBatchJob/{id}").unwrap(),
            test_result_asset: Some("metrics.json".into()),
        };
        assert_eq!(bridge, expected);

        // The environment wins over the file, key by key; the file's other keys still apply.
        let file_only = env.clone();
        env.extend([(MODELOP_RUNTIME_NAME, "emr-serverless-prod"), (MODELOP_POLL_SECONDS, "2")]);
        let bridge = settings(&env, Some(BRIDGE_YAML)).unwrap().bridge().unwrap();
        assert_eq!(bridge, BridgeConfig { runtime_name: Some("emr-serverless-prod".into()), poll_interval: std::time::Duration::from_secs(2), ..expected });

        // A bad value in the file fails like one in the environment, naming the variable.
        let bad = BRIDGE_YAML.replace("modelopRuntimeName: spark-serverless-runtime-1", "modelopRuntimeName: \"runtime\\t1\"");
        let err = settings(&file_only, Some(bad.as_str())).unwrap().bridge().unwrap_err().to_string();
        assert!(err.starts_with("configuration error: MODELOP_RUNTIME_NAME is invalid: \"runtime\\t1\": "), "{err}");
    }

    #[test]
    fn runtime_names_are_printable_ascii_of_at_most_256_characters() {
        let longest = "r".repeat(MAX_MODELOP_RUNTIME_NAME_CHARS);
        let too_long = "r".repeat(MAX_MODELOP_RUNTIME_NAME_CHARS + 1);
        let cases: &[(&str, bool)] = &[
            ("spark-serverless-runtime-1", true),
            ("emr-serverless", true),
            ("Spark Runtime (prod) #2", true),
            ("x", true),
            (longest.as_str(), true),
            (too_long.as_str(), false),
            ("", false),
            ("   ", false),
            (" leading", false),
            ("trailing ", false),
            ("tab\tinside", false),
            ("bell\u{7}", false),
            ("line\nbreak", false),
            ("del\u{7f}", false),
            ("émr-serverless", false),
        ];
        for (name, valid) in cases {
            let got = check_runtime_name(name);
            assert_eq!(got.is_ok(), *valid, "{name:?}: {got:?}");
            if let Err(reason) = got {
                assert!(reason.starts_with(&format!("{:?}: ", crate::text::printable(name))), "the value first: {reason}");
                assert!(reason.ends_with("a runtime name (targetEngine.name) is 1-256 characters, each printable ASCII or a space, with no space at either end"), "{reason}");
            }
        }
    }
}
