//! Cost per job: what a job's EMR Serverless run used (`resourceUsage` on the row) and what that
//! cost (`cost`), from EMR Serverless's own figures. Pure rules; the monitor reads the figures and
//! writes them.
//!
//! Where the figures come from:
//! - GetJobRun's `totalResourceUtilization` (used), `billedResourceUtilization` (billed: "a
//!   1-minute minimum usage for workers, plus additional storage over 20 GB per worker") and
//!   `totalExecutionDurationSeconds` (botocore `emr-serverless` 2021-07-13, shape `JobRun`);
//! - the EventBridge event "EMR Serverless Job Resource Utilization Update", sent about every 30
//!   minutes while a run goes and once more with `resourceUtilizationFinal: true` (EMR Serverless
//!   User Guide, "Automating EMR Serverless with Amazon EventBridge"): `calculatedTo`,
//!   `totalResourceUtilization`, `totalBilledResourceUtilization`.
//!
//! The rules:
//! - **Final only when the figures are in** ([`usage_from_run`]): billed figures can read zero for
//!   a while after a run reaches its final state, so a final state with zero billed figures gives
//!   `final: false`; the final event or a later read by the sweep completes it. A run that never
//!   went RUNNING used nothing and is final at once.
//! - **Ordered** ([`supersedes`]): final figures are never replaced; otherwise newer `asOf` wins,
//!   so a late or repeated event changes nothing. The jobs table applies the same rule as the
//!   condition of its write.
//! - **Cost** ([`job_cost`]): usage × unit prices, billed figures when there are any, else used;
//!   rounded to [`COST_DECIMALS`] decimals of a dollar. No known price, no cost: never a guess.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::record::Timestamp;
use crate::launch::run_controls::Architecture;

/// `amount` is rounded to this many decimals of a US dollar (a millionth).
pub const COST_DECIMALS: i32 = 6;

/// One figure per resource EMR Serverless bills, with its field names (`ResourceUtilization` /
/// `TotalResourceUtilization`): as [`Utilization`], vCPU-hours, memory GB-hours and storage
/// GB-hours; as [`UnitPrices`], US dollars per vCPU-hour, per memory GB-hour and per storage
/// GB-hour (storage beyond the 20 GB each worker gets free).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerResource {
    #[serde(rename = "vCPUHour")]
    pub vcpu_hour: f64,
    #[serde(rename = "memoryGBHour")]
    pub memory_gb_hour: f64,
    #[serde(rename = "storageGBHour")]
    pub storage_gb_hour: f64,
}

/// vCPU-hours, memory GB-hours and storage GB-hours a run used or is billed for.
pub type Utilization = PerResource;

/// On-demand unit prices in USD.
pub type UnitPrices = PerResource;

impl PerResource {
    /// Whether every figure is zero (billed figures read so while EMR has not billed the run yet).
    pub fn is_zero(&self) -> bool {
        self.vcpu_hour == 0.0 && self.memory_gb_hour == 0.0 && self.storage_gb_hour == 0.0
    }

    /// From a JSON object with the three fields, each a finite number ≥ 0; the error names the
    /// field (`totalResourceUtilization.vCPUHour: -1 is negative`).
    pub fn from_json(value: Option<&Value>, field: &str) -> Result<Utilization, String> {
        let Some(object) = value.and_then(Value::as_object) else {
            return Err(format!("{field}: missing or not an object"));
        };
        let figure = |name: &str| -> Result<f64, String> {
            match object.get(name) {
                None | Some(Value::Null) => Err(format!("{field}.{name}: missing")),
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
                    _ => Err(format!("{field}.{name}: {n} is negative or not finite")),
                },
                Some(other) => Err(format!("{field}.{name}: {other} is not a number")),
            }
        };
        Ok(Utilization { vcpu_hour: figure("vCPUHour")?, memory_gb_hour: figure("memoryGBHour")?, storage_gb_hour: figure("storageGBHour")? })
    }
}

/// `resourceUsage` on the job row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUsage {
    /// `totalResourceUtilization`: what the run used.
    pub used: Utilization,
    /// `billedResourceUtilization` / `totalBilledResourceUtilization`: what EMR bills; absent
    /// while it reads zero (not billed yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed: Option<Utilization>,
    /// `totalExecutionDurationSeconds` (GetJobRun), or `calculatedTo - startedAt` (an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_seconds: Option<i64>,
    /// Whether these are the run's final figures: nothing replaces them.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The instant the figures are calculated to: the event's `calculatedTo`, the run's `endedAt`,
    /// or the time of the read for a run still going.
    pub as_of: Timestamp,
    /// How many attempts the figures cover, for a retried run (absent: one). EMR re-runs a
    /// retried batch run from the beginning and bills every attempt, and GetJobRun without
    /// `attempt` describes the latest one only, so the attempts are read one by one and summed
    /// ([`covering_attempts`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// The figures are the latest attempt's only: a utilization event of a retried run (its
    /// totals are its latest attempt's), or GetJobRun when an earlier attempt could not be read
    /// (then not final, so the sweep reads them again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest_attempt_only: bool,
}

/// Whether `new` may replace `current` (the rule the jobs table's conditional write applies too):
/// nothing replaces final figures; final figures replace figures that are not; otherwise only
/// figures calculated to a later instant do. So a duplicate or late event changes nothing.
pub fn supersedes(new: &ResourceUsage, current: Option<&ResourceUsage>) -> bool {
    match current {
        None => true,
        Some(current) if current.is_final => false,
        Some(_) if new.is_final => true,
        Some(current) => new.as_of > current.as_of,
    }
}

/// The figures GetJobRun gives for a run (`None` when it gives no `totalResourceUtilization`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunUtilization {
    pub used: Utilization,
    pub billed: Option<Utilization>,
}

/// What [`usage_from_run`] needs of a GetJobRun answer.
#[derive(Debug, Clone, Copy)]
pub struct RunFigures<'a> {
    pub utilization: Option<&'a RunUtilization>,
    pub terminal: bool,
    pub started_at: Option<DateTime<Utc>>,
    /// Whether the job's own row says the run ran (a RUNNING in its `statusHistory`, a
    /// `jobRunTime`): `startedAt` describes the latest attempt only, which may never have run.
    pub ran_per_row: bool,
    pub ended_at: Option<DateTime<Utc>>,
    pub execution_seconds: Option<i64>,
}

/// `resourceUsage` from GetJobRun, read at `read_at`; `None` when it gives no figures. Final only
/// for a run in a final state whose billed figures are in (not all zero), or that never went
/// RUNNING (it used nothing and is billed nothing): neither GetJobRun's `startedAt` nor the row's
/// own history says it ran.
pub fn usage_from_run(run: RunFigures<'_>, read_at: DateTime<Utc>) -> Option<ResourceUsage> {
    let never_ran = run.terminal && run.started_at.is_none() && !run.ran_per_row;
    let utilization = match run.utilization {
        Some(u) => *u,
        None if never_ran => RunUtilization::default(),
        None => return None,
    };
    let billed = utilization.billed.filter(|b| !b.is_zero());
    let is_final = run.terminal && (billed.is_some() || (never_ran && utilization.used.is_zero()));
    let as_of = if run.terminal { run.ended_at.unwrap_or(read_at) } else { read_at };
    Some(ResourceUsage {
        used: utilization.used,
        billed,
        execution_seconds: run.execution_seconds,
        is_final,
        as_of: Timestamp(as_of),
        attempts: None,
        latest_attempt_only: false,
    })
}

/// One earlier attempt of a retried run, as GetJobRun with `attempt` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AttemptFigures {
    pub utilization: Option<RunUtilization>,
    pub execution_seconds: Option<i64>,
}

impl std::ops::Add for PerResource {
    type Output = PerResource;
    fn add(self, other: PerResource) -> PerResource {
        PerResource {
            vcpu_hour: self.vcpu_hour + other.vcpu_hour,
            memory_gb_hour: self.memory_gb_hour + other.memory_gb_hour,
            storage_gb_hour: self.storage_gb_hour + other.storage_gb_hour,
        }
    }
}

/// The usage of a run of `attempts` attempts: the latest attempt's ([`usage_from_run`]) plus
/// each earlier one's, summed (used, billed, execution time). Final only when the latest is and
/// every earlier attempt's billed figures are in (not zero, or it used nothing). `earlier` is
/// `None` when they could not be read: the latest attempt's figures, marked so and not final.
pub fn covering_attempts(latest: ResourceUsage, attempts: i32, earlier: Option<&[AttemptFigures]>) -> ResourceUsage {
    if attempts <= 1 {
        return latest;
    }
    let mut usage = ResourceUsage { attempts: Some(attempts), ..latest };
    let Some(earlier) = earlier else {
        return ResourceUsage { latest_attempt_only: true, is_final: false, ..usage };
    };
    let mut billed = usage.billed.unwrap_or_default();
    for attempt in earlier {
        let Some(figures) = attempt.utilization else {
            usage.is_final = false;
            continue;
        };
        let attempt_billed = figures.billed.filter(|b| !b.is_zero());
        usage.is_final &= attempt_billed.is_some() || figures.used.is_zero();
        usage.used = usage.used + figures.used;
        billed = billed + attempt_billed.unwrap_or_default();
        usage.execution_seconds = match (usage.execution_seconds, attempt.execution_seconds) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
    usage.billed = Some(billed).filter(|b| !b.is_zero());
    usage
}

/// The part of a "EMR Serverless Job Resource Utilization Update" event's `detail` read here, as
/// it came (figures checked by [`usage_from_event`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UtilizationDetail {
    pub application_id: String,
    pub job_run_id: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub calculated_to: Option<String>,
    #[serde(default)]
    pub resource_utilization_final: Option<bool>,
    /// The attempt the totals are of (the run's latest): above 1, the figures leave out the
    /// earlier attempts.
    #[serde(default)]
    pub attempt: Option<i32>,
    #[serde(default)]
    pub total_resource_utilization: Option<Value>,
    #[serde(default)]
    pub total_billed_resource_utilization: Option<Value>,
}

/// `resourceUsage` from a utilization event. Errors name the field: a missing or unreadable
/// `calculatedTo`, a figure that is missing, negative or not a number.
pub fn usage_from_event(detail: &UtilizationDetail) -> Result<ResourceUsage, String> {
    let time = |field: &str, text: Option<&str>| -> Result<Option<DateTime<Utc>>, String> {
        text.map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("{field}: {t:?} is not an RFC 3339 time: {e}")))
            .transpose()
    };
    let calculated_to = time("calculatedTo", detail.calculated_to.as_deref())?.ok_or("calculatedTo: missing")?;
    let started_at = time("startedAt", detail.started_at.as_deref())?;
    let retried = detail.attempt.filter(|n| *n > 1);
    let used = Utilization::from_json(detail.total_resource_utilization.as_ref(), "totalResourceUtilization")?;
    let billed = match &detail.total_billed_resource_utilization {
        None | Some(Value::Null) => None,
        some => Some(Utilization::from_json(some.as_ref(), "totalBilledResourceUtilization")?),
    };
    Ok(ResourceUsage {
        used,
        billed: billed.filter(|b| !b.is_zero()),
        execution_seconds: started_at.map(|s| (calculated_to - s).num_seconds().max(0)),
        // A retried run's event gives its latest attempt's totals: the row says so.
        is_final: detail.resource_utilization_final.unwrap_or(false),
        as_of: Timestamp(calculated_to),
        attempts: retried,
        latest_attempt_only: retried.is_some(),
    })
}

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PriceSource {
    /// [`BUILT_IN_PRICES`].
    #[serde(rename = "built-in")]
    BuiltIn,
    /// The `EMR_PRICES` setting.
    #[serde(rename = "EMR_PRICES")]
    Configured,
}

/// The date [`BUILT_IN_PRICES`] were taken.
pub const BUILT_IN_PRICES_AS_OF: &str = "2026-11-30";

/// The public on-demand EMR Serverless prices this code can cite: US East (N. Virginia), from
/// <https://aws.amazon.com/emr/pricing/> ("Amazon EMR Serverless": per vCPU per hour, per GB per
/// hour, and per storage GB per hour beyond the 20 GB included with each worker; x86 and ARM
/// (AWS Graviton) rates). Other regions have no built-in price: set `EMR_PRICES` for them, or
/// jobs there get `resourceUsage` and no `cost`.
pub const BUILT_IN_PRICES: &[(&str, Architecture, UnitPrices)] = &[
    ("us-east-1", Architecture::X86_64, UnitPrices { vcpu_hour: 0.052624, memory_gb_hour: 0.0057785, storage_gb_hour: 0.000111 }),
    ("us-east-1", Architecture::Arm64, UnitPrices { vcpu_hour: 0.042094, memory_gb_hour: 0.004628, storage_gb_hour: 0.000111 }),
];

/// The unit prices the monitor prices runs with: `EMR_PRICES` over [`BUILT_IN_PRICES`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    /// From `EMR_PRICES`, for one region.
    by_region: BTreeMap<(String, Architecture), UnitPrices>,
    /// From `EMR_PRICES`, for every region.
    by_architecture: BTreeMap<Architecture, UnitPrices>,
    /// `EMR_PRICES`'s `asOf`, if it gives one.
    configured_as_of: Option<String>,
}

/// The prices a run is priced at, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceQuote {
    pub prices: UnitPrices,
    pub source: PriceSource,
    pub as_of: Option<String>,
}

impl PriceTable {
    /// `EMR_PRICES`: a JSON object whose keys are architectures (`X86_64`, `ARM64`: prices for
    /// every region), regions (`us-west-2`: an object of architectures), or `asOf` (a date
    /// recorded as `pricesAsOf`); each price is `{"vCPUHour", "memoryGBHour", "storageGBHour"}`,
    /// USD, finite and ≥ 0. The error names the offending key.
    pub fn parse(raw: &str) -> Result<PriceTable, String> {
        let object: serde_json::Map<String, Value> = serde_json::from_str(raw).map_err(|e| format!("not a JSON object: {e}"))?;
        let mut table = PriceTable::default();
        for (key, value) in object {
            if key == "asOf" {
                let date = value.as_str().filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
                table.configured_as_of = Some(date.ok_or_else(|| format!("asOf: {value} is not a date such as \"2026-11-30\""))?.to_string());
            } else if let Ok(architecture) = key.parse::<Architecture>() {
                table.by_architecture.insert(architecture, prices(&key, value)?);
            } else if crate::aws::names::is_region(&key) {
                let Value::Object(by_architecture) = value else {
                    return Err(format!("{key}: must be an object of architectures (X86_64, ARM64) to prices"));
                };
                for (name, value) in by_architecture {
                    let architecture = name.parse::<Architecture>().map_err(|_| format!("{key}.{name}: not an architecture (X86_64 or ARM64)"))?;
                    table.by_region.insert((key.clone(), architecture), prices(&format!("{key}.{name}"), value)?);
                }
            } else {
                return Err(format!("{key}: not an architecture (X86_64, ARM64), a region name (us-east-1) or asOf"));
            }
        }
        Ok(table)
    }

    /// The prices of `architecture` in `region`: `EMR_PRICES` for that region, then `EMR_PRICES`
    /// for every region, then the built-in table; `None` when none has one.
    pub fn quote(&self, region: &str, architecture: Architecture) -> Option<PriceQuote> {
        let configured = |prices: &UnitPrices| PriceQuote { prices: *prices, source: PriceSource::Configured, as_of: self.configured_as_of.clone() };
        if let Some(prices) = self.by_region.get(&(region.to_string(), architecture)) {
            return Some(configured(prices));
        }
        if let Some(prices) = self.by_architecture.get(&architecture) {
            return Some(configured(prices));
        }
        BUILT_IN_PRICES.iter().find(|(r, a, _)| *r == region && *a == architecture).map(|(_, _, prices)| PriceQuote {
            prices: *prices,
            source: PriceSource::BuiltIn,
            as_of: Some(BUILT_IN_PRICES_AS_OF.to_string()),
        })
    }
}

fn prices(key: &str, value: Value) -> Result<UnitPrices, String> {
    let prices: UnitPrices = serde_json::from_value(value).map_err(|e| format!("{key}: {e} (expected {{\"vCPUHour\", \"memoryGBHour\", \"storageGBHour\"}})"))?;
    for (name, price) in [("vCPUHour", prices.vcpu_hour), ("memoryGBHour", prices.memory_gb_hour), ("storageGBHour", prices.storage_gb_hour)] {
        if !price.is_finite() || price < 0.0 {
            return Err(format!("{key}.{name}: {price} is not a price (a number ≥ 0)"));
        }
    }
    Ok(prices)
}

/// Which figures a cost is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CostBasis {
    Billed,
    Used,
}

/// `cost` on the job row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCost {
    /// USD, rounded to [`COST_DECIMALS`] decimals.
    pub amount: f64,
    pub currency: &'static str,
    pub basis: CostBasis,
    pub prices: UnitPrices,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prices_as_of: Option<String>,
    pub prices_source: PriceSource,
    pub region: String,
    pub architecture: String,
}

/// The cost of `usage` at `quote`: billed figures when EMR has billed the run, else used ones.
pub fn job_cost(usage: &ResourceUsage, quote: &PriceQuote, region: &str, architecture: Architecture) -> JobCost {
    let (basis, figures) = match usage.billed {
        Some(billed) => (CostBasis::Billed, billed),
        None => (CostBasis::Used, usage.used),
    };
    let p = quote.prices;
    let raw = figures.vcpu_hour * p.vcpu_hour + figures.memory_gb_hour * p.memory_gb_hour + figures.storage_gb_hour * p.storage_gb_hour;
    let scale = 10f64.powi(COST_DECIMALS);
    JobCost {
        amount: (raw * scale).round() / scale,
        currency: "USD",
        basis,
        prices: p,
        prices_as_of: quote.as_of.clone(),
        prices_source: quote.source,
        region: region.to_string(),
        architecture: architecture.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 20, minute, 0).unwrap()
    }

    fn figures(vcpu: f64, memory: f64, storage: f64) -> Utilization {
        Utilization { vcpu_hour: vcpu, memory_gb_hour: memory, storage_gb_hour: storage }
    }

    fn usage(is_final: bool, minute: u32) -> ResourceUsage {
        ResourceUsage { used: figures(1.0, 4.0, 0.0), billed: None, execution_seconds: None, is_final, as_of: Timestamp(at(minute)), attempts: None, latest_attempt_only: false }
    }

    #[test]
    fn newer_or_final_figures_win_and_final_ones_stay() {
        let rows = [
            // (new, current, supersedes)
            (usage(false, 10), None, true),
            (usage(false, 20), Some(usage(false, 10)), true),
            (usage(false, 10), Some(usage(false, 10)), false), // a duplicate
            (usage(false, 5), Some(usage(false, 10)), false),  // a late event
            (usage(true, 5), Some(usage(false, 10)), true),    // the final event, calculated earlier than a read
            (usage(true, 30), Some(usage(true, 20)), false),   // final figures stay
            (usage(false, 40), Some(usage(true, 20)), false),
        ];
        for (new, current, expected) in rows {
            assert_eq!(supersedes(&new, current.as_ref()), expected, "{new:?} over {current:?}");
        }
    }

    #[test]
    fn a_final_state_is_final_only_once_the_billed_figures_are_in() {
        let billed = RunUtilization { used: figures(0.4, 1.6, 1.6), billed: Some(figures(0.44, 1.77, 0.0)) };
        let pending = RunUtilization { used: figures(0.4, 1.6, 1.6), billed: Some(figures(0.0, 0.0, 0.0)) };
        let unbilled = RunUtilization { used: figures(0.4, 1.6, 1.6), billed: None };
        fn run(u: Option<&RunUtilization>, terminal: bool, started: bool) -> RunFigures<'_> {
            RunFigures {
                utilization: u,
                terminal,
                started_at: started.then(|| at(1)),
                ran_per_row: false,
                ended_at: terminal.then(|| at(9)),
                execution_seconds: terminal.then_some(480),
            }
        }
        // (figures, read at, final, billed kept, as of)
        type Read = Option<(bool, bool, DateTime<Utc>)>;
        let rows: [(RunFigures, Read); 6] = [
            (run(Some(&billed), true, true), Some((true, true, at(9)))),
            (run(Some(&pending), true, true), Some((false, false, at(9)))),
            (run(Some(&unbilled), true, true), Some((false, false, at(9)))),
            (run(Some(&billed), false, true), Some((false, true, at(30)))),
            (run(None, true, false), Some((true, false, at(9)))), // cancelled before it ran
            (run(None, true, true), None),
        ];
        for (figures, expected) in rows {
            let got = usage_from_run(figures, at(30)).map(|u| (u.is_final, u.billed.is_some(), u.as_of.0));
            assert_eq!(got, expected, "{figures:?}");
        }
        assert_eq!(usage_from_run(run(None, false, true), at(30)), None);
        // A run that ran but reports nothing used or billed yet is not final: its bill is still to come.
        let nothing_yet = RunUtilization { used: figures(0.0, 0.0, 0.0), billed: None };
        assert_eq!(usage_from_run(run(Some(&nothing_yet), true, true), at(30)).map(|u| u.is_final), Some(false));
    }

    #[test]
    fn a_retried_runs_usage_sums_its_attempts_and_a_run_the_row_saw_running_is_not_zero() {
        let latest = |is_final: bool| ResourceUsage { billed: Some(figures(1.0, 4.0, 0.0)), execution_seconds: Some(60), ..usage(is_final, 9) };
        let attempt = |v: f64, billed: f64| AttemptFigures {
            utilization: Some(RunUtilization { used: figures(v, 0.0, 0.0), billed: Some(figures(billed, 0.0, 0.0)) }),
            execution_seconds: Some(30),
        };
        let summed = covering_attempts(latest(true), 3, Some(&[attempt(2.0, 2.5), attempt(0.0, 0.0)]));
        assert_eq!((summed.used.vcpu_hour, summed.billed.map(|b| b.vcpu_hour), summed.execution_seconds), (3.0, Some(3.5), Some(120)));
        // Every resource is summed, used and billed.
        let sized = AttemptFigures { utilization: Some(RunUtilization { used: figures(1.0, 8.0, 20.0), billed: Some(figures(1.0, 6.0, 2.0)) }), execution_seconds: None };
        let both = covering_attempts(ResourceUsage { used: figures(1.0, 2.0, 3.0), billed: Some(figures(1.0, 4.0, 0.5)), ..usage(true, 9) }, 2, Some(&[sized]));
        assert_eq!((both.used.memory_gb_hour, both.used.storage_gb_hour), (10.0, 23.0));
        assert_eq!(both.billed.map(|b| (b.memory_gb_hour, b.storage_gb_hour)), Some((10.0, 2.5)));
        assert_eq!((summed.attempts, summed.is_final, summed.latest_attempt_only), (Some(3), true, false), "an attempt that never ran is billed nothing");
        let pending = covering_attempts(latest(true), 2, Some(&[attempt(2.0, 0.0)]));
        assert!(!pending.is_final, "an earlier attempt not billed yet");
        let unread = covering_attempts(latest(true), 2, None);
        assert_eq!((unread.used.vcpu_hour, unread.latest_attempt_only, unread.is_final), (1.0, true, false));
        assert_eq!(covering_attempts(latest(true), 1, None), latest(true), "one attempt: as it is");

        // The latest attempt never went RUNNING, but the row saw the run running: no final zero.
        let run = RunFigures { utilization: None, terminal: true, started_at: None, ran_per_row: true, ended_at: Some(at(9)), execution_seconds: None };
        assert_eq!(usage_from_run(run, at(30)), None);
        assert!(usage_from_run(RunFigures { ran_per_row: false, ..run }, at(30)).is_some_and(|u| u.is_final));
    }

    fn detail(total: Value, billed: Value, is_final: Option<bool>, calculated_to: Option<&str>) -> UtilizationDetail {
        UtilizationDetail {
            application_id: "app".into(),
            job_run_id: "run".into(),
            started_at: Some("2026-11-23T20:11:52.041Z".into()),
            calculated_to: calculated_to.map(str::to_string),
            resource_utilization_final: is_final,
            attempt: None,
            total_resource_utilization: Some(total),
            total_billed_resource_utilization: Some(billed),
        }
    }

    #[test]
    fn utilization_events_are_read_or_refused_naming_the_field() {
        let good = serde_json::json!({"vCPUHour": 0.417, "memoryGBHour": 1.668, "storageGBHour": 1.667});
        let billed = serde_json::json!({"vCPUHour": 0.444, "memoryGBHour": 1.776, "storageGBHour": 0});
        let read = usage_from_event(&detail(good.clone(), billed.clone(), Some(true), Some("2026-11-23T20:15:00.772310Z"))).unwrap();
        assert_eq!(read.used, figures(0.417, 1.668, 1.667));
        assert_eq!(read.billed, Some(figures(0.444, 1.776, 0.0)));
        assert_eq!((read.is_final, read.execution_seconds), (true, Some(188)));
        assert_eq!(read.as_of.to_string(), "2026-11-23T20:15:00.772Z");
        let running = usage_from_event(&detail(good.clone(), serde_json::json!({"vCPUHour": 0, "memoryGBHour": 0, "storageGBHour": 0}), None, Some("2026-11-23T20:15:00Z"))).unwrap();
        assert_eq!((running.is_final, running.billed), (false, None));
        // An event of a retried run's second attempt or later gives that attempt's totals only.
        for (attempt, covers) in [(None, (None, false)), (Some(1), (None, false)), (Some(2), (Some(2), true)), (Some(3), (Some(3), true))] {
            let event = UtilizationDetail { attempt, ..detail(good.clone(), billed.clone(), Some(true), Some("2026-11-23T20:15:00Z")) };
            let read = usage_from_event(&event).unwrap();
            assert_eq!((read.attempts, read.latest_attempt_only), covers, "attempt {attempt:?}");
        }

        let rows = [
            (detail(good.clone(), billed.clone(), Some(true), None), "calculatedTo: missing"),
            (detail(good.clone(), billed.clone(), None, Some("yesterday")), "calculatedTo: \"yesterday\" is not an RFC 3339 time"),
            (detail(serde_json::json!({"vCPUHour": -1, "memoryGBHour": 1, "storageGBHour": 0}), billed.clone(), None, Some("2026-11-23T20:15:00Z")), "totalResourceUtilization.vCPUHour: -1 is negative"),
            (detail(serde_json::json!({"vCPUHour": "1", "memoryGBHour": 1, "storageGBHour": 0}), billed.clone(), None, Some("2026-11-23T20:15:00Z")), "totalResourceUtilization.vCPUHour: \"1\" is not a number"),
            (detail(serde_json::json!({"vCPUHour": 1, "storageGBHour": 0}), billed.clone(), None, Some("2026-11-23T20:15:00Z")), "totalResourceUtilization.memoryGBHour: missing"),
            (detail(Value::Null, billed.clone(), None, Some("2026-11-23T20:15:00Z")), "totalResourceUtilization: missing or not an object"),
            (detail(good.clone(), serde_json::json!([1]), None, Some("2026-11-23T20:15:00Z")), "totalBilledResourceUtilization: missing or not an object"),
        ];
        for (detail, expected) in rows {
            let err = usage_from_event(&detail).unwrap_err();
            assert!(err.starts_with(expected), "{err} should start with {expected}");
        }
    }

    #[test]
    fn prices_parse_from_emr_prices_or_name_the_offending_key() {
        let table = PriceTable::parse(
            r#"{"asOf": "2026-10-01", "ARM64": {"vCPUHour": 0.04, "memoryGBHour": 0.004, "storageGBHour": 0.0001},
                "eu-west-1": {"X86_64": {"vCPUHour": 0.06, "memoryGBHour": 0.006, "storageGBHour": 0.0002}}}"#,
        )
        .unwrap();
        let quote = |region, arch| table.quote(region, arch).map(|q| (q.prices.vcpu_hour, q.source, q.as_of));
        // (region, architecture, quote)
        let rows = [
            ("eu-west-1", Architecture::X86_64, Some((0.06, PriceSource::Configured, Some("2026-10-01".to_string())))),
            ("eu-west-1", Architecture::Arm64, Some((0.04, PriceSource::Configured, Some("2026-10-01".to_string())))),
            ("us-east-1", Architecture::Arm64, Some((0.04, PriceSource::Configured, Some("2026-10-01".to_string())))),
            ("us-east-1", Architecture::X86_64, Some((0.052624, PriceSource::BuiltIn, Some(BUILT_IN_PRICES_AS_OF.to_string())))),
            ("ap-south-1", Architecture::X86_64, None),
        ];
        for (region, arch, expected) in rows {
            assert_eq!(quote(region, arch), expected, "{region} {arch}");
        }
        assert_eq!(PriceTable::default().quote("us-east-1", Architecture::Arm64).unwrap().prices.vcpu_hour, 0.042094);

        let errors = [
            ("[1]", "not a JSON object"),
            (r#"{"x86": {}}"#, "x86: not an architecture (X86_64, ARM64), a region name (us-east-1) or asOf"),
            (r#"{"X86_64": {"vCPUHour": 1, "memoryGBHour": 1}}"#, "X86_64: missing field `storageGBHour`"),
            (r#"{"X86_64": {"vCPUHour": 1, "memoryGBHour": 1, "storageGBHour": 0, "gpu": 2}}"#, "X86_64: unknown field `gpu`"),
            (r#"{"X86_64": {"vCPUHour": -1, "memoryGBHour": 1, "storageGBHour": 0}}"#, "X86_64.vCPUHour: -1 is not a price"),
            (r#"{"us-west-2": {"arm": {}}}"#, "us-west-2.arm: not an architecture"),
            (r#"{"us-west-2": 3}"#, "us-west-2: must be an object"),
            (r#"{"asOf": "last week"}"#, "asOf: \"last week\" is not a date"),
        ];
        for (raw, expected) in errors {
            let err = PriceTable::parse(raw).unwrap_err();
            assert!(err.starts_with(expected), "{raw}: {err}");
        }
    }

    #[test]
    fn a_regions_own_price_wins_over_the_price_for_every_region_which_wins_over_the_built_in_one() {
        let table = PriceTable::parse(
            r#"{"X86_64": {"vCPUHour": 0.1, "memoryGBHour": 0.01, "storageGBHour": 0.001},
                "us-east-1": {"X86_64": {"vCPUHour": 0.3, "memoryGBHour": 0.03, "storageGBHour": 0.003}},
                "eu-west-1": {"X86_64": {"vCPUHour": 0.2, "memoryGBHour": 0.02, "storageGBHour": 0.002}}}"#,
        )
        .unwrap();
        // (region, architecture, the vCPU-hour price quoted and its source)
        let rows = [
            ("eu-west-1", Architecture::X86_64, Some((0.2, PriceSource::Configured))),
            ("us-east-1", Architecture::X86_64, Some((0.3, PriceSource::Configured))),
            ("ap-south-1", Architecture::X86_64, Some((0.1, PriceSource::Configured))),
            ("us-east-1", Architecture::Arm64, Some((0.042094, PriceSource::BuiltIn))),
            ("eu-west-1", Architecture::Arm64, None),
        ];
        for (region, arch, expected) in rows {
            assert_eq!(table.quote(region, arch).map(|q| (q.prices.vcpu_hour, q.source)), expected, "{region} {arch}");
        }
        assert_eq!(table.quote("eu-west-1", Architecture::X86_64).unwrap().as_of, None, "EMR_PRICES without asOf gives no date");
        let free = PriceTable::parse(r#"{"ARM64": {"vCPUHour": 0, "memoryGBHour": 0, "storageGBHour": 0}}"#).expect("zero is a price");
        assert_eq!(free.quote("eu-west-1", Architecture::Arm64).map(|q| q.prices.vcpu_hour), Some(0.0));
    }

    #[test]
    fn cost_is_billed_usage_times_prices_rounded_to_a_millionth() {
        let quote = PriceTable::default().quote("us-east-1", Architecture::X86_64).unwrap();
        let billed = ResourceUsage { billed: Some(figures(0.444, 1.776, 0.0)), ..usage(true, 15) };
        let used_only = ResourceUsage { used: figures(0.417, 1.668, 1.667), billed: None, ..usage(false, 15) };
        let storage = ResourceUsage { billed: Some(figures(1.0, 0.0, 100.0)), ..usage(true, 15) };
        // (usage, basis, amount): 0.444 × 0.052624 + 1.776 × 0.0057785 = 0.0336277 → 0.033628
        let rows = [
            (billed, CostBasis::Billed, 0.033628),
            (used_only, CostBasis::Used, 0.031768),
            (storage, CostBasis::Billed, 0.063724),
        ];
        for (usage, basis, amount) in rows {
            let cost = job_cost(&usage, &quote, "us-east-1", Architecture::X86_64);
            assert_eq!((cost.basis, cost.amount), (basis, amount), "{usage:?}");
            assert_eq!((cost.currency, cost.region.as_str(), cost.architecture.as_str(), cost.prices_source), ("USD", "us-east-1", "X86_64", PriceSource::BuiltIn));
        }
        let row = serde_json::to_value(job_cost(&usage(true, 1), &quote, "us-east-1", Architecture::X86_64)).unwrap();
        assert_eq!(row["prices"]["vCPUHour"], 0.052624);
        assert_eq!(row["pricesSource"], "built-in");
        assert_eq!(row["pricesAsOf"], BUILT_IN_PRICES_AS_OF);
        let usage_row = serde_json::to_value(usage(true, 1)).unwrap();
        assert_eq!(usage_row["final"], true);
        assert_eq!(usage_row["used"]["vCPUHour"], 1.0);
        assert_eq!(usage_row["asOf"], "2026-11-23T20:01:00.000Z");
    }
}
