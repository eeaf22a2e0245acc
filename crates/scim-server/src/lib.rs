//! # scim-server: the scimd HTTP layer
//!
//! An axum application serving, per tenant, `{public_url}/t/{tenant}/scim/v2` with Users,
//! Groups, `.search`, Bulk and the discovery endpoints, and the operator console under
//! `/console/`. Handlers are thin: they parse ([`request`]), call a `scim_core` service, and
//! shape the response; the [`context`] middleware authenticates ([`auth`]) and logs failures;
//! every failure is one [`error::AppError`], an RFC 7644 §3.12 body on SCIM routes and an
//! HTML page in the console.
//!
//! tower-http provides request ids, the request time limit and the request tracing span.

pub mod auth;
pub mod bulk;
pub mod client_addr;
pub mod console;
pub mod context;
pub mod discovery;
pub mod error;
pub mod events;
pub mod limits;
pub mod listener;
pub mod request;
pub mod scim;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scim_core::service::Limits;
use scim_core::{ResourceKind, ResourceService, Services, Store, Tenant};
use scim_proto::wire::ServiceProviderConfig;
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

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
    /// Record per-request metrics (when a Prometheus listener is configured).
    pub metrics: bool,
    /// Where webhooks, the engine's targets and sources, and notices may connect
    /// (docs/security.md, "Outbound connections").
    pub outbound: scim_net::Policy,
    /// Proxies whose forwarded client address is believed (`client_addr`), and the one
    /// header they write it in.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub forwarded_header: client_addr::ForwardedHeader,
    /// Events long polls waiting at once, per token and per tenant (past them, `429`).
    pub max_waits_per_token: usize,
    pub max_waits_per_tenant: usize,
    /// Who must set up a second factor before using the console (`console_require_totp`).
    pub require_totp: scim_core::second_factor::Requirement,
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
            metrics: false,
            outbound: scim_net::Policy::default(),
            trusted_proxies: Vec::new(),
            forwarded_header: client_addr::ForwardedHeader::default(),
            max_waits_per_token: 4,
            require_totp: scim_core::second_factor::Requirement::Nobody,
            max_waits_per_tenant: 16,
        }
    }
}

pub struct AppState {
    /// Tenants, tokens, operators, the log: what the console and the CLI share.
    pub services: Services,
    /// SCIM resources.
    pub resources: ResourceService,
    pub config: ServerConfig,
    pub auth_cache: auth::AuthCache,
    pub rate_limiter: limits::RateLimiter,
    pub long_polls: limits::LongPolls,
    /// Console uploads being read at once (`console::upload::PARALLEL_UPLOADS`).
    pub uploads: tokio::sync::Semaphore,
    pub sign_in_throttle: console::throttle::SignInThrottle,
    /// Signs the console's known-device cookies: the instance key, else one of this process.
    pub device_key: scim_core::SealingKey,
    /// The instance key (seals console operators' TOTP secrets); none: no second factor can
    /// be set up.
    pub instance_key: Option<scim_core::SealingKey>,
    /// The provisioning engine's Apps service, which the console's Apps pages drive.
    pub apps: scim_sync::Apps,
    /// The webhook deliverer (over this state's change feed): `scimd serve` runs it, the
    /// console's "Send test event" sends through it.
    pub deliverer: Option<Arc<scim_webhook::Deliverer>>,
    /// The operator's SMTP server (`smtp_url`): app notices and e-mailed setup links.
    pub mailer: Option<Arc<scim_net::Mailer>>,
    /// Refused credentials counted on this node, not yet stored (`run_refusal_flusher`).
    pub refusals: Arc<scim_core::Refusals>,
}

/// How often a node stores its refused-credential counts.
pub const REFUSALS_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// What a server is made of besides its store: built once, complete, by whoever runs it
/// (`scimd serve`, the test kit).
pub struct AppParts {
    pub config: ServerConfig,
    /// The instance key: seals webhook secrets and the engine's credentials. Without one,
    /// neither can be added in the console.
    pub key: Option<scim_core::SealingKey>,
    /// Write provisioning-log events for successful changes (`provisioning_log`).
    pub log_events: bool,
    /// How long the provisioning log keeps events.
    pub log_retention: time::Duration,
    /// The engine's job lease.
    pub sync_lease: std::time::Duration,
    /// Webhook delivery (its retry policy and lease); `None`: no deliverer.
    pub webhooks: Option<(scim_core::webhook::RetryPolicy, std::time::Duration)>,
    /// The only folder whose files apps made in the console may read (`sync_source_dir`).
    pub sync_source_dir: Option<std::path::PathBuf>,
    /// The SMTP server notices are e-mailed through (`smtp_url`, `smtp_from`): the
    /// console's app page sends test e-mails with it and warns when it is unset.
    pub smtp: Option<(String, String)>,
}

impl Default for AppParts {
    fn default() -> Self {
        Self {
            config: ServerConfig::default(),
            key: None,
            log_events: true,
            log_retention: time::Duration::days(30),
            sync_lease: scim_sync::engine::LEASE,
            webhooks: None,
            sync_source_dir: None,
            smtp: None,
        }
    }
}

impl AppState {
    /// The state with the defaults: no instance key, no deliverer.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        Self::assemble(
            store,
            AppParts {
                config,
                ..AppParts::default()
            },
        )
        .0
    }

    /// The state from its parts, complete: services over the store (webhooks with the
    /// instance key), the engine's Apps service, the deliverer over this state's feed.
    pub fn build(store: Arc<dyn Store>, mut parts: AppParts) -> scim_core::CoreResult<Self> {
        let smtp = parts.smtp.take();
        let (mut state, webhooks) = Self::assemble(store.clone(), parts);
        if let Some((url, from)) = smtp {
            let mailer = Arc::new(
                scim_net::Mailer::new(&url, &from)
                    .map_err(|e| scim_core::CoreError::Invalid(e.to_string()))?,
            );
            let notifier = scim_sync::runtime::notify::SmtpNotifier::new(mailer.clone());
            state.apps = state.apps.clone().with_mailer(Some(Arc::new(notifier)));
            state.mailer = Some(mailer);
        }
        if let Some((policy, lease)) = webhooks {
            state.deliverer = Some(Arc::new(scim_webhook::Deliverer::new(
                store,
                state.services.changes.clone(),
                state.services.webhooks.clone(),
                &state.config.public_url,
                policy,
                lease,
                state.config.outbound.clone(),
            )?));
        }
        Ok(state)
    }

    /// Everything but the deliverer, and the deliverer's settings.
    #[allow(clippy::type_complexity)]
    fn assemble(
        store: Arc<dyn Store>,
        parts: AppParts,
    ) -> (
        Self,
        Option<(scim_core::webhook::RetryPolicy, std::time::Duration)>,
    ) {
        let AppParts {
            config,
            key,
            log_events,
            log_retention,
            sync_lease,
            webhooks,
            sync_source_dir,
            smtp: _,
        } = parts;
        let device_key = key.clone();
        let mut resources = ResourceService::new(store.clone(), config.limits);
        resources.log_events = log_events;
        let mut services = Services::new(store.clone(), resources.notifier.clone());
        let outbound = config.outbound.clone();
        services.webhooks = scim_core::service::WebhookService::new(store.clone(), key.clone())
            .with_destination_check(Arc::new(move |u: &scim_net::Url| {
                outbound.check_url(u).map_err(|e| e.to_string())
            }));
        let engine = scim_sync::Engine::new(store.clone(), key, log_retention)
            .with_lease(sync_lease)
            .with_outbound(config.outbound.clone());
        let state = Self {
            services,
            resources,
            rate_limiter: limits::RateLimiter::new(config.rate_limit),
            uploads: tokio::sync::Semaphore::new(console::upload::PARALLEL_UPLOADS),
            long_polls: limits::LongPolls::new(
                config.max_waits_per_token,
                config.max_waits_per_tenant,
            ),
            config,
            auth_cache: auth::AuthCache::default(),
            sign_in_throttle: console::throttle::SignInThrottle::default(),
            instance_key: device_key.clone(),
            device_key: device_key.unwrap_or_else(scim_core::SealingKey::random),
            apps: scim_sync::Apps::new(
                engine,
                format!("console-{}", uuid::Uuid::new_v4().simple()),
            )
            .with_source_dir(sync_source_dir),
            deliverer: None,
            mailer: None,
            refusals: Arc::default(),
        };
        (state, webhooks)
    }

    /// Stores the refused-credential counts of this node every [`REFUSALS_FLUSH`] (the
    /// console's log page stores them at once before it reads) until `stop` is notified;
    /// `scimd serve` runs it, then flushes once more.
    pub async fn run_refusal_flusher(self: Arc<Self>, stop: Arc<tokio::sync::Notify>) {
        let mut tick = tokio::time::interval(REFUSALS_FLUSH);
        loop {
            // A flush under way finishes before `stop` is seen (never cut mid-write).
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.notified() => return,
            }
            if let Err(e) = self.services.tokens.flush_refused(&self.refusals).await {
                tracing::warn!(error = %e, "could not store refused-credential counts (kept for the next try)");
            }
        }
    }

    /// The tenant's SCIM base URL.
    pub fn base_url(&self, tenant: &Tenant) -> String {
        tenant_scim_url(&self.config.public_url, &tenant.slug)
    }

    /// The URL of a setup link with this secret.
    pub fn setup_url(&self, secret: &str) -> String {
        setup_url(&self.config.public_url, secret)
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
            cursor_timeout_secs: None,
        }
    }
}

/// `{public_url}/t/{slug}/scim/v2`.
pub use scim_core::tenant::scim_base_url as tenant_scim_url;

async fn not_found() -> error::AppError {
    error::AppError::new(
        404,
        "no such endpoint; SCIM lives under /t/{tenant}/scim/v2",
    )
}

async fn method_not_allowed() -> error::AppError {
    error::AppError::new(405, "this method is not allowed on this endpoint")
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// `/readyz`: 200 when the database answers, else 503 (for load balancers and orchestrators;
/// `/healthz` only says the process is up).
async fn ready(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> Response {
    match state.services.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the database does not answer");
            error::AppError::new(503, "the database does not answer")
                .with_retry_after(5)
                .into_response()
        }
    }
}

/// Gives the time limit's bare 503 a SCIM body with `Retry-After`. Dropping the handler at
/// the deadline rolls back its transaction (nothing half-written); a commit that completed
/// just before it stays, as with any lost response.
fn explain_timeout(resp: Response, limit: std::time::Duration) -> Response {
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE
        && resp.extensions().get::<error::AppError>().is_none()
    {
        return error::AppError::new(
            503,
            format!(
                "the request took longer than {} ms; retry",
                limit.as_millis()
            ),
        )
        .with_retry_after(1)
        .into_response();
    }
    resp
}

/// A request method as a metrics label: the methods HTTP defines, else `other` (hyper
/// accepts any token as a method; a label per made-up method would be a series per request).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ]
    .iter()
    .find(|k| *k == m)
    .map_or("other", |k| k.as_str())
}

/// A status as a metrics label: the code when it is one HTTP defines (100–599), else
/// `other`. Every label here comes from a closed set (docs/security.md, "Metrics").
fn status_label(s: StatusCode) -> String {
    match s.as_u16() {
        c @ 100..=599 => c.to_string(),
        _ => "other".into(),
    }
}

/// Counts every request by route pattern, method and status, and times it (Prometheus names
/// `scimd_http_requests_total`, `scimd_http_request_duration_seconds`; `/metrics` in
/// `docs/deploy.md`). Route patterns, not paths: ids never become label values; methods and
/// statuses from closed sets, so no request can add a series of its own.
async fn record_metrics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = method_label(req.method());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = status_label(resp.status());
    metrics::counter!("scimd_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("scimd_http_request_duration_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// Drops a client's `X-Request-Id` that is not sane, so tower-http makes a new one.
fn sanitize_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    if req
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !context::sane_request_id(v))
    {
        req.headers_mut().remove("x-request-id");
    }
    req
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
            context::scim_context,
        ));
    // Spans at debug level (free when off, as by default); internal failures are logged
    // with their request id by `log_internal_errors`.
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        |req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::debug_span!("request", method = %req.method(), request_id = %id)
        },
    );
    let limit = state.config.request_timeout;
    let mut router = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .nest("/t/{tenant}/scim/v2", scim)
        .route("/t/{tenant}/events", get(events::list))
        .nest("/console", console::routes(state.clone()))
        .route(
            "/console/",
            get(console::home).layer(axum::middleware::from_fn(console::html_errors)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    if state.config.metrics {
        router = router.layer(axum::middleware::from_fn(record_metrics));
    }
    // Plain functions where no future is needed (`map_request`/`map_response`): every
    // request passes through these layers.
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limit,
        ))
        .layer(tower::util::MapResponseLayer::new(move |r| {
            explain_timeout(r, limit)
        }))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(tower::util::MapResponseLayer::new(
            error::log_internal_errors,
        ))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(sanitize_request_id))
        .layer(tower::util::MapRequestLayer::new(client_addr_of(
            state.config.trusted_proxies.clone(),
            state.config.forwarded_header,
        )))
        .with_state(state)
}

/// Puts the request's [`client_addr::ClientAddr`] in its extensions (the TCP peer, or the
/// forwarded address when the peer is a trusted proxy).
fn client_addr_of(
    trusted: Vec<ipnet::IpNet>,
    which: client_addr::ForwardedHeader,
) -> impl Fn(axum::extract::Request) -> axum::extract::Request + Clone {
    move |mut req| {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(peer) = peer {
            let ip = client_addr::client_ip(peer, req.headers(), &trusted, which);
            req.extensions_mut().insert(client_addr::ClientAddr(ip));
        }
        req
    }
}

/// `{public_url}/console/setup/{secret}`: what `scimd tenant invite` prints too.
pub fn setup_url(public_url: &str, secret: &str) -> String {
    format!(
        "{}/console/setup/{secret}",
        public_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn metric_labels_come_from_closed_sets() {
        for (m, want) in [
            (Method::GET, "GET"),
            (Method::PATCH, "PATCH"),
            (Method::from_bytes(b"X-MADE-UP").unwrap(), "other"),
            (Method::from_bytes(&[b'A'; 4096]).unwrap(), "other"),
        ] {
            assert_eq!(method_label(&m), want);
        }
        assert_eq!(status_label(StatusCode::METHOD_NOT_ALLOWED), "405");
        assert_eq!(status_label(StatusCode::from_u16(999).unwrap()), "other");
    }
}
