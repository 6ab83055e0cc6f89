//! The common crate of the ModelOp Spark serverless runtime, in the order a job goes through it:
//!
//! - [`job`]: the job record contract, what ModelOp Center writes and this service writes back;
//! - [`bridge`]: how jobs get from ModelOp Center's model-manage into the table and their progress
//!   back (which jobs, the claim, the write-back), with its adapters in [`model_manage`] (HTTP and
//!   OAuth2, the secret, the table);
//! - [`launch`]: submit's rules, from a job to one EMR Serverless job run (the manifest, its Spark
//!   conf, run controls and session policy, the staging folder, the application, the lease);
//! - [`outcome`]: monitor's rules, from EMR's job run to the job's end (states, attempts, the
//!   failure's class, what the run cost);
//! - [`aws`]: one adapter per AWS service, implementing the [`ports`].
//!
//! At the root, what every stage shares: configuration, the error model, the ports, metrics,
//! stream batches, text bounds and process settings (and, for tests, in-memory fakes of the ports).

pub mod aws;
pub mod bridge;
pub mod config;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod job;
pub mod launch;
pub mod metrics;
pub mod model_manage;
pub mod outcome;
pub mod ports;
pub mod process;
pub mod stream;
pub mod text;
