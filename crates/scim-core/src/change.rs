//! The change feed (docs/events.md): every committed change to a tenant's directory as
//! events with a per-tenant sequence, for the events API and webhooks.
//!
//! Nothing is written twice: a successful change's provisioning-log row carries a
//! [`ChangeRecord`] (the resource after the change, the member ids added and removed), and
//! the store gives the row the tenant's next `count` sequence numbers in the same
//! transaction. One row can stand for several events (a group created with three members is
//! `group.created` and three `group.member_added`); [`ChangeRecord::events`] expands it, in
//! the order the sequence numbers were given.

pub use crate::change_record::{ChangeRecord, ChangedResource};
use crate::event::{Event, Operation};
use crate::resource::ResourceKind;
use scim_proto::render::{self, Meta};
use serde::Serialize;
use serde_json::{Value, json};

/// The event types, in one scheme: `{user|group}.{what}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ChangeType {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deactivated")]
    UserDeactivated,
    #[serde(rename = "user.reactivated")]
    UserReactivated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "group.created")]
    GroupCreated,
    #[serde(rename = "group.updated")]
    GroupUpdated,
    #[serde(rename = "group.deleted")]
    GroupDeleted,
    #[serde(rename = "group.member_added")]
    MemberAdded,
    #[serde(rename = "group.member_removed")]
    MemberRemoved,
}

pub const ALL_CHANGE_TYPES: [ChangeType; 10] = [
    ChangeType::UserCreated,
    ChangeType::UserUpdated,
    ChangeType::UserDeactivated,
    ChangeType::UserReactivated,
    ChangeType::UserDeleted,
    ChangeType::GroupCreated,
    ChangeType::GroupUpdated,
    ChangeType::GroupDeleted,
    ChangeType::MemberAdded,
    ChangeType::MemberRemoved,
];

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::UserCreated => "user.created",
            ChangeType::UserUpdated => "user.updated",
            ChangeType::UserDeactivated => "user.deactivated",
            ChangeType::UserReactivated => "user.reactivated",
            ChangeType::UserDeleted => "user.deleted",
            ChangeType::GroupCreated => "group.created",
            ChangeType::GroupUpdated => "group.updated",
            ChangeType::GroupDeleted => "group.deleted",
            ChangeType::MemberAdded => "group.member_added",
            ChangeType::MemberRemoved => "group.member_removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_CHANGE_TYPES.into_iter().find(|t| t.as_str() == s)
    }

    /// The event a log operation's resource part is (member changes come on top).
    fn of_operation(op: Operation) -> Option<Self> {
        Some(match op {
            Operation::CreateUser => ChangeType::UserCreated,
            Operation::UpdateUser => ChangeType::UserUpdated,
            Operation::DeactivateUser => ChangeType::UserDeactivated,
            Operation::ReactivateUser => ChangeType::UserReactivated,
            Operation::HardDeleteUser => ChangeType::UserDeleted,
            Operation::CreateGroup => ChangeType::GroupCreated,
            Operation::UpdateGroup => ChangeType::GroupUpdated,
            Operation::DeleteGroup => ChangeType::GroupDeleted,
            Operation::AddMembers | Operation::RemoveMembers | Operation::Failure => return None,
        })
    }
}

/// Which types a consumer wants: a list of names, `user.*` / `group.*`, or everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter(Vec<ChangeType>);

impl TypeFilter {
    /// Comma- or space-separated names; empty means every type.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            let matched: Vec<ChangeType> = match part.strip_suffix(".*") {
                Some(prefix) => ALL_CHANGE_TYPES
                    .into_iter()
                    .filter(|t| t.as_str().split('.').next() == Some(prefix))
                    .collect(),
                None => ChangeType::parse(part).into_iter().collect(),
            };
            if matched.is_empty() {
                let names: Vec<&str> = ALL_CHANGE_TYPES.iter().map(|t| t.as_str()).collect();
                return Err(format!(
                    "unknown event type '{}': use {}, user.* or group.*",
                    scim_proto::error::excerpt(part),
                    names.join(", ")
                ));
            }
            for t in matched {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Ok(Self(out))
    }

    pub fn allows(&self, t: ChangeType) -> bool {
        self.0.is_empty() || self.0.contains(&t)
    }

    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }
}

/// Compact: a prefix whose every type is in reads `user.*` (parsing gives the same filter).
impl std::fmt::Display for TypeFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = |t: &ChangeType| t.as_str().split('.').next().unwrap_or_default();
        let mut names: Vec<String> = Vec::new();
        for t in &self.0 {
            let p = prefix(t);
            let whole = ALL_CHANGE_TYPES
                .iter()
                .filter(|a| prefix(a) == p)
                .all(|a| self.0.contains(a));
            let name = if whole {
                format!("{p}.*")
            } else {
                t.as_str().to_string()
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        f.write_str(&names.join(","))
    }
}

/// One event as the events API and webhooks send it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvent {
    /// Stable across retries and replays (the `webhook-id` of a delivery).
    pub id: String,
    pub sequence: i64,
    #[serde(rename = "type")]
    pub kind: ChangeType,
    pub time: String,
    pub tenant: String,
    pub resource_type: String,
    pub resource_id: String,
    /// The resource after the change (SCIM JSON without `members`); for member events
    /// `{"group_id", "member_id"}`.
    pub data: Value,
    /// Who caused it: the token (the IdP connection) and the request id.
    pub actor: Value,
}

impl ChangeRecord {
    /// How many events a row of `op` with this record stands for (0: none, e.g. a member add
    /// of someone already a member).
    pub fn count(&self, op: Operation) -> i64 {
        let own = i64::from(ChangeType::of_operation(op).is_some());
        own + self.added.len() as i64 + self.removed.len() as i64
    }
}

/// The events of one log row, in sequence order: the resource's own event, then members
/// removed, then members added. `base_url` is the tenant's SCIM base (for `meta.location`).
pub fn events_of(e: &Event, tenant_slug: &str, base_url: &str) -> Vec<ChangeEvent> {
    let Some(change) = &e.change else {
        return Vec::new();
    };
    let (Some(rtype), Some(rid)) = (e.resource_type.as_deref(), e.resource_id.as_deref()) else {
        return Vec::new();
    };
    let Some(kind) = ResourceKind::parse(rtype) else {
        return Vec::new();
    };
    let count = change.count(e.operation);
    let first = change.last_seq - count + 1;
    let time = scim_proto::datetime::format(e.at.to_datetime());
    let actor = json!({"token": e.token_name, "request_id": e.request_id});
    let make = |i: i64, kind_: ChangeType, data: Value| ChangeEvent {
        id: format!("evt_{}_{}", e.tenant_id, first + i),
        sequence: first + i,
        kind: kind_,
        time: time.clone(),
        tenant: tenant_slug.to_string(),
        resource_type: rtype.to_string(),
        resource_id: rid.to_string(),
        data,
        actor: actor.clone(),
    };
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    if let Some(t) = ChangeType::of_operation(e.operation) {
        let data = match &change.resource {
            Some(r) => {
                let meta = Meta {
                    created: r.created.to_datetime(),
                    last_modified: r.modified.to_datetime(),
                    version: r.version,
                };
                render::resource(kind, rid, &r.body, &meta, None, base_url)
            }
            None => json!({"id": rid}),
        };
        out.push(make(0, t, data));
    }
    let member = |m: &String| json!({"group_id": rid, "member_id": m});
    for m in &change.removed {
        let i = out.len() as i64;
        out.push(make(i, ChangeType::MemberRemoved, member(m)));
    }
    for m in &change.added {
        let i = out.len() as i64;
        out.push(make(i, ChangeType::MemberAdded, member(m)));
    }
    out
}

/// The feed's extent for a tenant: events `first..=head` are retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeBounds {
    /// The first sequence still retained (`head + 1` when none is).
    pub first: i64,
    /// The tenant's last sequence (0 before its first change).
    pub head: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::event::Operation;

    fn row(op: Operation, change: ChangeRecord) -> Event {
        Event {
            seq: 7,
            tenant_id: 3,
            at: Timestamp::from_micros(1_700_000_000_000_000),
            operation: op,
            resource_type: Some("Group".into()),
            resource_id: Some("g1".into()),
            resource_name: Some("Eng".into()),
            status: 201,
            scim_type: None,
            detail: None,
            token_name: Some("entra".into()),
            request_id: "r1".into(),
            client_addr: None,
            method: None,
            change: Some(change),
        }
    }

    #[test]
    fn a_row_expands_to_consecutive_sequences_ending_at_last_seq() {
        let res = ChangedResource {
            body: json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng"}),
            created: Timestamp::from_micros(0),
            modified: Timestamp::from_micros(0),
            version: 1,
        };
        let mut c = ChangeRecord::new(Some(res), vec!["u1".into(), "u2".into()], vec!["u0".into()]);
        assert_eq!(c.count(Operation::CreateGroup), 4);
        c.last_seq = 10;
        let evs = events_of(
            &row(Operation::CreateGroup, c.clone()),
            "acme",
            "http://x/t/acme/scim/v2",
        );
        let seqs: Vec<i64> = evs.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "group.created",
                "group.member_removed",
                "group.member_added",
                "group.member_added"
            ]
        );
        assert_eq!(evs[0].data["displayName"], "Eng");
        assert_eq!(
            evs[0].data["meta"]["location"],
            "http://x/t/acme/scim/v2/Groups/g1"
        );
        assert!(evs[0].data.get("members").is_none());
        assert_eq!(evs[3].data, json!({"group_id": "g1", "member_id": "u2"}));
        assert_eq!(evs[3].id, "evt_3_10");
        // Members only: no event of its own.
        assert_eq!(c.count(Operation::AddMembers), 3);
        // Stored form round-trips.
        assert_eq!(ChangeRecord::from_json(10, &c.to_json()), Some(c));
    }

    #[test]
    fn type_filters() {
        assert!(TypeFilter::parse("").unwrap().is_all());
        let f = TypeFilter::parse("user.*, group.member_added").unwrap();
        assert!(f.allows(ChangeType::UserDeleted));
        assert!(f.allows(ChangeType::MemberAdded));
        assert!(!f.allows(ChangeType::GroupCreated));
        assert_eq!(f.to_string(), "user.*,group.member_added");
        assert_eq!(TypeFilter::parse(&f.to_string()).unwrap(), f);
        assert!(
            TypeFilter::parse("user.exploded")
                .unwrap_err()
                .contains("unknown event type")
        );
        assert!(TypeFilter::parse("device.*").is_err());
    }
}
