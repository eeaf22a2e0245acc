//! Tenant rows and leases.

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::Arg;
use async_trait::async_trait;
use scim_core::CoreResult;
use scim_core::store::TenantStore;
use scim_core::{Tenant, Timestamp};

const COLUMNS: &str = "id, slug, name, created_at";

fn tenant_from(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.int(0)?,
        slug: row.text(1)?,
        name: row.text(2)?,
        created_at: row.ts(3)?,
    })
}

pub(crate) async fn create(
    c: &mut Conn<'_>,
    slug: &str,
    name: &str,
    now: Timestamp,
) -> Result<Tenant, StoreError> {
    let row = c
        .fetch_one(
            &format!("INSERT INTO tenants (slug, name, created_at) VALUES ($1, $2, $3) RETURNING {COLUMNS}"),
            &[Arg::text(slug), Arg::text(name), Arg::ts(now)],
        )
        .await
        .map_err(|e| e.unique_as(format!("tenant '{slug}' already exists")))?;
    tenant_from(&row)
}

pub(crate) async fn by_slug(c: &mut Conn<'_>, slug: &str) -> Result<Option<Tenant>, StoreError> {
    c.fetch_optional(
        &format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"),
        &[Arg::text(slug)],
    )
    .await?
    .as_ref()
    .map(tenant_from)
    .transpose()
}

pub(crate) async fn all(c: &mut Conn<'_>) -> Result<Vec<Tenant>, StoreError> {
    c.fetch(&format!("SELECT {COLUMNS} FROM tenants ORDER BY slug"), &[])
        .await?
        .iter()
        .map(tenant_from)
        .collect()
}

/// Deletes the tenant and its rows. Explicit deletes (not only `ON DELETE CASCADE`), so the
/// outcome does not depend on a connection's `foreign_keys` setting.
pub(crate) async fn delete(c: &mut Conn<'_>, slug: &str) -> Result<bool, StoreError> {
    let Some(t) = by_slug(c, slug).await? else {
        return Ok(false);
    };
    let id = [Arg::Int(t.id)];
    for sql in [
        "DELETE FROM group_members WHERE tenant_id = $1",
        "DELETE FROM resource_emails WHERE tenant_id = $1",
        "DELETE FROM resources WHERE tenant_id = $1",
        "DELETE FROM provisioning_events WHERE tenant_id = $1",
        "DELETE FROM tokens WHERE tenant_id = $1",
        "DELETE FROM refused_credentials WHERE tenant_id = $1",
        "DELETE FROM operator_grants WHERE tenant_id = $1",
        "DELETE FROM setup_links WHERE tenant_id = $1",
        "DELETE FROM tenants WHERE id = $1",
    ] {
        c.exec(sql, &id).await?;
    }
    Ok(true)
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn create_tenant(&self, slug: &str, name: &str, now: Timestamp) -> CoreResult<Tenant> {
        let (slug, name) = (slug.to_string(), name.to_string());
        self.write(job!(|c| create(c, &slug, &name, now))).await
    }
    async fn tenant(&self, slug: &str) -> CoreResult<Option<Tenant>> {
        let slug = slug.to_string();
        self.read(job!(|c| by_slug(c, &slug))).await
    }
    async fn tenants(&self) -> CoreResult<Vec<Tenant>> {
        self.read(job!(|c| all(c))).await
    }
    async fn delete_tenant(&self, slug: &str) -> CoreResult<bool> {
        if let Some(e) = self.sqlite() {
            e.forget_counts();
        }
        let slug = slug.to_string();
        self.write(job!(|c| delete(c, &slug))).await
    }
}
