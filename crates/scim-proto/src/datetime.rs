//! `dateTime` values (RFC 7643 §2.3.5: xsd:dateTime, "with no time zone" meaning UTC is
//! tolerated). Filters compare them as instants, not as strings.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Parses an xsd:dateTime / RFC 3339 timestamp. A value without an offset is read as UTC.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // RFC 3339 requires the offset; xsd:dateTime does not.
    let fmt_frac = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(s, &fmt_frac)
        .or_else(|_| PrimitiveDateTime::parse(s, &fmt))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats an instant the way scimd emits `meta.created`/`lastModified`.
pub fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        assert!(parse("2011-05-13T04:42:34Z").is_some());
        assert!(parse("2015-10-10T14:38:21.8617979-07:00").is_some());
        assert!(parse("2011-05-13T04:42:34").is_some());
        assert!(parse("2011-05-13T04:42:34.5").is_some());
        assert!(parse("yesterday").is_none());
        assert_eq!(
            parse("2020-01-01T01:00:00+01:00"),
            parse("2020-01-01T00:00:00Z")
        );
    }
}
