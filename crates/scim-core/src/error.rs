//! The domain error: a SCIM error for the client, or a storage failure for the operator.

use scim_proto::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A protocol-level failure the client caused: returned as-is.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The storage backend failed; details are logged, never sent to clients.
    #[error("storage failure: {0}")]
    Storage(String),
    /// An administrative request was invalid (CLI, admin API).
    #[error("{0}")]
    Invalid(String),
    /// A named administrative object does not exist.
    #[error("{0} not found")]
    NotFound(String),
}

impl CoreError {
    /// The SCIM error a client sees for this failure.
    pub fn to_scim(&self) -> ScimError {
        match self {
            CoreError::Scim(e) => e.clone(),
            CoreError::Storage(_) => {
                ScimError::new(500, None, "internal storage error; retry later")
            }
            CoreError::Invalid(m) => ScimError::invalid_value(m.clone()),
            CoreError::NotFound(m) => ScimError::not_found(format!("{m} not found")),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
