//! The examples in `examples/` against a live scimd: the events-API mirror ends equal to the
//! SCIM API's view, and the webhook receiver (an independent implementation of the Standard
//! Webhooks signature) accepts every delivery and refuses a forged one.

use crate::support::{Server, scimd};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn scim(
    c: &reqwest::blocking::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut r = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let r = r.send().unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.text()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// Users, groups and memberships made, changed and deleted through SCIM.
fn make_changes(url: &str, token: &str) {
    let c = reqwest::blocking::Client::new();
    use reqwest::Method;
    let mut ids = Vec::new();
    for i in 0..12 {
        let u = scim(
            &c,
            Method::POST,
            &format!("{url}/Users"),
            token,
            Some(json!({"userName": format!("m{i}@example.com")})),
        );
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let g = scim(
        &c,
        Method::POST,
        &format!("{url}/Groups"),
        token,
        Some(json!({"displayName": "Eng", "members": [{"value": ids[0]}, {"value": ids[1]}]})),
    );
    let gid = g["id"].as_str().unwrap().to_string();
    let g2 = scim(
        &c,
        Method::POST,
        &format!("{url}/Groups"),
        token,
        Some(json!({"displayName": "Gone"})),
    );
    let patch = |id: &str, kind: &str, ops: Value| {
        scim(
            &c,
            Method::PATCH,
            &format!("{url}/{kind}/{id}"),
            token,
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
            ),
        );
    };
    patch(
        &gid,
        "Groups",
        json!([{"op": "add", "path": "members", "value": [{"value": ids[2]}, {"value": ids[3]}]}]),
    );
    patch(
        &gid,
        "Groups",
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]),
    );
    patch(
        &gid,
        "Groups",
        json!([{"op": "replace", "path": "displayName", "value": "Engineering"}]),
    );
    patch(
        &ids[4],
        "Users",
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    patch(
        &ids[5],
        "Users",
        json!([{"op": "replace", "path": "userName", "value": "renamed@example.com"}]),
    );
    scim(
        &c,
        Method::DELETE,
        &format!("{url}/Users/{}", ids[1]),
        token,
        None,
    );
    scim(
        &c,
        Method::DELETE,
        &format!("{url}/Groups/{}", g2["id"].as_str().unwrap()),
        token,
        None,
    );
}

/// The SCIM API's view in the mirror's dump shape.
fn scim_view(url: &str, token: &str) -> Value {
    let c = reqwest::blocking::Client::new();
    let users = scim(
        &c,
        reqwest::Method::GET,
        &format!("{url}/Users?count=1000"),
        token,
        None,
    );
    let groups = scim(
        &c,
        reqwest::Method::GET,
        &format!("{url}/Groups?count=1000"),
        token,
        None,
    );
    let mut u = BTreeMap::new();
    for r in users["Resources"].as_array().unwrap() {
        u.insert(
            r["id"].as_str().unwrap().to_string(),
            json!({"userName": r["userName"], "active": r["active"].as_bool().unwrap_or(true)}),
        );
    }
    let mut g = BTreeMap::new();
    let mut m = BTreeSet::new();
    for r in groups["Resources"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap().to_string();
        g.insert(id.clone(), r["displayName"].clone());
        for mem in r["members"].as_array().into_iter().flatten() {
            m.insert(vec![id.clone(), mem["value"].as_str().unwrap().to_string()]);
        }
    }
    json!({"users": u, "groups": g, "members": m})
}

#[test]
fn the_events_mirror_and_the_webhook_receiver_work_against_a_live_scimd() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let token = server.secret.clone().unwrap();
    let public = server
        .url
        .trim_end_matches("/t/default/scim/v2")
        .to_string();
    let (ok, out, err) = scimd(
        dir.path(),
        &[
            "token", "create", "--tenant", "default", "--name", "app", "--scope", "events:r",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let events_token = serde_json::from_str::<Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();

    // The receiver's endpoint, then the receiver itself (scimd retries until it is up).
    let port = scim_testkit::process::free_port();
    let (ok, out, err) = scimd(
        dir.path(),
        &[
            "webhook",
            "add",
            "--tenant",
            "default",
            "--url",
            &format!("http://127.0.0.1:{port}/hook"),
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let secret = serde_json::from_str::<Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let received = dir.path().join("received.jsonl");
    let mut receiver = Command::new("python3")
        .args([
            &example("webhook_receiver.py"),
            "--port",
            &port.to_string(),
            "--out",
            received.to_str().unwrap(),
        ])
        .env("WEBHOOK_SECRET", &secret)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(receiver.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("listening"), "{line}");
    }

    make_changes(&server.url, &token);
    let (ok, out, _) = scimd(
        dir.path(),
        &["events", "--tenant", "default", "--after", "latest"],
    );
    assert!(ok && out.is_empty());
    let (ok, out, err) = scimd(dir.path(), &["events", "--tenant", "default"]);
    assert!(ok, "{err}");
    let head = out.lines().count();
    assert!(head >= 20, "{out}");

    // The mirror, run twice (the second run resumes from its cursor and adds nothing).
    let db = dir.path().join("mirror.db");
    let mirror = |mode: &str, token: &str| {
        Command::new("python3")
            .args([
                &example("events_mirror.py"),
                "--url",
                &public,
                "--tenant",
                "default",
                "--db",
                db.to_str().unwrap(),
                mode,
            ])
            .env("SCIMD_EVENTS_TOKEN", token)
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = mirror("--once", &events_token);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dump = mirror("--dump", &events_token);
    let mut copy: Value = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(copy["after"], head as i64);
    copy.as_object_mut().unwrap().remove("after");
    assert_eq!(copy, scim_view(&server.url, &token));
    // With the SCIM token instead: refused, clearly.
    let st = mirror("--once", &token);
    assert!(!st.status.success() && String::from_utf8_lossy(&st.stderr).contains("403"));

    // The receiver verified and kept every event, once each, in sequence order.
    let start = std::time::Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&received).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= head || start.elapsed() > Duration::from_secs(30) {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seqs: Vec<i64> = lines
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=head as i64).collect::<Vec<_>>());
    // A forged delivery is refused.
    let forged = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/hook"))
        .header("webhook-id", "evt_forged")
        .header(
            "webhook-timestamp",
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs())
            .to_string(),
        )
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(forged.status(), 401);
    receiver.kill().unwrap();
    receiver.wait().unwrap();
    server.stop();
}
