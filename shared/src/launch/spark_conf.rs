//! Spark configuration from the service config (`jobExecutionConf`) and from job parameters
//! (`--conf <key>`), validated so that a key or value can set one Spark property and nothing else,
//! and rendered into EMR Serverless `sparkSubmitParameters`.
//!
//! EMR Serverless splits `sparkSubmitParameters` on whitespace, so the rule is strict: a key is
//! `spark.` followed by `[A-Za-z0-9_.-]`; a value is non-empty, at most 4096 characters, and
//! holds no whitespace, control characters, quotes or backslashes.

use std::collections::BTreeMap;
use crate::launch::run_controls::{MAX_ATTEMPTS_KEY, TIMEOUT_MINUTES_KEY};

/// The job parameter prefix that marks a Spark conf entry, exactly as ModelOp's EMR Serverless page writes it.
pub const CONF_PARAM_PREFIX: &str = "--conf ";
/// Service keys: consumed by this service, never passed to Spark.
pub const APP_NAME_KEY: &str = "modelop.serverless.job.app.name";
pub const ROLE_ARN_KEY: &str = "modelop.serverless.job.rolearn";
/// Whether the run gets its per-job least-privilege policy (see [`crate::launch::job_policy`]).
pub const SCOPE_PERMISSIONS_KEY: &str = "modelop.serverless.job.scope.permissions";
/// Every service key, as the error for an unknown one lists them.
pub const SERVICE_KEYS: [&str; 5] = [APP_NAME_KEY, ROLE_ARN_KEY, TIMEOUT_MINUTES_KEY, MAX_ATTEMPTS_KEY, SCOPE_PERMISSIONS_KEY];
/// The job's id, set by this service on every run (models may read it from the Spark conf).
pub const JOB_ID_CONF: &str = "spark.modelop.job.id";
/// The job's working folder: its staging folder, `s3://<bucket>/<prefix><job id>/`, set by this
/// service on every run. No public ModelOp source names such a key; this is this runtime's.
pub const WORKING_DIR_CONF: &str = "spark.modelop.job.workingDir";
/// Keys that would replace the files this service stages for the driver, or what it tells the model.
pub const RESERVED_KEYS: [&str; 5] = ["spark.submit.pyFiles", "spark.files", "spark.submit.deployMode", JOB_ID_CONF, WORKING_DIR_CONF];

pub const MAX_KEY_LEN: usize = 256;
pub const MAX_VALUE_LEN: usize = 4096;
/// EMR Serverless' limit on `sparkSubmitParameters`.
pub const MAX_SUBMIT_PARAMETERS_LEN: usize = 102_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparkConfError {
    #[error("Spark conf key {0:?} is not allowed: keys must start with 'spark.' and use only [A-Za-z0-9_.-] (at most {MAX_KEY_LEN} characters)")]
    BadKey(String),
    #[error("Spark conf key {0:?} is reserved: this service sets it to stage the driver and model files")]
    ReservedKey(String),
    #[error("value of Spark conf {key:?} is not allowed: {reason}")]
    BadValue { key: String, reason: &'static str },
    #[error("job parameter {0:?} is an unknown modelop service key (known: {known})", known = SERVICE_KEYS.join(", "))]
    UnknownServiceKey(String),
    #[error("sparkSubmitParameters would be {0} characters; EMR Serverless accepts at most {MAX_SUBMIT_PARAMETERS_LEN}")]
    TooLong(usize),
    #[error("job parameter {parameter:?} (Spark conf {key}) is not allowed: {reason}")]
    FlagValue { parameter: String, key: String, reason: &'static str },
    #[error("job parameter {parameter:?} lists {value:?}, which is not an S3 location: {reason}")]
    FileLocation { parameter: &'static str, value: String, reason: String },
}

impl SparkConfError {
    /// The same error, naming the spark-submit flag the job gave rather than the property.
    fn for_parameter(self, parameter: &str) -> SparkConfError {
        match self {
            SparkConfError::BadValue { key, reason } => SparkConfError::FlagValue { parameter: parameter.to_string(), key, reason },
            other => other,
        }
    }
}

/// EMR Serverless's `spark.dynamicAllocation.initialExecutors` when a run sets none: 3
/// (aws-samples/emr-serverless-samples#55: "spark.dynamicAllocation.initialExecutors=1 which
/// default is 3"; aws-samples/aws-emr-utilities#175: EMR refuses a run whose maxExecutors is below it).
pub const EMR_DEFAULT_INITIAL_EXECUTORS: u64 = 3;

/// A run EMR Serverless would refuse at deploy, before Spark runs ("Maximum value of
/// spark.dynamicAllocation.initialExecutors: 3 must be between spark.dynamicAllocation.minExecutor 1
/// and spark.dynamicAllocation.maxExecutors 2.", aws-samples/aws-emr-utilities#175).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the run's initial executors, {initial} ({set_by}), must be between spark.dynamicAllocation.minExecutors {min} and \
     spark.dynamicAllocation.maxExecutors {max}: EMR Serverless refuses such a run before Spark starts \
     (raise maxExecutors to at least {initial}, or lower the initial executors)"
)]
pub struct ExecutorBoundsError {
    pub initial: u64,
    /// Where the initial count comes from: the property that sets it, or EMR's default.
    pub set_by: &'static str,
    pub min: u64,
    pub max: u64,
}

/// Checks what EMR Serverless checks of dynamic allocation before a run starts: with
/// `spark.dynamicAllocation.maxExecutors` set (and dynamic allocation not turned off), the initial
/// executors — the largest of `initialExecutors` ([`EMR_DEFAULT_INITIAL_EXECUTORS`] when unset),
/// `minExecutors` and `spark.executor.instances`, as Spark counts them — and `minExecutors` must not
/// exceed it. A value that is not a whole number is left to Spark.
pub fn check_executor_bounds(conf: &SparkConf) -> Result<(), ExecutorBoundsError> {
    let number = |key: &str| conf.get(key).and_then(|v| v.parse::<u64>().ok());
    if conf.get("spark.dynamicAllocation.enabled") == Some("false") {
        return Ok(());
    }
    let Some(max) = number("spark.dynamicAllocation.maxExecutors") else { return Ok(()) };
    let min = number("spark.dynamicAllocation.minExecutors").unwrap_or(0);
    let initial_executors = match number("spark.dynamicAllocation.initialExecutors") {
        Some(n) => (n, "spark.dynamicAllocation.initialExecutors"),
        None => (EMR_DEFAULT_INITIAL_EXECUTORS, "EMR Serverless's default spark.dynamicAllocation.initialExecutors"),
    };
    let (initial, source) = [(min, "spark.dynamicAllocation.minExecutors"), (number("spark.executor.instances").unwrap_or(0), "spark.executor.instances")]
        .into_iter()
        .fold(initial_executors, |largest, other| if other.0 > largest.0 { other } else { largest });
    if initial > max || min > max {
        return Err(ExecutorBoundsError { initial, set_by: source, min, max });
    }
    Ok(())
}

/// A set of validated Spark properties, ordered by key so the rendering is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparkConf(BTreeMap<String, String>);

impl SparkConf {
    /// Validates every pair; the first bad one is the error.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<SparkConf, SparkConfError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut conf = SparkConf::default();
        for (key, value) in pairs {
            conf.set(key.into(), value.into())?;
        }
        Ok(conf)
    }

    pub fn set(&mut self, key: String, value: String) -> Result<(), SparkConfError> {
        validate_key(&key)?;
        validate_value(&key, &value)?;
        self.0.insert(key, value);
        Ok(())
    }

    /// Sets one of the properties this service reserves for itself ([`JOB_ID_CONF`],
    /// [`WORKING_DIR_CONF`]); the value rules still apply.
    pub fn set_reserved(&mut self, key: &'static str, value: String) -> Result<(), SparkConfError> {
        validate_value(key, &value)?;
        self.0.insert(key.to_string(), value);
        Ok(())
    }

    /// `self` overlaid by `other`: the job's own conf wins over the service default.
    pub fn overlaid_by(&self, other: &SparkConf) -> SparkConf {
        let mut merged = self.0.clone();
        merged.extend(other.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        SparkConf(merged)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn validate_key(key: &str) -> Result<(), SparkConfError> {
    let well_formed = key.len() <= MAX_KEY_LEN
        && key.strip_prefix("spark.").is_some_and(|rest| !rest.is_empty())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !key.ends_with('.');
    if !well_formed {
        return Err(SparkConfError::BadKey(crate::text::printable(key)));
    }
    if RESERVED_KEYS.contains(&key) {
        return Err(SparkConfError::ReservedKey(key.to_string()));
    }
    Ok(())
}

fn validate_value(key: &str, value: &str) -> Result<(), SparkConfError> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.chars().count() > MAX_VALUE_LEN {
        Some("it is longer than 4096 characters")
    } else if value.chars().any(char::is_whitespace) {
        Some("it contains whitespace, which would start another spark-submit argument")
    } else if value.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if value.chars().any(|c| matches!(c, '"' | '\'' | '`' | '\\')) {
        Some("it contains a quote or a backslash")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SparkConfError::BadValue { key: crate::text::printable(key), reason }),
        None => Ok(()),
    }
}

/// What a spark-submit flag given as a job parameter becomes on EMR Serverless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitFlag {
    /// Applied as this Spark property, under the same rules as `--conf`.
    Conf(&'static str),
    /// More Python files for `--py-files`, beside the ones this service stages.
    PyFiles,
    /// More files for `--files`, beside the ones this service stages.
    Files,
    /// Meaningless on EMR Serverless: recorded on the job as ignored, with this reason.
    Ignored(&'static str),
}

/// spark-submit's flags as ModelOp jobs carry them (`modelop/titanic-spark`
/// `job_submit/titanic_scoring_job.json`: `{"--executor-memory": "512MB", "--total-executor-cores":
/// "10", "-v": ""}`). The Spark property each one sets is spark-submit's own mapping (Spark's
/// "Submitting Applications" and "Spark Configuration" pages, `SparkSubmitArguments`).
pub const SUBMIT_FLAGS: [(&str, SubmitFlag); 25] = [
    ("--executor-memory", SubmitFlag::Conf("spark.executor.memory")),
    ("--driver-memory", SubmitFlag::Conf("spark.driver.memory")),
    ("--executor-cores", SubmitFlag::Conf("spark.executor.cores")),
    ("--driver-cores", SubmitFlag::Conf("spark.driver.cores")),
    ("--num-executors", SubmitFlag::Conf("spark.executor.instances")),
    ("--name", SubmitFlag::Conf("spark.app.name")),
    ("--jars", SubmitFlag::Conf("spark.jars")),
    ("--packages", SubmitFlag::Conf("spark.jars.packages")),
    ("--exclude-packages", SubmitFlag::Conf("spark.jars.excludes")),
    ("--repositories", SubmitFlag::Conf("spark.jars.repositories")),
    ("--archives", SubmitFlag::Conf("spark.archives")),
    ("--driver-class-path", SubmitFlag::Conf("spark.driver.extraClassPath")),
    ("--driver-library-path", SubmitFlag::Conf("spark.driver.extraLibraryPath")),
    ("--driver-java-options", SubmitFlag::Conf("spark.driver.extraJavaOptions")),
    ("--py-files", SubmitFlag::PyFiles),
    ("--files", SubmitFlag::Files),
    ("--master", SubmitFlag::Ignored("EMR Serverless is the cluster manager of every job run; it cannot be chosen per job")),
    ("--deploy-mode", SubmitFlag::Ignored("EMR Serverless decides where the driver runs")),
    ("--total-executor-cores", SubmitFlag::Ignored("a Spark standalone setting; EMR Serverless sizes a run with --executor-cores and --num-executors (or dynamic allocation)")),
    ("-v", SubmitFlag::Ignored("spark-submit's verbose output; EMR Serverless runs spark-submit itself")),
    ("--verbose", SubmitFlag::Ignored("spark-submit's verbose output; EMR Serverless runs spark-submit itself")),
    ("--queue", SubmitFlag::Ignored("a YARN queue; EMR Serverless has no queues")),
    ("--supervise", SubmitFlag::Ignored("a Spark standalone setting; EMR Serverless retries runs by its own retry policy")),
    ("--proxy-user", SubmitFlag::Ignored("EMR Serverless runs the job as its execution role")),
    ("--properties-file", SubmitFlag::Ignored("EMR Serverless reads no local properties file; pass the properties as --conf")),
];

/// A job parameter this service recorded as ignored (`ignoredJobParameters` on the job).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredParameter {
    pub parameter: String,
    pub value: String,
    pub reason: String,
}

/// What a job's `jobParameters` say, once the `--conf` entries are split out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobParameters {
    /// `--conf spark.*` entries, and the spark-submit flags that set a Spark property.
    pub spark_conf: SparkConf,
    /// `--py-files` and `--files` given as job parameters: comma-separated locations, as written.
    pub py_files: Vec<String>,
    pub files: Vec<String>,
    /// spark-submit flags with no meaning on EMR Serverless, and flags a `--conf` of the same
    /// property replaced.
    pub ignored: Vec<IgnoredParameter>,
    /// `--conf modelop.serverless.job.app.name`.
    pub app_name: Option<String>,
    /// `--conf modelop.serverless.job.rolearn`.
    pub role_arn: Option<String>,
    /// `--conf modelop.serverless.job.timeout.minutes` and `.max.attempts`, as written.
    pub run_controls: crate::launch::run_controls::JobRunControls,
    /// `--conf modelop.serverless.job.scope.permissions`, as written; checked by
    /// [`crate::launch::job_policy::decide_scope`].
    pub scope_permissions: Option<String>,
    /// Every parameter that is not a `--conf` entry, passed to the model in the job metadata.
    pub model_parameters: BTreeMap<String, String>,
}

/// Splits and validates job parameters. Service keys are consumed here and never reach Spark.
/// spark-submit flags ([`SUBMIT_FLAGS`]) are applied first, `--conf` entries after them, so an
/// explicit `--conf` of the same property wins (and the flag is recorded as ignored).
///
/// `--conf` comes in three shapes: `"--conf <key>": "<value>"` (ModelOp's EMR Serverless page),
/// `"--conf": "<key>=<value>"` and `"--conf <key>=<value>": ""` (the whole flag in one key).
pub fn parse_job_parameters(params: &BTreeMap<String, String>) -> Result<JobParameters, SparkConfError> {
    let mut parsed = JobParameters::default();
    let mut from_flags: BTreeMap<&'static str, &str> = BTreeMap::new();
    for (name, value) in params {
        let Some((_, flag)) = SUBMIT_FLAGS.iter().find(|(f, _)| f == name) else { continue };
        let list = |value: &str| value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect::<Vec<_>>();
        match *flag {
            SubmitFlag::Conf(key) => {
                parsed.spark_conf.set(key.to_string(), value.clone()).map_err(|e| e.for_parameter(name))?;
                from_flags.insert(key, name);
            }
            SubmitFlag::PyFiles => parsed.py_files.extend(list(value)),
            SubmitFlag::Files => parsed.files.extend(list(value)),
            SubmitFlag::Ignored(reason) => {
                parsed.ignored.push(IgnoredParameter { parameter: name.clone(), value: value.clone(), reason: reason.to_string() })
            }
        }
    }
    for (name, value) in params {
        if SUBMIT_FLAGS.iter().any(|(f, _)| f == name) {
            continue;
        }
        let conf_pair = match (name.as_str(), name.strip_prefix(CONF_PARAM_PREFIX)) {
            ("--conf", _) => Some(value.as_str()),
            (_, Some(pair)) if pair.contains('=') && value.is_empty() => Some(pair),
            _ => None,
        };
        let (key, value) = match conf_pair {
            Some(pair) => {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key.trim(), value.to_string())
            }
            None => match name.strip_prefix(CONF_PARAM_PREFIX) {
                Some(key) => (key, value.clone()),
                None => {
                    if name.trim_start().starts_with("--conf") {
                        // "--conf\tkey", "--confkey", "--conf  key" are typos of a conf entry, not model
                        // parameters; say so rather than silently dropping the setting.
                        return Err(SparkConfError::BadKey(crate::text::printable(name)));
                    }
                    parsed.model_parameters.insert(name.clone(), value.clone());
                    continue;
                }
            },
        };
        if let Some(flag) = from_flags.get(key) {
            let ignored = params.get(*flag).cloned().unwrap_or_default();
            parsed.ignored.push(IgnoredParameter {
                parameter: flag.to_string(),
                value: ignored,
                reason: format!("replaced by the job's own --conf {key}"),
            });
        }
        match key {
            APP_NAME_KEY => parsed.app_name = Some(value),
            ROLE_ARN_KEY => parsed.role_arn = Some(value),
            TIMEOUT_MINUTES_KEY => parsed.run_controls.timeout_minutes = Some(value),
            MAX_ATTEMPTS_KEY => parsed.run_controls.max_attempts = Some(value),
            SCOPE_PERMISSIONS_KEY => parsed.scope_permissions = Some(value),
            other if other.starts_with("modelop.") => {
                return Err(SparkConfError::UnknownServiceKey(crate::text::printable(&format!("{CONF_PARAM_PREFIX}{other}"))))
            }
            other => parsed.spark_conf.set(other.to_string(), value)?,
        }
    }
    Ok(parsed)
}

/// Files the driver needs, all already staged under this service's prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitFiles {
    pub py_files: Vec<String>,
    pub files: Vec<String>,
}

/// Renders `sparkSubmitParameters`: `--py-files`, `--files`, then one `--conf key=value` per
/// property. File URIs are built by this service from validated ids and sanitized names.
pub fn spark_submit_parameters(files: &SubmitFiles, conf: &SparkConf) -> Result<String, SparkConfError> {
    let mut parts: Vec<String> = Vec::new();
    if !files.py_files.is_empty() {
        parts.push(format!("--py-files {}", files.py_files.join(",")));
    }
    if !files.files.is_empty() {
        parts.push(format!("--files {}", files.files.join(",")));
    }
    parts.extend(conf.iter().map(|(k, v)| format!("--conf {k}={v}")));
    let rendered = parts.join(" ");
    if rendered.len() > MAX_SUBMIT_PARAMETERS_LEN {
        return Err(SparkConfError::TooLong(rendered.len()));
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_bounds_are_what_emr_serverless_accepts_at_deploy() {
        // (the Spark conf, the refusal's initial count, its source, min, max)
        type Refusal = Option<(u64, &'static str, u64, u64)>;
        let cases: Vec<(Vec<(&str, &str)>, Refusal)> = vec![
            (vec![], None),
            (vec![("spark.dynamicAllocation.maxExecutors", "3")], None),
            // aws-samples/aws-emr-utilities#175: maxExecutors 2 under EMR's default initial 3
            (vec![("spark.dynamicAllocation.maxExecutors", "2"), ("spark.dynamicAllocation.minExecutors", "1")],
             Some((3, "EMR Serverless's default spark.dynamicAllocation.initialExecutors", 1, 2))),
            (vec![("spark.dynamicAllocation.maxExecutors", "2"), ("spark.dynamicAllocation.initialExecutors", "1")], None),
            (vec![("spark.dynamicAllocation.maxExecutors", "4"), ("spark.executor.instances", "5")], Some((5, "spark.executor.instances", 0, 4))),
            (vec![("spark.dynamicAllocation.maxExecutors", "4"), ("spark.dynamicAllocation.minExecutors", "6"), ("spark.dynamicAllocation.initialExecutors", "1")],
             Some((6, "spark.dynamicAllocation.minExecutors", 6, 4))),
            // Bounds that meet are accepted; of two settings that give the same count, the first is named.
            (vec![("spark.dynamicAllocation.maxExecutors", "2"), ("spark.dynamicAllocation.minExecutors", "2"), ("spark.dynamicAllocation.initialExecutors", "1")], None),
            (vec![("spark.dynamicAllocation.maxExecutors", "4"), ("spark.dynamicAllocation.minExecutors", "6"), ("spark.dynamicAllocation.initialExecutors", "6")],
             Some((6, "spark.dynamicAllocation.initialExecutors", 6, 4))),
            (vec![("spark.dynamicAllocation.maxExecutors", "1"), ("spark.dynamicAllocation.enabled", "false")], None),
            (vec![("spark.dynamicAllocation.maxExecutors", "lots")], None),
        ];
        for (pairs, refusal) in cases {
            let conf = SparkConf::from_pairs(pairs.clone()).unwrap();
            let got = check_executor_bounds(&conf).err().map(|e| (e.initial, e.set_by, e.min, e.max));
            assert_eq!(got, refusal, "{pairs:?}");
        }
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn modelop_page_job_parameters_are_accepted() {
        let parsed = parse_job_parameters(&params(&[
            ("--conf spark.archives", "s3://my_bucket/my_pyspark_venv.tar.gz#environment"),
            ("--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", "./environment/bin/python"),
            ("--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON", "./environment/bin/python"),
            ("--conf spark.executorEnv.PYSPARK_PYTHON", "./environment/bin/python"),
            ("--conf modelop.serverless.job.app.name", "team-a-app"),
            ("--conf modelop.serverless.job.rolearn", "arn:aws:iam::123456789012:role/job"),
            ("--conf modelop.serverless.job.timeout.minutes", "90"),
            ("--conf", "modelop.serverless.job.max.attempts=3"),
            ("threshold", "0.5"),
        ]))
        .unwrap();
        assert_eq!(parsed.app_name.as_deref(), Some("team-a-app"));
        assert_eq!(parsed.run_controls.timeout_minutes.as_deref(), Some("90"));
        assert_eq!(parsed.run_controls.max_attempts.as_deref(), Some("3"), "any --conf form");
        assert_eq!(parsed.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/job"));
        assert_eq!(parsed.spark_conf.get("spark.archives"), Some("s3://my_bucket/my_pyspark_venv.tar.gz#environment"));
        assert_eq!(parsed.spark_conf.iter().count(), 4, "service keys never reach Spark");
        assert_eq!(parsed.model_parameters, params(&[("threshold", "0.5")]));
    }

    #[test]
    fn hostile_or_malformed_parameters_are_rejected() {
        let cases: &[(&str, &str, &str)] = &[
            ("--conf spark.executor.memory", "4g --jars s3://evil/x.jar", "whitespace"),
            ("--conf spark.executor.memory", "4g\n--jars", "whitespace"),
            ("--conf spark.executor.memory", "", "empty"),
            ("--conf spark.executor.memory", "4g\u{7}", "control character"),
            ("--conf spark.executor.memory", "'4g'", "quote"),
            ("--conf spark.executor.memory", "4g\\", "backslash"),
            ("--conf spark.executor memory", "4g", "must start with 'spark.'"),
            ("--conf spark.x=y", "4g", "must start with 'spark.'"),
            ("--conf --jars", "x", "must start with 'spark.'"),
            ("--conf hadoop.fs.x", "4g", "must start with 'spark.'"),
            ("--conf spark.", "4g", "must start with 'spark.'"),
            ("--conf spark.files", "s3://b/x.py", "reserved"),
            ("--conf spark.submit.pyFiles", "s3://b/x.py", "reserved"),
            ("--conf modelop.serverless.job.queue", "q", "unknown modelop service key"),
            ("--confspark.x", "1", "must start with 'spark.'"),
            ("--conf\tspark.x", "1", "must start with 'spark.'"),
        ];
        for (key, value, needle) in cases {
            let err = parse_job_parameters(&params(&[(key, value)])).expect_err(key).to_string();
            assert!(err.contains(needle), "{key:?}={value:?}: {err}");
        }
    }

    #[test]
    fn spark_submit_flags_map_to_conf_or_are_recorded_as_ignored() {
        // modelop/titanic-spark job_submit/titanic_scoring_job.json, plus the other mapped flags.
        let parsed = parse_job_parameters(&params(&[
            ("--executor-memory", "512MB"),
            ("--total-executor-cores", "10"),
            ("-v", ""),
            ("--driver-memory", "2g"),
            ("--executor-cores", "2"),
            ("--driver-cores", "1"),
            ("--num-executors", "3"),
            ("--name", "titanic"),
            ("--master", "yarn"),
            ("--deploy-mode", "cluster"),
            ("--py-files", "s3://b/lib.py, s3a://b/more.zip"),
            ("--files", "s3://b/lookup.csv"),
            ("threshold", "0.5"),
        ]))
        .unwrap();
        let conf: Vec<(&str, &str)> = parsed.spark_conf.iter().collect();
        assert_eq!(
            conf,
            [
                ("spark.app.name", "titanic"),
                ("spark.driver.cores", "1"),
                ("spark.driver.memory", "2g"),
                ("spark.executor.cores", "2"),
                ("spark.executor.instances", "3"),
                ("spark.executor.memory", "512MB"),
            ]
        );
        assert_eq!(parsed.py_files, ["s3://b/lib.py", "s3a://b/more.zip"]);
        assert_eq!(parsed.files, ["s3://b/lookup.csv"]);
        let ignored: Vec<(&str, &str)> = parsed.ignored.iter().map(|i| (i.parameter.as_str(), i.value.as_str())).collect();
        assert_eq!(ignored, [("--deploy-mode", "cluster"), ("--master", "yarn"), ("--total-executor-cores", "10"), ("-v", "")]);
        assert!(parsed.ignored.iter().all(|i| !i.reason.is_empty()));
        assert_eq!(parsed.model_parameters, params(&[("threshold", "0.5")]), "flags never reach the model as parameters");
    }

    #[test]
    fn conf_in_one_key_and_conf_over_flag() {
        let parsed = parse_job_parameters(&params(&[
            ("--conf", "spark.sql.shuffle.partitions=8"),
            ("--conf spark.executor.memory=4g", ""),
            ("--executor-memory", "512MB"),
            ("--conf spark.archives", "s3://b/env.tar.gz#environment"),
        ]))
        .unwrap();
        assert_eq!(parsed.spark_conf.get("spark.sql.shuffle.partitions"), Some("8"));
        assert_eq!(parsed.spark_conf.get("spark.executor.memory"), Some("4g"), "the explicit --conf wins");
        assert_eq!(parsed.spark_conf.get("spark.archives"), Some("s3://b/env.tar.gz#environment"));
        assert_eq!(parsed.ignored.len(), 1);
        assert_eq!(parsed.ignored[0].parameter, "--executor-memory");
        assert!(parsed.ignored[0].reason.contains("--conf spark.executor.memory"), "{:?}", parsed.ignored[0]);
    }

    #[test]
    fn a_conf_value_may_itself_hold_equals_signs() {
        // Only the first `=` ends the key, in both one-key shapes; the page's shape takes the value as written.
        let parsed = parse_job_parameters(&params(&[
            ("--conf", "spark.driver.extraJavaOptions=-Da=1"),
            ("--conf spark.executor.extraJavaOptions=-Db=2=3", ""),
            ("--conf spark.hadoop.fs.s3a.endpoint", "host?a=b"),
        ]))
        .unwrap();
        assert_eq!(parsed.spark_conf.get("spark.driver.extraJavaOptions"), Some("-Da=1"));
        assert_eq!(parsed.spark_conf.get("spark.executor.extraJavaOptions"), Some("-Db=2=3"));
        assert_eq!(parsed.spark_conf.get("spark.hadoop.fs.s3a.endpoint"), Some("host?a=b"));
        assert!(parsed.model_parameters.is_empty(), "{:?}", parsed.model_parameters);
        // A one-key `--conf <key>=<value>` with a value beside it is not a pair: its key holds `=`.
        let err = parse_job_parameters(&params(&[("--conf spark.x=1", "2")])).unwrap_err();
        assert!(matches!(err, SparkConfError::BadKey(ref key) if key == "spark.x=1"), "{err}");
    }

    #[test]
    fn keys_and_values_at_their_caps_are_taken_and_one_character_over_refused() {
        let key_at_cap = format!("spark.{}", "k".repeat(MAX_KEY_LEN - "spark.".len()));
        assert!(SparkConf::from_pairs([(key_at_cap.clone(), "v")]).is_ok());
        assert!(matches!(SparkConf::from_pairs([(format!("{key_at_cap}k"), "v")]), Err(SparkConfError::BadKey(_))));
        // The value's cap is in characters, not bytes.
        let value_at_cap = "é".repeat(MAX_VALUE_LEN);
        assert!(SparkConf::from_pairs([("spark.x", value_at_cap.clone())]).is_ok());
        let err = SparkConf::from_pairs([("spark.x", format!("{value_at_cap}é"))]).unwrap_err();
        assert_eq!(err, SparkConfError::BadValue { key: "spark.x".into(), reason: "it is longer than 4096 characters" });
        // sparkSubmitParameters of exactly EMR's limit are accepted.
        let mut conf = SparkConf::default();
        assert!(conf.is_empty());
        let mut rendered = 0;
        for i in 0.. {
            let pair = format!("--conf spark.k{i:02}={}", "v".repeat(MAX_VALUE_LEN));
            if rendered + 1 + pair.len() > MAX_SUBMIT_PARAMETERS_LEN {
                break;
            }
            rendered += usize::from(i > 0) + pair.len();
            conf.set(format!("spark.k{i:02}"), "v".repeat(MAX_VALUE_LEN)).unwrap();
        }
        assert!(!conf.is_empty());
        let last = MAX_SUBMIT_PARAMETERS_LEN - rendered - 1 - "--conf spark.zz=".len();
        conf.set("spark.zz".into(), "v".repeat(last)).unwrap();
        assert_eq!(spark_submit_parameters(&SubmitFiles::default(), &conf).map(|p| p.len()), Ok(MAX_SUBMIT_PARAMETERS_LEN));
        conf.set("spark.zz".into(), "v".repeat(last + 1)).unwrap();
        assert_eq!(spark_submit_parameters(&SubmitFiles::default(), &conf), Err(SparkConfError::TooLong(MAX_SUBMIT_PARAMETERS_LEN + 1)));
    }

    #[test]
    fn flags_follow_the_conf_value_rules_and_name_the_flag() {
        let cases: &[(&str, &str, &str)] = &[
            ("--executor-memory", "", "job parameter \"--executor-memory\" (Spark conf spark.executor.memory) is not allowed: it is empty"),
            ("--driver-java-options", "-Da=1 -Db=2", "whitespace"),
            ("--conf", "spark.x", "is empty"),
            ("--conf", "modelop.serverless.job.queue=q", "unknown modelop service key"),
        ];
        for (key, value, needle) in cases {
            let err = parse_job_parameters(&params(&[(key, value)])).expect_err(key).to_string();
            assert!(err.contains(needle), "{key:?}={value:?}: {err}");
        }
    }

    #[test]
    fn job_conf_overrides_service_conf() {
        let service = SparkConf::from_pairs([("spark.archives", "s3://a/env.tar.gz#environment"), ("spark.executor.cores", "2")]).unwrap();
        let job = SparkConf::from_pairs([("spark.archives", "s3://b/other.tar.gz#environment")]).unwrap();
        let merged = service.overlaid_by(&job);
        assert_eq!(merged.get("spark.archives"), Some("s3://b/other.tar.gz#environment"));
        assert_eq!(merged.get("spark.executor.cores"), Some("2"));
    }

    #[test]
    fn renders_files_then_conf_in_key_order() {
        let files = SubmitFiles {
            py_files: vec!["s3://b/p/j/model.py".into(), "s3://b/p/j/util.py".into()],
            files: vec!["s3://b/p/j/job-metadata.json".into()],
        };
        let conf = SparkConf::from_pairs([("spark.b", "2"), ("spark.a", "1")]).unwrap();
        assert_eq!(
            spark_submit_parameters(&files, &conf).unwrap(),
            "--py-files s3://b/p/j/model.py,s3://b/p/j/util.py --files s3://b/p/j/job-metadata.json --conf spark.a=1 --conf spark.b=2"
        );
        assert_eq!(spark_submit_parameters(&SubmitFiles::default(), &SparkConf::default()).unwrap(), "");
    }

    #[test]
    fn rendering_is_bounded_by_emr_limit() {
        let mut conf = SparkConf::default();
        for i in 0..40 {
            conf.set(format!("spark.custom.k{i}"), "v".repeat(MAX_VALUE_LEN)).unwrap();
        }
        assert!(matches!(spark_submit_parameters(&SubmitFiles::default(), &conf), Err(SparkConfError::TooLong(_))));
    }
}
