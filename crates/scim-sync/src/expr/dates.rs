//! Dates for `FormatDateTime`, `DateAdd` and `Now`: .NET-style custom format strings
//! (`yyyyMMddHHmmss.fZ`, the generalized-time format Entra's examples use), RFC 3339 out.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Year4,
    Year2,
    Month2,
    Month1,
    Day2,
    Day1,
    Hour2,
    Hour1,
    Minute,
    Second,
    Fraction(usize),
    Literal(char),
}

fn tokens(fmt: &str) -> Vec<Tok> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|x| **x == c).count();
        let (tok, used) = match (c, run) {
            ('y', n) if n >= 4 => (Tok::Year4, 4),
            ('y', _) => (Tok::Year2, run.min(2)),
            ('M', n) if n >= 2 => (Tok::Month2, 2),
            ('M', _) => (Tok::Month1, 1),
            ('d', n) if n >= 2 => (Tok::Day2, 2),
            ('d', _) => (Tok::Day1, 1),
            ('H' | 'h', n) if n >= 2 => (Tok::Hour2, 2),
            ('H' | 'h', _) => (Tok::Hour1, 1),
            ('m', _) => (Tok::Minute, run.min(2)),
            ('s', _) => (Tok::Second, run.min(2)),
            ('f' | 'F', n) => (Tok::Fraction(n.min(7)), n.min(7)),
            ('\\', _) if i + 1 < chars.len() => {
                out.push(Tok::Literal(chars[i + 1]));
                i += 2;
                continue;
            }
            (c, _) => (Tok::Literal(c), 1),
        };
        out.push(tok);
        i += used;
    }
    out
}

/// Parses `s` with a .NET custom format. A trailing `Z` literal means UTC, as does its
/// absence.
pub fn parse_with(s: &str, fmt: &str) -> Result<OffsetDateTime, String> {
    let chars: Vec<char> = s.trim().chars().collect();
    let (mut y, mut mo, mut d, mut h, mut mi, mut se, mut ns) =
        (1i32, 1u8, 1u8, 0u8, 0u8, 0u8, 0u32);
    let mut at = 0usize;
    let digits = |at: &mut usize, min: usize, max: usize| -> Result<u32, String> {
        let start = *at;
        while *at < chars.len() && *at - start < max && chars[*at].is_ascii_digit() {
            *at += 1;
        }
        if *at - start < min {
            return Err(format!("expected a number at position {start}"));
        }
        chars[start..*at]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| format!("bad number at position {start}"))
    };
    for tok in tokens(fmt) {
        match tok {
            Tok::Year4 => y = i32::try_from(digits(&mut at, 4, 4)?).map_err(|e| e.to_string())?,
            Tok::Year2 => {
                y = 2000 + i32::try_from(digits(&mut at, 2, 2)?).map_err(|e| e.to_string())?
            }
            Tok::Month2 => mo = u8::try_from(digits(&mut at, 2, 2)?).map_err(|e| e.to_string())?,
            Tok::Month1 => mo = u8::try_from(digits(&mut at, 1, 2)?).map_err(|e| e.to_string())?,
            Tok::Day2 => d = u8::try_from(digits(&mut at, 2, 2)?).map_err(|e| e.to_string())?,
            Tok::Day1 => d = u8::try_from(digits(&mut at, 1, 2)?).map_err(|e| e.to_string())?,
            Tok::Hour2 => h = u8::try_from(digits(&mut at, 2, 2)?).map_err(|e| e.to_string())?,
            Tok::Hour1 => h = u8::try_from(digits(&mut at, 1, 2)?).map_err(|e| e.to_string())?,
            Tok::Minute => mi = u8::try_from(digits(&mut at, 2, 2)?).map_err(|e| e.to_string())?,
            Tok::Second => se = u8::try_from(digits(&mut at, 2, 2)?).map_err(|e| e.to_string())?,
            Tok::Fraction(n) => {
                let start = at;
                let f = digits(&mut at, 1, n)?;
                let len = u32::try_from(at - start).map_err(|e| e.to_string())?;
                ns = f * 10u32.pow(9 - len);
            }
            Tok::Literal(c) => {
                if chars.get(at) != Some(&c) {
                    return Err(format!("expected '{c}' at position {at}"));
                }
                at += 1;
            }
        }
    }
    if at != chars.len() {
        return Err(format!("unexpected text at position {at}"));
    }
    let month = Month::try_from(mo).map_err(|e| e.to_string())?;
    let date = Date::from_calendar_date(y, month, d).map_err(|e| e.to_string())?;
    let time = Time::from_hms_nano(h, mi, se, ns).map_err(|e| e.to_string())?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

pub fn format_with(t: OffsetDateTime, fmt: &str) -> Result<String, String> {
    let t = t.to_offset(UtcOffset::UTC);
    let mut out = String::new();
    for tok in tokens(fmt) {
        match tok {
            Tok::Year4 => out += &format!("{:04}", t.year()),
            Tok::Year2 => out += &format!("{:02}", t.year().rem_euclid(100)),
            Tok::Month2 => out += &format!("{:02}", u8::from(t.month())),
            Tok::Month1 => out += &u8::from(t.month()).to_string(),
            Tok::Day2 => out += &format!("{:02}", t.day()),
            Tok::Day1 => out += &t.day().to_string(),
            Tok::Hour2 => out += &format!("{:02}", t.hour()),
            Tok::Hour1 => out += &t.hour().to_string(),
            Tok::Minute => out += &format!("{:02}", t.minute()),
            Tok::Second => out += &format!("{:02}", t.second()),
            Tok::Fraction(n) => {
                let s = format!("{:09}", t.nanosecond());
                out += &s[..n];
            }
            Tok::Literal(c) => out.push(c),
        }
    }
    Ok(out)
}

/// RFC 3339, a date (`2026-12-01`) or generalized time (`20261201120000.0Z`).
pub fn parse_any(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| parse_with(s, "yyyy-MM-dd").ok())
        .or_else(|| parse_with(s, "yyyyMMddHHmmss.fZ").ok())
        .or_else(|| parse_with(s, "yyyyMMddHHmmssZ").ok())
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `DateAdd` intervals, as VBA names them.
pub fn add(t: OffsetDateTime, interval: &str, n: i64) -> Option<OffsetDateTime> {
    let months = |t: OffsetDateTime, m: i64| -> Option<OffsetDateTime> {
        let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + m;
        let year = i32::try_from(total.div_euclid(12)).ok()?;
        let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
        let last = time::util::days_in_month(month, year);
        let date = Date::from_calendar_date(year, month, t.day().min(last)).ok()?;
        Some(t.replace_date(date))
    };
    let d = |secs: i64| t.checked_add(time::Duration::seconds(secs));
    match interval.to_ascii_lowercase().as_str() {
        "yyyy" => months(t, n.checked_mul(12)?),
        "q" => months(t, n.checked_mul(3)?),
        "m" => months(t, n),
        "y" | "d" | "w" => d(n.checked_mul(86_400)?),
        "ww" => d(n.checked_mul(7 * 86_400)?),
        "h" => d(n.checked_mul(3_600)?),
        "n" => d(n.checked_mul(60)?),
        "s" => d(n),
        _ => None,
    }
}
