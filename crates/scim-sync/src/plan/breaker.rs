//! The deletion breaker (engine-behaviour §8.4): a cycle that would disable or delete too
//! many objects applies none of them; each is staged for an operator's approval.

use crate::job::BreakerSpec;

/// Why the breaker trips for `count` disables and deletes among `managed` linked objects,
/// or `None` when they may go ahead.
pub fn trips(b: &BreakerSpec, count: u64, managed: u64) -> Option<String> {
    if count == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let share = if managed == 0 {
        100.0
    } else {
        count as f64 * 100.0 / managed as f64
    };
    if count > b.max_deletes {
        Some(format!(
            "{count} disables and deletes exceed the limit of {}",
            b.max_deletes
        ))
    } else if count >= b.percent_floor && share > b.max_percent {
        Some(format!(
            "{count} disables and deletes are {share:.0}% of {managed} managed objects (limit {}%)",
            b.max_percent
        ))
    } else {
        None
    }
}

/// Missing objects the complete-read guard lets through without a look (fewer than these
/// are ordinary leavers), and the share of managed objects past which it holds them.
pub const GUARD_FLOOR: u64 = 5;
pub const GUARD_PERCENT: u64 = 30;

/// The complete-read guard, for a full read of a remote directory (Google, Entra) that came
/// back with `read` objects of one kind (`noun`), `missing` managed ones absent from it (those
/// staged before included), among `managed`: why those absences look like a failed or
/// truncated read — none of the kind read, or more than [`GUARD_PERCENT`]% gone — or `None`.
/// Unlike the breaker, no setting loosens it; what it holds is staged for approval like the
/// breaker's.
pub fn guard(noun: &str, missing: u64, managed: u64, read: u64) -> Option<String> {
    if missing == 0 {
        return None;
    }
    if read == 0 {
        return Some(format!(
            "the source's read came back with no {noun} while {managed} are provisioned: an \
             empty directory is taken for a failed read (complete-read guard)"
        ));
    }
    if missing >= GUARD_FLOOR && missing * 100 > managed * GUARD_PERCENT {
        return Some(format!(
            "{missing} of {managed} provisioned {noun} are missing from the source's read \
             (more than {GUARD_PERCENT}%): taken for a truncated read until approved \
             (complete-read guard)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_complete_read_guard() {
        let cases = [
            // missing, managed, read → held
            (0, 100, 0, false),
            (1, 1, 0, true),
            (3, 100, 0, true),
            (4, 4, 10, false), // under the floor: ordinary leavers
            (5, 10, 5, true),
            (30, 100, 70, false),
            (31, 100, 69, true),
            (500, 100_000, 99_500, false),
        ];
        for (missing, managed, read, held) in cases {
            assert_eq!(
                guard("users", missing, managed, read).is_some(),
                held,
                "{missing} of {managed}, {read} read"
            );
        }
    }

    #[test]
    fn the_limits() {
        let b = BreakerSpec::default(); // 500, 20 %, from 5 on
        let cases = [
            (0, 0, false),
            (1, 10, false),  // 10 %: under the share
            (4, 10, false),  // 40 %, but under the floor of 5
            (5, 10, true),   // 50 % from the floor on
            (5, 100, false), // 5 %
            (501, 100_000, true),
            (500, 100_000, false),
            (5, 0, true), // nothing managed: 100 %
        ];
        for (count, managed, want) in cases {
            assert_eq!(
                trips(&b, count, managed).is_some(),
                want,
                "{count}/{managed}"
            );
        }
        let why = trips(&b, 5, 10).expect("trips");
        assert!(why.contains("50% of 10 managed objects"), "{why}");
    }
}
