//! The provisioning engine's records (jobs and their state, the ledger, cycles, the
//! per-object log) and the store trait that keeps them in scimd's database. The engine
//! itself lives in `scim-sync`; these types are here so that scim-store can implement the
//! trait without depending on it. Every record is typed: the store converts it to and from
//! its columns once, at its boundary.
//!
//! | module | records |
//! |---|---|
//! | `source` | `SourceObject`: one identity as the source has it |
//! | `ledger` | `LedgerEntry` and its state, pending step, exported values, escrow |
//! | `log` | `SyncLogRecord`: action, status, steps, changes, error code |
//! | `job` | `SyncJobRecord`, `JobState`, `CycleRecord` and its counts |

mod job;
mod ledger;
mod log;
mod source;

pub use job::{
    CycleCounts, CycleMode, CycleRecord, CycleStatus, JobState, LastCycle, Quarantine,
    QuarantineReason, RunningCycle, SyncJobRecord,
};
pub use ledger::{Escrow, Exported, LedgerEntry, LedgerState, Pending, PendingStep, Trigger, Verb};
pub use log::{
    ErrorCode, LogChanges, PropertyChange, Status, Step, StepKind, SyncAction, SyncLogQuery,
    SyncLogRecord,
};
pub use source::SourceObject;

use crate::{CoreResult, Timestamp, store::LeaseFence};
use async_trait::async_trait;

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
    /// Stores a new job and, for an app whose source is a file uploaded with it, its file, in
    /// one transaction: both or neither. A job of that name already stored is a `Conflict`.
    async fn create_job(&self, job: &SyncJobRecord, file: Option<&SourceFile>) -> CoreResult<()>;
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
        state: &JobState,
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
        state: &JobState,
        now: Timestamp,
    ) -> CoreResult<()>;
    /// The job, its ledger and its `cycles` newest cycles, read in one snapshot.
    async fn job_snapshot(&self, name: &str, cycles: u32) -> CoreResult<Option<JobSnapshot>>;
    async fn cycles(&self, job: &str, limit: u32) -> CoreResult<Vec<CycleRecord>>;
    /// Deletes log rows and cycles older than `before`, at most `batch` of each (a job's
    /// newest cycle stays); how many.
    async fn sweep_sync_log(&self, before: Timestamp, batch: u32) -> CoreResult<u64>;
}
