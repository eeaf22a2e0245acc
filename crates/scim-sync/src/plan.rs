//! The planner: for every source object and ledger entry, the action (create, update,
//! disable, enable, delete, adopt, skip, conflict, staged delete) with its attribute diff,
//! computed **without writing to the target** (it may read it, to match). `run` applies
//! exactly what this code planned (engine-behaviour §8.1).
//!
//! Rules that keep the engine safe:
//! - only ledger-linked objects are updated, disabled or deleted (§8.2);
//! - a target object is adopted only when exactly one matches; several are a conflict;
//! - deprovisioning follows the job's trigger × action × delay table, with stored timers;
//! - the deletion breaker turns the cycle's disables and deletes into staged deletes when
//!   there are too many (§8.4);
//! - a cycle where nothing changed plans nothing.

use crate::error::{SyncError, SyncResult};
use crate::job::{DeprovisionAction, DeprovisionRule, GroupScope, JobSpec};
use crate::mapping::{Mapped, Mappings};
use crate::path::TargetPath;
use crate::scope;
use crate::source::{ObjectKind, SourceObject};
use crate::target::TargetMatcher;
use scim_core::{LedgerEntry, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

pub type Key = (ObjectKind, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum Action {
    Create,
    Adopt,
    Update,
    Enable,
    Disable,
    Delete,
    StagedDelete,
    Conflict,
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "Create",
            Action::Adopt => "Adopt",
            Action::Update => "Update",
            Action::Enable => "Enable",
            Action::Disable => "Disable",
            Action::Delete => "Delete",
            Action::StagedDelete => "StagedDelete",
            Action::Conflict => "Conflict",
            Action::Skip => "Skip",
        }
    }

    /// Whether the action writes to the target.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Action::Create
                | Action::Adopt
                | Action::Update
                | Action::Enable
                | Action::Disable
                | Action::Delete
        )
    }
}

/// One attribute's change, old → new (`None`: absent). Redacted values show as `"***"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyChange {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl PropertyChange {
    /// The change as plans and logs show it: a redacted value as `"***"`.
    pub fn masked(&self) -> Self {
        if !self.redacted {
            return self.clone();
        }
        let mask = |v: &Option<Value>| v.as_ref().map(|_| Value::String("***".into()));
        PropertyChange {
            old: mask(&self.old),
            new: mask(&self.new),
            ..self.clone()
        }
    }
}

/// `changes` in a plan's JSON: redacted values masked.
fn serialize_masked<S: serde::Serializer>(
    changes: &[PropertyChange],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    changes
        .iter()
        .map(PropertyChange::masked)
        .collect::<Vec<_>>()
        .serialize(s)
}

/// One step of an object's processing, for the log (Entra's steps).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub status: &'static str,
    pub detail: String,
}

fn step(step: &'static str, status: &'static str, detail: impl Into<String>) -> Step {
    Step {
        step,
        status,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedAction {
    pub kind: ObjectKind,
    pub source_id: String,
    pub display: String,
    pub action: Action,
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
    pub error_code: Option<String>,
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
    /// `initial` (nothing linked yet) or `incremental`.
    pub mode: &'static str,
    pub actions: Vec<PlannedAction>,
    /// Counts by action.
    pub totals: BTreeMap<&'static str, u64>,
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

/// What the engine stores as `exported`: the values last written and, for groups, the
/// members it added (source id → target id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exported {
    pub values: BTreeMap<String, Value>,
    pub members: BTreeMap<String, String>,
    /// A reference was left out (its referent was not on the target yet).
    pub unresolved: bool,
}

impl Exported {
    pub fn from_json(v: &Value) -> Self {
        let map = |k: &str| -> BTreeMap<String, Value> {
            v.get(k)
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        Self {
            values: map("values"),
            members: map("members")
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect(),
            unresolved: v
                .get("unresolved")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "values": Value::Object(self.values.clone().into_iter().collect::<Map<_, _>>()),
            "members": Value::Object(self.members.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            "unresolved": self.unresolved,
        })
    }
}

/// Why an object is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    OutOfScope,
    Suspended,
    Deleted,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::OutOfScope => "out-of-scope",
            Trigger::Suspended => "suspended",
            Trigger::Deleted => "deleted",
        }
    }
}

/// `pending` in the ledger: `<step>:<action>:<trigger>` with step one of `timer`,
/// `staged`, `approved`, `rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub step: String,
    pub action: String,
    pub trigger: String,
}

impl Pending {
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.splitn(3, ':');
        Some(Self {
            step: it.next()?.to_string(),
            action: it.next()?.to_string(),
            trigger: it.next()?.to_string(),
        })
    }

    pub fn render(&self) -> String {
        format!("{}:{}:{}", self.step, self.action, self.trigger)
    }
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

/// Inputs the planner reads.
pub struct PlanInput<'a> {
    /// The source as it is now.
    pub objects: &'a BTreeMap<Key, SourceObject>,
    pub ledger: &'a BTreeMap<Key, LedgerEntry>,
    pub matcher: &'a dyn TargetMatcher,
    /// The initial cycle has not completed yet (a resumed initial cycle is still initial).
    pub initial: bool,
}

fn linked(e: Option<&LedgerEntry>) -> Option<&str> {
    e.and_then(|e| e.target_id.as_deref())
}

fn diff(
    desired: &Mapped,
    exported: &BTreeMap<String, Value>,
    include_on_create: bool,
) -> Vec<PropertyChange> {
    let mut out = Vec::new();
    for (path, new) in &desired.values {
        if !include_on_create && desired.on_create.contains(path) {
            continue;
        }
        let old = exported.get(path);
        if old != Some(new) {
            out.push(PropertyChange {
                path: path.clone(),
                old: old.cloned(),
                new: Some(new.clone()),
                redacted: desired.redacted.contains(path),
            });
        }
    }
    for (path, old) in exported {
        if !desired.values.contains_key(path) && !desired.on_create.contains(path) {
            out.push(PropertyChange {
                path: path.clone(),
                old: Some(old.clone()),
                new: None,
                redacted: desired.redacted.contains(path),
            });
        }
    }
    out
}

impl Planner<'_> {
    fn mappings(&self, kind: ObjectKind) -> &Mappings {
        match kind {
            ObjectKind::User => self.users,
            ObjectKind::Group => self.groups,
        }
    }

    fn rule(&self, kind: ObjectKind, t: Trigger) -> &DeprovisionRule {
        let d = &self.spec.deprovision;
        match (kind, t) {
            (ObjectKind::Group, _) => &d.groups,
            (_, Trigger::OutOfScope) => &d.out_of_scope,
            (_, Trigger::Suspended) => &d.suspended,
            (_, Trigger::Deleted) => &d.deleted,
        }
    }

    /// Users who are members (directly, or through nested groups when asked) of the
    /// assignment groups.
    fn assigned_users(&self, objects: &BTreeMap<Key, SourceObject>) -> HashSet<String> {
        let wanted: HashSet<String> = self
            .spec
            .scope
            .groups
            .iter()
            .map(|g| g.to_lowercase())
            .collect();
        let mut queue: VecDeque<&SourceObject> = objects
            .values()
            .filter(|o| o.kind == ObjectKind::Group)
            .filter(|g| {
                wanted.contains(&g.id.to_lowercase())
                    || wanted.contains(&g.display().to_lowercase())
            })
            .collect();
        let mut seen_groups = HashSet::new();
        let mut users = HashSet::new();
        while let Some(g) = queue.pop_front() {
            if !seen_groups.insert(g.id.clone()) {
                continue;
            }
            for m in &g.members {
                if let Some(sub) = objects.get(&(ObjectKind::Group, m.clone())) {
                    if self.spec.scope.nested {
                        queue.push_back(sub);
                    }
                } else {
                    users.insert(m.clone());
                }
            }
        }
        users
    }

    fn group_in_scope(&self, g: &SourceObject) -> bool {
        match self.spec.group_scope() {
            GroupScope::All => true,
            GroupScope::None => false,
            GroupScope::Assigned => self
                .spec
                .scope
                .groups
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&g.id) || n.eq_ignore_ascii_case(&g.display())),
        }
    }

    /// Scoping for one user: `Err(reason)` when out of scope.
    fn user_in_scope(
        &self,
        u: &SourceObject,
        assigned: Option<&HashSet<String>>,
    ) -> Result<String, String> {
        let mut passed = Vec::new();
        if let Some(a) = assigned {
            if !a.contains(&u.id) {
                return Err("not assigned: not a member of the scope groups".into());
            }
            passed.push("assigned to the application");
        } else {
            passed.push("scope: sync all");
        }
        let attr = |n: &str| crate::expr::AttributeSource::attribute(u, n);
        scope::filters_pass(&self.spec.scope.filters, &attr)
            .map_err(|f| format!("scoping filter not met ({f})"))?;
        if !self.spec.scope.filters.is_empty() {
            passed.push("scoping filters met");
        }
        if let (Some(roles), Some(default)) =
            (&self.spec.scope.roles, &self.spec.scope.default_role)
        {
            let list: Vec<String> = attr(roles)
                .into_list()
                .iter()
                .filter_map(|v| v.as_text())
                .collect();
            if !list.is_empty() && list.iter().all(|r| r == default) {
                return Err(format!("only role is the default role '{default}'"));
            }
        }
        Ok(passed.join("; "))
    }

    /// Builds the plan.
    pub async fn plan(&self, input: &PlanInput<'_>) -> SyncResult<SyncPlan> {
        let initial = input.initial;
        let mut actions = Vec::new();
        let mut ledger_only = Vec::new();
        let assigned = match self.spec.scope.assignment {
            crate::job::Assignment::All => None,
            crate::job::Assignment::Groups => Some(self.assigned_users(input.objects)),
        };
        // Target ids already linked (a match to one of them is someone else's object).
        let owned: HashSet<&str> = input
            .ledger
            .values()
            .filter_map(|e| e.target_id.as_deref())
            .collect();
        let keys: BTreeSet<&Key> = input.objects.keys().chain(input.ledger.keys()).collect();
        // Users first, then groups (ObjectKind orders User < Group).
        let mut active_users: HashSet<String> = HashSet::new();
        let mut active_groups: HashSet<String> = HashSet::new();
        for key in keys.iter().filter(|k| k.0 == ObjectKind::User) {
            let obj = input.objects.get(*key);
            let entry = input.ledger.get(*key);
            let trigger = match obj {
                None => Some((Trigger::Deleted, "deleted at the source".to_string())),
                Some(u) => match self.user_in_scope(u, assigned.as_ref()) {
                    Err(why) => Some((Trigger::OutOfScope, why)),
                    Ok(_) if u.suspended => {
                        Some((Trigger::Suspended, "suspended at the source".to_string()))
                    }
                    Ok(_) => None,
                },
            };
            let stays = trigger.is_none();
            let planned = self
                .plan_object(ObjectKind::User, key, obj, entry, trigger, input, &owned)
                .await?;
            let mut active = stays && linked(entry).is_some();
            match planned {
                Some(Planned::Action(a)) => {
                    active |= stays && matches!(a.action, Action::Create | Action::Adopt);
                    actions.push(*a);
                }
                Some(Planned::Quiet(e)) => ledger_only.push(*e),
                Some(Planned::Unchanged) | None => {}
            }
            if active {
                active_users.insert(key.1.clone());
            }
        }
        for key in keys.iter().filter(|k| k.0 == ObjectKind::Group) {
            let obj = input.objects.get(*key);
            if let Some(g) = obj
                && self.group_in_scope(g)
            {
                active_groups.insert(g.id.clone());
            }
        }
        for key in keys.iter().filter(|k| k.0 == ObjectKind::Group) {
            let obj = input.objects.get(*key);
            let entry = input.ledger.get(*key);
            let trigger = match obj {
                None => Some((Trigger::Deleted, "deleted at the source".to_string())),
                Some(g) if !self.group_in_scope(g) => {
                    Some((Trigger::OutOfScope, "group not in scope".to_string()))
                }
                Some(_) => None,
            };
            let stays = trigger.is_none();
            let planned = self
                .plan_object(ObjectKind::Group, key, obj, entry, trigger, input, &owned)
                .await?;
            let mut planned = planned.unwrap_or(Planned::Unchanged);
            // Membership deltas for groups that stay.
            if let Some(g) = obj
                && stays
            {
                let exported = entry
                    .map(|e| Exported::from_json(&e.exported))
                    .unwrap_or_default();
                let desired: BTreeSet<&String> = g
                    .members
                    .iter()
                    .filter(|m| active_users.contains(*m) || active_groups.contains(*m))
                    .collect();
                let add: Vec<String> = desired
                    .iter()
                    .filter(|m| !exported.members.contains_key(**m))
                    .map(|m| (*m).clone())
                    .collect();
                let remove: Vec<String> = exported
                    .members
                    .keys()
                    .filter(|m| !desired.contains(m))
                    .cloned()
                    .collect();
                if !add.is_empty() || !remove.is_empty() {
                    planned = match planned {
                        Planned::Action(mut a) => {
                            a.members_add = add;
                            a.members_remove = remove;
                            Planned::Action(a)
                        }
                        other if linked(entry).is_some() => {
                            let base = planned_entry(&other)
                                .or_else(|| entry.cloned())
                                .unwrap_or_else(|| *e_default(key));
                            Planned::Action(Box::new(PlannedAction {
                                kind: ObjectKind::Group,
                                source_id: key.1.clone(),
                                display: g.display(),
                                action: Action::Update,
                                target_id: linked(entry).map(str::to_string),
                                changes: Vec::new(),
                                members_add: add,
                                members_remove: remove,
                                detail: "membership changed".into(),
                                error_code: None,
                                steps: vec![step("processing", "Success", "membership changed")],
                                desired: Mapped::default(),
                                matched: None,
                                approved: false,
                                on_failure: base.clone(),
                                entry: base,
                            }))
                        }
                        other => other,
                    };
                }
            }
            match planned {
                Planned::Action(a) => actions.push(*a),
                Planned::Quiet(e) => ledger_only.push(*e),
                Planned::Unchanged => {}
            }
        }
        let breaker = self.breaker(&mut actions, input.ledger);
        let mut totals = BTreeMap::new();
        for a in &actions {
            *totals.entry(a.action.as_str()).or_insert(0) += 1;
        }
        Ok(SyncPlan {
            job: self.spec.name.clone(),
            mode: if initial { "initial" } else { "incremental" },
            actions,
            totals,
            breaker,
            ledger_only,
        })
    }

    /// The deletion breaker: too many disables + deletes this cycle → all staged.
    fn breaker(
        &self,
        actions: &mut [PlannedAction],
        ledger: &BTreeMap<Key, LedgerEntry>,
    ) -> Option<String> {
        let approved = |a: &PlannedAction| a.approved;
        let count = actions
            .iter()
            .filter(|a| matches!(a.action, Action::Disable | Action::Delete) && !approved(a))
            .count() as u64;
        if count == 0 {
            return None;
        }
        let managed = ledger.values().filter(|e| e.target_id.is_some()).count() as u64;
        let b = &self.spec.breaker;
        let share = if managed == 0 {
            100.0
        } else {
            count as f64 * 100.0 / managed as f64
        };
        let reason = if count > b.max_deletes {
            format!(
                "{count} disables and deletes exceed the limit of {}",
                b.max_deletes
            )
        } else if count >= b.percent_floor && share > b.max_percent {
            format!(
                "{count} disables and deletes are {share:.0}% of {managed} managed objects (limit {}%)",
                b.max_percent
            )
        } else {
            return None;
        };
        for a in actions.iter_mut() {
            if !matches!(a.action, Action::Disable | Action::Delete) || approved(a) {
                continue;
            }
            let p = Pending {
                step: "staged".into(),
                action: a.action.as_str().to_lowercase(),
                trigger: a
                    .entry
                    .pending
                    .as_deref()
                    .and_then(Pending::parse)
                    .map_or_else(|| "unknown".into(), |p| p.trigger),
            };
            a.steps.push(step(
                "processing",
                "Warning",
                format!("held by the deletion breaker: {reason}"),
            ));
            a.detail = format!(
                "{} staged: {reason}; approve with `scimd sync approve-deletes {}`",
                a.action.as_str(),
                self.spec.name
            );
            a.action = Action::StagedDelete;
            a.error_code = Some("DeletionThresholdExceeded".into());
            let mut e = a.on_failure.clone();
            e.pending = Some(p.render());
            a.entry = e;
        }
        Some(reason)
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_object(
        &self,
        kind: ObjectKind,
        key: &Key,
        obj: Option<&SourceObject>,
        entry: Option<&LedgerEntry>,
        trigger: Option<(Trigger, String)>,
        input: &PlanInput<'_>,
        owned: &HashSet<&str>,
    ) -> SyncResult<Option<Planned>> {
        let now = self.now;
        let source_json = obj.map_or(Value::Null, |o| {
            serde_json::to_value(o).unwrap_or(Value::Null)
        });
        // Decide "nothing to do" before copying anything: most objects of most cycles.
        let source_changed = match entry {
            None => true,
            Some(e) => obj.is_some() && e.source != source_json,
        };
        if !source_changed && let Some(e) = entry {
            // In escrow: left alone until its next try, or for good once abandoned, unless
            // the source object changes (engine-behaviour §1.6).
            if let Some(x) = e.escrow
                && obj.is_some()
                && (now < x.retry_at || now - x.since >= self.spec.escrow.abandon())
            {
                return Ok(Some(Planned::Unchanged));
            }
            let quiet_linked = self.config_unchanged
                && trigger.is_none()
                && e.target_id.is_some()
                && e.state == "active"
                && e.pending.is_none()
                && e.escrow.is_none()
                && e.exported.get("unresolved").and_then(Value::as_bool) != Some(true);
            let quiet_unlinked = e.target_id.is_none()
                && e.state == "out-of-scope"
                && trigger.is_some()
                && obj.is_some();
            if quiet_linked || quiet_unlinked {
                return Ok(Some(Planned::Unchanged));
            }
        }
        let base = entry.cloned().unwrap_or_else(|| *e_default(key));
        let mut keep = base.clone();
        if obj.is_some() {
            keep.source = source_json;
        }
        keep.job = self.spec.name.clone();
        let display = obj.map_or_else(
            || {
                entry
                    .and_then(|e| e.source.get("attributes"))
                    .and_then(|a| a.get("userName").or(a.get("displayName")))
                    .and_then(Value::as_str)
                    .unwrap_or(&key.1)
                    .to_string()
            },
            SourceObject::display,
        );
        let mut steps = vec![step(
            "import",
            "Success",
            match obj {
                Some(_) => format!("read {} '{}' from the source", kind.as_str(), key.1),
                None => format!("{} '{}' is no longer in the source", kind.as_str(), key.1),
            },
        )];
        let mk = |action: Action,
                  detail: String,
                  steps: Vec<Step>,
                  entry: LedgerEntry,
                  on_failure: LedgerEntry| PlannedAction {
            kind,
            source_id: key.1.clone(),
            display: display.clone(),
            action,
            target_id: entry.target_id.clone(),
            changes: Vec::new(),
            members_add: Vec::new(),
            members_remove: Vec::new(),
            detail,
            error_code: None,
            steps,
            desired: Mapped::default(),
            matched: None,
            approved: false,
            entry,
            on_failure,
        };
        let quiet = |e: LedgerEntry| {
            Ok(Some(if source_changed {
                Planned::Quiet(Box::new(e))
            } else {
                Planned::Unchanged
            }))
        };

        // Not linked: match or create, unless on the way out.
        let Some(target_id) = linked(entry).map(str::to_string) else {
            if let Some((t, why)) = &trigger {
                let mut e = keep.clone();
                e.state = "out-of-scope".into();
                e.pending = None;
                e.due_at = None;
                if obj.is_none() {
                    // Nothing to keep for an object never provisioned and now gone.
                    if entry.is_some() {
                        return Ok(Some(Planned::Quiet(Box::new(LedgerEntry {
                            state: "deleted".into(),
                            ..e
                        }))));
                    }
                    return Ok(None);
                }
                if entry.is_some_and(|x| x.state == "out-of-scope") && !source_changed {
                    return Ok(Some(Planned::Unchanged));
                }
                let _ = t;
                steps.push(step("scoping", "Skipped", why.clone()));
                let mut a = mk(
                    Action::Skip,
                    format!("not provisioned: {why}"),
                    steps,
                    e.clone(),
                    e,
                );
                a.target_id = None;
                return Ok(Some(Planned::Action(Box::new(a))));
            }
            let Some(o) = obj else { return Ok(None) };
            steps.push(step("scoping", "Success", "in scope"));
            let (desired, mut steps) =
                match self.evaluate(kind, key, o, true, &display, steps, &keep) {
                    Ok(d) => d,
                    Err(failed) => return Ok(Some(failed)),
                };
            // A lookup the target fails (after the client's retries) fails this object,
            // not the cycle: it is escrowed and looked up again later. Refused credentials
            // still stop the cycle (every lookup would fail the same way).
            let lookup_failed = |e: SyncError, steps: Vec<Step>, keep: LedgerEntry| match e {
                SyncError::Target(c) if !c.is_auth() => Ok(Some(self.failed(
                    kind,
                    key,
                    &display,
                    steps,
                    keep,
                    crate::apply::error_code(&c),
                    format!("looking the object up on the target failed: {c}"),
                ))),
                other => Err(other),
            };
            let desired = match self.resolve_candidates(kind, desired, input).await {
                Ok(d) => d,
                Err(e) => return lookup_failed(e, steps, keep),
            };
            // Matching, in precedence order: the first attribute with a value decides.
            let m = self.mappings(kind);
            let mut found: Option<(String, Vec<Value>)> = None;
            // A create that may have reached the target (an interrupted cycle, a lost
            // answer) is looked up whatever the policy, and what is found is ours.
            let ours = base.state == "creating";
            if ours || self.spec.matching.on_conflict != crate::job::ConflictPolicy::CreateOnly {
                for p in &m.matching {
                    let Some(v) = desired.values.get(&p.text) else {
                        continue;
                    };
                    let c = match input.matcher.candidates(kind, p, v).await {
                        Ok(c) => c,
                        Err(e) => return lookup_failed(e, steps, keep),
                    };
                    let c: Vec<Value> = c
                        .into_iter()
                        .filter(|r| {
                            r.get("id")
                                .and_then(Value::as_str)
                                .is_none_or(|id| !owned.contains(id))
                        })
                        .collect();
                    found = Some((format!("{} = {v}", p.text), c));
                    break;
                }
                if found.is_none() && !m.matching.is_empty() {
                    return Ok(Some(self.failed(
                        kind,
                        key,
                        &display,
                        steps,
                        keep,
                        "MissingMatchingValue",
                        format!(
                                "no value for any matching attribute ({})",
                                m.matching
                                    .iter()
                                    .map(|p| p.text.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                    )));
                }
            }
            let mut e = keep.clone();
            e.pending = None;
            e.due_at = None;
            let (action, matched, detail) = match found {
                None => (
                    Action::Create,
                    None,
                    "create (matching off: create-only)".to_string(),
                ),
                Some((by, c)) if c.is_empty() => {
                    steps.push(step(
                        "matching",
                        "Success",
                        format!("no target object with {by}"),
                    ));
                    (
                        Action::Create,
                        None,
                        format!("create: no target object with {by}"),
                    )
                }
                Some((by, c)) if c.len() == 1 => {
                    let id = c[0]
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if !ours && self.spec.matching.on_conflict == crate::job::ConflictPolicy::Report
                    {
                        steps.push(step(
                            "matching",
                            "Warning",
                            format!("target object {id} has {by}; policy is report"),
                        ));
                        let mut a = mk(
                            Action::Conflict,
                            format!(
                                "a target object ({id}) already has {by}; not adopted (on_conflict = report)"
                            ),
                            steps,
                            keep.clone(),
                            keep.clone(),
                        );
                        a.error_code = Some("ExistingTargetObject".into());
                        a.entry.state = "conflict".into();
                        return Ok(Some(Planned::Action(Box::new(a))));
                    }
                    steps.push(step(
                        "matching",
                        "Success",
                        if ours {
                            format!(
                                "found target object {id} by {by}: created by an interrupted cycle"
                            )
                        } else {
                            format!("matched target object {id} by {by}")
                        },
                    ));
                    e.target_id = Some(id);
                    (
                        Action::Adopt,
                        Some(c[0].clone()),
                        format!("adopt: matched by {by}"),
                    )
                }
                Some((by, c)) => {
                    let ids: Vec<&str> = c
                        .iter()
                        .filter_map(|r| r.get("id").and_then(Value::as_str))
                        .collect();
                    steps.push(step(
                        "matching",
                        "Failure",
                        format!("{} target objects have {by}: {}", c.len(), ids.join(", ")),
                    ));
                    let mut a = mk(
                        Action::Conflict,
                        format!("{} target objects match {by}; none adopted", c.len()),
                        steps,
                        keep.clone(),
                        keep.clone(),
                    );
                    a.error_code = Some("DuplicateTargetEntries".into());
                    a.entry.state = "conflict".into();
                    a.on_failure.state = "conflict".into();
                    return Ok(Some(Planned::Action(Box::new(a))));
                }
            };
            let current: BTreeMap<String, Value> = match &matched {
                Some(r) => m
                    .list
                    .iter()
                    .filter_map(|mm| mm.target.read(r).map(|v| (mm.target.text.clone(), v)))
                    .collect(),
                None => BTreeMap::new(),
            };
            let changes = diff(&desired, &current, true);
            e.state = "active".into();
            steps.push(step("processing", "Success", detail.clone()));
            let mut a = mk(
                action,
                detail,
                steps,
                e,
                LedgerEntry {
                    state: "failed".into(),
                    ..keep.clone()
                },
            );
            if action == Action::Adopt {
                // Only what differs is written to an adopted object.
                a.changes = changes.into_iter().filter(|c| c.new.is_some()).collect();
            } else {
                a.changes = changes;
            }
            a.target_id = a.entry.target_id.clone();
            a.desired = desired;
            a.matched = matched;
            return Ok(Some(Planned::Action(Box::new(a))));
        };

        // Linked.
        let exported = Exported::from_json(&base.exported);
        let pending = base.pending.as_deref().and_then(Pending::parse);
        let Some((t, why)) = trigger else {
            let Some(o) = obj else { return Ok(None) };
            steps.push(step("scoping", "Success", "in scope"));
            let (desired, mut steps) =
                match self.evaluate(kind, key, o, false, &display, steps, &keep) {
                    Ok(d) => d,
                    Err(failed) => return Ok(Some(failed)),
                };
            let mut changes = diff(&desired, &exported.values, false);
            let mut e = keep.clone();
            e.pending = None;
            e.due_at = None;
            let was_disabled = base.state == "disabled";
            e.state = "active".into();
            let action = if was_disabled && kind == ObjectKind::User {
                if !changes.iter().any(|c| c.path == "active") {
                    changes.push(PropertyChange {
                        path: "active".into(),
                        old: Some(Value::Bool(false)),
                        new: Some(Value::Bool(true)),
                        redacted: false,
                    });
                }
                Action::Enable
            } else if !changes.is_empty() {
                Action::Update
            } else {
                // Back in scope before a timer fired: the timer is cancelled.
                if pending.is_some() || base.state != "active" {
                    return Ok(Some(Planned::Quiet(Box::new(e))));
                }
                return quiet(e);
            };
            let detail = match action {
                Action::Enable => "enable: back in scope and active at the source".to_string(),
                _ => format!("update {} attribute(s)", changes.len()),
            };
            steps.push(step("processing", "Success", detail.clone()));
            let mut a = mk(action, detail, steps, e, keep);
            a.target_id = Some(target_id);
            a.changes = changes;
            a.desired = desired;
            return Ok(Some(Planned::Action(Box::new(a))));
        };

        // Linked and on the way out: the trigger × action × delay table.
        steps.push(step("scoping", "Skipped", why.clone()));
        let rule = self.rule(kind, t);
        let delay = rule.delay()?;
        let disabled = base.state == "disabled";
        let mut e = keep.clone();
        let timer = |action: &str| Pending {
            step: "timer".into(),
            action: action.into(),
            trigger: t.as_str().into(),
        };
        // A decision taken by the operator on a staged delete.
        if let Some(p) = &pending
            && p.trigger == t.as_str()
        {
            match p.step.as_str() {
                "rejected" => {
                    return quiet(e);
                }
                "staged" => return quiet(e),
                _ => {}
            }
        }
        let approved = pending
            .as_ref()
            .is_some_and(|p| p.step == "approved" && p.trigger == t.as_str());
        let due = |p: &Option<Pending>, action: &str| {
            p.as_ref()
                .is_some_and(|p| p.step == "timer" && p.action == action && p.trigger == t.as_str())
                && base.due_at.is_some_and(|d| d <= now)
        };
        let has_timer = |p: &Option<Pending>, action: &str| {
            p.as_ref()
                .is_some_and(|p| p.step == "timer" && p.action == action && p.trigger == t.as_str())
        };
        let (action, next_pending, next_due, detail) = match rule.action {
            DeprovisionAction::None => return quiet(e),
            _ if approved => {
                let act = pending
                    .as_ref()
                    .map(|p| p.action.clone())
                    .unwrap_or_default();
                let a = if act == "delete" {
                    Action::Delete
                } else {
                    Action::Disable
                };
                (
                    a,
                    None,
                    None,
                    format!("{} (approved by an operator): {why}", a.as_str()),
                )
            }
            DeprovisionAction::Disable if kind == ObjectKind::Group => return quiet(e),
            DeprovisionAction::Disable | DeprovisionAction::Delete => {
                let act = if rule.action == DeprovisionAction::Disable {
                    "disable"
                } else {
                    "delete"
                };
                if act == "disable" && disabled {
                    return quiet(e);
                }
                if delay.is_zero() || due(&pending, act) {
                    let a = if act == "delete" {
                        Action::Delete
                    } else {
                        Action::Disable
                    };
                    (a, None, None, format!("{}: {why}", a.as_str()))
                } else if has_timer(&pending, act) {
                    return quiet(e);
                } else {
                    let at = now + delay;
                    e.pending = Some(timer(act).render());
                    e.due_at = Some(at);
                    steps.push(step(
                        "processing",
                        "Success",
                        format!("{act} scheduled for {at}"),
                    ));
                    let mut a = mk(
                        Action::Skip,
                        format!("{why}; {act} scheduled for {at}"),
                        steps,
                        e.clone(),
                        e,
                    );
                    a.target_id = Some(target_id);
                    return Ok(Some(Planned::Action(Box::new(a))));
                }
            }
            DeprovisionAction::DisableThenDelete => {
                if kind == ObjectKind::Group || delay.is_zero() || due(&pending, "delete") {
                    (Action::Delete, None, None, format!("Delete: {why}"))
                } else if !disabled {
                    let at = now + delay;
                    (
                        Action::Disable,
                        Some(timer("delete").render()),
                        Some(at),
                        format!("Disable: {why}; delete scheduled for {at}"),
                    )
                } else if has_timer(&pending, "delete") {
                    return quiet(e);
                } else {
                    let at = now + delay;
                    e.pending = Some(timer("delete").render());
                    e.due_at = Some(at);
                    let mut a = mk(
                        Action::Skip,
                        format!("{why}; delete scheduled for {at}"),
                        steps,
                        e.clone(),
                        e,
                    );
                    a.target_id = Some(target_id);
                    return Ok(Some(Planned::Action(Box::new(a))));
                }
            }
        };
        // The pending record says which trigger this is, for the breaker and the log.
        let mut fail_entry = e.clone();
        if pending.is_none() || approved {
            fail_entry.pending = None;
        }
        match action {
            Action::Delete => {
                e.state = "deleted".into();
                e.target_id = None;
                e.exported = Exported::default().to_json();
                e.pending = None;
                e.due_at = None;
            }
            _ => {
                e.state = "disabled".into();
                let mut x = exported.clone();
                x.values.insert("active".into(), Value::Bool(false));
                // A disabled user leaves the groups the engine put it in; they come back
                // with it (the groups' deltas do that).
                e.exported = x.to_json();
                e.pending = next_pending;
                e.due_at = next_due;
            }
        }
        steps.push(step("processing", "Success", detail.clone()));
        // Remember the trigger on the entry the breaker may stage.
        let mut a = mk(action, detail, steps, e, fail_entry);
        if a.on_failure.pending.is_none() {
            a.on_failure.pending = Some(
                Pending {
                    step: "timer".into(),
                    action: action.as_str().to_lowercase(),
                    trigger: t.as_str().into(),
                }
                .render(),
            );
            a.on_failure.due_at = Some(now);
        }
        a.target_id = Some(target_id);
        a.approved = approved;
        if action == Action::Disable {
            a.changes = vec![PropertyChange {
                path: "active".into(),
                old: exported.values.get("active").cloned(),
                new: Some(Value::Bool(false)),
                redacted: false,
            }];
        }
        Ok(Some(Planned::Action(Box::new(a))))
    }

    /// The mappings for one object, or the failed action that says why they cannot be.
    #[allow(clippy::too_many_arguments, clippy::result_large_err)]
    fn evaluate(
        &self,
        kind: ObjectKind,
        key: &Key,
        o: &SourceObject,
        creating: bool,
        display: &str,
        steps: Vec<Step>,
        keep: &LedgerEntry,
    ) -> Result<(Mapped, Vec<Step>), Planned> {
        match self
            .mappings(kind)
            .evaluate(o, self.now.to_datetime(), creating)
        {
            Ok(d) => Ok((d, steps)),
            Err(e) => Err(self.failed(
                kind,
                key,
                display,
                steps,
                keep.clone(),
                "ExpressionError",
                e,
            )),
        }
    }

    /// `SelectUniqueValue`: the first candidate no target object holds.
    async fn resolve_candidates(
        &self,
        kind: ObjectKind,
        mut desired: Mapped,
        input: &PlanInput<'_>,
    ) -> SyncResult<Mapped> {
        for (path, candidates) in desired.candidates.clone() {
            let Ok(p) = TargetPath::parse(&path, kind) else {
                continue;
            };
            let mut chosen = None;
            for c in &candidates {
                if input
                    .matcher
                    .candidates(kind, &p, &Value::String(c.clone()))
                    .await?
                    .is_empty()
                {
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

    #[allow(clippy::too_many_arguments)]
    fn failed(
        &self,
        kind: ObjectKind,
        key: &Key,
        display: &str,
        mut steps: Vec<Step>,
        keep: LedgerEntry,
        code: &str,
        why: String,
    ) -> Planned {
        steps.push(step("processing", "Failure", why.clone()));
        Planned::Action(Box::new(PlannedAction {
            kind,
            source_id: key.1.clone(),
            display: display.to_string(),
            action: Action::Skip,
            target_id: keep.target_id.clone(),
            changes: Vec::new(),
            members_add: Vec::new(),
            members_remove: Vec::new(),
            detail: why,
            error_code: Some(code.to_string()),
            steps,
            desired: Mapped::default(),
            matched: None,
            approved: false,
            entry: keep.clone(),
            on_failure: keep,
        }))
    }
}

pub enum Planned {
    Action(Box<PlannedAction>),
    /// No target change; the ledger row changes (new source snapshot, cancelled timer).
    Quiet(Box<LedgerEntry>),
    Unchanged,
}

fn planned_entry(p: &Planned) -> Option<LedgerEntry> {
    match p {
        Planned::Quiet(e) => Some((**e).clone()),
        _ => None,
    }
}

fn e_default(key: &Key) -> Box<LedgerEntry> {
    Box::new(LedgerEntry {
        job: String::new(),
        kind: key.0.as_str().into(),
        source_id: key.1.clone(),
        target_id: None,
        state: "new".into(),
        source: Value::Null,
        exported: Exported::default().to_json(),
        pending: None,
        due_at: None,
        escrow: None,
        updated_at: Timestamp::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_values_are_masked_in_plans_and_logs() {
        let c = PropertyChange {
            path: "urn:x:ssn".into(),
            old: None,
            new: Some(json!("123-45-6789")),
            redacted: true,
        };
        let shown = c.masked();
        assert_eq!(shown.new, Some(json!("***")));
        assert_eq!(shown.old, None);
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::new(&mut out);
        serialize_masked(&[c], &mut ser).expect("serializes");
        assert!(!String::from_utf8_lossy(&out).contains("6789"));
    }

    #[test]
    fn pending_steps_round_trip() {
        let p = Pending {
            step: "staged".into(),
            action: "disable".into(),
            trigger: "deleted".into(),
        };
        assert_eq!(Pending::parse(&p.render()), Some(p));
    }
}
