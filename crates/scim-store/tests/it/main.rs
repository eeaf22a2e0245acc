//! Store tests on real databases: the store contract on SQLite and PostgreSQL, migrations,
//! durability across reopen, adoption of an old migration history, errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use scim_core::resource::IndexedFields;
use scim_core::{ResourceKind, ResourceStore, SchemaStore, TenantStore, Timestamp, Write};
use scim_store::SqlStore;
use serde_json::json;
use std::sync::Arc;

fn now_micros() -> Timestamp {
    Timestamp::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqlStore::connect(&format!("sqlite://{}/c.db", dir.path().display()), 2)
        .await
        .unwrap();
    s.migrate().await.unwrap();
    let s = Arc::new(s);
    scim_testkit::contract::run_all(s.clone()).await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_postgres() {
    if !scim_testkit::pg::available() {
        return;
    }
    let (name, url) = scim_testkit::pg::fresh_database().await;
    let s = Arc::new(SqlStore::connect(&url, 4).await.unwrap());
    s.migrate().await.unwrap();
    scim_testkit::contract::run_all(s.clone()).await;
    s.close().await;
    scim_testkit::pg::drop_database(&name).await;
}

/// A database written by a scimd before sqlx's migrator (history in `scimd_migrations`) is
/// adopted: nothing runs twice, the data stays.
#[tokio::test]
async fn an_old_migration_history_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE scimd_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);",
        )
        .unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for (i, f) in files.iter().enumerate() {
            c.execute_batch(&std::fs::read_to_string(f).unwrap())
                .unwrap();
            c.execute(
                "INSERT INTO scimd_migrations VALUES (?1, 0)",
                [i as i64 + 1],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO tenants (slug, name, created_at) VALUES ('kept', 'Kept', 0)",
            [],
        )
        .unwrap();
    }
    let s = SqlStore::connect(&format!("sqlite://{}", path.display()), 2)
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert!(s.tenant("kept").await.unwrap().is_some());
    s.close().await;
}

fn write(user_name: &str) -> Write {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name});
    Write {
        fields: IndexedFields::from_body(ResourceKind::User, &body),
        body,
        member_ops: vec![],
        log: None,
    }
}

#[tokio::test]
async fn data_survives_reopen_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/s.db", dir.path().display());
    {
        let s = SqlStore::connect(&url, 2).await.unwrap();
        s.migrate().await.unwrap();
        s.migrate().await.unwrap();
        let t = s.create_tenant("t1", "T1", now_micros()).await.unwrap();
        s.create(
            t.id,
            ResourceKind::User,
            "id-1",
            &write("kept"),
            now_micros(),
        )
        .await
        .unwrap();
        s.close().await;
    }
    let s = SqlStore::connect(&url, 2).await.unwrap();
    s.migrate().await.unwrap();
    let t = s.tenant("t1").await.unwrap().unwrap();
    let r = s
        .get(t.id, ResourceKind::User, "id-1", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.body["userName"], "kept");
    assert_eq!(r.version, 1);
    // Duplicate tenants are refused with a clear error.
    assert!(
        s.create_tenant("t1", "again", now_micros())
            .await
            .unwrap_err()
            .to_string()
            .contains("already exists")
    );
    // Deleting a tenant removes its resources.
    assert!(s.delete_tenant("t1").await.unwrap());
    assert!(
        s.get(t.id, ResourceKind::User, "id-1", false)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn unsupported_urls_are_config_errors() {
    let e = SqlStore::connect("mysql://localhost/x", 1)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("unsupported database URL"));
}

#[tokio::test]
async fn in_memory_evaluation_is_bounded() {
    use scim_core::Query;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqlStore::connect(&format!("sqlite://{}/s.db", dir.path().display()), 2)
        .await
        .unwrap();
    s.set_memory_scan_max(10);
    s.migrate().await.unwrap();
    let t = s.create_tenant("t1", "T1", now_micros()).await.unwrap();
    for i in 0..11 {
        s.create(
            t.id,
            ResourceKind::User,
            &format!("id-{i}"),
            &write(&format!("u{i}")),
            now_micros(),
        )
        .await
        .unwrap();
    }
    let q = |f: &str| Query {
        filter: Some(scim_proto::filter::parse(f).unwrap()),
        count: 100,
        ..Default::default()
    };
    // Indexed: answered in SQL whatever the size.
    assert_eq!(
        s.query(t.id, ResourceKind::User, &q("userName sw \"u\""))
            .await
            .unwrap()
            .total,
        11
    );
    // Needs memory over 11 rows: refused with tooMany, not loaded.
    let e = s
        .query(t.id, ResourceKind::User, &q("title pr"))
        .await
        .unwrap_err()
        .to_scim();
    assert_eq!(e.scim_type, Some(scim_proto::ScimType::TooMany), "{e}");
    // Narrowed by an indexed attribute, it is fine again.
    assert_eq!(
        s.query(
            t.id,
            ResourceKind::User,
            &q("userName eq \"u1\" and not (title pr)")
        )
        .await
        .unwrap()
        .total,
        1
    );
}

/// SQLite caches unfiltered counts; they stay exact through creates, failed creates, deletes,
/// concurrent creates and tenant deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_counts_stay_exact() {
    use scim_core::Query;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(
        SqlStore::connect(&format!("sqlite://{}/s.db", dir.path().display()), 2)
            .await
            .unwrap(),
    );
    s.migrate().await.unwrap();
    let t = s.create_tenant("t1", "T1", now_micros()).await.unwrap();
    let page = Query {
        count: 2,
        cursor: Some(None),
        ..Default::default()
    };
    let total = |s: Arc<SqlStore>| {
        let page = page.clone();
        async move {
            s.query(t.id, ResourceKind::User, &page)
                .await
                .unwrap()
                .total
        }
    };
    for i in 0..5 {
        s.create(
            t.id,
            ResourceKind::User,
            &format!("id-{i}"),
            &write(&format!("u{i}")),
            now_micros(),
        )
        .await
        .unwrap();
    }
    assert_eq!(total(s.clone()).await, 5, "counted, then cached");
    assert_eq!(total(s.clone()).await, 5);
    // A duplicate userName fails: no change.
    assert!(
        s.create(t.id, ResourceKind::User, "id-x", &write("u0"), now_micros())
            .await
            .is_err()
    );
    assert_eq!(total(s.clone()).await, 5);
    // Concurrent creates while lists run.
    let mut tasks = Vec::new();
    for i in 5..45 {
        let s1 = s.clone();
        tasks.push(tokio::spawn(async move {
            s1.create(
                t.id,
                ResourceKind::User,
                &format!("id-{i}"),
                &write(&format!("u{i}")),
                now_micros(),
            )
            .await
            .unwrap();
        }));
        let s2 = s.clone();
        let page = page.clone();
        tasks.push(tokio::spawn(async move {
            s2.query(t.id, ResourceKind::User, &page).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(total(s.clone()).await, 45);
    assert!(
        s.delete(t.id, ResourceKind::User, "id-3", None, now_micros())
            .await
            .unwrap()
    );
    assert!(
        !s.delete(t.id, ResourceKind::User, "id-3", None, now_micros())
            .await
            .unwrap()
    );
    assert_eq!(total(s.clone()).await, 44);
    // Groups are counted apart.
    assert_eq!(
        s.query(t.id, ResourceKind::Group, &page)
            .await
            .unwrap()
            .total,
        0
    );
    s.delete_tenant("t1").await.unwrap();
    let t2 = s.create_tenant("t1", "again", now_micros()).await.unwrap();
    assert_eq!(
        s.query(t2.id, ResourceKind::User, &page)
            .await
            .unwrap()
            .total,
        0
    );
}

/// Two nodes on one PostgreSQL database write changes to one tenant while a consumer on a
/// third connection tails the feed: the change feed is numbered after commit by whichever
/// node gets there first, and still every change is one sequence, 1, 2, 3, … with no gap and
/// no repeat, and a consumer never steps past a change (docs/events.md, "Ordering").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_number_one_tenants_feed_without_gaps() {
    use scim_core::event::{LogEntry, Operation, RequestContext};
    use scim_core::{EventStore, Timestamp};
    use std::sync::atomic::{AtomicBool, Ordering};
    if !scim_testkit::pg::available() {
        return;
    }
    let (name, url) = scim_testkit::pg::fresh_database().await;
    let a = Arc::new(SqlStore::connect(&url, 8).await.unwrap());
    a.migrate().await.unwrap();
    let b = Arc::new(SqlStore::connect(&url, 8).await.unwrap());
    let reader = Arc::new(SqlStore::connect(&url, 2).await.unwrap());
    let t = a
        .create_tenant("acme", "Acme", Timestamp::now())
        .await
        .unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let tail = {
        let (reader, writing) = (reader.clone(), writing.clone());
        tokio::spawn(async move {
            let (mut seen, mut after) = (Vec::new(), 0i64);
            loop {
                let last_round = !writing.load(Ordering::SeqCst);
                let rows = reader.changes(t.id, after, 40).await.unwrap();
                for e in &rows {
                    let ch = e.change.as_ref().unwrap();
                    seen.push(ch.last_seq);
                    after = ch.last_seq;
                }
                if last_round && rows.is_empty() {
                    return seen;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..12 {
        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                let mut wr = write(&format!("w{w}-{i}@example.com"));
                wr.log = Some(LogEntry {
                    operation: Operation::CreateUser,
                    status: 201,
                    ctx: RequestContext {
                        request_id: format!("r-{w}-{i}"),
                        ..Default::default()
                    },
                });
                node.create(
                    t.id,
                    ResourceKind::User,
                    &format!("id-{w}-{i}"),
                    &wr,
                    Timestamp::now(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, Ordering::SeqCst);
    let seen = tail.await.unwrap();
    assert_eq!(seen, (1..=600).collect::<Vec<i64>>());
    let bounds = b.change_bounds(t.id).await.unwrap();
    assert_eq!((bounds.first, bounds.head), (1, 600));
    for s in [a, b, reader] {
        s.close().await;
    }
    scim_testkit::pg::drop_database(&name).await;
}
