//! The parse-time check of what an expression may cost (docs/security.md, "Mapping
//! expressions"): when parsed (a mapping saved, a job file read, the console's tester), the
//! largest value the expression could build from inputs of [`ASSUMED_INPUT`] bytes must stay
//! under [`MAX_TEXT`]; `Replace` nested to multiply its input is refused there, at the call
//! that breaks the bound. What evaluation may build is `super::limits`.

use super::functions::Function;
use super::limits::MAX_TEXT;
use super::parser::Expr;

/// The input size the parse-time check assumes for each attribute (a directory attribute is
/// rarely over a few hundred bytes; a longer one is still bounded at run time).
pub const ASSUMED_INPUT: u64 = 1024;

/// The parse-time check: `Err((position, message))` at the first call whose worst-case
/// output, for inputs of [`ASSUMED_INPUT`] bytes, is over [`MAX_TEXT`].
pub fn check_bounds(e: &Expr) -> Result<u64, (usize, String)> {
    match e {
        Expr::Attr { .. } => Ok(ASSUMED_INPUT),
        Expr::Str(s) => Ok(s.len() as u64),
        Expr::Regex(p) => Ok(p.source().len() as u64),
        Expr::Int(_) | Expr::Bool(_) | Expr::Null => Ok(20),
        Expr::Call {
            function,
            args,
            pos,
        } => {
            let sizes = args
                .iter()
                .map(check_bounds)
                .collect::<Result<Vec<_>, _>>()?;
            let bound = call_bound(*function, args, &sizes);
            if bound > MAX_TEXT as u64 {
                return Err((
                    *pos,
                    format!(
                        "{} can build values of up to {bound} bytes from {ASSUMED_INPUT}-byte \
                         inputs, over the limit of {MAX_TEXT}",
                        function.name()
                    ),
                ));
            }
            Ok(bound)
        }
    }
}

/// The largest output of `f` given its arguments' largest sizes.
fn call_bound(f: Function, args: &[Expr], sizes: &[u64]) -> u64 {
    use Function as F;
    let s = |i: usize| sizes.get(i).copied().unwrap_or(0);
    let sum: u64 = sizes.iter().fold(0, |a, b| a.saturating_add(*b));
    let max = sizes.iter().copied().max().unwrap_or(0);
    let literal = |i: usize| match args.get(i) {
        Some(Expr::Str(t)) => Some(t.as_str()),
        _ => None,
    };
    match f {
        F::Append | F::SelectUniqueValue | F::Coalesce | F::Switch => sum,
        // Separators between non-empty parts: at most one per byte of the parts.
        F::Join => {
            let parts = sum.saturating_sub(s(0));
            parts.saturating_add(s(0).saturating_mul(parts))
        }
        F::DateAdd | F::Guid | F::Now => 64,
        F::FormatDateTime => sizes.last().copied().unwrap_or(0).saturating_mul(8).max(64),
        F::ToLower | F::ToUpper | F::PCase | F::NormalizeDiacritics => s(0).saturating_mul(3),
        F::Replace => replace_bound(args, sizes, literal(1), literal(4)),
        F::Iif => s(1).max(s(2)),
        F::Redact | F::Item | F::Left | F::Mid | F::Word | F::Split | F::StripSpaces => s(0),
        F::RemoveDuplicates | F::CStr => s(0).max(20),
        _ => max.max(20),
    }
}

/// `Replace(source, old, pattern, group, replacement, replacementAttribute, template)`.
fn replace_bound(args: &[Expr], sizes: &[u64], old: Option<&str>, rep: Option<&str>) -> u64 {
    let s = |i: usize| sizes.get(i).copied().unwrap_or(0);
    let source = s(0);
    let replacement = s(4).max(s(5));
    let present = |i: usize| !matches!(args.get(i), None | Some(Expr::Null));
    if present(6) {
        // The template with each `old` in it replaced by the source.
        let old_len = old.map_or(1, |o| o.chars().count().max(1) as u64);
        let hits = s(6) / old_len;
        return s(6).saturating_add(hits.saturating_mul(source));
    }
    if let Some(Expr::Regex(p)) = args.get(2) {
        let min = p.min_len().max(1) as u64;
        let hits = source / min + 1;
        let refs = rep.map_or(replacement, |r| r.matches('$').count() as u64);
        return source
            .saturating_add(hits.saturating_mul(replacement))
            .saturating_add(refs.saturating_mul(source));
    }
    if present(2) || present(3) {
        // A pattern from an attribute: at worst one replacement per byte.
        return source.saturating_add((source + 1).saturating_mul(replacement));
    }
    let old_len = old.map_or(1, |o| o.len().max(1) as u64);
    source.saturating_add((source / old_len).saturating_mul(replacement))
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    #[test]
    fn the_parse_time_bound_refuses_multiplying_nests_and_keeps_real_mappings() {
        let nest = |n: usize| {
            let mut e = "[x]".to_string();
            for _ in 0..n {
                e = format!(r#"Replace({e}, "a", , , "aaaaaaaaaa", , )"#);
            }
            e
        };
        assert!(parse(&nest(2)).is_ok());
        let e = parse(&nest(10)).expect_err("10 levels");
        assert!(e.message.contains("over the limit"), "{e}");
        for ok in [
            r#"Join("@", Left(ToLower([givenName]), 1), Replace([mail], , "@.*$", , "@example.com", , ))"#,
            r#"Replace([phone], , "[^0-9+]", , "", , )"#,
            r#"Replace([mail], "@old.example", , , [newDomain], , )"#,
            r#"Replace([userPrincipalName], , "(?<suffix>@.*$)", "suffix", "@x.example", , )"#,
            r#"Replace(, "%id%", , , , , "cn=%id%,ou=people,dc=example,dc=com")"#,
            r#"SelectUniqueValue(Join("", Left([givenName], 1), [surname]), Join(".", [givenName], [surname]))"#,
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
        }
    }

    #[test]
    fn oversized_regexes_fail_when_parsed() {
        let e = parse(r#"Replace([x], , "\\w{200}", , "", , )"#).expect_err("big");
        assert!(e.message.contains("regexPattern"), "{e}");
        let e = parse(r#"Replace([x], , "(", , "", , )"#).expect_err("bad");
        assert_eq!(e.pos, 15, "{e}");
    }
}

#[cfg(test)]
mod runtime_tests {
    use super::super::limits::{MAX_ITEMS, size_of};
    use super::super::{AttributeSource, EvalContext, Val, evaluate, parse};
    use super::{Expr, Function};

    struct One(Val);
    impl AttributeSource for One {
        fn attribute(&self, _: &str) -> Val {
            self.0.clone()
        }
    }

    fn nest(levels: usize) -> Expr {
        // Built by hand: the parser would refuse it.
        let mut e = Expr::Attr {
            name: "x".into(),
            pos: 0,
        };
        for i in 0..levels {
            e = Expr::Call {
                function: Function::Replace,
                args: vec![
                    e,
                    Expr::Str("a".into()),
                    Expr::Null,
                    Expr::Null,
                    Expr::Str("aaaaaaaaaa".into()),
                    Expr::Null,
                    Expr::Null,
                ],
                pos: i,
            };
        }
        e
    }

    #[test]
    fn a_multiplying_nest_stops_at_the_limit_without_building_it() {
        let src = One(Val::Str("a".repeat(400)));
        let ctx = EvalContext::new(&src, time::OffsetDateTime::UNIX_EPOCH);
        let start = std::time::Instant::now();
        let e = evaluate(&nest(10), &ctx).expect_err("over the limit");
        assert!(e.message.contains("over the limit"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // The fuel bounds many values each under the limit.
        let wide = (0..40)
            .map(|_| "Replace([x], \"a\", , , \"aa\", , )".to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let e = parse(&format!("Join(\"\", {wide})")).expect("each call is small");
        let big = One(Val::Str("a".repeat(400_000)));
        let ctx = EvalContext::new(&big, time::OffsetDateTime::UNIX_EPOCH);
        let err = evaluate(&e, &ctx).expect_err("over the fuel");
        assert!(err.message.contains("in one evaluation"), "{err}");
    }

    #[test]
    fn a_regex_replacement_is_sized_before_it_is_expanded() {
        let big = One(Val::Str("a".repeat(600_000)));
        let ctx = EvalContext::new(&big, time::OffsetDateTime::UNIX_EPOCH);
        let e = parse(r#"Replace([x], , "(?s)^.+$", , "$0$0", , )"#).expect("small when parsed");
        let err = evaluate(&e, &ctx).expect_err("1.2 MB");
        assert!(err.message.contains("over the limit"), "{err}");
        // Case changes of long text count against the fuel too.
        let e = parse(&format!(
            "Join(\"\", {})",
            vec!["ToUpper([x])"; 40].join(", ")
        ))
        .expect("parses");
        let err = evaluate(&e, &ctx).expect_err("24 MB of upper case");
        assert!(err.message.contains("one evaluation"), "{err}");
    }

    #[test]
    fn lists_are_bounded_and_duplicates_removed_in_linear_time() {
        let many = One(Val::Str(",".repeat(MAX_ITEMS + 5)));
        let ctx = EvalContext::new(&many, time::OffsetDateTime::UNIX_EPOCH);
        let e = parse(r#"Split([x], ",")"#).expect("parses");
        assert!(evaluate(&e, &ctx).is_err());
        let list = One(Val::List(
            (0..MAX_ITEMS).map(|i| Val::Int(i as i64 % 7)).collect(),
        ));
        let ctx = EvalContext::new(&list, time::OffsetDateTime::UNIX_EPOCH);
        let e = parse("RemoveDuplicates([x])").expect("parses");
        assert_eq!(size_of(&evaluate(&e, &ctx).expect("dedups")), 7 * 8);
    }
}
