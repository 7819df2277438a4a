//! `failures`: the MX hosts where DANE senders defer mail now, with the evidence an operator
//! needs to fix them, and the early warnings for hosts that still pass.
//!
//! Pure: the month's host and probe rows plus per-host domain counts ([`HostUse`]) go in,
//! a [`Failures`] comes out. A host is listed when its verdict is `failing` (its TLSA does not
//! match what an address presents, or TLS fails) or `tlsa_failed` (the TLSA lookup fails), or
//! when an address did not offer STARTTLS (`starttls_missing`). Early warnings cover hosts
//! that pass: leaf certificates expiring within N days of the snapshot's `judged_at`, and
//! TLSA RRsets with a single usable record (no slot for the next key, so a rollover without
//! publishing the new record first breaks delivery).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use super::table::{Cell, Kind, Table};
use crate::snapshot::{DomainRow, HostRow, ProbeRow};
use crate::verdict::{AddressVerdict, HostVerdict};

/// How many domains use each MX host as a primary host, counted from the domains table.
///
/// Exists because the hosts table is per host and the impact of a failure is in domains.
#[derive(Debug, Default)]
pub struct HostUse {
    by: HashMap<String, (u64, u64)>,
}

impl HostUse {
    /// Counts one domain row (each of its primary hosts once).
    pub fn add(&mut self, row: &DomainRow) {
        let secure = row.mx_security.as_deref() == Some("secure");
        for h in &row.primary_hosts {
            let e = match self.by.get_mut(h.as_str()) {
                Some(e) => e,
                None => self.by.entry(h.clone()).or_default(),
            };
            e.0 += 1;
            e.1 += secure as u64;
        }
    }

    /// (domains, of which with a secure MX RRset) whose primary hosts include `host`.
    pub fn of(&self, host: &str) -> (u64, u64) {
        self.by.get(host).copied().unwrap_or((0, 0))
    }
}

/// What one address presented, as evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// The address.
    pub address: String,
    /// The address verdict.
    pub verdict: AddressVerdict,
    /// Why, in a sentence.
    pub reason: String,
    /// SHA-256 of each presented certificate, leaf first.
    pub cert_sha256: Vec<String>,
    /// SHA-256 of each presented SubjectPublicKeyInfo, leaf first.
    pub spki_sha256: Vec<String>,
    /// The record the server would need published (`3 1 1 …` of its leaf).
    pub leaf_3_1_1: Option<String>,
    /// When it was probed (RFC 3339).
    pub probed_at: Option<String>,
}

/// One broken MX host.
///
/// Exists as the operator's to-do item: which host, how many domains it takes down, what is
/// published and what is presented.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailingHost {
    /// The MX host.
    pub host: String,
    /// Its provider.
    pub provider: Option<String>,
    /// The host verdict.
    pub verdict: HostVerdict,
    /// The problem in one word: `tlsa_failed`, `starttls_missing`, or the failing address
    /// verdicts (`tlsa_mismatch`, `name_mismatch`, `tls_failed`, …) joined with `+`.
    pub problem: String,
    /// Domains whose primary MX hosts include it.
    pub domains: u64,
    /// Of those, domains with a secure MX RRset (the ones a DANE sender defers).
    pub signed_domains: u64,
    /// The TLSA RRset as published.
    pub tlsa: Vec<String>,
    /// The host's reason.
    pub reason: String,
    /// Per address, what it presented.
    pub evidence: Vec<Evidence>,
}

/// A DANE-valid host whose leaf certificate expires soon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expiring {
    /// The MX host.
    pub host: String,
    /// The address that presented it.
    pub address: String,
    /// The leaf's notAfter (RFC 3339).
    pub not_after: String,
    /// Whole days from the snapshot's `judged_at` to notAfter (may be 0).
    pub days_left: i64,
    /// Domains whose primary MX hosts include the host.
    pub domains: u64,
    /// The usable TLSA records: whether they survive the renewal depends on what they bind.
    pub tlsa: Vec<String>,
}

/// A DANE-valid host with one usable TLSA record: no rollover slot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SingleRecord {
    /// The MX host.
    pub host: String,
    /// The one usable record.
    pub record: String,
    /// Domains whose primary MX hosts include the host.
    pub domains: u64,
}

/// The `failures` report.
///
/// Exists to tell operators about broken TLSA before senders defer their mail for long.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Failures {
    /// Broken hosts, most domains first.
    pub failing: Vec<FailingHost>,
    /// Certificates of passing hosts expiring within the window, soonest first.
    pub expiring: Vec<Expiring>,
    /// Passing hosts with a single usable TLSA record, most domains first.
    pub single_record: Vec<SingleRecord>,
    /// The window of `expiring`, in days.
    pub expiring_days: i64,
    /// The snapshot's `judged_at` (RFC 3339).
    pub judged_at: String,
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Builds the report from one snapshot's hosts and probes, the domain counts, the snapshot's
/// `judged_at` (unix seconds) and the warning window in days.
pub fn failures(
    hosts: &[HostRow],
    probes: &[ProbeRow],
    used: &HostUse,
    judged_at: i64,
    expiring_days: i64,
) -> Failures {
    let mut by_host: HashMap<&str, Vec<&ProbeRow>> = HashMap::new();
    for p in probes {
        by_host.entry(p.host.as_str()).or_default().push(p);
    }
    for v in by_host.values_mut() {
        v.sort_by(|a, b| a.address.cmp(&b.address));
    }
    let mut out = Failures {
        expiring_days,
        judged_at: rfc3339(judged_at),
        ..Failures::default()
    };
    for h in hosts {
        let ps = by_host.get(h.host.as_str()).cloned().unwrap_or_default();
        let (domains, signed_domains) = used.of(&h.host);
        let starttls_missing = ps
            .iter()
            .any(|p| p.verdict == AddressVerdict::StarttlsMissing);
        if matches!(h.verdict, HostVerdict::Failing | HostVerdict::TlsaFailed) || starttls_missing {
            let problem = if h.verdict == HostVerdict::TlsaFailed {
                "tlsa_failed".to_string()
            } else if starttls_missing {
                "starttls_missing".to_string()
            } else {
                let bad: BTreeSet<&str> = ps
                    .iter()
                    .filter(|p| {
                        !matches!(
                            p.verdict,
                            AddressVerdict::Pass
                                | AddressVerdict::Unreachable
                                | AddressVerdict::Skipped
                        )
                    })
                    .map(|p| p.verdict.as_str())
                    .collect();
                bad.into_iter().collect::<Vec<_>>().join("+")
            };
            out.failing.push(FailingHost {
                host: h.host.clone(),
                provider: h.provider.clone(),
                verdict: h.verdict,
                problem,
                domains,
                signed_domains,
                tlsa: h.tlsa.clone(),
                reason: h.reason.clone(),
                evidence: ps
                    .iter()
                    .map(|p| Evidence {
                        address: p.address.clone(),
                        verdict: p.verdict,
                        reason: p.reason.clone(),
                        cert_sha256: p.cert_sha256.clone(),
                        spki_sha256: p.spki_sha256.clone(),
                        leaf_3_1_1: p.leaf_3_1_1.clone(),
                        probed_at: p.probed_at.map(|us| rfc3339(us.div_euclid(1_000_000))),
                    })
                    .collect(),
            });
            continue;
        }
        if h.verdict != HostVerdict::Pass {
            continue;
        }
        if h.tlsa_usable.len() == 1 {
            out.single_record.push(SingleRecord {
                host: h.host.clone(),
                record: h.tlsa_usable[0].clone(),
                domains,
            });
        }
        for p in &ps {
            let Some(na) = p.leaf_not_after else { continue };
            if p.verdict == AddressVerdict::Pass && na - judged_at < expiring_days * 86_400 {
                out.expiring.push(Expiring {
                    host: h.host.clone(),
                    address: p.address.clone(),
                    not_after: rfc3339(na),
                    days_left: (na - judged_at).div_euclid(86_400),
                    domains,
                    tlsa: h.tlsa_usable.clone(),
                });
            }
        }
    }
    out.failing
        .sort_by(|a, b| b.domains.cmp(&a.domains).then(a.host.cmp(&b.host)));
    out.expiring.sort_by(|a, b| {
        (&a.not_after, &a.host, &a.address).cmp(&(&b.not_after, &b.host, &b.address))
    });
    out.single_record
        .sort_by(|a, b| b.domains.cmp(&a.domains).then(a.host.cmp(&b.host)));
    out
}

/// Everything as one flat [`Table`] (for CSV and Parquet): a `kind` column (`failing`,
/// `expiring`, `single_record`) and one row per address of a failing host, per expiring
/// certificate, per single-record host.
pub fn flat(f: &Failures) -> Table {
    let mut t = Table::new(&[
        ("kind", "kind", Kind::Text),
        ("host", "host", Kind::Text),
        ("provider", "provider", Kind::Text),
        ("problem", "problem", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("signed_domains", "signed domains", Kind::Int),
        ("tlsa", "TLSA", Kind::Text),
        ("address", "address", Kind::Text),
        ("address_verdict", "address verdict", Kind::Text),
        ("cert_sha256", "certificate SHA-256", Kind::Text),
        ("spki_sha256", "SPKI SHA-256", Kind::Text),
        ("leaf_3_1_1", "leaf as 3 1 1", Kind::Text),
        ("probed_at", "probed at", Kind::Text),
        ("not_after", "not after", Kind::Text),
        ("days_left", "days left", Kind::Int),
    ]);
    let list = |v: &[String]| Cell::Text(v.join(" "));
    for h in &f.failing {
        let none = [Evidence {
            address: String::new(),
            verdict: AddressVerdict::Skipped,
            reason: String::new(),
            cert_sha256: Vec::new(),
            spki_sha256: Vec::new(),
            leaf_3_1_1: None,
            probed_at: None,
        }];
        let ev: &[Evidence] = if h.evidence.is_empty() {
            &none
        } else {
            &h.evidence
        };
        for e in ev {
            let probed = !e.address.is_empty();
            t.push(vec![
                "failing".into(),
                h.host.as_str().into(),
                h.provider.clone().into(),
                h.problem.as_str().into(),
                h.domains.into(),
                h.signed_domains.into(),
                list(&h.tlsa),
                probed.then(|| e.address.clone()).into(),
                probed.then(|| e.verdict.as_str()).into(),
                list(&e.cert_sha256),
                list(&e.spki_sha256),
                e.leaf_3_1_1.clone().into(),
                e.probed_at.clone().into(),
                Cell::Null,
                Cell::Null,
            ]);
        }
    }
    for x in &f.expiring {
        t.push(vec![
            "expiring".into(),
            x.host.as_str().into(),
            Cell::Null,
            "certificate expires".into(),
            x.domains.into(),
            Cell::Null,
            list(&x.tlsa),
            x.address.as_str().into(),
            "pass".into(),
            Cell::Text(String::new()),
            Cell::Text(String::new()),
            Cell::Null,
            Cell::Null,
            x.not_after.as_str().into(),
            x.days_left.into(),
        ]);
    }
    for x in &f.single_record {
        t.push(vec![
            "single_record".into(),
            x.host.as_str().into(),
            Cell::Null,
            "single usable TLSA record".into(),
            x.domains.into(),
            Cell::Null,
            x.record.as_str().into(),
            Cell::Null,
            Cell::Null,
            Cell::Text(String::new()),
            Cell::Text(String::new()),
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
        ]);
    }
    t
}

/// The report for people (`table` or Markdown): the broken hosts with their evidence, then
/// the two early warnings.
pub fn text(f: &Failures, markdown: bool) -> String {
    let mut o = String::new();
    let head = |o: &mut String, s: &str| {
        if markdown {
            let _ = writeln!(o, "\n## {s}\n");
        } else {
            let _ = writeln!(o, "\n{s}");
        }
    };
    let render = |t: &Table| if markdown { t.markdown() } else { t.text() };
    head(
        &mut o,
        &format!(
            "MX hosts where DANE senders defer mail ({})",
            f.failing.len()
        ),
    );
    let mut t = Table::new(&[
        ("host", "host", Kind::Text),
        ("problem", "problem", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("signed_domains", "signed domains", Kind::Int),
    ]);
    for h in &f.failing {
        t.push(vec![
            h.host.as_str().into(),
            h.problem.as_str().into(),
            h.domains.into(),
            h.signed_domains.into(),
        ]);
    }
    o.push_str(&render(&t));
    head(&mut o, "Evidence");
    for h in &f.failing {
        let b = if markdown { "* " } else { "  " };
        let i = if markdown { "  * " } else { "    " };
        let _ = writeln!(o, "{b}{} ({}): {}", h.host, h.verdict, h.reason);
        if h.tlsa.is_empty() {
            let _ = writeln!(o, "{i}TLSA: none usable");
        }
        for r in &h.tlsa {
            let _ = writeln!(o, "{i}TLSA {r}");
        }
        for e in &h.evidence {
            let _ = writeln!(
                o,
                "{i}{} {} at {}: {}",
                e.address,
                e.verdict,
                e.probed_at.as_deref().unwrap_or("-"),
                e.reason
            );
            for (n, (c, k)) in e.cert_sha256.iter().zip(&e.spki_sha256).enumerate() {
                let _ = writeln!(o, "{i}  certificate {n}: sha256 {c}, spki sha256 {k}");
            }
            if let Some(l) = &e.leaf_3_1_1 {
                let _ = writeln!(o, "{i}  leaf as 3 1 1: {l}");
            }
        }
    }
    head(
        &mut o,
        &format!(
            "Certificates of DANE-valid hosts expiring within {} days of {} ({})",
            f.expiring_days,
            f.judged_at,
            f.expiring.len()
        ),
    );
    let mut t = Table::new(&[
        ("host", "host", Kind::Text),
        ("address", "address", Kind::Text),
        ("not_after", "not after", Kind::Text),
        ("days_left", "days left", Kind::Int),
        ("domains", "domains", Kind::Int),
    ]);
    for x in &f.expiring {
        t.push(vec![
            x.host.as_str().into(),
            x.address.as_str().into(),
            x.not_after.as_str().into(),
            x.days_left.into(),
            x.domains.into(),
        ]);
    }
    o.push_str(&render(&t));
    head(
        &mut o,
        &format!(
            "DANE-valid hosts with a single usable TLSA record, no rollover slot ({})",
            f.single_record.len()
        ),
    );
    let mut t = Table::new(&[
        ("host", "host", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("record", "record", Kind::Text),
    ]);
    for x in &f.single_record {
        t.push(vec![
            x.host.as_str().into(),
            x.domains.into(),
            x.record.as_str().into(),
        ]);
    }
    o.push_str(&render(&t));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rank::tests::row;
    use crate::verdict::DomainVerdict;

    fn host(name: &str, v: HostVerdict, usable: &[&str]) -> HostRow {
        HostRow {
            host: name.into(),
            provider: Some(name.split_once('.').unwrap().1.into()),
            address_lookup: String::new(),
            address_security: Some("secure".into()),
            canonical: None,
            addresses: vec!["192.0.2.1".into()],
            tlsa_lookups: Vec::new(),
            tlsa_base_domain: Some(name.into()),
            tlsa: usable.iter().map(|s| s.to_string()).collect(),
            tlsa_usable: usable.iter().map(|s| s.to_string()).collect(),
            tlsa_unusable: Vec::new(),
            verdict: v,
            reason: "r".into(),
            opted_out: false,
            resolved_at: 0,
        }
    }

    fn probe(host: &str, v: AddressVerdict, not_after: i64) -> ProbeRow {
        ProbeRow {
            host: host.into(),
            address: "192.0.2.1".into(),
            sni: host.into(),
            verdict: v,
            reason: "why".into(),
            matched: None,
            stage_reached: Some("done".into()),
            banner: None,
            starttls_offered: Some(true),
            tls_version: None,
            cipher: None,
            cert_sha256: vec!["aa".into()],
            spki_sha256: vec!["bb".into()],
            leaf_names: Vec::new(),
            leaf_not_before: None,
            leaf_not_after: Some(not_after),
            chain_not_after_min: None,
            leaf_3_1_1: Some("3 1 1 bb".into()),
            error_stage: None,
            error_kind: None,
            error_message: None,
            reply_code: None,
            probed_at: Some(1_000_000_000),
            duration_ms: None,
        }
    }

    #[test]
    fn broken_hosts_with_counts_and_warnings() {
        let day = 86_400;
        let now = 1_700_000_000;
        let hosts = vec![
            host("mx.bad.test", HostVerdict::Failing, &["3 1 1 cc"]),
            host("mx.plain.test", HostVerdict::Failing, &["3 1 1 dd"]),
            host("mx.lookup.test", HostVerdict::TlsaFailed, &[]),
            host("mx.ok.test", HostVerdict::Pass, &["3 1 1 ee"]),
            host("mx.two.test", HostVerdict::Pass, &["3 1 1 ee", "3 1 1 ff"]),
            host("mx.down.test", HostVerdict::Unreachable, &["3 1 1 ee"]),
        ];
        let probes = vec![
            probe("mx.bad.test", AddressVerdict::TlsaMismatch, now + 90 * day),
            probe("mx.plain.test", AddressVerdict::StarttlsMissing, now),
            probe("mx.ok.test", AddressVerdict::Pass, now + 5 * day),
            probe("mx.two.test", AddressVerdict::Pass, now + 60 * day),
            probe("mx.down.test", AddressVerdict::Unreachable, now),
        ];
        let mut used = HostUse::default();
        let s = Some("secure");
        for (d, h, sec) in [
            ("a", "mx.bad.test", s),
            ("b", "mx.bad.test", s),
            ("c", "mx.bad.test", Some("insecure")),
            ("d", "mx.plain.test", s),
            ("e", "mx.ok.test", s),
        ] {
            let mut r = row(d, Some("x"), sec, DomainVerdict::DaneFailing);
            r.primary_hosts = vec![h.into()];
            used.add(&r);
        }
        let f = failures(&hosts, &probes, &used, now, 30);
        let got: Vec<(&str, &str, u64, u64)> = f
            .failing
            .iter()
            .map(|h| {
                (
                    h.host.as_str(),
                    h.problem.as_str(),
                    h.domains,
                    h.signed_domains,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("mx.bad.test", "tlsa_mismatch", 3, 2),
                ("mx.plain.test", "starttls_missing", 1, 1),
                ("mx.lookup.test", "tlsa_failed", 0, 0),
            ]
        );
        let ev = &f.failing[0].evidence[0];
        assert_eq!(ev.cert_sha256, vec!["aa"]);
        assert_eq!(ev.leaf_3_1_1.as_deref(), Some("3 1 1 bb"));
        assert_eq!(ev.probed_at.as_deref(), Some("1970-01-01T00:16:40Z"));
        assert_eq!(f.failing[0].tlsa, vec!["3 1 1 cc"]);
        let exp: Vec<(&str, i64)> = f
            .expiring
            .iter()
            .map(|e| (e.host.as_str(), e.days_left))
            .collect();
        assert_eq!(exp, vec![("mx.ok.test", 5)]);
        let single: Vec<(&str, u64)> = f
            .single_record
            .iter()
            .map(|s| (s.host.as_str(), s.domains))
            .collect();
        assert_eq!(single, vec![("mx.ok.test", 1)]);
    }
}
