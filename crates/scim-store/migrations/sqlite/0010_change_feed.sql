-- The change feed (docs/events.md): each provisioning-log row of a successful change covers
-- `change_count` events whose per-tenant sequences end at `change_seq`; `change_data` holds
-- the resource after the change and the member ids added and removed. `tenants.change_seq`
-- is the tenant's last sequence, advanced in the same transaction as the change.
ALTER TABLE tenants ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisioning_events ADD COLUMN change_seq INTEGER;
ALTER TABLE provisioning_events ADD COLUMN change_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisioning_events ADD COLUMN change_data TEXT;
CREATE INDEX provisioning_events_change ON provisioning_events(tenant_id, change_seq)
    WHERE change_seq IS NOT NULL;

-- Webhook endpoints: where a tenant's events are delivered, in sequence order, from
-- `cursor` (the last sequence delivered or skipped). Secrets are sealed with the instance key.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    types TEXT NOT NULL,
    description TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    sealed_previous TEXT,
    previous_until INTEGER,
    secret_prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    disabled_reason TEXT,
    cursor INTEGER NOT NULL,
    failing_since INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id);

-- One row per delivery attempt (swept with the provisioning log).
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    sequence INTEGER,
    event_type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    response TEXT
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries(at);
