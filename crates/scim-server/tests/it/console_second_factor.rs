//! The console's second factor over HTTP (issue 32): TOTP set up with a code, sign-in asking
//! for it, a code not accepted twice, recovery codes spent once, turning it off with a code,
//! and `console_require_totp` holding every page until the operator sets one up.

use super::console_http::{Console, OPERATOR, PASSWORD, csrf_of, operator};
use super::console_roles::{ADMIN_PW, tenant_admin};
use reqwest::StatusCode;
use scim_core::audit::Actor;
use scim_core::second_factor::{Requirement, STEP_SECS, code_at};
use scim_server::ServerConfig;
use scim_testkit::{Backend, TestServer};

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s.find(start).unwrap_or_else(|| panic!("{start} in {s}")) + start.len();
    let j = s[i..].find(end).unwrap() + i;
    &s[i..j]
}

fn unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Password, then (if asked) the code; the final status.
async fn sign_in_with(c: &mut Console, user: &str, pw: &str, code: Option<&str>) -> StatusCode {
    let (st, _, page) = c.sign_in(user, pw).await;
    if st != StatusCode::OK || !page.contains("Enter your code") {
        return st;
    }
    let Some(code) = code else { return st };
    let (st, _, _) = c
        .post(
            "/console/login/code",
            &[
                ("csrf", &csrf_of(&page)),
                ("code", code),
                ("next", "/console/tenants"),
            ],
        )
        .await;
    if st == StatusCode::SEE_OTHER {
        let (_, _, page) = c.get("/console/tenants").await;
        c.csrf = csrf_of(&page);
    }
    st
}

async fn totp_sign_in(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let (st, _, page) = c.get("/console/account").await;
    assert_eq!(st, StatusCode::OK);
    let secret = between(&page, "<code id=\"totp-secret\">", "</code>").to_string();
    assert!(page.contains("otpauth://totp/scimd:alice?"), "{page}");
    let qr = between(&page, "id=\"totp-qr\"", "</figure>");
    assert!(
        qr.contains("<svg") && qr.contains("<path") && !qr.contains("<?xml"),
        "{qr}"
    );
    let (st, _, page) = c
        .post(
            "/console/account",
            &[
                ("csrf", &c.csrf),
                ("action", "enable"),
                ("secret", &secret),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("does not match"), "{page}");
    let now = unix();
    let code = code_at(&secret, now).unwrap();
    let (st, _, page) = c
        .post(
            "/console/account",
            &[
                ("csrf", &c.csrf),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let codes: Vec<String> = between(
        &page,
        "<ol class=\"recovery\" id=\"recovery-codes\">",
        "</ol>",
    )
    .split("<code>")
    .skip(1)
    .map(|c| c.split('<').next().unwrap().to_string())
    .collect();
    assert_eq!(codes.len(), 10, "{page}");
    assert!(page.contains("Recovery codes left: <strong id=\"codes-left\">10"));

    // Signing in now asks for the code; no session before it.
    // (Each browser from its own address: the sign-in throttle counts per address and name.)
    let mut b = Console::from_address(&s.root, [127, 0, 0, 2]);
    let (st, _, page) = b.sign_in(OPERATOR, PASSWORD).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Enter your code"), "{page}");
    let (st, _, _) = b.get("/console/tenants").await;
    assert_eq!(
        st,
        StatusCode::SEE_OTHER,
        "no session after the password alone"
    );
    let (st, _, page) = b
        .post(
            "/console/login/code",
            &[("csrf", &csrf_of(&page)), ("code", "123456")],
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong or already used code"), "{page}");
    // The code of the next step (the one used to enable was this step's, and is spent).
    let next = code_at(&secret, now + STEP_SECS).unwrap();
    let (st, _, _) = b
        .post(
            "/console/login/code",
            &[("csrf", &csrf_of(&page)), ("code", &next)],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _, _) = b.get("/console/tenants").await;
    assert_eq!(st, StatusCode::OK);
    // The same code again: refused (replay); then a recovery code, in the same step, once
    // (typed in capitals, without the dash).
    let mut d = Console::from_address(&s.root, [127, 0, 0, 3]);
    let (_, _, page) = d.sign_in(OPERATOR, PASSWORD).await;
    let (st, _, page) = d
        .post(
            "/console/login/code",
            &[("csrf", &csrf_of(&page)), ("code", &next)],
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "replayed");
    let typed = codes[0].to_uppercase().replace('-', "");
    let (st, _, _) = d
        .post(
            "/console/login/code",
            &[("csrf", &csrf_of(&page)), ("code", &typed)],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, _, page) = d.get("/console/tenants").await;
    d.csrf = csrf_of(&page);
    let mut e = Console::from_address(&s.root, [127, 0, 0, 4]);
    assert_eq!(
        sign_in_with(&mut e, OPERATOR, PASSWORD, Some(&codes[0])).await,
        StatusCode::UNAUTHORIZED
    );
    // A forged second step goes back to the start.
    let f = Console::new(&s.root);
    let (st, h, _) = f
        .post("/console/login/code", &[("csrf", "x"), ("code", &next)])
        .await;
    assert!(
        st == StatusCode::FORBIDDEN || h["location"] == "/console/login",
        "{st}"
    );

    // Turned off with a recovery code; the sign-in asks nothing again.
    let (st, _, page) = d
        .post(
            "/console/account",
            &[
                ("csrf", &d.csrf),
                ("action", "disable"),
                ("code", &codes[1]),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Second factor off."));
    let mut g = Console::from_address(&s.root, [127, 0, 0, 5]);
    assert_eq!(g.sign_in(OPERATOR, PASSWORD).await.0, StatusCode::SEE_OTHER);
    let (_, _, audit) = g
        .get("/console/audit?action=admin.second_factor_changed")
        .await;
    assert!(
        audit.contains("alice: on") && audit.contains("alice: off"),
        "{audit}"
    );
}

/// Wrong codes are counted per account, across browsers and addresses: after five the code
/// step closes for 15 minutes, even for the right code.
async fn totp_lockout(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let (_, _, page) = c.get("/console/account").await;
    let secret = between(&page, "<code id=\"totp-secret\">", "</code>").to_string();
    let code = code_at(&secret, unix()).unwrap();
    let (st, _, _) = c
        .post(
            "/console/account",
            &[
                ("csrf", &c.csrf),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut last = String::new();
    for (addr, wrong) in [([127, 0, 0, 2], 3), ([127, 0, 0, 3], 2)] {
        let mut b = Console::from_address(&s.root, addr);
        let (_, _, page) = b.sign_in(OPERATOR, PASSWORD).await;
        assert!(page.contains("Enter your code"), "{page}");
        let mut csrf = csrf_of(&page);
        for _ in 0..wrong {
            let (st, _, page) = b
                .post(
                    "/console/login/code",
                    &[("csrf", &csrf), ("code", "000001")],
                )
                .await;
            assert!(st == StatusCode::UNAUTHORIZED || st == StatusCode::TOO_MANY_REQUESTS);
            csrf = csrf_of(&page);
            last = page;
        }
        if addr[3] == 3 {
            assert!(
                last.contains("Too many wrong codes for this account"),
                "{last}"
            );
            let right = code_at(&secret, unix() + STEP_SECS).unwrap();
            let (st, _, page) = b
                .post("/console/login/code", &[("csrf", &csrf), ("code", &right)])
                .await;
            assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{page}");
            let (st, _, _) = b.get("/console/tenants").await;
            assert_eq!(st, StatusCode::SEE_OTHER, "no session");
        }
    }
}

async fn totp_required(backend: Backend) {
    let config = ServerConfig {
        require_totp: Requirement::Everyone,
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(backend, config).await;
    let c = tenant_admin(&s, "acme", "it@acme.example").await;
    // Every page waits for the second factor; the account page and sign-out do not.
    let (st, h, _) = c.get("/console/t/acme/integration").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/console/account");
    let (st, _, body) = c.get("/console/api/t/acme/events").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, _, page) = c.get("/console/account").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("requires a second factor"), "{page}");
    let secret = between(&page, "<code id=\"totp-secret\">", "</code>").to_string();
    let code = code_at(&secret, unix()).unwrap();
    let (st, _, page) = c
        .post(
            "/console/account",
            &[
                ("csrf", &csrf_of(&page)),
                ("action", "enable"),
                ("secret", &secret),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        !page.contains("id=\"mfa-off\""),
        "cannot be turned off when required"
    );
    let (st, _, _) = c.get("/console/t/acme/integration").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, page) = c
        .post(
            "/console/account",
            &[
                ("csrf", &csrf_of(&page)),
                ("action", "disable"),
                ("code", "1"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("required for your role"), "{page}");
    // The next sign-in asks for the code.
    let mut n = Console::new(&s.root);
    let (_, _, page) = n.sign_in("it@acme.example", ADMIN_PW).await;
    assert!(page.contains("Enter your code"), "{page}");
    // A new-password link is no way around the code: it sets the password, then sign-in.
    let t = s.services.tenants.get("acme").await.unwrap();
    let link = s
        .services
        .access
        .reset_link(
            &t,
            "it@acme.example",
            time::Duration::hours(1),
            &Actor::server(),
        )
        .await
        .unwrap();
    let r = Console::new(&s.root);
    let path = format!("/console/setup/{}", link.secret);
    let (_, _, page) = r.get(&path).await;
    let pw = "a brand new password";
    let (st, h, _) = r
        .post(
            &path,
            &[("csrf", &csrf_of(&page)), ("password", pw), ("repeat", pw)],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/console/login");
    let (st, _, _) = r.get("/console/t/acme/integration").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "no session without the code");
}

scim_testkit::both_backends! {
    second_factor_sign_in => super::totp_sign_in;
    second_factor_required => super::totp_required;
    second_factor_lockout => super::totp_lockout;
}
