//! Regression tests for the engine's promises as they were found broken from outside
//! (issue 30): each test reproduces one defect the way it was reported and failed before
//! its fix. A real scimd (HTTP on loopback) is the hub and the target; a fault gateway
//! stands between the engine and the target where the defect needs a fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use scim_core::SyncStore;
use scim_sync::JobSpec;
use scim_testkit::faults::{FaultTarget, Faults};
use scim_testkit::{Backend, both_backends};
use serde_json::{Value, json};
use support::Fixture;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Three users and a group of them in the hub tenant (`acme`); their ids.
async fn hub_people(f: &Fixture) -> Vec<String> {
    let s = &f.server;
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let r = s
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": format!("{name}@example.com")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    let g = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Staff", "members": members}),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    ids
}

/// Defect 1, as reported: a `tenant = "hub"` job; three users; run; DELETE one at the hub;
/// run (disabled at the app); run again — it was active again and back in its group. It
/// must stay disabled and out of the group until the deprovisioning delay deletes it, and
/// stay gone after that.
async fn deleted_at_a_tenant_source_stays_deleted(backend: Backend) {
    let f = Fixture::new(backend).await;
    let ids = hub_people(&f).await;
    let spec = JobSpec::parse(
        &format!(
            "name = \"hub-to-app\"\n[source]\nkind = \"tenant\"\ntenant = \"acme\"\n\
             [target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n",
            f.app, f.app_token
        ),
        None,
    )
    .unwrap();
    f.run(&spec).await;
    assert_eq!(f.group_members("Staff").await.len(), 3);
    assert_eq!(
        f.server.delete(&format!("/Users/{}", ids[1])).await.status,
        204
    );
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Disable),
        Some(&1),
        "{r:?}"
    );
    for round in 0..3 {
        f.advance(time::Duration::hours(1));
        let r = f.run(&spec).await;
        assert_eq!(r.counts.requests, 0, "round {round}: {r:?}");
        let bob = f.user("bob@example.com").await.unwrap();
        assert_eq!(
            bob["active"], false,
            "round {round}: the leaver is back: {bob}"
        );
        assert_eq!(
            f.group_members("Staff").await,
            ["ann@example.com", "cy@example.com"],
            "round {round}"
        );
    }
    // The default `deleted = disable_then_delete 30d`: deleted after 30 days, and gone.
    f.advance(time::Duration::days(31));
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Delete),
        Some(&1),
        "{r:?}"
    );
    for _ in 0..2 {
        let r = f.run(&spec).await;
        assert_eq!(r.counts.requests, 0, "{r:?}");
        assert!(f.user("bob@example.com").await.is_none());
    }
    // A full read of the hub (every 24 h) finds the same: nothing comes back.
    f.advance(time::Duration::hours(25));
    let r = f.run(&spec).await;
    assert_eq!(r.counts.requests, 0, "{r:?}");
    assert!(f.user("bob@example.com").await.is_none());
    f.server.finish().await;
}

/// Defect 1 through a SCIM source: deletes are found by the full read every 24 hours; the
/// incremental reads after it must not bring the person back.
async fn deleted_at_a_scim_source_stays_deleted(backend: Backend) {
    let f = Fixture::new(backend).await;
    let ids = hub_people(&f).await;
    let spec = JobSpec::parse(
        &format!(
            "name = \"scim-to-app\"\n[source]\nkind = \"scim\"\nurl = \"{}\"\ntoken = \"{}\"\n\
             [target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n",
            f.server.base, f.server.token, f.app, f.app_token
        ),
        None,
    )
    .unwrap();
    f.run(&spec).await;
    assert_eq!(
        f.server.delete(&format!("/Users/{}", ids[0])).await.status,
        204
    );
    f.advance(time::Duration::hours(25));
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Disable),
        Some(&1),
        "{r:?}"
    );
    for round in 0..2 {
        f.advance(time::Duration::minutes(40));
        f.run(&spec).await;
        let ann = f.user("ann@example.com").await.unwrap();
        assert_eq!(
            ann["active"], false,
            "round {round}: the leaver is back: {ann}"
        );
        assert_eq!(
            f.group_members("Staff").await,
            ["bob@example.com", "cy@example.com"]
        );
    }
    f.server.finish().await;
}

both_backends! {
    a_person_deleted_at_a_tenant_source_stays_deleted => super::deleted_at_a_tenant_source_stays_deleted;
    a_person_deleted_at_a_scim_source_stays_deleted => super::deleted_at_a_scim_source_stays_deleted;
}

fn csv_people(dir: &std::path::Path, n: usize) {
    let mut s = String::from("employee_id,userName,name.givenName,name.familyName,groups\n");
    for i in 0..n {
        s.push_str(&format!("{i},u{i:03}@example.com,U,Family{i},team\n"));
    }
    std::fs::write(dir.join("people.csv"), s).unwrap();
}

fn csv_job(dir: &std::path::Path, target: &str, extra: &str) -> JobSpec {
    JobSpec::parse(
        &format!(
            "name = \"faulty\"\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\n\
             groups = \"groups\"\n[target]\nurl = \"{target}\"\ntoken = \"gateway-token\"\nrate_limit = 0\n{extra}"
        ),
        Some(dir),
    )
    .unwrap()
}

/// Defect 2: a Bulk request whose answer is lost (the connection closed after the target
/// processed it) was taken as refused as a whole: Bulk was dropped and every create re-sent
/// blind, so with `on_conflict = "report"` the engine's own users became conflicts. Each
/// create must be looked up (and adopted: the engine made it) and Bulk halved, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bulk_answer_is_looked_up_never_resent_blind() {
    let f = Fixture::new(Backend::Sqlite).await;
    let gateway = FaultTarget::start(
        &f.app,
        &f.app_token,
        "gateway-token",
        Faults {
            reset_bulk_every: 2,
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    csv_people(dir.path(), 40);
    let spec = csv_job(
        dir.path(),
        &gateway.url,
        "bulk = 8\n[matching]\non_conflict = \"report\"\n",
    );
    let r = f.run(&spec).await;
    assert!(gateway.counts().resets > 0, "{:?}", gateway.counts());
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Conflict),
        None,
        "{r:?}"
    );
    let users = f.users().await;
    assert_eq!(users.len(), 40, "one target user per source user");
    let ledger = f.server.store.ledger("faulty").await.unwrap();
    assert!(
        ledger
            .iter()
            .filter(|e| e.kind == scim_core::ResourceKind::User)
            .all(|e| e.target_id.is_some() && e.state == scim_core::LedgerState::Active),
        "every user linked: {ledger:?}"
    );
    assert_eq!(f.group_members("team").await.len(), 40);
    // Bulk was halved, not dropped: later Bulk requests still went out.
    assert!(gateway.counts().bulk > 1, "{:?}", gateway.counts());
    let again = f.run(&spec).await;
    assert_eq!(again.counts.requests, 0, "{again:?}");
    f.server.finish().await;
}

/// Defect 4: a request answered 429 was retried after its Retry-After within a run, but an
/// object that ran out of attempts was sent again by the next run at once. The target's
/// Retry-After holds across runs: nothing is sent before it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_holds_across_runs() {
    let f = Fixture::new(Backend::Sqlite).await;
    let gateway =
        FaultTarget::start(&f.app, &f.app_token, "gateway-token", Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    csv_people(dir.path(), 3);
    let spec = csv_job(dir.path(), &gateway.url, "attempts = 1\nbulk = 0\n");
    // Discovery and matching go through; then every write is throttled for 2 s.
    gateway.set_faults(Faults {
        throttle_writes_until: Some(std::time::Instant::now() + std::time::Duration::from_secs(2)),
        ..Default::default()
    });
    let r = f.run(&spec).await;
    assert!(r.counts.throttled > 0, "{r:?}");
    let seen = gateway.counts().requests;
    // At once: the target said to wait. Nothing is sent to it.
    let r = f.run(&spec).await;
    assert_eq!(
        gateway.counts().requests,
        seen,
        "sent during Retry-After: {r:?}"
    );
    assert_eq!(r.status, scim_core::CycleStatus::Stopped, "{r:?}");
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    f.advance(time::Duration::seconds(3));
    gateway.set_faults(Faults::default());
    let r = f.run(&spec).await;
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    assert_eq!(f.users().await.len(), 3);
    f.server.finish().await;
}
