//! The domain error: what a caller did wrong (shown to it), or what failed inside (a 500,
//! logged once where the request is answered, never shown).

use scim_proto::ScimError;

/// A storage driver's error, kept as the source of [`CoreError::Storage`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A protocol-level failure the client caused: returned as-is.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// An administrative request was invalid (CLI, console).
    #[error("{0}")]
    Invalid(String),
    /// A named administrative object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A name that must be unique is taken (a tenant slug, an operator name, a userName).
    #[error("{0}")]
    Conflict(String),
    /// The database failed. The source is kept for the log; clients see a plain 500.
    #[error("storage failure: {0}")]
    Storage(#[source] BoxError),
    /// Too much work at once (password hashing): the caller may retry shortly (a 503).
    #[error("{0}")]
    Busy(String),
    /// An invariant broke (a worker task died, a queue closed): a 500 as well.
    #[error("internal failure: {0}")]
    Internal(String),
    /// A write fenced by a lease was refused: another node holds the lease now, so what
    /// this node would write belongs to that node's run (see [`crate::store::LeaseFence`]).
    #[error("{0}")]
    LeaseLost(String),
    /// What was asked for existed once and is gone for good (a change-feed cursor older
    /// than the retention): a 410.
    #[error("{0}")]
    Gone(String),
}

impl CoreError {
    /// Whether this is the server's fault (a 500), not the caller's.
    pub fn is_internal(&self) -> bool {
        matches!(self, CoreError::Storage(_) | CoreError::Internal(_))
    }

    /// The SCIM error a client sees for this failure (RFC 7644 §3.12).
    pub fn to_scim(&self) -> ScimError {
        match self {
            CoreError::Scim(e) => e.clone(),
            CoreError::Storage(_) | CoreError::Internal(_) => {
                ScimError::new(500, None, "internal server error; retry later")
            }
            CoreError::Invalid(m) => ScimError::invalid_value(m.clone()),
            CoreError::NotFound(m) => ScimError::not_found(format!("{m} not found")),
            CoreError::Conflict(m) => ScimError::uniqueness(m.clone()),
            CoreError::Busy(m) => ScimError::new(503, None, m.clone()),
            CoreError::LeaseLost(m) => ScimError::new(409, None, m.clone()),
            CoreError::Gone(m) => ScimError::new(410, None, m.clone()),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
