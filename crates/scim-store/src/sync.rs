//! The provisioning engine's tables: jobs, ledger, cycles, per-object log.

use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::{Arg, SqlBuf};
use scim_core::{
    CycleRecord, Escrow, LedgerEntry, SourceFile, SourceFileInfo, SyncJobRecord, SyncLogQuery,
    SyncLogRecord, Timestamp,
};
use serde_json::Value;

fn json_of(row: &Row, i: usize) -> Result<Value, StoreError> {
    let t = row.text(i)?;
    serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

const JOB_COLUMNS: &str = "name, spec, sealed_secret, enabled, state, created_at, updated_at";

fn job_from(row: &Row) -> Result<SyncJobRecord, StoreError> {
    Ok(SyncJobRecord {
        name: row.text(0)?,
        spec: row.text(1)?,
        sealed_secret: row.opt_text(2)?,
        enabled: row.int(3)? != 0,
        state: json_of(row, 4)?,
        created_at: row.ts(5)?,
        updated_at: row.ts(6)?,
    })
}

pub(crate) async fn put_job(c: &mut Conn<'_>, j: &SyncJobRecord) -> Result<(), StoreError> {
    c.exec(
        &format!(
            "INSERT INTO sync_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, \
             sealed_secret = excluded.sealed_secret, enabled = excluded.enabled, \
             updated_at = excluded.updated_at"
        ),
        &[
            Arg::text(&j.name),
            Arg::text(&j.spec),
            Arg::opt_text(j.sealed_secret.as_deref()),
            Arg::Int(i64::from(j.enabled)),
            Arg::Text(j.state.to_string()),
            Arg::ts(j.created_at),
            Arg::ts(j.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn job(c: &mut Conn<'_>, name: &str) -> Result<Option<SyncJobRecord>, StoreError> {
    c.fetch_optional(
        &format!("SELECT {JOB_COLUMNS} FROM sync_jobs WHERE name = $1"),
        &[Arg::text(name)],
    )
    .await?
    .as_ref()
    .map(job_from)
    .transpose()
}

pub(crate) async fn jobs(c: &mut Conn<'_>) -> Result<Vec<SyncJobRecord>, StoreError> {
    c.fetch(
        &format!("SELECT {JOB_COLUMNS} FROM sync_jobs ORDER BY name"),
        &[],
    )
    .await?
    .iter()
    .map(job_from)
    .collect()
}

pub(crate) async fn delete_job(c: &mut Conn<'_>, name: &str) -> Result<bool, StoreError> {
    let n = [Arg::text(name)];
    for sql in [
        "DELETE FROM sync_ledger WHERE job = $1",
        "DELETE FROM sync_cycles WHERE job = $1",
        "DELETE FROM sync_log WHERE job = $1",
        "DELETE FROM sync_source_files WHERE job = $1",
    ] {
        c.exec(sql, &n).await?;
    }
    Ok(c.exec("DELETE FROM sync_jobs WHERE name = $1", &n).await? == 1)
}

pub(crate) async fn put_source_file(
    c: &mut Conn<'_>,
    job: &str,
    f: &SourceFile,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO sync_source_files (job, name, content, uploaded_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (job) DO UPDATE SET name = excluded.name, content = excluded.content, \
         uploaded_at = excluded.uploaded_at",
        &[
            Arg::text(job),
            Arg::text(&f.name),
            Arg::text(&f.content),
            Arg::ts(f.uploaded_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn source_file(
    c: &mut Conn<'_>,
    job: &str,
) -> Result<Option<SourceFile>, StoreError> {
    c.fetch_optional(
        "SELECT name, content, uploaded_at FROM sync_source_files WHERE job = $1",
        &[Arg::text(job)],
    )
    .await?
    .map(|row| {
        Ok(SourceFile {
            name: row.text(0)?,
            content: row.text(1)?,
            uploaded_at: row.ts(2)?,
        })
    })
    .transpose()
}

pub(crate) async fn source_file_info(
    c: &mut Conn<'_>,
    job: &str,
) -> Result<Option<SourceFileInfo>, StoreError> {
    // The size in bytes, counted by the database: the content is not read out.
    let bytes = match c {
        Conn::Pg(_) => "octet_length(content)::BIGINT",
        Conn::Lite(_) => "length(CAST(content AS BLOB))",
    };
    c.fetch_optional(
        &format!("SELECT name, {bytes}, uploaded_at FROM sync_source_files WHERE job = $1"),
        &[Arg::text(job)],
    )
    .await?
    .map(|row| {
        Ok(SourceFileInfo {
            name: row.text(0)?,
            bytes: u64::try_from(row.int(1)?).unwrap_or(0),
            uploaded_at: row.ts(2)?,
        })
    })
    .transpose()
}

pub(crate) async fn set_state(
    c: &mut Conn<'_>,
    name: &str,
    state: &Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE sync_jobs SET state = $2, updated_at = $3 WHERE name = $1",
        &[Arg::text(name), Arg::Text(state.to_string()), Arg::ts(now)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_enabled(
    c: &mut Conn<'_>,
    name: &str,
    enabled: bool,
    now: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "UPDATE sync_jobs SET enabled = $2, updated_at = $3 WHERE name = $1",
        &[Arg::text(name), Arg::Int(i64::from(enabled)), Arg::ts(now)],
    )
    .await?
        == 1)
}

const LEDGER_COLUMNS: &str = "job, kind, source_id, target_id, state, source, exported, pending, \
                              due_at, updated_at, failures, failed_since, retry_at";

fn entry_from(row: &Row) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        job: row.text(0)?,
        kind: row.text(1)?,
        source_id: row.text(2)?,
        target_id: row.opt_text(3)?,
        state: row.text(4)?,
        source: json_of(row, 5)?,
        exported: json_of(row, 6)?,
        pending: row.opt_text(7)?,
        due_at: row.opt_ts(8)?,
        updated_at: row.ts(9)?,
        escrow: match (row.int(10)?, row.opt_ts(11)?, row.opt_ts(12)?) {
            (n, Some(since), Some(retry_at)) if n > 0 => Some(Escrow {
                failures: u32::try_from(n).unwrap_or(u32::MAX),
                since,
                retry_at,
            }),
            _ => None,
        },
    })
}

pub(crate) async fn ledger(c: &mut Conn<'_>, job: &str) -> Result<Vec<LedgerEntry>, StoreError> {
    c.fetch(
        &format!(
            "SELECT {LEDGER_COLUMNS} FROM sync_ledger WHERE job = $1 ORDER BY kind DESC, source_id"
        ),
        &[Arg::text(job)],
    )
    .await?
    .iter()
    .map(entry_from)
    .collect()
}

const LOG_COLUMNS: &str = "seq, job, cycle_id, change_id, at, kind, source_id, target_id, display, \
                           action, status, steps, changes, error_code, duration_ms";

fn log_from(row: &Row) -> Result<SyncLogRecord, StoreError> {
    Ok(SyncLogRecord {
        seq: row.int(0)?,
        job: row.text(1)?,
        cycle_id: row.text(2)?,
        change_id: row.text(3)?,
        at: row.ts(4)?,
        kind: row.text(5)?,
        source_id: row.text(6)?,
        target_id: row.opt_text(7)?,
        display: row.text(8)?,
        action: row.text(9)?,
        status: row.text(10)?,
        steps: json_of(row, 11)?,
        changes: json_of(row, 12)?,
        error_code: row.opt_text(13)?,
        duration_ms: row.int(14)?,
    })
}

/// Ledger upserts and log inserts, inside the caller's transaction.
pub(crate) async fn record(
    c: &mut Conn<'_>,
    entries: &[LedgerEntry],
    log: &[SyncLogRecord],
) -> Result<(), StoreError> {
    for e in entries {
        c.exec(
            &format!(
                "INSERT INTO sync_ledger ({LEDGER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (job, kind, source_id) DO UPDATE SET target_id = excluded.target_id, \
                 state = excluded.state, source = excluded.source, exported = excluded.exported, \
                 pending = excluded.pending, due_at = excluded.due_at, updated_at = excluded.updated_at, \
                 failures = excluded.failures, failed_since = excluded.failed_since, \
                 retry_at = excluded.retry_at"
            ),
            &[
                Arg::text(&e.job),
                Arg::text(&e.kind),
                Arg::text(&e.source_id),
                Arg::opt_text(e.target_id.as_deref()),
                Arg::text(&e.state),
                Arg::Text(e.source.to_string()),
                Arg::Text(e.exported.to_string()),
                Arg::opt_text(e.pending.as_deref()),
                Arg::opt_ts(e.due_at),
                Arg::ts(e.updated_at),
                Arg::Int(e.escrow.map_or(0, |x| i64::from(x.failures))),
                Arg::opt_ts(e.escrow.map(|x| x.since)),
                Arg::opt_ts(e.escrow.map(|x| x.retry_at)),
            ],
        )
        .await?;
    }
    for r in log {
        c.exec(
            "INSERT INTO sync_log (job, cycle_id, change_id, at, kind, source_id, target_id, display, \
             action, status, steps, changes, error_code, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                Arg::text(&r.job),
                Arg::text(&r.cycle_id),
                Arg::text(&r.change_id),
                Arg::ts(r.at),
                Arg::text(&r.kind),
                Arg::text(&r.source_id),
                Arg::opt_text(r.target_id.as_deref()),
                Arg::text(&r.display),
                Arg::text(&r.action),
                Arg::text(&r.status),
                Arg::Text(r.steps.to_string()),
                Arg::Text(r.changes.to_string()),
                Arg::opt_text(r.error_code.as_deref()),
                Arg::Int(r.duration_ms),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn log(
    c: &mut Conn<'_>,
    job: &str,
    q: &SyncLogQuery,
) -> Result<Vec<SyncLogRecord>, StoreError> {
    let mut buf = SqlBuf::default();
    let j = buf.bind(Arg::text(job));
    let mut sql = format!("SELECT {LOG_COLUMNS} FROM sync_log WHERE job = {j}");
    if let Some(cy) = &q.cycle_id {
        sql += &format!(" AND cycle_id = {}", buf.bind(Arg::text(cy)));
    }
    if let Some(a) = &q.action {
        sql += &format!(
            " AND LOWER(action) = {}",
            buf.bind(Arg::Text(a.to_lowercase()))
        );
    }
    if let Some(s) = &q.status {
        sql += &format!(
            " AND LOWER(status) = {}",
            buf.bind(Arg::Text(s.to_lowercase()))
        );
    }
    if let Some(o) = &q.object {
        let p = buf.bind(Arg::text(o));
        let l = buf.bind(Arg::Text(o.to_lowercase()));
        sql += &format!(" AND (source_id = {p} OR target_id = {p} OR LOWER(display) = {l})");
    }
    if let Some(b) = q.before_seq {
        sql += &format!(" AND seq < {}", buf.bind(Arg::Int(b)));
    }
    let limit = buf.bind(Arg::Int(i64::from(q.limit.clamp(1, 100_000))));
    sql += &format!(" ORDER BY seq DESC LIMIT {limit}");
    c.fetch(&sql, &buf.args)
        .await?
        .iter()
        .map(log_from)
        .collect()
}

const CYCLE_COLUMNS: &str = "job, cycle_id, started_at, finished_at, mode, status, counts";

pub(crate) async fn save_cycle(c: &mut Conn<'_>, cy: &CycleRecord) -> Result<(), StoreError> {
    c.exec(
        &format!(
            "INSERT INTO sync_cycles ({CYCLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (job, cycle_id) DO UPDATE SET finished_at = excluded.finished_at, \
             status = excluded.status, counts = excluded.counts"
        ),
        &[
            Arg::text(&cy.job),
            Arg::text(&cy.cycle_id),
            Arg::ts(cy.started_at),
            Arg::opt_ts(cy.finished_at),
            Arg::text(&cy.mode),
            Arg::text(&cy.status),
            Arg::Text(cy.counts.to_string()),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn cycles(
    c: &mut Conn<'_>,
    job: &str,
    limit: u32,
) -> Result<Vec<CycleRecord>, StoreError> {
    c.fetch(
        &format!("SELECT {CYCLE_COLUMNS} FROM sync_cycles WHERE job = $1 ORDER BY started_at DESC LIMIT $2"),
        &[Arg::text(job), Arg::Int(i64::from(limit.clamp(1, 10_000)))],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(CycleRecord {
            job: row.text(0)?,
            cycle_id: row.text(1)?,
            started_at: row.ts(2)?,
            finished_at: row.opt_ts(3)?,
            mode: row.text(4)?,
            status: row.text(5)?,
            counts: json_of(row, 6)?,
        })
    })
    .collect()
}

pub(crate) async fn sweep_log(
    c: &mut Conn<'_>,
    before: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    crate::events::sweep_older(c, "sync_log", "seq", "", before, batch).await
}
