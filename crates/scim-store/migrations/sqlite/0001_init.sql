CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER,
    previous_secret_hash TEXT,
    previous_valid_until INTEGER
);
CREATE INDEX tokens_tenant ON tokens(tenant_id);
CREATE INDEX tokens_previous ON tokens(previous_secret_hash);
CREATE TABLE resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    unique_name TEXT,
    unique_name_ci TEXT,
    display_name TEXT,
    display_name_ci TEXT,
    external_id TEXT,
    active INTEGER,
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX resources_id ON resources(tenant_id, kind, id);
CREATE UNIQUE INDEX resources_unique_name ON resources(tenant_id, kind, unique_name_ci);
CREATE INDEX resources_external_id ON resources(tenant_id, kind, external_id);
CREATE INDEX resources_display_name ON resources(tenant_id, kind, display_name_ci);
CREATE INDEX resources_modified ON resources(tenant_id, kind, modified_at);
CREATE TABLE resource_emails (
    tenant_id INTEGER NOT NULL,
    resource_seq INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    value_ci TEXT NOT NULL
);
CREATE INDEX resource_emails_value ON resource_emails(tenant_id, value_ci);
CREATE INDEX resource_emails_resource ON resource_emails(resource_seq);
CREATE TABLE group_members (
    tenant_id INTEGER NOT NULL,
    group_seq INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    member_seq INTEGER NOT NULL REFERENCES resources(seq) ON DELETE CASCADE,
    PRIMARY KEY (group_seq, member_seq)
);
CREATE INDEX group_members_member ON group_members(member_seq);
