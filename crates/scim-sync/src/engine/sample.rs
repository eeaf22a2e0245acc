//! A file source described before it is set up (the console's Test source for a CSV or
//! JSON export): its columns, the id, groups and status columns they suggest, and what each
//! column gives the target under the job's mappings.

use super::Engine;
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::mapping::Mappings;
use crate::model::ObjectKind;
use crate::source::SourceKind;
use crate::source::file_sample::FileSample;
use scim_core::SourceFile;
use std::collections::{BTreeMap, BTreeSet};

/// What a column is used for by a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnUse {
    Id,
    Groups,
    Status,
    /// Target attributes the job's mappings fill from it.
    Maps(Vec<String>),
    /// Read by nothing.
    Unused,
}

impl Engine {
    /// The job's file described (a file source's only; its id, groups and status columns
    /// may be unset or wrong: this is how they are chosen). `file`: the file in hand.
    pub async fn sample_file(
        &self,
        spec: &JobSpec,
        file: Option<SourceFile>,
    ) -> SyncResult<FileSample> {
        let f = spec.source.file().ok_or_else(|| {
            SyncError::Job("only a CSV or JSON source has columns to describe".into())
        })?;
        let ctx = self.build_context(spec, None, file)?;
        f.sample(spec.source.kind() == SourceKind::Json, &ctx).await
    }
}

/// What each of `columns` is used for by `spec` (a file source's job): the id, groups and
/// status columns, or the target attributes its user mappings read it into.
pub fn column_uses(spec: &JobSpec, columns: &[String]) -> Vec<(String, ColumnUse)> {
    let f = spec.source.file();
    let role =
        |c: &str, pick: Option<&Option<String>>| pick.is_some_and(|p| p.as_deref() == Some(c));
    let set: BTreeSet<String> = columns.iter().cloned().collect();
    let mut reads: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let compiled = Mappings::compile(spec, ObjectKind::User, &set);
    if let Ok(m) = &compiled {
        for c in &m.list {
            for r in &c.reads {
                if let Some(col) = columns.iter().find(|col| col.as_str() == r) {
                    reads.entry(col).or_default().push(c.target.text.clone());
                }
            }
        }
    }
    columns
        .iter()
        .map(|c| {
            let u = if role(c, f.map(|f| &f.id)) {
                ColumnUse::Id
            } else if role(c, f.map(|f| &f.groups)) {
                ColumnUse::Groups
            } else if role(c, f.map(|f| &f.status))
                || (f.is_some_and(|f| f.status.is_none()) && c == "active")
            {
                ColumnUse::Status
            } else {
                match reads.remove(c.as_str()) {
                    Some(t) => ColumnUse::Maps(t),
                    None => ColumnUse::Unused,
                }
            };
            (c.clone(), u)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A CSV job whose source names these columns.
    fn csv_job(columns: Value) -> JobSpec {
        let mut source = json!({"kind": "csv", "path": "/x.csv", "id": "employee_id"});
        source
            .as_object_mut()
            .unwrap()
            .extend(columns.as_object().unwrap().clone());
        JobSpec::from_value(json!({
            "name": "hr",
            "source": source,
            "target": {"url": "http://127.0.0.1/", "token": "-"},
        }))
        .unwrap()
    }

    #[test]
    fn each_column_says_what_it_becomes() {
        let spec = csv_job(json!({"groups": "teams", "status": "state"}));
        let cols: Vec<String> = [
            "employee_id",
            "userName",
            "name.givenName",
            "teams",
            "state",
            "shoe size",
        ]
        .map(String::from)
        .into();
        let uses = column_uses(&spec, &cols);
        let by: BTreeMap<_, _> = uses.into_iter().collect();
        assert_eq!(by["employee_id"], ColumnUse::Id);
        assert_eq!(by["teams"], ColumnUse::Groups);
        assert_eq!(by["state"], ColumnUse::Status);
        assert_eq!(by["userName"], ColumnUse::Maps(vec!["userName".into()]));
        assert_eq!(
            by["name.givenName"],
            ColumnUse::Maps(vec!["name.givenName".into()])
        );
        assert_eq!(by["shoe size"], ColumnUse::Unused);
        // With no status column named, an `active` column is the status.
        let plain = csv_job(json!({}));
        let uses = column_uses(&plain, &["active".to_string()]);
        assert_eq!(uses[0].1, ColumnUse::Status);
    }

    /// The template's every column is used: id, status, groups, or a mapping.
    #[test]
    fn the_template_maps_every_column() {
        let mut r = csv::Reader::from_reader(crate::source::file_sample::TEMPLATE_CSV.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header[5], "emails[type eq \"work\"].value");
        let rows: Vec<_> = r.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 2);
        let spec = csv_job(json!({"groups": "groups", "status": "status"}));
        for (c, u) in column_uses(&spec, &header) {
            assert_ne!(u, ColumnUse::Unused, "{c}");
        }
    }
}
