//! Reads: one resource, list queries (SQL pushdown, the in-memory fallback) and a user's
//! groups.

use super::*;
use crate::StoreError;
use crate::conn::Conn;
use crate::sql_filter::{Arg, SqlBuf, prefilter, sort_column, to_sql};
use scim_core::{CoreResult, Query, QueryResult, ResourceKind, StoredResource, Write};
use scim_proto::ScimError;
use scim_proto::cursor::Cursor;
use scim_proto::render::GroupRef;
use scim_proto::schema::standard_view;
use scim_proto::sort::{SortKey, compare_keys, sort_key};
use std::collections::HashMap;

use super::members::load_members;

/// The resource by id, with a user's groups when `related` (a group's members are read by
/// the caller); `lock` is appended (a row lock on PostgreSQL, or nothing).
pub(crate) async fn fetch_resource(
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
pub(crate) type ModifierFn = dyn Fn(&StoredResource) -> CoreResult<Write> + Send + Sync;

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

pub(crate) async fn query_sql(
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
    let (mut bytes, mut cut) = (0usize, false);
    for row in rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let (seq, mut r, len) = sized_resource_from_cols(row, kind, q.related)?;
        let members = match q.related && kind == ResourceKind::Group {
            true => Some(load_members(db, seq).await?),
            false => None,
        };
        // The page ends early past its byte budget (never before its first resource): the
        // body, and a group's members as they will be rendered.
        let rendered = members.as_ref().map_or(0, |m| m.len() * MEMBER_BYTES);
        bytes = bytes.saturating_add(len).saturating_add(rendered);
        if !resources.is_empty() && q.max_bytes.is_some_and(|max| bytes > max) {
            cut = true;
            break;
        }
        r.members = members;
        last_seq = seq;
        resources.push(r);
    }
    let taken = i64::try_from(resources.len()).unwrap_or(i64::MAX);
    let next_cursor = match (q.cursor, more || cut) {
        (Some(_), true) if keyset => Some(Cursor::After(last_seq)),
        (Some(_), true) => Some(Cursor::Offset(
            u64::try_from(offset.saturating_add(taken)).unwrap_or(u64::MAX),
        )),
        _ => None,
    };
    Ok(QueryResult {
        resources,
        total: u64::try_from(total).unwrap_or(0),
        next_cursor,
    })
}

/// What one group member takes in a rendered page (`value`, `display`, `type`, `$ref`), for
/// the page's byte budget.
const MEMBER_BYTES: usize = 160;

/// The most resource bytes a filter or sort evaluated in memory may read.
const MEMORY_SCAN_BYTES: usize = 256 << 20;

pub(crate) async fn query_memory(
    db: &mut Conn<'_>,
    kind: ResourceKind,
    q: &Query,
    buf: SqlBuf,
    where_sql: String,
    memory_scan_max: usize,
) -> Result<QueryResult, StoreError> {
    // What the scan would read, measured before it is read: its rows and their bytes.
    let (count, bytes) = match db
        .fetch(
            &format!(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(r.body)), 0) FROM resources r WHERE {where_sql}"
            ),
            &buf.args,
        )
        .await?
        .first()
    {
        Some(row) => (row.int(0)?, row.int(1)?),
        None => (0, 0),
    };
    let too_many = |what: String| {
        StoreError::Scim(ScimError::too_many(format!(
            "this filter or sortBy needs {what} evaluated in memory; narrow it with an indexed \
             attribute (id, userName, displayName, externalId, active, emails.value, \
             members.value, meta.created, meta.lastModified)"
        )))
    };
    if usize::try_from(bytes).unwrap_or(usize::MAX) > MEMORY_SCAN_BYTES {
        return Err(too_many(format!(
            "{} MiB of {}s (more than {} MiB)",
            bytes >> 20,
            kind.as_str(),
            MEMORY_SCAN_BYTES >> 20
        )));
    }
    if usize::try_from(count).unwrap_or(usize::MAX) > memory_scan_max {
        return Err(too_many(format!(
            "more than {memory_scan_max} {}s",
            kind.as_str()
        )));
    }
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
        let (seq, mut r, len) = sized_resource_from_cols(row, kind, false)?;
        if kind == ResourceKind::Group {
            // The filter or the response may need members.
            r.members = Some(load_members(db, seq).await?);
        }
        if q.filter
            .as_ref()
            .is_none_or(|f| f.matches(&standard_view(kind), &r.to_scim("")))
        {
            matched.push((r, len));
        }
    }
    if let Some(p) = &q.sort_by {
        let view = standard_view(kind);
        let mut keyed: Vec<(Option<SortKey>, (StoredResource, usize))> = matched
            .into_iter()
            .map(|r| (sort_key(&view, &r.0.to_scim(""), p), r))
            .collect();
        keyed.sort_by(|a, b| compare_keys(&a.0, &b.0, q.descending));
        matched = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = matched.len() as u64;
    let offset = match q.cursor {
        Some(c) => Cursor::offset(c).map_err(StoreError::Scim)?,
        None => q.offset,
    };
    let mut page: Vec<StoredResource> = Vec::new();
    let mut bytes = 0usize;
    for (mut r, len) in matched
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(q.count).unwrap_or(usize::MAX))
    {
        bytes = bytes.saturating_add(len);
        if !page.is_empty() && q.max_bytes.is_some_and(|max| bytes > max) {
            break;
        }
        if !q.related {
            r.members = None;
        }
        page.push(r);
    }
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
