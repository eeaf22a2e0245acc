//! SCIM resource endpoints (RFC 7644 §3.1–§3.6): thin handlers that parse, call the
//! resource service and shape the response.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, AppError, SCIM_JSON};
use crate::request::{ScimBody, ScimQuery, search_request};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim_core::{Endpoint, ResourceKind, StoredResource, wants_related};
use scim_proto::etag::EntityTags;
use scim_proto::schema::standard_view;
use scim_proto::wire::ListResponse;
use scim_proto::{Projection, SearchRequest};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

pub fn endpoint(kind: ResourceKind) -> Endpoint {
    match kind {
        ResourceKind::User => Endpoint::Users,
        ResourceKind::Group => Endpoint::Groups,
    }
}

/// A JSON response with `Content-Type: application/scim+json`.
pub fn scim_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            return AppError::internal(format!("response serialisation: {e}")).into_response();
        }
    };
    let mut resp = (status, bytes).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set_etag(resp: &mut Response, r: &StoredResource) {
    if let Ok(v) = HeaderValue::from_str(&r.etag()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
}

fn id_of(params: &HashMap<String, String>) -> String {
    params.get("id").cloned().unwrap_or_default()
}

/// Renders one resource with a projection.
pub async fn render_one(
    state: &AppState,
    auth: &Auth,
    r: &StoredResource,
    projection: &Projection,
) -> ApiResult<serde_json::Value> {
    let base = state.base_url(&auth.tenant);
    let mut out = state
        .resources
        .render(&auth.tenant, std::slice::from_ref(r), &base, projection)
        .await?;
    out.pop()
        .ok_or_else(|| AppError::internal("rendering one resource produced nothing"))
}

fn resource_response(
    status: StatusCode,
    r: &StoredResource,
    body: &serde_json::Value,
    location: Option<String>,
) -> Response {
    let mut resp = scim_json(status, body);
    set_etag(&mut resp, r);
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

pub async fn list_response(
    state: &AppState,
    auth: &Auth,
    kind: ResourceKind,
    req: &SearchRequest,
) -> ApiResult<Response> {
    let projection = req.projection()?;
    let result = state.resources.list(&auth.tenant, kind, req).await?;
    let base = state.base_url(&auth.tenant);
    let resources = state
        .resources
        .render(&auth.tenant, &result.resources, &base, &projection)
        .await?;
    let start = req.start_index.unwrap_or(1).max(1) as u64;
    let mut lr = ListResponse::page(resources, result.total, start);
    if req.cursor.is_some() {
        lr.start_index = None;
        lr.next_cursor = result.next_cursor.map(|c| c.to_string());
    }
    Ok(scim_json(StatusCode::OK, &lr))
}

pub async fn list(
    kind: ResourceKind,
    state: Arc<AppState>,
    auth: Auth,
    q: ScimQuery,
) -> ApiResult<Response> {
    auth.require(endpoint(kind), false)?;
    list_response(&state, &auth, kind, &q.search_request()?).await
}

pub async fn search(
    kind: ResourceKind,
    state: Arc<AppState>,
    auth: Auth,
    body: ScimBody,
) -> ApiResult<Response> {
    auth.require(endpoint(kind), false)?;
    list_response(&state, &auth, kind, &search_request(body.0)?).await
}

pub async fn create(
    kind: ResourceKind,
    state: Arc<AppState>,
    auth: Auth,
    q: ScimQuery,
    body: ScimBody,
) -> ApiResult<Response> {
    auth.require(endpoint(kind), true)?;
    let projection = q.projection()?;
    let r = state
        .resources
        .create(&auth.tenant, kind, body.0, &auth.ctx)
        .await?;
    let out = render_one(&state, &auth, &r, &projection).await?;
    let location = format!(
        "{}/{}/{}",
        state.base_url(&auth.tenant),
        kind.endpoint(),
        r.id
    );
    Ok(resource_response(
        StatusCode::CREATED,
        &r,
        &out,
        Some(location),
    ))
}

pub async fn get(
    kind: ResourceKind,
    state: Arc<AppState>,
    auth: Auth,
    params: HashMap<String, String>,
    q: ScimQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth.require(endpoint(kind), false)?;
    let projection = q.projection()?;
    let related = wants_related(kind, &projection);
    let r = state
        .resources
        .get(&auth.tenant, kind, &id_of(&params), related)
        .await?;
    if header_str(&headers, header::IF_NONE_MATCH)
        .is_some_and(|inm| EntityTags::parse(inm).matches(r.version))
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        set_etag(&mut resp, &r);
        return Ok(resp);
    }
    let out = render_one(&state, &auth, &r, &projection).await?;
    Ok(resource_response(StatusCode::OK, &r, &out, None))
}

/// PUT (RFC 7644 §3.5.1) or PATCH (§3.5.2) of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Replace,
    Patch,
}

// The route's two constants, then one argument per axum extractor.
#[allow(clippy::too_many_arguments)]
pub async fn change(
    how: Change,
    kind: ResourceKind,
    state: Arc<AppState>,
    auth: Auth,
    params: HashMap<String, String>,
    q: ScimQuery,
    headers: HeaderMap,
    body: ScimBody,
) -> ApiResult<Response> {
    auth.require(endpoint(kind), true)?;
    let projection = q.projection()?;
    let id = id_of(&params);
    let if_match = header_str(&headers, header::IF_MATCH);
    let svc = &state.resources;
    let (tenant, ctx) = (&auth.tenant, &auth.ctx);
    let r = match how {
        Change::Replace => {
            svc.replace(tenant, kind, &id, body.0, if_match, ctx)
                .await?
        }
        Change::Patch => svc.patch(tenant, kind, &id, &body.0, if_match, ctx).await?,
    };
    let group_patch = how == Change::Patch && kind == ResourceKind::Group;
    // A group PATCH answers 204 (Entra's guidance: never send the member list back,
    // docs/interop.md §4.5; RFC 7644 §3.5.2 allows it) unless the client asked for the
    // resource: attributes in the query, or `Prefer: return=representation` (RFC 7240 §4.2).
    let prefers = prefers_representation(&headers);
    let wants_body =
        prefers || q.get("attributes").is_some() || q.get("excludedAttributes").is_some();
    if group_patch && !wants_body {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        set_etag(&mut resp, &r);
        return Ok(resp);
    }
    // A PATCH result carries no members; read them when the answer shows them.
    let r = match group_patch && projection.includes(&standard_view(kind), "members") {
        true => svc.get(tenant, kind, &id, true).await?,
        false => r,
    };
    let out = render_one(&state, &auth, &r, &projection).await?;
    let mut resp = resource_response(StatusCode::OK, &r, &out, None);
    if prefers {
        resp.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("return=representation"),
        );
    }
    Ok(resp)
}

/// Whether the client sent `Prefer: return=representation` (RFC 7240 §4.2).
fn prefers_representation(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
}

pub async fn delete(
    kind: ResourceKind,
    state: Arc<AppState>,
    auth: Auth,
    params: HashMap<String, String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth.require(endpoint(kind), true)?;
    state
        .resources
        .delete(
            &auth.tenant,
            kind,
            &id_of(&params),
            header_str(&headers, header::IF_MATCH),
            &auth.ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /.search` (RFC 7644 §3.4.3) across Users and Groups: users first, then groups, in
/// creation order. A filter applies to the types whose schema has its attributes; one that
/// fits neither is `400 invalidFilter`. Sorting and cursors are per resource type, so the
/// root search refuses `sortBy` and `cursor` with a clear error instead of mis-ordering.
pub async fn root_search(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    body: ScimBody,
) -> ApiResult<Response> {
    let req = search_request(body.0)?;
    let projection = req.projection()?;
    let kinds: Vec<ResourceKind> = [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .filter(|k| auth.token.scopes.allows(endpoint(*k), false))
        .collect();
    let (found, total) = state
        .resources
        .search_across(&auth.tenant, &kinds, &req)
        .await?;
    let base = state.base_url(&auth.tenant);
    let resources = state
        .resources
        .render(&auth.tenant, &found, &base, &projection)
        .await?;
    let start = req.start_index.unwrap_or(1).max(1) as u64;
    Ok(scim_json(
        StatusCode::OK,
        &ListResponse::page(resources, total, start),
    ))
}

/// Builds the routes of one resource type.
pub fn routes(kind: ResourceKind) -> axum::Router<Arc<AppState>> {
    use axum::routing::{get as g, post as p};
    axum::Router::new()
        .route(
            "/",
            g(move |State(s): State<Arc<AppState>>, a: Auth, q: ScimQuery| list(kind, s, a, q))
                .post(
                    move |State(s): State<Arc<AppState>>, a: Auth, q: ScimQuery, b: ScimBody| {
                        create(kind, s, a, q, b)
                    },
                ),
        )
        .route(
            "/.search",
            p(move |State(s): State<Arc<AppState>>, a: Auth, b: ScimBody| search(kind, s, a, b)),
        )
        .route(
            "/{id}",
            g(
                move |State(s): State<Arc<AppState>>,
                      a: Auth,
                      Path(p): Path<HashMap<String, String>>,
                      q: ScimQuery,
                      h: HeaderMap| { get(kind, s, a, p, q, h) },
            )
            .put(
                move |State(s): State<Arc<AppState>>,
                      a: Auth,
                      Path(p): Path<HashMap<String, String>>,
                      q: ScimQuery,
                      h: HeaderMap,
                      b: ScimBody| {
                    change(Change::Replace, kind, s, a, p, q, h, b)
                },
            )
            .patch(
                move |State(s): State<Arc<AppState>>,
                      a: Auth,
                      Path(p): Path<HashMap<String, String>>,
                      q: ScimQuery,
                      h: HeaderMap,
                      b: ScimBody| {
                    change(Change::Patch, kind, s, a, p, q, h, b)
                },
            )
            .delete(
                move |State(s): State<Arc<AppState>>,
                      a: Auth,
                      Path(p): Path<HashMap<String, String>>,
                      h: HeaderMap| { delete(kind, s, a, p, h) },
            ),
        )
}
