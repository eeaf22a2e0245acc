//! Tokens, scopes and tenant isolation.

use reqwest::Method;
use scim_core::prelude::*;
use scim_core::{Timestamp, TokenScopes};
use scim_testkit::{Backend, TestServer};
use serde_json::json;

async fn missing_invalid_and_foreign_tokens_are_401(backend: Backend) {
    let s = TestServer::start(backend).await;
    for (token, header) in [
        (None, None),
        (Some("scimd_nope"), None),
        (None, Some("Basic dXNlcjpwYXNz")),
        (None, Some("non-token")),
    ] {
        let mut req = s.client.get(s.url("/Users"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"scimd\""
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], "401");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    // Discovery needs a token too.
    s.send(Method::GET, "/ServiceProviderConfig", None, None, &[])
        .await
        .assert_error(401, None);
    s.finish().await;
}

async fn tenants_never_see_each_other(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, other_token) = s.tenant("globex").await;
    let other_base = format!("{}/t/globex/scim/v2", s.root);
    let uid = s.user("shared@example.com").await;
    let g = s
        .post(
            "/Groups",
            json!({"displayName": "Admins", "members": [{"value": uid}]}),
        )
        .await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    // Tenant acme's token on globex's URL, and globex's on acme's: 401, as for any bad token.
    s.send(
        Method::GET,
        &format!("{other_base}/Users"),
        Some(&s.token.clone()),
        None,
        &[],
    )
    .await
    .assert_error(401, None);
    s.send(Method::GET, "/Users", Some(&other_token), None, &[])
        .await
        .assert_error(401, None);
    // Unknown tenant: the same 401.
    s.send(
        Method::GET,
        &format!("{}/t/nosuch/scim/v2/Users", s.root),
        Some(&s.token.clone()),
        None,
        &[],
    )
    .await
    .assert_error(401, None);
    // Globex sees none of acme's data, by id, by filter, in counts or in member adds.
    for path in [format!("/Users/{uid}"), format!("/Groups/{gid}")] {
        s.send(
            Method::GET,
            &format!("{other_base}{path}"),
            Some(&other_token),
            None,
            &[],
        )
        .await
        .assert_error(404, None);
        s.send(
            Method::DELETE,
            &format!("{other_base}{path}"),
            Some(&other_token),
            None,
            &[],
        )
        .await
        .assert_error(404, None);
        let patch = json!({"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]});
        s.send(
            Method::PATCH,
            &format!("{other_base}{path}"),
            Some(&other_token),
            Some(&patch),
            &[],
        )
        .await
        .assert_error(404, None);
    }
    for q in [
        "/Users",
        "/Users?filter=userName eq \"shared@example.com\"",
        "/Groups",
        "/Groups?filter=displayName eq \"Admins\"",
    ] {
        let r = s
            .send(
                Method::GET,
                &format!("{other_base}{q}"),
                Some(&other_token),
                None,
                &[],
            )
            .await;
        assert_eq!(r.body["totalResults"], 0, "{q}");
        assert!(!r.body.to_string().contains(&uid));
    }
    let r = s
        .send(
            Method::POST,
            &format!("{other_base}/Groups"),
            Some(&other_token),
            Some(&json!({"displayName": "G", "members": [{"value": uid}]})),
            &[],
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    // The same names are free in the other tenant.
    let r = s
        .send(
            Method::POST,
            &format!("{other_base}/Users"),
            Some(&other_token),
            Some(&json!({"userName": "shared@example.com"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["meta"]["location"].as_str().unwrap(),
        format!("{other_base}/Users/{}", r.body["id"].as_str().unwrap())
    );
    let r = s
        .send(
            Method::POST,
            &format!("{other_base}/Groups"),
            Some(&other_token),
            Some(&json!({"displayName": "Admins"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(s.get("/Users").await.body["totalResults"], 1);
    s.finish().await;
}

async fn scopes_and_privileges(backend: Backend) {
    let s = TestServer::start(backend).await;
    let uid = s.user("scoped").await;
    let users_read = s
        .issue(
            s.tenant_id,
            TokenScopes::parse_list(&["users:r"]).unwrap(),
            None,
        )
        .await;
    let groups_rw = s
        .issue(
            s.tenant_id,
            TokenScopes::parse_list(&["groups:rw"]).unwrap(),
            None,
        )
        .await;
    let body = json!({"userName": "new"});
    let patch = json!({"Operations": [{"op": "replace", "path": "nickName", "value": "n"}]});
    let search = json!({"filter": "userName pr"});
    let group = json!({"displayName": "ok"});
    let bulk = json!({"Operations": []});
    let cases: Vec<(&str, Method, String, Option<&serde_json::Value>, u16)> = vec![
        (&users_read, Method::GET, "/Users".into(), None, 200),
        (&users_read, Method::GET, format!("/Users/{uid}"), None, 200),
        (
            &users_read,
            Method::POST,
            "/Users/.search".into(),
            Some(&search),
            200,
        ),
        (&users_read, Method::POST, "/Users".into(), Some(&body), 403),
        (
            &users_read,
            Method::PATCH,
            format!("/Users/{uid}"),
            Some(&patch),
            403,
        ),
        (
            &users_read,
            Method::PUT,
            format!("/Users/{uid}"),
            Some(&body),
            403,
        ),
        (
            &users_read,
            Method::DELETE,
            format!("/Users/{uid}"),
            None,
            403,
        ),
        (&users_read, Method::GET, "/Groups".into(), None, 403),
        (
            &users_read,
            Method::GET,
            "/ServiceProviderConfig".into(),
            None,
            200,
        ),
        (&groups_rw, Method::GET, "/Users".into(), None, 403),
        (
            &groups_rw,
            Method::POST,
            "/Groups".into(),
            Some(&group),
            201,
        ),
        (&groups_rw, Method::POST, "/Bulk".into(), Some(&bulk), 403),
    ];
    for (tok, method, path, body, status) in cases {
        let r = s.send(method.clone(), &path, Some(tok), body, &[]).await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.body);
        if status == 403 {
            r.assert_error(403, None);
        }
    }
    s.finish().await;
}

async fn revocation_expiry_and_rotation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let now = Timestamp::now();
    let expired = s
        .issue(
            s.tenant_id,
            TokenScopes::all(),
            Some(time::Duration::seconds(-1)),
        )
        .await;
    let r = s
        .send(Method::GET, "/Users", Some(&expired), None, &[])
        .await;
    r.assert_error(401, None);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));
    // Rotation: both secrets work during the grace period.
    let issued =
        scim_core::token::issue(s.tenant_id, "rot", TokenScopes::all(), None, now).unwrap();
    s.store.insert_token(&issued.record).await.unwrap();
    let (new_secret, new_hash, new_prefix) = scim_core::token::generate_secret();
    assert!(
        s.store
            .rotate_token(
                s.tenant_id,
                &issued.record.id,
                &new_hash,
                &new_prefix,
                now + time::Duration::hours(1)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        s.send(Method::GET, "/Users", Some(&new_secret), None, &[])
            .await
            .status,
        200
    );
    assert_eq!(
        s.send(Method::GET, "/Users", Some(&issued.secret), None, &[])
            .await
            .status,
        200
    );
    // Revocation is honoured within the cache TTL.
    let victim =
        scim_core::token::issue(s.tenant_id, "victim", TokenScopes::all(), None, now).unwrap();
    s.store.insert_token(&victim.record).await.unwrap();
    assert_eq!(
        s.send(Method::GET, "/Users", Some(&victim.secret), None, &[])
            .await
            .status,
        200
    );
    assert!(
        s.store
            .revoke_token(s.tenant_id, &victim.record.id, Timestamp::now())
            .await
            .unwrap()
    );
    tokio::time::sleep(scim_server::auth::TOKEN_CACHE_TTL + std::time::Duration::from_millis(300))
        .await;
    let r = s
        .send(Method::GET, "/Users", Some(&victim.secret), None, &[])
        .await;
    r.assert_error(401, None);
    assert!(r.body["detail"].as_str().unwrap().contains("revoked"));
    // last_used_at was recorded.
    let tokens = s.store.tokens(s.tenant_id).await.unwrap();
    assert!(
        tokens
            .iter()
            .find(|t| t.id == issued.record.id)
            .unwrap()
            .last_used_at
            .is_some()
    );
    s.finish().await;
}

/// Requests refused for their credentials never reach the tenant's log, but its console log
/// page counts them by reason (issue 36 item 9) — and only the tenant whose URL they hit.
async fn refused_credentials_are_counted_per_tenant(backend: Backend) {
    use crate::console_http::{Console, OPERATOR, PASSWORD, operator};
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let (acme, good) = s.tenant("ac-me").await;
    let (_, _) = s.tenant("other").await;
    let revoked =
        scim_core::token::issue(acme, "old-idp", TokenScopes::all(), None, Timestamp::now())
            .unwrap();
    s.store.insert_token(&revoked.record).await.unwrap();
    s.store
        .revoke_token(acme, &revoked.record.id, Timestamp::now())
        .await
        .unwrap();
    let users = |t: &str| format!("{}/t/{t}/scim/v2/Users", s.root);
    for _ in 0..3 {
        let r = s
            .send(
                Method::GET,
                &users("ac-me"),
                Some(&revoked.secret),
                None,
                &[],
            )
            .await;
        r.assert_error(401, None);
    }
    let r = s.client.get(users("ac-me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // acme's good token on other's URL: counted at other, as "not valid here".
    s.send(Method::GET, &users("other"), Some(&good), None, &[])
        .await
        .assert_error(401, None);
    // A tenant that does not exist: refused, counted nowhere.
    s.send(Method::GET, &users("nosuch"), Some(&good), None, &[])
        .await
        .assert_error(401, None);
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let (st, _, page) = c.get("/console/t/ac-me/log").await;
    assert_eq!(st, 200);
    let card = page.split("id=\"refused\"").nth(1).unwrap();
    let card = card.split("</section>").next().unwrap();
    assert!(card.contains("<dt>24 hours</dt><dd>4</dd>"), "{card}");
    assert!(
        card.contains("3 with a revoked token; 1 with no token"),
        "{card}"
    );
    // Nothing of it in the log itself.
    assert!(!page.contains("old-idp</td>"), "{page}");
    let (_, _, page) = c.get("/console/t/other/log").await;
    let card = page.split("id=\"refused\"").nth(1).unwrap();
    let card = card.split("</section>").next().unwrap();
    assert!(card.contains("<dt>24 hours</dt><dd>1</dd>"), "{card}");
    assert!(
        card.contains("1 with a token not valid for this tenant"),
        "{card}"
    );
    assert!(!card.contains("revoked token;"), "{card}");
    s.finish().await;
}

scim_testkit::both_backends! {
    refused_counts => super::refused_credentials_are_counted_per_tenant;
    bad_tokens => super::missing_invalid_and_foreign_tokens_are_401;
    tenant_isolation => super::tenants_never_see_each_other;
    scopes => super::scopes_and_privileges;
    revocation => super::revocation_expiry_and_rotation;
}
