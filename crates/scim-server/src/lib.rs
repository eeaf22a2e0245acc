//! # scim-server
//!
//! HTTP layer: the axum app serving SCIM routes, the admin API and the console.
//!
//! This crate is a placeholder in the workspace layout (see `docs/architecture.md`); its
//! implementation is tracked by the server issue and lands with it.
