//! Any SCIM 2.0 server as the source (the read side of scim-client). Incremental by
//! `meta.lastModified gt "<last read>"` where the server filters on it; otherwise, and
//! every 24 hours to find deletes (a lastModified filter cannot show them), a full read.

use super::{ObjectKind, Source, SourceBatch, SourceObject};
use crate::error::SyncResult;
use async_trait::async_trait;
use scim_client::{ResourceKind, ScimClient};
use serde_json::{Value, json};
use std::time::Duration;

const FULL_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Clock skew between us and the source: read a little further back than the last read.
const SKEW: Duration = Duration::from_secs(120);

pub struct ScimSource {
    client: ScimClient,
}

/// A SCIM resource as a source object.
pub fn object_of(kind: ObjectKind, r: &Value) -> Option<SourceObject> {
    let id = r.get("id")?.as_str()?.to_string();
    let attributes = r.as_object().cloned().unwrap_or_default();
    Some(SourceObject {
        kind,
        suspended: kind == ObjectKind::User
            && r.get("active").and_then(Value::as_bool) == Some(false),
        members: r
            .get("members")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        id,
        attributes,
    })
}

impl ScimSource {
    pub fn new(client: ScimClient) -> Self {
        Self { client }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[async_trait]
impl Source for ScimSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let profile = self.client.discover().await?;
        let now = time::OffsetDateTime::now_utc();
        let since = watermark
            .and_then(|w| w.get("since"))
            .and_then(Value::as_i64);
        let full_at = watermark
            .and_then(|w| w.get("full_at"))
            .and_then(Value::as_i64);
        let incremental = match (since, full_at) {
            (Some(s), Some(f))
                if profile.filter && now.unix_timestamp() - f < FULL_EVERY.as_secs() as i64 =>
            {
                Some(s)
            }
            _ => None,
        };
        let mut objects = Vec::new();
        let mut full = incremental.is_none();
        for (kind, rk) in [
            (ObjectKind::User, ResourceKind::User),
            (ObjectKind::Group, ResourceKind::Group),
        ] {
            if rk == ResourceKind::Group && !profile.groups {
                continue;
            }
            let filter = incremental.map(|s| {
                let t = time::OffsetDateTime::from_unix_timestamp(s - SKEW.as_secs() as i64)
                    .unwrap_or(now);
                format!("meta.lastModified gt \"{}\"", rfc3339(t))
            });
            let list = match self
                .client
                .list_all(rk, &profile, filter.as_deref(), None)
                .await
            {
                Ok(l) => l,
                // A server that cannot filter on meta.lastModified: read everything.
                Err(e) if filter.is_some() && e.status() == Some(400) => {
                    full = true;
                    self.client.list_all(rk, &profile, None, None).await?
                }
                Err(e) => return Err(e.into()),
            };
            objects.extend(list.iter().filter_map(|r| object_of(kind, r)));
        }
        if full && incremental.is_some() {
            // Users were read incrementally before the group read fell back: read again whole.
            return self.read(None).await;
        }
        let full_at = if full {
            now.unix_timestamp()
        } else {
            full_at.unwrap_or_default()
        };
        Ok(SourceBatch {
            full,
            objects,
            deleted: Vec::new(),
            present: Default::default(),
            watermark: Some(json!({"since": now.unix_timestamp(), "full_at": full_at})),
        })
    }

    fn describe(&self) -> String {
        format!("SCIM server {}", self.client.base_url())
    }
}
