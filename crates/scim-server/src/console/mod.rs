//! # The operator web console
//!
//! Server-rendered HTML (askama templates under `templates/console/`) served by scimd itself
//! under `/console/`: sign-in, tenants, each tenant's SCIM integration (base URL and tokens),
//! Users and Groups browsers, and the provisioning log with its counts and chart, plus the
//! admin log API under `/console/api/` (JSON and CSV).
//!
//! Every page works without JavaScript; htmx (vendored in `assets/`, no CDN) only swaps page
//! bodies and runs searches as the operator types, and `console.js` adds the copy buttons. The
//! Content-Security-Policy forbids inline script and style, so nothing here uses either.

mod log_api;
mod pages;
pub mod session;
mod view;

use crate::AppState;
use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use scim_core::CoreError;
use std::sync::Arc;

/// Why a console request failed; rendered as an HTML page (or a redirect to sign in).
#[derive(Debug)]
pub enum ConsoleError {
    /// No valid session: go to the sign-in page, then back to `next`.
    SignIn {
        next: String,
    },
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    Internal,
}

impl From<CoreError> for ConsoleError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(m) => ConsoleError::BadRequest(m),
            CoreError::NotFound(m) => ConsoleError::NotFound(format!("{m} not found")),
            CoreError::Scim(s) if s.status == 404 => ConsoleError::NotFound(s.detail),
            CoreError::Scim(s) if s.status < 500 => ConsoleError::BadRequest(s.detail),
            other => {
                tracing::error!(error = %other, "console request failed");
                ConsoleError::Internal
            }
        }
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "console template failed");
        ConsoleError::Internal
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::SignIn { next } => {
                let safe = view::safe_next(&next);
                let target = format!(
                    "/console/login?next={}",
                    view::url_encode(safe.as_deref().unwrap_or("/console/"))
                );
                return Redirect::to(&target).into_response();
            }
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            ConsoleError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "scimd could not complete this request; the server log has the details.".into(),
            ),
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        let body = page.render().unwrap_or_else(|_| page.message.clone());
        (status, view::html_headers(), body).into_response()
    }
}

/// `/console/`: the tenants page, or sign-in first.
pub async fn home(s: Result<session::ConsoleSession, ConsoleError>) -> Response {
    match s {
        Ok(_) => Redirect::to("/console/tenants").into_response(),
        Err(e) => e.into_response(),
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

const HTMX: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
const CONSOLE_JS: &[u8] = include_bytes!("../../assets/console.js");
const CONSOLE_CSS: &[u8] = include_bytes!("../../assets/console.css");

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The console's routes, mounted at `/console`.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", get(home).post(pages::logout))
        .route("/tenants", get(pages::tenants).post(pages::create_tenant))
        .route("/t/{tenant}", get(pages::tenant_home))
        .route(
            "/t/{tenant}/integration",
            get(pages::integration).post(pages::integration_action),
        )
        .route("/t/{tenant}/users", get(pages::users))
        .route("/t/{tenant}/users/{id}", get(pages::user))
        .route("/t/{tenant}/groups", get(pages::groups))
        .route("/t/{tenant}/groups/{id}", get(pages::group))
        .route("/t/{tenant}/log", get(pages::log))
        .route("/api/t/{tenant}/events", get(log_api::events))
        .route(
            "/static/htmx-2.0.11.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .route(
            "/static/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }),
        )
        .route(
            "/static/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .fallback(|| async { ConsoleError::NotFound("there is no such console page".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(session::security_headers))
}
