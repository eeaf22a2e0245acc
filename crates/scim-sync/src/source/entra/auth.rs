//! Entra's client-credentials grant (Microsoft identity platform, "OAuth 2.0 client
//! credentials flow"): `POST {authority}/{tenant}/oauth2/v2.0/token` with the application's
//! id, the `https://graph.microsoft.com/.default` scope and its client secret. The token is
//! cached across cycles (`source::token`). Refusals are explained by their AADSTS code.

use crate::error::{SyncError, SyncResult};
use crate::model::Clock;
use crate::source::rest::Auth;
use crate::source::token::{self, OAuthError, TokenCache};

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub secret: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    pub cache: TokenCache,
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
    async fn fetch(&self) -> SyncResult<(String, i64)> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", GRAPH_SCOPE),
            ("client_secret", self.secret.as_str()),
            ("grant_type", "client_credentials"),
        ];
        token::request(&self.http, &self.token_url, &form, "Entra token endpoint")
            .await?
            .map_err(|(status, e)| SyncError::Source(explain_token_error(status, &e)))
    }
}

#[async_trait::async_trait]
impl Auth for ClientCredentials {
    async fn token(&self, stale: Option<&str>) -> SyncResult<String> {
        let now = (self.clock)().to_datetime().unix_timestamp();
        self.cache.get(now, stale, || self.fetch()).await
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
