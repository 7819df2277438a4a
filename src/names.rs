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
    let text = normalize_text(input)?;
    name_from_canonical(&text).ok_or_else(|| NameError::Syntax {
        name: input.trim().to_string(),
        why: "not a domain name".into(),
    })
}

/// [`normalize_domain`]'s text, as [`display`] would print the name (no trailing dot): for
/// readers that keep names as text, without building a [`Name`] and printing it again.
pub fn normalize_text(input: &str) -> Result<String, NameError> {
    let trimmed = input.trim();
    let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if bare.is_empty() {
        return Err(NameError::Empty);
    }
    // Only digits, dots and brackets, or a colon, can make an address literal: the parse is
    // skipped for the millions of names that have neither.
    let maybe_literal = bare.contains(':')
        || bare
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'[' | b']'));
    if maybe_literal
        && (bare.parse::<IpAddr>().is_ok()
            || bare
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok())
    {
        return Err(NameError::IpLiteral(trimmed.to_string()));
    }
    let ascii = if bare.is_ascii() {
        // One byte spare: the zone readers append the root's dot.
        let mut lower = String::with_capacity(bare.len() + 1);
        lower.push_str(bare);
        lower.make_ascii_lowercase();
        lower
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
        if label.starts_with('-') {
            return Err(syntax(format!("label {label:?} starts with a hyphen")));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(syntax(format!("character {c:?} not allowed")));
        }
    }
    Ok(ascii)
}

/// The [`Name`] of a name already in the survey's canonical text (as [`display`] or the zone
/// lists write it, with or without the trailing dot). Plain host-name text is split into
/// labels directly, which is several times cheaper than hickory's escape-aware parser; any
/// other text (escapes) goes through that parser. `None` when it is not a valid name.
pub fn name_from_canonical(text: &str) -> Option<Name> {
    parse_canonical(text).map(|(name, _)| name)
}

/// [`name_from_canonical`] and the name's [`display`] text, which for a plain lower-case
/// host name is the input without its trailing dot: the crawl gets both from the zone lists'
/// text instead of printing every domain back from its `Name`.
pub fn name_and_display(text: &str) -> Option<(Name, String)> {
    let (name, plain) = parse_canonical(text)?;
    let bare = text.strip_suffix('.').unwrap_or(text);
    let printed = if plain && !bare.bytes().any(|b| b.is_ascii_uppercase()) {
        bare.to_string()
    } else {
        display(&name)
    };
    Some((name, printed))
}

/// The name, and whether every label was plain ([`is_plain_label`]: split directly, not by
/// hickory's parser).
fn parse_canonical(text: &str) -> Option<(Name, bool)> {
    let bare = text.strip_suffix('.').unwrap_or(text);
    let mut name = Name::root();
    for label in bare.as_bytes().split(|&b| b == b'.') {
        if !is_plain_label(label) {
            let mut name = Name::from_ascii(text).ok()?;
            name.set_fqdn(true);
            return Some((name, false));
        }
        // A name over 255 octets is refused here.
        name = name.append_label(label).ok()?;
    }
    Some((name, true))
}

/// Letters, digits, `-` and `_`: the bytes of a host-name label (`_` as real zones use it).
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A label hickory prints and parses as it is: 1 to 63 host-name bytes, not starting with a
/// hyphen (which it escapes, and refuses unescaped).
pub(crate) fn is_plain_label(label: &[u8]) -> bool {
    (1..=63).contains(&label.len()) && label[0] != b'-' && label.iter().all(|&b| is_host_byte(b))
}

/// A name in the survey's textual form: lower case, no trailing dot (the root is `.`).
pub fn display(name: &Name) -> String {
    // Host names (nearly every name the survey sees) are copied label by label, lower-cased;
    // anything hickory would escape takes its path, so both give the same text.
    let mut text = Vec::with_capacity(name.len());
    for label in name.iter() {
        // A plain label is ASCII (letters, digits, hyphens): copied as a whole.
        if !is_plain_label(label) {
            return display_escaped(name);
        }
        if !text.is_empty() {
            text.push(b'.');
        }
        let start = text.len();
        text.extend_from_slice(label);
        text[start..].make_ascii_lowercase();
    }
    // ASCII throughout, so this cannot fail: one check of the whole text instead of one per
    // label.
    match String::from_utf8(text) {
        Ok(text) if !text.is_empty() => text,
        _ => display_escaped(name),
    }
}

/// [`display`] through hickory's presentation format (escapes, the root).
fn display_escaped(name: &Name) -> String {
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
    if is_plain_host(name) {
        return None;
    }
    invalid_mx_reason(name)
}

/// [`invalid_mx_target`] the long way, through the name's text.
fn invalid_mx_reason(name: &Name) -> Option<String> {
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
    normalize_text(&text).err().map(|e| e.to_string())
}

/// The provider of an MX host: its registrable domain under the public suffix list
/// (`mx1.one.com` → `one.com`). Unknown TLDs follow the list's implicit `*` rule, so a lab
/// host `mx1.hoster.example` belongs to `hoster.example`.
pub fn provider_of(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return psl::domain_str(&host.to_ascii_lowercase()).map(str::to_string);
    }
    psl::domain_str(host).map(str::to_string)
}

/// Whether a name passes every test of [`invalid_mx_target`] without building its text: each
/// label plain ([`is_plain_label`]), the last one not all digits (so neither an IP literal
/// nor a numeric TLD), at most 253 characters as text.
fn is_plain_host(name: &Name) -> bool {
    let mut last_numeric = true;
    let mut text_len = 0;
    for label in name.iter() {
        if !is_plain_label(label) {
            return false;
        }
        last_numeric = label.iter().all(u8::is_ascii_digit);
        text_len += label.len() + 1;
    }
    !last_numeric && text_len <= 254
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_and_its_display_text_from_the_input_text() {
        for text in [
            "example.com.",
            "example.com",
            "Example.COM.",
            "_25._tcp.mx.example.",
            "xn--bcher-kva.example.",
            "a\\.b.example.",
            "d0.scale.test.",
        ] {
            let (name, printed) = name_and_display(text).unwrap();
            assert_eq!(Some(&name), name_from_canonical(text).as_ref(), "{text}");
            assert_eq!(printed, display(&name), "{text}");
        }
        for bad in [
            format!("{}.example.", "a".repeat(64)),
            "-lead.example.".into(),
        ] {
            assert!(name_and_display(&bad).is_none(), "{bad}");
            assert!(name_from_canonical(&bad).is_none(), "{bad}");
        }
    }

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
        for literal in [
            "[2001:db8::1]",
            "[192.0.2.1]",
            "::ffff:192.0.2.1",
            "192.0.2.1.",
            "::1",
        ] {
            assert!(
                matches!(normalize_text(literal), Err(NameError::IpLiteral(_))),
                "{literal}"
            );
        }
        // All digits but not an address: a (numeric) name.
        assert_eq!(normalize_text("1.2.3.4.5").as_deref(), Ok("1.2.3.4.5"));
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

    /// Names from a small alphabet that hits every special case: case, digits, hyphens at
    /// either end, `_`, `*`, escapes, spaces, dots inside labels, non-ASCII bytes.
    fn random_names(count: usize) -> Vec<Name> {
        const BYTES: &[u8] = b"aZ0-_*.\\ \xff9x";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        (0..count)
            .filter_map(|_| {
                let labels: Vec<Vec<u8>> = (0..1 + next(4))
                    .map(|_| (0..1 + next(5)).map(|_| BYTES[next(BYTES.len())]).collect())
                    .collect();
                Name::from_labels(labels.iter().map(Vec::as_slice)).ok()
            })
            .collect()
    }

    #[test]
    fn fast_paths_agree_with_hickory() {
        let names = random_names(20_000);
        assert!(names.len() > 19_000);
        for n in &names {
            assert_eq!(display(n), display_escaped(n), "{n:?}");
            assert_eq!(invalid_mx_target(n), invalid_mx_reason(n), "{n:?}");
            // Text printed by either path parses back the same way with either parser.
            let text = display_escaped(n);
            let hickory = Name::from_ascii(format!("{text}.")).ok();
            let ours = name_from_canonical(&text);
            assert_eq!(
                ours.as_ref().map(|n| n.to_ascii()),
                hickory.as_ref().map(|n| n.to_ascii()),
                "{text:?}"
            );
            assert!(ours.as_ref().is_none_or(Name::is_fqdn));
        }
        // Plain names take the fast paths and keep their case until printed.
        let n = name_from_canonical("Mx1.Example.com.").unwrap();
        assert_eq!(n, Name::from_ascii("mx1.example.com.").unwrap());
        assert_eq!(display(&n), "mx1.example.com");
        assert!(name_from_canonical("-a.example").is_none());
        assert!(name_from_canonical("a..example").is_none());
        assert!(name_from_canonical(&format!("{}.com", "a".repeat(64))).is_none());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(name_from_canonical(&long).is_none());
        assert!(normalize_domain("-a.example").is_err());
        assert_eq!(
            normalize_text("Mx1.Example.COM.").unwrap(),
            "mx1.example.com"
        );
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
