//! The one search request (RFC 7644 §3.4.2 query parameters and the §3.4.3 SearchRequest
//! body, plus RFC 9865's `cursor`), and how a search across resource types pages.

use crate::error::{ScimError, ScimResult};
use crate::projection::Projection;
use serde::{Deserialize, Serialize};

/// `urn:ietf:params:scim:api:messages:2.0:SearchRequest` (RFC 7644 §3.4.3), also built from
/// a query string: a list or search as the client sent it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchRequest {
    pub schemas: Vec<String>,
    pub attributes: Vec<String>,
    pub excluded_attributes: Vec<String>,
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub cursor: Option<String>,
}

fn int(name: &str, v: Option<&str>) -> ScimResult<Option<i64>> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ScimError::invalid_value(format!(
                "'{name}' must be an integer, got '{}'",
                crate::error::excerpt(v)
            ))
        }),
    }
}

impl SearchRequest {
    /// From query parameters; `get` looks a parameter up by name (case-insensitively, RFC
    /// 7644 §3.4.2 parameter names are case-insensitive in practice: docs/interop.md).
    pub fn from_query<'a>(get: impl Fn(&str) -> Option<&'a str>) -> ScimResult<Self> {
        let list = |name: &str| get(name).map(|v| vec![v.to_string()]).unwrap_or_default();
        Ok(Self {
            schemas: Vec::new(),
            attributes: list("attributes"),
            excluded_attributes: list("excludedAttributes"),
            filter: get("filter").map(str::to_string),
            sort_by: get("sortBy").map(str::to_string),
            sort_order: get("sortOrder").map(str::to_string),
            start_index: int("startIndex", get("startIndex"))?,
            count: int("count", get("count"))?,
            cursor: get("cursor").map(str::to_string),
        })
    }

    /// The `attributes` / `excludedAttributes` projection.
    pub fn projection(&self) -> ScimResult<Projection> {
        Projection::from_lists(&self.attributes, &self.excluded_attributes)
    }
}

/// Index paging over several resource types in turn (the root `/.search`, RFC 7644
/// §3.4.3): the page's window is taken from the first type, then what is left of it from
/// the next, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpreadPage {
    /// 0-based offset into what is left.
    pub offset: u64,
    /// How many more resources the page may hold.
    pub remaining: u64,
}

impl SpreadPage {
    pub fn new(offset: u64, count: u64) -> Self {
        Self {
            offset,
            remaining: count,
        }
    }

    /// After a type with `total` matches contributed `returned` resources.
    pub fn advance(&mut self, total: u64, returned: u64) {
        self.offset = self.offset.saturating_sub(total);
        self.remaining = self.remaining.saturating_sub(returned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_and_bodies_give_one_request() {
        let pairs = [
            ("filter", "userName eq \"a\""),
            ("count", "5"),
            ("attributes", "userName,emails"),
        ];
        let q =
            SearchRequest::from_query(|k| pairs.iter().find(|p| p.0 == k).map(|p| p.1)).unwrap();
        let b: SearchRequest = serde_json::from_value(serde_json::json!({
            "filter": "userName eq \"a\"", "count": 5, "attributes": ["userName", "emails"]}))
        .unwrap();
        assert_eq!(q.projection().unwrap(), b.projection().unwrap());
        assert_eq!((q.filter, q.count), (b.filter, b.count));
        assert!(SearchRequest::from_query(|k| (k == "count").then_some("x")).is_err());
    }

    #[test]
    fn spread_pages_continue_into_the_next_type() {
        let mut p = SpreadPage::new(3, 10);
        p.advance(5, 2); // users 4 and 5
        assert_eq!(
            p,
            SpreadPage {
                offset: 0,
                remaining: 8
            }
        );
        let mut p = SpreadPage::new(8, 10);
        p.advance(5, 0);
        assert_eq!(
            p,
            SpreadPage {
                offset: 3,
                remaining: 10
            }
        );
    }
}
