//! The engine end to end against a real scimd (HTTP on loopback, SQLite file or the local
//! PostgreSQL): a CSV source provisioned into tenant `app`, through the whole lifecycle —
//! initial cycle with adoption, a no-change cycle, an update, suspend and re-enable with
//! memberships restored, removal from scope with a delay (the clock moved forward), delete,
//! conflict on two matches, adopt on 409, the breaker tripped and approved, and a target
//! account the engine never created left untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use scim_core::{Store, Timestamp};
use scim_sync::engine::CycleReport;
use scim_sync::{Engine, JobSpec};
use scim_testkit::{Backend, TestServer, both_backends};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

struct Fixture {
    server: TestServer,
    dir: tempfile::TempDir,
    engine: Engine,
    now: Arc<Mutex<Timestamp>>,
    app: String,
    app_token: String,
    http: reqwest::Client,
}

const HEADER: &str = "employee_id,userName,name.givenName,name.familyName,emails[type eq \"work\"].value,active,dept,groups";

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let server = TestServer::start(backend).await;
        let (_, app_token) = server.tenant("app").await;
        let app = format!("{}/t/app/scim/v2", server.root);
        let now = Arc::new(Mutex::new(Timestamp::now()));
        let clock_now = now.clone();
        let store: Arc<dyn Store> = server.store.clone();
        let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
        let mut engine = Engine::new(store, Some(key), time::Duration::days(30));
        engine.clock = Arc::new(move || *clock_now.lock().unwrap());
        Self {
            server,
            dir: tempfile::tempdir().unwrap(),
            engine,
            now,
            app,
            app_token,
            http: reqwest::Client::new(),
        }
    }

    fn advance(&self, d: time::Duration) {
        let mut n = self.now.lock().unwrap();
        *n = *n + d;
    }

    fn write_people(&self, rows: &[&str]) {
        let text = format!("{HEADER}\n{}\n", rows.join("\n"));
        std::fs::write(self.dir.path().join("people.csv"), text).unwrap();
    }

    fn spec(&self, extra: &str) -> JobSpec {
        let text = format!(
            "name = \"hr-to-app\"\n\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\ngroups = \"groups\"\n\n\
             [target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n\n{extra}",
            self.app, self.app_token
        );
        JobSpec::parse(&text, Some(self.dir.path())).unwrap()
    }

    async fn run(&self, spec: &JobSpec) -> CycleReport {
        let record = scim_core::SyncStore::job(self.server.store.as_ref(), &spec.name)
            .await
            .unwrap();
        let r = self.engine.run(spec, record.as_ref()).await.unwrap();
        assert!(
            r.counts.statuses.get("Failure").is_none_or(|n| *n == 0) || r.status != "completed",
            "{r:?}"
        );
        r
    }

    async fn plan(&self, spec: &JobSpec) -> scim_sync::plan::SyncPlan {
        let record = scim_core::SyncStore::job(self.server.store.as_ref(), &spec.name)
            .await
            .unwrap();
        self.engine
            .prepare(spec, record.as_ref())
            .await
            .unwrap()
            .plan
    }

    async fn app(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.app))
            .bearer_auth(&self.app_token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn user(&self, user_name: &str) -> Option<Value> {
        let (_, v) = self
            .app(
                reqwest::Method::GET,
                &format!("/Users?filter=userName%20eq%20%22{user_name}%22"),
                None,
            )
            .await;
        v["Resources"].as_array().and_then(|a| a.first().cloned())
    }

    async fn users(&self) -> Vec<Value> {
        let (_, v) = self
            .app(reqwest::Method::GET, "/Users?count=1000", None)
            .await;
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn group_members(&self, name: &str) -> Vec<String> {
        let (_, v) = self
            .app(
                reqwest::Method::GET,
                &format!("/Groups?filter=displayName%20eq%20%22{name}%22"),
                None,
            )
            .await;
        let mut m: Vec<String> = v["Resources"][0]["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["display"].as_str().map(str::to_string))
            .collect();
        m.sort();
        m
    }

    async fn create_target_user(&self, user_name: &str, email: &str, title: &str) -> String {
        let (s, v) = self
            .app(
                reqwest::Method::POST,
                "/Users",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                            "title": title, "emails": [{"type": "work", "value": email}]})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
}

fn row(id: u32, name: &str, active: bool, dept: &str, groups: &str) -> String {
    let (given, family) = name.split_once(' ').unwrap();
    let user = format!("{}@example.com", given.to_lowercase());
    format!("{id},{user},{given},{family},{user},{active},{dept},{groups}")
}

async fn lifecycle(backend: Backend) {
    let f = Fixture::new(backend).await;
    // Accounts on the target before the engine: one it will adopt, one it must never touch.
    let adoptee = f
        .create_target_user("ada@example.com", "old@example.com", "Countess")
        .await;
    f.create_target_user("outsider@example.com", "outsider@example.com", "Keep me")
        .await;
    let outsider = f.user("outsider@example.com").await.unwrap();
    let people = |extra: &[String]| {
        let mut rows = vec![
            row(1001, "Ada Lovelace", true, "R&D", "Engineering;Research"),
            row(1002, "Alan Turing", true, "R&D", "Engineering"),
            row(1003, "Grace Hopper", true, "Navy", "Research"),
        ];
        rows.extend(extra.iter().cloned());
        rows
    };
    let write =
        |rows: Vec<String>| f.write_people(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    write(people(&[]));
    let spec = f.spec("[deprovision.out_of_scope]\naction = \"disable\"\nafter = \"7d\"\n\n[[scope.filters]]\nclauses = [{attribute = \"dept\", operator = \"NOT EQUALS\", value = \"Contractors\"}]\n");

    // Plan first: it shows the actions and writes nothing.
    let plan = f.plan(&spec).await;
    assert_eq!(plan.mode, "initial");
    assert_eq!(plan.totals.get("Adopt"), Some(&1), "{:?}", plan.totals);
    assert_eq!(plan.totals.get("Create"), Some(&4), "{:?}", plan.totals);
    assert_eq!(f.users().await.len(), 2, "plan wrote to the target");

    // Initial cycle.
    let r = f.run(&spec).await;
    assert_eq!(r.status, "completed", "{r:?}");
    let ada = f.user("ada@example.com").await.unwrap();
    assert_eq!(ada["id"], adoptee, "adopted, not duplicated");
    assert_eq!(ada["emails"][0]["value"], "ada@example.com");
    assert_eq!(ada["name"]["familyName"], "Lovelace");
    assert_eq!(ada["externalId"], "1001");
    assert_eq!(f.users().await.len(), 4);
    // scimd offers Bulk: the user creates went in one Bulk request.
    let log = f
        .engine
        .store
        .sync_log(
            "hr-to-app",
            &scim_core::SyncLogQuery {
                object: Some("alan@example.com".into()),
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        log[0]
            .steps
            .to_string()
            .contains("POST /Bulk (2 operations)"),
        "{:?}",
        log[0].steps
    );
    assert_eq!(
        f.group_members("Engineering").await,
        ["ada@example.com", "alan@example.com"]
    );
    assert_eq!(
        f.group_members("Research").await,
        ["ada@example.com", "grace@example.com"]
    );

    // Nothing changed: zero writes.
    let r = f.run(&spec).await;
    assert_eq!(r.counts.requests, 0, "{r:?}");
    assert!(r.counts.actions.is_empty(), "{r:?}");

    // An attribute change: one PATCH with that attribute.
    let mut rows = people(&[]);
    rows[1] = row(1002, "Alan Mathison", true, "R&D", "Engineering");
    write(rows);
    let plan = f.plan(&spec).await;
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.actions[0].changes.len(), 1);
    assert_eq!(plan.actions[0].changes[0].path, "name.familyName");
    let r = f.run(&spec).await;
    assert_eq!(r.counts.requests, 1, "{r:?}");
    assert_eq!(
        f.user("alan@example.com").await.unwrap()["name"]["familyName"],
        "Mathison"
    );

    // Suspended at the source: disabled and out of its groups; back: enabled and restored.
    let mut rows = people(&[]);
    rows[1] = row(1002, "Alan Mathison", false, "R&D", "Engineering");
    write(rows);
    f.run(&spec).await;
    assert_eq!(f.user("alan@example.com").await.unwrap()["active"], false);
    assert_eq!(f.group_members("Engineering").await, ["ada@example.com"]);
    let mut rows = people(&[]);
    rows[1] = row(1002, "Alan Mathison", true, "R&D", "Engineering");
    write(rows.clone());
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Enable"), Some(&1), "{r:?}");
    assert_eq!(f.user("alan@example.com").await.unwrap()["active"], true);
    assert_eq!(
        f.group_members("Engineering").await,
        ["ada@example.com", "alan@example.com"]
    );

    // Out of scope with a 7-day delay: scheduled, nothing sent; after 8 days, disabled.
    let mut out = rows.clone();
    out[2] = row(1003, "Grace Hopper", true, "Contractors", "Research");
    write(out.clone());
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Skip"), Some(&1), "{r:?}");
    assert_eq!(f.user("grace@example.com").await.unwrap()["active"], true);
    f.advance(time::Duration::days(8));
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Disable"), Some(&1), "{r:?}");
    assert_eq!(f.user("grace@example.com").await.unwrap()["active"], false);
    // Back in scope: enabled, membership restored.
    write(rows.clone());
    f.run(&spec).await;
    assert_eq!(f.user("grace@example.com").await.unwrap()["active"], true);
    assert_eq!(
        f.group_members("Research").await,
        ["ada@example.com", "grace@example.com"]
    );

    // Deleted at the source: disabled now, deleted after 30 days.
    write(rows[..2].to_vec());
    f.run(&spec).await;
    assert_eq!(f.user("grace@example.com").await.unwrap()["active"], false);
    f.advance(time::Duration::days(31));
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Delete"), Some(&1), "{r:?}");
    assert!(f.user("grace@example.com").await.is_none());

    // Conflict: matching by e-mail finds two target users; no duplicate is made.
    f.create_target_user("dup1@example.com", "dup@example.com", "")
        .await;
    f.create_target_user("dup2@example.com", "dup@example.com", "")
        .await;
    let by_email = "[users]\nmatching = ['emails[type eq \"work\"].value']\n";
    let spec2 = f.spec(by_email);
    let mut rows2 = rows[..2].to_vec();
    rows2.push("1010,dupe@example.com,Dup,Licate,dup@example.com,true,R&D,".to_string());
    write(rows2.clone());
    let before = f.users().await.len();
    let r = f.run(&spec2).await;
    assert_eq!(r.counts.actions.get("Conflict"), Some(&1), "{r:?}");
    assert_eq!(f.users().await.len(), before);

    // Adopt on 409: matched by e-mail (no match), the create meets an existing userName.
    let taken = f
        .create_target_user("taken@example.com", "elsewhere@example.com", "")
        .await;
    rows2.push("1011,taken@example.com,Tak,En,taken-new@example.com,true,R&D,".to_string());
    write(rows2.clone());
    let r = f.run(&spec2).await;
    // The conflicting object failed last cycle: it is in escrow, not retried for 6 hours.
    assert_eq!(r.counts.statuses.get("Failure"), None, "{r:?}");
    assert_eq!(r.counts.actions.get("Conflict"), None, "{r:?}");
    assert_eq!(f.engine.status("hr-to-app").await.unwrap().escrowed, 1);
    let t = f.user("taken@example.com").await.unwrap();
    assert_eq!(t["id"], taken);
    assert_eq!(t["emails"][0]["value"], "taken-new@example.com");

    // The breaker: removing most users stages their disables; approval lets them through.
    let mut many = rows2.clone();
    for i in 0..8 {
        many.push(format!(
            "{},bulk{i}@example.com,B,{i},bulk{i}@example.com,true,R&D,",
            2000 + i
        ));
    }
    write(many.clone());
    f.run(&spec2).await;
    write(many[..2].to_vec());
    let r = f.run(&spec2).await;
    assert!(r.breaker.is_some(), "{r:?}");
    assert_eq!(r.counts.actions.get("StagedDelete"), Some(&9), "{r:?}");
    assert_eq!(
        f.user("bulk0@example.com").await.unwrap()["active"],
        true,
        "staged, not applied"
    );
    let status = f.engine.status("hr-to-app").await.unwrap();
    assert_eq!(status.staged_deletes, 9);
    assert_eq!(status.state, "waiting for delete approval");
    // A second run holds them too (no new approvals).
    let r = f.run(&spec2).await;
    assert_eq!(
        f.user("bulk0@example.com").await.unwrap()["active"],
        true,
        "{r:?}"
    );
    assert_eq!(f.engine.decide_staged("hr-to-app", true).await.unwrap(), 9);
    let r = f.run(&spec2).await;
    assert_eq!(r.counts.actions.get("Disable"), Some(&9), "{r:?}");
    assert_eq!(f.user("bulk0@example.com").await.unwrap()["active"], false);

    // The account the engine never created or adopted is untouched throughout.
    assert_eq!(
        f.user("outsider@example.com").await.unwrap(),
        outsider,
        "same version, same values"
    );

    // The per-object log has every action, with steps.
    let log = f
        .engine
        .log(
            "hr-to-app",
            &scim_core::SyncLogQuery {
                action: Some("Adopt".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert!(
        log[0].steps.to_string().contains("matched target object"),
        "{}",
        log[0].steps
    );
    f.server.finish().await;
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The hub case: tenant `acme` (where an IdP provisions) fanned out to tenant `app`, read
/// incrementally from acme's change sequence; manager references translated to app's ids.
async fn tenant_hub(backend: Backend) {
    let f = Fixture::new(backend).await;
    let s = &f.server;
    let boss = s.user("boss@example.com").await;
    let r = s
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                   "userName": "worker@example.com", "displayName": "Worker", "externalId": "w-1",
                   ENTERPRISE: {"department": "Ops", "manager": {"value": boss}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let worker = r.body["id"].as_str().unwrap().to_string();
    let g = s
        .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Staff",
                                 "members": [{"value": boss}, {"value": worker}]}))
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let text = format!(
        "name = \"hub-to-app\"\n[source]\nkind = \"tenant\"\ntenant = \"acme\"\n[target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n",
        f.app, f.app_token
    );
    let spec = JobSpec::parse(&text, None).unwrap();
    let r = f.run(&spec).await;
    assert_eq!(r.status, "completed", "{r:?}");
    let w = f.user("worker@example.com").await.unwrap();
    let b = f.user("boss@example.com").await.unwrap();
    assert_eq!(w["externalId"], "w-1");
    assert_eq!(w[ENTERPRISE]["department"], "Ops");
    assert_eq!(
        w[ENTERPRISE]["manager"]["value"], b["id"],
        "manager as app's id: {w}"
    );
    assert_eq!(
        f.group_members("Staff").await,
        ["Worker", "boss@example.com"]
    );

    // Nothing changed at the hub: nothing sent.
    let r = f.run(&spec).await;
    assert_eq!(r.counts.requests, 0, "{r:?}");

    // One change at the hub: one update, read from the change feed.
    let p = s
        .patch(
            &format!("/Users/{worker}"),
            json!([{"op": "replace", "path": "displayName", "value": "Worker Bee"}]),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Update"), Some(&1), "{r:?}");
    assert_eq!(r.counts.requests, 1, "{r:?}");
    assert_eq!(
        f.user("worker@example.com").await.unwrap()["displayName"],
        "Worker Bee"
    );

    // Deleted at the hub: disabled at the app (deleted after the default 30 days).
    assert_eq!(s.delete(&format!("/Users/{worker}")).await.status, 204);
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Disable"), Some(&1), "{r:?}");
    assert_eq!(f.user("worker@example.com").await.unwrap()["active"], false);
    assert_eq!(f.group_members("Staff").await, ["boss@example.com"]);
    f.server.finish().await;
}

both_backends! {
    csv_to_scimd_lifecycle => super::lifecycle;
    scimd_tenant_as_source => super::tenant_hub;
}

/// One user's state at the source in a generated sequence.
#[derive(Debug, Clone)]
struct Person {
    present: bool,
    given: &'static str,
    family: &'static str,
    suspended: bool,
    dept: &'static str,
    groups: Vec<&'static str>,
}

fn person() -> impl proptest::strategy::Strategy<Value = Person> {
    use proptest::prelude::*;
    (
        proptest::bool::weighted(0.8),
        prop::sample::select(vec!["Ann", "Bob", "Cy"]),
        prop::sample::select(vec!["Ames", "Brown", "Cole"]),
        proptest::bool::weighted(0.2),
        prop::sample::select(vec!["A", "B", "C"]),
        prop::sample::subsequence(vec!["G1", "G2"], 0..=2),
    )
        .prop_map(|(present, given, family, suspended, dept, groups)| Person {
            present,
            given,
            family,
            suspended,
            dept,
            groups,
        })
}

/// After every cycle of a random sequence of source changes: each managed target user
/// equals its mapped source user (or is disabled / gone as its trigger says), each target
/// group holds exactly the in-scope active members, and the unmanaged user is unchanged.
async fn converges(steps: Vec<Vec<Person>>) {
    let f = Fixture::new(Backend::Sqlite).await;
    f.create_target_user(
        "bystander@example.com",
        "bystander@example.com",
        "Untouched",
    )
    .await;
    let bystander = f.user("bystander@example.com").await.unwrap();
    let spec = f.spec(
        "[deprovision]\nout_of_scope = { action = \"disable\" }\nsuspended = { action = \"disable\" }\n\
         deleted = { action = \"delete\" }\n[breaker]\nmax_percent = 100\n\n\
         [[scope.filters]]\nclauses = [{attribute = \"dept\", operator = \"NOT EQUALS\", value = \"C\"}]\n",
    );
    let mut ever_linked = std::collections::HashSet::new();
    for people in &steps {
        let rows: Vec<String> = people
            .iter()
            .enumerate()
            .filter(|(_, p)| p.present)
            .map(|(i, p)| {
                format!(
                    "{i},u{i}@example.com,{},{},u{i}@example.com,{},{},{}",
                    p.given,
                    p.family,
                    !p.suspended,
                    p.dept,
                    p.groups.join(";")
                )
            })
            .collect();
        f.write_people(&rows.iter().map(String::as_str).collect::<Vec<_>>());
        let r = f.run(&spec).await;
        assert_eq!(r.status, "completed", "{r:?}");
        let mut expected_members: std::collections::BTreeMap<&str, Vec<String>> =
            Default::default();
        for (i, p) in people.iter().enumerate() {
            let name = format!("u{i}@example.com");
            let active = p.present && !p.suspended && p.dept != "C";
            let target = f.user(&name).await;
            if active {
                ever_linked.insert(i);
                let t = target.unwrap_or_else(|| panic!("{name} missing: {people:?}"));
                assert_eq!(t["name"]["givenName"], p.given, "{t}");
                assert_eq!(t["name"]["familyName"], p.family, "{t}");
                assert_eq!(t["active"], true, "{t}");
                for g in &p.groups {
                    expected_members.entry(g).or_default().push(name.clone());
                }
            } else if !p.present {
                // Deleted at the target: a later return is a new provisioning.
                ever_linked.remove(&i);
                assert!(
                    target.is_none(),
                    "{name} deleted at the source is still there"
                );
            } else if ever_linked.contains(&i) {
                assert_eq!(
                    target.unwrap()["active"],
                    false,
                    "{name} should be disabled"
                );
            } else {
                assert!(target.is_none(), "{name} never in scope was provisioned");
            }
        }
        for g in ["G1", "G2"] {
            let want = expected_members.remove(g).unwrap_or_default();
            let got = f.group_members(g).await;
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "members of {g}");
        }
        assert_eq!(f.user("bystander@example.com").await.unwrap(), bystander);
    }
    f.server.finish().await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]
    #[test]
    fn managed_objects_converge_and_unmanaged_ones_stay(
        steps in proptest::collection::vec(proptest::collection::vec(person(), 5), 1..4)
    ) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(converges(steps));
    }
}

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
    assert_eq!(r.status, "completed", "{r:?}");
    assert_eq!(r.counts.actions.get("Create"), Some(&3), "{r:?}");
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
    assert_eq!(r.status, "completed", "{r:?}");
    assert_eq!(
        f.user("ada@example.com").await.unwrap()["name"]["familyName"],
        "Byron"
    );
    assert_eq!(f.user("alan@example.com").await.unwrap()["active"], false);

    f.write_people(&[rows[0].as_str()]);
    let r = f.run(&spec).await;
    assert_eq!(r.counts.actions.get("Delete"), Some(&1), "{r:?}");
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
    assert_eq!(r.counts.actions.get("Create"), Some(&2), "{r:?}");
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
    assert_eq!(r.counts.actions.get("Update"), Some(&1), "{r:?}");
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
    assert_eq!(r.status, "completed", "{r:?}");
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
    assert_eq!(r.counts.actions.get("Update"), Some(&1), "{r:?}");
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
    assert_eq!(r.counts.actions.get("Disable"), Some(&1), "{r:?}");
    let beth = f.user("beth@example.com").await.unwrap();
    assert_eq!(beth["active"], false);
    assert_eq!(
        beth["roles"],
        json!([{"value": "Pianist"}]),
        "kept by the PUT"
    );
    f.server.finish().await;
}
