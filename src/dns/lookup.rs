//! Typed lookups that keep the DNSSEC security state with the data.

use std::fmt::{self, Write as _};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use super::client::Resolver;

/// Longest CNAME chain followed inside one answer (loops and absurd chains are errors).
const MAX_CNAME_CHAIN: usize = 16;
/// EDE option code (RFC 8914).
const EDE_CODE: u16 = 15;
/// Longest EDE extra text we keep.
const EDE_TEXT_MAX: usize = 256;

/// Whether the resolver vouched for the data (or the denial) with DNSSEC.
///
/// Exists because every DANE decision hinges on it: TLSA records count only when secure, and
/// a domain is eligible for DANE only when its MX RRset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Validated: the resolver set AD for the whole answer (every CNAME link included).
    Secure,
    /// Provably unsigned: below an insecure delegation.
    Insecure,
}

/// An Extended DNS Error (RFC 8914) as the resolver sent it.
///
/// Kept with every failure so DNSSEC failures (EDE 6–12) can be told apart from unreachable
/// or lame servers (EDE 22, 23) when the results are analysed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ede {
    /// The INFO-CODE.
    pub code: u16,
    /// The EXTRA-TEXT, lossily decoded and truncated.
    pub text: String,
}

impl fmt::Display for Ede {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EDE {} {}", self.code, self.name())?;
        if !self.text.is_empty() {
            write!(f, ": {}", self.text)?;
        }
        Ok(())
    }
}

impl Ede {
    /// The registered name of the INFO-CODE (RFC 8914 §4 and the IANA registry).
    pub fn name(&self) -> &'static str {
        match self.code {
            0 => "Other Error",
            1 => "Unsupported DNSKEY Algorithm",
            2 => "Unsupported DS Digest Type",
            3 => "Stale Answer",
            4 => "Forged Answer",
            5 => "DNSSEC Indeterminate",
            6 => "DNSSEC Bogus",
            7 => "Signature Expired",
            8 => "Signature Not Yet Valid",
            9 => "DNSKEY Missing",
            10 => "RRSIGs Missing",
            11 => "No Zone Key Bit Set",
            12 => "NSEC Missing",
            13 => "Cached Error",
            14 => "Not Ready",
            15 => "Blocked",
            16 => "Censored",
            17 => "Filtered",
            18 => "Prohibited",
            19 => "Stale NXDomain Answer",
            20 => "Not Authoritative",
            21 => "Not Supported",
            22 => "No Reachable Authority",
            23 => "Network Error",
            24 => "Invalid Data",
            25 => "Signature Expired before Valid",
            26 => "Too Early",
            27 => "Unsupported NSEC3 Iterations Value",
            28 => "Unable to conform to policy",
            29 => "Synthesized",
            30 => "Invalid Query Type",
            _ => "Unknown",
        }
    }

    /// Whether the code is one of the DNSSEC validation failures (RFC 8914 §4.7–4.13: DNSSEC
    /// Bogus, Signature Expired/Not Yet Valid, DNSKEY/RRSIGs/NSEC Missing, No Zone Key Bit).
    /// Codes 1 and 2 (unsupported algorithm/digest) come with answers treated as insecure.
    pub fn is_dnssec_failure(&self) -> bool {
        matches!(self.code, 6..=12)
    }
}

/// Why a lookup produced no usable answer.
///
/// Exists to keep the failure classes a survey must count separately (a bogus zone is a DNSSEC
/// finding; a timeout is noise to retry) instead of collapsing them into one "error".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DnsFailure {
    /// SERVFAIL: bogus data, or a server the resolver could not reach.
    #[error("SERVFAIL{}", ede.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    ServFail {
        /// The resolver's explanation, if it gave one.
        ede: Option<Ede>,
    },
    /// REFUSED: the resolver will not answer us.
    #[error("REFUSED")]
    Refused,
    /// Any other RCODE.
    #[error("unexpected RCODE {0}")]
    Rcode(String),
    /// No acceptable answer within the time and retries allowed.
    #[error("timeout")]
    Timeout,
    /// A socket error (e.g. connection refused over TCP).
    #[error("network error: {0}")]
    Network(String),
    /// An answer we could not use (undecodable, CNAME loop, …).
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// Whether a SERVFAIL with this Extended DNS Error may pass when asked again: every SERVFAIL
/// except a DNSSEC validation failure (EDE 6–12), which the resolver repeats (and caches).
pub(crate) fn servfail_may_pass(ede: Option<&Ede>) -> bool {
    !ede.is_some_and(Ede::is_dnssec_failure)
}

impl DnsFailure {
    /// Whether asking again later may succeed: a timeout, a network error, or a SERVFAIL that
    /// is not a DNSSEC verdict (no EDE 6–12: an overloaded resolver, a lame or unreachable
    /// authority). A bogus answer, REFUSED, another RCODE or a malformed answer would only
    /// come back the same.
    pub fn is_transient(&self) -> bool {
        match self {
            DnsFailure::Timeout | DnsFailure::Network(_) => true,
            DnsFailure::ServFail { ede } => servfail_may_pass(ede.as_ref()),
            DnsFailure::Refused | DnsFailure::Rcode(_) | DnsFailure::Malformed(_) => false,
        }
    }
}

/// Records of one type at the end of a (possibly empty) CNAME chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupData<T> {
    /// The records, in answer order.
    pub records: Vec<T>,
    /// Security of the answer as a whole (CNAME links included).
    pub security: Security,
    /// The name the records are at: the query name, or the last CNAME target.
    pub canonical: Name,
    /// The CNAME owners followed, in order (empty when there was no CNAME).
    pub cname_chain: Vec<Name>,
}

/// The outcome of a lookup, with its security state.
///
/// Exists so callers cannot read records without deciding what to do with insecure data,
/// denials and failures: every variant is a different branch of the RFC 7672 procedure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// At least one record of the type asked for.
    Data(LookupData<T>),
    /// The name exists but has no record of that type (possibly after CNAMEs).
    NoData(LookupData<T>),
    /// The name does not exist (possibly the CNAME target).
    NxDomain(LookupData<T>),
    /// No usable answer.
    Failed(DnsFailure),
}

impl<T> Lookup<T> {
    /// The security of the answer; `None` for failures.
    pub fn security(&self) -> Option<Security> {
        match self {
            Lookup::Data(d) | Lookup::NoData(d) | Lookup::NxDomain(d) => Some(d.security),
            Lookup::Failed(_) => None,
        }
    }

    /// The data part of any non-failure answer.
    pub fn data(&self) -> Option<&LookupData<T>> {
        match self {
            Lookup::Data(d) | Lookup::NoData(d) | Lookup::NxDomain(d) => Some(d),
            Lookup::Failed(_) => None,
        }
    }

    /// A short description: `secure data (2)`, `insecure NXDOMAIN`, `SERVFAIL (EDE 7: …)`.
    pub fn describe(&self) -> String {
        let sec = |d: &LookupData<T>| match d.security {
            Security::Secure => "secure",
            Security::Insecure => "insecure",
        };
        // Sized up front: `format!` starts from an empty string here and grows it twice, for
        // every domain of a crawl.
        let mut text = String::with_capacity(24);
        let _ = match self {
            Lookup::Data(d) => write!(text, "{} data ({})", sec(d), d.records.len()),
            Lookup::NoData(d) => write!(text, "{} NODATA", sec(d)),
            Lookup::NxDomain(d) => write!(text, "{} NXDOMAIN", sec(d)),
            Lookup::Failed(e) => write!(text, "{e}"),
        };
        text
    }
}

/// Extracts the Extended DNS Error from an answer, if any.
pub(crate) fn ede(msg: &Message) -> Option<Ede> {
    let edns = msg.edns.as_ref()?;
    edns.options()
        .as_ref()
        .iter()
        .find_map(|(code, opt)| match (code, opt) {
            (EdnsCode::Unknown(EDE_CODE), EdnsOption::Unknown(_, data)) if data.len() >= 2 => {
                let code = u16::from_be_bytes([data[0], data[1]]);
                let mut text = String::from_utf8_lossy(&data[2..]).into_owned();
                if text.len() > EDE_TEXT_MAX {
                    let mut cut = EDE_TEXT_MAX;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                Some(Ede { code, text })
            }
            _ => None,
        })
}

/// Classifies a raw answer: follows the CNAME chain from `qname` and picks the records of
/// `rtype` at its end with `extract`.
pub(crate) fn classify<T>(
    msg: &Message,
    qname: &Name,
    rtype: RecordType,
    extract: impl Fn(&RData) -> Option<T>,
) -> Lookup<T> {
    let rcode = msg.metadata.response_code;
    match rcode {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        ResponseCode::ServFail => return Lookup::Failed(DnsFailure::ServFail { ede: ede(msg) }),
        ResponseCode::Refused => return Lookup::Failed(DnsFailure::Refused),
        other => return Lookup::Failed(DnsFailure::Rcode(other.to_string())),
    }
    let security = if msg.metadata.authentic_data {
        Security::Secure
    } else {
        Security::Insecure
    };
    let mut canonical = qname.clone();
    let mut cname_chain = Vec::new();
    if rtype != RecordType::CNAME {
        loop {
            let next = msg.answers.iter().find_map(|r| match &r.data {
                RData::CNAME(target) if r.name == canonical => Some(target.0.clone()),
                _ => None,
            });
            let Some(target) = next else { break };
            if cname_chain.len() >= MAX_CNAME_CHAIN || cname_chain.contains(&canonical) {
                return Lookup::Failed(DnsFailure::Malformed(format!(
                    "CNAME chain from {qname} loops or is longer than {MAX_CNAME_CHAIN}"
                )));
            }
            cname_chain.push(canonical);
            canonical = target;
        }
    }
    let records: Vec<T> = msg
        .answers
        .iter()
        .filter(|r| r.name == canonical && r.record_type() == rtype)
        .filter_map(|r| extract(&r.data))
        .collect();
    let data = LookupData {
        records,
        security,
        canonical,
        cname_chain,
    };
    if !data.records.is_empty() {
        Lookup::Data(data)
    } else if rcode == ResponseCode::NXDomain {
        Lookup::NxDomain(data)
    } else {
        Lookup::NoData(data)
    }
}

impl Resolver {
    /// Looks `name` up for `rtype` and classifies the answer with `extract`.
    pub async fn lookup<T>(
        &self,
        name: &Name,
        rtype: RecordType,
        extract: impl Fn(&RData) -> Option<T>,
    ) -> Lookup<T> {
        let mut l = match self.query(name, rtype).await {
            Ok(resp) => classify(&resp.message, name, rtype, extract),
            Err(e) => Lookup::Failed(e),
        };
        if !self.config().ede_text {
            if let Lookup::Failed(DnsFailure::ServFail { ede: Some(e) }) = &mut l {
                e.text.clear();
            }
        }
        l
    }
}

/// Why the start-up self-check refused the resolver.
///
/// Exists so a misconfigured resolver stops the run with a message that says how to fix it,
/// instead of silently reporting every domain as unsigned.
#[derive(Debug, thiserror::Error)]
pub enum SelfCheckError {
    /// The resolver did not answer at all.
    #[error("resolver {server} does not answer ({failure}); is it running and listening there?")]
    Unreachable {
        /// The resolver's address.
        server: String,
        /// What went wrong.
        failure: DnsFailure,
    },
    /// The resolver answered but does not validate DNSSEC.
    #[error(
        "resolver {server} does not validate DNSSEC: {why}. dane-survey needs a validating \
         resolver it can trust, e.g. `apt-get install unbound` and use 127.0.0.1 (unbound \
         validates by default), or `dane-survey lab up` for the offline lab"
    )]
    NotValidating {
        /// The resolver's address.
        server: String,
        /// What the check saw.
        why: String,
    },
}

/// Proves that every configured resolver validates: `signed` (a name in a signed zone) must
/// come back with AD, `bogus` (a deliberately broken name) must come back SERVFAIL.
pub async fn selfcheck(
    resolver: &Resolver,
    signed: &Name,
    bogus: &Name,
) -> Result<(), SelfCheckError> {
    for &server in &resolver.config().servers {
        let mut cfg = resolver.config().clone();
        cfg.servers = vec![server];
        let one = Resolver::new(cfg).map_err(|why| SelfCheckError::NotValidating {
            server: server.to_string(),
            why,
        })?;
        let server = server.to_string();
        let resp = one
            .query(signed, RecordType::SOA)
            .await
            .map_err(|failure| SelfCheckError::Unreachable {
                server: server.clone(),
                failure,
            })?;
        let m = &resp.message.metadata;
        if m.response_code != ResponseCode::NoError || !m.authentic_data {
            return Err(SelfCheckError::NotValidating {
                server,
                why: format!(
                    "the signed name {signed} came back {} without the AD bit",
                    m.response_code
                ),
            });
        }
        match one.query(bogus, RecordType::A).await {
            Ok(resp) if resp.message.metadata.response_code == ResponseCode::ServFail => {}
            Ok(resp) => {
                return Err(SelfCheckError::NotValidating {
                    server,
                    why: format!(
                        "the deliberately bogus name {bogus} came back {} instead of SERVFAIL",
                        resp.message.metadata.response_code
                    ),
                })
            }
            Err(failure) => return Err(SelfCheckError::Unreachable { server, failure }),
        }
    }
    Ok(())
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Secure => "secure",
            Security::Insecure => "insecure",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_failures_are_worth_asking_again() {
        let servfail = |code: Option<u16>| DnsFailure::ServFail {
            ede: code.map(|code| Ede {
                code,
                text: String::new(),
            }),
        };
        assert!(DnsFailure::Timeout.is_transient());
        assert!(DnsFailure::Network("reset".into()).is_transient());
        assert!(servfail(None).is_transient());
        // EDE 22/23: no reachable authority; 0: other — may pass.
        assert!(servfail(Some(22)).is_transient());
        assert!(servfail(Some(0)).is_transient());
        // DNSSEC verdicts (bogus, expired signatures, missing DNSKEY…) come back the same.
        for code in 6..=12 {
            assert!(!servfail(Some(code)).is_transient(), "EDE {code}");
        }
        assert!(!DnsFailure::Refused.is_transient());
        assert!(!DnsFailure::Rcode("NOTIMP".into()).is_transient());
        assert!(!DnsFailure::Malformed("x".into()).is_transient());
    }
    use hickory_proto::op::{Edns, MessageType, OpCode};
    use hickory_proto::rr::rdata::opt::EdnsOption;
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::Record;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn answer(rcode: ResponseCode, ad: bool, records: Vec<Record>) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authentic_data = ad;
        m.add_answers(records);
        m
    }

    fn a(s: &RData) -> Option<std::net::Ipv4Addr> {
        match s {
            RData::A(a) => Some(a.0),
            _ => None,
        }
    }

    #[test]
    fn follows_cname_chain_and_keeps_security() {
        let q = n("mx.example.");
        let m = answer(
            ResponseCode::NoError,
            true,
            vec![
                Record::from_rdata(q.clone(), 60, RData::CNAME(CNAME(n("b.example.")))),
                Record::from_rdata(n("b.example."), 60, RData::CNAME(CNAME(n("c.example.")))),
                Record::from_rdata(n("c.example."), 60, RData::A(A::new(192, 0, 2, 1))),
                // An address at another owner must not be taken.
                Record::from_rdata(n("other.example."), 60, RData::A(A::new(192, 0, 2, 9))),
            ],
        );
        let Lookup::Data(d) = classify(&m, &q, RecordType::A, a) else {
            panic!("expected data");
        };
        assert_eq!(d.records, vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(d.canonical, n("c.example."));
        assert_eq!(d.cname_chain, vec![q.clone(), n("b.example.")]);
        assert_eq!(d.security, Security::Secure);
    }

    #[test]
    fn cname_loop_is_an_error() {
        let q = n("a.example.");
        let m = answer(
            ResponseCode::NoError,
            true,
            vec![
                Record::from_rdata(q.clone(), 60, RData::CNAME(CNAME(n("b.example.")))),
                Record::from_rdata(n("b.example."), 60, RData::CNAME(CNAME(q.clone()))),
            ],
        );
        assert!(matches!(
            classify(&m, &q, RecordType::A, a),
            Lookup::Failed(DnsFailure::Malformed(_))
        ));
    }

    #[test]
    fn denials_and_failures() {
        let q = n("x.example.");
        let nx = answer(ResponseCode::NXDomain, true, vec![]);
        assert!(
            matches!(classify(&nx, &q, RecordType::A, a), Lookup::NxDomain(d) if d.security == Security::Secure)
        );
        let nodata = answer(ResponseCode::NoError, false, vec![]);
        assert!(
            matches!(classify(&nodata, &q, RecordType::A, a), Lookup::NoData(d) if d.security == Security::Insecure)
        );
        let refused = answer(ResponseCode::Refused, false, vec![]);
        assert_eq!(
            classify(&refused, &q, RecordType::A, a),
            Lookup::Failed(DnsFailure::Refused)
        );
        let mut servfail = answer(ResponseCode::ServFail, false, vec![]);
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(15, b"\x00\x07sig expired".to_vec()));
        servfail.set_edns(edns);
        let Lookup::Failed(DnsFailure::ServFail { ede: Some(e) }) =
            classify(&servfail, &q, RecordType::A, a)
        else {
            panic!("expected SERVFAIL with EDE");
        };
        assert_eq!(e.code, 7);
        assert!(e.is_dnssec_failure());
        assert_eq!(e.to_string(), "EDE 7 Signature Expired: sig expired");
    }
}
