//! Finds or creates the EMR Serverless application a job runs on, and remembers name -> id for
//! the life of the Lambda container so warm invocations skip the lookup.

use std::collections::HashMap;
use std::sync::Mutex;

use tracing::info;

use crate::aws::AwsError;
use crate::ports::{ApplicationSpec, EmrServerless};

/// Application states in which a job run is accepted without starting the application first.
const READY_STATES: [&str; 4] = ["CREATING", "CREATED", "STARTING", "STARTED"];

#[derive(Debug, Default)]
pub struct ApplicationResolver {
    cache: Mutex<HashMap<String, String>>,
}

impl ApplicationResolver {
    pub fn cached(&self, name: &str) -> Option<String> {
        self.cache.lock().expect("cache lock").get(name).cloned()
    }

    /// Forgets a cached id that EMR no longer knows.
    pub fn forget(&self, name: &str) {
        self.cache.lock().expect("cache lock").remove(name);
    }

    /// The id of the application named in `spec`: cached, found (and started when stopped), or
    /// created with auto-start and auto-stop.
    pub async fn resolve(&self, emr: &dyn EmrServerless, spec: &ApplicationSpec) -> Result<String, AwsError> {
        if let Some(id) = self.cached(&spec.name) {
            return Ok(id);
        }
        let id = match emr.find_application(&spec.name).await? {
            Some(app) => {
                if !READY_STATES.contains(&app.state.as_str()) {
                    info!(application_name = %spec.name, application_id = %app.id, state = %app.state, "starting stopped application");
                    emr.start_application(&app.id).await?;
                }
                app.id
            }
            None => {
                let id = emr.create_application(spec).await?;
                info!(application_name = %spec.name, application_id = %id, release = %spec.release_label, "created application");
                id
            }
        };
        self.cache.lock().expect("cache lock").insert(spec.name.clone(), id.clone());
        Ok(id)
    }
}
