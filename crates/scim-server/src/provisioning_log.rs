//! Request ids and the Failure events of the provisioning log.
//!
//! [`request_meta`] runs around every SCIM request: it assigns the request id (a sane
//! `X-Request-Id` from the client, or a new UUID), echoes it in the response, and when the
//! response is an error, writes a Failure event for the tenant in the URL, in its own
//! transaction, before the response leaves. Successful changes are logged by the store in the
//! same transaction as the change.

use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use scim_core::token::hash_secret;
use scim_core::{RequestContext, ResourceKind};
use scim_proto::{ErrorBody, ScimError, ScimType};
use std::net::SocketAddr;
use std::sync::Arc;

/// The request id, stored in request extensions for the extractors.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn sane_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// The context of a request as far as the HTTP layer knows it (the token name is added by
/// the `Auth` extractor).
pub fn context_of(extensions: &axum::http::Extensions) -> RequestContext {
    RequestContext {
        token_name: None,
        request_id: extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        client_addr: extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
    }
}

/// `/t/{tenant}/scim/v2/{Users|Groups}[/{id}]` → (tenant, kind, id).
fn route_parts(path: &str) -> (Option<String>, Option<ResourceKind>, Option<String>) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let tenant = (segs.first() == Some(&"t"))
        .then(|| segs.get(1).map(|s| s.to_string()))
        .flatten();
    let kind = match segs.get(4) {
        Some(&"Users") => Some(ResourceKind::User),
        Some(&"Groups") => Some(ResourceKind::Group),
        _ => None,
    };
    let id = segs
        .get(5)
        .filter(|s| !s.is_empty() && **s != ".search")
        .map(|s| s.to_string());
    (tenant, kind, id)
}

pub async fn request_meta(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut ctx = context_of(req.extensions());
    // Inside the nested router the URI has lost its `/t/{tenant}/scim/v2` prefix.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.path().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let token_hash = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, secret)| hash_secret(secret.trim()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if resp.status().as_u16() < 400 || !state.service.log_events {
        return resp;
    }
    let (tenant_slug, kind, resource_id) = route_parts(&path);
    let Some(slug) = tenant_slug else { return resp };
    let Ok(Some(tenant)) = state.auth_cache.tenant(&state, &slug).await else {
        return resp;
    };
    if let Some(hash) = token_hash
        && let Ok(Some(t)) = state.auth_cache.token(&state, &hash).await
        && t.tenant_id == tenant.id
    {
        ctx.token_name = Some(t.name);
    }
    // Error bodies are small: read, log, and put the same bytes back.
    let (parts, body) = resp.into_parts();
    // Our own error bodies are small (client input is quoted in excerpts), but never drop one.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    let status = parts.status.as_u16();
    let error = serde_json::from_slice::<ErrorBody>(&bytes)
        .ok()
        .map(|b| ScimError {
            status,
            scim_type: b.scim_type,
            detail: b.detail.unwrap_or_default(),
        })
        .unwrap_or_else(|| ScimError::new(status, None::<ScimType>, "request failed"));
    state
        .service
        .log_failure(&tenant, kind, resource_id.as_deref(), &error, &ctx)
        .await;
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_ids() {
        assert_eq!(
            route_parts("/t/acme/scim/v2/Users/abc"),
            (
                Some("acme".into()),
                Some(ResourceKind::User),
                Some("abc".into())
            )
        );
        assert_eq!(
            route_parts("/t/acme/scim/v2/Groups/.search"),
            (Some("acme".into()), Some(ResourceKind::Group), None)
        );
        assert_eq!(
            route_parts("/t/acme/scim/v2/Bulk"),
            (Some("acme".into()), None, None)
        );
        assert_eq!(route_parts("/x"), (None, None, None));
        assert!(sane_request_id("abc-123"));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id(&"x".repeat(65)));
    }
}
