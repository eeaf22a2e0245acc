//! Extension attributes named without their schema URN (RFC 7644 §3.10), as Entra sends them
//! (`manager eq "…"`, `employeeNumber eq "…"`): resolved when one schema alone has the name,
//! in filters, `sortBy`, `attributes` and PATCH paths; unknown or ambiguous names stay 400.

use crate::{ops, patch, users};
use scim_proto::schema::{AttributeDef, SchemaDef};
use scim_proto::sort::{compare_keys, sort_key};
use scim_proto::{AttrPath, Projection, SchemaRegistry, ScimType, filter};
use serde_json::json;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ada() -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT], "id": "1",
           "userName": "ada", ENT: {"employeeNumber": "42", "manager": {"value": "m-1"}}})
}

#[test]
fn filters_take_short_names() {
    let table = [
        ("employeeNumber eq \"42\"", true),
        ("id eq \"1\" and manager eq \"m-1\"", true),
        ("manager.value eq \"m-2\"", false),
        ("department pr", false),
        (&format!("{ENT}:employeeNumber eq \"42\""), true),
    ];
    for (f, want) in table {
        let e = filter::parse(f).unwrap();
        e.validate(&users())
            .unwrap_or_else(|err| panic!("{f}: {err}"));
        assert_eq!(e.matches(&users(), &ada()), want, "{f}");
    }
    let unknown = filter::parse("shoeSize eq 42")
        .unwrap()
        .validate(&users())
        .unwrap_err();
    assert_eq!(unknown.scim_type, Some(ScimType::InvalidFilter));
}

#[test]
fn sort_keys_take_short_names() {
    let other = json!({"id": "2", "userName": "bob", ENT: {"employeeNumber": "7"}});
    let p = AttrPath::parse("employeeNumber").unwrap();
    let (a, b) = (
        sort_key(&users(), &ada(), &p),
        sort_key(&users(), &other, &p),
    );
    assert!(a.is_some() && b.is_some());
    assert_eq!(
        compare_keys(&a, &b, false),
        std::cmp::Ordering::Less,
        "\"42\" < \"7\""
    );
}

#[test]
fn projections_take_short_names() {
    let table = [
        ("employeeNumber", json!({ENT: {"employeeNumber": "42"}})),
        ("manager.value", json!({ENT: {"manager": {"value": "m-1"}}})),
        ("userName", json!({"userName": "ada"})),
    ];
    for (attrs, want) in table {
        let p = Projection::parse(Some(attrs), None).unwrap();
        let mut got = p.apply(&users(), &ada());
        let o = got.as_object_mut().unwrap();
        o.remove("schemas");
        o.remove("id");
        assert_eq!(got, want, "{attrs}");
    }
    let p = Projection::parse(None, Some("manager")).unwrap();
    assert_eq!(
        p.apply(&users(), &ada())[ENT],
        json!({"employeeNumber": "42"})
    );
}

#[test]
fn patch_paths_take_short_names() {
    let table = [
        (
            json!([{"op": "replace", "path": "employeeNumber", "value": "43"}]),
            "employeeNumber",
            json!("43"),
        ),
        (
            json!([{"op": "add", "path": "manager", "value": "m-9"}]),
            "manager",
            json!({"value": "m-9"}),
        ),
        (
            json!([{"op": "replace", "value": {"costCenter": "cc-1"}}]),
            "costCenter",
            json!("cc-1"),
        ),
    ];
    for (o, attr, want) in table {
        let out = patch("User", &ada(), ops(o.clone())).unwrap_or_else(|e| panic!("{o}: {e}"));
        assert_eq!(out[ENT][attr], want, "{o}");
    }
    let e = patch(
        "User",
        &ada(),
        ops(json!([{"op": "replace", "path": "shoeSize", "value": 1}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
}

#[test]
fn names_two_extensions_share_stay_ambiguous() {
    let mut reg = SchemaRegistry::new();
    reg.register_extension(
        "User",
        SchemaDef {
            id: "urn:example:scim:Custom".into(),
            name: "Custom".into(),
            description: String::new(),
            attributes: vec![
                AttributeDef::string("employeeNumber"),
                AttributeDef::string("badge"),
            ],
        },
    )
    .unwrap();
    let view = reg.view("User").unwrap();
    let e = filter::parse("employeeNumber eq \"1\"")
        .unwrap()
        .validate(&view)
        .unwrap_err();
    assert!(e.detail.contains("ambiguous"), "{e}");
    filter::parse("badge eq \"1\"")
        .unwrap()
        .validate(&view)
        .unwrap();
    let ok = format!("{ENT}:employeeNumber eq \"1\"");
    filter::parse(&ok).unwrap().validate(&view).unwrap();
}
