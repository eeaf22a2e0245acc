//! `scimd serve`: the first start (tenant `default` and a bootstrap token), the HTTP server,
//! the maintenance loop, and a graceful stop on SIGTERM or Ctrl-C.

use super::Env;
use super::token::print_secret;
use crate::cli::ServeArgs;
use anyhow::{Context, Result};
use scim_core::audit::Actor;
use scim_core::{Maintenance, TokenScopes};
use std::sync::Arc;

/// Creates `path` readable by its owner only; refuses to overwrite.
fn create_secret_file(path: &std::path::Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "the bootstrap token file {} already exists (left by a first start on another \
                 database?): nothing was created; move it away, then start again",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!(
                "cannot create the bootstrap token file {}",
                path.display()
            ))
        }
    })
}

/// On the first start: the tenant `default` and its bootstrap token, printed once (or
/// written to the file asked for, which is made first: a file that cannot be made stops the
/// start before anything is stored, so no token is ever issued that nobody can read).
async fn first_start(env: &Env, args: &ServeArgs) -> Result<()> {
    use std::io::Write;
    let services = &env.services;
    if !services.tenants.list().await?.is_empty() {
        return Ok(());
    }
    let file = match &args.bootstrap_token_file {
        Some(path) => Some((path, create_secret_file(path)?)),
        None => None,
    };
    let issued = async {
        let t = services
            .tenants
            .create("default", Some("Default tenant"), &Actor::server())
            .await?;
        services
            .tokens
            .create(&t, "bootstrap", TokenScopes::all(), None, &Actor::server())
            .await
    }
    .await;
    let issued = match issued {
        Ok(i) => i,
        Err(e) => {
            if let Some((path, _)) = &file {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.into());
        }
    };
    println!(
        "First start: created tenant 'default' and a bootstrap token (all scopes, read+write)."
    );
    match file {
        Some((path, mut f)) => {
            writeln!(f, "{}", issued.secret)?;
            f.sync_all()?;
            println!(
                "The bootstrap token's secret is in {} (mode 0600), not printed here. SCIM URL: {}",
                path.display(),
                env.scim_url("default")
            );
        }
        None => print_secret(false, &issued, &env.scim_url("default")),
    }
    println!();
    Ok(())
}

/// The SCIM URLs, the console, how to make a token.
async fn print_urls(env: &Env) -> Result<()> {
    let (s, services) = (&env.settings, &env.services);
    for t in services.tenants.list().await? {
        println!("SCIM base URL ({}): {}", t.slug, env.scim_url(&t.slug));
    }
    let console = format!("{}/console/", s.public_url.trim_end_matches('/'));
    if services.operators.list().await?.is_empty() {
        println!(
            "Console:    {console}  (no operator yet: run `scimd admin create <name>` to sign in)"
        );
    } else {
        println!("Console:    {console}");
    }
    println!(
        "New token:  in the console (SCIM integration → Add token) or \
         `scimd token create --tenant default --name <idp> --scope users:rw --scope groups:rw`"
    );
    Ok(())
}

/// SIGHUP (`systemctl reload`) must never end `serve`, not even while it opens and migrates
/// the database, before the listener's own handler is there: once a handler is installed,
/// the default action (terminate) is gone for good, even after this stream is dropped.
pub fn keep_sighup_from_ending_the_process() -> Result<()> {
    #[cfg(unix)]
    drop(
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot handle SIGHUP")?,
    );
    Ok(())
}

pub async fn run(env: &Env, args: &ServeArgs) -> Result<()> {
    let s = &env.settings;
    if let Some(files) = &s.listen_options.tls {
        // A bad certificate or key stops the start here, with the reason.
        scim_server::listener::tls_config(files)?;
    }
    first_start(env, args).await?;
    let listener = tokio::net::TcpListener::bind(&s.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.listen))?;
    print_urls(env).await?;
    if let Some(addr) = &s.metrics_listen {
        super::metrics::start(addr, env.store.clone(), &s.listen_options).await?;
    }
    let shutdown = shutdown_signal();
    let scheme = if s.listen_options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "Listening on {scheme}://{} (database {})",
        s.listen,
        s.redacted_database_url()
    );
    let config = scim_server::ServerConfig {
        public_url: s.public_url.clone(),
        max_body_bytes: s.max_body_bytes,
        rate_limit: scim_server::limits::RateLimit {
            per_second: s.rate_limit_per_token,
            burst: s.rate_limit_per_token * 2.0,
        },
        request_timeout: std::time::Duration::from_secs(s.request_timeout_secs.max(1)),
        metrics: s.metrics_listen.is_some(),
        outbound: s.outbound.clone(),
        trusted_proxies: s.listen_options.trusted_proxies.clone(),
        forwarded_header: s.forwarded_header,
        require_totp: s.require_totp,
        ..Default::default()
    };
    // The instance key is made on first start if there is none (a node racing another to
    // make it reads the other's): it seals the credentials typed into the console's New app
    // and Reauthorize forms and the webhook secrets.
    let key = super::sync::sync_key_with(env, true, &|path| {
        tracing::info!(path = %path.display(), "created the sync key (back it up: stored target tokens need it)");
    })?;
    let state = scim_server::AppState::build(
        env.store.clone(),
        scim_server::AppParts {
            config,
            key,
            log_events: s.provisioning_log,
            log_retention: time::Duration::days(i64::from(s.log_retention_days)),
            sync_lease: std::time::Duration::from_secs(s.sync_lease_secs),
            webhooks: Some((s.webhook_policy, s.webhook_lease)),
            sync_source_dir: s.sync_source_dir.clone(),
            smtp: s.smtp_url.clone().map(|u| (u, s.smtp_from.clone())),
        },
    )?;
    let scheduler = if s.sync_scheduler {
        Some(super::sync::scheduler(s, state.apps.engine().clone())?)
    } else {
        None
    };
    let deliverer = state.deliverer.clone();
    let state = Arc::new(state);
    let deliveries = deliverer
        .filter(|_| s.webhooks)
        .map(|d| tokio::spawn(d.run()));
    let maintenance = tokio::spawn(
        Maintenance::new(
            env.store.clone(),
            time::Duration::days(i64::from(s.log_retention_days)),
        )
        .run(),
    );
    let scheduler = scheduler.map(|sch| tokio::spawn(sch.run()));
    let stop_refusals = Arc::new(tokio::sync::Notify::new());
    let refusals = tokio::spawn(state.clone().run_refusal_flusher(stop_refusals.clone()));
    let flush_state = state.clone();
    let apps = state.apps.clone();
    scim_server::listener::serve(
        listener,
        scim_server::app(state),
        s.listen_options.clone(),
        shutdown,
    )
    .await?;
    // Cycles started from the console stop after their objects in flight and are recorded.
    apps.shutdown().await;
    stop_refusals.notify_one();
    if let Err(e) = refusals.await {
        tracing::warn!(error = %e, "the refused-credential flusher ended badly");
    }
    // The refused-credential counts of the last seconds.
    if let Err(e) = flush_state
        .services
        .tokens
        .flush_refused(&flush_state.refusals)
        .await
    {
        tracing::warn!(error = %e, "could not store the last refused-credential counts");
    }
    maintenance.abort();
    if let Some(s) = scheduler {
        s.abort();
    }
    if let Some(d) = deliveries {
        d.abort();
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            () = term => {},
        }
    }
}
