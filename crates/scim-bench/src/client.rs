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
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
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
