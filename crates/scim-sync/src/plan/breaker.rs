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

#[cfg(test)]
mod tests {
    use super::*;

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
