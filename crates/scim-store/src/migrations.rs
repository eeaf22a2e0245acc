//! Schema migrations with sqlx's migrator (`migrations/{sqlite,postgres}/NNNN_name.sql`),
//! embedded in the binary.
//!
//! - PostgreSQL: several nodes may start at once; one migrates while the others wait on an
//!   advisory lock (sqlx's migrator takes one too).
//! - SQLite: run before the first request, on a connection of its own that is closed again,
//!   so the engine's writer thread stays the file's only writer while scimd serves.
//! - Databases made before the migrator (their history in `scimd_migrations`) are adopted:
//!   their applied versions are recorded in sqlx's table with the embedded checksums, so
//!   nothing runs twice.

use crate::SqlStore;
use crate::StoreError;
use async_trait::async_trait;
use scim_core::CoreResult;
use scim_core::store::SchemaStore;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Connection, Executor};
use std::str::FromStr;

static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The key of scimd's own advisory lock, held around the adoption and the migrator.
const LOCK_KEY: i64 = 7_253_001;

/// Runs the migrations on a blocking-pool thread. (The migrator's future is not `Send` for
/// every borrow lifetime, which an `async_trait` method requires; driving it to completion on
/// a thread of its own sidesteps that without changing what runs.)
pub(crate) async fn run_blocking(url: String) -> Result<(), StoreError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(run(&url)))
        .await
        .map_err(|e| StoreError::Internal(format!("the migration task failed: {e}")))?
}

async fn run(url: &str) -> Result<(), StoreError> {
    if url.starts_with("sqlite:") {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
        adopt_legacy(&mut conn, &SQLITE).await?;
        SQLITE.run(&mut conn).await?;
        conn.close().await?;
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_KEY)
            .execute(&mut conn)
            .await?;
        let r = async {
            adopt_legacy(&mut conn, &POSTGRES).await?;
            POSTGRES.run(&mut conn).await?;
            Ok::<(), StoreError>(())
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut conn)
            .await?;
        r?;
        conn.close().await?;
    }
    Ok(())
}

/// Records the versions a pre-migrator database applied (in `scimd_migrations`) as applied
/// in sqlx's `_sqlx_migrations`, then drops the old table.
async fn adopt_legacy<C, DB>(conn: &mut C, migrator: &Migrator) -> Result<(), StoreError>
where
    C: Migrate + Send,
    for<'e> &'e mut C: Executor<'e, Database = DB>,
    DB: sqlx::Database,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB> + for<'q> sqlx::Encode<'q, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Vec<u8>: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let legacy: Result<Vec<(i64,)>, sqlx::Error> =
        sqlx::query_as("SELECT version FROM scimd_migrations")
            .fetch_all(&mut *conn)
            .await;
    let Ok(applied) = legacy else {
        return Ok(()); // no legacy table: a new database, or adopted already
    };
    conn.ensure_migrations_table().await?;
    for (version,) in applied {
        let Some(m) = migrator.iter().find(|m| m.version == version) else {
            return Err(StoreError::Config(format!(
                "the database has migration {version}, which this scimd does not know: \
                 it was written by a newer scimd"
            )));
        };
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT (version) DO NOTHING",
        )
        .bind(m.version)
        .bind(m.description.to_string())
        .bind(m.checksum.to_vec())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DROP TABLE scimd_migrations")
        .execute(&mut *conn)
        .await?;
    tracing::info!("adopted the migration history of an older scimd");
    Ok(())
}

#[async_trait]
impl SchemaStore for SqlStore {
    async fn migrate(&self) -> CoreResult<()> {
        run_blocking(self.url.clone()).await?;
        let n = self.write(job!(|c| crate::rekey::rekey_nfc(c))).await?;
        if n > 0 {
            tracing::info!(
                rows = n,
                "recomputed the name keys of rows written before names were normalised"
            );
        }
        Ok(())
    }

    async fn ping(&self) -> CoreResult<()> {
        self.read(job!(|c| c.fetch("SELECT 1", &[])))
            .await
            .map(drop)
    }
}
