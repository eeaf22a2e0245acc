//! The audit log (issue 32): who did what to which tenant, when, and from where.
//!
//! A person's action that changes stored data (a token made, a tenant deleted, a setup link
//! used) is one [`AuditedChange`], written by the store in **one transaction** with its
//! [`AuditEntry`]: either both are stored or neither. Actions whose effect is not in the
//! database (signing in, editing an app's job file) are recorded on their own, after the fact.
//! Rows are kept as long as the provisioning log and swept with it.

use crate::access::Access;
use crate::clock::Timestamp;
use crate::event::csv_cell;
use crate::setup_link::NewSetupLink;
use crate::token::TokenRecord;
use crate::webhook::WebhookEndpoint;
use serde::Serialize;

/// What kind of actor acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// An instance admin in the console.
    InstanceAdmin,
    /// A tenant admin in the console.
    TenantAdmin,
    /// Someone opening a setup link (not signed in yet).
    SetupLink,
    /// The command line, run by whoever can reach the database.
    Cli,
    /// scimd itself (the first start's bootstrap tenant and token).
    Server,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::InstanceAdmin => "instance admin",
            ActorKind::TenantAdmin => "tenant admin",
            ActorKind::SetupLink => "setup link",
            ActorKind::Cli => "command line",
            ActorKind::Server => "scimd",
        }
    }
}

/// Who acted, and from which address (the client address as resolved through the
/// trusted-proxy setting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub name: String,
    pub kind: ActorKind,
    pub address: Option<String>,
}

impl Actor {
    /// The command line: named after the OS user running it when known.
    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_default();
        Self {
            name: if user.is_empty() {
                "cli".into()
            } else {
                format!("cli:{user}")
            },
            kind: ActorKind::Cli,
            address: None,
        }
    }

    pub fn server() -> Self {
        Self {
            name: "scimd".into(),
            kind: ActorKind::Server,
            address: None,
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuditAction {
    SignedIn,
    TenantCreated,
    TenantDeleted,
    TokenCreated,
    TokenRevoked,
    TokenRotated,
    WebhookAdded,
    WebhookSecretRotated,
    WebhookReplayed,
    WebhookEnabled,
    WebhookDisabled,
    WebhookDeleted,
    SetupLinkMade,
    SetupLinkRevoked,
    SetupLinkUsed,
    AccessChanged,
    OperatorCreated,
    OperatorDeleted,
    PasswordSet,
    SecondFactorChanged,
    AppChanged,
}

impl AuditAction {
    pub const ALL: [AuditAction; 21] = [
        AuditAction::SignedIn,
        AuditAction::TenantCreated,
        AuditAction::TenantDeleted,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::TokenRotated,
        AuditAction::WebhookAdded,
        AuditAction::WebhookSecretRotated,
        AuditAction::WebhookReplayed,
        AuditAction::WebhookEnabled,
        AuditAction::WebhookDisabled,
        AuditAction::WebhookDeleted,
        AuditAction::SetupLinkMade,
        AuditAction::SetupLinkRevoked,
        AuditAction::SetupLinkUsed,
        AuditAction::AccessChanged,
        AuditAction::OperatorCreated,
        AuditAction::OperatorDeleted,
        AuditAction::PasswordSet,
        AuditAction::SecondFactorChanged,
        AuditAction::AppChanged,
    ];

    /// The stored and exported name, e.g. `token.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignedIn => "console.signed_in",
            AuditAction::TenantCreated => "tenant.created",
            AuditAction::TenantDeleted => "tenant.deleted",
            AuditAction::TokenCreated => "token.created",
            AuditAction::TokenRevoked => "token.revoked",
            AuditAction::TokenRotated => "token.rotated",
            AuditAction::WebhookAdded => "webhook.added",
            AuditAction::WebhookSecretRotated => "webhook.secret_rotated",
            AuditAction::WebhookReplayed => "webhook.replayed",
            AuditAction::WebhookEnabled => "webhook.enabled",
            AuditAction::WebhookDisabled => "webhook.disabled",
            AuditAction::WebhookDeleted => "webhook.deleted",
            AuditAction::SetupLinkMade => "setup_link.made",
            AuditAction::SetupLinkRevoked => "setup_link.revoked",
            AuditAction::SetupLinkUsed => "setup_link.used",
            AuditAction::AccessChanged => "admin.access_changed",
            AuditAction::OperatorCreated => "admin.created",
            AuditAction::OperatorDeleted => "admin.deleted",
            AuditAction::PasswordSet => "admin.password_set",
            AuditAction::SecondFactorChanged => "admin.second_factor_changed",
            AuditAction::AppChanged => "app.changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl Serialize for AuditActionName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// An action serialized by its name (`token.created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditActionName(pub AuditAction);

/// One row of the audit log, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: Actor,
    /// The tenant acted on (none: the instance itself, e.g. an operator made on the CLI).
    pub tenant_id: Option<i64>,
    /// Its slug when the action was taken (kept after the tenant is deleted).
    pub tenant: Option<String>,
    pub action: AuditActionName,
    /// What was acted on, in words: a token's name and id, a link's id, an admin's name.
    pub target: String,
}

impl AuditEntry {
    pub fn new(actor: &Actor, action: AuditAction, target: impl Into<String>) -> Self {
        Self {
            at: Timestamp::now(),
            actor: actor.clone(),
            tenant_id: None,
            tenant: None,
            action: AuditActionName(action),
            target: target.into(),
        }
    }

    pub fn on(mut self, tenant: &crate::Tenant) -> Self {
        self.tenant_id = Some(tenant.id);
        self.tenant = Some(tenant.slug.clone());
        self
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Which rows to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only these tenants' rows (a tenant admin's view); none: every row.
    pub tenant_ids: Option<Vec<i64>>,
    pub tenant_id: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Rows with a smaller id (paging).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// At most this many rows per page or export.
pub const MAX_AUDIT_PAGE: u32 = 10_000;

/// A write that a person's action makes, stored with its audit row in one transaction.
#[derive(Debug, Clone)]
pub enum AuditedChange {
    CreateTenant {
        slug: String,
        name: String,
    },
    DeleteTenant {
        slug: String,
    },
    InsertToken(TokenRecord),
    RevokeToken {
        tenant_id: i64,
        id: String,
    },
    RotateToken {
        tenant_id: i64,
        id: String,
        hash: String,
        prefix: String,
        previous_until: Timestamp,
    },
    InsertEndpoint(Box<WebhookEndpoint>),
    SetEndpointEnabled {
        tenant_id: i64,
        id: String,
        enabled: bool,
        reason: Option<String>,
    },
    ResetEndpointCursor {
        tenant_id: i64,
        id: String,
        cursor: i64,
    },
    RotateEndpointSecret {
        tenant_id: i64,
        id: String,
        sealed: String,
        prefix: String,
        previous_until: Timestamp,
    },
    DeleteEndpoint {
        tenant_id: i64,
        id: String,
    },
    InsertSetupLink(NewSetupLink),
    RevokeSetupLink {
        tenant_id: i64,
        id: i64,
    },
    RedeemInvite {
        token_hash: String,
        username: String,
        hash: String,
    },
    RedeemReset {
        token_hash: String,
        hash: String,
    },
    SetGrant {
        operator_id: i64,
        tenant_id: i64,
        access: Option<Access>,
    },
    CreateOperator {
        username: String,
        hash: String,
    },
    DeleteOperator {
        username: String,
    },
    SetPassword {
        username: String,
        hash: String,
    },
    /// A TOTP secret (sealed) and new recovery codes (hashes), or none of either.
    SetSecondFactor {
        operator_id: i64,
        sealed: Option<String>,
        recovery_hashes: Vec<String>,
    },
}

/// What an audited change returns.
#[derive(Debug, Clone)]
pub enum AuditOutcome {
    /// Whether the row existed (revocations, deletions, grants).
    Done(bool),
    Tenant(crate::Tenant),
    Operator(crate::Operator),
    Link(crate::setup_link::SetupLink),
}

impl AuditOutcome {
    pub fn done(self) -> bool {
        match self {
            AuditOutcome::Done(b) => b,
            _ => true,
        }
    }
}

/// A page of rows as CSV (one header row; RFC 4180 quoting by the `csv` crate).
pub fn to_csv(rows: &[AuditRecord]) -> crate::CoreResult<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| crate::CoreError::Internal(format!("CSV export: {e}"));
    w.write_record([
        "id", "at", "actor", "role", "address", "tenant", "action", "target",
    ])
    .map_err(fail)?;
    for r in rows {
        let e = &r.entry;
        // Names and targets are typed by people (a token named `=cmd()`): formula-safe.
        w.write_record([
            r.id.to_string().as_str(),
            &e.at.rfc3339(),
            &csv_cell(&e.actor.name),
            e.actor.kind.as_str(),
            e.actor.address.as_deref().unwrap_or(""),
            &csv_cell(e.tenant.as_deref().unwrap_or("")),
            e.action.0.as_str(),
            &csv_cell(&e.target),
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::CoreError::Internal(format!("CSV export: {e}")))?;
    String::from_utf8(bytes).map_err(|e| crate::CoreError::Internal(format!("CSV export: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_unique_and_read_back() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert!(seen.insert(a.as_str()), "{a:?}");
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("token.eaten"), None);
    }

    #[test]
    fn csv_neutralises_formulas_in_what_people_typed() {
        let actor = Actor::server();
        let e = AuditEntry::new(&actor, AuditAction::TokenCreated, "=HYPERLINK(\"x\")");
        let csv = to_csv(&[AuditRecord { id: 1, entry: e }]).unwrap();
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let actor = Actor {
            name: "it@acme.example".into(),
            kind: ActorKind::TenantAdmin,
            address: Some("192.0.2.7".into()),
        };
        let mut e = AuditEntry::new(&actor, AuditAction::TokenCreated, "Okta, prod \"eu\"");
        e.at = Timestamp::from_micros(0);
        e.tenant = Some("acme".into());
        let csv = to_csv(&[AuditRecord { id: 7, entry: e }]).unwrap();
        assert_eq!(
            csv,
            "id,at,actor,role,address,tenant,action,target\n\
             7,1970-01-01T00:00:00Z,it@acme.example,tenant admin,192.0.2.7,acme,token.created,\"Okta, prod \"\"eu\"\"\"\n"
        );
    }
}
