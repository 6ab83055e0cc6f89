//! The jobs table. Every write is a conditional update, so concurrent or repeated invocations can
//! never move a job backwards or launch it twice.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{classify, AwsError, AwsErrorKind};
use crate::job::item_size::WriteDetail;
use crate::job::record::{attr, epoch_millis, job_message, timestamp, JobHeader, Timestamp, JobStatus, MessageLevel, StatusChange, SPARK_SERVERLESS_RUNTIME};
use crate::outcome::cost::{JobCost, ResourceUsage};
use crate::outcome::failure::Failure;
use crate::outcome::monitored_job::{LogsAttachment, MonitoredJob, RetryUpdate, StatusUpdate};
use crate::launch::lease::{LaunchRecord, RecordOutcome, SubmitLease, SubmitSnapshot};
use crate::ports::{CleanupStore, JobStore, MonitorStore};
use crate::launch::staging_folder::CleanupSnapshot;

const SERVICE: &str = "DynamoDB";
/// The EMR state recorded with the launch: a run that StartJobRun just accepted is SUBMITTED.
const SUBMITTED: &str = "SUBMITTED";
const APPEND_HISTORY: &str = "statusHistory = list_append(if_not_exists(statusHistory, :empty), :history)";
/// ModelOp's `jobMessages`, appended to (ModelOp Center may have written its own before).
const APPEND_MESSAGES: &str = "jobMessages = list_append(if_not_exists(jobMessages, :empty), :messages)";
/// A job is ours when either runtime field says so (see `job::RuntimeSelector`).
const IS_OURS: &str = "(runtimeType = :runtime OR targetEngine.engineType = :runtime)";

#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoJobStore { client, table: table.into() }
    }

    /// Ends a job that has no run in ERROR with `message`, if `condition` holds; false otherwise.
    /// `detail` as [`JobStore::fail_before_launch`] describes it.
    #[allow(clippy::too_many_arguments)]
    async fn end_in_error<const N: usize>(
        &self,
        job_id: &str,
        message: &str,
        failure: Option<&Failure>,
        at: DateTime<Utc>,
        detail: WriteDetail,
        condition: &str,
        condition_values: [(&str, AttributeValue); N],
    ) -> Result<bool, AwsError> {
        let mut vals = values([(":error", s(JobStatus::Error.as_str()))]);
        vals.extend(values(condition_values));
        let update = if detail == WriteDetail::Core {
            "SET jobStatus = :error REMOVE submitLease".to_string()
        } else {
            vals.extend(values([(":message", s(message)), (":now", s(&timestamp(at))), (":end", n(epoch_millis(at)))]));
            let set_failure = match failure {
                Some(failure) => {
                    vals.insert(":failure".into(), to_av(failure)?);
                    ", failure = :failure"
                }
                None => "",
            };
            let lists = if detail == WriteDetail::Full {
                vals.insert(":messages".into(), AttributeValue::L(vec![s(&job_message(at, MessageLevel::Error, message))]));
                vals.extend(history_values(JobStatus::Error, None, at)?);
                format!(", {APPEND_HISTORY}, {APPEND_MESSAGES}")
            } else {
                String::new()
            };
            format!("SET jobStatus = :error, errorMessage = :message, updatedAt = :now, jobEndTime = :end{lists}{set_failure} REMOVE submitLease")
        };
        self.updated(job_id, Write::new("UpdateItem(end in error)", update, condition, vals)).await
    }

    /// The one way this adapter writes: a conditional UpdateItem of a job row. `Ok(None)` when the
    /// condition did not hold; `Ok(Some(attributes))` when it did (the whole new item when
    /// `return_new`, else empty).
    async fn update_if(&self, job_id: &str, write: Write) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::ID, s(job_id))
            .update_expression(write.update)
            .condition_expression(write.condition)
            .set_expression_attribute_values(Some(write.values));
        for (placeholder, name) in write.names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        if write.return_new {
            request = request.return_values(ReturnValue::AllNew);
        }
        match request.send().await.map_err(|e| classify(SERVICE, write.operation, e)) {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(e) if e.is(AwsErrorKind::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Self::update_if`], for callers that only need to know whether it was written.
    async fn updated(&self, job_id: &str, write: Write) -> Result<bool, AwsError> {
        self.update_if(job_id, write).await.map(|written| written.is_some())
    }

    /// A query of the `byJobStatus` index for `status` (`:status`); the caller adds the sort key
    /// condition and any filter.
    fn query_by_status(&self, status: JobStatus) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client.query().table_name(&self.table).index_name(BY_JOB_STATUS).expression_attribute_values(":status", s(status.as_str()))
    }

    /// A consistent read of a job row (or of the projected fields); `None` when it is gone.
    async fn read_fields<T: serde::de::DeserializeOwned>(&self, job_id: &str, projection: Option<&str>) -> Result<Option<T>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::ID, s(job_id))
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetItem", e))?;
        output.item.map(|item| decode_job("GetItem", item)).transpose()
    }
}

/// Every job a query finds, page after page; `operation` names it in errors.
async fn collect_jobs(query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder, operation: &'static str) -> Result<Vec<MonitoredJob>, AwsError> {
    collect_at_most(query, operation, usize::MAX).await
}

/// The query's jobs, page by page, until `at_most` are read (no further page is asked for).
async fn collect_at_most(query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder, operation: &'static str, at_most: usize) -> Result<Vec<MonitoredJob>, AwsError> {
    let mut pages = query.into_paginator().send();
    let mut jobs = Vec::new();
    while jobs.len() < at_most {
        let Some(page) = pages.next().await else { break };
        let page = page.map_err(|e| classify(SERVICE, operation, e))?;
        for item in page.items().iter().take(at_most - jobs.len()) {
            jobs.push(decode_job("Query", item.clone())?);
        }
    }
    Ok(jobs)
}

/// One conditional write: the update and condition expressions, their values and names.
struct Write {
    /// `UpdateItem(<what>)`, named in errors.
    operation: &'static str,
    update: String,
    condition: String,
    values: HashMap<String, AttributeValue>,
    names: &'static [(&'static str, &'static str)],
    return_new: bool,
}

impl Write {
    fn new(operation: &'static str, update: impl Into<String>, condition: impl Into<String>, values: HashMap<String, AttributeValue>) -> Self {
        Write { operation, update: update.into(), condition: condition.into(), values, names: &[], return_new: false }
    }
}

/// The `#owner` placeholder: `owner` is a DynamoDB reserved word.
const OWNER_NAME: &[(&str, &str)] = &[("#owner", "owner")];
/// The `#final` placeholder for `resourceUsage.final` (`final` is a reserved word too).
const FINAL_NAME: &[(&str, &str)] = &[("#final", "final")];

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A value as a DynamoDB attribute; a value serde_dynamo cannot encode is a permanent error of
/// the write it was for.
fn to_av<T: serde::Serialize>(value: &T) -> Result<AttributeValue, AwsError> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| AwsError::new(SERVICE, "UpdateItem", AwsErrorKind::Permanent, format!("a value could not be encoded for DynamoDB: {e}")))
}

/// `:history` and `:empty` for [`APPEND_HISTORY`].
fn history_values(status: JobStatus, emr_state: Option<&str>, at: DateTime<Utc>) -> Result<[(String, AttributeValue); 2], AwsError> {
    let entry = StatusChange { status, emr_state: emr_state.map(str::to_string), at: Timestamp(at) };
    Ok([(":history".into(), to_av(&vec![entry])?), (":empty".into(), AttributeValue::L(vec![]))])
}

fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}


#[async_trait]
impl JobStore for DynamoJobStore {
    async fn claim_created(&self, job_id: &str, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        let mut vals = values([
            (":created", s(JobStatus::Created.as_str())),
            (":waiting", s(JobStatus::Waiting.as_str())),
            (":runtime", s(SPARK_SERVERLESS_RUNTIME)),
            (":now", s(&timestamp(at))),
            (":wait", n(epoch_millis(at))),
            (":lease", to_av(lease)?),
        ]);
        vals.extend(history_values(JobStatus::Waiting, None, at)?);
        let update = format!("SET jobStatus = :waiting, updatedAt = :now, jobWaitTime = :wait, submitLease = :lease, {APPEND_HISTORY}");
        self.updated(job_id, Write::new("UpdateItem(claim)", update, format!("jobStatus = :created AND {IS_OURS}"), vals)).await
    }

    async fn submit_snapshot(&self, job_id: &str) -> Result<Option<SubmitSnapshot>, AwsError> {
        self.read_fields(job_id, Some("jobStatus, sparkApplicationId, emrApplicationId, submitLease")).await
    }

    async fn take_over(&self, job_id: &str, observed: Option<&SubmitLease>, lease: &SubmitLease, at: DateTime<Utc>) -> Result<bool, AwsError> {
        let mut vals = values([(":waiting", s(JobStatus::Waiting.as_str())), (":now", s(&timestamp(at))), (":lease", to_av(lease)?)]);
        let lease_condition = match observed {
            None => "attribute_not_exists(submitLease)".to_string(),
            Some(old) => {
                vals.insert(":observed".into(), s(&old.owner));
                "submitLease.#owner = :observed".to_string()
            }
        };
        let condition = format!("jobStatus = :waiting AND attribute_not_exists(sparkApplicationId) AND {lease_condition}");
        let mut write = Write::new("UpdateItem(take over)", "SET submitLease = :lease, updatedAt = :now", condition, vals);
        if observed.is_some() {
            write.names = OWNER_NAME;
        }
        self.updated(job_id, write).await
    }

    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<(), AwsError> {
        let write = Write { names: OWNER_NAME, ..Write::new("UpdateItem(release lease)", "REMOVE submitLease", "submitLease.#owner = :owner", values([(":owner", s(owner))])) };
        self.updated(job_id, write).await.map(|_| ())
    }

    async fn record_launch(&self, job_id: &str, launch: &LaunchRecord) -> Result<RecordOutcome, AwsError> {
        let mut vals = values([
            (":run", s(&launch.run_id)),
            (":app", s(&launch.application_id)),
            (":uri", s(&launch.staging_uri)),
            (":now", s(&timestamp(launch.at))),
            (":submitted", s(SUBMITTED)),
        ]);
        vals.extend(history_values(JobStatus::Waiting, Some(SUBMITTED), launch.at)?);
        // Everything but the run id, application and staging URI is left out when absent (a
        // launch recorded short on a row near the item limit: `LaunchRecord::at_detail`).
        let mut optional = Vec::new();
        if let Some(architecture) = launch.architecture {
            vals.insert(":arch".into(), s(<&str>::from(architecture)));
            optional.push("emrApplicationArchitecture = :arch, ".to_string());
        }
        if let Some(controls) = &launch.run_controls {
            vals.insert(":controls".into(), to_av(controls)?);
            optional.push("runControls = :controls, ".to_string());
        }
        if let Some(permissions) = &launch.job_permissions {
            vals.insert(":permissions".into(), to_av(permissions)?);
            optional.push("jobPermissions = :permissions, ".to_string());
        }
        if !launch.ignored_parameters.is_empty() {
            vals.insert(":ignored".into(), to_av(&launch.ignored_parameters)?);
            optional.push("ignoredJobParameters = :ignored, ".to_string());
        }
        if !launch.messages.is_empty() {
            vals.insert(":messages".into(), AttributeValue::L(launch.messages.iter().map(|m| s(m)).collect()));
            optional.push(format!("{APPEND_MESSAGES}, "));
        }
        let update = format!(
            "SET sparkApplicationId = :run, emrApplicationId = :app, stagingUri = :uri, updatedAt = :now, {}\
             emrState = if_not_exists(emrState, :submitted), {APPEND_HISTORY} REMOVE submitLease",
            optional.concat()
        );
        let condition = "attribute_exists(id) AND (attribute_not_exists(sparkApplicationId) OR sparkApplicationId = :run)";
        let write = Write { return_new: true, ..Write::new("UpdateItem(record launch)", update, condition, vals) };
        match self.update_if(job_id, write).await? {
            Some(item) => {
                let header: JobHeader = decode_job("UpdateItem(record launch)", item)?;
                Ok(RecordOutcome::Recorded(header.status()))
            }
            None => match self.submit_snapshot(job_id).await? {
                None => Ok(RecordOutcome::JobMissing),
                Some(snapshot) => Ok(RecordOutcome::OtherRunRecorded(snapshot.header.spark_application_id)),
            },
        }
    }

    async fn fail_before_launch(&self, job_id: &str, message: &str, failure: &Failure, at: DateTime<Utc>, detail: WriteDetail) -> Result<bool, AwsError> {
        let condition = "attribute_exists(id) AND jobStatus IN (:created, :waiting) AND attribute_not_exists(sparkApplicationId)";
        let statuses = [(":created", s(JobStatus::Created.as_str())), (":waiting", s(JobStatus::Waiting.as_str()))];
        self.end_in_error(job_id, message, Some(failure), at, detail, condition, statuses).await
    }
}

#[async_trait]
impl CleanupStore for DynamoJobStore {
    async fn cleanup_snapshot(&self, job_id: &str) -> Result<Option<CleanupSnapshot>, AwsError> {
        self.read_fields(job_id, Some("jobStatus, runtimeType, targetEngine.engineType")).await
    }

    async fn mark_cleaned(&self, job_id: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        // Conditional, so a row deleted meanwhile is not recreated as a stub holding only cleanedAt.
        let write = Write::new("UpdateItem(mark cleaned)", "SET cleanedAt = :now, updatedAt = :now", "attribute_exists(id)", values([(":now", s(&timestamp(at)))]));
        self.updated(job_id, write).await
    }
}

/// GSI of the jobs table: partition key `sparkApplicationId`.
pub const BY_SPARK_APPLICATION_ID: &str = "bySparkApplicationId";

/// The fields the monitor's logs pass reads of a row waiting for its driver logs
/// (`MonitorStore::jobs_awaiting_logs`): whose it is, its run, its status and EMR state, the
/// `driverLogs` marker and the `errorMessage` a refined failure is compared with. Not the job's
/// model, inputs or outputs (a row holds FILE assets' content up to DynamoDB's 400 KB): a pass asks
/// for up to ~150 rows, which it then decodes, and moto took seconds a page to send whole rows.
const LOGS_PASS_FIELDS: &str = "id, jobStatus, runtimeType, targetEngine.engineType, sparkApplicationId, emrApplicationId, emrState, driverLogs, errorMessage, updatedAt";

/// GSI of the jobs table: partition key `jobStatus`, sort key `updatedAt`.
pub const BY_JOB_STATUS: &str = "byJobStatus";

fn decode_job<T: serde::de::DeserializeOwned>(operation: &'static str, item: HashMap<String, AttributeValue>) -> Result<T, AwsError> {
    serde_dynamo::from_item(item).map_err(|e| AwsError::new(SERVICE, operation, AwsErrorKind::Permanent, format!("unreadable job row: {e}")))
}

/// `(:p0, :p1, ...)` for an IN list, with the values added to `vals`.
fn in_list(name: &str, items: &[&str], vals: &mut HashMap<String, AttributeValue>) -> String {
    let names: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let key = format!(":{name}{i}");
            vals.insert(key.clone(), s(item));
            key
        })
        .collect();
    format!("({})", names.join(", "))
}

#[async_trait]
impl MonitorStore for DynamoJobStore {
    async fn monitored_job(&self, job_id: &str) -> Result<Option<MonitoredJob>, AwsError> {
        self.read_fields(job_id, None).await
    }

    async fn job_by_run_id(&self, run_id: &str) -> Result<Option<MonitoredJob>, AwsError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_SPARK_APPLICATION_ID)
            .key_condition_expression("sparkApplicationId = :run")
            .expression_attribute_values(":run", s(run_id))
            .limit(2)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "Query(bySparkApplicationId)", e))?;
        output.items().first().cloned().map(|item| decode_job("Query", item)).transpose()
    }

    async fn apply_status(&self, update: &StatusUpdate) -> Result<bool, AwsError> {
        let mut vals = values([
            (":status", s(update.status.as_str())),
            (":now", s(&timestamp(update.at))),
            (":run", s(&update.run_id)),
            (":app", s(&update.application_id)),
        ]);
        vals.extend(history_values(update.status, Some(&update.emr_state), update.at)?);
        if !update.history_only {
            vals.insert(":emr".into(), s(&update.emr_state));
        }
        let mut sets = vec![
            "jobStatus = :status".to_string(),
            "updatedAt = :now".to_string(),
            "sparkApplicationId = if_not_exists(sparkApplicationId, :run)".to_string(),
            "emrApplicationId = if_not_exists(emrApplicationId, :app)".to_string(),
            APPEND_HISTORY.to_string(),
        ];
        if !update.history_only {
            sets.push("emrState = :emr".to_string());
        }
        // Every applied state, known or not: what an operator sees as the run's latest state.
        sets.push("emrLatestState = :latest".to_string());
        vals.insert(":latest".into(), s(&update.emr_state));
        let mut optional = |name: &str, attribute: &str, value: Option<AttributeValue>| {
            if let Some(value) = value {
                sets.push(format!("{attribute} = :{name}"));
                vals.insert(format!(":{name}"), value);
            }
        };
        optional("logs", "driverLogs", update.driver_logs.as_ref().map(to_av).transpose()?);
        optional("message", "errorMessage", update.error_message.as_deref().map(s));
        optional("result", "modelResult", update.model_result.as_ref().map(to_av).transpose()?);
        optional("outputs", "outputFiles", update.output_files.as_ref().map(to_av).transpose()?);
        optional("attempts", "attempts", update.attempts.as_ref().map(to_av).transpose()?);
        optional("failure", "failure", update.failure.as_ref().map(to_av).transpose()?);
        optional("provenance", "provenance", update.provenance.as_ref().map(to_av).transpose()?);
        let at_ms = epoch_millis(update.at);
        if update.status == JobStatus::Running || update.status.is_terminal() {
            // The first moment the run was seen running; a run that ended before it was seen
            // running has none.
            if update.status == JobStatus::Running {
                sets.push("jobRunTime = if_not_exists(jobRunTime, :at_ms)".to_string());
            } else {
                sets.push("jobEndTime = :at_ms".to_string());
            }
            vals.insert(":at_ms".into(), n(at_ms));
        }
        for output in &update.file_outputs {
            let i = output.index;
            sets.push(format!("outputData[{i}].fileContent = :content{i}, outputData[{i}].fileSize = :size{i}"));
            vals.insert(format!(":content{i}"), s(&output.file_content));
            vals.insert(format!(":size{i}"), n(output.file_size as i64));
        }
        if !update.job_messages.is_empty() {
            sets.push(APPEND_MESSAGES.to_string());
            vals.insert(":messages".into(), AttributeValue::L(update.job_messages.iter().map(|m| s(m)).collect()));
        }
        let statuses = in_list("from", &update.from_statuses, &mut vals);
        let mut condition = format!(
            "attribute_exists(id) AND jobStatus IN {statuses} AND (attribute_not_exists(sparkApplicationId) OR sparkApplicationId = :run)"
        );
        if !update.blocked_emr_states.is_empty() {
            let blocked = in_list("blocked", &update.blocked_emr_states, &mut vals);
            condition.push_str(&format!(" AND (attribute_not_exists(emrState) OR NOT emrState IN {blocked})"));
        }
        self.updated(&update.job_id, Write::new("UpdateItem(apply status)", format!("SET {}", sets.join(", ")), condition, vals)).await
    }

    async fn record_retry(&self, update: &RetryUpdate) -> Result<bool, AwsError> {
        let state = match update.attempt {
            Some(n) => format!("RETRY attempt {n}"),
            None => "RETRY".to_string(),
        };
        let mut vals = values([
            (":now", s(&timestamp(update.at))),
            (":run", s(&update.run_id)),
            (":app", s(&update.application_id)),
            (":status", s(update.status.as_str())),
            (":attempts", to_av(&update.attempts)?),
        ]);
        vals.extend(history_values(update.status, Some(&state), update.at)?);
        // The row as read: its attempts (EQ compares lists and maps whole), so a second copy of
        // the event, read before the first was written, is refused and reads the row again.
        let seen = if update.seen_attempts.is_empty() {
            vals.insert(":zero".into(), n(0));
            "(attribute_not_exists(attempts) OR size(attempts) = :zero)"
        } else {
            vals.insert(":seen".into(), to_av(&update.seen_attempts)?);
            "attempts = :seen"
        };
        let condition = format!(
            "attribute_exists(id) AND jobStatus = :status AND (attribute_not_exists(sparkApplicationId) OR sparkApplicationId = :run) AND {seen}"
        );
        let update_expression = format!(
            "SET updatedAt = :now, attempts = :attempts, sparkApplicationId = if_not_exists(sparkApplicationId, :run), \
             emrApplicationId = if_not_exists(emrApplicationId, :app), {APPEND_HISTORY}"
        );
        self.updated(&update.job_id, Write::new("UpdateItem(record retry)", update_expression, condition, vals)).await
    }

    async fn stale_jobs(&self, status: JobStatus, before: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError> {
        let query = self
            .query_by_status(status)
            .key_condition_expression("jobStatus = :status AND updatedAt < :before")
            .expression_attribute_values(":before", s(&timestamp(before)));
        collect_jobs(query, "Query(byJobStatus)").await
    }

    async fn fail_stuck(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        let condition = "attribute_exists(id) AND jobStatus = :waiting AND attribute_not_exists(sparkApplicationId) \
                         AND (attribute_not_exists(submitLease) OR submitLease.expiresAt < :now)";
        self.end_in_error(job_id, message, None, at, WriteDetail::Full, condition, [(":waiting", s(JobStatus::Waiting.as_str()))]).await
    }

    async fn record_usage(&self, job_id: &str, usage: &ResourceUsage, cost: Option<&JobCost>) -> Result<bool, AwsError> {
        // crate::outcome::cost::supersedes, as a condition: final figures stay; a final write replaces
        // figures that are not; otherwise only later figures do.
        let mut vals = values([(":usage", to_av(usage)?), (":false", AttributeValue::Bool(false))]);
        let newer = if usage.is_final {
            ""
        } else {
            vals.insert(":asOf".into(), s(&usage.as_of.to_string()));
            " AND resourceUsage.asOf < :asOf"
        };
        let update = match cost {
            Some(cost) => {
                vals.insert(":cost".into(), to_av(cost)?);
                "SET resourceUsage = :usage, cost = :cost"
            }
            None => "SET resourceUsage = :usage",
        };
        let condition = format!("attribute_exists(id) AND (attribute_not_exists(resourceUsage) OR (resourceUsage.#final = :false{newer}))");
        self.updated(job_id, Write { names: FINAL_NAME, ..Write::new("UpdateItem(record usage)", update, condition, vals) }).await
    }

    async fn jobs_awaiting_usage(&self, status: JobStatus, since: DateTime<Utc>) -> Result<Vec<MonitoredJob>, AwsError> {
        let query = self
            .query_by_status(status)
            .key_condition_expression("jobStatus = :status AND updatedAt >= :since")
            .filter_expression("attribute_exists(sparkApplicationId) AND (attribute_not_exists(resourceUsage) OR resourceUsage.#final = :false)")
            .expression_attribute_names(FINAL_NAME[0].0, FINAL_NAME[0].1)
            .expression_attribute_values(":since", s(&timestamp(since)))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        collect_jobs(query, "Query(byJobStatus, usage)").await
    }

    async fn jobs_awaiting_logs(&self, status: JobStatus, since: DateTime<Utc>, at_most: usize) -> Result<Vec<MonitoredJob>, AwsError> {
        let query = self
            .query_by_status(status)
            .key_condition_expression("jobStatus = :status AND updatedAt >= :since")
            .filter_expression("attribute_exists(driverLogs.unavailable)")
            .projection_expression(LOGS_PASS_FIELDS)
            .expression_attribute_values(":since", s(&timestamp(since)))
            // Rows evaluated a page ("The maximum number of items to evaluate (not necessarily the
            // number of matching items)", Query API Reference): no more than the pass can read, not a
            // 1 MB page of a storm's backlog; pages go on past rows the filter drops.
            .limit(i32::try_from(at_most.max(1)).unwrap_or(i32::MAX));
        collect_at_most(query, "Query(byJobStatus, logs)", at_most).await
    }

    async fn attach_logs(&self, attachment: &LogsAttachment) -> Result<bool, AwsError> {
        // The status is the condition, never a value: whatever final status EMR's end gave the row stays.
        let finals = [JobStatus::Complete, JobStatus::Error, JobStatus::Cancelled].map(JobStatus::as_str);
        let mut vals = values([
            (":logs", to_av(&attachment.driver_logs)?),
            (":now", s(&timestamp(attachment.at))),
            (":run", s(&attachment.run_id)),
        ]);
        let statuses = in_list("final", &finals, &mut vals);
        let mut sets = vec!["driverLogs = :logs".to_string(), "updatedAt = :now".to_string()];
        if let Some(failure) = &attachment.failure {
            sets.push("failure = :failure".into());
            vals.insert(":failure".into(), to_av(failure)?);
        }
        if let Some(message) = &attachment.error_message {
            sets.push("errorMessage = :message".into());
            vals.insert(":message".into(), s(message));
        }
        if !attachment.job_messages.is_empty() {
            sets.push(APPEND_MESSAGES.to_string());
            vals.insert(":messages".into(), AttributeValue::L(attachment.job_messages.iter().map(|m| s(m)).collect()));
            vals.insert(":empty".into(), AttributeValue::L(vec![]));
        }
        let condition = format!("attribute_exists(driverLogs.unavailable) AND sparkApplicationId = :run AND jobStatus IN {statuses}");
        self.updated(&attachment.job_id, Write::new("UpdateItem(attach logs)", format!("SET {}", sets.join(", ")), condition, vals)).await
    }
}

/// The jobs table as the operator CLI (`cli/`, `modelop-spark`) reads and cancels it: whole rows,
/// one status's jobs through `byJobStatus` newest first, and the cancel ModelOp Center writes.
impl DynamoJobStore {
    /// A consistent read of a whole job row, decoded as `T`; `None` when there is no such row.
    pub async fn job_row<T: serde::de::DeserializeOwned>(&self, job_id: &str) -> Result<Option<T>, AwsError> {
        self.read_fields(job_id, None).await
    }

    /// The jobs of `status` updated at or after `since` (all when `None`), most recently updated
    /// first: one query of the `byJobStatus` index, read page after page until `limit` jobs pass
    /// `keep` (never a scan).
    pub async fn jobs_by_status<T: serde::de::DeserializeOwned>(
        &self,
        status: JobStatus,
        since: Option<DateTime<Utc>>,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, AwsError> {
        let query = self.query_by_status(status).scan_index_forward(false);
        let query = match since {
            Some(since) => query
                .key_condition_expression("jobStatus = :status AND updatedAt >= :since")
                .expression_attribute_values(":since", s(&timestamp(since))),
            None => query.key_condition_expression("jobStatus = :status"),
        };
        let mut pages = query.into_paginator().send();
        let mut jobs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "Query(byJobStatus)", e))?;
            for item in page.items() {
                let job: T = decode_job("Query", item.clone())?;
                if keep(&job) {
                    jobs.push(job);
                    if jobs.len() >= limit {
                        return Ok(jobs);
                    }
                }
            }
        }
        Ok(jobs)
    }

    /// Cancels a job the way ModelOp Center does, by a conditional write of `jobStatus`
    /// CANCELLED, so that cleanup cancels its run: only a job of this runtime that is not final.
    /// `grace_period_seconds` is recorded as `cancelGracePeriodSeconds`, the grace period
    /// cleanup's CancelJobRun passes; `note` is appended to `jobMessages`. False when the job is
    /// final, not of this runtime, or gone.
    pub async fn cancel_job(&self, job_id: &str, grace_period_seconds: Option<u32>, note: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        let mut vals = values([
            (":cancelled", s(JobStatus::Cancelled.as_str())),
            (":runtime", s(SPARK_SERVERLESS_RUNTIME)),
            (":now", s(&timestamp(at))),
            (":end", n(epoch_millis(at))),
            (":messages", AttributeValue::L(vec![s(&job_message(at, MessageLevel::Info, note))])),
        ]);
        let live = in_list("live", &["CREATED", "WAITING", "RUNNING"], &mut vals);
        vals.extend(history_values(JobStatus::Cancelled, None, at)?);
        let grace = match grace_period_seconds {
            Some(seconds) => {
                vals.insert(":grace".into(), n(i64::from(seconds)));
                ", cancelGracePeriodSeconds = :grace"
            }
            None => "",
        };
        let update = format!("SET jobStatus = :cancelled, updatedAt = :now, jobEndTime = :end{grace}, {APPEND_HISTORY}, {APPEND_MESSAGES}");
        let condition = format!("attribute_exists(id) AND jobStatus IN {live} AND {IS_OURS}");
        self.updated(job_id, Write::new("UpdateItem(cancel)", update, condition, vals)).await
    }
}

/// The table's shape as the operator CLI's `doctor` checks it (DescribeTable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableShape {
    /// The stream's view type when the stream is on (`NEW_AND_OLD_IMAGES`).
    pub stream_view_type: Option<String>,
    pub indexes: Vec<IndexShape>,
}

/// One global secondary index: its name, key attributes (hash, then range) and whether it projects all attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexShape {
    pub name: String,
    pub keys: Vec<String>,
    pub projects_all: bool,
}

/// The operator CLI's other calls: `submit` writing a new row (development and the local stack),
/// `doctor` describing the table.
impl DynamoJobStore {
    /// Writes `item` as a new job row; false when a row with its id exists already (never overwritten).
    pub async fn put_new_item(&self, item: HashMap<String, AttributeValue>) -> Result<bool, AwsError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(|e| classify(SERVICE, "PutItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is(AwsErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// DescribeTable: its stream and indexes; `None` when the answer has no table.
    pub async fn table_shape(&self) -> Result<Option<TableShape>, AwsError> {
        let described = self.client.describe_table().table_name(&self.table).send().await.map_err(|e| classify(SERVICE, "DescribeTable", e))?;
        Ok(described.table().map(|table| TableShape {
            stream_view_type: table.stream_specification().filter(|s| s.stream_enabled()).and_then(|s| s.stream_view_type()).map(|v| v.as_str().to_string()),
            indexes: table
                .global_secondary_indexes()
                .iter()
                .map(|gsi| IndexShape {
                    name: gsi.index_name().unwrap_or_default().to_string(),
                    keys: gsi.key_schema().iter().map(|k| k.attribute_name().to_string()).collect(),
                    projects_all: gsi.projection().and_then(|p| p.projection_type()).map(|t| t.as_str()) == Some("ALL"),
                })
                .collect(),
        }))
    }
}
