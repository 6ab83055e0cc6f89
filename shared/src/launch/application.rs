//! The EMR Serverless application a job runs on, as data: how this service creates one
//! ([`ApplicationSpec`]) and what a lookup by name finds ([`ApplicationSummary`]). The ports carry
//! these; [`crate::launch::application_resolver`] decides with them.

use crate::launch::run_controls::Architecture;

/// CreateApplication's `architecture` when none is sent ("X86_64" is the default, EMR Serverless
/// API Reference, CreateApplication).
pub const DEFAULT_ARCHITECTURE: Architecture = Architecture::X86_64;

/// An application as found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationSummary {
    pub id: String,
    pub state: String,
    /// ListApplications' `architecture`, when it gives one.
    pub architecture: Option<Architecture>,
}

/// How this service creates an application it does not find. An application found by name is
/// used as it is: none of this is applied to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationSpec {
    pub name: String,
    pub release_label: String,
    pub idle_timeout_minutes: u32,
    /// Scheduler, maximum capacity, architecture and network, each sent only when configured.
    pub settings: crate::launch::run_controls::ApplicationSettings,
}
