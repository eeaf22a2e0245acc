//! A job: one source → one target, with mappings, scope and policies, as a TOML file
//! (docs/sync.md §2 documents every key and its default). Reading a job checks everything
//! that can be checked without the network, once: unknown keys, the source's keys (each
//! kind its own struct, `crate::source`), expressions (with positions), scoping operators
//! and regexes, durations (parsed into their values), percentages.
//!
//! | module | keys |
//! |---|---|
//! | here | the job, its name, reading and storing it |
//! | `target` | `[target]` |
//! | `mapping` | `[users]`, `[groups]` |
//! | `policy` | `[deprovision]`, `[breaker]`, `[matching]`, `[schedule]`, `[escrow]`, `[quarantine]`, `[notify]` |

mod mapping;
mod policy;
mod target;

pub use crate::scope::{Assignment, GroupScope, ScopeSpec, ScopingClause, ScopingFilter};
pub use crate::source::{SourceKind, SourceSpec};
pub use mapping::{Apply, Mapping, ObjectMappings};
pub use policy::{
    BreakerSpec, ConflictPolicy, DeprovisionAction, DeprovisionRule, DeprovisionSpec, Dur,
    EscrowSpec, MatchingSpec, NotifySpec, QuarantineSpec, ScheduleSpec,
};
pub use target::{TargetSpec, UpdateMethod};

use crate::error::{SyncError, SyncResult};
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

/// Whether a job name is valid: letters, digits, `-`, `_` and `.`.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl JobSpec {
    /// The scimd tenants this job reads or writes: a tenant source's, and the target's when
    /// its URL is a tenant's SCIM base URL on this scimd (`public_url`). Whoever administers
    /// one of them may see the app.
    pub fn tenants(&self, public_url: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .source
            .tenant()
            .map(str::to_string)
            .into_iter()
            .collect();
        if let Some(t) = scim_core::tenant::slug_of_scim_url(public_url, &self.target.url)
            && !out.contains(&t)
        {
            out.push(t);
        }
        out
    }

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
        if !valid_name(&self.name) {
            return bad(format!(
                "job name '{}' must be letters, digits, '-', '_' or '.' (at most 128)",
                scim_proto::error::excerpt(&self.name)
            ));
        }
        self.source.check().map_err(SyncError::Job)?;
        if let Some(url) = &self.notify.webhook {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return bad(format!("notify.webhook '{url}' must be an http(s) URL"));
            }
            if !self.notify.webhook_secret().is_named() {
                return bad(
                    "notify.webhook needs notify.webhook_secret_env or notify.webhook_secret_file (the signing secret)".into(),
                );
            }
        }
        let t = &self.target;
        if t.max_in_flight == 0 || t.members_per_request == 0 {
            return bad(
                "target.max_in_flight and target.members_per_request must be at least 1".into(),
            );
        }
        if t.attempts == 0 {
            return bad("target.attempts must be at least 1".into());
        }
        for (what, m) in [("users", &self.users), ("groups", &self.groups)] {
            for map in m.mappings.iter().chain(&m.extra) {
                map.check()
                    .map_err(|e| SyncError::Job(format!("{what} mapping '{}': {e}", map.target)))?;
            }
        }
        self.scope.check().map_err(SyncError::Job)?;
        if self.schedule.interval.get() < Duration::minutes(1) {
            return bad("schedule.interval must be at least 1m".into());
        }
        if !(0.0..=100.0).contains(&self.quarantine.failure_percent) {
            return bad("quarantine.failure_percent must be between 0 and 100".into());
        }
        // As the mailer will take it, so a notice never fails on an address that was
        // accepted here.
        if let Some(bad_addr) = self
            .notify
            .email
            .iter()
            .find(|a| scim_net::Mailer::check_address(a).is_err())
        {
            return bad(format!(
                "notify.email '{}' is not an e-mail address",
                scim_proto::error::excerpt(bad_addr)
            ));
        }
        if !(0.0..=100.0).contains(&self.breaker.max_percent) {
            return bad("breaker.max_percent must be between 0 and 100".into());
        }
        Ok(())
    }

    /// `None` when event-driven runs are off.
    pub fn debounce(&self) -> Option<Duration> {
        let d = self.schedule.debounce.get();
        (!d.is_zero()).then_some(d)
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

    /// The job as stored: inline credentials taken out (they are sealed apart), relative
    /// paths made absolute (a stored job works from any directory).
    pub fn to_stored(&self) -> (JobSpec, crate::secret::Sealed) {
        let mut copy = self.clone();
        let sealed = crate::secret::Sealed {
            target: copy.target.token.take(),
            source: copy.source.take_inline_secret(),
        };
        if let Some(base) = &self.base_dir {
            copy.source.absolutize(base);
            for p in [
                &mut copy.target.token_file,
                &mut copy.notify.webhook_secret_file,
            ] {
                if let Some(x) = p.as_mut().filter(|x| x.is_relative()) {
                    *x = base.join(&*x);
                }
            }
        }
        (copy, sealed)
    }

    /// The job as stored, as TOML: no inline credentials.
    pub fn to_stored_toml(&self) -> SyncResult<String> {
        let (copy, _) = self.to_stored();
        toml::to_string_pretty(&copy).map_err(|e| SyncError::Job(format!("cannot write job: {e}")))
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

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn an_app_names_the_tenants_it_reads_and_writes() {
        let spec = |source: &str, target: &str| {
            let text = format!(
                "name = \"j\"\n[source]\n{source}\n[target]\nurl = \"{target}\"\ntoken_env = \"T\"\n"
            );
            JobSpec::parse(&text, None).expect("parses")
        };
        let me = "https://id.example.com";
        let tenant = "kind = \"tenant\"\ntenant = \"hub\"";
        let csv = "kind = \"csv\"\npath = \"/x.csv\"\nid = \"n\"";
        let cases = [
            (
                tenant,
                "https://id.example.com/t/acme/scim/v2",
                vec!["hub", "acme"],
            ),
            (tenant, "https://id.example.com/t/hub/scim/v2", vec!["hub"]),
            (tenant, "https://elsewhere.example/scim/v2", vec!["hub"]),
            (csv, "https://id.example.com/t/acme/scim/v2/", vec!["acme"]),
            (csv, "https://elsewhere.example/t/acme/scim/v2", vec![]),
        ];
        for (source, target, want) in cases {
            assert_eq!(
                spec(source, target).tenants(me),
                want,
                "{source} → {target}"
            );
        }
    }

    #[test]
    fn a_stored_job_keeps_no_credential_and_no_relative_path() {
        let text = "name = \"j\"\n[source]\nkind = \"ldap\"\nurl = \"ldap://dc1\"\nbase_dn = \"dc=x\"\n\
                    bind_dn = \"cn=s\"\npassword = \"bind-pw\"\ntls_ca_file = \"ca.pem\"\n\
                    [target]\nurl = \"http://x/scim/v2\"\ntoken = \"tok\"\n";
        let j = JobSpec::parse(text, Some(Path::new("/jobs"))).expect("parses");
        let (stored, sealed) = j.to_stored();
        assert_eq!(sealed.target.as_deref(), Some("tok"));
        assert_eq!(sealed.source.as_deref(), Some("bind-pw"));
        let toml = toml::to_string(&stored).expect("writes");
        assert!(
            !toml.contains("bind-pw") && !toml.contains("\"tok\""),
            "{toml}"
        );
        assert!(toml.contains("/jobs/ca.pem"), "{toml}");
        let back = JobSpec::parse(&toml, None).expect("reads back");
        assert_eq!(back.deprovision, j.deprovision);
    }

    #[test]
    fn durations_and_names_are_checked_when_read() {
        let base = "[source]\nkind = \"tenant\"\ntenant = \"hub\"\n[target]\nurl = \"http://x\"\ntoken_env = \"T\"\n";
        let cases = [
            (format!("name = \"a b\"\n{base}"), "job name"),
            (
                format!("name = \"j\"\n{base}[schedule]\ninterval = \"30s\"\n"),
                "at least 1m",
            ),
            (
                format!("name = \"j\"\n{base}[escrow]\nladder = [\"6h\", \"later\"]\n"),
                "not a duration",
            ),
            (format!("name = \"j\"\n{base}[target.timeout]\n"), "invalid"),
        ];
        for (text, want) in cases {
            let e = JobSpec::parse(&text, None).expect_err(want).to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        let j = JobSpec::parse(
            &format!("name = \"j\"\n{base}[schedule]\ndebounce = \"0\"\n"),
            None,
        )
        .expect("parses");
        assert_eq!(j.debounce(), None);
        assert_eq!(j.schedule.interval.get(), Duration::minutes(40));
    }
}
