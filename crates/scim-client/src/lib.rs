//! A SCIM 2.0 client (RFC 7644) for the provisioning engine and the load generator.
//!
//! What it knows about a target comes from discovery ([`TargetProfile`]: PATCH, Bulk,
//! filtering, paging, Groups) rather than from guesses, so the engine can pick PATCH or PUT,
//! index or cursor paging, and chunk membership changes to what the target accepts.
//! Errors keep the SCIM `scimType` and `detail` the target sent, and say whether a retry can
//! help ([`ClientError::is_transient`]): 408/429/5xx and transport failures are transient,
//! every other 4xx is permanent for that object (docs/interop.md §9).

mod client;
mod error;
mod profile;

pub use client::{
    Answer, BulkResult, ClientOptions, ClientStats, ListPage, ScimClient, filter_literal,
    retry_after,
};
pub use error::{ClientError, ClientResult};
pub use profile::{ResourceKind, TargetProfile};

/// The PatchOp message schema (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The BulkRequest message schema (RFC 7644 §3.7).
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The ListResponse schema (RFC 7644 §3.4.2).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The User and Group core schemas (RFC 7643 §4).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
