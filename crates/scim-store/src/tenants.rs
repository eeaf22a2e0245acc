//! Tenant rows and leases.

use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::Arg;
use scim_core::{CoreError, LeaseFence, Tenant, Timestamp};

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
        "DELETE FROM tenants WHERE id = $1",
    ] {
        c.exec(sql, &id).await?;
    }
    Ok(true)
}

/// Refuses the write this transaction makes unless the fence's holder still holds its
/// lease. The no-op UPDATE takes the lease row's lock (PostgreSQL; SQLite has one writer), so
/// a takeover waits for this transaction and the new holder plans from what it wrote.
/// An expired lease nobody took is still the holder's: no other run can be writing.
pub(crate) async fn check_fence(
    c: &mut Conn<'_>,
    fence: Option<&LeaseFence>,
) -> Result<(), StoreError> {
    let Some(f) = fence else {
        return Ok(());
    };
    let n = c
        .exec(
            "UPDATE leases SET holder = holder WHERE name = $1 AND holder = $2",
            &[Arg::text(&f.lease), Arg::text(&f.holder)],
        )
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Domain(CoreError::LeaseLost(format!(
            "the lease '{}' is held by another node now",
            f.lease
        ))))
    }
}

pub(crate) async fn try_lease(
    c: &mut Conn<'_>,
    name: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 OR leases.holder = $2",
            &[Arg::text(name), Arg::text(holder), Arg::ts(until), Arg::ts(now)],
        )
        .await?;
    Ok(n == 1)
}
