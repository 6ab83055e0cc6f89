//! Prints the least-privilege session policy each job would run with, as the submit function
//! builds it: a JSON array of jobs (as ModelOp Center writes them to the table) on stdin, the
//! configuration from the environment (the submit function's variables), and on stdout a JSON
//! array of `{"jobId", "policy", "policyArns", "narrowingSteps"}`, `{"jobId", "unscoped": true}`
//! or `{"jobId", "error"}`. A primary source given by `fileUrl` is not read: it is taken to define
//! every function a job calls (the policy does not depend on it).
//!
//! `tests/emulator/test_session_policy.py` runs it (parliament and the allow/deny matrix):
//! `cargo run -q -p shared --example job_policies < jobs.json`.

use std::io::Read as _;

use serde_json::{json, Value};
use shared::job::annotations::parse_model_functions;
use shared::config::Settings;
use shared::job::record::Job;
use shared::launch::manifest::build_manifest;
use shared::launch::plan::{plan_job, SourceLocation};
use shared::launch::staged_files::FileContent;

/// Stands in for a source in S3: defines the function of every role.
const ANY_SOURCE: &str = "# modelop.init\ndef init():\n    pass\n\n# modelop.score\ndef score(i, o, m):\n    pass\n\n\
# modelop.metrics\ndef metrics(i, o, m):\n    pass\n\n# modelop.train\ndef train(i, o, m):\n    pass\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let (service, submit) = (settings.service()?, settings.submit()?);
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let jobs: Vec<Value> = serde_json::from_str(&input)?;
    let mut out = Vec::new();
    for raw in jobs {
        let id = raw["id"].as_str().unwrap_or_default().to_string();
        let built = serde_json::from_value::<Job>(raw).map_err(|e| e.to_string()).and_then(|job| {
            let mut plan = plan_job(&job, &service, &submit).map_err(|e| e.to_string())?;
            let (text, content) = match plan.take_primary() {
                SourceLocation::Inline(text) => (text.clone(), FileContent::Text(text.into())),
                SourceLocation::S3(uri) => (ANY_SOURCE.to_string(), FileContent::CopyFrom(uri)),
            };
            build_manifest(&plan, &parse_model_functions(&text), content).map_err(|e| e.to_string())
        });
        out.push(match built {
            Ok(manifest) => match manifest.execution_iam_policy {
                Some(p) => json!({"jobId": id, "policy": p.policy, "policyArns": p.policy_arns, "narrowingSteps": p.narrowing_steps}),
                None => json!({"jobId": id, "unscoped": true}),
            },
            Err(error) => json!({"jobId": id, "error": error}),
        });
    }
    println!("{}", Value::Array(out));
    Ok(())
}
