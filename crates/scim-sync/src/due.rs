//! When a job's next cycle is due (docs/sync.md §10), from its definition and its state
//! alone: pure, so the scheduler, `sync status` and the console say the same.

use crate::job::JobSpec;
use scim_core::{CycleStatus, JobState, Timestamp};
use time::Duration;

/// A cycle that failed outright (source unreadable, target down) is tried again after
/// this long, or the interval if that is shorter.
pub const RETRY_FAILED: Duration = Duration::minutes(5);

/// When the job's next cycle is due by its schedule; `None` while off or paused.
///
/// - quarantined: once per quarantine interval after the last cycle, whatever it did (a
///   cycle stopped by a refused token must not be retried at once);
/// - the target asked to be left alone (`Retry-After`): not before then;
/// - a cycle that started and never finished (a node died, a pause was lifted), or one that
///   stopped early, or none yet: now;
/// - a failed cycle: after [`RETRY_FAILED`] (or the interval, if shorter);
/// - otherwise the interval after the last cycle.
pub fn next_run(
    spec: &JobSpec,
    enabled: bool,
    state: &JobState,
    now: Timestamp,
) -> Option<Timestamp> {
    if !enabled || state.paused {
        return None;
    }
    let at = state.last_cycle.as_ref().map(|l| l.at);
    let by_schedule = if state.quarantine.is_some() {
        at.map_or(now, |at| at + spec.quarantine.interval.get())
    } else if state.running.is_some() {
        now
    } else {
        match (&state.last_cycle, at) {
            (Some(l), Some(at)) => {
                let interval = spec.schedule.interval.get();
                match l.status {
                    CycleStatus::Stopped | CycleStatus::Running => now,
                    CycleStatus::Failed => at + interval.min(RETRY_FAILED),
                    _ => at + interval,
                }
            }
            _ => now,
        }
    };
    Some(match state.throttled_until {
        Some(t) if t > by_schedule => t,
        _ => by_schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::{LastCycle, Quarantine, QuarantineReason, RunningCycle};

    fn spec() -> JobSpec {
        JobSpec::parse(
            "name = \"j\"\n[source]\nkind = \"tenant\"\ntenant = \"hub\"\n[target]\nurl = \"http://x/scim/v2\"\ntoken_env = \"T\"\n[schedule]\ninterval = \"30m\"\n",
            None,
        )
        .expect("parses")
    }

    #[test]
    fn the_schedule_follows_the_state() {
        let now = Timestamp::from_micros(10_000_000_000_000);
        let at = now - Duration::minutes(10);
        let last = |status| {
            Some(LastCycle {
                id: "c".into(),
                at,
                status,
                error: None,
            })
        };
        let q = |reason| {
            Some(Quarantine {
                reason,
                detail: String::new(),
                since: at,
            })
        };
        let state = |last_cycle, quarantine, running: bool, paused| JobState {
            last_cycle,
            quarantine,
            running: running.then(|| RunningCycle {
                cycle_id: "c".into(),
                started: at,
            }),
            paused,
            ..JobState::default()
        };
        use CycleStatus as S;
        #[rustfmt::skip]
        let cases = [
            ("never ran", state(None, None, false, false), true, Some(now)),
            ("off", state(last(S::Completed), None, false, false), false, None),
            ("paused", state(last(S::Completed), None, false, true), true, None),
            ("completed: the interval", state(last(S::Completed), None, false, false), true, Some(at + Duration::minutes(30))),
            ("failed: soon", state(last(S::Failed), None, false, false), true, Some(at + Duration::minutes(5))),
            ("stopped: now", state(last(S::Stopped), None, false, false), true, Some(now)),
            ("interrupted: now", state(last(S::Completed), None, true, false), true, Some(now)),
            ("quarantined: a day", state(last(S::Completed), q(QuarantineReason::Failures), false, false), true, Some(at + Duration::hours(24))),
            ("quarantined and stopped: a day", state(last(S::Stopped), q(QuarantineReason::Credentials), false, false), true, Some(at + Duration::hours(24))),
        ];
        let s = spec();
        for (name, st, enabled, want) in cases {
            assert_eq!(next_run(&s, enabled, &st, now), want, "{name}");
        }
    }

    /// The target's Retry-After outlasts the schedule: nothing before it.
    #[test]
    fn a_retry_after_holds_the_next_cycle() {
        let now = Timestamp::from_micros(10_000_000_000_000);
        let later = now + Duration::minutes(2);
        let st = JobState {
            last_cycle: Some(LastCycle {
                id: "c".into(),
                at: now,
                status: CycleStatus::Stopped,
                error: None,
            }),
            throttled_until: Some(later),
            ..JobState::default()
        };
        assert_eq!(next_run(&spec(), true, &st, now), Some(later));
        let past = JobState {
            throttled_until: Some(now - Duration::minutes(1)),
            ..st
        };
        assert_eq!(next_run(&spec(), true, &past, now), Some(now));
    }
}
