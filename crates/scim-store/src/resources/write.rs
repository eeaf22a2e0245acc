//! Writes: create (alone, in one statement, in a batch), modify (under the row lock or
//! without it, retried on a lost race), delete, and the email rows that follow a user.

use super::*;
use crate::StoreError;
use crate::conn::Conn;
use crate::events::{INSERT_COLUMNS, event_args, insert_event, success_event};
use crate::sql_filter::Arg;
use scim_core::event::Event;
use scim_core::{IndexedFields, LogEntry, Member, ResourceKind, StoredResource, Timestamp, Write};
use std::collections::HashSet;

use super::members::*;
use super::read::{ModifierFn, fetch_resource};

pub(crate) async fn write_emails(
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
pub(crate) fn emails_unchanged(cur: &StoredResource, write: &Write) -> bool {
    IndexedFields::from_body(cur.kind, &cur.body).emails == write.fields.emails
}

pub(crate) fn insert_args(
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
pub(crate) fn created(
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
pub(crate) fn logged(
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
pub(crate) fn email_values(args: &mut Vec<Arg>, emails: &[String]) -> String {
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
pub(crate) fn event_cte(args: &mut Vec<Arg>, e: &Event, condition: &str) -> String {
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
pub(crate) fn unnest(args: &mut Vec<Arg>, rows: Vec<Vec<Arg>>) -> String {
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
pub(crate) fn modified(
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
pub(crate) const UNLOCKED_ATTEMPTS: usize = 3;

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
pub(crate) async fn write_user(
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

/// A user deleted leaves its groups: each is a new version of the group (a client holding
/// the group's ETag must see it change, RFC 7644 §3.14) with its `Remove Members` event in
/// the change feed, as if the member had been removed by a PATCH in the same request.
async fn leave_groups(
    db: &mut Conn<'_>,
    tenant_id: i64,
    member_seq: i64,
    member_id: &str,
    log: Option<&LogEntry>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let groups = db
        .fetch(
            "SELECT g.id FROM group_members gm JOIN resources g ON g.seq = gm.group_seq \
             WHERE gm.member_seq = $1 ORDER BY g.seq",
            &[Arg::Int(member_seq)],
        )
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    if groups.is_empty() {
        return Ok(());
    }
    db.exec(
        "UPDATE resources SET version = version + 1, modified_at = $1 \
         WHERE seq IN (SELECT group_seq FROM group_members WHERE member_seq = $2)",
        &[Arg::ts(now), Arg::Int(member_seq)],
    )
    .await?;
    let Some(log) = log else {
        return Ok(());
    };
    let entry = LogEntry {
        operation: scim_core::Operation::RemoveMembers,
        status: 204,
        ctx: log.ctx.clone(),
    };
    for gid in groups {
        let Some((_, g)) =
            fetch_resource(db, tenant_id, ResourceKind::Group, &gid, false, "").await?
        else {
            continue;
        };
        let name = IndexedFields::from_body(ResourceKind::Group, &g.body).unique_name;
        let change = change_record(&g, MemberDiff::removed(member_id));
        let e = success_event(
            tenant_id,
            now,
            &entry,
            "Group",
            &gid,
            name.as_deref(),
            change,
        );
        insert_event(db, &e).await?;
    }
    Ok(())
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
    if kind == ResourceKind::User {
        leave_groups(db, tenant_id, seq, id, log, now).await?;
    }
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
