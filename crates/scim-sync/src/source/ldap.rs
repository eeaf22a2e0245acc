//! An LDAP directory as the source (OpenLDAP, Active Directory, 389 DS), read with ldap3:
//! simple bind over `ldap://` (optionally StartTLS) or `ldaps://`, paged searches (RFC 2696)
//! for users and groups (groupOfNames / groupOfUniqueNames by member DN, posixGroup by
//! memberUid, AD `group`), a stable id from `entryUUID` (RFC 4530) or AD's binary
//! `objectGUID`, and the disabled state from a configurable attribute.
//!
//! Change detection (docs/sync.md §11), `change_detection = "auto"` by default:
//! - **syncrepl** (RFC 4533, refreshOnly with a cookie per filter kept in the watermark) when
//!   the server offers the control on this database and the id is entryUUID: the first cycle
//!   reads everything and gets the cookies; later cycles get what changed and what was
//!   deleted (the delete phase) or what is still present (the present phase: everything
//!   neither changed nor present is gone). A cookie the server no longer knows
//!   (e-syncRefreshRequired) starts a full read.
//! - **polling** otherwise: the first cycle, and every `full_scan` (24 h), reads everything;
//!   in between a cycle reads the entries whose `modifyTimestamp` is at or after the newest
//!   one seen last time (the server's clock, so no skew), and lists the ids of all users and
//!   groups (one paged search returning only the id) to find the ones that are gone.
//!
//! Either way a delete reaches the target on the next cycle, not after a day.

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
/// The longest wait for an answer of the directory (a bind, each entry of a search); ldap3
/// applies a timeout to the next operation only, so it is set before each.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

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
    /// `auto`, `syncrepl` or `poll`.
    change_detection: String,
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
            change_detection: spec
                .change_detection
                .clone()
                .unwrap_or_else(|| "auto".into()),
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

/// What one syncrepl refresh (RFC 4533 §3.3, refreshOnly) said about one filter.
#[derive(Default)]
struct SyncRead {
    /// Added or modified entries, with their attributes.
    changed: Vec<Entry>,
    /// entryUUIDs the server says are gone (delete phase, or Delete states).
    deleted: Vec<String>,
    /// entryUUIDs unchanged and still there (present phase).
    present: HashSet<String>,
    /// The server ended with `refreshDeletes = FALSE`: it used the present phase, so every
    /// entry neither changed nor present is gone (§3.4).
    present_phase: bool,
    cookie: Option<Vec<u8>>,
}

/// The Sync Request control (RFC 4533 §2.2), as listed in a root DSE's supportedControl.
const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";

enum SyncAnswer {
    Read(SyncRead),
    /// The cookie is too old: read everything again.
    RefreshRequired,
    /// The server lists the control but the database has no syncprov (OpenLDAP lists it
    /// once the module is loaded anywhere): poll instead.
    Unsupported,
}

/// `unavailableCriticalExtension` (RFC 4511 §4.1.9).
const UNAVAILABLE_CRITICAL_EXTENSION: u32 = 12;

/// `e-syncRefreshRequired` (RFC 4533 §2.5): the cookie is too old; read everything again.
const SYNC_REFRESH_REQUIRED: u32 = 4096;

fn uuid_text(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// ldap3 panics on entries, controls and messages it cannot parse: a broken answer is
/// this read's error, not a crash.
fn parsed<T>(f: impl FnOnce() -> T) -> SyncResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        SyncError::Source("LDAP: the directory sent a message that cannot be parsed".into())
    })
}

fn cookie_text(c: &Option<Vec<u8>>) -> Option<String> {
    use base64::Engine as _;
    c.as_ref()
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
}

fn cookie_bytes(w: Option<&Value>, key: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let t = w?.get(key)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(t).ok()
}

impl LdapSource {
    /// Whether this cycle uses syncrepl: asked for, or (`auto`) offered by the server in its
    /// root DSE's `supportedControl` and the id is entryUUID (the id syncrepl reports).
    async fn syncrepl_offered(&self, ldap: &mut ldap3::Ldap) -> SyncResult<bool> {
        match self.change_detection.as_str() {
            "syncrepl" => return Ok(true),
            "poll" => return Ok(false),
            _ => {}
        }
        if !self.id_attribute.eq_ignore_ascii_case("entryUUID") {
            return Ok(false);
        }
        let (entries, _) = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| ldap_error("cannot read the root DSE", &e))?;
        let mut offered = false;
        for raw in entries {
            let e = parsed(|| SearchEntry::construct(raw))?;
            offered |= e
                .attrs
                .get("supportedControl")
                .is_some_and(|v| v.iter().any(|c| c == SYNC_REQUEST_OID));
        }
        Ok(offered)
    }

    /// One refreshOnly sync search.
    async fn sync_search(
        &self,
        ldap: &mut ldap3::Ldap,
        filter: &str,
        attrs: &[&str],
        cookie: Option<Vec<u8>>,
    ) -> SyncResult<SyncAnswer> {
        use ldap3::controls::{
            ControlType, EntryState, MakeCritical, RefreshMode, SyncDone, SyncInfo, SyncRequest,
            SyncState, parse_syncinfo,
        };
        let failed = |e: &ldap3::LdapError| ldap_error(&format!("sync search {filter} failed"), e);
        // A refresh that changes nothing may end without a cookie: the old one stands.
        let mut r = SyncRead {
            cookie: cookie.clone(),
            ..SyncRead::default()
        };
        ldap.with_timeout(OPERATION_TIMEOUT).with_controls(
            SyncRequest {
                mode: RefreshMode::RefreshOnly,
                cookie,
                reload_hint: false,
            }
            .critical(),
        );
        let mut stream = ldap
            .streaming_search(&self.base_dn, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|e| failed(&e))?;
        while let Some(raw) = stream.next().await.map_err(|e| failed(&e))? {
            if raw.is_ref() {
                continue;
            }
            if raw.is_intermediate() {
                match parsed(|| parse_syncinfo(raw))? {
                    SyncInfo::NewCookie(c) => r.cookie = Some(c),
                    SyncInfo::RefreshDelete { cookie, .. }
                    | SyncInfo::RefreshPresent { cookie, .. } => {
                        if cookie.is_some() {
                            r.cookie = cookie;
                        }
                    }
                    SyncInfo::SyncIdSet {
                        cookie,
                        refresh_deletes,
                        sync_uuids,
                    } => {
                        if cookie.is_some() {
                            r.cookie = cookie;
                        }
                        for u in sync_uuids {
                            if refresh_deletes {
                                r.deleted.push(uuid_text(&u));
                            } else {
                                r.present.insert(uuid_text(&u));
                            }
                        }
                    }
                }
                continue;
            }
            let state = raw
                .1
                .iter()
                .find(|c| matches!(c.0, Some(ControlType::SyncState)))
                .map(|c| parsed(|| c.1.parse::<SyncState>()))
                .transpose()?;
            let Some(state) = state else {
                continue; // not a sync answer (a server that ignored the control)
            };
            if state.cookie.is_some() {
                r.cookie = state.cookie.clone();
            }
            let uuid = uuid_text(&state.entry_uuid);
            match state.state {
                EntryState::Present => {
                    r.present.insert(uuid);
                }
                EntryState::Delete => r.deleted.push(uuid),
                EntryState::Add | EntryState::Modify => {
                    let e = parsed(|| SearchEntry::construct(raw))?;
                    let id = self.id_of(&e).unwrap_or(uuid);
                    r.changed.push(Entry {
                        dn: e.dn,
                        id,
                        attrs: e.attrs,
                    });
                }
            }
        }
        let done = stream.finish().await;
        if done.rc == SYNC_REFRESH_REQUIRED {
            return Ok(SyncAnswer::RefreshRequired);
        }
        if done.rc == UNAVAILABLE_CRITICAL_EXTENSION {
            return Ok(SyncAnswer::Unsupported);
        }
        let done = done.success().map_err(|e| failed(&e))?;
        if let Some(c) = done
            .ctrls
            .iter()
            .find(|c| matches!(c.0, Some(ControlType::SyncDone)))
        {
            let d = parsed(|| c.1.parse::<SyncDone>())?;
            if d.cookie.is_some() {
                r.cookie = d.cookie;
            }
            r.present_phase = !d.refresh_deletes;
        }
        Ok(SyncAnswer::Read(r))
    }

    /// A cycle by syncrepl: everything on the first read (or after `full_scan`, or when the
    /// server asks for a refresh), else what changed and what was deleted since the cookies.
    /// `None` when the database does not offer syncrepl after all.
    async fn read_syncrepl(
        &self,
        ldap: &mut ldap3::Ldap,
        watermark: Option<&Value>,
        now: i64,
    ) -> SyncResult<Option<SourceBatch>> {
        let w = watermark.filter(|w| w.get("mode").and_then(Value::as_str) == Some("syncrepl"));
        let full_at = w.and_then(|w| w.get("full_at")).and_then(Value::as_i64);
        let mut fresh = full_at.is_none_or(|f| now - f >= self.full_scan.whole_seconds());
        let group_attrs = ["*", "modifyTimestamp", self.id_attribute.as_str()];
        let (users, groups) = loop {
            let cookie = |k: &str| if fresh { None } else { cookie_bytes(w, k) };
            let users = self
                .sync_search(ldap, &self.user_filter, &self.user_attrs(), cookie("users"))
                .await?;
            let groups = match users {
                SyncAnswer::Read(_) => {
                    self.sync_search(ldap, &self.group_filter, &group_attrs, cookie("groups"))
                        .await?
                }
                _ => SyncAnswer::RefreshRequired,
            };
            match (users, groups) {
                (SyncAnswer::Read(u), SyncAnswer::Read(g)) => break (u, g),
                (SyncAnswer::Unsupported, _) | (_, SyncAnswer::Unsupported) => {
                    return Ok(None);
                }
                _ if fresh => {
                    return Err(SyncError::Source(
                        "LDAP: the directory asked for a refresh of a full read".into(),
                    ));
                }
                _ => fresh = true,
            }
        };
        let mut dir = Directory::default();
        if !fresh && !groups.changed.is_empty() {
            // A changed group names members by DN or uid, changed or not: resolve them all.
            self.scan_ids(ldap, &mut dir, None).await?;
        }
        let mut deleted = Vec::new();
        let mut present = HashMap::new();
        for (kind, r) in [(ObjectKind::User, &users), (ObjectKind::Group, &groups)] {
            deleted.extend(r.deleted.iter().map(|id| (kind, id.clone())));
            if !fresh && r.present_phase {
                let mut ids = r.present.clone();
                ids.extend(r.changed.iter().map(|e| e.id.clone()));
                present.insert(kind, ids);
            }
        }
        let watermark = json!({
            "mode": "syncrepl",
            "users": cookie_text(&users.cookie),
            "groups": cookie_text(&groups.cookie),
            "full_at": if fresh { now } else { full_at.unwrap_or(now) },
        });
        Ok(Some(self.batch(
            users.changed,
            groups.changed,
            dir,
            fresh,
            deleted,
            present,
            watermark,
        )))
    }

    /// Every user's and group's id, DN and uid (memberships; deletes when `present`).
    async fn scan_ids(
        &self,
        ldap: &mut ldap3::Ldap,
        dir: &mut Directory,
        mut present: Option<&mut HashMap<ObjectKind, HashSet<String>>>,
    ) -> SyncResult<()> {
        let id = self.id_attribute.as_str();
        for (kind, filter, attrs) in [
            (ObjectKind::User, &self.user_filter, vec![id, "uid"]),
            (ObjectKind::Group, &self.group_filter, vec![id]),
        ] {
            for e in self.search(ldap, filter, &attrs).await? {
                dir.add(&e);
                if let Some(p) = present.as_deref_mut() {
                    p.entry(kind).or_default().insert(e.id.clone());
                }
            }
        }
        Ok(())
    }

    /// A cycle by `modifyTimestamp`: everything on the first read and every `full_scan`,
    /// else the entries changed since the newest timestamp seen, plus the id scan.
    async fn read_polled(
        &self,
        ldap: &mut ldap3::Ldap,
        watermark: Option<&Value>,
        now: i64,
    ) -> SyncResult<SourceBatch> {
        let w = watermark.filter(|w| w.get("mode").and_then(Value::as_str) != Some("syncrepl"));
        let since = w
            .and_then(|w| w.get("since"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let full_at = w.and_then(|w| w.get("full_at")).and_then(Value::as_i64);
        let incremental = match (&since, full_at) {
            (Some(s), Some(f)) if now - f < self.full_scan.whole_seconds() => Some(s.clone()),
            _ => None,
        };
        let group_attrs = ["*", "modifyTimestamp", self.id_attribute.as_str()];
        let mut dir = Directory::default();
        let mut present = HashMap::new();
        let (users, groups) = match &incremental {
            None => (
                self.search(ldap, &self.user_filter, &self.user_attrs())
                    .await?,
                self.search(ldap, &self.group_filter, &group_attrs).await?,
            ),
            Some(since) => {
                self.scan_ids(ldap, &mut dir, Some(&mut present)).await?;
                let changed = |f: &str| format!("(&{f}(modifyTimestamp>={since}))");
                (
                    self.search(ldap, &changed(&self.user_filter), &self.user_attrs())
                        .await?,
                    self.search(ldap, &changed(&self.group_filter), &group_attrs)
                        .await?,
                )
            }
        };
        let seen = newest(&users, newest(&groups, since));
        let full_at = if incremental.is_none() {
            now
        } else {
            full_at.unwrap_or(now)
        };
        let watermark = json!({"mode": "poll", "since": seen, "full_at": full_at});
        Ok(self.batch(
            users,
            groups,
            dir,
            incremental.is_none(),
            Vec::new(),
            present,
            watermark,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn batch(
        &self,
        users: Vec<Entry>,
        groups: Vec<Entry>,
        mut dir: Directory,
        full: bool,
        deleted: Vec<(ObjectKind, String)>,
        present: HashMap<ObjectKind, HashSet<String>>,
        watermark: Value,
    ) -> SourceBatch {
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
        SourceBatch {
            full,
            objects,
            deleted,
            present,
            watermark: Some(watermark),
        }
    }
}

#[async_trait]
impl Source for LdapSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let mut ldap = self.connect().await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let synced = if self.syncrepl_offered(&mut ldap).await? {
            self.read_syncrepl(&mut ldap, watermark, now).await
        } else {
            Ok(None)
        };
        let batch = match synced {
            Ok(Some(b)) => Ok(b),
            Ok(None) if self.change_detection == "syncrepl" => Err(SyncError::Source(
                "LDAP: change_detection = \"syncrepl\" but the directory refuses the sync control (is the syncprov overlay on this database?)".into(),
            )),
            Ok(None) => self.read_polled(&mut ldap, watermark, now).await,
            Err(e) => Err(e),
        };
        let _ = ldap.unbind().await;
        batch
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

    /// AD's objectGUID is 16 bytes, the first three fields little-endian: its usual text
    /// form is what `Get-ADUser` prints.
    #[test]
    fn object_guid_reads_as_ad_prints_it() {
        let spec = crate::JobSpec::parse(
            "name = \"ad\"\n[source]\nkind = \"ldap\"\nurl = \"ldaps://dc1\"\nbase_dn = \"dc=corp\"\nid = \"objectGUID\"\n[target]\nurl = \"http://x/scim/v2\"\ntoken_env = \"T\"\n",
            None,
        )
        .expect("parses");
        let source = LdapSource::new(&spec.source, None, None).expect("source");
        let guid: Vec<u8> = vec![
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        let entry = SearchEntry {
            dn: "CN=Ada,DC=corp".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::from([("objectGUID".to_string(), vec![guid])]),
        };
        assert_eq!(
            source.id_of(&entry).as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
    }

    #[test]
    fn dns_compare_loosely() {
        assert_eq!(
            norm_dn("CN=Ada Lovelace, OU=People ,DC=example,dc=com"),
            norm_dn("cn=ada lovelace,ou=people,dc=example,dc=com")
        );
    }
}
