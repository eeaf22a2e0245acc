//! Leases (one holder at a time per name, for a while: the sweeper, webhook delivery, a
//! sync job's cycle) and the fence that refuses a former holder's writes.

use crate::conn::Conn;
use crate::sql_filter::Arg;
use crate::{SqlStore, StoreError};
use async_trait::async_trait;
use scim_core::store::{LeaseFence, LeaseHolder, LeaseStore};
use scim_core::{CoreError, CoreResult, Timestamp};

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

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> CoreResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(job!(|c| try_lease(c, &name, &holder, now, until)))
            .await
    }

    async fn lease(&self, name: &str) -> CoreResult<Option<LeaseHolder>> {
        let name = name.to_string();
        self.read(job!(|c| holder_of(c, &name))).await
    }
}

async fn holder_of(c: &mut Conn<'_>, name: &str) -> Result<Option<LeaseHolder>, StoreError> {
    c.fetch_optional(
        "SELECT holder, expires_at FROM leases WHERE name = $1",
        &[Arg::text(name)],
    )
    .await?
    .map(|row| {
        Ok(LeaseHolder {
            holder: row.text(0)?,
            expires_at: row.ts(1)?,
        })
    })
    .transpose()
}
