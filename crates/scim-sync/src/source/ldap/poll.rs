//! Change detection by polling `modifyTimestamp` (the directory's own clock): the first
//! read and every `full_scan` read everything; in between, the entries changed since the
//! newest timestamp seen, and one id-only scan to resolve memberships and find deletes.

use super::entry::{Directory, Entry, newest};
use super::{LdapSource, Mark};
use crate::error::SyncResult;
use crate::model::{ObjectKind, SourceObject};
use crate::source::{SourceBatch, watermark_value};
use std::collections::{HashMap, HashSet};

impl LdapSource {
    /// Every user's and group's id, DN and uid (memberships; deletes when `present`).
    pub(super) async fn scan_ids(
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
    pub(super) async fn read_polled(
        &self,
        ldap: &mut ldap3::Ldap,
        mark: Option<&Mark>,
        now: i64,
    ) -> SyncResult<SourceBatch> {
        let (since, full_at) = match mark {
            Some(Mark::Poll { since, full_at }) => (since.clone(), Some(*full_at)),
            _ => (None, None),
        };
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
        let watermark = Mark::Poll {
            since: seen,
            full_at,
        };
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
    pub(super) fn batch(
        &self,
        users: Vec<Entry>,
        groups: Vec<Entry>,
        mut dir: Directory,
        full: bool,
        deleted: Vec<(ObjectKind, String)>,
        present: HashMap<ObjectKind, HashSet<String>>,
        watermark: Mark,
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
            watermark: watermark_value(&watermark),
            ..SourceBatch::default()
        }
    }
}
