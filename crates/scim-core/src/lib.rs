//! # scim-core: the scimd domain
//!
//! Data types (tenants, tokens, operators, resources, provisioning events, time) in modules
//! that import nothing above them; the per-domain store traits ([`store`]) that `scim-store`
//! implements; and the services ([`service`]) that the CLI, the console and the SCIM routes
//! all call. It knows the protocol through `scim-proto` and names no HTTP and no SQL type.

pub mod access;
pub mod audit;
pub mod change;
pub mod change_record;
pub mod clock;
pub mod error;
pub mod event;
pub mod operator;
pub mod refused;
pub mod resource;
pub mod sealing;
pub mod second_factor;
pub mod service;
pub mod setup_link;
pub mod store;
pub mod sync;
pub mod tenant;
pub mod token;
pub mod webhook;

pub use clock::Timestamp;
pub use error::{CoreError, CoreResult};
pub use event::{Event, EventQuery, LogEntry, Operation, RequestContext};
pub use operator::{Operator, SessionRecord};
pub use resource::{IndexedFields, Member, MemberOp, ResourceKind, StoredResource, Write};
pub use sealing::SealingKey;
pub use service::{
    EventService, Maintenance, OperatorService, ResourceService, Services, TenantService,
    TokenService, wants_related,
};
pub use store::{
    DayCount, EventStore, LeaseFence, LeaseStore, OperatorStore, Query, QueryResult, ResourceStore,
    SchemaStore, SessionStore, TenantStore, TokenStore, WebhookStore,
};
pub use sync::{
    CycleCounts, CycleMode, CycleRecord, CycleStatus, ErrorCode, Escrow, Exported, JobSnapshot,
    JobState, LastCycle, LedgerEntry, LedgerState, LogChanges, Pending, PendingStep,
    PropertyChange, Quarantine, QuarantineReason, RunningCycle, SourceFile, SourceFileInfo,
    SourceObject, Status, Step, StepKind, SyncAction, SyncJobRecord, SyncLogQuery, SyncLogRecord,
    SyncStore, Trigger, Verb,
};
pub use tenant::Tenant;

/// Every store trait: what a database backend implements (`impl Store for MyStore {}` once
/// the others are).
pub trait Store:
    store::TenantStore
    + store::TokenStore
    + store::ResourceStore
    + store::EventStore
    + store::OperatorStore
    + store::SessionStore
    + store::AccessStore
    + store::AuditStore
    + store::LeaseStore
    + store::WebhookStore
    + store::SchemaStore
    + sync::SyncStore
    + 'static
{
}

/// Every store trait, for callers (tests, tools) that use a store directly.
pub mod prelude {
    pub use crate::store::{
        AccessStore, AuditStore, EventStore, LeaseStore, OperatorStore, ResourceStore, SchemaStore,
        SessionStore, TenantStore, TokenStore, WebhookStore,
    };
    pub use crate::sync::SyncStore;
}
pub use refused::{Refusal, Refusals, RefusedCount};
pub use token::{Endpoint, IssuedToken, Privilege, TokenRecord, TokenScope, TokenScopes};
