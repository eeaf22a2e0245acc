//! The scimd binary as an operator uses it: CLI commands and `serve` over a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod crash;
mod examples;
mod health;
mod listener;
mod multinode;
mod security;
mod support;
mod sync;
mod sync_cli;
mod sync_resume;
mod sync_serve;
mod tenant_admins;
mod webhooks;

use std::process::Command;
use std::time::Duration;
use support::{Server, scimd};

#[test]
fn tenant_and_token_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = scimd(dir.path(), &["tenant", "create", "acme", "--json"]);
    assert!(ok, "{err}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["scim_url"], "http://127.0.0.1:8080/t/acme/scim/v2");
    assert!(
        dir.path().join("data/scimd.db").exists(),
        "SQLite file under ./data"
    );
    let (ok, out, _) = scimd(
        dir.path(),
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--name",
            "entra",
            "--scope",
            "users:rw",
            "--scope",
            "groups:r",
            "--expires-in",
            "90d",
            "--json",
        ],
    );
    assert!(ok);
    let tok: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = tok["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("scimd_"));
    assert_eq!(tok["scopes"], "users:rw groups:r");
    let (ok, out, _) = scimd(dir.path(), &["token", "list", "--tenant", "acme", "--json"]);
    assert!(ok);
    assert!(!out.contains(&secret), "secrets are never listed");
    assert!(!out.contains(&secret[6..]), "not even in part");
    let id = tok["id"].as_str().unwrap();
    let (ok, out, _) = scimd(
        dir.path(),
        &[
            "token", "rotate", "--tenant", "acme", id, "--grace", "1h", "--json",
        ],
    );
    assert!(ok, "{out}");
    let (ok, _, _) = scimd(dir.path(), &["token", "revoke", "--tenant", "acme", id]);
    assert!(ok);
    let (ok, out, _) = scimd(dir.path(), &["token", "list", "--tenant", "acme"]);
    assert!(ok && out.contains("revoked"), "{out}");
    // Errors are clear and non-zero.
    let (ok, _, err) = scimd(
        dir.path(),
        &[
            "token", "create", "--tenant", "nope", "--name", "x", "--scope", "users:rw",
        ],
    );
    assert!(!ok && err.contains("tenant 'nope' does not exist"), "{err}");
    let (ok, _, err) = scimd(
        dir.path(),
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--name",
            "x",
            "--scope",
            "users:admin",
        ],
    );
    assert!(!ok && err.contains("unknown privilege"), "{err}");
    // The provisioning log as operators read it (the failed token creations above are CLI
    // errors, not SCIM requests, so the log is empty).
    let (ok, out, err) = scimd(
        dir.path(),
        &[
            "log", "--tenant", "acme", "--format", "csv", "--since", "24h",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("time,operation,resource_type"), "{out}");
    let (ok, out, _) = scimd(
        dir.path(),
        &[
            "log",
            "--tenant",
            "acme",
            "--json",
            "--operation",
            "create-user",
        ],
    );
    assert!(ok && out.trim() == "[]", "{out}");
    let (ok, _, err) = scimd(
        dir.path(),
        &["log", "--tenant", "acme", "--operation", "explode"],
    );
    assert!(!ok && err.contains("unknown operation"), "{err}");
    let (ok, out, _) = scimd(dir.path(), &["sweep-log"]);
    assert!(
        ok && out.contains("deleted 0 events older than 30 days"),
        "{out}"
    );
    let (ok, _, err) = scimd(dir.path(), &["tenant", "delete", "acme"]);
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, _, _) = scimd(dir.path(), &["tenant", "delete", "acme", "--yes"]);
    assert!(ok);
    let (ok, out, _) = scimd(dir.path(), &["migrate"]);
    assert!(ok && out.contains("up to date"));
}

#[test]
fn config_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scimd.toml"),
        "database_url = \"sqlite://./elsewhere/db.sqlite\"\npublic_url = \"https://scim.example.com/\"\n",
    )
    .unwrap();
    let (ok, out, err) = scimd(
        dir.path(),
        &[
            "--config",
            "scimd.toml",
            "tenant",
            "create",
            "acme",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("https://scim.example.com/t/acme/scim/v2"),
        "{out}"
    );
    assert!(dir.path().join("elsewhere/db.sqlite").exists());
    // SCIMD_ variables override the file.
    let out = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["--config", "scimd.toml", "tenant", "list", "--json"])
        .current_dir(dir.path())
        .env("SCIMD_DATABASE_URL", "sqlite://./other.db")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    std::fs::write(dir.path().join("bad.toml"), "databse_url = 1\n").unwrap();
    let (ok, _, err) = scimd(dir.path(), &["--config", "bad.toml", "migrate"]);
    assert!(!ok && err.contains("invalid config file"), "{err}");
}

/// `scimd admin`: operators for the console; passwords from stdin, hashed, never printed.
#[test]
fn admin_commands() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let run_with_stdin = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimd"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("SCIMD_DATABASE_URL")
            .env_remove("SCIMD_ADMIN_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let pw = "a long enough passphrase";
    let (ok, out, err) = run_with_stdin(
        &["admin", "create", "Alice", "--password-stdin"],
        &format!("{pw}\n"),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Operator 'alice' created") && out.contains("/console/"),
        "{out}"
    );
    assert!(!out.contains(pw) && !err.contains(pw));
    let (ok, _, err) = run_with_stdin(
        &["admin", "create", "alice", "--password-stdin"],
        "another long one\n",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run_with_stdin(&["admin", "create", "bob", "--password-stdin"], "short\n");
    assert!(!ok && err.contains("12 to 1024"), "{err}");
    let (ok, out, _) = scimd(dir.path(), &["admin", "list", "--json"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!out.contains("argon2"), "hashes are not listed");
    let (ok, _, err) = run_with_stdin(
        &["admin", "reset-password", "alice", "--password-stdin"],
        "a new long passphrase\n",
    );
    assert!(ok, "{err}");
    // The database holds an Argon2id hash, not the password.
    let db = std::fs::read(dir.path().join("data/scimd.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(text.contains("$argon2id$"));
    assert!(!text.contains(pw) && !text.contains("a new long passphrase"));
    let (ok, _, _) = scimd(dir.path(), &["admin", "delete", "alice"]);
    assert!(ok);
    let (ok, _, err) = scimd(dir.path(), &["admin", "delete", "alice"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

#[test]
fn serve_bootstraps_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let printed = &server.printed;
    assert!(
        printed.contains(&format!("SCIM base URL (default): {}", server.url)),
        "{printed}"
    );
    assert!(printed.contains("scimd token create"), "{printed}");
    assert!(
        printed.contains("/console/") && printed.contains("scimd admin create"),
        "the console URL and how to get an operator: {printed}"
    );
    let secret = server
        .secret
        .clone()
        .expect("first start prints a bootstrap token");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/Users?filter=userName+eq+%22x%22", server.url))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    // SIGTERM: graceful shutdown, exit 0.
    server.stop();
    // A second start reuses the data and prints no new secret.
    let again = Server::start(dir.path(), None, &[]);
    assert!(again.secret.is_none(), "{}", again.printed);
    again.stop();
    let (ok, out, _) = scimd(dir.path(), &["tenant", "list"]);
    assert!(ok && out.starts_with("default"), "{out}");
}

/// The bootstrap secret can go to a 0600 file instead of stdout; logs can be JSON lines
/// without colour codes; CLI commands print the configured public URL.
#[test]
fn bootstrap_file_json_logs_and_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bootstrap.token");
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("SCIMD_BOOTSTRAP_TOKEN_FILE", file.to_str().unwrap()),
            ("SCIMD_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    );
    assert!(server.secret.is_none(), "not printed: {}", server.printed);
    assert!(
        server.printed.contains("bootstrap.token"),
        "{}",
        server.printed
    );
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.trim().starts_with("scimd_"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let logged = server.stop();
    assert!(!logged.contains('\u{1b}'), "no ANSI escapes: {logged}");
    for line in logged.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    let out = std::process::Command::new(support::BIN)
        .args(["tenant", "create", "pub"])
        .current_dir(dir.path())
        .env("SCIMD_PUBLIC_URL", "https://scim.example.org")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("https://scim.example.org/t/pub/scim/v2"),
        "{text}"
    );
}

/// Every bench workload against a real scimd: runs, and sees no error responses.
#[test]
fn bench_workloads_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let (url, token) = (server.url.clone(), server.secret.clone().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for workload in [
        "create-users",
        "lookup",
        "patch-users",
        "group-members",
        "list",
        "idp-cycle",
    ] {
        let cfg = scim_bench::BenchConfig {
            base_url: url.clone(),
            token: token.clone(),
            workload: workload.parse().unwrap(),
            users: 200,
            groups: 2,
            group_size: 50,
            concurrency: 4,
            duration: Duration::from_secs(2),
            requests: Some(400),
            allow_remote: false,
            progress: false,
            seed: false,
        };
        let report = rt.block_on(scim_bench::run(cfg)).unwrap();
        assert!(report.requests > 0, "{workload}");
        for k in &report.kinds {
            assert!(k.errors.is_empty(), "{workload}/{}: {:?}", k.kind, k.errors);
            assert!(
                k.p50_ms > 0.0 && k.max_ms >= k.p99_ms,
                "{workload}/{}",
                k.kind
            );
        }
    }
    // A kept dataset: the first run creates it, the second finds it (and its ids) again.
    for round in 0..2 {
        let cfg = scim_bench::BenchConfig {
            base_url: url.clone(),
            token: token.clone(),
            workload: scim_bench::Workload::PatchUsers,
            users: 1_200,
            groups: 1,
            group_size: 1,
            concurrency: 4,
            duration: Duration::from_secs(1),
            requests: Some(100),
            allow_remote: false,
            progress: false,
            seed: true,
        };
        let report = rt.block_on(scim_bench::run(cfg)).unwrap();
        assert!(
            report.kinds.iter().all(|k| k.errors.is_empty()),
            "round {round}"
        );
    }
    let rt2 = tokio::runtime::Runtime::new().unwrap();
    let total = rt2.block_on(async {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{url}/Users?count=0&filter=userName%20sw%20%22seed-%22"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["totalResults"].as_u64().unwrap()
    });
    assert_eq!(total, 1_200, "seeded once, reused once");
    // Remote targets are refused without consent.
    let cfg = scim_bench::BenchConfig {
        base_url: "https://scim.example.com/scim/v2".into(),
        token: token.clone(),
        workload: scim_bench::Workload::Lookup,
        users: 1,
        groups: 1,
        group_size: 1,
        concurrency: 1,
        duration: Duration::from_secs(1),
        requests: None,
        allow_remote: false,
        progress: false,
        seed: false,
    };
    assert!(
        rt.block_on(scim_bench::run(cfg))
            .unwrap_err()
            .to_string()
            .contains("--allow-remote")
    );
    server.stop();
}

/// Secrets never reach the logs: run scimd at debug level, use a token and send a password,
/// then search everything it printed to stderr.
#[test]
fn secrets_are_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[("RUST_LOG", "debug")]);
    let secret = server.secret.clone().unwrap();
    let password = "Pa55w0rd-never-logged-7d1c";
    let base = server.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let r = c
            .post(format!("{base}/Users"))
            .bearer_auth(&secret)
            .header("content-type", "application/scim+json")
            .body(serde_json::json!({"userName": "pw", "password": password}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body = r.text().await.unwrap();
        assert!(!body.contains(password), "the password is never returned");
        // A failing request (logged as a Failure event) and a bad token.
        c.post(format!("{base}/Users"))
            .bearer_auth(&secret)
            .header("content-type", "application/scim+json")
            .body(serde_json::json!({"userName": "pw", "password": password}).to_string())
            .send()
            .await
            .unwrap();
        c.get(format!("{base}/Users"))
            .bearer_auth("scimd_guessed-secret-value")
            .send()
            .await
            .unwrap();
    });
    let logged = server.stop();
    assert!(
        logged.contains("DEBUG") || logged.contains("INFO"),
        "the server did log: {logged}"
    );
    for needle in [
        secret.as_str(),
        &secret[6..],
        password,
        "guessed-secret-value",
    ] {
        assert!(!logged.contains(needle), "a secret reached the log");
    }
    // Nor the database: the token is stored hashed and the password not at all.
    let db = std::fs::read(dir.path().join("data/scimd.db")).unwrap();
    let wal = std::fs::read(dir.path().join("data/scimd.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&secret[6..]) && !text.contains(password),
            "a secret reached the database file"
        );
    }
}

/// SIGTERM drains: a request already in flight (its body still arriving) completes and is
/// acknowledged, then the process exits 0 and the write is there on the next start.
#[test]
fn sigterm_drains_in_flight_requests() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let token = server.secret.clone().unwrap();
    let addr = server.listen.clone();
    let body = r#"{"userName": "in-flight@example.com"}"#;
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /t/default/scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(&body.as_bytes()[10..]).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    server.stop();
    let again = Server::start(dir.path(), None, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let found: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/Users?filter=userName%20eq%20%22in-flight@example.com%22",
                again.url
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(found["totalResults"], 1);
    again.stop();
}
