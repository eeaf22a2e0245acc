//! Any string as a PATCH path: a parsed path or `invalidPath`, never a panic; a parsed path
//! prints to text that parses back to the same path, unless the printed text is over the
//! length limit (a control character in a filter value prints as `\u0000`), when it is a
//! clean 400.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scim_proto::PatchPath;
use scim_proto::filter::FilterLimits;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = PatchPath::parse(s) {
        let printed = p.to_string();
        if printed.len() > FilterLimits::default().max_len {
            assert_eq!(PatchPath::parse(&printed).unwrap_err().status, 400);
            return;
        }
        let again = PatchPath::parse(&printed).expect("printed path must parse");
        assert_eq!(again, p);
    } else if let Err(e) = PatchPath::parse(s) {
        assert_eq!(e.status, 400);
    }
});
