//! Tenant isolation under random requests: tenant B's token, on every route and method, with
//! ids, names and filters taken from tenant A, never sees or changes A's data.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};

async fn random_requests_never_cross_tenants(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Tenant A ("acme"): data with markers B never sends.
    let marker = "A-SECRET-7f3e";
    let mut a_users = Vec::new();
    for i in 0..5 {
        let r = s
            .post("/Users", json!({"userName": format!("a{i}@acme.example"), "title": format!("{marker}-title-{i}"),
                                   "externalId": format!("{marker}-ext-{i}"), "emails": [{"value": format!("a{i}@acme.example"), "type": "work"}]}))
            .await;
        a_users.push((
            r.body["id"].as_str().unwrap().to_string(),
            format!("a{i}@acme.example"),
        ));
    }
    let g = s
        .post(
            "/Groups",
            json!({"displayName": format!("{marker}-group"), "members": [{"value": a_users[0].0}]}),
        )
        .await;
    let a_group = g.body["id"].as_str().unwrap().to_string();
    let a_snapshot = (
        s.get("/Users?count=100").await.body,
        s.get("/Groups?count=100").await.body,
    );
    // Tenant B ("globex") with its own token and a little data of its own.
    let (_, b_token) = s.tenant("globex").await;
    let b_base = format!("{}/t/globex/scim/v2", s.root);
    let b_user = s
        .send(
            Method::POST,
            &format!("{b_base}/Users"),
            Some(&b_token),
            Some(&json!({"userName": "b@globex.example"})),
            &[],
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rng = StdRng::seed_from_u64(0x5c1d);
    let ids: Vec<String> = a_users
        .iter()
        .map(|u| u.0.clone())
        .chain([a_group.clone(), b_user.clone()])
        .collect();
    let names: Vec<String> = a_users.iter().map(|u| u.1.clone()).collect();
    let mut sent = 0;
    let requests = if std::env::var_os("SCIMD_LONG_TESTS").is_some() {
        5_000
    } else {
        400
    };
    for _ in 0..requests {
        let id = &ids[rng.gen_range(0..ids.len())];
        let name = &names[rng.gen_range(0..names.len())];
        let res = if rng.gen_bool(0.5) { "Users" } else { "Groups" };
        let filter = match rng.gen_range(0..6) {
            0 => format!("id eq \"{id}\""),
            1 => format!("userName eq \"{name}\""),
            2 => format!("externalId sw \"{marker}\""),
            3 => "title co \"SECRET\"".to_string(),
            4 => format!("members.value eq \"{id}\""),
            _ => format!("emails.value ew \"acme.example\" or displayName co \"{marker}\""),
        };
        let enc = filter.replace(' ', "%20").replace('"', "%22");
        let (method, path, body): (Method, String, Option<Value>) = match rng.gen_range(0..12) {
            0 => (Method::GET, format!("/{res}/{id}"), None),
            1 => (Method::GET, format!("/{res}?filter={enc}"), None),
            2 => (
                Method::POST,
                format!("/{res}/.search"),
                Some(json!({"filter": filter})),
            ),
            3 => (
                Method::POST,
                "/.search".into(),
                Some(json!({"filter": filter})),
            ),
            4 => (
                Method::PUT,
                format!("/{res}/{id}"),
                Some(json!({"userName": name, "displayName": "x"})),
            ),
            5 => (
                Method::PATCH,
                format!("/{res}/{id}"),
                Some(
                    json!({"Operations": [{"op": "replace", "path": "displayName", "value": "pwned"}]}),
                ),
            ),
            6 => (Method::DELETE, format!("/{res}/{id}"), None),
            7 => (
                Method::PATCH,
                format!("/Groups/{id}"),
                Some(
                    json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
                ),
            ),
            8 => (
                Method::POST,
                "/Groups".into(),
                Some(
                    json!({"displayName": format!("g{}", rng.gen_range(0..1000)), "members": [{"value": id}]}),
                ),
            ),
            9 => (
                Method::POST,
                "/Bulk".into(),
                Some(json!({"Operations": [
                    {"method": "PATCH", "path": format!("/{res}/{id}"), "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}},
                    {"method": "DELETE", "path": format!("/{res}/{id}")}]})),
            ),
            10 => (
                Method::GET,
                format!("/{res}?count=100&sortBy=userName&attributes=id,externalId,title"),
                None,
            ),
            _ => (Method::GET, format!("/{res}?cursor=&count=2"), None),
        };
        let r = s
            .send(
                method.clone(),
                &format!("{b_base}{path}"),
                Some(&b_token),
                body.as_ref(),
                &[],
            )
            .await;
        sent += 1;
        assert!(r.status.as_u16() < 500, "{method} {path}: {}", r.body);
        let text = r.body.to_string();
        let headers = format!("{:?}", r.headers);
        assert!(
            !text.contains(marker) && !headers.contains(marker),
            "{method} {path} leaked A's data: {text}"
        );
        for (a_id, _) in &a_users {
            // B may send A's ids; it must never receive one it did not send.
            if !path.contains(a_id.as_str())
                && !body
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains(a_id.as_str()))
            {
                assert!(
                    !text.contains(a_id.as_str()),
                    "{method} {path} returned A's id: {text}"
                );
            }
        }
        if let Some(total) = r.body.get("totalResults").and_then(Value::as_u64) {
            assert!(total <= 100, "counts only B's resources");
        }
        // A's token on B's URL is refused too.
        if sent % 50 == 0 {
            s.send(
                Method::GET,
                &format!("{b_base}/Users"),
                Some(&s.token.clone()),
                None,
                &[],
            )
            .await
            .assert_error(401, None);
        }
    }
    // Tenant A is exactly as it was.
    assert_eq!(
        (
            s.get("/Users?count=100").await.body,
            s.get("/Groups?count=100").await.body
        ),
        a_snapshot
    );
    s.finish().await;
}

scim_testkit::both_backends! {
    random_cross_tenant => super::random_requests_never_cross_tenants;
}
