//! A job: one source → one target, with mappings, scope and policies, as a TOML file
//! (docs/sync.md §2 documents every key and its default). Parsing checks everything that
//! can be checked without the network: unknown keys, expressions (with positions), scoping
//! operators, durations, percentages.

use crate::error::{SyncError, SyncResult};
use crate::expr;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    pub source: SourceSpec,
    pub target: TargetSpec,
    #[serde(default)]
    pub users: ObjectMappings,
    #[serde(default)]
    pub groups: ObjectMappings,
    #[serde(default)]
    pub scope: ScopeSpec,
    #[serde(default)]
    pub deprovision: DeprovisionSpec,
    #[serde(default)]
    pub breaker: BreakerSpec,
    #[serde(default)]
    pub matching: MatchingSpec,
    #[serde(default)]
    pub schedule: ScheduleSpec,
    #[serde(default)]
    pub escrow: EscrowSpec,
    #[serde(default)]
    pub quarantine: QuarantineSpec,
    #[serde(default)]
    pub notify: NotifySpec,
    /// Where relative paths in the file are resolved from (the file's folder); not a key.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Csv,
    Json,
    Scim,
    Tenant,
    Ldap,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub kind: SourceKind,
    /// csv/json: the file (relative to the job file).
    pub path: Option<PathBuf>,
    /// csv/json, instead of `path`: the job reads the file uploaded in the console, kept in
    /// the database with the job (every node reads the same file). The value is the name
    /// of the first upload; a new export replaces the file, not this name.
    pub upload: Option<String>,
    /// csv/json: the column or field with the stable source id.
    pub id: Option<String>,
    /// csv/json: a column (list separated by `group_separator`) or field (array) of group
    /// display names.
    pub groups: Option<String>,
    #[serde(default = "default_separator")]
    pub group_separator: String,
    /// csv/json: a second file of `group,member` rows (member = the user's source id).
    pub groups_path: Option<PathBuf>,
    /// csv/json: a column whose value says the user is suspended (`false`, `0`, `no`,
    /// `suspended`, `disabled`, `inactive`, `terminated` mean suspended).
    pub status: Option<String>,
    /// scim: the source server's base URL; ldap: `ldap://host:port` or `ldaps://host:port`.
    pub url: Option<String>,
    /// scim: the bearer token; ldap: the bind password (`password*` are the same keys).
    #[serde(alias = "password")]
    pub token: Option<String>,
    #[serde(alias = "password_env")]
    pub token_env: Option<String>,
    #[serde(alias = "password_file")]
    pub token_file: Option<PathBuf>,
    /// tenant: the scimd tenant on this instance.
    pub tenant: Option<String>,
    /// ldap: the DN to bind as (anonymous without it).
    pub bind_dn: Option<String>,
    /// ldap: the CA certificate(s) (PEM) that sign the directory's certificate, for
    /// ldaps:// and StartTLS; without it the system's roots are used.
    pub tls_ca_file: Option<PathBuf>,
    /// ldap: upgrade an `ldap://` connection with StartTLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starttls: bool,
    /// ldap: where users and groups are searched (subtree).
    pub base_dn: Option<String>,
    /// ldap: which entries are users (default `(objectClass=inetOrgPerson)`; AD:
    /// `(&(objectCategory=person)(objectClass=user))`).
    pub user_filter: Option<String>,
    /// ldap: which entries are groups (default: groupOfNames, groupOfUniqueNames,
    /// posixGroup and AD's group).
    pub group_filter: Option<String>,
    /// ldap: when a user is disabled: an attribute that is present (`pwdAccountLockedTime`),
    /// `attr=value`, or `attr&bit` (AD: `userAccountControl&2`).
    pub disabled: Option<String>,
    /// ldap: entries per page (RFC 2696), default 500.
    pub page_size: Option<u32>,
    /// ldap: how often a cycle re-reads every entry instead of the changed ones (default 24h).
    pub full_scan: Option<String>,
    /// ldap: `auto` (syncrepl when the server offers it and the id is entryUUID, else
    /// polling), `syncrepl` or `poll` (docs/sync.md §11).
    pub change_detection: Option<String>,
}

fn default_separator() -> String {
    ";".into()
}

/// How the engine writes to the target.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpdateMethod {
    /// PATCH when the target's ServiceProviderConfig offers it, else PUT.
    #[default]
    Auto,
    Patch,
    Put,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub url: String,
    /// Inline token: stored sealed by `job import`, never exported.
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub update: UpdateMethod,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Members per membership PATCH (default 100, AWS's limit, engine-behaviour §8.6).
    #[serde(default = "default_members_per_request")]
    pub members_per_request: usize,
    /// Provision groups at all (default true when the target has /Groups).
    #[serde(default = "yes")]
    pub groups: bool,
    /// Requests per second to this target (default 25, Entra's documented pace per
    /// tenant); 0 = unpaced.
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
    /// How long one request may take before it is retried (default 30s).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Tries per request for 408/429/5xx/transport failures (default 4).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// User creates per Bulk request when the target offers Bulk (RFC 7644 §3.7), capped
    /// by its `maxOperations` (default 100; 0 = never use Bulk).
    #[serde(default = "default_bulk")]
    pub bulk: usize,
}

fn default_bulk() -> usize {
    100
}

fn default_rate() -> u32 {
    25
}

fn default_timeout() -> String {
    "30s".into()
}

fn default_attempts() -> u32 {
    4
}

/// When `scimd serve` runs the job (docs/sync.md §7).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Between the end of one cycle and the start of the next (default 40m, the Entra
    /// guide's interval; at least 1m).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// A scimd-tenant source: a change starts a cycle once the tenant has been quiet this
    /// long (default 10s; 0 turns event-driven runs off).
    #[serde(default = "default_debounce")]
    pub debounce: String,
}

fn default_interval() -> String {
    "40m".into()
}

fn default_debounce() -> String {
    "10s".into()
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
    pub ladder: Vec<String>,
    /// The wait after the ladder is used up (default 24h).
    #[serde(default = "default_then")]
    pub then: String,
    /// After failing this long an object is abandoned: reported, not retried until its
    /// source changes (default 28d).
    #[serde(default = "default_abandon")]
    pub abandon_after: String,
}

fn default_ladder() -> Vec<String> {
    vec!["6h".into(), "12h".into(), "24h".into()]
}

fn default_then() -> String {
    "24h".into()
}

fn default_abandon() -> String {
    "28d".into()
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
        let text = self.ladder.get(i).unwrap_or(&self.then);
        duration(text, "escrow wait").unwrap_or(Duration::hours(24))
    }

    pub fn abandon(&self) -> Duration {
        duration(&self.abandon_after, "escrow.abandon_after").unwrap_or(Duration::days(28))
    }
}

/// When a job is quarantined for failures (docs/sync.md §7; Entra quarantines a job when
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
    pub interval: String,
}

fn default_failure_percent() -> f64 {
    40.0
}

fn default_min_failures() -> u64 {
    5
}

fn default_quarantine_interval() -> String {
    "24h".into()
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

/// Who hears about quarantine, a tripped breaker and failures (docs/sync.md §7).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
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

/// Empty, `0`, `0s`, `0m`, …: no wait.
fn zero_duration(a: &str) -> bool {
    a.is_empty()
        || (a.starts_with('0')
            && a.trim_start_matches('0')
                .trim()
                .chars()
                .all(char::is_alphabetic))
}

/// A duration key of the job file (humantime: `90s`, `40m`, `6h`, `28d`).
pub fn duration(text: &str, key: &str) -> SyncResult<Duration> {
    scim_core::clock::parse_duration(text.trim())
        .map_err(|_| SyncError::Job(format!("{key} '{text}' is not a duration (e.g. 40m, 6h)")))
}

fn default_in_flight() -> usize {
    4
}

fn default_members_per_request() -> usize {
    100
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    #[default]
    Always,
    OnCreate,
}

/// One attribute mapping (Entra's Direct / Constant / Expression / None).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The target attribute path (`emails[type eq "work"].value`).
    pub target: String,
    /// Direct: the source attribute.
    pub source: Option<String>,
    pub constant: Option<String>,
    pub expression: Option<String>,
    /// None: the target attribute is left alone (only `default` fills it on create).
    #[serde(default)]
    pub none: bool,
    /// Used on create when the mapping gives null.
    pub default: Option<String>,
    #[serde(default)]
    pub apply: Apply,
    /// The value is a reference to another source user (manager): it is written as that
    /// user's target id, once the user is linked.
    #[serde(default)]
    pub reference: bool,
    /// Mask the value in plans and logs.
    #[serde(default)]
    pub redact: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectMappings {
    /// When empty, the defaults (docs/sync.md §3) apply.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Add these to the defaults instead of replacing them.
    #[serde(default)]
    pub extra: Vec<Mapping>,
    /// Target attributes to match existing objects by, in precedence order.
    #[serde(default)]
    pub matching: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    /// Every user (Entra's "Sync all users and groups").
    #[default]
    All,
    /// Members of `scope.groups` only.
    Groups,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupScope {
    /// Every source group.
    All,
    /// Only the groups named in `scope.groups`.
    Assigned,
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    #[serde(default)]
    pub assignment: Assignment,
    /// Group display names (or source ids) whose members are in scope.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Members of nested groups too (Entra provisions direct members only).
    #[serde(default)]
    pub nested: bool,
    /// Which groups are provisioned (default: `all` with assignment `all`, else
    /// `assigned`).
    pub provision_groups: Option<GroupScope>,
    /// Scoping filters: OR-ed; each one's clauses AND-ed.
    #[serde(default)]
    pub filters: Vec<ScopingFilter>,
    /// The source attribute holding app roles (flows to `roles`).
    pub roles: Option<String>,
    /// Users whose only role is this are skipped ("Default Access").
    pub default_role: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScopingFilter {
    #[serde(default)]
    pub title: Option<String>,
    pub clauses: Vec<ScopingClause>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScopingClause {
    pub attribute: String,
    pub operator: String,
    #[serde(default)]
    pub value: Option<String>,
}

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
    /// `0`, `immediately`, `24h`, `7d`, … (humantime).
    #[serde(default = "immediately")]
    pub after: String,
}

fn immediately() -> String {
    "0s".into()
}

impl DeprovisionRule {
    fn new(action: DeprovisionAction, after: &str) -> Self {
        Self {
            action,
            after: after.into(),
        }
    }

    pub fn delay(&self) -> SyncResult<Duration> {
        let a = self.after.trim();
        if zero_duration(a) || a.eq_ignore_ascii_case("immediately") {
            return Ok(Duration::ZERO);
        }
        scim_core::clock::parse_duration(a).map_err(|_| {
            SyncError::Job(format!(
                "deprovision delay '{a}' is not a duration (e.g. 24h, 7d)"
            ))
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeprovisionSpec {
    /// Removed from scope or unassigned.
    #[serde(default = "default_out_of_scope")]
    pub out_of_scope: DeprovisionRule,
    /// Suspended or disabled at the source.
    #[serde(default = "default_suspended")]
    pub suspended: DeprovisionRule,
    /// Gone from the source.
    #[serde(default = "default_deleted")]
    pub deleted: DeprovisionRule,
    /// Groups gone from the source or from scope.
    #[serde(default = "default_group_removed")]
    pub groups: DeprovisionRule,
}

fn default_out_of_scope() -> DeprovisionRule {
    DeprovisionRule::new(DeprovisionAction::Disable, "0s")
}
fn default_suspended() -> DeprovisionRule {
    DeprovisionRule::new(DeprovisionAction::Disable, "0s")
}
fn default_deleted() -> DeprovisionRule {
    DeprovisionRule::new(DeprovisionAction::DisableThenDelete, "30d")
}
fn default_group_removed() -> DeprovisionRule {
    DeprovisionRule::new(DeprovisionAction::Delete, "0s")
}

impl Default for DeprovisionSpec {
    fn default() -> Self {
        Self {
            out_of_scope: default_out_of_scope(),
            suspended: default_suspended(),
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
}

impl JobSpec {
    /// Parses a job file's text; `base_dir` resolves its relative paths.
    pub fn parse(text: &str, base_dir: Option<&Path>) -> SyncResult<Self> {
        let mut spec: JobSpec =
            toml::from_str(text).map_err(|e| SyncError::Job(format!("invalid job file: {e}")))?;
        spec.base_dir = base_dir.map(Path::to_path_buf);
        spec.validate()?;
        Ok(spec)
    }

    /// A job built as data (the console's New app form) rather than typed as TOML: the
    /// same keys, defaults and checks as a job file.
    pub fn from_value(v: serde_json::Value) -> SyncResult<Self> {
        let spec: JobSpec =
            serde_json::from_value(v).map_err(|e| SyncError::Job(format!("invalid job: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The job as storing it and loading it back gives it, with a job file's checks: what
    /// an edited job (the console's editors) must pass before it is stored.
    pub fn as_stored(&self) -> SyncResult<Self> {
        Self::parse(&self.to_stored_toml()?, None)
    }

    pub fn load(path: &Path) -> SyncResult<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SyncError::Job(format!("cannot read job file {}: {e}", path.display())))?;
        let dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        });
        let dir = dir.map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf()));
        Self::parse(&text, dir.as_deref())
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn validate(&self) -> SyncResult<()> {
        let bad = |m: String| Err(SyncError::Job(m));
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return bad(format!(
                "job name '{}' must be letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        let s = &self.source;
        match s.kind {
            SourceKind::Csv | SourceKind::Json => {
                match (&s.path, &s.upload) {
                    (None, None) => {
                        return bad(
                            "a csv or json source needs source.path (or a file uploaded in the console)"
                                .into(),
                        );
                    }
                    (Some(_), Some(_)) => {
                        return bad(
                            "source.path and source.upload are two ways to give the file: keep one"
                                .into(),
                        );
                    }
                    _ => {}
                }
                if s.id.is_none() {
                    return bad(
                        "source.id (the column with the stable source id) is required".into(),
                    );
                }
            }
            SourceKind::Scim if s.url.is_none() => {
                return bad("source.url is required for a scim source".into());
            }
            SourceKind::Tenant if s.tenant.is_none() => {
                return bad("source.tenant is required for a tenant source".into());
            }
            SourceKind::Ldap if s.url.is_none() || s.base_dn.is_none() => {
                return bad("source.url and source.base_dn are required for an ldap source".into());
            }
            SourceKind::Ldap => {
                let url = s.url.as_deref().unwrap_or_default();
                if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
                    return bad(format!(
                        "source.url '{url}' must start with ldap:// or ldaps://"
                    ));
                }
                if s.starttls && url.starts_with("ldaps://") {
                    return bad(
                        "source.starttls is for ldap:// URLs (ldaps:// is TLS already)".into(),
                    );
                }
                if let Some(d) = &s.disabled {
                    crate::source::DisabledRule::parse(d)?;
                }
                duration(s.full_scan.as_deref().unwrap_or("24h"), "source.full_scan")?;
                if let Some(m) = &s.change_detection
                    && !matches!(m.as_str(), "auto" | "syncrepl" | "poll")
                {
                    return bad(format!(
                        "source.change_detection '{m}': use auto, syncrepl or poll"
                    ));
                }
            }
            _ => {}
        }
        if let Some(url) = &self.notify.webhook {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return bad(format!("notify.webhook '{url}' must be an http(s) URL"));
            }
            if self.notify.webhook_secret_env.is_none() && self.notify.webhook_secret_file.is_none()
            {
                return bad(
                    "notify.webhook needs notify.webhook_secret_env or notify.webhook_secret_file (the signing secret)".into(),
                );
            }
        }
        if self.target.max_in_flight == 0 || self.target.members_per_request == 0 {
            return bad(
                "target.max_in_flight and target.members_per_request must be at least 1".into(),
            );
        }
        for (what, m) in [("users", &self.users), ("groups", &self.groups)] {
            for map in m.mappings.iter().chain(&m.extra) {
                map.check()
                    .map_err(|e| SyncError::Job(format!("{what} mapping '{}': {e}", map.target)))?;
            }
        }
        for f in &self.scope.filters {
            for c in &f.clauses {
                crate::scope::Operator::parse(&c.operator).map_err(|e| {
                    SyncError::Job(format!("scoping filter on '{}': {e}", c.attribute))
                })?;
            }
        }
        if self.scope.assignment == Assignment::Groups && self.scope.groups.is_empty() {
            return bad("scope.assignment = \"groups\" needs scope.groups".into());
        }
        let d = &self.deprovision;
        for r in [&d.out_of_scope, &d.suspended, &d.deleted, &d.groups] {
            r.delay()?;
        }
        if self.interval()? < Duration::minutes(1) {
            return bad("schedule.interval must be at least 1m".into());
        }
        self.debounce()?;
        duration(&self.target.timeout, "target.timeout")?;
        for w in self.escrow.ladder.iter().chain([&self.escrow.then]) {
            duration(w, "escrow wait")?;
        }
        duration(&self.escrow.abandon_after, "escrow.abandon_after")?;
        duration(&self.quarantine.interval, "quarantine.interval")?;
        if self.target.attempts == 0 {
            return bad("target.attempts must be at least 1".into());
        }
        if !(0.0..=100.0).contains(&self.quarantine.failure_percent) {
            return bad("quarantine.failure_percent must be between 0 and 100".into());
        }
        if let Some(bad_addr) = self.notify.email.iter().find(|a| {
            let a = a.trim();
            a.is_empty() || !a.contains('@') || a.contains(char::is_whitespace)
        }) {
            return bad(format!(
                "notify.email '{bad_addr}' is not an e-mail address"
            ));
        }
        if !(0.0..=100.0).contains(&self.breaker.max_percent) {
            return bad("breaker.max_percent must be between 0 and 100".into());
        }
        Ok(())
    }

    pub fn interval(&self) -> SyncResult<Duration> {
        duration(&self.schedule.interval, "schedule.interval")
    }

    /// `None` when event-driven runs are off.
    pub fn debounce(&self) -> SyncResult<Option<Duration>> {
        let d = self.schedule.debounce.trim();
        if zero_duration(d) {
            return Ok(None);
        }
        duration(d, "schedule.debounce").map(Some)
    }

    pub fn group_scope(&self) -> GroupScope {
        if !self.target.groups {
            return GroupScope::None;
        }
        self.scope
            .provision_groups
            .unwrap_or(match self.scope.assignment {
                Assignment::All => GroupScope::All,
                Assignment::Groups => GroupScope::Assigned,
            })
    }

    /// The job as stored: inline tokens removed (they are sealed separately).
    pub fn to_stored_toml(&self) -> SyncResult<String> {
        let mut copy = self.clone();
        copy.target.token = None;
        copy.source.token = None;
        toml::to_string_pretty(&copy).map_err(|e| SyncError::Job(format!("cannot write job: {e}")))
    }
}

impl Mapping {
    fn check(&self) -> Result<(), String> {
        let kinds = [
            self.source.is_some(),
            self.constant.is_some(),
            self.expression.is_some(),
            self.none,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if kinds != 1 {
            return Err("give exactly one of source, constant, expression or none = true".into());
        }
        scim_proto::PatchPath::parse(&self.target).map_err(|e| e.detail)?;
        if let Some(e) = &self.expression {
            expr::parse(e).map_err(|e| format!("expression error {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "hr-to-app"

[source]
kind = "csv"
path = "people.csv"      # relative to the job file
id = "employee_id"       # the column with the stable source id
groups = "groups"        # optional

[target]
url = "http://127.0.0.1:8080/t/app/scim/v2"
token_env = "APP_TOKEN"
"#;

    #[test]
    fn a_file_source_has_a_path_or_an_upload_not_both() {
        let job = |source: &str| {
            JobSpec::parse(
                &format!(
                    "name = \"j\"\n[source]\nkind = \"csv\"\nid = \"id\"\n{source}\n[target]\nurl = \"http://x\"\ntoken_env = \"T\"\n"
                ),
                None,
            )
        };
        assert!(job("path = \"a.csv\"").is_ok());
        assert!(job("upload = \"a.csv\"").is_ok());
        let both = job("path = \"a.csv\"\nupload = \"a.csv\"").unwrap_err();
        assert!(both.to_string().contains("keep one"), "{both}");
        let neither = job("").unwrap_err();
        assert!(neither.to_string().contains("source.path"), "{neither}");
    }

    #[test]
    fn the_minimal_file_parses_with_defaults() {
        let j = JobSpec::parse(MINIMAL, Some(Path::new("/jobs"))).expect("parses");
        assert_eq!(j.name, "hr-to-app");
        assert_eq!(
            j.resolve_path(Path::new("people.csv")),
            Path::new("/jobs/people.csv")
        );
        assert_eq!(j.breaker.max_deletes, 500);
        assert_eq!(
            j.deprovision.deleted.action,
            DeprovisionAction::DisableThenDelete
        );
        assert_eq!(j.group_scope(), GroupScope::All);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (MINIMAL.replace("id = \"employee_id\"", ""), "source.id"),
            (
                MINIMAL.replace("[target]", "[target]\nbogus = 1"),
                "unknown field `bogus`",
            ),
            (
                format!(
                    "{MINIMAL}\n[[users.mappings]]\ntarget = \"displayName\"\nexpression = \"Join(\\\" \\\", [a]\"\n"
                ),
                "expression error at 0",
            ),
            (
                format!("{MINIMAL}\n[[users.mappings]]\ntarget = \"displayName\"\n"),
                "exactly one of",
            ),
            (
                format!(
                    "{MINIMAL}\n[deprovision.deleted]\naction = \"delete\"\nafter = \"soon\"\n"
                ),
                "not a duration",
            ),
            (
                format!(
                    "{MINIMAL}\n[[scope.filters]]\nclauses = [{{attribute = \"dept\", operator = \"LIKE\", value = \"x\"}}]\n"
                ),
                "unknown scoping operator",
            ),
        ];
        for (text, want) in cases {
            let e = JobSpec::parse(&text, None).expect_err(want).to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn stored_toml_has_no_inline_token() {
        let text = MINIMAL.replace("token_env = \"APP_TOKEN\"", "token = \"s3cret\"");
        let j = JobSpec::parse(&text, None).expect("parses");
        let stored = j.to_stored_toml().expect("writes");
        assert!(!stored.contains("s3cret"));
        JobSpec::parse(&stored, None).expect("round-trips");
    }
}
