//! `[target]`: the SCIM app the job provisions, and how hard it may be pushed.

use super::policy::Dur;
use crate::secret::SecretRef;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the engine writes to the target.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpdateMethod {
    /// PATCH when the target's ServiceProviderConfig offers it, else PUT.
    #[default]
    Auto,
    Patch,
    Put,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub url: String,
    /// Inline token: stored sealed by `job import`, never exported.
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub update: UpdateMethod,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Members per membership PATCH (default 100, AWS's limit, engine-behaviour §8.6).
    #[serde(default = "default_members_per_request")]
    pub members_per_request: usize,
    /// Provision groups at all (default true when the target has /Groups).
    #[serde(default = "yes")]
    pub groups: bool,
    /// Requests per second to this target (default 25, Entra's documented pace per
    /// tenant); 0 = unpaced.
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
    /// How long one request may take before it is retried (default 30s).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Tries per request for 408/429/5xx/transport failures (default 4).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// User creates per Bulk request when the target offers Bulk (RFC 7644 §3.7), capped
    /// by its `maxOperations` (default 100; 0 = never use Bulk).
    #[serde(default = "default_bulk")]
    pub bulk: usize,
}

impl TargetSpec {
    /// The target's bearer token.
    pub fn token_ref(&self) -> SecretRef<'_> {
        SecretRef {
            key: "target.token",
            inline: self.token.as_deref(),
            env: self.token_env.as_deref(),
            file: self.token_file.as_deref(),
        }
    }
}

fn default_bulk() -> usize {
    100
}

fn default_rate() -> u32 {
    25
}

fn default_timeout() -> Dur {
    Dur::known("30s", time::Duration::seconds(30))
}

fn default_attempts() -> u32 {
    4
}

fn default_in_flight() -> usize {
    4
}

fn default_members_per_request() -> usize {
    100
}

fn yes() -> bool {
    true
}
