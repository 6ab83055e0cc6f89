//! EMR Serverless: applications and job runs behind the EMR ports.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{AwsError, AwsErrorKind};
use crate::launch::manifest::PySparkJobManifest;
use crate::launch::application::{ApplicationSpec, ApplicationSummary};
use crate::outcome::job_run::{JobRunAttempt, JobRunInfo};
use crate::ports::*;
use super::recorder::Recorder;

/// A job run the fake EMR knows.
#[derive(Debug, Clone)]
pub struct FakeRun {
    pub application_id: String,
    pub info: JobRunInfo,
    pub created_at: DateTime<Utc>,
    /// The request StartJobRun got; `None` for a run a test put there.
    pub manifest: Option<PySparkJobManifest>,
    /// What ListJobRunAttempts answers (a test sets it with `set_attempts`).
    pub attempts: Vec<JobRunAttempt>,
    /// What GetJobRun with `attempt` answers for an earlier attempt (`set_attempt_run`); the
    /// latest attempt is `info`.
    pub earlier_attempts: BTreeMap<i32, JobRunInfo>,
}

#[derive(Debug, Default)]
struct EmrState {
    /// (id, name, state), oldest first.
    applications: Vec<(String, String, String)>,
    runs: BTreeMap<String, FakeRun>,
    /// The specs CreateApplication got, in order.
    created: Vec<ApplicationSpec>,
}

/// EMR Serverless: applications and runs in memory. StartJobRun is idempotent by client token,
/// as EMR's is.
#[derive(Default)]
pub struct FakeEmr {
    pub recorder: Recorder,
    state: Mutex<EmrState>,
}

impl FakeEmr {
    pub fn add_application(&self, id: &str, name: &str, state: &str) {
        self.state.lock().unwrap().applications.push((id.into(), name.into(), state.into()));
    }

    /// Sets an application's state (`TERMINATED`: EMR no longer runs anything on it).
    pub fn set_application_state(&self, id: &str, state: &str) {
        if let Some(app) = self.state.lock().unwrap().applications.iter_mut().find(|a| a.0 == id) {
            app.2 = state.into();
        }
    }

    pub fn add_run(&self, application_id: &str, run_id: &str, info: JobRunInfo) {
        let run = FakeRun { application_id: application_id.into(), info, created_at: Utc::now(), manifest: None, attempts: Vec::new(), earlier_attempts: BTreeMap::new() };
        self.state.lock().unwrap().runs.insert(run_id.into(), run);
    }

    /// The attempts ListJobRunAttempts lists for a run added before.
    pub fn set_attempts(&self, run_id: &str, attempts: Vec<JobRunAttempt>) {
        if let Some(run) = self.state.lock().unwrap().runs.get_mut(run_id) {
            run.attempts = attempts;
        }
    }

    /// What GetJobRun with `attempt` = `attempt` answers for a run added before.
    pub fn set_attempt_run(&self, run_id: &str, attempt: i32, info: JobRunInfo) {
        if let Some(run) = self.state.lock().unwrap().runs.get_mut(run_id) {
            run.earlier_attempts.insert(attempt, info);
        }
    }

    pub fn run(&self, run_id: &str) -> Option<FakeRun> {
        self.state.lock().unwrap().runs.get(run_id).cloned()
    }

    /// The runs StartJobRun created, by run id.
    pub fn started(&self) -> Vec<(String, FakeRun)> {
        self.state.lock().unwrap().runs.iter().filter(|(_, r)| r.manifest.is_some()).map(|(id, r)| (id.clone(), r.clone())).collect()
    }

    /// The specs CreateApplication got, in order.
    pub fn created_applications(&self) -> Vec<ApplicationSpec> {
        self.state.lock().unwrap().created.clone()
    }

    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.recorder.fail_next(operation, error);
    }

    fn not_found(operation: &'static str, what: &str) -> AwsError {
        AwsError::new("EMR Serverless", operation, AwsErrorKind::NotFound, format!("ResourceNotFoundException: {what} not found"))
    }
}

#[async_trait]
impl ApplicationCatalog for FakeEmr {
    async fn find_application(&self, name: &str) -> Result<Option<ApplicationSummary>, AwsError> {
        self.recorder.call("find_application", &[name])?;
        let state = self.state.lock().unwrap();
        let found = state.applications.iter().rev().find(|(_, n, s)| n == name && s != "TERMINATED");
        Ok(found.map(|(id, _, s)| ApplicationSummary { id: id.clone(), state: s.clone(), architecture: None }))
    }

    async fn create_application(&self, spec: &ApplicationSpec) -> Result<String, AwsError> {
        self.recorder.call("create_application", &[&spec.name])?;
        let mut state = self.state.lock().unwrap();
        state.created.push(spec.clone());
        let id = format!("app-{}", state.applications.len() + 1);
        state.applications.push((id.clone(), spec.name.clone(), "CREATED".into()));
        Ok(id)
    }

    async fn start_application(&self, application_id: &str) -> Result<(), AwsError> {
        self.recorder.call("start_application", &[application_id])?;
        let mut state = self.state.lock().unwrap();
        let app = state.applications.iter_mut().find(|a| a.0 == application_id).ok_or_else(|| Self::not_found("StartApplication", application_id))?;
        app.2 = "STARTED".into();
        Ok(())
    }
}

#[async_trait]
impl JobRunLauncher for FakeEmr {
    async fn start_job_run(&self, application_id: &str, manifest: &PySparkJobManifest) -> Result<String, AwsError> {
        self.recorder.call("start_job_run", &[application_id, &manifest.job_id])?;
        let mut state = self.state.lock().unwrap();
        if !state.applications.iter().any(|(id, _, s)| id == application_id && s != "TERMINATED") {
            return Err(Self::not_found("StartJobRun", application_id));
        }
        let same_token = state.runs.iter().find(|(_, r)| {
            r.application_id == application_id && r.manifest.as_ref().is_some_and(|m| m.client_token == manifest.client_token)
        });
        if let Some((id, _)) = same_token {
            return Ok(id.clone());
        }
        let id = format!("run-{}", state.runs.len() + 1);
        let info = JobRunInfo { state: "SUBMITTED".into(), name: Some(manifest.run_name.clone()), tags: manifest.tags.clone().into_iter().collect(), ..JobRunInfo::default() };
        state.runs.insert(id.clone(), FakeRun { application_id: application_id.into(), info, created_at: Utc::now(), manifest: Some(manifest.clone()), attempts: Vec::new(), earlier_attempts: BTreeMap::new() });
        Ok(id)
    }

    async fn find_job_run(&self, application_id: &str, name: &str, created_after: DateTime<Utc>) -> Result<Option<String>, AwsError> {
        self.recorder.call("find_job_run", &[application_id, name])?;
        let state = self.state.lock().unwrap();
        let found = state.runs.iter().find(|(_, r)| r.application_id == application_id && r.info.name.as_deref() == Some(name) && r.created_at > created_after);
        Ok(found.map(|(id, _)| id.clone()))
    }
}

#[async_trait]
impl JobRunCanceller for FakeEmr {
    async fn cancel_job_run(&self, application_id: &str, run_id: &str, grace_period_seconds: u32) -> Result<(), AwsError> {
        self.recorder.call("cancel_job_run", &[application_id, run_id, &grace_period_seconds.to_string()])?;
        let mut state = self.state.lock().unwrap();
        let run = state.runs.get_mut(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("CancelJobRun", run_id))?;
        if !matches!(run.info.state.as_str(), "SUCCESS" | "FAILED" | "CANCELLED") {
            run.info.state = "CANCELLING".into();
        }
        Ok(())
    }
}

#[async_trait]
impl JobRunReader for FakeEmr {
    async fn get_job_run(&self, application_id: &str, run_id: &str) -> Result<JobRunInfo, AwsError> {
        self.recorder.call("get_job_run", &[application_id, run_id])?;
        let state = self.state.lock().unwrap();
        let run = state.runs.get(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("GetJobRun", run_id))?;
        Ok(run.info.clone())
    }

    async fn get_job_run_attempt(&self, application_id: &str, run_id: &str, attempt: i32) -> Result<JobRunInfo, AwsError> {
        self.recorder.call("get_job_run_attempt", &[application_id, run_id, &attempt.to_string()])?;
        let state = self.state.lock().unwrap();
        let run = state.runs.get(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("GetJobRun", run_id))?;
        match run.earlier_attempts.get(&attempt) {
            Some(info) => Ok(info.clone()),
            None if run.info.attempt.unwrap_or(1) == attempt => Ok(run.info.clone()),
            None => Err(Self::not_found("GetJobRun", &format!("{run_id} attempt {attempt}"))),
        }
    }

    async fn list_job_run_attempts(&self, application_id: &str, run_id: &str) -> Result<Vec<JobRunAttempt>, AwsError> {
        self.recorder.call("list_job_run_attempts", &[application_id, run_id])?;
        let state = self.state.lock().unwrap();
        let run = state.runs.get(run_id).filter(|r| r.application_id == application_id).ok_or_else(|| Self::not_found("ListJobRunAttempts", run_id))?;
        Ok(run.attempts.clone())
    }
}
