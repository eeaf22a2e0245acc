//! How strings compare when an attribute is not case-exact (RFC 7643 §2.2 `caseExact`,
//! RFC 7644 §7.8 on PRECIS): the same fold everywhere — the store's unique and indexed
//! keys, filter values in SQL, in-memory filter evaluation, sorting and PATCH value matches —
//! so two spellings a person cannot tell apart are one name.
//!
//! The fold is RFC 8265's UsernameCaseMapped rules, without its refusals: fullwidth ASCII to
//! ASCII (width mapping), lower case (Unicode's), then Unicode Normalization Form C. The
//! decomposed `e` + U+0301 and the precomposed `é` fold alike, as do `ＡＤＭＩＮ` and `admin`.

use unicode_normalization::UnicodeNormalization;

/// The folded form of `s`.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let widened: String = s.chars().map(narrow).collect();
    widened.to_lowercase().nfc().collect()
}

/// Fullwidth ASCII (U+FF01–U+FF5E) as ASCII; the ideographic space as a space.
fn narrow(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
        '\u{3000}' => ' ',
        c => c,
    }
}

/// Whether `a` and `b` fold alike.
pub fn fold_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_a_person_cannot_tell_apart_fold_alike() {
        let cases = [
            ("Bjarne@Example.com", "bjarne@example.com"),
            ("Ren\u{e9}e", "rene\u{301}e"),
            ("REN\u{c9}E", "rene\u{301}e"),
            ("\u{FF21}\u{FF24}\u{FF2D}\u{FF29}\u{FF2E}", "admin"),
            ("\u{212B}ngstr\u{f6}m", "\u{e5}ngstr\u{f6}m"), // the Angstrom sign is Å
        ];
        for (a, b) in cases {
            assert_eq!(fold(a), fold(b), "{a} / {b}");
            assert!(fold_eq(a, b));
        }
        assert_ne!(fold("rene"), fold("ren\u{e9}"));
        assert!(!fold_eq("a", "b"));
    }
}
