//! The audit log over HTTP (issue 32): rows for each console action with who, role, address
//! and tenant; an instance admin sees every row, a tenant admin only their tenants'; filters;
//! CSV (formula-safe) and JSON exports; bad filters in words.

use super::console_http::{Console, OPERATOR, PASSWORD, csrf_of, operator};
use super::console_roles::tenant_admin;
use reqwest::StatusCode;
use scim_testkit::{Backend, TestServer};

async fn audit_rows_and_who_sees_them(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.tenant("globex").await;
    operator(&s).await;
    let mut root = Console::new(&s.root);
    root.sign_in(OPERATOR, PASSWORD).await;
    // The instance admin: a token in globex, named like a formula.
    let (_, _, page) = root.get("/console/t/globex/integration").await;
    let (st, _, _) = root
        .post(
            "/console/t/globex/integration",
            &[
                ("csrf", &csrf_of(&page)),
                ("action", "create"),
                ("name", "=HYPERLINK(1)"),
                ("users", "rw"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // The tenant admin of acme: a token there.
    let ta = tenant_admin(&s, "acme", "it@acme.example").await;
    let (_, _, page) = ta.get("/console/t/acme/integration").await;
    let (st, _, _) = ta
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
    assert_eq!(st, StatusCode::CREATED);

    // The instance admin sees everything, with role and address.
    let (st, _, all) = root.get("/console/audit").await;
    assert_eq!(st, StatusCode::OK);
    for want in [
        "console.signed_in",
        "token.created",
        "setup_link.used",
        "=HYPERLINK(1)",
        "Okta",
        "tenant admin",
        "instance admin",
        "127.0.0.1",
    ] {
        assert!(all.contains(want), "{want}: {all}");
    }
    // The tenant admin sees acme's rows only.
    let (st, _, theirs) = ta.get("/console/audit").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        theirs.contains("Okta") && theirs.contains("setup_link.used"),
        "{theirs}"
    );
    assert!(
        !theirs.contains("HYPERLINK") && !theirs.contains("globex</td>"),
        "{theirs}"
    );
    assert!(
        !theirs.contains("console.signed_in</code>"),
        "sign-ins are the instance's rows"
    );
    let (st, _, refused) = ta.get("/console/audit?tenant=globex").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(refused.contains("there is no tenant"), "{refused}");
    let (st, _, _) = ta.get("/console/audit?tenant=globex&format=csv").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Filters and exports.
    let (_, _, only) = root
        .get("/console/audit?action=token.created&tenant=globex")
        .await;
    assert!(
        only.contains("HYPERLINK") && !only.contains("Okta"),
        "{only}"
    );
    let (st, _, bad) = root.get("/console/audit?action=token.eaten").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(bad.contains("unknown action"), "{bad}");
    let r = root
        .http
        .get(format!(
            "{}/console/audit?action=token.created&format=csv",
            s.root
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("id,at,actor,role,address,tenant,action,target\n"),
        "{csv}"
    );
    assert!(
        csv.contains("'=HYPERLINK(1)") && csv.contains("Okta"),
        "{csv}"
    );
    let (st, _, json) = ta.get("/console/audit?format=json").await;
    assert_eq!(st, StatusCode::OK);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["tenant"] == "acme"), "{json}");
    assert!(
        rows.iter()
            .any(|r| r["action"] == "token.created" && r["actor"]["name"] == "it@acme.example")
    );
}

scim_testkit::both_backends! {
    audit_rows_and_who_sees_them => super::audit_rows_and_who_sees_them;
}
