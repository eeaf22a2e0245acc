//! Token rows. Only hashes are stored.

use crate::{SqlStore, StoreError};
use scim_core::{TokenRecord, TokenScopes};
use sqlx::Row;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, tenant_id, name, prefix, secret_hash, scopes, created_at, expires_at, \
                       last_used_at, revoked_at, previous_secret_hash, previous_valid_until";

fn token_from(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let scopes: String = row.try_get("scopes")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        secret_hash: row.try_get("secret_hash")?,
        scopes: TokenScopes::parse_list(&[scopes])
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
        previous_secret_hash: row.try_get("previous_secret_hash")?,
        previous_valid_until: row.try_get("previous_valid_until")?,
    })
}

impl SqlStore {
    pub(crate) async fn insert_token_row(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query(&format!(
            "INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&t.id)
        .bind(t.tenant_id)
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.secret_hash)
        .bind(t.scopes.to_string())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at)
        .bind(&t.previous_secret_hash)
        .bind(t.previous_valid_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn token_row_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE secret_hash = $1 OR previous_secret_hash = $1 LIMIT 1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from).transpose()
    }

    pub(crate) async fn token_rows(&self, tenant_id: i64) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from).collect()
    }

    pub(crate) async fn revoke_token_row(
        &self,
        tenant_id: i64,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn rotate_token_row(
        &self,
        tenant_id: i64,
        id: &str,
        new_hash: &str,
        new_prefix: &str,
        grace_until: i64,
    ) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE tokens SET previous_secret_hash = secret_hash, previous_valid_until = $5, \
             secret_hash = $3, prefix = $4 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(new_hash)
        .bind(new_prefix)
        .bind(grace_until)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn touch_token_row(&self, id: &str, now: i64) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
