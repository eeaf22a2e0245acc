//! The job's policies, parsed when the job is read: durations are [`Dur`]s (the text the
//! operator wrote and its value), so no rule ever parses a duration again or falls back to
//! a default behind the operator's back.

pub use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use time::Duration;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeprovisionAction {
    None,
    Disable,
    Delete,
    /// Disable at once, delete when the delay has passed.
    DisableThenDelete,
}

/// What happens on one trigger, and after how long.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeprovisionRule {
    pub action: DeprovisionAction,
    /// `0`, `immediately`, `24h`, `7d`, …
    #[serde(default = "immediately")]
    pub after: Dur,
}

fn immediately() -> Dur {
    Dur::known("0s", Duration::ZERO)
}

impl DeprovisionRule {
    pub fn new(action: DeprovisionAction, after: Dur) -> Self {
        Self { action, after }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeprovisionSpec {
    /// Removed from scope or unassigned.
    #[serde(default = "default_disable")]
    pub out_of_scope: DeprovisionRule,
    /// Suspended or disabled at the source.
    #[serde(default = "default_disable")]
    pub suspended: DeprovisionRule,
    /// Gone from the source.
    #[serde(default = "default_deleted")]
    pub deleted: DeprovisionRule,
    /// Groups gone from the source or from scope.
    #[serde(default = "default_group_removed")]
    pub groups: DeprovisionRule,
}

fn default_disable() -> DeprovisionRule {
    DeprovisionRule::new(DeprovisionAction::Disable, immediately())
}
fn default_deleted() -> DeprovisionRule {
    DeprovisionRule::new(
        DeprovisionAction::DisableThenDelete,
        Dur::known("30d", Duration::days(30)),
    )
}
fn default_group_removed() -> DeprovisionRule {
    DeprovisionRule::new(DeprovisionAction::Delete, immediately())
}

impl Default for DeprovisionSpec {
    fn default() -> Self {
        Self {
            out_of_scope: default_disable(),
            suspended: default_disable(),
            deleted: default_deleted(),
            groups: default_group_removed(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// Most disables + deletes in one cycle (default 500).
    #[serde(default = "default_max_deletes")]
    pub max_deletes: u64,
    /// Most disables + deletes as a share of managed objects, in percent (default 20).
    #[serde(default = "default_max_percent")]
    pub max_percent: f64,
    /// The percentage applies only from this many disables + deletes (default 5), so a
    /// directory of ten can lose one person without an approval.
    #[serde(default = "default_percent_floor")]
    pub percent_floor: u64,
}

fn default_max_deletes() -> u64 {
    500
}
fn default_max_percent() -> f64 {
    20.0
}
fn default_percent_floor() -> u64 {
    5
}

impl Default for BreakerSpec {
    fn default() -> Self {
        Self {
            max_deletes: default_max_deletes(),
            max_percent: default_max_percent(),
            percent_floor: default_percent_floor(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// Link an existing target object that matches (by the matching attributes or after a
    /// 409) and manage it from then on.
    #[default]
    Adopt,
    /// Log a conflict and leave the existing object alone.
    Report,
    /// Never match: create, and a 409 is a failure.
    CreateOnly,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MatchingSpec {
    #[serde(default)]
    pub on_conflict: ConflictPolicy,
    /// Adopt a matching target account that holds an administrator's role (off by default:
    /// such an account is reported, not taken over; docs/security.md, "Adoption").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt_privileged: bool,
}

/// When `scimd serve` runs the job (docs/sync.md §10).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Between the end of one cycle and the start of the next (default 40m, the Entra
    /// guide's interval; at least 1m).
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// A scimd-tenant source: a change starts a cycle once the tenant has been quiet this
    /// long (default 10s; 0 turns event-driven runs off).
    #[serde(default = "default_debounce")]
    pub debounce: Dur,
}

fn default_interval() -> Dur {
    Dur::known("40m", Duration::minutes(40))
}

fn default_debounce() -> Dur {
    Dur::known("10s", Duration::seconds(10))
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            debounce: default_debounce(),
        }
    }
}

/// The retry ladder of objects that keep failing (Entra's escrow, engine-behaviour §1.6).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EscrowSpec {
    /// Waits after the 1st, 2nd, … failure (default 6h, 12h, 24h).
    #[serde(default = "default_ladder")]
    pub ladder: Vec<Dur>,
    /// The wait after the ladder is used up (default 24h).
    #[serde(default = "default_then")]
    pub then: Dur,
    /// After failing this long an object is abandoned: reported, not retried until its
    /// source changes (default 28d).
    #[serde(default = "default_abandon")]
    pub abandon_after: Dur,
}

fn default_ladder() -> Vec<Dur> {
    vec![
        Dur::known("6h", Duration::hours(6)),
        Dur::known("12h", Duration::hours(12)),
        Dur::known("24h", Duration::hours(24)),
    ]
}

fn default_then() -> Dur {
    Dur::known("24h", Duration::hours(24))
}

fn default_abandon() -> Dur {
    Dur::known("28d", Duration::days(28))
}

impl Default for EscrowSpec {
    fn default() -> Self {
        Self {
            ladder: default_ladder(),
            then: default_then(),
            abandon_after: default_abandon(),
        }
    }
}

impl EscrowSpec {
    /// The wait before the next try after `failures` failures in a row.
    pub fn wait(&self, failures: u32) -> Duration {
        let i = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
        self.ladder.get(i).unwrap_or(&self.then).get()
    }

    pub fn abandon(&self) -> Duration {
        self.abandon_after.get()
    }
}

/// When a job is quarantined for failures (docs/sync.md §10; Entra quarantines a job when
/// most of a cycle fails, engine-behaviour §1.6).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuarantineSpec {
    /// Share of a cycle's writes that failed, in percent (default 40, Entra's rule) …
    #[serde(default = "default_failure_percent")]
    pub failure_percent: f64,
    /// … and at least this many failures, so one bad object in a directory of three does
    /// not quarantine it (default 5).
    #[serde(default = "default_min_failures")]
    pub min_failures: u64,
    /// Cycles while quarantined (default 24h).
    #[serde(default = "default_quarantine_interval")]
    pub interval: Dur,
}

fn default_failure_percent() -> f64 {
    40.0
}

fn default_min_failures() -> u64 {
    5
}

fn default_quarantine_interval() -> Dur {
    Dur::known("24h", Duration::hours(24))
}

impl Default for QuarantineSpec {
    fn default() -> Self {
        Self {
            failure_percent: default_failure_percent(),
            min_failures: default_min_failures(),
            interval: default_quarantine_interval(),
        }
    }
}

/// Who hears about quarantine, a tripped breaker and failures (docs/sync.md §10).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// E-mail addresses (sent through `scimd serve`'s SMTP settings).
    #[serde(default)]
    pub email: Vec<String>,
    /// Send a digest after every cycle with failures (default true when addresses are set).
    #[serde(default = "yes")]
    pub failure_digest: bool,
    /// A URL that receives the same notices as JSON, signed per Standard Webhooks.
    pub webhook: Option<String>,
    /// The signing secret (`whsec_…`, base64 after the prefix): from a variable or a file,
    /// never in the job file.
    pub webhook_secret_env: Option<String>,
    pub webhook_secret_file: Option<PathBuf>,
}

impl Default for NotifySpec {
    fn default() -> Self {
        Self {
            email: Vec::new(),
            failure_digest: true,
            webhook: None,
            webhook_secret_env: None,
            webhook_secret_file: None,
        }
    }
}

impl NotifySpec {
    /// The webhook's signing secret.
    pub fn webhook_secret(&self) -> crate::secret::SecretRef<'_> {
        crate::secret::SecretRef {
            key: "notify.webhook_secret",
            inline: None,
            env: self.webhook_secret_env.as_deref(),
            file: self.webhook_secret_file.as_deref(),
        }
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escrow_ladder_climbs_then_stays() {
        let e = EscrowSpec::default();
        assert_eq!(e.wait(1), Duration::hours(6));
        assert_eq!(e.wait(2), Duration::hours(12));
        assert_eq!(e.wait(3), Duration::hours(24));
        assert_eq!(e.wait(9), Duration::hours(24));
        assert_eq!(e.wait(0), Duration::hours(6));
    }
}
