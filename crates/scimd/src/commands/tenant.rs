//! `scimd tenant create|list|delete`.

use super::Env;
use crate::cli::TenantCmd;
use anyhow::{Result, bail};
use scim_core::audit::Actor;
use scim_core::clock::parse_duration;
use scim_core::service::IssuedLink;
use scim_core::setup_link::Idp;
use scim_core::{CoreError, Tenant, Timestamp};
use serde_json::json;

/// The tenant named on the command line, with a hint when there is none.
pub async fn find(env: &Env, slug: &str) -> Result<Tenant> {
    match env.services.tenants.get(slug).await {
        Ok(t) => Ok(t),
        Err(CoreError::NotFound(_)) => bail!("tenant '{slug}' does not exist (scimd tenant list)"),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(env: &Env, cmd: TenantCmd) -> Result<()> {
    match cmd {
        TenantCmd::Create { slug, name } => {
            let t = env
                .services
                .tenants
                .create(&slug, name.as_deref(), &Actor::cli())
                .await?;
            let url = env.scim_url(&t.slug);
            if env.json {
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
        TenantCmd::List => {
            let ts = env.services.tenants.list().await?;
            if env.json {
                println!("{}", serde_json::to_string(&ts)?);
            } else {
                for t in ts {
                    println!("{}\t{}\t{}", t.slug, t.name, env.scim_url(&t.slug));
                }
            }
        }
        TenantCmd::Delete { slug, yes } => {
            if !yes {
                bail!(
                    "deleting tenant '{slug}' removes all its users, groups and tokens; add --yes to confirm"
                );
            }
            match env.services.tenants.delete(&slug, &Actor::cli()).await {
                Ok(()) => println!("tenant '{slug}' deleted"),
                Err(CoreError::NotFound(_)) => bail!("tenant '{slug}' does not exist"),
                Err(e) => return Err(e.into()),
            }
        }
        TenantCmd::Invite { slug, idp, expires } => {
            let t = find(env, &slug).await?;
            let idp = match idp.as_deref() {
                None => None,
                Some(i) => Some(Idp::parse(i).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown identity provider '{i}': entra, okta, onelogin, jumpcloud or google"
                    )
                })?),
            };
            let ttl = parse_duration(&expires)?;
            let issued = env
                .services
                .access
                .invite(&t, idp, ttl, &Actor::cli())
                .await?;
            print_link(env, &issued);
        }
        TenantCmd::Links { slug } => links(env, &slug).await?,
        TenantCmd::RevokeLink { slug, id } => {
            let t = find(env, &slug).await?;
            match env.services.access.revoke(&t, id, &Actor::cli()).await {
                Ok(()) => println!("setup link {id} of '{slug}' revoked"),
                Err(CoreError::NotFound(_)) => {
                    bail!(
                        "tenant '{slug}' has no usable setup link {id} (used, revoked or expired)"
                    )
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A new link's URL, printed once (stdout only: it is a credential until used).
pub fn print_link(env: &Env, issued: &IssuedLink) {
    let url = scim_server::setup_url(&env.settings.public_url, &issued.secret);
    if env.json {
        println!(
            "{}",
            json!({"id": issued.link.id, "url": url, "expires_at": issued.link.expires_at.rfc3339()})
        );
    } else {
        println!("{url}");
        eprintln!(
            "Single-use; works until {}. Send it by a channel you trust: it is shown only now.",
            issued.link.expires_at.rfc3339()
        );
    }
}

async fn links(env: &Env, slug: &str) -> Result<()> {
    let t = find(env, slug).await?;
    let access = &env.services.access;
    let links = access.links(&t).await?;
    let admins = access.admins(&t).await?;
    if env.json {
        let admins: Vec<_> = admins
            .iter()
            .map(|(o, a)| json!({"username": o.username, "access": a.as_str()}))
            .collect();
        println!("{}", json!({"links": links, "admins": admins}));
        return Ok(());
    }
    let now = Timestamp::now();
    println!("ID\tPURPOSE\tIDP\tCREATED\tBY\tEXPIRES\tSTATE");
    for l in &links {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            l.id,
            l.purpose.as_str(),
            l.idp.map_or("-", Idp::as_str),
            l.created_at.rfc3339(),
            l.created_by,
            l.expires_at.rfc3339(),
            l.state(now).as_str()
        );
    }
    println!("\nADMIN\tACCESS");
    for (o, a) in &admins {
        println!("{}\t{}", o.username, a.as_str());
    }
    Ok(())
}
