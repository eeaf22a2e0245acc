-- Refused credentials at a tenant's URL (no token, not valid there, revoked, expired),
-- counted by hour for the tenant's administrators (issue 36); swept with the log's retention.
CREATE TABLE refused_credentials (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    hour BIGINT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hour, reason)
);
