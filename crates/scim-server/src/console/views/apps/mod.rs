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
//! | `new_source` | New app's source step for a file: columns, pickers, template |
//! | `app` | one app: status, details, actions |
//! | `details` | what the app page shows: cycles, 30-day usage, chart, scheduled deprovisioning |
//! | `log` | its provisioning log and exports |
//! | `mappings` | attribute mappings, matching, expression tester |
//! | `review` | the review before Turn on: the configuration and the first cycle's plan |
//! | `scope` | scope, scoping filters, deprovisioning time frames |
//! | `settings` | schedule, deletion breaker, what a match does to an existing object |

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
use scim_core::{CycleCounts, SourceFile, SyncAction, SyncLogQuery, SyncLogRecord, Timestamp};
use scim_sync::engine::{Check, JobPhase, JobStatus, RestartScope, UserPreview};
use scim_sync::{JobSpec, SyncError};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where a console link for an app goes (names are free text: encoded).
fn app_href(name: &str) -> String {
    format!("/console/apps/{}", view::url_encode(name))
}

fn source_text(spec: &JobSpec) -> String {
    spec.source.describe()
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
    match st.state {
        JobPhase::WaitingForApproval => ("waiting", "Waiting for delete approval".into()),
        JobPhase::Quarantined => {
            let why = st
                .quarantine
                .as_ref()
                .map_or("failing", |q| q.reason.as_str());
            ("quarantined", format!("Quarantined: {why}"))
        }
        JobPhase::Off => ("off", "Off".into()),
        JobPhase::Paused => ("paused", "Paused".into()),
        JobPhase::Initial => ("initial", "Initial cycle".into()),
        JobPhase::Active => ("active", "Active".into()),
    }
}

/// `Create 3 · Update 1 · 1 failed` from a cycle's counts.
fn counts_text(counts: &CycleCounts) -> String {
    if let Some(e) = &counts.error {
        return format!("error: {e}");
    }
    let mut parts: Vec<String> = SyncAction::CHANGING
        .iter()
        .chain(
            [
                SyncAction::DisableScheduled,
                SyncAction::DeleteScheduled,
                SyncAction::StagedDelete,
                SyncAction::Conflict,
            ]
            .iter(),
        )
        .filter(|a| counts.action(**a) > 0)
        .map(|a| format!("{} {}", a.label(), counts.action(*a)))
        .collect();
    if counts.failures() > 0 {
        parts.push(format!("{} failed", counts.failures()));
    }
    if let Some(why) = &counts.stopped {
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
    details::rfc3339_text(st.next_run.as_deref())
}

struct AppRow {
    href: String,
    name: String,
    source: String,
    /// `csv`, `ldap`, `google`, …: what a tenant admin is shown (the source's settings are
    /// the instance admins').
    source_kind: &'static str,
    target: String,
    badge_class: &'static str,
    badge: String,
    last_cycle: String,
    /// The last cycle failed (shown in red).
    last_failed: bool,
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
    let mut apps = Vec::new();
    let mut broken = Vec::new();
    let role = &s.operator.role;
    for r in state.apps.list().await? {
        let (spec, st) = match (r.spec, r.status) {
            (Ok(spec), Some(st)) => (spec, st),
            // A stored app that cannot be read names no tenant: instance admins' to fix.
            (Err(e), _) if role.is_instance() => {
                broken.push((r.name.clone(), e));
                continue;
            }
            _ => continue,
        };
        // A tenant admin sees the apps that read or write one of their tenants.
        if !role.is_instance()
            && !spec
                .tenants(&state.config.public_url)
                .iter()
                .any(|t| role.sees(t))
        {
            continue;
        }
        let (badge_class, badge) = badge(&st);
        apps.push(AppRow {
            href: app_href(&r.name),
            source: source_text(&spec),
            source_kind: spec.source.kind().as_str(),
            target: spec.target.url.clone(),
            last_cycle: st
                .last_cycle
                .as_ref()
                .map(|c| format!("{} · {}", c.status.as_str(), counts_text(&c.counts)))
                .unwrap_or_else(|| "no cycle yet".into()),
            last_failed: st
                .last_cycle
                .as_ref()
                .is_some_and(|c| c.status.as_str() == "failed"),
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

/// What a page says after an edit of a stored app: refused (400, why; nothing stored), or
/// checked as the job file is and saved (200, `saved`). Logged once with what was edited.
async fn save_edit(
    state: &AppState,
    s: &ConsoleSession,
    edited: Result<JobSpec, String>,
    what: &str,
    saved: &str,
) -> ApiResult<(StatusCode, Option<String>, Option<String>)> {
    match edited.and_then(|n| n.as_stored().map_err(|e| e.to_string())) {
        Err(e) => Ok((StatusCode::BAD_REQUEST, None, Some(e))),
        Ok(next) => {
            state.apps.save(&next).await?;
            tracing::info!(operator = %s.operator.username, job = %next.name, edit = %what, "app edited in the console");
            audit_app(state, s, &next.name, what).await?;
            Ok((StatusCode::OK, Some(saved.to_string()), None))
        }
    }
}

/// Records an app change in the audit log. An app is a job file and its state, not one row
/// to change with the audit row: the row is written after the change, on its own.
async fn audit_app(state: &AppState, s: &ConsoleSession, name: &str, what: &str) -> ApiResult<()> {
    let entry = scim_core::audit::AuditEntry::new(
        &s.actor(),
        scim_core::audit::AuditAction::AppChanged,
        format!("{name}: {what}"),
    );
    state.services.audit.record(&entry).await?;
    Ok(())
}

/// The stored app and its parsed job, or a 404 page.
async fn stored(state: &AppState, name: &str) -> ApiResult<(JobSpec, scim_core::SyncJobRecord)> {
    state.apps.get(name).await.map_err(|e| match e {
        SyncError::NotFound(_) => AppError::new(
            404,
            format!("there is no app '{}'", scim_proto::error::excerpt(name)),
        ),
        other => other.into(),
    })
}

mod app;
mod details;
mod log;
mod mappings;
mod new;
mod new_source;
mod review;
mod scope;
mod settings;

pub use app::{app, app_action};
pub use log::{app_log, app_log_row};
pub use mappings::{app_mappings, app_mappings_edit};
pub use new::{new_app, new_app_form};
pub use new_source::source_template;
pub use review::app_review;
pub use scope::{app_scope, app_scope_edit};
pub use settings::{app_settings, app_settings_edit};
