//! The events API (docs/events.md): every committed change once, in sequence order, with
//! no gaps; type filters, paging, long polling, retention, scopes and tenant isolation.

use reqwest::Method;
use scim_core::TokenScopes;
use scim_core::prelude::*;
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// An `events:r` token for the tenant.
async fn events_token(s: &TestServer, tenant_id: i64) -> String {
    s.issue(
        tenant_id,
        TokenScopes::parse_list(&["events:r"]).unwrap(),
        None,
    )
    .await
}

async fn page(s: &TestServer, slug: &str, token: &str, query: &str) -> scim_testkit::Resp {
    let url = format!("{}/t/{slug}/events?{query}", s.root);
    s.send(Method::GET, &url, Some(token), None, &[]).await
}

/// Every event after `after`, page by page.
async fn all_events(s: &TestServer, slug: &str, token: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let r = page(s, slug, token, &format!("after={after}&limit={limit}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let data = r.body["data"].as_array().unwrap().clone();
        after = r.body["next_after"].as_i64().unwrap();
        let more = r.body["has_more"].as_bool().unwrap();
        out.extend(data);
        if !more {
            return out;
        }
    }
}

fn types(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn assert_contiguous(evs: &[Value]) {
    let seqs: Vec<i64> = evs
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let want: Vec<i64> = (1..=evs.len() as i64).collect();
    assert_eq!(
        seqs, want,
        "sequences start at 1, with no gap and no repeat"
    );
}

async fn every_change_is_one_event_in_order(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tok = events_token(&s, s.tenant_id).await;
    let ann = s.user("ann@example.com").await;
    let bob = s.user("bob@example.com").await;
    let up = format!("/Users/{ann}");
    s.patch(
        &up,
        json!([{"op": "replace", "path": "title", "value": "Eng"}]),
    )
    .await;
    s.patch(
        &up,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    s.patch(
        &up,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    let g = s
        .post(
            "/Groups",
            json!({"displayName": "Ops", "members": [{"value": ann}]}),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_string();
    let gp = format!("/Groups/{gid}");
    // Adding someone already a member changes nothing: no event.
    let r = s
        .patch(
            &gp,
            json!([{"op": "add", "path": "members", "value": [{"value": ann}]}]),
        )
        .await;
    assert_eq!(r.status, 204);
    s.patch(
        &gp,
        json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]),
    )
    .await;
    // A PUT that swaps the members: one group.updated, one removal, no churn for bob.
    let r = s
        .put(
            &gp,
            json!({"displayName": "Ops", "members": [{"value": bob}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.patch(
        &gp,
        json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
    )
    .await;
    assert_eq!(s.delete(&up).await.status, 204);
    assert_eq!(s.delete(&gp).await.status, 204);
    // A failure is not a change.
    assert_eq!(s.get("/Users/nope").await.status, 404);

    let evs = all_events(&s, "acme", &tok, 100).await;
    assert_eq!(
        types(&evs),
        [
            "user.created",
            "user.created",
            "user.updated",
            "user.deactivated",
            "user.reactivated",
            "group.created",
            "group.member_added",
            "group.member_added",
            "group.updated",
            "group.member_removed",
            "group.member_removed",
            "user.deleted",
            "group.deleted",
        ]
    );
    assert_contiguous(&evs);
    let created = &evs[0];
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["resource_type"], "User");
    assert_eq!(created["resource_id"], ann.as_str());
    assert_eq!(created["data"]["userName"], "ann@example.com");
    assert_eq!(created["data"]["meta"]["version"], "W/\"1\"");
    assert_eq!(created["actor"]["token"], "test");
    assert_eq!(
        created["id"].as_str().unwrap(),
        format!("evt_{}_1", s.tenant_id)
    );
    assert_eq!(evs[2]["data"]["title"], "Eng");
    assert_eq!(evs[6]["data"], json!({"group_id": gid, "member_id": ann}));
    assert_eq!(evs[9]["data"]["member_id"], ann.as_str());
    assert!(evs[5]["data"].get("members").is_none());
    assert_eq!(
        evs[11]["data"]["userName"], "ann@example.com",
        "the user as it was"
    );

    // Small pages give the same events (a cursor inside one log row included).
    assert_eq!(all_events(&s, "acme", &tok, 1).await, evs);
    // Type filters keep the cursor moving past what they leave out.
    let r = page(
        &s,
        "acme",
        &tok,
        "after=0&types=group.member_added,user.deleted",
    )
    .await;
    assert_eq!(
        types(r.body["data"].as_array().unwrap()),
        ["group.member_added", "group.member_added", "user.deleted"]
    );
    assert_eq!(r.body["next_after"], 13);
    let r = page(&s, "acme", &tok, "after=0&types=group.*").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 7);
    page(&s, "acme", &tok, "types=user.exploded")
        .await
        .assert_error(400, Some("invalidValue"));
    // latest: nothing, and the head as the cursor.
    let r = page(&s, "acme", &tok, "after=latest").await;
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["next_after"], 13);
    let r = page(&s, "acme", &tok, "after=13").await;
    assert_eq!(
        (r.body["data"].clone(), r.body["has_more"].clone()),
        (json!([]), json!(false))
    );
    page(&s, "acme", &tok, "after=14")
        .await
        .assert_error(400, None);
    page(&s, "acme", &tok, "after=x")
        .await
        .assert_error(400, None);
    page(&s, "acme", &tok, "limit=lots")
        .await
        .assert_error(400, None);

    // Scopes: the IdP's token cannot read the feed, the feed's token cannot read Users.
    page(&s, "acme", &s.token, "").await.assert_error(403, None);
    let r = s.send(Method::GET, "/Users", Some(&tok), None, &[]).await;
    assert_eq!(r.status, 403);
    page(&s, "acme", "scimd_nonsense", "")
        .await
        .assert_error(401, None);

    // Tenants never see each other: another tenant's feed starts at 1 and holds its own.
    let (other, other_scim) = s.tenant("globex").await;
    let other_tok = events_token(&s, other).await;
    page(&s, "globex", &tok, "").await.assert_error(401, None);
    page(&s, "acme", &other_tok, "")
        .await
        .assert_error(401, None);
    let url = format!("{}/t/globex/scim/v2/Users", s.root);
    let r = s
        .send(
            Method::POST,
            &url,
            Some(&other_scim),
            Some(&json!({"userName": "zed@globex.example"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    let theirs = all_events(&s, "globex", &other_tok, 100).await;
    assert_eq!(types(&theirs), ["user.created"]);
    assert_eq!(theirs[0]["sequence"], 1);
    assert_eq!(theirs[0]["tenant"], "globex");
    assert_eq!(all_events(&s, "acme", &tok, 100).await.len(), 13);
    s.finish().await;
}

async fn a_long_poll_returns_the_next_change(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tok = events_token(&s, s.tenant_id).await;
    let url = format!("{}/t/acme/events?after=0&wait=20s", s.root);
    let client = s.client.clone();
    let tok2 = tok.clone();
    let waiting = tokio::spawn(async move {
        let r = client.get(url).bearer_auth(tok2).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the poll waits while nothing happens"
    );
    let id = s.user("late@example.com").await;
    let body = waiting.await.unwrap();
    assert_eq!(types(body["data"].as_array().unwrap()), ["user.created"]);
    assert_eq!(body["data"][0]["resource_id"], id.as_str());
    // wait=0 answers at once.
    let r = page(&s, "acme", &tok, "after=1&wait=0").await;
    assert_eq!(r.body["data"], json!([]));
    s.finish().await;
}

async fn a_cursor_older_than_the_retention_is_gone(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tok = events_token(&s, s.tenant_id).await;
    s.user("a@example.com").await;
    s.user("b@example.com").await;
    // The sweep removes everything older than "now + 1 day": both events.
    let swept = s
        .store
        .sweep_events(scim_core::Timestamp::now() + time::Duration::days(1), 100)
        .await
        .unwrap();
    assert_eq!(swept, 2);
    let r = page(&s, "acme", &tok, "after=0").await;
    r.assert_error(410, None);
    assert!(
        r.body["detail"].as_str().unwrap().contains("resynchronise"),
        "{}",
        r.body
    );
    // From the head, nothing is lost: 200, and new changes follow.
    let r = page(&s, "acme", &tok, "after=latest").await;
    assert_eq!(r.body["next_after"], 2);
    s.user("c@example.com").await;
    let r = page(&s, "acme", &tok, "after=2").await;
    assert_eq!(r.body["data"][0]["sequence"], 3);
    s.finish().await;
}

/// A mirror built from events alone: users, groups and memberships.
#[derive(Default, Debug, PartialEq)]
struct Mirror {
    users: BTreeMap<String, String>,
    groups: BTreeMap<String, String>,
    members: BTreeSet<(String, String)>,
}

impl Mirror {
    fn apply(&mut self, e: &Value) {
        let id = e["resource_id"].as_str().unwrap().to_string();
        let d = &e["data"];
        match e["type"].as_str().unwrap() {
            "user.created" | "user.updated" | "user.deactivated" | "user.reactivated" => {
                self.users
                    .insert(id, d["userName"].as_str().unwrap().to_string());
            }
            "user.deleted" => {
                self.users.remove(&id);
                self.members.retain(|(_, m)| *m != id);
            }
            "group.created" | "group.updated" => {
                self.groups
                    .insert(id, d["displayName"].as_str().unwrap().to_string());
            }
            "group.deleted" => {
                self.groups.remove(&id);
                self.members.retain(|(g, m)| *g != id && *m != id);
            }
            "group.member_added" => {
                self.members.insert((
                    d["group_id"].as_str().unwrap().into(),
                    d["member_id"].as_str().unwrap().into(),
                ));
            }
            "group.member_removed" => {
                self.members.remove(&(
                    d["group_id"].as_str().unwrap().into(),
                    d["member_id"].as_str().unwrap().into(),
                ));
            }
            other => panic!("unexpected event type {other}"),
        }
    }
}

/// What the SCIM API says now, in the mirror's shape.
async fn scim_view(s: &TestServer) -> Mirror {
    let mut m = Mirror::default();
    let users = s.get("/Users?count=10000").await.body;
    for u in users["Resources"].as_array().unwrap() {
        m.users.insert(
            u["id"].as_str().unwrap().into(),
            u["userName"].as_str().unwrap().into(),
        );
    }
    let groups = s.get("/Groups?count=10000").await.body;
    for g in groups["Resources"].as_array().unwrap() {
        let gid = g["id"].as_str().unwrap().to_string();
        m.groups
            .insert(gid.clone(), g["displayName"].as_str().unwrap().into());
        for mem in g["members"].as_array().into_iter().flatten() {
            m.members
                .insert((gid.clone(), mem["value"].as_str().unwrap().into()));
        }
    }
    m
}

/// 2,000 mixed changes from 16 concurrent clients: the feed has each exactly once, the
/// versions of each resource rise with the sequence (commit order), and replaying the feed
/// gives what the SCIM API shows.
async fn concurrent_changes_are_each_seen_once_in_commit_order(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tok = events_token(&s, s.tenant_id).await;
    let groups: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..4 {
            let r = s
                .post("/Groups", json!({"displayName": format!("g{i}")}))
                .await;
            v.push(r.body["id"].as_str().unwrap().to_string());
        }
        v
    };
    let s = std::sync::Arc::new(s);
    // A consumer tails the feed while the writers run: if it could ever see sequence n+1
    // before n, it would step past n and never see it.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let tail = {
        let (s, tok, writing) = (s.clone(), tok.clone(), writing.clone());
        tokio::spawn(async move {
            let (mut seen, mut after) = (Vec::new(), 0);
            loop {
                let last_round = !writing.load(std::sync::atomic::Ordering::SeqCst);
                let r = page(&s, "acme", &tok, &format!("after={after}&limit=50")).await;
                assert_eq!(r.status, 200, "{}", r.body);
                for e in r.body["data"].as_array().unwrap() {
                    seen.push(e["sequence"].as_i64().unwrap());
                }
                after = r.body["next_after"].as_i64().unwrap();
                if last_round && !r.body["has_more"].as_bool().unwrap() {
                    return seen;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..16 {
        let s = s.clone();
        let groups = groups.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u32;
            let mut mine: Vec<String> = Vec::new();
            // 125 steps each (+4 group creates): 2,004 requests; most write more than once.
            for i in 0..125usize {
                let step = i % 6;
                let r = match (step, mine.last()) {
                    (0, _) | (_, None) => {
                        let r = s
                            .post(
                                "/Users",
                                json!({"userName": format!("w{w}-{i}@example.com")}),
                            )
                            .await;
                        if r.status == 201 {
                            mine.push(r.body["id"].as_str().unwrap().to_string());
                        }
                        r
                    }
                    (1, Some(u)) => {
                        s.patch(
                            &format!("/Users/{u}"),
                            json!([{"op": "replace", "path": "title", "value": format!("t{i}")}]),
                        )
                        .await
                    }
                    (2, Some(u)) => {
                        s.patch(
                            &format!("/Groups/{}", groups[i % groups.len()]),
                            json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
                        )
                        .await
                    }
                    (3, Some(u)) => {
                        s.patch(
                            &format!("/Users/{u}"),
                            json!([{"op": "replace", "path": "active", "value": false}]),
                        )
                        .await
                    }
                    (4, Some(_)) if mine.len() > 1 => {
                        let u = mine.remove(0);
                        s.delete(&format!("/Users/{u}")).await
                    }
                    (_, Some(u)) => {
                        s.patch(
                            &format!("/Groups/{}", groups[(i + w) % groups.len()]),
                            json!([{"op": "remove", "path": format!("members[value eq \"{u}\"]")}]),
                        )
                        .await
                    }
                };
                assert!(r.status.is_success(), "{} {}", r.status, r.body);
                ok += 1;
            }
            ok
        }));
    }
    let mut requests = 0;
    for t in tasks {
        requests += t.await.unwrap();
    }
    assert_eq!(requests, 16 * 125);
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let tailed = tail.await.unwrap();
    let evs = all_events(&s, "acme", &tok, 137).await;
    assert_contiguous(&evs);
    assert_eq!(
        tailed,
        (1..=evs.len() as i64).collect::<Vec<_>>(),
        "the tailing consumer saw every event once, in order"
    );
    assert!(evs.len() >= 400, "{} events", evs.len());
    // Each resource's versions rise with the sequence: the feed's order is commit order.
    let mut last_version: BTreeMap<String, i64> = BTreeMap::new();
    for e in &evs {
        let Some(v) = e["data"]["meta"]["version"].as_str() else {
            continue;
        };
        let v: i64 = v
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .unwrap();
        let id = e["resource_id"].as_str().unwrap().to_string();
        if let Some(prev) = last_version.insert(id.clone(), v) {
            assert!(
                v > prev || e["type"].as_str().unwrap().ends_with("deleted"),
                "{id}: {prev} then {v}"
            );
        }
    }
    let mut mirror = Mirror::default();
    for e in &evs {
        mirror.apply(e);
    }
    assert_eq!(mirror, scim_view(&s).await);
    // The log has one row per change and the feed no more events than changes allow.
    let logged = s
        .store
        .events(
            s.tenant_id,
            &scim_core::EventQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // One row per request, plus one `Remove Members` row per group a deleted user left (the
    // group's new version, in the same request).
    let requests: std::collections::HashSet<&str> =
        logged.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(requests.len(), 16 * 125 + 4);
    let left = logged.len() - requests.len();
    let removes = logged
        .iter()
        .filter(|e| e.operation == scim_core::Operation::RemoveMembers)
        .count();
    assert!(
        removes >= left,
        "{left} extra rows, {removes} member removals"
    );
    let s = std::sync::Arc::into_inner(s).unwrap();
    s.finish().await;
}

scim_testkit::both_backends! {
    feed_order => super::every_change_is_one_event_in_order;
    feed_long_poll => super::a_long_poll_returns_the_next_change;
    feed_retention => super::a_cursor_older_than_the_retention_is_gone;
    feed_concurrency => super::concurrent_changes_are_each_seen_once_in_commit_order;
}
