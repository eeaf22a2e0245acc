//! The applier: sends exactly what the plan says, object by object, and records each
//! outcome (ledger row + log row) in one transaction, so what the target holds and what the
//! ledger says never disagree by more than the one request in flight.
//!
//! Order (engine-behaviour §8.6): users created, adopted, updated and enabled; then groups,
//! with membership added and removed in chunks; then references whose referent was created
//! in this cycle; then groups deleted; then users disabled and deleted. One object's failure
//! never stops the cycle.
//!
//! | module | job |
//! |---|---|
//! | here | the applier's state, the phases, the apply loop |
//! | `write` | one object's request(s) to a linked object: adopt, update, enable, disable, delete |
//! | `create` | creates: POST, a 409 adopted, a lost answer looked up, the new link |
//! | `bulk` | user creates in Bulk requests, each answer matched back to its object |
//! | `members` | group membership deltas, in chunks |
//! | `record` | outcomes, escrow, the ledger and log rows (batched, fenced) |

mod bulk;
mod create;
mod members;
mod record;
mod write;

pub use record::{Outcome, RECORD_BATCH};

use crate::error::{SyncError, SyncResult};
use crate::job::{JobSpec, UpdateMethod};
use crate::mapping::Mappings;
use crate::model::{Clock, Key, ObjectKind};
use crate::plan::{PlannedAction, SyncPlan};
use scim_client::{ScimClient, TargetProfile};
use scim_core::{
    CycleCounts, Exported, LeaseFence, LedgerEntry, PropertyChange, Status, Step, StepKind,
    SyncAction, SyncLogRecord, SyncStore,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

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
/// would fail the same way (the job is quarantined, docs/sync.md §10).
pub const HALT_UNAUTHORIZED: &str = "the target refused the credentials (401/403)";

/// The reason a cycle stops when another node has taken its lease over.
pub const HALT_LEASE_LOST: &str = "the job's lease was taken over by another node";

/// What the applier works with, fixed for the cycle.
pub struct ApplyConfig {
    pub spec: JobSpec,
    pub users: Mappings,
    pub groups: Mappings,
    pub client: ScimClient,
    pub profile: TargetProfile,
    pub cycle_id: String,
}

/// Who is linked to what: source → target ids (from the ledger, filled in as objects are
/// created) and the target ids some source object owns.
#[derive(Default)]
struct Links {
    live: HashMap<Key, String>,
    owned: HashSet<String>,
}

/// Bulk as this cycle uses it.
struct BulkState {
    /// The target refused a Bulk request as a whole: the rest of the cycle sends creates
    /// one by one.
    refused: AtomicBool,
    /// Operations per Bulk request now: the job's `bulk` at first, halved each time a Bulk
    /// answer is lost (a target too slow for the requests in flight times them out).
    limit: AtomicUsize,
}

pub struct Applier {
    cfg: ApplyConfig,
    store: Arc<dyn SyncStore>,
    clock: Clock,
    halt: Arc<Halt>,
    links: Mutex<Links>,
    /// Outcomes not written yet (see [`RECORD_BATCH`]).
    outbox: Mutex<Vec<(Option<LedgerEntry>, Option<SyncLogRecord>)>>,
    bulk: BulkState,
}

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

/// One object's status and action (none for an outcome that is no change), and the action
/// again if a reference is left to resolve.
type Done = (
    Status,
    Option<SyncAction>,
    Option<(PlannedAction, LedgerEntry)>,
);

impl Applier {
    /// The applier of one cycle: `ledger` says what is linked already.
    pub fn new(
        cfg: ApplyConfig,
        ledger: &std::collections::BTreeMap<Key, LedgerEntry>,
        store: Arc<dyn SyncStore>,
        clock: Clock,
        halt: Arc<Halt>,
    ) -> Arc<Self> {
        let live: HashMap<Key, String> = ledger
            .iter()
            .filter_map(|(k, e)| Some((k.clone(), e.target_id.clone()?)))
            .collect();
        let owned = live.values().cloned().collect();
        let bulk = cfg.spec.target.bulk;
        Arc::new(Self {
            cfg,
            store,
            clock,
            halt,
            links: Mutex::new(Links { live, owned }),
            outbox: Mutex::new(Vec::new()),
            bulk: BulkState {
                refused: AtomicBool::new(false),
                limit: AtomicUsize::new(bulk),
            },
        })
    }

    fn spec(&self) -> &JobSpec {
        &self.cfg.spec
    }

    fn mappings(&self, kind: ObjectKind) -> &Mappings {
        match kind {
            ObjectKind::User => &self.cfg.users,
            ObjectKind::Group => &self.cfg.groups,
        }
    }

    fn use_patch(&self) -> bool {
        match self.spec().target.update {
            UpdateMethod::Auto => self.cfg.profile.patch,
            UpdateMethod::Patch => true,
            UpdateMethod::Put => false,
        }
    }

    fn target_of(&self, kind: ObjectKind, source_id: &str) -> Option<String> {
        self.links
            .lock()
            .ok()
            .and_then(|m| m.live.get(&(kind, source_id.to_string())).cloned())
    }

    fn link(&self, key: Key, id: &str) {
        if let Ok(mut l) = self.links.lock() {
            l.live.insert(key, id.to_string());
            l.owned.insert(id.to_string());
        }
    }

    fn unlink(&self, key: &Key) {
        if let Ok(mut l) = self.links.lock() {
            l.live.remove(key);
        }
    }

    fn owned(&self) -> HashSet<String> {
        self.links
            .lock()
            .map(|l| l.owned.clone())
            .unwrap_or_default()
    }

    /// A phase as units of work: user creates in Bulk batches where Bulk is used, every
    /// other action alone.
    fn units(&self, phase: Vec<PlannedAction>) -> VecDeque<Unit> {
        let size = self.bulk_size();
        let mut units = VecDeque::new();
        let mut batch = Vec::new();
        for a in phase {
            if size > 1 && a.kind == ObjectKind::User && a.action == SyncAction::Create {
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
        let stats = self.cfg.client.stats();
        let before = (
            stats.requests.load(Ordering::Relaxed),
            stats.retries.load(Ordering::Relaxed),
            stats.throttled.load(Ordering::Relaxed),
        );
        // Quiet ledger updates (new source snapshots, cancelled timers) first, in batches.
        for chunk in plan.ledger_only.chunks(500) {
            self.write_rows(chunk, &[]).await?;
        }
        let mut phases: [Vec<PlannedAction>; 4] = Default::default();
        for a in plan.actions {
            let removing = matches!(a.action, SyncAction::Disable | SyncAction::Delete);
            let i = match (a.kind, removing) {
                (ObjectKind::User, false) => 0,
                (ObjectKind::Group, false) => 1,
                (ObjectKind::Group, true) => 2,
                (ObjectKind::User, true) => 3,
            };
            phases[i].push(a);
        }
        let mut unresolved = Vec::new();
        for phase in phases {
            self.write_intents(&phase).await?;
            let (results, not_started) = self.run_phase(phase).await?;
            counts.not_started += not_started;
            for (status, action, keep) in results {
                if let Some(action) = action {
                    *counts.actions.entry(action).or_default() += 1;
                    *counts.statuses.entry(status).or_default() += 1;
                }
                unresolved.extend(keep);
            }
            self.flush().await?;
        }
        self.resolve_references(unresolved, &mut counts).await?;
        self.flush().await?;
        counts.stopped = self.halt.reason();
        counts.requests = stats.requests.load(Ordering::Relaxed) - before.0;
        counts.retries = stats.retries.load(Ordering::Relaxed) - before.1;
        counts.throttled = stats.throttled.load(Ordering::Relaxed) - before.2;
        Ok(counts)
    }

    /// One phase: each object (or Bulk request of user creates) is its own task, so the
    /// work spreads over the runtime's workers; at most `max_in_flight` at once. Only the
    /// counts and the actions with a reference still to resolve are kept: a plan of 100,000
    /// objects is not held twice. Returns the results and how many were not started.
    async fn run_phase(
        self: &Arc<Self>,
        phase: Vec<PlannedAction>,
    ) -> SyncResult<(Vec<Done>, u64)> {
        let parallel = self.spec().target.max_in_flight.max(1);
        let mut results: Vec<Done> = Vec::new();
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
                Some(Ok(r)) => {
                    for one in r {
                        results.push(one?);
                    }
                }
                Some(Err(e)) => {
                    return Err(SyncError::Internal(format!("an apply task failed: {e}")));
                }
                None => break,
            }
        }
        let not_started = queue.iter().map(Unit::len).sum::<usize>() as u64;
        Ok((results, not_started))
    }

    /// References whose referent was created later in this cycle (Entra needs a restart
    /// for these, engine-behaviour §1.2).
    async fn resolve_references(
        &self,
        unresolved: Vec<(PlannedAction, LedgerEntry)>,
        counts: &mut CycleCounts,
    ) -> SyncResult<()> {
        for (mut a, entry) in unresolved {
            if self.halt.is_set() {
                break;
            }
            let started = Instant::now();
            a.entry = entry.clone();
            a.on_failure = entry;
            a.target_id = a.entry.target_id.clone();
            let exported: &Exported = &a.entry.exported;
            let changes: Vec<PropertyChange> = a
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
            if changes.is_empty() {
                continue;
            }
            a.changes = changes;
            a.action = SyncAction::Update;
            a.steps = vec![Step::new(
                StepKind::ReferenceResolution,
                Status::Success,
                "referent now on the target",
            )];
            a.detail = "reference resolved".into();
            a.members_add.clear();
            a.members_remove.clear();
            let out = self.execute(&a).await;
            self.record(&a, &out, started).await?;
            if !out.quiet {
                *counts.actions.entry(SyncAction::Update).or_default() += 1;
                *counts.statuses.entry(out.status).or_default() += 1;
            }
        }
        Ok(())
    }

    /// A reference value (a source id) as the referent's target id.
    fn resolve_ref(&self, v: &serde_json::Value) -> Option<serde_json::Value> {
        let src = v.as_str()?;
        self.target_of(ObjectKind::User, src)
            .map(serde_json::Value::String)
    }

    async fn run_one(&self, a: PlannedAction) -> SyncResult<Done> {
        let started = Instant::now();
        let out = self.execute(&a).await;
        self.finish(&a, out, started).await
    }

    /// Records one outcome; keeps the action if a reference is left to resolve.
    async fn finish(&self, a: &PlannedAction, out: Outcome, started: Instant) -> SyncResult<Done> {
        self.record(a, &out, started).await?;
        let keep = (out.unresolved && out.status == Status::Success)
            .then(|| (a.clone(), out.entry.clone()));
        Ok((out.status, (!out.quiet).then_some(a.action), keep))
    }

    /// How many user creates go in one Bulk request: 0 when Bulk is not used (the job
    /// says so, the target does not offer it, or it refused a Bulk request this cycle).
    fn bulk_size(&self) -> usize {
        if self.bulk.refused.load(Ordering::Relaxed) || !self.cfg.profile.bulk {
            return 0;
        }
        let size = self
            .bulk
            .limit
            .load(Ordering::Relaxed)
            .min(self.cfg.profile.bulk_max_operations);
        if size < 2 { 0 } else { size }
    }
}
