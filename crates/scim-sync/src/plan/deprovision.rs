//! The deprovisioning table (docs/sync.md §5.5): for an object on its way out, its trigger's
//! rule, what the ledger says is pending, and the time, what happens now. Pure: the planner
//! turns the [`Decision`] into an action and a ledger row.

use crate::job::{DeprovisionAction, DeprovisionRule};
use crate::model::ObjectKind;
use scim_core::{LedgerState, Pending, PendingStep, Timestamp, Trigger, Verb};

/// What to do with a linked object whose trigger fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to send, and nothing changes in the ledger's pending step.
    Nothing,
    /// Set a timer: the verb happens at `at` (a step to log; nothing sent).
    Schedule { verb: Verb, at: Timestamp },
    /// Send the verb now; `then` is the timer that follows (disable now, delete later).
    Act {
        verb: Verb,
        /// An operator approved it after the breaker held it (the breaker lets it through).
        approved: bool,
        then: Option<(Verb, Timestamp)>,
    },
}

/// The object the rule applies to, as the ledger has it.
#[derive(Debug, Clone, Copy)]
pub struct Outbound {
    pub kind: ObjectKind,
    pub trigger: Trigger,
    pub state: LedgerState,
    pub pending: Option<Pending>,
    pub due_at: Option<Timestamp>,
}

/// The decision for `o` under `rule` at `now`.
pub fn decide(rule: &DeprovisionRule, o: &Outbound, now: Timestamp) -> Decision {
    let ours = o.pending.filter(|p| p.trigger == o.trigger);
    // An operator's decision on a delete the breaker held.
    match ours.map(|p| p.step) {
        Some(PendingStep::Rejected | PendingStep::Staged) => return Decision::Nothing,
        Some(PendingStep::Approved) if rule.action != DeprovisionAction::None => {
            let verb = ours.map_or(Verb::Disable, |p| p.verb);
            return Decision::Act {
                verb,
                approved: true,
                then: None,
            };
        }
        _ => {}
    }
    let timer = |verb: Verb| ours.filter(|p| p.step == PendingStep::Timer && p.verb == verb);
    let due = |verb: Verb| timer(verb).is_some() && o.due_at.is_some_and(|d| d <= now);
    let delay = rule.after.get();
    let act = |verb: Verb| Decision::Act {
        verb,
        approved: false,
        then: None,
    };
    let disabled = o.state == LedgerState::Disabled;
    match rule.action {
        DeprovisionAction::None => Decision::Nothing,
        // A group cannot be disabled: `disable` leaves it alone.
        DeprovisionAction::Disable if o.kind == ObjectKind::Group => Decision::Nothing,
        DeprovisionAction::Disable | DeprovisionAction::Delete => {
            let verb = if rule.action == DeprovisionAction::Disable {
                Verb::Disable
            } else {
                Verb::Delete
            };
            if verb == Verb::Disable && disabled {
                Decision::Nothing
            } else if delay.is_zero() || due(verb) {
                act(verb)
            } else if timer(verb).is_some() {
                Decision::Nothing
            } else {
                Decision::Schedule {
                    verb,
                    at: now + delay,
                }
            }
        }
        DeprovisionAction::DisableThenDelete => {
            if o.kind == ObjectKind::Group || delay.is_zero() || due(Verb::Delete) {
                act(Verb::Delete)
            } else if !disabled {
                Decision::Act {
                    verb: Verb::Disable,
                    approved: false,
                    then: Some((Verb::Delete, now + delay)),
                }
            } else if timer(Verb::Delete).is_some() {
                Decision::Nothing
            } else {
                Decision::Schedule {
                    verb: Verb::Delete,
                    at: now + delay,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Dur;
    use time::Duration;

    fn rule(action: DeprovisionAction, after: &str) -> DeprovisionRule {
        DeprovisionRule::new(action, Dur::parse(after).expect("duration"))
    }

    #[test]
    fn the_table() {
        use DeprovisionAction as A;
        use LedgerState as S;
        let now = Timestamp::from_micros(1_000_000_000_000);
        let d30 = now + Duration::days(30);
        let past = now - Duration::seconds(1);
        let later = now + Duration::days(3);
        let t = |verb| Some(Pending::timer(verb, Trigger::Deleted));
        let with = |step, verb| {
            Some(Pending {
                step,
                verb,
                trigger: Trigger::Deleted,
            })
        };
        let act = |verb| Decision::Act {
            verb,
            approved: false,
            then: None,
        };
        let user = ObjectKind::User;
        let group = ObjectKind::Group;
        type Case = (
            &'static str,
            DeprovisionRule,
            ObjectKind,
            LedgerState,
            Option<Pending>,
            Option<Timestamp>,
            Decision,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("none does nothing", rule(A::None, "0"), user, S::Active, None, None, Decision::Nothing),
            ("disable at once", rule(A::Disable, "0"), user, S::Active, None, None, act(Verb::Disable)),
            ("already disabled", rule(A::Disable, "0"), user, S::Disabled, None, None, Decision::Nothing),
            ("a group is not disabled", rule(A::Disable, "0"), group, S::Active, None, None, Decision::Nothing),
            ("delete at once", rule(A::Delete, "0"), user, S::Active, None, None, act(Verb::Delete)),
            ("delete later: a timer", rule(A::Delete, "30d"), user, S::Active, None, None,
                Decision::Schedule { verb: Verb::Delete, at: d30 }),
            ("the timer runs", rule(A::Delete, "30d"), user, S::Active, t(Verb::Delete), Some(later), Decision::Nothing),
            ("the timer is due", rule(A::Delete, "30d"), user, S::Active, t(Verb::Delete), Some(past), act(Verb::Delete)),
            ("disable then delete", rule(A::DisableThenDelete, "30d"), user, S::Active, None, None,
                Decision::Act { verb: Verb::Disable, approved: false, then: Some((Verb::Delete, d30)) }),
            ("disabled, its delete timer runs", rule(A::DisableThenDelete, "30d"), user, S::Disabled, t(Verb::Delete), Some(later), Decision::Nothing),
            ("disabled, its delete is due", rule(A::DisableThenDelete, "30d"), user, S::Disabled, t(Verb::Delete), Some(past), act(Verb::Delete)),
            ("disabled by another trigger: a delete timer", rule(A::DisableThenDelete, "30d"), user, S::Disabled, None, None,
                Decision::Schedule { verb: Verb::Delete, at: d30 }),
            ("a group is deleted at once", rule(A::DisableThenDelete, "30d"), group, S::Active, None, None, act(Verb::Delete)),
            ("staged: held", rule(A::Delete, "0"), user, S::Active, with(PendingStep::Staged, Verb::Delete), None, Decision::Nothing),
            ("rejected: left alone", rule(A::Delete, "0"), user, S::Active, with(PendingStep::Rejected, Verb::Delete), None, Decision::Nothing),
            ("approved: done", rule(A::Delete, "30d"), user, S::Active, with(PendingStep::Approved, Verb::Delete), None,
                Decision::Act { verb: Verb::Delete, approved: true, then: None }),
            ("approved but the rule is none now", rule(A::None, "0"), user, S::Active, with(PendingStep::Approved, Verb::Delete), None, Decision::Nothing),
        ];
        for (name, r, kind, state, pending, due_at, want) in cases {
            let o = Outbound {
                kind,
                trigger: Trigger::Deleted,
                state,
                pending,
                due_at,
            };
            assert_eq!(decide(&r, &o, now), want, "{name}");
        }
    }

    /// A step pending for another trigger (suspended, then deleted) does not count.
    #[test]
    fn another_triggers_step_does_not_count() {
        let now = Timestamp::from_micros(1_000_000_000_000);
        let o = Outbound {
            kind: ObjectKind::User,
            trigger: Trigger::Deleted,
            state: LedgerState::Active,
            pending: Some(Pending {
                step: PendingStep::Staged,
                verb: Verb::Disable,
                trigger: Trigger::Suspended,
            }),
            due_at: None,
        };
        let r = rule(DeprovisionAction::Delete, "0");
        assert_eq!(
            decide(&r, &o, now),
            Decision::Act {
                verb: Verb::Delete,
                approved: false,
                then: None
            }
        );
    }
}
