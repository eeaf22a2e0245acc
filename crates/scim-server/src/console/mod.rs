//! # The operator web console
//!
//! Server-rendered HTML (askama templates under `templates/console/`) served by scimd itself
//! under `/console/`: sign-in, tenants, each tenant's SCIM integration (base URL and tokens),
//! Users and Groups browsers, the provisioning log with its counts and chart, the
//! provisioning engine's Apps (outbound jobs, `views/apps.rs`), plus the admin log API under
//! `/console/api/` (JSON and CSV).
//!
//! Every page works without JavaScript; htmx (vendored in `assets/`, no CDN) only swaps page
//! bodies and runs searches as the operator types, and `console.js` adds the copy buttons. The
//! Content-Security-Policy forbids inline script and style, so nothing here uses either.

pub mod devices;
pub mod guard;
pub mod session;
pub mod throttle;
pub mod upload;
mod view;
mod views;

use crate::AppState;
use crate::error::AppError;
use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;
use views::{
    admins, apps, audit, directory, guide, integration, log, log_api, login, second_factor, setup,
    tenants, webhooks,
};

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

/// Re-renders an [`AppError`] answer as the console's HTML error page, or as a redirect to
/// the sign-in page when the operator must sign in first.
pub async fn html_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let Some(err) = resp.extensions().get::<AppError>().cloned() else {
        return resp;
    };
    if let Some(next) = &err.sign_in {
        let safe = view::safe_next(next);
        let target = format!(
            "/console/login?next={}",
            view::url_encode(safe.as_deref().unwrap_or("/console/"))
        );
        return Redirect::to(&target).into_response();
    }
    let status = err.status();
    let (title, message) = match status {
        StatusCode::BAD_REQUEST => ("Bad request", err.error.detail.clone()),
        StatusCode::FORBIDDEN => ("Forbidden", err.error.detail.clone()),
        StatusCode::NOT_FOUND => ("Not found", err.error.detail.clone()),
        s if s.is_server_error() => (
            "Something went wrong",
            "scimd could not complete this request; the server log has the details.".into(),
        ),
        _ => ("Request refused", err.error.detail.clone()),
    };
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        message,
    };
    let mut resp = match page.render() {
        Ok(body) => (status, view::html_headers(), body).into_response(),
        // The error page itself failed to render: say so in plain text, with the status.
        Err(e) => {
            tracing::error!(error = %e, "console error page failed to render");
            (status, page.message).into_response()
        }
    };
    // Kept, so that the outer layer logs an internal failure once.
    resp.extensions_mut().insert(err);
    resp
}

/// `/console/`: the tenants page, or sign-in first.
pub async fn home(s: Result<session::ConsoleSession, AppError>) -> Response {
    match s {
        Ok(_) => Redirect::to("/console/tenants").into_response(),
        Err(e) => e.into_response(),
    }
}

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

/// The console's routes, mounted at `/console`. Every response carries the security
/// headers: no framing, no referrer to other sites (`same-origin`: with `no-referrer`
/// browsers send `Origin: null` on our own forms), no inline script, no caching (pages may
/// show a token secret once).
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let header =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::login_form).post(login::login))
        .route("/login/code", post(second_factor::login_code))
        .route(
            "/account",
            get(second_factor::account).post(second_factor::account_action),
        )
        .route("/logout", get(home).post(login::logout))
        .route(
            "/tenants",
            get(tenants::tenants).post(tenants::create_tenant),
        )
        .route("/setup/{secret}", get(setup::setup_form).post(setup::setup))
        .route("/t/{tenant}", get(tenants::tenant_home))
        .route(
            "/t/{tenant}/setup",
            get(guide::guide).post(guide::guide_action),
        )
        .route("/t/{tenant}/setup/status", get(guide::guide_status))
        .route(
            "/t/{tenant}/admins",
            get(admins::admins).post(admins::admins_action),
        )
        .route(
            "/t/{tenant}/integration",
            get(integration::integration).post(integration::integration_action),
        )
        .route(
            "/t/{tenant}/webhooks",
            get(webhooks::webhooks).post(webhooks::webhooks_action),
        )
        .route("/t/{tenant}/users", get(directory::users))
        .route("/t/{tenant}/users/{id}", get(directory::user))
        .route("/t/{tenant}/groups", get(directory::groups))
        .route("/t/{tenant}/groups/{id}", get(directory::group))
        .route("/t/{tenant}/log", get(log::log))
        .route("/api/t/{tenant}/events", get(log_api::events))
        .route("/audit", get(audit::audit))
        .route("/apps", get(apps::apps))
        .route("/apps/new", get(apps::new_app_form).post(apps::new_app))
        .route("/apps/new/template.csv", get(apps::source_template))
        .route("/apps/{name}", get(apps::app).post(apps::app_action))
        .route("/apps/{name}/log", get(apps::app_log))
        .route(
            "/apps/{name}/scope",
            get(apps::app_scope).post(apps::app_scope_edit),
        )
        .route("/apps/{name}/review", get(apps::app_review))
        .route(
            "/apps/{name}/settings",
            get(apps::app_settings).post(apps::app_settings_edit),
        )
        .route(
            "/apps/{name}/mappings",
            get(apps::app_mappings).post(apps::app_mappings_edit),
        )
        .route("/apps/{name}/log/{seq}", get(apps::app_log_row))
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
        .fallback(|| async { AppError::new(404, "there is no such console page") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            guard::role_guard,
        ))
        .layer(axum::middleware::from_fn(html_errors))
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
