//! Per-job least privilege: the IAM session policy each job run is started with (StartJobRun
//! `executionIamPolicy`), built from the job's manifest, so a model's Spark code can touch only
//! the S3 objects its own job names. Pure: the manifest decides what goes in,
//! [`crate::launch::policy_document`] how it is written and narrowed, this module whether it fits
//! EMR's limit, whether a job may run without one, and the deployment's settings.
//!
//! AWS facts this module relies on:
//!
//! | fact | source |
//! |---|---|
//! | the run's permissions are the intersection of the execution role and the policy | EMR Serverless User Guide, "Execution IAM policy" (`jobs-cli-execution`) |
//! | `policy` is 1-2,048 characters of `[ -ÿ]` (U+0020-U+00FF); `policyArns` 0-10 ARNs of 20-2,048 characters | EMR Serverless API Reference, `JobRunExecutionIamPolicy` |
//! | the inline policy and the managed policy ARNs *combined* may not exceed 2,048 characters | EMR Serverless User Guide, "Execution IAM policy" (`jobs-cli-execution`), as issue 26 quotes it (the stored copy at hand ends before that page's notes); the same rule in the STS API Reference, `AssumeRole` `PolicyArns`: "the plaintext that you use for both inline and managed session policies can't exceed 2,048 characters" |
//! | `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$`, in `Resource` and in string conditions | IAM User Guide, "IAM policy elements: Variables and tags" (`reference_policies_variables`), "Specifying special characters" |
//! | policy variables need `"Version": "2012-10-17"` and work in session policies | same page |
//! | `s3:ListBucket` is on the bucket ARN, narrowed by the `s3:prefix` condition key | Service Authorization Reference, Amazon S3 |
//! | what the run's role needs to write its logs to CloudWatch Logs: `logs:DescribeLogGroups` (no resource type: `*`); `logs:CreateLogStream`, `logs:DescribeLogStreams`, `logs:PutLogEvents` on the configured log group | EMR Serverless User Guide, "Storing logs" / "Logging for EMR Serverless with Amazon CloudWatch" (the stored copy was not at hand when this was written; the actions are the ones that page lists, to be re-checked against it) |

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;

use crate::job::s3_uri::S3Uri;
use crate::launch::policy_document::PolicyDocument;
pub use crate::launch::policy_document::{iam_literal, JobScope, LOG_STREAM_ACTIONS, READ_ACTIONS, WRITE_ACTIONS};
use crate::launch::run_controls::{ControlSource, RuleViolation};

/// `JobRunExecutionIamPolicy.policy`: at most 2,048 characters (EMR Serverless API Reference), and
/// the policy with the managed policy ARNs combined at most as many (see the module's table).
pub const MAX_POLICY_CHARS: usize = 2048;
/// `JobRunExecutionIamPolicy.policyArns`: at most 10 ARNs (EMR Serverless API Reference).
pub const MAX_POLICY_ARNS: usize = 10;
/// Spark properties that name files Spark itself fetches at start-up (comma-separated URIs, an
/// archive optionally followed by `#alias`): their S3 objects are readable by the run.
pub const FETCHED_FILE_CONF_KEYS: [&str; 8] = [
    "spark.archives",
    "spark.jars",
    "spark.files",
    "spark.submit.pyFiles",
    "spark.yarn.dist.archives",
    "spark.yarn.dist.files",
    "spark.yarn.dist.jars",
    "spark.yarn.dist.pyFiles",
];

/// The deployment's settings of per-job policies (`EMR_SCOPE_JOB_PERMISSIONS`,
/// `EMR_ALLOW_UNSCOPED_JOBS`, `EMR_JOB_POLICY_ARNS`, `EMR_JOB_EXTRA_POLICY_STATEMENTS`), validated
/// by [`crate::config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPermissionSettings {
    /// Whether a job runs scoped unless it says otherwise (default true).
    pub scope_by_default: bool,
    /// Whether a job may opt out with `--conf modelop.serverless.job.scope.permissions false`.
    pub allow_unscoped: bool,
    /// Managed policies sent as `policyArns` with every scoped run.
    pub policy_arns: Vec<String>,
    /// Statements appended to every scoped run's policy, as configured.
    pub extra_statements: Vec<Value>,
}

impl Default for JobPermissionSettings {
    fn default() -> Self {
        JobPermissionSettings { scope_by_default: true, allow_unscoped: false, policy_arns: Vec::new(), extra_statements: Vec::new() }
    }
}

/// Whether a run is scoped, and what said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeDecision {
    pub scoped: bool,
    pub source: ControlSource,
}

/// A job's `--conf modelop.serverless.job.scope.permissions` that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobScopeError {
    #[error("job parameter '--conf {key}' {value:?}: must be true or false", key = crate::launch::spark_conf::SCOPE_PERMISSIONS_KEY)]
    NotBoolean { value: String },
    #[error(
        "job parameter '--conf {key}' false is refused: this deployment runs every job with its own least-privilege policy; \
         running a job with the whole job execution role needs EMR_ALLOW_UNSCOPED_JOBS=true in the configuration",
        key = crate::launch::spark_conf::SCOPE_PERMISSIONS_KEY
    )]
    OptOutRefused,
}

/// Decides whether a job's run is scoped: the job's own value (`true`/`false`, any case) over the
/// configuration. Asking for a scoped run is always allowed; opting out of one the configuration
/// would scope needs `allow_unscoped`.
pub fn decide_scope(settings: &JobPermissionSettings, job_value: Option<&str>) -> Result<ScopeDecision, JobScopeError> {
    let Some(raw) = job_value else {
        return Ok(ScopeDecision { scoped: settings.scope_by_default, source: ControlSource::Configuration });
    };
    let scoped = match raw.trim().to_ascii_lowercase().as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(JobScopeError::NotBoolean { value: crate::text::printable(raw) }),
    };
    if !scoped && settings.scope_by_default && !settings.allow_unscoped {
        return Err(JobScopeError::OptOutRefused);
    }
    Ok(ScopeDecision { scoped, source: ControlSource::JobParameters })
}

/// The policy a run is started with: StartJobRun `executionIamPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionIamPolicy {
    /// Minified JSON, at most [`MAX_POLICY_CHARS`] characters, Latin-1 only.
    pub policy: String,
    pub policy_arns: Vec<String>,
    /// How many merges it took to fit (0: every location as the job named it).
    pub narrowing_steps: usize,
}

/// What the row records about a run's permissions (`jobPermissions`, see CONTRACT.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPermissions {
    pub scoped: bool,
    pub source: ControlSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
    /// The policy's length in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_size: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrowing_steps: Option<usize>,
}

impl JobPermissions {
    pub fn unscoped(source: ControlSource) -> Self {
        JobPermissions { scoped: false, source, policy: None, policy_sha256: None, policy_size: None, policy_arns: Vec::new(), narrowing_steps: None }
    }

    pub fn scoped(source: ControlSource, policy: &ExecutionIamPolicy) -> Self {
        let digest = sha2::Sha256::digest(policy.policy.as_bytes());
        JobPermissions {
            scoped: true,
            source,
            policy: Some(policy.policy.clone()),
            policy_sha256: Some(digest.iter().map(|b| format!("{b:02x}")).collect()),
            policy_size: Some(policy.policy.chars().count()),
            policy_arns: policy.policy_arns.clone(),
            narrowing_steps: Some(policy.narrowing_steps),
        }
    }
}

/// The policy cannot be made to fit EMR's limit, even with every bucket's locations merged: the
/// inline policy and the managed policy ARNs (`EMR_JOB_POLICY_ARNS`) together are over
/// [`MAX_POLICY_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTooLong {
    /// The inline policy's length after the last narrowing step.
    pub size: usize,
    /// The managed policy ARNs' length, all together.
    pub arns_size: usize,
    /// How many managed policy ARNs.
    pub arns: usize,
    pub steps: usize,
}

impl std::error::Error for PolicyTooLong {}

impl fmt::Display for PolicyTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PolicyTooLong { size, arns_size, arns, steps } = self;
        write!(
            f,
            "the job's least-privilege policy (StartJobRun executionIamPolicy.policy) is {size} characters after {steps} narrowing steps \
             (locations merged to their common prefix within each bucket)"
        )?;
        if *arns > 0 {
            write!(f, ", and its {arns} managed policy ARNs (executionIamPolicy.policyArns, EMR_JOB_POLICY_ARNS) {arns_size} more: {} in all", size + arns_size)?;
        }
        write!(
            f,
            "; EMR Serverless accepts at most {MAX_POLICY_CHARS} characters for the inline policy and the managed policy ARNs combined. \
             The job names too many locations (or too long ones) to run scoped; no run was started"
        )
    }
}

/// The S3 locations a Spark conf makes Spark fetch ([`FETCHED_FILE_CONF_KEYS`]); other schemes
/// (`local:`, `file:`, Maven coordinates) are not S3 and need no grant.
pub fn fetched_files<'a>(conf: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<S3Uri> {
    conf.into_iter()
        .filter(|(key, _)| FETCHED_FILE_CONF_KEYS.contains(key))
        .flat_map(|(_, value)| value.split(','))
        .filter_map(|entry| {
            let location = entry.trim().split('#').next().unwrap_or_default();
            S3Uri::from_asset_url(location, false).ok()
        })
        .collect()
}

/// The policy for a job's run: its own S3 locations, its logs, and the configured extras; merged
/// step by step until it and the managed policy ARNs together fit [`MAX_POLICY_CHARS`].
pub fn job_policy(scope: &JobScope, settings: &JobPermissionSettings) -> Result<ExecutionIamPolicy, PolicyTooLong> {
    let arns_size: usize = settings.policy_arns.iter().map(|a| a.chars().count()).sum();
    let budget = MAX_POLICY_CHARS.saturating_sub(arns_size);
    let mut document = PolicyDocument::of(scope);
    let mut steps = 0;
    loop {
        let policy = document.render(scope, &settings.extra_statements);
        let size = policy.chars().count();
        if size <= budget {
            return Ok(ExecutionIamPolicy { policy, policy_arns: settings.policy_arns.clone(), narrowing_steps: steps });
        }
        if !document.narrow() {
            return Err(PolicyTooLong { size, arns_size, arns: settings.policy_arns.len(), steps });
        }
        steps += 1;
    }
}

/// `EMR_JOB_POLICY_ARNS`: comma-separated managed policy ARNs, at most [`MAX_POLICY_ARNS`]; a
/// violation names the offending entry (its value and position).
pub fn policy_arns(raw: &str) -> Result<Vec<String>, RuleViolation> {
    let arns: Vec<String> = raw.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect();
    if arns.len() > MAX_POLICY_ARNS {
        let rule = format!("{} policy ARNs; executionIamPolicy.policyArns takes at most {MAX_POLICY_ARNS}", arns.len());
        return Err(RuleViolation { value: crate::text::printable(raw), rule });
    }
    match arns.iter().enumerate().find(|(_, arn)| !is_managed_policy_arn(arn)) {
        Some((n, arn)) => Err(RuleViolation {
            value: crate::text::printable(arn),
            rule: format!("entry {} is not a managed policy ARN (arn:<partition>:iam::<12-digit account or aws>:policy/<path/name>)", n + 1),
        }),
        None => Ok(arns),
    }
}

/// `EMR_JOB_EXTRA_POLICY_STATEMENTS`: a JSON array of statements (or one statement), each checked
/// by [`check_statement`]; a violation names the offending statement (its text and position).
pub fn extra_statements(raw: &str) -> Result<Vec<Value>, RuleViolation> {
    let parsed: Value = serde_json::from_str(raw)
        .map_err(|e| RuleViolation { value: crate::text::printable(raw).chars().take(200).collect(), rule: format!("not JSON: {e}") })?;
    let statements = match parsed {
        Value::Array(items) => items,
        one => vec![one],
    };
    for (n, statement) in statements.iter().enumerate() {
        check_statement(statement).map_err(|reason| RuleViolation {
            value: crate::text::printable(&statement.to_string()).chars().take(200).collect(),
            rule: format!("statement {}: {reason}", n + 1),
        })?;
    }
    Ok(statements)
}

/// `arn:<partition>:iam::<account or "aws">:policy/<path/name>`, 20-2,048 characters.
pub fn is_managed_policy_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let name = resource.strip_prefix("policy/").unwrap_or("");
    (20..=2048).contains(&arn.len())
        && partition.starts_with("aws")
        && partition.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && (account == "aws" || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())))
        && !name.is_empty()
        && !name.ends_with('/')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
}

/// Checks one configured extra statement: an object with `Effect` `Allow` or `Deny`, one of
/// `Action`/`NotAction` and one of `Resource`/`NotResource` (a string or a non-empty list of
/// strings), an optional alphanumeric `Sid` and `Condition` object, and nothing else (no
/// `Principal`: a session policy has none).
pub fn check_statement(statement: &Value) -> Result<(), String> {
    let Value::Object(fields) = statement else { return Err("a statement must be a JSON object".into()) };
    for key in fields.keys() {
        if !["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"].contains(&key.as_str()) {
            return Err(format!("unknown or unsupported element {key:?} (a session policy statement has Sid, Effect, Action/NotAction, Resource/NotResource, Condition)"));
        }
    }
    match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        _ => return Err("Effect must be \"Allow\" or \"Deny\"".into()),
    }
    let strings = |v: &Value| match v {
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty() && items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty())),
        _ => false,
    };
    for (one, other) in [("Action", "NotAction"), ("Resource", "NotResource")] {
        match (fields.get(one), fields.get(other)) {
            (Some(v), None) | (None, Some(v)) if strings(v) => {}
            _ => return Err(format!("exactly one of {one} and {other} is required, as a string or a non-empty list of strings")),
        }
    }
    if let Some(sid) = fields.get("Sid") {
        if !sid.as_str().is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())) {
            return Err("Sid must be a non-empty string of letters and digits".into());
        }
    }
    if fields.get("Condition").is_some_and(|c| !c.is_object()) {
        return Err("Condition must be an object".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    fn uri(text: &str) -> S3Uri {
        S3Uri::parse(text).unwrap()
    }

    fn scope(reads: &[&str], writes: &[&str]) -> JobScope {
        JobScope {
            partition: "aws".into(),
            account: "123456789012".into(),
            region: Some("us-east-1".into()),
            log_group: "/aws/emr-serverless".into(),
            own_folder: Some(uri(STAGED)),
            reads: reads.iter().map(|u| uri(u)).collect(),
            writes: writes.iter().map(|u| uri(u)).collect(),
        }
    }

    const STAGED: &str = "s3://staging/modelop-spark-serverless/job-1/";
    const RESULTS: &str = "s3://staging/modelop-spark-serverless/job-1/results/";

    /// The generated statements have no `Sid`: each is found by its actions.
    const READ: &str = "read";
    const WRITE: &str = "write";
    const LIST: &str = "list";
    const LOG_GROUPS: &str = "log groups";
    const LOGS: &str = "logs";

    fn statement<'a>(policy: &'a Value, which: &str) -> &'a Value {
        let action = match which {
            READ => json!("s3:GetObject"),
            WRITE => json!(WRITE_ACTIONS),
            LIST => json!("s3:ListBucket"),
            LOG_GROUPS => json!("logs:DescribeLogGroups"),
            _ => json!(LOG_STREAM_ACTIONS),
        };
        policy["Statement"].as_array().unwrap().iter().find(|s| s["Action"] == action).unwrap_or_else(|| panic!("no {which} statement in {policy}"))
    }

    fn strings(value: &Value) -> Vec<String> {
        value.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
    }

    fn resources(policy: &Value, which: &str) -> Vec<String> {
        strings(&statement(policy, which)["Resource"])
    }

    /// The list statement's prefixes (one statement for every bucket of a job).
    fn list_prefixes(policy: &Value) -> Vec<String> {
        strings(&statement(policy, LIST)["Condition"]["StringLike"]["s3:prefix"])
    }

    /// Where `text` has whitespace outside its JSON strings (the byte offset of the first), if anywhere.
    fn whitespace_outside_strings(text: &str) -> Option<usize> {
        let (mut in_string, mut escaped) = (false, false);
        for (at, c) in text.char_indices() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
            } else if c.is_whitespace() {
                return Some(at);
            }
        }
        None
    }

    /// The policy is minified: no whitespace outside its strings, and (ASCII text, where serde_json
    /// writes the same characters) exactly what serde_json writes for the value it parses to.
    fn assert_minified(policy: &str) {
        let value: Value = serde_json::from_str(policy).expect("the policy is JSON");
        assert_eq!(whitespace_outside_strings(policy), None, "whitespace outside strings: {policy}");
        if !policy.contains("\\u") {
            assert_eq!(serde_json::to_string(&value).unwrap(), policy, "not minified");
        }
    }

    fn built(scope: &JobScope, settings: &JobPermissionSettings) -> (ExecutionIamPolicy, Value) {
        let policy = job_policy(scope, settings).expect("a policy that fits");
        let value = serde_json::from_str(&policy.policy).expect("the policy is JSON");
        (policy, value)
    }

    #[test]
    fn each_job_shape_gets_exactly_its_own_locations() {
        let s = "arn:aws:s3:::staging/modelop-spark-serverless/job-1/";
        struct Case {
            name: &'static str,
            reads: Vec<&'static str>,
            writes: Vec<&'static str>,
            read: Vec<String>,
            write: Vec<String>,
        }
        let cases = [
            Case {
                // Inline source: everything the driver needs is staged.
                name: "inline source, a file input, a folder output",
                reads: vec![STAGED, "s3://data/in/input.csv"],
                writes: vec![RESULTS, "s3://data/out/scored/"],
                read: vec![
                    "arn:aws:s3:::data/in/input.csv".into(),
                    "arn:aws:s3:::data/in/input.csv/*".into(),
                    format!("{s}*"),
                ],
                // The folder output also as an object (HEAD probes) and its EMRFS marker.
                write: vec![
                    "arn:aws:s3:::data/out/scored".into(),
                    "arn:aws:s3:::data/out/scored/*".into(),
                    "arn:aws:s3:::data/out/scored_${$}folder${$}".into(),
                    format!("{s}results*"),
                ],
            },
            Case {
                // An S3 source is copied into staging by the submit function; its model asset is read by the model.
                name: "S3 model asset, a folder input, an object output",
                reads: vec![STAGED, "s3://models/m/weights.bin", "s3://data/in/"],
                writes: vec![RESULTS, "s3://data/out/scored.parquet"],
                read: vec![
                    "arn:aws:s3:::data/in/*".into(),
                    "arn:aws:s3:::models/m/weights.bin".into(),
                    "arn:aws:s3:::models/m/weights.bin/*".into(),
                    format!("{s}*"),
                ],
                write: vec![
                    "arn:aws:s3:::data/out/scored.parquet".into(),
                    "arn:aws:s3:::data/out/scored.parquet/*".into(),
                    "arn:aws:s3:::data/out/scored.parquet_${$}folder${$}".into(),
                    format!("{s}results*"),
                ],
            },
            Case {
                // FILE inputs and outputs live in the job's own staging folder: covered by it (read); a write
                // there is one prefix, marker and folder included (every key under the folder is the job's).
                name: "FILE input and output in staging",
                reads: vec![STAGED, "s3://staging/modelop-spark-serverless/job-1/inputs/in.csv"],
                writes: vec![RESULTS, "s3://staging/modelop-spark-serverless/job-1/outputs/out.csv"],
                read: vec![format!("{s}*")],
                write: vec![format!("{s}outputs/out.csv*"), format!("{s}results*")],
            },
        ];
        for case in cases {
            let (policy, value) = built(&scope(&case.reads, &case.writes), &JobPermissionSettings::default());
            assert_eq!(resources(&value, READ), case.read, "{}", case.name);
            assert_eq!(resources(&value, WRITE), case.write, "{}: outputs are read back too", case.name);
            assert_eq!(policy.narrowing_steps, 0, "{}", case.name);
            assert!(value["Statement"].as_array().unwrap().iter().all(|s| s.get("Sid").is_none()), "{}: no Sid", case.name);
            assert_minified(&policy.policy);
        }
    }

    #[test]
    fn listing_is_one_statement_on_the_jobs_buckets_and_their_prefixes() {
        let (_, value) = built(&scope(&[STAGED, "s3://data/in/input.csv"], &[RESULTS, "s3://data/out/scored/"]), &JobPermissionSettings::default());
        // Each location as `K*` (names only), the output's parents exactly; results/ is inside the staging folder.
        assert_eq!(list_prefixes(&value), ["in/input.csv*", "modelop-spark-serverless/job-1/*", "out/", "out/scored*"]);
        assert_eq!(resources(&value, LIST), ["arn:aws:s3:::data", "arn:aws:s3:::staging"]);
        let lists = value["Statement"].as_array().unwrap().iter().filter(|s| s["Action"] == "s3:ListBucket").count();
        assert_eq!(lists, 1, "one list statement for all buckets");
        // A bucket named whole is listable whole, in a statement of its own.
        let (_, value) = built(&scope(&[STAGED, "s3://open/"], &[RESULTS]), &JobPermissionSettings::default());
        let lists: Vec<&Value> = value["Statement"].as_array().unwrap().iter().filter(|s| s["Action"] == "s3:ListBucket").collect();
        assert_eq!(lists.len(), 2, "{value}");
        assert_eq!(lists[0]["Resource"], json!(["arn:aws:s3:::open"]));
        assert_eq!(lists[0]["Condition"]["StringLike"]["s3:prefix"], json!(["*"]));
        assert_eq!(lists[1]["Condition"]["StringLike"]["s3:prefix"], json!(["modelop-spark-serverless/job-1/*"]));
    }

    #[test]
    fn an_output_gets_what_emrfs_and_s3a_write_around_it_and_no_more() {
        let (_, value) = built(&scope(&[STAGED], &[RESULTS, "s3://data/team/2024/out/scored/"]), &JobPermissionSettings::default());
        assert_eq!(
            resources(&value, WRITE),
            [
                "arn:aws:s3:::data/team/2024/out/scored",
                "arn:aws:s3:::data/team/2024/out/scored/*",
                "arn:aws:s3:::data/team/2024/out/scored_${$}folder${$}",
                "arn:aws:s3:::staging/modelop-spark-serverless/job-1/results*",
            ]
        );
        // Every parent exactly (mkdirs walks up), never a parent's subtree.
        assert_eq!(list_prefixes(&value), ["modelop-spark-serverless/job-1/*", "team/", "team/2024/", "team/2024/out/", "team/2024/out/scored*"]);
        // A `$` in an output's key is escaped in the marker too.
        let (_, value) = built(&scope(&[STAGED], &[RESULTS, "s3://data/a$b"]), &JobPermissionSettings::default());
        assert!(resources(&value, WRITE).contains(&"arn:aws:s3:::data/a${$}b_${$}folder${$}".to_string()), "{value}");
        // An output at a bucket's root is the bucket: nothing beside it.
        let (_, value) = built(&scope(&[STAGED], &[RESULTS, "s3://data/"]), &JobPermissionSettings::default());
        assert_eq!(resources(&value, WRITE)[0], "arn:aws:s3:::data/*");
    }

    #[test]
    fn logs_statements_name_the_log_group_of_the_run() {
        let (_, value) = built(&scope(&[STAGED], &[RESULTS]), &JobPermissionSettings::default());
        assert_eq!(statement(&value, LOGS)["Resource"], "arn:aws:logs:us-east-1:123456789012:log-group:/aws/emr-serverless:*");
        assert_eq!(statement(&value, LOG_GROUPS)["Resource"], "*");
        let mut anywhere = scope(&[STAGED], &[RESULTS]);
        anywhere.region = None;
        anywhere.partition = "aws-cn".into();
        let (_, value) = built(&anywhere, &JobPermissionSettings::default());
        assert_eq!(statement(&value, LOGS)["Resource"], "arn:aws-cn:logs:*:123456789012:log-group:/aws/emr-serverless:*");
        assert!(resources(&value, READ)[0].starts_with("arn:aws-cn:s3:::"));
    }

    #[test]
    fn extra_statements_are_appended_and_policy_arns_passed() {
        let glue = json!({"Sid": "Glue", "Effect": "Allow", "Action": ["glue:GetTable"], "Resource": "*"});
        let settings = JobPermissionSettings {
            policy_arns: vec!["arn:aws:iam::123456789012:policy/feature-store-read".into()],
            extra_statements: vec![glue.clone()],
            ..JobPermissionSettings::default()
        };
        let (policy, value) = built(&scope(&[STAGED], &[RESULTS]), &settings);
        assert_eq!(value["Statement"].as_array().unwrap().last().unwrap(), &glue);
        assert_eq!(policy.policy_arns, settings.policy_arns);
        assert_eq!(value["Version"], "2012-10-17");
    }

    #[test]
    fn spark_conf_files_are_readable_wherever_they_are() {
        let conf = [
            ("spark.archives", "s3://env/venv.tar.gz#environment"),
            ("spark.jars", "s3a://libs/a.jar,local:///opt/b.jar,https://libs.s3.amazonaws.com/c.jar"),
            ("spark.executor.cores", "s3://not/a/file"),
            ("spark.jars.packages", "org.apache:x:1.0"),
        ];
        let found: Vec<String> = fetched_files(conf).iter().map(S3Uri::to_string).collect();
        assert_eq!(found, ["s3://env/venv.tar.gz", "s3://libs/a.jar", "s3://libs/c.jar"]);
    }

    #[test]
    fn hostile_keys_cannot_widen_the_policy() {
        let cases = [
            ("s3://data/in/*", "arn:aws:s3:::data/in/${*}", "in/${*}*"),
            ("s3://data/in/file?.csv", "arn:aws:s3:::data/in/file${?}.csv", "in/file${?}.csv*"),
            ("s3://data/${aws:username}/x", "arn:aws:s3:::data/${$}{aws:username}/x", "${$}{aws:username}/x*"),
            ("s3://data/a*b/", "arn:aws:s3:::data/a${*}b/*", "a${*}b/*"),
        ];
        for (input, arn, prefix) in cases {
            let (_, value) = built(&scope(&[STAGED, input], &[RESULTS]), &JobPermissionSettings::default());
            let read = resources(&value, READ);
            assert!(read.contains(&arn.to_string()), "{input}: {read:?}");
            assert!(list_prefixes(&value).contains(&prefix.to_string()), "{input}");
            // Only the generated wildcards remain: one trailing `*` per prefix grant, no `?`.
            for r in &read {
                let unescaped = r.replace("${*}", "").replace("${?}", "").replace("${$}", "");
                assert!(!unescaped.contains('?') && unescaped.trim_end_matches('*').matches('*').count() == 0, "{input}: {r}");
            }
        }
    }

    #[test]
    fn keys_outside_latin1_are_json_escaped() {
        let (policy, value) = built(&scope(&[STAGED, "s3://data/入力/データ.csv"], &[RESULTS]), &JobPermissionSettings::default());
        assert!(policy.policy.chars().all(|c| (' '..='~').contains(&c)), "{}", policy.policy);
        assert!(resources(&value, READ).contains(&"arn:aws:s3:::data/入力/データ.csv".to_string()));
        assert_minified(&policy.policy);
    }

    #[test]
    fn the_policy_is_minified_whatever_its_keys_hold() {
        // Spaces inside keys (so inside the policy's strings) are the keys' own; none may be outside them.
        let spaced = scope(&[STAGED, "s3://data/in/q3 input.csv", r#"s3://data/in/a "quoted" \ name.csv"#], &[RESULTS, "s3://data/out/q3 scores/"]);
        let settings = JobPermissionSettings {
            extra_statements: vec![json!({"Sid": "Glue", "Effect": "Allow", "Action": ["glue:GetTable"], "Resource": "*"})],
            ..JobPermissionSettings::default()
        };
        for (name, scope, spaces_in_keys) in [("spaces and escapes in keys", spaced, true), ("the German-credit job", german_credit(), false)] {
            let (policy, value) = built(&scope, &settings);
            assert_eq!(policy.policy.contains(' '), spaces_in_keys, "{name}: {}", policy.policy);
            assert_minified(&policy.policy);
            // The check finds whitespace where a pretty printer puts it.
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            assert!(whitespace_outside_strings(&pretty).is_some(), "{name}: {pretty}");
        }
        assert_eq!(whitespace_outside_strings(r#"{"a":"b c","d":["e\" f"]}"#), None, "inside strings, escaped quotes included");
        assert_eq!(whitespace_outside_strings(r#"{"a": "b"}"#), Some(5));
        assert_eq!(whitespace_outside_strings("{\"a\":\"b\"}\n"), Some(9));
    }

    /// `n` inputs of `len`-character keys in one bucket, plus the usual staging and output.
    fn many(n: usize, len: usize, buckets: usize) -> JobScope {
        let mut reads: Vec<String> =
            (0..n).map(|i| format!("s3://data{}/team/inputs/{i:03}-{}", i % buckets, "k".repeat(len.saturating_sub(20)))).collect();
        reads.push(STAGED.into());
        let reads: Vec<&str> = reads.iter().map(String::as_str).collect();
        scope(&reads, &[RESULTS, "s3://out/scored/"])
    }

    #[test]
    fn narrowing_merges_step_by_step_within_buckets_and_fails_closed() {
        // (case, scope, the step at which it fits; None: it cannot)
        let cases: Vec<(&str, JobScope, Option<usize>)> = vec![
            ("small job fits as named", many(2, 30, 1), Some(0)),
            // Each input's object and folder merge first (12 steps), then 000-009 into `team/inputs/00*`.
            ("12 inputs fit after each object merges with its folder, and one more", many(12, 60, 1), Some(13)),
            ("40 inputs in one bucket", many(40, 40, 1), Some(43)),
            ("40 inputs in 4 buckets merge within each bucket", many(40, 40, 4), Some(53)),
            ("a 400-character key fits as named", scope(&[STAGED, &format!("s3://data/{}", "k".repeat(400))], &[RESULTS]), Some(0)),
            // Read and listed, a 1,020-character key is more than 2,048 characters however it is merged.
            ("a 1,020-character key cannot fit", scope(&[STAGED, &format!("s3://data/{}", "k".repeat(1020))], &[RESULTS]), None),
        ];
        let mut fitted = Vec::new();
        for (name, scope, _) in &cases {
            let outcome = job_policy(scope, &JobPermissionSettings::default());
            if let Ok(policy) = &outcome {
                assert!(policy.policy.chars().count() <= MAX_POLICY_CHARS, "{name}");
                let value: Value = serde_json::from_str(&policy.policy).unwrap();
                // Never wider than the buckets the job names: every resource is in one of them.
                let named: BTreeSet<String> = scope.reads.iter().chain(&scope.writes).map(|u| u.bucket.clone()).collect();
                for r in resources(&value, READ).iter().chain(&resources(&value, WRITE)) {
                    let (bucket, key) = r.trim_start_matches("arn:aws:s3:::").split_once('/').expect("an object ARN");
                    assert!(named.contains(bucket) && !key.is_empty(), "{name}: {r}");
                }
            }
            fitted.push((*name, outcome.ok().map(|p| p.narrowing_steps)));
        }
        let expected: Vec<(&str, Option<usize>)> = cases.iter().map(|(name, _, steps)| (*name, *steps)).collect();
        assert_eq!(fitted, expected);
    }

    const GC_STAGED: &str = "s3://modelop-staging-123456789012/modelop-spark-serverless/3f2b8c1e-7d4a-4e9b-a6c5-0d1e2f3a4b5c/";

    /// A German-credit scoring job as ModelOp writes it, its locations in `buckets` buckets: its
    /// staging folder (a UUID job id), two inputs (the data and a baseline), a model asset, two
    /// outputs (scores and metrics); with 8 buckets also a Python environment (`spark.archives`)
    /// and a drift report, each location in a bucket of its own. 1: everything in the staging
    /// bucket; 2: everything else in `credit-data`; 4: inputs in `credit-data`, the model in
    /// `credit-models`, outputs in `credit-scores`.
    fn german_credit_in(buckets: usize) -> JobScope {
        let bucket = |role: &str| match (buckets, role) {
            (1, _) => "modelop-staging-123456789012",
            (2, _) | (4, "data" | "baseline") => "credit-data",
            (4, "model") => "credit-models",
            (4, _) => "credit-scores",
            (_, "data") => "credit-data",
            (_, "baseline") => "credit-baselines",
            (_, "model") => "credit-models",
            (_, "env") => "credit-envs",
            (_, "scored") => "credit-scores",
            (_, "metrics") => "credit-metrics",
            _ => "credit-drift",
        };
        let at = |role: &str, key: &str| format!("s3://{}/german_credit/{key}", bucket(role));
        let results = format!("{GC_STAGED}results/");
        let mut reads = vec![GC_STAGED.to_string(), at("data", "german_credit_data.csv"), at("baseline", "german_credit_baseline.csv"), at("model", "v3/model.pkl")];
        let mut writes = vec![results, at("scored", "scored/"), at("metrics", "metrics.json")];
        if buckets == 8 {
            reads.push(at("env", "venv.tar.gz"));
            writes.push(at("drift", "drift_report.json"));
        }
        let reads: Vec<&str> = reads.iter().map(String::as_str).collect();
        let writes: Vec<&str> = writes.iter().map(String::as_str).collect();
        let mut job = scope(&reads, &writes);
        job.own_folder = Some(uri(GC_STAGED));
        let named: BTreeSet<&str> = job.reads.iter().chain(&job.writes).map(|u| u.bucket.as_str()).collect();
        assert_eq!(named.len(), buckets, "{named:?}");
        job
    }

    fn german_credit() -> JobScope {
        german_credit_in(4)
    }

    #[test]
    fn realistic_jobs_policy_sizes_as_recorded() {
        // (buckets, characters as the job names its locations, narrowing steps, characters sent), as
        // shared/README.md records them ("The limit"): a change of the policy's layout or grants
        // changes these, and the README with them. Why they cannot be under two thirds of the limit
        // without wider grants is there too.
        let recorded = [(1, 1_999, 0, 1_999), (2, 1_822, 0, 1_822), (4, 1_896, 0, 1_896), (8, 2_395, 5, 1_933)];
        let mut measured = Vec::new();
        for (buckets, ..) in recorded {
            let scope = german_credit_in(buckets);
            let unnarrowed = PolicyDocument::of(&scope).render(&scope, &[]).chars().count();
            let (policy, value) = built(&scope, &JobPermissionSettings::default());
            assert_minified(&policy.policy);
            if policy.narrowing_steps == 0 {
                // Every location as named: each of the two outputs' object, folder and EMRFS marker; results/.
                assert_eq!(resources(&value, WRITE).len(), 7, "{buckets} buckets: {value}");
            }
            measured.push((buckets, unnarrowed, policy.narrowing_steps, policy.policy.chars().count()));
        }
        assert_eq!(measured, recorded);
    }

    #[test]
    fn managed_policy_arns_count_against_the_combined_limit() {
        let arn = |i: usize| format!("arn:aws:iam::123456789012:policy/modelop/feature-store-read-access-{i:02}");
        const NARROWED: usize = usize::MAX; // fits after one step or more
        // (case, ARNs, fits after how many steps; None: cannot fit)
        let cases: Vec<(&str, Vec<String>, Option<usize>)> = vec![
            ("two ARNs leave room", (0..2).map(arn).collect(), Some(0)),
            ("ten ARNs need narrowing", (0..10).map(arn).collect(), Some(NARROWED)),
            ("ARNs as long as the limit leave no room", vec![format!("arn:aws:iam::123456789012:policy/{}", "p".repeat(1000)); 2], None),
        ];
        for (name, arns, expected) in cases {
            let settings = JobPermissionSettings { policy_arns: arns.clone(), ..JobPermissionSettings::default() };
            let arns_size: usize = arns.iter().map(String::len).sum();
            match (job_policy(&german_credit(), &settings), expected) {
                (Ok(policy), Some(steps)) => {
                    assert!(policy.policy.len() + arns_size <= MAX_POLICY_CHARS, "{name}: {} + {arns_size}", policy.policy.len());
                    if steps == NARROWED {
                        assert!(policy.narrowing_steps > 0, "{name}: {policy:?}");
                    } else {
                        assert_eq!(policy.narrowing_steps, steps, "{name}");
                    }
                    assert_eq!(policy.policy_arns, arns, "{name}");
                }
                (Err(err), None) => {
                    assert_eq!((err.arns, err.arns_size), (2, arns_size), "{name}");
                    let message = err.to_string();
                    assert!(message.contains("at most 2048 characters for the inline policy and the managed policy ARNs combined"), "{message}");
                    assert!(message.contains(&format!("{} in all", err.size + arns_size)) && message.contains("no run was started"), "{message}");
                }
                (other, _) => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_policy_that_cannot_fit_is_an_error_naming_limit_and_size() {
        // 80 buckets: one grant each, nothing left to merge.
        let reads: Vec<String> = (0..80).map(|i| format!("s3://bucket-number-{i:03}/")).collect();
        let reads: Vec<&str> = reads.iter().map(String::as_str).collect();
        let err = job_policy(&scope(&reads, &[RESULTS]), &JobPermissionSettings::default()).unwrap_err();
        assert!(err.size > MAX_POLICY_CHARS, "{err:?}");
        let message = err.to_string();
        assert!(message.contains("2048") && message.contains(&err.size.to_string()) && message.contains("no run was started"), "{message}");
        assert!(!message.contains("managed policy ARNs (") && message.contains("combined"), "no ARNs configured: {message}");
    }

    #[test]
    fn opting_out_needs_configuration() {
        let on = JobPermissionSettings::default();
        let allowing = JobPermissionSettings { allow_unscoped: true, ..JobPermissionSettings::default() };
        let off = JobPermissionSettings { scope_by_default: false, ..JobPermissionSettings::default() };
        let decided = |scoped, source| Ok(ScopeDecision { scoped, source });
        let cases = [
            (&on, None, decided(true, ControlSource::Configuration)),
            (&on, Some("false"), Err(JobScopeError::OptOutRefused)),
            (&on, Some("TRUE"), decided(true, ControlSource::JobParameters)),
            (&allowing, Some("false"), decided(false, ControlSource::JobParameters)),
            (&allowing, None, decided(true, ControlSource::Configuration)),
            (&off, None, decided(false, ControlSource::Configuration)),
            (&off, Some("true"), decided(true, ControlSource::JobParameters)),
            (&off, Some("false"), decided(false, ControlSource::JobParameters)),
            (&on, Some("no"), Err(JobScopeError::NotBoolean { value: "no".into() })),
        ];
        for (settings, value, expected) in cases {
            assert_eq!(decide_scope(settings, value), expected, "{settings:?} {value:?}");
        }
        assert!(JobScopeError::OptOutRefused.to_string().contains("EMR_ALLOW_UNSCOPED_JOBS=true"));
    }

    #[test]
    fn row_record_carries_policy_hash_and_size() {
        let policy = job_policy(&scope(&[STAGED], &[RESULTS]), &JobPermissionSettings::default()).unwrap();
        let row = serde_json::to_value(JobPermissions::scoped(ControlSource::Configuration, &policy)).unwrap();
        assert_eq!(row["scoped"], true);
        assert_eq!(row["policy"], policy.policy.as_str());
        assert_eq!(row["policySize"], policy.policy.len());
        assert_eq!(row["policySha256"].as_str().unwrap().len(), 64);
        assert_eq!(serde_json::to_value(JobPermissions::unscoped(ControlSource::JobParameters)).unwrap(), json!({"scoped": false, "source": "jobParameters"}));
    }

    #[test]
    fn configured_statements_and_arns_are_checked() {
        let cases = [
            (json!({"Effect": "Allow", "Action": "glue:GetTable", "Resource": "*"}), None),
            (json!({"Sid": "Kms", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["arn:aws:kms:us-east-1:123456789012:key/k"], "Condition": {}}), None),
            (json!({"Effect": "Allow", "Action": "s3:*"}), Some("Resource")),
            (json!({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}), Some("Effect")),
            (json!({"Effect": "Allow", "Action": "s3:*", "NotAction": "x", "Resource": "*"}), Some("exactly one of Action")),
            (json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}), Some("Principal")),
            (json!({"Effect": "Allow", "Action": [], "Resource": "*"}), Some("Action")),
            (json!({"Sid": "no spaces", "Effect": "Allow", "Action": "a:b", "Resource": "*"}), Some("Sid")),
            (json!(["not", "an", "object"]), Some("object")),
        ];
        for (statement, problem) in cases {
            match (check_statement(&statement), problem) {
                (Ok(()), None) => {}
                (Err(reason), Some(word)) => assert!(reason.contains(word), "{statement}: {reason}"),
                (other, _) => panic!("{statement}: {other:?}"),
            }
        }
        let arns = [
            ("arn:aws:iam::123456789012:policy/feature-store-read", true),
            ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", true),
            ("arn:aws-cn:iam::123456789012:policy/team/x", true),
            ("arn:aws:iam::123456789012:role/x", false),
            ("arn:aws:iam::12345:policy/x", false),
            ("arn:aws:iam::123456789012:policy/", false),
            ("arn:aws:s3:::bucket", false),
        ];
        for (arn, ok) in arns {
            assert_eq!(is_managed_policy_arn(arn), ok, "{arn}");
        }
    }

    #[test]
    fn at_most_ten_policy_arns_and_each_a_managed_policy() {
        let list = |n: usize| (1..=n).map(|i| format!("arn:aws:iam::123456789012:policy/p{i}")).collect::<Vec<_>>().join(", ");
        assert_eq!(policy_arns(&list(MAX_POLICY_ARNS)).map(|a| a.len()), Ok(MAX_POLICY_ARNS), "exactly the limit");
        assert_eq!(policy_arns(" , ").map(|a| a.len()), Ok(0), "blank entries are no entries");
        let too_many = policy_arns(&list(MAX_POLICY_ARNS + 1)).unwrap_err();
        assert_eq!(too_many.rule, "11 policy ARNs; executionIamPolicy.policyArns takes at most 10");
        let wrong = policy_arns("arn:aws:iam::123456789012:policy/a,arn:aws:iam::123456789012:role/b").unwrap_err();
        assert_eq!((wrong.value.as_str(), wrong.rule.starts_with("entry 2 is not a managed policy ARN")), ("arn:aws:iam::123456789012:role/b", true), "{wrong:?}");
    }
}
