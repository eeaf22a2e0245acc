//! A tenant's guided set-up (issue 32): `/console/t/{slug}/setup?idp=…`, step by step for each
//! identity provider, with the exact values to paste, a token made in place (the identity
//! provider preset: users, groups and Bulk read+write, never expiring, shown once) and a live
//! "waiting for the first request" check fed by the tenant's tokens (`/setup/status`).
//!
//! The steps are data ([`steps`]), table-tested; the field names are the providers' own, from
//! their admin guides (`docs/interop.md` and `../shared/reference/idp-behaviour.md`).

use super::super::session::ConsoleSession;
use super::super::view::{self, Chrome};
use super::common::{AppStateRef, chrome, html, pairs, param, tenant_of, unknown_action};
use crate::AppState;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::setup_link::Idp;
use scim_core::{CoreError, Tenant, TokenScopes};
use serde::Deserialize;

/// Where a step's extra part goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// The token form (or the secret just made).
    Token,
    /// The live first-request check.
    Check,
}

/// One step of a guide.
#[derive(Debug, Clone)]
pub struct Step {
    pub title: &'static str,
    pub text: String,
    /// Values to paste: (the provider's field name, the value).
    pub values: Vec<(&'static str, String)>,
    pub extra: Extra,
}

fn step(title: &'static str, text: &str) -> Step {
    Step {
        title,
        text: text.to_string(),
        values: Vec::new(),
        extra: Extra::None,
    }
}

impl Step {
    fn value(mut self, field: &'static str, v: &str) -> Self {
        self.values.push((field, v.to_string()));
        self
    }
    fn with(mut self, extra: Extra) -> Self {
        self.extra = extra;
        self
    }
}

/// The Directory API scopes the engine's Google source asks for (read-only).
const GOOGLE_SCOPES: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly,\
https://www.googleapis.com/auth/admin.directory.group.readonly,\
https://www.googleapis.com/auth/admin.directory.group.member.readonly";

/// The steps for `idp`, with `url` the tenant's SCIM base URL.
pub fn steps(idp: Idp, url: &str) -> Vec<Step> {
    match idp {
        Idp::Entra => vec![
            step("Create the application", "In the Microsoft Entra admin center open Enterprise applications → New application → Create your own application. Name it, choose “Integrate any other application you don't find in the gallery (Non-gallery)” and click Create."),
            step("Open provisioning", "In the new application open Provisioning → Get started (or “Connect your application”) and set Provisioning Mode to Automatic."),
            step("Admin Credentials", "Under Admin Credentials paste the Tenant URL and a Secret Token made here for Entra.").value("Tenant URL", url).with(Extra::Token),
            step("Test Connection", "Click Test Connection. Entra looks up a user that does not exist; scimd answers with an empty list and Entra says the credentials are authorized. Then click Save.").with(Extra::Check),
            step("Mappings", "Under Mappings keep “Provision Microsoft Entra ID Users” and “Provision Microsoft Entra ID Groups” enabled. scimd takes Entra's default attribute mappings as they are (userPrincipalName → userName)."),
            step("Scope and start", "Under Settings → Scope choose “Sync only assigned users and groups”, then assign people and groups under Users and groups. Set Provisioning Status to On and Save. Entra's first cycle starts within 40 minutes; Provision on demand sends one user at once."),
        ],
        Idp::Okta => vec![
            step("Create the app integration", "In the Okta Admin Console open Applications → Create App Integration, choose SAML 2.0 or SWA, and finish the wizard. On the General tab, App Settings → Edit, set Provisioning to SCIM and Save."),
            step("SCIM connection", "On the Provisioning tab, Integration → Edit. Choose HTTP Header as the Authentication Mode, tick Push New Users, Push Profile Updates and Push Groups, and paste these values.").value("SCIM connector base URL", url).value("Unique identifier field for users", "userName").with(Extra::Token),
            step("Test Connector Configuration", "Click Test Connector Configuration: Okta reads the server's capabilities and a page of users. Close the dialog and Save.").with(Extra::Check),
            step("To App", "Under Provisioning → To App → Edit, enable Create Users, Update User Attributes and Deactivate Users, then Save."),
            step("Assign and push", "Assign people and groups on the Assignments tab; push groups on the Push Groups tab. Okta sends each assignment within seconds."),
        ],
        Idp::OneLogin => vec![
            step("Add the connector", "In OneLogin open Applications → Add App, search for “SCIM Provisioner with SAML (SCIM v2 Enterprise)” and Save."),
            step("Configuration", "On the Configuration tab paste the base URL and a bearer token made here; keep the default SCIM JSON Template.").value("SCIM Base URL", url).with(Extra::Token),
            step("Enable the API connection", "Save, then click Enable next to API Status. OneLogin tests the connection at once.").with(Extra::Check),
            step("Provisioning", "On the Provisioning tab tick Enable provisioning, choose what happens to deleted and suspended users (Suspend keeps them in scimd, inactive), and Save."),
            step("Assign", "Give people the application (Users, or a role); their accounts are created in scimd within a minute."),
        ],
        Idp::JumpCloud => vec![
            step("Add the application", "In the JumpCloud Admin Portal open SSO Applications → Add New Application → Custom Application, and tick “Export users to this app (Identity Management)”."),
            step("Identity Management", "On the Identity Management tab choose SCIM API, SCIM 2.0, and paste the base URL and a token made here as the Token Key.").value("Base URL", url).with(Extra::Token),
            step("Test and activate", "Click Test Connection, then Activate. JumpCloud reads a page of users first.").with(Extra::Check),
            step("Bind user groups", "On the User Groups tab bind the groups whose members need access; tick Group Management to send the groups too. Save."),
        ],
        Idp::Google => vec![
            step("Why Google is different", "Google Workspace provisions only the apps of its own catalog: it cannot send users to a custom SCIM URL. scimd's provisioning engine reads your Google directory instead and sends it here, with the same result."),
            step("Create a service account", "In the Google Cloud console open IAM & Admin → Service Accounts → Create service account, then Keys → Add key → Create new key → JSON. Keep the downloaded file safe: it is the engine's credential."),
            step("Domain-wide delegation", "In the Google Admin console open Security → Access and data control → API controls → Manage Domain Wide Delegation → Add new. Paste the service account's client ID and these read-only scopes.").value("OAuth scopes", GOOGLE_SCOPES),
            step("Hand over", "Send the people who run this scimd the JSON key file (by a safe channel), an administrator's e-mail address for the engine to act as, and this tenant's URL. They create the app (Apps → New app → Google Workspace) with this tenant as its target.").value("Tenant URL", url),
            step("First cycle", "When the app's first cycle runs, the check below turns green and your users appear under Users.").with(Extra::Check),
        ],
    }
}

struct IdpTab {
    slug: &'static str,
    label: &'static str,
    current: bool,
}

struct NewToken {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "console/setup_guide.html")]
struct GuidePage {
    chrome: Chrome,
    tenant_name: String,
    idp: &'static str,
    idp_label: &'static str,
    tabs: Vec<IdpTab>,
    steps: Vec<Step>,
    new_token: Option<NewToken>,
    check: Check,
    /// Where the check polls.
    href: String,
    error: Option<String>,
}

/// The first-request check: the newest use of any of the tenant's tokens.
pub struct Check {
    pub received: Option<String>,
}

#[derive(Template)]
#[template(path = "console/setup_check.html")]
struct CheckFragment {
    check: Check,
    href: String,
}

async fn check(state: &AppState, t: &Tenant) -> ApiResult<Check> {
    let used = state
        .services
        .tokens
        .list(t)
        .await?
        .into_iter()
        .filter_map(|k| k.last_used_at.map(|at| (at, k.name)))
        .max_by_key(|(at, _)| *at);
    Ok(Check {
        received: used.map(|(at, name)| format!("{} with token “{name}”", view::fmt_time(at))),
    })
}

fn chosen(q: Option<String>) -> Idp {
    Idp::parse(&param(&pairs(q), "idp")).unwrap_or(Idp::Entra)
}

async fn page(
    state: &AppState,
    s: &ConsoleSession,
    t: &Tenant,
    idp: Idp,
    new_token: Option<NewToken>,
    error: Option<String>,
) -> ApiResult<Response> {
    let url = state.base_url(t);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(
        status,
        &GuidePage {
            chrome: chrome(s, Some(t), "setup"),
            tenant_name: t.name.clone(),
            idp: idp.as_str(),
            idp_label: idp.label(),
            tabs: Idp::ALL
                .iter()
                .map(|i| IdpTab {
                    slug: i.as_str(),
                    label: i.label(),
                    current: *i == idp,
                })
                .collect(),
            steps: steps(idp, &url),
            new_token,
            check: check(state, t).await?,
            href: format!("/console/t/{}/setup/status", t.slug),
            error,
        },
    )
}

pub async fn guide(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    page(&state, &s, &t, chosen(q), None, None).await
}

/// The check alone, polled by the page every 3 s until a request has arrived.
pub async fn guide_status(
    State(state): AppStateRef,
    _s: ConsoleSession,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    html(
        StatusCode::OK,
        &CheckFragment {
            check: check(&state, &t).await?,
            href: format!("/console/t/{}/setup/status", t.slug),
        },
    )
}

#[derive(Deserialize)]
pub struct GuideForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    idp: String,
}

/// Makes the identity provider's token, named after it, and shows it once in its step.
pub async fn guide_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    Form(form): Form<GuideForm>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    if form.action != "create-token" {
        return Err(AppError::new(400, unknown_action(&form.action)));
    }
    let idp = Idp::parse(&form.idp).unwrap_or(Idp::Entra);
    let name = format!("{} provisioning", idp.label());
    match state
        .services
        .tokens
        .create(&t, &name, TokenScopes::all(), None, &s.actor())
        .await
    {
        Ok(issued) => {
            tracing::info!(operator = %s.operator.username, tenant = %t.slug, token = %name, "token created in the guided set-up");
            let new = NewToken {
                name: issued.record.name,
                secret: issued.secret,
            };
            page(&state, &s, &t, idp, Some(new), None).await
        }
        Err(CoreError::Invalid(m)) => page(&state, &s, &t, idp, None, Some(m)).await,
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guide_gives_the_url_a_token_or_check_and_the_providers_words() {
        let url = "https://scim.example/t/acme/scim/v2";
        for idp in Idp::ALL {
            let s = steps(idp, url);
            assert!(s.len() >= 4, "{idp:?}");
            assert!(
                s.iter().any(|st| st.values.iter().any(|(_, v)| v == url)),
                "{idp:?} pastes the URL"
            );
            assert_eq!(
                s.iter().filter(|st| st.extra == Extra::Check).count(),
                1,
                "{idp:?} has one live check"
            );
            let tokens = s.iter().filter(|st| st.extra == Extra::Token).count();
            // Google cannot push: its guide leads to the engine and makes no token.
            assert_eq!(tokens, usize::from(idp != Idp::Google), "{idp:?}");
        }
        let words = |idp| {
            steps(idp, url)
                .iter()
                .map(|s| format!("{} {:?}", s.text, s.values))
                .collect::<String>()
        };
        assert!(words(Idp::Entra).contains("Non-gallery"));
        assert!(words(Idp::Entra).contains("Tenant URL"));
        assert!(words(Idp::Entra).contains("Test Connection"));
        assert!(words(Idp::Okta).contains("SCIM connector base URL"));
        assert!(words(Idp::Okta).contains("HTTP Header"));
        assert!(words(Idp::Okta).contains("Push Groups"));
        assert!(words(Idp::Google).contains("admin.directory.group.member.readonly"));
        assert!(words(Idp::Google).contains("Apps → New app"));
    }
}
