//! Any string: the filter parser returns a tree or an error, never panics or overflows; a
//! parsed tree prints to text that parses back to the same tree, and evaluates. The printed
//! text may be longer than the input (a control character prints as `\u0000`), so it is
//! parsed back without the length limit, which bounds what a client sends, not the grammar.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scim_proto::SchemaRegistry;
use scim_proto::filter::{self, FilterLimits};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(f) = filter::parse(s) {
        let printed = f.to_string();
        let unbounded = FilterLimits {
            max_len: usize::MAX,
            ..FilterLimits::default()
        };
        let again = filter::parse_with(&printed, unbounded).expect("printed filter must parse");
        assert_eq!(again, f, "round trip of {s:?} via {printed:?}");
        let reg = SchemaRegistry::new();
        let view = reg.view("User").expect("User view");
        if f.validate(&view).is_ok() {
            let user = serde_json::json!({"userName": "bjensen", "active": true,
                "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
                "meta": {"lastModified": "2011-05-13T04:42:34Z"}});
            let _ = f.matches(&view, &user);
        }
    }
});
