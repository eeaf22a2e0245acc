//! Attribute paths (RFC 7644 §3.10): `attrPath = [URI ":"] ATTRNAME *1subAttr`.
//!
//! Names are kept as written; resolution against the schema registry is case-insensitive.
//! PATCH paths, which add a value filter, are built on this in [`crate::filter::PatchPath`].

use std::fmt;

/// `[urn:]name[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN prefix, when the path was URN-qualified.
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(name: &str) -> Self {
        Self {
            urn: None,
            name: name.to_string(),
            sub: None,
        }
    }
    pub fn with_sub(name: &str, sub: &str) -> Self {
        Self {
            urn: None,
            name: name.to_string(),
            sub: Some(sub.to_string()),
        }
    }

    /// Parses one attribute path token such as `name.givenName` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    pub fn parse(s: &str) -> Option<Self> {
        let (urn, rest) = if has_urn_prefix(s) {
            let idx = s.rfind(':')?;
            (Some(s[..idx].to_string()), &s[idx + 1..])
        } else {
            (None, s)
        };
        if let Some(u) = &urn
            && (u.len() <= 4 || u.ends_with(':'))
        {
            return None;
        }
        let mut parts = rest.splitn(2, '.');
        let name = parts.next()?;
        let sub = parts.next();
        if !is_attr_name(name) {
            return None;
        }
        if let Some(sub) = sub
            && !is_attr_name(sub)
        {
            return None;
        }
        Some(Self {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The same path without its sub-attribute.
    pub fn parent(&self) -> Self {
        Self {
            urn: self.urn.clone(),
            name: self.name.clone(),
            sub: None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Whether `s` starts with `urn:` in any case (and is longer than that).
pub fn has_urn_prefix(s: &str) -> bool {
    s.len() > 4 && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA` (RFC 7643 §2.1);
/// `$ref` is the one name the RFC uses outside that grammar.
pub fn is_attr_name(s: &str) -> bool {
    if s == "$ref" || s.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_sub_and_urn_paths() {
        assert_eq!(AttrPath::parse("userName"), Some(AttrPath::new("userName")));
        assert_eq!(
            AttrPath::parse("name.givenName"),
            Some(AttrPath::with_sub("name", "givenName"))
        );
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub.as_deref(),
            Some("$ref")
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "", "1abc", "a.b.c", "urn:", "urn:x:", "a..b", "na me", "a.", ".a",
        ] {
            assert_eq!(AttrPath::parse(bad), None, "{bad}");
        }
    }
}
