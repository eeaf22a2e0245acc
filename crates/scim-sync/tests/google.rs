//! The Google Workspace source against the Directory API emulator (`scim_testkit::google`,
//! built from Google's documented wire shapes), provisioning a real scimd tenant: the
//! initial cycle (users, managers, nested, whole-domain and external members), a quiet
//! cycle, a change, a suspension, a delete that stays deleted, an expired token and a
//! throttling storm; and the complete-read guard: a failing page, a truncated list and an
//! empty directory deprovision nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use scim_core::CycleStatus;
use scim_sync::JobSpec;
use scim_sync::engine::CycleReport;
use scim_testkit::Backend;
use scim_testkit::google::{Directory, GoogleFake, GoogleFaults};
use serde_json::{Value, json};

struct Fixture {
    f: support::Fixture,
    spec: JobSpec,
    google: GoogleFake,
}

impl Fixture {
    async fn start(directory: Directory, extra: &str) -> Self {
        let google = GoogleFake::start(directory).await;
        let f = support::Fixture::new(Backend::Sqlite).await;
        std::fs::write(f.dir.path().join("sa.json"), google.key_file()).unwrap();
        let spec = Self::spec(
            &f,
            &google,
            &format!("subject = \"admin@example.com\"\nattempts = 4\n{extra}"),
        );
        f.engine.import(&spec).await.unwrap();
        Self { f, spec, google }
    }

    /// A job reading the emulator with these extra `[source]` keys.
    fn spec(f: &support::Fixture, google: &GoogleFake, keys: &str) -> JobSpec {
        let text = format!(
            "name = \"google-to-app\"\n\n[source]\nkind = \"google\"\ncredentials_file = \"sa.json\"\n\
             api_url = \"{}\"\n{keys}\n\
             [target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n",
            google.url, f.app, f.app_token
        );
        JobSpec::parse(&text, Some(f.dir.path())).unwrap()
    }

    async fn try_run(&self) -> Result<CycleReport, String> {
        let record = scim_core::SyncStore::job(self.f.server.store.as_ref(), &self.spec.name)
            .await
            .unwrap();
        self.f
            .engine
            .run(&self.spec, record.as_ref())
            .await
            .map_err(|e| e.to_string())
    }

    async fn run(&self) -> CycleReport {
        let r = self.f.run(&self.spec).await;
        assert_eq!(r.status, CycleStatus::Completed, "{r:?}");
        r
    }

    async fn user(&self, name: &str) -> Value {
        self.f.user(name).await.expect(name)
    }
}

const PEOPLE: [(&str, &str, &str, &str); 5] = [
    ("100000000000000000001", "ada", "Ada", "Lovelace"),
    ("100000000000000000002", "alan", "Alan", "Turing"),
    ("100000000000000000003", "grace", "Grace", "Hopper"),
    ("100000000000000000004", "linus", "Linus", "Torvalds"),
    ("100000000000000000005", "ken", "Ken", "Thompson"),
];

fn email(name: &str) -> String {
    format!("{name}@example.com")
}

fn directory() -> Directory {
    let mut d = Directory::default();
    for (id, name, given, family) in PEOPLE {
        d.add_user(id, &email(name), given, family);
    }
    let ada = d.user_mut(PEOPLE[0].0);
    ada["organizations"] =
        json!([{"title": "Countess", "department": "Analytics", "primary": true}]);
    ada["externalIds"] = json!([{"value": "E-1815", "type": "organization"}]);
    ada["phones"] = json!([{"value": "+44 20 7946 0001", "type": "work"}]);
    d.user_mut(PEOPLE[2].0)["relations"] = json!([{"value": "Ada@example.com", "type": "manager"}]);
    d.add_group("03x8tuzt1", "eng@example.com", "Engineering");
    d.add_group("03x8tuzt2", "ops@example.com", "Operations");
    d.add_group("03x8tuzt3", "everyone@example.com", "Everyone");
    d.add_member("03x8tuzt1", PEOPLE[0].0, "USER");
    d.add_member("03x8tuzt1", PEOPLE[1].0, "USER");
    d.add_member("03x8tuzt1", "03x8tuzt2", "GROUP");
    d.add_member("03x8tuzt2", PEOPLE[2].0, "USER");
    d.add_member("03x8tuzt2", "guest1", "EXTERNAL");
    d.add_member("03x8tuzt3", "C03az79cb", "CUSTOMER");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_directory_reaches_the_tenant() {
    let f = Fixture::start(directory(), "").await;

    // Initial cycle: users with Google's default mappings, groups with their members.
    let r = f.run().await;
    assert_eq!((r.source_users, r.source_groups), (5, 3), "{r:?}");
    let ada = f.user("ada@example.com").await;
    assert_eq!(ada["name"]["familyName"], "Lovelace");
    assert_eq!(ada["displayName"], "Ada Lovelace");
    assert_eq!(ada["title"], "Countess");
    assert_eq!(ada["externalId"], PEOPLE[0].0);
    assert_eq!(ada["emails"][0]["value"], "ada@example.com");
    assert_eq!(ada["phoneNumbers"][0]["value"], "+44 20 7946 0001");
    let enterprise = &ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(enterprise["employeeNumber"], "E-1815");
    assert_eq!(enterprise["department"], "Analytics");
    // The manager, named by address in Google, is a reference to her user on the target.
    let grace = f.user("grace@example.com").await;
    let manager = &grace["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"];
    assert_eq!(manager["value"], ada["id"], "{grace}");
    let engineering = f.f.members_of("Engineering").await;
    assert!(
        engineering.starts_with(&["ada@example.com".into(), "alan@example.com".into()]),
        "{engineering:?}"
    );
    // A nested group created in the same cycle as its parent may join it on the next one.
    f.run().await;
    assert_eq!(
        f.f.members_of("Engineering").await,
        ["ada@example.com", "alan@example.com", "group Operations"]
    );
    // The external member is skipped; the whole-domain member is every user.
    assert_eq!(f.f.members_of("Operations").await, ["grace@example.com"]);
    assert_eq!(f.f.members_of("Everyone").await.len(), 5);
    let seen = f.google.counts();
    assert_eq!(seen.tokens, 1, "one token for the whole read: {seen:?}");

    // A quiet cycle reads everything again and writes nothing.
    let r = f.run().await;
    assert_eq!(r.counts.requests, 0, "nothing changed: {r:?}");
    assert_eq!(f.google.counts().tokens, 1, "the token is cached");

    // A change, a suspension (archived counts too) and a delete.
    f.google.change(|d| {
        d.user_mut(PEOPLE[0].0)["name"]["familyName"] = json!("King");
        d.user_mut(PEOPLE[1].0)["suspended"] = json!(true);
        d.user_mut(PEOPLE[3].0)["archived"] = json!(true);
        d.remove_user(PEOPLE[4].0);
        d.remove_member("03x8tuzt1", "03x8tuzt2");
    });
    f.run().await;
    assert_eq!(
        f.user("ada@example.com").await["name"]["familyName"],
        "King"
    );
    assert_eq!(
        f.f.active_users().await,
        ["ada@example.com", "grace@example.com"]
    );
    // The nested group left; a suspended member leaves the target's groups too.
    assert_eq!(f.f.members_of("Engineering").await, ["ada@example.com"]);
    // Deleted stays deleted: the next cycles do not bring Ken back.
    f.run().await;
    let r = f.run().await;
    assert_eq!(
        f.f.active_users().await,
        ["ada@example.com", "grace@example.com"]
    );
    assert_eq!(r.counts.requests, 0, "{r:?}");

    // An access token that expired (or was revoked) is fetched again once.
    f.google.expire_tokens();
    f.google
        .change(|d| d.user_mut(PEOPLE[1].0)["suspended"] = json!(false));
    f.run().await;
    assert_eq!(f.google.counts().tokens, 2);
    assert_eq!(
        f.f.active_users().await,
        ["ada@example.com", "alan@example.com", "grace@example.com"]
    );

    // A throttling storm: Google's 403 and 429 answers are waited out, nothing is lost.
    f.google.set_faults(GoogleFaults {
        throttle_every: 3,
        rate_limit_every: 5,
        ..GoogleFaults::default()
    });
    let before = f.google.counts();
    let r = f.run().await;
    let after = f.google.counts();
    assert!(after.throttled > before.throttled, "{after:?}");
    assert_eq!(r.counts.requests, 0, "{r:?}");
    assert_eq!(r.source_users, 4, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_or_empty_read_deprovisions_nothing() {
    let mut d = Directory::default();
    for i in 0..12 {
        d.add_user(
            &format!("2000{i:02}"),
            &email(&format!("p{i:02}")),
            "P",
            &format!("{i}"),
        );
    }
    d.add_group("g1", "all@example.com", "All");
    d.add_member("g1", "200000", "USER");
    let f = Fixture::start(d, "").await;
    f.run().await;
    assert_eq!(f.f.active_users().await.len(), 12);

    // A member list that fails past its retries fails the read: nothing is applied.
    f.google.set_faults(GoogleFaults {
        failing_group: Some("g1".into()),
        ..GoogleFaults::default()
    });
    f.google.change(|d| d.remove_user("200011"));
    let e = f.try_run().await.expect_err("the read failed");
    assert!(e.contains("nothing is deprovisioned"), "{e}");
    assert_eq!(f.f.active_users().await.len(), 12);

    // A users list that ends early without saying so: held by the complete-read guard,
    // whatever the breaker's settings.
    f.google.set_faults(GoogleFaults {
        users_cut_at: Some(3),
        ..GoogleFaults::default()
    });
    let r = f.try_run().await.unwrap();
    let why = r.breaker.clone().unwrap_or_default();
    assert!(why.contains("complete-read guard"), "{r:?}");
    assert_eq!(f.f.active_users().await.len(), 12);

    // An empty directory: the same.
    f.google.set_faults(GoogleFaults {
        users_cut_at: Some(0),
        ..GoogleFaults::default()
    });
    f.google.change(|d| d.members.clear());
    let r = f.try_run().await.unwrap();
    assert!(
        r.breaker
            .as_deref()
            .unwrap_or_default()
            .contains("with no users"),
        "{r:?}"
    );
    assert_eq!(f.f.active_users().await.len(), 12);

    // A whole read again: those back in it are staged no more; the one really gone stays
    // staged until an operator approves (as the breaker's are).
    f.google.set_faults(GoogleFaults::default());
    f.google.change(|d| d.add_member("g1", "200000", "USER"));
    f.run().await;
    assert_eq!(f.f.active_users().await.len(), 12);
    let approved = f.f.engine.decide_staged(&f.spec.name, true).await.unwrap();
    assert_eq!(approved, 1);
    f.run().await;
    assert_eq!(f.f.active_users().await.len(), 11);
    assert!(!f.f.active_users().await.contains(&email("p11")));

    // An ordinary leaver in a whole read is disabled at once (under the guard's floor).
    f.google.change(|d| d.remove_user("200010"));
    f.run().await;
    assert_eq!(f.f.active_users().await.len(), 10);
}

/// `sync test` (and the console's Test source) say what is wrong with the setup in words an
/// administrator can act on; the key never appears in what they say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mistakes_are_explained() {
    let cases = [
        (
            "subject = \"nobody@example.com\"\n",
            "source.subject (nobody@example.com)",
        ),
        ("domain = \"other.example\"\n", "source.customer"),
    ];
    for (keys, expect) in cases {
        let g = Fixture::start(directory(), "").await;
        let keys = if keys.starts_with("subject") {
            keys.to_string()
        } else {
            format!("subject = \"admin@example.com\"\n{keys}")
        };
        let spec = Fixture::spec(&g.f, &g.google, &format!("attempts = 1\n{keys}"));
        let checks = g.f.engine.test(&spec, None).await;
        let source = checks.iter().find(|c| c.name == "source").unwrap();
        assert!(!source.ok, "{checks:?}");
        assert!(source.detail.contains(expect), "{}", source.detail);
        assert!(!source.detail.contains("PRIVATE KEY"), "{}", source.detail);
    }
}

/// A group of 1,001 members: its member list spans six pages of 200, all of them read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_a_thousand_members() {
    let mut d = Directory::default();
    d.add_group("big", "all@example.com", "Everyone");
    for i in 0..1001 {
        let id = format!("3{i:05}");
        d.add_user(&id, &email(&format!("m{i:04}")), "M", &format!("{i}"));
        d.add_member("big", &id, "USER");
    }
    let f = Fixture::start(d, "").await;
    f.run().await;
    assert_eq!(f.f.group_size("Everyone").await, 1001);
    let pages = f.google.counts().by_route["members"];
    assert_eq!(pages, 6, "1,001 members at 200 a page");
}
