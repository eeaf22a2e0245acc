-- Since when the source reports an object gone (deleted there). A gone object is never rebuilt
-- from its last snapshot by an incremental read: only the source can bring it back (issue 30).
ALTER TABLE sync_ledger ADD COLUMN gone_since BIGINT;
