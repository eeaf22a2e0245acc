//! The provisioning log: one event per change (same transaction), one per failure, filters,
//! retention.

use reqwest::Method;
use scim_core::event::{Event, EventQuery, Operation, Outcome};
use scim_core::prelude::*;
use scim_core::{Timestamp, TokenScopes};
use scim_testkit::{Backend, TestServer};
use serde_json::json;
use time::Duration;

async fn events(s: &TestServer, q: EventQuery) -> Vec<Event> {
    s.store
        .events(s.tenant_id, &EventQuery { limit: 1000, ..q })
        .await
        .unwrap()
}

fn ops(evs: &[Event]) -> Vec<&'static str> {
    evs.iter().rev().map(|e| e.operation.as_str()).collect()
}

async fn every_change_and_failure_is_logged(backend: Backend) {
    let s = TestServer::start(backend).await;
    let tok = s.token.clone();
    let r = s
        .send(
            Method::POST,
            "/Users",
            Some(&tok),
            Some(&json!({"userName": "ann@example.com", "title": "Secret Title"})),
            &[("x-request-id", "req-42")],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-request-id"), Some("req-42"));
    let uid = r.body["id"].as_str().unwrap().to_string();
    let up = format!("/Users/{uid}");
    s.patch(
        &up,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    s.patch(
        &up,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;
    s.patch(
        &up,
        json!([{"op": "replace", "path": "title", "value": "Other Secret"}]),
    )
    .await;
    let g = s.post("/Groups", json!({"displayName": "Ops"})).await;
    let gp = format!("/Groups/{}", g.body["id"].as_str().unwrap());
    s.patch(
        &gp,
        json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
    )
    .await;
    s.patch(
        &gp,
        json!([{"op": "remove", "path": "members", "value": [{"value": uid}]}]),
    )
    .await;
    s.patch(
        &gp,
        json!([{"op": "replace", "path": "displayName", "value": "Ops 2"}]),
    )
    .await;
    assert_eq!(s.delete(&gp).await.status, 204);
    assert_eq!(s.delete(&up).await.status, 204);
    // Failures: duplicate, bad value (nothing else logged for it), forbidden, bad token, 404.
    s.post("/Users", json!({"userName": "dup"})).await;
    s.post("/Users", json!({"userName": "DUP"}))
        .await
        .assert_error(409, Some("uniqueness"));
    let dup_id = s.get("/Users?filter=userName eq \"dup\"").await.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.patch(
        &format!("/Users/{dup_id}"),
        json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let reader = s
        .issue(
            s.tenant_id,
            TokenScopes::parse_list(&["users:r"]).unwrap(),
            None,
        )
        .await;
    s.send(
        Method::POST,
        "/Users",
        Some(&reader),
        Some(&json!({"userName": "x"})),
        &[],
    )
    .await
    .assert_error(403, None);
    // A request that fails authentication is not logged for the tenant in its URL.
    s.send(Method::GET, "/Users", Some("scimd_wrong"), None, &[])
        .await
        .assert_error(401, None);
    s.get("/Users/nope").await.assert_error(404, None);
    // The tenant's slug percent-encoded still names it (decoded route parameters).
    let encoded = s.base.replace("/t/acme/", "/t/%61cme/");
    s.get(&format!("{encoded}/Users/{}", "x".repeat(5000)))
        .await
        .assert_error(404, None);

    let all = events(&s, EventQuery::default()).await;
    assert_eq!(
        ops(&all),
        [
            "Create User",
            "Deactivate User",
            "Reactivate User",
            "Update User",
            "Create Group",
            "Add Members",
            "Remove Members",
            "Update Group",
            "Delete Group",
            "Hard Delete User",
            "Create User",
            "Failure",
            "Failure",
            "Failure",
            "Failure",
            "Failure"
        ],
    );
    let first = all.last().unwrap();
    assert_eq!(first.request_id, "req-42");
    assert_eq!(first.token_name.as_deref(), Some("test"));
    assert_eq!(first.resource_name.as_deref(), Some("ann@example.com"));
    assert_eq!(first.resource_id.as_deref(), Some(uid.as_str()));
    assert_eq!(first.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(first.status, 201);
    let deleted = all
        .iter()
        .find(|e| e.operation == Operation::HardDeleteUser)
        .unwrap();
    assert_eq!(deleted.resource_name.as_deref(), Some("ann@example.com"));
    // Failure details.
    let failures = events(
        &s,
        EventQuery {
            outcome: Some(Outcome::Failure),
            ..Default::default()
        },
    )
    .await;
    let statuses: Vec<u16> = failures.iter().rev().map(|e| e.status).collect();
    assert_eq!(statuses, [409, 400, 403, 404, 404]);
    let f409 = failures.last().unwrap();
    assert_eq!(f409.scim_type.as_deref(), Some("uniqueness"));
    assert!(f409.detail.as_deref().unwrap().contains("DUP"));
    assert_eq!(f409.resource_type.as_deref(), Some("User"));
    assert_eq!(failures[2].token_name.as_deref(), Some("test"));
    assert_eq!(failures[1].resource_id.as_deref(), Some("nope"));
    assert_eq!(
        failures[0]
            .resource_id
            .as_ref()
            .map(|id| id.chars().count()),
        Some(200),
        "a client-sent id is stored bounded"
    );
    // Only identifiers, never other attribute values.
    let dump = serde_json::to_string(&all).unwrap();
    assert!(!dump.contains("Secret Title") && !dump.contains("Other Secret"));
    // Filters.
    let q = |operations: Vec<Operation>| EventQuery {
        operations,
        ..Default::default()
    };
    assert_eq!(
        events(&s, q(vec![Operation::CreateUser, Operation::CreateGroup]))
            .await
            .len(),
        3
    );
    assert_eq!(
        events(
            &s,
            EventQuery {
                resource: Some("ANN@example.com".into()),
                ..Default::default()
            }
        )
        .await
        .len(),
        5
    );
    assert_eq!(
        events(
            &s,
            EventQuery {
                resource: Some(uid.clone()),
                ..Default::default()
            }
        )
        .await
        .len(),
        5
    );
    assert_eq!(
        events(
            &s,
            EventQuery {
                token_name: Some("nobody".into()),
                ..Default::default()
            }
        )
        .await
        .len(),
        0
    );
    assert_eq!(
        events(
            &s,
            EventQuery {
                outcome: Some(Outcome::Success),
                ..Default::default()
            }
        )
        .await
        .len(),
        11
    );
    assert_eq!(
        events(
            &s,
            EventQuery {
                since: Some(Timestamp::now() + Duration::seconds(1)),
                ..Default::default()
            }
        )
        .await
        .len(),
        0
    );
    // Keyset paging, newest first, covers everything once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .store
            .events(
                s.tenant_id,
                &EventQuery {
                    limit: 4,
                    before_seq: before,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| e.seq);
        seen.extend(page.into_iter().map(|e| e.seq));
    }
    assert_eq!(seen, all.iter().map(|e| e.seq).collect::<Vec<_>>());
    // Another tenant's log is separate.
    let (other, _) = s.tenant("globex").await;
    assert!(
        s.store
            .events(
                other,
                &EventQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    s.finish().await;
}

async fn retention_sweep_deletes_only_old_events(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.user("recent").await;
    for age in [31, 45] {
        let e = Event {
            seq: 0,
            tenant_id: s.tenant_id,
            at: Timestamp::now() - Duration::days(age),
            operation: Operation::Failure,
            resource_type: None,
            resource_id: None,
            resource_name: None,
            status: 500,
            scim_type: None,
            detail: Some("old".into()),
            token_name: None,
            request_id: "old".into(),
            client_addr: None,
            method: None,
            change: None,
        };
        s.store.log_event(&e).await.unwrap();
    }
    assert_eq!(events(&s, EventQuery::default()).await.len(), 3);
    let deleted = s
        .store
        .sweep_events(Timestamp::now() - Duration::days(30), 1)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "batches are bounded");
    assert_eq!(
        s.store
            .sweep_events(Timestamp::now() - Duration::days(30), 100)
            .await
            .unwrap(),
        1
    );
    let left = events(&s, EventQuery::default()).await;
    assert_eq!(ops(&left), ["Create User"]);
    s.finish().await;
}

scim_testkit::both_backends! {
    log_events => super::every_change_and_failure_is_logged;
    log_retention => super::retention_sweep_deletes_only_old_events;
}
