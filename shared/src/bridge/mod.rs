//! The bridge to ModelOp Center's model-manage, as rules without I/O: which model-manage jobs are
//! this runtime's and the row each becomes ([`job_mapping`]), how one is claimed and whose claim a
//! WAITING job holds ([`claim`]), what is written back from a row ([`write_back`]), model-manage's
//! HAL pages and finders ([`hal`]), and the ports the bridge needs ([`ports`]). The HTTP, OAuth2,
//! Secrets Manager and table adapters are in [`crate::model_manage`].
//!
//! What is public about model-manage and what is assumed: `shared/CONTRACT.md`, "The model-manage side".

pub mod claim;
pub mod hal;
pub mod job_mapping;
pub mod ports;
pub mod write_back;
