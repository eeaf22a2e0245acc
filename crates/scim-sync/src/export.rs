//! The per-object log as the operator exports it (JSON and CSV), one shape for the CLI
//! (`scimd sync log --format`) and the console's export links.

use crate::error::{SyncError, SyncResult};
use scim_core::SyncLogRecord;
use serde_json::{Value, json};

/// One log row as JSON: every field, the time in RFC 3339.
pub fn log_json(r: &SyncLogRecord) -> Value {
    json!({
        "seq": r.seq, "time": r.at.rfc3339(), "cycle_id": r.cycle_id, "change_id": r.change_id,
        "job": r.job, "kind": r.kind, "source_id": r.source_id, "target_id": r.target_id,
        "display": r.display, "action": r.action, "status": r.status, "steps": r.steps,
        "changes": r.changes, "error_code": r.error_code, "duration_ms": r.duration_ms,
    })
}

/// A CSV cell a spreadsheet will not run as a formula and a terminal will not obey (the
/// provisioning log's rule, `scim_core::event::csv_cell`).
fn csv_safe(s: &str) -> String {
    scim_core::event::csv_cell(s)
}

/// A row's steps as one cell: `step: status: detail` per step, separated by ` | `.
fn steps_text(r: &SyncLogRecord) -> String {
    r.steps
        .iter()
        .map(|s| format!("{}: {}: {}", s.step.as_str(), s.status.as_str(), s.detail))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The rows as CSV with a header line; object names and changes are formula-safe.
pub fn log_csv(rows: &[SyncLogRecord]) -> SyncResult<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| SyncError::Job(format!("cannot write the log as CSV: {e}"));
    w.write_record([
        "seq",
        "time",
        "job",
        "cycle_id",
        "change_id",
        "kind",
        "source_id",
        "target_id",
        "display",
        "action",
        "status",
        "error_code",
        "duration_ms",
        "steps",
        "changes",
    ])
    .map_err(fail)?;
    for r in rows {
        w.write_record([
            r.seq.to_string(),
            r.at.rfc3339(),
            csv_safe(&r.job),
            r.cycle_id.clone(),
            r.change_id.clone(),
            r.kind.as_str().to_string(),
            csv_safe(&r.source_id),
            csv_safe(r.target_id.as_deref().unwrap_or("")),
            csv_safe(&r.display),
            r.action.as_str().to_string(),
            r.status.as_str().to_string(),
            r.error_code.map_or("", |c| c.as_str()).to_string(),
            r.duration_ms.to_string(),
            csv_safe(&steps_text(r)),
            csv_safe(&serde_json::to_string(&r.changes).unwrap_or_default()),
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| SyncError::Job(format!("cannot write the log as CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| SyncError::Job(format!("log CSV is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_quoted() {
        assert_eq!(csv_safe("=cmd()"), "'=cmd()");
        assert_eq!(csv_safe("alice"), "alice");
    }
}
