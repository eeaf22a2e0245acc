//! `scimd sync …`: the provisioning engine's commands, over `scim_sync::Engine`.

use super::Env;
use super::sync_show as show;
use crate::cli::{JobCmd, SyncCmd};
use anyhow::{Context, Result, bail};
use scim_core::CycleStatus;
use scim_sync::{Engine, SyncKey};
use std::path::Path;

/// The sync key from SCIMD_SYNC_KEY, else the key file; created (mode 0600) when `create`,
/// which is said on standard error.
pub(super) fn sync_key(env: &Env, create: bool) -> Result<Option<SyncKey>> {
    sync_key_with(env, create, &|path| {
        eprintln!(
            "created the sync key {} (back it up: stored target tokens need it)",
            path.display()
        );
    })
}

/// [`sync_key`], saying that it created the key through `announce` (`serve` logs it: its
/// standard error may be JSON lines).
pub(super) fn sync_key_with(
    env: &Env,
    create: bool,
    announce: &dyn Fn(&Path),
) -> Result<Option<SyncKey>> {
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
            let text = match create_key_file(path) {
                Ok(t) => t,
                // Another node (or command) made it first: theirs is the key.
                Err(_) if path.exists() => {
                    return Ok(Some(SyncKey::from_text(&std::fs::read_to_string(path)?)?));
                }
                Err(e) => return Err(e),
            };
            announce(path);
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
    Ok(Engine::new(
        env.store.clone(),
        sync_key(env, create_key)?,
        time::Duration::days(i64::from(env.settings.log_retention_days)),
    )
    .with_lease(std::time::Duration::from_secs(env.settings.sync_lease_secs))
    .with_outbound(env.settings.outbound.clone()))
}

/// The scheduler `serve` runs over `engine` (the console's): the enabled jobs on their
/// schedules, under leases, with notifications to each job's webhook, and by e-mail when
/// SMTP is configured.
pub fn scheduler(
    s: &crate::config::Settings,
    engine: Engine,
) -> Result<std::sync::Arc<scim_sync::runtime::schedule::Scheduler>> {
    use scim_sync::runtime::notify::{Notifier, Notifiers, SmtpNotifier, WebhookNotifier};
    let mut notifiers: Vec<std::sync::Arc<dyn Notifier>> = vec![std::sync::Arc::new(
        WebhookNotifier::new(s.outbound.clone())?,
    )];
    if let Some(url) = &s.smtp_url {
        notifiers.push(std::sync::Arc::new(SmtpNotifier::new(std::sync::Arc::new(
            scim_net::Mailer::new(url, &s.smtp_from)
                .context("the SMTP settings (smtp_url, smtp_from)")?,
        ))));
    }
    let notifier: Option<std::sync::Arc<dyn Notifier>> =
        Some(std::sync::Arc::new(Notifiers(notifiers)));
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
    Ok(std::sync::Arc::new(
        scim_sync::runtime::schedule::Scheduler {
            engine,
            node: format!(
                "{host}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            tick: std::time::Duration::from_secs(s.sync_tick_secs),
            notifier,
        },
    ))
}

/// Whether a job named on the command line carries an inline credential (a key is then
/// needed to seal it).
fn needs_key(job: &str) -> bool {
    Path::new(job).is_file()
        && std::fs::read_to_string(job).is_ok_and(|t| {
            t.lines().any(|l| {
                let l = l.trim_start();
                (l.starts_with("token") || l.starts_with("password"))
                    && l.contains('=')
                    && !l.contains("_env")
                    && !l.contains("_file")
            })
        })
}

/// The stored job a command acts on: the name itself, or the name of the job in the file.
fn job_name(job: &str) -> Result<String> {
    let p = Path::new(job);
    if p.is_file() {
        return Ok(scim_sync::JobSpec::load(p)?.name);
    }
    Ok(job.to_string())
}

pub async fn run(env: &Env, cmd: SyncCmd) -> Result<()> {
    match cmd {
        SyncCmd::Generate {
            users,
            groups,
            members,
            variant,
            out,
        } => generate(
            scim_sync::generate::Directory {
                users,
                groups,
                members,
                variant,
            },
            &out,
        ),
        SyncCmd::Job(c) => job(env, c).await,
        SyncCmd::Pause { job } => {
            let name = job_name(&job)?;
            engine(env, false)?.set_paused(&name, true).await?;
            println!("paused '{name}': a cycle in flight stops after its current objects");
            Ok(())
        }
        SyncCmd::Resume { job } => {
            let name = job_name(&job)?;
            engine(env, false)?.set_paused(&name, false).await?;
            println!("resumed '{name}'");
            Ok(())
        }
        SyncCmd::Restart { job, scope } => {
            let name = job_name(&job)?;
            let scope = scim_sync::engine::RestartScope::parse(&scope)?;
            let done = engine(env, false)?.restart(&name, scope).await?;
            println!("{name}: {done}");
            Ok(())
        }
        SyncCmd::Reauthorize {
            job,
            token_env,
            token_file,
        } => reauthorize(env, &job, token_env, token_file).await,
        SyncCmd::Plan { job } => {
            let e = engine(env, false)?;
            let (spec, record) = e.resolve(&job).await?;
            let prepared = e.prepare(&spec, record.as_ref()).await?;
            if record.is_none() {
                warn_new_state(env, &spec.name, &prepared.plan);
            }
            show::plan(env, &prepared.plan)
        }
        SyncCmd::Run { job } => run_cycle(env, &job).await,
        SyncCmd::Test { job } => test(env, &job).await,
        SyncCmd::Provision { job, user } => {
            let e = engine(env, needs_key(&job))?;
            let (spec, record) = e.resolve(&job).await?;
            let (action, out) = match e.provision_one(&spec, record.as_ref(), &user).await? {
                scim_sync::engine::OnDemand::Done(action, out) => (action, out),
                scim_sync::engine::OnDemand::NothingToDo(why) => {
                    println!("{why}");
                    return Ok(());
                }
            };
            show::provisioned(env, &action, &out)?;
            if out.status == scim_core::Status::Failure {
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
            let name = job_name(&job)?;
            let q = show::log_query(cycle, action, status, object, limit)?;
            let rows = engine(env, false)?.log(&name, &q).await?;
            show::log(env, &rows, &format)
        }
        SyncCmd::Status { job } => {
            let name = job_name(&job)?;
            let s = engine(env, false)?.status(&name).await?;
            show::status(env, &s)
        }
        SyncCmd::ApproveDeletes { job } => {
            let name = job_name(&job)?;
            let n = engine(env, false)?.decide_staged(&name, true).await?;
            println!(
                "{n} staged delete(s) approved: they are applied in the next cycle (scimd sync run {name})"
            );
            Ok(())
        }
        SyncCmd::RejectDeletes { job } => {
            let name = job_name(&job)?;
            let n = engine(env, false)?.decide_staged(&name, false).await?;
            println!("{n} staged delete(s) rejected: those objects stay on the target");
            Ok(())
        }
        SyncCmd::ApplyTimers { job, only } => timers(env, &job, &only, true).await,
        SyncCmd::CancelTimers { job, only } => timers(env, &job, &only, false).await,
    }
}

/// `scimd sync apply-timers` / `cancel-timers`: every timer of the job, or one object's.
async fn timers(env: &Env, job: &str, only: &crate::cli::TimerTarget, apply: bool) -> Result<()> {
    let name = job_name(job)?;
    let one = match (&only.user, &only.group) {
        (Some(id), _) => Some((scim_core::ResourceKind::User, id.as_str())),
        (_, Some(id)) => Some((scim_core::ResourceKind::Group, id.as_str())),
        _ => None,
    };
    let n = engine(env, false)?.decide_timers(&name, one, apply).await?;
    if one.is_some() && n == 0 {
        anyhow::bail!(
            "no scheduled action for that object in {name} (scimd sync status {name} lists them)"
        );
    }
    if apply {
        println!(
            "{n} scheduled action(s) due now: the next cycle sends them, under the breaker (scimd sync run {name})"
        );
    } else {
        println!(
            "{n} scheduled action(s) cancelled: those objects stay on the target until their state at the source changes"
        );
    }
    Ok(())
}

/// `scimd sync generate`: a synthetic directory as CSV.
fn generate(d: scim_sync::generate::Directory, out: &Path) -> Result<()> {
    d.write_csv(out)?;
    println!(
        "wrote {} users in {} groups to {}",
        d.users,
        d.groups,
        out.display()
    );
    Ok(())
}

/// `scimd sync test`: the checks, and exit 1 when one failed.
async fn test(env: &Env, job: &str) -> Result<()> {
    let e = engine(env, false)?;
    let (spec, record) = e.resolve(job).await?;
    let checks = e.test(&spec, record.as_ref()).await;
    let ok = checks.iter().all(|c| c.ok);
    if env.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({"ok": ok, "checks": checks}))?
        );
    } else {
        show::checks(&checks);
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

async fn reauthorize(
    env: &Env,
    job: &str,
    token_env: Option<String>,
    token_file: Option<std::path::PathBuf>,
) -> Result<()> {
    let name = job_name(job)?;
    let token = match (token_env, token_file) {
        (Some(v), _) => std::env::var(&v).with_context(|| format!("{v} is not set"))?,
        (None, Some(f)) => {
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (None, None) => {
            let mut t = String::new();
            std::io::stdin().read_line(&mut t)?;
            t
        }
    };
    let checks = engine(env, true)?.reauthorize(&name, token.trim()).await?;
    let ok = checks.iter().all(|c| c.ok);
    show::checks(&checks);
    if !ok {
        bail!("the new token is stored but a check failed: the job stays quarantined");
    }
    println!(
        "new token stored; quarantine lifted (it is used from now on, also when the job is run from its file)"
    );
    Ok(())
}

/// Which database keeps a job's state, and — for a job this database has never seen whose
/// target already holds matching objects — that the state of an earlier run may be in
/// another database (each directory's `./data/` is its own).
fn warn_new_state(env: &Env, name: &str, plan: &scim_sync::plan::SyncPlan) {
    let adopt = plan
        .totals
        .get(&scim_core::SyncAction::Adopt)
        .copied()
        .unwrap_or(0);
    say_new_state(env, name);
    warn_adoptions(adopt, "they will be adopted");
}

fn say_new_state(env: &Env, name: &str) {
    eprintln!(
        "job '{name}' has no state in {} yet: this is its first cycle here",
        env.settings.redacted_database_url()
    );
}

fn warn_adoptions(adopt: u64, what: &str) {
    if adopt > 0 {
        eprintln!(
            "warning: the target already holds {adopt} object(s) that match; {what}. \
             If this job ran before from another directory, its state (ledger) is in that \
             directory's database: run from there, or set SCIMD_DATABASE_URL to it."
        );
    }
}

async fn run_cycle(env: &Env, job: &str) -> Result<()> {
    let e = engine(env, needs_key(job))?;
    let (spec, record) = e.resolve(job).await?;
    // A job this database has never seen: say where its state goes and, after its first
    // cycle, whether it adopted objects the target already held (its earlier state may be
    // elsewhere). `sync plan` says so before anything is written; reading the source twice
    // here would double a large directory's first cycle.
    let first = record.is_none();
    if first {
        say_new_state(env, &spec.name);
    }
    // Ctrl-C stops the cycle as a pause does: what is in flight finishes and is recorded,
    // and the next run carries on.
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
    let report = scim_sync::runtime::schedule::run_leased(&e, &spec, &node, halt).await;
    stopper.abort();
    let Some(report) = report? else {
        let held = scim_sync::runtime::schedule::lease_holder(&e, &spec.name).await?;
        let until = held.map_or_else(String::new, |h| {
            format!(
                " ({} holds it until {}; a run that died keeps it until then)",
                h.holder,
                h.expires_at.rfc3339()
            )
        });
        bail!(
            "job '{}' is running elsewhere (scimd serve or another `sync run` holds its lease{until}); try again when that cycle ends",
            spec.name
        );
    };
    if first {
        warn_adoptions(
            report.counts.action(scim_core::SyncAction::Adopt),
            "they were adopted",
        );
    }
    show::report(env, &report)?;
    // Refused credentials fail the run however far it got (at discovery or mid-cycle).
    if report.status == CycleStatus::Stopped
        && report.counts.stopped.as_deref() == Some(scim_sync::apply::HALT_UNAUTHORIZED)
    {
        std::process::exit(1);
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
            let jobs = engine(env, false)?.jobs().await?;
            if env.json {
                let v: Vec<_> = jobs
                    .iter()
                    .map(|j| serde_json::json!({"name": j.name, "enabled": j.enabled, "state": j.state, "updated": j.updated_at.rfc3339()}))
                    .collect();
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!("NAME\tENABLED\tLAST CYCLE");
                for j in jobs {
                    let last = j.state.last_cycle.as_ref().map_or_else(String::new, |c| {
                        format!("{} {}", c.at.rfc3339(), c.status.as_str())
                    });
                    println!("{}\t{}\t{last}", j.name, j.enabled);
                }
            }
        }
        JobCmd::Export { name } => {
            let j = engine(env, false)?.stored(&job_name(&name)?).await?;
            print!("{}", j.spec);
        }
        JobCmd::Delete { name, yes } => {
            if !yes {
                bail!(
                    "deleting job '{name}' removes its configuration, ledger and log (the target's users stay): add --yes"
                );
            }
            engine(env, false)?.delete(&job_name(&name)?).await?;
            println!(
                "job '{name}' deleted; the users and groups it provisioned stay on the target"
            );
        }
        JobCmd::Enable { name } => {
            let name = job_name(&name)?;
            engine(env, false)?.set_enabled(&name, true).await?;
            println!("job '{name}' is on: `scimd serve` runs it on its schedule");
        }
        JobCmd::Disable { name } => {
            let name = job_name(&name)?;
            engine(env, false)?.set_enabled(&name, false).await?;
            println!("job '{name}' is off; its configuration and ledger are kept");
        }
    }
    Ok(())
}
