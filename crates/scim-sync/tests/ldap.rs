//! The LDAP source against a real OpenLDAP (slapd on loopback, see `scim_testkit::ldap`),
//! provisioning a real scimd tenant: the initial cycle (users, a groupOfNames, a posixGroup,
//! a groupOfUniqueNames), an attribute change, a disable, a delete and membership changes,
//! each reaching the tenant through incremental reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use scim_core::{Store, Timestamp};
use scim_sync::engine::CycleReport;
use scim_sync::{Engine, JobSpec};
use scim_testkit::ldap::{ADMIN_DN, ADMIN_PASSWORD, SUFFIX, Slapd};
use scim_testkit::{Backend, TestServer};
use serde_json::Value;
use std::sync::Arc;

fn person(uid: &str, given: &str, sn: &str, title: &str) -> String {
    format!(
        "dn: uid={uid},ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {sn}\n\
         givenName: {given}\nsn: {sn}\nmail: {uid}@example.com\ntitle: {title}\n\n"
    )
}

struct Fixture {
    server: TestServer,
    token: String,
    engine: Engine,
    spec: JobSpec,
}

impl Fixture {
    async fn run(&self) -> CycleReport {
        let record = scim_core::SyncStore::job(self.server.store.as_ref(), &self.spec.name)
            .await
            .unwrap();
        let r = self.engine.run(&self.spec, record.as_ref()).await.unwrap();
        assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
        r
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/t/app/scim/v2{path}", self.server.root))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn user(&self, name: &str) -> Value {
        let v = self
            .get(&format!("/Users?filter=userName%20eq%20%22{name}%22"))
            .await;
        assert_eq!(v["totalResults"], 1, "{name}: {v}");
        v["Resources"][0].clone()
    }

    /// A group's members, by userName.
    async fn members(&self, group: &str) -> Vec<String> {
        let v = self
            .get(&format!("/Groups?filter=displayName%20eq%20%22{group}%22"))
            .await;
        let mut out = Vec::new();
        for m in v["Resources"][0]["members"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let u = self
                .get(&format!("/Users/{}", m["value"].as_str().unwrap()))
                .await;
            out.push(u["userName"].as_str().unwrap().to_string());
        }
        out.sort();
        out
    }
}

/// How the directory tells changes: polled modifyTimestamp (no syncprov), syncrepl whose
/// server reports deletes (a session log), syncrepl whose server lists what is present.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Detection {
    Poll,
    SyncreplDeletes,
    SyncreplPresent,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_directory_reaches_the_tenant() {
    a_directory_reaches_the_tenant(Detection::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syncrepl_directory_reaches_the_tenant_delete_phase() {
    a_directory_reaches_the_tenant(Detection::SyncreplDeletes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syncrepl_directory_reaches_the_tenant_present_phase() {
    a_directory_reaches_the_tenant(Detection::SyncreplPresent).await;
}

async fn a_directory_reaches_the_tenant(how: Detection) {
    let ldap = match how {
        Detection::Poll => Slapd::start(),
        Detection::SyncreplDeletes => Slapd::start_syncrepl(true),
        Detection::SyncreplPresent => Slapd::start_syncrepl(false),
    };
    let Some(ldap) = ldap else { return };
    ldap.add(&format!(
        "{}{}{}\
         dn: cn=engineering,ou=Groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: engineering\n\
         member: uid=ada,ou=People,{SUFFIX}\nmember: uid=alan,ou=People,{SUFFIX}\n\n\
         dn: cn=research,ou=Groups,{SUFFIX}\nobjectClass: posixGroup\ncn: research\ngidNumber: 5001\n\
         memberUid: ada\nmemberUid: grace\n\n\
         dn: cn=ops,ou=Groups,{SUFFIX}\nobjectClass: groupOfUniqueNames\ncn: ops\n\
         uniqueMember: uid=grace, ou=People, {SUFFIX}\n\n",
        person("ada", "Ada", "Lovelace", "Countess"),
        person("alan", "Alan", "Turing", "Mathematician"),
        person("grace", "Grace", "Hopper", "Rear Admiral"),
    ));

    let server = TestServer::start(Backend::Sqlite).await;
    let (_, token) = server.tenant("app").await;
    let spec = JobSpec::parse(
        &format!(
            "name = \"ldap-to-app\"\n\n[source]\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\n\
             password = \"{ADMIN_PASSWORD}\"\nbase_dn = \"{SUFFIX}\"\ndisabled = \"employeeType=disabled\"\npage_size = 2\n\n\
             [target]\nurl = \"{}/t/app/scim/v2\"\ntoken = \"{token}\"\nrate_limit = 0\n",
            ldap.url, server.root
        ),
        None,
    )
    .unwrap();
    let store: Arc<dyn Store> = server.store.clone();
    let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
    let engine = Engine::new(store, Some(key), time::Duration::days(30))
        .with_outbound(scim_net::Policy::allow_local());
    engine.import(&spec).await.unwrap();
    let f = Fixture {
        server,
        token,
        engine,
        spec,
    };

    // Initial cycle: every user and group, memberships by DN, by uid, by uniqueMember.
    let r = f.run().await;
    assert_eq!(r.mode, scim_core::CycleMode::Initial);
    assert_eq!((r.source_users, r.source_groups), (3, 3), "{r:?}");
    let ada = f.user("ada@example.com").await;
    assert_eq!(ada["name"]["familyName"], "Lovelace");
    assert_eq!(ada["emails"][0]["value"], "ada@example.com");
    assert_eq!(ada["title"], "Countess");
    assert_eq!(ada["active"], true);
    let external = ada["externalId"].as_str().unwrap();
    assert_eq!(external.len(), 36, "entryUUID as externalId: {external}");
    assert_eq!(
        f.members("engineering").await,
        ["ada@example.com", "alan@example.com"]
    );
    assert_eq!(
        f.members("research").await,
        ["ada@example.com", "grace@example.com"]
    );
    assert_eq!(f.members("ops").await, ["grace@example.com"]);
    let r = f.run().await;
    assert_eq!(r.counts.requests, 0, "nothing changed: {r:?}");
    let watermark = |f: &Fixture| {
        let f = f.server.store.clone();
        async move {
            scim_core::SyncStore::job(f.as_ref(), "ldap-to-app")
                .await
                .unwrap()
                .unwrap()
                .state
                .watermark
                .unwrap_or_default()
        }
    };
    let first = watermark(&f).await;
    // `sync status --json` says which change detection the source uses (§11).
    let status = serde_json::to_value(f.engine.status("ldap-to-app").await.unwrap()).unwrap();
    assert_eq!(status["watermark"]["mode"], first["mode"], "{status}");
    if how == Detection::Poll {
        assert_eq!(first["mode"], "poll", "{first}");
        assert!(
            first["since"].as_str().is_some_and(|s| s.ends_with('Z')),
            "{first}"
        );
    } else {
        assert_eq!(
            first["mode"], "syncrepl",
            "chosen because slapd offers it: {first}"
        );
        assert!(
            first["users"].is_string() && first["groups"].is_string(),
            "{first}"
        );
    }

    // An attribute change.
    ldap.modify(&format!(
        "dn: uid=alan,ou=People,{SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Codebreaker\n"
    ));
    let r = f.run().await;
    assert_eq!(r.mode, scim_core::CycleMode::Incremental);
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Update),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(f.user("alan@example.com").await["title"], "Codebreaker");

    // A disable.
    ldap.modify(&format!(
        "dn: uid=grace,ou=People,{SUFFIX}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n"
    ));
    let r = f.run().await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Disable),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(f.user("grace@example.com").await["active"], false);

    // Membership changes: a new user into engineering, ada out of it.
    ldap.add(&person("linus", "Linus", "Torvalds", "Maintainer"));
    ldap.modify(&format!(
        "dn: cn=engineering,ou=Groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: uid=linus,ou=People,{SUFFIX}\n-\ndelete: member\nmember: uid=ada,ou=People,{SUFFIX}\n"
    ));
    let r = f.run().await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Create),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(
        f.members("engineering").await,
        ["alan@example.com", "linus@example.com"]
    );

    // A delete: found by the id scan of the next incremental cycle; the default rule
    // disables at once and deletes after 30 days.
    ldap.delete(&format!("uid=alan,ou=People,{SUFFIX}"));
    let r = f.run().await;
    assert_eq!(r.mode, scim_core::CycleMode::Incremental);
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Disable),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(f.user("alan@example.com").await["active"], false);
    // Every read after the first was incremental (no full re-read within a day).
    let last = watermark(&f).await;
    assert_eq!(last["full_at"], first["full_at"], "{last}");
    if how == Detection::Poll {
        assert!(
            last["since"].as_str() >= first["since"].as_str(),
            "{first} {last}"
        );
    } else {
        assert_ne!(last["users"], first["users"], "the cookie moved");
    }
    let status = f.engine.status("ldap-to-app").await.unwrap();
    assert_eq!(status.next_timers.len(), 1, "{status:?}");
    println!(
        "ldap: {:?} after {}",
        status.ledger,
        Timestamp::now().rfc3339()
    );
    f.server.finish().await;
}

/// Defect 3 of issue 30: a user's `manager` (a DN) is provisioned as the manager's target id
/// (Entra's manager reference), by the LDAP defaults; a manager outside the user filter
/// cannot be written, and a cycle that has nothing to send logs nothing (it logged an
/// `Update` every cycle while sending no request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_are_provisioned_by_reference_polled() {
    managers_are_provisioned_by_reference(Detection::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_are_provisioned_by_reference_syncrepl() {
    managers_are_provisioned_by_reference(Detection::SyncreplDeletes).await;
}

async fn managers_are_provisioned_by_reference(how: Detection) {
    let ldap = match how {
        Detection::Poll => Slapd::start(),
        _ => Slapd::start_syncrepl(true),
    };
    let Some(ldap) = ldap else { return };
    let managed = |uid: &str, given: &str, manager: &str| {
        person(uid, given, "Staff", "Engineer")
            .trim_end()
            .to_string()
            + &format!("\nmanager: uid={manager},ou=People,{SUFFIX}\n\n")
    };
    ldap.add(&format!(
        "{}{}{}",
        person("grace", "Grace", "Hopper", "Rear Admiral"),
        managed("ada", "Ada", "grace"),
        // A manager the source does not read (no such entry): nothing can be written.
        managed("alan", "Alan", "nobody"),
    ));
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, token) = server.tenant("app").await;
    let spec = JobSpec::parse(
        &format!(
            "name = \"managers\"\n\n[source]\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\n\
             password = \"{ADMIN_PASSWORD}\"\nbase_dn = \"{SUFFIX}\"\n\n\
             [target]\nurl = \"{}/t/app/scim/v2\"\ntoken = \"{token}\"\nrate_limit = 0\n",
            ldap.url, server.root
        ),
        None,
    )
    .unwrap();
    let store: Arc<dyn Store> = server.store.clone();
    let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
    let engine = Engine::new(store, Some(key), time::Duration::days(30))
        .with_outbound(scim_net::Policy::allow_local());
    engine.import(&spec).await.unwrap();
    let f = Fixture {
        server,
        token,
        engine,
        spec,
    };
    f.run().await;
    let grace = f.user("grace@example.com").await;
    let ada = f.user("ada@example.com").await;
    assert_eq!(ada[ENTERPRISE]["manager"]["value"], grace["id"], "{ada}");
    let alan = f.user("alan@example.com").await;
    assert!(alan[ENTERPRISE]["manager"].is_null(), "{alan}");
    let rows = |f: &Fixture| {
        let e = f.engine.clone();
        async move {
            let q = scim_core::SyncLogQuery {
                limit: 1000,
                ..Default::default()
            };
            e.log("managers", &q).await.unwrap().len()
        }
    };
    let logged = rows(&f).await;
    for round in 0..2 {
        let r = f.run().await;
        assert_eq!(r.counts.requests, 0, "round {round}: {r:?}");
        assert!(
            r.counts.actions.is_empty(),
            "round {round}: nothing to log: {r:?}"
        );
        assert_eq!(
            rows(&f).await,
            logged,
            "round {round}: a log row for no change"
        );
    }
    // A new manager: the reference follows (its DN resolved in an incremental read).
    ldap.modify(&format!(
        "dn: uid=alan,ou=People,{SUFFIX}\nchangetype: modify\nreplace: manager\nmanager: uid=ada,ou=People,{SUFFIX}\n"
    ));
    let r = f.run().await;
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Update),
        Some(&1),
        "{r:?}"
    );
    let alan = f.user("alan@example.com").await;
    assert_eq!(alan[ENTERPRISE]["manager"]["value"], ada["id"], "{alan}");
    f.server.finish().await;
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// ldaps:// and StartTLS against slapd with a certificate from a private CA: trusted through
/// `tls_ca_file`, refused (with a clear error, nothing provisioned) without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_verify_the_directory() {
    let Some(ldap) = Slapd::start_tls() else {
        return;
    };
    ldap.add(&person("ada", "Ada", "Lovelace", "Countess"));
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, token) = server.tenant("app").await;
    let store: Arc<dyn Store> = server.store.clone();
    let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
    let engine = Engine::new(store, Some(key), time::Duration::days(30))
        .with_outbound(scim_net::Policy::allow_local());
    let ca = ldap.ca_file.clone().unwrap();
    let job = |name: &str, url: &str, extra: &str| {
        JobSpec::parse(
            &format!(
                "name = \"{name}\"\n\n[source]\nkind = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{ADMIN_DN}\"\n\
                 password = \"{ADMIN_PASSWORD}\"\nbase_dn = \"{SUFFIX}\"\n{extra}\n\
                 [target]\nurl = \"{}/t/app/scim/v2\"\ntoken = \"{token}\"\nrate_limit = 0\n",
                server.root
            ),
            None,
        )
        .unwrap()
    };
    let ldaps = ldap.ldaps_url.clone().unwrap();
    let ca_line = format!("tls_ca_file = \"{}\"", ca.display());
    for (name, url, extra) in [
        ("untrusted", ldaps.as_str(), String::new()),
        (
            "untrusted-starttls",
            ldap.url.as_str(),
            "starttls = true".to_string(),
        ),
    ] {
        let err = engine.run(&job(name, url, &extra), None).await.unwrap_err();
        assert!(
            err.to_string().contains("LDAP: cannot connect"),
            "{name}: {err}"
        );
    }
    for (name, url, extra) in [
        ("ldaps", ldaps.as_str(), ca_line.clone()),
        (
            "starttls",
            ldap.url.as_str(),
            format!("starttls = true\n{ca_line}"),
        ),
    ] {
        let r = engine.run(&job(name, url, &extra), None).await.unwrap();
        assert_eq!(r.status, scim_core::CycleStatus::Completed, "{name}: {r:?}");
        assert_eq!(r.source_users, 1, "{name}");
    }
    server.finish().await;
}
