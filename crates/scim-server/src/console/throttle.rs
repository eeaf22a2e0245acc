//! Sign-in throttling, before any password is checked (`governor`, in memory, per node):
//!
//! - per (client address, name): 5 attempts at once, then one per 30 seconds. A known and an
//!   unknown name are throttled alike, so the answers say nothing about which names exist,
//!   and someone failing from one address does not lock the operator out elsewhere;
//! - per client address: 20 at once, then one per 3 seconds (spraying many names);
//! - globally: 50 at once, then 10 per second (with the Argon2 bound in `scim-core`, this keeps
//!   a flood of sign-ins from taking the process's memory).
//!
//! The address is the TCP peer: behind a reverse proxy every client shares the proxy's
//! address (no forwarding header is trusted), so the per-address allowance is the proxy's.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Keys kept before idle ones are dropped.
const MAX_KEYS: usize = 100_000;

pub struct SignInThrottle {
    per_name: DefaultKeyedRateLimiter<(IpAddr, String)>,
    per_addr: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            per_name: DefaultKeyedRateLimiter::keyed(quota(5, Duration::from_secs(30))),
            per_addr: DefaultKeyedRateLimiter::keyed(quota(20, Duration::from_secs(3))),
            global: DefaultDirectRateLimiter::direct(quota(50, Duration::from_millis(100))),
        }
    }
}

impl SignInThrottle {
    /// Takes one attempt for `name` from `addr`, or says how long to wait.
    pub fn check(&self, addr: IpAddr, name: &str) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if self.per_name.len() > MAX_KEYS {
            self.per_name.retain_recent();
            self.per_addr.retain_recent();
        }
        self.global.check().map_err(|n| n.wait_time_from(now))?;
        self.per_addr
            .check_key(&addr)
            .map_err(|n| n.wait_time_from(now))?;
        let key = (addr, name.trim().to_lowercase().chars().take(64).collect());
        self.per_name
            .check_key(&key)
            .map_err(|n| n.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_address_and_name_then_waits() {
        let t = SignInThrottle::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..5 {
            assert!(t.check(a, "alice").is_ok());
        }
        let wait = t.check(a, "Alice").unwrap_err();
        assert!(wait > Duration::from_secs(20), "{wait:?}");
        assert!(
            t.check(b, "alice").is_ok(),
            "another address is not locked out"
        );
        assert!(
            t.check(a, "bob").is_ok(),
            "another name from the same address"
        );
    }
}
