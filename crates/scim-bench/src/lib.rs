//! # scim-bench: a SCIM 2.0 load generator
//!
//! Drives **any** SCIM 2.0 server, given a base URL and a bearer token, with the request
//! patterns identity providers produce, and reports throughput and latency percentiles per
//! request kind (HDR histograms) and errors by status:
//!
//! - `create-users`: POST /Users with unique userNames.
//! - `lookup`: GET /Users?filter=userName eq "…", half hits, half misses (Entra's matching).
//! - `patch-users`: Entra-style PATCH replacing several attributes of existing users.
//! - `group-members`: PATCH add then remove one member of groups of `--group-size` members.
//! - `list`: pages through every user, 100 at a time.
//! - `idp-cycle`: per user, a filter GET then a PATCH (known user) or a POST (new user).
//!
//! Set-up (the users and groups a workload needs) is not measured; it uses Bulk when the
//! server advertises it. Runs are bounded by `--duration` and `--requests`, and non-loopback
//! targets are refused unless `--allow-remote` is given.

use rand::Rng;
use serde::Serialize;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    CreateUsers,
    Lookup,
    PatchUsers,
    GroupMembers,
    List,
    IdpCycle,
    /// `GET /healthz` on the target's root (scimd): no token, no database, a few bytes. The
    /// most requests this HTTP stack answers on this machine under the same load: the
    /// ceiling the other figures are read against.
    Ceiling,
}

impl FromStr for Workload {
    type Err = BenchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "create-users" => Self::CreateUsers,
            "lookup" => Self::Lookup,
            "patch-users" => Self::PatchUsers,
            "group-members" => Self::GroupMembers,
            "list" => Self::List,
            "idp-cycle" => Self::IdpCycle,
            "ceiling" => Self::Ceiling,
            other => {
                return Err(BenchError::Config(format!(
                    "unknown workload '{other}': use create-users, lookup, patch-users, group-members, list, idp-cycle or ceiling"
                )));
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The SCIM base URL, e.g. `http://127.0.0.1:8080/t/default/scim/v2`.
    pub base_url: String,
    pub token: String,
    pub workload: Workload,
    /// Users to create before measuring (lookup, patch-users, list, idp-cycle).
    pub users: u64,
    /// Groups for `group-members`.
    pub groups: u64,
    /// Members of each group for `group-members`.
    pub group_size: u64,
    pub concurrency: usize,
    pub duration: Duration,
    /// Stop after this many measured requests.
    pub requests: Option<u64>,
    pub allow_remote: bool,
    pub progress: bool,
    /// Keep the users between runs: they are named `seed-{i}@bench.example`, only the missing
    /// ones are created, and later runs (lookup at 1,000,000 users, say) reuse them.
    pub seed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Config(String),
    #[error("set-up failed: {0}")]
    Setup(String),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
}

mod client;
mod report;
mod setup;
mod workload;

pub use report::{KindReport, Report};

use client::{Client, check_target};
use report::Recorder;
use setup::{SEED_PREFIX, bar, setup};
use workload::iterate;

/// Runs one workload and reports.
pub async fn run(cfg: BenchConfig) -> Result<Report, BenchError> {
    let base = cfg.base_url.trim_end_matches('/').to_string();
    check_target(&base, cfg.allow_remote)?;
    if cfg.concurrency == 0 {
        return Err(BenchError::Config(
            "--concurrency must be at least 1".into(),
        ));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.concurrency * 2)
        .timeout(Duration::from_secs(60))
        .build()?;
    let client = Client {
        http,
        base: base.clone(),
        token: cfg.token.clone(),
    };
    let (s, v) = client
        .send(reqwest::Method::GET, "/Users?count=1", None)
        .await?;
    if s != 200 {
        return Err(BenchError::Setup(format!(
            "GET /Users answered {s}: {v}; check the URL and token"
        )));
    }
    let prefix = if cfg.seed {
        SEED_PREFIX.to_string()
    } else {
        format!("b{}", rand::thread_rng().gen_range(100_000..999_999u32))
    };
    let ds = Arc::new(setup(&client, &cfg, &prefix).await?);
    let rec = Arc::new(Recorder::default());
    let budget = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + cfg.duration;
    let bar = Arc::new(bar(cfg.progress, cfg.requests.unwrap_or(0), "measuring"));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..cfg.concurrency {
        let (client, rec, budget, ds, cfg, bar) = (
            client.clone(),
            rec.clone(),
            budget.clone(),
            ds.clone(),
            cfg.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut list_start = 0;
            loop {
                let n = budget.fetch_add(1, Ordering::Relaxed);
                if Instant::now() >= deadline || cfg.requests.is_some_and(|max| n >= max) {
                    return;
                }
                iterate(&client, &rec, &cfg, &ds, w, n, &mut list_start).await;
                bar.inc(1);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let kinds = rec
        .kinds
        .lock()
        .map(|k| {
            k.iter()
                .map(|(kind, r)| {
                    let ms = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
                    KindReport {
                        kind: kind.to_string(),
                        requests: r.hist.len(),
                        per_second: r.hist.len() as f64 / elapsed,
                        p50_ms: ms(0.50),
                        p90_ms: ms(0.90),
                        p99_ms: ms(0.99),
                        max_ms: r.hist.max() as f64 / 1000.0,
                        errors: r.errors.clone(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let total = rec.total.load(Ordering::Relaxed);
    Ok(Report {
        workload: cfg.workload,
        target: base,
        concurrency: cfg.concurrency,
        elapsed_seconds: elapsed,
        requests: total,
        per_second: total as f64 / elapsed,
        kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_targets_need_consent() {
        assert!(check_target("http://127.0.0.1:8080/scim", false).is_ok());
        assert!(check_target("http://localhost/scim", false).is_ok());
        assert!(check_target("http://[::1]:8080/scim", false).is_ok());
        assert!(check_target("https://scim.example.com/scim", false).is_err());
        assert!(check_target("https://scim.example.com/scim", true).is_ok());
        assert!(check_target("not a url", true).is_err());
    }

    #[test]
    fn root_is_the_scheme_and_authority() {
        let c = |base: &str| client::Client {
            http: reqwest::Client::new(),
            base: base.into(),
            token: String::new(),
        };
        assert_eq!(
            c("http://127.0.0.1:8080/t/default/scim/v2").root_url(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(c("http://[::1]:9").root_url(), "http://[::1]:9");
    }

    #[test]
    fn workloads_parse() {
        assert_eq!("idp-cycle".parse::<Workload>().unwrap(), Workload::IdpCycle);
        assert_eq!("ceiling".parse::<Workload>().unwrap(), Workload::Ceiling);
        assert!("nope".parse::<Workload>().is_err());
    }
}
