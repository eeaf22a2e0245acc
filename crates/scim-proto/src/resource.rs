//! Resources as schema-checked JSON (RFC 7643 §3).
//!
//! [`parse_resource`] turns a client's POST/PUT body into the canonical form every other
//! layer relies on: attribute names spelled as the schema spells them, extension attributes
//! under their schema URN, values of the declared type, `schemas` recomputed.
//!
//! The rules, each chosen for a real client:
//! - Attribute names are case-insensitive (RFC 7643 §2.1); `DisplayName` is stored as
//!   `displayName`.
//! - **Unknown attributes and unknown extension URNs are ignored**, not rejected: Entra sends
//!   the ADSCIM group URN and typo'd enterprise URNs, Netskope clients a tenant extension,
//!   Microsoft's own test suite a misspelt attribute on PUT and expects 200.
//! - readOnly attributes (`id`, `meta`, `groups`, `members.display`…) supplied by the client
//!   are ignored (RFC 7643 §7 "readOnly").
//! - `null`, `[]`, and a complex value whose `value` is `""` mean "unassigned" (Entra's
//!   "Remove Manager" sends `{"value":""}`).
//! - Booleans may arrive as the strings `"True"`/`"False"` (Entra's default mapping).
//! - A bare string where a complex attribute with a `value` sub-attribute is expected means
//!   `{"value": string}` (Entra's `manager`, Microsoft's bare member ids); a one-element
//!   array where a single value is expected is unwrapped.
//! - An extension body is accepted whether or not its URN is listed in `schemas`.
//! - Type mismatches are `400 invalidValue`; a missing required attribute is
//!   `400 invalidValue`; a body that is not an object is `400 invalidSyntax`.

use crate::datetime;
use crate::error::{ScimError, ScimResult};
use crate::json::{find_key, get_ci, parse_bool_str, type_name};
use crate::path::AttrPath;
use crate::schema::{AttributeDef, AttributeType, Mutability, ResourceView};
use serde_json::{Map, Value};

fn mismatch(path: &str, expected: &str, got: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "attribute '{path}' must be {expected}, got {}",
        type_name(got)
    ))
}

/// Normalises one value of a simple (non-complex) attribute.
fn normalize_simple(def: &AttributeDef, v: Value, path: &str) -> ScimResult<Option<Value>> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(match def.kind {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => match v {
            Value::String(_) => v,
            other => return Err(mismatch(path, "a string", &other)),
        },
        AttributeType::Boolean => match &v {
            Value::Bool(_) => v,
            Value::String(s) => match parse_bool_str(s) {
                Some(b) => Value::Bool(b),
                None => return Err(mismatch(path, "true or false", &v)),
            },
            other => return Err(mismatch(path, "true or false", other)),
        },
        AttributeType::Integer => match &v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v,
            other => return Err(mismatch(path, "an integer", other)),
        },
        AttributeType::Decimal => match &v {
            Value::Number(_) => v,
            other => return Err(mismatch(path, "a number", other)),
        },
        AttributeType::DateTime => match &v {
            Value::String(s) if datetime::parse(s).is_some() => v,
            Value::String(s) => {
                return Err(ScimError::invalid_value(format!(
                    "attribute '{path}' must be a dateTime such as 2011-05-13T04:42:34Z, got \"{s}\""
                )));
            }
            other => return Err(mismatch(path, "a dateTime string", other)),
        },
        AttributeType::Complex => return normalize_complex(def, v, path),
    }))
}

/// Normalises one value of a complex attribute (one element, for a multi-valued one).
fn normalize_complex(def: &AttributeDef, v: Value, path: &str) -> ScimResult<Option<Value>> {
    let obj = match v {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        scalar @ (Value::String(_) | Value::Number(_) | Value::Bool(_))
            if def.has_value_sub_attribute() =>
        {
            let mut o = Map::new();
            o.insert("value".into(), scalar);
            o
        }
        other => return Err(mismatch(path, "an object", &other)),
    };
    let mut out = Map::new();
    for (k, sv) in obj {
        let Some(sub) = def.sub_attribute(&k) else {
            continue; // unknown sub-attribute: ignored, like unknown attributes
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let sub_path = format!("{path}.{}", sub.name);
        // The `value` of a reference (members, manager: complex with a `$ref`) is an id,
        // which some clients send as a number.
        let is_reference = def.sub_attribute("$ref").is_some();
        let sv = match (sub.name.as_str(), sv) {
            ("value", Value::Number(n)) if is_reference && sub.kind == AttributeType::String => {
                Value::String(n.to_string())
            }
            (_, sv) => sv,
        };
        if let Some(nv) = normalize_simple(sub, unwrap_singleton(sv), &sub_path)? {
            out.insert(sub.name.clone(), nv);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    if matches!(out.get("value"), Some(Value::String(s)) if s.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Value::Object(out)))
}

/// A one-element array where one value is expected stands for that value (Okta, Entra's
/// legacy manager list).
fn unwrap_singleton(v: Value) -> Value {
    match v {
        Value::Array(mut a) if a.len() == 1 => a.pop().unwrap_or(Value::Null),
        other => other,
    }
}

/// Normalises a whole attribute value: `Ok(None)` means unassigned.
pub fn normalize_attribute(def: &AttributeDef, v: Value, path: &str) -> ScimResult<Option<Value>> {
    if !def.multi_valued {
        return match unwrap_singleton(v) {
            Value::Array(a) if a.is_empty() => Ok(None),
            Value::Array(_) => Err(ScimError::invalid_value(format!(
                "attribute '{path}' is single-valued, got an array"
            ))),
            other => normalize_simple(def, other, path),
        };
    }
    let items = match v {
        Value::Null => return Ok(None),
        Value::Array(a) => a,
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.is_array() {
            return Err(ScimError::invalid_value(format!(
                "attribute '{path}' must be an array of values, not of arrays"
            )));
        }
        if let Some(nv) = normalize_simple(def, item, path)? {
            out.push(nv);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    if def.kind == AttributeType::Complex {
        let primaries = out
            .iter()
            .filter(|e| e.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "attribute '{path}' has {primaries} values marked primary; at most one may be"
            )));
        }
    }
    Ok(Some(Value::Array(out)))
}

/// Parses a POST/PUT body into a canonical resource of the view's type, without `id`/`meta`
/// (those are the server's). Applies the module-level rules.
pub fn parse_resource(view: &ResourceView<'_>, body: Value) -> ScimResult<Value> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(format!(
            "the request body must be a JSON object, got {}",
            type_name(&body)
        )));
    };
    let mut attrs = Map::new();
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            if !(v.is_array() || v.is_null()) {
                return Err(ScimError::invalid_syntax(
                    "'schemas' must be an array of URNs",
                ));
            }
            continue;
        }
        if let Some(def) = view.core_attribute(&k) {
            if def.mutability == Mutability::ReadOnly {
                continue;
            }
            if let Some(nv) = normalize_attribute(def, v, &def.name)? {
                attrs.insert(def.name.clone(), nv);
            }
            continue;
        }
        if let Some(ext) = view.extension(&k) {
            let Value::Object(inner) = v else {
                if v.is_null() {
                    continue;
                }
                return Err(mismatch(&ext.id, "an object", &v));
            };
            for (ik, iv) in inner {
                let Some(def) = ext.attribute(&ik) else {
                    continue;
                };
                if def.mutability == Mutability::ReadOnly {
                    continue;
                }
                let path = format!("{}:{}", ext.id, def.name);
                if let Some(nv) = normalize_attribute(def, iv, &path)? {
                    insert_ext(&mut attrs, &ext.id, &def.name, nv);
                }
            }
            continue;
        }
        // `urn:…:User:employeeNumber` spelled out at the top level.
        if let Some(r) = AttrPath::parse(&k)
            .filter(|p| p.urn.is_some() && p.sub.is_none())
            .and_then(|p| view.resolve(&p))
        {
            if r.attr.mutability == Mutability::ReadOnly {
                continue;
            }
            let path = format!("{}:{}", r.schema, r.attr.name);
            if let Some(nv) = normalize_attribute(r.attr, v, &path)? {
                if r.is_extension {
                    insert_ext(&mut attrs, r.schema, &r.attr.name, nv);
                } else {
                    attrs.insert(r.attr.name.clone(), nv);
                }
            }
        }
        // Anything else is an unknown attribute: ignored (see module docs).
    }
    let mut resource = Value::Object(attrs);
    check_required(view, &resource, |name| {
        ScimError::invalid_value(format!("attribute '{name}' is required"))
    })?;
    refresh_schemas(view, &mut resource);
    Ok(resource)
}

/// Stores an extension attribute under its schema URN.
fn insert_ext(attrs: &mut Map<String, Value>, urn: &str, name: &str, v: Value) {
    let slot = attrs
        .entry(urn.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = slot {
        m.insert(name.to_string(), v);
    }
}

/// Checks every required, client-writable attribute is present.
pub fn check_required(
    view: &ResourceView<'_>,
    resource: &Value,
    err: impl Fn(&str) -> ScimError,
) -> ScimResult<()> {
    for def in &view.core.attributes {
        if def.required && def.mutability != Mutability::ReadOnly {
            let present = get_ci(resource, &def.name).is_some_and(|v| !v.is_null());
            if !present {
                return Err(err(&def.name));
            }
        }
    }
    for ext in &view.extensions {
        let ext_required = view
            .resource_type
            .schema_extensions
            .iter()
            .any(|e| e.required && e.schema.eq_ignore_ascii_case(&ext.id));
        let body = get_ci(resource, &ext.id);
        if body.is_none() && !ext_required {
            continue;
        }
        for def in &ext.attributes {
            if def.required && def.mutability != Mutability::ReadOnly {
                let present = body
                    .and_then(|b| get_ci(b, &def.name))
                    .is_some_and(|v| !v.is_null());
                if !present {
                    return Err(err(&format!("{}:{}", ext.id, def.name)));
                }
            }
        }
    }
    Ok(())
}

/// Rewrites `schemas` to the core URN plus the URN of every extension with data, first.
pub fn refresh_schemas(view: &ResourceView<'_>, resource: &mut Value) {
    let Value::Object(obj) = resource else { return };
    let mut schemas = vec![Value::String(view.core.id.clone())];
    for ext in &view.extensions {
        if let Some(k) = find_key(obj, &ext.id) {
            let empty = obj
                .get(&k)
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if empty {
                obj.remove(&k);
            } else {
                schemas.push(Value::String(ext.id.clone()));
            }
        }
    }
    obj.remove("schemas");
    let mut out = Map::with_capacity(obj.len() + 1);
    out.insert("schemas".into(), Value::Array(schemas));
    out.extend(std::mem::take(obj));
    *obj = out;
}

/// PUT semantics for `immutable` attributes (RFC 7643 §7): a value, once set, may only be
/// "replaced" by the same value.
pub fn check_immutable(view: &ResourceView<'_>, old: &Value, new: &Value) -> ScimResult<()> {
    let check = |container_old: Option<&Value>,
                 container_new: Option<&Value>,
                 defs: &[AttributeDef],
                 prefix: &str| {
        for def in defs
            .iter()
            .filter(|d| d.mutability == Mutability::Immutable)
        {
            let o = container_old.and_then(|c| get_ci(c, &def.name));
            let n = container_new.and_then(|c| get_ci(c, &def.name));
            if let (Some(o), n) = (o, n)
                && !o.is_null()
                && n != Some(o)
            {
                return Err(ScimError::mutability(format!(
                    "attribute '{prefix}{}' is immutable",
                    def.name
                )));
            }
        }
        Ok(())
    };
    check(Some(old), Some(new), &view.core.attributes, "")?;
    for ext in &view.extensions {
        check(
            get_ci(old, &ext.id),
            get_ci(new, &ext.id),
            &ext.attributes,
            &format!("{}:", ext.id),
        )?;
    }
    Ok(())
}
