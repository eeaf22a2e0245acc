//! Console operators and their sessions: create, reset, sign in (with the lockout policy),
//! sign out. Used by `scimd admin` and the console alike.

use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::operator::{
    LockoutPolicy, Operator, SESSION_TTL, SessionRecord, SignInError, decoy_hash, hash_password,
    normalize_username, random_token, validate_password, verify_password,
};
use crate::store::Store;
use crate::token::hash_secret;
use std::sync::Arc;

/// A new session: the cookie value to send once, and the record to store.
pub struct NewSession {
    pub cookie_value: String,
    pub record: SessionRecord,
    pub operator: Operator,
}

/// Operator accounts and sessions over the store.
#[derive(Clone)]
pub struct OperatorService {
    store: Arc<dyn Store>,
    pub policy: LockoutPolicy,
}

impl OperatorService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            policy: LockoutPolicy::default(),
        }
    }

    pub async fn list(&self) -> CoreResult<Vec<Operator>> {
        self.store.operators().await
    }

    /// Deletes an operator (its sessions go with it); `NotFound` when there is none.
    pub async fn delete(&self, username: &str) -> CoreResult<()> {
        let name = normalize_username(username)?;
        if self.store.delete_operator(&name).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("operator '{name}'")))
        }
    }

    pub async fn create(&self, username: &str, password: &str) -> CoreResult<Operator> {
        let username = normalize_username(username)?;
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        self.store
            .create_operator(&username, &hash, Timestamp::now())
            .await
    }

    /// Sets a new password and clears any lockout.
    pub async fn reset_password(&self, username: &str, password: &str) -> CoreResult<()> {
        let username = normalize_username(username)?;
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        if self.store.set_operator_password(&username, &hash).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("operator '{username}'")))
        }
    }

    /// Checks the password, applies the lockout policy, and opens a session.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<NewSession, SignInError> {
        let Ok(username) = normalize_username(username) else {
            return Err(SignInError::BadCredentials);
        };
        let operator = self.store.operator_by_name(&username).await?;
        if let Some(until) = operator
            .as_ref()
            .and_then(|o| o.locked_until)
            .filter(|u| *u > now)
        {
            return Err(SignInError::Locked { until });
        }
        let phc = match &operator {
            Some(o) => o.password_hash.clone(),
            None => decoy_hash()?.to_string(),
        };
        let pw = password.to_string();
        let ok = blocking(move || Ok(verify_password(&phc, &pw))).await?;
        let Some(operator) = operator else {
            return Err(SignInError::BadCredentials);
        };
        if !ok {
            let failures = self.store.operator_login_failed(operator.id).await?;
            if let Some(secs) = self.policy.lock_secs(failures) {
                let until = now + time::Duration::seconds(secs);
                self.store.lock_operator(operator.id, until).await?;
                return Err(SignInError::Locked { until });
            }
            return Err(SignInError::BadCredentials);
        }
        self.store
            .operator_login_succeeded(operator.id, now)
            .await?;
        let cookie_value = random_token();
        let record = SessionRecord {
            id_hash: hash_secret(&cookie_value),
            operator_id: operator.id,
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + SESSION_TTL,
        };
        self.store.insert_session(&record).await?;
        Ok(NewSession {
            cookie_value,
            record,
            operator,
        })
    }

    /// The live session for a cookie value, with its operator.
    pub async fn session(
        &self,
        cookie_value: &str,
        now: Timestamp,
    ) -> CoreResult<Option<(SessionRecord, Operator)>> {
        self.store.session(&hash_secret(cookie_value), now).await
    }

    pub async fn sign_out(&self, cookie_value: &str) -> CoreResult<()> {
        self.store.delete_session(&hash_secret(cookie_value)).await
    }
}

/// Runs CPU-heavy work (Argon2) on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> CoreResult<T> + Send + 'static,
) -> CoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoreError::Internal(format!("password hashing task failed: {e}")))?
}
