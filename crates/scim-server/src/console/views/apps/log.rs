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
    next_href: Option<String>,
    csv_href: String,
    json_href: String,
}

const APP_LOG_PAGE: u32 = 50;

fn log_query(pairs: &[(String, String)], limit: u32) -> SyncLogQuery {
    let opt = |k: &str| Some(param(pairs, k)).filter(|v| !v.is_empty());
    SyncLogQuery {
        cycle_id: opt("cycle"),
        action: opt("action"),
        status: opt("status"),
        object: opt("object"),
        before_seq: opt("before").and_then(|b| b.parse().ok()),
        limit,
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
        let rows = state.sync.log(&name, &log_query(&pairs, 10_000)).await?;
        return export(&name, &format, &rows);
    }
    let query = log_query(&pairs, APP_LOG_PAGE);
    let rows = state.sync.log(&name, &query).await?;
    let href = app_href(&name);
    let filters: Vec<(&str, String)> = ["action", "status", "object", "cycle"]
        .iter()
        .map(|k| (*k, param(&pairs, k)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let with = |extra: (&str, String)| {
        let mut kv = filters.clone();
        kv.push(extra);
        format!("{href}/log?{}", view::query_string(&kv))
    };
    let next_href = (rows.len() == APP_LOG_PAGE as usize)
        .then(|| rows.last().map(|r| with(("before", r.seq.to_string()))))
        .flatten();
    let list = rows
        .iter()
        .map(|r| LogRow {
            href: format!("{href}/log/{}", r.seq),
            time: view::fmt_time(r.at),
            cycle: if r.cycle_id.starts_with("on-demand-") {
                "on demand".into()
            } else {
                r.cycle_id.chars().take(8).collect()
            },
            kind: r.kind.clone(),
            display: r.display.clone(),
            action: r.action.clone(),
            status: r.status.clone(),
            error: r.error_code.clone().unwrap_or_default(),
        })
        .collect();
    html(
        StatusCode::OK,
        &AppLogPage {
            chrome: chrome(&s, None, "apps"),
            csv_href: with(("format", "csv".into())),
            json_href: with(("format", "json".into())),
            name: name.clone(),
            href,
            action: query.action.unwrap_or_default(),
            status: query.status.unwrap_or_default(),
            object: query.object.unwrap_or_default(),
            cycle: query.cycle_id.unwrap_or_default(),
            rows: list,
            next_href,
        },
    )
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

/// `GET /console/apps/{name}/log/{seq}`: one row's steps and modified properties.
pub async fn app_log_row(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path((name, seq)): Path<(String, i64)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    stored(&state, &name).await?;
    let rows = state
        .sync
        .log(
            &name,
            &SyncLogQuery {
                before_seq: seq.checked_add(1),
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    let r = rows
        .into_iter()
        .find(|r| r.seq == seq)
        .ok_or_else(|| AppError::new(404, "there is no such log row for this app"))?;
    let steps = r
        .steps
        .as_array()
        .into_iter()
        .flatten()
        .map(|st| StepRow {
            step: st["step"].as_str().unwrap_or("").into(),
            status: st["status"].as_str().unwrap_or("").into(),
            detail: st["detail"].as_str().unwrap_or("").into(),
        })
        .collect();
    let changes = r.changes["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let redacted = c["redacted"].as_bool() == Some(true);
            ChangeRow {
                path: c["path"].as_str().unwrap_or("").into(),
                old: shown(&c["old"], redacted),
                new: shown(&c["new"], redacted),
            }
        })
        .collect();
    let mut other = r.changes.clone();
    if let Some(o) = other.as_object_mut() {
        o.remove("attributes");
    }
    let other_changes = match &other {
        Value::Object(o) if !o.is_empty() => {
            serde_json::to_string_pretty(&other).unwrap_or_default()
        }
        _ => String::new(),
    };
    html(
        StatusCode::OK,
        &LogRowPage {
            chrome: chrome(&s, None, "apps"),
            href: app_href(&name),
            name,
            on_demand: param(&pairs(q), "on_demand") == "1",
            time: view::fmt_time(r.at),
            cycle: r.cycle_id,
            change_id: r.change_id,
            kind: r.kind,
            source_id: r.source_id,
            target_id: r.target_id.unwrap_or_default(),
            display: r.display,
            action: r.action,
            status: r.status,
            error: r.error_code.unwrap_or_default(),
            duration_ms: r.duration_ms,
            steps,
            changes,
            other_changes,
        },
    )
}
