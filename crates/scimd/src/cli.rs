//! The command line: every command, its flags and their help text (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What `scimd generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generated {
    /// The manual page, scimd(1), in roff.
    Man,
}

#[derive(Parser)]
#[command(
    name = "scimd",
    version,
    about = "A self-hosted SCIM 2.0 service provider"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone, Default)]
pub struct GlobalArgs {
    /// TOML config file (keys: database_url, listen, public_url, max_body_bytes,
    /// log_retention_days, provisioning_log, rate_limit_per_token, request_timeout_secs,
    /// sqlite_synchronous, sync_*, smtp_*, webhooks, webhook_*; docs/deploy.md).
    #[arg(long, env = "SCIMD_CONFIG", global = true)]
    pub config: Option<std::path::PathBuf>,
    /// sqlite://path or postgres://… [default: sqlite://./data/scimd.db]
    #[arg(long, env = "SCIMD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log lines as `text` (the default) or `json` (one object per line, for log shippers).
    /// Which lines: `RUST_LOG`, e.g. `RUST_LOG=info,scim_server=debug`.
    #[arg(long, env = "SCIMD_LOG_FORMAT", global = true, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the SCIM server.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage console operators (who sign in to the web console).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Read a tenant's provisioning log (newest first), as a table, JSON or CSV.
    Log(LogArgs),
    /// Read the audit log (who did what, newest first), as a table, JSON or CSV.
    Audit(AuditArgs),
    /// The provisioning engine: keep SCIM apps in step with a directory (docs/sync.md).
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Webhook endpoints: where a tenant's events are delivered (docs/events.md).
    #[command(subcommand)]
    Webhook(WebhookCmd),
    /// Read a tenant's change feed (the events API's events), oldest first.
    Events(EventsArgs),
    /// Delete provisioning-log events older than the retention now.
    SweepLog,
    /// Load-test a SCIM server (scimd or any other) with identity-provider workloads.
    Bench(BenchArgs),
    /// Ask this node's /readyz (the address `serve` listens on); exit 0 when ready, 1
    /// otherwise. The container image's health check; takes serve's flags and variables.
    Health(ServeArgs),
    /// Print generated files: `scimd generate man` writes the manual page (roff) to stdout;
    /// with `--dir`, scimd(1) and a page per command (scimd-serve(1), …) into that directory.
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
        /// Write every page into this directory instead.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Parse a SCIM filter and print its canonical form, or the invalidFilter error.
    Filter {
        /// The filter, e.g. 'userName eq "bjensen"'.
        expr: String,
    },
}

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (a separate listener, e.g.
    /// 127.0.0.1:9464; off by default).
    #[arg(long, env = "SCIMD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, scimd serves HTTPS itself (TLS 1.2+,
    /// files read again on SIGHUP).
    #[arg(long, env = "SCIMD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "SCIMD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Write the first start's bootstrap token to this file (created with mode 0600)
    /// instead of printing it, so it does not end up in whatever collects stdout.
    #[arg(long, env = "SCIMD_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<std::path::PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "SCIMD_LISTEN")]
    pub listen: Option<String>,
    /// URL clients reach scimd at, used in meta.location and printed URLs
    /// [default: http://{listen}]
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// SCIM base URL, e.g. http://127.0.0.1:8080/t/default/scim/v2
    #[arg(long)]
    pub url: String,
    /// Bearer token (or SCIMD_BENCH_TOKEN).
    #[arg(long, env = "SCIMD_BENCH_TOKEN", hide_env_values = true)]
    pub token: String,
    /// create-users, lookup, patch-users, group-members, list, idp-cycle, ceiling (GET /healthz)
    #[arg(long, default_value = "create-users")]
    pub workload: String,
    /// Users created before measuring (lookup, patch-users, list, idp-cycle).
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    /// Groups for group-members.
    #[arg(long, default_value_t = 1)]
    pub groups: u64,
    /// Members per group for group-members.
    #[arg(long, default_value_t = 100)]
    pub group_size: u64,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measuring time, e.g. 20s, 2m.
    #[arg(long, default_value = "20s")]
    pub duration: String,
    /// Stop after this many measured requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Allow a target that is not on this machine.
    #[arg(long)]
    pub allow_remote: bool,
    /// Keep the users (named seed-{i}@bench.example) for later runs: only the missing ones
    /// are created, through Bulk, so a 1,000,000-user measurement loads its data once.
    #[arg(long)]
    pub seed: bool,
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only this tenant's rows.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this person's rows (an operator name, or cli:USER).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, e.g. token.created, setup_link.used, console.signed_in.
    #[arg(long)]
    pub action: Option<String>,
    /// Only rows at or after this time (RFC 3339) or this long ago (e.g. 24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many rows (up to 10,000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Rows older than this id (paging: pass the last id shown).
    #[arg(long)]
    pub before: Option<i64>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args)]
pub struct LogArgs {
    #[arg(long)]
    pub tenant: String,
    /// Only events at or after this time (RFC 3339) or this long ago (e.g. 24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Operation, e.g. "Create User", hard-delete-user, failure (repeatable).
    #[arg(long = "operation")]
    pub operations: Vec<String>,
    /// success or failure.
    #[arg(long)]
    pub outcome: Option<String>,
    /// A resource id, userName or group displayName.
    #[arg(long)]
    pub resource: Option<String>,
    /// A token name.
    #[arg(long)]
    pub token: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Events older than this sequence number (paging: pass the last seq shown).
    #[arg(long)]
    pub before: Option<i64>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Delete a tenant and everything in it.
    Delete {
        slug: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Make a setup link for the tenant's own admin (single-use, printed once): who opens it
    /// chooses a name and password and is led through connecting their identity provider.
    Invite {
        slug: String,
        /// The identity provider the guide starts with: entra, okta, onelogin, jumpcloud,
        /// google.
        #[arg(long)]
        idp: Option<String>,
        /// How long the link works: 10m to 30d.
        #[arg(long, default_value = "72h")]
        expires: String,
    },
    /// List the tenant's setup links (never their secrets) and its admins.
    Links { slug: String },
    /// Revoke a setup link that has not been used yet.
    RevokeLink { slug: String, id: i64 },
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create an operator. The password is read from SCIMD_ADMIN_PASSWORD, from stdin with
    /// --password-stdin, or asked for at the terminal.
    Create {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (also unlocks the account and ends its sessions).
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List operators.
    List,
    /// Delete an operator.
    Delete { username: String },
    /// Give a tenant admin access to a tenant (admin or read-only), or take it away (none).
    Grant {
        username: String,
        #[arg(long)]
        tenant: String,
        /// admin, read-only or none.
        #[arg(long, default_value = "admin")]
        access: String,
    },
    /// A single-use link (printed once) with which a tenant admin sets a new password.
    ResetLink {
        username: String,
        /// A tenant the admin administers.
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "24h")]
        expires: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token; its secret is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// users:rw, groups:r, bulk:rw … (repeatable)
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// e.g. 90d, 12h; default: never expires
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List a tenant's tokens (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token (effective on every node within seconds).
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Issue a new secret; the old one keeps working for the grace period.
    Rotate {
        #[arg(long)]
        tenant: String,
        id: String,
        /// How long the old secret stays valid [default: 24h]
        #[arg(long, default_value = "24h")]
        grace: String,
    },
}

#[derive(Subcommand)]
pub enum WebhookCmd {
    /// Add an endpoint; its signing secret is printed once. It receives events from now on.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        url: String,
        /// Event types, comma-separated (user.created, group.*, …) [default: every type]
        #[arg(long, default_value = "")]
        types: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a tenant's endpoints with their state (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Send a signed `webhook.test` event now and print the answer.
    Test {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Deliver again from an event sequence (inclusive); re-enables the endpoint.
    Replay {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long)]
        from: i64,
    },
    /// The latest delivery attempts, newest first.
    Deliveries {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// A new signing secret (printed once); the old one also signs for the overlap.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
    /// Resume deliveries (clears the failure state).
    Enable {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Stop deliveries; events wait at the cursor.
    Disable {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    Delete {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

#[derive(Args)]
pub struct EventsArgs {
    #[arg(long)]
    pub tenant: String,
    /// The sequence of the last event seen (0: from the start), or `latest`.
    #[arg(long, default_value = "0")]
    pub after: String,
    /// Event types, comma-separated [default: every type]
    #[arg(long, default_value = "")]
    pub types: String,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Keep waiting for new events (one JSON line each) until interrupted.
    #[arg(long)]
    pub follow: bool,
}

#[derive(Subcommand)]
pub enum SyncCmd {
    /// Stored jobs: import, list, export, delete, enable, disable.
    #[command(subcommand)]
    Job(JobCmd),
    /// Show what a cycle would do (per object: action and attribute diff), writing nothing.
    Plan {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Run one cycle now: apply exactly what `plan` shows.
    Run {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Check the target (discovery and the empty-filter probe), the source and the mappings.
    Test {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Provision one source user now and print each step.
    Provision {
        /// A job file or a stored job's name.
        job: String,
        /// The user's source id.
        #[arg(long)]
        user: String,
    },
    /// The per-object provisioning log of a job (newest first).
    Log {
        /// A job file or a stored job's name.
        job: String,
        #[arg(long)]
        cycle: Option<String>,
        /// Create, Update, Disable, Delete, StagedDelete, Adopt, Skip, Conflict, Enable.
        #[arg(long)]
        action: Option<String>,
        /// Success, Failure, Skipped, Warning.
        #[arg(long)]
        status: Option<String>,
        /// A source id, target id or display name.
        #[arg(long)]
        object: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// State, last cycle, ledger counts, staged deletes and the next timers.
    Status {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Pause a job: a cycle in flight stops after the objects it is sending, keeping its
    /// position; `scimd serve` starts no new cycle until `resume`.
    Pause {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Resume a paused job (an interrupted cycle carries on where it stopped).
    Resume {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Clear part of a job's state: watermark (re-read the whole source), escrows (retry
    /// failing objects now), quarantine, links (match the target again; nothing is
    /// deleted), or full.
    Restart {
        /// A job file or a stored job's name.
        job: String,
        /// watermark, escrows, quarantine, links or full.
        #[arg(long, default_value = "watermark")]
        scope: String,
    },
    /// Store a new target token (sealed), test it, and lift the quarantine if it works.
    /// The token is read from --token-env, --token-file, or standard input.
    Reauthorize {
        /// A job file or a stored job's name.
        job: String,
        /// The environment variable that holds the new token.
        #[arg(long)]
        token_env: Option<String>,
        /// A file that holds the new token (its surrounding whitespace is not part of it).
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
    },
    /// Let the deletes and disables the breaker held go ahead in the next cycle.
    ApproveDeletes {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Cancel the deletes and disables the breaker held.
    RejectDeletes {
        /// A job file or a stored job's name.
        job: String,
    },
    /// Send scheduled disables and deletes (deprovisioning time frames) in the next cycle
    /// instead of at their due time, under the breaker and the complete-read guard.
    ApplyTimers {
        /// A job file or a stored job's name.
        job: String,
        #[command(flatten)]
        only: TimerTarget,
    },
    /// Cancel scheduled disables and deletes: the objects stay on the target until their
    /// state at the source changes again.
    CancelTimers {
        /// A job file or a stored job's name.
        job: String,
        #[command(flatten)]
        only: TimerTarget,
    },
    /// Write a synthetic directory (CSV) for benchmarks.
    Generate {
        #[arg(long, default_value_t = 1000)]
        users: u64,
        #[arg(long, default_value_t = 10)]
        groups: u64,
        /// Average members per group.
        #[arg(long, default_value_t = 50)]
        members: u64,
        /// Change the family name of 1 % of the users (a different value per variant).
        #[arg(long, default_value_t = 0)]
        variant: u64,
        #[arg(long, default_value = "people.csv")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum JobCmd {
    /// Store (or update) a job from its TOML file; an inline target token is sealed.
    Import {
        file: std::path::PathBuf,
    },
    List,
    /// Print a stored job as TOML (never its credentials).
    Export {
        name: String,
    },
    /// Delete the job's configuration and ledger; the target's users stay.
    Delete {
        name: String,
        #[arg(long)]
        yes: bool,
    },
    /// Turn a job on (scheduled cycles).
    Enable {
        name: String,
    },
    /// Turn a job off (its configuration and ledger stay).
    Disable {
        name: String,
    },
}

/// One object's timer (by its source id), or every timer of the job.
#[derive(Args, Debug, Clone, Default)]
#[group(multiple = false)]
pub struct TimerTarget {
    /// Only this source user's timer.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this source group's timer.
    #[arg(long)]
    pub group: Option<String>,
}
