//! Console operators and their sessions.
//!
//! Operators are the people who run scimd (not SCIM users): created with `scimd admin
//! create`, they sign in to the web console. Passwords are stored as Argon2id PHC strings
//! (OWASP's parameters: 19 MiB, 2 passes). A session is a random 256-bit cookie value of which
//! only the SHA-256 is stored, with its own CSRF token; several stateless nodes behind a load
//! balancer therefore share sessions through the database.
//!
//! The answer to a failed sign-in never says whether the name exists; repeated attempts are
//! throttled per (client address, name) by the console (`scim-server`), never by locking
//! the account for everyone.

use crate::access::Role;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
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
    pub created_at: Timestamp,
    pub failed_logins: i64,
    pub locked_until: Option<Timestamp>,
    pub last_login_at: Option<Timestamp>,
    /// Instance admin, or tenant admin of the tenants granted (`crate::access`).
    pub role: Role,
    /// The TOTP secret, sealed under the instance key (`crate::second_factor`).
    #[serde(skip)]
    pub totp_sealed: Option<String>,
}

impl Operator {
    /// Whether a second factor is set up.
    pub fn has_second_factor(&self) -> bool {
        self.totp_sealed.is_some()
    }
}

/// A stored console session (the cookie value itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub operator_id: i64,
    /// Sent back in every form; compared on every state-changing request.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Sessions last 12 hours; the operator signs in again after that.
pub const SESSION_TTL: time::Duration = time::Duration::hours(12);

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
        .map_err(|e| CoreError::Internal(format!("cannot hash a password: {e}")))
}

/// Constant-time check of `pw` against a PHC string; a malformed hash never verifies.
pub fn verify_password(phc: &str, pw: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A hash of a password nobody knows: verified against when the name does not exist, so a
/// failed sign-in takes as long whether or not the operator exists. Made once; a failure to
/// make it is an error, never an empty hash that would verify instantly.
pub fn decoy_hash() -> CoreResult<&'static str> {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DECOY.get() {
        return Ok(h);
    }
    let h = hash_password("decoy password that never matches")?;
    Ok(DECOY.get_or_init(|| h))
}

/// 256 random bits, base64url: session cookie values and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a sign-in was refused. The console shows one message for `BadCredentials` whatever the
/// cause (unknown name or wrong password).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error(transparent)]
    Core(#[from] CoreError),
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
