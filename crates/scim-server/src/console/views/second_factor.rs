//! The console's second factor (issue 32): the code step of signing in, and the Account page
//! where an operator turns TOTP on (recovery codes shown once) or off.
//!
//! Between the password and the code the browser holds a short-lived cookie sealed under the
//! node's device key (the operator's name and an expiry: 5 minutes); code attempts are
//! throttled like sign-ins, per client address and name.

use super::super::devices::DEVICE_COOKIE;
use super::super::session::{self, ConsoleSession, signed_in};
use super::super::view::{self, Chrome};
use super::common::{AppStateRef, chrome, html, unknown_action};
use crate::AppState;
use crate::client_addr::ClientAddr;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::CookieJar;
use scim_core::audit::{AuditAction, AuditEntry};
use scim_core::second_factor::{self, must_enrol};
use scim_core::{Operator, Timestamp};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

pub const PENDING_COOKIE: &str = "scimd_second_step";
const PENDING_TTL: time::Duration = time::Duration::minutes(5);
const PENDING_OWNER: &str = "console-second-step";

#[derive(Template)]
#[template(path = "console/login_code.html")]
struct CodePage {
    csrf: String,
    next: String,
    error: Option<String>,
}

/// The code page after a right password, with the pending cookie.
pub(super) fn ask_code(
    state: &AppState,
    jar: CookieJar,
    op: &Operator,
    csrf: &str,
    next: &str,
    secure: bool,
    error: Option<(StatusCode, String)>,
) -> ApiResult<Response> {
    let until = Timestamp::now() + PENDING_TTL;
    let pending = state.device_key.seal(
        PENDING_OWNER,
        &format!("{}\n{}", op.username, until.as_micros()),
    )?;
    let (status, error) = match error {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    let page = html(
        status,
        &CodePage {
            csrf: csrf.to_string(),
            next: next.to_string(),
            error,
        },
    )?;
    let jar = jar.add(session::cookie(
        PENDING_COOKIE,
        pending,
        PENDING_TTL,
        secure,
    ));
    Ok((jar, page).into_response())
}

/// Opens the session, records the sign-in, clears the pending step.
pub(super) async fn finish_sign_in(
    state: &AppState,
    jar: CookieJar,
    op: Operator,
    addr: IpAddr,
    secure: bool,
    next: &str,
) -> ApiResult<Response> {
    let new = state
        .services
        .operators
        .open_session(op, Timestamp::now())
        .await?;
    tracing::info!(operator = %new.operator.username, "console sign-in");
    metrics::counter!("scimd_sign_ins_total", "outcome" => "success").increment(1);
    let actor = ConsoleSession {
        operator: new.operator.clone(),
        csrf: String::new(),
        address: Some(addr),
    }
    .actor();
    let entry = AuditEntry::new(&actor, AuditAction::SignedIn, &new.operator.username);
    state.services.audit.record(&entry).await?;
    let jar = jar.add(session::cookie(
        PENDING_COOKIE,
        String::new(),
        time::Duration::ZERO,
        secure,
    ));
    Ok(signed_in(jar, new.cookie_value, secure, next))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
    csrf: String,
}

/// The operator of a pending second step that has not expired.
fn pending(state: &AppState, jar: &CookieJar) -> Option<String> {
    let value = jar.get(PENDING_COOKIE)?.value().to_string();
    let opened = state.device_key.open(PENDING_OWNER, &value).ok()?;
    let (name, until) = opened.split_once('\n')?;
    let until = Timestamp::from_micros(until.parse().ok()?);
    (Timestamp::now() < until).then(|| name.to_string())
}

pub async fn login_code(
    State(state): AppStateRef,
    client: Option<Extension<ClientAddr>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> ApiResult<Response> {
    let next = view::safe_next(&form.next).unwrap_or_else(|| "/console/".into());
    let Some(name) = pending(&state, &jar) else {
        // No password step, or it is older than 5 minutes: start again.
        return Ok(Redirect::to("/console/login").into_response());
    };
    let addr = client.map_or(peer.ip(), |c| c.0.0);
    let secure = session::secure(&state, &headers);
    let device = jar
        .get(DEVICE_COOKIE)
        .and_then(|c| super::super::devices::verify(&state.device_key, c.value(), &name));
    let ops = &state.services.operators;
    let Some(op) = ops.by_name(&name).await? else {
        return Ok(Redirect::to("/console/login").into_response());
    };
    if let Err(wait) = state.sign_in_throttle.check(addr, &name, device.as_deref()) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let why = format!("Too many wrong codes. Try again in {secs} seconds.");
        return ask_code(
            &state,
            jar,
            &op,
            &form.csrf,
            &next,
            secure,
            Some((StatusCode::TOO_MANY_REQUESTS, why)),
        );
    }
    let key = state
        .instance_key
        .as_ref()
        .ok_or_else(|| AppError::new(500, "no instance key to open the second factor with"))?;
    if ops
        .check_second_factor(&op, &form.code, key, Timestamp::now())
        .await?
    {
        return finish_sign_in(&state, jar, op, addr, secure, &next).await;
    }
    tracing::info!(operator = %op.username, client = %addr, "console second factor refused");
    metrics::counter!("scimd_sign_ins_total", "outcome" => "failed").increment(1);
    let why = "Wrong or already used code. Type the code your app shows now, or a recovery code.";
    ask_code(
        &state,
        jar,
        &op,
        &form.csrf,
        &next,
        secure,
        Some((StatusCode::UNAUTHORIZED, why.into())),
    )
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    chrome: Chrome,
    role: String,
    enrolled: bool,
    required: bool,
    left: u32,
    /// A new secret to set up (not enrolled), and its otpauth URL.
    offer: Option<(String, String)>,
    recovery: Vec<String>,
    message: Option<String>,
    error: Option<String>,
}

async fn account_page(
    state: &AppState,
    s: &ConsoleSession,
    status: StatusCode,
    recovery: Vec<String>,
    message: Option<String>,
    error: Option<String>,
) -> ApiResult<Response> {
    // What is stored now (the session's copy predates a change made on this request).
    let op = state
        .services
        .operators
        .by_name(&s.operator.username)
        .await?
        .unwrap_or_else(|| s.operator.clone());
    let enrolled = op.has_second_factor();
    let offer = if enrolled {
        None
    } else {
        let secret = second_factor::new_secret();
        let url = second_factor::otpauth_url(&secret, &op.username)?;
        Some((secret, url))
    };
    html(
        status,
        &AccountPage {
            chrome: chrome(s, None, "account"),
            role: op.role.describe(),
            enrolled,
            required: must_enrol(state.config.require_totp, &op.role, false),
            left: if enrolled {
                state.services.operators.recovery_codes_left(&op).await?
            } else {
                0
            },
            offer,
            recovery,
            message,
            error,
        },
    )
}

pub async fn account(State(state): AppStateRef, s: ConsoleSession) -> ApiResult<Response> {
    account_page(&state, &s, StatusCode::OK, Vec::new(), None, None).await
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
}

pub async fn account_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Form(form): Form<AccountForm>,
) -> ApiResult<Response> {
    let Some(key) = state.instance_key.as_ref() else {
        let why = "this scimd has no instance key to seal a second factor with (scimd serve makes one on first start)";
        return account_page(
            &state,
            &s,
            StatusCode::BAD_REQUEST,
            Vec::new(),
            None,
            Some(why.into()),
        )
        .await;
    };
    let ops = &state.services.operators;
    let refused = |why: &str| Some(why.to_string());
    match form.action.as_str() {
        "enable" => match ops
            .enable_second_factor(&s.operator, &form.secret, &form.code, key, &s.actor())
            .await
        {
            Ok(codes) => {
                let done = "Second factor on: from now on signing in asks for a code.";
                account_page(&state, &s, StatusCode::OK, codes, Some(done.into()), None).await
            }
            Err(e) if !e.is_internal() => {
                let why = e.to_scim().detail;
                account_page(
                    &state,
                    &s,
                    StatusCode::BAD_REQUEST,
                    Vec::new(),
                    None,
                    Some(why),
                )
                .await
            }
            Err(e) => Err(e.into()),
        },
        "disable" => {
            let op = ops
                .by_name(&s.operator.username)
                .await?
                .unwrap_or_else(|| s.operator.clone());
            if must_enrol(state.config.require_totp, &op.role, false) {
                let why = refused(
                    "a second factor is required for your role here: it cannot be turned off",
                );
                return account_page(&state, &s, StatusCode::BAD_REQUEST, Vec::new(), None, why)
                    .await;
            }
            if !ops
                .check_second_factor(&op, &form.code, key, Timestamp::now())
                .await?
            {
                let why = refused("wrong or already used code: nothing changed");
                return account_page(&state, &s, StatusCode::BAD_REQUEST, Vec::new(), None, why)
                    .await;
            }
            ops.disable_second_factor(&op, &s.actor()).await?;
            let done = "Second factor off.";
            account_page(
                &state,
                &s,
                StatusCode::OK,
                Vec::new(),
                Some(done.into()),
                None,
            )
            .await
        }
        other => Err(AppError::new(400, unknown_action(other))),
    }
}
