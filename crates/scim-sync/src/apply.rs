//! The applier: sends exactly what the plan says, object by object, and records each
//! outcome (ledger row + log row) in one transaction, so what the target holds and what the
//! ledger says never disagree by more than the one request in flight.
//!
//! Order (engine-behaviour §8.6): users created, adopted, updated and enabled; then groups,
//! with membership added and removed in chunks; then references whose referent was created
//! in this cycle; then groups deleted; then users disabled and deleted. One object's failure
//! never stops the cycle.

use crate::error::SyncResult;
use crate::job::{ConflictPolicy, JobSpec, UpdateMethod};
use crate::mapping::Mappings;
use crate::path::TargetPath;
use crate::plan::{Action, Exported, Key, PlannedAction, PropertyChange, Step, SyncPlan};
use crate::source::ObjectKind;
use crate::target::{Lookups, TargetMatcher};
use scim_client::{ClientError, ScimClient, TargetProfile};
use scim_core::{Escrow, LeaseFence, LedgerEntry, SyncLogRecord, SyncStore, Timestamp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Counts of one cycle, by action and by status.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CycleCounts {
    pub actions: BTreeMap<String, u64>,
    pub statuses: BTreeMap<String, u64>,
    /// Requests the applier sent to the target, retries included (discovery and the
    /// matching reads of planning are not counted: a cycle with nothing to do sends 0).
    pub requests: u64,
    /// Of those, retries of a 408/429/5xx/transport failure.
    pub retries: u64,
    /// 429 answers (each waited out as its `Retry-After` said).
    pub throttled: u64,
    /// Objects left for the next cycle because the cycle stopped (pause, quarantine).
    pub not_started: u64,
    /// Why the cycle stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

pub struct Applier {
    pub spec: JobSpec,
    pub users: Mappings,
    pub groups: Mappings,
    pub client: ScimClient,
    pub profile: TargetProfile,
    pub store: Arc<dyn SyncStore>,
    pub cycle_id: String,
    /// Source → target ids, from the ledger and filled in as objects are created.
    pub live: Mutex<HashMap<Key, String>>,
    /// Target ids already linked to some source object.
    pub owned: Mutex<HashSet<String>>,
    /// Outcomes not written yet (see [`RECORD_BATCH`]); no ledger row for an object the
    /// target refused to let us touch (its entry stays as it was, so the next cycle does the
    /// work again).
    pub outbox: Mutex<Vec<(Option<LedgerEntry>, SyncLogRecord)>>,
    /// Set to stop the cycle after the objects in flight (pause, lease lost, credentials
    /// refused).
    pub halt: Arc<Halt>,
    /// The cycle's time, for escrow.
    pub now: Timestamp,
    /// Set when the target refused a Bulk request as a whole: the rest of the cycle sends
    /// creates one by one.
    pub bulk_refused: AtomicBool,
    /// Operations per Bulk request now: the job's `bulk` at first, halved each time a Bulk
    /// answer is lost (a target too slow for the requests in flight times them out).
    pub bulk_limit: AtomicUsize,
}

/// Why a cycle stops before its plan is done. The first reason wins; the objects not yet
/// started are left for the next cycle (their ledger rows are untouched, so it plans them
/// again), the ones in flight finish and are recorded.
///
/// A cycle run under a lease also carries the lease's fence: its ledger and state writes
/// are refused once another node has taken the lease over, so a node that lost its lease
/// never writes over the new holder's run (scim_core's `LeaseFence`).
#[derive(Debug, Default)]
pub struct Halt {
    reason: Mutex<Option<String>>,
    fence: OnceLock<LeaseFence>,
}

impl Halt {
    pub fn stop(&self, why: impl Into<String>) {
        if let Ok(mut g) = self.reason.lock()
            && g.is_none()
        {
            *g = Some(why.into());
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|g| g.clone())
    }

    pub fn is_set(&self) -> bool {
        self.reason.lock().map(|g| g.is_some()).unwrap_or(true)
    }

    /// Fences this cycle's writes by a lease (set once, before the cycle starts).
    pub fn fence_by(&self, fence: LeaseFence) {
        let _ = self.fence.set(fence);
    }

    pub fn fence(&self) -> Option<&LeaseFence> {
        self.fence.get()
    }
}

/// The reason a cycle stops when the target refuses the credentials: every further call
/// would fail the same way (the job is quarantined, docs/sync.md §7).
pub const HALT_UNAUTHORIZED: &str = "the target refused the credentials (401/403)";

/// The reason a cycle stops when another node has taken its lease over.
pub const HALT_LEASE_LOST: &str = "the job's lease was taken over by another node";

/// Outcomes are written in batches of this many (one transaction each), and at the end of
/// every phase. A crash loses at most one batch of ledger rows; the objects they describe
/// are on the target and are found again by matching in the next cycle (adopted, never
/// duplicated), and an update or delete sent again is harmless.
pub const RECORD_BATCH: usize = 200;

/// A unit of the apply loop's work: one action, or user creates sent in one Bulk request.
enum Unit {
    One(Box<PlannedAction>),
    Bulk(Vec<PlannedAction>),
}

impl Unit {
    fn len(&self) -> usize {
        match self {
            Unit::One(_) => 1,
            Unit::Bulk(b) => b.len(),
        }
    }
}

/// The same error again, for each operation of a Bulk request refused as a whole (the
/// status and the target's words; a transport failure never gets here).
fn same_error(e: &ClientError) -> ClientError {
    match e {
        ClientError::Status {
            status,
            scim_type,
            detail,
            retry_after,
        } => ClientError::Status {
            status: *status,
            scim_type: scim_type.clone(),
            detail: detail.clone(),
            retry_after: *retry_after,
        },
        other => ClientError::Protocol(other.to_string()),
    }
}

/// One object's status and action, and the action again if a reference is left to resolve.
type PhaseResult = SyncResult<(&'static str, Action, Option<(PlannedAction, LedgerEntry)>)>;

/// The result of one object's action.
pub struct Outcome {
    pub status: &'static str,
    pub entry: LedgerEntry,
    pub error_code: Option<String>,
    pub detail: String,
    pub steps: Vec<Step>,
    pub changes: Vec<PropertyChange>,
    pub target_id: Option<String>,
    /// References left out because their referent is not on the target yet.
    pub unresolved: bool,
}

impl Outcome {
    /// The action done on the target object `target_id`, with the plan's detail and changes.
    fn success(
        a: &PlannedAction,
        target_id: String,
        entry: LedgerEntry,
        steps: Vec<Step>,
        unresolved: bool,
    ) -> Self {
        Outcome {
            status: "Success",
            target_id: Some(target_id),
            entry,
            error_code: None,
            detail: a.detail.clone(),
            steps,
            changes: a.changes.clone(),
            unresolved,
        }
    }
}

/// The documented error code for a target's answer (docs/sync.md §6).
pub(crate) fn error_code(e: &ClientError) -> &'static str {
    match e.status() {
        Some(401 | 403) => "TargetUnauthorized",
        Some(409) => "TargetConflict",
        Some(404) => "TargetObjectMissing",
        Some(408 | 429) => "TargetThrottled",
        Some(s) if (400..500).contains(&s) => "TargetRejected",
        _ => "TargetUnavailable",
    }
}

fn export_step(status: &'static str, detail: impl Into<String>) -> Step {
    Step {
        step: "export",
        status,
        detail: detail.into(),
    }
}

/// A linked object the target no longer has (a 404 where the engine expected it), as the
/// error the caller classifies (`TargetObjectMissing`).
fn gone(kind: ObjectKind, id: &str) -> ClientError {
    ClientError::Status {
        status: 404,
        scim_type: None,
        detail: Some(format!("{} {id} is gone from the target", kind.as_str())),
        retry_after: None,
    }
}

/// The values to remember as exported: references as the source id they were mapped from
/// (so the next plan compares like with like), the rest as sent.
fn as_exported(a: &PlannedAction, sent: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    sent.into_iter()
        .map(|(k, v)| {
            let v = if a.desired.references.contains(&k) {
                a.desired.values.get(&k).cloned().unwrap_or(v)
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn redact(changes: &[PropertyChange]) -> Vec<PropertyChange> {
    changes.iter().map(PropertyChange::masked).collect()
}

impl Applier {
    fn mappings(&self, kind: ObjectKind) -> &Mappings {
        match kind {
            ObjectKind::User => &self.users,
            ObjectKind::Group => &self.groups,
        }
    }

    fn use_patch(&self) -> bool {
        match self.spec.target.update {
            UpdateMethod::Auto => self.profile.patch,
            UpdateMethod::Patch => true,
            UpdateMethod::Put => false,
        }
    }

    fn target_of(&self, kind: ObjectKind, source_id: &str) -> Option<String> {
        self.live
            .lock()
            .ok()
            .and_then(|m| m.get(&(kind, source_id.to_string())).cloned())
    }

    /// A reference value (a source id) as the referent's target id.
    fn resolve_ref(&self, v: &Value) -> Option<Value> {
        let src = v.as_str()?;
        self.target_of(ObjectKind::User, src).map(Value::String)
    }

    async fn run_one(&self, a: PlannedAction) -> PhaseResult {
        let started = Instant::now();
        let out = self.execute(&a).await;
        self.finish(&a, out, started).await
    }

    /// Records one outcome; keeps the action if a reference is left to resolve.
    async fn finish(&self, a: &PlannedAction, out: Outcome, started: Instant) -> PhaseResult {
        self.record(a, &out, started).await?;
        let keep =
            (out.unresolved && out.status == "Success").then(|| (a.clone(), out.entry.clone()));
        Ok((out.status, a.action, keep))
    }

    /// A phase as units of work: user creates in Bulk batches where Bulk is used, every
    /// other action alone.
    fn units(&self, phase: Vec<PlannedAction>) -> VecDeque<Unit> {
        let size = self.bulk_size();
        let mut units = VecDeque::new();
        let mut batch = Vec::new();
        for a in phase {
            if size > 1 && a.kind == ObjectKind::User && a.action == Action::Create {
                batch.push(a);
                if batch.len() == size {
                    units.push_back(Unit::Bulk(std::mem::take(&mut batch)));
                }
            } else {
                units.push_back(Unit::One(Box::new(a)));
            }
        }
        if !batch.is_empty() {
            units.push_back(Unit::Bulk(batch));
        }
        units
    }

    /// Applies the whole plan; returns the counts.
    pub async fn apply(self: &Arc<Self>, plan: SyncPlan) -> SyncResult<CycleCounts> {
        let mut counts = CycleCounts::default();
        let stats = self.client.stats();
        let before = (
            stats.requests.load(Ordering::Relaxed),
            stats.retries.load(Ordering::Relaxed),
            stats.throttled.load(Ordering::Relaxed),
        );
        // Quiet ledger updates (new source snapshots, cancelled timers) first, in batches.
        for chunk in plan.ledger_only.chunks(500) {
            self.write_rows(chunk, &[]).await?;
        }
        let (mut first, mut groups, mut group_out, mut user_out) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in plan.actions {
            let removing = matches!(a.action, Action::Disable | Action::Delete);
            match (a.kind, removing) {
                (ObjectKind::User, false) => first.push(a),
                (ObjectKind::Group, false) => groups.push(a),
                (ObjectKind::Group, true) => group_out.push(a),
                (ObjectKind::User, true) => user_out.push(a),
            }
        }
        let mut unresolved = Vec::new();
        for phase in [first, groups, group_out, user_out] {
            let parallel = self.spec.target.max_in_flight.max(1);
            self.write_intents(&phase).await?;
            // Each object (or Bulk request of user creates) is its own task, so the work
            // spreads over the runtime's workers; at most `max_in_flight` at once. Only the
            // counts and the actions with a reference still to resolve are kept: a plan of
            // 100,000 objects is not held twice.
            let mut results: Vec<PhaseResult> = Vec::new();
            let mut tasks = tokio::task::JoinSet::new();
            let mut queue = self.units(phase);
            loop {
                while tasks.len() < parallel && !self.halt.is_set() {
                    let Some(unit) = queue.pop_front() else { break };
                    let me = self.clone();
                    match unit {
                        Unit::One(a) => {
                            tasks.spawn(async move { vec![me.run_one(*a).await] });
                        }
                        // Bulk refused earlier this cycle: its creates go one by one.
                        Unit::Bulk(batch) if self.bulk_size() == 0 => {
                            for a in batch.into_iter().rev() {
                                queue.push_front(Unit::One(Box::new(a)));
                            }
                        }
                        Unit::Bulk(mut batch) => {
                            // Cut to the size allowed now (smaller after a lost answer).
                            let size = self.bulk_size();
                            if batch.len() > size {
                                queue.push_front(Unit::Bulk(batch.split_off(size)));
                            }
                            tasks.spawn(async move { me.create_in_bulk(batch).await });
                        }
                    }
                }
                match tasks.join_next().await {
                    Some(Ok(r)) => results.extend(r),
                    Some(Err(e)) => {
                        return Err(crate::SyncError::Job(format!("an apply task failed: {e}")));
                    }
                    None => break,
                }
            }
            counts.not_started += queue.iter().map(Unit::len).sum::<usize>() as u64;
            for r in results {
                let (status, action, keep) = r?;
                *counts
                    .actions
                    .entry(action.as_str().to_string())
                    .or_default() += 1;
                *counts.statuses.entry(status.to_string()).or_default() += 1;
                unresolved.extend(keep);
            }
            self.flush().await?;
        }
        // References whose referent was created later in this cycle (Entra needs a restart
        // for these, engine-behaviour §1.2).
        for (a, entry) in unresolved {
            if self.halt.is_set() {
                break;
            }
            let started = Instant::now();
            let mut a = a;
            a.entry = entry.clone();
            a.on_failure = entry;
            a.target_id = a.entry.target_id.clone();
            let exported = Exported::from_json(&a.entry.exported);
            a.changes = a
                .desired
                .references
                .iter()
                .filter_map(|p| {
                    let new = a.desired.values.get(p)?.clone();
                    self.resolve_ref(&new)?;
                    (exported.values.get(p) != Some(&new)).then(|| PropertyChange {
                        path: p.clone(),
                        old: exported.values.get(p).cloned(),
                        new: Some(new),
                        redacted: false,
                    })
                })
                .collect();
            if a.changes.is_empty() {
                continue;
            }
            a.action = Action::Update;
            a.steps = vec![Step {
                step: "referenceResolution",
                status: "Success",
                detail: "referent now on the target".into(),
            }];
            a.detail = "reference resolved".into();
            let out = self.execute(&a).await;
            self.record(&a, &out, started).await?;
            *counts.actions.entry("Update".into()).or_default() += 1;
            *counts.statuses.entry(out.status.to_string()).or_default() += 1;
        }
        self.flush().await?;
        counts.stopped = self.halt.reason();
        counts.requests = stats.requests.load(Ordering::Relaxed) - before.0;
        counts.retries = stats.retries.load(Ordering::Relaxed) - before.1;
        counts.throttled = stats.throttled.load(Ordering::Relaxed) - before.2;
        Ok(counts)
    }

    async fn record(&self, a: &PlannedAction, out: &Outcome, started: Instant) -> SyncResult<()> {
        let mut steps = a.steps.clone();
        steps.extend(out.steps.iter().cloned());
        let mut entry = out.entry.clone();
        entry.updated_at = Timestamp::now();
        let log = SyncLogRecord {
            seq: 0,
            job: self.spec.name.clone(),
            cycle_id: self.cycle_id.clone(),
            change_id: uuid::Uuid::new_v4().to_string(),
            at: Timestamp::now(),
            kind: a.kind.as_str().into(),
            source_id: a.source_id.clone(),
            target_id: out.target_id.clone(),
            display: a.display.clone(),
            action: a.action.as_str().into(),
            status: out.status.into(),
            steps: serde_json::to_value(&steps).unwrap_or(Value::Null),
            changes: json!({
                "attributes": serde_json::to_value(redact(&out.changes)).unwrap_or(Value::Null),
                "members_added": a.members_add,
                "members_removed": a.members_remove,
            }),
            error_code: out.error_code.clone(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let full = {
            let mut q = self
                .outbox
                .lock()
                .map_err(|_| crate::SyncError::Job("outbox poisoned".into()))?;
            // Refused credentials say nothing about the object: its ledger row stays as the
            // last cycle left it, so the change is still pending next cycle.
            let unauthorized = out.error_code.as_deref() == Some("TargetUnauthorized");
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
    async fn write_intents(&self, phase: &[PlannedAction]) -> SyncResult<()> {
        let intents: Vec<LedgerEntry> = phase
            .iter()
            .filter(|a| a.action == Action::Create)
            .map(|a| LedgerEntry {
                state: "creating".into(),
                updated_at: self.now,
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
    async fn write_rows(&self, entries: &[LedgerEntry], logs: &[SyncLogRecord]) -> SyncResult<()> {
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
        let batch: Vec<(Option<LedgerEntry>, SyncLogRecord)> = match self.outbox.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return Err(crate::SyncError::Job("outbox poisoned".into())),
        };
        if batch.is_empty() {
            return Ok(());
        }
        let (entries, logs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let entries: Vec<LedgerEntry> = entries.into_iter().flatten().collect();
        self.write_rows(&entries, &logs).await?;
        Ok(())
    }

    /// Runs one action against the target. Never fails the cycle: a target error is this
    /// object's outcome. A failure puts the object in escrow (or one step up its ladder);
    /// a success takes it out.
    pub async fn execute(&self, a: &PlannedAction) -> Outcome {
        let out = self.execute_once(a).await;
        self.settle(a, out)
    }

    /// Escrow bookkeeping for an outcome, however it was reached (alone or in a Bulk
    /// request): a failure goes one step up the ladder, a success leaves it; refused
    /// credentials stop the cycle instead.
    fn settle(&self, a: &PlannedAction, mut out: Outcome) -> Outcome {
        if out.status == "Failure" {
            if out.error_code.as_deref() == Some("TargetUnauthorized") {
                // Not this object's fault: no escrow step, and no further calls.
                self.halt.stop(HALT_UNAUTHORIZED);
            } else {
                let prev = a.on_failure.escrow;
                let failures = prev.map_or(0, |e| e.failures).saturating_add(1);
                let since = prev.map_or(self.now, |e| e.since);
                let e = Escrow {
                    failures,
                    since,
                    retry_at: self.now + self.spec.escrow.wait(failures),
                };
                let detail = if self.now - since >= self.spec.escrow.abandon() {
                    format!(
                        "failing since {}: abandoned until the source object changes",
                        since.rfc3339()
                    )
                } else {
                    format!(
                        "failure {failures} in a row: retried after {} or when the source object changes",
                        e.retry_at.rfc3339()
                    )
                };
                out.steps.push(Step {
                    step: "escrow",
                    status: "Warning",
                    detail,
                });
                out.entry.escrow = Some(e);
            }
        } else {
            out.entry.escrow = None;
        }
        out
    }

    async fn execute_once(&self, a: &PlannedAction) -> Outcome {
        let ok = |entry: LedgerEntry, detail: String, steps: Vec<Step>| Outcome {
            status: "Success",
            target_id: entry.target_id.clone(),
            entry,
            error_code: None,
            detail,
            steps,
            changes: a.changes.clone(),
            unresolved: false,
        };
        match a.action {
            Action::Skip => Outcome {
                status: if a.error_code.is_some() {
                    "Failure"
                } else {
                    "Skipped"
                },
                ..ok(a.entry.clone(), a.detail.clone(), Vec::new())
            },
            Action::Conflict => Outcome {
                status: if a.error_code.as_deref() == Some("ExistingTargetObject") {
                    "Warning"
                } else {
                    "Failure"
                },
                error_code: a.error_code.clone(),
                ..ok(a.entry.clone(), a.detail.clone(), Vec::new())
            },
            Action::StagedDelete => Outcome {
                status: "Warning",
                error_code: a.error_code.clone(),
                ..ok(a.entry.clone(), a.detail.clone(), Vec::new())
            },
            _ => match self.write(a).await {
                Ok(out) => out,
                Err(e) => self.failed(a, &e),
            },
        }
    }

    /// The outcome of an action the target refused (or never answered).
    fn failed(&self, a: &PlannedAction, e: &ClientError) -> Outcome {
        let code = error_code(e);
        let mut entry = a.on_failure.clone();
        if a.action == Action::Create && e.may_have_been_processed() {
            // It may be on the target: the next cycle looks it up first.
            entry.state = "creating".into();
        }
        if code == "TargetObjectMissing" {
            // Gone from the target behind our back: unlink, so the next cycle
            // matches or creates it again.
            entry.target_id = None;
            entry.state = "missing".into();
            entry.exported = Exported::default().to_json();
        }
        Outcome {
            status: "Failure",
            target_id: a.target_id.clone(),
            entry,
            error_code: Some(code.into()),
            detail: e.to_string(),
            steps: vec![export_step("Failure", e.to_string())],
            changes: a.changes.clone(),
            unresolved: false,
        }
    }

    /// How many user creates go in one Bulk request: 0 when Bulk is not used (the job
    /// says so, the target does not offer it, or it refused a Bulk request this cycle).
    fn bulk_size(&self) -> usize {
        if self.bulk_refused.load(Ordering::Relaxed) || !self.profile.bulk {
            return 0;
        }
        let size = self
            .bulk_limit
            .load(Ordering::Relaxed)
            .min(self.profile.bulk_max_operations);
        if size < 2 { 0 } else { size }
    }

    /// A Bulk answer was lost: smaller requests for the rest of the cycle.
    fn shrink_bulk(&self, sent: usize) {
        let half = (sent / 2).max(1);
        let before = self.bulk_limit.fetch_min(half, Ordering::Relaxed);
        if half < before {
            tracing::warn!(job = %self.spec.name, operations = half,
                "a Bulk answer was lost: smaller Bulk requests for the rest of this cycle");
        }
    }

    /// User creates in Bulk requests (RFC 7644 §3.7), as many operations per request as
    /// the target's `maxOperations` and `maxPayloadSize` allow. Each operation's answer is
    /// that object's outcome, as if it had been sent alone: a 409 is adopted, a missing or
    /// 5xx answer is looked up before anything is sent again, other errors fail only that
    /// object. A Bulk request the target refuses as a whole (a 403 included: the token may
    /// not use Bulk) was not processed: its creates are sent one by one, and Bulk is not
    /// used again this cycle. A 401 is the credentials, as for any request.
    async fn create_in_bulk(&self, batch: Vec<PlannedAction>) -> Vec<PhaseResult> {
        let started = Instant::now();
        let rk = ObjectKind::User.client();
        let limit = self.profile.bulk_max_payload.saturating_mul(9) / 10;
        let mut prepared = Vec::with_capacity(batch.len());
        for a in batch {
            let (values, unresolved, body) = self.create_body(&a);
            prepared.push((a, values, unresolved, body));
        }
        // Requests within the payload limit: greedy, in order.
        let mut requests: Vec<Vec<usize>> = vec![Vec::new()];
        let mut size = 0;
        for (i, (.., body)) in prepared.iter().enumerate() {
            let n = body.to_string().len() + 96;
            if let Some(last) = requests.last_mut()
                && !last.is_empty()
                && size + n > limit
            {
                requests.push(Vec::new());
                size = 0;
            }
            size += n;
            if let Some(last) = requests.last_mut() {
                last.push(i);
            }
        }
        // Each object's answer (or the follow-up it needs: a lookup, an adoption, a create
        // on its own) is a future; they run together, bounded by the client's in-flight
        // limit, so one faulty Bulk answer does not serialise a hundred lookups.
        let mut outcomes: Vec<(usize, Result<Outcome, ClientError>)> = Vec::new();
        for part in requests {
            let ops: Vec<Value> = part
                .iter()
                .map(|i| {
                    json!({"method": "POST", "path": format!("/{}", rk.endpoint()),
                           "bulkId": format!("c{i}"), "data": prepared[*i].3})
                })
                .collect();
            let n = ops.len();
            let answer = self.client.bulk(ops).await;
            let bulk_error = answer.as_ref().err().map(same_error);
            if bulk_error
                .as_ref()
                .is_some_and(ClientError::may_have_been_processed)
            {
                self.shrink_bulk(n);
            }
            let mut answers = match answer {
                // Matched by bulkId; a target that echoes none is read in order, if it
                // answered every operation.
                Ok(results) => {
                    let in_order =
                        results.len() == n && results.iter().all(|r| r.bulk_id.is_none());
                    results
                        .into_iter()
                        .enumerate()
                        .filter_map(|(k, r)| {
                            let key = match &r.bulk_id {
                                Some(b) => b.clone(),
                                None if in_order => format!("c{}", part[k]),
                                None => return None,
                            };
                            Some((key, r))
                        })
                        .collect::<HashMap<String, scim_client::BulkResult>>()
                }
                Err(_) => HashMap::new(),
            };
            if let Some(e) = &bulk_error
                && !e.may_have_been_processed()
                && !matches!(e.status(), Some(401 | 429 | 503))
                && !self.bulk_refused.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(job = %self.spec.name, error = %e,
                    "the target refused a Bulk request: creates are sent one by one");
            }
            let follow_ups = part.into_iter().map(|i| {
                let (a, values, unresolved, _) = &prepared[i];
                let answer = answers.remove(&format!("c{i}"));
                let bulk_error = bulk_error.as_ref().map(same_error);
                async move {
                    let r = match (bulk_error, answer) {
                        // Lost answer: some operations may have been applied.
                        (Some(e), _) if e.may_have_been_processed() => {
                            self.create_after_lost_answer(a, &format!("Bulk: {e}"))
                                .await
                        }
                        // Not processed, and not Bulk's fault: the credentials, or the
                        // target throttling or down (the object fails, retried later).
                        (Some(e), _) if matches!(e.status(), Some(401 | 429 | 503)) => Err(e),
                        // Refused as a whole (400, 404, 413, 501…), or 403: this token may
                        // not use Bulk (scimd's `bulk` scope). Not processed: one by one,
                        // where a token that may not write at all is refused again.
                        (Some(_), _) => self.create(a).await,
                        (None, Some(r)) if r.is_success() => match r.id() {
                            Some(id) => {
                                let step = export_step(
                                    "Success",
                                    format!("POST /Bulk ({n} operations) → {id}"),
                                );
                                self.created(a, values.clone(), *unresolved, id, vec![step])
                                    .await
                            }
                            None => {
                                self.create_after_lost_answer(a, "the Bulk answer named no id")
                                    .await
                            }
                        },
                        (None, Some(r)) => self.create_refused(a, r.error()).await,
                        (None, None) => {
                            self.create_after_lost_answer(a, "the Bulk answer had nothing for it")
                                .await
                        }
                    };
                    (i, r)
                }
            });
            outcomes.extend(futures_util::future::join_all(follow_ups).await);
        }
        let mut results = Vec::with_capacity(outcomes.len());
        for (i, r) in outcomes {
            let a = &prepared[i].0;
            let out = match r {
                Ok(out) => out,
                Err(e) => self.failed(a, &e),
            };
            let out = self.settle(a, out);
            results.push(self.finish(a, out, started).await);
        }
        results
    }

    /// The values to send: references resolved (unresolvable ones left out).
    fn resolved_values(&self, a: &PlannedAction) -> (BTreeMap<String, Value>, bool) {
        let mut unresolved = false;
        let mut out = BTreeMap::new();
        for (k, v) in &a.desired.values {
            if a.desired.references.contains(k) {
                match self.resolve_ref(v) {
                    Some(t) => {
                        out.insert(k.clone(), t);
                    }
                    None => unresolved = true,
                }
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
        (out, unresolved)
    }

    fn path(&self, kind: ObjectKind, text: &str) -> Option<TargetPath> {
        self.mappings(kind)
            .path(text)
            .cloned()
            .or_else(|| TargetPath::parse(text, kind).ok())
    }

    async fn write(&self, a: &PlannedAction) -> Result<Outcome, ClientError> {
        let kind = a.kind;
        let rk = kind.client();
        let entry = a.entry.clone();
        let mut exported = Exported::from_json(&entry.exported);
        let mut steps = Vec::new();
        let mut unresolved = false;
        let target_id = a.target_id.clone();
        match a.action {
            Action::Create => return self.create(a).await,
            Action::Adopt => {
                let (values, unres) = self.resolved_values(a);
                unresolved = unres;
                let id = target_id.clone().unwrap_or_default();
                let changes: Vec<PropertyChange> = a
                    .changes
                    .iter()
                    .filter_map(|c| {
                        let new = values.get(&c.path)?.clone();
                        Some(PropertyChange {
                            new: Some(new),
                            ..c.clone()
                        })
                    })
                    .collect();
                if !changes.is_empty() {
                    self.send_changes(kind, &id, &changes).await?;
                    steps.push(export_step(
                        "Success",
                        format!("adopted {id}; {} attribute(s) updated", changes.len()),
                    ));
                } else {
                    steps.push(export_step(
                        "Success",
                        format!("adopted {id}; already up to date"),
                    ));
                }
                exported.values = as_exported(a, values);
                if kind == ObjectKind::Group {
                    // What the group already holds counts as exported.
                    if let Some(g) = self.client.get(rk, &id).await? {
                        let present: HashSet<String> = g
                            .get("members")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|m| {
                                m.get("value").and_then(Value::as_str).map(str::to_string)
                            })
                            .collect();
                        for src in &a.members_add {
                            if let Some(t) = self
                                .target_of(ObjectKind::User, src)
                                .or_else(|| self.target_of(ObjectKind::Group, src))
                                && present.contains(&t)
                            {
                                exported.members.insert(src.clone(), t);
                            }
                        }
                    }
                }
            }
            Action::Update | Action::Enable => {
                let id = target_id.clone().unwrap_or_default();
                let mut sendable = Vec::new();
                for c in &a.changes {
                    if a.desired.references.contains(&c.path) {
                        match c.new.as_ref().map(|v| self.resolve_ref(v)) {
                            Some(Some(t)) => sendable.push(PropertyChange {
                                new: Some(t),
                                ..c.clone()
                            }),
                            Some(None) => unresolved = true,
                            None => sendable.push(c.clone()),
                        }
                    } else {
                        sendable.push(c.clone());
                    }
                }
                if !sendable.is_empty() {
                    self.send_changes(kind, &id, &sendable).await?;
                    steps.push(export_step(
                        "Success",
                        format!("{} attribute(s) sent", sendable.len()),
                    ));
                }
                for c in &sendable {
                    match &c.new {
                        Some(v) => {
                            let v = if a.desired.references.contains(&c.path) {
                                a.desired
                                    .values
                                    .get(&c.path)
                                    .cloned()
                                    .unwrap_or_else(|| v.clone())
                            } else {
                                v.clone()
                            };
                            exported.values.insert(c.path.clone(), v);
                        }
                        None => {
                            exported.values.remove(&c.path);
                        }
                    }
                }
            }
            Action::Disable => {
                let id = target_id.clone().unwrap_or_default();
                let change = PropertyChange {
                    path: "active".into(),
                    old: None,
                    new: Some(Value::Bool(false)),
                    redacted: false,
                };
                self.send_changes(kind, &id, &[change]).await?;
                steps.push(export_step("Success", "active set to false"));
                exported = Exported::from_json(&entry.exported);
            }
            Action::Delete => {
                let id = a.target_id.clone().unwrap_or_default();
                let existed = self.client.delete(rk, &id).await?;
                steps.push(export_step(
                    "Success",
                    if existed {
                        format!("DELETE /{}/{id}", rk.endpoint())
                    } else {
                        format!("{id} was already gone")
                    },
                ));
                if let Ok(mut m) = self.live.lock() {
                    m.remove(&(kind, a.source_id.clone()));
                }
                return Ok(Outcome::success(a, id, entry, steps, false));
            }
            Action::Skip | Action::Conflict | Action::StagedDelete => {}
        }
        let id = target_id.unwrap_or_default();
        self.linked(a, id, exported, steps, unresolved).await
    }

    /// The values a create sends (references resolved; unresolvable ones left out, which
    /// the flag says) and its body.
    fn create_body(&self, a: &PlannedAction) -> (BTreeMap<String, Value>, bool, Value) {
        let (values, unresolved) = self.resolved_values(a);
        let mut body = json!({"schemas": [a.kind.client().schema()]});
        for (k, v) in &values {
            if let Some(p) = self.path(a.kind, k) {
                p.write(&mut body, v.clone());
            }
        }
        (values, unresolved, body)
    }

    /// One create by POST: a 409 is adopted (policy permitting), a lost answer looked up
    /// before anything is sent again.
    async fn create(&self, a: &PlannedAction) -> Result<Outcome, ClientError> {
        let rk = a.kind.client();
        let (values, unresolved, body) = self.create_body(a);
        match self.client.create(rk, &body).await {
            Ok(created) => {
                let id = created
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ClientError::Protocol("the created resource has no id".into()))?
                    .to_string();
                let step = export_step("Success", format!("POST /{} → {id}", rk.endpoint()));
                self.created(a, values, unresolved, id, vec![step]).await
            }
            Err(e) => self.create_refused(a, e).await,
        }
    }

    /// A create the target answered with an error: a 409 is adopted (policy permitting),
    /// an answer that may hide a done create is looked up first, the rest is the error.
    async fn create_refused(
        &self,
        a: &PlannedAction,
        e: ClientError,
    ) -> Result<Outcome, ClientError> {
        if e.is_conflict() && self.spec.matching.on_conflict == ConflictPolicy::Adopt {
            let step = export_step(
                "Warning",
                "409 on create: looking the object up to adopt it",
            );
            return self.adopt_after_conflict(a, vec![step]).await;
        }
        if e.may_have_been_processed() {
            return self.create_after_lost_answer(a, &e.to_string()).await;
        }
        Err(e)
    }

    /// The answer to a create was lost (or never said what happened): the object may have
    /// been made. Look it up before sending it again, so a retry never makes a duplicate.
    async fn create_after_lost_answer(
        &self,
        a: &PlannedAction,
        why: &str,
    ) -> Result<Outcome, ClientError> {
        let mut steps = vec![export_step(
            "Warning",
            format!("no answer to the create ({why}): looking it up before sending it again"),
        )];
        let free = self.unowned_matches(a).await?;
        if !free.is_empty() {
            return self.adopt_match(a, &free, steps).await;
        }
        let rk = a.kind.client();
        let (values, unresolved, body) = self.create_body(a);
        let created = self.client.create(rk, &body).await?;
        let id = created
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Protocol("the created resource has no id".into()))?
            .to_string();
        steps.push(export_step(
            "Success",
            format!("POST /{} → {id}", rk.endpoint()),
        ));
        self.created(a, values, unresolved, id, steps).await
    }

    /// A create the target made, with this id: linked, and what was sent remembered.
    async fn created(
        &self,
        a: &PlannedAction,
        values: BTreeMap<String, Value>,
        unresolved: bool,
        id: String,
        steps: Vec<Step>,
    ) -> Result<Outcome, ClientError> {
        let mut exported = Exported::from_json(&a.entry.exported);
        exported.values = as_exported(a, values);
        self.linked(a, id, exported, steps, unresolved).await
    }

    /// Links the object to its target id, remembers what was exported, and sends its
    /// membership deltas (groups).
    async fn linked(
        &self,
        a: &PlannedAction,
        id: String,
        mut exported: Exported,
        mut steps: Vec<Step>,
        unresolved: bool,
    ) -> Result<Outcome, ClientError> {
        let kind = a.kind;
        let mut entry = a.entry.clone();
        if let Ok(mut m) = self.live.lock() {
            m.insert((kind, a.source_id.clone()), id.clone());
        }
        if let Ok(mut o) = self.owned.lock() {
            o.insert(id.clone());
        }
        entry.target_id = Some(id.clone());
        exported.unresolved = unresolved;
        entry.exported = exported.to_json();
        // Membership deltas (groups), chunked; progress is kept even if a chunk fails.
        let mut failure = None;
        if kind == ObjectKind::Group && (!a.members_add.is_empty() || !a.members_remove.is_empty())
        {
            if let Err(e) = self.members(&id, a, &mut exported, &mut steps).await {
                failure = Some(e);
            }
            entry.exported = exported.to_json();
        }
        let mut out = Outcome::success(a, id, entry, steps, unresolved);
        if unresolved {
            out.steps.push(Step {
                step: "referenceResolution",
                status: "Warning",
                detail: "a referenced user is not on the target yet; it is set once it is".into(),
            });
        }
        if let Some(e) = failure {
            out.status = "Failure";
            out.error_code = Some(error_code(&e).into());
            out.steps
                .push(export_step("Failure", format!("membership: {e}")));
        }
        Ok(out)
    }

    async fn members(
        &self,
        id: &str,
        a: &PlannedAction,
        exported: &mut Exported,
        steps: &mut Vec<Step>,
    ) -> Result<(), ClientError> {
        let chunk = self.spec.target.members_per_request.max(1);
        let adds: Vec<(String, String)> = a
            .members_add
            .iter()
            .filter(|s| !exported.members.contains_key(*s))
            .filter_map(|s| {
                self.target_of(ObjectKind::User, s)
                    .or_else(|| self.target_of(ObjectKind::Group, s))
                    .map(|t| (s.clone(), t))
            })
            .collect();
        let skipped = a.members_add.len() - adds.len();
        for part in adds.chunks(chunk) {
            let value: Vec<Value> = part.iter().map(|(_, t)| json!({"value": t})).collect();
            self.patch_or_put_members(
                id,
                vec![json!({"op": "add", "path": "members", "value": value})],
                part,
                &[],
            )
            .await?;
            for (s, t) in part {
                exported.members.insert(s.clone(), t.clone());
            }
        }
        let removes: Vec<(String, String)> = a
            .members_remove
            .iter()
            .filter_map(|s| exported.members.get(s).map(|t| (s.clone(), t.clone())))
            .collect();
        for part in removes.chunks(chunk) {
            let ops: Vec<Value> = part
                .iter()
                .map(|(_, t)| json!({"op": "remove", "path": format!("members[value eq {}]", scim_client::filter_literal(t))}))
                .collect();
            self.patch_or_put_members(id, ops, &[], part).await?;
            for (s, _) in part {
                exported.members.remove(s);
            }
        }
        steps.push(export_step(
            "Success",
            format!(
                "members: {} added, {} removed{}",
                adds.len(),
                removes.len(),
                if skipped > 0 {
                    format!(", {skipped} waiting for their user to be provisioned")
                } else {
                    String::new()
                }
            ),
        ));
        Ok(())
    }

    /// Membership change by PATCH, or read-modify-PUT where the target has no PATCH.
    async fn patch_or_put_members(
        &self,
        id: &str,
        ops: Vec<Value>,
        add: &[(String, String)],
        remove: &[(String, String)],
    ) -> Result<(), ClientError> {
        let rk = ObjectKind::Group.client();
        if self.use_patch() {
            let r = self.client.patch(rk, id, &ops).await?;
            if !r.found {
                return Err(gone(ObjectKind::Group, id));
            }
            return Ok(());
        }
        let mut g = self
            .client
            .get(rk, id)
            .await?
            .ok_or_else(|| gone(ObjectKind::Group, id))?;
        let mut members: Vec<Value> = g
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let drop: HashSet<&str> = remove.iter().map(|(_, t)| t.as_str()).collect();
        members.retain(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .is_none_or(|v| !drop.contains(v))
        });
        for (_, t) in add {
            if !members
                .iter()
                .any(|m| m.get("value").and_then(Value::as_str) == Some(t))
            {
                members.push(json!({"value": t}));
            }
        }
        if let Some(o) = g.as_object_mut() {
            o.insert("members".into(), Value::Array(members));
            o.remove("meta");
        }
        let r = self.client.replace(rk, id, &g).await?;
        if !r.found {
            return Err(gone(ObjectKind::Group, id));
        }
        Ok(())
    }

    /// Sends attribute changes: one PATCH (add for new values, replace for changed ones,
    /// remove for cleared ones; RFC 7644 §3.5.2), or GET + PUT.
    async fn send_changes(
        &self,
        kind: ObjectKind,
        id: &str,
        changes: &[PropertyChange],
    ) -> Result<(), ClientError> {
        let rk = kind.client();
        let gone = || gone(kind, id);
        if self.use_patch() {
            let ops: Vec<Value> = changes
                .iter()
                .map(|c| match (&c.old, &c.new) {
                    (_, None) => json!({"op": "remove", "path": c.path}),
                    (None, Some(v)) => json!({"op": "add", "path": c.path, "value": v}),
                    (Some(_), Some(v)) => json!({"op": "replace", "path": c.path, "value": v}),
                })
                .collect();
            let r = self.client.patch(rk, id, &ops).await?;
            return if r.found { Ok(()) } else { Err(gone()) };
        }
        let mut current = self.client.get(rk, id).await?.ok_or_else(gone)?;
        for c in changes {
            if let Some(p) = self.path(kind, &c.path) {
                p.write(&mut current, c.new.clone().unwrap_or(Value::Null));
            }
        }
        if let Some(o) = current.as_object_mut() {
            o.remove("meta");
        }
        let r = self.client.replace(rk, id, &current).await?;
        if r.found { Ok(()) } else { Err(gone()) }
    }

    /// A 409 on create: find the existing object by the matching attributes and adopt it
    /// when exactly one that nobody owns matches.
    async fn adopt_after_conflict(
        &self,
        a: &PlannedAction,
        steps: Vec<Step>,
    ) -> Result<Outcome, ClientError> {
        let free = self.unowned_matches(a).await?;
        self.adopt_match(a, &free, steps).await
    }

    /// Target objects that match `a` by its matching attributes (then by the attribute the
    /// target makes unique) and that no other source object owns.
    async fn unowned_matches(&self, a: &PlannedAction) -> Result<Vec<Value>, ClientError> {
        let kind = a.kind;
        let lookups = Lookups {
            client: self.client.clone(),
        };
        let mut found = Vec::new();
        // The matching attributes first, then the attribute a target makes unique
        // (userName, displayName), which is what a 409 is usually about.
        let unique = match kind {
            ObjectKind::User => "userName",
            ObjectKind::Group => "displayName",
        };
        let mut paths = self.mappings(kind).matching.clone();
        if let Some(p) = self.path(kind, unique)
            && !paths.iter().any(|x| x.text == unique)
        {
            paths.push(p);
        }
        for p in &paths {
            let Some(v) = a.desired.values.get(&p.text) else {
                continue;
            };
            found = lookups.candidates(kind, p, v).await.map_err(|e| match e {
                crate::SyncError::Target(c) => c,
                other => ClientError::Protocol(other.to_string()),
            })?;
            if !found.is_empty() {
                break;
            }
        }
        let owned = self.owned.lock().map(|o| o.clone()).unwrap_or_default();
        Ok(found
            .into_iter()
            .filter(|r| {
                r.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| !owned.contains(id))
            })
            .collect())
    }

    /// Adopts the one free match, or fails the object as a conflict.
    async fn adopt_match(
        &self,
        a: &PlannedAction,
        free: &[Value],
        mut steps: Vec<Step>,
    ) -> Result<Outcome, ClientError> {
        let kind = a.kind;
        if free.len() != 1 {
            steps.push(export_step(
                "Failure",
                format!("{} unowned object(s) match; not adopted", free.len()),
            ));
            return Ok(Outcome {
                status: "Failure",
                target_id: None,
                entry: LedgerEntry {
                    state: "conflict".into(),
                    ..a.on_failure.clone()
                },
                error_code: Some(
                    if free.len() > 1 {
                        "DuplicateTargetEntries"
                    } else {
                        "TargetConflict"
                    }
                    .into(),
                ),
                detail:
                    "the target reports the object exists, but it cannot be matched to one object"
                        .into(),
                steps,
                changes: a.changes.clone(),
                unresolved: false,
            });
        }
        let id = free[0]
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut adopt = a.clone();
        adopt.action = Action::Adopt;
        adopt.target_id = Some(id.clone());
        adopt.entry.target_id = Some(id);
        let m = self.mappings(kind);
        let current: BTreeMap<String, Value> = m
            .list
            .iter()
            .filter_map(|mm| {
                mm.target
                    .read(&free[0])
                    .map(|v| (mm.target.text.clone(), v))
            })
            .collect();
        adopt.changes = a
            .desired
            .values
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, v)| PropertyChange {
                path: k.clone(),
                old: current.get(k).cloned(),
                new: Some(v.clone()),
                redacted: a.desired.redacted.contains(k),
            })
            .collect();
        let mut out = Box::pin(self.write(&adopt)).await?;
        steps.append(&mut out.steps);
        out.steps = steps;
        Ok(out)
    }
}
