//! The provisioning engine's console screens in a real headless Chromium: build an app from
//! a CSV file to another tenant through the New app form, test the connection, provision one
//! user on demand and read its steps and modified properties, turn the app on, run a cycle
//! and watch it finish, open a log row, trip the deletion breaker and approve the held
//! deletes, revoke the target token and see the app quarantined, then reauthorize it.
//! Screenshots land in `target/console-screenshots/` as `apps-*.png`.

use crate::console_browser::{
    browser, click, fill, page_start, select, shot, start_driver, wait_text,
};
use crate::console_http::{OPERATOR, PASSWORD, operator};
use fantoccini::{Client, Locator};
use reqwest::Method;
use scim_core::TokenScopes;
use scim_testkit::{Backend, TestServer};
use std::time::{Duration, Instant};

/// Puts a local file into a file input (WebDriver sends the path; the browser reads it).
pub(crate) async fn choose_file(c: &Client, css: &str, path: &std::path::Path) {
    let e = c.wait().for_element(Locator::Css(css)).await.unwrap();
    e.send_keys(&path.display().to_string()).await.unwrap();
}

/// Loads `url` again until `css` shows `want` (cycles run in the background).
async fn reload_until(c: &Client, url: &str, css: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        c.goto(url).await.unwrap();
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && t.contains(want)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "'{css}' never showed '{want}'; page: {}",
            page_start(c).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Accepts the `data-confirm` dialog the last click opened.
async fn confirm(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.accept_alert().await.is_err() {
        assert!(Instant::now() < deadline, "no confirmation dialog");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn people(n: usize) -> String {
    let mut csv = String::from("employee_id,userName,name.givenName,name.familyName\n");
    for i in 1..=n {
        csv.push_str(&format!("{i},user{i}@example.com,User,Number{i}\n"));
    }
    csv
}

async fn active_users(s: &TestServer, base: &str, token: &str) -> (u64, u64) {
    let v = s
        .send(
            Method::GET,
            &format!("{base}/Users?count=200"),
            Some(token),
            None,
            &[],
        )
        .await
        .body;
    let list = v["Resources"].as_array().cloned().unwrap_or_default();
    let active = list.iter().filter(|u| u["active"] != false).count() as u64;
    (list.len() as u64, active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_in_chromium() {
    let s = TestServer::start(Backend::Sqlite).await;
    operator(&s).await;
    // The target: another tenant of this scimd, with a token for the engine.
    let (target, token) = s.tenant("payroll").await;
    let scim = format!("{}/t/payroll/scim/v2", s.root);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, people(30)).unwrap();

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let root = s.root.clone();
    c.goto(&format!("{root}/console/apps")).await.unwrap();
    wait_text(&c, "h1", "Sign in to scimd").await;
    fill(&c, "#username", OPERATOR).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#sign-in").await;
    wait_text(&c, "h1", "Apps").await;
    wait_text(&c, "#apps", "No apps yet").await;
    shot(&c, "apps-01-empty").await;

    // New app: a CSV source, the tenant URL with its {tenant-name} placeholder, the token.
    click(&c, "#new-app").await;
    wait_text(&c, "h1", "New app").await;
    let url = c
        .find(Locator::Css("#target-url"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(url.contains("{tenant-name}"), "{url}");
    fill(&c, "#app-name", "Payroll").await;
    // The CSV is uploaded (kept with the app in the database), the wizard's default source.
    choose_file(&c, "#source-file", &csv).await;
    fill(&c, "#source-id", "employee_id").await;
    // Test source reads the file once, in place, before any target is set.
    click(&c, "#test-source").await;
    wait_text(&c, "#source-checks", "✓ source").await;
    // It lists the file's columns and what each becomes; the pickers now offer them.
    wait_text(&c, "#detected-columns", "→ userName").await;
    let id = c.find(Locator::Css("#source-id")).await.unwrap();
    assert_eq!(id.tag_name().await.unwrap(), "select");
    assert_eq!(
        id.prop("value").await.unwrap().as_deref(),
        Some("employee_id")
    );
    shot(&c, "apps-01b-source-columns").await;
    fill(&c, "#target-tenant", "payroll").await;
    // A wrong token first: Test connection says so, in place.
    fill(&c, "#target-token", "scimd_wrong").await;
    click(&c, "#test-connection").await;
    wait_text(&c, "#checks", "✗").await;
    shot(&c, "apps-02-test-connection-failed").await;
    fill(&c, "#target-token", &token).await;
    click(&c, "#test-connection").await;
    // Not just "✓": the failed run's checks start with "✓ credentials" too.
    wait_text(&c, "#checks", "✓ mappings").await;
    let checks = c
        .find(Locator::Css("#checks"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!checks.contains('✗'), "{checks}");
    // The name typed stays: the test swapped only the checks.
    let name = c
        .find(Locator::Css("#app-name"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Payroll"));
    shot(&c, "apps-03-test-connection").await;
    click(&c, "#create-app").await;
    wait_text(&c, "#message", "App saved").await;
    wait_text(&c, "#app-status", "Off").await;
    let page = c.source().await.unwrap();
    assert!(!page.contains(&token), "the token is never shown again");
    wait_text(&c, ".facts", "sealed").await;
    shot(&c, "apps-04-app").await;

    // Provision on demand: one user, its steps and modified properties.
    fill(&c, "#od-user", "user7@example.com").await;
    click(&c, "#provision-now").await;
    wait_text(&c, "#message", "Provisioned on demand").await;
    wait_text(&c, "h1", "Create").await;
    wait_text(&c, "#steps", "Success").await;
    wait_text(&c, "#modified", "user7@example.com").await;
    shot(&c, "apps-05-on-demand").await;
    assert_eq!(active_users(&s, &scim, &token).await, (1, 1));

    // Mappings: an expression with a syntax error shows where; a good one previews on a
    // source user; saved, it maps displayName from then on.
    let app = format!("{root}/console/apps/Payroll");
    c.goto(&app).await.unwrap();
    click(&c, "#open-mappings").await;
    wait_text(&c, "h1", "Attribute mappings").await;
    wait_text(&c, "#mappings", "userName *").await;
    fill(&c, "#x-expression", "Join(\" \", [name.givenName]").await;
    fill(&c, "#x-user", "7").await;
    click(&c, "#test-expression").await;
    wait_text(&c, "#expression-error", "Parse error at character").await;
    shot(&c, "apps-06a-expression-error").await;
    fill(
        &c,
        "#x-expression",
        "Join(\" \", [name.givenName], [name.familyName])",
    )
    .await;
    click(&c, "#test-expression").await;
    wait_text(&c, "#expression-value", "User Number7").await;
    wait_text(&c, "#mappings", "user7@example.com").await;
    fill(&c, "#m-target", "displayName").await;
    select(&c, "#m-kind", "expression").await;
    fill(
        &c,
        "#m-value",
        "Join(\" \", [name.givenName], [name.familyName])",
    )
    .await;
    click(&c, "#save-mapping").await;
    wait_text(&c, "#message", "Mapping for displayName saved").await;
    wait_text(&c, "#mappings", "Join(").await;
    // A target attribute of the enterprise extension: its full URN must not widen the page.
    let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";
    fill(&c, "#m-target", urn).await;
    select(&c, "#m-kind", "direct").await;
    fill(&c, "#m-value", "employee_id").await;
    click(&c, "#save-mapping").await;
    wait_text(&c, "#message", "saved").await;
    wait_text(&c, "#mappings", "employeeNumber").await;
    let label = c
        .find(Locator::Css("#mappings code[title$=':employeeNumber']"))
        .await
        .unwrap();
    assert_eq!(
        label.text().await.unwrap(),
        "employeeNumber",
        "the URN on hover only"
    );
    // Edit fills the form with the row's mapping.
    click(
        &c,
        "#mappings button.edit-mapping[data-target='displayName']",
    )
    .await;
    let value = c
        .find(Locator::Css("#m-value"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(value.starts_with("Join("), "{value}");
    // Matching precedence: externalId first, then userName.
    select(&c, "#match-target", "externalId").await;
    click(&c, "#add-matching").await;
    wait_text(&c, "#matching", "externalId").await;
    click(&c, "#matching button[aria-label='Move externalId up']").await;
    // The page before the move says "saved" too (from the add): wait for the new page,
    // where externalId is first and has no "up" button.
    let deadline = Instant::now() + Duration::from_secs(15);
    while c
        .find(Locator::Css(
            "#matching button[aria-label='Move externalId up']",
        ))
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "externalId never moved up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_text(&c, "#message", "Matching precedence saved").await;
    let order = c
        .find(Locator::Css("#matching"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(order.find("externalId") < order.find("userName"), "{order}");
    shot(&c, "apps-06b-mappings").await;
    // The group mappings: Entra's second mapping.
    click(&c, "#group-mappings").await;
    wait_text(&c, "h1", "groups").await;
    wait_text(&c, "#mappings", "displayName").await;
    shot(&c, "apps-06b2-group-mappings").await;
    // Scope: a scoping filter everyone passes, and a week's grace before out-of-scope
    // users are suspended.
    c.goto(&app).await.unwrap();
    click(&c, "#open-scope").await;
    wait_text(&c, "h1", "Scope and deprovisioning").await;
    fill(&c, "#c-attribute", "userName").await;
    select(&c, "#c-operator", "ENDS_WITH").await;
    fill(&c, "#c-value", "@example.com").await;
    click(&c, "#add-clause").await;
    wait_text(&c, "#filters", "userName ENDS_WITH @example.com").await;
    fill(&c, "#out_of_scope-after", "7d").await;
    click(&c, "#save-frames").await;
    wait_text(&c, "#message", "time frames saved").await;
    shot(&c, "apps-06c-scope").await;
    // Schedule and breaker, from the app page.
    c.goto(&app).await.unwrap();
    click(&c, "#open-settings").await;
    wait_text(&c, "h1", "Settings").await;
    fill(&c, "#max-deletes", "100").await;
    click(&c, "#save-settings").await;
    wait_text(&c, "#message", "Settings saved").await;
    shot(&c, "apps-06d-settings").await;

    // Turn on, run a cycle, watch it finish.
    c.goto(&app).await.unwrap();
    click(&c, "#turn-on").await;
    wait_text(&c, "h1", "Review before turning on").await;
    wait_text(&c, "#first-cycle", "Create").await;
    shot(&c, "apps-06e-review").await;
    click(&c, "#confirm-turn-on").await;
    wait_text(&c, "#message", "Provisioning is on").await;
    click(&c, "#run-now").await;
    wait_text(&c, "#message", "A cycle started").await;
    shot(&c, "apps-07-running").await;
    wait_text(&c, "#cycles", "completed").await;
    wait_text(&c, "#ledger", "30").await;
    wait_text(&c, "#app-status", "Active").await;
    shot(&c, "apps-07b-cycle-done").await;

    // One person leaves the scope (a clause added to the filter): disabled in 7 days, a
    // timer the app page lists; cancelled there, the person stays.
    c.goto(&format!("{app}/scope")).await.unwrap();
    select(&c, "#c-filter", "0").await;
    fill(&c, "#c-attribute", "userName").await;
    select(&c, "#c-operator", "NOT_EQUALS").await;
    fill(&c, "#c-value", "user3@example.com").await;
    click(&c, "#add-clause").await;
    wait_text(&c, "#filters", "user3@example.com").await;
    c.goto(&app).await.unwrap();
    click(&c, "#run-now").await;
    reload_until(&c, &app, "#scheduled", "Scheduled deprovisioning (1)").await;
    reload_until(&c, &app, "#cycles tbody tr:first-child", "completed").await;
    wait_text(&c, "#timers", "out of scope").await;
    shot(&c, "apps-07c-scheduled").await;
    click(&c, "#timers button[value='timer-cancel']").await;
    wait_text(&c, "#message", "Cancelled: 3 stays on the target").await;
    assert_eq!(active_users(&s, &scim, &token).await, (30, 30));
    assert_eq!(active_users(&s, &scim, &token).await, (30, 30));
    let named = s
        .send(
            Method::GET,
            &format!("{scim}/Users?filter=userName%20eq%20%22user12@example.com%22"),
            Some(&token),
            None,
            &[],
        )
        .await
        .body;
    assert_eq!(named["Resources"][0]["displayName"], "User Number12");

    // The log: filter by action, open a row.
    click(&c, "#open-log").await;
    wait_text(&c, "h1", "Provisioning logs").await;
    select(&c, "#f-action", "Create").await;
    click(&c, ".filters button.primary").await;
    wait_text(&c, "#app-log", "user12@example.com").await;
    shot(&c, "apps-08-log").await;
    let row = c
        .find(Locator::XPath(
            "//table[@id='app-log']//tr[td[contains(., 'user12@example.com')]]//a",
        ))
        .await
        .unwrap();
    row.click().await.unwrap();
    wait_text(&c, "#modified", "userName").await;
    wait_text(&c, "#modified", "user12@example.com").await;
    shot(&c, "apps-09-log-row").await;

    // The breaker: a new export is uploaded in which a third of the people are gone.
    let fewer = dir.path().join("people-20.csv");
    std::fs::write(&fewer, people(20)).unwrap();
    c.goto(&app).await.unwrap();
    choose_file(&c, "#source-file", &fewer).await;
    click(&c, "#upload-file").await;
    wait_text(&c, "#message", "people-20.csv stored").await;
    wait_text(&c, "#source-file-name", "people-20.csv").await;
    shot(&c, "apps-10a-new-export").await;
    click(&c, "#run-now").await;
    reload_until(&c, &app, "#app-status", "Waiting for delete approval").await;
    wait_text(&c, "#staged", "10 disable(s) and delete(s) held").await;
    reload_until(&c, &app, "#cycles tbody tr:first-child", "completed").await;
    shot(&c, "apps-10-breaker").await;
    assert_eq!(active_users(&s, &scim, &token).await, (30, 30));
    click(&c, "#approve-deletes").await;
    confirm(&c).await;
    wait_text(&c, "#message", "10 staged delete(s) approved").await;
    click(&c, "#run-now").await;
    reload_until(&c, &app, "#app-status", "Active").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while active_users(&s, &scim, &token).await != (30, 20) {
        assert!(Instant::now() < deadline, "the approved disables never ran");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The token is revoked in the target tenant's console: the next cycle quarantines.
    c.goto(&format!("{root}/console/t/payroll/integration"))
        .await
        .unwrap();
    click(&c, "#tokens button.revoke").await;
    confirm(&c).await;
    wait_text(&c, "#message", "Token revoked").await;
    c.goto(&app).await.unwrap();
    click(&c, "#run-now").await;
    reload_until(&c, &app, "#app-status", "Quarantined").await;
    wait_text(&c, "#quarantine", "In quarantine").await;
    shot(&c, "apps-11-quarantined").await;

    // Reauthorize with a new token: tested, stored, quarantine lifted.
    let fresh = s.issue(target, TokenScopes::all(), None).await;
    click(&c, "#reauthorize summary").await;
    fill(&c, "#new-token", &fresh).await;
    click(&c, "#reauthorize-submit").await;
    wait_text(&c, "#message", "quarantine is lifted").await;
    wait_text(&c, "#app-status", "Active").await;
    shot(&c, "apps-12-reauthorized").await;

    // The list shows the app with its last cycle.
    c.goto(&format!("{root}/console/apps")).await.unwrap();
    wait_text(&c, "#apps", "Payroll").await;
    wait_text(&c, "#apps", "CSV file").await;
    shot(&c, "apps-13-list").await;

    // Delete the configuration: the target users stay.
    c.goto(&app).await.unwrap();
    click(&c, "#delete-app").await;
    confirm(&c).await;
    wait_text(&c, "#apps", "No apps yet").await;
    let users = s
        .send(
            Method::GET,
            &format!("{scim}/Users?count=1"),
            Some(&fresh),
            None,
            &[],
        )
        .await
        .body;
    assert_eq!(users["totalResults"], 30, "target users stay");

    c.close().await.unwrap();
    s.finish().await;
}
