//! Token rows. Only hashes are stored.

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::Arg;
use async_trait::async_trait;
use scim_core::CoreResult;
use scim_core::store::TokenStore;
use scim_core::{Refusal, RefusedCount, Timestamp, TokenRecord, TokenScopes};

const COLUMNS: &str = "id, tenant_id, name, prefix, secret_hash, scopes, created_at, expires_at, \
                       last_used_at, revoked_at, previous_secret_hash, previous_valid_until";

fn token_from(row: &Row) -> Result<TokenRecord, StoreError> {
    let scopes = row.text(5)?;
    Ok(TokenRecord {
        id: row.text(0)?,
        tenant_id: row.int(1)?,
        name: row.text(2)?,
        prefix: row.text(3)?,
        secret_hash: row.text(4)?,
        scopes: TokenScopes::parse_list(&[scopes])
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: row.ts(6)?,
        expires_at: row.opt_ts(7)?,
        last_used_at: row.opt_ts(8)?,
        revoked_at: row.opt_ts(9)?,
        previous_secret_hash: row.opt_text(10)?,
        previous_valid_until: row.opt_ts(11)?,
    })
}

pub(crate) async fn insert(c: &mut Conn<'_>, t: &TokenRecord) -> Result<(), StoreError> {
    c.exec(
        &format!(
            "INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &[
            Arg::text(&t.id),
            Arg::Int(t.tenant_id),
            Arg::text(&t.name),
            Arg::text(&t.prefix),
            Arg::text(&t.secret_hash),
            Arg::Text(t.scopes.to_string()),
            Arg::ts(t.created_at),
            Arg::opt_ts(t.expires_at),
            Arg::opt_ts(t.last_used_at),
            Arg::opt_ts(t.revoked_at),
            Arg::opt_text(t.previous_secret_hash.as_deref()),
            Arg::opt_ts(t.previous_valid_until),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn by_hash(
    c: &mut Conn<'_>,
    hash: &str,
) -> Result<Option<TokenRecord>, StoreError> {
    c.fetch_optional(
        &format!(
            "SELECT {COLUMNS} FROM tokens WHERE secret_hash = $1 OR previous_secret_hash = $1 LIMIT 1"
        ),
        &[Arg::text(hash)],
    )
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

pub(crate) async fn of_tenant(
    c: &mut Conn<'_>,
    tenant_id: i64,
) -> Result<Vec<TokenRecord>, StoreError> {
    c.fetch(
        &format!("SELECT {COLUMNS} FROM tokens WHERE tenant_id = $1 ORDER BY created_at, id"),
        &[Arg::Int(tenant_id)],
    )
    .await?
    .iter()
    .map(token_from)
    .collect()
}

pub(crate) async fn revoke(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2",
            &[Arg::Int(tenant_id), Arg::text(id), Arg::ts(now)],
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn rotate(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
    new_hash: &str,
    new_prefix: &str,
    grace_until: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE tokens SET previous_secret_hash = secret_hash, previous_valid_until = $5, \
             secret_hash = $3, prefix = $4 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            &[
                Arg::Int(tenant_id),
                Arg::text(id),
                Arg::text(new_hash),
                Arg::text(new_prefix),
                Arg::ts(grace_until),
            ],
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn touch(c: &mut Conn<'_>, id: &str, now: Timestamp) -> Result<(), StoreError> {
    c.exec(
        "UPDATE tokens SET last_used_at = $2 WHERE id = $1",
        &[Arg::text(id), Arg::ts(now)],
    )
    .await?;
    Ok(())
}

/// Adds each count to its row (created at the hour's first); a tenant deleted since is
/// skipped, so its counts never block the others'.
pub(crate) async fn add_refused(
    c: &mut Conn<'_>,
    counts: &[RefusedCount],
) -> Result<(), StoreError> {
    for r in counts {
        c.exec(
            "INSERT INTO refused_credentials (tenant_id, hour, reason, count, last_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1) \
             ON CONFLICT (tenant_id, hour, reason) DO UPDATE SET \
             count = refused_credentials.count + excluded.count, \
             last_at = CASE WHEN excluded.last_at > refused_credentials.last_at \
             THEN excluded.last_at ELSE refused_credentials.last_at END",
            &[
                Arg::Int(r.tenant_id),
                Arg::ts(r.hour),
                Arg::text(r.reason.as_str()),
                Arg::Int(i64::try_from(r.count).unwrap_or(i64::MAX)),
                Arg::ts(r.last_at),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn refused(
    c: &mut Conn<'_>,
    tenant_id: i64,
    since: Timestamp,
) -> Result<Vec<RefusedCount>, StoreError> {
    let since = scim_core::refused::hour_of(since);
    c.fetch(
        "SELECT tenant_id, hour, reason, count, last_at FROM refused_credentials \
         WHERE tenant_id = $1 AND hour >= $2 ORDER BY hour, reason",
        &[Arg::Int(tenant_id), Arg::ts(since)],
    )
    .await?
    .iter()
    .map(|row| {
        let reason = row.text(2)?;
        Ok(RefusedCount {
            tenant_id: row.int(0)?,
            hour: row.ts(1)?,
            reason: Refusal::parse(&reason)
                .ok_or_else(|| StoreError::Corrupt(format!("refusal reason '{reason}'")))?,
            count: u64::try_from(row.int(3)?).unwrap_or_default(),
            last_at: row.ts(4)?,
        })
    })
    .collect()
}

pub(crate) async fn sweep_refused(c: &mut Conn<'_>, before: Timestamp) -> Result<u64, StoreError> {
    // An hour is kept while any of it is within the retention.
    let before = scim_core::refused::hour_of(before);
    c.exec(
        "DELETE FROM refused_credentials WHERE hour < $1",
        &[Arg::ts(before)],
    )
    .await
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn insert_token(&self, token: &TokenRecord) -> CoreResult<()> {
        let token = token.clone();
        self.write(job!(|c| insert(c, &token))).await
    }
    async fn token_by_hash(&self, hash: &str) -> CoreResult<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.read(job!(|c| by_hash(c, &hash))).await
    }
    async fn tokens(&self, tenant_id: i64) -> CoreResult<Vec<TokenRecord>> {
        self.read(job!(|c| of_tenant(c, tenant_id))).await
    }
    async fn revoke_token(&self, tenant_id: i64, id: &str, now: Timestamp) -> CoreResult<bool> {
        let id = id.to_string();
        self.write(job!(|c| revoke(c, tenant_id, &id, now))).await
    }
    async fn rotate_token(
        &self,
        tenant_id: i64,
        id: &str,
        new_hash: &str,
        new_prefix: &str,
        grace_until: Timestamp,
    ) -> CoreResult<bool> {
        let (id, hash, prefix) = (id.to_string(), new_hash.to_string(), new_prefix.to_string());
        self.write(job!(|c| rotate(
            c,
            tenant_id,
            &id,
            &hash,
            &prefix,
            grace_until
        )))
        .await
    }
    async fn touch_token(&self, id: &str, now: Timestamp) -> CoreResult<()> {
        let id = id.to_string();
        self.write(job!(|c| touch(c, &id, now))).await
    }
    async fn add_refused(&self, counts: &[RefusedCount]) -> CoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let counts = counts.to_vec();
        self.write(job!(|c| add_refused(c, &counts))).await
    }
    async fn refused(&self, tenant_id: i64, since: Timestamp) -> CoreResult<Vec<RefusedCount>> {
        self.read(job!(|c| refused(c, tenant_id, since))).await
    }
    async fn sweep_refused(&self, before: Timestamp) -> CoreResult<u64> {
        self.write(job!(|c| sweep_refused(c, before))).await
    }
}
