//! The provisioning engine's screens ("Apps", like an IdP's enterprise applications): the
//! list of outbound jobs, a New app form with Test connection, each app's status and
//! synchronization details with its actions (turn on/off, pause, run, restart, reauthorize,
//! staged deletes, provision on demand, delete), and its provisioning log with the steps and
//! modified properties of every row. Everything goes through `scim_sync::Engine`, the same
//! service the `scimd sync` commands use.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chart, Chrome};
use super::common::{AppStateRef, chrome, html, pairs, param};
use crate::AppState;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use scim_core::{SyncLogQuery, SyncLogRecord, Timestamp};
use scim_sync::engine::{Check, JobStatus, RestartScope};
use scim_sync::job::SourceKind;
use scim_sync::{JobSpec, SyncError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Where a console link for an app goes (names are free text: encoded).
fn app_href(name: &str) -> String {
    format!("/console/apps/{}", view::url_encode(name))
}

fn source_text(spec: &JobSpec) -> String {
    let s = &spec.source;
    let path = || {
        s.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    match s.kind {
        SourceKind::Csv => format!("CSV file {}", path()),
        SourceKind::Json => format!("JSON file {}", path()),
        SourceKind::Scim => format!("SCIM server {}", s.url.clone().unwrap_or_default()),
        SourceKind::Tenant => format!("scimd tenant {}", s.tenant.clone().unwrap_or_default()),
        SourceKind::Ldap => format!("LDAP {}", s.url.clone().unwrap_or_default()),
    }
}

/// The status badge of the app list and page (the engine's state, in the guides' words).
fn badge(st: &JobStatus) -> (&'static str, String) {
    match st.state.as_str() {
        "waiting for delete approval" => ("waiting", "Waiting for delete approval".into()),
        "quarantined" => {
            let q = st.quarantine.as_ref();
            let why = q.and_then(|q| q["reason"].as_str()).unwrap_or("failing");
            ("quarantined", format!("Quarantined: {why}"))
        }
        "off" => ("off", "Off".into()),
        "paused" => ("paused", "Paused".into()),
        "initial" => ("initial", "Initial cycle".into()),
        _ => ("active", "Active".into()),
    }
}

/// The actions that change the target, in the order the log lists them.
const CHANGING: [&str; 6] = ["Create", "Adopt", "Update", "Enable", "Disable", "Delete"];

/// `Create 3 · Update 1 · 1 failed` from a cycle's counts.
fn counts_text(counts: &Value) -> String {
    if let Some(e) = counts.get("error").and_then(Value::as_str) {
        return format!("error: {e}");
    }
    let n = |map: &str, key: &str| counts[map][key].as_u64().unwrap_or(0);
    let mut parts: Vec<String> = CHANGING
        .iter()
        .chain(["StagedDelete", "Conflict"].iter())
        .filter(|a| n("actions", a) > 0)
        .map(|a| format!("{a} {}", n("actions", a)))
        .collect();
    if n("statuses", "Failure") > 0 {
        parts.push(format!("{} failed", n("statuses", "Failure")));
    }
    if let Some(why) = counts.get("stopped").and_then(Value::as_str) {
        parts.push(format!("stopped: {why}"));
    }
    if parts.is_empty() {
        "no changes".into()
    } else {
        parts.join(" · ")
    }
}

/// When `scimd serve` runs the app next, in the console's time format.
fn next_run_text(st: &JobStatus) -> String {
    let Some(at) = &st.next_run else {
        return "—".into();
    };
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| view::fmt_time(Timestamp::from_datetime(t)))
        .unwrap_or_else(|_| at.clone())
}

struct AppRow {
    href: String,
    name: String,
    source: String,
    target: String,
    badge_class: &'static str,
    badge: String,
    last_cycle: String,
    next_run: String,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
    broken: Vec<(String, String)>,
}

/// `GET /console/apps`.
pub async fn apps(State(state): AppStateRef, s: ConsoleSession) -> ApiResult<Response> {
    let engine = &state.sync;
    let mut apps = Vec::new();
    let mut broken = Vec::new();
    for r in engine.store.jobs().await? {
        let spec = match JobSpec::parse(&r.spec, None) {
            Ok(spec) => spec,
            Err(e) => {
                broken.push((r.name.clone(), e.to_string()));
                continue;
            }
        };
        let st = engine.status(&r.name).await?;
        let (badge_class, badge) = badge(&st);
        apps.push(AppRow {
            href: app_href(&r.name),
            source: source_text(&spec),
            target: spec.target.url.clone(),
            last_cycle: st
                .last_cycle
                .as_ref()
                .map(|c| {
                    format!(
                        "{} · {}",
                        c["status"].as_str().unwrap_or("?"),
                        counts_text(&c["counts"])
                    )
                })
                .unwrap_or_else(|| "no cycle yet".into()),
            next_run: next_run_text(&st),
            name: r.name,
            badge_class,
            badge,
        });
    }
    html(
        StatusCode::OK,
        &AppsPage {
            chrome: chrome(&s, None, "apps"),
            apps,
            broken,
        },
    )
}

// ---------------------------------------------------------------------------------------
// New app

#[derive(Deserialize, Default, Clone)]
pub struct NewAppForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    source_kind: String,
    #[serde(default)]
    source_path: String,
    #[serde(default)]
    source_id: String,
    #[serde(default)]
    source_tenant: String,
    #[serde(default)]
    target_url: String,
    #[serde(default)]
    target_tenant: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
}

impl NewAppForm {
    /// The target URL with the `{tenant-name}` placeholder filled in (the Google guide's
    /// endpoint URL).
    fn target(&self) -> String {
        self.target_url
            .trim()
            .replace("{tenant-name}", self.target_tenant.trim())
    }

    /// The job the form describes, checked as a job file would be.
    fn spec(&self) -> Result<JobSpec, SyncError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(SyncError::Job("give the app a name".into()));
        }
        if self.target_url.contains("{tenant-name}") && self.target_tenant.trim().is_empty() {
            return Err(SyncError::Job(
                "the target URL has a {tenant-name} placeholder: fill in the tenant name".into(),
            ));
        }
        let source = match self.source_kind.as_str() {
            "csv" | "json" => {
                let mut s = json!({"kind": self.source_kind, "path": self.source_path.trim()});
                if !self.source_id.trim().is_empty() {
                    s["id"] = Value::String(self.source_id.trim().into());
                }
                s
            }
            "tenant" => json!({"kind": "tenant", "tenant": self.source_tenant.trim()}),
            other => {
                return Err(SyncError::Job(format!(
                    "choose a source (CSV, JSON or a scimd tenant), not '{}'",
                    scim_proto::error::excerpt(other)
                )));
            }
        };
        let mut job = json!({
            "name": name,
            "source": source,
            "target": {"url": self.target(), "token": self.token.trim()},
        });
        let emails: Vec<&str> = self
            .email
            .split([',', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if !emails.is_empty() {
            job["notify"] = json!({"email": emails});
        }
        JobSpec::from_value(job)
    }
}

#[derive(Template)]
#[template(path = "console/app_new.html")]
struct NewAppPage {
    chrome: Chrome,
    form: NewAppForm,
    tenants: Vec<String>,
    checks: Vec<Check>,
    error: Option<String>,
}

async fn new_app_page(
    state: &AppState,
    s: &ConsoleSession,
    status: StatusCode,
    form: NewAppForm,
    checks: Vec<Check>,
    error: Option<String>,
) -> ApiResult<Response> {
    let tenants = state
        .services
        .tenants
        .list()
        .await?
        .into_iter()
        .map(|t| t.slug)
        .collect();
    html(
        status,
        &NewAppPage {
            chrome: chrome(s, None, "apps"),
            form,
            tenants,
            checks,
            error,
        },
    )
}

/// The form again with why the engine refused it; its own database failing is a 500.
async fn refused(
    state: &AppState,
    s: &ConsoleSession,
    form: NewAppForm,
    e: SyncError,
) -> ApiResult<Response> {
    let e = AppError::from(e);
    if e.status().is_server_error() {
        return Err(e);
    }
    let status = e.status();
    new_app_page(state, s, status, form, Vec::new(), Some(e.error.detail)).await
}

/// `GET /console/apps/new`.
pub async fn new_app_form(State(state): AppStateRef, s: ConsoleSession) -> ApiResult<Response> {
    let form = NewAppForm {
        source_kind: "csv".into(),
        target_url: format!("{}/t/{{tenant-name}}/scim/v2", state.config.public_url),
        ..Default::default()
    };
    new_app_page(&state, &s, StatusCode::OK, form, Vec::new(), None).await
}

/// `POST /console/apps/new`: `test` runs the connection checks; `create` stores the app
/// (off: the operator turns it on from its page after provisioning a user on demand).
pub async fn new_app(
    State(state): AppStateRef,
    s: ConsoleSession,
    Form(form): Form<NewAppForm>,
) -> ApiResult<Response> {
    let spec = match form.spec() {
        Ok(spec) => spec,
        // Test connection (an htmx swap of the checks only) says what is wrong as a check.
        Err(e) if form.action == "test" => {
            let checks = vec![Check {
                name: "app settings".into(),
                ok: false,
                detail: e.to_string(),
            }];
            return new_app_page(&state, &s, StatusCode::OK, form, checks, None).await;
        }
        Err(e) => {
            return refused(&state, &s, form, e).await;
        }
    };
    let engine = &state.sync;
    match form.action.as_str() {
        "test" => {
            let checks = engine.test(&spec, None).await;
            new_app_page(&state, &s, StatusCode::OK, form, checks, None).await
        }
        "create" => {
            if engine.store.job(&spec.name).await?.is_some() {
                let e = format!("an app named '{}' exists already", spec.name);
                return new_app_page(&state, &s, StatusCode::CONFLICT, form, Vec::new(), Some(e))
                    .await;
            }
            if let Err(e) = engine.import(&spec).await {
                return refused(&state, &s, form, e).await;
            }
            tracing::info!(operator = %s.operator.username, job = %spec.name, "app created in the console");
            Ok(Redirect::to(&format!("{}?created=1", app_href(&spec.name))).into_response())
        }
        other => Err(AppError::new(
            400,
            format!("unknown action '{}'", scim_proto::error::excerpt(other)),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// One app

struct CycleRow {
    started: String,
    mode: String,
    status: String,
    duration: String,
    counts: String,
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    chrome: Chrome,
    name: String,
    href: String,
    source: String,
    target: String,
    token: String,
    enabled: bool,
    paused: bool,
    badge_class: &'static str,
    badge: String,
    quarantine: Option<String>,
    running: Option<String>,
    ledger: Vec<(String, u64)>,
    staged: u64,
    escrowed: u64,
    abandoned: u64,
    next_run: String,
    cycles: Vec<CycleRow>,
    chart: Chart,
    checks: Vec<Check>,
    message: Option<String>,
    error: Option<String>,
}

/// How the target token is kept: never the secret itself.
fn token_text(spec: &JobSpec, sealed: bool) -> String {
    let t = &spec.target;
    if let Some(v) = &t.token_env {
        format!("from the variable ${v}")
    } else if let Some(f) = &t.token_file {
        format!("from the file {}", f.display())
    } else if sealed {
        "stored, sealed with the sync key".into()
    } else {
        "none".into()
    }
}

async fn app_page(
    state: &AppState,
    s: &ConsoleSession,
    name: &str,
    status: StatusCode,
    checks: Vec<Check>,
    message: Option<String>,
    error: Option<String>,
) -> ApiResult<Response> {
    let starting = message.as_deref() == Some(CYCLE_STARTED);
    let engine = &state.sync;
    let (spec, record) = stored(state, name).await?;
    let st = engine.status(name).await?;
    let (badge_class, badge) = badge(&st);
    // A 30-day chart: 40-minute cycles make ~1,100 in 30 days.
    let cycles = engine.store.cycles(name, 1_500).await?;
    // A cycle just started from this page may not have said so yet: poll all the same.
    let running = record
        .state
        .get("running")
        .and_then(|r| r["started_us"].as_i64())
        .map(|us| view::fmt_time(Timestamp::from_micros(us)))
        .or_else(|| starting.then(|| "just now".to_string()));
    let now = Timestamp::now();
    let chart = daily_actions(&cycles, now);
    let cycles = cycles
        .iter()
        .take(10)
        .map(|c| CycleRow {
            started: view::fmt_time(c.started_at),
            mode: c.mode.clone(),
            status: c.status.clone(),
            duration: c
                .finished_at
                .map(|f| format!("{:.1} s", (f - c.started_at).as_seconds_f64()))
                .unwrap_or_else(|| "running".into()),
            counts: counts_text(&c.counts),
        })
        .collect();
    html(
        status,
        &AppPage {
            chrome: chrome(s, None, "apps"),
            href: app_href(name),
            name: name.to_string(),
            source: source_text(&spec),
            target: spec.target.url.clone(),
            token: token_text(&spec, record.sealed_secret.is_some()),
            enabled: st.enabled,
            paused: st.state == "paused",
            badge_class,
            badge,
            quarantine: st.quarantine.as_ref().map(|q| {
                format!(
                    "{} — {}",
                    q["reason"].as_str().unwrap_or("?"),
                    q["detail"].as_str().unwrap_or("")
                )
            }),
            running,
            ledger: st.ledger.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            staged: st.staged_deletes,
            escrowed: st.escrowed,
            abandoned: st.abandoned,
            next_run: next_run_text(&st),
            cycles,
            chart,
            checks,
            message,
            error,
        },
    )
}

/// Objects changed (and failed) per day over the last 30 days, from the cycles' counts.
fn daily_actions(cycles: &[scim_core::CycleRecord], now: Timestamp) -> Chart {
    view::chart_of(
        cycles.iter().map(|c| {
            let changed: u64 = CHANGING
                .iter()
                .filter_map(|k| c.counts["actions"][*k].as_u64())
                .sum();
            let failed = c.counts["statuses"]["Failure"].as_u64().unwrap_or(0);
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            (
                c.started_at.days_since_epoch(),
                n(changed.saturating_sub(failed)),
                n(failed),
            )
        }),
        now.days_since_epoch(),
        "objects changed",
    )
}

async fn stored(state: &AppState, name: &str) -> ApiResult<(JobSpec, scim_core::SyncJobRecord)> {
    let record = state.sync.store.job(name).await?.ok_or_else(|| {
        AppError::new(
            404,
            format!("there is no app '{}'", scim_proto::error::excerpt(name)),
        )
    })?;
    let spec = JobSpec::parse(&record.spec, None)?;
    Ok((spec, record))
}

/// `GET /console/apps/{name}`.
pub async fn app(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let created = param(&pairs(q), "created") == "1";
    let message = created.then(|| {
        "App saved, turned off. Test the connection, provision one user on demand, then turn provisioning on.".to_string()
    });
    app_page(&state, &s, &name, StatusCode::OK, Vec::new(), message, None).await
}

#[derive(Deserialize, Default)]
pub struct AppForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    source_id: String,
}

/// `POST /console/apps/{name}`: one action, then the page again with what it did.
pub async fn app_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    Form(form): Form<AppForm>,
) -> ApiResult<Response> {
    let (spec, record) = stored(&state, &name).await?;
    let engine = &state.sync;
    let who = s.operator.username.as_str();
    tracing::info!(operator = %who, job = %name, action = %form.action, "app action in the console");
    let mut checks = Vec::new();
    let result: Result<String, SyncError> = match form.action.as_str() {
        "turn-on" | "turn-off" => {
            let on = form.action == "turn-on";
            engine
                .store
                .set_job_enabled(&name, on, Timestamp::now())
                .await?;
            Ok(if on {
                "Provisioning is on: scimd serve runs the app on its schedule.".into()
            } else {
                "Provisioning is off. The configuration and the objects on the target stay.".into()
            })
        }
        "pause" => engine
            .set_paused(&name, true)
            .await
            .map(|()| "Paused: a cycle in flight stops after the objects it is sending.".into()),
        "resume" => engine
            .set_paused(&name, false)
            .await
            .map(|()| "Resumed.".into()),
        "run" => {
            start_cycle(&state, spec);
            Ok(CYCLE_STARTED.into())
        }
        "test" => {
            checks = engine.test(&spec, Some(&record)).await;
            if checks.iter().all(|c| c.ok) {
                Ok("Every connection check passed.".into())
            } else {
                Err(SyncError::Job("a connection check failed (below)".into()))
            }
        }
        "restart" => match RestartScope::parse(&form.scope) {
            Ok(scope) => engine.restart(&name, scope).await,
            Err(e) => Err(e),
        },
        "reauthorize" => match engine.reauthorize(&name, &form.token).await {
            Ok(c) => {
                let ok = c.iter().all(|c| c.ok);
                checks = c;
                if ok {
                    Ok("New token stored and tested; the quarantine is lifted.".into())
                } else {
                    Err(SyncError::Job(
                        "the new token is stored but a check failed (below)".into(),
                    ))
                }
            }
            Err(e) => Err(e),
        },
        "approve" | "reject" => {
            let approve = form.action == "approve";
            engine.decide_staged(&name, approve).await.map(|n| {
                if approve {
                    format!("{n} staged delete(s) approved: the next cycle applies them.")
                } else {
                    format!("{n} staged delete(s) rejected: those objects stay on the target.")
                }
            })
        }
        "provision" => {
            let id = form.source_id.trim();
            match engine.provision_one(&spec, Some(&record), id).await {
                Ok(_) => {
                    return on_demand_row(&state, &name, id).await;
                }
                Err(e) => Err(e),
            }
        }
        "delete" => {
            engine.store.delete_job(&name).await?;
            return Ok(Redirect::to("/console/apps?deleted=1").into_response());
        }
        other => {
            return Err(AppError::new(
                400,
                format!("unknown action '{}'", scim_proto::error::excerpt(other)),
            ));
        }
    };
    match result {
        Ok(m) => app_page(&state, &s, &name, StatusCode::OK, checks, Some(m), None).await,
        Err(SyncError::Store(e)) => Err(e.into()),
        Err(e) => {
            let status = if matches!(e, SyncError::NotFound(_)) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            app_page(&state, &s, &name, status, checks, None, Some(e.to_string())).await
        }
    }
}

const CYCLE_STARTED: &str = "A cycle started. This page shows its progress.";

/// Runs one cycle in the background, under the job's lease like any other node's cycle.
fn start_cycle(state: &AppState, spec: JobSpec) {
    let engine = state.sync.clone();
    let node = state.sync_node.clone();
    tokio::spawn(async move {
        let halt = Arc::new(scim_sync::apply::Halt::default());
        match scim_sync::schedule::run_leased(&engine, &spec, &node, halt).await {
            Ok(Some(r)) => {
                tracing::info!(job = %spec.name, cycle = %r.cycle_id, status = %r.status, "console cycle ended");
            }
            Ok(None) => {
                tracing::info!(job = %spec.name, "console cycle not started: another node runs the job")
            }
            Err(e) => tracing::warn!(job = %spec.name, error = %e, "console cycle failed"),
        }
    });
}

/// After a provision on demand: the log row it wrote, with its steps.
async fn on_demand_row(state: &AppState, name: &str, source_id: &str) -> ApiResult<Response> {
    let rows = state
        .sync
        .log(
            name,
            &SyncLogQuery {
                object: Some(source_id.to_string()),
                limit: 20,
                ..Default::default()
            },
        )
        .await?;
    let row = rows
        .iter()
        .find(|r| r.source_id == source_id && r.cycle_id.starts_with("on-demand-"));
    Ok(match row {
        Some(r) => Redirect::to(&format!("{}/log/{}?on_demand=1", app_href(name), r.seq)),
        None => Redirect::to(&app_href(name)),
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------
// The app's provisioning log

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

// ---------------------------------------------------------------------------------------
// Attribute mappings

/// Target attributes every SCIM service provider requires (RFC 7643 §4.1): marked `*` and
/// never left unmapped.
const REQUIRED_USER_ATTRIBUTES: [&str; 1] = ["userName"];

struct MappingRow {
    target: String,
    required: bool,
    kind: &'static str,
    value: String,
    default: String,
    apply: &'static str,
}

/// An expression's parse error: the text up to the error, and a caret under it.
struct ParseProblem {
    message: String,
    before: String,
    after: String,
    pos: usize,
}

#[derive(Template)]
#[template(path = "console/app_mappings.html")]
struct MappingsPage {
    chrome: Chrome,
    name: String,
    href: String,
    rows: Vec<MappingRow>,
    matching: Vec<String>,
    columns: Vec<String>,
    preview_user: String,
    preview: Vec<(String, String)>,
    expression: String,
    expression_value: Option<String>,
    problem: Option<ParseProblem>,
    message: Option<String>,
    error: Option<String>,
}

fn mapping_row(m: &scim_sync::job::Mapping) -> MappingRow {
    let (kind, value) = if let Some(src) = &m.source {
        ("Direct", src.clone())
    } else if let Some(c) = &m.constant {
        ("Constant", c.clone())
    } else if let Some(e) = &m.expression {
        ("Expression", e.clone())
    } else {
        ("None", String::new())
    };
    MappingRow {
        required: REQUIRED_USER_ATTRIBUTES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&m.target)),
        target: m.target.clone(),
        kind,
        value,
        default: m.default.clone().unwrap_or_default(),
        apply: match m.apply {
            scim_sync::job::Apply::Always => "Always",
            scim_sync::job::Apply::OnCreate => "Only on create",
        },
    }
}

fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize, Default)]
pub struct MappingsForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    default: String,
    #[serde(default)]
    apply: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    user: String,
}

impl MappingsForm {
    fn mapping(&self) -> Result<scim_sync::job::Mapping, String> {
        let target = self.target.trim();
        if target.is_empty() {
            return Err("give the target attribute".into());
        }
        let value = Some(self.value.trim().to_string()).filter(|v| !v.is_empty());
        let mut m = scim_sync::job::Mapping {
            target: target.into(),
            default: Some(self.default.trim().to_string()).filter(|v| !v.is_empty()),
            apply: if self.apply == "on_create" {
                scim_sync::job::Apply::OnCreate
            } else {
                scim_sync::job::Apply::Always
            },
            ..Default::default()
        };
        let need = |v: Option<String>, what: &str| v.ok_or(format!("give the {what}"));
        match self.kind.as_str() {
            "direct" => m.source = Some(need(value, "source attribute")?),
            "constant" => m.constant = Some(need(value, "constant")?),
            "expression" => m.expression = Some(need(value, "expression")?),
            "none" => m.none = true,
            other => {
                return Err(format!(
                    "unknown mapping type '{}'",
                    scim_proto::error::excerpt(other)
                ));
            }
        }
        Ok(m)
    }
}

/// The job with one edit applied to its user mappings or matching order.
fn edited(mut spec: JobSpec, form: &MappingsForm) -> Result<JobSpec, String> {
    let target = form.target.trim();
    let own = &mut spec.users;
    // A job with its own full list edits that list; otherwise edits sit on the defaults.
    let on_defaults = own.mappings.is_empty();
    let list = if on_defaults {
        &mut own.extra
    } else {
        &mut own.mappings
    };
    match form.action.as_str() {
        "save" => {
            let m = form.mapping()?;
            list.retain(|x| !x.target.eq_ignore_ascii_case(&m.target));
            list.push(m);
        }
        "remove" => {
            list.retain(|x| !x.target.eq_ignore_ascii_case(target));
            // A default mapping is switched off by a None mapping on top of it.
            if on_defaults {
                list.push(scim_sync::job::Mapping {
                    target: target.into(),
                    none: true,
                    ..Default::default()
                });
            }
        }
        "match-up" | "match-down" | "match-remove" | "match-add" => {
            if own.matching.is_empty() {
                own.matching = vec!["userName".into()];
            }
            let at = own
                .matching
                .iter()
                .position(|x| x.eq_ignore_ascii_case(target));
            match (form.action.as_str(), at) {
                ("match-add", None) => own.matching.push(target.into()),
                ("match-add", Some(_)) => {}
                ("match-up", Some(i)) if i > 0 => own.matching.swap(i, i - 1),
                ("match-down", Some(i)) if i + 1 < own.matching.len() => {
                    own.matching.swap(i, i + 1)
                }
                ("match-remove", Some(i)) => {
                    if own.matching.len() == 1 {
                        return Err("keep at least one matching attribute".into());
                    }
                    own.matching.remove(i);
                }
                (_, None) => return Err(format!("'{target}' is not a matching attribute")),
                _ => {}
            }
        }
        other => {
            return Err(format!(
                "unknown action '{}'",
                scim_proto::error::excerpt(other)
            ));
        }
    }
    Ok(spec)
}

async fn mappings_page(
    state: &AppState,
    s: &ConsoleSession,
    name: &str,
    status: StatusCode,
    form: &MappingsForm,
    message: Option<String>,
    error: Option<String>,
) -> ApiResult<Response> {
    let (spec, record) = stored(state, name).await?;
    let user = form.user.trim();
    let expression = form.expression.trim().to_string();
    let (preview, mut error) = match state
        .sync
        .preview_user(&spec, Some(&record), Some(user), Some(&expression))
        .await
    {
        Ok(p) => (p, error),
        Err(e @ SyncError::NotFound(_)) => (
            state
                .sync
                .preview_user(&spec, Some(&record), None, None)
                .await?,
            error.or(Some(e.to_string())),
        ),
        Err(e) => return Err(e.into()),
    };
    if error.is_none() {
        error = preview.error.clone();
    }
    // The expression tester: a parse error at its position, else the value for the user.
    let (mut expression_value, mut problem) = (None, None);
    if !expression.is_empty() {
        match scim_sync::expr::parse(&expression) {
            Err(e) => {
                let chars: Vec<char> = expression.chars().collect();
                let pos = e.pos.min(chars.len());
                problem = Some(ParseProblem {
                    message: e.message,
                    before: chars[..pos].iter().collect(),
                    after: chars[pos..].iter().collect(),
                    pos,
                });
            }
            Ok(_) if user.is_empty() => {
                expression_value = Some("parses; choose a source user to see its value".into());
            }
            Ok(_) => {
                expression_value = Some(match &preview.expression {
                    Some(Ok(v)) if v.is_null() => "(null)".into(),
                    Some(Ok(v)) => shown_value(v),
                    Some(Err(e)) => format!("error: {e}"),
                    None => "(no value: the user was not found)".into(),
                });
            }
        }
    }
    html(
        status,
        &MappingsPage {
            chrome: chrome(s, None, "apps"),
            href: app_href(name),
            name: name.to_string(),
            rows: preview.mappings.iter().map(mapping_row).collect(),
            matching: preview.matching.clone(),
            columns: preview.columns.clone(),
            preview_user: user.to_string(),
            preview: preview
                .values
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), shown_value(v)))
                .collect(),
            expression,
            expression_value,
            problem,
            message,
            error,
        },
    )
}

/// `GET /console/apps/{name}/mappings` (`user=` previews a source user, `expression=` tests
/// an expression).
pub async fn app_mappings(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs = pairs(q);
    let form = MappingsForm {
        user: param(&pairs, "user"),
        expression: param(&pairs, "expression"),
        ..Default::default()
    };
    mappings_page(&state, &s, &name, StatusCode::OK, &form, None, None).await
}

/// `POST /console/apps/{name}/mappings`: one edit, checked against the source (the
/// mappings must compile and keep the required attributes) before it is stored.
pub async fn app_mappings_edit(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    Form(form): Form<MappingsForm>,
) -> ApiResult<Response> {
    let (spec, record) = stored(&state, &name).await?;
    let refuse = |e: String| {
        mappings_page(
            &state,
            &s,
            &name,
            StatusCode::BAD_REQUEST,
            &form,
            None,
            Some(e),
        )
    };
    let next = match edited(spec, &form) {
        Ok(n) => n,
        Err(e) => return refuse(e).await,
    };
    // The same checks as a job file (round-tripped through its stored TOML).
    let next = match next.to_stored_toml().and_then(|t| JobSpec::parse(&t, None)) {
        Ok(n) => n,
        Err(e) => return refuse(e.to_string()).await,
    };
    let preview = state
        .sync
        .preview_user(&next, Some(&record), None, None)
        .await?;
    if let Some(e) = preview.error {
        return refuse(e).await;
    }
    for r in REQUIRED_USER_ATTRIBUTES {
        let mapped = preview
            .mappings
            .iter()
            .any(|m| m.target.eq_ignore_ascii_case(r) && !m.none);
        if !mapped {
            return refuse(format!("{r} * is required by every SCIM app: map it")).await;
        }
    }
    state.sync.import(&next).await?;
    tracing::info!(operator = %s.operator.username, job = %name, action = %form.action, target = %form.target, "app mappings edited in the console");
    let message = match form.action.as_str() {
        "save" => format!(
            "Mapping for {} saved; the next cycle applies it.",
            form.target.trim()
        ),
        "remove" => format!("{} is no longer mapped.", form.target.trim()),
        _ => "Matching precedence saved.".into(),
    };
    mappings_page(
        &state,
        &s,
        &name,
        StatusCode::OK,
        &form,
        Some(message),
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_app_form_fills_the_tenant_placeholder_and_checks_the_job() {
        let f = NewAppForm {
            name: "hr".into(),
            source_kind: "csv".into(),
            source_path: "/data/people.csv".into(),
            source_id: "employee_id".into(),
            target_url: "https://app.example/t/{tenant-name}/scim/v2".into(),
            target_tenant: "acme".into(),
            token: "secret".into(),
            ..Default::default()
        };
        let spec = f.spec().unwrap();
        assert_eq!(spec.target.url, "https://app.example/t/acme/scim/v2");
        let unfilled = NewAppForm {
            target_tenant: String::new(),
            ..f.clone()
        };
        assert!(
            unfilled
                .spec()
                .unwrap_err()
                .to_string()
                .contains("{tenant-name}")
        );
        let nameless = NewAppForm {
            name: " ".into(),
            ..f
        };
        assert!(nameless.spec().is_err());
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(
            counts_text(&json!({"actions": {"Create": 3, "Skip": 9}, "statuses": {"Failure": 1}})),
            "Create 3 · 1 failed"
        );
        assert_eq!(counts_text(&json!({})), "no changes");
        assert_eq!(counts_text(&json!({"error": "boom"})), "error: boom");
    }
}
