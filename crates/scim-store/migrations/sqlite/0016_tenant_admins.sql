-- Tenant admins (issue 32): an operator is an instance admin (every tenant, as before) or a
-- tenant admin, who administers (or only reads) the tenants granted here.
ALTER TABLE operators ADD COLUMN kind TEXT NOT NULL DEFAULT 'instance';
CREATE TABLE operator_grants (
    operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    access TEXT NOT NULL,
    PRIMARY KEY (operator_id, tenant_id)
);
CREATE INDEX operator_grants_tenant ON operator_grants(tenant_id);
-- Setup links: single-use, expiring, revocable; only the SHA-256 of the secret is kept.
-- 'invite' creates a tenant admin of tenant_id; 'reset' sets operator_id's password.
CREATE TABLE setup_links (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    operator_id INTEGER REFERENCES operators(id) ON DELETE CASCADE,
    idp TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by TEXT,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX setup_links_token ON setup_links(token_hash);
CREATE INDEX setup_links_tenant ON setup_links(tenant_id, created_at);
