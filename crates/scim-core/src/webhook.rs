//! Webhook endpoints and their deliveries (docs/events.md, "Webhooks"): the data, the
//! Standard Webhooks signature and the retry schedule. No HTTP here: the deliverer
//! (`scim-webhook`) sends, the store keeps the endpoint's cursor (its checkpoint).
//!
//! Signing follows the Standard Webhooks specification: the secret is `whsec_` and base64 of
//! random bytes; the signature is `v1,` and base64 of HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the decoded bytes. While a rotated
//! secret overlaps, both signatures are sent, space-separated, so receivers can switch keys
//! without a gap.

use crate::change::TypeFilter;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::Sha256;
use std::time::Duration;

/// The prefix Standard Webhooks gives signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// A stored endpoint. The sealed secrets are never serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub tenant_id: i64,
    pub url: String,
    /// Comma-separated event types (empty: every type).
    pub types: String,
    pub description: String,
    /// The first characters of the current secret, to recognise it.
    pub secret_prefix: String,
    #[serde(skip)]
    pub sealed_secret: String,
    /// The previous secret during a rotation's overlap, and until when it is still used.
    #[serde(skip)]
    pub sealed_previous: Option<String>,
    pub previous_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub enabled: bool,
    /// Why it is disabled (an operator, or failing for longer than the retry window).
    pub disabled_reason: Option<String>,
    /// The last sequence delivered (or passed over by the type filter).
    pub cursor: i64,
    /// When the current run of failures began.
    pub failing_since: Option<Timestamp>,
    /// Failed attempts in a row on the event at the cursor.
    pub attempts: i64,
    /// When the next attempt is due (none: now).
    pub next_attempt_at: Option<Timestamp>,
}

impl WebhookEndpoint {
    pub fn type_filter(&self) -> TypeFilter {
        // Stored only after parsing; a value that no longer parses delivers everything
        // rather than nothing (nothing is lost).
        TypeFilter::parse(&self.types).unwrap_or_default()
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub event_id: String,
    /// None for test events (outside the feed).
    pub sequence: Option<i64>,
    pub event_type: String,
    pub attempt: i64,
    pub at: Timestamp,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// What went wrong (a timeout, a refused connection, a non-2xx status).
    pub error: Option<String>,
    /// The first bytes of the answer.
    pub response: Option<String>,
}

impl WebhookDelivery {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How an endpoint's row changes after an attempt (written with the attempt, in one
/// transaction, only if the endpoint's cursor is still where the attempt started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointProgress {
    pub cursor: i64,
    pub attempts: i64,
    pub failing_since: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    /// Disable the endpoint, saying why.
    pub disable: Option<String>,
}

/// The retry schedule: exponential from `first_retry`, doubling up to `max_interval`, for
/// `give_up_after` since the first failure; then the endpoint is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_retry: Duration,
    pub max_interval: Duration,
    pub give_up_after: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(5),
            max_interval: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failure in a row (1-based), without jitter.
    pub fn delay(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.first_retry
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_interval)
    }

    /// The endpoint's row after a failed attempt at `now`.
    pub fn after_failure(
        &self,
        ep: &WebhookEndpoint,
        now: Timestamp,
        why: &str,
    ) -> EndpointProgress {
        let since = ep.failing_since.unwrap_or(now);
        let attempts = ep.attempts + 1;
        let give_up = now - since
            >= time::Duration::try_from(self.give_up_after).unwrap_or(time::Duration::MAX);
        let delay = time::Duration::try_from(self.delay(attempts)).unwrap_or(time::Duration::MAX);
        EndpointProgress {
            cursor: ep.cursor,
            attempts,
            failing_since: Some(since),
            next_attempt_at: Some(now + delay),
            disable: give_up.then(|| {
                format!(
                    "failing since {} ({attempts} attempts); last: {why}",
                    since.rfc3339()
                )
            }),
        }
    }
}

/// A new signing secret (`whsec_` + base64 of 32 random bytes).
pub fn generate_secret() -> String {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(k))
}

/// The key bytes of a secret (with or without the `whsec_` prefix).
fn key_of(secret: &str) -> CoreResult<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(b64)
        .map_err(|_| CoreError::Internal("a webhook secret is not base64".into()))
}

/// Checks a signing secret a person gave (`whsec_` and base64 of at least 16 bytes; a bare
/// base64 secret is accepted too).
pub fn check_secret(secret: &str) -> CoreResult<()> {
    match key_of(secret.trim()) {
        Ok(k) if k.len() >= 16 => Ok(()),
        _ => Err(CoreError::Invalid(
            "a webhook secret must be whsec_ followed by base64 of at least 16 bytes".into(),
        )),
    }
}

/// `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> CoreResult<String> {
    let key = key_of(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| CoreError::Internal("a webhook secret cannot key HMAC".into()))?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// An endpoint URL must be absolute http(s) with a host, and carry no credentials (they
/// would be shown in lists).
pub fn check_url(raw: &str) -> CoreResult<String> {
    let u = url::Url::parse(raw.trim()).map_err(|e| {
        CoreError::Invalid(format!(
            "'{}' is not a URL: {e}",
            scim_proto::error::excerpt(raw)
        ))
    })?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(CoreError::Invalid(
            "a webhook URL must start with https:// (or http://) and name a host".into(),
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(CoreError::Invalid(
            "a webhook URL may not hold a user or password; receivers check the signature".into(),
        ));
    }
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The test vector of the Standard Webhooks reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_and_urls() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(key_of(&s).unwrap().len(), 32);
        assert_ne!(generate_secret(), s);
        assert!(check_secret(&s).is_ok());
        assert!(check_secret("whsec_c2hvcnQ=").is_err());
        assert!(check_secret("not base64!").is_err());
        assert!(check_url("https://hooks.example.com/scim").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("https://u:p@x.example").is_err());
    }

    #[test]
    fn backoff_doubles_to_a_ceiling_and_gives_up_after_the_window() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_secs(5));
        assert_eq!(p.delay(2), Duration::from_secs(10));
        assert_eq!(p.delay(5), Duration::from_secs(80));
        assert_eq!(p.delay(40), Duration::from_secs(3600));
        let t0 = Timestamp::from_micros(1_000_000_000_000);
        let mut ep = WebhookEndpoint {
            id: "we_1".into(),
            tenant_id: 1,
            url: "https://x.example".into(),
            types: String::new(),
            description: String::new(),
            secret_prefix: "whsec_ab".into(),
            sealed_secret: String::new(),
            sealed_previous: None,
            previous_until: None,
            created_at: t0,
            enabled: true,
            disabled_reason: None,
            cursor: 7,
            failing_since: None,
            attempts: 0,
            next_attempt_at: None,
        };
        let first = p.after_failure(&ep, t0, "500");
        assert_eq!(first.failing_since, Some(t0));
        assert_eq!(first.next_attempt_at, Some(t0 + time::Duration::seconds(5)));
        assert_eq!(
            (first.cursor, first.attempts, first.disable.clone()),
            (7, 1, None)
        );
        ep.failing_since = Some(t0);
        ep.attempts = 60;
        let late = p.after_failure(&ep, t0 + time::Duration::days(3), "timed out");
        assert!(late.disable.unwrap().contains("timed out"));
    }
}
