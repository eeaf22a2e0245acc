//! `scimd audit`: the audit log (who did what, newest first), as a table, JSON or CSV.

use super::Env;
use crate::cli::AuditArgs;
use anyhow::{Result, bail};
use scim_core::Timestamp;
use scim_core::access::Role;
use scim_core::audit::{AuditAction, AuditQuery, MAX_AUDIT_PAGE, to_csv};
use scim_core::event::parse_time_bound;

pub async fn print(env: &Env, a: AuditArgs) -> Result<()> {
    let tenant_id = match &a.tenant {
        Some(slug) => Some(super::tenant::find(env, slug).await?.id),
        None => None,
    };
    let action = match a.action.as_deref() {
        None => None,
        Some(x) => Some(AuditAction::parse(x).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown action '{x}': one of {}",
                AuditAction::ALL.map(AuditAction::as_str).join(", ")
            )
        })?),
    };
    if !(1..=MAX_AUDIT_PAGE).contains(&a.limit) {
        bail!("--limit is 1 to {MAX_AUDIT_PAGE}");
    }
    let since = match a.since.as_deref() {
        Some(t) => Some(parse_time_bound(t, Timestamp::now())?),
        None => None,
    };
    let q = AuditQuery {
        tenant_id,
        actor: a.actor,
        action,
        since,
        before_id: a.before,
        limit: a.limit,
        ..AuditQuery::default()
    };
    // The command line reads the database directly: it sees what an instance admin sees.
    let rows = env.services.audit.list(&Role::Instance, q).await?;
    let format = if env.json { "json" } else { a.format.as_str() };
    match format {
        "json" => println!("{}", serde_json::to_string(&rows)?),
        "csv" => print!("{}", to_csv(&rows)?),
        "table" => {
            println!("ID\tAT\tACTOR\tROLE\tFROM\tTENANT\tACTION\tTARGET");
            for r in &rows {
                let e = &r.entry;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    e.at.rfc3339(),
                    e.actor.name,
                    e.actor.kind.as_str(),
                    e.actor.address.as_deref().unwrap_or("-"),
                    e.tenant.as_deref().unwrap_or("-"),
                    e.action.0.as_str(),
                    e.target.escape_debug()
                );
            }
        }
        other => bail!("--format is table, json or csv, not '{other}'"),
    }
    Ok(())
}
