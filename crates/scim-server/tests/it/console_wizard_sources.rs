//! The New app wizard's LDAP and SCIM sources over HTTP, against a real slapd and another
//! tenant of this scimd.

use crate::console_apps_http::{app_path, post};
use crate::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::StatusCode;
use scim_core::SyncStore;
use scim_testkit::{Backend, TestServer};

/// The wizard's LDAP and SCIM sources against a real slapd and another tenant of this
/// scimd: Test source says what it read (or why not), the password is sealed when the app
/// is saved and still works from the app page.
#[tokio::test]
async fn ldap_and_scim_sources_from_the_wizard() {
    use scim_testkit::ldap::{ADMIN_DN, ADMIN_PASSWORD, SUFFIX, Slapd};
    let Some(ldap) = Slapd::start() else { return };
    let person = |uid: &str| {
        format!(
            "dn: uid={uid},ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
             cn: {uid}\nsn: {uid}\nmail: {uid}@example.com\n\n"
        )
    };
    ldap.add(&format!(
        "{}{}dn: cn=eng,ou=Groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: eng\n\
         member: uid=ada,ou=People,{SUFFIX}\n\n",
        person("ada"),
        person("alan")
    ));
    let s = TestServer::start(Backend::Sqlite).await;
    operator(&s).await;
    let (_, target_token) = s.tenant("app").await;
    let (_, hr_token) = s.tenant("hr").await;
    let hr = format!("{}/t/hr/scim/v2", s.root);
    let created = reqwest::Client::new()
        .post(format!("{hr}/Users"))
        .bearer_auth(&hr_token)
        .json(&serde_json::json!({"userName": "grace@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let target = format!("{}/t/app/scim/v2", s.root);
    let ldap_form = |action: &'static str, password: &'static str| {
        vec![
            ("action", action.to_string()),
            ("name", "directory".to_string()),
            ("source_kind", "ldap".into()),
            ("source_url", ldap.url.clone()),
            ("source_bind_dn", ADMIN_DN.into()),
            ("source_base_dn", SUFFIX.into()),
            ("source_secret", password.into()),
            ("target_url", target.clone()),
            ("token", target_token.clone()),
            ("csrf", c.csrf.clone()),
        ]
    };

    // A wrong password: the check fails and says why; the password is not echoed.
    let (st, _, page) = post(
        &c,
        "/console/apps/new",
        ldap_form("test-source", "wrong-pw"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("✗ source"), "{page}");
    assert!(!page.contains("wrong-pw"), "the password is not echoed");
    // The right one: what the directory holds.
    let (_, _, page) = post(
        &c,
        "/console/apps/new",
        ldap_form("test-source", ADMIN_PASSWORD),
    )
    .await;
    assert!(page.contains("✓ source"), "{page}");
    assert!(page.contains("2 users, 1 groups"), "{page}");
    // Another SCIM server (here the hr tenant) as the source.
    let scim_form = vec![
        ("action", "test-source".to_string()),
        ("source_kind", "scim".into()),
        ("source_url", hr.clone()),
        ("source_secret", hr_token.clone()),
        ("csrf", c.csrf.clone()),
    ];
    let (_, _, page) = post(&c, "/console/apps/new", scim_form).await;
    assert!(page.contains("✓ source"), "{page}");
    assert!(page.contains("1 users, 0 groups"), "{page}");
    assert!(!page.contains(&hr_token), "the token is not echoed");

    // Saved: the password sealed, not in the stored TOML; the app page's test still reads
    // the directory with it.
    advanced_ldap_settings(&c, &ldap_form).await;
    let with = |action: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut f = ldap_form(action, ADMIN_PASSWORD);
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let settings = [
        ("source_change_detection", "poll"),
        ("source_user_filter", "(objectClass=inetOrgPerson)"),
    ];
    let (st, h, _) = post(&c, "/console/apps/new", with("create", &settings)).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let jobs = s.store.jobs().await.unwrap();
    assert!(
        jobs[0].spec.contains("change_detection = \"poll\""),
        "{}",
        jobs[0].spec
    );
    assert!(jobs[0].sealed_secret.is_some());
    assert!(!jobs[0].spec.contains("password"), "{}", jobs[0].spec);
    let app = app_path(&h);
    let (st, _, page) = c.post(&app, &[("action", "test"), ("csrf", &c.csrf)]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("✓ source"), "{page}");
    assert!(page.contains("2 users, 1 groups"), "{page}");
    s.finish().await;
}

/// The LDAP step's advanced settings against slapd: a filter that matches no one reads no
/// one; a bad disabled rule is refused with the key's message.
async fn advanced_ldap_settings(
    c: &Console,
    ldap_form: &impl Fn(&'static str, &'static str) -> Vec<(&'static str, String)>,
) {
    use scim_testkit::ldap::ADMIN_PASSWORD;
    let with = |action: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut f = ldap_form(action, ADMIN_PASSWORD);
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let (_, _, page) = post(
        c,
        "/console/apps/new",
        with(
            "test-source",
            &[("source_user_filter", "(uid=nobody-here)")],
        ),
    )
    .await;
    assert!(page.contains("0 users"), "{page}");
    let (_, _, page) = post(
        c,
        "/console/apps/new",
        with("test-source", &[("source_disabled", "a&b&c")]),
    )
    .await;
    assert!(page.contains("source.disabled"), "{page}");
}
