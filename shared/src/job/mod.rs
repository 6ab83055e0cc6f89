//! The job record contract: what ModelOp Center writes into the jobs table and what this service
//! writes back (`shared/CONTRACT.md` is its prose), and the parts of a job read the same way by
//! every function: the model's annotated entry points and the S3 locations its assets name.

pub mod annotations;
pub mod item_size;
pub mod record;
pub mod s3_uri;
