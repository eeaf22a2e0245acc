//! Roles in the console (issue 32): every console route, read from the router's source so
//! that a new route is checked without being listed here, tried by a tenant admin against a
//! tenant they do not administer, against one they only read, and against the instance pages.

use super::console_http::{Console, csrf_of};
use reqwest::StatusCode;
use scim_core::audit::Actor;
use scim_core::setup_link::Idp;
use scim_testkit::{Backend, TestServer};

const ROUTER: &str = include_str!("../../src/console/mod.rs");
pub const ADMIN_PW: &str = "tenant admin password";

/// `(path, methods)` of every `.route("…", …)` in the console's router.
fn routes() -> Vec<(String, Vec<&'static str>)> {
    let mut out = Vec::new();
    let mut rest = ROUTER;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, ch)| {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(j, _)| j)
            .unwrap();
        let call = &rest[..end];
        let path = call.split('"').nth(1).unwrap().to_string();
        let mut methods = Vec::new();
        if call.contains("get(") {
            methods.push("GET");
        }
        if call.contains("post(") {
            methods.push("POST");
        }
        assert!(!methods.is_empty(), "a route without get or post: {call}");
        out.push((path, methods));
        rest = &rest[end..];
    }
    out
}

/// Open to anyone, by design: sign-in, static files, setup links.
fn public(path: &str) -> bool {
    path == "/login"
        || path == "/login/code"
        || path.starts_with("/static/")
        || path.starts_with("/setup/")
}

/// Open to any signed-in operator (each sees only their own tenants).
fn signed_in_only(path: &str, method: &str) -> bool {
    matches!(
        (path, method),
        ("/", _)
            | ("/logout", _)
            | ("/account", _)
            | ("/tenants", "GET")
            | ("/audit", "GET")
            | ("/apps", "GET")
    )
}

/// An app's pages a reader of one of its tenants may open (the app named in the path is
/// looked up first).
fn app_read(path: &str, method: &str) -> bool {
    method == "GET"
        && path.starts_with("/apps/{name}")
        && !["/review", "/mappings", "/scope"]
            .iter()
            .any(|p| path.ends_with(p))
}

fn fill(path: &str, tenant: &str) -> String {
    path.replace("{tenant}", tenant)
        .replace("{name}", "some-app")
        .replace("{id}", "some-id")
        .replace("{seq}", "1")
        .replace("{secret}", "x")
}

/// A tenant admin made through a real setup link; returns a signed-in console.
pub async fn tenant_admin(s: &TestServer, slug: &str, name: &str) -> Console {
    let t = s.services.tenants.get(slug).await.unwrap();
    let link = s
        .services
        .access
        .invite(
            &t,
            Some(Idp::Entra),
            time::Duration::hours(1),
            &Actor::server(),
        )
        .await
        .unwrap();
    s.services
        .access
        .accept_invite(&link.secret, name, ADMIN_PW, None)
        .await
        .unwrap();
    let mut c = Console::new(&s.root);
    assert_eq!(c.sign_in(name, ADMIN_PW).await.0, StatusCode::SEE_OTHER);
    c
}

/// Grants `name` read-only access to the tenant `slug`.
async fn read_only_on(s: &TestServer, slug: &str, name: &str) {
    let t = s.services.tenants.get(slug).await.unwrap();
    s.services
        .access
        .grant(
            &t,
            name,
            Some(scim_core::access::Access::ReadOnly),
            &Actor::server(),
        )
        .await
        .unwrap();
}

async fn every_route_checks_the_role(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.tenant("globex").await;
    s.tenant("initech").await;
    let c = tenant_admin(&s, "acme", "ta@acme.example").await;
    read_only_on(&s, "globex", "ta@acme.example").await;
    let all = routes();
    assert!(all.len() >= 25, "the router was read: {all:?}");
    let csrf = c.csrf.clone();
    let mut checked = 0;
    for (path, methods) in &all {
        if public(path) {
            continue;
        }
        for &m in methods {
            if signed_in_only(path, m) {
                continue;
            }
            let send = |p: String| {
                let c = &c;
                let csrf = csrf.clone();
                async move {
                    if m == "GET" {
                        c.get(&format!("/console{p}")).await
                    } else {
                        c.post(
                            &format!("/console{p}"),
                            &[("csrf", csrf.as_str()), ("action", "create"), ("name", "x")],
                        )
                        .await
                    }
                }
            };
            if path.contains("{tenant}") {
                // Another tenant's route: as if it did not exist.
                // (Or instance admins' only, which says nothing of the tenant either.)
                let (st, _, body) = send(fill(path, "initech")).await;
                if st == StatusCode::FORBIDDEN {
                    assert!(
                        body.contains("only an instance admin"),
                        "{m} {path}: {body}"
                    );
                } else {
                    assert_eq!(st, StatusCode::NOT_FOUND, "{m} {path} (not theirs): {body}");
                    assert!(body.contains("no tenant"), "{m} {path}: {body}");
                }
                // A read-only tenant: no form goes through.
                if m == "POST" {
                    let (st, _, body) = send(fill(path, "globex")).await;
                    assert_eq!(st, StatusCode::FORBIDDEN, "{m} {path} (read-only): {body}");
                }
            } else if app_read(path, m) {
                // An app that is not theirs (here: none at all) is as if it did not exist.
                let (st, _, body) = send(fill(path, "acme")).await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{m} {path}: {body}");
                assert!(body.contains("no app"), "{m} {path}: {body}");
            } else {
                let (st, _, body) = send(fill(path, "acme")).await;
                assert_eq!(
                    st,
                    StatusCode::FORBIDDEN,
                    "{m} {path} (instance only): {body}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} route-methods checked");

    // Their own tenant works; the tenants list and the navigation show only what is theirs.
    let (st, _, page) = c.get("/console/t/acme/integration").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, page2) = c
        .post(
            "/console/t/acme/integration",
            &[
                ("csrf", &csrf_of(&page)),
                ("action", "create"),
                ("name", "Okta"),
                ("users", "rw"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page2}");
    let (_, _, list) = c.get("/console/tenants").await;
    assert!(list.contains("/console/t/acme/") && list.contains("/console/t/globex/"));
    assert!(!list.contains("initech"), "another tenant is not listed");
    assert!(!list.contains("Create a tenant"));
    let (st, _, _) = c.get("/console/t/globex/users").await;
    assert_eq!(st, StatusCode::OK, "read-only reads");
    let (_, _, hooks) = c.get("/console/t/acme/webhooks").await;
    assert!(hooks.contains("endpoints-instance-only") && !hooks.contains("id=\"add-endpoint\""));
    for page in ["integration", "webhooks"] {
        let (_, _, ro) = c.get(&format!("/console/t/globex/{page}")).await;
        assert!(
            !ro.contains("method=\"post\" action=\"/console/t/globex"),
            "read-only: no forms on {page}"
        );
    }
    let (_, _, ro) = c.get("/console/t/globex/setup").await;
    assert!(
        ro.contains("read-only") && !ro.contains("id=\"make-token\""),
        "{ro}"
    );
    // The log API answers in its own shape.
    let (st, _, body) = c.get("/console/api/t/initech/events").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.starts_with("{\"error\""), "{body}");
    let (st, _, _) = c.get("/console/api/t/acme/events").await;
    assert_eq!(st, StatusCode::OK);
}

/// Makes app `name` through the New app form, as the instance admin `op`: a CSV source,
/// the target tenant `target` of this scimd.
async fn make_app(s: &TestServer, op: &Console, name: &str, target: (&str, &str), csv: &str) {
    let (target, token) = target;
    let url = format!("{}/t/{{tenant-name}}/scim/v2", s.root);
    let (st, _, page) = op
        .post(
            "/console/apps/new",
            &[
                ("csrf", op.csrf.as_str()),
                ("action", "create"),
                ("name", name),
                ("source_kind", "csv"),
                ("source_path", csv),
                ("source_id", "employee_id"),
                ("target_url", &url),
                ("target_tenant", target),
                ("token", token),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
}

/// A tenant admin sees the apps that provision their tenants, read-only, and no other: not
/// in the list, and an app's pages answer 404 as for an app that does not exist.
async fn apps_of_their_tenants_are_read_only(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, initech) = s.tenant("initech").await;
    super::console_http::operator(&s).await;
    let mut op = Console::new(&s.root);
    op.sign_in(super::console_http::OPERATOR, super::console_http::PASSWORD)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "employee_id,userName\n1,a@example.com\n").unwrap();
    let csv = csv.display().to_string();
    make_app(&s, &op, "into-acme", ("acme", &s.token), &csv).await;
    make_app(&s, &op, "into-initech", ("initech", &initech), &csv).await;

    // An app reading tenant globex into initech: seen by whoever reads globex.
    s.tenant("globex").await;
    let url = format!("{}/t/initech/scim/v2", s.root);
    let (st, _, page) = op
        .post(
            "/console/apps/new",
            &[
                ("csrf", op.csrf.as_str()),
                ("action", "create"),
                ("name", "from-globex"),
                ("source_kind", "tenant"),
                ("source_tenant", "globex"),
                ("target_url", &url),
                ("token", &initech),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");

    let c = tenant_admin(&s, "acme", "ta@acme.example").await;
    let (_, _, list) = c.get("/console/apps").await;
    assert!(!list.contains("from-globex"), "no grant on globex: {list}");
    let (st, _, _) = c.get("/console/apps/from-globex").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    read_only_on(&s, "globex", "ta@acme.example").await;
    let (st, _, list) = c.get("/console/apps").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert!(list.contains("into-acme"), "{list}");
    assert!(
        list.contains("from-globex"),
        "read-only on its source: {list}"
    );
    let (st, _, page) = c.get("/console/apps/from-globex").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        !list.contains("into-initech"),
        "another tenant's app is not listed"
    );
    assert!(!list.contains("id=\"new-app\""), "{list}");
    let (st, _, page) = c.get("/console/apps/into-acme").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"app-read-only\""), "{page}");
    for control in [
        "turn-on",
        "test-connection",
        "delete-app",
        "provision-now",
        "notify-save",
    ] {
        assert!(
            !page.contains(&format!("id=\"{control}\"")),
            "{control} shown"
        );
    }
    assert!(!page.contains("people.csv"), "no server paths: {page}");
    for sub in ["log", "settings"] {
        let (st, _, p) = c.get(&format!("/console/apps/into-acme/{sub}")).await;
        assert_eq!(st, StatusCode::OK, "{sub}: {p}");
        if sub != "log" {
            assert!(
                p.contains("class=\"bare\" disabled"),
                "{sub}: forms disabled"
            );
        }
    }
    // Planning a cycle, the pages that read the source live (a preview of any source user,
    // any expression), and every change, are the instance admins'.
    for sub in [
        "review",
        "mappings?user=1",
        "mappings?expression=x",
        "scope",
    ] {
        let (st, _, _) = c.get(&format!("/console/apps/into-acme/{sub}")).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{sub}");
    }
    let csrf = c.csrf.clone();
    for (path, action) in [
        ("/console/apps/into-acme", "run"),
        ("/console/apps/into-acme", "delete"),
        ("/console/apps/into-acme/settings", "save"),
    ] {
        let (st, _, body) = c
            .post(path, &[("csrf", csrf.as_str()), ("action", action)])
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path} {action}: {body}");
    }
    assert!(s.services.tenants.get("acme").await.is_ok());
    let (st, _, _) = op.get("/console/apps/into-acme").await;
    assert_eq!(st, StatusCode::OK, "still there for the instance admin");
    // A stored app that no longer parses (names no tenant): 404 as well, never its error
    // text; the instance admin sees why on the Apps list.
    use scim_core::SyncStore;
    let mut broken = s.store.job("into-initech").await.unwrap().unwrap();
    broken.name = "broken".into();
    broken.spec = "name = \"broken\"\n[source]\nkind = \"nonsense\"\n".into();
    s.store.put_job(&broken).await.unwrap();
    let (st, _, body) = c.get("/console/apps/broken").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.contains("nonsense"), "{body}");
    let (_, _, list) = c.get("/console/apps").await;
    assert!(!list.contains("broken"), "{list}");
    let (_, _, list) = op.get("/console/apps").await;
    assert!(list.contains("cannot be read"), "{list}");
    // Another tenant's app: as if it did not exist, on every page.
    for sub in ["", "/log", "/log/1", "/settings"] {
        let (st, _, body) = c.get(&format!("/console/apps/into-initech{sub}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{sub}: {body}");
        assert!(
            body.contains("there is no app &#39;into-initech&#39;"),
            "{body}"
        );
    }
}

scim_testkit::both_backends! {
    every_route_checks_the_role => super::every_route_checks_the_role;
    apps_of_their_tenants_are_read_only => super::apps_of_their_tenants_are_read_only;
}
