//! The scimd binary: command-line interface and wiring.
//!
//! Today it offers the protocol tools that exist (`filter` to parse and pretty-print a SCIM
//! filter); `serve` reports that the server is not built yet.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "scimd",
    version,
    about = "A self-hosted SCIM 2.0 service provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server (not built yet).
    Serve,
    /// Parse a SCIM filter and print its canonical form, or the invalidFilter error.
    Filter {
        /// The filter, e.g. 'userName eq "bjensen"'.
        expr: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            eprintln!(
                "scimd serve: not yet. The SCIM server is being built (see README, 'Status'); \
                 the protocol library scim-proto is available today."
            );
            std::process::exit(2);
        }
        Command::Filter { expr } => match scim_proto::filter::parse(&expr) {
            Ok(f) => println!("{f}"),
            Err(e) => {
                println!("{}", serde_json::to_string_pretty(&e.to_body())?);
                std::process::exit(1);
            }
        },
    }
    Ok(())
}
