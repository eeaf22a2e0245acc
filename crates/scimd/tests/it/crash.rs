//! Crash safety: scimd is killed with SIGKILL while clients create and patch users; after a
//! restart every acknowledged write must be there, on SQLite and on PostgreSQL.

use crate::support::{Server, on_postgres};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Acked {
    /// userName → nickName acknowledged by a 200 to the PATCH (None: only the create was).
    users: HashMap<String, Option<String>>,
    /// Groups and the members acknowledged as added.
    groups: HashMap<String, Vec<String>>,
}

async fn drive(
    url: String,
    token: String,
    round: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let group = format!("crash-group-{round}");
    let r = client
        .post(format!("{url}/Groups"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(json!({"displayName": group}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let gid = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    acked.lock().unwrap().groups.insert(gid.clone(), Vec::new());
    let mut workers = Vec::new();
    for w in 0..6 {
        let (client, url, token, stop, acked, gid) = (
            client.clone(),
            url.clone(),
            token.clone(),
            stop.clone(),
            acked.clone(),
            gid.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("crash-{round}-{w}-{i}@example.com");
                let Ok(r) = client.post(format!("{url}/Users")).bearer_auth(&token).header("content-type", "application/scim+json")
                    .body(json!({"userName": name}).to_string()).send().await else { return };
                if r.status() != 201 {
                    return;
                }
                let Ok(body) = r.json::<serde_json::Value>().await else { return };
                let id = body["id"].as_str().unwrap().to_string();
                acked.lock().unwrap().users.insert(name.clone(), None);
                let nick = format!("n{i}");
                let patch = json!({"Operations": [{"op": "replace", "path": "nickName", "value": nick}]});
                let Ok(r) = client.patch(format!("{url}/Users/{id}")).bearer_auth(&token).header("content-type", "application/scim+json")
                    .body(patch.to_string()).send().await else { return };
                if r.status() != 200 {
                    return;
                }
                acked.lock().unwrap().users.insert(name.clone(), Some(nick));
                let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
                let Ok(r) = client.patch(format!("{url}/Groups/{gid}")).bearer_auth(&token).header("content-type", "application/scim+json")
                    .body(add.to_string()).send().await else { return };
                if r.status() == 204 {
                    acked.lock().unwrap().groups.get_mut(&gid).unwrap().push(id);
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
}

fn crash_rounds(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut token = String::new();
    // Four kills in CI; `SCIMD_LONG_TESTS=1` (scripts/long-tests.sh) makes it twenty.
    let rounds = if std::env::var_os("SCIMD_LONG_TESTS").is_some() {
        20
    } else {
        4
    };
    for round in 0..rounds {
        let server = Server::start(dir.path(), database_url, &[]);
        if round == 0 {
            token = server.secret.clone().unwrap();
        }
        let url = server.url.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let driver = rt.spawn(drive(
            url,
            token.clone(),
            round,
            stop.clone(),
            acked.clone(),
        ));
        // Kill at a different point of the write stream each round.
        std::thread::sleep(Duration::from_millis(400 + 250 * round as u64));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        rt.block_on(driver).unwrap();
    }
    let server = Server::start(dir.path(), database_url, &[]);
    let url = server.url.clone();
    let acked = acked.lock().unwrap();
    assert!(
        acked.users.len() > 20,
        "the load should have acknowledged writes: {}",
        acked.users.len()
    );
    let client = reqwest::Client::new();
    rt.block_on(async {
        for (name, nick) in &acked.users {
            let r: serde_json::Value = client
                .get(format!("{url}/Users?filter=userName%20eq%20%22{name}%22"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["totalResults"], 1, "acknowledged user {name} lost");
            if let Some(n) = nick {
                assert_eq!(
                    r["Resources"][0]["nickName"].as_str(),
                    Some(n.as_str()),
                    "acknowledged PATCH of {name} lost"
                );
                assert_eq!(
                    r["Resources"][0]["meta"]["version"], "W/\"2\"",
                    "{name}: versions must be consistent"
                );
            }
        }
        for (gid, members) in &acked.groups {
            let g: serde_json::Value = client
                .get(format!("{url}/Groups/{gid}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let present: Vec<&str> = g["members"]
                .as_array()
                .map(|a| a.iter().filter_map(|m| m["value"].as_str()).collect())
                .unwrap_or_default();
            for m in members {
                assert!(
                    present.contains(&m.as_str()),
                    "acknowledged member {m} of {gid} lost"
                );
            }
            // Every member row points at a user that exists.
            for m in &present {
                let r = client
                    .get(format!("{url}/Users/{m}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "member {m} of {gid} points at nothing");
            }
        }
    });
    println!(
        "crash safety ({}): {rounds} SIGKILLs survived, {} acknowledged users and {} acknowledged member adds checked",
        if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        acked.users.len(),
        acked.groups.values().map(Vec::len).sum::<usize>()
    );
    server.stop();
}

#[test]
fn acknowledged_writes_survive_sigkill_sqlite() {
    crash_rounds(None);
}

#[test]
fn acknowledged_writes_survive_sigkill_postgres() {
    on_postgres("crash", |url| crash_rounds(Some(url)));
}
