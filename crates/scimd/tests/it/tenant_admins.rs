//! `scimd tenant invite|links|revoke-link` and `scimd admin grant|reset-link` (issue 32): a
//! link printed once, redeemed over HTTP by the customer's admin, listed, refused when used
//! again or revoked; grants and their refusals.

use super::support::{Server, scimd};

/// The path of the link on the last line of `out`.
fn link_path(out: &str) -> String {
    let url = out.lines().last().unwrap().trim();
    let i = url
        .find("/console/setup/")
        .unwrap_or_else(|| panic!("{out}"));
    url[i..].to_string()
}

#[test]
fn setup_links_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert!(scimd(p, &["tenant", "create", "acme"]).0);
    let (ok, _, err) = scimd(p, &["tenant", "invite", "acme", "--idp", "ping"]);
    assert!(
        !ok && err.contains("unknown identity provider 'ping'"),
        "{err}"
    );
    let (ok, _, err) = scimd(p, &["tenant", "invite", "acme", "--expires", "5m"]);
    assert!(!ok && err.contains("10 minutes to 30 days"), "{err}");
    let (ok, _, err) = scimd(p, &["tenant", "invite", "nope"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, out, err) = scimd(p, &["tenant", "invite", "acme", "--idp", "okta"]);
    assert!(ok, "{err}");
    assert!(err.contains("shown only now"), "{err}");
    let first = link_path(&out);
    let (ok, out, _) = scimd(p, &["tenant", "invite", "acme"]);
    assert!(ok);
    let second = link_path(&out);

    // Listed without secrets; the newest revoked.
    let (ok, out, _) = scimd(p, &["tenant", "links", "acme", "--json"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let links = v["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert!(!out.contains(first.trim_start_matches("/console/setup/")));
    let newest = links[0]["id"].as_i64().unwrap().to_string();
    assert!(scimd(p, &["tenant", "revoke-link", "acme", &newest]).0);
    let (ok, _, err) = scimd(p, &["tenant", "revoke-link", "acme", &newest]);
    assert!(!ok && err.contains("no usable setup link"), "{err}");

    // The customer's admin opens the first link on the running server.
    let server = Server::start(p, None, &[]);
    let root = format!("http://{}", server.listen);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = c.get(format!("{root}{first}")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        assert!(page.contains("Okta"), "{page}");
        let i = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        let csrf = &page[i..i + page[i..].find('"').unwrap()];
        let pw = "customer admin pass";
        let r = c
            .post(format!("{root}{first}"))
            .form(&[
                ("csrf", csrf),
                ("username", "it@acme.example"),
                ("password", pw),
                ("repeat", pw),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/console/t/acme/setup?idp=okta");
        let again = reqwest::get(format!("{root}{first}")).await.unwrap();
        assert_eq!(again.status(), 410);
        let revoked = reqwest::get(format!("{root}{second}")).await.unwrap();
        assert_eq!(revoked.status(), 410);
    });
    server.stop();

    // Grants: a tenant admin gets read-only on another tenant; an instance admin takes none.
    assert!(scimd(p, &["tenant", "create", "globex"]).0);
    let (ok, out, err) = scimd(
        p,
        &[
            "admin",
            "grant",
            "it@acme.example",
            "--tenant",
            "globex",
            "--access",
            "read-only",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("read-only of 'globex'"), "{out}");
    let (ok, _, err) = scimd(
        p,
        &[
            "admin",
            "grant",
            "it@acme.example",
            "--tenant",
            "globex",
            "--access",
            "owner",
        ],
    );
    assert!(!ok && err.contains("admin, read-only or none"), "{err}");
    let (ok, out, _) = scimd(p, &["admin", "list"]);
    assert!(
        ok && out.contains("tenant admin (acme: admin, globex: read-only)"),
        "{out}"
    );
    let (ok, _, err) = scimd(p, &["admin", "grant", "nobody", "--tenant", "acme"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = scimd(p, &["admin", "reset-link", "nobody", "--tenant", "acme"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, err) = scimd(
        p,
        &["admin", "reset-link", "it@acme.example", "--tenant", "acme"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("/console/setup/"));

    // The audit log on the command line: what the commands and the link did, by whom.
    let (ok, out, err) = scimd(p, &["audit", "--format", "json", "--limit", "50"]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for want in [
        "tenant.created",
        "setup_link.made",
        "setup_link.revoked",
        "setup_link.used",
        "admin.access_changed",
    ] {
        assert!(actions.contains(&want), "{want}: {actions:?}");
    }
    let used = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "setup_link.used")
        .unwrap();
    assert_eq!(used["actor"]["name"], "it@acme.example");
    assert_eq!(used["actor"]["address"], "127.0.0.1");
    assert_eq!(used["tenant"], "acme");
    let (ok, out, _) = scimd(p, &["audit", "--tenant", "globex", "--format", "csv"]);
    assert!(ok && out.starts_with("id,at,actor,role"), "{out}");
    assert!(
        out.contains("admin.access_changed") && !out.contains("setup_link.used"),
        "{out}"
    );
    let (ok, _, err) = scimd(p, &["audit", "--action", "token.eaten"]);
    assert!(!ok && err.contains("unknown action 'token.eaten'"), "{err}");
}
