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

/// `COLS` and, for users read with their relations, their groups: one statement reads a
/// user and the groups it is directly in (a lookup or a PATCH answer needs no second query).
/// The groups column is a JSON array of `[id, displayName]` in [`groups_of`]'s order, read by
/// [`groups_from`].
fn cols(db: &Conn<'_>, kind: ResourceKind, related: bool) -> String {
    if !(related && kind == ResourceKind::User) {
        return COLS.to_string();
    }
    let groups = match db {
        Conn::Pg(_) => {
            "SELECT json_agg(json_build_array(g.id, g.unique_name) \
             ORDER BY g.unique_name_ci, g.seq)::text"
        }
        Conn::Lite(_) => {
            "SELECT json_group_array(json_array(g.id, g.unique_name) \
             ORDER BY g.unique_name_ci, g.seq)"
        }
    };
    format!(
        "{COLS}, ({groups} FROM group_members gm JOIN resources g ON g.seq = gm.group_seq \
         WHERE gm.member_seq = r.seq)"
    )
}

/// The groups column of [`cols`] (NULL or `[]` when the user is in none).
fn groups_from(row: &Row) -> Result<Vec<GroupRef>, StoreError> {
    let Some(json) = row.opt_text(7)? else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(String, Option<String>)> = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("a user's groups: {e}")))?;
    Ok(pairs
        .into_iter()
        .map(|(value, display)| GroupRef {
            value,
            display: display.unwrap_or_default(),
        })
        .collect())
}

/// A row of [`cols`]: the resource, with its groups when the statement read them.
fn resource_from_cols(
    row: &Row,
    kind: ResourceKind,
    related: bool,
) -> Result<(i64, StoredResource), StoreError> {
    let (seq, mut r) = resource_from(row)?;
    if related && kind == ResourceKind::User {
        r.groups = Some(groups_from(row)?);
    }
    Ok((seq, r))
}

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
            groups: None,
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

/// Whether a user's write leaves its email rows as they are: they are derived from the body
/// (`IndexedFields::from_body`), so the current body says what they hold. Most IdP updates
/// (an Okta PUT of the whole user, an Entra PATCH of a title) do not touch the emails, and
/// deleting and re-inserting the same rows costs two index entries each.
fn emails_unchanged(cur: &StoredResource, write: &Write) -> bool {
    IndexedFields::from_body(cur.kind, &cur.body).emails == write.fields.emails
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
async fn add_member_id(
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
        // A user just created is in no group (its id is new).
        groups: (kind == ResourceKind::User).then(Vec::new),
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

/// `, ev AS (INSERT …)`: the event's row as a CTE, inserted when `condition` holds (`TRUE`:
/// always), its values bound after `args`.
fn event_cte(args: &mut Vec<Arg>, e: &Event, condition: &str) -> String {
    let first = args.len() + 1;
    args.extend(event_args(e));
    let values: Vec<String> = (first..=args.len()).map(|i| format!("${i}")).collect();
    format!(
        ", ev AS (INSERT INTO provisioning_events ({INSERT_COLUMNS}) SELECT {} WHERE {condition})",
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
        sql += &event_cte(&mut args, e, "TRUE");
    }
    sql += " SELECT seq FROM r";
    db.fetch(&sql, &args)
        .await
        .map_err(|e| e.unique_as(unique_message(kind, write)))?
        .first()
        .ok_or_else(|| StoreError::Corrupt("INSERT returned no row".into()))?;
    Ok(stored)
}

/// One create of a batch ([`create_many`]): a resource without members to resolve.
pub(crate) struct NewResource {
    pub tenant_id: i64,
    pub kind: ResourceKind,
    pub id: String,
    pub write: Write,
    pub now: Timestamp,
}

/// `unnest($n::type[], …)` of the rows' columns, bound after `args` (PostgreSQL).
fn unnest(args: &mut Vec<Arg>, rows: Vec<Vec<Arg>>) -> String {
    let params: Vec<String> = Arg::columns(rows)
        .into_iter()
        .map(|(col, ty)| {
            args.push(col);
            format!("${}::{ty}", args.len())
        })
        .collect();
    format!("unnest({})", params.join(", "))
}

/// Inserts several resources, their email rows and their log events in one PostgreSQL
/// statement of fixed text (the rows go as one array per column): the group commit of
/// `create_batcher.rs`. The rows are the same as [`create_in_one_statement`]'s. A resource a
/// unique index refuses (its userName is taken, or taken by another of the batch) is skipped
/// with its emails and event (`ON CONFLICT DO NOTHING`): its answer is `None`, and the
/// caller creates it alone to learn why.
pub(crate) async fn create_many(
    db: &mut Conn<'_>,
    items: &[NewResource],
) -> Result<Vec<Option<StoredResource>>, StoreError> {
    let (mut rows, mut emails, mut events, mut answers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for NewResource {
        tenant_id,
        kind,
        id,
        write,
        now,
    } in items
    {
        rows.push(insert_args(*tenant_id, *kind, id, write, *now)?);
        let key = || {
            vec![
                Arg::Int(*tenant_id),
                Arg::Text(kind.as_str().into()),
                Arg::Text(id.clone()),
            ]
        };
        for e in &write.fields.emails {
            let mut row = key();
            row.push(Arg::Text(e.clone()));
            emails.push(row);
        }
        let no_members = (*kind == ResourceKind::Group).then(Vec::new);
        let (stored, event) = created(
            *tenant_id,
            *kind,
            id,
            write,
            *now,
            (no_members, MemberDiff::default()),
        );
        if let Some(e) = event {
            let mut row = key();
            row.extend(event_args(&e));
            events.push(row);
        }
        answers.push(stored);
    }
    let mut args = Vec::new();
    let mut sql = format!(
        "WITH r AS (INSERT INTO resources (tenant_id, kind, id, body, unique_name, \
         unique_name_ci, display_name, display_name_ci, external_id, active, created_at, \
         modified_at, version) SELECT i.*, i.at, 1 FROM {} AS i(tenant_id, kind, id, body, \
         unique_name, unique_name_ci, display_name, display_name_ci, external_id, active, at) \
         ON CONFLICT DO NOTHING RETURNING seq, tenant_id, kind, id)",
        unnest(&mut args, rows)
    );
    // An email or event row joins the resource row that was inserted.
    let joined = "JOIN r ON r.tenant_id = x.t AND r.kind = x.k AND r.id = x.id";
    if !emails.is_empty() {
        sql += &format!(
            ", em AS (INSERT INTO resource_emails (tenant_id, resource_seq, value_ci) \
             SELECT r.tenant_id, r.seq, x.v FROM {} AS x(t, k, id, v) {joined})",
            unnest(&mut args, emails)
        );
    }
    if !events.is_empty() {
        let columns: Vec<String> = (1..=INSERT_COLUMNS.split(',').count())
            .map(|i| format!("x.c{i}"))
            .collect();
        sql += &format!(
            ", ev AS (INSERT INTO provisioning_events ({INSERT_COLUMNS}) SELECT {} \
             FROM {} AS x(t, k, id, {}) {joined})",
            columns.join(", "),
            unnest(&mut args, events),
            columns
                .iter()
                .map(|c| &c[2..])
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    sql += " SELECT tenant_id, kind, id FROM r";
    let mut inserted = HashSet::new();
    for row in db.fetch(&sql, &args).await? {
        inserted.insert((row.int(0)?, row.text(1)?, row.text(2)?));
    }
    Ok(answers
        .into_iter()
        .zip(items)
        .map(|(stored, item)| {
            let key = (
                item.tenant_id,
                item.kind.as_str().to_string(),
                item.id.clone(),
            );
            inserted.contains(&key).then_some(stored)
        })
        .collect())
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

/// The resource by id, with a user's groups when `related` (a group's members are read by
/// the caller); `lock` is appended (a row lock on PostgreSQL, or nothing).
async fn fetch_resource(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    related: bool,
    lock: &str,
) -> Result<Option<(i64, StoredResource)>, StoreError> {
    let sql = format!(
        "SELECT {} FROM resources r WHERE r.tenant_id = $1 AND r.kind = $2 AND r.id = $3{lock}",
        cols(db, kind, related)
    );
    let args = [
        Arg::Int(tenant_id),
        Arg::Text(kind.as_str().into()),
        Arg::Text(id.into()),
    ];
    match db.fetch_optional(&sql, &args).await? {
        Some(row) => Ok(Some(resource_from_cols(&row, kind, related)?)),
        None => Ok(None),
    }
}

pub(crate) async fn get(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    related: bool,
) -> Result<Option<StoredResource>, StoreError> {
    let Some((seq, mut r)) = fetch_resource(db, tenant_id, kind, id, related, "").await? else {
        return Ok(None);
    };
    if related && kind == ResourceKind::Group {
        r.members = Some(load_members(db, seq).await?);
    }
    Ok(Some(r))
}

/// The modifier of [`modify`]: the write to make of the current resource.
type ModifierFn = dyn Fn(&StoredResource) -> CoreResult<Write> + Send + Sync;

/// Read-modify-write under the row lock (`for_update` on PostgreSQL; SQLite's single writer
/// on SQLite). A modifier error aborts with nothing written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn modify(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    related: bool,
    modifier: &ModifierFn,
    now: Timestamp,
) -> Result<Option<StoredResource>, StoreError> {
    let lock = db.for_update();
    let Some((seq, mut cur)) = fetch_resource(db, tenant_id, kind, id, related, lock).await? else {
        return Ok(None);
    };
    let with_members = related && kind == ResourceKind::Group;
    if with_members {
        cur.members = Some(load_members(db, seq).await?);
    }
    let mut write = modifier(&cur).map_err(StoreError::Domain)?;
    let now = now.max(cur.modified_at);
    if kind == ResourceKind::User && matches!(db, Conn::Pg(_)) {
        // Under the lock the version cannot have moved on.
        return match write_user(db, tenant_id, seq, cur, write, now).await? {
            Some(stored) => Ok(Some(stored)),
            None => Err(StoreError::Internal(
                "a locked user row changed before its write".into(),
            )),
        };
    }
    let mut args = vec![Arg::Text(body_text(&write)?)];
    args.extend(fields_args(&write.fields));
    args.push(Arg::ts(now));
    args.push(Arg::Int(seq));
    if kind == ResourceKind::User && !emails_unchanged(&cur, &write) {
        write_emails(db, tenant_id, seq, &write.fields.emails, true).await?;
    }
    // The member rows first (the row is locked): the event needs their diff, and on
    // PostgreSQL the row and its event are then written by one statement.
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
    let stored = modified(cur, std::mem::take(&mut write.body), now, members);
    let event = logged(tenant_id, now, &write, &stored, diff);
    let unique = |e: StoreError| e.unique_as(unique_message(kind, &write));
    match (&event, matches!(db, Conn::Pg(_))) {
        (Some(e), true) => {
            let mut sql = format!("WITH u AS ({UPDATE_RESOURCE} RETURNING seq)");
            sql += &event_cte(&mut args, e, "EXISTS (SELECT 1 FROM u)");
            sql += " SELECT COUNT(*) FROM u";
            db.fetch_one(&sql, &args).await.map_err(unique)?;
        }
        _ => {
            db.exec(UPDATE_RESOURCE, &args).await.map_err(unique)?;
            if let Some(e) = &event {
                insert_event(db, e).await?;
            }
        }
    }
    Ok(Some(stored))
}

/// The resource as a modification leaves it (its groups are not changed by one).
fn modified(
    cur: StoredResource,
    body: serde_json::Value,
    now: Timestamp,
    members: Option<Vec<Member>>,
) -> StoredResource {
    StoredResource {
        body,
        modified_at: now,
        version: cur.version + 1,
        members,
        ..cur
    }
}

/// How often [`modify_user_unlocked`] reads and writes before it gives up to the row lock.
const UNLOCKED_ATTEMPTS: usize = 3;

/// The outcome of [`modify_user_unlocked`].
pub(crate) enum Unlocked {
    /// Written (`Some`), or the user does not exist (`None`).
    Done(Option<StoredResource>),
    /// Other writes to the same user won every attempt: take the row lock ([`modify`]).
    Contended,
}

/// A user's PATCH or PUT on PostgreSQL without a transaction or a row lock: read the user
/// (with its groups, for the answer), run the modifier, and write only if the row is still
/// at the version read: two statements, two round trips, where `BEGIN`, the locked read, the
/// write and `COMMIT` take four. When another write got in between, the whole step is
/// retried on the new version (the modifier runs again, so `If-Match` is checked against it).
pub(crate) async fn modify_user_unlocked(
    db: &mut Conn<'_>,
    tenant_id: i64,
    id: &str,
    related: bool,
    modifier: &ModifierFn,
    now: Timestamp,
) -> Result<Unlocked, StoreError> {
    let kind = ResourceKind::User;
    for _ in 0..UNLOCKED_ATTEMPTS {
        let Some((seq, cur)) = fetch_resource(db, tenant_id, kind, id, related, "").await? else {
            return Ok(Unlocked::Done(None));
        };
        let write = modifier(&cur).map_err(StoreError::Domain)?;
        let now = now.max(cur.modified_at);
        if let Some(stored) = write_user(db, tenant_id, seq, cur, write, now).await? {
            return Ok(Unlocked::Done(Some(stored)));
        }
    }
    Ok(Unlocked::Contended)
}

/// Writes a user's row, its email rows and its log event in one PostgreSQL statement, only
/// if the row is still at `cur.version` (a single statement is atomic and durable when it
/// returns; under `READ COMMITTED` the `UPDATE` re-reads a row changed concurrently and
/// skips it if the version moved). `None` when it moved: nothing was written.
async fn write_user(
    db: &mut Conn<'_>,
    tenant_id: i64,
    seq: i64,
    cur: StoredResource,
    mut write: Write,
    now: Timestamp,
) -> Result<Option<StoredResource>, StoreError> {
    let mut args = vec![Arg::Text(body_text(&write)?)];
    args.extend(fields_args(&write.fields));
    args.push(Arg::ts(now));
    args.push(Arg::Int(seq)); // $9
    args.push(Arg::Int(tenant_id)); // $10
    args.push(Arg::Int(cur.version)); // $11
    let mut sql = format!("WITH u AS ({UPDATE_RESOURCE} AND version = $11 RETURNING seq)");
    let f = &write.fields;
    let rewrite_emails = !emails_unchanged(&cur, &write);
    if rewrite_emails {
        sql += ", ed AS (DELETE FROM resource_emails WHERE resource_seq = $9 AND EXISTS (SELECT 1 FROM u))";
    }
    if rewrite_emails && !f.emails.is_empty() {
        sql += &format!(
            ", ei AS (INSERT INTO resource_emails (tenant_id, resource_seq, value_ci) \
             SELECT $10, u.seq, e.v FROM u, {})",
            email_values(&mut args, &f.emails)
        );
    }
    // Written out above; the answer takes it (the event reads the fields and the log).
    let stored = modified(cur, std::mem::take(&mut write.body), now, None);
    if let Some(e) = logged(tenant_id, now, &write, &stored, MemberDiff::default()) {
        sql += &event_cte(&mut args, &e, "EXISTS (SELECT 1 FROM u)");
    }
    sql += " SELECT COUNT(*) FROM u";
    let written = db
        .fetch_one(&sql, &args)
        .await
        .map_err(|e| e.unique_as(unique_message(ResourceKind::User, &write)))?
        .int(0)?;
    Ok((written == 1).then_some(stored))
}

pub(crate) async fn delete(
    db: &mut Conn<'_>,
    tenant_id: i64,
    kind: ResourceKind,
    id: &str,
    log: Option<&LogEntry>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let Some((seq, last)) = fetch_resource(db, tenant_id, kind, id, false, "").await? else {
        return Ok(false);
    };
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
                "SELECT {} FROM resources r WHERE {where_sql} ORDER BY {order} LIMIT {l} OFFSET {o}",
                cols(db, kind, q.related)
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
        let (seq, mut r) = resource_from_cols(row, kind, q.related)?;
        if q.related && kind == ResourceKind::Group {
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
    // Users' groups are not read here: every scanned row would pay for them; the page's are
    // read by the caller (`groups_of`).
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
            if !q.related {
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
