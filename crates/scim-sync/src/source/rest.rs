//! A directory API's GETs as the Google and Entra sources make them: paced under the API's
//! quota, with the source's bearer token (fetched again once when the API refuses it), the
//! answer read up to a byte cap, and retried through throttling and server faults —
//! exponential backoff with up to a second of jitter, or the API's `Retry-After` — a set
//! number of times. What an error answer means is the API's to say ([`Classify`]).

use crate::error::{SyncError, SyncResult};
use async_trait::async_trait;
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One page's answer read at most.
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(64);

type Pacer = governor::DefaultDirectRateLimiter;

/// The source's access token.
#[async_trait]
pub trait Auth: Send + Sync {
    /// The current token; `stale` (one the API refused) forces a new one.
    async fn token(&self, stale: Option<&str>) -> SyncResult<String>;
}

/// What an error answer means, per API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Throttled or a server fault: try again later.
    Retry { throttled: bool },
    /// The token was refused: fetch a new one and try again, once.
    Reauth,
    /// No retry helps: the caller says why.
    Fail,
}

pub type Classify = fn(u16, &Value) -> Verdict;

/// An error answer no retry got past.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub body: Value,
    /// `Location`, when the API sent one (Graph's 410 for a resync).
    pub location: Option<String>,
}

/// Counts of one read, for the log.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
}

impl Stats {
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
        )
    }
}

pub struct Rest {
    pub http: reqwest::Client,
    pub pacer: Option<Arc<Pacer>>,
    /// Tries of one page (the first included).
    pub attempts: u32,
    /// The first backoff (doubled each time).
    pub backoff: Duration,
    pub stats: Stats,
    /// The API's name in messages (`Google Directory API`).
    pub api: &'static str,
    pub classify: Classify,
}

/// A URL a directory source sends credentials or tokens to: parsed, allowed by the
/// outbound policy, and `https` (plain `http` only to this machine's loopback, for tests
/// and local proxies: a secret is never sent in clear over a network).
pub fn checked_url(policy: &scim_net::Policy, url: &str) -> SyncResult<()> {
    let parsed = scim_net::Url::parse(url)
        .map_err(|e| SyncError::Job(format!("source: '{url}' is not a URL: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(SyncError::Job(format!(
            "source: {url} must be an https URL (credentials and tokens are sent to it)"
        )));
    }
    policy
        .check_url(&parsed)
        .map_err(|e| SyncError::Job(format!("source: {url}: {e}")))
}

/// A pacer letting `per_second` requests through (none for 0).
pub fn pacer(per_second: u32) -> Option<Arc<Pacer>> {
    let n = std::num::NonZeroU32::new(per_second)?;
    Some(Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(n),
    )))
}

/// The wait before try `n` (1-based) after a throttled or failed one: `base · 2^(n-1)` plus
/// up to a second of jitter, at most [`MAX_BACKOFF`]; a `Retry-After` is honoured instead.
pub fn backoff(base: Duration, n: u32, retry_after: Option<Duration>, jitter_ms: u64) -> Duration {
    if let Some(r) = retry_after {
        return r.min(MAX_BACKOFF);
    }
    let exp = base.saturating_mul(1 << n.saturating_sub(1).min(16));
    (exp + Duration::from_millis(jitter_ms.min(1000))).min(MAX_BACKOFF)
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What one try came to.
enum Try {
    Page(Value),
    Again(Option<Duration>, String),
    Reauth,
    Refused(Refusal),
}

impl Rest {
    async fn try_once(&self, url: &str, query: &[(&str, String)], token: &str) -> SyncResult<Try> {
        if let Some(p) = &self.pacer {
            p.until_ready().await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let sent = self.http.get(url).query(query).bearer_auth(token).send();
        let resp = match sent.await {
            Ok(r) => r,
            Err(e) => {
                let e = scim_client::ClientError::from(e);
                if e.is_transient() {
                    return Ok(Try::Again(None, e.to_string()));
                }
                return Err(SyncError::Source(format!("{}: {e}", self.api)));
            }
        };
        let status = resp.status().as_u16();
        let wait = scim_client::retry_after(resp.headers());
        let location = header(&resp, reqwest::header::LOCATION);
        let body = match scim_net::read_capped(resp, MAX_PAGE_BYTES).await {
            Ok(b) => b,
            Err(scim_net::ReadError::Http(e)) => return Ok(Try::Again(None, e.to_string())),
            Err(e) => return Err(SyncError::Source(format!("{}: {e}", self.api))),
        };
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(if json.is_object() {
                Try::Page(json)
            } else {
                Try::Again(
                    None,
                    format!("HTTP {status} with a body that is not a JSON object"),
                )
            });
        }
        Ok(match (self.classify)(status, &json) {
            Verdict::Retry { throttled } => {
                if throttled {
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                }
                Try::Again(wait, format!("HTTP {status}"))
            }
            Verdict::Reauth => Try::Reauth,
            Verdict::Fail => Try::Refused(Refusal {
                status,
                body: json,
                location,
            }),
        })
    }

    /// One page: GET `url` with `query`, through throttling and one refused token. An error
    /// answer no retry helps is the `Err` of the inner result; a page still failing after
    /// every try is the outer error, which says the read is abandoned.
    pub async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
        auth: &dyn Auth,
    ) -> SyncResult<Result<Value, Refusal>> {
        let mut stale: Option<String> = None;
        let mut reauthorized = false;
        let mut n = 0;
        loop {
            n += 1;
            let token = auth.token(stale.as_deref()).await?;
            match self.try_once(url, query, &token).await? {
                Try::Page(v) => return Ok(Ok(v)),
                Try::Refused(r) => return Ok(Err(r)),
                Try::Reauth if reauthorized => {
                    return Ok(Err(Refusal {
                        status: 401,
                        body: Value::Null,
                        location: None,
                    }));
                }
                Try::Reauth => {
                    reauthorized = true;
                    stale = Some(token);
                    n -= 1;
                }
                Try::Again(after, why) => {
                    if n >= self.attempts {
                        let path = url.split('?').next().unwrap_or(url);
                        return Err(SyncError::Source(format!(
                            "{}, {path}: still failing after {n} tries ({why}); the read is \
                             abandoned and nothing is deprovisioned",
                            self.api
                        )));
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let jitter = rand::thread_rng().gen_range(0..1000);
                    tokio::time::sleep(backoff(self.backoff, n, after, jitter)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_over_https_only() {
        let p = scim_net::Policy::allow_local();
        let cases = [
            ("https://graph.microsoft.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost:8080/token", true),
            ("http://[::1]:8080", true),
            ("http://graph.microsoft.com", false),
            ("http://10.0.0.5/token", false),
            ("ftp://x", false),
            ("not a url", false),
        ];
        for (url, ok) in cases {
            assert_eq!(checked_url(&p, url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = Duration::from_secs;
        let cases = [
            (1, None, 0, s(1)),
            (2, None, 500, Duration::from_millis(2500)),
            (3, None, 0, s(4)),
            (10, None, 999, MAX_BACKOFF),
            (2, Some(s(7)), 500, s(7)),
            (2, Some(s(600)), 0, MAX_BACKOFF),
        ];
        for (n, after, jitter, want) in cases {
            assert_eq!(backoff(s(1), n, after, jitter), want, "{n} {after:?}");
        }
    }
}
