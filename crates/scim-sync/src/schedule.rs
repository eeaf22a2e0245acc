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

use crate::apply::Halt;
use crate::engine::{CycleReport, Engine};
use crate::error::{SyncError, SyncResult};
use crate::job::{JobSpec, SourceKind};
use crate::notify::{Notice, Notifier};
use scim_core::event::EventQuery;
use scim_core::{LeaseFence, SyncJobRecord, Timestamp};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use time::Duration;

/// How long a node holds a job's lease without renewing it, by default.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
/// A cycle that failed outright (source unreadable, target down) is tried again after
/// this long, or the interval if that is shorter.
const RETRY_FAILED: Duration = Duration::minutes(5);

fn lease_name(job: &str) -> String {
    format!("sync-job:{job}")
}

fn micros(v: Option<&Value>, key: &str) -> Option<Timestamp> {
    v?.get(key)?.as_i64().map(Timestamp::from_micros)
}

/// When the job's next cycle is due by its schedule; `None` while off or paused.
pub fn next_run(spec: &JobSpec, record: &SyncJobRecord, now: Timestamp) -> Option<Timestamp> {
    let state = &record.state;
    if !record.enabled || state.get("paused").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let last = state.get("last_cycle");
    let at = micros(last, "at_us");
    // Quarantined: once per quarantine interval, whatever the last cycle did (a cycle
    // stopped by a refused token must not be retried at once).
    if state.get("quarantine").is_some() {
        let every = crate::job::duration(&spec.quarantine.interval, "quarantine.interval")
            .unwrap_or(Duration::hours(24));
        return Some(at.map_or(now, |at| at + every));
    }
    // A cycle that started and never finished (a node died, a pause was lifted): resume.
    if state.get("running").is_some() {
        return Some(now);
    }
    let Some(at) = at else {
        return Some(now);
    };
    let status = last.and_then(|l| l.get("status")).and_then(Value::as_str);
    let interval = spec.interval().unwrap_or(Duration::minutes(40));
    Some(match status {
        Some("stopped") => now,
        Some("failed") => at + interval.min(RETRY_FAILED),
        _ => at + interval,
    })
}

/// For a scimd-tenant source: whether changes are waiting and the tenant has been quiet
/// for the debounce time (or the oldest change has waited six times that long).
async fn change_waiting(
    engine: &Engine,
    spec: &JobSpec,
    record: &SyncJobRecord,
    now: Timestamp,
) -> SyncResult<bool> {
    let (SourceKind::Tenant, Some(debounce), Some(tenant)) = (
        spec.source.kind,
        spec.debounce()?,
        spec.source.tenant.as_deref(),
    ) else {
        return Ok(false);
    };
    if record.state.get("quarantine").is_some() {
        return Ok(false);
    }
    // The tenant source's watermark is a position in the tenant's change feed.
    let Some(seq) = record
        .state
        .get("watermark")
        .and_then(|w| w.get("change_seq"))
        .and_then(Value::as_i64)
    else {
        return Ok(false);
    };
    let Some(t) = engine.store.tenant(tenant).await? else {
        return Ok(false);
    };
    if engine.store.change_bounds(t.id).await?.head <= seq {
        return Ok(false);
    }
    // Quiet for the debounce since the newest log row, or the oldest unread change waited
    // six debounces: run.
    let newest = engine
        .store
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
    let oldest = engine.store.changes(t.id, seq, 1).await?;
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
    if engine.store.job(name).await?.is_none() {
        engine.import(spec).await?;
    }
    let lease = Duration::try_from(engine.lease).unwrap_or(Duration::minutes(1));
    // The holder names this run, not only the node: a run that lost the lease stays fenced
    // out even when its node later takes the lease again for a new run.
    let holder = format!("{node} run {}", uuid::Uuid::new_v4());
    let now = Timestamp::now();
    if !engine
        .store
        .try_lease(&lease_name(name), &holder, now, now + lease)
        .await?
    {
        return Ok(None);
    }
    halt.fence_by(LeaseFence {
        lease: lease_name(name),
        holder: holder.clone(),
    });
    let record = engine
        .store
        .job(name)
        .await?
        .ok_or_else(|| SyncError::NotFound(format!("no stored job named '{name}'")))?;
    // A turn-off or pause while the cycle runs stops it; a job already off or paused is
    // run when asked by name (`scimd sync run`), which the scheduler never does.
    let was_enabled = record.enabled;
    let was_paused = record.state.get("paused").and_then(Value::as_bool) == Some(true);
    let keeper = {
        let (engine, name, holder, halt) = (
            engine.clone(),
            name.to_string(),
            holder.clone(),
            halt.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(engine.lease / 6).await;
                let now = Timestamp::now();
                match engine
                    .store
                    .try_lease(&lease_name(&name), &holder, now, now + lease)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => halt.stop(crate::apply::HALT_LEASE_LOST),
                    Err(e) => tracing::warn!(job = %name, error = %e, "cannot renew the job lease"),
                }
                match engine.store.job(&name).await {
                    Ok(None) => halt.stop("the job was deleted"),
                    Ok(Some(r)) if was_enabled && !r.enabled => {
                        halt.stop("the job was turned off");
                    }
                    Ok(Some(r))
                        if !was_paused
                            && r.state.get("paused").and_then(Value::as_bool) == Some(true) =>
                    {
                        halt.stop("paused");
                    }
                    _ => {}
                }
            }
        })
    };
    let result = engine.run_with(spec, Some(&record), halt).await;
    keeper.abort();
    // Released by expiring it now: the next cycle may run anywhere.
    let now = Timestamp::now();
    if let Err(e) = engine
        .store
        .try_lease(&lease_name(name), &holder, now, now)
        .await
    {
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
        let now = Timestamp::now();
        for record in self.engine.store.jobs().await? {
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
            let Some(due) = next_run(&spec, &record, now) else {
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
        let spec = match self.engine.store.job(name).await {
            Ok(Some(r)) => JobSpec::parse(&r.spec, None),
            _ => return None,
        };
        let result = match spec {
            Ok(spec) => run_leased(&self.engine, &spec, &self.node, Arc::default()).await,
            Err(e) => Err(e),
        };
        let mut notices = match &result {
            Ok(None) => return None,
            Ok(Some(report)) => {
                tracing::info!(
                    job = name, trigger, cycle = %report.cycle_id, status = %report.status,
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
                Notice::Quarantine(crate::engine::QuarantineChange {
                    entered: false,
                    reason: q.reason.clone(),
                    detail: "a cycle completed: quarantine lifted".into(),
                }),
            ),
            _ => {}
        }
        self.send(name, notices).await;
        result.ok().flatten()
    }

    async fn quarantine_of(&self, name: &str) -> Option<crate::engine::QuarantineChange> {
        let r = self.engine.store.job(name).await.ok()??;
        let q = r.state.get("quarantine")?;
        let text = |k: &str| {
            q.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Some(crate::engine::QuarantineChange {
            entered: true,
            reason: text("reason"),
            detail: text("detail"),
        })
    }

    /// The failure digest of a cycle, if it had failures and the job wants one.
    async fn digest(&self, name: &str, report: &CycleReport) -> Option<Notice> {
        let count = report.counts.statuses.get("Failure").copied().unwrap_or(0);
        if count == 0 {
            return None;
        }
        let q = scim_core::SyncLogQuery {
            cycle_id: Some(report.cycle_id.clone()),
            status: Some("Failure".into()),
            limit: crate::notify::DIGEST_LINES as u32,
            ..Default::default()
        };
        let rows = self.engine.log(name, &q).await.ok()?;
        Some(Notice::Failures {
            cycle_id: report.cycle_id.clone(),
            count,
            lines: rows
                .iter()
                .map(|r| {
                    let detail = r
                        .steps
                        .as_array()
                        .and_then(|s| {
                            s.iter().rev().find(|s| {
                                s.get("status").and_then(Value::as_str) == Some("Failure")
                            })
                        })
                        .and_then(|s| s.get("detail"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    format!(
                        "{} {} ({}): {}: {detail}",
                        r.kind,
                        r.display,
                        r.source_id,
                        r.error_code.as_deref().unwrap_or("Failure")
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
        let Ok(Some(record)) = self.engine.store.job(name).await else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(state: Value, enabled: bool) -> (JobSpec, SyncJobRecord) {
        let spec = JobSpec::parse(
            "name = \"j\"\n[source]\nkind = \"tenant\"\ntenant = \"hub\"\n[target]\nurl = \"http://x/scim/v2\"\ntoken_env = \"T\"\n[schedule]\ninterval = \"30m\"\n",
            None,
        )
        .expect("parses");
        let r = SyncJobRecord {
            name: "j".into(),
            spec: spec.to_stored_toml().expect("toml"),
            sealed_secret: None,
            enabled,
            state,
            created_at: Timestamp::from_micros(0),
            updated_at: Timestamp::from_micros(0),
        };
        (spec, r)
    }

    #[test]
    fn schedule_follows_the_state() {
        let now = Timestamp::from_micros(10_000_000_000_000);
        let at = now - Duration::minutes(10);
        let last = |status: &str| json!({"at_us": at.as_micros(), "status": status});
        let cases = [
            (json!({}), true, Some(now)),
            (json!({"last_cycle": last("completed")}), false, None),
            (
                json!({"last_cycle": last("completed"), "paused": true}),
                true,
                None,
            ),
            (
                json!({"last_cycle": last("completed")}),
                true,
                Some(at + Duration::minutes(30)),
            ),
            (
                json!({"last_cycle": last("failed")}),
                true,
                Some(at + Duration::minutes(5)),
            ),
            (json!({"last_cycle": last("stopped")}), true, Some(now)),
            (
                json!({"last_cycle": last("completed"), "running": {}}),
                true,
                Some(now),
            ),
            (
                json!({"last_cycle": last("completed"), "quarantine": {"reason": "failures"}}),
                true,
                Some(at + Duration::hours(24)),
            ),
            (
                json!({"last_cycle": last("stopped"), "quarantine": {"reason": "credentials"}}),
                true,
                Some(at + Duration::hours(24)),
            ),
        ];
        for (state, enabled, want) in cases {
            let (spec, r) = record(state.clone(), enabled);
            assert_eq!(next_run(&spec, &r, now), want, "{state}");
        }
    }
}
