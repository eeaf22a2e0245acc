//! The Admin SDK Directory API's read calls (`users.list`, `groups.list`, `members.list`):
//! paced under the published quota, each page retried through Google's throttling answers
//! (403 `userRateLimitExceeded`/`quotaExceeded`, 429 `rateLimitExceeded`: exponential backoff
//! with jitter, as the limits page prescribes; `Retry-After` when one is sent) and 5xx, a
//! refused token fetched again once, and paging checked: a page token seen twice, or more
//! pages than any directory has, fails the read rather than shortening it.

use super::auth::TokenSource;
use crate::error::{SyncError, SyncResult};
use crate::model::Clock;
use rand::Rng;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One page's answer read at most.
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// Pages of one list at most (500 users a page: 50 million users).
const MAX_PAGES: usize = 100_000;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(64);

type Pacer = governor::DefaultDirectRateLimiter;

/// Counts of one read, for the log.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
}

pub struct Directory {
    pub http: reqwest::Client,
    /// `https://admin.googleapis.com`, or the job's `api_url`.
    pub api_url: String,
    pub tokens: TokenSource,
    pub pacer: Option<Arc<Pacer>>,
    pub clock: Clock,
    /// Tries of one page (the first included).
    pub attempts: u32,
    /// The first backoff (doubled each time).
    pub backoff: Duration,
    pub stats: Stats,
}

pub fn pacer(per_second: u32) -> Option<Arc<Pacer>> {
    let n = std::num::NonZeroU32::new(per_second)?;
    Some(Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(n),
    )))
}

/// What one try came to.
enum Try {
    Page(Value),
    /// Try again after this long.
    Again(Duration, String),
    /// The token was refused: fetch a new one and try again (once).
    Reauth(String),
}

/// Google's error envelope: `{"error": {"code", "message", "errors": [{"reason", …}]}}`.
fn reason_of(body: &Value) -> (Option<String>, Option<String>) {
    let e = body.get("error");
    let reason = e
        .and_then(|e| e.get("errors"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|x| x.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = e
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(|m| scim_proto::error::excerpt(m).to_string());
    (reason, message)
}

/// Whether an error answer is Google's throttling (or a server fault) that a later try can
/// get past.
pub fn is_transient(status: u16, reason: Option<&str>) -> bool {
    match status {
        429 | 500 | 502 | 503 | 504 => true,
        403 => matches!(
            reason,
            Some("userRateLimitExceeded" | "quotaExceeded" | "rateLimitExceeded")
        ),
        _ => false,
    }
}

/// An error answer that no retry fixes, in words an administrator can act on.
pub fn explain(status: u16, reason: Option<&str>, message: Option<&str>, what: &str) -> String {
    let said = match (reason, message) {
        (Some(r), Some(m)) => format!("{status} {r}: {m}"),
        (None, Some(m)) => format!("{status}: {m}"),
        (Some(r), None) => format!("{status} {r}"),
        (None, None) => format!("{status}"),
    };
    let hint = match (status, reason) {
        (401, _) => "the access token was refused twice: check the service account's key and \
                     that domain-wide delegation is granted"
            .to_string(),
        (403, Some("forbidden")) | (403, None) => "source.subject must be a super administrator \
             (or hold the Groups Reader and User Management Admin roles), and domain-wide \
             delegation must grant the read-only directory scopes"
            .to_string(),
        (403, Some("accessNotConfigured")) => "enable the Admin SDK API in the service \
             account's Google Cloud project (APIs & Services → Library → Admin SDK API)"
            .to_string(),
        (404, _) => {
            "check source.customer (my_customer, or the customer ID) or source.domain".to_string()
        }
        (400, _) => "the request was refused as invalid (check source.customer or source.domain)"
            .to_string(),
        _ => "the Directory API refused the read".to_string(),
    };
    format!("Google Directory API, {what}: {said}: {hint}")
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

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl Directory {
    fn now(&self) -> i64 {
        (self.clock)().to_datetime().unix_timestamp()
    }

    async fn try_once(&self, url: &str, query: &[(&str, String)], token: &str) -> SyncResult<Try> {
        if let Some(p) = &self.pacer {
            p.until_ready().await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match self
            .http
            .get(url)
            .query(query)
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let e = scim_client::ClientError::from(e);
                if e.is_transient() {
                    return Ok(Try::Again(Duration::ZERO, e.to_string()));
                }
                return Err(SyncError::Source(format!("Google Directory API: {e}")));
            }
        };
        let status = resp.status().as_u16();
        let wait = retry_after(&resp);
        let body = match scim_net::read_capped(resp, MAX_PAGE_BYTES).await {
            Ok(b) => b,
            Err(scim_net::ReadError::Http(e)) => {
                return Ok(Try::Again(Duration::ZERO, e.to_string()));
            }
            Err(e) => return Err(SyncError::Source(format!("Google Directory API: {e}"))),
        };
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            if !json.is_object() {
                return Ok(Try::Again(
                    Duration::ZERO,
                    format!("HTTP {status} with a body that is not a JSON object"),
                ));
            }
            return Ok(Try::Page(json));
        }
        let (reason, message) = reason_of(&json);
        if status == 401 {
            return Ok(Try::Reauth(explain(
                status,
                reason.as_deref(),
                message.as_deref(),
                "read",
            )));
        }
        if is_transient(status, reason.as_deref()) {
            if status == 429 || status == 403 {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            let said = format!("{status} {}", reason.as_deref().unwrap_or(""));
            return Ok(Try::Again(wait.unwrap_or(Duration::ZERO), said));
        }
        Err(SyncError::Source(explain(
            status,
            reason.as_deref(),
            message.as_deref(),
            url.rsplit("/v1/").next().unwrap_or(url),
        )))
    }

    /// One page: GET `path` under the API with `query`, through throttling and a stale token.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> SyncResult<Value> {
        let url = format!(
            "{}/admin/directory/v1/{path}",
            self.api_url.trim_end_matches('/')
        );
        let mut stale: Option<String> = None;
        let mut reauthorized = false;
        let mut n = 0;
        loop {
            n += 1;
            let token = self.tokens.token(self.now(), stale.as_deref()).await?;
            match self.try_once(&url, query, &token).await? {
                Try::Page(v) => return Ok(v),
                Try::Reauth(why) => {
                    if reauthorized {
                        return Err(SyncError::Source(why));
                    }
                    reauthorized = true;
                    stale = Some(token);
                    n -= 1;
                }
                Try::Again(after, why) => {
                    if n >= self.attempts {
                        return Err(SyncError::Source(format!(
                            "Google Directory API, {path}: still failing after {n} tries \
                             ({why}); the read is abandoned and nothing is deprovisioned"
                        )));
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let jitter = rand::thread_rng().gen_range(0..1000);
                    let given = (!after.is_zero()).then_some(after);
                    tokio::time::sleep(backoff(self.backoff, n, given, jitter)).await;
                }
            }
        }
    }

    /// Every item of a paged list (`items` under `key`), page by page.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        key: &str,
    ) -> SyncResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let page = self.get(path, &q).await?;
            match page.get(key) {
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(SyncError::Source(format!(
                        "Google Directory API, {path}: '{key}' is not a list; the read is \
                         abandoned and nothing is deprovisioned"
                    )));
                }
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                None | Some("") => return Ok(out),
                Some(t) => {
                    if !seen.insert(t.to_string()) {
                        return Err(SyncError::Source(format!(
                            "Google Directory API, {path}: the page token repeated after {} \
                             pages; the read is abandoned and nothing is deprovisioned",
                            seen.len()
                        )));
                    }
                    token = Some(t.to_string());
                }
            }
        }
        Err(SyncError::Source(format!(
            "Google Directory API, {path}: more than {MAX_PAGES} pages; the read is abandoned"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_faults_are_retried_the_rest_is_not() {
        let cases = [
            (403, Some("userRateLimitExceeded"), true),
            (403, Some("quotaExceeded"), true),
            (429, Some("rateLimitExceeded"), true),
            (429, None, true),
            (503, None, true),
            (403, Some("forbidden"), false),
            (403, None, false),
            (404, Some("notFound"), false),
            (400, Some("invalid"), false),
        ];
        for (status, reason, retried) in cases {
            assert_eq!(is_transient(status, reason), retried, "{status} {reason:?}");
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

    #[test]
    fn refusals_say_what_to_do() {
        let cases = [
            (403, Some("forbidden"), "super administrator"),
            (403, Some("accessNotConfigured"), "enable the Admin SDK API"),
            (404, Some("notFound"), "source.customer"),
            (401, None, "refused twice"),
        ];
        for (status, reason, expect) in cases {
            let text = explain(status, reason, Some("Not Authorized"), "users");
            assert!(text.contains(expect), "{text}");
        }
    }

    #[test]
    fn the_error_envelope_is_read() {
        let body = serde_json::json!({"error": {"code": 403, "message": "Rate limit",
            "errors": [{"message": "m", "domain": "usageLimits", "reason": "userRateLimitExceeded"}],
            "status": "PERMISSION_DENIED"}});
        let (reason, message) = reason_of(&body);
        assert_eq!(reason.as_deref(), Some("userRateLimitExceeded"));
        assert_eq!(message.as_deref(), Some("Rate limit"));
        assert_eq!(reason_of(&Value::Null), (None, None));
    }
}
