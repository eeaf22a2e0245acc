//! The middleware around every SCIM request ([`scim_context`]): it reads the decoded route
//! parameters, authenticates the bearer token ([`crate::auth`]) and hands the [`Auth`] to the
//! handler through the request's extensions; when an authenticated request's answer is an
//! error, it writes a Failure event to the tenant's provisioning log, in its own transaction,
//! before the response leaves (requests that fail authentication are not logged for the
//! tenant in their URL: anyone could write there). The error comes from the response's extensions ([`AppError`]), never from
//! re-parsing the body; successful changes are logged by the store in the same transaction
//! as the change.
//!
//! Request ids come from tower-http (`x-request-id`, see [`crate::app`]): a sane id sent by
//! the client is kept, anything else is replaced by a UUID.

use crate::AppState;
use crate::auth::{Auth, authenticate};
use crate::error::AppError;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scim_core::{RequestContext, ResourceKind};
use scim_proto::ScimError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Whether a client's `X-Request-Id` is kept: 1–64 of `A-Z a-z 0-9 - _ . :`.
pub fn sane_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// The context of a request as far as the HTTP layer knows it (the token name is added when
/// the token is checked).
pub fn context_of(extensions: &axum::http::Extensions) -> RequestContext {
    RequestContext {
        token_name: None,
        request_id: extensions
            .get::<tower_http::request_id::RequestId>()
            .and_then(|r| r.header_value().to_str().ok())
            .unwrap_or_default()
            .to_string(),
        client_addr: extensions
            .get::<crate::client_addr::ClientAddr>()
            .map(|c| c.0)
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            })
            .map(|ip| ip.to_string()),
    }
}

/// The resource type a SCIM route pattern serves (`/t/{tenant}/scim/v2/Users/{id}` → User).
fn kind_of(pattern: &str) -> Option<ResourceKind> {
    let rest = pattern.split("/scim/v2/").nth(1)?;
    ResourceKind::from_endpoint(rest.split('/').next()?)
}

pub async fn scim_context(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    // Decoded parameters: `/t/%64efault/…` names the tenant `default`, for auth and the log.
    let params = match Path::<HashMap<String, String>>::from_request_parts(&mut parts, &state).await
    {
        Ok(Path(p)) => p,
        Err(_) => HashMap::new(),
    };
    let slug = params.get("tenant").cloned().unwrap_or_default();
    let id = params
        .get("id")
        .filter(|s| !s.is_empty() && s.as_str() != ".search")
        .cloned();
    let kind = parts
        .extensions
        .get::<MatchedPath>()
        .and_then(|m| kind_of(m.as_str()));
    let ctx = context_of(&parts.extensions);
    let method = parts.method.clone();
    let auth = authenticate(&state, &parts.headers, &slug, ctx).await;
    let resp = match &auth {
        Ok(a) => {
            parts.extensions.insert(a.clone());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => {
            if e.error.status == 401 {
                // Counted here instead of the tenant's log (anyone can send these).
                metrics::counter!("scimd_unauthenticated_requests_total").increment(1);
            }
            e.clone().into_response()
        }
    };
    let failure = resp.extensions().get::<AppError>().map(|e| e.error.clone());
    if let (Ok(a), Some(error)) = (&auth, failure) {
        log_failure(&state, a, (kind, id.as_deref()), method.as_str(), &error).await;
    }
    resp
}

/// Writes a failed request to the tenant's log. Only authenticated requests are logged
/// there: anyone can send a request with a bad token to any tenant URL, and that must not
/// fill the tenant's log.
async fn log_failure(
    state: &AppState,
    auth: &Auth,
    (kind, id): (Option<ResourceKind>, Option<&str>),
    method: &str,
    error: &ScimError,
) {
    if state.resources.log_events {
        let r = &state.resources;
        r.log_failure(&auth.tenant, kind, id, error, &auth.ctx, Some(method))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_and_route_kinds() {
        assert!(sane_request_id(&HeaderValue::from_static("abc-123")));
        assert!(!sane_request_id(&HeaderValue::from_static("a b")));
        assert!(!sane_request_id(
            &HeaderValue::from_str(&"x".repeat(65)).unwrap()
        ));
        assert_eq!(
            kind_of("/t/{tenant}/scim/v2/Users/{id}"),
            Some(ResourceKind::User)
        );
        assert_eq!(
            kind_of("/t/{tenant}/scim/v2/Groups/.search"),
            Some(ResourceKind::Group)
        );
        assert_eq!(kind_of("/t/{tenant}/scim/v2/Bulk"), None);
    }
}
