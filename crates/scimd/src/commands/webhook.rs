//! `scimd webhook add|list|test|replay|deliveries|rotate-secret|enable|disable|delete`, over
//! `scim_core::WebhookService` (the console's code path). Secrets are printed once.

use super::Env;
use super::log::terminal_safe;
use super::tenant::find;
use crate::cli::WebhookCmd;
use anyhow::Result;
use scim_core::audit::Actor;
use scim_core::clock::parse_duration;
use scim_core::service::{ChangeFeed, WebhookService};
use scim_core::webhook::{WebhookDelivery, WebhookEndpoint};
use scim_core::{Timestamp, tenant::Tenant};
use scim_webhook::Deliverer;
use serde_json::json;

/// The service with the instance key (created when `create` and there is none yet).
pub fn service(env: &Env, create: bool) -> Result<WebhookService> {
    let key = super::sync::sync_key(env, create)?;
    let outbound = env.settings.outbound.clone();
    Ok(
        WebhookService::new(env.store.clone(), key).with_destination_check(std::sync::Arc::new(
            move |u: &scim_net::Url| outbound.check_url(u).map_err(|e| e.to_string()),
        )),
    )
}

/// The deliverer `serve` runs (over the server's feed, whose notifier its writes signal),
/// and `webhook test` sends through.
pub fn deliverer(env: &Env, feed: ChangeFeed, webhooks: WebhookService) -> Result<Deliverer> {
    let s = &env.settings;
    Ok(Deliverer::new(
        env.store.clone(),
        feed,
        webhooks,
        &s.public_url,
        s.webhook_policy,
        s.webhook_lease,
        s.outbound.clone(),
    )?)
}

fn state(ep: &WebhookEndpoint) -> String {
    match (&ep.disabled_reason, ep.enabled, ep.failing_since) {
        (_, true, None) => "active".into(),
        (_, true, Some(since)) => {
            format!("retrying (failing since {since}, {} attempts)", ep.attempts)
        }
        (Some(r), false, _) => format!("disabled: {}", terminal_safe(r)),
        (None, false, _) => "disabled".into(),
    }
}

fn print_secret(env: &Env, ep: &WebhookEndpoint, secret: &str, what: &str) {
    if env.json {
        println!("{}", json!({"id": ep.id, "url": ep.url, "secret": secret}));
    } else {
        println!("Webhook endpoint {} ({what}).", ep.id);
        println!("URL:     {}", ep.url);
        println!("Secret:  {secret}");
        println!("Copy the secret now: it signs every delivery and cannot be shown again.");
    }
}

fn print_delivery(d: &WebhookDelivery) {
    let status = d.status.map_or("-".to_string(), |s| s.to_string());
    let seq = d.sequence.map_or("-".to_string(), |s| s.to_string());
    println!(
        "{}\t{}\t{seq}\t{}\t#{}\t{status}\t{} ms\t{}",
        d.at,
        d.event_id,
        d.event_type,
        d.attempt,
        d.latency_ms,
        terminal_safe(d.error.as_deref().unwrap_or(""))
    );
}

pub async fn run(env: &Env, cmd: WebhookCmd) -> Result<()> {
    let tenant = |slug: String| async move { find(env, &slug).await };
    match cmd {
        WebhookCmd::Add {
            tenant: slug,
            url,
            types,
            description,
        } => {
            let t: Tenant = tenant(slug).await?;
            let made = service(env, true)?
                .add(&t, &url, &types, &description, &Actor::cli())
                .await?;
            print_secret(env, &made.endpoint, &made.secret, "added");
        }
        WebhookCmd::List { tenant: slug } => {
            let t = tenant(slug).await?;
            let list = env.services.webhooks.list(&t).await?;
            if env.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                println!("ID\tURL\tTYPES\tCURSOR\tSECRET\tSTATE");
                for ep in &list {
                    let types = if ep.types.is_empty() { "*" } else { &ep.types };
                    println!(
                        "{}\t{}\t{types}\t{}\t{}…\t{}",
                        ep.id,
                        ep.url,
                        ep.cursor,
                        ep.secret_prefix,
                        state(ep)
                    );
                }
            }
        }
        WebhookCmd::Test { tenant: slug, id } => {
            let t = tenant(slug).await?;
            let d = deliverer(env, env.services.changes.clone(), service(env, false)?)?
                .send_test(&t, &id)
                .await?;
            if env.json {
                println!("{}", serde_json::to_string(&d)?);
            } else {
                print_delivery(&d);
            }
            if !d.succeeded() {
                anyhow::bail!("the test event was not accepted");
            }
        }
        WebhookCmd::Replay {
            tenant: slug,
            id,
            from,
        } => {
            let t = tenant(slug).await?;
            env.services
                .webhooks
                .replay(&t, &id, from, &Actor::cli())
                .await?;
            println!("endpoint {id} delivers again from sequence {from}");
        }
        WebhookCmd::Deliveries {
            tenant: slug,
            id,
            limit,
        } => {
            let t = tenant(slug).await?;
            let list = env.services.webhooks.deliveries(&t, &id, limit).await?;
            if env.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                println!("AT\tEVENT\tSEQUENCE\tTYPE\tATTEMPT\tSTATUS\tLATENCY\tERROR");
                list.iter().for_each(print_delivery);
            }
        }
        WebhookCmd::RotateSecret {
            tenant: slug,
            id,
            overlap,
        } => {
            let t = tenant(slug).await?;
            let overlap = parse_duration(&overlap)?;
            let svc = service(env, false)?;
            let secret = svc.rotate(&t, &id, overlap, &Actor::cli()).await?;
            let ep = svc.get(&t, &id).await?;
            print_secret(env, &ep, &secret, "new secret");
            if !env.json {
                println!(
                    "The old secret also signs deliveries until {}.",
                    Timestamp::now() + overlap
                );
            }
        }
        WebhookCmd::Enable { tenant: slug, id } => {
            let t = tenant(slug).await?;
            env.services
                .webhooks
                .set_enabled(&t, &id, true, &Actor::cli())
                .await?;
            println!("endpoint {id} enabled");
        }
        WebhookCmd::Disable { tenant: slug, id } => {
            let t = tenant(slug).await?;
            env.services
                .webhooks
                .set_enabled(&t, &id, false, &Actor::cli())
                .await?;
            println!("endpoint {id} disabled; events wait at its cursor");
        }
        WebhookCmd::Delete { tenant: slug, id } => {
            let t = tenant(slug).await?;
            env.services.webhooks.delete(&t, &id, &Actor::cli()).await?;
            println!("endpoint {id} deleted");
        }
    }
    Ok(())
}
