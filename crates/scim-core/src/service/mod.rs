//! The services the CLI, the console and the SCIM routes all call: one code path per action
//! (creating a tenant or a token, signing in, provisioning a user, reading the log).

mod access;
mod audit;
mod changes;
mod events;
mod group_patch;
mod maintenance;
mod operators;
mod resources;
mod tenants;
mod tokens;
mod webhooks;

pub use access::{AccessService, IssuedLink, LINKS_SHOWN, LinkError};
pub use audit::AuditService;
pub use changes::{ChangeFeed, ChangeNotifier, ChangePage, FeedCursor, MAX_PAGE};
pub use events::EventService;
pub use maintenance::Maintenance;
pub use operators::{CODE_FAILURES, CODE_LOCK, CodeKind, NewSession, OperatorService};
pub use resources::{Limits, ResourceService, wants_related};
pub use tenants::TenantService;
pub use tokens::TokenService;
pub use webhooks::{DEFAULT_SECRET_OVERLAP, MAX_SECRET_OVERLAP, NewEndpoint, WebhookService};

use crate::Store;
use std::sync::Arc;

/// Every service over one store.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub tenants: TenantService,
    pub tokens: TokenService,
    pub operators: OperatorService,
    pub access: AccessService,
    pub audit: AuditService,
    pub events: EventService,
    pub changes: ChangeFeed,
    /// Without the instance key until the binary gives it one ([`WebhookService::new`]).
    pub webhooks: WebhookService,
}

impl Services {
    /// `notifier`: the one the resource service signals, so that long polls wake.
    pub fn new(store: Arc<dyn Store>, notifier: Arc<ChangeNotifier>) -> Self {
        Self {
            changes: ChangeFeed::new(store.clone(), notifier),
            webhooks: WebhookService::new(store.clone(), None),
            tenants: TenantService::new(store.clone()),
            tokens: TokenService::new(store.clone()),
            operators: OperatorService::new(store.clone()),
            access: AccessService::new(store.clone()),
            audit: AuditService::new(store.clone()),
            events: EventService::new(store.clone()),
            store,
        }
    }
}
