//! Synthetic snapshots for benchmarks: any number of domains over a skewed set of providers,
//! written with the crate's own snapshot writer, month after month with plausible changes.
//!
//! Exists because the site (and every report) must stay fast at the size of a real TLD
//! survey, and a real million-domain crawl cannot be run on a test machine. The data is
//! deterministic (a hash of the domain number and the month), so two runs write the same
//! snapshots and timings are comparable.
//!
//! Month `m` (1, 2, …) of `n` domains: about 1 % of the domains leave and as many new ones come,
//! 2 % change provider, 0.5 % gain or lose DNSSEC, and a few providers gain DANE or break
//! their TLSA, so every cause of the ranking's change explanation occurs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::snapshot::{
    self, DomainRow, HostRow, InputInfo, MxRecord, ProbeRow, RunInfo, Table, ROW_GROUP_ROWS,
};
use crate::verdict::{AddressVerdict, DomainVerdict, HostVerdict, TAXONOMY_VERSION};

/// TLDs with the per-mille of their domains that are signed.
const TLDS: &[(&str, u64)] = &[
    ("com", 40),
    ("net", 60),
    ("org", 70),
    ("de", 150),
    ("nl", 550),
    ("se", 500),
    ("cz", 600),
    ("dk", 350),
    ("fr", 120),
    ("uk", 90),
    ("eu", 80),
    ("ch", 200),
];

/// splitmix64: a fast, well-mixed hash of one number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn h(a: u64, b: u64) -> u64 {
    mix(a ^ mix(b))
}

/// The shape of a synthetic survey.
#[derive(Clone, Copy, Debug)]
pub struct Synth {
    /// Domains in month 1.
    pub domains: u64,
    /// Providers (most domains sit with a few of them).
    pub providers: u64,
}

impl Synth {
    /// `domains` domains over one provider per 200 domains (at least 10).
    pub fn new(domains: u64) -> Synth {
        Synth {
            domains,
            providers: (domains / 200).max(10),
        }
    }

    fn provider_name(k: u64) -> String {
        format!("provider{k}.net")
    }

    /// Provider `k` publishes TLSA in month `m`: a third of them, plus a few that adopt in
    /// month 2 and later.
    fn has_dane(k: u64, m: u64) -> bool {
        h(k, 1) % 3 == 0 || (m >= 2 && k % 13 == 1)
    }

    /// Provider `k`'s TLSA does not match in month `m` (a botched rollover).
    fn broken(k: u64, m: u64) -> bool {
        Self::has_dane(k, m) && (k % 41 == 5 || (m >= 2 && k % 53 == 7))
    }

    /// The provider of domain `i` in month `m`: skewed (cube of a uniform number), and 2 % of
    /// the domains move each month.
    fn provider_of(&self, i: u64, m: u64) -> u64 {
        let mut epoch = 0;
        for month in 2..=m {
            if h(i, 100 + month) % 50 == 0 {
                epoch = month;
            }
        }
        let u = (h(i, 200 + epoch) % 1_000_000) as f64 / 1_000_000.0;
        ((u * u * u) * self.providers as f64) as u64 % self.providers
    }

    /// Whether domain `i` is in month `m`'s zone lists: domains `0..n` start out there, 1 %
    /// leave each month, and `n..` come 1 % a month.
    fn present(&self, i: u64, m: u64) -> bool {
        if i >= self.domains {
            let month_in = 2 + (i - self.domains) / (self.domains / 100).max(1);
            return month_in <= m;
        }
        !(2..=m).any(|month| h(i, 300 + month) % 100 == 0)
    }

    /// The name of domain number `i`.
    pub fn domain(i: u64) -> String {
        let (tld, _) = TLDS[(h(i, 1) % TLDS.len() as u64) as usize];
        format!("d{i}-{:04x}.{tld}", h(i, 2) & 0xffff)
    }

    fn domain_row(&self, i: u64, m: u64, checked_at: i64) -> DomainRow {
        let (tld, signed) = TLDS[(h(i, 1) % TLDS.len() as u64) as usize];
        let domain = Self::domain(i);
        let k = self.provider_of(i, m);
        let provider = Self::provider_name(k);
        let flip = (2..=m)
            .filter(|&month| h(i, 400 + month) % 200 == 0)
            .count()
            % 2
            == 1;
        let failed = h(i, 3) % 500 == 0;
        let secure = (h(i, 4) % 1000 < signed) != flip;
        let mx = vec![
            MxRecord {
                preference: 10,
                exchange: format!("mx1.{provider}"),
            },
            MxRecord {
                preference: 20,
                exchange: format!("mx2.{provider}"),
            },
        ];
        let verdict = if failed {
            DomainVerdict::MxLookupFailed
        } else if !secure {
            DomainVerdict::Insecure
        } else if Self::broken(k, m) {
            DomainVerdict::DaneFailing
        } else if Self::has_dane(k, m) {
            DomainVerdict::DaneValid
        } else if k % 2 == 0 {
            DomainVerdict::NoTlsa
        } else {
            DomainVerdict::InsecureMxHost
        };
        DomainRow {
            tld: tld.into(),
            source: format!("synthetic-{tld}.zone"),
            mx_lookup: if failed {
                "SERVFAIL (EDE 9 DNSKEY Missing)".into()
            } else if secure {
                "secure data (2)".into()
            } else {
                "insecure data (2)".into()
            },
            mx_security: if failed {
                None
            } else if secure {
                Some("secure".into())
            } else {
                Some("insecure".into())
            },
            primary_hosts: if failed {
                Vec::new()
            } else {
                vec![mx[0].exchange.clone()]
            },
            provider: (!failed).then(|| provider.clone()),
            providers: if failed { Vec::new() } else { vec![provider] },
            mx: if failed { Vec::new() } else { mx },
            verdict,
            all_hosts_verdict: (secure && !failed).then_some(verdict),
            reason: format!("synthetic: {verdict}"),
            checked_at,
            domain,
        }
    }

    fn hosts(&self, m: u64, at: i64) -> (Vec<HostRow>, Vec<ProbeRow>) {
        let mut hosts = Vec::new();
        let mut probes = Vec::new();
        for k in 0..self.providers {
            let provider = Self::provider_name(k);
            for n in 1..=2u64 {
                let host = format!("mx{n}.{provider}");
                let dane = Self::has_dane(k, m);
                let broken = Self::broken(k, m);
                let digest = |salt: u64| {
                    format!(
                        "{:016x}{:016x}{:016x}{:016x}",
                        h(k, salt),
                        h(k, salt + 1),
                        h(k, salt + 2),
                        h(k, salt + 3)
                    )
                };
                let leaf = format!("3 1 1 {}", digest(10 * m));
                let tlsa = if !dane {
                    Vec::new()
                } else if broken {
                    vec![format!("3 1 1 {}", digest(10 * m + 5))]
                } else if k % 4 == 0 {
                    vec![leaf.clone()]
                } else {
                    vec![leaf.clone(), format!("3 1 1 {}", digest(1000 + 10 * m))]
                };
                let verdict = if broken {
                    HostVerdict::Failing
                } else if dane {
                    HostVerdict::Pass
                } else if k % 2 == 0 {
                    HostVerdict::NoTlsa
                } else {
                    HostVerdict::InsecureHost
                };
                let address = format!("198.18.{}.{}", (k >> 8) & 0xff, (k & 0xff) as u8);
                hosts.push(HostRow {
                    host: host.clone(),
                    provider: Some(provider.clone()),
                    address_lookup: "secure data (1)".into(),
                    address_security: Some("secure".into()),
                    canonical: None,
                    addresses: vec![address.clone()],
                    tlsa_lookups: Vec::new(),
                    tlsa_base_domain: dane.then(|| host.clone()),
                    tlsa_usable: tlsa.clone(),
                    tlsa,
                    tlsa_unusable: Vec::new(),
                    verdict,
                    reason: format!("synthetic: {verdict}"),
                    opted_out: false,
                    resolved_at: at * 1_000_000,
                });
                if !dane {
                    continue;
                }
                let av = if broken {
                    AddressVerdict::TlsaMismatch
                } else {
                    AddressVerdict::Pass
                };
                probes.push(ProbeRow {
                    host: host.clone(),
                    address,
                    sni: host,
                    verdict: av,
                    reason: format!("synthetic: {av}"),
                    matched: (!broken).then(|| leaf.clone()),
                    stage_reached: Some("done".into()),
                    banner: Some("220 synthetic ESMTP".into()),
                    starttls_offered: Some(true),
                    tls_version: Some("TLSv1.3".into()),
                    cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
                    cert_sha256: vec![digest(20 * m)],
                    spki_sha256: vec![digest(10 * m)],
                    leaf_names: vec![format!("mx{n}.{}", Self::provider_name(k))],
                    leaf_not_before: Some(at - 30 * 86_400),
                    leaf_not_after: Some(at + (h(k, 7) % 90) as i64 * 86_400),
                    chain_not_after_min: Some(at + (h(k, 7) % 90) as i64 * 86_400),
                    leaf_3_1_1: Some(leaf.clone()),
                    error_stage: None,
                    error_kind: None,
                    error_message: None,
                    reply_code: None,
                    probed_at: Some(at * 1_000_000),
                    duration_ms: Some(40),
                });
            }
        }
        (hosts, probes)
    }

    /// Writes month `m` as the complete snapshot `date` (`YYYY-MM-DD`) under `out`; returns
    /// its domain count.
    pub fn write(&self, out: &Path, date: &str, m: u64) -> Result<u64> {
        let dir = snapshot::snapshot_dir(out, date);
        let at = time::Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )?
        .midnight()
        .assume_utc()
        .unix_timestamp();
        let newcomers = (self.domains / 100) * m.saturating_sub(1);
        let mut part = 0;
        let mut rows = Vec::with_capacity(ROW_GROUP_ROWS);
        let mut n = 0u64;
        let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
        let mut tlds: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for i in 0..self.domains + newcomers {
            if !self.present(i, m) {
                continue;
            }
            let r = self.domain_row(i, m, at * 1_000_000);
            *verdicts.entry(r.verdict.to_string()).or_default() += 1;
            *tlds
                .entry(r.source.clone())
                .or_default()
                .entry(r.tld.clone())
                .or_default() += 1;
            rows.push(r);
            n += 1;
            if rows.len() == ROW_GROUP_ROWS {
                snapshot::write_domains(&snapshot::part_path(&dir, Table::Domains, part), &rows)?;
                part += 1;
                rows.clear();
            }
        }
        if !rows.is_empty() {
            snapshot::write_domains(&snapshot::part_path(&dir, Table::Domains, part), &rows)?;
        }
        let (hosts, probes) = self.hosts(m, at);
        snapshot::write_hosts(&snapshot::part_path(&dir, Table::Hosts, 0), &hosts)?;
        snapshot::write_probes(&snapshot::part_path(&dir, Table::Probes, 0), &probes)?;
        let run = RunInfo {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            schema_version: snapshot::SCHEMA_VERSION,
            taxonomy_version: TAXONOMY_VERSION,
            snapshot: date.to_string(),
            inputs: tlds
                .into_iter()
                .map(|(source, t)| {
                    let names = t.values().sum();
                    InputInfo {
                        source,
                        format: Some("zone".into()),
                        apex: None,
                        names,
                        in_shard: names,
                        bad_lines: 0,
                        tlds: t,
                    }
                })
                .collect(),
            domains_input: n,
            judged_at: at,
            started: format!("{date}T00:00:00Z"),
            finished: Some(format!("{date}T00:00:00Z")),
            complete: true,
            verdicts,
            rows: [
                ("domains".to_string(), n),
                ("hosts".to_string(), hosts.len() as u64),
                ("probes".to_string(), probes.len() as u64),
            ]
            .into_iter()
            .collect(),
            settings: [("synthetic".to_string(), "true".to_string())]
                .into_iter()
                .collect(),
            ..RunInfo::default()
        };
        snapshot::write_run(&dir, &run)?;
        Ok(n)
    }
}

/// A plain probe row of `host`, for tests that need one.
#[cfg(test)]
pub(crate) fn tests_probe(host: &str) -> ProbeRow {
    let s = Synth::new(1_000);
    let (_, probes) = s.hosts(1, 0);
    let mut p = probes
        .into_iter()
        .next()
        .expect("a DANE provider among ten");
    p.host = host.into();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_synthetic_months_have_every_kind_of_change() {
        let out = std::env::temp_dir().join(format!("dane-survey-synth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let s = Synth::new(5_000);
        let n1 = s.write(&out, "2030-01-01", 1).unwrap();
        let n2 = s.write(&out, "2030-02-01", 2).unwrap();
        assert!((4_900..=5_000).contains(&n1), "{n1}");
        assert!((4_900..=5_100).contains(&n2), "{n2}");
        let a = crate::report::rank::Aliases::default();
        let mut c = crate::report::rank::Compare::new(&a, true, None);
        let (this, last) = crate::report::source::pick(&out, None, None).unwrap();
        crate::report::source::for_each_domain(&last.unwrap().dir, |r| c.add_last(r)).unwrap();
        crate::report::source::for_each_domain(&this.dir, |r| c.add_this(r)).unwrap();
        let r = c.finish();
        assert!(r.dane_total > 100, "{}", r.dane_total);
        let mut causes = std::collections::BTreeSet::new();
        for row in &r.rows {
            causes.extend(row.explanation.gained.keys().copied());
            causes.extend(row.explanation.lost.keys().copied());
        }
        assert_eq!(causes.len(), 4, "{causes:?}");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
