//! Tenant admins and setup links (issue 32): granting tenants, making and revoking links, and
//! redeeming them. Used by the console and `scimd tenant invite` / `scimd admin grant`.

use super::operators::blocking;
use crate::Store;
use crate::access::Access;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditOutcome, AuditedChange};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::operator::{
    Operator, hash_password, normalize_username, random_token, validate_password,
};
use crate::setup_link::{Idp, LinkPurpose, LinkState, NewSetupLink, SetupLink, check_ttl};
use crate::tenant::Tenant;
use crate::token::hash_secret;
use std::sync::Arc;

/// The links a tenant's admin page lists.
pub const LINKS_SHOWN: u32 = 50;

/// A link just made: its secret, shown once (the URL is `/console/setup/{secret}`).
pub struct IssuedLink {
    pub link: SetupLink,
    pub secret: String,
}

/// Why a link cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No link has this secret (mistyped, or from another instance).
    #[error("this setup link is not valid: check that it was copied whole")]
    Unknown,
    #[error("{}", .0.refusal())]
    NotUsable(LinkState),
    #[error(transparent)]
    Core(#[from] CoreError),
}

#[derive(Clone)]
pub struct AccessService {
    store: Arc<dyn Store>,
}

impl AccessService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// A tenant admin of `tenant`'s link (made by `by`), lasting `ttl`.
    pub async fn invite(
        &self,
        tenant: &Tenant,
        idp: Option<Idp>,
        ttl: time::Duration,
        actor: &Actor,
    ) -> CoreResult<IssuedLink> {
        self.issue(tenant, LinkPurpose::Invite, None, idp, ttl, actor)
            .await
    }

    /// A new-password link for the tenant admin `username`, who must administer `tenant`.
    pub async fn reset_link(
        &self,
        tenant: &Tenant,
        username: &str,
        ttl: time::Duration,
        actor: &Actor,
    ) -> CoreResult<IssuedLink> {
        let name = normalize_username(username)?;
        let admin = self
            .store
            .tenant_admins(tenant.id)
            .await?
            .into_iter()
            .find(|(o, _)| o.username == name)
            .ok_or_else(|| {
                CoreError::NotFound(format!("tenant admin '{name}' of '{}'", tenant.slug))
            })?;
        self.issue(
            tenant,
            LinkPurpose::Reset,
            Some(admin.0.id),
            None,
            ttl,
            actor,
        )
        .await
    }

    async fn issue(
        &self,
        tenant: &Tenant,
        purpose: LinkPurpose,
        operator_id: Option<i64>,
        idp: Option<Idp>,
        ttl: time::Duration,
        actor: &Actor,
    ) -> CoreResult<IssuedLink> {
        let ttl = check_ttl(ttl)?;
        let secret = random_token();
        let now = Timestamp::now();
        let new = NewSetupLink {
            token_hash: hash_secret(&secret),
            tenant_id: tenant.id,
            purpose,
            operator_id,
            idp,
            created_by: actor.name.clone(),
            created_at: now,
            expires_at: now + ttl,
        };
        let entry = AuditEntry::new(actor, AuditAction::SetupLinkMade, purpose.as_str()).on(tenant);
        match self
            .store
            .audited(&entry, AuditedChange::InsertSetupLink(new))
            .await?
        {
            AuditOutcome::Link(link) => Ok(IssuedLink { link, secret }),
            other => Err(CoreError::Internal(format!("setup link: {other:?}"))),
        }
    }

    pub async fn links(&self, tenant: &Tenant) -> CoreResult<Vec<SetupLink>> {
        self.store.setup_links(tenant.id, LINKS_SHOWN).await
    }

    /// Revokes a link of `tenant` that can still be used.
    pub async fn revoke(&self, tenant: &Tenant, id: i64, actor: &Actor) -> CoreResult<()> {
        let entry =
            AuditEntry::new(actor, AuditAction::SetupLinkRevoked, format!("link {id}")).on(tenant);
        let change = AuditedChange::RevokeSetupLink {
            tenant_id: tenant.id,
            id,
        };
        if self.store.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!(
                "usable setup link {id} of '{}'",
                tenant.slug
            )))
        }
    }

    /// The link a secret opens, if it can be used now.
    pub async fn open(&self, secret: &str) -> Result<SetupLink, LinkError> {
        if secret.len() > 100 {
            return Err(LinkError::Unknown);
        }
        let link = self
            .store
            .setup_link(&hash_secret(secret))
            .await?
            .ok_or(LinkError::Unknown)?;
        match link.state(Timestamp::now()) {
            LinkState::Usable => Ok(link),
            other => Err(LinkError::NotUsable(other)),
        }
    }

    /// Redeems an invite: the new tenant admin, signed in by the caller.
    pub async fn accept_invite(
        &self,
        secret: &str,
        username: &str,
        password: &str,
        address: Option<String>,
    ) -> Result<Operator, LinkError> {
        let link = self.open(secret).await?;
        if link.purpose != LinkPurpose::Invite {
            return Err(LinkError::Unknown);
        }
        let name = normalize_username(username)?;
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        let change = AuditedChange::RedeemInvite {
            token_hash: hash_secret(secret),
            username: name.clone(),
            hash,
        };
        self.redeem(&link, &name, address, change).await
    }

    /// The link's change and its audit row (the actor: the person who opened it).
    async fn redeem(
        &self,
        link: &SetupLink,
        name: &str,
        address: Option<String>,
        change: AuditedChange,
    ) -> Result<Operator, LinkError> {
        let actor = Actor {
            name: name.to_string(),
            kind: crate::audit::ActorKind::SetupLink,
            address,
        };
        let mut entry = AuditEntry::new(
            &actor,
            AuditAction::SetupLinkUsed,
            format!("link {}: {}", link.id, link.purpose.as_str()),
        );
        entry.tenant_id = Some(link.tenant_id);
        entry.tenant = self
            .store
            .tenants()
            .await?
            .into_iter()
            .find(|t| t.id == link.tenant_id)
            .map(|t| t.slug);
        match self
            .store
            .audited(&entry, change)
            .await
            .map_err(gone_as_used)?
        {
            AuditOutcome::Operator(o) => Ok(o),
            other => Err(LinkError::Core(CoreError::Internal(format!(
                "setup link redeemed: {other:?}"
            )))),
        }
    }

    /// Redeems a reset link: the operator whose password it set.
    pub async fn accept_reset(
        &self,
        secret: &str,
        password: &str,
        address: Option<String>,
    ) -> Result<Operator, LinkError> {
        let link = self.open(secret).await?;
        if link.purpose != LinkPurpose::Reset {
            return Err(LinkError::Unknown);
        }
        validate_password(password)?;
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await?;
        let name = link.operator.clone().unwrap_or_default();
        let change = AuditedChange::RedeemReset {
            token_hash: hash_secret(secret),
            hash,
        };
        self.redeem(&link, &name, address, change).await
    }

    /// Grants (or with `None` takes away) `username`'s access to `tenant`. Only tenant admins
    /// have grants: an instance admin already administers every tenant.
    pub async fn grant(
        &self,
        tenant: &Tenant,
        username: &str,
        access: Option<Access>,
        actor: &Actor,
    ) -> CoreResult<()> {
        let name = normalize_username(username)?;
        let op = self
            .store
            .operator_by_name(&name)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("operator '{name}'")))?;
        if op.role.is_instance() {
            return Err(CoreError::Invalid(format!(
                "'{name}' is an instance admin, who administers every tenant already"
            )));
        }
        let what = format!("{name}: {}", access.map_or("none", Access::as_str));
        let entry = AuditEntry::new(actor, AuditAction::AccessChanged, what).on(tenant);
        let change = AuditedChange::SetGrant {
            operator_id: op.id,
            tenant_id: tenant.id,
            access,
        };
        self.store.audited(&entry, change).await?;
        Ok(())
    }

    pub async fn admins(&self, tenant: &Tenant) -> CoreResult<Vec<(Operator, Access)>> {
        self.store.tenant_admins(tenant.id).await
    }
}

/// A link used (or revoked) between [`AccessService::open`] and the redeeming write: the
/// store says `Gone`, the person is told the link is used.
fn gone_as_used(e: CoreError) -> LinkError {
    match e {
        CoreError::Gone(_) => LinkError::NotUsable(LinkState::Used),
        other => LinkError::Core(other),
    }
}
