//! Reading the provisioning log: the CLI (`scimd log`), the console's log page and its export
//! API all read through here, with the same filters.

use crate::Store;
use crate::clock::Timestamp;
use crate::error::CoreResult;
use crate::event::{Event, EventFilter, EventQuery};
use crate::store::DayCount;
use crate::tenant::Tenant;
use std::sync::Arc;

#[derive(Clone)]
pub struct EventService {
    store: Arc<dyn crate::store::EventStore>,
}

impl EventService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Checks the filter (`CoreError::Invalid` for a bad one) and reads the matching
    /// events, newest first, `default_limit` of them unless the filter says.
    pub async fn read(
        &self,
        tenant: &Tenant,
        filter: &EventFilter,
        default_limit: u32,
    ) -> CoreResult<(EventQuery, Vec<Event>)> {
        let q = filter.to_query(Timestamp::now(), default_limit)?;
        let events = self.store.events(tenant.id, &q).await?;
        Ok((q, events))
    }

    /// Events matching an already checked query.
    pub async fn query(&self, tenant: &Tenant, q: &EventQuery) -> CoreResult<Vec<Event>> {
        self.store.events(tenant.id, q).await
    }

    /// Events since `since` per UTC day and operation.
    pub async fn counts(&self, tenant: &Tenant, since: Timestamp) -> CoreResult<Vec<DayCount>> {
        self.store.event_counts(tenant.id, since).await
    }
}
