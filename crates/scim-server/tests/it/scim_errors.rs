//! Bad input: every failure is an RFC 7644 §3.12 error with the right status and scimType,
//! and changes nothing.

use crate::harness::{Backend, TestServer};
use reqwest::Method;
use scim_server::ServerConfig;
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
    // Too many PATCH operations.
    let ops: Vec<_> = (0..1001)
        .map(|i| json!({"op": "replace", "path": "nickName", "value": format!("n{i}")}))
        .collect();
    let r = s
        .send(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(&tok),
            Some(&json!({"Operations": ops})),
            &[],
        )
        .await;
    assert!(r.status == 413, "{}", r.status);
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

crate::both_backends! {
    bad_requests => super::bad_requests_get_scim_errors;
}
