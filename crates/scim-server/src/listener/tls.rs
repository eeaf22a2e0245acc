//! TLS without a proxy: the certificate and key from PEM files, read again on `SIGHUP`.

use super::{ListenError, TlsFiles};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

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
pub(super) type SharedTls = Arc<RwLock<Arc<rustls::ServerConfig>>>;

#[cfg(unix)]
pub(super) fn reload_on_sighup(tls: Option<(TlsFiles, SharedTls)>) -> Result<(), ListenError> {
    // Always handled: SIGHUP's default action ends the process, and `systemctl reload`
    // sends it whether or not scimd serves TLS itself (systemd counts that death as a clean
    // exit, so `Restart=on-failure` would not bring it back).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some((files, shared)) = &tls else {
                tracing::info!("SIGHUP: nothing to reload (no TLS files are configured)");
                continue;
            };
            match tls_config(files) {
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
pub(super) fn reload_on_sighup(_: Option<(TlsFiles, SharedTls)>) -> Result<(), ListenError> {
    Ok(())
}
