//! The SCIM filter language (RFC 7644 §3.4.2.2): AST, parser, printer and evaluator.
//!
//! The grammar is small and ours: a hand-written lexer and recursive-descent parser
//! ([`parse`]) produce a [`FilterExpr`]; `Display` prints it back in a form that parses to
//! the same tree; [`FilterExpr::matches`] evaluates it against a resource using the schema
//! registry for `caseExact`, types and multi-valued semantics. Limits on length, nesting
//! depth and term count keep hostile input cheap ([`FilterLimits`]).

mod eval;
mod lexer;
mod parser;
mod patch_path;

pub use eval::compare_values;
pub use parser::Parser;
pub use patch_path::PatchPath;

use crate::error::ScimResult;
use crate::path::AttrPath;
use std::fmt;

/// Comparison operators (RFC 7644 §3.4.2.2, table 3), minus `pr` which has no operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
    /// Case-insensitive keyword lookup.
    pub fn from_keyword(s: &str) -> Option<Self> {
        let ops = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ops.into_iter().find(|o| o.as_str().eq_ignore_ascii_case(s))
    }
    /// Ordering operators; not defined for booleans (RFC 7644 §3.4.2.2).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
    /// Substring operators; defined for strings only.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// `compValue = false / null / true / number / string` (RFC 7644 §3.4.2.2).
/// DateTime literals are strings; they are compared as instants when the attribute is a
/// `dateTime`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::Str(s) => {
                // serde_json's string escaping is exactly JSON's, which is what the grammar uses.
                let quoted = serde_json::Value::String(s.clone()).to_string();
                f.write_str(&quoted)
            }
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterExpr {
    /// `attrPath compareOp compValue`
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `attrPath pr`
    Present(AttrPath),
    And(Box<FilterExpr>, Box<FilterExpr>),
    Or(Box<FilterExpr>, Box<FilterExpr>),
    Not(Box<FilterExpr>),
    /// `attrPath "[" valFilter "]"`: the inner filter's paths name sub-attributes of `attr`.
    ValuePath {
        attr: AttrPath,
        filter: Box<FilterExpr>,
    },
}

impl FilterExpr {
    pub fn compare(path: AttrPath, op: CompareOp, value: CompValue) -> Self {
        FilterExpr::Compare { path, op, value }
    }
    pub fn and(a: FilterExpr, b: FilterExpr) -> Self {
        FilterExpr::And(Box::new(a), Box::new(b))
    }
    pub fn or(a: FilterExpr, b: FilterExpr) -> Self {
        FilterExpr::Or(Box::new(a), Box::new(b))
    }
    pub fn negate(a: FilterExpr) -> Self {
        FilterExpr::Not(Box::new(a))
    }

    /// Number of attribute expressions (comparisons and `pr`) in the tree.
    pub fn term_count(&self) -> usize {
        match self {
            FilterExpr::Compare { .. } | FilterExpr::Present(_) => 1,
            FilterExpr::And(a, b) | FilterExpr::Or(a, b) => a.term_count() + b.term_count(),
            FilterExpr::Not(a) => a.term_count(),
            FilterExpr::ValuePath { filter, .. } => filter.term_count(),
        }
    }

    /// If this filter is a conjunction of `eq` comparisons on simple sub-attributes
    /// (`type eq "work" and primary eq true`), the attribute/value pairs it pins down.
    /// PATCH uses this to create the value a filter names when none exists yet.
    pub fn equality_constraints(&self) -> Option<Vec<(String, CompValue)>> {
        match self {
            FilterExpr::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if path.urn.is_none() && path.sub.is_none() && *value != CompValue::Null => {
                Some(vec![(path.name.clone(), value.clone())])
            }
            FilterExpr::And(a, b) => {
                let mut v = a.equality_constraints()?;
                v.extend(b.equality_constraints()?);
                Some(v)
            }
            _ => None,
        }
    }
}

fn fmt_child(f: &mut fmt::Formatter<'_>, e: &FilterExpr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// Prints the canonical text form. `and` binds tighter than `or`; both associate to the left;
/// parentheses are written exactly where the tree needs them, so `parse(x.to_string()) == x`.
impl fmt::Display for FilterExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterExpr::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            FilterExpr::Present(p) => write!(f, "{p} pr"),
            FilterExpr::And(a, b) => {
                fmt_child(f, a, matches!(**a, FilterExpr::Or(..)))?;
                f.write_str(" and ")?;
                fmt_child(
                    f,
                    b,
                    matches!(**b, FilterExpr::Or(..) | FilterExpr::And(..)),
                )
            }
            FilterExpr::Or(a, b) => {
                fmt_child(f, a, false)?;
                f.write_str(" or ")?;
                fmt_child(f, b, matches!(**b, FilterExpr::Or(..)))
            }
            FilterExpr::Not(a) => write!(f, "not ({a})"),
            FilterExpr::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
        }
    }
}

/// Bounds on what the parser accepts; over a bound is `400 invalidFilter`.
#[derive(Debug, Clone, Copy)]
pub struct FilterLimits {
    /// Maximum filter length in bytes.
    pub max_len: usize,
    /// Maximum nesting of parentheses, `not` and value paths.
    pub max_depth: usize,
    /// Maximum number of attribute expressions.
    pub max_terms: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        Self {
            max_len: 8 * 1024,
            max_depth: 32,
            max_terms: 256,
        }
    }
}

/// Parses a filter with the default limits. Errors are `400 invalidFilter` and name the
/// byte position of the problem.
pub fn parse(s: &str) -> ScimResult<FilterExpr> {
    parse_with(s, FilterLimits::default())
}

/// Parses a filter with explicit limits.
pub fn parse_with(s: &str, limits: FilterLimits) -> ScimResult<FilterExpr> {
    Parser::new(s, limits)
        .and_then(|p| p.parse_filter())
        .map_err(|e| crate::error::ScimError::invalid_filter(format!("invalid filter: {e}")))
}

/// A parse error with the byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}
