//! Console sign-in state: the session cookie, the extractor that requires it, and the guard
//! that checks every state-changing request.
//!
//! - The session cookie is `HttpOnly; SameSite=Strict; Path=/console`, plus `Secure` when
//!   scimd's public URL is https (or a proxy says `X-Forwarded-Proto: https`).
//! - CSRF: every form carries the session's token in a hidden `csrf` field (synchronizer
//!   token pattern); the guard compares it for every non-GET request before any handler runs,
//!   so a handler cannot forget. The sign-in form, which has no session yet, uses a
//!   double-submit cookie instead. Requests whose `Origin` is another site are refused too.

use super::ConsoleError;
use crate::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scim_core::operator::csrf_matches;
use scim_core::{Operator, OperatorService, now_micros};
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
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
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

/// A `Set-Cookie` value scoped to the console.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let s = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn load(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<ConsoleSession>, ConsoleError> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = OperatorService::new(state.store.as_ref())
        .session(&value, now_micros())
        .await?;
    Ok(found.map(|(s, operator)| ConsoleSession {
        operator,
        csrf: s.csrf_token,
    }))
}

impl FromRequestParts<Arc<AppState>> for ConsoleSession {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<ConsoleSession>() {
            return Ok(s.clone());
        }
        match load(state, &parts.headers).await? {
            Some(s) => Ok(s),
            None => Err(ConsoleError::SignIn {
                next: original_uri(parts)
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
            }),
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
) -> Result<Response, ConsoleError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(next.run(req).await);
    }
    if !same_origin(req.headers()) {
        return Err(ConsoleError::Forbidden(
            "this form was sent from another site".into(),
        ));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| ConsoleError::BadRequest("the form is too large".into()))?;
    let presented = form_csrf(&bytes).unwrap_or_default();
    let expected = if original_uri(&parts).path() == "/console/login" {
        cookie(&parts.headers, LOGIN_CSRF_COOKIE)
    } else {
        match load(&state, &parts.headers).await? {
            Some(session) => {
                let csrf = session.csrf.clone();
                parts.extensions.insert(session);
                Some(csrf)
            }
            None => {
                return Err(ConsoleError::SignIn {
                    next: "/console/".into(),
                });
            }
        }
    };
    match expected {
        Some(e) if csrf_matches(&e, &presented) => Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await),
        _ => Err(ConsoleError::Forbidden(
            "the form has expired or did not come from this console; reload the page and try again"
                .into(),
        )),
    }
}

/// Security headers on every console response: no framing, no referrer to other sites
/// (`same-origin`: with `no-referrer` browsers send `Origin: null` on our own forms), no
/// inline script,
/// no caching (pages may show a token secret once).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; scimd_console=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
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
