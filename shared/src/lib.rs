//! The common crate of the ModelOp Spark serverless runtime: the job record contract, the
//! translation of a job into a PySpark job manifest, configuration, and the AWS adapters the
//! submit, monitor and cleanup functions share.

pub mod annotations;
pub mod application;
pub mod aws;
pub mod config;
pub mod cost;
pub mod error;
pub mod failure;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod job;
pub mod job_policy;
pub mod lease;
pub mod manifest;
pub mod metrics;
pub mod job_run;
pub mod ports;
pub mod process;
pub mod run_controls;
pub mod run_outcome;
pub mod s3_uri;
pub mod spark_conf;
pub mod staging_folder;
pub mod stream;
pub mod text;
