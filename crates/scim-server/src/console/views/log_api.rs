//! The admin log API: `GET /console/api/t/{tenant}/events` with the log page's filters
//! (`since`, `until`, `operation` (repeatable), `outcome`, `resource_type`, `resource`,
//! `token`), keyset paging (`before`, `limit` up to 10,000) and `format=json` (default) or
//! `format=csv` (RFC 4180, formula-safe). Signed-in operators only (the console session).
//!
//! JSON answers `{"events": [...], "next": url|null}`; CSV carries the next page in a
//! `Link: <url>; rel="next"` header. Errors are JSON `{"error": "..."}` with a 4xx status.

use super::super::session::ConsoleSession;
use super::super::view;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim_core::CoreError;
use scim_core::event::{Event, EventFilter, to_csv};
use serde_json::{Value, json};
use std::sync::Arc;

/// An error answer of the log API: a status and the text of `{"error": ...}`.
struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

pub async fn events(
    State(state): State<Arc<AppState>>,
    session: Result<ConsoleSession, crate::error::AppError>,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if session.is_err() {
        return ApiError::new(StatusCode::UNAUTHORIZED, "sign in to the console first")
            .into_response();
    }
    answer(&state, &tenant, raw.as_deref())
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The page of events, or the error to answer with.
async fn answer(state: &AppState, tenant: &str, raw: Option<&str>) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = raw
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let format = format_of(&pairs)?;
    let t = match state.services.tenants.get(tenant).await {
        Ok(t) => t,
        Err(CoreError::NotFound(_)) => {
            let what = format!("no tenant '{}'", scim_proto::error::excerpt(tenant));
            return Err(ApiError::new(StatusCode::NOT_FOUND, what));
        }
        Err(e) => return Err(storage_error(e)),
    };
    let filter = EventFilter::from_pairs(pairs)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (q, events) = match state.services.events.read(&t, &filter, 1000).await {
        Ok(r) => r,
        Err(e @ CoreError::Invalid(_)) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, e.to_string()));
        }
        Err(e) => return Err(storage_error(e)),
    };
    // A full page has a next one, before its last event.
    let next = (events.len() == q.limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten()
        .map(|seq| {
            let mut kv = filter.to_pairs();
            kv.push(("format", format.clone()));
            kv.push(("limit", q.limit.to_string()));
            kv.push(("before", seq.to_string()));
            format!(
                "/console/api/t/{}/events?{}",
                t.slug,
                view::query_string(&kv)
            )
        });
    match format.as_str() {
        "csv" => csv_page(&t.slug, &events, next.as_deref()),
        _ => Ok(json_page(&events, next)),
    }
}

fn format_of(pairs: &[(String, String)]) -> Result<String, ApiError> {
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_else(|| "json".into());
    match format.as_str() {
        "json" | "csv" => Ok(format),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "format must be json or csv",
        )),
    }
}

fn csv_page(slug: &str, events: &[Event], next: Option<&str>) -> Result<Response, ApiError> {
    let csv = to_csv(events).map_err(storage_error)?;
    let mut resp = (StatusCode::OK, csv).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let disposition = format!("attachment; filename=\"scimd-{slug}-provisioning-log.csv\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = next
        && let Ok(v) = HeaderValue::from_str(&format!("<{n}>; rel=\"next\""))
    {
        h.insert(header::LINK, v);
    }
    Ok(resp)
}

fn json_page(events: &[Event], next: Option<String>) -> Response {
    let list: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut v = json!(e);
            if let Some(o) = v.as_object_mut() {
                o.remove("tenant_id");
                o.insert("time".into(), Value::String(e.at.rfc3339()));
            }
            v
        })
        .collect();
    axum::Json(json!({"events": list, "next": next})).into_response()
}

fn storage_error(e: CoreError) -> ApiError {
    tracing::error!(error = %e, "console log API failed inside scimd");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "scimd could not read the log; the server log has the details",
    )
}
