//! The mapping expression language: Entra's functions with a real parser (errors carry a
//! position) and fixed null rules. `parse` once, `evaluate` per object.

mod budget;
mod dates;
mod functions;
mod limits;
mod parser;
mod value;

pub use functions::{Function, NAMES, normalize_diacritics};
pub use limits::{FUEL, MAX_ITEMS, MAX_TEXT};
pub use parser::{Expr, MAX_LEN, ParseError, Pattern};

/// Parses one expression and checks what it may cost (`budget`): the parse error, or the
/// call that could build a value over [`MAX_TEXT`].
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let e = parser::parse(src)?;
    budget::check_bounds(&e).map_err(|(pos, message)| ParseError { pos, message })?;
    Ok(e)
}
pub use value::Val;

use std::cell::Cell;
use time::OffsetDateTime;

/// A failure while evaluating (a bad regex, a date that does not parse), at the position
/// of the call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at {pos}: {message}")]
pub struct EvalError {
    pub pos: usize,
    pub message: String,
}

impl EvalError {
    pub fn new(pos: usize, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
        }
    }
}

/// Where `[attribute]` values come from.
pub trait AttributeSource {
    fn attribute(&self, name: &str) -> Val;
}

/// What one evaluation sees: the object's attributes, the time, whether `Redact` was
/// called (the value is then masked in logs and plans), and the bytes produced so far
/// (bounded by [`FUEL`]).
pub struct EvalContext<'a> {
    pub source: &'a dyn AttributeSource,
    pub now: OffsetDateTime,
    pub redacted: Cell<bool>,
    spent: Cell<usize>,
}

impl<'a> EvalContext<'a> {
    pub fn new(source: &'a dyn AttributeSource, now: OffsetDateTime) -> Self {
        Self {
            source,
            now,
            redacted: Cell::new(false),
            spent: Cell::new(0),
        }
    }
}

/// Evaluates a parsed expression.
pub fn evaluate(e: &Expr, ctx: &EvalContext<'_>) -> Result<Val, EvalError> {
    match e {
        Expr::Attr { name, .. } => Ok(ctx.source.attribute(name)),
        Expr::Str(s) => Ok(Val::Str(s.clone())),
        Expr::Int(n) => Ok(Val::Int(*n)),
        Expr::Bool(b) => Ok(Val::Bool(*b)),
        Expr::Null => Ok(Val::Null),
        Expr::Regex(p) => Ok(Val::Str(p.source().to_string())),
        Expr::Call {
            function: Function::Iif,
            args,
            ..
        } => {
            // Lazy, and a null condition is false (docs/sync.md §4).
            let cond = evaluate(&args[0], ctx)?;
            evaluate(if cond.truthy() { &args[1] } else { &args[2] }, ctx)
        }
        Expr::Call {
            function,
            args,
            pos,
        } => {
            let vals = args
                .iter()
                .map(|a| evaluate(a, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            let out = match (function, args.get(2)) {
                (Function::Replace, Some(Expr::Regex(p))) => {
                    functions::replace(&vals, Some(p.regex()), *pos, ctx)?
                }
                _ => functions::call(*function, vals, *pos, ctx)?,
            };
            limits::check_value(ctx, &out, function.name(), *pos)?;
            Ok(out)
        }
    }
}

/// The attribute names an expression reads (for "mandatory source attribute" checks and
/// the mapping editor).
pub fn attributes(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Attr { name, .. } => out.push(name.clone()),
        Expr::Call { args, .. } => args.iter().for_each(|a| attributes(a, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
