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

use hdrhistogram::Histogram;
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
            other => {
                return Err(BenchError::Config(format!(
                    "unknown workload '{other}': use create-users, lookup, patch-users, group-members, list or idp-cycle"
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

/// Latency and outcome statistics of one request kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub kind: String,
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Non-2xx responses by status ("transport" for connection failures).
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub target: String,
    pub concurrency: usize,
    pub elapsed_seconds: f64,
    pub requests: u64,
    pub per_second: f64,
    pub kinds: Vec<KindReport>,
}

impl Report {
    /// A human-readable table.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "workload {:?} against {} with concurrency {}: {} requests in {:.1} s = {:.0} req/s\n",
            self.workload,
            self.target,
            self.concurrency,
            self.requests,
            self.elapsed_seconds,
            self.per_second
        );
        out += &format!(
            "{:<16} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  errors\n",
            "kind", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for k in &self.kinds {
            let errors = if k.errors.is_empty() {
                "-".to_string()
            } else {
                k.errors
                    .iter()
                    .map(|(s, n)| format!("{s}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            out += &format!(
                "{:<16} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {errors}\n",
                k.kind, k.requests, k.per_second, k.p50_ms, k.p90_ms, k.p99_ms, k.max_ms
            );
        }
        out
    }
}

struct KindRec {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Recorder {
    kinds: Mutex<BTreeMap<&'static str, KindRec>>,
    total: AtomicU64,
}

impl Recorder {
    fn record(&self, kind: &'static str, status: Option<u16>, elapsed: Duration) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let Ok(mut kinds) = self.kinds.lock() else {
            return;
        };
        let rec = match kinds.entry(kind) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                // 1 µs to 60 s at 3 significant digits: constant, valid bounds.
                let Ok(hist) = Histogram::new_with_bounds(1, 60_000_000, 3) else {
                    return;
                };
                v.insert(KindRec {
                    hist,
                    errors: BTreeMap::new(),
                })
            }
        };
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        let _ = rec.hist.record(micros);
        match status {
            Some(s) if (200..300).contains(&s) => {}
            Some(s) => *rec.errors.entry(s.to_string()).or_default() += 1,
            None => *rec.errors.entry("transport".into()).or_default() += 1,
        }
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn send(
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
    async fn measured(
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

fn check_target(base: &str, allow_remote: bool) -> Result<(), BenchError> {
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

fn user_body(name: &str, i: u64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "active": true,
        "displayName": format!("Bench User {i}"),
        "name": {"givenName": "Bench", "familyName": format!("User{i}")},
        "emails": [{"value": name, "type": "work", "primary": true}],
    })
}

/// Creates users (Bulk when offered, else concurrent POSTs); returns their ids in order.
async fn seed_users(
    client: &Client,
    prefix: &str,
    n: u64,
    concurrency: usize,
    progress: bool,
) -> Result<Vec<String>, BenchError> {
    let (_, spc) = client
        .send(reqwest::Method::GET, "/ServiceProviderConfig", None)
        .await?;
    let bulk_max = if spc["bulk"]["supported"] == true {
        spc["bulk"]["maxOperations"].as_u64().unwrap_or(0).min(500)
    } else {
        0
    };
    // A kept dataset (`--seed`) resumes where the last set-up stopped.
    let existing = if prefix == SEED_PREFIX {
        let (st, v) = client
            .send(
                reqwest::Method::GET,
                &format!("/Users?count=0&filter={}", seed_filter()),
                None,
            )
            .await?;
        if st != 200 {
            return Err(BenchError::Setup(format!(
                "counting the seeded users answered {st}: {v}"
            )));
        }
        v["totalResults"].as_u64().unwrap_or(0).min(n)
    } else {
        0
    };
    let bar = bar(progress, n, "set-up: users");
    bar.inc(existing);
    let mut ids = vec![String::new(); usize::try_from(n).unwrap_or(0)];
    let chunk = if bulk_max > 0 { bulk_max } else { 1 };
    let starts: Vec<u64> = (existing..n)
        .step_by(usize::try_from(chunk).unwrap_or(1))
        .collect();
    let results = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.clamp(1, 8) {
        let (client, starts, results, next, bar, prefix) = (
            client.clone(),
            starts.clone(),
            results.clone(),
            next.clone(),
            bar.clone(),
            prefix.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&start) = starts.get(k) else { return Ok::<(), BenchError>(()) };
                let end = (start + chunk).min(n);
                if bulk_max > 0 {
                    let ops: Vec<Value> = (start..end)
                        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": i.to_string(), "data": user_body(&format!("{prefix}-{i}@bench.example"), i)}))
                        .collect();
                    let (s, v) = client.send(reqwest::Method::POST, "/Bulk", Some(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))).await?;
                    if s != 200 {
                        return Err(BenchError::Setup(format!("Bulk answered {s}: {v}")));
                    }
                    for op in v["Operations"].as_array().into_iter().flatten() {
                        let i: u64 = op["bulkId"].as_str().and_then(|b| b.parse().ok()).unwrap_or(u64::MAX);
                        let id = op["location"].as_str().and_then(|l| l.rsplit('/').next()).unwrap_or("").to_string();
                        if op["status"] == "409" && prefix == SEED_PREFIX {
                            continue; // already seeded by an earlier, interrupted run
                        }
                        if op["status"] != "201" || id.is_empty() {
                            return Err(BenchError::Setup(format!("bulk create failed: {op}")));
                        }
                        if let Ok(mut r) = results.lock() {
                            r.push((i, id));
                        }
                    }
                } else {
                    let (s, v) = client.send(reqwest::Method::POST, "/Users", Some(&user_body(&format!("{prefix}-{start}@bench.example"), start))).await?;
                    let id = v["id"].as_str().unwrap_or("").to_string();
                    if s != 201 || id.is_empty() {
                        return Err(BenchError::Setup(format!("POST /Users answered {s}: {v}")));
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push((start, id));
                    }
                }
                bar.inc(end - start);
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| BenchError::Setup(e.to_string()))??;
    }
    bar.finish_and_clear();
    for (i, id) in results.lock().map(|r| r.clone()).unwrap_or_default() {
        if let Some(slot) = ids.get_mut(usize::try_from(i).unwrap_or(usize::MAX)) {
            *slot = id;
        }
    }
    if prefix == SEED_PREFIX && ids.iter().any(String::is_empty) {
        fill_seeded_ids(client, &mut ids, progress).await?;
    }
    Ok(ids)
}

/// The userName prefix of a kept dataset.
const SEED_PREFIX: &str = "seed";

/// `userName sw "seed-"`, URL-encoded.
fn seed_filter() -> String {
    "userName%20sw%20%22seed-%22".to_string()
}

/// The ids of kept users created by earlier runs, read with cursor paging (RFC 9865) when
/// the server offers it, else index paging.
async fn fill_seeded_ids(
    client: &Client,
    ids: &mut [String],
    progress: bool,
) -> Result<(), BenchError> {
    let bar = bar(progress, ids.len() as u64, "set-up: reading ids");
    let mut cursor = Some(String::new());
    let mut start = 1;
    loop {
        let page = match &cursor {
            Some(c) => format!(
                "/Users?filter={}&attributes=userName&count=1000&cursor={c}",
                seed_filter()
            ),
            None => format!(
                "/Users?filter={}&attributes=userName&count=1000&startIndex={start}",
                seed_filter()
            ),
        };
        let (st, v) = client.send(reqwest::Method::GET, &page, None).await?;
        if st != 200 {
            return Err(BenchError::Setup(format!("reading ids answered {st}: {v}")));
        }
        let items = v["Resources"].as_array().cloned().unwrap_or_default();
        for r in &items {
            let i = r["userName"]
                .as_str()
                .and_then(|u| u.strip_prefix("seed-"))
                .and_then(|u| u.strip_suffix("@bench.example"))
                .and_then(|u| u.parse::<usize>().ok());
            if let (Some(i), Some(id)) = (i, r["id"].as_str())
                && let Some(slot) = ids.get_mut(i)
            {
                *slot = id.to_string();
            }
        }
        bar.inc(items.len() as u64);
        let total = v["totalResults"].as_u64().unwrap_or(0) as usize;
        let first_page = start == 1;
        start += items.len();
        match (&cursor, v["nextCursor"].as_str()) {
            (Some(_), Some(next)) => cursor = Some(next.to_string()),
            // The server ignored `cursor`: continue with index paging.
            (Some(_), None) if first_page && total > items.len() => cursor = None,
            (Some(_), None) => break,
            (None, _) if items.is_empty() || start > total => break,
            (None, _) => {}
        }
    }
    bar.finish_and_clear();
    let missing = ids.iter().filter(|i| i.is_empty()).count();
    if missing > 0 {
        return Err(BenchError::Setup(format!(
            "{missing} seeded users could not be found; drop the dataset or use another tenant"
        )));
    }
    Ok(())
}

fn bar(show: bool, len: u64, msg: &'static str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {bar:40} {pos}/{len} ({per_sec})",
    ) {
        b.set_style(style);
    }
    b.set_message(msg);
    b
}

/// What the measured phase works on.
struct Dataset {
    prefix: String,
    users: Vec<String>,
    groups: Vec<String>,
    /// Users kept out of the groups, one pair per worker, for add/remove.
    spare: Vec<String>,
}

async fn setup(client: &Client, cfg: &BenchConfig, prefix: &str) -> Result<Dataset, BenchError> {
    let mut ds = Dataset {
        prefix: prefix.to_string(),
        users: Vec::new(),
        groups: Vec::new(),
        spare: Vec::new(),
    };
    match cfg.workload {
        Workload::CreateUsers => {}
        Workload::Lookup | Workload::PatchUsers | Workload::List | Workload::IdpCycle => {
            ds.users = seed_users(client, prefix, cfg.users, cfg.concurrency, cfg.progress).await?;
        }
        Workload::GroupMembers => {
            let all = seed_users(
                client,
                prefix,
                cfg.group_size + cfg.concurrency as u64,
                cfg.concurrency,
                cfg.progress,
            )
            .await?;
            let (members, spare) = all.split_at(usize::try_from(cfg.group_size).unwrap_or(0));
            ds.spare = spare.to_vec();
            for g in 0..cfg.groups.max(1) {
                let (s, v) = client
                    .send(reqwest::Method::POST, "/Groups", Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("{prefix}-group-{g}")})))
                    .await?;
                let gid = v["id"].as_str().unwrap_or("").to_string();
                if s != 201 || gid.is_empty() {
                    return Err(BenchError::Setup(format!("POST /Groups answered {s}: {v}")));
                }
                for chunk in members.chunks(500) {
                    let value: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": value}]});
                    let (s, v) = client
                        .send(
                            reqwest::Method::PATCH,
                            &format!("/Groups/{gid}"),
                            Some(&body),
                        )
                        .await?;
                    if !(200..300).contains(&s) {
                        return Err(BenchError::Setup(format!(
                            "adding members answered {s}: {v}"
                        )));
                    }
                }
                ds.groups.push(gid);
            }
        }
    }
    Ok(ds)
}

fn patch_body(i: u64, n: u64) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "displayName", "value": format!("Bench User {i} v{n}")},
        {"op": "Replace", "path": "title", "value": format!("Title {n}")},
        {"op": "Replace", "path": "name.givenName", "value": format!("Given{n}")},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": format!("u{i}-{n}@bench.example")},
        {"op": "Replace", "path": "active", "value": "True"}
    ]})
}

fn filter_path(user_name: &str) -> String {
    let f = format!("userName eq \"{user_name}\"");
    let enc: String = f
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/Users?filter={enc}")
}

/// One iteration of a workload by worker `w`.
async fn iterate(
    client: &Client,
    rec: &Recorder,
    cfg: &BenchConfig,
    ds: &Dataset,
    w: usize,
    n: u64,
    list_start: &mut u64,
) {
    use reqwest::Method;
    match cfg.workload {
        Workload::CreateUsers => {
            let name = format!("{}-new-{w}-{n}@bench.example", ds.prefix);
            client
                .measured(
                    rec,
                    "create",
                    Method::POST,
                    "/Users",
                    Some(&user_body(&name, n)),
                )
                .await;
        }
        Workload::Lookup => {
            let i = rand::thread_rng().gen_range(0..ds.users.len().max(1)) as u64;
            let (kind, name) = if n.is_multiple_of(2) {
                ("lookup-hit", format!("{}-{i}@bench.example", ds.prefix))
            } else {
                (
                    "lookup-miss",
                    format!("{}-missing-{i}@bench.example", ds.prefix),
                )
            };
            client
                .measured(rec, kind, Method::GET, &filter_path(&name), None)
                .await;
        }
        Workload::PatchUsers => {
            let i = rand::thread_rng().gen_range(0..ds.users.len().max(1));
            if let Some(id) = ds.users.get(i) {
                client
                    .measured(
                        rec,
                        "patch",
                        Method::PATCH,
                        &format!("/Users/{id}"),
                        Some(&patch_body(i as u64, n)),
                    )
                    .await;
            }
        }
        Workload::GroupMembers => {
            let g = &ds.groups[rand::thread_rng()
                .gen_range(0..ds.groups.len().max(1))
                .min(ds.groups.len().saturating_sub(1))];
            let Some(member) = ds.spare.get(w % ds.spare.len().max(1)) else {
                return;
            };
            let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": [{"value": member}]}]});
            client
                .measured(
                    rec,
                    "add-member",
                    Method::PATCH,
                    &format!("/Groups/{g}"),
                    Some(&add),
                )
                .await;
            let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": member}]}]});
            client
                .measured(
                    rec,
                    "remove-member",
                    Method::PATCH,
                    &format!("/Groups/{g}"),
                    Some(&remove),
                )
                .await;
        }
        Workload::List => {
            let path = format!("/Users?startIndex={}&count=100", *list_start + 1);
            let r = client
                .measured(rec, "list-page", Method::GET, &path, None)
                .await;
            let got = r
                .as_ref()
                .and_then(|(_, v)| v["Resources"].as_array().map(Vec::len))
                .unwrap_or(0) as u64;
            *list_start = if got < 100 { 0 } else { *list_start + 100 };
        }
        Workload::IdpCycle => {
            // Half the cycle matches known users, half provisions new ones, like an initial
            // cycle meeting a partly provisioned app.
            let known = n.is_multiple_of(2) && !ds.users.is_empty();
            let (name, i) = if known {
                let i = rand::thread_rng().gen_range(0..ds.users.len());
                (format!("{}-{i}@bench.example", ds.prefix), i as u64)
            } else {
                (format!("{}-cycle-{w}-{n}@bench.example", ds.prefix), n)
            };
            let found = client
                .measured(rec, "match", Method::GET, &filter_path(&name), None)
                .await;
            let id = found.and_then(|(_, v)| v["Resources"][0]["id"].as_str().map(str::to_string));
            match id {
                Some(id) => {
                    client
                        .measured(
                            rec,
                            "update",
                            Method::PATCH,
                            &format!("/Users/{id}"),
                            Some(&patch_body(i, n)),
                        )
                        .await;
                }
                None => {
                    client
                        .measured(
                            rec,
                            "create",
                            Method::POST,
                            "/Users",
                            Some(&user_body(&name, n)),
                        )
                        .await;
                }
            }
        }
    }
}

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
    fn workloads_parse() {
        assert_eq!("idp-cycle".parse::<Workload>().unwrap(), Workload::IdpCycle);
        assert!("nope".parse::<Workload>().is_err());
    }
}
