//! Webhook endpoint and delivery rows. Secrets are stored sealed (scim-core's `sealing`).

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::leases::check_fence;
use crate::sql_filter::Arg;
use async_trait::async_trait;
use scim_core::CoreResult;
use scim_core::store::WebhookStore;
use scim_core::webhook::{EndpointProgress, WebhookDelivery, WebhookEndpoint};
use scim_core::{LeaseFence, Timestamp};

const COLUMNS: &str = "id, tenant_id, url, types, description, sealed_secret, sealed_previous, \
                       previous_until, secret_prefix, created_at, enabled, disabled_reason, cursor, \
                       failing_since, attempts, next_attempt_at";

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, sequence, event_type, attempt, at, \
                                status, latency_ms, error, response";

fn endpoint_from(r: &Row) -> Result<WebhookEndpoint, StoreError> {
    Ok(WebhookEndpoint {
        id: r.text(0)?,
        tenant_id: r.int(1)?,
        url: r.text(2)?,
        types: r.text(3)?,
        description: r.text(4)?,
        sealed_secret: r.text(5)?,
        sealed_previous: r.opt_text(6)?,
        previous_until: r.opt_ts(7)?,
        secret_prefix: r.text(8)?,
        created_at: r.ts(9)?,
        enabled: r.int(10)? != 0,
        disabled_reason: r.opt_text(11)?,
        cursor: r.int(12)?,
        failing_since: r.opt_ts(13)?,
        attempts: r.int(14)?,
        next_attempt_at: r.opt_ts(15)?,
    })
}

fn delivery_from(r: &Row) -> Result<WebhookDelivery, StoreError> {
    let status = r.opt_int(7)?;
    Ok(WebhookDelivery {
        id: r.int(0)?,
        endpoint_id: r.text(1)?,
        event_id: r.text(2)?,
        sequence: r.opt_int(3)?,
        event_type: r.text(4)?,
        attempt: r.int(5)?,
        at: r.ts(6)?,
        status: status
            .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("status {s}"))))
            .transpose()?,
        latency_ms: r.int(8)?,
        error: r.opt_text(9)?,
        response: r.opt_text(10)?,
    })
}

pub(crate) async fn insert(c: &mut Conn<'_>, e: &WebhookEndpoint) -> Result<(), StoreError> {
    c.exec(
        &format!(
            "INSERT INTO webhook_endpoints ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ),
        &[
            Arg::text(&e.id),
            Arg::Int(e.tenant_id),
            Arg::text(&e.url),
            Arg::text(&e.types),
            Arg::text(&e.description),
            Arg::text(&e.sealed_secret),
            Arg::opt_text(e.sealed_previous.as_deref()),
            Arg::opt_ts(e.previous_until),
            Arg::text(&e.secret_prefix),
            Arg::ts(e.created_at),
            Arg::Int(i64::from(e.enabled)),
            Arg::opt_text(e.disabled_reason.as_deref()),
            Arg::Int(e.cursor),
            Arg::opt_ts(e.failing_since),
            Arg::Int(e.attempts),
            Arg::opt_ts(e.next_attempt_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn of_tenant(
    c: &mut Conn<'_>,
    tenant_id: i64,
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    c.fetch(
        &format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id"
        ),
        &[Arg::Int(tenant_id)],
    )
    .await?
    .iter()
    .map(endpoint_from)
    .collect()
}

pub(crate) async fn one(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    c.fetch_optional(
        &format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"),
        &[Arg::Int(tenant_id), Arg::text(id)],
    )
    .await?
    .as_ref()
    .map(endpoint_from)
    .transpose()
}

pub(crate) async fn due(
    c: &mut Conn<'_>,
    now: Timestamp,
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    c.fetch(
        &format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE enabled = 1 \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $1) ORDER BY tenant_id, id"
        ),
        &[Arg::ts(now)],
    )
    .await?
    .iter()
    .map(endpoint_from)
    .collect()
}

pub(crate) async fn set_enabled(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
    enabled: bool,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let sql = if enabled {
        "UPDATE webhook_endpoints SET enabled = 1, disabled_reason = NULL, failing_since = NULL, \
         attempts = 0, next_attempt_at = NULL WHERE tenant_id = $1 AND id = $2"
    } else {
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $3 WHERE tenant_id = $1 AND id = $2"
    };
    let mut args = vec![Arg::Int(tenant_id), Arg::text(id)];
    if !enabled {
        args.push(Arg::opt_text(reason));
    }
    Ok(c.exec(sql, &args).await? == 1)
}

pub(crate) async fn reset_cursor(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
    cursor: i64,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "UPDATE webhook_endpoints SET cursor = $3, enabled = 1, disabled_reason = NULL, \
             failing_since = NULL, attempts = 0, next_attempt_at = NULL \
             WHERE tenant_id = $1 AND id = $2",
        &[Arg::Int(tenant_id), Arg::text(id), Arg::Int(cursor)],
    )
    .await?
        == 1)
}

pub(crate) async fn rotate_secret(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
    sealed: &str,
    prefix: &str,
    previous_until: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "UPDATE webhook_endpoints SET sealed_previous = sealed_secret, previous_until = $5, \
             sealed_secret = $3, secret_prefix = $4 WHERE tenant_id = $1 AND id = $2",
        &[
            Arg::Int(tenant_id),
            Arg::text(id),
            Arg::text(sealed),
            Arg::text(prefix),
            Arg::ts(previous_until),
        ],
    )
    .await?
        == 1)
}

pub(crate) async fn delete(c: &mut Conn<'_>, tenant_id: i64, id: &str) -> Result<bool, StoreError> {
    c.exec(
        "DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2",
        &[Arg::Int(tenant_id), Arg::text(id)],
    )
    .await?;
    Ok(c.exec(
        "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        &[Arg::Int(tenant_id), Arg::text(id)],
    )
    .await?
        == 1)
}

pub(crate) async fn record(
    c: &mut Conn<'_>,
    fence: Option<&LeaseFence>,
    tenant_id: i64,
    endpoint_id: &str,
    expected: i64,
    deliveries: &[WebhookDelivery],
    progress: Option<&EndpointProgress>,
) -> Result<bool, StoreError> {
    check_fence(c, fence).await?;
    for d in deliveries {
        c.exec(
            "INSERT INTO webhook_deliveries (endpoint_id, tenant_id, event_id, sequence, event_type, \
             attempt, at, status, latency_ms, error, response) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE tenant_id = $2 AND id = $1)",
            &[
                Arg::text(endpoint_id),
                Arg::Int(tenant_id),
                Arg::text(&d.event_id),
                Arg::opt_int(d.sequence),
                Arg::text(&d.event_type),
                Arg::Int(d.attempt),
                Arg::ts(d.at),
                Arg::opt_int(d.status.map(i64::from)),
                Arg::Int(d.latency_ms),
                Arg::opt_text(d.error.as_deref()),
                Arg::opt_text(d.response.as_deref()),
            ],
        )
        .await?;
    }
    let Some(p) = progress else {
        return Ok(false);
    };
    let n = c
        .exec(
            "UPDATE webhook_endpoints SET cursor = $4, attempts = $5, failing_since = $6, \
             next_attempt_at = $7, \
             enabled = CASE WHEN $8 = 1 THEN 0 ELSE enabled END, \
             disabled_reason = CASE WHEN $8 = 1 THEN $9 ELSE disabled_reason END \
             WHERE tenant_id = $1 AND id = $2 AND cursor = $3 AND enabled = 1",
            &[
                Arg::Int(tenant_id),
                Arg::text(endpoint_id),
                Arg::Int(expected),
                Arg::Int(p.cursor),
                Arg::Int(p.attempts),
                Arg::opt_ts(p.failing_since),
                Arg::opt_ts(p.next_attempt_at),
                Arg::Int(i64::from(p.disable.is_some())),
                Arg::opt_text(p.disable.as_deref()),
            ],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn deliveries(
    c: &mut Conn<'_>,
    tenant_id: i64,
    endpoint_id: &str,
    limit: u32,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    c.fetch(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2 \
             ORDER BY id DESC LIMIT {limit}"
        ),
        &[Arg::Int(tenant_id), Arg::text(endpoint_id)],
    )
    .await?
    .iter()
    .map(delivery_from)
    .collect()
}

pub(crate) async fn sweep(
    c: &mut Conn<'_>,
    before: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    crate::events::sweep_older(c, "webhook_deliveries", "id", "", before, batch).await
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_endpoint(&self, ep: &WebhookEndpoint) -> CoreResult<()> {
        let ep = ep.clone();
        self.write(job!(|c| insert(c, &ep))).await
    }
    async fn endpoints(&self, tenant_id: i64) -> CoreResult<Vec<WebhookEndpoint>> {
        self.read(job!(|c| of_tenant(c, tenant_id))).await
    }
    async fn endpoint(&self, tenant_id: i64, id: &str) -> CoreResult<Option<WebhookEndpoint>> {
        let id = id.to_string();
        self.read(job!(|c| one(c, tenant_id, &id))).await
    }
    async fn due_endpoints(&self, now: Timestamp) -> CoreResult<Vec<WebhookEndpoint>> {
        self.read(job!(|c| due(c, now))).await
    }
    async fn set_endpoint_enabled(
        &self,
        tenant_id: i64,
        id: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> CoreResult<bool> {
        let (id, reason) = (id.to_string(), reason.map(str::to_string));
        self.write(job!(|c| set_enabled(
            c,
            tenant_id,
            &id,
            enabled,
            reason.as_deref()
        )))
        .await
    }
    async fn reset_endpoint_cursor(
        &self,
        tenant_id: i64,
        id: &str,
        cursor: i64,
    ) -> CoreResult<bool> {
        let id = id.to_string();
        self.write(job!(|c| reset_cursor(c, tenant_id, &id, cursor)))
            .await
    }
    async fn rotate_endpoint_secret(
        &self,
        tenant_id: i64,
        id: &str,
        sealed: &str,
        prefix: &str,
        previous_until: Timestamp,
    ) -> CoreResult<bool> {
        let (id, sealed, prefix) = (id.to_string(), sealed.to_string(), prefix.to_string());
        self.write(job!(|c| rotate_secret(
            c,
            tenant_id,
            &id,
            &sealed,
            &prefix,
            previous_until
        )))
        .await
    }
    async fn delete_endpoint(&self, tenant_id: i64, id: &str) -> CoreResult<bool> {
        let id = id.to_string();
        self.write(job!(|c| delete(c, tenant_id, &id))).await
    }
    async fn record_delivery(
        &self,
        fence: Option<&LeaseFence>,
        tenant_id: i64,
        endpoint_id: &str,
        expected: i64,
        deliveries: &[WebhookDelivery],
        progress: Option<&EndpointProgress>,
    ) -> CoreResult<bool> {
        let (fence, id) = (fence.cloned(), endpoint_id.to_string());
        let (deliveries, progress) = (deliveries.to_vec(), progress.cloned());
        self.write(job!(|c| record(
            c,
            fence.as_ref(),
            tenant_id,
            &id,
            expected,
            &deliveries,
            progress.as_ref()
        )))
        .await
    }
    async fn deliveries(
        &self,
        tenant_id: i64,
        endpoint_id: &str,
        limit: u32,
    ) -> CoreResult<Vec<WebhookDelivery>> {
        let id = endpoint_id.to_string();
        self.read(job!(|c| deliveries(c, tenant_id, &id, limit)))
            .await
    }
    async fn sweep_deliveries(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        self.write(job!(|c| sweep(c, before, batch))).await
    }
}
