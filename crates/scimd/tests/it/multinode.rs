//! Two scimd processes on one PostgreSQL database serving the same tenant.

use crate::support::{Server, on_postgres};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[test]
fn two_nodes_share_one_postgres() {
    on_postgres("multi", two_nodes);
}

fn two_nodes(db_url: &str) {
    let db_url = db_url.to_string();
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), Some(&db_url), &[("RUST_LOG", "info")]);
    let token = a.secret.clone().expect("the first node bootstraps");
    let b = Server::start(dir.path(), Some(&db_url), &[("RUST_LOG", "info")]);
    assert!(
        b.secret.is_none(),
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
    let logs = [a.stop(), b.stop()];
    let holders = logs
        .iter()
        .filter(|l| l.contains("this node holds the lease"))
        .count();
    assert_eq!(holders, 1, "{logs:?}");
}
