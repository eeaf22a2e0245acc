//! The provisioning engine behind `scimd sync`: it reads identities from a source (files,
//! a SCIM server, a scimd tenant), maps and scopes them, matches them to target objects,
//! plans what to do and applies exactly that plan, keeping an ownership ledger so it never
//! touches what it did not create or adopt (docs/sync.md).
//!
//! | module | job |
//! |---|---|
//! | `job` | the TOML job definition and its defaults |
//! | `expr` | the mapping expression language |
//! | `path` | target attribute paths: read, write, coerce |
//! | `mapping` | attribute mappings and the default ones |
//! | `scope` | assignment and scoping filters |
//! | `source` | CSV/JSON files, SCIM servers, scimd tenants |
//! | `export` | the per-object log as JSON and CSV |

pub mod apply;
pub mod engine;
pub mod error;
pub mod export;
pub mod expr;
pub mod generate;
pub mod job;
pub mod mapping;
pub mod notify;
pub mod path;
pub mod plan;
pub mod schedule;
pub mod scope;
pub mod source;
pub mod target;

pub use engine::Engine;
pub use error::{SyncError, SyncResult};
pub use job::JobSpec;
/// The instance key that seals stored target tokens (scim-core's, shared with webhooks).
pub use scim_core::SealingKey as SyncKey;
