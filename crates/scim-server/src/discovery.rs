//! Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas.
//! They require a valid token of the tenant (any scope), like every other route.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, AppError};
use crate::scim::scim_json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use scim_proto::schema::standard_registry as default_registry;
use scim_proto::wire::ListResponse;
use std::sync::Arc;

pub async fn service_provider_config(
    State(state): State<Arc<AppState>>,
    auth: Auth,
) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    Ok(scim_json(
        StatusCode::OK,
        &state.service_provider_config().to_json(&base),
    ))
}

/// A ListResponse of every discovery document of one kind.
fn all(docs: Vec<serde_json::Value>) -> Response {
    let n = docs.len() as u64;
    scim_json(StatusCode::OK, &ListResponse::page(docs, n, 1))
}

/// One discovery document by id, or a 404 naming what was asked for.
fn one(doc: Option<serde_json::Value>, what: &str, id: &str) -> ApiResult<Response> {
    let doc = doc.ok_or_else(|| {
        AppError::new(
            404,
            format!("{what} '{}' not found", scim_proto::error::excerpt(id)),
        )
    })?;
    Ok(scim_json(StatusCode::OK, &doc))
}

pub async fn resource_types(State(state): State<Arc<AppState>>, auth: Auth) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let r = default_registry().resource_types();
    Ok(all(r.iter().map(|r| r.to_json(&base)).collect()))
}

pub async fn resource_type(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path((_tenant, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let doc = default_registry()
        .resource_type(&id)
        .map(|r| r.to_json(&base));
    one(doc, "resource type", &id)
}

pub async fn schemas(State(state): State<Arc<AppState>>, auth: Auth) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let s = default_registry().schemas();
    Ok(all(s.iter().map(|s| s.to_json(&base)).collect()))
}

pub async fn schema(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path((_tenant, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let doc = default_registry().schema(&id).map(|s| s.to_json(&base));
    one(doc, "schema", &id)
}
