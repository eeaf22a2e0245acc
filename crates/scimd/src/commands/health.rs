//! `scimd health`: asks this node's own `/readyz` and exits 0 when it answers 200, 1 with
//! the reason otherwise. The container image's HEALTHCHECK (the image holds no curl), and a
//! probe for any host: it reads the same settings as `serve` (file, `SCIMD_*`), so it asks
//! the address the server listens on.

use crate::config::Settings;
use anyhow::{Context, Result, bail};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The `/readyz` URL for a listen address: an unspecified address (`0.0.0.0`, `[::]`) is
/// asked on the loopback address of its family; a host name is asked as written.
pub fn readyz_url(listen: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let authority = match listen.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let ip: IpAddr = match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            };
            SocketAddr::new(ip, addr.port()).to_string()
        }
        Ok(addr) => addr.to_string(),
        Err(_) => listen.to_string(),
    };
    format!("{scheme}://{authority}/readyz")
}

pub async fn check(settings: &Settings) -> Result<()> {
    let tls = settings.listen_options.tls.is_some();
    let url = readyz_url(&settings.listen, tls);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        // Only this node's own readiness is asked, and nothing secret is sent: its
        // certificate names the public host, not the loopback address asked here.
        .danger_accept_invalid_certs(tls)
        .build()
        .context("cannot build the HTTP client")?;
    let resp = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url}: no answer"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        bail!("{url} answered {status}: {}", body.trim());
    }
    println!("ready ({url})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::readyz_url;

    #[test]
    fn readyz_url_asks_loopback_for_unspecified_addresses() {
        let cases = [
            ("0.0.0.0:8080", false, "http://127.0.0.1:8080/readyz"),
            ("[::]:8443", true, "https://[::1]:8443/readyz"),
            ("127.0.0.1:9000", false, "http://127.0.0.1:9000/readyz"),
            ("10.0.0.5:8080", false, "http://10.0.0.5:8080/readyz"),
            ("localhost:8080", false, "http://localhost:8080/readyz"),
        ];
        for (listen, tls, want) in cases {
            assert_eq!(readyz_url(listen, tls), want, "{listen}");
        }
    }
}
