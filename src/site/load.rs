//! Gathering a [`SiteData`] from the snapshots: the site's only reading I/O.
//!
//! The report computations are the ones of [`crate::report`], fed the same rows in the same
//! order as the report commands feed them. Each snapshot's domains table is streamed part by
//! part: last month's once (ranking join, counts, lookups), this month's twice (first for
//! every report, then for the domains of the providers that get a page, which are known only
//! once the ranking is), every other snapshot of the trend once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Result;

use super::{Lookup, Options, ProviderDetail, ProviderDomain, SiteData, SourceCoverage};
use crate::report::adopters::Adopters;
use crate::report::failures::{failures, HostUse};
use crate::report::rank::{Aliases, Compare};
use crate::report::source;
use crate::report::trend::Counts;
use crate::snapshot::{HostRow, ProbeRow};

/// What to build the site from.
pub struct Request<'a> {
    /// The output root holding the snapshots.
    pub out: &'a Path,
    /// The month (`YYYY-MM`; default the latest with a complete snapshot).
    pub month: Option<&'a str>,
    /// The month to compare with (default the previous one with a complete snapshot).
    pub vs: Option<&'a str>,
    /// Provider aliases.
    pub aliases: &'a Aliases,
    /// Domains that get a lookup page (normalised).
    pub lookups: &'a [String],
    /// What the site shows.
    pub options: Options,
}

/// Reads the snapshots and computes every report of the site.
pub fn load(req: &Request) -> Result<SiteData> {
    let aliases = req.aliases;
    let opts = &req.options;
    let (this, last) = source::pick(req.out, req.month, req.vs)?;
    let wanted: HashSet<&str> = req.lookups.iter().map(String::as_str).collect();
    let mut cmp = Compare::new(aliases, last.is_some(), Some(opts.examples));

    // Last month: the ranking's join table, its counts, the lookups' verdicts then.
    let mut last_counts = None;
    let mut last_verdicts = HashMap::new();
    if let Some(l) = &last {
        let mut c = Counts::default();
        source::for_each_domain(&l.dir, |r| {
            cmp.add_last(r);
            c.add(r, aliases);
            if wanted.contains(r.domain.as_str()) {
                last_verdicts.insert(r.domain.clone(), r.verdict);
            }
        })?;
        last_counts = Some(c);
    }

    // This month: everything else.
    let mut adopters = Adopters::new(aliases);
    let mut counts = Counts::default();
    let mut used = HostUse::default();
    let mut sources: BTreeMap<String, SourceCoverage> = BTreeMap::new();
    let mut rows = HashMap::new();
    source::for_each_domain(&this.dir, |r| {
        cmp.add_this(r);
        adopters.add(r);
        counts.add(r, aliases);
        used.add(r);
        match sources.get_mut(r.source.as_str()) {
            Some(s) => s.domains += 1,
            None => {
                sources.entry(r.source.clone()).or_default().domains += 1;
            }
        }
        if wanted.contains(r.domain.as_str()) {
            rows.insert(r.domain.clone(), r.clone());
        }
    })?;
    let run = this.run.clone().unwrap_or_default();
    for input in &run.inputs {
        let s = sources.entry(input.source.clone()).or_default();
        s.names = Some(s.names.unwrap_or(0) + input.names);
        s.bad_lines = Some(s.bad_lines.unwrap_or(0) + input.bad_lines);
        s.format = s.format.take().or_else(|| input.format.clone());
    }
    let ranking = cmp.finish();
    let adopters = adopters.finish();

    // The trend: every complete snapshot up to this month's.
    let mut series = Vec::new();
    for s in source::complete(req.out)? {
        if s.date > this.date {
            break;
        }
        let c = if s.date == this.date {
            counts.clone()
        } else if last.as_ref().is_some_and(|l| l.date == s.date) {
            last_counts.clone().unwrap_or_default()
        } else {
            let mut c = Counts::default();
            source::for_each_domain(&s.dir, |r| c.add(r, aliases))?;
            c
        };
        series.push((s.date.clone(), c));
    }

    // Hosts and probes: the failures, and the hosts of provider and lookup pages.
    let hosts = source::hosts(&this.dir)?;
    let probes = source::probes(&this.dir)?;
    let judged_at = run.judged_at;
    let fails = failures(&hosts, &probes, &used, judged_at, opts.expiring_days);
    let mut probes_of: HashMap<&str, Vec<&ProbeRow>> = HashMap::new();
    for p in &probes {
        probes_of.entry(p.host.as_str()).or_default().push(p);
    }
    let with_probes = |h: &HostRow| -> (HostRow, Vec<ProbeRow>) {
        let mut ps: Vec<ProbeRow> = probes_of
            .get(h.host.as_str())
            .map(|v| v.iter().map(|p| (*p).clone()).collect())
            .unwrap_or_default();
        ps.sort_by(|a, b| a.address.cmp(&b.address));
        (h.clone(), ps)
    };

    // Provider pages: the top of the ranking, their domains from a second pass.
    let top: Vec<&crate::report::rank::RankRow> =
        ranking.rows.iter().take(opts.provider_pages).collect();
    let index: HashMap<&str, usize> = top
        .iter()
        .enumerate()
        .map(|(i, r)| (r.provider.as_str(), i))
        .collect();
    let mut domains: Vec<Vec<ProviderDomain>> = vec![Vec::new(); top.len()];
    if !top.is_empty() {
        source::for_each_domain(&this.dir, |r| {
            let Some(p) = r.provider.as_deref() else {
                return;
            };
            if let Some(&i) = index.get(aliases.group(p)) {
                domains[i].push(ProviderDomain {
                    domain: r.domain.clone(),
                    verdict: r.verdict,
                    mx_security: r.mx_security.clone(),
                });
            }
        })?;
    }
    let mut host_lists: Vec<Vec<(HostRow, Vec<ProbeRow>)>> = vec![Vec::new(); top.len()];
    for h in &hosts {
        let Some(p) = h.provider.as_deref() else {
            continue;
        };
        if let Some(&i) = index.get(aliases.group(p)) {
            host_lists[i].push(with_probes(h));
        }
    }
    let mut providers = Vec::new();
    for ((rank, mut doms), mut hs) in top.iter().zip(domains).zip(host_lists) {
        doms.sort_by(|a, b| (a.verdict, &a.domain).cmp(&(b.verdict, &b.domain)));
        hs.sort_by(|a, b| {
            used.of(&b.0.host)
                .0
                .cmp(&used.of(&a.0.host).0)
                .then(a.0.host.cmp(&b.0.host))
        });
        let host_use = hs
            .iter()
            .map(|(h, _)| (h.host.clone(), used.of(&h.host)))
            .collect();
        let history = series
            .iter()
            .map(|(d, c)| {
                (
                    d.clone(),
                    c.provider.get(&rank.provider).copied().unwrap_or_default(),
                )
            })
            .collect();
        providers.push(ProviderDetail {
            rank: (*rank).clone(),
            domains: doms,
            hosts: hs,
            host_use,
            history,
        });
    }

    // Lookup pages.
    let host_index: HashMap<&str, &HostRow> = hosts.iter().map(|h| (h.host.as_str(), h)).collect();
    let mut lookups = Vec::new();
    let mut seen = HashSet::new();
    for d in req.lookups {
        if !seen.insert(d.as_str()) {
            continue;
        }
        let row = rows.remove(d.as_str());
        let mut names: Vec<&str> = Vec::new();
        if let Some(r) = &row {
            for mx in &r.mx {
                if !names.contains(&mx.exchange.as_str()) {
                    names.push(&mx.exchange);
                }
            }
        }
        let hs = names
            .iter()
            .filter_map(|n| host_index.get(n).map(|h| with_probes(h)))
            .collect();
        lookups.push(Lookup {
            domain: d.clone(),
            last: last
                .as_ref()
                .map(|_| last_verdicts.get(d.as_str()).copied()),
            row,
            hosts: hs,
        });
    }

    Ok(SiteData {
        month: this.date[..7].to_string(),
        snapshot: this.date.clone(),
        run,
        vs: last
            .as_ref()
            .map(|l| (l.date[..7].to_string(), l.date.clone())),
        ranking,
        adopters,
        failures: fails,
        counts: series,
        this: counts,
        last: last_counts,
        sources,
        providers,
        lookups,
        options: req.options.clone(),
    })
}
