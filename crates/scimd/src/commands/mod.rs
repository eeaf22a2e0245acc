//! One module per command; [`run`] dispatches. Every command that changes something calls a
//! `scim_core` service, the same code the console and the SCIM routes use.

mod admin;
mod audit;
mod bench;
mod events;
mod health;
mod log;
mod metrics;
mod serve;
mod sync;
mod sync_show;
mod tenant;
mod token;
mod webhook;

use crate::cli::{Cli, Command};
use crate::config::Settings;
use anyhow::{Context, Result};
use scim_core::{SchemaStore, Services};
use scim_store::SqlStore;
use std::sync::Arc;

/// An opened, migrated database and the services over it.
pub struct Env {
    pub settings: Settings,
    pub store: Arc<SqlStore>,
    pub services: Services,
    pub json: bool,
}

impl Env {
    async fn open(settings: Settings, json: bool) -> Result<Self> {
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
        let store = Arc::new(store);
        Ok(Self {
            services: Services::new(store.clone(), Default::default()),
            store,
            settings,
            json,
        })
    }

    /// `{public-url}/t/{slug}/scim/v2`.
    pub fn scim_url(&self, slug: &str) -> String {
        scim_server::tenant_scim_url(&self.settings.public_url, slug)
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    let json = cli.global.json;
    match cli.command {
        Command::Filter { expr } => return filter(&expr),
        Command::Generate { what, dir } => return generate(what, dir.as_deref()),
        Command::Bench(args) => return bench::run(args, json).await,
        // The same flags and `SCIMD_*` variables as `serve`, so it asks where serve listens.
        Command::Health(args) => {
            return health::check(&Settings::resolve(&cli.global, &args)?).await;
        }
        _ => {}
    }
    let serve_args = match &cli.command {
        Command::Serve(a) => {
            serve::keep_sighup_from_ending_the_process()?;
            a.clone()
        }
        _ => Default::default(),
    };
    let env = Env::open(Settings::resolve(&cli.global, &serve_args)?, json).await?;
    let r = match cli.command {
        Command::Filter { .. }
        | Command::Generate { .. }
        | Command::Bench(_)
        | Command::Health(_) => Ok(()),
        Command::Serve(args) => serve::run(&env, &args).await,
        Command::Migrate => {
            println!(
                "database schema is up to date ({})",
                env.settings.redacted_database_url()
            );
            Ok(())
        }
        Command::Tenant(cmd) => tenant::run(&env, cmd).await,
        Command::Token(cmd) => token::run(&env, cmd).await,
        Command::Admin(cmd) => admin::run(&env, cmd).await,
        Command::Log(args) => log::print(&env, args).await,
        Command::Audit(args) => audit::print(&env, args).await,
        Command::Sync(cmd) => sync::run(&env, cmd).await,
        Command::Webhook(cmd) => webhook::run(&env, cmd).await,
        Command::Events(args) => events::run(&env, args).await,
        Command::SweepLog => log::sweep(&env).await,
    };
    env.store.close().await;
    r
}

/// `scimd generate man`: the manual pages from the same definitions as `--help` (the Debian
/// package ships them: scimd(1) and one per command).
fn generate(what: crate::cli::Generated, dir: Option<&std::path::Path>) -> Result<()> {
    match what {
        crate::cli::Generated::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => clap_mangen::generate_to(cmd, dir)
                    .with_context(|| format!("cannot write manual pages to {}", dir.display()))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    clap_mangen::Man::new(cmd).render(&mut out)?;
                    std::io::Write::flush(&mut out)?;
                }
            }
        }
    }
    Ok(())
}

/// `scimd filter`: the canonical form of a filter, or its invalidFilter error.
fn filter(expr: &str) -> Result<()> {
    match scim_proto::filter::parse(expr) {
        Ok(f) => println!("{f}"),
        Err(e) => {
            println!("{}", serde_json::to_string_pretty(&e.to_body())?);
            std::process::exit(1);
        }
    }
    Ok(())
}
