//! CSV and JSON files (HR exports): one row or object per user. Every read is a full read:
//! a user absent from the file is deleted at the source (the breaker guards mass deletes).
//! The file is a path on this node, or a file uploaded in the console and kept in the
//! database with its app (read from there at each cycle, so every node sees the same file).

use super::file_sample::{FileSample, status_word};
use super::{BuildContext, Source, SourceBatch, group_id_for_name};
use crate::error::{SyncError, SyncResult};
use crate::model::{ObjectKind, SourceObject};
use async_trait::async_trait;
use scim_core::{SourceFile, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

/// `[source]` of `kind = "csv"` or `"json"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The file on this node (relative to the job file).
    pub path: Option<PathBuf>,
    /// Instead of `path`: the job reads the file uploaded in the console, kept in the
    /// database with the job (every node reads the same file). The value is the name of
    /// the first upload; a new export replaces the file, not this name.
    pub upload: Option<String>,
    /// The column or field with the stable source id.
    pub id: Option<String>,
    /// A column (list separated by `group_separator`) or field (array) of group display
    /// names.
    pub groups: Option<String>,
    #[serde(default = "default_separator")]
    pub group_separator: String,
    /// A second file of `group,member` rows (member = the user's source id).
    pub groups_path: Option<PathBuf>,
    /// A column whose value says the user is suspended (`false`, `0`, `no`,
    /// `suspended`, `disabled`, `inactive`, `terminated`, `leaver` mean suspended);
    /// `active` when not named.
    pub status: Option<String>,
}

fn default_separator() -> String {
    ";".into()
}

impl FileSpec {
    pub fn check(&self) -> Result<(), String> {
        match (&self.path, &self.upload) {
            (None, None) => {
                return Err(
                    "a csv or json source needs source.path (or a file uploaded in the console)"
                        .into(),
                );
            }
            (Some(_), Some(_)) => {
                return Err(
                    "source.path and source.upload are two ways to give the file: keep one".into(),
                );
            }
            _ => {}
        }
        if self.id.as_deref().is_none_or(|i| i.trim().is_empty()) {
            return Err("source.id (the column with the stable source id) is required".into());
        }
        Ok(())
    }

    /// The source: the file in hand, the uploaded one, or the path.
    pub fn build(&self, json: bool, ctx: &BuildContext) -> SyncResult<FileSource> {
        let id = self
            .id
            .clone()
            .ok_or_else(|| SyncError::Job("source.id is required".into()))?;
        Ok(self.open(json, ctx, id))
    }

    /// The file described, whatever its id, groups and status columns are (the console's
    /// Test source, which offers them to pick from).
    pub async fn sample(&self, json: bool, ctx: &BuildContext) -> SyncResult<FileSample> {
        let me = self.open(json, ctx, String::new());
        let fetched = me.fetch().await?;
        tokio::task::spawn_blocking(move || {
            let text = me.text(fetched.as_ref())?;
            let (header, records) = me.records(&text)?;
            Ok(FileSample::of(&header, &records))
        })
        .await
        .map_err(|e| SyncError::Internal(format!("the file reader task failed: {e}")))?
    }

    fn open(&self, json: bool, ctx: &BuildContext, id: String) -> FileSource {
        let resolve = |p: &std::path::Path| match &ctx.base_dir {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        };
        let origin = match (&ctx.file, &self.path) {
            (Some(f), _) => FileOrigin::Given(f.clone()),
            (None, Some(p)) => FileOrigin::Path(resolve(p)),
            (None, None) => FileOrigin::Stored {
                job: ctx.job.clone(),
                store: ctx.store.clone(),
            },
        };
        FileSource {
            json,
            origin,
            groups_path: self.groups_path.as_deref().map(resolve),
            id,
            groups: self.groups.clone(),
            separator: self.group_separator.clone(),
            // An `active` column says the state when no status column is named.
            status: self.status.clone().or_else(|| Some("active".into())),
        }
    }
}

/// One row or object of the file.
type Record = Map<String, Value>;

/// Where the file's text comes from.
#[derive(Clone)]
pub enum FileOrigin {
    /// A path on this node.
    Path(PathBuf),
    /// The file uploaded for the job `job`, read from the database at each read.
    Stored { job: String, store: Arc<dyn Store> },
    /// A file in hand (uploaded, not stored yet: the console's Test source).
    Given(Arc<SourceFile>),
}

#[derive(Clone)]
pub struct FileSource {
    json: bool,
    origin: FileOrigin,
    groups_path: Option<PathBuf>,
    id: String,
    groups: Option<String>,
    separator: String,
    status: Option<String>,
}

/// Values that mean "not active" in a status column.
fn means_suspended(v: &Value) -> bool {
    status_word(v) == Some(false)
}

impl FileSource {
    /// The file's name as the log and errors show it.
    fn name(&self) -> String {
        match &self.origin {
            FileOrigin::Path(p) => p.display().to_string(),
            FileOrigin::Stored { job, .. } => format!("uploaded for {job}"),
            FileOrigin::Given(f) => f.name.clone(),
        }
    }

    /// The file's text: read here for a path, fetched by the caller otherwise.
    fn text(&self, fetched: Option<&SourceFile>) -> SyncResult<String> {
        match (&self.origin, fetched) {
            (FileOrigin::Path(p), _) => std::fs::read_to_string(p)
                .map_err(|e| SyncError::Source(format!("cannot read {}: {e}", p.display()))),
            (FileOrigin::Given(f), _) => Ok(f.content.clone()),
            (FileOrigin::Stored { .. }, Some(f)) => Ok(f.content.clone()),
            (FileOrigin::Stored { job, .. }, None) => Err(SyncError::Source(format!(
                "no source file has been uploaded for {job}: upload one on the app's page"
            ))),
        }
    }

    /// The stored file, for a job that reads the uploaded one.
    async fn fetch(&self) -> SyncResult<Option<SourceFile>> {
        Ok(match &self.origin {
            FileOrigin::Stored { job, store } => store.source_file(job).await?,
            _ => None,
        })
    }

    /// The columns (a CSV's header; a JSON file's are found in its objects) and the records.
    fn records(&self, text: &str) -> SyncResult<(Vec<String>, Vec<Record>)> {
        let name = self.name();
        let open_err =
            |e: &dyn std::fmt::Display| SyncError::Source(format!("cannot read {name}: {e}"));
        match self.json {
            true => {
                let v: Value = serde_json::from_str(text).map_err(|e| open_err(&e))?;
                let list = match v {
                    Value::Array(a) => a,
                    Value::Object(mut o) => match o.remove("users") {
                        Some(Value::Array(a)) => a,
                        _ => {
                            return Err(open_err(
                                &"expected an array of users or {\"users\": [...]}",
                            ));
                        }
                    },
                    _ => return Err(open_err(&"expected an array of users")),
                };
                let records = list
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::Object(o) => Ok(o),
                        _ => Err(open_err(&format!("element {} is not an object", i + 1))),
                    })
                    .collect::<SyncResult<_>>()?;
                Ok((Vec::new(), records))
            }
            false => {
                let mut r = csv::ReaderBuilder::new()
                    .trim(csv::Trim::All)
                    .from_reader(text.as_bytes());
                let headers = r.headers().map_err(|e| open_err(&e))?.clone();
                let mut out = Vec::new();
                for (i, row) in r.records().enumerate() {
                    let row = row.map_err(|e| open_err(&format!("row {}: {e}", i + 2)))?;
                    let mut m = Map::new();
                    for (h, v) in headers.iter().zip(row.iter()) {
                        if !v.is_empty() {
                            m.insert(h.to_string(), Value::String(v.to_string()));
                        }
                    }
                    out.push(m);
                }
                Ok((headers.iter().map(String::from).collect(), out))
            }
        }
    }

    fn read_all(&self, text: &str) -> SyncResult<SourceBatch> {
        let mut users = Vec::new();
        let mut groups: BTreeMap<String, SourceObject> = BTreeMap::new();
        let mut seen = HashSet::new();
        let group = |name: &str, member: &str, groups: &mut BTreeMap<String, SourceObject>| {
            let id = group_id_for_name(name);
            if id.is_empty() {
                return;
            }
            let g = groups.entry(id.clone()).or_insert_with(|| {
                let mut g = SourceObject::new(ObjectKind::Group, &id);
                g.attributes.insert(
                    "displayName".to_string(),
                    Value::String(name.trim().to_string()),
                );
                g
            });
            if !member.is_empty() && !g.members.iter().any(|m| m == member) {
                g.members.push(member.to_string());
            }
        };
        for (i, mut rec) in self.records(text)?.1.into_iter().enumerate() {
            let id = match rec.get(&self.id) {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(SyncError::Source(format!(
                        "{} record {}: no value in the id column '{}'",
                        self.name(),
                        i + 1,
                        self.id
                    )));
                }
            };
            if !seen.insert(id.clone()) {
                return Err(SyncError::Source(format!(
                    "{}: the id '{id}' appears twice; ids must be unique",
                    self.name()
                )));
            }
            if let Some(col) = &self.groups {
                match rec.remove(col) {
                    Some(Value::String(s)) => {
                        for name in s.split(self.separator.as_str()) {
                            group(name, &id, &mut groups);
                        }
                    }
                    Some(Value::Array(a)) => {
                        for name in a.iter().filter_map(Value::as_str) {
                            group(name, &id, &mut groups);
                        }
                    }
                    _ => {}
                }
            }
            let suspended = self
                .status
                .as_ref()
                .and_then(|c| rec.get(c))
                .is_some_and(means_suspended);
            users.push(SourceObject {
                kind: ObjectKind::User,
                id,
                attributes: rec,
                suspended,
                members: Vec::new(),
            });
        }
        if let Some(gp) = &self.groups_path {
            let mut r = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_path(gp)
                .map_err(|e| SyncError::Source(format!("cannot read {}: {e}", gp.display())))?;
            for row in r.deserialize::<BTreeMap<String, String>>() {
                let row = row.map_err(|e| SyncError::Source(format!("{}: {e}", gp.display())))?;
                let name = row.get("group").map(String::as_str).unwrap_or_default();
                let member = row.get("member").map(String::as_str).unwrap_or_default();
                group(name, member, &mut groups);
            }
        }
        users.extend(groups.into_values());
        Ok(SourceBatch {
            full: true,
            objects: users,
            deleted: Vec::new(),
            present: Default::default(),
            watermark: None,
            // An export that comes back empty or sharply shrunk is far likelier a failed
            // export than a company that let most of its people go: the complete-read
            // guard holds those disables and deletes for approval.
            guarded: true,
            ..SourceBatch::default()
        })
    }
}

#[async_trait]
impl Source for FileSource {
    async fn read(&self, _watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let fetched = self.fetch().await?;
        // Reading and parsing a large file is blocking, CPU-bound work: keep it off the
        // async workers.
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let text = me.text(fetched.as_ref())?;
            me.read_all(&text)
        })
        .await
        .map_err(|e| SyncError::Internal(format!("the file reader task failed: {e}")))?
    }

    fn describe(&self) -> String {
        format!(
            "{} file {}",
            if self.json { "json" } else { "csv" },
            self.name()
        )
    }
}
