//! What may name an app: one rule, checked before anything is stored or
//! started under a name ([`check`]). Names end up in URLs, log lines,
//! metrics labels and file and database keys, so they are kept to what all
//! of those take as it is, the shape of a DNS label or a Kubernetes name:
//! `[A-Za-z0-9][A-Za-z0-9._-]{0,62}`.
//!
//! A name that breaks the rule can still reach the host from a store
//! written by an older elmbox; [`printable`] shows such a name in a message
//! or a log line without letting it write control characters there.

use crate::error::{Error, Result};

/// The longest name: a DNS label's.
pub const MAX_LEN: usize = 63;

/// The rule, as messages say it.
pub const RULE: &str = "1 to 63 characters of A-Z, a-z, 0-9, `.`, `_` and `-`, \
                        starting with a letter or a digit";

/// Whether `name` may name an app.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `Ok` if `name` may name an app; otherwise [`Error::BadAppName`], which
/// shows the name as [`printable`] does and states the rule.
pub fn check(name: &str) -> Result<()> {
    match is_valid(name) {
        true => Ok(()),
        false => Err(Error::BadAppName {
            name: printable(name),
            rule: RULE,
        }),
    }
}

/// How many characters of a name [`printable`] shows.
const SHOWN_CHARS: usize = 80;

/// `name` as a message can show it: printable ASCII as it is, anything
/// else (control characters, a right-to-left override, any non-ASCII
/// letter) as `\u{…}`, and only its first 80 characters of a longer one,
/// with its length.
pub fn printable(name: &str) -> String {
    let mut shown = String::new();
    for c in name.chars().take(SHOWN_CHARS) {
        match c {
            ' '..='~' if c != '\\' => shown.push(c),
            '\\' => shown.push_str("\\\\"),
            c => shown.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    let length = name.chars().count();
    if length > SHOWN_CHARS {
        shown.push_str(&format!("… ({length} characters)"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_dns_label_shaped_names_only() {
        for good in ["a", "counter", "Shop-2.eu_west", "0", &"x".repeat(63)] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a\0b",
            "a\nb",
            "a b",
            "x\u{202e}y",
            "_elmbox",
            "-a",
            ".hidden",
            "a/b",
            "ünï",
            &"x".repeat(64),
            &"y".repeat(5000),
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains(RULE), "{err}");
            assert!(
                err.chars()
                    .all(|c| (' '..='~').contains(&c) || c == '…' || c == '`'),
                "{err:?}"
            );
        }
    }

    #[test]
    fn shows_hostile_names_escaped_and_bounded() {
        assert_eq!(printable("a\0b"), "a\\u{0}b");
        assert_eq!(printable("a\nb"), "a\\u{a}b");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        let long = printable(&"y".repeat(5000));
        assert!(long.starts_with(&"y".repeat(80)));
        assert!(long.ends_with("… (5000 characters)"), "{long}");
    }
}
