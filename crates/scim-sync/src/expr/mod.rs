//! The mapping expression language: Entra's functions with a real parser (errors carry a
//! position) and fixed null rules. `parse` once, `evaluate` per object.

mod dates;
mod functions;
mod parser;
mod value;

pub use functions::{Function, NAMES, normalize_diacritics};
pub use parser::{Expr, MAX_LEN, ParseError, parse};
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

/// What one evaluation sees: the object's attributes, the time, and whether `Redact` was
/// called (the value is then masked in logs and plans).
pub struct EvalContext<'a> {
    pub source: &'a dyn AttributeSource,
    pub now: OffsetDateTime,
    pub redacted: Cell<bool>,
}

impl<'a> EvalContext<'a> {
    pub fn new(source: &'a dyn AttributeSource, now: OffsetDateTime) -> Self {
        Self {
            source,
            now,
            redacted: Cell::new(false),
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
            functions::call(*function, vals, *pos, ctx)
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
