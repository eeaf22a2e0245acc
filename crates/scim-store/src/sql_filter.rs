//! Filter → SQL for the indexed attributes.
//!
//! [`to_sql`] translates a validated filter into a WHERE fragment over `resources r` when
//! every attribute it names has a column (id, userName, displayName, externalId, active,
//! meta.created, meta.lastModified, emails.value, members.value); otherwise it returns `None`
//! and the caller falls back to the in-memory evaluator, which gives the same answer.
//!
//! Every fragment is two-valued (never SQL NULL), so `NOT` and `ne` mean exactly what the
//! evaluator means (`scim_proto::filter` docs): `ne` holds for an absent attribute.
//! Case-insensitive attributes are compared on lower-cased `_ci` columns with a lower-cased
//! literal; text compares bytewise on both backends (`COLLATE "C"` on PostgreSQL, BINARY and
//! `case_sensitive_like` on SQLite), matching Rust's `str` ordering.

use scim_core::ResourceKind;
use scim_core::resource::fold;
use scim_proto::{AttrPath, CompValue, CompareOp, FilterExpr, datetime, urn};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Text(String),
    /// NULL, typed (PostgreSQL checks a parameter's type against its column).
    NullInt,
    NullText,
    /// A PostgreSQL `bigint[]` (the columns of several rows, for `unnest`).
    Ints(Vec<Option<i64>>),
    /// A PostgreSQL `text[]`.
    Texts(Vec<Option<String>>),
}

impl Arg {
    pub fn text(s: &str) -> Self {
        Arg::Text(s.to_string())
    }

    pub fn ts(t: scim_core::Timestamp) -> Self {
        Arg::Int(t.as_micros())
    }

    pub fn opt_ts(t: Option<scim_core::Timestamp>) -> Self {
        Self::opt_int(t.map(scim_core::Timestamp::as_micros))
    }

    pub fn opt_int(v: Option<i64>) -> Self {
        v.map_or(Arg::NullInt, Arg::Int)
    }

    pub fn opt_text(v: Option<&str>) -> Self {
        v.map_or(Arg::NullText, |s| Arg::Text(s.to_string()))
    }

    /// The rows' values as one array per column (`rows` all have the same columns, each
    /// column of one type), and each array's SQL type for a cast: several rows in one
    /// statement of fixed text, `unnest($1::bigint[], $2::text[], …)` (PostgreSQL).
    pub fn columns(rows: Vec<Vec<Arg>>) -> Vec<(Arg, &'static str)> {
        let mut cols: Vec<(Arg, &'static str)> = rows
            .first()
            .into_iter()
            .flatten()
            .map(|first| match first {
                Arg::Int(_) | Arg::NullInt => {
                    (Arg::Ints(Vec::with_capacity(rows.len())), "bigint[]")
                }
                _ => (Arg::Texts(Vec::with_capacity(rows.len())), "text[]"),
            })
            .collect();
        for row in rows {
            for (a, (col, _)) in row.into_iter().zip(cols.iter_mut()) {
                match (col, a) {
                    (Arg::Ints(v), Arg::Int(i)) => v.push(Some(i)),
                    (Arg::Texts(v), Arg::Text(t)) => v.push(Some(t)),
                    (Arg::Ints(v), _) => v.push(None),
                    (Arg::Texts(v), _) => v.push(None),
                    _ => {}
                }
            }
        }
        cols
    }
}

/// SQL text with `$n` placeholders and the values to bind, in order.
#[derive(Debug, Default)]
pub struct SqlBuf {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl SqlBuf {
    /// Appends a placeholder for `a` and returns its text.
    pub fn bind(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
}

#[derive(Clone, Copy)]
enum Col {
    /// A text column; `true` when it holds lower-cased values.
    Text(&'static str, bool),
    Int(&'static str),
    Time(&'static str),
    Emails,
    Members,
}

/// Whether a query for `kind` with `filter` probes a unique index for at most one row (a
/// user by `id` or `userName eq`, IdPs' lookup before every create): a bounded read that
/// SQLite may run on the request's own thread.
pub(crate) fn is_point_lookup(kind: ResourceKind, filter: Option<&FilterExpr>) -> bool {
    let Some(FilterExpr::Compare {
        path,
        op: CompareOp::Eq,
        value: CompValue::Str(_),
    }) = filter
    else {
        return false;
    };
    kind == ResourceKind::User
        && matches!(
            column(kind, path),
            Some(Col::Text("r.id" | "r.unique_name_ci", _))
        )
}

fn column(kind: ResourceKind, p: &AttrPath) -> Option<Col> {
    let core = match kind {
        ResourceKind::User => urn::USER,
        ResourceKind::Group => urn::GROUP,
    };
    if p.urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(core))
    {
        return None;
    }
    let name = p.name.to_ascii_lowercase();
    let sub = p.sub.as_deref().map(str::to_ascii_lowercase);
    Some(match (kind, name.as_str(), sub.as_deref()) {
        (_, "id", None) => Col::Text("r.id", false),
        (_, "externalid", None) => Col::Text("r.external_id", false),
        (ResourceKind::User, "username", None) => Col::Text("r.unique_name_ci", true),
        (ResourceKind::Group, "displayname", None) => Col::Text("r.unique_name_ci", true),
        (ResourceKind::User, "displayname", None) => Col::Text("r.display_name_ci", true),
        (ResourceKind::User, "active", None) => Col::Int("r.active"),
        (_, "meta", Some("created")) => Col::Time("r.created_at"),
        (_, "meta", Some("lastmodified")) => Col::Time("r.modified_at"),
        (ResourceKind::User, "emails", None | Some("value")) => Col::Emails,
        (ResourceKind::Group, "members", None | Some("value")) => Col::Members,
        _ => return None,
    })
}

fn like_pattern(op: CompareOp, lit: &str) -> String {
    let mut esc = String::with_capacity(lit.len() + 2);
    for c in lit.chars() {
        if matches!(c, '\\' | '%' | '_') {
            esc.push('\\');
        }
        esc.push(c);
    }
    match op {
        CompareOp::Co => format!("%{esc}%"),
        CompareOp::Sw => format!("{esc}%"),
        _ => format!("%{esc}"),
    }
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq | CompareOp::Ne => "=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => "LIKE",
    }
}

fn literal_text(v: &CompValue) -> Option<String> {
    match v {
        CompValue::Str(s) => Some(s.clone()),
        CompValue::Number(n) => Some(n.to_string()),
        CompValue::Bool(b) => Some(b.to_string()),
        CompValue::Null => None,
    }
}

/// `expr` over a text column: two-valued, `ne` = not `eq`.
fn text_compare(buf: &mut SqlBuf, col: &str, folded: bool, op: CompareOp, lit: &str) -> String {
    let lit = if folded { fold(lit) } else { lit.to_string() };
    let (rhs, escape) = if op.is_substring() {
        (buf.bind(Arg::Text(like_pattern(op, &lit))), " ESCAPE '\\'")
    } else {
        (buf.bind(Arg::Text(lit)), "")
    };
    match op {
        CompareOp::Ne => format!("({col} IS NULL OR {col} <> {rhs})"),
        _ => format!("({col} IS NOT NULL AND {col} {} {rhs}{escape})", sql_op(op)),
    }
}

/// The comparison inside an EXISTS over a multi-valued attribute's rows.
fn exists(col: Col, cond: &str) -> String {
    match col {
        Col::Emails => format!(
            "EXISTS (SELECT 1 FROM resource_emails e WHERE e.resource_seq = r.seq AND {cond})"
        ),
        _ => format!(
            "EXISTS (SELECT 1 FROM group_members gm JOIN resources m ON m.seq = gm.member_seq \
             WHERE gm.group_seq = r.seq AND {cond})"
        ),
    }
}

fn compare(
    buf: &mut SqlBuf,
    kind: ResourceKind,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Option<String> {
    let col = column(kind, path)?;
    if *value == CompValue::Null {
        return Some(match (col, op) {
            (Col::Text(c, _) | Col::Int(c) | Col::Time(c), CompareOp::Eq) => {
                format!("({c} IS NULL)")
            }
            (Col::Text(c, _) | Col::Int(c) | Col::Time(c), _) => format!("({c} IS NOT NULL)"),
            (multi, CompareOp::Eq) => format!("(NOT {})", exists(multi, "1 = 1")),
            (multi, _) => exists(multi, "1 = 1"),
        });
    }
    Some(match col {
        Col::Text(c, folded) => text_compare(buf, c, folded, op, &literal_text(value)?),
        Col::Int(c) => {
            let b = match value {
                CompValue::Bool(b) => *b,
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return None,
            };
            let p = buf.bind(Arg::Int(i64::from(b)));
            match op {
                CompareOp::Eq => format!("({c} IS NOT NULL AND {c} = {p})"),
                CompareOp::Ne => format!("({c} IS NULL OR {c} <> {p})"),
                _ => return None,
            }
        }
        Col::Time(c) => {
            let CompValue::Str(s) = value else {
                return None;
            };
            let t = datetime::parse(s)?;
            let micros = i64::try_from(t.unix_timestamp_nanos() / 1_000).ok()?;
            // Sub-microsecond literals cannot be compared exactly with stored microseconds.
            if t.unix_timestamp_nanos() % 1_000 != 0 {
                return None;
            }
            let p = buf.bind(Arg::Int(micros));
            match op {
                CompareOp::Ne => format!("({c} <> {p})"),
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => return None,
                _ => format!("({c} {} {p})", sql_op(op)),
            }
        }
        multi @ (Col::Emails | Col::Members) => {
            let (c, folded) = match multi {
                Col::Emails => ("e.value_ci", true),
                _ => ("m.id", false),
            };
            if op == CompareOp::Ne {
                let inner = text_compare(buf, c, folded, CompareOp::Eq, &literal_text(value)?);
                format!("(NOT {})", exists(multi, &inner))
            } else {
                let inner = text_compare(buf, c, folded, op, &literal_text(value)?);
                exists(multi, &inner)
            }
        }
    })
}

fn present(kind: ResourceKind, path: &AttrPath) -> Option<String> {
    Some(match column(kind, path)? {
        Col::Text(c, _) => format!("({c} IS NOT NULL AND {c} <> '')"),
        Col::Int(c) | Col::Time(c) => format!("({c} IS NOT NULL)"),
        multi @ Col::Emails => exists(multi, "e.value_ci <> ''"),
        multi @ Col::Members => exists(multi, "1 = 1"),
    })
}

/// The whole filter as SQL, or `None` when some part needs the in-memory evaluator (in which
/// case nothing is left bound in `buf`).
pub fn to_sql(buf: &mut SqlBuf, kind: ResourceKind, f: &FilterExpr) -> Option<String> {
    let mark = buf.args.len();
    let out = translate(buf, kind, f);
    if out.is_none() {
        buf.args.truncate(mark);
    }
    out
}

fn translate(buf: &mut SqlBuf, kind: ResourceKind, f: &FilterExpr) -> Option<String> {
    match f {
        FilterExpr::Compare { path, op, value } => compare(buf, kind, path, *op, value),
        FilterExpr::Present(p) => present(kind, p),
        FilterExpr::And(a, b) => {
            let a = translate(buf, kind, a)?;
            let b = translate(buf, kind, b)?;
            Some(format!("({a} AND {b})"))
        }
        FilterExpr::Or(a, b) => {
            let a = translate(buf, kind, a)?;
            let b = translate(buf, kind, b)?;
            Some(format!("({a} OR {b})"))
        }
        FilterExpr::Not(a) => Some(format!("(NOT {})", translate(buf, kind, a)?)),
        // `emails[value op x]` / `members[value op x]`: only `value` is in a column.
        FilterExpr::ValuePath { attr, filter } => match filter.as_ref() {
            FilterExpr::Compare { path, op, value }
                if path.urn.is_none()
                    && path.sub.is_none()
                    && path.name.eq_ignore_ascii_case("value") =>
            {
                compare(buf, kind, &attr.parent(), *op, value)
            }
            _ => None,
        },
    }
}

/// A superset of the filter for pre-selection: the translatable conjuncts of a top-level
/// `and` chain (the full filter is then evaluated in memory).
pub fn prefilter(buf: &mut SqlBuf, kind: ResourceKind, f: &FilterExpr) -> Option<String> {
    match f {
        FilterExpr::And(a, b) => {
            let a = prefilter(buf, kind, a);
            let b = prefilter(buf, kind, b);
            match (a, b) {
                (Some(a), Some(b)) => Some(format!("({a} AND {b})")),
                (x, None) | (None, x) => x,
            }
        }
        other => to_sql(buf, kind, other),
    }
}

/// ORDER BY column for a sortBy path, when it has one.
pub fn sort_column(kind: ResourceKind, p: &AttrPath) -> Option<&'static str> {
    match column(kind, p)? {
        Col::Text(c, _) | Col::Int(c) | Col::Time(c) => Some(c),
        Col::Emails | Col::Members => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_proto::filter::parse;

    #[test]
    fn point_lookups() {
        let f = |text: &str| parse(text).expect("parses");
        let cases = [
            (ResourceKind::User, "userName eq \"a@b\"", true),
            (ResourceKind::User, "USERNAME eq \"a@b\"", true),
            (ResourceKind::User, "id eq \"1\"", true),
            (
                ResourceKind::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a\"",
                true,
            ),
            (ResourceKind::User, "userName sw \"a\"", false),
            (ResourceKind::User, "externalId eq \"1\"", false),
            (ResourceKind::User, "displayName eq \"A\"", false),
            (
                ResourceKind::User,
                "userName eq \"a\" or id eq \"b\"",
                false,
            ),
            (ResourceKind::User, "emails.value eq \"a@b\"", false),
            (ResourceKind::Group, "displayName eq \"G\"", false),
            (ResourceKind::Group, "id eq \"1\"", false),
        ];
        for (kind, text, want) in cases {
            assert_eq!(is_point_lookup(kind, Some(&f(text))), want, "{text}");
        }
        assert!(!is_point_lookup(ResourceKind::User, None));
    }

    fn sql(kind: ResourceKind, f: &str) -> Option<(String, Vec<Arg>)> {
        let mut b = SqlBuf::default();
        to_sql(&mut b, kind, &parse(f).unwrap()).map(|s| (s, b.args))
    }

    #[test]
    fn indexed_attributes_translate() {
        let (s, a) = sql(ResourceKind::User, r#"userName eq "BJensen""#).unwrap();
        assert_eq!(
            s,
            "(r.unique_name_ci IS NOT NULL AND r.unique_name_ci = $1)"
        );
        assert_eq!(a, vec![Arg::Text("bjensen".into())]);
        let (s, a) = sql(ResourceKind::User, r#"externalId sw "A_%""#).unwrap();
        assert!(s.contains("LIKE $1 ESCAPE"), "{s}");
        assert_eq!(a, vec![Arg::Text("A\\_\\%%".into())]);
        assert!(sql(ResourceKind::User, r#"emails[type eq "work"]"#).is_none());
        assert!(sql(ResourceKind::User, r#"emails[value eq "a@b"]"#).is_some());
        assert!(sql(ResourceKind::User, r#"title eq "x""#).is_none());
        assert!(
            sql(
                ResourceKind::Group,
                r#"members.value eq "u1" and displayName sw "a""#
            )
            .is_some()
        );
        assert!(
            sql(
                ResourceKind::User,
                r#"meta.lastModified gt "2011-05-13T04:42:34Z""#
            )
            .is_some()
        );
    }

    #[test]
    fn prefilter_keeps_translatable_conjuncts() {
        let f = parse(r#"userName sw "a" and title eq "x" and active eq true"#).unwrap();
        let mut b = SqlBuf::default();
        let s = prefilter(&mut b, ResourceKind::User, &f).unwrap();
        assert!(
            s.contains("unique_name_ci") && s.contains("r.active") && !s.contains("title"),
            "{s}"
        );
        assert_eq!(b.args.len(), 2);
        let f = parse(r#"userName sw "a" or title eq "x""#).unwrap();
        assert!(prefilter(&mut SqlBuf::default(), ResourceKind::User, &f).is_none());
    }
}
