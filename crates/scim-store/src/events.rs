//! Provisioning-log rows.

use crate::db::{Db, SqlxDb, bind_all, run_now};
use crate::sql_filter::{Arg, SqlBuf};
use crate::{SqlStore, StoreError};
use scim_core::DayCount;
use scim_core::provisioning::{Event, EventQuery, LogEntry, Operation, Outcome};
use scim_core::resource::fold;
use sqlx::Row;
use sqlx::any::AnyRow;

const COLUMNS: &str = "seq, tenant_id, at, operation, resource_type, resource_id, resource_name, status, \
                       scim_type, detail, token_name, request_id, client_addr";

/// Inserts one event (inside the caller's transaction).
pub(crate) async fn insert_event<D: Db>(db: &mut D, e: &Event) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO provisioning_events (tenant_id, at, operation, resource_type, resource_id, resource_name, \
         status, scim_type, detail, token_name, request_id, client_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            Arg::Int(e.tenant_id),
            Arg::Int(e.at),
            Arg::Text(e.operation.as_str().into()),
            Arg::opt_text(e.resource_type.as_deref()),
            Arg::opt_text(e.resource_id.as_deref()),
            Arg::opt_text(e.resource_name.as_deref()),
            Arg::Int(i64::from(e.status)),
            Arg::opt_text(e.scim_type.as_deref()),
            Arg::opt_text(e.detail.as_deref()),
            Arg::opt_text(e.token_name.as_deref()),
            Arg::Text(e.request_id.clone()),
            Arg::opt_text(e.client_addr.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

/// The event for a successful write.
pub(crate) fn success_event(
    tenant_id: i64,
    at: i64,
    log: &LogEntry,
    resource_type: &str,
    resource_id: &str,
    resource_name: Option<&str>,
) -> Event {
    Event {
        seq: 0,
        tenant_id,
        at,
        operation: log.operation,
        resource_type: Some(resource_type.to_string()),
        resource_id: Some(resource_id.to_string()),
        resource_name: resource_name.map(str::to_string),
        status: log.status,
        scim_type: None,
        detail: None,
        token_name: log.ctx.token_name.clone(),
        request_id: log.ctx.request_id.clone(),
        client_addr: log.ctx.client_addr.clone(),
    }
}

fn event_from(row: &AnyRow) -> Result<Event, StoreError> {
    let op: String = row.try_get("operation")?;
    let status: i64 = row.try_get("status")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        tenant_id: row.try_get("tenant_id")?,
        at: row.try_get("at")?,
        operation: Operation::parse(&op)
            .ok_or_else(|| StoreError::Corrupt(format!("operation '{op}'")))?,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        resource_name: row.try_get("resource_name")?,
        status: u16::try_from(status).unwrap_or(0),
        scim_type: row.try_get("scim_type")?,
        detail: row.try_get("detail")?,
        token_name: row.try_get("token_name")?,
        request_id: row.try_get("request_id")?,
        client_addr: row.try_get("client_addr")?,
    })
}

impl SqlStore {
    pub(crate) async fn log_event_row(&self, e: &Event) -> Result<(), StoreError> {
        if let Some(engine) = &self.engine {
            let e = e.clone();
            return engine.write(move |db| run_now(insert_event(db, &e))).await;
        }
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut SqlxDb(&mut conn), e).await
    }

    pub(crate) async fn event_rows(
        &self,
        tenant_id: i64,
        q: &EventQuery,
    ) -> Result<Vec<Event>, StoreError> {
        let mut buf = SqlBuf::default();
        let t = buf.bind(Arg::Int(tenant_id));
        let mut sql = format!("SELECT {COLUMNS} FROM provisioning_events WHERE tenant_id = {t}");
        if let Some(since) = q.since {
            sql += &format!(" AND at >= {}", buf.bind(Arg::Int(since)));
        }
        if let Some(until) = q.until {
            sql += &format!(" AND at < {}", buf.bind(Arg::Int(until)));
        }
        if !q.operations.is_empty() {
            let list: Vec<String> = q
                .operations
                .iter()
                .map(|o| buf.bind(Arg::Text(o.as_str().into())))
                .collect();
            sql += &format!(" AND operation IN ({})", list.join(", "));
        }
        match q.outcome {
            Some(Outcome::Failure) => sql += " AND operation = 'Failure'",
            Some(Outcome::Success) => sql += " AND operation <> 'Failure'",
            None => {}
        }
        if let Some(k) = q.resource_type {
            sql += &format!(
                " AND resource_type = {}",
                buf.bind(Arg::Text(k.as_str().into()))
            );
        }
        if let Some(r) = &q.resource {
            let id = buf.bind(Arg::Text(r.clone()));
            let name = buf.bind(Arg::Text(fold(r)));
            sql += &format!(" AND (resource_id = {id} OR LOWER(resource_name) = {name})");
        }
        if let Some(tok) = &q.token_name {
            sql += &format!(" AND token_name = {}", buf.bind(Arg::Text(tok.clone())));
        }
        if let Some(before) = q.before_seq {
            sql += &format!(" AND seq < {}", buf.bind(Arg::Int(before)));
        }
        let limit = buf.bind(Arg::Int(i64::from(q.limit.clamp(1, 10_000))));
        sql += &format!(" ORDER BY seq DESC LIMIT {limit}");
        let rows = bind_all(sqlx::query(&sql), &buf.args)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from).collect()
    }

    pub(crate) async fn sweep_event_rows(
        &self,
        before: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "DELETE FROM provisioning_events WHERE seq IN \
             (SELECT seq FROM provisioning_events WHERE at < $1 ORDER BY seq LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn event_count_rows(
        &self,
        tenant_id: i64,
        since: i64,
    ) -> Result<Vec<DayCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT at / 86400000000 AS day, operation, COUNT(*) AS n FROM provisioning_events \
             WHERE tenant_id = $1 AND at >= $2 GROUP BY at / 86400000000, operation",
        )
        .bind(tenant_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let op: String = r.try_get("operation")?;
                Ok(DayCount {
                    day: r.try_get("day")?,
                    operation: Operation::parse(&op)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown operation '{op}'")))?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }
}
