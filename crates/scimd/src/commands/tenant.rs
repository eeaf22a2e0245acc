//! `scimd tenant create|list|delete`.

use super::Env;
use crate::cli::TenantCmd;
use anyhow::{Result, bail};
use scim_core::{CoreError, Tenant};
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
            let t = env.services.tenants.create(&slug, name.as_deref()).await?;
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
            match env.services.tenants.delete(&slug).await {
                Ok(()) => println!("tenant '{slug}' deleted"),
                Err(CoreError::NotFound(_)) => bail!("tenant '{slug}' does not exist"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
