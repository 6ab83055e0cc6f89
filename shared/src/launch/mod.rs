//! Submit's rules (ModelOp's PySparkPreprocessorService and SparkServerlessJobLauncher), pure:
//! how a job becomes a [`plan`] and a [`manifest`] with its [`staged_files`], its Spark conf
//! ([`spark_conf`]), [`run_controls`] and least-privilege session policy ([`job_policy`]); which
//! [`staging_folder`] it gets and when that is released; the [`application`] it runs on; and the
//! [`lease`] that lets exactly one invocation launch it.

pub mod application;
pub mod application_resolver;
pub mod job_policy;
pub mod lease;
pub mod manifest;
pub mod plan;
pub mod policy_document;
pub mod run_controls;
pub mod spark_conf;
pub mod staged_files;
pub mod staging_folder;
