//! The planner: for every source object and ledger entry, the action (create, update,
//! disable, enable, delete, adopt, skip, conflict, staged delete) with its attribute diff,
//! computed **without writing to the target** (it may read it, to match). `run` applies
//! exactly what this code planned (engine-behaviour §8.1).
//!
//! This file orchestrates; the rules are pure functions with table tests:
//!
//! | module | rule |
//! |---|---|
//! | `scoping` | who is in scope, which groups are provisioned |
//! | `matching` | one candidate adopted, several a conflict, none a create |
//! | `diff` | what changed since the last export |
//! | `deprovision` | the trigger × action × delay table and its timers |
//! | `breaker` | too many disables and deletes: all staged |
//! | `object` | one object's plan from the above (the only part that reads the target) |
//!
//! Rules that keep the engine safe: only ledger-linked objects are updated, disabled or
//! deleted (§8.2); a target object is adopted only when exactly one matches; an object the
//! source reported gone is never rebuilt from its last snapshot; a cycle where nothing
//! changed plans nothing.

pub mod breaker;
pub mod deprovision;
pub mod diff;
pub mod matching;
mod members;
mod object;
pub mod scoping;

use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::mapping::{Mapped, Mappings};
use crate::model::{Key, ObjectKind, SourceObject};
use crate::target::TargetMatcher;
use scim_core::{
    CycleMode, ErrorCode, LedgerEntry, Pending, PendingStep, PropertyChange, Step, StepKind,
    SyncAction, Timestamp, Trigger,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// `changes` in a plan's JSON: redacted values masked.
fn serialize_masked<S: serde::Serializer>(
    changes: &[PropertyChange],
    s: S,
) -> Result<S::Ok, S::Error> {
    changes
        .iter()
        .map(PropertyChange::masked)
        .collect::<Vec<_>>()
        .serialize(s)
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedAction {
    pub kind: ObjectKind,
    pub source_id: String,
    pub display: String,
    pub action: SyncAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_masked"
    )]
    pub changes: Vec<PropertyChange>,
    /// Groups: members (source ids) to add and remove.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_remove: Vec<String>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    pub steps: Vec<Step>,
    /// What the mappings gave (create, adopt, update).
    #[serde(skip)]
    pub desired: Mapped,
    /// The adopted target object as read.
    #[serde(skip)]
    pub matched: Option<Value>,
    /// A disable or delete an operator approved after the breaker held it.
    #[serde(skip)]
    pub approved: bool,
    /// Why a disable or delete happens (what the breaker stages it under).
    #[serde(skip)]
    pub trigger: Option<Trigger>,
    /// The ledger entry as it will be once the action succeeds.
    #[serde(skip)]
    pub entry: LedgerEntry,
    /// The ledger entry as it stays if the action fails (the new source snapshot kept, so
    /// the change is retried next cycle).
    #[serde(skip)]
    pub on_failure: LedgerEntry,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncPlan {
    pub job: String,
    pub mode: CycleMode,
    pub actions: Vec<PlannedAction>,
    /// Counts by action.
    pub totals: BTreeMap<SyncAction, u64>,
    /// Why the breaker held this cycle's disables and deletes, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    /// Ledger rows whose source snapshot changed without any target change.
    #[serde(skip)]
    pub ledger_only: Vec<LedgerEntry>,
}

impl SyncPlan {
    /// Requests the plan will send at least (one per writing action; memberships chunked).
    pub fn writes(&self) -> usize {
        self.actions.iter().filter(|a| a.action.writes()).count()
    }
}

/// One object's plan.
pub enum Planned {
    Action(Box<PlannedAction>),
    /// No target change; the ledger row changes (new source snapshot, cancelled timer).
    Quiet(Box<LedgerEntry>),
    Unchanged,
}

pub struct Planner<'a> {
    pub spec: &'a JobSpec,
    pub users: &'a Mappings,
    pub groups: &'a Mappings,
    pub now: Timestamp,
    /// The job's mappings and scope are those of the last cycle: an active, linked object
    /// whose source snapshot did not change needs no evaluation (the no-change cycle).
    pub config_unchanged: bool,
}

/// A disable or delete the breaker would hold (not one an operator approved).
fn held(a: &PlannedAction) -> bool {
    matches!(a.action, SyncAction::Disable | SyncAction::Delete) && !a.approved
}

/// The complete-read guard over a guarded source's full read, per kind: the objects this
/// cycle would disable or delete for being absent, with those already staged for it, against
/// what the ledger manages and what was read ([`breaker::guard`]). Each kind whose read looks
/// truncated, with why: a groups read that came back empty says nothing of the users read.
fn guard(actions: &[PlannedAction], input: &PlanInput<'_>) -> Vec<(ObjectKind, String)> {
    [(ObjectKind::User, "users"), (ObjectKind::Group, "groups")]
        .into_iter()
        .filter_map(|(kind, noun)| {
            let new = actions
                .iter()
                .filter(|a| a.kind == kind && held(a) && a.trigger == Some(Trigger::Deleted))
                .count() as u64;
            if new == 0 {
                return None;
            }
            let staged = input
                .ledger
                .iter()
                .filter(|(k, e)| {
                    k.0 == kind
                        && !input.objects.contains_key(*k)
                        && e.pending.is_some_and(|p| {
                            p.step == PendingStep::Staged && p.trigger == Trigger::Deleted
                        })
                })
                .count() as u64;
            let of_kind = |e: &&LedgerEntry| e.kind == kind && e.target_id.is_some();
            let managed = input.ledger.values().filter(of_kind).count() as u64;
            let read = input.objects.keys().filter(|k| k.0 == kind).count() as u64;
            breaker::guard(noun, new + staged, managed, read).map(|why| (kind, why))
        })
        .collect()
}

/// Inputs the planner reads.
pub struct PlanInput<'a> {
    /// The source as it is now.
    pub objects: &'a BTreeMap<Key, SourceObject>,
    pub ledger: &'a BTreeMap<Key, LedgerEntry>,
    pub matcher: &'a dyn TargetMatcher,
    /// The initial cycle has not completed yet (a resumed initial cycle is still initial).
    pub initial: bool,
    /// The source's full read is under the complete-read guard ([`breaker::guard`]).
    pub guarded: bool,
}

fn linked(e: Option<&LedgerEntry>) -> Option<&str> {
    e.and_then(|e| e.target_id.as_deref())
}

pub(crate) fn step(kind: StepKind, status: scim_core::Status, detail: impl Into<String>) -> Step {
    Step::new(kind, status, detail)
}

impl Planner<'_> {
    fn mappings(&self, kind: ObjectKind) -> &Mappings {
        match kind {
            ObjectKind::User => self.users,
            ObjectKind::Group => self.groups,
        }
    }

    /// Builds the plan.
    pub async fn plan(&self, input: &PlanInput<'_>) -> SyncResult<SyncPlan> {
        let scoping = scoping::Scoping::new(self.spec, input.objects).map_err(SyncError::Job)?;
        // Target ids already linked (a match to one of them is someone else's object).
        let owned: HashSet<&str> = input
            .ledger
            .values()
            .filter_map(|e| e.target_id.as_deref())
            .collect();
        let ctx = object::Ctx {
            input,
            owned: &owned,
        };
        let keys: BTreeSet<&Key> = input.objects.keys().chain(input.ledger.keys()).collect();
        let mut actions = Vec::new();
        let mut ledger_only = Vec::new();
        let mut keep = |p: Planned, actions: &mut Vec<PlannedAction>| match p {
            Planned::Action(a) => actions.push(*a),
            Planned::Quiet(e) => ledger_only.push(*e),
            Planned::Unchanged => {}
        };
        // Users first (the groups' members are the users that stay).
        let mut active_users: HashSet<String> = HashSet::new();
        for key in keys.iter().filter(|k| k.0 == ObjectKind::User) {
            let obj = input.objects.get(*key);
            let entry = input.ledger.get(*key);
            let trigger = match obj {
                None => Some((Trigger::Deleted, "deleted at the source".to_string())),
                Some(u) => match scoping.user(u) {
                    Err(why) => Some((Trigger::OutOfScope, why)),
                    Ok(_) if u.suspended => {
                        Some((Trigger::Suspended, "suspended at the source".to_string()))
                    }
                    Ok(_) => None,
                },
            };
            let stays = trigger.is_none();
            // Planning is CPU work between awaits; give the worker back now and then.
            tokio::task::consume_budget().await;
            let planned = self.plan_object(&ctx, key, obj, entry, trigger).await?;
            let created = matches!(&planned, Planned::Action(a)
                if matches!(a.action, SyncAction::Create | SyncAction::Adopt));
            if stays && (linked(entry).is_some() || created) {
                active_users.insert(key.1.clone());
            }
            keep(planned, &mut actions);
        }
        let active_groups: HashSet<String> = keys
            .iter()
            .filter(|k| k.0 == ObjectKind::Group)
            .filter_map(|k| input.objects.get(*k))
            .filter(|g| scoping.group(g))
            .map(|g| g.id.clone())
            .collect();
        for key in keys.iter().filter(|k| k.0 == ObjectKind::Group) {
            let obj = input.objects.get(*key);
            let entry = input.ledger.get(*key);
            let trigger = match obj {
                None => Some((Trigger::Deleted, "deleted at the source".to_string())),
                Some(g) if !scoping.group(g) => {
                    Some((Trigger::OutOfScope, "group not in scope".to_string()))
                }
                Some(_) => None,
            };
            let stays = trigger.is_none();
            tokio::task::consume_budget().await;
            let mut planned = self.plan_object(&ctx, key, obj, entry, trigger).await?;
            if let Some(g) = obj.filter(|_| stays) {
                let members = |m: &String| active_users.contains(m) || active_groups.contains(m);
                let held = entry.is_some_and(|e| self.held_in_escrow(e));
                planned = members::with_members(planned, key, g, entry, held, &members);
            }
            keep(planned, &mut actions);
        }
        let guard = if input.guarded {
            guard(&actions, input)
        } else {
            Vec::new()
        };
        let breaker = self.breaker(&mut actions, input.ledger, guard);
        let mut totals = BTreeMap::new();
        for a in &actions {
            *totals.entry(a.action).or_insert(0) += 1;
        }
        Ok(SyncPlan {
            job: self.spec.name.clone(),
            mode: if input.initial {
                CycleMode::Initial
            } else {
                CycleMode::Incremental
            },
            actions,
            totals,
            breaker,
            ledger_only,
        })
    }

    /// The deletion breaker: too many disables + deletes this cycle → all staged. `guard`
    /// (the kinds whose read the complete-read guard takes for truncated, with why) stages
    /// that kind's whatever the breaker's settings, one way: a truncated users read holds the
    /// groups' too (a file source builds its groups from the users' rows, so the groups of
    /// the missing part are missing with it), an empty groups read holds only groups. The
    /// rest go ahead unless the breaker trips (which counts the held ones too).
    fn breaker(
        &self,
        actions: &mut [PlannedAction],
        ledger: &BTreeMap<Key, LedgerEntry>,
        guard: Vec<(ObjectKind, String)>,
    ) -> Option<String> {
        let count = actions.iter().filter(|a| held(a)).count() as u64;
        let managed = ledger.values().filter(|e| e.target_id.is_some()).count() as u64;
        let tripped = breaker::trips(&self.spec.breaker, count, managed);
        if guard.is_empty() && tripped.is_none() {
            return None;
        }
        let guarded = |kind: ObjectKind| guard.iter().find(|(k, _)| *k == kind);
        let reason_for = |kind: ObjectKind| {
            guarded(kind)
                .or_else(|| (kind == ObjectKind::Group).then(|| guarded(ObjectKind::User))?)
                .map(|(_, why)| why.clone())
                .or_else(|| tripped.clone())
        };
        for a in actions.iter_mut().filter(|a| held(a)) {
            let Some(reason) = reason_for(a.kind) else {
                continue;
            };
            let verb = if a.action == SyncAction::Delete {
                scim_core::Verb::Delete
            } else {
                scim_core::Verb::Disable
            };
            a.steps.push(step(
                StepKind::Processing,
                scim_core::Status::Warning,
                format!("held by the deletion breaker: {reason}"),
            ));
            a.detail = format!(
                "{} staged: {reason}; approve with `scimd sync approve-deletes {}`",
                a.action.as_str(),
                self.spec.name
            );
            a.action = SyncAction::StagedDelete;
            a.error_code = Some(ErrorCode::DeletionThresholdExceeded);
            let mut e = a.on_failure.clone();
            e.pending = Some(Pending {
                step: PendingStep::Staged,
                verb,
                trigger: a.trigger.unwrap_or(Trigger::Deleted),
            });
            a.entry = e;
        }
        let mut why: Vec<String> = guard.into_iter().map(|(_, why)| why).collect();
        why.extend(tripped);
        Some(why.join("; "))
    }
}
