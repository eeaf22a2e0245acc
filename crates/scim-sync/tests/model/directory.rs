//! The directory model: people and groups as the source has them, the random histories
//! that change them, and what the job's rules say the target must hold (the oracle).

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

pub const PEOPLE: usize = 7;
pub const GROUPS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Member {
    P(usize),
    G(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Bumped when a hub source re-creates a deleted person: a new identity (a deleted
    /// SCIM or scimd user cannot come back; a file row can).
    pub generation: u32,
    pub created_once: bool,
    pub present: bool,
    pub given: &'static str,
    pub family: &'static str,
    /// `C` is out of scope.
    pub dept: &'static str,
    pub suspended: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub present: bool,
    pub name: String,
    pub members: BTreeSet<Member>,
}

/// One change at the source.
#[derive(Debug, Clone)]
pub enum Op {
    Create(usize),
    Rename(usize, &'static str, &'static str),
    Move(usize, &'static str),
    Suspend(usize),
    Unsuspend(usize),
    Delete(usize),
    CreateGroup(usize),
    RenameGroup(usize, u8),
    DeleteGroup(usize),
    Add(usize, Member),
    Remove(usize, Member),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dir {
    pub people: Vec<Person>,
    pub groups: Vec<Group>,
}

impl Dir {
    pub fn new() -> Self {
        Dir {
            people: (0..PEOPLE)
                .map(|_| Person {
                    generation: 0,
                    created_once: false,
                    present: false,
                    given: "Ann",
                    family: "Ames",
                    dept: "A",
                    suspended: false,
                })
                .collect(),
            groups: (0..GROUPS)
                .map(|g| Group {
                    present: false,
                    name: format!("G{g}"),
                    members: BTreeSet::new(),
                })
                .collect(),
        }
    }

    /// Applies one change; a change that does not apply (to someone absent) is nothing.
    /// `hub`: deleted people come back as new identities.
    pub fn apply(&mut self, op: &Op, hub: bool) {
        match *op {
            Op::Create(p) if !self.people[p].present => {
                let person = &mut self.people[p];
                if hub && person.created_once {
                    person.generation += 1;
                }
                person.created_once = true;
                person.present = true;
            }
            Op::Rename(p, given, family) if self.people[p].present => {
                self.people[p].given = given;
                self.people[p].family = family;
            }
            Op::Move(p, dept) if self.people[p].present => self.people[p].dept = dept,
            Op::Suspend(p) if self.people[p].present => self.people[p].suspended = true,
            Op::Unsuspend(p) if self.people[p].present => self.people[p].suspended = false,
            Op::Delete(p) if self.people[p].present => {
                self.people[p].present = false;
                for g in &mut self.groups {
                    g.members.remove(&Member::P(p));
                }
                if hub {
                    // Created again, it is a new identity, active.
                    self.people[p].suspended = false;
                }
            }
            Op::CreateGroup(g) if !self.groups[g].present => self.groups[g].present = true,
            Op::RenameGroup(g, n) if self.groups[g].present => {
                self.groups[g].name = format!("G{g}-{n}");
            }
            Op::DeleteGroup(g) if self.groups[g].present => {
                self.groups[g].present = false;
                self.groups[g].members.clear();
                for other in &mut self.groups {
                    other.members.remove(&Member::G(g));
                }
            }
            Op::Add(g, m) if self.groups[g].present && self.exists(m) && m != Member::G(g) => {
                self.groups[g].members.insert(m);
            }
            Op::Remove(g, m) => {
                self.groups[g].members.remove(&m);
            }
            _ => {}
        }
    }

    fn exists(&self, m: Member) -> bool {
        match m {
            Member::P(p) => self.people[p].present,
            Member::G(g) => self.groups[g].present,
        }
    }

    /// A person the job provisions now: present, active, in scope.
    pub fn active(&self, p: usize) -> bool {
        let x = &self.people[p];
        x.present && !x.suspended && x.dept != "C"
    }

    /// The userName of a person's current identity.
    pub fn user_name(&self, p: usize) -> String {
        format!("p{p}g{}@model.test", self.people[p].generation)
    }

    /// What every provisioned group holds on the target: its active people and its groups.
    pub fn expected_members(&self, g: usize) -> BTreeSet<String> {
        self.groups[g]
            .members
            .iter()
            .filter_map(|m| match *m {
                Member::P(p) if self.active(p) => Some(self.user_name(p)),
                Member::G(sub) if self.groups[sub].present => Some(self.groups[sub].name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// How a person was deleted at the source is handled (`[deprovision] deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedRule {
    Delete,
    Disable,
    DisableThenDelete30d,
}

impl DeletedRule {
    pub fn toml(self) -> &'static str {
        match self {
            DeletedRule::Delete => "deleted = { action = \"delete\" }",
            DeletedRule::Disable => "deleted = { action = \"disable\" }",
            DeletedRule::DisableThenDelete30d => {
                "deleted = { action = \"disable_then_delete\", after = \"30d\" }"
            }
        }
    }
}

/// The faults one cycle meets (0: off).
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultPlan {
    pub throttle_every: u64,
    pub error_every: u64,
    pub reset_every: u64,
    pub reset_bulk_every: u64,
}

/// One step of a history: changes at the source, time passing, one cycle with faults.
#[derive(Debug, Clone)]
pub struct Step {
    pub ops: Vec<Op>,
    pub advance_hours: i64,
    pub faults: FaultPlan,
}

#[derive(Debug, Clone)]
pub struct History {
    pub rule: DeletedRule,
    pub report_conflicts: bool,
    pub bulk: bool,
    pub steps: Vec<Step>,
}

fn person() -> impl Strategy<Value = usize> {
    0..PEOPLE
}

fn group() -> impl Strategy<Value = usize> {
    0..GROUPS
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![3 => person().prop_map(Member::P), 1 => group().prop_map(Member::G)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => person().prop_map(Op::Create),
        2 => (person(), prop::sample::select(vec!["Ann", "Bob", "Cy"]), prop::sample::select(vec!["Ames", "Brown"]))
            .prop_map(|(p, g, f)| Op::Rename(p, g, f)),
        1 => (person(), prop::sample::select(vec!["A", "B", "C"])).prop_map(|(p, d)| Op::Move(p, d)),
        1 => person().prop_map(Op::Suspend),
        1 => person().prop_map(Op::Unsuspend),
        2 => person().prop_map(Op::Delete),
        2 => group().prop_map(Op::CreateGroup),
        1 => (group(), 0u8..3).prop_map(|(g, n)| Op::RenameGroup(g, n)),
        1 => group().prop_map(Op::DeleteGroup),
        3 => (group(), member()).prop_map(|(g, m)| Op::Add(g, m)),
        1 => (group(), member()).prop_map(|(g, m)| Op::Remove(g, m)),
    ]
}

fn faults() -> impl Strategy<Value = FaultPlan> {
    let every = || prop_oneof![3 => Just(0u64), 1 => 3u64..9];
    (
        every(),
        every(),
        every(),
        prop_oneof![2 => Just(0u64), 1 => 1u64..3],
    )
        .prop_map(
            |(throttle_every, error_every, reset_every, reset_bulk_every)| FaultPlan {
                throttle_every,
                error_every,
                reset_every,
                reset_bulk_every,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::collection::vec(op(), 1..8),
        prop::sample::select(vec![0i64, 1, 30, 24 * 31]),
        faults(),
    )
        .prop_map(|(ops, advance_hours, faults)| Step {
            ops,
            advance_hours,
            faults,
        })
}

pub fn history() -> impl Strategy<Value = History> {
    (
        prop::sample::select(vec![
            DeletedRule::Delete,
            DeletedRule::Disable,
            DeletedRule::DisableThenDelete30d,
        ]),
        any::<bool>(),
        any::<bool>(),
        // The first step creates most of the directory.
        prop::collection::vec(step(), 2..6),
    )
        .prop_map(|(rule, report_conflicts, bulk, mut steps)| {
            let mut first: Vec<Op> = (0..PEOPLE).map(Op::Create).collect();
            first.extend((0..GROUPS).map(Op::CreateGroup));
            first.extend([
                Op::Add(0, Member::P(0)),
                Op::Add(0, Member::P(1)),
                Op::Add(1, Member::G(0)),
            ]);
            first.append(&mut steps[0].ops);
            steps[0].ops = first;
            History {
                rule,
                report_conflicts,
                bulk,
                steps,
            }
        })
}

/// What the oracle knows of one identity over time (what the target showed after each
/// cycle), to tell an allowed state from a broken promise.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The target showed it at some point (the engine provisioned it).
    pub provisioned: bool,
    /// The clock when the source last deleted it (while it stays deleted).
    pub deleted_at: Option<scim_core::Timestamp>,
    /// The clock of the first settled cycle after the deletion: by then the engine had
    /// surely acted on it.
    pub deletion_settled_at: Option<scim_core::Timestamp>,
    /// The target showed it inactive or absent after its deletion (or suspension, or
    /// leaving scope): from then on it must never be active while that lasts.
    pub down: bool,
}

pub type Ledger = BTreeMap<String, Seen>;
