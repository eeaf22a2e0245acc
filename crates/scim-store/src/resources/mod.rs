//! Resource rows, email rows, membership rows; list queries with SQL pushdown and the
//! in-memory fallback.
//!
//! The logic is written once over [`Db`] and runs on both engines: inside a sqlx transaction
//! (PostgreSQL) or inside the SQLite writer's group-commit transaction / on a SQLite reader
//! (`sqlite_engine.rs`). The caller owns the transaction: every function here either
//! completes or returns an error, after which the caller rolls back.
//!
//! | module | job |
//! |---|---|
//! | here | row shapes shared by the others: columns, decoding, unique messages, arguments |
//! | `members` | `group_members` rows: loading, adding, removing, the net diff of a write |
//! | `write` | create (alone, in one statement, in a batch), modify (locked or not), delete, email rows |
//! | `read` | get, list queries (SQL pushdown and the in-memory fallback), a user's groups |
//! | `store` | `ResourceStore` for `SqlStore` |

pub(crate) mod members;
pub(crate) mod read;
mod store;
pub(crate) mod write;

use crate::StoreError;
use crate::conn::{Conn, Row};
use crate::sql_filter::Arg;
use scim_core::resource::fold;
use scim_core::{ResourceKind, StoredResource, Write};
use scim_proto::render::GroupRef;

/// Column order read by [`resource_from`].
pub(crate) const COLS: &str = "r.seq, r.id, r.kind, r.body, r.created_at, r.modified_at, r.version";

/// `COLS` and, for users read with their relations, their groups: one statement reads a
/// user and the groups it is directly in (a lookup or a PATCH answer needs no second query).
/// The groups column is a JSON array of `[id, displayName]` in [`groups_of`]'s order, read by
/// [`groups_from`].
pub(crate) fn cols(db: &Conn<'_>, kind: ResourceKind, related: bool) -> String {
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
pub(crate) fn groups_from(row: &Row) -> Result<Vec<GroupRef>, StoreError> {
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
pub(crate) fn resource_from_cols(
    row: &Row,
    kind: ResourceKind,
    related: bool,
) -> Result<(i64, StoredResource), StoreError> {
    sized_resource_from_cols(row, kind, related).map(|(seq, r, _)| (seq, r))
}

/// [`resource_from_cols`] with the stored body's length (list pages are capped by bytes).
pub(crate) fn sized_resource_from_cols(
    row: &Row,
    kind: ResourceKind,
    related: bool,
) -> Result<(i64, StoredResource, usize), StoreError> {
    let (seq, mut r, len) = sized_resource_from(row)?;
    if related && kind == ResourceKind::User {
        r.groups = Some(groups_from(row)?);
    }
    Ok((seq, r, len))
}

fn sized_resource_from(row: &Row) -> Result<(i64, StoredResource, usize), StoreError> {
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
        body.len(),
    ))
}

pub(crate) fn unique_message(kind: ResourceKind, write: &Write) -> String {
    let name = write.fields.unique_name.clone().unwrap_or_default();
    match kind {
        ResourceKind::User => format!("userName '{name}' is already taken in this tenant"),
        ResourceKind::Group => {
            format!("a group with displayName '{name}' already exists in this tenant")
        }
    }
}

pub(crate) fn fields_args(f: &scim_core::IndexedFields) -> [Arg; 6] {
    [
        Arg::opt_text(f.unique_name.as_deref()),
        Arg::opt_text(f.unique_name.as_deref().map(fold).as_deref()),
        Arg::opt_text(f.display_name.as_deref()),
        Arg::opt_text(f.display_name.as_deref().map(fold).as_deref()),
        Arg::opt_text(f.external_id.as_deref()),
        Arg::opt_int(f.active.map(i64::from)),
    ]
}

pub(crate) fn body_text(write: &Write) -> Result<String, StoreError> {
    serde_json::to_string(&write.body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The resource row of a modification (`$1`–`$9`, the row's `seq` last).
pub(crate) const UPDATE_RESOURCE: &str = "UPDATE resources SET body = $1, unique_name = $2, \
     unique_name_ci = $3, display_name = $4, display_name_ci = $5, external_id = $6, \
     active = $7, modified_at = $8, version = version + 1 WHERE seq = $9";

/// The resource row of a create: the statement (`$1`–`$11`, `RETURNING seq`) and its values.
pub(crate) const INSERT_RESOURCE: &str = "INSERT INTO resources (tenant_id, kind, id, body, unique_name, \
     unique_name_ci, display_name, display_name_ci, external_id, active, created_at, modified_at, \
     version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1) RETURNING seq";
