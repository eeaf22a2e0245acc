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

/// One operation that succeeded.
struct Done {
    status: u16,
    location: String,
    version: Option<String>,
    /// The new resource's id (POST), for later operations' `bulkId:` references.
    created: Option<String>,
}

/// An operation checked against the token's scopes, its `bulkId` references resolved.
struct Resolved<'a> {
    method: String,
    kind: ResourceKind,
    id: Option<String>,
    data: Option<serde_json::Value>,
    version: Option<&'a str>,
}

impl Resolved<'_> {
    fn data(&self) -> Result<serde_json::Value, ScimError> {
        self.data
            .clone()
            .ok_or_else(|| ScimError::invalid_syntax(format!("{} needs 'data'", self.method)))
    }

    fn id(&self) -> Result<String, ScimError> {
        self.id.clone().ok_or_else(|| {
            ScimError::invalid_path(format!("{} needs a resource id in the path", self.method))
        })
    }
}

fn resolve<'a>(
    auth: &Auth,
    op: &'a BulkOperation,
    ids: &BulkIds,
) -> Result<Resolved<'a>, ScimError> {
    let method = op.method.to_ascii_uppercase();
    let (kind, id) = target(&op.path, ids)?;
    if !auth.token.scopes.allows(endpoint(kind), method != "GET") {
        let what = format!("the token may not {method} {}", kind.endpoint());
        return Err(ScimError::new(403, None, what));
    }
    let mut data = op.data.clone();
    if let Some(d) = &mut data {
        resolve_ids(d, ids)?;
    }
    let version = op.version.as_deref();
    Ok(Resolved {
        method,
        kind,
        id,
        data,
        version,
    })
}

async fn run_one(
    state: &AppState,
    auth: &Auth,
    op: &BulkOperation,
    ids: &BulkIds,
) -> Result<Done, ScimError> {
    let op = resolve(auth, op, ids)?;
    let (svc, t, ctx, kind, v) = (
        &state.resources,
        &auth.tenant,
        &auth.ctx,
        op.kind,
        op.version,
    );
    let url = |id: &str| format!("{}/{}/{id}", state.base_url(t), kind.endpoint());
    let failed = |e: scim_core::CoreError| {
        if e.is_internal() {
            tracing::error!(request_id = %ctx.request_id, error = %e, "bulk operation failed inside scimd");
        }
        e.to_scim()
    };
    let r = match op.method.as_str() {
        "POST" if op.id.is_some() => {
            return Err(ScimError::invalid_path(
                "POST paths name the collection, e.g. /Users",
            ));
        }
        "POST" => svc.create(t, kind, op.data()?, ctx).await,
        "PUT" => svc.replace(t, kind, &op.id()?, op.data()?, v, ctx).await,
        "PATCH" => svc.patch(t, kind, &op.id()?, &op.data()?, v, ctx).await,
        "DELETE" => {
            let id = op.id()?;
            svc.delete(t, kind, &id, v, ctx).await.map_err(failed)?;
            return Ok(Done {
                status: 204,
                location: url(&id),
                version: None,
                created: None,
            });
        }
        other => {
            return Err(ScimError::invalid_syntax(format!(
                "bulk method '{other}' is not supported; use POST, PUT, PATCH or DELETE"
            )));
        }
    }
    .map_err(failed)?;
    let created = op.method == "POST";
    Ok(Done {
        status: if created { 201 } else { 200 },
        location: url(&r.id),
        version: Some(r.etag()),
        created: created.then(|| r.id.clone()),
    })
}

fn parse_request(body: ScimBody, max: usize) -> ApiResult<BulkRequest> {
    let req: BulkRequest = serde_json::from_value(body.0).map_err(|e| {
        AppError::from(ScimError::invalid_syntax(format!(
            "invalid BulkRequest: {e}"
        )))
    })?;
    if req.operations.len() > max {
        return Err(AppError::from(ScimError::payload_too_large(format!(
            "{} bulk operations; maxOperations is {max}",
            req.operations.len()
        ))));
    }
    Ok(req)
}

pub async fn bulk(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    body: ScimBody,
) -> ApiResult<Response> {
    auth.require(Endpoint::Bulk, true)?;
    let req = parse_request(body, state.config.bulk_max_operations)?;
    let mut ids = BulkIds::new();
    let mut results = Vec::with_capacity(req.operations.len());
    let mut errors = 0u32;
    for op in &req.operations {
        if req.fail_on_errors.is_some_and(|n| n > 0 && errors >= n) {
            break;
        }
        let result = match run_one(&state, &auth, op, &ids).await {
            Ok(done) => {
                if let (Some(b), Some(id)) = (&op.bulk_id, &done.created) {
                    ids.insert(b.clone(), id.clone());
                }
                succeeded(op, done)
            }
            Err(e) => {
                errors += 1;
                failed(&state, &auth, op, e).await?
            }
        };
        results.push(result);
    }
    Ok(scim_json(StatusCode::OK, &BulkResponse::new(results)))
}

fn succeeded(op: &BulkOperation, done: Done) -> BulkOperationResult {
    BulkOperationResult {
        method: op.method.clone(),
        bulk_id: op.bulk_id.clone(),
        version: done.version,
        location: Some(done.location),
        status: done.status.to_string(),
        response: None,
    }
}

/// A failed operation: in the provisioning log like a failed request, and in the answer
/// with its SCIM error.
async fn failed(
    state: &AppState,
    auth: &Auth,
    op: &BulkOperation,
    e: ScimError,
) -> ApiResult<BulkOperationResult> {
    let target = parse_path(&op.path).ok();
    let (kind, id) = (
        target.as_ref().map(|t| t.0),
        target.as_ref().and_then(|t| t.1.as_deref()),
    );
    state
        .resources
        .log_failure(
            &auth.tenant,
            kind,
            id,
            &e,
            &auth.ctx,
            Some(op.method.as_str()),
        )
        .await;
    Ok(BulkOperationResult {
        method: op.method.clone(),
        bulk_id: op.bulk_id.clone(),
        version: None,
        location: None,
        status: e.status.to_string(),
        response: Some(serde_json::to_value(e.to_body()).map_err(AppError::internal)?),
    })
}
