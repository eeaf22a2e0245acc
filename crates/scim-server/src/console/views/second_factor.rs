//! The console's second factor (issue 32): the code step of signing in, and the Account page
//! where an operator turns TOTP on (recovery codes shown once) or off.
//!
//! Between the password and the code the browser holds a short-lived cookie sealed under the
//! node's device key (the operator's name and an expiry: 5 minutes); code attempts are
//! throttled like sign-ins, per client address and name.

use super::super::devices::{self, DEVICE_COOKIE, DEVICE_TTL};
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
use scim_core::service::CodeKind;
use scim_core::{Operator, Timestamp};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

pub const PENDING_COOKIE: &str = "scimd_second_step";
pub const PENDING_TTL: time::Duration = time::Duration::minutes(5);
const PENDING_OWNER: &str = "console-second-step";

#[derive(Template)]
#[template(path = "console/login_code.html")]
struct CodePage {
    csrf: String,
    next: String,
    error: Option<String>,
}

/// A tag of the operator's password hash: a pending step ends when the password changes.
fn password_tag(op: &Operator) -> String {
    scim_core::token::hash_secret(&op.password_hash)[..16].to_string()
}

/// The code page after a right password, with the pending step (sealed: the operator, the
/// step's fixed end, the password's tag).
#[allow(clippy::too_many_arguments)]
pub(super) fn ask_code(
    state: &AppState,
    jar: CookieJar,
    op: &Operator,
    csrf: &str,
    next: &str,
    secure: bool,
    until: Timestamp,
    error: Option<(StatusCode, String)>,
) -> ApiResult<Response> {
    let pending = state.device_key.seal(
        PENDING_OWNER,
        &format!(
            "{}\n{}\n{}",
            op.username,
            until.as_micros(),
            password_tag(op)
        ),
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
    let left = (until - Timestamp::now()).max(time::Duration::ZERO);
    let jar = jar.add(session::cookie(PENDING_COOKIE, pending, left, secure));
    Ok((jar, page).into_response())
}

/// Opens the session, records the sign-in (`how`: what it adds to the row, e.g. that a
/// recovery code was used), gives the browser its known-device cookie, clears the pending
/// step.
pub(super) async fn finish_sign_in(
    state: &AppState,
    jar: CookieJar,
    op: Operator,
    addr: IpAddr,
    secure: bool,
    next: &str,
    how: &str,
) -> ApiResult<Response> {
    let known = jar
        .get(DEVICE_COOKIE)
        .and_then(|c| devices::verify(&state.device_key, c.value(), &op.username))
        .is_some();
    let new = state
        .services
        .operators
        .open_session(op, Timestamp::now())
        .await?;
    tracing::info!(operator = %new.operator.username, "console sign-in");
    metrics::counter!("scimd_sign_ins_total", "outcome" => "success").increment(1);
    let actor = session::actor_of(&new.operator, Some(addr));
    let target = format!("{}{how}", new.operator.username);
    let entry = AuditEntry::new(&actor, AuditAction::SignedIn, target);
    state.services.audit.record(&entry).await?;
    let mut jar = jar.add(session::cookie(
        PENDING_COOKIE,
        String::new(),
        time::Duration::ZERO,
        secure,
    ));
    if !known {
        jar = jar.add(session::cookie(
            DEVICE_COOKIE,
            devices::issue(&state.device_key, &new.operator.username),
            DEVICE_TTL,
            secure,
        ));
    }
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

/// A pending second step that has not expired: the operator's name, its end, the tag.
fn pending(state: &AppState, jar: &CookieJar) -> Option<(String, Timestamp, String)> {
    let value = jar.get(PENDING_COOKIE)?.value().to_string();
    let opened = state.device_key.open(PENDING_OWNER, &value).ok()?;
    let mut parts = opened.splitn(3, '\n');
    let name = parts.next()?.to_string();
    let until = Timestamp::from_micros(parts.next()?.parse().ok()?);
    let tag = parts.next()?.to_string();
    (Timestamp::now() < until).then_some((name, until, tag))
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
    let again = || Ok(Redirect::to("/console/login").into_response());
    // No password step, one older than 5 minutes, or one from before a password change.
    let Some((name, until, tag)) = pending(&state, &jar) else {
        return again();
    };
    let ops = &state.services.operators;
    let Some(op) = ops.by_name(&name).await?.filter(|o| password_tag(o) == tag) else {
        return again();
    };
    let addr = client.map_or(peer.ip(), |c| c.0.0);
    let secure = session::secure(&state, &headers);
    let now = Timestamp::now();
    let refuse = |status, why: String| {
        ask_code(
            &state,
            jar.clone(),
            &op,
            &form.csrf,
            &next,
            secure,
            until,
            Some((status, why)),
        )
    };
    // Wrong codes are counted per operator, whatever the browser or address.
    if let Some(t) = op.locked_until.filter(|t| *t > now) {
        let why = format!(
            "Too many wrong codes for this account: try again after {}.",
            view::fmt_time(t)
        );
        return refuse(StatusCode::TOO_MANY_REQUESTS, why);
    }
    let device = jar
        .get(DEVICE_COOKIE)
        .and_then(|c| devices::verify(&state.device_key, c.value(), &name));
    if let Err(wait) = state.sign_in_throttle.check(addr, &name, device.as_deref()) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let why = format!("Too many wrong codes. Try again in {secs} seconds.");
        return refuse(StatusCode::TOO_MANY_REQUESTS, why);
    }
    let key = state
        .instance_key
        .as_ref()
        .ok_or_else(|| AppError::new(500, "no instance key to open the second factor with"))?;
    match ops.check_second_factor(&op, &form.code, key, now).await? {
        Some(CodeKind::Totp) => finish_sign_in(&state, jar, op, addr, secure, &next, "").await,
        Some(CodeKind::Recovery) => {
            let how = " (with a recovery code)";
            finish_sign_in(&state, jar, op, addr, secure, &next, how).await
        }
        None => {
            tracing::info!(operator = %op.username, client = %addr, "console second factor refused");
            metrics::counter!("scimd_sign_ins_total", "outcome" => "failed").increment(1);
            let why = match ops.second_factor_failed(&op, now).await? {
                Some(t) => format!(
                    "Too many wrong codes for this account: try again after {}.",
                    view::fmt_time(t)
                ),
                None => "Wrong or already used code. Type the code your app shows now, or a \
                         recovery code."
                    .into(),
            };
            refuse(StatusCode::UNAUTHORIZED, why)
        }
    }
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    chrome: Chrome,
    role: String,
    enrolled: bool,
    required: bool,
    left: u32,
    /// A new secret to set up (not enrolled), its otpauth URL and that URL as a QR code
    /// (an SVG drawn here from the URL alone: no outside input reaches its markup).
    offer: Option<(String, String, String)>,
    recovery: Vec<String>,
    message: Option<String>,
    error: Option<String>,
}

/// The otpauth URL as a QR code an authenticator app scans (SVG, 200 px or more).
fn qr_svg(url: &str) -> ApiResult<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| AppError::new(500, format!("cannot draw the QR code: {e}")))?;
    let drawn = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in HTML: from `<svg` on (no XML declaration).
    Ok(match drawn.find("<svg") {
        Some(i) => drawn[i..].to_string(),
        None => drawn,
    })
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
        let qr = qr_svg(&url)?;
        Some((secret, url, qr))
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
    let fresh = ops
        .by_name(&s.operator.username)
        .await?
        .unwrap_or_else(|| s.operator.clone());
    match form.action.as_str() {
        "enable" if fresh.has_second_factor() => {
            let why = refused(
                "the second factor is on already: turn it off (with a code) to set up another",
            );
            account_page(&state, &s, StatusCode::BAD_REQUEST, Vec::new(), None, why).await
        }
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
            let op = fresh;
            if must_enrol(state.config.require_totp, &op.role, false) {
                let why = refused(
                    "a second factor is required for your role here: it cannot be turned off",
                );
                return account_page(&state, &s, StatusCode::BAD_REQUEST, Vec::new(), None, why)
                    .await;
            }
            if ops
                .check_second_factor(&op, &form.code, key, Timestamp::now())
                .await?
                .is_none()
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
