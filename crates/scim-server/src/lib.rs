//! # scim-server: the scimd HTTP layer
//!
//! An axum application serving, per tenant, `{public_url}/t/{tenant}/scim/v2` with Users,
//! Groups, `.search`, Bulk and the discovery endpoints. Handlers are thin: they authenticate
//! ([`auth`]), parse ([`request`]), call `scim_core::ResourceService`, and shape the response;
//! every failure is an RFC 7644 §3.12 error ([`error`]), including unknown routes and methods.

pub mod auth;
pub mod bulk;
pub mod console;
pub mod discovery;
pub mod error;
pub mod limits;
pub mod provisioning_log;
pub mod request;
pub mod scim;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use scim_core::service::Limits;
use scim_core::{ResourceKind, ResourceService, Store, Tenant};
use scim_proto::wire::ServiceProviderConfig;
use std::sync::Arc;

/// Server settings (the binary fills them from CLI, environment and config file).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Base URL clients use, without a trailing slash (e.g. `https://scim.example.com`).
    pub public_url: String,
    /// Largest accepted request body; also Bulk's advertised `maxPayloadSize`.
    pub max_body_bytes: usize,
    pub bulk_max_operations: usize,
    pub limits: Limits,
    /// Per-token request rate (off by default).
    pub rate_limit: limits::RateLimit,
    /// Longest a request may run before it is answered `503`.
    pub request_timeout: std::time::Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            bulk_max_operations: 1000,
            limits: Limits::default(),
            rate_limit: limits::RateLimit::default(),
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub service: ResourceService,
    pub config: ServerConfig,
    pub auth_cache: auth::AuthCache,
    pub rate_limiter: limits::RateLimiter,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        Self {
            service: ResourceService::new(store.clone(), config.limits),
            store,
            config,
            auth_cache: auth::AuthCache::default(),
            rate_limiter: limits::RateLimiter::default(),
        }
    }

    /// The tenant's SCIM base URL.
    pub fn base_url(&self, tenant: &Tenant) -> String {
        tenant_scim_url(&self.config.public_url, &tenant.slug)
    }

    pub fn service_provider_config(&self) -> ServiceProviderConfig {
        ServiceProviderConfig {
            documentation_uri: None,
            bulk_max_operations: self.config.bulk_max_operations as u64,
            bulk_max_payload_size: self.config.max_body_bytes as u64,
            filter_max_results: self.config.limits.max_results,
            etag: true,
            sort: true,
            cursor: true,
            default_page_size: self.config.limits.default_count,
            cursor_timeout_secs: 0,
        }
    }
}

/// `{public_url}/t/{slug}/scim/v2`.
pub fn tenant_scim_url(public_url: &str, slug: &str) -> String {
    format!("{}/t/{slug}/scim/v2", public_url.trim_end_matches('/'))
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(
        404,
        "no such endpoint; SCIM lives under /t/{tenant}/scim/v2",
    )
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError::new(405, "this method is not allowed on this endpoint")
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// The whole application.
pub fn app(state: Arc<AppState>) -> Router {
    let scim = Router::new()
        .nest("/Users", scim::routes(ResourceKind::User))
        .nest("/Groups", scim::routes(ResourceKind::Group))
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/Bulk", post(bulk::bulk))
        .route("/.search", post(scim::root_search))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            provisioning_log::request_meta,
        ));
    Router::new()
        .route("/healthz", get(health))
        .nest("/t/{tenant}/scim/v2", scim)
        .nest("/console", console::routes(state.clone()))
        .route("/console/", get(console::home))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::deadline,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
