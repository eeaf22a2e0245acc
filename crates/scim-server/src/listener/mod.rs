//! Accepting connections: the limits a public endpoint needs, and TLS without a proxy.
//!
//! - **Connection cap**: at most `max_connections` at once. Past it, a new connection takes
//!   the place of the one idle the longest (connected, or kept alive, with no request in
//!   flight), so clients that have sent a request's head are served before sockets that
//!   send nothing; when every connection has a request in flight, new ones wait in the
//!   kernel's backlog.
//! - **Per-address share**: one address (an IPv6 /64) holds at most
//!   `max_connections_per_address`; past it, a connection is answered `503` and closed.
//!   Trusted proxies (`trusted_proxies`) have no share: their own limits apply.
//! - **Header-read timeout**: a client has this long to send a request's head, from the
//!   moment the connection waits for one; hyper starts that timer both for the first request
//!   and between keep-alive requests, so it is also the idle timeout: a connection that sends
//!   nothing for that long is closed (a half-sent request line does not hold a socket).
//! - **TLS** (rustls, TLS 1.2 and 1.3): certificate and key from PEM files, read again on
//!   `SIGHUP` (a renewed certificate needs no restart); the handshake has the same timeout.
//!   Answers carry `Strict-Transport-Security`.
//! - **Graceful stop**: on shutdown, no new connections; idle ones close, in-flight requests
//!   finish.
//!
//! The metrics listener is served by the same code.

mod conns;
mod tls;

pub use conns::AddressKey;
pub use tls::tls_config;

use axum::Router;
use axum::extract::ConnectInfo;
use conns::{Conn, Registry, TrackedBody};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tls::{SharedTls, reload_on_sighup};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub max_connections: usize,
    /// Connections one address may hold at once (0: no share).
    pub max_connections_per_address: usize,
    /// Proxies in front of scimd: no per-address share (docs/security.md).
    pub trusted_proxies: Vec<IpNet>,
    /// Time to send a request head (and the idle time allowed between requests).
    pub header_read_timeout: Duration,
    pub tls: Option<TlsFiles>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 64,
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(20),
            tls: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What an address past its share is told before the connection is closed.
const OVER_SHARE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Retry-After: 5\r\nConnection: close\r\nContent-Length: 52\r\n\r\n\
too many connections from your address; retry later\n";

/// How long an evicted idle connection may take to close before it is dropped.
pub(crate) const EVICT_GRACE: Duration = Duration::from_secs(2);
/// How long in-flight requests have to finish on shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// One year, the usual `max-age` (RFC 6797).
const HSTS: &str = "max-age=31536000";

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ListenError> {
    let tls = match &opts.tls {
        Some(files) => {
            let shared: SharedTls = Arc::new(RwLock::new(Arc::new(tls_config(files)?)));
            reload_on_sighup(Some((files.clone(), shared.clone())))?;
            Some(shared)
        }
        None => {
            reload_on_sighup(None)?;
            None
        }
    };
    let max = opts.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let registry = Registry::new(
        opts.max_connections_per_address,
        opts.trusted_proxies.clone(),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(registered) = registry.register(peer.ip()) else {
            // Past the address's share: told so (best effort, never waited for), closed.
            let _ = stream.try_write(OVER_SHARE);
            continue;
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Full: the longest-idle connection makes room; if all are busy, wait (and
                // look again: a busy one may have become idle).
                let permit = loop {
                    registry.evict_idle(&registered);
                    tokio::select! {
                        p = slots.clone().acquire_owned() => break p.ok(),
                        () = &mut shutdown => break None,
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                };
                match permit {
                    Some(p) => p,
                    None => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.as_ref().and_then(|t| t.read().ok().map(|c| c.clone()));
        let conn = Connection {
            app: app.clone(),
            peer,
            header_timeout: opts.header_read_timeout,
            state: registered.conn.clone(),
        };
        tokio::spawn(async move {
            // Unregistered before the slot is given back (a tuple drops in order), so the
            // next newcomer never picks this closing connection to make room.
            let _held = (registered, permit);
            conn.run(stream, tls).await;
        });
    }
    drop(listener);
    registry.close_all();
    // Every connection gives its slot back when it ends (each within its grace).
    let all = slots.acquire_many(u32::try_from(max).unwrap_or(u32::MAX));
    if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(5), all)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace; stopping anyway");
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    app: Router,
    peer: SocketAddr,
    header_timeout: Duration,
    state: Arc<Conn>,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) {
        let Some(cfg) = tls else {
            return self.drive(TokioIo::new(stream), false).await;
        };
        let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
        let state = self.state.clone();
        // A handshake is no request: asked to close, it is dropped.
        tokio::select! {
            r = tokio::time::timeout(self.header_timeout, accept) => match r {
                Ok(Ok(tls_stream)) => self.drive(TokioIo::new(tls_stream), true).await,
                Ok(Err(e)) => tracing::debug!(error = %e, peer = %self.peer, "TLS handshake failed"),
                Err(_) => {}
            },
            () = state.close.notified() => {}
        }
    }

    /// Serves HTTP/1.1 on `io` until the client goes, the header timeout passes, or the
    /// connection is asked to close (an idle one at once, a busy one after its request).
    async fn drive<I>(self, io: I, https: bool)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (peer, state, app) = (self.peer, self.state.clone(), self.app);
        let tracked = state.clone();
        let service = tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            // Busy from the head's arrival until the answer's body is sent.
            let flight = tracked.request_started();
            let answer = app.clone().oneshot(req);
            async move {
                let mut resp = answer.await?;
                if https {
                    resp.headers_mut().insert(
                        axum::http::header::STRICT_TRANSPORT_SECURITY,
                        axum::http::HeaderValue::from_static(HSTS),
                    );
                }
                Ok::<_, std::convert::Infallible>(resp.map(|b| TrackedBody::wrap(b, flight)))
            }
        });
        let service = TowerToHyperService::new(service);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        let conn = http.serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        // Asked to close: hyper finishes what is in flight (and the answer's last bytes),
        // then closes; a connection that does not finish within its grace is dropped (one
        // that never sent a request, or a client that does not read its answer).
        let mut deadline: Option<tokio::time::Instant> = None;
        let done = loop {
            let grace = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = conn.as_mut() => break r,
                () = state.close.notified(), if deadline.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    deadline = Some(tokio::time::Instant::now() + state.grace());
                }
                () = grace => break Ok(()),
            }
        };
        if let Err(e) = done {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
    }
}
