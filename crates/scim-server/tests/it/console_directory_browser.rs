//! The directory sources in the console, in a real headless Chromium: a New app from Google
//! Workspace and one from Entra ID (each against its emulator from the test kit), each
//! tested in place, saved with its credential sealed (never on a page again), and one user
//! provisioned on demand. Screenshots land in `target/console-screenshots/` as
//! `directory-*.png`.

use crate::console_apps_browser::choose_file;
use crate::console_browser::{browser, click, fill, select, shot, start_driver, wait_text};
use crate::console_http::{OPERATOR, PASSWORD, operator};
use fantoccini::{Client, Locator};
use scim_testkit::{Backend, TestServer, entra, google};
use serde_json::json;

/// Sets a field's value at once (a 2 KB key typed key by key is slow, and the same).
async fn paste(c: &Client, css: &str, text: &str) {
    c.wait().for_element(Locator::Css(css)).await.unwrap();
    c.execute(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![json!(css), json!(text)],
    )
    .await
    .unwrap();
}

/// Saves the form's app (its page describes the source as `source`) and provisions `user`
/// (a source id) on demand.
async fn save_and_provision(c: &Client, secret: &str, source: &str, user: &str, user_name: &str) {
    click(c, "#create-app").await;
    wait_text(c, "#message", "App saved").await;
    wait_text(c, ".facts", source).await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains(secret),
        "the credential is never shown again"
    );
    fill(c, "#od-user", user).await;
    click(c, "#provision-now").await;
    wait_text(c, "#message", "Provisioned on demand").await;
    wait_text(c, "#modified", user_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_sources_in_chromium() {
    let s = TestServer::start(Backend::Sqlite).await;
    operator(&s).await;
    let (_, token) = s.tenant("payroll").await;
    let mut gd = google::Directory::default();
    gd.add_user("101", "ada@example.com", "Ada", "Lovelace");
    gd.add_user("102", "alan@example.com", "Alan", "Turing");
    gd.add_group("g1", "eng@example.com", "Engineering");
    gd.add_member("g1", "101", "USER");
    let g = google::GoogleFake::start(gd).await;
    let mut ed = entra::Directory::default();
    ed.add_user("e1", "grace@contoso.com", "Grace", "Hopper");
    let e = entra::EntraFake::start(ed).await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let root = s.root.clone();
    c.goto(&format!("{root}/console/apps/new")).await.unwrap();
    wait_text(&c, "h1", "Sign in to scimd").await;
    fill(&c, "#username", OPERATOR).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#sign-in").await;
    wait_text(&c, "h1", "New app").await;

    // Google Workspace: the key pasted, the administrator, the API (here: the emulator).
    fill(&c, "#app-name", "Workspace").await;
    select(&c, "#source-kind", "google").await;
    let key = g.key_file();
    paste(&c, "#source-key", &key).await;
    fill(&c, "#source-subject", "nobody@example.com").await;
    fill(&c, "#source-api-url", &g.url).await;
    // A subject that is not an administrator: said in words an admin can act on.
    click(&c, "#test-source").await;
    wait_text(&c, "#source-checks", "source.subject (nobody@example.com)").await;
    // Now the key as the JSON file Google hands out, instead of pasted.
    c.find(Locator::Css("#source-key"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("workspace-key.json");
    std::fs::write(&key_file, &key).unwrap();
    choose_file(&c, "#source-key-file", &key_file).await;
    fill(&c, "#source-subject", google::ADMIN).await;
    click(&c, "#test-source").await;
    wait_text(&c, "#source-checks", "2 users, 1 groups").await;
    shot(&c, "directory-01-google-tested").await;
    fill(&c, "#target-tenant", "payroll").await;
    fill(&c, "#target-token", &token).await;
    save_and_provision(
        &c,
        "PRIVATE KEY",
        "Google Workspace",
        "101",
        "ada@example.com",
    )
    .await;
    shot(&c, "directory-02-google-app").await;

    // Entra ID: tenant, application and secret.
    c.goto(&format!("{root}/console/apps/new")).await.unwrap();
    fill(&c, "#app-name", "Directory").await;
    select(&c, "#source-kind", "entra").await;
    fill(&c, "#source-tenant-id", entra::TENANT_ID).await;
    fill(&c, "#source-client-id", entra::CLIENT_ID).await;
    fill(&c, "#source-client-secret", entra::CLIENT_SECRET).await;
    fill(&c, "#source-api-url", &e.url).await;
    click(&c, "#test-source").await;
    wait_text(&c, "#source-checks", "1 users, 0 groups").await;
    shot(&c, "directory-03-entra-tested").await;
    fill(&c, "#target-tenant", "payroll").await;
    fill(&c, "#target-token", &token).await;
    save_and_provision(
        &c,
        entra::CLIENT_SECRET,
        "Microsoft Entra ID",
        "e1",
        "grace@contoso.com",
    )
    .await;
    shot(&c, "directory-04-entra-app").await;
    c.close().await.unwrap();
}
