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
use crate::filter::{FilterExpr, PatchPath};
use crate::json::{find_key, get_ci};
use crate::path::AttrPath;
use crate::resource::{check_required, normalize_attribute, refresh_schemas};
use crate::schema::{AttributeDef, AttributeType, Mutability, ResolvedAttr, ResourceView};
use crate::urn;
use serde_json::{Map, Value};

/// `add` / `remove` / `replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    pub fn parse(s: &str) -> ScimResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "add" => Ok(Self::Add),
            "remove" => Ok(Self::Remove),
            "replace" => Ok(Self::Replace),
            _ => Err(ScimError::invalid_syntax(format!(
                "unknown PATCH op '{s}'; expected add, remove or replace"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One PATCH operation, with its path parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub kind: PatchOpKind,
    /// The raw path, as sent.
    pub raw_path: Option<String>,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

impl PatchOp {
    pub fn new(kind: PatchOpKind, path: Option<&str>, value: Option<Value>) -> ScimResult<Self> {
        let path_str = path.map(str::trim).filter(|p| !p.is_empty());
        // A path naming a whole schema URN is resolved against the registry at apply time.
        let parsed = match path_str {
            Some(p) if looks_like_schema_urn(p) => None,
            Some(p) => Some(PatchPath::parse(p)?),
            None => None,
        };
        Ok(Self {
            kind,
            raw_path: path_str.map(str::to_string),
            path: parsed,
            value,
        })
    }
}

/// `urn:…:2.0:User`-style strings whose last segment starts with an upper-case letter are
/// schema URNs, not attribute paths (attribute names start lower-case in every SCIM schema).
fn looks_like_schema_urn(p: &str) -> bool {
    crate::path::has_urn_prefix(p)
        && !p.contains('[')
        && p.rsplit(':')
            .next()
            .and_then(|last| last.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
        && !p.rsplit(':').next().unwrap_or("").contains('.')
}

/// A `PatchOp` message (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOp>,
}

impl PatchRequest {
    /// Reads a PATCH body. `schemas` is not required to list the PatchOp URN (several clients
    /// omit it), but if present it must be an array.
    pub fn from_value(body: &Value) -> ScimResult<Self> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(
                "a PATCH body must be a JSON object",
            ));
        };
        if let Some(s) = get_ci(body, "schemas")
            && !s.is_array()
        {
            return Err(ScimError::invalid_syntax("'schemas' must be an array"));
        }
        let ops = find_key(obj, "Operations")
            .and_then(|k| obj.get(&k))
            .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an 'Operations' array"))?;
        let Value::Array(ops) = ops else {
            return Err(ScimError::invalid_syntax("'Operations' must be an array"));
        };
        if ops.is_empty() {
            return Err(ScimError::invalid_syntax("'Operations' is empty"));
        }
        let mut operations = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let at = |e: ScimError| ScimError {
                detail: format!("operation {}: {}", i + 1, e.detail),
                ..e
            };
            if !op.is_object() {
                return Err(at(ScimError::invalid_syntax(
                    "each operation must be an object",
                )));
            }
            let kind = match get_ci(op, "op") {
                Some(Value::String(s)) => PatchOpKind::parse(s).map_err(at)?,
                _ => {
                    return Err(at(ScimError::invalid_syntax(
                        "'op' is missing or not a string",
                    )));
                }
            };
            let path = match get_ci(op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return Err(at(ScimError::invalid_path("'path' must be a string"))),
            };
            let value = get_ci(op, "value").cloned();
            operations.push(PatchOp::new(kind, path, value).map_err(at)?);
        }
        Ok(Self { operations })
    }

    /// The wire form.
    pub fn to_value(&self) -> Value {
        let ops: Vec<Value> = self
            .operations
            .iter()
            .map(|o| {
                let mut m = Map::new();
                m.insert("op".into(), Value::String(o.kind.as_str().into()));
                if let Some(p) = &o.raw_path {
                    m.insert("path".into(), Value::String(p.clone()));
                }
                if let Some(v) = &o.value {
                    m.insert("value".into(), v.clone());
                }
                Value::Object(m)
            })
            .collect();
        serde_json::json!({"schemas": [urn::PATCH_OP], "Operations": ops})
    }
}

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
fn add_values(def: &AttributeDef, items: &mut Vec<Value>, new: Vec<Value>) {
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

fn whole_attribute(
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

fn sub_attribute(
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
fn filtered(
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
        let mut el = Value::Object(el);
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
    fn schema_urn_paths_are_recognised() {
        assert!(looks_like_schema_urn(urn::ENTERPRISE_USER));
        assert!(!looks_like_schema_urn(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
        ));
        assert!(!looks_like_schema_urn("userName"));
    }

    #[test]
    fn op_names_are_case_insensitive() {
        for s in ["add", "Add", "ADD"] {
            assert_eq!(PatchOpKind::parse(s).unwrap(), PatchOpKind::Add);
        }
        assert!(PatchOpKind::parse("move").is_err());
    }
}
