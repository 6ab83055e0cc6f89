//! The bridge's adapters, one per counterpart, implementing [`crate::bridge::ports`]:
//! model-manage over HTTP ([`client`]) with an OAuth2 client-credentials token ([`token`]), the
//! client secret from Secrets Manager ([`secret`]), and the jobs table as the bridge writes it
//! ([`table`]). The rules they serve are in [`crate::bridge`].

pub mod client;
pub mod secret;
pub mod table;
pub mod token;

/// The `service` of every [`crate::error::AwsError`] model-manage or its token endpoint answers.
pub const SERVICE: &str = "model-manage";
