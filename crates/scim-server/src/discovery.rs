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
use std::collections::HashMap;
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

pub async fn resource_types(State(state): State<Arc<AppState>>, auth: Auth) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let items: Vec<_> = default_registry()
        .resource_types()
        .iter()
        .map(|r| r.to_json(&base))
        .collect();
    let n = items.len() as u64;
    Ok(scim_json(StatusCode::OK, &ListResponse::page(items, n, 1)))
}

pub async fn resource_type(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let id = p.get("id").cloned().unwrap_or_default();
    let rt = default_registry()
        .resource_type(&id)
        .ok_or_else(|| AppError::new(404, format!("resource type '{id}' not found")))?;
    Ok(scim_json(StatusCode::OK, &rt.to_json(&base)))
}

pub async fn schemas(State(state): State<Arc<AppState>>, auth: Auth) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let items: Vec<_> = default_registry()
        .schemas()
        .iter()
        .map(|s| s.to_json(&base))
        .collect();
    let n = items.len() as u64;
    Ok(scim_json(StatusCode::OK, &ListResponse::page(items, n, 1)))
}

pub async fn schema(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(p): Path<HashMap<String, String>>,
) -> ApiResult<Response> {
    let base = state.base_url(&auth.tenant);
    let id = p.get("id").cloned().unwrap_or_default();
    let s = default_registry()
        .schema(&id)
        .ok_or_else(|| AppError::new(404, format!("schema '{id}' not found")))?;
    Ok(scim_json(StatusCode::OK, &s.to_json(&base)))
}
