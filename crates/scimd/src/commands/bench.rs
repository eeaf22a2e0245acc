//! `scimd bench`: the load generator (`scim-bench`) against any SCIM server.

use crate::cli::BenchArgs;
use anyhow::Result;
use scim_core::clock::parse_duration;

pub async fn run(args: BenchArgs, json_out: bool) -> Result<()> {
    let cfg = scim_bench::BenchConfig {
        base_url: args.url,
        token: args.token,
        workload: args.workload.parse()?,
        users: args.users,
        groups: args.groups,
        group_size: args.group_size,
        concurrency: args.concurrency,
        duration: std::time::Duration::try_from(parse_duration(&args.duration)?)?,
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
