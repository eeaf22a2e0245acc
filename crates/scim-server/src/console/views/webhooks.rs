//! A tenant's Webhooks page: endpoints (add with the secret shown once, send a test event,
//! replay from a sequence, rotate the secret, disable or enable, delete) and each endpoint's
//! recent delivery attempts. An endpoint disabled after failing is called out at the top.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chrome};
use super::common::{AppStateRef, Outcome, chrome, html, tenant_of, unknown_action};
use crate::AppState;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::audit::Actor;
use scim_core::service::DEFAULT_SECRET_OVERLAP;
use scim_core::webhook::{WebhookDelivery, WebhookEndpoint};
use scim_core::{CoreError, Tenant, Timestamp};
use serde::Deserialize;

/// Attempts shown per endpoint.
const RECENT: u32 = 10;

struct DeliveryRow {
    at: String,
    event: String,
    sequence: String,
    kind: String,
    attempt: i64,
    status: String,
    ok: bool,
    latency: String,
    detail: String,
}

struct EndpointRow {
    id: String,
    url: String,
    types: String,
    description: String,
    secret_prefix: String,
    cursor: i64,
    behind: i64,
    state: &'static str,
    state_detail: String,
    enabled: bool,
    deliveries: Vec<DeliveryRow>,
}

struct NewSecret {
    url: String,
    secret: String,
    rotated: bool,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    tenant_name: String,
    events_url: String,
    head: i64,
    endpoints: Vec<EndpointRow>,
    /// Endpoints disabled after failing (not by an operator), for the banner.
    failed: Vec<String>,
    new_secret: Option<NewSecret>,
    message: Option<String>,
    error: Option<String>,
    /// Whether test events can be sent (the deliverer runs with `scimd serve`).
    can_test: bool,
}

fn delivery_row(d: WebhookDelivery) -> DeliveryRow {
    let detail = match (&d.error, &d.response) {
        (Some(e), _) => e.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => String::new(),
    };
    DeliveryRow {
        ok: d.succeeded(),
        at: view::fmt_time(d.at),
        sequence: d.sequence.map_or("test".into(), |s| s.to_string()),
        status: d.status.map_or("—".into(), |s| s.to_string()),
        latency: format!("{} ms", d.latency_ms),
        kind: d.event_type,
        event: d.event_id,
        attempt: d.attempt,
        detail: scim_proto::error::excerpt(&detail).to_string(),
    }
}

fn state_of(ep: &WebhookEndpoint, now: Timestamp) -> (&'static str, String) {
    match (ep.enabled, ep.failing_since, &ep.disabled_reason) {
        (true, None, _) => ("Active", String::new()),
        (true, Some(since), _) => {
            let next = ep
                .next_attempt_at
                .filter(|t| *t > now)
                .map(|t| format!("; next attempt {}", view::fmt_time(t)))
                .unwrap_or_default();
            (
                "Retrying",
                format!(
                    "failing since {} ({} attempt{}){next}",
                    view::fmt_time(since),
                    ep.attempts,
                    if ep.attempts == 1 { "" } else { "s" }
                ),
            )
        }
        (false, _, reason) => ("Disabled", reason.clone().unwrap_or_default()),
    }
}

impl EndpointRow {
    fn of(ep: WebhookEndpoint, head: i64, now: Timestamp, deliveries: Vec<DeliveryRow>) -> Self {
        let (state, state_detail) = state_of(&ep, now);
        EndpointRow {
            behind: head - ep.cursor,
            types: if ep.types.is_empty() {
                "all".into()
            } else {
                ep.types.replace(',', ", ")
            },
            secret_prefix: format!("{}…", ep.secret_prefix),
            state,
            state_detail,
            enabled: ep.enabled,
            cursor: ep.cursor,
            deliveries,
            id: ep.id,
            url: ep.url,
            description: ep.description,
        }
    }

    /// Disabled by scimd after failing (not by an operator): called out at the top.
    fn failed(&self, ep_reason: Option<&str>) -> Option<String> {
        let by_operator = ep_reason == Some("disabled by an operator");
        (!self.enabled && !by_operator).then(|| format!("{}: {}", self.url, self.state_detail))
    }
}

async fn webhooks_page(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &Tenant,
    outcome: Outcome<NewSecret>,
) -> ApiResult<Response> {
    let hooks = &state.services.webhooks;
    let head = state.services.changes.bounds(tenant).await?.head;
    let now = Timestamp::now();
    let (mut endpoints, mut failed) = (Vec::new(), Vec::new());
    for ep in hooks.list(tenant).await? {
        let recent = hooks.deliveries(tenant, &ep.id, RECENT).await?;
        let reason = ep.disabled_reason.clone();
        let row = EndpointRow::of(
            ep,
            head,
            now,
            recent.into_iter().map(delivery_row).collect(),
        );
        failed.extend(row.failed(reason.as_deref()));
        endpoints.push(row);
    }
    let public_url = state.config.public_url.trim_end_matches('/');
    let (status, new_secret, message, error) = outcome.parts();
    let page = WebhooksPage {
        chrome: chrome(s, Some(tenant), "webhooks"),
        tenant_name: tenant.name.clone(),
        events_url: format!("{public_url}/t/{}/events", tenant.slug),
        head,
        endpoints,
        failed,
        new_secret,
        message,
        error,
        can_test: state.deliverer.is_some(),
    };
    html(status, &page)
}

pub async fn webhooks(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    webhooks_page(&state, &s, &t, Outcome::shown()).await
}

#[derive(Deserialize, Default)]
pub struct WebhookForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    types: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    from: String,
}

/// One form action: each is its own small function; what the service refuses (a bad URL,
/// a gone endpoint) is shown on the page, an unknown endpoint is a 404.
async fn act(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &WebhookForm,
) -> ApiResult<Outcome<NewSecret>> {
    let id = form.id.as_str();
    let done = match form.action.as_str() {
        "add" => add(state, t, who, form).await,
        "test" => return test_event(state, t, id).await,
        "replay" => replay(state, t, who, form).await,
        "rotate" => rotate(state, t, who, id).await,
        "disable" | "enable" => set_enabled(state, t, who, id, form.action == "enable").await,
        "delete" => delete(state, t, who, id).await,
        other => return Err(AppError::new(400, unknown_action(other))),
    };
    done.or_else(refused)
}

fn refused(e: CoreError) -> ApiResult<Outcome<NewSecret>> {
    match e {
        CoreError::Invalid(m) | CoreError::Gone(m) => Ok(Outcome::Refused(m)),
        CoreError::NotFound(_) => Err(AppError::new(
            404,
            "no such webhook endpoint in this tenant",
        )),
        other => Err(other.into()),
    }
}

async fn add(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &WebhookForm,
) -> Result<Outcome<NewSecret>, CoreError> {
    let hooks = &state.services.webhooks;
    let made = hooks
        .add(t, &form.url, &form.types, &form.description, who)
        .await?;
    tracing::info!(operator = %who.name, tenant = %t.slug, endpoint = %made.endpoint.id, "webhook endpoint added in the console");
    let secret = NewSecret {
        url: made.endpoint.url,
        secret: made.secret,
        rotated: false,
    };
    Ok(Outcome::Done(StatusCode::CREATED, Some(secret), None))
}

async fn test_event(state: &AppState, t: &Tenant, id: &str) -> ApiResult<Outcome<NewSecret>> {
    let Some(d) = &state.deliverer else {
        return Ok(Outcome::Refused(
            "test events are sent by `scimd serve`'s deliverer, which is not running here".into(),
        ));
    };
    match d.send_test(t, id).await {
        Ok(r) if r.succeeded() => Ok(Outcome::done(format!(
            "Test event delivered: the endpoint answered {} in {} ms.",
            r.status.unwrap_or(0),
            r.latency_ms
        ))),
        Ok(r) => Ok(Outcome::Refused(format!(
            "The test event was not accepted: {}.",
            r.error.unwrap_or_else(|| "no answer".into())
        ))),
        Err(e) => refused(e),
    }
}

async fn replay(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    form: &WebhookForm,
) -> Result<Outcome<NewSecret>, CoreError> {
    let Ok(from) = form.from.trim().parse::<i64>() else {
        return Ok(Outcome::Refused(
            "replay from an event sequence number".into(),
        ));
    };
    state
        .services
        .webhooks
        .replay(t, &form.id, from, who)
        .await?;
    tracing::info!(operator = %who.name, tenant = %t.slug, endpoint = %form.id, from, "webhook replay in the console");
    Ok(Outcome::done(format!(
        "Delivering again from event {from}, in order."
    )))
}

async fn rotate(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    id: &str,
) -> Result<Outcome<NewSecret>, CoreError> {
    let hooks = &state.services.webhooks;
    let secret = hooks.rotate(t, id, DEFAULT_SECRET_OVERLAP, who).await?;
    tracing::info!(operator = %who.name, tenant = %t.slug, endpoint = %id, "webhook secret rotated in the console");
    let url = hooks.get(t, id).await?.url;
    let secret = NewSecret {
        url,
        secret,
        rotated: true,
    };
    Ok(Outcome::Done(StatusCode::OK, Some(secret), None))
}

async fn set_enabled(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    id: &str,
    on: bool,
) -> Result<Outcome<NewSecret>, CoreError> {
    state.services.webhooks.set_enabled(t, id, on, who).await?;
    Ok(Outcome::done(if on {
        "Endpoint enabled: delivery resumes from its cursor."
    } else {
        "Endpoint disabled: events wait at its cursor until it is enabled."
    }))
}

async fn delete(
    state: &AppState,
    t: &Tenant,
    who: &Actor,
    id: &str,
) -> Result<Outcome<NewSecret>, CoreError> {
    state.services.webhooks.delete(t, id, who).await?;
    tracing::info!(operator = %who.name, tenant = %t.slug, endpoint = %id, "webhook endpoint deleted in the console");
    Ok(Outcome::done("Endpoint deleted."))
}

pub async fn webhooks_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    Form(form): Form<WebhookForm>,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let outcome = act(&state, &t, &s.actor(), &form).await?;
    webhooks_page(&state, &s, &t, outcome).await
}
