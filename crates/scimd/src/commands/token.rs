//! `scimd token create|list|revoke|rotate`. Secrets are printed once, when made.

use super::Env;
use super::tenant::find;
use crate::cli::TokenCmd;
use anyhow::{Context, Result, bail};
use scim_core::audit::Actor;
use scim_core::clock::parse_duration;
use scim_core::token::IssuedToken;
use scim_core::{CoreError, Timestamp, TokenScopes};
use serde_json::json;

/// Prints a new token and its secret (shown once).
pub fn print_secret(json_out: bool, issued: &IssuedToken, scim_url: &str) {
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

pub async fn run(env: &Env, cmd: TokenCmd) -> Result<()> {
    let tokens = &env.services.tokens;
    match cmd {
        TokenCmd::Create {
            tenant,
            name,
            scopes,
            expires_in,
        } => {
            let t = find(env, &tenant).await?;
            let scopes = TokenScopes::parse_list(&scopes)?;
            let expires_in = expires_in.as_deref().map(parse_duration).transpose()?;
            let issued = tokens
                .create(&t, &name, scopes, expires_in, &Actor::cli())
                .await?;
            print_secret(env.json, &issued, &env.scim_url(&t.slug));
        }
        TokenCmd::List { tenant } => {
            let t = find(env, &tenant).await?;
            let list = tokens.list(&t).await?;
            if env.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                let now = Timestamp::now();
                let fmt =
                    |v: Option<Timestamp>| v.map(|t| t.rfc3339()).unwrap_or_else(|| "-".into());
                println!("ID\tNAME\tPREFIX\tSCOPES\tCREATED\tLAST USED\tEXPIRES\tSTATUS");
                for t in list {
                    let status = t.status(now).as_str().to_ascii_lowercase();
                    println!(
                        "{}\t{}\t{}…\t{}\t{}\t{}\t{}\t{status}",
                        t.id,
                        t.name,
                        t.prefix,
                        t.scopes,
                        t.created_at,
                        fmt(t.last_used_at),
                        fmt(t.expires_at)
                    );
                }
            }
        }
        TokenCmd::Revoke { tenant, id } => {
            let t = find(env, &tenant).await?;
            let within = scim_server::auth::TOKEN_CACHE_TTL.as_secs();
            match tokens.revoke(&t, &id, &Actor::cli()).await {
                Ok(()) if env.json => println!(
                    "{}",
                    serde_json::json!({"id": id, "tenant": tenant, "revoked": true, "effective_within_secs": within})
                ),
                Ok(()) => println!("token {id} revoked; every node rejects it within {within} s"),
                Err(CoreError::NotFound(_)) => {
                    bail!("token '{id}' does not exist in tenant '{tenant}'")
                }
                Err(e) => return Err(e.into()),
            }
        }
        TokenCmd::Rotate { tenant, id, grace } => {
            let t = find(env, &tenant).await?;
            let grace_d = parse_duration(&grace)?;
            let secret = tokens
                .rotate(&t, &id, grace_d, &Actor::cli())
                .await
                .with_context(|| format!("cannot rotate in tenant '{tenant}'"))?;
            if env.json {
                println!(
                    "{}",
                    json!({"id": id, "secret": secret, "previous_valid_for_seconds": grace_d.whole_seconds()})
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
