//! The review before Turn on: what the app will do, in one page — where it reads and
//! writes, who is in scope, the mappings and matching, the deprovisioning rules, the
//! breaker and the schedule — and the first cycle's plan, made as a cycle makes it (the
//! source, the ledger and the target read; nothing written), then Turn on.

use super::scope::TimeFrame;
use super::*;

/// Reviews planned at once on this node.
static REVIEWS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// How long a review's plan may take.
const REVIEW_TIME: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Template)]
#[template(path = "console/app_review.html")]
struct ReviewPage {
    chrome: Chrome,
    name: String,
    href: String,
    enabled: bool,
    source: String,
    target: String,
    scope: String,
    filters: usize,
    /// "the default mappings, with 2 change(s)" or "12 mapping(s) of the app's own".
    mappings: String,
    matching: String,
    frames: Vec<(&'static str, String)>,
    breaker: String,
    schedule: String,
    notify: String,
    /// The first cycle's plan: (action, count), or why it could not be made.
    plan: Result<Vec<(&'static str, u64)>, String>,
    /// The breaker would hold the plan's disables and deletes, and why.
    held: Option<String>,
}

/// Who is in scope, in words.
fn scope_text(spec: &JobSpec) -> String {
    let s = &spec.scope;
    match s.assignment {
        scim_sync::job::Assignment::All => "all users and groups".into(),
        scim_sync::job::Assignment::Groups => format!(
            "members of {}{}",
            s.groups.join(", "),
            if s.nested { " (nested groups too)" } else { "" }
        ),
    }
}

/// The breaker in words.
fn breaker_text(spec: &JobSpec) -> String {
    let b = &spec.breaker;
    format!(
        "more than {} disables and deletes in a cycle, or more than {}% of the objects it manages (from {}), are held for approval",
        b.max_deletes, b.max_percent, b.percent_floor
    )
}

/// `GET /console/apps/{name}/review`: what turning the app on will do.
pub async fn app_review(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (spec, record) = stored(&state, &name).await?;
    // Planning reads the whole source (and, first time, the target): a few at once, each
    // within a bound, so reloading the page cannot pile them up.
    let Ok(_permit) = REVIEWS.try_acquire() else {
        return Err(AppError::new(
            503,
            "other reviews are being planned: try again in a moment",
        ));
    };
    let planned = tokio::time::timeout(REVIEW_TIME, state.apps.engine().prepare(&spec, Some(&record)))
        .await
        .unwrap_or_else(|_| {
            Err(SyncError::Job(format!(
                "planning took longer than {} s (a large source or a slow target); the first cycle will take at least as long",
                REVIEW_TIME.as_secs()
            )))
        });
    let (plan, held) = match planned {
        Ok(p) => {
            let totals = p
                .plan
                .totals
                .iter()
                .filter(|(a, n)| **n > 0 && **a != SyncAction::Skip)
                .map(|(a, n)| (a.label(), *n))
                .collect();
            (Ok(totals), p.plan.breaker.clone())
        }
        Err(e) => {
            let e = AppError::from(e);
            if e.status().is_server_error() {
                return Err(e);
            }
            (Err(e.error.detail), None)
        }
    };
    let users = &spec.users;
    let page = ReviewPage {
        chrome: chrome(&s, None, "apps"),
        href: app_href(&name),
        name: name.clone(),
        enabled: record.enabled,
        source: source_text(&spec),
        target: spec.target.url.clone(),
        scope: scope_text(&spec),
        filters: spec.scope.filters.len(),
        mappings: match (users.mappings.len(), users.extra.len()) {
            (0, 0) => "the default mappings".into(),
            (0, changes) => format!("the default mappings, with {changes} change(s)"),
            (own, _) => format!("{own} mapping(s) of the app's own"),
        },
        matching: if users.matching.is_empty() {
            "userName".into()
        } else {
            users.matching.join(", then ")
        },
        frames: TimeFrame::all(&spec.deprovision)
            .into_iter()
            .map(|f| (f.label, f.text()))
            .collect(),
        breaker: breaker_text(&spec),
        schedule: format!(
            "every {} after the last cycle ends",
            spec.schedule.interval.text()
        ),
        notify: if spec.notify.email.is_empty() {
            "nobody (set a notification e-mail on the app's page)".into()
        } else {
            spec.notify.email.join(", ")
        },
        plan,
        held,
    };
    html(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_says_it_in_words() {
        let spec = JobSpec::from_value(json!({
            "name": "hr",
            "source": {"kind": "csv", "path": "/x.csv", "id": "id"},
            "target": {"url": "http://127.0.0.1/", "token": "-"},
            "scope": {"assignment": "groups", "groups": ["Sales", "Ops"], "nested": true},
            "deprovision": {"out_of_scope": {"action": "disable", "after": "7d"},
                            "deleted": {"action": "none"}},
        }))
        .unwrap();
        assert_eq!(
            scope_text(&spec),
            "members of Sales, Ops (nested groups too)"
        );
        assert!(breaker_text(&spec).starts_with("more than 500 disables and deletes"));
        let frames: Vec<String> = TimeFrame::all(&spec.deprovision)
            .iter()
            .map(TimeFrame::text)
            .collect();
        assert_eq!(frames[0], "Suspend after 7d");
        assert_eq!(frames[2], "Do nothing");
    }
}
