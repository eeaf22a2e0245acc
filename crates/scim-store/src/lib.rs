//! # scim-store: the scimd Store on SQLite and PostgreSQL
//!
//! One implementation, [`SqlStore`]. The SQL is written once with `$n` placeholders, which
//! both SQLite and PostgreSQL accept, and the resource logic once over a small `Db` interface
//! (`db.rs`) that runs it on sqlx (PostgreSQL) or on rusqlite (SQLite's hot path).
//!
//! - SQLite runs in WAL mode with `synchronous=NORMAL` (an acknowledged write survives a
//!   process kill) or `FULL` (survives power loss). Resources and provisioning events go
//!   through `sqlite_engine`: one writer thread that commits concurrent requests together
//!   (group commit) and reader connections on the blocking pool. One scimd process per
//!   SQLite file.
//! - PostgreSQL: read-modify-writes lock the row (`FOR NO KEY UPDATE`); migrations take an
//!   advisory lock so several nodes can start at once.
//! - Uniqueness is enforced by unique indexes on lower-cased names; a violation is
//!   `409 uniqueness`, never a 500.
//! - Group membership lives in `group_members` rows keyed by (group, member): adding one
//!   member is one insert whatever the group's size, and concurrent PATCHes cannot lose one.

mod db;
mod error;
mod events;
mod operators;
mod resources;
pub mod sql_filter;
mod sqlite_engine;
mod tokens;

pub use error::StoreError;

use async_trait::async_trait;
use db::{SqlxDb, run_now};
use scim_core::store::Modifier;
use scim_core::{
    CoreResult, DayCount, Event, EventQuery, LogEntry, Operator, Query, QueryResult, ResourceKind,
    SessionRecord, Store, StoredResource, Tenant, TokenRecord, Write,
};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite has a single writer: write transactions queue here instead of failing busy.
    write_lock: tokio::sync::Mutex<()>,
    /// Resources created by this node since it last refreshed PostgreSQL's statistics.
    created_since_analyze: std::sync::atomic::AtomicU64,
    /// The most rows a filter or sort that SQL cannot answer may evaluate in memory; beyond
    /// it the request is `400 tooMany` rather than a memory spike.
    memory_scan_max: usize,
    /// SQLite only: the rusqlite writer (group commit) and readers for resources and events.
    engine: Option<sqlite_engine::SqliteEngine>,
}

/// PostgreSQL plans a freshly filled table without statistics badly (a userName lookup
/// scanned the tenant instead of using the unique index: 60 lookups/s instead of 4,500 right
/// after an initial sync). Autovacuum catches up within minutes; this node does not wait.
const ANALYZE_EVERY_CREATES: u64 = 5_000;

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_provisioning_log.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_id_index.sql")),
    (4, include_str!("../migrations/sqlite/0004_leases.sql")),
    (5, include_str!("../migrations/sqlite/0005_console.sql")),
    (
        6,
        include_str!("../migrations/sqlite/0006_one_id_index.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_tenant_kind_seq.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_provisioning_log.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_id_index.sql")),
    (4, include_str!("../migrations/postgres/0004_leases.sql")),
    (5, include_str!("../migrations/postgres/0005_console.sql")),
    (
        6,
        include_str!("../migrations/postgres/0006_one_id_index.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_tenant_kind_seq.sql"),
    ),
];

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

/// Splits a migration file into statements: `--` comment lines are dropped first (they may
/// contain semicolons), then the text is split on `;` (none inside our statements).
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
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
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL '{url}': use sqlite://path or postgres://…"
            )));
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        let synchronous = if power_loss_durable { "FULL" } else { "NORMAL" };
                        conn.execute(
                            format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA case_sensitive_like = ON;"
                            )
                            .as_str(),
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let engine = match dialect {
            Dialect::Sqlite => Some(sqlite_engine::SqliteEngine::start(
                sqlite_path(&url)?,
                power_loss_durable,
            )?),
            Dialect::Postgres => None,
        };
        Ok(Self {
            pool,
            dialect,
            write_lock: tokio::sync::Mutex::new(()),
            created_since_analyze: std::sync::atomic::AtomicU64::new(0),
            memory_scan_max: 50_000,
            engine,
        })
    }

    /// Sets the in-memory evaluation bound (default 50,000 rows).
    pub fn set_memory_scan_max(&mut self, rows: usize) {
        self.memory_scan_max = rows;
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Serialises writers on SQLite; a no-op guard on PostgreSQL.
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.write_lock.lock().await),
            Dialect::Postgres => None,
        }
    }

    /// A row lock for read-modify-write where the backend has row locks (`NO KEY`: the
    /// membership rows that reference the row by key can still be inserted meanwhile).
    fn for_update(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => " FOR NO KEY UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// Counts a create; on PostgreSQL, refreshes planner statistics in the background every
    /// [`ANALYZE_EVERY_CREATES`] creates.
    fn note_create(&self) {
        if self.dialect != Dialect::Postgres {
            return;
        }
        let n = self
            .created_since_analyze
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if n.is_multiple_of(ANALYZE_EVERY_CREATES) {
            let pool = self.pool.clone();
            tokio::spawn(async move {
                if let Err(e) = pool
                    .execute("ANALYZE resources, resource_emails, group_members")
                    .await
                {
                    tracing::warn!(error = %e, "ANALYZE failed");
                }
            });
        }
    }

    pub async fn close(&self) {
        if let Some(e) = &self.engine {
            e.close();
        }
        self.pool.close().await;
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            // Several nodes may start together: one migrates, the others wait.
            tx.execute("SELECT pg_advisory_xact_lock(7253001)").await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS scimd_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM scimd_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        let all = match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS,
            Dialect::Postgres => POSTGRES_MIGRATIONS,
        };
        for (version, sql) in all {
            if applied.contains(version) {
                continue;
            }
            for stmt in statements(sql) {
                tx.execute(stmt.as_str()).await?;
            }
            sqlx::query("INSERT INTO scimd_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(scim_core::now_micros())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "applied migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

fn tenant_from(row: &sqlx::any::AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl Store for SqlStore {
    async fn migrate(&self) -> CoreResult<()> {
        Ok(self.run_migrations().await?)
    }

    async fn create_tenant(&self, slug: &str, name: &str, now: i64) -> CoreResult<Tenant> {
        scim_core::tenant::validate_slug(slug)?;
        let _g = self.write_guard().await;
        let row = sqlx::query(
            "INSERT INTO tenants (slug, name, created_at) VALUES ($1, $2, $3) RETURNING id, slug, name, created_at",
        )
        .bind(slug)
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from(e).unique_as(format!("tenant '{slug}' already exists")))?;
        Ok(tenant_from(&row).map_err(StoreError::from)?)
    }

    async fn tenant(&self, slug: &str) -> CoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(row
            .map(|r| tenant_from(&r))
            .transpose()
            .map_err(StoreError::from)?)
    }

    async fn tenants(&self) -> CoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT id, slug, name, created_at FROM tenants ORDER BY slug")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(rows
            .iter()
            .map(tenant_from)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?)
    }

    async fn delete_tenant(&self, slug: &str) -> CoreResult<bool> {
        if let Some(engine) = &self.engine {
            engine.forget_counts();
        }
        let _g = self.write_guard().await;
        let r = sqlx::query("DELETE FROM tenants WHERE slug = $1")
            .bind(slug)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_token(&self, token: &TokenRecord) -> CoreResult<()> {
        Ok(self.insert_token_row(token).await?)
    }
    async fn token_by_hash(&self, hash: &str) -> CoreResult<Option<TokenRecord>> {
        Ok(self.token_row_by_hash(hash).await?)
    }
    async fn tokens(&self, tenant_id: i64) -> CoreResult<Vec<TokenRecord>> {
        Ok(self.token_rows(tenant_id).await?)
    }
    async fn revoke_token(&self, tenant_id: i64, id: &str, now: i64) -> CoreResult<bool> {
        Ok(self.revoke_token_row(tenant_id, id, now).await?)
    }
    async fn rotate_token(
        &self,
        tenant_id: i64,
        id: &str,
        new_hash: &str,
        new_prefix: &str,
        grace_until: i64,
    ) -> CoreResult<bool> {
        Ok(self
            .rotate_token_row(tenant_id, id, new_hash, new_prefix, grace_until)
            .await?)
    }
    async fn touch_token(&self, id: &str, now: i64) -> CoreResult<()> {
        Ok(self.touch_token_row(id, now).await?)
    }

    async fn create(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        write: &Write,
        now: i64,
    ) -> CoreResult<StoredResource> {
        let r = match &self.engine {
            Some(engine) => {
                let (write, id) = (write.clone(), id.to_string());
                let change = engine.change_started(tenant_id, kind);
                let r = engine
                    .write(move |db| {
                        run_now(resources::create(db, tenant_id, kind, &id, &write, now))
                    })
                    .await;
                change.finish(i64::from(r.is_ok()));
                r
            }
            None => {
                let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
                let r = resources::create(&mut SqlxDb(&mut tx), tenant_id, kind, id, write, now)
                    .await?;
                tx.commit().await.map_err(StoreError::from)?;
                Ok(r)
            }
        }?;
        self.note_create();
        Ok(r)
    }
    async fn get(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
    ) -> CoreResult<Option<StoredResource>> {
        Ok(match &self.engine {
            Some(engine) => {
                let id = id.to_string();
                engine
                    .read(move |db| run_now(resources::get(db, tenant_id, kind, &id, with_members)))
                    .await?
            }
            None => {
                let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
                resources::get(&mut SqlxDb(&mut conn), tenant_id, kind, id, with_members).await?
            }
        })
    }
    async fn modify(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
        modifier: Modifier,
        now: i64,
    ) -> CoreResult<Option<StoredResource>> {
        Ok(match &self.engine {
            Some(engine) => {
                let id = id.to_string();
                engine
                    .write(move |db| {
                        run_now(resources::modify(
                            db,
                            tenant_id,
                            kind,
                            &id,
                            with_members,
                            &*modifier,
                            now,
                            "",
                        ))
                    })
                    .await?
            }
            None => {
                let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
                let r = resources::modify(
                    &mut SqlxDb(&mut tx),
                    tenant_id,
                    kind,
                    id,
                    with_members,
                    &*modifier,
                    now,
                    self.for_update(),
                )
                .await?;
                tx.commit().await.map_err(StoreError::from)?;
                r
            }
        })
    }
    async fn delete(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        id: &str,
        log: Option<&LogEntry>,
    ) -> CoreResult<bool> {
        Ok(match &self.engine {
            Some(engine) => {
                let (id, log) = (id.to_string(), log.cloned());
                let change = engine.change_started(tenant_id, kind);
                let deleted = engine
                    .write(move |db| {
                        run_now(resources::delete(db, tenant_id, kind, &id, log.as_ref()))
                    })
                    .await;
                let delta = if matches!(deleted, Ok(true)) { -1 } else { 0 };
                change.finish(delta);
                deleted?
            }
            None => {
                let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
                let r = resources::delete(&mut SqlxDb(&mut tx), tenant_id, kind, id, log).await?;
                tx.commit().await.map_err(StoreError::from)?;
                r
            }
        })
    }
    async fn log_event(&self, event: &Event) -> CoreResult<()> {
        Ok(self.log_event_row(event).await?)
    }
    async fn events(&self, tenant_id: i64, q: &EventQuery) -> CoreResult<Vec<Event>> {
        Ok(self.event_rows(tenant_id, q).await?)
    }
    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> CoreResult<bool> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 OR leases.holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(r.rows_affected() == 1)
    }
    async fn sweep_events(&self, before: i64, batch: u32) -> CoreResult<u64> {
        Ok(self.sweep_event_rows(before, batch).await?)
    }
    async fn event_counts(&self, tenant_id: i64, since: i64) -> CoreResult<Vec<DayCount>> {
        Ok(self.event_count_rows(tenant_id, since).await?)
    }
    async fn create_operator(&self, username: &str, hash: &str, now: i64) -> CoreResult<Operator> {
        Ok(self.insert_operator(username, hash, now).await?)
    }
    async fn operator_by_name(&self, username: &str) -> CoreResult<Option<Operator>> {
        Ok(self.operator_row(username).await?)
    }
    async fn operators(&self) -> CoreResult<Vec<Operator>> {
        Ok(self.operator_rows().await?)
    }
    async fn delete_operator(&self, username: &str) -> CoreResult<bool> {
        Ok(self.delete_operator_row(username).await?)
    }
    async fn set_operator_password(&self, username: &str, hash: &str) -> CoreResult<bool> {
        Ok(self.set_operator_password_row(username, hash).await?)
    }
    async fn operator_login_failed(&self, id: i64) -> CoreResult<i64> {
        Ok(self.operator_failed_row(id).await?)
    }
    async fn lock_operator(&self, id: i64, until: i64) -> CoreResult<()> {
        Ok(self.lock_operator_row(id, until).await?)
    }
    async fn operator_login_succeeded(&self, id: i64, now: i64) -> CoreResult<()> {
        Ok(self.operator_succeeded_row(id, now).await?)
    }
    async fn insert_session(&self, session: &SessionRecord) -> CoreResult<()> {
        Ok(self.insert_session_row(session).await?)
    }
    async fn session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> CoreResult<Option<(SessionRecord, Operator)>> {
        Ok(self.session_row(id_hash, now).await?)
    }
    async fn delete_session(&self, id_hash: &str) -> CoreResult<()> {
        Ok(self.delete_session_row(id_hash).await?)
    }
    async fn sweep_sessions(&self, now: i64) -> CoreResult<u64> {
        Ok(self.sweep_session_rows(now).await?)
    }
    async fn query(
        &self,
        tenant_id: i64,
        kind: ResourceKind,
        q: &Query,
    ) -> CoreResult<QueryResult> {
        let max = self.memory_scan_max;
        Ok(match &self.engine {
            Some(engine) => {
                let unfiltered = q.filter.is_none();
                let (known, generation) = engine.cached_count(tenant_id, kind);
                let q = q.clone();
                let r = engine
                    .read(move |db| run_now(resources::query(db, tenant_id, kind, &q, max, known)))
                    .await?;
                if unfiltered && known.is_none() {
                    engine.remember_count(
                        tenant_id,
                        kind,
                        generation,
                        i64::try_from(r.total).unwrap_or(i64::MAX),
                    );
                }
                r
            }
            None => {
                let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
                resources::query(&mut SqlxDb(&mut conn), tenant_id, kind, q, max, None).await?
            }
        })
    }
    async fn groups_of(
        &self,
        tenant_id: i64,
        member_ids: &[String],
    ) -> CoreResult<HashMap<String, Vec<(String, String)>>> {
        Ok(match &self.engine {
            Some(engine) => {
                let ids = member_ids.to_vec();
                engine
                    .read(move |db| run_now(resources::groups_of(db, tenant_id, &ids)))
                    .await?
            }
            None => {
                let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
                resources::groups_of(&mut SqlxDb(&mut conn), tenant_id, member_ids).await?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_split_into_statements_without_comments() {
        let s = super::statements(
            "-- a comment; with a semicolon\nCREATE TABLE a (x INT);\n-- more\nDROP TABLE b",
        );
        assert_eq!(s, ["CREATE TABLE a (x INT)", "DROP TABLE b"]);
        for (_, sql) in super::SQLITE_MIGRATIONS
            .iter()
            .chain(super::POSTGRES_MIGRATIONS)
        {
            for stmt in super::statements(sql) {
                assert!(!stmt.contains("--"), "{stmt}");
            }
        }
    }
}
