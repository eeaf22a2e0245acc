//! Sign-in throttling as attacked (issue 35): guesses spread over many addresses meet the
//! name's own allowance; behind a trusted proxy each client is throttled on its forwarded
//! address (one guesser does not lock everyone out); a forwarded address from anyone else is
//! ignored; and the real operator's browser, known from an earlier sign-in, gets in during an
//! attack.

use super::console_http::{Console, OPERATOR, PASSWORD, csrf_of, operator};
use reqwest::StatusCode;
use scim_server::ServerConfig;
use scim_testkit::{Backend, TestServer};

/// One sign-in attempt from `c`, claiming to come through a proxy for `forwarded`.
async fn attempt(c: &Console, password: &str, forwarded: Option<&str>) -> StatusCode {
    let (_, _, page) = c.get("/console/login").await;
    let csrf = csrf_of(&page);
    let mut req = c.http.post(format!("{}/console/login", c.root)).form(&[
        ("csrf", csrf.as_str()),
        ("username", OPERATOR),
        ("password", password),
        ("next", "/console/"),
    ]);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap().status()
}

/// A server behind a proxy on 127.0.0.1 (the tests' own address).
async fn behind_proxy() -> TestServer {
    TestServer::start_with(
        Backend::Sqlite,
        ServerConfig {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..ServerConfig::default()
        },
    )
    .await
}

#[tokio::test]
async fn guesses_from_many_addresses_do_not_lock_the_known_operator_out() {
    let s = behind_proxy().await;
    operator(&s).await;
    // The operator signed in from this browser before: it is known.
    let mut known = Console::new(&s.root);
    assert_eq!(
        known.sign_in(OPERATOR, PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    let csrf = known.csrf.clone();
    let (st, _, _) = known.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        st,
        StatusCode::SEE_OTHER,
        "signed out; the device cookie stays"
    );
    // 40 guesses through the proxy, each from another client address.
    let attacker = Console::new(&s.root);
    let mut verified = 0;
    for i in 1..=40 {
        let st = attempt(&attacker, "wrong", Some(&format!("203.0.113.{i}"))).await;
        assert!(
            matches!(st, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS),
            "{st}"
        );
        verified += usize::from(st == StatusCode::UNAUTHORIZED);
    }
    assert!(verified <= 10, "{verified} guesses were checked");
    // A browser the operator never used is held back now …
    let fresh = Console::new(&s.root);
    assert_eq!(
        attempt(&fresh, PASSWORD, Some("198.51.100.5")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // … but the known one gets in.
    assert_eq!(
        attempt(&known, PASSWORD, Some("198.51.100.5")).await,
        StatusCode::SEE_OTHER
    );
    s.finish().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_through_a_trusted_proxy() {
    // Behind a trusted proxy: one guesser's address is held back, another client's is not.
    let s = behind_proxy().await;
    operator(&s).await;
    let c = Console::new(&s.root);
    for _ in 0..5 {
        attempt(&c, "wrong", Some("203.0.113.7")).await;
    }
    assert_eq!(
        attempt(&c, "wrong", Some("203.0.113.7")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt(&c, PASSWORD, Some("198.51.100.9")).await,
        StatusCode::SEE_OTHER,
        "another client behind the same proxy"
    );
    s.finish().await;
    // No trusted proxy: the header is the client's own claim and changes nothing.
    let s = TestServer::start_with(Backend::Sqlite, ServerConfig::default()).await;
    operator(&s).await;
    let c = Console::new(&s.root);
    for i in 0..5 {
        attempt(&c, "wrong", Some(&format!("203.0.113.{i}"))).await;
    }
    assert_eq!(
        attempt(&c, "wrong", Some("203.0.113.99")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.finish().await;
}
