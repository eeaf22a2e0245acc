//! The engine's one error type.

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
    Target(#[from] scim_client::ClientError),
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
    /// The breaker holds deletes; approve or reject them first.
    #[error("{0}")]
    Blocked(String),
}
