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
//! - [`wire`]: ListResponse, Bulk messages, ServiceProviderConfig.
//! - [`search`]: the one search request (query string or SearchRequest body).
//! - [`sort`], [`cursor`], [`etag`]: ordering, the cursor format, versions and preconditions.
//! - [`render`]: `id`, `meta`, `members` and `groups` as they go over the wire.
//! - [`bulk`]: Bulk paths and `bulkId` references.
//! - [`kind`]: the User and Group resource types.
//! - [`error`]: [`ScimError`], the RFC 7644 §3.12 error every failure becomes.
//! - [`json`], [`urn`], [`datetime`]: the low-level helpers at the bottom.
//!
//! No async, no HTTP types, no SQL: the layers above convert at their boundary.

pub mod bulk;
pub mod cursor;
pub mod datetime;
pub mod error;
pub mod etag;
pub mod filter;
pub mod json;
pub mod kind;
pub mod patch;
pub mod path;
pub mod projection;
pub mod render;
pub mod resource;
pub mod schema;
pub mod search;
pub mod sort;
pub mod text;
pub mod urn;
pub mod wire;

pub use error::{ErrorBody, ScimError, ScimResult, ScimType};
pub use filter::{CompValue, CompareOp, FilterExpr, FilterLimits, PatchPath};
pub use kind::ResourceKind;
pub use patch::{PatchOp, PatchOpKind, PatchRequest, apply_patch};
pub use path::AttrPath;
pub use projection::Projection;
pub use schema::{
    AttributeDef, AttributeType, Mutability, ResourceView, Returned, SchemaDef, SchemaRegistry,
    Uniqueness,
};
pub use search::SearchRequest;
