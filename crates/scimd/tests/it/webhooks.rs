//! Webhooks from a real `scimd serve` to a real receiver on loopback (docs/events.md):
//! signed deliveries in sequence order; a receiver that answers 500, hangs past the time
//! limit or is down gets retries with backoff and then catches up in order; an endpoint
//! failing past the retry window is disabled; SIGKILL during delivery loses nothing.

use crate::support::{BIN, Server, on_postgres};
use scim_testkit::webhook::{Mode, Received, Receiver};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Quick retries so the tests see several of them.
const FAST: &[(&str, &str)] = &[
    ("SCIMD_WEBHOOK_FIRST_RETRY", "100ms"),
    ("SCIMD_WEBHOOK_MAX_RETRY_INTERVAL", "400ms"),
    ("SCIMD_WEBHOOK_TIMEOUT", "1s"),
    ("SCIMD_WEBHOOK_LEASE", "3s"),
];

fn cli(dir: &Path, db: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut all: Vec<&str> = Vec::new();
    if let Some(u) = db {
        all.extend(["--database-url", u]);
    }
    all.extend(args);
    scim_testkit::process::scimd(BIN, dir, &all)
}

fn add_endpoint(dir: &Path, db: Option<&str>, url: &str, types: &str) -> (String, String) {
    let (ok, out, err) = cli(
        dir,
        db,
        &[
            "webhook", "add", "--tenant", "default", "--url", url, "--types", types, "--json",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

fn create_users(url: &str, token: &str, prefix: &str, n: usize) -> Vec<String> {
    let c = reqwest::blocking::Client::new();
    (0..n)
        .map(|i| {
            let r = c
                .post(format!("{url}/Users"))
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(json!({"userName": format!("{prefix}{i}@example.com")}).to_string())
                .send()
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Every signature in the header that verifies with `secret` (the sender's code, so this
/// checks the headers are consistent; the example receiver checks independently).
fn valid_signatures(r: &Received, secret: &str) -> usize {
    let ts: i64 = r.timestamp.parse().unwrap();
    let want = scim_core::webhook::sign(secret, &r.id, ts, r.body.as_bytes()).unwrap();
    r.signature.split(' ').filter(|s| *s == want).count()
}

/// Delivered in order and none skipped: each delivery's sequence is at most one past the
/// highest before it (a repeat after a crash goes back, never ahead), and together they
/// cover `1..=last`. A repeated sequence always comes with the same id and body.
fn assert_in_order_complete(got: &[Received], last: i64) {
    let mut high = 0;
    let mut by_seq: std::collections::HashMap<i64, (&str, &str)> = Default::default();
    for r in got {
        let s = r.sequence();
        assert!(s <= high + 1, "sequence {s} delivered before {}", high + 1);
        high = high.max(s);
        let prev = by_seq.insert(s, (&r.id, &r.body));
        if let Some((id, body)) = prev {
            assert_eq!(
                (id, body),
                (r.id.as_str(), r.body.as_str()),
                "a repeat is the same message"
            );
        }
    }
    assert_eq!(high, last, "every event up to {last} delivered");
    assert_eq!(by_seq.len() as i64, last);
}

fn deliveries(dir: &Path, db: Option<&str>, id: &str) -> Vec<Value> {
    let (ok, out, err) = cli(
        dir,
        db,
        &[
            "webhook",
            "deliveries",
            "--tenant",
            "default",
            id,
            "--limit",
            "500",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn wait_until(limit: Duration, what: &str, f: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Returns the two secrets the endpoint had.
fn delivery_through_faults(dir: &Path, db: Option<&str>) -> [String; 2] {
    let server = Server::start(dir, db, FAST);
    let token = server.secret.clone().unwrap();
    let mut rx = Receiver::start();
    let (id, secret) = add_endpoint(dir, db, &rx.url, "");
    let (ok, out, _) = cli(dir, db, &["webhook", "list", "--tenant", "default"]);
    assert!(ok && out.contains(&id) && out.contains("active"), "{out}");
    assert!(
        !out.contains(&secret[12..]),
        "the secret is shown once only"
    );

    // Healthy: signed, in order.
    create_users(&server.url, &token, "a", 10);
    rx.wait_for(Duration::from_secs(20), "10 deliveries", |g| g.len() >= 10);
    let got = rx.received();
    assert_in_order_complete(&got, 10);
    assert!(got.iter().all(|r| valid_signatures(r, &secret) == 1));
    assert_eq!(got[0].json["type"], "user.created");
    assert_eq!(got[0].id, got[0].json["id"].as_str().unwrap());

    // 500s, then a receiver that hangs past the time limit, then one that is down.
    rx.set_mode(Mode::Status(500));
    create_users(&server.url, &token, "b", 5);
    wait_until(Duration::from_secs(20), "failed attempts", || {
        deliveries(dir, db, &id)
            .iter()
            .filter(|d| d["status"] == 500)
            .count()
            >= 3
    });
    rx.set_mode(Mode::Hang(Duration::from_millis(1500)));
    wait_until(Duration::from_secs(20), "timed-out attempts", || {
        deliveries(dir, db, &id)
            .iter()
            .any(|d| d["error"] == "timed out")
    });
    rx.set_mode(Mode::Accept);
    rx.down();
    wait_until(Duration::from_secs(20), "refused attempts", || {
        deliveries(dir, db, &id)
            .iter()
            .any(|d| d["error"] == "could not connect")
    });
    let (ok, out, _) = cli(dir, db, &["webhook", "list", "--tenant", "default"]);
    assert!(ok && out.contains("retrying (failing since"), "{out}");
    create_users(&server.url, &token, "c", 5);
    // Back up: it catches up, in order, nothing skipped.
    rx.up();
    rx.wait_for(Duration::from_secs(30), "the catch-up", |g| {
        g.iter().any(|r| r.sequence() == 20)
    });
    assert_in_order_complete(&rx.received(), 20);
    let attempts = deliveries(dir, db, &id);
    let retried = attempts
        .iter()
        .filter(|d| d["sequence"] == 11)
        .map(|d| d["attempt"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(retried >= 4, "event 11 was retried ({retried} attempts)");

    // A test event: signed, outside the feed.
    let (ok, out, err) = cli(dir, db, &["webhook", "test", "--tenant", "default", &id]);
    assert!(ok, "{out} {err}");
    rx.wait_for(Duration::from_secs(5), "the test event", |g| {
        g.iter().any(|r| r.json["type"] == "webhook.test")
    });

    // Rotation: both secrets sign during the overlap.
    let (ok, out, err) = cli(
        dir,
        db,
        &[
            "webhook",
            "rotate-secret",
            "--tenant",
            "default",
            &id,
            "--overlap",
            "1h",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let new_secret = serde_json::from_str::<Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    create_users(&server.url, &token, "d", 1);
    rx.wait_for(Duration::from_secs(10), "event 21", |g| {
        g.iter().any(|r| r.sequence() == 21)
    });
    let r21 = rx
        .received()
        .into_iter()
        .find(|r| r.sequence() == 21)
        .unwrap();
    assert_eq!(valid_signatures(&r21, &new_secret), 1);
    assert_eq!(valid_signatures(&r21, &secret), 1);

    // Replay from 18: 18..21 again, in order, same ids.
    let before = rx.received().len();
    let (ok, _, err) = cli(
        dir,
        db,
        &[
            "webhook", "replay", "--tenant", "default", &id, "--from", "18",
        ],
    );
    assert!(ok, "{err}");
    rx.wait_for(Duration::from_secs(10), "the replay", |g| {
        g.len() >= before + 4
    });
    let again: Vec<i64> = rx.received()[before..]
        .iter()
        .map(Received::sequence)
        .collect();
    assert_eq!(again, [18, 19, 20, 21]);
    let (ok, _, err) = cli(
        dir,
        db,
        &[
            "webhook", "replay", "--tenant", "default", &id, "--from", "99",
        ],
    );
    assert!(!ok && err.contains("between 1 and 22"), "{err}");

    // A type filter: only groups for this one.
    let rx2 = Receiver::start();
    let (id2, _) = add_endpoint(dir, db, &rx2.url, "group.*");
    create_users(&server.url, &token, "e", 2);
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("{}/Groups", server.url))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(json!({"displayName": "Ops"}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    rx2.wait_for(Duration::from_secs(10), "the group event", |g| {
        !g.is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    let g2 = rx2.received();
    assert_eq!(g2.len(), 1);
    assert_eq!(
        (g2[0].json["type"].as_str(), g2[0].sequence()),
        (Some("group.created"), 24)
    );
    let (ok, out, _) = cli(
        dir,
        db,
        &["webhook", "list", "--tenant", "default", "--json"],
    );
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    let ep2 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id2.as_str())
        .unwrap();
    assert_eq!(ep2["cursor"], 24);
    // Disable, delete; the CLI's errors are clear.
    let (ok, _, _) = cli(
        dir,
        db,
        &["webhook", "disable", "--tenant", "default", &id2],
    );
    assert!(ok);
    let (ok, _, _) = cli(dir, db, &["webhook", "delete", "--tenant", "default", &id2]);
    assert!(ok);
    let (ok, _, err) = cli(dir, db, &["webhook", "delete", "--tenant", "default", &id2]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = cli(
        dir,
        db,
        &[
            "webhook", "add", "--tenant", "default", "--url", "ftp://x", "--json",
        ],
    );
    assert!(!ok && err.contains("https://"), "{err}");
    let logged = server.stop();
    assert!(
        !logged.contains(&secret) && !logged.contains(&new_secret),
        "secrets are never logged"
    );
    [secret, new_secret]
}

#[test]
fn webhooks_deliver_through_faults_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = delivery_through_faults(dir.path(), None);
    // The secrets are sealed at rest (only their first characters are kept in clear).
    let db = std::fs::read(dir.path().join("data/scimd.db")).unwrap();
    let wal = std::fs::read(dir.path().join("data/scimd.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(secrets.iter().all(|s| !text.contains(&s[12..])));
    }
}

#[test]
fn webhooks_deliver_through_faults_postgres() {
    on_postgres("webhooks", |url| {
        let dir = tempfile::tempdir().unwrap();
        let _ = delivery_through_faults(dir.path(), Some(url));
    });
}

/// Failing longer than the retry window disables the endpoint, with the reason; enabling it
/// again delivers what waited at its cursor.
#[test]
fn an_endpoint_failing_past_the_window_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = FAST.to_vec();
    env.push(("SCIMD_WEBHOOK_RETRY_FOR", "2s"));
    let server = Server::start(dir.path(), None, &env);
    let token = server.secret.clone().unwrap();
    let rx = Receiver::start();
    rx.set_mode(Mode::Status(503));
    let (id, _) = add_endpoint(dir.path(), None, &rx.url, "");
    create_users(&server.url, &token, "x", 3);
    wait_until(Duration::from_secs(30), "the endpoint disabled", || {
        let (_, out, _) = cli(
            dir.path(),
            None,
            &["webhook", "list", "--tenant", "default"],
        );
        out.contains("disabled: failing since")
    });
    let (_, out, _) = cli(
        dir.path(),
        None,
        &["webhook", "list", "--tenant", "default"],
    );
    assert!(out.contains("answered 503"), "{out}");
    rx.set_mode(Mode::Accept);
    let (ok, _, _) = cli(
        dir.path(),
        None,
        &["webhook", "enable", "--tenant", "default", &id],
    );
    assert!(ok);
    rx.wait_for(Duration::from_secs(10), "the backlog", |g| g.len() >= 3);
    assert_in_order_complete(&rx.received(), 3);
    server.stop();
}

/// SIGKILL while deliveries are under way, three times: after each restart delivery resumes
/// from the checkpoint; in the end every event arrived, in order, none skipped (repeats only
/// as the same message).
fn killed_during_delivery(dir: &Path, db: Option<&str>) {
    let first = Server::start(dir, db, FAST);
    let token = first.secret.clone().unwrap();
    let rx = Receiver::start();
    add_endpoint(dir, db, &rx.url, "");
    let mut server = first;
    let mut total = 0;
    for round in 0..3 {
        // Slow answers keep deliveries in flight when the kill comes.
        rx.set_mode(Mode::Hang(Duration::from_millis(150)));
        create_users(&server.url, &token, &format!("k{round}-"), 15);
        total += 15;
        // This process is delivering (after a restart: once it has taken the lease over).
        let seen = rx.received().len();
        rx.wait_for(Duration::from_secs(20), "this process delivering", |g| {
            g.len() >= seen + 2
        });
        std::thread::sleep(Duration::from_millis(70));
        server.kill();
        rx.set_mode(Mode::Accept);
        server = Server::start(dir, db, FAST);
    }
    rx.wait_for(Duration::from_secs(60), "every event", |g| {
        g.iter().any(|r| r.sequence() == total)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_in_order_complete(&rx.received(), total);
    server.stop();
}

#[test]
fn sigkill_during_delivery_loses_nothing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_during_delivery(dir.path(), None);
}

#[test]
fn sigkill_during_delivery_loses_nothing_postgres() {
    on_postgres("webhook_kill", |url| {
        let dir = tempfile::tempdir().unwrap();
        killed_during_delivery(dir.path(), Some(url));
    });
}

/// Two nodes on one PostgreSQL, changes written through both: one node at a time delivers
/// the endpoint, so the receiver sees each event once, in order; when that node is killed,
/// the other takes the endpoint over (after the lease) and nothing is skipped.
#[test]
fn two_nodes_deliver_each_event_once_in_order() {
    on_postgres("webhook_nodes", |url| {
        let dir = tempfile::tempdir().unwrap();
        let a = Server::start(dir.path(), Some(url), FAST);
        let token = a.secret.clone().unwrap();
        let b = Server::start(dir.path(), Some(url), FAST);
        let rx = Receiver::start();
        add_endpoint(dir.path(), Some(url), &rx.url, "");
        for round in 0..4 {
            let node = if round % 2 == 0 { &a.url } else { &b.url };
            create_users(node, &token, &format!("n{round}-"), 10);
        }
        rx.wait_for(Duration::from_secs(30), "40 deliveries", |g| {
            g.iter().any(|r| r.sequence() == 40)
        });
        std::thread::sleep(Duration::from_millis(500));
        let got = rx.received();
        assert_in_order_complete(&got, 40);
        assert_eq!(got.len(), 40, "no repeats without a crash");
        // Kill whichever node is delivering, mid-stream: the other carries on.
        rx.set_mode(Mode::Hang(Duration::from_millis(100)));
        create_users(&b.url, &token, "late-", 10);
        rx.wait_for(Duration::from_secs(10), "deliveries resuming", |g| {
            g.len() >= 42
        });
        a.kill();
        rx.set_mode(Mode::Accept);
        create_users(&b.url, &token, "after-", 5);
        rx.wait_for(Duration::from_secs(30), "every event", |g| {
            g.iter().any(|r| r.sequence() == 55)
        });
        assert_in_order_complete(&rx.received(), 55);
        b.stop();
    });
}
