//! The text of a job's session policy: which grants a job's S3 locations need (readers, and the
//! writes Hadoop file systems make around an output), how they are written compactly, and how
//! they are merged step by step when the text is too long. Pure; what goes in is the manifest's
//! ([`JobScope`]), whether it fits is [`crate::launch::job_policy`]'s.
//!
//! The policy, minified, in this order and without `Sid`s (every character counts):
//!
//! 1. `s3:GetObject` on every read location (one statement, each ARN once);
//! 2. [`WRITE_ACTIONS`] on every write location (one statement; outputs are read back too);
//! 3. `s3:ListBucket` on the job's buckets, `StringLike` `s3:prefix` on the job's locations and
//!    the parent prefixes of its outputs (one statement for all buckets; a bucket the job names
//!    whole has its own);
//! 4. the run's logs; then the configured extra statements.
//!
//! What a writer does around an output `s3://b/K` (Spark's `FileOutputCommitter` through EMRFS or
//! S3A), and what is granted for it:
//!
//! | request | why | granted |
//! |---|---|---|
//! | HEAD/GET `K`, `K/` | is the output a file or a directory (S3A `getFileStatus`, EMRFS) | object `K`, prefix `K/` |
//! | LIST `s3:prefix` `K/`, `K` | directory probe; fsspec/s3fs lists without the slash (fsspec/s3fs#847) | `K*` |
//! | LIST `s3:prefix` of each parent, `a/`, `a/b/` | `mkdirs` walks up to the closest existing parent (S3A `MkdirOperation`, which skips the walk on AccessDenied; apache/hadoop#100) | exactly those prefixes, no wildcard |
//! | PUT/DELETE `K_$folder$` | EMRFS's directory marker (apache/hudi#7909) | object `K_${$}folder${$}` |
//! | PUT/DELETE `K/`, `K/_temporary/...`, `K/part-*`, `K/_SUCCESS` | S3A's directory marker, the committer's task and job output | prefix `K/` |
//!
//! Parents' own markers (`a/`, `a_$folder$`) are not granted: S3A deletes them only under the
//! `delete` marker policy and ignores a failure; they belong to whoever owns the parent.
//!
//! A write inside the job's own staging folder (`results/`, staged `FILE` outputs) is one prefix
//! grant `K*`: every key under that folder is the job's own, so the marker and the folder need no
//! grant of their own.
//!
//! Listing shows names, never content, so it is written coarser than reading: one pattern `K*` per
//! location (names that begin with the location's key), and one statement for all the job's
//! buckets (each bucket's prefixes are listable in the job's other buckets). Object access is
//! exactly the locations.
//!
//! Nothing shorter grants the same: a `Resource` has only the wildcards `*` and `?` (IAM User
//! Guide, "IAM JSON policy elements: Resource"), so an object `K` and its folder `K/*` are two
//! ARNs (`K*` would also match `K2`, another job's output); S3 has no condition key for an
//! object's key (`s3:prefix` is `s3:ListBucket`'s; Service Authorization Reference, Amazon S3); a
//! policy variable stands for a value of the request, never for text of the policy's own (IAM
//! User Guide, "IAM policy elements: Variables and tags"). Realistic jobs' sizes, and why two
//! thirds of EMR's limit is out of reach without wider grants: shared/README.md, "The limit".

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::job::s3_uri::S3Uri;

/// What a job may do on what it reads (`s3:GetObject` also answers HeadObject).
pub const READ_ACTIONS: [&str; 1] = ["s3:GetObject"];
/// What a job may do on what it writes: Spark's committers write, read back, rename (copy and
/// delete) and abort multipart uploads under an output.
pub const WRITE_ACTIONS: [&str; 4] = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"];
/// On the configured log group (see [`crate::launch::job_policy`]'s table).
pub const LOG_STREAM_ACTIONS: [&str; 3] = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"];
/// EMRFS's directory marker: the object `<dir>_$folder$` beside a directory `<dir>/`.
pub const EMRFS_FOLDER_SUFFIX: &str = "_$folder$";

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
    /// The job's own staging folder (a key ending in `/`): every key under it is this job's.
    pub own_folder: Option<S3Uri>,
    /// Readable: the staging folder, inputs, model assets, files Spark fetches.
    pub reads: Vec<S3Uri>,
    /// Readable and writable: outputs and the job's `results/`.
    pub writes: Vec<S3Uri>,
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

/// Drops grants another prefix grant of the same bucket already covers.
fn normalise(grants: &mut Grants) {
    for set in grants.values_mut() {
        let covered: Vec<Grant> = set.iter().filter(|g| set.iter().any(|p| p.covers(g))).cloned().collect();
        for grant in covered {
            set.remove(&grant);
        }
    }
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a.char_indices().zip(b.chars()).find(|((_, x), y)| x != y).map_or_else(|| a.len().min(b.len()), |((i, _), _)| i);
    &a[..end]
}

/// A job's grants, before they are written out.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    read: Grants,
    write: Grants,
    /// Listable exactly (no wildcard): the parent prefixes of outputs. Never merged.
    parents: Grants,
}

impl PolicyDocument {
    /// The grants of every location the scope names (see the module's tables).
    pub fn of(scope: &JobScope) -> PolicyDocument {
        let mut document = PolicyDocument { read: Grants::new(), write: Grants::new(), parents: Grants::new() };
        for uri in &scope.reads {
            let set = document.read.entry(uri.bucket.clone()).or_default();
            if uri.key.is_empty() || uri.key.ends_with('/') {
                set.insert(Grant::prefix(&uri.key));
            } else {
                set.insert(Grant::object(&uri.key));
                set.insert(Grant::prefix(&format!("{}/", uri.key)));
            }
        }
        // Writes are readable too: WRITE_ACTIONS has s3:GetObject, so they are not repeated in read.
        for uri in &scope.writes {
            document.add_write(uri, scope.own_folder.as_ref());
        }
        document.normalise();
        document
    }

    fn add_write(&mut self, uri: &S3Uri, own_folder: Option<&S3Uri>) {
        let set = self.write.entry(uri.bucket.clone()).or_default();
        let inside_own = own_folder.filter(|f| f.bucket == uri.bucket && uri.key.starts_with(f.key.as_str()) && f.key.ends_with('/'));
        let key = uri.key.trim_end_matches('/');
        if let Some(folder) = inside_own {
            // Strictly inside the folder, `K*` stays inside it; the folder itself is `folder/*`.
            set.insert(Grant::prefix(if key.len() > folder.key.len() { key } else { folder.key.as_str() }));
            return;
        }
        if key.is_empty() {
            set.insert(Grant::prefix(""));
            return;
        }
        set.insert(Grant::object(key));
        set.insert(Grant::prefix(&format!("{key}/")));
        set.insert(Grant::object(&format!("{key}{EMRFS_FOLDER_SUFFIX}")));
        let parents = self.parents.entry(uri.bucket.clone()).or_default();
        for (at, _) in key.match_indices('/') {
            parents.insert(Grant::object(&key[..=at]));
        }
    }

    fn normalise(&mut self) {
        normalise(&mut self.read);
        normalise(&mut self.write);
    }

    /// One narrowing step: the two grants of one bucket (read or write) with the longest common
    /// key prefix become that prefix (the first such pair in read, then write, bucket and key
    /// order). In key order the best pair of a bucket sits side by side. `false` when no bucket
    /// has two grants left.
    pub fn narrow(&mut self) -> bool {
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

    /// What may be listed, per bucket: every grant's key as a prefix (`K*`), and the parents exactly.
    fn listable(&self) -> Grants {
        let mut list = Grants::new();
        for (bucket, set) in self.read.iter().chain(&self.write) {
            list.entry(bucket.clone()).or_default().extend(set.iter().map(|g| Grant::prefix(&g.key)));
        }
        for (bucket, set) in &self.parents {
            list.entry(bucket.clone()).or_default().extend(set.iter().cloned());
        }
        normalise(&mut list);
        list
    }

    /// The policy, minified (see the module's doc for its shape).
    pub fn render(&self, scope: &JobScope, extra: &[Value]) -> String {
        let partition = &scope.partition;
        let object_arns = |grants: &Grants| -> Vec<String> {
            grants.iter().flat_map(|(bucket, set)| set.iter().map(move |g| format!("arn:{partition}:s3:::{bucket}/{}", g.pattern()))).collect()
        };
        let mut statements = vec![
            json!({"Effect": "Allow", "Action": READ_ACTIONS[0], "Resource": object_arns(&self.read)}),
            json!({"Effect": "Allow", "Action": WRITE_ACTIONS, "Resource": object_arns(&self.write)}),
        ];
        // Buckets the job names whole are listable whole; the others share one statement.
        let (whole, scoped): (Grants, Grants) = self.listable().into_iter().partition(|(_, set)| set.contains(&Grant::prefix("")));
        for group in [whole, scoped] {
            if group.is_empty() {
                continue;
            }
            let buckets: Vec<String> = group.keys().map(|b| format!("arn:{partition}:s3:::{b}")).collect();
            let mut union = Grants::new();
            union.insert(String::new(), group.into_values().flatten().collect());
            normalise(&mut union);
            let prefixes: Vec<String> = union.into_values().flatten().map(|g| g.pattern()).collect();
            statements.push(json!({
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": buckets,
                "Condition": {"StringLike": {"s3:prefix": prefixes}},
            }));
        }
        let region = scope.region.as_deref().unwrap_or("*");
        let logs = format!("arn:{partition}:logs:{region}:{}:log-group:", scope.account);
        // DescribeLogGroups names no resource type to parliament's IAM database (its required format is
        // `*`); it only lists log group names, and the role's own grant still bounds it.
        statements.push(json!({"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"}));
        statements.push(json!({"Effect": "Allow", "Action": LOG_STREAM_ACTIONS, "Resource": format!("{logs}{}:*", scope.log_group)}));
        statements.extend(extra.iter().cloned());
        latin1_json(&json!({"Version": "2012-10-17", "Statement": statements}))
    }
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
