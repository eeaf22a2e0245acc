//! Setup links (issue 32): how a customer's IT admin gets into their tenant.
//!
//! An instance admin makes a link for a tenant (console or `scimd tenant invite`); the person
//! who opens it chooses a name and password and becomes that tenant's admin (`Invite`), or sets
//! a new password for an existing tenant admin (`Reset`). A link is single-use, expires (10
//! minutes to 30 days, 72 hours by default) and can be revoked; only the SHA-256 of its secret is
//! stored, and the secret is shown once, when the link is made.

use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use serde::Serialize;

/// What opening the link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    Invite,
    Reset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invite => "invite",
            LinkPurpose::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invite" => Some(LinkPurpose::Invite),
            "reset" => Some(LinkPurpose::Reset),
            _ => None,
        }
    }
}

/// The identity provider a setup link's guide starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Idp {
    Entra,
    Okta,
    OneLogin,
    JumpCloud,
    Google,
}

impl Idp {
    pub const ALL: [Idp; 5] = [
        Idp::Entra,
        Idp::Okta,
        Idp::OneLogin,
        Idp::JumpCloud,
        Idp::Google,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Idp::Entra => "entra",
            Idp::Okta => "okta",
            Idp::OneLogin => "onelogin",
            Idp::JumpCloud => "jumpcloud",
            Idp::Google => "google",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Idp::Entra => "Microsoft Entra ID",
            Idp::Okta => "Okta",
            Idp::OneLogin => "OneLogin",
            Idp::JumpCloud => "JumpCloud",
            Idp::Google => "Google Workspace",
        }
    }

    /// `entra` (or `azure`, `aad`), `okta`, `onelogin`, `jumpcloud`, `google`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "entra" | "azure" | "aad" | "entra-id" => Some(Idp::Entra),
            "okta" => Some(Idp::Okta),
            "onelogin" => Some(Idp::OneLogin),
            "jumpcloud" => Some(Idp::JumpCloud),
            "google" | "google-workspace" => Some(Idp::Google),
            _ => None,
        }
    }
}

/// A stored setup link (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupLink {
    pub id: i64,
    pub tenant_id: i64,
    pub purpose: LinkPurpose,
    /// The tenant admin whose password a `Reset` link sets.
    pub operator: Option<String>,
    pub idp: Option<Idp>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The operator name the link made or reset.
    pub used_by: Option<String>,
    pub revoked_at: Option<Timestamp>,
}

/// A link to store: the SHA-256 of its secret and what it does.
#[derive(Debug, Clone)]
pub struct NewSetupLink {
    pub token_hash: String,
    pub tenant_id: i64,
    pub purpose: LinkPurpose,
    pub operator_id: Option<i64>,
    pub idp: Option<Idp>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Whether a link can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Usable,
    Used,
    Revoked,
    Expired,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Usable => "waiting",
            LinkState::Used => "used",
            LinkState::Revoked => "revoked",
            LinkState::Expired => "expired",
        }
    }

    /// What the person who opens a link that cannot be used is told.
    pub fn refusal(self) -> &'static str {
        match self {
            LinkState::Usable => "",
            LinkState::Used => {
                "This setup link has been used already. Sign in with the name and password chosen \
                 then, or ask your provider for a new link."
            }
            LinkState::Revoked => "This setup link was revoked. Ask your provider for a new link.",
            LinkState::Expired => "This setup link has expired. Ask your provider for a new link.",
        }
    }
}

impl SetupLink {
    /// Used beats revoked beats expired: each says what happened first that matters.
    pub fn state(&self, now: Timestamp) -> LinkState {
        if self.used_at.is_some() {
            LinkState::Used
        } else if self.revoked_at.is_some() {
            LinkState::Revoked
        } else if now >= self.expires_at {
            LinkState::Expired
        } else {
            LinkState::Usable
        }
    }
}

pub const DEFAULT_TTL: time::Duration = time::Duration::hours(72);
pub const MIN_TTL: time::Duration = time::Duration::minutes(10);
pub const MAX_TTL: time::Duration = time::Duration::days(30);

/// A link's lifetime must be 10 minutes to 30 days.
pub fn check_ttl(ttl: time::Duration) -> CoreResult<time::Duration> {
    if (MIN_TTL..=MAX_TTL).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(CoreError::Invalid(
            "a setup link lasts 10 minutes to 30 days".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> SetupLink {
        SetupLink {
            id: 1,
            tenant_id: 1,
            purpose: LinkPurpose::Invite,
            operator: None,
            idp: None,
            created_by: "root".into(),
            created_at: Timestamp::from_micros(0),
            expires_at: Timestamp::from_micros(1_000),
            used_at: None,
            used_by: None,
            revoked_at: None,
        }
    }

    #[test]
    fn states() {
        let at = Timestamp::from_micros;
        let l = link();
        assert_eq!(l.state(at(999)), LinkState::Usable);
        assert_eq!(l.state(at(1_000)), LinkState::Expired);
        let revoked = SetupLink {
            revoked_at: Some(at(5)),
            ..link()
        };
        assert_eq!(revoked.state(at(10)), LinkState::Revoked);
        assert_eq!(revoked.state(at(2_000)), LinkState::Revoked);
        let used = SetupLink {
            used_at: Some(at(6)),
            ..revoked
        };
        assert_eq!(used.state(at(2_000)), LinkState::Used);
    }

    #[test]
    fn lifetimes_and_words() {
        assert!(check_ttl(time::Duration::minutes(9)).is_err());
        assert!(check_ttl(time::Duration::minutes(10)).is_ok());
        assert!(check_ttl(time::Duration::days(30)).is_ok());
        assert!(check_ttl(time::Duration::days(31)).is_err());
        for idp in Idp::ALL {
            assert_eq!(Idp::parse(idp.as_str()), Some(idp));
        }
        assert_eq!(Idp::parse("Azure"), Some(Idp::Entra));
        assert_eq!(Idp::parse("ping"), None);
        assert_eq!(LinkPurpose::parse("reset"), Some(LinkPurpose::Reset));
    }
}
