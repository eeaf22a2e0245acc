//! The scimd binary: parses the command line, sets up logging and dispatches to one module
//! per command (`commands/`). Settings are resolved in `config.rs`.

mod cli;
mod commands;
mod config;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    commands::run(cli::Cli::parse()).await
}
