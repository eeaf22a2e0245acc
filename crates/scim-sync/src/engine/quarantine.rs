//! When a cycle's outcome quarantines the job (docs/sync.md §10; Entra quarantines a job
//! when most of a cycle fails, engine-behaviour §1.6). Pure.

use crate::apply::HALT_UNAUTHORIZED;
use crate::job::QuarantineSpec;
use scim_core::{CycleCounts, QuarantineReason, Status};

/// The quarantine a cycle's counts call for: the target refused the credentials, or the
/// failures passed both the share and the floor.
pub fn verdict(q: &QuarantineSpec, counts: &CycleCounts) -> Option<(QuarantineReason, String)> {
    if counts.stopped.as_deref() == Some(HALT_UNAUTHORIZED) {
        return Some((QuarantineReason::Credentials, HALT_UNAUTHORIZED.into()));
    }
    let failures = counts.failures();
    let attempted: u64 = counts
        .statuses
        .iter()
        .filter(|(k, _)| **k != Status::Skipped)
        .map(|(_, v)| v)
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let share = if attempted == 0 {
        0.0
    } else {
        failures as f64 * 100.0 / attempted as f64
    };
    (failures >= q.min_failures && share >= q.failure_percent).then(|| {
        (
            QuarantineReason::Failures,
            format!("{failures} of {attempted} objects failed ({share:.0} %)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(success: u64, failure: u64, skipped: u64, stopped: Option<&str>) -> CycleCounts {
        CycleCounts {
            statuses: [
                (Status::Success, success),
                (Status::Failure, failure),
                (Status::Skipped, skipped),
            ]
            .into(),
            stopped: stopped.map(str::to_string),
            ..CycleCounts::default()
        }
    }

    #[test]
    fn the_rules() {
        let q = QuarantineSpec::default(); // 40 %, at least 5
        let cases = [
            (counts(10, 0, 0, None), None),
            (counts(3, 4, 0, None), None), // 57 %, but 4 < 5
            (counts(5, 5, 0, None), Some(QuarantineReason::Failures)),
            (counts(10, 5, 100, None), None), // skipped objects do not count: 33 %
            (
                counts(1, 0, 0, Some(HALT_UNAUTHORIZED)),
                Some(QuarantineReason::Credentials),
            ),
            (counts(1, 0, 0, Some("paused")), None),
        ];
        for (c, want) in cases {
            assert_eq!(verdict(&q, &c).map(|v| v.0), want, "{c:?}");
        }
    }
}
