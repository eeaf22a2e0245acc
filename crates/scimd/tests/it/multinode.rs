//! Two scimd processes on one PostgreSQL database serving the same tenant.

use super::free_port;
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Node {
    child: Child,
    url: String,
    log: std::thread::JoinHandle<String>,
}

fn node(dir: &std::path::Path, db_url: &str) -> (Node, Option<String>) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["serve", "--listen", &listen, "--database-url", db_url])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        s
    });
    let mut secret = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(s) = line.strip_prefix("Secret:") {
            secret = Some(s.trim().to_string());
        }
        if line.starts_with("Listening on") {
            break;
        }
    }
    (
        Node {
            child,
            url: format!("http://{listen}/t/default/scim/v2"),
            log,
        },
        secret,
    )
}

fn stop(n: Node) -> String {
    Command::new("kill")
        .args(["-TERM", &n.child.id().to_string()])
        .status()
        .unwrap();
    let mut child = n.child;
    assert!(child.wait().unwrap().success());
    n.log.join().unwrap()
}

#[test]
fn two_nodes_share_one_postgres() {
    let db = format!("scimd_multi_{}", std::process::id());
    let psql = |sql: &str| {
        assert!(
            Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-qc", sql, "postgres"])
                .status()
                .unwrap()
                .success()
        );
    };
    psql(&format!("CREATE DATABASE {db}"));
    let db_url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let dir = tempfile::tempdir().unwrap();
    let (a, secret) = node(dir.path(), &db_url);
    let token = secret.expect("the first node bootstraps");
    let (b, again) = node(dir.path(), &db_url);
    assert!(
        again.is_none(),
        "the second node finds the tenant and prints no new secret"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    rt.block_on(async {
        // Racing creates of one userName across the nodes: exactly one wins.
        let mut tasks = Vec::new();
        for i in 0..10 {
            let url = if i % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            };
            let (client, token) = (client.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .post(format!("{url}/Users"))
                    .bearer_auth(token)
                    .header("content-type", "application/scim+json")
                    .body(json!({"userName": "shared@example.com"}).to_string())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
        // What one node wrote, the other serves.
        let r: serde_json::Value = client
            .get(format!(
                "{}/Users?filter=userName%20eq%20%22shared@example.com%22",
                b.url
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["totalResults"], 1);
    });
    // A token created and revoked with the CLI (a third process) on the shared database.
    let out = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args([
            "token",
            "create",
            "--tenant",
            "default",
            "--name",
            "shared",
            "--scope",
            "users:r",
            "--json",
            "--database-url",
            &db_url,
        ])
        .output()
        .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shared = created["secret"].as_str().unwrap().to_string();
    let status = |url: &str, tok: &str| {
        rt.block_on(async {
            client
                .get(format!("{url}/Users"))
                .bearer_auth(tok)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(
        (status(&a.url, &shared), status(&b.url, &shared)),
        (200, 200)
    );
    let revoked = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args([
            "token",
            "revoke",
            "--tenant",
            "default",
            created["id"].as_str().unwrap(),
            "--database-url",
            &db_url,
        ])
        .status()
        .unwrap();
    assert!(revoked.success());
    std::thread::sleep(Duration::from_millis(5_500));
    assert_eq!(
        (status(&a.url, &shared), status(&b.url, &shared)),
        (401, 401),
        "revocation honoured by both nodes within 5 s"
    );
    // Exactly one node runs the log sweeper.
    let logs = [stop(a), stop(b)];
    let holders = logs
        .iter()
        .filter(|l| l.contains("this node holds the lease"))
        .count();
    assert_eq!(holders, 1, "{logs:?}");
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}
