//! Bulk (RFC 7644 §3.7): operations run in order, each in its own transaction, through the
//! resource service; `bulkId` references resolve by `scim_proto::bulk`'s rules;
//! `failOnErrors` stops after that many failures; the advertised `maxOperations` and
//! `maxPayloadSize` are enforced with 413.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, AppError};
use crate::request::ScimBody;
use crate::scim::{endpoint, scim_json};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::{Endpoint, ResourceKind};
use scim_proto::ScimError;
use scim_proto::bulk::{BulkIds, parse_path, resolve_ids, target};
use scim_proto::wire::{BulkOperation, BulkOperationResult, BulkRequest, BulkResponse};
use std::sync::Arc;

async fn run_one(
    state: &AppState,
    auth: &Auth,
    op: &BulkOperation,
    ids: &BulkIds,
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
    let (kind, id) = target(&op.path, ids)?;
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
        resolve_ids(d, ids)?;
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
    let svc = &state.resources;
    let base = state.base_url(&auth.tenant);
    let loc = |r: &scim_core::StoredResource| format!("{base}/{}/{}", kind.endpoint(), r.id);
    let map = |e: scim_core::CoreError| {
        if e.is_internal() {
            tracing::error!(request_id = %auth.ctx.request_id, error = %e, "bulk operation failed inside scimd");
        }
        e.to_scim()
    };
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
        AppError::from(ScimError::invalid_syntax(format!(
            "invalid BulkRequest: {e}"
        )))
    })?;
    let max = state.config.bulk_max_operations;
    if req.operations.len() > max {
        return Err(AppError::from(ScimError::payload_too_large(format!(
            "{} bulk operations; maxOperations is {max}",
            req.operations.len()
        ))));
    }
    let mut ids = BulkIds::new();
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
                    .resources
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
                    response: Some(serde_json::to_value(e.to_body()).map_err(AppError::internal)?),
                }
            }
        };
        results.push(result);
    }
    Ok(scim_json(StatusCode::OK, &BulkResponse::new(results)))
}
