//! What a provisioning-log row says about the change it logged: the resource after the
//! change and the member ids added and removed (the change feed's raw material,
//! `change.rs` expands it into events).

use crate::clock::Timestamp;
use serde_json::{Value, json};

/// A resource as it was right after the change (its stored body and `meta`; members are
/// never included: they travel as member events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedResource {
    pub body: Value,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub version: i64,
}

/// What a provisioning-log row says about the change it logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The last sequence number of the row's events (given by the store; 0 before).
    pub last_seq: i64,
    pub resource: Option<ChangedResource>,
    /// Member ids that became members, in the order they were added.
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl ChangeRecord {
    pub fn new(
        resource: Option<ChangedResource>,
        added: Vec<String>,
        removed: Vec<String>,
    ) -> Self {
        Self {
            last_seq: 0,
            resource,
            added,
            removed,
        }
    }

    /// The stored form (`change_data`).
    pub fn to_json(&self) -> Value {
        let resource = self.resource.as_ref().map(|r| {
            json!({
                "body": r.body,
                "created": r.created.as_micros(),
                "modified": r.modified.as_micros(),
                "version": r.version,
            })
        });
        json!({"resource": resource, "added": self.added, "removed": self.removed})
    }

    pub fn from_json(last_seq: i64, v: &Value) -> Option<Self> {
        let ids = |k: &str| -> Option<Vec<String>> {
            v.get(k)?
                .as_array()?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let resource = match v.get("resource") {
            None | Some(Value::Null) => None,
            Some(r) => Some(ChangedResource {
                body: r.get("body")?.clone(),
                created: Timestamp::from_micros(r.get("created")?.as_i64()?),
                modified: Timestamp::from_micros(r.get("modified")?.as_i64()?),
                version: r.get("version")?.as_i64()?,
            }),
        };
        Some(Self {
            last_seq,
            resource,
            added: ids("added")?,
            removed: ids("removed")?,
        })
    }
}
