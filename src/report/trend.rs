//! `trend`: the long series, one point per complete snapshot — domains surveyed, domains with
//! a secure MX RRset, DANE domains — in all, per TLD and for the top providers; and the same
//! as an SVG line chart drawn in Rust (plotters, SVG backend only), so nobody needs Python to
//! see the graph.
//!
//! Pure: one [`Counts`] per snapshot is fed its domain rows, [`series`] turns them into tidy
//! [`Point`]s, [`svg`] draws them.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::rank::Aliases;
use super::table::{Kind, Table};
use crate::snapshot::DomainRow;
use crate::verdict::DomainVerdict;

/// Domains, secure-MX domains and DANE domains of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Triple {
    /// Domains surveyed.
    pub domains: u64,
    /// Domains whose MX RRset is secure (`mx_security = secure`).
    pub secure_mx: u64,
    /// DANE domains (`dane_valid`).
    pub dane: u64,
}

impl Triple {
    fn add(&mut self, secure: bool, dane: bool) {
        self.domains += 1;
        self.secure_mx += secure as u64;
        self.dane += dane as u64;
    }
}

/// One snapshot's counts, in all, per TLD and per provider.
///
/// Exists so each snapshot is read once, streaming, and the series is built from small
/// tallies.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// All domains.
    pub all: Triple,
    /// Per TLD.
    pub tld: HashMap<String, Triple>,
    /// Per provider (or alias group).
    pub provider: HashMap<String, Triple>,
}

impl Counts {
    /// Counts one domain row.
    pub fn add(&mut self, row: &DomainRow, aliases: &Aliases) {
        let secure = row.mx_security.as_deref() == Some("secure");
        let dane = row.verdict == DomainVerdict::DaneValid;
        self.all.add(secure, dane);
        self.tld
            .entry(row.tld.clone())
            .or_default()
            .add(secure, dane);
        if let Some(p) = row.provider.as_deref() {
            let g = aliases.group(p);
            match self.provider.get_mut(g) {
                Some(t) => t.add(secure, dane),
                None => self
                    .provider
                    .entry(g.to_owned())
                    .or_default()
                    .add(secure, dane),
            }
        }
    }
}

/// One value of the series: a snapshot, a scope (`all`, `tld`, `provider`), its key (empty
/// for `all`, else the TLD or provider) and the three counts.
///
/// Exists as the tidy row of the trend table (CSV, JSON, Parquet), one shape for every scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The snapshot date.
    pub snapshot: String,
    /// `all`, `tld` or `provider`.
    pub scope: String,
    /// The TLD or provider (empty for `all`).
    pub key: String,
    /// The counts.
    #[serde(flatten)]
    pub counts: Triple,
}

/// The series over `snapshots` (date, counts), oldest first: the totals, every TLD, and the
/// `top` providers with the most DANE domains in the latest snapshot (ties by name), each in
/// every snapshot.
pub fn series(snapshots: &[(String, Counts)], top: usize) -> Vec<Point> {
    let mut top_providers: Vec<(&String, u64)> = snapshots
        .last()
        .map(|(_, c)| {
            c.provider
                .iter()
                .filter(|(_, t)| t.dane > 0)
                .map(|(p, t)| (p, t.dane))
                .collect()
        })
        .unwrap_or_default();
    top_providers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    top_providers.truncate(top);
    let mut tlds: Vec<&String> = snapshots.iter().flat_map(|(_, c)| c.tld.keys()).collect();
    tlds.sort();
    tlds.dedup();
    let mut out = Vec::new();
    for (date, c) in snapshots {
        let point = |scope: &str, key: &str, counts: Triple| Point {
            snapshot: date.clone(),
            scope: scope.into(),
            key: key.into(),
            counts,
        };
        out.push(point("all", "", c.all));
        for t in &tlds {
            out.push(point("tld", t, c.tld.get(*t).copied().unwrap_or_default()));
        }
        for (p, _) in &top_providers {
            out.push(point(
                "provider",
                p,
                c.provider.get(*p).copied().unwrap_or_default(),
            ));
        }
    }
    out
}

/// The series as a [`Table`] (one row per point).
pub fn table(points: &[Point]) -> Table {
    let mut t = Table::new(&[
        ("snapshot", "snapshot", Kind::Text),
        ("scope", "scope", Kind::Text),
        ("key", "TLD / provider", Kind::Text),
        ("domains", "domains", Kind::Int),
        ("secure_mx", "secure MX", Kind::Int),
        ("dane", "DANE", Kind::Int),
    ]);
    for p in points {
        t.push(vec![
            p.snapshot.as_str().into(),
            p.scope.as_str().into(),
            p.key.as_str().into(),
            p.counts.domains.into(),
            p.counts.secure_mx.into(),
            p.counts.dane.into(),
        ]);
    }
    t
}

/// One line of the chart: its name, its value, its colour.
type Line = (&'static str, fn(&Triple) -> u64, plotters::style::RGBColor);

/// The chart: domains surveyed, domains with secure MX and DANE domains per snapshot, each
/// line labelled with its latest value, as an SVG document.
pub fn svg(points: &[Point]) -> Result<String> {
    svg_titled(points, "DANE for SMTP: domains per snapshot")
}

/// [`svg`] with another title (the web site draws one chart per TLD and per provider, from
/// points whose scope is `all`).
pub fn svg_titled(points: &[Point], title: &str) -> Result<String> {
    use plotters::prelude::*;

    let all: Vec<&Point> = points.iter().filter(|p| p.scope == "all").collect();
    let dates: Vec<String> = all.iter().map(|p| p.snapshot.clone()).collect();
    let n = all.len();
    let ymax = all
        .iter()
        .map(|p| p.counts.domains)
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let mut doc = String::new();
    {
        let root = SVGBackend::with_string(&mut doc, (900, 520)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<std::io::Error>| anyhow!("drawing the chart: {e}");
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n.max(1) as f64 - 0.5), 0f64..ymax)
            .map_err(e)?;
        let label_dates = dates.clone();
        chart
            .configure_mesh()
            .x_labels(n.clamp(1, 12))
            .x_label_formatter(&move |x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    label_dates.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y: &f64| super::table::thousands(y.round() as i64))
            .y_desc("domains")
            .draw()
            .map_err(e)?;
        let lines: [Line; 3] = [
            ("domains surveyed", |t| t.domains, RGBColor(80, 80, 80)),
            ("secure MX", |t| t.secure_mx, RGBColor(31, 119, 180)),
            ("DANE domains", |t| t.dane, RGBColor(44, 160, 44)),
        ];
        for (name, get, color) in lines {
            let pts: Vec<(f64, f64)> = all
                .iter()
                .enumerate()
                .map(|(i, p)| (i as f64, get(&p.counts) as f64))
                .collect();
            let last = all.last().map(|p| get(&p.counts)).unwrap_or(0);
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(e)?
                .label(format!("{name}: {}", super::table::thousands(last as i64)))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(e)?;
            chart
                .draw_series(pts.iter().map(|&(x, y)| {
                    Text::new(
                        super::table::thousands(y as i64),
                        (x, y),
                        ("sans-serif", 13).into_font().color(&color),
                    )
                }))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rank::tests::row;
    use DomainVerdict::*;

    #[test]
    fn series_and_chart() {
        let a = Aliases::default();
        let s = Some("secure");
        let mut m1 = Counts::default();
        for r in [
            row("a.test", Some("p.test"), s, DaneValid),
            row("b.test", Some("p.test"), s, NoTlsa),
            row("c.example", Some("q.example"), Some("insecure"), Insecure),
        ] {
            m1.add(&r, &a);
        }
        let mut m2 = m1.clone();
        m2.add(&row("d.example", Some("q.example"), s, DaneValid), &a);
        m2.add(&row("e.example", Some("q.example"), s, DaneValid), &a);
        let pts = series(&[("2026-10-01".into(), m1), ("2026-11-01".into(), m2)], 1);
        let get = |snap: &str, scope: &str, key: &str| {
            pts.iter()
                .find(|p| p.snapshot == snap && p.scope == scope && p.key == key)
                .map(|p| p.counts)
        };
        let t = |domains, secure_mx, dane| Triple {
            domains,
            secure_mx,
            dane,
        };
        assert_eq!(get("2026-10-01", "all", ""), Some(t(3, 2, 1)));
        assert_eq!(get("2026-11-01", "all", ""), Some(t(5, 4, 3)));
        assert_eq!(get("2026-10-01", "tld", "example"), Some(t(1, 0, 0)));
        // The top provider of the latest snapshot, in every snapshot.
        assert_eq!(get("2026-10-01", "provider", "q.example"), Some(t(1, 0, 0)));
        assert_eq!(get("2026-11-01", "provider", "q.example"), Some(t(3, 2, 2)));
        assert_eq!(get("2026-11-01", "provider", "p.test"), None);
        let doc = svg(&pts).unwrap();
        assert!(doc.starts_with("<svg"), "{}", &doc[..100]);
        assert!(doc.contains("DANE domains: 3"), "{doc}");
        assert!(doc.contains("2026-11-01"));
    }
}
