//! [`ResourceStore`] for [`SqlStore`]: each method one unit of work for the engine (or, on
//! PostgreSQL, for the create and row batchers).

use super::{read, write};
use crate::SqlStore;
use async_trait::async_trait;
use scim_core::LogEntry;
use scim_core::store::{Modifier, ResourceStore};
use scim_core::{CoreResult, Query, QueryResult, ResourceKind, StoredResource, Timestamp, Write};
use scim_proto::render::GroupRef;
use std::collections::HashMap;

/// The unit of work of [`ResourceStore::modify`] (a named function, so its closure type is
/// fixed where it is made and it can go to either the row batcher or the engine).
fn modify_job(
    tenant_id: i64,
    kind: ResourceKind,
    id: String,
    related: bool,
    modifier: Modifier,
    now: Timestamp,
) -> impl for<'c> FnOnce(&'c mut crate::conn::Conn<'c>) -> crate::engine::Fut<'c, Option<StoredResource>>
+ Send
+ 'static {
    job!(|c| write::modify(c, tenant_id, kind, &id, related, &*modifier, now))
}

#[async_trait]
impl ResourceStore for SqlStore {
    async fn create(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        write: &Write,
        now: Timestamp,
    ) -> CoreResult<StoredResource> {
        let logged = write.log.is_some();
        let (write, id) = (write.clone(), id.to_string());
        let change = self.sqlite().map(|e| e.change_started(tenant_id, kind));
        let r = if let Some(creates) = self
            .creates
            .as_ref()
            .filter(|_| write.member_ops.is_empty())
        {
            // Nothing to resolve: one statement, shared with the creates around it.
            let item = write::NewResource {
                tenant_id,
                kind,
                id,
                write,
                now,
            };
            creates.create(item).await.map_err(Into::into)
        } else {
            self.write(job!(|c| write::create(
                c, tenant_id, kind, &id, &write, now
            )))
            .await
        };
        if let Some(change) = change {
            change.finish(i64::from(r.is_ok()));
        }
        let r = r?;
        self.note_create();
        if logged {
            self.changed(tenant_id);
        }
        Ok(r)
    }
    async fn get(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        related: bool,
    ) -> CoreResult<Option<StoredResource>> {
        let id = id.to_string();
        // A user is one row and their groups; a group's members are unbounded.
        let bounded = kind == ResourceKind::User;
        self.read_bounded(
            bounded,
            job!(|c| read::get(c, tenant_id, kind, &id, related)),
        )
        .await
    }
    async fn modify(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        related: bool,
        modifier: Modifier,
        now: Timestamp,
    ) -> CoreResult<Option<StoredResource>> {
        let r = match &self.rows {
            // PostgreSQL: a user without a transaction or a lock first (two round trips,
            // `write::modify_user_unlocked`); a group, or a user that other writes keep
            // changing, through the row's batch.
            Some(rows) => {
                let unlocked = match kind {
                    ResourceKind::User => {
                        let (id, modifier) = (id.to_string(), modifier.clone());
                        self.engine
                            .read(job!(|c| write::modify_user_unlocked(
                                c, tenant_id, &id, related, &*modifier, now
                            )))
                            .await?
                    }
                    ResourceKind::Group => write::Unlocked::Contended,
                };
                match unlocked {
                    write::Unlocked::Done(r) => r,
                    write::Unlocked::Contended => {
                        let work =
                            modify_job(tenant_id, kind, id.to_string(), related, modifier, now);
                        rows.modify((tenant_id, kind, id), work).await?
                    }
                }
            }
            None => {
                let work = modify_job(tenant_id, kind, id.to_string(), related, modifier, now);
                self.write(work).await?
            }
        };
        if r.is_some() {
            self.changed(tenant_id);
        }
        Ok(r)
    }
    async fn delete(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        log: Option<&LogEntry>,
        now: Timestamp,
    ) -> CoreResult<bool> {
        let logged = log.is_some();
        let (id, log) = (id.to_string(), log.cloned());
        let change = self.sqlite().map(|e| e.change_started(tenant_id, kind));
        let deleted = self
            .write(job!(|c| write::delete(
                c,
                tenant_id,
                kind,
                &id,
                log.as_ref(),
                now
            )))
            .await;
        if let Some(change) = change {
            change.finish(if matches!(deleted, Ok(true)) { -1 } else { 0 });
        }
        if matches!(deleted, Ok(true)) && logged {
            self.changed(tenant_id);
        }
        deleted
    }
    async fn query(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        q: &Query,
    ) -> CoreResult<QueryResult> {
        let max = self.memory_scan_max;
        let unfiltered = q.filter.is_none();
        let (known, generation) = self
            .sqlite()
            .map_or((None, 0), |e| e.cached_count(tenant_id, kind));
        let point = crate::sql_filter::is_point_lookup(kind, q.filter.as_ref());
        let q = q.clone();
        let r = self
            .read_bounded(
                point,
                job!(|c| read::query(c, tenant_id, kind, &q, max, known)),
            )
            .await?;
        if let Some(e) = self.sqlite()
            && unfiltered
            && known.is_none()
        {
            e.remember_count(
                tenant_id,
                kind,
                generation,
                i64::try_from(r.total).unwrap_or(i64::MAX),
            );
        }
        Ok(r)
    }
    async fn groups_of(
        &self,
        tenant_id: i64,
        member_ids: &[String],
    ) -> CoreResult<HashMap<String, Vec<GroupRef>>> {
        let ids = member_ids.to_vec();
        self.read(job!(|c| read::groups_of(c, tenant_id, &ids)))
            .await
    }
}
