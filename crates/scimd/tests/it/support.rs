//! The scimd binary under test, through the shared test kit.

pub use scim_testkit::process::{Server as Process, psql};

/// This test build's scimd.
pub const BIN: &str = env!("CARGO_BIN_EXE_scimd");

/// Runs a CLI command in `dir`; returns (success, stdout, stderr).
pub fn scimd(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    scim_testkit::process::scimd(BIN, dir, args)
}

/// `scimd serve` in `dir`.
pub struct Server;

impl Server {
    pub fn start(
        dir: &std::path::Path,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> Process {
        Process::start(BIN, dir, database_url, env)
    }
}

/// Runs `f` with the URL of a new PostgreSQL database, dropped afterwards; not at all where
/// no PostgreSQL runs (and none is required).
pub fn on_postgres(name: &str, f: impl FnOnce(&str)) {
    if !scim_testkit::pg::available() {
        return;
    }
    let db = format!("scimd_{name}_{}", std::process::id());
    psql(&format!("CREATE DATABASE {db}"));
    f(&format!("postgres://postgres@127.0.0.1:5432/{db}"));
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

/// `scimd token create` for an engine (users and groups, read and write) in `tenant`,
/// optionally on a PostgreSQL database; the secret it printed.
pub fn engine_token(dir: &std::path::Path, database_url: Option<&str>, tenant: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "token",
            "create",
            "--tenant",
            tenant,
            "--name",
            "engine",
            "--scope",
            "users:rw",
            "--scope",
            "groups:rw",
        ])
        .current_dir(dir)
        .env_remove("SCIMD_DATABASE_URL")
        .envs(database_url.map(|u| ("SCIMD_DATABASE_URL", u)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("scimd_"))
        .unwrap()
        .to_string()
}

/// A count of `sync status --json`'s ledger: rows of `kind` in `state`.
pub fn ledger_count(status: &serde_json::Value, kind: &str, state: &str) -> u64 {
    status["ledger"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["kind"] == kind && c["state"] == state)
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0)
}
