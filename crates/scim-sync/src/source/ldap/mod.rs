//! `kind = "ldap"`: an LDAP directory as the source (OpenLDAP, Active Directory, 389 DS),
//! read with ldap3: simple bind over `ldap://` (optionally StartTLS) or `ldaps://`, paged
//! searches (RFC 2696) for users and groups (groupOfNames / groupOfUniqueNames by member
//! DN, posixGroup by memberUid, AD `group`), a stable id from `entryUUID` (RFC 4530) or
//! AD's binary `objectGUID`, the disabled state from a configurable attribute, and a
//! user's manager resolved from its DN to the manager's id.
//!
//! Change detection (docs/sync.md §11), `change_detection = "auto"` by default:
//! - **syncrepl** (`syncrepl.rs`) when the server offers the control on this database and
//!   the id is entryUUID;
//! - **polling** (`poll.rs`) otherwise.
//!
//! Either way a delete reaches the target on the next cycle, not after a day.

mod entry;
mod poll;
mod syncrepl;

pub use entry::DisabledRule;

use super::{BuildContext, Source, SourceBatch, watermark_of};
use crate::duration::Dur;
use crate::error::{SyncError, SyncResult};
use crate::model::{Clock, ObjectKind, SourceObject};
use crate::secret::SecretRef;
use async_trait::async_trait;
use entry::{Directory, Entry, ldap_error, parsed, tls_config};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_USER_FILTER: &str = "(objectClass=inetOrgPerson)";
pub const DEFAULT_GROUP_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)(objectClass=group))";
pub const DEFAULT_ID_ATTRIBUTE: &str = "entryUUID";
/// The longest wait for an answer of the directory (a bind, each entry of a search); ldap3
/// applies a timeout to the next operation only, so it is set before each.
pub(super) const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

/// `change_detection`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChangeDetection {
    /// syncrepl when the server offers it and the id is entryUUID, else polling.
    #[default]
    Auto,
    Syncrepl,
    Poll,
}

/// `[source]` of `kind = "ldap"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LdapSpec {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// The DN to bind as (anonymous without it).
    pub bind_dn: Option<String>,
    /// The bind password (inline: sealed at import), or from a file or a variable. (`token`,
    /// `token_env` and `token_file`: what versions before the keys were typed stored.)
    #[serde(alias = "token")]
    pub password: Option<String>,
    #[serde(alias = "token_env")]
    pub password_env: Option<String>,
    #[serde(alias = "token_file")]
    pub password_file: Option<PathBuf>,
    /// The CA certificate(s) (PEM) that sign the directory's certificate, for ldaps:// and
    /// StartTLS; without it the system's roots are used.
    pub tls_ca_file: Option<PathBuf>,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starttls: bool,
    /// Where users and groups are searched (subtree).
    pub base_dn: String,
    /// Which entries are users (default `(objectClass=inetOrgPerson)`; AD:
    /// `(&(objectCategory=person)(objectClass=user))`).
    pub user_filter: Option<String>,
    /// Which entries are groups (default: groupOfNames, groupOfUniqueNames, posixGroup and
    /// AD's group).
    pub group_filter: Option<String>,
    /// The attribute with the stable id (default entryUUID; AD: objectGUID).
    pub id: Option<String>,
    /// When a user is disabled: an attribute that is present (`pwdAccountLockedTime`),
    /// `attr=value`, or `attr&bit` (AD: `userAccountControl&2`).
    pub disabled: Option<DisabledRule>,
    /// Entries per page (RFC 2696), default 500.
    pub page_size: Option<u32>,
    /// How often a cycle re-reads every entry instead of the changed ones (default 24h).
    pub full_scan: Option<Dur>,
    #[serde(default, skip_serializing_if = "is_auto")]
    pub change_detection: ChangeDetection,
}

fn is_auto(c: &ChangeDetection) -> bool {
    *c == ChangeDetection::Auto
}

impl LdapSpec {
    pub fn check(&self) -> Result<(), String> {
        let url = &self.url;
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return Err(format!(
                "source.url '{}' must start with ldap:// or ldaps://",
                scim_proto::error::excerpt(url)
            ));
        }
        if self.starttls && url.starts_with("ldaps://") {
            return Err("source.starttls is for ldap:// URLs (ldaps:// is TLS already)".into());
        }
        if self.base_dn.trim().is_empty() {
            return Err("source.base_dn is required for an ldap source".into());
        }
        Ok(())
    }

    pub fn password_ref(&self) -> SecretRef<'_> {
        SecretRef {
            key: "source.password",
            inline: self.password.as_deref(),
            env: self.password_env.as_deref(),
            file: self.password_file.as_deref(),
        }
    }

    pub fn build(&self, ctx: &BuildContext) -> SyncResult<LdapSource> {
        let base = ctx.base_dir.as_deref();
        let password = match &self.bind_dn {
            None => None,
            Some(dn) => Some(self.password_ref().resolve(base, ctx.sealed.clone())?.ok_or_else(
                || {
                    SyncError::Job(format!(
                        "source.bind_dn '{dn}' needs a password: source.password_env, source.password_file or source.password"
                    ))
                },
            )?),
        };
        let tls = match &self.tls_ca_file {
            Some(p) => {
                let path = match base {
                    Some(b) if p.is_relative() => b.join(p),
                    _ => p.clone(),
                };
                Some(tls_config(&path)?)
            }
            None => None,
        };
        Ok(LdapSource {
            tls,
            url: self.url.clone(),
            starttls: self.starttls,
            bind_dn: self.bind_dn.clone(),
            password,
            base_dn: self.base_dn.clone(),
            user_filter: self
                .user_filter
                .clone()
                .unwrap_or_else(|| DEFAULT_USER_FILTER.into()),
            group_filter: self
                .group_filter
                .clone()
                .unwrap_or_else(|| DEFAULT_GROUP_FILTER.into()),
            id_attribute: self
                .id
                .clone()
                .unwrap_or_else(|| DEFAULT_ID_ATTRIBUTE.into()),
            disabled: self.disabled.clone(),
            page_size: i32::try_from(self.page_size.unwrap_or(500).clamp(1, 10_000)).unwrap_or(500),
            full_scan: self
                .full_scan
                .as_ref()
                .map_or(time::Duration::hours(24), Dur::get),
            change_detection: self.change_detection,
            clock: ctx.clock.clone(),
            outbound: ctx.outbound.clone(),
        })
    }
}

/// Where the last read got to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
enum Mark {
    /// A cookie per filter (base64).
    Syncrepl {
        users: Option<String>,
        groups: Option<String>,
        full_at: i64,
    },
    /// The newest `modifyTimestamp` seen.
    Poll { since: Option<String>, full_at: i64 },
}

pub struct LdapSource {
    /// Trusting the job's CA file; `None`: the system's roots (ldap3's default).
    tls: Option<Arc<rustls::ClientConfig>>,
    url: String,
    starttls: bool,
    bind_dn: Option<String>,
    password: Option<String>,
    base_dn: String,
    user_filter: String,
    group_filter: String,
    id_attribute: String,
    disabled: Option<DisabledRule>,
    page_size: i32,
    full_scan: time::Duration,
    change_detection: ChangeDetection,
    clock: Clock,
    outbound: scim_net::Policy,
}

impl LdapSource {
    /// The directory's address under the outbound policy (docs/security.md): a literal
    /// address as it is, a name by every address it resolves to now (ldap3 connects by name
    /// to any of them). ldap3 resolves the name again to connect: a name that changes its
    /// answer in between (DNS rebinding) is the one gap left, narrowed by the resolver's
    /// cache; reqwest's connections have none (their resolver is the check).
    async fn check_destination(&self) -> SyncResult<()> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| SyncError::Job(format!("source.url '{}': {e}", self.url)))?;
        let refused = |e: &dyn std::fmt::Display| SyncError::Source(format!("refused: {e}"));
        if url.scheme() == "ldapi" {
            return match self.outbound.allow_loopback {
                true => Ok(()),
                false => Err(refused(
                    &"ldapi:// is a socket on this machine, and outbound_allow_loopback is off",
                )),
            };
        }
        let host = url.host_str().unwrap_or_default();
        let port = url
            .port()
            .unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
        match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(ip) => self
                .outbound
                .allows(ip)
                .map_err(|c| refused(&format!("{ip} is {}", c.describe()))),
            Err(_) => match self.outbound.resolve_all(host, port).await {
                Ok(_) => Ok(()),
                Err(scim_net::ResolveError::Refused(r)) => Err(refused(&r)),
                Err(e @ scim_net::ResolveError::Lookup(..)) => {
                    Err(SyncError::Source(format!("cannot connect: {e}")))
                }
            },
        }
    }

    async fn connect(&self) -> SyncResult<ldap3::Ldap> {
        self.check_destination().await?;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(30))
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| ldap_error("cannot connect", &e))?;
        ldap3::drive!(conn);
        ldap.with_timeout(OPERATION_TIMEOUT);
        if let Some(dn) = &self.bind_dn {
            ldap.simple_bind(dn, self.password.as_deref().unwrap_or_default())
                .await
                .and_then(|r| r.success())
                .map_err(|e| ldap_error(&format!("bind as {dn} refused"), &e))?;
        }
        Ok(ldap)
    }

    /// One paged search; the entries as (dn, text attributes, id).
    async fn search(
        &self,
        ldap: &mut ldap3::Ldap,
        filter: &str,
        attrs: &[&str],
    ) -> SyncResult<Vec<Entry>> {
        let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.page_size)),
        ];
        ldap.with_timeout(OPERATION_TIMEOUT);
        let mut stream = ldap
            .streaming_search_with(
                adapters,
                &self.base_dn,
                Scope::Subtree,
                filter,
                attrs.to_vec(),
            )
            .await
            .map_err(|e| ldap_error(&format!("search {filter} failed"), &e))?;
        let mut out = Vec::new();
        while let Some(raw) = stream
            .next()
            .await
            .map_err(|e| ldap_error(&format!("search {filter} failed"), &e))?
        {
            let entry = parsed(|| SearchEntry::construct(raw))?;
            let Some(id) = self.id_of(&entry) else {
                tracing::warn!(dn = %entry.dn, attribute = %self.id_attribute, "LDAP entry without its id attribute: skipped");
                continue;
            };
            out.push(Entry {
                dn: entry.dn,
                id,
                attrs: entry.attrs,
            });
        }
        stream
            .finish()
            .await
            .success()
            .map_err(|e| ldap_error(&format!("search {filter} failed"), &e))?;
        Ok(out)
    }

    fn id_of(&self, e: &SearchEntry) -> Option<String> {
        entry::id_of(e, &self.id_attribute)
    }

    fn user_attrs(&self) -> Vec<&str> {
        let mut v = vec!["*", "modifyTimestamp", self.id_attribute.as_str()];
        if let Some(d) = &self.disabled {
            v.push(d.attribute());
        }
        v
    }
}

impl LdapSource {
    /// An entry as a source object. A user's `manager` (a DN, in AD and OpenLDAP) is read
    /// as the manager's source id, so that a reference mapping can write the manager's
    /// target id; the DN stays in `managerDN`. A manager outside the user filter has no id:
    /// `manager` is left out.
    fn object(&self, kind: ObjectKind, e: &Entry, dir: &Directory) -> SourceObject {
        let mut attributes = Map::new();
        for (k, v) in &e.attrs {
            let value = match v.as_slice() {
                [one] => Value::String(one.clone()),
                many => Value::Array(many.iter().cloned().map(Value::String).collect()),
            };
            if k.eq_ignore_ascii_case("manager") && kind == ObjectKind::User {
                if let Some(id) = v.first().and_then(|dn| dir.id_of_dn(dn)) {
                    attributes.insert("manager".into(), Value::String(id.clone()));
                }
                attributes.insert("managerDN".into(), value);
                continue;
            }
            attributes.insert(k.clone(), value);
        }
        attributes.insert("dn".into(), Value::String(e.dn.clone()));
        SourceObject {
            kind,
            id: e.id.clone(),
            suspended: kind == ObjectKind::User
                && self.disabled.as_ref().is_some_and(|d| d.disabled(&e.attrs)),
            members: if kind == ObjectKind::Group {
                dir.members(e)
            } else {
                Vec::new()
            },
            attributes,
        }
    }
}

#[async_trait]
impl Source for LdapSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let mut ldap = self.connect().await?;
        let now = (self.clock)().to_datetime().unix_timestamp();
        let mark = watermark_of::<Mark>(watermark);
        let synced = if self.syncrepl_offered(&mut ldap).await? {
            self.read_syncrepl(&mut ldap, mark.as_ref(), now).await
        } else {
            Ok(None)
        };
        let batch = match synced {
            Ok(Some(b)) => Ok(b),
            Ok(None) if self.change_detection == ChangeDetection::Syncrepl => Err(SyncError::Source(
                "LDAP: change_detection = \"syncrepl\" but the directory refuses the sync control (is the syncprov overlay on this database?)".into(),
            )),
            Ok(None) => self.read_polled(&mut ldap, mark.as_ref(), now).await,
            Err(e) => Err(e),
        };
        let _ = ldap.unbind().await;
        batch
    }

    fn describe(&self) -> String {
        format!("LDAP {} ({})", self.url, self.base_dn)
    }
}
