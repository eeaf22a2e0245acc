//! A tenant's admins and setup links (issue 32): `/console/t/{slug}/admins`. Everyone with
//! access to the tenant sees who administers it; instance admins make setup links (invite, or a
//! tenant admin's new password), revoke them, and change or take away a tenant admin's access.
//! A new link's URL is shown once: only the hash of its secret is stored.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chrome};
use super::common::{AppStateRef, Outcome, chrome, html, tenant_of, unknown_action};
use crate::AppState;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::access::Access;
use scim_core::audit::Actor;
use scim_core::clock::parse_duration;
use scim_core::service::IssuedLink;
use scim_core::setup_link::{DEFAULT_TTL, Idp, LinkPurpose, LinkState};
use scim_core::{CoreError, Tenant, Timestamp};
use serde::Deserialize;

struct AdminRow {
    username: String,
    /// The name is an e-mail address (a new password link can be e-mailed to it).
    mailable: bool,
    access: &'static str,
    read_only: bool,
    last_sign_in: String,
}

struct LinkRow {
    id: i64,
    what: String,
    idp: &'static str,
    created: String,
    created_by: String,
    expires: String,
    state: &'static str,
    usable: bool,
    used_by: String,
}

/// A link just made: its URL, shown once.
struct NewLink {
    url: String,
    what: String,
    expires: String,
}

struct IdpChoice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "console/admins.html")]
struct AdminsPage {
    chrome: Chrome,
    tenant_name: String,
    admins: Vec<AdminRow>,
    links: Vec<LinkRow>,
    idps: Vec<IdpChoice>,
    new_link: Option<NewLink>,
    /// An SMTP server is configured: links can be e-mailed.
    mail: bool,
    message: Option<String>,
    error: Option<String>,
}

fn link_what(purpose: LinkPurpose, operator: Option<&str>) -> String {
    match purpose {
        LinkPurpose::Invite => "Invite a new admin".into(),
        LinkPurpose::Reset => format!("New password for {}", operator.unwrap_or("(deleted)")),
    }
}

async fn admins_page(
    state: &AppState,
    s: &ConsoleSession,
    t: &Tenant,
    outcome: Outcome<NewLink>,
) -> ApiResult<Response> {
    let (status, new_link, message, error) = outcome.parts();
    let access = &state.services.access;
    let admins = access
        .admins(t)
        .await?
        .into_iter()
        .map(|(o, a)| AdminRow {
            mailable: scim_net::Mailer::check_address(&o.username).is_ok(),
            username: o.username,
            access: a.as_str(),
            read_only: a == Access::ReadOnly,
            last_sign_in: view::fmt_opt_time(o.last_login_at),
        })
        .collect();
    let now = Timestamp::now();
    // Links are shown to instance admins only: who was invited when is theirs to manage.
    let links = if s.operator.role.is_instance() {
        access
            .links(t)
            .await?
            .into_iter()
            .map(|l| {
                let state = l.state(now);
                LinkRow {
                    id: l.id,
                    what: link_what(l.purpose, l.operator.as_deref()),
                    idp: l.idp.map_or("", Idp::label),
                    created: view::fmt_time(l.created_at),
                    created_by: l.created_by,
                    expires: view::fmt_time(l.expires_at),
                    state: state.as_str(),
                    usable: state == LinkState::Usable,
                    used_by: l.used_by.unwrap_or_default(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    html(
        status,
        &AdminsPage {
            chrome: chrome(s, Some(t), "admins"),
            tenant_name: t.name.clone(),
            admins,
            links,
            idps: Idp::ALL
                .iter()
                .map(|i| IdpChoice {
                    value: i.as_str(),
                    label: i.label(),
                })
                .collect(),
            new_link,
            mail: state.mailer.is_some(),
            message,
            error,
        },
    )
}

pub async fn admins(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    admins_page(&state, &s, &t, Outcome::shown()).await
}

#[derive(Deserialize, Default)]
pub struct AdminsForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    idp: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    access: String,
    /// Where to e-mail the new link (none: it is shown once on the page).
    #[serde(default)]
    email: String,
}

/// The route guard lets only instance admins post here.
pub async fn admins_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    Form(form): Form<AdminsForm>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let who = &s.actor();
    let outcome = match form.action.as_str() {
        "invite" | "reset-link" => make_link(&state, &t, who, &form).await?,
        "revoke-link" => revoke_link(&state, &t, who, &form.id).await?,
        "access" | "remove" => change_access(&state, &t, who, &form).await?,
        other => return Err(AppError::new(400, unknown_action(other))),
    };
    admins_page(&state, &s, &t, outcome).await
}

/// A client mistake is shown on the form; scimd's own failure is an error page.
fn refused_or<T>(e: CoreError) -> ApiResult<Outcome<T>> {
    if e.is_internal() {
        Err(e.into())
    } else {
        Ok(Outcome::Refused(e.to_scim().detail))
    }
}

async fn make_link(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &AdminsForm,
) -> ApiResult<Outcome<NewLink>> {
    let ttl = match form.expires.as_str() {
        "" => DEFAULT_TTL,
        d => match parse_duration(d) {
            Ok(d) => d,
            Err(e) => return Ok(Outcome::Refused(e.to_string())),
        },
    };
    let email = form.email.trim();
    if !email.is_empty() {
        if state.mailer.is_none() {
            return Ok(Outcome::Refused(
                "no SMTP server is configured (smtp_url): make the link without an address and send it yourself".into(),
            ));
        }
        if let Err(e) = scim_net::Mailer::check_address(email) {
            return Ok(Outcome::Refused(e.to_string()));
        }
    }
    let access = &state.services.access;
    let made = if form.action == "invite" {
        let idp = match form.idp.as_str() {
            "" => None,
            i => match Idp::parse(i) {
                Some(i) => Some(i),
                None => return Ok(Outcome::Refused(format!("unknown identity provider '{i}'"))),
            },
        };
        access.invite(t, idp, ttl, who).await
    } else {
        access.reset_link(t, &form.username, ttl, who).await
    };
    let IssuedLink { link, secret } = match made {
        Ok(l) => l,
        Err(e) => return refused_or(e),
    };
    tracing::info!(operator = %who.name, tenant = %t.slug, link = link.id, purpose = link.purpose.as_str(), "setup link made");
    let new = NewLink {
        url: state.setup_url(&secret),
        what: link_what(link.purpose, link.operator.as_deref()),
        expires: view::fmt_time(link.expires_at),
    };
    match state.mailer.as_ref().filter(|_| !email.is_empty()) {
        None => Ok(Outcome::Done(StatusCode::CREATED, Some(new), None)),
        Some(mailer) => Ok(mail_link(mailer, t, link.purpose, email, new).await),
    }
}

/// E-mails a new link: said on the page without the link when it went (one channel), shown
/// once on the page as usual when it did not.
async fn mail_link(
    mailer: &scim_net::Mailer,
    t: &Tenant,
    purpose: LinkPurpose,
    to: &str,
    new: NewLink,
) -> Outcome<NewLink> {
    let (subject, what) = match purpose {
        LinkPurpose::Invite => (
            format!("Set up provisioning for {}", t.name),
            "You are invited to administer",
        ),
        LinkPurpose::Reset => (
            format!("A new password for {}", t.name),
            "Choose a new password for",
        ),
    };
    let body = format!(
        "{what} {} in scimd (SCIM provisioning).\n\nOpen this link, which works once, until {}:\n\n  {}\n\nIf you did not expect this message, ignore it: nothing happens until the link is opened.\n",
        t.name, new.expires, new.url
    );
    match mailer.send(&[to], &subject, body).await {
        Ok(()) => {
            tracing::info!(tenant = %t.slug, to = %to, "setup link e-mailed");
            let msg = format!(
                "The link was e-mailed to {to} (it is not shown here). It works once, until {}.",
                new.expires
            );
            Outcome::Done(StatusCode::CREATED, None, Some(msg))
        }
        Err(e) => {
            tracing::warn!(tenant = %t.slug, to = %to, error = %e, "a setup link could not be e-mailed");
            let msg = format!(
                "It could not be e-mailed to {to} ({e}): copy it below and send it yourself."
            );
            Outcome::Done(StatusCode::CREATED, Some(new), Some(msg))
        }
    }
}

async fn revoke_link(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    id: &str,
) -> ApiResult<Outcome<NewLink>> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(Outcome::Refused("no such setup link".into()));
    };
    match state.services.access.revoke(t, id, who).await {
        Ok(()) => {
            tracing::info!(operator = %who.name, tenant = %t.slug, link = id, "setup link revoked");
            Ok(Outcome::done("The link was revoked: it no longer opens."))
        }
        Err(CoreError::NotFound(_)) => Ok(Outcome::Refused(
            "That link was used, revoked or expired already.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn change_access(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &AdminsForm,
) -> ApiResult<Outcome<NewLink>> {
    let access = if form.action == "remove" {
        None
    } else {
        match Access::parse(&form.access) {
            Some(a) => Some(a),
            None => return Ok(Outcome::Refused("choose admin or read-only".into())),
        }
    };
    match state
        .services
        .access
        .grant(t, &form.username, access, who)
        .await
    {
        Ok(()) => {
            tracing::info!(operator = %who.name, tenant = %t.slug, admin = %form.username, access = access.map_or("none", Access::as_str), "tenant admin access changed");
            Ok(Outcome::done(match access {
                Some(a) => format!("{} is now {} of this tenant.", form.username, a.as_str()),
                None => format!("{} no longer administers this tenant.", form.username),
            }))
        }
        Err(e) => refused_or(e),
    }
}
