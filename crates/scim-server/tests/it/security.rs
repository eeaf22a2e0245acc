//! The second security pass (issue 35), each attack as it was made, against a real server:
//! outbound destinations (SSRF) refused in every spelling, a multiplying mapping expression,
//! console apps reading files outside the source directory, list and event pages capped by
//! bytes, a resource that cannot grow without bound, long polls capped per token, and names
//! that look alike being one name.

use super::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::StatusCode;
use scim_server::ServerConfig;
use scim_testkit::{Backend, TestServer, both_backends};
use serde_json::json;
use std::time::{Duration, Instant};

const WEBHOOKS: &str = "/console/t/acme/webhooks";

#[tokio::test]
async fn webhook_endpoints_inside_the_network_are_refused_in_every_spelling() {
    // The default policy: no loopback, no metadata, no link-local.
    let s = TestServer::start_with(Backend::Sqlite, ServerConfig::default()).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let rx = scim_testkit::webhook::Receiver::start();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1:9/",
        "http://localhost:9/",
        "http://[::1]/",
        "http://0.0.0.0/",
        rx.url.as_str(),
    ] {
        let (st, _, page) = c
            .post(
                WEBHOOKS,
                &[("csrf", &c.csrf), ("action", "add"), ("url", url)],
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {page}");
        assert!(
            page.contains("never connects there") || page.contains("outbound_allow_loopback"),
            "{url}: {page}"
        );
    }
    let endpoints = s
        .services
        .webhooks
        .list(&s.tenant_by_id(s.tenant_id).await)
        .await
        .unwrap();
    assert!(endpoints.is_empty(), "nothing was stored");
    s.finish().await;
}

#[tokio::test]
async fn the_engine_does_not_connect_to_metadata_services() {
    let s = TestServer::start_with(Backend::Sqlite, ServerConfig::default()).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let form = |target: &str| {
        vec![
            ("csrf", c.csrf.clone()),
            ("action", "test".into()),
            ("name", "probe".into()),
            ("source_kind", "tenant".into()),
            ("source_tenant", "acme".into()),
            ("target_url", target.to_string()),
            ("token", "secret-token".into()),
        ]
    };
    for (target, says) in [
        ("http://169.254.169.254/scim/v2", "cloud metadata"),
        ("http://metadata.google.internal/scim/v2", "cloud metadata"),
        ("http://[fe80::1]/scim/v2", "link-local"),
        ("http://127.0.0.1:9/scim/v2", "loopback"),
    ] {
        let f = form(target);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (st, _, page) = c.post("/console/apps/new", &pairs).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert!(page.contains(says), "{target}: {page}");
    }
    s.finish().await;
}

#[tokio::test]
async fn a_multiplying_expression_is_refused_and_the_server_keeps_serving() {
    let s = TestServer::start(Backend::Sqlite).await;
    operator(&s).await;
    let (_, other_token) = s.tenant("other").await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let url = format!("{}/t/acme/scim/v2", s.root);
    let (st, h, page) = c
        .post(
            "/console/apps/new",
            &[
                ("csrf", &c.csrf),
                ("action", "create"),
                ("name", "hr"),
                ("source_kind", "tenant"),
                ("source_tenant", "other"),
                ("target_url", &url),
                ("token", &s.token),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let app = h["location"]
        .to_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let mappings = format!("{app}/mappings");
    let mut nest = "[userName]".to_string();
    for _ in 0..10 {
        nest = format!(r#"Replace({nest}, "a", , , "aaaaaaaaaa", , )"#);
    }
    // The tester answers at once, saying why; another tenant is served meanwhile.
    let started = Instant::now();
    let tester_path = format!("{mappings}?expression={}", percent(&nest));
    let other_path = format!("{}/t/other/scim/v2/Users", s.root);
    let tester = c.get(&tester_path);
    let other = s.send(
        reqwest::Method::GET,
        &other_path,
        Some(&other_token),
        None,
        &[],
    );
    let ((st, _, page), other) = tokio::join!(tester, other);
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("over the limit"), "{page}");
    assert_eq!(other.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Saving it is refused; nothing is stored.
    let before = s.services.tenants.list().await.unwrap().len();
    let (st, _, page) = c
        .post(
            &mappings,
            &[
                ("csrf", &c.csrf),
                ("action", "save"),
                ("target", "title"),
                ("kind", "expression"),
                ("value", &nest),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("over the limit"), "{page}");
    assert_eq!(s.services.tenants.list().await.unwrap().len(), before);
    use scim_core::SyncStore;
    assert!(!s.store.jobs().await.unwrap()[0].spec.contains("aaaaaaaaaa"));
    s.finish().await;
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn console_apps_read_only_files_inside_the_source_directory() {
    let outside = tempfile::tempdir().unwrap();
    let sources = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("tls.key"),
        "id\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
    )
    .unwrap();
    std::fs::write(
        sources.path().join("people.csv"),
        "id,userName\n1,a@example.com\n",
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        outside.path().join("tls.key"),
        sources.path().join("key.csv"),
    )
    .unwrap();
    let s = TestServer::start_full(
        Backend::Sqlite,
        ServerConfig {
            outbound: scim_net::Policy::allow_local(),
            ..ServerConfig::default()
        },
        Some(sources.path().to_path_buf()),
    )
    .await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let url = format!("{}/t/acme/scim/v2", s.root);
    let key_path = outside.path().join("tls.key").display().to_string();
    let attempt = |action: &'static str, path: String| {
        let csrf = c.csrf.clone();
        let (url, token) = (url.clone(), s.token.clone());
        let c = &c;
        async move {
            c.post(
                "/console/apps/new",
                &[
                    ("csrf", csrf.as_str()),
                    ("action", action),
                    ("name", "hr"),
                    ("source_kind", "csv"),
                    ("source_path", path.as_str()),
                    ("source_id", "id"),
                    ("target_url", url.as_str()),
                    ("token", token.as_str()),
                ],
            )
            .await
        }
    };
    for path in [
        key_path.clone(),
        "../tls.key".into(),
        "/etc/passwd".into(),
        #[cfg(unix)]
        "key.csv".into(),
    ] {
        for action in ["test-source", "test", "create"] {
            let (_, _, page) = attempt(action, path.clone()).await;
            assert!(
                page.contains("only files inside"),
                "{action} {path}: {page}"
            );
            assert!(!page.contains("BEGIN PRIVATE KEY"), "{page}");
            assert!(!page.contains("root:"), "{page}");
        }
    }
    use scim_core::SyncStore;
    assert!(s.store.jobs().await.unwrap().is_empty());
    let (st, _, page) = attempt("create", "people.csv".into()).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    s.finish().await;

    // Without a source directory, console apps read uploaded files only.
    let s = TestServer::start_full(Backend::Sqlite, ServerConfig::default(), None).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let (_, _, page) = c
        .post(
            "/console/apps/new",
            &[
                ("csrf", &c.csrf),
                ("action", "create"),
                ("name", "hr"),
                ("source_kind", "csv"),
                ("source_path", &key_path),
                ("source_id", "id"),
                ("target_url", "https://app.example/scim/v2"),
                ("token", "t"),
            ],
        )
        .await;
    assert!(page.contains("upload the file instead"), "{page}");
    s.finish().await;
}

async fn pages_and_resources_are_bounded_by_bytes(backend: Backend) {
    let s = TestServer::start(backend).await;
    // 150 users of ~60 KB: 9 MB in all, over one page's 8 MiB.
    let big = "x".repeat(60_000);
    for i in 0..150 {
        let r = s
            .post(
                "/Users",
                json!({"userName": format!("u{i:03}@example.com"), "title": big}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut start = 1;
    loop {
        let r = s
            .get(&format!("/Users?count=1000&startIndex={start}"))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["totalResults"], 150);
        let n = r.body["itemsPerPage"].as_u64().unwrap();
        let got = r.body["Resources"].as_array().unwrap();
        assert_eq!(got.len() as u64, n);
        assert!(n < 150, "the page ended early: {n}");
        for u in got {
            seen.insert(u["id"].as_str().unwrap().to_string());
        }
        start += n;
        if start > 150 {
            break;
        }
    }
    assert_eq!(seen.len(), 150, "paging by startIndex reaches every user");
    // Cursor paging too.
    let r = s.get("/Users?count=1000&cursor").await;
    assert!(r.body["nextCursor"].is_string(), "{}", r.body["nextCursor"]);
    // One user cannot grow without bound: PATCHes adding to it stop at the limit.
    let id = s.user("growing@example.com").await;
    let mut refused = None;
    for i in 0..10 {
        let r = s
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "add", "path": "emails", "value": [{"value": format!("{i}{}@example.com", "e".repeat(20_000))}]}]),
            )
            .await;
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("a PATCH past the size limit is refused");
    r.assert_error(413, None);
    assert!(
        r.body["detail"].as_str().unwrap().contains("at most"),
        "{}",
        r.body
    );
    s.finish().await;
}

/// A token that reads the tenant's change feed.
async fn events_token(s: &TestServer) -> String {
    s.issue(
        s.tenant_id,
        scim_core::TokenScopes::parse_list(&["events:r"]).unwrap(),
        None,
    )
    .await
}

async fn event_pages_and_long_polls_are_bounded(backend: Backend) {
    let s = TestServer::start(backend).await;
    let reader = events_token(&s).await;
    let events = |q: &str| {
        let (root, token) = (s.root.clone(), reader.clone());
        let q = q.to_string();
        let s = &s;
        async move {
            s.send(
                reqwest::Method::GET,
                &format!("{root}/t/acme/events?{q}"),
                Some(&token),
                None,
                &[],
            )
            .await
        }
    };
    for bad in ["limit=0", "limit=1001", "limit=-1"] {
        let r = events(bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // Four long polls per token wait at once; a fifth is told to come back.
    let head = events("after=latest").await.body["next_after"]
        .as_i64()
        .unwrap();
    let waits: Vec<_> = (0..5)
        .map(|_| events(&format!("after={head}&wait=3")))
        .collect();
    let answers = futures_util::future::join_all(waits).await;
    let refused = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        refused,
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .any(|r| r.headers.contains_key("retry-after"))
    );
    s.finish().await;
}

async fn look_alike_names_are_one_name_and_groups_see_members_leave(backend: Backend) {
    let s = TestServer::start(backend).await;
    let composed = "ren\u{e9}e@example.com";
    let decomposed = "rene\u{301}e@example.com";
    let id = s.user(composed).await;
    let r = s.post("/Users", json!({"userName": decomposed})).await;
    r.assert_error(409, Some("uniqueness"));
    let r = s
        .post(
            "/Users",
            json!({"userName": "\u{FF32}EN\u{c9}E@example.com"}),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    let r = s
        .get(&format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            percent(decomposed)
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], id);
    // A member deleted: the group is a new version, and the feed says the member left.
    let g = s
        .post(
            "/Groups",
            json!({"displayName": "Staff", "members": [{"value": id}]}),
        )
        .await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    let etag = s
        .get(&format!("/Groups/{gid}"))
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let reader = events_token(&s).await;
    let head = s
        .send(
            reqwest::Method::GET,
            &format!("{}/t/acme/events?after=latest", s.root),
            Some(&reader),
            None,
            &[],
        )
        .await
        .body["next_after"]
        .as_i64()
        .unwrap();
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    let r = s
        .send(
            reqwest::Method::GET,
            &format!("/Groups/{gid}"),
            Some(&s.token),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, 200, "not 304: the group changed");
    assert_ne!(r.header("etag").unwrap(), etag);
    assert!(
        r.body
            .get("members")
            .is_none_or(|m| m.as_array().unwrap().is_empty())
    );
    let feed = s
        .send(
            reqwest::Method::GET,
            &format!("{}/t/acme/events?after={head}", s.root),
            Some(&reader),
            None,
            &[],
        )
        .await;
    let types: Vec<&str> = feed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"group.member_removed"), "{types:?}");
    assert!(types.contains(&"user.deleted"), "{types:?}");
    s.finish().await;
}

both_backends! {
    byte_caps => super::pages_and_resources_are_bounded_by_bytes;
    event_bounds => super::event_pages_and_long_polls_are_bounded;
    identity => super::look_alike_names_are_one_name_and_groups_see_members_leave;
}
