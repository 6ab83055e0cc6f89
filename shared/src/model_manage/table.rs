//! The jobs table as the bridge writes it: a bridged job's new row (a conditional PutItem, so a
//! job is bridged once), whether a row exists, the bridged rows still going, and CANCELLED for a
//! row whose job ModelOp cancelled or deleted.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::aws::classify;
use crate::error::{AwsError, AwsErrorKind};
use crate::job::record::{epoch_millis, job_message, timestamp, JobHeader, JobStatus, MessageLevel, StatusChange, Timestamp};
use crate::bridge::job_mapping::MODEL_MANAGE_ATTR;
use crate::bridge::ports::{ActiveRow, BridgeTable};

const SERVICE: &str = "DynamoDB";
/// The index of rows by status (the table's contract, `shared/CONTRACT.md`).
const BY_JOB_STATUS: &str = "byJobStatus";

/// The jobs table, for the bridge.
#[derive(Debug, Clone)]
pub struct DynamoBridgeTable {
    client: Client,
    table: String,
}

impl DynamoBridgeTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoBridgeTable { client, table: table.into() }
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

#[async_trait]
impl BridgeTable for DynamoBridgeTable {
    async fn put_new_row(&self, row: &Value) -> Result<bool, AwsError> {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(row).map_err(|e| AwsError::new(SERVICE, "PutItem(bridged job)", AwsErrorKind::Permanent, format!("the row is not an item: {e}")))?;
        let result = self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression("attribute_not_exists(id)").send().await;
        match result.map_err(|e| classify(SERVICE, "PutItem(bridged job)", e)) {
            Ok(_) => Ok(true),
            Err(e) if e.is(AwsErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn row_exists(&self, job_id: &str) -> Result<bool, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(job_id))
            .consistent_read(true)
            .projection_expression("id")
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetItem", e))?;
        Ok(output.item.is_some())
    }

    async fn active_bridged_rows(&self) -> Result<Vec<ActiveRow>, AwsError> {
        let mut rows = Vec::new();
        for status in [JobStatus::Created, JobStatus::Waiting, JobStatus::Running] {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_JOB_STATUS)
                .key_condition_expression("jobStatus = :status")
                .filter_expression("attribute_exists(#mark)")
                .expression_attribute_names("#mark", MODEL_MANAGE_ATTR)
                .expression_attribute_values(":status", s(status.as_str()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify(SERVICE, "Query(bridged rows)", e))?;
                for item in page.items() {
                    let header: JobHeader = serde_dynamo::from_item(item.clone()).map_err(|e| AwsError::new(SERVICE, "Query(bridged rows)", AwsErrorKind::Permanent, e.to_string()))?;
                    if let (Some(job_id), Some(status)) = (header.id, header.job_status) {
                        rows.push(ActiveRow { job_id, status });
                    }
                }
            }
        }
        Ok(rows)
    }

    async fn cancel_row(&self, job_id: &str, message: &str, at: DateTime<Utc>) -> Result<bool, AwsError> {
        let history = serde_dynamo::to_attribute_value(vec![StatusChange { status: JobStatus::Cancelled, emr_state: None, at: Timestamp(at) }])
            .map_err(|e| AwsError::new(SERVICE, "UpdateItem(cancel bridged job)", AwsErrorKind::Permanent, e.to_string()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(job_id))
            .update_expression(
                "SET jobStatus = :cancelled, updatedAt = :now, jobEndTime = :end, \
                 statusHistory = list_append(if_not_exists(statusHistory, :empty), :history), \
                 jobMessages = list_append(if_not_exists(jobMessages, :empty), :messages)",
            )
            .condition_expression("jobStatus IN (:created, :waiting, :running)")
            .expression_attribute_values(":cancelled", s(JobStatus::Cancelled.as_str()))
            .expression_attribute_values(":created", s(JobStatus::Created.as_str()))
            .expression_attribute_values(":waiting", s(JobStatus::Waiting.as_str()))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":now", s(&timestamp(at)))
            .expression_attribute_values(":end", AttributeValue::N(epoch_millis(at).to_string()))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":history", history)
            .expression_attribute_values(":messages", AttributeValue::L(vec![s(&job_message(at, MessageLevel::Warning, message))]))
            .send()
            .await;
        match result.map_err(|e| classify(SERVICE, "UpdateItem(cancel bridged job)", e)) {
            Ok(_) => Ok(true),
            Err(e) if e.is(AwsErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
