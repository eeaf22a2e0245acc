//! Storage errors, converted to [`scim_core::CoreError`] at the crate boundary.

use scim_core::CoreError;
use scim_proto::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Lite(#[from] rusqlite::Error),
    /// The SQLite engine's writer thread is gone (the store is closing).
    #[error("the SQLite writer has stopped")]
    WriterStopped,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
    /// A unique index refused the write.
    #[error("{0}")]
    Unique(String),
    /// A domain error raised inside a transaction (e.g. by a PATCH modifier).
    #[error(transparent)]
    Domain(CoreError),
    /// A client-visible problem found while writing (e.g. an unknown member id).
    #[error(transparent)]
    Scim(ScimError),
}

impl StoreError {
    /// Turns a unique-index violation into [`StoreError::Unique`] with a message.
    pub fn unique_as(self, message: impl Into<String>) -> Self {
        match &self {
            StoreError::Sqlx(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                StoreError::Unique(message.into())
            }
            StoreError::Lite(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Unique(message.into())
            }
            _ => self,
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique(m) => CoreError::Scim(ScimError::uniqueness(m)),
            StoreError::Scim(s) => CoreError::Scim(s),
            StoreError::Domain(e) => e,
            StoreError::Config(m) => CoreError::Invalid(m),
            other => {
                tracing::error!(error = %other, "storage failure");
                CoreError::Storage(other.to_string())
            }
        }
    }
}
