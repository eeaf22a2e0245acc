//! Stored resources and the writes the service asks the store to make.
//!
//! A resource is stored as its canonical JSON body (no `id`, `meta` or `members`) plus
//! indexed shadow fields the store keeps in columns for filtering, sorting and uniqueness.
//! Group membership is stored as rows, never inside the body, so that adding one member to a
//! group of 100,000 touches one row.

use crate::clock::Timestamp;
use crate::event::Operation;
use scim_proto::FilterExpr;
use serde_json::Value;

pub use scim_proto::ResourceKind;

/// One group member as stored (its `display` is the member's current displayName).
pub type Member = scim_proto::render::MemberRef;

/// A group a user is directly in.
pub use scim_proto::render::GroupRef;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub kind: ResourceKind,
    pub id: String,
    pub body: Value,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub version: i64,
    /// A group's members; loaded only when asked for.
    pub members: Option<Vec<Member>>,
    /// A user's direct groups, when the store read them with the user (then a response
    /// needs no second query); `Some(empty)` for a user known to be in none.
    pub groups: Option<Vec<GroupRef>>,
}

impl StoredResource {
    /// The weak ETag of this version (RFC 7644 §3.14).
    pub fn etag(&self) -> String {
        scim_proto::etag::etag_of(self.version)
    }

    /// What `meta` says.
    pub fn meta(&self) -> scim_proto::render::Meta {
        scim_proto::render::Meta {
            created: self.created_at.to_datetime(),
            last_modified: self.modified_at.to_datetime(),
            version: self.version,
        }
    }

    /// The resource as the filter evaluator and the response see it: body, `id`, `meta`,
    /// and `members` when loaded. `base_url` is the tenant's SCIM base URL.
    pub fn to_scim(&self, base_url: &str) -> Value {
        scim_proto::render::resource(
            self.kind,
            &self.id,
            &self.body,
            &self.meta(),
            self.members.as_deref(),
            base_url,
        )
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

/// The fold used for every case-insensitive comparison, in SQL columns and in memory
/// (lower case and Unicode NFC: `scim_proto::text`).
pub use scim_proto::text::fold;

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

/// A resource's stored size must stay under `max` bytes (its JSON, counted without being
/// built): a PATCH that adds to a user again and again cannot grow it without bound.
/// `413` otherwise.
pub fn check_size(
    kind: ResourceKind,
    body: &Value,
    max: usize,
) -> Result<(), scim_proto::ScimError> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing a Value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut n, body);
    if n.0 > max {
        return Err(scim_proto::ScimError::payload_too_large(format!(
            "the {} would be {} bytes; a resource may hold at most {max}",
            kind.as_str().to_lowercase(),
            n.0
        )));
    }
    Ok(())
}

/// The names people and logs read must be readable: `userName` (users) and `displayName`
/// (both) may not be blank or hold control characters (which forge log lines and terminal
/// escapes). `400 invalidValue` otherwise; checked on every create, replace and patch.
pub fn check_names(kind: ResourceKind, body: &Value) -> Result<(), scim_proto::ScimError> {
    let names: &[&str] = match kind {
        ResourceKind::User => &["userName", "displayName"],
        ResourceKind::Group => &["displayName"],
    };
    for name in names {
        let Some(v) = body.get(*name).and_then(Value::as_str) else {
            continue;
        };
        if v.trim().is_empty() {
            return Err(scim_proto::ScimError::invalid_value(format!(
                "'{name}' cannot be blank"
            )));
        }
        if v.chars().any(char::is_control) {
            return Err(scim_proto::ScimError::invalid_value(format!(
                "'{name}' cannot contain control characters"
            )));
        }
    }
    Ok(())
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

/// A group update: membership-only changes are named by their direction.
pub fn group_operation(body_changed: bool, member_ops: &[MemberOp]) -> Operation {
    if body_changed || member_ops.is_empty() {
        return Operation::UpdateGroup;
    }
    let adds = member_ops.iter().all(|o| matches!(o, MemberOp::Add(_)));
    let removes = member_ops.iter().all(|o| {
        matches!(
            o,
            MemberOp::Remove(_) | MemberOp::Clear | MemberOp::RemoveMatching(_)
        )
    });
    if adds {
        Operation::AddMembers
    } else if removes {
        Operation::RemoveMembers
    } else {
        Operation::UpdateGroup
    }
}

/// What to store for a create or an update.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub body: Value,
    pub fields: IndexedFields,
    pub member_ops: Vec<MemberOp>,
    /// The provisioning-log event to write in the same transaction, if logging is on.
    pub log: Option<crate::event::LogEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_writes_are_named_by_effect() {
        assert_eq!(
            group_operation(false, &[MemberOp::Add(vec![])]),
            Operation::AddMembers
        );
        assert_eq!(
            group_operation(false, &[MemberOp::Remove(vec![]), MemberOp::Clear]),
            Operation::RemoveMembers
        );
        assert_eq!(
            group_operation(false, &[MemberOp::Clear, MemberOp::Add(vec![])]),
            Operation::UpdateGroup
        );
        assert_eq!(
            group_operation(true, &[MemberOp::Add(vec![])]),
            Operation::UpdateGroup
        );
    }
}
