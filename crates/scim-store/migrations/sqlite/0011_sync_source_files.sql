-- Source files uploaded in the console (docs/sync.md §9), one per app, kept in the database
-- so that every node reads the same file.
CREATE TABLE sync_source_files (
    job TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL
);
