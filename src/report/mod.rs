//! Outputs for people: the `check` and crawl texts, and the reports over the snapshots.
//!
//! The reports read complete snapshots (see [`source`]) and each has its own module of pure
//! logic, tested with hand-built rows, that turns rows into a result and a [`table::Table`]:
//!
//! * [`rank`] — providers by DANE domains, month over month, each difference explained;
//! * [`adopters`] — providers whose customers are signed but lack DANE;
//! * [`failures`] — broken MX hosts with evidence, and early warnings;
//! * [`trend`] — the series per snapshot and its SVG chart;
//! * [`table`] — the shared renderings (text table, Markdown, CSV, JSON, Parquet);
//! * [`source`] — the only I/O: picking snapshots and streaming their tables.

pub mod adopters;
pub mod failures;
pub mod rank;
pub mod source;
pub mod table;
pub mod trend;

use std::fmt::Write as _;

use crate::survey::DomainReport;

/// The `check` report: the domain verdict first, then the evidence host by host.
pub fn check_text(r: &DomainReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}: {}", r.domain, r.verdict);
    let _ = writeln!(o, "  reason: {}", r.reason);
    if let Some(all) = r.all_hosts_verdict {
        if all != r.verdict {
            let _ = writeln!(o, "  all MX hosts: {all}");
        }
    }
    let _ = writeln!(o, "  MX lookup: {}", r.mx.lookup);
    for (pref, host) in &r.mx.records {
        let _ = writeln!(o, "    MX {pref} {host}");
    }
    if let Some(p) = &r.provider {
        let _ = writeln!(o, "  provider: {p}");
    }
    for h in &r.hosts {
        let _ = writeln!(
            o,
            "  host {} (preference {}{}): {}",
            h.name,
            h.preference,
            if h.primary { ", primary" } else { "" },
            h.verdict
        );
        let _ = writeln!(o, "    reason: {}", h.reason);
        let _ = writeln!(o, "    addresses: {}", h.address_lookup);
        if let Some(c) = &h.canonical {
            let _ = writeln!(o, "    canonical name: {c}");
        }
        for (q, res) in &h.tlsa_lookups {
            let _ = writeln!(o, "    TLSA {q}: {res}");
        }
        if let Some(b) = &h.tlsa_base_domain {
            let _ = writeln!(o, "    TLSA base domain: {b}");
        }
        for t in &h.usable {
            let _ = writeln!(o, "      usable   {t}");
        }
        for (t, why) in &h.unusable {
            let _ = writeln!(o, "      unusable {t} ({why})");
        }
        for a in &h.probes {
            let _ = writeln!(o, "    {}: {} — {}", a.address, a.verdict, a.reason);
            if let Some(p) = &a.probe {
                if let Some(b) = &p.banner {
                    let _ = writeln!(o, "      banner: {b}");
                }
                if let (Some(v), Some(c)) = (&p.tls_version, &p.cipher) {
                    let _ = writeln!(o, "      TLS: {v} {c}, {} certificate(s)", p.chain.len());
                }
            }
            if let Some(m) = &a.matched {
                let _ = writeln!(o, "      matched: {m}");
            }
            if let Some(l) = &a.leaf_3_1_1 {
                let _ = writeln!(o, "      leaf as 3 1 1: {l}");
            }
        }
    }
    o
}

/// `n` and the noun, plural unless `n` is 1 (`1 domain`, `2 MX hosts`): summaries read as
/// sentences, and a one-domain crawl is common in the lab and in tests.
pub(crate) fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The closing summary of a crawl.
pub fn crawl_text(s: &crate::crawl::CrawlSummary) -> String {
    let mut o = String::new();
    let r = &s.run;
    let rows = |t: &str| r.rows.get(t).copied().unwrap_or(0);
    if s.domains_this_run == 0 && r.complete && !s.resumed {
        let _ = writeln!(o, "snapshot {} was already complete", s.dir.display());
    }
    let _ = writeln!(
        o,
        "snapshot {} ({}): {}, {}, {}{}",
        r.snapshot,
        s.dir.display(),
        counted(rows("domains"), "domain"),
        counted(rows("hosts"), "MX host"),
        counted(rows("probes"), "probe"),
        if r.complete { "" } else { " — INCOMPLETE" }
    );
    let _ = writeln!(
        o,
        "this run: {}, {} resolved, {} in {:.1} s{}",
        counted(s.domains_this_run, "domain"),
        counted(s.hosts_this_run, "MX host"),
        counted(s.sessions_this_run, "SMTP session"),
        s.seconds,
        if s.resumed { " (resumed)" } else { "" }
    );
    if r.domains_opted_out > 0 {
        let _ = writeln!(o, "opted out: {}", counted(r.domains_opted_out, "domain"));
    }
    let mut v: Vec<(&String, &u64)> = r.verdicts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (verdict, n) in v {
        let _ = writeln!(o, "  {verdict:<18} {n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn counts_read_as_words() {
        assert_eq!(counted(0, "domain"), "0 domains");
        assert_eq!(counted(1, "MX host"), "1 MX host");
        assert_eq!(counted(2, "lookup page"), "2 lookup pages");
    }
}
