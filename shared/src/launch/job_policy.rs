//! Per-job least privilege: the IAM session policy each job run is started with (StartJobRun
//! `executionIamPolicy`), built from the job's manifest, so a model's Spark code can touch only
//! the S3 objects its own job names. Pure: the manifest decides what goes in, this module how it
//! is written, how it is narrowed to fit EMR's limit, and whether a job may run without one.
//!
//! AWS facts this module relies on:
//!
//! | fact | source |
//! |---|---|
//! | the run's permissions are the intersection of the execution role and the policy | EMR Serverless User Guide, "Execution IAM policy" (`jobs-cli-execution`) |
//! | `policy` is 1-2,048 characters of `[ -ÿ]` (U+0020-U+00FF); `policyArns` 0-10 ARNs of 20-2,048 characters | EMR Serverless API Reference, `JobRunExecutionIamPolicy` |
//! | `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$`, in `Resource` and in string conditions | IAM User Guide, "IAM policy elements: Variables and tags" (`reference_policies_variables`), "Specifying special characters" |
//! | policy variables need `"Version": "2012-10-17"` and work in session policies | same page |
//! | `s3:ListBucket` is on the bucket ARN, narrowed by the `s3:prefix` condition key | Service Authorization Reference, Amazon S3 |
//! | what the run's role needs to write its logs to CloudWatch Logs: `logs:DescribeLogGroups` (no resource type: `*`); `logs:CreateLogStream`, `logs:DescribeLogStreams`, `logs:PutLogEvents` on the configured log group | EMR Serverless User Guide, "Storing logs" / "Logging for EMR Serverless with Amazon CloudWatch" (the stored copy was not at hand when this was written; the actions are the ones that page lists, to be re-checked against it) |

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::launch::run_controls::{ControlSource, RuleViolation};
use crate::job::s3_uri::S3Uri;

/// `JobRunExecutionIamPolicy.policy`: at most 2,048 characters (EMR Serverless API Reference).
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
/// What a job may do on what it reads (`s3:GetObject` also answers HeadObject).
pub const READ_ACTIONS: [&str; 1] = ["s3:GetObject"];
/// What a job may do on what it writes: Spark's committers write, read back, rename (copy and
/// delete) and abort multipart uploads under an output.
pub const WRITE_ACTIONS: [&str; 4] = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"];
/// On the configured log group (see the module's table).
pub const LOG_STREAM_ACTIONS: [&str; 3] = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"];

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

/// What a job's run touches, as the manifest names it: S3 locations (a key ending in `/` or empty
/// is a folder; any other key is an object or, as Spark reads paths, the folder under it), and
/// where its logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobScope {
    /// The AWS partition (`aws`, `aws-cn`, `aws-us-gov`), from the execution role's ARN.
    pub partition: String,
    /// The execution role's account, which owns the log group.
    pub account: String,
    /// The log group's region; `None`: any (`*`), when no region is configured.
    pub region: Option<String>,
    pub log_group: String,
    /// Readable: the staging folder, inputs, model assets, files Spark fetches.
    pub reads: Vec<S3Uri>,
    /// Readable and writable: outputs and the job's `results/`.
    pub writes: Vec<S3Uri>,
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

/// The policy cannot be made to fit EMR's limit, even with every bucket's locations merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the job's least-privilege policy (StartJobRun executionIamPolicy.policy) is {size} characters after {steps} narrowing steps \
     (locations merged to their common prefix within each bucket); EMR Serverless accepts at most {MAX_POLICY_CHARS}. \
     The job names too many locations (or too long ones) to run scoped; no run was started"
)]
pub struct PolicyTooLong {
    pub size: usize,
    pub steps: usize,
}

/// One grant within a bucket: an exact object key, or (`prefix`) every key that starts with it.
/// Ordered by key, so a bucket's grants read in key order and close keys sit side by side.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    key: String,
    prefix: bool,
}

impl Grant {
    fn object(key: &str) -> Grant {
        Grant { key: key.to_string(), prefix: false }
    }

    fn prefix(key: &str) -> Grant {
        Grant { key: key.to_string(), prefix: true }
    }

    fn covers(&self, other: &Grant) -> bool {
        self.prefix && other != self && other.key.starts_with(self.key.as_str())
    }

    /// The IAM pattern of the key: literal characters escaped, `*` after a prefix.
    fn pattern(&self) -> String {
        if self.prefix {
            format!("{}*", iam_literal(&self.key))
        } else {
            iam_literal(&self.key)
        }
    }
}

/// Grants per bucket.
type Grants = BTreeMap<String, BTreeSet<Grant>>;

/// The grants a location needs: a folder is its prefix; an object key is the object and the
/// folder under it (Spark reads and writes a path as either).
fn add_location(grants: &mut Grants, uri: &S3Uri) {
    let set = grants.entry(uri.bucket.clone()).or_default();
    if uri.key.is_empty() || uri.key.ends_with('/') {
        set.insert(Grant::prefix(&uri.key));
    } else {
        set.insert(Grant::object(&uri.key));
        set.insert(Grant::prefix(&format!("{}/", uri.key)));
    }
}

/// Drops grants another prefix grant of the same bucket already covers.
fn normalise(grants: &mut Grants) {
    for set in grants.values_mut() {
        let covered: Vec<Grant> = set.iter().filter(|g| set.iter().any(|p| p.covers(g))).cloned().collect();
        for grant in covered {
            set.remove(&grant);
        }
    }
}

/// A literal for an IAM `Resource` or string condition: `$`, `*` and `?` written as the policy
/// variables `${$}`, `${*}` and `${?}`, so a key holding them matches only itself.
pub fn iam_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '$' => out.push_str("${$}"),
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            c => out.push(c),
        }
    }
    out
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

struct Grantable {
    read: Grants,
    write: Grants,
}

impl Grantable {
    fn of(scope: &JobScope) -> Grantable {
        let (mut read, mut write) = (Grants::new(), Grants::new());
        for uri in &scope.reads {
            add_location(&mut read, uri);
        }
        // Writes are readable too: WRITE_ACTIONS has s3:GetObject, so they are not repeated in read.
        for uri in &scope.writes {
            add_location(&mut write, uri);
        }
        let mut grantable = Grantable { read, write };
        grantable.normalise();
        grantable
    }

    fn normalise(&mut self) {
        normalise(&mut self.read);
        normalise(&mut self.write);
    }

    /// One narrowing step: the two grants of one bucket (read or write) with the longest common
    /// key prefix become that prefix (the first such pair in read, then write, bucket and key
    /// order). In key order the best pair of a bucket sits side by side. `false` when no bucket
    /// has two grants left.
    fn merge_closest(&mut self) -> bool {
        let mut best: Option<(usize, bool, String, Grant, Grant, String)> = None;
        for (is_write, grants) in [(false, &self.read), (true, &self.write)] {
            for (bucket, set) in grants {
                let sorted: Vec<&Grant> = set.iter().collect();
                for pair in sorted.windows(2) {
                    let common = common_prefix(&pair[0].key, &pair[1].key);
                    let len = common.chars().count();
                    if best.as_ref().is_none_or(|b| len > b.0) {
                        best = Some((len, is_write, bucket.clone(), pair[0].clone(), pair[1].clone(), common.to_string()));
                    }
                }
            }
        }
        let Some((_, is_write, bucket, a, b, common)) = best else { return false };
        let grants = if is_write { &mut self.write } else { &mut self.read };
        let set = grants.get_mut(&bucket).expect("the bucket of the pair");
        set.remove(&a);
        set.remove(&b);
        set.insert(Grant::prefix(&common));
        self.normalise();
        true
    }

    fn listable(&self) -> Grants {
        let mut list = self.read.clone();
        for (bucket, set) in &self.write {
            list.entry(bucket.clone()).or_default().extend(set.iter().cloned());
        }
        normalise(&mut list);
        list
    }
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a.char_indices().zip(b.chars()).find(|((_, x), y)| x != y).map_or_else(|| a.len().min(b.len()), |((i, _), _)| i);
    &a[..end]
}

/// The policy for a job's run: its own S3 locations, its logs, and the configured extras; merged
/// step by step until it fits [`MAX_POLICY_CHARS`].
pub fn job_policy(scope: &JobScope, settings: &JobPermissionSettings) -> Result<ExecutionIamPolicy, PolicyTooLong> {
    let mut grantable = Grantable::of(scope);
    let mut steps = 0;
    loop {
        let policy = render(scope, &grantable, &settings.extra_statements);
        let size = policy.chars().count();
        if size <= MAX_POLICY_CHARS {
            return Ok(ExecutionIamPolicy { policy, policy_arns: settings.policy_arns.clone(), narrowing_steps: steps });
        }
        if !grantable.merge_closest() {
            return Err(PolicyTooLong { size, steps });
        }
        steps += 1;
    }
}

fn render(scope: &JobScope, grantable: &Grantable, extra: &[Value]) -> String {
    let partition = &scope.partition;
    let object_arns = |grants: &Grants| -> Vec<String> {
        grants.iter().flat_map(|(bucket, set)| set.iter().map(move |g| format!("arn:{partition}:s3:::{bucket}/{}", g.pattern()))).collect()
    };
    let mut statements = vec![
        json!({"Sid": "JobRead", "Effect": "Allow", "Action": READ_ACTIONS, "Resource": object_arns(&grantable.read)}),
        json!({"Sid": "JobWrite", "Effect": "Allow", "Action": WRITE_ACTIONS, "Resource": object_arns(&grantable.write)}),
    ];
    for (bucket, set) in &grantable.listable() {
        let prefixes: Vec<String> = set.iter().map(Grant::pattern).collect();
        // No Sid: a list statement costs ~150 of the 2,048 characters already; its bucket names it.
        statements.push(json!({
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:{partition}:s3:::{bucket}"),
            "Condition": {"StringLike": {"s3:prefix": prefixes}},
        }));
    }
    let region = scope.region.as_deref().unwrap_or("*");
    let logs = format!("arn:{partition}:logs:{region}:{}:log-group:", scope.account);
    // DescribeLogGroups names no resource type to parliament's IAM database (its required format is
    // `*`); it only lists log group names, and the role's own grant still bounds it.
    statements.push(json!({"Sid": "RunLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"}));
    statements.push(json!({"Sid": "RunLogs", "Effect": "Allow", "Action": LOG_STREAM_ACTIONS, "Resource": format!("{logs}{}:*", scope.log_group)}));
    statements.extend(extra.iter().cloned());
    latin1_json(&json!({"Version": "2012-10-17", "Statement": statements}))
}

/// Minified JSON with every character outside U+0020-U+007E written as a `\u` escape, so the
/// policy meets `JobRunExecutionIamPolicy.policy`'s pattern `[ -ÿ]+` whatever a key holds
/// (serde_json escapes control characters itself; the rest can only be inside strings).
fn latin1_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
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
            reads: reads.iter().map(|u| uri(u)).collect(),
            writes: writes.iter().map(|u| uri(u)).collect(),
        }
    }

    const STAGED: &str = "s3://staging/modelop-spark-serverless/job-1/";
    const RESULTS: &str = "s3://staging/modelop-spark-serverless/job-1/results/";

    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
    }

    fn resources(policy: &Value, sid: &str) -> Vec<String> {
        statement(policy, sid)["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
    }

    fn list_prefixes(policy: &Value, bucket: &str) -> Vec<String> {
        let arn = format!("arn:aws:s3:::{bucket}");
        let list = policy["Statement"].as_array().unwrap().iter().find(|s| s["Resource"] == arn.as_str()).expect("a list statement");
        list["Condition"]["StringLike"]["s3:prefix"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
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
                write: vec!["arn:aws:s3:::data/out/scored/*".into(), format!("{s}results/*")],
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
                    format!("{s}results/*"),
                ],
            },
            Case {
                // FILE inputs and outputs live in the staging folder: covered by it (read) and by their own grant (write).
                name: "FILE input and output in staging",
                reads: vec![STAGED, "s3://staging/modelop-spark-serverless/job-1/inputs/in.csv"],
                writes: vec![RESULTS, "s3://staging/modelop-spark-serverless/job-1/outputs/out.csv"],
                read: vec![format!("{s}*")],
                write: vec![format!("{s}outputs/out.csv"), format!("{s}outputs/out.csv/*"), format!("{s}results/*")],
            },
        ];
        for case in cases {
            let (policy, value) = built(&scope(&case.reads, &case.writes), &JobPermissionSettings::default());
            assert_eq!(resources(&value, "JobRead"), case.read, "{}", case.name);
            assert_eq!(resources(&value, "JobWrite"), case.write, "{}", case.name);
            assert_eq!(policy.narrowing_steps, 0, "{}", case.name);
            assert_eq!(statement(&value, "JobRead")["Action"], json!(["s3:GetObject"]), "{}", case.name);
            assert_eq!(statement(&value, "JobWrite")["Action"], json!(WRITE_ACTIONS), "{}: outputs are read back too", case.name);
            assert!(!policy.policy.contains(' ') || policy.policy.contains("emr-serverless"), "minified: {}", policy.policy);
        }
    }

    #[test]
    fn listing_is_conditioned_on_the_exact_prefixes_per_bucket() {
        let (_, value) = built(&scope(&[STAGED, "s3://data/in/input.csv"], &[RESULTS, "s3://data/out/scored/"]), &JobPermissionSettings::default());
        assert_eq!(list_prefixes(&value, "data"), ["in/input.csv", "in/input.csv/*", "out/scored/*"]);
        assert_eq!(list_prefixes(&value, "staging"), ["modelop-spark-serverless/job-1/*"]);
        let lists = value["Statement"].as_array().unwrap().iter().filter(|s| s["Action"] == "s3:ListBucket").count();
        assert_eq!(lists, 2, "one list statement per bucket");
    }

    #[test]
    fn logs_statements_name_the_log_group_of_the_run() {
        let (_, value) = built(&scope(&[STAGED], &[RESULTS]), &JobPermissionSettings::default());
        assert_eq!(statement(&value, "RunLogs")["Resource"], "arn:aws:logs:us-east-1:123456789012:log-group:/aws/emr-serverless:*");
        assert_eq!(statement(&value, "RunLogs")["Action"], json!(LOG_STREAM_ACTIONS));
        assert_eq!(statement(&value, "RunLogGroups")["Resource"], "*");
        let mut anywhere = scope(&[STAGED], &[RESULTS]);
        anywhere.region = None;
        anywhere.partition = "aws-cn".into();
        let (_, value) = built(&anywhere, &JobPermissionSettings::default());
        assert_eq!(statement(&value, "RunLogs")["Resource"], "arn:aws-cn:logs:*:123456789012:log-group:/aws/emr-serverless:*");
        assert!(resources(&value, "JobRead")[0].starts_with("arn:aws-cn:s3:::"));
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
            ("s3://data/in/*", "arn:aws:s3:::data/in/${*}", "in/${*}"),
            ("s3://data/in/file?.csv", "arn:aws:s3:::data/in/file${?}.csv", "in/file${?}.csv"),
            ("s3://data/${aws:username}/x", "arn:aws:s3:::data/${$}{aws:username}/x", "${$}{aws:username}/x"),
            ("s3://data/a*b/", "arn:aws:s3:::data/a${*}b/*", "a${*}b/*"),
        ];
        for (input, arn, prefix) in cases {
            let (_, value) = built(&scope(&[STAGED, input], &[RESULTS]), &JobPermissionSettings::default());
            let read = resources(&value, "JobRead");
            assert!(read.contains(&arn.to_string()), "{input}: {read:?}");
            assert!(list_prefixes(&value, "data").contains(&prefix.to_string()), "{input}");
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
        assert!(resources(&value, "JobRead").contains(&"arn:aws:s3:::data/入力/データ.csv".to_string()));
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
            ("40 inputs in one bucket", many(40, 40, 1), Some(44)),
            ("40 inputs in 4 buckets merge within each bucket", many(40, 40, 4), Some(58)),
            ("a 400-character key: object and folder merge", scope(&[STAGED, &format!("s3://data/{}", "k".repeat(400))], &[RESULTS]), Some(1)),
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
                for r in resources(&value, "JobRead").iter().chain(&resources(&value, "JobWrite")) {
                    let (bucket, key) = r.trim_start_matches("arn:aws:s3:::").split_once('/').expect("an object ARN");
                    assert!(named.contains(bucket) && !key.is_empty(), "{name}: {r}");
                }
            }
            fitted.push((*name, outcome.ok().map(|p| p.narrowing_steps)));
        }
        let expected: Vec<(&str, Option<usize>)> = cases.iter().map(|(name, _, steps)| (*name, *steps)).collect();
        assert_eq!(fitted, expected);
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
}
