//! One small interface over the two drivers, so every query is written once:
//!
//! - [`Conn::Pg`]: a sqlx PostgreSQL connection (inside a transaction for writes).
//! - [`Conn::Lite`]: a rusqlite connection owned by the SQLite engine's writer thread or a
//!   reader (`sqlite_engine.rs`), with prepared statements cached per connection. Its futures
//!   never wait, so the engine drives them with [`run_now`] on its own threads.
//!
//! SQL uses `$n` placeholders numbered in order of first use (SQLite reads `$1` as a named
//! parameter whose index is its first-use order, so positional binding matches).

use crate::StoreError;
use crate::sql_filter::Arg;
use scim_core::Timestamp;
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, PgRow};
use std::future::Future;

/// The future of a unit of work, borrowing its connection.
pub(crate) type Fut<'c, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'c>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to run SQL on.
pub(crate) enum Conn<'c> {
    Pg(&'c mut sqlx::PgConnection),
    Lite(&'c mut rusqlite::Connection),
}

/// A result row, read by column index.
pub(crate) enum Row {
    Pg(PgRow),
    Lite(Vec<rusqlite::types::Value>),
}

impl Row {
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self {
            Row::Pg(r) => Ok(r.try_get::<Option<i64>, _>(i)?),
            Row::Lite(v) => match v.get(i) {
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
            Row::Pg(r) => Ok(r.try_get::<Option<String>, _>(i)?),
            Row::Lite(v) => match v.get(i) {
                Some(rusqlite::types::Value::Text(s)) => Ok(Some(s.clone())),
                Some(rusqlite::types::Value::Null) => Ok(None),
                other => Err(StoreError::Corrupt(format!(
                    "column {i}: expected text, found {other:?}"
                ))),
            },
        }
    }

    pub fn ts(&self, i: usize) -> Result<Timestamp, StoreError> {
        self.int(i).map(Timestamp::from_micros)
    }

    pub fn opt_ts(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.opt_int(i)?.map(Timestamp::from_micros))
    }
}

/// Binds `args` in order to a sqlx query.
fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::NullInt => q.bind(None::<i64>),
            Arg::NullText => q.bind(None::<String>),
            Arg::Ints(v) => q.bind(v.as_slice()),
            Arg::Texts(v) => q.bind(v.as_slice()),
        };
    }
    q
}

/// Binds `args` to a SQLite statement by placeholder number: SQLite numbers `$n` parameters
/// by first appearance, so `SET a = $3 WHERE id = $1` must be bound by name, not position.
fn lite_bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Arg]) -> Result<(), StoreError> {
    for idx in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(idx)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| StoreError::Internal(format!("SQL parameter {idx} is not $n")))?;
        let arg = args
            .get(n - 1)
            .ok_or_else(|| StoreError::Internal(format!("no value for SQL parameter ${n}")))?;
        match arg {
            Arg::Int(i) => stmt.raw_bind_parameter(idx, i)?,
            Arg::Text(s) => stmt.raw_bind_parameter(idx, s.as_str())?,
            Arg::NullInt | Arg::NullText => stmt.raw_bind_parameter(idx, rusqlite::types::Null)?,
            Arg::Ints(_) | Arg::Texts(_) => {
                return Err(StoreError::Internal(
                    "SQLite statements take no array parameters".into(),
                ));
            }
        }
    }
    Ok(())
}

fn lite_fetch(
    conn: &mut rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt.column_count();
    lite_bind(&mut stmt, args)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(row.get::<_, rusqlite::types::Value>(i)?);
        }
        out.push(Row::Lite(vals));
    }
    Ok(out)
}

impl Conn<'_> {
    /// A row lock for read-modify-write where the backend has row locks (`NO KEY`: the
    /// membership rows that reference the row by key can still be inserted meanwhile).
    /// SQLite needs none: its writer is single.
    pub fn for_update(&self) -> &'static str {
        match self {
            Conn::Pg(_) => " FOR NO KEY UPDATE",
            Conn::Lite(_) => "",
        }
    }

    pub async fn fetch(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>, StoreError> {
        match self {
            Conn::Pg(c) => {
                let rows = bind_all(sqlx::query(sql), args).fetch_all(&mut **c).await?;
                Ok(rows.into_iter().map(Row::Pg).collect())
            }
            Conn::Lite(c) => lite_fetch(c, sql, args),
        }
    }

    /// Rows affected.
    pub async fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        match self {
            Conn::Pg(c) => Ok(bind_all(sqlx::query(sql), args)
                .execute(&mut **c)
                .await?
                .rows_affected()),
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                lite_bind(&mut stmt, args)?;
                Ok(stmt.raw_execute()? as u64)
            }
        }
    }

    pub async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// The one row a statement returns (`INSERT … RETURNING`, `COUNT(*)`).
    pub async fn fetch_one(&mut self, sql: &str, args: &[Arg]) -> Result<Row, StoreError> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }
}

/// Drives a future that never waits (the [`Conn::Lite`] logic) to completion on this thread.
pub(crate) fn run_now<T>(
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(StoreError::Internal(
            "a SQLite engine step tried to wait".into(),
        )),
    }
}
