//! Provisioning-log rows.

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::{Arg, SqlBuf};
use async_trait::async_trait;
use scim_core::CoreResult;
use scim_core::change::{ChangeBounds, ChangeRecord};
use scim_core::event::{Event, EventQuery, LogEntry, Operation, Outcome};
use scim_core::store::EventStore;
use scim_core::{DayCount, Timestamp};

const COLUMNS: &str = "seq, tenant_id, at, operation, resource_type, resource_id, resource_name, status, \
                       scim_type, detail, token_name, request_id, client_addr, change_seq, change_data, method";

/// Inserts one event (inside the caller's transaction). A change's events take the tenant's
/// next sequence numbers (docs/events.md, "Ordering"):
///
/// - SQLite: here, from the tenant's counter row: there is one writer, so sequences commit
///   in order by construction.
/// - PostgreSQL: not here. The row is written *unsequenced* (`change_seq` NULL, its
///   `change_count` set) and [`sequence_pending`] numbers it after the commit. Taking the
///   counter here would hold its row lock through the commit's WAL flush, so every change
///   to one tenant would commit one at a time (≈ 450 creates/s here, against 2,600 without).
pub(crate) async fn insert_event(c: &mut Conn<'_>, e: &Event) -> Result<(), StoreError> {
    let mut args = event_args(e);
    let count = change_count(e);
    if count > 0 && matches!(c, Conn::Lite(_)) {
        let last = c
            .fetch_one(
                "UPDATE tenants SET change_seq = change_seq + $1 WHERE id = $2 RETURNING change_seq",
                &[Arg::Int(count), Arg::Int(e.tenant_id)],
            )
            .await?
            .int(0)?;
        args[CHANGE_SEQ_ARG] = Arg::Int(last);
    }
    let values: Vec<String> = (1..=args.len()).map(|i| format!("${i}")).collect();
    c.exec(
        &format!(
            "INSERT INTO provisioning_events ({INSERT_COLUMNS}) VALUES ({})",
            values.join(", ")
        ),
        &args,
    )
    .await?;
    Ok(())
}

/// The columns [`event_args`] gives values for, in order.
pub(crate) const INSERT_COLUMNS: &str = "tenant_id, at, operation, resource_type, resource_id, \
     resource_name, status, scim_type, detail, token_name, request_id, client_addr, change_seq, \
     change_count, change_data, method";
/// Where `change_seq` is in [`event_args`].
const CHANGE_SEQ_ARG: usize = 12;

/// How many feed events the row stands for (0: not a change, a failure say).
fn change_count(e: &Event) -> i64 {
    e.change
        .as_ref()
        .map_or(0, |ch| ch.count(e.operation))
        .max(0)
}

/// The values of an event's row, unnumbered (`change_seq` NULL).
pub(crate) fn event_args(e: &Event) -> Vec<Arg> {
    let count = change_count(e);
    let change_data = match &e.change {
        Some(ch) if count > 0 => Arg::Text(ch.to_json().to_string()),
        _ => Arg::NullText,
    };
    vec![
        Arg::Int(e.tenant_id),
        Arg::ts(e.at),
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
        Arg::NullInt,
        Arg::Int(count),
        change_data,
        Arg::opt_text(e.method.as_deref()),
    ]
}

/// Whether the tenant has committed changes still to be numbered (PostgreSQL; a probe of the
/// `provisioning_events_unsequenced` partial index).
pub(crate) async fn has_unsequenced(c: &mut Conn<'_>, tenant_id: i64) -> Result<bool, StoreError> {
    Ok(c.fetch_optional(
        "SELECT 1 FROM provisioning_events \
         WHERE tenant_id = $1 AND change_seq IS NULL AND change_count > 0 LIMIT 1",
        &[Arg::Int(tenant_id)],
    )
    .await?
    .is_some())
}

/// The most rows one numbering transaction takes (a backlog is numbered in several).
pub(crate) const SEQUENCE_BATCH: i64 = 10_000;

/// Numbers the tenant's committed, unsequenced changes (PostgreSQL; inside the caller's
/// transaction): locks the tenant's counter row, gives the rows the next sequences in the
/// order they were inserted, and advances the counter. Returns how many rows it numbered
/// (at most [`SEQUENCE_BATCH`]).
///
/// Why this order is right: numbering transactions take the counter lock one at a time and
/// commit their numbers together, so a reader sees sequences only as an unbroken prefix.
/// Two changes to one resource are numbered in version order: the second waited on the
/// first's row lock, so its row was inserted (and its `seq` drawn) after the first had
/// committed, and a snapshot that sees the second sees the first too. The lock is taken by
/// its own statement first, so the statement that reads the rows (a new snapshot under
/// READ COMMITTED) sees every number given before it. The lock is `FOR NO KEY UPDATE`, not
/// `FOR UPDATE`: every change's log row references the tenant row, and its foreign-key check
/// takes `FOR KEY SHARE` on it, which `FOR UPDATE` blocks. With `FOR UPDATE` each numbering
/// run (and its commit's WAL flush) stalled all of the tenant's writes: a user's PATCH
/// statement averaged 1.3 ms in PostgreSQL, 0.25 ms without (`docs/performance.md`).
pub(crate) async fn sequence_pending(c: &mut Conn<'_>, tenant_id: i64) -> Result<i64, StoreError> {
    let Some(head) = c
        .fetch_optional(
            "SELECT change_seq FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
            &[Arg::Int(tenant_id)],
        )
        .await?
    else {
        return Ok(0); // the tenant was deleted, and its events with it
    };
    let head = head.int(0)?;
    let done = c
        .fetch_one(
            "WITH pending AS ( \
               SELECT seq, SUM(change_count) OVER (ORDER BY seq) AS run FROM provisioning_events \
               WHERE tenant_id = $1 AND change_seq IS NULL AND change_count > 0 \
               ORDER BY seq LIMIT $2), \
             numbered AS ( \
               UPDATE provisioning_events p SET change_seq = $3 + pending.run \
               FROM pending WHERE p.seq = pending.seq RETURNING p.change_seq) \
             SELECT COUNT(*), COALESCE(MAX(change_seq), $3) FROM numbered",
            &[
                Arg::Int(tenant_id),
                Arg::Int(SEQUENCE_BATCH),
                Arg::Int(head),
            ],
        )
        .await?;
    let (rows, last) = (done.int(0)?, done.int(1)?);
    if rows > 0 {
        c.exec(
            "UPDATE tenants SET change_seq = $1 WHERE id = $2",
            &[Arg::Int(last), Arg::Int(tenant_id)],
        )
        .await?;
    }
    Ok(rows)
}

/// The event for a successful write.
pub(crate) fn success_event(
    tenant_id: i64,
    at: Timestamp,
    log: &LogEntry,
    resource_type: &str,
    resource_id: &str,
    resource_name: Option<&str>,
    change: ChangeRecord,
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
        method: None,
        change: Some(change),
    }
}

fn event_from(row: &Row) -> Result<Event, StoreError> {
    let op = row.text(3)?;
    let status = row.int(7)?;
    Ok(Event {
        seq: row.int(0)?,
        tenant_id: row.int(1)?,
        at: row.ts(2)?,
        operation: Operation::parse(&op)
            .ok_or_else(|| StoreError::Corrupt(format!("operation '{op}'")))?,
        resource_type: row.opt_text(4)?,
        resource_id: row.opt_text(5)?,
        resource_name: row.opt_text(6)?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("event status {status}")))?,
        scim_type: row.opt_text(8)?,
        detail: row.opt_text(9)?,
        token_name: row.opt_text(10)?,
        request_id: row.text(11)?,
        client_addr: row.opt_text(12)?,
        method: row.opt_text(15)?,
        change: match (row.opt_int(13)?, row.opt_text(14)?) {
            (Some(last), Some(data)) => {
                let v: serde_json::Value = serde_json::from_str(&data)
                    .map_err(|e| StoreError::Corrupt(format!("change_data: {e}")))?;
                Some(
                    ChangeRecord::from_json(last, &v)
                        .ok_or_else(|| StoreError::Corrupt("change_data".into()))?,
                )
            }
            _ => None,
        },
    })
}

/// The log, newest first, filtered.
pub(crate) async fn query(
    c: &mut Conn<'_>,
    tenant_id: i64,
    q: &EventQuery,
) -> Result<Vec<Event>, StoreError> {
    let mut buf = SqlBuf::default();
    let t = buf.bind(Arg::Int(tenant_id));
    let mut sql = format!("SELECT {COLUMNS} FROM provisioning_events WHERE tenant_id = {t}");
    if let Some(since) = q.since {
        sql += &format!(" AND at >= {}", buf.bind(Arg::ts(since)));
    }
    if let Some(until) = q.until {
        sql += &format!(" AND at < {}", buf.bind(Arg::ts(until)));
    }
    if !q.operations.is_empty() {
        let list: Vec<String> = q
            .operations
            .iter()
            .map(|o| buf.bind(Arg::text(o.as_str())))
            .collect();
        sql += &format!(" AND operation IN ({})", list.join(", "));
    }
    match q.outcome {
        Some(Outcome::Failure) => sql += " AND operation = 'Failure'",
        Some(Outcome::Success) => sql += " AND operation <> 'Failure'",
        None => {}
    }
    if let Some(k) = q.resource_type {
        sql += &format!(" AND resource_type = {}", buf.bind(Arg::text(k.as_str())));
    }
    if let Some(r) = &q.resource {
        // The same SQL function on both sides (SQLite's LOWER folds ASCII only: a name in
        // another script is then found as spelled).
        let id = buf.bind(Arg::text(r));
        let name = buf.bind(Arg::text(r));
        sql += &format!(" AND (resource_id = {id} OR LOWER(resource_name) = LOWER({name}))");
    }
    if let Some(tok) = &q.token_name {
        sql += &format!(" AND token_name = {}", buf.bind(Arg::text(tok)));
    }
    if let Some(before) = q.before_seq {
        sql += &format!(" AND seq < {}", buf.bind(Arg::Int(before)));
    }
    if let Some(after) = q.after_seq {
        sql += &format!(" AND seq > {}", buf.bind(Arg::Int(after)));
    }
    let limit = buf.bind(Arg::Int(i64::from(q.limit.clamp(1, 10_000))));
    let order = if q.after_seq.is_some() { "ASC" } else { "DESC" };
    sql += &format!(" ORDER BY seq {order} LIMIT {limit}");
    c.fetch(&sql, &buf.args)
        .await?
        .iter()
        .map(event_from)
        .collect()
}

/// Deletes up to `batch` log rows older than `before`, oldest first, except changes not yet
/// numbered for the feed (PostgreSQL): a change leaves the log only after it was in the feed.
pub(crate) async fn sweep(
    c: &mut Conn<'_>,
    before: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    sweep_older(
        c,
        "provisioning_events",
        "seq",
        " AND (change_seq IS NOT NULL OR change_count = 0)",
        before,
        batch,
    )
    .await
}

/// The tenants with changes not yet numbered for the feed (PostgreSQL).
pub(crate) async fn unsequenced_tenants(c: &mut Conn<'_>) -> Result<Vec<i64>, StoreError> {
    c.fetch(
        "SELECT DISTINCT tenant_id FROM provisioning_events \
         WHERE change_seq IS NULL AND change_count > 0",
        &[],
    )
    .await?
    .iter()
    .map(|r| r.int(0))
    .collect()
}

/// Deletes up to `batch` rows of a log-like `table` whose `at` is before `before`, oldest
/// `key` first (bounded statements: a sweep never holds a long lock).
/// `and_also` (`""`, or `" AND …"`) narrows the rows that may go.
pub(crate) async fn sweep_older(
    c: &mut Conn<'_>,
    table: &'static str,
    key: &'static str,
    and_also: &'static str,
    before: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    c.exec(
        &format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE at < $1{and_also} ORDER BY {key} LIMIT $2)"
        ),
        &[Arg::ts(before), Arg::Int(i64::from(batch.max(1)))],
    )
    .await
}

pub(crate) async fn counts(
    c: &mut Conn<'_>,
    tenant_id: i64,
    since: Timestamp,
) -> Result<Vec<DayCount>, StoreError> {
    c.fetch(
        "SELECT at / 86400000000 AS day, operation, COUNT(*) AS n FROM provisioning_events \
         WHERE tenant_id = $1 AND at >= $2 GROUP BY at / 86400000000, operation",
        &[Arg::Int(tenant_id), Arg::ts(since)],
    )
    .await?
    .iter()
    .map(|r| {
        let op = r.text(1)?;
        Ok(DayCount {
            day: r.int(0)?,
            operation: Operation::parse(&op)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown operation '{op}'")))?,
            count: r.int(2)?,
        })
    })
    .collect()
}

/// A tenant's change-feed rows after sequence `after`, in sequence order.
pub(crate) async fn changes(
    c: &mut Conn<'_>,
    tenant_id: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let rows = c
        .fetch(
            &format!(
                "SELECT {COLUMNS} FROM provisioning_events WHERE tenant_id = $1 AND change_seq > $2 \
                 ORDER BY change_seq LIMIT {limit}"
            ),
            &[Arg::Int(tenant_id), Arg::Int(after)],
        )
        .await?;
    rows.iter().map(event_from).collect()
}

/// The first retained and the last sequence of a tenant's feed.
pub(crate) async fn change_bounds(
    c: &mut Conn<'_>,
    tenant_id: i64,
) -> Result<ChangeBounds, StoreError> {
    let head = c
        .fetch_optional(
            "SELECT change_seq FROM tenants WHERE id = $1",
            &[Arg::Int(tenant_id)],
        )
        .await?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    // The oldest retained row is the one with the smallest change_seq (the index's first).
    let first = c
        .fetch_optional(
            "SELECT change_seq - change_count + 1 FROM provisioning_events \
             WHERE tenant_id = $1 AND change_seq IS NOT NULL ORDER BY change_seq LIMIT 1",
            &[Arg::Int(tenant_id)],
        )
        .await?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(head + 1);
    Ok(ChangeBounds { first, head })
}

#[async_trait]
impl EventStore for SqlStore {
    async fn log_event(&self, event: &Event) -> CoreResult<()> {
        let e = event.clone();
        self.write(job!(|c| insert_event(c, &e))).await?;
        if event.change.is_some() {
            self.changed(event.tenant_id);
        }
        Ok(())
    }
    async fn events(&self, tenant_id: i64, q: &EventQuery) -> CoreResult<Vec<Event>> {
        let q = q.clone();
        self.read(job!(|c| query(c, tenant_id, &q))).await
    }
    async fn event_counts(&self, tenant_id: i64, since: Timestamp) -> CoreResult<Vec<DayCount>> {
        self.read(job!(|c| counts(c, tenant_id, since))).await
    }
    async fn sweep_events(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        if self.sequencer.is_some() {
            for tenant_id in self.read(job!(|c| unsequenced_tenants(c))).await? {
                self.settle_changes(tenant_id).await?;
            }
        }
        self.write(job!(|c| sweep(c, before, batch))).await
    }
    async fn changes(&self, tenant_id: i64, after: i64, limit: u32) -> CoreResult<Vec<Event>> {
        self.settle_changes(tenant_id).await?;
        self.read(job!(|c| changes(c, tenant_id, after, limit)))
            .await
    }
    async fn change_bounds(&self, tenant_id: i64) -> CoreResult<scim_core::change::ChangeBounds> {
        self.settle_changes(tenant_id).await?;
        self.read(job!(|c| change_bounds(c, tenant_id))).await
    }
}
