//! Reading and recording the audit log (`crate::audit`): the console's Audit page, its
//! exports and `scimd audit`. Changes record their own rows (in their transaction); this
//! records what has no row of its own to change (sign-ins, app job files).

use crate::Store;
use crate::access::Role;
use crate::audit::{AuditEntry, AuditQuery, AuditRecord};
use crate::error::CoreResult;
use std::sync::Arc;

#[derive(Clone)]
pub struct AuditService {
    store: Arc<dyn crate::store::AuditStore>,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn record(&self, entry: &AuditEntry) -> CoreResult<()> {
        self.store.record_audit(entry).await
    }

    /// The rows `role` may see: an instance admin every row, a tenant admin only their
    /// tenants' (never the instance's own rows, such as other admins made).
    pub async fn list(&self, role: &Role, q: AuditQuery) -> CoreResult<Vec<AuditRecord>> {
        let q = AuditQuery {
            tenant_ids: match role {
                Role::Instance => q.tenant_ids,
                Role::Tenant { grants } => Some(grants.iter().map(|g| g.tenant_id).collect()),
            },
            ..q
        };
        self.store.audit_log(&q).await
    }
}
