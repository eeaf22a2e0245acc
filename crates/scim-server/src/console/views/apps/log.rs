//! One app's per-object provisioning log: filters, exports, a row's steps and modified
//! properties.

use super::*;

struct LogRow {
    href: String,
    time: String,
    cycle: String,
    kind: String,
    display: String,
    action: String,
    status: String,
    error: String,
    /// What the row's last step (or failure) says: `deleted at the source; Delete
    /// scheduled for …`, the target's error.
    detail: String,
}

#[derive(Template)]
#[template(path = "console/app_log.html")]
struct AppLogPage {
    chrome: Chrome,
    name: String,
    href: String,
    action: String,
    status: String,
    object: String,
    cycle: String,
    rows: Vec<LogRow>,
    /// The action filter's options: value and label.
    actions: Vec<(&'static str, &'static str)>,
    next_href: Option<String>,
    csv_href: String,
    json_href: String,
}

const APP_LOG_PAGE: u32 = 50;

fn log_query(pairs: &[(String, String)], limit: u32) -> SyncLogQuery {
    let opt = |k: &str| Some(param(pairs, k)).filter(|v| !v.is_empty());
    SyncLogQuery {
        cycle_id: opt("cycle"),
        action: opt("action").and_then(|a| SyncAction::parse(&a)),
        status: opt("status").and_then(|s| scim_core::Status::parse(&s)),
        object: opt("object"),
        before_seq: opt("before").and_then(|b| b.parse().ok()),
        limit,
    }
}

impl LogRow {
    fn of(href: &str, r: &SyncLogRecord) -> Self {
        LogRow {
            href: format!("{href}/log/{}", r.seq),
            time: view::fmt_time(r.at),
            cycle: if r.cycle_id.starts_with("on-demand-") {
                "on demand".into()
            } else {
                r.cycle_id.chars().take(8).collect()
            },
            kind: r.kind.as_str().to_string(),
            display: r.display.clone(),
            action: r.action.label().to_string(),
            status: r.status.as_str().to_string(),
            error: r.error_code.map_or("", |c| c.as_str()).to_string(),
            detail: scim_proto::error::excerpt(r.detail()),
        }
    }
}

/// The page's links that keep its filters: the next page and the two exports.
struct Links {
    next: Option<String>,
    csv: String,
    json: String,
}

impl Links {
    fn of(href: &str, pairs: &[(String, String)], rows: &[SyncLogRecord]) -> Self {
        let filters: Vec<(&str, String)> = ["action", "status", "object", "cycle"]
            .iter()
            .map(|k| (*k, param(pairs, k)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let with = |extra: (&str, String)| {
            let mut kv = filters.clone();
            kv.push(extra);
            format!("{href}/log?{}", view::query_string(&kv))
        };
        // A full page has a next one, before its last row.
        let next = (rows.len() == APP_LOG_PAGE as usize)
            .then(|| rows.last().map(|r| with(("before", r.seq.to_string()))))
            .flatten();
        Links {
            next,
            csv: with(("format", "csv".into())),
            json: with(("format", "json".into())),
        }
    }
}

/// `GET /console/apps/{name}/log`, and its exports (`format=csv|json`).
pub async fn app_log(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    stored(&state, &name).await?;
    let pairs = pairs(q);
    let format = param(&pairs, "format");
    if format == "csv" || format == "json" {
        let rows = state
            .apps
            .engine()
            .log(&name, &log_query(&pairs, 10_000))
            .await?;
        return export(&name, &format, &rows);
    }
    let query = log_query(&pairs, APP_LOG_PAGE);
    let rows = state.apps.engine().log(&name, &query).await?;
    let href = app_href(&name);
    let links = Links::of(&href, &pairs, &rows);
    let page = AppLogPage {
        chrome: chrome(&s, None, "apps"),
        name: name.clone(),
        rows: rows.iter().map(|r| LogRow::of(&href, r)).collect(),
        actions: SyncAction::ALL
            .iter()
            .map(|a| (a.as_str(), a.label()))
            .collect(),
        href,
        action: query.action.map_or("", SyncAction::as_str).to_string(),
        status: query
            .status
            .map_or("", scim_core::Status::as_str)
            .to_string(),
        object: query.object.unwrap_or_default(),
        cycle: query.cycle_id.unwrap_or_default(),
        next_href: links.next,
        csv_href: links.csv,
        json_href: links.json,
    };
    html(StatusCode::OK, &page)
}

fn export(name: &str, format: &str, rows: &[SyncLogRecord]) -> ApiResult<Response> {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let (body, ctype, ext) = if format == "csv" {
        (
            scim_sync::export::log_csv(rows).map_err(AppError::internal)?,
            "text/csv; charset=utf-8",
            "csv",
        )
    } else {
        let list: Vec<Value> = rows.iter().map(scim_sync::export::log_json).collect();
        (Value::Array(list).to_string(), "application/json", "json")
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"scimd-app-{safe}-log.{ext}\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

struct StepRow {
    step: String,
    status: String,
    detail: String,
}

struct ChangeRow {
    path: String,
    old: String,
    new: String,
}

#[derive(Template)]
#[template(path = "console/app_log_row.html")]
struct LogRowPage {
    chrome: Chrome,
    name: String,
    href: String,
    on_demand: bool,
    time: String,
    cycle: String,
    change_id: String,
    kind: String,
    source_id: String,
    target_id: String,
    display: String,
    action: String,
    status: String,
    error: String,
    /// The last failure's (or step's) detail: said in the banner of a failed on-demand row.
    detail: String,
    duration_ms: i64,
    steps: Vec<StepRow>,
    changes: Vec<ChangeRow>,
    other_changes: String,
}

fn shown(v: &Value, redacted: bool) -> String {
    match v {
        Value::Null => "(none)".into(),
        _ if redacted => "•••".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl StepRow {
    fn all(steps: &[scim_core::Step]) -> Vec<StepRow> {
        steps
            .iter()
            .map(|st| StepRow {
                step: st.step.as_str().to_string(),
                status: st.status.as_str().to_string(),
                detail: st.detail.clone(),
            })
            .collect()
    }
}

impl ChangeRow {
    /// The modified properties, secrets shown as dots.
    fn all(changes: &scim_core::LogChanges) -> Vec<ChangeRow> {
        let show =
            |v: &Option<Value>, redacted: bool| shown(v.as_ref().unwrap_or(&Value::Null), redacted);
        changes
            .attributes
            .iter()
            .map(|c| ChangeRow {
                path: c.path.clone(),
                old: show(&c.old, c.redacted),
                new: show(&c.new, c.redacted),
            })
            .collect()
    }
}

/// A group's membership changes (source ids), as text.
fn other_changes(changes: &scim_core::LogChanges) -> String {
    let mut out = Vec::new();
    if !changes.members_added.is_empty() {
        out.push(format!(
            "members added: {}",
            changes.members_added.join(", ")
        ));
    }
    if !changes.members_removed.is_empty() {
        out.push(format!(
            "members removed: {}",
            changes.members_removed.join(", ")
        ));
    }
    out.join("\n")
}

/// `GET /console/apps/{name}/log/{seq}`: one row's steps and modified properties.
pub async fn app_log_row(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path((name, seq)): Path<(String, i64)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    stored(&state, &name).await?;
    let query = SyncLogQuery {
        before_seq: seq.checked_add(1),
        limit: 1,
        ..Default::default()
    };
    let rows = state.apps.engine().log(&name, &query).await?;
    let r = rows
        .into_iter()
        .find(|r| r.seq == seq)
        .ok_or_else(|| AppError::new(404, "there is no such log row for this app"))?;
    let page = LogRowPage {
        chrome: chrome(&s, None, "apps"),
        href: app_href(&name),
        name,
        on_demand: param(&pairs(q), "on_demand") == "1",
        time: view::fmt_time(r.at),
        detail: r.detail().to_string(),
        steps: StepRow::all(&r.steps),
        changes: ChangeRow::all(&r.changes),
        other_changes: other_changes(&r.changes),
        cycle: r.cycle_id,
        change_id: r.change_id,
        kind: r.kind.as_str().to_string(),
        source_id: r.source_id,
        target_id: r.target_id.unwrap_or_default(),
        display: r.display,
        action: r.action.label().to_string(),
        status: r.status.as_str().to_string(),
        error: r.error_code.map_or("", |c| c.as_str()).to_string(),
        duration_ms: r.duration_ms,
    };
    html(StatusCode::OK, &page)
}
