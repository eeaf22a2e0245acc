//! Request parsing: JSON bodies (size-limited, `application/scim+json` or
//! `application/json`) and SCIM query parameters (form-decoded, names case-insensitive,
//! unknown ones such as Entra's `aadOptscim062020` ignored).

use crate::AppState;
use crate::error::AppError;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use scim_proto::{Projection, ScimError, SearchRequest};
use serde_json::Value;
use std::sync::Arc;

/// A JSON request body.
pub struct ScimBody(pub Value);

impl FromRequest<Arc<AppState>> for ScimBody {
    type Rejection = AppError;

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
                return Err(AppError::new(
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
                AppError::from(ScimError::payload_too_large(format!(
                    "the request body is larger than {limit} bytes"
                )))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::from(ScimError::invalid_syntax(
                "the request body is empty",
            )));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::from(ScimError::invalid_syntax(format!(
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

    pub fn projection(&self) -> Result<Projection, AppError> {
        Ok(Projection::parse(
            self.get("attributes"),
            self.get("excludedAttributes"),
        )?)
    }

    /// The query string as a search request.
    pub fn search_request(&self) -> Result<SearchRequest, AppError> {
        Ok(SearchRequest::from_query(|k| self.get(k))?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).map_err(|e| {
            AppError::from(ScimError::invalid_syntax(format!(
                "malformed query string: {e}"
            )))
        })?;
        Ok(ScimQuery(pairs))
    }
}

/// A SearchRequest body (RFC 7644 §3.4.3).
pub fn search_request(body: Value) -> Result<SearchRequest, AppError> {
    serde_json::from_value(body).map_err(|e| {
        AppError::from(ScimError::invalid_syntax(format!(
            "invalid SearchRequest: {e}"
        )))
    })
}
