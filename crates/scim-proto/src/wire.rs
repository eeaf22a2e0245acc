//! Protocol messages (RFC 7644 §3.4.2, §3.4.3, §3.7, §4) and the discovery documents.
//!
//! Field names are the RFC's; numbers are JSON numbers (Okta checks), `status` strings are
//! strings (RFC 7644 §3.12, §3.7.3).

use crate::error::{ScimError, ScimResult};
pub use crate::search::SearchRequest;
use crate::urn;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `urn:ietf:params:scim:api:messages:2.0:ListResponse`, with RFC 9865 cursor fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub schemas: Vec<String>,
    pub total_results: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_index: Option<u64>,
    pub items_per_page: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_cursor: Option<String>,
    #[serde(rename = "Resources")]
    pub resources: Vec<Value>,
}

impl ListResponse {
    /// An index-paginated page.
    pub fn page(resources: Vec<Value>, total_results: u64, start_index: u64) -> Self {
        Self {
            schemas: vec![urn::LIST_RESPONSE.to_string()],
            total_results,
            start_index: Some(start_index),
            items_per_page: resources.len() as u64,
            next_cursor: None,
            previous_cursor: None,
            resources,
        }
    }
}

/// Sort direction (RFC 7644 §3.4.2.3); anything but "descending" is ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

impl SortOrder {
    pub fn parse(s: &str) -> ScimResult<Self> {
        if s.eq_ignore_ascii_case("ascending") {
            Ok(Self::Ascending)
        } else if s.eq_ignore_ascii_case("descending") {
            Ok(Self::Descending)
        } else {
            Err(ScimError::invalid_value(format!(
                "sortOrder must be 'ascending' or 'descending', got '{s}'"
            )))
        }
    }
}

/// Index pagination after RFC 7644 §3.4.2.4: `startIndex` < 1 means 1, `count` < 0 means 0,
/// `count` is capped at the server's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub start_index: u64,
    pub count: u64,
}

impl Page {
    pub fn new(
        start_index: Option<i64>,
        count: Option<i64>,
        default_count: u64,
        max_count: u64,
    ) -> Self {
        let start_index = start_index.map(|s| s.max(1) as u64).unwrap_or(1);
        let count = count
            .map(|c| c.max(0) as u64)
            .unwrap_or(default_count)
            .min(max_count);
        Self { start_index, count }
    }
    /// 0-based offset.
    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }
}

/// One operation of a BulkRequest (RFC 7644 §3.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `urn:ietf:params:scim:api:messages:2.0:BulkRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_errors: Option<u32>,
    #[serde(rename = "Operations")]
    pub operations: Vec<BulkOperation>,
}

/// One result of a BulkResponse; `status` is the HTTP status as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperationResult {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

/// `urn:ietf:params:scim:api:messages:2.0:BulkResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkResponse {
    pub schemas: Vec<String>,
    #[serde(rename = "Operations")]
    pub operations: Vec<BulkOperationResult>,
}

impl BulkResponse {
    pub fn new(operations: Vec<BulkOperationResult>) -> Self {
        Self {
            schemas: vec![urn::BULK_RESPONSE.to_string()],
            operations,
        }
    }
}

/// What a server advertises in `/ServiceProviderConfig` (RFC 7643 §5, RFC 9865 §6).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProviderConfig {
    pub documentation_uri: Option<String>,
    pub bulk_max_operations: u64,
    pub bulk_max_payload_size: u64,
    pub filter_max_results: u64,
    pub etag: bool,
    pub sort: bool,
    pub cursor: bool,
    pub default_page_size: u64,
    /// RFC 9865 §6: how long a cursor stays valid, a positive number of seconds; `None`
    /// leaves the optional attribute out (scimd's cursors are positions, they never expire).
    pub cursor_timeout_secs: Option<u64>,
}

impl ServiceProviderConfig {
    pub fn to_json(&self, base_url: &str) -> Value {
        let mut pagination = json!({
            "cursor": self.cursor,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": self.default_page_size,
            "maxPageSize": self.filter_max_results,
        });
        if let (Some(t), Some(p)) = (self.cursor_timeout_secs, pagination.as_object_mut()) {
            p.insert("cursorTimeout".into(), t.into());
        }
        json!({
            "schemas": [urn::SERVICE_PROVIDER_CONFIG],
            "documentationUri": self.documentation_uri,
            "patch": {"supported": true},
            "bulk": {
                "supported": self.bulk_max_operations > 0,
                "maxOperations": self.bulk_max_operations,
                "maxPayloadSize": self.bulk_max_payload_size,
            },
            "filter": {"supported": true, "maxResults": self.filter_max_results},
            "changePassword": {"supported": false},
            "sort": {"supported": self.sort},
            "etag": {"supported": self.etag},
            "pagination": pagination,
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a per-tenant bearer token created in the scimd console",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base_url}/ServiceProviderConfig"),
            }
        })
    }
}
