-- The provisioning engine (scimd sync): jobs, the ownership ledger, cycles, the per-object log.
CREATE TABLE sync_jobs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    sealed_secret TEXT,
    enabled INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE sync_ledger (
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_id TEXT,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    exported TEXT NOT NULL,
    pending TEXT,
    due_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job, kind, source_id)
);
CREATE INDEX sync_ledger_target ON sync_ledger(job, target_id);
CREATE TABLE sync_cycles (
    job TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    counts TEXT NOT NULL,
    PRIMARY KEY (job, cycle_id)
);
CREATE INDEX sync_cycles_started ON sync_cycles(job, started_at);
CREATE TABLE sync_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    change_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_id TEXT,
    display TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    steps TEXT NOT NULL,
    changes TEXT NOT NULL,
    error_code TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX sync_log_job ON sync_log(job, seq);
CREATE INDEX sync_log_cycle ON sync_log(job, cycle_id);
CREATE INDEX sync_log_at ON sync_log(at);
