//! The engine into third-party SCIM servers (`scim2-server` from PyPI, SCIMMY from npm) and
//! from other source kinds: any SCIM server (scimd's tenant read over HTTP), and a JSON file
//! with a groups file into a target updated by GET + PUT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use scim_sync::JobSpec;
use scim_testkit::Backend;
use serde_json::json;
use support::{Fixture, row};

/// Third-party SCIM servers as targets: `scim2-server` from PyPI and SCIMMY from npm (both
/// pinned, installed by scripts/test.sh, which exports where they are). Skipped when not
/// installed, unless SCIMD_REQUIRE_PEERS=1 (the README's test command sets it).
fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(
                std::env::var("SCIMD_REQUIRE_PEERS").is_err(),
                "SCIMD_REQUIRE_PEERS is set but {var} is not"
            );
            eprintln!("skipped: {var} is not set (scripts/test.sh installs the peer)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn into_the_scim2_server_peer() {
    let Some(bin) = peer("SCIMD_SCIM2_SERVER") else {
        return;
    };
    let port = scim_testkit::process::free_port();
    let child = std::process::Command::new(&bin)
        .args(["--port", &port.to_string(), "--bearer-token", "peer-secret"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("scim2-server starts");
    peer_lifecycle(child, port, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn into_the_scimmy_peer() {
    let Some(host) = peer("SCIMD_SCIMMY_HOST") else {
        return;
    };
    let port = scim_testkit::process::free_port();
    let child = std::process::Command::new("node")
        .args([host.as_str(), &port.to_string(), "peer-secret"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node starts the SCIMMY host");
    peer_lifecycle(child, port, "/scim").await;
}

/// Initial cycle (users, a group with members), no-change cycle, an update, a suspend, a
/// delete, and an account the engine did not create left as it was.
async fn peer_lifecycle(mut peer: std::process::Child, port: u16, path: &str) {
    let mut f = Fixture::new(Backend::Sqlite).await;
    f.app = format!("http://127.0.0.1:{port}{path}");
    f.app_token = "peer-secret".into();
    for _ in 0..100 {
        if reqwest::get(format!("{}/ServiceProviderConfig", f.app))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    f.create_target_user(
        "bystander@example.com",
        "bystander@example.com",
        "Untouched",
    )
    .await;
    let bystander = f.user("bystander@example.com").await.unwrap();
    let rows = [
        row(1, "Ada Lovelace", true, "R&D", "Engineering"),
        row(2, "Alan Turing", true, "R&D", "Engineering"),
    ];
    f.write_people(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    let spec = f.spec("[deprovision]\ndeleted = { action = \"delete\" }\n");
    let r = f.run(&spec).await;
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Create),
        Some(&3),
        "{r:?}"
    );
    let ada = f.user("ada@example.com").await.unwrap();
    assert_eq!(ada["name"]["familyName"], "Lovelace");
    let (_, g) = f.app(reqwest::Method::GET, "/Groups", None).await;
    let members: Vec<&str> = g["Resources"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert_eq!(members.len(), 2, "{g}");
    assert!(members.contains(&ada["id"].as_str().unwrap()));

    let r = f.run(&spec).await;
    assert_eq!(r.counts.requests, 0, "no change, no writes: {r:?}");

    let rows = [
        row(1, "Ada Byron", true, "R&D", "Engineering"),
        row(2, "Alan Turing", false, "R&D", "Engineering"),
    ];
    f.write_people(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    let r = f.run(&spec).await;
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    assert_eq!(
        f.user("ada@example.com").await.unwrap()["name"]["familyName"],
        "Byron"
    );
    assert_eq!(f.user("alan@example.com").await.unwrap()["active"], false);

    f.write_people(&[rows[0].as_str()]);
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Delete),
        Some(&1),
        "{r:?}"
    );
    assert!(f.user("alan@example.com").await.is_none());
    assert_eq!(f.user("bystander@example.com").await.unwrap(), bystander);
    let _ = peer.kill();
    let _ = peer.wait();
    f.server.finish().await;
}

/// Any SCIM server as the source (here scimd's tenant `acme`, read over HTTP like any other
/// server): a full first read, then incremental reads by `meta.lastModified`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_server_as_source() {
    let f = Fixture::new(Backend::Sqlite).await;
    let s = &f.server;
    let a = s.user("one@example.com").await;
    s.user("two@example.com").await;
    let text = format!(
        "name = \"scim-to-app\"\n[source]\nkind = \"scim\"\nurl = \"{}\"\ntoken = \"{}\"\n\
         [target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n",
        s.base, s.token, f.app, f.app_token
    );
    let spec = JobSpec::parse(&text, None).unwrap();
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Create),
        Some(&2),
        "{r:?}"
    );
    let r = f.run(&spec).await;
    assert_eq!(r.counts.requests, 0, "{r:?}");
    let p = s
        .patch(
            &format!("/Users/{a}"),
            json!([{"op": "replace", "path": "displayName", "value": "One"}]),
        )
        .await;
    assert_eq!(p.status, 200);
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Update),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(
        f.user("one@example.com").await.unwrap()["displayName"],
        "One"
    );
    f.server.finish().await;
}

/// A JSON-file source with a second file for groups, app roles with a default role, into a
/// job that updates by GET + PUT (a target without PATCH): roles arrive as SCIM's
/// `[{"value": …}]`, a user whose only role is the default one is not provisioned, a
/// change is one GET and one PUT that keeps everything else, memberships change by PUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_source_with_a_groups_file_updated_by_put() {
    let f = Fixture::new(Backend::Sqlite).await;
    let people = |jo_title: &str, beth_active: bool| {
        json!([
            {"uid": "j1", "userName": "jo@example.com", "title": jo_title, "active": true,
             "name": {"givenName": "Jo", "familyName": "March"}, "roles": ["Author", "Default Access"]},
            {"uid": "j2", "userName": "meg@example.com", "active": true,
             "name": {"givenName": "Meg", "familyName": "March"}, "roles": ["Default Access"]},
            {"uid": "j3", "userName": "beth@example.com", "active": beth_active,
             "name": {"givenName": "Beth", "familyName": "March"}, "roles": ["Pianist"]}
        ])
        .to_string()
    };
    let write = |people: String, members: &[&str]| {
        std::fs::write(f.dir.path().join("people.json"), people).unwrap();
        let mut g = String::from("group,member\n");
        for m in members {
            g.push_str(&format!("Sisters,{m}\n"));
        }
        std::fs::write(f.dir.path().join("groups.csv"), g).unwrap();
    };
    write(people("Writer", true), &["j1", "j2", "j3"]);
    let text = format!(
        "name = \"json-to-app\"\n[source]\nkind = \"json\"\npath = \"people.json\"\nid = \"uid\"\n\
         groups_path = \"groups.csv\"\n[target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n\
         update = \"put\"\n[scope]\nroles = \"roles\"\ndefault_role = \"Default Access\"\n",
        f.app, f.app_token
    );
    let spec = JobSpec::parse(&text, Some(f.dir.path())).unwrap();

    let r = f.run(&spec).await;
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    let jo = f.user("jo@example.com").await.expect("jo provisioned");
    assert_eq!(
        jo["roles"],
        json!([{"value": "Author"}, {"value": "Default Access"}])
    );
    assert_eq!(jo["name"]["familyName"], "March");
    assert_eq!(jo["title"], "Writer");
    assert!(
        f.user("meg@example.com").await.is_none(),
        "only the default role: not provisioned"
    );
    assert_eq!(
        f.group_members("Sisters").await,
        ["beth@example.com", "jo@example.com"]
    );
    assert_eq!(
        f.run(&spec).await.counts.requests,
        0,
        "no change, no request"
    );

    // One attribute changed: GET + PUT, the rest of the user kept.
    write(people("Novelist", true), &["j1", "j2", "j3"]);
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Update),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(r.counts.requests, 2, "GET + PUT: {r:?}");
    let jo = f.user("jo@example.com").await.unwrap();
    assert_eq!(jo["title"], "Novelist");
    assert_eq!(jo["roles"][0]["value"], "Author");
    assert_eq!(jo["name"]["givenName"], "Jo");

    // Beth leaves the group (GET + PUT of the group), then is suspended (disabled by PUT).
    write(people("Novelist", true), &["j1", "j2"]);
    f.run(&spec).await;
    assert_eq!(f.group_members("Sisters").await, ["jo@example.com"]);
    write(people("Novelist", false), &["j1", "j2"]);
    let r = f.run(&spec).await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Disable),
        Some(&1),
        "{r:?}"
    );
    let beth = f.user("beth@example.com").await.unwrap();
    assert_eq!(beth["active"], false);
    assert_eq!(
        beth["roles"],
        json!([{"value": "Pianist"}]),
        "kept by the PUT"
    );
    f.server.finish().await;
}
