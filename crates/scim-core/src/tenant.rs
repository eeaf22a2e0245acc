//! Tenants: each has a slug that names it in URLs (`/t/{slug}/scim/v2`) and a display name.
//! The rules for both live here and nowhere else: the CLI and the console create tenants
//! through [`crate::service::TenantService`], which applies them.

use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// A tenant's SCIM base URL: `{public_url}/t/{slug}/scim/v2`.
pub fn scim_base_url(public_url: &str, slug: &str) -> String {
    format!("{}/t/{slug}/scim/v2", public_url.trim_end_matches('/'))
}

/// The tenant whose SCIM base URL `url` is (the inverse of [`scim_base_url`], a trailing `/`
/// allowed, scheme and host in any case), or `None` for any other URL.
pub fn slug_of_scim_url(public_url: &str, url: &str) -> Option<String> {
    let prefix = format!("{}/t/", public_url.trim_end_matches('/'));
    let head = url.get(..prefix.len())?;
    // Scheme and host compare in any case; the path (after `scheme://host`) exactly.
    let origin_len = prefix
        .find("://")
        .and_then(|i| prefix[i + 3..].find('/').map(|j| i + 3 + j))?;
    if !head[..origin_len].eq_ignore_ascii_case(&prefix[..origin_len])
        || head[origin_len..] != prefix[origin_len..]
    {
        return None;
    }
    let rest = &url[prefix.len()..];
    let (slug, tail) = rest.split_once('/')?;
    let tail = tail.trim_end_matches('/');
    (tail == "scim/v2" && normalize_slug(slug).ok()? == slug).then(|| slug.to_string())
}

/// The longest display name.
pub const MAX_NAME_CHARS: usize = 200;

/// Slugs are URL path segments: 1–63 of `a-z 0-9 -`, not starting or ending with `-`.
/// Input is trimmed and lower-cased first (`Acme` names the tenant `acme`).
pub fn normalize_slug(slug: &str) -> CoreResult<String> {
    let slug = slug.trim().to_ascii_lowercase();
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(slug)
    } else {
        Err(CoreError::Invalid(format!(
            "invalid tenant slug '{}': use 1-63 of a-z, 0-9 and '-', not at either end",
            scim_proto::error::excerpt(&slug)
        )))
    }
}

/// A display name: trimmed, the slug when empty, at most [`MAX_NAME_CHARS`] characters.
pub fn normalize_name(name: Option<&str>, slug: &str) -> CoreResult<String> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(slug);
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(CoreError::Invalid(format!(
            "a tenant name has at most {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(CoreError::Invalid(
            "a tenant name cannot contain control characters".into(),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_urls_name_their_tenant() {
        let base = "https://id.example.com/";
        let cases = [
            ("https://id.example.com/t/acme/scim/v2", Some("acme")),
            ("https://id.example.com/t/acme/scim/v2/", Some("acme")),
            ("HTTPS://ID.example.com/t/acme/scim/v2", Some("acme")),
            ("https://id.example.com/t/Acme/scim/v2", None),
            ("https://id.example.com/t/acme/scim/v1", None),
            ("https://id.example.com/t/acme/scim/v2/Users", None),
            ("https://id.example.com/t//scim/v2", None),
            ("https://other.example.com/t/acme/scim/v2", None),
            ("https://id.example.com.evil/t/acme/scim/v2", None),
            ("https://id.example.com/t/acme", None),
            ("https://id.example.com/T/acme/scim/v2", None),
            ("https://id.example.com/t/acme/SCIM/v2", None),
            ("", None),
        ];
        for (url, want) in cases {
            assert_eq!(slug_of_scim_url(base, url).as_deref(), want, "{url}");
            let under = url.replacen(".com/", ".com/id/", 1);
            let want_under =
                want.filter(|_| url.starts_with("https://id") || url.starts_with("HTTPS"));
            assert_eq!(
                slug_of_scim_url("https://id.example.com/id", &under).as_deref(),
                want_under,
                "{under}"
            );
            if let Some(slug) = want {
                let round = scim_base_url(base, slug);
                assert_eq!(slug_of_scim_url(base, &round).as_deref(), Some(slug));
            }
        }
    }

    #[test]
    fn slugs() {
        for ok in ["default", "acme-corp", "a", "t1"] {
            assert_eq!(normalize_slug(ok).unwrap(), ok);
        }
        assert_eq!(normalize_slug(" Acme ").unwrap(), "acme");
        for bad in ["", "-a", "a-", "a b", "a/b", &"x".repeat(64)] {
            assert!(normalize_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name(None, "acme").unwrap(), "acme");
        assert_eq!(normalize_name(Some("  "), "acme").unwrap(), "acme");
        assert_eq!(
            normalize_name(Some(" Acme Corp "), "acme").unwrap(),
            "Acme Corp"
        );
        assert!(normalize_name(Some(&"x".repeat(201)), "a").is_err());
        assert!(normalize_name(Some("a\nb"), "a").is_err());
    }
}
