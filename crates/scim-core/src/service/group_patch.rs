//! Group PATCHes split in two: what changes the group's JSON body, and what changes its
//! members ([`MemberOp`]s the store applies as row inserts and deletes, in the same
//! transaction). Member sub-attributes cannot be changed in place.

use crate::error::{CoreError, CoreResult};
use crate::resource::{MemberOp, ResourceKind};
use scim_proto::json::find_key;
use scim_proto::patch::{PatchOp, PatchOpKind};
use scim_proto::resource::normalize_attribute;
use scim_proto::schema::standard_view as view_of;
use scim_proto::{AttrPath, CompValue, CompareOp, FilterExpr, ScimError, urn};
use serde_json::Value;

/// Member ids from a `members` value (objects, bare strings, one object).
pub(super) fn member_ids(value: Option<&Value>) -> CoreResult<Vec<String>> {
    let view = view_of(ResourceKind::Group);
    let Some(def) = view.core_attribute("members") else {
        return Ok(Vec::new());
    };
    let Some(v) = value else {
        return Ok(Vec::new());
    };
    let normalized = normalize_attribute(def, v.clone(), "members")?;
    let mut ids = Vec::new();
    for item in normalized
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("value").and_then(Value::as_str) {
            Some(id) => ids.push(id.to_string()),
            None => {
                return Err(ScimError::invalid_value(
                    "every member needs a 'value' (the member's id)",
                )
                .into());
            }
        }
    }
    Ok(ids)
}

/// `value eq "a" or value eq "b"`: the ids, when the filter is exactly that.
fn value_eq_ids(f: &FilterExpr) -> Option<Vec<String>> {
    match f {
        FilterExpr::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(s),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![s.clone()])
        }
        FilterExpr::Or(a, b) => {
            let mut v = value_eq_ids(a)?;
            v.extend(value_eq_ids(b)?);
            Some(v)
        }
        _ => None,
    }
}

fn is_members_path(p: &AttrPath) -> bool {
    p.name.eq_ignore_ascii_case("members")
        && p.urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(urn::GROUP))
}

/// Splits a group PATCH into the operations on the JSON body and the membership operations.
pub(super) fn split_group_patch(ops: &[PatchOp]) -> CoreResult<(Vec<PatchOp>, Vec<MemberOp>)> {
    let view = view_of(ResourceKind::Group);
    let mut body_ops = Vec::new();
    let mut member_ops = Vec::new();
    let members_for =
        |kind: PatchOpKind, value: Option<&Value>, out: &mut Vec<MemberOp>| -> CoreResult<()> {
            match kind {
                PatchOpKind::Add => {
                    if value.is_none() {
                        return Err(
                            ScimError::invalid_syntax("'add' of members requires a value").into(),
                        );
                    }
                    out.push(MemberOp::Add(member_ids(value)?));
                }
                PatchOpKind::Replace => {
                    let ids = member_ids(value)?;
                    out.push(MemberOp::Clear);
                    out.push(MemberOp::Add(ids));
                }
                PatchOpKind::Remove => match value {
                    Some(v) if !v.is_null() => out.push(MemberOp::Remove(member_ids(Some(v))?)),
                    _ => out.push(MemberOp::Clear),
                },
            }
            Ok(())
        };
    for (i, op) in ops.iter().enumerate() {
        let at = |e: CoreError| match e {
            CoreError::Scim(s) => CoreError::Scim(ScimError {
                detail: format!("operation {} ({}): {}", i + 1, op.kind.as_str(), s.detail),
                ..s
            }),
            other => other,
        };
        match (&op.path, &op.raw_path) {
            (None, None) if op.kind != PatchOpKind::Remove => {
                let Some(Value::Object(obj)) = &op.value else {
                    body_ops.push(op.clone());
                    continue;
                };
                let mut rest = obj.clone();
                if let Some(k) = find_key(obj, "members") {
                    let v = rest.remove(&k);
                    members_for(op.kind, v.as_ref(), &mut member_ops).map_err(at)?;
                }
                if !rest.is_empty() {
                    body_ops.push(PatchOp {
                        value: Some(Value::Object(rest)),
                        ..op.clone()
                    });
                }
            }
            (Some(p), _) if is_members_path(&p.attr) => {
                if p.attr.sub.is_some() {
                    return Err(at(ScimError::mutability(
                        "member sub-attributes are immutable: remove the member and add it again",
                    )
                    .into()));
                }
                match &p.filter {
                    None => members_for(op.kind, op.value.as_ref(), &mut member_ops).map_err(at)?,
                    Some(f) => {
                        if op.kind != PatchOpKind::Remove {
                            return Err(at(ScimError::mutability(
                                "members are immutable: remove the member and add it again",
                            )
                            .into()));
                        }
                        if let Some(def) = view.core_attribute("members") {
                            f.validate_element(&view, def).map_err(|e| at(e.into()))?;
                        }
                        match value_eq_ids(f) {
                            Some(ids) => member_ops.push(MemberOp::Remove(ids)),
                            None => member_ops.push(MemberOp::RemoveMatching(f.clone())),
                        }
                    }
                }
            }
            _ => body_ops.push(op.clone()),
        }
    }
    Ok((body_ops, member_ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_proto::patch::PatchRequest;
    use serde_json::json;

    fn ops(v: Value) -> Vec<PatchOp> {
        PatchRequest::from_value(&json!({"Operations": v}))
            .unwrap()
            .operations
    }

    #[test]
    fn group_patches_split_into_body_and_member_operations() {
        let (body, members) = split_group_patch(&ops(json!([
            {"op": "Replace", "path": "displayName", "value": "X"},
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": "members[value eq \"u4\"]"},
            {"op": "remove", "path": "members[type eq \"Group\"]"},
            {"op": "replace", "value": {"externalId": "e", "members": [{"value": "u9"}]}},
            {"op": "remove", "path": "members"}
        ])))
        .unwrap();
        assert_eq!(body.len(), 2);
        assert_eq!(body[1].value, Some(json!({"externalId": "e"})));
        assert_eq!(members.len(), 7);
        assert_eq!(members[0], MemberOp::Add(vec!["u1".into(), "u2".into()]));
        assert_eq!(members[1], MemberOp::Remove(vec!["u3".into()]));
        assert_eq!(members[2], MemberOp::Remove(vec!["u4".into()]));
        assert!(matches!(members[3], MemberOp::RemoveMatching(_)));
        assert_eq!(members[4], MemberOp::Clear);
        assert_eq!(members[5], MemberOp::Add(vec!["u9".into()]));
        assert_eq!(members[6], MemberOp::Clear);
    }

    #[test]
    fn member_sub_attribute_changes_are_refused() {
        for bad in [
            json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u2"}]),
            json!([{"op": "add", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}]),
        ] {
            let e = split_group_patch(&ops(bad)).unwrap_err().to_scim();
            assert_eq!(e.scim_type, Some(scim_proto::ScimType::Mutability));
        }
    }
}
