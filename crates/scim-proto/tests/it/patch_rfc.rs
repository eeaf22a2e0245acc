//! PATCH: every example of RFC 7644 §3.5.2 (and the PATCH of §3.7.1's bulk example), plus
//! the error cases the RFC names, table-driven: (name, resource type, before, ops, after).

use crate::{ops, patch};
use scim_proto::ScimType;
use serde_json::{Value, json};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const M1: &str = "2819c223-7f76-453a-919d-413861904646";
const M2: &str = "902c246b-6245-4190-8e05-00816be7344a";

fn group(members: Value) -> Value {
    json!({"schemas": [G], "displayName": "Tour Guides", "members": members})
}

fn member(id: &str, display: &str) -> Value {
    json!({"display": display, "$ref": format!("https://example.com/v2/Users/{id}"), "value": id})
}

fn work_address() -> Value {
    json!({"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood",
           "region": "CA", "postalCode": "91608", "country": "US",
           "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true})
}

struct Case {
    name: &'static str,
    rt: &'static str,
    before: Value,
    ops: Value,
    after: Value,
}

fn cases() -> Vec<Case> {
    // `display` of a member is readOnly: the server fills it in, so PATCH drops what clients send.
    let m1 = json!({"$ref": format!("https://example.com/v2/Users/{M1}"), "value": M1});
    let m2 = json!({"$ref": format!("https://example.com/v2/Users/{M2}"), "value": M2});
    vec![
        Case {
            name: "§3.5.2.1 add a member",
            rt: "Group",
            before: group(json!([])),
            ops: json!([{"op": "add", "path": "members", "value": [member(M1, "Babs Jensen")]}]),
            after: group(json!([m1.clone()])),
        },
        Case {
            name: "§3.5.2.1 add without path: e-mail and nickname",
            rt: "User",
            before: json!({"schemas": [U], "userName": "bjensen",
                           "emails": [{"value": "bjensen@example.com", "type": "work"}]}),
            ops: json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
            after: json!({"schemas": [U], "userName": "bjensen",
                          "emails": [{"value": "bjensen@example.com", "type": "work"},
                                     {"value": "babs@jensen.org", "type": "home"}],
                          "nickName": "Babs"}),
        },
        Case {
            name: "§3.5.2.2 remove one member",
            rt: "Group",
            before: group(json!([m1.clone(), m2.clone()])),
            ops: json!([{"op": "remove", "path": format!("members[value eq \"{M1}\"]")}]),
            after: group(json!([m2.clone()])),
        },
        Case {
            name: "§3.5.2.2 remove all members",
            rt: "Group",
            before: group(json!([m1.clone(), m2.clone()])),
            ops: json!([{"op": "remove", "path": "members"}]),
            after: json!({"schemas": [G], "displayName": "Tour Guides"}),
        },
        Case {
            name: "§3.5.2.2 remove e-mails by a complex filter",
            rt: "User",
            before: json!({"schemas": [U], "userName": "bjensen",
                           "emails": [{"value": "b@example.com", "type": "work"},
                                      {"value": "b@example.org", "type": "work"},
                                      {"value": "h@example.com", "type": "home"}]}),
            ops: json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
            after: json!({"schemas": [U], "userName": "bjensen",
                          "emails": [{"value": "b@example.org", "type": "work"},
                                     {"value": "h@example.com", "type": "home"}]}),
        },
        Case {
            name: "§3.5.2.2 remove two members in one request",
            rt: "Group",
            before: group(json!([m1.clone(), m2.clone()])),
            ops: json!([{"op": "remove", "path": format!("members[value eq \"{M1}\"]")},
                        {"op": "remove", "path": format!("members[value eq \"{M2}\"]")}]),
            after: json!({"schemas": [G], "displayName": "Tour Guides"}),
        },
        Case {
            name: "§3.5.2.2 replace all members: remove then add",
            rt: "Group",
            before: group(json!([m1.clone()])),
            ops: json!([{"op": "remove", "path": "members"},
                        {"op": "add", "path": "members", "value": [member(M2, "James Smith")]}]),
            after: group(json!([m2.clone()])),
        },
        Case {
            name: "§3.5.2.3 replace members",
            rt: "Group",
            before: group(json!([m1.clone()])),
            ops: json!([{"op": "replace", "path": "members",
                         "value": [member(M1, "Babs Jensen"), member(M2, "James Smith")]}]),
            after: group(json!([m1.clone(), m2.clone()])),
        },
        Case {
            name: "§3.5.2.3 replace the work address",
            rt: "User",
            before: json!({"schemas": [U], "userName": "bjensen",
                           "addresses": [{"type": "work", "streetAddress": "100 Old St"},
                                         {"type": "home", "streetAddress": "1 Home St"}]}),
            ops: json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": work_address()}]),
            after: json!({"schemas": [U], "userName": "bjensen",
                          "addresses": [{"type": "work", "streetAddress": "911 Universal City Plaza",
                                         "locality": "Hollywood", "region": "CA", "postalCode": "91608",
                                         "country": "US",
                                         "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
                                         "primary": true},
                                        {"type": "home", "streetAddress": "1 Home St"}]}),
        },
        Case {
            name: "§3.5.2.3 replace a sub-attribute of the work address",
            rt: "User",
            before: json!({"schemas": [U], "userName": "bjensen", "addresses": [work_address()]}),
            ops: json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
            after: {
                let mut a = work_address();
                a["streetAddress"] = json!("1010 Broadway Ave");
                json!({"schemas": [U], "userName": "bjensen", "addresses": [a]})
            },
        },
        Case {
            name: "§3.5.2.3 replace without path",
            rt: "User",
            before: json!({"schemas": [U], "userName": "bjensen", "nickName": "B",
                           "emails": [{"value": "old@example.com", "type": "work"}]}),
            ops: json!([{"op": "replace", "value": {
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                           {"value": "babs@jensen.org", "type": "home"}],
                "nickname": "Babs"}}]),
            after: json!({"schemas": [U], "userName": "bjensen", "nickName": "Babs",
                          "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                                     {"value": "babs@jensen.org", "type": "home"}]}),
        },
        Case {
            name: "§3.7.1 bulk example PATCH: remove nickName, add userName",
            rt: "User",
            before: json!({"schemas": [U], "userName": "alice", "nickName": "Al"}),
            ops: json!([{"op": "remove", "path": "nickName"}, {"op": "add", "path": "userName", "value": "Dave"}]),
            after: json!({"schemas": [U], "userName": "Dave"}),
        },
        Case {
            name: "§3.5.2.1 add to a complex attribute merges sub-attributes",
            rt: "User",
            before: json!({"schemas": [U], "userName": "b", "name": {"givenName": "Barbara", "familyName": "J"}}),
            ops: json!([{"op": "add", "path": "name", "value": {"familyName": "Jensen", "middleName": "Jane"}}]),
            after: json!({"schemas": [U], "userName": "b",
                          "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}}),
        },
        Case {
            name: "§3.5.2.1 add of an existing value changes nothing",
            rt: "Group",
            before: group(json!([m1.clone()])),
            ops: json!([{"op": "add", "path": "members", "value": [{"value": M1}]}]),
            after: group(json!([m1.clone()])),
        },
        Case {
            name: "§2.4 setting primary on one value clears the others",
            rt: "User",
            before: json!({"schemas": [U], "userName": "b",
                           "emails": [{"value": "a@x", "type": "work", "primary": true}, {"value": "b@x", "type": "home"}]}),
            ops: json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
            after: json!({"schemas": [U], "userName": "b",
                          "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home", "primary": true}]}),
        },
        Case {
            name: "§2.4 adding a primary value clears the others",
            rt: "User",
            before: json!({"schemas": [U], "userName": "b", "emails": [{"value": "a@x", "type": "work", "primary": true}]}),
            ops: json!([{"op": "add", "path": "emails", "value": [{"value": "c@x", "type": "other", "primary": true}]}]),
            after: json!({"schemas": [U], "userName": "b",
                          "emails": [{"value": "a@x", "type": "work"}, {"value": "c@x", "type": "other", "primary": true}]}),
        },
        Case {
            name: "§3.5.2.2 remove with a filter matching nothing is a no-op",
            rt: "Group",
            before: group(json!([m1.clone()])),
            ops: json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]),
            after: group(json!([m1.clone()])),
        },
        Case {
            name: "§3.5.2.2 remove a sub-attribute of matching values",
            rt: "User",
            before: json!({"schemas": [U], "userName": "b", "emails": [{"value": "a@x", "type": "work", "display": "A"}]}),
            ops: json!([{"op": "remove", "path": "emails[type eq \"work\"].display"}]),
            after: json!({"schemas": [U], "userName": "b", "emails": [{"value": "a@x", "type": "work"}]}),
        },
    ]
}

#[test]
fn rfc_7644_patch_examples() {
    for c in cases() {
        let got = patch(c.rt, &c.before, ops(c.ops)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(got, c.after, "{}", c.name);
    }
}

/// (name, resource, ops, scimType, fragment of the detail)
fn error_cases() -> Vec<(
    &'static str,
    &'static str,
    Value,
    Value,
    ScimType,
    &'static str,
)> {
    let user = json!({"schemas": [U], "id": "u1", "userName": "bjensen",
                      "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]});
    vec![
        (
            "remove without path",
            "User",
            user.clone(),
            json!([{"op": "remove"}]),
            ScimType::NoTarget,
            "requires a path",
        ),
        (
            "replace with a non-constructible filter matching nothing",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "emails[value co \"zzz\"].display", "value": "x"}]),
            ScimType::NoTarget,
            "matches the filter",
        ),
        (
            "unknown attribute",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "favouriteColour", "value": "x"}]),
            ScimType::InvalidPath,
            "unknown attribute",
        ),
        (
            "malformed path",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            ScimType::InvalidPath,
            "invalid PATCH path",
        ),
        (
            "readOnly id",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            ScimType::Mutability,
            "readOnly",
        ),
        (
            "readOnly groups",
            "User",
            user.clone(),
            json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]),
            ScimType::Mutability,
            "readOnly",
        ),
        (
            "readOnly meta sub-attribute",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "meta.created", "value": "2011-01-01T00:00:00Z"}]),
            ScimType::Mutability,
            "readOnly",
        ),
        (
            "remove a required attribute",
            "User",
            user.clone(),
            json!([{"op": "remove", "path": "userName"}]),
            ScimType::Mutability,
            "required",
        ),
        (
            "replace a required attribute with null",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "userName", "value": null}]),
            ScimType::Mutability,
            "required",
        ),
        (
            "wrong type",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            ScimType::InvalidValue,
            "true or false",
        ),
        (
            "wrong type for a string",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "userName", "value": 42}]),
            ScimType::InvalidValue,
            "must be a string",
        ),
        (
            "two primaries",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}]),
            ScimType::InvalidValue,
            "primary",
        ),
        (
            "filter on a single-valued attribute",
            "User",
            user.clone(),
            json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": {}}]),
            ScimType::InvalidPath,
            "multi-valued",
        ),
        (
            "filter on an unknown sub-attribute",
            "User",
            user.clone(),
            json!([{"op": "remove", "path": "emails[colour eq \"red\"]"}]),
            ScimType::InvalidFilter,
            "no sub-attribute",
        ),
        (
            "unknown op",
            "User",
            user.clone(),
            json!([{"op": "move", "path": "userName"}]),
            ScimType::InvalidSyntax,
            "unknown PATCH op",
        ),
        (
            "add without value",
            "User",
            user.clone(),
            json!([{"op": "add", "path": "nickName"}]),
            ScimType::InvalidSyntax,
            "requires a value",
        ),
        (
            "path-less add with a scalar",
            "User",
            user.clone(),
            json!([{"op": "add", "value": "x"}]),
            ScimType::InvalidValue,
            "object value",
        ),
        (
            "immutable member value",
            "Group",
            json!({"displayName": "g", "members": [{"value": "u1"}]}),
            json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u2"}]),
            ScimType::Mutability,
            "immutable",
        ),
    ]
}

#[test]
fn rfc_7644_patch_errors() {
    for (name, rt, before, o, ty, fragment) in error_cases() {
        let e = patch(rt, &before, ops(o)).expect_err(name);
        assert_eq!(e.status, 400, "{name}");
        assert_eq!(e.scim_type, Some(ty), "{name}: {}", e.detail);
        assert!(e.detail.contains(fragment), "{name}: {}", e.detail);
        assert!(e.detail.starts_with("operation 1"), "{name}: {}", e.detail);
    }
}

#[test]
fn a_failing_operation_leaves_nothing_applied() {
    let user = json!({"schemas": [U], "userName": "bjensen", "nickName": "B"});
    let e = patch(
        "User",
        &user,
        ops(json!([
            {"op": "replace", "path": "nickName", "value": "Changed"},
            {"op": "add", "path": "title", "value": "Boss"},
            {"op": "replace", "path": "active", "value": "not a boolean"}
        ])),
    )
    .unwrap_err();
    assert!(e.detail.starts_with("operation 3"), "{}", e.detail);
    // The input is untouched; the engine works on a copy.
    assert_eq!(user["nickName"], "B");
}

#[test]
fn malformed_bodies_are_invalid_syntax() {
    let user = json!({"schemas": [U], "userName": "b"});
    for body in [
        json!([]),
        json!({"schemas": [U]}),
        json!({"Operations": {}}),
        json!({"Operations": []}),
        json!({"Operations": ["add"]}),
        json!({"Operations": [{"path": "x"}]}),
        json!({"Operations": [{"op": 1}]}),
        json!({"schemas": "x", "Operations": [{"op": "add", "path": "nickName", "value": "x"}]}),
    ] {
        let e = patch("User", &user, body.clone()).expect_err(&body.to_string());
        assert_eq!(
            e.scim_type,
            Some(ScimType::InvalidSyntax),
            "{body}: {}",
            e.detail
        );
    }
    let e = patch(
        "User",
        &user,
        json!({"Operations": [{"op": "add", "path": 7, "value": 1}]}),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
}
