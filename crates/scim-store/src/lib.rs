//! # scim-store
//!
//! Storage layer: the Store trait for SQLite and PostgreSQL, migrations, filter-to-SQL.
//!
//! This crate is a placeholder in the workspace layout (see `docs/architecture.md`); its
//! implementation is tracked by the server issue and lands with it.
