//! Users: the Entra ID / Okta lifecycle end to end, ETags, uniqueness under races.

use reqwest::Method;
use scim_testkit::{Backend, TestServer};
use serde_json::json;

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn entra_user_lifecycle(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Test connection: a random GUID must give 200 and an empty ListResponse, never 404.
    let r = s
        .get("/Users?filter=userName+eq+%22b5b3c2a8-0d62-4a5e-9b1e-1f7d3f3a2c11%22")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
               "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
    // Create, as Entra documents it.
    let r = s
        .post(
            "/Users?aadOptscim062020",
            json!({"schemas": [U, ENT], "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                   "userName": "Test_User_00aa@contoso.com", "active": true,
                   "emails": [{"primary": true, "type": "work", "value": "Test_User_00aa@contoso.com"}],
                   "meta": {"resourceType": "User"},
                   "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                   "roles": [], "password": "hunter2"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("{}/Users/{id}", s.base));
    assert_eq!(r.body["meta"]["location"], location);
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert!(
        r.body.get("password").is_none(),
        "password must never be returned"
    );
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/scim+json")
    );
    // Match, case-insensitively, with '+' for spaces and %40 for '@'.
    let r = s
        .get("/Users?filter=userName+eq+%22test_user_00AA%40contoso.com%22")
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());
    assert_eq!(r.body["Resources"][0]["active"], true);
    let r = s
        .get("/Users?filter=externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"")
        .await;
    assert_eq!(r.body["totalResults"], 1);
    // Update (default job): capitalised ops, string booleans, filtered paths.
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@contoso.com"},
                {"op": "Replace", "path": "name.familyName", "value": "Updated"},
                {"op": "Add", "path": format!("{ENT}:employeeNumber"), "value": "701984"}
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["emails"][0]["value"], "updated@contoso.com");
    assert_eq!(r.body[ENT]["employeeNumber"], "701984");
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    // The e-mail index follows updates.
    let r = s
        .get("/Users?filter=emails.value eq \"UPDATED@contoso.com\"")
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let r = s
        .get("/Users?filter=emails.value eq \"Test_User_00aa@contoso.com\"")
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // Disable: the user stays, visibly inactive, by id and by filter.
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], false);
    let r = s
        .get("/Users?filter=userName eq \"Test_User_00aa@contoso.com\"")
        .await;
    assert_eq!(r.body["Resources"][0]["active"], false);
    let r = s.get("/Users?filter=active eq false").await;
    assert_eq!(r.body["totalResults"], 1);
    // Okta-style PUT of the whole user.
    let mut full = s.get(&format!("/Users/{id}")).await.body;
    full["displayName"] = json!("Test User");
    full["active"] = json!(true);
    let r = s.put(&format!("/Users/{id}"), full).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Test User");
    assert_eq!(r.body["id"], id.as_str());
    // Hard delete, then 404 for GET and a second DELETE.
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    s.get(&format!("/Users/{id}")).await.assert_error(404, None);
    s.delete(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    let r = s
        .get("/Users?filter=userName eq \"Test_User_00aa@contoso.com\"")
        .await;
    assert_eq!(r.body["totalResults"], 0);
    s.finish().await;
}

async fn etags_and_conditional_requests(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.user("etag").await;
    let path = format!("/Users/{id}");
    let tok = s.token.clone();
    let r = s
        .send(
            Method::GET,
            &path,
            Some(&tok),
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 304);
    let r = s
        .send(
            Method::GET,
            &path,
            Some(&tok),
            None,
            &[("if-none-match", "W/\"9\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    let patch = json!({"Operations": [{"op": "replace", "path": "nickName", "value": "n"}]});
    let r = s
        .send(
            Method::PATCH,
            &path,
            Some(&tok),
            Some(&patch),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    r.assert_error(412, None);
    let r = s
        .send(
            Method::PATCH,
            &path,
            Some(&tok),
            Some(&patch),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    // The version moved on: the old ETag no longer matches for PUT or DELETE.
    let body = json!({"userName": "etag"});
    s.send(
        Method::PUT,
        &path,
        Some(&tok),
        Some(&body),
        &[("if-match", "W/\"1\"")],
    )
    .await
    .assert_error(412, None);
    s.send(
        Method::DELETE,
        &path,
        Some(&tok),
        None,
        &[("if-match", "W/\"1\"")],
    )
    .await
    .assert_error(412, None);
    let r = s
        .send(
            Method::DELETE,
            &path,
            Some(&tok),
            None,
            &[("if-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(r.status, 204);
    s.finish().await;
}

async fn racing_creates_give_one_user(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = s.client.clone();
        let url = s.url("/Users");
        let token = s.token.clone();
        // Different spellings of one userName: uniqueness is case-insensitive.
        let name = if i % 2 == 0 {
            "Race@Example.com"
        } else {
            "race@example.com"
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(json!({"userName": name}).to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 19, "{codes:?}");
    let r = s
        .get("/Users?filter=userName eq \"race@example.com\"")
        .await;
    assert_eq!(r.body["totalResults"], 1);
    // The 409 body names the clash.
    let r = s
        .post("/Users", json!({"userName": "RACE@example.com"}))
        .await;
    r.assert_error(409, Some("uniqueness"));
    // Renaming onto a taken name is a 409 too, and changes nothing.
    let other = s.user("other").await;
    let r = s
        .patch(
            &format!("/Users/{other}"),
            json!([{"op": "replace", "path": "userName", "value": "race@EXAMPLE.com"}]),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    assert_eq!(
        s.get(&format!("/Users/{other}")).await.body["userName"],
        "other"
    );
    s.finish().await;
}

async fn concurrent_patches_of_one_user_lose_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.user("busy").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = s.client.clone();
        let url = s.url(&format!("/Users/{id}"));
        let token = s.token.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"Operations": [{"op": "add", "path": "emails",
                              "value": [{"value": format!("e{i}@x.com"), "type": format!("t{i}")}]}]});
            client.patch(url).bearer_auth(token).header("content-type", "application/scim+json")
                .body(body.to_string()).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let r = s.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 20, "{}", r.body);
    assert_eq!(r.body["meta"]["version"], "W/\"21\"");
    s.finish().await;
}

async fn racing_conditional_writes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.user("racer").await;
    // Ten PATCHes and then ten PUTs, all conditional on the same version: exactly one of each
    // wins, the rest get 412 (RFC 7644 §3.14), and no write is lost or doubled.
    for (round, method) in [(1, "PATCH"), (2, "PUT")] {
        let mut tasks = Vec::new();
        for i in 0..10 {
            let client = s.client.clone();
            let url = s.url(&format!("/Users/{id}"));
            let token = s.token.clone();
            let body = if method == "PATCH" {
                json!({"Operations": [{"op": "replace", "path": "nickName", "value": format!("p{i}")}]})
            } else {
                json!({"userName": "racer", "nickName": format!("u{i}")})
            };
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            tasks.push(tokio::spawn(async move {
                let r = client
                    .request(m, url)
                    .bearer_auth(token)
                    .header("content-type", "application/scim+json")
                    .header("if-match", format!("W/\"{round}\""))
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), i)
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let winners: Vec<usize> = results
            .iter()
            .filter(|(c, _)| *c == 200)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(winners.len(), 1, "{method}: {results:?}");
        assert_eq!(
            results.iter().filter(|(c, _)| *c == 412).count(),
            9,
            "{method}: {results:?}"
        );
        let u = s.get(&format!("/Users/{id}")).await.body;
        let prefix = if method == "PATCH" { "p" } else { "u" };
        assert_eq!(u["nickName"], format!("{prefix}{}", winners[0]));
        assert_eq!(u["meta"]["version"], format!("W/\"{}\"", round + 1));
    }
    s.finish().await;
}

scim_testkit::both_backends! {
    conditional_races => super::racing_conditional_writes;
    user_lifecycle => super::entra_user_lifecycle;
    etags => super::etags_and_conditional_requests;
    racing_creates => super::racing_creates_give_one_user;
    concurrent_user_patches => super::concurrent_patches_of_one_user_lose_nothing;
}
