//! Any JSON as a POST body: a canonical resource or a 400, never a panic; parsing is
//! idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scim_proto::SchemaRegistry;
use scim_proto::resource::parse_resource;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let reg = SchemaRegistry::new();
    for rt in ["User", "Group"] {
        let view = reg.view(rt).expect("view");
        match parse_resource(&view, body.clone()) {
            Ok(r) => assert_eq!(parse_resource(&view, r.clone()).expect("re-parse"), r),
            Err(e) => assert_eq!(e.status, 400),
        }
    }
});
