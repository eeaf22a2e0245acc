//! Sign-in throttling, before any password is checked (`governor`, in memory, per node).
//!
//! An attempt from a browser without a known-device cookie for that name takes one from
//! each of:
//! - per (client address, name): 5 at once, then one per 30 seconds. A known and an unknown
//!   name are throttled alike, so the answers say nothing about which names exist;
//! - per client address: 20 at once, then one per 3 seconds (spraying many names);
//! - per name, from any address: 10 at once, then one per 10 seconds (guesses spread over
//!   many addresses);
//! - globally: 50 at once, then 10 per second (with the Argon2 bound in `scim-core`, this
//!   keeps a flood of sign-ins from taking the process's memory).
//!
//! A browser that signed in as that name before carries a known-device cookie
//! ([`super::devices`]): its attempts take from that device's own allowance (5 at once, then
//! one per 30 seconds) and a small global reserve (10 at once, then 2 per second) instead,
//! so an attack on the name or the server does not keep the real operator out.
//!
//! The client address is the TCP peer, or the forwarded address when the peer is a trusted
//! proxy (`crate::client_addr`).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Keys kept before idle ones are dropped.
const MAX_KEYS: usize = 100_000;

pub struct SignInThrottle {
    per_name_and_addr: DefaultKeyedRateLimiter<(IpAddr, String)>,
    per_addr: DefaultKeyedRateLimiter<IpAddr>,
    per_name: DefaultKeyedRateLimiter<String>,
    global: DefaultDirectRateLimiter,
    per_device: DefaultKeyedRateLimiter<String>,
    known_devices: DefaultDirectRateLimiter,
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
            per_name_and_addr: DefaultKeyedRateLimiter::keyed(quota(5, Duration::from_secs(30))),
            per_addr: DefaultKeyedRateLimiter::keyed(quota(20, Duration::from_secs(3))),
            per_name: DefaultKeyedRateLimiter::keyed(quota(10, Duration::from_secs(10))),
            global: DefaultDirectRateLimiter::direct(quota(50, Duration::from_millis(100))),
            per_device: DefaultKeyedRateLimiter::keyed(quota(5, Duration::from_secs(30))),
            known_devices: DefaultDirectRateLimiter::direct(quota(10, Duration::from_millis(500))),
        }
    }
}

/// How a name is keyed: case-folded, at most 64 characters.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase().chars().take(64).collect()
}

impl SignInThrottle {
    /// Takes one attempt for `name` from `addr` — from `device`'s allowance when the browser
    /// carries a known-device cookie for that name — or says how long to wait.
    pub fn check(&self, addr: IpAddr, name: &str, device: Option<&str>) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        let wait = |n: governor::NotUntil<_>| n.wait_time_from(now);
        if self.per_name_and_addr.len() > MAX_KEYS || self.per_name.len() > MAX_KEYS {
            self.per_name_and_addr.retain_recent();
            self.per_addr.retain_recent();
            self.per_name.retain_recent();
            self.per_device.retain_recent();
        }
        if let Some(device) = device {
            self.known_devices.check().map_err(wait)?;
            return self.per_device.check_key(&device.to_string()).map_err(wait);
        }
        self.global.check().map_err(wait)?;
        self.per_addr.check_key(&addr).map_err(wait)?;
        let name = name_key(name);
        self.per_name.check_key(&name).map_err(wait)?;
        self.per_name_and_addr
            .check_key(&(addr, name))
            .map_err(wait)
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
            assert!(t.check(a, "alice", None).is_ok());
        }
        let wait = t.check(a, "Alice", None).unwrap_err();
        assert!(wait > Duration::from_secs(20), "{wait:?}");
        assert!(
            t.check(b, "alice", None).is_ok(),
            "another address is not locked out"
        );
        assert!(
            t.check(a, "bob", None).is_ok(),
            "another name from the same address"
        );
    }

    #[test]
    fn guesses_from_many_addresses_meet_the_names_bucket_and_known_devices_pass() {
        let t = SignInThrottle::default();
        let verified = (1..=40u8)
            .filter(|i| t.check([10, 0, 0, *i].into(), "operator", None).is_ok())
            .count();
        assert_eq!(verified, 10, "ten guesses at most, whatever the addresses");
        assert!(t.check([10, 0, 1, 1].into(), "operator", None).is_err());
        // The real operator's browser signed in before: its own allowance.
        assert!(
            t.check([10, 9, 9, 9].into(), "operator", Some("dev-1"))
                .is_ok()
        );
        // A global flood does not touch the known devices' reserve.
        for i in 0..200u32 {
            let _ = t.check(
                [172, 16, (i / 250) as u8, (i % 250) as u8].into(),
                &format!("u{i}"),
                None,
            );
        }
        assert!(
            t.check([10, 9, 9, 9].into(), "operator", Some("dev-1"))
                .is_ok()
        );
    }
}
