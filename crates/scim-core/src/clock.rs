//! Time as the domain stores it: [`Timestamp`], microseconds since the Unix epoch (UTC).
//!
//! One type crosses every crate boundary instead of bare integers, so arithmetic is done with
//! durations (`ts + Duration::hours(12)`) and conversions to text happen in one place.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};
use time::{Duration, OffsetDateTime};

/// An instant, to the microsecond (what both databases store in a BIGINT).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn from_datetime(t: OffsetDateTime) -> Self {
        Self(i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX))
    }

    /// The instant as a date-time. Every `Timestamp` made from a date-time converts back;
    /// one beyond year 9999 (only from a corrupt row) is clamped to the last instant
    /// `time` can represent.
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).unwrap_or_else(|_| {
            if self.0 < 0 {
                time::PrimitiveDateTime::MIN.assume_utc()
            } else {
                time::PrimitiveDateTime::MAX.assume_utc()
            }
        })
    }

    /// RFC 3339 (`meta.created`, logs, exports).
    pub fn rfc3339(self) -> String {
        scim_proto::datetime::format(self.to_datetime())
    }

    /// Whole days since 1970-01-01 (UTC).
    pub fn days_since_epoch(self) -> i64 {
        self.0.div_euclid(MICROS_PER_DAY)
    }

    /// The start (UTC midnight) of a day counted since the epoch.
    pub fn from_days_since_epoch(day: i64) -> Self {
        Self(day.saturating_mul(MICROS_PER_DAY))
    }

    /// `2027-01-06 13:31 UTC`: to the minute, for people (log details).
    pub fn minutes_text(&self) -> String {
        let d = self.to_datetime();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        )
    }
}

/// Microseconds in a duration, saturating.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.whole_microseconds()).unwrap_or(if d.is_negative() {
        i64::MIN
    } else {
        i64::MAX
    })
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(micros(d)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(micros(d)))
    }
}

impl Sub for Timestamp {
    type Output = Duration;
    fn sub(self, other: Timestamp) -> Duration {
        Duration::microseconds(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Parses a positive duration as an admin types it (`90d`, `12h`, `30m`, `1w`, `1h 30m`),
/// with `humantime`'s units.
pub fn parse_duration(text: &str) -> crate::CoreResult<Duration> {
    let t = text.trim();
    let bad = || {
        crate::CoreError::Invalid(format!(
            "invalid duration '{}': use e.g. 90d, 12h, 30m",
            scim_proto::error::excerpt(t)
        ))
    };
    let d = humantime::parse_duration(t).map_err(|_| bad())?;
    let d = Duration::try_from(d).map_err(|_| bad())?;
    if d.is_positive() { Ok(d) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_text() {
        let t = Timestamp::from_micros(86_400_000_000 + 1);
        assert_eq!(t.days_since_epoch(), 1);
        assert_eq!((t + Duration::seconds(1)).as_micros(), 86_401_000_001);
        assert_eq!(t - Timestamp::EPOCH, Duration::microseconds(86_400_000_001));
        assert_eq!(Timestamp::EPOCH.rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_micros(i64::MAX) + Duration::days(1),
            Timestamp::from_micros(i64::MAX)
        );
        assert_eq!(Timestamp::from_micros(-1).days_since_epoch(), -1);
        assert_eq!(parse_duration("90d").unwrap(), Duration::days(90));
        assert_eq!(parse_duration("12h").unwrap(), Duration::hours(12));
        for bad in ["", "d", "10", "-1d", "0d", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now = Timestamp::now();
        assert_eq!(Timestamp::from_datetime(now.to_datetime()), now);
    }
}
