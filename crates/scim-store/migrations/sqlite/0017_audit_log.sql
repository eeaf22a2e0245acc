-- The audit log (issue 32): people's actions, written in the transaction of what they change.
-- No foreign key: a row outlives the tenant or operator it names (tenant keeps the slug).
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    address TEXT,
    tenant_id BIGINT,
    tenant TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
