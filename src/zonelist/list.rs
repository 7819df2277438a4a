//! Plain domain lists: one name a line, `#` starts a comment, blank lines are ignored.
//!
//! Lists come from people and other tools, so every name goes through
//! [`crate::names::normalize_text`]: U-labels become A-labels, case is folded, the name is
//! made absolute (`example.com.`), and anything that cannot be a mail domain is refused.

use crate::names::normalize_text;

/// What one list line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum ListLine {
    /// Blank or comment.
    Nothing,
    /// A normalised, absolute name (`xn--bcher-kva.de.`).
    Name(String),
    /// Not a name; why.
    Bad(String),
}

/// Parses one line of a list.
pub fn parse_line(line: &[u8]) -> ListLine {
    let Ok(text) = std::str::from_utf8(line) else {
        return ListLine::Bad("not UTF-8".into());
    };
    let text = text.split('#').next().unwrap_or("").trim();
    if text.is_empty() {
        return ListLine::Nothing;
    }
    if text.split_whitespace().nth(1).is_some() {
        return ListLine::Bad(format!(
            "more than one name on the line: {:?}",
            super::master::shorten(text.as_bytes())
        ));
    }
    match normalize_text(text) {
        Ok(mut n) => {
            n.push('.');
            ListLine::Name(n)
        }
        Err(e) => ListLine::Bad(super::master::shorten(e.to_string().as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(parse_line(b"  # comment"), ListLine::Nothing);
        assert_eq!(parse_line(b""), ListLine::Nothing);
        assert_eq!(
            parse_line(b"Example.COM # mail"),
            ListLine::Name("example.com.".into())
        );
        assert_eq!(
            parse_line("bücher.de.".as_bytes()),
            ListLine::Name("xn--bcher-kva.de.".into())
        );
        assert!(matches!(parse_line(b"a b"), ListLine::Bad(_)));
        assert!(matches!(parse_line(b"192.0.2.1"), ListLine::Bad(_)));
        assert!(matches!(parse_line(b"\xff.com"), ListLine::Bad(_)));
    }
}
