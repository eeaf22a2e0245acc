//! # scim-core
//!
//! Domain layer: tenants, tokens, the resource service, provisioning log and the Store trait. No HTTP, no SQL.
//!
//! This crate is a placeholder in the workspace layout (see `docs/architecture.md`); its
//! implementation is tracked by the server issue and lands with it.
