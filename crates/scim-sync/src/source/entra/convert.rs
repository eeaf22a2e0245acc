//! Graph delta items as source objects (pure; table-tested with the documented shapes).
//!
//! - A user's attributes are its Graph properties (`userPrincipalName`, `mail`, `jobTitle`,
//!   `employeeId`, `onPremisesImmutableId`…), without `@odata` annotations, plus `manager`
//!   (the manager's id, from `manager@delta`) and `userName`: the UPN, except for a B2B guest
//!   (`…#EXT#@…`), whose UPN no app knows: its `mail`, else the address the UPN encodes.
//!   `accountEnabled = false` is the suspended state.
//! - An item with `@removed` is gone: `deleted` for good, `changed` soft-deleted (restorable
//!   for 30 days).
//! - A group's `members@delta` entries of type user or group are members (`@removed`: no
//!   longer); other directory objects (devices, contacts, service principals) are skipped.

use crate::model::{ObjectKind, SourceObject};
use serde_json::{Map, Value, json};

/// How an item left the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// Soft-deleted: in the deleted items, restorable for 30 days.
    Soft,
    Deleted,
}

/// One delta item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Present(SourceObject),
    Removed(String, Removed),
}

pub fn removed(v: &Value) -> Option<Removed> {
    let r = v.get("@removed")?;
    Some(match r.get("reason").and_then(Value::as_str) {
        Some("changed") => Removed::Soft,
        _ => Removed::Deleted,
    })
}

/// The address a guest's UPN encodes: `alice_contoso.com#EXT#@fabrikam.onmicrosoft.com` →
/// `alice@contoso.com`.
pub fn guest_address(upn: &str) -> Option<String> {
    let local = upn.split("#EXT#").next()?;
    let at = local.rfind('_')?;
    Some(format!("{}@{}", &local[..at], &local[at + 1..]))
}

fn attributes(v: &Value) -> Map<String, Value> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !k.contains('@'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Directory-object references of `key@delta` (`members@delta`, `manager@delta`): the ids
/// added and removed, in order, of users and groups only.
pub fn references(v: &Value, key: &str) -> (Vec<String>, Vec<String>) {
    let mut added = Vec::new();
    let mut gone = Vec::new();
    for m in v.get(key).and_then(Value::as_array).into_iter().flatten() {
        let Some(id) = m.get("id").and_then(Value::as_str) else {
            continue;
        };
        let kind = m.get("@odata.type").and_then(Value::as_str);
        if !matches!(
            kind,
            None | Some("#microsoft.graph.user" | "#microsoft.graph.group")
        ) {
            continue;
        }
        if m.get("@removed").is_some() {
            gone.push(id.to_string());
        } else {
            added.push(id.to_string());
        }
    }
    (added, gone)
}

pub fn user(v: &Value) -> Option<Item> {
    let id = v.get("id")?.as_str()?;
    if let Some(r) = removed(v) {
        return Some(Item::Removed(id.to_string(), r));
    }
    let mut o = SourceObject::new(ObjectKind::User, id);
    o.attributes = attributes(v);
    o.suspended = v.get("accountEnabled").and_then(Value::as_bool) == Some(false);
    if let Some(upn) = v.get("userPrincipalName").and_then(Value::as_str) {
        let name = if upn.contains("#EXT#") {
            v.get("mail")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| guest_address(upn))
                .unwrap_or_else(|| upn.to_string())
        } else {
            upn.to_string()
        };
        o.attributes.insert("userName".into(), json!(name));
    }
    if v.get("manager@delta").is_some() {
        let (added, _) = references(v, "manager@delta");
        o.attributes.insert(
            "manager".into(),
            added.last().map_or(Value::Null, |m| json!(m)),
        );
    }
    Some(Item::Present(o))
}

/// A group item; its members are the caller's (`references(v, "members@delta")`).
pub fn group(v: &Value) -> Option<Item> {
    let id = v.get("id")?.as_str()?;
    if let Some(r) = removed(v) {
        return Some(Item::Removed(id.to_string(), r));
    }
    let mut o = SourceObject::new(ObjectKind::Group, id);
    o.attributes = attributes(v);
    Some(Item::Present(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(i: Option<Item>) -> SourceObject {
        match i {
            Some(Item::Present(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn users_as_graph_sends_them() {
        let u = present(user(&json!({
            "@odata.type": "#microsoft.graph.user", "id": "u1",
            "userPrincipalName": "ada@contoso.com", "accountEnabled": true,
            "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}]})));
        assert_eq!(u.attributes["userName"], "ada@contoso.com");
        assert_eq!(u.attributes["manager"], "m1");
        assert!(!u.attributes.contains_key("@odata.type"));
        assert!(!u.suspended);
        let off = present(user(&json!({"id": "u2", "accountEnabled": false})));
        assert!(off.suspended);
        let cases = [
            (
                json!({"id": "g", "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                    "mail": "Bob@Fabrikam.com"}),
                "Bob@Fabrikam.com",
            ),
            (
                json!({"id": "g", "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"}),
                "bob@fabrikam.com",
            ),
            (
                json!({"id": "g", "userPrincipalName": "a_b_c.org#EXT#@x.onmicrosoft.com"}),
                "a_b@c.org",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(present(user(&v)).attributes["userName"], want, "{v}");
        }
        let left = present(user(&json!({"id": "u3", "manager@delta": [
            {"id": "m1", "@removed": {"reason": "deleted"}}]})));
        assert_eq!(left.attributes["manager"], Value::Null, "cleared");
    }

    #[test]
    fn removals() {
        let cases = [
            (
                json!({"id": "a", "@removed": {"reason": "changed"}}),
                Removed::Soft,
            ),
            (
                json!({"id": "a", "@removed": {"reason": "deleted"}}),
                Removed::Deleted,
            ),
            (json!({"id": "a", "@removed": {}}), Removed::Deleted),
        ];
        for (v, want) in cases {
            assert_eq!(user(&v), Some(Item::Removed("a".into(), want)), "{v}");
            assert_eq!(group(&v), Some(Item::Removed("a".into(), want)), "{v}");
        }
        assert_eq!(user(&json!({"displayName": "no id"})), None);
    }

    #[test]
    fn member_references() {
        let g = json!({"id": "g", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1"},
            {"@odata.type": "#microsoft.graph.group", "id": "g2"},
            {"@odata.type": "#microsoft.graph.device", "id": "d1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {"reason": "deleted"}},
            {"@odata.type": "#microsoft.graph.user"}]});
        let (added, gone) = references(&g, "members@delta");
        assert_eq!(added, ["u1", "g2"]);
        assert_eq!(gone, ["u2"]);
    }
}
