//! Periodic upkeep: deleting provisioning-log events past the retention and expired console
//! sessions. `scimd serve` runs [`Maintenance::run`]; `scimd sweep-log` runs one
//! [`Maintenance::sweep_log`]. With several nodes on one database one of them sweeps: the
//! holder of the `log-sweeper` lease.

use crate::Store;
use crate::clock::Timestamp;
use crate::error::CoreResult;
use std::sync::Arc;
use time::Duration;

/// Events deleted per statement, so a sweep never holds a long lock.
const SWEEP_BATCH: u32 = 5_000;
/// How often the sweeper wakes; its lease outlives one period so it stays with one node.
const PERIOD: Duration = Duration::minutes(10);
const LEASE: Duration = Duration::minutes(11);

#[derive(Clone)]
pub struct Maintenance {
    events: Arc<dyn crate::store::EventStore>,
    sessions: Arc<dyn crate::store::SessionStore>,
    deliveries: Arc<dyn crate::store::WebhookStore>,
    sync: Arc<dyn crate::sync::SyncStore>,
    leases: Arc<dyn crate::store::LeaseStore>,
    tokens: Arc<dyn crate::store::TokenStore>,
    audit: Arc<dyn crate::store::AuditStore>,
    /// How long the provisioning log keeps events.
    pub retention: Duration,
}

impl Maintenance {
    pub fn new(store: Arc<dyn Store>, retention: Duration) -> Self {
        Self {
            events: store.clone(),
            sessions: store.clone(),
            deliveries: store.clone(),
            sync: store.clone(),
            tokens: store.clone(),
            audit: store.clone(),
            leases: store,
            retention,
        }
    }

    /// Deletes every event (of the provisioning log — the change feed with it —, of the
    /// engine's per-object log, webhook delivery attempts and the audit log) and the refused-credential
    /// counts older than the retention, in batches; returns how many.
    pub async fn sweep_log(&self) -> CoreResult<u64> {
        let before = Timestamp::now() - self.retention;
        let mut total = 0;
        loop {
            let n = self.events.sweep_events(before, SWEEP_BATCH).await?
                + self.sync.sweep_sync_log(before, SWEEP_BATCH).await?
                + self
                    .deliveries
                    .sweep_deliveries(before, SWEEP_BATCH)
                    .await?
                + self.audit.sweep_audit(before, SWEEP_BATCH).await?;
            total += n;
            if n < u64::from(SWEEP_BATCH) {
                // Refused-credential counts: one row per tenant, hour and reason.
                return Ok(total + self.tokens.sweep_refused(before).await?);
            }
            tokio::task::yield_now().await;
        }
    }

    /// One round: take or keep the lease, then sweep sessions and the log.
    pub async fn round(&self, node: &str) -> CoreResult<bool> {
        let now = Timestamp::now();
        if !self
            .leases
            .try_lease("log-sweeper", node, now, now + LEASE)
            .await?
        {
            return Ok(false);
        }
        tracing::info!(node = %node, "provisioning log sweeper: this node holds the lease");
        let sessions = self.sessions.sweep_sessions(now).await?;
        if sessions > 0 {
            tracing::info!(deleted = sessions, "expired console sessions removed");
        }
        let events = self.sweep_log().await?;
        if events > 0 {
            tracing::info!(deleted = events, "provisioning log sweep");
        }
        Ok(true)
    }

    /// Runs a round every ten minutes, forever (abort the task to stop it).
    pub async fn run(self) {
        let node = uuid::Uuid::new_v4().to_string();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(
            u64::try_from(PERIOD.whole_seconds()).unwrap_or(600),
        ));
        loop {
            tick.tick().await;
            if let Err(e) = self.round(&node).await {
                tracing::warn!(error = %e, "maintenance round failed");
            }
        }
    }
}
