//! The events API (docs/events.md): `GET /t/{tenant}/events?after=N&limit=N&types=…&wait=30s`
//! with a token that has the `events:r` scope. Thin: the change feed service does the work.

use crate::AppState;
use crate::auth::authenticate;
use crate::context::context_of;
use crate::error::{ApiResult, AppError};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use scim_core::change::TypeFilter;
use scim_core::service::{FeedCursor, MAX_PAGE};
use scim_core::{CoreError, Endpoint};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The longest long poll asked for is cut to this (and to the request time limit).
const MAX_WAIT: Duration = Duration::from_secs(60);
const DEFAULT_LIMIT: u32 = 100;

/// `wait`: seconds (`30`) or a duration (`30s`, `1m`).
fn parse_wait(s: &str) -> Result<Duration, CoreError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Duration::ZERO);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let d = scim_core::clock::parse_duration(s).map_err(|_| {
        CoreError::Invalid(format!(
            "wait must be seconds or a duration such as 30s, not '{}'",
            scim_proto::error::excerpt(s)
        ))
    })?;
    Ok(Duration::try_from(d).unwrap_or(MAX_WAIT))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let ctx = context_of(req.extensions());
    let auth = authenticate(&state, req.headers(), &slug, ctx).await?;
    auth.require(Endpoint::Events, false)?;
    if !state.resources.log_events {
        return Err(AppError::new(
            404,
            "the change feed is off on this server (provisioning_log = false)",
        ));
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let cursor = FeedCursor::parse(get("after"))?;
    // Out of range is refused, as documented, rather than quietly clamped.
    let limit = match get("limit").trim() {
        "" => DEFAULT_LIMIT,
        l => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                CoreError::Invalid(format!("limit must be a number from 1 to {MAX_PAGE}"))
            })?,
    };
    let types = TypeFilter::parse(get("types")).map_err(CoreError::Invalid)?;
    let ceiling = state
        .config
        .request_timeout
        .saturating_sub(Duration::from_secs(2))
        .min(MAX_WAIT);
    let wait = parse_wait(get("wait"))?.min(ceiling);
    // A long poll holds a connection: a few per token and per tenant at once.
    let _place = match wait.is_zero() {
        true => None,
        false => Some(state.long_polls.enter(auth.tenant.id, &auth.token)?),
    };
    let base = state.base_url(&auth.tenant);
    let page = state
        .services
        .changes
        .page(&auth.tenant, cursor, limit, &types, wait, &base)
        .await?;
    Ok(Json(json!({
        "data": page.events,
        "next_after": page.next,
        "has_more": page.has_more,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits() {
        assert_eq!(parse_wait("").unwrap(), Duration::ZERO);
        assert_eq!(parse_wait("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_wait("soon").is_err());
    }
}
