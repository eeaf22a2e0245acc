//! Issuing, listing, revoking and rotating bearer tokens: the one code path the CLI, the
//! console and the first start use. Secrets are returned once, here, and never again.

use crate::Store;
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
}

impl TokenService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Issues a token and stores it; `expires_in` unset means it never expires.
    pub async fn create(
        &self,
        tenant: &Tenant,
        name: &str,
        scopes: TokenScopes,
        expires_in: Option<Duration>,
    ) -> CoreResult<IssuedToken> {
        let now = Timestamp::now();
        let issued = issue(tenant.id, name, scopes, expires_in.map(|d| now + d), now)?;
        self.store.insert_token(&issued.record).await?;
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
    pub async fn revoke(&self, tenant: &Tenant, id: &str) -> CoreResult<()> {
        if self
            .store
            .revoke_token(tenant.id, id, Timestamp::now())
            .await?
        {
            Ok(())
        } else {
            Err(not_found(tenant, id))
        }
    }

    /// Gives a token a new secret (returned, to show once); the previous one keeps working
    /// for `grace`. A revoked or unknown token is `NotFound`.
    pub async fn rotate(&self, tenant: &Tenant, id: &str, grace: Duration) -> CoreResult<String> {
        if grace > MAX_ROTATION_GRACE || grace.is_negative() {
            return Err(CoreError::Invalid(format!(
                "the grace period is at most {} days",
                MAX_ROTATION_GRACE.whole_days()
            )));
        }
        let (secret, hash, prefix) = generate_secret();
        let grace_until = Timestamp::now() + grace;
        if self
            .store
            .rotate_token(tenant.id, id, &hash, &prefix, grace_until)
            .await?
        {
            Ok(secret)
        } else {
            Err(not_found(tenant, id))
        }
    }
}

fn not_found(tenant: &Tenant, id: &str) -> CoreError {
    CoreError::NotFound(format!(
        "active token '{}' in tenant '{}'",
        scim_proto::error::excerpt(id),
        tenant.slug
    ))
}
