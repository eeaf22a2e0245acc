//! Console sign-in state: the session cookie, the extractor that requires it, and the guard
//! that checks every state-changing request.
//!
//! - The session cookie is `HttpOnly; SameSite=Strict; Path=/console`, plus `Secure` when
//!   scimd's public URL is https (or a proxy says `X-Forwarded-Proto: https`); cookies are
//!   read and written with axum-extra's `CookieJar`.
//! - CSRF: every form carries the session's token in a hidden `csrf` field (synchronizer
//!   token pattern); the guard compares it for every non-GET request before any handler runs,
//!   so a handler cannot forget. The sign-in form, which has no session yet, uses a
//!   double-submit cookie instead. Requests whose `Origin` is another site are refused too.

use super::upload;
use crate::AppState;
use crate::error::AppError;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use scim_core::audit::{Actor, ActorKind};
use scim_core::operator::{SESSION_TTL, csrf_matches};
use scim_core::{Operator, Timestamp};
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "scimd_console";
pub const LOGIN_CSRF_COOKIE: &str = "scimd_login_csrf";
/// Console forms are small; anything bigger is refused before parsing.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub operator: Operator,
    /// The token every form of this session must send back.
    pub csrf: String,
    /// The client's address (through the trusted-proxy setting), for the audit log.
    pub address: Option<std::net::IpAddr>,
}

impl ConsoleSession {
    /// This operator as the audit log names them.
    pub fn actor(&self) -> Actor {
        actor_of(&self.operator, self.address)
    }
}

/// An operator as the audit log names them, from the client's address.
pub fn actor_of(operator: &Operator, address: Option<std::net::IpAddr>) -> Actor {
    Actor {
        name: operator.username.clone(),
        kind: if operator.role.is_instance() {
            ActorKind::InstanceAdmin
        } else {
            ActorKind::TenantAdmin
        },
        address: address.map(|a| a.to_string()),
    }
}

/// The double-submit cookie of the forms that have no session yet (sign-in, setup links).
pub fn login_csrf_cookie(state: &AppState, headers: &HeaderMap, csrf: String) -> Cookie<'static> {
    cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        time::Duration::hours(1),
        secure(state, headers),
    )
}

/// The value of cookie `name`, if the request carries it (and it is not empty).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether cookies must be `Secure`: the public URL is https, or a proxy terminated TLS.
pub fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A cookie scoped to the console; `max_age` zero removes it.
pub fn cookie(
    name: &'static str,
    value: String,
    max_age: time::Duration,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .secure(secure)
        .build()
}

pub(super) async fn load(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<ConsoleSession>, AppError> {
    let Some(value) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = state
        .services
        .operators
        .session(&value, Timestamp::now())
        .await?;
    Ok(found.map(|(s, operator)| ConsoleSession {
        operator,
        csrf: s.csrf_token,
        address: None,
    }))
}

impl FromRequestParts<Arc<AppState>> for ConsoleSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<ConsoleSession>() {
            return Ok(s.clone());
        }
        match load(state, &parts.headers).await? {
            Some(s) => Ok(s),
            None => Err(AppError::sign_in(
                original_uri(parts)
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
            )),
        }
    }
}

/// The full request URI: inside the nested console router `parts.uri` lacks `/console`.
fn original_uri(parts: &Parts) -> axum::http::Uri {
    parts
        .extensions
        .get::<OriginalUri>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| parts.uri.clone())
}

/// The `csrf` field of a urlencoded form.
fn form_csrf(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
}

/// Whether `Origin` (when sent) is this server.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Refuses any non-GET console request that lacks a matching CSRF token; stores the session
/// in the request for the handler.
pub async fn csrf_guard(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(next.run(req).await);
    }
    if !same_origin(req.headers()) {
        return Err(AppError::new(403, "this form was sent from another site"));
    }
    let (mut parts, body) = req.into_parts();
    // The session first (headers only), so that only a signed-in operator may send a large
    // body: a form with a file is multipart and may be large; any other form is small.
    // The sign-in and setup-link forms have no session yet: a double-submit cookie instead.
    let path = original_uri(&parts).path().to_string();
    let login = path == "/console/login"
        || path == "/console/login/code"
        || path.starts_with("/console/setup/");
    let expected = if login {
        cookie_value(&parts.headers, LOGIN_CSRF_COOKIE)
    } else if let Some(session) = parts.extensions.get::<ConsoleSession>() {
        Some(session.csrf.clone())
    } else {
        match load(&state, &parts.headers).await? {
            Some(session) => {
                let csrf = session.csrf.clone();
                parts.extensions.insert(session);
                Some(csrf)
            }
            None => return Err(AppError::sign_in("/console/")),
        }
    };
    let boundary = upload::boundary(&parts.headers);
    let limit = match &boundary {
        Some(_) if !login => upload::MAX_UPLOAD_BYTES,
        _ => MAX_FORM_BYTES,
    };
    // A few uploads are read at a time (each is held, then parsed): the rest wait their turn
    // on the client's side, told so.
    let _upload = match &boundary {
        Some(_) if !login => Some(state.uploads.try_acquire().map_err(|_| {
            AppError::new(
                503,
                "other uploads are being read right now; send the form again in a few seconds",
            )
            .with_retry_after(3)
        })?),
        _ => None,
    };
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| upload::too_large(limit))?;
    let presented = match &boundary {
        Some(b) => upload::text_field(bytes.clone(), b, "csrf").await?,
        None => form_csrf(&bytes),
    }
    .unwrap_or_default();
    match expected {
        Some(e) if csrf_matches(&e, &presented) => Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await),
        _ => Err(AppError::new(
            403,
            "the form has expired or did not come from this console; reload the page and try again",
        )),
    }
}

/// The session cookie set, the sign-in form's CSRF cookie cleared, on to `next`.
pub fn signed_in(jar: CookieJar, session_value: String, secure: bool, next: &str) -> Response {
    let jar = jar
        .add(cookie(SESSION_COOKIE, session_value, SESSION_TTL, secure))
        .add(cookie(
            LOGIN_CSRF_COOKIE,
            String::new(),
            time::Duration::ZERO,
            secure,
        ));
    (jar, Redirect::to(next)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; scimd_console=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn origin_must_be_this_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn csrf_field_is_read_from_the_form() {
        assert_eq!(form_csrf(b"a=1&csrf=x%2By").as_deref(), Some("x+y"));
        assert_eq!(form_csrf(b"a=1"), None);
    }
}
