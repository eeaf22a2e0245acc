//! The PATCH engine (RFC 7644 §3.5.2).
//!
//! [`PatchRequest::from_value`] reads a `PatchOp` message the way real clients send it
//! (`"op": "Add"`, `"Operations"` or `"operations"`); [`apply_patch`] applies its operations
//! in order to a copy of the resource and returns the new resource or the first error, so a
//! failing request never leaves anything half-applied.
//!
//! Semantics beyond the RFC text, each for a real client (`docs/interop.md` §3, §4):
//! - `op` is case-insensitive (Entra sends `Add`/`Replace`/`Remove`).
//! - A path-less `add`/`replace` value may hold dotted keys (`name.givenName`) and
//!   URN-qualified keys (`urn:…:enterprise:2.0:User:employeeNumber`); `id`, `meta` and
//!   `schemas` keys inside it are ignored (Okta echoes `id`).
//! - `add`/`replace` with a value filter that matches nothing **creates** the value when the
//!   filter is a conjunction of `eq` tests (`emails[type eq "work"].value`), as Entra expects
//!   for a user that has no work e-mail yet; any other non-matching filter is `noTarget`.
//! - `remove` of a multi-valued attribute with a `value` list removes only the listed values
//!   (Entra's default member removal), without one it removes every value.
//! - `remove` with a filter that matches nothing is a no-op (idempotent retries).
//! - Adding a value that is already there (same `value`, same `type` when both have one)
//!   merges into it instead of duplicating it: re-adding a group member is a no-op.
//! - Setting `primary: true` on one value clears it on the others (RFC 7643 §2.4).
//! - Removing a required attribute is `mutability` (RFC 7644 §3.5.2.2).

use crate::error::{ScimError, ScimResult};
use crate::filter::FilterExpr;
use crate::json::find_key;
use crate::path::AttrPath;
use crate::resource::{check_required, refresh_schemas};
use crate::schema::{AttributeType, Mutability, ResolvedAttr, ResourceView};
use multi::{filtered, sub_attribute, whole_attribute};
pub use op::{PatchOp, PatchOpKind, PatchRequest};
use serde_json::{Map, Value};

mod multi;
mod op;

/// Applies the operations in order to a copy of `resource`; all or nothing.
pub fn apply_patch(
    view: &ResourceView<'_>,
    resource: &Value,
    ops: &[PatchOp],
) -> ScimResult<Value> {
    let mut doc = resource.clone();
    if !doc.is_object() {
        return Err(ScimError::invalid_syntax("resource is not an object"));
    }
    for (i, op) in ops.iter().enumerate() {
        apply_one(view, &mut doc, op)
            .and_then(|()| {
                check_required(view, &doc, |name| {
                    ScimError::mutability(format!(
                        "attribute '{name}' is required and cannot be removed"
                    ))
                })
            })
            .map_err(|e| ScimError {
                detail: format!("operation {} ({}): {}", i + 1, op.kind.as_str(), e.detail),
                ..e
            })?;
    }
    refresh_schemas(view, &mut doc);
    Ok(doc)
}

fn apply_one(view: &ResourceView<'_>, doc: &mut Value, op: &PatchOp) -> ScimResult<()> {
    let value = op.value.clone();
    match (&op.path, &op.raw_path) {
        (None, Some(raw)) => {
            // The path is a whole schema URN.
            let Some(ext) = view.extension(raw) else {
                return Err(ScimError::invalid_path(format!(
                    "unknown schema '{}'",
                    crate::error::excerpt(raw)
                )));
            };
            match op.kind {
                PatchOpKind::Remove => {
                    if let Value::Object(o) = doc
                        && let Some(k) = find_key(o, &ext.id)
                    {
                        o.remove(&k);
                    }
                    Ok(())
                }
                _ => apply_extension_values(
                    view,
                    doc,
                    op.kind,
                    &ext.id,
                    require_object(value, op.kind)?,
                ),
            }
        }
        (None, None) => {
            if op.kind == PatchOpKind::Remove {
                return Err(ScimError::no_target("'remove' requires a path"));
            }
            let obj = require_object(value, op.kind)?;
            for (k, v) in obj {
                if ["schemas", "id", "meta"]
                    .iter()
                    .any(|s| k.eq_ignore_ascii_case(s))
                {
                    continue;
                }
                if let Some(ext) = view.extension(&k) {
                    let Value::Object(inner) = v else {
                        if v.is_null() && op.kind == PatchOpKind::Replace {
                            if let Value::Object(o) = doc
                                && let Some(key) = find_key(o, &ext.id)
                            {
                                o.remove(&key);
                            }
                            continue;
                        }
                        return Err(ScimError::invalid_value(format!("'{k}' must be an object")));
                    };
                    apply_extension_values(view, doc, op.kind, &ext.id, inner)?;
                    continue;
                }
                let p = parse_key(&k)?;
                apply_path(view, doc, op.kind, &p, None, Some(v))?;
            }
            Ok(())
        }
        (Some(path), _) => {
            if op.kind != PatchOpKind::Remove && value.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "'{}' requires a value",
                    op.kind.as_str()
                )));
            }
            apply_path(view, doc, op.kind, &path.attr, path.filter.as_ref(), value)
        }
    }
}

/// A key of a path-less value object as an attribute path.
fn parse_key(k: &str) -> ScimResult<AttrPath> {
    AttrPath::parse(k).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "'{}' is not a valid attribute path",
            crate::error::excerpt(k)
        ))
    })
}

/// Applies `{attr: value, …}` to the attributes of one extension schema.
fn apply_extension_values(
    view: &ResourceView<'_>,
    doc: &mut Value,
    kind: PatchOpKind,
    ext_id: &str,
    values: Map<String, Value>,
) -> ScimResult<()> {
    for (k, v) in values {
        // A value object that repeats `schemas` (scim2-tester, as POST bodies do) is read
        // like a POST body: the key is not an attribute (docs/interop.md §3.2).
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let mut p = parse_key(&k)?;
        p.urn = Some(ext_id.to_string());
        apply_path(view, doc, kind, &p, None, Some(v))?;
    }
    Ok(())
}

fn require_object(value: Option<Value>, kind: PatchOpKind) -> ScimResult<Map<String, Value>> {
    match value {
        Some(Value::Object(o)) => Ok(o),
        // Some clients wrap the object in a one-element array.
        Some(Value::Array(mut a)) if a.len() == 1 && a[0].is_object() => match a.pop() {
            Some(Value::Object(o)) => Ok(o),
            _ => Err(ScimError::invalid_value("expected an object")),
        },
        Some(_) => Err(ScimError::invalid_value(format!(
            "'{}' without a path needs an object value",
            kind.as_str()
        ))),
        None => Err(ScimError::invalid_syntax(format!(
            "'{}' requires a value",
            kind.as_str()
        ))),
    }
}

/// The object holding the attribute: the resource, or its extension object (created on demand).
fn container<'d>(
    doc: &'d mut Value,
    r: &ResolvedAttr<'_>,
    create: bool,
) -> Option<&'d mut Map<String, Value>> {
    let root = doc.as_object_mut()?;
    if !r.is_extension {
        return Some(root);
    }
    let key = match find_key(root, r.schema) {
        Some(k) => k,
        None if create => {
            root.insert(r.schema.to_string(), Value::Object(Map::new()));
            r.schema.to_string()
        }
        None => return None,
    };
    let slot = root.get_mut(&key)?;
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Takes the attribute out of the container under its canonical name.
fn take_attr(c: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let k = find_key(c, name)?;
    c.remove(&k).filter(|v| !v.is_null())
}

fn put_attr(c: &mut Map<String, Value>, name: &str, v: Option<Value>) {
    match v {
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Object(o)) if o.is_empty() => {}
        Some(v) => {
            c.insert(name.to_string(), v);
        }
        None => {}
    }
}

fn apply_path(
    view: &ResourceView<'_>,
    doc: &mut Value,
    kind: PatchOpKind,
    path: &AttrPath,
    filter: Option<&FilterExpr>,
    value: Option<Value>,
) -> ScimResult<()> {
    let r = view.resolve(path).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "unknown attribute '{}'",
            crate::error::excerpt(&path.to_string())
        ))
    })?;
    let attr = r.attr;
    let display = match r.sub {
        Some(s) => format!("{}.{}", attr.name, s.name),
        None => attr.name.clone(),
    };
    if attr.mutability == Mutability::ReadOnly
        || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    {
        return Err(ScimError::mutability(format!(
            "attribute '{display}' is readOnly"
        )));
    }
    if let Some(f) = filter {
        if !(attr.kind == AttributeType::Complex && attr.multi_valued) {
            return Err(ScimError::invalid_path(format!(
                "'{}' is not a multi-valued complex attribute; it cannot take a [filter]",
                attr.name
            )));
        }
        f.validate_element(view, attr)?;
    }
    let create = kind != PatchOpKind::Remove;
    let Some(c) = container(doc, &r, create) else {
        return Ok(()); // removing from an extension that has no data: nothing to do
    };
    let current = take_attr(c, &attr.name);
    if attr.mutability == Mutability::Immutable && current.is_some() && kind != PatchOpKind::Add {
        put_attr(c, &attr.name, current);
        return Err(ScimError::mutability(format!(
            "attribute '{display}' is immutable"
        )));
    }
    let updated = match (filter, r.sub) {
        (None, None) => whole_attribute(attr, kind, current, value, &display)?,
        (None, Some(sub)) => sub_attribute(attr, sub, kind, current, value, &display)?,
        (Some(f), sub) => filtered(view, attr, f, sub, kind, current, value, &display)?,
    };
    put_attr(c, &attr.name, updated);
    if r.is_extension
        && let Value::Object(root) = doc
        && let Some(k) = find_key(root, r.schema)
        && root
            .get(&k)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        root.remove(&k);
    }
    Ok(())
}

/// Convenience for tests and callers holding a raw body: parse then apply.
pub fn patch_resource(
    view: &ResourceView<'_>,
    resource: &Value,
    body: &Value,
) -> ScimResult<Value> {
    let req = PatchRequest::from_value(body)?;
    apply_patch(view, resource, &req.operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_are_case_insensitive() {
        for s in ["add", "Add", "ADD"] {
            assert_eq!(PatchOpKind::parse(s).unwrap(), PatchOpKind::Add);
        }
        assert!(PatchOpKind::parse("move").is_err());
    }
}
