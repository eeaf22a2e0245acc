//! Bearer-token authentication and tenancy.
//!
//! The token is looked up by the SHA-256 of the presented secret and must belong to the
//! tenant named in the URL: a token used on another tenant's URL gets the same 401 as an
//! unknown token, so responses never reveal that another tenant exists. Lookups are cached
//! per node for [`TOKEN_CACHE_TTL`]: a revocation takes effect on every node within that time.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;
use scim_core::token::hash_secret;
use scim_core::{Endpoint, Tenant, TokenRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a node trusts a cached token or tenant lookup.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// `last_used_at` is written at most this often per token.
const TOUCH_INTERVAL_MICROS: i64 = 60_000_000;
const CACHE_MAX: usize = 10_000;

struct Cached<T> {
    at: Instant,
    value: Option<T>,
}

/// Per-node caches of token and tenant lookups.
#[derive(Default)]
pub struct AuthCache {
    tokens: Mutex<HashMap<String, Cached<TokenRecord>>>,
    tenants: Mutex<HashMap<String, Cached<Tenant>>>,
}

fn cached<T: Clone>(map: &Mutex<HashMap<String, Cached<T>>>, key: &str) -> Option<Option<T>> {
    let m = map.lock().ok()?;
    let c = m.get(key)?;
    (c.at.elapsed() < TOKEN_CACHE_TTL).then(|| c.value.clone())
}

fn remember<T>(map: &Mutex<HashMap<String, Cached<T>>>, key: &str, value: Option<T>) {
    if let Ok(mut m) = map.lock() {
        if m.len() >= CACHE_MAX {
            m.clear();
        }
        m.insert(
            key.to_string(),
            Cached {
                at: Instant::now(),
                value,
            },
        );
    }
}

impl AuthCache {
    /// The token with this secret hash, through the cache.
    pub async fn token(
        &self,
        state: &AppState,
        hash: &str,
    ) -> scim_core::CoreResult<Option<TokenRecord>> {
        if let Some(r) = cached(&self.tokens, hash) {
            return Ok(r);
        }
        let r = state.store.token_by_hash(hash).await?;
        remember(&self.tokens, hash, r.clone());
        Ok(r)
    }

    /// The tenant with this slug, through the cache.
    pub async fn tenant(
        &self,
        state: &AppState,
        slug: &str,
    ) -> scim_core::CoreResult<Option<Tenant>> {
        if let Some(t) = cached(&self.tenants, slug) {
            return Ok(t);
        }
        let t = state.store.tenant(slug).await?;
        remember(&self.tenants, slug, t.clone());
        Ok(t)
    }

    /// Forgets everything (after an administrative change on this node).
    pub fn clear(&self) {
        if let Ok(mut m) = self.tokens.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.tenants.lock() {
            m.clear();
        }
    }
}

/// An authenticated request: the tenant of the URL, the token that opened it, and the
/// request's context for the provisioning log.
#[derive(Debug, Clone)]
pub struct Auth {
    pub tenant: Tenant,
    pub token: TokenRecord,
    pub ctx: scim_core::RequestContext,
}

impl Auth {
    /// 403 unless the token's scopes allow this endpoint with this kind of access.
    pub fn require(&self, endpoint: Endpoint, write: bool) -> Result<(), ApiError> {
        if self.token.scopes.allows(endpoint, write) {
            Ok(())
        } else {
            let what = if write { "Read+Write" } else { "Read" };
            Err(ApiError::new(
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

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(401, detail)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, secret) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::new(404, "no such endpoint"))?;
        let slug = params.get("tenant").cloned().unwrap_or_default();
        let Some(secret) = bearer(parts).filter(|s| !s.is_empty()) else {
            return Err(unauthorized(
                "a bearer token is required (Authorization: Bearer <token>)",
            ));
        };
        let hash = hash_secret(secret);
        let record = state.auth_cache.token(state, &hash).await?;
        let now = scim_core::now_micros();
        let Some(token) = record else {
            return Err(unauthorized("the bearer token is not valid"));
        };
        match token.check(&hash, now) {
            Ok(()) => {}
            Err(scim_core::token::TokenRejection::Revoked) => {
                return Err(unauthorized("the bearer token has been revoked"));
            }
            Err(scim_core::token::TokenRejection::Expired) => {
                return Err(unauthorized("the bearer token has expired"));
            }
            Err(scim_core::token::TokenRejection::Unknown) => {
                return Err(unauthorized("the bearer token is not valid"));
            }
        }
        let tenant = state.auth_cache.tenant(state, &slug).await?;
        // Same answer for an unknown tenant and another tenant's token: nothing leaks.
        let Some(tenant) = tenant.filter(|t| t.id == token.tenant_id) else {
            return Err(unauthorized("the bearer token is not valid"));
        };
        if token
            .last_used_at
            .is_none_or(|t| now - t > TOUCH_INTERVAL_MICROS)
        {
            let store = state.store.clone();
            let id = token.id.clone();
            // Refresh the cache entry so this node does not touch again within the interval.
            let mut fresh = token.clone();
            fresh.last_used_at = Some(now);
            remember(&state.auth_cache.tokens, &hash, Some(fresh));
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(&id, now).await {
                    tracing::warn!(error = %e, "could not record token use");
                }
            });
        }
        if let Err(wait) = state.rate_limiter.check(state.config.rate_limit, &token.id) {
            let auth = Auth {
                tenant,
                token,
                ctx: scim_core::RequestContext::default(),
            };
            return Err(crate::limits::too_many_requests(&auth, wait));
        }
        let mut ctx = crate::provisioning_log::context_of(&parts.extensions);
        ctx.token_name = Some(token.name.clone());
        Ok(Auth { tenant, token, ctx })
    }
}
