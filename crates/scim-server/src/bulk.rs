//! Bulk (RFC 7644 §3.7): operations run in order, each in its own transaction; `bulkId`
//! references (`"bulkId:qwerty"` anywhere in a later operation's path or data) resolve to the
//! ids created earlier in the request; `failOnErrors` stops after that many failures; the
//! advertised `maxOperations` and `maxPayloadSize` are enforced with 413.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::request::ScimBody;
use crate::scim::{endpoint, scim_json};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::{Endpoint, ResourceKind};
use scim_proto::ScimError;
use scim_proto::wire::{BulkOperation, BulkOperationResult, BulkRequest, BulkResponse};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Replaces every string `bulkId:<id>` with the id created for it; errors on unknown ones.
fn resolve(v: &mut Value, ids: &HashMap<String, String>) -> Result<(), ScimError> {
    match v {
        Value::String(s) => {
            if let Some(b) = s.strip_prefix("bulkId:") {
                let id = ids.get(b).ok_or_else(|| {
                    ScimError::new(
                        409,
                        Some(scim_proto::ScimType::InvalidValue),
                        format!("bulkId '{b}' does not name an earlier successful POST"),
                    )
                })?;
                *s = id.clone();
            }
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| resolve(x, ids)),
        Value::Object(o) => o.values_mut().try_for_each(|x| resolve(x, ids)),
        _ => Ok(()),
    }
}

fn resolve_path(path: &str, ids: &HashMap<String, String>) -> Result<String, ScimError> {
    let mut v = Value::String(path.rsplit('/').next().unwrap_or("").to_string());
    resolve(&mut v, ids)?;
    let last = v.as_str().unwrap_or_default();
    Ok(match path.rsplit_once('/') {
        Some((head, _)) => format!("{head}/{last}"),
        None => last.to_string(),
    })
}

/// `/Users`, `/Users/{id}`, `/Groups`, `/Groups/{id}`.
fn parse_path(path: &str) -> Result<(ResourceKind, Option<String>), ScimError> {
    let trimmed = path.trim_start_matches('/');
    let (res, id) = match trimmed.split_once('/') {
        Some((r, id)) => (r, Some(id.to_string())),
        None => (trimmed, None),
    };
    let kind = match res {
        "Users" => ResourceKind::User,
        "Groups" => ResourceKind::Group,
        _ => {
            return Err(ScimError::invalid_path(format!(
                "bulk path '{path}' must start with /Users or /Groups"
            )));
        }
    };
    if id
        .as_deref()
        .is_some_and(|i| i.is_empty() || i.contains('/'))
    {
        return Err(ScimError::invalid_path(format!(
            "bulk path '{path}' is malformed"
        )));
    }
    Ok((kind, id))
}

async fn run_one(
    state: &AppState,
    auth: &Auth,
    op: &BulkOperation,
    ids: &HashMap<String, String>,
) -> Result<
    (
        u16,
        Option<String>,
        Option<String>,
        Option<(ResourceKind, String)>,
    ),
    ScimError,
> {
    let method = op.method.to_ascii_uppercase();
    let path = resolve_path(&op.path, ids)?;
    let (kind, id) = parse_path(&path)?;
    let write = method != "GET";
    if !auth.token.scopes.allows(endpoint(kind), write) {
        return Err(ScimError::new(
            403,
            None,
            format!("the token may not {method} {}", kind.endpoint()),
        ));
    }
    let mut data = op.data.clone();
    if let Some(d) = &mut data {
        resolve(d, ids)?;
    }
    let need_data = || {
        data.clone()
            .ok_or_else(|| ScimError::invalid_syntax(format!("{method} needs 'data'")))
    };
    let need_id = || {
        id.clone().ok_or_else(|| {
            ScimError::invalid_path(format!("{method} needs a resource id in the path"))
        })
    };
    let svc = &state.service;
    let base = state.base_url(&auth.tenant);
    let loc = |r: &scim_core::StoredResource| format!("{base}/{}/{}", kind.endpoint(), r.id);
    let map = |e: scim_core::CoreError| e.to_scim();
    match method.as_str() {
        "POST" => {
            if id.is_some() {
                return Err(ScimError::invalid_path(
                    "POST paths name the collection, e.g. /Users",
                ));
            }
            let r = svc
                .create(&auth.tenant, kind, need_data()?, &auth.ctx)
                .await
                .map_err(map)?;
            Ok((201, Some(loc(&r)), Some(r.etag()), Some((kind, r.id))))
        }
        "PUT" => {
            let r = svc
                .replace(
                    &auth.tenant,
                    kind,
                    &need_id()?,
                    need_data()?,
                    op.version.as_deref(),
                    &auth.ctx,
                )
                .await
                .map_err(map)?;
            Ok((200, Some(loc(&r)), Some(r.etag()), None))
        }
        "PATCH" => {
            let r = svc
                .patch(
                    &auth.tenant,
                    kind,
                    &need_id()?,
                    &need_data()?,
                    op.version.as_deref(),
                    &auth.ctx,
                )
                .await
                .map_err(map)?;
            Ok((200, Some(loc(&r)), Some(r.etag()), None))
        }
        "DELETE" => {
            let id = need_id()?;
            svc.delete(&auth.tenant, kind, &id, op.version.as_deref(), &auth.ctx)
                .await
                .map_err(map)?;
            Ok((
                204,
                Some(format!("{base}/{}/{id}", kind.endpoint())),
                None,
                None,
            ))
        }
        other => Err(ScimError::invalid_syntax(format!(
            "bulk method '{other}' is not supported; use POST, PUT, PATCH or DELETE"
        ))),
    }
}

pub async fn bulk(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    body: ScimBody,
) -> ApiResult<Response> {
    auth.require(Endpoint::Bulk, true)?;
    let req: BulkRequest = serde_json::from_value(body.0).map_err(|e| {
        ApiError::from(ScimError::invalid_syntax(format!(
            "invalid BulkRequest: {e}"
        )))
    })?;
    let max = state.config.bulk_max_operations;
    if req.operations.len() > max {
        return Err(ApiError::from(ScimError::payload_too_large(format!(
            "{} bulk operations; maxOperations is {max}",
            req.operations.len()
        ))));
    }
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut results = Vec::with_capacity(req.operations.len());
    let mut errors = 0u32;
    for op in &req.operations {
        if req.fail_on_errors.is_some_and(|n| n > 0 && errors >= n) {
            break;
        }
        let outcome = run_one(&state, &auth, op, &ids).await;
        let result = match outcome {
            Ok((status, location, version, created)) => {
                if let (Some(b), Some((_, id))) = (&op.bulk_id, created) {
                    ids.insert(b.clone(), id);
                }
                BulkOperationResult {
                    method: op.method.clone(),
                    bulk_id: op.bulk_id.clone(),
                    version,
                    location,
                    status: status.to_string(),
                    response: None,
                }
            }
            Err(e) => {
                errors += 1;
                let target = parse_path(&op.path).ok();
                state
                    .service
                    .log_failure(
                        &auth.tenant,
                        target.as_ref().map(|t| t.0),
                        target.as_ref().and_then(|t| t.1.as_deref()),
                        &e,
                        &auth.ctx,
                    )
                    .await;
                BulkOperationResult {
                    method: op.method.clone(),
                    bulk_id: op.bulk_id.clone(),
                    version: None,
                    location: None,
                    status: e.status.to_string(),
                    response: serde_json::to_value(e.to_body()).ok(),
                }
            }
        };
        results.push(result);
    }
    Ok(scim_json(StatusCode::OK, &BulkResponse::new(results)))
}
