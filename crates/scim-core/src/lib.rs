//! # scim-core: the scimd domain
//!
//! Tenants, bearer tokens and the resource service that turns SCIM requests into store
//! writes. It knows the protocol through `scim-proto` and persistence through the [`Store`]
//! trait; it names no HTTP and no SQL type, so it can be driven by the HTTP server, the CLI
//! and tests alike.

pub mod error;
pub mod operator;
pub mod provisioning;
pub mod resource;
pub mod service;
pub mod store;
pub mod tenant;
pub mod token;

pub use error::{CoreError, CoreResult};
pub use operator::{Operator, OperatorService, SessionRecord};
pub use provisioning::{Event, EventQuery, LogEntry, Operation, RequestContext};
pub use resource::{IndexedFields, Member, MemberOp, ResourceKind, StoredResource, Write};
pub use service::ResourceService;
pub use store::{DayCount, Query, QueryResult, Store};
pub use tenant::Tenant;
pub use token::{Endpoint, IssuedToken, Privilege, TokenRecord, TokenScope, TokenScopes};

/// Microseconds since the Unix epoch: the one time representation stored.
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}

/// RFC 3339 text of a stored timestamp.
pub fn format_micros(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map(scim_proto::datetime::format)
        .unwrap_or_default()
}
