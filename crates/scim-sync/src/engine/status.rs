//! A job's status, read from one snapshot: its phase (what needs the operator first), the
//! last cycle, the ledger's counts, escrow, staged deletes, timers, quarantine, and when it
//! runs next.

use super::Engine;
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use scim_core::{
    CycleCounts, CycleMode, CycleStatus, JobSnapshot, LedgerState, PendingStep, Quarantine,
    QuarantineReason, ResourceKind, Trigger, Verb,
};
use serde::Serialize;
use serde_json::Value;

/// What a job is doing, in the words of the guides (most urgent first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobPhase {
    /// The breaker held deletes: an operator approves or rejects them.
    #[serde(rename = "waiting for delete approval")]
    WaitingForApproval,
    #[serde(rename = "quarantined")]
    Quarantined,
    /// Not scheduled (`scimd sync job enable` turns it on).
    #[serde(rename = "off")]
    Off,
    #[serde(rename = "paused")]
    Paused,
    /// On, its initial cycle not done yet.
    #[serde(rename = "initial")]
    Initial,
    #[serde(rename = "active")]
    Active,
}

impl JobPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::WaitingForApproval => "waiting for delete approval",
            JobPhase::Quarantined => "quarantined",
            JobPhase::Off => "off",
            JobPhase::Paused => "paused",
            JobPhase::Initial => "initial",
            JobPhase::Active => "active",
        }
    }
}

/// The last cycle, for display.
#[derive(Debug, Clone, Serialize)]
pub struct CycleView {
    pub cycle_id: String,
    pub mode: CycleMode,
    pub status: CycleStatus,
    pub started: String,
    pub finished: Option<String>,
    pub duration_ms: Option<i64>,
    pub counts: CycleCounts,
}

/// A deprovisioning timer waiting in the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct TimerView {
    pub kind: ResourceKind,
    pub source_id: String,
    /// Its name as last read (userName, displayName, …; the id if none).
    pub display: String,
    pub action: Verb,
    pub trigger: Trigger,
    pub due: Option<String>,
}

/// How many ledger rows of one kind are in one state.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerCount {
    pub kind: ResourceKind,
    pub state: LedgerState,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub enabled: bool,
    pub paused: bool,
    pub state: JobPhase,
    pub last_cycle: Option<CycleView>,
    pub ledger: Vec<LedgerCount>,
    pub staged_deletes: u64,
    /// Objects in escrow (retried on the ladder) and abandoned (failing past it).
    pub escrowed: u64,
    pub abandoned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineView>,
    /// When `scimd serve` runs the next cycle (none while off or paused).
    pub next_run: Option<String>,
    /// Until when the target asked to be left alone (its Retry-After).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_until: Option<String>,
    /// The soonest deprovisioning timers (at most 10), and how many there are in all.
    pub next_timers: Vec<TimerView>,
    pub timers: u64,
    /// The source's position (its shape is the source kind's: an LDAP source says whether
    /// it uses syncrepl or polling in `mode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Value>,
    /// Whether a cycle is running now, and since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_since: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub reason: QuarantineReason,
    pub detail: String,
    pub since: String,
}

impl From<&Quarantine> for QuarantineView {
    fn from(q: &Quarantine) -> Self {
        Self {
            reason: q.reason,
            detail: q.detail.clone(),
            since: q.since.rfc3339(),
        }
    }
}

impl Engine {
    pub async fn status(&self, name: &str) -> SyncResult<JobStatus> {
        Ok(self.status_with_cycles(name, 1).await?.0)
    }

    /// The job's status with the job and its `cycles` newest cycles, all from one read
    /// snapshot: a cycle shown as completed has every outcome in the ledger counts and
    /// its final state in the badge (they are written in that order, in separate
    /// transactions, while it runs).
    pub async fn status_with_cycles(
        &self,
        name: &str,
        cycles: u32,
    ) -> SyncResult<(JobStatus, JobSnapshot)> {
        let snapshot = self
            .store
            .job_snapshot(name, cycles.max(1))
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("no stored job named '{name}'")))?;
        let (record, ledger) = (&snapshot.record, &snapshot.ledger);
        let now = self.now();
        let spec = JobSpec::parse(&record.spec, None)?;
        let mut counts: std::collections::BTreeMap<(ResourceKind, LedgerState), u64> =
            Default::default();
        let (mut staged, mut escrowed, mut abandoned) = (0, 0, 0);
        let mut timers = Vec::new();
        for e in ledger {
            *counts.entry((e.kind, e.state)).or_insert(0) += 1;
            if let Some(x) = e.escrow {
                if now - x.since >= spec.escrow.abandon() {
                    abandoned += 1;
                } else {
                    escrowed += 1;
                }
            }
            match e.pending {
                Some(p) if p.step == PendingStep::Staged => staged += 1,
                Some(p) if p.step == PendingStep::Timer => timers.push((
                    e.due_at,
                    TimerView {
                        kind: e.kind,
                        source_id: e.source_id.clone(),
                        display: e
                            .source
                            .as_ref()
                            .map_or_else(|| e.source_id.clone(), |o| o.display()),
                        action: p.verb,
                        trigger: p.trigger,
                        due: e.due_at.map(|d| d.rfc3339()),
                    },
                )),
                _ => {}
            }
        }
        timers.sort_by_key(|(d, _)| *d);
        let last = snapshot.cycles.first().map(|c| CycleView {
            cycle_id: c.cycle_id.clone(),
            mode: c.mode,
            status: c.status,
            started: c.started_at.rfc3339(),
            finished: c.finished_at.map(|f| f.rfc3339()),
            duration_ms: c
                .finished_at
                .map(|f| i64::try_from((f - c.started_at).whole_milliseconds()).unwrap_or(0)),
            counts: c.counts.clone(),
        });
        let st = &record.state;
        // What needs the operator first: held deletes, then quarantine.
        let phase = if staged > 0 {
            JobPhase::WaitingForApproval
        } else if st.quarantine.is_some() {
            JobPhase::Quarantined
        } else if !record.enabled {
            JobPhase::Off
        } else if st.paused {
            JobPhase::Paused
        } else if st.initial_done != Some(true) {
            JobPhase::Initial
        } else {
            JobPhase::Active
        };
        let timers_total = timers.len() as u64;
        let status = JobStatus {
            name: name.into(),
            enabled: record.enabled,
            paused: st.paused,
            state: phase,
            last_cycle: last,
            ledger: counts
                .into_iter()
                .map(|((kind, state), count)| LedgerCount { kind, state, count })
                .collect(),
            staged_deletes: staged,
            escrowed,
            abandoned,
            quarantine: st.quarantine.as_ref().map(QuarantineView::from),
            next_run: crate::due::next_run(&spec, record.enabled, st, now).map(|t| t.rfc3339()),
            throttled_until: st.throttled_until.filter(|t| *t > now).map(|t| t.rfc3339()),
            next_timers: timers.into_iter().take(10).map(|(_, v)| v).collect(),
            timers: timers_total,
            watermark: st.watermark.clone(),
            running_since: st.running.as_ref().map(|r| r.started.rfc3339()),
        };
        Ok((status, snapshot))
    }
}
