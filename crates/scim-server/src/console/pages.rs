//! Console page handlers: thin, like the SCIM handlers. Each loads what its page shows
//! through the domain (`scim_core`), computes display values ([`super::view`]) and renders
//! one template.

use super::session::{self, ConsoleSession, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::view::{self, Chart, Chrome, Counts, EventRow};
use super::{ConsoleError, ConsoleResult};
use crate::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use scim_core::operator::{SESSION_TTL_MICROS, SignInError};
use scim_core::provisioning::{EventFilter, EventQuery};
use scim_core::service::ListRequest;
use scim_core::{OperatorService, ResourceKind, Tenant, TokenScopes, now_micros, token};
use serde::Deserialize;
use std::sync::Arc;

type AppStateRef = State<Arc<AppState>>;

fn html(status: StatusCode, page: &impl Template) -> ConsoleResult<Response> {
    Ok((status, view::html_headers(), page.render()?).into_response())
}

async fn tenant_of(state: &AppState, slug: &str) -> ConsoleResult<Tenant> {
    state
        .store
        .tenant(slug)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("there is no tenant '{slug}'")))
}

fn chrome(s: &ConsoleSession, tenant: Option<&Tenant>, tab: &'static str) -> Chrome {
    Chrome {
        operator: s.operator.username.clone(),
        csrf: s.csrf.clone(),
        tenant: tenant.map(|t| t.slug.clone()),
        tab,
    }
}

fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default()
}

fn param(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

// ---- sign-in ----

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
}

fn random_csrf() -> String {
    scim_core::token::generate_secret().1
}

pub async fn login_form(
    State(state): AppStateRef,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ConsoleResult<Response> {
    let next = view::safe_next(&param(&pairs(q), "next")).unwrap_or_else(|| "/console/".into());
    if let Some(value) = session::cookie(&headers, SESSION_COOKIE) {
        let signed_in = OperatorService::new(state.store.as_ref())
            .session(&value, now_micros())
            .await?
            .is_some();
        if signed_in {
            return Ok(Redirect::to(&next).into_response());
        }
    }
    let csrf = session::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_else(random_csrf);
    let mut resp = html(
        StatusCode::OK,
        &LoginPage {
            csrf: csrf.clone(),
            next,
            username: String::new(),
            error: None,
        },
    )?;
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            LOGIN_CSRF_COOKIE,
            &csrf,
            3600,
            session::secure(&state, &headers),
        ),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    csrf: String,
}

pub async fn login(
    State(state): AppStateRef,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> ConsoleResult<Response> {
    let ops = OperatorService::new(state.store.as_ref());
    let now = now_micros();
    let next = view::safe_next(&form.next).unwrap_or_else(|| "/console/".into());
    let refuse = |status: StatusCode, message: String| {
        html(
            status,
            &LoginPage {
                csrf: form.csrf.clone(),
                next: next.clone(),
                username: form.username.clone(),
                error: Some(message),
            },
        )
    };
    match ops.sign_in(&form.username, &form.password, now).await {
        Ok(new) => {
            tracing::info!(operator = %new.operator.username, "console sign-in");
            let secure = session::secure(&state, &headers);
            let mut resp = Redirect::to(&next).into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                session::set_cookie(
                    SESSION_COOKIE,
                    &new.cookie_value,
                    SESSION_TTL_MICROS / 1_000_000,
                    secure,
                ),
            );
            h.append(
                header::SET_COOKIE,
                session::set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure),
            );
            Ok(resp)
        }
        Err(SignInError::BadCredentials) => {
            tracing::info!(username = %form.username.chars().take(64).collect::<String>(), "console sign-in refused");
            refuse(
                StatusCode::UNAUTHORIZED,
                "Wrong username or password.".into(),
            )
        }
        Err(SignInError::Locked { until }) => {
            tracing::warn!(username = %form.username.chars().take(64).collect::<String>(), "console sign-in locked out");
            let mut resp = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins. Try again after {}.",
                    view::fmt_time(until)
                ),
            )?;
            let secs = ((until - now) / 1_000_000).max(1);
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(resp)
        }
        Err(SignInError::Storage(e)) => {
            tracing::error!(error = %e, "console sign-in failed in storage");
            Err(ConsoleError::Internal)
        }
    }
}

pub async fn logout(State(state): AppStateRef, headers: HeaderMap) -> ConsoleResult<Response> {
    if let Some(v) = session::cookie(&headers, SESSION_COOKIE) {
        OperatorService::new(state.store.as_ref())
            .sign_out(&v)
            .await?;
    }
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", 0, session::secure(&state, &headers)),
    );
    Ok(resp)
}

// ---- tenants ----

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
) -> ConsoleResult<Response> {
    let tenants = state
        .store
        .tenants()
        .await?
        .into_iter()
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

pub async fn tenants(State(state): AppStateRef, s: ConsoleSession) -> ConsoleResult<Response> {
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
) -> ConsoleResult<Response> {
    let slug = form.slug.trim().to_ascii_lowercase();
    let name = match form.name.trim() {
        "" => slug.clone(),
        n => n.chars().take(200).collect(),
    };
    match state.store.create_tenant(&slug, &name, now_micros()).await {
        Ok(t) => {
            tracing::info!(operator = %s.operator.username, tenant = %t.slug, "tenant created");
            Ok(Redirect::to(&format!("/console/t/{}/integration", t.slug)).into_response())
        }
        Err(e) => {
            let (status, message) = match ConsoleError::from(e) {
                ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
                other => return Err(other),
            };
            tenants_page(&state, &s, status, Some(message), Some(form)).await
        }
    }
}

pub async fn tenant_home(Path(tenant): Path<String>, _s: ConsoleSession) -> Redirect {
    Redirect::to(&format!(
        "/console/t/{}/integration",
        view::url_encode(&tenant)
    ))
}

// ---- SCIM integration: base URL and tokens ----

struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    last_used: String,
    expires: String,
    status: &'static str,
    active: bool,
}

struct NewSecret {
    name: String,
    secret: String,
    rotated: bool,
}

#[derive(Template)]
#[template(path = "console/integration.html")]
struct IntegrationPage {
    chrome: Chrome,
    tenant_name: String,
    scim_url: String,
    tokens: Vec<TokenRow>,
    new_secret: Option<NewSecret>,
    message: Option<String>,
    error: Option<String>,
}

async fn integration_page(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &Tenant,
    status: StatusCode,
    new_secret: Option<NewSecret>,
    message: Option<String>,
    error: Option<String>,
) -> ConsoleResult<Response> {
    let now = now_micros();
    let tokens = state
        .store
        .tokens(tenant.id)
        .await?
        .into_iter()
        .rev()
        .map(|t| {
            let status = t.status(now);
            TokenRow {
                scopes: scope_text(&t.scopes),
                created: view::fmt_time(t.created_at),
                last_used: view::fmt_opt_time(t.last_used_at),
                expires: t
                    .expires_at
                    .map(view::fmt_time)
                    .unwrap_or_else(|| "never".into()),
                active: status == token::TokenStatus::Active,
                status: status.as_str(),
                prefix: format!("{}…", t.prefix),
                id: t.id,
                name: t.name,
            }
        })
        .collect();
    html(
        status,
        &IntegrationPage {
            chrome: chrome(s, Some(tenant), "integration"),
            tenant_name: tenant.name.clone(),
            scim_url: state.base_url(tenant),
            tokens,
            new_secret,
            message,
            error,
        },
    )
}

/// `Users: Read+Write · Groups: Read`.
fn scope_text(scopes: &TokenScopes) -> String {
    scopes
        .0
        .iter()
        .map(|s| {
            let ep = match s.endpoint {
                scim_core::Endpoint::Users => "Users",
                scim_core::Endpoint::Groups => "Groups",
                scim_core::Endpoint::Bulk => "Bulk",
            };
            let pr = match s.privilege {
                scim_core::Privilege::Read => "Read",
                scim_core::Privilege::ReadWrite => "Read+Write",
            };
            format!("{ep}: {pr}")
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub async fn integration(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
) -> ConsoleResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    integration_page(&state, &s, &t, StatusCode::OK, None, None, None).await
}

#[derive(Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    users: String,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    bulk: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    grace: String,
}

impl TokenForm {
    fn scopes(&self) -> Result<TokenScopes, String> {
        let mut list = Vec::new();
        for (ep, v) in [
            ("users", &self.users),
            ("groups", &self.groups),
            ("bulk", &self.bulk),
        ] {
            match v.as_str() {
                "" | "none" => {}
                "r" | "rw" => list.push(format!("{ep}:{v}")),
                other => return Err(format!("unknown privilege '{other}'")),
            }
        }
        if list.is_empty() {
            return Err("choose Read or Read+Write for at least one endpoint".into());
        }
        TokenScopes::parse_list(&list).map_err(|e| e.to_string())
    }
}

pub async fn integration_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    Form(form): Form<TokenForm>,
) -> ConsoleResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let now = now_micros();
    let who = s.operator.username.as_str();
    let page = |status, secret, message, error| {
        integration_page(&state, &s, &t, status, secret, message, error)
    };
    match form.action.as_str() {
        "create" => {
            let scopes = match form.scopes() {
                Ok(sc) => sc,
                Err(e) => return page(StatusCode::BAD_REQUEST, None, None, Some(e)).await,
            };
            let expires_at = match form.expires.as_str() {
                "" | "never" => None,
                d => match token::parse_duration(d) {
                    Ok(secs) => Some(now + secs * 1_000_000),
                    Err(e) => {
                        return page(StatusCode::BAD_REQUEST, None, None, Some(e.to_string()))
                            .await;
                    }
                },
            };
            match token::create(
                state.store.as_ref(),
                t.id,
                &form.name,
                scopes,
                expires_at,
                now,
            )
            .await
            {
                Ok(issued) => {
                    tracing::info!(operator = %who, tenant = %t.slug, token = %issued.record.name, "token created in the console");
                    let secret = NewSecret {
                        name: issued.record.name.clone(),
                        secret: issued.secret,
                        rotated: false,
                    };
                    page(StatusCode::CREATED, Some(secret), None, None).await
                }
                Err(scim_core::CoreError::Invalid(m)) => {
                    page(StatusCode::BAD_REQUEST, None, None, Some(m)).await
                }
                Err(e) => Err(e.into()),
            }
        }
        "revoke" => {
            if !state.store.revoke_token(t.id, &form.id, now).await? {
                return Err(ConsoleError::NotFound(
                    "no such token in this tenant".into(),
                ));
            }
            // This node stops accepting it at once; others within the cache TTL.
            state.auth_cache.clear();
            tracing::info!(operator = %who, tenant = %t.slug, token_id = %form.id, "token revoked in the console");
            let msg = format!(
                "Token revoked. Requests with it are refused from now on (by every scimd node within {} seconds).",
                crate::auth::TOKEN_CACHE_TTL.as_secs()
            );
            page(StatusCode::OK, None, Some(msg), None).await
        }
        "rotate" => {
            let grace = match form.grace.as_str() {
                "" | "none" | "0" => 0,
                g => token::parse_duration(g)?,
            };
            let name = state
                .store
                .tokens(t.id)
                .await?
                .into_iter()
                .find(|x| x.id == form.id)
                .map(|x| x.name)
                .unwrap_or_default();
            let secret = token::rotate(state.store.as_ref(), t.id, &form.id, grace, now).await?;
            state.auth_cache.clear();
            tracing::info!(operator = %who, tenant = %t.slug, token_id = %form.id, "token rotated in the console");
            let secret = NewSecret {
                name,
                secret,
                rotated: grace > 0,
            };
            page(StatusCode::OK, Some(secret), None, None).await
        }
        other => Err(ConsoleError::BadRequest(format!(
            "unknown action '{other}'"
        ))),
    }
}

// ---- Users and Groups ----

const PAGE_SIZE: i64 = 25;

struct ResourceRow {
    href: String,
    name: String,
    secondary: String,
    email: String,
    active: &'static str,
    modified: String,
}

#[derive(Template)]
#[template(path = "console/resources.html")]
struct ResourcesPage {
    chrome: Chrome,
    title: &'static str,
    path: &'static str,
    is_users: bool,
    q: String,
    rows: Vec<ResourceRow>,
    showing: String,
    prev_href: Option<String>,
    next_href: Option<String>,
    error: Option<String>,
}

/// A search box value as a SCIM filter: a valid filter is used as is, anything else is
/// looked for in the names (`co`, case-insensitive).
fn search_filter(kind: ResourceKind, q: &str) -> Option<String> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    if scim_proto::filter::parse(q).is_ok() {
        return Some(q.to_string());
    }
    let lit = serde_json::Value::String(q.to_string()).to_string();
    Some(match kind {
        ResourceKind::User => format!(
            "userName co {lit} or displayName co {lit} or emails.value co {lit} or externalId eq {lit}"
        ),
        ResourceKind::Group => format!("displayName co {lit} or externalId eq {lit}"),
    })
}

async fn resources(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &str,
    kind: ResourceKind,
    raw: Option<String>,
) -> ConsoleResult<Response> {
    let t = tenant_of(state, tenant).await?;
    let p = pairs(raw);
    let q = param(&p, "q");
    let page: i64 = param(&p, "page").parse().unwrap_or(1).clamp(1, 1_000_000);
    let (title, path, sort) = match kind {
        ResourceKind::User => ("Users", "users", "userName"),
        ResourceKind::Group => ("Groups", "groups", "displayName"),
    };
    let req = ListRequest {
        filter: search_filter(kind, &q),
        sort_by: Some(sort.into()),
        start_index: Some((page - 1) * PAGE_SIZE + 1),
        count: Some(PAGE_SIZE),
        ..Default::default()
    };
    let (rows, total, error) = match state.service.list(&t, kind, &req).await {
        Ok(r) => (r.resources, r.total, None),
        Err(scim_core::CoreError::Scim(e)) if e.status < 500 => (Vec::new(), 0, Some(e.detail)),
        Err(e) => return Err(e.into()),
    };
    let str_at = |v: &serde_json::Value, p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let shown = rows.len() as i64;
    let rows = rows
        .into_iter()
        .map(|r| {
            let b = &r.body;
            let (name, secondary) = match kind {
                ResourceKind::User => (
                    str_at(b, "/userName"),
                    match str_at(b, "/displayName") {
                        d if d.is_empty() => str_at(b, "/name/formatted"),
                        d => d,
                    },
                ),
                ResourceKind::Group => (str_at(b, "/displayName"), str_at(b, "/externalId")),
            };
            let email = b
                .get("emails")
                .and_then(|e| e.as_array())
                .and_then(|list| {
                    list.iter()
                        .find(|e| e.get("primary") == Some(&serde_json::Value::Bool(true)))
                        .or_else(|| list.first())
                })
                .map(|e| str_at(e, "/value"))
                .unwrap_or_default();
            let active = match (kind, b.get("active").and_then(serde_json::Value::as_bool)) {
                (ResourceKind::Group, _) => "",
                (_, Some(false)) => "Inactive",
                _ => "Active",
            };
            ResourceRow {
                href: format!("/console/t/{}/{path}/{}", t.slug, r.id),
                name,
                secondary,
                email,
                active,
                modified: view::fmt_time(r.modified_at),
            }
        })
        .collect();
    let link = |page: i64| {
        let mut kv = vec![("page", page.to_string())];
        if !q.is_empty() {
            kv.insert(0, ("q", q.clone()));
        }
        format!("/console/t/{}/{path}?{}", t.slug, view::query_string(&kv))
    };
    let first = (page - 1) * PAGE_SIZE;
    let showing = if shown == 0 {
        "No results".to_string()
    } else {
        format!("{}–{} of {total}", first + 1, first + shown)
    };
    html(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &ResourcesPage {
            chrome: chrome(s, Some(&t), path),
            title,
            path,
            is_users: kind == ResourceKind::User,
            prev_href: (page > 1).then(|| link(page - 1)),
            next_href: ((first + shown) < total as i64).then(|| link(page + 1)),
            q,
            rows,
            showing,
            error,
        },
    )
}

pub async fn users(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
) -> ConsoleResult<Response> {
    resources(&state, &s, &tenant, ResourceKind::User, q).await
}

pub async fn groups(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
) -> ConsoleResult<Response> {
    resources(&state, &s, &tenant, ResourceKind::Group, q).await
}

struct Related {
    href: String,
    name: String,
    kind: String,
}

#[derive(Template)]
#[template(path = "console/resource.html")]
struct ResourcePage {
    chrome: Chrome,
    title: String,
    list_title: &'static str,
    list_href: String,
    id: String,
    is_users: bool,
    active: bool,
    created: String,
    modified: String,
    version: i64,
    attributes: Vec<(String, String)>,
    json: String,
    related_title: &'static str,
    related: Vec<Related>,
    related_total: usize,
    /// The resource's history (named `rows` for the shared events table).
    rows: Vec<EventRow>,
    history_href: String,
}

/// Members listed on a group's page; the rest are counted.
const MEMBERS_SHOWN: usize = 200;

async fn resource(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &str,
    kind: ResourceKind,
    id: &str,
) -> ConsoleResult<Response> {
    let t = tenant_of(state, tenant).await?;
    let r = state
        .service
        .get(&t, kind, id, kind == ResourceKind::Group)
        .await?;
    let (list_title, path, related_title) = match kind {
        ResourceKind::User => ("Users", "users", "Groups"),
        ResourceKind::Group => ("Groups", "groups", "Members"),
    };
    let mut related: Vec<Related> = match kind {
        ResourceKind::User => state
            .store
            .groups_of(t.id, std::slice::from_ref(&r.id))
            .await?
            .remove(&r.id)
            .unwrap_or_default()
            .into_iter()
            .map(|(gid, name)| Related {
                href: format!("/console/t/{}/groups/{gid}", t.slug),
                name,
                kind: "Group".into(),
            })
            .collect(),
        ResourceKind::Group => r
            .members
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| Related {
                href: format!(
                    "/console/t/{}/{}/{}",
                    t.slug,
                    m.kind
                        .endpoint()
                        .trim_start_matches('/')
                        .to_ascii_lowercase(),
                    m.value
                ),
                name: m.display.unwrap_or_else(|| m.value.clone()),
                kind: m.kind.as_str().into(),
            })
            .collect(),
    };
    let related_total = related.len();
    related.truncate(MEMBERS_SHOWN);
    let full = r.to_scim(&state.base_url(&t));
    let mut shown = full.clone();
    if let Some(o) = shown.as_object_mut() {
        // Members are listed separately (and may be 100,000 long).
        o.remove("members");
    }
    let title = match kind {
        ResourceKind::User => full.get("userName"),
        ResourceKind::Group => full.get("displayName"),
    }
    .and_then(serde_json::Value::as_str)
    .unwrap_or(id)
    .to_string();
    let history = state
        .store
        .events(
            t.id,
            &EventQuery {
                resource: Some(r.id.clone()),
                limit: 50,
                ..Default::default()
            },
        )
        .await?;
    html(
        StatusCode::OK,
        &ResourcePage {
            chrome: chrome(s, Some(&t), path),
            list_title,
            list_href: format!("/console/t/{}/{path}", t.slug),
            id: r.id.clone(),
            is_users: kind == ResourceKind::User,
            active: full.get("active").and_then(serde_json::Value::as_bool) != Some(false),
            created: view::fmt_time(r.created_at),
            modified: view::fmt_time(r.modified_at),
            version: r.version,
            attributes: view::flatten(&shown, 300),
            json: serde_json::to_string_pretty(&shown).unwrap_or_default(),
            related_title,
            related,
            related_total,
            rows: view::event_rows(&t.slug, &history),
            history_href: format!(
                "/console/t/{}/log?{}",
                t.slug,
                view::query_string(&[("resource", r.id.clone())])
            ),
            title,
        },
    )
}

pub async fn user(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path((tenant, id)): Path<(String, String)>,
) -> ConsoleResult<Response> {
    resource(&state, &s, &tenant, ResourceKind::User, &id).await
}

pub async fn group(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path((tenant, id)): Path<(String, String)>,
) -> ConsoleResult<Response> {
    resource(&state, &s, &tenant, ResourceKind::Group, &id).await
}

// ---- provisioning log ----

struct Choice {
    value: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/log.html")]
struct LogPage {
    chrome: Chrome,
    since: String,
    until: String,
    resource: String,
    operations: Vec<Choice>,
    outcomes: Vec<Choice>,
    tokens: Vec<Choice>,
    rows: Vec<EventRow>,
    next_href: Option<String>,
    csv_href: String,
    json_href: String,
    day: Counts,
    month: Counts,
    chart: Chart,
    error: Option<String>,
}

const LOG_PAGE_SIZE: u32 = 50;

pub async fn log(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> ConsoleResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let now = now_micros();
    let (filter, parsed) = match EventFilter::from_pairs(pairs(raw)) {
        Ok(f) => {
            let q = f.to_query(now, LOG_PAGE_SIZE);
            (f, q)
        }
        Err(e) => (EventFilter::default(), Err(e)),
    };
    let (events, error) = match parsed {
        Ok(q) => (state.store.events(t.id, &q).await?, None),
        Err(scim_core::CoreError::Invalid(m)) => (Vec::new(), Some(m)),
        Err(e) => return Err(e.into()),
    };
    let day = view::counts(
        &state
            .store
            .event_counts(t.id, now - 86_400 * 1_000_000)
            .await?,
    );
    // One read serves the 30-day counters and the chart: the chart's days (from midnight 29
    // days ago) lie inside the rolling 30 days, and `chart` skips the partial day before.
    let month_days = state
        .store
        .event_counts(t.id, now - 30 * 86_400 * 1_000_000)
        .await?;
    let month = view::counts(&month_days);
    let chart = view::chart(&month_days, now / 86_400_000_000);
    let keep = filter.to_pairs();
    let href = |extra: &[(&'static str, String)]| {
        let mut kv = keep.clone();
        kv.extend_from_slice(extra);
        view::query_string(&kv)
    };
    let next_href = (events.len() == LOG_PAGE_SIZE as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten()
        .map(|seq| {
            format!(
                "/console/t/{}/log?{}",
                t.slug,
                href(&[("before", seq.to_string())])
            )
        });
    let chosen_op = filter.operation.first().cloned().unwrap_or_default();
    let operations = scim_core::provisioning::ALL_OPERATIONS
        .iter()
        .map(|o| Choice {
            value: o.as_str().into(),
            selected: scim_core::Operation::parse(&chosen_op) == Some(*o),
        })
        .collect();
    let outcome = filter
        .outcome
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let outcomes = ["success", "failure"]
        .iter()
        .map(|o| Choice {
            value: (*o).into(),
            selected: outcome == *o,
        })
        .collect();
    let token = filter.token.clone().unwrap_or_default();
    let mut names: Vec<String> = state
        .store
        .tokens(t.id)
        .await?
        .into_iter()
        .map(|x| x.name)
        .collect();
    names.sort();
    names.dedup();
    let tokens = names
        .into_iter()
        .map(|n| Choice {
            selected: n == token,
            value: n,
        })
        .collect();
    html(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &LogPage {
            chrome: chrome(&s, Some(&t), "log"),
            since: filter.since.clone().unwrap_or_default(),
            until: filter.until.clone().unwrap_or_default(),
            resource: filter.resource.clone().unwrap_or_default(),
            operations,
            outcomes,
            tokens,
            rows: view::event_rows(&t.slug, &events),
            next_href,
            csv_href: format!(
                "/console/api/t/{}/events?{}",
                t.slug,
                href(&[("format", "csv".into()), ("limit", "10000".into())])
            ),
            json_href: format!(
                "/console/api/t/{}/events?{}",
                t.slug,
                href(&[("format", "json".into()), ("limit", "10000".into())])
            ),
            day,
            month,
            chart,
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_box_takes_filters_or_text() {
        assert_eq!(
            search_filter(ResourceKind::User, "userName sw \"a\"").as_deref(),
            Some("userName sw \"a\"")
        );
        let text = search_filter(ResourceKind::User, "ali\"ce").unwrap();
        assert!(text.starts_with("userName co \"ali\\\"ce\""), "{text}");
        assert!(scim_proto::filter::parse(&text).is_ok());
        assert!(search_filter(ResourceKind::Group, "  ").is_none());
    }

    #[test]
    fn token_form_scopes() {
        let f = TokenForm {
            users: "rw".into(),
            groups: "r".into(),
            bulk: "none".into(),
            ..Default::default()
        };
        assert_eq!(f.scopes().unwrap().to_string(), "users:rw groups:r");
        assert!(TokenForm::default().scopes().is_err());
        let bad = TokenForm {
            users: "admin".into(),
            ..Default::default()
        };
        assert!(bad.scopes().is_err());
    }
}
