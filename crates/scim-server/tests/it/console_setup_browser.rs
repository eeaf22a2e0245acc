//! The guided set-up in a real headless Chromium (issue 32), from the setup link to a first
//! SCIM request turning the check green: the instance admin makes the link, the customer's
//! admin opens it, chooses a name and password, follows Entra's steps, makes the token in
//! place, and the page sees Entra's Test Connection arrive. Every page at 1366 and 390 px
//! (`target/console-screenshots/setup-*.png`).

use crate::console_browser::{browser, click, fill, select, shot, start_driver, wait_text};
use crate::console_http::{OPERATOR, PASSWORD, operator};
use scim_testkit::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_link_to_first_request_in_chromium() {
    let s = TestServer::start(Backend::Sqlite).await;
    operator(&s).await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    // The instance admin makes the link.
    c.goto(&format!("{}/console/t/acme/admins", s.root))
        .await
        .unwrap();
    fill(&c, "#username", OPERATOR).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#sign-in").await;
    wait_text(&c, "h1", "Admins").await;
    shot(&c, "setup-01-admins-empty").await;
    select(&c, "#invite-idp", "entra").await;
    click(&c, "#make-invite").await;
    let url = wait_text(&c, "#new-link", "/console/setup/").await;
    shot(&c, "setup-02-link-once").await;
    click(&c, ".signout button").await;
    wait_text(&c, "h1", "Sign in").await;

    // The customer's admin opens it.
    c.goto(&url).await.unwrap();
    wait_text(&c, "h1", "Set up your access").await;
    fill(&c, "#username", "it@acme.example").await;
    fill(&c, "#password", "customer admin pass").await;
    fill(&c, "#repeat", "customer admin pass, typo").await;
    click(&c, "#setup-submit").await;
    wait_text(&c, "#setup-error", "differ").await;
    shot(&c, "setup-03-form-error").await;
    fill(&c, "#password", "customer admin pass").await;
    fill(&c, "#repeat", "customer admin pass").await;
    click(&c, "#setup-submit").await;
    wait_text(&c, "h1", "Connect").await;
    wait_text(&c, "#first-request", "Waiting").await;
    shot(&c, "setup-04-guide-entra").await;
    click(&c, "#make-token").await;
    let secret = wait_text(&c, "#new-secret", "").await;
    assert!(secret.len() > 20, "{secret}");
    shot(&c, "setup-05-token-once").await;

    // Entra's Test Connection: the page turns green by itself.
    let r = s
        .client
        .get(format!(
            "{}/Users?filter=userName+eq+%223fa85f64-5717-4562-b3fc-2c963f66afa6%22",
            s.base
        ))
        .bearer_auth(secret.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_text(&c, "#first-request", "Received").await;
    shot(&c, "setup-06-received").await;

    // The other providers' guides, and the Admins page as the tenant admin sees it.
    c.goto(&format!("{}/console/t/acme/setup?idp=okta", s.root))
        .await
        .unwrap();
    wait_text(&c, "#guide-okta", "SCIM connector base URL").await;
    shot(&c, "setup-07-guide-okta").await;
    c.goto(&format!("{}/console/t/acme/setup?idp=google", s.root))
        .await
        .unwrap();
    wait_text(&c, "#guide-google", "Domain-wide delegation").await;
    shot(&c, "setup-08-guide-google").await;
    c.goto(&format!("{}/console/t/acme/admins", s.root))
        .await
        .unwrap();
    wait_text(&c, "#admins", "it@acme.example").await;
    shot(&c, "setup-09-admins-as-tenant-admin").await;
    c.goto(&format!("{}/console/tenants", s.root))
        .await
        .unwrap();
    wait_text(&c, "#tenants", "acme").await;
    shot(&c, "setup-10-tenants-as-tenant-admin").await;

    // The link again: refused in words.
    c.goto(&url).await.unwrap();
    wait_text(&c, "#link-refused", "used already").await;
    shot(&c, "setup-11-link-used").await;

    // The tenant admin turns the second factor on, then signs in with it.
    c.goto(&format!("{}/console/account", s.root))
        .await
        .unwrap();
    let secret = wait_text(&c, "#totp-secret", "").await;
    shot(&c, "setup-12-account-offer").await;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = scim_core::second_factor::code_at(secret.trim(), unix).unwrap();
    fill(&c, "#on-code", &code).await;
    click(&c, "#mfa-on").await;
    wait_text(&c, "#recovery-codes", "-").await;
    shot(&c, "setup-13-recovery-codes").await;
    click(&c, ".signout button").await;
    wait_text(&c, "h1", "Sign in").await;
    fill(&c, "#username", "it@acme.example").await;
    fill(&c, "#password", "customer admin pass").await;
    click(&c, "#sign-in").await;
    wait_text(&c, "h1", "Enter your code").await;
    fill(&c, "#code", "000000").await;
    click(&c, "#verify-code").await;
    wait_text(&c, "#code-error", "Wrong").await;
    shot(&c, "setup-14-code-refused").await;
    let next = scim_core::second_factor::code_at(secret.trim(), unix + 30).unwrap();
    fill(&c, "#code", &next).await;
    click(&c, "#verify-code").await;
    wait_text(&c, "h1", "Tenants").await;
    c.close().await.unwrap();
}
