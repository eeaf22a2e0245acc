//! The server-made parts of a resource as it goes over the wire (RFC 7643 §3.1, §4.1.2,
//! §4.2): `id`, `meta`, group `members` and a user's read-only `groups`.
//!
//! Stored bodies hold only client-writable attributes; everything here is derived at read
//! time, so that a member added to a group of 100,000 changes one row, not a document.

use crate::datetime;
use crate::etag::etag_of;
use crate::filter::FilterExpr;
use crate::kind::ResourceKind;
use crate::schema::standard_view;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// What `meta` says about a stored resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    pub version: i64,
}

/// One member of a group, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
    pub kind: ResourceKind,
    /// The member's `displayName` (a user without one: its `userName`).
    pub display: Option<String>,
}

/// A group a user is a direct member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub value: String,
    pub display: String,
}

/// `{base_url}/{Users|Groups}/{id}`.
pub fn location(base_url: &str, kind: ResourceKind, id: &str) -> String {
    format!("{base_url}/{}/{id}", kind.endpoint())
}

/// A member as a `members` value (RFC 7643 §4.2): `value`, `$ref`, `type`, `display`.
pub fn member_value(m: &MemberRef, base_url: &str) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), Value::String(m.value.clone()));
    o.insert(
        "$ref".into(),
        Value::String(location(base_url, m.kind, &m.value)),
    );
    o.insert("type".into(), Value::String(m.kind.as_str().into()));
    if let Some(d) = &m.display {
        o.insert("display".into(), Value::String(d.clone()));
    }
    Value::Object(o)
}

/// Whether a member matches a `members[...]` value filter (`members[type eq "Group"]`).
pub fn member_matches(filter: &FilterExpr, m: &MemberRef) -> bool {
    let view = standard_view(ResourceKind::Group);
    let Some(def) = view.core_attribute("members") else {
        return false;
    };
    filter.matches_element(&view, def, &member_value(m, ""))
}

/// The full representation: `schemas`, `id`, the body, `members` (when loaded) and `meta`.
pub fn resource(
    kind: ResourceKind,
    id: &str,
    body: &Value,
    meta: &Meta,
    members: Option<&[MemberRef]>,
    base_url: &str,
) -> Value {
    let mut out = Map::new();
    if let Value::Object(body) = body {
        if let Some(s) = body.get("schemas") {
            out.insert("schemas".into(), s.clone());
        }
        out.insert("id".into(), Value::String(id.to_string()));
        for (k, v) in body {
            if k != "schemas" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(members) = members {
        let list = members.iter().map(|m| member_value(m, base_url)).collect();
        out.insert("members".into(), Value::Array(list));
    }
    let mut m = Map::new();
    m.insert("resourceType".into(), Value::String(kind.as_str().into()));
    m.insert(
        "created".into(),
        Value::String(datetime::format(meta.created)),
    );
    m.insert(
        "lastModified".into(),
        Value::String(datetime::format(meta.last_modified)),
    );
    m.insert(
        "location".into(),
        Value::String(location(base_url, kind, id)),
    );
    m.insert("version".into(), Value::String(etag_of(meta.version)));
    out.insert("meta".into(), Value::Object(m));
    Value::Object(out)
}

/// Sets a user's read-only `groups` (RFC 7643 §4.1.2: direct memberships only).
pub fn set_groups(user: &mut Value, groups: &[GroupRef], base_url: &str) {
    let list = groups
        .iter()
        .map(|g| {
            serde_json::json!({"value": g.value,
                               "$ref": location(base_url, ResourceKind::Group, &g.value),
                               "display": g.display, "type": "direct"})
        })
        .collect();
    if let Value::Object(o) = user {
        o.insert("groups".into(), Value::Array(list));
    }
}
