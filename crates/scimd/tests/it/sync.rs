//! `scimd sync` as an admin uses it: the minimal job file of docs/sync.md, as written,
//! against a running scimd; plan (text and JSON), run, a no-change run, provision one user,
//! status, log, import
//! with an inline token (sealed: not in the database file in clear), export without it, and
//! delete (the target's users stay).

use crate::support::{BIN, Server, engine_token, scimd};
use std::process::Command;

fn sync(dir: &std::path::Path, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SCIMD_DATABASE_URL")
        .env("SCIMD_OUTBOUND_ALLOW_LOOPBACK", "true")
        .env("APP_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_minimal_job_file_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, None, &[]);
    let base = server
        .url
        .trim_end_matches("/t/default/scim/v2")
        .to_string();
    assert!(scimd(d, &["tenant", "create", "app"]).0);
    let token = engine_token(d, None, "app");
    std::fs::write(
        d.join("people.csv"),
        "employee_id,userName,name.givenName,name.familyName,emails[type eq \"work\"].value,active,groups\n\
         1001,ada@example.com,Ada,Lovelace,ada@example.com,true,Engineering;Research\n",
    )
    .unwrap();
    let job = format!(
        "name = \"hr-to-app\"\n\n[source]\nkind = \"csv\"\npath = \"people.csv\"      # relative to the job file\n\
         id = \"employee_id\"       # the column with the stable source id\ngroups = \"groups\"        # optional\n\n\
         [target]\nurl = \"{base}/t/app/scim/v2\"\ntoken_env = \"APP_TOKEN\"\n"
    );
    std::fs::write(d.join("job.toml"), &job).unwrap();

    let (ok, out, err) = sync(d, &token, &["sync", "test", "job.toml"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("all checks passed"), "{out}");
    let (ok, out, err) = sync(d, &token, &["sync", "plan", "job.toml"]);
    assert!(ok, "{err}");
    assert!(out.contains("totals: Create 3"), "{out}");
    let (ok, out, _) = sync(d, &token, &["--json", "sync", "plan", "job.toml"]);
    assert!(ok);
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["actions"].as_array().unwrap().len(), 3);
    assert_eq!(plan["actions"][0]["changes"][0]["path"], "active");

    let (ok, out, err) = sync(d, &token, &["--json", "sync", "run", "job.toml"]);
    assert!(ok, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["counts"]["actions"]["Create"], 3);
    let (ok, out, _) = sync(d, &token, &["--json", "sync", "run", "hr-to-app"]);
    assert!(ok, "a stored job runs by name once run from its file");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["counts"]["requests"], 0, "{run}");

    // Provision one new user now, with the steps printed; a user already done, and one
    // the source does not have, say so.
    let mut people = std::fs::read_to_string(d.join("people.csv")).unwrap();
    people.push_str("1002,alan@example.com,Alan,Turing,alan@example.com,true,Engineering\n");
    std::fs::write(d.join("people.csv"), people).unwrap();
    let (ok, out, err) = sync(
        d,
        &token,
        &["sync", "provision", "hr-to-app", "--user", "1002"],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("Create User 'alan@example.com': Success"),
        "{out}"
    );
    for step in ["import", "scoping", "matching", "export"] {
        assert!(out.contains(&format!("  {step}")), "{step}: {out}");
    }
    assert!(
        out.contains("userName: (none) → \"alan@example.com\""),
        "{out}"
    );
    let (ok, out, err) = sync(
        d,
        &token,
        &["sync", "provision", "hr-to-app", "--user", "1001"],
    );
    assert!(ok && out.contains("already up to date"), "{out}{err}");
    let (ok, _, err) = sync(
        d,
        &token,
        &["sync", "provision", "hr-to-app", "--user", "9999"],
    );
    assert!(!ok && err.contains("no user '9999' in the source"), "{err}");

    let (ok, out, _) = sync(d, &token, &["sync", "status", "hr-to-app"]);
    assert!(ok && out.contains("User active: 2"), "{out}");
    let (ok, out, _) = sync(d, &token, &["sync", "log", "hr-to-app", "--format", "csv"]);
    assert!(ok && out.lines().count() == 5, "{out}");

    // An inline token is sealed at import and never exported.
    let inline = job.replace("token_env = \"APP_TOKEN\"", &format!("token = \"{token}\""));
    std::fs::write(d.join("inline.toml"), inline).unwrap();
    let (ok, _, err) = scimd(d, &["sync", "job", "import", "inline.toml"]);
    assert!(ok, "{err}");
    // `serve` made the key when it started, so a job imported later can be opened by it.
    assert!(d.join("data/sync.key").exists(), "{err}");
    let (ok, out, _) = scimd(d, &["sync", "job", "export", "hr-to-app"]);
    assert!(
        ok && !out.contains(&token) && out.contains("people.csv"),
        "{out}"
    );
    let db = std::fs::read(d.join("data/scimd.db")).unwrap();
    let wal = std::fs::read(d.join("data/scimd.db-wal")).unwrap_or_default();
    let secret = token.as_bytes();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret)
            && !wal.windows(secret.len()).any(|w| w == secret),
        "the target token is stored in clear"
    );
    // The sealed token works without the variable.
    let (ok, out, err) = scimd(d, &["sync", "test", "hr-to-app"]);
    assert!(ok, "{out}{err}");

    let (ok, _, err) = scimd(d, &["sync", "job", "delete", "hr-to-app"]);
    assert!(!ok && err.contains("--yes"));
    let (ok, out, _) = scimd(d, &["sync", "job", "delete", "hr-to-app", "--yes"]);
    assert!(ok && out.contains("stay on the target"), "{out}");
    let users = reqwest::blocking::Client::new()
        .get(format!("{base}/t/app/scim/v2/Users"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap();
    assert_eq!(users["totalResults"], 2);
    server.stop();
}
