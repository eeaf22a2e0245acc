//! A recorded SCIM exchange, replayed and compared with `tests/golden/exchange.txt` byte for
//! byte (after replacing the values that differ between runs: generated ids, timestamps and
//! the port). Refactors must not change what goes over the wire; a deliberate change is
//! recorded again with `SCIMD_UPDATE_GOLDEN=1 cargo test -p scim-server golden`.

use reqwest::Method;
use scim_testkit::{Backend, TestServer};
use serde_json::json;
use std::collections::HashMap;

/// Replaces ids, timestamps and the server root with stable placeholders, numbering ids in
/// order of first appearance.
fn normalize(text: &str, root: &str, ids: &mut HashMap<String, usize>) -> String {
    let text = text.replace(root, "<root>");
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").unwrap();
    let text = uuid
        .replace_all(&text, |c: &regex::Captures| {
            let n = ids.len() + 1;
            format!("<id{}>", ids.entry(c[0].to_string()).or_insert(n))
        })
        .into_owned();
    time.replace_all(&text, "<time>").into_owned()
}

async fn exchange(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mut ids = HashMap::new();
    let mut out = String::new();
    let mut record = async |method: Method, path: &str, body: Option<serde_json::Value>| {
        let r = s
            .send(
                method.clone(),
                path,
                Some(&s.token.clone()),
                body.as_ref(),
                &[],
            )
            .await;
        let mut head = format!("{method} {path}\n{}\n", r.status.as_u16());
        for h in ["content-type", "etag", "location"] {
            if let Some(v) = r.header(h) {
                head.push_str(&format!("{h}: {v}\n"));
            }
        }
        let body = match &r.body {
            serde_json::Value::Null => String::new(),
            v => serde_json::to_string(v).unwrap(),
        };
        out.push_str(&normalize(&format!("{head}{body}\n\n"), &s.root, &mut ids));
        r
    };
    let user = record(
        Method::POST,
        "/Users",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User@example.com", "active": true,
            "emails": [{"primary": true, "type": "work", "value": "test@example.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Given Family", "familyName": "Family", "givenName": "Given"},
            "roles": [], "password": "secret-never-echoed",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42", "department": "R&D"}
        })),
    )
    .await;
    let uid = user.body["id"].as_str().unwrap().to_string();
    record(Method::GET, &format!("/Users/{uid}"), None).await;
    record(
        Method::GET,
        "/Users?filter=userName+eq+%22test_user%40example.com%22",
        None,
    )
    .await;
    record(
        Method::GET,
        "/Users?filter=userName%20eq%20%22nobody%22&startIndex=1&count=2",
        None,
    )
    .await;
    let patch = |ops: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    record(
        Method::PATCH,
        &format!("/Users/{uid}"),
        Some(patch(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1"}
        ]))),
    )
    .await;
    record(
        Method::PUT,
        &format!("/Users/{uid}"),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "Test_User@example.com", "displayName": "Put Name", "active": true})),
    )
    .await;
    let group = record(
        Method::POST,
        "/Groups",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Engineering", "members": []}),
        ),
    )
    .await;
    let gid = group.body["id"].as_str().unwrap().to_string();
    record(
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(patch(
            json!([{"op": "Add", "path": "members", "value": [{"value": uid}]}]),
        )),
    )
    .await;
    record(Method::GET, &format!("/Groups/{gid}"), None).await;
    record(
        Method::GET,
        &format!("/Groups/{gid}?excludedAttributes=members"),
        None,
    )
    .await;
    record(
        Method::GET,
        &format!("/Users/{uid}?attributes=userName,groups"),
        None,
    )
    .await;
    record(
        Method::POST,
        "/Users/.search",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "displayName sw \"Put\"", "attributes": ["userName"], "count": 5}),
        ),
    )
    .await;
    record(Method::GET, "/Users?cursor=&count=1&sortBy=userName", None).await;
    record(Method::GET, "/Users?filter=title%20eq", None).await;
    record(Method::GET, "/Users/does-not-exist", None).await;
    record(
        Method::POST,
        "/Users",
        Some(json!({"userName": "test_user@EXAMPLE.com"})),
    )
    .await;
    record(
        Method::POST,
        "/Bulk",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b1", "data": {"userName": "bulk@example.com"}},
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"displayName": "Bulk", "members": [{"value": "bulkId:b1"}]}},
            {"method": "DELETE", "path": "/Users/nope"}
        ]})),
    )
    .await;
    record(Method::POST, "/.search", Some(json!({"count": 10}))).await;
    record(Method::GET, "/ServiceProviderConfig", None).await;
    record(Method::GET, "/ResourceTypes", None).await;
    record(
        Method::GET,
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
        None,
    )
    .await;
    record(Method::DELETE, &format!("/Groups/{gid}"), None).await;
    record(Method::DELETE, &format!("/Users/{uid}"), None).await;
    record(Method::DELETE, &format!("/Users/{uid}"), None).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/exchange.txt");
    if std::env::var_os("SCIMD_UPDATE_GOLDEN").is_some() && backend == Backend::Sqlite {
        std::fs::write(path, &out).unwrap();
    } else {
        let want = std::fs::read_to_string(path).unwrap();
        for (i, (a, b)) in want.lines().zip(out.lines()).enumerate() {
            assert_eq!(a, b, "line {} of the golden exchange differs", i + 1);
        }
        assert_eq!(want, out, "the golden exchange differs in length");
    }
    s.finish().await;
}

scim_testkit::both_backends! {
    golden_exchange => super::exchange;
}
