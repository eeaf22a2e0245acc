//! The Entra ID source against the Graph emulator (`scim_testkit::entra`, built from the
//! documented wire shapes), provisioning a real scimd tenant: the initial sync (a guest, a
//! manager, a soft-deleted user, a group whose members span pages, a nested group), a quiet
//! cycle, changes with replays, a disable, a soft delete and its restore, a hard delete that
//! stays deleted, membership changes, 410 and an expired delta token (a resync that
//! deprovisions only what is gone), throttling with Retry-After, and a wrong secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use scim_core::CycleStatus;
use scim_sync::JobSpec;
use scim_sync::engine::CycleReport;
use scim_testkit::Backend;
use scim_testkit::entra::{CLIENT_ID, CLIENT_SECRET, Directory, EntraFake, EntraFaults, TENANT_ID};
use serde_json::json;

struct Fixture {
    f: support::Fixture,
    spec: JobSpec,
    entra: EntraFake,
}

fn job(f: &support::Fixture, entra: &EntraFake, keys: &str) -> JobSpec {
    std::fs::write(
        f.dir.path().join("graph.secret"),
        format!("{CLIENT_SECRET}\n"),
    )
    .unwrap();
    let text = format!(
        "name = \"entra-to-app\"\n\n[source]\nkind = \"entra\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret_file = \"graph.secret\"\nauthority_url = \"{0}\"\ngraph_url = \"{0}\"\n{keys}\n\
         [target]\nurl = \"{1}\"\ntoken = \"{2}\"\nrate_limit = 0\n",
        entra.url, f.app, f.app_token
    );
    JobSpec::parse(&text, Some(f.dir.path())).unwrap()
}

impl Fixture {
    async fn start(dir: Directory) -> Self {
        let entra = EntraFake::start(dir).await;
        let f = support::Fixture::new(Backend::Sqlite).await;
        let spec = job(
            &f,
            &entra,
            &format!("tenant_id = \"{TENANT_ID}\"\nattempts = 4\n"),
        );
        f.engine.import(&spec).await.unwrap();
        Self { f, spec, entra }
    }

    async fn run(&self) -> CycleReport {
        let r = self.f.run(&self.spec).await;
        assert_eq!(r.status, CycleStatus::Completed, "{r:?}");
        r
    }
}

fn directory() -> Directory {
    let mut d = Directory::default();
    for (id, name, given, surname) in [
        ("u1", "ada", "Ada", "Lovelace"),
        ("u2", "alan", "Alan", "Turing"),
        ("u3", "grace", "Grace", "Hopper"),
        ("u4", "linus", "Linus", "Torvalds"),
        ("u5", "ken", "Ken", "Thompson"),
    ] {
        d.add_user(id, &format!("{name}@contoso.com"), given, surname);
    }
    d.user_mut("u1")["jobTitle"] = json!("Countess");
    d.user_mut("u1")["employeeId"] = json!("E-1815");
    d.set_manager("u3", "u1");
    // A B2B guest: Entra's UPN for her is not her address.
    let guest = d.add_user(
        "u6",
        "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "Bob",
        "Guest",
    );
    guest["mail"] = json!("bob@fabrikam.com");
    d.add_user("u7", "old@contoso.com", "Old", "Leaver");
    d.soft_delete("u7");
    d.add_group("g1", "Engineering");
    d.add_group("g2", "Operations");
    for u in ["u1", "u2", "u3", "u4", "u5"] {
        d.add_member("g1", u, false);
    }
    d.add_member("g1", "g2", true);
    d.add_member("g2", "u3", false);
    d
}

const ALL: [&str; 6] = [
    "ada@contoso.com",
    "alan@contoso.com",
    "bob@fabrikam.com",
    "grace@contoso.com",
    "ken@contoso.com",
    "linus@contoso.com",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_directory_reaches_the_tenant() {
    let f = Fixture::start(directory()).await;

    // The initial sync: every page of both streams; the soft-deleted user is not provisioned.
    let r = f.run().await;
    assert_eq!((r.source_users, r.source_groups), (6, 2), "{r:?}");
    assert_eq!(f.f.active_users().await, ALL);
    let ada = f.f.user("ada@contoso.com").await.unwrap();
    assert_eq!(ada["title"], "Countess");
    assert_eq!(ada["name"]["familyName"], "Lovelace");
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(ada[ext]["employeeNumber"], "E-1815");
    let grace = f.f.user("grace@contoso.com").await.unwrap();
    assert_eq!(grace[ext]["manager"]["value"], ada["id"], "{grace}");
    // Engineering's six members came over three pages; Operations may join it next cycle.
    f.run().await;
    let mut want: Vec<String> = ALL
        .iter()
        .filter(|n| !n.contains("bob"))
        .map(|s| s.to_string())
        .collect();
    want.push("group Operations".into());
    want.sort();
    assert_eq!(f.f.members_of("Engineering").await, want);
    assert_eq!(f.f.members_of("Operations").await, ["grace@contoso.com"]);

    // A quiet cycle: one delta page per stream, nothing written.
    let before = f.entra.counts().requests;
    let r = f.run().await;
    assert_eq!(r.counts.requests, 0, "{r:?}");
    assert_eq!(
        f.entra.counts().requests - before,
        2,
        "one delta page per stream"
    );

    // Changes, replayed: a title, a disable, a member removed; the manager is kept.
    f.entra.set_faults(EntraFaults {
        replay: true,
        ..EntraFaults::default()
    });
    f.entra.change(|d| {
        d.user_mut("u3")["jobTitle"] = json!("Rear Admiral");
        d.user_mut("u2")["accountEnabled"] = json!(false);
        d.remove_member("g1", "u4");
    });
    f.run().await;
    let grace = f.f.user("grace@contoso.com").await.unwrap();
    assert_eq!(grace["title"], "Rear Admiral");
    assert_eq!(grace[ext]["manager"]["value"], ada["id"], "kept: {grace}");
    assert!(
        !f.f.active_users()
            .await
            .contains(&"alan@contoso.com".to_string())
    );
    assert!(
        !f.f.members_of("Engineering")
            .await
            .contains(&"linus@contoso.com".to_string())
    );

    // A soft delete disables (Entra's own default), a restore brings the user back; a hard
    // delete stays deleted.
    f.entra.change(|d| d.soft_delete("u4"));
    f.run().await;
    assert!(
        !f.f.active_users()
            .await
            .contains(&"linus@contoso.com".to_string())
    );
    f.entra.change(|d| d.restore("u4"));
    f.run().await;
    assert!(
        f.f.active_users()
            .await
            .contains(&"linus@contoso.com".to_string())
    );
    f.entra.change(|d| d.hard_delete("u5"));
    f.run().await;
    f.run().await;
    assert!(
        !f.f.active_users()
            .await
            .contains(&"ken@contoso.com".to_string())
    );

    // Throttling: 429 with Retry-After is waited out.
    f.entra.set_faults(EntraFaults {
        throttle_every: 2,
        ..EntraFaults::default()
    });
    f.entra
        .change(|d| d.user_mut("u1")["jobTitle"] = json!("Analyst"));
    f.run().await;
    assert!(f.entra.counts().throttled > 0);
    assert_eq!(
        f.f.user("ada@contoso.com").await.unwrap()["title"],
        "Analyst"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_deprovisions_only_what_is_gone() {
    let f = Fixture::start(directory()).await;
    f.run().await;
    f.run().await;
    let active = f.f.active_users().await;
    assert_eq!(active, ALL);

    // 410 Gone: a full resync; one user deleted meanwhile is the only one deprovisioned.
    f.entra.change(|d| d.hard_delete("u5"));
    f.entra.set_faults(EntraFaults {
        gone_once: true,
        ..EntraFaults::default()
    });
    let r = f.run().await;
    assert_eq!(f.entra.counts().resyncs, 1);
    assert_eq!(r.source_users, 5, "{r:?}");
    let mut want: Vec<&str> = ALL.to_vec();
    want.retain(|n| *n != "ken@contoso.com");
    assert_eq!(f.f.active_users().await, want);

    // An expired delta token (syncStateNotFound): the same.
    let at = f.entra.position();
    f.entra
        .change(|d| d.user_mut("u1")["jobTitle"] = json!("Poet"));
    f.entra.set_faults(EntraFaults {
        expire_before: Some(at + 1),
        ..EntraFaults::default()
    });
    f.run().await;
    assert_eq!(f.entra.counts().resyncs, 2);
    assert_eq!(f.f.active_users().await, want);
    assert_eq!(f.f.user("ada@contoso.com").await.unwrap()["title"], "Poet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mistakes_are_explained() {
    let entra = EntraFake::start(directory()).await;
    let f = support::Fixture::new(Backend::Sqlite).await;
    let cases = [
        (
            format!("tenant_id = \"{TENANT_ID}\"\n"),
            "wrong-secret",
            "copy the secret's Value",
        ),
        (
            "tenant_id = \"contoso.example\"\n".to_string(),
            CLIENT_SECRET,
            "source.tenant_id",
        ),
    ];
    for (keys, secret, expect) in cases {
        let spec = job(&f, &entra, &format!("{keys}attempts = 1\n"));
        std::fs::write(f.dir.path().join("graph.secret"), secret).unwrap();
        let checks = f.engine.test(&spec, None).await;
        let source = checks.iter().find(|c| c.name == "source").unwrap();
        assert!(!source.ok, "{checks:?}");
        assert!(source.detail.contains(expect), "{}", source.detail);
        assert!(!source.detail.contains(secret), "{}", source.detail);
    }
}

/// A group of 1,001 members: Graph sends it as several items over several pages, merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_a_thousand_members() {
    let mut d = Directory::default();
    d.add_group("big", "Everyone");
    for i in 0..1001 {
        let id = format!("m{i:04}");
        d.add_user(&id, &format!("{id}@contoso.com"), "M", &format!("{i}"));
        d.add_member("big", &id, false);
    }
    let f = Fixture::start(d).await;
    f.entra.set_faults(EntraFaults {
        page_size: 50,
        members_per_page: 100,
        ..EntraFaults::default()
    });
    f.run().await;
    assert_eq!(f.f.group_size("Everyone").await, 1001);
    // And one member leaving shows as one change.
    f.entra.change(|d| d.remove_member("big", "m0007"));
    f.run().await;
    assert_eq!(f.f.group_size("Everyone").await, 1000);
}

/// A certificate credential (a client assertion signed with the certificate's key) instead
/// of a secret; a job naming both is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_instead_of_a_secret() {
    let entra = EntraFake::start(directory()).await;
    let f = support::Fixture::new(Backend::Sqlite).await;
    std::fs::write(
        f.dir.path().join("app.cert.pem"),
        scim_testkit::entra::TEST_CERT_PEM,
    )
    .unwrap();
    std::fs::write(
        f.dir.path().join("app.key.pem"),
        scim_testkit::entra::TEST_KEY_PEM,
    )
    .unwrap();
    let text = format!(
        "name = \"entra-cert\"\n\n[source]\nkind = \"entra\"\ntenant_id = \"{TENANT_ID}\"\n\
         client_id = \"{CLIENT_ID}\"\ncertificate_file = \"app.cert.pem\"\n\
         certificate_key_file = \"app.key.pem\"\nauthority_url = \"{0}\"\ngraph_url = \"{0}\"\n\n\
         [target]\nurl = \"{1}\"\ntoken = \"{2}\"\nrate_limit = 0\n",
        entra.url, f.app, f.app_token
    );
    let spec = JobSpec::parse(&text, Some(f.dir.path())).unwrap();
    let r = f.run(&spec).await;
    assert_eq!(r.status, CycleStatus::Completed, "{r:?}");
    assert_eq!(f.active_users().await, ALL);
    let both = text.replace(
        "certificate_file",
        "client_secret_env = \"X\"\ncertificate_file",
    );
    let e = JobSpec::parse(&both, Some(f.dir.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not both"), "{e}");
}
