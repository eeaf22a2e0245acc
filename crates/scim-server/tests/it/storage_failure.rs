//! A database that fails under a live server: the client gets a 500 with a SCIM body (never a
//! 4xx, never internal text), and nothing of the failed request is written.
//!
//! The fault is injected in the database itself: a trigger that aborts every insert into the
//! provisioning log, so a create fails after its resource row was written, inside the same
//! transaction (SQLite: inside the writer's group commit).

use scim_testkit::{Backend, TestServer};
use serde_json::json;
use sqlx::{Connection, Executor};

async fn sql(backend: Backend, url: &str, statements: &[&str]) {
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            for s in statements {
                c.execute(*s).await.unwrap();
            }
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            for s in statements {
                c.execute(*s).await.unwrap();
            }
        }
    }
}

async fn failing_database(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.user("before").await;
    let inject: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER injected_fault BEFORE INSERT ON provisioning_events \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER injected_fault BEFORE INSERT ON provisioning_events \
             FOR EACH ROW EXECUTE FUNCTION injected_fault()",
        ],
    };
    sql(backend, &s.database_url, inject).await;
    let r = s
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "lost"}),
        )
        .await;
    r.assert_error(500, None);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("injected"),
        "internal text leaked: {detail}"
    );
    assert!(r.header("x-request-id").is_some());
    // A PATCH fails the same way, and leaves the user as it was.
    let id = s
        .get("/Users?filter=userName%20eq%20%22before%22")
        .await
        .body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "changed"}]),
        )
        .await;
    r.assert_error(500, None);
    // Reads still work; nothing of the failed writes is there.
    let r = s.get("/Users?filter=userName%20eq%20%22lost%22").await;
    assert_eq!(
        (r.status.as_u16(), &r.body["totalResults"]),
        (200, &json!(0))
    );
    let r = s.get(&format!("/Users/{id}")).await;
    assert_eq!(
        (r.body["meta"]["version"].as_str(), r.body.get("title")),
        (Some("W/\"1\""), None)
    );
    // With the fault gone, the same create succeeds.
    sql(
        backend,
        &s.database_url,
        &["DROP TRIGGER injected_fault ON provisioning_events"].map(|q| {
            if backend == Backend::Sqlite {
                "DROP TRIGGER injected_fault"
            } else {
                q
            }
        }),
    )
    .await;
    s.user("lost").await;
    s.finish().await;
}

scim_testkit::both_backends! {
    storage_failure_is_a_500_and_writes_nothing => super::failing_database;
}
