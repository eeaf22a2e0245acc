//! The provisioning log page: filters, counters, chart, export links.

use super::super::session::ConsoleSession;
use super::super::view::{self, Chart, Chrome, Counts, EventRow};
use super::common::{AppStateRef, chrome, html, pairs, tenant_of};
use crate::error::ApiResult;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use scim_core::event::EventFilter;
use scim_core::{CoreError, Timestamp};
use time::Duration;
struct Choice {
    value: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/log.html")]
struct LogPage {
    chrome: Chrome,
    since: String,
    until: String,
    resource: String,
    operations: Vec<Choice>,
    outcomes: Vec<Choice>,
    tokens: Vec<Choice>,
    rows: Vec<EventRow>,
    next_href: Option<String>,
    csv_href: String,
    json_href: String,
    day: Counts,
    month: Counts,
    chart: Chart,
    error: Option<String>,
}

const LOG_PAGE_SIZE: u32 = 50;

/// The filter form's drop-downs, with the current choices selected.
fn choices(
    filter: &EventFilter,
    mut names: Vec<String>,
) -> (Vec<Choice>, Vec<Choice>, Vec<Choice>) {
    let chosen_op = filter.operation.first().cloned().unwrap_or_default();
    let operations = scim_core::event::ALL_OPERATIONS
        .iter()
        .map(|o| Choice {
            value: o.as_str().into(),
            selected: scim_core::Operation::parse(&chosen_op) == Some(*o),
        })
        .collect();
    let outcome = filter
        .outcome
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let outcomes = ["success", "failure"]
        .iter()
        .map(|o| Choice {
            value: (*o).into(),
            selected: outcome == *o,
        })
        .collect();
    let token = filter.token.clone().unwrap_or_default();
    names.sort();
    names.dedup();
    let tokens = names
        .into_iter()
        .map(|n| Choice {
            selected: n == token,
            value: n,
        })
        .collect();
    (operations, outcomes, tokens)
}

pub async fn log(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let now = Timestamp::now();
    let (filter, parsed) = match EventFilter::from_pairs(pairs(raw)) {
        Ok(f) => {
            let q = f.to_query(now, LOG_PAGE_SIZE);
            (f, q)
        }
        Err(e) => (EventFilter::default(), Err(e)),
    };
    let events = &state.services.events;
    let (events_shown, error) = match parsed {
        Ok(q) => (events.query(&t, &q).await?, None),
        Err(CoreError::Invalid(m)) => (Vec::new(), Some(m)),
        Err(e) => return Err(e.into()),
    };
    let day = view::counts(&events.counts(&t, now - Duration::days(1)).await?);
    // One read serves the 30-day counters and the chart: the chart's days (from midnight 29
    // days ago) lie inside the rolling 30 days, and `chart` skips the partial day before.
    let month_days = events.counts(&t, now - Duration::days(30)).await?;
    let month = view::counts(&month_days);
    let chart = view::chart(&month_days, now.days_since_epoch());
    let keep = filter.to_pairs();
    let href = |extra: &[(&'static str, String)]| {
        let mut kv = keep.clone();
        kv.extend_from_slice(extra);
        view::query_string(&kv)
    };
    let next_href = (events_shown.len() == LOG_PAGE_SIZE as usize)
        .then(|| events_shown.last().map(|e| e.seq))
        .flatten()
        .map(|seq| {
            format!(
                "/console/t/{}/log?{}",
                t.slug,
                href(&[("before", seq.to_string())])
            )
        });
    let token_names = state
        .services
        .tokens
        .list(&t)
        .await?
        .into_iter()
        .map(|x| x.name);
    let (operations, outcomes, tokens) = choices(&filter, token_names.collect());
    html(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &LogPage {
            chrome: chrome(&s, Some(&t), "log"),
            since: filter.since.clone().unwrap_or_default(),
            until: filter.until.clone().unwrap_or_default(),
            resource: filter.resource.clone().unwrap_or_default(),
            operations,
            outcomes,
            tokens,
            rows: view::event_rows(&t.slug, &events_shown),
            next_href,
            csv_href: format!(
                "/console/api/t/{}/events?{}",
                t.slug,
                href(&[("format", "csv".into()), ("limit", "10000".into())])
            ),
            json_href: format!(
                "/console/api/t/{}/events?{}",
                t.slug,
                href(&[("format", "json".into()), ("limit", "10000".into())])
            ),
            day,
            month,
            chart,
            error,
        },
    )
}
