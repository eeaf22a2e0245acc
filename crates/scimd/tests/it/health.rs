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
    let port = server.listen.rsplit(':').next().unwrap().to_string();
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
    // Every page, for the package: scimd(1) and one per command, none for hidden ones.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["generate", "man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "scimd.1",
        "scimd-serve.1",
        "scimd-sync.1",
        "scimd-sync-run.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
    assert!(!dir.path().join("scimd-generate.1").exists());
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&help.stdout).contains("generate"),
        "generate is not in --help"
    );
}

/// `systemctl reload scimd` sends SIGHUP whether or not scimd serves TLS itself: without TLS
/// it must change nothing (SIGHUP's default action would end the process, and systemd
/// counts that as a clean exit, so the service would stay down).
#[test]
fn sighup_without_tls_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let listen = server.listen.clone();
    // A SIGHUP at once, during the start-up, then two while serving.
    for _ in 0..3 {
        let sent = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (ok, _, err) = health(dir.path(), &listen);
        assert!(ok, "not serving after SIGHUP: {err}");
    }
    let logged = server.stop();
    assert!(logged.contains("nothing to reload"), "{logged}");
}

/// A bootstrap token file left by an earlier first start (the volume reused with a new
/// database) stops the first start before anything is stored: no token is issued that
/// nobody can read, and the old file is left as it was.
#[test]
fn an_existing_bootstrap_file_stops_the_first_start_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bootstrap.token");
    std::fs::write(&file, "scimd_an-old-secret\n").unwrap();
    let port = scim_testkit::process::free_port();
    let out = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("SCIMD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SCIMD_BOOTSTRAP_TOKEN_FILE", &file)
        .env_remove("SCIMD_DATABASE_URL")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("nothing was created"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "scimd_an-old-secret\n"
    );
    let (ok, tenants, _) = super::support::scimd(dir.path(), &["tenant", "list", "--json"]);
    assert!(ok && tenants.trim() == "[]", "{tenants}");
    // Moved away, the next start makes the tenant and writes its token.
    std::fs::remove_file(&file).unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &[("SCIMD_BOOTSTRAP_TOKEN_FILE", file.to_str().unwrap())],
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("scimd_")
    );
    server.stop();
}
