//! The Users and Groups browsers and a resource's page.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chrome, EventRow};
use super::common::{AppStateRef, chrome, html, pairs, param, tenant_of};
use crate::AppState;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::event::EventQuery;
use scim_core::{CoreError, ResourceKind, StoredResource};
use scim_proto::SearchRequest;
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

/// One row of the Users or Groups list.
fn resource_row(kind: ResourceKind, slug: &str, path: &str, r: &StoredResource) -> ResourceRow {
    let str_at = |v: &serde_json::Value, p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
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
        href: format!("/console/t/{slug}/{path}/{}", r.id),
        name,
        secondary,
        email,
        active,
        modified: view::fmt_time(r.modified_at),
    }
}

/// A list page's paging: where page `page` starts, what it shows, and its neighbours.
struct Paging {
    showing: String,
    prev: Option<String>,
    next: Option<String>,
}

impl Paging {
    fn of(page: i64, shown: i64, total: i64, link: impl Fn(i64) -> String) -> Self {
        let first = (page - 1) * PAGE_SIZE;
        let showing = if shown == 0 {
            "No results".to_string()
        } else {
            format!("{}–{} of {total}", first + 1, first + shown)
        };
        Paging {
            showing,
            prev: (page > 1).then(|| link(page - 1)),
            next: (first + shown < total).then(|| link(page + 1)),
        }
    }
}

async fn resources(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &str,
    kind: ResourceKind,
    raw: Option<String>,
) -> ApiResult<Response> {
    let t = tenant_of(state, tenant).await?;
    let p = pairs(raw);
    let q = param(&p, "q");
    let page: i64 = param(&p, "page").parse().unwrap_or(1).clamp(1, 1_000_000);
    let (title, path, _) = labels(kind);
    let req = SearchRequest {
        filter: search_filter(kind, &q),
        sort_by: Some(name_attribute(kind).into()),
        start_index: Some((page - 1) * PAGE_SIZE + 1),
        count: Some(PAGE_SIZE),
        ..Default::default()
    };
    // A search the filter grammar refuses shows an empty list with the error.
    let (rows, total, error) = match state.resources.list(&t, kind, &req).await {
        Ok(r) => (r.resources, r.total, None),
        Err(CoreError::Scim(e)) if e.status < 500 => (Vec::new(), 0, Some(e.detail)),
        Err(e) => return Err(e.into()),
    };
    let link = |page: i64| {
        let mut kv = vec![("page", page.to_string())];
        if !q.is_empty() {
            kv.insert(0, ("q", q.clone()));
        }
        format!("/console/t/{}/{path}?{}", t.slug, view::query_string(&kv))
    };
    let paging = Paging::of(page, rows.len() as i64, total as i64, link);
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    let page = ResourcesPage {
        chrome: chrome(s, Some(&t), path),
        title,
        path,
        is_users: kind == ResourceKind::User,
        prev_href: paging.prev,
        next_href: paging.next,
        q,
        rows: rows
            .iter()
            .map(|r| resource_row(kind, &t.slug, path, r))
            .collect(),
        showing: paging.showing,
        error,
    };
    html(status, &page)
}

pub async fn users(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    resources(&state, &s, &tenant, ResourceKind::User, q).await
}

pub async fn groups(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
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

/// What a resource's page lists beside it: a user's groups, a group's members.
fn related_of(
    slug: &str,
    r: &StoredResource,
    groups: Vec<scim_proto::render::GroupRef>,
) -> Vec<Related> {
    match r.kind {
        ResourceKind::User => groups
            .into_iter()
            .map(|g| Related {
                href: format!("/console/t/{slug}/groups/{}", g.value),
                name: g.display,
                kind: "Group".into(),
            })
            .collect(),
        ResourceKind::Group => r
            .members
            .iter()
            .flatten()
            .map(|m| Related {
                href: format!(
                    "/console/t/{slug}/{}/{}",
                    m.kind.endpoint().to_ascii_lowercase(),
                    m.value
                ),
                name: m.display.clone().unwrap_or_else(|| m.value.clone()),
                kind: m.kind.as_str().into(),
            })
            .collect(),
    }
}

/// A kind's words on its page: the list's title and path, and what is listed beside it.
fn labels(kind: ResourceKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        ResourceKind::User => ("Users", "users", "Groups"),
        ResourceKind::Group => ("Groups", "groups", "Members"),
    }
}

/// What the page lists beside the resource (the first [`MEMBERS_SHOWN`]) and how many in all.
async fn related(
    state: &AppState,
    t: &scim_core::Tenant,
    r: &StoredResource,
) -> ApiResult<(Vec<Related>, usize)> {
    let groups = match r.kind {
        ResourceKind::User => state.resources.groups_of(t, &r.id).await?,
        ResourceKind::Group => Vec::new(),
    };
    let mut related = related_of(&t.slug, r, groups);
    let total = related.len();
    related.truncate(MEMBERS_SHOWN);
    Ok((related, total))
}

/// The attribute that names a resource of this kind (lists sort by it).
fn name_attribute(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    }
}

/// The page's title: the userName or displayName, else the id.
fn title_of(full: &serde_json::Value, kind: ResourceKind, id: &str) -> String {
    full.get(name_attribute(kind))
        .and_then(serde_json::Value::as_str)
        .unwrap_or(id)
        .to_string()
}

async fn resource(
    state: &AppState,
    s: &ConsoleSession,
    tenant: &str,
    kind: ResourceKind,
    id: &str,
) -> ApiResult<Response> {
    let t = tenant_of(state, tenant).await?;
    let is_group = kind == ResourceKind::Group;
    let r = state.resources.get(&t, kind, id, is_group).await?;
    let (list_title, path, related_title) = labels(kind);
    let (related, related_total) = related(state, &t, &r).await?;
    let full = r.to_scim(&state.base_url(&t));
    let mut shown = full.clone();
    if let Some(o) = shown.as_object_mut() {
        // Members are listed separately (and may be 100,000 long).
        o.remove("members");
    }
    let query = EventQuery {
        resource: Some(r.id.clone()),
        limit: 50,
        ..Default::default()
    };
    let history = state.services.events.query(&t, &query).await?;
    let history_query = view::query_string(&[("resource", r.id.clone())]);
    let page = ResourcePage {
        chrome: chrome(s, Some(&t), path),
        title: title_of(&full, kind, id),
        list_title,
        list_href: format!("/console/t/{}/{path}", t.slug),
        id: r.id.clone(),
        is_users: !is_group,
        active: full.get("active").and_then(serde_json::Value::as_bool) != Some(false),
        created: view::fmt_time(r.created_at),
        modified: view::fmt_time(r.modified_at),
        version: r.version,
        attributes: view::flatten(&shown, 300),
        json: serde_json::to_string_pretty(&shown).map_err(AppError::internal)?,
        related_title,
        related,
        related_total,
        rows: view::event_rows(&t.slug, &history),
        history_href: format!("/console/t/{}/log?{history_query}", t.slug),
    };
    html(StatusCode::OK, &page)
}

pub async fn user(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    resource(&state, &s, &tenant, ResourceKind::User, &id).await
}

pub async fn group(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    resource(&state, &s, &tenant, ResourceKind::Group, &id).await
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
}
