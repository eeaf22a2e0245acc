//! The provisioning engine's tables (jobs, ledger, cycles, per-object log) and
//! [`SyncStore`] over them. Every record is typed in scim-core; this file converts it to
//! and from its columns, once: enums as their names, structured parts as JSON text.

use crate::conn::{Conn, Row};
use crate::sql_filter::{Arg, SqlBuf};
use crate::{SqlStore, StoreError, leases};
use async_trait::async_trait;
use scim_core::store::LeaseFence;
use scim_core::{
    CoreResult, CycleMode, CycleRecord, CycleStatus, ErrorCode, Escrow, JobSnapshot, JobState,
    LedgerEntry, LedgerState, Pending, ResourceKind, SourceFile, SourceFileInfo, SourceObject,
    Status, SyncAction, SyncJobRecord, SyncLogQuery, SyncLogRecord, SyncStore, Timestamp,
};
use serde::de::DeserializeOwned;

/// A JSON column as its type.
fn json_of<T: DeserializeOwned>(row: &Row, i: usize) -> Result<T, StoreError> {
    let t = row.text(i)?;
    serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot write JSON: {e}")))
}

/// A name column as its enum.
fn named<T>(row: &Row, i: usize, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let t = row.text(i)?;
    parse(&t).ok_or_else(|| StoreError::Corrupt(format!("column {i}: unknown value '{t}'")))
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

async fn put_job(c: &mut Conn<'_>, j: &SyncJobRecord) -> Result<(), StoreError> {
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
            Arg::Text(json_text(&j.state)?),
            Arg::ts(j.created_at),
            Arg::ts(j.updated_at),
        ],
    )
    .await?;
    Ok(())
}

/// A new job; a job of that name is a unique violation (a `Conflict`).
async fn create_job(c: &mut Conn<'_>, j: &SyncJobRecord) -> Result<(), StoreError> {
    c.exec(
        &format!("INSERT INTO sync_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &[
            Arg::text(&j.name),
            Arg::text(&j.spec),
            Arg::opt_text(j.sealed_secret.as_deref()),
            Arg::Int(i64::from(j.enabled)),
            Arg::Text(json_text(&j.state)?),
            Arg::ts(j.created_at),
            Arg::ts(j.updated_at),
        ],
    )
    .await
    .map_err(|e| e.unique_as(format!("a job named '{}' exists already", j.name)))?;
    Ok(())
}

async fn job(c: &mut Conn<'_>, name: &str) -> Result<Option<SyncJobRecord>, StoreError> {
    c.fetch_optional(
        &format!("SELECT {JOB_COLUMNS} FROM sync_jobs WHERE name = $1"),
        &[Arg::text(name)],
    )
    .await?
    .as_ref()
    .map(job_from)
    .transpose()
}

async fn jobs(c: &mut Conn<'_>) -> Result<Vec<SyncJobRecord>, StoreError> {
    c.fetch(
        &format!("SELECT {JOB_COLUMNS} FROM sync_jobs ORDER BY name"),
        &[],
    )
    .await?
    .iter()
    .map(job_from)
    .collect()
}

async fn delete_job(c: &mut Conn<'_>, name: &str) -> Result<bool, StoreError> {
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

async fn put_source_file(c: &mut Conn<'_>, job: &str, f: &SourceFile) -> Result<(), StoreError> {
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

async fn source_file(c: &mut Conn<'_>, job: &str) -> Result<Option<SourceFile>, StoreError> {
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

async fn source_file_info(
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

async fn set_state(
    c: &mut Conn<'_>,
    name: &str,
    state: &JobState,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE sync_jobs SET state = $2, updated_at = $3 WHERE name = $1",
        &[Arg::text(name), Arg::Text(json_text(state)?), Arg::ts(now)],
    )
    .await?;
    Ok(())
}

async fn set_enabled(
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
                              due_at, updated_at, failures, failed_since, retry_at, gone_since";

fn entry_from(row: &Row) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        job: row.text(0)?,
        kind: named(row, 1, ResourceKind::parse)?,
        source_id: row.text(2)?,
        target_id: row.opt_text(3)?,
        state: named(row, 4, LedgerState::parse)?,
        source: json_of::<Option<SourceObject>>(row, 5)?,
        gone_since: row.opt_ts(13)?,
        exported: json_of(row, 6)?,
        // A step written by an older version in a form no longer read (a staged delete whose
        // trigger was not recorded) is dropped: the next cycle plans that object again.
        pending: row.opt_text(7)?.as_deref().and_then(Pending::parse),
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

async fn ledger(c: &mut Conn<'_>, job: &str) -> Result<Vec<LedgerEntry>, StoreError> {
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
        kind: named(row, 5, ResourceKind::parse)?,
        source_id: row.text(6)?,
        target_id: row.opt_text(7)?,
        display: row.text(8)?,
        action: named(row, 9, SyncAction::parse)?,
        status: named(row, 10, Status::parse)?,
        steps: json_of(row, 11)?,
        changes: json_of(row, 12)?,
        error_code: row.opt_text(13)?.as_deref().and_then(ErrorCode::parse),
        duration_ms: row.int(14)?,
    })
}

/// Ledger upserts and log inserts, inside the caller's transaction.
async fn record(
    c: &mut Conn<'_>,
    entries: &[LedgerEntry],
    log: &[SyncLogRecord],
) -> Result<(), StoreError> {
    for e in entries {
        c.exec(
            &format!(
                "INSERT INTO sync_ledger ({LEDGER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (job, kind, source_id) DO UPDATE SET target_id = excluded.target_id, \
                 state = excluded.state, source = excluded.source, exported = excluded.exported, \
                 pending = excluded.pending, due_at = excluded.due_at, updated_at = excluded.updated_at, \
                 failures = excluded.failures, failed_since = excluded.failed_since, \
                 retry_at = excluded.retry_at, gone_since = excluded.gone_since"
            ),
            &[
                Arg::text(&e.job),
                Arg::text(e.kind.as_str()),
                Arg::text(&e.source_id),
                Arg::opt_text(e.target_id.as_deref()),
                Arg::text(e.state.as_str()),
                Arg::Text(json_text(&e.source)?),
                Arg::Text(json_text(&e.exported)?),
                Arg::opt_text(e.pending.map(|p| p.render()).as_deref()),
                Arg::opt_ts(e.due_at),
                Arg::ts(e.updated_at),
                Arg::Int(e.escrow.map_or(0, |x| i64::from(x.failures))),
                Arg::opt_ts(e.escrow.map(|x| x.since)),
                Arg::opt_ts(e.escrow.map(|x| x.retry_at)),
                Arg::opt_ts(e.gone_since),
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
                Arg::text(r.kind.as_str()),
                Arg::text(&r.source_id),
                Arg::opt_text(r.target_id.as_deref()),
                Arg::text(&r.display),
                Arg::text(r.action.as_str()),
                Arg::text(r.status.as_str()),
                Arg::Text(json_text(&r.steps)?),
                Arg::Text(json_text(&r.changes)?),
                Arg::opt_text(r.error_code.map(ErrorCode::as_str)),
                Arg::Int(r.duration_ms),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn log(
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
    if let Some(a) = q.action {
        sql += &format!(" AND action = {}", buf.bind(Arg::text(a.as_str())));
    }
    if let Some(s) = q.status {
        sql += &format!(" AND status = {}", buf.bind(Arg::text(s.as_str())));
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

async fn save_cycle(c: &mut Conn<'_>, cy: &CycleRecord) -> Result<(), StoreError> {
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
            Arg::text(cy.mode.as_str()),
            Arg::text(cy.status.as_str()),
            Arg::Text(json_text(&cy.counts)?),
        ],
    )
    .await?;
    Ok(())
}

async fn cycles(c: &mut Conn<'_>, job: &str, limit: u32) -> Result<Vec<CycleRecord>, StoreError> {
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
            mode: named(row, 4, CycleMode::parse)?,
            status: named(row, 5, CycleStatus::parse)?,
            counts: json_of(row, 6)?,
        })
    })
    .collect()
}

/// The engine's per-object log rows, and the cycles, older than `before` (a batch of
/// each). A job's newest cycle is kept whatever its age: it is the job's "last cycle".
async fn sweep_log(c: &mut Conn<'_>, before: Timestamp, batch: u32) -> Result<u64, StoreError> {
    let rows = crate::events::sweep_older(c, "sync_log", "seq", "", before, batch).await?;
    let cycles = c
        .exec(
            "DELETE FROM sync_cycles WHERE (job, cycle_id) IN \
             (SELECT o.job, o.cycle_id FROM sync_cycles o WHERE o.started_at < $1 \
              AND o.started_at < (SELECT MAX(n.started_at) FROM sync_cycles n WHERE n.job = o.job) \
              ORDER BY o.started_at LIMIT $2)",
            &[Arg::ts(before), Arg::Int(i64::from(batch.max(1)))],
        )
        .await?;
    Ok(rows + cycles)
}

#[async_trait]
impl SyncStore for SqlStore {
    async fn put_job(&self, job: &SyncJobRecord) -> CoreResult<()> {
        let job = job.clone();
        self.write(job!(|c| put_job(c, &job))).await
    }

    async fn job(&self, name: &str) -> CoreResult<Option<SyncJobRecord>> {
        let name = name.to_string();
        self.read(job!(|c| job(c, &name))).await
    }

    async fn jobs(&self) -> CoreResult<Vec<SyncJobRecord>> {
        self.read(job!(|c| jobs(c))).await
    }

    async fn create_job(&self, job: &SyncJobRecord, file: Option<&SourceFile>) -> CoreResult<()> {
        let (job, file) = (job.clone(), file.cloned());
        self.write(job!(|c| async move {
            create_job(c, &job).await?;
            if let Some(f) = &file {
                put_source_file(c, &job.name, f).await?;
            }
            Ok(())
        }))
        .await
    }

    async fn delete_job(&self, name: &str) -> CoreResult<bool> {
        let name = name.to_string();
        self.write(job!(|c| delete_job(c, &name))).await
    }

    async fn put_source_file(&self, job: &str, file: &SourceFile) -> CoreResult<()> {
        let (job, file) = (job.to_string(), file.clone());
        self.write(job!(|c| put_source_file(c, &job, &file))).await
    }

    async fn source_file(&self, job: &str) -> CoreResult<Option<SourceFile>> {
        let job = job.to_string();
        self.read(job!(|c| source_file(c, &job))).await
    }

    async fn source_file_info(&self, job: &str) -> CoreResult<Option<SourceFileInfo>> {
        let job = job.to_string();
        self.read(job!(|c| source_file_info(c, &job))).await
    }

    async fn set_job_state(
        &self,
        fence: Option<&LeaseFence>,
        name: &str,
        state: &JobState,
        now: Timestamp,
    ) -> CoreResult<()> {
        let (fence, name, state) = (fence.cloned(), name.to_string(), state.clone());
        self.write(job!(|c| async move {
            leases::check_fence(c, fence.as_ref()).await?;
            set_state(c, &name, &state, now).await
        }))
        .await
    }

    async fn set_job_enabled(&self, name: &str, enabled: bool, now: Timestamp) -> CoreResult<bool> {
        let name = name.to_string();
        self.write(job!(|c| set_enabled(c, &name, enabled, now)))
            .await
    }

    async fn ledger(&self, job: &str) -> CoreResult<Vec<LedgerEntry>> {
        let job = job.to_string();
        self.read(job!(|c| ledger(c, &job))).await
    }

    async fn record_sync(
        &self,
        fence: Option<&LeaseFence>,
        entries: &[LedgerEntry],
        log: &[SyncLogRecord],
    ) -> CoreResult<()> {
        let (fence, entries, log) = (fence.cloned(), entries.to_vec(), log.to_vec());
        self.write(job!(|c| async move {
            leases::check_fence(c, fence.as_ref()).await?;
            record(c, &entries, &log).await
        }))
        .await
    }

    async fn sync_log(&self, job: &str, q: &SyncLogQuery) -> CoreResult<Vec<SyncLogRecord>> {
        let (job, q) = (job.to_string(), q.clone());
        self.read(job!(|c| log(c, &job, &q))).await
    }

    async fn save_cycle(&self, cycle: &CycleRecord) -> CoreResult<()> {
        let cycle = cycle.clone();
        self.write(job!(|c| save_cycle(c, &cycle))).await
    }

    async fn finish_cycle(
        &self,
        fence: Option<&LeaseFence>,
        cycle: &CycleRecord,
        state: &JobState,
        now: Timestamp,
    ) -> CoreResult<()> {
        let (fence, cycle, state) = (fence.cloned(), cycle.clone(), state.clone());
        self.write(job!(|c| async move {
            leases::check_fence(c, fence.as_ref()).await?;
            save_cycle(c, &cycle).await?;
            set_state(c, &cycle.job, &state, now).await
        }))
        .await
    }

    async fn job_snapshot(&self, name: &str, newest: u32) -> CoreResult<Option<JobSnapshot>> {
        let name = name.to_string();
        self.snapshot(job!(|c| async move {
            let Some(record) = job(c, &name).await? else {
                return Ok(None);
            };
            let ledger = ledger(c, &name).await?;
            let cycles = cycles(c, &name, newest).await?;
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
        self.read(job!(|c| cycles(c, &job, limit))).await
    }

    async fn sweep_sync_log(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        self.write(job!(|c| sweep_log(c, before, batch))).await
    }
}
