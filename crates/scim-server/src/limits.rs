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

/// Long polls waiting at once (`GET /events?wait=…`): each holds a connection for up to a
/// minute, so one token (or one tenant's tokens) may hold only a few; past that, `429`.
pub struct LongPolls {
    per_token: usize,
    per_tenant: usize,
    waiting: std::sync::Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    tokens: std::collections::HashMap<String, usize>,
    tenants: std::collections::HashMap<i64, usize>,
}

/// A waiting long poll's place; dropping it frees the place.
pub struct LongPoll<'a> {
    polls: &'a LongPolls,
    token: String,
    tenant: i64,
}

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        let mut w = self.polls.lock();
        release(&mut w.tokens, &self.token);
        release(&mut w.tenants, &self.tenant);
    }
}

/// One place fewer under `key`; the key goes when none is left.
fn release<K: std::hash::Hash + Eq>(counts: &mut std::collections::HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl LongPolls {
    pub fn new(per_token: usize, per_tenant: usize) -> Self {
        Self {
            per_token: per_token.max(1),
            per_tenant: per_tenant.max(1),
            waiting: std::sync::Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more long poll of `token` in `tenant`, or `429` saying why.
    pub fn enter(&self, tenant: i64, token: &TokenRecord) -> Result<LongPoll<'_>, AppError> {
        let mut w = self.lock();
        let by_token = w.tokens.get(&token.id).copied().unwrap_or(0);
        let by_tenant = w.tenants.get(&tenant).copied().unwrap_or(0);
        let refuse = |what: String| {
            Err(AppError::new(
                429,
                format!("{what}; retry after 1 s, or poll without wait"),
            )
            .with_retry_after(1))
        };
        if by_token >= self.per_token {
            return refuse(format!(
                "token '{}' has {by_token} long polls waiting already (at most {}: one consumer per token is enough)",
                token.name, self.per_token
            ));
        }
        if by_tenant >= self.per_tenant {
            return refuse(format!(
                "this tenant has {by_tenant} long polls waiting already (at most {})",
                self.per_tenant
            ));
        }
        *w.tokens.entry(token.id.clone()).or_insert(0) += 1;
        *w.tenants.entry(tenant).or_insert(0) += 1;
        Ok(LongPoll {
            polls: self,
            token: token.id.clone(),
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_polls_are_capped_per_token_and_per_tenant() {
        let polls = LongPolls::new(2, 3);
        let (a, b) = (token("a"), token("b"));
        let a1 = polls.enter(1, &a).unwrap();
        let _a2 = polls.enter(1, &a).unwrap();
        let e = polls.enter(1, &a).err().unwrap();
        assert_eq!((e.error.status, e.retry_after), (429, Some(1)));
        let _b1 = polls.enter(1, &b).unwrap();
        assert!(polls.enter(1, &b).is_err(), "the tenant has three waiting");
        assert!(polls.enter(2, &token("c")).is_ok(), "another tenant");
        drop(a1);
        assert!(
            polls.enter(1, &a).is_ok(),
            "a finished poll frees its place"
        );
    }

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
