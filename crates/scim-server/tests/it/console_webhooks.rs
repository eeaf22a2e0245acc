//! The console's Webhooks page over HTTP: add an endpoint (secret shown once), deliveries
//! arriving, a test event, failures shown with their status, disable/enable, replay, errors
//! on the page, CSRF and tenant isolation; the Events scope in the token form.

use super::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::StatusCode;
use scim_testkit::webhook::{Mode, Receiver};
use scim_testkit::{Backend, TestServer};
use std::time::Duration;

const PAGE: &str = "/console/t/acme/webhooks";

fn endpoint_id(page: &str) -> String {
    let i = page.find("data-endpoint-id=\"").unwrap() + "data-endpoint-id=\"".len();
    page[i..i + page[i..].find('"').unwrap()].to_string()
}

async fn the_webhooks_page(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let csrf = c.csrf.clone();
    let (st, _, page) = c.get(PAGE).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains("Add endpoint") && page.contains("/t/acme/events"),
        "{page}"
    );

    let rx = Receiver::start();
    let (st, _, page) = c
        .post(
            PAGE,
            &[
                ("csrf", &csrf),
                ("action", "add"),
                ("url", &rx.url),
                ("types", ""),
                ("description", "billing"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    let i = page.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let secret = page[i..i + page[i..].find('<').unwrap()].to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = endpoint_id(&page);
    let (_, _, again) = c.get(PAGE).await;
    assert!(!again.contains(&secret[12..]), "the secret is shown once");
    assert!(again.contains(&secret[..12]), "its prefix is shown");

    // A change arrives, signed.
    s.user("hooked@example.com").await;
    rx.until(Duration::from_secs(10), "the first delivery", |g| {
        !g.is_empty()
    })
    .await;
    let got = rx.received();
    let want = scim_core::webhook::sign(
        &secret,
        &got[0].id,
        got[0].timestamp.parse().unwrap(),
        got[0].body.as_bytes(),
    )
    .unwrap();
    assert_eq!(got[0].signature, want);
    assert_eq!(got[0].json["type"], "user.created");

    // Send test event.
    let (st, _, page) = c
        .post(PAGE, &[("csrf", &csrf), ("action", "test"), ("id", &id)])
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Test event delivered"), "{page}");
    assert!(
        rx.received()
            .iter()
            .any(|r| r.json["type"] == "webhook.test")
    );

    // Failures show as Retrying with the status in the deliveries table.
    rx.set_mode(Mode::Status(500));
    s.user("fails@example.com").await;
    let start = std::time::Instant::now();
    loop {
        let (_, _, page) = c.get(PAGE).await;
        if page.contains("status-retrying") && page.contains(">500<") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An operator's disable: no failure banner; enable resumes and catches up.
    let (_, _, page) = c
        .post(PAGE, &[("csrf", &csrf), ("action", "disable"), ("id", &id)])
        .await;
    assert!(
        page.contains("status-disabled") && !page.contains("endpoint-failed"),
        "{page}"
    );
    rx.set_mode(Mode::Accept);
    let (_, _, page) = c
        .post(PAGE, &[("csrf", &csrf), ("action", "enable"), ("id", &id)])
        .await;
    assert!(page.contains("Endpoint enabled"), "{page}");
    rx.until(Duration::from_secs(10), "the second event", |g| {
        g.iter().any(|r| r.sequence() == 2)
    })
    .await;
    // Replay from 1.
    let before = rx.received().len();
    let (_, _, page) = c
        .post(
            PAGE,
            &[
                ("csrf", &csrf),
                ("action", "replay"),
                ("id", &id),
                ("from", "1"),
            ],
        )
        .await;
    assert!(page.contains("Delivering again from event 1"), "{page}");
    rx.until(Duration::from_secs(10), "the replay", |g| {
        g.len() >= before + 2
    })
    .await;
    let (_, _, page) = c
        .post(
            PAGE,
            &[
                ("csrf", &csrf),
                ("action", "replay"),
                ("id", &id),
                ("from", "50"),
            ],
        )
        .await;
    assert!(
        page.contains("replay from a sequence between 1 and 3"),
        "{page}"
    );

    // Errors on the page, clearly; CSRF; another tenant's page does not reach this endpoint.
    let (st, _, page) = c
        .post(
            PAGE,
            &[("csrf", &csrf), ("action", "add"), ("url", "ftp://nope")],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("https://"), "{page}");
    let (st, _, page) = c
        .post(
            PAGE,
            &[
                ("csrf", &csrf),
                ("action", "add"),
                ("url", &rx.url),
                ("types", "user.exploded"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("unknown event type"), "{page}");
    let (st, _, _) = c.post(PAGE, &[("action", "delete"), ("id", &id)]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    s.tenant("globex").await;
    let (st, _, _) = c
        .post(
            "/console/t/globex/webhooks",
            &[("csrf", &csrf), ("action", "delete"), ("id", &id)],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, _, page) = c.get("/console/t/globex/webhooks").await;
    assert!(!page.contains(&id));

    // Rotate shows a new secret once; delete.
    let (_, _, page) = c
        .post(PAGE, &[("csrf", &csrf), ("action", "rotate"), ("id", &id)])
        .await;
    assert!(
        page.contains("New signing secret") && page.contains("whsec_"),
        "{page}"
    );
    let (_, _, page) = c
        .post(PAGE, &[("csrf", &csrf), ("action", "delete"), ("id", &id)])
        .await;
    assert!(
        page.contains("Endpoint deleted") && !page.contains("data-endpoint-id"),
        "{page}"
    );

    // The token form offers the Events scope.
    let (st, _, page) = c
        .post(
            "/console/t/acme/integration",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("name", "app feed"),
                ("users", "none"),
                ("groups", "none"),
                ("bulk", "none"),
                ("events", "r"),
                ("expires", "never"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    assert!(page.contains("Events: Read"), "{page}");
    // Each change is in the audit log, once; the refused ones (a bad URL, no CSRF) are not.
    let (_, _, audit) = c.get("/console/audit?tenant=acme").await;
    for (action, n) in [
        ("webhook.added", 1),
        ("webhook.disabled", 1),
        ("webhook.enabled", 1),
        ("webhook.replayed", 1),
        ("webhook.secret_rotated", 1),
        ("webhook.deleted", 1),
        // The test server's own token (by scimd) and the events token made here.
        ("token.created", 2),
    ] {
        let seen = audit.matches(&format!("<code>{action}</code>")).count();
        assert_eq!(seen, n, "{action}: {audit}");
    }
    s.finish().await;
}

scim_testkit::both_backends! {
    console_webhooks => super::the_webhooks_page;
}
