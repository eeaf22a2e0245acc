//! Numbering the change feed after commit, on PostgreSQL (docs/events.md, "Ordering").
//!
//! A change's transaction writes its provisioning-log row unsequenced; [`ChangeSequencer`]
//! numbers committed rows in batches, one numbering transaction per tenant at a time
//! ([`events::sequence_pending`] has the ordering argument). So concurrent changes to one
//! tenant commit in parallel (their WAL flushes are grouped by PostgreSQL), and only the
//! short numbering transaction is serial.
//!
//! When numbering happens:
//! - after every change, in the background ([`ChangeSequencer::kick`]): the feed follows the
//!   writes within a few milliseconds;
//! - before every read of the feed ([`ChangeSequencer::settle`]): a reader always sees every
//!   change acknowledged before it asked, on any node, even when the node that made the
//!   change died between its commit and its numbering.
//!
//! Waiting callers are coalesced per tenant: one run numbers everything committed before it
//! started, and a caller only waits for a run that started after it arrived.

use crate::StoreError;
use crate::conn::Conn;
use crate::events::{SEQUENCE_BATCH, has_unsequenced, sequence_pending};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(crate) struct ChangeSequencer {
    pool: sqlx::PgPool,
    tenants: Arc<Mutex<HashMap<i64, Arc<TenantTurn>>>>,
}

/// One tenant's numbering runs on this node, one at a time.
#[derive(Default)]
struct TenantTurn {
    running: tokio::sync::Mutex<()>,
    /// Runs started so far; a run's ticket is the count before it started.
    started: AtomicU64,
    /// One past the ticket of the last run that finished without error.
    finished: AtomicU64,
    /// A background run is scheduled and has not read its starting point yet: a change
    /// committed now is covered by it.
    kicked: AtomicBool,
}

/// How long a background run waits for more commits to number together: under a steady
/// write load, one numbering transaction per this period instead of one after another.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

impl ChangeSequencer {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            tenants: Arc::default(),
        }
    }

    fn turn(&self, tenant_id: i64) -> Arc<TenantTurn> {
        let mut map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(tenant_id).or_default().clone()
    }

    /// Numbers the tenant's committed changes in the background (after a change commits).
    pub fn kick(&self, tenant_id: i64) {
        let turn = self.turn(tenant_id);
        if turn.kicked.swap(true, Ordering::SeqCst) {
            return; // the scheduled run has not started: it will see this commit
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GATHER).await;
            // Cleared before the run reads its starting point, so a commit after this
            // schedules a run of its own.
            turn.kicked.store(false, Ordering::SeqCst);
            if let Err(e) = this.settle(tenant_id).await {
                // The rows stay unsequenced until the next change or read numbers them.
                tracing::warn!(tenant_id, error = %e, "numbering the change feed failed");
            }
        });
    }

    /// Returns once every change of the tenant committed before this call is numbered.
    pub async fn settle(&self, tenant_id: i64) -> Result<(), StoreError> {
        let turn = self.turn(tenant_id);
        // Any run whose ticket is at least this one starts after this point, so it sees
        // every change committed before the call.
        let since = turn.started.load(Ordering::SeqCst);
        let _running = turn.running.lock().await;
        if turn.finished.load(Ordering::SeqCst) > since {
            return Ok(());
        }
        let ticket = turn.started.fetch_add(1, Ordering::SeqCst);
        self.run(tenant_id).await?;
        turn.finished.store(ticket + 1, Ordering::SeqCst);
        Ok(())
    }

    /// Numbers every unsequenced change of the tenant that is committed now.
    async fn run(&self, tenant_id: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if !has_unsequenced(&mut Conn::Pg(&mut conn), tenant_id).await? {
            return Ok(());
        }
        loop {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let n = sequence_pending(&mut Conn::Pg(&mut tx), tenant_id).await?;
            tx.commit().await?;
            if n < SEQUENCE_BATCH {
                return Ok(());
            }
        }
    }
}
