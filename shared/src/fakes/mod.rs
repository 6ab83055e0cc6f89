//! In-memory fakes of the ports, for the handlers' unit tests: a jobs table of JSON rows that
//! honours the DynamoDB adapter's conditions, a bucket map, an EMR Serverless and a log reader
//! (and `metrics`, the metric entries a test emits). Each records its calls (name and key
//! arguments) and fails the next call of an operation on demand (`fail_next`), so a test asserts
//! what happened and what did not.

pub mod emr;
pub mod job_table;
pub mod logs;
pub mod metrics;
pub mod object_store;
pub mod recorder;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::config::Settings;

use emr::FakeEmr;
use job_table::FakeJobTable;
use logs::FakeLogs;
use object_store::FakeObjectStore;

/// Settings as the `events/` samples assume them (table `modelop-jobs`, bucket `modelop-staging`,
/// the default prefix, application `modelop-default`), with `overrides` on top.
pub fn settings(overrides: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("JOBS_TABLE", "modelop-jobs"),
        ("STAGING_BUCKET", "modelop-staging"),
        ("EMR_DEFAULT_APP_NAME", "modelop-default"),
        ("EMR_RELEASE_VERSION", "emr-7.5.0"),
        ("EMR_DEFAULT_JOB_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/modelop-default-job"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load(|name| env.get(name).cloned(), |path| Err(std::io::Error::other(format!("no file {path} in tests")))).expect("test settings")
}

/// A row as the table holds it, from a stream record's DynamoDB-JSON image.
pub fn row_from_image(image: &Value) -> Value {
    let item: serde_dynamo::Item = serde_json::from_value(image.clone()).expect("a DynamoDB-JSON image");
    serde_dynamo::from_item(item).expect("an image readable as JSON")
}

/// One fake of each port, shared by the handler under test and the test's assertions (clones share
/// the same fakes).
#[derive(Default, Clone)]
pub struct FakeAws {
    pub jobs: Arc<FakeJobTable>,
    pub objects: Arc<FakeObjectStore>,
    pub emr: Arc<FakeEmr>,
    pub logs: Arc<FakeLogs>,
}
