//! Any string: the mapping-expression parser returns an expression or an error with a
//! position inside the text, never panics; a parsed expression evaluates (to a value or an
//! error) against a source object without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scim_sync::expr::{self, AttributeSource, EvalContext, Val};

struct Person;

impl AttributeSource for Person {
    fn attribute(&self, name: &str) -> Val {
        match name {
            "givenName" => Val::Str("Zoë".into()),
            "mail" => Val::Str("zoe@example.com".into()),
            "uac" => Val::Int(514),
            "proxies" => Val::List(vec![Val::Str("smtp:a@x".into()), Val::Null]),
            "hired" => Val::Str("20240115083000.0Z".into()),
            _ => Val::Null,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match expr::parse(s) {
        Ok(e) => {
            let ctx = EvalContext::new(&Person, time::OffsetDateTime::UNIX_EPOCH);
            let _ = expr::evaluate(&e, &ctx);
        }
        Err(e) => assert!(e.pos <= s.chars().count().max(expr::MAX_LEN), "{s:?}: {e}"),
    }
});
