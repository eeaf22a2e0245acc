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
    day_links: CardLinks,
    month_links: CardLinks,
    chart: Chart,
    refused: Refused,
    error: Option<String>,
}

/// Requests refused at the tenant's URL for their credentials: never in the log (nothing
/// was done), counted here so an IdP still sending a revoked token is seen.
struct Refused {
    day: u64,
    month: u64,
    /// The last 30 days by reason, most first ("a revoked token", 12).
    by: Vec<(&'static str, u64)>,
    last: Option<String>,
}

impl Refused {
    fn of(counts: &[scim_core::RefusedCount], now: Timestamp) -> Self {
        use scim_core::refused::{hour_of, summary};
        let day_start = hour_of(now - Duration::days(1));
        let (month, by, last) = summary(counts);
        Refused {
            day: counts
                .iter()
                .filter(|c| c.hour >= day_start)
                .map(|c| c.count)
                .sum(),
            month,
            by: by.into_iter().map(|(r, n)| (r.label(), n)).collect(),
            last: last.map(|t| t.minutes_text()),
        }
    }
}

const LOG_PAGE_SIZE: u32 = 50;

/// The count cards as filters: each number opens the log with what it counts.
pub(crate) struct CardLinks {
    creates: String,
    updates: String,
    deletes: String,
    failures: String,
}

impl CardLinks {
    /// Links to this tenant's log over `since` (`24h`, `30d`) for each card.
    fn of(slug: &str, since: &str) -> Self {
        use scim_core::event::{ALL_OPERATIONS, Category};
        let by_category = |c: Category| {
            let mut kv = vec![("since", since.to_string())];
            if c == Category::Failure {
                kv.push(("outcome", "failure".to_string()));
            } else {
                kv.extend(
                    ALL_OPERATIONS
                        .iter()
                        .filter(|o| o.category() == c)
                        .map(|o| ("operation", o.as_str().to_string())),
                );
            }
            format!("/console/t/{slug}/log?{}", view::query_string(&kv))
        };
        Self {
            creates: by_category(Category::Create),
            updates: by_category(Category::Update),
            deletes: by_category(Category::Delete),
            failures: by_category(Category::Failure),
        }
    }
}

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

/// The page's links that keep the current filters: the next page and the two exports.
struct Links {
    next: Option<String>,
    csv: String,
    json: String,
}

impl Links {
    fn of(slug: &str, filter: &EventFilter, shown: &[scim_core::event::Event]) -> Self {
        let href = |extra: &[(&'static str, String)]| {
            let mut kv = filter.to_pairs();
            kv.extend_from_slice(extra);
            view::query_string(&kv)
        };
        let export = |format: &str| {
            let kv = [("format", format.to_string()), ("limit", "10000".into())];
            format!("/console/api/t/{slug}/events?{}", href(&kv))
        };
        // A full page has a next one, before its last event.
        let next = (shown.len() == LOG_PAGE_SIZE as usize)
            .then(|| shown.last().map(|e| e.seq))
            .flatten()
            .map(|seq| {
                format!(
                    "/console/t/{slug}/log?{}",
                    href(&[("before", seq.to_string())])
                )
            });
        Links {
            next,
            csv: export("csv"),
            json: export("json"),
        }
    }
}

/// The last day's and the last 30 days' counters, and the 30-day chart.
async fn activity(
    state: &scim_core::service::Services,
    t: &scim_core::Tenant,
    now: Timestamp,
) -> ApiResult<(Counts, Counts, Chart)> {
    let events = &state.events;
    let day = view::counts(&events.counts(t, now - Duration::days(1)).await?);
    // One read serves the 30-day counters and the chart: the chart's days (from midnight 29
    // days ago) lie inside the rolling 30 days, and `chart` skips the partial day before.
    let month_days = events.counts(t, now - Duration::days(30)).await?;
    let chart = view::chart(&month_days, now.days_since_epoch());
    Ok((day, view::counts(&month_days), chart))
}

pub async fn log(
    State(state): AppStateRef,
    s: ConsoleSession,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let t = tenant_of(&state, &tenant).await?;
    let now = Timestamp::now();
    // A filter that does not parse shows an empty page with the error, not an error page.
    let (filter, query) = match EventFilter::from_pairs(pairs(raw)) {
        Ok(f) => {
            let q = f.to_query(now, LOG_PAGE_SIZE);
            (f, q)
        }
        Err(e) => (EventFilter::default(), Err(e)),
    };
    let (shown, error) = match query {
        Ok(q) => (state.services.events.query(&t, &q).await?, None),
        Err(CoreError::Invalid(m)) => (Vec::new(), Some(m)),
        Err(e) => return Err(e.into()),
    };
    let (day, month, chart) = activity(&state.services, &t, now).await?;
    let refused = state
        .services
        .tokens
        .refused(&t, now - Duration::days(30), &state.refusals)
        .await?;
    let token_names = state
        .services
        .tokens
        .list(&t)
        .await?
        .into_iter()
        .map(|x| x.name);
    let (operations, outcomes, tokens) = choices(&filter, token_names.collect());
    let links = Links::of(&t.slug, &filter, &shown);
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    let page = LogPage {
        chrome: chrome(&s, Some(&t), "log"),
        since: filter.since.clone().unwrap_or_default(),
        until: filter.until.clone().unwrap_or_default(),
        resource: filter.resource.clone().unwrap_or_default(),
        operations,
        outcomes,
        tokens,
        rows: view::event_rows(&t.slug, &shown),
        next_href: links.next,
        csv_href: links.csv,
        json_href: links.json,
        day,
        month,
        day_links: CardLinks::of(&t.slug, "24h"),
        month_links: CardLinks::of(&t.slug, "30d"),
        chart,
        refused: Refused::of(&refused, now),
        error,
    };
    html(status, &page)
}
