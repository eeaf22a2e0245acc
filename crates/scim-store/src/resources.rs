//! Resource rows, email rows, membership rows; list queries with SQL pushdown and the
//! in-memory fallback.
//!
//! The logic is written once over [`Db`] and runs on both engines: inside a sqlx transaction
//! (PostgreSQL) or inside the SQLite writer's group-commit transaction / on a SQLite reader
//! (`sqlite_engine.rs`). The caller owns the transaction: every function here either
//! completes or returns an error, after which the caller rolls back.

use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::events::{INSERT_COLUMNS, event_args, insert_event, success_event};
use crate::sql_filter::{Arg, SqlBuf, prefilter, sort_column, to_sql};
use scim_core::change::{ChangeRecord, ChangedResource};
use scim_core::event::Event;
use scim_core::resource::fold;
use scim_core::{
    CoreResult, IndexedFields, LogEntry, Member, MemberOp, Query, QueryResult, ResourceKind,
    StoredResource, Timestamp, Write,
};
use scim_proto::ScimError;
use scim_proto::cursor::Cursor;
use scim_proto::render::{GroupRef, member_matches};
use scim_proto::schema::standard_view;
use scim_proto::sort::{SortKey, compare_keys, sort_key};
use std::collections::{HashMap, HashSet};

/// Column order read by [`resource_from`].
const COLS: &str = "r.seq, r.id, r.kind, r.body, r.created_at, r.modified_at, r.version";

fn resource_from(row: &Row) -> Result<(i64, StoredResource), StoreError> {
    let kind = row.text(2)?;
    let body = row.text(3)?;
    Ok((
        row.int(0)?,
        StoredResource {
            kind: ResourceKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("resource kind '{kind}'")))?,
            id: row.text(1)?,
            body: serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("resource body: {e}")))?,
            created_at: row.ts(4)?,
            modified_at: row.ts(5)?,
            version: row.int(6)?,
            members: None,
        },
    ))
}

fn unique_message(kind: ResourceKind, write: &Write) -> String {
    let name = write.fields.unique_name.clone().unwrap_or_default();
    match kind {
        ResourceKind::User => format!("userName '{name}' is already taken in this tenant"),
        ResourceKind::Group => {
            format!("a group with displayName '{name}' already exists in this tenant")
        }
    }
}

async fn load_members(db: &mut Conn<'_>, group_seq: i64) -> Result<Vec<Member>, StoreError> {
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

async fn write_emails(
    db: &mut Conn<'_>,
    tenant_id: i64,
    seq: i64,
    emails: &[String],
    replace: bool,
) -> Result<(), StoreError> {
    if replace {
        db.exec(
            "DELETE FROM resource_emails WHERE resource_seq = $1",
            &[Arg::Int(seq)],
        )
        .await?;
    }
    for e in emails {
        db.exec(
            "INSERT INTO resource_emails (tenant_id, resource_seq, value_ci) VALUES ($1, $2, $3)",
            &[Arg::Int(tenant_id), Arg::Int(seq), Arg::Text(e.clone())],
        )
        .await?;
    }
    Ok(())
}

/// The net membership change of one write (what the change feed reports): ids added that
/// were not members, ids removed that were; an id removed and added again is neither.
/// Linear in the ids touched (a PUT of a 100,000-member group clears and re-adds them all).
#[derive(Debug, Default)]
struct MemberDiff {
    added: Vec<String>,
    removed: Vec<String>,
    /// Which entries of `added` / `removed` still stand.
    live_added: HashSet<String>,
    live_removed: HashSet<String>,
}

impl MemberDiff {
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

async fn remove_member_ids(
    db: &mut Conn<'_>,
    tenant_id: i64,
    group_seq: i64,
    ids: &[String],
    diff: &mut MemberDiff,
) -> Result<(), StoreError> {
    for id in ids {
        let n = db
            .exec(
                "DELETE FROM group_members WHERE group_seq = $1 AND member_seq IN \
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

async fn apply_member_ops(
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
                    let member_seq = db
                        .fetch_optional(
                            "SELECT seq FROM resources WHERE tenant_id = $1 AND id = $2",
                            &[Arg::Int(tenant_id), Arg::Text(id.clone())],
                        )
                        .await?
                        .map(|r| r.int(0))
                        .transpose()?;
                    let Some(member_seq) = member_seq else {
                        return Err(StoreError::Scim(ScimError::invalid_value(format!(
                            "member '{id}' is not a user or group of this tenant"
                        ))));
                    };
                    if member_seq == group_seq {
                        return Err(StoreError::Scim(ScimError::invalid_value(
                            "a group cannot be a member of itself",
                        )));
                    }
                    let n = db
                        .exec(
                            "INSERT INTO group_members (tenant_id, group_seq, member_seq) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                            &[Arg::Int(tenant_id), Arg::Int(group_seq), Arg::Int(member_seq)],
                        )
                        .await?;
                    if n > 0 {
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
fn change_record(r: &StoredResource, diff: MemberDiff) -> ChangeRecord {
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

fn fields_args(f: &scim_core::IndexedFields) -> [Arg; 6] {
    [
        Arg::opt_text(f.unique_name.as_deref()),
        Arg::opt_text(f.unique_name.as_deref().map(fold).as_deref()),
        Arg::opt_text(f.display_name.as_deref()),
        Arg::opt_text(f.display_name.as_deref().map(fold).as_deref()),
        Arg::opt_text(f.external_id.as_deref()),
        Arg::opt_int(f.active.map(i64::from)),
    ]
}

fn body_text(write: &Write) -> Result<String, StoreError> {
    serde_json::to_string(&write.body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The resource row of a modification (`$1`–`$9`, the row's `seq` last).
const UPDATE_RESOURCE: &str = "UPDATE resources SET body = $1, unique_name = $2, \
     unique_name_ci = $3, display_name = $4, display_name_ci = $5, external_id = $6, \
     active = $7, modified_at = $8, version = version + 1 WHERE seq = $9";

/// The resource row of a create: the statement (`$1`–`$11`, `RETURNING seq`) and its values.
const INSERT_RESOURCE: &str = "INSERT INTO resources (tenant_id, kind, id, body, unique_name, \
     unique_name_ci, display_name, display_name_ci, external_id, active, created_at, modified_at, \
     version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1) RETURNING seq";

fn insert_args(
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    write: &Write,
    now: Timestamp,
) -> Result<Vec<Arg>, StoreError> {
    let mut args = vec![
        Arg::Int(tenant_id),
        Arg::Text(kind.as_str().into()),
        Arg::Text(id.into()),
        Arg::Text(body_text(write)?),
    ];
    args.extend(fields_args(&write.fields));
    args.push(Arg::ts(now));
    Ok(args)
}

/// A created resource as the store answers it, and its log event if the write is logged.
fn created(
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    write: &Write,
    now: Timestamp,
    (members, diff): (Option<Vec<Member>>, MemberDiff),
) -> (StoredResource, Option<Event>) {
    let stored = StoredResource {
        kind,
        id: id.to_string(),
        body: write.body.clone(),
        created_at: now,
        modified_at: now,
        version: 1,
        members,
    };
    let event = logged(tenant_id, now, write, &stored, diff);
    (stored, event)
}

/// The log event of a successful write, if the write is logged.
fn logged(
    tenant_id: i64,
    now: Timestamp,
    write: &Write,
    stored: &StoredResource,
    diff: MemberDiff,
) -> Option<Event> {
    write.log.as_ref().map(|log| {
        success_event(
            tenant_id,
            now,
            log,
            stored.kind.as_str(),
            &stored.id,
            write.fields.unique_name.as_deref(),
            change_record(stored, diff),
        )
    })
}

/// `(VALUES ($n), …)` of the email values, bound after `args` (PostgreSQL statements).
fn email_values(args: &mut Vec<Arg>, emails: &[String]) -> String {
    let values: Vec<String> = emails
        .iter()
        .map(|e| {
            args.push(Arg::Text(e.clone()));
            format!("(${})", args.len())
        })
        .collect();
    format!("(VALUES {}) AS e(v)", values.join(", "))
}

/// `, ev AS (INSERT …)`: the event's row as a CTE, its values bound after `args`.
fn event_cte(args: &mut Vec<Arg>, e: &Event) -> String {
    let first = args.len() + 1;
    args.extend(event_args(e));
    let values: Vec<String> = (first..=args.len()).map(|i| format!("${i}")).collect();
    format!(
        ", ev AS (INSERT INTO provisioning_events ({INSERT_COLUMNS}) VALUES ({}))",
        values.join(", ")
    )
}

/// Inserts a resource, its email rows and its log event in one statement (PostgreSQL, for a
/// resource without members to resolve: a user, or a group created empty): one round trip,
/// no `BEGIN`/`COMMIT`, where [`create`] takes five. The rows are the same as `create`'s.
pub(crate) async fn create_in_one_statement(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    write: &Write,
    now: Timestamp,
) -> Result<StoredResource, StoreError> {
    let mut args = insert_args(tenant_id, kind, id, write, now)?;
    let mut sql = format!("WITH r AS ({INSERT_RESOURCE})");
    let emails = &write.fields.emails;
    if !emails.is_empty() {
        sql += &format!(
            ", em AS (INSERT INTO resource_emails (tenant_id, resource_seq, value_ci) \
             SELECT $1, r.seq, e.v FROM r, {})",
            email_values(&mut args, emails)
        );
    }
    let no_members = (kind == ResourceKind::Group).then(Vec::new);
    let (stored, event) = created(
        tenant_id,
        kind,
        id,
        write,
        now,
        (no_members, MemberDiff::default()),
    );
    if let Some(e) = &event {
        sql += &event_cte(&mut args, e);
    }
    sql += " SELECT seq FROM r";
    db.fetch(&sql, &args)
        .await
        .map_err(|e| e.unique_as(unique_message(kind, write)))?
        .first()
        .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?;
    Ok(stored)
}

/// Inserts a resource with its email and member rows and its log event.
pub(crate) async fn create(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    write: &Write,
    now: Timestamp,
) -> Result<StoredResource, StoreError> {
    let args = insert_args(tenant_id, kind, id, write, now)?;
    let seq = db
        .fetch(INSERT_RESOURCE, &args)
        .await
        .map_err(|e| e.unique_as(unique_message(kind, write)))?
        .first()
        .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?
        .int(0)?;
    write_emails(db, tenant_id, seq, &write.fields.emails, false).await?;
    let members = if kind == ResourceKind::Group {
        let diff = apply_member_ops(db, tenant_id, seq, &write.member_ops).await?;
        (Some(load_members(db, seq).await?), diff)
    } else {
        (None, MemberDiff::default())
    };
    let (stored, event) = created(tenant_id, kind, id, write, now, members);
    if let Some(e) = &event {
        insert_event(db, e).await?;
    }
    Ok(stored)
}

/// The resource row by id; `lock` is appended (a row lock on PostgreSQL, or nothing).
async fn fetch_resource(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    lock: &str,
) -> Result<Option<Row>, StoreError> {
    db.fetch_optional(
        &format!(
            "SELECT {COLS} FROM resources r WHERE r.tenant_id = $1 AND r.kind = $2 AND r.id = $3{lock}"
        ),
        &[
            Arg::Int(tenant_id),
            Arg::Text(kind.as_str().into()),
            Arg::Text(id.into()),
        ],
    )
    .await
}

pub(crate) async fn get(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    with_members: bool,
) -> Result<Option<StoredResource>, StoreError> {
    let Some(row) = fetch_resource(db, tenant_id, kind, id, "").await? else {
        return Ok(None);
    };
    let (seq, mut r) = resource_from(&row)?;
    if with_members && kind == ResourceKind::Group {
        r.members = Some(load_members(db, seq).await?);
    }
    Ok(Some(r))
}

/// Read-modify-write under the row lock (`for_update` on PostgreSQL; SQLite's single writer
/// on SQLite). A modifier error aborts with nothing written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn modify(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    with_members: bool,
    modifier: &(dyn Fn(&StoredResource) -> CoreResult<Write> + Send + Sync),
    now: Timestamp,
) -> Result<Option<StoredResource>, StoreError> {
    let lock = db.for_update();
    let Some(row) = fetch_resource(db, tenant_id, kind, id, lock).await? else {
        return Ok(None);
    };
    let (seq, mut cur) = resource_from(&row)?;
    let with_members = with_members && kind == ResourceKind::Group;
    if with_members {
        cur.members = Some(load_members(db, seq).await?);
    }
    let mut write = modifier(&cur).map_err(StoreError::Domain)?;
    let now = now.max(cur.modified_at);
    let mut args = vec![Arg::Text(body_text(&write)?)];
    args.extend(fields_args(&write.fields));
    args.push(Arg::ts(now));
    args.push(Arg::Int(seq));
    // Written out above; the answer takes it (the event reads the fields and the log).
    let body = std::mem::take(&mut write.body);
    let f = &write.fields;
    let answer = |members| StoredResource {
        kind,
        id: cur.id,
        body,
        created_at: cur.created_at,
        modified_at: now,
        version: cur.version + 1,
        members,
    };
    if kind == ResourceKind::User && matches!(db, Conn::Pg(_)) {
        // PostgreSQL: the row, its email rows and its event in one statement (one round
        // trip instead of four, while the row is locked).
        let stored = answer(None);
        args.push(Arg::Int(tenant_id));
        let mut sql = format!(
            "WITH u AS ({UPDATE_RESOURCE}), \
             ed AS (DELETE FROM resource_emails WHERE resource_seq = $9)"
        );
        if !f.emails.is_empty() {
            sql += &format!(
                ", ei AS (INSERT INTO resource_emails (tenant_id, resource_seq, value_ci) \
                 SELECT $10, $9, e.v FROM {})",
                email_values(&mut args, &f.emails)
            );
        }
        if let Some(e) = logged(tenant_id, now, &write, &stored, MemberDiff::default()) {
            sql += &event_cte(&mut args, &e);
        }
        sql += " SELECT 1";
        db.exec(&sql, &args)
            .await
            .map_err(|e| e.unique_as(unique_message(kind, &write)))?;
        return Ok(Some(stored));
    }
    db.exec(UPDATE_RESOURCE, &args)
        .await
        .map_err(|e| e.unique_as(unique_message(kind, &write)))?;
    if kind == ResourceKind::User {
        write_emails(db, tenant_id, seq, &f.emails, true).await?;
    }
    let (members, diff) = if kind == ResourceKind::Group {
        let diff = apply_member_ops(db, tenant_id, seq, &write.member_ops).await?;
        let members = if with_members {
            Some(load_members(db, seq).await?)
        } else {
            None
        };
        (members, diff)
    } else {
        (None, MemberDiff::default())
    };
    let stored = answer(members);
    if let Some(e) = logged(tenant_id, now, &write, &stored, diff) {
        insert_event(db, &e).await?;
    }
    Ok(Some(stored))
}

pub(crate) async fn delete(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    log: Option<&LogEntry>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let Some(row) = fetch_resource(db, tenant_id, kind, id, "").await? else {
        return Ok(false);
    };
    let (seq, last) = resource_from(&row)?;
    // Explicit deletes (not only ON DELETE CASCADE) so the outcome does not depend on a
    // connection's foreign_keys setting.
    for sql in [
        "DELETE FROM group_members WHERE member_seq = $1 OR group_seq = $1",
        "DELETE FROM resource_emails WHERE resource_seq = $1",
        "DELETE FROM resources WHERE seq = $1",
    ] {
        db.exec(sql, &[Arg::Int(seq)]).await?;
    }
    if let Some(log) = log {
        // The feed's `*.deleted` carries the resource as it was when deleted.
        let name = IndexedFields::from_body(kind, &last.body).unique_name;
        let change = change_record(&last, MemberDiff::default());
        let e = success_event(
            tenant_id,
            now,
            log,
            kind.as_str(),
            id,
            name.as_deref(),
            change,
        );
        insert_event(db, &e).await?;
    }
    Ok(true)
}

/// A list or search: in SQL when the filter and sort have columns, else in memory (bounded by
/// `memory_scan_max` rows).
/// `known_total`: the caller's cached count of the unfiltered set (SQLite), used instead of a
/// `COUNT(*)` when there is no filter.
pub(crate) async fn query(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    q: &Query,
    memory_scan_max: usize,
    known_total: Option<i64>,
) -> Result<QueryResult, StoreError> {
    let mut buf = SqlBuf::default();
    let t = buf.bind(Arg::Int(tenant_id));
    let k = buf.bind(Arg::Text(kind.as_str().into()));
    let mut where_sql = format!("r.tenant_id = {t} AND r.kind = {k}");
    let mut exact = true;
    if let Some(f) = &q.filter {
        match to_sql(&mut buf, kind, f) {
            Some(s) => where_sql = format!("{where_sql} AND {s}"),
            None => {
                exact = false;
                if let Some(s) = prefilter(&mut buf, kind, f) {
                    where_sql = format!("{where_sql} AND {s}");
                }
            }
        }
    }
    let sort_col = match &q.sort_by {
        Some(p) => match sort_column(kind, p) {
            Some(c) => Some(c),
            None => {
                exact = false;
                None
            }
        },
        None => None,
    };
    if exact {
        let known_total = known_total.filter(|_| q.filter.is_none());
        query_sql(db, kind, q, buf, where_sql, sort_col, known_total).await
    } else {
        query_memory(db, kind, q, buf, where_sql, memory_scan_max).await
    }
}

async fn query_sql(
    db: &mut Conn<'_>,
    kind: ResourceKind,
    q: &Query,
    mut buf: SqlBuf,
    mut where_sql: String,
    sort_col: Option<&str>,
    known_total: Option<i64>,
) -> Result<QueryResult, StoreError> {
    let count_sql = format!("SELECT COUNT(*) FROM resources r WHERE {where_sql}");
    let count_args = buf.args.clone();
    let dir = if q.descending { "DESC" } else { "ASC" };
    let order = match sort_col {
        Some(c) => format!("({c} IS NULL), {c} {dir}, r.seq"),
        None => "r.seq".to_string(),
    };
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
    let (offset, keyset) = match (q.cursor, sort_col) {
        (Some(c), None) => {
            if let Some(after) = Cursor::after(c).map_err(StoreError::Scim)? {
                let p = buf.bind(Arg::Int(after));
                where_sql = format!("{where_sql} AND r.seq > {p}");
            }
            (0, true)
        }
        (Some(c), Some(_)) => (
            i64::try_from(Cursor::offset(c).map_err(StoreError::Scim)?).unwrap_or(i64::MAX),
            false,
        ),
        (None, _) => (i64::try_from(q.offset).unwrap_or(i64::MAX), false),
    };
    let l = buf.bind(Arg::Int(limit.saturating_add(1)));
    let o = buf.bind(Arg::Int(offset));
    let rows = db
        .fetch(
            &format!(
                "SELECT {COLS} FROM resources r WHERE {where_sql} ORDER BY {order} LIMIT {l} OFFSET {o}"
            ),
            &buf.args,
        )
        .await?;
    let more = rows.len() as i64 > limit;
    // A first page that is not full is the whole result: no COUNT(*) (a userName lookup,
    // the IdPs' most frequent request, is one indexed SELECT).
    let total = if let Some(n) = known_total {
        n
    } else if offset == 0 && !more && q.cursor.is_none_or(|c| c.is_none()) {
        rows.len() as i64
    } else {
        db.fetch(&count_sql, &count_args)
            .await?
            .first()
            .ok_or_else(|| StoreError::Corrupt("COUNT returned no row".into()))?
            .int(0)?
    };
    let mut resources = Vec::with_capacity(rows.len());
    let mut last_seq = 0;
    for row in rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let (seq, mut r) = resource_from(row)?;
        if q.with_members && kind == ResourceKind::Group {
            r.members = Some(load_members(db, seq).await?);
        }
        last_seq = seq;
        resources.push(r);
    }
    let next_cursor = match (q.cursor, more) {
        (Some(_), true) if keyset => Some(Cursor::After(last_seq)),
        (Some(_), true) => Some(Cursor::Offset(
            u64::try_from(offset.saturating_add(limit)).unwrap_or(u64::MAX),
        )),
        _ => None,
    };
    Ok(QueryResult {
        resources,
        total: u64::try_from(total).unwrap_or(0),
        next_cursor,
    })
}

async fn query_memory(
    db: &mut Conn<'_>,
    kind: ResourceKind,
    q: &Query,
    buf: SqlBuf,
    where_sql: String,
    memory_scan_max: usize,
) -> Result<QueryResult, StoreError> {
    let rows = db
        .fetch(
            &format!(
                "SELECT {COLS} FROM resources r WHERE {where_sql} ORDER BY r.seq LIMIT {}",
                memory_scan_max + 1
            ),
            &buf.args,
        )
        .await?;
    if rows.len() > memory_scan_max {
        return Err(StoreError::Scim(ScimError::too_many(format!(
            "this filter or sortBy needs more than {memory_scan_max} {}s evaluated in memory; \
             narrow it with an indexed attribute (id, userName, displayName, externalId, \
             active, emails.value, members.value, meta.created, meta.lastModified)",
            kind.as_str()
        ))));
    }
    let mut matched = Vec::new();
    for row in &rows {
        let (seq, mut r) = resource_from(row)?;
        if kind == ResourceKind::Group {
            // The filter or the response may need members.
            r.members = Some(load_members(db, seq).await?);
        }
        if q.filter
            .as_ref()
            .is_none_or(|f| f.matches(&standard_view(kind), &r.to_scim("")))
        {
            matched.push(r);
        }
    }
    if let Some(p) = &q.sort_by {
        let view = standard_view(kind);
        let mut keyed: Vec<(Option<SortKey>, StoredResource)> = matched
            .into_iter()
            .map(|r| (sort_key(&view, &r.to_scim(""), p), r))
            .collect();
        keyed.sort_by(|a, b| compare_keys(&a.0, &b.0, q.descending));
        matched = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = matched.len() as u64;
    let offset = match q.cursor {
        Some(c) => Cursor::offset(c).map_err(StoreError::Scim)?,
        None => q.offset,
    };
    let page: Vec<StoredResource> = matched
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(q.count).unwrap_or(usize::MAX))
        .map(|mut r| {
            if !q.with_members {
                r.members = None;
            }
            r
        })
        .collect();
    let next_cursor = match q.cursor {
        Some(_) if offset + (page.len() as u64) < total => {
            Some(Cursor::Offset(offset + page.len() as u64))
        }
        _ => None,
    };
    Ok(QueryResult {
        resources: page,
        total,
        next_cursor,
    })
}

/// The groups each member is directly in: member id → [(group id, displayName)].
pub(crate) async fn groups_of(
    db: &mut Conn<'_>,
    tenant_id: i64,
    member_ids: &[String],
) -> Result<HashMap<String, Vec<GroupRef>>, StoreError> {
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
    for chunk in member_ids.chunks(500) {
        let mut buf = SqlBuf::default();
        let t = buf.bind(Arg::Int(tenant_id));
        let list: Vec<String> = chunk
            .iter()
            .map(|id| buf.bind(Arg::Text(id.clone())))
            .collect();
        let sql = format!(
            "SELECT m.id AS member_id, g.id AS group_id, g.unique_name AS group_name \
             FROM group_members gm \
             JOIN resources m ON m.seq = gm.member_seq \
             JOIN resources g ON g.seq = gm.group_seq \
             WHERE m.tenant_id = {t} AND m.id IN ({}) ORDER BY g.unique_name_ci, g.seq",
            list.join(", ")
        );
        for r in db.fetch(&sql, &buf.args).await? {
            out.entry(r.text(0)?).or_default().push(GroupRef {
                value: r.text(1)?,
                display: r.opt_text(2)?.unwrap_or_default(),
            });
        }
    }
    Ok(out)
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
