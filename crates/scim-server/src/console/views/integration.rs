//! A tenant's SCIM integration page: its base URL and its tokens (add, revoke, rotate).

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
use scim_core::audit::Actor;
use scim_core::clock::parse_duration;
use scim_core::token::TokenStatus;
use scim_core::{CoreError, Tenant, Timestamp, TokenScopes};
use serde::Deserialize;
struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    last_used: String,
    expires: String,
    status: &'static str,
    active: bool,
}

struct NewSecret {
    name: String,
    secret: String,
    rotated: bool,
    /// A rotation's grace: until when the previous secret still works (none: it ended).
    old_valid_until: Option<String>,
}

#[derive(Template)]
#[template(path = "console/integration.html")]
struct IntegrationPage {
    chrome: Chrome,
    tenant_name: String,
    scim_url: String,
    tokens: Vec<TokenRow>,
    new_secret: Option<NewSecret>,
    message: Option<String>,
    error: Option<String>,
}

async fn integration_page(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &Tenant,
    outcome: Outcome<NewSecret>,
) -> ApiResult<Response> {
    let (status, new_secret, message, error) = outcome.parts();
    let now = Timestamp::now();
    let tokens = state
        .services
        .tokens
        .list(tenant)
        .await?
        .into_iter()
        .rev()
        .map(|t| {
            let status = t.status(now);
            TokenRow {
                scopes: scope_text(&t.scopes),
                created: view::fmt_time(t.created_at),
                last_used: view::fmt_opt_time(t.last_used_at),
                expires: t
                    .expires_at
                    .map(view::fmt_time)
                    .unwrap_or_else(|| "never".into()),
                active: status == TokenStatus::Active,
                status: status.as_str(),
                prefix: format!("{}…", t.prefix),
                id: t.id,
                name: t.name,
            }
        })
        .collect();
    html(
        status,
        &IntegrationPage {
            chrome: chrome(s, Some(tenant), "integration"),
            tenant_name: tenant.name.clone(),
            scim_url: state.base_url(tenant),
            tokens,
            new_secret,
            message,
            error,
        },
    )
}

/// `Users: Read+Write · Groups: Read`.
fn scope_text(scopes: &TokenScopes) -> String {
    scopes
        .0
        .iter()
        .map(|s| {
            let ep = match s.endpoint {
                scim_core::Endpoint::Users => "Users",
                scim_core::Endpoint::Groups => "Groups",
                scim_core::Endpoint::Bulk => "Bulk",
                scim_core::Endpoint::Events => "Events",
            };
            let pr = match s.privilege {
                scim_core::Privilege::Read => "Read",
                scim_core::Privilege::ReadWrite => "Read+Write",
            };
            format!("{ep}: {pr}")
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub async fn integration(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    integration_page(&state, &s, &t, Outcome::shown()).await
}

#[derive(Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    users: String,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    bulk: String,
    #[serde(default)]
    events: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    grace: String,
}

impl TokenForm {
    fn scopes(&self) -> Result<TokenScopes, String> {
        let mut list = Vec::new();
        for (ep, v) in [
            ("users", &self.users),
            ("groups", &self.groups),
            ("bulk", &self.bulk),
            ("events", &self.events),
        ] {
            match v.as_str() {
                "" | "none" => {}
                "r" | "rw" => list.push(format!("{ep}:{v}")),
                other => return Err(format!("unknown privilege '{other}'")),
            }
        }
        if list.is_empty() {
            return Err("choose Read or Read+Write for at least one endpoint".into());
        }
        TokenScopes::parse_list(&list).map_err(|e| e.to_string())
    }
}

pub async fn integration_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    Form(form): Form<TokenForm>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let who = &s.actor();
    let outcome = match form.action.as_str() {
        "create" => create(&state, &t, who, &form).await?,
        "revoke" => revoke(&state, &t, who, &form.id).await?,
        "rotate" => rotate(&state, &t, who, &form).await?,
        other => return Err(AppError::new(400, unknown_action(other))),
    };
    integration_page(&state, &s, &t, outcome).await
}

async fn create(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &TokenForm,
) -> ApiResult<Outcome<NewSecret>> {
    let scopes = match form.scopes() {
        Ok(sc) => sc,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let expires_in = match form.expires.as_str() {
        "" | "never" => None,
        d => match parse_duration(d) {
            Ok(d) => Some(d),
            Err(e) => return Ok(Outcome::Refused(e.to_string())),
        },
    };
    let tokens = &state.services.tokens;
    let issued = match tokens.create(t, &form.name, scopes, expires_in, who).await {
        Ok(issued) => issued,
        Err(CoreError::Invalid(m)) => return Ok(Outcome::Refused(m)),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(operator = %who.name, tenant = %t.slug, token = %issued.record.name, "token created in the console");
    let secret = NewSecret {
        name: issued.record.name.clone(),
        secret: issued.secret,
        rotated: false,
        old_valid_until: None,
    };
    Ok(Outcome::Done(StatusCode::CREATED, Some(secret), None))
}

async fn revoke(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    id: &str,
) -> ApiResult<Outcome<NewSecret>> {
    state
        .services
        .tokens
        .revoke(t, id, who)
        .await
        .map_err(|e| match e {
            CoreError::NotFound(_) => AppError::new(404, "no such token in this tenant"),
            other => other.into(),
        })?;
    // This node stops accepting it at once; others within the cache TTL.
    state.auth_cache.clear();
    tracing::info!(operator = %who.name, tenant = %t.slug, token_id = %id, "token revoked in the console");
    let message = format!(
        "Token revoked. Requests with it are refused from now on (by every scimd node within {} seconds).",
        crate::auth::TOKEN_CACHE_TTL.as_secs()
    );
    Ok(Outcome::Done(StatusCode::OK, None, Some(message)))
}

async fn rotate(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &TokenForm,
) -> ApiResult<Outcome<NewSecret>> {
    let grace = match form.grace.as_str() {
        "" | "none" | "0" => time::Duration::ZERO,
        g => parse_duration(g)?,
    };
    let tokens = &state.services.tokens;
    let name = tokens
        .list(t)
        .await?
        .into_iter()
        .find(|x| x.id == form.id)
        .map(|x| x.name)
        .unwrap_or_default();
    let secret = tokens.rotate(t, &form.id, grace, who).await?;
    state.auth_cache.clear();
    tracing::info!(operator = %who.name, tenant = %t.slug, token_id = %form.id, "token rotated in the console");
    let secret = NewSecret {
        name,
        secret,
        rotated: true,
        old_valid_until: grace
            .is_positive()
            .then(|| view::fmt_time(scim_core::Timestamp::now() + grace)),
    };
    Ok(Outcome::Done(StatusCode::OK, Some(secret), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_form_scopes() {
        let f = TokenForm {
            users: "rw".into(),
            groups: "r".into(),
            bulk: "none".into(),
            ..Default::default()
        };
        assert_eq!(f.scopes().unwrap().to_string(), "users:rw groups:r");
        assert!(TokenForm::default().scopes().is_err());
        let bad = TokenForm {
            users: "admin".into(),
            ..Default::default()
        };
        assert!(bad.scopes().is_err());
    }
}
