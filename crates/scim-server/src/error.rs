//! The one HTTP error type: every failure leaves as an RFC 7644 §3.12 body with
//! `Content-Type: application/scim+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim_core::CoreError;
use scim_proto::ScimError;

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug)]
pub struct ApiError {
    pub error: ScimError,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ScimError::new(status, None, detail).into()
    }
}

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        if let CoreError::Storage(detail) = &e {
            tracing::error!(%detail, "request failed in storage");
        }
        e.to_scim().into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.error.to_body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
