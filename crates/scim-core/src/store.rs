//! The storage contract. `scim-store` implements it for SQLite and PostgreSQL.
//!
//! Every method is one transaction: it either happens entirely or not at all. Uniqueness
//! (userName per tenant, group displayName per tenant, both case-insensitive) is enforced by
//! the database, so racing creates yield exactly one success and `409 uniqueness` for the rest.
//! Every resource method is scoped by tenant id; no method can reach another tenant's rows.

use crate::error::CoreResult;
use crate::operator::{Operator, SessionRecord};
use crate::provisioning::{Event, EventQuery, LogEntry};
use crate::resource::{ResourceKind, StoredResource, Write};
use crate::tenant::Tenant;
use crate::token::TokenRecord;
use async_trait::async_trait;
use scim_proto::{AttrPath, FilterExpr};
use std::collections::HashMap;

/// A list/search request, already validated.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<FilterExpr>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    /// 0-based offset (index pagination).
    pub offset: u64,
    pub count: u64,
    /// RFC 9865 cursor; `Some("")` asks for the first page in cursor mode.
    pub cursor: Option<String>,
    pub with_members: bool,
}

#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub resources: Vec<StoredResource>,
    pub total: u64,
    pub next_cursor: Option<String>,
}

/// Events of one operation on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub operation: crate::Operation,
    pub count: i64,
}

/// A read-modify-write step: given the current resource, the write to make (or an error,
/// which aborts the transaction with nothing changed). Owned, because a store may run it on
/// its own writer thread (SQLite's group commit).
pub type Modifier = std::sync::Arc<dyn Fn(&StoredResource) -> CoreResult<Write> + Send + Sync>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Brings the schema up to date.
    async fn migrate(&self) -> CoreResult<()>;

    async fn create_tenant(&self, slug: &str, name: &str, now: i64) -> CoreResult<Tenant>;
    async fn tenant(&self, slug: &str) -> CoreResult<Option<Tenant>>;
    async fn tenants(&self) -> CoreResult<Vec<Tenant>>;
    /// Deletes a tenant with all its tokens, resources and memberships.
    async fn delete_tenant(&self, slug: &str) -> CoreResult<bool>;

    async fn insert_token(&self, token: &TokenRecord) -> CoreResult<()>;
    /// The token whose current or previous secret hash is `hash`.
    async fn token_by_hash(&self, hash: &str) -> CoreResult<Option<TokenRecord>>;
    async fn tokens(&self, tenant_id: i64) -> CoreResult<Vec<TokenRecord>>;
    async fn revoke_token(&self, tenant_id: i64, id: &str, now: i64) -> CoreResult<bool>;
    /// Replaces the secret; the old hash stays valid until `grace_until`.
    async fn rotate_token(
        &self,
        tenant_id: i64,
        id: &str,
        new_hash: &str,
        new_prefix: &str,
        grace_until: i64,
    ) -> CoreResult<bool>;
    async fn touch_token(&self, id: &str, now: i64) -> CoreResult<()>;

    async fn create(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        write: &Write,
        now: i64,
    ) -> CoreResult<StoredResource>;
    async fn get(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
    ) -> CoreResult<Option<StoredResource>>;
    /// Locks the resource, calls `modifier`, writes its result with a new version.
    /// `Ok(None)` when the resource does not exist.
    async fn modify(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
        modifier: Modifier,
        now: i64,
    ) -> CoreResult<Option<StoredResource>>;
    /// Hard delete; also removes the resource from every group. Logs `log` in the same
    /// transaction, naming the deleted resource.
    async fn delete(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        log: Option<&LogEntry>,
    ) -> CoreResult<bool>;
    async fn query(&self, tenant_id: i64, kind: ResourceKind, q: &Query)
    -> CoreResult<QueryResult>;
    /// Writes a Failure (or any standalone) event in its own transaction.
    async fn log_event(&self, event: &Event) -> CoreResult<()>;
    /// Reads the log, newest first.
    async fn events(&self, tenant_id: i64, q: &EventQuery) -> CoreResult<Vec<Event>>;
    /// Takes or renews the named lease for `holder` until `until` if it is free, expired or
    /// already `holder`'s: how several nodes agree that one of them runs a periodic job.
    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> CoreResult<bool>;
    /// Deletes up to `batch` events older than `before` (all tenants); returns how many.
    async fn sweep_events(&self, before: i64, batch: u32) -> CoreResult<u64>;

    /// Events since `since` (µs) counted per UTC day (days since the epoch) and operation.
    async fn event_counts(&self, tenant_id: i64, since: i64) -> CoreResult<Vec<DayCount>>;

    /// A new console operator; a taken name is `CoreError::Invalid`.
    async fn create_operator(&self, username: &str, hash: &str, now: i64) -> CoreResult<Operator>;
    async fn operator_by_name(&self, username: &str) -> CoreResult<Option<Operator>>;
    async fn operators(&self) -> CoreResult<Vec<Operator>>;
    async fn delete_operator(&self, username: &str) -> CoreResult<bool>;
    /// New password hash; also clears the failure count and lock.
    async fn set_operator_password(&self, username: &str, hash: &str) -> CoreResult<bool>;
    /// Counts one more consecutive failure and returns the new count (atomically).
    async fn operator_login_failed(&self, id: i64) -> CoreResult<i64>;
    async fn lock_operator(&self, id: i64, until: i64) -> CoreResult<()>;
    async fn operator_login_succeeded(&self, id: i64, now: i64) -> CoreResult<()>;
    async fn insert_session(&self, session: &SessionRecord) -> CoreResult<()>;
    /// The unexpired session with this id hash, with its operator.
    async fn session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> CoreResult<Option<(SessionRecord, Operator)>>;
    async fn delete_session(&self, id_hash: &str) -> CoreResult<()>;
    /// Deletes expired sessions; returns how many.
    async fn sweep_sessions(&self, now: i64) -> CoreResult<u64>;

    /// The groups each of `member_ids` is a direct member of: id → [(group id, displayName)].
    async fn groups_of(
        &self,
        tenant_id: i64,
        member_ids: &[String],
    ) -> CoreResult<HashMap<String, Vec<(String, String)>>>;
}
