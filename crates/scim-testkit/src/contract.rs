//! The store contract: what every `scim_core::Store` must do, checked against a real
//! database. `scim-store`'s tests run [`run_all`] on a SQLite file and on PostgreSQL.

use scim_core::event::{Event, EventQuery, LogEntry, Operation, RequestContext};
use scim_core::operator::SessionRecord;
use scim_core::resource::IndexedFields;
use scim_core::token::{hash_secret, issue};
use scim_core::{CoreError, MemberOp, Query, ResourceKind, Store, Timestamp, TokenScopes, Write};
use scim_proto::cursor::Cursor;
use serde_json::json;
use std::sync::Arc;
use time::Duration;

fn user(name: &str) -> Write {
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                      "userName": name, "emails": [{"value": format!("{name}@x.example")}]});
    Write {
        fields: IndexedFields::from_body(ResourceKind::User, &body),
        body,
        member_ops: vec![],
        log: None,
    }
}

fn group(name: &str, members: &[&str]) -> Write {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name});
    Write {
        fields: IndexedFields::from_body(ResourceKind::Group, &body),
        body,
        member_ops: vec![MemberOp::Add(
            members.iter().map(|s| s.to_string()).collect(),
        )],
        log: Some(LogEntry {
            operation: Operation::CreateGroup,
            status: 201,
            ctx: RequestContext {
                request_id: "r-1".into(),
                ..Default::default()
            },
        }),
    }
}

/// Every contract check, in order, on a fresh, migrated store.
pub async fn run_all(store: Arc<dyn Store>) {
    tenants(&store).await;
    tokens(&store).await;
    refused_credentials(&store).await;
    resources(&store).await;
    relations_and_concurrent_modifies(&store).await;
    concurrent_creates(&store).await;
    email_rows_follow_writes(&store).await;
    events_and_leases(&store).await;
    crate::contract_sync::run_all(&store).await;
    operators_and_sessions(&store).await;
    crate::contract_access::run_all(&store).await;
}

async fn tenants(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let a = s.create_tenant("c-one", "One", now).await.unwrap();
    assert_eq!((a.slug.as_str(), a.name.as_str()), ("c-one", "One"));
    assert!(matches!(
        s.create_tenant("c-one", "again", now).await,
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(s.tenant("c-one").await.unwrap(), Some(a.clone()));
    assert!(s.tenant("c-none").await.unwrap().is_none());
    s.create_tenant("c-two", "Two", now).await.unwrap();
    let slugs: Vec<String> = s
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert!(slugs.contains(&"c-one".into()) && slugs.contains(&"c-two".into()));
    assert!(s.delete_tenant("c-two").await.unwrap());
    assert!(!s.delete_tenant("c-two").await.unwrap());
}

async fn tokens(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = s.tenant("c-one").await.unwrap().unwrap();
    let issued = issue(t.id, "idp", TokenScopes::all(), None, now).unwrap();
    s.insert_token(&issued.record).await.unwrap();
    let hash = hash_secret(&issued.secret);
    assert_eq!(
        s.token_by_hash(&hash).await.unwrap(),
        Some(issued.record.clone())
    );
    assert!(s.token_by_hash("nope").await.unwrap().is_none());
    let until = now + Duration::hours(1);
    assert!(
        s.rotate_token(t.id, &issued.record.id, "h2", "p2", until)
            .await
            .unwrap()
    );
    let rotated = s.token_by_hash(&hash).await.unwrap().unwrap();
    assert_eq!(rotated.previous_valid_until, Some(until));
    assert_eq!(
        s.token_by_hash("h2").await.unwrap().unwrap().id,
        issued.record.id
    );
    s.touch_token(&issued.record.id, now).await.unwrap();
    assert!(
        !s.revoke_token(t.id + 1000, &issued.record.id, now)
            .await
            .unwrap(),
        "other tenant"
    );
    assert!(s.revoke_token(t.id, &issued.record.id, now).await.unwrap());
    assert!(
        !s.rotate_token(t.id, &issued.record.id, "h3", "p3", until)
            .await
            .unwrap()
    );
    let list = s.tokens(t.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].last_used_at, Some(now));
    assert!(list[0].revoked_at.is_some());
}

/// Refused-credential counts add up per tenant, hour and reason; each tenant reads only
/// its own; the sweep drops whole past hours; deleting a tenant drops its counts.
async fn refused_credentials(s: &Arc<dyn Store>) {
    use scim_core::refused::hour_of;
    use scim_core::{Refusal, RefusedCount};
    let one = s.tenant("c-one").await.unwrap().unwrap();
    let other = s
        .create_tenant("c-refused", "R", Timestamp::now())
        .await
        .unwrap();
    let now = Timestamp::now();
    let earlier = now - Duration::hours(3);
    let count = |tenant_id, at: Timestamp, reason, count| RefusedCount {
        tenant_id,
        hour: hour_of(at),
        reason,
        count,
        last_at: at,
    };
    s.add_refused(&[
        count(one.id, now, Refusal::Revoked, 2),
        count(one.id, earlier, Refusal::Revoked, 1),
        count(other.id, now, Refusal::Missing, 7),
    ])
    .await
    .unwrap();
    s.add_refused(&[count(one.id, now, Refusal::Revoked, 3)])
        .await
        .unwrap();
    let mine = s.refused(one.id, now - Duration::hours(1)).await.unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!((mine[0].reason, mine[0].count), (Refusal::Revoked, 5));
    assert_eq!(mine[0].last_at, now);
    assert_eq!(s.refused(one.id, earlier).await.unwrap().len(), 2);
    assert!(s.sweep_refused(now - Duration::hours(1)).await.unwrap() >= 1);
    assert_eq!(s.refused(one.id, earlier).await.unwrap().len(), 1);
    assert!(s.delete_tenant("c-refused").await.unwrap());
    assert!(s.refused(other.id, earlier).await.unwrap().is_empty());
    // Counts of a tenant deleted since are skipped; the others' still land.
    s.add_refused(&[
        count(other.id, now, Refusal::Missing, 1),
        count(one.id, now, Refusal::Expired, 1),
    ])
    .await
    .unwrap();
    assert!(s.refused(other.id, earlier).await.unwrap().is_empty());
    assert_eq!(s.refused(one.id, now).await.unwrap().len(), 2);
    s.sweep_refused(now + Duration::hours(2)).await.unwrap();
}

async fn resources(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = s.tenant("c-one").await.unwrap().unwrap();
    let other = s.create_tenant("c-other", "Other", now).await.unwrap();
    let u1 = s
        .create(t.id, ResourceKind::User, "u-1", &user("ada"), now)
        .await
        .unwrap();
    assert_eq!((u1.version, u1.created_at), (1, now));
    s.create(t.id, ResourceKind::User, "u-2", &user("bob"), now)
        .await
        .unwrap();
    // The same userName in another tenant is fine; in this one, case-insensitively, not.
    s.create(other.id, ResourceKind::User, "o-1", &user("ada"), now)
        .await
        .unwrap();
    assert!(matches!(
        s.create(t.id, ResourceKind::User, "u-3", &user("ADA"), now)
            .await,
        Err(CoreError::Conflict(_))
    ));
    // Tenants never see each other.
    assert!(
        s.get(other.id, ResourceKind::User, "u-1", false)
            .await
            .unwrap()
            .is_none()
    );
    let g = s
        .create(
            t.id,
            ResourceKind::Group,
            "g-1",
            &group("Eng", &["u-1", "u-2"]),
            now,
        )
        .await
        .unwrap();
    assert_eq!(g.members.as_ref().map(Vec::len), Some(2));
    // A member from another tenant is refused, and nothing is written.
    assert!(matches!(
        s.create(t.id, ResourceKind::Group, "g-2", &group("Bad", &["o-1"]), now).await,
        Err(CoreError::Scim(e)) if e.status == 400
    ));
    assert!(
        s.get(t.id, ResourceKind::Group, "g-2", false)
            .await
            .unwrap()
            .is_none()
    );
    let groups = s.groups_of(t.id, &["u-1".into()]).await.unwrap();
    assert_eq!(groups["u-1"][0].display, "Eng");
    // Read-modify-write: the modifier sees the current version; its error aborts.
    let later = now + Duration::seconds(1);
    let m = s
        .modify(
            t.id,
            ResourceKind::User,
            "u-1",
            false,
            Arc::new(|cur| {
                let mut w = user("ada");
                w.body["title"] = json!(format!("v{}", cur.version));
                Ok(w)
            }),
            later,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.version, m.body["title"].as_str(), m.modified_at),
        (2, Some("v1"), later)
    );
    let refused = s
        .modify(
            t.id,
            ResourceKind::User,
            "u-1",
            false,
            Arc::new(|_| Err(CoreError::Invalid("no".into()))),
            later,
        )
        .await;
    assert!(matches!(refused, Err(CoreError::Invalid(_))));
    assert_eq!(
        s.get(t.id, ResourceKind::User, "u-1", false)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // Queries: filter in SQL, counts, keyset cursors.
    let q = Query {
        filter: Some(scim_proto::filter::parse("userName eq \"BOB\"").unwrap()),
        count: 10,
        ..Default::default()
    };
    let r = s.query(t.id, ResourceKind::User, &q).await.unwrap();
    assert_eq!((r.total, r.resources[0].id.as_str()), (1, "u-2"));
    let mut cursor = Some(None);
    let mut seen = Vec::new();
    while let Some(c) = cursor {
        let q = Query {
            count: 1,
            cursor: Some(c),
            ..Default::default()
        };
        let r = s.query(t.id, ResourceKind::User, &q).await.unwrap();
        seen.extend(r.resources.into_iter().map(|x| x.id));
        cursor = r.next_cursor.map(Some);
        assert!(seen.len() <= 2);
    }
    assert_eq!(seen, ["u-1", "u-2"]);
    let foreign = Query {
        count: 1,
        cursor: Some(Some(Cursor::Offset(1))),
        ..Default::default()
    };
    assert!(s.query(t.id, ResourceKind::User, &foreign).await.is_err());
    // Deleting a user removes it from its groups.
    assert!(
        s.delete(t.id, ResourceKind::User, "u-2", None, now)
            .await
            .unwrap()
    );
    assert!(
        !s.delete(t.id, ResourceKind::User, "u-2", None, now)
            .await
            .unwrap()
    );
    let g = s
        .get(t.id, ResourceKind::Group, "g-1", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.members.unwrap().len(), 1);
}

/// A user read with its relations carries its groups (what `groups_of` answers, in its
/// order) from `get`, `query`, `modify` and `create`; concurrent modifications of one user
/// are never lost (each one sees the version the one before it wrote).
async fn relations_and_concurrent_modifies(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = s.create_tenant("c-rel", "Relations", now).await.unwrap();
    let fresh = s
        .create(t.id, ResourceKind::User, "r-1", &user("rel-ada"), now)
        .await
        .unwrap();
    assert_eq!(fresh.groups, Some(vec![]), "a new user is in no group");
    s.create(t.id, ResourceKind::User, "r-2", &user("rel-bob"), now)
        .await
        .unwrap();
    for (id, name, members) in [
        ("rg-1", "Zeta", &["r-1", "r-2"][..]),
        ("rg-2", "alpha", &["r-1"][..]),
    ] {
        s.create(t.id, ResourceKind::Group, id, &group(name, members), now)
            .await
            .unwrap();
    }
    let expected = s.groups_of(t.id, &["r-1".into()]).await.unwrap()["r-1"].clone();
    let names: Vec<&str> = expected.iter().map(|g| g.display.as_str()).collect();
    assert_eq!(names, ["alpha", "Zeta"], "groups_of orders by displayName");
    let got = s.get(t.id, ResourceKind::User, "r-1", true).await.unwrap();
    assert_eq!(got.unwrap().groups.as_ref(), Some(&expected));
    let plain = s.get(t.id, ResourceKind::User, "r-1", false).await.unwrap();
    assert_eq!(plain.unwrap().groups, None, "not read unless asked for");
    let q = Query {
        filter: Some(scim_proto::filter::parse("userName sw \"rel-\"").unwrap()),
        count: 10,
        related: true,
        ..Default::default()
    };
    let found = s.query(t.id, ResourceKind::User, &q).await.unwrap();
    let by_id: Vec<(&str, usize)> = found
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r.groups.as_ref().map_or(99, Vec::len)))
        .collect();
    assert_eq!(by_id, [("r-1", 2), ("r-2", 1)]);
    assert_eq!(found.resources[0].groups.as_ref(), Some(&expected));
    let m = s
        .modify(
            t.id,
            ResourceKind::User,
            "r-1",
            true,
            Arc::new(|_| Ok(user("rel-ada"))),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.groups.as_ref(), Some(&expected));
    // Concurrent modifications of one user: each appends its number to a list in the body.
    const WRITERS: i64 = 24;
    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.modify(
                t.id,
                ResourceKind::User,
                "r-2",
                false,
                Arc::new(move |cur| {
                    let mut w = user("rel-bob");
                    let mut seen = cur.body["nickName"].as_str().unwrap_or("").to_string();
                    seen += &format!("{n},");
                    w.body["nickName"] = json!(seen);
                    Ok(w)
                }),
                now,
            )
            .await
            .unwrap()
            .unwrap()
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().version);
    }
    versions.sort_unstable();
    let want: Vec<i64> = (2..=WRITERS + 1).collect();
    assert_eq!(versions, want, "every write got a version of its own");
    let last = s
        .get(t.id, ResourceKind::User, "r-2", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.version, WRITERS + 1);
    let mut seen: Vec<i64> = last.body["nickName"]
        .as_str()
        .unwrap()
        .split_terminator(',')
        .map(|n| n.parse().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..WRITERS).collect::<Vec<_>>(), "no write was lost");
}

/// The ids of the tenant's users with this email (`emails.value eq`, which reads the
/// email rows, not the bodies).
async fn ids_by_email(s: &Arc<dyn Store>, tenant_id: i64, email: &str) -> Vec<String> {
    let q = Query {
        filter: Some(scim_proto::filter::parse(&format!("emails.value eq \"{email}\"")).unwrap()),
        count: 10,
        ..Default::default()
    };
    let found = s.query(tenant_id, ResourceKind::User, &q).await.unwrap();
    found.resources.into_iter().map(|r| r.id).collect()
}

/// A user's email rows follow its writes: a write that leaves the emails as they were
/// keeps them (once each), one that changes them replaces them, one that drops them
/// removes them.
async fn email_rows_follow_writes(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = s.create_tenant("c-mail", "Mail", now).await.unwrap();
    s.create(t.id, ResourceKind::User, "e-1", &user("eve"), now)
        .await
        .unwrap();
    let with_emails = |emails: serde_json::Value| {
        move |_: &scim_core::StoredResource| {
            let mut w = user("eve");
            w.body["title"] = json!("changed");
            w.body["emails"] = emails.clone();
            w.fields = IndexedFields::from_body(ResourceKind::User, &w.body);
            Ok(w)
        }
    };
    let steps = [
        (
            json!([{"value": "eve@x.example"}]),
            vec!["eve@x.example"],
            vec![],
        ),
        (
            json!([{"value": "Eve.New@x.example"}, {"value": "eve2@x.example"}]),
            vec!["eve.new@x.example", "eve2@x.example"],
            vec!["eve@x.example"],
        ),
        (
            json!([{"value": "Eve.New@x.example"}, {"value": "eve2@x.example"}]),
            vec!["eve.new@x.example", "eve2@x.example"],
            vec![],
        ),
        (
            json!([]),
            vec![],
            vec!["eve.new@x.example", "eve2@x.example"],
        ),
    ];
    for (i, (emails, present, gone)) in steps.into_iter().enumerate() {
        s.modify(
            t.id,
            ResourceKind::User,
            "e-1",
            false,
            Arc::new(with_emails(emails)),
            now,
        )
        .await
        .unwrap()
        .unwrap();
        for e in present {
            assert_eq!(ids_by_email(s, t.id, e).await, ["e-1"], "step {i}: {e}");
        }
        for e in gone {
            assert!(ids_by_email(s, t.id, e).await.is_empty(), "step {i}: {e}");
        }
    }
}

/// Creates that arrive together (PostgreSQL writes them in one statement, SQLite in one
/// transaction) each get their own outcome: a taken userName, taken before or by another
/// create of the same moment, is refused alone; every accepted create has its email rows
/// and its log event, and no refused one leaves either.
async fn concurrent_creates(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = s.create_tenant("c-many", "Many", now).await.unwrap();
    s.create(t.id, ResourceKind::User, "m-old", &user("taken"), now)
        .await
        .unwrap();
    const CREATES: usize = 60;
    let name = |i: usize| match i % 6 {
        0 => "raced".to_string(),
        3 => "TAKEN".to_string(),
        _ => format!("many-{i}"),
    };
    let mut tasks = Vec::new();
    for i in 0..CREATES {
        let (s, name) = (s.clone(), name(i));
        tasks.push(tokio::spawn(async move {
            let mut w = user(&name);
            w.log = Some(LogEntry {
                operation: Operation::CreateUser,
                status: 201,
                ctx: RequestContext {
                    request_id: format!("r-many-{i}"),
                    ..Default::default()
                },
            });
            s.create(t.id, ResourceKind::User, &format!("m-{i}"), &w, now)
                .await
        }));
    }
    let mut created = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(r) => created.push((name(i), r.id)),
            Err(CoreError::Conflict(msg)) => assert!(msg.contains("already taken"), "{msg}"),
            Err(e) => panic!("create {i}: {e}"),
        }
    }
    let unique = (0..CREATES).filter(|i| i % 6 != 0 && i % 6 != 3).count();
    let raced = created.iter().filter(|(n, _)| n == "raced").count();
    assert_eq!(raced, 1, "exactly one of the same-named creates wins");
    assert_eq!(created.len(), unique + 1);
    assert!(created.iter().all(|(n, _)| n != "TAKEN"));
    let all = Query {
        count: 1000,
        ..Default::default()
    };
    let stored = s.query(t.id, ResourceKind::User, &all).await.unwrap();
    assert_eq!(stored.total as usize, unique + 2);
    for (n, id) in &created {
        let ids = ids_by_email(s, t.id, &format!("{n}@x.example")).await;
        assert_eq!(ids, [id.as_str()], "the email rows of {n}");
    }
    let logged = s
        .events(
            t.id,
            &EventQuery {
                operations: vec![Operation::CreateUser],
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut logged: Vec<String> = logged.into_iter().filter_map(|e| e.resource_id).collect();
    let mut want: Vec<String> = created.iter().map(|(_, id)| id.clone()).collect();
    logged.sort();
    want.sort();
    assert_eq!(
        logged, want,
        "one event per accepted create, none for a refused one"
    );
}

async fn events_and_leases(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = s.tenant("c-one").await.unwrap().unwrap();
    let e = Event {
        seq: 0,
        tenant_id: t.id,
        at: now - Duration::days(40),
        operation: Operation::Failure,
        resource_type: Some("User".into()),
        resource_id: Some("x".into()),
        resource_name: None,
        status: 404,
        scim_type: None,
        detail: Some("gone".into()),
        token_name: None,
        request_id: "r-2".into(),
        client_addr: None,
        method: None,
        change: None,
    };
    s.log_event(&e).await.unwrap();
    let all = s
        .events(
            t.id,
            &EventQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        2,
        "the group create logged in its transaction, and the failure"
    );
    assert_eq!(
        all[0].operation,
        Operation::Failure,
        "newest first by sequence"
    );
    let counts = s.event_counts(t.id, now - Duration::days(1)).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        s.sweep_events(now - Duration::days(30), 100).await.unwrap(),
        1
    );
    let until = now + Duration::minutes(1);
    assert!(s.try_lease("c-lease", "a", now, until).await.unwrap());
    assert!(!s.try_lease("c-lease", "b", now, until).await.unwrap());
    assert!(
        s.try_lease("c-lease", "a", now, until).await.unwrap(),
        "renewal"
    );
    assert!(
        s.try_lease(
            "c-lease",
            "b",
            until + Duration::seconds(1),
            until + Duration::minutes(2)
        )
        .await
        .unwrap(),
        "expired"
    );
    let held = s.lease("c-lease").await.unwrap().unwrap();
    assert_eq!(
        (held.holder.as_str(), held.expires_at),
        ("b", until + Duration::minutes(2))
    );
    assert!(s.lease("c-no-lease").await.unwrap().is_none());
    s.ping().await.unwrap();
}

async fn operators_and_sessions(s: &Arc<dyn Store>) {
    let now = Timestamp::now();
    let op = s
        .create_operator("c-alice", "$argon2id$x", now)
        .await
        .unwrap();
    assert!(matches!(
        s.create_operator("c-alice", "$argon2id$y", now).await,
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(s.operator_login_failed(op.id).await.unwrap(), 1);
    assert_eq!(s.operator_login_failed(op.id).await.unwrap(), 2);
    s.lock_operator(op.id, now + Duration::minutes(1))
        .await
        .unwrap();
    let session = SessionRecord {
        id_hash: "sess".into(),
        operator_id: op.id,
        csrf_token: "csrf".into(),
        created_at: now,
        expires_at: now + Duration::hours(1),
    };
    s.insert_session(&session).await.unwrap();
    let (found, who) = s.session("sess", now).await.unwrap().unwrap();
    assert_eq!(
        (found, who.username.as_str(), who.failed_logins),
        (session, "c-alice", 2)
    );
    assert!(
        s.session("sess", now + Duration::hours(2))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    s.operator_login_succeeded(op.id, now).await.unwrap();
    let back = s.operator_by_name("c-alice").await.unwrap().unwrap();
    assert_eq!((back.failed_logins, back.locked_until), (0, None));
    // A new password ends the operator's sessions.
    assert!(
        s.set_operator_password("c-alice", "$argon2id$z")
            .await
            .unwrap()
    );
    assert!(s.session("sess", now).await.unwrap().is_none());
    assert_eq!(s.sweep_sessions(now).await.unwrap(), 0);
    assert!(s.delete_operator("c-alice").await.unwrap());
    assert!(
        s.operators()
            .await
            .unwrap()
            .iter()
            .all(|o| o.username != "c-alice")
    );
}
