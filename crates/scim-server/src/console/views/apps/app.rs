//! One app: status, synchronization details, and its actions (turn on/off, pause, run,
//! test, restart, reauthorize, held deletes, provision on demand, delete).

use super::*;
use crate::console::upload::{UploadForm, UploadedFile};

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
    /// The uploaded source file (name, when, size), for an app that reads one.
    upload: Option<UploadRow>,
    checks: Vec<Check>,
    message: Option<String>,
    error: Option<String>,
}

/// What the app page says of its uploaded source file.
struct UploadRow {
    name: String,
    uploaded: String,
    size: String,
}

impl UploadRow {
    async fn of(state: &AppState, spec: &JobSpec) -> ApiResult<Option<Self>> {
        if spec.source.file().is_none_or(|f| f.upload.is_none()) {
            return Ok(None);
        }
        let file = state.apps.source_file(&spec.name).await?;
        Ok(Some(match file {
            Some(f) => Self {
                uploaded: view::fmt_time(f.uploaded_at),
                size: format!("{:.1} KiB", f.bytes as f64 / 1024.0),
                name: f.name,
            },
            None => Self {
                name: "none".into(),
                uploaded: "never: upload the file below".into(),
                size: "—".into(),
            },
        }))
    }
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

impl CycleRow {
    fn of(c: &scim_core::CycleRecord) -> Self {
        let seconds = |f: Timestamp| {
            let ms = (f - c.started_at).whole_milliseconds();
            if ms < 1_000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", (f - c.started_at).as_seconds_f64())
            }
        };
        CycleRow {
            started: view::fmt_time(c.started_at),
            mode: c.mode.as_str().to_string(),
            status: c.status.as_str().to_string(),
            duration: c
                .finished_at
                .map(seconds)
                .unwrap_or_else(|| "running".into()),
            counts: counts_text(&c.counts),
        }
    }
}

/// When the running cycle started; a cycle just started from this page may not have said
/// so yet, and is shown as started "just now" so that the page polls all the same.
fn running_since(state: &scim_core::JobState, starting: bool) -> Option<String> {
    state
        .running
        .as_ref()
        .map(|r| view::fmt_time(r.started))
        .or_else(|| starting.then(|| "just now".to_string()))
}

fn quarantine_text(q: &scim_sync::engine::QuarantineView) -> String {
    format!("{} — {}", q.reason.as_str(), q.detail)
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
    let (spec, _) = stored(state, name).await?;
    // One snapshot for the badge, the counts, the cycles and the chart: a cycle shown
    // as finished has its outcomes counted. A 30-day chart: 40-minute cycles make ~1,100.
    let (st, snapshot) = state.apps.engine().status_with_cycles(name, 1_500).await?;
    let (record, cycles) = (snapshot.record, snapshot.cycles);
    let (badge_class, badge) = badge(&st);
    let starting = message.as_deref() == Some(CYCLE_STARTED);
    let page = AppPage {
        chrome: chrome(s, None, "apps"),
        href: app_href(name),
        name: name.to_string(),
        source: source_text(&spec),
        target: spec.target.url.clone(),
        token: token_text(&spec, record.sealed_secret.is_some()),
        enabled: st.enabled,
        // Read from the state itself: a paused job can show as quarantined or held.
        paused: record.state.paused,
        badge_class,
        badge,
        quarantine: st.quarantine.as_ref().map(quarantine_text),
        running: running_since(&record.state, starting),
        ledger: st
            .ledger
            .iter()
            .map(|c| (format!("{} {}", c.kind.as_str(), c.state.as_str()), c.count))
            .collect(),
        staged: st.staged_deletes,
        escrowed: st.escrowed,
        abandoned: st.abandoned,
        next_run: next_run_text(&st),
        cycles: cycles.iter().take(10).map(CycleRow::of).collect(),
        chart: daily_actions(&cycles, Timestamp::now()),
        upload: UploadRow::of(state, &spec).await?,
        checks,
        message,
        error,
    };
    html(status, &page)
}

/// Objects changed (and failed) per day over the last 30 days, from the cycles' counts.
fn daily_actions(cycles: &[scim_core::CycleRecord], now: Timestamp) -> Chart {
    view::chart_of(
        cycles.iter().map(|c| {
            let changed: u64 = SyncAction::CHANGING
                .iter()
                .map(|k| c.counts.action(*k))
                .sum();
            let failed = c.counts.failures();
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
    /// `upload`: the new source file.
    #[serde(skip)]
    upload: Option<UploadedFile>,
}

/// `POST /console/apps/{name}`: one action, then the page again with what it did.
pub async fn app_action(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    UploadForm { mut form, files }: UploadForm<AppForm>,
) -> ApiResult<Response> {
    form.upload = files.into_iter().find(|f| f.field == "source_file");
    let (spec, record) = stored(&state, &name).await?;
    let who = s.operator.username.as_str();
    tracing::info!(operator = %who, job = %name, action = %form.action, "app action in the console");
    let (checks, result) = match perform(&state, &name, spec, record, &form).await? {
        Acted::Shown(checks, result) => (checks, result),
        Acted::Elsewhere(page) => return Ok(page),
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

/// What an action left: a message or a refusal for the app page, with the checks it ran;
/// or a page of its own (the on-demand log row, the apps list after a delete).
enum Acted {
    Shown(Vec<Check>, Result<String, SyncError>),
    Elsewhere(Response),
}

fn shown(r: Result<String, SyncError>) -> ApiResult<Acted> {
    Ok(Acted::Shown(Vec::new(), r))
}

/// Checks shown with a message when all passed, a refusal when one failed.
fn checked(checks: Vec<Check>, passed: &str, failed: &str) -> Acted {
    let r = if checks.iter().all(|c| c.ok) {
        Ok(passed.to_string())
    } else {
        Err(SyncError::Job(failed.to_string()))
    };
    Acted::Shown(checks, r)
}

async fn perform(
    state: &AppState,
    name: &str,
    spec: JobSpec,
    record: scim_core::SyncJobRecord,
    form: &AppForm,
) -> ApiResult<Acted> {
    let engine = state.apps.engine();
    match form.action.as_str() {
        "turn-on" | "turn-off" => shown(turn(state, name, form.action == "turn-on").await),
        "pause" | "resume" => shown(pause(engine, name, form.action == "pause").await),
        "run" => shown(
            state
                .apps
                .run_now(name)
                .await
                .map(|_| CYCLE_STARTED.to_string()),
        ),
        "test" => Ok(checked(
            engine.test(&spec, Some(&record)).await,
            "Every connection check passed.",
            "a connection check failed (below)",
        )),
        "restart" => shown(restart(engine, name, &form.scope).await),
        "reauthorize" => Ok(reauthorize(engine, name, &form.token).await),
        "approve" | "reject" => shown(decide(engine, name, form.action == "approve").await),
        "provision" => provision(state, name, &spec, &record, form.source_id.trim()).await,
        "upload" => replace_file(state, &spec, form.upload.as_ref()).await,
        "delete" => {
            state.apps.delete(name).await?;
            let to_list = Redirect::to("/console/apps?deleted=1").into_response();
            Ok(Acted::Elsewhere(to_list))
        }
        other => Err(AppError::new(400, unknown_action(other))),
    }
}

/// A new export of an uploaded source file: read in full as a cycle would read it, and
/// stored only if that worked (a bad file never replaces a good one). The next cycle reads
/// it; people missing from it are deprovisioned under the breaker's watch.
async fn replace_file(
    state: &AppState,
    spec: &JobSpec,
    file: Option<&UploadedFile>,
) -> ApiResult<Acted> {
    let Some(file) = file else {
        return shown(Err(SyncError::Job("choose the file to upload".into())));
    };
    let file = match Upload::of(file) {
        Ok(u) => u.stored(),
        Err(e) => return shown(Err(e)),
    };
    let name = scim_proto::error::excerpt(&file.name).to_string();
    match state.apps.replace_file(spec, file).await {
        Ok(Ok(check)) => Ok(Acted::Shown(
            vec![check],
            Ok(format!("{name} stored; the next cycle reads it.")),
        )),
        Ok(Err(check)) => {
            let kept = "the file was not stored (the app keeps reading its current file)";
            Ok(Acted::Shown(vec![check], Err(SyncError::Job(kept.into()))))
        }
        Err(e) => shown(Err(e)),
    }
}

async fn pause(engine: &scim_sync::Engine, name: &str, on: bool) -> Result<String, SyncError> {
    engine.set_paused(name, on).await?;
    Ok(if on {
        "Paused: a cycle in flight stops after the objects it is sending.".into()
    } else {
        "Resumed.".into()
    })
}

async fn restart(engine: &scim_sync::Engine, name: &str, scope: &str) -> Result<String, SyncError> {
    engine.restart(name, RestartScope::parse(scope)?).await
}

async fn reauthorize(engine: &scim_sync::Engine, name: &str, token: &str) -> Acted {
    match engine.reauthorize(name, token).await {
        Ok(c) => checked(
            c,
            "New token stored and tested; the quarantine is lifted.",
            "the new token is stored but a check failed (below)",
        ),
        Err(e) => Acted::Shown(Vec::new(), Err(e)),
    }
}

/// Provision one source user now; its log row is the answer.
async fn provision(
    state: &AppState,
    name: &str,
    spec: &JobSpec,
    record: &scim_core::SyncJobRecord,
    id: &str,
) -> ApiResult<Acted> {
    match state
        .apps
        .engine()
        .provision_one(spec, Some(record), id)
        .await
    {
        Ok(_) => Ok(Acted::Elsewhere(on_demand_row(state, name, id).await?)),
        Err(e) => shown(Err(e)),
    }
}

async fn turn(state: &AppState, name: &str, on: bool) -> Result<String, SyncError> {
    state.apps.set_enabled(name, on).await?;
    Ok(if on {
        "Provisioning is on: scimd serve runs the app on its schedule.".into()
    } else {
        "Provisioning is off. The configuration and the objects on the target stay.".into()
    })
}

async fn decide(
    engine: &scim_sync::Engine,
    name: &str,
    approve: bool,
) -> Result<String, SyncError> {
    let n = engine.decide_staged(name, approve).await?;
    Ok(if approve {
        format!("{n} staged delete(s) approved: the next cycle applies them.")
    } else {
        format!("{n} staged delete(s) rejected: those objects stay on the target.")
    })
}

const CYCLE_STARTED: &str = "A cycle started. This page shows its progress.";

/// After a provision on demand: the log row it wrote, with its steps.
async fn on_demand_row(state: &AppState, name: &str, source_id: &str) -> ApiResult<Response> {
    let rows = state
        .apps
        .engine()
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
