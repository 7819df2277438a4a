//! The RFC 7672 decision procedure for one domain, end to end (DNS → SMTP → matching).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::future::join_all;
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::dane::{self, TlsaRecord};
use crate::dns::{Lookup, Resolver, Security};
use crate::names::{display, invalid_mx_target, provider_of};
use crate::smtp::{self, ProbeConfig, ProbeErrorKind, ProbeResult, Stage};
use crate::verdict::{
    domain_from_verdicts, host_from_addresses, AddressVerdict, DomainVerdict, HostVerdict,
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
    /// Also probe MX hosts that have no usable-or-not TLSA RRset (insecure hosts, hosts
    /// without TLSA). `check` does, to show what a sender would see; the crawl does not by
    /// default, because their verdict does not depend on the probe and a survey should not
    /// open SMTP sessions it does not need.
    pub probe_without_tlsa: bool,
}

/// What the probe stage returned for one address: a probe (shared, since one SMTP session
/// may serve several MX hosts with the same address and SNI), or why there was none.
#[derive(Debug, Clone)]
pub enum Probed {
    /// The probe ran.
    Done(Arc<ProbeResult>),
    /// Not probed, by policy (special-purpose address, opt-out); the reason in words.
    Skipped(String),
}

/// Who opens SMTP sessions: directly for `check`, through memo tables and politeness limits
/// for the crawl. Exists so both run the same decision procedure ([`check_host`]).
pub trait Prober: Sync {
    /// Probes `ip` (on the context's SMTP port) for MX host `host`, sending `sni`.
    fn probe(
        &self,
        ctx: &CheckContext,
        host: &Name,
        ip: IpAddr,
        sni: &str,
    ) -> impl Future<Output = Probed> + Send;
}

/// The prober of `check`: one session per address, special-purpose addresses skipped.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectProber;

impl Prober for DirectProber {
    async fn probe(&self, ctx: &CheckContext, _host: &Name, ip: IpAddr, sni: &str) -> Probed {
        if let Some(why) = address_policy(ctx, ip) {
            return Probed::Skipped(why);
        }
        Probed::Done(Arc::new(
            smtp::probe(SocketAddr::new(ip, ctx.smtp_port), sni, &ctx.probe).await,
        ))
    }
}

/// Why `ip` is never probed under the context's policy (special-purpose addresses, loopback
/// unless allowed), or `None`.
pub fn address_policy(ctx: &CheckContext, ip: IpAddr) -> Option<String> {
    let why = special_purpose(ip)?;
    if ctx.allow_loopback && ip.is_loopback() {
        return None;
    }
    Some(format!(
        "not probed: {why} address{}",
        if ip.is_loopback() {
            " (pass --allow-loopback for a lab)"
        } else {
            ""
        }
    ))
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

/// An MX host the procedure goes on with ([`sorted_hosts`]): each host once, at its lowest
/// preference.
///
/// Exists so that a host's printed name, its identity in the memo tables and in the rows, is
/// printed once per record and then found by position rather than printed again or found by
/// comparing names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// The host's lowest preference in the RRset.
    pub preference: u16,
    /// The host as first spelt in the RRset.
    pub name: Name,
    /// The position of that record in the RRset, and so in [`MxReport::records`], where its
    /// name is printed.
    pub record: usize,
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
    /// The leaf's DNS names (SAN dNSNames, else CN), at most [`MAX_LEAF_NAMES`]: the
    /// evidence for a name mismatch, and what lets a domain's own name count as a reference
    /// identifier (RFC 7672 §3.2.2) without probing again per domain.
    pub leaf_names: Vec<String>,
    /// The probe's record (banner, EHLO, TLS version, cipher, stage, error).
    pub probe: Option<Arc<ProbeResult>>,
}

/// Most leaf names kept per address (a certificate with more is hostile or absurd).
pub const MAX_LEAF_NAMES: usize = 1000;

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
    /// Secure when both address answers validated (null when a lookup failed).
    pub address_security: Option<Security>,
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
    /// The verdict comes from a DNS failure that may pass ([`DnsFailure::is_transient`](crate::dns::DnsFailure::is_transient)):
    /// worth asking again before the result stands for every domain the host serves.
    #[serde(skip)]
    pub transient_failure: bool,
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
    /// The MX lookup failed in a way that may pass ([`DnsFailure::is_transient`](crate::dns::DnsFailure::is_transient)).
    #[serde(skip)]
    pub transient_failure: bool,
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

/// Runs the whole procedure for `domain` (already normalised), probing directly.
pub async fn check_domain(ctx: &CheckContext, domain: &Name) -> DomainReport {
    let (mut report, hosts) = mx_stage(ctx, domain, display(domain)).await;
    let Some((hosts, lowest)) = hosts else {
        return report;
    };
    // MX RRsets are peer input: check at most MAX_MX_HOSTS hosts (primary ones first).
    let checks = hosts.iter().take(MAX_MX_HOSTS).map(|host| async move {
        let mut h = check_host(ctx, &host.name, &DirectProber).await;
        h.preference = host.preference;
        h.primary = host.preference == lowest;
        h
    });
    report.hosts = join_all(checks).await;
    let summaries: Vec<HostSummary> = report.hosts.iter().map(HostSummary::of).collect();
    let hosts: Vec<(bool, &HostSummary)> = report
        .hosts
        .iter()
        .zip(&summaries)
        .map(|(h, s)| (h.primary, s))
        .collect();
    let outcome = judge_domain(&report.domain, &hosts);
    // Show the address verdicts the domain was judged on (its own name may have passed a
    // DANE-TA leaf that the host alone did not).
    for (h, (verdict, addresses)) in report.hosts.iter_mut().zip(&outcome.hosts) {
        if h.verdict != *verdict {
            h.verdict = *verdict;
            h.reason = format!("{} (with the domain as reference identifier)", verdict);
        }
        for (a, v) in h.probes.iter_mut().zip(addresses) {
            if a.verdict != *v {
                a.verdict = *v;
                a.reason = format!(
                    "{} (a leaf name matches the domain {}, a reference identifier by RFC 7672 §3.2.2)",
                    a.reason, report.domain
                );
            }
        }
    }
    report.verdict = outcome.verdict;
    report.all_hosts_verdict = outcome.all_hosts_verdict;
    report.reason = outcome.reason;
    report
}

/// Steps 1–2 of the procedure: the MX lookup and what it decides alone. Returns the report
/// so far and, when the MX RRset is secure data naming valid primary hosts, the hosts to go
/// on with ([`sorted_hosts`]: each once, by preference, and the primary preference);
/// otherwise the report already holds the final verdict. `printed` is the domain's
/// [`display`] text, which the crawl has from its input.
pub async fn mx_stage(
    ctx: &CheckContext,
    domain: &Name,
    printed: String,
) -> (DomainReport, Option<(Vec<MxHost>, u16)>) {
    // Asked before the report exists: a domain's future is allocated per domain, and what
    // lives across this await makes every one of them larger.
    let mx = ctx.resolver.lookup(domain, RecordType::MX, mx_of).await;
    let mut report = DomainReport {
        domain: printed,
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
        transient_failure: false,
    };
    report.mx.lookup = mx.describe();
    report.mx.security = mx.security();
    // Each record's name printed once, and the hosts sorted once: the providers, the
    // invalid-target check and the host stage all use them.
    let mut sorted = None;
    let mut invalid_primary = None;
    if let Some(d) = mx.data() {
        report.mx.records = d.records.iter().map(|(p, n)| (*p, display(n))).collect();
        let (hosts, lowest) = sorted.insert(sorted_hosts(&d.records, &report.mx.records));
        invalid_primary = match d.records.as_slice() {
            // A lone root target: no provider, and invalid unless it is the null MX `0 .`
            // (judged below).
            [(_, root)] if root.is_root() => {
                invalid_mx_target(root).map(|why| (display(root), why))
            }
            _ => set_providers(&mut report, hosts, *lowest),
        };
    }
    let (verdict, reason) = match mx {
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
        Lookup::Failed(e) => {
            report.transient_failure = e.is_transient();
            (
                DomainVerdict::MxLookupFailed,
                format!("MX lookup failed: {e}"),
            )
        }
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
        Lookup::Data(_) => match invalid_primary {
            Some((name, why)) => (
                DomainVerdict::InvalidMx,
                format!("primary MX host {name} is invalid: {why}"),
            ),
            None => return (report, Some(sorted.unwrap_or_default())),
        },
    };
    report.verdict = verdict;
    report.reason = reason;
    (report, None)
}

/// The MX hosts sorted by preference then name, each once at its lowest preference, and the
/// lowest (primary) preference. `printed` is `records` with the names printed ([`display`]):
/// the text is both the identity of a host (names compare case-insensitively) and the
/// tie-break of the order.
pub fn sorted_hosts(records: &[(u16, Name)], printed: &[(u16, String)]) -> (Vec<MxHost>, u16) {
    debug_assert_eq!(records.len(), printed.len());
    // Most domains have a single MX record: nothing to sort or merge.
    if let [(preference, name)] = records {
        let host = MxHost {
            preference: *preference,
            name: name.clone(),
            record: 0,
        };
        return (vec![host], *preference);
    }
    let mut keyed: Vec<(&str, u16, usize)> = printed
        .iter()
        .enumerate()
        .map(|(i, (p, text))| (text.as_str(), *p, i))
        .collect();
    // Stable, so the first spelling of a host is the one kept.
    keyed.sort_by(|a, b| a.0.cmp(b.0));
    keyed.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.min(later.1);
        }
        same
    });
    keyed.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    let lowest = keyed.first().map_or(0, |h| h.1);
    let hosts = keyed
        .into_iter()
        .map(|(_, preference, record)| MxHost {
            preference,
            name: records[record].1.clone(),
            record,
        })
        .collect();
    (hosts, lowest)
}

/// Fills the primary hosts and providers from an MX RRset (secure or not: the provider of an
/// unsigned domain is still worth knowing for adoption reports), the hosts' names printed in
/// `report.mx.records` already. Returns the first primary host that cannot be a mail host,
/// and why ([`invalid_mx_target`], asked once per host).
fn set_providers(
    report: &mut DomainReport,
    hosts: &[MxHost],
    lowest: u16,
) -> Option<(String, String)> {
    let primary = hosts.iter().filter(|h| h.preference == lowest);
    report.primary_hosts = primary
        .clone()
        .map(|h| report.mx.records[h.record].1.clone())
        .collect();
    let mut invalid = None;
    report.providers = Vec::with_capacity(report.primary_hosts.len());
    for (h, text) in primary.zip(&report.primary_hosts) {
        match invalid_mx_target(&h.name) {
            Some(why) => {
                invalid.get_or_insert_with(|| (text.clone(), why));
            }
            None => report.providers.extend(provider_of(text)),
        }
    }
    report.providers.sort();
    report.providers.dedup();
    report.provider = report.providers.first().cloned();
    invalid
}

/// What the domain verdict needs of one MX host: domain-independent, so the crawl keeps one
/// per host however many domains share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSummary {
    /// The host name as published.
    pub name: String,
    /// The host verdict with the base domain and the host as reference identifiers.
    pub verdict: HostVerdict,
    /// Why, in a sentence.
    pub reason: String,
    /// Whether the host has usable TLSA records (its verdict comes from its addresses).
    pub usable_tlsa: bool,
    /// Per probed address: its verdict and the leaf's names.
    pub addresses: Vec<(AddressVerdict, Vec<String>)>,
}

impl HostSummary {
    /// The summary of a full host report.
    pub fn of(h: &HostReport) -> Self {
        HostSummary {
            name: h.name.clone(),
            verdict: h.verdict,
            reason: h.reason.clone(),
            usable_tlsa: !h.usable.is_empty(),
            addresses: h
                .probes
                .iter()
                .map(|p| (p.verdict, p.leaf_names.clone()))
                .collect(),
        }
    }

    /// Whether the host's verdict can differ from domain to domain: only a name mismatch
    /// can pass for the domain itself (see [`HostSummary::for_domain`]).
    pub fn depends_on_domain(&self) -> bool {
        self.usable_tlsa
            && self
                .addresses
                .iter()
                .any(|(v, _)| *v == AddressVerdict::NameMismatch)
    }

    /// The host's verdict for `domain`: [`HostSummary::for_domain`] without the address
    /// list, and without any work unless [`HostSummary::depends_on_domain`].
    pub fn verdict_for(&self, domain: &str) -> HostVerdict {
        if self.depends_on_domain() {
            self.for_domain(domain).0
        } else {
            self.verdict
        }
    }

    /// The host's address verdicts and verdict for `domain`: RFC 7672 §3.2.2 lets a sender
    /// also accept the next-hop domain as a reference identifier, so a DANE-TA leaf that
    /// names the domain (but neither the base domain nor the host) passes for that domain.
    /// `verify` ranks a name mismatch just below a pass, so adding a reference identifier
    /// that a leaf name matches turns exactly those addresses into passes.
    pub fn for_domain(&self, domain: &str) -> (HostVerdict, Vec<AddressVerdict>) {
        let addresses: Vec<AddressVerdict> = self
            .addresses
            .iter()
            .map(|(v, names)| {
                if *v == AddressVerdict::NameMismatch
                    && names.iter().any(|n| dane::name_matches(n, domain))
                {
                    AddressVerdict::Pass
                } else {
                    *v
                }
            })
            .collect();
        let changed = addresses
            .iter()
            .zip(&self.addresses)
            .any(|(a, (b, _))| a != b);
        let verdict = if changed && self.usable_tlsa {
            host_from_addresses(&addresses)
        } else {
            self.verdict
        };
        (verdict, addresses)
    }
}

/// The verdicts of a domain whose MX RRset is secure, from its hosts' summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainOutcome {
    /// Over the primary hosts.
    pub verdict: DomainVerdict,
    /// Over every host.
    pub all_hosts_verdict: Option<DomainVerdict>,
    /// Why, in a sentence.
    pub reason: String,
    /// Per host (in the order given): its verdict and address verdicts for this domain.
    pub hosts: Vec<(HostVerdict, Vec<AddressVerdict>)>,
}

/// What a domain's snapshot row takes of [`judge_domain`]: the crawl judges every domain of
/// the survey, and the per-host detail only `check` prints would cost it an allocation per
/// host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainJudgement {
    /// Over the primary hosts.
    pub verdict: DomainVerdict,
    /// Over every host.
    pub all_hosts_verdict: DomainVerdict,
    /// Why, in a sentence.
    pub reason: String,
}

/// Steps 8–9: the domain verdict from its MX hosts, each flagged primary or not (pure;
/// `check` and the crawl share it).
pub fn judge_domain(domain: &str, hosts: &[(bool, &HostSummary)]) -> DomainOutcome {
    let per_host: Vec<(HostVerdict, Vec<AddressVerdict>)> =
        hosts.iter().map(|(_, h)| h.for_domain(domain)).collect();
    let j = judge_hosts(hosts, |i| per_host[i].0);
    DomainOutcome {
        verdict: j.verdict,
        all_hosts_verdict: Some(j.all_hosts_verdict),
        reason: j.reason,
        hosts: per_host,
    }
}

/// [`judge_domain`] without the per-host detail, for a domain's row.
pub fn judge_domain_row(domain: &str, hosts: &[(bool, &HostSummary)]) -> DomainJudgement {
    if hosts.iter().any(|(_, h)| h.depends_on_domain()) {
        // Rare, but then for every customer of such a host: each verdict worked out once.
        let verdicts: Vec<HostVerdict> = hosts.iter().map(|(_, h)| h.verdict_for(domain)).collect();
        return judge_hosts(hosts, |i| verdicts[i]);
    }
    judge_hosts(hosts, |i| hosts[i].1.verdict)
}

/// Steps 8–9 from each host's verdict for the domain (`verdict(i)` for `hosts[i]`; asked
/// more than once, so it must be cheap).
fn judge_hosts(
    hosts: &[(bool, &HostSummary)],
    verdict: impl Fn(usize) -> HostVerdict + Copy,
) -> DomainJudgement {
    let primary = (0..hosts.len()).filter(|&i| hosts[i].0);
    // One string built in place: this runs for every domain of the survey.
    let mut reason = String::with_capacity(
        primary
            .clone()
            .map(|i| hosts[i].1.name.len() + hosts[i].1.reason.len() + 24)
            .sum(),
    );
    for i in primary.clone() {
        let (h, v) = (hosts[i].1, verdict(i));
        if !reason.is_empty() {
            reason.push_str("; ");
        }
        // Pieces pushed, not `write!`: formatting machinery was a percent of a crawl.
        reason.push_str(&h.name);
        reason.push_str(": ");
        reason.push_str(v.as_str());
        reason.push_str(" (");
        reason.push_str(if v == h.verdict {
            &h.reason
        } else {
            "a DANE-TA leaf names the domain itself, a reference identifier by RFC 7672 §3.2.2"
        });
        reason.push(')');
    }
    DomainJudgement {
        verdict: domain_from_verdicts(primary.map(verdict)),
        all_hosts_verdict: domain_from_verdicts((0..hosts.len()).map(verdict)),
        reason,
    }
}

/// Steps 3–7 of the procedure for one MX host, independent of the domain that named it:
/// addresses, TLSA (with the CNAME rules of RFC 7672 §2.2.3), probes through `prober`, and
/// the DANE match with the TLSA base domain and the host as reference identifiers.
pub async fn check_host(ctx: &CheckContext, host: &Name, prober: &impl Prober) -> HostReport {
    let mut r = HostReport {
        name: display(host),
        preference: 0,
        primary: false,
        address_lookup: String::new(),
        address_security: None,
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
        transient_failure: false,
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
            r.transient_failure = e.is_transient();
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
    r.address_security = Some(if secure {
        Security::Secure
    } else {
        Security::Insecure
    });
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
        r.probes = probe_without_tlsa(ctx, prober, host, &r.addresses).await;
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
                r.transient_failure = e.is_transient();
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
        r.probes = probe_without_tlsa(ctx, prober, host, &r.addresses).await;
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
    // Reference identifiers (RFC 7672 §3.2.2): the base domain and the host as published.
    // The domain itself is added per domain by `HostSummary::for_domain`.
    let mut refs = vec![display(&base), display(host)];
    refs.dedup();
    r.probes = probe_all(ctx, prober, host, &base, &r.addresses, Some(&rrset), &refs).await;
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

/// What a sender would see at a host without TLSA: probed only when the context asks for it
/// (`check` does; the crawl does not by default).
async fn probe_without_tlsa(
    ctx: &CheckContext,
    prober: &impl Prober,
    host: &Name,
    addresses: &[IpAddr],
) -> Vec<AddressReport> {
    if !ctx.probe_without_tlsa {
        return Vec::new();
    }
    probe_all(ctx, prober, host, host, addresses, None, &[display(host)]).await
}

/// Probes every address of a host and judges it. `rrset` is `None` for hosts without TLSA
/// (the probe then only records what the server offers).
async fn probe_all(
    ctx: &CheckContext,
    prober: &impl Prober,
    host: &Name,
    sni: &Name,
    addresses: &[IpAddr],
    rrset: Option<&[TlsaRecord]>,
    refs: &[String],
) -> Vec<AddressReport> {
    let sni = display(sni);
    let jobs = addresses.iter().map(|&ip| {
        let sni = sni.clone();
        async move {
            let probe = match prober.probe(ctx, host, ip, &sni).await {
                Probed::Skipped(reason) => {
                    return AddressReport {
                        address: ip,
                        verdict: AddressVerdict::Skipped,
                        reason,
                        matched: None,
                        leaf_3_1_1: None,
                        leaf_names: Vec::new(),
                        probe: None,
                    }
                }
                Probed::Done(p) => p,
            };
            // Matching parses certificates and checks signatures on peer input: keep that CPU
            // work off the async workers.
            let (at, rrset, refs) = (ctx.at, rrset.map(<[_]>::to_vec), refs.to_vec());
            let judged =
                tokio::task::spawn_blocking(move || judge(at, ip, probe, rrset.as_deref(), &refs))
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
    probe: Arc<ProbeResult>,
    rrset: Option<&[TlsaRecord]>,
    refs: &[String],
) -> AddressReport {
    let leaf_3_1_1 = probe
        .chain
        .first()
        .and_then(|leaf| dane::tlsa_for(leaf, 3, 1, 1).ok())
        .map(|t| t.to_string());
    let mut leaf_names = probe
        .chain
        .first()
        .map(|leaf| dane::leaf_names(leaf))
        .unwrap_or_default();
    leaf_names.truncate(MAX_LEAF_NAMES);
    let usable = rrset.map(dane::usable_records);
    let authenticated = usable.as_ref().is_some_and(|u| !u.usable.is_empty());
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
        leaf_names,
        probe: Some(probe),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressVerdict as A;
    use HostVerdict as H;

    fn host(name: &str, verdict: H, addresses: &[(A, &[&str])]) -> HostSummary {
        HostSummary {
            name: name.into(),
            verdict,
            reason: "r".into(),
            usable_tlsa: matches!(verdict, H::Pass | H::Failing | H::Unreachable),
            addresses: addresses
                .iter()
                .map(|(v, n)| (*v, n.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn mx_hosts_once_each_by_preference_then_name() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let records = [
            (20, n("MX2.example.")),
            (10, n("mx3.example.")),
            (30, n("mx2.EXAMPLE.")),
            (10, n("mx1.example.")),
            (5, n("mx2.example.")),
        ];
        let printed: Vec<(u16, String)> = records.iter().map(|(p, n)| (*p, display(n))).collect();
        let (hosts, lowest) = sorted_hosts(&records, &printed);
        assert_eq!(lowest, 5);
        let got: Vec<(u16, String, usize)> = hosts
            .iter()
            .map(|h| (h.preference, h.name.to_ascii(), h.record))
            .collect();
        assert_eq!(
            got,
            [
                // The host at its lowest preference, spelt as it first appeared, and where
                // that record is.
                (5, "MX2.example.".to_string(), 0),
                (10, "mx1.example.".to_string(), 3),
                (10, "mx3.example.".to_string(), 1),
            ]
        );
        assert_eq!(sorted_hosts(&[], &[]), (Vec::new(), 0));
    }

    #[test]
    fn the_domain_is_a_reference_identifier() {
        // A DANE-TA leaf naming the domain (not the MX host) passes for that domain only.
        let h = host(
            "mx.hoster.example",
            H::Failing,
            &[(A::NameMismatch, &["*.customer.example", "customer.example"])],
        );
        assert_eq!(h.for_domain("customer.example"), (H::Pass, vec![A::Pass]));
        assert_eq!(
            h.for_domain("www.customer.example"),
            (H::Pass, vec![A::Pass])
        );
        assert_eq!(
            h.for_domain("other.example"),
            (H::Failing, vec![A::NameMismatch])
        );
        // Other failures are not names: a matching name does not rescue a TLSA mismatch.
        let h = host(
            "mx.x.example",
            H::Failing,
            &[(A::TlsaMismatch, &["x.example"])],
        );
        assert_eq!(h.for_domain("x.example").0, H::Failing);
        // One passing address does not hide another's mismatch.
        let h = host(
            "mx.x.example",
            H::Failing,
            &[
                (A::NameMismatch, &["x.example"]),
                (A::CertExpired, &["x.example"]),
            ],
        );
        assert_eq!(
            h.for_domain("x.example"),
            (H::Failing, vec![A::Pass, A::CertExpired])
        );
    }

    #[test]
    fn primary_hosts_decide_the_headline() {
        let pass = host("mx1.example", H::Pass, &[(A::Pass, &[])]);
        let none = host("mx2.example", H::NoTlsa, &[]);
        let d = judge_domain("example.org", &[(true, &pass), (false, &none)]);
        assert_eq!(d.verdict, DomainVerdict::DaneValid);
        assert_eq!(d.all_hosts_verdict, Some(DomainVerdict::DanePartial));
        assert!(d.reason.starts_with("mx1.example: pass"), "{}", d.reason);
        let d = judge_domain("example.org", &[(true, &pass), (true, &none)]);
        assert_eq!(d.verdict, DomainVerdict::DanePartial);
    }

    #[test]
    fn the_crawl_judges_as_check_does() {
        // Every host verdict, with and without a name mismatch that the domain rescues, in
        // every pair and primary flagging: the crawl's judgement is `judge_domain`'s.
        let mut summaries = Vec::new();
        for &v in H::ALL {
            summaries.push(host(&format!("mx-{v}.example"), v, &[(A::Pass, &[])]));
            summaries.push(host(
                &format!("ta-{v}.example"),
                v,
                &[(A::NameMismatch, &["customer.example"]), (A::Pass, &[])],
            ));
        }
        let mut compared = 0;
        for a in &summaries {
            for b in &summaries {
                for flags in [[true, true], [true, false], [false, true]] {
                    let hosts = [(flags[0], a), (flags[1], b)];
                    for domain in ["customer.example", "other.example"] {
                        let full = judge_domain(domain, &hosts);
                        let row = judge_domain_row(domain, &hosts);
                        assert_eq!(row.verdict, full.verdict, "{domain} {hosts:?}");
                        assert_eq!(Some(row.all_hosts_verdict), full.all_hosts_verdict);
                        assert_eq!(row.reason, full.reason);
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 1000, "{compared}");
        // The rescue does show: a name mismatch named by the domain passes for it alone.
        let ta = host(
            "ta.example",
            H::Failing,
            &[(A::NameMismatch, &["customer.example"])],
        );
        let rescued = judge_domain_row("customer.example", &[(true, &ta)]);
        assert_eq!(rescued.verdict, DomainVerdict::DaneValid);
        assert!(
            rescued.reason.contains("RFC 7672 §3.2.2"),
            "{}",
            rescued.reason
        );
        let other = judge_domain_row("other.example", &[(true, &ta)]);
        assert_eq!(other.verdict, DomainVerdict::DaneFailing);
    }

    #[test]
    fn a_single_mx_record_sorts_as_itself() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let host = MxHost {
            preference: 7,
            name: n("MX.Example."),
            record: 0,
        };
        assert_eq!(
            sorted_hosts(&[(7, n("MX.Example."))], &[(7, "mx.example".into())]),
            (vec![host], 7)
        );
    }
}
