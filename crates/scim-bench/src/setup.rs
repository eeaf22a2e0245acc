//! Set-up before measuring (not measured): the users and groups a workload needs, created
//! through Bulk when the server offers it, and kept datasets (`--seed`) reused.

use crate::client::Client;
use crate::{BenchConfig, BenchError, Workload};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) fn user_body(name: &str, i: u64) -> Value {
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
pub(crate) const SEED_PREFIX: &str = "seed";

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

pub(crate) fn bar(show: bool, len: u64, msg: &'static str) -> indicatif::ProgressBar {
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
pub(crate) struct Dataset {
    pub(crate) prefix: String,
    pub(crate) users: Vec<String>,
    pub(crate) groups: Vec<String>,
    /// Users kept out of the groups, one pair per worker, for add/remove.
    pub(crate) spare: Vec<String>,
}

pub(crate) async fn setup(
    client: &Client,
    cfg: &BenchConfig,
    prefix: &str,
) -> Result<Dataset, BenchError> {
    let mut ds = Dataset {
        prefix: prefix.to_string(),
        users: Vec::new(),
        groups: Vec::new(),
        spare: Vec::new(),
    };
    match cfg.workload {
        Workload::CreateUsers | Workload::Ceiling => {}
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
