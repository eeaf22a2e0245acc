//! The engine, model-checked: random directory histories — people created, changed,
//! suspended, moved out of scope, deleted and restored; groups created, renamed, deleted;
//! members added and removed, nested groups — each step one cycle through a target that
//! fails at random (429, 500s, answers lost after the target processed them, on single
//! requests and on Bulk), with the engine's clock moved across the deprovisioning delays.
//!
//! After every cycle, faulty or not, what must always hold:
//! - **no duplicate**: at most one target user per source identity;
//! - **nothing unowned touched**: a user and a group the engine never made stay byte for
//!   byte as they were;
//! - **nobody comes back**: an identity the target showed disabled or gone after the source
//!   deleted, suspended or unscoped it is never active again until the source says so.
//!
//! After each step's cycles without faults (the clock past the escrow waits), the target
//! equals the oracle computed from the directory and the job's rules alone: the same users
//! with the same attributes and active flags, the same groups with the same members, and
//! each deleted identity gone or disabled as its rule and the time say.
//!
//! Run for every source kind with incremental reads: a CSV file (full reads), a scimd
//! tenant (its change feed), a SCIM server (lastModified reads and a full read every 24 h),
//! a real OpenLDAP (slapd, started by the test) polled, and by syncrepl with and without
//! a session log, and the Google Workspace (full reads under the complete-read guard) and
//! Entra ID (Graph delta) emulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod directory;
mod drivers;

use directory::{DeletedRule, Dir, History, Ledger};
use drivers::{Driver, Kind};
use scim_core::{CycleStatus, Store, SyncStore, Timestamp};
use scim_sync::{Engine, JobSpec};
use scim_testkit::faults::{FaultTarget, Faults};
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

struct World {
    server: TestServer,
    engine: Engine,
    now: Arc<Mutex<Timestamp>>,
    gateway: FaultTarget,
    app: String,
    app_token: String,
    driver: Driver,
    spec: JobSpec,
    bystanders: (Value, Value),
    http: reqwest::Client,
    /// The source's full reads are under the complete-read guard.
    guarded: bool,
    _dir: tempfile::TempDir,
}

impl World {
    /// `None` where the source cannot run here (slapd not installed).
    async fn new(kind: Kind, h: &History) -> Option<Self> {
        let server = TestServer::start(Backend::Sqlite).await;
        let (_, app_token) = server.tenant("app").await;
        let app = format!("{}/t/app/scim/v2", server.root);
        let gateway =
            FaultTarget::start(&app, &app_token, "gateway-token", Faults::default()).await;
        let now = Arc::new(Mutex::new(Timestamp::now()));
        let clock = now.clone();
        let store: Arc<dyn Store> = server.store.clone();
        let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
        let engine = Engine::new(store, Some(key), time::Duration::days(30))
            .with_outbound(scim_net::Policy::allow_local())
            .with_clock(Arc::new(move || *clock.lock().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let driver = Driver::new(kind, &server, dir.path()).await?;
        let dept = kind.dept_attribute();
        let text = format!(
            "name = \"model\"\n{}\n[target]\nurl = \"{}\"\ntoken = \"gateway-token\"\nrate_limit = 0\n\
             attempts = 2\nbulk = {}\n[matching]\non_conflict = \"{}\"\n\
             [deprovision]\nout_of_scope = {{ action = \"disable\" }}\nsuspended = {{ action = \"disable\" }}\n{}\n\
             [breaker]\nmax_percent = 100\nmax_deletes = 100000\n\
             [[scope.filters]]\nclauses = [{{attribute = \"{dept}\", operator = \"NOT EQUALS\", value = \"C\"}}]\n",
            driver.source_toml(),
            gateway.url,
            if h.bulk { 5 } else { 0 },
            if h.report_conflicts {
                "report"
            } else {
                "adopt"
            },
            h.rule.toml(),
        );
        let spec = JobSpec::parse(&text, Some(dir.path())).unwrap();
        let http = reqwest::Client::new();
        let mut w = Self {
            server,
            engine,
            now,
            gateway,
            app,
            app_token,
            driver,
            spec,
            bystanders: (Value::Null, Value::Null),
            http,
            guarded: kind.guarded(),
            _dir: dir,
        };
        w.bystanders = w.make_bystanders().await;
        Some(w)
    }

    /// A user and a group on the target the engine never made (named like no source
    /// identity): they must never change.
    async fn make_bystanders(&self) -> (Value, Value) {
        let u = self
            .target(
                "POST",
                "/Users",
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bystander@model.test", "active": true}),
                ),
            )
            .await;
        let id = u["id"].as_str().unwrap().to_string();
        let g = self
            .target(
                "POST",
                "/Groups",
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Bystanders", "members": [{"value": id}]}),
                ),
            )
            .await;
        let gid = g["id"].as_str().unwrap().to_string();
        (
            self.target("GET", &format!("/Users/{id}"), None).await,
            self.target("GET", &format!("/Groups/{gid}"), None).await,
        )
    }

    /// A request to the target tenant itself (not through the gateway).
    async fn target(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.app))
            .bearer_auth(&self.app_token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    async fn users(&self) -> Vec<Value> {
        let v = self.target("GET", "/Users?count=1000", None).await;
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn groups(&self) -> Vec<Value> {
        let v = self.target("GET", "/Groups?count=1000", None).await;
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    fn advance(&self, hours: i64) {
        let mut n = self.now.lock().unwrap();
        *n = *n + time::Duration::hours(hours);
    }

    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap()
    }

    async fn cycle(&self) -> Result<scim_sync::engine::CycleReport, scim_sync::SyncError> {
        let record = self.server.store.job("model").await.unwrap();
        let r = self.engine.run(&self.spec, record.as_ref()).await;
        // The complete-read guard of a directory source holds a large drop for approval:
        // the model's operator approves, and the next cycle applies it.
        if self.guarded {
            self.engine.decide_staged("model", true).await.unwrap();
        }
        r
    }
}

/// What must hold after every cycle; `seen` learns what the target showed.
async fn safety(w: &World, dir: &Dir, seen: &mut Ledger, history: &str) {
    let users = w.users().await;
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &users {
        *by_name
            .entry(u["userName"].as_str().unwrap_or(""))
            .or_default() += 1;
        let ext = u["externalId"].as_str().unwrap_or("");
        let same = users
            .iter()
            .filter(|x| x["externalId"] == ext && !ext.is_empty())
            .count();
        assert!(
            same <= 1,
            "two target users for one source identity {ext}: {history}"
        );
    }
    let (bu, bg) = &w.bystanders;
    let id = bu["id"].as_str().unwrap();
    assert_eq!(
        &w.target("GET", &format!("/Users/{id}"), None).await,
        bu,
        "bystander user touched: {history}"
    );
    let gid = bg["id"].as_str().unwrap();
    assert_eq!(
        &w.target("GET", &format!("/Groups/{gid}"), None).await,
        bg,
        "bystander group touched: {history}"
    );
    let shown: BTreeMap<&str, &Value> = users
        .iter()
        .map(|u| (u["userName"].as_str().unwrap_or(""), u))
        .collect();
    for (name, s) in seen.iter_mut() {
        let now = shown.get(name.as_str());
        s.provisioned |= now.is_some();
        let current = (0..directory::PEOPLE).find(|p| dir.user_name(*p) == *name);
        let active_at_source = current.is_some_and(|p| dir.active(p));
        let active_on_target = now.is_some_and(|u| u["active"] == true);
        if active_at_source {
            s.down = false;
            continue;
        }
        assert!(
            !(s.down && active_on_target),
            "{name} came back: shown disabled or gone after it left, active again while still gone, suspended or out of scope at the source: {history}"
        );
        if !active_on_target {
            s.down = true;
        }
    }
}

/// The target equals what the directory and the rules say (after a fault-free settle).
async fn oracle(w: &World, dir: &Dir, seen: &Ledger, rule: DeletedRule, history: &str) {
    let now = w.now();
    let users = w.users().await;
    let shown: BTreeMap<String, &Value> = users
        .iter()
        .filter(|u| u["userName"] != "bystander@model.test")
        .map(|u| (u["userName"].as_str().unwrap().to_string(), u))
        .collect();
    let mut expected_names = BTreeSet::new();
    for (name, s) in seen {
        let current =
            (0..directory::PEOPLE).find(|p| dir.user_name(*p) == *name && dir.people[*p].present);
        let got = shown.get(name);
        let state = got.map(|u| u["active"] == true);
        match current {
            Some(p) if dir.active(p) => {
                let u = got.unwrap_or_else(|| {
                    panic!("{name} active at the source, missing on the target: {history}")
                });
                assert_eq!(u["active"], true, "{name}: {u} {history}");
                let x = &dir.people[p];
                assert_eq!(u["name"]["givenName"], x.given, "{name}: {u} {history}");
                assert_eq!(u["name"]["familyName"], x.family, "{name}: {u} {history}");
                expected_names.insert(name.clone());
            }
            Some(_) => {
                // Suspended or out of scope: disabled if it was ever provisioned.
                if s.provisioned {
                    assert_eq!(state, Some(false), "{name} should be disabled: {history}");
                    expected_names.insert(name.clone());
                } else {
                    assert_eq!(state, None, "{name} was never in scope: {history}");
                }
            }
            None => {
                if !s.provisioned {
                    assert_eq!(state, None, "{name} gone, never provisioned: {history}");
                    continue;
                }
                let thirty = time::Duration::days(30);
                let must_be_gone = match rule {
                    DeletedRule::Delete => Some(true),
                    DeletedRule::Disable => Some(false),
                    DeletedRule::DisableThenDelete30d => {
                        match (s.deleted_at, s.deletion_settled_at) {
                            (_, Some(settled)) if now >= settled + thirty => Some(true),
                            (Some(at), _) if now < at + thirty => Some(false),
                            _ => None,
                        }
                    }
                };
                match must_be_gone {
                    Some(true) => assert_eq!(state, None, "{name} should be deleted: {history}"),
                    Some(false) => {
                        assert_eq!(state, Some(false), "{name} should be disabled: {history}");
                        expected_names.insert(name.clone());
                    }
                    None => {
                        assert_ne!(
                            state,
                            Some(true),
                            "{name} active after its deletion: {history}"
                        );
                        if state.is_some() {
                            expected_names.insert(name.clone());
                        }
                    }
                }
            }
        }
    }
    let got_names: BTreeSet<String> = shown.keys().cloned().collect();
    assert_eq!(got_names, expected_names, "the target's users: {history}");
    // Groups: every present group with its members (users by userName, groups by name);
    // nothing else but the bystanders'.
    let groups = w.groups().await;
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for u in &users {
        names.insert(u["id"].as_str().unwrap(), u["userName"].as_str().unwrap());
    }
    for g in &groups {
        names.insert(
            g["id"].as_str().unwrap(),
            g["displayName"].as_str().unwrap(),
        );
    }
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for g in groups.iter().filter(|g| g["displayName"] != "Bystanders") {
        let members = g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                names
                    .get(m["value"].as_str().unwrap_or(""))
                    .copied()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        got.insert(g["displayName"].as_str().unwrap().to_string(), members);
    }
    let want: BTreeMap<String, BTreeSet<String>> = (0..directory::GROUPS)
        .filter(|g| dir.groups[*g].present)
        .map(|g| (dir.groups[g].name.clone(), dir.expected_members(g)))
        .collect();
    assert_eq!(got, want, "the target's groups: {history}");
}

fn faults(plan: &directory::FaultPlan) -> Faults {
    Faults {
        throttle_every: plan.throttle_every,
        throttle_retry_after: Some(0),
        error_every: plan.error_every,
        reset_every: plan.reset_every,
        reset_bulk_every: plan.reset_bulk_every,
        ..Faults::default()
    }
}

async fn check(kind: Kind, h: History) {
    let Some(mut w) = World::new(kind, &h).await else {
        return;
    };
    let mut dir = Dir::new();
    let mut seen: Ledger = BTreeMap::new();
    let hub = kind.new_identities();
    let history = format!("{kind:?} {h:?}");
    for step in &h.steps {
        let before = dir.clone();
        for op in &step.ops {
            dir.apply(op, hub);
        }
        w.driver.publish(&before, &dir).await;
        for p in 0..directory::PEOPLE {
            let name = dir.user_name(p);
            let s = seen.entry(name.clone()).or_default();
            if dir.people[p].present {
                s.deleted_at = None;
                s.deletion_settled_at = None;
            } else if before.people[p].present && before.user_name(p) == name {
                s.deleted_at = Some(w.now() + time::Duration::hours(step.advance_hours));
            }
            // An earlier identity of a re-created person is deleted for good.
            if before.people[p].present && before.user_name(p) != name {
                let old = seen.entry(before.user_name(p)).or_default();
                old.deleted_at
                    .get_or_insert(w.now() + time::Duration::hours(step.advance_hours));
            }
        }
        w.advance(step.advance_hours);
        w.gateway.set_faults(faults(&step.faults));
        let faulty = w.cycle().await;
        w.gateway.set_faults(Faults::default());
        // A cycle may fail as a whole under faults (the target or the source could not be
        // read), never for anything else.
        if let Err(e) = &faulty {
            assert!(
                matches!(
                    e,
                    scim_sync::SyncError::Target(_)
                        | scim_sync::SyncError::Source(_)
                        | scim_sync::SyncError::Compliance(_)
                ),
                "{e}: {history}"
            );
        }
        safety(&w, &dir, &mut seen, &history).await;
        // One more cycle at once (an incremental read right after the faulty one), then the
        // settle: past every escrow wait, no faults, until a cycle has nothing to send.
        w.cycle().await.unwrap_or_else(|e| panic!("{e}: {history}"));
        safety(&w, &dir, &mut seen, &history).await;
        w.advance(25);
        let mut quiet = false;
        for _ in 0..5 {
            let r = w.cycle().await.unwrap_or_else(|e| panic!("{e}: {history}"));
            assert!(
                matches!(r.status, CycleStatus::Completed),
                "a fault-free cycle: {r:?}: {history}"
            );
            safety(&w, &dir, &mut seen, &history).await;
            if r.counts.requests == 0 {
                quiet = true;
                break;
            }
        }
        assert!(quiet, "no quiet cycle after five: {history}");
        let now = w.now();
        for s in seen.values_mut() {
            if s.deleted_at.is_some() {
                s.deletion_settled_at.get_or_insert(now);
            }
        }
        oracle(&w, &dir, &seen, h.rule, &history).await;
    }
    w.server.finish().await;
}

fn run(kind: Kind, h: History) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(check(kind, h));
}

/// Cases per source kind: `SCIMD_MODEL_CASES` (default 8; `scripts/long-tests.sh` runs
/// more).
fn cases() -> u32 {
    std::env::var("SCIMD_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: cases(), max_shrink_iters: 64, ..Default::default() })]

    #[test]
    fn a_file_source_keeps_the_promises(h in directory::history()) {
        run(Kind::File, h);
    }

    #[test]
    fn a_tenant_source_keeps_the_promises(h in directory::history()) {
        run(Kind::Tenant, h);
    }

    #[test]
    fn a_scim_source_keeps_the_promises(h in directory::history()) {
        run(Kind::Scim, h);
    }

    #[test]
    fn a_polled_ldap_source_keeps_the_promises(h in directory::history()) {
        run(Kind::LdapPoll, h);
    }

    #[test]
    fn a_syncrepl_ldap_source_keeps_the_promises_delete_phase(h in directory::history()) {
        run(Kind::LdapSyncreplDeletes, h);
    }

    #[test]
    fn a_syncrepl_ldap_source_keeps_the_promises_present_phase(h in directory::history()) {
        run(Kind::LdapSyncreplPresent, h);
    }

    #[test]
    fn a_google_source_keeps_the_promises(h in directory::history()) {
        run(Kind::Google, h);
    }

    #[test]
    fn an_entra_source_keeps_the_promises(h in directory::history()) {
        run(Kind::Entra, h);
    }
}

/// A recorded history (found by the tests above): a group's create succeeds, its membership
/// write answers 500, so it waits in escrow; once due, its members must still be sent (a
/// group held in escrow sends nothing, a due one its members alone).
#[test]
fn a_group_whose_membership_write_failed_gets_its_members() {
    use directory::{DeletedRule, FaultPlan, History, Member::*, Op::*, Step};
    let faults = |error_every, reset_every| FaultPlan {
        throttle_every: 0,
        error_every,
        reset_every,
        reset_bulk_every: 0,
    };
    let mut first: Vec<directory::Op> = (0..7).map(Create).collect();
    first.extend([CreateGroup(0), CreateGroup(1), CreateGroup(2)]);
    first.extend([Add(0, P(0)), Add(0, P(1)), Add(1, G(0)), Add(2, P(2))]);
    first.extend([CreateGroup(2), Create(0), Delete(6), Add(1, P(2))]);
    first.extend([RenameGroup(0, 0), DeleteGroup(0)]);
    let second = vec![
        DeleteGroup(0),
        CreateGroup(2),
        CreateGroup(0),
        Rename(2, "Cy", "Brown"),
        Suspend(4),
        CreateGroup(2),
    ];
    let h = History {
        rule: DeletedRule::Delete,
        report_conflicts: false,
        bulk: false,
        steps: vec![
            Step {
                ops: first,
                advance_hours: 0,
                faults: faults(3, 0),
            },
            Step {
                ops: second,
                advance_hours: 1,
                faults: faults(7, 6),
            },
        ],
    };
    // The faults land on different requests from run to run: a few runs.
    for _ in 0..3 {
        run(Kind::Tenant, h.clone());
    }
}
