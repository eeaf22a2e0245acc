//! Durations as a job file writes them, parsed once when the job is read: no rule parses a
//! duration again, or falls back to a default behind the operator's back.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Duration;

/// A duration as written in the job file (`90s`, `40m`, `6h`, `28d`; `0`, `0s` or
/// `immediately` for none) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Dur {
    text: String,
    value: Duration,
}

impl Dur {
    /// Parses `text`; `0`, `0s`, `0m`…, an empty text and `immediately` are zero.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let zero = t.is_empty()
            || t.eq_ignore_ascii_case("immediately")
            || (t.starts_with('0')
                && t.trim_start_matches('0')
                    .trim()
                    .chars()
                    .all(char::is_alphabetic));
        let value = if zero {
            Duration::ZERO
        } else {
            scim_core::clock::parse_duration(t)
                .map_err(|_| format!("'{t}' is not a duration (e.g. 40m, 6h, 7d)"))?
        };
        Ok(Self {
            text: t.to_string(),
            value,
        })
    }

    /// A duration known to be valid (the defaults).
    pub(crate) fn known(text: &str, value: Duration) -> Self {
        Self {
            text: text.into(),
            value,
        }
    }

    pub fn get(&self) -> Duration {
        self.value
    }

    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// As a `std` duration (negative ones cannot be written).
    pub fn std(&self) -> std::time::Duration {
        std::time::Duration::try_from(self.value).unwrap_or_default()
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Dur::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_parsed_once_and_keep_their_text() {
        let cases = [
            ("40m", Some(Duration::minutes(40))),
            ("6h", Some(Duration::hours(6))),
            ("28d", Some(Duration::days(28))),
            ("1h 30m", Some(Duration::minutes(90))),
            ("0", Some(Duration::ZERO)),
            ("0s", Some(Duration::ZERO)),
            ("immediately", Some(Duration::ZERO)),
            ("", Some(Duration::ZERO)),
            ("soon", None),
            ("10", None),
            ("-1d", None),
        ];
        for (text, want) in cases {
            match (Dur::parse(text), want) {
                (Ok(d), Some(w)) => {
                    assert_eq!(d.get(), w, "{text}");
                    assert_eq!(d.text(), text.trim());
                }
                (Err(e), None) => assert!(e.contains("not a duration"), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?} vs {want:?}"),
            }
        }
    }
}
