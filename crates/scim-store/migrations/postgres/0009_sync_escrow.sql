-- Escrow of objects that keep failing (docs/sync.md §6): how many cycles in a row failed,
-- since when, and when the next try is due.
ALTER TABLE sync_ledger ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_ledger ADD COLUMN failed_since BIGINT;
ALTER TABLE sync_ledger ADD COLUMN retry_at BIGINT;
