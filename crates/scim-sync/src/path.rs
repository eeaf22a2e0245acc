//! Target attribute paths (`userName`, `name.givenName`, `emails[type eq "work"].value`,
//! `urn:…:enterprise:2.0:User:department`): read a value out of a resource, write one into
//! it, and coerce a mapped value to the attribute's SCIM type (RFC 7643 §2.3). The paths
//! are SCIM PATCH paths (RFC 7644 §3.5.2), parsed by scim-proto; the value filter is
//! evaluated here without a schema (`eq` on sub-attributes, `and`, `or`, `not`, `pr`), the
//! form every IdP mapping uses.

use crate::error::{SyncError, SyncResult};
use scim_core::ResourceKind as ObjectKind;
use scim_proto::schema::{AttributeType, standard_view};
use scim_proto::{CompValue, CompareOp, FilterExpr, PatchPath};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct TargetPath {
    pub text: String,
    path: PatchPath,
    /// The extension URN the attribute lives under, if any.
    extension: Option<String>,
    /// The leaf's type in the standard schemas (None: unknown, keep the value's own type).
    leaf_type: Option<AttributeType>,
    leaf_multi: bool,
    /// The whole of a multi-valued complex attribute with a `value` sub-attribute (`roles`,
    /// `entitlements`, `emails`…): plain values are written as `{"value": …}` elements.
    value_elements: bool,
}

impl TargetPath {
    pub fn parse(text: &str, kind: ObjectKind) -> SyncResult<Self> {
        let path = PatchPath::parse(text).map_err(|e| SyncError::Job(e.detail))?;
        let view = standard_view(kind);
        let resolved = view.resolve(&path.attr);
        let extension = match (&resolved, &path.attr.urn) {
            (Some(r), _) if r.is_extension => Some(r.schema.to_string()),
            (None, Some(u)) => Some(u.clone()),
            _ => None,
        };
        let (leaf_type, leaf_multi) = match &resolved {
            Some(r) => (
                Some(r.leaf().kind),
                r.leaf().multi_valued && r.sub.is_some() == path.attr.sub.is_some(),
            ),
            None => (None, false),
        };
        let value_elements = resolved.as_ref().is_some_and(|r| {
            r.sub.is_none()
                && r.attr.multi_valued
                && r.attr.has_value_sub_attribute()
                && path.attr.sub.is_none()
                && path.filter.is_none()
        });
        Ok(Self {
            text: text.to_string(),
            path,
            extension,
            leaf_type,
            leaf_multi,
            value_elements,
        })
    }

    /// Whether the standard schemas (or an explicit URN) define this attribute.
    pub fn is_known(&self) -> bool {
        self.leaf_type.is_some() || self.path.attr.urn.is_some()
    }

    pub fn extension(&self) -> Option<&str> {
        self.extension.as_deref()
    }

    fn container<'v>(&self, resource: &'v Value) -> Option<&'v Value> {
        match &self.extension {
            Some(urn) => scim_proto::json::get_ci(resource, urn),
            None => Some(resource),
        }
    }

    /// The value at this path in `resource`, if any.
    pub fn read(&self, resource: &Value) -> Option<Value> {
        let top = scim_proto::json::get_ci(self.container(resource)?, &self.path.attr.name)?;
        let picked = match &self.path.filter {
            Some(f) => top.as_array()?.iter().find(|e| element_matches(f, e))?,
            None => top,
        };
        let v = match &self.path.attr.sub {
            Some(sub) => scim_proto::json::get_ci(picked, sub)?,
            None => picked,
        };
        (!v.is_null()).then(|| v.clone())
    }

    /// Sets (or, for `Value::Null`, removes) the value at this path.
    pub fn write(&self, resource: &mut Value, value: Value) {
        let Some(root) = resource.as_object_mut() else {
            return;
        };
        if let Some(urn) = &self.extension {
            if !value.is_null() {
                add_schema(root, urn);
            }
            let ext = root
                .entry(urn.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(obj) = ext.as_object_mut() {
                self.write_in(obj, value);
            }
        } else {
            self.write_in(root, value);
        }
    }

    fn write_in(&self, obj: &mut Map<String, Value>, value: Value) {
        let name = scim_proto::json::find_key(obj, &self.path.attr.name)
            .unwrap_or_else(|| self.path.attr.name.clone());
        match (&self.path.filter, &self.path.attr.sub) {
            (None, None) => set_or_remove(obj, name, value),
            (None, Some(sub)) => {
                if value.is_null() && !obj.contains_key(&name) {
                    return;
                }
                let inner = obj.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Some(inner) = inner.as_object_mut() {
                    let key = scim_proto::json::find_key(inner, sub).unwrap_or_else(|| sub.clone());
                    set_or_remove(inner, key, value);
                }
            }
            (Some(filter), sub) => {
                let list = obj
                    .entry(name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !list.is_array() {
                    *list = Value::Array(Vec::new());
                }
                let Some(items) = list.as_array_mut() else {
                    return;
                };
                let at = items.iter().position(|e| element_matches(filter, e));
                match (at, sub, value.is_null()) {
                    (Some(i), None, true) => {
                        items.remove(i);
                    }
                    (None, _, true) => {}
                    (Some(i), None, false) => items[i] = value,
                    (Some(i), Some(sub), _) => {
                        if let Some(e) = items[i].as_object_mut() {
                            set_or_remove(e, sub.clone(), value);
                            // An element left with only its selector fields (and the
                            // `primary` flag written with it) is removed.
                            let selectors = equality_fields(filter);
                            if e.keys().all(|k| {
                                k == "primary"
                                    || selectors.iter().any(|(s, _)| s.eq_ignore_ascii_case(k))
                            }) {
                                items.remove(i);
                            }
                        }
                    }
                    (None, sub, false) => {
                        let mut e = Map::new();
                        for (k, v) in equality_fields(filter) {
                            e.insert(k, v);
                        }
                        match sub {
                            Some(sub) => {
                                e.insert(sub.clone(), value);
                            }
                            None => {
                                if let Value::Object(m) = value {
                                    e.extend(m);
                                }
                            }
                        }
                        // The first work e-mail or phone is the primary one, as Entra sends.
                        if items.is_empty()
                            && matches!(name.as_str(), "emails" | "phoneNumbers" | "addresses")
                        {
                            e.insert("primary".into(), Value::Bool(true));
                        }
                        items.push(Value::Object(e));
                    }
                }
                if items.is_empty() {
                    obj.remove(&name);
                }
            }
        }
    }

    /// A mapped value in the attribute's SCIM type: `"True"` → `true` for booleans, digits
    /// → a number for integers, a list's first element for single-valued attributes.
    pub fn coerce(&self, v: Value) -> Value {
        if self.value_elements {
            // RFC 7643 §2.4: a multi-valued complex attribute is a list of objects; a
            // source's plain role names become `[{"value": "Admin"}, …]`.
            let element = |e: Value| match e {
                Value::Object(_) | Value::Null => e,
                other => serde_json::json!({ "value": other }),
            };
            return match v {
                Value::Array(a) => Value::Array(
                    a.into_iter()
                        .map(element)
                        .filter(|e| !e.is_null())
                        .collect(),
                ),
                Value::Null => Value::Null,
                other => Value::Array(vec![element(other)]),
            };
        }
        let v = match v {
            Value::Array(mut a) if !self.leaf_multi && self.leaf_type.is_some() => {
                if a.is_empty() {
                    Value::Null
                } else {
                    a.swap_remove(0)
                }
            }
            v => v,
        };
        match (self.leaf_type, &v) {
            (Some(AttributeType::Boolean), Value::String(s)) => {
                scim_proto::json::parse_bool_str(s.trim()).map_or(v, Value::Bool)
            }
            (Some(AttributeType::Integer), Value::String(s)) => {
                s.trim().parse::<i64>().map_or(v, Value::from)
            }
            (
                Some(AttributeType::String | AttributeType::Reference | AttributeType::DateTime),
                Value::Bool(b),
            ) => Value::String(b.to_string()),
            (Some(AttributeType::String | AttributeType::Reference), Value::Number(n)) => {
                Value::String(n.to_string())
            }
            _ => v,
        }
    }
}

fn set_or_remove(obj: &mut Map<String, Value>, key: String, value: Value) {
    if value.is_null() {
        obj.remove(&key);
    } else {
        obj.insert(key, value);
    }
}

fn add_schema(root: &mut Map<String, Value>, urn: &str) {
    let schemas = root
        .entry("schemas")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = schemas.as_array_mut()
        && !list
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    {
        list.push(Value::String(urn.to_string()));
    }
}

fn comp_json(v: &CompValue) -> Value {
    match v {
        CompValue::Null => Value::Null,
        CompValue::Bool(b) => Value::Bool(*b),
        CompValue::Number(n) => Value::Number(n.clone()),
        CompValue::Str(s) => Value::String(s.clone()),
    }
}

/// The `sub eq value` pairs a value filter requires (what a new element must carry).
fn equality_fields(f: &FilterExpr) -> Vec<(String, Value)> {
    match f {
        FilterExpr::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } => vec![(
            path.sub.clone().unwrap_or_else(|| path.name.clone()),
            comp_json(value),
        )],
        FilterExpr::And(a, b) => {
            let mut v = equality_fields(a);
            v.extend(equality_fields(b));
            v
        }
        _ => Vec::new(),
    }
}

/// A value filter against one element, schema-free: strings compare case-insensitively
/// (the sub-attributes IdPs select on — `type`, `primary`, `value` — are caseExact false).
fn element_matches(f: &FilterExpr, e: &Value) -> bool {
    let field = |p: &scim_proto::AttrPath| {
        let name = p.sub.as_deref().unwrap_or(&p.name);
        scim_proto::json::get_ci(e, name).cloned()
    };
    match f {
        FilterExpr::Compare { path, op, value } => {
            let actual = field(path);
            let eq = match (&actual, value) {
                (Some(Value::String(a)), CompValue::Str(b)) => a.eq_ignore_ascii_case(b),
                (Some(a), v) => *a == comp_json(v),
                (None, CompValue::Null) => true,
                (None, _) => false,
            };
            match op {
                CompareOp::Eq => eq,
                CompareOp::Ne => !eq,
                _ => false,
            }
        }
        FilterExpr::Present(p) => field(p).is_some_and(|v| !v.is_null()),
        FilterExpr::And(a, b) => element_matches(a, e) && element_matches(b, e),
        FilterExpr::Or(a, b) => element_matches(a, e) || element_matches(b, e),
        FilterExpr::Not(a) => !element_matches(a, e),
        FilterExpr::ValuePath { .. } => false,
    }
}

/// A source attribute by SCIM path, for sources that carry SCIM-shaped JSON.
pub fn read_loose(v: &Value, name: &str) -> Option<Value> {
    TargetPath::parse(name, ObjectKind::User).ok()?.read(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> TargetPath {
        TargetPath::parse(s, ObjectKind::User).expect(s)
    }

    #[test]
    fn writes_build_the_shapes_idps_send() {
        let mut r = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]});
        p("userName").write(&mut r, json!("ada@example.com"));
        p("name.givenName").write(&mut r, json!("Ada"));
        p(r#"emails[type eq "work"].value"#).write(&mut r, json!("ada@example.com"));
        p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
            .write(&mut r, json!("R&D"));
        assert_eq!(
            r,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": "ada@example.com",
                "name": {"givenName": "Ada"},
                "emails": [{"type": "work", "value": "ada@example.com", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            })
        );
        assert_eq!(
            p(r#"emails[type eq "work"].value"#).read(&r),
            Some(json!("ada@example.com"))
        );
        assert_eq!(p("department").read(&r), Some(json!("R&D")));
        p(r#"emails[type eq "work"].value"#).write(&mut r, Value::Null);
        assert!(r.get("emails").is_none(), "{r}");
    }

    #[test]
    fn values_take_the_attribute_type() {
        assert_eq!(p("active").coerce(json!("False")), json!(false));
        assert_eq!(p("userName").coerce(json!(["a", "b"])), json!("a"));
        assert_eq!(p("title").coerce(json!(7)), json!("7"));
        // Multi-valued complex attributes take `{"value": …}` elements (RFC 7643 §2.4).
        assert_eq!(
            p("roles").coerce(json!(["Admin", "User"])),
            json!([{"value": "Admin"}, {"value": "User"}])
        );
        assert_eq!(
            p("roles").coerce(json!("Admin")),
            json!([{"value": "Admin"}])
        );
        assert_eq!(
            p("entitlements").coerce(json!([{"value": "e1", "type": "t"}])),
            json!([{"value": "e1", "type": "t"}])
        );
        assert_eq!(p("roles").coerce(Value::Null), Value::Null);
        // A path into one element stays a plain value.
        assert_eq!(
            p("roles[primary eq true].value").coerce(json!("A")),
            json!("A")
        );
    }
}
