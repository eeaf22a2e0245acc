//! `scimd sync` as a new user meets it (issue 30, defect 5): docs/sync.md's quick start run
//! line by line as written; every command taking a job file or a stored name; which
//! database keeps a job's state; the check that names a missing tenant; a reauthorized token
//! winning over the file's; refused credentials failing the run wherever they come; the
//! documented log columns; JSON where `--json` is asked; a held lease saying until when.

use crate::support::{BIN, Server, scimd};
use std::path::Path;
use std::process::Command;

/// Runs `scimd` in `dir` with `APP_TOKEN` set, allowed to connect to the test servers on
/// loopback; (success, stdout, stderr).
fn run(dir: &Path, token: &str, args: &[&str]) -> (bool, String, String) {
    run_with(
        dir,
        token,
        args,
        &[("SCIMD_OUTBOUND_ALLOW_LOOPBACK", "true")],
    )
}

/// [`run`] with the environment given instead.
fn run_with(
    dir: &Path,
    token: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SCIMD_DATABASE_URL")
        .env_remove("SCIMD_OUTBOUND_ALLOW_LOOPBACK")
        .env("APP_TOKEN", token);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The fenced blocks of docs/sync.md's section 1, in order.
fn quick_start() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sync.md"))
        .unwrap();
    let section = doc
        .split("## 1. Quick start")
        .nth(1)
        .unwrap()
        .split("\n## 2.")
        .next()
        .unwrap();
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.split_once('\n').map_or("", |(_, rest)| rest).to_string())
        .collect()
}

/// The server's root (`http://127.0.0.1:port`).
fn root(server: &crate::support::Process) -> String {
    server
        .url
        .trim_end_matches("/t/default/scim/v2")
        .to_string()
}

/// The secret a `token create` printed.
fn secret(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.starts_with("scimd_"))
        .unwrap()
        .to_string()
}

#[test]
fn the_quick_start_works_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, None, &[]);
    let blocks = quick_start();
    let job = blocks[0].replace("http://127.0.0.1:8080", &root(&server));
    std::fs::write(d.join("job.toml"), job).unwrap();
    std::fs::write(d.join("people.csv"), &blocks[1]).unwrap();
    let mut token = String::new();
    let mut ran = 0;
    for line in blocks[2].lines() {
        let command = line.split('#').next().unwrap().trim();
        if command.starts_with("export APP_TOKEN") {
            assert!(!token.is_empty(), "a token is made before it is exported");
            continue;
        }
        let Some(args) = command.strip_prefix("scimd ") else {
            continue;
        };
        let args: Vec<&str> = args.split_whitespace().collect();
        // As a user whose scimd listens elsewhere than 127.0.0.1:8080 runs it: with the
        // listen address set, so the engine knows the target is this scimd (loopback is
        // otherwise refused: docs/security.md).
        let (ok, out, err) = run_with(d, &token, &args, &[("SCIMD_LISTEN", &server.listen)]);
        assert!(ok, "`{command}` as written failed: {out}{err}");
        ran += 1;
        if args[..2] == ["token", "create"] {
            token = secret(&out);
        }
        if args[..2] == ["sync", "status"] {
            assert!(
                out.contains("scimd sync job enable hr-to-app"),
                "a job that is off says how to turn it on: {out}"
            );
        }
        if args[..2] == ["sync", "run"] {
            assert!(err.contains("has no state in"), "{err}");
            assert!(out.contains("completed"), "{out}");
        }
    }
    assert_eq!(ran, 8, "every documented command ran");
    let (_, out, _) = run(d, &token, &["sync", "status", "hr-to-app"]);
    assert!(out.contains("; on") && out.contains("next cycle:"), "{out}");
    server.stop();
}

/// A job file and a directory with a running scimd and an engine token for tenant `app`.
struct Setup {
    dir: tempfile::TempDir,
    server: crate::support::Process,
    token: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, None, &[]);
    assert!(scimd(d, &["tenant", "create", "app"]).0);
    let token = crate::support::engine_token(d, None, "app");
    std::fs::write(
        d.join("people.csv"),
        "employee_id,userName,active\n1,ada@example.com,true\n2,alan@example.com,true\n",
    )
    .unwrap();
    let job = format!(
        "name = \"hr-to-app\"\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\n\
         [target]\nurl = \"{}/t/app/scim/v2\"\ntoken_env = \"APP_TOKEN\"\nrate_limit = 0\n",
        root(&server)
    );
    std::fs::write(d.join("job.toml"), job).unwrap();
    Setup { dir, server, token }
}

#[test]
fn every_command_takes_a_job_file_or_a_stored_name() {
    let s = setup();
    let d = s.dir.path();
    let (ok, _, err) = run(d, &s.token, &["sync", "run", "job.toml"]);
    assert!(ok, "{err}");
    for args in [
        vec!["sync", "status", "job.toml"],
        vec!["sync", "pause", "job.toml"],
        vec!["sync", "resume", "job.toml"],
        vec!["sync", "restart", "job.toml", "--scope", "escrows"],
        vec!["sync", "approve-deletes", "job.toml"],
        vec!["sync", "reject-deletes", "job.toml"],
        vec!["sync", "apply-timers", "job.toml"],
        vec!["sync", "cancel-timers", "job.toml"],
        vec!["sync", "job", "export", "job.toml"],
        vec!["sync", "job", "enable", "job.toml"],
        vec!["sync", "job", "disable", "job.toml"],
    ] {
        let (ok, out, err) = run(d, &s.token, &args);
        assert!(ok, "{args:?}: {out}{err}");
    }
    let (ok, out, _) = run(d, &s.token, &["sync", "log", "job.toml", "--format", "csv"]);
    assert!(ok);
    let header = out.lines().next().unwrap();
    for column in ["job", "cycle_id", "action", "status", "steps", "changes"] {
        assert!(header.split(',').any(|c| c == column), "{column}: {header}");
    }
    assert_eq!(out.lines().count(), 3, "{out}");
    // A job nobody stored is an error, not an empty answer.
    for args in [
        vec!["sync", "log", "nobody"],
        vec!["sync", "approve-deletes", "nobody"],
        vec!["sync", "status", "nobody"],
    ] {
        let (ok, _, err) = run(d, &s.token, &args);
        assert!(
            !ok && err.contains("no stored job named 'nobody'"),
            "{args:?}: {err}"
        );
    }
    // One object's timer that does not exist: said, not a silent 0.
    let (ok, _, err) = run(
        d,
        &s.token,
        &["sync", "cancel-timers", "job.toml", "--user", "99"],
    );
    assert!(!ok && err.contains("no scheduled action"), "{err}");
    let (ok, _, err) = run(
        d,
        &s.token,
        &[
            "sync",
            "apply-timers",
            "job.toml",
            "--user",
            "1",
            "--group",
            "g",
        ],
    );
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let (ok, _, err) = run(
        d,
        &s.token,
        &["sync", "log", "hr-to-app", "--action", "Created"],
    );
    assert!(!ok && err.contains("use one of"), "{err}");
    s.server.stop();
}

#[test]
fn the_database_that_keeps_a_job_is_named_and_a_second_one_is_warned_of() {
    let s = setup();
    let d = s.dir.path();
    let (ok, _, err) = run(d, &s.token, &["sync", "run", "job.toml"]);
    assert!(ok && err.contains("has no state in sqlite://"), "{err}");
    // The same file run from another directory: another database, the same target.
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(
        elsewhere.path(),
        &s.token,
        &["sync", "plan", d.join("job.toml").to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("2 object(s) that match; they will be adopted")
            && err.contains("another directory"),
        "{err}"
    );
    s.server.stop();
}

#[test]
fn a_missing_tenant_is_named_in_the_check() {
    let s = setup();
    let d = s.dir.path();
    let job = std::fs::read_to_string(d.join("job.toml"))
        .unwrap()
        .replace("/t/app/", "/t/nope/");
    std::fs::write(d.join("nope.toml"), job).unwrap();
    let (ok, out, _) = run(d, &s.token, &["sync", "test", "nope.toml"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("ok   token"),
        "the token is only said to be set: {out}"
    );
    assert!(
        out.contains("FAIL discovery") && out.contains("names the right tenant"),
        "{out}"
    );
    s.server.stop();
}

#[test]
fn a_reauthorized_token_wins_over_the_one_the_file_names() {
    let s = setup();
    let d = s.dir.path();
    let (ok, _, err) = run(d, &s.token, &["sync", "run", "job.toml"]);
    assert!(ok, "{err}");
    let (ok, out, _) = scimd(d, &["token", "list", "--tenant", "app", "--json"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (ok, out, _) = scimd(d, &["token", "revoke", "--tenant", "app", &id, "--json"]);
    assert!(ok, "{out}");
    let revoked: serde_json::Value = serde_json::from_str(&out).expect("--json is JSON");
    assert_eq!(revoked["revoked"], true, "{revoked}");
    // Revoked (every node refuses it once its token cache expires): the run fails (at
    // discovery), and says so with its exit status.
    std::thread::sleep(scim_server::auth::TOKEN_CACHE_TTL + std::time::Duration::from_millis(500));
    let (ok, _, err) = run(d, &s.token, &["sync", "run", "job.toml"]);
    assert!(!ok, "{err}");
    let fresh = crate::support::engine_token(d, None, "app");
    std::fs::write(d.join("new-token"), format!("{fresh}\n")).unwrap();
    let (ok, out, err) = scimd(
        d,
        &[
            "sync",
            "reauthorize",
            "hr-to-app",
            "--token-file",
            "new-token",
        ],
    );
    assert!(ok, "{out}{err}");
    // The file still names APP_TOKEN, which holds the revoked token: the new one is used.
    std::fs::write(
        d.join("people.csv"),
        "employee_id,userName,active\n1,ada@example.com,true\n2,alan@example.com,true\n3,grace@example.com,true\n",
    )
    .unwrap();
    let (ok, out, err) = run(d, &s.token, &["sync", "run", "job.toml"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Create: 1"), "{out}");
    let (ok, help, _) = scimd(d, &["sync", "reauthorize", "--help"]);
    assert!(
        ok && help.contains("environment variable that holds the new token"),
        "{help}"
    );
    s.server.stop();
}

#[test]
fn refused_credentials_fail_the_run_and_say_why() {
    let s = setup();
    let d = s.dir.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = format!("{}/t/app/scim/v2", root(&s.server));
    // A gateway that refuses the token after a few requests: discovery and matching pass,
    // the writes are refused (401).
    let gateway = rt.block_on(scim_testkit::faults::FaultTarget::start(
        &app,
        &s.token,
        "gateway-token",
        scim_testkit::faults::Faults {
            revoke_after: Some(8),
            ..Default::default()
        },
    ));
    let job = std::fs::read_to_string(d.join("job.toml"))
        .unwrap()
        .replace(&app, &gateway.url)
        .replace("name = \"hr-to-app\"", "name = \"gated\"");
    std::fs::write(d.join("gated.toml"), job).unwrap();
    let (ok, out, err) = rt.block_on(async {
        let d = d.to_path_buf();
        tokio::task::spawn_blocking(move || {
            run(&d, "gateway-token", &["sync", "run", "gated.toml"])
        })
        .await
        .unwrap()
    });
    assert!(!ok, "a refused token fails the run: {out}{err}");
    let (ok, out, _) = run(d, "", &["sync", "status", "gated"]);
    assert!(ok);
    assert!(
        out.contains("quarantined (credentials:"),
        "the reason is shown: {out}"
    );
    let (ok, out, _) = run(d, "", &["--json", "sync", "status", "gated"]);
    assert!(ok);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["quarantine"]["reason"], "credentials", "{st}");
    s.server.stop();
}

#[test]
fn a_held_lease_says_until_when() {
    let s = setup();
    let d = s.dir.path();
    let (ok, _, err) = scimd(d, &["sync", "job", "import", "job.toml"]);
    assert!(ok, "{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let until = rt.block_on(async {
        use scim_core::LeaseStore;
        let url = format!("sqlite://{}", d.join("data/scimd.db").display());
        let store = scim_store::SqlStore::connect(&url, 1).await.unwrap();
        let now = scim_core::Timestamp::now();
        let until = now + time::Duration::minutes(10);
        assert!(
            store
                .try_lease("sync-job:hr-to-app", "node-7 run x", now, until)
                .await
                .unwrap()
        );
        store.close().await;
        until
    });
    let (ok, _, err) = run(d, &s.token, &["sync", "run", "hr-to-app"]);
    assert!(!ok);
    assert!(
        err.contains("node-7 run x holds it until") && err.contains(&until.rfc3339()[..16]),
        "{err}"
    );
    s.server.stop();
}
