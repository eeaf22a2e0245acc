//! OAuth access tokens for the directory sources (Google's service-account grant, Entra's
//! client credentials): the token endpoint's form POST with its answer read up to a cap, and
//! a cache kept across cycles (a source is built for each cycle; a token lives an hour),
//! renewed at 80% of its life or at once when the API refuses it. Only this process holds
//! the tokens; they are never logged or stored.

use crate::error::{SyncError, SyncResult};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex as SyncMutex};
use tokio::sync::Mutex;

/// Answers of a token endpoint read at most.
const MAX_TOKEN_ANSWER: usize = 64 * 1024;

static TOKENS: LazyLock<SyncMutex<HashMap<String, Cached>>> = LazyLock::new(Default::default);

#[derive(Clone)]
struct Cached {
    token: String,
    /// When to fetch a new one (unix seconds).
    renew_at: i64,
}

/// An RSA private key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); `what` names it
/// in errors, which never quote the key.
pub fn rsa_key(pem: &str, what: &str) -> SyncResult<RsaKeyPair> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        SyncError::Job(format!(
            "{what} is not a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----)"
        ))
    })?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| SyncError::Job(format!("{what} is not a usable RSA key ({e})")))
}

/// A JWT signed RS256 (RFC 7515 compact form) with `header` (`alg` set here) and `claims`.
pub fn sign_rs256(key: &RsaKeyPair, mut header: Value, claims: &Value) -> SyncResult<String> {
    header["alg"] = Value::from("RS256");
    header["typ"] = Value::from("JWT");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| SyncError::Source("signing a token assertion failed".into()))?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Now, in unix seconds, by the system's clock: tokens and assertions are checked by other
/// hosts against real time, whatever clock the engine runs on (tests move the engine's).
pub fn wall_clock() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "default_life")]
    expires_in: i64,
}

fn default_life() -> i64 {
    3600
}

/// An OAuth error answer (RFC 6749 §5.2; Entra adds `error_codes`).
#[derive(Debug, Default, Deserialize)]
pub struct OAuthError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

/// A refused token request: the HTTP status and what the endpoint said.
pub type TokenRefusal = (u16, OAuthError);

/// POSTs `form` to the token endpoint `url`: the token and its life in seconds, or the
/// endpoint's refusal. `who` names the endpoint in transport errors.
pub async fn request(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    who: &str,
) -> SyncResult<Result<(String, i64), TokenRefusal>> {
    let resp = http.post(url).form(form).send().await.map_err(|e| {
        SyncError::Source(format!(
            "{who} {url}: {}",
            scim_client::ClientError::from(e)
        ))
    })?;
    let status = resp.status();
    let body = scim_net::read_capped(resp, MAX_TOKEN_ANSWER)
        .await
        .map_err(|e| SyncError::Source(format!("{who}: {e}")))?;
    if !status.is_success() {
        let err = serde_json::from_slice::<OAuthError>(&body).unwrap_or_default();
        return Ok(Err((status.as_u16(), err)));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| SyncError::Source(format!("{who}: the answer has no access_token")))?;
    Ok(Ok((answer.access_token, answer.expires_in)))
}

/// One credential's cached token.
pub struct TokenCache {
    key: String,
    /// One fetch at a time.
    fetching: Mutex<()>,
}

impl TokenCache {
    /// `key` names the credential (endpoint, client, subject); `material` is the secret or
    /// key itself, kept only as a SHA-256 in the key: a job that names the same client with
    /// another (or a wrong) secret never gets this one's token.
    pub fn new(key: String, material: &[u8]) -> Self {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(material);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            key: format!("{key}\n{hex}"),
            fetching: Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<Cached> {
        TOKENS.lock().ok().and_then(|m| m.get(&self.key).cloned())
    }

    /// The current token at `now` (unix seconds), fetched by `fetch` (the token and its life
    /// in seconds) when there is none, it is due for renewal, or it is `stale` (refused).
    pub async fn get<F, Fut>(&self, now: i64, stale: Option<&str>, fetch: F) -> SyncResult<String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = SyncResult<(String, i64)>>,
    {
        let usable = |c: &Cached| now < c.renew_at && stale != Some(c.token.as_str());
        if let Some(c) = self.cached().filter(usable) {
            return Ok(c.token);
        }
        let _one = self.fetching.lock().await;
        if let Some(c) = self.cached().filter(usable) {
            return Ok(c.token);
        }
        let (token, life) = fetch().await?;
        let life = life.clamp(60, 24 * 3600);
        if let Ok(mut m) = TOKENS.lock() {
            m.retain(|_, c| c.renew_at > now);
            m.insert(
                self.key.clone(),
                Cached {
                    token: token.clone(),
                    renew_at: now + life * 4 / 5,
                },
            );
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_reused_until_due_or_refused() {
        let cache = TokenCache::new("test\ntokens_are_reused".into(), b"secret");
        let other = TokenCache::new("test\ntokens_are_reused".into(), b"another secret");
        let fetches = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok((format!("t{n}"), 100))
        };
        assert_eq!(cache.get(1000, None, fetch).await.expect("t0"), "t0");
        assert_eq!(
            cache.get(1079, None, fetch).await.expect("t0"),
            "t0",
            "at 79%"
        );
        assert_eq!(
            cache.get(1080, None, fetch).await.expect("t1"),
            "t1",
            "at 80%"
        );
        assert_eq!(
            cache.get(1081, Some("t1"), fetch).await.expect("t2"),
            "t2",
            "refused"
        );
        assert_eq!(cache.get(1082, Some("t1"), fetch).await.expect("t2"), "t2");
        // The same client with another secret: not this token.
        assert_eq!(other.get(1083, None, fetch).await.expect("t3"), "t3");
    }
}
