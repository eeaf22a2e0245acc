//! Bulk rules (RFC 7644 §3.7): operation paths and `bulkId` references.
//!
//! A `"bulkId:<id>"` string anywhere in a later operation's path or data stands for the id
//! the server created for the earlier POST with that `bulkId` (§3.7.2); an unknown one is
//! `409 invalidValue` for that operation (the RFC's example status for an unresolvable
//! reference).

use crate::error::{ScimError, ScimType};
use crate::kind::ResourceKind;
use serde_json::Value;
use std::collections::HashMap;

/// bulkId → created id.
pub type BulkIds = HashMap<String, String>;

/// Replaces every string `bulkId:<id>` in `v` with the id created for it.
pub fn resolve_ids(v: &mut Value, ids: &BulkIds) -> Result<(), ScimError> {
    match v {
        Value::String(s) => {
            if let Some(b) = s.strip_prefix("bulkId:") {
                let id = ids.get(b).ok_or_else(|| {
                    ScimError::new(
                        409,
                        Some(ScimType::InvalidValue),
                        format!("bulkId '{b}' does not name an earlier successful POST"),
                    )
                })?;
                *s = id.clone();
            }
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| resolve_ids(x, ids)),
        Value::Object(o) => o.values_mut().try_for_each(|x| resolve_ids(x, ids)),
        _ => Ok(()),
    }
}

/// An operation's target: `/Users`, `/Users/{id}`, `/Groups`, `/Groups/{id}`, with a
/// `bulkId:` reference in the id resolved.
pub fn target(path: &str, ids: &BulkIds) -> Result<(ResourceKind, Option<String>), ScimError> {
    let (kind, id) = parse_path(path)?;
    let id = match id {
        Some(id) => {
            let mut v = Value::String(id);
            resolve_ids(&mut v, ids)?;
            v.as_str().map(str::to_string)
        }
        None => None,
    };
    Ok((kind, id))
}

/// The resource type and id a bulk path names, without resolving references.
pub fn parse_path(path: &str) -> Result<(ResourceKind, Option<String>), ScimError> {
    let trimmed = path.trim_start_matches('/');
    let (res, id) = match trimmed.split_once('/') {
        Some((r, id)) => (r, Some(id.to_string())),
        None => (trimmed, None),
    };
    let kind = ResourceKind::from_endpoint(res).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "bulk path '{}' must start with /Users or /Groups",
            crate::error::excerpt(path)
        ))
    })?;
    if id
        .as_deref()
        .is_some_and(|i| i.is_empty() || i.contains('/'))
    {
        return Err(ScimError::invalid_path(format!(
            "bulk path '{}' is malformed",
            crate::error::excerpt(path)
        )));
    }
    Ok((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_in_paths_and_data() {
        let ids: BulkIds = [("b1".to_string(), "u-1".to_string())].into();
        let mut v = json!({"members": [{"value": "bulkId:b1"}], "x": "bulkId"});
        resolve_ids(&mut v, &ids).unwrap();
        assert_eq!(v, json!({"members": [{"value": "u-1"}], "x": "bulkId"}));
        assert_eq!(
            target("/Users/bulkId:b1", &ids).unwrap(),
            (ResourceKind::User, Some("u-1".into()))
        );
        assert_eq!(
            resolve_ids(&mut json!("bulkId:zz"), &ids)
                .unwrap_err()
                .status,
            409
        );
        assert_eq!(
            target("/Groups", &ids).unwrap(),
            (ResourceKind::Group, None)
        );
        for bad in ["/Devices", "/Users/", "/Users/a/b"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
