//! `scimd health` (the container image's HEALTHCHECK) and `scimd generate man` (the Debian
//! package's manual page), as the packaging uses them.

use super::support::{BIN, Server};
use std::process::Command;

fn health(dir: &std::path::Path, listen: &str) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("health")
        .current_dir(dir)
        .env("SCIMD_LISTEN", listen)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn health_asks_readyz_where_serve_listens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let port = server
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    // As in the image: the server on every address, the check on loopback.
    let (ok, out, err) = health(dir.path(), &format!("0.0.0.0:{port}"));
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("ready (http://127.0.0.1:{port}/readyz)")
    );
    server.stop();
    let (ok, _, err) = health(dir.path(), &format!("127.0.0.1:{port}"));
    assert!(!ok, "a stopped server is not healthy");
    assert!(err.contains("/readyz: no answer"), "{err}");
}

#[test]
fn generate_man_prints_the_manual_page() {
    let out = Command::new(BIN)
        .args(["generate", "man"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH scimd 1"), "{page}");
    for command in ["serve", "health", "sync"] {
        assert!(page.contains(command), "{command} missing from the page");
    }
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&help.stdout).contains("generate"),
        "generate is not in --help"
    );
}
