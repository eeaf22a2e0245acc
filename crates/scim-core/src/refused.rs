//! Refused credentials at a tenant's URL: how many requests came with no token, a token
//! that is not valid there, a revoked or an expired one. They never reach the tenant's
//! provisioning log (nothing was done), but the most common provisioning failure — an IdP
//! still sending a revoked token — must be visible to the tenant's administrators. Counted
//! per node in memory (`Refusals`, one map entry per tenant and reason, so an
//! unauthenticated flood costs no writes) and added to the database by hour.

use crate::clock::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// Why a bearer credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Unknown, or another tenant's: the same answer, so nothing leaks.
    Unknown,
    Revoked,
    Expired,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Revoked,
        Refusal::Expired,
        Refusal::Unknown,
        Refusal::Missing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Unknown => "unknown",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// In words, for the console.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "no token",
            Refusal::Unknown => "a token not valid for this tenant",
            Refusal::Revoked => "a revoked token",
            Refusal::Expired => "an expired token",
        }
    }
}

/// Refused credentials at one tenant's URL, in one hour, for one reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedCount {
    pub tenant_id: i64,
    /// The hour's start.
    pub hour: Timestamp,
    pub reason: Refusal,
    pub count: u64,
    /// The last one.
    pub last_at: Timestamp,
}

/// The start of `t`'s hour.
pub fn hour_of(t: Timestamp) -> Timestamp {
    const HOUR: i64 = 3_600_000_000;
    Timestamp::from_micros(t.as_micros().div_euclid(HOUR) * HOUR)
}

/// Tenant id, hour (micros), reason.
type PendingKey = (i64, i64, Refusal);

/// This node's refusals not yet stored: one entry per tenant, hour and reason.
#[derive(Default)]
pub struct Refusals {
    pending: Mutex<HashMap<PendingKey, (u64, Timestamp)>>,
}

impl Refusals {
    pub fn add(&self, tenant_id: i64, reason: Refusal, at: Timestamp) {
        let key = (tenant_id, hour_of(at).as_micros(), reason);
        // A poisoned lock still holds counts: keep counting.
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let e = p.entry(key).or_insert((0, at));
        e.0 += 1;
        e.1 = e.1.max(at);
    }

    /// Everything counted since the last take, emptied.
    pub fn take(&self) -> Vec<RefusedCount> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.drain()
            .map(
                |((tenant_id, hour, reason), (count, last_at))| RefusedCount {
                    tenant_id,
                    hour: Timestamp::from_micros(hour),
                    reason,
                    count,
                    last_at,
                },
            )
            .collect()
    }

    /// Counts a failed store write gives back, so none are lost.
    pub fn put_back(&self, counts: Vec<RefusedCount>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for c in counts {
            let e = p
                .entry((c.tenant_id, c.hour.as_micros(), c.reason))
                .or_insert((0, c.last_at));
            e.0 += c.count;
            e.1 = e.1.max(c.last_at);
        }
    }
}

/// One tenant's refusals since a time, summed by reason (most first), with the last one.
pub fn summary(counts: &[RefusedCount]) -> (u64, Vec<(Refusal, u64)>, Option<Timestamp>) {
    let mut by: Vec<(Refusal, u64)> = Refusal::ALL
        .into_iter()
        .map(|r| {
            (
                r,
                counts
                    .iter()
                    .filter(|c| c.reason == r)
                    .map(|c| c.count)
                    .sum(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    by.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let total = by.iter().map(|(_, n)| n).sum();
    (total, by, counts.iter().map(|c| c.last_at).max())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_by_tenant_hour_and_reason() {
        let r = Refusals::default();
        let t = Timestamp::from_micros(7_200_000_000 + 5);
        r.add(1, Refusal::Revoked, t);
        r.add(
            1,
            Refusal::Revoked,
            Timestamp::from_micros(t.as_micros() + 10),
        );
        r.add(1, Refusal::Missing, t);
        r.add(
            2,
            Refusal::Revoked,
            Timestamp::from_micros(3_600_000_000 * 5),
        );
        let mut got = r.take();
        got.sort_by_key(|c| (c.tenant_id, c.reason));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].hour.as_micros(), 7_200_000_000);
        assert_eq!((got[1].reason, got[1].count), (Refusal::Revoked, 2));
        assert_eq!(got[1].last_at.as_micros(), t.as_micros() + 10);
        assert!(r.take().is_empty(), "taken once");
        r.put_back(got.clone());
        r.add(1, Refusal::Revoked, t);
        let back: u64 = r.take().iter().map(|c| c.count).sum();
        assert_eq!(back, 5);
        let (total, by, last) = summary(&got);
        assert_eq!(total, 4);
        assert_eq!(by[0], (Refusal::Revoked, 3));
        assert!(last.is_some());
        for reason in Refusal::ALL {
            assert_eq!(Refusal::parse(reason.as_str()), Some(reason));
        }
    }
}
