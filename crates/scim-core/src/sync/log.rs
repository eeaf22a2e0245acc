//! The engine's per-object provisioning log (Entra's provisioning log fields,
//! docs/sync.md §6): what was done to each object, its steps, what changed and why it
//! failed.

use crate::clock::Timestamp;
use crate::resource::ResourceKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a cycle does with one object (the log's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SyncAction {
    Create,
    Adopt,
    Update,
    Enable,
    Disable,
    Delete,
    /// A disable or delete held by the deletion breaker.
    StagedDelete,
    Conflict,
    Skip,
    /// A disable set for later by a deprovisioning time frame (nothing sent yet).
    DisableScheduled,
    /// A delete set for later by a deprovisioning time frame (nothing sent yet).
    DeleteScheduled,
}

impl SyncAction {
    pub const ALL: [SyncAction; 11] = [
        SyncAction::Create,
        SyncAction::Adopt,
        SyncAction::Update,
        SyncAction::Enable,
        SyncAction::Disable,
        SyncAction::Delete,
        SyncAction::StagedDelete,
        SyncAction::Conflict,
        SyncAction::Skip,
        SyncAction::DisableScheduled,
        SyncAction::DeleteScheduled,
    ];

    /// The actions that change the target, in the order the log lists them.
    pub const CHANGING: [SyncAction; 6] = [
        SyncAction::Create,
        SyncAction::Adopt,
        SyncAction::Update,
        SyncAction::Enable,
        SyncAction::Disable,
        SyncAction::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::Create => "Create",
            SyncAction::Adopt => "Adopt",
            SyncAction::Update => "Update",
            SyncAction::Enable => "Enable",
            SyncAction::Disable => "Disable",
            SyncAction::Delete => "Delete",
            SyncAction::StagedDelete => "StagedDelete",
            SyncAction::Conflict => "Conflict",
            SyncAction::Skip => "Skip",
            SyncAction::DisableScheduled => "DisableScheduled",
            SyncAction::DeleteScheduled => "DeleteScheduled",
        }
    }

    /// In words, for people (the console's log).
    pub fn label(self) -> &'static str {
        match self {
            SyncAction::StagedDelete => "Held by the breaker",
            SyncAction::DisableScheduled => "Disable scheduled",
            SyncAction::DeleteScheduled => "Delete scheduled",
            other => other.as_str(),
        }
    }

    /// From its name, in any case (what an operator types).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether the action writes to the target.
    pub fn writes(self) -> bool {
        Self::CHANGING.contains(&self)
    }
}

/// An outcome's, or one step's, status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    Success,
    Failure,
    Skipped,
    Warning,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Success,
        Status::Failure,
        Status::Skipped,
        Status::Warning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::Failure => "Failure",
            Status::Skipped => "Skipped",
            Status::Warning => "Warning",
        }
    }

    /// From its name, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// The steps of one object's processing (Entra's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    Import,
    Scoping,
    Matching,
    Processing,
    ReferenceResolution,
    Export,
    Escrow,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Import => "import",
            StepKind::Scoping => "scoping",
            StepKind::Matching => "matching",
            StepKind::Processing => "processing",
            StepKind::ReferenceResolution => "referenceResolution",
            StepKind::Export => "export",
            StepKind::Escrow => "escrow",
        }
    }
}

/// One step of an object's processing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: StepKind,
    pub status: Status,
    pub detail: String,
}

impl Step {
    pub fn new(step: StepKind, status: Status, detail: impl Into<String>) -> Self {
        Self {
            step,
            status,
            detail: detail.into(),
        }
    }
}

/// One attribute's change, old → new (`None`: absent). Redacted values show as `"***"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl PropertyChange {
    /// The change as plans and logs show it: a redacted value as `"***"`.
    pub fn masked(&self) -> Self {
        if !self.redacted {
            return self.clone();
        }
        let mask = |v: &Option<Value>| v.as_ref().map(|_| Value::String("***".into()));
        PropertyChange {
            old: mask(&self.old),
            new: mask(&self.new),
            ..self.clone()
        }
    }
}

/// What a log row says changed: attributes (masked) and, for groups, members (source ids).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogChanges {
    pub attributes: Vec<PropertyChange>,
    pub members_added: Vec<String>,
    pub members_removed: Vec<String>,
}

/// The documented error codes (docs/sync.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A mapping expression failed for this object.
    ExpressionError,
    /// No value for any matching attribute.
    MissingMatchingValue,
    /// Several target objects match.
    DuplicateTargetEntries,
    /// A target object matches and the policy is `report`.
    ExistingTargetObject,
    /// Held by the deletion breaker.
    DeletionThresholdExceeded,
    /// 401/403: the token is refused.
    TargetUnauthorized,
    /// Another 4xx.
    TargetRejected,
    /// 409 and no single unowned object to adopt.
    TargetConflict,
    /// A linked object is gone from the target.
    TargetObjectMissing,
    /// 408/429 after the retries.
    TargetThrottled,
    /// 5xx or no answer after the retries.
    TargetUnavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::ExpressionError,
        ErrorCode::MissingMatchingValue,
        ErrorCode::DuplicateTargetEntries,
        ErrorCode::ExistingTargetObject,
        ErrorCode::DeletionThresholdExceeded,
        ErrorCode::TargetUnauthorized,
        ErrorCode::TargetRejected,
        ErrorCode::TargetConflict,
        ErrorCode::TargetObjectMissing,
        ErrorCode::TargetThrottled,
        ErrorCode::TargetUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ExpressionError => "ExpressionError",
            ErrorCode::MissingMatchingValue => "MissingMatchingValue",
            ErrorCode::DuplicateTargetEntries => "DuplicateTargetEntries",
            ErrorCode::ExistingTargetObject => "ExistingTargetObject",
            ErrorCode::DeletionThresholdExceeded => "DeletionThresholdExceeded",
            ErrorCode::TargetUnauthorized => "TargetUnauthorized",
            ErrorCode::TargetRejected => "TargetRejected",
            ErrorCode::TargetConflict => "TargetConflict",
            ErrorCode::TargetObjectMissing => "TargetObjectMissing",
            ErrorCode::TargetThrottled => "TargetThrottled",
            ErrorCode::TargetUnavailable => "TargetUnavailable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One row of the per-object log.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncLogRecord {
    /// Assigned by the store.
    pub seq: i64,
    pub job: String,
    pub cycle_id: String,
    pub change_id: String,
    pub at: Timestamp,
    pub kind: ResourceKind,
    pub source_id: String,
    pub target_id: Option<String>,
    pub display: String,
    pub action: SyncAction,
    pub status: Status,
    pub steps: Vec<Step>,
    pub changes: LogChanges,
    pub error_code: Option<ErrorCode>,
    pub duration_ms: i64,
}

impl SyncLogRecord {
    /// The detail of the step that says most: the last failure, else the last step.
    pub fn detail(&self) -> &str {
        self.steps
            .iter()
            .rev()
            .find(|s| s.status == Status::Failure)
            .or(self.steps.last())
            .map_or("", |s| s.detail.as_str())
    }
}

/// Filters for reading the per-object log, newest first.
#[derive(Debug, Clone, Default)]
pub struct SyncLogQuery {
    pub cycle_id: Option<String>,
    pub action: Option<SyncAction>,
    pub status: Option<Status>,
    /// A source id, target id or display name.
    pub object: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_in_any_case() {
        for a in SyncAction::ALL {
            assert_eq!(SyncAction::parse(&a.as_str().to_lowercase()), Some(a));
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(&s.as_str().to_uppercase()), Some(s));
        }
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(SyncAction::parse("Created"), None);
    }

    #[test]
    fn redacted_values_are_masked() {
        let c = PropertyChange {
            path: "urn:x:ssn".into(),
            old: None,
            new: Some(Value::String("123-45-6789".into())),
            redacted: true,
        };
        let shown = c.masked();
        assert_eq!(shown.new, Some(Value::String("***".into())));
        assert!(
            !serde_json::to_string(&shown)
                .unwrap_or_default()
                .contains("6789")
        );
    }

    #[test]
    fn steps_keep_their_stored_spelling() {
        let s = Step::new(StepKind::ReferenceResolution, Status::Warning, "x");
        let v = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(v["step"], "referenceResolution");
        assert_eq!(v["status"], "Warning");
    }
}
