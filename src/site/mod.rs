//! The monthly report as a static web site: `dane-survey site --dest DIR`.
//!
//! The site is one more rendering of the reports of [`crate::report`]: the ranking with its
//! change explanation ([`crate::report::rank`]), the slow adopters, the failures with their
//! evidence and early warnings, and the trend with its SVG chart are computed by those modules
//! exactly as the `rank`, `adopters`, `failures` and `trend` commands compute them; this
//! module only gathers them once ([`load`]) and writes them as pages ([`pages`]). Every table
//! of a page is a [`crate::report::table::Table`], rendered both as HTML and as the CSV next
//! to the page, so the two cannot disagree.
//!
//! * [`html`] — escaping, the page frame, tables as accessible HTML, the stylesheet;
//! * [`files`] — safe file names from provider and domain names, writing the site whole;
//! * [`load`] — the only I/O that reads: picks the snapshots and streams their tables into a
//!   [`SiteData`];
//! * [`pages`] — pure: a [`SiteData`] in, every page, CSV and chart out ([`files::SiteFiles`]);
//! * [`synth`] — synthetic snapshots (a million domains and more) for `scripts/bench-site`.
//!
//! The pages use no JavaScript and request nothing outside the site: one stylesheet and the
//! SVG charts, all relative links, so the directory can be published anywhere as it is.

pub mod files;
pub mod html;
pub mod load;
pub mod pages;
pub mod synth;

use std::collections::BTreeMap;

use crate::report::adopters::AdopterRow;
use crate::report::failures::Failures;
use crate::report::rank::{RankRow, Ranking};
use crate::report::trend::{Counts, Triple};
use crate::snapshot::{DomainRow, HostRow, ProbeRow, RunInfo};
use crate::verdict::DomainVerdict;

/// How much the site shows; the CSV downloads always hold every row.
///
/// Exists so the pages stay readable for a million domains while the data stays complete.
#[derive(Clone, Debug)]
pub struct Options {
    /// Providers (from the top of the ranking) that get a page of their own.
    pub provider_pages: usize,
    /// Rows shown per table on a page.
    pub rows: usize,
    /// Providers whose change is explained in words (the top movers).
    pub movers: usize,
    /// Domains named per provider, cause and direction in the explanation.
    pub examples: usize,
    /// Early-warning window for expiring certificates, in days.
    pub expiring_days: i64,
    /// Providers in the trend series (the most DANE domains in the latest snapshot).
    pub trend_providers: usize,
    /// TLDs with a chart of their own on the trend page (the most domains).
    pub tld_charts: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            provider_pages: 20,
            rows: 200,
            movers: 10,
            examples: 10,
            expiring_days: 14,
            trend_providers: 5,
            tld_charts: 12,
        }
    }
}

/// One input source's coverage this month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceCoverage {
    /// Domains of the snapshot that came from it.
    pub domains: u64,
    /// Names the crawl extracted from it (`run.json`), when recorded.
    pub names: Option<u64>,
    /// Malformed lines skipped (`run.json`), when recorded.
    pub bad_lines: Option<u64>,
    /// `zone` or `list`.
    pub format: Option<String>,
}

/// One domain of a provider page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderDomain {
    /// The domain.
    pub domain: String,
    /// Its verdict this month.
    pub verdict: DomainVerdict,
    /// Its MX lookup's security (`secure`, `insecure`; `None` when it failed).
    pub mx_security: Option<String>,
}

/// Everything one provider page shows.
///
/// Exists because a provider's customers ask "what about us": its place, its domains by
/// verdict, the state of its MX hosts and its history, on one page.
#[derive(Clone, Debug)]
pub struct ProviderDetail {
    /// Its line of the ranking (with the change explanation).
    pub rank: RankRow,
    /// Its domains this month, sorted by verdict then name.
    pub domains: Vec<ProviderDomain>,
    /// Its MX hosts (hosts whose provider is it), most domains first, with their probes.
    pub hosts: Vec<(HostRow, Vec<ProbeRow>)>,
    /// Per host: domains whose primary hosts include it, and of those with a secure MX RRset.
    pub host_use: BTreeMap<String, (u64, u64)>,
    /// Its counts in every snapshot of the trend (date, counts; zero where it had none).
    pub history: Vec<(String, Triple)>,
}

/// Everything one lookup page shows.
///
/// Exists so a domain owner can be sent a page about their own domain without a server:
/// the pages are generated for the domains named at build time.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The domain as asked, normalised.
    pub domain: String,
    /// Its row this month (`None`: not in the snapshot).
    pub row: Option<DomainRow>,
    /// Its verdict last month: `None` without a last month, `Some(None)` when it was not in
    /// last month's snapshot.
    pub last: Option<Option<DomainVerdict>>,
    /// Its MX hosts (every exchange of its MX RRset, by preference) with their probes; a host
    /// missing from the hosts table is left out.
    pub hosts: Vec<(HostRow, Vec<ProbeRow>)>,
}

/// Every figure the site shows, gathered from the snapshots.
///
/// Exists to separate reading the snapshots ([`load`]) from writing pages ([`pages`]): pages
/// are built and tested from hand-made data.
#[derive(Clone, Debug)]
pub struct SiteData {
    /// `YYYY-MM` of the report.
    pub month: String,
    /// This month's snapshot date.
    pub snapshot: String,
    /// This month's `run.json`.
    pub run: RunInfo,
    /// The month compared with (`YYYY-MM`) and its snapshot date.
    pub vs: Option<(String, String)>,
    /// The ranking (`rank`).
    pub ranking: Ranking,
    /// The slow adopters (`adopters`).
    pub adopters: Vec<AdopterRow>,
    /// The failures and early warnings (`failures`).
    pub failures: Failures,
    /// Counts of every complete snapshot up to this month's, oldest first (`trend`).
    pub counts: Vec<(String, Counts)>,
    /// This month's counts.
    pub this: Counts,
    /// Last month's counts (`None` without a last month).
    pub last: Option<Counts>,
    /// Coverage per input source this month.
    pub sources: BTreeMap<String, SourceCoverage>,
    /// The provider pages, in ranking order.
    pub providers: Vec<ProviderDetail>,
    /// The lookup pages, in the order asked.
    pub lookups: Vec<Lookup>,
    /// What the site shows.
    pub options: Options,
}
