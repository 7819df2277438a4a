//! Certificate name checks for DANE-TA(2) in SMTP (RFC 7672 §3.2.3).

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

use super::tlsa::parse_cert_exact;

/// Lower-cases ASCII and strips one trailing dot.
fn normalize(name: &str) -> String {
    let n = name.strip_suffix('.').unwrap_or(name);
    n.to_ascii_lowercase()
}

/// Does a certificate name `pattern` (a DNS SAN or CN) match the reference
/// identifier `reference`?
///
/// Case-insensitive; one trailing dot on either side is ignored. A wildcard is
/// honoured only as the entire left-most label (`*.example.com` matches
/// `mx.example.com` but not `example.com` or `a.b.example.com`); partial
/// wildcards such as `f*.example.com` and wildcards anywhere else never match.
/// A reference that itself contains `*` never matches.
pub fn name_matches(pattern: &str, reference: &str) -> bool {
    let pattern = normalize(pattern);
    let reference = normalize(reference);
    if pattern.is_empty() || reference.is_empty() || reference.contains('*') {
        return false;
    }
    if reference.split('.').any(str::is_empty) {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(parent) => {
            // Like OpenSSL (which Postfix uses), a wildcard needs at least two labels after it:
            // `*.com` would cover a whole TLD and never matches.
            if parent.is_empty()
                || parent.contains('*')
                || parent.split('.').any(str::is_empty)
                || !parent.contains('.')
            {
                return false;
            }
            match reference.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest == parent,
                None => false,
            }
        }
        None => !pattern.contains('*') && pattern == reference,
    }
}

/// The names of an already-parsed certificate used for matching: its DNS SANs
/// if it has at least one dNSName, otherwise its subject common names.
pub(crate) fn cert_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut sans = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for gn in &san.general_names {
                if let GeneralName::DNSName(n) = gn {
                    sans.push((*n).to_string());
                }
            }
        }
    }
    if !sans.is_empty() {
        return sans;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_string)
        .collect()
}

/// The names a DANE-TA(2) name check looks at in a DER leaf certificate: its
/// DNS subjectAltNames if it has any, else its subject CN(s). Empty if the
/// certificate does not parse. Exposed for the reporter.
pub fn leaf_names(der: &[u8]) -> Vec<String> {
    parse_cert_exact(der)
        .map(|c| cert_names(&c))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dane::testutil::pki;

    #[test]
    fn exact_and_case() {
        assert!(name_matches("mx.example.com", "mx.example.com"));
        assert!(name_matches("MX.Example.COM", "mx.example.com"));
        assert!(name_matches("mx.example.com.", "mx.example.com"));
        assert!(name_matches("mx.example.com", "MX.example.com."));
        assert!(!name_matches("mx.example.com", "mx.example.org"));
        assert!(!name_matches("mx.example.com", "example.com"));
        assert!(!name_matches("", ""));
        assert!(!name_matches("", "example.com"));
        assert!(!name_matches(".", "."));
    }

    #[test]
    fn wildcards() {
        assert!(name_matches("*.example.com", "mx.example.com"));
        assert!(name_matches("*.EXAMPLE.com", "Mx.example.com."));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", ".example.com"));
        assert!(!name_matches("f*.example.com", "foo.example.com"));
        assert!(!name_matches("*o.example.com", "foo.example.com"));
        assert!(!name_matches("mx.*.com", "mx.example.com"));
        assert!(!name_matches("*", "com"));
        assert!(!name_matches("*.", "com"));
        assert!(!name_matches("*.*.com", "a.b.com"));
        assert!(
            !name_matches("*.com", "example.com"),
            "a wildcard never covers a TLD"
        );
        // A reference is never a pattern.
        assert!(!name_matches("*.example.com", "*.example.com"));
        assert!(!name_matches("mx.example.com", "mx..example.com"));
    }

    #[test]
    fn leaf_names_prefers_sans() {
        let p = pki();
        assert_eq!(
            leaf_names(&p.leaf),
            vec!["mx.example.com".to_string(), "*.wild.example".to_string()]
        );
        assert_eq!(
            leaf_names(&p.leaf_cn_only),
            vec!["mx.example.com".to_string()]
        );
        assert_eq!(leaf_names(&p.root), vec!["Test Root".to_string()]);
        assert!(leaf_names(b"garbage").is_empty());
        assert!(leaf_names(&[]).is_empty());
    }
}
