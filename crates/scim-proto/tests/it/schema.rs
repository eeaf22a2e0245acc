//! The schema registry and the discovery documents (RFC 7643 §4–§8.7).

use crate::REGISTRY;
use scim_proto::schema::{AttributeDef, AttributeType, Mutability, Returned, SchemaDef};
use scim_proto::{AttrPath, SchemaRegistry};
use serde_json::json;

#[test]
fn core_schemas_carry_rfc_characteristics() {
    let view = REGISTRY.view("User").unwrap();
    let user_name = view.core_attribute("USERNAME").unwrap();
    assert!(user_name.required && !user_name.case_exact);
    assert_eq!(user_name.uniqueness, scim_proto::Uniqueness::Server);
    let password = view.core_attribute("password").unwrap();
    assert_eq!(
        (password.mutability, password.returned),
        (Mutability::WriteOnly, Returned::Never)
    );
    let groups = view.core_attribute("groups").unwrap();
    assert_eq!(groups.mutability, Mutability::ReadOnly);
    assert!(groups.multi_valued);
    let id = view.core_attribute("id").unwrap();
    assert_eq!((id.returned, id.case_exact), (Returned::Always, true));
    let emails = view.core_attribute("emails").unwrap();
    assert_eq!(
        emails.sub_attribute("type").unwrap().canonical_values,
        ["work", "home", "other"]
    );
    let r = view
        .resolve(
            &AttrPath::parse(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            )
            .unwrap(),
        )
        .unwrap();
    assert!(r.is_extension);
    assert_eq!(r.leaf().name, "value");
    let gview = REGISTRY.view("group").unwrap();
    let members = gview.core_attribute("members").unwrap();
    assert_eq!(
        members.sub_attribute("type").unwrap().canonical_values,
        ["User", "Group"]
    );
    assert!(gview.core_attribute("displayName").unwrap().required);
}

#[test]
fn discovery_documents_have_the_rfc_shape() {
    let user = REGISTRY
        .schema("urn:ietf:params:scim:schemas:core:2.0:User")
        .unwrap();
    let doc = user.to_json("https://scim.example/t/acme/scim/v2");
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
    );
    assert_eq!(doc["name"], "User");
    assert_eq!(doc["description"], "User Account"); // Microsoft's Postman checks this text
    let attrs = doc["attributes"].as_array().unwrap();
    let un = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(un["type"], "string");
    assert_eq!(un["multiValued"], false);
    assert_eq!(un["mutability"], "readWrite");
    assert_eq!(un["returned"], "default");
    assert_eq!(un["uniqueness"], "server");
    assert_eq!(un["caseExact"], false);
    // No nulls anywhere: Entra rejects them.
    assert!(!doc.to_string().contains("null"));
    let rt = REGISTRY
        .resource_type("User")
        .unwrap()
        .to_json("https://x/scim/v2");
    assert_eq!(rt["endpoint"], "/Users");
    assert_eq!(
        rt["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    assert_eq!(
        rt["meta"]["location"],
        "https://x/scim/v2/ResourceTypes/User"
    );
}

#[test]
fn extensions_register_at_run_time() {
    let mut reg = SchemaRegistry::new();
    let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    reg.register_extension(
        "User",
        SchemaDef {
            id: urn.into(),
            name: "Custom".into(),
            description: "Tenant attributes".into(),
            attributes: vec![
                AttributeDef::string("costCode"),
                AttributeDef::new("level", AttributeType::Integer),
            ],
        },
    )
    .unwrap();
    let view = reg.view("User").unwrap();
    let body = json!({"userName": "u", urn: {"COSTCODE": "A1", "level": 3}});
    let r = scim_proto::resource::parse_resource(&view, body).unwrap();
    assert_eq!(r[urn], json!({"costCode": "A1", "level": 3}));
    let f = scim_proto::filter::parse(&format!("{urn}:level ge 2")).unwrap();
    f.validate(&view).unwrap();
    assert!(f.matches(&view, &r));
    // Duplicates, bad names and unknown resource types are refused.
    let dup = SchemaDef {
        id: urn.into(),
        name: "x".into(),
        description: String::new(),
        attributes: vec![],
    };
    assert!(reg.register_extension("User", dup).is_err());
    let bad = SchemaDef {
        id: "urn:x:y".into(),
        name: "x".into(),
        description: String::new(),
        attributes: vec![AttributeDef::string("1x")],
    };
    assert!(reg.register_extension("User", bad).is_err());
    let nort = SchemaDef {
        id: "urn:x:z".into(),
        name: "x".into(),
        description: String::new(),
        attributes: vec![],
    };
    assert!(reg.register_extension("Device", nort).is_err());
    let not_urn = SchemaDef {
        id: "custom".into(),
        name: "x".into(),
        description: String::new(),
        attributes: vec![],
    };
    assert!(reg.register_extension("User", not_urn).is_err());
}

#[test]
fn wire_types_serialise_as_the_rfc_says() {
    use scim_proto::wire::{ListResponse, Page, ServiceProviderConfig};
    let lr = ListResponse::page(vec![], 0, 1);
    assert_eq!(
        serde_json::to_value(&lr).unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
               "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
    let err = scim_proto::ScimError::uniqueness("userName 'x' is taken").to_body();
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409",
               "scimType": "uniqueness", "detail": "userName 'x' is taken"})
    );
    assert_eq!(
        Page::new(Some(0), Some(-5), 100, 1000),
        Page {
            start_index: 1,
            count: 0
        }
    );
    assert_eq!(
        Page::new(None, Some(5000), 100, 1000),
        Page {
            start_index: 1,
            count: 1000
        }
    );
    assert_eq!(Page::new(Some(11), None, 100, 1000).offset(), 10);
    let spc = ServiceProviderConfig {
        documentation_uri: None,
        bulk_max_operations: 1000,
        bulk_max_payload_size: 1 << 20,
        filter_max_results: 1000,
        etag: true,
        sort: true,
        cursor: true,
        default_page_size: 100,
        cursor_timeout_secs: Some(3600),
    }
    .to_json("https://x/scim/v2");
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(spc["pagination"]["defaultPaginationMethod"], "index");
    let bulk: scim_proto::wire::BulkRequest = serde_json::from_value(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"userName": "Alice"}}]
    })).unwrap();
    assert_eq!(bulk.operations[0].bulk_id.as_deref(), Some("qwerty"));
}
