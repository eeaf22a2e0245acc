//! Storage errors, converted to [`scim_core::CoreError`] once, at the crate boundary. Nothing
//! here is logged: the caller that answers the request logs it, once, with its request id.

use scim_core::CoreError;
use scim_proto::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Lite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite engine's writer thread is gone (the store is closing).
    #[error("the SQLite writer has stopped")]
    WriterStopped,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A bad database URL or setting, found when connecting.
    #[error("{0}")]
    Config(String),
    /// A runtime failure inside the store (a commit, a worker thread).
    #[error("{0}")]
    Internal(String),
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
            StoreError::Unique(m) => CoreError::Conflict(m),
            StoreError::Scim(s) => CoreError::Scim(s),
            StoreError::Domain(e) => e,
            // Every other failure is the server's: a 500, never a client error.
            other => CoreError::Storage(Box::new(other)),
        }
    }
}
