//! Matching a presented certificate chain against a TLSA RRset with SMTP
//! semantics (RFC 7672 §3.1, RFC 7671 §5).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;

use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

use super::names::{cert_names, name_matches};
use super::tlsa::{parse_cert_exact, record_matches_cert, TlsaRecord};
use super::usable::usable_records;

/// Certificates of the presented chain considered at all (the rest is ignored,
/// so a hostile server cannot make path building expensive).
const MAX_CHAIN_CERTS: usize = 32;
/// Maximum number of certificates on a built path, leaf included, TA excluded.
const MAX_PATH_LEN: usize = 8;

/// The result class of a DANE check.
///
/// Exists so the survey can aggregate results across domains by cause; the
/// variants are ordered roughly from success to "nothing matched".
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOutcome {
    /// A usable TLSA record authenticated the server.
    Pass,
    /// The RRset has no usable record (empty, or all unusable): not a DANE
    /// pass or fail, RFC 7672 §2.2.
    NoUsableRecords,
    /// No usable record matched the presented chain.
    TlsaMismatch,
    /// A DANE-TA(2) chain was built but the leaf's names match no reference identifier.
    NameMismatch,
    /// A DANE-TA(2) record matched, but the leaf or an intermediate on the path has expired.
    CertExpired,
    /// A DANE-TA(2) record matched, but the leaf or an intermediate on the path is not yet valid.
    NotYetValid,
    /// A DANE-TA(2) record matched a certificate, but no signature-verified
    /// path leads from the leaf to it (or the leaf cannot be parsed).
    ChainInvalid,
}

impl fmt::Display for MatchOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOutcome::Pass => "pass",
            MatchOutcome::NoUsableRecords => "no_usable_records",
            MatchOutcome::TlsaMismatch => "tlsa_mismatch",
            MatchOutcome::NameMismatch => "name_mismatch",
            MatchOutcome::CertExpired => "cert_expired",
            MatchOutcome::NotYetValid => "not_yet_valid",
            MatchOutcome::ChainInvalid => "chain_invalid",
        })
    }
}

/// Which record matched, and where.
///
/// Exists so reports can say not just "pass/fail" but which published record
/// did the work and at what chain depth (mirroring OpenSSL's match depth).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MatchedRecord {
    /// The TLSA record that matched.
    pub record: TlsaRecord,
    /// 0 = leaf; n = position in the built chain. A TA from a `2 0 0` record
    /// not in the presented chain gets the position it would occupy (the
    /// length of the path below it). For a bare TA key from a `2 1 0` record
    /// that is not in the presented chain, there is no certificate to give a
    /// position to: the depth is that of the last certificate on the path,
    /// the one the key signed (OpenSSL's convention, used by its DANE tests).
    pub depth: usize,
}

/// The full result of [`verify`].
///
/// Exists to carry the outcome together with the evidence (matched record
/// and a one-line explanation) the survey reports per MX host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// The result class.
    pub outcome: MatchOutcome,
    /// The record that matched: set on `Pass`, and on a DANE-TA(2) failure
    /// that happened after a record matched (name, validity, path).
    pub matched: Option<MatchedRecord>,
    /// One-line human explanation: which record matched, or why not.
    pub detail: String,
}

/// A presented certificate that parsed.
struct Node<'a> {
    /// Position in the chain as presented.
    index: usize,
    der: &'a [u8],
    cert: X509Certificate<'a>,
}

/// Where a DANE-TA(2) trust anchor comes from.
enum Anchor<'a> {
    /// A presented certificate (index into the node list, never the leaf).
    Presented(usize),
    /// A full certificate published in a `2 0 0` record.
    DnsCert(Box<X509Certificate<'a>>),
    /// A bare public key published in a `2 1 0` record.
    DnsKey(SubjectPublicKeyInfo<'a>),
}

/// One attempt to authenticate; the best one becomes the [`Verification`].
struct Attempt {
    outcome: MatchOutcome,
    matched: Option<MatchedRecord>,
    detail: String,
}

impl Attempt {
    /// How far the attempt got; the most informative failure has the highest rank.
    fn rank(&self) -> u8 {
        match self.outcome {
            MatchOutcome::Pass => 5,
            MatchOutcome::NameMismatch => 4,
            MatchOutcome::CertExpired | MatchOutcome::NotYetValid => 3,
            MatchOutcome::ChainInvalid => 2,
            MatchOutcome::TlsaMismatch | MatchOutcome::NoUsableRecords => 0,
        }
    }

    fn into_verification(self) -> Verification {
        Verification {
            outcome: self.outcome,
            matched: self.matched,
            detail: self.detail,
        }
    }
}

/// Keeps peer-supplied text on one line (control characters become `?`) and bounded.
fn one_line(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn subject_of(cert: &X509Certificate<'_>) -> String {
    let s = one_line(&cert.subject().to_string());
    if s.is_empty() {
        "empty subject".to_string()
    } else {
        s
    }
}

fn fmt_time(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("unix {ts}"))
}

/// Checks validity at `at`; `Err((outcome, description))` if outside.
fn check_validity(cert: &X509Certificate<'_>, at: i64) -> Result<(), (MatchOutcome, String)> {
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    if at < nb {
        Err((
            MatchOutcome::NotYetValid,
            format!("is not valid before {}", fmt_time(nb)),
        ))
    } else if at > na {
        Err((
            MatchOutcome::CertExpired,
            format!("expired at {}", fmt_time(na)),
        ))
    } else {
        Ok(())
    }
}

/// Is `child` issued by the holder of `issuer_subject`/`issuer_key`?
/// Issuer/subject names are compared as DER bytes.
fn signed_by(
    child: &X509Certificate<'_>,
    issuer_subject: Option<&[u8]>,
    issuer_key: &SubjectPublicKeyInfo<'_>,
) -> bool {
    if let Some(subj) = issuer_subject {
        if child.issuer().as_raw() != subj {
            return false;
        }
    }
    child.verify_signature(Some(issuer_key)).is_ok()
}

/// Path building over the presented certificates (node 0 is the leaf).
struct Graph<'n, 'a> {
    nodes: &'n [Node<'a>],
    /// Cache of "node j issued node i" so each signature is verified once.
    edges: RefCell<HashMap<(usize, usize), bool>>,
}

impl<'n, 'a> Graph<'n, 'a> {
    fn new(nodes: &'n [Node<'a>]) -> Self {
        Graph {
            nodes,
            edges: RefCell::new(HashMap::new()),
        }
    }

    fn issued(&self, child: usize, issuer: usize) -> bool {
        if let Some(&v) = self.edges.borrow().get(&(child, issuer)) {
            return v;
        }
        let v = match (self.nodes.get(child), self.nodes.get(issuer)) {
            (Some(c), Some(i)) => signed_by(
                &c.cert,
                Some(i.cert.subject().as_raw()),
                i.cert.public_key(),
            ),
            _ => false,
        };
        self.edges.borrow_mut().insert((child, issuer), v);
        v
    }

    /// Does the anchor directly sign node `u`?
    fn anchor_signs(&self, anchor: &Anchor<'_>, u: usize) -> bool {
        match anchor {
            Anchor::Presented(j) => *j != u && self.issued(u, *j),
            Anchor::DnsCert(ta) => self
                .nodes
                .get(u)
                .is_some_and(|n| signed_by(&n.cert, Some(ta.subject().as_raw()), ta.public_key())),
            Anchor::DnsKey(key) => self
                .nodes
                .get(u)
                .is_some_and(|n| signed_by(&n.cert, None, key)),
        }
    }

    /// Shortest path of node ids from the leaf (node 0) to a certificate the
    /// anchor signs, using only intermediates accepted by `allowed`. The
    /// anchor itself is not part of the returned path.
    fn path_to(&self, anchor: &Anchor<'_>, allowed: &dyn Fn(usize) -> bool) -> Option<Vec<usize>> {
        let n = self.nodes.len();
        let excluded = match anchor {
            Anchor::Presented(j) => Some(*j),
            _ => None,
        };
        let mut prev: Vec<Option<usize>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut len = vec![0usize; n];
        let mut queue = VecDeque::new();
        if n == 0 {
            return None;
        }
        if let Some(s) = seen.get_mut(0) {
            *s = true;
        }
        if let Some(l) = len.get_mut(0) {
            *l = 1;
        }
        queue.push_back(0usize);
        while let Some(u) = queue.pop_front() {
            if self.anchor_signs(anchor, u) {
                let mut path = vec![u];
                let mut cur = u;
                while let Some(p) = prev.get(cur).copied().flatten() {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            let ulen = len.get(u).copied().unwrap_or(MAX_PATH_LEN);
            if ulen >= MAX_PATH_LEN {
                continue;
            }
            for v in 1..n {
                if Some(v) == excluded || seen.get(v).copied().unwrap_or(true) || !allowed(v) {
                    continue;
                }
                if self.issued(u, v) {
                    if let Some(s) = seen.get_mut(v) {
                        *s = true;
                    }
                    if let Some(p) = prev.get_mut(v) {
                        *p = Some(u);
                    }
                    if let Some(l) = len.get_mut(v) {
                        *l = ulen.saturating_add(1);
                    }
                    queue.push_back(v);
                }
            }
        }
        None
    }
}

/// Verifies a presented chain against a TLSA RRset with SMTP semantics.
///
/// `chain`: DER certificates exactly as the server presented them, leaf first
/// (rest in any order, may contain junk/duplicates/unrelated certs).
/// `reference_names`: the RFC 7672 §3.2.2 reference identifiers (TLSA base
/// domain, MX host name, maybe the domain), lower-case, without trailing dot
/// (a trailing dot is tolerated). `at`: the time of the check, unix seconds
/// (the wall clock is never read here, so results are reproducible).
///
/// * Only records accepted by [`usable_records`] count; none → `NoUsableRecords`.
/// * DANE-EE(3) records are matched against the leaf only, with no name and
///   no validity check (RFC 7672 §3.1.1, RFC 7671 §5.1).
/// * DANE-TA(2) records select a trust anchor — a presented certificate at
///   depth ≥ 1, or a certificate/key published in full as `2 0 0`/`2 1 0` —
///   and need a signature-verified path from the leaf to it through the
///   presented certificates (in any order), every certificate on the path
///   but the TA valid at `at`, and a leaf name matching a reference identifier
///   (RFC 7672 §3.1.2, §3.2.3; RFC 7671 §5.2).
/// * A pass by any record is a `Pass`. Otherwise the failure of the DANE-TA
///   attempt that got furthest (name > validity > path) is reported, and
///   `TlsaMismatch` if no record matched anything.
pub fn verify(
    rrset: &[TlsaRecord],
    chain: &[Vec<u8>],
    reference_names: &[String],
    at: i64,
) -> Verification {
    let usability = usable_records(rrset);
    if usability.usable.is_empty() {
        let detail = if rrset.is_empty() {
            "no TLSA records".to_string()
        } else {
            let reasons: Vec<String> = usability
                .unusable
                .iter()
                .map(|(r, why)| format!("{}: {why}", r.short()))
                .collect();
            format!(
                "none of the {} TLSA records is usable for SMTP ({})",
                rrset.len(),
                reasons.join("; ")
            )
        };
        return Verification {
            outcome: MatchOutcome::NoUsableRecords,
            matched: None,
            detail,
        };
    }
    // TLSA RRsets are peer input: a 64 KiB answer can hold hundreds of DANE-TA records, each
    // costing signature checks against every presented certificate. Real RRsets hold a few
    // (current + next key); past MAX_USABLE_RECORDS the rest are ignored (and said so).
    let mut usable = usability.usable;
    let dropped = usable.len().saturating_sub(MAX_USABLE_RECORDS);
    usable.truncate(MAX_USABLE_RECORDS);
    let mut v = verify_usable(&usable, chain, reference_names, at);
    if dropped > 0 {
        v.detail.push_str(&format!(
            " ({dropped} usable records past the first {MAX_USABLE_RECORDS} ignored)"
        ));
    }
    v
}

/// Most usable TLSA records [`verify`] tries.
pub const MAX_USABLE_RECORDS: usize = 32;

fn verify_usable(
    usable: &[TlsaRecord],
    chain: &[Vec<u8>],
    reference_names: &[String],
    at: i64,
) -> Verification {
    let Some(leaf_der) = chain.first() else {
        return Verification {
            outcome: MatchOutcome::TlsaMismatch,
            matched: None,
            detail: format!(
                "the server presented no certificate, so none of the {} usable TLSA records can match",
                usable.len()
            ),
        };
    };
    let leaf = parse_cert_exact(leaf_der);

    // DANE-EE(3): the leaf only; no name check, no validity check.
    for r in usable.iter().filter(|r| r.usage == 3) {
        if record_matches_cert(r, leaf_der, leaf.as_ref()) {
            let what = if r.selector == 0 {
                "certificate"
            } else {
                "public key"
            };
            return Verification {
                outcome: MatchOutcome::Pass,
                matched: Some(MatchedRecord {
                    record: r.clone(),
                    depth: 0,
                }),
                detail: format!("DANE-EE(3) record {} matched the leaf {what}", r.short()),
            };
        }
    }

    let ta_records: Vec<&TlsaRecord> = usable.iter().filter(|r| r.usage == 2).collect();
    let mut best: Option<Attempt> = None;
    if !ta_records.is_empty() {
        match &leaf {
            Some(leaf_cert) => {
                if let Some(pass) = try_ta(
                    &ta_records,
                    leaf_der,
                    leaf_cert,
                    chain,
                    reference_names,
                    at,
                    &mut best,
                ) {
                    return pass.into_verification();
                }
            }
            None => {
                // Without a parsed leaf no path can be built. A TA record that
                // matches a presented certificate still makes this a chain
                // problem rather than a plain mismatch.
                'outer: for r in &ta_records {
                    for (i, der) in chain.iter().enumerate().take(MAX_CHAIN_CERTS).skip(1) {
                        let parsed = parse_cert_exact(der);
                        if record_matches_cert(r, der, parsed.as_ref()) {
                            best = Some(Attempt {
                                outcome: MatchOutcome::ChainInvalid,
                                matched: Some(MatchedRecord {
                                    record: (*r).clone(),
                                    depth: i,
                                }),
                                detail: format!(
                                    "DANE-TA(2) record {} matched the certificate at chain position {i}, but the leaf certificate is not parseable DER",
                                    r.short()
                                ),
                            });
                            break 'outer;
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = best.filter(|b| b.rank() > 0) {
        return b.into_verification();
    }
    let leaf_note = if leaf.is_none() {
        " (the leaf certificate is not parseable DER)"
    } else {
        ""
    };
    let counts = format!(
        "{} DANE-EE(3), {} DANE-TA(2)",
        usable.iter().filter(|r| r.usage == 3).count(),
        ta_records.len()
    );
    Verification {
        outcome: MatchOutcome::TlsaMismatch,
        matched: None,
        detail: format!(
            "none of the {} usable TLSA records ({counts}) matched the {} presented certificate(s){leaf_note}",
            usable.len(),
            chain.len()
        ),
    }
}

/// Tries every DANE-TA(2) record; returns the first pass, and keeps the most
/// informative failure in `best`.
fn try_ta<'a>(
    ta_records: &[&'a TlsaRecord],
    leaf_der: &'a [u8],
    leaf_cert: &X509Certificate<'a>,
    chain: &'a [Vec<u8>],
    reference_names: &[String],
    at: i64,
    best: &mut Option<Attempt>,
) -> Option<Attempt> {
    // Node 0 is the leaf; then the parseable, distinct, non-leaf presented certificates.
    let mut nodes: Vec<Node<'a>> = vec![Node {
        index: 0,
        der: leaf_der,
        cert: leaf_cert.clone(),
    }];
    let mut unparsed: Vec<(usize, &'a [u8])> = Vec::new();
    for (i, der) in chain.iter().enumerate().take(MAX_CHAIN_CERTS).skip(1) {
        let der = der.as_slice();
        if nodes.iter().any(|n| n.der == der) {
            continue; // duplicate (or a copy of the leaf): ignore
        }
        match parse_cert_exact(der) {
            Some(cert) => nodes.push(Node {
                index: i,
                der,
                cert,
            }),
            None => unparsed.push((i, der)),
        }
    }
    let graph = Graph::new(&nodes);

    let consider = |a: Attempt, best: &mut Option<Attempt>| -> Option<Attempt> {
        if a.outcome == MatchOutcome::Pass {
            return Some(a);
        }
        if best.as_ref().is_none_or(|b| a.rank() > b.rank()) {
            *best = Some(a);
        }
        None
    };

    for &r in ta_records {
        // Anchors among the presented certificates (never the leaf).
        for (j, node) in nodes.iter().enumerate().skip(1) {
            if record_matches_cert(r, node.der, Some(&node.cert)) {
                let a = evaluate(r, &Anchor::Presented(j), &graph, reference_names, at);
                if let Some(pass) = consider(a, best) {
                    return Some(pass);
                }
            }
        }
        // A presented certificate that matches by bytes but does not parse.
        for &(i, der) in &unparsed {
            if r.selector == 0 && record_matches_cert(r, der, None) {
                let a = Attempt {
                    outcome: MatchOutcome::ChainInvalid,
                    matched: Some(MatchedRecord {
                        record: r.clone(),
                        depth: i,
                    }),
                    detail: format!(
                        "DANE-TA(2) record {} matched the certificate at chain position {i}, but that certificate is not parseable DER",
                        r.short()
                    ),
                };
                if let Some(pass) = consider(a, best) {
                    return Some(pass);
                }
            }
        }
        // A trust anchor published in full, which the server need not send.
        if r.matching_type == 0 {
            let anchor = match r.selector {
                0 => parse_cert_exact(&r.data).map(|c| Anchor::DnsCert(Box::new(c))),
                1 => match SubjectPublicKeyInfo::from_der(&r.data) {
                    Ok(([], spki)) => Some(Anchor::DnsKey(spki)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(anchor) = anchor {
                let a = evaluate(r, &anchor, &graph, reference_names, at);
                if let Some(pass) = consider(a, best) {
                    return Some(pass);
                }
            }
        }
    }
    None
}

/// Checks one DANE-TA(2) anchor: path, validity, then names.
fn evaluate(
    r: &TlsaRecord,
    anchor: &Anchor<'_>,
    graph: &Graph<'_, '_>,
    reference_names: &[String],
    at: i64,
) -> Attempt {
    let nodes = graph.nodes;
    let anchor_desc = match anchor {
        Anchor::Presented(j) => nodes.get(*j).map_or_else(String::new, |n| {
            format!(
                "the presented certificate at chain position {} ({})",
                n.index,
                subject_of(&n.cert)
            )
        }),
        Anchor::DnsCert(c) => format!(
            "the trust-anchor certificate published in the record ({})",
            subject_of(c)
        ),
        Anchor::DnsKey(_) => "the trust-anchor public key published in the record".to_string(),
    };

    let Some(any_path) = graph.path_to(anchor, &|_| true) else {
        return match anchor {
            Anchor::Presented(j) => Attempt {
                outcome: MatchOutcome::ChainInvalid,
                matched: Some(MatchedRecord {
                    record: r.clone(),
                    depth: nodes.get(*j).map_or(0, |n| n.index),
                }),
                detail: format!(
                    "DANE-TA(2) record {} matched {anchor_desc}, but no signature-verified path leads from the leaf to it",
                    r.short()
                ),
            },
            // A TA that signs nothing presented is simply not a match.
            _ => Attempt {
                outcome: MatchOutcome::TlsaMismatch,
                matched: None,
                detail: format!(
                    "DANE-TA(2) record {}: {anchor_desc} does not sign the presented chain",
                    r.short()
                ),
            },
        };
    };
    // Prefer a path whose intermediates are all currently valid.
    let valid_now = |v: usize| {
        nodes
            .get(v)
            .is_some_and(|n| check_validity(&n.cert, at).is_ok())
    };
    let path = graph.path_to(anchor, &valid_now).unwrap_or(any_path);
    let depth = match anchor {
        Anchor::Presented(_) | Anchor::DnsCert(_) => path.len(),
        Anchor::DnsKey(_) => path.len().saturating_sub(1),
    };
    let matched = MatchedRecord {
        record: r.clone(),
        depth,
    };
    let at_depth = match anchor {
        Anchor::DnsKey(_) => format!("which signs the certificate at depth {depth}"),
        _ => format!("at depth {depth}"),
    };

    // Validity of the leaf and every intermediate on the path. The trust
    // anchor's own validity period is deliberately NOT checked: per RFC 7671
    // §5.2.2 (and as RFC 5280 §6.1 treats trust anchors) a DANE-TA(2)
    // anchor is trusted because the DNSSEC-signed TLSA record says so, not
    // because of the dates in it, and a bare `2 1 0` key has no dates at all.
    for (pos, &id) in path.iter().enumerate() {
        let Some(n) = nodes.get(id) else { continue };
        if let Err((outcome, why)) = check_validity(&n.cert, at) {
            let which = if pos == 0 {
                "the leaf certificate".to_string()
            } else {
                format!("the intermediate at depth {pos} ({})", subject_of(&n.cert))
            };
            return Attempt {
                outcome,
                matched: Some(matched),
                detail: format!(
                    "DANE-TA(2) record {} matched {anchor_desc} {at_depth}, but {which} {why}",
                    r.short()
                ),
            };
        }
    }

    // RFC 7672 §3.2.3: names of the leaf against the reference identifiers.
    let Some(leaf) = nodes.first() else {
        return Attempt {
            outcome: MatchOutcome::ChainInvalid,
            matched: Some(matched),
            detail: "internal: no leaf".to_string(),
        };
    };
    let names = cert_names(&leaf.cert);
    let hit = names.iter().find_map(|n| {
        reference_names
            .iter()
            .find(|refn| name_matches(n, refn))
            .map(|refn| (n, refn))
    });
    match hit {
        Some((n, refn)) => Attempt {
            outcome: MatchOutcome::Pass,
            matched: Some(matched),
            detail: format!(
                "DANE-TA(2) record {} matched {anchor_desc} {at_depth}; leaf name {} matches {}",
                r.short(),
                one_line(n),
                one_line(refn)
            ),
        },
        None => Attempt {
            outcome: MatchOutcome::NameMismatch,
            matched: Some(matched),
            detail: format!(
                "DANE-TA(2) record {} matched {anchor_desc} {at_depth}, but the leaf names [{}] match none of [{}]",
                r.short(),
                one_line(&names.join(", ")),
                one_line(&reference_names.join(", "))
            ),
        },
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn oversized_rrsets_are_capped() {
        let rrset: Vec<TlsaRecord> = (0..40u8)
            .map(|i| TlsaRecord {
                usage: 3,
                selector: 1,
                matching_type: 1,
                data: vec![i; 32],
            })
            .collect();
        let v = verify(&rrset, &[vec![0x30, 0x00]], &["mx.example".into()], 0);
        assert_eq!(v.outcome, MatchOutcome::TlsaMismatch);
        assert!(
            v.detail
                .contains("8 usable records past the first 32 ignored"),
            "{}",
            v.detail
        );
    }

    use super::*;
    use crate::dane::testutil::{pki, Pki};
    use crate::dane::tlsa_for;

    const DAY: i64 = 86_400;

    fn rec(der: &[u8], usage: u8, selector: u8, mtype: u8) -> TlsaRecord {
        tlsa_for(der, usage, selector, mtype).expect("record computes")
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn check(rrset: &[TlsaRecord], chain: &[&Vec<u8>], refs: &[&str], at: i64) -> Verification {
        let chain: Vec<Vec<u8>> = chain.iter().map(|c| (*c).clone()).collect();
        verify(rrset, &chain, &names(refs), at)
    }

    fn assert_outcome(v: &Verification, outcome: MatchOutcome, depth: Option<usize>) {
        assert_eq!(v.outcome, outcome, "{v:?}");
        assert_eq!(v.matched.as_ref().map(|m| m.depth), depth, "{v:?}");
        assert!(!v.detail.is_empty());
    }

    fn std_chain(p: &Pki) -> Vec<&Vec<u8>> {
        vec![&p.leaf, &p.inter, &p.root]
    }

    #[test]
    fn ee_matches_leaf_without_name_or_validity_checks() {
        let p = pki();
        for (sel, mt) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
            let r = rec(&p.leaf, 3, sel, mt);
            // Wrong name, far in the future (expired), leaf alone: still a pass.
            let v = check(
                std::slice::from_ref(&r),
                &[&p.leaf],
                &["nomatch.example"],
                p.now + 10_000 * DAY,
            );
            assert_outcome(&v, MatchOutcome::Pass, Some(0));
            assert_eq!(v.matched.map(|m| m.record), Some(r));
        }
        // The independently computed openssl digests match.
        let r = TlsaRecord {
            usage: 3,
            selector: 1,
            matching_type: 1,
            data: p.leaf_spki_sha256.clone(),
        };
        assert_outcome(
            &check(&[r], &std_chain(p), &[], p.now),
            MatchOutcome::Pass,
            Some(0),
        );
        let r = TlsaRecord {
            usage: 3,
            selector: 0,
            matching_type: 1,
            data: p.leaf_cert_sha256.clone(),
        };
        assert_outcome(
            &check(&[r], &std_chain(p), &[], p.now),
            MatchOutcome::Pass,
            Some(0),
        );
    }

    #[test]
    fn ee_record_matching_non_leaf_does_not_count() {
        let p = pki();
        let v = check(
            &[rec(&p.inter, 3, 1, 1), rec(&p.root, 3, 0, 1)],
            &std_chain(p),
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
    }

    #[test]
    fn ee_binds_bytes_even_of_an_unparseable_leaf() {
        let junk = b"definitely not a certificate".to_vec();
        let r = TlsaRecord {
            usage: 3,
            selector: 0,
            matching_type: 1,
            data: ring::digest::digest(&ring::digest::SHA256, &junk)
                .as_ref()
                .to_vec(),
        };
        assert_outcome(
            &check(std::slice::from_ref(&r), &[&junk], &[], 0),
            MatchOutcome::Pass,
            Some(0),
        );
        // ...but an SPKI record cannot match it.
        let r = TlsaRecord { selector: 1, ..r };
        let v = check(&[r], &[&junk], &[], 0);
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
        assert!(v.detail.contains("not parseable"), "{}", v.detail);
    }

    #[test]
    fn ta_presented_at_each_depth() {
        let p = pki();
        let cases = [
            (rec(&p.inter, 2, 0, 1), 1),
            (rec(&p.inter, 2, 1, 1), 1),
            (rec(&p.inter, 2, 0, 2), 1),
            (rec(&p.inter, 2, 0, 0), 1),
            (rec(&p.root, 2, 0, 1), 2),
            (rec(&p.root, 2, 1, 2), 2),
        ];
        for (r, depth) in cases {
            let v = check(&[r], &std_chain(p), &["mx.example.com"], p.now);
            assert_outcome(&v, MatchOutcome::Pass, Some(depth));
        }
        let r = TlsaRecord {
            usage: 2,
            selector: 1,
            matching_type: 2,
            data: p.inter_spki_sha512.clone(),
        };
        let v = check(&[r], &std_chain(p), &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::Pass, Some(1));
    }

    #[test]
    fn ta_chain_in_any_order_with_junk_and_duplicates() {
        let p = pki();
        let junk = vec![0x30, 0x03, 0x02, 0x01, 0x00];
        let chain = vec![
            &p.leaf,
            &p.other_root,
            &p.root,
            &junk,
            &p.inter,
            &p.inter,
            &p.leaf,
        ];
        let v = check(&[rec(&p.root, 2, 0, 1)], &chain, &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::Pass, Some(2));
    }

    #[test]
    fn ta_from_dns_not_presented() {
        let p = pki();
        // Full root certificate, server sends leaf + intermediate: depth 2.
        let v = check(
            &[rec(&p.root, 2, 0, 0)],
            &[&p.leaf, &p.inter],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(2));
        // Full intermediate, server sends the leaf alone: depth 1.
        let v = check(
            &[rec(&p.inter, 2, 0, 0)],
            &[&p.leaf],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(1));
        // Bare root key: depth of the certificate it signs (the intermediate).
        let key = TlsaRecord {
            usage: 2,
            selector: 1,
            matching_type: 0,
            data: p.root_spki.clone(),
        };
        let v = check(
            std::slice::from_ref(&key),
            &[&p.leaf, &p.inter],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(1));
        // The key does not sign the leaf directly and there is no intermediate.
        let v = check(&[key], &[&p.leaf], &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
        // An unrelated published root signs nothing presented.
        let v = check(
            &[rec(&p.other_root, 2, 0, 0)],
            &std_chain(p),
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
    }

    #[test]
    fn ta_name_checks() {
        let p = pki();
        let ta = [rec(&p.inter, 2, 0, 1)];
        let chain = std_chain(p);
        for (refs, ok) in [
            (vec!["mx.example.com"], true),
            (vec!["MX.example.com."], true),
            (vec!["example.com", "mx.example.com"], true),
            (vec!["mx.wild.example"], true),
            (vec!["wild.example"], false),
            (vec!["a.b.wild.example"], false),
            (vec!["leaf.example"], false), // CN is ignored when DNS SANs exist
            (vec![], false),
        ] {
            let v = check(&ta, &chain, &refs, p.now);
            let want = if ok {
                MatchOutcome::Pass
            } else {
                MatchOutcome::NameMismatch
            };
            assert_outcome(&v, want, Some(1));
        }
        // No SAN: the CN is used.
        let v = check(
            &ta,
            &[&p.leaf_cn_only, &p.inter],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(1));
    }

    #[test]
    fn ta_validity_of_leaf_and_intermediates() {
        let p = pki();
        let ta = [rec(&p.root, 2, 0, 1)];
        let refs = ["mx.example.com"];
        let v = check(
            &ta,
            &[&p.leaf_short, &p.inter, &p.root],
            &refs,
            p.now + 20 * DAY,
        );
        assert_outcome(&v, MatchOutcome::CertExpired, Some(2));
        assert!(v.detail.contains("leaf"), "{}", v.detail);
        let v = check(
            &ta,
            &[&p.leaf_short, &p.inter, &p.root],
            &refs,
            p.now - 2 * DAY,
        );
        assert_outcome(&v, MatchOutcome::NotYetValid, Some(2));
        let v = check(&ta, &[&p.leaf_short, &p.inter, &p.root], &refs, p.now + DAY);
        assert_outcome(&v, MatchOutcome::Pass, Some(2));
        // Expired intermediate.
        let chain = [&p.leaf_under_short, &p.inter_short, &p.root];
        let v = check(&ta, &chain, &refs, p.now + 20 * DAY);
        assert_outcome(&v, MatchOutcome::CertExpired, Some(2));
        assert!(v.detail.contains("intermediate"), "{}", v.detail);
        // The TA's own validity is not checked: the expired intermediate as TA passes.
        let v = check(
            &[rec(&p.inter_short, 2, 0, 1)],
            &chain,
            &refs,
            p.now + 20 * DAY,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(1));
        // A DANE-EE record for the same leaf passes regardless.
        let v = check(
            &[ta[0].clone(), rec(&p.leaf_under_short, 3, 1, 1)],
            &chain,
            &refs,
            p.now + 20 * DAY,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(0));
    }

    #[test]
    fn ta_bad_signature_or_unrelated_is_chain_invalid() {
        let p = pki();
        // Issuer name says "Test Inter" but the impostor key signed it.
        let v = check(
            &[rec(&p.inter, 2, 0, 1)],
            &[&p.leaf_by_impostor, &p.inter],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::ChainInvalid, Some(1));
        // The impostor is presented too and matches a record: still no path to the real TA,
        // but the impostor-as-TA path passes (it really did sign the leaf).
        let v = check(
            &[rec(&p.impostor, 2, 0, 1)],
            &[&p.leaf_by_impostor, &p.inter, &p.impostor],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(1));
        // An unrelated presented root matching a TA record.
        let v = check(
            &[rec(&p.other_root, 2, 0, 1)],
            &[&p.leaf, &p.inter, &p.other_root],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::ChainInvalid, Some(2));
        // A TA record for the leaf itself is not a DANE-TA match at depth 0.
        let v = check(
            &[rec(&p.leaf, 2, 0, 1)],
            &std_chain(p),
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
    }

    #[test]
    fn most_informative_failure_wins() {
        let p = pki();
        let rrset = [
            rec(&p.other_root, 3, 1, 1), // EE mismatch
            rec(&p.other_root, 2, 0, 1), // presented, no path
            rec(&p.root, 2, 0, 1),       // path ok, name fails
        ];
        let v = check(
            &rrset,
            &[&p.leaf, &p.inter, &p.root, &p.other_root],
            &["other.example"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::NameMismatch, Some(2));
        assert_eq!(v.matched.map(|m| m.record), Some(rrset[2].clone()));
    }

    #[test]
    fn no_usable_records_and_empty_chain() {
        let p = pki();
        let v = check(&[], &std_chain(p), &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::NoUsableRecords, None);
        let pkix = [rec(&p.leaf, 1, 1, 1), rec(&p.root, 0, 0, 1)];
        let v = check(&pkix, &std_chain(p), &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::NoUsableRecords, None);
        assert!(v.detail.contains("PKIX"), "{}", v.detail);
        let v = check(&[rec(&p.leaf, 3, 1, 1)], &[], &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
        assert!(v.detail.contains("no certificate"), "{}", v.detail);
    }

    #[test]
    fn unparseable_leaf_with_ta_match_is_chain_invalid() {
        let p = pki();
        let junk = b"junk leaf".to_vec();
        let v = check(
            &[rec(&p.inter, 2, 0, 1)],
            &[&junk, &p.inter],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::ChainInvalid, Some(1));
        let v = check(
            &[rec(&p.inter, 2, 0, 1)],
            &[&junk],
            &["mx.example.com"],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
    }

    #[test]
    fn digest_agility_applies_in_verify() {
        let p = pki();
        // The SHA2-256 record matches, the SHA2-512 one does not: the weaker is ignored.
        let good256 = rec(&p.leaf, 3, 1, 1);
        let bad512 = TlsaRecord {
            data: vec![0; 64],
            ..rec(&p.leaf, 3, 1, 2)
        };
        let v = check(&[good256.clone(), bad512], &std_chain(p), &[], p.now);
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
        // Different selector is unaffected.
        let v = check(
            &[good256, rec(&p.other_root, 3, 0, 2)],
            &std_chain(p),
            &[],
            p.now,
        );
        assert_outcome(&v, MatchOutcome::Pass, Some(0));
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let p = pki();
        let rrset = [
            rec(&p.leaf, 3, 1, 1),
            rec(&p.root, 2, 0, 1),
            rec(&p.root, 2, 0, 0),
            TlsaRecord {
                usage: 2,
                selector: 1,
                matching_type: 0,
                data: p.root_spki.clone(),
            },
        ];
        let step = (p.leaf.len() / 40).max(1);
        for cut in (0..p.leaf.len()).step_by(step) {
            let mut bad = p.leaf.clone();
            bad.truncate(cut);
            let v = check(
                &rrset,
                &[&bad, &bad, &p.inter, &p.root],
                &["mx.example.com"],
                p.now,
            );
            assert_ne!(v.outcome, MatchOutcome::Pass, "cut {cut}");
            let mut flipped = p.leaf.clone();
            if let Some(b) = flipped.get_mut(cut) {
                *b ^= 0x55;
            }
            let _ = check(&rrset, &[&flipped, &p.inter], &["mx.example.com"], i64::MIN);
            let _ = check(&rrset, &[&flipped, &p.inter], &["mx.example.com"], i64::MAX);
        }
        // Many copies of unrelated certificates: bounded work.
        let many: Vec<&Vec<u8>> = std::iter::once(&p.leaf)
            .chain(std::iter::repeat_n(&p.other_root, 200))
            .collect();
        let v = check(&rrset[1..2], &many, &["mx.example.com"], p.now);
        assert_outcome(&v, MatchOutcome::TlsaMismatch, None);
    }

    #[test]
    fn serializes_snake_case() {
        let p = pki();
        let v = check(
            &[rec(&p.inter, 2, 0, 1)],
            &std_chain(p),
            &["nope.example"],
            p.now,
        );
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["outcome"], "name_mismatch");
        assert_eq!(json["matched"]["depth"], 1);
        assert_eq!(json["matched"]["record"]["usage"], 2);
        assert_eq!(MatchOutcome::ChainInvalid.to_string(), "chain_invalid");
    }
}
