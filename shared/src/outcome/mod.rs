//! Monitor's rules (ModelOp's SparkServerlessJobMonitor), pure: what EMR's [`job_run`] states mean
//! for the job, what the monitor reads from and writes to the row ([`monitored_job`]), how a run
//! ended ([`run_outcome`]: attempts, provenance, timeouts), why it failed ([`failure`]) and what it
//! cost ([`cost`]).

pub mod cost;
pub mod failure;
pub mod job_run;
pub mod monitored_job;
pub mod run_outcome;
