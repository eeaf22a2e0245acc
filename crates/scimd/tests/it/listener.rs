//! The listener's limits and TLS, on a real scimd process: HTTPS with a self-signed
//! certificate (reloaded on SIGHUP, answers with HSTS), a header-read timeout that also closes
//! idle connections, the connection cap (idle connections make room, busy ones do not), and
//! each address's share.

use crate::support::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn port_of(url: &str) -> String {
    url.split("//")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// Reads until EOF or `limit`; true if the server closed the connection within it.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return start.elapsed() < limit,
        }
    }
}

#[test]
fn header_timeout_closes_slow_and_idle_connections_and_connections_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("SCIMD_HEADER_READ_TIMEOUT_SECS", "1"),
            ("SCIMD_MAX_CONNECTIONS", "2"),
        ],
    );
    let addr = port_of(&server.url);
    // A half-sent request line is cut off.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTT").unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(4)),
        "slow head not closed"
    );
    // An idle keep-alive connection is closed after the same time.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    idle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)),
        "idle not closed"
    );
    // Two idle connections: a third takes the place of the one idle the longest.
    let mut a = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let _b = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(&addr).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut a, Duration::from_secs(2)),
        "the longest-idle connection made room"
    );
    drop((_b, third));
    std::thread::sleep(Duration::from_millis(200));
    // Two connections with a request in flight (a body still coming): a third waits until
    // one of them is done.
    let busy = || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(
            b"POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=",
        )
        .unwrap();
        s
    };
    let first = busy();
    let _second = busy();
    std::thread::sleep(Duration::from_millis(300));
    let mut waiting = TcpStream::connect(&addr).unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(waiting.read(&mut buf).is_err(), "served past the cap");
    drop(first);
    waiting
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let n = waiting.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    server.stop();
}

/// A connection from `source` (another loopback address, for a second client).
fn connect_from(source: &str, addr: &str) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&source.parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    s.connect(&addr.parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    s.into()
}

#[test]
fn one_address_holds_only_its_share_of_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &[("SCIMD_MAX_CONNECTIONS_PER_ADDRESS", "3")],
    );
    let addr = port_of(&server.url);
    let held: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.1:0", &addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    // A fourth from the same address is told so and closed at once.
    let mut over = connect_from("127.0.0.1:0", &addr);
    over.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut text = String::new();
    let _ = over.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("too many connections from your address"));
    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2:0", &addr);
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut answer = String::new();
    let _ = other.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    server.stop();
}

fn self_signed(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let pem = c.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    (cert, key, pem)
}

#[test]
fn tls_serves_https_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = self_signed(dir.path(), "one");
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("SCIMD_TLS_CERT", cert.to_str().unwrap()),
            ("SCIMD_TLS_KEY", key.to_str().unwrap()),
            ("RUST_LOG", "info"),
        ],
    );
    assert!(
        server.printed.contains("Listening on https://"),
        "{}",
        server.printed
    );
    let url = server.url.replace("http://", "https://");
    assert!(
        server.printed.contains(&url),
        "printed URLs are https: {}",
        server.printed
    );
    let target = format!("https://{}/healthz", port_of(&url)).replace("127.0.0.1", "localhost");
    let get = |pem: &str| {
        let client = reqwest::blocking_free_client(pem);
        let target = target.clone();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                client.get(target).send().await.map(|r| {
                    let hsts = r
                        .headers()
                        .get("strict-transport-security")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    (r.status().as_u16(), hsts)
                })
            })
    };
    let (status, hsts) = get(&pem).unwrap();
    assert_eq!(status, 200);
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"), "HSTS over HTTPS");
    // A new certificate in place, then SIGHUP: new connections get it.
    let (_, _, pem2) = self_signed(dir.path(), "one");
    std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(&pem2).unwrap().0, 200);
    assert!(
        get(&pem).is_err(),
        "the old certificate is no longer served"
    );
    let logged = server.stop();
    assert!(logged.contains("TLS certificate reloaded"), "{logged}");
}

mod reqwest {
    pub use ::reqwest::*;
    /// A client that trusts exactly this certificate (and resolves nothing on its own).
    pub fn blocking_free_client(pem: &str) -> Client {
        Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }
}

#[test]
fn metrics_are_served_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let port = scim_testkit::process::free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(dir.path(), None, &[("SCIMD_METRICS_LISTEN", &listen)]);
    let secret = server.secret.clone().unwrap();
    let url = server.url.clone();
    let text = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let c = ::reqwest::Client::new();
            c.get(format!("{url}/Users/nope"))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap();
            c.get(format!("{url}/Users"))
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap();
            c.get(format!("http://{listen}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
    for want in [
        "scimd_http_requests_total{route=\"/t/{tenant}/scim/v2/Users/{id}\",method=\"GET\",status=\"404\"}",
        "scimd_http_request_duration_seconds",
        "scimd_unauthenticated_requests_total",
        "scimd_sqlite_commit_batch_size",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    assert!(!text.contains("nope"), "ids never become labels");
    server.stop();
}
