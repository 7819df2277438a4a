//! The TLSA record type, its presentation form, and the association-data
//! computation shared by usability checks, matching and reporting.

use std::fmt;
use std::str::FromStr;

use x509_parser::prelude::{FromDer, X509Certificate};

/// A TLSA record as published (RFC 6698 §2). Fields are raw numbers so unknown values survive.
///
/// It exists so that the survey can carry exactly what a domain published —
/// including unknown usages, selectors and matching types — through
/// usability analysis, verification and reporting without losing anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TlsaRecord {
    /// Certificate usage (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE).
    pub usage: u8,
    /// Selector (0 full certificate, 1 SubjectPublicKeyInfo).
    pub selector: u8,
    /// Matching type (0 exact, 1 SHA2-256, 2 SHA2-512).
    pub matching_type: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

/// Why a TLSA record in presentation form could not be parsed.
///
/// Exists so callers reading zone data or user input get a precise,
/// human-readable reason instead of a bare failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsaParseError {
    /// One of the three numeric fields is absent.
    #[error(
        "TLSA record is missing the {0} field (expected \"usage selector matching-type hex-data\")"
    )]
    MissingField(&'static str),
    /// A numeric field is not a decimal integer in 0..=255.
    #[error("TLSA {field} field {value:?} is not an integer between 0 and 255")]
    BadNumber {
        /// Which field was bad.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// No certificate association data follows the three numbers.
    #[error("TLSA record has no certificate association data")]
    MissingData,
    /// The association data contains a non-hex character.
    #[error("TLSA certificate association data contains the non-hex character {0:?}")]
    BadHexChar(char),
    /// The association data has an odd number of hex digits.
    #[error("TLSA certificate association data has an odd number of hex digits ({0})")]
    OddHexLength(usize),
}

/// Why a TLSA record could not be computed from a certificate by [`tlsa_for`].
///
/// Exists so the reporter can explain why it cannot show "what the server's
/// certificate would need" instead of printing nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsaComputeError {
    /// The input is not a DER X.509 certificate.
    #[error("not a DER X.509 certificate")]
    BadCertificate,
    /// Selector other than 0 (Cert) or 1 (SPKI).
    #[error("unknown TLSA selector {0} (only 0 = Cert and 1 = SPKI are defined)")]
    UnknownSelector(u8),
    /// Matching type other than 0, 1 or 2.
    #[error(
        "unknown TLSA matching type {0} (only 0 = Full, 1 = SHA2-256 and 2 = SHA2-512 are defined)"
    )]
    UnknownMatchingType(u8),
}

impl FromStr for TlsaRecord {
    type Err = TlsaParseError;

    /// Parses `"3 1 1 ABCD…"`. The hex part may contain whitespace and be in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rest = s.trim_start();
        let mut nums = [0u8; 3];
        for (slot, field) in nums.iter_mut().zip(["usage", "selector", "matching type"]) {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (tok, tail) = rest.split_at(end);
            if tok.is_empty() {
                return Err(TlsaParseError::MissingField(field));
            }
            *slot = tok
                .parse::<u8>()
                .ok()
                .filter(|_| tok.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| TlsaParseError::BadNumber {
                    field,
                    value: tok.to_string(),
                })?;
            rest = tail.trim_start();
        }
        let mut digits = Vec::with_capacity(rest.len());
        for c in rest.chars() {
            if c.is_whitespace() {
                continue;
            }
            let v = c.to_digit(16).ok_or(TlsaParseError::BadHexChar(c))?;
            // to_digit(16) is always < 16, so the cast is lossless.
            digits.push(v as u8);
        }
        if digits.is_empty() {
            return Err(TlsaParseError::MissingData);
        }
        if digits.len() % 2 != 0 {
            return Err(TlsaParseError::OddHexLength(digits.len()));
        }
        let data = digits
            .chunks_exact(2)
            .map(|pair| match pair {
                [hi, lo] => (hi << 4) | lo,
                _ => 0, // unreachable: chunks_exact(2)
            })
            .collect();
        let [usage, selector, matching_type] = nums;
        Ok(TlsaRecord {
            usage,
            selector,
            matching_type,
            data,
        })
    }
}

impl fmt::Display for TlsaRecord {
    /// Prints `"3 1 1 abcd…"` with lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching_type,
            hex::encode(&self.data)
        )
    }
}

impl TlsaRecord {
    /// A short form for log lines: the three numbers and at most 16 hex digits.
    pub(crate) fn short(&self) -> String {
        let h = hex::encode(&self.data);
        let shown = h.get(..16).unwrap_or(&h);
        let ell = if h.len() > 16 { "…" } else { "" };
        format!(
            "{} {} {} {shown}{ell}",
            self.usage, self.selector, self.matching_type
        )
    }
}

/// Applies a matching type to the selected bytes: identity, SHA2-256 or SHA2-512.
/// `None` for an unknown matching type.
pub(crate) fn apply_matching_type(matching_type: u8, selected: &[u8]) -> Option<Vec<u8>> {
    match matching_type {
        0 => Some(selected.to_vec()),
        1 => Some(
            ring::digest::digest(&ring::digest::SHA256, selected)
                .as_ref()
                .to_vec(),
        ),
        2 => Some(
            ring::digest::digest(&ring::digest::SHA512, selected)
                .as_ref()
                .to_vec(),
        ),
        _ => None,
    }
}

/// The bytes a selector picks out of a certificate: the DER certificate as
/// presented (0), or its DER SubjectPublicKeyInfo (1, which needs a parse).
pub(crate) fn select<'a>(
    selector: u8,
    der: &'a [u8],
    parsed: Option<&X509Certificate<'a>>,
) -> Option<&'a [u8]> {
    match selector {
        0 => Some(der),
        1 => parsed.map(|c| c.tbs_certificate.subject_pki.raw),
        _ => None,
    }
}

/// Does `record` match this certificate (ignoring usage)?
pub(crate) fn record_matches_cert(
    record: &TlsaRecord,
    der: &[u8],
    parsed: Option<&X509Certificate<'_>>,
) -> bool {
    select(record.selector, der, parsed)
        .and_then(|sel| apply_matching_type(record.matching_type, sel))
        .is_some_and(|assoc| assoc == record.data)
}

/// Parses a complete DER certificate, rejecting trailing bytes.
pub(crate) fn parse_cert_exact(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// Computes the TLSA record a certificate would need for the given
/// parameters — used to print what the server's certificate would need.
///
/// `usage` is copied as is; `selector` and `matching_type` must be defined values.
pub fn tlsa_for(
    cert_der: &[u8],
    usage: u8,
    selector: u8,
    matching_type: u8,
) -> Result<TlsaRecord, TlsaComputeError> {
    if selector > 1 {
        return Err(TlsaComputeError::UnknownSelector(selector));
    }
    if matching_type > 2 {
        return Err(TlsaComputeError::UnknownMatchingType(matching_type));
    }
    let cert = parse_cert_exact(cert_der).ok_or(TlsaComputeError::BadCertificate)?;
    let selected = select(selector, cert_der, Some(&cert))
        .ok_or(TlsaComputeError::UnknownSelector(selector))?;
    let data = apply_matching_type(matching_type, selected)
        .ok_or(TlsaComputeError::UnknownMatchingType(matching_type))?;
    Ok(TlsaRecord {
        usage,
        selector,
        matching_type,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dane::testutil::pki;

    fn rec(s: &str) -> TlsaRecord {
        match s.parse() {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn parses_presentation_form() {
        let r = rec("3 1 1 ABCDef01");
        assert_eq!(
            r,
            TlsaRecord {
                usage: 3,
                selector: 1,
                matching_type: 1,
                data: vec![0xab, 0xcd, 0xef, 0x01]
            }
        );
        assert_eq!(r.to_string(), "3 1 1 abcdef01");
    }

    #[test]
    fn hex_may_contain_whitespace_and_mixed_case() {
        let r = rec("  2\t0  1 aB cD\n E\tf 0 1  ");
        assert_eq!(r.data, vec![0xab, 0xcd, 0xef, 0x01]);
        assert_eq!((r.usage, r.selector, r.matching_type), (2, 0, 1));
    }

    #[test]
    fn unknown_numbers_survive_round_trip() {
        let r = rec("255 7 9 00");
        assert_eq!((r.usage, r.selector, r.matching_type), (255, 7, 9));
        assert_eq!(r.to_string(), "255 7 9 00");
        assert_eq!(rec(&r.to_string()), r);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            "".parse::<TlsaRecord>(),
            Err(TlsaParseError::MissingField("usage"))
        );
        assert_eq!(
            "3 1".parse::<TlsaRecord>(),
            Err(TlsaParseError::MissingField("matching type"))
        );
        assert_eq!(
            "3 1 1".parse::<TlsaRecord>(),
            Err(TlsaParseError::MissingData)
        );
        assert_eq!(
            "3 1 1   ".parse::<TlsaRecord>(),
            Err(TlsaParseError::MissingData)
        );
        assert_eq!(
            "256 1 1 00".parse::<TlsaRecord>(),
            Err(TlsaParseError::BadNumber {
                field: "usage",
                value: "256".into()
            })
        );
        assert_eq!(
            "+3 1 1 00".parse::<TlsaRecord>(),
            Err(TlsaParseError::BadNumber {
                field: "usage",
                value: "+3".into()
            })
        );
        assert_eq!(
            "3 x 1 00".parse::<TlsaRecord>(),
            Err(TlsaParseError::BadNumber {
                field: "selector",
                value: "x".into()
            })
        );
        assert_eq!(
            "3 1 1 abc".parse::<TlsaRecord>(),
            Err(TlsaParseError::OddHexLength(3))
        );
        assert_eq!(
            "3 1 1 zz".parse::<TlsaRecord>(),
            Err(TlsaParseError::BadHexChar('z'))
        );
        assert_eq!(
            "3 1 1 ab\u{e9}".parse::<TlsaRecord>(),
            Err(TlsaParseError::BadHexChar('\u{e9}'))
        );
        // Messages are human sentences.
        let msg = TlsaParseError::OddHexLength(3).to_string();
        assert!(msg.contains("odd number of hex digits"), "{msg}");
    }

    #[test]
    fn tlsa_for_matches_openssl() {
        let p = pki();
        let r = tlsa_for(&p.leaf, 3, 1, 1).expect("computes");
        assert_eq!(r.data, p.leaf_spki_sha256);
        let r = tlsa_for(&p.leaf, 3, 0, 1).expect("computes");
        assert_eq!(r.data, p.leaf_cert_sha256);
        let r = tlsa_for(&p.leaf, 2, 0, 0).expect("computes");
        assert_eq!(r.data, p.leaf);
        assert_eq!(r.usage, 2);
        let r = tlsa_for(&p.leaf, 3, 1, 2).expect("computes");
        assert_eq!(r.data.len(), 64);
        assert_eq!(
            tlsa_for(&p.leaf, 3, 2, 1),
            Err(TlsaComputeError::UnknownSelector(2))
        );
        assert_eq!(
            tlsa_for(&p.leaf, 3, 1, 3),
            Err(TlsaComputeError::UnknownMatchingType(3))
        );
        assert_eq!(
            tlsa_for(b"junk", 3, 1, 1),
            Err(TlsaComputeError::BadCertificate)
        );
        assert_eq!(
            tlsa_for(&[], 3, 0, 1),
            Err(TlsaComputeError::BadCertificate)
        );
    }
}
