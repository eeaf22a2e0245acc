//! One object's plan: the rules of the sibling modules applied to what the source, the
//! ledger and (for an unlinked object) the target say. The only part of planning that reads
//! the target: matching lookups and `SelectUniqueValue` candidates.

use super::deprovision::{self, Decision, Outbound};
use super::diff::diff;
use super::matching::{self, Match};
use super::{PlanInput, Planned, PlannedAction, Planner, linked, step};
use crate::error::{SyncError, SyncResult, error_code};
use crate::mapping::Mapped;
use crate::model::{Key, ObjectKind, SourceObject};
use crate::path::TargetPath;
use scim_core::{
    ErrorCode, Exported, LedgerEntry, LedgerState, Pending, PropertyChange, Status, Step, StepKind,
    SyncAction, Trigger, Verb,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// What every object's plan reads.
pub(super) struct Ctx<'a> {
    pub input: &'a PlanInput<'a>,
    /// Target ids linked to some source object.
    pub owned: &'a HashSet<&'a str>,
}

/// The parts of one object's plan that every branch shares.
struct Draft<'k> {
    kind: ObjectKind,
    key: &'k Key,
    display: String,
    steps: Vec<Step>,
    /// The ledger row as it stays when nothing else changes: the new source snapshot (or
    /// the tombstone of a gone object), the job's name.
    keep: LedgerEntry,
    /// The source said something new about the object (a new snapshot, or gone).
    source_changed: bool,
}

impl Draft<'_> {
    fn action(
        &self,
        action: SyncAction,
        detail: String,
        entry: LedgerEntry,
        on_failure: LedgerEntry,
    ) -> PlannedAction {
        PlannedAction {
            kind: self.kind,
            source_id: self.key.1.clone(),
            display: self.display.clone(),
            action,
            target_id: entry.target_id.clone(),
            changes: Vec::new(),
            members_add: Vec::new(),
            members_remove: Vec::new(),
            detail,
            error_code: None,
            steps: self.steps.clone(),
            desired: Mapped::default(),
            matched: None,
            approved: false,
            trigger: None,
            entry,
            on_failure,
        }
    }

    /// No target change: the ledger row is written only if the source said something new.
    fn quiet(&self, e: LedgerEntry) -> Planned {
        if self.source_changed {
            Planned::Quiet(Box::new(e))
        } else {
            Planned::Unchanged
        }
    }

    /// The object fails before anything is sent (its mappings, its lookup): a Skip with the
    /// error code, the ledger row kept as it is (so it is tried again).
    fn failed(mut self, code: ErrorCode, why: String) -> Planned {
        self.steps
            .push(step(StepKind::Processing, Status::Failure, why.clone()));
        let keep = self.keep.clone();
        let mut a = self.action(SyncAction::Skip, why, keep.clone(), keep);
        a.error_code = Some(code);
        Planned::Action(Box::new(a))
    }

    fn push(&mut self, kind: StepKind, status: Status, detail: impl Into<String>) {
        self.steps.push(step(kind, status, detail));
    }
}

/// Whether the source says something new about the object.
fn source_changed(entry: Option<&LedgerEntry>, obj: Option<&SourceObject>) -> bool {
    match (entry, obj) {
        (None, _) => true,
        (Some(e), Some(o)) => e.source.as_ref() != Some(o) || e.gone_since.is_some(),
        (Some(e), None) => e.gone_since.is_none() && e.state != LedgerState::Deleted,
    }
}

impl Planner<'_> {
    /// In escrow and not due for its next try (or abandoned after the ladder).
    pub(super) fn held_in_escrow(&self, e: &LedgerEntry) -> bool {
        e.escrow.is_some_and(|x| {
            self.now < x.retry_at || self.now - x.since >= self.spec.escrow.abandon()
        })
    }

    /// An object the source did not change and that needs no look: in escrow until its
    /// next try, active and linked on a cycle whose mappings did not change, out of scope
    /// and never provisioned, or gone and unlinked.
    fn unchanged(&self, e: &LedgerEntry, obj: Option<&SourceObject>, trigger: bool) -> bool {
        if obj.is_some() && self.held_in_escrow(e) {
            return true;
        }
        let quiet_linked = self.config_unchanged
            && !trigger
            && e.target_id.is_some()
            && e.state == LedgerState::Active
            && e.pending.is_none()
            && e.escrow.is_none()
            && !e.exported.unresolved;
        let quiet_unlinked =
            e.target_id.is_none() && e.state == LedgerState::OutOfScope && trigger && obj.is_some();
        let gone_unlinked = e.target_id.is_none() && obj.is_none();
        quiet_linked || quiet_unlinked || gone_unlinked
    }

    pub(super) async fn plan_object(
        &self,
        ctx: &Ctx<'_>,
        key: &Key,
        obj: Option<&SourceObject>,
        entry: Option<&LedgerEntry>,
        trigger: Option<(Trigger, String)>,
    ) -> SyncResult<Planned> {
        let changed = source_changed(entry, obj);
        if !changed
            && let Some(e) = entry
            && self.unchanged(e, obj, trigger.is_some())
        {
            return Ok(Planned::Unchanged);
        }
        let kind = key.0;
        let mut keep = entry
            .cloned()
            .unwrap_or_else(|| LedgerEntry::new(&self.spec.name, kind, &key.1, self.now));
        keep.job = self.spec.name.clone();
        match obj {
            Some(o) => {
                keep.source = Some(o.clone());
                keep.gone_since = None;
            }
            None => {
                keep.gone_since.get_or_insert(self.now);
            }
        }
        let display = obj.map_or_else(|| keep.display(), SourceObject::display);
        let import = match obj {
            Some(_) => format!("read {} '{}' from the source", kind.as_str(), key.1),
            None => format!("{} '{}' is no longer in the source", kind.as_str(), key.1),
        };
        let draft = Draft {
            kind,
            key,
            display,
            steps: vec![step(StepKind::Import, Status::Success, import)],
            keep,
            source_changed: changed,
        };
        Ok(match (linked(entry).map(str::to_string), trigger, obj) {
            (None, Some((_, why)), _) => self.plan_out_of_scope(draft, entry, obj, why),
            (None, None, Some(o)) => self.plan_new(ctx, draft, o).await?,
            (Some(target_id), None, Some(o)) => self.plan_linked(ctx, draft, o, target_id),
            (Some(target_id), Some((t, why)), _) => self.plan_outbound(draft, t, why, target_id),
            // An object present is never without a trigger and absent at once.
            (_, None, None) => Planned::Unchanged,
        })
    }

    /// Not linked and not in scope: nothing to provision.
    fn plan_out_of_scope(
        &self,
        mut d: Draft<'_>,
        entry: Option<&LedgerEntry>,
        obj: Option<&SourceObject>,
        why: String,
    ) -> Planned {
        let mut e = d.keep.clone();
        e.pending = None;
        e.due_at = None;
        if obj.is_none() {
            // Never provisioned (or deleted by the engine) and now gone: only its tombstone.
            return match entry {
                Some(_) => Planned::Quiet(Box::new(e)),
                None => Planned::Unchanged,
            };
        }
        e.state = LedgerState::OutOfScope;
        if entry.is_some_and(|x| x.state == LedgerState::OutOfScope) && !d.source_changed {
            return Planned::Unchanged;
        }
        d.push(StepKind::Scoping, Status::Skipped, why.clone());
        let mut a = d.action(
            SyncAction::Skip,
            format!("not provisioned: {why}"),
            e.clone(),
            e,
        );
        a.target_id = None;
        Planned::Action(Box::new(a))
    }

    /// The mappings for one object, or the failure that says why they cannot be.
    fn evaluate(&self, d: &Draft<'_>, o: &SourceObject, creating: bool) -> Result<Mapped, String> {
        self.mappings(d.kind)
            .evaluate(o, self.now.to_datetime(), creating)
    }

    /// Not linked, in scope: match it to a target object, or create it.
    async fn plan_new(
        &self,
        ctx: &Ctx<'_>,
        mut d: Draft<'_>,
        o: &SourceObject,
    ) -> SyncResult<Planned> {
        d.push(StepKind::Scoping, Status::Success, "in scope");
        let desired = match self.evaluate(&d, o, true) {
            Ok(m) => m,
            Err(why) => return Ok(d.failed(ErrorCode::ExpressionError, why)),
        };
        // A lookup the target fails (after the client's retries) fails this object, not the
        // cycle: it is escrowed and looked up again later. Refused credentials still stop
        // the cycle (every lookup would fail the same way).
        let lookup_failed = |d: Draft<'_>, e: SyncError| match e {
            SyncError::Target(c) if !c.is_auth() => Ok(d.failed(
                error_code(&c),
                format!("looking the object up on the target failed: {c}"),
            )),
            other => Err(other),
        };
        let desired = match self.resolve_candidates(ctx, d.kind, desired).await {
            Ok(m) => m,
            Err(e) => return lookup_failed(d, e),
        };
        // A create that may have reached the target (an interrupted cycle, a lost answer)
        // is looked up whatever the policy, and what is found is ours.
        let ours = d.keep.state == LedgerState::Creating;
        let policy = self.spec.matching.on_conflict;
        let mut found: Option<(String, Vec<Value>)> = None;
        let m = self.mappings(d.kind);
        if matching::looks_up(policy, ours) {
            // The first matching attribute with a value decides.
            for p in &m.matching {
                let Some(v) = desired.values.get(&p.text) else {
                    continue;
                };
                let c = match ctx.input.matcher.candidates(d.kind, p, v).await {
                    Ok(c) => c,
                    Err(e) => return lookup_failed(d, e),
                };
                let free = c
                    .into_iter()
                    .filter(|r| {
                        r.get("id")
                            .and_then(Value::as_str)
                            .is_none_or(|id| !ctx.owned.contains(id))
                    })
                    .collect();
                found = Some((format!("{} = {v}", p.text), free));
                break;
            }
            if found.is_none() && !m.matching.is_empty() {
                let names: Vec<&str> = m.matching.iter().map(|p| p.text.as_str()).collect();
                return Ok(d.failed(
                    ErrorCode::MissingMatchingValue,
                    format!("no value for any matching attribute ({})", names.join(", ")),
                ));
            }
        }
        let by = found.as_ref().map(|(by, _)| by.clone());
        let outcome = matching::decide(
            found.map(|(_, c)| c),
            policy,
            ours,
            self.spec.matching.adopt_privileged,
        );
        Ok(self.matched(d, desired, outcome, by, ours))
    }

    /// The action for a matching outcome.
    fn matched(
        &self,
        mut d: Draft<'_>,
        desired: Mapped,
        outcome: Match,
        by: Option<String>,
        ours: bool,
    ) -> Planned {
        let by = by.unwrap_or_default();
        let mut e = d.keep.clone();
        e.pending = None;
        e.due_at = None;
        let conflict =
            |mut d: Draft<'_>, status: Status, step_detail: String, detail: String, code| {
                d.push(StepKind::Matching, status, step_detail);
                let mut e = d.keep.clone();
                e.state = LedgerState::Conflict;
                let mut a = d.action(SyncAction::Conflict, detail, e.clone(), e);
                a.error_code = Some(code);
                Planned::Action(Box::new(a))
            };
        let privileged = matches!(outcome, Match::Privileged { .. });
        let (action, matched, detail) = match outcome {
            Match::Create if by.is_empty() => (
                SyncAction::Create,
                None,
                "create (matching off: create-only)".to_string(),
            ),
            Match::Create => {
                d.push(
                    StepKind::Matching,
                    Status::Success,
                    format!("no target object with {by}"),
                );
                (
                    SyncAction::Create,
                    None,
                    format!("create: no target object with {by}"),
                )
            }
            Match::Report { id } | Match::Privileged { id } => {
                let (why, rule) = if privileged {
                    (
                        " and an administrator's role",
                        "matching.adopt_privileged = false",
                    )
                } else {
                    ("", "on_conflict = report")
                };
                return conflict(
                    d,
                    Status::Warning,
                    format!("target object {id} has {by}{why}; not adopted"),
                    format!("a target object ({id}) already has {by}{why}; not adopted ({rule})"),
                    ErrorCode::ExistingTargetObject,
                );
            }
            Match::Duplicates { ids } => {
                return conflict(
                    d,
                    Status::Failure,
                    format!("{} target objects have {by}: {}", ids.len(), ids.join(", ")),
                    format!("{} target objects match {by}; none adopted", ids.len()),
                    ErrorCode::DuplicateTargetEntries,
                );
            }
            Match::Adopt { id, object } => {
                d.push(
                    StepKind::Matching,
                    Status::Success,
                    if ours {
                        format!("found target object {id} by {by}: created by an interrupted cycle")
                    } else {
                        format!("matched target object {id} by {by}")
                    },
                );
                e.target_id = Some(id);
                (
                    SyncAction::Adopt,
                    Some(object),
                    format!("adopt: matched by {by}"),
                )
            }
        };
        let current: BTreeMap<String, Value> = match &matched {
            Some(r) => self
                .mappings(d.kind)
                .list
                .iter()
                .filter_map(|mm| mm.target.read(r).map(|v| (mm.target.text.clone(), v)))
                .collect(),
            None => BTreeMap::new(),
        };
        let changes = diff(&desired, &current, true);
        e.state = LedgerState::Active;
        d.push(StepKind::Processing, Status::Success, detail.clone());
        let on_failure = LedgerEntry {
            state: LedgerState::Failed,
            ..d.keep.clone()
        };
        let mut a = d.action(action, detail, e, on_failure);
        // Only what differs is written to an adopted object; nothing is cleared on it.
        a.changes = if action == SyncAction::Adopt {
            changes.into_iter().filter(|c| c.new.is_some()).collect()
        } else {
            changes
        };
        a.target_id = a.entry.target_id.clone();
        a.desired = desired;
        a.matched = matched;
        Planned::Action(Box::new(a))
    }

    /// `SelectUniqueValue`: the first candidate no target object holds.
    async fn resolve_candidates(
        &self,
        ctx: &Ctx<'_>,
        kind: ObjectKind,
        mut desired: Mapped,
    ) -> SyncResult<Mapped> {
        for (path, candidates) in desired.candidates.clone() {
            let Ok(p) = TargetPath::parse(&path, kind) else {
                continue;
            };
            let mut chosen = None;
            for c in &candidates {
                let taken = ctx
                    .input
                    .matcher
                    .candidates(kind, &p, &Value::String(c.clone()))
                    .await?;
                if taken.is_empty() {
                    chosen = Some(c.clone());
                    break;
                }
            }
            match chosen {
                Some(c) => {
                    desired.values.insert(path, p.coerce(Value::String(c)));
                }
                None => {
                    desired.values.remove(&path);
                }
            }
        }
        Ok(desired)
    }

    /// Whether a reference's referent (a source user) is or will be on the target: linked,
    /// or in the source (it may be created in this cycle). A change to a reference that can
    /// never be written is no change.
    fn reachable(ctx: &Ctx<'_>, source_id: &str) -> bool {
        let k = (ObjectKind::User, source_id.to_string());
        ctx.input
            .ledger
            .get(&k)
            .is_some_and(|e| e.target_id.is_some())
            || ctx.input.objects.contains_key(&k)
    }

    /// Linked and in scope: update what differs, enable what was disabled.
    fn plan_linked(
        &self,
        ctx: &Ctx<'_>,
        mut d: Draft<'_>,
        o: &SourceObject,
        target_id: String,
    ) -> Planned {
        d.push(StepKind::Scoping, Status::Success, "in scope");
        let desired = match self.evaluate(&d, o, false) {
            Ok(m) => m,
            Err(why) => return d.failed(ErrorCode::ExpressionError, why),
        };
        let mut changes = diff(&desired, &d.keep.exported.values, false);
        changes.retain(|c| {
            !desired.references.contains(&c.path)
                || c.new
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_none_or(|src| Self::reachable(ctx, src))
        });
        let was = d.keep.state;
        let mut e = d.keep.clone();
        e.pending = None;
        e.due_at = None;
        e.state = LedgerState::Active;
        let action = if was == LedgerState::Disabled && d.kind == ObjectKind::User {
            if !changes.iter().any(|c| c.path == "active") {
                changes.push(PropertyChange {
                    path: "active".into(),
                    old: Some(Value::Bool(false)),
                    new: Some(Value::Bool(true)),
                    redacted: false,
                });
            }
            SyncAction::Enable
        } else if !changes.is_empty() {
            SyncAction::Update
        } else if d.keep.pending.is_some() || was != LedgerState::Active {
            // Back in scope before a timer fired: the timer is cancelled.
            return Planned::Quiet(Box::new(e));
        } else {
            return d.quiet(e);
        };
        let detail = match action {
            SyncAction::Enable => "enable: back in scope and active at the source".to_string(),
            _ => format!("update {} attribute(s)", changes.len()),
        };
        d.push(StepKind::Processing, Status::Success, detail.clone());
        let keep = d.keep.clone();
        let mut a = d.action(action, detail, e, keep);
        a.target_id = Some(target_id);
        a.changes = changes;
        a.desired = desired;
        Planned::Action(Box::new(a))
    }

    /// Linked and on the way out: the deprovisioning table.
    fn plan_outbound(
        &self,
        mut d: Draft<'_>,
        t: Trigger,
        why: String,
        target_id: String,
    ) -> Planned {
        d.push(StepKind::Scoping, Status::Skipped, why.clone());
        let d_ = &self.spec.deprovision;
        let rule = match (d.kind, t) {
            (ObjectKind::Group, _) => &d_.groups,
            (_, Trigger::OutOfScope) => &d_.out_of_scope,
            (_, Trigger::Suspended) => &d_.suspended,
            (_, Trigger::Deleted) => &d_.deleted,
        };
        let o = Outbound {
            kind: d.kind,
            trigger: t,
            state: d.keep.state,
            pending: d.keep.pending,
            due_at: d.keep.due_at,
        };
        match deprovision::decide(rule, &o, self.now) {
            Decision::Nothing => {
                let keep = d.keep.clone();
                d.quiet(keep)
            }
            Decision::Schedule { verb, at } => {
                let mut e = d.keep.clone();
                e.pending = Some(Pending::timer(verb, t));
                e.due_at = Some(at);
                let scheduled = format!("{} scheduled for {}", verb.label(), at.minutes_text());
                d.push(StepKind::Processing, Status::Success, scheduled.clone());
                let action = match verb {
                    Verb::Disable => SyncAction::DisableScheduled,
                    Verb::Delete => SyncAction::DeleteScheduled,
                };
                let mut a = d.action(action, format!("{why}; {scheduled}"), e.clone(), e);
                a.target_id = Some(target_id);
                a.trigger = Some(t);
                Planned::Action(Box::new(a))
            }
            Decision::Act {
                verb,
                approved,
                then,
            } => self.deprovision_now(d, t, why, target_id, verb, approved, then),
        }
    }

    /// A disable or delete sent now.
    #[allow(clippy::too_many_arguments)]
    fn deprovision_now(
        &self,
        mut d: Draft<'_>,
        t: Trigger,
        why: String,
        target_id: String,
        verb: Verb,
        approved: bool,
        then: Option<(Verb, scim_core::Timestamp)>,
    ) -> Planned {
        let action = match verb {
            Verb::Disable => SyncAction::Disable,
            Verb::Delete => SyncAction::Delete,
        };
        let detail = match (approved, then) {
            (true, _) => format!("{} (approved by an operator): {why}", action.as_str()),
            (false, Some((next, at))) => {
                format!(
                    "{}: {why}; {} scheduled for {}",
                    action.as_str(),
                    next.label(),
                    at.minutes_text()
                )
            }
            (false, None) => format!("{}: {why}", action.as_str()),
        };
        // If it fails, it is due again at once next cycle (under the same trigger).
        let mut fail = d.keep.clone();
        if approved || fail.pending.is_none() {
            fail.pending = Some(Pending::timer(verb, t));
            fail.due_at = Some(self.now);
        }
        let mut e = d.keep.clone();
        let old_active = e.exported.values.get("active").cloned();
        match verb {
            Verb::Delete => {
                e.state = LedgerState::Deleted;
                e.target_id = None;
                e.exported = Exported::default();
                e.pending = None;
                e.due_at = None;
            }
            Verb::Disable => {
                e.state = LedgerState::Disabled;
                // A disabled user leaves the groups the engine put it in; they come back
                // with it (the groups' deltas do that).
                e.exported
                    .values
                    .insert("active".into(), Value::Bool(false));
                e.pending = then.map(|(next, _)| Pending::timer(next, t));
                e.due_at = then.map(|(_, at)| at);
            }
        }
        d.push(StepKind::Processing, Status::Success, detail.clone());
        let mut a = d.action(action, detail, e, fail);
        a.target_id = Some(target_id);
        a.approved = approved;
        a.trigger = Some(t);
        if verb == Verb::Disable {
            a.changes = vec![PropertyChange {
                path: "active".into(),
                old: old_active,
                new: Some(Value::Bool(false)),
                redacted: false,
            }];
        }
        Planned::Action(Box::new(a))
    }
}
