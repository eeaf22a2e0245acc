//! The provisioning engine behind `scimd sync`.
pub mod expr;
