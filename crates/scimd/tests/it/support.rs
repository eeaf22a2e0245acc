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
