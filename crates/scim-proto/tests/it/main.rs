//! Integration tests of scim-proto: RFC examples and real-client corpora, table-driven.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod clients;
mod filter_eval;
mod filter_syntax;
mod patch_rfc;
mod projection;
mod props;
mod resource;
mod schema;
mod short_names;

use scim_proto::{ResourceView, SchemaRegistry};
use serde_json::Value;
use std::sync::LazyLock;

pub static REGISTRY: LazyLock<SchemaRegistry> = LazyLock::new(SchemaRegistry::new);

pub fn users() -> ResourceView<'static> {
    REGISTRY.view("User").unwrap()
}

pub fn groups() -> ResourceView<'static> {
    REGISTRY.view("Group").unwrap()
}

/// Applies a PATCH body (as JSON text) to a resource of type `rt`.
pub fn patch(rt: &str, resource: &Value, body: Value) -> Result<Value, scim_proto::ScimError> {
    let view = REGISTRY.view(rt).unwrap();
    scim_proto::patch::patch_resource(&view, resource, &body)
}

/// A PatchOp body around the given operations.
pub fn ops(ops: Value) -> Value {
    serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}
