//! `scimd admin create|reset-password|list|delete`: the operators who sign in to the console.

use super::Env;
use crate::cli::AdminCmd;
use anyhow::{Result, bail};
use scim_core::access::Access;
use scim_core::audit::Actor;
use scim_core::{CoreError, Timestamp};
use serde_json::json;

/// The new operator's password: from the environment, stdin, or the terminal (twice).
fn read_password(from_stdin: bool) -> Result<String> {
    if let Ok(pw) = std::env::var("SCIMD_ADMIN_PASSWORD") {
        return Ok(pw);
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let pw = rpassword::prompt_password("Password (12+ characters): ")?;
    let again = rpassword::prompt_password("Repeat: ")?;
    if pw != again {
        bail!("the passwords differ");
    }
    Ok(pw)
}

pub async fn run(env: &Env, cmd: AdminCmd) -> Result<()> {
    let ops = &env.services.operators;
    let json_out = env.json;
    match cmd {
        AdminCmd::Create {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            let op = ops.create(&username, &pw, &Actor::cli()).await?;
            if json_out {
                println!("{}", json!({"username": op.username, "id": op.id}));
            } else {
                println!(
                    "Operator '{}' created. Sign in at {}/console/",
                    op.username,
                    env.settings.public_url.trim_end_matches('/')
                );
            }
        }
        AdminCmd::ResetPassword {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            ops.reset_password(&username, &pw, &Actor::cli()).await?;
            println!("password of '{username}' changed; its sessions are signed out");
        }
        AdminCmd::List => {
            let all = ops.list().await?;
            if json_out {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                println!("USERNAME\tROLE\tCREATED\tLAST SIGN-IN\tLOCKED UNTIL");
                let fmt =
                    |v: Option<Timestamp>| v.map(|t| t.rfc3339()).unwrap_or_else(|| "-".into());
                for o in all {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        o.username,
                        o.role.describe(),
                        o.created_at,
                        fmt(o.last_login_at),
                        fmt(o.locked_until)
                    );
                }
            }
        }
        AdminCmd::Grant {
            username,
            tenant,
            access,
        } => {
            let t = super::tenant::find(env, &tenant).await?;
            let a = match access.as_str() {
                "none" => None,
                other => Some(Access::parse(other).ok_or_else(|| {
                    anyhow::anyhow!("--access is admin, read-only or none, not '{other}'")
                })?),
            };
            env.services
                .access
                .grant(&t, &username, a, &Actor::cli())
                .await?;
            match a {
                Some(a) => println!("'{username}' is {} of '{tenant}'", a.as_str()),
                None => println!("'{username}' no longer administers '{tenant}'"),
            }
        }
        AdminCmd::ResetLink {
            username,
            tenant,
            expires,
        } => {
            let t = super::tenant::find(env, &tenant).await?;
            let ttl = scim_core::clock::parse_duration(&expires)?;
            let issued = env
                .services
                .access
                .reset_link(&t, &username, ttl, &Actor::cli())
                .await?;
            super::tenant::print_link(env, &issued);
        }
        AdminCmd::Delete { username } => {
            let name = scim_core::operator::normalize_username(&username)?;
            match ops.delete(&name, &Actor::cli()).await {
                Ok(()) => println!("operator '{name}' deleted"),
                Err(CoreError::NotFound(_)) => bail!("operator '{name}' does not exist"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
