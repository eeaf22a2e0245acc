//! Hostile input: malformed, huge, deeply nested, wrongly typed and non-UTF-8 requests get a
//! SCIM 4xx, never a 5xx or a hang, and change nothing. Plus the full scope matrix.

use reqwest::Method;
use scim_core::TokenScopes;
use scim_server::ServerConfig;
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};

async fn raw(s: &TestServer, method: Method, path: &str, body: Vec<u8>, ct: &str) -> (u16, Value) {
    let r = s
        .client
        .request(method, s.url(path))
        .bearer_auth(&s.token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn malformed_requests_get_4xx(backend: Backend) {
    let s = TestServer::start_with(backend, ServerConfig::default()).await;
    let uid = s.user("target").await;
    let g = s.post("/Groups", json!({"displayName": "G"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = (
        s.get("/Users?count=100").await.body,
        s.get("/Groups?count=100").await.body,
    );
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_obj = format!(
        "{}{}",
        "{\"a\":".repeat(3000),
        "1".to_string() + &"}".repeat(3000)
    );
    let ops10k: Vec<Value> = (0..10_000)
        .map(|_| json!({"op": "add", "path": "nickName", "value": "x"}))
        .collect();
    let mut bodies: Vec<(Method, String, Vec<u8>)> = vec![
        (Method::POST, "/Users".into(), b"\xff\xfe\x00garbage".to_vec()),
        (Method::POST, "/Users".into(), deep.clone().into_bytes()),
        (Method::POST, "/Users".into(), deep_obj.clone().into_bytes()),
        (Method::POST, "/Users".into(), br#"{"userName": "dup", "userName": 5}"#.to_vec()),
        (Method::POST, "/Users".into(), br#"{"userName": "x", "emails": "not-a-list-of-objects", "name": 5}"#.to_vec()),
        (Method::POST, "/Users".into(), br#"{"userName": ["a", "b"]}"#.to_vec()),
        (Method::POST, "/Users".into(), b"null".to_vec()),
        (Method::POST, "/Users".into(), b"\"string\"".to_vec()),
        (Method::POST, "/Users".into(), vec![b'{'; 300 * 1024]),
        (Method::PUT, format!("/Users/{uid}"), br#"{"userName": null}"#.to_vec()),
        (Method::PATCH, format!("/Users/{uid}"), json!({"Operations": ops10k}).to_string().into_bytes()),
        (Method::PATCH, format!("/Users/{uid}"), json!({"Operations": [{"op": "replace", "path": "emails[".to_string() + &"(".repeat(2000) + "]", "value": 1}]}).to_string().into_bytes()),
        (Method::PATCH, format!("/Users/{uid}"), json!({"Operations": [{"op": "add", "path": "x".repeat(100_000), "value": 1}]}).to_string().into_bytes()),
        (Method::PATCH, format!("/Groups/{g}"), json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": 12}, {"value": null}, {"nope": 1}]}]}).to_string().into_bytes()),
        (Method::PATCH, format!("/Groups/{g}"), json!({"Operations": [{"op": "add", "path": "members", "value": deep.clone()}]}).to_string().into_bytes()),
        (Method::POST, "/Users/.search".into(), json!({"filter": "(".repeat(10_000)}).to_string().into_bytes()),
        (Method::POST, "/Users/.search".into(), json!({"filter": vec!["a eq 1"; 2000].join(" or ")}).to_string().into_bytes()),
        (Method::POST, "/Users/.search".into(), json!({"count": "many", "startIndex": -9_999_999_999i64}).to_string().into_bytes()),
        (Method::POST, "/Bulk".into(), json!({"Operations": [{"method": "POST", "path": "/Users/../../etc", "data": {}}, {"method": "TRACE", "path": "/Users"}, {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "bulkId:x"}}]}).to_string().into_bytes()),
    ];
    // Query-string junk.
    for q in [
        "filter=%FF%FE",
        "count=1e9999",
        "startIndex=99999999999999999999",
        "sortBy=%00",
        "attributes=a,,,b..c",
        "filter=userName%20eq%20%22%5C%22",
    ] {
        bodies.push((Method::GET, format!("/Users?{q}"), Vec::new()));
    }
    for (method, path, body) in bodies {
        let (status, v) = raw(&s, method.clone(), &path, body, "application/scim+json").await;
        assert!(
            (200..500).contains(&status),
            "{method} {}: {status} {v}",
            &path[..path.len().min(80)]
        );
        if status >= 400 {
            assert_eq!(
                v["schemas"][0],
                "urn:ietf:params:scim:api:messages:2.0:Error",
                "{method} {} {status}: {v}",
                &path[..path.len().min(80)]
            );
        }
    }
    // The PATCH operation limit: the body is read whole, then refused with 413.
    let ops: Vec<Value> = (0..1001)
        .map(|i| json!({"op": "replace", "path": "nickName", "value": format!("n{i}")}))
        .collect();
    let (status, v) = raw(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        json!({"Operations": ops}).to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("the limit is 1000"),
        "{v}"
    );
    // Header junk.
    for auth in [
        format!("Bearer {}", "x".repeat(10_000)),
        "Basic Zm9vOmJhcg==".into(),
        "Bearer".into(),
        "bearer  ".into(),
    ] {
        let r = s
            .client
            .get(s.url("/Users"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = s
        .client
        .get(s.url("/Users"))
        .bearer_auth(&s.token)
        .header("if-none-match", "W/\"abc, *garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Nothing changed, except the one user created by the 'null' PUT? No: that was refused too.
    assert_eq!(
        (
            s.get("/Users?count=100").await.body,
            s.get("/Groups?count=100").await.body
        ),
        before
    );
    s.finish().await;
}

/// (method, path, endpoint scope, writes?, body)
type Route = (Method, String, Option<&'static str>, bool, Option<Value>);

/// Every route × method × scope: 401 without a valid token, 403 without the scope or the
/// privilege, 2xx/4xx from the handler otherwise (never 403 or 5xx then).
async fn scope_matrix(backend: Backend) {
    let s = TestServer::start(backend).await;
    let uid = s.user("matrix").await;
    let gid = s.post("/Groups", json!({"displayName": "M"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let routes: Vec<Route> = vec![
        (Method::GET, "/Users".into(), Some("users"), false, None),
        (
            Method::POST,
            "/Users".into(),
            Some("users"),
            true,
            Some(json!({"userName": "new"})),
        ),
        (
            Method::GET,
            format!("/Users/{uid}"),
            Some("users"),
            false,
            None,
        ),
        (
            Method::PUT,
            format!("/Users/{uid}"),
            Some("users"),
            true,
            Some(json!({"userName": "matrix"})),
        ),
        (
            Method::PATCH,
            format!("/Users/{uid}"),
            Some("users"),
            true,
            Some(json!({"Operations": [{"op": "replace", "path": "title", "value": "t"}]})),
        ),
        (
            Method::DELETE,
            "/Users/nonexistent".into(),
            Some("users"),
            true,
            None,
        ),
        (
            Method::POST,
            "/Users/.search".into(),
            Some("users"),
            false,
            Some(json!({})),
        ),
        (Method::GET, "/Groups".into(), Some("groups"), false, None),
        (
            Method::POST,
            "/Groups".into(),
            Some("groups"),
            true,
            Some(json!({"displayName": "N"})),
        ),
        (
            Method::GET,
            format!("/Groups/{gid}"),
            Some("groups"),
            false,
            None,
        ),
        (
            Method::PUT,
            format!("/Groups/{gid}"),
            Some("groups"),
            true,
            Some(json!({"displayName": "M"})),
        ),
        (
            Method::PATCH,
            format!("/Groups/{gid}"),
            Some("groups"),
            true,
            Some(json!({"Operations": [{"op": "replace", "path": "externalId", "value": "e"}]})),
        ),
        (
            Method::DELETE,
            "/Groups/nonexistent".into(),
            Some("groups"),
            true,
            None,
        ),
        (
            Method::POST,
            "/Groups/.search".into(),
            Some("groups"),
            false,
            Some(json!({})),
        ),
        (
            Method::POST,
            "/Bulk".into(),
            Some("bulk"),
            true,
            Some(json!({"Operations": []})),
        ),
        (
            Method::GET,
            "/ServiceProviderConfig".into(),
            None,
            false,
            None,
        ),
        (Method::GET, "/ResourceTypes".into(), None, false, None),
        (Method::GET, "/Schemas".into(), None, false, None),
    ];
    let scopes = [
        "users:r",
        "users:rw",
        "groups:r",
        "groups:rw",
        "bulk:rw",
        "users:rw groups:rw bulk:rw",
    ];
    let mut checked = 0;
    for scope in scopes {
        let token = s
            .issue(
                s.tenant_id,
                TokenScopes::parse_list(&[scope]).unwrap(),
                None,
            )
            .await;
        for (method, path, endpoint, write, body) in &routes {
            let allowed = match endpoint {
                None => true,
                Some(ep) => scope
                    .split(' ')
                    .any(|sc| sc == format!("{ep}:rw") || (!write && sc == format!("{ep}:r"))),
            };
            let r = s
                .send(method.clone(), path, Some(&token), body.as_ref(), &[])
                .await;
            let code = r.status.as_u16();
            if allowed {
                assert!(
                    code != 401 && code != 403 && code < 500,
                    "{scope} {method} {path}: {code} {}",
                    r.body
                );
            } else {
                assert_eq!(code, 403, "{scope} {method} {path}: {}", r.body);
            }
            let r = s
                .send(
                    method.clone(),
                    path,
                    Some("scimd_invalid"),
                    body.as_ref(),
                    &[],
                )
                .await;
            assert_eq!(
                r.status.as_u16(),
                401,
                "{method} {path} without a valid token"
            );
            checked += 2;
        }
    }
    assert_eq!(checked, scopes.len() * routes.len() * 2);
    s.finish().await;
}

scim_testkit::both_backends! {
    malformed => super::malformed_requests_get_4xx;
    scope_matrix => super::scope_matrix;
}
