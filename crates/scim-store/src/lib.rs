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

/// A unit of work for [`Engine`]: `job!(|c| some_fn(c, &arg))` moves what it captures into
/// a boxed future that borrows the connection `c`.
macro_rules! job {
    (|$c:ident| $body:expr) => {
        move |$c| Box::pin(async move { $body.await })
    };
}

mod access;
mod audit;
mod conn;
mod create_batcher;
mod engine;
mod error;
mod events;
mod leases;
mod migrations;
mod operators;
mod rekey;
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

use engine::Engine;
use scim_core::CoreResult;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct SqlStore {
    pub(crate) engine: Engine,
    /// The database URL (for migrations, which open their own connection).
    pub(crate) url: String,
    /// Resources created by this node since it last refreshed PostgreSQL's statistics.
    pub(crate) created_since_analyze: AtomicU64,
    /// The most rows a filter or sort that SQL cannot answer may evaluate in memory; beyond
    /// it the request is `400 tooMany` rather than a memory spike.
    pub(crate) memory_scan_max: usize,
    /// Numbers the change feed after commit (PostgreSQL only; `sequencer.rs`).
    pub(crate) sequencer: Option<sequencer::ChangeSequencer>,
    /// Commits concurrent modifications of one row together (PostgreSQL only;
    /// `row_batcher.rs`).
    pub(crate) rows: Option<row_batcher::RowBatcher>,
    /// Writes concurrent creates in one statement (PostgreSQL only; `create_batcher.rs`).
    pub(crate) creates: Option<create_batcher::CreateBatcher>,
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

    pub(crate) async fn write<T, F>(&self, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        Ok(self.engine.write(work).await?)
    }

    pub(crate) async fn read<T, F>(&self, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        Ok(self.engine.read(work).await?)
    }

    /// A read; when `bounded` (one row by a unique key, by construction) SQLite runs it on
    /// the calling thread ([`sqlite_engine::SqliteEngine::read_inline`]), else as any read.
    pub(crate) async fn read_bounded<T, F>(&self, bounded: bool, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        match self.sqlite().filter(|_| bounded) {
            Some(e) => Ok(e.read_inline(work).await?),
            None => self.read(work).await,
        }
    }

    pub(crate) async fn snapshot<T, F>(&self, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut conn::Conn<'c>) -> engine::Fut<'c, T> + Send + 'static,
    {
        Ok(self.engine.snapshot(work).await?)
    }

    /// Counts a create; on PostgreSQL, refreshes planner statistics in the background every
    /// [`ANALYZE_EVERY_CREATES`] creates.
    pub(crate) fn note_create(&self) {
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
    pub(crate) fn changed(&self, tenant_id: i64) {
        if let Some(s) = &self.sequencer {
            s.kick(tenant_id);
        }
    }

    /// Before the change feed is read: numbers every change committed so far (PostgreSQL).
    pub(crate) async fn settle_changes(&self, tenant_id: i64) -> CoreResult<()> {
        match &self.sequencer {
            Some(s) => Ok(s.settle(tenant_id).await?),
            None => Ok(()),
        }
    }

    /// The SQLite engine, whose cached counts follow creates and deletes.
    pub(crate) fn sqlite(&self) -> Option<&sqlite_engine::SqliteEngine> {
        match &self.engine {
            Engine::Sqlite(e) => Some(e),
            Engine::Postgres(_) => None,
        }
    }
}

impl scim_core::Store for SqlStore {}
