//! Parsing client bodies into canonical resources: the create bodies real IdPs send and the
//! rules of `scim_proto::resource`, table-driven.

use crate::{groups, users};
use scim_proto::ScimType;
use scim_proto::resource::{check_immutable, parse_resource};
use serde_json::{Value, json};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// (name, resource type, body, canonical result)
fn accepted() -> Vec<(&'static str, &'static str, Value, Value)> {
    vec![
        (
            "Entra create user (documented body)",
            "User",
            json!({"schemas": [U, ENT], "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                   "userName": "Test_User_00aa00aa", "active": true,
                   "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb@testuser.com"}],
                   "meta": {"resourceType": "User"},
                   "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                   "roles": []}),
            json!({"schemas": [U], "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                   "userName": "Test_User_00aa00aa", "active": true,
                   "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb@testuser.com"}],
                   "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}}),
        ),
        (
            "Entra legacy body: explicit nulls and a typo'd enterprise URN",
            "User",
            json!({"schemas": [U, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
                   "userName": "jyoung", "addresses": null, "phoneNumbers": null, "title": null,
                   "department": null, "manager": null,
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0User": {"department": "X"}}),
            json!({"schemas": [U], "userName": "jyoung"}),
        ),
        (
            "Okta create user: password kept for the server to hash, groups readOnly",
            "User",
            json!({"schemas": [U], "userName": "test.user@okta.local",
                   "name": {"givenName": "Test", "familyName": "User"},
                   "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
                   "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
                   "groups": [], "password": "1mz050nq", "active": true}),
            json!({"schemas": [U], "userName": "test.user@okta.local",
                   "name": {"givenName": "Test", "familyName": "User"},
                   "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
                   "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
                   "password": "1mz050nq", "active": true}),
        ),
        (
            "Validator: primary as \"True\", manager pointing anywhere, extension values",
            "User",
            json!({"schemas": [U, ENT], "userName": "v", "active": "False",
                   "roles": [{"primary": "True", "display": "r", "value": "admin", "type": "t"}],
                   ENT: {"employeeNumber": "1", "manager": {"value": "XYZ"}}}),
            json!({"schemas": [U, ENT], "userName": "v", "active": false,
                   "roles": [{"primary": true, "display": "r", "value": "admin", "type": "t"}],
                   ENT: {"employeeNumber": "1", "manager": {"value": "XYZ"}}}),
        ),
        (
            "Enterprise extension body without its URN in schemas; manager as a bare string",
            "User",
            json!({"schemas": [U], "userName": "e", ENT: {"department": "Sales", "manager": "m1"}}),
            json!({"schemas": [U, ENT], "userName": "e", ENT: {"department": "Sales", "manager": {"value": "m1"}}}),
        ),
        (
            "Attribute names are case-insensitive and canonicalised",
            "User",
            json!({"SCHEMAS": [U], "USERNAME": "c", "Name": {"GivenName": "G"}, "EMAILS": [{"VALUE": "a@b", "Type": "work"}]}),
            json!({"schemas": [U], "userName": "c", "name": {"givenName": "G"}, "emails": [{"value": "a@b", "type": "work"}]}),
        ),
        (
            "Unknown attributes and extension schemas are ignored; readOnly id/meta dropped",
            "User",
            json!({"schemas": [U, "urn:ietf:params:scim:schemas:extension:tenant:2.0:User"], "id": "client-id",
                   "meta": {"created": "2020-01-01T00:00:00Z"}, "userName": "u", "favouriteColour": "red",
                   "urn:ietf:params:scim:schemas:extension:tenant:2.0:User": {"x": 1}}),
            json!({"schemas": [U], "userName": "u"}),
        ),
        (
            "A URN-qualified attribute at the top level",
            "User",
            json!({"userName": "u", format!("{ENT}:employeeNumber"): "42"}),
            json!({"schemas": [U, ENT], "userName": "u", ENT: {"employeeNumber": "42"}}),
        ),
        (
            "A single value where an array is expected is wrapped",
            "User",
            json!({"userName": "u", "emails": {"value": "a@b"}}),
            json!({"schemas": [U], "userName": "u", "emails": [{"value": "a@b"}]}),
        ),
        (
            "Entra create group (ADSCIM URN, readOnly meta)",
            "Group",
            json!({"schemas": [G, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                   "externalId": "8aa1a0c0", "displayName": "displayName", "meta": {"resourceType": "Group"}}),
            json!({"schemas": [G], "externalId": "8aa1a0c0", "displayName": "displayName"}),
        ),
        (
            "Netskope create group with members inline; display is readOnly",
            "Group",
            json!({"schemas": [G], "displayName": "quality_assurance", "members": [{"value": "u1", "display": "x"}, "u2"],
                   "externalId": "Group-Ext_id"}),
            json!({"schemas": [G], "displayName": "quality_assurance", "members": [{"value": "u1"}, {"value": "u2"}],
                   "externalId": "Group-Ext_id"}),
        ),
    ]
}

#[test]
fn client_bodies_become_canonical_resources() {
    for (name, rt, body, expected) in accepted() {
        let view = if rt == "User" { users() } else { groups() };
        let got = parse_resource(&view, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}\n got: {got:#}");
        // Canonical output is a fixed point.
        assert_eq!(
            parse_resource(&view, got.clone()).unwrap(),
            got,
            "{name}: idempotent"
        );
    }
}

/// (name, body, scimType, fragment)
fn rejected() -> Vec<(&'static str, Value, ScimType, &'static str)> {
    vec![
        (
            "not an object",
            json!(["userName"]),
            ScimType::InvalidSyntax,
            "must be a JSON object",
        ),
        (
            "schemas not an array",
            json!({"schemas": U, "userName": "u"}),
            ScimType::InvalidSyntax,
            "schemas",
        ),
        (
            "missing userName",
            json!({"schemas": [U], "displayName": "x"}),
            ScimType::InvalidValue,
            "'userName' is required",
        ),
        (
            "null userName",
            json!({"userName": null}),
            ScimType::InvalidValue,
            "'userName' is required",
        ),
        (
            "userName a number",
            json!({"userName": 7}),
            ScimType::InvalidValue,
            "'userName' must be a string",
        ),
        (
            "active not a boolean",
            json!({"userName": "u", "active": "yes"}),
            ScimType::InvalidValue,
            "'active' must be true or false",
        ),
        (
            "name not an object",
            json!({"userName": "u", "name": ["x"]}),
            ScimType::InvalidValue,
            "'name'",
        ),
        (
            "emails array of arrays",
            json!({"userName": "u", "emails": [[{"value": "a"}]]}),
            ScimType::InvalidValue,
            "not of arrays",
        ),
        (
            "email value a number",
            json!({"userName": "u", "emails": [{"value": 5.5}]}),
            ScimType::InvalidValue,
            "'emails.value'",
        ),
        (
            "two primary emails",
            json!({"userName": "u", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
            ScimType::InvalidValue,
            "primary",
        ),
        (
            "extension not an object",
            json!({"userName": "u", ENT: "x"}),
            ScimType::InvalidValue,
            "must be an object",
        ),
        (
            "single-valued given an array",
            json!({"userName": "u", "title": ["a", "b"]}),
            ScimType::InvalidValue,
            "single-valued",
        ),
    ]
}

#[test]
fn bad_bodies_get_precise_errors() {
    let view = users();
    for (name, body, ty, fragment) in rejected() {
        let e = parse_resource(&view, body).expect_err(name);
        assert_eq!(e.status, 400, "{name}");
        assert_eq!(e.scim_type, Some(ty), "{name}: {}", e.detail);
        assert!(e.detail.contains(fragment), "{name}: {}", e.detail);
    }
    let e = parse_resource(&groups(), json!({"members": []})).unwrap_err();
    assert!(e.detail.contains("'displayName' is required"));
}

#[test]
fn immutable_attributes_keep_their_value_on_put() {
    use scim_proto::schema::{AttributeDef, Mutability, SchemaDef};
    let mut reg = scim_proto::SchemaRegistry::new();
    reg.register_extension(
        "User",
        SchemaDef {
            id: "urn:example:params:scim:schemas:extension:acme:2.0:User".into(),
            name: "Acme".into(),
            description: String::new(),
            attributes: vec![AttributeDef::string("badge").mutability(Mutability::Immutable)],
        },
    )
    .unwrap();
    let view = reg.view("User").unwrap();
    let ext = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let old = parse_resource(&view, json!({"userName": "u", ext: {"badge": "1"}})).unwrap();
    let same = parse_resource(&view, json!({"userName": "u2", ext: {"badge": "1"}})).unwrap();
    let changed = parse_resource(&view, json!({"userName": "u", ext: {"badge": "2"}})).unwrap();
    assert!(check_immutable(&view, &old, &same).is_ok());
    let e = check_immutable(&view, &old, &changed).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
}
