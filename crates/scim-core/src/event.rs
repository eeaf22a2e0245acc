//! The provisioning log: one event per SCIM request that changes something, and one per
//! failed request, written in the same transaction as the change (failures in their own).
//!
//! Events hold identifiers only (resource type, id, userName/displayName), never other
//! attribute values, and never secrets.

use crate::clock::{Timestamp, parse_duration};
use crate::error::{CoreError, CoreResult};
use scim_proto::ResourceKind;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Operation {
    #[serde(rename = "Create User")]
    CreateUser,
    #[serde(rename = "Update User")]
    UpdateUser,
    #[serde(rename = "Deactivate User")]
    DeactivateUser,
    #[serde(rename = "Reactivate User")]
    ReactivateUser,
    #[serde(rename = "Hard Delete User")]
    HardDeleteUser,
    #[serde(rename = "Create Group")]
    CreateGroup,
    #[serde(rename = "Update Group")]
    UpdateGroup,
    #[serde(rename = "Add Members")]
    AddMembers,
    #[serde(rename = "Remove Members")]
    RemoveMembers,
    #[serde(rename = "Delete Group")]
    DeleteGroup,
    #[serde(rename = "Failure")]
    Failure,
}

pub const ALL_OPERATIONS: [Operation; 11] = [
    Operation::CreateUser,
    Operation::UpdateUser,
    Operation::DeactivateUser,
    Operation::ReactivateUser,
    Operation::HardDeleteUser,
    Operation::CreateGroup,
    Operation::UpdateGroup,
    Operation::AddMembers,
    Operation::RemoveMembers,
    Operation::DeleteGroup,
    Operation::Failure,
];

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateUser => "Create User",
            Operation::UpdateUser => "Update User",
            Operation::DeactivateUser => "Deactivate User",
            Operation::ReactivateUser => "Reactivate User",
            Operation::HardDeleteUser => "Hard Delete User",
            Operation::CreateGroup => "Create Group",
            Operation::UpdateGroup => "Update Group",
            Operation::AddMembers => "Add Members",
            Operation::RemoveMembers => "Remove Members",
            Operation::DeleteGroup => "Delete Group",
            Operation::Failure => "Failure",
        }
    }

    /// Which of the console's four counters the operation adds to.
    pub fn category(self) -> Category {
        match self {
            Operation::CreateUser | Operation::CreateGroup => Category::Create,
            Operation::HardDeleteUser | Operation::DeleteGroup => Category::Delete,
            Operation::Failure => Category::Failure,
            Operation::UpdateUser
            | Operation::DeactivateUser
            | Operation::ReactivateUser
            | Operation::UpdateGroup
            | Operation::AddMembers
            | Operation::RemoveMembers => Category::Update,
        }
    }

    /// Accepts the display name or a compact form (`create-user`, `createuser`).
    pub fn parse(s: &str) -> Option<Self> {
        let norm = |x: &str| {
            x.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let want = norm(s);
        ALL_OPERATIONS
            .into_iter()
            .find(|o| norm(o.as_str()) == want)
    }

    pub fn create(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::User => Operation::CreateUser,
            ResourceKind::Group => Operation::CreateGroup,
        }
    }

    pub fn delete(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::User => Operation::HardDeleteUser,
            ResourceKind::Group => Operation::DeleteGroup,
        }
    }

    /// A user update, named by what happened to `active`.
    pub fn user_update(before: &Value, after: &Value) -> Self {
        let active = |v: &Value| v.get("active").and_then(Value::as_bool).unwrap_or(true);
        match (active(before), active(after)) {
            (true, false) => Operation::DeactivateUser,
            (false, true) => Operation::ReactivateUser,
            _ => Operation::UpdateUser,
        }
    }
}

/// Creates, updates (incl. (de)activation and membership), deletes, failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Create,
    Update,
    Delete,
    Failure,
}

/// Who asked: carried from the HTTP layer into every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestContext {
    pub token_name: Option<String>,
    pub request_id: String,
    pub client_addr: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub tenant_id: i64,
    pub at: Timestamp,
    pub operation: Operation,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub token_name: Option<String>,
    pub request_id: String,
    pub client_addr: Option<String>,
    /// A failed request's HTTP method (what it attempted, with `resource_type` and whether
    /// it named a resource); `None` for successes, whose `operation` says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A successful change's events (the change feed); `None` for failures.
    #[serde(skip)]
    pub change: Option<crate::change_record::ChangeRecord>,
}

/// The request methods a failure records (a Bulk operation's is the client's text).
pub const LOGGED_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl Event {
    /// What a failed request attempted, in the operations' words: `Create User`,
    /// `Update Group`, `Hard Delete User`, `Read User`, `Search Users`; `None` when the
    /// method or the resource type is not known.
    pub fn attempted(&self) -> Option<String> {
        let kind = ResourceKind::parse(self.resource_type.as_deref()?)?;
        let named = self.resource_id.is_some();
        let op = match (self.method.as_deref()?, kind) {
            ("POST", ResourceKind::User) => Operation::CreateUser,
            ("POST", ResourceKind::Group) => Operation::CreateGroup,
            ("PUT" | "PATCH", ResourceKind::User) => Operation::UpdateUser,
            ("PUT" | "PATCH", ResourceKind::Group) => Operation::UpdateGroup,
            ("DELETE", ResourceKind::User) => Operation::HardDeleteUser,
            ("DELETE", ResourceKind::Group) => Operation::DeleteGroup,
            ("GET", k) if named => return Some(format!("Read {}", k.as_str())),
            ("GET", k) => return Some(format!("Search {}", k.endpoint())),
            _ => return None,
        };
        Some(op.as_str().to_string())
    }

    /// The log's one-line summary of the row: the operation, or for a failure what it
    /// attempted and its status (`Create User — failed (409)`).
    pub fn summary(&self) -> String {
        match (self.operation, self.attempted()) {
            (Operation::Failure, Some(what)) => format!("{what} — failed ({})", self.status),
            (Operation::Failure, None) => format!("Failure ({})", self.status),
            (op, _) => op.as_str().to_string(),
        }
    }
}

/// What the service asks the store to log with a write; the store fills in the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub operation: Operation,
    pub status: u16,
    pub ctx: RequestContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// Filters for reading the log; newest first, keyset-paginated by `before_seq`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub operations: Vec<Operation>,
    pub outcome: Option<Outcome>,
    pub resource_type: Option<ResourceKind>,
    /// Matches the resource id exactly or the userName/displayName case-insensitively.
    pub resource: Option<String>,
    pub token_name: Option<String>,
    pub before_seq: Option<i64>,
    /// Only events newer than this sequence number, oldest first (a change feed).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// Log filters as an admin types them (CLI flags, console form, HTTP query), before checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// RFC 3339, a date (`2026-11-24`), a console `datetime-local` value, or an age (`24h`).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Display names or compact forms (`create-user`); empty strings are ignored.
    pub operation: Vec<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// `User` or `Group`.
    pub resource_type: Option<String>,
    /// A resource id, userName or group displayName.
    pub resource: Option<String>,
    pub token: Option<String>,
    /// Only events older than this sequence number (keyset paging).
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A time bound: an age (`24h`, `7d`) before `now`, RFC 3339, `YYYY-MM-DDTHH:MM` or a date
/// (UTC midnight).
pub fn parse_time_bound(s: &str, now: Timestamp) -> CoreResult<Timestamp> {
    use time::macros::format_description;
    let s = s.trim();
    if let Ok(age) = parse_duration(s) {
        return Ok(now - age);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let t = scim_proto::datetime::parse(s)
        .or_else(|| {
            time::PrimitiveDateTime::parse(s, &minutes)
                .ok()
                .map(time::PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            time::Date::parse(s, format_description!("[year]-[month]-[day]"))
                .ok()
                .map(|d| d.midnight().assume_utc())
        })
        .ok_or_else(|| {
            CoreError::Invalid(format!(
                "'{}' is not a time: use RFC 3339, a date (2026-11-24) or an age (24h, 7d)",
                scim_proto::error::excerpt(s)
            ))
        })?;
    Ok(Timestamp::from_datetime(t))
}

impl EventFilter {
    /// From query-string pairs (`operation` may repeat); unknown keys are ignored.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> CoreResult<Self> {
        let mut f = EventFilter::default();
        let number = |k: &str, v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| CoreError::Invalid(format!("{k} must be a number, not '{v}'")))
        };
        for (k, v) in pairs {
            let text = (!v.trim().is_empty()).then(|| v.clone());
            match k.as_str() {
                "since" => f.since = text,
                "until" => f.until = text,
                "operation" => f.operation.push(v),
                "outcome" => f.outcome = text,
                "resource_type" => f.resource_type = text,
                "resource" => f.resource = text,
                "token" => f.token = text,
                "before" if text.is_some() => f.before = Some(number(&k, &v)?),
                "limit" if text.is_some() => {
                    f.limit = Some(u32::try_from(number(&k, &v)?.clamp(1, 10_000)).unwrap_or(100))
                }
                _ => {}
            }
        }
        Ok(f)
    }

    /// The filters as query-string pairs (without `before`/`limit`), for links that keep them.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut push = |k: &'static str, v: &Option<String>| {
            if let Some(v) = non_empty(v) {
                out.push((k, v.to_string()));
            }
        };
        push("since", &self.since);
        push("until", &self.until);
        push("outcome", &self.outcome);
        push("resource_type", &self.resource_type);
        push("resource", &self.resource);
        push("token", &self.token);
        for o in self.operation.iter().filter(|o| !o.trim().is_empty()) {
            out.push(("operation", o.clone()));
        }
        out
    }

    /// Checks every field; `default_limit` applies when none is given (at most 10,000).
    pub fn to_query(&self, now: Timestamp, default_limit: u32) -> CoreResult<EventQuery> {
        let mut operations = Vec::new();
        for o in self
            .operation
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
        {
            operations.push(
                Operation::parse(o)
                    .ok_or_else(|| CoreError::Invalid(format!("unknown operation '{o}'")))?,
            );
        }
        let outcome = match non_empty(&self.outcome)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("success") => Some(Outcome::Success),
            Some("failure") => Some(Outcome::Failure),
            Some(o) => {
                return Err(CoreError::Invalid(format!(
                    "outcome must be success or failure, not '{o}'"
                )));
            }
        };
        let resource_type = match non_empty(&self.resource_type) {
            None => None,
            Some(t) => Some(ResourceKind::parse(t).ok_or_else(|| {
                CoreError::Invalid(format!("resource type must be User or Group, not '{t}'"))
            })?),
        };
        Ok(EventQuery {
            since: non_empty(&self.since)
                .map(|s| parse_time_bound(s, now))
                .transpose()?,
            until: non_empty(&self.until)
                .map(|s| parse_time_bound(s, now))
                .transpose()?,
            operations,
            outcome,
            resource_type,
            resource: non_empty(&self.resource).map(str::to_string),
            token_name: non_empty(&self.token).map(str::to_string),
            before_seq: self.before,
            after_seq: None,
            limit: self.limit.unwrap_or(default_limit).clamp(1, 10_000),
        })
    }
}

/// What a spreadsheet may read as the start of a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
/// Where a spreadsheet may split a cell (`,` here, `;` in many locales, tab and `|` in
/// others).
const SEPARATORS: [char; 4] = [',', ';', '\t', '|'];

/// A CSV cell safe for spreadsheets and terminals: control characters (ESC, BEL, CR, line
/// breaks: from client-sent ids, source data) written as escapes (`\u{1b}`, `\r`, `\n`), then
/// formulas neutralised.
pub fn csv_cell(s: &str) -> String {
    let escaped: String = if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| match c {
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
                c => c.to_string(),
            })
            .collect()
    } else {
        s.to_string()
    };
    neutralise(&escaped).into_owned()
}

/// Neutralises formulas (OWASP's CSV injection advice): a `'` before a formula character at
/// the start of the cell and after every separator, so `a;=1+1` cannot become a formula in
/// a locale that splits on `;` either.
fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    let risky_at = |i: usize| s[i..].starts_with(FORMULA_START);
    let after_separator = s
        .char_indices()
        .any(|(i, c)| SEPARATORS.contains(&c) && risky_at(i + c.len_utf8()));
    if !(risky_at(0) || after_separator) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 4);
    if risky_at(0) {
        out.push('\'');
    }
    for (i, c) in s.char_indices() {
        out.push(c);
        if SEPARATORS.contains(&c) && risky_at(i + c.len_utf8()) {
            out.push('\'');
        }
    }
    out.into()
}

pub const CSV_HEADER: [&str; 11] = [
    "time",
    "operation",
    "resource_type",
    "resource_id",
    "resource_name",
    "status",
    "scim_type",
    "detail",
    "token",
    "request_id",
    "client_address",
];

/// Events as CSV (RFC 4180: CRLF line ends, quotes where needed), with a header row.
pub fn to_csv(events: &[Event]) -> CoreResult<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let fail = |e: csv::Error| CoreError::Internal(format!("CSV export: {e}"));
    w.write_record(CSV_HEADER).map_err(fail)?;
    for e in events {
        let cells = [
            e.at.rfc3339(),
            e.operation.as_str().to_string(),
            e.resource_type.clone().unwrap_or_default(),
            e.resource_id.clone().unwrap_or_default(),
            e.resource_name.clone().unwrap_or_default(),
            e.status.to_string(),
            e.scim_type.clone().unwrap_or_default(),
            e.detail.clone().unwrap_or_default(),
            e.token_name.clone().unwrap_or_default(),
            e.request_id.clone(),
            e.client_addr.clone().unwrap_or_default(),
        ];
        w.write_record(cells.iter().map(|c| csv_cell(c)))
            .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CoreError::Internal(format!("CSV export: {e}")))?;
    String::from_utf8(bytes).map_err(|e| CoreError::Internal(format!("CSV export: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_are_named_by_effect() {
        assert_eq!(
            Operation::user_update(&json!({"active": true}), &json!({"active": false})),
            Operation::DeactivateUser
        );
        assert_eq!(
            Operation::user_update(&json!({"active": false}), &json!({"active": true})),
            Operation::ReactivateUser
        );
        assert_eq!(
            Operation::user_update(&json!({}), &json!({"title": "x"})),
            Operation::UpdateUser
        );
        assert_eq!(
            Operation::parse("hard-delete-user"),
            Some(Operation::HardDeleteUser)
        );
        assert_eq!(Operation::parse("Failure"), Some(Operation::Failure));
        assert_eq!(Operation::parse("nope"), None);
    }

    #[test]
    fn formulas_are_neutralised_after_every_separator() {
        for (cell, want) in [
            ("plain", "plain"),
            ("=1+1", "'=1+1"),
            ("a;=1+1", "a;'=1+1"),
            ("a\t=1+1", "a\t'=1+1"),
            ("a,b|@x", "a,b|'@x"),
            ("-5;+3", "'-5;'+3"),
            ("a-b", "a-b"),
        ] {
            assert_eq!(neutralise(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn a_failure_says_what_it_attempted() {
        let e = |method: Option<&str>, kind: Option<&str>, id: Option<&str>| Event {
            seq: 1,
            tenant_id: 1,
            at: Timestamp::EPOCH,
            operation: Operation::Failure,
            resource_type: kind.map(str::to_string),
            resource_id: id.map(str::to_string),
            resource_name: None,
            status: 409,
            scim_type: None,
            detail: None,
            token_name: None,
            request_id: "r".into(),
            client_addr: None,
            method: method.map(str::to_string),
            change: None,
        };
        let cases = [
            (
                e(Some("POST"), Some("User"), None),
                "Create User — failed (409)",
            ),
            (
                e(Some("PATCH"), Some("Group"), Some("g")),
                "Update Group — failed (409)",
            ),
            (
                e(Some("PUT"), Some("User"), Some("u")),
                "Update User — failed (409)",
            ),
            (
                e(Some("DELETE"), Some("User"), Some("u")),
                "Hard Delete User — failed (409)",
            ),
            (
                e(Some("DELETE"), Some("Group"), Some("g")),
                "Delete Group — failed (409)",
            ),
            (
                e(Some("GET"), Some("User"), Some("u")),
                "Read User — failed (409)",
            ),
            (
                e(Some("GET"), Some("Group"), None),
                "Search Groups — failed (409)",
            ),
            (e(None, Some("User"), None), "Failure (409)"),
            (e(Some("POST"), None, None), "Failure (409)"),
            (e(Some("BREW"), Some("User"), None), "Failure (409)"),
        ];
        for (ev, want) in cases {
            assert_eq!(ev.summary(), want);
        }
        let ok = Event {
            operation: Operation::CreateUser,
            ..e(None, Some("User"), Some("u"))
        };
        assert_eq!(ok.summary(), "Create User");
    }

    #[test]
    fn csv_escapes_quotes_commas_newlines_and_formulas() {
        let e = Event {
            seq: 1,
            tenant_id: 1,
            at: Timestamp::EPOCH,
            operation: Operation::Failure,
            resource_type: Some("User".into()),
            resource_id: None,
            resource_name: Some("=HYPERLINK(\"x\")".into()),
            status: 409,
            scim_type: Some("uniqueness".into()),
            detail: Some("a, \"b\"\nc".into()),
            token_name: Some("Entra".into()),
            request_id: "r1".into(),
            client_addr: None,
            method: None,
            change: None,
        };
        let csv = to_csv(&[e]).unwrap();
        let row = csv.split("\r\n").nth(1).unwrap();
        assert_eq!(
            row,
            "1970-01-01T00:00:00Z,Failure,User,,\"'=HYPERLINK(\"\"x\"\")\",409,uniqueness,\"a, \"\"b\"\"\\nc\",Entra,r1,"
        );
    }

    #[test]
    fn control_characters_are_escaped_for_terminals() {
        assert_eq!(csv_cell("a\u{1b}[2Jb\u{7}\r"), "a\\u{1b}[2Jb\\u{7}\\r");
        assert_eq!(csv_cell("\t=1"), "\\t=1");
        assert_eq!(csv_cell("=x"), "'=x");
    }
}
