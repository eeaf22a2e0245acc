//! # scim-proto: the SCIM 2.0 protocol, without I/O
//!
//! Everything scimd knows about RFC 7643 (schema) and RFC 7644 (protocol) that can be stated
//! as pure functions over JSON lives here, so it can be tested exhaustively without a server:
//!
//! - [`schema`]: the schema registry (User, EnterpriseUser, Group, run-time extensions).
//! - [`resource`]: parsing client bodies into canonical, schema-checked resources.
//! - [`filter`]: the filter grammar (lexer, parser, printer) and its evaluator.
//! - [`path`]: attribute paths and PATCH paths.
//! - [`patch`]: the PATCH engine, including the quirks real IdPs send.
//! - [`projection`]: `attributes` / `excludedAttributes`.
//! - [`wire`]: ListResponse, SearchRequest, Bulk messages, ServiceProviderConfig.
//! - [`error`]: [`ScimError`], the RFC 7644 §3.12 error every failure becomes.
//!
//! No async, no HTTP types, no SQL: the layers above convert at their boundary.

pub mod datetime;
pub mod error;
pub mod filter;
pub mod patch;
pub mod path;
pub mod projection;
pub mod resource;
pub mod schema;
pub mod urn;
pub mod wire;

pub use error::{ErrorBody, ScimError, ScimResult, ScimType};
pub use filter::{CompValue, CompareOp, FilterExpr, FilterLimits};
pub use patch::{PatchOp, PatchOpKind, PatchRequest, apply_patch};
pub use path::{AttrPath, PatchPath};
pub use projection::Projection;
pub use schema::{
    AttributeDef, AttributeType, Mutability, ResourceView, Returned, SchemaDef, SchemaRegistry,
    Uniqueness,
};
