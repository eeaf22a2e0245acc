//! One object's writes to a linked (or just adopted) target object: adopt, update, enable,
//! disable, delete, by PATCH (`add`/`replace`/`remove`, RFC 7644 §3.5.2) or GET + PUT.

use super::Applier;
use super::record::{Outcome, export_step};
use crate::model::{ObjectKind, client_kind};
use crate::path::TargetPath;
use crate::plan::PlannedAction;
use scim_client::ClientError;
use scim_core::{PropertyChange, Status, SyncAction};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// A linked object the target no longer has (a 404 where the engine expected it), as the
/// error the caller classifies (`TargetObjectMissing`).
pub(super) fn gone(kind: ObjectKind, id: &str) -> ClientError {
    ClientError::Status {
        status: 404,
        scim_type: None,
        detail: Some(format!("{} {id} is gone from the target", kind.as_str())),
        retry_after: None,
    }
}

/// The values to remember as exported: references as the source id they were mapped from
/// (so the next plan compares like with like), the rest as sent.
pub(super) fn as_exported(
    a: &PlannedAction,
    sent: BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
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

impl Applier {
    /// Sends one planned action: a create, or a write to a linked (or adopted) object.
    pub(super) async fn write(&self, a: &PlannedAction) -> Result<Outcome, ClientError> {
        let id = a.target_id.clone().unwrap_or_default();
        match a.action {
            SyncAction::Create => self.create(a).await,
            SyncAction::Adopt => self.adopt(a, id).await,
            SyncAction::Update | SyncAction::Enable => self.update(a, id).await,
            SyncAction::Disable => self.disable(a, id).await,
            SyncAction::Delete => self.delete(a, id).await,
            SyncAction::Skip
            | SyncAction::Conflict
            | SyncAction::StagedDelete
            | SyncAction::DisableScheduled
            | SyncAction::DeleteScheduled => Ok(Outcome::quiet(a, a.entry.clone())),
        }
    }

    /// The values to send: references resolved (unresolvable ones left out, which the flag
    /// says).
    pub(super) fn resolved_values(&self, a: &PlannedAction) -> (BTreeMap<String, Value>, bool) {
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

    pub(super) fn path(&self, kind: ObjectKind, text: &str) -> Option<TargetPath> {
        self.mappings(kind)
            .path(text)
            .cloned()
            .or_else(|| TargetPath::parse(text, kind).ok())
    }

    /// An adopted object: only what differs is written; what its group already holds counts
    /// as exported.
    async fn adopt(&self, a: &PlannedAction, id: String) -> Result<Outcome, ClientError> {
        let kind = a.kind;
        let mut exported = a.entry.exported.clone();
        let mut steps = Vec::new();
        let (values, unresolved) = self.resolved_values(a);
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
        if changes.is_empty() {
            steps.push(export_step(
                Status::Success,
                format!("adopted {id}; already up to date"),
            ));
        } else {
            self.send_changes(kind, &id, &changes).await?;
            steps.push(export_step(
                Status::Success,
                format!("adopted {id}; {} attribute(s) updated", changes.len()),
            ));
        }
        exported.values = as_exported(a, values);
        if kind == ObjectKind::Group
            && let Some(g) = self.cfg.client.get(client_kind(kind), &id).await?
        {
            let present: HashSet<String> = g
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
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
        self.linked(a, id, exported, steps, unresolved).await
    }

    /// Changed attributes (references resolved), and a group's membership delta. An update
    /// that has nothing it can send (its only change a reference whose referent is not on
    /// the target) sends nothing and is no change: nothing is logged.
    async fn update(&self, a: &PlannedAction, id: String) -> Result<Outcome, ClientError> {
        let mut exported = a.entry.exported.clone();
        let mut steps = Vec::new();
        let mut unresolved = false;
        let mut sendable = Vec::new();
        for c in &a.changes {
            if !a.desired.references.contains(&c.path) {
                sendable.push(c.clone());
                continue;
            }
            match c.new.as_ref().map(|v| self.resolve_ref(v)) {
                Some(Some(t)) => sendable.push(PropertyChange {
                    new: Some(t),
                    ..c.clone()
                }),
                Some(None) => unresolved = true,
                None => sendable.push(c.clone()),
            }
        }
        if sendable.is_empty() && a.members_add.is_empty() && a.members_remove.is_empty() {
            let mut entry = a.entry.clone();
            entry.exported.unresolved = unresolved;
            return Ok(Outcome::quiet(a, entry));
        }
        if !sendable.is_empty() {
            self.send_changes(a.kind, &id, &sendable).await?;
            steps.push(export_step(
                Status::Success,
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
        self.linked(a, id, exported, steps, unresolved).await
    }

    async fn disable(&self, a: &PlannedAction, id: String) -> Result<Outcome, ClientError> {
        let change = PropertyChange {
            path: "active".into(),
            old: None,
            new: Some(Value::Bool(false)),
            redacted: false,
        };
        self.send_changes(a.kind, &id, &[change]).await?;
        let steps = vec![export_step(Status::Success, "active set to false")];
        self.linked(a, id, a.entry.exported.clone(), steps, false)
            .await
    }

    async fn delete(&self, a: &PlannedAction, id: String) -> Result<Outcome, ClientError> {
        let rk = client_kind(a.kind);
        let existed = self.cfg.client.delete(rk, &id).await?;
        let steps = vec![export_step(
            Status::Success,
            if existed {
                format!("DELETE /{}/{id}", rk.endpoint())
            } else {
                format!("{id} was already gone")
            },
        )];
        self.unlink(&(a.kind, a.source_id.clone()));
        Ok(Outcome::success(a, id, a.entry.clone(), steps, false))
    }

    /// Sends attribute changes: one PATCH (add for new values, replace for changed ones,
    /// remove for cleared ones; RFC 7644 §3.5.2), or GET + PUT.
    pub(super) async fn send_changes(
        &self,
        kind: ObjectKind,
        id: &str,
        changes: &[PropertyChange],
    ) -> Result<(), ClientError> {
        let rk = client_kind(kind);
        let gone = || gone(kind, id);
        if self.use_patch() {
            let ops: Vec<Value> = changes
                .iter()
                .map(|c| match (&c.old, &c.new) {
                    (_, None) => serde_json::json!({"op": "remove", "path": c.path}),
                    (None, Some(v)) => serde_json::json!({"op": "add", "path": c.path, "value": v}),
                    (Some(_), Some(v)) => {
                        serde_json::json!({"op": "replace", "path": c.path, "value": v})
                    }
                })
                .collect();
            let r = self.cfg.client.patch(rk, id, &ops).await?;
            return if r.found { Ok(()) } else { Err(gone()) };
        }
        let mut current = self.cfg.client.get(rk, id).await?.ok_or_else(gone)?;
        for c in changes {
            if let Some(p) = self.path(kind, &c.path) {
                p.write(&mut current, c.new.clone().unwrap_or(Value::Null));
            }
        }
        if let Some(o) = current.as_object_mut() {
            o.remove("meta");
        }
        let r = self.cfg.client.replace(rk, id, &current).await?;
        if r.found { Ok(()) } else { Err(gone()) }
    }
}
