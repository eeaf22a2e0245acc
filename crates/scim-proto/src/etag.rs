//! Resource versions and conditional requests (RFC 7644 §3.14, RFC 7232).
//!
//! scimd's versions are weak entity tags, `W/"<n>"` with `n` the resource's version number.
//! `If-Match` and `If-None-Match` take `*` or a list of entity tags (RFC 7232 §2.3, §3.1,
//! §3.2); SCIM compares versions weakly in both (RFC 7644 §3.14 sends `If-Match: W/"…"`), so
//! `W/"3"` and `"3"` both name version 3.

/// The weak ETag of a version: `W/"3"`.
pub fn etag_of(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A parsed `If-Match` / `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    /// `*`: any current version.
    Any,
    /// The opaque tags listed (without `W/` and quotes).
    List(Vec<String>),
}

impl EntityTags {
    /// Parses `*` or `#entity-tag` (RFC 7232 §2.3: `[W/] DQUOTE *etagc DQUOTE`, comma
    /// separated, optional whitespace; a comma inside quotes belongs to the tag). Leniency
    /// for hand-written clients: an unquoted tag (`If-Match: 3`) is read as that tag.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return EntityTags::Any;
        }
        let mut tags = Vec::new();
        let mut rest = header;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let body = rest.strip_prefix("W/").unwrap_or(rest);
            let (tag, after) = match body.strip_prefix('"') {
                Some(inner) => match inner.find('"') {
                    Some(end) => (&inner[..end], &inner[end + 1..]),
                    None => (inner, ""),
                },
                None => match body.find(',') {
                    Some(end) => (body[..end].trim_end(), &body[end..]),
                    None => (body.trim_end(), ""),
                },
            };
            tags.push(tag.to_string());
            rest = after;
        }
        EntityTags::List(tags)
    }

    /// Whether the list names `version` (weak comparison).
    pub fn matches(&self, version: i64) -> bool {
        match self {
            EntityTags::Any => true,
            EntityTags::List(tags) => {
                let want = version.to_string();
                tags.contains(&want)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_weak_and_strong_tags() {
        let t = EntityTags::parse("W/\"1\", \"3\"");
        assert!(t.matches(1) && t.matches(3) && !t.matches(2));
        assert!(EntityTags::parse("*").matches(9));
        assert!(EntityTags::parse(&etag_of(7)).matches(7));
        assert_eq!(
            EntityTags::parse("W/\"a,b\""),
            EntityTags::List(vec!["a,b".into()])
        );
        assert!(EntityTags::parse("3").matches(3), "unquoted");
        assert!(!EntityTags::parse("").matches(3));
        assert!(!EntityTags::parse("\"3").matches(4));
    }
}
