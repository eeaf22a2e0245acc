//! The tenants page: list and create.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chrome};
use super::common::{AppStateRef, chrome, html};
use crate::AppState;
use crate::error::ApiResult;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
struct TenantRow {
    slug: String,
    name: String,
    scim_url: String,
    created: String,
}

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<TenantRow>,
    error: Option<String>,
    form_slug: String,
    form_name: String,
}

async fn tenants_page(
    state: &AppState,
    s: &ConsoleSession,
    status: StatusCode,
    error: Option<String>,
    form: Option<TenantForm>,
) -> ApiResult<Response> {
    let tenants = state
        .services
        .tenants
        .list()
        .await?
        .into_iter()
        // A tenant admin sees only the tenants granted to them.
        .filter(|t| s.operator.role.sees(&t.slug))
        .map(|t| TenantRow {
            scim_url: state.base_url(&t),
            created: view::fmt_time(t.created_at),
            slug: t.slug,
            name: t.name,
        })
        .collect();
    let form = form.unwrap_or_default();
    html(
        status,
        &TenantsPage {
            chrome: chrome(s, None, "tenants"),
            tenants,
            error,
            form_slug: form.slug,
            form_name: form.name,
        },
    )
}

pub async fn tenants(State(state): AppStateRef, s: ConsoleSession) -> ApiResult<Response> {
    tenants_page(&state, &s, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
pub struct TenantForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
}

pub async fn create_tenant(
    State(state): AppStateRef,
    s: ConsoleSession,
    Form(form): Form<TenantForm>,
) -> ApiResult<Response> {
    match state
        .services
        .tenants
        .create(&form.slug, Some(&form.name), &s.actor())
        .await
    {
        Ok(t) => {
            tracing::info!(operator = %s.operator.username, tenant = %t.slug, "tenant created");
            Ok(Redirect::to(&format!("/console/t/{}/integration", t.slug)).into_response())
        }
        // A bad or taken slug: the form again, with the reason.
        Err(e) if !e.is_internal() => {
            let message = e.to_scim().detail;
            tenants_page(
                &state,
                &s,
                StatusCode::BAD_REQUEST,
                Some(message),
                Some(form),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn tenant_home(Path(tenant): Path<String>, _s: ConsoleSession) -> Redirect {
    Redirect::to(&format!(
        "/console/t/{}/integration",
        view::url_encode(&tenant)
    ))
}
