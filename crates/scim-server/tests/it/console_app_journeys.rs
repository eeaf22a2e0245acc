//! The app page's journeys over HTTP, as an administrator meets them (issue #36): what
//! Test connection really tested (a read-only token fails the write check), Run and Pause
//! only while on, provision on demand by name or e-mail with the scope's verdict, the
//! scheduled deprovisioning card (Apply now, Cancel, what Delete drops), the log rows that
//! say "Delete scheduled", the last 30 days' totals, and a cycle refused by the target
//! listed in red with its reason. On SQLite and on PostgreSQL.

use crate::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::StatusCode;
use scim_core::SyncStore;
use scim_core::TokenScopes;
use scim_testkit::mail::SmtpServer;
use scim_testkit::{Backend, TestServer, both_backends};
use std::time::Duration;

const PEOPLE: &str = "employee_id,userName,displayName,department\n\
1,ada@example.com,Ada Lovelace,Sales\n\
2,alan@example.com,Alan Turing,Sales\n\
3,grace@example.com,Grace Hopper,Navy\n";

/// Makes an app reading `csv` into tenant `payroll` with `token`; its page's path.
async fn new_app(c: &Console, s: &TestServer, name: &str, csv: &str, token: &str) -> String {
    let url = format!("{}/t/{{tenant-name}}/scim/v2", s.root);
    let (st, h, page) = c
        .post(
            "/console/apps/new",
            &[
                ("action", "create"),
                ("name", name),
                ("source_kind", "csv"),
                ("source_path", csv),
                ("source_id", "employee_id"),
                ("target_url", &url),
                ("target_tenant", "payroll"),
                ("token", token),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let to = h["location"].to_str().unwrap();
    to.split('?').next().unwrap().to_string()
}

async fn act(c: &Console, app: &str, pairs: &[(&str, &str)]) -> (StatusCode, String) {
    let mut form = pairs.to_vec();
    form.push(("csrf", &c.csrf));
    let (st, _, page) = c.post(app, &form).await;
    (st, page)
}

/// Starts a cycle from the page and waits until the cycles table has `n` rows.
async fn run_cycle(c: &Console, app: &str, n: usize) -> String {
    let (st, page) = act(c, app, &[("action", "run")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    for _ in 0..300 {
        let (_, _, page) = c.get(app).await;
        let table = page.split("id=\"cycles\"").nth(1).unwrap_or_default();
        let table = table.split("</table>").next().unwrap_or_default();
        let rows = table.matches("<td>incremental</td>").count()
            + table.matches("<td>initial</td>").count();
        if rows > n && !page.contains("id=\"running\"") {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no cycle {n} finished");
}

async fn user_count(s: &TestServer, token: &str, user: &str) -> u64 {
    let r = s
        .send(
            reqwest::Method::GET,
            &format!(
                "{}/t/payroll/scim/v2/Users?filter=userName%20eq%20%22{user}%22",
                s.root
            ),
            Some(token),
            None,
            &[],
        )
        .await;
    r.body["totalResults"].as_u64().unwrap()
}

async fn journeys(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let (tid, token) = s.tenant("payroll").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, PEOPLE).unwrap();
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;

    // Test connection with a read-only token: the write check fails and says why.
    let read_only = s
        .issue(
            tid,
            TokenScopes::parse_list(&["users:r", "groups:r"]).unwrap(),
            None,
        )
        .await;
    let ro = new_app(&c, &s, "ReadOnly", &csv.display().to_string(), &read_only).await;
    let (st, page) = act(&c, &ro, &[("action", "test")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("✗ write /Users"), "{page}");
    assert!(page.contains("may read but not write Users"), "{page}");

    let app = new_app(&c, &s, "HR", &csv.display().to_string(), &token).await;
    let (st, page) = act(&c, &app, &[("action", "test")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("✓ write /Users"), "{page}");
    assert!(page.contains("the token may write Users"), "{page}");

    // No SMTP here: the page says so, and a test e-mail is refused.
    let (_, _, page) = c.get(&app).await;
    assert!(page.contains("id=\"no-smtp\""), "{page}");
    let (st, page) = act(&c, &app, &[("action", "notify-test")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("no SMTP server is configured"), "{page}");
    // More addresses than the bound: refused, nothing stored.
    let many: Vec<String> = (0..21).map(|i| format!("a{i}@example.com")).collect();
    let many = many.join(",");
    let (st, page) = act(&c, &app, &[("action", "notify-email"), ("email", &many)]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("at most 20 notification addresses"), "{page}");
    assert!(!page.contains("a20@example.com, "), "not stored: {page}");

    // Off: no Run or Pause offered, and both refused if sent.
    let (_, _, page) = c.get(&app).await;
    assert!(!page.contains("id=\"run-now\"") && !page.contains("id=\"pause\""));
    let (st, page) = act(&c, &app, &[("action", "run")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("provisioning is off"), "{page}");
    let (st, _) = act(&c, &app, &[("action", "pause")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    on_demand(&c, &s, &app, &token).await;
    scheduled(&c, &s, &app, &token, &csv).await;
    refused(&c, &s, &csv.display().to_string()).await;
    s.finish().await;
}

/// Provision on demand by name or e-mail, with the scope's verdict.
async fn on_demand(c: &Console, s: &TestServer, app: &str, token: &str) {
    // Provision on demand by a part of the e-mail: several match, each with its scope.
    let (st, page) = act(
        c,
        app,
        &[("action", "provision"), ("source_id", "example.com")],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("3 source users match"), "{page}");
    assert!(
        page.contains("Grace Hopper") && page.contains("in scope"),
        "{page}"
    );
    // By a part of the name: even one match is offered, not provisioned (it could be
    // someone else, and their action a delete).
    let (st, page) = act(c, app, &[("action", "provision"), ("source_id", "turing")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("One source user matches"), "{page}");
    assert_eq!(user_count(s, token, "alan@example.com").await, 0);
    // By e-mail (or userName, or id): provisioned; its log row is the answer.
    let (st, h, _) = c
        .post(
            app,
            &[
                ("action", "provision"),
                ("source_id", "Alan@Example.com"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let row = h["location"].to_str().unwrap().to_string();
    assert!(row.contains("on_demand=1"), "{row}");
    let (_, _, page) = c.get(&row).await;
    assert!(page.contains("Provisioned on demand"), "{page}");
    assert!(page.contains("scoping"), "{page}");
    assert_eq!(user_count(s, token, "alan@example.com").await, 1);
    // Again: nothing to send, said with what the scope says (not an error).
    let (st, page) = act(
        c,
        app,
        &[("action", "provision"), ("source_id", "alan@example.com")],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("already up to date"), "{page}");
    assert!(page.contains("in scope"), "{page}");
    let (st, page) = act(c, app, &[("action", "provision"), ("source_id", "nobody")]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(page.contains("no source user matches"), "{page}");
}

/// Scheduled deprovisioning: the card, Apply now, Cancel, the log rows, the totals.
async fn scheduled(c: &Console, s: &TestServer, app: &str, token: &str, csv: &std::path::Path) {
    // Deleted at the source: deleted from the target 30 days later.
    let (st, _, page) = c
        .post(
            &format!("{app}/scope"),
            &[
                ("action", "time-frames"),
                ("out_of_scope_action", "disable"),
                ("out_of_scope_after", "0s"),
                ("suspended_action", "disable"),
                ("suspended_after", "0s"),
                ("deleted_action", "delete"),
                ("deleted_after", "30d"),
                ("groups_action", "delete"),
                ("groups_after", "0s"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    // Turn on goes through the review: the first cycle planned, nothing written.
    let (_, _, page) = c.get(app).await;
    assert!(
        page.contains("/review\" class=\"button primary\" id=\"turn-on\""),
        "{page}"
    );
    let before = user_count(s, token, "ada@example.com").await;
    let (st, _, page) = c.get(&format!("{app}/review")).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("<strong>Create</strong>: 2"),
        "one was provisioned on demand: {page}"
    );
    assert!(
        page.contains("deleted at the source</dt><dd>Delete after 30d"),
        "{page}"
    );
    assert!(page.contains("id=\"confirm-turn-on\""), "{page}");
    assert_eq!(
        user_count(s, token, "ada@example.com").await,
        before,
        "the review writes nothing"
    );
    let (st, page) = act(c, app, &[("action", "turn-on")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let (_, _, page) = c.get(&format!("{app}/review")).await;
    assert!(page.contains("id=\"already-on\""), "{page}");
    let page = run_cycle(c, app, 0).await;
    assert!(page.contains("Created</dt><dd>2"), "usage: {page}");
    std::fs::write(
        csv,
        PEOPLE.lines().take(2).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let page = run_cycle(c, app, 1).await;
    assert!(page.contains("Scheduled deprovisioning (2)"), "{page}");
    assert!(page.contains("deleted at the source"), "{page}");
    assert!(
        page.contains("2 scheduled disable/delete(s) will never run"),
        "the delete confirmation says what it drops: {page}"
    );
    let (_, _, log) = c.get(&format!("{app}/log?action=DeleteScheduled")).await;
    assert_eq!(log.matches("<td>Delete scheduled</td>").count(), 2, "{log}");
    assert!(log.contains("Delete scheduled for"), "{log}");

    // Apply now for one, cancel the other: the next cycle deletes only the first.
    let (st, page) = act(
        c,
        app,
        &[("action", "timer-apply"), ("kind", "User"), ("object", "2")],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("is due now: the next cycle sends it"),
        "{page}"
    );
    let (st, page) = act(
        c,
        app,
        &[
            ("action", "timer-cancel"),
            ("kind", "User"),
            ("object", "3"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("Scheduled deprovisioning (1)"),
        "the applied one is due now, the cancelled one gone: {page}"
    );
    let (st, _) = act(
        c,
        app,
        &[
            ("action", "timer-cancel"),
            ("kind", "User"),
            ("object", "3"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing left to cancel");
    let page = run_cycle(c, app, 2).await;
    assert_eq!(user_count(s, token, "alan@example.com").await, 0);
    assert_eq!(user_count(s, token, "grace@example.com").await, 1);
    assert!(page.contains("Deleted</dt><dd>1"), "usage: {page}");

    // Turning off lifts a pause; off, the page offers neither.
    act(c, app, &[("action", "pause")]).await;
    let (_, page) = act(c, app, &[("action", "turn-off")]).await;
    assert!(page.contains("status-off"), "{page}");
    assert!(!page.contains("id=\"resume\""), "{page}");
}

/// A refused token: a failed cycle in red with its reason, and on demand refused in red.
async fn refused(c: &Console, s: &TestServer, csv: &str) {
    // A refused token: the failed cycle is listed in red with its reason and its log link,
    // and the Apps list says it failed.
    let bad = new_app(c, s, "Refused", csv, "not-a-token").await;
    // The review says the first cycle cannot be planned, and why.
    let (st, _, page) = c.get(&format!("{bad}/review")).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"plan-error\""), "{page}");
    assert!(page.contains("401"), "{page}");
    act(c, &bad, &[("action", "turn-on")]).await;
    let page = run_cycle(c, &bad, 0).await;
    assert!(page.contains("<tr class=\"failure\">"), "{page}");
    assert!(page.contains("status-failure\">failed"), "{page}");
    assert!(page.contains("401"), "{page}");
    assert!(
        !page.contains("/log?cycle="),
        "a cycle that failed before its plan has no log rows to link to: {page}"
    );
    let (_, _, list) = c.get("/console/apps").await;
    assert!(list.contains("failed · error"), "{list}");
    // Provision on demand against it: the refusal, in red, never the green banner.
    let (st, page) = act(c, &bad, &[("action", "provision"), ("source_id", "1")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("role=\"alert\" id=\"error\"") && page.contains("401"),
        "{page}"
    );
    assert!(!page.contains("Provisioned on demand"), "{page}");
}

/// Notification e-mail on the app page: shown, edited, a bad address refused (nothing
/// stored), a test e-mail delivered by a real SMTP server.
async fn notification_email(backend: Backend) {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let s = TestServer::start_with_smtp(backend, &smtp.url).await;
    operator(&s).await;
    let (_, token) = s.tenant("payroll").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, PEOPLE).unwrap();
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let app = new_app(&c, &s, "HR", &csv.display().to_string(), &token).await;
    let (_, _, page) = c.get(&app).await;
    assert!(!page.contains("id=\"no-smtp\""), "{page}");
    assert!(page.contains("id=\"notify-none\""), "{page}");
    let (st, page) = act(
        &c,
        &app,
        &[
            ("action", "notify-email"),
            ("email", "it@example.com, ops@example.com"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Notices go to 2 address(es)."), "{page}");
    assert!(page.contains("it@example.com, ops@example.com"), "{page}");
    let (st, page) = act(
        &c,
        &app,
        &[
            ("action", "notify-email"),
            ("email", "it@example.com, not-an-address@"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("is not an e-mail address"), "{page}");
    let stored = s.store.jobs().await.unwrap()[0].spec.clone();
    assert!(stored.contains("ops@example.com"), "kept: {stored}");
    let (st, page) = act(&c, &app, &[("action", "notify-test")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("A test e-mail went to 2 address(es)"),
        "{page}"
    );
    let mail = smtp
        .wait_for("test notice", Duration::from_secs(10))
        .await
        .expect("the test e-mail arrives");
    assert!(mail.subject.contains("HR: test notice"), "{mail:?}");
    assert!(mail.to.contains("ops@example.com"), "{mail:?}");
    // Emptied: no e-mail, and the test is refused.
    let (st, page) = act(&c, &app, &[("action", "notify-email"), ("email", "")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Notification e-mail turned off."), "{page}");
    let (st, _) = act(&c, &app, &[("action", "notify-test")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    s.finish().await;
}

/// Schedule, breaker and matching, which were only in the job file: shown, edited,
/// checked as the job file is (nothing stored when refused), CSRF-guarded.
async fn settings(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let (_, token) = s.tenant("payroll").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, PEOPLE).unwrap();
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let app = new_app(&c, &s, "HR", &csv.display().to_string(), &token).await;
    let (_, _, page) = c.get(&app).await;
    assert!(page.contains("/settings\" id=\"open-settings\""), "{page}");
    let settings = format!("{app}/settings");
    let (st, _, page) = c.get(&settings).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains("value=\"40m\""),
        "the default interval: {page}"
    );
    assert!(
        page.contains("value=\"500\""),
        "the default breaker: {page}"
    );
    let form = |interval: &'static str, percent: &'static str| {
        vec![
            ("interval", interval),
            ("debounce", "0"),
            ("max_deletes", "25"),
            ("max_percent", percent),
            ("percent_floor", "2"),
            ("on_conflict", "report"),
        ]
    };
    let before = s.store.jobs().await.unwrap()[0].spec.clone();
    for (bad, why) in [
        (form("30s", "10"), "at least 1m"),
        (form("2h", "120"), "percentage from 0 to 100"),
    ] {
        let (st, page) = act(&c, &settings, &bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
        assert!(page.contains(why), "{page}");
        assert!(
            page.contains("value=\"25\""),
            "what was typed stays: {page}"
        );
    }
    let (st, _, _) = c.post(&settings, &form("2h", "10")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "CSRF");
    assert_eq!(s.store.jobs().await.unwrap()[0].spec, before);
    let (st, page) = act(&c, &settings, &form("2h", "10")).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Settings saved"), "{page}");
    let stored = s.store.jobs().await.unwrap()[0].spec.clone();
    for want in [
        "interval = \"2h\"",
        "max_deletes = 25",
        "on_conflict = \"report\"",
    ] {
        assert!(stored.contains(want), "{want}: {stored}");
    }
    // The app made and the saved edit are in the audit log (the refused ones changed
    // nothing).
    let (_, _, audit) = c.get("/console/audit?action=app.changed").await;
    assert_eq!(audit.matches("app.changed</code>").count(), 2, "{audit}");
    assert!(audit.contains("HR: settings") && audit.contains("HR: created"));
    let (st, _, _) = c.get("/console/apps/nope/settings").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.finish().await;
}

both_backends! {
    app_page_journeys => super::journeys;
    app_notification_email => super::notification_email;
    app_settings => super::settings;
}
