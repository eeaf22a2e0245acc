//! Creating, finding and deleting tenants: the one code path the CLI, the console and the
//! first start use.

use crate::Store;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditOutcome, AuditedChange};
use crate::error::{CoreError, CoreResult};
use crate::tenant::{Tenant, normalize_name, normalize_slug};
use std::sync::Arc;

#[derive(Clone)]
pub struct TenantService {
    store: Arc<dyn crate::store::TenantStore>,
    audit: Arc<dyn crate::store::AuditStore>,
}

impl TenantService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store: store.clone(),
            audit: store,
        }
    }

    /// Creates a tenant; the slug is normalised (trimmed, lower-cased) and checked, the name
    /// defaults to the slug. A taken slug is `Conflict`.
    pub async fn create(
        &self,
        slug: &str,
        name: Option<&str>,
        actor: &Actor,
    ) -> CoreResult<Tenant> {
        let slug = normalize_slug(slug)?;
        let name = normalize_name(name, &slug)?;
        let mut entry = AuditEntry::new(actor, AuditAction::TenantCreated, &slug);
        entry.tenant = Some(slug.clone());
        match self
            .audit
            .audited(&entry, AuditedChange::CreateTenant { slug, name })
            .await?
        {
            AuditOutcome::Tenant(t) => Ok(t),
            other => Err(CoreError::Internal(format!("tenant create: {other:?}"))),
        }
    }

    /// The tenant with this slug, or `NotFound`.
    pub async fn get(&self, slug: &str) -> CoreResult<Tenant> {
        self.store.tenant(slug).await?.ok_or_else(|| {
            CoreError::NotFound(format!("tenant '{}'", scim_proto::error::excerpt(slug)))
        })
    }

    pub async fn list(&self) -> CoreResult<Vec<Tenant>> {
        self.store.tenants().await
    }

    /// Deletes the tenant and everything in it; `NotFound` when there is none.
    pub async fn delete(&self, slug: &str, actor: &Actor) -> CoreResult<()> {
        let t = self.get(slug).await?;
        let entry = AuditEntry::new(actor, AuditAction::TenantDeleted, &t.slug).on(&t);
        let change = AuditedChange::DeleteTenant {
            slug: t.slug.clone(),
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!(
                "tenant '{}'",
                scim_proto::error::excerpt(slug)
            )))
        }
    }
}
