//! What the app page shows of its synchronization: the cycles (failed ones in red, each
//! linked to its log rows), the last 30 days' usage (Google's usage review), the daily
//! chart, the scheduled deprovisioning, and whether the page keeps itself fresh.

use super::*;
use scim_core::{CycleRecord, CycleStatus};
use scim_sync::engine::TimerView;
use time::Duration;

pub(super) struct CycleRow {
    pub started: String,
    pub mode: String,
    pub status: String,
    pub failed: bool,
    pub duration: String,
    pub counts: String,
    /// Its rows in the app's log.
    /// None for a cycle that failed before its plan (it wrote no log rows).
    pub log_href: Option<String>,
}

impl CycleRow {
    pub fn of(href: &str, c: &CycleRecord) -> Self {
        CycleRow {
            started: view::fmt_time(c.started_at),
            mode: c.mode.as_str().to_string(),
            status: c.status.as_str().to_string(),
            failed: c.status == CycleStatus::Failed,
            duration: c
                .finished_at
                .map_or_else(|| "running".into(), |f| duration_text(f - c.started_at)),
            counts: counts_text(&c.counts),
            // A cycle that failed before its plan wrote no log rows.
            log_href: (!c.counts.actions.is_empty() || c.status != CycleStatus::Failed)
                .then(|| format!("{href}/log?cycle={}", view::url_encode(&c.cycle_id))),
        }
    }
}

/// `850 ms`, `12.4 s`, `3 min 05 s`.
fn duration_text(d: Duration) -> String {
    let ms = d.whole_milliseconds().max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_seconds_f64())
    } else {
        let s = ms / 1_000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// Objects created, updated, disabled, deleted and failed by the cycles of the last 30
/// days (on-demand provisioning is in the log, not here).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Usage {
    pub created: u64,
    pub updated: u64,
    pub disabled: u64,
    pub deleted: u64,
    pub failed: u64,
    pub cycles: u64,
    pub failed_cycles: u64,
}

impl Usage {
    pub fn of(cycles: &[CycleRecord], now: Timestamp) -> Self {
        let since = now - Duration::days(30);
        let mut u = Usage::default();
        for c in cycles.iter().filter(|c| c.started_at >= since) {
            let n = |a| c.counts.action(a);
            u.created += n(SyncAction::Create);
            u.updated += n(SyncAction::Update) + n(SyncAction::Enable) + n(SyncAction::Adopt);
            u.disabled += n(SyncAction::Disable);
            u.deleted += n(SyncAction::Delete);
            u.failed += c.counts.failures();
            u.cycles += 1;
            u.failed_cycles += u64::from(c.status == CycleStatus::Failed);
        }
        u
    }
}

/// Objects changed (and failed) per day over the last 30 days, from the cycles' counts.
pub(super) fn daily_actions(cycles: &[CycleRecord], now: Timestamp) -> Chart {
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

/// One scheduled disable or delete, with what the buttons send back.
pub(super) struct TimerRow {
    pub kind: String,
    pub source_id: String,
    pub display: String,
    pub action: &'static str,
    pub why: &'static str,
    pub due: String,
}

impl TimerRow {
    pub fn of(t: &TimerView) -> Self {
        TimerRow {
            kind: t.kind.as_str().to_string(),
            source_id: t.source_id.clone(),
            display: t.display.clone(),
            action: match t.action {
                scim_core::Verb::Disable => "Disable",
                scim_core::Verb::Delete => "Delete",
            },
            why: match t.trigger {
                scim_core::Trigger::OutOfScope => "out of scope",
                scim_core::Trigger::Suspended => "suspended at the source",
                scim_core::Trigger::Deleted => "deleted at the source",
            },
            due: rfc3339_text(t.due.as_deref()),
        }
    }
}

/// An RFC 3339 time from the engine's views, in the console's format.
pub(super) fn rfc3339_text(at: Option<&str>) -> String {
    let Some(at) = at else {
        return "—".into();
    };
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| view::fmt_time(Timestamp::from_datetime(t)))
        .unwrap_or_else(|_| at.to_string())
}

/// What the delete confirmation says will never happen once the app is gone.
pub(super) fn delete_confirmation(name: &str, st: &JobStatus) -> String {
    let mut text = format!(
        "Delete the configuration of “{name}”? Its ledger and log go too; the users and groups on the target stay."
    );
    if st.timers > 0 {
        text.push_str(&format!(
            " {} scheduled disable/delete(s) will never run.",
            st.timers
        ));
    }
    if st.staged_deletes > 0 {
        text.push_str(&format!(
            " {} delete(s) held by the breaker are dropped.",
            st.staged_deletes
        ));
    }
    text
}

/// How many times a page polls while a cycle is due but has not started: two minutes at
/// one poll every 2 s. A scheduler that is off (or a node holding a dead lease) never
/// starts it, and the page must not poll forever.
pub(super) const POLLS: u32 = 60;

/// Whether the page polls, and how many times more: while a cycle runs, always; while one
/// is due now (just turned on, a retry), `POLLS` times counted down by the page itself.
pub(super) fn polls_left(
    st: &JobStatus,
    running: bool,
    left: Option<u32>,
    now: Timestamp,
) -> Option<u32> {
    if running {
        return Some(POLLS);
    }
    let due = st.next_run.as_deref().and_then(|at| {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
    });
    let due = due.is_some_and(|at| Timestamp::from_datetime(at) <= now + Duration::seconds(5));
    due.then(|| left.unwrap_or(POLLS).saturating_sub(1))
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::{CycleCounts, CycleMode, Status};

    fn cycle(days_ago: i64, status: CycleStatus, actions: &[(SyncAction, u64)]) -> CycleRecord {
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        let failures: u64 = if status == CycleStatus::CompletedWithFailures {
            2
        } else {
            0
        };
        CycleRecord {
            job: "j".into(),
            cycle_id: format!("c{days_ago}"),
            started_at: now - Duration::days(days_ago),
            finished_at: Some(now - Duration::days(days_ago) + Duration::seconds(3)),
            mode: CycleMode::Incremental,
            status,
            counts: CycleCounts {
                actions: actions.iter().copied().collect(),
                statuses: [(Status::Failure, failures)].into(),
                ..CycleCounts::default()
            },
        }
    }

    #[test]
    fn usage_counts_the_last_30_days() {
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        let cycles = [
            cycle(
                1,
                CycleStatus::Completed,
                &[(SyncAction::Create, 5), (SyncAction::Update, 2)],
            ),
            cycle(
                2,
                CycleStatus::CompletedWithFailures,
                &[(SyncAction::Delete, 1), (SyncAction::Enable, 1)],
            ),
            cycle(3, CycleStatus::Failed, &[]),
            cycle(
                29,
                CycleStatus::Completed,
                &[(SyncAction::Disable, 4), (SyncAction::Adopt, 3)],
            ),
            cycle(31, CycleStatus::Completed, &[(SyncAction::Create, 100)]),
        ];
        assert_eq!(
            Usage::of(&cycles, now),
            Usage {
                created: 5,
                updated: 6,
                disabled: 4,
                deleted: 1,
                failed: 2,
                cycles: 4,
                failed_cycles: 1,
            }
        );
    }

    #[test]
    fn durations_read_well() {
        let cases = [
            (Duration::milliseconds(0), "0 ms"),
            (Duration::milliseconds(850), "850 ms"),
            (Duration::milliseconds(12_449), "12.4 s"),
            (Duration::seconds(185), "3 min 05 s"),
            (Duration::milliseconds(-5), "0 ms"),
        ];
        for (d, want) in cases {
            assert_eq!(duration_text(d), want);
        }
    }

    #[test]
    fn a_failed_cycle_is_red_and_links_to_its_rows() {
        let row = CycleRow::of("/console/apps/a%20b", &cycle(1, CycleStatus::Failed, &[]));
        assert!(row.failed);
        assert_eq!(row.log_href, None, "a failed start has no log rows");
        assert_eq!(row.duration, "3.0 s");
        let c = cycle(1, CycleStatus::Failed, &[(SyncAction::Create, 1)]);
        let row = CycleRow::of("/console/apps/a%20b", &c);
        assert_eq!(
            row.log_href.as_deref(),
            Some("/console/apps/a%20b/log?cycle=c1")
        );
    }
}
