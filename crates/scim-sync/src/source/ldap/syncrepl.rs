//! Change detection by syncrepl (RFC 4533, refreshOnly): a cookie per filter in the
//! watermark; the first read and every `full_scan` read everything, later ones what changed
//! and what was deleted (the delete phase) or what is still present (the present phase).

use super::entry::{Directory, Entry, ldap_error, parsed};
use super::{LdapSource, Mark, OPERATION_TIMEOUT};
use crate::error::{SyncError, SyncResult};
use crate::model::ObjectKind;
use crate::source::SourceBatch;
use ldap3::{Scope, SearchEntry};
use std::collections::{HashMap, HashSet};

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

pub(super) fn cookie_text(c: &Option<Vec<u8>>) -> Option<String> {
    use base64::Engine as _;
    c.as_ref()
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
}

fn cookie_bytes(t: Option<&str>) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let t = t?;
    base64::engine::general_purpose::STANDARD.decode(t).ok()
}

impl LdapSource {
    /// Whether this cycle uses syncrepl: asked for, or (`auto`) offered by the server in its
    /// root DSE's `supportedControl` and the id is entryUUID (the id syncrepl reports).
    pub(super) async fn syncrepl_offered(&self, ldap: &mut ldap3::Ldap) -> SyncResult<bool> {
        match self.change_detection {
            super::ChangeDetection::Syncrepl => return Ok(true),
            super::ChangeDetection::Poll => return Ok(false),
            super::ChangeDetection::Auto => {}
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
    pub(super) async fn read_syncrepl(
        &self,
        ldap: &mut ldap3::Ldap,
        mark: Option<&Mark>,
        now: i64,
    ) -> SyncResult<Option<SourceBatch>> {
        let (users_cookie, groups_cookie, full_at) = match mark {
            Some(Mark::Syncrepl {
                users,
                groups,
                full_at,
            }) => (users.as_deref(), groups.as_deref(), Some(*full_at)),
            _ => (None, None, None),
        };
        let mut fresh = full_at.is_none_or(|f| now - f >= self.full_scan.whole_seconds());
        let group_attrs = ["*", "modifyTimestamp", self.id_attribute.as_str()];
        let (users, groups) = loop {
            let cookie = |c: Option<&str>| if fresh { None } else { cookie_bytes(c) };
            let users = self
                .sync_search(
                    ldap,
                    &self.user_filter,
                    &self.user_attrs(),
                    cookie(users_cookie),
                )
                .await?;
            let groups = match users {
                SyncAnswer::Read(_) => {
                    self.sync_search(
                        ldap,
                        &self.group_filter,
                        &group_attrs,
                        cookie(groups_cookie),
                    )
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
        let managed = users
            .changed
            .iter()
            .any(|e| !e.values("manager").is_empty());
        if !fresh && (!groups.changed.is_empty() || managed) {
            // A changed group names members, a changed user its manager, by DN or uid,
            // changed or not: resolve them all.
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
        let watermark = Mark::Syncrepl {
            users: cookie_text(&users.cookie),
            groups: cookie_text(&groups.cookie),
            full_at: if fresh { now } else { full_at.unwrap_or(now) },
        };
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
}
