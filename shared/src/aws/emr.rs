//! EMR Serverless: applications and job runs.

use async_trait::async_trait;
use aws_sdk_emrserverless::types::{
    ApplicationState, Architecture, AutoStartConfig, AutoStopConfig, CloudWatchLoggingConfiguration, ConfigurationOverrides, JobDriver,
    JobLevelCostAllocationConfiguration, JobRunExecutionIamPolicy, MaximumAllowedResources, MonitoringConfiguration, NetworkConfiguration, RetryPolicy,
    SchedulerConfiguration, SparkSubmit,
};
use aws_sdk_emrserverless::Client;
use chrono::{DateTime, Utc};

use super::{classify, AwsError, AwsErrorKind};
use crate::launch::manifest::PySparkJobManifest;
use crate::launch::application::{ApplicationSpec, ApplicationSummary};
use crate::outcome::cost::{RunUtilization, Utilization};
use crate::outcome::job_run::{JobRunAttempt, JobRunInfo};
use crate::ports::{ApplicationCatalog, JobRunCanceller, JobRunLauncher, JobRunReader};

const SERVICE: &str = "EMR Serverless";
/// The application type this service runs.
const SPARK: &str = "SPARK";

#[derive(Debug, Clone)]
pub struct EmrServerlessClient {
    client: Client,
}

impl EmrServerlessClient {
    pub fn new(client: Client) -> Self {
        EmrServerlessClient { client }
    }
}

fn build_error(operation: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError::new(SERVICE, operation, AwsErrorKind::Permanent, format!("request could not be built: {e}"))
}

/// CreateApplication's idempotency token for an application name: `[A-Za-z0-9._-]`, at most 64
/// characters, distinct for distinct names (names may also hold '/' and '#').
pub fn application_client_token(name: &str) -> String {
    let readable: String = name.chars().take(40).map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("app-{readable}-{hash:016x}")
}

#[async_trait]
impl ApplicationCatalog for EmrServerlessClient {
    async fn find_application(&self, name: &str) -> Result<Option<ApplicationSummary>, AwsError> {
        let live_states = [
            ApplicationState::Creating,
            ApplicationState::Created,
            ApplicationState::Starting,
            ApplicationState::Started,
            ApplicationState::Stopping,
            ApplicationState::Stopped,
        ];
        let mut pages = self.client.list_applications().set_states(Some(live_states.to_vec())).into_paginator().send();
        let mut best: Option<(aws_smithy_types::DateTime, ApplicationSummary)> = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "ListApplications", e))?;
            for app in page.applications() {
                let live = !matches!(app.state(), ApplicationState::Terminated);
                if app.name() == Some(name) && live && !app.r#type().eq_ignore_ascii_case("HIVE") {
                    let newer = best.as_ref().is_none_or(|(at, _)| app.created_at() > at);
                    if newer {
                        let summary = ApplicationSummary {
                            id: app.id().to_string(),
                            state: app.state().as_str().to_string(),
                            architecture: app.architecture().and_then(|a| a.as_str().parse().ok()),
                        };
                        best = Some((*app.created_at(), summary));
                    }
                }
            }
        }
        Ok(best.map(|(_, summary)| summary))
    }

    async fn create_application(&self, spec: &ApplicationSpec) -> Result<String, AwsError> {
        let operation = "CreateApplication";
        let idle = i32::try_from(spec.idle_timeout_minutes).unwrap_or(i32::MAX);
        let settings = &spec.settings;
        let capacity = settings
            .maximum_capacity
            .as_ref()
            .map(|c| MaximumAllowedResources::builder().cpu(&c.cpu).memory(&c.memory).set_disk(c.disk.clone()).build())
            .transpose()
            .map_err(|e| build_error(operation, e))?;
        let small = |n: Option<u32>| n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let scheduler = settings.scheduler.map(|s| {
            SchedulerConfiguration::builder()
                .set_max_concurrent_runs(small(s.max_concurrent_runs))
                .set_queue_timeout_minutes(small(s.queue_timeout_minutes))
                .build()
        });
        let network = settings.network.as_ref().map(|n| {
            NetworkConfiguration::builder()
                .set_subnet_ids(Some(n.subnet_ids.clone()).filter(|ids| !ids.is_empty()))
                .set_security_group_ids(Some(n.security_group_ids.clone()).filter(|ids| !ids.is_empty()))
                .build()
        });
        self.client
            .create_application()
            .name(&spec.name)
            .release_label(&spec.release_label)
            .r#type(SPARK)
            .client_token(application_client_token(&spec.name))
            .auto_start_configuration(AutoStartConfig::builder().enabled(true).build())
            .auto_stop_configuration(AutoStopConfig::builder().enabled(true).idle_timeout_minutes(idle).build())
            .set_scheduler_configuration(scheduler)
            .set_maximum_capacity(capacity)
            .set_architecture(settings.architecture.map(|a| Architecture::from(<&str>::from(a))))
            .set_network_configuration(network)
            .job_level_cost_allocation_configuration(JobLevelCostAllocationConfiguration::builder().enabled(settings.job_level_cost_allocation).build())
            .tags("modelop:managedBy", "spark-serverless-runtime")
            .send()
            .await
            .map(|o| o.application_id().to_string())
            .map_err(|e| classify(SERVICE, operation, e))
    }

    async fn start_application(&self, application_id: &str) -> Result<(), AwsError> {
        self.client
            .start_application()
            .application_id(application_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(SERVICE, "StartApplication", e))
    }
}

#[async_trait]
impl JobRunLauncher for EmrServerlessClient {
    async fn start_job_run(&self, application_id: &str, manifest: &PySparkJobManifest) -> Result<String, AwsError> {
        let operation = "StartJobRun";
        let spark_submit = SparkSubmit::builder()
            .entry_point(&manifest.entry_point)
            .set_entry_point_arguments(Some(manifest.entry_point_arguments.clone()))
            .spark_submit_parameters(&manifest.spark_submit_parameters)
            .build()
            .map_err(|e| build_error(operation, e))?;
        let logging = CloudWatchLoggingConfiguration::builder()
            .enabled(true)
            .log_group_name(&manifest.log_group)
            .log_stream_name_prefix(&manifest.log_stream_prefix)
            .build()
            .map_err(|e| build_error(operation, e))?;
        let overrides = ConfigurationOverrides::builder()
            .monitoring_configuration(MonitoringConfiguration::builder().cloud_watch_logging_configuration(logging).build())
            .build();
        self.client
            .start_job_run()
            .application_id(application_id)
            .client_token(&manifest.client_token)
            .name(&manifest.run_name)
            .execution_role_arn(&manifest.execution_role_arn)
            .job_driver(JobDriver::SparkSubmit(spark_submit))
            .configuration_overrides(overrides)
            .execution_timeout_minutes(i64::from(manifest.run_controls.execution_timeout_minutes))
            .set_retry_policy(manifest.run_controls.retry_policy_attempts().map(|n| RetryPolicy::builder().max_attempts(i32::try_from(n).unwrap_or(i32::MAX)).build()))
            .set_tags(Some(manifest.tags.clone().into_iter().collect()))
            .set_execution_iam_policy(manifest.execution_iam_policy.as_ref().map(|p| {
                JobRunExecutionIamPolicy::builder()
                    .policy(&p.policy)
                    .set_policy_arns(Some(p.policy_arns.clone()).filter(|arns| !arns.is_empty()))
                    .build()
            }))
            .send()
            .await
            .map(|o| o.job_run_id().to_string())
            .map_err(|e| classify(SERVICE, operation, e))
    }

    async fn find_job_run(&self, application_id: &str, name: &str, created_after: DateTime<Utc>) -> Result<Option<String>, AwsError> {
        let after = aws_smithy_types::DateTime::from_millis(created_after.timestamp_millis());
        let mut pages = self.client.list_job_runs().application_id(application_id).created_at_after(after).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page.map_err(|e| classify(SERVICE, "ListJobRuns", e)) {
                Ok(page) => page,
                // Some endpoints answer "not found" for an application that never had a run.
                Err(e) if e.is(AwsErrorKind::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some(run) = page.job_runs().iter().find(|r| r.name() == Some(name)) {
                return Ok(Some(run.id().to_string()));
            }
        }
        Ok(None)
    }
}

impl EmrServerlessClient {
    /// GetJobRun: the latest attempt, or the one `attempt` names.
    async fn job_run(&self, application_id: &str, run_id: &str, attempt: Option<i32>) -> Result<JobRunInfo, AwsError> {
        let output = self
            .client
            .get_job_run()
            .application_id(application_id)
            .job_run_id(run_id)
            .set_attempt(attempt)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetJobRun", e))?;
        let run = output
            .job_run
            .ok_or_else(|| AwsError::new(SERVICE, "GetJobRun", AwsErrorKind::Transient, format!("no job run in the answer for {run_id}")))?;
        Ok(JobRunInfo {
            state: run.state().as_str().to_string(),
            state_details: Some(run.state_details().to_string()).filter(|d| !d.is_empty()),
            name: run.name().map(str::to_string),
            tags: run.tags().cloned().unwrap_or_default(),
            attempt: run.attempt(),
            attempt_created_at: run.attempt_created_at().and_then(to_chrono),
            attempt_updated_at: run.attempt_updated_at().and_then(to_chrono),
            release_label: Some(run.release_label().to_string()).filter(|l| !l.is_empty()),
            started_at: run.started_at().and_then(to_chrono),
            ended_at: run.ended_at().and_then(to_chrono),
            total_execution_duration_seconds: run.total_execution_duration_seconds().map(i64::from),
            queued_duration_milliseconds: run.queued_duration_milliseconds(),
            execution_timeout_minutes: run.execution_timeout_minutes(),
            max_attempts: run.retry_policy().and_then(|p| p.max_attempts()),
            image_uri: run.image_configuration().map(|i| i.image_uri().to_string()).filter(|u| !u.is_empty()),
            image_digest: run.image_configuration().and_then(|i| i.resolved_image_digest()).map(str::to_string),
            utilization: run.total_resource_utilization().map(|used| RunUtilization {
                used: Utilization {
                    vcpu_hour: used.v_cpu_hour().unwrap_or(0.0),
                    memory_gb_hour: used.memory_gb_hour().unwrap_or(0.0),
                    storage_gb_hour: used.storage_gb_hour().unwrap_or(0.0),
                },
                billed: run.billed_resource_utilization().map(|billed| Utilization {
                    vcpu_hour: billed.v_cpu_hour().unwrap_or(0.0),
                    memory_gb_hour: billed.memory_gb_hour().unwrap_or(0.0),
                    storage_gb_hour: billed.storage_gb_hour().unwrap_or(0.0),
                }),
            }),
        })
    }
}

#[async_trait]
impl JobRunReader for EmrServerlessClient {
    async fn get_job_run(&self, application_id: &str, run_id: &str) -> Result<JobRunInfo, AwsError> {
        self.job_run(application_id, run_id, None).await
    }

    async fn get_job_run_attempt(&self, application_id: &str, run_id: &str, attempt: i32) -> Result<JobRunInfo, AwsError> {
        self.job_run(application_id, run_id, Some(attempt)).await
    }

    async fn list_job_run_attempts(&self, application_id: &str, run_id: &str) -> Result<Vec<JobRunAttempt>, AwsError> {
        let mut pages = self.client.list_job_run_attempts().application_id(application_id).job_run_id(run_id).into_paginator().send();
        let mut attempts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "ListJobRunAttempts", e))?;
            for listed in page.job_run_attempts() {
                // An entry without a number cannot be placed in the list: EMR always gives one.
                let Some(attempt) = listed.attempt() else { continue };
                attempts.push(JobRunAttempt {
                    attempt,
                    state: listed.state().as_str().to_string(),
                    state_details: Some(listed.state_details().to_string()).filter(|d| !d.is_empty()),
                    created_at: to_chrono(listed.created_at()),
                    updated_at: to_chrono(listed.updated_at()),
                });
            }
        }
        Ok(attempts)
    }
}

/// An application as the operator CLI's `doctor` checks it (GetApplication).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationDetails {
    pub state: String,
    pub release_label: String,
    /// `monitoringConfiguration.managedPersistenceMonitoringConfiguration.enabled`; `None` when not
    /// set (EMR's default: on).
    pub managed_log_storage: Option<bool>,
}

/// What the operator CLI's `ui` needs of a run before it mints a Spark UI link (GetJobRun): its
/// state and whether its managed log storage, which keeps the UI, is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunUiState {
    pub state: String,
    /// `configurationOverrides.monitoringConfiguration.managedPersistenceMonitoringConfiguration.enabled`.
    pub managed_log_storage: Option<bool>,
}

/// The calls only the operator CLI (`cli/`, `modelop-spark`) makes: an application's details, a
/// run's UI state, and a Spark UI link.
impl EmrServerlessClient {
    /// GetApplication.
    pub async fn application_details(&self, application_id: &str) -> Result<ApplicationDetails, AwsError> {
        let output = self.client.get_application().application_id(application_id).send().await.map_err(|e| classify(SERVICE, "GetApplication", e))?;
        let app = output
            .application()
            .ok_or_else(|| AwsError::new(SERVICE, "GetApplication", AwsErrorKind::Permanent, "GetApplication gave no application"))?;
        Ok(ApplicationDetails {
            state: app.state().as_str().to_string(),
            release_label: app.release_label().to_string(),
            managed_log_storage: app.monitoring_configuration().and_then(|m| m.managed_persistence_monitoring_configuration()).and_then(|p| p.enabled()),
        })
    }

    /// GetJobRun, for the run's state and managed log storage.
    pub async fn run_ui_state(&self, application_id: &str, run_id: &str) -> Result<Option<RunUiState>, AwsError> {
        let output = self.client.get_job_run().application_id(application_id).job_run_id(run_id).send().await.map_err(|e| classify(SERVICE, "GetJobRun", e))?;
        Ok(output.job_run().map(|run| RunUiState {
            state: run.state().as_str().to_string(),
            managed_log_storage: run
                .configuration_overrides()
                .and_then(|o| o.monitoring_configuration())
                .and_then(|m| m.managed_persistence_monitoring_configuration())
                .and_then(|p| p.enabled()),
        }))
    }

    /// GetDashboardForJobRun: a short-lived Spark UI link for the run (the latest attempt, or `attempt`).
    pub async fn dashboard_url(&self, application_id: &str, run_id: &str, attempt: Option<i32>) -> Result<Option<String>, AwsError> {
        let output = self
            .client
            .get_dashboard_for_job_run()
            .application_id(application_id)
            .job_run_id(run_id)
            .set_attempt(attempt)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetDashboardForJobRun", e))?;
        Ok(output.url().map(str::to_string))
    }
}

/// An SDK timestamp as chrono's; `None` out of chrono's range.
fn to_chrono(at: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

#[async_trait]
impl JobRunCanceller for EmrServerlessClient {
    /// A grace period of 0 is not sent: EMR's default for a batch run is no grace period, and a
    /// release before emr-7.9.0 knows no such parameter. A grace period the run's application
    /// refuses (an application found by name is used as it is, whatever its release) must not
    /// leave the run going: the cancel is sent once more without it.
    async fn cancel_job_run(&self, application_id: &str, run_id: &str, grace_period_seconds: u32) -> Result<(), AwsError> {
        let grace = Some(i32::try_from(grace_period_seconds).unwrap_or(i32::MAX)).filter(|g| *g > 0);
        let cancel = |grace: Option<i32>| {
            self.client.cancel_job_run().application_id(application_id).job_run_id(run_id).set_shutdown_grace_period_in_seconds(grace).send()
        };
        // A run that already ended cannot be cancelled (ValidationException): the outcome we wanted.
        let already_ended = |err: &AwsError| err.kind == AwsErrorKind::Permanent && err.code.as_deref() == Some("ValidationException");
        let err = match cancel(grace).await {
            Ok(_) => return Ok(()),
            Err(e) => classify(SERVICE, "CancelJobRun", e),
        };
        if !already_ended(&err) {
            return Err(err);
        }
        if grace.is_none() {
            return Ok(());
        }
        match cancel(None).await {
            Ok(_) => Ok(()),
            Err(e) => Some(classify(SERVICE, "CancelJobRun", e)).filter(|err| !already_ended(err)).map_or(Ok(()), Err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_tokens_are_valid_and_distinct() {
        let names = ["modelop-default", "team/a#1", "team_a_1", &"x".repeat(64)];
        let tokens: Vec<String> = names.iter().map(|n| application_client_token(n)).collect();
        for token in &tokens {
            assert!(token.len() <= 64 && token.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "{token}");
        }
        assert_ne!(tokens[1], tokens[2], "names that sanitize alike still get distinct tokens");
        assert_eq!(application_client_token("modelop-default"), tokens[0], "stable");
    }
}
