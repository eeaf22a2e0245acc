//! Groups: membership as rows, Entra's and Okta's PATCH forms, concurrency, hard deletes.

use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn member_ids(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn entra_group_flow(backend: Backend) {
    let s = TestServer::start(backend).await;
    let u1 = s.user("u1").await;
    let u2 = s.user("u2").await;
    let u3 = s.user("u3").await;
    // Create with the ADSCIM URN Entra sends; created with an empty member list.
    let r = s
        .post("/Groups", json!({"schemas": [G, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                                "externalId": "8aa1a0c0", "displayName": "Sales", "meta": {"resourceType": "Group"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let gpath = format!("/Groups/{gid}");
    assert_eq!(r.body["members"], json!([]));
    // Match, excluding members.
    let r = s
        .get("/Groups?excludedAttributes=members&filter=displayName eq \"sales\"")
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    // Add members: 204, no body.
    let r = s.patch(&gpath, json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": u1}, {"$ref": null, "value": u2}]}])).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, Value::Null);
    // Re-adding is a no-op, not a 409.
    let r = s
        .patch(
            &gpath,
            json!([{"op": "Add", "path": "members", "value": [{"value": u1}]}]),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s.get(&gpath).await;
    assert_eq!(
        member_ids(&r.body),
        BTreeSet::from([u1.clone(), u2.clone()])
    );
    let m = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["value"] == u1.as_str())
        .unwrap()
        .clone();
    assert_eq!(m["type"], "User");
    assert_eq!(m["display"], "u1");
    assert_eq!(m["$ref"], format!("{}/Users/{u1}", s.base));
    let r = s.get(&format!("{gpath}?excludedAttributes=members")).await;
    assert!(r.body.get("members").is_none());
    // The user shows its groups.
    let r = s.get(&format!("/Users/{u1}")).await;
    assert_eq!(r.body["groups"][0]["value"], gid.as_str());
    assert_eq!(r.body["groups"][0]["display"], "Sales");
    // Default remove: value list removes only those.
    let r = s
        .patch(
            &gpath,
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": u1}]}]),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        member_ids(&s.get(&gpath).await.body),
        BTreeSet::from([u2.clone()])
    );
    // Flag-style remove and Okta's combined remove+add.
    let r = s.patch(&gpath, json!([{"op": "remove", "path": format!("members[value eq \"{u2}\"]")},
                                    {"op": "add", "path": "members", "value": [{"value": u3, "display": "ignored"}]}])).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        member_ids(&s.get(&gpath).await.body),
        BTreeSet::from([u3.clone()])
    );
    // Rename (Okta echoes the id); members untouched.
    let r = s
        .patch(
            &gpath,
            json!([{"op": "replace", "value": {"id": gid, "displayName": "Sales EMEA"}}]),
        )
        .await;
    assert_eq!(r.status, 204);
    let g = s.get(&gpath).await.body;
    assert_eq!(g["displayName"], "Sales EMEA");
    assert_eq!(member_ids(&g), BTreeSet::from([u3.clone()]));
    // Filter on members.
    let r = s
        .get(&format!("/Groups?filter=members.value eq \"{u3}\""))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    // Unknown member: a clear 400, and nothing of the request applied.
    let r = s.patch(&gpath, json!([{"op": "replace", "path": "displayName", "value": "Changed"},
                                    {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}])).await;
    r.assert_error(400, Some("invalidValue"));
    assert_eq!(s.get(&gpath).await.body["displayName"], "Sales EMEA");
    // Hard-deleting a user removes it from every group.
    assert_eq!(s.delete(&format!("/Users/{u3}")).await.status, 204);
    assert!(member_ids(&s.get(&gpath).await.body).is_empty());
    // Group names are unique per tenant, case-insensitively.
    s.post("/Groups", json!({"displayName": "SALES emea"}))
        .await
        .assert_error(409, Some("uniqueness"));
    // Remove all members; replace the whole set; delete.
    let r = s
        .patch(
            &gpath,
            json!([{"op": "replace", "path": "members", "value": [{"value": u1}, {"value": u2}]}]),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&s.get(&gpath).await.body).len(), 2);
    let r = s
        .patch(&gpath, json!([{"op": "remove", "path": "members"}]))
        .await;
    assert_eq!(r.status, 204);
    assert!(member_ids(&s.get(&gpath).await.body).is_empty());
    assert_eq!(s.delete(&gpath).await.status, 204);
    s.get(&gpath).await.assert_error(404, None);
    s.finish().await;
}

/// Sends a PATCH on a task of its own (for concurrent requests); answers its status.
fn spawn_patch(
    s: &TestServer,
    path: &str,
    body: serde_json::Value,
    if_match: Option<&'static str>,
) -> tokio::task::JoinHandle<u16> {
    let (client, url, token) = (s.client.clone(), s.url(path), s.token.clone());
    tokio::spawn(async move {
        let mut req = client
            .patch(url)
            .bearer_auth(token)
            .header("content-type", "application/scim+json");
        if let Some(v) = if_match {
            req = req.header("if-match", v);
        }
        req.body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

async fn fifty_concurrent_member_adds(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s.post("/Groups", json!({"displayName": "All"})).await;
    let gid = r.body["id"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(s.user(&format!("m{i}")).await);
    }
    let mut tasks = Vec::new();
    for u in &users {
        let body =
            json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": u}]}]});
        tasks.push(spawn_patch(&s, &format!("/Groups/{gid}"), body, None));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    let g = s.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(
        member_ids(&g),
        users.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(g["meta"]["version"], "W/\"51\"");
    s.finish().await;
}

/// Concurrent PATCHes of one group, some of them refused (an unknown member, a stale
/// `If-Match`): on PostgreSQL they share transactions (`row_batcher.rs`), and a refused one
/// must change nothing while every accepted one is kept, each exactly once.
async fn refused_patches_among_concurrent_ones_change_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s.post("/Groups", json!({"displayName": "Mixed"})).await;
    let gid = r.body["id"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(s.user(&format!("x{i}")).await);
    }
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        // Every third PATCH also names a member that does not exist (400, nothing added);
        // every fifth carries a version the group never has again (412).
        let mut value = vec![json!({"value": u})];
        if i % 3 == 0 {
            value.push(json!({"value": format!("no-such-user-{i}")}));
        }
        let body = json!({"Operations": [{"op": "Add", "path": "members", "value": value}]});
        let if_match = (i % 5 == 0 && i % 3 != 0).then_some("W/\"1000\"");
        tasks.push(spawn_patch(&s, &format!("/Groups/{gid}"), body, if_match));
    }
    let mut kept = BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let status = t.await.unwrap();
        let want = if i % 3 == 0 {
            400
        } else if i % 5 == 0 {
            412
        } else {
            204
        };
        assert_eq!(status, want, "PATCH {i}");
        if want == 204 {
            kept.insert(users[i].clone());
        }
    }
    let g = s.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(member_ids(&g), kept);
    assert_eq!(
        g["meta"]["version"],
        format!("W/\"{}\"", kept.len() + 1),
        "one version per accepted PATCH, none for a refused one"
    );
    s.finish().await;
}

async fn nested_groups_and_member_types(backend: Backend) {
    let s = TestServer::start(backend).await;
    let u = s.user("alice").await;
    let inner = s
        .post(
            "/Groups",
            json!({"displayName": "Inner", "members": [{"value": u}]}),
        )
        .await;
    assert_eq!(inner.status, 201, "{}", inner.body);
    assert_eq!(member_ids(&inner.body), BTreeSet::from([u.clone()]));
    let inner_id = inner.body["id"].as_str().unwrap().to_string();
    let outer = s
        .post(
            "/Groups",
            json!({"displayName": "Outer", "members": [{"value": inner_id}, {"value": u}]}),
        )
        .await;
    let outer_id = outer.body["id"].as_str().unwrap().to_string();
    let types: BTreeSet<String> = outer.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["Group".to_string(), "User".to_string()])
    );
    // Remove by a filter on type (evaluated on the member rows).
    let r = s
        .patch(
            &format!("/Groups/{outer_id}"),
            json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        member_ids(&s.get(&format!("/Groups/{outer_id}")).await.body),
        BTreeSet::from([u.clone()])
    );
    // A group cannot contain itself.
    let r = s
        .patch(
            &format!("/Groups/{outer_id}"),
            json!([{"op": "add", "path": "members", "value": [{"value": outer_id}]}]),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    // PATCH with attributes asks for a body back.
    let r = s
        .patch(
            &format!("/Groups/{outer_id}?attributes=displayName,members"),
            json!([{"op": "replace", "path": "displayName", "value": "Outer2"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["displayName"], "Outer2");
    assert_eq!(member_ids(&r.body), BTreeSet::from([u.clone()]));
    s.finish().await;
}

scim_testkit::both_backends! {
    group_flow => super::entra_group_flow;
    concurrent_member_adds => super::fifty_concurrent_member_adds;
    refused_among_concurrent => super::refused_patches_among_concurrent_ones_change_nothing;
    nested_groups => super::nested_groups_and_member_types;
}
