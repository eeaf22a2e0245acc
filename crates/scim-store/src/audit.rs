//! The audit log (`scim_core::audit`): a person's change and its row in one transaction
//! ([`AuditStore::audited`] runs the same statements as the unaudited store methods, then
//! inserts the row, inside one write); reading with filters; the retention sweep.

use crate::SqlStore;
use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::{Arg, SqlBuf};
use crate::{access, events, operators, tenants, tokens, webhooks};
use async_trait::async_trait;
use scim_core::audit::{
    Actor, ActorKind, AuditAction, AuditActionName, AuditEntry, AuditOutcome, AuditQuery,
    AuditRecord, AuditedChange, MAX_AUDIT_PAGE,
};
use scim_core::store::AuditStore;
use scim_core::{CoreResult, Timestamp};

fn kind_str(k: ActorKind) -> &'static str {
    match k {
        ActorKind::InstanceAdmin => "instance_admin",
        ActorKind::TenantAdmin => "tenant_admin",
        ActorKind::SetupLink => "setup_link",
        ActorKind::Cli => "cli",
        ActorKind::Server => "server",
    }
}

fn kind_from(s: &str) -> Result<ActorKind, StoreError> {
    Ok(match s {
        "instance_admin" => ActorKind::InstanceAdmin,
        "tenant_admin" => ActorKind::TenantAdmin,
        "setup_link" => ActorKind::SetupLink,
        "cli" => ActorKind::Cli,
        "server" => ActorKind::Server,
        other => return Err(StoreError::Corrupt(format!("audit actor kind '{other}'"))),
    })
}

async fn insert(c: &mut Conn<'_>, e: &AuditEntry) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO audit_log (at, actor, actor_kind, address, tenant_id, tenant, action, target) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            Arg::ts(e.at),
            Arg::text(&e.actor.name),
            Arg::text(kind_str(e.actor.kind)),
            Arg::opt_text(e.actor.address.as_deref()),
            Arg::opt_int(e.tenant_id),
            Arg::opt_text(e.tenant.as_deref()),
            Arg::text(e.action.0.as_str()),
            Arg::text(&e.target),
        ],
    )
    .await?;
    Ok(())
}

/// The change itself: the same statements as the store's unaudited methods.
async fn apply(
    c: &mut Conn<'_>,
    at: Timestamp,
    change: AuditedChange,
) -> Result<AuditOutcome, StoreError> {
    use AuditedChange as C;
    Ok(match change {
        C::CreateTenant { slug, name } => {
            AuditOutcome::Tenant(tenants::create(c, &slug, &name, at).await?)
        }
        C::DeleteTenant { slug } => AuditOutcome::Done(tenants::delete(c, &slug).await?),
        C::InsertToken(t) => {
            tokens::insert(c, &t).await?;
            AuditOutcome::Done(true)
        }
        C::RevokeToken { tenant_id, id } => {
            AuditOutcome::Done(tokens::revoke(c, tenant_id, &id, at).await?)
        }
        C::RotateToken {
            tenant_id,
            id,
            hash,
            prefix,
            previous_until,
        } => AuditOutcome::Done(
            tokens::rotate(c, tenant_id, &id, &hash, &prefix, previous_until).await?,
        ),
        C::InsertEndpoint(ep) => {
            webhooks::insert(c, &ep).await?;
            AuditOutcome::Done(true)
        }
        C::SetEndpointEnabled {
            tenant_id,
            id,
            enabled,
            reason,
        } => AuditOutcome::Done(
            webhooks::set_enabled(c, tenant_id, &id, enabled, reason.as_deref()).await?,
        ),
        C::ResetEndpointCursor {
            tenant_id,
            id,
            cursor,
        } => AuditOutcome::Done(webhooks::reset_cursor(c, tenant_id, &id, cursor).await?),
        C::RotateEndpointSecret {
            tenant_id,
            id,
            sealed,
            prefix,
            previous_until,
        } => AuditOutcome::Done(
            webhooks::rotate_secret(c, tenant_id, &id, &sealed, &prefix, previous_until).await?,
        ),
        C::DeleteEndpoint { tenant_id, id } => {
            AuditOutcome::Done(webhooks::delete(c, tenant_id, &id).await?)
        }
        C::InsertSetupLink(l) => AuditOutcome::Link(access::insert_link(c, &l).await?),
        C::RevokeSetupLink { tenant_id, id } => {
            AuditOutcome::Done(access::revoke(c, tenant_id, id, at).await?)
        }
        C::RedeemInvite {
            token_hash,
            username,
            hash,
        } => AuditOutcome::Operator(
            access::redeem_invite(c, &token_hash, &username, &hash, at).await?,
        ),
        C::RedeemReset { token_hash, hash } => {
            AuditOutcome::Operator(access::redeem_reset(c, &token_hash, &hash, at).await?)
        }
        C::SetGrant {
            operator_id,
            tenant_id,
            access: a,
        } => AuditOutcome::Done(access::set_grant(c, operator_id, tenant_id, a).await?),
        C::CreateOperator { username, hash } => {
            AuditOutcome::Operator(operators::insert(c, &username, &hash, at, "instance").await?)
        }
        C::DeleteOperator { username } => {
            AuditOutcome::Done(operators::delete(c, &username).await?)
        }
        C::SetPassword { username, hash } => {
            AuditOutcome::Done(operators::set_password(c, &username, &hash).await?)
        }
        C::SetSecondFactor {
            operator_id,
            sealed,
            recovery_hashes,
        } => AuditOutcome::Done(
            operators::set_second_factor(c, operator_id, sealed.as_deref(), &recovery_hashes)
                .await?,
        ),
    })
}

/// Whether the change did something worth a row (a revocation of nothing is no action).
fn happened(o: &AuditOutcome) -> bool {
    !matches!(o, AuditOutcome::Done(false))
}

async fn audited(
    c: &mut Conn<'_>,
    entry: &AuditEntry,
    change: AuditedChange,
) -> Result<AuditOutcome, StoreError> {
    let out = apply(c, entry.at, change).await?;
    if happened(&out) {
        let mut entry = entry.clone();
        // A tenant just made: its row carries its id, so a filter by tenant finds it.
        if let AuditOutcome::Tenant(t) = &out {
            entry.tenant_id = Some(t.id);
        }
        insert(c, &entry).await?;
    }
    Ok(out)
}

const COLUMNS: &str = "id, at, actor, actor_kind, address, tenant_id, tenant, action, target";

fn record_from(r: &Row) -> Result<AuditRecord, StoreError> {
    let action = r.text(7)?;
    Ok(AuditRecord {
        id: r.int(0)?,
        entry: AuditEntry {
            at: r.ts(1)?,
            actor: Actor {
                name: r.text(2)?,
                kind: kind_from(&r.text(3)?)?,
                address: r.opt_text(4)?,
            },
            tenant_id: r.opt_int(5)?,
            tenant: r.opt_text(6)?,
            action: AuditActionName(
                AuditAction::parse(&action)
                    .ok_or_else(|| StoreError::Corrupt(format!("audit action '{action}'")))?,
            ),
            target: r.text(8)?,
        },
    })
}

async fn read(c: &mut Conn<'_>, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let mut b = SqlBuf::default();
    let mut wh = vec!["1 = 1".to_string()];
    if let Some(ids) = &q.tenant_ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(|i| b.bind(Arg::Int(*i))).collect();
        wh.push(format!("tenant_id IN ({})", list.join(", ")));
    }
    if let Some(t) = q.tenant_id {
        wh.push(format!("tenant_id = {}", b.bind(Arg::Int(t))));
    }
    if let Some(a) = &q.actor {
        wh.push(format!("actor = {}", b.bind(Arg::text(a))));
    }
    if let Some(a) = q.action {
        wh.push(format!("action = {}", b.bind(Arg::text(a.as_str()))));
    }
    if let Some(t) = q.since {
        wh.push(format!("at >= {}", b.bind(Arg::ts(t))));
    }
    if let Some(t) = q.until {
        wh.push(format!("at < {}", b.bind(Arg::ts(t))));
    }
    if let Some(id) = q.before_id {
        wh.push(format!("id < {}", b.bind(Arg::Int(id))));
    }
    let limit = b.bind(Arg::Int(i64::from(q.limit.clamp(1, MAX_AUDIT_PAGE))));
    b.sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY id DESC LIMIT {limit}",
        wh.join(" AND ")
    );
    c.fetch(&b.sql, &b.args)
        .await?
        .iter()
        .map(record_from)
        .collect()
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn audited(&self, entry: &AuditEntry, change: AuditedChange) -> CoreResult<AuditOutcome> {
        if matches!(change, AuditedChange::DeleteTenant { .. })
            && let Some(e) = self.sqlite()
        {
            e.forget_counts();
        }
        let e = entry.clone();
        self.write(job!(|c| audited(c, &e, change))).await
    }
    async fn record_audit(&self, entry: &AuditEntry) -> CoreResult<()> {
        let e = entry.clone();
        self.write(job!(|c| insert(c, &e))).await
    }
    async fn audit_log(&self, q: &AuditQuery) -> CoreResult<Vec<AuditRecord>> {
        let q = q.clone();
        self.read(job!(|c| read(c, &q))).await
    }
    async fn sweep_audit(&self, before: Timestamp, batch: u32) -> CoreResult<u64> {
        self.write(job!(|c| events::sweep_older(
            c,
            "audit_log",
            "id",
            "",
            before,
            batch
        )))
        .await
    }
}
