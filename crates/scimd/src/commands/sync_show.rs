//! How `scimd sync` prints what the engine says: checks, plans, cycle reports, the steps
//! of an on-demand provisioning, the log, a job's status. Text for people (every value from
//! a source or a target made terminal-safe), JSON with `--json`.

use super::Env;
use super::log::terminal_safe;
use anyhow::{Result, bail};
use scim_core::{CycleStatus, Status, SyncAction, SyncLogQuery, SyncLogRecord};
use scim_sync::apply::Outcome;
use scim_sync::engine::{Check, CycleReport, JobPhase, JobStatus};
use scim_sync::plan::{PlannedAction, SyncPlan};

/// One line per connection check: verdict, name, detail.
pub fn checks(checks: &[Check]) {
    for c in checks {
        println!(
            "{} {:<16} {}",
            match (c.ok, c.untested) {
                (_, true) => "n/t ",
                (true, false) => "ok  ",
                (false, false) => "FAIL",
            },
            c.name,
            terminal_safe(&c.detail)
        );
    }
}

fn value(v: &Option<serde_json::Value>, redacted: bool) -> String {
    match v {
        None => "(none)".into(),
        Some(_) if redacted => "***".into(),
        Some(v) => terminal_safe(&v.to_string()),
    }
}

/// `path: old → new` per change, redacted values masked.
fn changes(indent: &str, changes: &[scim_core::PropertyChange]) {
    for c in changes {
        println!(
            "{indent}{}: {} → {}",
            c.path,
            value(&c.old, c.redacted),
            value(&c.new, c.redacted)
        );
    }
}

pub fn plan(env: &Env, plan: &SyncPlan) -> Result<()> {
    if env.json {
        println!("{}", serde_json::to_string(plan)?);
        return Ok(());
    }
    println!(
        "plan for {} ({} cycle): {} action(s)",
        plan.job,
        plan.mode.as_str(),
        plan.actions.len()
    );
    for a in &plan.actions {
        println!(
            "{:<12} {:<5} {:<30} {}",
            a.action.as_str(),
            a.kind.as_str(),
            terminal_safe(&a.display),
            terminal_safe(&a.detail)
        );
        changes("    ", &a.changes);
        if !a.members_add.is_empty() {
            println!("    members +{}", a.members_add.len());
        }
        if !a.members_remove.is_empty() {
            println!("    members -{}", a.members_remove.len());
        }
    }
    let totals: Vec<String> = plan
        .totals
        .iter()
        .map(|(k, v)| format!("{} {v}", k.as_str()))
        .collect();
    println!(
        "totals: {}",
        if totals.is_empty() {
            "nothing to do".into()
        } else {
            totals.join(", ")
        }
    );
    if let Some(b) = &plan.breaker {
        println!("deletion breaker: {b}");
    }
    Ok(())
}

pub fn report(env: &Env, report: &CycleReport) -> Result<()> {
    if env.json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "cycle {} ({}) {} in {} ms: {} source users, {} groups; {} requests",
        report.cycle_id,
        report.mode.as_str(),
        report.status.as_str(),
        report.duration_ms,
        report.source_users,
        report.source_groups,
        report.counts.requests
    );
    for (a, n) in &report.counts.actions {
        println!("  {}: {n}", a.as_str());
    }
    for (s, n) in &report.counts.statuses {
        println!("  [{}] {n}", s.as_str());
    }
    if let Some(why) = &report.counts.stopped {
        println!(
            "stopped early: {}; {} object(s) left for the next cycle",
            terminal_safe(why),
            report.counts.not_started
        );
    }
    if let Some(q) = &report.quarantine {
        println!(
            "{}: {} ({})",
            if q.entered {
                "quarantined"
            } else {
                "quarantine lifted"
            },
            q.reason.as_str(),
            terminal_safe(&q.detail)
        );
    }
    if report.counts.retries > 0 || report.counts.throttled > 0 {
        println!(
            "  retries: {} ({} throttled answers)",
            report.counts.retries, report.counts.throttled
        );
    }
    if let Some(b) = &report.breaker {
        println!(
            "deletion breaker: {b}\n  approve with: scimd sync approve-deletes {}",
            report.job
        );
    }
    Ok(())
}

pub fn provisioned(env: &Env, action: &PlannedAction, out: &Outcome) -> Result<()> {
    if env.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "action": action, "status": out.status, "target_id": out.target_id,
                "error_code": out.error_code, "steps": action.steps.iter().chain(out.steps.iter()).collect::<Vec<_>>(),
            }))?
        );
        return Ok(());
    }
    println!(
        "{} {} '{}': {}",
        action.action.as_str(),
        action.kind.as_str(),
        terminal_safe(&action.display),
        out.status.as_str()
    );
    for s in action.steps.iter().chain(out.steps.iter()) {
        println!(
            "  {:<20} {:<8} {}",
            s.step.as_str(),
            s.status.as_str(),
            terminal_safe(&s.detail)
        );
    }
    changes("  ", &out.changes);
    Ok(())
}

/// The log's filters as typed; a value that is not a known action or status is refused
/// (it would match nothing, silently).
pub fn log_query(
    cycle: Option<String>,
    action: Option<String>,
    status: Option<String>,
    object: Option<String>,
    limit: u32,
) -> Result<SyncLogQuery> {
    let action = match action {
        None => None,
        Some(a) => Some(SyncAction::parse(&a).ok_or_else(|| {
            let all: Vec<&str> = SyncAction::ALL.iter().map(|a| a.as_str()).collect();
            anyhow::anyhow!("--action '{a}': use one of {}", all.join(", "))
        })?),
    };
    let status = match status {
        None => None,
        Some(s) => Some(Status::parse(&s).ok_or_else(|| {
            anyhow::anyhow!("--status '{s}': use Success, Failure, Skipped or Warning")
        })?),
    };
    Ok(SyncLogQuery {
        cycle_id: cycle,
        action,
        status,
        object,
        before_seq: None,
        limit,
    })
}

pub fn log(env: &Env, rows: &[SyncLogRecord], format: &str) -> Result<()> {
    let format = if env.json { "json" } else { format };
    match format {
        "json" => {
            let out: Vec<_> = rows.iter().map(scim_sync::export::log_json).collect();
            println!("{}", serde_json::to_string(&out)?);
        }
        // Cells from sources and targets may hold control characters: escaped.
        "csv" => print!(
            "{}",
            terminal_safe_lines(&scim_sync::export::log_csv(rows)?)
        ),
        "table" => {
            println!("SEQ\tTIME\tCYCLE\tACTION\tSTATUS\tKIND\tOBJECT\tERROR\tDETAIL");
            for r in rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.seq,
                    r.at,
                    &r.cycle_id[..r.cycle_id.len().min(8)],
                    r.action.as_str(),
                    r.status.as_str(),
                    r.kind.as_str(),
                    terminal_safe(&r.display),
                    r.error_code.map_or("", |c| c.as_str()),
                    terminal_safe(r.detail())
                );
            }
        }
        other => bail!("--format must be table, json or csv, not '{other}'"),
    }
    Ok(())
}

/// Text whose lines are kept, each made terminal-safe.
fn terminal_safe_lines(text: &str) -> String {
    text.lines()
        .map(|l| terminal_safe(l) + "\n")
        .collect::<String>()
}

pub fn status(env: &Env, s: &JobStatus) -> Result<()> {
    if env.json {
        println!("{}", serde_json::to_string(s)?);
        return Ok(());
    }
    let phase = match (s.state, &s.quarantine) {
        (JobPhase::Quarantined, Some(q)) => format!(
            "quarantined ({}: {}, since {})",
            q.reason.as_str(),
            terminal_safe(&q.detail),
            q.since
        ),
        (p, _) => p.as_str().to_string(),
    };
    println!(
        "{}: {phase}; {}{}",
        s.name,
        if s.enabled { "on" } else { "off" },
        if s.paused { ", paused" } else { "" }
    );
    if !s.enabled {
        println!(
            "  not scheduled: `scimd sync job enable {}` turns it on (scimd serve then runs it every interval)",
            s.name
        );
    } else if let Some(at) = &s.next_run {
        println!("  next cycle: {at}");
    }
    if let Some(t) = &s.throttled_until {
        println!("  the target asked to wait until {t} (Retry-After): nothing is sent before");
    }
    if let Some(since) = &s.running_since {
        println!("  a cycle is running since {since}");
    }
    match &s.last_cycle {
        Some(c) => {
            println!(
                "last cycle: {} {} {} at {}{}",
                c.cycle_id,
                c.mode.as_str(),
                c.status.as_str(),
                c.started,
                c.duration_ms
                    .map_or_else(String::new, |d| format!(" ({d} ms)"))
            );
            if c.status == CycleStatus::Failed
                && let Some(e) = &c.counts.error
            {
                println!("  error: {}", terminal_safe(e));
            }
            if let Some(why) = &c.counts.stopped {
                println!("  stopped: {}", terminal_safe(why));
            }
        }
        None => println!("no cycle yet"),
    }
    for c in &s.ledger {
        println!("  {} {}: {}", c.kind.as_str(), c.state.as_str(), c.count);
    }
    println!("staged deletes: {}", s.staged_deletes);
    if s.escrowed + s.abandoned > 0 {
        println!("in escrow: {} (abandoned: {})", s.escrowed, s.abandoned);
    }
    for t in &s.next_timers {
        println!(
            "  timer: {} {} {} ({}) due {}",
            t.action.as_str(),
            t.kind.as_str(),
            t.source_id,
            t.trigger.as_str(),
            t.due.as_deref().unwrap_or("?")
        );
    }
    if s.timers > s.next_timers.len() as u64 {
        println!(
            "  … the 10 soonest of {} timer(s) (the console's app page applies or cancels them all)",
            s.timers
        );
    }
    Ok(())
}
