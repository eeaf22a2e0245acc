//! The scimd binary: command-line interface, configuration and wiring.
//!
//! Settings come from (highest first) command-line flags, `SCIMD_*` environment variables,
//! a TOML config file (`--config`/`SCIMD_CONFIG`), then defaults. Human-readable output by
//! default, `--json` for scripts.

mod config;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use config::Settings;
use scim_core::{Store, TokenScopes, now_micros, token};
use scim_store::SqlStore;
use serde_json::json;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "scimd",
    version,
    about = "A self-hosted SCIM 2.0 service provider"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
pub struct GlobalArgs {
    /// TOML config file (keys: database_url, listen, public_url, max_body_bytes,
    /// log_retention_days, provisioning_log, rate_limit_per_token, request_timeout_secs,
    /// sqlite_synchronous).
    #[arg(long, env = "SCIMD_CONFIG", global = true)]
    pub config: Option<std::path::PathBuf>,
    /// sqlite://path or postgres://… [default: sqlite://./data/scimd.db]
    #[arg(long, env = "SCIMD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage console operators (who sign in to the web console).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Read a tenant's provisioning log (newest first), as a table, JSON or CSV.
    Log(LogArgs),
    /// Delete provisioning-log events older than the retention now.
    SweepLog,
    /// Load-test a SCIM server (scimd or any other) with identity-provider workloads.
    Bench(BenchArgs),
    /// Parse a SCIM filter and print its canonical form, or the invalidFilter error.
    Filter {
        /// The filter, e.g. 'userName eq "bjensen"'.
        expr: String,
    },
}

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "SCIMD_LISTEN")]
    pub listen: Option<String>,
    /// URL clients reach scimd at, used in meta.location and printed URLs
    /// [default: http://{listen}]
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// SCIM base URL, e.g. http://127.0.0.1:8080/t/default/scim/v2
    #[arg(long)]
    url: String,
    /// Bearer token (or SCIMD_BENCH_TOKEN).
    #[arg(long, env = "SCIMD_BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// create-users, lookup, patch-users, group-members, list, idp-cycle
    #[arg(long, default_value = "create-users")]
    workload: String,
    /// Users created before measuring (lookup, patch-users, list, idp-cycle).
    #[arg(long, default_value_t = 1000)]
    users: u64,
    /// Groups for group-members.
    #[arg(long, default_value_t = 1)]
    groups: u64,
    /// Members per group for group-members.
    #[arg(long, default_value_t = 100)]
    group_size: u64,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Measuring time, e.g. 20s, 2m.
    #[arg(long, default_value = "20s")]
    duration: String,
    /// Stop after this many measured requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Allow a target that is not on this machine.
    #[arg(long)]
    allow_remote: bool,
    /// Keep the users (named seed-{i}@bench.example) for later runs: only the missing ones
    /// are created, through Bulk, so a 1,000,000-user measurement loads its data once.
    #[arg(long)]
    seed: bool,
}

async fn bench(args: BenchArgs, json_out: bool) -> Result<()> {
    let cfg = scim_bench::BenchConfig {
        base_url: args.url,
        token: args.token,
        workload: args.workload.parse()?,
        users: args.users,
        groups: args.groups,
        group_size: args.group_size,
        concurrency: args.concurrency,
        duration: std::time::Duration::from_secs(u64::try_from(token::parse_duration(
            &args.duration,
        )?)?),
        requests: args.requests,
        allow_remote: args.allow_remote,
        progress: !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        seed: args.seed,
    };
    let report = scim_bench::run(cfg).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

#[derive(Args)]
struct LogArgs {
    #[arg(long)]
    tenant: String,
    /// Only events at or after this time (RFC 3339) or this long ago (e.g. 24h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Operation, e.g. "Create User", hard-delete-user, failure (repeatable).
    #[arg(long = "operation")]
    operations: Vec<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    /// A resource id, userName or group displayName.
    #[arg(long)]
    resource: Option<String>,
    /// A token name.
    #[arg(long)]
    token: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Events older than this sequence number (paging: pass the last seq shown).
    #[arg(long)]
    before: Option<i64>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    format: String,
}

async fn print_log(store: &SqlStore, args: LogArgs, json_out: bool) -> Result<()> {
    let now = now_micros();
    let tid = tenant_id(store, &args.tenant).await?;
    let filter = scim_core::provisioning::EventFilter {
        since: args.since,
        until: args.until,
        operation: args.operations,
        outcome: args.outcome,
        resource_type: None,
        resource: args.resource,
        token: args.token,
        before: args.before,
        limit: Some(args.limit),
    };
    let q = filter.to_query(now, 100)?;
    let events = store.events(tid, &q).await?;
    let format = if json_out {
        "json"
    } else {
        args.format.as_str()
    };
    match format {
        "json" => println!("{}", serde_json::to_string(&events)?),
        "csv" => print!("{}", scim_core::provisioning::to_csv(&events)),
        "table" => {
            println!("SEQ\tTIME\tOPERATION\tTYPE\tRESOURCE\tSTATUS\tTOKEN\tDETAIL");
            for e in events {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    e.seq,
                    scim_core::format_micros(e.at),
                    e.operation.as_str(),
                    e.resource_type.unwrap_or_default(),
                    e.resource_name.or(e.resource_id).unwrap_or_default(),
                    e.status,
                    e.token_name.unwrap_or_default(),
                    e.detail.unwrap_or_default()
                );
            }
        }
        other => bail!("--format must be table, json or csv, not '{other}'"),
    }
    Ok(())
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Delete a tenant and everything in it.
    Delete {
        slug: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create an operator. The password is read from SCIMD_ADMIN_PASSWORD, from stdin with
    /// --password-stdin, or asked for at the terminal.
    Create {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (also unlocks the account and ends its sessions).
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List operators.
    List,
    /// Delete an operator.
    Delete { username: String },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token; its secret is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// users:rw, groups:r, bulk:rw … (repeatable)
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// e.g. 90d, 12h; default: never expires
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List a tenant's tokens (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token (effective on every node within seconds).
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Issue a new secret; the old one keeps working for the grace period.
    Rotate {
        #[arg(long)]
        tenant: String,
        id: String,
        /// How long the old secret stays valid [default: 24h]
        #[arg(long, default_value = "24h")]
        grace: String,
    },
}

async fn open_store(settings: &Settings) -> Result<Arc<SqlStore>> {
    settings.prepare_sqlite_dir()?;
    let store = SqlStore::connect_with(
        &settings.database_url,
        settings.max_connections(),
        settings.sqlite_power_loss_durable,
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the database at {}",
            settings.redacted_database_url()
        )
    })?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(Arc::new(store))
}

async fn tenant_id(store: &SqlStore, slug: &str) -> Result<i64> {
    match store.tenant(slug).await? {
        Some(t) => Ok(t.id),
        None => bail!("tenant '{slug}' does not exist (scimd tenant list)"),
    }
}

fn print_token_secret(json_out: bool, issued: &token::IssuedToken, scim_url: &str) {
    if json_out {
        println!(
            "{}",
            json!({"id": issued.record.id, "name": issued.record.name, "secret": issued.secret,
                   "scopes": issued.record.scopes.to_string(), "scim_url": scim_url})
        );
    } else {
        println!(
            "Token '{}' created (id {}).",
            issued.record.name, issued.record.id
        );
        println!("Scopes:   {}", issued.record.scopes);
        println!("SCIM URL: {scim_url}");
        println!("Secret:   {}", issued.secret);
        println!("Copy the secret now: it is stored only as a hash and cannot be shown again.");
    }
}

async fn run(cli: Cli) -> Result<()> {
    let json_out = cli.global.json;
    if let Command::Filter { expr } = &cli.command {
        match scim_proto::filter::parse(expr) {
            Ok(f) => println!("{f}"),
            Err(e) => {
                println!("{}", serde_json::to_string_pretty(&e.to_body())?);
                std::process::exit(1);
            }
        }
        return Ok(());
    }
    if let Command::Bench(args) = cli.command {
        return bench(args, json_out).await;
    }
    let serve_args = match &cli.command {
        Command::Serve(a) => a.clone(),
        _ => ServeArgs::default(),
    };
    let settings = Settings::resolve(&cli.global, &serve_args)?;
    let store = open_store(&settings).await?;
    let now = now_micros();
    match cli.command {
        Command::Filter { .. } | Command::Bench(_) => {}
        Command::Log(args) => print_log(&store, args, json_out).await?,
        Command::SweepLog => {
            let before = now - i64::from(settings.log_retention_days) * 86_400 * 1_000_000;
            let mut total = 0;
            loop {
                let n = store.sweep_events(before, 5_000).await?;
                total += n;
                if n < 5_000 {
                    break;
                }
            }
            println!(
                "deleted {total} events older than {} days",
                settings.log_retention_days
            );
        }
        Command::Migrate => println!(
            "database schema is up to date ({})",
            settings.redacted_database_url()
        ),
        Command::Serve(_) => serve(settings, store).await?,
        Command::Admin(cmd) => admin(store.as_ref(), cmd, &settings, json_out).await?,
        Command::Tenant(TenantCmd::Create { slug, name }) => {
            let t = store
                .create_tenant(&slug, name.as_deref().unwrap_or(&slug), now)
                .await?;
            let url = scim_server::tenant_scim_url(&settings.public_url, &t.slug);
            if json_out {
                println!(
                    "{}",
                    json!({"id": t.id, "slug": t.slug, "name": t.name, "scim_url": url})
                );
            } else {
                println!("Tenant '{}' created. SCIM URL: {url}", t.slug);
                println!(
                    "Create a token: scimd token create --tenant {} --name <name> --scope users:rw --scope groups:rw",
                    t.slug
                );
            }
        }
        Command::Tenant(TenantCmd::List) => {
            let ts = store.tenants().await?;
            if json_out {
                println!("{}", serde_json::to_string(&ts)?);
            } else {
                for t in ts {
                    println!(
                        "{}\t{}\t{}",
                        t.slug,
                        t.name,
                        scim_server::tenant_scim_url(&settings.public_url, &t.slug)
                    );
                }
            }
        }
        Command::Tenant(TenantCmd::Delete { slug, yes }) => {
            if !yes {
                bail!(
                    "deleting tenant '{slug}' removes all its users, groups and tokens; add --yes to confirm"
                );
            }
            if !store.delete_tenant(&slug).await? {
                bail!("tenant '{slug}' does not exist");
            }
            println!("tenant '{slug}' deleted");
        }
        Command::Token(TokenCmd::Create {
            tenant,
            name,
            scopes,
            expires_in,
        }) => {
            let tid = tenant_id(&store, &tenant).await?;
            let scopes = TokenScopes::parse_list(&scopes)?;
            let expires_at = expires_in
                .as_deref()
                .map(token::parse_duration)
                .transpose()?
                .map(|s| now + s * 1_000_000);
            let issued = token::create(store.as_ref(), tid, &name, scopes, expires_at, now).await?;
            print_token_secret(
                json_out,
                &issued,
                &scim_server::tenant_scim_url(&settings.public_url, &tenant),
            );
        }
        Command::Token(TokenCmd::List { tenant }) => {
            let tid = tenant_id(&store, &tenant).await?;
            let tokens = store.tokens(tid).await?;
            if json_out {
                println!("{}", serde_json::to_string(&tokens)?);
            } else {
                println!("ID\tNAME\tPREFIX\tSCOPES\tCREATED\tLAST USED\tEXPIRES\tSTATUS");
                for t in tokens {
                    let status = t.status(now).as_str().to_ascii_lowercase();
                    let fmt = |v: Option<i64>| {
                        v.map(scim_core::format_micros)
                            .unwrap_or_else(|| "-".into())
                    };
                    println!(
                        "{}\t{}\t{}…\t{}\t{}\t{}\t{}\t{status}",
                        t.id,
                        t.name,
                        t.prefix,
                        t.scopes,
                        scim_core::format_micros(t.created_at),
                        fmt(t.last_used_at),
                        fmt(t.expires_at)
                    );
                }
            }
        }
        Command::Token(TokenCmd::Revoke { tenant, id }) => {
            let tid = tenant_id(&store, &tenant).await?;
            if !store.revoke_token(tid, &id, now).await? {
                bail!("token '{id}' does not exist in tenant '{tenant}'");
            }
            println!(
                "token {id} revoked; every node rejects it within {} s",
                scim_server::auth::TOKEN_CACHE_TTL.as_secs()
            );
        }
        Command::Token(TokenCmd::Rotate { tenant, id, grace }) => {
            let tid = tenant_id(&store, &tenant).await?;
            let grace_secs = token::parse_duration(&grace)?;
            let secret = token::rotate(store.as_ref(), tid, &id, grace_secs, now)
                .await
                .with_context(|| format!("cannot rotate in tenant '{tenant}'"))?;
            if json_out {
                println!(
                    "{}",
                    json!({"id": id, "secret": secret, "previous_valid_for_seconds": grace_secs})
                );
            } else {
                println!("Token {id} rotated. New secret: {secret}");
                println!(
                    "The previous secret keeps working for {grace}. Paste the new one into your identity provider."
                );
            }
        }
    }
    Ok(())
}

/// The new operator's password: from the environment, stdin, or the terminal (twice).
fn read_password(from_stdin: bool) -> Result<String> {
    if let Ok(pw) = std::env::var("SCIMD_ADMIN_PASSWORD") {
        return Ok(pw);
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let pw = rpassword::prompt_password("Password (12+ characters): ")?;
    let again = rpassword::prompt_password("Repeat: ")?;
    if pw != again {
        bail!("the passwords differ");
    }
    Ok(pw)
}

async fn admin(store: &SqlStore, cmd: AdminCmd, settings: &Settings, json_out: bool) -> Result<()> {
    let ops = scim_core::OperatorService::new(store);
    match cmd {
        AdminCmd::Create {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            let op = ops.create(&username, &pw, now_micros()).await?;
            if json_out {
                println!("{}", json!({"username": op.username, "id": op.id}));
            } else {
                println!(
                    "Operator '{}' created. Sign in at {}/console/",
                    op.username,
                    settings.public_url.trim_end_matches('/')
                );
            }
        }
        AdminCmd::ResetPassword {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            ops.reset_password(&username, &pw).await?;
            println!("password of '{username}' changed; its sessions are signed out");
        }
        AdminCmd::List => {
            let all = store.operators().await?;
            if json_out {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                println!("USERNAME\tCREATED\tLAST SIGN-IN\tLOCKED UNTIL");
                let fmt = |v: Option<i64>| {
                    v.map(scim_core::format_micros)
                        .unwrap_or_else(|| "-".into())
                };
                for o in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        o.username,
                        scim_core::format_micros(o.created_at),
                        fmt(o.last_login_at),
                        fmt(o.locked_until)
                    );
                }
            }
        }
        AdminCmd::Delete { username } => {
            let name = scim_core::operator::normalize_username(&username)?;
            if !store.delete_operator(&name).await? {
                bail!("operator '{name}' does not exist");
            }
            println!("operator '{name}' deleted");
        }
    }
    Ok(())
}

async fn serve(settings: Settings, store: Arc<SqlStore>) -> Result<()> {
    let now = now_micros();
    if store.tenants().await?.is_empty() {
        let t = store
            .create_tenant("default", "Default tenant", now)
            .await?;
        let issued = token::create(
            store.as_ref(),
            t.id,
            "bootstrap",
            TokenScopes::all(),
            None,
            now,
        )
        .await?;
        println!(
            "First start: created tenant 'default' and a bootstrap token (all scopes, read+write)."
        );
        print_token_secret(
            false,
            &issued,
            &scim_server::tenant_scim_url(&settings.public_url, "default"),
        );
        println!();
    }
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    for t in store.tenants().await? {
        println!(
            "SCIM base URL ({}): {}",
            t.slug,
            scim_server::tenant_scim_url(&settings.public_url, &t.slug)
        );
    }
    let console = format!("{}/console/", settings.public_url.trim_end_matches('/'));
    if store.operators().await?.is_empty() {
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
    let shutdown = shutdown_signal();
    println!(
        "Listening on http://{} (database {})",
        settings.listen,
        settings.redacted_database_url()
    );
    let config = scim_server::ServerConfig {
        public_url: settings.public_url.clone(),
        max_body_bytes: settings.max_body_bytes,
        rate_limit: scim_server::limits::RateLimit {
            per_second: settings.rate_limit_per_token,
            burst: settings.rate_limit_per_token * 2.0,
        },
        request_timeout: std::time::Duration::from_secs(settings.request_timeout_secs.max(1)),
        ..Default::default()
    };
    let mut state = scim_server::AppState::new(store.clone(), config);
    state.service.log_events = settings.provisioning_log;
    let state = Arc::new(state);
    let sweeper = tokio::spawn(sweep_provisioning_log(
        store.clone(),
        settings.log_retention_days,
    ));
    axum::serve(
        listener,
        scim_server::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    sweeper.abort();
    store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Deletes provisioning-log events older than the retention, in batches, every 10 minutes.
/// With several nodes on one database, one sweeps: the `log-sweeper` lease (10 minutes,
/// renewed by its holder) decides which.
async fn sweep_provisioning_log(store: Arc<SqlStore>, retention_days: u32) {
    let node = uuid::Uuid::new_v4().to_string();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = now_micros();
        match store
            .try_lease("log-sweeper", &node, now, now + 660_000_000)
            .await
        {
            Ok(true) => {
                tracing::info!(node = %node, "provisioning log sweeper: this node holds the lease")
            }
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "provisioning log sweeper: lease check failed");
                continue;
            }
        }
        match store.sweep_sessions(now).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired console sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "console session sweep failed"),
        }
        let before = now_micros() - i64::from(retention_days) * 86_400 * 1_000_000;
        loop {
            match store.sweep_events(before, 5_000).await {
                Ok(5_000) => tokio::task::yield_now().await,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(deleted = n, "provisioning log sweep");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "provisioning log sweep failed");
                    break;
                }
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that arrives right after "Listening on" is printed
/// must drain, not kill.
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

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    run(Cli::parse()).await
}
