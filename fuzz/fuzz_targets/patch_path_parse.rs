//! Any string as a PATCH path: a parsed path or `invalidPath`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scim_proto::PatchPath;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = PatchPath::parse(s) {
        let printed = p.to_string();
        let again = PatchPath::parse(&printed).expect("printed path must parse");
        assert_eq!(again, p);
    } else if let Err(e) = PatchPath::parse(s) {
        assert_eq!(e.status, 400);
    }
});
