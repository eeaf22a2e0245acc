//! The engine running unattended inside `scimd serve` (issue 13): a scimd-tenant source
//! provisioned into another tenant by the scheduler alone — the initial cycle once the job
//! is on, a change reaching the target within seconds through the debounce (the interval is
//! an hour), nothing while paused, the change after resume; and on PostgreSQL, a node killed
//! mid-cycle whose job another node takes over once the lease lapses, ending with one
//! target user per source user.

use crate::support::{BIN, Process, Server, engine_token, ledger_count, on_postgres};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

fn cli(dir: &std::path::Path, db: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SCIMD_DATABASE_URL")
        .env("SCIMD_OUTBOUND_ALLOW_LOOPBACK", "true")
        .envs(db.map(|u| ("SCIMD_DATABASE_URL", u)))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn base(server: &Process) -> String {
    server
        .url
        .trim_end_matches("/t/default/scim/v2")
        .to_string()
}

async fn post_user(http: &reqwest::Client, url: &str, token: &str, name: &str) {
    let r = http
        .post(format!("{url}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(json!({"userName": name, "name": {"givenName": "G", "familyName": "F"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn has_user(http: &reqwest::Client, url: &str, token: &str, name: &str) -> bool {
    let v: Value = http
        .get(format!("{url}/Users?filter=userName%20eq%20%22{name}%22"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["totalResults"] == 1
}

async fn wait_user(http: &reqwest::Client, url: &str, token: &str, name: &str, secs: u64) -> f64 {
    let started = Instant::now();
    while !has_user(http, url, token, name).await {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{name} did not reach the target in {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed().as_secs_f64()
}

#[test]
fn serve_runs_jobs_on_changes_and_honours_pause() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, None, &[("SCIMD_SYNC_TICK_SECS", "1")]);
    let root = base(&server);
    assert!(cli(d, None, &["tenant", "create", "hub"]).0);
    assert!(cli(d, None, &["tenant", "create", "app"]).0);
    let hub = engine_token(d, None, "hub");
    let app = engine_token(d, None, "app");
    let (hub_url, app_url) = (
        format!("{root}/t/hub/scim/v2"),
        format!("{root}/t/app/scim/v2"),
    );
    std::fs::write(
        d.join("job.toml"),
        format!(
            "name = \"hub-to-app\"\n\n[source]\nkind = \"tenant\"\ntenant = \"hub\"\n\n\
             [target]\nurl = \"{app_url}\"\ntoken = \"{app}\"\nrate_limit = 0\n\n\
             [schedule]\ninterval = \"1h\"\ndebounce = \"1s\"\n"
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    rt.block_on(post_user(&http, &hub_url, &hub, "first@example.com"));
    let (ok, _, err) = cli(d, None, &["sync", "job", "import", "job.toml"]);
    assert!(ok, "{err}");
    // Imported jobs are off until turned on; then the scheduler runs the initial cycle.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!rt.block_on(has_user(&http, &app_url, &app, "first@example.com")));
    assert!(cli(d, None, &["sync", "job", "enable", "hub-to-app"]).0);
    let initial = rt.block_on(wait_user(&http, &app_url, &app, "first@example.com", 30));

    // A change at the source: a cycle starts after the debounce, not after the hour.
    rt.block_on(post_user(&http, &hub_url, &hub, "second@example.com"));
    let change = rt.block_on(wait_user(&http, &app_url, &app, "second@example.com", 30));

    // Paused: nothing moves; resumed: the change arrives.
    assert!(cli(d, None, &["sync", "pause", "hub-to-app"]).0);
    rt.block_on(post_user(&http, &hub_url, &hub, "third@example.com"));
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !rt.block_on(has_user(&http, &app_url, &app, "third@example.com")),
        "a paused job ran"
    );
    let (_, status, _) = cli(d, None, &["sync", "status", "hub-to-app"]);
    assert!(status.contains("paused"), "{status}");
    assert!(cli(d, None, &["sync", "resume", "hub-to-app"]).0);
    let resumed = rt.block_on(wait_user(&http, &app_url, &app, "third@example.com", 30));
    println!(
        "serve scheduler: initial cycle after {initial:.1} s, a change after {change:.1} s (debounce 1 s, tick 1 s), after resume {resumed:.1} s"
    );
    server.stop();
}

/// How many users the tenant has (totalResults of an empty page).
async fn count(http: &reqwest::Client, url: &str, token: &str) -> u64 {
    let v: Value = http
        .get(format!("{url}/Users?count=0"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["totalResults"].as_u64().unwrap_or(0)
}

#[test]
fn a_dead_nodes_job_is_taken_over() {
    on_postgres("takeover", takeover);
}

fn takeover(db_url: &str) {
    let db_url = db_url.to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [
        ("SCIMD_SYNC_TICK_SECS", "1"),
        ("SCIMD_SYNC_LEASE_SECS", "3"),
    ];
    // T serves the target tenant and stays up (its scheduler off); A runs the job and dies.
    let t = Server::start(d, Some(&db_url), &[("SCIMD_SYNC_SCHEDULER", "off")]);
    let a = Server::start(d, Some(&db_url), &env);
    let root = base(&t);
    assert!(cli(d, Some(&db_url), &["tenant", "create", "app"]).0);
    let app = engine_token(d, Some(&db_url), "app");
    let app_url = format!("{root}/t/app/scim/v2");
    const USERS: u64 = 6_000;
    let mut csv = String::from("employee_id,userName,name.givenName,name.familyName\n");
    for i in 0..USERS {
        csv.push_str(&format!("{i},u{i:05}@example.com,U,N{i}\n"));
    }
    std::fs::write(d.join("people.csv"), csv).unwrap();
    std::fs::write(
        d.join("job.toml"),
        format!(
            "name = \"takeover\"\n\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\n\n\
             [target]\nurl = \"{app_url}\"\ntoken = \"{app}\"\nrate_limit = 400\n"
        ),
    )
    .unwrap();
    assert!(cli(d, Some(&db_url), &["sync", "job", "import", "job.toml"]).0);
    assert!(cli(d, Some(&db_url), &["sync", "job", "enable", "takeover"]).0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    // Node A starts the cycle (paced at 400 requests/s, so it takes ~15 s); kill it part way.
    let started = Instant::now();
    while rt.block_on(count(&http, &app_url, &app)) < 500 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node A never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    a.kill();
    let at_kill = rt.block_on(count(&http, &app_url, &app));
    assert!(at_kill < USERS, "the cycle ended before the kill");
    // Node B and node C compete for the lease; one of them takes the job over.
    let b = Server::start(d, Some(&db_url), &env);
    let c = Server::start(d, Some(&db_url), &env);
    let killed = Instant::now();
    loop {
        let (_, out, _) = cli(d, Some(&db_url), &["--json", "sync", "status", "takeover"]);
        let s: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        // The first completed cycle has done everything: a node that lost the lease part
        // way is fenced out of the ledger, and the status is one read snapshot (it once read
        // the ledger before the cycle's last outcome batch and the cycle record after it,
        // and showed a completed cycle with 200 rows still `creating`).
        if s["last_cycle"]["status"] == "completed" {
            assert_eq!(ledger_count(&s, "User", "active"), USERS, "{s}");
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "no node took the job over: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = killed.elapsed();
    assert_eq!(
        rt.block_on(count(&http, &app_url, &app)),
        USERS,
        "duplicates or losses"
    );
    println!(
        "takeover: node A killed with {at_kill}/{USERS} users sent; another node finished the cycle {:.1} s later (lease 3 s)",
        took.as_secs_f64()
    );
    b.stop();
    c.stop();
    t.stop();
}
