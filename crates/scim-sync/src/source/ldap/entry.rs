//! What an LDAP read is made of: entries, the directory of who is who (DNs and uids to
//! source ids, for memberships and managers), the disabled rule, and the TLS client.

use crate::error::{SyncError, SyncResult};
use std::collections::HashMap;
use std::sync::Arc;

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
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "source.disabled '{s}': use an attribute (present = disabled), attr=value, or attr&bit (e.g. userAccountControl&2)"
            )
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

    /// The rule as the job file writes it.
    pub fn text(&self) -> String {
        match self {
            Self::Present(a) => a.clone(),
            Self::Equals(a, v) => format!("{a}={v}"),
            Self::Bit(a, b) => format!("{a}&{b}"),
        }
    }

    pub(super) fn attribute(&self) -> &str {
        match self {
            Self::Present(a) | Self::Equals(a, _) | Self::Bit(a, _) => a,
        }
    }

    pub(super) fn disabled(&self, attrs: &HashMap<String, Vec<String>>) -> bool {
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

impl serde::Serialize for DisabledRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> serde::Deserialize<'de> for DisabledRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DisabledRule::parse(&text).map_err(serde::de::Error::custom)
    }
}

pub(super) struct Entry {
    pub dn: String,
    pub id: String,
    pub attrs: HashMap<String, Vec<String>>,
}

impl Entry {
    pub fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }
}

/// DNs compare without case and without spaces around separators (RFC 4514 §2 allows
/// both spellings).
pub(super) fn norm_dn(dn: &str) -> String {
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
pub(super) struct Directory {
    by_dn: HashMap<String, String>,
    by_uid: HashMap<String, String>,
}

impl Directory {
    /// The source id of the entry at `dn` (a manager, a member), if it is a user or group
    /// the source reads.
    pub fn id_of_dn(&self, dn: &str) -> Option<&String> {
        // groupOfUniqueNames may append `#'0101'B` (an optional unique id) to the DN.
        let dn = dn.rsplit_once('#').map_or(dn, |(d, _)| d);
        self.by_dn.get(&norm_dn(dn))
    }
}

impl Directory {
    pub fn add(&mut self, e: &Entry) {
        self.by_dn.insert(norm_dn(&e.dn), e.id.clone());
        for uid in e.values("uid") {
            self.by_uid.insert(uid.to_lowercase(), e.id.clone());
        }
    }

    pub fn members(&self, g: &Entry) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for dn in g.values("member").iter().chain(g.values("uniqueMember")) {
            if let Some(id) = self.id_of_dn(dn) {
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
pub(super) fn newest(entries: &[Entry], seen: Option<String>) -> Option<String> {
    entries
        .iter()
        .filter_map(|e| e.values("modifyTimestamp").first().cloned())
        .chain(seen)
        .max()
}

/// A TLS client that trusts the certificates of a PEM file (the directory's CA).
pub(super) fn tls_config(path: &std::path::Path) -> SyncResult<Arc<rustls::ClientConfig>> {
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

/// `entryUUID` as text, or AD's binary `objectGUID` as its usual GUID string.
pub(super) fn id_of(e: &ldap3::SearchEntry, a: &str) -> Option<String> {
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

pub(super) fn ldap_error(what: &str, e: &ldap3::LdapError) -> SyncError {
    SyncError::Source(format!("LDAP: {what}: {e}"))
}

/// ldap3 panics on entries, controls and messages it cannot parse: a broken answer is
/// this read's error, not a crash.
pub(super) fn parsed<T>(f: impl FnOnce() -> T) -> SyncResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        SyncError::Source("LDAP: the directory sent a message that cannot be parsed".into())
    })
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

    #[test]
    fn managers_and_members_resolve_by_dn() {
        let mut d = Directory::default();
        let e = Entry {
            dn: "uid=boss,ou=People,dc=x".into(),
            id: "u-boss".into(),
            attrs: HashMap::from([("uid".to_string(), vec!["boss".to_string()])]),
        };
        d.add(&e);
        assert_eq!(
            d.id_of_dn("UID=Boss, ou=people,dc=x").map(String::as_str),
            Some("u-boss")
        );
        assert_eq!(
            d.id_of_dn("uid=boss,ou=People,dc=x#'01'B")
                .map(String::as_str),
            Some("u-boss")
        );
        assert_eq!(d.id_of_dn("uid=nobody,dc=x"), None);
    }

    /// AD's objectGUID is 16 bytes, the first three fields little-endian: its usual text
    /// form is what `Get-ADUser` prints.
    #[test]
    fn object_guid_reads_as_ad_prints_it() {
        let guid: Vec<u8> = vec![
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        let entry = ldap3::SearchEntry {
            dn: "CN=Ada,DC=corp".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::from([("objectGUID".to_string(), vec![guid])]),
        };
        assert_eq!(
            id_of(&entry, "objectGUID").as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
    }
}
