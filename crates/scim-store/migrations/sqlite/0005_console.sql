CREATE TABLE operators (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_login_at BIGINT
);
CREATE UNIQUE INDEX operators_username ON operators(username);
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    operator_id BIGINT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at)
;
-- The console counts events per day and operation: an index-only scan.
CREATE INDEX provisioning_events_counts ON provisioning_events(tenant_id, at, operation)
