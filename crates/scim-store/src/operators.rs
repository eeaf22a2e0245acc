//! Console operators and sessions. Passwords arrive already hashed (Argon2id); sessions are
//! stored by the SHA-256 of their cookie value.

use crate::{SqlStore, StoreError};
use scim_core::{Operator, SessionRecord};
use sqlx::Row;
use sqlx::any::AnyRow;

const COLUMNS: &str =
    "id, username, password_hash, created_at, failed_logins, locked_until, last_login_at";

fn operator_from(row: &AnyRow) -> Result<Operator, StoreError> {
    Ok(Operator {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

impl SqlStore {
    pub(crate) async fn insert_operator(
        &self,
        username: &str,
        hash: &str,
        now: i64,
    ) -> Result<Operator, StoreError> {
        let _g = self.write_guard().await;
        let row = sqlx::query(&format!(
            "INSERT INTO operators (username, password_hash, created_at) VALUES ($1, $2, $3) \
             RETURNING {COLUMNS}"
        ))
        .bind(username)
        .bind(hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from(e).unique_as(format!("operator '{username}' already exists")))
        .map_err(|e| match e {
            StoreError::Unique(m) => StoreError::Config(m),
            other => other,
        })?;
        operator_from(&row)
    }

    pub(crate) async fn operator_row(
        &self,
        username: &str,
    ) -> Result<Option<Operator>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operators WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(operator_from).transpose()
    }

    pub(crate) async fn operator_rows(&self) -> Result<Vec<Operator>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operators ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operator_from).collect()
    }

    pub(crate) async fn delete_operator_row(&self, username: &str) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        let r = sqlx::query("DELETE FROM operators WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn set_operator_password_row(
        &self,
        username: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE operators SET password_hash = $2, failed_logins = 0, locked_until = NULL \
             WHERE username = $1",
        )
        .bind(username)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        // A new password ends every session opened with the old one.
        sqlx::query(
            "DELETE FROM console_sessions WHERE operator_id IN \
             (SELECT id FROM operators WHERE username = $1)",
        )
        .bind(username)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn operator_failed_row(&self, id: i64) -> Result<i64, StoreError> {
        let _g = self.write_guard().await;
        let row = sqlx::query(
            "UPDATE operators SET failed_logins = failed_logins + 1 WHERE id = $1 \
             RETURNING failed_logins",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub(crate) async fn lock_operator_row(&self, id: i64, until: i64) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query("UPDATE operators SET locked_until = $2 WHERE id = $1")
            .bind(id)
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn operator_succeeded_row(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query(
            "UPDATE operators SET failed_logins = 0, locked_until = NULL, last_login_at = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn insert_session_row(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, operator_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id_hash)
        .bind(s.operator_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn session_row(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<(SessionRecord, Operator)>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id_hash, s.operator_id, s.csrf_token, s.created_at AS s_created, s.expires_at, \
             o.id, o.username, o.password_hash, o.created_at, o.failed_logins, o.locked_until, \
             o.last_login_at \
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = SessionRecord {
            id_hash: row.try_get("id_hash")?,
            operator_id: row.try_get("operator_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("s_created")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok(Some((session, operator_from(&row)?)))
    }

    pub(crate) async fn delete_session_row(&self, id_hash: &str) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn sweep_session_rows(&self, now: i64) -> Result<u64, StoreError> {
        let _g = self.write_guard().await;
        let r = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
