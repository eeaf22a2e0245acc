//! One cycle: not before the target's `Retry-After`; plan; the compliance probe before an
//! initial cycle; apply; then the job's state (watermark, fingerprint, last cycle, the
//! target's Retry-After) and quarantine, written with the cycle's record in one
//! transaction.

use super::{Engine, quarantine};
use crate::apply::{Applier, ApplyConfig, Halt};
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::model::{ObjectKind, client_kind};
use scim_client::{ScimClient, TargetProfile};
use scim_core::{
    CoreError, CycleCounts, CycleMode, CycleRecord, CycleStatus, JobState, LastCycle, LeaseFence,
    Quarantine, QuarantineReason, RunningCycle, SyncJobRecord, Timestamp,
};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub job: String,
    pub cycle_id: String,
    pub mode: CycleMode,
    pub status: CycleStatus,
    pub counts: CycleCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    pub duration_ms: u128,
    pub source_users: usize,
    pub source_groups: usize,
    /// Set when this cycle put the job in quarantine or took it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineChange>,
}

/// A job entering or leaving quarantine (what the notifications say).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuarantineChange {
    pub entered: bool,
    pub reason: QuarantineReason,
    pub detail: String,
}

/// Entra's compliance probe (engine-behaviour §1.4): a filter on a random value must
/// answer 200 with an empty list, for Users and (when provisioned) Groups.
pub(super) async fn probe(
    client: &ScimClient,
    profile: &TargetProfile,
    spec: &JobSpec,
) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    let probe = uuid::Uuid::new_v4().to_string();
    let mut kinds = vec![(ObjectKind::User, "userName", None)];
    if profile.groups && spec.target.groups {
        kinds.push((ObjectKind::Group, "displayName", Some("members")));
    }
    for (kind, attr, excluded) in kinds {
        let rk = client_kind(kind);
        let name = format!("probe /{}", rk.endpoint());
        let r = match client.find_eq(rk, attr, &probe, excluded).await {
            Ok(list) if list.is_empty() => {
                Ok(format!("filter {attr} eq \"{probe}\" → 200, empty list"))
            }
            Ok(list) => Err(format!(
                "filter {attr} eq a random GUID returned {} resources: the target ignores filters",
                list.len()
            )),
            Err(e) => Err(format!("filter {attr} eq a random GUID: {e}")),
        };
        out.push((name, r));
    }
    out
}

/// Writes the quarantine into a job's state; the change, if it is a new one.
fn enter_quarantine(
    state: &mut JobState,
    reason: QuarantineReason,
    detail: &str,
    now: Timestamp,
) -> Option<QuarantineChange> {
    if state
        .quarantine
        .as_ref()
        .is_some_and(|q| q.reason == reason)
    {
        return None;
    }
    state.quarantine = Some(Quarantine {
        reason,
        detail: detail.to_string(),
        since: now,
    });
    Some(QuarantineChange {
        entered: true,
        reason,
        detail: detail.into(),
    })
}

/// Takes a job out of quarantine; the change, if it was in.
fn lift_quarantine(state: &mut JobState) -> Option<QuarantineChange> {
    let q = state.quarantine.take()?;
    Some(QuarantineChange {
        entered: false,
        reason: q.reason,
        detail: "a cycle completed: quarantine lifted".into(),
    })
}

impl Engine {
    /// One cycle: plan, apply, record. A job run from a file is stored under its name.
    pub async fn run(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
    ) -> SyncResult<CycleReport> {
        self.run_with(spec, record, Arc::default()).await
    }

    /// One cycle that stops early when `halt` is set (pause, lease lost): the objects in
    /// flight finish and are recorded, the watermark stays, and the next cycle carries on
    /// where this one stopped. Quarantine is entered or lifted by the outcome.
    pub async fn run_with(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        halt: Arc<Halt>,
    ) -> SyncResult<CycleReport> {
        if record.is_none() {
            self.import(spec).await?;
        }
        let record = self.stored(&spec.name).await?;
        let started = std::time::Instant::now();
        let cycle_id = uuid::Uuid::new_v4().to_string();
        let fence = halt.fence().cloned();
        let fence = fence.as_ref();
        if let Some(until) = record.state.throttled_until.filter(|t| *t > self.now()) {
            return self.throttled(spec, &record, &cycle_id, until, fence).await;
        }
        let now = self.now();
        self.edit_state(fence, &spec.name, |s| {
            s.running = Some(RunningCycle {
                cycle_id: cycle_id.clone(),
                started: now,
            });
        })
        .await?;
        // A cycle that fails before its plan (source unreadable, target refusing the
        // token, a failed probe) is recorded all the same: the console and `sync status`
        // list it, in red, with its reason.
        let failed_start = |mode| CycleRecord {
            job: spec.name.clone(),
            cycle_id: cycle_id.clone(),
            started_at: now,
            finished_at: None,
            mode,
            status: CycleStatus::Failed,
            counts: CycleCounts::default(),
        };
        let mode_before = if record.state.initial_done == Some(true) {
            CycleMode::Incremental
        } else {
            CycleMode::Initial
        };
        let prepared = match self.prepare(spec, Some(&record)).await {
            Ok(p) => p,
            Err(e) => {
                self.record_failed_start(fence, failed_start(mode_before), &e)
                    .await?;
                return Err(e);
            }
        };
        let mode = prepared.plan.mode;
        if mode == CycleMode::Initial {
            // Said before any write: a cycle killed after its first creates resumes as the
            // initial cycle it was (one read of the target, local matching), not as an
            // incremental one that trusts a half-built ledger.
            self.edit_state(fence, &spec.name, |s| s.initial_done = Some(false))
                .await?;
        }
        // The probe runs before an initial cycle and while quarantined for failing it.
        let probe_due = mode == CycleMode::Initial
            || record
                .state
                .quarantine
                .as_ref()
                .is_some_and(|q| q.reason == QuarantineReason::Compliance);
        if probe_due {
            let failed: Vec<String> = probe(&prepared.client, &prepared.profile, spec)
                .await
                .into_iter()
                .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e}")))
                .collect();
            if !failed.is_empty() {
                let e = SyncError::Compliance(failed.join("; "));
                self.record_failed_start(fence, failed_start(mode), &e)
                    .await?;
                return Err(e);
            }
        }
        self.apply_prepared(spec, fence, halt, cycle_id, prepared, started)
            .await
    }

    /// Applies a prepared cycle's plan and records the cycle with the job's new state.
    async fn apply_prepared(
        &self,
        spec: &JobSpec,
        fence: Option<&LeaseFence>,
        halt: Arc<Halt>,
        cycle_id: String,
        mut prepared: super::Prepared,
        started: std::time::Instant,
    ) -> SyncResult<CycleReport> {
        let mode = prepared.plan.mode;
        let breaker = prepared.plan.breaker.clone();
        let mut cycle = CycleRecord {
            job: spec.name.clone(),
            cycle_id: cycle_id.clone(),
            started_at: self.now(),
            finished_at: None,
            mode,
            status: CycleStatus::Running,
            counts: CycleCounts {
                planned: prepared.plan.actions.len() as u64,
                ..CycleCounts::default()
            },
        };
        self.store.save_cycle(&cycle).await?;
        let (users, groups) = prepared.source_counts;
        let plan = std::mem::replace(
            &mut prepared.plan,
            crate::plan::SyncPlan {
                job: spec.name.clone(),
                mode,
                actions: Vec::new(),
                totals: Default::default(),
                breaker: None,
                ledger_only: Vec::new(),
            },
        );
        let client = prepared.client.clone();
        let applier = Applier::new(
            ApplyConfig {
                spec: prepared.spec.clone(),
                users: prepared.users.clone(),
                groups: prepared.groups.clone(),
                client: prepared.client.clone(),
                profile: prepared.profile.clone(),
                cycle_id: cycle_id.clone(),
            },
            &prepared.ledger,
            self.store.clone(),
            self.clock.clone(),
            halt,
        );
        let counts = match applier.apply(plan).await {
            Ok(c) => c,
            Err(e) => {
                cycle.finished_at = Some(self.now());
                cycle.status = CycleStatus::Failed;
                cycle.counts.error = Some(e.to_string());
                self.store.save_cycle(&cycle).await?;
                self.mark_failed(fence, &spec.name, &cycle_id, &e).await?;
                return Err(e);
            }
        };
        let status = if counts.stopped.is_some() {
            CycleStatus::Stopped
        } else if counts.failures() > 0 {
            CycleStatus::CompletedWithFailures
        } else {
            CycleStatus::Completed
        };
        cycle.finished_at = Some(self.now());
        cycle.status = status;
        cycle.counts = counts.clone();
        let done = Finish {
            cycle: &cycle,
            counts: &counts,
            prepared_watermark: prepared.watermark.clone(),
            fingerprint: prepared.fingerprint.clone(),
            quiet_until: self.quiet_until(&client),
        };
        let change = self.finish(spec, fence, done).await?;
        Ok(CycleReport {
            job: spec.name.clone(),
            cycle_id,
            mode,
            status,
            counts,
            breaker,
            duration_ms: started.elapsed().as_millis(),
            source_users: users,
            source_groups: groups,
            quarantine: change,
        })
    }

    /// The end of the target's longest `Retry-After` still to come, on the engine's clock.
    fn quiet_until(&self, client: &ScimClient) -> Option<Timestamp> {
        let until = client.stats().quiet_until()?;
        let left = until.duration_since(std::time::SystemTime::now()).ok()?;
        Some(self.now() + time::Duration::try_from(left).unwrap_or(time::Duration::ZERO))
    }

    /// A run asked for while the target's Retry-After lasts: nothing is sent; the cycle is
    /// recorded as stopped, saying until when.
    async fn throttled(
        &self,
        spec: &JobSpec,
        record: &SyncJobRecord,
        cycle_id: &str,
        until: Timestamp,
        fence: Option<&LeaseFence>,
    ) -> SyncResult<CycleReport> {
        let why = format!(
            "the target asked to be left alone until {} (its Retry-After): nothing sent",
            until.rfc3339()
        );
        let now = self.now();
        let counts = CycleCounts {
            stopped: Some(why),
            ..CycleCounts::default()
        };
        let cycle = CycleRecord {
            job: spec.name.clone(),
            cycle_id: cycle_id.to_string(),
            started_at: now,
            finished_at: Some(now),
            mode: if record.state.initial_done == Some(true) {
                CycleMode::Incremental
            } else {
                CycleMode::Initial
            },
            status: CycleStatus::Stopped,
            counts: counts.clone(),
        };
        let mut state = record.state.clone();
        state.last_cycle = Some(LastCycle {
            id: cycle_id.to_string(),
            at: now,
            status: CycleStatus::Stopped,
            error: None,
        });
        self.store.finish_cycle(fence, &cycle, &state, now).await?;
        Ok(CycleReport {
            job: spec.name.clone(),
            cycle_id: cycle_id.to_string(),
            mode: cycle.mode,
            status: CycleStatus::Stopped,
            counts,
            breaker: None,
            duration_ms: 0,
            source_users: 0,
            source_groups: 0,
            quarantine: None,
        })
    }

    /// The job's state after a cycle, written with the cycle's record in one transaction
    /// (no reader sees one without the other); the quarantine change, if any.
    async fn finish(
        &self,
        spec: &JobSpec,
        fence: Option<&LeaseFence>,
        f: Finish<'_>,
    ) -> SyncResult<Option<QuarantineChange>> {
        // The state is read again: a pause or a restart may have changed it meanwhile.
        let mut state = self
            .store
            .job(&spec.name)
            .await?
            .map_or_else(JobState::default, |r| r.state);
        let complete = f.counts.stopped.is_none();
        if complete {
            // Only a cycle that went through its whole plan moves the position.
            state.watermark = f.prepared_watermark;
            state.fingerprint = Some(f.fingerprint);
            state.initial_done = Some(true);
        }
        let now = self.now();
        state.last_cycle = Some(LastCycle {
            id: f.cycle.cycle_id.clone(),
            at: now,
            status: f.cycle.status,
            error: None,
        });
        state.running = None;
        state.throttled_until = f.quiet_until;
        let change = match quarantine::verdict(&spec.quarantine, f.counts) {
            Some((reason, detail)) => enter_quarantine(&mut state, reason, &detail, now),
            None if complete => lift_quarantine(&mut state),
            None => None,
        };
        // A run fenced out at this point still did its work: the record says so, and the
        // new holder plans from the ledger this run wrote.
        if let Err(e) = self.store.finish_cycle(fence, f.cycle, &state, now).await {
            if matches!(e, CoreError::LeaseLost(_)) {
                self.store.save_cycle(f.cycle).await?;
            }
            return Err(e.into());
        }
        Ok(change)
    }

    /// A cycle that failed as a whole: remembered (the scheduler tries again later), and
    /// a refused credential or a failed probe quarantines the job.
    /// A cycle that failed before its plan ran: its record (with the reason) and the job's
    /// state, in one transaction. A run fenced out by another node records nothing: the
    /// job is theirs.
    async fn record_failed_start(
        &self,
        fence: Option<&LeaseFence>,
        mut cycle: CycleRecord,
        e: &SyncError,
    ) -> SyncResult<()> {
        if matches!(e, SyncError::Store(CoreError::LeaseLost(_))) {
            return Ok(());
        }
        let now = self.now();
        let Some(state) = self.store.job(&cycle.job).await?.map(|r| r.state) else {
            return Ok(());
        };
        let state = failed_state(state, &cycle.cycle_id, e, now);
        cycle.finished_at = Some(now);
        cycle.counts.error = Some(e.to_string());
        match self.store.finish_cycle(fence, &cycle, &state, now).await {
            Err(CoreError::LeaseLost(_)) => Ok(()),
            r => Ok(r?),
        }
    }

    async fn mark_failed(
        &self,
        fence: Option<&LeaseFence>,
        name: &str,
        cycle_id: &str,
        e: &SyncError,
    ) -> SyncResult<()> {
        if matches!(e, SyncError::Store(CoreError::LeaseLost(_))) {
            // The job's state is the new holder's now.
            return Ok(());
        }
        let now = self.now();
        let Some(state) = self.store.job(name).await?.map(|r| r.state) else {
            return Ok(());
        };
        let state = failed_state(state, cycle_id, e, now);
        self.store.set_job_state(fence, name, &state, now).await?;
        Ok(())
    }
}

/// The job's state after a cycle failed as a whole: quarantined for refused credentials or
/// a failed compliance probe, no longer running, its last cycle failed with the reason.
fn failed_state(mut state: JobState, cycle_id: &str, e: &SyncError, now: Timestamp) -> JobState {
    let reason = match e {
        SyncError::Target(c) if c.is_auth() => Some(QuarantineReason::Credentials),
        SyncError::Compliance(_) => Some(QuarantineReason::Compliance),
        _ => None,
    };
    if let Some(r) = reason {
        enter_quarantine(&mut state, r, &e.to_string(), now);
    }
    state.running = None;
    state.last_cycle = Some(LastCycle {
        id: cycle_id.to_string(),
        at: now,
        status: CycleStatus::Failed,
        error: Some(e.to_string()),
    });
    state
}

/// What a finished cycle leaves in the job's state.
struct Finish<'a> {
    cycle: &'a CycleRecord,
    counts: &'a CycleCounts,
    prepared_watermark: Option<serde_json::Value>,
    fingerprint: String,
    quiet_until: Option<Timestamp>,
}
