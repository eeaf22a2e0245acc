//! The service account's access token (Google's "Using OAuth 2.0 for Server to Server
//! Applications"; RFC 7523): a JWT signed RS256 with the key file's private key — `iss` the
//! service account, `sub` the administrator impersonated through domain-wide delegation,
//! `scope` the read-only Directory scopes, `aud` the key file's `token_uri`, one hour — posted
//! as a `jwt-bearer` grant. The token is cached and fetched again at 80% of its life, or at
//! once when the API answers 401.

use crate::error::{SyncError, SyncResult};
use crate::source::token::{self, TokenCache};
use ring::signature::RsaKeyPair;
use serde::Deserialize;
use serde_json::json;
use std::fmt;

/// The read-only scopes the source asks for (what ssosync and idp-scim-sync use).
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// The assertion's life (Google's maximum).
const ASSERTION_LIFE: i64 = 3600;

/// The fields of a service-account key file the source uses.
#[derive(Deserialize)]
pub struct KeyFile {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key is never printed.
        f.debug_struct("KeyFile")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// A key file, parsed and its key loaded.
pub struct Signer {
    pub client_email: String,
    pub token_uri: String,
    key_id: Option<String>,
    key: RsaKeyPair,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads a key file's JSON. The errors say what is wrong without quoting the file.
    pub fn from_json(text: &str) -> SyncResult<Self> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            SyncError::Job(format!(
                "source.credentials is not a service-account key file (JSON with client_email, \
                 private_key, token_uri): {}",
                match e.classify() {
                    serde_json::error::Category::Data => "a field is missing or of the wrong type",
                    _ => "it is not JSON",
                }
            ))
        })?;
        if let Some(k) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(SyncError::Job(format!(
                "source.credentials is a key file of type '{}': create a service account key \
                 (IAM → Service accounts → Keys → Add key → JSON)",
                scim_proto::error::excerpt(k)
            )));
        }
        let key = token::rsa_key(&file.private_key, "source.credentials: private_key")?;
        Ok(Self {
            client_email: file.client_email,
            token_uri: file.token_uri,
            key_id: file.private_key_id,
            key,
        })
    }

    /// The signed assertion for `subject`, issued at `iat` (unix seconds).
    pub fn assertion(&self, subject: &str, scopes: &[&str], iat: i64) -> SyncResult<String> {
        let mut header = json!({});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "sub": subject,
            "scope": scopes.join(" "),
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFE,
        });
        token::sign_rs256(&self.key, header, &claims)
    }
}

/// Fetches and caches the access token.
pub struct TokenSource {
    signer: Signer,
    subject: String,
    http: reqwest::Client,
    cache: TokenCache,
}

impl TokenSource {
    pub fn new(signer: Signer, subject: String, http: reqwest::Client) -> Self {
        let material = signer.key.public().as_ref().to_vec();
        let cache = TokenCache::new(
            format!(
                "google\n{}\n{}\n{}\n{subject}",
                signer.token_uri,
                signer.client_email,
                signer.key_id.as_deref().unwrap_or_default(),
            ),
            &material,
        );
        Self {
            signer,
            subject,
            http,
            cache,
        }
    }

    async fn fetch(&self, now: i64) -> SyncResult<(String, i64)> {
        let assertion = self.signer.assertion(&self.subject, &SCOPES, now)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let who = "Google token endpoint";
        token::request(&self.http, &self.signer.token_uri, &form, who)
            .await?
            .map_err(|(status, e)| {
                SyncError::Source(explain_token_error(
                    status,
                    Some(e.error.as_str()).filter(|e| !e.is_empty()),
                    e.error_description.as_deref(),
                    &self.signer.client_email,
                    &self.subject,
                ))
            })
    }
}

#[async_trait::async_trait]
impl crate::source::rest::Auth for TokenSource {
    async fn token(&self, stale: Option<&str>) -> SyncResult<String> {
        // The wall clock, not the engine's: Google checks the assertion against real time.
        let now = token::wall_clock();
        self.cache.get(now, stale, || self.fetch(now)).await
    }
}

/// What a refused token request means, in words an administrator can act on.
pub fn explain_token_error(
    status: u16,
    error: Option<&str>,
    description: Option<&str>,
    client_email: &str,
    subject: &str,
) -> String {
    let said = match (error, description) {
        (Some(e), Some(d)) => format!("{e}: {}", scim_proto::error::excerpt(d)),
        (Some(e), None) => e.to_string(),
        _ => format!("HTTP {status}"),
    };
    let hint = match error {
        Some("unauthorized_client") => format!(
            "domain-wide delegation is not granted to this service account, or not for these \
             scopes: in the Admin console (Security → Access and data control → API controls → \
             Domain-wide delegation) add the service account's client ID with the scopes {}",
            SCOPES.join(",")
        ),
        Some("invalid_grant") => format!(
            "the assertion was refused: check that source.subject ({subject}) is an existing \
             administrator of the domain, that the key of {client_email} has not been deleted, \
             and that this machine's clock is right"
        ),
        Some("invalid_client") => format!(
            "the service account {client_email} or its key is unknown: download a new JSON key"
        ),
        _ => "the token endpoint refused the service account".into(),
    };
    format!("Google token endpoint refused the service account ({said}): {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_say_what_to_do() {
        let cases = [
            (401, Some("unauthorized_client"), "Domain-wide delegation"),
            (
                400,
                Some("invalid_grant"),
                "source.subject (admin@example.com)",
            ),
            (401, Some("invalid_client"), "download a new JSON key"),
            (500, None, "HTTP 500"),
        ];
        for (status, error, expect) in cases {
            let text = explain_token_error(status, error, None, "sa@p.iam", "admin@example.com");
            assert!(text.contains(expect), "{status} {error:?}: {text}");
        }
    }

    #[test]
    fn key_files_that_are_not_service_accounts_are_refused_without_quoting_them() {
        let cases = [
            ("{}", "not a service-account key file"),
            ("not json at all", "not a service-account key file"),
            (
                r#"{"type":"authorized_user","client_email":"a","private_key":"k"}"#,
                "type 'authorized_user'",
            ),
            (
                r#"{"client_email":"a","private_key":"secret-material"}"#,
                "not a PKCS#8 PEM key",
            ),
        ];
        for (text, expect) in cases {
            let e = Signer::from_json(text).expect_err(text).to_string();
            assert!(e.contains(expect), "{text}: {e}");
            assert!(!e.contains("secret-material"), "{e}");
        }
    }
}
