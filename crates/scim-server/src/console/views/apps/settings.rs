//! An app's settings that were only in the job file: when it runs (the interval between
//! cycles, the quiet time before a tenant source's change starts one), the deletion breaker
//! (most disables and deletes per cycle, as a count and a share, and the floor the share
//! applies from) and what a match or a 409 does to an existing target object.

use super::*;
use scim_sync::duration::Dur;
use scim_sync::job::ConflictPolicy;

#[derive(Template)]
#[template(path = "console/app_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    name: String,
    href: String,
    interval: String,
    debounce: String,
    /// The source is a scimd tenant (the only one whose changes start cycles).
    event_driven: bool,
    max_deletes: String,
    max_percent: String,
    percent_floor: String,
    on_conflict: &'static str,
    message: Option<String>,
    error: Option<String>,
}

fn conflict_key(p: ConflictPolicy) -> &'static str {
    match p {
        ConflictPolicy::Adopt => "adopt",
        ConflictPolicy::Report => "report",
        ConflictPolicy::CreateOnly => "create-only",
    }
}

/// The job with the settings form applied; what is wrong, in words. The job's own checks
/// (interval at least 1m, a share between 0 and 100) run when it is stored.
fn settings_edited(mut spec: JobSpec, form: &[(String, String)]) -> Result<JobSpec, String> {
    let dur = |key: &str| Dur::parse(&param(form, key)).map_err(|e| format!("{key}: {e}"));
    let whole = |key: &str, what: &str| {
        param(form, key)
            .parse::<u64>()
            .map_err(|_| format!("{what}: give a whole number, 0 or more"))
    };
    spec.schedule.interval = dur("interval")?;
    spec.schedule.debounce = dur("debounce")?;
    spec.breaker.max_deletes = whole("max_deletes", "most disables and deletes per cycle")?;
    spec.breaker.percent_floor = whole("percent_floor", "the share applies from")?;
    let percent = param(form, "max_percent");
    spec.breaker.max_percent = percent
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && (0.0..=100.0).contains(p))
        .ok_or("most disables and deletes as a share: give a percentage from 0 to 100")?;
    spec.matching.on_conflict = match param(form, "on_conflict").as_str() {
        "adopt" => ConflictPolicy::Adopt,
        "report" => ConflictPolicy::Report,
        "create-only" => ConflictPolicy::CreateOnly,
        other => {
            return Err(format!(
                "unknown choice for an existing target object: '{}'",
                scim_proto::error::excerpt(other)
            ));
        }
    };
    Ok(spec)
}

/// The page; after a refused save (`typed`), the fields as the operator typed them.
async fn settings_page(
    state: &AppState,
    s: &ConsoleSession,
    name: &str,
    status: StatusCode,
    (message, error): (Option<String>, Option<String>),
    typed: Option<&[(String, String)]>,
) -> ApiResult<Response> {
    let (spec, _) = stored(state, name).await?;
    let mut page = SettingsPage {
        chrome: chrome(s, None, "apps"),
        href: app_href(name),
        name: name.to_string(),
        interval: spec.schedule.interval.text().to_string(),
        debounce: spec.schedule.debounce.text().to_string(),
        event_driven: spec.source.kind() == scim_sync::source::SourceKind::Tenant,
        max_deletes: spec.breaker.max_deletes.to_string(),
        max_percent: spec.breaker.max_percent.to_string(),
        percent_floor: spec.breaker.percent_floor.to_string(),
        on_conflict: conflict_key(spec.matching.on_conflict),
        message,
        error,
    };
    if let Some(form) = typed {
        page.interval = param(form, "interval");
        page.debounce = param(form, "debounce");
        page.max_deletes = param(form, "max_deletes");
        page.max_percent = param(form, "max_percent");
        page.percent_floor = param(form, "percent_floor");
        page.on_conflict = match param(form, "on_conflict").as_str() {
            "report" => "report",
            "create-only" => "create-only",
            _ => "adopt",
        };
    }
    html(status, &page)
}

/// `GET /console/apps/{name}/settings`.
pub async fn app_settings(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    settings_page(&state, &s, &name, StatusCode::OK, (None, None), None).await
}

/// `POST /console/apps/{name}/settings`: checked as a job file is, then stored; the app's
/// state and ledger stay.
pub async fn app_settings_edit(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (spec, _) = stored(&state, &name).await?;
    let saved = "Settings saved; the next cycle uses them.";
    let edited = settings_edited(spec, &form);
    let (status, message, error) = save_edit(&state, &s, edited, "settings", saved).await?;
    let typed = error.is_some().then_some(form.as_slice());
    settings_page(&state, &s, &name, status, (message, error), typed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec::from_value(json!({
            "name": "hr",
            "source": {"kind": "csv", "path": "/x.csv", "id": "id"},
            "target": {"url": "http://127.0.0.1/", "token": "-"},
        }))
        .unwrap()
    }

    fn form(interval: &str, percent: &str, conflict: &str) -> Vec<(String, String)> {
        [
            ("interval", interval),
            ("debounce", "0"),
            ("max_deletes", "50"),
            ("max_percent", percent),
            ("percent_floor", "3"),
            ("on_conflict", conflict),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    }

    #[test]
    fn settings_from_the_form() {
        let s = settings_edited(spec(), &form("2h", "10 %", "report")).unwrap();
        assert_eq!(s.schedule.interval.text(), "2h");
        assert!(s.debounce().is_none(), "0 turns event-driven runs off");
        assert_eq!(
            (
                s.breaker.max_deletes,
                s.breaker.max_percent,
                s.breaker.percent_floor
            ),
            (50, 10.0, 3)
        );
        assert_eq!(s.matching.on_conflict, ConflictPolicy::Report);
        for (f, want) in [
            (form("soon", "10", "adopt"), "interval"),
            (form("1h", "150", "adopt"), "percentage from 0 to 100"),
            (form("1h", "NaN", "adopt"), "percentage from 0 to 100"),
            (form("1h", "10", "merge"), "unknown choice"),
        ] {
            let e = settings_edited(spec(), &f).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let mut f = form("1h", "10", "adopt");
        f[2].1 = "-1".into();
        assert!(
            settings_edited(spec(), &f)
                .unwrap_err()
                .contains("whole number")
        );
        // Below a minute: the job's own check refuses it when stored.
        let s = settings_edited(spec(), &form("30s", "10", "adopt")).unwrap();
        assert!(s.as_stored().is_err());
    }
}
