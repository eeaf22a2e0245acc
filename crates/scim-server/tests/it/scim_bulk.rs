//! Bulk (RFC 7644 §3.7).

use scim_testkit::{Backend, TestServer};
use serde_json::json;

async fn bulk_with_bulk_id_references(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 5, "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "alice", "data": {"userName": "alice"}},
                {"method": "POST", "path": "/Groups", "bulkId": "team", "data": {"displayName": "Team", "members": [{"value": "bulkId:alice", "type": "User"}]}},
                {"method": "PATCH", "path": "/Users/bulkId:alice", "data": {"Operations": [{"op": "replace", "path": "nickName", "value": "Al"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "ALICE"}},
                {"method": "POST", "path": "/Groups", "data": {"displayName": "Ghosts", "members": [{"value": "bulkId:nobody"}]}},
                {"method": "DELETE", "path": "/Groups/bulkId:team"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["201", "201", "200", "409", "409", "204"],
        "{}",
        r.body
    );
    assert_eq!(ops[0]["bulkId"], "alice");
    assert!(ops[0]["location"].as_str().unwrap().contains("/Users/"));
    assert_eq!(ops[3]["response"]["scimType"], "uniqueness");
    let alice = s.get("/Users?filter=userName eq \"alice\"").await;
    assert_eq!(alice.body["Resources"][0]["nickName"], "Al");
    assert_eq!(s.get("/Groups").await.body["totalResults"], 0);
    // failOnErrors stops processing.
    let r = s
        .post(
            "/Bulk",
            json!({"failOnErrors": 1, "Operations": [
                {"method": "POST", "path": "/Users", "data": {"userName": "alice"}},
                {"method": "POST", "path": "/Users", "data": {"userName": "never"}}
            ]}),
        )
        .await;
    assert_eq!(r.body["Operations"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.get("/Users?filter=userName eq \"never\"").await.body["totalResults"],
        0
    );
    // Over maxOperations: 413.
    let many: Vec<_> = (0..1001)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let r = s.post("/Bulk", json!({"Operations": many})).await;
    r.assert_error(413, None);
    s.post("/Bulk", json!({"Operations": "x"}))
        .await
        .assert_error(400, Some("invalidSyntax"));
    s.finish().await;
}

scim_testkit::both_backends! {
    bulk => super::bulk_with_bulk_id_references;
}
