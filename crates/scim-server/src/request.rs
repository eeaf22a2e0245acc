//! Request parsing: JSON bodies (size-limited, `application/scim+json` or
//! `application/json`) and SCIM query parameters (form-decoded, names case-insensitive,
//! unknown ones such as Entra's `aadOptscim062020` ignored).

use crate::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use scim_core::service::ListRequest;
use scim_proto::{Projection, ScimError};
use serde_json::Value;
use std::sync::Arc;

/// A JSON request body.
pub struct ScimBody(pub Value);

impl FromRequest<Arc<AppState>> for ScimBody {
    type Rejection = ApiError;

    async fn from_request(
        req: Request<Body>,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let essence = ct
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !essence.is_empty()
                && essence != "application/scim+json"
                && essence != "application/json"
            {
                return Err(ApiError::new(
                    415,
                    format!(
                        "Content-Type '{essence}' is not supported; send application/scim+json"
                    ),
                ));
            }
        }
        let limit = state.config.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::from(ScimError::payload_too_large(format!(
                    "the request body is larger than {limit} bytes"
                )))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::from(ScimError::invalid_syntax(
                "the request body is empty",
            )));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::from(ScimError::invalid_syntax(format!(
                "the request body is not valid JSON: {e}"
            )))
        })?;
        Ok(ScimBody(v))
    }
}

/// Query parameters, decoded.
#[derive(Debug, Default)]
pub struct ScimQuery(pub Vec<(String, String)>);

impl ScimQuery {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::from(ScimError::invalid_value(format!(
                    "'{name}' must be an integer, got '{v}'"
                )))
            }),
        }
    }

    pub fn projection(&self) -> Result<Projection, ApiError> {
        Ok(Projection::parse(
            self.get("attributes"),
            self.get("excludedAttributes"),
        )?)
    }

    pub fn list_request(&self) -> Result<ListRequest, ApiError> {
        Ok(ListRequest {
            filter: self.get("filter").map(str::to_string),
            sort_by: self.get("sortBy").map(str::to_string),
            sort_order: self.get("sortOrder").map(str::to_string),
            start_index: self.int("startIndex")?,
            count: self.int("count")?,
            cursor: self.get("cursor").map(str::to_string),
            projection: self.projection()?,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).map_err(|e| {
            ApiError::from(ScimError::invalid_syntax(format!(
                "malformed query string: {e}"
            )))
        })?;
        Ok(ScimQuery(pairs))
    }
}

/// A SearchRequest body (RFC 7644 §3.4.3) as a list request.
pub fn search_request(body: Value) -> Result<ListRequest, ApiError> {
    let req: scim_proto::wire::SearchRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::from(ScimError::invalid_syntax(format!(
            "invalid SearchRequest: {e}"
        )))
    })?;
    Ok(ListRequest {
        projection: Projection::from_lists(&req.attributes, &req.excluded_attributes)?,
        filter: req.filter,
        sort_by: req.sort_by,
        sort_order: req.sort_order,
        start_index: req.start_index,
        count: req.count,
        cursor: req.cursor,
    })
}
