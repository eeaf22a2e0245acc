//! Multi-valued attributes under PATCH (RFC 7644 §3.5.2): which values are the same value,
//! `primary` kept unique, whole-attribute and sub-attribute operations, and operations on
//! the values a filter selects (`emails[type eq "work"].value`).

use super::op::PatchOpKind;
use crate::error::{ScimError, ScimResult};
use crate::filter::FilterExpr;
use crate::json::find_key;
use crate::resource::normalize_attribute;
use crate::schema::{AttributeDef, AttributeType, Mutability, ResourceView};
use serde_json::{Map, Value};

/// Identity of a multi-valued complex value: its `value` (and `type`, when both sides have
/// one); values without a `value` sub-attribute are identified by all their sub-attributes.
fn same_value(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    let value_def = def.sub_attribute("value");
    match (value_def, a.get("value"), b.get("value")) {
        (Some(vd), Some(x), Some(y)) => {
            let eq = match (x.as_str(), y.as_str()) {
                (Some(x), Some(y)) if !vd.case_exact => crate::text::fold_eq(x, y),
                _ => x == y,
            };
            let type_eq = match (
                a.get("type").and_then(Value::as_str),
                b.get("type").and_then(Value::as_str),
            ) {
                (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                _ => true,
            };
            eq && type_eq
        }
        _ => a == b,
    }
}

fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

fn clear_primary(items: &mut [Value]) {
    for it in items {
        if let Value::Object(o) = it {
            o.remove("primary");
        }
    }
}

fn merge_object(target: &mut Value, src: &Value) {
    if let (Value::Object(t), Value::Object(s)) = (target, src) {
        for (k, v) in s {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// Adds values to a multi-valued attribute: merges into equal values, appends the rest.
pub(super) fn add_values(def: &AttributeDef, items: &mut Vec<Value>, new: Vec<Value>) {
    for nv in new {
        if def.kind == AttributeType::Complex {
            if is_primary(&nv) {
                clear_primary(items);
            }
            match items.iter_mut().find(|it| same_value(def, it, &nv)) {
                Some(existing) => merge_object(existing, &nv),
                None => items.push(nv),
            }
        } else if !items.contains(&nv) {
            items.push(nv);
        }
    }
}

fn as_items(v: Option<Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

pub(super) fn whole_attribute(
    def: &AttributeDef,
    kind: PatchOpKind,
    current: Option<Value>,
    value: Option<Value>,
    display: &str,
) -> ScimResult<Option<Value>> {
    let normalized = match value {
        Some(v) => normalize_attribute(def, v, display)?,
        None => None,
    };
    Ok(match kind {
        PatchOpKind::Add if def.multi_valued => {
            let mut items = as_items(current);
            add_values(def, &mut items, as_items(normalized));
            Some(Value::Array(items))
        }
        PatchOpKind::Add | PatchOpKind::Replace
            if def.kind == AttributeType::Complex && !def.multi_valued =>
        {
            // RFC 7644 §3.5.2.1/§3.5.2.3: sub-attributes not given are left unchanged.
            match (current, normalized) {
                (Some(mut cur), Some(n)) => {
                    merge_object(&mut cur, &n);
                    Some(cur)
                }
                (cur, None) if kind == PatchOpKind::Add => cur,
                (_, n) => n,
            }
        }
        PatchOpKind::Add => normalized.or(current),
        PatchOpKind::Replace => normalized,
        PatchOpKind::Remove => match (def.multi_valued, normalized) {
            // Remove only the listed values (Entra's member removal).
            (true, Some(listed)) => {
                let listed = as_items(Some(listed));
                let items: Vec<Value> = as_items(current)
                    .into_iter()
                    .filter(|it| !listed.iter().any(|l| same_value(def, it, l)))
                    .collect();
                Some(Value::Array(items))
            }
            _ => None,
        },
    })
}

pub(super) fn sub_attribute(
    def: &AttributeDef,
    sub: &AttributeDef,
    kind: PatchOpKind,
    current: Option<Value>,
    value: Option<Value>,
    display: &str,
) -> ScimResult<Option<Value>> {
    let new_sub = match (kind, value) {
        (PatchOpKind::Remove, _) | (_, None) => None,
        (_, Some(v)) => normalize_attribute(sub, v, display)?,
    };
    if sub.mutability == Mutability::Immutable && kind != PatchOpKind::Add {
        return Err(ScimError::mutability(format!(
            "attribute '{display}' is immutable"
        )));
    }
    let set = |el: &mut Value| {
        if let Value::Object(o) = el {
            match &new_sub {
                Some(v) => {
                    o.insert(sub.name.clone(), v.clone());
                }
                None => {
                    if let Some(k) = find_key(o, &sub.name) {
                        o.remove(&k);
                    }
                }
            }
        }
    };
    if def.multi_valued {
        // `emails.value` without a filter addresses every value.
        let mut items = as_items(current);
        if items.is_empty() && new_sub.is_some() {
            items.push(Value::Object(Map::new()));
        }
        if sub.name == "primary" && new_sub == Some(Value::Bool(true)) && items.len() > 1 {
            return Err(ScimError::invalid_value(format!(
                "'{display}' would mark {} values primary; use a filter to pick one",
                items.len()
            )));
        }
        items.iter_mut().for_each(set);
        items.retain(|it| it.as_object().is_some_and(|o| !o.is_empty()));
        return Ok(Some(Value::Array(items)));
    }
    let mut obj = current.unwrap_or_else(|| Value::Object(Map::new()));
    set(&mut obj);
    Ok(Some(obj))
}

/// Removes the values at `hits`.
fn drop_indices(items: &mut Vec<Value>, hits: &[usize]) {
    let mut i = 0;
    items.retain(|_| {
        let keep = !hits.contains(&i);
        i += 1;
        keep
    });
}

/// Unassigns sub-attribute `name` on the values at `hits`; values left empty go.
fn unset_sub(items: &mut Vec<Value>, hits: &[usize], name: &str) {
    for &i in hits {
        if let Some(Value::Object(o)) = items.get_mut(i) {
            o.remove(name);
        }
    }
    items.retain(|it| it.as_object().is_some_and(|o| !o.is_empty()));
}

#[allow(clippy::too_many_arguments)]
pub(super) fn filtered(
    view: &ResourceView<'_>,
    def: &AttributeDef,
    filter: &FilterExpr,
    sub: Option<&AttributeDef>,
    kind: PatchOpKind,
    current: Option<Value>,
    value: Option<Value>,
    display: &str,
) -> ScimResult<Option<Value>> {
    let mut items = as_items(current);
    let hits: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, it)| filter.matches_element(view, def, it))
        .map(|(i, _)| i)
        .collect();
    if kind == PatchOpKind::Remove {
        match sub {
            Some(s) => {
                if s.mutability == Mutability::Immutable && !hits.is_empty() {
                    return Err(ScimError::mutability(format!(
                        "attribute '{display}' is immutable"
                    )));
                }
                unset_sub(&mut items, &hits, &s.name);
            }
            None => {
                drop_indices(&mut items, &hits);
            }
        }
        return Ok(Some(Value::Array(items)));
    }
    // add / replace: the new content for each matching value.
    let patch_obj: Value = match sub {
        Some(s) => {
            if s.mutability == Mutability::Immutable && !hits.is_empty() {
                return Err(ScimError::mutability(format!(
                    "attribute '{display}' is immutable"
                )));
            }
            let v = match value {
                Some(v) => normalize_attribute(s, v, display)?,
                None => None,
            };
            let mut o = Map::new();
            match v {
                Some(v) => {
                    o.insert(s.name.clone(), v);
                }
                None => {
                    // Setting a sub-attribute to null unassigns it on the matching values.
                    unset_sub(&mut items, &hits, &s.name);
                    return Ok(Some(Value::Array(items)));
                }
            }
            Value::Object(o)
        }
        None => {
            let single = AttributeDef {
                multi_valued: false,
                ..def.clone()
            };
            match value
                .map(|v| normalize_attribute(&single, v, display))
                .transpose()?
                .flatten()
            {
                Some(v) => v,
                None => {
                    if kind == PatchOpKind::Replace {
                        drop_indices(&mut items, &hits);
                    }
                    return Ok(Some(Value::Array(items)));
                }
            }
        }
    };
    if hits.is_empty() {
        let Some(constraints) = filter.equality_constraints() else {
            return Err(ScimError::no_target(format!(
                "no value of '{}' matches the filter [{filter}]",
                def.name
            )));
        };
        // Build the value the filter describes, then apply the patch to it.
        let mut el = described_value(def, constraints, display)?;
        merge_object(&mut el, &patch_obj);
        if is_primary(&el) {
            clear_primary(&mut items);
        }
        items.push(el);
        return Ok(Some(Value::Array(items)));
    }
    if is_primary(&patch_obj) {
        if hits.len() > 1 {
            return Err(ScimError::invalid_value(format!(
                "the filter [{filter}] matches {} values; only one can be primary",
                hits.len()
            )));
        }
        for (i, it) in items.iter_mut().enumerate() {
            if !hits.contains(&i)
                && let Value::Object(o) = it
            {
                o.remove("primary");
            }
        }
    }
    for &i in &hits {
        merge_object(&mut items[i], &patch_obj);
    }
    Ok(Some(Value::Array(items)))
}

/// The value a filter of equalities describes (`emails[type eq "work"]`): each named
/// sub-attribute with its literal.
fn described_value(
    def: &AttributeDef,
    constraints: Vec<(String, crate::filter::CompValue)>,
    display: &str,
) -> ScimResult<Value> {
    let mut el = Map::new();
    for (name, lit) in constraints {
        let Some(sd) = def.sub_attribute(&name) else {
            continue;
        };
        let raw = match lit {
            crate::filter::CompValue::Str(s) => Value::String(s),
            crate::filter::CompValue::Bool(b) => Value::Bool(b),
            crate::filter::CompValue::Number(n) => Value::Number(n),
            crate::filter::CompValue::Null => continue,
        };
        if let Some(v) = normalize_attribute(sd, raw, display)? {
            el.insert(sd.name.clone(), v);
        }
    }
    Ok(Value::Object(el))
}
