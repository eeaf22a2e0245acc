//! Attacks on a real scimd process (issue 35): made-up request methods cannot add metrics
//! series, the metrics listener closes a half-sent request like the main one, and a new
//! SQLite database is readable by its owner only.

use crate::support::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn request(addr: &str, head: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn made_up_methods_add_no_metrics_series_and_the_metrics_listener_has_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", scim_testkit::process::free_port());
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("SCIMD_METRICS_LISTEN", metrics.as_str()),
            ("SCIMD_HEADER_READ_TIMEOUT_SECS", "1"),
        ],
    );
    let addr = server.listen.clone();
    let scrape = || {
        request(
            &metrics,
            b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
        )
    };
    // Wait for the recorder and a first series.
    request(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let before = scrape().len();
    for i in 0..300 {
        let method = format!("X{i}{}", "A".repeat(2_000));
        let answer = request(
            &addr,
            format!("{method} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    }
    let after = scrape();
    assert!(!after.contains("AAAA"), "a made-up method became a label");
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(
        after.len() < before + 4_096,
        "300 made-up methods grew /metrics from {before} to {} bytes",
        after.len()
    );
    // A half-sent request to the metrics listener is closed after the header timeout.
    let mut slow = TcpStream::connect(&metrics).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = matches!(slow.read(&mut buf), Ok(0) | Err(_));
    assert!(
        closed && started.elapsed() < Duration::from_secs(4),
        "still open"
    );
    server.stop();
}

#[cfg(unix)]
#[test]
fn a_new_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    for f in ["data/scimd.db", "data/scimd.db-wal"] {
        let path = dir.path().join(f);
        if let Ok(m) = std::fs::metadata(&path) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        } else {
            assert!(f.ends_with("-wal"), "{f} missing");
        }
    }
    server.stop();
}
