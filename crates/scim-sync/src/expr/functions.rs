//! The functions of the expression language and what each does with null.
//!
//! Null rules (docs/sync.md §4): a function of text gives null for a null input (so a
//! mapping of a missing attribute flows nothing) except where noted; `IIF` with a null
//! condition takes its *else* branch (Entra fails there, engine-behaviour §1.3); `Coalesce`,
//! `Join` and `Append` skip nulls; the `Is*` tests never give null.

use super::limits::{MAX_ITEMS, room, size_of};
use super::value::Val;
use super::{EvalContext, EvalError};
use unicode_normalization::UnicodeNormalization;

macro_rules! functions {
    ($($variant:ident = $name:literal, $min:literal ..= $max:expr;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Function { $($variant),* }

        impl Function {
            /// Exact name first; a name in another case is accepted too (a typo in case is
            /// the commonest mistake and has one obvious meaning).
            pub fn from_name(name: &str) -> Option<Self> {
                $(if name.eq_ignore_ascii_case($name) { return Some(Function::$variant); })*
                None
            }

            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name),* }
            }

            fn arity(self) -> (usize, usize) {
                match self { $(Function::$variant => ($min, $max)),* }
            }
        }

        /// Every function name, for documentation and error hints.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

const MANY: usize = usize::MAX;

functions! {
    Append = "Append", 2 ..= 2;
    BitAnd = "BitAnd", 2 ..= 2;
    CBool = "CBool", 1 ..= 1;
    Coalesce = "Coalesce", 1 ..= MANY;
    CStr = "CStr", 1 ..= 1;
    DateAdd = "DateAdd", 3 ..= 3;
    FormatDateTime = "FormatDateTime", 3 ..= 4;
    Guid = "Guid", 0 ..= 0;
    Iif = "IIF", 3 ..= 3;
    InStr = "InStr", 2 ..= 4;
    IsNull = "IsNull", 1 ..= 1;
    IsNullOrEmpty = "IsNullOrEmpty", 1 ..= 1;
    IsPresent = "IsPresent", 1 ..= 1;
    IsString = "IsString", 1 ..= 1;
    Item = "Item", 2 ..= 2;
    Join = "Join", 2 ..= MANY;
    Left = "Left", 2 ..= 2;
    Len = "Len", 1 ..= 1;
    Mid = "Mid", 3 ..= 3;
    NormalizeDiacritics = "NormalizeDiacritics", 1 ..= 1;
    Not = "Not", 1 ..= 1;
    Now = "Now", 0 ..= 0;
    PCase = "PCase", 1 ..= 2;
    Redact = "Redact", 1 ..= 1;
    RemoveDuplicates = "RemoveDuplicates", 1 ..= 1;
    Replace = "Replace", 7 ..= 7;
    SelectUniqueValue = "SelectUniqueValue", 1 ..= MANY;
    Split = "Split", 2 ..= 2;
    StripSpaces = "StripSpaces", 1 ..= 1;
    Switch = "Switch", 2 ..= MANY;
    ToLower = "ToLower", 1 ..= 2;
    ToUpper = "ToUpper", 1 ..= 2;
    Word = "Word", 3 ..= 3;
}

/// `Err(description)` when `n` arguments do not fit (checked at parse time).
pub fn arity_ok(f: Function, n: usize) -> Result<(), String> {
    let (min, max) = f.arity();
    if f == Function::Switch && !n.is_multiple_of(2) {
        return Err("a source, a default and key/value pairs (an even count)".into());
    }
    if n >= min && n <= max {
        return Ok(());
    }
    Err(match (min, max) {
        (0, 0) => "no arguments".into(),
        (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
        (a, MANY) => format!("at least {a} arguments"),
        (a, b) => format!("{a} to {b} arguments"),
    })
}

type R = Result<Val, EvalError>;

fn int_arg(f: Function, v: &Val, what: &str, pos: usize) -> Result<Option<i64>, EvalError> {
    match v {
        Val::Null => Ok(None),
        Val::Int(n) => Ok(Some(*n)),
        other => other
            .as_text()
            .and_then(|t| t.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                EvalError::new(pos, format!("{}: {what} must be a whole number", f.name()))
            }),
    }
}

fn chars_of(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// Applies `f` to evaluated arguments. `IIF` is lazy and handled by the evaluator.
pub fn call(f: Function, args: Vec<Val>, pos: usize, ctx: &EvalContext<'_>) -> R {
    use Function as F;
    match f {
        F::Replace => replace(&args, None, pos, ctx),
        F::Append
        | F::InStr
        | F::Join
        | F::Left
        | F::Len
        | F::Mid
        | F::NormalizeDiacritics
        | F::PCase
        | F::Split
        | F::StripSpaces
        | F::ToLower
        | F::ToUpper
        | F::Word => text_call(f, args, pos, ctx),
        F::BitAnd
        | F::CBool
        | F::CStr
        | F::IsNull
        | F::IsNullOrEmpty
        | F::IsPresent
        | F::IsString
        | F::Not
        | F::Guid
        | F::Iif => value_call(f, args, pos),
        F::Coalesce
        | F::Item
        | F::Redact
        | F::RemoveDuplicates
        | F::SelectUniqueValue
        | F::Switch
        | F::DateAdd
        | F::FormatDateTime
        | F::Now => choice_call(f, args, pos, ctx),
    }
}

/// Functions of text.
fn text_call(f: Function, args: Vec<Val>, pos: usize, ctx: &EvalContext<'_>) -> R {
    use Function as F;
    let text = |i: usize| args.get(i).and_then(Val::as_text);
    let fail = |msg: String| EvalError::new(pos, format!("{}: {msg}", f.name()));
    Ok(match f {
        F::Append => match (text(0), text(1)) {
            (None, None) => Val::Null,
            (a, b) => {
                let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
                room(ctx, f.name(), pos, a.len() + b.len())?;
                Val::Str(a + &b)
            }
        },
        F::InStr => {
            let (Some(value), Some(find)) = (text(0), text(1)) else {
                return Ok(Val::Null);
            };
            let start = args
                .get(2)
                .map(|v| int_arg(f, v, "start", pos))
                .transpose()?
                .flatten()
                .unwrap_or(1)
                .max(1);
            let ci = text(3).is_some_and(|c| c.eq_ignore_ascii_case("textCompare"));
            let (hay, needle) = if ci {
                (value.to_lowercase(), find.to_lowercase())
            } else {
                (value, find)
            };
            let hay = chars_of(&hay);
            let skip = usize::try_from(start - 1)
                .unwrap_or(usize::MAX)
                .min(hay.len());
            let rest: String = hay[skip..].iter().collect();
            Val::Int(
                rest.find(&needle)
                    .map_or(0, |b| (skip + rest[..b].chars().count() + 1) as i64),
            )
        }
        F::Join => {
            let Some(sep) = text(0) else {
                return Err(fail("the separator is null".into()));
            };
            let parts: Vec<String> = args[1..]
                .iter()
                .flat_map(|v| v.clone().into_list())
                .filter_map(|v| v.as_text())
                .filter(|s| !s.is_empty())
                .collect();
            if parts.is_empty() {
                Val::Null
            } else {
                let total = parts.iter().map(String::len).sum::<usize>()
                    + sep.len().saturating_mul(parts.len() - 1);
                room(ctx, f.name(), pos, total)?;
                Val::Str(parts.join(&sep))
            }
        }
        F::Left => match (text(0), int_arg(f, &args[1], "length", pos)?) {
            (Some(s), Some(n)) => Val::Str(
                s.chars()
                    .take(usize::try_from(n.max(0)).unwrap_or(0))
                    .collect(),
            ),
            _ => Val::Null,
        },
        F::Len => text(0).map_or(Val::Null, |s| Val::Int(s.chars().count() as i64)),
        F::Mid => match (
            text(0),
            int_arg(f, &args[1], "start", pos)?,
            int_arg(f, &args[2], "length", pos)?,
        ) {
            (Some(s), Some(start), Some(len)) => {
                let start = usize::try_from(start.max(1) - 1).unwrap_or(0);
                let len = usize::try_from(len.max(0)).unwrap_or(0);
                Val::Str(s.chars().skip(start).take(len).collect())
            }
            _ => Val::Null,
        },
        F::NormalizeDiacritics => text(0).map_or(Val::Null, |s| Val::Str(normalize_diacritics(&s))),
        F::PCase => text(0).map_or(Val::Null, |s| Val::Str(proper_case(&s))),
        F::Split => match (text(0), text(1)) {
            (Some(s), Some(d)) if !d.is_empty() => {
                if s.matches(d.as_str()).nth(MAX_ITEMS).is_some() {
                    return Err(fail(format!("over {MAX_ITEMS} parts")));
                }
                Val::List(
                    s.split(d.as_str())
                        .map(|p| Val::Str(p.to_string()))
                        .collect(),
                )
            }
            (Some(s), _) => Val::List(vec![Val::Str(s)]),
            _ => Val::Null,
        },
        F::StripSpaces => text(0).map_or(Val::Null, |s| {
            Val::Str(s.chars().filter(|c| *c != ' ').collect())
        }),
        F::ToLower => text(0).map_or(Val::Null, |s| Val::Str(s.to_lowercase())),
        F::ToUpper => text(0).map_or(Val::Null, |s| Val::Str(s.to_uppercase())),
        F::Word => {
            let (Some(s), Some(n), Some(delims)) =
                (text(0), int_arg(f, &args[1], "number", pos)?, text(2))
            else {
                return Ok(Val::Null);
            };
            let words: Vec<&str> = s
                .split(|c| delims.contains(c))
                .filter(|w| !w.is_empty())
                .collect();
            usize::try_from(n - 1)
                .ok()
                .and_then(|i| words.get(i))
                .map_or(Val::Null, |w| Val::Str((*w).to_string()))
        }
        _ => return Err(fail("not one of this group's functions".into())),
    })
}

/// Conversions and tests of one value.
fn value_call(f: Function, args: Vec<Val>, pos: usize) -> R {
    use Function as F;
    let fail = |msg: String| EvalError::new(pos, format!("{}: {msg}", f.name()));
    Ok(match f {
        F::BitAnd => match (
            int_arg(f, &args[0], "value", pos)?,
            int_arg(f, &args[1], "mask", pos)?,
        ) {
            (Some(a), Some(b)) => Val::Int(a & b),
            _ => Val::Null,
        },
        F::CBool => match &args[0] {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(*b),
            Val::Int(n) => Val::Bool(*n != 0),
            v => match v
                .as_text()
                .map(|s| s.trim().to_ascii_lowercase())
                .as_deref()
            {
                Some("true" | "1" | "yes") => Val::Bool(true),
                Some("false" | "0" | "no" | "") => Val::Bool(false),
                _ => return Err(fail("value is not a boolean".into())),
            },
        },
        F::CStr => args[0].as_text().map_or(Val::Null, Val::Str),
        F::IsNull => Val::Bool(args[0].is_null()),
        F::IsNullOrEmpty => Val::Bool(args[0].is_null_or_empty()),
        F::IsPresent => Val::Bool(!args[0].is_null_or_empty()),
        F::IsString => Val::Bool(matches!(args[0], Val::Str(_))),
        F::Not => match &args[0] {
            Val::Null => Val::Null,
            v => Val::Bool(!v.truthy()),
        },
        F::Guid => Val::Str(uuid::Uuid::new_v4().to_string()),
        F::Iif => Val::Null,
        _ => return Err(fail("not one of this group's functions".into())),
    })
}

/// Functions that choose among values, and the date functions.
fn choice_call(f: Function, args: Vec<Val>, pos: usize, ctx: &EvalContext<'_>) -> R {
    use Function as F;
    let text = |i: usize| args.get(i).and_then(Val::as_text);
    let fail = |msg: String| EvalError::new(pos, format!("{}: {msg}", f.name()));
    Ok(match f {
        F::Coalesce => args
            .into_iter()
            .find(|v| !v.is_null_or_empty())
            .unwrap_or(Val::Null),
        F::Item => {
            let Some(i) = int_arg(f, &args[1], "index", pos)? else {
                return Ok(Val::Null);
            };
            let list = args[0].clone().into_list();
            // 1-based, like the rest of the positional functions (Mid, Word).
            usize::try_from(i - 1)
                .ok()
                .and_then(|i| list.into_iter().nth(i))
                .unwrap_or(Val::Null)
        }
        F::Redact => {
            ctx.redacted.set(true);
            args.into_iter().next().unwrap_or(Val::Null)
        }
        F::RemoveDuplicates => {
            // Hashed by JSON text: linear, where comparing each to each was quadratic.
            let mut seen = std::collections::HashSet::new();
            let list = args[0].clone().into_list();
            Val::List(
                list.into_iter()
                    .filter(|v| seen.insert(v.to_json().to_string()))
                    .collect(),
            )
        }
        F::SelectUniqueValue => {
            room(ctx, f.name(), pos, args.iter().map(size_of).sum())?;
            Val::Candidates(
                args.iter()
                    .filter_map(Val::as_text)
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        }
        F::Switch => {
            // Switch(source, default, key1, value1, ...): a null source gives the default.
            let source = text(0);
            let mut out = args[1].clone();
            if let Some(src) = source {
                for pair in args[2..].chunks(2) {
                    if pair[0].as_text().as_deref() == Some(src.as_str()) {
                        out = pair[1].clone();
                        break;
                    }
                }
            }
            out
        }
        F::DateAdd => {
            let (Some(interval), Some(n), Some(date)) =
                (text(0), int_arg(f, &args[1], "value", pos)?, text(2))
            else {
                return Ok(Val::Null);
            };
            let t = super::dates::parse_any(&date)
                .ok_or_else(|| fail(format!("'{date}' is not a date")))?;
            Val::Str(super::dates::rfc3339(
                super::dates::add(t, &interval, n).ok_or_else(|| {
                    fail(format!(
                        "unknown interval '{interval}' (yyyy, q, m, ww, d, h, n, s)"
                    ))
                })?,
            ))
        }
        F::FormatDateTime => {
            // FormatDateTime(source, [dateTimeStyles,] inputFormat, outputFormat)
            let (input, output) = if args.len() == 4 {
                (text(2), text(3))
            } else {
                (text(1), text(2))
            };
            let (Some(src), Some(input), Some(output)) = (text(0), input, output) else {
                return Ok(Val::Null);
            };
            let t = super::dates::parse_with(&src, &input)
                .map_err(|m| fail(format!("'{src}' does not match '{input}': {m}")))?;
            Val::Str(super::dates::format_with(t, &output).map_err(fail)?)
        }
        F::Now => Val::Str(super::dates::rfc3339(ctx.now)),
        _ => return Err(fail("not one of this group's functions".into())),
    })
}

/// `Replace(source, oldValue, regexPattern, regexGroupName, replacementValue,
/// replacementAttributeName, template)`, Entra's seven positional arguments; the
/// replacement is `replacementValue`, else the value of `replacementAttributeName`. The
/// pattern is `compiled` when it was a literal (compiled once, when parsed); one from an
/// attribute is compiled here, within the same size limit. Every result is sized before it
/// is built (docs/security.md).
pub fn replace(
    args: &[Val],
    compiled: Option<&regex::Regex>,
    pos: usize,
    ctx: &EvalContext<'_>,
) -> R {
    let f = Function::Replace;
    let t = |i: usize| args.get(i).and_then(Val::as_text);
    let Some(source) = t(0) else {
        return Ok(Val::Null);
    };
    let replacement = t(4).or_else(|| t(5)).unwrap_or_default();
    if let Some(template) = t(6) {
        let old = t(1).unwrap_or_default();
        if old.is_empty() {
            return Ok(Val::Str(template));
        }
        let hits = template.matches(old.as_str()).count();
        room(
            ctx,
            f.name(),
            pos,
            template.len() + hits.saturating_mul(source.len()),
        )?;
        return Ok(Val::Str(template.replace(&old, &source)));
    }
    let dynamic;
    let re = match (compiled, t(2)) {
        (Some(re), _) => Some(re),
        (None, Some(pattern)) => {
            dynamic = super::limits::compile_regex(&pattern)
                .map_err(|e| EvalError::new(pos, format!("Replace: bad regexPattern: {e}")))?;
            Some(&dynamic)
        }
        (None, None) => None,
    };
    if let Some(re) = re {
        if let Some(group) = t(3) {
            // Replace what the named group matched, everywhere it occurs.
            let found = re
                .captures(&source)
                .and_then(|c| c.name(&group).map(|m| m.as_str().to_string()));
            return Ok(Val::Str(match found {
                Some(g) if !g.is_empty() => literal_replace(&source, &g, &replacement, pos, ctx)?,
                _ => source,
            }));
        }
        return regex_replace(re, &source, &replacement, pos, ctx).map(Val::Str);
    }
    match t(1) {
        Some(old) if !old.is_empty() => {
            literal_replace(&source, &old, &replacement, pos, ctx).map(Val::Str)
        }
        _ => Ok(Val::Str(source)),
    }
}

/// `source` with every `old` replaced, sized first.
fn literal_replace(
    source: &str,
    old: &str,
    new: &str,
    pos: usize,
    ctx: &EvalContext<'_>,
) -> Result<String, EvalError> {
    let hits = source.matches(old).count();
    let size = (source.len() - hits * old.len()).saturating_add(hits.saturating_mul(new.len()));
    room(ctx, "Replace", pos, size)?;
    Ok(source.replace(old, new))
}

/// `replace_all`, built match by match so a growing result stops at the limit.
fn regex_replace(
    re: &regex::Regex,
    source: &str,
    replacement: &str,
    pos: usize,
    ctx: &EvalContext<'_>,
) -> Result<String, EvalError> {
    let mut out = String::new();
    let mut last = 0;
    // What one expansion can add at most: the replacement's text, and each `$` reference
    // standing for at most the whole match (every group lies inside it).
    let refs = replacement.matches('$').count();
    for caps in re.captures_iter(source) {
        let Some(m) = caps.get(0) else { continue };
        let most = replacement.len() + refs.saturating_mul(m.len());
        if out.len() + (m.start() - last) + most > super::limits::MAX_TEXT {
            return Err(EvalError::new(
                pos,
                format!(
                    "Replace: the value would pass {} bytes, over the limit",
                    super::limits::MAX_TEXT
                ),
            ));
        }
        out.push_str(&source[last..m.start()]);
        caps.expand(replacement, &mut out);
        last = m.end();
    }
    out.push_str(&source[last..]);
    room(ctx, "Replace", pos, out.len())?;
    Ok(out)
}

/// Letters with diacritics to their base letters (`Zoë` → `Zoe`), plus the letters Unicode
/// does not decompose (`ø`, `æ`, `ß`, `ł`, `đ`), as Entra's function does.
pub fn normalize_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        match c {
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'ß' => out.push_str("ss"),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            c => out.push(c),
        }
    }
    out
}

fn proper_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}
