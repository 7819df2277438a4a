//! The pages: a [`SiteData`] in, every page, CSV download and chart out, purely.
//!
//! Layout of the site (paths relative to its root):
//!
//! ```text
//! index.html        headline figures, coverage per source and TLD, the trend chart
//! ranking.html      providers by DANE domains with the change explanation
//! adopters.html     slow adopters
//! failures.html     broken MX hosts with evidence, early warnings
//! trend.html        the series over every snapshot, per TLD and per top provider
//! providers/P.html  one page per provider at the top of the ranking
//! lookup/index.html and lookup/D.html   the domains named with --lookup
//! *.csv             every table of a page, next to it (same stem as the table's id)
//! *.svg, style.css  the charts and the stylesheet
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use anyhow::Result;

use super::files::{slug, SiteFiles};
use super::html::{esc, percent, CellLink, Page, TableHtml, CSS, FAVICON};
use super::{Lookup, ProviderDetail, SiteData};
use crate::report::failures::rfc3339;
use crate::report::rank::{explain_lines, RankRow};
use crate::report::table::{signed, thousands, Cell, Kind, Table};
use crate::report::{adopters, failures, rank, trend};
use crate::snapshot::{HostRow, ProbeRow};
use crate::verdict::DomainVerdict;

/// Builds every file of the site.
pub fn build(d: &SiteData) -> Result<SiteFiles> {
    let ctx = Ctx::new(d);
    let mut f = SiteFiles::default();
    f.add("style.css", CSS)?;
    f.add("favicon.svg", FAVICON)?;
    index(&ctx, &mut f)?;
    ranking(&ctx, &mut f)?;
    adopters_page(&ctx, &mut f)?;
    failures_page(&ctx, &mut f)?;
    trend_page(&ctx, &mut f)?;
    for p in &d.providers {
        provider_page(&ctx, p, &mut f)?;
    }
    lookup_index(&ctx, &mut f)?;
    for l in &d.lookups {
        lookup_page(&ctx, l, &mut f)?;
    }
    Ok(f)
}

/// The file of a provider's page, relative to the site root.
pub fn provider_path(provider: &str) -> String {
    format!("providers/{}.html", slug(provider))
}

/// The file of a domain's lookup page, relative to the site root.
pub fn lookup_path(domain: &str) -> String {
    format!("lookup/{}.html", slug(domain))
}

/// What every page needs: the data, the subtitle, the footer and which pages exist.
struct Ctx<'a> {
    d: &'a SiteData,
    subtitle: String,
    footer: String,
    /// Providers with a page → their page.
    provider_pages: HashMap<&'a str, String>,
    /// Domains with a lookup page → their page.
    lookup_pages: HashMap<&'a str, String>,
    points: Vec<trend::Point>,
}

impl<'a> Ctx<'a> {
    fn new(d: &'a SiteData) -> Ctx<'a> {
        let vs =
            d.vs.as_ref()
                .map(|(m, s)| format!(", compared with {m} (snapshot {s})"))
                .unwrap_or_else(|| ", no earlier month to compare with".into());
        let subtitle = format!("{} (snapshot {}){vs}", d.month, d.snapshot);
        let footer = format!(
            "Built by dane-survey {} from snapshot {}{}; certificates judged at {}; snapshot \
             schema {}, verdict taxonomy {}. Every table is also a CSV file next to its page.",
            env!("CARGO_PKG_VERSION"),
            d.snapshot,
            d.vs.as_ref()
                .map(|(_, s)| format!(" and {s}"))
                .unwrap_or_default(),
            rfc3339(d.run.judged_at),
            d.run.schema_version,
            d.run.taxonomy_version,
        );
        Ctx {
            d,
            subtitle,
            footer,
            provider_pages: d
                .providers
                .iter()
                .map(|p| (p.rank.provider.as_str(), provider_path(&p.rank.provider)))
                .collect(),
            lookup_pages: d
                .lookups
                .iter()
                .map(|l| (l.domain.as_str(), lookup_path(&l.domain)))
                .collect(),
            points: trend::series(&d.counts, d.options.trend_providers),
        }
    }

    fn page(&self, title: &str, path: &str, body: &str) -> String {
        Page {
            title,
            subtitle: &self.subtitle,
            path,
            footer: &self.footer,
        }
        .render(body)
    }

    /// A link (relative to a page at `from`) to the provider's page, if it has one.
    fn provider_link(&self, from: &str, provider: &str) -> Option<String> {
        self.provider_pages
            .get(provider)
            .map(|p| format!("{}{p}", up(from)))
    }

    /// A link (relative to a page at `from`) to the domain's lookup page, if it has one.
    fn lookup_link(&self, from: &str, domain: &str) -> Option<String> {
        self.lookup_pages
            .get(domain)
            .map(|p| format!("{}{p}", up(from)))
    }

    /// A provider's name, linked to its page when it has one (escaped HTML).
    fn provider_html(&self, from: &str, provider: &str) -> String {
        match self.provider_link(from, provider) {
            Some(href) => format!("<a href=\"{}\">{}</a>", esc(&href), esc(provider)),
            None => esc(provider),
        }
    }
}

/// From a page at `path` up to the site root.
fn up(path: &str) -> String {
    "../".repeat(path.matches('/').count())
}

/// The file name part of a site path (`providers/x.csv` → `x.csv`): CSV links are relative
/// to their page, which sits in the same directory.
fn base(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// How a table is shown on its page: rows shown, the row-header column, links.
#[derive(Default)]
struct Show<'a> {
    limit: Option<usize>,
    row_header: usize,
    link: Option<CellLink<'a>>,
}

impl Show<'_> {
    fn rows(n: usize) -> Show<'static> {
        Show {
            limit: Some(n),
            ..Show::default()
        }
    }
}

/// Adds `t` as `csv` and returns its HTML under `caption` (`id` = the CSV's stem).
fn table_and_csv(
    f: &mut SiteFiles,
    csv: &str,
    caption: &str,
    t: &Table,
    show: Show,
) -> Result<String> {
    f.add(csv, t.csv())?;
    let id = base(csv).trim_end_matches(".csv").to_owned();
    let mut h = TableHtml::new(&id, caption, Some(base(csv)));
    h.limit = show.limit;
    h.row_header = Some(show.row_header);
    h.link = show.link;
    Ok(h.render(t))
}

fn share(n: u64, of: u64) -> Cell {
    if of == 0 {
        Cell::Null
    } else {
        Cell::Share(n as f64 / of as f64)
    }
}

fn figure(o: &mut String, id: &str, value: &str, label: &str) {
    let _ = writeln!(
        o,
        "<li><span class=\"value\" id=\"{}\">{}</span> <span class=\"label\">{}</span></li>",
        esc(id),
        esc(value),
        esc(label)
    );
}

fn index(c: &Ctx, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let now = d.this.all;
    let last = d.last.as_ref().map(|l| l.all);
    let mut o = String::new();
    o.push_str("<h2>This month in figures</h2>\n<ul class=\"figures\">\n");
    figure(
        &mut o,
        "fig-domains",
        &thousands(now.domains as i64),
        "domains surveyed",
    );
    figure(
        &mut o,
        "fig-secure",
        &thousands(now.secure_mx as i64),
        "domains with a secure (DNSSEC-signed) MX RRset",
    );
    figure(
        &mut o,
        "fig-dane",
        &thousands(now.dane as i64),
        "DANE domains (every primary MX host passes DANE)",
    );
    figure(
        &mut o,
        "fig-share",
        &if now.secure_mx > 0 {
            percent(now.dane as f64 / now.secure_mx as f64)
        } else {
            "-".into()
        },
        "of the domains with a secure MX RRset have DANE",
    );
    match (last, &d.vs) {
        (Some(l), Some((m, _))) => figure(
            &mut o,
            "fig-change",
            &signed(now.dane as i64 - l.dane as i64),
            &format!("DANE domains since {m} ({} then)", thousands(l.dane as i64)),
        ),
        _ => figure(
            &mut o,
            "fig-change",
            "-",
            "no earlier month to compare with",
        ),
    }
    o.push_str("</ul>\n");

    let vs =
        d.vs.as_ref()
            .map(|(m, _)| m.as_str())
            .unwrap_or("last month");
    let this_col = d.month.clone();
    let last_col = vs.to_string();
    let mut t = Table::new(&[
        ("figure", "figure", Kind::Text),
        ("this_month", &this_col, Kind::Int),
        ("last_month", &last_col, Kind::Int),
        ("change", "change", Kind::Diff),
    ]);
    type Figure = (&'static str, fn(&trend::Triple) -> u64);
    let rows: [Figure; 3] = [
        ("domains surveyed", |t| t.domains),
        ("domains with a secure MX RRset", |t| t.secure_mx),
        ("DANE domains", |t| t.dane),
    ];
    for (name, get) in rows {
        let n = get(&now);
        let l = last.as_ref().map(get);
        t.push(vec![
            name.into(),
            n.into(),
            l.into(),
            l.map(|l| n as i64 - l as i64).into(),
        ]);
    }
    o.push_str(&table_and_csv(
        f,
        "headline.csv",
        "Headline figures",
        &t,
        Show::default(),
    )?);

    o.push_str("<h2>Trend</h2>\n");
    f.add("trend.svg", trend::svg(&c.points)?)?;
    let _ = writeln!(
        o,
        "<figure><img src=\"trend.svg\" width=\"900\" height=\"520\" alt=\"Line chart of \
         domains surveyed, domains with a secure MX RRset and DANE domains per snapshot; the \
         figures are in the tables of the trend page.\"><figcaption>Every snapshot so far. \
         <a href=\"trend.html\">The figures, per TLD and per provider</a>.</figcaption></figure>"
    );

    o.push_str("<h2>Coverage</h2>\n");
    let mut t = Table::new(&[
        ("source", "input source", Kind::Text),
        ("format", "format", Kind::Text),
        ("domains", "domains in the snapshot", Kind::Int),
        ("names", "names read", Kind::Int),
        ("bad_lines", "malformed lines skipped", Kind::Int),
    ]);
    for (name, s) in &d.sources {
        t.push(vec![
            name.as_str().into(),
            s.format.clone().into(),
            s.domains.into(),
            s.names.into(),
            s.bad_lines.into(),
        ]);
    }
    o.push_str(&table_and_csv(
        f,
        "coverage-sources.csv",
        "Domains per input source",
        &t,
        Show::rows(d.options.rows),
    )?);
    if d.run.domains_opted_out > 0 {
        let _ = writeln!(
            o,
            "<p>{} domains were skipped because they opted out.</p>",
            thousands(d.run.domains_opted_out as i64)
        );
    }
    let mut tlds: Vec<(&String, &trend::Triple)> = d.this.tld.iter().collect();
    tlds.sort_by(|a, b| b.1.domains.cmp(&a.1.domains).then(a.0.cmp(b.0)));
    let mut t = Table::new(&[
        ("tld", "TLD", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("secure_mx", "secure MX", Kind::Int),
        ("dane", "DANE", Kind::Int),
        ("share", "DANE share of secure MX", Kind::Share),
        ("dane_last", &format!("DANE {vs}"), Kind::Int),
        ("diff", "change", Kind::Diff),
    ]);
    for (tld, n) in tlds {
        let l = d
            .last
            .as_ref()
            .map(|l| l.tld.get(tld).map(|t| t.dane).unwrap_or(0));
        t.push(vec![
            tld.as_str().into(),
            n.domains.into(),
            n.secure_mx.into(),
            n.dane.into(),
            share(n.dane, n.secure_mx),
            l.into(),
            l.map(|l| n.dane as i64 - l as i64).into(),
        ]);
    }
    o.push_str(&table_and_csv(
        f,
        "coverage-tlds.csv",
        "Domains per TLD",
        &t,
        Show::rows(d.options.rows),
    )?);

    o.push_str("<h2>More</h2>\n<ul>\n");
    let _ = writeln!(
        o,
        "<li><a href=\"ranking.html\">Providers ranked by DANE domains</a>, with every change \
         explained</li>\n<li><a href=\"adopters.html\">Slow adopters</a>: signed domains whose \
         provider has no DANE yet</li>\n<li><a href=\"failures.html\">Failures</a>: {} MX \
         hosts where DANE senders defer mail now, and early warnings</li>",
        thousands(d.failures.failing.len() as i64)
    );
    o.push_str("</ul>\n");
    f.add("index.html", c.page("DANE for SMTP", "index.html", &o))?;
    Ok(())
}

fn ranking(c: &Ctx, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let r = &d.ranking;
    let vs = d.vs.as_ref().map(|(m, _)| m.as_str());
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<p id=\"rank-summary\">{} DANE domains of {} domains surveyed{}.</p>",
        thousands(r.dane_total as i64),
        thousands(r.domains as i64),
        match (r.dane_total_last, r.domains_last, vs) {
            (Some(dl), Some(nl), Some(m)) => format!(
                " ({} of {} in {m})",
                thousands(dl as i64),
                thousands(nl as i64)
            ),
            _ => String::new(),
        }
    );
    o.push_str(
        "<p>Places count DANE domains (verdict dane_valid); ties share a place. The last four \
         columns split the change by cause: domains new in or gone from the zone lists, zones \
         that gained or lost DNSSEC, domains that moved to or from the provider's MX hosts, \
         and TLSA records that were fixed or broke.</p>\n",
    );
    let t = rank::table(r, &d.month, vs, usize::MAX, true);
    let link = |col: usize, row: &[Cell]| match (col, &row[1]) {
        (1, Cell::Text(p)) => c.provider_link("ranking.html", p),
        _ => None,
    };
    o.push_str(&table_and_csv(
        f,
        "ranking.csv",
        &format!("Providers by DANE domains, {}", d.month),
        &t,
        Show {
            limit: Some(d.options.rows),
            row_header: 1,
            link: Some(&link),
        },
    )?);

    let movers = r.movers(d.options.movers);
    if !movers.is_empty() {
        let _ = writeln!(
            o,
            "<h2>Changes explained</h2>\n<p>The {} providers whose count changed most.</p>",
            movers.len()
        );
        for row in movers {
            let _ = writeln!(
                o,
                "<h3>{} {}</h3>",
                c.provider_html("ranking.html", &row.provider),
                esc(&signed(row.diff.unwrap_or(0)))
            );
            o.push_str(&explanation_html(row));
        }
    }

    let mut t = Table::new(&[
        ("provider", "provider", Kind::Text),
        ("domain", "domain", Kind::Text),
        ("delta", "change", Kind::Diff),
        ("cause", "cause", Kind::Text),
        ("why", "explanation", Kind::Text),
        ("other", "other provider", Kind::Text),
    ]);
    for row in &r.rows {
        for m in &row.explanation.domains {
            t.push(vec![
                row.provider.as_str().into(),
                m.domain.as_str().into(),
                m.delta.into(),
                m.cause.as_str().into(),
                m.cause.words(m.delta > 0).into(),
                m.other.clone().into(),
            ]);
        }
    }
    if !t.rows.is_empty() {
        o.push_str("<h2>The domains behind the changes</h2>\n");
        let _ = writeln!(
            o,
            "<p class=\"note\">Up to {} domains per provider, cause and direction; the counts \
             above are complete.</p>",
            d.options.examples
        );
        o.push_str(&table_and_csv(
            f,
            "changes.csv",
            "Domains that changed a provider's count",
            &t,
            Show::rows(d.options.rows),
        )?);
    }
    f.add(
        "ranking.html",
        c.page("Providers by DANE domains", "ranking.html", &o),
    )?;
    Ok(())
}

/// A provider's change explanation as a list (escaped HTML).
fn explanation_html(row: &RankRow) -> String {
    let mut o = String::from("<ul>\n");
    for l in explain_lines(row) {
        let more = if l.more > 0 {
            format!(" … and {} more", thousands(l.more as i64))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "<li><strong>{} {}</strong>: {}{}</li>",
            esc(&signed(l.delta())),
            esc(l.cause.words(l.up)),
            esc(&l.names.join(", ")),
            esc(&more)
        );
    }
    o.push_str("</ul>\n");
    o
}

fn adopters_page(c: &Ctx, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let mut o = String::from(
        "<p>Providers whose customers' zones are signed (secure MX RRset) but whose MX hosts \
         have no usable DANE: verdict no_tlsa (no TLSA records) or insecure_mx_host (MX hosts \
         in unsigned zones). One TLSA RRset, or one DS, at the provider would protect all of \
         them.</p>\n",
    );
    let t = adopters::table(&d.adopters, usize::MAX);
    let link = |col: usize, row: &[Cell]| match (col, &row[1]) {
        (1, Cell::Text(p)) => c.provider_link("adopters.html", p),
        _ => None,
    };
    o.push_str(&table_and_csv(
        f,
        "adopters.csv",
        &format!("Slow adopters, {}", d.month),
        &t,
        Show {
            limit: Some(d.options.rows),
            row_header: 1,
            link: Some(&link),
        },
    )?);
    f.add(
        "adopters.html",
        c.page("Slow adopters", "adopters.html", &o),
    )?;
    Ok(())
}

fn failures_page(c: &Ctx, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let fl = &d.failures;
    let rows = d.options.rows;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<p>MX hosts where a DANE sender defers mail now: the published TLSA records do not \
         match what an address presents, the TLSA lookup fails, or STARTTLS is missing. \
         <span id=\"failing-count\">{}</span> hosts. Everything on this page is also in one \
         file, <a href=\"failures-all.csv\" download>failures-all.csv</a> (the same as \
         <code>failures --format csv</code>).</p>",
        thousands(fl.failing.len() as i64)
    );
    f.add("failures-all.csv", failures::flat(fl).csv())?;
    let mut t = Table::new(&[
        ("host", "MX host", Kind::Text),
        ("provider", "provider", Kind::Text),
        ("problem", "problem", Kind::Text),
        ("verdict", "host verdict", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("signed_domains", "signed domains", Kind::Int),
        ("tlsa", "TLSA published", Kind::Text),
        ("reason", "reason", Kind::Text),
    ]);
    for h in &fl.failing {
        t.push(vec![
            h.host.as_str().into(),
            h.provider.clone().into(),
            h.problem.as_str().into(),
            h.verdict.as_str().into(),
            h.domains.into(),
            h.signed_domains.into(),
            h.tlsa.join("; ").into(),
            h.reason.as_str().into(),
        ]);
    }
    let link = |col: usize, row: &[Cell]| match (col, &row[1]) {
        (1, Cell::Text(p)) => c.provider_link("failures.html", p),
        _ => None,
    };
    o.push_str("<h2>Broken MX hosts</h2>\n");
    o.push_str(&table_and_csv(
        f,
        "failing-hosts.csv",
        "MX hosts where DANE senders defer mail, most domains first",
        &t,
        Show {
            limit: Some(rows),
            row_header: 0,
            link: Some(&link),
        },
    )?);

    let mut t = Table::new(&[
        ("host", "MX host", Kind::Text),
        ("address", "address", Kind::Text),
        ("address_verdict", "address verdict", Kind::Text),
        ("reason", "what happened", Kind::Text),
        ("probed_at", "probed at", Kind::Text),
        ("leaf_3_1_1", "leaf as 3 1 1 (what would match)", Kind::Text),
        ("cert_sha256", "certificates presented, SHA-256", Kind::Text),
        (
            "spki_sha256",
            "public keys presented, SPKI SHA-256",
            Kind::Text,
        ),
    ]);
    for h in &fl.failing {
        for e in &h.evidence {
            t.push(vec![
                h.host.as_str().into(),
                e.address.as_str().into(),
                e.verdict.as_str().into(),
                e.reason.as_str().into(),
                e.probed_at.clone().into(),
                e.leaf_3_1_1.clone().into(),
                e.cert_sha256.join(" ").into(),
                e.spki_sha256.join(" ").into(),
            ]);
        }
    }
    o.push_str("<h2>Evidence</h2>\n<p>What each address of a broken host presented, next to the TLSA records above.</p>\n");
    o.push_str(&table_and_csv(
        f,
        "evidence.csv",
        "What the addresses of the broken hosts presented",
        &t,
        Show::rows(rows),
    )?);

    o.push_str("<h2>Early warnings</h2>\n");
    let mut t = Table::new(&[
        ("host", "MX host", Kind::Text),
        ("address", "address", Kind::Text),
        ("not_after", "certificate not after", Kind::Text),
        ("days_left", "days left", Kind::Int),
        ("domains", "domains", Kind::Int),
        ("tlsa", "usable TLSA records", Kind::Text),
    ]);
    for x in &fl.expiring {
        t.push(vec![
            x.host.as_str().into(),
            x.address.as_str().into(),
            x.not_after.as_str().into(),
            x.days_left.into(),
            x.domains.into(),
            x.tlsa.join("; ").into(),
        ]);
    }
    o.push_str(&table_and_csv(
        f,
        "expiring.csv",
        &format!(
            "Certificates of DANE-valid hosts expiring within {} days of {}",
            fl.expiring_days, fl.judged_at
        ),
        &t,
        Show::rows(rows),
    )?);
    let mut t = Table::new(&[
        ("host", "MX host", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("record", "the one usable TLSA record", Kind::Text),
    ]);
    for x in &fl.single_record {
        t.push(vec![
            x.host.as_str().into(),
            x.domains.into(),
            x.record.as_str().into(),
        ]);
    }
    o.push_str(&table_and_csv(
        f,
        "single-record.csv",
        "DANE-valid hosts with a single usable TLSA record (no slot for the next key)",
        &t,
        Show::rows(rows),
    )?);
    f.add(
        "failures.html",
        c.page("Failures and early warnings", "failures.html", &o),
    )?;
    Ok(())
}

/// Points of one group's series (scope `all`), for [`trend::svg_titled`].
fn as_all(series: &[(String, trend::Triple)]) -> Vec<trend::Point> {
    series
        .iter()
        .map(|(date, t)| trend::Point {
            snapshot: date.clone(),
            scope: "all".into(),
            key: String::new(),
            counts: *t,
        })
        .collect()
}

fn series_table(scope_title: Option<&str>, points: &[&trend::Point]) -> Table {
    let mut cols = Vec::new();
    if let Some(s) = scope_title {
        cols.push(("key", s, Kind::Text));
    }
    cols.extend([
        ("snapshot", "snapshot", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("secure_mx", "secure MX", Kind::Int),
        ("dane", "DANE", Kind::Int),
        ("share", "DANE share of secure MX", Kind::Share),
    ]);
    let mut t = Table::new(&cols);
    for p in points {
        let mut row = Vec::new();
        if scope_title.is_some() {
            row.push(p.key.as_str().into());
        }
        row.extend([
            p.snapshot.as_str().into(),
            p.counts.domains.into(),
            p.counts.secure_mx.into(),
            p.counts.dane.into(),
            share(p.counts.dane, p.counts.secure_mx),
        ]);
        t.push(row);
    }
    t
}

fn trend_page(c: &Ctx, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<figure><img src=\"trend.svg\" width=\"900\" height=\"520\" alt=\"Line chart of \
         domains surveyed, domains with a secure MX RRset and DANE domains per snapshot; the \
         figures are in the table below.\"><figcaption>{} snapshots. The whole series (all, \
         per TLD, per top provider) is one file: <a href=\"trend.csv\" download>trend.csv</a> \
         (the same as <code>trend --format csv</code>).</figcaption></figure>",
        thousands(d.counts.len() as i64)
    );
    f.add("trend.csv", trend::table(&c.points).csv())?;
    let all: Vec<&trend::Point> = c.points.iter().filter(|p| p.scope == "all").collect();
    o.push_str(&table_and_csv(
        f,
        "trend-all.csv",
        "All domains per snapshot",
        &series_table(None, &all),
        Show::default(),
    )?);

    o.push_str("<h2>Per TLD</h2>\n");
    let mut tlds: Vec<(&String, u64)> = d.this.tld.iter().map(|(k, t)| (k, t.domains)).collect();
    tlds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (tld, _) in tlds.iter().take(d.options.tld_charts) {
        let series: Vec<(String, trend::Triple)> = c
            .points
            .iter()
            .filter(|p| p.scope == "tld" && p.key == **tld)
            .map(|p| (p.snapshot.clone(), p.counts))
            .collect();
        let file = format!("trend/{}.svg", slug(tld));
        f.add(
            &file,
            trend::svg_titled(&as_all(&series), &format!("Domains in .{tld} per snapshot"))?,
        )?;
        let _ = writeln!(
            o,
            "<figure><img src=\"{}\" width=\"900\" height=\"520\" alt=\"Line chart of the \
             domains in .{} per snapshot; the figures are in the table below.\">\
             </figure>",
            esc(&file),
            esc(tld)
        );
    }
    let tld_points: Vec<&trend::Point> = c.points.iter().filter(|p| p.scope == "tld").collect();
    let mut sorted = tld_points.clone();
    sorted.sort_by(|a, b| (&a.key, &a.snapshot).cmp(&(&b.key, &b.snapshot)));
    o.push_str(&table_and_csv(
        f,
        "trend-tld.csv",
        "Domains per TLD and snapshot",
        &series_table(Some("TLD"), &sorted),
        Show::rows(d.options.rows),
    )?);

    o.push_str("<h2>Top providers</h2>\n");
    let mut prov: Vec<&trend::Point> = c.points.iter().filter(|p| p.scope == "provider").collect();
    prov.sort_by(|a, b| (&a.key, &a.snapshot).cmp(&(&b.key, &b.snapshot)));
    let link = |col: usize, row: &[Cell]| match (col, &row[0]) {
        (0, Cell::Text(p)) => c.provider_link("trend.html", p),
        _ => None,
    };
    o.push_str(&table_and_csv(
        f,
        "trend-providers.csv",
        &format!(
            "The {} providers with the most DANE domains in the latest snapshot, per snapshot",
            d.options.trend_providers
        ),
        &series_table(Some("provider"), &prov),
        Show {
            limit: Some(d.options.rows),
            row_header: 0,
            link: Some(&link),
        },
    )?);
    f.add("trend.html", c.page("Trend", "trend.html", &o))?;
    Ok(())
}

/// A provider's domains per verdict.
fn verdict_counts(p: &ProviderDetail) -> BTreeMap<DomainVerdict, u64> {
    let mut m = BTreeMap::new();
    for x in &p.domains {
        *m.entry(x.verdict).or_default() += 1;
    }
    m
}

fn address_summary(ps: &[ProbeRow]) -> String {
    ps.iter()
        .map(|p| format!("{} {}", p.address, p.verdict))
        .collect::<Vec<_>>()
        .join("; ")
}

fn provider_page(c: &Ctx, p: &ProviderDetail, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let r = &p.rank;
    let path = provider_path(&r.provider);
    let stem = path.trim_end_matches(".html").to_owned();
    let vs = d.vs.as_ref().map(|(m, _)| m.as_str());
    let mut o = String::new();
    o.push_str("<dl class=\"facts\">\n");
    let fact = |o: &mut String, id: &str, k: &str, v: String| {
        let _ = writeln!(
            o,
            "<dt>{}</dt><dd id=\"{}\">{}</dd>",
            esc(k),
            esc(id),
            esc(&v)
        );
    };
    fact(
        &mut o,
        "place",
        "Place",
        r.place.map(|x| x.to_string()).unwrap_or("-".into()),
    );
    fact(
        &mut o,
        "dane",
        &format!("DANE domains, {}", d.month),
        thousands(r.dane as i64),
    );
    if let Some(m) = vs {
        fact(
            &mut o,
            "dane-last",
            &format!("DANE domains, {m}"),
            r.dane_last
                .map(|x| thousands(x as i64))
                .unwrap_or("-".into()),
        );
        fact(
            &mut o,
            "change",
            "Change",
            r.diff.map(signed).unwrap_or("-".into()),
        );
        fact(
            &mut o,
            "place-last",
            &format!("Place, {m}"),
            r.place_last.map(|x| x.to_string()).unwrap_or("-".into()),
        );
    }
    fact(
        &mut o,
        "signed",
        "Domains with a secure MX RRset",
        thousands(r.signed as i64),
    );
    fact(
        &mut o,
        "share",
        "DANE share of those",
        r.share.map(percent).unwrap_or("-".into()),
    );
    fact(
        &mut o,
        "domains",
        "Domains in all",
        thousands(p.domains.len() as i64),
    );
    o.push_str("</dl>\n");
    if r.diff.is_some_and(|x| x != 0) {
        o.push_str("<h2>The change explained</h2>\n");
        o.push_str(&explanation_html(r));
    }

    o.push_str("<h2>Domains by verdict</h2>\n");
    let mut t = Table::new(&[
        ("verdict", "verdict", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("share", "share of its domains", Kind::Share),
    ]);
    for (v, n) in verdict_counts(p) {
        t.push(vec![
            v.as_str().into(),
            n.into(),
            share(n, p.domains.len() as u64),
        ]);
    }
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-verdicts.csv"),
        "Its domains by verdict",
        &t,
        Show::default(),
    )?);
    let mut t = Table::new(&[
        ("domain", "domain", Kind::Text),
        ("verdict", "verdict", Kind::Text),
        ("mx_security", "MX security", Kind::Text),
    ]);
    for x in &p.domains {
        t.push(vec![
            x.domain.as_str().into(),
            x.verdict.as_str().into(),
            x.mx_security.clone().into(),
        ]);
    }
    let link = |col: usize, row: &[Cell]| match (col, &row[0]) {
        (0, Cell::Text(dom)) => c.lookup_link(&path, dom),
        _ => None,
    };
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-domains.csv"),
        "Its domains, by verdict and name",
        &t,
        Show {
            limit: Some(d.options.rows),
            row_header: 0,
            link: Some(&link),
        },
    )?);

    o.push_str("<h2>MX hosts and their TLSA records</h2>\n");
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-hosts.csv"),
        "Its MX hosts, most domains first",
        &hosts_table(&p.hosts, Some(&p.host_use)),
        Show::rows(d.options.rows),
    )?);

    o.push_str("<h2>History</h2>\n");
    let svg = format!("{stem}.svg");
    f.add(
        &svg,
        trend::svg_titled(&as_all(&p.history), &format!("{} per snapshot", r.provider))?,
    )?;
    let _ = writeln!(
        o,
        "<figure><img src=\"{}\" width=\"900\" height=\"520\" alt=\"Line chart of the \
         provider's domains, secure-MX domains and DANE domains per snapshot; the figures are \
         in the table below.\"></figure>",
        esc(base(&svg))
    );
    let pts = as_all(&p.history);
    let refs: Vec<&trend::Point> = pts.iter().collect();
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-history.csv"),
        "Its domains per snapshot",
        &series_table(None, &refs),
        Show::default(),
    )?);
    f.add(
        &path,
        c.page(&format!("Provider {}", r.provider), &path, &o),
    )?;
    Ok(())
}

/// MX hosts with their TLSA state (and, for a provider, the domains using each).
fn hosts_table(
    hosts: &[(HostRow, Vec<ProbeRow>)],
    uses: Option<&BTreeMap<String, (u64, u64)>>,
) -> Table {
    let mut cols = vec![
        ("host", "MX host", Kind::Text),
        ("verdict", "host verdict", Kind::Text),
    ];
    if uses.is_some() {
        cols.push(("domains", "domains", Kind::Int));
        cols.push(("signed_domains", "signed domains", Kind::Int));
    }
    cols.extend([
        ("tlsa_usable", "usable TLSA", Kind::Int),
        ("tlsa", "TLSA published", Kind::Text),
        ("tlsa_base_domain", "TLSA base domain", Kind::Text),
        ("addresses", "addresses probed", Kind::Text),
        ("reason", "reason", Kind::Text),
    ]);
    let mut t = Table::new(&cols);
    for (h, ps) in hosts {
        let mut row: Vec<Cell> = vec![h.host.as_str().into(), h.verdict.as_str().into()];
        if let Some(u) = uses {
            let (n, s) = u.get(&h.host).copied().unwrap_or((0, 0));
            row.push(n.into());
            row.push(s.into());
        }
        row.extend([
            (h.tlsa_usable.len() as u64).into(),
            h.tlsa.join("; ").into(),
            h.tlsa_base_domain.clone().into(),
            address_summary(ps).into(),
            h.reason.as_str().into(),
        ]);
        t.push(row);
    }
    t
}

fn lookup_index(c: &Ctx, f: &mut SiteFiles) -> Result<()> {
    let d = c.d;
    let path = "lookup/index.html";
    let mut o = String::from(
        "<p>One page per domain named when the site was built (<code>dane-survey site \
         --lookup DOMAIN</code>, or <code>--lookup-file FILE</code>): its verdict, its MX hosts, \
         their TLSA records and what each address presented.</p>\n",
    );
    if d.lookups.is_empty() {
        o.push_str("<p>No domain was named for this build.</p>\n");
    }
    let vs =
        d.vs.as_ref()
            .map(|(m, _)| m.as_str())
            .unwrap_or("last month");
    let last_title = format!("verdict {vs}");
    let mut t = Table::new(&[
        ("domain", "domain", Kind::Text),
        ("verdict", "verdict", Kind::Text),
        ("provider", "provider", Kind::Text),
        ("last_verdict", &last_title, Kind::Text),
    ]);
    for l in &d.lookups {
        t.push(vec![
            l.domain.as_str().into(),
            l.row
                .as_ref()
                .map(|r| r.verdict.as_str())
                .unwrap_or("not in the snapshot")
                .into(),
            l.row.as_ref().and_then(|r| r.provider.clone()).into(),
            last_verdict(l).into(),
        ]);
    }
    let link = |col: usize, row: &[Cell]| match (col, &row[0]) {
        (0, Cell::Text(dom)) => c.lookup_link(path, dom),
        _ => None,
    };
    o.push_str(&table_and_csv(
        f,
        "lookup/lookups.csv",
        "The domains looked up",
        &t,
        Show {
            link: Some(&link),
            ..Show::default()
        },
    )?);
    f.add(path, c.page("Domain lookup", path, &o))?;
    Ok(())
}

fn last_verdict(l: &Lookup) -> Option<String> {
    match l.last {
        None => None,
        Some(None) => Some("not in the snapshot".into()),
        Some(Some(v)) => Some(v.as_str().into()),
    }
}

fn lookup_page(c: &Ctx, l: &Lookup, f: &mut SiteFiles) -> Result<()> {
    let path = lookup_path(&l.domain);
    let stem = path.trim_end_matches(".html").to_owned();
    let mut o = String::new();
    let Some(r) = &l.row else {
        let _ = writeln!(
            o,
            "<p id=\"verdict\">{} is not in the snapshot of {}: it was not in the zone lists \
             crawled, or it opted out.</p>",
            esc(&l.domain),
            esc(&c.d.snapshot)
        );
        f.add(&path, c.page(&l.domain, &path, &o))?;
        return Ok(());
    };
    o.push_str("<dl class=\"facts\">\n");
    let _ = writeln!(
        o,
        "<dt>Verdict</dt><dd id=\"verdict\" class=\"verdict-{0}\">{0}</dd>",
        esc(r.verdict.as_str())
    );
    let mut fact = |k: &str, v: String| {
        let _ = writeln!(o, "<dt>{}</dt><dd>{}</dd>", esc(k), v);
    };
    fact("Why", esc(&r.reason));
    if let Some(v) = last_verdict(l) {
        fact(
            &format!(
                "Verdict {}",
                c.d.vs.as_ref().map(|(m, _)| m.as_str()).unwrap_or("")
            ),
            esc(&v),
        );
    }
    if let Some(a) = r.all_hosts_verdict {
        fact("Verdict over every MX host", esc(a.as_str()));
    }
    fact("MX lookup", esc(&r.mx_lookup));
    fact(
        "Provider",
        r.provider
            .as_deref()
            .map(|p| c.provider_html(&path, p))
            .unwrap_or("-".into()),
    );
    fact("TLD", esc(&r.tld));
    fact("Input source", esc(&r.source));
    o.push_str("</dl>\n");

    let by_name: HashMap<&str, &(HostRow, Vec<ProbeRow>)> =
        l.hosts.iter().map(|h| (h.0.host.as_str(), h)).collect();
    let mut t = Table::new(&[
        ("exchange", "MX host", Kind::Text),
        ("preference", "preference", Kind::Int),
        ("primary", "primary", Kind::Text),
        ("verdict", "host verdict", Kind::Text),
        ("tlsa_usable", "usable TLSA", Kind::Int),
        ("reason", "reason", Kind::Text),
    ]);
    for mx in &r.mx {
        let h = by_name.get(mx.exchange.as_str());
        t.push(vec![
            mx.exchange.as_str().into(),
            (mx.preference as i64).into(),
            if r.primary_hosts.contains(&mx.exchange) {
                "yes"
            } else {
                "no"
            }
            .into(),
            h.map(|h| h.0.verdict.as_str()).into(),
            h.map(|h| h.0.tlsa_usable.len() as u64).into(),
            h.map(|h| h.0.reason.as_str()).into(),
        ]);
    }
    o.push_str("<h2>MX hosts</h2>\n");
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-mx.csv"),
        "The MX RRset",
        &t,
        Show::default(),
    )?);

    let mut t = Table::new(&[
        ("host", "MX host", Kind::Text),
        ("record", "TLSA record", Kind::Text),
        ("usable", "usable", Kind::Text),
        ("why_not", "why not usable", Kind::Text),
    ]);
    for (h, _) in &l.hosts {
        for rec in &h.tlsa_usable {
            t.push(vec![
                h.host.as_str().into(),
                rec.as_str().into(),
                "yes".into(),
                Cell::Null,
            ]);
        }
        for u in &h.tlsa_unusable {
            t.push(vec![
                h.host.as_str().into(),
                u.record.as_str().into(),
                "no".into(),
                u.reason.as_str().into(),
            ]);
        }
    }
    o.push_str("<h2>TLSA records</h2>\n");
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-tlsa.csv"),
        "TLSA records of its MX hosts",
        &t,
        Show::default(),
    )?);

    let mut t = Table::new(&[
        ("host", "MX host", Kind::Text),
        ("address", "address", Kind::Text),
        ("verdict", "address verdict", Kind::Text),
        ("reason", "what happened", Kind::Text),
        ("tls", "TLS", Kind::Text),
        ("matched", "matching TLSA record", Kind::Text),
        ("leaf_3_1_1", "leaf as 3 1 1", Kind::Text),
        ("leaf_not_after", "certificate not after", Kind::Text),
        ("probed_at", "probed at", Kind::Text),
    ]);
    for (h, ps) in &l.hosts {
        for p in ps {
            t.push(vec![
                h.host.as_str().into(),
                p.address.as_str().into(),
                p.verdict.as_str().into(),
                p.reason.as_str().into(),
                match (&p.tls_version, &p.cipher) {
                    (Some(v), Some(c)) => Cell::Text(format!("{v} {c}")),
                    (Some(v), None) => Cell::Text(v.clone()),
                    _ => Cell::Null,
                },
                p.matched.clone().into(),
                p.leaf_3_1_1.clone().into(),
                p.leaf_not_after.map(rfc3339).into(),
                p.probed_at
                    .map(|us| rfc3339(us.div_euclid(1_000_000)))
                    .into(),
            ]);
        }
    }
    o.push_str("<h2>What each address presented</h2>\n");
    o.push_str(&table_and_csv(
        f,
        &format!("{stem}-probes.csv"),
        "STARTTLS probes of its MX hosts",
        &t,
        Show::default(),
    )?);
    f.add(&path, c.page(&l.domain, &path, &o))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::failures::{Evidence, FailingHost, Failures};
    use crate::report::rank::tests::row;
    use crate::report::rank::{Aliases, Compare};
    use crate::report::trend::Counts;
    use crate::site::{Options, ProviderDomain, SourceCoverage};
    use crate::snapshot::{MxRecord, RunInfo};
    use crate::verdict::{AddressVerdict, HostVerdict};

    const EVIL_P: &str = "<script>alert(1)</script>/../../etc";
    const EVIL_D: &str = "\"><img src=x onerror=alert(2)>.test";

    fn host(name: &str) -> HostRow {
        HostRow {
            host: name.into(),
            provider: Some(EVIL_P.into()),
            address_lookup: "secure data (1)".into(),
            address_security: Some("secure".into()),
            canonical: None,
            addresses: vec!["192.0.2.1".into()],
            tlsa_lookups: Vec::new(),
            tlsa_base_domain: None,
            tlsa: vec!["3 1 1 </td><script>x</script>".into()],
            tlsa_usable: vec!["3 1 1 </td><script>x</script>".into()],
            tlsa_unusable: Vec::new(),
            verdict: HostVerdict::Failing,
            reason: "<b>bad</b>".into(),
            opted_out: false,
            resolved_at: 0,
        }
    }

    /// Hostile names everywhere: every page escapes them and no file name leaves the site.
    #[test]
    fn hostile_names_are_escaped_and_contained() {
        let s = Some("secure");
        let a = Aliases::default();
        let mut cmp = Compare::new(&a, true, None);
        cmp.add_last(&row(EVIL_D, Some(EVIL_P), s, DomainVerdict::NoTlsa));
        let mut this = row(EVIL_D, Some(EVIL_P), s, DomainVerdict::DaneValid);
        this.mx = vec![MxRecord {
            preference: 10,
            exchange: "<mx>".into(),
        }];
        this.primary_hosts = vec!["<mx>".into()];
        this.reason = "<i>why</i>".into();
        cmp.add_this(&this);
        let ranking = cmp.finish();
        let mut counts = Counts::default();
        counts.add(&this, &a);
        let mut sources = BTreeMap::new();
        sources.insert("<src>".to_string(), SourceCoverage::default());
        let mut probe = crate::site::synth::tests_probe("<mx>");
        probe.reason = "<u>tls</u>".into();
        let d = SiteData {
            month: "2026-11".into(),
            snapshot: "2026-11-01".into(),
            run: RunInfo::default(),
            vs: Some(("2026-10".into(), "2026-10-01".into())),
            adopters: Vec::new(),
            failures: Failures {
                failing: vec![FailingHost {
                    host: "<mx>".into(),
                    provider: Some(EVIL_P.into()),
                    verdict: HostVerdict::Failing,
                    problem: "tlsa_mismatch".into(),
                    domains: 1,
                    signed_domains: 1,
                    tlsa: vec!["3 1 1 <script>".into()],
                    reason: "<script>".into(),
                    evidence: vec![Evidence {
                        address: "192.0.2.1".into(),
                        verdict: AddressVerdict::TlsaMismatch,
                        reason: "<script>".into(),
                        cert_sha256: vec!["<script>".into()],
                        spki_sha256: Vec::new(),
                        leaf_3_1_1: Some("3 1 1 <script>".into()),
                        probed_at: None,
                    }],
                }],
                ..Failures::default()
            },
            counts: vec![
                ("2026-10-01".into(), counts.clone()),
                ("2026-11-01".into(), counts.clone()),
            ],
            last: Some(counts.clone()),
            this: counts,
            sources,
            providers: vec![ProviderDetail {
                rank: ranking.rows[0].clone(),
                domains: vec![ProviderDomain {
                    domain: EVIL_D.into(),
                    verdict: DomainVerdict::DaneValid,
                    mx_security: Some("secure".into()),
                }],
                hosts: vec![(host("<mx>"), vec![probe.clone()])],
                host_use: BTreeMap::new(),
                history: Vec::new(),
            }],
            lookups: vec![Lookup {
                domain: EVIL_D.into(),
                row: Some(this),
                last: Some(Some(DomainVerdict::NoTlsa)),
                hosts: vec![(host("<mx>"), vec![probe])],
            }],
            ranking,
            options: Options::default(),
        };
        let site = build(&d).unwrap();
        let mut pages = 0;
        for (path, bytes) in &site.files {
            assert!(crate::site::files::is_safe_rel(path), "{path}");
            assert!(!path.contains("..") && !path.contains('<'), "{path}");
            if !path.ends_with(".html") {
                continue;
            }
            pages += 1;
            let html = std::str::from_utf8(bytes).unwrap();
            for bad in [
                "<script",
                "<img src=x",
                "<b>",
                "<i>",
                "<u>",
                "<mx>",
                "<src>",
            ] {
                assert!(!html.contains(bad), "{path} holds {bad}:\n{html}");
            }
        }
        // index, ranking, adopters, failures, trend, one provider, lookup index and one lookup.
        assert_eq!(pages, 8, "{:?}", site.files.keys().collect::<Vec<_>>());
        let p = std::str::from_utf8(site.get(&provider_path(EVIL_P)).unwrap()).unwrap();
        assert!(
            p.contains("&lt;script&gt;alert(1)&lt;/script&gt;/../../etc"),
            "{p}"
        );
        let l = std::str::from_utf8(site.get(&lookup_path(EVIL_D)).unwrap()).unwrap();
        assert!(l.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.test"));
        // The CSV keeps the text as it is, quoted per RFC 4180.
        let csv = std::str::from_utf8(site.get("lookup/lookups.csv").unwrap()).unwrap();
        assert!(
            csv.contains("\"\"\"><img src=x onerror=alert(2)>.test\""),
            "{csv}"
        );
    }
}
