//! The console's second factor (issue 32): TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps,
//! one step of skew, computed by the `totp-rs` crate) and single-use recovery codes.
//!
//! - The TOTP secret (160 random bits) is stored sealed under the instance key; a code is
//!   accepted once (the step it matched is remembered, so a code seen over a shoulder cannot be
//!   replayed within its 90 s window).
//! - Ten recovery codes are shown once; only their SHA-256 is stored, each used at most once.
//! - An instance admin may require a second factor of instance admins or of everyone
//!   ([`Requirement`]); who must enrol before using the console is [`must_enrol`].

use crate::access::Role;
use crate::error::{CoreError, CoreResult};
use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "scimd";

/// Who must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requirement {
    #[default]
    Nobody,
    InstanceAdmins,
    Everyone,
}

impl Requirement {
    /// `none`, `instance_admins`, `everyone` (the `console_require_totp` setting).
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s.trim() {
            "" | "none" => Ok(Requirement::Nobody),
            "instance_admins" => Ok(Requirement::InstanceAdmins),
            "everyone" => Ok(Requirement::Everyone),
            other => Err(CoreError::Invalid(format!(
                "console_require_totp is none, instance_admins or everyone, not '{other}'"
            ))),
        }
    }
}

/// Whether an operator without a second factor must set one up before anything else.
pub fn must_enrol(req: Requirement, role: &Role, enrolled: bool) -> bool {
    !enrolled
        && match req {
            Requirement::Nobody => false,
            Requirement::InstanceAdmins => role.is_instance(),
            Requirement::Everyone => true,
        }
}

/// A new secret, base32 (what authenticator apps take and what is sealed).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    totp_rs::Secret::Raw(bytes.to_vec())
        .to_encoded()
        .to_string()
}

fn totp(secret_b32: &str, account: &str) -> CoreResult<TOTP> {
    let bytes = totp_rs::Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|_| CoreError::Invalid("the second factor's secret is not base32".into()))?;
    // An account name with ':' is refused by the otpauth format: it cannot be in a name here.
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS,
        bytes,
        Some(ISSUER.into()),
        account.replace(':', "_"),
    )
    .map_err(|e| CoreError::Invalid(format!("second factor: {e}")))
}

/// The `otpauth://totp/…` URL an authenticator app reads (typed or from a QR code).
pub fn otpauth_url(secret_b32: &str, account: &str) -> CoreResult<String> {
    Ok(totp(secret_b32, account)?.get_url())
}

/// The code for the step of `unix_secs` (tests and the CLI's check).
pub fn code_at(secret_b32: &str, unix_secs: u64) -> CoreResult<String> {
    Ok(totp(secret_b32, "x")?.generate(unix_secs))
}

/// The time step a code matches at `unix_secs` (one step early or late is accepted), if it is
/// later than `after` (the last step used): `None` for a wrong or replayed code.
pub fn verify(secret_b32: &str, code: &str, unix_secs: u64, after: Option<u64>) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_b32, "x").ok()?;
    let now = unix_secs / STEP_SECS;
    (now.saturating_sub(1)..=now + 1)
        .filter(|step| after.is_none_or(|a| *step > a))
        .find(|step| {
            use subtle::ConstantTimeEq;
            bool::from(
                t.generate(step * STEP_SECS)
                    .as_bytes()
                    .ct_eq(code.as_bytes()),
            )
        })
}

/// Ten recovery codes, `xxxxx-xxxxx` of a–z and 2–7 (50 random bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 7];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let s = totp_rs::Secret::Raw(bytes.to_vec())
                .to_encoded()
                .to_string()
                .to_ascii_lowercase();
            format!("{}-{}", &s[0..5], &s[5..10])
        })
        .collect()
}

/// A recovery code as typed (case, spaces and the dash do not matter), normalised for hashing.
pub fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 key, "12345678901234567890", in base32.
    const RFC_KEY: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc_6238_vectors_with_six_digits() {
        // Appendix B's 8-digit values, last six digits.
        for (t, want) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(RFC_KEY, t).unwrap(), want, "t={t}");
        }
    }

    #[test]
    fn codes_are_accepted_within_a_step_and_once() {
        let t = 1_111_111_109; // step 37037036
        let step = t / STEP_SECS;
        let code = code_at(RFC_KEY, t).unwrap();
        assert_eq!(verify(RFC_KEY, &code, t, None), Some(step));
        assert_eq!(
            verify(RFC_KEY, &code, t + 30, None),
            Some(step),
            "one step late"
        );
        assert_eq!(
            verify(RFC_KEY, &code, t - 30, None),
            Some(step),
            "one step early"
        );
        assert_eq!(verify(RFC_KEY, &code, t + 60, None), None, "two steps late");
        assert_eq!(verify(RFC_KEY, &code, t, Some(step)), None, "replayed");
        assert_eq!(
            verify(RFC_KEY, &format!("{} {}", &code[..3], &code[3..]), t, None),
            Some(step)
        );
        assert_eq!(verify(RFC_KEY, "12345", t, None), None);
        assert_eq!(verify(RFC_KEY, "abcdef", t, None), None);
        assert_eq!(verify("not base32!", &code, t, None), None);
    }

    #[test]
    fn secrets_urls_and_recovery_codes() {
        let s = new_secret();
        assert_eq!(s.len(), 32, "160 bits in base32");
        assert_ne!(s, new_secret());
        let url = otpauth_url(&s, "it@acme.example").unwrap();
        assert!(
            url.starts_with("otpauth://totp/scimd:it%40acme.example?"),
            "{url}"
        );
        assert!(url.contains(&format!("secret={s}")), "{url}");
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
        );
        assert_eq!(normalize_recovery(" ABCDE-fghij "), "abcdefghij");
    }

    #[test]
    fn who_must_enrol() {
        let t = Role::Tenant { grants: vec![] };
        let i = Role::Instance;
        use Requirement::*;
        for (req, role, enrolled, want) in [
            (Nobody, &i, false, false),
            (InstanceAdmins, &i, false, true),
            (InstanceAdmins, &t, false, false),
            (Everyone, &t, false, true),
            (Everyone, &i, true, false),
        ] {
            assert_eq!(must_enrol(req, role, enrolled), want, "{req:?} {role:?}");
        }
        assert_eq!(Requirement::parse("everyone").unwrap(), Everyone);
        assert!(Requirement::parse("all").is_err());
    }
}
