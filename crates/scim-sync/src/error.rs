//! The engine's one error type, and how a target's answer is classified for the log.

use scim_client::ClientError;
use scim_core::ErrorCode;

pub type SyncResult<T> = Result<T, SyncError>;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A job definition that cannot work (bad key, bad expression, missing setting).
    #[error("{0}")]
    Job(String),
    /// The source could not be read.
    #[error("source: {0}")]
    Source(String),
    /// The target refused or failed.
    #[error("target: {0}")]
    Target(#[from] ClientError),
    /// scimd's own database.
    #[error("store: {0}")]
    Store(#[from] scim_core::CoreError),
    /// The sync key or a sealed secret.
    #[error("secret: {0}")]
    Secret(String),
    #[error("{0}")]
    NotFound(String),
    /// The target failed the compliance probe (it ignores filters, or errs on them).
    #[error("the target failed the SCIM compliance probe: {0}")]
    Compliance(String),
    /// A name already taken (an app, a job).
    #[error("{0}")]
    Conflict(String),
    /// The breaker holds deletes; approve or reject them first.
    #[error("{0}")]
    Blocked(String),
    /// Something that cannot happen did (a task that panicked, a poisoned lock).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SyncError {
    /// Whether the failure is the caller's to fix (a bad job, a missing thing) rather than
    /// the engine's, the store's or a remote party's.
    pub fn is_client(&self) -> bool {
        matches!(
            self,
            SyncError::Job(_)
                | SyncError::NotFound(_)
                | SyncError::Blocked(_)
                | SyncError::Conflict(_)
        )
    }
}

/// The documented error code for a target's answer (docs/sync.md §6).
pub fn error_code(e: &ClientError) -> ErrorCode {
    match e.status() {
        Some(401 | 403) => ErrorCode::TargetUnauthorized,
        Some(409) => ErrorCode::TargetConflict,
        Some(404) => ErrorCode::TargetObjectMissing,
        Some(408 | 429) => ErrorCode::TargetThrottled,
        Some(s) if (400..500).contains(&s) => ErrorCode::TargetRejected,
        _ => ErrorCode::TargetUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_documented_codes() {
        let status = |s: u16| ClientError::Status {
            status: s,
            scim_type: None,
            detail: None,
            retry_after: None,
        };
        for (s, want) in [
            (401, ErrorCode::TargetUnauthorized),
            (403, ErrorCode::TargetUnauthorized),
            (404, ErrorCode::TargetObjectMissing),
            (408, ErrorCode::TargetThrottled),
            (409, ErrorCode::TargetConflict),
            (429, ErrorCode::TargetThrottled),
            (400, ErrorCode::TargetRejected),
            (500, ErrorCode::TargetUnavailable),
            (503, ErrorCode::TargetUnavailable),
        ] {
            assert_eq!(error_code(&status(s)), want, "{s}");
        }
        assert_eq!(
            error_code(&ClientError::Protocol("x".into())),
            ErrorCode::TargetUnavailable
        );
    }
}
