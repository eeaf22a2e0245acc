//! Sources: what the engine reads identities from, as components (vectordotdev/vector's
//! shape): each kind is one module with its `[source]` keys (a struct of its own), their
//! checks, and `build()`; [`SourceSpec`] is the tagged union of them that a job file holds.
//! Every source gives the same thing — objects with a stable id, attributes, a state and
//! group memberships — plus a watermark for the next cycle ([`SourceBatch`]).
//!
//! | module | `kind` | reads |
//! |---|---|---|
//! | `file` | `csv`, `json` | a file on this node, or one uploaded with the app |
//! | `scim` | `scim` | any SCIM 2.0 server |
//! | `tenant` | `tenant` | a tenant of this scimd, by its change feed |
//! | `ldap` | `ldap` | OpenLDAP, Active Directory, 389 DS (syncrepl or polling) |
//! | `google` | `google` | Google Workspace (Admin SDK Directory API, full reads) |
//! | `entra` | `entra` | Microsoft Entra ID (Graph delta queries) |

pub mod entra;
mod file;
pub mod file_sample;
pub mod google;
mod ldap;
pub mod rest;
mod scim;
mod tenant;
pub mod token;

pub use entra::{EntraSource, EntraSpec};
pub use file::{FileSource, FileSpec};
pub use google::{GoogleSource, GoogleSpec};
pub use ldap::{ChangeDetection, DisabledRule, LdapSource, LdapSpec};
pub use scim::{ScimSource, ScimSpec};
pub use tenant::{TenantReader, TenantSource, TenantSpec, tenant_position};

use crate::error::SyncResult;
use crate::model::{Clock, ObjectKind, SourceObject};
use crate::secret::SecretRef;
use async_trait::async_trait;
use scim_core::{SourceFile, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One read of a source.
#[derive(Debug, Clone, Default)]
pub struct SourceBatch {
    /// Everything the source has: objects absent from it are deleted at the source.
    pub full: bool,
    pub objects: Vec<SourceObject>,
    /// In an incremental batch, objects known to be gone.
    pub deleted: Vec<(ObjectKind, String)>,
    /// In an incremental batch, per kind, every object of that kind the source has now
    /// (LDAP's id scan, syncrepl's present phase): known objects absent are deleted.
    pub present: HashMap<ObjectKind, HashSet<String>>,
    /// What to hand back next cycle (the source's own type, as JSON in the job's state).
    pub watermark: Option<Value>,
    /// A full read of a remote directory or an export file, under the complete-read guard: when it would
    /// disable or delete as if the directory were empty or had shrunk sharply, those are
    /// staged for approval whatever the breaker's settings (`plan::breaker::guard`).
    pub guarded: bool,
    /// In an incremental batch, objects carry only what changed: their attributes are laid
    /// over the last snapshot's (a key absent keeps its value; one sent as null clears it),
    /// and their `members` are replaced only through `member_changes`.
    pub merge: bool,
    /// In an incremental batch, per group id, the members added and removed since the last
    /// read (Graph's `members@delta`).
    pub member_changes: HashMap<String, MemberChange>,
    /// In an incremental batch, users known to be suspended now whose other attributes did
    /// not change (a soft delete read as a suspension).
    pub suspended: Vec<String>,
}

/// A group's members added and removed since the last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl MemberChange {
    /// `members` with this change applied (order kept, no duplicates).
    pub fn apply(&self, members: &[String]) -> Vec<String> {
        let gone: HashSet<&str> = self.removed.iter().map(String::as_str).collect();
        let mut out: Vec<String> = members
            .iter()
            .filter(|m| !gone.contains(m.as_str()))
            .cloned()
            .collect();
        let mut have: HashSet<String> = out.iter().cloned().collect();
        for a in &self.added {
            if !gone.contains(a.as_str()) && have.insert(a.clone()) {
                out.push(a.clone());
            }
        }
        out
    }
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Reads what changed since `watermark` (everything when `None`, or when the source
    /// cannot read incrementally).
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch>;
    /// What the source is, for checks and logs (`LDAP ldap://dc1 (dc=corp)`).
    fn describe(&self) -> String;
}

/// A source's position as its own type: one that does not read as it (another kind's, or
/// damaged) is no position at all, and the source reads everything.
pub fn watermark_of<T: serde::de::DeserializeOwned>(w: Option<&Value>) -> Option<T> {
    w.and_then(|w| serde_json::from_value(w.clone()).ok())
}

pub fn watermark_value<T: Serialize>(w: &T) -> Option<Value> {
    serde_json::to_value(w).ok()
}

/// `[source]`: one of the source kinds, by its `kind` key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceSpec {
    Csv(FileSpec),
    Json(FileSpec),
    Scim(ScimSpec),
    Tenant(TenantSpec),
    Ldap(LdapSpec),
    Google(GoogleSpec),
    Entra(EntraSpec),
}

/// The source kinds, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Csv,
    Json,
    Scim,
    Tenant,
    Ldap,
    Google,
    Entra,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Csv => "csv",
            SourceKind::Json => "json",
            SourceKind::Scim => "scim",
            SourceKind::Tenant => "tenant",
            SourceKind::Ldap => "ldap",
            SourceKind::Google => "google",
            SourceKind::Entra => "entra",
        }
    }
}

/// What building a source needs besides its keys.
#[derive(Clone)]
pub struct BuildContext {
    pub job: String,
    /// Where the job file's relative paths are resolved from.
    pub base_dir: Option<PathBuf>,
    /// The source's credential as sealed at import, if it was given inline.
    pub sealed: Option<String>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    /// How long the provisioning log keeps events (a tenant source's full-read trigger).
    pub log_retention: time::Duration,
    /// A file in hand (uploaded in the console, not stored yet) instead of the job's own.
    pub file: Option<Arc<SourceFile>>,
    /// Where a SCIM or LDAP source may be.
    pub outbound: scim_net::Policy,
}

impl SourceSpec {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceSpec::Csv(_) => SourceKind::Csv,
            SourceSpec::Json(_) => SourceKind::Json,
            SourceSpec::Scim(_) => SourceKind::Scim,
            SourceSpec::Tenant(_) => SourceKind::Tenant,
            SourceSpec::Ldap(_) => SourceKind::Ldap,
            SourceSpec::Google(_) => SourceKind::Google,
            SourceSpec::Entra(_) => SourceKind::Entra,
        }
    }

    /// The file source's keys, for a CSV or JSON source.
    pub fn file(&self) -> Option<&FileSpec> {
        match self {
            SourceSpec::Csv(f) | SourceSpec::Json(f) => Some(f),
            _ => None,
        }
    }

    pub fn file_mut(&mut self) -> Option<&mut FileSpec> {
        match self {
            SourceSpec::Csv(f) | SourceSpec::Json(f) => Some(f),
            _ => None,
        }
    }

    /// The scimd tenant a tenant source reads.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            SourceSpec::Tenant(t) => Some(&t.tenant),
            _ => None,
        }
    }

    /// What can be checked without the network.
    pub fn check(&self) -> Result<(), String> {
        match self {
            SourceSpec::Csv(f) | SourceSpec::Json(f) => f.check(),
            SourceSpec::Scim(s) => s.check(),
            SourceSpec::Tenant(t) => t.check(),
            SourceSpec::Ldap(l) => l.check(),
            SourceSpec::Google(g) => g.check(),
            SourceSpec::Entra(e) => e.check(),
        }
    }

    /// The source's credential (a SCIM source's token, an LDAP bind password, a Google
    /// service account's key file).
    pub fn secret(&self) -> Option<SecretRef<'_>> {
        match self {
            SourceSpec::Scim(s) => Some(s.token_ref()),
            SourceSpec::Ldap(l) => Some(l.password_ref()),
            SourceSpec::Google(g) => Some(g.credentials_ref()),
            SourceSpec::Entra(e) => Some(e.secret_ref()),
            _ => None,
        }
    }

    /// Takes the inline credential out (it is sealed apart).
    pub fn take_inline_secret(&mut self) -> Option<String> {
        match self {
            SourceSpec::Scim(s) => s.token.take(),
            SourceSpec::Ldap(l) => l.password.take(),
            SourceSpec::Google(g) => g.credentials.take(),
            SourceSpec::Entra(e) => e.take_inline_secret(),
            _ => None,
        }
    }

    /// Relative paths made absolute against `base` (a stored job works from any directory).
    pub fn absolutize(&mut self, base: &Path) {
        let abs = |p: &mut Option<PathBuf>| {
            if let Some(x) = p.as_mut().filter(|x| x.is_relative()) {
                *x = base.join(&*x);
            }
        };
        match self {
            SourceSpec::Csv(f) | SourceSpec::Json(f) => {
                abs(&mut f.path);
                abs(&mut f.groups_path);
            }
            SourceSpec::Scim(s) => abs(&mut s.token_file),
            SourceSpec::Ldap(l) => {
                abs(&mut l.password_file);
                abs(&mut l.tls_ca_file);
            }
            SourceSpec::Google(g) => abs(&mut g.credentials_file),
            SourceSpec::Entra(e) => {
                abs(&mut e.client_secret_file);
                abs(&mut e.certificate_file);
                abs(&mut e.certificate_key_file);
            }
            SourceSpec::Tenant(_) => {}
        }
    }

    /// Builds the source.
    pub fn build(&self, ctx: &BuildContext) -> SyncResult<Box<dyn Source>> {
        Ok(match self {
            SourceSpec::Csv(f) => Box::new(f.build(false, ctx)?),
            SourceSpec::Json(f) => Box::new(f.build(true, ctx)?),
            SourceSpec::Scim(s) => Box::new(s.build(ctx)?),
            SourceSpec::Tenant(t) => Box::new(t.build(ctx)),
            SourceSpec::Ldap(l) => Box::new(l.build(ctx)?),
            SourceSpec::Google(g) => Box::new(g.build(ctx)?),
            SourceSpec::Entra(e) => Box::new(e.build(ctx)?),
        })
    }

    /// What the source is, in the console's words.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Csv(f) | SourceSpec::Json(f) => {
                let kind = if self.kind() == SourceKind::Json {
                    "JSON"
                } else {
                    "CSV"
                };
                match (&f.path, &f.upload) {
                    (_, Some(_)) => format!("{kind} file uploaded in the console"),
                    (Some(p), None) => format!("{kind} file {}", p.display()),
                    (None, None) => format!("{kind} file"),
                }
            }
            SourceSpec::Scim(s) => format!("SCIM server {}", s.url),
            SourceSpec::Tenant(t) => format!("scimd tenant {}", t.tenant),
            SourceSpec::Ldap(l) => format!("LDAP {}", l.url),
            SourceSpec::Google(g) => g.describe(),
            SourceSpec::Entra(e) => e.describe(),
        }
    }
}

/// Group display names to stable ids for file sources, where a group is known by name.
pub fn group_id_for_name(name: &str) -> String {
    name.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SourceSpec, String> {
        toml::from_str::<SourceSpec>(text).map_err(|e| e.to_string())
    }

    /// The same `[source]` table as before the keys became one struct per kind; a key of
    /// another kind is refused by name.
    #[test]
    fn each_kind_takes_its_own_keys() {
        let csv = parse("kind = \"csv\"\npath = \"p.csv\"\nid = \"employee_id\"\n").expect("csv");
        assert_eq!(csv.kind(), SourceKind::Csv);
        assert_eq!(
            csv.file().and_then(|f| f.id.as_deref()),
            Some("employee_id")
        );
        let ldap = parse(
            "kind = \"ldap\"\nurl = \"ldap://dc1\"\nbase_dn = \"dc=x\"\npassword_env = \"P\"\nchange_detection = \"poll\"\n",
        )
        .expect("ldap");
        assert_eq!(ldap.secret().map(|s| s.env), Some(Some("P")));
        // What versions before this one stored: `token_env` for the LDAP password.
        let old =
            parse("kind = \"ldap\"\nurl = \"ldap://dc1\"\nbase_dn = \"dc=x\"\ntoken_env = \"P\"\n")
                .expect("old ldap");
        assert_eq!(old.secret().map(|s| s.env), Some(Some("P")));
        let bad =
            parse("kind = \"tenant\"\ntenant = \"hub\"\nbase_dn = \"dc=x\"\n").expect_err("bad");
        assert!(bad.contains("unknown field `base_dn`"), "{bad}");
        let bad = parse("kind = \"ftp\"\n").expect_err("bad");
        assert!(bad.contains("unknown variant `ftp`"), "{bad}");
        let back: SourceSpec =
            toml::from_str(&toml::to_string(&ldap).expect("writes")).expect("reads back");
        assert_eq!(back, ldap);
    }
}
