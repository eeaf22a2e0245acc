//! Console operators and their sessions.
//!
//! Operators are the people who run scimd (not SCIM users): created with `scimd admin
//! create`, they sign in to the web console. Passwords are stored as Argon2id PHC strings
//! (OWASP's parameters: 19 MiB, 2 passes). A session is a random 256-bit cookie value of which
//! only the SHA-256 is stored, with its own CSRF token; several stateless nodes behind a load
//! balancer therefore share sessions through the database.
//!
//! Repeated failed sign-ins lock the account with an exponential back-off
//! ([`LockoutPolicy`]); the answer to a failed sign-in never says whether the name exists.

use crate::error::{CoreError, CoreResult};
use crate::store::Store;
use crate::token::hash_secret;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    pub id: i64,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub last_login_at: Option<i64>,
}

/// A stored console session (the cookie value itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub operator_id: i64,
    /// Sent back in every form; compared on every state-changing request.
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Sessions last 12 hours; the operator signs in again after that.
pub const SESSION_TTL_MICROS: i64 = 12 * 3600 * 1_000_000;

/// Usernames: 1–64 of `a-z 0-9 . _ @ -`, compared case-insensitively (stored lower-case).
pub fn normalize_username(name: &str) -> CoreResult<String> {
    let n = name.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@-".contains(c));
    if ok {
        Ok(n)
    } else {
        Err(CoreError::Invalid(format!(
            "invalid operator name '{name}': use 1-64 of a-z, 0-9, '.', '_', '@', '-'"
        )))
    }
}

/// At least 12 characters, at most 1,024 (Argon2 is fed the whole password).
pub fn validate_password(pw: &str) -> CoreResult<()> {
    let n = pw.chars().count();
    if (12..=1024).contains(&n) {
        Ok(())
    } else {
        Err(CoreError::Invalid(
            "a password needs 12 to 1024 characters".into(),
        ))
    }
}

/// Argon2id PHC string with a random salt. CPU-heavy (tens of milliseconds): call it off the
/// async executor.
pub fn hash_password(pw: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Invalid(format!("cannot hash password: {e}")))
}

/// Constant-time check of `pw` against a PHC string; a malformed hash never verifies.
pub fn verify_password(phc: &str, pw: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A hash of a password nobody knows: verified against when the name does not exist, so a
/// failed sign-in takes as long whether or not the operator exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that never matches").unwrap_or_default())
}

/// Lock after `free_attempts` consecutive failures, for `base` doubling per further failure
/// up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub free_attempts: i64,
    pub base_secs: i64,
    pub max_secs: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            free_attempts: 5,
            base_secs: 30,
            max_secs: 15 * 60,
        }
    }
}

impl LockoutPolicy {
    /// How long to lock after the `failures`-th consecutive failure (None: not locked).
    pub fn lock_secs(&self, failures: i64) -> Option<i64> {
        if failures < self.free_attempts {
            return None;
        }
        let doublings = (failures - self.free_attempts).min(20) as u32;
        Some(
            self.base_secs
                .saturating_mul(1_i64 << doublings)
                .min(self.max_secs),
        )
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a sign-in was refused. The console shows one message for `BadCredentials` whatever the
/// cause (unknown name or wrong password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    BadCredentials,
    /// Too many failures: try again after this time (µs since the epoch).
    Locked {
        until: i64,
    },
    Storage(String),
}

impl From<CoreError> for SignInError {
    fn from(e: CoreError) -> Self {
        SignInError::Storage(e.to_string())
    }
}

/// A new session: the cookie value to send once, and the record to store.
pub struct NewSession {
    pub cookie_value: String,
    pub record: SessionRecord,
    pub operator: Operator,
}

/// Operator accounts and sessions over the store.
pub struct OperatorService<'a> {
    pub store: &'a dyn Store,
    pub policy: LockoutPolicy,
}

impl<'a> OperatorService<'a> {
    pub fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            policy: LockoutPolicy::default(),
        }
    }

    pub async fn create(&self, username: &str, password: &str, now: i64) -> CoreResult<Operator> {
        let username = normalize_username(username)?;
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        self.store.create_operator(&username, &hash, now).await
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
        now: i64,
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
        let phc = operator
            .as_ref()
            .map(|o| o.password_hash.clone())
            .unwrap_or_else(|| decoy_hash().to_string());
        let pw = password.to_string();
        let ok = blocking(move || Ok(verify_password(&phc, &pw))).await?;
        let Some(operator) = operator else {
            return Err(SignInError::BadCredentials);
        };
        if !ok {
            let failures = self.store.operator_login_failed(operator.id).await?;
            if let Some(secs) = self.policy.lock_secs(failures) {
                let until = now + secs * 1_000_000;
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
            expires_at: now + SESSION_TTL_MICROS,
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
        now: i64,
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
        .map_err(|e| CoreError::Storage(format!("password hashing task failed: {e}")))?
}

/// Compares two CSRF tokens in constant time.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterx"));
        assert!(!verify_password("not a phc string", "x"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn lockout_backs_off_exponentially_and_caps() {
        let p = LockoutPolicy::default();
        assert_eq!(p.lock_secs(4), None);
        assert_eq!(p.lock_secs(5), Some(30));
        assert_eq!(p.lock_secs(6), Some(60));
        assert_eq!(p.lock_secs(9), Some(480));
        assert_eq!(p.lock_secs(10), Some(900));
        assert_eq!(p.lock_secs(1_000_000), Some(900));
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert_eq!(
            normalize_username(" Alice@Example.com ").unwrap(),
            "alice@example.com"
        );
        assert!(normalize_username("").is_err());
        assert!(normalize_username("a b").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("twelve chars").is_ok());
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", "ab"));
    }
}
