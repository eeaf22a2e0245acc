//! The storage contract, split per domain the way lldap splits its backend handlers: each
//! service asks only for the trait it needs, and [`Store`] is all of them (what
//! `scim-store` implements once, over SQLite or PostgreSQL).
//!
//! Every method is one transaction: it either happens entirely or not at all. Uniqueness
//! (userName per tenant, group displayName per tenant, both case-insensitive; tenant slugs;
//! operator names) is enforced by the database, so racing creates yield exactly one success
//! and [`CoreError::Conflict`](crate::CoreError::Conflict) for the rest. Every resource,
//! token and event method is scoped by tenant id; no method can reach another tenant's rows.

use crate::clock::Timestamp;
use crate::error::CoreResult;
use crate::event::{Event, EventQuery, LogEntry, Operation};
use crate::operator::{Operator, SessionRecord};
use crate::resource::{ResourceKind, StoredResource, Write};
use crate::tenant::Tenant;
use crate::token::TokenRecord;
use crate::webhook::{EndpointProgress, WebhookDelivery, WebhookEndpoint};
use async_trait::async_trait;
use scim_proto::render::GroupRef;
use scim_proto::{AttrPath, FilterExpr, cursor::Cursor};
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
    /// RFC 9865 paging: `Some(None)` asks for the first page in cursor mode.
    pub cursor: Option<Option<Cursor>>,
    /// Load each resource's relations with it: a group's `members`, a user's `groups`.
    pub related: bool,
    /// The page ends early once its resources' stored bytes pass this (at least one is
    /// always returned); `None`: no byte budget.
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub resources: Vec<StoredResource>,
    pub total: u64,
    pub next_cursor: Option<Cursor>,
}

/// Events of one operation on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub operation: Operation,
    pub count: i64,
}

/// A read-modify-write step: given the current resource, the write to make (or an error,
/// which aborts the transaction with nothing changed). Owned, because a store may run it on
/// its own writer thread (SQLite's group commit).
pub type Modifier = std::sync::Arc<dyn Fn(&StoredResource) -> CoreResult<Write> + Send + Sync>;

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, slug: &str, name: &str, now: Timestamp) -> CoreResult<Tenant>;
    async fn tenant(&self, slug: &str) -> CoreResult<Option<Tenant>>;
    async fn tenants(&self) -> CoreResult<Vec<Tenant>>;
    /// Deletes a tenant with all its tokens, resources, memberships and events.
    async fn delete_tenant(&self, slug: &str) -> CoreResult<bool>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_token(&self, token: &TokenRecord) -> CoreResult<()>;
    /// The token whose current or previous secret hash is `hash`.
    async fn token_by_hash(&self, hash: &str) -> CoreResult<Option<TokenRecord>>;
    async fn tokens(&self, tenant_id: i64) -> CoreResult<Vec<TokenRecord>>;
    async fn revoke_token(&self, tenant_id: i64, id: &str, now: Timestamp) -> CoreResult<bool>;
    /// Replaces the secret of an unrevoked token; the old hash stays valid until
    /// `grace_until`.
    async fn rotate_token(
        &self,
        tenant_id: i64,
        id: &str,
        new_hash: &str,
        new_prefix: &str,
        grace_until: Timestamp,
    ) -> CoreResult<bool>;
    async fn touch_token(&self, id: &str, now: Timestamp) -> CoreResult<()>;
    /// Adds refused-credential counts to their tenant's hour (`crate::refused`).
    async fn add_refused(&self, counts: &[crate::RefusedCount]) -> CoreResult<()>;
    /// A tenant's refused-credential counts of the hours from `since`'s.
    async fn refused(
        &self,
        tenant_id: i64,
        since: Timestamp,
    ) -> CoreResult<Vec<crate::RefusedCount>>;
    /// Deletes the counts of hours that ended before `before`; returns how many rows.
    async fn sweep_refused(&self, before: Timestamp) -> CoreResult<u64>;
}

#[async_trait]
pub trait ResourceStore: Send + Sync {
    async fn create(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        write: &Write,
        now: Timestamp,
    ) -> CoreResult<StoredResource>;
    async fn get(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        related: bool,
    ) -> CoreResult<Option<StoredResource>>;
    /// Reads the resource (with its relations when `related`: a group's members, a user's
    /// groups), calls `modifier`, writes its result with a new version; the resource cannot
    /// change in between (a row lock, or a write that only applies to the version read).
    /// `Ok(None)` when the resource does not exist.
    async fn modify(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        related: bool,
        modifier: Modifier,
        now: Timestamp,
    ) -> CoreResult<Option<StoredResource>>;
    /// Hard delete; also removes the resource from every group. Logs `log` in the same
    /// transaction, naming the deleted resource.
    async fn delete(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        log: Option<&LogEntry>,
        now: Timestamp,
    ) -> CoreResult<bool>;
    async fn query(&self, tenant_id: i64, kind: ResourceKind, q: &Query)
    -> CoreResult<QueryResult>;
    /// The groups each of `member_ids` is a direct member of, by displayName.
    async fn groups_of(
        &self,
        tenant_id: i64,
        member_ids: &[String],
    ) -> CoreResult<HashMap<String, Vec<GroupRef>>>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes a Failure (or any standalone) event in its own transaction.
    async fn log_event(&self, event: &Event) -> CoreResult<()>;
    /// Reads the log, newest first.
    async fn events(&self, tenant_id: i64, q: &EventQuery) -> CoreResult<Vec<Event>>;
    /// Events since `since` counted per UTC day and operation.
    async fn event_counts(&self, tenant_id: i64, since: Timestamp) -> CoreResult<Vec<DayCount>>;
    /// Deletes up to `batch` events older than `before` (all tenants); returns how many.
    async fn sweep_events(&self, before: Timestamp, batch: u32) -> CoreResult<u64>;
    /// The change feed: up to `limit` log rows whose events end after sequence `after`, in
    /// sequence order (a row's first events may be at or before `after`).
    async fn changes(&self, tenant_id: i64, after: i64, limit: u32) -> CoreResult<Vec<Event>>;
    /// The retained extent of a tenant's feed.
    async fn change_bounds(&self, tenant_id: i64) -> CoreResult<crate::change::ChangeBounds>;
}

#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// A new console operator; a taken name is `CoreError::Conflict`.
    async fn create_operator(
        &self,
        username: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator>;
    async fn operator_by_name(&self, username: &str) -> CoreResult<Option<Operator>>;
    async fn operators(&self) -> CoreResult<Vec<Operator>>;
    async fn delete_operator(&self, username: &str) -> CoreResult<bool>;
    /// New password hash; also clears the failure count and lock and ends every session.
    async fn set_operator_password(&self, username: &str, hash: &str) -> CoreResult<bool>;
    /// Counts one more consecutive failure and returns the new count (atomically).
    async fn operator_login_failed(&self, id: i64) -> CoreResult<i64>;
    async fn lock_operator(&self, id: i64, until: Timestamp) -> CoreResult<()>;
    async fn operator_login_succeeded(&self, id: i64, now: Timestamp) -> CoreResult<()>;
    /// Records that a TOTP code of time step `step` was accepted, if it is later than the
    /// last one (atomically); `false` for a replay.
    async fn totp_step_used(&self, id: i64, step: u64) -> CoreResult<bool>;
    /// Spends an unused recovery code with this hash; `false` when there is none.
    async fn use_recovery_code(&self, id: i64, hash: &str, now: Timestamp) -> CoreResult<bool>;
    /// Recovery codes not used yet.
    async fn recovery_codes_left(&self, id: i64) -> CoreResult<u32>;
}

/// The audit log (`crate::audit`): people's actions, each stored with its change.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Makes `change` and stores `entry` in one transaction: both or neither.
    async fn audited(
        &self,
        entry: &crate::audit::AuditEntry,
        change: crate::audit::AuditedChange,
    ) -> CoreResult<crate::audit::AuditOutcome>;
    /// Stores an action whose effect is not in the database (a sign-in, an app's job file).
    async fn record_audit(&self, entry: &crate::audit::AuditEntry) -> CoreResult<()>;
    /// Rows matching the query, newest first.
    async fn audit_log(
        &self,
        q: &crate::audit::AuditQuery,
    ) -> CoreResult<Vec<crate::audit::AuditRecord>>;
    /// Deletes up to `batch` rows older than `before`; returns how many.
    async fn sweep_audit(&self, before: Timestamp, batch: u32) -> CoreResult<u64>;
}

/// Tenant admins' grants and setup links (`crate::access`, `crate::setup_link`).
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Grants (`Some`) or takes away (`None`) a tenant admin's access to a tenant; `false`
    /// when the operator is not a tenant admin.
    async fn set_grant(
        &self,
        operator_id: i64,
        tenant_id: i64,
        access: Option<crate::access::Access>,
    ) -> CoreResult<bool>;
    /// The tenant admins of a tenant, with their access, by name.
    async fn tenant_admins(
        &self,
        tenant_id: i64,
    ) -> CoreResult<Vec<(Operator, crate::access::Access)>>;
    async fn insert_setup_link(
        &self,
        link: &crate::setup_link::NewSetupLink,
    ) -> CoreResult<crate::setup_link::SetupLink>;
    /// A tenant's links, newest first (at most `limit`).
    async fn setup_links(
        &self,
        tenant_id: i64,
        limit: u32,
    ) -> CoreResult<Vec<crate::setup_link::SetupLink>>;
    /// The link whose secret hashes to `token_hash`, in whatever state.
    async fn setup_link(
        &self,
        token_hash: &str,
    ) -> CoreResult<Option<crate::setup_link::SetupLink>>;
    /// Revokes a usable link of the tenant; `false` when there is none.
    async fn revoke_setup_link(&self, tenant_id: i64, id: i64, now: Timestamp) -> CoreResult<bool>;
    /// In one transaction: marks the usable invite link used, creates the tenant admin
    /// `username` with `hash`, and grants it admin access to the link's tenant. A link used,
    /// revoked or expired meanwhile is `CoreError::Gone`; a taken name is `Conflict` (and the
    /// link stays unused).
    async fn redeem_invite(
        &self,
        token_hash: &str,
        username: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator>;
    /// In one transaction: marks the usable reset link used, sets its operator's password
    /// (clearing lockout) and ends the operator's sessions.
    async fn redeem_reset(
        &self,
        token_hash: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> CoreResult<()>;
    /// The unexpired session with this id hash, with its operator.
    async fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> CoreResult<Option<(SessionRecord, Operator)>>;
    async fn delete_session(&self, id_hash: &str) -> CoreResult<()>;
    /// Deletes expired sessions; returns how many.
    async fn sweep_sessions(&self, now: Timestamp) -> CoreResult<u64>;
}

/// The lease a run's writes are fenced by. A node can lose its lease while it still works
/// (a stalled renewal, a long pause): the node that takes the lease over plans from what is
/// stored, so a write the old holder makes after that would overwrite the new run's rows.
/// A fenced write checks, inside its own transaction and under the lease row's lock, that
/// `holder` still holds `lease`, and is refused with [`crate::CoreError::LeaseLost`]
/// otherwise; a takeover (which must update that row) therefore comes strictly before or
/// strictly after each fenced write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    pub lease: String,
    pub holder: String,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the named lease for `holder` until `until` if it is free, expired or
    /// already `holder`'s: how several nodes agree that one of them runs a periodic job.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> CoreResult<bool>;
    /// Who holds the named lease and until when (an expired lease is still listed).
    async fn lease(&self, name: &str) -> CoreResult<Option<LeaseHolder>>;
}

/// A lease's holder and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at: Timestamp,
}

/// Webhook endpoints and delivery attempts (scoped by tenant, except the deliverer's
/// cross-tenant look for due endpoints).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_endpoint(&self, ep: &WebhookEndpoint) -> CoreResult<()>;
    async fn endpoints(&self, tenant_id: i64) -> CoreResult<Vec<WebhookEndpoint>>;
    async fn endpoint(&self, tenant_id: i64, id: &str) -> CoreResult<Option<WebhookEndpoint>>;
    /// Enabled endpoints of every tenant whose next attempt is due at `now`.
    async fn due_endpoints(&self, now: Timestamp) -> CoreResult<Vec<WebhookEndpoint>>;
    /// Enables (clearing the failure state) or disables with a reason.
    async fn set_endpoint_enabled(
        &self,
        tenant_id: i64,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> CoreResult<bool>;
    /// Moves the cursor (a replay from `cursor + 1`), clears failures and enables.
    async fn reset_endpoint_cursor(
        &self,
        tenant_id: i64,
        id: &str,
        cursor: i64,
    ) -> CoreResult<bool>;
    /// A new current secret; the old one stays usable until `previous_until`.
    async fn rotate_endpoint_secret(
        &self,
        tenant_id: i64,
        id: &str,
        sealed: &str,
        prefix: &str,
        previous_until: Timestamp,
    ) -> CoreResult<bool>;
    async fn delete_endpoint(&self, tenant_id: i64, id: &str) -> CoreResult<bool>;
    /// Records attempts and, when `progress` is given, moves the endpoint on, in one
    /// transaction fenced by the delivery lease and only if the cursor is still `expected`
    /// (an operator's replay in between wins). Returns whether the endpoint was updated.
    async fn record_delivery(
        &self,
        fence: Option<&LeaseFence>,
        tenant_id: i64,
        endpoint_id: &str,
        expected: i64,
        deliveries: &[WebhookDelivery],
        progress: Option<&EndpointProgress>,
    ) -> CoreResult<bool>;
    /// The latest attempts, newest first.
    async fn deliveries(
        &self,
        tenant_id: i64,
        endpoint_id: &str,
        limit: u32,
    ) -> CoreResult<Vec<WebhookDelivery>>;
    /// Deletes up to `batch` attempts older than `before`; returns how many.
    async fn sweep_deliveries(&self, before: Timestamp, batch: u32) -> CoreResult<u64>;
}

#[async_trait]
pub trait SchemaStore: Send + Sync {
    /// Brings the schema up to date.
    async fn migrate(&self) -> CoreResult<()>;
    /// Checks the database answers (readiness).
    async fn ping(&self) -> CoreResult<()>;
}
