//! Resumable cycles (issue 13): `scimd sync run` of a 20,000-user initial cycle is killed
//! with SIGKILL several times; after the runs that follow, the target has exactly one user
//! per source row, the ledger links each to its own target user, and one more cycle has
//! nothing to do. On SQLite and on PostgreSQL.

use crate::support::{BIN, Server, ledger_count, on_postgres};
use serde_json::Value;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USERS: usize = 20_000;

fn sync_run(dir: &std::path::Path, db: Option<&str>, token: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--json", "sync", "run", "job.toml"])
        .current_dir(dir)
        .env_remove("SCIMD_DATABASE_URL")
        .env("SCIMD_OUTBOUND_ALLOW_LOOPBACK", "true")
        .env("APP_TOKEN", token)
        // A killed run's lease expires after 3 s instead of a minute.
        .env("SCIMD_SYNC_LEASE_SECS", "3");
    if let Some(u) = db {
        c.env("SCIMD_DATABASE_URL", u);
    }
    c
}

fn resume_after_kills(db: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, db, &[("SCIMD_SYNC_SCHEDULER", "off")]);
    let token = server.secret.clone().unwrap();
    let mut csv = String::from("employee_id,userName,name.givenName,name.familyName,groups\n");
    for i in 0..USERS {
        csv.push_str(&format!(
            "{i},user{i:05}@example.com,User,Number{i},dept-{}\n",
            i % 20
        ));
    }
    std::fs::write(d.join("people.csv"), csv).unwrap();
    std::fs::write(
        d.join("job.toml"),
        format!(
            "name = \"resume\"\n\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\ngroups = \"groups\"\n\n\
             [target]\nurl = \"{}\"\ntoken_env = \"APP_TOKEN\"\nrate_limit = 0\nmax_in_flight = 16\n",
            server.url
        ),
    )
    .unwrap();

    // Killed at a different point of the cycle each time, judged by what the target holds
    // rather than by the clock (a fast machine finished the whole cycle between two timed
    // kills): early in the creates, midway, late, and once the groups are being written if
    // the run gets there. Each run has less left to do than the last.
    let started = Instant::now();
    let http = reqwest::blocking::Client::new();
    let total = |resource: &str| -> u64 {
        let v: Value = http
            .get(format!("{}/{resource}?count=0", server.url))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.json())
            .unwrap();
        v["totalResults"].as_u64().unwrap()
    };
    let mut kills = 0;
    let mut finished = None;
    let points: [(&str, u64); 4] = [
        ("Users", 1),
        ("Users", 6_000),
        ("Users", 14_000),
        ("Groups", 1),
    ];
    for (resource, reached) in points {
        let mut child = sync_run(d, db, &token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() && total(resource) < reached {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_some() {
            finished = Some(child.wait_with_output().unwrap());
            break; // finished before the kill: nothing left to interrupt
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // The dead run's lease must lapse before the next run may take the job.
        std::thread::sleep(Duration::from_millis(3_200));
    }
    assert!(
        kills >= 3,
        "the cycle ended before it was killed three times"
    );
    let out = match finished {
        Some(out) => out,
        None => sync_run(d, db, &token).output().unwrap(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(
        report["mode"], "initial",
        "a killed initial cycle resumes as initial"
    );
    let elapsed = started.elapsed();

    // Exactly one target user per source row.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let users: Vec<Value> = rt.block_on(async {
        let mut all = Vec::new();
        loop {
            let v: Value = client
                .get(format!(
                    "{}/Users?startIndex={}&count=1000&attributes=userName,externalId",
                    server.url,
                    all.len() + 1
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let page = v["Resources"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    });
    let names: HashSet<&str> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), USERS, "duplicates or losses");
    assert_eq!(names.len(), USERS, "a userName twice");

    // The ledger: every source user active and linked to a distinct target user, and a
    // further cycle finds nothing to do (no intent left, nothing re-sent).
    let status = Command::new(BIN)
        .args(["--json", "sync", "status", "resume"])
        .current_dir(d)
        .env_remove("SCIMD_DATABASE_URL")
        .env("SCIMD_OUTBOUND_ALLOW_LOOPBACK", "true")
        .envs(db.map(|u| ("SCIMD_DATABASE_URL", u)))
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        ledger_count(&status, "User", "active"),
        USERS as u64,
        "{status}"
    );
    assert!(status["ledger"].get("User creating").is_none(), "{status}");
    assert_eq!(status["escrowed"], 0, "{status}");
    assert!(status["quarantine"].is_null(), "{status}");
    let out = sync_run(d, db, &token).output().unwrap();
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["counts"]["requests"], 0, "{again}");
    println!(
        "resume ({}): {USERS} users, {kills} SIGKILLs, converged in {:.1} s with 0 duplicates",
        if db.is_some() { "postgres" } else { "sqlite" },
        elapsed.as_secs_f64()
    );
    server.stop();
}

#[test]
fn a_killed_initial_cycle_resumes_sqlite() {
    resume_after_kills(None);
}

#[test]
fn a_killed_initial_cycle_resumes_postgres() {
    on_postgres("resume", |url| resume_after_kills(Some(url)));
}
