//! Sign-in and sign-out.

use super::super::devices::{self, DEVICE_COOKIE};
use super::super::session::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::super::view;
use super::common::{AppStateRef, html, pairs, param};
use crate::client_addr::ClientAddr;
use crate::error::ApiResult;
use askama::Template;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::CookieJar;
use scim_core::Timestamp;
use scim_core::operator::{SignInError, random_token};
use serde::Deserialize;
use std::net::SocketAddr;
#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
}

pub async fn login_form(
    State(state): AppStateRef,
    headers: HeaderMap,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let next = view::safe_next(&param(&pairs(q), "next")).unwrap_or_else(|| "/console/".into());
    if let Some(value) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let signed_in = state
            .services
            .operators
            .session(&value, Timestamp::now())
            .await?
            .is_some();
        if signed_in {
            return Ok(Redirect::to(&next).into_response());
        }
    }
    let csrf = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(random_token);
    let page = html(
        StatusCode::OK,
        &LoginPage {
            csrf: csrf.clone(),
            next,
            username: String::new(),
            error: None,
        },
    )?;
    let cookie = session::login_csrf_cookie(&state, &headers, csrf);
    Ok((jar.add(cookie), page).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    csrf: String,
}

pub async fn login(
    State(state): AppStateRef,
    client: Option<Extension<ClientAddr>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> ApiResult<Response> {
    let next = view::safe_next(&form.next).unwrap_or_else(|| "/console/".into());
    let who = form.username.escape_debug().take(64).collect::<String>();
    let addr = client.map_or(peer.ip(), |c| c.0.0);
    // A browser that signed in as this name before: its own allowance.
    let device = jar
        .get(DEVICE_COOKIE)
        .and_then(|c| devices::verify(&state.device_key, c.value(), &form.username));
    // Throttled before any password is checked (atomic: governor's cells).
    if let Err(wait) = state
        .sign_in_throttle
        .check(addr, &form.username, device.as_deref())
    {
        tracing::warn!(username = %who, client = %addr, "console sign-in throttled");
        metrics::counter!("scimd_sign_ins_total", "outcome" => "throttled").increment(1);
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let message = format!("Too many failed sign-ins. Try again in {secs} seconds.");
        return refused(
            &form,
            next,
            StatusCode::TOO_MANY_REQUESTS,
            message,
            Some(secs),
        );
    }
    let ops = &state.services.operators;
    match ops.check_password(&form.username, &form.password).await {
        Ok(op) => {
            let secure = session::secure(&state, &headers);
            if op.has_second_factor() {
                // The password was right: the code next, on its own page (the known-device
                // cookie only once the code is right too).
                let until = Timestamp::now() + super::second_factor::PENDING_TTL;
                return super::second_factor::ask_code(
                    &state, jar, &op, &form.csrf, &next, secure, until, None,
                );
            }
            super::second_factor::finish_sign_in(&state, jar, op, addr, secure, &next, "").await
        }
        Err(SignInError::BadCredentials) => {
            tracing::info!(username = %who, client = %addr, "console sign-in refused");
            metrics::counter!("scimd_sign_ins_total", "outcome" => "failed").increment(1);
            let message = "Wrong username or password.".to_string();
            refused(&form, next, StatusCode::UNAUTHORIZED, message, None)
        }
        Err(SignInError::Core(scim_core::CoreError::Busy(_))) => {
            let message = "scimd is busy checking other sign-ins; try again in a second.";
            refused(
                &form,
                next,
                StatusCode::SERVICE_UNAVAILABLE,
                message.into(),
                Some(1),
            )
        }
        Err(SignInError::Core(e)) => Err(e.into()),
    }
}

/// The form again with the reason, and `Retry-After` when waiting helps.
fn refused(
    form: &LoginForm,
    next: String,
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
) -> ApiResult<Response> {
    let page = LoginPage {
        csrf: form.csrf.clone(),
        next,
        username: form.username.clone(),
        error: Some(message),
    };
    let mut resp = html(status, &page)?;
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    Ok(resp)
}

pub async fn logout(
    State(state): AppStateRef,
    headers: HeaderMap,
    jar: CookieJar,
) -> ApiResult<Response> {
    if let Some(v) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        state.services.operators.sign_out(&v).await?;
    }
    let gone = session::cookie(
        SESSION_COOKIE,
        String::new(),
        time::Duration::ZERO,
        session::secure(&state, &headers),
    );
    Ok((jar.add(gone), Redirect::to("/console/login")).into_response())
}
