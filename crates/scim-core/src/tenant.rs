//! Tenants: each has a slug that names it in URLs (`/t/{slug}/scim/v2`).

use crate::error::{CoreError, CoreResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

/// Slugs are URL path segments: 1–63 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn validate_slug(slug: &str) -> CoreResult<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::Invalid(format!(
            "invalid tenant slug '{slug}': use 1-63 of a-z, 0-9 and '-', not at either end"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs() {
        for ok in ["default", "acme-corp", "a", "t1"] {
            assert!(super::validate_slug(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Acme", "a b", "a/b", &"x".repeat(64)] {
            assert!(super::validate_slug(bad).is_err(), "{bad}");
        }
    }
}
