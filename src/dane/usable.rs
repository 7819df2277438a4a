//! Splitting a TLSA RRset into the records an SMTP client may use and the ones
//! it must ignore (RFC 7672 §3.1.3, RFC 7671 §9).

use std::collections::HashSet;
use std::fmt;

use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo};

use super::tlsa::{parse_cert_exact, TlsaRecord};

/// Why a published TLSA record is ignored by an SMTP client.
///
/// Exists because "DANE is published but unusable" is a distinct, reportable
/// state for the survey (RFC 7672 §2.2: an RRset with no usable records means
/// the client proceeds as if DANE were absent), and operators need the exact
/// reason per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnusableReason {
    /// Usage 0 (PKIX-TA) or 1 (PKIX-EE): unusable in SMTP, RFC 7672 §3.1.3.
    PkixUsage,
    /// Usage greater than 3.
    UnknownUsage,
    /// Selector greater than 1.
    UnknownSelector,
    /// Matching type greater than 2.
    UnknownMatchingType,
    /// SHA2-256 data not 32 bytes, or SHA2-512 data not 64 bytes.
    BadDigestLength,
    /// `x 0 0` data is not a DER certificate, or `x 1 0` data is not a DER SubjectPublicKeyInfo.
    UnparseableFull,
    /// Dropped by RFC 7671 §9 digest algorithm agility: a stronger digest is
    /// published for the same usage and selector.
    WeakerDigest,
}

impl fmt::Display for UnusableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnusableReason::PkixUsage => {
                "PKIX-TA(0) and PKIX-EE(1) records are unusable for SMTP (RFC 7672 section 3.1.3)"
            }
            UnusableReason::UnknownUsage => "the certificate usage is not one defined for DANE",
            UnusableReason::UnknownSelector => {
                "the selector is neither 0 (full certificate) nor 1 (public key)"
            }
            UnusableReason::UnknownMatchingType => {
                "the matching type is neither 0 (full), 1 (SHA2-256) nor 2 (SHA2-512)"
            }
            UnusableReason::BadDigestLength => {
                "the digest has the wrong length (SHA2-256 must be 32 bytes, SHA2-512 64 bytes)"
            }
            UnusableReason::UnparseableFull => {
                "the full (matching type 0) data is not a DER certificate or public key as the selector requires"
            }
            UnusableReason::WeakerDigest => {
                "a stronger digest is published for the same usage and selector, so this weaker one is ignored (RFC 7671 section 9)"
            }
        })
    }
}

/// The result of [`usable_records`]: which records count and which are ignored, and why.
///
/// Exists so both the verifier and the reporter work from one classification.
/// Both lists keep the RRset's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usability {
    /// Records an SMTP client would try to match.
    pub usable: Vec<TlsaRecord>,
    /// Records an SMTP client ignores, with the reason.
    pub unusable: Vec<(TlsaRecord, UnusableReason)>,
}

/// Why a single record, taken alone, is unusable (None = usable on its own).
fn intrinsic_reason(r: &TlsaRecord) -> Option<UnusableReason> {
    match r.usage {
        0 | 1 => return Some(UnusableReason::PkixUsage),
        2 | 3 => {}
        _ => return Some(UnusableReason::UnknownUsage),
    }
    if r.selector > 1 {
        return Some(UnusableReason::UnknownSelector);
    }
    match r.matching_type {
        0 => {
            let ok = if r.selector == 0 {
                parse_cert_exact(&r.data).is_some()
            } else {
                matches!(SubjectPublicKeyInfo::from_der(&r.data), Ok(([], _)))
            };
            (!ok).then_some(UnusableReason::UnparseableFull)
        }
        1 => (r.data.len() != 32).then_some(UnusableReason::BadDigestLength),
        2 => (r.data.len() != 64).then_some(UnusableReason::BadDigestLength),
        _ => Some(UnusableReason::UnknownMatchingType),
    }
}

/// Classifies a TLSA RRset for an SMTP client.
///
/// First each record is checked on its own (usage, selector, matching type,
/// digest length, parseability of Full(0) data). Then RFC 7671 §9 digest
/// algorithm agility is applied to the records that survived: for each
/// (usage, selector) combination the client ranks the digest matching types
/// it supports (SHA2-512(2) above SHA2-256(1)) and ignores records whose
/// digest is weaker than the strongest one present for that combination.
/// Full(0) is not a digest and is never dropped (RFC 7671 §9's example: a
/// key matching "3 1 0" or "3 1 2" is accepted, one matching only "3 1 1" is
/// not). Malformed records do not take part, so a broken SHA2-512 record
/// cannot knock out a valid SHA2-256 one.
pub fn usable_records(rrset: &[TlsaRecord]) -> Usability {
    let reasons: Vec<Option<UnusableReason>> = rrset.iter().map(intrinsic_reason).collect();
    let has_sha512: HashSet<(u8, u8)> = rrset
        .iter()
        .zip(&reasons)
        .filter(|(r, why)| why.is_none() && r.matching_type == 2)
        .map(|(r, _)| (r.usage, r.selector))
        .collect();
    let mut out = Usability::default();
    for (r, why) in rrset.iter().zip(reasons) {
        let why = why.or_else(|| {
            (r.matching_type == 1 && has_sha512.contains(&(r.usage, r.selector)))
                .then_some(UnusableReason::WeakerDigest)
        });
        match why {
            Some(w) => out.unusable.push((r.clone(), w)),
            None => out.usable.push(r.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dane::testutil::pki;

    fn r(usage: u8, selector: u8, matching_type: u8, data: Vec<u8>) -> TlsaRecord {
        TlsaRecord {
            usage,
            selector,
            matching_type,
            data,
        }
    }

    fn reason_of(rec: TlsaRecord) -> Option<UnusableReason> {
        let u = usable_records(std::slice::from_ref(&rec));
        match (u.usable.as_slice(), u.unusable.as_slice()) {
            ([one], []) if *one == rec => None,
            ([], [(one, why)]) if *one == rec => Some(*why),
            other => panic!("unexpected classification {other:?}"),
        }
    }

    #[test]
    fn single_record_reasons() {
        let p = pki();
        assert_eq!(reason_of(r(3, 1, 1, vec![0; 32])), None);
        assert_eq!(reason_of(r(2, 0, 2, vec![0; 64])), None);
        assert_eq!(
            reason_of(r(0, 1, 1, vec![0; 32])),
            Some(UnusableReason::PkixUsage)
        );
        assert_eq!(
            reason_of(r(1, 0, 1, vec![0; 32])),
            Some(UnusableReason::PkixUsage)
        );
        assert_eq!(
            reason_of(r(4, 1, 1, vec![0; 32])),
            Some(UnusableReason::UnknownUsage)
        );
        assert_eq!(
            reason_of(r(255, 1, 1, vec![0; 32])),
            Some(UnusableReason::UnknownUsage)
        );
        assert_eq!(
            reason_of(r(3, 2, 1, vec![0; 32])),
            Some(UnusableReason::UnknownSelector)
        );
        assert_eq!(
            reason_of(r(3, 1, 3, vec![0; 32])),
            Some(UnusableReason::UnknownMatchingType)
        );
        assert_eq!(
            reason_of(r(3, 1, 1, vec![0; 31])),
            Some(UnusableReason::BadDigestLength)
        );
        assert_eq!(
            reason_of(r(3, 1, 1, vec![0; 64])),
            Some(UnusableReason::BadDigestLength)
        );
        assert_eq!(
            reason_of(r(3, 1, 2, vec![0; 32])),
            Some(UnusableReason::BadDigestLength)
        );
        assert_eq!(
            reason_of(r(3, 1, 1, vec![])),
            Some(UnusableReason::BadDigestLength)
        );
        // Full(0): must parse as the selector says.
        assert_eq!(reason_of(r(2, 0, 0, p.root.clone())), None);
        assert_eq!(reason_of(r(2, 1, 0, p.root_spki.clone())), None);
        assert_eq!(reason_of(r(3, 0, 0, p.leaf.clone())), None);
        assert_eq!(
            reason_of(r(2, 0, 0, p.root_spki.clone())),
            Some(UnusableReason::UnparseableFull)
        );
        assert_eq!(
            reason_of(r(2, 1, 0, p.root.clone())),
            Some(UnusableReason::UnparseableFull)
        );
        assert_eq!(
            reason_of(r(3, 0, 0, b"not a cert".to_vec())),
            Some(UnusableReason::UnparseableFull)
        );
        let mut trailing = p.root.clone();
        trailing.push(0);
        assert_eq!(
            reason_of(r(2, 0, 0, trailing)),
            Some(UnusableReason::UnparseableFull)
        );
        let truncated = p.root.get(..p.root.len() / 2).unwrap_or_default().to_vec();
        assert_eq!(
            reason_of(r(2, 0, 0, truncated)),
            Some(UnusableReason::UnparseableFull)
        );
        assert_eq!(
            reason_of(r(3, 1, 0, vec![])),
            Some(UnusableReason::UnparseableFull)
        );
    }

    #[test]
    fn pkix_is_checked_before_other_defects() {
        // A PKIX record with a bad digest length is reported as PKIX: the
        // usage alone already makes it unusable for SMTP.
        assert_eq!(
            reason_of(r(0, 9, 9, vec![])),
            Some(UnusableReason::PkixUsage)
        );
    }

    #[test]
    fn digest_agility_per_usage_and_selector() {
        let p = pki();
        let a256 = r(3, 1, 1, vec![1; 32]);
        let a512 = r(3, 1, 2, vec![2; 64]);
        let full = r(3, 1, 0, p.root_spki.clone());
        let other_sel = r(3, 0, 1, vec![3; 32]); // different selector: untouched
        let ta256 = r(2, 1, 1, vec![4; 32]); // different usage: untouched
        let set = vec![
            a256.clone(),
            a512.clone(),
            full.clone(),
            other_sel.clone(),
            ta256.clone(),
        ];
        let u = usable_records(&set);
        assert_eq!(u.usable, vec![a512, full, other_sel, ta256]);
        assert_eq!(u.unusable, vec![(a256, UnusableReason::WeakerDigest)]);
    }

    #[test]
    fn malformed_stronger_digest_does_not_drop_weaker() {
        let a256 = r(3, 1, 1, vec![1; 32]);
        let bad512 = r(3, 1, 2, vec![2; 63]);
        let u = usable_records(&[a256.clone(), bad512.clone()]);
        assert_eq!(u.usable, vec![a256]);
        assert_eq!(u.unusable, vec![(bad512, UnusableReason::BadDigestLength)]);
    }

    #[test]
    fn empty_and_order() {
        assert_eq!(usable_records(&[]), Usability::default());
        let a = r(0, 0, 1, vec![0; 32]);
        let b = r(3, 1, 1, vec![0; 32]);
        let c = r(1, 0, 1, vec![0; 32]);
        let u = usable_records(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(u.usable, vec![b]);
        assert_eq!(
            u.unusable,
            vec![
                (a, UnusableReason::PkixUsage),
                (c, UnusableReason::PkixUsage)
            ]
        );
    }

    #[test]
    fn serde_and_display() {
        let json = serde_json::to_string(&UnusableReason::WeakerDigest).expect("json");
        assert_eq!(json, "\"weaker_digest\"");
        let back: UnusableReason = serde_json::from_str("\"pkix_usage\"").expect("json");
        assert_eq!(back, UnusableReason::PkixUsage);
        assert!(UnusableReason::PkixUsage.to_string().contains("RFC 7672"));
    }
}
