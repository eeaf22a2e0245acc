//! What an operator does to a job besides running it: turn it on or off, pause and resume,
//! restart (clear its position, escrows, quarantine or links), reauthorize with a new
//! token, approve or reject the deletes the breaker held and the time frames' timers, read
//! its log.

use super::{Check, Engine, RestartScope};
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use scim_core::{
    Exported, LedgerState, Pending, PendingStep, ResourceKind, SyncLogQuery, SyncLogRecord,
};

impl Engine {
    /// Turns a stored job on (scheduled by `scimd serve`) or off.
    pub async fn set_enabled(&self, name: &str, on: bool) -> SyncResult<()> {
        if !self.store.set_job_enabled(name, on, self.now()).await? {
            return Err(SyncError::NotFound(format!("no stored job named '{name}'")));
        }
        Ok(())
    }

    /// Pauses (or resumes) a job. A cycle in flight stops after the objects it is sending
    /// and keeps its position; a resumed job carries on from there.
    pub async fn set_paused(&self, name: &str, paused: bool) -> SyncResult<()> {
        self.edit_state(None, name, |s| s.paused = paused).await
    }

    /// Removes a stored job with its ledger, cycles, log and uploaded file; the target's
    /// objects stay.
    pub async fn delete(&self, name: &str) -> SyncResult<()> {
        if !self.store.delete_job(name).await? {
            return Err(SyncError::NotFound(format!("no stored job named '{name}'")));
        }
        Ok(())
    }

    /// Clears what `scope` names; returns what was cleared, for the operator.
    pub async fn restart(&self, name: &str, scope: RestartScope) -> SyncResult<String> {
        use RestartScope as R;
        let mut done = Vec::new();
        let all = scope == R::Full;
        let links = all || scope == R::Links;
        if all || matches!(scope, R::Watermark | R::Quarantine | R::Links) {
            self.edit_state(None, name, |s| {
                if all || scope == R::Watermark || links {
                    s.watermark = None;
                    s.fingerprint = None;
                }
                if all || scope == R::Quarantine {
                    s.quarantine = None;
                    s.throttled_until = None;
                }
                if links {
                    s.initial_done = Some(false);
                }
            })
            .await?;
            done.push(
                match scope {
                    R::Watermark | R::Links => "watermark",
                    R::Quarantine => "quarantine",
                    _ => "watermark, quarantine",
                }
                .to_string(),
            );
        } else {
            self.stored(name).await?;
        }
        if all || matches!(scope, R::Escrows | R::Links) {
            let now = self.now();
            let mut changed = Vec::new();
            for mut e in self.store.ledger(name).await? {
                let unlink = links && e.target_id.is_some();
                if e.escrow.is_none() && !unlink {
                    continue;
                }
                e.escrow = None;
                if unlink {
                    // Forgotten, not deleted: the next cycle finds the object by matching
                    // and adopts it, so nothing is created twice.
                    e.target_id = None;
                    e.state = LedgerState::Creating;
                    e.exported = Exported::default();
                    e.pending = None;
                    e.due_at = None;
                }
                e.updated_at = now;
                changed.push(e);
            }
            for chunk in changed.chunks(500) {
                self.store.record_sync(None, chunk, &[]).await?;
            }
            let what = if links {
                "links and escrows"
            } else {
                "escrows"
            };
            done.push(format!("{what} of {} object(s)", changed.len()));
        }
        Ok(format!("cleared: {}", done.join("; ")))
    }

    /// Stores a new target token (sealed), tests the connection with it, and lifts the
    /// quarantine if every check passes (the Google guide's Reauthorize). From now on the
    /// stored job uses the sealed token, not the variable or file it named before.
    pub async fn reauthorize(&self, name: &str, token: &str) -> SyncResult<Vec<Check>> {
        let token = token.trim();
        if token.is_empty() {
            return Err(SyncError::Job("the new token is empty".into()));
        }
        let record = self.stored(name).await?;
        let mut updated = self.with_target_token(&record, token)?;
        self.store.put_job(&updated).await?;
        let now = self.now();
        self.edit_state(None, name, |s| s.reauthorized_at = Some(now))
            .await?;
        updated.state.reauthorized_at = Some(now);
        let spec = JobSpec::parse(&updated.spec, None)?;
        let checks = self.test(&spec, Some(&updated)).await;
        if checks.iter().all(|c| c.ok) {
            self.edit_state(None, name, |s| {
                s.quarantine = None;
                s.throttled_until = None;
            })
            .await?;
        }
        Ok(checks)
    }

    /// Approves (or rejects) every delete the breaker staged for this job.
    pub async fn decide_staged(&self, name: &str, approve: bool) -> SyncResult<u64> {
        self.decide_pending(name, PendingStep::Staged, None, approve)
            .await
    }

    /// An operator's word on scheduled deprovisioning (a time frame's timers), for one
    /// object (`only`: its kind and source id) or all of them. Applied, the timer is due
    /// now: the disable or delete goes out in the next cycle, under the deletion breaker
    /// and the complete-read guard like any other (many at once are held for approval);
    /// cancelled, the object stays on the target until its state at the source changes
    /// again (back in scope clears it, as for a rejected delete).
    pub async fn decide_timers(
        &self,
        name: &str,
        only: Option<(ResourceKind, &str)>,
        apply: bool,
    ) -> SyncResult<u64> {
        self.decide_pending(name, PendingStep::Timer, only, apply)
            .await
    }

    /// Moves the ledger's pending steps `from` on: a staged delete to approved or
    /// rejected, a timer to due now or rejected. Refused while a cycle runs: it writes the
    /// same ledger rows, and one of the two would be lost.
    async fn decide_pending(
        &self,
        name: &str,
        from: PendingStep,
        only: Option<(ResourceKind, &str)>,
        approve: bool,
    ) -> SyncResult<u64> {
        if self.stored(name).await?.state.running.is_some() {
            return Err(SyncError::Job(
                "a cycle is running: decide once it has ended (this page refreshes itself)".into(),
            ));
        }
        let now = self.now();
        let mut changed = Vec::new();
        for mut e in self.store.ledger(name).await? {
            let Some(p) = e.pending.filter(|p| p.step == from) else {
                continue;
            };
            if only.is_some_and(|(kind, id)| e.kind != kind || e.source_id != id) {
                continue;
            }
            let (step, due) = match (from, approve) {
                // Due now, still a timer: the breaker and the guard count it.
                (PendingStep::Timer, true) => (PendingStep::Timer, Some(now)),
                (_, true) => (PendingStep::Approved, None),
                (_, false) => (PendingStep::Rejected, None),
            };
            e.pending = Some(Pending { step, ..p });
            e.due_at = due;
            e.updated_at = now;
            changed.push(e);
        }
        if only.is_some() && changed.is_empty() {
            return Err(SyncError::NotFound(
                "no scheduled action for that object (it may have run or been cancelled)".into(),
            ));
        }
        for chunk in changed.chunks(500) {
            self.store.record_sync(None, chunk, &[]).await?;
        }
        Ok(changed.len() as u64)
    }

    /// The job's per-object log, newest first. A job that is not stored is an error (not
    /// an empty log).
    pub async fn log(&self, name: &str, q: &SyncLogQuery) -> SyncResult<Vec<SyncLogRecord>> {
        self.stored(name).await?;
        Ok(self.store.sync_log(name, q).await?)
    }

    /// Every stored job.
    pub async fn jobs(&self) -> SyncResult<Vec<scim_core::SyncJobRecord>> {
        Ok(self.store.jobs().await?)
    }
}
