//! The role check every console request passes (issue 32), before CSRF and before any
//! handler, so that a handler cannot forget it.
//!
//! [`need_of`] decides from the method and path alone what a request needs; a path it does not
//! know needs an instance admin, so a new page is closed to tenant admins until it is listed
//! here. `scim_core::access::decide` says whether the signed-in operator has it.

use super::session::{ConsoleSession, load};
use crate::AppState;
use crate::client_addr::ClientAddr;
use crate::error::AppError;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use scim_core::access::{Need, Verdict, decide};
use scim_core::second_factor::must_enrol;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a console request needs, from its full path (`/console/…`).
pub fn need_of(method: &Method, path: &str) -> Need {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let Some(rest) = path.strip_prefix("/console") else {
        return Need::Instance;
    };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["login"] | ["login", "code"] => Need::Anyone,
        ["static", _] => Need::Anyone,
        ["setup", _] => Need::Anyone,
        [""] | ["logout"] | ["account"] => Need::SignedIn,
        ["tenants"] if reads => Need::SignedIn,
        // The Apps list shows each the apps of their own tenants (`views/apps::apps`); an
        // app's pages are read by whoever reads one of its tenants, changed by instance
        // admins only.
        ["apps"] if reads => Need::SignedIn,
        // New app; the review before Turn on (it plans a whole cycle: reads the source and
        // the target); mappings and scope, which read the whole source live with the app's
        // credentials (a preview shows any source user, in scope or not, and the source may
        // be a tenant the reader has no grant on).
        ["apps", "new", ..] | ["apps", _, "review" | "mappings" | "scope"] => Need::Instance,
        ["apps", name, ..] if reads && !name.is_empty() => Need::ReadApp((*name).to_string()),
        // Each sees the rows of their own tenants (`AuditService::list`).
        ["audit"] if reads => Need::SignedIn,
        // Setup links and other admins are made and changed by instance admins; so are
        // webhook endpoints: each is a connection scimd makes (and a test event shows what
        // answered), which a customer's admin must not point into the operator's network.
        ["t", _, "admins" | "webhooks"] if !reads => Need::Instance,
        ["t", slug, ..] | ["api", "t", slug, ..] if !slug.is_empty() => {
            let slug = (*slug).to_string();
            if reads {
                Need::Read(slug)
            } else {
                Need::Write(slug)
            }
        }
        _ => Need::Instance,
    }
}

/// The tenants the app `name` reads or writes: none for an app that is not stored, or that
/// cannot be read (its parse error is the instance admins' to see, and a tenant admin gets the
/// same 404 as for an app that does not exist). scimd's own failure is a 500.
async fn app_tenants(state: &AppState, name: &str) -> Result<Vec<String>, AppError> {
    use scim_sync::SyncError;
    match state.apps.get(name).await {
        Ok((spec, _)) => Ok(spec.tenants(&state.config.public_url)),
        Err(e @ (SyncError::Store(_) | SyncError::Internal(_))) => Err(e.into()),
        Err(_) => Ok(Vec::new()),
    }
}

/// The client's address: as resolved through the trusted proxies, else the peer's.
pub fn client_address(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
}

/// Loads the session (once, for the handler too) and refuses what the operator may not do.
pub async fn role_guard(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| req.uri().clone());
    let need = need_of(req.method(), uri.path());
    if need == Need::Anyone {
        return Ok(next.run(req).await);
    }
    let session = load(&state, req.headers()).await?;
    let role = session.as_ref().map(|s| &s.operator.role);
    let app = match &need {
        Need::ReadApp(name) => Some(name.clone()),
        _ => None,
    };
    // A tenant admin reads an app of theirs: looked up for its tenants.
    let need = match &app {
        Some(name) if role.is_some_and(|r| !r.is_instance()) => {
            Need::ReadAny(app_tenants(&state, name).await?)
        }
        _ => need,
    };
    let verdict = decide(role, &need);
    let api = uri.path().starts_with("/console/api/");
    let (status, message): (u16, String) = match verdict {
        Verdict::Allowed => {
            if let Some(mut s) = session {
                // A required second factor comes first: every other page waits for it.
                let op = &s.operator;
                if must_enrol(state.config.require_totp, &op.role, op.has_second_factor())
                    && !matches!(uri.path(), "/console/account" | "/console/logout")
                {
                    if api {
                        let body =
                            json!({ "error": "set up a second factor first (/console/account)" });
                        return Ok((StatusCode::FORBIDDEN, axum::Json(body)).into_response());
                    }
                    return Ok(Redirect::to("/console/account").into_response());
                }
                s.address = client_address(&req);
                req.extensions_mut().insert::<ConsoleSession>(s);
            }
            return Ok(next.run(req).await);
        }
        Verdict::SignIn if api => (401, "sign in to the console first".into()),
        Verdict::SignIn => {
            let back = match *req.method() {
                Method::GET | Method::HEAD => uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                _ => "/console/".into(),
            };
            return Err(AppError::sign_in(back));
        }
        Verdict::NotYours => match &need {
            Need::Read(s) | Need::Write(s) => (
                404,
                format!("there is no tenant '{}'", scim_proto::error::excerpt(s)),
            ),
            // An app of tenants not theirs: as if it did not exist.
            _ => {
                let name = scim_proto::error::excerpt(app.as_deref().unwrap_or_default());
                (404, format!("there is no app '{name}'"))
            }
        },
        Verdict::ReadOnly => (
            403,
            "your access to this tenant is read-only: ask an admin of it to make this change"
                .into(),
        ),
        Verdict::InstanceOnly => (
            403,
            "only an instance admin (who runs this scimd) can open this page or do this".into(),
        ),
    };
    if api {
        // The log API's own error shape.
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
        return Ok((status, axum::Json(json!({ "error": message }))).into_response());
    }
    Err(AppError::new(status, message))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs() {
        let g = Method::GET;
        let p = Method::POST;
        let r = |s: &str| Need::Read(s.into());
        let w = |s: &str| Need::Write(s.into());
        let table = [
            (&g, "/console/login", Need::Anyone),
            (&p, "/console/login", Need::Anyone),
            (&p, "/console/login/code", Need::Anyone),
            (&p, "/console/account", Need::SignedIn),
            (&g, "/console/static/console.css", Need::Anyone),
            (&g, "/console/setup/abc", Need::Anyone),
            (&p, "/console/setup/abc", Need::Anyone),
            (&g, "/console/", Need::SignedIn),
            (&p, "/console/logout", Need::SignedIn),
            (&g, "/console/tenants", Need::SignedIn),
            (&p, "/console/tenants", Need::Instance),
            (&g, "/console/audit", Need::SignedIn),
            (&g, "/console/t/acme", r("acme")),
            (&g, "/console/t/acme/users/42", r("acme")),
            (&p, "/console/t/acme/integration", w("acme")),
            (&g, "/console/t/acme/admins", r("acme")),
            (&p, "/console/t/acme/admins", Need::Instance),
            (&g, "/console/t/acme/webhooks", r("acme")),
            (&p, "/console/t/acme/webhooks", Need::Instance),
            (&g, "/console/api/t/acme/events", r("acme")),
            (&g, "/console/apps", Need::SignedIn),
            (&p, "/console/apps", Need::Instance),
            (&g, "/console/apps/x/log/1", Need::ReadApp("x".into())),
            (&g, "/console/apps/hr.sync", Need::ReadApp("hr.sync".into())),
            (&p, "/console/apps/x", Need::Instance),
            (&p, "/console/apps/x/mappings", Need::Instance),
            (&g, "/console/apps/new", Need::Instance),
            (&p, "/console/apps/new", Need::Instance),
            (&g, "/console/apps/new/template.csv", Need::Instance),
            (&g, "/console/apps/x/review", Need::Instance),
            (&g, "/console/apps/x/mappings", Need::Instance),
            (&g, "/console/apps/x/scope", Need::Instance),
            (&g, "/console/apps/x/settings", Need::ReadApp("x".into())),
            (&g, "/console/apps/", Need::Instance),
            // Unknown, odd and empty paths need the most.
            (&g, "/console/t/", Need::Instance),
            (&g, "/console/t", Need::Instance),
            (&g, "/console/whatever", Need::Instance),
            (&g, "/console/static/a/b", Need::Instance),
            (&g, "/elsewhere", Need::Instance),
        ];
        for (m, path, want) in table {
            assert_eq!(need_of(m, path), want, "{m} {path}");
        }
    }
}
