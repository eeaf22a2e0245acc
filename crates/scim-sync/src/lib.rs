//! The provisioning engine behind `scimd sync`: it reads identities from a source (files,
//! a SCIM server, a scimd tenant, LDAP), maps and scopes them, matches them to target
//! objects, plans what to do and applies exactly that plan, keeping an ownership ledger so it
//! never touches what it did not create or adopt (docs/sync.md).
//!
//! Layers, each importing only from the ones below it:
//!
//! | module | job |
//! |---|---|
//! | `apps` | the Apps service the console and the CLI share: create, turn on/off, run now, upload, delete, typed views |
//! | `confine` | what an app made in the console may name on this server: files in the source directory, typed credentials |
//! | `runtime` | running jobs unattended: `schedule` (due jobs under leases), `notify` (e-mail, signed webhooks) |
//! | `engine` | the facade: import, plan, run a cycle, test, provision on demand, status, admin |
//! | `apply` | executes a plan, records ledger and log per object |
//! | `plan` | the planner over pure rules: scoping, matching, diff, deprovisioning, breaker |
//! | `target` | finding target objects: one paged read or filter lookups |
//! | `source` | the source kinds as components: each its keys, checks and `build()` |
//! | `mapping` | compiled mappings, the default ones, evaluation |
//! | `due` | when a job's next cycle is due (pure) |
//! | `job` | the TOML job definition, read and checked once |
//! | `scope`, `expr`, `path` | scoping operators, the expression language, target attribute paths |
//! | `model`, `secret`, `duration`, `error` | object kinds and keys, credentials, durations, the error type |
//! | `export`, `generate` | the log as JSON/CSV; synthetic directories for tests and benchmarks |

pub mod apply;
pub mod apps;
pub mod confine;
pub mod due;
pub mod duration;
pub mod engine;
pub mod error;
pub mod export;
pub mod expr;
pub mod generate;
pub mod job;
pub mod mapping;
pub mod model;
pub mod path;
pub mod plan;
pub mod runtime;
pub mod scope;
pub mod secret;
pub mod source;
pub mod target;

pub use apps::Apps;
pub use engine::Engine;
pub use error::{SyncError, SyncResult};
pub use job::JobSpec;
/// The instance key that seals stored target tokens (scim-core's, shared with webhooks).
pub use scim_core::SealingKey as SyncKey;
