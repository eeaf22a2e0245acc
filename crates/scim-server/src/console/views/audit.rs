//! The audit log page (issue 32): `/console/audit`, who did what, filtered by tenant, person,
//! action and time, paged by id, exported as CSV or JSON (`format=csv|json`, up to 10,000
//! rows). Instance admins see every row; a tenant admin only their tenants' rows.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chrome};
use super::common::{AppStateRef, chrome, html, pairs, param};
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim_core::Timestamp;
use scim_core::audit::{ActorKind, AuditAction, AuditQuery, AuditRecord, MAX_AUDIT_PAGE, to_csv};
use scim_core::event::parse_time_bound;

/// Rows on one page.
const PAGE: u32 = 100;

struct Row {
    at: String,
    actor: String,
    role: &'static str,
    address: String,
    tenant: String,
    action: &'static str,
    target: String,
}

struct Choice {
    value: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<Row>,
    tenants: Vec<Choice>,
    actions: Vec<Choice>,
    actor: String,
    since: String,
    /// The query without paging, for the export links and the next page.
    query: String,
    /// Whether any filter is set.
    filtered: bool,
    older: Option<i64>,
    error: Option<String>,
}

/// The filters of the query string (`tenant`, `actor`, `action`, `since`, `before`).
struct Filters {
    tenant: String,
    actor: String,
    action: String,
    since: String,
    before: Option<i64>,
    format: String,
}

fn filters(q: Option<String>) -> Filters {
    let p = pairs(q);
    Filters {
        tenant: param(&p, "tenant"),
        actor: param(&p, "actor"),
        action: param(&p, "action"),
        since: param(&p, "since"),
        before: param(&p, "before").parse().ok(),
        format: param(&p, "format"),
    }
}

/// The store query for these filters, or what is wrong with them.
async fn query(
    state: &crate::AppState,
    s: &ConsoleSession,
    f: &Filters,
    limit: u32,
) -> Result<AuditQuery, String> {
    let tenant_id = match f.tenant.as_str() {
        "" => None,
        slug if !s.operator.role.sees(slug) => return Err(format!("there is no tenant '{slug}'")),
        slug => match state.services.tenants.get(slug).await {
            Ok(t) => Some(t.id),
            Err(_) => return Err(format!("there is no tenant '{slug}'")),
        },
    };
    let action = match f.action.as_str() {
        "" => None,
        a => Some(AuditAction::parse(a).ok_or_else(|| format!("unknown action '{a}'"))?),
    };
    let since = match f.since.as_str() {
        "" => None,
        t => Some(parse_time_bound(t, Timestamp::now()).map_err(|e| e.to_string())?),
    };
    Ok(AuditQuery {
        tenant_id,
        actor: (!f.actor.is_empty()).then(|| f.actor.clone()),
        action,
        since,
        before_id: f.before,
        limit,
        ..AuditQuery::default()
    })
}

pub async fn audit(
    State(state): AppStateRef,
    s: ConsoleSession,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let f = filters(raw);
    let export = matches!(f.format.as_str(), "csv" | "json");
    let limit = if export { MAX_AUDIT_PAGE } else { PAGE };
    let (rows, error) = match query(&state, &s, &f, limit).await {
        Ok(q) => (state.services.audit.list(&s.operator.role, q).await?, None),
        Err(e) if export => return Err(AppError::new(400, e)),
        Err(e) => (Vec::new(), Some(e)),
    };
    let rows = if s.operator.role.is_instance() {
        rows
    } else {
        rows.into_iter().map(without_instance_addresses).collect()
    };
    match f.format.as_str() {
        "csv" => return Ok(download(to_csv(&rows)?, "text/csv; charset=utf-8", "csv")),
        "json" => {
            let body = serde_json::to_string(&rows)
                .map_err(|e| AppError::new(500, format!("JSON export: {e}")))?;
            return Ok(download(body, "application/json", "json"));
        }
        "" => {}
        other => {
            return Err(AppError::new(
                400,
                format!("format must be csv or json, not '{other}'"),
            ));
        }
    }
    let older = (rows.len() == PAGE as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let tenants = state
        .services
        .tenants
        .list()
        .await?
        .into_iter()
        .filter(|t| s.operator.role.sees(&t.slug))
        .map(|t| Choice {
            selected: t.slug == f.tenant,
            value: t.slug,
        })
        .collect();
    let actions = AuditAction::ALL
        .iter()
        .map(|a| Choice {
            value: a.as_str().to_string(),
            selected: a.as_str() == f.action,
        })
        .collect();
    let filtered = [&f.tenant, &f.actor, &f.action, &f.since]
        .iter()
        .any(|v| !v.is_empty());
    let query = serde_urlencoded::to_string([
        ("tenant", f.tenant.as_str()),
        ("actor", f.actor.as_str()),
        ("action", f.action.as_str()),
        ("since", f.since.as_str()),
    ])
    .unwrap_or_default();
    let rows = rows
        .into_iter()
        .map(|r| {
            let e = r.entry;
            Row {
                at: view::fmt_time(e.at),
                actor: e.actor.name,
                role: e.actor.kind.as_str(),
                address: e.actor.address.unwrap_or_default(),
                tenant: e.tenant.unwrap_or_default(),
                action: e.action.0.as_str(),
                target: e.target,
            }
        })
        .collect();
    html(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &AuditPage {
            chrome: chrome(&s, None, "audit"),
            rows,
            tenants,
            actions,
            actor: f.actor,
            since: f.since,
            query,
            filtered,
            older,
            error,
        },
    )
}

/// An instance-side actor's address removed: a tenant admin sees where their own tenants'
/// people came from, not where the people who run scimd work from.
fn without_instance_addresses(mut r: AuditRecord) -> AuditRecord {
    if !matches!(
        r.entry.actor.kind,
        ActorKind::TenantAdmin | ActorKind::SetupLink
    ) {
        r.entry.actor.address = None;
    }
    r
}

fn download(body: String, content_type: &'static str, ext: &str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"scimd-audit.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
