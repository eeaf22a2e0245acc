//! One small interface over the two ways scim-store talks SQL, so the resource logic
//! (`resources.rs`) is written once:
//!
//! - [`SqlxDb`]: a sqlx `Any` connection (PostgreSQL, and SQLite's administrative tables).
//! - [`LiteDb`]: a rusqlite connection owned by one thread (SQLite's resource hot path,
//!   `sqlite_engine.rs`), with prepared statements cached per connection. Its futures never
//!   wait, so the engine drives them with [`run_now`] on its own threads.
//!
//! Both take SQL with `$n` placeholders numbered in order of first use (SQLite reads `$1` as a
//! named parameter whose index is its first-use order, so positional binding matches).

use crate::StoreError;
use crate::sql_filter::Arg;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::future::Future;

/// A result row, read by column index.
pub(crate) enum DbRow {
    Any(AnyRow),
    Lite(Vec<rusqlite::types::Value>),
}

impl DbRow {
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self {
            DbRow::Any(r) => Ok(r.try_get::<Option<i64>, _>(i)?),
            DbRow::Lite(v) => match v.get(i) {
                Some(rusqlite::types::Value::Integer(n)) => Ok(Some(*n)),
                Some(rusqlite::types::Value::Null) => Ok(None),
                other => Err(StoreError::Corrupt(format!(
                    "column {i}: expected an integer, found {other:?}"
                ))),
            },
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self {
            DbRow::Any(r) => Ok(r.try_get::<Option<String>, _>(i)?),
            DbRow::Lite(v) => match v.get(i) {
                Some(rusqlite::types::Value::Text(s)) => Ok(Some(s.clone())),
                Some(rusqlite::types::Value::Null) => Ok(None),
                other => Err(StoreError::Corrupt(format!(
                    "column {i}: expected text, found {other:?}"
                ))),
            },
        }
    }
}

/// A connection (usually inside a transaction) that runs SQL.
pub(crate) trait Db: Send {
    fn fetch(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> impl Future<Output = Result<Vec<DbRow>, StoreError>> + Send;

    /// Rows affected.
    fn exec(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> impl Future<Output = Result<Option<DbRow>, StoreError>> + Send {
        async move { Ok(self.fetch(sql, args).await?.into_iter().next()) }
    }
}

pub(crate) struct SqlxDb<'c>(pub &'c mut AnyConnection);

/// Binds `args` in order to a sqlx query.
pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::NullInt => q.bind(None::<i64>),
            Arg::NullText => q.bind(None::<String>),
        };
    }
    q
}

impl Db for SqlxDb<'_> {
    async fn fetch(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<DbRow>, StoreError> {
        let rows = bind_all(sqlx::query(sql), args)
            .fetch_all(&mut *self.0)
            .await?;
        Ok(rows.into_iter().map(DbRow::Any).collect())
    }

    async fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(bind_all(sqlx::query(sql), args)
            .execute(&mut *self.0)
            .await?
            .rows_affected())
    }
}

pub(crate) struct LiteDb<'c>(pub &'c mut rusqlite::Connection);

fn lite_params(args: &[Arg]) -> impl Iterator<Item = rusqlite::types::Value> + '_ {
    args.iter().map(|a| match a {
        Arg::Int(i) => rusqlite::types::Value::Integer(*i),
        Arg::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Arg::NullInt | Arg::NullText => rusqlite::types::Value::Null,
    })
}

impl LiteDb<'_> {
    fn fetch_now(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<DbRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(lite_params(args)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(row.get::<_, rusqlite::types::Value>(i)?);
            }
            out.push(DbRow::Lite(vals));
        }
        Ok(out)
    }

    fn exec_now(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(lite_params(args)))? as u64)
    }
}

impl Db for LiteDb<'_> {
    async fn fetch(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<DbRow>, StoreError> {
        self.fetch_now(sql, args)
    }

    async fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        self.exec_now(sql, args)
    }
}

/// Drives a future that never waits (the [`LiteDb`] logic) to completion on this thread.
pub(crate) fn run_now<T>(
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(StoreError::Config(
            "internal: a SQLite engine step tried to wait".into(),
        )),
    }
}
