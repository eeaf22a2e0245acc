//! What a CSV or JSON export holds, read before a job is set up from it (the console's Test
//! source): its columns in the file's order, how many rows fill each, a few example values,
//! the first rows, and which columns look like the id, groups and status columns. Pure:
//! the file source parses, this counts.

use serde_json::{Map, Value};
use std::collections::HashSet;

/// Example values kept per column.
pub const EXAMPLES: usize = 3;
/// Rows kept as samples.
pub const SAMPLE_ROWS: usize = 3;
/// Columns described; a wider file's others are counted, not listed.
pub const MAX_COLUMNS: usize = 100;
/// An example value's length, in characters, before it is cut.
const EXAMPLE_CHARS: usize = 60;

/// A CSV to start an export from: an id, the columns the default mappings read (named as
/// the target's attributes), a status and a groups column, and two example people.
pub const TEMPLATE_CSV: &str = "employee_id,userName,displayName,name.givenName,name.familyName,\
\"emails[type eq \"\"work\"\"].value\",title,\
urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department,status,groups
1001,ada@example.com,Ada Lovelace,Ada,Lovelace,ada@example.com,Engineer,Research,active,Engineering;Research
1002,grace@example.com,Grace Hopper,Grace,Hopper,grace@example.com,Director,Engineering,suspended,Engineering
";

/// One column of the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColumnStat {
    pub name: String,
    /// Rows with a value in it.
    pub filled: usize,
    /// Whether no two filled rows share a value.
    pub unique: bool,
    /// Up to [`EXAMPLES`] distinct values, in the file's order.
    pub examples: Vec<String>,
    /// Rows whose value reads as a status: active, and suspended (`status_word`).
    pub active: usize,
    pub suspended: usize,
}

impl ColumnStat {
    /// Every filled value reads as active or suspended, and some do.
    pub fn is_status_like(&self) -> bool {
        self.filled > 0 && self.active + self.suspended == self.filled
    }
}

/// The file, described.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileSample {
    /// People (rows or objects) in the file.
    pub rows: usize,
    pub columns: Vec<ColumnStat>,
    /// Columns past [`MAX_COLUMNS`], not described.
    pub more_columns: usize,
    /// The first [`SAMPLE_ROWS`] rows, one value (or "") per described column.
    pub sample_rows: Vec<Vec<String>>,
}

/// The id, groups and status columns of a file source (what the job's `source.id`,
/// `source.groups` and `source.status` name).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Picks {
    pub id: Option<String>,
    pub groups: Option<String>,
    pub status: Option<String>,
}

/// What a status cell says: `Some(true)` active, `Some(false)` suspended, `None` neither.
pub fn status_word(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "false" | "0" | "no" | "suspended" | "disabled" | "inactive" | "terminated"
            | "leaver" => Some(false),
            "true" | "1" | "yes" | "active" | "enabled" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// A cell as text: strings as they are, anything else as compact JSON.
fn text_of(v: &Value) -> String {
    let t = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match t.char_indices().nth(EXAMPLE_CHARS) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t,
    }
}

/// A column's name folded for comparison: `Employee_ID`, `employee-id` and `employeeId`
/// are one.
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Names an id column goes by, best first: a stable number before a name that changes.
const ID_NAMES: &[&str] = &[
    "employeeid",
    "employeenumber",
    "employeeno",
    "empid",
    "personnelnumber",
    "personid",
    "staffid",
    "workerid",
    "id",
    "externalid",
    "objectid",
    "uid",
    "username",
    "email",
    "mail",
];
/// Id columns that change when a person is renamed or moves.
const CHANGING_IDS: &[&str] = &["username", "email", "mail"];
const GROUP_NAMES: &[&str] = &["groups", "group", "memberof", "groupnames"];
const STATUS_NAMES: &[&str] = &[
    "status",
    "employmentstatus",
    "accountstatus",
    "state",
    "enabled",
    "active",
];

impl FileSample {
    /// Describes `records` (with `header`: the columns in the file's order; a column only
    /// some records have is added where first seen).
    pub fn of(header: &[String], records: &[Map<String, Value>]) -> Self {
        let mut names: Vec<String> = header.to_vec();
        let mut known: HashSet<String> = names.iter().cloned().collect();
        for r in records {
            for k in r.keys() {
                if known.insert(k.clone()) {
                    names.push(k.clone());
                }
            }
        }
        let more_columns = names.len().saturating_sub(MAX_COLUMNS);
        names.truncate(MAX_COLUMNS);
        let columns = names.iter().map(|n| column(n, records)).collect();
        let sample_rows = records
            .iter()
            .take(SAMPLE_ROWS)
            .map(|r| {
                names
                    .iter()
                    .map(|n| r.get(n).map(text_of).unwrap_or_default())
                    .collect()
            })
            .collect();
        FileSample {
            rows: records.len(),
            columns,
            more_columns,
            sample_rows,
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnStat> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The first column, in `names`' order of preference, that passes `fit`.
    fn by_name(&self, names: &[&str], fit: impl Fn(&ColumnStat) -> bool) -> Option<String> {
        names.iter().find_map(|want| {
            self.columns
                .iter()
                .find(|c| folded(&c.name) == *want && fit(c))
                .map(|c| c.name.clone())
        })
    }

    /// The columns that look like the id (filled in every row and unique), the groups and
    /// the status (named as one, every value active or suspended). Nothing is guessed from
    /// a column whose name says nothing.
    pub fn suggest(&self) -> Picks {
        let rows = self.rows;
        let id = self.by_name(ID_NAMES, |c| c.filled == rows && rows > 0 && c.unique);
        let groups = self.by_name(GROUP_NAMES, |c| Some(&c.name) != id.as_ref());
        // By name only: a yes/no column such as `is_manager` or `contractor` is no status,
        // and one named `terminated` or `disabled` means the opposite of active.
        let status = self.by_name(STATUS_NAMES, |c| {
            c.is_status_like() && Some(&c.name) != id.as_ref()
        });
        Picks { id, groups, status }
    }

    /// What the picks leave wrong, in words: people who would be provisioned as active
    /// though the file says otherwise, columns that are not in the file.
    pub fn warnings(&self, picks: &Picks) -> Vec<String> {
        let mut out = Vec::new();
        let cut = self.more_columns > 0;
        let missing = |role: &str, name: &str| match cut {
            false => format!("the {role} column '{name}' is not in the file"),
            true => format!(
                "the {role} column '{name}' is not among the first {MAX_COLUMNS} columns described"
            ),
        };
        if let Some(id) = &picks.id {
            match self.column(id) {
                None => out.push(missing("id", id)),
                Some(_) if CHANGING_IDS.contains(&folded(id).as_str()) => out.push(format!(
                    "the id column '{id}' changes when a person is renamed, which the engine \
                     reads as a leaver and a joiner: prefer an employee number"
                )),
                Some(_) => {}
            }
        }
        if let Some(g) = &picks.groups
            && self.column(g).is_none()
        {
            out.push(missing("groups", g));
        }
        // With no status column named the engine reads an `active` column.
        let status = picks.status.as_deref().unwrap_or("active");
        match self.column(status) {
            None if picks.status.is_some() => {
                out.push(format!(
                    "{}: everyone is provisioned as active",
                    missing("status", status)
                ));
            }
            Some(c) if c.filled > c.active + c.suspended => out.push(format!(
                "the status column '{status}' says neither active nor suspended on {} of {} \
                 rows: those people are provisioned as active",
                c.filled - c.active - c.suspended,
                self.rows
            )),
            _ => {}
        }
        for c in &self.columns {
            let used = [&picks.id, &picks.groups]
                .iter()
                .any(|p| p.as_deref() == Some(c.name.as_str()));
            let named = STATUS_NAMES.contains(&folded(&c.name).as_str());
            if c.name != status && !used && named && c.is_status_like() && c.suspended > 0 {
                out.push(format!(
                    "column '{}' marks {} of {} people suspended but is not the status column: \
                     pick it, or they are provisioned as active",
                    c.name, c.suspended, self.rows
                ));
            }
        }
        out
    }
}

fn column(name: &str, records: &[Map<String, Value>]) -> ColumnStat {
    let mut c = ColumnStat {
        name: name.to_string(),
        unique: true,
        ..ColumnStat::default()
    };
    let mut seen = HashSet::new();
    for v in records.iter().filter_map(|r| r.get(name)) {
        if v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        c.filled += 1;
        let t = match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        match status_word(v) {
            Some(true) => c.active += 1,
            Some(false) => c.suspended += 1,
            None => {}
        }
        if c.examples.len() < EXAMPLES && !seen.contains(&t) {
            c.examples.push(text_of(v));
        }
        if !seen.insert(t) {
            c.unique = false;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(header: &[&str], lines: &[&[&str]]) -> FileSample {
        let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
        let records: Vec<Map<String, Value>> = lines
            .iter()
            .map(|l| {
                header
                    .iter()
                    .zip(l.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(h, v)| (h.clone(), json!(v)))
                    .collect()
            })
            .collect();
        FileSample::of(&header, &records)
    }

    #[test]
    fn status_words() {
        for (v, want) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!(0), Some(false)),
            (json!(1), Some(true)),
            (json!(2), None),
            (json!(" Suspended "), Some(false)),
            (json!("Leaver"), Some(false)),
            (json!("active"), Some(true)),
            (json!("on leave"), None),
            // Y/N flags are read as nothing: their meaning depends on the column.
            (json!("n"), None),
            (json!("Y"), None),
            (json!(null), None),
        ] {
            assert_eq!(status_word(&v), want, "{v}");
        }
    }

    #[test]
    fn columns_counted_in_the_files_order() {
        let s = rows(
            &["employee_id", "userName", "status", "groups"],
            &[
                &["1", "ada@example.com", "active", "Eng;Research"],
                &["2", "bob@example.com", "suspended", ""],
                &["3", "cy@example.com", "active", "Eng"],
            ],
        );
        assert_eq!(s.rows, 3);
        let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["employee_id", "userName", "status", "groups"]);
        let status = s.column("status").unwrap();
        assert_eq!((status.filled, status.active, status.suspended), (3, 2, 1));
        assert!(!status.unique);
        assert_eq!(status.examples, ["active", "suspended"]);
        assert_eq!(s.column("groups").unwrap().filled, 2);
        assert!(s.column("employee_id").unwrap().unique);
        assert_eq!(s.sample_rows[1], ["2", "bob@example.com", "suspended", ""]);
    }

    /// The picks offered from column names and contents, and the warnings they leave.
    #[test]
    fn suggestions_and_warnings() {
        struct Case {
            header: &'static [&'static str],
            lines: &'static [&'static [&'static str]],
            want: (
                Option<&'static str>,
                Option<&'static str>,
                Option<&'static str>,
            ),
            warns: &'static [&'static str],
        }
        let cases = [
            // The guide's shape: everything found, nothing to warn about.
            Case {
                header: &["Employee ID", "userName", "Status", "Groups"],
                lines: &[&["1", "a@x", "active", "G"], &["2", "b@x", "suspended", ""]],
                want: (Some("Employee ID"), Some("Groups"), Some("Status")),
                warns: &[],
            },
            // An id column with a gap is no id; userName is, with a warning.
            Case {
                header: &["id", "userName"],
                lines: &[&["1", "a@x"], &["", "b@x"]],
                want: (Some("userName"), None, None),
                warns: &["changes when a person is renamed"],
            },
            // A duplicated employee number is passed over.
            Case {
                header: &["employee_id", "uid"],
                lines: &[&["1", "a"], &["1", "b"]],
                want: (Some("uid"), None, None),
                warns: &[],
            },
            // A yes/no column whose name says nothing is no status, and no warning either
            // (`contractor`, `is_manager`); nor is one whose name means the opposite.
            Case {
                header: &["id", "contractor", "Terminated"],
                lines: &[&["1", "no", "no"], &["2", "yes", "yes"]],
                want: (Some("id"), None, None),
                warns: &[],
            },
            // A 'status' column of other words is not a status column.
            Case {
                header: &["id", "status"],
                lines: &[&["1", "on leave"], &["2", "full time"]],
                want: (Some("id"), None, None),
                warns: &[],
            },
            // No id by name: nothing guessed.
            Case {
                header: &["name", "dept"],
                lines: &[&["Ada", "R&D"]],
                want: (None, None, None),
                warns: &[],
            },
        ];
        for c in cases {
            let s = rows(c.header, c.lines);
            let p = s.suggest();
            assert_eq!(
                (p.id.as_deref(), p.groups.as_deref(), p.status.as_deref()),
                c.want,
                "{:?}",
                c.header
            );
            let w = s.warnings(&p);
            assert_eq!(w.len(), c.warns.len(), "{:?}: {w:?}", c.header);
            for (got, want) in w.iter().zip(c.warns) {
                assert!(got.contains(want), "{got}");
            }
        }
    }

    #[test]
    fn picks_that_leave_people_active_are_named() {
        let s = rows(
            &["id", "status", "active"],
            &[
                &["1", "suspended", ""],
                &["2", "active", ""],
                &["3", "weird", ""],
            ],
        );
        // No status column named: the engine reads `active` (empty here); the file's
        // `status` has a suspended person.
        let none = s.warnings(&Picks {
            id: Some("id".into()),
            ..Picks::default()
        });
        assert!(none.is_empty(), "{none:?}: 'status' has a non-status word");
        let picked = s.warnings(&Picks {
            id: Some("id".into()),
            status: Some("status".into()),
            ..Picks::default()
        });
        assert_eq!(picked.len(), 1);
        assert!(
            picked[0].contains("neither active nor suspended on 1 of 3 rows"),
            "{picked:?}"
        );
        let s = rows(&["id", "state"], &[&["1", "suspended"], &["2", "active"]]);
        let w = s.warnings(&Picks {
            id: Some("id".into()),
            groups: Some("teams".into()),
            status: None,
        });
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("groups column 'teams' is not in the file"));
        assert!(w[1].contains("column 'state' marks 1 of 2 people suspended"));
    }

    #[test]
    fn wide_files_and_long_values_are_bounded() {
        let header: Vec<String> = (0..150).map(|i| format!("c{i}")).collect();
        let mut r = Map::new();
        r.insert("c0".into(), json!("x".repeat(500)));
        let s = FileSample::of(&header, &[r]);
        assert_eq!(s.columns.len(), MAX_COLUMNS);
        assert_eq!(s.more_columns, 50);
        assert_eq!(s.columns[0].examples[0].chars().count(), EXAMPLE_CHARS + 1);
        assert_eq!(s.sample_rows[0].len(), MAX_COLUMNS);
    }
}
