//! Sorting (RFC 7644 §3.4.2.3) where the store cannot sort in SQL: the sort key of a
//! resource and the order of keys.
//!
//! Rules: the value of a multi-valued attribute is its primary value, else its first;
//! strings compare case-insensitively unless the attribute is `caseExact`; `dateTime`s
//! compare as instants, numbers and booleans as numbers; absent values sort last in both
//! directions (the RFC leaves it to the server); ties keep the store's order (creation).

use crate::datetime;
use crate::json::get_ci;
use crate::path::AttrPath;
use crate::schema::{AttributeType, ResourceView};
use serde_json::Value;
use std::cmp::Ordering;

/// A sortable value.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortKey {
    Num(f64),
    Text(String),
}

/// The key of a resource (full representation) under `path`.
pub fn sort_key(view: &ResourceView<'_>, resource: &Value, path: &AttrPath) -> Option<SortKey> {
    let resolved = view.resolve(path)?;
    let container = if resolved.is_extension {
        get_ci(resource, resolved.schema)?
    } else {
        resource
    };
    let mut v = get_ci(container, &resolved.attr.name)?;
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|i| i.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    if let Some(sub) = resolved.sub {
        v = get_ci(v, &sub.name)?;
    }
    match v {
        Value::Number(n) => n.as_f64().map(SortKey::Num),
        Value::Bool(b) => Some(SortKey::Num(f64::from(u8::from(*b)))),
        Value::String(s) if resolved.leaf().kind == AttributeType::DateTime => {
            datetime::parse(s).map(|t| SortKey::Num(t.unix_timestamp_nanos() as f64))
        }
        Value::String(s) if resolved.leaf().case_exact => Some(SortKey::Text(s.clone())),
        Value::String(s) => Some(SortKey::Text(crate::text::fold(s))),
        _ => None,
    }
}

/// Orders two keys; absent keys last in both directions.
pub fn compare_keys(a: &Option<SortKey>, b: &Option<SortKey>, descending: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        }
    }
}
