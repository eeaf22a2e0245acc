//! `attributes` / `excludedAttributes` against `returned` (RFC 7644 §3.4.2.5, RFC 7643 §7).

use crate::{groups, users};
use scim_proto::Projection;
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ENT_DEPARTMENT: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
const ENT_EMPLOYEE_NUMBER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";

fn user() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT], "id": "u1",
           "userName": "bjensen", "password": "secret", "displayName": "Babs",
           "name": {"givenName": "Barbara", "familyName": "Jensen"},
           "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
           "meta": {"resourceType": "User", "version": "W/\"1\""},
           ENT: {"employeeNumber": "7", "department": "D"}})
}

#[test]
fn projection_table() {
    let cases: Vec<(Option<&str>, Option<&str>, Value)> = vec![
        // default: everything but returned=never
        (
            None,
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT], "id": "u1",
            "userName": "bjensen", "displayName": "Babs", "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            "meta": {"resourceType": "User", "version": "W/\"1\""}, ENT: {"employeeNumber": "7", "department": "D"}}),
        ),
        // Microsoft's Postman: ?attributes=userName,emails
        (
            Some("userName,emails"),
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT], "id": "u1",
            "userName": "bjensen", "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]}),
        ),
        (
            Some("name.givenName, emails.value"),
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", "name": {"givenName": "Barbara"}, "emails": [{"value": "a@x"}, {"value": "b@x"}]}),
        ),
        (
            Some(ENT_DEPARTMENT),
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", ENT: {"department": "D"}}),
        ),
        (
            Some(ENT),
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", ENT: {"employeeNumber": "7", "department": "D"}}),
        ),
        // password is never returned, even when asked for; id always, even when excluded
        (
            Some("password,USERNAME"),
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", "userName": "bjensen"}),
        ),
        (
            None,
            Some("id,emails,meta,name.familyName,displayName"),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", "userName": "bjensen", "name": {"givenName": "Barbara"}, ENT: {"employeeNumber": "7", "department": "D"}}),
        ),
        (
            None,
            Some(ENT_EMPLOYEE_NUMBER),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", "userName": "bjensen", "displayName": "Babs", "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            "meta": {"resourceType": "User", "version": "W/\"1\""}, ENT: {"department": "D"}}),
        ),
        // unknown names select nothing
        (
            Some("nosuch"),
            None,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT], "id": "u1"}),
        ),
    ];
    let view = users();
    for (attrs, excluded, expected) in cases {
        let p = Projection::parse(attrs, excluded).unwrap();
        assert_eq!(
            p.apply(&view, &user()),
            expected,
            "attributes={attrs:?} excludedAttributes={excluded:?}"
        );
    }
}

#[test]
fn excluded_members_are_not_needed() {
    let view = groups();
    let p = Projection::parse(None, Some("members")).unwrap();
    assert!(!p.includes(&view, "members"));
    assert!(p.includes(&view, "displayName"));
    let g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "G", "members": [{"value": "u"}]});
    assert_eq!(
        p.apply(&view, &g),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "G"})
    );
    assert!(
        Projection::parse(Some("displayName"), None)
            .unwrap()
            .includes(&view, "id")
    );
    assert!(
        !Projection::parse(Some("displayName"), None)
            .unwrap()
            .includes(&view, "members")
    );
}

#[test]
fn malformed_lists_are_invalid_value() {
    let e = Projection::parse(Some("userName,1bad"), None).unwrap_err();
    assert_eq!(e.scim_type, Some(scim_proto::ScimType::InvalidValue));
}
