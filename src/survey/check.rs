//! The RFC 7672 decision procedure for one domain, end to end (DNS → SMTP → matching).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use futures::future::join_all;
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::dane::{self, TlsaRecord};
use crate::dns::{Lookup, Resolver, Security};
use crate::names::{display, invalid_mx_target, provider_of};
use crate::smtp::{self, ProbeConfig, ProbeErrorKind, ProbeResult, Stage};
use crate::verdict::{
    domain_from_hosts, host_from_addresses, AddressVerdict, DomainVerdict, HostVerdict,
    TAXONOMY_VERSION,
};

use super::policy::special_purpose;

/// Most MX hosts checked per domain (Postfix tries 5 addresses per delivery; 32 hosts covers
/// every sane MX RRset while bounding what a hostile one can make us do).
pub const MAX_MX_HOSTS: usize = 32;
/// Most addresses probed per MX host.
pub const MAX_ADDRESSES_PER_HOST: usize = 16;

/// Everything the procedure needs besides the domain: the resolver, the probe settings, the
/// time the certificates are judged at, and the address policy.
///
/// Exists so `check`, the crawl and the tests run the same procedure with explicit inputs
/// (the time is an input, never the wall clock, so results are reproducible).
#[derive(Debug)]
pub struct CheckContext {
    /// The validating resolver (already self-checked).
    pub resolver: Resolver,
    /// SMTP probe settings (EHLO name, timeouts, size limits).
    pub probe: ProbeConfig,
    /// Unix time at which certificate validity is judged.
    pub at: i64,
    /// Probe loopback addresses (the lab); other special-purpose addresses stay skipped.
    pub allow_loopback: bool,
    /// SMTP port (25; the lab can only use 25 too, but tests may override).
    pub smtp_port: u16,
}

/// The MX RRset as seen, with its security.
#[derive(Debug, Serialize)]
pub struct MxReport {
    /// How the MX lookup came back (`secure data (2)`, `SERVFAIL (EDE 9: …)`, …).
    pub lookup: String,
    /// Security of the answer, when there was one.
    pub security: Option<Security>,
    /// The records: preference and exchange.
    pub records: Vec<(u16, String)>,
}

/// What one address said and how it was judged.
#[derive(Debug, Serialize)]
pub struct AddressReport {
    /// The address probed (port 25).
    pub address: IpAddr,
    /// The judgement.
    pub verdict: AddressVerdict,
    /// Why, in a sentence.
    pub reason: String,
    /// The TLSA record that matched, in presentation form.
    pub matched: Option<String>,
    /// What the server would need: its leaf as `3 1 1` and the SHA-256 of each presented cert.
    pub leaf_3_1_1: Option<String>,
    /// The probe's record (banner, EHLO, TLS version, cipher, stage, error).
    pub probe: Option<ProbeResult>,
}

/// One MX host: its DNS facts and its addresses.
#[derive(Debug, Serialize)]
pub struct HostReport {
    /// The exchange name as published in the MX record.
    pub name: String,
    /// Its preference.
    pub preference: u16,
    /// Whether it is a primary (lowest-preference) host.
    pub primary: bool,
    /// How the A and AAAA lookups came back.
    pub address_lookup: String,
    /// The CNAME-expanded name, when the host is an alias.
    pub canonical: Option<String>,
    /// The addresses found.
    pub addresses: Vec<IpAddr>,
    /// How each TLSA candidate came back, in the order asked.
    pub tlsa_lookups: Vec<(String, String)>,
    /// The TLSA base domain: the name whose `_25._tcp` RRset was used (RFC 7672 §2.2.3).
    pub tlsa_base_domain: Option<String>,
    /// The TLSA RRset as published.
    pub tlsa: Vec<String>,
    /// The usable subset.
    pub usable: Vec<String>,
    /// The unusable records and why.
    pub unusable: Vec<(String, String)>,
    /// Per-address results.
    pub probes: Vec<AddressReport>,
    /// The host verdict.
    pub verdict: HostVerdict,
    /// Why, in a sentence.
    pub reason: String,
}

/// The full result of checking one domain.
///
/// Exists as the single record that `check` prints (human or JSON) and that the crawl will
/// write as a snapshot row: every verdict comes with the evidence it was drawn from.
#[derive(Debug, Serialize)]
pub struct DomainReport {
    /// The domain, normalised.
    pub domain: String,
    /// Version of the verdict taxonomy the verdicts belong to.
    pub taxonomy_version: u32,
    /// The time certificates were judged at (unix seconds).
    pub at: i64,
    /// The MX lookup.
    pub mx: MxReport,
    /// The primary MX hosts.
    pub primary_hosts: Vec<String>,
    /// The provider (registrable domain of the smallest primary host).
    pub provider: Option<String>,
    /// The providers of all primary hosts.
    pub providers: Vec<String>,
    /// Every MX host checked, primary first.
    pub hosts: Vec<HostReport>,
    /// The headline verdict over the primary hosts.
    pub verdict: DomainVerdict,
    /// The verdict over every MX host (RFC 7672 expects all of them configured).
    pub all_hosts_verdict: Option<DomainVerdict>,
    /// Why, in a sentence.
    pub reason: String,
}

fn mx_of(r: &RData) -> Option<(u16, Name)> {
    match r {
        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
        _ => None,
    }
}

fn tlsa_of(r: &RData) -> Option<TlsaRecord> {
    match r {
        RData::TLSA(t) => Some(TlsaRecord {
            usage: u8::from(t.cert_usage),
            selector: u8::from(t.selector),
            matching_type: u8::from(t.matching),
            data: t.cert_data.clone(),
        }),
        _ => None,
    }
}

fn addr_of(r: &RData) -> Option<IpAddr> {
    match r {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// Runs the whole procedure for `domain` (already normalised).
pub async fn check_domain(ctx: &CheckContext, domain: &Name) -> DomainReport {
    let mut report = DomainReport {
        domain: display(domain),
        taxonomy_version: TAXONOMY_VERSION,
        at: ctx.at,
        mx: MxReport {
            lookup: String::new(),
            security: None,
            records: Vec::new(),
        },
        primary_hosts: Vec::new(),
        provider: None,
        providers: Vec::new(),
        hosts: Vec::new(),
        verdict: DomainVerdict::MxLookupFailed,
        all_hosts_verdict: None,
        reason: String::new(),
    };
    let mx = ctx.resolver.lookup(domain, RecordType::MX, mx_of).await;
    report.mx.lookup = mx.describe();
    report.mx.security = mx.security();
    if let Some(d) = mx.data() {
        report.mx.records = d.records.iter().map(|(p, n)| (*p, display(n))).collect();
        if !(d.records.len() == 1 && d.records[0].1.is_root()) {
            set_providers(&mut report, &d.records);
        }
    }
    let (verdict, reason) = match &mx {
        // RFC 7505: a lone `0 .` says the domain takes no mail, signed or not.
        Lookup::Data(d)
            if d.records.len() == 1 && d.records[0].0 == 0 && d.records[0].1.is_root() =>
        {
            (
                DomainVerdict::NullMx,
                format!(
                    "null MX (RFC 7505, {}): the domain accepts no mail",
                    d.security
                ),
            )
        }
        Lookup::Failed(e) => (
            DomainVerdict::MxLookupFailed,
            format!("MX lookup failed: {e}"),
        ),
        Lookup::NxDomain(d) => (
            DomainVerdict::Nxdomain,
            format!("the domain does not exist ({} denial)", d.security),
        ),
        Lookup::NoData(d) => (
            DomainVerdict::NoMx,
            format!(
                "no MX RRset ({} NODATA); the implicit MX is not surveyed",
                d.security
            ),
        ),
        Lookup::Data(d) if d.security == Security::Insecure => (
            DomainVerdict::Insecure,
            "the MX RRset is not DNSSEC-signed, so DANE does not apply".into(),
        ),
        Lookup::Data(d) => return check_hosts(ctx, domain, &d.records, report).await,
    };
    report.verdict = verdict;
    report.reason = reason;
    report
}

/// The MX hosts sorted by preference then name, each once at its lowest preference, and the
/// lowest (primary) preference.
fn sorted_hosts(records: &[(u16, Name)]) -> (Vec<(u16, Name)>, u16) {
    let mut by_host: BTreeMap<String, (u16, Name)> = BTreeMap::new();
    for (pref, name) in records {
        let e = by_host
            .entry(display(name))
            .or_insert((*pref, name.clone()));
        e.0 = e.0.min(*pref);
    }
    let mut hosts: Vec<(u16, Name)> = by_host.into_values().collect();
    hosts.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| display(&a.1).cmp(&display(&b.1)))
    });
    let lowest = hosts.first().map(|h| h.0).unwrap_or(0);
    (hosts, lowest)
}

/// Fills the primary hosts and providers from an MX RRset (secure or not: the provider of an
/// unsigned domain is still worth knowing for adoption reports).
fn set_providers(report: &mut DomainReport, records: &[(u16, Name)]) {
    let (hosts, lowest) = sorted_hosts(records);
    let primary = hosts.iter().filter(|h| h.0 == lowest);
    report.primary_hosts = primary.clone().map(|h| display(&h.1)).collect();
    report.providers = primary
        .filter(|h| invalid_mx_target(&h.1).is_none())
        .filter_map(|h| provider_of(&display(&h.1)))
        .collect();
    report.providers.sort();
    report.providers.dedup();
    report.provider = report.providers.first().cloned();
}

async fn check_hosts(
    ctx: &CheckContext,
    domain: &Name,
    records: &[(u16, Name)],
    mut report: DomainReport,
) -> DomainReport {
    let (hosts, lowest) = sorted_hosts(records);
    let primary: Vec<&(u16, Name)> = hosts.iter().filter(|h| h.0 == lowest).collect();
    if let Some((name, why)) = primary
        .iter()
        .find_map(|h| invalid_mx_target(&h.1).map(|why| (display(&h.1), why)))
    {
        report.verdict = DomainVerdict::InvalidMx;
        report.reason = format!("primary MX host {name} is invalid: {why}");
        return report;
    }

    // MX RRsets are peer input: check at most MAX_MX_HOSTS hosts (primary ones first).
    let checks = hosts
        .iter()
        .take(MAX_MX_HOSTS)
        .map(|(pref, name)| async move {
            let mut h = check_host(ctx, domain, name).await;
            h.preference = *pref;
            h.primary = *pref == lowest;
            h
        });
    report.hosts = join_all(checks).await;

    let primary_verdicts: Vec<HostVerdict> = report
        .hosts
        .iter()
        .filter(|h| h.primary)
        .map(|h| h.verdict)
        .collect();
    let all: Vec<HostVerdict> = report.hosts.iter().map(|h| h.verdict).collect();
    report.verdict = domain_from_hosts(&primary_verdicts);
    report.all_hosts_verdict = Some(domain_from_hosts(&all));
    report.reason = report
        .hosts
        .iter()
        .filter(|h| h.primary)
        .map(|h| format!("{}: {} ({})", h.name, h.verdict, h.reason))
        .collect::<Vec<_>>()
        .join("; ");
    report
}

/// Steps 3–7 of the procedure for one MX host.
pub async fn check_host(ctx: &CheckContext, domain: &Name, host: &Name) -> HostReport {
    let mut r = HostReport {
        name: display(host),
        preference: 0,
        primary: false,
        address_lookup: String::new(),
        canonical: None,
        addresses: Vec::new(),
        tlsa_lookups: Vec::new(),
        tlsa_base_domain: None,
        tlsa: Vec::new(),
        usable: Vec::new(),
        unusable: Vec::new(),
        probes: Vec::new(),
        verdict: HostVerdict::DnsFailed,
        reason: String::new(),
    };
    if let Some(why) = invalid_mx_target(host) {
        r.verdict = HostVerdict::HostNxdomain;
        r.reason = why;
        return r;
    }
    let (a, aaaa) = futures::join!(
        ctx.resolver.lookup(host, RecordType::A, addr_of),
        ctx.resolver.lookup(host, RecordType::AAAA, addr_of)
    );
    r.address_lookup = format!("A: {}, AAAA: {}", a.describe(), aaaa.describe());
    for l in [&a, &aaaa] {
        if let Lookup::Failed(e) = l {
            r.verdict = HostVerdict::DnsFailed;
            r.reason = format!("address lookup failed: {e}");
            return r;
        }
    }
    for l in [&a, &aaaa] {
        if let Some(d) = l.data() {
            r.addresses.extend(d.records.iter().copied());
        }
    }
    // Address RRsets are peer input too: probe at most MAX_ADDRESSES_PER_HOST of them, half
    // of each family when both are present (so IPv6 is never crowded out by IPv4).
    r.addresses.sort();
    r.addresses.dedup();
    if r.addresses.len() > MAX_ADDRESSES_PER_HOST {
        let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = r.addresses.iter().partition(|a| a.is_ipv4());
        let half = MAX_ADDRESSES_PER_HOST / 2;
        let take4 = v4.len().min(MAX_ADDRESSES_PER_HOST - v6.len().min(half));
        let take6 = MAX_ADDRESSES_PER_HOST - take4;
        r.addresses = v4
            .into_iter()
            .take(take4)
            .chain(v6.into_iter().take(take6))
            .collect();
    }
    let canonical = a
        .data()
        .filter(|d| !d.cname_chain.is_empty())
        .or_else(|| aaaa.data().filter(|d| !d.cname_chain.is_empty()))
        .map(|d| d.canonical.clone());
    r.canonical = canonical.as_ref().map(display);
    let secure =
        a.security() == Some(Security::Secure) && aaaa.security() == Some(Security::Secure);
    if r.addresses.is_empty() {
        r.verdict = HostVerdict::HostNxdomain;
        r.reason = format!("no address ({})", r.address_lookup);
        return r;
    }
    if !secure {
        r.verdict = HostVerdict::InsecureHost;
        r.reason = "the host's address records are not DNSSEC-signed, so TLSA there is not \
                    looked up (RFC 7672 §2.2.2)"
            .into();
        r.probes = probe_all(ctx, host, &r.addresses, None, &[], &[]).await;
        return r;
    }

    // Step 4: TLSA candidates — the CNAME-expanded name first (chain secure), then the host.
    let mut candidates: Vec<Name> = Vec::new();
    if let Some(c) = &canonical {
        candidates.push(c.clone());
    }
    candidates.push(host.clone());
    let mut found: Option<(Name, Vec<TlsaRecord>)> = None;
    for base in &candidates {
        let qname = match Name::from_ascii("_25._tcp").and_then(|p| p.append_domain(base)) {
            Ok(q) => q,
            Err(e) => {
                r.verdict = HostVerdict::TlsaFailed;
                r.reason = format!("cannot form the TLSA name under {base}: {e}");
                return r;
            }
        };
        let l = ctx.resolver.lookup(&qname, RecordType::TLSA, tlsa_of).await;
        r.tlsa_lookups.push((display(&qname), l.describe()));
        match l {
            Lookup::Failed(e) => {
                r.verdict = HostVerdict::TlsaFailed;
                r.reason = format!("TLSA lookup at {} failed: {e}", display(&qname));
                return r;
            }
            Lookup::Data(d) if d.security == Security::Secure => {
                found = Some((base.clone(), d.records));
                break;
            }
            _ => {}
        }
    }
    let Some((base, rrset)) = found else {
        r.verdict = HostVerdict::NoTlsa;
        r.reason = "no secure TLSA RRset at any candidate base domain".into();
        r.probes = probe_all(ctx, host, &r.addresses, None, &[], &[]).await;
        return r;
    };
    r.tlsa_base_domain = Some(display(&base));
    r.tlsa = rrset.iter().map(|t| t.to_string()).collect();
    let usability = dane::usable_records(&rrset);
    r.usable = usability.usable.iter().map(|t| t.to_string()).collect();
    r.unusable = usability
        .unusable
        .iter()
        .map(|(t, why)| (t.to_string(), why.to_string()))
        .collect();
    // Reference identifiers (RFC 7672 §3.2.2): the base domain, the host as published, and the
    // domain itself (its MX RRset is secure whenever we get here).
    let mut refs = vec![display(&base), display(host), display(domain)];
    refs.dedup();
    r.probes = probe_all(
        ctx,
        &base,
        &r.addresses,
        Some(&rrset),
        &usability.usable,
        &refs,
    )
    .await;
    if usability.usable.is_empty() {
        r.verdict = HostVerdict::EncryptOnly;
        r.reason =
            "the TLSA RRset has no usable record: TLS is mandatory but unauthenticated".into();
        return r;
    }
    let verdicts: Vec<AddressVerdict> = r.probes.iter().map(|p| p.verdict).collect();
    r.verdict = host_from_addresses(&verdicts);
    r.reason = match r.verdict {
        HostVerdict::Pass => "every reachable address matches the TLSA records".into(),
        HostVerdict::Unreachable => "no address accepted an SMTP session".into(),
        _ => r
            .probes
            .iter()
            .filter(|p| {
                !matches!(
                    p.verdict,
                    AddressVerdict::Pass | AddressVerdict::Unreachable
                )
            })
            .map(|p| format!("{}: {}", p.address, p.reason))
            .collect::<Vec<_>>()
            .join("; "),
    };
    r
}

/// Probes every address of a host and judges it. `rrset` is `None` for hosts without TLSA
/// (the probe then only records what the server offers).
async fn probe_all(
    ctx: &CheckContext,
    sni: &Name,
    addresses: &[IpAddr],
    rrset: Option<&[TlsaRecord]>,
    usable: &[TlsaRecord],
    refs: &[String],
) -> Vec<AddressReport> {
    let sni = display(sni);
    let jobs = addresses.iter().map(|&ip| {
        let sni = sni.clone();
        async move {
            if let Some(why) = special_purpose(ip) {
                if !(ctx.allow_loopback && ip.is_loopback()) {
                    return AddressReport {
                        address: ip,
                        verdict: AddressVerdict::Skipped,
                        reason: format!(
                            "not probed: {why} address{}",
                            if ip.is_loopback() {
                                " (pass --allow-loopback for a lab)"
                            } else {
                                ""
                            }
                        ),
                        matched: None,
                        leaf_3_1_1: None,
                        probe: None,
                    };
                }
            }
            let probe = smtp::probe(SocketAddr::new(ip, ctx.smtp_port), &sni, &ctx.probe).await;
            // Matching parses certificates and checks signatures on peer input: keep that CPU
            // work off the async workers.
            let (at, rrset, usable, refs) = (
                ctx.at,
                rrset.map(<[_]>::to_vec),
                usable.to_vec(),
                refs.to_vec(),
            );
            let judged = tokio::task::spawn_blocking(move || {
                judge(at, ip, probe, rrset.as_deref(), &usable, &refs)
            })
            .await;
            // A panic in the matcher is our bug: surface it rather than record a made-up
            // verdict about somebody's server.
            judged.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        }
    });
    join_all(jobs).await
}

fn judge(
    at: i64,
    ip: IpAddr,
    probe: ProbeResult,
    rrset: Option<&[TlsaRecord]>,
    usable: &[TlsaRecord],
    refs: &[String],
) -> AddressReport {
    let leaf_3_1_1 = probe
        .chain
        .first()
        .and_then(|leaf| dane::tlsa_for(leaf, 3, 1, 1).ok())
        .map(|t| t.to_string());
    let authenticated = rrset.is_some() && !usable.is_empty();
    let (verdict, reason, matched) = if probe.is_unreachable() {
        let why = probe
            .error
            .as_ref()
            .map(|e| format!("{:?} at {:?}: {}", e.kind, e.stage, e.message))
            .unwrap_or_default();
        (
            AddressVerdict::Unreachable,
            format!("unreachable: {why}"),
            None,
        )
    } else if let Some(e) = &probe.error {
        let starttls = matches!(e.kind, ProbeErrorKind::StarttlsNotOffered)
            || (e.stage <= Stage::Starttls
                && !matches!(
                    e.kind,
                    ProbeErrorKind::Tls
                        | ProbeErrorKind::TlsIncompatible
                        | ProbeErrorKind::PipelinedData
                ));
        let v = match (authenticated, starttls) {
            (false, _) => AddressVerdict::NotAuthenticated,
            (true, true) => AddressVerdict::StarttlsMissing,
            (true, false) => AddressVerdict::TlsFailed,
        };
        (
            v,
            format!("{:?} at {:?}: {}", e.kind, e.stage, e.message),
            None,
        )
    } else if !authenticated {
        (
            AddressVerdict::NotAuthenticated,
            format!(
                "{} {} established; no usable TLSA to authenticate it",
                probe.tls_version.as_deref().unwrap_or("TLS"),
                probe.cipher.as_deref().unwrap_or("")
            ),
            None,
        )
    } else {
        let v = dane::verify(rrset.unwrap_or_default(), &probe.chain, refs, at);
        let verdict = match v.outcome {
            dane::MatchOutcome::Pass => AddressVerdict::Pass,
            dane::MatchOutcome::NoUsableRecords => AddressVerdict::NotAuthenticated,
            dane::MatchOutcome::TlsaMismatch => AddressVerdict::TlsaMismatch,
            dane::MatchOutcome::NameMismatch => AddressVerdict::NameMismatch,
            dane::MatchOutcome::CertExpired => AddressVerdict::CertExpired,
            dane::MatchOutcome::NotYetValid => AddressVerdict::NotYetValid,
            dane::MatchOutcome::ChainInvalid => AddressVerdict::ChainInvalid,
        };
        (verdict, v.detail, v.matched.map(|m| m.record.to_string()))
    };
    AddressReport {
        address: ip,
        verdict,
        reason,
        matched,
        leaf_3_1_1,
        probe: Some(probe),
    }
}
