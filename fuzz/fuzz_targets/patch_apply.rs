//! Any JSON as a PATCH body against a full user and a group: a new resource or a 4xx
//! error, never a panic; a successful result is still a valid resource.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scim_proto::SchemaRegistry;
use scim_proto::patch::patch_resource;
use scim_proto::resource::parse_resource;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let reg = SchemaRegistry::new();
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen", "active": true, "name": {"givenName": "Barbara"},
        "emails": [{"value": "b@example.com", "type": "work", "primary": true},
                   {"value": "b@home.example", "type": "home"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7", "manager": {"value": "m1"}}
    });
    let group = serde_json::json!({"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]});
    for (rt, res) in [("User", user), ("Group", group)] {
        let view = reg.view(rt).expect("view");
        match patch_resource(&view, &res, &body) {
            Ok(out) => {
                // The patched resource must survive a PUT-style re-parse.
                parse_resource(&view, out).expect("patched resource re-parses");
            }
            Err(e) => assert!((400..500).contains(&e.status)),
        }
    }
});
