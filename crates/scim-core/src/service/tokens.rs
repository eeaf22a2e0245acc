//! Issuing, listing, revoking and rotating bearer tokens: the one code path the CLI, the
//! console and the first start use. Secrets are returned once, here, and never again.

use crate::Store;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditedChange};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::tenant::Tenant;
use crate::token::{IssuedToken, TokenRecord, TokenScopes, generate_secret, issue};
use std::sync::Arc;
use time::Duration;

/// The longest an old secret stays valid after a rotation: long enough to update every IdP,
/// short enough that a leaked secret does not outlive its replacement for good.
pub const MAX_ROTATION_GRACE: Duration = Duration::days(30);

#[derive(Clone)]
pub struct TokenService {
    store: Arc<dyn crate::store::TokenStore>,
    audit: Arc<dyn crate::store::AuditStore>,
}

impl TokenService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store: store.clone(),
            audit: store,
        }
    }

    /// Issues a token and stores it; `expires_in` unset means it never expires.
    pub async fn create(
        &self,
        tenant: &Tenant,
        name: &str,
        scopes: TokenScopes,
        expires_in: Option<Duration>,
        actor: &Actor,
    ) -> CoreResult<IssuedToken> {
        let now = Timestamp::now();
        let issued = issue(tenant.id, name, scopes, expires_in.map(|d| now + d), now)?;
        let target = format!("{} ({})", issued.record.name, issued.record.id);
        let entry = AuditEntry::new(actor, AuditAction::TokenCreated, target).on(tenant);
        self.audit
            .audited(&entry, AuditedChange::InsertToken(issued.record.clone()))
            .await?;
        Ok(issued)
    }

    /// The tenant's tokens (hashes only), oldest first.
    pub async fn list(&self, tenant: &Tenant) -> CoreResult<Vec<TokenRecord>> {
        self.store.tokens(tenant.id).await
    }

    /// Refused credentials at the tenant's URL from `since`'s hour, after this node's
    /// pending counts (`refusals`) are stored (or kept, if they cannot be).
    pub async fn refused(
        &self,
        tenant: &Tenant,
        since: Timestamp,
        refusals: &crate::Refusals,
    ) -> CoreResult<Vec<crate::RefusedCount>> {
        // The stored counts are still worth showing when this node's cannot be stored.
        if let Err(e) = self.flush_refused(refusals).await {
            tracing::warn!(error = %e, "could not store refused-credential counts (kept for the next try)");
        }
        self.store.refused(tenant.id, since).await
    }

    /// Stores this node's pending refused-credential counts; on failure they are kept for
    /// the next try.
    pub async fn flush_refused(&self, refusals: &crate::Refusals) -> CoreResult<()> {
        let counts = refusals.take();
        if let Err(e) = self.store.add_refused(&counts).await {
            refusals.put_back(counts);
            return Err(e);
        }
        Ok(())
    }

    /// Revokes a token; effective on every node within the auth cache's lifetime.
    pub async fn revoke(&self, tenant: &Tenant, id: &str, actor: &Actor) -> CoreResult<()> {
        let entry = AuditEntry::new(
            actor,
            AuditAction::TokenRevoked,
            self.named(tenant, id).await?,
        )
        .on(tenant);
        let change = AuditedChange::RevokeToken {
            tenant_id: tenant.id,
            id: id.to_string(),
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(())
        } else {
            Err(not_found(tenant, id))
        }
    }

    /// Gives a token a new secret (returned, to show once); the previous one keeps working
    /// for `grace`. A revoked or unknown token is `NotFound`.
    pub async fn rotate(
        &self,
        tenant: &Tenant,
        id: &str,
        grace: Duration,
        actor: &Actor,
    ) -> CoreResult<String> {
        if grace > MAX_ROTATION_GRACE || grace.is_negative() {
            return Err(CoreError::Invalid(format!(
                "the grace period is at most {} days",
                MAX_ROTATION_GRACE.whole_days()
            )));
        }
        let (secret, hash, prefix) = generate_secret();
        let grace_until = Timestamp::now() + grace;
        let entry = AuditEntry::new(
            actor,
            AuditAction::TokenRotated,
            self.named(tenant, id).await?,
        )
        .on(tenant);
        let change = AuditedChange::RotateToken {
            tenant_id: tenant.id,
            id: id.to_string(),
            hash,
            prefix,
            previous_until: grace_until,
        };
        if self.audit.audited(&entry, change).await?.done() {
            Ok(secret)
        } else {
            Err(not_found(tenant, id))
        }
    }
}

impl TokenService {
    /// `name (id)` of a token of the tenant, for the audit log (the id alone if unknown).
    async fn named(&self, tenant: &Tenant, id: &str) -> CoreResult<String> {
        let id = scim_proto::error::excerpt(id);
        Ok(
            match self.list(tenant).await?.into_iter().find(|t| t.id == id) {
                Some(t) => format!("{} ({id})", t.name),
                None => id.to_string(),
            },
        )
    }
}

fn not_found(tenant: &Tenant, id: &str) -> CoreError {
    CoreError::NotFound(format!(
        "active token '{}' in tenant '{}'",
        scim_proto::error::excerpt(id),
        tenant.slug
    ))
}
