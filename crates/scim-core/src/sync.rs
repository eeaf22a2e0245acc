//! The provisioning engine's records (jobs, the ledger, cycles, the per-object log) and the
//! store trait that keeps them in scimd's database. The engine itself lives in `scim-sync`;
//! these types are here so that scim-store can implement the trait without depending on it.
//! Structured parts (a job's state, a ledger entry's exported values, a log row's steps)
//! are JSON the engine owns; the store keeps them as text.

use crate::{CoreResult, Timestamp, store::LeaseFence};
use async_trait::async_trait;
use serde_json::Value;

/// A job as stored: its TOML without inline secrets, the target credential sealed with the
/// instance's sync key, whether it is enabled, and the engine's state (watermark, last cycle).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncJobRecord {
    pub name: String,
    pub spec: String,
    /// Base64 of nonce + ciphertext of the target token (XChaCha20-Poly1305), if stored.
    pub sealed_secret: Option<String>,
    pub enabled: bool,
    pub state: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the engine knows of one source object: where it is on the target, what it last
/// saw at the source and last exported, and any pending deprovisioning.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub job: String,
    /// `User` or `Group`.
    pub kind: String,
    pub source_id: String,
    /// Set only for objects the engine created or adopted: the ones it may touch.
    pub target_id: Option<String>,
    /// `active`, `disabled`, `deleted`, `conflict`, `out-of-scope`, `failed`.
    pub state: String,
    /// The source object as last read (attributes, state, memberships).
    pub source: Value,
    /// The target values last written, by target attribute path (and `members` for groups).
    pub exported: Value,
    /// A deprovisioning step waiting for `due_at`, or `staged` (held by the breaker),
    /// `approved`, `rejected`.
    pub pending: Option<String>,
    pub due_at: Option<Timestamp>,
    /// Set while the object keeps failing: it is retried on the escrow ladder.
    pub escrow: Option<Escrow>,
    pub updated_at: Timestamp,
}

/// An object whose writes keep failing (Entra's escrow, engine-behaviour §1.6): it is
/// left alone until `retry_at` unless its source changes, and abandoned after the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escrow {
    /// Cycles in a row that failed for this object.
    pub failures: u32,
    pub since: Timestamp,
    pub retry_at: Timestamp,
}

/// One row of the per-object provisioning log (Entra's provisioning log fields).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncLogRecord {
    /// Assigned by the store.
    pub seq: i64,
    pub job: String,
    pub cycle_id: String,
    pub change_id: String,
    pub at: Timestamp,
    pub kind: String,
    pub source_id: String,
    pub target_id: Option<String>,
    pub display: String,
    pub action: String,
    pub status: String,
    pub steps: Value,
    pub changes: Value,
    pub error_code: Option<String>,
    pub duration_ms: i64,
}

/// One cycle of a job: when, how, and the counts by action and status.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleRecord {
    pub job: String,
    pub cycle_id: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `initial` or `incremental`.
    pub mode: String,
    /// `running`, `completed`, `completed-with-failures`, `failed`.
    pub status: String,
    pub counts: Value,
}

/// A CSV or JSON source file uploaded in the console and kept in the database with its
/// app, so that every node reads the same file (a path would name a file on one node only).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// The file's name as uploaded, for display.
    pub name: String,
    /// Its text (UTF-8: CSV and JSON sources are text).
    pub content: String,
    pub uploaded_at: Timestamp,
}

/// What is shown of an uploaded source file without reading it (the app page polls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFileInfo {
    pub name: String,
    /// Its size in bytes (UTF-8).
    pub bytes: u64,
    pub uploaded_at: Timestamp,
}

/// Filters for reading the per-object log, newest first.
#[derive(Debug, Clone, Default)]
pub struct SyncLogQuery {
    pub cycle_id: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    /// A source id, target id or display name.
    pub object: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// A job with its ledger and latest cycles as of one instant (one read snapshot): a reader
/// never sees a cycle completed whose last outcomes or final state it has not seen.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    pub record: SyncJobRecord,
    pub ledger: Vec<LedgerEntry>,
    /// Newest first.
    pub cycles: Vec<CycleRecord>,
}

#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Inserts or replaces a job's definition (its state and ledger stay).
    async fn put_job(&self, job: &SyncJobRecord) -> CoreResult<()>;
    async fn job(&self, name: &str) -> CoreResult<Option<SyncJobRecord>>;
    async fn jobs(&self) -> CoreResult<Vec<SyncJobRecord>>;
    /// Removes the job with its ledger, cycles, log and uploaded source file. Target
    /// objects are not touched.
    async fn delete_job(&self, name: &str) -> CoreResult<bool>;
    /// Stores (or replaces) the source file uploaded for the job `job`.
    async fn put_source_file(&self, job: &str, file: &SourceFile) -> CoreResult<()>;
    /// The source file uploaded for the job `job`, if any.
    async fn source_file(&self, job: &str) -> CoreResult<Option<SourceFile>>;
    /// The name, size and time of the job's uploaded file, without its content.
    async fn source_file_info(&self, job: &str) -> CoreResult<Option<SourceFileInfo>>;
    /// Replaces a job's state; with a fence, only while the fence's lease is still held.
    async fn set_job_state(
        &self,
        fence: Option<&LeaseFence>,
        name: &str,
        state: &Value,
        now: Timestamp,
    ) -> CoreResult<()>;
    async fn set_job_enabled(&self, name: &str, enabled: bool, now: Timestamp) -> CoreResult<bool>;
    async fn ledger(&self, job: &str) -> CoreResult<Vec<LedgerEntry>>;
    /// Writes ledger entries and log rows in one transaction: what was done to the target
    /// and what the log says about it never disagree. With a fence, only while the fence's
    /// lease is still held: a cycle that lost its lease writes nothing more.
    async fn record_sync(
        &self,
        fence: Option<&LeaseFence>,
        entries: &[LedgerEntry],
        log: &[SyncLogRecord],
    ) -> CoreResult<()>;
    async fn sync_log(&self, job: &str, q: &SyncLogQuery) -> CoreResult<Vec<SyncLogRecord>>;
    async fn save_cycle(&self, cycle: &CycleRecord) -> CoreResult<()>;
    /// Ends a cycle: its record and the job's new state in one transaction, so no reader
    /// sees the cycle finished and the state still running (or the reverse). With a fence,
    /// only while the fence's lease is still held; refused, it writes neither.
    async fn finish_cycle(
        &self,
        fence: Option<&LeaseFence>,
        cycle: &CycleRecord,
        state: &Value,
        now: Timestamp,
    ) -> CoreResult<()>;
    /// The job, its ledger and its `cycles` newest cycles, read in one snapshot.
    async fn job_snapshot(&self, name: &str, cycles: u32) -> CoreResult<Option<JobSnapshot>>;
    async fn cycles(&self, job: &str, limit: u32) -> CoreResult<Vec<CycleRecord>>;
    /// Deletes log rows older than `before`, at most `batch`.
    async fn sweep_sync_log(&self, before: Timestamp, batch: u32) -> CoreResult<u64>;
}
