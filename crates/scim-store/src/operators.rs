//! Console operators and sessions. Passwords arrive already hashed (Argon2id); sessions are
//! stored by the SHA-256 of their cookie value.

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::Arg;
use async_trait::async_trait;
use scim_core::CoreResult;
use scim_core::access::{Access, Grant, Role};
use scim_core::store::{OperatorStore, SessionStore};
use scim_core::{Operator, SessionRecord, Timestamp};

pub(crate) const COLUMNS: &str = "id, username, password_hash, created_at, failed_logins, locked_until, last_login_at, kind, \
     totp_sealed";

/// An operator from columns `at..at+9` in [`COLUMNS`] order; a tenant admin's grants are
/// read by [`with_grants`].
pub(crate) fn operator_from(row: &Row, at: usize) -> Result<Operator, StoreError> {
    let role = match row.text(at + 7)?.as_str() {
        "instance" => Role::Instance,
        "tenant" => Role::Tenant { grants: Vec::new() },
        other => return Err(StoreError::Corrupt(format!("operator kind '{other}'"))),
    };
    Ok(Operator {
        id: row.int(at)?,
        username: row.text(at + 1)?,
        password_hash: row.text(at + 2)?,
        created_at: row.ts(at + 3)?,
        failed_logins: row.int(at + 4)?,
        locked_until: row.opt_ts(at + 5)?,
        last_login_at: row.opt_ts(at + 6)?,
        role,
        totp_sealed: row.opt_text(at + 8)?,
    })
}

/// Fills a tenant admin's grants (an instance admin has none).
pub(crate) async fn with_grants(
    c: &mut Conn<'_>,
    mut op: Operator,
) -> Result<Operator, StoreError> {
    if let Role::Tenant { grants } = &mut op.role {
        *grants = grants_of(c, op.id).await?;
    }
    Ok(op)
}

pub(crate) fn access_from(text: &str) -> Result<Access, StoreError> {
    match text {
        "admin" => Ok(Access::Admin),
        "read-only" => Ok(Access::ReadOnly),
        other => Err(StoreError::Corrupt(format!("grant access '{other}'"))),
    }
}

/// A tenant admin's grants, by tenant slug.
pub(crate) async fn grants_of(
    c: &mut Conn<'_>,
    operator_id: i64,
) -> Result<Vec<Grant>, StoreError> {
    c.fetch(
        "SELECT g.tenant_id, t.slug, g.access FROM operator_grants g \
         JOIN tenants t ON t.id = g.tenant_id WHERE g.operator_id = $1 ORDER BY t.slug",
        &[Arg::Int(operator_id)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Grant {
            tenant_id: r.int(0)?,
            slug: r.text(1)?,
            access: access_from(&r.text(2)?)?,
        })
    })
    .collect()
}

/// A new operator of `kind` (`instance` or `tenant`; a tenant admin starts with no grant).
pub(crate) async fn insert(
    c: &mut Conn<'_>,
    username: &str,
    hash: &str,
    now: Timestamp,
    kind: &str,
) -> Result<Operator, StoreError> {
    let row = c
        .fetch_one(
            &format!(
                "INSERT INTO operators (username, password_hash, created_at, kind) \
                 VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
            ),
            &[
                Arg::text(username),
                Arg::text(hash),
                Arg::ts(now),
                Arg::text(kind),
            ],
        )
        .await
        .map_err(|e| e.unique_as(format!("operator '{username}' already exists")))?;
    operator_from(&row, 0)
}

pub(crate) async fn by_name(
    c: &mut Conn<'_>,
    username: &str,
) -> Result<Option<Operator>, StoreError> {
    let Some(row) = c
        .fetch_optional(
            &format!("SELECT {COLUMNS} FROM operators WHERE username = $1"),
            &[Arg::text(username)],
        )
        .await?
    else {
        return Ok(None);
    };
    let op = operator_from(&row, 0)?;
    Ok(Some(with_grants(c, op).await?))
}

pub(crate) async fn all(c: &mut Conn<'_>) -> Result<Vec<Operator>, StoreError> {
    let rows = c
        .fetch(
            &format!("SELECT {COLUMNS} FROM operators ORDER BY username"),
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let op = operator_from(r, 0)?;
        out.push(with_grants(c, op).await?);
    }
    Ok(out)
}

pub(crate) async fn delete(c: &mut Conn<'_>, username: &str) -> Result<bool, StoreError> {
    for sql in [
        "DELETE FROM console_sessions WHERE operator_id IN \
         (SELECT id FROM operators WHERE username = $1)",
        "DELETE FROM recovery_codes WHERE operator_id IN \
         (SELECT id FROM operators WHERE username = $1)",
        "DELETE FROM operator_grants WHERE operator_id IN \
         (SELECT id FROM operators WHERE username = $1)",
        "DELETE FROM setup_links WHERE operator_id IN \
         (SELECT id FROM operators WHERE username = $1)",
    ] {
        c.exec(sql, &[Arg::text(username)]).await?;
    }
    let n = c
        .exec(
            "DELETE FROM operators WHERE username = $1",
            &[Arg::text(username)],
        )
        .await?;
    Ok(n > 0)
}

/// A new password ends every session opened with the old one.
pub(crate) async fn set_password(
    c: &mut Conn<'_>,
    username: &str,
    hash: &str,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE operators SET password_hash = $2, failed_logins = 0, locked_until = NULL \
             WHERE username = $1",
            &[Arg::text(username), Arg::text(hash)],
        )
        .await?;
    c.exec(
        "DELETE FROM console_sessions WHERE operator_id IN \
         (SELECT id FROM operators WHERE username = $1)",
        &[Arg::text(username)],
    )
    .await?;
    Ok(n > 0)
}

pub(crate) async fn login_failed(c: &mut Conn<'_>, id: i64) -> Result<i64, StoreError> {
    c.fetch_one(
        "UPDATE operators SET failed_logins = failed_logins + 1 WHERE id = $1 \
         RETURNING failed_logins",
        &[Arg::Int(id)],
    )
    .await?
    .int(0)
}

pub(crate) async fn lock(c: &mut Conn<'_>, id: i64, until: Timestamp) -> Result<(), StoreError> {
    c.exec(
        "UPDATE operators SET locked_until = $2 WHERE id = $1",
        &[Arg::Int(id), Arg::ts(until)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn login_succeeded(
    c: &mut Conn<'_>,
    id: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE operators SET failed_logins = 0, locked_until = NULL, last_login_at = $2 \
         WHERE id = $1",
        &[Arg::Int(id), Arg::ts(now)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_session(c: &mut Conn<'_>, s: &SessionRecord) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO console_sessions (id_hash, operator_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            Arg::text(&s.id_hash),
            Arg::Int(s.operator_id),
            Arg::text(&s.csrf_token),
            Arg::ts(s.created_at),
            Arg::ts(s.expires_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn session(
    c: &mut Conn<'_>,
    id_hash: &str,
    now: Timestamp,
) -> Result<Option<(SessionRecord, Operator)>, StoreError> {
    let Some(row) = c
        .fetch_optional(
            "SELECT s.id_hash, s.operator_id, s.csrf_token, s.created_at, s.expires_at, \
             o.id, o.username, o.password_hash, o.created_at, o.failed_logins, o.locked_until, \
             o.last_login_at, o.kind, o.totp_sealed \
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
            &[Arg::text(id_hash), Arg::ts(now)],
        )
        .await?
    else {
        return Ok(None);
    };
    let session = SessionRecord {
        id_hash: row.text(0)?,
        operator_id: row.int(1)?,
        csrf_token: row.text(2)?,
        created_at: row.ts(3)?,
        expires_at: row.ts(4)?,
    };
    let op = operator_from(&row, 5)?;
    Ok(Some((session, with_grants(c, op).await?)))
}

pub(crate) async fn delete_session(c: &mut Conn<'_>, id_hash: &str) -> Result<(), StoreError> {
    c.exec(
        "DELETE FROM console_sessions WHERE id_hash = $1",
        &[Arg::text(id_hash)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn sweep_sessions(c: &mut Conn<'_>, now: Timestamp) -> Result<u64, StoreError> {
    c.exec(
        "DELETE FROM console_sessions WHERE expires_at <= $1",
        &[Arg::ts(now)],
    )
    .await
}

/// Replaces an operator's second factor and recovery codes (none: turned off).
pub(crate) async fn set_second_factor(
    c: &mut Conn<'_>,
    id: i64,
    sealed: Option<&str>,
    recovery_hashes: &[String],
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE operators SET totp_sealed = $2, totp_last_step = NULL WHERE id = $1",
            &[Arg::Int(id), Arg::opt_text(sealed)],
        )
        .await?;
    c.exec(
        "DELETE FROM recovery_codes WHERE operator_id = $1",
        &[Arg::Int(id)],
    )
    .await?;
    for h in recovery_hashes {
        c.exec(
            "INSERT INTO recovery_codes (operator_id, code_hash) VALUES ($1, $2)",
            &[Arg::Int(id), Arg::text(h)],
        )
        .await?;
    }
    Ok(n > 0)
}

async fn totp_step_used(c: &mut Conn<'_>, id: i64, step: u64) -> Result<bool, StoreError> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let n = c
        .exec(
            "UPDATE operators SET totp_last_step = $2 WHERE id = $1 \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
            &[Arg::Int(id), Arg::Int(step)],
        )
        .await?;
    Ok(n > 0)
}

async fn use_recovery(
    c: &mut Conn<'_>,
    id: i64,
    hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE recovery_codes SET used_at = $3 WHERE operator_id = $1 AND code_hash = $2 \
             AND used_at IS NULL",
            &[Arg::Int(id), Arg::text(hash), Arg::ts(now)],
        )
        .await?;
    Ok(n > 0)
}

async fn recovery_left(c: &mut Conn<'_>, id: i64) -> Result<u32, StoreError> {
    let n = c
        .fetch_one(
            "SELECT COUNT(*) FROM recovery_codes WHERE operator_id = $1 AND used_at IS NULL",
            &[Arg::Int(id)],
        )
        .await?
        .int(0)?;
    Ok(u32::try_from(n).unwrap_or(0))
}

#[async_trait]
impl OperatorStore for SqlStore {
    async fn create_operator(
        &self,
        username: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator> {
        let (name, hash) = (username.to_string(), hash.to_string());
        self.write(job!(|c| insert(c, &name, &hash, now, "instance")))
            .await
    }
    async fn operator_by_name(&self, username: &str) -> CoreResult<Option<Operator>> {
        let name = username.to_string();
        self.read(job!(|c| by_name(c, &name))).await
    }
    async fn operators(&self) -> CoreResult<Vec<Operator>> {
        self.read(job!(|c| all(c))).await
    }
    async fn delete_operator(&self, username: &str) -> CoreResult<bool> {
        let name = username.to_string();
        self.write(job!(|c| delete(c, &name))).await
    }
    async fn set_operator_password(&self, username: &str, hash: &str) -> CoreResult<bool> {
        let (name, hash) = (username.to_string(), hash.to_string());
        self.write(job!(|c| set_password(c, &name, &hash))).await
    }
    async fn operator_login_failed(&self, id: i64) -> CoreResult<i64> {
        self.write(job!(|c| login_failed(c, id))).await
    }
    async fn lock_operator(&self, id: i64, until: Timestamp) -> CoreResult<()> {
        self.write(job!(|c| lock(c, id, until))).await
    }
    async fn operator_login_succeeded(&self, id: i64, now: Timestamp) -> CoreResult<()> {
        self.write(job!(|c| login_succeeded(c, id, now))).await
    }
    async fn totp_step_used(&self, id: i64, step: u64) -> CoreResult<bool> {
        self.write(job!(|c| totp_step_used(c, id, step))).await
    }
    async fn use_recovery_code(&self, id: i64, hash: &str, now: Timestamp) -> CoreResult<bool> {
        let h = hash.to_string();
        self.write(job!(|c| use_recovery(c, id, &h, now))).await
    }
    async fn recovery_codes_left(&self, id: i64) -> CoreResult<u32> {
        self.read(job!(|c| recovery_left(c, id))).await
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, session: &SessionRecord) -> CoreResult<()> {
        let s = session.clone();
        self.write(job!(|c| insert_session(c, &s))).await
    }
    async fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> CoreResult<Option<(SessionRecord, Operator)>> {
        let h = id_hash.to_string();
        self.read(job!(|c| session(c, &h, now))).await
    }
    async fn delete_session(&self, id_hash: &str) -> CoreResult<()> {
        let h = id_hash.to_string();
        self.write(job!(|c| delete_session(c, &h))).await
    }
    async fn sweep_sessions(&self, now: Timestamp) -> CoreResult<u64> {
        self.write(job!(|c| sweep_sessions(c, now))).await
    }
}
