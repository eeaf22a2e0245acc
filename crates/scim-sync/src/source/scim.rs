//! `kind = "scim"`: any SCIM 2.0 server as the source (the read side of scim-client).
//! Incremental by `meta.lastModified gt "<last read>"` where the server filters on it;
//! otherwise, and every 24 hours to find deletes (a lastModified filter cannot show them),
//! a full read.

use super::{BuildContext, Source, SourceBatch, watermark_of, watermark_value};
use crate::error::{SyncError, SyncResult};
use crate::model::{Clock, ObjectKind, SourceObject};
use crate::secret::SecretRef;
use async_trait::async_trait;
use scim_client::{ClientOptions, ResourceKind, ScimClient};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use time::Duration;

const FULL_EVERY: Duration = Duration::hours(24);
/// Clock skew between us and the source: read a little further back than the last read.
const SKEW: Duration = Duration::minutes(2);

/// `[source]` of `kind = "scim"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScimSpec {
    /// The source server's base URL.
    pub url: String,
    /// The bearer token (inline: sealed at import), or from a file or a variable.
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl ScimSpec {
    pub fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(format!(
                "source.url '{}' must be an http(s) URL",
                scim_proto::error::excerpt(&self.url)
            ));
        }
        Ok(())
    }

    pub fn token_ref(&self) -> SecretRef<'_> {
        SecretRef {
            key: "source.token",
            inline: self.token.as_deref(),
            env: self.token_env.as_deref(),
            file: self.token_file.as_deref(),
        }
    }

    pub fn build(&self, ctx: &BuildContext) -> SyncResult<ScimSource> {
        let token = self
            .token_ref()
            .require(ctx.base_dir.as_deref(), ctx.sealed.clone())?;
        Ok(ScimSource {
            client: ScimClient::new(
                &self.url,
                &token,
                ClientOptions {
                    outbound: ctx.outbound.clone(),
                    ..ClientOptions::default()
                },
            )?,
            clock: ctx.clock.clone(),
        })
    }
}

pub struct ScimSource {
    client: ScimClient,
    clock: Clock,
}

/// Where the last read got to (unix seconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mark {
    since: i64,
    full_at: i64,
}

/// A SCIM resource as a source object.
pub fn object_of(kind: ObjectKind, r: &Value) -> Option<SourceObject> {
    let id = r.get("id")?.as_str()?;
    let mut o = SourceObject::new(kind, id);
    o.attributes = r.as_object().cloned().unwrap_or_default();
    o.suspended =
        kind == ObjectKind::User && r.get("active").and_then(Value::as_bool) == Some(false);
    o.members = r
        .get("members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(o)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl ScimSource {
    async fn read_at(&self, mark: Option<Mark>) -> SyncResult<SourceBatch> {
        let profile = self.client.discover().await?;
        let now = (self.clock)().to_datetime();
        let incremental = mark.filter(|m| {
            profile.filter && now.unix_timestamp() - m.full_at < FULL_EVERY.whole_seconds()
        });
        let mut objects = Vec::new();
        for (kind, rk) in [
            (ObjectKind::User, ResourceKind::User),
            (ObjectKind::Group, ResourceKind::Group),
        ] {
            if rk == ResourceKind::Group && !profile.groups {
                continue;
            }
            let filter = incremental.as_ref().map(|m| {
                let t =
                    time::OffsetDateTime::from_unix_timestamp(m.since).map_or(now, |t| t - SKEW);
                format!("meta.lastModified gt \"{}\"", rfc3339(t))
            });
            let list = match self
                .client
                .list_all(rk, &profile, filter.as_deref(), None)
                .await
            {
                Ok(l) => l,
                // A server that cannot filter on meta.lastModified: read everything, from
                // the start (users included).
                Err(e) if filter.is_some() && e.status() == Some(400) => {
                    return Box::pin(self.read_at(None)).await;
                }
                Err(e) => return Err(e.into()),
            };
            objects.extend(list.iter().filter_map(|r| object_of(kind, r)));
        }
        let full_at = match &incremental {
            Some(m) => m.full_at,
            None => now.unix_timestamp(),
        };
        Ok(SourceBatch {
            full: incremental.is_none(),
            objects,
            watermark: watermark_value(&Mark {
                since: now.unix_timestamp(),
                full_at,
            }),
            ..SourceBatch::default()
        })
    }
}

#[async_trait]
impl Source for ScimSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        self.read_at(watermark_of::<Mark>(watermark))
            .await
            .map_err(|e| match e {
                SyncError::Target(c) => SyncError::Source(format!("{}: {c}", self.describe())),
                other => other,
            })
    }

    fn describe(&self) -> String {
        format!("SCIM server {}", self.client.base_url())
    }
}
