//! Running jobs unattended inside `scimd serve` (docs/sync.md §7).
//!
//! Every few seconds the scheduler looks at the enabled jobs and starts the ones that are
//! due: a job that never completed its initial cycle, a cycle that was interrupted (a
//! pause lifted, a node that died), the interval since the last cycle gone by (24 hours
//! while quarantined), or — for a scimd-tenant source — a change the tenant has been quiet
//! about for the debounce time. A cycle runs only under the job's lease in the shared
//! database, so with several nodes on one PostgreSQL each job runs on one node at a time;
//! the lease is renewed while the cycle runs, and a node that dies stops renewing it, so
//! another node takes the job over once it expires and the cycle resumes from the ledger.
//! While it runs, the lease keeper also re-reads the job: a pause, a turn-off or a delete
//! stops the cycle after the objects in flight.

use super::notify::{Notice, Notifier};
use crate::apply::{HALT_LEASE_LOST, Halt};
use crate::engine::{CycleReport, Engine, QuarantineChange};
use crate::error::SyncResult;
use crate::job::JobSpec;
use scim_core::event::EventQuery;
use scim_core::{LeaseFence, Status, SyncJobRecord, SyncLogQuery, Timestamp};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use time::Duration;

fn lease_name(job: &str) -> String {
    format!("sync-job:{job}")
}

/// Who holds a job's lease and until when (a run that died keeps it until then).
pub async fn lease_holder(
    engine: &Engine,
    job: &str,
) -> SyncResult<Option<scim_core::store::LeaseHolder>> {
    Ok(engine.store().lease(&lease_name(job)).await?)
}

/// For a scimd-tenant source: whether changes are waiting and the tenant has been quiet
/// for the debounce time (or the oldest change has waited six times that long).
async fn change_waiting(
    engine: &Engine,
    spec: &JobSpec,
    record: &SyncJobRecord,
    now: Timestamp,
) -> SyncResult<bool> {
    let (Some(debounce), Some(tenant)) = (spec.debounce(), spec.source.tenant()) else {
        return Ok(false);
    };
    if record.state.quarantine.is_some() {
        return Ok(false);
    }
    // The tenant source's watermark is a position in the tenant's change feed.
    let Some(seq) = crate::source::tenant_position(record.state.watermark.as_ref()) else {
        return Ok(false);
    };
    let store = engine.store();
    let Some(t) = store.tenant(tenant).await? else {
        return Ok(false);
    };
    if store.change_bounds(t.id).await?.head <= seq {
        return Ok(false);
    }
    // Quiet for the debounce since the newest log row, or the oldest unread change waited
    // six debounces: run.
    let newest = store
        .events(
            t.id,
            &EventQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    if newest.first().is_some_and(|e| now - e.at >= debounce) {
        return Ok(true);
    }
    let oldest = store.changes(t.id, seq, 1).await?;
    Ok(oldest.first().is_some_and(|e| now - e.at >= debounce * 6))
}

/// Runs one cycle of a job under its lease, renewing it and watching the stored job for a
/// pause while the cycle runs. `Ok(None)` if another node holds the lease. A job not
/// stored yet (a file run from the CLI) is stored first.
pub async fn run_leased(
    engine: &Engine,
    spec: &JobSpec,
    node: &str,
    halt: Arc<Halt>,
) -> SyncResult<Option<CycleReport>> {
    let name = spec.name.as_str();
    let store = engine.store();
    if store.job(name).await?.is_none() {
        engine.import(spec).await?;
    }
    let lease = Duration::try_from(engine.lease()).unwrap_or(Duration::minutes(1));
    // The holder names this run, not only the node: a run that lost the lease stays fenced
    // out even when its node later takes the lease again for a new run.
    let holder = format!("{node} run {}", uuid::Uuid::new_v4());
    let now = Timestamp::now();
    if !store
        .try_lease(&lease_name(name), &holder, now, now + lease)
        .await?
    {
        return Ok(None);
    }
    halt.fence_by(LeaseFence {
        lease: lease_name(name),
        holder: holder.clone(),
    });
    let record = engine.stored(name).await?;
    // A turn-off or pause while the cycle runs stops it; a job already off or paused is
    // run when asked by name (`scimd sync run`), which the scheduler never does.
    let was_enabled = record.enabled;
    let was_paused = record.state.paused;
    let keeper = {
        let (engine, name, holder, halt) = (
            engine.clone(),
            name.to_string(),
            holder.clone(),
            halt.clone(),
        );
        tokio::spawn(async move {
            let store = engine.store();
            loop {
                tokio::time::sleep(engine.lease() / 6).await;
                let now = Timestamp::now();
                match store
                    .try_lease(&lease_name(&name), &holder, now, now + lease)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => halt.stop(HALT_LEASE_LOST),
                    Err(e) => tracing::warn!(job = %name, error = %e, "cannot renew the job lease"),
                }
                match store.job(&name).await {
                    Ok(None) => halt.stop("the job was deleted"),
                    Ok(Some(r)) if was_enabled && !r.enabled => {
                        halt.stop("the job was turned off");
                    }
                    Ok(Some(r)) if !was_paused && r.state.paused => halt.stop("paused"),
                    _ => {}
                }
            }
        })
    };
    let result = engine.run_with(spec, Some(&record), halt).await;
    keeper.abort();
    // Released by expiring it now: the next cycle may run anywhere.
    let now = Timestamp::now();
    if let Err(e) = store.try_lease(&lease_name(name), &holder, now, now).await {
        tracing::warn!(job = %name, error = %e, "cannot release the job lease");
    }
    result.map(Some)
}

/// The scheduler of one `scimd serve` node.
pub struct Scheduler {
    pub engine: Engine,
    /// This node's name in the leases (unique per process).
    pub node: String,
    /// How often due jobs are looked for.
    pub tick: std::time::Duration,
    pub notifier: Option<Arc<dyn Notifier>>,
}

impl Scheduler {
    /// Runs until the process ends; jobs run concurrently, each at most once at a time.
    pub async fn run(self: Arc<Self>) {
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.start_due(&running).await {
                tracing::warn!(error = %e, "sync scheduler: cannot read the jobs");
            }
        }
    }

    async fn start_due(self: &Arc<Self>, running: &Arc<Mutex<HashSet<String>>>) -> SyncResult<()> {
        let now = self.engine.now();
        for record in self.engine.jobs().await? {
            if running
                .lock()
                .map(|r| r.contains(&record.name))
                .unwrap_or(true)
            {
                continue;
            }
            let spec = match JobSpec::parse(&record.spec, None) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(job = %record.name, error = %e, "stored job does not parse");
                    continue;
                }
            };
            let Some(due) = crate::due::next_run(&spec, record.enabled, &record.state, now) else {
                continue;
            };
            let trigger = if due <= now {
                "schedule"
            } else if change_waiting(&self.engine, &spec, &record, now).await? {
                "change"
            } else {
                continue;
            };
            if let Ok(mut r) = running.lock() {
                r.insert(record.name.clone());
            }
            let (me, running, name) = (self.clone(), running.clone(), record.name.clone());
            tokio::spawn(async move {
                me.run_now(&name, trigger).await;
                if let Ok(mut r) = running.lock() {
                    r.remove(&name);
                }
            });
        }
        Ok(())
    }

    /// Runs one cycle of a stored job now (under its lease) and sends its notices; what
    /// the scheduler does when a job is due. `None` if the job is gone, another node holds
    /// it, or the cycle could not run (logged).
    pub async fn run_now(&self, name: &str, trigger: &str) -> Option<CycleReport> {
        let before = self.quarantine_of(name).await;
        let spec = match self.engine.stored(name).await {
            Ok(r) => JobSpec::parse(&r.spec, None),
            Err(_) => return None,
        };
        let result = match spec {
            Ok(spec) => run_leased(&self.engine, &spec, &self.node, Arc::default()).await,
            Err(e) => Err(e),
        };
        let mut notices = match &result {
            Ok(None) => return None,
            Ok(Some(report)) => {
                tracing::info!(
                    job = name, trigger, cycle = %report.cycle_id, status = report.status.as_str(),
                    requests = report.counts.requests, "sync cycle finished"
                );
                let mut n = Notice::of_report(report);
                n.extend(self.digest(name, report).await);
                n
            }
            Err(e) => {
                tracing::warn!(job = name, trigger, error = %e, "sync cycle failed");
                Vec::new()
            }
        };
        let after = self.quarantine_of(name).await;
        match (&before, &after) {
            (None, Some(q)) | (Some(_), Some(q)) if before.as_ref() != Some(q) => {
                notices.insert(0, Notice::Quarantine(q.clone()));
            }
            (Some(q), None) => notices.insert(
                0,
                Notice::Quarantine(QuarantineChange {
                    entered: false,
                    reason: q.reason,
                    detail: "a cycle completed: quarantine lifted".into(),
                }),
            ),
            _ => {}
        }
        self.send(name, notices).await;
        result.ok().flatten()
    }

    async fn quarantine_of(&self, name: &str) -> Option<QuarantineChange> {
        let q = self.engine.stored(name).await.ok()?.state.quarantine?;
        Some(QuarantineChange {
            entered: true,
            reason: q.reason,
            detail: q.detail,
        })
    }

    /// The failure digest of a cycle, if it had failures and the job wants one.
    async fn digest(&self, name: &str, report: &CycleReport) -> Option<Notice> {
        let count = report.counts.failures();
        if count == 0 {
            return None;
        }
        let q = SyncLogQuery {
            cycle_id: Some(report.cycle_id.clone()),
            status: Some(Status::Failure),
            limit: super::notify::DIGEST_LINES as u32,
            ..Default::default()
        };
        let rows = self.engine.log(name, &q).await.ok()?;
        Some(Notice::Failures {
            cycle_id: report.cycle_id.clone(),
            count,
            lines: rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {} ({}): {}: {}",
                        r.kind.as_str(),
                        r.display,
                        r.source_id,
                        r.error_code.map_or("Failure", |c| c.as_str()),
                        r.detail()
                    )
                })
                .collect(),
        })
    }

    async fn send(&self, name: &str, notices: Vec<Notice>) {
        let Some(n) = &self.notifier else { return };
        if notices.is_empty() {
            return;
        }
        let Ok(record) = self.engine.stored(name).await else {
            return;
        };
        let Ok(spec) = JobSpec::parse(&record.spec, None) else {
            return;
        };
        for notice in notices {
            if matches!(notice, Notice::Failures { .. }) && !spec.notify.failure_digest {
                continue;
            }
            if let Err(e) = n.notify(&spec, &notice).await {
                tracing::warn!(job = name, error = %e, "notification not sent");
            }
        }
    }
}
