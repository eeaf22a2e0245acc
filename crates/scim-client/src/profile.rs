//! What discovery says about a target (RFC 7644 §4, RFC 7643 §5–§6).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    pub fn schema(self) -> &'static str {
        match self {
            ResourceKind::User => crate::USER_SCHEMA,
            ResourceKind::Group => crate::GROUP_SCHEMA,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
}

/// The capabilities the engine plans with. Unknown means "assume the RFC default": a target
/// whose ServiceProviderConfig cannot be read is treated as supporting PATCH and filtering
/// (both are what every IdP sends regardless, docs/interop.md §9) but not Bulk.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TargetProfile {
    pub patch: bool,
    pub bulk: bool,
    pub bulk_max_operations: usize,
    /// `bulk.maxPayloadSize` in bytes (1 MiB when the target does not say).
    pub bulk_max_payload: usize,
    pub filter: bool,
    /// The page size the target caps lists at (`filter.maxResults`).
    pub max_results: usize,
    /// RFC 9865 cursor paging offered.
    pub cursor_paging: bool,
    pub etag: bool,
    /// A `/Groups` resource type exists.
    pub groups: bool,
    /// Attributes the target's User schema marks `required` (besides `userName`).
    pub required_user_attributes: Vec<String>,
    /// Whether the ServiceProviderConfig could be read (false: defaults above).
    pub discovered: bool,
}

impl Default for TargetProfile {
    fn default() -> Self {
        Self {
            patch: true,
            bulk: false,
            bulk_max_operations: 0,
            bulk_max_payload: 1 << 20,
            filter: true,
            max_results: 100,
            cursor_paging: false,
            etag: false,
            groups: true,
            required_user_attributes: vec!["userName".into()],
            discovered: false,
        }
    }
}

fn supported(spc: &Value, key: &str) -> Option<bool> {
    spc.get(key)?.get("supported")?.as_bool()
}

impl TargetProfile {
    /// Reads a ServiceProviderConfig body; absent fields keep their defaults.
    pub fn from_spc(spc: &Value) -> Self {
        let d = Self::default();
        let filter_max = spc
            .get("filter")
            .and_then(|f| f.get("maxResults"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0);
        let bulk_max = spc
            .get("bulk")
            .and_then(|b| b.get("maxOperations"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        let cursor = spc
            .get("pagination")
            .and_then(|p| p.get("cursor"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Self {
            patch: supported(spc, "patch").unwrap_or(d.patch),
            bulk: supported(spc, "bulk").unwrap_or(false) && bulk_max > 0,
            bulk_max_operations: bulk_max,
            bulk_max_payload: spc
                .get("bulk")
                .and_then(|b| b.get("maxPayloadSize"))
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(d.bulk_max_payload),
            filter: supported(spc, "filter").unwrap_or(d.filter),
            max_results: filter_max.map_or(d.max_results, |m| m.min(1000)),
            cursor_paging: cursor,
            etag: supported(spc, "etag").unwrap_or(false),
            discovered: true,
            ..d
        }
    }

    /// Notes what the ResourceTypes list says (a target without `/Groups` gets no groups).
    pub fn with_resource_types(mut self, types: &Value) -> Self {
        let list = types
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| types.as_array().cloned());
        if let Some(list) = list {
            self.groups = list.iter().any(|t| {
                t.get("endpoint")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.trim_start_matches('/').eq_ignore_ascii_case("Groups"))
            });
        }
        self
    }

    /// Notes the required attributes of the core User schema from a Schemas body.
    pub fn with_schemas(mut self, schemas: &Value) -> Self {
        let list = schemas
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| schemas.as_array().cloned())
            .unwrap_or_default();
        for s in &list {
            if s.get("id").and_then(Value::as_str) != Some(crate::USER_SCHEMA) {
                continue;
            }
            let mut req = Vec::new();
            for a in s
                .get("attributes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(name) = a.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if a.get("required").and_then(Value::as_bool) == Some(true)
                    && !matches!(name, "id" | "schemas")
                {
                    req.push(name.to_string());
                }
            }
            if !req.iter().any(|r| r == "userName") {
                req.insert(0, "userName".into());
            }
            self.required_user_attributes = req;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spc_fields_are_read_and_missing_ones_default() {
        let p = TargetProfile::from_spc(&json!({
            "patch": {"supported": false},
            "bulk": {"supported": true, "maxOperations": 50},
            "filter": {"supported": true, "maxResults": 200},
        }));
        assert!(!p.patch && p.bulk && p.filter);
        assert_eq!((p.bulk_max_operations, p.max_results), (50, 200));
        let p = TargetProfile::from_spc(&json!({}));
        assert!(p.patch && !p.bulk && p.filter && p.discovered);
    }

    #[test]
    fn groups_come_from_resource_types() {
        let p = TargetProfile::default()
            .with_resource_types(&json!({"Resources": [{"endpoint": "/Users"}]}));
        assert!(!p.groups);
        let p = TargetProfile::default().with_resource_types(&json!([{"endpoint": "/Groups"}]));
        assert!(p.groups);
    }
}
