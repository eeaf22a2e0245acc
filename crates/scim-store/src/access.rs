//! Tenant admins' grants and setup links (`scim_core::access`, `scim_core::setup_link`). Only
//! the SHA-256 of a link's secret is stored; redeeming a link is one transaction with what it
//! does (the new tenant admin and their grant, or the new password).

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::operators::{self, COLUMNS as OPERATOR_COLUMNS, access_from};
use crate::sql_filter::Arg;
use async_trait::async_trait;
use scim_core::access::Access;
use scim_core::setup_link::{Idp, LinkPurpose, NewSetupLink, SetupLink};
use scim_core::store::AccessStore;
use scim_core::{CoreError, CoreResult, Operator, Timestamp};

pub(crate) async fn set_grant(
    c: &mut Conn<'_>,
    operator_id: i64,
    tenant_id: i64,
    access: Option<Access>,
) -> Result<bool, StoreError> {
    let kind = c
        .fetch_optional(
            "SELECT kind FROM operators WHERE id = $1",
            &[Arg::Int(operator_id)],
        )
        .await?;
    if kind.map(|r| r.text(0)).transpose()?.as_deref() != Some("tenant") {
        return Ok(false);
    }
    let key = [Arg::Int(operator_id), Arg::Int(tenant_id)];
    let n = match access {
        // One statement, so two admins saving at once cannot collide on the key; `false`
        // when the access was already this (nothing to record).
        Some(a) => {
            c.exec(
                "INSERT INTO operator_grants (operator_id, tenant_id, access) VALUES ($1, $2, $3) \
                 ON CONFLICT (operator_id, tenant_id) DO UPDATE SET access = excluded.access \
                 WHERE operator_grants.access <> excluded.access",
                &[key[0].clone(), key[1].clone(), Arg::text(a.as_str())],
            )
            .await?
        }
        None => {
            c.exec(
                "DELETE FROM operator_grants WHERE operator_id = $1 AND tenant_id = $2",
                &key,
            )
            .await?
        }
    };
    Ok(n > 0)
}

async fn tenant_admins(
    c: &mut Conn<'_>,
    tenant_id: i64,
) -> Result<Vec<(Operator, Access)>, StoreError> {
    let cols = OPERATOR_COLUMNS
        .split(", ")
        .map(|col| format!("o.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = c
        .fetch(
            &format!(
                "SELECT {cols}, g.access FROM operator_grants g \
                 JOIN operators o ON o.id = g.operator_id WHERE g.tenant_id = $1 \
                 ORDER BY o.username"
            ),
            &[Arg::Int(tenant_id)],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let op = operators::with_grants(c, operators::operator_from(r, 0)?).await?;
        out.push((op, access_from(&r.text(9)?)?));
    }
    Ok(out)
}

const LINK_COLUMNS: &str = "l.id, l.tenant_id, l.purpose, o.username, l.idp, l.created_by, \
     l.created_at, l.expires_at, l.used_at, l.used_by, l.revoked_at";
const LINK_FROM: &str = "setup_links l LEFT JOIN operators o ON o.id = l.operator_id";

fn link_from(r: &Row) -> Result<SetupLink, StoreError> {
    let purpose = r.text(2)?;
    let idp = r.opt_text(4)?;
    Ok(SetupLink {
        id: r.int(0)?,
        tenant_id: r.int(1)?,
        purpose: LinkPurpose::parse(&purpose)
            .ok_or_else(|| StoreError::Corrupt(format!("setup link purpose '{purpose}'")))?,
        operator: r.opt_text(3)?,
        idp: idp.as_deref().and_then(Idp::parse),
        created_by: r.text(5)?,
        created_at: r.ts(6)?,
        expires_at: r.ts(7)?,
        used_at: r.opt_ts(8)?,
        used_by: r.opt_text(9)?,
        revoked_at: r.opt_ts(10)?,
    })
}

pub(crate) async fn insert_link(
    c: &mut Conn<'_>,
    l: &NewSetupLink,
) -> Result<SetupLink, StoreError> {
    let id = c
        .fetch_one(
            "INSERT INTO setup_links (token_hash, tenant_id, purpose, operator_id, idp, \
             created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id",
            &[
                Arg::text(&l.token_hash),
                Arg::Int(l.tenant_id),
                Arg::text(l.purpose.as_str()),
                Arg::opt_int(l.operator_id),
                Arg::opt_text(l.idp.map(Idp::as_str)),
                Arg::text(&l.created_by),
                Arg::ts(l.created_at),
                Arg::ts(l.expires_at),
            ],
        )
        .await?
        .int(0)?;
    let row = c
        .fetch_one(
            &format!("SELECT {LINK_COLUMNS} FROM {LINK_FROM} WHERE l.id = $1"),
            &[Arg::Int(id)],
        )
        .await?;
    link_from(&row)
}

async fn links(c: &mut Conn<'_>, tenant_id: i64, limit: u32) -> Result<Vec<SetupLink>, StoreError> {
    c.fetch(
        &format!(
            "SELECT {LINK_COLUMNS} FROM {LINK_FROM} WHERE l.tenant_id = $1 \
             ORDER BY l.created_at DESC, l.id DESC LIMIT $2"
        ),
        &[Arg::Int(tenant_id), Arg::Int(i64::from(limit))],
    )
    .await?
    .iter()
    .map(link_from)
    .collect()
}

async fn link_by_hash(c: &mut Conn<'_>, hash: &str) -> Result<Option<SetupLink>, StoreError> {
    c.fetch_optional(
        &format!("SELECT {LINK_COLUMNS} FROM {LINK_FROM} WHERE l.token_hash = $1"),
        &[Arg::text(hash)],
    )
    .await?
    .as_ref()
    .map(link_from)
    .transpose()
}

pub(crate) async fn revoke(
    c: &mut Conn<'_>,
    tenant_id: i64,
    id: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE setup_links SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
            &[Arg::Int(id), Arg::Int(tenant_id), Arg::ts(now)],
        )
        .await?;
    Ok(n > 0)
}

/// Marks the usable link of `purpose` used by `who`; its tenant and operator, or `Gone`.
async fn claim(
    c: &mut Conn<'_>,
    hash: &str,
    purpose: LinkPurpose,
    who: &str,
    now: Timestamp,
) -> Result<(i64, Option<i64>), StoreError> {
    let row = c
        .fetch_optional(
            "UPDATE setup_links SET used_at = $3, used_by = $4 WHERE token_hash = $1 \
             AND purpose = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3 \
             RETURNING tenant_id, operator_id",
            &[
                Arg::text(hash),
                Arg::text(purpose.as_str()),
                Arg::ts(now),
                Arg::text(who),
            ],
        )
        .await?
        .ok_or_else(|| {
            StoreError::Domain(CoreError::Gone("this setup link cannot be used".into()))
        })?;
    Ok((row.int(0)?, row.opt_int(1)?))
}

pub(crate) async fn redeem_invite(
    c: &mut Conn<'_>,
    hash: &str,
    username: &str,
    pw_hash: &str,
    now: Timestamp,
) -> Result<Operator, StoreError> {
    let (tenant_id, _) = claim(c, hash, LinkPurpose::Invite, username, now).await?;
    let op = operators::insert(c, username, pw_hash, now, "tenant").await?;
    set_grant(c, op.id, tenant_id, Some(Access::Admin)).await?;
    operators::with_grants(c, op).await
}

pub(crate) async fn redeem_reset(
    c: &mut Conn<'_>,
    hash: &str,
    pw_hash: &str,
    now: Timestamp,
) -> Result<Operator, StoreError> {
    let Some(row) = c
        .fetch_optional(
            "SELECT o.username FROM setup_links l JOIN operators o ON o.id = l.operator_id \
             WHERE l.token_hash = $1",
            &[Arg::text(hash)],
        )
        .await?
    else {
        return Err(StoreError::Domain(CoreError::Gone(
            "this setup link cannot be used".into(),
        )));
    };
    let username = row.text(0)?;
    let (tenant_id, operator_id) = claim(c, hash, LinkPurpose::Reset, &username, now).await?;
    // The link was made for an admin of its tenant: one whose access was taken away since
    // cannot use it.
    let granted = c
        .fetch_optional(
            "SELECT 1 FROM operator_grants WHERE operator_id = $1 AND tenant_id = $2",
            &[Arg::opt_int(operator_id), Arg::Int(tenant_id)],
        )
        .await?;
    if granted.is_none() {
        return Err(StoreError::Domain(CoreError::Gone(
            "this setup link cannot be used".into(),
        )));
    }
    operators::set_password(c, &username, pw_hash).await?;
    operators::by_name(c, &username)
        .await?
        .ok_or_else(|| StoreError::Internal(format!("operator '{username}' vanished")))
}

#[async_trait]
impl AccessStore for SqlStore {
    async fn set_grant(
        &self,
        operator_id: i64,
        tenant_id: i64,
        access: Option<Access>,
    ) -> CoreResult<bool> {
        self.write(job!(|c| set_grant(c, operator_id, tenant_id, access)))
            .await
    }
    async fn tenant_admins(&self, tenant_id: i64) -> CoreResult<Vec<(Operator, Access)>> {
        self.read(job!(|c| tenant_admins(c, tenant_id))).await
    }
    async fn insert_setup_link(&self, link: &NewSetupLink) -> CoreResult<SetupLink> {
        let l = link.clone();
        self.write(job!(|c| insert_link(c, &l))).await
    }
    async fn setup_links(&self, tenant_id: i64, limit: u32) -> CoreResult<Vec<SetupLink>> {
        self.read(job!(|c| links(c, tenant_id, limit))).await
    }
    async fn setup_link(&self, token_hash: &str) -> CoreResult<Option<SetupLink>> {
        let h = token_hash.to_string();
        self.read(job!(|c| link_by_hash(c, &h))).await
    }
    async fn revoke_setup_link(&self, tenant_id: i64, id: i64, now: Timestamp) -> CoreResult<bool> {
        self.write(job!(|c| revoke(c, tenant_id, id, now))).await
    }
    async fn redeem_invite(
        &self,
        token_hash: &str,
        username: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator> {
        let (t, u, h) = (
            token_hash.to_string(),
            username.to_string(),
            hash.to_string(),
        );
        self.write(job!(|c| redeem_invite(c, &t, &u, &h, now)))
            .await
    }
    async fn redeem_reset(
        &self,
        token_hash: &str,
        hash: &str,
        now: Timestamp,
    ) -> CoreResult<Operator> {
        let (t, h) = (token_hash.to_string(), hash.to_string());
        self.write(job!(|c| redeem_reset(c, &t, &h, now))).await
    }
}
