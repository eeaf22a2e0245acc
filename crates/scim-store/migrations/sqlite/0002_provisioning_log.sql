CREATE TABLE provisioning_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    operation TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    resource_name TEXT,
    status INTEGER NOT NULL,
    scim_type TEXT,
    detail TEXT,
    token_name TEXT,
    request_id TEXT NOT NULL,
    client_addr TEXT
);
CREATE INDEX provisioning_events_tenant ON provisioning_events(tenant_id, seq);
CREATE INDEX provisioning_events_at ON provisioning_events(at);
CREATE INDEX provisioning_events_resource ON provisioning_events(tenant_id, resource_id)
