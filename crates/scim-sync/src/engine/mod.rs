//! The engine's facade, what the CLI, the scheduler and the Apps service call: jobs
//! (import, credentials), plan and run a cycle, test connection and source, provision on
//! demand, the mapping preview, status, and the operator's actions. `plan` and `run` share
//! one code path ([`Engine::prepare`]); `run` applies the plan `prepare` made.
//!
//! | module | job |
//! |---|---|
//! | here | `Engine`: the store, the instance key, the clock, the lease |
//! | `jobs` | resolving, importing and storing jobs; their credentials; the target client; the source |
//! | `prepare` | one cycle's inputs: the source read, the ledger, the target matcher, the plan |
//! | `cycle` | one cycle: the probe, apply, the job's state, quarantine, the target's Retry-After |
//! | `quarantine` | when a cycle's outcome quarantines the job (pure) |
//! | `check` | test connection, test source, the mapping preview, provision on demand |
//! | `admin` | pause, restart, reauthorize, staged deletes, turn on/off |
//! | `status` | the job's status and phase, from one read snapshot |

mod admin;
mod check;
mod cycle;
mod jobs;
mod on_demand;
mod prepare;
pub mod quarantine;
mod sample;
mod status;

pub use check::{Check, UserPreview};
pub use cycle::{CycleReport, QuarantineChange};
pub use on_demand::{CANDIDATES, Candidate, OnDemand};
pub use prepare::Prepared;
pub use sample::{ColumnUse, column_uses};
pub use status::{CycleView, JobPhase, JobStatus, LedgerCount, QuarantineView, TimerView};

use crate::SyncKey;
use crate::model::{Clock, system_clock};
use scim_core::{Store, Timestamp};
use std::sync::Arc;

/// How long a node holds a job's lease without renewing it, by default.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    /// Seals inline credentials; without it, jobs must name them by variable or file.
    key: Option<SyncKey>,
    /// How long the provisioning log keeps events (a tenant source's full-read trigger).
    log_retention: time::Duration,
    clock: Clock,
    /// How long a node holds a job's lease without renewing it (renewed every sixth of
    /// it while a cycle runs); a dead node's job is taken over after this long.
    lease: std::time::Duration,
    /// Where the target, SCIM and LDAP sources and notices may be (docs/security.md).
    outbound: scim_net::Policy,
}

/// What `restart --scope` clears (Entra's restart options, engine-behaviour §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartScope {
    /// The source position: the next cycle reads the whole source.
    Watermark,
    /// Every object's escrow: failing objects are retried at once.
    Escrows,
    /// The quarantine.
    Quarantine,
    /// The links to target objects: the next cycle is an initial one that matches the
    /// target again (nothing is deleted; linked objects are found and adopted).
    Links,
    /// All of the above.
    Full,
}

impl RestartScope {
    pub fn parse(s: &str) -> crate::SyncResult<Self> {
        Ok(match s {
            "watermark" => Self::Watermark,
            "escrows" => Self::Escrows,
            "quarantine" => Self::Quarantine,
            "links" => Self::Links,
            "full" => Self::Full,
            other => {
                return Err(crate::SyncError::Job(format!(
                    "unknown restart scope '{other}': use watermark, escrows, quarantine, links or full"
                )));
            }
        })
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, key: Option<SyncKey>, log_retention: time::Duration) -> Self {
        Self {
            store,
            key,
            log_retention,
            clock: system_clock(),
            lease: LEASE,
            outbound: scim_net::Policy::default(),
        }
    }

    /// The same engine connecting under `policy`.
    pub fn with_outbound(mut self, policy: scim_net::Policy) -> Self {
        self.outbound = policy;
        self
    }

    pub fn outbound(&self) -> &scim_net::Policy {
        &self.outbound
    }

    /// The same engine reading the time from `clock` (tests move it forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same engine holding job leases this long.
    pub fn with_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The same engine sealing credentials with `key`.
    pub fn with_key(mut self, key: Option<SyncKey>) -> Self {
        self.key = key;
        self
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// Now, by the engine's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    /// The store, for the crate's own runtime (the scheduler, the Apps service).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
