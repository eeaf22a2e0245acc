//! The open connections: each address's share, and which are idle (no request in flight),
//! so a new connection past the cap can take an idle one's place.

use axum::body::Body;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::Notify;

/// Whom a connection counts against: an IPv4 address, or an IPv6 /64 (one host's usual
/// share of addresses); IPv4-mapped IPv6 counts as its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(bits.into()))
                }
            },
            v4 => Self(v4),
        }
    }
}

/// One connection's state, shared by its task, its requests and the registry.
pub struct Conn {
    key: AddressKey,
    in_flight: AtomicUsize,
    /// Since when nothing has been in flight (for choosing whom to close).
    idle_since: Mutex<Instant>,
    /// Asks the connection to close (as soon as nothing is in flight).
    pub close: Notify,
    /// The server is stopping (a longer grace than an eviction's).
    stopping: std::sync::atomic::AtomicBool,
    /// Already asked to make room (not picked again while it closes).
    evicted: std::sync::atomic::AtomicBool,
}

impl Conn {
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// How long the connection may take to close once asked.
    pub fn grace(&self) -> std::time::Duration {
        if self.stopping.load(Ordering::Acquire) {
            super::SHUTDOWN_GRACE
        } else {
            super::EVICT_GRACE
        }
    }

    /// A request's head has arrived: the connection is busy until its answer is sent.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn idle_since(&self) -> Instant {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Held while a request is in flight; its drop (the answer's body sent or abandoned) makes
/// the connection idle again.
pub struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
    }
}

/// A response body that keeps its request in flight until it is sent.
pub struct TrackedBody {
    inner: Body,
    _flight: InFlight,
}

impl TrackedBody {
    pub fn wrap(inner: Body, flight: InFlight) -> Body {
        Body::new(Self {
            inner,
            _flight: flight,
        })
    }
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Every open connection.
pub struct Registry {
    per_address: usize,
    exempt: Vec<IpNet>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, Arc<Conn>>,
    by_address: HashMap<AddressKey, usize>,
}

/// A registered connection; dropping it unregisters it.
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.open.remove(&self.id);
        if let Some(n) = inner.by_address.get_mut(&self.conn.key) {
            *n -= 1;
            if *n == 0 {
                inner.by_address.remove(&self.conn.key);
            }
        }
    }
}

impl Registry {
    /// `per_address`: connections one address may hold (0: no limit); `exempt`: addresses
    /// without that limit (trusted proxies, whose own limits apply).
    pub fn new(per_address: usize, exempt: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            per_address,
            exempt,
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection from `ip`, or `None` when that address has its share.
    pub fn register(self: &Arc<Self>, ip: IpAddr) -> Option<Registered> {
        let key = AddressKey::of(ip);
        let capped = self.per_address > 0 && !self.exempt.iter().any(|n| n.contains(&ip));
        let mut inner = self.lock();
        let held = inner.by_address.get(&key).copied().unwrap_or(0);
        if capped && held >= self.per_address {
            return None;
        }
        *inner.by_address.entry(key).or_insert(0) += 1;
        inner.next += 1;
        let id = inner.next;
        let conn = Arc::new(Conn {
            key,
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            close: Notify::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            evicted: std::sync::atomic::AtomicBool::new(false),
        });
        inner.open.insert(id, conn.clone());
        Some(Registered {
            registry: self.clone(),
            id,
            conn,
        })
    }

    /// Asks the connection idle the longest (other than `newcomer`, which wants the room) to
    /// close, to make room; false if every one has a request in flight.
    pub fn evict_idle(&self, newcomer: &Registered) -> bool {
        let inner = self.lock();
        let victim = inner
            .open
            .iter()
            .filter(|(id, c)| {
                **id != newcomer.id && !c.busy() && !c.evicted.load(Ordering::Acquire)
            })
            .map(|(_, c)| c)
            .min_by_key(|c| c.idle_since());
        match victim {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Asks every connection to close (shutdown): idle ones at once, busy ones after their
    /// requests.
    pub fn close_all(&self) {
        for c in self.lock().open.values() {
            c.stopping.store(true, Ordering::Release);
            c.close.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_have_a_share_and_idle_connections_make_room() {
        let r = Registry::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = r.register(a).unwrap();
        let second = r.register(a).unwrap();
        assert!(r.register(a).is_none(), "the address has its share");
        assert!(r.register("192.0.2.2".parse().unwrap()).is_some());
        // The same host by another IPv6 address of its /64, and IPv4-mapped: one key.
        let v6a = r.register("2001:db8::1".parse().unwrap()).unwrap();
        let _v6b = r.register("2001:db8::2".parse().unwrap()).unwrap();
        assert!(r.register("2001:db8::3".parse().unwrap()).is_none());
        assert!(r.register("::ffff:192.0.2.1".parse().unwrap()).is_none());
        // Trusted proxies have no share.
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| r.register(proxy).unwrap()).collect();
        drop(second);
        assert!(
            r.register(a).is_some(),
            "a closed connection frees its place"
        );
        // The longest-idle connection without a request is the one asked to close.
        let busy: Vec<_> = held.iter().map(|h| h.conn.request_started()).collect();
        let _flight = v6a.conn.request_started();
        let newcomer = r.register("192.0.2.9".parse().unwrap()).unwrap();
        assert!(r.evict_idle(&newcomer));
        assert!(!newcomer.conn.close.notified().now_or_never_for_test());
        drop(busy);
        assert!(first.conn.close.notified().now_or_never_for_test());
    }

    trait NowOrNever {
        fn now_or_never_for_test(self) -> bool;
    }

    impl<F: std::future::Future<Output = ()>> NowOrNever for F {
        fn now_or_never_for_test(self) -> bool {
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            let mut f = std::pin::pin!(self);
            f.as_mut().poll(&mut cx).is_ready()
        }
    }
}
