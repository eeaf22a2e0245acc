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
use scim_core::event::{EventFilter, to_csv};
use serde_json::{Value, json};
use std::sync::Arc;

fn api_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

pub async fn events(
    State(state): State<Arc<AppState>>,
    session: Result<ConsoleSession, crate::error::AppError>,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if session.is_err() {
        return api_error(StatusCode::UNAUTHORIZED, "sign in to the console first");
    }
    let pairs: Vec<(String, String)> = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return api_error(StatusCode::BAD_REQUEST, "format must be json or csv");
    }
    let t = match state.services.tenants.get(&tenant).await {
        Ok(t) => t,
        Err(CoreError::NotFound(_)) => {
            return api_error(
                StatusCode::NOT_FOUND,
                format!("no tenant '{}'", scim_proto::error::excerpt(&tenant)),
            );
        }
        Err(e) => return storage_error(e),
    };
    let filter = match EventFilter::from_pairs(pairs) {
        Ok(f) => f,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (q, events) = match state.services.events.read(&t, &filter, 1000).await {
        Ok(r) => r,
        Err(e @ CoreError::Invalid(_)) => return api_error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return storage_error(e),
    };
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
    if format == "csv" {
        let csv = match to_csv(&events) {
            Ok(c) => c,
            Err(e) => return storage_error(e),
        };
        let mut resp = (StatusCode::OK, csv).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"scimd-{}-provisioning-log.csv\"",
            t.slug
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        if let Some(n) = next.as_deref()
            && let Ok(v) = HeaderValue::from_str(&format!("<{n}>; rel=\"next\""))
        {
            h.insert(header::LINK, v);
        }
        return resp;
    }
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

fn storage_error(e: CoreError) -> Response {
    tracing::error!(error = %e, "console log API failed inside scimd");
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "scimd could not read the log; the server log has the details",
    )
}
