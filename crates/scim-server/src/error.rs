//! The one HTTP error type, [`AppError`], for SCIM routes and the console alike.
//!
//! It renders as an RFC 7644 §3.12 body with `Content-Type: application/scim+json`, and it
//! travels in the response's extensions, so that
//! - the console's layer re-renders it as an HTML page (or a redirect to sign in), and
//! - the failure logger reads the `ScimError` from there instead of parsing the body.
//!
//! A failure that is the server's (storage, a broken invariant) is logged here, once, inside
//! the request's span (which carries the request id), and leaves as a plain 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim_core::CoreError;
use scim_proto::ScimError;

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug, Clone)]
pub struct AppError {
    /// What the client is told.
    pub error: ScimError,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// Console only: the caller must sign in, then come back to this path.
    pub sign_in: Option<String>,
    /// A failure inside scimd: what the log says (never the client), written once with the
    /// request id by [`log_internal_errors`].
    pub internal: Option<std::sync::Arc<str>>,
}

impl AppError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ScimError::new(status, None, detail).into()
    }

    /// A 500 for a failure that is not the caller's; `what` goes to the log only.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self {
            internal: Some(what.to_string().into()),
            ..Self::new(500, "internal server error; retry later")
        }
    }

    /// The console's "sign in first" answer.
    pub fn sign_in(next: impl Into<String>) -> Self {
        Self {
            sign_in: Some(next.into()),
            ..Self::new(401, "sign in to the console first")
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ScimError> for AppError {
    fn from(error: ScimError) -> Self {
        Self {
            error,
            retry_after: None,
            sign_in: None,
            internal: None,
        }
    }
}

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> Self {
        if e.is_internal() {
            // Logged with its source chain; the client sees only the status.
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            return Self::internal(text);
        }
        let busy = matches!(e, CoreError::Busy(_));
        let err = Self::from(e.to_scim());
        if busy { err.with_retry_after(1) } else { err }
    }
}

/// The engine's errors as the console shows them: its own database failing is internal
/// (a 500, logged), a missing job is a 404, anything else (a bad job definition, a source
/// or target that refused, a missing sync key) is the operator's to fix: a 400 saying why.
impl From<scim_sync::SyncError> for AppError {
    fn from(e: scim_sync::SyncError) -> Self {
        match e {
            scim_sync::SyncError::Store(c) => c.into(),
            scim_sync::SyncError::NotFound(m) => Self::new(404, m),
            scim_sync::SyncError::Conflict(m) => Self::new(409, m),
            e @ scim_sync::SyncError::Internal(_) => Self::internal(e.to_string()),
            other => Self::new(400, other.to_string()),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::internal(format!("console template failed: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match serde_json::to_vec(&self.error.to_body()) {
            Ok(b) => b,
            // Serialising a struct of strings cannot fail; if it ever did, say so.
            Err(e) => return AppError::internal(e).into_response(),
        };
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED && self.sign_in.is_none() {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        resp.extensions_mut().insert(self);
        resp
    }
}

pub type ApiResult<T> = Result<T, AppError>;

/// Logs every failure inside scimd once, with the request id (the response's
/// `x-request-id`), whichever route it came from.
pub fn log_internal_errors(resp: Response) -> Response {
    if let Some(what) = resp
        .extensions()
        .get::<AppError>()
        .and_then(|e| e.internal.as_ref())
    {
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::error!(request_id = %id, error = %what, "request failed inside scimd");
    }
    resp
}
