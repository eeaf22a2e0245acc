//! Stored resources and the writes the service asks the store to make.
//!
//! A resource is stored as its canonical JSON body (no `id`, `meta` or `members`) plus
//! indexed shadow fields the store keeps in columns for filtering, sorting and uniqueness.
//! Group membership is stored as rows, never inside the body, so that adding one member to a
//! group of 100,000 touches one row.

use scim_proto::FilterExpr;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(Self::User),
            "Group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// One group member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub value: String,
    pub kind: ResourceKind,
    /// displayName of the member (userName for a user without one).
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub kind: ResourceKind,
    pub id: String,
    pub body: Value,
    pub created_at: i64,
    pub modified_at: i64,
    pub version: i64,
    /// Loaded only when asked for.
    pub members: Option<Vec<Member>>,
}

impl StoredResource {
    /// The weak ETag of this version (RFC 7644 §3.14).
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// The resource as the filter evaluator and the response see it: body, `id`, `meta`,
    /// and `members` when loaded. `base_url` is the tenant's SCIM base URL.
    pub fn to_scim(&self, base_url: &str) -> Value {
        let mut out = Map::new();
        if let Value::Object(body) = &self.body {
            if let Some(s) = body.get("schemas") {
                out.insert("schemas".into(), s.clone());
            }
            out.insert("id".into(), Value::String(self.id.clone()));
            for (k, v) in body {
                if k != "schemas" {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(members) = &self.members {
            let list: Vec<Value> = members
                .iter()
                .map(|m| {
                    let mut o = Map::new();
                    o.insert("value".into(), Value::String(m.value.clone()));
                    o.insert(
                        "$ref".into(),
                        Value::String(format!("{base_url}/{}/{}", m.kind.endpoint(), m.value)),
                    );
                    o.insert("type".into(), Value::String(m.kind.as_str().into()));
                    if let Some(d) = &m.display {
                        o.insert("display".into(), Value::String(d.clone()));
                    }
                    Value::Object(o)
                })
                .collect();
            out.insert("members".into(), Value::Array(list));
        }
        let mut meta = Map::new();
        meta.insert(
            "resourceType".into(),
            Value::String(self.kind.as_str().into()),
        );
        meta.insert(
            "created".into(),
            Value::String(crate::format_micros(self.created_at)),
        );
        meta.insert(
            "lastModified".into(),
            Value::String(crate::format_micros(self.modified_at)),
        );
        meta.insert(
            "location".into(),
            Value::String(format!("{base_url}/{}/{}", self.kind.endpoint(), self.id)),
        );
        meta.insert("version".into(), Value::String(self.etag()));
        out.insert("meta".into(), Value::Object(meta));
        Value::Object(out)
    }
}

/// Values the store keeps in indexed columns, derived from the canonical body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexedFields {
    /// userName (users) or displayName (groups): the per-tenant unique name.
    pub unique_name: Option<String>,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub active: Option<bool>,
    /// `emails[].value`, lower-cased.
    pub emails: Vec<String>,
}

/// Lower-casing used for every case-insensitive comparison, in SQL columns and in memory.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

impl IndexedFields {
    pub fn from_body(kind: ResourceKind, body: &Value) -> Self {
        let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let unique_name = match kind {
            ResourceKind::User => s("userName"),
            ResourceKind::Group => s("displayName"),
        };
        let emails = body
            .get("emails")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get("value").and_then(Value::as_str))
                    .map(fold)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            unique_name,
            display_name: s("displayName"),
            external_id: s("externalId"),
            active: body.get("active").and_then(Value::as_bool),
            emails,
        }
    }
}

/// A change to a group's membership, applied in order inside the write's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    /// Add these member ids (users or groups of the tenant); existing members are kept.
    Add(Vec<String>),
    /// Remove these member ids; absent ones are ignored.
    Remove(Vec<String>),
    /// Remove every member.
    Clear,
    /// Remove the members a value filter matches (`members[type eq "Group"]`).
    RemoveMatching(FilterExpr),
}

/// What to store for a create or an update.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub body: Value,
    pub fields: IndexedFields,
    pub member_ops: Vec<MemberOp>,
    /// The provisioning-log event to write in the same transaction, if logging is on.
    pub log: Option<crate::provisioning::LogEntry>,
}
