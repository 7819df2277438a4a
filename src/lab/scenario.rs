//! The lab's world: every zone, MX host and server, as data.
//!
//! Zone bodies are RFC 1035 master-file text relative to the zone's origin. The lab adds the
//! SOA, the apex NS and its address, the delegations (NS + glue + DS) of child zones, and
//! signs. TLSA data is never written by hand: a placeholder names the certificate it is
//! computed from when the lab is generated, so the records always fit the servers:
//!
//! * `{tlsa U S M HOST}` — the record of usage U, selector S, matching type M for HOST's
//!   certificate (usage 2: the certificate of the CA that issued it; 3 or 1: its leaf);
//! * `{tlsa-bad U S M HOST}` — the same with the last data byte flipped (a mismatch);
//! * `{tlsa-old U S M HOST}` — for HOST's previous (rolled-over) key.
//!
//! The expected verdicts are *not* here: they are in `tests/lab/ground-truth.tsv`, written
//! from the primer's procedure by hand, so the lab and the checker cannot share a mistake.

use std::net::Ipv4Addr;

/// The nameserver address of the root zone.
pub const ROOT_NS: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 1);
/// The nameserver address of the TLD zones.
pub const TLD_NS: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 2);
/// The nameserver address of every zone below the TLDs.
pub const SLD_NS: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 3);
/// The lab's validating resolver.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 53);
/// A signed name the resolver self-check expects AD for: the private root itself.
pub const SELFCHECK_SIGNED: &str = ".";
/// A deliberately bogus name the resolver self-check expects SERVFAIL for.
pub const SELFCHECK_BOGUS: &str = "bogus.test.";

/// How a zone is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Signed, authenticated denial with NSEC.
    Nsec,
    /// Signed, authenticated denial with NSEC3 (no opt-out, 0 iterations, no salt: RFC 9276).
    Nsec3,
    /// Not signed, and no DS in the parent: an insecure delegation.
    Unsigned,
    /// Signed, but the parent's DS matches no DNSKEY of the zone: bogus.
    BogusDs,
    /// Signed with signatures that expired yesterday: bogus.
    Expired,
}

/// Which of the three authoritative servers publishes a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The root server.
    Root,
    /// The TLD server.
    Tld,
    /// The server for everything below.
    Sld,
}

impl Level {
    /// The server's address.
    pub fn addr(self) -> Ipv4Addr {
        match self {
            Level::Root => ROOT_NS,
            Level::Tld => TLD_NS,
            Level::Sld => SLD_NS,
        }
    }
    /// A short name for files and processes.
    pub fn name(self) -> &'static str {
        match self {
            Level::Root => "root",
            Level::Tld => "tld",
            Level::Sld => "sld",
        }
    }
}

/// One zone of the private hierarchy.
#[derive(Debug)]
pub struct ZoneSpec {
    /// The zone apex, absolute (`.` for the root).
    pub origin: &'static str,
    /// How it is signed.
    pub signing: Signing,
    /// The records besides SOA, apex NS and delegations (relative to the origin).
    pub body: &'static str,
}

impl ZoneSpec {
    /// The server that publishes it, from its depth.
    pub fn level(&self) -> Level {
        match self
            .origin
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .count()
        {
            0 => Level::Root,
            1 => Level::Tld,
            _ => Level::Sld,
        }
    }
}

/// What listens on port 25 of an MX host's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Smtp {
    /// Postfix with STARTTLS and a self-signed certificate for the host name.
    SelfSigned,
    /// Postfix with STARTTLS, a leaf issued by the lab's private CA, the CA sent in the chain.
    PrivateCa,
    /// Postfix without STARTTLS (a certificate is still generated, for the TLSA records).
    NoStarttls,
    /// Postfix with STARTTLS that speaks only TLS 1.0 (a self-signed certificate).
    Tls10Only,
    /// Nothing: connections are refused.
    Closed,
}

/// An MX host of the lab.
#[derive(Debug)]
pub struct HostSpec {
    /// The host name (must match its A record in a zone body).
    pub name: &'static str,
    /// Its IPv4 address.
    pub v4: Ipv4Addr,
    /// Whether it also listens on `[::1]:25` (and has an AAAA `::1`).
    pub v6_loopback: bool,
    /// What listens.
    pub smtp: Smtp,
    /// Whether an older key exists for `{tlsa-old …}` (a rollover in progress).
    pub old_key: bool,
    /// The name in the certificate, when it differs from the host name (a name-check case).
    pub cert_name: Option<&'static str>,
}

const fn host(name: &'static str, last: u8, smtp: Smtp) -> HostSpec {
    HostSpec {
        name,
        v4: Ipv4Addr::new(127, 25, 0, last),
        v6_loopback: false,
        smtp,
        old_key: false,
        cert_name: None,
    }
}

/// Every MX host of the lab (one SMTP listener per address).
pub const HOSTS: &[HostSpec] = &[
    host("mx.ee311.test", 1, Smtp::SelfSigned),
    host("mx.ta211.test", 2, Smtp::PrivateCa),
    host("mx.ee301.example", 3, Smtp::SelfSigned),
    host("mx.ee312.example", 4, Smtp::SelfSigned),
    host("mx.mismatch.test", 5, Smtp::SelfSigned),
    host("mx.notlsa.test", 6, Smtp::SelfSigned),
    host("mx.unsigned.test", 7, Smtp::SelfSigned),
    host("mail.unsigned-hoster.test", 8, Smtp::SelfSigned),
    host("mx.nostarttls.test", 10, Smtp::NoStarttls),
    host("mx.tlsacname.test", 11, Smtp::SelfSigned),
    host("mx.unusable.test", 12, Smtp::SelfSigned),
    HostSpec {
        name: "mx.dualstack.test",
        v4: Ipv4Addr::new(127, 25, 0, 13),
        v6_loopback: true,
        smtp: Smtp::SelfSigned,
        old_key: false,
        cert_name: None,
    },
    host("mx1.partial.example", 14, Smtp::SelfSigned),
    host("mx2.partial.example", 15, Smtp::SelfSigned),
    HostSpec {
        name: "mx.rollover.example",
        v4: Ipv4Addr::new(127, 25, 0, 16),
        v6_loopback: false,
        smtp: Smtp::SelfSigned,
        old_key: true,
        cert_name: None,
    },
    host("mx1.backup.example", 17, Smtp::SelfSigned),
    host("mx2.backup.example", 18, Smtp::SelfSigned),
    host("mx1.hoster.example", 20, Smtp::SelfSigned),
    host("smtp.tlsa-hub.example", 21, Smtp::SelfSigned),
    host("mx.mailco.test", 22, Smtp::SelfSigned),
    HostSpec {
        name: "mx.ta-wrongname.test",
        v4: Ipv4Addr::new(127, 25, 0, 23),
        v6_loopback: false,
        smtp: Smtp::PrivateCa,
        old_key: false,
        cert_name: Some("mx.elsewhere.test"),
    },
    host("mx.tls10.test", 24, Smtp::Tls10Only),
    host("mx.refused.test", 99, Smtp::Closed),
];

/// Every zone of the lab.
pub const ZONES: &[ZoneSpec] = &[
    ZoneSpec {
        origin: ".",
        signing: Signing::Nsec,
        body: "",
    },
    ZoneSpec {
        origin: "test.",
        signing: Signing::Nsec,
        body: "",
    },
    ZoneSpec {
        origin: "example.",
        signing: Signing::Nsec3,
        body: "",
    },
    // --- DANE-EE 3 1 1, valid.
    ZoneSpec {
        origin: "ee311.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.1\n_25._tcp.mx TLSA {tlsa 3 1 1 mx.ee311.test}\n",
    },
    // --- DANE-TA 2 1 1 via the private CA, sent in the chain.
    ZoneSpec {
        origin: "ta211.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.2\n_25._tcp.mx TLSA {tlsa 2 1 1 mx.ta211.test}\n",
    },
    // --- DANE-TA whose leaf names another host: the name check must fail.
    ZoneSpec {
        origin: "ta-wrongname.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.23\n_25._tcp.mx TLSA {tlsa 2 1 1 mx.ta-wrongname.test}\n",
    },
    // --- DANE-EE 3 0 1 and 3 1 2, valid (under the NSEC3 TLD, NSEC3-signed).
    ZoneSpec {
        origin: "ee301.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx\nmx A 127.25.0.3\n_25._tcp.mx TLSA {tlsa 3 0 1 mx.ee301.example}\n",
    },
    ZoneSpec {
        origin: "ee312.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx\nmx A 127.25.0.4\n_25._tcp.mx TLSA {tlsa 3 1 2 mx.ee312.example}\n",
    },
    // --- TLSA digest that matches nothing.
    ZoneSpec {
        origin: "mismatch.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.5\n_25._tcp.mx TLSA {tlsa-bad 3 1 1 mx.mismatch.test}\n",
    },
    // --- Signed, secure NODATA for TLSA.
    ZoneSpec {
        origin: "notlsa.test.",
        signing: Signing::Nsec,
        // The CNAMEs make chains whose security is that of their weakest link.
        body: "@ MX 10 mx\nmx A 127.25.0.6\ninto-unsigned CNAME mx.unsigned.test.\n\
               into-bogus CNAME bogus.test.\n",
    },
    // --- Unsigned domain: its (correct) TLSA must be ignored.
    ZoneSpec {
        origin: "unsigned.test.",
        signing: Signing::Unsigned,
        body: "@ MX 10 mx\nmx A 127.25.0.7\nalias CNAME mx\n_25._tcp.mx TLSA {tlsa 3 1 1 mx.unsigned.test}\n",
    },
    // --- Signed domain whose MX host lives in an unsigned zone (with TLSA that must be ignored).
    ZoneSpec {
        origin: "insecurehost.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mail.unsigned-hoster.test.\n",
    },
    ZoneSpec {
        origin: "unsigned-hoster.test.",
        signing: Signing::Unsigned,
        body: "mail A 127.25.0.8\n_25._tcp.mail TLSA {tlsa 3 1 1 mail.unsigned-hoster.test}\n",
    },
    // --- Two primary MX hosts, only one with TLSA.
    ZoneSpec {
        origin: "partial.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx1\n@ MX 10 mx2\nmx1 A 127.25.0.14\nmx2 A 127.25.0.15\n\
               _25._tcp.mx1 TLSA {tlsa 3 1 1 mx1.partial.example}\n",
    },
    // --- TLSA published, STARTTLS not offered.
    ZoneSpec {
        origin: "nostarttls.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.10\n_25._tcp.mx TLSA {tlsa 3 1 1 mx.nostarttls.test}\n",
    },
    // --- Bogus: the DS in test. matches no DNSKEY here.
    ZoneSpec {
        origin: "bogus.test.",
        signing: Signing::BogusDs,
        body: "@ MX 10 mx.ee311.test.\n@ A 127.25.0.1\n",
    },
    // --- Bogus: signatures expired.
    ZoneSpec {
        origin: "expired.example.",
        signing: Signing::Expired,
        body: "@ MX 10 mx.ee311.test.\n",
    },
    // --- TLSA fine, but the server speaks only TLS 1.0 (which rustls and OpenSSL 3 refuse).
    ZoneSpec {
        origin: "tls10.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.24\n_25._tcp.mx TLSA {tlsa 3 1 1 mx.tls10.test}\n",
    },
    // --- Hostile SMTP servers (src/lab/hostile.rs), each behind an MX host with usable TLSA.
    ZoneSpec {
        origin: "hostile.test.",
        signing: Signing::Nsec,
        body: "slowbanner MX 10 mx.slowbanner\n\
               mx.slowbanner A 127.25.1.1\n\
               _25._tcp.mx.slowbanner TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               endless250 MX 10 mx.endless250\n\
               mx.endless250 A 127.25.1.2\n\
               _25._tcp.mx.endless250 TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               longline MX 10 mx.longline\n\
               mx.longline A 127.25.1.3\n\
               _25._tcp.mx.longline TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               greet421 MX 10 mx.greet421\n\
               mx.greet421 A 127.25.1.4\n\
               _25._tcp.mx.greet421 TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               starttls454 MX 10 mx.starttls454\n\
               mx.starttls454 A 127.25.1.5\n\
               _25._tcp.mx.starttls454 TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               garbagehello MX 10 mx.garbagehello\n\
               mx.garbagehello A 127.25.1.6\n\
               _25._tcp.mx.garbagehello TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               closehandshake MX 10 mx.closehandshake\n\
               mx.closehandshake A 127.25.1.7\n\
               _25._tcp.mx.closehandshake TLSA {tlsa 3 1 1 mx.ee311.test}\n\
               pipelined MX 10 mx.pipelined\n\
               mx.pipelined A 127.25.1.8\n\
               _25._tcp.mx.pipelined TLSA {tlsa 3 1 1 mx.ee311.test}\n",
    },
    // --- MX host that refuses connections (TLSA is fine).
    ZoneSpec {
        origin: "refused.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.99\n_25._tcp.mx TLSA {tlsa 3 1 1 mx.refused.test}\n",
    },
    // --- TLSA reached through a CNAME into another signed zone (base domain stays the host).
    ZoneSpec {
        origin: "tlsacname.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.11\n\
               _25._tcp.mx CNAME _25._tcp.mx.tlsacname.tlsa-hub.example.\n",
    },
    ZoneSpec {
        origin: "tlsa-hub.example.",
        signing: Signing::Nsec3,
        body: "_25._tcp.mx.tlsacname TLSA {tlsa 3 1 1 mx.tlsacname.test}\n\
               smtp A 127.25.0.21\n_25._tcp.smtp TLSA {tlsa 3 1 1 smtp.tlsa-hub.example}\n",
    },
    // --- MX host that is itself a CNAME into another signed zone (base domain = target).
    ZoneSpec {
        origin: "cnamehost.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx CNAME smtp.tlsa-hub.example.\n",
    },
    // --- Rollover: stale + current 3 1 1.
    ZoneSpec {
        origin: "rollover.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx\nmx A 127.25.0.16\n\
               _25._tcp.mx TLSA {tlsa-old 3 1 1 mx.rollover.example}\n\
               _25._tcp.mx TLSA {tlsa 3 1 1 mx.rollover.example}\n",
    },
    // --- Only unusable records: PKIX usages and a 31-byte SHA-256.
    ZoneSpec {
        origin: "unusable.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.12\n\
               _25._tcp.mx TLSA {tlsa 1 1 1 mx.unusable.test}\n\
               _25._tcp.mx TLSA {tlsa 0 0 1 mx.unusable.test}\n\
               _25._tcp.mx TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n",
    },
    // --- Null MX.
    ZoneSpec {
        origin: "nullmx.test.",
        signing: Signing::Nsec,
        body: "@ MX 0 .\n",
    },
    // --- Primary valid, lower-preference backup without TLSA.
    ZoneSpec {
        origin: "backup.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx1\n@ MX 20 mx2\nmx1 A 127.25.0.17\nmx2 A 127.25.0.18\n\
               _25._tcp.mx1 TLSA {tlsa 3 1 1 mx1.backup.example}\n",
    },
    // --- A and AAAA (::1), both serving the same certificate.
    ZoneSpec {
        origin: "dualstack.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx\nmx A 127.25.0.13\nmx AAAA ::1\n\
               _25._tcp.mx TLSA {tlsa 3 1 1 mx.dualstack.test}\n",
    },
    // --- No MX at all (the implicit MX is not surveyed).
    ZoneSpec {
        origin: "nomx.test.",
        signing: Signing::Nsec,
        body: "@ A 127.25.0.1\n",
    },
    // --- An MX target that is an IP address.
    ZoneSpec {
        origin: "ipmx.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 127.25.0.1.\n",
    },
    // --- A provider with DANE, hosting many domains on one MX host.
    ZoneSpec {
        origin: "hoster.example.",
        signing: Signing::Nsec3,
        body: "mx1 A 127.25.0.20\n_25._tcp.mx1 TLSA {tlsa 3 1 1 mx1.hoster.example}\n",
    },
    ZoneSpec {
        origin: "shop1.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx1.hoster.example.\n",
    },
    ZoneSpec {
        origin: "shop2.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx1.hoster.example.\n",
    },
    ZoneSpec {
        origin: "shop3.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx1.hoster.example.\n",
    },
    ZoneSpec {
        origin: "shop4.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx1.hoster.example.\n",
    },
    ZoneSpec {
        origin: "shop5.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx1.hoster.example.\n",
    },
    // A customer of the DANE provider whose own zone is unsigned: not a DANE domain.
    ZoneSpec {
        origin: "shop6.test.",
        signing: Signing::Unsigned,
        body: "@ MX 10 mx1.hoster.example.\n",
    },
    // --- A signed provider without TLSA (a slow adopter) and its customers.
    ZoneSpec {
        origin: "mailco.test.",
        signing: Signing::Nsec,
        body: "mx A 127.25.0.22\n",
    },
    ZoneSpec {
        origin: "cust1.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx.mailco.test.\n",
    },
    ZoneSpec {
        origin: "cust2.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx.mailco.test.\n",
    },
];

/// The months the lab can play: month 1 is the world above ([`ZONES`]), month 2 the same world
/// a month later with the changes of [`MONTH2`].
pub const MONTHS: u8 = 2;

/// What changed by month 2, so month-over-month reports have real change to explain.
///
/// Each entry replaces the month-1 zone of the same origin, or is a new zone. The expected
/// effect on the reports is in `tests/lab/month2-changes.tsv` (per domain, with its cause) and
/// `tests/lab/month2-rank.tsv` (the rank table), written by hand:
///
/// * mailco.test publishes TLSA for its MX host (cust1.test, cust2.example: TLSA fixed);
/// * hoster.example's TLSA no longer matches its certificate (shop1.test, shop3.test,
///   shop4.example: TLSA broke);
/// * shop5.example moves from hoster.example to mx.mailco.test (moved);
/// * dualstack.test loses its DS (its zone is now unsigned: DNSSEC lost);
/// * shop7.test is new in the zone list and shop2.test left it (`zonelists/lab-month2.txt`).
pub const MONTH2: &[ZoneSpec] = &[
    ZoneSpec {
        origin: "mailco.test.",
        signing: Signing::Nsec,
        body: "mx A 127.25.0.22\n_25._tcp.mx TLSA {tlsa 3 1 1 mx.mailco.test}\n",
    },
    ZoneSpec {
        origin: "hoster.example.",
        signing: Signing::Nsec3,
        body: "mx1 A 127.25.0.20\n_25._tcp.mx1 TLSA {tlsa-bad 3 1 1 mx1.hoster.example}\n",
    },
    ZoneSpec {
        origin: "shop5.example.",
        signing: Signing::Nsec3,
        body: "@ MX 10 mx.mailco.test.\n",
    },
    ZoneSpec {
        origin: "dualstack.test.",
        signing: Signing::Unsigned,
        body: "@ MX 10 mx\nmx A 127.25.0.13\nmx AAAA ::1\n\
               _25._tcp.mx TLSA {tlsa 3 1 1 mx.dualstack.test}\n",
    },
    ZoneSpec {
        origin: "shop7.test.",
        signing: Signing::Nsec,
        body: "@ MX 10 mx.mailco.test.\n",
    },
];

/// The zones of the lab in `month` (1 = [`ZONES`]; 2 = with [`MONTH2`] applied).
pub fn zones(month: u8) -> Vec<&'static ZoneSpec> {
    let changes: &[ZoneSpec] = if month >= 2 { MONTH2 } else { &[] };
    let mut v: Vec<&'static ZoneSpec> = ZONES
        .iter()
        .map(|z| changes.iter().find(|c| c.origin == z.origin).unwrap_or(z))
        .collect();
    v.extend(
        changes
            .iter()
            .filter(|c| !ZONES.iter().any(|z| z.origin == c.origin)),
    );
    v
}

/// The zone list a lab crawl reads by default in `month`.
pub fn zonelist(month: u8) -> &'static str {
    if month >= 2 {
        "zonelists/lab-month2.txt"
    } else {
        "zonelists/lab.txt"
    }
}

/// The zone that contains `name` (the longest origin that is a suffix of it).
pub fn zone_of(name: &str) -> Option<&'static ZoneSpec> {
    let name = format!("{}.", name.trim_end_matches('.'));
    ZONES
        .iter()
        .filter(|z| {
            z.origin == "." || name == z.origin || name.ends_with(&format!(".{}", z.origin))
        })
        .max_by_key(|z| z.origin.len())
}

/// The parent zone of a zone (`None` for the root).
pub fn parent_of(zone: &ZoneSpec) -> Option<&'static ZoneSpec> {
    if zone.origin == "." {
        return None;
    }
    let rest = zone.origin.split_once('.').map(|(_, r)| r).unwrap_or(".");
    zone_of(if rest.is_empty() { "." } else { rest })
}

/// The host spec for a name.
pub fn host_spec(name: &str) -> Option<&'static HostSpec> {
    HOSTS.iter().find(|h| h.name == name.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_is_consistent() {
        for z in ZONES {
            if z.origin != "." {
                let p = parent_of(z).expect("every zone has a parent");
                assert!(
                    p.origin.len() < z.origin.len(),
                    "{} under {}",
                    z.origin,
                    p.origin
                );
            }
        }
        assert_eq!(parent_of(&ZONES[1]).map(|p| p.origin), Some("."));
        for h in HOSTS {
            let z = zone_of(h.name).expect("host in a zone");
            assert_ne!(z.origin, ".", "{}", h.name);
        }
        let mut addrs: Vec<_> = HOSTS.iter().map(|h| h.v4).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), HOSTS.len(), "one address per host");
    }

    #[test]
    fn month2_changes_apply() {
        assert_eq!(zones(1).len(), ZONES.len());
        let m2 = zones(2);
        assert_eq!(m2.len(), ZONES.len() + 1, "shop7.test is the one new zone");
        for c in MONTH2 {
            assert!(parent_of(c).is_some(), "{}", c.origin);
            assert_eq!(m2.iter().filter(|z| z.origin == c.origin).count(), 1);
            assert!(
                m2.iter()
                    .any(|z| z.origin == c.origin && z.body == c.body && z.signing == c.signing),
                "{}",
                c.origin
            );
        }
    }
}
