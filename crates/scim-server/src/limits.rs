//! Per-token rate limiting (`429` with `Retry-After`) and a per-request time limit (`503`),
//! both configurable. A token bucket per token id: `rate` requests per second on average,
//! bursts up to `burst`. Counted per node; with N nodes a token may reach N × rate.

use crate::auth::Auth;
use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Average requests per second per token; 0 disables the limit.
    pub per_second: f64,
    /// Largest burst.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 0.0,
            burst: 0.0,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one request from the token's bucket, or says how long to wait.
    pub fn check(&self, limit: RateLimit, token_id: &str) -> Result<(), Duration> {
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        let burst = limit.burst.max(1.0);
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(60));
        }
        let b = buckets.entry(token_id.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * limit.per_second;
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second))
        }
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1).
pub fn too_many_requests(auth: &Auth, wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut e = ApiError::new(
        429,
        format!(
            "token '{}' is over its rate limit; retry after {secs} s",
            auth.token.name
        ),
    );
    e.retry_after = Some(secs);
    e
}

/// Answers `503` with `Retry-After` when a request runs past the configured time. Dropping
/// the handler rolls back its transaction (nothing half-written); a commit that completed just
/// before the deadline stays, as with any lost response.
pub async fn deadline(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut e = ApiError::new(
                503,
                format!(
                    "the request took longer than {} ms; retry",
                    limit.as_millis()
                ),
            );
            e.retry_after = Some(1);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_bursts_then_throttle_then_refill() {
        let l = RateLimiter::default();
        let limit = RateLimit {
            per_second: 10.0,
            burst: 3.0,
        };
        for _ in 0..3 {
            assert!(l.check(limit, "t").is_ok());
        }
        let wait = l.check(limit, "t").unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(l.check(limit, "other").is_ok(), "per token");
        std::thread::sleep(Duration::from_millis(120));
        assert!(l.check(limit, "t").is_ok());
        assert!(l.check(RateLimit::default(), "t").is_ok(), "0 disables");
    }
}
