//! `scimd log` (read a tenant's provisioning log) and `scimd sweep-log` (apply the retention now).

use super::Env;
use super::tenant::find;
use crate::cli::LogArgs;
use anyhow::{Result, bail};
use scim_core::Maintenance;
use scim_core::event::{EventFilter, to_csv};

pub async fn print(env: &Env, args: LogArgs) -> Result<()> {
    let tenant = find(env, &args.tenant).await?;
    let filter = EventFilter {
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
    let (_, events) = env.services.events.read(&tenant, &filter, 100).await?;
    let format = if env.json {
        "json"
    } else {
        args.format.as_str()
    };
    match format {
        "json" => println!("{}", serde_json::to_string(&events)?),
        "csv" => print!("{}", to_csv(&events)?),
        "table" => {
            println!("SEQ\tTIME\tOPERATION\tTYPE\tRESOURCE\tSTATUS\tTOKEN\tDETAIL");
            for e in events {
                let t = |s: Option<String>| terminal_safe(&s.unwrap_or_default());
                // A failure says what it attempted (`Create User — failed (409)`).
                let operation = e.summary();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    e.seq,
                    e.at,
                    operation,
                    t(e.resource_type),
                    t(e.resource_name.or(e.resource_id)),
                    e.status,
                    t(e.token_name),
                    t(e.detail)
                );
            }
        }
        other => bail!("--format must be table, json or csv, not '{other}'"),
    }
    Ok(())
}

/// Text from SCIM clients, safe to print on a terminal: control characters (line breaks,
/// escape sequences) are shown escaped, everything else as it is.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub async fn sweep(env: &Env) -> Result<()> {
    let days = env.settings.log_retention_days;
    let n = Maintenance::new(env.store.clone(), time::Duration::days(i64::from(days)))
        .sweep_log()
        .await?;
    println!("deleted {n} events older than {days} days");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_scim_clients_cannot_forge_terminal_output() {
        assert_eq!(super::terminal_safe("Zoë"), "Zoë");
        assert_eq!(super::terminal_safe("a\r\nb"), "a\\r\\nb");
        assert_eq!(super::terminal_safe("x\u{1b}[31m"), "x\\u{1b}[31m");
    }
}
