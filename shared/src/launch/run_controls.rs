//! Run controls: how long a job run may run, how often EMR Serverless retries it, how long a cancel
//! lets its driver shut down, and the settings of the applications this service creates. Pure
//! rules: EMR's ranges, the release each feature needs, and which value wins (job parameter over
//! configuration over EMR's default). Configuration and job parameters are checked by the same
//! rules; [`crate::config`] names the variable, [`crate::launch::manifest`] the job parameter.
//!
//! Sources of the ranges (botocore `emr-serverless` `service-2.json`, the EMR Serverless User
//! Guide and API Reference):
//!
//! | value | range | release |
//! |---|---|---|
//! | StartJobRun `executionTimeoutMinutes` | 0-1,000,000 (botocore `Duration`), 0 = never time out (User Guide, "Other considerations"); from emr-7.11.0 a BATCH run's is 1-10,080 (7 days) and 0 is refused (User Guide, "EMR Serverless 7.11.0" release notes; botocore's StartJobRun docs). No minimum of 5: that is moto's ("RunTimeout must be at least 5 minutes"), not AWS's | any |
//! | `retryPolicy.maxAttempts` | 1-10, default 1 = no retry (User Guide, "Job resiliency") | emr-7.1.0 for more than 1 |
//! | `schedulerConfiguration` `maxConcurrentRuns` / `queueTimeoutMinutes` | 1-1000 / 15-720 (botocore `SchedulerConfiguration`) | emr-7.0.0 |
//! | `maximumCapacity` `cpu` / `memory` / `disk` | `[1-9][0-9]*` with an optional space and `vCPU` / `GB` (disk: `GB` required), 1-15 characters (botocore `CpuSize`, `MemorySize`, `DiskSize`) | any |
//! | `architecture` | `X86_64` or `ARM64` (botocore `Architecture`) | any |
//! | `networkConfiguration` `subnetIds` / `securityGroupIds` | at most 16 / 5 ids of 1-32 characters matching `[-0-9a-zA-Z]+.*` (botocore `SubnetIds`, `SecurityGroupIds`) | any |
//! | CancelJobRun `shutdownGracePeriodInSeconds` | 0 (immediate, EMR's default for batch runs) or 15-1800 (User Guide, "job run cancellation with grace period") | emr-7.9.0 for more than 0 |

use std::fmt;

use serde::Serialize;

/// The job parameter (`--conf <key>=<value>`, [`crate::launch::spark_conf`]) that sets the run's
/// StartJobRun `executionTimeoutMinutes`.
pub const TIMEOUT_MINUTES_KEY: &str = "modelop.serverless.job.timeout.minutes";
/// The job parameter that sets the run's StartJobRun `retryPolicy.maxAttempts`.
pub const MAX_ATTEMPTS_KEY: &str = "modelop.serverless.job.max.attempts";

/// EMR's default execution timeout of a run, in minutes (12 hours), applied when none is given.
pub const DEFAULT_EXECUTION_TIMEOUT_MINUTES: u32 = 720;
/// The default number of attempts of a batch run: 1, no retry.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 1;
/// The default cancel grace period: 0, the run is stopped at once.
pub const DEFAULT_CANCEL_GRACE_PERIOD_SECONDS: u32 = 0;

/// The first release with retry policies (User Guide, "Job resiliency").
pub const RETRIES_SINCE: ReleaseLabel = ReleaseLabel::new(7, 1, 0);
/// The first release with job concurrency and queuing (botocore `SchedulerConfiguration`).
pub const QUEUING_SINCE: ReleaseLabel = ReleaseLabel::new(7, 0, 0);
/// The first release with cancel grace periods (User Guide, "job run cancellation with grace period").
pub const GRACE_PERIOD_SINCE: ReleaseLabel = ReleaseLabel::new(7, 9, 0);
/// From this release a BATCH run's execution timeout is at most [`MAX_EXECUTION_TIMEOUT_MINUTES_SINCE_7_11`], and 0
/// (no timeout) is refused (User Guide, "EMR Serverless 7.11.0" release notes).
pub const TIMEOUT_CAP_SINCE: ReleaseLabel = ReleaseLabel::new(7, 11, 0);

/// botocore's `Duration` minimum; 0 means the run never times out (User Guide, "Other considerations").
const MIN_EXECUTION_TIMEOUT_MINUTES: u32 = 0;
/// botocore's `Duration` maximum.
const MAX_EXECUTION_TIMEOUT_MINUTES: u32 = 1_000_000;
/// Seven days: the BATCH maximum from emr-7.11.0.
pub const MAX_EXECUTION_TIMEOUT_MINUTES_SINCE_7_11: u32 = 10_080;
const MAX_ATTEMPTS: u32 = 10;
const MAX_CONCURRENT_RUNS: u32 = 1000;
const QUEUE_TIMEOUT_MINUTES: (u32, u32) = (15, 720);
const GRACE_PERIOD_SECONDS: (u32, u32) = (15, 1800);
const MAX_SUBNET_IDS: usize = 16;
const MAX_SECURITY_GROUP_IDS: usize = 5;

/// An EMR release label, `emr-X.Y` or `emr-X.Y.Z`, ordered by version (`emr-7.10.0` > `emr-7.9.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseLabel {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ReleaseLabel {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ReleaseLabel { major, minor, patch }
    }

    /// `emr-7.5.0` (or `emr-7.5`, patch 0); `None` for anything else.
    pub fn parse(label: &str) -> Option<ReleaseLabel> {
        let parts: Vec<&str> = label.strip_prefix("emr-")?.split('.').collect();
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) {
            return None;
        }
        let number = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse().ok());
        Some(ReleaseLabel { major: number(0)?, minor: number(1)?, patch: number(2)? })
    }
}

impl fmt::Display for ReleaseLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "emr-{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A value refused by a rule: the value as given and the rule, for the caller to name its source
/// (`EMR_MAX_ATTEMPTS is invalid: "11": ...`, `job parameter '--conf ...' "11": ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: {rule}")]
pub struct RuleViolation {
    pub value: String,
    pub rule: String,
}

fn violation(value: &str, rule: impl Into<String>) -> RuleViolation {
    RuleViolation { value: crate::text::printable(value), rule: rule.into() }
}

/// A whole number within `low..=high`, or the rule `what` breaks.
fn whole_number(raw: &str, low: u32, high: u32, what: &str) -> Result<u32, RuleViolation> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| violation(raw, format!("{what} must be a whole number from {low} to {high}")))
}

fn needs_release(raw: &str, feature: &str, since: ReleaseLabel, release: ReleaseLabel) -> RuleViolation {
    violation(raw, format!("{feature} needs EMR release {since} or later, and the configured release (EMR_RELEASE_VERSION) is {release}"))
}

/// StartJobRun `executionTimeoutMinutes` for runs of `release`: 0 (never time out) to 1,000,000 minutes; from
/// emr-7.11.0, 1 to 10,080.
pub fn execution_timeout_minutes(raw: &str, release: ReleaseLabel) -> Result<u32, RuleViolation> {
    if release >= TIMEOUT_CAP_SINCE {
        let what = format!("executionTimeoutMinutes on {release} (from {TIMEOUT_CAP_SINCE} a BATCH run's maximum is 7 days, and 0, no timeout, is refused)");
        whole_number(raw, 1, MAX_EXECUTION_TIMEOUT_MINUTES_SINCE_7_11, &what)
    } else {
        whole_number(raw, MIN_EXECUTION_TIMEOUT_MINUTES, MAX_EXECUTION_TIMEOUT_MINUTES, "executionTimeoutMinutes (0: no timeout)")
    }
}

/// `retryPolicy.maxAttempts`: 1 to 10; more than 1 needs emr-7.1.0.
pub fn max_attempts(raw: &str, release: ReleaseLabel) -> Result<u32, RuleViolation> {
    let attempts = whole_number(raw, 1, MAX_ATTEMPTS, "maxAttempts")?;
    if attempts > 1 && release < RETRIES_SINCE {
        return Err(needs_release(raw, "a retry policy (maxAttempts above 1)", RETRIES_SINCE, release));
    }
    Ok(attempts)
}

/// CancelJobRun `shutdownGracePeriodInSeconds`: 0, or 15 to 1800; more than 0 needs emr-7.9.0
/// (`release`: `None` when the function has no configured release, which then cannot have one).
pub fn cancel_grace_period_seconds(raw: &str, release: Option<ReleaseLabel>) -> Result<u32, RuleViolation> {
    let (low, high) = GRACE_PERIOD_SECONDS;
    let seconds = raw
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|s| *s == 0 || (low..=high).contains(s))
        .ok_or_else(|| violation(raw, format!("shutdownGracePeriodInSeconds must be 0 (immediate) or a whole number from {low} to {high}")))?;
    match release {
        _ if seconds == 0 => Ok(0),
        Some(release) if release >= GRACE_PERIOD_SINCE => Ok(seconds),
        Some(release) => Err(needs_release(raw, "a cancel grace period", GRACE_PERIOD_SINCE, release)),
        None => Err(violation(raw, format!("a cancel grace period needs EMR_RELEASE_VERSION set to {GRACE_PERIOD_SINCE} or later"))),
    }
}

/// `schedulerConfiguration.maxConcurrentRuns`: 1 to 1000, from emr-7.0.0.
pub fn max_concurrent_runs(raw: &str, release: ReleaseLabel) -> Result<u32, RuleViolation> {
    let runs = whole_number(raw, 1, MAX_CONCURRENT_RUNS, "maxConcurrentRuns")?;
    queuing_release(raw, release)?;
    Ok(runs)
}

/// `schedulerConfiguration.queueTimeoutMinutes`: 15 to 720, from emr-7.0.0.
pub fn queue_timeout_minutes(raw: &str, release: ReleaseLabel) -> Result<u32, RuleViolation> {
    let (low, high) = QUEUE_TIMEOUT_MINUTES;
    let minutes = whole_number(raw, low, high, "queueTimeoutMinutes")?;
    queuing_release(raw, release)?;
    Ok(minutes)
}

fn queuing_release(raw: &str, release: ReleaseLabel) -> Result<(), RuleViolation> {
    if release < QUEUING_SINCE {
        return Err(needs_release(raw, "job concurrency and queuing (schedulerConfiguration)", QUEUING_SINCE, release));
    }
    Ok(())
}

/// Where an applied run control came from, recorded beside it on the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ControlSource {
    /// The job's own `--conf modelop.serverless.job.*` parameter.
    JobParameters,
    /// The function's configuration (environment or `CONFIG_FILE`).
    Configuration,
    /// Not set anywhere: EMR's default.
    Default,
}

/// The run controls a job's run starts with, as recorded on the row (`runControls`): the
/// StartJobRun `executionTimeoutMinutes` (minutes) and `retryPolicy.maxAttempts`, and the
/// `shutdownGracePeriodInSeconds` (seconds) its cancels pass; `sources` says where each came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunControls {
    pub execution_timeout_minutes: u32,
    pub max_attempts: u32,
    pub cancel_grace_period_seconds: u32,
    pub sources: RunControlSources,
}

/// Where each of [`RunControls`]' values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunControlSources {
    pub execution_timeout_minutes: ControlSource,
    pub max_attempts: ControlSource,
    pub cancel_grace_period_seconds: ControlSource,
}

impl Default for RunControls {
    /// EMR's defaults: 720 minutes, one attempt, no grace period.
    fn default() -> Self {
        RunControls {
            execution_timeout_minutes: DEFAULT_EXECUTION_TIMEOUT_MINUTES,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            cancel_grace_period_seconds: DEFAULT_CANCEL_GRACE_PERIOD_SECONDS,
            sources: RunControlSources {
                execution_timeout_minutes: ControlSource::Default,
                max_attempts: ControlSource::Default,
                cancel_grace_period_seconds: ControlSource::Default,
            },
        }
    }
}

impl RunControls {
    /// The configured values (`None`: not configured, EMR's default).
    pub fn configured(execution_timeout_minutes: Option<u32>, max_attempts: Option<u32>, cancel_grace_period_seconds: Option<u32>) -> Self {
        let defaults = RunControls::default();
        let source = |value: Option<u32>| if value.is_some() { ControlSource::Configuration } else { ControlSource::Default };
        RunControls {
            execution_timeout_minutes: execution_timeout_minutes.unwrap_or(defaults.execution_timeout_minutes),
            max_attempts: max_attempts.unwrap_or(defaults.max_attempts),
            cancel_grace_period_seconds: cancel_grace_period_seconds.unwrap_or(defaults.cancel_grace_period_seconds),
            sources: RunControlSources {
                execution_timeout_minutes: source(execution_timeout_minutes),
                max_attempts: source(max_attempts),
                cancel_grace_period_seconds: source(cancel_grace_period_seconds),
            },
        }
    }

    /// The retry policy to send: only above one attempt, so that a run of a release without retry
    /// policies (before emr-7.1.0; an application found by name is used as it is) is not refused
    /// for a policy that asks for nothing (EMR's default is one attempt).
    pub fn retry_policy_attempts(&self) -> Option<u32> {
        (self.max_attempts > 1).then_some(self.max_attempts)
    }
}

/// The job parameters that set run controls, as written; checked by [`RunControls::with_job`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRunControls {
    /// `--conf modelop.serverless.job.timeout.minutes`.
    pub timeout_minutes: Option<String>,
    /// `--conf modelop.serverless.job.max.attempts`.
    pub max_attempts: Option<String>,
}

/// Which job parameter broke which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job parameter '--conf {key}' {violation}")]
pub struct JobRunControlError {
    pub key: &'static str,
    pub violation: RuleViolation,
}

impl RunControls {
    /// The configured controls overlaid by the job's parameters, each checked for `release`.
    pub fn with_job(&self, job: &JobRunControls, release: ReleaseLabel) -> Result<RunControls, JobRunControlError> {
        let mut controls = *self;
        if let Some(raw) = &job.timeout_minutes {
            controls.execution_timeout_minutes =
                execution_timeout_minutes(raw, release).map_err(|violation| JobRunControlError { key: TIMEOUT_MINUTES_KEY, violation })?;
            controls.sources.execution_timeout_minutes = ControlSource::JobParameters;
        }
        if let Some(raw) = &job.max_attempts {
            controls.max_attempts = max_attempts(raw, release).map_err(|violation| JobRunControlError { key: MAX_ATTEMPTS_KEY, violation })?;
            controls.sources.max_attempts = ControlSource::JobParameters;
        }
        Ok(controls)
    }
}

/// CreateApplication's `architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::Display, strum::EnumString, strum::IntoStaticStr)]
pub enum Architecture {
    #[strum(serialize = "X86_64")]
    X86_64,
    #[strum(serialize = "ARM64")]
    Arm64,
}

/// CreateApplication's `maximumCapacity`: the cumulative resources of all the application's
/// workers, as EMR writes them (`"400 vCPU"`, `"3000 GB"`, `"20000 GB"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaximumCapacity {
    pub cpu: String,
    pub memory: String,
    pub disk: Option<String>,
}

/// CreateApplication's `schedulerConfiguration`; a field left out takes EMR's default (15 runs,
/// 360 minutes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerSettings {
    pub max_concurrent_runs: Option<u32>,
    pub queue_timeout_minutes: Option<u32>,
}

/// CreateApplication's `networkConfiguration`: the VPC subnets and security groups of the
/// application's workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

/// The settings of applications this service creates; an application found by name is used as
/// it is. Each is sent only when configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationSettings {
    pub scheduler: Option<SchedulerSettings>,
    pub maximum_capacity: Option<MaximumCapacity>,
    pub architecture: Option<Architecture>,
    pub network: Option<NetworkSettings>,
    /// `jobLevelCostAllocationConfiguration.enabled`: EMR Serverless then reports each job run's
    /// cost in the Cost and Usage Report, grouped by the run's tags (`EMR_APP_JOB_LEVEL_COST_ALLOCATION`).
    pub job_level_cost_allocation: bool,
}

/// `X86_64` or `ARM64`, as EMR spells them.
pub fn architecture(raw: &str) -> Result<Architecture, RuleViolation> {
    raw.trim().parse::<Architecture>().map_err(|_| violation(raw, "architecture must be X86_64 or ARM64"))
}

/// `"<cpu>, <memory>[, <disk>]"`, for example `400 vCPU, 3000 GB, 20000 GB`.
pub fn maximum_capacity(raw: &str) -> Result<MaximumCapacity, RuleViolation> {
    let rule = "maximumCapacity is \"<cpu>, <memory>[, <disk>]\" such as \"400 vCPU, 3000 GB, 20000 GB\": \
                each a whole number from 1 (no leading 0), then an optional space and the unit (vCPU for cpu, GB for memory; GB required for disk), \
                at most 15 characters each";
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    let fits = match parts.as_slice() {
        [cpu, memory] => is_size(cpu, &CPU_UNITS, false) && is_size(memory, &GB_UNITS, false),
        [cpu, memory, disk] => is_size(cpu, &CPU_UNITS, false) && is_size(memory, &GB_UNITS, false) && is_size(disk, &GB_UNITS, true),
        _ => false,
    };
    if !fits {
        return Err(violation(raw, rule));
    }
    Ok(MaximumCapacity { cpu: parts[0].to_string(), memory: parts[1].to_string(), disk: parts.get(2).map(|d| d.to_string()) })
}

const CPU_UNITS: [&str; 3] = ["vCPU", "vcpu", "VCPU"];
const GB_UNITS: [&str; 4] = ["GB", "gb", "gB", "Gb"];

/// botocore's `CpuSize` / `MemorySize` / `DiskSize`: `[1-9][0-9]*(\s)?(<unit>)?`, 1-15 characters.
fn is_size(text: &str, units: &[&str], unit_required: bool) -> bool {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (number, rest) = text.split_at(digits);
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    (1..=15).contains(&text.len())
        && number.starts_with(|c: char| ('1'..='9').contains(&c))
        && (units.contains(&unit) || (!unit_required && rest.is_empty()))
}

/// Comma-separated subnet ids: at most 16.
pub fn subnet_ids(raw: &str) -> Result<Vec<String>, RuleViolation> {
    network_ids(raw, "subnetIds", MAX_SUBNET_IDS)
}

/// Comma-separated security group ids: at most 5.
pub fn security_group_ids(raw: &str) -> Result<Vec<String>, RuleViolation> {
    network_ids(raw, "securityGroupIds", MAX_SECURITY_GROUP_IDS)
}

fn network_ids(raw: &str, what: &str, most: usize) -> Result<Vec<String>, RuleViolation> {
    let ids: Vec<String> = raw.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_string).collect();
    let well_formed = |id: &String| {
        (1..=32).contains(&id.len())
            && id.chars().all(|c| c.is_ascii_graphic())
            && id.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
    };
    if ids.is_empty() || ids.len() > most || !ids.iter().all(well_formed) {
        return Err(violation(raw, format!("{what} is a comma-separated list of 1 to {most} ids of 1-32 characters (such as subnet-0abc or sg-0abc)")));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(label: &str) -> ReleaseLabel {
        ReleaseLabel::parse(label).unwrap()
    }

    #[test]
    fn release_labels_parse_and_order_by_version() {
        let cases = [
            ("emr-7.5.0", Some((7, 5, 0))),
            ("emr-7.10", Some((7, 10, 0))),
            ("emr-6.15.1", Some((6, 15, 1))),
            ("7.5.0", None),
            ("emr-7", None),
            ("emr-7.x.0", None),
            ("emr-7.5.0.1", None),
            ("emr-7..0", None),
            // Digits only: Rust's integer parse alone would take a sign.
            ("emr-+7.5.0", None),
            ("emr-7.5.+1", None),
        ];
        for (label, expected) in cases {
            assert_eq!(ReleaseLabel::parse(label).map(|r| (r.major, r.minor, r.patch)), expected, "{label}");
        }
        assert!(release("emr-7.10.0") > release("emr-7.9.0"), "numeric, not text, order");
        assert!(release("emr-7.1") == RETRIES_SINCE);
        assert_eq!(release("emr-7.9").to_string(), "emr-7.9.0");
    }

    #[test]
    fn execution_timeouts_within_emr_range_for_the_release() {
        let cases: &[(&str, &str, Result<u32, &str>)] = &[
            ("720", "emr-7.5.0", Ok(720)),
            ("5", "emr-6.15.0", Ok(5)),
            (" 60 ", "emr-7.5.0", Ok(60)),
            ("1000000", "emr-7.10.0", Ok(1_000_000)),
            // 0: never time out (User Guide, "Other considerations"), until emr-7.11.0; no minimum above it.
            ("0", "emr-7.5.0", Ok(0)),
            ("0", "emr-7.10.0", Ok(0)),
            ("1", "emr-6.15.0", Ok(1)),
            ("4", "emr-7.5.0", Ok(4)),
            ("10080", "emr-7.11.0", Ok(10_080)),
            ("1", "emr-7.11.0", Ok(1)),
            ("10081", "emr-7.11.0", Err("from emr-7.11.0 a BATCH run's maximum is 7 days")),
            ("0", "emr-7.11.0", Err("and 0, no timeout, is refused) must be a whole number from 1 to 10080")),
            ("0", "emr-8.0.0", Err("from 1 to 10080")),
            ("1000001", "emr-7.5.0", Err("from 0 to 1000000")),
            ("-1", "emr-7.5.0", Err("whole number")),
            ("1.5", "emr-7.5.0", Err("whole number")),
            ("an hour", "emr-7.5.0", Err("whole number")),
        ];
        for (raw, label, expected) in cases {
            let got = execution_timeout_minutes(raw, release(label));
            match expected {
                Ok(minutes) => assert_eq!(got, Ok(*minutes), "{raw} on {label}"),
                Err(needle) => {
                    let err = got.expect_err(raw).to_string();
                    assert!(err.contains(needle) && err.contains(&format!("{:?}", raw)), "{raw} on {label}: {err}");
                }
            }
        }
    }

    #[test]
    fn attempts_grace_and_scheduler_ranges_and_release_gates() {
        type Rule = fn(&str, ReleaseLabel) -> Result<u32, RuleViolation>;
        let grace: Rule = |raw, r| cancel_grace_period_seconds(raw, Some(r));
        // (rule, its check, value, release, the value or what the refusal says)
        type Case<'a> = (&'a str, Rule, &'a str, &'a str, Result<u32, &'a str>);
        let cases: &[Case] = &[
            ("maxAttempts", max_attempts, "1", "emr-6.15.0", Ok(1)),
            ("maxAttempts", max_attempts, "3", "emr-7.1.0", Ok(3)),
            ("maxAttempts", max_attempts, "10", "emr-7.5.0", Ok(10)),
            ("maxAttempts", max_attempts, "2", "emr-7.0.0", Err("needs EMR release emr-7.1.0 or later, and the configured release (EMR_RELEASE_VERSION) is emr-7.0.0")),
            ("maxAttempts", max_attempts, "11", "emr-7.5.0", Err("maxAttempts must be a whole number from 1 to 10")),
            ("maxAttempts", max_attempts, "0", "emr-7.5.0", Err("from 1 to 10")),
            ("grace", grace, "0", "emr-6.15.0", Ok(0)),
            ("grace", grace, "15", "emr-7.9.0", Ok(15)),
            ("grace", grace, "1800", "emr-7.10.0", Ok(1800)),
            ("grace", grace, "120", "emr-7.8.0", Err("a cancel grace period needs EMR release emr-7.9.0 or later")),
            ("grace", grace, "14", "emr-7.9.0", Err("must be 0 (immediate) or a whole number from 15 to 1800")),
            ("grace", grace, "1801", "emr-7.9.0", Err("from 15 to 1800")),
            ("runs", max_concurrent_runs, "1", "emr-7.0.0", Ok(1)),
            ("runs", max_concurrent_runs, "1000", "emr-7.5.0", Ok(1000)),
            ("runs", max_concurrent_runs, "1001", "emr-7.5.0", Err("maxConcurrentRuns must be a whole number from 1 to 1000")),
            ("runs", max_concurrent_runs, "0", "emr-7.5.0", Err("from 1 to 1000")),
            ("runs", max_concurrent_runs, "10", "emr-6.15.0", Err("schedulerConfiguration) needs EMR release emr-7.0.0")),
            ("queue", queue_timeout_minutes, "15", "emr-7.0.0", Ok(15)),
            ("queue", queue_timeout_minutes, "720", "emr-7.5.0", Ok(720)),
            ("queue", queue_timeout_minutes, "14", "emr-7.5.0", Err("queueTimeoutMinutes must be a whole number from 15 to 720")),
            ("queue", queue_timeout_minutes, "721", "emr-7.5.0", Err("from 15 to 720")),
            ("queue", queue_timeout_minutes, "60", "emr-6.9.0", Err("needs EMR release emr-7.0.0")),
        ];
        for (name, rule, raw, label, expected) in cases {
            let got = rule(raw, release(label));
            match expected {
                Ok(value) => assert_eq!(got, Ok(*value), "{name} {raw} on {label}"),
                Err(needle) => {
                    let err = got.expect_err(raw).to_string();
                    assert!(err.contains(needle) && err.starts_with(&format!("{raw:?}: ")), "{name} {raw} on {label}: {err}");
                }
            }
        }
        let err = cancel_grace_period_seconds("30", None).unwrap_err().to_string();
        assert!(err.contains("needs EMR_RELEASE_VERSION set to emr-7.9.0 or later"), "{err}");
        assert_eq!(cancel_grace_period_seconds("0", None), Ok(0));
    }

    #[test]
    fn job_parameters_win_over_the_configuration_and_are_checked() {
        let configured = RunControls {
            execution_timeout_minutes: 60,
            sources: RunControlSources { execution_timeout_minutes: ControlSource::Configuration, ..RunControls::default().sources },
            ..RunControls::default()
        };
        let job = |timeout: Option<&str>, attempts: Option<&str>| JobRunControls {
            timeout_minutes: timeout.map(str::to_string),
            max_attempts: attempts.map(str::to_string),
        };
        let unchanged = configured.with_job(&job(None, None), release("emr-7.5.0")).unwrap();
        assert_eq!(unchanged, configured);
        let both = configured.with_job(&job(Some("30"), Some("3")), release("emr-7.5.0")).unwrap();
        assert_eq!((both.execution_timeout_minutes, both.max_attempts, both.cancel_grace_period_seconds), (30, 3, 0));
        assert_eq!(both.sources.execution_timeout_minutes, ControlSource::JobParameters);
        assert_eq!(both.sources.max_attempts, ControlSource::JobParameters);
        assert_eq!(both.sources.cancel_grace_period_seconds, ControlSource::Default);
        assert_eq!(both.retry_policy_attempts(), Some(3));
        assert_eq!(unchanged.retry_policy_attempts(), None, "one attempt sends no retry policy");

        let cases = [
            (job(Some("0"), None), "emr-7.11.0", "job parameter '--conf modelop.serverless.job.timeout.minutes' \"0\": executionTimeoutMinutes on emr-7.11.0 (from emr-7.11.0 a BATCH run's maximum is 7 days, and 0, no timeout, is refused) must be a whole number from 1 to 10080"),
            (job(None, Some("3")), "emr-7.0.0", "job parameter '--conf modelop.serverless.job.max.attempts' \"3\": a retry policy (maxAttempts above 1) needs EMR release emr-7.1.0"),
            (job(None, Some("twice")), "emr-7.5.0", "job parameter '--conf modelop.serverless.job.max.attempts' \"twice\": maxAttempts must be a whole number from 1 to 10"),
        ];
        for (j, label, needle) in cases {
            let err = configured.with_job(&j, release(label)).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err}");
        }
        let row = serde_json::to_value(both).unwrap();
        assert_eq!(
            row,
            serde_json::json!({
                "executionTimeoutMinutes": 30, "maxAttempts": 3, "cancelGracePeriodSeconds": 0,
                "sources": {"executionTimeoutMinutes": "jobParameters", "maxAttempts": "jobParameters", "cancelGracePeriodSeconds": "default"}
            })
        );
    }

    #[test]
    fn application_settings_follow_botocore_shapes() {
        assert_eq!(architecture("ARM64"), Ok(Architecture::Arm64));
        assert_eq!(architecture("X86_64"), Ok(Architecture::X86_64));
        assert!(architecture("arm64").unwrap_err().to_string().contains("X86_64 or ARM64"));
        assert_eq!(Architecture::Arm64.to_string(), "ARM64");

        let capacity = |cpu: &str, memory: &str, disk: Option<&str>| MaximumCapacity { cpu: cpu.into(), memory: memory.into(), disk: disk.map(str::to_string) };
        let cases: &[(&str, Option<MaximumCapacity>)] = &[
            ("400 vCPU, 3000 GB, 20000 GB", Some(capacity("400 vCPU", "3000 GB", Some("20000 GB")))),
            ("400vCPU,3000GB", Some(capacity("400vCPU", "3000GB", None))),
            ("16, 64", Some(capacity("16", "64", None))),
            ("16, 64, 200", None),
            ("0 vCPU, 64 GB", None),
            ("16 cores, 64 GB", None),
            ("16 vCPU", None),
            ("16 vCPU, 64 GB, 1 GB, 1 GB", None),
            ("16 vCPU, 64  GB", None),
            ("16 vCPU, 1234567890123 GB", None),
        ];
        for (raw, expected) in cases {
            match expected {
                Some(c) => assert_eq!(maximum_capacity(raw).as_ref(), Ok(c), "{raw}"),
                None => assert!(maximum_capacity(raw).unwrap_err().to_string().contains("maximumCapacity is"), "{raw}"),
            }
        }

        assert_eq!(subnet_ids("subnet-1, subnet-2"), Ok(vec!["subnet-1".to_string(), "subnet-2".to_string()]));
        let seventeen = (0..17).map(|i| format!("subnet-{i}")).collect::<Vec<_>>().join(",");
        assert!(subnet_ids(&seventeen).unwrap_err().to_string().contains("1 to 16 ids"));
        assert!(security_group_ids("sg-1,sg-2,sg-3,sg-4,sg-5,sg-6").unwrap_err().to_string().contains("1 to 5 ids"));
        assert!(security_group_ids(&"x".repeat(33)).is_err());
        assert!(security_group_ids("_sg").is_err());
        assert!(subnet_ids(" , ").is_err());
        let list = |prefix: &str, n: usize| (1..=n).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(subnet_ids(&list("subnet", 16)).map(|ids| ids.len()), Ok(16), "exactly the most");
        assert_eq!(security_group_ids(&list("sg", 5)).map(|ids| ids.len()), Ok(5), "exactly the most");
    }
}
