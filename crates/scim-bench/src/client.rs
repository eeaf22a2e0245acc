//! The HTTP side: one request, timed and recorded, and the loopback-only guard.

use crate::BenchError;
use crate::report::Recorder;
use serde_json::Value;
use std::time::Instant;

#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Client {
    /// The target's scheme and authority (`http://127.0.0.1:8080`), for paths that a
    /// request names as `@root/…`.
    pub(crate) fn root_url(&self) -> &str {
        let after_scheme = self.base.find("://").map_or(0, |i| i + 3);
        match self.base[after_scheme..].find('/') {
            Some(i) => &self.base[..after_scheme + i],
            None => &self.base,
        }
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let url = match path.strip_prefix("@root") {
            Some(rest) => format!("{}{rest}", self.root_url()),
            None => format!("{}{path}", self.base),
        };
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("accept", "application/scim+json");
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Sends and records one measured request.
    pub(crate) async fn measured(
        &self,
        rec: &Recorder,
        kind: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        let start = Instant::now();
        let r = self.send(method, path, body).await;
        let elapsed = start.elapsed();
        match r {
            Ok((s, v)) => {
                rec.record(kind, Some(s), elapsed);
                Some((s, v))
            }
            Err(_) => {
                rec.record(kind, None, elapsed);
                None
            }
        }
    }
}

pub(crate) fn check_target(base: &str, allow_remote: bool) -> Result<(), BenchError> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| BenchError::Config(format!("invalid base URL '{base}': {e}")))?;
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback && !allow_remote {
        return Err(BenchError::Config(format!(
            "refusing to load-test non-loopback host '{host}'; pass --allow-remote if you own it"
        )));
    }
    Ok(())
}
