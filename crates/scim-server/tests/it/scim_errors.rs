//! Bad input: every failure is an RFC 7644 §3.12 error with the right status and scimType,
//! and changes nothing.

use reqwest::Method;
use scim_server::ServerConfig;
use scim_testkit::{Backend, TestServer};
use serde_json::json;

async fn bad_requests_get_scim_errors(backend: Backend) {
    let s = TestServer::start_with(
        backend,
        ServerConfig {
            max_body_bytes: 4096,
            ..Default::default()
        },
    )
    .await;
    let tok = s.token.clone();
    let uid = s.user("victim").await;
    let raw = |body: &'static str, ct: &'static str| {
        let client = s.client.clone();
        let url = s.url("/Users");
        let tok = tok.clone();
        async move {
            let r = client
                .post(url)
                .bearer_auth(tok)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }
    };
    let (st, b) = raw("{not json", "application/scim+json").await;
    assert_eq!((st, b["scimType"].as_str()), (400, Some("invalidSyntax")));
    let (st, _) = raw("", "application/json").await;
    assert_eq!(st, 400);
    let (st, b) = raw(r#"{"userName": "x"}"#, "text/plain").await;
    assert_eq!((st, b["status"].as_str()), (415, Some("415")));
    let big: &'static str =
        Box::leak(format!(r#"{{"userName": "{}"}}"#, "x".repeat(5000)).into_boxed_str());
    let (st, b) = raw(big, "application/json").await;
    assert_eq!((st, b["status"].as_str()), (413, Some("413")));
    s.post("/Users", json!({"displayName": "no userName"}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.post("/Users", json!({"userName": "x", "active": "maybe"}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.post("/Users", json!(["array"]))
        .await
        .assert_error(400, Some("invalidSyntax"));
    s.get("/Users?filter=userName eq")
        .await
        .assert_error(400, Some("invalidFilter"));
    s.get("/Users?filter=favouriteColour eq \"red\"")
        .await
        .assert_error(400, Some("invalidFilter"));
    s.get("/Users?filter=active gt true")
        .await
        .assert_error(400, Some("invalidFilter"));
    s.get("/Users?startIndex=abc")
        .await
        .assert_error(400, Some("invalidValue"));
    s.get("/Users?sortBy=nosuch")
        .await
        .assert_error(400, Some("invalidValue"));
    s.get("/Users?sortOrder=sideways")
        .await
        .assert_error(400, Some("invalidValue"));
    s.get("/Users?attributes=1bad")
        .await
        .assert_error(400, Some("invalidValue"));
    s.put("/Users/does-not-exist", json!({"userName": "x"}))
        .await
        .assert_error(404, None);
    s.patch(
        "/Users/does-not-exist",
        json!([{"op": "add", "path": "nickName", "value": "x"}]),
    )
    .await
    .assert_error(404, None);
    s.patch(&format!("/Users/{uid}"), json!([{"op": "remove"}]))
        .await
        .assert_error(400, Some("noTarget"));
    s.patch(
        &format!("/Users/{uid}"),
        json!([{"op": "replace", "path": "id", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    s.patch(
        &format!("/Users/{uid}"),
        json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    // A failing operation in the middle leaves the user untouched.
    let before = s.get(&format!("/Users/{uid}")).await.body;
    s.patch(&format!("/Users/{uid}"), json!([{"op": "replace", "path": "nickName", "value": "changed"},
                                             {"op": "replace", "path": "active", "value": "perhaps"}]))
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(s.get(&format!("/Users/{uid}")).await.body, before);
    // Routes and methods.
    s.get("/Nope").await.assert_error(404, None);
    s.send(Method::DELETE, "/Users", Some(&tok), None, &[])
        .await
        .assert_error(405, None);
    s.send(Method::GET, &format!("{}/", s.root), None, None, &[])
        .await
        .assert_error(404, None);
    s.finish().await;
}

scim_testkit::both_backends! {
    bad_requests => super::bad_requests_get_scim_errors;
}

async fn rate_limits_and_time_limits(backend: Backend) {
    use scim_server::limits::RateLimit;
    let s = TestServer::start_with(
        backend,
        ServerConfig {
            rate_limit: RateLimit {
                per_second: 0.2,
                burst: 5.0,
            },
            ..Default::default()
        },
    )
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..8 {
        let r = s.get("/Users").await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            limited = Some(r);
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    let r = limited.expect("the sixth request is limited");
    r.assert_error(429, None);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Other tokens have their own budget.
    let other = s
        .issue(s.tenant_id, scim_core::TokenScopes::all(), None)
        .await;
    assert_eq!(
        s.send(Method::GET, "/Users", Some(&other), None, &[])
            .await
            .status,
        200
    );
    s.finish().await;
    // A request over the time limit (here: a client that never finishes its body) is
    // answered 503 with Retry-After, as a SCIM error, and the connection does not hang.
    let s = TestServer::start_with(
        backend,
        ServerConfig {
            request_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.root.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /t/acme/scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\":",
        s.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "the server must answer, not hang");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(text.contains("\"status\":\"503\""), "{text}");
    s.finish().await;
}

scim_testkit::both_backends! {
    limits => super::rate_limits_and_time_limits;
}
