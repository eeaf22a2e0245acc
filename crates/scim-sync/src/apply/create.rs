//! Creates: one by POST or (from `bulk.rs`) in a Bulk request, a 409 adopted per
//! `on_conflict`, a lost answer looked up before anything is sent again (a retry never
//! makes a duplicate), and the link to the new target object.

use super::Applier;
use super::record::{Outcome, export_step};
use super::write::as_exported;
use crate::error::error_code;
use crate::job::ConflictPolicy;
use crate::model::{ObjectKind, client_kind};
use crate::plan::PlannedAction;
use crate::target::{Lookups, TargetMatcher};
use scim_client::ClientError;
use scim_core::{
    ErrorCode, Exported, LedgerEntry, LedgerState, PropertyChange, Status, Step, StepKind,
    SyncAction,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl Applier {
    /// The values a create sends (references resolved; unresolvable ones left out, which
    /// the flag says) and its body.
    pub(super) fn create_body(&self, a: &PlannedAction) -> (BTreeMap<String, Value>, bool, Value) {
        let (values, unresolved) = self.resolved_values(a);
        let mut body = json!({"schemas": [client_kind(a.kind).schema()]});
        for (k, v) in &values {
            if let Some(p) = self.path(a.kind, k) {
                p.write(&mut body, v.clone());
            }
        }
        (values, unresolved, body)
    }

    /// One create by POST: a 409 is adopted (policy permitting), a lost answer looked up
    /// before anything is sent again.
    pub(super) async fn create(&self, a: &PlannedAction) -> Result<Outcome, ClientError> {
        let rk = client_kind(a.kind);
        let (values, unresolved, body) = self.create_body(a);
        match self.cfg.client.create(rk, &body).await {
            Ok(created) => {
                let id = created
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ClientError::Protocol("the created resource has no id".into()))?
                    .to_string();
                let step = export_step(Status::Success, format!("POST /{} → {id}", rk.endpoint()));
                self.created(a, values, unresolved, id, vec![step]).await
            }
            Err(e) => self.create_refused(a, e).await,
        }
    }

    /// A create the target answered with an error: a 409 is adopted (policy permitting),
    /// an answer that may hide a done create is looked up first, the rest is the error.
    pub(super) async fn create_refused(
        &self,
        a: &PlannedAction,
        e: ClientError,
    ) -> Result<Outcome, ClientError> {
        if e.is_conflict() && self.spec().matching.on_conflict == ConflictPolicy::Adopt {
            let step = export_step(
                Status::Warning,
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
    ///
    /// Whatever happens next (the lookup throttled, the second create refused), the object
    /// may be on the target: its ledger row stays `creating`, so the next cycle looks it up
    /// again and adopts what it finds as the engine's own, whatever `on_conflict` says.
    pub(super) async fn create_after_lost_answer(
        &self,
        a: &PlannedAction,
        why: &str,
    ) -> Result<Outcome, ClientError> {
        match self.look_up_then_create(a, why).await {
            Ok(out) => Ok(out),
            Err(e) => {
                let mut out = self.failed(a, &e);
                out.entry.state = LedgerState::Creating;
                Ok(out)
            }
        }
    }

    async fn look_up_then_create(
        &self,
        a: &PlannedAction,
        why: &str,
    ) -> Result<Outcome, ClientError> {
        let mut steps = vec![export_step(
            Status::Warning,
            format!("no answer to the create ({why}): looking it up before sending it again"),
        )];
        let free = self.unowned_matches(a).await?;
        if !free.is_empty() {
            return self.adopt_match(a, &free, steps).await;
        }
        let rk = client_kind(a.kind);
        let (values, unresolved, body) = self.create_body(a);
        let created = self.cfg.client.create(rk, &body).await?;
        let id = created
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Protocol("the created resource has no id".into()))?
            .to_string();
        steps.push(export_step(
            Status::Success,
            format!("POST /{} → {id}", rk.endpoint()),
        ));
        self.created(a, values, unresolved, id, steps).await
    }

    /// A create the target made, with this id: linked, and what was sent remembered.
    pub(super) async fn created(
        &self,
        a: &PlannedAction,
        values: BTreeMap<String, Value>,
        unresolved: bool,
        id: String,
        steps: Vec<Step>,
    ) -> Result<Outcome, ClientError> {
        let mut exported = a.entry.exported.clone();
        exported.values = as_exported(a, values);
        self.linked(a, id, exported, steps, unresolved).await
    }

    /// Links the object to its target id, remembers what was exported, and sends its
    /// membership deltas (groups).
    pub(super) async fn linked(
        &self,
        a: &PlannedAction,
        id: String,
        mut exported: Exported,
        mut steps: Vec<Step>,
        unresolved: bool,
    ) -> Result<Outcome, ClientError> {
        let kind = a.kind;
        let mut entry = a.entry.clone();
        self.link((kind, a.source_id.clone()), &id);
        entry.target_id = Some(id.clone());
        exported.unresolved = unresolved;
        entry.exported = exported.clone();
        // Membership deltas (groups), chunked; progress is kept even if a chunk fails.
        let mut failure = None;
        if kind == ObjectKind::Group && (!a.members_add.is_empty() || !a.members_remove.is_empty())
        {
            if let Err(e) = self.members(&id, a, &mut exported, &mut steps).await {
                failure = Some(e);
            }
            entry.exported = exported;
        }
        let mut out = Outcome::success(a, id, entry, steps, unresolved);
        if unresolved {
            out.steps.push(Step::new(
                StepKind::ReferenceResolution,
                Status::Warning,
                "a referenced user is not on the target yet; it is set once it is",
            ));
        }
        if let Some(e) = failure {
            out.status = Status::Failure;
            out.error_code = Some(error_code(&e));
            out.steps
                .push(export_step(Status::Failure, format!("membership: {e}")));
        }
        Ok(out)
    }

    /// A 409 on create: find the existing object by the matching attributes and adopt it
    /// when exactly one that nobody owns matches.
    async fn adopt_after_conflict(
        &self,
        a: &PlannedAction,
        steps: Vec<Step>,
    ) -> Result<Outcome, ClientError> {
        let free = self.unowned_matches(a).await?;
        if let [one] = free.as_slice()
            && !self.spec().matching.adopt_privileged
            && crate::plan::matching::privileged(one)
        {
            let step = "the existing object holds an administrator's role; not adopted";
            return Ok(not_adopted(
                a,
                steps,
                step.into(),
                ErrorCode::ExistingTargetObject,
                "the target has this object already, holding an administrator's role: \
                 not adopted (matching.adopt_privileged = false)",
            ));
        }
        self.adopt_match(a, &free, steps).await
    }

    /// Target objects that match `a` by its matching attributes (then by the attribute the
    /// target makes unique) and that no other source object owns.
    async fn unowned_matches(&self, a: &PlannedAction) -> Result<Vec<Value>, ClientError> {
        let kind = a.kind;
        let lookups = Lookups {
            client: self.cfg.client.clone(),
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
        let owned = self.owned();
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
            return Ok(not_adopted(
                a,
                steps,
                format!("{} unowned object(s) match; not adopted", free.len()),
                if free.len() > 1 {
                    ErrorCode::DuplicateTargetEntries
                } else {
                    ErrorCode::TargetConflict
                },
                "the target reports the object exists, but it cannot be matched to one object",
            ));
        }
        let id = free[0]
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut adopt = a.clone();
        adopt.action = SyncAction::Adopt;
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

/// A create that met an existing object it may not adopt: a conflict, nothing linked.
fn not_adopted(
    a: &PlannedAction,
    mut steps: Vec<Step>,
    step: String,
    code: ErrorCode,
    detail: &str,
) -> Outcome {
    steps.push(export_step(Status::Failure, step));
    Outcome {
        status: Status::Failure,
        target_id: None,
        entry: LedgerEntry {
            state: LedgerState::Conflict,
            ..a.on_failure.clone()
        },
        error_code: Some(code),
        detail: detail.into(),
        steps,
        changes: a.changes.clone(),
        unresolved: false,
        quiet: false,
        retry_after: None,
    }
}
