//! Per-token rate limiting (`429` with `Retry-After`), with `governor`'s keyed GCRA limiter:
//! `rate` requests per second on average, bursts of twice that. Counted per node; with N
//! nodes a token may reach N × rate.

use crate::error::AppError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use scim_core::TokenRecord;
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimit {
    /// Average requests per second per token; 0 disables the limit.
    pub per_second: f64,
    /// Largest burst.
    pub burst: f64,
}

/// Keys kept before idle ones are dropped.
const MAX_KEYS: usize = 100_000;

pub struct RateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let limiter = (limit.per_second > 0.0).then(|| {
            let period = Duration::from_secs_f64(1.0 / limit.per_second);
            let burst =
                NonZeroU32::new(limit.burst.max(1.0).round() as u32).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                .allow_burst(burst);
            DefaultKeyedRateLimiter::keyed(quota)
        });
        Self { limiter }
    }

    /// Takes one request from the token's allowance, or answers 429 with how long to wait.
    pub fn check(&self, token: &TokenRecord) -> Result<(), AppError> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        if l.len() > MAX_KEYS {
            l.retain_recent();
        }
        match l.check_key(&token.id) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metrics::counter!("scimd_rate_limited_total").increment(1);
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                Err(AppError::new(
                    429,
                    format!(
                        "token '{}' is over its rate limit; retry after {secs} s",
                        token.name
                    ),
                )
                .with_retry_after(secs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str) -> TokenRecord {
        scim_core::token::issue(
            1,
            id,
            scim_core::TokenScopes::all(),
            None,
            scim_core::Timestamp::EPOCH,
        )
        .unwrap()
        .record
    }

    #[test]
    fn allowances_allow_bursts_then_throttle_per_token() {
        let l = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        });
        let t = token("t");
        for _ in 0..3 {
            assert!(l.check(&t).is_ok());
        }
        let e = l.check(&t).unwrap_err();
        assert_eq!((e.error.status, e.retry_after), (429, Some(1)));
        assert!(l.check(&token("other")).is_ok(), "per token");
        std::thread::sleep(Duration::from_millis(120));
        assert!(l.check(&t).is_ok());
        assert!(
            RateLimiter::new(RateLimit::default()).check(&t).is_ok(),
            "0 disables"
        );
    }
}
