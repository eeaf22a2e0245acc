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
        ("/", _) | ("/logout", _) | ("/account", _) | ("/tenants", "GET") | ("/audit", "GET")
    )
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

async fn every_route_checks_the_role(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.tenant("globex").await;
    s.tenant("initech").await;
    let c = tenant_admin(&s, "acme", "ta@acme.example").await;
    let g = s.services.tenants.get("globex").await.unwrap();
    s.services
        .access
        .grant(
            &g,
            "ta@acme.example",
            Some(scim_core::access::Access::ReadOnly),
            &Actor::server(),
        )
        .await
        .unwrap();
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
    assert!(
        !list.contains("href=\"/console/apps\""),
        "no Apps for a tenant admin"
    );
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

scim_testkit::both_backends! {
    every_route_checks_the_role => super::every_route_checks_the_role;
}
