//! Entra's client-credentials grant (Microsoft identity platform, "OAuth 2.0 client
//! credentials flow"): `POST {authority}/{tenant}/oauth2/v2.0/token` with the application's
//! id, the `https://graph.microsoft.com/.default` scope and either its client secret or a
//! client assertion ("certificate credentials"): a JWT signed RS256 with the certificate's
//! key, its `x5t` header the certificate's SHA-1 thumbprint, `aud` the token endpoint, `iss`
//! and `sub` the application, ten minutes. The token is cached across cycles
//! (`source::token`). Refusals are explained by their AADSTS code.

use crate::error::{SyncError, SyncResult};
use crate::source::rest::Auth;
use crate::source::token::{self, OAuthError, TokenCache};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::RsaKeyPair;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the application proves who it is.
pub enum Credential {
    Secret(String),
    /// The certificate's key and its SHA-1 thumbprint (base64url), as uploaded to the app
    /// registration.
    Certificate {
        key: Box<RsaKeyPair>,
        x5t: String,
    },
}

impl Credential {
    /// What proves this credential, for the token cache's key (hashed there).
    pub fn material(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        match self {
            Credential::Secret(s) => s.as_bytes().to_vec(),
            Credential::Certificate { key, x5t } => {
                let mut m = key.public_key().as_ref().to_vec();
                m.extend_from_slice(x5t.as_bytes());
                m
            }
        }
    }

    /// A certificate credential from the PEM certificate and its PKCS#8 PEM key.
    pub fn certificate(cert_pem: &[u8], key_pem: &str) -> SyncResult<Self> {
        let cert = CertificateDer::from_pem_slice(cert_pem).map_err(|_| {
            SyncError::Job("source.certificate_file is not a PEM certificate".into())
        })?;
        let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        Ok(Credential::Certificate {
            key: Box::new(token::rsa_key(key_pem, "source.certificate_key")?),
            x5t: URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
        })
    }
}

pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub credential: Credential,
    pub http: reqwest::Client,
    pub cache: TokenCache,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the secret nor the key is ever printed.
        match self {
            Credential::Secret(_) => f.write_str("Secret(…)"),
            Credential::Certificate { x5t, .. } => write!(f, "Certificate(x5t {x5t})"),
        }
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is never printed.
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// The client assertion for a certificate credential.
    fn assertion(&self, key: &RsaKeyPair, x5t: &str, now: i64) -> SyncResult<String> {
        let claims = json!({
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        token::sign_rs256(key, json!({"x5t": x5t}), &claims)
    }

    async fn fetch(&self, now: i64) -> SyncResult<(String, i64)> {
        let mut form = vec![
            ("client_id", self.client_id.clone()),
            ("scope", GRAPH_SCOPE.to_string()),
            ("grant_type", "client_credentials".to_string()),
        ];
        match &self.credential {
            Credential::Secret(s) => form.push(("client_secret", s.clone())),
            Credential::Certificate { key, x5t } => {
                form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
                form.push(("client_assertion", self.assertion(key, x5t, now)?));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token::request(&self.http, &self.token_url, &form, "Entra token endpoint")
            .await?
            .map_err(|(status, e)| SyncError::Source(explain_token_error(status, &e)))
    }
}

#[async_trait::async_trait]
impl Auth for ClientCredentials {
    async fn token(&self, stale: Option<&str>) -> SyncResult<String> {
        // The wall clock, not the engine's: a token's life is real time.
        let now = token::wall_clock();
        self.cache.get(now, stale, || self.fetch(now)).await
    }
}

/// What a refused token request means, by its AADSTS code, in words an administrator can
/// act on. Entra's description is quoted up to its first line (no trace or correlation ids).
pub fn explain_token_error(status: u16, e: &OAuthError) -> String {
    let code = e.error_codes.first().copied();
    let hint = match code {
        Some(7_000_215) => {
            "the client secret is wrong: copy the secret's Value (not its ID) \
                            from App registrations → Certificates & secrets"
        }
        Some(7_000_222) => "the client secret has expired: create a new one and update the job",
        Some(700_016) => {
            "no application with this client_id in this tenant: check \
                          source.client_id and source.tenant_id (App registrations → Overview)"
        }
        Some(90_002) => {
            "the tenant does not exist: check source.tenant_id (the Directory \
                         (tenant) ID of the app registration)"
        }
        Some(700_027) => {
            "the client assertion was refused: check the certificate uploaded to \
                          the app registration"
        }
        _ => "the token endpoint refused the application",
    };
    let said = e
        .error_description
        .as_deref()
        .map(|d| d.lines().next().unwrap_or_default())
        .map(|d| d.split(" Trace ID").next().unwrap_or(d))
        .map(|d| format!(": {}", scim_proto::error::excerpt(d)))
        .unwrap_or_default();
    let error = if e.error.is_empty() {
        format!("HTTP {status}")
    } else {
        e.error.clone()
    };
    format!("Entra token endpoint refused the application ({error}{said}): {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_say_what_to_do() {
        let cases = [
            (7_000_215, "invalid_client", "copy the secret's Value"),
            (7_000_222, "invalid_client", "has expired"),
            (
                700_016,
                "unauthorized_client",
                "source.client_id and source.tenant_id",
            ),
            (90_002, "invalid_tenant", "source.tenant_id"),
            (1, "other", "refused the application"),
        ];
        for (code, error, expect) in cases {
            let e = OAuthError {
                error: error.into(),
                error_description: Some(format!(
                    "AADSTS{code}: Something. Trace ID: 0000 Correlation ID: 1111"
                )),
                error_codes: vec![code],
            };
            let text = explain_token_error(401, &e);
            assert!(text.contains(expect), "{code}: {text}");
            assert!(!text.contains("Trace ID"), "{text}");
        }
    }
}
