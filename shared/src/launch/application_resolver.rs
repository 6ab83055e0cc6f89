//! Finds or creates the EMR Serverless application a job runs on, and remembers name -> id for
//! the life of the Lambda container so warm invocations skip the lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::info;

use crate::error::AwsError;
use crate::launch::application::{ApplicationSpec, DEFAULT_ARCHITECTURE};
use crate::ports::ApplicationCatalog;
use crate::launch::run_controls::Architecture;

/// An application this service runs jobs on: its id, and the architecture its runs are priced at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    id: String,
    architecture: Architecture,
}

/// Application states in which a job run is accepted without starting the application first.
const READY_STATES: [&str; 4] = ["CREATING", "CREATED", "STARTING", "STARTED"];

#[derive(Debug, Default)]
pub struct ApplicationResolver {
    cache: Mutex<HashMap<String, Resolved>>,
    /// One lookup per name at a time: concurrent records of a batch wait for the first lookup
    /// instead of each creating the application.
    lookups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ApplicationResolver {
    pub fn cached(&self, name: &str) -> Option<String> {
        self.cache.lock().expect("cache lock").get(name).map(|app| app.id.clone())
    }

    /// The architecture of the application resolved for `name`: as ListApplications reported it,
    /// or as this service created it ([`DEFAULT_ARCHITECTURE`] when neither says).
    pub fn architecture(&self, name: &str) -> Option<Architecture> {
        self.cache.lock().expect("cache lock").get(name).map(|app| app.architecture)
    }

    /// Forgets a cached id that EMR no longer knows.
    pub fn forget(&self, name: &str) {
        self.cache.lock().expect("cache lock").remove(name);
    }

    /// The id of the application named in `spec`: cached, found (and started when stopped), or
    /// created with auto-start and auto-stop.
    pub async fn resolve(&self, emr: &dyn ApplicationCatalog, spec: &ApplicationSpec) -> Result<String, AwsError> {
        if let Some(id) = self.cached(&spec.name) {
            return Ok(id);
        }
        let lookup = self.lookups.lock().expect("lookup lock").entry(spec.name.clone()).or_default().clone();
        let _single_flight = lookup.lock().await;
        if let Some(id) = self.cached(&spec.name) {
            return Ok(id);
        }
        let resolved = match emr.find_application(&spec.name).await? {
            Some(app) => {
                if !READY_STATES.contains(&app.state.as_str()) {
                    info!(application_name = %spec.name, application_id = %app.id, state = %app.state, "starting stopped application");
                    emr.start_application(&app.id).await?;
                }
                Resolved { id: app.id, architecture: app.architecture.unwrap_or(DEFAULT_ARCHITECTURE) }
            }
            None => {
                let id = emr.create_application(spec).await?;
                info!(application_name = %spec.name, application_id = %id, release = %spec.release_label, "created application");
                Resolved { id, architecture: spec.settings.architecture.unwrap_or(DEFAULT_ARCHITECTURE) }
            }
        };
        let id = resolved.id.clone();
        self.cache.lock().expect("cache lock").insert(spec.name.clone(), resolved);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::application::ApplicationSummary;
    use async_trait::async_trait;

    /// An in-memory EMR that counts the calls the resolver makes.
    #[derive(Default)]
    struct FakeEmr {
        existing: Option<ApplicationSummary>,
        calls: Mutex<Vec<&'static str>>,
    }

    impl FakeEmr {
        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
        fn note(&self, call: &'static str) {
            self.calls.lock().unwrap().push(call);
        }
    }

    #[async_trait]
    impl ApplicationCatalog for FakeEmr {
        async fn find_application(&self, _name: &str) -> Result<Option<ApplicationSummary>, AwsError> {
            self.note("find");
            tokio::task::yield_now().await;
            Ok(self.existing.clone())
        }
        async fn create_application(&self, _spec: &ApplicationSpec) -> Result<String, AwsError> {
            self.note("create");
            Ok("app-new".into())
        }
        async fn start_application(&self, _id: &str) -> Result<(), AwsError> {
            self.note("start");
            Ok(())
        }
    }

    fn spec() -> ApplicationSpec {
        ApplicationSpec { name: "modelop".into(), release_label: "emr-7.5.0".into(), idle_timeout_minutes: 15, settings: Default::default() }
    }

    #[tokio::test]
    async fn resolution_by_application_state() {
        let app = |state: &str| Some(ApplicationSummary { id: "app-1".into(), state: state.into(), architecture: Some(Architecture::Arm64) });
        let cases: Vec<(Option<ApplicationSummary>, &str, Vec<&str>)> = vec![
            (None, "app-new", vec!["find", "create"]),
            (app("STARTED"), "app-1", vec!["find"]),
            (app("CREATED"), "app-1", vec!["find"]),
            (app("STOPPED"), "app-1", vec!["find", "start"]),
        ];
        for (existing, expected_id, expected_calls) in cases {
            let emr = FakeEmr { existing: existing.clone(), ..FakeEmr::default() };
            let resolver = ApplicationResolver::default();
            assert_eq!(resolver.resolve(&emr, &spec()).await.unwrap(), expected_id);
            assert_eq!(resolver.resolve(&emr, &spec()).await.unwrap(), expected_id, "second time from the cache");
            assert_eq!(emr.calls(), expected_calls, "{existing:?}");
            let architecture = if existing.is_some() { Architecture::Arm64 } else { DEFAULT_ARCHITECTURE };
            assert_eq!(resolver.architecture("modelop"), Some(architecture), "as found, or as created");
        }
    }

    #[tokio::test]
    async fn concurrent_resolutions_look_up_once_and_forget_refreshes() {
        let emr = FakeEmr::default();
        let resolver = ApplicationResolver::default();
        let spec = spec();
        let results = futures::future::join_all((0..10).map(|_| resolver.resolve(&emr, &spec))).await;
        assert!(results.iter().all(|r| r.as_deref() == Ok("app-new")));
        assert_eq!(emr.calls(), ["find", "create"]);
        resolver.forget("modelop");
        resolver.resolve(&emr, &spec).await.unwrap();
        assert_eq!(emr.calls(), ["find", "create", "find", "create"]);
    }
}
