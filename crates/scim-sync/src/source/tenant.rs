//! A scimd tenant on this instance as the source: the hub case — an IdP provisions into
//! tenant `hub`, the engine fans it out to apps. The first read is full (resources with
//! their members, by cursor); later reads follow the tenant's change feed (its per-tenant
//! sequence, which commits in order: docs/events.md §2) and re-read only what changed. A
//! full read happens again every 24 hours, and whenever the log was swept past the
//! watermark.

use super::{BuildContext, Source, SourceBatch, watermark_of, watermark_value};
use crate::error::{SyncError, SyncResult};
use crate::model::{Clock, SourceObject};
use async_trait::async_trait;
use scim_core::store::Query;
use scim_core::{ResourceKind, Store, StoredResource, Timestamp};
use scim_proto::cursor::Cursor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use time::Duration;

/// `[source]` of `kind = "tenant"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// The scimd tenant on this instance.
    pub tenant: String,
}

impl TenantSpec {
    pub fn check(&self) -> Result<(), String> {
        if self.tenant.trim().is_empty() {
            return Err("source.tenant is required for a tenant source".into());
        }
        Ok(())
    }

    pub fn build(&self, ctx: &BuildContext) -> TenantSource {
        TenantSource {
            reader: TenantReader {
                store: ctx.store.clone(),
                tenant: self.tenant.clone(),
            },
            retention: ctx.log_retention,
            clock: ctx.clock.clone(),
        }
    }
}

/// The change-feed position in a tenant source's watermark (the scheduler's debounce
/// compares it with the tenant's newest change).
pub fn tenant_position(watermark: Option<&Value>) -> Option<i64> {
    watermark_of::<Mark>(watermark).map(|m| m.change_seq)
}

/// Where the last read got to in the tenant's change feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mark {
    change_seq: i64,
    full_at: Timestamp,
    read_at: Timestamp,
}

/// How often a full read repairs drift even when the change feed is intact.
const FULL_EVERY: Duration = Duration::hours(24);
/// Log rows read per query.
const ROWS: u32 = 5_000;

/// Read access to one tenant (implemented over scimd's store).
pub struct TenantReader {
    pub store: Arc<dyn Store>,
    pub tenant: String,
}

pub struct TenantSource {
    reader: TenantReader,
    /// How long the provisioning log keeps events (a watermark older than this → full read).
    retention: Duration,
    clock: Clock,
}

/// A stored resource as a source object (the SCIM JSON the tenant would serve).
pub fn object_of(r: &StoredResource) -> SourceObject {
    let mut o = SourceObject::new(r.kind, &r.id);
    o.attributes = r.body.as_object().cloned().unwrap_or_default();
    o.attributes
        .insert("id".into(), Value::String(r.id.clone()));
    o.suspended = r.kind == ResourceKind::User
        && r.body.get("active").and_then(Value::as_bool) == Some(false);
    o.members = r
        .members
        .as_ref()
        .map(|m| m.iter().map(|m| m.value.clone()).collect())
        .unwrap_or_default();
    o
}

impl TenantSource {
    async fn tenant_id(&self) -> SyncResult<i64> {
        Ok(self
            .reader
            .store
            .tenant(&self.reader.tenant)
            .await?
            .ok_or_else(|| {
                SyncError::Source(format!("tenant '{}' does not exist", self.reader.tenant))
            })?
            .id)
    }

    async fn latest_seq(&self, tenant_id: i64) -> SyncResult<i64> {
        Ok(self.reader.store.change_bounds(tenant_id).await?.head)
    }

    async fn full(&self, tenant_id: i64, now: Timestamp) -> SyncResult<SourceBatch> {
        // The sequence first: a change made during the read is seen again next cycle.
        let seq = self.latest_seq(tenant_id).await?;
        let mut objects = Vec::new();
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let mut cursor: Option<Cursor> = None;
            loop {
                let q = Query {
                    count: 1000,
                    cursor: Some(cursor),
                    related: kind == ResourceKind::Group,
                    ..Default::default()
                };
                let page = self.reader.store.query(tenant_id, kind, &q).await?;
                objects.extend(page.resources.iter().map(object_of));
                match page.next_cursor {
                    Some(c) if !page.resources.is_empty() => cursor = Some(c),
                    _ => break,
                }
            }
        }
        Ok(SourceBatch {
            full: true,
            objects,
            watermark: watermark_value(&Mark {
                change_seq: seq,
                full_at: now,
                read_at: now,
            }),
            ..SourceBatch::default()
        })
    }
}

#[async_trait]
impl Source for TenantSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let tenant_id = self.tenant_id().await?;
        let now = (self.clock)();
        // A watermark without `change_seq` is from before the change feed: read in full once.
        let Some(Mark {
            change_seq: seq,
            full_at,
            read_at,
        }) = watermark_of::<Mark>(watermark)
        else {
            return self.full(tenant_id, now).await;
        };
        let bounds = self.reader.store.change_bounds(tenant_id).await?;
        if now - full_at > FULL_EVERY
            || now - read_at > self.retention
            || seq + 1 < bounds.first
            || seq > bounds.head
        {
            return self.full(tenant_id, now).await;
        }
        let mut changed: BTreeSet<(ResourceKind, String)> = BTreeSet::new();
        let mut last = seq;
        loop {
            let rows = self.reader.store.changes(tenant_id, last, ROWS).await?;
            for e in &rows {
                if let (Some(t), Some(id), Some(c)) = (
                    e.resource_type.as_deref().and_then(ResourceKind::parse),
                    &e.resource_id,
                    &e.change,
                ) {
                    changed.insert((t, id.clone()));
                    // Members of a group changed: the group is re-read with them.
                    last = last.max(c.last_seq);
                }
            }
            if rows.len() < ROWS as usize {
                break;
            }
        }
        let mut batch = SourceBatch {
            full: false,
            watermark: watermark_value(&Mark {
                change_seq: last,
                full_at,
                read_at: now,
            }),
            ..Default::default()
        };
        for (kind, id) in changed {
            match self
                .reader
                .store
                .get(tenant_id, kind, &id, kind == ResourceKind::Group)
                .await?
            {
                Some(r) => batch.objects.push(object_of(&r)),
                None => batch.deleted.push((kind, id)),
            }
        }
        Ok(batch)
    }

    fn describe(&self) -> String {
        format!("scimd tenant '{}'", self.reader.tenant)
    }
}
