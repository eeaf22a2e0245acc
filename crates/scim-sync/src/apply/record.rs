//! Outcomes and what is kept of them: each object's ledger row and log row, written in
//! batches of [`RECORD_BATCH`] (one transaction each, fenced by the cycle's lease), and the
//! escrow ladder of objects that keep failing.

use super::{Applier, HALT_LEASE_LOST, HALT_UNAUTHORIZED};
use crate::error::{SyncError, SyncResult, error_code};
use crate::plan::PlannedAction;
use scim_client::ClientError;
use scim_core::{
    ErrorCode, Escrow, Exported, LedgerEntry, LedgerState, LogChanges, PropertyChange, Status,
    Step, StepKind, SyncAction, SyncLogRecord,
};
use std::time::{Duration, Instant};

/// Outcomes are written in batches of this many (one transaction each), and at the end of
/// every phase. A crash loses at most one batch of ledger rows; the objects they describe
/// are on the target and are found again by matching in the next cycle (adopted, never
/// duplicated), and an update or delete sent again is harmless.
pub const RECORD_BATCH: usize = 200;

/// The result of one object's action.
pub struct Outcome {
    pub status: Status,
    pub entry: LedgerEntry,
    pub error_code: Option<ErrorCode>,
    pub detail: String,
    pub steps: Vec<Step>,
    pub changes: Vec<PropertyChange>,
    pub target_id: Option<String>,
    /// References left out because their referent is not on the target yet.
    pub unresolved: bool,
    /// Nothing was sent and nothing changed on the target: the ledger row is kept, and no
    /// log row says a change happened.
    pub quiet: bool,
    /// The wait the target asked for when it refused (429/503 with `Retry-After`).
    pub retry_after: Option<Duration>,
}

pub(super) fn export_step(status: Status, detail: impl Into<String>) -> Step {
    Step::new(StepKind::Export, status, detail)
}

impl Outcome {
    /// The action done on the target object `target_id`, with the plan's detail and changes.
    pub(super) fn success(
        a: &PlannedAction,
        target_id: String,
        entry: LedgerEntry,
        steps: Vec<Step>,
        unresolved: bool,
    ) -> Self {
        Outcome {
            status: Status::Success,
            target_id: Some(target_id),
            entry,
            error_code: None,
            detail: a.detail.clone(),
            steps,
            changes: a.changes.clone(),
            unresolved,
            quiet: false,
            retry_after: None,
        }
    }

    /// What the plan decided without a request (a skip, a conflict, a staged delete).
    fn planned(a: &PlannedAction, status: Status) -> Self {
        Outcome {
            status,
            target_id: a.entry.target_id.clone(),
            entry: a.entry.clone(),
            error_code: a.error_code,
            detail: a.detail.clone(),
            steps: Vec::new(),
            changes: a.changes.clone(),
            unresolved: false,
            quiet: false,
            retry_after: None,
        }
    }

    /// Nothing sent: the ledger row as given, no log row.
    pub(super) fn quiet(a: &PlannedAction, entry: LedgerEntry) -> Self {
        let mut o = Self::planned(a, Status::Skipped);
        o.quiet = true;
        o.entry = entry;
        o
    }
}

impl Applier {
    /// Runs one action against the target. Never fails the cycle: a target error is this
    /// object's outcome. A failure puts the object in escrow (or one step up its ladder);
    /// a success takes it out.
    pub async fn execute(&self, a: &PlannedAction) -> Outcome {
        let out = match a.action {
            SyncAction::Skip => Outcome::planned(
                a,
                if a.error_code.is_some() {
                    Status::Failure
                } else {
                    Status::Skipped
                },
            ),
            SyncAction::Conflict => Outcome::planned(
                a,
                if a.error_code == Some(ErrorCode::ExistingTargetObject) {
                    Status::Warning
                } else {
                    Status::Failure
                },
            ),
            SyncAction::StagedDelete => Outcome::planned(a, Status::Warning),
            // A time frame's timer is set; nothing was sent (and, as for a skip, the
            // row does not count as an attempt in the quarantine's share).
            SyncAction::DisableScheduled | SyncAction::DeleteScheduled => {
                Outcome::planned(a, Status::Skipped)
            }
            _ => match self.write(a).await {
                Ok(out) => out,
                Err(e) => self.failed(a, &e),
            },
        };
        self.settle(a, out)
    }

    /// Escrow bookkeeping for an outcome, however it was reached (alone or in a Bulk
    /// request): a failure goes one step up the ladder, counted from this attempt; a
    /// failure the target asked to wait out (its `Retry-After`) is retried when that wait
    /// ends, no step up; refused credentials stop the cycle instead; a success leaves it.
    pub(super) fn settle(&self, a: &PlannedAction, mut out: Outcome) -> Outcome {
        if out.status != Status::Failure {
            out.entry.escrow = None;
            return out;
        }
        if out.error_code == Some(ErrorCode::TargetUnauthorized) {
            // Not this object's fault: no escrow step, and no further calls.
            self.halt.stop(HALT_UNAUTHORIZED);
            return out;
        }
        let now = (self.clock)();
        let prev = a.on_failure.escrow;
        let since = prev.map_or(now, |e| e.since);
        let escrow = match out.retry_after {
            Some(wait) => Escrow {
                failures: prev.map_or(1, |e| e.failures.max(1)),
                since,
                retry_at: now + time::Duration::try_from(wait).unwrap_or(time::Duration::ZERO),
            },
            None => {
                let failures = prev.map_or(0, |e| e.failures).saturating_add(1);
                Escrow {
                    failures,
                    since,
                    retry_at: now + self.spec().escrow.wait(failures),
                }
            }
        };
        let detail = if now - since >= self.spec().escrow.abandon() {
            format!(
                "failing since {}: abandoned until the source object changes",
                since.rfc3339()
            )
        } else {
            format!(
                "failure {} in a row: retried after {} or when the source object changes",
                escrow.failures,
                escrow.retry_at.rfc3339()
            )
        };
        out.steps
            .push(Step::new(StepKind::Escrow, Status::Warning, detail));
        out.entry.escrow = Some(escrow);
        out
    }

    /// The outcome of an action the target refused (or never answered).
    pub(super) fn failed(&self, a: &PlannedAction, e: &ClientError) -> Outcome {
        let code = error_code(e);
        let mut entry = a.on_failure.clone();
        if a.action == SyncAction::Create && e.may_have_been_processed() {
            // It may be on the target: the next cycle looks it up first.
            entry.state = LedgerState::Creating;
        }
        if code == ErrorCode::TargetObjectMissing {
            // Gone from the target behind our back: unlink, so the next cycle
            // matches or creates it again.
            entry.target_id = None;
            entry.state = LedgerState::Missing;
            entry.exported = Exported::default();
        }
        Outcome {
            status: Status::Failure,
            target_id: a.target_id.clone(),
            entry,
            error_code: Some(code),
            detail: e.to_string(),
            steps: vec![export_step(Status::Failure, e.to_string())],
            changes: a.changes.clone(),
            unresolved: false,
            quiet: false,
            retry_after: e.retry_after(),
        }
    }

    pub(super) async fn record(
        &self,
        a: &PlannedAction,
        out: &Outcome,
        started: Instant,
    ) -> SyncResult<()> {
        let now = (self.clock)();
        let mut entry = out.entry.clone();
        entry.updated_at = now;
        let log = (!out.quiet).then(|| {
            let mut steps = a.steps.clone();
            steps.extend(out.steps.iter().cloned());
            SyncLogRecord {
                seq: 0,
                job: self.spec().name.clone(),
                cycle_id: self.cfg.cycle_id.clone(),
                change_id: uuid::Uuid::new_v4().to_string(),
                at: now,
                kind: a.kind,
                source_id: a.source_id.clone(),
                target_id: out.target_id.clone(),
                display: a.display.clone(),
                action: a.action,
                status: out.status,
                steps,
                changes: LogChanges {
                    attributes: out.changes.iter().map(PropertyChange::masked).collect(),
                    members_added: a.members_add.clone(),
                    members_removed: a.members_remove.clone(),
                },
                error_code: out.error_code,
                duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            }
        });
        let full = {
            let mut q = self
                .outbox
                .lock()
                .map_err(|_| SyncError::Internal("the outbox lock is poisoned".into()))?;
            // Refused credentials say nothing about the object: its ledger row stays as the
            // last cycle left it, so the change is still pending next cycle.
            let unauthorized = out.error_code == Some(ErrorCode::TargetUnauthorized);
            q.push(((!unauthorized).then_some(entry), log));
            q.len() >= RECORD_BATCH
        };
        if full {
            self.flush().await?;
        }
        Ok(())
    }

    /// Before a phase's creates are sent, their ledger rows say `creating`: if the cycle
    /// dies between a POST and its record, the next cycle adopts what it finds for them
    /// whatever the conflict policy, because the engine made it (docs/sync.md §6).
    pub(super) async fn write_intents(&self, phase: &[PlannedAction]) -> SyncResult<()> {
        let now = (self.clock)();
        let intents: Vec<LedgerEntry> = phase
            .iter()
            .filter(|a| a.action == SyncAction::Create)
            .map(|a| LedgerEntry {
                state: LedgerState::Creating,
                updated_at: now,
                ..a.on_failure.clone()
            })
            .collect();
        for chunk in intents.chunks(RECORD_BATCH) {
            self.write_rows(chunk, &[]).await?;
        }
        Ok(())
    }

    /// Writes ledger and log rows in one transaction, fenced by the cycle's lease; a refused
    /// write stops the cycle (the new holder plans what this one would have recorded).
    pub(super) async fn write_rows(
        &self,
        entries: &[LedgerEntry],
        logs: &[SyncLogRecord],
    ) -> SyncResult<()> {
        let r = self
            .store
            .record_sync(self.halt.fence(), entries, logs)
            .await;
        if let Err(scim_core::CoreError::LeaseLost(_)) = &r {
            self.halt.stop(HALT_LEASE_LOST);
        }
        Ok(r?)
    }

    /// Writes the recorded outcomes (ledger rows and log rows) in one transaction.
    pub async fn flush(&self) -> SyncResult<()> {
        let batch = match self.outbox.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return Err(SyncError::Internal("the outbox lock is poisoned".into())),
        };
        if batch.is_empty() {
            return Ok(());
        }
        let (entries, logs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let entries: Vec<LedgerEntry> = entries.into_iter().flatten().collect();
        let logs: Vec<SyncLogRecord> = logs.into_iter().flatten().collect();
        self.write_rows(&entries, &logs).await
    }

    /// Records one outcome and writes it at once (provision on demand).
    pub async fn record_now(
        &self,
        a: &PlannedAction,
        out: &Outcome,
        started: Instant,
    ) -> SyncResult<()> {
        self.record(a, out, started).await?;
        self.flush().await
    }
}
