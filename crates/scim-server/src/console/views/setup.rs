//! Setup links, opened (issue 32): `/console/setup/{secret}`. An invite asks the customer's
//! admin for a name and password, makes them the tenant's admin, signs them in and leads to the
//! tenant's guided set-up; a reset link sets a tenant admin's new password. A link that is used,
//! revoked, expired or unknown says so (410 or 404), and never says which tenant it was for.

use super::super::session::{self, LOGIN_CSRF_COOKIE};
use super::common::{AppStateRef, html};
use crate::client_addr::ClientAddr;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::CookieJar;
use scim_core::operator::random_token;
use scim_core::service::LinkError;
use scim_core::setup_link::{LinkPurpose, SetupLink};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "console/setup_link.html")]
struct SetupLinkPage {
    csrf: String,
    /// The form's action (the link itself).
    action: String,
    reset: bool,
    tenant_name: String,
    /// The reset link's operator name; what was typed on an invite.
    username: String,
    idp: Option<&'static str>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/setup_refused.html")]
struct RefusedPage {
    message: String,
}

fn refused(e: LinkError) -> ApiResult<Response> {
    let status = match &e {
        LinkError::Unknown => StatusCode::NOT_FOUND,
        LinkError::NotUsable(_) => StatusCode::GONE,
        LinkError::Core(_) => return Err(other(e)),
    };
    html(
        status,
        &RefusedPage {
            message: e.to_string(),
        },
    )
}

fn other(e: LinkError) -> AppError {
    match e {
        LinkError::Core(c) => c.into(),
        e => AppError::new(400, e.to_string()),
    }
}

async fn tenant_name(state: &crate::AppState, link: &SetupLink) -> ApiResult<String> {
    let tenants = state.services.tenants.list().await?;
    Ok(tenants
        .into_iter()
        .find(|t| t.id == link.tenant_id)
        .map(|t| t.name)
        .unwrap_or_default())
}

pub async fn setup_form(
    State(state): AppStateRef,
    headers: HeaderMap,
    jar: CookieJar,
    Path(secret): Path<String>,
) -> ApiResult<Response> {
    let link = match state.services.access.open(&secret).await {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    let csrf = session::cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or_else(random_token);
    let page = html(
        StatusCode::OK,
        &SetupLinkPage {
            csrf: csrf.clone(),
            action: format!("/console/setup/{secret}"),
            reset: link.purpose == LinkPurpose::Reset,
            tenant_name: tenant_name(&state, &link).await?,
            username: link.operator.clone().unwrap_or_default(),
            idp: link.idp.map(|i| i.label()),
            error: None,
        },
    )?;
    let cookie = session::login_csrf_cookie(&state, &headers, csrf);
    Ok((jar.add(cookie), page).into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
    csrf: String,
}

pub async fn setup(
    State(state): AppStateRef,
    client: Option<Extension<ClientAddr>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(secret): Path<String>,
    Form(form): Form<SetupForm>,
) -> ApiResult<Response> {
    let access = &state.services.access;
    let link = match access.open(&secret).await {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    let reset = link.purpose == LinkPurpose::Reset;
    let again = |message: String| async {
        let page = SetupLinkPage {
            csrf: form.csrf.clone(),
            action: format!("/console/setup/{secret}"),
            reset,
            tenant_name: tenant_name(&state, &link).await?,
            username: if reset {
                link.operator.clone().unwrap_or_default()
            } else {
                form.username.clone()
            },
            idp: link.idp.map(|i| i.label()),
            error: Some(message),
        };
        html(StatusCode::BAD_REQUEST, &page)
    };
    if form.password != form.repeat {
        return again("The two passwords differ.".into()).await;
    }
    let peer_addr = client.map_or(peer.ip(), |c| c.0.0);
    let address = Some(peer_addr.to_string());
    let done = if reset {
        access.accept_reset(&secret, &form.password, address).await
    } else {
        access
            .accept_invite(&secret, &form.username, &form.password, address)
            .await
    };
    let op = match done {
        Ok(op) => op,
        Err(LinkError::Core(e))
            if !e.is_internal() && !matches!(e, scim_core::CoreError::Busy(_)) =>
        {
            return again(e.to_scim().detail).await;
        }
        Err(e @ (LinkError::Unknown | LinkError::NotUsable(_))) => return refused(e),
        Err(e) => return Err(other(e)),
    };
    tracing::info!(operator = %op.username, link = link.id, purpose = link.purpose.as_str(), "setup link used");
    // A tenant admin with a second factor still signs in with it: a new password is not a
    // way around the code.
    if op.has_second_factor() {
        return Ok(Redirect::to("/console/login").into_response());
    }
    let slug = op
        .role
        .grants()
        .iter()
        .find(|g| g.tenant_id == link.tenant_id)
        .map(|g| g.slug.clone());
    let next = match (slug, link.idp) {
        (Some(s), Some(idp)) => format!("/console/t/{s}/setup?idp={}", idp.as_str()),
        (Some(s), None) => format!("/console/t/{s}/setup"),
        (None, _) => "/console/tenants".into(),
    };
    let secure = session::secure(&state, &headers);
    super::second_factor::finish_sign_in(&state, jar, op, peer_addr, secure, &next, "").await
}
