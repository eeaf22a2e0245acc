//! The cursor format scimd issues (RFC 9865 §2).
//!
//! A cursor is opaque to clients and made only of URL-unreserved characters (RFC 9865 §2.1).
//! scimd issues two forms: `s<seq>` continues after a resource's storage sequence number
//! (keyset paging in the default order, constant time on any page), and `o<offset>` continues
//! at an offset (any `sortBy`). An empty cursor asks for the first page.

use crate::error::{ScimError, ScimResult, ScimType};
use std::fmt;

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// After the resource with this sequence number (default order).
    After(i64),
    /// At this 0-based offset (sorted results).
    Offset(u64),
}

fn invalid() -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidCursor,
        "the cursor is not one scimd issued for this query",
    )
}

impl Cursor {
    /// Parses a client's `cursor` parameter; `Ok(None)` is the first page.
    pub fn parse(s: &str) -> ScimResult<Option<Self>> {
        if s.is_empty() {
            return Ok(None);
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        {
            return Err(invalid());
        }
        let (tag, n) = s.split_at(1);
        match tag {
            "s" => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| Some(Cursor::After(n)))
                .ok_or_else(invalid),
            "o" => n
                .parse::<u64>()
                .map(|n| Some(Cursor::Offset(n)))
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }

    /// The offset this cursor names; a keyset cursor on a sorted query is refused.
    pub fn offset(cursor: Option<Self>) -> ScimResult<u64> {
        match cursor {
            None => Ok(0),
            Some(Cursor::Offset(n)) => Ok(n),
            Some(Cursor::After(_)) => Err(invalid()),
        }
    }

    /// The sequence number to continue after; an offset cursor on a keyset query is refused.
    pub fn after(cursor: Option<Self>) -> ScimResult<Option<i64>> {
        match cursor {
            None => Ok(None),
            Some(Cursor::After(n)) => Ok(Some(n)),
            Some(Cursor::Offset(_)) => Err(invalid()),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cursor::After(n) => write!(f, "s{n}"),
            Cursor::Offset(n) => write!(f, "o{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_ones() {
        for c in [Cursor::After(0), Cursor::After(42), Cursor::Offset(100)] {
            assert_eq!(Cursor::parse(&c.to_string()).unwrap(), Some(c));
        }
        assert_eq!(Cursor::parse("").unwrap(), None);
        for bad in ["x1", "s", "s-1", "o-1", "s1 ", "s%31", "sabc", "o1.5"] {
            let e = Cursor::parse(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidCursor), "{bad}");
        }
        assert!(Cursor::offset(Some(Cursor::After(3))).is_err());
        assert!(Cursor::after(Some(Cursor::Offset(3))).is_err());
        assert_eq!(Cursor::offset(None).unwrap(), 0);
    }
}
