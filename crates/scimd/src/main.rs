//! The scimd binary: parses the command line, sets up logging and dispatches to one module
//! per command (`commands/`). Settings are resolved in `config.rs`.

mod cli;
mod commands;
mod config;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the engine and the server allocate many small JSON
/// values per object and per request; glibc spent a third of a cycle's time in malloc,
/// free and heap consolidation (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in files and journals: only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.global.log_format {
        cli::LogFormat::Text => logs.init(),
        cli::LogFormat::Json => logs.json().init(),
    }
    commands::run(cli).await
}
