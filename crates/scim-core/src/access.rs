//! Who may do what in the console: instance admins and tenant admins (issue 32).
//!
//! - An **instance admin** (every operator made with `scimd admin create`, as before) administers
//!   every tenant, the Apps (the provisioning engine) and the other admins.
//! - A **tenant admin** administers (`Admin`) or only reads (`ReadOnly`) the tenants granted to
//!   them, and sees no other: another tenant's pages answer as if it did not exist.
//!
//! What a request needs ([`Need`]) is decided by the console from its method and path; whether
//! the operator has it is [`decide`], a pure function table-tested here.

use serde::Serialize;

/// A tenant admin's access to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Everything within the tenant: tokens, webhooks, reading users, groups and the log.
    Admin,
    /// Pages and exports only; every form is refused.
    ReadOnly,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Admin => "admin",
            Access::ReadOnly => "read-only",
        }
    }

    /// `admin`, `read-only` (or `read`, `readonly`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Access::Admin),
            "read-only" | "readonly" | "read" => Some(Access::ReadOnly),
            _ => None,
        }
    }
}

/// One tenant granted to a tenant admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub tenant_id: i64,
    pub slug: String,
    pub access: Access,
}

/// What an operator is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    Instance,
    Tenant { grants: Vec<Grant> },
}

impl Role {
    pub fn is_instance(&self) -> bool {
        matches!(self, Role::Instance)
    }

    /// The stored kind: `instance` or `tenant`.
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Instance => "instance",
            Role::Tenant { .. } => "tenant",
        }
    }

    /// This operator's access to the tenant `slug` (an instance admin: `Admin` everywhere).
    pub fn access_to(&self, slug: &str) -> Option<Access> {
        match self {
            Role::Instance => Some(Access::Admin),
            Role::Tenant { grants } => grants.iter().find(|g| g.slug == slug).map(|g| g.access),
        }
    }

    /// A tenant admin's grants (an instance admin has none: it needs none).
    pub fn grants(&self) -> &[Grant] {
        match self {
            Role::Instance => &[],
            Role::Tenant { grants } => grants,
        }
    }

    /// Whether the tenant `slug` is listed for this operator.
    pub fn sees(&self, slug: &str) -> bool {
        self.access_to(slug).is_some()
    }

    /// Words for the console and the CLI: `instance admin`, `tenant admin (acme: admin)`.
    pub fn describe(&self) -> String {
        match self {
            Role::Instance => "instance admin".into(),
            Role::Tenant { grants } if grants.is_empty() => "tenant admin (no tenant)".into(),
            Role::Tenant { grants } => format!(
                "tenant admin ({})",
                grants
                    .iter()
                    .map(|g| format!("{}: {}", g.slug, g.access.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// What a console request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Sign-in, setup links, static files.
    Anyone,
    /// Any signed-in operator (sign-out, the tenants list, which shows each their own).
    SignedIn,
    /// Instance admins only (changing Apps, creating tenants, setup links, other admins).
    Instance,
    /// Read access to the tenant with this slug.
    Read(String),
    /// Admin access to the tenant with this slug.
    Write(String),
    /// Reading the app (an engine job) with this name: instance admins, or whoever reads one
    /// of the tenants it reads or writes — the guard looks those up and asks [`Need::ReadAny`].
    ReadApp(String),
    /// Read access to any one of these tenants (an app's, looked up).
    ReadAny(Vec<String>),
}

/// Whether the operator may go on, and if not how the refusal looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Not signed in (the sign-in page).
    SignIn,
    /// A tenant the operator does not administer: answered as a tenant that does not exist
    /// (a 404), so that tenant slugs cannot be probed.
    NotYours,
    /// The tenant is theirs read-only and the request would change something (a 403).
    ReadOnly,
    /// Instance admins only (a 403).
    InstanceOnly,
}

/// Whether `role` (none: not signed in) meets `need`.
pub fn decide(role: Option<&Role>, need: &Need) -> Verdict {
    let Some(role) = role else {
        return match need {
            Need::Anyone => Verdict::Allowed,
            _ => Verdict::SignIn,
        };
    };
    match need {
        Need::Anyone | Need::SignedIn => Verdict::Allowed,
        Need::Instance if role.is_instance() => Verdict::Allowed,
        Need::Instance => Verdict::InstanceOnly,
        Need::Read(slug) => match role.access_to(slug) {
            Some(_) => Verdict::Allowed,
            None => Verdict::NotYours,
        },
        Need::Write(slug) => match role.access_to(slug) {
            Some(Access::Admin) => Verdict::Allowed,
            Some(Access::ReadOnly) => Verdict::ReadOnly,
            None => Verdict::NotYours,
        },
        Need::ReadApp(_) | Need::ReadAny(_) if role.is_instance() => Verdict::Allowed,
        // Not looked up yet: nothing is known to be theirs.
        Need::ReadApp(_) => Verdict::NotYours,
        Need::ReadAny(slugs) if slugs.iter().any(|s| role.access_to(s).is_some()) => {
            Verdict::Allowed
        }
        Need::ReadAny(_) => Verdict::NotYours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_admin() -> Role {
        Role::Tenant {
            grants: vec![
                Grant {
                    tenant_id: 1,
                    slug: "acme".into(),
                    access: Access::Admin,
                },
                Grant {
                    tenant_id: 2,
                    slug: "globex".into(),
                    access: Access::ReadOnly,
                },
            ],
        }
    }

    #[test]
    fn decisions() {
        use Verdict::*;
        let t = tenant_admin();
        let i = Role::Instance;
        let none = Role::Tenant { grants: vec![] };
        let r = |s: &str| Need::Read(s.into());
        let w = |s: &str| Need::Write(s.into());
        let table: Vec<(Option<&Role>, Need, Verdict)> = vec![
            (None, Need::Anyone, Allowed),
            (None, Need::SignedIn, SignIn),
            (None, Need::Instance, SignIn),
            (None, r("acme"), SignIn),
            (Some(&i), Need::Instance, Allowed),
            (Some(&i), w("anything"), Allowed),
            (Some(&t), Need::SignedIn, Allowed),
            (Some(&t), Need::Instance, InstanceOnly),
            (Some(&t), r("acme"), Allowed),
            (Some(&t), w("acme"), Allowed),
            (Some(&t), r("globex"), Allowed),
            (Some(&t), w("globex"), ReadOnly),
            (Some(&t), r("initech"), NotYours),
            (Some(&t), w("initech"), NotYours),
            // Slugs compare exactly (they are stored lower-case).
            (Some(&t), r("ACME"), NotYours),
            (Some(&none), r("acme"), NotYours),
            (Some(&none), Need::SignedIn, Allowed),
            // Apps: instance admins, or a reader of one of the app's tenants.
            (None, Need::ReadApp("hr".into()), SignIn),
            (Some(&i), Need::ReadApp("hr".into()), Allowed),
            (Some(&t), Need::ReadApp("hr".into()), NotYours),
            (Some(&i), Need::ReadAny(vec![]), Allowed),
            (Some(&t), Need::ReadAny(vec![]), NotYours),
            (Some(&t), Need::ReadAny(vec!["initech".into()]), NotYours),
            (
                Some(&t),
                Need::ReadAny(vec!["initech".into(), "globex".into()]),
                Allowed,
            ),
            (Some(&none), Need::ReadAny(vec!["acme".into()]), NotYours),
        ];
        for (role, need, want) in table {
            assert_eq!(decide(role, &need), want, "{role:?} {need:?}");
        }
    }

    #[test]
    fn words() {
        assert_eq!(Access::parse("Read"), Some(Access::ReadOnly));
        assert_eq!(Access::parse("read-only"), Some(Access::ReadOnly));
        assert_eq!(Access::parse("admin"), Some(Access::Admin));
        assert_eq!(Access::parse("owner"), None);
        assert_eq!(
            tenant_admin().describe(),
            "tenant admin (acme: admin, globex: read-only)"
        );
        assert_eq!(Role::Instance.describe(), "instance admin");
        assert!(tenant_admin().sees("globex") && !tenant_admin().sees("x"));
    }
}
