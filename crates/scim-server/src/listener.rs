//! Accepting connections: the limits a public endpoint needs, and TLS without a proxy.
//!
//! - **Connection cap**: at most `max_connections` at once; past it, new connections wait in
//!   the kernel's backlog until one closes (nothing is accepted that cannot be served).
//! - **Header-read timeout**: a client has this long to send a request's head, from the
//!   moment the connection waits for one; hyper starts that timer both for the first request
//!   and between keep-alive requests, so it is also the idle timeout: a connection that sends
//!   nothing for that long is closed (a half-sent request line does not hold a socket).
//! - **TLS** (rustls, TLS 1.2 and 1.3): certificate and key from PEM files, read again on
//!   `SIGHUP` (a renewed certificate needs no restart); the handshake has the same timeout.
//! - **Graceful stop**: on shutdown, no new connections; in-flight requests finish.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub max_connections: usize,
    /// Time to send a request head (and the idle time allowed between requests).
    pub header_read_timeout: Duration,
    pub tls: Option<TlsFiles>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            max_connections: 1024,
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

/// Reads a PEM certificate chain and private key into a rustls server configuration.
pub fn tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ListenError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|source| ListenError::Read {
            path: p.clone(),
            source,
        })
    };
    let certs = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ListenError::Tls(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(ListenError::Tls(format!(
            "{} holds no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?)
        .map_err(|e| ListenError::Tls(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ListenError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ListenError::Tls(format!("certificate and key: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The current TLS configuration, replaced on `SIGHUP`.
type SharedTls = Arc<RwLock<Arc<rustls::ServerConfig>>>;

#[cfg(unix)]
fn reload_on_sighup(files: TlsFiles, shared: SharedTls) -> Result<(), ListenError> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls_config(&files) {
                Ok(cfg) => {
                    if let Ok(mut w) = shared.write() {
                        *w = Arc::new(cfg);
                    }
                    tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                }
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_sighup(_: TlsFiles, _: SharedTls) -> Result<(), ListenError> {
    Ok(())
}

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
            reload_on_sighup(files.clone(), shared.clone())?;
            Some(shared)
        }
        None => None,
    };
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.as_ref().and_then(|t| t.read().ok().map(|c| c.clone()));
        let watcher = graceful.watcher();
        let header_timeout = opts.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let service = app.map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
            let service = TowerToHyperService::new(service);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let done = match tls {
                Some(cfg) => {
                    let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
                    match tokio::time::timeout(header_timeout, accept).await {
                        Ok(Ok(tls_stream)) => {
                            let conn = http.serve_connection(TokioIo::new(tls_stream), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
