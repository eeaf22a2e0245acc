//! Finding target objects by matching attribute: from one paged read of the target (an
//! initial cycle, engine-behaviour §8.6: no lookup per object) or by filter lookups
//! (`GET /Users?filter=userName eq "…"`, what Entra sends before a create).

use crate::error::SyncResult;
use crate::model::{ObjectKind, client_kind};
use crate::path::TargetPath;
use async_trait::async_trait;
use scim_client::{ScimClient, TargetProfile};
use serde_json::Value;
use std::collections::HashMap;

#[async_trait]
pub trait TargetMatcher: Send + Sync {
    /// Target objects whose `path` equals `value` (strings compared case-insensitively).
    async fn candidates(
        &self,
        kind: ObjectKind,
        path: &TargetPath,
        value: &Value,
    ) -> SyncResult<Vec<Value>>;
}

fn key(v: &Value) -> String {
    match v {
        Value::String(s) => scim_proto::text::fold(s),
        other => other.to_string(),
    }
}

/// The SCIM filter that finds `path eq value`: `userName eq "x"`, or for a value path
/// `emails[type eq "work" and value eq "x"]` (RFC 7644 §3.4.2.2).
pub fn filter_for(path: &str, value: &Value) -> String {
    let lit = match value {
        Value::String(s) => scim_client::filter_literal(s),
        other => other.to_string(),
    };
    match (path.find('['), path.rfind("].")) {
        (Some(open), Some(close)) if close > open => {
            let attr = &path[..open];
            let inner = &path[open + 1..close];
            let sub = &path[close + 2..];
            format!("{attr}[{inner} and {sub} eq {lit}]")
        }
        _ => format!("{path} eq {lit}"),
    }
}

/// Filter lookups, one request per object.
pub struct Lookups {
    pub client: ScimClient,
}

#[async_trait]
impl TargetMatcher for Lookups {
    async fn candidates(
        &self,
        kind: ObjectKind,
        path: &TargetPath,
        value: &Value,
    ) -> SyncResult<Vec<Value>> {
        let excluded = match kind {
            ObjectKind::User => None,
            ObjectKind::Group => Some("members"),
        };
        let filter = filter_for(&path.text, value);
        let found = self
            .client
            .find_filter(client_kind(kind), &filter, excluded)
            .await?;
        // A target that ignores part of the filter must not make us adopt the wrong object.
        Ok(found
            .into_iter()
            .filter(|r| path.read(r).is_some_and(|v| key(&v) == key(value)))
            .collect())
    }
}

/// Every target object of the kinds read, indexed by the matching paths.
pub struct TargetIndex {
    objects: HashMap<ObjectKind, Vec<Value>>,
    index: HashMap<(ObjectKind, String, String), Vec<usize>>,
}

impl TargetIndex {
    /// Reads the target's users and groups once, in pages.
    pub async fn read(
        client: &ScimClient,
        profile: &TargetProfile,
        paths: &[(ObjectKind, Vec<TargetPath>)],
    ) -> SyncResult<Self> {
        let mut objects = HashMap::new();
        let mut index: HashMap<(ObjectKind, String, String), Vec<usize>> = HashMap::new();
        for (kind, kind_paths) in paths {
            if *kind == ObjectKind::Group && !profile.groups {
                objects.insert(*kind, Vec::new());
                continue;
            }
            let excluded = match kind {
                ObjectKind::User => "groups",
                ObjectKind::Group => "members",
            };
            let list = client
                .list_all(client_kind(*kind), profile, None, Some(excluded))
                .await?;
            for (i, r) in list.iter().enumerate() {
                for p in kind_paths {
                    if let Some(v) = p.read(r) {
                        index
                            .entry((*kind, p.text.clone(), key(&v)))
                            .or_default()
                            .push(i);
                    }
                }
            }
            objects.insert(*kind, list);
        }
        Ok(Self { objects, index })
    }

    pub fn len(&self, kind: ObjectKind) -> usize {
        self.objects.get(&kind).map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.objects.values().all(Vec::is_empty)
    }
}

#[async_trait]
impl TargetMatcher for TargetIndex {
    async fn candidates(
        &self,
        kind: ObjectKind,
        path: &TargetPath,
        value: &Value,
    ) -> SyncResult<Vec<Value>> {
        let Some(list) = self.objects.get(&kind) else {
            return Ok(Vec::new());
        };
        Ok(self
            .index
            .get(&(kind, path.text.clone(), key(value)))
            .map(|ix| ix.iter().filter_map(|i| list.get(*i).cloned()).collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_for_value_paths_use_the_value_filter_form() {
        assert_eq!(
            filter_for("userName", &json!("a\"b")),
            r#"userName eq "a\"b""#
        );
        assert_eq!(
            filter_for(r#"emails[type eq "work"].value"#, &json!("a@x")),
            r#"emails[type eq "work" and value eq "a@x"]"#
        );
    }
}
