//! The service account's access token (Google's "Using OAuth 2.0 for Server to Server
//! Applications"; RFC 7523): a JWT signed RS256 with the key file's private key — `iss` the
//! service account, `sub` the administrator impersonated through domain-wide delegation,
//! `scope` the read-only Directory scopes, `aud` the key file's `token_uri`, one hour — posted
//! as a `jwt-bearer` grant. The token is cached and fetched again at 80% of its life, or at
//! once when the API answers 401.

use crate::error::{SyncError, SyncResult};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::fmt;
use tokio::sync::Mutex;

/// The read-only scopes the source asks for (what ssosync and idp-scim-sync use).
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// The assertion's life (Google's maximum).
const ASSERTION_LIFE: i64 = 3600;
/// Answers of the token endpoint read at most.
const MAX_TOKEN_ANSWER: usize = 64 * 1024;

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
        let der =
            PrivatePkcs8KeyDer::from_pem_slice(file.private_key.as_bytes()).map_err(|_| {
                SyncError::Job(
                    "source.credentials: private_key is not a PKCS#8 PEM key \
                 (-----BEGIN PRIVATE KEY-----)"
                        .into(),
                )
            })?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| {
            SyncError::Job(format!(
                "source.credentials: private_key is not a usable RSA key ({e})"
            ))
        })?;
        Ok(Self {
            client_email: file.client_email,
            token_uri: file.token_uri,
            key_id: file.private_key_id,
            key,
        })
    }

    /// The signed assertion for `subject`, issued at `iat` (unix seconds).
    pub fn assertion(&self, subject: &str, scopes: &[&str], iat: i64) -> SyncResult<String> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
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
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| SyncError::Source("signing the token assertion failed".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "default_life")]
    expires_in: i64,
}

fn default_life() -> i64 {
    3600
}

/// An OAuth error answer (`{"error": "...", "error_description": "..."}`).
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Tokens by service account, subject and token endpoint, kept across cycles (a source is
/// built for each cycle; a token lives an hour). Only this process holds them.
static TOKENS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Cached>>> =
    std::sync::LazyLock::new(Default::default);

/// A cached access token.
#[derive(Clone)]
struct Cached {
    token: String,
    /// When to fetch a new one (unix seconds): at 80% of its life.
    renew_at: i64,
}

/// Fetches and caches the access token.
pub struct TokenSource {
    signer: Signer,
    subject: String,
    http: reqwest::Client,
    /// One fetch at a time.
    fetching: Mutex<()>,
}

impl TokenSource {
    pub fn new(signer: Signer, subject: String, http: reqwest::Client) -> Self {
        Self {
            signer,
            subject,
            http,
            fetching: Mutex::new(()),
        }
    }

    fn cache_key(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.signer.token_uri,
            self.signer.client_email,
            self.signer.key_id.as_deref().unwrap_or_default(),
            self.subject
        )
    }

    fn cached(&self) -> Option<Cached> {
        TOKENS
            .lock()
            .ok()
            .and_then(|m| m.get(&self.cache_key()).cloned())
    }

    /// The current token, fetched when there is none or it is due for renewal; `stale` (the
    /// API refused it) forces a new one.
    pub async fn token(&self, now: i64, stale: Option<&str>) -> SyncResult<String> {
        let usable = |c: &Cached| now < c.renew_at && stale != Some(c.token.as_str());
        if let Some(c) = self.cached().filter(usable) {
            return Ok(c.token);
        }
        let _one = self.fetching.lock().await;
        if let Some(c) = self.cached().filter(usable) {
            return Ok(c.token);
        }
        let fresh = self.fetch(now).await?;
        let token = fresh.token.clone();
        if let Ok(mut m) = TOKENS.lock() {
            m.retain(|_, c| c.renew_at > now);
            m.insert(self.cache_key(), fresh);
        }
        Ok(token)
    }

    async fn fetch(&self, now: i64) -> SyncResult<Cached> {
        let assertion = self.signer.assertion(&self.subject, &SCOPES, now)?;
        let resp = self
            .http
            .post(&self.signer.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                SyncError::Source(format!(
                    "Google token endpoint {}: {}",
                    self.signer.token_uri,
                    scim_client::ClientError::from(e)
                ))
            })?;
        let status = resp.status();
        let body = scim_net::read_capped(resp, MAX_TOKEN_ANSWER)
            .await
            .map_err(|e| SyncError::Source(format!("Google token endpoint: {e}")))?;
        if !status.is_success() {
            let err = serde_json::from_slice::<OAuthError>(&body).ok();
            return Err(SyncError::Source(explain_token_error(
                status.as_u16(),
                err.as_ref().map(|e| e.error.as_str()),
                err.as_ref().and_then(|e| e.error_description.as_deref()),
                &self.signer.client_email,
                &self.subject,
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            SyncError::Source("Google token endpoint: the answer has no access_token".into())
        })?;
        let life = answer.expires_in.clamp(60, 24 * 3600);
        Ok(Cached {
            token: answer.access_token,
            renew_at: now + life * 4 / 5,
        })
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
