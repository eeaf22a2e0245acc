//! The provisioning engine's screens ("Apps", like an IdP's enterprise applications): the
//! list of outbound jobs, a New app form with Test connection, each app's status and
//! synchronization details with its actions (turn on/off, pause, run, restart, reauthorize,
//! staged deletes, provision on demand, delete), and its provisioning log with the steps and
//! modified properties of every row, its attribute mappings and its scope. Everything goes
//! through `scim_sync::Engine`, the same service the `scimd sync` commands use; an edit made
//! here is the job file's edit (stored TOML, same checks) and keeps the app's state.
//!
//! | module | page |
//! |---|---|
//! | here | the Apps list and what the pages share |
//! | `new` | New app |
//! | `app` | one app: status, details, actions |
//! | `log` | its provisioning log and exports |
//! | `mappings` | attribute mappings, matching, expression tester |
//! | `scope` | scope, scoping filters, deprovisioning time frames |

use super::super::session::ConsoleSession;
use super::super::view::{self, Chart, Chrome};
use super::common::{AppStateRef, chrome, html, pairs, param, unknown_action};
use crate::AppState;
use crate::console::upload::UploadedFile;
use crate::error::{ApiResult, AppError};
use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use scim_core::{SourceFile, SyncLogQuery, SyncLogRecord, Timestamp};
use scim_sync::engine::{Check, JobStatus, RestartScope, UserPreview};
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
    // The file's current name is on the app page's Source file card: a new export
    // replaces the file under the same app.
    if s.upload.is_some() {
        let kind = if s.kind == SourceKind::Json {
            "JSON"
        } else {
            "CSV"
        };
        return format!("{kind} file uploaded in the console");
    }
    match s.kind {
        SourceKind::Csv => format!("CSV file {}", path()),
        SourceKind::Json => format!("JSON file {}", path()),
        SourceKind::Scim => format!("SCIM server {}", s.url.clone().unwrap_or_default()),
        SourceKind::Tenant => format!("scimd tenant {}", s.tenant.clone().unwrap_or_default()),
        SourceKind::Ldap => format!("LDAP {}", s.url.clone().unwrap_or_default()),
    }
}

/// An uploaded source file as the engine reads it: UTF-8 text, JSON when its name ends in
/// `.json`, CSV otherwise.
struct Upload {
    kind: &'static str,
    name: String,
    content: String,
}

impl Upload {
    fn of(f: &UploadedFile) -> Result<Self, SyncError> {
        let content = std::str::from_utf8(&f.content).map_err(|e| {
            SyncError::Job(format!(
                "{} is not UTF-8 text (byte {}): save it as UTF-8 CSV or JSON",
                f.name,
                e.valid_up_to()
            ))
        })?;
        let name = if f.name.is_empty() { "upload" } else { &f.name };
        Ok(Self {
            kind: if name.to_ascii_lowercase().ends_with(".json") {
                "json"
            } else {
                "csv"
            },
            name: name.to_string(),
            content: content.to_string(),
        })
    }

    fn stored(self) -> SourceFile {
        SourceFile {
            name: self.name,
            content: self.content,
            uploaded_at: Timestamp::now(),
        }
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

/// The stored app and its parsed job, or a 404 page.
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

mod app;
mod log;
mod mappings;
mod new;
mod scope;

pub use app::{app, app_action};
pub use log::{app_log, app_log_row};
pub use mappings::{app_mappings, app_mappings_edit};
pub use new::{new_app, new_app_form};
pub use scope::{app_scope, app_scope_edit};
