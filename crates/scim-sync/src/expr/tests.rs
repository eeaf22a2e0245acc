//! Every function, with its null handling, table-driven.

use super::*;
use std::collections::HashMap;

struct Attrs(HashMap<&'static str, Val>);

impl AttributeSource for Attrs {
    fn attribute(&self, name: &str) -> Val {
        self.0.get(name).cloned().unwrap_or(Val::Null)
    }
}

fn attrs() -> Attrs {
    let s = |v: &str| Val::Str(v.into());
    Attrs(HashMap::from([
        ("givenName", s("Zoë")),
        ("surname", s("O'Brien")),
        ("mail", s("Zoe.OBrien@Example.com")),
        ("empty", s("")),
        ("dept", s("Sales")),
        ("uac", Val::Int(514)),
        ("active", Val::Bool(true)),
        ("hired", s("20240115083000.0Z")),
        (
            "proxies",
            Val::List(vec![s("smtp:a@x"), s("smtp:b@x"), s("smtp:a@x")]),
        ),
        ("phone", s("+1 555 123 4567")),
    ]))
}

fn eval(src: &str) -> Result<Val, String> {
    let a = attrs();
    let now = time::macros::datetime!(2026-12-01 10:00:00 UTC);
    let ctx = EvalContext::new(&a, now);
    let e = parse(src).map_err(|e| format!("parse {e}"))?;
    evaluate(&e, &ctx).map_err(|e| format!("eval {e}"))
}

fn s(v: &str) -> Val {
    Val::Str(v.into())
}

#[test]
fn every_function() {
    let cases: Vec<(&str, Val)> = vec![
        (r#"Append([givenName], "!")"#, s("Zoë!")),
        (r#"Append([missing], "x")"#, s("x")),
        (r#"Append([missing], [missing])"#, Val::Null),
        ("BitAnd([uac], 2)", Val::Int(2)),
        ("BitAnd([missing], 2)", Val::Null),
        (r#"CBool("True")"#, Val::Bool(true)),
        ("CBool([missing])", Val::Null),
        (r#"Coalesce([missing], [empty], "fallback")"#, s("fallback")),
        ("Coalesce([missing])", Val::Null),
        ("CStr([uac])", s("514")),
        ("CStr([missing])", Val::Null),
        (
            r#"DateAdd("d", 7, "2026-12-01T00:00:00Z")"#,
            s("2026-12-08T00:00:00Z"),
        ),
        (
            r#"DateAdd("m", 1, "2026-01-31")"#,
            s("2026-02-28T00:00:00Z"),
        ),
        (r#"DateAdd("d", 1, [missing])"#, Val::Null),
        (
            r#"FormatDateTime([hired], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#,
            s("2024-01-15"),
        ),
        (
            r#"FormatDateTime([hired], "yyyyMMddHHmmss.fZ", "dd/MM/yyyy HH:mm")"#,
            s("15/01/2024 08:30"),
        ),
        (r#"FormatDateTime([missing], , "yyyy", "yyyy")"#, Val::Null),
        (r#"IIF([active], "yes", "no")"#, s("yes")),
        (r#"IIF([missing], "yes", "no")"#, s("no")),
        (r#"InStr([mail], "@")"#, Val::Int(11)),
        (
            r#"InStr([mail], "example", 1, "textCompare")"#,
            Val::Int(12),
        ),
        (r#"InStr([missing], "@")"#, Val::Null),
        ("IsNull([missing])", Val::Bool(true)),
        ("IsNull([empty])", Val::Bool(false)),
        ("IsNullOrEmpty([empty])", Val::Bool(true)),
        ("IsPresent([dept])", Val::Bool(true)),
        ("IsPresent([missing])", Val::Bool(false)),
        ("IsString([dept])", Val::Bool(true)),
        ("IsString([uac])", Val::Bool(false)),
        ("Item([proxies], 2)", s("smtp:b@x")),
        ("Item([proxies], 9)", Val::Null),
        ("Item([missing], 1)", Val::Null),
        (
            r#"Join(" ", [givenName], [missing], [surname])"#,
            s("Zoë O'Brien"),
        ),
        (r#"Join(",", [missing])"#, Val::Null),
        ("Left([dept], 3)", s("Sal")),
        ("Left([missing], 3)", Val::Null),
        ("Len([givenName])", Val::Int(3)),
        ("Mid([mail], 5, 6)", s("OBrien")),
        ("Mid([missing], 1, 2)", Val::Null),
        ("NormalizeDiacritics([givenName])", s("Zoe")),
        (
            r#"NormalizeDiacritics("Søren Æbelø Straße Łódź")"#,
            s("Soren AEbelo Strasse Lodz"),
        ),
        ("NormalizeDiacritics([missing])", Val::Null),
        ("Not([active])", Val::Bool(false)),
        ("Not([missing])", Val::Null),
        ("Now()", s("2026-12-01T10:00:00Z")),
        (r#"PCase("hello WORLD-wide")"#, s("Hello World-Wide")),
        ("Redact([dept])", s("Sales")),
        (
            "RemoveDuplicates([proxies])",
            Val::List(vec![s("smtp:a@x"), s("smtp:b@x")]),
        ),
        (
            r#"Replace([mail], "@Example.com", , , "@example.org", , )"#,
            s("Zoe.OBrien@example.org"),
        ),
        (
            r#"Replace([phone], , "[^0-9+]", , "", , )"#,
            s("+15551234567"),
        ),
        (
            r#"Replace([mail], , "(?<user>[^@]+)@", "user", "someone", , )"#,
            s("someone@Example.com"),
        ),
        (
            r#"Replace([dept], "{x}", , , , , "Team {x}")"#,
            s("Team Sales"),
        ),
        (r#"Replace([missing], "a", , , "b", , )"#, Val::Null),
        (
            r#"SelectUniqueValue(Join("", Left([givenName], 1), [surname]), [mail])"#,
            Val::Candidates(vec!["ZO'Brien".into(), "Zoe.OBrien@Example.com".into()]),
        ),
        (r#"Split("a;b", ";")"#, Val::List(vec![s("a"), s("b")])),
        (r#"Split([missing], ";")"#, Val::Null),
        ("StripSpaces([phone])", s("+15551234567")),
        ("StripSpaces([missing])", Val::Null),
        (
            r#"Switch([dept], "Other", "Sales", "S", "IT", "I")"#,
            s("S"),
        ),
        (r#"Switch([missing], "Other", "Sales", "S")"#, s("Other")),
        (
            r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#,
            Val::Null,
        ),
        ("ToLower([mail])", s("zoe.obrien@example.com")),
        ("ToLower([missing])", Val::Null),
        ("ToUpper([dept], \"en-US\")", s("SALES")),
        (r#"Word("The quick brown fox", 3, " ")"#, s("brown")),
        (r#"Word([missing], 1, " ")"#, Val::Null),
        ("Guid()", Val::Null), // checked for shape below
    ];
    for (src, want) in cases {
        if src == "Guid()" {
            continue;
        }
        assert_eq!(eval(src), Ok(want), "{src}");
    }
    let guid = eval("Guid()").expect("guid");
    assert!(
        matches!(&guid, Val::Str(g) if uuid::Uuid::parse_str(g).is_ok()),
        "{guid:?}"
    );
}

#[test]
fn every_function_is_covered_by_the_table() {
    let src = include_str!("tests.rs");
    for name in NAMES {
        assert!(
            src.contains(&format!("\"{name}(")) || src.contains(&format!("{name}(")),
            "{name}"
        );
    }
}

#[test]
fn redact_is_noticed() {
    let a = attrs();
    let ctx = EvalContext::new(&a, time::OffsetDateTime::now_utc());
    let e = parse("Redact([dept])").expect("parses");
    evaluate(&e, &ctx).expect("evaluates");
    assert!(ctx.redacted.get());
}

#[test]
fn runtime_errors_carry_the_call_position() {
    let e = eval(r#"ToLower(FormatDateTime([dept], , "yyyy", "yyyy"))"#).expect_err("no date");
    assert!(e.starts_with("eval at 8:"), "{e}");
    // A literal pattern is compiled when parsed: its error points at the pattern.
    let e = eval(r#"ToLower(Replace([dept], , "(", , "x", , ))"#).expect_err("bad regex");
    assert!(e.starts_with("parse at 26:"), "{e}");
    let e = eval(r#"FormatDateTime([dept], , "yyyy", "yyyy")"#).expect_err("not a date");
    assert!(e.contains("does not match"), "{e}");
}

#[test]
fn iif_is_lazy() {
    // The else branch holds an error that must not be reached.
    assert_eq!(
        eval(r#"IIF([active], "ok", FormatDateTime([dept], , "yyyy", "yyyy"))"#),
        Ok(s("ok"))
    );
}

proptest::proptest! {
    #[test]
    fn the_parser_never_panics(src in "\\PC{0,64}") {
        let _ = parse(&src);
    }

    #[test]
    fn string_literals_round_trip(text in "[^\\\\\"]{0,32}") {
        let src = format!("\"{text}\"");
        proptest::prop_assert_eq!(eval(&src), Ok(Val::Str(text)));
    }
}
