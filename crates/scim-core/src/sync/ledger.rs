//! The ownership ledger: one row per source object a job has seen, saying where it is on
//! the target (only linked objects may be touched), what was last read and last exported,
//! and any deprovisioning step waiting for its time or an operator.

use super::source::SourceObject;
use crate::clock::Timestamp;
use crate::resource::ResourceKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where an object stands with the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerState {
    /// Seen, never provisioned.
    New,
    /// A create is (or may have been) sent: whatever matches it on the target is the
    /// engine's own, adopted whatever the conflict policy (docs/sync.md §6).
    Creating,
    Active,
    Disabled,
    /// Deleted from the target by the engine (no longer linked).
    Deleted,
    /// Several target objects match, or one and the policy is `report`.
    Conflict,
    /// Out of scope and never provisioned.
    OutOfScope,
    /// Its mappings or a lookup failed; retried on the escrow ladder.
    Failed,
    /// The target lost it behind the engine's back: unlinked, matched or created again.
    Missing,
}

impl LedgerState {
    pub const ALL: [LedgerState; 9] = [
        LedgerState::New,
        LedgerState::Creating,
        LedgerState::Active,
        LedgerState::Disabled,
        LedgerState::Deleted,
        LedgerState::Conflict,
        LedgerState::OutOfScope,
        LedgerState::Failed,
        LedgerState::Missing,
    ];

    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::New => "new",
            LedgerState::Creating => "creating",
            LedgerState::Active => "active",
            LedgerState::Disabled => "disabled",
            LedgerState::Deleted => "deleted",
            LedgerState::Conflict => "conflict",
            LedgerState::OutOfScope => "out-of-scope",
            LedgerState::Failed => "failed",
            LedgerState::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Why an object is on its way out (the deprovisioning table's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    OutOfScope,
    Suspended,
    Deleted,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::OutOfScope => "out-of-scope",
            Trigger::Suspended => "suspended",
            Trigger::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Trigger::OutOfScope, Trigger::Suspended, Trigger::Deleted]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// What a deprovisioning step does to the target object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Disable,
    Delete,
}

impl Verb {
    /// Capitalised, for log details (`Delete scheduled for …`).
    pub fn label(self) -> &'static str {
        match self {
            Verb::Disable => "Disable",
            Verb::Delete => "Delete",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Disable => "disable",
            Verb::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "disable" => Some(Verb::Disable),
            "delete" => Some(Verb::Delete),
            _ => None,
        }
    }
}

/// Where a pending deprovisioning step is: waiting for its time, held by the breaker, or
/// decided by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PendingStep {
    Timer,
    Staged,
    Approved,
    Rejected,
}

impl PendingStep {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingStep::Timer => "timer",
            PendingStep::Staged => "staged",
            PendingStep::Approved => "approved",
            PendingStep::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            PendingStep::Timer,
            PendingStep::Staged,
            PendingStep::Approved,
            PendingStep::Rejected,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A deprovisioning step waiting in the ledger (stored as `step:verb:trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pending {
    pub step: PendingStep,
    pub verb: Verb,
    pub trigger: Trigger,
}

impl Pending {
    pub fn timer(verb: Verb, trigger: Trigger) -> Self {
        Self {
            step: PendingStep::Timer,
            verb,
            trigger,
        }
    }

    /// The stored form, `timer:delete:deleted`.
    pub fn render(&self) -> String {
        format!(
            "{}:{}:{}",
            self.step.as_str(),
            self.verb.as_str(),
            self.trigger.as_str()
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.splitn(3, ':');
        Some(Self {
            step: PendingStep::parse(it.next()?)?,
            verb: Verb::parse(it.next()?)?,
            trigger: Trigger::parse(it.next()?)?,
        })
    }
}

/// What the engine last wrote to a target object: the values by target path (references
/// as the source id they were mapped from) and, for groups, the members it added (source
/// id → target id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Exported {
    pub values: BTreeMap<String, Value>,
    pub members: BTreeMap<String, String>,
    /// A reference was left out (its referent was not on the target yet).
    pub unresolved: bool,
}

/// An object whose writes keep failing (Entra's escrow, engine-behaviour §1.6): it is
/// left alone until `retry_at` unless its source changes, and abandoned after the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escrow {
    /// Cycles in a row that failed for this object.
    pub failures: u32,
    pub since: Timestamp,
    pub retry_at: Timestamp,
}

/// What the engine knows of one source object.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub job: String,
    pub kind: ResourceKind,
    pub source_id: String,
    /// Set only for objects the engine created or adopted: the ones it may touch.
    pub target_id: Option<String>,
    pub state: LedgerState,
    /// The source object as last read (none for a row made before anything was read).
    pub source: Option<SourceObject>,
    /// Since when the source says the object is gone (deleted there). A gone object is never
    /// rebuilt from its last snapshot: only the source itself can bring it back.
    pub gone_since: Option<Timestamp>,
    pub exported: Exported,
    /// A deprovisioning step waiting for `due_at`, or for an operator.
    pub pending: Option<Pending>,
    pub due_at: Option<Timestamp>,
    /// Set while the object keeps failing: it is retried on the escrow ladder.
    pub escrow: Option<Escrow>,
    pub updated_at: Timestamp,
}

impl LedgerEntry {
    /// A row for an object seen for the first time.
    pub fn new(job: &str, kind: ResourceKind, source_id: &str, now: Timestamp) -> Self {
        Self {
            job: job.to_string(),
            kind,
            source_id: source_id.to_string(),
            target_id: None,
            state: LedgerState::New,
            source: None,
            gone_since: None,
            exported: Exported::default(),
            pending: None,
            due_at: None,
            escrow: None,
            updated_at: now,
        }
    }

    /// A name for logs: the last snapshot's, else the source id.
    pub fn display(&self) -> String {
        self.source
            .as_ref()
            .map_or_else(|| self.source_id.clone(), SourceObject::display)
    }

    /// The source snapshot an incremental read builds on: none once the source reported
    /// the object gone, or once it was deleted from the target.
    pub fn live_snapshot(&self) -> Option<&SourceObject> {
        if self.gone_since.is_some() || self.state == LedgerState::Deleted {
            return None;
        }
        self.source.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for s in LedgerState::ALL {
            assert_eq!(LedgerState::parse(s.as_str()), Some(s));
        }
        for step in [
            PendingStep::Timer,
            PendingStep::Staged,
            PendingStep::Approved,
            PendingStep::Rejected,
        ] {
            for verb in [Verb::Disable, Verb::Delete] {
                for trigger in [Trigger::OutOfScope, Trigger::Suspended, Trigger::Deleted] {
                    let p = Pending {
                        step,
                        verb,
                        trigger,
                    };
                    assert_eq!(Pending::parse(&p.render()), Some(p));
                }
            }
        }
        assert_eq!(
            Pending::parse("timer:delete:deleted"),
            Some(Pending::timer(Verb::Delete, Trigger::Deleted))
        );
        for bad in [
            "",
            "timer",
            "timer:delete",
            "later:delete:deleted",
            "timer:x:deleted",
        ] {
            assert_eq!(Pending::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn exported_reads_rows_written_before_it_was_typed() {
        let old = serde_json::json!({"values": {"userName": "a"}, "members": {"1": "t1"}});
        let e: Exported = serde_json::from_value(old).expect("reads");
        assert_eq!(e.members.get("1").map(String::as_str), Some("t1"));
        assert!(!e.unresolved);
    }

    #[test]
    fn a_gone_object_has_no_live_snapshot() {
        let mut e = LedgerEntry::new("j", ResourceKind::User, "1", Timestamp::EPOCH);
        e.source = Some(SourceObject::new(ResourceKind::User, "1"));
        assert!(e.live_snapshot().is_some());
        e.gone_since = Some(Timestamp::EPOCH);
        assert!(e.live_snapshot().is_none());
        e.gone_since = None;
        e.state = LedgerState::Deleted;
        assert!(e.live_snapshot().is_none());
    }
}
