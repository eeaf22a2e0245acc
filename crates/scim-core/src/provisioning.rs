//! The provisioning log: one event per SCIM request that changes something, and one per
//! failed request, written in the same transaction as the change (failures in their own).
//!
//! Events hold identifiers only (resource type, id, userName/displayName), never other
//! attribute values, and never secrets.

use crate::resource::{MemberOp, ResourceKind};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Operation {
    #[serde(rename = "Create User")]
    CreateUser,
    #[serde(rename = "Update User")]
    UpdateUser,
    #[serde(rename = "Deactivate User")]
    DeactivateUser,
    #[serde(rename = "Reactivate User")]
    ReactivateUser,
    #[serde(rename = "Hard Delete User")]
    HardDeleteUser,
    #[serde(rename = "Create Group")]
    CreateGroup,
    #[serde(rename = "Update Group")]
    UpdateGroup,
    #[serde(rename = "Add Members")]
    AddMembers,
    #[serde(rename = "Remove Members")]
    RemoveMembers,
    #[serde(rename = "Delete Group")]
    DeleteGroup,
    #[serde(rename = "Failure")]
    Failure,
}

pub const ALL_OPERATIONS: [Operation; 11] = [
    Operation::CreateUser,
    Operation::UpdateUser,
    Operation::DeactivateUser,
    Operation::ReactivateUser,
    Operation::HardDeleteUser,
    Operation::CreateGroup,
    Operation::UpdateGroup,
    Operation::AddMembers,
    Operation::RemoveMembers,
    Operation::DeleteGroup,
    Operation::Failure,
];

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateUser => "Create User",
            Operation::UpdateUser => "Update User",
            Operation::DeactivateUser => "Deactivate User",
            Operation::ReactivateUser => "Reactivate User",
            Operation::HardDeleteUser => "Hard Delete User",
            Operation::CreateGroup => "Create Group",
            Operation::UpdateGroup => "Update Group",
            Operation::AddMembers => "Add Members",
            Operation::RemoveMembers => "Remove Members",
            Operation::DeleteGroup => "Delete Group",
            Operation::Failure => "Failure",
        }
    }

    /// Accepts the display name or a compact form (`create-user`, `createuser`).
    pub fn parse(s: &str) -> Option<Self> {
        let norm = |x: &str| {
            x.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let want = norm(s);
        ALL_OPERATIONS
            .into_iter()
            .find(|o| norm(o.as_str()) == want)
    }

    pub fn create(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::User => Operation::CreateUser,
            ResourceKind::Group => Operation::CreateGroup,
        }
    }

    pub fn delete(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::User => Operation::HardDeleteUser,
            ResourceKind::Group => Operation::DeleteGroup,
        }
    }

    /// A user update, named by what happened to `active`.
    pub fn user_update(before: &Value, after: &Value) -> Self {
        let active = |v: &Value| v.get("active").and_then(Value::as_bool).unwrap_or(true);
        match (active(before), active(after)) {
            (true, false) => Operation::DeactivateUser,
            (false, true) => Operation::ReactivateUser,
            _ => Operation::UpdateUser,
        }
    }

    /// A group update: membership-only changes are named by their direction.
    pub fn group_update(body_changed: bool, member_ops: &[MemberOp]) -> Self {
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
}

/// Who asked: carried from the HTTP layer into every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestContext {
    pub token_name: Option<String>,
    pub request_id: String,
    pub client_addr: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub tenant_id: i64,
    /// Microseconds since the epoch.
    pub at: i64,
    pub operation: Operation,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub token_name: Option<String>,
    pub request_id: String,
    pub client_addr: Option<String>,
}

/// What the service asks the store to log with a write; the store fills in the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub operation: Operation,
    pub status: u16,
    pub ctx: RequestContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// Filters for reading the log; newest first, keyset-paginated by `before_seq`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub operations: Vec<Operation>,
    pub outcome: Option<Outcome>,
    pub resource_type: Option<ResourceKind>,
    /// Matches the resource id exactly or the userName/displayName case-insensitively.
    pub resource: Option<String>,
    pub token_name: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Neutralises spreadsheet formulas and quotes per RFC 4180.
fn csv_cell(out: &mut String, s: &str) {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = if risky {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

pub const CSV_HEADER: &str = "time,operation,resource_type,resource_id,resource_name,status,scim_type,detail,token,request_id,client_address";

/// Events as CSV (RFC 4180), with a header row.
pub fn to_csv(events: &[Event]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for e in events {
        let cells = [
            crate::format_micros(e.at),
            e.operation.as_str().to_string(),
            e.resource_type.clone().unwrap_or_default(),
            e.resource_id.clone().unwrap_or_default(),
            e.resource_name.clone().unwrap_or_default(),
            e.status.to_string(),
            e.scim_type.clone().unwrap_or_default(),
            e.detail.clone().unwrap_or_default(),
            e.token_name.clone().unwrap_or_default(),
            e.request_id.clone(),
            e.client_addr.clone().unwrap_or_default(),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(&mut out, c);
        }
        let _ = write!(out, "\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_are_named_by_effect() {
        assert_eq!(
            Operation::user_update(&json!({"active": true}), &json!({"active": false})),
            Operation::DeactivateUser
        );
        assert_eq!(
            Operation::user_update(&json!({"active": false}), &json!({"active": true})),
            Operation::ReactivateUser
        );
        assert_eq!(
            Operation::user_update(&json!({}), &json!({"title": "x"})),
            Operation::UpdateUser
        );
        assert_eq!(
            Operation::group_update(false, &[MemberOp::Add(vec![])]),
            Operation::AddMembers
        );
        assert_eq!(
            Operation::group_update(false, &[MemberOp::Remove(vec![]), MemberOp::Clear]),
            Operation::RemoveMembers
        );
        assert_eq!(
            Operation::group_update(false, &[MemberOp::Clear, MemberOp::Add(vec![])]),
            Operation::UpdateGroup
        );
        assert_eq!(
            Operation::group_update(true, &[MemberOp::Add(vec![])]),
            Operation::UpdateGroup
        );
        assert_eq!(
            Operation::parse("hard-delete-user"),
            Some(Operation::HardDeleteUser)
        );
        assert_eq!(Operation::parse("Failure"), Some(Operation::Failure));
        assert_eq!(Operation::parse("nope"), None);
    }

    #[test]
    fn csv_escapes_quotes_commas_newlines_and_formulas() {
        let e = Event {
            seq: 1,
            tenant_id: 1,
            at: 0,
            operation: Operation::Failure,
            resource_type: Some("User".into()),
            resource_id: None,
            resource_name: Some("=HYPERLINK(\"x\")".into()),
            status: 409,
            scim_type: Some("uniqueness".into()),
            detail: Some("a, \"b\"\nc".into()),
            token_name: Some("Entra".into()),
            request_id: "r1".into(),
            client_addr: None,
        };
        let csv = to_csv(&[e]);
        let row = csv.split("\r\n").nth(1).unwrap();
        assert_eq!(
            row,
            "1970-01-01T00:00:00Z,Failure,User,,\"'=HYPERLINK(\"\"x\"\")\",409,uniqueness,\"a, \"\"b\"\"\nc\",Entra,r1,"
        );
    }
}
