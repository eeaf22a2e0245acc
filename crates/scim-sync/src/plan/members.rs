//! A group's membership delta: members the engine added that left, members that stay and
//! are not in yet, on the group's own action or on an update of their own.

use super::{Planned, PlannedAction, linked, step};
use crate::mapping::Mapped;
use crate::model::{Key, ObjectKind, SourceObject};
use scim_core::{LedgerEntry, Status, StepKind, SyncAction};
use std::collections::BTreeSet;

/// A group that stays: its membership delta (members the engine added that left, members
/// that stay and are not in yet) on its action, or an update of its own.
pub(super) fn with_members(
    planned: Planned,
    key: &Key,
    g: &SourceObject,
    entry: Option<&LedgerEntry>,
    held: bool,
    stays: &dyn Fn(&String) -> bool,
) -> Planned {
    // A group held in escrow waits for its retry, members and all (its attributes were not
    // planned either): a membership-only update now would succeed, take the group out of
    // escrow, and leave the attribute change that failed never sent again. Once due, its
    // attributes are planned first, and an update of members alone is right.
    if held {
        return planned;
    }
    let exported = entry.map(|e| &e.exported);
    let desired: BTreeSet<&String> = g.members.iter().filter(|m| stays(m)).collect();
    let add: Vec<String> = desired
        .iter()
        .filter(|m| exported.is_none_or(|x| !x.members.contains_key(**m)))
        .map(|m| (*m).clone())
        .collect();
    let remove: Vec<String> = exported
        .map(|x| {
            x.members
                .keys()
                .filter(|m| !desired.contains(m))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if add.is_empty() && remove.is_empty() {
        return planned;
    }
    match planned {
        Planned::Action(mut a) => {
            a.members_add = add;
            a.members_remove = remove;
            Planned::Action(a)
        }
        other => {
            let Some(target_id) = linked(entry) else {
                return other;
            };
            let base = match other {
                Planned::Quiet(e) => *e,
                _ => entry.cloned().unwrap_or_else(|| {
                    LedgerEntry::new("", key.0, &key.1, scim_core::Timestamp::EPOCH)
                }),
            };
            Planned::Action(Box::new(PlannedAction {
                kind: ObjectKind::Group,
                source_id: key.1.clone(),
                display: g.display(),
                action: SyncAction::Update,
                target_id: Some(target_id.to_string()),
                changes: Vec::new(),
                members_add: add,
                members_remove: remove,
                detail: "membership changed".into(),
                error_code: None,
                steps: vec![step(
                    StepKind::Processing,
                    Status::Success,
                    "membership changed",
                )],
                desired: Mapped::default(),
                matched: None,
                approved: false,
                trigger: None,
                on_failure: base.clone(),
                entry: base,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::{Escrow, Timestamp};

    fn group_with(members: &[&str]) -> SourceObject {
        let mut g = SourceObject::new(ObjectKind::Group, "g");
        g.members = members.iter().map(|m| (*m).to_string()).collect();
        g
    }

    /// A linked group whose member list on the target is `on_target`, optionally in escrow.
    fn entry(on_target: &[&str], escrow: bool) -> LedgerEntry {
        let mut e = LedgerEntry::new("j", ObjectKind::Group, "g", Timestamp::EPOCH);
        e.target_id = Some("t-g".into());
        e.exported.members = on_target
            .iter()
            .map(|m| ((*m).to_string(), format!("t-{m}")))
            .collect();
        e.escrow = escrow.then_some(Escrow {
            failures: 1,
            since: Timestamp::EPOCH,
            retry_at: Timestamp::EPOCH,
        });
        e
    }

    /// What the group's plan becomes (its attributes unchanged): (an action?, members added,
    /// members removed). `escrow`: none, held (waiting for its retry), or due.
    fn plan(on_target: &[&str], escrow: Escrowed, source: &[&str]) -> Delta {
        let key = (ObjectKind::Group, "g".to_string());
        let e = entry(on_target, escrow != Escrowed::No);
        let held = escrow == Escrowed::Held;
        let g = group_with(source);
        match with_members(Planned::Unchanged, &key, &g, Some(&e), held, &|_| true) {
            Planned::Action(a) => (true, a.members_add, a.members_remove),
            Planned::Quiet(_) | Planned::Unchanged => (false, vec![], vec![]),
        }
    }

    type Delta = (bool, Vec<String>, Vec<String>);

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Escrowed {
        No,
        Held,
        Due,
    }

    #[test]
    fn membership_deltas_of_a_group_whose_attributes_did_not_change() {
        use Escrowed::{Due, Held, No};
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        // (on the target, in escrow, in the source) → (an update?, add, remove)
        let cases: [(&[&str], Escrowed, &[&str], Delta); 5] = [
            (&["a"], No, &["a"], (false, vec![], vec![])),
            (&["a"], No, &["a", "b"], (true, s(&["b"]), vec![])),
            (&["a", "b"], No, &["b"], (true, vec![], s(&["a"]))),
            // In escrow, its attributes were not planned (it waits for its retry): no
            // membership-only update may succeed and take it out of escrow with the failed
            // attribute change never sent again (found by the model test: a group renamed
            // while the target answered 500 kept its old name).
            (&["a"], Held, &["a", "b"], (false, vec![], vec![])),
            // Due, its attributes were planned and found unchanged: members alone are sent
            // (else a group whose membership write failed would wait forever).
            (&["a"], Due, &["a", "b"], (true, s(&["b"]), vec![])),
        ];
        for (on_target, escrow, source, want) in cases {
            assert_eq!(
                plan(on_target, escrow, source),
                want,
                "{on_target:?} {escrow:?} {source:?}"
            );
        }
    }
}
