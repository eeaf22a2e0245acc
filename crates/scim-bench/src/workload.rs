//! One iteration of each workload: the requests identity providers make.

use crate::client::Client;
use crate::report::Recorder;
use crate::setup::{Dataset, user_body};
use crate::{BenchConfig, Workload};
use rand::Rng;
use serde_json::{Value, json};

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

/// One measured `POST /Users`.
async fn create(client: &Client, rec: &Recorder, name: &str, n: u64) {
    let body = user_body(name, n);
    client
        .measured(rec, "create", reqwest::Method::POST, "/Users", Some(&body))
        .await;
}

/// One iteration of a workload by worker `w`.
pub(crate) async fn iterate(
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
        Workload::Ceiling => {
            client
                .measured(rec, "healthz", Method::GET, "@root/healthz", None)
                .await;
        }
        Workload::CreateUsers => {
            let name = format!("{}-new-{w}-{n}@bench.example", ds.prefix);
            create(client, rec, &name, n).await;
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
                None => create(client, rec, &name, n).await,
            }
        }
    }
}
