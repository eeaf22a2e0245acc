//! `scimd events --tenant T --after N [--follow]`: the change feed on the terminal, one JSON
//! event per line (what the events API returns, read through the same service).

use super::Env;
use super::tenant::find;
use crate::cli::EventsArgs;
use anyhow::Result;
use scim_core::change::TypeFilter;
use scim_core::service::FeedCursor;
use std::io::Write;
use std::time::Duration;

/// How long each wait for new events lasts when following.
const FOLLOW_WAIT: Duration = Duration::from_secs(25);

pub async fn run(env: &Env, args: EventsArgs) -> Result<()> {
    let t = find(env, &args.tenant).await?;
    let types = TypeFilter::parse(&args.types).map_err(anyhow::Error::msg)?;
    let mut cursor = FeedCursor::parse(&args.after)?;
    let base = env.scim_url(&t.slug);
    let feed = &env.services.changes;
    let mut out = std::io::stdout().lock();
    loop {
        let wait = if args.follow {
            FOLLOW_WAIT
        } else {
            Duration::ZERO
        };
        let page = feed
            .page(&t, cursor, args.limit, &types, wait, &base)
            .await?;
        for e in &page.events {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
        out.flush()?;
        cursor = FeedCursor::After(page.next);
        if !args.follow && !page.has_more {
            if !env.json {
                eprintln!("next cursor: {}", page.next);
            }
            return Ok(());
        }
    }
}
