//! Setup links over HTTP (issue 32): an instance admin invites the customer's admin, who
//! opens the link, chooses a name and password, lands on the guided set-up, makes Entra's
//! token and sees the first request arrive; the link used twice, revoked, expired, unknown;
//! a new-password link; and what a tenant admin sees on the Admins page.

use super::console_http::{Console, OPERATOR, PASSWORD, csrf_of, operator};
use reqwest::StatusCode;
use scim_core::Timestamp;
use scim_core::prelude::*;
use scim_core::setup_link::{LinkPurpose, NewSetupLink};
use scim_testkit::{Backend, TestServer};

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s.find(start).unwrap_or_else(|| panic!("{start} in {s}")) + start.len();
    let j = s[i..].find(end).unwrap() + i;
    &s[i..j]
}

/// Opens a setup link as a fresh browser and sends the form.
async fn redeem(root: &str, url: &str, form: &[(&str, &str)]) -> (Console, StatusCode, String) {
    let c = Console::new(root);
    let path = url.strip_prefix(root).unwrap();
    let (st, _, page) = c.get(path).await;
    if st != StatusCode::OK {
        return (c, st, page);
    }
    let csrf = csrf_of(&page);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(form);
    let (st, h, body) = c.post(path, &all).await;
    let body = match h.get("location") {
        Some(l) => l.to_str().unwrap().to_string(),
        None => body,
    };
    (c, st, body)
}

async fn invite_to_first_request(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut root = Console::new(&s.root);
    root.sign_in(OPERATOR, PASSWORD).await;
    let (st, _, page) = root.get("/console/t/acme/admins").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("No tenant admin yet"));
    let (st, _, page) = root
        .post(
            "/console/t/acme/admins",
            &[
                ("csrf", &root.csrf),
                ("action", "invite"),
                ("idp", "entra"),
                ("expires", "72h"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    let url = between(&page, "<code id=\"new-link\">", "</code>").to_string();
    assert!(
        url.starts_with(&format!("{}/console/setup/", s.root)),
        "{url}"
    );
    // Shown once: the page again lists the link, never its URL.
    let (_, _, again) = root.get("/console/t/acme/admins").await;
    assert!(
        !again.contains(&url) && again.contains("waiting"),
        "{again}"
    );

    // The customer's admin: mismatched passwords, a bad name, then their access.
    let path = url.strip_prefix(&s.root).unwrap().to_string();
    let (_, st, body) = redeem(
        &s.root,
        &url,
        &[
            ("username", "it@acme.example"),
            ("password", "first password 1"),
            ("repeat", "other password 1"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("The two passwords differ."), "{body}");
    let (_, st, body) = redeem(
        &s.root,
        &url,
        &[
            ("username", "it acme"),
            ("password", "first password 1"),
            ("repeat", "first password 1"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid operator name"), "{body}");
    let (c, st, next) = redeem(
        &s.root,
        &url,
        &[
            ("username", "it@acme.example"),
            ("password", "first password 1"),
            ("repeat", "first password 1"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(next, "/console/t/acme/setup?idp=entra");

    guide_to_first_request(&s, &c, &next).await;
    used_and_listed(&s, &root, &c, &path).await;
    refused_links(&s, &root).await;
    new_password_link(&s, &root, &c).await;
}

/// The guide: Entra's words, the tenant URL, a token made in place, a live check.
async fn guide_to_first_request(s: &TestServer, c: &Console, next: &str) {
    let (st, _, guide) = c.get(next).await;
    assert_eq!(st, StatusCode::OK, "{guide}");
    assert!(
        guide.contains("Non-gallery") && guide.contains(&s.base),
        "{guide}"
    );
    assert!(guide.contains("Waiting for the first request"));
    let (st, _, made) = c
        .post(
            "/console/t/acme/setup",
            &[
                ("csrf", &csrf_of(&guide)),
                ("action", "create-token"),
                ("idp", "entra"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{made}");
    let secret = between(&made, "<code id=\"new-secret\">", "</code>").to_string();
    assert!(made.contains("Microsoft Entra ID provisioning"));
    // Entra's Test Connection: a lookup of a user that does not exist.
    let r = s
        .client
        .get(format!(
            "{}/Users?filter=userName+eq+%22f3b1c0de-0000-4000-8000-000000000000%22",
            s.base
        ))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut received = String::new();
    for _ in 0..50 {
        let (_, _, frag) = c.get("/console/t/acme/setup/status").await;
        if frag.contains("Received") {
            received = frag;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        received.contains("Microsoft Entra ID provisioning"),
        "{received}"
    );
}

/// The link again: used. In the admins list: used, by whom.
async fn used_and_listed(s: &TestServer, root: &Console, c: &Console, path: &str) {
    let (st, _, body) = Console::new(&s.root).get(path).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(body.contains("has been used already"), "{body}");
    let (_, _, list) = root.get("/console/t/acme/admins").await;
    assert!(list.contains("used</span> by it@acme.example"), "{list}");
    assert!(list.contains("data-admin=\"it@acme.example\""));

    // The tenant admin sees the admins, not the links, and cannot make one.
    let (_, _, theirs) = c.get("/console/t/acme/admins").await;
    assert!(theirs.contains("it@acme.example") && !theirs.contains("id=\"links\""));
    let (st, _, _) = c
        .post(
            "/console/t/acme/admins",
            &[("csrf", &c.csrf), ("action", "invite")],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// Revoked, expired and unknown links.
async fn refused_links(s: &TestServer, root: &Console) {
    let (_, _, page) = root
        .post(
            "/console/t/acme/admins",
            &[("csrf", &root.csrf), ("action", "invite")],
        )
        .await;
    let revoked = between(&page, "<code id=\"new-link\">", "</code>").to_string();
    let id = between(&page, "data-link-id=\"", "\"").to_string();
    let (st, _, page) = root
        .post(
            "/console/t/acme/admins",
            &[("csrf", &root.csrf), ("action", "revoke-link"), ("id", &id)],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("no longer opens"), "{page}");
    let (_, st, body) = redeem(&s.root, &revoked, &[]).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(body.contains("revoked"), "{body}");
    let now = Timestamp::now();
    s.store
        .insert_setup_link(&NewSetupLink {
            token_hash: scim_core::token::hash_secret("late-secret"),
            tenant_id: s.tenant_id,
            purpose: LinkPurpose::Invite,
            operator_id: None,
            idp: None,
            created_by: "test".into(),
            created_at: now - time::Duration::days(4),
            expires_at: now - time::Duration::days(1),
        })
        .await
        .unwrap();
    let (st, _, body) = Console::new(&s.root)
        .get("/console/setup/late-secret")
        .await;
    assert_eq!(st, StatusCode::GONE);
    assert!(body.contains("expired"), "{body}");
    let (st, _, body) = Console::new(&s.root).get("/console/setup/never-made").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.contains("not valid"), "{body}");
    assert!(!body.contains("acme"), "an unusable link names no tenant");
}

/// A new-password link: the old password stops working, the new one signs in.
async fn new_password_link(s: &TestServer, root: &Console, c: &Console) {
    let (st, _, page) = root
        .post(
            "/console/t/acme/admins",
            &[
                ("csrf", &root.csrf),
                ("action", "reset-link"),
                ("username", "it@acme.example"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    let reset = between(&page, "<code id=\"new-link\">", "</code>").to_string();
    let (_, st, next) = redeem(
        &s.root,
        &reset,
        &[
            ("password", "second password 2"),
            ("repeat", "second password 2"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{next}");
    let (st, _, _) = c.get("/console/t/acme/integration").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "the old session ended");
    let mut fresh = Console::new(&s.root);
    assert_eq!(
        fresh.sign_in("it@acme.example", "first password 1").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fresh
            .sign_in("it@acme.example", "second password 2")
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    // Another tenant's admin cannot be given a link here.
    let (st, _, page) = root
        .post(
            "/console/t/acme/admins",
            &[
                ("csrf", &root.csrf),
                ("action", "reset-link"),
                ("username", OPERATOR),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
}

scim_testkit::both_backends! {
    invite_to_first_request => super::invite_to_first_request;
}

/// Posts the invite form with an address to e-mail the link to.
async fn invite(root: &Console, email: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    root.post(
        "/console/t/acme/admins",
        &[("csrf", &root.csrf), ("action", "invite"), ("email", email)],
    )
    .await
}

/// With an SMTP server configured, a setup link (invite or new password) can be e-mailed
/// instead of shown: it arrives through a real SMTP server and opens; a bad address, or no
/// SMTP server, is refused before any link is made; an unreachable server leaves the link
/// shown once as usual.
async fn links_by_email(backend: Backend) {
    let without = TestServer::start(backend).await;
    operator(&without).await;
    let mut root = Console::new(&without.root);
    root.sign_in(OPERATOR, PASSWORD).await;
    let (_, _, page) = root.get("/console/t/acme/admins").await;
    assert!(
        !page.contains("id=\"invite-email\""),
        "no SMTP: no address field"
    );
    let (st, _, page) = invite(&root, "it@acme.example").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("no SMTP server is configured"), "{page}");
    let t = without.services.tenants.get("acme").await.unwrap();
    assert!(without.services.access.links(&t).await.unwrap().is_empty());

    let Some(smtp) = scim_testkit::mail::SmtpServer::start() else {
        return;
    };
    let s = TestServer::start_with_smtp(backend, &smtp.url).await;
    operator(&s).await;
    let mut root = Console::new(&s.root);
    root.sign_in(OPERATOR, PASSWORD).await;
    let (_, _, page) = root.get("/console/t/acme/admins").await;
    assert!(page.contains("id=\"invite-email\""), "{page}");
    let (st, _, page) = invite(&root, "not an address").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    let t = s.services.tenants.get("acme").await.unwrap();
    assert!(s.services.access.links(&t).await.unwrap().is_empty());

    let (st, _, page) = invite(&root, "it@acme.example").await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    assert!(page.contains("e-mailed to it@acme.example"), "{page}");
    assert!(
        !page.contains("id=\"new-link\""),
        "one channel: not shown too"
    );
    let mail = smtp
        .wait_for(
            "Set up provisioning for",
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("the invitation arrives");
    assert!(mail.to.contains("it@acme.example"), "{mail:?}");
    // The body is quoted-printable (lines over 76 characters): decoded as a mail reader does.
    let body = mail
        .text
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let url = body
        .split_whitespace()
        .find(|w| w.contains("/console/setup/"))
        .unwrap_or_else(|| panic!("the link is in the mail: {body}"))
        .to_string();
    let form = [
        ("username", "it@acme.example"),
        ("password", "first password 1"),
        ("repeat", "first password 1"),
    ];
    let (_, st, _) = redeem(&s.root, &url, &form).await;
    assert_eq!(
        st,
        StatusCode::SEE_OTHER,
        "the e-mailed link {url} opens: {body}"
    );

    // A new password link, to the admin whose name is their address.
    let (_, _, page) = root.get("/console/t/acme/admins").await;
    assert!(page.contains("E-mail a new password link"), "{page}");
    let (st, _, page) = root
        .post(
            "/console/t/acme/admins",
            &[
                ("csrf", &root.csrf),
                ("action", "reset-link"),
                ("username", "it@acme.example"),
                ("email", "it@acme.example"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    let mail = smtp
        .wait_for("A new password for", std::time::Duration::from_secs(10))
        .await
        .expect("the new password link arrives");
    assert!(mail.text.contains("/console/setup/"), "{mail:?}");

    // The SMTP server gone: the link is made and shown once, with why it was not sent.
    drop(smtp);
    let (st, _, page) = invite(&root, "other@acme.example").await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    assert!(page.contains("could not be e-mailed"), "{page}");
    assert!(page.contains("id=\"new-link\""), "{page}");
}

scim_testkit::both_backends! {
    links_by_email => super::links_by_email;
}
