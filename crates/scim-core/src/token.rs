//! Bearer tokens (modelled on the token screens of the reference admin guides).
//!
//! A token has a name, endpoint scopes (Users, Groups, Bulk), each Read or Read+Write, an
//! optional expiry and a revoked flag. The secret is `scimd_` followed by 256 random bits in
//! base64url; only its SHA-256 is stored, and it is shown once. `rotate` issues a new secret
//! and keeps the previous one valid for a grace period, so an admin can paste the new one
//! into the IdP without an outage.

use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The prefix that makes a scimd secret recognisable (e.g. to secret scanners).
pub const SECRET_PREFIX: &str = "scimd_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Endpoint {
    Users,
    Groups,
    Bulk,
    /// The change feed (`/t/{tenant}/events`), read only: what the host app's own code uses,
    /// not the IdP (docs/events.md).
    Events,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Users => "users",
            Endpoint::Groups => "groups",
            Endpoint::Bulk => "bulk",
            Endpoint::Events => "events",
        }
    }
}

/// Read allows GET (and POST `.search`); Read+Write allows every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Privilege {
    Read,
    ReadWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenScope {
    pub endpoint: Endpoint,
    pub privilege: Privilege,
}

impl TokenScope {
    /// `users:rw`, `groups:r`, `bulk:rw` (also `read`/`write`/`readwrite` spelt out).
    pub fn parse(s: &str) -> CoreResult<Self> {
        let (ep, pr) = s
            .split_once(':')
            .ok_or_else(|| CoreError::Invalid(format!("scope '{s}' must look like users:rw")))?;
        let endpoint = match ep.to_ascii_lowercase().as_str() {
            "users" => Endpoint::Users,
            "groups" => Endpoint::Groups,
            "bulk" => Endpoint::Bulk,
            "events" => Endpoint::Events,
            other => {
                return Err(CoreError::Invalid(format!(
                    "unknown endpoint '{other}' in scope '{s}': use users, groups, bulk or events"
                )));
            }
        };
        let privilege = match pr.to_ascii_lowercase().as_str() {
            "r" | "read" => Privilege::Read,
            "rw" | "readwrite" | "read+write" | "write" => Privilege::ReadWrite,
            other => {
                return Err(CoreError::Invalid(format!(
                    "unknown privilege '{other}' in scope '{s}': use r or rw"
                )));
            }
        };
        if endpoint == Endpoint::Events && privilege == Privilege::ReadWrite {
            return Err(CoreError::Invalid(format!(
                "the events endpoint is read-only: use events:r, not '{s}'"
            )));
        }
        Ok(Self {
            endpoint,
            privilege,
        })
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.privilege {
            Privilege::Read => "r",
            Privilege::ReadWrite => "rw",
        };
        write!(f, "{}:{p}", self.endpoint.as_str())
    }
}

/// A token's scopes; one entry per endpoint at most (the highest privilege wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenScopes(pub Vec<TokenScope>);

impl TokenScopes {
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> CoreResult<Self> {
        let mut out: Vec<TokenScope> = Vec::new();
        for item in items {
            for part in item.as_ref().split([' ', ',']).filter(|p| !p.is_empty()) {
                let s = TokenScope::parse(part)?;
                match out.iter_mut().find(|o| o.endpoint == s.endpoint) {
                    Some(o) => o.privilege = o.privilege.max(s.privilege),
                    None => out.push(s),
                }
            }
        }
        if out.is_empty() {
            return Err(CoreError::Invalid(
                "a token needs at least one scope, e.g. users:rw".into(),
            ));
        }
        Ok(Self(out))
    }

    /// Every endpoint, read+write: the bootstrap token.
    pub fn all() -> Self {
        Self(
            [Endpoint::Users, Endpoint::Groups, Endpoint::Bulk]
                .into_iter()
                .map(|endpoint| TokenScope {
                    endpoint,
                    privilege: Privilege::ReadWrite,
                })
                .collect(),
        )
    }

    pub fn allows(&self, endpoint: Endpoint, write: bool) -> bool {
        self.0
            .iter()
            .any(|s| s.endpoint == endpoint && (!write || s.privilege == Privilege::ReadWrite))
    }

    /// Whether the token may use any SCIM endpoint at all (discovery needs one; the events
    /// feed is not a SCIM endpoint).
    pub fn any(&self) -> bool {
        self.0.iter().any(|s| s.endpoint != Endpoint::Events)
    }
}

impl fmt::Display for TokenScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(" "))
    }
}

/// A stored token. Holds hashes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub tenant_id: i64,
    pub name: String,
    /// The first characters of the secret, for recognising it in lists.
    pub prefix: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub scopes: TokenScopes,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    #[serde(skip)]
    pub previous_secret_hash: Option<String>,
    pub previous_valid_until: Option<Timestamp>,
}

/// Why a presented secret is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Revoked,
    Expired,
}

/// What an admin sees of a token's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    Revoked,
    Expired,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "Active",
            TokenStatus::Revoked => "Revoked",
            TokenStatus::Expired => "Expired",
        }
    }
}

impl TokenRecord {
    /// Revoked wins over expired; a token past `expires_at` is expired.
    pub fn status(&self, now: Timestamp) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }

    /// Checks a secret whose hash matched this record's current or previous hash.
    pub fn check(&self, presented_hash: &str, now: Timestamp) -> Result<(), TokenRejection> {
        if self.revoked_at.is_some() {
            return Err(TokenRejection::Revoked);
        }
        if self.expires_at.is_some_and(|e| e <= now) {
            return Err(TokenRejection::Expired);
        }
        let current: bool = self
            .secret_hash
            .as_bytes()
            .ct_eq(presented_hash.as_bytes())
            .into();
        if current {
            return Ok(());
        }
        let previous = self
            .previous_secret_hash
            .as_ref()
            .is_some_and(|h| bool::from(h.as_bytes().ct_eq(presented_hash.as_bytes())));
        if previous && self.previous_valid_until.is_some_and(|u| u > now) {
            return Ok(());
        }
        if previous {
            return Err(TokenRejection::Expired);
        }
        Err(TokenRejection::Unknown)
    }
}

/// A freshly issued token: the record to store and the secret to show once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub record: TokenRecord,
    pub secret: String,
}

/// SHA-256 of a secret, hex-encoded: what is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret (256 bits) with its hash and display prefix.
pub fn generate_secret() -> (String, String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let prefix = secret.chars().take(SECRET_PREFIX.len() + 6).collect();
    let hash = hash_secret(&secret);
    (secret, hash, prefix)
}

/// Issues a token for a tenant.
pub fn issue(
    tenant_id: i64,
    name: &str,
    scopes: TokenScopes,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> CoreResult<IssuedToken> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CoreError::Invalid(
            "a token needs a name of 1-200 characters, without control characters".into(),
        ));
    }
    let (secret, secret_hash, prefix) = generate_secret();
    Ok(IssuedToken {
        record: TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id,
            name: name.to_string(),
            prefix,
            secret_hash,
            scopes,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            previous_secret_hash: None,
            previous_valid_until: None,
        },
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_allow() {
        let s = TokenScopes::parse_list(&["users:rw", "groups:r"]).unwrap();
        assert!(s.allows(Endpoint::Users, true));
        assert!(s.allows(Endpoint::Groups, false));
        assert!(!s.allows(Endpoint::Groups, true));
        assert!(!s.allows(Endpoint::Bulk, false));
        assert_eq!(s.to_string(), "users:rw groups:r");
        let merged = TokenScopes::parse_list(&["groups:r groups:rw"]).unwrap();
        assert_eq!(merged.to_string(), "groups:rw");
        assert!(TokenScopes::parse_list(&["devices:rw"]).is_err());
        assert!(TokenScopes::parse_list(&["users:admin"]).is_err());
        assert!(TokenScopes::parse_list(&["events:rw"]).is_err());
        let events = TokenScopes::parse_list(&["events:r"]).unwrap();
        assert!(events.allows(Endpoint::Events, false) && !events.any());
        assert_eq!(TokenScopes::parse_list(&["events:read"]).unwrap(), events);
        assert!(TokenScopes::parse_list::<&str>(&[]).is_err());
        assert_eq!(
            TokenScopes::parse_list(&[TokenScopes::all().to_string()]).unwrap(),
            TokenScopes::all()
        );
    }

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let (a, ha, pa) = generate_secret();
        let (b, hb, _) = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("scimd_") && a.len() == 6 + 43);
        assert_eq!(ha, hash_secret(&a));
        assert_ne!(ha, hb);
        assert_eq!(ha.len(), 64);
        assert!(a.starts_with(&pa));
    }

    #[test]
    fn check_honours_revocation_expiry_and_rotation_grace() {
        let ts = Timestamp::from_micros;
        let t = issue(1, "entra", TokenScopes::all(), Some(ts(1_000)), ts(0)).unwrap();
        let h = hash_secret(&t.secret);
        assert_eq!(t.record.check(&h, ts(10)), Ok(()));
        assert_eq!(t.record.check(&h, ts(1_000)), Err(TokenRejection::Expired));
        assert_eq!(t.record.check("nope", ts(10)), Err(TokenRejection::Unknown));
        let mut revoked = t.record.clone();
        revoked.revoked_at = Some(ts(5));
        assert_eq!(revoked.check(&h, ts(10)), Err(TokenRejection::Revoked));
        let mut rotated = t.record.clone();
        rotated.previous_secret_hash = Some(h.clone());
        rotated.previous_valid_until = Some(ts(100));
        rotated.secret_hash = "new".into();
        assert_eq!(rotated.check(&h, ts(50)), Ok(()));
        assert_eq!(rotated.check(&h, ts(100)), Err(TokenRejection::Expired));
    }
}
