//! Directory API resources as source objects (pure; table-tested with the documented shapes).
//!
//! - A user's attributes are its resource as Google sends it (`primaryEmail`, `name`,
//!   `orgUnitPath`, `emails`, `phones`, `organizations`, `relations`, `customSchemas`…),
//!   each custom schema field also by its full name (`customSchemas.Dept.code`), plus
//!   `manager`: the source id of the user its `relations[type=manager]` names (Google gives
//!   an e-mail address), for a `reference = true` mapping. `suspended` or `archived` is the
//!   user's suspended state; an absent boolean is false.
//! - A group's members are the ids of its `USER` and `GROUP` members (nested groups are
//!   flattened by the engine per `[scope] nested`); a `CUSTOMER` member (the whole domain)
//!   stands for every user; `EXTERNAL` members (people outside the domain) are skipped and
//!   counted.

use crate::model::{ObjectKind, SourceObject};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What reading one group's members came to.
#[derive(Debug, Default, PartialEq)]
pub struct Members {
    pub ids: Vec<String>,
    /// `EXTERNAL` members (or of a type this source does not know), skipped.
    pub skipped: usize,
    /// A `CUSTOMER` member: the group holds the whole domain.
    pub customer: bool,
}

/// Fields that change without the person changing (each sign-in, each read): kept out, so
/// a quiet directory reads as unchanged and its ledger is not rewritten every cycle.
const VOLATILE: [&str; 4] = ["etag", "lastLoginTime", "thumbnailPhotoEtag", "kind"];

fn stable(v: &Value) -> Option<serde_json::Map<String, Value>> {
    let mut m = v.as_object()?.clone();
    for k in VOLATILE {
        m.remove(k);
    }
    Some(m)
}

pub fn user(u: &Value) -> Option<SourceObject> {
    let id = u.get("id")?.as_str()?;
    let mut o = SourceObject::new(ObjectKind::User, id);
    o.attributes = stable(u)?;
    // Custom schema fields by their full name (`[customSchemas.Dept.code]`): an attribute
    // path has two levels at most.
    let custom = u.get("customSchemas").and_then(Value::as_object);
    for (schema, fields) in custom.into_iter().flatten() {
        for (field, v) in fields.as_object().into_iter().flatten() {
            o.attributes
                .insert(format!("customSchemas.{schema}.{field}"), v.clone());
        }
    }
    let flag = |k: &str| u.get(k).and_then(Value::as_bool).unwrap_or(false);
    o.suspended = flag("suspended") || flag("archived");
    Some(o)
}

pub fn group(g: &Value) -> Option<SourceObject> {
    let id = g.get("id")?.as_str()?;
    let mut o = SourceObject::new(ObjectKind::Group, id);
    o.attributes = stable(g)?;
    Some(o)
}

/// The e-mail address of a user's manager (`relations[type=manager].value`).
pub fn manager_email(u: &SourceObject) -> Option<String> {
    u.attributes
        .get("relations")?
        .as_array()?
        .iter()
        .find(|r| r.get("type").and_then(Value::as_str) == Some("manager"))?
        .get("value")?
        .as_str()
        .map(str::to_ascii_lowercase)
}

/// Every address a user is known by (primary, aliases, other e-mails), lower-cased.
fn addresses(u: &SourceObject) -> Vec<String> {
    let a = &u.attributes;
    let mut out: Vec<String> = Vec::new();
    if let Some(p) = a.get("primaryEmail").and_then(Value::as_str) {
        out.push(p.to_ascii_lowercase());
    }
    for key in ["aliases", "nonEditableAliases"] {
        for v in a.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = v.as_str() {
                out.push(s.to_ascii_lowercase());
            }
        }
    }
    for e in a
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(s) = e.get("address").and_then(Value::as_str) {
            out.push(s.to_ascii_lowercase());
        }
    }
    out
}

/// Sets each user's `manager` attribute to its manager's source id (when the manager is a
/// user of the read).
pub fn resolve_managers(users: &mut [SourceObject]) {
    let mut by_address: HashMap<String, String> = HashMap::new();
    for u in users.iter() {
        for a in addresses(u) {
            by_address.entry(a).or_insert_with(|| u.id.clone());
        }
    }
    for u in users.iter_mut() {
        let id = manager_email(u).and_then(|m| by_address.get(&m).cloned());
        match id {
            Some(id) => {
                u.attributes.insert("manager".into(), json!(id));
            }
            None => {
                u.attributes.remove("manager");
            }
        }
    }
}

/// A group's member list as source ids.
pub fn members(list: &[Value]) -> Members {
    let mut out = Members::default();
    for m in list {
        let id = m.get("id").and_then(Value::as_str);
        match (m.get("type").and_then(Value::as_str), id) {
            (Some("USER" | "GROUP"), Some(id)) => out.ids.push(id.to_string()),
            (Some("CUSTOMER"), _) => out.customer = true,
            _ => out.skipped += 1,
        }
    }
    out
}

/// `directMembersCount` (an int64 sent as a string), when the group says it.
pub fn direct_members_count(g: &serde_json::Map<String, Value>) -> Option<usize> {
    match g.get("directMembersCount")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_as_google_sends_them() {
        let cases = [
            (json!({"id": "1", "primaryEmail": "a@x.com"}), Some(false)),
            (json!({"id": "2", "suspended": true}), Some(true)),
            (
                json!({"id": "3", "suspended": false, "archived": true}),
                Some(true),
            ),
            (json!({"id": "4", "suspended": "yes"}), Some(false)),
            (json!({"primaryEmail": "no-id@x.com"}), None),
            (json!({"id": 5}), None),
        ];
        for (u, suspended) in cases {
            assert_eq!(user(&u).map(|o| o.suspended), suspended, "{u}");
        }
        let o = user(&json!({"id": "1", "name": {"givenName": "Ann"}, "etag": "\"e1\"",
            "lastLoginTime": "2026-12-07T08:00:00.000Z",
            "customSchemas": {"Dept": {"code": "R7", "sites": [{"value": "Oslo", "type": "work"}]}}}))
        .expect("a user");
        assert_eq!(o.attributes["name"]["givenName"], "Ann");
        assert_eq!(o.attributes["customSchemas.Dept.code"], "R7");
        assert!(!o.attributes.contains_key("etag") && !o.attributes.contains_key("lastLoginTime"));
        assert_eq!(o.attributes["customSchemas.Dept.sites"][0]["value"], "Oslo");
    }

    #[test]
    fn member_types() {
        let list = [
            json!({"kind": "admin#directory#member", "id": "u1", "type": "USER", "status": "ACTIVE"}),
            json!({"id": "u2", "type": "USER", "status": "SUSPENDED"}),
            json!({"id": "g1", "type": "GROUP"}),
            json!({"id": "C0123", "type": "CUSTOMER", "role": "MEMBER"}),
            json!({"id": "e1", "email": "guest@other.com", "type": "EXTERNAL"}),
            json!({"id": "x", "type": "SOMETHING_NEW"}),
            json!({"type": "USER"}),
        ];
        let m = members(&list);
        assert_eq!(m.ids, ["u1", "u2", "g1"]);
        assert!(m.customer);
        assert_eq!(m.skipped, 3);
    }

    #[test]
    fn managers_by_address() {
        let mut users: Vec<SourceObject> = [
            json!({"id": "1", "primaryEmail": "Boss@x.com"}),
            json!({"id": "2", "primaryEmail": "a@x.com",
                   "relations": [{"value": "boss@x.com", "type": "manager"}]}),
            json!({"id": "3", "primaryEmail": "b@x.com", "aliases": ["bee@x.com"],
                   "relations": [{"value": "a@x.com", "type": "dotted_line_manager"}]}),
            json!({"id": "4", "primaryEmail": "c@x.com",
                   "relations": [{"value": "BEE@x.com", "type": "manager"}]}),
            json!({"id": "5", "primaryEmail": "d@x.com", "manager": "stale",
                   "relations": [{"value": "gone@x.com", "type": "manager"}]}),
        ]
        .iter()
        .filter_map(user)
        .collect();
        resolve_managers(&mut users);
        let manager: Vec<Option<&str>> = users
            .iter()
            .map(|u| u.attributes.get("manager").and_then(Value::as_str))
            .collect();
        assert_eq!(manager, [None, Some("1"), None, Some("3"), None]);
    }

    #[test]
    fn member_counts_as_strings() {
        let cases = [
            (json!({"directMembersCount": "1200"}), Some(1200)),
            (json!({"directMembersCount": 3}), Some(3)),
            (json!({"directMembersCount": "many"}), None),
            (json!({}), None),
        ];
        for (g, want) in cases {
            let g = g.as_object().cloned().unwrap_or_default();
            assert_eq!(direct_members_count(&g), want, "{g:?}");
        }
    }
}
