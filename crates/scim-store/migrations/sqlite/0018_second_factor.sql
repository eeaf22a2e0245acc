-- The console's second factor (issue 32): a TOTP secret sealed under the instance key, the
-- last time step a code was accepted at (no replay), and single-use recovery codes (SHA-256).
ALTER TABLE operators ADD COLUMN totp_sealed TEXT;
ALTER TABLE operators ADD COLUMN totp_last_step BIGINT;
CREATE TABLE recovery_codes (
    operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (operator_id, code_hash)
);
