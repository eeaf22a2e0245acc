//! A scimd tenant on this instance as the source: the hub case — an IdP provisions into
//! tenant `hub`, the engine fans it out to apps. The first read is full (resources with
//! their members, by cursor); later reads follow the tenant's change sequence (the
//! provisioning log) and re-read only what changed. Because PostgreSQL may make a lower
//! sequence number visible after a higher one (two transactions committing out of order),
//! every incremental read also re-reads the last minute of changes; re-reading is harmless
//! (the planner compares against the ledger). A full read happens again every 24 hours, and
//! whenever the log may have been swept past the watermark.

use super::{ObjectKind, Source, SourceBatch, SourceObject};
use crate::error::{SyncError, SyncResult};
use async_trait::async_trait;
use scim_core::event::{EventQuery, Operation};
use scim_core::store::Query;
use scim_core::{ResourceKind, Store, StoredResource, Timestamp};
use scim_proto::cursor::Cursor;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use time::Duration;

/// How often a full read repairs drift even when the change feed is intact.
const FULL_EVERY: Duration = Duration::hours(24);
/// The re-read window for late-visible commits.
const LATE_WINDOW: Duration = Duration::minutes(1);

/// Read access to one tenant (implemented over scimd's store).
pub struct TenantReader {
    pub store: Arc<dyn Store>,
    pub tenant: String,
}

pub struct TenantSource {
    reader: TenantReader,
    /// How long the provisioning log keeps events (a watermark older than this → full read).
    retention: Duration,
}

fn kind_of(k: ResourceKind) -> ObjectKind {
    match k {
        ResourceKind::User => ObjectKind::User,
        ResourceKind::Group => ObjectKind::Group,
    }
}

/// A stored resource as a source object (the SCIM JSON the tenant would serve).
pub fn object_of(r: &StoredResource) -> SourceObject {
    let mut attributes = r.body.as_object().cloned().unwrap_or_default();
    attributes.insert("id".into(), Value::String(r.id.clone()));
    SourceObject {
        kind: kind_of(r.kind),
        id: r.id.clone(),
        suspended: r.kind == ResourceKind::User
            && r.body.get("active").and_then(Value::as_bool) == Some(false),
        members: r
            .members
            .as_ref()
            .map(|m| m.iter().map(|m| m.value.clone()).collect())
            .unwrap_or_default(),
        attributes,
    }
}

impl TenantSource {
    pub fn new(reader: TenantReader, retention: Duration) -> Self {
        Self { reader, retention }
    }

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
        let q = EventQuery {
            limit: 1,
            ..Default::default()
        };
        Ok(self
            .reader
            .store
            .events(tenant_id, &q)
            .await?
            .first()
            .map_or(0, |e| e.seq))
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
                    with_members: kind == ResourceKind::Group,
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
            deleted: Vec::new(),
            present: Default::default(),
            watermark: Some(
                json!({"seq": seq, "full_at": now.as_micros(), "read_at": now.as_micros()}),
            ),
        })
    }
}

#[async_trait]
impl Source for TenantSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let tenant_id = self.tenant_id().await?;
        let now = Timestamp::now();
        let field = |k: &str| watermark.and_then(|w| w.get(k)).and_then(Value::as_i64);
        let (Some(seq), Some(full_at), Some(read_at)) =
            (field("seq"), field("full_at"), field("read_at"))
        else {
            return self.full(tenant_id, now).await;
        };
        let (full_at, read_at) = (
            Timestamp::from_micros(full_at),
            Timestamp::from_micros(read_at),
        );
        if now - full_at > FULL_EVERY || now - read_at > self.retention {
            return self.full(tenant_id, now).await;
        }
        let mut changed: BTreeSet<(ResourceKind, String)> = BTreeSet::new();
        let mut last = seq;
        let note = |e: &scim_core::Event, changed: &mut BTreeSet<(ResourceKind, String)>| {
            if e.operation == Operation::Failure {
                return;
            }
            if let (Some(t), Some(id)) = (
                e.resource_type.as_deref().and_then(ResourceKind::parse),
                &e.resource_id,
            ) {
                changed.insert((t, id.clone()));
            }
        };
        loop {
            let q = EventQuery {
                after_seq: Some(last),
                limit: 10_000,
                ..Default::default()
            };
            let page = self.reader.store.events(tenant_id, &q).await?;
            for e in &page {
                note(e, &mut changed);
                last = last.max(e.seq);
            }
            if page.len() < 10_000 {
                break;
            }
        }
        let late = EventQuery {
            since: Some(read_at - LATE_WINDOW),
            limit: 10_000,
            ..Default::default()
        };
        for e in self.reader.store.events(tenant_id, &late).await? {
            note(&e, &mut changed);
        }
        let mut batch = SourceBatch {
            full: false,
            watermark: Some(
                json!({"seq": last, "full_at": full_at.as_micros(), "read_at": now.as_micros()}),
            ),
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
                None => batch.deleted.push((kind_of(kind), id)),
            }
        }
        Ok(batch)
    }

    fn describe(&self) -> String {
        format!("scimd tenant '{}'", self.reader.tenant)
    }
}
