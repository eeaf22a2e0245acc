//! Settings, resolved here and only here: command-line flags, then `SCIMD_*` environment
//! variables (clap reads both for the flags that have one), then the TOML file, then the
//! defaults below (the server's own defaults come from `scim_server::ServerConfig`).

use crate::cli::{GlobalArgs, ServeArgs};
use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
    log_retention_days: Option<u32>,
    provisioning_log: Option<bool>,
    rate_limit_per_token: Option<f64>,
    request_timeout_secs: Option<u64>,
    sqlite_synchronous: Option<String>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    metrics_listen: Option<String>,
    tls_cert: Option<std::path::PathBuf>,
    tls_key: Option<std::path::PathBuf>,
    sync_key_file: Option<std::path::PathBuf>,
    sync_scheduler: Option<bool>,
    sync_tick_secs: Option<u64>,
    sync_lease_secs: Option<u64>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    webhooks: Option<bool>,
    webhook_timeout: Option<String>,
    webhook_first_retry: Option<String>,
    webhook_max_retry_interval: Option<String>,
    webhook_retry_for: Option<String>,
    webhook_lease: Option<String>,
    outbound_allow_loopback: Option<bool>,
    max_connections_per_address: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    forwarded_header: Option<String>,
    console_require_totp: Option<String>,
    outbound_allow_private: Option<bool>,
    sync_source_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub listen: String,
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Days the provisioning log keeps events (default 30).
    pub log_retention_days: u32,
    /// Whether successful changes are logged (default true; off only for measurements).
    pub provisioning_log: bool,
    /// Requests per second per token, bursts of twice that; 0 = unlimited (default).
    pub rate_limit_per_token: f64,
    /// Seconds before a request is answered 503 (default 30).
    pub request_timeout_secs: u64,
    /// SQLite: fsync every commit (`full`), surviving power loss, instead of `normal`
    /// (surviving process crashes; the default).
    pub sqlite_power_loss_durable: bool,
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics_listen: Option<String>,
    /// Connection cap, header-read (and idle) timeout, TLS files.
    pub listen_options: scim_server::listener::ListenOptions,
    /// The key that seals stored target credentials of sync jobs (created on first use;
    /// every node of a PostgreSQL deployment needs the same file).
    pub sync_key_file: std::path::PathBuf,
    /// Whether `serve` runs the enabled sync jobs on their schedules (default true).
    pub sync_scheduler: bool,
    /// Seconds between the scheduler's looks for due jobs (default 5).
    pub sync_tick_secs: u64,
    /// How long a node holds a job's lease without renewing it (default 60, at least 3): a
    /// node that dies mid-cycle has its job taken over after this long.
    pub sync_lease_secs: u64,
    /// Where job notifications are sent: `smtp://host:port` (plain, or STARTTLS when the
    /// server offers it), `smtps://host:port`; user and password in the URL if needed.
    pub smtp_url: Option<String>,
    /// The sender of notifications (default `scimd@localhost`).
    pub smtp_from: String,
    /// Whether `serve` delivers webhooks (default true).
    pub webhooks: bool,
    /// Webhook attempts: time limit, backoff, how long before a failing endpoint is
    /// disabled (docs/events.md).
    pub webhook_policy: scim_core::webhook::RetryPolicy,
    /// How long a node holds an endpoint's delivery lease without renewing it (default 30s):
    /// a node that dies mid-delivery has its endpoints taken over after this long.
    pub webhook_lease: std::time::Duration,
    /// The header the trusted proxies write the client's address in (`x-forwarded-for`, the
    /// default, or `forwarded`).
    pub forwarded_header: scim_server::client_addr::ForwardedHeader,
    /// Who must set up a console second factor (TOTP): `none` (the default),
    /// `instance_admins` or `everyone`.
    pub require_totp: scim_core::second_factor::Requirement,
    /// Where webhooks, the engine's targets and sources, and notices may connect
    /// (docs/security.md): loopback refused unless `outbound_allow_loopback` (this scimd's
    /// own URL excepted), private networks allowed unless `outbound_allow_private = false`.
    pub outbound: scim_net::Policy,
    /// The only folder whose files apps made in the console may read (none by default:
    /// console apps then read uploaded files only).
    pub sync_source_dir: Option<std::path::PathBuf>,
}

/// A yes/no setting from the environment (`1`, `true`, `on` / `0`, `false`, `off`), else
/// the file, else the default.
fn flag(var: &str, file: Option<bool>, default: bool) -> Result<bool> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        None => Ok(file.unwrap_or(default)),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => Ok(true),
            "0" | "false" | "off" | "no" => Ok(false),
            _ => anyhow::bail!("{var}='{v}' is not a yes/no value (true or false)"),
        },
    }
}

/// `trusted_proxies`: addresses or networks (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`), from
/// `SCIMD_TRUSTED_PROXIES` (comma-separated) or the file's list.
fn trusted_proxies(file: Option<Vec<String>>) -> Result<Vec<ipnet::IpNet>> {
    let listed: Vec<String> = match std::env::var("SCIMD_TRUSTED_PROXIES") {
        Ok(v) => v.split(',').map(str::to_string).collect(),
        Err(_) => file.unwrap_or_default(),
    };
    listed
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "trusted_proxies: '{s}' is not an address or a network (10.0.0.5, 10.0.0.0/8)"
                    )
                })
        })
        .collect()
}

/// The origins that are this scimd itself (allowed even on loopback): the public URL, and
/// the listen address (an unspecified one is reached as `127.0.0.1`, `localhost`, `[::1]`).
fn own_origins(public_url: &str, listen: &str) -> Vec<(String, u16)> {
    let mut own = Vec::new();
    if let Ok(u) = scim_net::Url::parse(public_url)
        && let (Some(h), Some(p)) = (u.host_str(), u.port_or_known_default())
    {
        own.push((h.to_ascii_lowercase(), p));
    }
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        let port = addr.port();
        if addr.ip().is_unspecified() {
            for h in ["127.0.0.1", "localhost", "[::1]"] {
                own.push((h.to_string(), port));
            }
        } else {
            let host = match addr.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                ip => ip.to_string(),
            };
            own.push((host, port));
        }
    }
    own
}

/// A duration setting (`10s`, `3d`) from the environment, else the file, else the default.
fn duration_setting(
    var: &str,
    file: Option<String>,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    let text = std::env::var(var).ok().filter(|v| !v.is_empty()).or(file);
    match text {
        None => Ok(default),
        Some(t) => {
            let d = scim_core::clock::parse_duration(&t).with_context(|| var.to_string())?;
            std::time::Duration::try_from(d).with_context(|| format!("{var}='{t}'"))
        }
    }
}

/// An environment variable, else the config file's value, else the default.
fn env_or<T: std::str::FromStr>(var: &str, file: Option<T>, default: T) -> Result<T> {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{var}='{v}' is not a valid value")),
        Err(_) => Ok(file.unwrap_or(default)),
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/scimd.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;

/// The public URL when none is set: the listen address, except that an unspecified one
/// (`0.0.0.0`, `[::]`, as in the container image) is no address a client can use, so
/// `localhost` and the port stand in for it until `public_url` is set.
pub fn default_public_url(listen: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("{scheme}://localhost:{}", addr.port()),
        _ => format!("{scheme}://{listen}"),
    }
}

/// The public URL is in every `meta.location` (RFC 7643 §3.1: an absolute URI): an
/// `http://` or `https://` URL with a host.
fn check_public_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => anyhow::bail!(
            "public_url must be an absolute http:// or https:// URL, e.g. \
             https://scim.example.com, not '{url}'"
        ),
    }
}

/// Beside the SQLite file, else `./data/sync.key`.
fn default_sync_key_file(url: &str) -> std::path::PathBuf {
    let dir = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .and_then(|p| {
            std::path::Path::new(p.split('?').next().unwrap_or(p))
                .parent()
                .map(std::path::Path::to_path_buf)
        })
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::PathBuf::from("./data"));
    dir.join("sync.key")
}

/// The settings file the Debian package installs: read when no other file is named, so a
/// command run on a packaged host (`sudo -u scimd scimd admin create alice`) uses the
/// service's database rather than a new one under `./data`.
pub const PACKAGED_CONFIG: &str = "/etc/scimd/scimd.toml";

/// The file to read: the one named (`--config`, `SCIMD_CONFIG`), else the package's if it
/// is there, else none.
fn config_path(
    named: Option<&std::path::Path>,
    packaged_exists: bool,
) -> Option<std::path::PathBuf> {
    match named {
        Some(p) => Some(p.to_path_buf()),
        None if packaged_exists => Some(PACKAGED_CONFIG.into()),
        None => None,
    }
}

/// The config file, if one is given (or the package's is there).
fn read_file(global: &GlobalArgs) -> Result<FileConfig> {
    let path = config_path(
        global.config.as_deref(),
        std::path::Path::new(PACKAGED_CONFIG).exists(),
    );
    Ok(match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| {
                let hint = if global.config.is_none() {
                    " (the Debian package's settings, read when no --config or SCIMD_CONFIG \
                     names a file: run as root or as scimd)"
                } else {
                    ""
                };
                format!("cannot read config file {}{hint}", p.display())
            })?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("invalid config file {}", p.display()))?
        }
        None => FileConfig::default(),
    })
}

/// The listener's limits and TLS files.
fn listen_options(
    file: &mut FileConfig,
    serve: &ServeArgs,
) -> Result<scim_server::listener::ListenOptions> {
    let listen_defaults = scim_server::listener::ListenOptions::default();
    let tls = match (
        serve.tls_cert.clone().or(file.tls_cert.take()),
        serve.tls_key.clone().or(file.tls_key.take()),
    ) {
        (Some(cert), Some(key)) => Some(scim_server::listener::TlsFiles { cert, key }),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate (tls_cert) and a key (tls_key)"),
    };
    Ok(scim_server::listener::ListenOptions {
        max_connections: env_or(
            "SCIMD_MAX_CONNECTIONS",
            file.max_connections.take(),
            listen_defaults.max_connections,
        )?,
        max_connections_per_address: env_or(
            "SCIMD_MAX_CONNECTIONS_PER_ADDRESS",
            file.max_connections_per_address.take(),
            listen_defaults.max_connections_per_address,
        )?,
        trusted_proxies: trusted_proxies(file.trusted_proxies.take())?,
        header_read_timeout: std::time::Duration::from_secs(
            env_or(
                "SCIMD_HEADER_READ_TIMEOUT_SECS",
                file.header_read_timeout_secs.take(),
                listen_defaults.header_read_timeout.as_secs(),
            )?
            .max(1),
        ),
        tls,
    })
}

/// Webhook attempts: time limit, backoff, how long before a failing endpoint is disabled.
fn webhook_policy(file: &mut FileConfig) -> Result<scim_core::webhook::RetryPolicy> {
    Ok({
        let d = scim_core::webhook::RetryPolicy::default();
        scim_core::webhook::RetryPolicy {
            timeout: duration_setting(
                "SCIMD_WEBHOOK_TIMEOUT",
                file.webhook_timeout.take(),
                d.timeout,
            )?,
            first_retry: duration_setting(
                "SCIMD_WEBHOOK_FIRST_RETRY",
                file.webhook_first_retry.take(),
                d.first_retry,
            )?,
            max_interval: duration_setting(
                "SCIMD_WEBHOOK_MAX_RETRY_INTERVAL",
                file.webhook_max_retry_interval.take(),
                d.max_interval,
            )?,
            give_up_after: duration_setting(
                "SCIMD_WEBHOOK_RETRY_FOR",
                file.webhook_retry_for.take(),
                d.give_up_after,
            )?,
        }
    })
}

/// Where outbound connections may go (`docs/security.md`).
fn outbound(file: &mut FileConfig, own: Vec<(String, u16)>) -> Result<scim_net::Policy> {
    Ok(scim_net::Policy {
        allow_loopback: flag(
            "SCIMD_OUTBOUND_ALLOW_LOOPBACK",
            file.outbound_allow_loopback.take(),
            false,
        )?,
        allow_private: flag(
            "SCIMD_OUTBOUND_ALLOW_PRIVATE",
            file.outbound_allow_private.take(),
            true,
        )?,
        own,
    })
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, serve: &ServeArgs) -> Result<Self> {
        let mut file = read_file(global)?;
        // `serve` reads SCIMD_LISTEN / SCIMD_PUBLIC_URL through its flags; other commands
        // (which print URLs) read the same variables here.
        let env_var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let listen = serve
            .listen
            .clone()
            .or_else(|| env_var("SCIMD_LISTEN"))
            .or(file.listen.take())
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let public_url = serve
            .public_url
            .clone()
            .or_else(|| env_var("SCIMD_PUBLIC_URL"))
            .or(file.public_url.take())
            .unwrap_or_else(|| default_public_url(&listen, serve.tls_cert.is_some()))
            .trim_end_matches('/')
            .to_string();
        check_public_url(&public_url)?;
        let server = scim_server::ServerConfig::default();
        let listen_options = listen_options(&mut file, serve)?;
        let webhook_policy = webhook_policy(&mut file)?;
        let outbound = outbound(&mut file, own_origins(&public_url, &listen))?;
        let database_url = global
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        Ok(Self {
            sync_key_file: env_var("SCIMD_SYNC_KEY_FILE")
                .map(std::path::PathBuf::from)
                .or(file.sync_key_file)
                .unwrap_or_else(|| default_sync_key_file(&database_url)),
            database_url,
            listen,
            public_url,
            max_body_bytes: env_or(
                "SCIMD_MAX_BODY_BYTES",
                file.max_body_bytes,
                server.max_body_bytes,
            )?,
            log_retention_days: match std::env::var("SCIMD_LOG_RETENTION_DAYS") {
                Ok(v) => v.parse().with_context(|| {
                    format!("SCIMD_LOG_RETENTION_DAYS='{v}' is not a number of days")
                })?,
                Err(_) => file
                    .log_retention_days
                    .unwrap_or(DEFAULT_LOG_RETENTION_DAYS),
            },
            sqlite_power_loss_durable: match env_or(
                "SCIMD_SQLITE_SYNCHRONOUS",
                file.sqlite_synchronous,
                "normal".to_string(),
            )?
            .as_str()
            {
                "full" => true,
                "normal" => false,
                other => anyhow::bail!("sqlite_synchronous must be normal or full, not '{other}'"),
            },
            rate_limit_per_token: env_or("SCIMD_RATE_LIMIT", file.rate_limit_per_token, 0.0)?,
            request_timeout_secs: env_or(
                "SCIMD_REQUEST_TIMEOUT_SECS",
                file.request_timeout_secs,
                server.request_timeout.as_secs(),
            )?,
            metrics_listen: serve.metrics_listen.clone().or(file.metrics_listen),
            listen_options,
            sync_scheduler: match std::env::var("SCIMD_SYNC_SCHEDULER") {
                Ok(v) => !matches!(v.as_str(), "0" | "false" | "off"),
                Err(_) => file.sync_scheduler.unwrap_or(true),
            },
            sync_tick_secs: env_or("SCIMD_SYNC_TICK_SECS", file.sync_tick_secs, 5)?.max(1),
            sync_lease_secs: env_or("SCIMD_SYNC_LEASE_SECS", file.sync_lease_secs, 60)?.max(3),
            smtp_url: env_var("SCIMD_SMTP_URL").or(file.smtp_url),
            smtp_from: env_var("SCIMD_SMTP_FROM")
                .or(file.smtp_from)
                .unwrap_or_else(|| "scimd@localhost".into()),
            webhooks: match std::env::var("SCIMD_WEBHOOKS") {
                Ok(v) => !matches!(v.as_str(), "0" | "false" | "off"),
                Err(_) => file.webhooks.unwrap_or(true),
            },
            webhook_policy,
            webhook_lease: duration_setting(
                "SCIMD_WEBHOOK_LEASE",
                file.webhook_lease,
                std::time::Duration::from_secs(30),
            )?,
            provisioning_log: match std::env::var("SCIMD_PROVISIONING_LOG") {
                Ok(v) => !matches!(v.as_str(), "0" | "false" | "off"),
                Err(_) => file.provisioning_log.unwrap_or(true),
            },
            outbound,
            forwarded_header: {
                let text = env_var("SCIMD_FORWARDED_HEADER").or(file.forwarded_header);
                match text {
                    None => Default::default(),
                    Some(t) => {
                        scim_server::client_addr::ForwardedHeader::parse(&t).with_context(|| {
                            format!(
                                "forwarded_header must be x-forwarded-for or forwarded, not '{t}'"
                            )
                        })?
                    }
                }
            },
            require_totp: scim_core::second_factor::Requirement::parse(
                &env_var("SCIMD_CONSOLE_REQUIRE_TOTP")
                    .or(file.console_require_totp)
                    .unwrap_or_default(),
            )?,
            sync_source_dir: env_var("SCIMD_SYNC_SOURCE_DIR")
                .map(std::path::PathBuf::from)
                .or(file.sync_source_dir),
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    pub fn max_connections(&self) -> u32 {
        if self.is_sqlite() { 8 } else { 16 }
    }

    /// Creates the directory of a SQLite file on first start.
    pub fn prepare_sqlite_dir(&self) -> Result<()> {
        if let Some(path) = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        Ok(())
    }

    /// The URL without a password, for messages.
    pub fn redacted_database_url(&self) -> String {
        match (self.database_url.find("://"), self.database_url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let creds = &self.database_url[s + 3..at];
                match creds.split_once(':') {
                    Some((user, _)) => format!(
                        "{}{user}:***{}",
                        &self.database_url[..s + 3],
                        &self.database_url[at..]
                    ),
                    None => self.database_url.clone(),
                }
            }
            _ => self.database_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

    /// The commented default config the package and image ship (deploy/scimd.toml).
    const SHIPPED: &str = include_str!("../../../deploy/scimd.toml");

    /// The file as shipped parses, and so does every commented `key = value` line turned
    /// on: each key it documents is a real one, with a value of the right type.
    #[test]
    fn shipped_config_parses_with_every_documented_key_on() {
        let shipped: FileConfig = toml::from_str(SHIPPED).expect("the shipped file parses");
        assert_eq!(
            shipped.database_url.as_deref(),
            Some("sqlite:///var/lib/scimd/scimd.db")
        );
        let mut keys = 0;
        let all_on: String = SHIPPED
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => {
                    keys += 1;
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let on: FileConfig = toml::from_str(&all_on).expect("every documented key parses");
        assert!(keys >= 25, "only {keys} documented keys");
        assert!(on.tls_cert.is_some() && on.webhook_retry_for.is_some());
    }

    #[test]
    fn default_public_url_never_names_an_unspecified_address() {
        let cases = [
            ("127.0.0.1:8080", false, "http://127.0.0.1:8080"),
            ("0.0.0.0:8080", false, "http://localhost:8080"),
            ("[::]:8443", true, "https://localhost:8443"),
            ("scim.internal:80", false, "http://scim.internal:80"),
        ];
        for (listen, tls, want) in cases {
            assert_eq!(super::default_public_url(listen, tls), want, "{listen}");
        }
    }

    #[test]
    fn the_packaged_file_is_read_only_when_none_is_named() {
        use std::path::{Path, PathBuf};
        let named = Path::new("/srv/scimd.toml");
        let cases = [
            (Some(named), true, Some(PathBuf::from("/srv/scimd.toml"))),
            (Some(named), false, Some(PathBuf::from("/srv/scimd.toml"))),
            (None, true, Some(PathBuf::from(super::PACKAGED_CONFIG))),
            (None, false, None),
        ];
        for (named, exists, want) in cases {
            assert_eq!(
                super::config_path(named, exists),
                want,
                "{named:?} {exists}"
            );
        }
    }

    #[test]
    fn public_urls_must_be_absolute() {
        for ok in [
            "https://scim.example.com",
            "http://127.0.0.1:8080",
            "https://h/scim",
        ] {
            assert!(super::check_public_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "scim.example.com",
            "https://",
            "ftp://x",
            "//x",
            "https:///x",
            "",
        ] {
            assert!(super::check_public_url(bad).is_err(), "{bad}");
        }
    }

    fn is_key(k: &str) -> bool {
        !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }
}
