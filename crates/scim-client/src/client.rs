//! The HTTP side: one `reqwest` client per target, bounded in-flight requests, retries of
//! transient failures honouring `Retry-After` (RFC 9110 §10.2.3).

use crate::error::{ClientError, ClientResult};
use crate::profile::{ResourceKind, TargetProfile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How the client talks to one target.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Tries per request for transient failures (1 = no retry).
    pub attempts: u32,
    /// The longest `Retry-After` honoured inside a request; longer waits are returned as
    /// the error for the caller to escrow.
    pub max_retry_after: Duration,
    pub timeout: Duration,
    pub user_agent: String,
    /// Requests per second at most (0 = unpaced): the target's rate limit, kept by the
    /// client so that 429s are the exception.
    pub rate_limit: u32,
    /// Where the client may connect (docs/security.md, "Outbound connections").
    pub outbound: scim_net::Policy,
    /// The largest answer read; a larger one is an error, never held in memory.
    pub max_answer_bytes: usize,
}

/// The default answer limit: a page of 1,000 large users is a few MiB.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// What a client sent, for the cycle report and the fault tests.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Requests put on the wire, retries included.
    pub requests: AtomicU64,
    /// Of those, retries of a transient failure.
    pub retries: AtomicU64,
    /// 429 answers received.
    pub throttled: AtomicU64,
    /// Until when the target asked to be left alone (the latest end of a `Retry-After` on a
    /// 429 or 503), in milliseconds since the Unix epoch; 0: never asked.
    pub quiet_until_ms: AtomicU64,
}

impl ClientStats {
    /// The end of the longest `Retry-After` still to come, if any.
    pub fn quiet_until(&self) -> Option<std::time::SystemTime> {
        let ms = self.quiet_until_ms.load(Ordering::Relaxed);
        let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
        (ms > 0 && at > std::time::SystemTime::now()).then_some(at)
    }

    fn asked_to_wait(&self, d: Duration) {
        let until = std::time::SystemTime::now() + d;
        let ms = until
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |x| u64::try_from(x.as_millis()).unwrap_or(u64::MAX));
        self.quiet_until_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

type Pacer = governor::DefaultDirectRateLimiter;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            max_in_flight: 8,
            attempts: 4,
            max_retry_after: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            user_agent: concat!("scimd-sync/", env!("CARGO_PKG_VERSION")).into(),
            rate_limit: 0,
            outbound: scim_net::Policy::default(),
            max_answer_bytes: MAX_ANSWER_BYTES,
        }
    }
}

/// What came back: whether the resource was there (not 404), and the body if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub found: bool,
    pub body: Option<Value>,
}

/// One operation's answer in a Bulk response (RFC 7644 §3.7.3), matched to its request
/// by `bulkId`.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkResult {
    pub bulk_id: Option<String>,
    /// The operation's HTTP status (RFC 7644 writes it as a string; some servers as a
    /// number: both are read).
    pub status: u16,
    pub location: Option<String>,
    /// The resource, or the operation's SCIM error (optional for successes).
    pub response: Option<Value>,
}

impl BulkResult {
    /// The new resource's id: `response.id`, else the last segment of `location`.
    pub fn id(&self) -> Option<String> {
        self.response
            .as_ref()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                let loc = self.location.as_deref()?.trim_end_matches('/');
                let last = loc.rsplit('/').next().filter(|s| !s.is_empty())?;
                Some(
                    percent_encoding::percent_decode_str(last)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A failed operation as the error the same request alone would have returned.
    pub fn error(&self) -> ClientError {
        let text = |k: &str| {
            self.response
                .as_ref()
                .and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        ClientError::Status {
            status: self.status,
            scim_type: text("scimType"),
            detail: text("detail"),
            retry_after: None,
        }
    }

    fn parse(v: &Value) -> Option<Self> {
        let status = match v.get("status")? {
            Value::String(s) => s.trim().parse().ok()?,
            Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
            // Some servers nest it: {"status": {"code": 201}} (SCIM 1.1 style).
            Value::Object(o) => u16::try_from(o.get("code")?.as_u64()?).ok()?,
            _ => return None,
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            bulk_id: text("bulkId"),
            status,
            location: text("location"),
            response: v.get("response").filter(|r| !r.is_null()).cloned(),
        })
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub resources: Vec<Value>,
    pub total_results: Option<u64>,
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base: String,
    /// `Bearer <token>`; never logged (reqwest does not log headers).
    auth: Arc<str>,
    options: ClientOptions,
    in_flight: Arc<Semaphore>,
    pacer: Option<Arc<Pacer>>,
    stats: Arc<ClientStats>,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A SCIM filter string literal (RFC 7644 §3.4.2.2 uses JSON string syntax).
pub fn filter_literal(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The wait a `Retry-After` header asks for (seconds or an HTTP date; RFC 9110 §10.2.3).
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl ScimClient {
    /// `base` is the SCIM base URL (ending in `/scim/v2` or similar; a trailing `/` is
    /// dropped).
    pub fn new(base: &str, token: &str, options: ClientOptions) -> ClientResult<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "target URL '{base}' must start with http:// or https://"
            )));
        }
        if token.trim().is_empty() {
            return Err(ClientError::Config("the target token is empty".into()));
        }
        let url = reqwest::Url::parse(&base)
            .map_err(|e| ClientError::Config(format!("target URL '{base}': {e}")))?;
        options
            .outbound
            .check_url(&url)
            .map_err(|e| ClientError::Refused(e.to_string()))?;
        // Redirects within the origin only: a target cannot send a request (or, with
        // 307/308, its body) to another host.
        let http = scim_net::builder(&options.outbound)
            .timeout(options.timeout)
            .user_agent(options.user_agent.clone())
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            auth: format!("Bearer {}", token.trim()).into(),
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            pacer: std::num::NonZeroU32::new(options.rate_limit).map(|r| {
                Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
                    r,
                )))
            }),
            stats: Arc::default(),
            options,
        })
    }

    /// Requests and retries so far (shared by the clones of this client).
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request (retrying transient failures); `Ok(None)` for 404 and 204.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> ClientResult<Option<Value>> {
        Ok(self.exchange(method, path_and_query, body).await?.body)
    }

    /// One request with its retries; a 404 is an answer (`found: false`), not an error.
    async fn exchange(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> ClientResult<Answer> {
        let url = format!("{}/{}", self.base, path_and_query.trim_start_matches('/'));
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.send_once(method.clone(), &url, body).await {
                // A POST that may have been processed is not sent again: the caller looks
                // the object up first (a retry must never make a duplicate). 429 and 503
                // mean "not processed", so those are retried.
                Err(e)
                    if e.is_transient()
                        && attempt < self.options.attempts
                        && (method != Method::POST || matches!(e.status(), Some(429 | 503))) =>
                {
                    let wait = match &e {
                        ClientError::Status {
                            retry_after: Some(d),
                            ..
                        } if *d > self.options.max_retry_after => return Err(e),
                        ClientError::Status {
                            retry_after: Some(d),
                            ..
                        } => *d,
                        _ => Duration::from_millis(200 * 2u64.pow(attempt - 1)),
                    };
                    tracing::debug!(%method, url, attempt, error = %e, ?wait, "retrying");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> ClientResult<Answer> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ClientError::Config("client closed".into()))?;
        if let Some(p) = &self.pacer {
            p.until_ready().await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, &*self.auth)
            .header(
                reqwest::header::ACCEPT,
                "application/scim+json, application/json",
            );
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(ClientError::from)?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        let after = retry_after(resp.headers());
        if let Some(d) = after.filter(|_| {
            matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
        }) {
            self.stats.asked_to_wait(d);
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let bytes = match scim_net::read_capped(resp, self.options.max_answer_bytes).await {
            Ok(b) => b,
            Err(scim_net::ReadError::Http(e)) => return Err(e.into()),
            Err(scim_net::ReadError::TooLarge { limit }) => {
                return Err(ClientError::TooLarge { limit });
            }
        };
        if status.is_redirection() {
            return Err(ClientError::Status {
                status: status.as_u16(),
                scim_type: None,
                detail: Some(format!(
                    "redirected to {}; scimd follows redirects only within the same origin: use the final URL",
                    location.as_deref().unwrap_or("another origin")
                )),
                retry_after: None,
            });
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(Answer {
                found: false,
                body: None,
            });
        }
        if !status.is_success() {
            let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
            let text = |k: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let detail = text("detail").or_else(|| {
                let s = String::from_utf8_lossy(&bytes);
                let s = s.trim();
                (!s.is_empty()).then(|| s.chars().take(300).collect())
            });
            return Err(ClientError::Status {
                status: status.as_u16(),
                scim_type: text("scimType"),
                detail,
                retry_after: after,
            });
        }
        let body = if bytes.is_empty() || status == StatusCode::NO_CONTENT {
            None
        } else {
            Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ClientError::Protocol(format!("{url}: body is not JSON ({e})")))?,
            )
        };
        Ok(Answer { found: true, body })
    }

    /// ServiceProviderConfig, ResourceTypes and Schemas (RFC 7644 §4). A target that does
    /// not serve them gets the defaults; one that refuses the token is an error.
    pub async fn discover(&self) -> ClientResult<TargetProfile> {
        let spc = match self
            .request(Method::GET, "ServiceProviderConfig", None)
            .await
        {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(TargetProfile::default()),
            Err(e) if e.is_auth() => return Err(e),
            Err(e @ ClientError::Transport(_)) => return Err(e),
            Err(_) => return Ok(TargetProfile::default()),
        };
        let mut profile = TargetProfile::from_spc(&spc);
        if let Ok(Some(types)) = self.request(Method::GET, "ResourceTypes", None).await {
            profile = profile.with_resource_types(&types);
        }
        if let Ok(Some(schemas)) = self.request(Method::GET, "Schemas", None).await {
            profile = profile.with_schemas(&schemas);
        }
        Ok(profile)
    }

    pub async fn create(&self, kind: ResourceKind, body: &Value) -> ClientResult<Value> {
        self.request(Method::POST, kind.endpoint(), Some(body))
            .await?
            .ok_or_else(|| ClientError::Protocol("POST answered without a resource".into()))
    }

    /// One Bulk request (RFC 7644 §3.7) with these operations, processed to the end
    /// (no `failOnErrors`): each operation's answer, in the order the target gave them.
    /// Like a POST, it is not re-sent after a lost answer (some operations may have been
    /// applied); 429 and 503 are retried.
    pub async fn bulk(&self, operations: Vec<Value>) -> ClientResult<Vec<BulkResult>> {
        let body = json!({"schemas": [crate::BULK_REQUEST], "Operations": operations});
        let v = self
            .request(Method::POST, "Bulk", Some(&body))
            .await?
            .ok_or_else(|| ClientError::Protocol("POST /Bulk answered without a body".into()))?;
        let ops = v
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ClientError::Protocol("BulkResponse has no 'Operations'".into()))?;
        ops.iter()
            .map(|o| {
                BulkResult::parse(o).ok_or_else(|| {
                    ClientError::Protocol("a BulkResponse operation has no status".into())
                })
            })
            .collect()
    }

    pub async fn get(&self, kind: ResourceKind, id: &str) -> ClientResult<Option<Value>> {
        self.request(
            Method::GET,
            &format!("{}/{}", kind.endpoint(), encode(id)),
            None,
        )
        .await
    }

    /// PUT (RFC 7644 §3.5.1). `found: false`: the resource is gone.
    pub async fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
    ) -> ClientResult<Answer> {
        self.exchange(
            Method::PUT,
            &format!("{}/{}", kind.endpoint(), encode(id)),
            Some(body),
        )
        .await
    }

    /// PATCH with these operations (RFC 7644 §3.5.2). `found: false`: the resource is gone;
    /// `body: None`: a 204.
    pub async fn patch(
        &self,
        kind: ResourceKind,
        id: &str,
        operations: &[Value],
    ) -> ClientResult<Answer> {
        let body = json!({"schemas": [crate::PATCH_OP], "Operations": operations});
        self.exchange(
            Method::PATCH,
            &format!("{}/{}", kind.endpoint(), encode(id)),
            Some(&body),
        )
        .await
    }

    /// `Ok(false)`: it was already gone.
    pub async fn delete(&self, kind: ResourceKind, id: &str) -> ClientResult<bool> {
        let path = format!("{}/{}", kind.endpoint(), encode(id));
        Ok(self.exchange(Method::DELETE, &path, None).await?.found)
    }

    /// The resources matching `attr eq "value"` (a lookup, at most 10).
    pub async fn find_eq(
        &self,
        kind: ResourceKind,
        attr: &str,
        value: &str,
        excluded_attributes: Option<&str>,
    ) -> ClientResult<Vec<Value>> {
        let filter = format!("{attr} eq {}", filter_literal(value));
        self.find_filter(kind, &filter, excluded_attributes).await
    }

    /// The first resources (at most 10) matching a filter.
    pub async fn find_filter(
        &self,
        kind: ResourceKind,
        filter: &str,
        excluded_attributes: Option<&str>,
    ) -> ClientResult<Vec<Value>> {
        let mut q = vec![("filter", filter.to_string()), ("count", "10".to_string())];
        if let Some(x) = excluded_attributes {
            q.push(("excludedAttributes", x.to_string()));
        }
        Ok(self.list_query(kind, &q).await?.resources)
    }

    async fn list_query(&self, kind: ResourceKind, q: &[(&str, String)]) -> ClientResult<ListPage> {
        let query = serde_urlencoded::to_string(q)
            .map_err(|e| ClientError::Config(format!("query: {e}")))?;
        let v = self
            .request(Method::GET, &format!("{}?{query}", kind.endpoint()), None)
            .await?
            .ok_or_else(|| {
                ClientError::Protocol(format!("GET /{} answered 404", kind.endpoint()))
            })?;
        let resources = match v.get("Resources") {
            Some(Value::Array(a)) => a.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(ClientError::Protocol(
                    "ListResponse 'Resources' is not an array".into(),
                ));
            }
        };
        Ok(ListPage {
            resources,
            total_results: v.get("totalResults").and_then(Value::as_u64),
            next_cursor: v
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Every resource of a kind, page by page: cursor paging (RFC 9865) when the profile
    /// offers it, else `startIndex` (RFC 7644 §3.4.2.4). `filter` narrows the read.
    pub async fn list_all(
        &self,
        kind: ResourceKind,
        profile: &TargetProfile,
        filter: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> ClientResult<Vec<Value>> {
        let count = profile.max_results.clamp(1, 1000);
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let mut start = 1u64;
        // A target that ignores paging would loop forever; stop at a generous bound.
        for _ in 0..1_000_000 {
            let mut q = vec![("count", count.to_string())];
            if let Some(f) = filter {
                q.push(("filter", f.to_string()));
            }
            if let Some(x) = excluded_attributes {
                q.push(("excludedAttributes", x.to_string()));
            }
            if profile.cursor_paging {
                q.push(("cursor", cursor.clone().unwrap_or_default()));
            } else {
                q.push(("startIndex", start.to_string()));
            }
            let page = self.list_query(kind, &q).await?;
            let n = page.resources.len() as u64;
            out.extend(page.resources);
            if profile.cursor_paging {
                match page.next_cursor {
                    Some(c) if n > 0 => cursor = Some(c),
                    _ => return Ok(out),
                }
            } else {
                start += n;
                let done = n == 0 || page.total_results.is_some_and(|t| start > t);
                if done {
                    return Ok(out);
                }
            }
        }
        Err(ClientError::Protocol(
            "the target's paging never ended".into(),
        ))
    }
}

/// What stays as it is in a path segment: RFC 3986 §2.3's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A resource id in a URL path segment.
fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_literals_escape_quotes() {
        assert_eq!(filter_literal(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn bulk_results_read_string_and_number_statuses_and_find_ids() {
        let ok = BulkResult::parse(&json!({"bulkId": "b1", "status": "201",
            "location": "https://x/scim/v2/Users/92b7%20f"}))
        .unwrap();
        assert_eq!((ok.status, ok.id().as_deref()), (201, Some("92b7 f")));
        assert!(ok.is_success());
        let with_body =
            BulkResult::parse(&json!({"status": 201, "response": {"id": "r1"}})).unwrap();
        assert_eq!(with_body.id().as_deref(), Some("r1"));
        let failed = BulkResult::parse(&json!({"bulkId": "b2", "status": "409",
            "response": {"scimType": "uniqueness", "detail": "taken"}}))
        .unwrap();
        assert!(!failed.is_success() && failed.error().is_conflict());
        assert_eq!(failed.error().to_string(), "409 uniqueness: taken");
        assert!(BulkResult::parse(&json!({"bulkId": "b3"})).is_none());
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn urls_and_tokens_are_checked() {
        assert!(ScimClient::new("ftp://x", "t", ClientOptions::default()).is_err());
        assert!(ScimClient::new("http://x/scim/v2/", " ", ClientOptions::default()).is_err());
        let c = ScimClient::new("http://x/scim/v2/", "t", ClientOptions::default());
        assert_eq!(
            c.map(|c| c.base_url().to_string()).ok().as_deref(),
            Some("http://x/scim/v2")
        );
    }
}
