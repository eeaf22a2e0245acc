//! A job as stored, what the engine keeps between cycles ([`JobState`]), and its cycles.

use super::log::{Status, SyncAction};
use crate::clock::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A job as stored: its TOML without inline secrets, the credentials sealed with the
/// instance's key, whether it is enabled, and the engine's state.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncJobRecord {
    pub name: String,
    pub spec: String,
    /// Base64 of nonce + ciphertext of the inline credentials (XChaCha20-Poly1305), if any.
    pub sealed_secret: Option<String>,
    pub enabled: bool,
    pub state: JobState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the engine keeps of a job between cycles (stored as JSON; keys unknown to this
/// version are ignored, missing ones take their default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobState {
    /// Paused by an operator: no scheduled cycles; a cycle in flight stops.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// A cycle started and has not finished (or its node died).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningCycle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<LastCycle>,
    /// `Some(false)` from the start of an initial cycle until it went through its plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_done: Option<bool>,
    /// Of the mappings and scope the last complete cycle planned with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The source's position after the last complete cycle. Its shape belongs to the source
    /// kind, which reads it into its own type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Value>,
    /// The target asked to be left alone until then (its `Retry-After`): no cycle sends
    /// anything before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_until: Option<Timestamp>,
    /// A new target token was stored by `reauthorize`: it wins over the token a job file
    /// names until the file is imported again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reauthorized_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningCycle {
    pub cycle_id: String,
    #[serde(rename = "started_us")]
    pub started: Timestamp,
}

/// Why a job is quarantined (docs/sync.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineReason {
    /// The target refused the credentials.
    Credentials,
    /// Too many objects failed.
    Failures,
    /// The target failed the compliance probe.
    Compliance,
}

impl QuarantineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::Credentials => "credentials",
            QuarantineReason::Failures => "failures",
            QuarantineReason::Compliance => "compliance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    pub reason: QuarantineReason,
    pub detail: String,
    #[serde(deserialize_with = "timestamp_or_rfc3339")]
    pub since: Timestamp,
}

/// A time written as microseconds, or (by versions before the state was typed) as RFC 3339.
fn timestamp_or_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Micros(i64),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Micros(us) => Timestamp::from_micros(us),
        Either::Text(t) => scim_proto::datetime::parse(&t)
            .map(Timestamp::from_datetime)
            .unwrap_or(Timestamp::EPOCH),
    })
}

/// How the last cycle ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastCycle {
    pub id: String,
    #[serde(rename = "at_us")]
    pub at: Timestamp,
    pub status: CycleStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An initial cycle matches against one read of the target; an incremental one looks
/// new objects up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleMode {
    Initial,
    Incremental,
}

impl CycleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleMode::Initial => "initial",
            CycleMode::Incremental => "incremental",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "initial" => Some(CycleMode::Initial),
            "incremental" => Some(CycleMode::Incremental),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CycleStatus {
    Running,
    Completed,
    CompletedWithFailures,
    /// Stopped before its plan was done (pause, lease lost, credentials refused, the
    /// target's Retry-After): the next cycle carries on.
    Stopped,
    /// Could not run (the source or the target could not be read).
    Failed,
}

impl CycleStatus {
    pub const ALL: [CycleStatus; 5] = [
        CycleStatus::Running,
        CycleStatus::Completed,
        CycleStatus::CompletedWithFailures,
        CycleStatus::Stopped,
        CycleStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CycleStatus::Running => "running",
            CycleStatus::Completed => "completed",
            CycleStatus::CompletedWithFailures => "completed-with-failures",
            CycleStatus::Stopped => "stopped",
            CycleStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Counts of one cycle, by action and by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CycleCounts {
    /// Actions planned (known once planning is done).
    #[serde(skip_serializing_if = "is_zero")]
    pub planned: u64,
    pub actions: BTreeMap<SyncAction, u64>,
    pub statuses: BTreeMap<Status, u64>,
    /// Requests the applier sent to the target, retries included (discovery and the
    /// matching reads of planning are not counted: a cycle with nothing to do sends 0).
    pub requests: u64,
    /// Of those, retries of a 408/429/5xx/transport failure.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Objects left for the next cycle because the cycle stopped (pause, quarantine).
    pub not_started: u64,
    /// Why the cycle stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Why the cycle failed as a whole, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CycleCounts {
    pub fn action(&self, a: SyncAction) -> u64 {
        self.actions.get(&a).copied().unwrap_or(0)
    }

    pub fn status(&self, s: Status) -> u64 {
        self.statuses.get(&s).copied().unwrap_or(0)
    }

    pub fn failures(&self) -> u64 {
        self.status(Status::Failure)
    }
}

/// One cycle of a job: when, how, and the counts by action and status.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleRecord {
    pub job: String,
    pub cycle_id: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub mode: CycleMode,
    pub status: CycleStatus,
    pub counts: CycleCounts,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A state written before it was typed reads into the same meaning.
    #[test]
    fn an_untyped_state_reads_back() {
        let old = json!({
            "paused": true,
            "running": {"cycle_id": "c1", "started_us": 5},
            "quarantine": {"reason": "credentials", "detail": "401", "since": "2026-01-02T03:04:05Z"},
            "last_cycle": {"id": "c0", "at": "2026-01-01T00:00:00Z", "at_us": 7, "status": "completed-with-failures", "error": "x"},
            "initial_done": true,
            "fingerprint": "ab",
            "watermark": {"change_seq": 3},
            "something_new": 1
        });
        let s: JobState = serde_json::from_value(old).expect("reads");
        assert!(s.paused);
        assert_eq!(
            s.running.as_ref().map(|r| r.started),
            Some(Timestamp::from_micros(5))
        );
        let q = s.quarantine.as_ref().expect("quarantine");
        assert_eq!(q.reason, QuarantineReason::Credentials);
        assert_eq!(q.since.rfc3339(), "2026-01-02T03:04:05Z");
        let l = s.last_cycle.as_ref().expect("last cycle");
        assert_eq!(
            (l.at, l.status),
            (
                Timestamp::from_micros(7),
                CycleStatus::CompletedWithFailures
            )
        );
        assert_eq!(s.initial_done, Some(true));
        assert_eq!(s.watermark, Some(json!({"change_seq": 3})));
        let again: JobState =
            serde_json::from_value(serde_json::to_value(&s).expect("writes")).expect("reads");
        assert_eq!(again, s);
        assert_eq!(
            serde_json::to_value(JobState::default()).ok(),
            Some(json!({}))
        );
    }

    #[test]
    fn counts_read_rows_of_every_age() {
        for (v, planned) in [(json!({"planned": 4}), 4), (json!({"error": "x"}), 0)] {
            let c: CycleCounts = serde_json::from_value(v).expect("reads");
            assert_eq!(c.planned, planned);
        }
        let c: CycleCounts = serde_json::from_value(
            json!({"actions": {"Create": 2}, "statuses": {"Failure": 1}, "requests": 3}),
        )
        .expect("reads");
        assert_eq!((c.action(SyncAction::Create), c.failures()), (2, 1));
    }
}
