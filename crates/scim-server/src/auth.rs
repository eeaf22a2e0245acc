//! Bearer-token authentication and tenancy for the SCIM routes.
//!
//! The token is looked up by the SHA-256 of the presented secret and must belong to the
//! tenant named in the URL: a token used on another tenant's URL gets the same 401 as an
//! unknown token, so responses never reveal that another tenant exists. Lookups are cached
//! per node for [`TOKEN_CACHE_TTL`] (moka, bounded): a revocation takes effect on every node
//! within that time.

use crate::AppState;
use crate::error::AppError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use moka::sync::Cache;
use scim_core::token::{TokenRejection, hash_secret};
use scim_core::{CoreResult, Endpoint, Refusal, RequestContext, Tenant, Timestamp, TokenRecord};
use std::time::Duration;

/// How long a node trusts a cached token or tenant lookup.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// `last_used_at` is written at most this often per token.
const TOUCH_INTERVAL: time::Duration = time::Duration::minutes(1);
/// Entries each cache holds at most (least recently used go first).
const CACHE_CAPACITY: u64 = 100_000;

/// Per-node caches of token and tenant lookups (misses are cached too).
pub struct AuthCache {
    tokens: Cache<String, Option<TokenRecord>>,
    tenants: Cache<String, Option<Tenant>>,
}

impl Default for AuthCache {
    fn default() -> Self {
        fn cache<V: Clone + Send + Sync + 'static>() -> Cache<String, V> {
            Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(TOKEN_CACHE_TTL)
                .build()
        }
        Self {
            tokens: cache(),
            tenants: cache(),
        }
    }
}

impl AuthCache {
    /// The token with this secret hash, through the cache.
    pub async fn token(&self, state: &AppState, hash: &str) -> CoreResult<Option<TokenRecord>> {
        if let Some(r) = self.tokens.get(hash) {
            return Ok(r);
        }
        let r = state.services.store.token_by_hash(hash).await?;
        self.tokens.insert(hash.to_string(), r.clone());
        Ok(r)
    }

    /// The tenant with this slug, through the cache.
    pub async fn tenant(&self, state: &AppState, slug: &str) -> CoreResult<Option<Tenant>> {
        if let Some(t) = self.tenants.get(slug) {
            return Ok(t);
        }
        let t = state.services.store.tenant(slug).await?;
        self.tenants.insert(slug.to_string(), t.clone());
        Ok(t)
    }

    /// Forgets everything (after an administrative change on this node).
    pub fn clear(&self) {
        self.tokens.invalidate_all();
        self.tenants.invalidate_all();
    }
}

/// An authenticated SCIM request: the tenant of the URL, the token that opened it, and the
/// request's context for the provisioning log. Put in the request's extensions by the
/// [`crate::context`] middleware; handlers take it as an extractor.
#[derive(Debug, Clone)]
pub struct Auth {
    pub tenant: Tenant,
    pub token: TokenRecord,
    pub ctx: RequestContext,
}

impl Auth {
    /// 403 unless the token's scopes allow this endpoint with this kind of access.
    pub fn require(&self, endpoint: Endpoint, write: bool) -> Result<(), AppError> {
        if self.token.scopes.allows(endpoint, write) {
            Ok(())
        } else {
            let what = if write { "Read+Write" } else { "Read" };
            Err(AppError::new(
                403,
                format!(
                    "token '{}' has no {what} privilege on the {} endpoint",
                    self.token.name,
                    endpoint.as_str()
                ),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Auth>()
            .cloned()
            .ok_or_else(|| AppError::internal("a SCIM handler ran without authentication"))
    }
}

/// One answer for an unknown token and another tenant's: nothing leaks.
const NOT_VALID: &str = "the bearer token is not valid";

fn unauthorized(detail: &str) -> AppError {
    AppError::new(401, detail)
}

/// The presented bearer secret, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, secret) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

/// Checks the bearer token against the tenant `slug` and the rate limit.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    mut ctx: RequestContext,
) -> Result<Auth, AppError> {
    let Some(secret) = bearer(headers) else {
        return Err(refuse(
            state,
            slug,
            Refusal::Missing,
            "a bearer token is required (Authorization: Bearer <token>)",
        )
        .await);
    };
    let hash = hash_secret(secret);
    let now = Timestamp::now();
    let Some(token) = state.auth_cache.token(state, &hash).await? else {
        return Err(refuse(state, slug, Refusal::Unknown, NOT_VALID).await);
    };
    // Same answer for an unknown tenant and another tenant's token: nothing leaks.
    let Some(tenant) = state
        .auth_cache
        .tenant(state, slug)
        .await?
        .filter(|t| t.id == token.tenant_id)
    else {
        return Err(refuse(state, slug, Refusal::Unknown, NOT_VALID).await);
    };
    if let Err(r) = token.check(&hash, now) {
        let reason = match r {
            TokenRejection::Revoked => Refusal::Revoked,
            TokenRejection::Expired => Refusal::Expired,
            TokenRejection::Unknown => Refusal::Unknown,
        };
        state.refusals.add(tenant.id, reason, now);
        return Err(unauthorized(rejected(r)));
    }
    if token.last_used_at.is_none_or(|t| now - t > TOUCH_INTERVAL) {
        touch(state, &token, hash, now);
    }
    state.rate_limiter.check(&token)?;
    ctx.token_name = Some(token.name.clone());
    Ok(Auth { tenant, token, ctx })
}

/// The 401 for a refused credential, counted for the URL's tenant when it exists (its
/// administrators see the count; an unknown tenant's URL counts nowhere).
async fn refuse(state: &AppState, slug: &str, reason: Refusal, detail: &str) -> AppError {
    // A URL no tenant could have is not looked up (a random slug costs no read).
    let possible = scim_core::tenant::normalize_slug(slug).is_ok_and(|n| n == slug);
    if !possible {
        return unauthorized(detail);
    }
    if let Ok(Some(t)) = state.auth_cache.tenant(state, slug).await {
        state.refusals.add(t.id, reason, Timestamp::now());
    }
    unauthorized(detail)
}

fn rejected(r: TokenRejection) -> &'static str {
    match r {
        TokenRejection::Revoked => "the bearer token has been revoked",
        TokenRejection::Expired => "the bearer token has expired",
        TokenRejection::Unknown => "the bearer token is not valid",
    }
}

/// Records the token's use in the background; the cache entry is refreshed first so that
/// this node does not touch it again within [`TOUCH_INTERVAL`].
fn touch(state: &AppState, token: &TokenRecord, hash: String, now: Timestamp) {
    let mut fresh = token.clone();
    fresh.last_used_at = Some(now);
    state.auth_cache.tokens.insert(hash, Some(fresh));
    let store = state.services.store.clone();
    let id = token.id.clone();
    tokio::spawn(async move {
        if let Err(e) = store.touch_token(&id, now).await {
            tracing::warn!(error = %e, "could not record token use");
        }
    });
}
