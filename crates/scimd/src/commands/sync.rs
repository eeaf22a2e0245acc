//! `scimd sync …`: the provisioning engine's commands, over `scim_sync::Engine`.

use super::Env;
use super::log::terminal_safe;
use crate::cli::{JobCmd, SyncCmd};
use anyhow::{Context, Result, bail};
use scim_core::{SyncLogQuery, SyncStore};
use scim_sync::plan::SyncPlan;
use scim_sync::{Engine, SyncKey};
use std::path::Path;

/// The sync key from SCIMD_SYNC_KEY, else the key file; created (mode 0600) when `create`.
pub(super) fn sync_key(env: &Env, create: bool) -> Result<Option<SyncKey>> {
    if let Ok(text) = std::env::var("SCIMD_SYNC_KEY") {
        return Ok(Some(SyncKey::from_text(&text)?));
    }
    let path = &env.settings.sync_key_file;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            Ok(Some(SyncKey::from_text(&text).with_context(|| {
                format!("sync key file {}", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let text = create_key_file(path)?;
            eprintln!(
                "created the sync key {} (back it up: stored target tokens need it)",
                path.display()
            );
            Ok(Some(SyncKey::from_text(&text)?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read sync key file {}", path.display())),
    }
}

/// A new random key in a new file (mode 0600), its directory made if needed.
fn create_key_file(path: &Path) -> Result<String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = SyncKey::generate();
    write_private(path, &text)?;
    Ok(text)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

pub fn engine(env: &Env, create_key: bool) -> Result<Engine> {
    let mut engine = Engine::new(
        env.store.clone(),
        sync_key(env, create_key)?,
        time::Duration::days(i64::from(env.settings.log_retention_days)),
    );
    engine.lease = std::time::Duration::from_secs(env.settings.sync_lease_secs);
    Ok(engine)
}

/// The scheduler `serve` runs: the enabled jobs on their schedules, under leases, with
/// notifications to each job's webhook, and by e-mail when SMTP is configured.
pub fn scheduler(
    env: &Env,
    s: &crate::config::Settings,
) -> Result<std::sync::Arc<scim_sync::schedule::Scheduler>> {
    use scim_sync::notify::{Notifier, Notifiers, SmtpNotifier, WebhookNotifier};
    let mut notifiers: Vec<std::sync::Arc<dyn Notifier>> =
        vec![std::sync::Arc::new(WebhookNotifier::new()?)];
    if let Some(url) = &s.smtp_url {
        notifiers.push(std::sync::Arc::new(
            SmtpNotifier::new(url, &s.smtp_from)
                .context("the SMTP settings (smtp_url, smtp_from)")?,
        ));
    }
    let notifier: Option<std::sync::Arc<dyn Notifier>> =
        Some(std::sync::Arc::new(Notifiers(notifiers)));
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
    // The key is made now if there is none, so a job imported with an inline token after
    // serve started can be opened by this node. Told in the log (serve's stderr may be JSON
    // lines); a node racing another to make it reads the other's.
    let path = &env.settings.sync_key_file;
    if std::env::var_os("SCIMD_SYNC_KEY").is_none()
        && !path.exists()
        && create_key_file(path).is_ok()
    {
        tracing::info!(path = %path.display(), "created the sync key (back it up: stored target tokens need it)");
    }
    let engine = engine(env, false)?;
    Ok(std::sync::Arc::new(scim_sync::schedule::Scheduler {
        engine,
        node: format!(
            "{host}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
        tick: std::time::Duration::from_secs(s.sync_tick_secs),
        notifier,
    }))
}

/// One line per connection check: verdict, name, detail.
fn print_checks(checks: &[scim_sync::engine::Check]) {
    for c in checks {
        println!(
            "{} {:<16} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            terminal_safe(&c.detail)
        );
    }
}

/// Whether a job named on the command line carries an inline token (a key is then needed).
fn needs_key(job: &str) -> bool {
    Path::new(job).is_file()
        && std::fs::read_to_string(job).is_ok_and(|t| {
            t.lines().any(|l| {
                l.trim_start().starts_with("token") && l.contains('=') && !l.contains("token_")
            })
        })
}

pub async fn run(env: &Env, cmd: SyncCmd) -> Result<()> {
    match cmd {
        SyncCmd::Generate {
            users,
            groups,
            members,
            variant,
            out,
        } => {
            scim_sync::generate::Directory {
                users,
                groups,
                members,
                variant,
            }
            .write_csv(&out)?;
            println!(
                "wrote {users} users in {groups} groups to {}",
                out.display()
            );
            Ok(())
        }
        SyncCmd::Job(c) => job(env, c).await,
        SyncCmd::Pause { job } => {
            engine(env, false)?.set_paused(&job, true).await?;
            println!("paused '{job}': a cycle in flight stops after its current objects");
            Ok(())
        }
        SyncCmd::Resume { job } => {
            engine(env, false)?.set_paused(&job, false).await?;
            println!("resumed '{job}'");
            Ok(())
        }
        SyncCmd::Restart { job, scope } => {
            let scope = scim_sync::engine::RestartScope::parse(&scope)?;
            let done = engine(env, false)?.restart(&job, scope).await?;
            println!("{job}: {done}");
            Ok(())
        }
        SyncCmd::Reauthorize {
            job,
            token_env,
            token_file,
        } => {
            let token = match (token_env, token_file) {
                (Some(v), _) => std::env::var(&v).with_context(|| format!("{v} is not set"))?,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                (None, None) => {
                    let mut t = String::new();
                    std::io::stdin().read_line(&mut t)?;
                    t
                }
            };
            let checks = engine(env, true)?.reauthorize(&job, token.trim()).await?;
            let ok = checks.iter().all(|c| c.ok);
            print_checks(&checks);
            if !ok {
                bail!("the new token is stored but a check failed: the job stays quarantined");
            }
            println!("new token stored; quarantine lifted");
            Ok(())
        }
        SyncCmd::Plan { job } => {
            let e = engine(env, false)?;
            let (spec, record) = e.resolve(&job).await?;
            let prepared = e.prepare(&spec, record.as_ref()).await?;
            print_plan(env, &prepared.plan)
        }
        SyncCmd::Run { job } => {
            let e = engine(env, needs_key(&job))?;
            let (spec, _) = e.resolve(&job).await?;
            // Ctrl-C stops the cycle as a pause does: what is in flight finishes and is
            // recorded, and the next run carries on.
            let halt = std::sync::Arc::new(scim_sync::apply::Halt::default());
            let stopper = {
                let halt = halt.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        eprintln!("stopping after the objects in flight (Ctrl-C again to abort)");
                        halt.stop("interrupted");
                        let _ = tokio::signal::ctrl_c().await;
                        std::process::exit(130);
                    }
                })
            };
            let node = format!("cli-{}", std::process::id());
            let report = scim_sync::schedule::run_leased(&e, &spec, &node, halt).await;
            stopper.abort();
            let Some(report) = report? else {
                bail!(
                    "job '{}' is running elsewhere (scimd serve or another `sync run` holds its lease); try again when that cycle ends",
                    spec.name
                );
            };
            if env.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "cycle {} ({}) {} in {} ms: {} source users, {} groups; {} requests",
                    report.cycle_id,
                    report.mode,
                    report.status,
                    report.duration_ms,
                    report.source_users,
                    report.source_groups,
                    report.counts.requests
                );
                for (a, n) in &report.counts.actions {
                    println!("  {a}: {n}");
                }
                for (s, n) in &report.counts.statuses {
                    println!("  [{s}] {n}");
                }
                if let Some(why) = &report.counts.stopped {
                    println!(
                        "stopped early: {why}; {} object(s) left for the next cycle",
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
                        q.reason,
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
            }
            Ok(())
        }
        SyncCmd::Test { job } => {
            let e = engine(env, false)?;
            let (spec, record) = e.resolve(&job).await?;
            let checks = e.test(&spec, record.as_ref()).await;
            let ok = checks.iter().all(|c| c.ok);
            if env.json {
                println!(
                    "{}",
                    serde_json::to_string(&serde_json::json!({"ok": ok, "checks": checks}))?
                );
            } else {
                print_checks(&checks);
                println!(
                    "{}",
                    if ok {
                        "all checks passed"
                    } else {
                        "some checks failed"
                    }
                );
            }
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        SyncCmd::Provision { job, user } => {
            let e = engine(env, needs_key(&job))?;
            let (spec, record) = e.resolve(&job).await?;
            let (action, out) = e.provision_one(&spec, record.as_ref(), &user).await?;
            if env.json {
                println!(
                    "{}",
                    serde_json::to_string(&serde_json::json!({
                        "action": action, "status": out.status, "target_id": out.target_id,
                        "error_code": out.error_code, "steps": action.steps.iter().chain(out.steps.iter()).collect::<Vec<_>>(),
                    }))?
                );
            } else {
                println!(
                    "{} {} '{}': {}",
                    action.action.as_str(),
                    action.kind.as_str(),
                    terminal_safe(&action.display),
                    out.status
                );
                for s in action.steps.iter().chain(out.steps.iter()) {
                    println!(
                        "  {:<20} {:<8} {}",
                        s.step,
                        s.status,
                        terminal_safe(&s.detail)
                    );
                }
                for c in &out.changes {
                    println!(
                        "  {}: {} → {}",
                        c.path,
                        show(&c.old, c.redacted),
                        show(&c.new, c.redacted)
                    );
                }
            }
            if out.status == "Failure" {
                std::process::exit(1);
            }
            Ok(())
        }
        SyncCmd::Log {
            job,
            cycle,
            action,
            status,
            object,
            limit,
            format,
        } => {
            let e = engine(env, false)?;
            let rows = e
                .log(
                    &job,
                    &SyncLogQuery {
                        cycle_id: cycle,
                        action,
                        status,
                        object,
                        before_seq: None,
                        limit,
                    },
                )
                .await?;
            let format = if env.json { "json" } else { format.as_str() };
            match format {
                "json" => {
                    let out: Vec<_> = rows.iter().map(scim_sync::export::log_json).collect();
                    println!("{}", serde_json::to_string(&out)?);
                }
                "csv" => print!("{}", scim_sync::export::log_csv(&rows)?),
                "table" => {
                    println!("SEQ\tTIME\tCYCLE\tACTION\tSTATUS\tKIND\tOBJECT\tERROR\tDETAIL");
                    for r in &rows {
                        let detail = r
                            .steps
                            .as_array()
                            .and_then(|s| s.last())
                            .and_then(|s| s.get("detail"))
                            .and_then(|d| d.as_str())
                            .unwrap_or("");
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            r.seq,
                            r.at,
                            &r.cycle_id[..r.cycle_id.len().min(8)],
                            r.action,
                            r.status,
                            r.kind,
                            terminal_safe(&r.display),
                            r.error_code.clone().unwrap_or_default(),
                            terminal_safe(detail)
                        );
                    }
                }
                other => bail!("--format must be table, json or csv, not '{other}'"),
            }
            Ok(())
        }
        SyncCmd::Status { job } => {
            let s = engine(env, false)?.status(&job).await?;
            if env.json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!(
                    "{}: {} ({})",
                    s.name,
                    s.state,
                    if s.enabled { "on" } else { "off" }
                );
                match &s.last_cycle {
                    Some(c) => println!("last cycle: {c}"),
                    None => println!("no cycle yet"),
                }
                for (k, n) in &s.ledger {
                    println!("  {k}: {n}");
                }
                println!("staged deletes: {}", s.staged_deletes);
                for t in &s.next_timers {
                    println!("  timer: {t}");
                }
            }
            Ok(())
        }
        SyncCmd::ApproveDeletes { job } => {
            let n = engine(env, false)?.decide_staged(&job, true).await?;
            println!(
                "{n} staged delete(s) approved: they are applied in the next cycle (scimd sync run {job})"
            );
            Ok(())
        }
        SyncCmd::RejectDeletes { job } => {
            let n = engine(env, false)?.decide_staged(&job, false).await?;
            println!("{n} staged delete(s) rejected: those objects stay on the target");
            Ok(())
        }
    }
}

fn show(v: &Option<serde_json::Value>, redacted: bool) -> String {
    match v {
        None => "(none)".into(),
        Some(_) if redacted => "***".into(),
        Some(v) => terminal_safe(&v.to_string()),
    }
}

fn print_plan(env: &Env, plan: &SyncPlan) -> Result<()> {
    if env.json {
        println!("{}", serde_json::to_string(plan)?);
        return Ok(());
    }
    println!(
        "plan for {} ({} cycle): {} action(s)",
        plan.job,
        plan.mode,
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
        for c in &a.changes {
            println!(
                "    {}: {} → {}",
                c.path,
                show(&c.old, c.redacted),
                show(&c.new, c.redacted)
            );
        }
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
        .map(|(k, v)| format!("{k} {v}"))
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

async fn job(env: &Env, c: JobCmd) -> Result<()> {
    match c {
        JobCmd::Import { file } => {
            let spec = scim_sync::JobSpec::load(&file)?;
            let e = engine(env, spec.target.token.is_some())?;
            let new = e.import(&spec).await?;
            println!(
                "job '{}' {}",
                spec.name,
                if new {
                    "imported (off: enable it with scimd sync job enable)"
                } else {
                    "updated"
                }
            );
        }
        JobCmd::List => {
            let jobs = env.store.jobs().await?;
            if env.json {
                let v: Vec<_> = jobs
                    .iter()
                    .map(|j| serde_json::json!({"name": j.name, "enabled": j.enabled, "state": j.state, "updated": j.updated_at.rfc3339()}))
                    .collect();
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!("NAME\tENABLED\tLAST CYCLE");
                for j in jobs {
                    println!(
                        "{}\t{}\t{}",
                        j.name,
                        j.enabled,
                        j.state
                            .get("last_cycle")
                            .map(|c| c.to_string())
                            .unwrap_or_default()
                    );
                }
            }
        }
        JobCmd::Export { name } => {
            let j = env
                .store
                .job(&name)
                .await?
                .with_context(|| format!("no stored job named '{name}'"))?;
            print!("{}", j.spec);
        }
        JobCmd::Delete { name, yes } => {
            if !yes {
                bail!(
                    "deleting job '{name}' removes its configuration, ledger and log (the target's users stay): add --yes"
                );
            }
            if !env.store.delete_job(&name).await? {
                bail!("no stored job named '{name}'");
            }
            println!(
                "job '{name}' deleted; the users and groups it provisioned stay on the target"
            );
        }
        JobCmd::Enable { name } => {
            if !env
                .store
                .set_job_enabled(&name, true, scim_core::Timestamp::now())
                .await?
            {
                bail!("no stored job named '{name}'");
            }
            println!("job '{name}' is on");
        }
        JobCmd::Disable { name } => {
            if !env
                .store
                .set_job_enabled(&name, false, scim_core::Timestamp::now())
                .await?
            {
                bail!("no stored job named '{name}'");
            }
            println!("job '{name}' is off; its configuration and ledger are kept");
        }
    }
    Ok(())
}
