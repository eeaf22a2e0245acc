//! The backend choice, written once: [`Engine::write`] runs a unit of work in one
//! transaction, [`Engine::read`] on a connection, on whichever database this store opened.
//! Every store trait is implemented over these two calls (the domain modules), never over a
//! driver directly.

use crate::StoreError;
pub(crate) use crate::conn::Fut;
use crate::conn::{Conn, Dialect};
use crate::sqlite_engine::SqliteEngine;

pub(crate) enum Engine {
    /// One writer thread with group commit and a pool of readers (`sqlite_engine.rs`).
    Sqlite(Box<SqliteEngine>),
    Postgres(sqlx::PgPool),
}

impl Engine {
    pub fn dialect(&self) -> Dialect {
        match self {
            Engine::Sqlite(_) => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `work` in a transaction: committed when it returns `Ok` (and only then answered),
    /// rolled back when it returns an error.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        match self {
            Engine::Sqlite(e) => e.write(work).await,
            Engine::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let r = {
                    let mut c = Conn::Pg(&mut tx);
                    work(&mut c).await
                };
                match r {
                    Ok(v) => {
                        tx.commit().await?;
                        Ok(v)
                    }
                    Err(e) => {
                        if let Err(rb) = tx.rollback().await {
                            tracing::debug!(error = %rb, "rollback after a failed write");
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Runs `work` as one consistent snapshot: every statement sees the database as of one
    /// instant, so reads of rows that a writer changes in several transactions (a cycle's
    /// ledger batches, then its cycle record) never mix before and after. PostgreSQL:
    /// a `REPEATABLE READ, READ ONLY` transaction; SQLite: one read transaction in WAL mode.
    pub async fn snapshot<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        match self {
            Engine::Sqlite(e) => e.snapshot(work).await,
            Engine::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let r = {
                    let mut c = Conn::Pg(&mut tx);
                    work(&mut c).await
                };
                // Read only: ending it either way changes nothing.
                if let Err(e) = tx.rollback().await {
                    tracing::debug!(error = %e, "ending a read snapshot");
                }
                r
            }
        }
    }

    /// Runs `work` on a connection (no transaction needed: one statement, or reads that
    /// tolerate concurrent commits).
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        match self {
            Engine::Sqlite(e) => e.read(work).await,
            Engine::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let mut c = Conn::Pg(&mut conn);
                work(&mut c).await
            }
        }
    }
}
