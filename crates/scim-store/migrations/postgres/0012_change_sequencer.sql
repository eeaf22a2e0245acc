-- The change feed on PostgreSQL numbers a change after its commit (docs/events.md,
-- "Ordering"): a committed change waits here, `change_seq` NULL, until a numbering
-- transaction gives it the tenant's next sequences. This index finds the waiting rows.
CREATE INDEX provisioning_events_unsequenced ON provisioning_events(tenant_id, seq)
    WHERE change_seq IS NULL AND change_count > 0;
