//! A fault-injecting SCIM target for the engine's fault tests. **What it simulates**: a SaaS
//! app behind a flaky gateway. It forwards requests over loopback to a real scimd tenant and,
//! by configuration of the test, answers some of them itself instead:
//!
//! - `throttle_every`: 429 with `Retry-After: 1` (not forwarded: the gateway shed it);
//! - `unavailable_every`: 503 with `Retry-After` as an HTTP date 2 s ahead (not forwarded:
//!   a deploy in progress);
//! - `error_every`: 500 (not forwarded, like a crashed worker before the write);
//! - `slow_every`: forwarded, then the answer is held for `slow_for` (past the client's
//!   timeout, so the write happened but the client never hears of it);
//! - `reset_every`: a POST is forwarded, then the connection is dropped without an answer
//!   (the create happened; the answer was lost);
//! - `reject_user_name`: a write whose body carries this userName answers 400 invalidValue
//!   (a permanent fault of one object);
//! - `reject_writes`: every write answers 400 invalidValue (a failing deployment);
//! - `ignore_filters`: a list's `filter` is dropped before forwarding (an app that ignores
//!   filters and answers with everything, which the compliance probe must catch);
//! - `refuse_bulk`: `POST /Bulk` answers this status, not forwarded (an app whose
//!   ServiceProviderConfig advertises Bulk that it does not actually serve);
//! - `revoke_after`: after that many requests the caller's token is refused with 401 until
//!   [`FaultTarget::accept_token`] names the new one (a token revoked mid-cycle);
//! - `reset_bulk_every`: every n-th `POST /Bulk` is forwarded, then its connection dropped
//!   without an answer (the target made every create in it; the answer was lost);
//! - `throttle_writes_until`: until that instant every write answers 429 with a
//!   `Retry-After` of the seconds left (a target that asks for a pause longer than a run).
//!
//! Faults are chosen by the request's sequence number, so a retry of the same request gets
//! a different number: the schedule is deterministic and every fault is transient except the
//! rejected userName and the revoked token.

use axum::body::Body;
use hyper::{Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to inject; 0 turns a fault off.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub throttle_every: u64,
    pub unavailable_every: u64,
    pub error_every: u64,
    pub slow_every: u64,
    pub slow_for: Duration,
    pub reset_every: u64,
    pub reject_user_name: Option<String>,
    /// Every write answers 400 (an app that started refusing a required attribute).
    pub reject_writes: bool,
    pub ignore_filters: bool,
    /// The status every `POST /Bulk` gets (not forwarded).
    pub refuse_bulk: Option<u16>,
    /// Requests after which the current token is refused.
    pub revoke_after: Option<u64>,
    /// Every n-th Bulk request is processed and its answer lost.
    pub reset_bulk_every: u64,
    /// Writes are throttled (429, `Retry-After`: the seconds left) until then.
    pub throttle_writes_until: Option<std::time::Instant>,
    /// The `Retry-After` of `throttle_every`'s 429s, in seconds (default 1).
    pub throttle_retry_after: Option<u64>,
}

/// What the target saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultCounts {
    pub requests: u64,
    pub forwarded: u64,
    pub throttled: u64,
    pub unavailable: u64,
    pub errors: u64,
    pub slowed: u64,
    pub resets: u64,
    pub rejected: u64,
    pub refused: u64,
    /// Bulk requests answered with `refuse_bulk`.
    pub bulk_refused: u64,
    /// Bulk requests seen.
    pub bulk: u64,
}

struct Shared {
    upstream: String,
    upstream_token: String,
    faults: Mutex<Faults>,
    /// The token callers must send.
    accepted: Mutex<String>,
    seq: AtomicU64,
    counts: Mutex<FaultCounts>,
    /// Bulk requests seen, for `reset_bulk_every`.
    bulk_seq: AtomicU64,
    http: reqwest::Client,
}

/// The running target; dropped, it stops listening.
pub struct FaultTarget {
    /// The SCIM base URL to give the engine.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

enum Answer {
    Reply(Response<Body>),
    /// Drop the connection without an answer.
    Reset,
}

impl FaultTarget {
    /// Forwards to `upstream` (a SCIM base URL) with `upstream_token`; callers must send
    /// `token`.
    pub async fn start(upstream: &str, upstream_token: &str, token: &str, faults: Faults) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            upstream_token: upstream_token.to_string(),
            faults: Mutex::new(faults),
            accepted: Mutex::new(token.to_string()),
            seq: AtomicU64::new(0),
            counts: Mutex::default(),
            bulk_seq: AtomicU64::new(0),
            http: reqwest::Client::new(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move {
                            match handle(&s, req).await {
                                Answer::Reply(r) => Ok(r),
                                Answer::Reset => Err(std::io::Error::other("reset")),
                            }
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://{addr}/scim/v2"),
            shared,
            task,
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    /// From now on only `token` is accepted (the reauthorized one).
    pub fn accept_token(&self, token: &str) {
        if let Ok(mut t) = self.shared.accepted.lock() {
            *t = token.to_string();
        }
        if let Ok(mut f) = self.shared.faults.lock() {
            f.revoke_after = None;
        }
    }

    pub fn counts(&self) -> FaultCounts {
        self.shared
            .counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

impl Drop for FaultTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn count(s: &Shared, f: impl FnOnce(&mut FaultCounts)) {
    if let Ok(mut c) = s.counts.lock() {
        f(&mut c);
    }
}

fn scim_error(status: u16, scim_type: Option<&str>, detail: &str) -> Response<Body> {
    let mut body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = t.into();
    }
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/scim+json"),
    );
    r
}

fn due(every: u64, n: u64, offset: u64) -> bool {
    every > 0 && n % every == offset % every
}

/// The faults answered before the request is forwarded (throttling, refusals, errors), if
/// one is due.
fn injected(
    s: &Shared,
    faults: &Faults,
    n: u64,
    write: bool,
    bulk: bool,
    body: &[u8],
) -> Option<Answer> {
    if let Some(until) = faults.throttle_writes_until
        && write
        && let Some(left) = until.checked_duration_since(std::time::Instant::now())
    {
        count(s, |c| c.throttled += 1);
        let mut r = scim_error(429, None, "slow down");
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if let Ok(v) = hyper::header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        return Some(Answer::Reply(r));
    }
    if let Some(status) = faults.refuse_bulk
        && bulk
    {
        count(s, |c| c.bulk_refused += 1);
        return Some(Answer::Reply(scim_error(status, None, "no Bulk here")));
    }
    if due(faults.throttle_every, n, 1) {
        count(s, |c| c.throttled += 1);
        let mut r = scim_error(429, None, "slow down");
        let after = faults.throttle_retry_after.unwrap_or(1).to_string();
        if let Ok(v) = hyper::header::HeaderValue::from_str(&after) {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        return Some(Answer::Reply(r));
    }
    if due(faults.unavailable_every, n, 5) {
        count(s, |c| c.unavailable += 1);
        let mut r = scim_error(503, None, "deploying");
        let at = std::time::SystemTime::now() + Duration::from_secs(2);
        if let Ok(v) = hyper::header::HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        return Some(Answer::Reply(r));
    }
    if due(faults.error_every, n, 2) {
        count(s, |c| c.errors += 1);
        return Some(Answer::Reply(scim_error(500, None, "internal error")));
    }
    let refused_name = faults.reject_user_name.as_ref().is_some_and(|name| {
        std::str::from_utf8(body).is_ok_and(|b| b.contains(&format!("\"{name}\"")))
    });
    if write && (faults.reject_writes || refused_name) {
        count(s, |c| c.rejected += 1);
        return Some(Answer::Reply(scim_error(
            400,
            Some("invalidValue"),
            "this app refuses that userName",
        )));
    }
    None
}

async fn handle(s: &Shared, req: Request<hyper::body::Incoming>) -> Answer {
    let n = s.seq.fetch_add(1, Ordering::SeqCst) + 1;
    count(s, |c| c.requests += 1);
    let faults = s.faults.lock().map(|f| f.clone()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(Body::new(body), 16 << 20).await else {
        return Answer::Reset;
    };
    let sent = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if faults.revoke_after.is_some_and(|k| n > k)
        && let Ok(mut a) = s.accepted.lock()
        && *a == sent
    {
        // Revoked: the token the caller holds is no longer the accepted one.
        *a = format!("revoked-{sent}");
    }
    let accepted = s.accepted.lock().map(|a| a.clone()).unwrap_or_default();
    if sent != accepted {
        count(s, |c| c.refused += 1);
        return Answer::Reply(scim_error(401, None, "token revoked"));
    }
    let write = parts.method != hyper::Method::GET;
    let bulk = parts.method == hyper::Method::POST && parts.uri.path().ends_with("/Bulk");
    let bulk_n = if bulk {
        count(s, |c| c.bulk += 1);
        s.bulk_seq.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        0
    };
    if let Some(answer) = injected(s, &faults, n, write, bulk, &body) {
        return answer;
    }
    let mut path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .strip_prefix("/scim/v2")
        .unwrap_or("/")
        .to_string();
    if faults.ignore_filters
        && let Some((p, _)) = path.split_once('?')
    {
        path = p.to_string();
    }
    let mut up = s
        .http
        .request(parts.method.clone(), format!("{}{path}", s.upstream))
        .bearer_auth(&s.upstream_token)
        .body(body.to_vec());
    for h in [
        hyper::header::CONTENT_TYPE,
        hyper::header::ACCEPT,
        hyper::header::IF_MATCH,
        hyper::header::IF_NONE_MATCH,
    ] {
        if let Some(v) = parts.headers.get(&h) {
            up = up.header(h, v.clone());
        }
    }
    let resp = match up.send().await {
        Ok(r) => r,
        Err(e) => return Answer::Reply(scim_error(502, None, &format!("upstream: {e}"))),
    };
    count(s, |c| c.forwarded += 1);
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    if bulk
        && faults.reset_bulk_every > 0
        && bulk_n % faults.reset_bulk_every == 1 % faults.reset_bulk_every
    {
        count(s, |c| c.resets += 1);
        return Answer::Reset;
    }
    if parts.method == hyper::Method::POST && due(faults.reset_every, n, 3) {
        count(s, |c| c.resets += 1);
        return Answer::Reset;
    }
    if due(faults.slow_every, n, 4) {
        count(s, |c| c.slowed += 1);
        tokio::time::sleep(faults.slow_for).await;
    }
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    for (k, v) in &headers {
        if k != hyper::header::CONTENT_LENGTH && k != hyper::header::TRANSFER_ENCODING {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    Answer::Reply(r)
}
