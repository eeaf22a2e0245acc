//! What one evaluation may build (docs/security.md, "Mapping expressions"): no string over
//! [`MAX_TEXT`] and no list over [`MAX_ITEMS`] is ever built (growing functions check before
//! they allocate), and one evaluation produces at most [`FUEL`] bytes in all, which bounds
//! its time. Regexes compile within [`REGEX_SIZE_LIMIT`]. The parse-time check is
//! `super::budget`.

use super::value::Val;
use super::{EvalContext, EvalError};

/// The longest string any function may produce.
pub const MAX_TEXT: usize = 1 << 20;
/// The longest list any function may produce.
pub const MAX_ITEMS: usize = 100_000;
/// Bytes one evaluation may produce in all.
pub const FUEL: usize = 16 << 20;
/// The compiled size a `Replace` pattern may reach (`regex`'s default is 10 MiB).
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// Compiles a `Replace` pattern within the limits.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT * 4)
        .build()
}

/// Bytes a value holds (its text, summed over lists).
pub fn size_of(v: &Val) -> usize {
    match v {
        Val::Null | Val::Bool(_) | Val::Int(_) => 8,
        Val::Str(s) => s.len(),
        Val::List(l) => l.iter().map(size_of).sum(),
        Val::Candidates(c) => c.iter().map(String::len).sum(),
        Val::Object(o) => o.iter().map(|(k, v)| k.len() + v.to_string().len()).sum(),
    }
}

/// Takes `bytes` from the evaluation's fuel, refusing a string over [`MAX_TEXT`]: called
/// before a function that grows its input allocates.
pub fn room(ctx: &EvalContext<'_>, f: &str, pos: usize, bytes: usize) -> Result<(), EvalError> {
    if bytes > MAX_TEXT {
        return Err(EvalError::new(
            pos,
            format!(
                "{}: the value would be {bytes} bytes, over the limit of {MAX_TEXT}",
                f
            ),
        ));
    }
    let spent = ctx.spent.get().saturating_add(bytes);
    if spent > FUEL {
        return Err(EvalError::new(
            pos,
            format!(
                "{}: the expression produced over {FUEL} bytes in one evaluation",
                f
            ),
        ));
    }
    ctx.spent.set(spent);
    Ok(())
}

/// Checks a value a function produced against the limits.
/// Also takes the value's bytes from the evaluation's fuel (every function's output counts,
/// so case changes of long text add up too).
pub fn check_value(ctx: &EvalContext<'_>, v: &Val, f: &str, pos: usize) -> Result<(), EvalError> {
    let items = match v {
        Val::List(l) => l.len(),
        Val::Candidates(c) => c.len(),
        _ => 0,
    };
    if items > MAX_ITEMS {
        return Err(EvalError::new(
            pos,
            format!("{}: over {MAX_ITEMS} values", f),
        ));
    }
    match v {
        Val::Str(s) if s.len() > MAX_TEXT => Err(EvalError::new(
            pos,
            format!("{}: a value over {MAX_TEXT} bytes", f),
        )),
        _ => room(ctx, f, pos, size_of(v).min(MAX_TEXT)),
    }
}
