//! # scim-store: the scimd store traits on SQLite and PostgreSQL
//!
//! One implementation, [`SqlStore`], of every `scim_core::store` trait. The backend choice is
//! made once (`engine.rs`): each trait method hands a unit of work to
//! [`Engine::write`](engine::Engine::write) or [`Engine::read`](engine::Engine::read), and the
//! work is written once over `conn.rs`'s [`Conn`](conn::Conn), which runs the same SQL (with
//! `$n` placeholders, which both databases accept) on either driver.
//!
//! - SQLite runs in WAL mode with `synchronous=NORMAL` (an acknowledged write survives a
//!   process kill) or `FULL` (survives power loss). Every write goes through
//!   `sqlite_engine`'s one writer thread, which commits concurrent requests together (group
//!   commit); reads use a pool of reader connections. One scimd process per SQLite file.
//! - PostgreSQL (sqlx's native driver): read-modify-writes lock the row
//!   (`FOR NO KEY UPDATE`); migrations take an advisory lock so several nodes can start at
//!   once.
//! - Migrations are sqlx's migrator over `migrations/{sqlite,postgres}/`.
//! - Uniqueness is enforced by unique indexes on lower-cased names; a violation is
//!   `CoreError::Conflict` (`409 uniqueness` on SCIM routes), never a 500.
//! - Group membership lives in `group_members` rows keyed by (group, member): adding one
//!   member is one insert whatever the group's size, and concurrent PATCHes cannot lose one.

mod conn;
mod create_batcher;
mod engine;
mod error;
mod events;
mod migrations;
mod operators;
mod resources;
mod row_batcher;
mod sequencer;
pub mod sql_filter;
mod sqlite_engine;
mod sync;
mod tenants;
mod tokens;
mod webhooks;

pub use conn::Dialect;
pub use error::StoreError;

use async_trait::async_trait;
use engine::Engine;
use scim_core::event::{Event, EventQuery, LogEntry};
use scim_core::store::{
    EventStore, LeaseFence, LeaseStore, Modifier, OperatorStore, ResourceStore, SchemaStore,
    SessionStore, TenantStore, TokenStore, WebhookStore,
};
use scim_core::webhook::{EndpointProgress, WebhookDelivery, WebhookEndpoint};
use scim_core::{
    CoreResult, DayCount, Operator, Query, QueryResult, ResourceKind, SessionRecord,
    StoredResource, Tenant, Timestamp, TokenRecord, Write,
};
use scim_core::{
    CycleRecord, JobSnapshot, LedgerEntry, SourceFile, SourceFileInfo, SyncJobRecord, SyncLogQuery,
    SyncLogRecord, SyncStore,
};
use scim_proto::render::GroupRef;
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A unit of work for [`Engine`]: `job!(|c| some_fn(c, &arg))` moves what it captures into
/// a boxed future that borrows the connection `c`.
macro_rules! job {
    (|$c:ident| $body:expr) => {
        move |$c| Box::pin(async move { $body.await })
    };
}

/// The unit of work of [`ResourceStore::modify`] (a named function, so its closure type is
/// fixed where it is made and it can go to either the row batcher or the engine).
fn modify_job(
    tenant_id: i64,
    kind: ResourceKind,
    id: String,
    related: bool,
    modifier: Modifier,
    now: Timestamp,
) -> impl for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, Option<StoredResource>>
+ Send
+ 'static {
    job!(|c| resources::modify(c, tenant_id, kind, &id, related, &*modifier, now))
}

pub struct SqlStore {
    engine: Engine,
    /// The database URL (for migrations, which open their own connection).
    url: String,
    /// Resources created by this node since it last refreshed PostgreSQL's statistics.
    created_since_analyze: AtomicU64,
    /// The most rows a filter or sort that SQL cannot answer may evaluate in memory; beyond
    /// it the request is `400 tooMany` rather than a memory spike.
    memory_scan_max: usize,
    /// Numbers the change feed after commit (PostgreSQL only; `sequencer.rs`).
    sequencer: Option<sequencer::ChangeSequencer>,
    /// Commits concurrent modifications of one row together (PostgreSQL only;
    /// `row_batcher.rs`).
    rows: Option<row_batcher::RowBatcher>,
    /// Writes concurrent creates in one statement (PostgreSQL only; `create_batcher.rs`).
    creates: Option<create_batcher::CreateBatcher>,
}

/// PostgreSQL plans a freshly filled table without statistics badly (a userName lookup
/// scanned the tenant instead of using the unique index: 60 lookups/s instead of 4,500 right
/// after an initial sync). Autovacuum catches up within minutes; this node does not wait:
/// it refreshes them after its first [`ANALYZE_YOUNG_CREATES`] creates and every
/// [`ANALYZE_EVERY_CREATES`].
const ANALYZE_EVERY_CREATES: u64 = 5_000;
/// A table that has never been analyzed has no size for the planner (`reltuples = -1`), so
/// it picks any index on the tenant: a lookup among 2,000 users read all 2,000 (2,200
/// lookups/s instead of 5,800). These counts of a node's first creates refresh the statistics
/// early.
const ANALYZE_YOUNG_CREATES: [u64; 2] = [500, 2_000];

/// A pooled PostgreSQL connection idle this long is pinged before it is handed out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// The file of a `sqlite://path?options` URL.
fn sqlite_path(url: &str) -> Result<&str, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(
            "SQLite needs a file (sqlite://path/to/scimd.db); in-memory databases are not supported"
                .into(),
        ));
    }
    Ok(path)
}

impl SqlStore {
    /// Connects to `sqlite://path` or `postgres://…`. For SQLite the file is created if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, false).await
    }

    /// Like [`connect`](Self::connect); `power_loss_durable` makes SQLite fsync every commit
    /// (`synchronous = FULL`) instead of surviving only process crashes (`NORMAL`).
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        power_loss_durable: bool,
    ) -> Result<Self, StoreError> {
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite(Box::new(sqlite_engine::SqliteEngine::start(
                sqlite_path(url)?,
                power_loss_durable,
            )?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = sqlx::postgres::PgConnectOptions::from_str(url)?;
            Engine::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(30))
                    // sqlx pings every connection it hands out by default: one more round
                    // trip per request. A connection in steady use is known to be alive;
                    // one idle for a while is pinged (a server restart or an idle-timeout
                    // proxy may have closed it meanwhile).
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_IDLE_AFTER {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(opts)
                    .await?,
            )
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL '{}': use sqlite://path or postgres://…",
                scim_proto::error::excerpt(url)
            )));
        };
        let (sequencer, rows, creates) = match &engine {
            Engine::Postgres(pool) => (
                Some(sequencer::ChangeSequencer::new(pool.clone())),
                Some(row_batcher::RowBatcher::new(pool.clone())),
                Some(create_batcher::CreateBatcher::new(pool.clone())),
            ),
            Engine::Sqlite(_) => (None, None, None),
        };
        Ok(Self {
            engine,
            sequencer,
            rows,
            creates,
            url: url.to_string(),
            created_since_analyze: AtomicU64::new(0),
            memory_scan_max: 50_000,
        })
    }

    /// Sets the in-memory evaluation bound (default 50,000 rows).
    pub fn set_memory_scan_max(&mut self, rows: usize) {
        self.memory_scan_max = rows;
    }

    pub fn dialect(&self) -> Dialect {
        self.engine.dialect()
    }

    /// Stops SQLite's writer after the queued writes, or closes the PostgreSQL pool.
    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(e) => e.close(),
            Engine::Postgres(pool) => pool.close().await,
        }
    }

    async fn write<T, F>(&self, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        Ok(self.engine.write(work).await?)
    }

    async fn read<T, F>(&self, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        Ok(self.engine.read(work).await?)
    }

    async fn snapshot<T, F>(&self, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        Ok(self.engine.snapshot(work).await?)
    }

    /// Counts a create; on PostgreSQL, refreshes planner statistics in the background every
    /// [`ANALYZE_EVERY_CREATES`] creates.
    fn note_create(&self) {
        let Engine::Postgres(pool) = &self.engine else {
            return;
        };
        let n = self.created_since_analyze.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(ANALYZE_EVERY_CREATES) || ANALYZE_YOUNG_CREATES.contains(&n) {
            let pool = pool.clone();
            tokio::spawn(async move {
                if let Err(e) = sqlx::query("ANALYZE resources, resource_emails, group_members")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "ANALYZE failed");
                }
            });
        }
    }

    /// Sets the database gauges (`scimd_db_pool_connections{state}`): PostgreSQL's pool;
    /// SQLite's idle reader connections.
    pub fn record_pool_gauges(&self) {
        match &self.engine {
            Engine::Postgres(pool) => {
                let (size, idle) = (pool.size() as f64, pool.num_idle() as f64);
                metrics::gauge!("scimd_db_pool_connections", "state" => "idle").set(idle);
                metrics::gauge!("scimd_db_pool_connections", "state" => "busy").set(size - idle);
            }
            Engine::Sqlite(e) => {
                metrics::gauge!("scimd_db_pool_connections", "state" => "idle")
                    .set(e.idle_readers() as f64);
            }
        }
    }

    /// After a change commits: numbers it for the change feed in the background (PostgreSQL).
    fn changed(&self, tenant_id: i64) {
        if let Some(s) = &self.sequencer {
            s.kick(tenant_id);
        }
    }

    /// Before the change feed is read: numbers every change committed so far (PostgreSQL).
    async fn settle_changes(&self, tenant_id: i64) -> CoreResult<()> {
        match &self.sequencer {
            Some(s) => Ok(s.settle(tenant_id).await?),
            None => Ok(()),
        }
    }

    /// The SQLite engine, whose cached counts follow creates and deletes.
    fn sqlite(&self) -> Option<&sqlite_engine::SqliteEngine> {
        match &self.engine {
            Engine::Sqlite(e) => Some(e),
            Engine::Postgres(_) => None,
        }
    }
}

impl scim_core::Store for SqlStore {}

#[async_trait]
impl SchemaStore for SqlStore {
    async fn migrate(&self) -> CoreResult<()> {
        Ok(migrations::run_blocking(self.url.clone()).await?)
    }

    async fn ping(&self) -> CoreResult<()> {
        self.read(job!(|c| c.fetch("SELECT 1", &[])))
            .await
            .map(drop)
    }
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn create_tenant(&self, slug: &str, name: &str, now: Timestamp) -> CoreResult<Tenant> {
        let (slug, name) = (slug.to_string(), name.to_string());
        self.write(job!(|c| tenants::create(c, &slug, &name, now)))
            .await
    }
    async fn tenant(&self, slug: &str) -> CoreResult<Option<Tenant>> {
        let slug = slug.to_string();
        self.read(job!(|c| tenants::by_slug(c, &slug))).await
    }
    async fn tenants(&self) -> CoreResult<Vec<Tenant>> {
        self.read(job!(|c| tenants::all(c))).await
    }
    async fn delete_tenant(&self, slug: &str) -> CoreResult<bool> {
        if let Some(e) = self.sqlite() {
            e.forget_counts();
        }
        let slug = slug.to_string();
        self.write(job!(|c| tenants::delete(c, &slug))).await
    }
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> CoreResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(job!(|c| tenants::try_lease(c, &name, &holder, now, until)))
            .await
    }
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_endpoint(&self, ep: &WebhookEndpoint) -> CoreResult<()> {
        let ep = ep.clone();
        self.write(job!(|c| webhooks::insert(c, &ep))).await
    }
    async fn endpoints(&self, tenant_id: i64) -> CoreResult<Vec<WebhookEndpoint>> {
        self.read(job!(|c| webhooks::of_tenant(c, tenant_id))).await
    }
    async fn endpoint(&self, tenant_id: i64, id: &str) -> CoreResult<Option<WebhookEndpoint>> {
        let id = id.to_string();
        self.read(job!(|c| webhooks::one(c, tenant_id, &id))).await
    }
    async fn due_endpoints(&self, now: Timestamp) -> CoreResult<Vec<WebhookEndpoint>> {
        self.read(job!(|c| webhooks::due(c, now))).await
    }
    async fn set_endpoint_enabled(
        &self,
        tenant_id: i64,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> CoreResult<bool> {
        let (id, reason) = (id.to_string(), reason.map(str::to_string));
        self.write(job!(|c| webhooks::set_enabled(
            c,
            tenant_id,
            &id,
            enabled,
            reason.as_deref()
        )))
        .await
    }
    async fn reset_endpoint_cursor(
        &self,
        tenant_id: i64,
        id: &str,
        cursor: i64,
    ) -> CoreResult<bool> {
        let id = id.to_string();
        self.write(job!(|c| webhooks::reset_cursor(c, tenant_id, &id, cursor)))
            .await
    }
    async fn rotate_endpoint_secret(
        &self,
        tenant_id: i64,
        id: &str,
        sealed: &str,
        prefix: &str,
        previous_until: Timestamp,
    ) -> CoreResult<bool> {
        let (id, sealed, prefix) = (id.to_string(), sealed.to_string(), prefix.to_string());
        self.write(job!(|c| webhooks::rotate_secret(
            c,
            tenant_id,
            &id,
            &sealed,
            &prefix,
            previous_until
        )))
        .await
    }
    async fn delete_endpoint(&self, tenant_id: i64, id: &str) -> CoreResult<bool> {
        let id = id.to_string();
        self.write(job!(|c| webhooks::delete(c, tenant_id, &id)))
            .await
    }
    async fn record_delivery(
        &self,
        fence: Option<&LeaseFence>,
        tenant_id: i64,
        endpoint_id: &str,
        expected: i64,
        deliveries: &[WebhookDelivery],
        progress: Option<&EndpointProgress>,
    ) -> CoreResult<bool> {
        let (fence, id) = (fence.cloned(), endpoint_id.to_string());
        let (deliveries, progress) = (deliveries.to_vec(), progress.cloned());
        self.write(job!(|c| webhooks::record(
            c,
            fence.as_ref(),
            tenant_id,
            &id,
            expected,
            &deliveries,
            progress.as_ref()
        )))
        .await
    }
    async fn deliveries(
        &self,
        tenant_id: i64,
        endpoint_id: &str,
        limit: u32,
    ) -> CoreResult<Vec<WebhookDelivery>> {
        let id = endpoint_id.to_string();
        self.read(job!(|c| webhooks::deliveries(c, tenant_id, &id, limit)))
            .await
    }
    async fn sweep_deliveries(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        self.write(job!(|c| webhooks::sweep(c, before, batch)))
            .await
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn insert_token(&self, token: &TokenRecord) -> CoreResult<()> {
        let token = token.clone();
        self.write(job!(|c| tokens::insert(c, &token))).await
    }
    async fn token_by_hash(&self, hash: &str) -> CoreResult<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.read(job!(|c| tokens::by_hash(c, &hash))).await
    }
    async fn tokens(&self, tenant_id: i64) -> CoreResult<Vec<TokenRecord>> {
        self.read(job!(|c| tokens::of_tenant(c, tenant_id))).await
    }
    async fn revoke_token(&self, tenant_id: i64, id: &str, now: Timestamp) -> CoreResult<bool> {
        let id = id.to_string();
        self.write(job!(|c| tokens::revoke(c, tenant_id, &id, now)))
            .await
    }
    async fn rotate_token(
        &self,
        tenant_id: i64,
        id: &str,
        new_hash: &str,
        new_prefix: &str,
        grace_until: Timestamp,
    ) -> CoreResult<bool> {
        let (id, hash, prefix) = (id.to_string(), new_hash.to_string(), new_prefix.to_string());
        self.write(job!(|c| tokens::rotate(
            c,
            tenant_id,
            &id,
            &hash,
            &prefix,
            grace_until
        )))
        .await
    }
    async fn touch_token(&self, id: &str, now: Timestamp) -> CoreResult<()> {
        let id = id.to_string();
        self.write(job!(|c| tokens::touch(c, &id, now))).await
    }
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
            let item = resources::NewResource {
                tenant_id,
                kind,
                id,
                write,
                now,
            };
            creates.create(item).await.map_err(Into::into)
        } else {
            self.write(job!(|c| resources::create(
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
        self.read(job!(|c| resources::get(c, tenant_id, kind, &id, related)))
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
            // `resources::modify_user_unlocked`); a group, or a user that other writes keep
            // changing, through the row's batch.
            Some(rows) => {
                let unlocked = match kind {
                    ResourceKind::User => {
                        let (id, modifier) = (id.to_string(), modifier.clone());
                        self.engine
                            .read(job!(|c| resources::modify_user_unlocked(
                                c, tenant_id, &id, related, &*modifier, now
                            )))
                            .await?
                    }
                    ResourceKind::Group => resources::Unlocked::Contended,
                };
                match unlocked {
                    resources::Unlocked::Done(r) => r,
                    resources::Unlocked::Contended => {
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
            .write(job!(|c| resources::delete(
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
        let q = q.clone();
        let r = self
            .read(job!(|c| resources::query(
                c, tenant_id, kind, &q, max, known
            )))
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
        self.read(job!(|c| resources::groups_of(c, tenant_id, &ids)))
            .await
    }
}

#[async_trait]
impl EventStore for SqlStore {
    async fn log_event(&self, event: &Event) -> CoreResult<()> {
        let e = event.clone();
        self.write(job!(|c| events::insert_event(c, &e))).await?;
        if event.change.is_some() {
            self.changed(event.tenant_id);
        }
        Ok(())
    }
    async fn events(&self, tenant_id: i64, q: &EventQuery) -> CoreResult<Vec<Event>> {
        let q = q.clone();
        self.read(job!(|c| events::query(c, tenant_id, &q))).await
    }
    async fn event_counts(&self, tenant_id: i64, since: Timestamp) -> CoreResult<Vec<DayCount>> {
        self.read(job!(|c| events::counts(c, tenant_id, since)))
            .await
    }
    async fn sweep_events(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        if self.sequencer.is_some() {
            for tenant_id in self.read(job!(|c| events::unsequenced_tenants(c))).await? {
                self.settle_changes(tenant_id).await?;
            }
        }
        self.write(job!(|c| events::sweep(c, before, batch))).await
    }
    async fn changes(&self, tenant_id: i64, after: i64, limit: u32) -> CoreResult<Vec<Event>> {
        self.settle_changes(tenant_id).await?;
        self.read(job!(|c| events::changes(c, tenant_id, after, limit)))
            .await
    }
    async fn change_bounds(&self, tenant_id: i64) -> CoreResult<scim_core::change::ChangeBounds> {
        self.settle_changes(tenant_id).await?;
        self.read(job!(|c| events::change_bounds(c, tenant_id)))
            .await
    }
}

#[async_trait]
impl OperatorStore for SqlStore {
    async fn create_operator(
        &self,
        username: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator> {
        let (name, hash) = (username.to_string(), hash.to_string());
        self.write(job!(|c| operators::insert(c, &name, &hash, now)))
            .await
    }
    async fn operator_by_name(&self, username: &str) -> CoreResult<Option<Operator>> {
        let name = username.to_string();
        self.read(job!(|c| operators::by_name(c, &name))).await
    }
    async fn operators(&self) -> CoreResult<Vec<Operator>> {
        self.read(job!(|c| operators::all(c))).await
    }
    async fn delete_operator(&self, username: &str) -> CoreResult<bool> {
        let name = username.to_string();
        self.write(job!(|c| operators::delete(c, &name))).await
    }
    async fn set_operator_password(&self, username: &str, hash: &str) -> CoreResult<bool> {
        let (name, hash) = (username.to_string(), hash.to_string());
        self.write(job!(|c| operators::set_password(c, &name, &hash)))
            .await
    }
    async fn operator_login_failed(&self, id: i64) -> CoreResult<i64> {
        self.write(job!(|c| operators::login_failed(c, id))).await
    }
    async fn lock_operator(&self, id: i64, until: Timestamp) -> CoreResult<()> {
        self.write(job!(|c| operators::lock(c, id, until))).await
    }
    async fn operator_login_succeeded(&self, id: i64, now: Timestamp) -> CoreResult<()> {
        self.write(job!(|c| operators::login_succeeded(c, id, now)))
            .await
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, session: &SessionRecord) -> CoreResult<()> {
        let s = session.clone();
        self.write(job!(|c| operators::insert_session(c, &s))).await
    }
    async fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> CoreResult<Option<(SessionRecord, Operator)>> {
        let h = id_hash.to_string();
        self.read(job!(|c| operators::session(c, &h, now))).await
    }
    async fn delete_session(&self, id_hash: &str) -> CoreResult<()> {
        let h = id_hash.to_string();
        self.write(job!(|c| operators::delete_session(c, &h))).await
    }
    async fn sweep_sessions(&self, now: Timestamp) -> CoreResult<u64> {
        self.write(job!(|c| operators::sweep_sessions(c, now)))
            .await
    }
}

#[async_trait]
impl SyncStore for SqlStore {
    async fn put_job(&self, job: &SyncJobRecord) -> CoreResult<()> {
        let job = job.clone();
        self.write(job!(|c| sync::put_job(c, &job))).await
    }

    async fn job(&self, name: &str) -> CoreResult<Option<SyncJobRecord>> {
        let name = name.to_string();
        self.read(job!(|c| sync::job(c, &name))).await
    }

    async fn jobs(&self) -> CoreResult<Vec<SyncJobRecord>> {
        self.read(job!(|c| sync::jobs(c))).await
    }

    async fn delete_job(&self, name: &str) -> CoreResult<bool> {
        let name = name.to_string();
        self.write(job!(|c| sync::delete_job(c, &name))).await
    }

    async fn put_source_file(&self, job: &str, file: &SourceFile) -> CoreResult<()> {
        let (job, file) = (job.to_string(), file.clone());
        self.write(job!(|c| sync::put_source_file(c, &job, &file)))
            .await
    }

    async fn source_file(&self, job: &str) -> CoreResult<Option<SourceFile>> {
        let job = job.to_string();
        self.read(job!(|c| sync::source_file(c, &job))).await
    }

    async fn source_file_info(&self, job: &str) -> CoreResult<Option<SourceFileInfo>> {
        let job = job.to_string();
        self.read(job!(|c| sync::source_file_info(c, &job))).await
    }

    async fn set_job_state(
        &self,
        fence: Option<&LeaseFence>,
        name: &str,
        state: &Value,
        now: Timestamp,
    ) -> CoreResult<()> {
        let (fence, name, state) = (fence.cloned(), name.to_string(), state.clone());
        self.write(job!(|c| async move {
            tenants::check_fence(c, fence.as_ref()).await?;
            sync::set_state(c, &name, &state, now).await
        }))
        .await
    }

    async fn set_job_enabled(&self, name: &str, enabled: bool, now: Timestamp) -> CoreResult<bool> {
        let name = name.to_string();
        self.write(job!(|c| sync::set_enabled(c, &name, enabled, now)))
            .await
    }

    async fn ledger(&self, job: &str) -> CoreResult<Vec<LedgerEntry>> {
        let job = job.to_string();
        self.read(job!(|c| sync::ledger(c, &job))).await
    }

    async fn record_sync(
        &self,
        fence: Option<&LeaseFence>,
        entries: &[LedgerEntry],
        log: &[SyncLogRecord],
    ) -> CoreResult<()> {
        let (fence, entries, log) = (fence.cloned(), entries.to_vec(), log.to_vec());
        self.write(job!(|c| async move {
            tenants::check_fence(c, fence.as_ref()).await?;
            sync::record(c, &entries, &log).await
        }))
        .await
    }

    async fn sync_log(&self, job: &str, q: &SyncLogQuery) -> CoreResult<Vec<SyncLogRecord>> {
        let (job, q) = (job.to_string(), q.clone());
        self.read(job!(|c| sync::log(c, &job, &q))).await
    }

    async fn save_cycle(&self, cycle: &CycleRecord) -> CoreResult<()> {
        let cycle = cycle.clone();
        self.write(job!(|c| sync::save_cycle(c, &cycle))).await
    }

    async fn finish_cycle(
        &self,
        fence: Option<&LeaseFence>,
        cycle: &CycleRecord,
        state: &Value,
        now: Timestamp,
    ) -> CoreResult<()> {
        let (fence, cycle, state) = (fence.cloned(), cycle.clone(), state.clone());
        self.write(job!(|c| async move {
            tenants::check_fence(c, fence.as_ref()).await?;
            sync::save_cycle(c, &cycle).await?;
            sync::set_state(c, &cycle.job, &state, now).await
        }))
        .await
    }

    async fn job_snapshot(&self, name: &str, cycles: u32) -> CoreResult<Option<JobSnapshot>> {
        let name = name.to_string();
        self.snapshot(job!(|c| async move {
            let Some(record) = sync::job(c, &name).await? else {
                return Ok(None);
            };
            let ledger = sync::ledger(c, &name).await?;
            let cycles = sync::cycles(c, &name, cycles).await?;
            Ok(Some(JobSnapshot {
                record,
                ledger,
                cycles,
            }))
        }))
        .await
    }

    async fn cycles(&self, job: &str, limit: u32) -> CoreResult<Vec<CycleRecord>> {
        let job = job.to_string();
        self.read(job!(|c| sync::cycles(c, &job, limit))).await
    }

    async fn sweep_sync_log(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        self.write(job!(|c| sync::sweep_log(c, before, batch)))
            .await
    }
}
