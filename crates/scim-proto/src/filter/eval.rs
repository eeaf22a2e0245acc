//! Filter validation and evaluation against a resource (RFC 7644 §3.4.2.2).
//!
//! Semantics, where the RFC leaves room:
//! - A multi-valued attribute matches when **any** of its values matches.
//! - A complex attribute named without a sub-attribute compares its `value` sub-attribute
//!   (`manager eq "id"`, `emails co "@x"`); `pr` on it tests that it has any value.
//! - `ne` is the negation of `eq`: `title ne "x"` holds for a user without a title.
//! - `eq null` holds when the attribute is absent, `ne null` when it is present.
//! - Strings compare case-insensitively unless the attribute is `caseExact`; `dateTime`s
//!   compare as instants; `gt`/`ge`/`lt`/`le` are rejected for booleans and `co`/`sw`/`ew`
//!   for anything but strings, at validation, with `invalidFilter`.

use super::{CompValue, CompareOp, FilterExpr};
use crate::datetime;
use crate::error::{ScimError, ScimResult};
use crate::json::{get_ci, parse_bool_str};
use crate::path::AttrPath;
use crate::schema::{AttributeDef, AttributeType, ResourceView};
use serde_json::Value;
use std::cmp::Ordering;

/// What a path is evaluated against: the resource, or one value of a complex attribute
/// inside `attr[...]`.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Root,
    Element(&'a AttributeDef),
}

impl FilterExpr {
    /// Checks every attribute path resolves and every operator suits its attribute's type.
    pub fn validate(&self, view: &ResourceView<'_>) -> ScimResult<()> {
        validate(self, view, Scope::Root)
    }

    /// Whether the resource (canonical JSON) matches. Call [`validate`](Self::validate) first:
    /// unknown attributes simply match nothing here.
    pub fn matches(&self, view: &ResourceView<'_>, resource: &Value) -> bool {
        eval(self, view, Scope::Root, resource)
    }

    /// Evaluates a value filter (`emails[type eq "work"]`) against one value of `attr`.
    pub fn matches_element(
        &self,
        view: &ResourceView<'_>,
        attr: &AttributeDef,
        element: &Value,
    ) -> bool {
        eval(self, view, Scope::Element(attr), element)
    }

    /// Validates a value filter against the sub-attributes of `attr`.
    pub fn validate_element(&self, view: &ResourceView<'_>, attr: &AttributeDef) -> ScimResult<()> {
        validate(self, view, Scope::Element(attr))
    }
}

fn resolve_leaf<'a>(
    view: &ResourceView<'a>,
    scope: Scope<'a>,
    path: &AttrPath,
) -> ScimResult<&'a AttributeDef> {
    match scope {
        Scope::Root => Ok(view.resolve_or(path, ScimError::invalid_filter)?.leaf()),
        Scope::Element(parent) => {
            if path.urn.is_some() || path.sub.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}' inside {}[...] must name a sub-attribute of {}",
                    parent.name, parent.name
                )));
            }
            parent.sub_attribute(&path.name).ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "'{}' has no sub-attribute '{}'",
                    parent.name, path.name
                ))
            })
        }
    }
}

/// The attribute a comparison really applies to: a complex attribute compares its `value`.
fn comparable(def: &AttributeDef) -> Option<&AttributeDef> {
    if def.kind == AttributeType::Complex {
        def.sub_attribute("value")
    } else {
        Some(def)
    }
}

fn validate(e: &FilterExpr, view: &ResourceView<'_>, scope: Scope<'_>) -> ScimResult<()> {
    match e {
        FilterExpr::And(a, b) | FilterExpr::Or(a, b) => {
            validate(a, view, scope)?;
            validate(b, view, scope)
        }
        FilterExpr::Not(a) => validate(a, view, scope),
        FilterExpr::Present(p) => resolve_leaf(view, scope, p).map(|_| ()),
        FilterExpr::ValuePath { attr, filter } => {
            if let Scope::Element(_) = scope {
                return Err(ScimError::invalid_filter("value filters cannot be nested"));
            }
            let def = view.resolve_or(attr, ScimError::invalid_filter)?.leaf();
            if def.kind != AttributeType::Complex {
                return Err(ScimError::invalid_filter(format!(
                    "'{attr}' is not a complex attribute and cannot take a [filter]"
                )));
            }
            validate(filter, view, Scope::Element(def))
        }
        FilterExpr::Compare { path, op, value } => {
            let def = resolve_leaf(view, scope, path)?;
            let Some(def) = comparable(def) else {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}' is a complex attribute: compare one of its sub-attributes"
                )));
            };
            check_operator(path, def, *op, value)
        }
    }
}

fn check_operator(
    path: &AttrPath,
    def: &AttributeDef,
    op: CompareOp,
    value: &CompValue,
) -> ScimResult<()> {
    let bad = |why: &str| {
        Err(ScimError::invalid_filter(format!(
            "'{path} {} {value}': {why}",
            op.as_str()
        )))
    };
    if *value == CompValue::Null {
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(()),
            _ => bad("null can only be compared with eq or ne"),
        };
    }
    match def.kind {
        AttributeType::Boolean => {
            if op.is_ordering() || op.is_substring() {
                return bad("boolean attributes support only eq and ne");
            }
            if as_bool_literal(value).is_none() {
                return bad("expected true or false");
            }
        }
        AttributeType::DateTime => {
            if op.is_substring() {
                return bad("dateTime attributes do not support co, sw or ew");
            }
            match value {
                CompValue::Str(s) if datetime::parse(s).is_some() => {}
                _ => return bad("expected a dateTime such as \"2011-05-13T04:42:34Z\""),
            }
        }
        AttributeType::Integer | AttributeType::Decimal => {
            if op.is_substring() {
                return bad("numeric attributes do not support co, sw or ew");
            }
            if !matches!(value, CompValue::Number(_)) {
                return bad("expected a number");
            }
        }
        AttributeType::Binary => {
            if op != CompareOp::Eq
                && op != CompareOp::Ne
                && op != CompareOp::Co
                && op != CompareOp::Sw
                && op != CompareOp::Ew
            {
                return bad("binary attributes cannot be ordered");
            }
        }
        // Strings accept any literal: legacy clients send unquoted ids that lex as numbers.
        AttributeType::String | AttributeType::Reference | AttributeType::Complex => {}
    }
    Ok(())
}

fn as_bool_literal(v: &CompValue) -> Option<bool> {
    match v {
        CompValue::Bool(b) => Some(*b),
        CompValue::Str(s) => parse_bool_str(s),
        _ => None,
    }
}

fn push_flat<'v>(out: &mut Vec<&'v Value>, v: &'v Value) {
    match v {
        Value::Null => {}
        Value::Array(items) => out.extend(items.iter().filter(|i| !i.is_null())),
        other => out.push(other),
    }
}

/// The values a path selects, flattened across multi-valued attributes, and the definition
/// of the attribute they belong to.
fn select<'a, 'v>(
    view: &ResourceView<'a>,
    scope: Scope<'a>,
    target: &'v Value,
    path: &AttrPath,
    descend_to_value: bool,
) -> Option<(&'a AttributeDef, Vec<&'v Value>)> {
    let mut out = Vec::new();
    match scope {
        Scope::Element(parent) => {
            let def = parent.sub_attribute(&path.name)?;
            if let Some(v) = get_ci(target, &def.name) {
                push_flat(&mut out, v);
            }
            Some((def, out))
        }
        Scope::Root => {
            let r = view.resolve(path)?;
            let container = if r.is_extension {
                get_ci(target, r.schema)?
            } else {
                target
            };
            let Some(v) = get_ci(container, &r.attr.name) else {
                return Some((r.leaf(), out));
            };
            let mut top = Vec::new();
            push_flat(&mut top, v);
            let sub = match r.sub {
                Some(s) => Some(s),
                None if descend_to_value => {
                    if r.attr.kind == AttributeType::Complex {
                        r.attr.sub_attribute("value")
                    } else {
                        None
                    }
                }
                None => None,
            };
            match sub {
                Some(s) => {
                    for el in top {
                        if let Some(sv) = get_ci(el, &s.name) {
                            push_flat(&mut out, sv);
                        }
                    }
                    Some((s, out))
                }
                None => Some((r.attr, top)),
            }
        }
    }
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        _ => true,
    }
}

fn eval(e: &FilterExpr, view: &ResourceView<'_>, scope: Scope<'_>, target: &Value) -> bool {
    match e {
        FilterExpr::And(a, b) => eval(a, view, scope, target) && eval(b, view, scope, target),
        FilterExpr::Or(a, b) => eval(a, view, scope, target) || eval(b, view, scope, target),
        FilterExpr::Not(a) => !eval(a, view, scope, target),
        FilterExpr::Present(p) => select(view, scope, target, p, false)
            .map(|(_, vals)| vals.iter().any(|v| is_present(v)))
            .unwrap_or(false),
        FilterExpr::ValuePath { attr, filter } => {
            let Some((def, vals)) = select(view, Scope::Root, target, attr, false) else {
                return false;
            };
            vals.iter()
                .any(|el| eval(filter, view, Scope::Element(def), el))
        }
        FilterExpr::Compare { path, op, value } => {
            let Some((def, vals)) = select(view, scope, target, path, true) else {
                return *op == CompareOp::Ne || (*op == CompareOp::Eq && *value == CompValue::Null);
            };
            let def = comparable(def).unwrap_or(def);
            match (op, value) {
                (CompareOp::Eq, CompValue::Null) => !vals.iter().any(|v| is_present(v)),
                (CompareOp::Ne, CompValue::Null) => vals.iter().any(|v| is_present(v)),
                (CompareOp::Ne, _) => !vals
                    .iter()
                    .any(|v| compare_values(def, v, CompareOp::Eq, value)),
                _ => vals.iter().any(|v| compare_values(def, v, *op, value)),
            }
        }
    }
}

fn ordering_matches(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Compares one attribute value with a literal under `op`, using the attribute's type and
/// `caseExact`. Values of the wrong type never match.
pub fn compare_values(def: &AttributeDef, actual: &Value, op: CompareOp, lit: &CompValue) -> bool {
    match def.kind {
        AttributeType::Boolean => {
            let a = match actual {
                Value::Bool(b) => Some(*b),
                Value::String(s) => parse_bool_str(s),
                _ => None,
            };
            match (a, as_bool_literal(lit)) {
                (Some(a), Some(b)) => ordering_matches(op, a.cmp(&b)) && !op.is_ordering(),
                _ => false,
            }
        }
        AttributeType::Integer | AttributeType::Decimal => match (actual.as_f64(), lit) {
            (Some(a), CompValue::Number(n)) => match n.as_f64() {
                Some(b) => a.partial_cmp(&b).is_some_and(|o| ordering_matches(op, o)),
                None => false,
            },
            _ => false,
        },
        AttributeType::DateTime => {
            let (Some(a), CompValue::Str(b)) = (actual.as_str().and_then(datetime::parse), lit)
            else {
                return false;
            };
            match datetime::parse(b) {
                Some(b) => ordering_matches(op, a.cmp(&b)),
                None => false,
            }
        }
        _ => {
            let Some(a) = actual.as_str() else {
                return false;
            };
            let b = match lit {
                CompValue::Str(s) => s.clone(),
                CompValue::Number(n) => n.to_string(),
                CompValue::Bool(b) => b.to_string(),
                CompValue::Null => return false,
            };
            let (a, b) = if def.case_exact {
                (a.to_string(), b)
            } else {
                (crate::text::fold(a), crate::text::fold(&b))
            };
            match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordering_matches(op, a.cmp(&b)),
            }
        }
    }
}
