//! Domain names as the survey accepts them: normalised, validated, and judged as MX targets.
//!
//! Names arrive from users, zone files and MX records; all of them must become one canonical
//! form (A-labels, lower case, absolute) before they are compared, memoised or counted, and a
//! name that cannot be a mail domain must be rejected with a clear reason, never guessed at.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// Why a string is not acceptable as a mail domain.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, or only dots.
    #[error("empty domain name")]
    Empty,
    /// An IP address where a domain name was expected.
    #[error("{0:?} is an IP address, not a domain name")]
    IpLiteral(String),
    /// IDNA processing failed (disallowed code points, bad punycode, …).
    #[error("{0:?} is not a valid internationalised domain name")]
    Idna(String),
    /// Too long, a label too long or empty, or a character outside letters, digits, `-`, `_`.
    #[error("{name:?} is not a valid domain name: {why}")]
    Syntax {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Normalises a user- or file-supplied domain: trims, converts U-labels to A-labels (UTS 46),
/// lower-cases, makes it absolute, and checks RFC 1035 length limits and host-name syntax
/// (letters, digits, hyphen; underscore tolerated as it occurs in real zones).
pub fn normalize_domain(input: &str) -> Result<Name, NameError> {
    let trimmed = input.trim();
    let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if bare.is_empty() {
        return Err(NameError::Empty);
    }
    if bare.parse::<IpAddr>().is_ok()
        || bare
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
    {
        return Err(NameError::IpLiteral(trimmed.to_string()));
    }
    let ascii = if bare.is_ascii() {
        bare.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(bare).map_err(|_| NameError::Idna(trimmed.to_string()))?
    };
    let syntax = |why: String| NameError::Syntax {
        name: trimmed.to_string(),
        why,
    };
    if ascii.len() > 253 {
        return Err(syntax(format!(
            "{} characters, at most 253 allowed",
            ascii.len()
        )));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(syntax("empty label".into()));
        }
        if label.len() > 63 {
            return Err(syntax(format!("label {label:?} longer than 63 characters")));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(syntax(format!("character {c:?} not allowed")));
        }
    }
    Name::from_ascii(format!("{ascii}.")).map_err(|e| syntax(e.to_string()))
}

/// A name in the survey's textual form: lower case, no trailing dot (the root is `.`).
pub fn display(name: &Name) -> String {
    let s = name.to_lowercase().to_ascii();
    match s.strip_suffix('.') {
        Some("") | None => s,
        Some(bare) => bare.to_string(),
    }
}

/// Why an MX target cannot be a mail host (RFC 7672 step 2 of the primer → `invalid_mx`).
pub fn invalid_mx_target(name: &Name) -> Option<String> {
    if name.is_root() {
        return Some("the root name `.` (only valid as a lone null MX, RFC 7505)".into());
    }
    let text = display(name);
    if text.parse::<IpAddr>().is_ok() {
        return Some(format!(
            "{text} is an IP address, not a host name (RFC 5321 §5.1)"
        ));
    }
    if let Some(last) = text.rsplit('.').next() {
        if last.chars().all(|c| c.is_ascii_digit()) {
            return Some(format!(
                "{text} ends in an all-numeric label, so it is not a host name"
            ));
        }
    }
    if let Err(e) = normalize_domain(&text) {
        return Some(e.to_string());
    }
    None
}

/// The provider of an MX host: its registrable domain under the public suffix list
/// (`mx1.one.com` → `one.com`). Unknown TLDs follow the list's implicit `*` rule, so a lab
/// host `mx1.hoster.example` belongs to `hoster.example`.
pub fn provider_of(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&host).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            display(&normalize_domain("Example.COM.").unwrap()),
            "example.com"
        );
        assert_eq!(
            display(&normalize_domain(" bücher.de ").unwrap()),
            "xn--bcher-kva.de"
        );
        assert_eq!(normalize_domain(""), Err(NameError::Empty));
        assert_eq!(normalize_domain("."), Err(NameError::Empty));
        assert!(matches!(
            normalize_domain("192.0.2.1"),
            Err(NameError::IpLiteral(_))
        ));
        assert!(matches!(
            normalize_domain("[2001:db8::1]"),
            Err(NameError::IpLiteral(_))
        ));
        assert!(matches!(
            normalize_domain("a..b"),
            Err(NameError::Syntax { .. })
        ));
        assert!(matches!(
            normalize_domain("a b.com"),
            Err(NameError::Syntax { .. })
        ));
        assert!(matches!(
            normalize_domain(&"a".repeat(64)),
            Err(NameError::Syntax { .. })
        ));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(
            normalize_domain(&long),
            Err(NameError::Syntax { .. })
        ));
    }

    #[test]
    fn mx_targets() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert!(invalid_mx_target(&Name::root()).is_some());
        assert!(invalid_mx_target(&n("192.0.2.1.")).is_some());
        assert!(invalid_mx_target(&n("mx.example.123.")).is_some());
        assert!(invalid_mx_target(&n("mx1.example.com.")).is_none());
    }

    #[test]
    fn providers() {
        assert_eq!(provider_of("mx1.one.com").as_deref(), Some("one.com"));
        assert_eq!(provider_of("mx.a.b.co.uk.").as_deref(), Some("b.co.uk"));
        assert_eq!(
            provider_of("mx1.hoster.example").as_deref(),
            Some("hoster.example")
        );
    }
}
