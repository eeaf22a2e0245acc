//! New app's source step for a CSV or JSON export: Test source describes the file (its
//! columns, what each becomes on the target, the first rows, the suspended people) and
//! offers its columns as the id, groups and status pickers, filled with the ones they look
//! like; a template CSV to start from.

use super::*;
use scim_sync::engine::{ColumnUse, column_uses};
use scim_sync::source::file_sample::{FileSample, Picks, TEMPLATE_CSV};

/// A picker's "no column" choice (an empty one is "not chosen yet": Test source fills it).
pub(super) const NO_COLUMN: &str = "(none)";

/// A picker's value as the job's key: unset for "no column" and empty.
pub(super) fn picked(v: &str) -> Option<String> {
    Some(v.trim())
        .filter(|v| !v.is_empty() && *v != NO_COLUMN)
        .map(String::from)
}

/// One column of the file as the source step lists it.
pub struct ColumnRow {
    pub name: String,
    /// "30 of 30".
    pub filled: String,
    pub examples: String,
    /// What the job does with it: "id", "status: 3 suspended", "→ userName", "not used".
    pub used: String,
    pub unused: bool,
}

/// The file as Test source describes it.
pub struct SourceColumns {
    pub rows: usize,
    pub names: Vec<String>,
    pub columns: Vec<ColumnRow>,
    pub more_columns: usize,
    pub sample_rows: Vec<Vec<String>>,
    pub warnings: Vec<String>,
    /// Chosen columns the file does not have (kept in their pickers, marked).
    pub missing: Picks,
}

impl SourceColumns {
    pub(super) fn of(sample: &FileSample, spec: &JobSpec, picks: &Picks) -> Self {
        let names: Vec<String> = sample.columns.iter().map(|c| c.name.clone()).collect();
        let uses = column_uses(spec, &names);
        let columns = sample
            .columns
            .iter()
            .zip(uses)
            .map(|(c, (_, u))| ColumnRow {
                name: c.name.clone(),
                filled: format!("{} of {}", c.filled, sample.rows),
                examples: c.examples.join(" · "),
                unused: u == ColumnUse::Unused,
                used: match u {
                    ColumnUse::Id => "id (each person's stable source id)".into(),
                    ColumnUse::Groups => "groups (group names, memberships)".into(),
                    ColumnUse::Status => {
                        format!("status: {} suspended, {} active", c.suspended, c.active)
                    }
                    ColumnUse::Maps(t) => format!("→ {}", t.join(", ")),
                    ColumnUse::Unused => {
                        "not used (map it on the app's Mappings page after saving)".into()
                    }
                },
            })
            .collect();
        let absent = |p: &Option<String>| p.clone().filter(|c| sample.column(c).is_none());
        SourceColumns {
            missing: Picks {
                id: absent(&picks.id),
                groups: absent(&picks.groups),
                status: absent(&picks.status),
            },
            rows: sample.rows,
            names,
            columns,
            more_columns: sample.more_columns,
            sample_rows: sample.sample_rows.clone(),
            warnings: sample.warnings(picks),
        }
    }
}

/// Fills the pickers not chosen yet (empty) with the columns they look like; one with
/// nothing like it is "no column", but the id, which is required, is left to choose.
pub(super) fn fill(id: &mut String, groups: &mut String, status: &mut String, p: &Picks) {
    for (field, v) in [(&mut *id, &p.id), (groups, &p.groups), (status, &p.status)] {
        if field.trim().is_empty() {
            *field = v.clone().unwrap_or_else(|| NO_COLUMN.into());
        }
    }
    if id == NO_COLUMN {
        id.clear();
    }
}

/// `GET /console/apps/new/template.csv`: a CSV with the columns the default mappings read,
/// an id, a status and a groups column, and two example people.
pub async fn source_template(_s: ConsoleSession) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"scimd-people-template.csv\""),
            ),
        ],
        TEMPLATE_CSV,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickers_filled_only_where_unchosen() {
        let (mut id, mut groups, mut status) =
            ("emp".to_string(), String::new(), NO_COLUMN.to_string());
        fill(
            &mut id,
            &mut groups,
            &mut status,
            &Picks {
                id: Some("employee_id".into()),
                groups: Some("groups".into()),
                status: Some("status".into()),
            },
        );
        assert_eq!((id.as_str(), groups.as_str()), ("emp", "groups"));
        assert_eq!(status, NO_COLUMN, "'no column' is a choice and stays");
        assert_eq!(picked(&status), None);
        let (mut id, mut groups, mut status) = Default::default();
        fill(&mut id, &mut groups, &mut status, &Picks::default());
        assert_eq!(id, "", "no id found: still to choose");
        assert_eq!(groups, NO_COLUMN);
    }
}
