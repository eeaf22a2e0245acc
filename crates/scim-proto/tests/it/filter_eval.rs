//! Filter evaluation: RFC 7644 §3.4.2.2 semantics over a small directory, table-driven.

use crate::{groups, users};
use scim_proto::{ScimType, filter};
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn directory() -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", "externalId": "EXT1", "userName": "bjensen",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "title": "Tour Guide", "userType": "Employee", "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "ims": [{"value": "bjensen@foo.com", "type": "xmpp"}],
            "meta": {"lastModified": "2011-05-13T04:42:34Z"},
            ENT: {"employeeNumber": "701984", "manager": {"value": "m1"}}
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u2", "userName": "JSmith", "name": {"familyName": "O'Malley"},
            "userType": "Intern", "active": false,
            "emails": [{"value": "js@example.org", "type": "work"}],
            "meta": {"lastModified": "2012-01-01T00:00:00+02:00"}
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u3", "userName": "alice",
            "meta": {"lastModified": "2010-01-01T00:00:00Z"}
        }),
    ]
}

/// (filter, ids of the users it matches)
const CASES: &[(&str, &[&str])] = &[
    (r#"userName eq "bjensen""#, &["u1"]),
    (r#"userName eq "BJENSEN""#, &["u1"]), // userName is caseExact=false
    (r#"userName eq "jsmith""#, &["u2"]),
    (r#"name.familyName co "O'Malley""#, &["u2"]),
    (r#"userName sw "J""#, &["u2"]),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        &["u2"],
    ),
    ("title pr", &["u1"]),
    (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, &["u2"]),
    (
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        &["u1", "u2"],
    ),
    (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, &["u3"]),
    (
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        &["u1", "u3"],
    ),
    // dateTime compares instants, not strings
    (
        r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#,
        &["u1"],
    ),
    (r#"meta.lastModified gt "2011-12-31T23:00:00Z""#, &[]),
    (r#"title pr and userType eq "Employee""#, &["u1"]),
    (r#"title pr or userType eq "Intern""#, &["u1", "u2"]),
    (
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        &["u1"],
    ),
    (
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        &["u1"],
    ),
    (
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        &["u3"],
    ),
    (
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        &["u1"],
    ),
    (
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        &["u1"],
    ),
    (
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        &["u1"],
    ),
    // A value filter tests each value on its own …
    (r#"emails[type eq "home" and value co "@example.com"]"#, &[]),
    // … while flattened sub-attribute tests may match different values.
    (
        r#"emails.type eq "home" and emails.value co "@example.com""#,
        &["u1"],
    ),
    (
        r#"emails[type eq "work"].value eq "JS@EXAMPLE.ORG""#,
        &["u2"],
    ),
    ("active eq true", &["u1"]),
    (r#"active eq "False""#, &["u2"]),
    ("active ne true", &["u2", "u3"]),
    (r#"title ne "Tour Guide""#, &["u2", "u3"]),
    ("title eq null", &["u2", "u3"]),
    ("title ne null", &["u1"]),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        &["u1"],
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#,
        &["u1"],
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m1""#,
        &["u1"],
    ),
    ("emails pr", &["u1", "u2"]),
    (r#"id eq "u2""#, &["u2"]),
    (r#"id eq "U2""#, &[]), // id is caseExact
    (r#"externalId eq "EXT1""#, &["u1"]),
    (r#"externalId eq "ext1""#, &[]), // externalId is caseExact
    (r#"userName gt "b""#, &["u1", "u2"]),
    (r#"userName ew "SMITH""#, &["u2"]),
    (r#"not (userName eq "alice")"#, &["u1", "u2"]),
    (r#"USERNAME Eq "alice""#, &["u3"]),
    (r#"name.FamilyName eq "jensen""#, &["u1"]),
];

#[test]
fn filters_select_the_expected_users() {
    let view = users();
    let dir = directory();
    for (input, expected) in CASES {
        let f = filter::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        f.validate(&view).unwrap_or_else(|e| panic!("{input}: {e}"));
        let got: Vec<&str> = dir
            .iter()
            .filter(|u| f.matches(&view, u))
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        assert_eq!(&got, expected, "{input}");
    }
}

#[test]
fn group_filters() {
    let view = groups();
    let g = json!({"id": "g1", "displayName": "Admins", "members": [{"value": "u1", "type": "User"}, {"value": "u2"}]});
    for (input, hit) in [
        (r#"displayName eq "admins""#, true),
        (r#"members.value eq "u2""#, true),
        (r#"members[value eq "u1" and type eq "User"]"#, true),
        (r#"members[value eq "u2" and type eq "User"]"#, false),
        (r#"members.value eq "U1""#, false), // member ids are caseExact
        ("members pr", true),
    ] {
        let f = filter::parse(input).unwrap();
        f.validate(&view).unwrap();
        assert_eq!(f.matches(&view, &g), hit, "{input}");
    }
}

/// Filters that parse but do not fit the schema: 400 invalidFilter at validation.
const INVALID: &[(&str, &str)] = &[
    ("active gt true", "only eq and ne"),
    (r#"active co "t""#, "only eq and ne"),
    (r#"active eq "maybe""#, "expected true or false"),
    (r#"meta.lastModified gt "yesterday""#, "expected a dateTime"),
    (r#"meta.lastModified co "2011""#, "do not support co"),
    (r#"nosuch eq "x""#, "unknown attribute 'nosuch'"),
    (r#"name eq "x""#, "complex attribute"),
    (r#"emails[nosuch eq "x"]"#, "no sub-attribute 'nosuch'"),
    (r#"userName[type eq "x"]"#, "not a complex attribute"),
    (
        r#"urn:example:unknown:1.0:User:attr eq 1"#,
        "unknown attribute",
    ),
    (r#"name.nosuch eq "x""#, "unknown attribute"),
    (r#"title gt null"#, "null can only be compared"),
];

#[test]
fn schema_mismatches_are_invalid_filter() {
    let view = users();
    for (input, fragment) in INVALID {
        let f = filter::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        let e = f.validate(&view).expect_err(input);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{input}");
        assert!(e.detail.contains(fragment), "{input}: {}", e.detail);
    }
}
