//! The Webhooks page in a real headless Chromium: add an endpoint and copy its secret, see
//! deliveries arrive, send a test event, watch a failing receiver show as Retrying, replay.
//! Screenshots land in `target/console-screenshots/` as `webhooks-*.png`.

use crate::console_browser::{browser, click, fill, shot, start_driver, wait_text};
use crate::console_http::{OPERATOR, PASSWORD, operator};
use fantoccini::Locator;
use scim_testkit::webhook::{Mode, Receiver};
use scim_testkit::{Backend, TestServer};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_in_chromium() {
    let s = TestServer::start(Backend::Sqlite).await;
    operator(&s).await;
    let rx = Receiver::start();
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let page = format!("{}/console/t/acme/webhooks", s.root);
    c.goto(&page).await.unwrap();
    wait_text(&c, "h1", "Sign in to scimd").await;
    fill(&c, "#username", OPERATOR).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#sign-in").await;
    wait_text(&c, "h1", "Webhooks").await;
    shot(&c, "webhooks-01-empty").await;

    fill(&c, "#hook-url", &rx.url).await;
    fill(&c, "#hook-types", "user.*").await;
    fill(&c, "#hook-description", "Seat billing").await;
    click(&c, "#add-hook").await;
    let secret = wait_text(&c, "#new-secret", "whsec_").await;
    shot(&c, "webhooks-02-secret-once").await;

    for i in 0..3 {
        s.user(&format!("w{i}@example.com")).await;
    }
    rx.until(Duration::from_secs(10), "three deliveries", |g| {
        g.len() >= 3
    })
    .await;
    c.goto(&page).await.unwrap();
    wait_text(&c, ".deliveries", "user.created").await;
    let text = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&secret[12..]), "not shown again");
    click(&c, ".test-hook").await;
    wait_text(&c, "#message", "Test event delivered").await;
    shot(&c, "webhooks-03-delivered").await;

    rx.set_mode(Mode::Status(503));
    s.user("late@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        c.goto(&page).await.unwrap();
        let t = c
            .find(Locator::Css(".endpoint"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if t.contains("Retrying") && t.contains("503") {
            break;
        }
        assert!(Instant::now() < deadline, "{t}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shot(&c, "webhooks-04-retrying").await;
    rx.set_mode(Mode::Accept);
    rx.until(Duration::from_secs(10), "the catch-up", |g| {
        g.iter().any(|r| r.sequence() == 4)
    })
    .await;
    fill(&c, ".replay-from", "2").await;
    click(&c, ".replay").await;
    wait_text(&c, "#message", "Delivering again from event 2").await;
    rx.until(Duration::from_secs(10), "the replay", |g| {
        g.iter().filter(|r| r.sequence() == 2).count() == 2
    })
    .await;
    c.goto(&page).await.unwrap();
    wait_text(&c, ".endpoint", "Active").await;
    shot(&c, "webhooks-05-replayed").await;
    c.close().await.unwrap();
    s.finish().await;
}
