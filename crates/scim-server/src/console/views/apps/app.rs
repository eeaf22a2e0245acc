//! One app: status, synchronization details, and its actions (turn on/off, pause, run,
//! test, restart, reauthorize, held deletes, provision on demand, delete).

use super::*;
use crate::console::upload::{UploadForm, UploadedFile};

use super::details::{CycleRow, TimerRow, Usage};
use scim_sync::engine::{CANDIDATES, Candidate, OnDemand};

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
    /// The page polls (a cycle runs, or one is due now): how many times more.
    poll: Option<u32>,
    cycles: Vec<CycleRow>,
    usage: Usage,
    chart: Chart,
    /// Scheduled deprovisioning: the soonest timers, and how many in all.
    timers: Vec<TimerRow>,
    timers_total: u64,
    timers_more: bool,
    delete_confirm: String,
    /// The notification addresses, as typed back into the form, and whether SMTP is set.
    emails: String,
    smtp: bool,
    /// The uploaded source file (name, when, size), for an app that reads one.
    upload: Option<UploadRow>,
    checks: Vec<Check>,
    message: Option<String>,
    error: Option<String>,
    picks: Option<Picks>,
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

/// What the app page says besides the app itself: an action's checks, message or
/// refusal, and provision on demand's choices.
#[derive(Default)]
struct Said {
    checks: Vec<Check>,
    message: Option<String>,
    error: Option<String>,
    picks: Option<Picks>,
    /// Polls left while a cycle is due but not started (the page's `poll=` count).
    polls: Option<u32>,
}

/// Provision on demand matched several source users: the administrator picks one.
struct Picks {
    query: String,
    rows: Vec<PickRow>,
    /// More users match than are listed.
    more: bool,
}

struct PickRow {
    id: String,
    display: String,
    email: String,
    in_scope: bool,
    scope: String,
    suspended: bool,
}

impl PickRow {
    fn of(c: &Candidate) -> Self {
        PickRow {
            id: c.id.clone(),
            display: c.display.clone(),
            email: c.email.clone().unwrap_or_default(),
            in_scope: c.scope.is_ok(),
            scope: scope_text(c),
            suspended: c.suspended,
        }
    }
}

/// `in scope (assigned to the application)`, `out of scope: not assigned…`.
fn scope_text(c: &Candidate) -> String {
    match &c.scope {
        Ok(why) => format!("in scope ({why})"),
        Err(why) => format!("out of scope: {why}"),
    }
}

async fn app_page(
    state: &AppState,
    s: &ConsoleSession,
    name: &str,
    status: StatusCode,
    said: Said,
) -> ApiResult<Response> {
    let Said {
        checks,
        message,
        error,
        picks,
        polls,
    } = said;
    let (spec, _) = stored(state, name).await?;
    // One snapshot for the badge, the counts, the cycles and the chart: a cycle shown
    // as finished has its outcomes counted. A 30-day chart: 40-minute cycles make ~1,100.
    let (st, snapshot) = state.apps.engine().status_with_cycles(name, 1_500).await?;
    let (record, cycles) = (snapshot.record, snapshot.cycles);
    let (badge_class, badge) = badge(&st);
    let starting = message.as_deref() == Some(CYCLE_STARTED);
    let running = running_since(&record.state, starting);
    let poll = details::polls_left(&st, running.is_some(), polls, Timestamp::now());
    let (now, href) = (Timestamp::now(), app_href(name));
    let page = AppPage {
        chrome: chrome(s, None, "apps"),
        href: href.clone(),
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
        running,
        ledger: st
            .ledger
            .iter()
            .map(|c| (format!("{} {}", c.kind.as_str(), c.state.as_str()), c.count))
            .collect(),
        staged: st.staged_deletes,
        escrowed: st.escrowed,
        abandoned: st.abandoned,
        next_run: next_run_text(&st),
        poll,
        cycles: cycles
            .iter()
            .take(10)
            .map(|c| CycleRow::of(&href, c))
            .collect(),
        usage: Usage::of(&cycles, now),
        chart: details::daily_actions(&cycles, now),
        timers: st.next_timers.iter().map(TimerRow::of).collect(),
        timers_total: st.timers,
        timers_more: st.timers > st.next_timers.len() as u64,
        delete_confirm: details::delete_confirmation(name, &st),
        emails: spec.notify.email.join(", "),
        smtp: state.apps.mail_configured(),
        upload: UploadRow::of(state, &spec).await?,
        checks,
        message,
        error,
        picks,
    };
    html(status, &page)
}

/// `GET /console/apps/{name}`.
pub async fn app(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs = pairs(q);
    let created = param(&pairs, "created") == "1";
    let polls = param(&pairs, "poll").parse().ok();
    let message = created.then(|| {
        "App saved, turned off. Test the connection, provision one user on demand, then turn provisioning on.".to_string()
    });
    let said = Said {
        message,
        polls,
        ..Said::default()
    };
    app_page(&state, &s, &name, StatusCode::OK, said).await
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
    /// `timer-apply` / `timer-cancel`: one object's kind and source id (none: all).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    object: String,
    /// `notify-email`: the addresses, separated by commas, spaces or lines.
    #[serde(default)]
    email: String,
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
        Acted::Picked(picks) => {
            let said = Said {
                picks: Some(picks),
                ..Said::default()
            };
            return app_page(&state, &s, &name, StatusCode::OK, said).await;
        }
        Acted::Elsewhere(page) => return Ok(page),
    };
    if result.is_ok() {
        super::audit_app(&state, &s, &name, &form.action).await?;
    }
    let (status, said) = match result {
        Ok(m) => (
            StatusCode::OK,
            Said {
                checks,
                message: Some(m),
                ..Said::default()
            },
        ),
        Err(SyncError::Store(e)) => return Err(e.into()),
        Err(e) => (
            if matches!(e, SyncError::NotFound(_)) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            },
            Said {
                checks,
                error: Some(e.to_string()),
                ..Said::default()
            },
        ),
    };
    app_page(&state, &s, &name, status, said).await
}

/// What an action left: a message or a refusal for the app page, with the checks it ran;
/// or a page of its own (the on-demand log row, the apps list after a delete).
enum Acted {
    Shown(Vec<Check>, Result<String, SyncError>),
    /// Provision on demand found several users.
    Picked(Picks),
    Elsewhere(Response),
}

fn shown(r: Result<String, SyncError>) -> ApiResult<Acted> {
    Ok(Acted::Shown(Vec::new(), r))
}

/// Checks shown with a message when all passed, a refusal when one failed.
fn checked(checks: Vec<Check>, passed: &str, failed: &str) -> Acted {
    let r = if checks.iter().all(|c| c.ok) {
        let untested: Vec<&str> = checks
            .iter()
            .filter(|c| c.untested)
            .map(|c| c.name.as_str())
            .collect();
        Ok(if untested.is_empty() {
            passed.to_string()
        } else {
            format!(
                "Nothing failed, but not everything could be tested: {} (marked –).",
                untested.join(", ")
            )
        })
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
        "pause" | "resume" => shown(pause(engine, &record, name, form.action == "pause").await),
        "run" => shown(run_now(state, &record, name).await),
        "notify-email" => shown(notify_email(state, spec, &form.email).await),
        "notify-test" => shown(state.apps.send_test_email(&spec).await.map(|n| {
            format!("A test e-mail went to {n} address(es): check the inbox (and the spam folder).")
        })),
        "timer-apply" | "timer-cancel" => {
            shown(timers(engine, &record, form, form.action == "timer-apply").await)
        }
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

/// A cycle now, for an app that is on and not paused (an app that is off runs nothing;
/// Provision on demand tries one user without turning it on).
async fn run_now(
    state: &AppState,
    record: &scim_core::SyncJobRecord,
    name: &str,
) -> Result<String, SyncError> {
    if !record.enabled {
        return Err(SyncError::Job(
            "provisioning is off: turn it on to run cycles (Provision on demand tries one user while it is off)".into(),
        ));
    }
    if record.state.paused {
        return Err(SyncError::Job(
            "provisioning is paused: resume it to run cycles".into(),
        ));
    }
    state.apps.run_now(name).await?;
    Ok(CYCLE_STARTED.to_string())
}

/// How many notification addresses an app may have.
const MAX_EMAILS: usize = 20;

/// The app's notification addresses replaced by those typed (none: no e-mail).
async fn notify_email(
    state: &AppState,
    mut spec: JobSpec,
    typed: &str,
) -> Result<String, SyncError> {
    let emails: Vec<String> = typed
        .split([',', ';', ' ', '\n', '\r', '\t'])
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if emails.len() > MAX_EMAILS {
        return Err(SyncError::Job(format!(
            "at most {MAX_EMAILS} notification addresses (a list address reaches more people)"
        )));
    }
    spec.notify.email = emails;
    state.apps.save(&spec).await?;
    let smtp = if state.apps.mail_configured() {
        ""
    } else {
        " No SMTP server is configured, so nothing is e-mailed until one is (smtp_url)."
    };
    Ok(match spec.notify.email.len() {
        0 => "Notification e-mail turned off.".to_string(),
        n => format!("Notices go to {n} address(es).{smtp}"),
    })
}

/// Apply now or cancel scheduled deprovisioning, for one object or all.
async fn timers(
    engine: &scim_sync::Engine,
    record: &scim_core::SyncJobRecord,
    form: &AppForm,
    apply: bool,
) -> Result<String, SyncError> {
    let name = record.name.as_str();
    if form.kind.is_empty() != form.object.is_empty() {
        return Err(SyncError::Job(
            "name both the object's type and its id, or neither (all of them)".into(),
        ));
    }
    let kind = match form.kind.as_str() {
        "" => None,
        k => Some(scim_core::ResourceKind::parse(k).ok_or_else(|| {
            SyncError::Job(format!(
                "unknown object type '{}'",
                scim_proto::error::excerpt(k)
            ))
        })?),
    };
    let only = kind.map(|k| (k, form.object.as_str()));
    let n = engine.decide_timers(name, only, apply).await?;
    tracing::info!(job = %name, apply, kind = %form.kind, object = %form.object, count = n, "scheduled deprovisioning decided in the console");
    // Read before the decision, which changes neither of these.
    let when = if record.enabled && !record.state.paused {
        "the next cycle"
    } else {
        "the next cycle once provisioning runs again (it is off or paused)"
    };
    Ok(match (apply, only) {
        (true, Some((_, id))) => format!(
            "The scheduled action for {id} is due now: {when} sends it, under the deletion breaker."
        ),
        (false, Some((_, id))) => format!(
            "Cancelled: {id} stays on the target until its state at the source changes again."
        ),
        (true, None) => format!(
            "{n} scheduled action(s) are due now: {when} sends them, under the deletion breaker (a mass delete is held for approval)."
        ),
        (false, None) => {
            format!("{n} scheduled action(s) cancelled: those objects stay on the target.")
        }
    })
}

/// Pause or resume; an app that is off has nothing to pause.
async fn pause(
    engine: &scim_sync::Engine,
    record: &scim_core::SyncJobRecord,
    name: &str,
    on: bool,
) -> Result<String, SyncError> {
    if on && !record.enabled {
        return Err(SyncError::Job(
            "provisioning is off: there is nothing to pause".into(),
        ));
    }
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

/// Provision on demand: the user typed (id, name or e-mail) is looked up first; several
/// matches are offered to pick from, one is provisioned and its log row is the answer
/// (with its scoping step), and a user with nothing to send gets the reason and what the
/// scope says of them.
async fn provision(
    state: &AppState,
    name: &str,
    spec: &JobSpec,
    record: &scim_core::SyncJobRecord,
    query: &str,
) -> ApiResult<Acted> {
    let engine = state.apps.engine();
    let found = match engine.find_users(spec, Some(record), query).await {
        Ok(f) => f,
        Err(e) => return shown(Err(e)),
    };
    let one = match found.as_slice() {
        [] => {
            return shown(Err(SyncError::NotFound(format!(
                "no source user matches '{}' by id, name or e-mail",
                scim_proto::error::excerpt(query)
            ))));
        }
        // Provisioned at once only when named exactly (id, userName, e-mail): a part of a
        // name could be someone else, and their action may be a disable or a delete.
        [one] if one.exact => one,
        many => {
            return Ok(Acted::Picked(Picks {
                query: query.to_string(),
                rows: many.iter().take(CANDIDATES).map(PickRow::of).collect(),
                more: many.len() > CANDIDATES,
            }));
        }
    };
    match engine.provision_one(spec, Some(record), &one.id).await {
        Ok(OnDemand::Done(..)) => Ok(Acted::Elsewhere(on_demand_row(state, name, &one.id).await?)),
        Ok(OnDemand::NothingToDo(why)) => shown(Ok(format!(
            "{} ({}): {}. {why}.",
            one.display,
            one.id,
            scope_text(one)
        ))),
        Err(e) => shown(Err(e)),
    }
}

async fn turn(state: &AppState, name: &str, on: bool) -> Result<String, SyncError> {
    state.apps.set_enabled(name, on).await?;
    if !on {
        state.apps.engine().set_paused(name, false).await?;
    }
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

const CYCLE_STARTED: &str = "A cycle started: the status and the cycles below follow it.";

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
