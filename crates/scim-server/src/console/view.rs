//! What the templates show, computed in Rust so the templates stay plain: the page chrome,
//! formatted times, flattened attributes, event rows, counts and the per-day chart.

use axum::http::{HeaderValue, header};
use scim_core::DayCount;
use scim_core::Timestamp;
use scim_core::event::{Category, Event};
use serde_json::Value;

/// The frame around every signed-in page.
pub struct Chrome {
    pub operator: String,
    pub csrf: String,
    /// The tenant the page is about, if any.
    pub tenant: Option<String>,
    /// Which navigation entry is current.
    pub tab: &'static str,
    /// An instance admin (sees the Apps and every tenant).
    pub instance: bool,
    /// May change the page's tenant (false: a read-only tenant admin; forms are not shown).
    pub can_write: bool,
}

impl Chrome {
    pub fn is(&self, tab: &str) -> &'static str {
        if self.tab == tab { "page" } else { "false" }
    }
}

pub fn html_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    )]
}

/// `2026-11-24 04:50:12 UTC`.
pub fn fmt_time(t: Timestamp) -> String {
    let d = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

pub fn fmt_opt_time(t: Option<Timestamp>) -> String {
    t.map(fmt_time).unwrap_or_else(|| "never".into())
}

/// Percent-encodes a query-string component.
pub fn url_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// A query string from pairs (`a=1&b=2`).
pub fn query_string(pairs: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Only local console paths are followed after sign-in (no open redirect).
pub fn safe_next(next: &str) -> Option<String> {
    (next.starts_with("/console/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control))
    .then(|| next.to_string())
}

/// Leaf attributes as `path = value` rows (`emails[0].value`), at most `max` of them.
pub fn flatten(v: &Value, max: usize) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>, max: usize) {
        if out.len() >= max {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out, max);
                }
            }
            Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
                let items: Vec<String> = a.iter().map(scalar).collect();
                out.push((prefix.to_string(), items.join(", ")));
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out, max);
                }
            }
            other => out.push((prefix.to_string(), scalar(other))),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out, max);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// One provisioning-log row as shown.
pub struct EventRow {
    pub seq: i64,
    pub time: String,
    /// The operation, or for a failure what it attempted (`Create User — failed (409)`).
    pub operation: String,
    pub failure: bool,
    pub resource_type: String,
    pub resource: String,
    /// Console link to the resource, when it may still exist.
    pub href: Option<String>,
    pub status: u16,
    pub detail: String,
    pub token: String,
    pub request_id: String,
    pub client: String,
}

pub fn event_rows(tenant: &str, events: &[Event]) -> Vec<EventRow> {
    events
        .iter()
        .map(|e| {
            let href = match (e.resource_type.as_deref(), e.resource_id.as_deref()) {
                (Some("User"), Some(id)) => Some(format!("/console/t/{tenant}/users/{id}")),
                (Some("Group"), Some(id)) => Some(format!("/console/t/{tenant}/groups/{id}")),
                _ => None,
            };
            let detail = match (&e.scim_type, &e.detail) {
                (Some(t), Some(d)) => format!("{t}: {d}"),
                (None, Some(d)) => d.clone(),
                (Some(t), None) => t.clone(),
                (None, None) => String::new(),
            };
            EventRow {
                seq: e.seq,
                time: fmt_time(e.at),
                operation: e.summary(),
                failure: e.operation.category() == Category::Failure,
                resource_type: e.resource_type.clone().unwrap_or_default(),
                resource: e
                    .resource_name
                    .clone()
                    .or_else(|| e.resource_id.clone())
                    .unwrap_or_default(),
                href,
                status: e.status,
                detail,
                token: e.token_name.clone().unwrap_or_default(),
                request_id: e.request_id.clone(),
                client: e.client_addr.clone().unwrap_or_default(),
            }
        })
        .collect()
}

/// The four counters.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Counts {
    pub creates: i64,
    pub updates: i64,
    pub deletes: i64,
    pub failures: i64,
}

pub fn counts(days: &[DayCount]) -> Counts {
    let mut c = Counts::default();
    for d in days {
        match d.operation.category() {
            Category::Create => c.creates += d.count,
            Category::Update => c.updates += d.count,
            Category::Delete => c.deletes += d.count,
            Category::Failure => c.failures += d.count,
        }
    }
    c
}

/// One day's bar: successes stacked on failures, in SVG user units.
pub struct Bar {
    pub x: i64,
    pub ok_y: i64,
    pub ok_h: i64,
    pub fail_y: i64,
    pub fail_h: i64,
    pub label: String,
    pub total: i64,
    pub failures: i64,
}

pub struct Chart {
    /// What a bar counts, in its tooltip ("events", "objects changed").
    pub unit: &'static str,
    pub width: i64,
    pub height: i64,
    pub bar_width: i64,
    pub max: i64,
    pub bars: Vec<Bar>,
    /// Date labels under the first, middle and last bars: (x, text, SVG text-anchor).
    pub ticks: Vec<(i64, String, &'static str)>,
}

pub const CHART_DAYS: i64 = 30;

/// Bars for the `CHART_DAYS` days ending `today` (days since the epoch).
pub fn chart(days: &[DayCount], today: i64) -> Chart {
    chart_of(
        days.iter().map(|d| {
            if d.operation.category() == Category::Failure {
                (d.day, 0, d.count)
            } else {
                (d.day, d.count, 0)
            }
        }),
        today,
        "events",
    )
}

/// Bars from `(day, successes, failures)` points (several per day add up).
pub fn chart_of(
    points: impl IntoIterator<Item = (i64, i64, i64)>,
    today: i64,
    unit: &'static str,
) -> Chart {
    let (bar_width, gap, height) = (18_i64, 4_i64, 120_i64);
    let first = today - CHART_DAYS + 1;
    let mut totals = vec![(0_i64, 0_i64); CHART_DAYS as usize];
    for (day, ok, fail) in points {
        let Ok(i) = usize::try_from(day - first) else {
            continue;
        };
        if let Some(slot) = totals.get_mut(i) {
            slot.0 += ok;
            slot.1 += fail;
        }
    }
    let max = totals
        .iter()
        .map(|(ok, f)| ok + f)
        .max()
        .unwrap_or(0)
        .max(1);
    let label = |day: i64| {
        time::Date::from_julian_day(i32::try_from(day + 2_440_588).unwrap_or(2_440_588))
            .map(|d| d.to_string())
            .unwrap_or_default()
    };
    let bars = totals
        .iter()
        .enumerate()
        .map(|(i, (ok, fail))| {
            let x = i as i64 * (bar_width + gap);
            let fail_h = fail * height / max;
            let ok_h = ok * height / max;
            Bar {
                x,
                fail_y: height - fail_h,
                fail_h,
                ok_y: height - fail_h - ok_h,
                ok_h,
                label: label(first + i as i64),
                total: ok + fail,
                failures: *fail,
            }
        })
        .collect();
    let ticks = [
        (0, 0, "start"),
        (CHART_DAYS / 2, bar_width / 2, "middle"),
        (CHART_DAYS - 1, bar_width, "end"),
    ]
    .into_iter()
    .map(|(i, dx, anchor)| (i * (bar_width + gap) + dx, label(first + i), anchor))
    .collect();
    Chart {
        unit,
        width: CHART_DAYS * (bar_width + gap),
        height,
        bar_width,
        max,
        bars,
        ticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::Operation;
    use serde_json::json;

    #[test]
    fn attributes_flatten_to_paths() {
        let rows = flatten(
            &json!({"userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x", "primary": true}], "schemas": ["u1", "u2"]}),
            100,
        );
        assert!(rows.contains(&("userName".into(), "a".into())));
        assert!(rows.contains(&("name.givenName".into(), "A".into())));
        assert!(rows.contains(&("emails[0].primary".into(), "true".into())));
        assert!(rows.contains(&("schemas".into(), "u1, u2".into())));
        assert_eq!(flatten(&json!({"a": 1, "b": 2, "c": 3}), 2).len(), 2);
    }

    #[test]
    fn next_must_stay_in_the_console() {
        assert!(safe_next("/console/t/x/users").is_some());
        assert!(safe_next("//evil.example/console/").is_none());
        assert!(safe_next("https://evil.example/").is_none());
        assert!(safe_next("/console/\\evil").is_none());
        assert!(safe_next("/console/\r\nSet-Cookie: x=1").is_none());
    }

    #[test]
    fn counts_and_chart_place_each_day() {
        let today = 20_000;
        let days = vec![
            DayCount {
                day: today,
                operation: Operation::CreateUser,
                count: 3,
            },
            DayCount {
                day: today,
                operation: Operation::Failure,
                count: 1,
            },
            DayCount {
                day: today - 29,
                operation: Operation::HardDeleteUser,
                count: 2,
            },
            DayCount {
                day: today - 40,
                operation: Operation::UpdateUser,
                count: 9,
            },
        ];
        let c = counts(&days);
        assert_eq!((c.creates, c.updates, c.deletes, c.failures), (3, 9, 2, 1));
        let ch = chart(&days, today);
        assert_eq!(ch.bars.len(), 30);
        assert_eq!(ch.max, 4);
        let last = &ch.bars[29];
        assert_eq!(
            (last.total, last.failures, last.fail_h, last.ok_h),
            (4, 1, 30, 90)
        );
        assert_eq!(ch.bars[0].total, 2);
        assert_eq!(ch.bars[29].label, "2024-10-04");
    }
}
