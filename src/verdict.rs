//! The verdict taxonomy: what the survey concludes about an address, an MX host and a domain.
//!
//! One place, one version: the names below are written into every report and snapshot, and
//! month-over-month comparisons are only meaningful while they keep their meaning. Change a
//! meaning, add or remove a variant → bump [`TAXONOMY_VERSION`].
//!
//! The aggregation rules follow RFC 7672 §2.2 as read in the project's DANE primer: a domain
//! is a DANE domain when its MX RRset is secure and every primary MX host that accepts
//! connections has usable secure TLSA records that match the chain every reachable address
//! presents. Everything here is pure: the I/O that produces the inputs lives in `survey`.

use serde::{Deserialize, Serialize};

/// Version of the verdict taxonomy (the enums of this module and their meanings).
pub const TAXONOMY_VERSION: u32 = 1;

macro_rules! verdict_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v,)+ }
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];
            /// The stable snake_case name used in reports, snapshots and the ground truth.
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s,)+ } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($s => Ok($name::$v),)+ _ => Err(format!("unknown {} {s:?}", stringify!($name))) }
            }
        }
    };
}

verdict_enum! {
    /// The result for one address of one MX host: what a DANE sender would experience there.
    AddressVerdict {
        /// The presented chain matches a usable TLSA record (RFC 7672 §3.1).
        Pass = "pass",
        /// Connection refused or timed out, or no SMTP greeting: not a DANE failure.
        Unreachable = "unreachable",
        /// Usable TLSA exist but the server did not offer (or refused) STARTTLS.
        StarttlsMissing = "starttls_missing",
        /// Usable TLSA exist but the TLS handshake failed.
        TlsFailed = "tls_failed",
        /// No usable TLSA record matches the chain.
        TlsaMismatch = "tlsa_mismatch",
        /// DANE-TA matched but the leaf's names do not match the reference identifiers.
        NameMismatch = "name_mismatch",
        /// DANE-TA matched but a certificate on the path had expired.
        CertExpired = "cert_expired",
        /// DANE-TA matched but a certificate on the path was not yet valid.
        NotYetValid = "not_yet_valid",
        /// DANE-TA matched but no valid path leads from the leaf to the trust anchor.
        ChainInvalid = "chain_invalid",
        /// TLS (or plain SMTP) worked, but the host has no usable TLSA to check against.
        NotAuthenticated = "not_authenticated",
        /// Not probed by policy: a special-purpose address (loopback, private, …) or opt-out.
        Skipped = "skipped",
    }
}

verdict_enum! {
    /// The result for one MX host (its DNS facts plus the results of its addresses).
    HostVerdict {
        /// Every reachable address passes and at least one is reachable.
        Pass = "pass",
        /// Usable TLSA, and some reachable address fails: a DANE sender defers mail.
        Failing = "failing",
        /// Usable TLSA, but no address accepted a connection.
        Unreachable = "unreachable",
        /// A/AAAA lookup failed (SERVFAIL, timeout, …).
        DnsFailed = "dns_failed",
        /// The host name does not exist or has no address.
        HostNxdomain = "host_nxdomain",
        /// The host's addresses are in an unsigned zone: TLSA there cannot be trusted.
        InsecureHost = "insecure_host",
        /// Secure, but no TLSA at any candidate base domain.
        NoTlsa = "no_tlsa",
        /// The TLSA lookup failed: a DANE sender must not deliver here.
        TlsaFailed = "tlsa_failed",
        /// Secure TLSA RRset without a usable record: TLS mandatory, unauthenticated.
        EncryptOnly = "encrypt_only",
    }
}

verdict_enum! {
    /// The verdict for a domain: the survey's headline classification.
    DomainVerdict {
        /// Every primary MX host passes with DANE.
        DaneValid = "dane_valid",
        /// Some primary MX hosts have usable TLSA, others do not.
        DanePartial = "dane_partial",
        /// Usable TLSA, and some reachable primary address fails to match.
        DaneFailing = "dane_failing",
        /// A TLSA lookup of a primary MX host failed.
        TlsaFailed = "tlsa_failed",
        /// A primary MX host publishes only unusable TLSA records.
        EncryptOnly = "encrypt_only",
        /// Signed domain, secure MX hosts, no TLSA: a slow adopter.
        NoTlsa = "no_tlsa",
        /// Signed domain whose primary MX hosts are in unsigned zones: also a slow adopter.
        InsecureMxHost = "insecure_mx_host",
        /// TLSA published, but no primary address accepted a connection.
        Unreachable = "unreachable",
        /// The A/AAAA lookup of a primary MX host failed.
        HostDnsFailed = "host_dns_failed",
        /// The primary MX hosts do not exist (or have no address).
        HostNxdomain = "host_nxdomain",
        /// The MX lookup failed (bogus, SERVFAIL, timeout): a sender would defer.
        MxLookupFailed = "mx_lookup_failed",
        /// The domain does not exist (secure or insecure denial).
        Nxdomain = "nxdomain",
        /// No MX RRset: the implicit MX (the domain itself) is not surveyed.
        NoMx = "no_mx",
        /// RFC 7505 null MX: the domain accepts no mail.
        NullMx = "null_mx",
        /// The MX RRset is not signed: not eligible for DANE.
        Insecure = "insecure",
        /// An MX target is an IP literal, the root, or otherwise not a host name.
        InvalidMx = "invalid_mx",
    }
}

impl DomainVerdict {
    /// Whether this counts in the headline "DANE domains" figure.
    pub fn is_dane(self) -> bool {
        self == DomainVerdict::DaneValid
    }
}

/// A host's verdict from its address verdicts, when it has usable TLSA records.
pub fn host_from_addresses(addresses: &[AddressVerdict]) -> HostVerdict {
    let mut reachable = addresses
        .iter()
        .filter(|a| !matches!(a, AddressVerdict::Unreachable | AddressVerdict::Skipped))
        .peekable();
    if reachable.peek().is_none() {
        HostVerdict::Unreachable
    } else if reachable.all(|a| *a == AddressVerdict::Pass) {
        HostVerdict::Pass
    } else {
        HostVerdict::Failing
    }
}

/// The domain verdict from the verdicts of a set of MX hosts (the primary ones for the headline
/// verdict, all of them for the all-hosts verdict). The MX RRset is assumed secure and valid.
///
/// Precedence, most actionable first: a failure a DANE sender would act on (mismatch, TLSA
/// lookup failure, encrypt-only, address lookup failure), then partial deployment, then the
/// success and adoption classes.
pub fn domain_from_hosts(hosts: &[HostVerdict]) -> DomainVerdict {
    domain_from_verdicts(hosts.iter().copied())
}

/// [`domain_from_hosts`] over any (re-iterable) sequence of host verdicts: the crawl judges
/// every domain of the survey and does it without collecting them.
pub fn domain_from_verdicts(hosts: impl Iterator<Item = HostVerdict> + Clone) -> DomainVerdict {
    use HostVerdict as H;
    // A host without any address accepts no connections: like an unreachable one it does not
    // stand against the others, unless no host has an address at all.
    let some_address = hosts.clone().any(|h| h != H::HostNxdomain);
    let hosts = hosts.filter(move |h| !some_address || *h != H::HostNxdomain);
    let any = |v: H| hosts.clone().any(|h| h == v);
    let counted = hosts.clone().count();
    let dane_hosts = hosts
        .clone()
        .filter(|h| matches!(h, H::Pass | H::Failing | H::Unreachable))
        .count();
    if counted == 0 {
        return DomainVerdict::InvalidMx;
    }
    if any(H::Failing) {
        return DomainVerdict::DaneFailing;
    }
    if any(H::TlsaFailed) {
        return DomainVerdict::TlsaFailed;
    }
    if any(H::EncryptOnly) {
        return DomainVerdict::EncryptOnly;
    }
    if any(H::DnsFailed) {
        return DomainVerdict::HostDnsFailed;
    }
    if dane_hosts > 0 && dane_hosts < counted {
        return DomainVerdict::DanePartial;
    }
    if dane_hosts == counted {
        return if any(H::Pass) {
            DomainVerdict::DaneValid
        } else {
            DomainVerdict::Unreachable
        };
    }
    if any(H::NoTlsa) {
        DomainVerdict::NoTlsa
    } else if any(H::InsecureHost) {
        DomainVerdict::InsecureMxHost
    } else {
        DomainVerdict::HostNxdomain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressVerdict as A;
    use DomainVerdict as D;
    use HostVerdict as H;

    #[test]
    fn host_from_addresses_ignores_unreachable_addresses() {
        assert_eq!(host_from_addresses(&[A::Pass, A::Unreachable]), H::Pass);
        assert_eq!(host_from_addresses(&[A::Unreachable]), H::Unreachable);
        assert_eq!(host_from_addresses(&[A::Skipped, A::Pass]), H::Pass);
        assert_eq!(host_from_addresses(&[A::Skipped]), H::Unreachable);
        assert_eq!(host_from_addresses(&[]), H::Unreachable);
        assert_eq!(host_from_addresses(&[A::Pass, A::TlsaMismatch]), H::Failing);
        assert_eq!(host_from_addresses(&[A::StarttlsMissing]), H::Failing);
        assert_eq!(
            host_from_addresses(&[A::Unreachable, A::TlsFailed]),
            H::Failing
        );
    }

    #[test]
    fn domain_precedence() {
        assert_eq!(domain_from_hosts(&[H::Pass]), D::DaneValid);
        assert_eq!(domain_from_hosts(&[H::Pass, H::Unreachable]), D::DaneValid);
        assert_eq!(domain_from_hosts(&[H::Unreachable]), D::Unreachable);
        assert_eq!(domain_from_hosts(&[H::Pass, H::NoTlsa]), D::DanePartial);
        assert_eq!(
            domain_from_hosts(&[H::Pass, H::InsecureHost]),
            D::DanePartial
        );
        assert_eq!(domain_from_hosts(&[H::Pass, H::Failing]), D::DaneFailing);
        assert_eq!(domain_from_hosts(&[H::TlsaFailed, H::Pass]), D::TlsaFailed);
        assert_eq!(domain_from_hosts(&[H::EncryptOnly]), D::EncryptOnly);
        assert_eq!(
            domain_from_hosts(&[H::DnsFailed, H::Pass]),
            D::HostDnsFailed
        );
        assert_eq!(domain_from_hosts(&[H::NoTlsa, H::InsecureHost]), D::NoTlsa);
        assert_eq!(domain_from_hosts(&[H::InsecureHost]), D::InsecureMxHost);
        assert_eq!(domain_from_hosts(&[H::HostNxdomain]), D::HostNxdomain);
        assert_eq!(domain_from_hosts(&[H::Pass, H::HostNxdomain]), D::DaneValid);
        assert_eq!(domain_from_hosts(&[H::NoTlsa, H::HostNxdomain]), D::NoTlsa);
        assert_eq!(domain_from_hosts(&[]), D::InvalidMx);
    }

    #[test]
    fn precedence_without_collecting_matches_the_plain_reading() {
        // The rule as first written (collect the hosts with an address, then look): the
        // crawl's version that collects nothing must agree on every list of up to 3 hosts.
        fn reference(hosts: &[H]) -> D {
            let with_address: Vec<H> = hosts
                .iter()
                .copied()
                .filter(|h| *h != H::HostNxdomain)
                .collect();
            let hosts = if with_address.is_empty() {
                hosts
            } else {
                &with_address
            };
            let any = |v: H| hosts.contains(&v);
            let dane = hosts
                .iter()
                .filter(|h| matches!(h, H::Pass | H::Failing | H::Unreachable))
                .count();
            match () {
                _ if hosts.is_empty() => D::InvalidMx,
                _ if any(H::Failing) => D::DaneFailing,
                _ if any(H::TlsaFailed) => D::TlsaFailed,
                _ if any(H::EncryptOnly) => D::EncryptOnly,
                _ if any(H::DnsFailed) => D::HostDnsFailed,
                _ if dane > 0 && dane < hosts.len() => D::DanePartial,
                _ if dane == hosts.len() && any(H::Pass) => D::DaneValid,
                _ if dane == hosts.len() => D::Unreachable,
                _ if any(H::NoTlsa) => D::NoTlsa,
                _ if any(H::InsecureHost) => D::InsecureMxHost,
                _ => D::HostNxdomain,
            }
        }
        let mut lists: Vec<Vec<H>> = vec![vec![]];
        for _ in 0..3 {
            let longer: Vec<Vec<H>> = lists
                .iter()
                .flat_map(|l| {
                    H::ALL.iter().map(move |h| {
                        let mut l = l.clone();
                        l.push(*h);
                        l
                    })
                })
                .collect();
            lists.extend(longer.into_iter().filter(|l| l.len() <= 3));
            lists.sort();
            lists.dedup();
        }
        assert!(lists.len() > H::ALL.len().pow(3));
        for l in &lists {
            assert_eq!(domain_from_hosts(l), reference(l), "{l:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for v in DomainVerdict::ALL {
            assert_eq!(v.as_str().parse::<DomainVerdict>(), Ok(*v));
        }
        for v in HostVerdict::ALL {
            assert_eq!(v.as_str().parse::<HostVerdict>(), Ok(*v));
        }
        for v in AddressVerdict::ALL {
            assert_eq!(v.as_str().parse::<AddressVerdict>(), Ok(*v));
        }
        assert!("dane-valid".parse::<DomainVerdict>().is_err());
    }
}
