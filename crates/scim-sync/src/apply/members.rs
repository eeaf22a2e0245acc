//! Group membership deltas: members the engine added that left are removed, new ones
//! added, in chunks of `members_per_request` (PATCH, or GET + PUT where the target has no
//! PATCH); progress is kept even when a chunk fails.

use super::Applier;
use super::record::export_step;
use super::write::gone;
use crate::model::{ObjectKind, client_kind};
use crate::plan::PlannedAction;
use scim_client::ClientError;
use scim_core::{Exported, Status, Step};
use serde_json::{Value, json};
use std::collections::HashSet;

impl Applier {
    pub(super) async fn members(
        &self,
        id: &str,
        a: &PlannedAction,
        exported: &mut Exported,
        steps: &mut Vec<Step>,
    ) -> Result<(), ClientError> {
        let chunk = self.spec().target.members_per_request.max(1);
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
            Status::Success,
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
        let rk = client_kind(ObjectKind::Group);
        if self.use_patch() {
            let r = self.cfg.client.patch(rk, id, &ops).await?;
            if !r.found {
                return Err(gone(ObjectKind::Group, id));
            }
            return Ok(());
        }
        let mut g = self
            .cfg
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
        let r = self.cfg.client.replace(rk, id, &g).await?;
        if !r.found {
            return Err(gone(ObjectKind::Group, id));
        }
        Ok(())
    }
}
