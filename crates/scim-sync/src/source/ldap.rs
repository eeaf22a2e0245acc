//! An LDAP directory as the source (OpenLDAP, Active Directory, 389 DS), read with ldap3:
//! simple bind over `ldap://` (optionally StartTLS) or `ldaps://`, paged searches (RFC 2696)
//! for users and groups (groupOfNames / groupOfUniqueNames by member DN, posixGroup by
//! memberUid, AD `group`), a stable id from `entryUUID` (RFC 4530) or AD's binary
//! `objectGUID`, and the disabled state from a configurable attribute.
//!
//! Change detection (docs/sync.md §11): the first cycle, and every `full_scan` (24 h), reads
//! everything. In between a cycle reads the entries whose `modifyTimestamp` is at or after
//! the newest one seen last time (the server's clock, so no skew), and lists the ids of all
//! users and groups (one paged search returning only the id) to find the ones that are gone:
//! a delete reaches the target on the next cycle, not after a day. syncrepl (RFC 4533) is
//! not used yet: it needs the syncprov overlay, which many directories do not enable.

use super::{ObjectKind, Source, SourceBatch, SourceObject};
use crate::error::{SyncError, SyncResult};
use crate::job::SourceSpec;
use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_USER_FILTER: &str = "(objectClass=inetOrgPerson)";
pub const DEFAULT_GROUP_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)(objectClass=group))";
pub const DEFAULT_ID_ATTRIBUTE: &str = "entryUUID";

/// When a user counts as disabled.
#[derive(Debug, Clone, PartialEq)]
pub enum DisabledRule {
    /// The attribute is present (and not `FALSE`/`0`): OpenLDAP's `pwdAccountLockedTime`.
    Present(String),
    /// The attribute has this value (case-insensitive): `employeeType=disabled`.
    Equals(String, String),
    /// A bit of the attribute's integer value is set: AD's `userAccountControl&2`.
    Bit(String, u64),
}

impl DisabledRule {
    pub fn parse(s: &str) -> SyncResult<Self> {
        let bad = || {
            SyncError::Job(format!(
                "source.disabled '{s}': use an attribute (present = disabled), attr=value, or attr&bit (e.g. userAccountControl&2)"
            ))
        };
        if let Some((a, b)) = s.split_once('&') {
            let bit = b.trim().parse::<u64>().map_err(|_| bad())?;
            if a.trim().is_empty() || bit == 0 {
                return Err(bad());
            }
            return Ok(Self::Bit(a.trim().to_string(), bit));
        }
        if let Some((a, v)) = s.split_once('=') {
            if a.trim().is_empty() {
                return Err(bad());
            }
            return Ok(Self::Equals(a.trim().to_string(), v.trim().to_string()));
        }
        if s.trim().is_empty() {
            return Err(bad());
        }
        Ok(Self::Present(s.trim().to_string()))
    }

    fn attribute(&self) -> &str {
        match self {
            Self::Present(a) | Self::Equals(a, _) | Self::Bit(a, _) => a,
        }
    }

    fn disabled(&self, attrs: &HashMap<String, Vec<String>>) -> bool {
        let values = |a: &str| {
            attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(a))
                .map(|(_, v)| v.as_slice())
                .unwrap_or_default()
        };
        match self {
            Self::Present(a) => values(a)
                .iter()
                .any(|v| !v.eq_ignore_ascii_case("false") && v != "0"),
            Self::Equals(a, want) => values(a).iter().any(|v| v.eq_ignore_ascii_case(want)),
            Self::Bit(a, bit) => values(a)
                .iter()
                .any(|v| v.trim().parse::<u64>().is_ok_and(|n| n & bit != 0)),
        }
    }
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
}

impl LdapSource {
    /// `ca_file`: the resolved `tls_ca_file`.
    pub fn new(
        spec: &SourceSpec,
        password: Option<String>,
        ca_file: Option<std::path::PathBuf>,
    ) -> SyncResult<Self> {
        let full_scan = crate::job::duration(
            spec.full_scan.as_deref().unwrap_or("24h"),
            "source.full_scan",
        )?;
        let tls = ca_file.as_deref().map(tls_config).transpose()?;
        Ok(Self {
            tls,
            url: spec.url.clone().unwrap_or_default(),
            starttls: spec.starttls,
            bind_dn: spec.bind_dn.clone(),
            password,
            base_dn: spec.base_dn.clone().unwrap_or_default(),
            user_filter: spec
                .user_filter
                .clone()
                .unwrap_or_else(|| DEFAULT_USER_FILTER.into()),
            group_filter: spec
                .group_filter
                .clone()
                .unwrap_or_else(|| DEFAULT_GROUP_FILTER.into()),
            id_attribute: spec
                .id
                .clone()
                .unwrap_or_else(|| DEFAULT_ID_ATTRIBUTE.into()),
            disabled: spec
                .disabled
                .as_deref()
                .map(DisabledRule::parse)
                .transpose()?,
            page_size: i32::try_from(spec.page_size.unwrap_or(500).clamp(1, 10_000)).unwrap_or(500),
            full_scan,
        })
    }

    async fn connect(&self) -> SyncResult<ldap3::Ldap> {
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
        ldap.with_timeout(Duration::from_secs(120));
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
            // ldap3 panics on BER it cannot parse: a broken answer is this read's error.
            let entry = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                SearchEntry::construct(raw)
            }))
            .map_err(|_| {
                SyncError::Source("the directory sent an entry that cannot be parsed".into())
            })?;
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

    /// `entryUUID` as text, or AD's binary `objectGUID` as its usual GUID string.
    fn id_of(&self, e: &SearchEntry) -> Option<String> {
        let a = &self.id_attribute;
        if let Some(v) = e
            .bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(a))
            .and_then(|(_, v)| v.first())
        {
            return uuid::Uuid::from_slice_le(v)
                .ok()
                .map(|u| u.hyphenated().to_string());
        }
        e.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(a))
            .and_then(|(_, v)| v.first())
            .map(|v| v.to_ascii_lowercase())
    }

    fn user_attrs(&self) -> Vec<&str> {
        let mut v = vec!["*", "modifyTimestamp", self.id_attribute.as_str()];
        if let Some(d) = &self.disabled {
            v.push(d.attribute());
        }
        v
    }
}

/// A TLS client that trusts the certificates of a PEM file (the directory's CA).
fn tls_config(path: &std::path::Path) -> SyncResult<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let bad = |e: &dyn std::fmt::Display| {
        SyncError::Job(format!("source.tls_ca_file {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no PEM certificate in the file"));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(&e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn ldap_error(what: &str, e: &ldap3::LdapError) -> SyncError {
    SyncError::Source(format!("LDAP: {what}: {e}"))
}

struct Entry {
    dn: String,
    id: String,
    attrs: HashMap<String, Vec<String>>,
}

impl Entry {
    fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }
}

/// DNs compare without case and without spaces around separators (RFC 4514 §2 allows
/// both spellings).
fn norm_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' || c == '=' {
            while out.ends_with(' ') {
                out.pop();
            }
            out.push(c);
            while chars.peek() == Some(&' ') {
                chars.next();
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Who is who: DN and uid to source id, for memberships.
#[derive(Default)]
struct Directory {
    by_dn: HashMap<String, String>,
    by_uid: HashMap<String, String>,
}

impl Directory {
    fn add(&mut self, e: &Entry) {
        self.by_dn.insert(norm_dn(&e.dn), e.id.clone());
        for uid in e.values("uid") {
            self.by_uid.insert(uid.to_lowercase(), e.id.clone());
        }
    }

    fn members(&self, g: &Entry) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for dn in g.values("member").iter().chain(g.values("uniqueMember")) {
            // groupOfUniqueNames may append `#'0101'B` (an optional unique id) to the DN.
            let dn = dn.rsplit_once('#').map_or(dn.as_str(), |(d, _)| d);
            if let Some(id) = self.by_dn.get(&norm_dn(dn)) {
                out.push(id.clone());
            }
        }
        for uid in g.values("memberUid") {
            if let Some(id) = self.by_uid.get(&uid.to_lowercase()) {
                out.push(id.clone());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// `20261202151500Z` (GeneralizedTime as LDAP servers send it), comparable as text.
fn newest(entries: &[Entry], seen: Option<String>) -> Option<String> {
    entries
        .iter()
        .filter_map(|e| e.values("modifyTimestamp").first().cloned())
        .chain(seen)
        .max()
}

impl LdapSource {
    fn object(&self, kind: ObjectKind, e: &Entry, dir: &Directory) -> SourceObject {
        let mut attributes = Map::new();
        for (k, v) in &e.attrs {
            let value = match v.as_slice() {
                [one] => Value::String(one.clone()),
                many => Value::Array(many.iter().cloned().map(Value::String).collect()),
            };
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
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let since = watermark
            .and_then(|w| w.get("since"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let full_at = watermark
            .and_then(|w| w.get("full_at"))
            .and_then(Value::as_i64);
        let incremental = match (&since, full_at) {
            (Some(s), Some(f)) if now - f < self.full_scan.whole_seconds() => Some(s.clone()),
            _ => None,
        };
        let id = self.id_attribute.as_str();
        let mut dir = Directory::default();
        let (users, groups, present) = match &incremental {
            None => {
                let users = self
                    .search(&mut ldap, &self.user_filter, &self.user_attrs())
                    .await?;
                let groups = self
                    .search(&mut ldap, &self.group_filter, &["*", "modifyTimestamp", id])
                    .await?;
                (users, groups, None)
            }
            Some(since) => {
                // Every id (to find deletes) and every DN (to resolve memberships), then
                // the entries changed since the last read.
                let all_users = self
                    .search(&mut ldap, &self.user_filter, &[id, "uid"])
                    .await?;
                let all_groups = self.search(&mut ldap, &self.group_filter, &[id]).await?;
                let mut present = HashSet::new();
                for e in &all_users {
                    dir.add(e);
                    present.insert((ObjectKind::User, e.id.clone()));
                }
                for e in &all_groups {
                    dir.add(e);
                    present.insert((ObjectKind::Group, e.id.clone()));
                }
                let changed = |f: &str| format!("(&{f}(modifyTimestamp>={since}))");
                let users = self
                    .search(&mut ldap, &changed(&self.user_filter), &self.user_attrs())
                    .await?;
                let groups = self
                    .search(
                        &mut ldap,
                        &changed(&self.group_filter),
                        &["*", "modifyTimestamp", id],
                    )
                    .await?;
                (users, groups, Some(present))
            }
        };
        let _ = ldap.unbind().await;
        for e in users.iter().chain(&groups) {
            dir.add(e);
        }
        let mut objects: Vec<SourceObject> = users
            .iter()
            .map(|e| self.object(ObjectKind::User, e, &dir))
            .collect();
        objects.extend(
            groups
                .iter()
                .map(|e| self.object(ObjectKind::Group, e, &dir)),
        );
        let seen = newest(&users, newest(&groups, since));
        let full_at = if incremental.is_none() {
            now
        } else {
            full_at.unwrap_or(now)
        };
        Ok(SourceBatch {
            full: incremental.is_none(),
            objects,
            deleted: Vec::new(),
            present,
            watermark: Some(json!({"since": seen, "full_at": full_at})),
        })
    }

    fn describe(&self) -> String {
        format!("LDAP {} ({})", self.url, self.base_dn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_rules() {
        let attrs = |k: &str, v: &str| HashMap::from([(k.to_string(), vec![v.to_string()])]);
        let cases = [
            (
                "userAccountControl&2",
                attrs("userAccountControl", "514"),
                true,
            ),
            (
                "userAccountControl&2",
                attrs("userAccountControl", "512"),
                false,
            ),
            (
                "pwdAccountLockedTime",
                attrs("pwdAccountLockedTime", "000001010000Z"),
                true,
            ),
            ("pwdAccountLockedTime", attrs("cn", "x"), false),
            (
                "employeeType=disabled",
                attrs("employeetype", "Disabled"),
                true,
            ),
            (
                "employeeType=disabled",
                attrs("employeeType", "staff"),
                false,
            ),
            ("nsAccountLock", attrs("nsAccountLock", "FALSE"), false),
        ];
        for (rule, a, want) in cases {
            assert_eq!(
                DisabledRule::parse(rule).map(|r| r.disabled(&a)).ok(),
                Some(want),
                "{rule}"
            );
        }
        assert!(DisabledRule::parse("&2").is_err());
        assert!(DisabledRule::parse("uac&x").is_err());
    }

    #[test]
    fn dns_compare_loosely() {
        assert_eq!(
            norm_dn("CN=Ada Lovelace, OU=People ,DC=example,dc=com"),
            norm_dn("cn=ada lovelace,ou=people,dc=example,dc=com")
        );
    }
}
