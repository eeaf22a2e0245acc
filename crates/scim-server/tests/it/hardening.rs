//! Regression tests for what outside tools and attackers found (issue "Hardening from the
//! outside"): sign-in bursts, name discovery, control characters, `next` with CR/LF, the
//! rotation grace cap, `Prefer: return=representation`, readiness.

use crate::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::{Method, StatusCode};
use scim_core::audit::Actor;
use scim_testkit::{Backend, TestServer};
use serde_json::json;

/// 40 parallel wrong passwords: at most 5 are checked (the rest are refused before any
/// hashing), and a correct password in the burst does not get in past the allowance.
async fn sign_in_bursts_are_bounded(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let root = s.root.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Console::new(&root);
            let pw = if i == 39 {
                PASSWORD
            } else {
                "wrong password!!"
            };
            c.sign_in(OPERATOR, pw).await.0
        }));
    }
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *by_status.entry(t.await.unwrap().as_u16()).or_default() += 1;
    }
    let checked =
        by_status.get(&401).copied().unwrap_or(0) + by_status.get(&303).copied().unwrap_or(0);
    assert!(checked <= 5, "{by_status:?}");
    assert!(
        by_status.get(&429).copied().unwrap_or(0) >= 35,
        "{by_status:?}"
    );
    s.finish().await;
}

/// An unknown name gets exactly the answers a known one gets.
async fn unknown_names_look_like_known_ones(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut answers = Vec::new();
    for name in [OPERATOR, "nobody-here"] {
        let mut c = Console::new(&s.root);
        let mut seen = Vec::new();
        for _ in 0..7 {
            let (st, _, page) = c.sign_in(name, "wrong password!!").await;
            let msg = page.contains("Wrong username or password.")
                || page.contains("Too many failed sign-ins");
            seen.push((st, msg));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    s.finish().await;
}

async fn control_characters_and_blanks_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    for bad in ["evil\r\nINFO forged", "  ", "", "esc\u{1b}[31m"] {
        s.post("/Users", json!({"userName": bad}))
            .await
            .assert_error(400, Some("invalidValue"));
        s.post("/Groups", json!({"displayName": bad}))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    let id = s.user("fine").await;
    s.patch(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "a\nb"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.post("/Users", json!({"userName": "Zoë Ünïcode"})).await;
    s.finish().await;
}

async fn sign_in_next_with_line_breaks_is_harmless(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = Console::new(&s.root);
    let (st, h, _) = c
        .get("/console/login?next=/console/%0d%0aSet-Cookie:%20x=1")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        h.get_all("set-cookie")
            .iter()
            .all(|v| !v.to_str().unwrap().starts_with("x="))
    );
    s.finish().await;
}

async fn rotation_grace_is_capped(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = s.tenant_by_id(s.tenant_id).await;
    let tok = s.services.tokens.list(&t).await.unwrap().remove(0);
    let e = s
        .services
        .tokens
        .rotate(&t, &tok.id, time::Duration::days(31), &Actor::server())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at most 30 days"), "{e}");
    s.services
        .tokens
        .rotate(&t, &tok.id, time::Duration::days(30), &Actor::server())
        .await
        .unwrap();
    s.finish().await;
}

async fn group_patch_honours_prefer(backend: Backend) {
    let s = TestServer::start(backend).await;
    let uid = s.user("member").await;
    let g = s.post("/Groups", json!({"displayName": "G"})).await;
    let gid = g.body["id"].as_str().unwrap();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]});
    let token = s.token.clone();
    let r = s
        .send(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(&token),
            Some(&body),
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("preference-applied"),
        Some("return=representation")
    );
    assert_eq!(r.body["members"][0]["value"], uid.as_str());
    let r = s
        .send(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(&token),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(r.status, 204);
    let ready = reqwest::get(format!("{}/readyz", s.root)).await.unwrap();
    assert_eq!(ready.status(), 200);
    s.finish().await;
}

scim_testkit::both_backends! {
    sign_in_bursts => super::sign_in_bursts_are_bounded;
    unknown_names => super::unknown_names_look_like_known_ones;
    names => super::control_characters_and_blanks_are_refused;
    next_param => super::sign_in_next_with_line_breaks_is_harmless;
    grace_cap => super::rotation_grace_is_capped;
    prefer => super::group_patch_honours_prefer;
}
