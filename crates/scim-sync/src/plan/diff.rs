//! What differs between what the mappings give now and what was last exported: the
//! attribute changes of an update (docs/sync.md §5.4).

use crate::mapping::Mapped;
use scim_core::PropertyChange;
use serde_json::Value;
use std::collections::BTreeMap;

/// The changes from `exported` to `desired`. On-create values count only when
/// `include_on_create` (a create or an adoption).
pub fn diff(
    desired: &Mapped,
    exported: &BTreeMap<String, Value>,
    include_on_create: bool,
) -> Vec<PropertyChange> {
    let mut out = Vec::new();
    for (path, new) in &desired.values {
        if !include_on_create && desired.on_create.contains(path) {
            continue;
        }
        let old = exported.get(path);
        if old != Some(new) {
            out.push(PropertyChange {
                path: path.clone(),
                old: old.cloned(),
                new: Some(new.clone()),
                redacted: desired.redacted.contains(path),
            });
        }
    }
    for (path, old) in exported {
        if !desired.values.contains_key(path) && !desired.on_create.contains(path) {
            out.push(PropertyChange {
                path: path.clone(),
                old: Some(old.clone()),
                new: None,
                redacted: desired.redacted.contains(path),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapped(values: &[(&str, Value)], on_create: &[&str]) -> Mapped {
        Mapped {
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            on_create: on_create.iter().map(|s| s.to_string()).collect(),
            ..Mapped::default()
        }
    }

    #[test]
    fn changes_added_changed_cleared_and_on_create_ones() {
        let exported: BTreeMap<String, Value> = [
            ("title".to_string(), json!("Eng")),
            ("nickName".to_string(), json!("n")),
            ("locale".to_string(), json!("en")),
        ]
        .into();
        let desired = mapped(
            &[
                ("title", json!("Manager")),
                ("displayName", json!("Ada")),
                ("nickName", json!("n2")),
            ],
            &["nickName"],
        );
        let update = diff(&desired, &exported, false);
        let paths: Vec<(&str, bool)> = update
            .iter()
            .map(|c| (c.path.as_str(), c.new.is_some()))
            .collect();
        assert_eq!(
            paths,
            [("displayName", true), ("title", true), ("locale", false)]
        );
        let create = diff(&desired, &BTreeMap::new(), true);
        assert_eq!(create.len(), 3);
        assert!(diff(&desired, &desired.values, true).is_empty());
    }
}
