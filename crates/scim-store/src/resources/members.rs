//! Membership rows (`group_members`): loading a group's members, adding and removing them,
//! and the net diff of a write (what the change feed says).

use crate::StoreError;
use crate::conn::Conn;
use crate::sql_filter::Arg;
use scim_core::change::{ChangeRecord, ChangedResource};
use scim_core::{Member, MemberOp, ResourceKind, StoredResource};
use scim_proto::ScimError;
use scim_proto::render::member_matches;
use std::collections::HashSet;

pub(crate) async fn load_members(
    db: &mut Conn<'_>,
    group_seq: i64,
) -> Result<Vec<Member>, StoreError> {
    let rows = db
        .fetch(
            "SELECT m.id, m.kind, COALESCE(m.display_name, m.unique_name) AS display \
             FROM group_members gm JOIN resources m ON m.seq = gm.member_seq \
             WHERE gm.group_seq = $1 ORDER BY m.seq",
            &[Arg::Int(group_seq)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let kind = r.text(1)?;
            Ok(Member {
                value: r.text(0)?,
                kind: ResourceKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("member kind '{kind}'")))?,
                display: r.opt_text(2)?,
            })
        })
        .collect()
}

/// The net membership change of one write (what the change feed reports): ids added that
/// were not members, ids removed that were; an id removed and added again is neither.
/// Linear in the ids touched (a PUT of a 100,000-member group clears and re-adds them all).
#[derive(Debug, Default)]
pub(crate) struct MemberDiff {
    added: Vec<String>,
    removed: Vec<String>,
    /// Which entries of `added` / `removed` still stand.
    live_added: HashSet<String>,
    live_removed: HashSet<String>,
}

impl MemberDiff {
    /// One member removed.
    pub(crate) fn removed(id: &str) -> Self {
        let mut d = Self::default();
        d.remove(id);
        d
    }

    fn add(&mut self, id: &str) {
        if !self.live_removed.remove(id) && self.live_added.insert(id.to_string()) {
            self.added.push(id.to_string());
        }
    }

    fn remove(&mut self, id: &str) {
        if !self.live_added.remove(id) && self.live_removed.insert(id.to_string()) {
            self.removed.push(id.to_string());
        }
    }

    /// (added, removed), each in first-touch order, each id once.
    fn finish(mut self) -> (Vec<String>, Vec<String>) {
        self.added.retain(|a| self.live_added.remove(a));
        self.removed.retain(|r| self.live_removed.remove(r));
        (self.added, self.removed)
    }
}

pub(crate) async fn remove_member_ids(
    db: &mut Conn<'_>,
    tenant_id: i64,
    group_seq: i64,
    ids: &[String],
    diff: &mut MemberDiff,
) -> Result<(), StoreError> {
    for id in ids {
        // `member_seq = (scalar subquery)`, not `IN (subquery)`: the member is resolved
        // first and the row is then deleted by its primary key. With `IN`, PostgreSQL's
        // generic plan for this prepared statement (chosen after a few runs on small
        // groups) walked the group's member rows and took 120 ms per remove on a group of
        // 100,000 (docs/performance.md, "Fourth pass").
        let n = db
            .exec(
                "DELETE FROM group_members WHERE group_seq = $1 AND member_seq = \
                 (SELECT seq FROM resources WHERE tenant_id = $2 AND id = $3)",
                &[
                    Arg::Int(group_seq),
                    Arg::Int(tenant_id),
                    Arg::Text(id.clone()),
                ],
            )
            .await?;
        if n > 0 {
            diff.remove(id);
        }
    }
    Ok(())
}

/// Adds one member by its id; `true` if it was not a member yet. A member that is not a
/// resource of the tenant, or the group itself, is refused (the caller's savepoint or
/// transaction drops what the request wrote before).
pub(crate) async fn add_member_id(
    db: &mut Conn<'_>,
    tenant_id: i64,
    group_seq: i64,
    id: &str,
) -> Result<bool, StoreError> {
    let (member_seq, added) = if matches!(db, Conn::Pg(_)) {
        // One round trip: the member resolved and its row inserted in one statement (member
        // PATCHes of one group run one after another in its row batch, so each round trip
        // saved is throughput on that group). The insert skips the group itself; the
        // check below then refuses it.
        let row = db
            .fetch_one(
                "WITH m AS (SELECT seq FROM resources WHERE tenant_id = $1 AND id = $3), \
                 i AS (INSERT INTO group_members (tenant_id, group_seq, member_seq) \
                 SELECT $1, $2, seq FROM m WHERE seq <> $2 ON CONFLICT DO NOTHING RETURNING 1) \
                 SELECT (SELECT seq FROM m), (SELECT COUNT(*) FROM i)",
                &[
                    Arg::Int(tenant_id),
                    Arg::Int(group_seq),
                    Arg::Text(id.to_string()),
                ],
            )
            .await?;
        (row.opt_int(0)?, row.int(1)? > 0)
    } else {
        // SQLite has no data-modifying CTEs; its statements are local calls.
        let member_seq = db
            .fetch_optional(
                "SELECT seq FROM resources WHERE tenant_id = $1 AND id = $2",
                &[Arg::Int(tenant_id), Arg::Text(id.to_string())],
            )
            .await?
            .map(|r| r.int(0))
            .transpose()?;
        let added = match member_seq {
            Some(m) if m != group_seq => {
                db.exec(
                    "INSERT INTO group_members (tenant_id, group_seq, member_seq) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[Arg::Int(tenant_id), Arg::Int(group_seq), Arg::Int(m)],
                )
                .await?
                    > 0
            }
            _ => false,
        };
        (member_seq, added)
    };
    match member_seq {
        None => Err(StoreError::Scim(ScimError::invalid_value(format!(
            "member '{id}' is not a user or group of this tenant"
        )))),
        Some(m) if m == group_seq => Err(StoreError::Scim(ScimError::invalid_value(
            "a group cannot be a member of itself",
        ))),
        Some(_) => Ok(added),
    }
}

pub(crate) async fn apply_member_ops(
    db: &mut Conn<'_>,
    tenant_id: i64,
    group_seq: i64,
    ops: &[MemberOp],
) -> Result<MemberDiff, StoreError> {
    let mut diff = MemberDiff::default();
    for op in ops {
        match op {
            MemberOp::Add(ids) => {
                let mut seen = std::collections::HashSet::new();
                for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                    if add_member_id(db, tenant_id, group_seq, id).await? {
                        diff.add(id);
                    }
                }
            }
            MemberOp::Remove(ids) => {
                remove_member_ids(db, tenant_id, group_seq, ids, &mut diff).await?
            }
            MemberOp::Clear => {
                let ids: Vec<String> = load_members(db, group_seq)
                    .await?
                    .into_iter()
                    .map(|m| m.value)
                    .collect();
                db.exec(
                    "DELETE FROM group_members WHERE group_seq = $1",
                    &[Arg::Int(group_seq)],
                )
                .await?;
                for id in &ids {
                    diff.remove(id);
                }
            }
            MemberOp::RemoveMatching(filter) => {
                let members = load_members(db, group_seq).await?;
                let ids: Vec<String> = members
                    .into_iter()
                    .filter(|m| member_matches(filter, m))
                    .map(|m| m.value)
                    .collect();
                remove_member_ids(db, tenant_id, group_seq, &ids, &mut diff).await?;
            }
        }
    }
    Ok(diff)
}

/// The change-feed record of a write: the resource as stored now, and the member diff.
pub(crate) fn change_record(r: &StoredResource, diff: MemberDiff) -> ChangeRecord {
    let (added, removed) = diff.finish();
    ChangeRecord::new(
        Some(ChangedResource {
            body: r.body.clone(),
            created: r.created_at,
            modified: r.modified_at,
            version: r.version,
        }),
        added,
        removed,
    )
}

#[cfg(test)]
mod member_diff_tests {
    use super::MemberDiff;

    #[test]
    fn net_changes_only() {
        let mut d = MemberDiff::default();
        // A PUT: clear a, b; add b, c, c.
        d.remove("a");
        d.remove("b");
        d.add("b");
        d.add("c");
        d.add("c");
        // Added then removed then added again: one addition.
        d.add("x");
        d.remove("x");
        d.add("x");
        assert_eq!(
            d.finish(),
            (
                vec!["c".to_string(), "x".to_string()],
                vec!["a".to_string()]
            )
        );
    }
}
