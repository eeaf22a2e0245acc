//! SQLite's resource hot path: one writer thread with group commit, and a pool of reader
//! connections, both on rusqlite with cached prepared statements.
//!
//! Why not sqlx here: sqlx runs every SQLite statement on a worker thread and hands each
//! result back through a channel, so a create (5–6 statements) paid 5–6 thread hand-offs
//! while holding the database's single write lock; profiles showed most CPU in the kernel's
//! scheduler and futex paths, and creates topped out near 1,400/s.
//!
//! Group commit: requests queue on a channel; the writer takes everything queued (up to
//! [`MAX_BATCH`]), opens one transaction, runs each request inside its own SAVEPOINT (a failed
//! request is rolled back alone), commits once, and only then answers every request. An
//! acknowledged write is therefore committed, and with `synchronous=FULL` one fsync covers
//! the whole batch.

use crate::StoreError;
use crate::conn::{Conn, Fut, run_now};
use scim_core::ResourceKind;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The most requests one transaction carries.
const MAX_BATCH: usize = 512;

/// A unit of work for the writer: runs inside a savepoint, answers after the commit.
trait Job: Send {
    /// Runs the request; `false` if it failed (its savepoint is rolled back).
    fn run(&mut self, db: &mut rusqlite::Connection) -> bool;
    /// Sends the outcome; `commit_failed` replaces a success with an error.
    fn answer(self: Box<Self>, commit_failed: Option<String>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send,
{
    fn run(&mut self, db: &mut rusqlite::Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let r = {
            let mut c = Conn::Lite(db);
            run_now(work(&mut c))
        };
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn answer(self: Box<Self>, commit_failed: Option<String>) {
        let r = match (self.result, commit_failed) {
            (Some(Ok(_)), Some(e)) => Err(StoreError::Internal(format!("commit failed: {e}"))),
            (Some(r), _) => r,
            (None, _) => Err(StoreError::WriterStopped),
        };
        let _ = self.reply.send(r);
    }
}

pub(crate) struct SqliteEngine {
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    readers: Mutex<Vec<rusqlite::Connection>>,
    path: String,
    synchronous: &'static str,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tells the checkpointer to end.
    stop: Arc<AtomicBool>,
    /// Unfiltered resource counts per (tenant, kind), so listing a million users does not
    /// `COUNT(*)` them for every page. Valid because one process owns a SQLite file.
    counts: Mutex<HashMap<(i64, ResourceKind), Count>>,
}

/// An in-flight create or delete, as far as the cached counts are concerned.
pub(crate) struct CountChange<'a> {
    engine: &'a SqliteEngine,
    key: (i64, ResourceKind),
    delta: Option<i64>,
}

impl CountChange<'_> {
    /// +1 for a committed create, -1 for a committed delete, 0 when nothing changed.
    pub fn finish(mut self, delta: i64) {
        self.delta = Some(delta);
    }
}

impl Drop for CountChange<'_> {
    fn drop(&mut self) {
        self.engine.change_ended(self.key, self.delta);
    }
}

/// A cached count and a generation bumped by every change, so a count computed while a
/// change committed is not cached.
#[derive(Default, Clone, Copy)]
struct Count {
    generation: u64,
    /// Creates/deletes submitted and not yet accounted for: a count read meanwhile may or
    /// may not include them, so it is not cached.
    pending: u64,
    value: Option<i64>,
}

/// SQLite page-cache sizes (KiB). The readers' caches are small on purpose: they count in
/// the process's memory, while the operating system's file cache behind them does not; the
/// writer's is larger because it dirties index pages across a whole batch.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
const READER_CACHE_KIB: u32 = 4 * 1024;
/// Reader connections kept open between requests: one per concurrent reader at the
/// concurrency IdPs and the benchmarks use, so connections (and their parsed schema) are
/// reused rather than reopened; 16 × 4 MiB of cache at most.
const MAX_IDLE_READERS: usize = 16;

fn open(path: &str, synchronous: &str, cache_kib: u32) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
         PRAGMA case_sensitive_like = ON; PRAGMA cache_size = -{cache_kib};"
    ))?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Copies the WAL back into the database without blocking the writer (`PASSIVE`): every
/// 10 ms while writes keep coming, every 250 ms when a pass found nothing left to copy. Once
/// a checkpoint has caught up, the next write starts the WAL from its beginning, so it stays
/// small. (`RESTART`/`TRUNCATE` would block the writer: they stalled requests for over a
/// second in measurements.) Stops when the engine closes.
///
/// The short period under load is for the writer's own checkpoint (below): it copies only
/// what arrived since this thread's last pass, so it is short. With 250 ms the writer copied
/// up to 250 ms of frames and the p99 of creates and PATCHes was 30 ms; with 10 ms it is
/// 6 ms (docs/performance.md, "SQLite tail latency").
fn checkpoint_loop(conn: rusqlite::Connection, stop: Arc<AtomicBool>) {
    let mut pause = IDLE_CHECKPOINT_PERIOD;
    while !stop.load(AtomicOrdering::Relaxed) {
        std::thread::sleep(pause);
        pause = match checkpoint_passive(&conn) {
            Ok((log, copied)) if copied < log => BUSY_CHECKPOINT_PERIOD,
            Ok(_) => IDLE_CHECKPOINT_PERIOD,
            Err(e) => {
                tracing::debug!(error = %e, "SQLite checkpoint skipped");
                IDLE_CHECKPOINT_PERIOD
            }
        };
    }
}

const BUSY_CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);
const IDLE_CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(250);

/// One `PASSIVE` checkpoint: (frames in the WAL, frames copied back), both as SQLite
/// reports them after the pass (-1 when the database is not in WAL mode).
fn checkpoint_passive(conn: &rusqlite::Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

/// Under a continuous write load the WAL never restarts on its own: the background
/// checkpoint is never complete at the moment the next batch begins. So every
/// [`CHECKPOINT_EVERY_BATCHES`] batches the writer itself checkpoints between batches
/// (`PASSIVE`; the background thread copied all but the last few milliseconds of frames,
/// so this is short); with the copy complete and no writer active, the next transaction
/// starts the WAL from its beginning again.
/// Measured: 50 kept the WAL near 27 MB but its fsyncs cost 15% of create throughput; 400
/// with the 10 ms background pass gives the lowest p99 (the WAL peaks near 300 MB under a
/// sustained create load, and is truncated when scimd stops).
const CHECKPOINT_EVERY_BATCHES: u32 = 400;

fn checkpoint_between_batches(conn: &rusqlite::Connection, batches: &mut u32) {
    *batches += 1;
    if *batches < CHECKPOINT_EVERY_BATCHES {
        return;
    }
    *batches = 0;
    if let Err(e) = checkpoint_passive(conn) {
        tracing::debug!(error = %e, "SQLite checkpoint skipped");
    }
}

fn writer_loop(mut conn: rusqlite::Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut batches = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        metrics::histogram!("scimd_sqlite_commit_batch_size").record(batch.len() as f64);
        metrics::gauge!("scimd_sqlite_writer_queue").decrement(batch.len() as f64);
        let failed = run_batch(&mut conn, &mut batch)
            .err()
            .map(|e| e.to_string());
        if let Some(e) = &failed {
            tracing::error!(error = %e, requests = batch.len(), "SQLite group commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in batch {
            job.answer(failed.clone());
        }
        checkpoint_between_batches(&conn, &mut batches);
    }
    // Closing: copy the WAL back into the database, so a cleanly stopped scimd leaves one
    // self-contained file.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final SQLite checkpoint failed");
    }
}

fn run_batch(
    conn: &mut rusqlite::Connection,
    batch: &mut [Box<dyn Job>],
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        conn.execute_batch("SAVEPOINT request")?;
        let ok = job.run(conn);
        if ok {
            conn.execute_batch("RELEASE request")?;
        } else {
            conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// A new database file is created readable by its owner only (0600): it holds token hashes,
/// sealed secrets and every identity. SQLite gives its `-wal` and `-shm` files the database
/// file's permissions. An existing file keeps the permissions it has.
fn create_private(path: &str) -> Result<(), StoreError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Config(format!(
            "cannot create the database file {path}: {e}"
        ))),
    }
}

impl SqliteEngine {
    /// Opens the writer and prepares up to `readers` reader connections (opened on demand).
    pub fn start(path: &str, power_loss_durable: bool) -> Result<Self, StoreError> {
        create_private(path)?;
        let synchronous = if power_loss_durable { "FULL" } else { "NORMAL" };
        let conn = open(path, synchronous, WRITER_CACHE_KIB)?;
        // Checkpoints run beside the writer (below), not inside its commits: an in-line
        // autocheckpoint stalled every request of the batch that crossed 1,000 WAL pages.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        let checkpoint_conn = open(path, synchronous, READER_CACHE_KIB)?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = std::thread::Builder::new()
            .name("scimd-sqlite-checkpoint".into())
            .spawn({
                let stop = stop.clone();
                move || checkpoint_loop(checkpoint_conn, stop)
            })
            .map_err(|e| {
                StoreError::Internal(format!("cannot start the SQLite checkpointer: {e}"))
            })?;
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("scimd-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            readers: Mutex::new(Vec::new()),
            path: path.to_string(),
            synchronous,
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
            stop,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `work` in the next group-commit transaction; answers after the commit.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob {
            work: Some(work),
            result: None,
            reply,
        });
        {
            let guard = self.jobs.lock().map_err(|_| StoreError::WriterStopped)?;
            guard
                .as_ref()
                .ok_or(StoreError::WriterStopped)?
                .send(job)
                .map_err(|_| StoreError::WriterStopped)?;
            metrics::gauge!("scimd_sqlite_writer_queue").increment(1.0);
        }
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Runs `work` on a reader connection on the blocking pool.
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        self.on_reader(false, work).await
    }

    /// Runs `work` in one read transaction on a reader connection: in WAL mode every
    /// statement in it sees the database as of its first read.
    pub async fn snapshot<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        self.on_reader(true, work).await
    }

    /// Runs `work` on a reader connection on the calling thread, without the hand-off to the
    /// blocking pool and back (two thread wake-ups: a third of a lookup's CPU,
    /// docs/performance.md). Only for reads bounded by construction — one row by a unique
    /// key, microseconds — which block an async worker no longer than rendering their answer.
    pub async fn read_inline<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        let mut conn = self.reader()?;
        let r = {
            let mut c = Conn::Lite(&mut conn);
            run_now(work(&mut c))
        };
        self.put_back(conn);
        r
    }

    /// A pooled reader connection, or a new one.
    fn reader(&self) -> Result<rusqlite::Connection, StoreError> {
        match self.readers.lock().ok().and_then(|mut r| r.pop()) {
            Some(c) => Ok(c),
            None => open(&self.path, self.synchronous, READER_CACHE_KIB),
        }
    }

    /// Back to the pool, unless the pool is full or the connection is still in a transaction.
    fn put_back(&self, conn: rusqlite::Connection) {
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < MAX_IDLE_READERS
            && conn.is_autocommit()
        {
            pool.push(conn);
        }
    }

    async fn on_reader<T, F>(&self, snapshot: bool, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn<'c>) -> Fut<'c, T> + Send + 'static,
    {
        let mut conn = self.reader()?;
        let (conn, r) = tokio::task::spawn_blocking(move || {
            if snapshot && let Err(e) = conn.execute_batch("BEGIN DEFERRED") {
                return (conn, Err(e.into()));
            }
            let r = {
                let mut c = Conn::Lite(&mut conn);
                run_now(work(&mut c))
            };
            // Read only: ending it either way changes nothing; a connection that cannot
            // end its transaction is not put back in the pool.
            if snapshot && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            (conn, r)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("SQLite reader task failed: {e}")))?;
        self.put_back(conn);
        r
    }

    /// The cached unfiltered count and the generation to hand back to [`Self::remember_count`].
    pub fn cached_count(&self, tenant_id: i64, kind: ResourceKind) -> (Option<i64>, u64) {
        self.counts
            .lock()
            .ok()
            .and_then(|c| c.get(&(tenant_id, kind)).copied())
            .map_or((None, 0), |c| (c.value, c.generation))
    }

    /// Caches a count read at `generation`, unless a change started or ended since.
    pub fn remember_count(&self, tenant_id: i64, kind: ResourceKind, generation: u64, value: i64) {
        if let Ok(mut c) = self.counts.lock() {
            let e = c.entry((tenant_id, kind)).or_default();
            if e.generation == generation && e.pending == 0 {
                e.value = Some(value);
            }
        }
    }

    /// Before submitting a create or delete; finish the guard with the change's effect.
    pub fn change_started(&self, tenant_id: i64, kind: ResourceKind) -> CountChange<'_> {
        if let Ok(mut c) = self.counts.lock() {
            let e = c.entry((tenant_id, kind)).or_default();
            e.generation += 1;
            e.pending += 1;
        }
        CountChange {
            engine: self,
            key: (tenant_id, kind),
            delta: None,
        }
    }

    fn change_ended(&self, key: (i64, ResourceKind), delta: Option<i64>) {
        if let Ok(mut c) = self.counts.lock() {
            let e = c.entry(key).or_default();
            e.generation += 1;
            e.pending = e.pending.saturating_sub(1);
            // Unknown effect (the request was dropped mid-flight): count again next time.
            e.value = match delta {
                Some(d) => e.value.map(|v| v + d),
                None => None,
            };
        }
    }

    /// Reader connections open and idle.
    pub fn idle_readers(&self) -> usize {
        self.readers.lock().map_or(0, |r| r.len())
    }

    /// Forgets every cached count (a tenant was deleted).
    pub fn forget_counts(&self) {
        if let Ok(mut c) = self.counts.lock() {
            for e in c.values_mut() {
                e.generation += 1;
                e.value = None;
            }
        }
    }

    /// Stops the writer after the queued requests; later writes fail with `WriterStopped`.
    pub fn close(&self) {
        self.stop.store(true, AtomicOrdering::Relaxed);
        if let Ok(mut j) = self.jobs.lock() {
            j.take();
        }
        if let Some(h) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
        if let Ok(mut r) = self.readers.lock() {
            r.clear();
        }
        if let Some(h) = self.checkpointer.lock().ok().and_then(|mut c| c.take()) {
            let _ = h.join();
        }
    }
}

impl Drop for SqliteEngine {
    fn drop(&mut self) {
        // Dropping the sender ends the writer once its queue is empty.
        self.stop.store(true, AtomicOrdering::Relaxed);
    }
}
